//! TestContent, TestContentCSAPIMediaV1 and TestRoomImageRoundtrip (Complement:
//! tests/csapi/apidoc_content_test.go, media_misc_test.go): upload, download what was
//! uploaded with its content type, the authenticated endpoints' 401 without a token, the
//! legacy endpoints' freeze, and an image sent in a room.

use glia_harness::Deployment;
use glia_harness::deployment::errcode;
use serde_json::json;

use crate::{
    Api, LARGE_PNG, MATRIX_PNG, download, mime, must_download, must_upload, send, split_mxc, upload,
};

/// TestContent: `POST /_matrix/media/v3/upload` creates an upload that downloads again with
/// its bytes and content type. Complement downloads over the legacy endpoint and skips
/// Synapse, which (like Glia) serves media uploaded since the freeze only on
/// `/_matrix/client/v1/media`; this checks both sides of that.
#[tokio::test]
async fn test_content() {
    let d = Deployment::new(1).await;
    let alice = d.register_user(0, "alice").await;
    let mxc = must_upload(&alice, MATRIX_PNG, Some("test.png"), "image/png").await;
    let (server, media_id) = split_mxc(&mxc);
    assert_eq!(Some(server.as_str()), alice.user_id.split_once(':').map(|(_, s)| s), "{mxc}");
    assert!(
        media_id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-'),
        "media IDs are [A-Za-z0-9_-]: {media_id}"
    );
    let r = must_download(&alice, &mxc).await;
    assert_eq!(r.body, MATRIX_PNG, "downloaded bytes differ");
    assert_eq!(mime(&r), "image/png");
    assert_eq!(r.header("content-length"), Some(MATRIX_PNG.len().to_string().as_str()));
    // The legacy unauthenticated download: 404 for media uploaded after the freeze.
    let legacy = download(&alice, &mxc, Api::Legacy, None, "").await;
    let body = legacy.must_status(404);
    assert_eq!(errcode(&body), "M_NOT_FOUND", "{body}");
    // The r0 upload path still works (Synapse serves r0, v3 and v1).
    let r = send(
        &alice,
        "POST",
        "/_matrix/media/r0/upload",
        Some(b"r0".to_vec().into()),
        Some("text/plain"),
        true,
    )
    .await;
    r.must_status(200);
    d.destroy().await;
}

/// TestContentCSAPIMediaV1: the authenticated download returns the content type as
/// uploaded (even a made-up one), and 401 without an access token.
#[tokio::test]
async fn test_content_csapi_media_v1() {
    let d = Deployment::new(1).await;
    let alice = d.register_user(0, "alice").await;
    let mxc = must_upload(&alice, MATRIX_PNG, Some("test.png"), "img/png").await;
    let r = must_download(&alice, &mxc).await;
    assert_eq!(r.body, MATRIX_PNG);
    assert_eq!(mime(&r), "img/png");
    // Without the token: 401, for downloads and thumbnails alike.
    let anon = alice.unauthed();
    download(&anon, &mxc, Api::Authed, None, "").await.must_error(401, "M_MISSING_TOKEN");
    download(&anon, &mxc, Api::Authed, Some("x.png"), "").await.must_error(401, "M_MISSING_TOKEN");
    let q = "?width=32&height=32&method=scale";
    crate::thumbnail(&anon, &mxc, Api::Authed, q).await.must_error(401, "M_MISSING_TOKEN");
    let mut bad = alice.clone();
    bad.access_token = Some("not-a-token".into());
    download(&bad, &mxc, Api::Authed, None, "").await.must_error(401, "M_UNKNOWN_TOKEN");
    // Uploads always needed a token.
    upload(&anon, b"x", None, Some("text/plain")).await.must_error(401, "M_MISSING_TOKEN");
    d.destroy().await;
}

/// A second user (not the uploader) downloads media by its URI: knowing the URI is
/// enough (spec, content repository security considerations).
#[tokio::test]
async fn test_other_users_download_by_uri() {
    let d = Deployment::new(1).await;
    let alice = d.register_user(0, "alice").await;
    let bob = d.register_user(0, "bob").await;
    let mxc = must_upload(&alice, LARGE_PNG, None, "image/png").await;
    let r = must_download(&bob, &mxc).await;
    assert_eq!(r.body.len(), LARGE_PNG.len());
    assert!(r.body == LARGE_PNG);
    d.destroy().await;
}

/// TestRoomImageRoundtrip (sytest "Can send image in room message", "Can fetch images in
/// room"): an `m.file` message carrying the mxc URI is what `contains_url` finds.
#[tokio::test]
async fn test_room_image_roundtrip() {
    let d = Deployment::new(1).await;
    let alice = d.register_user(0, "alice").await;
    let mxc = must_upload(&alice, MATRIX_PNG, Some("test.png"), "image/png").await;
    let room = alice.must_do("POST", &["_matrix", "client", "v3", "createRoom"], json!({})).await;
    let room = room["room_id"].as_str().expect("room_id").to_string();
    for (i, content) in [
        json!({"msgtype": "m.text", "body": "test"}),
        json!({"msgtype": "m.file", "body": "test.png", "url": mxc}),
    ]
    .into_iter()
    .enumerate()
    {
        let txn = format!("media-{i}-{}", std::process::id());
        let path = ["_matrix", "client", "v3", "rooms", &room, "send", "m.room.message", &txn];
        alice.must_do("PUT", &path, content).await;
    }
    let filter = glia_harness::client::encode_segment(r#"{"contains_url":true}"#);
    let q = format!("?dir=b&filter={filter}");
    let body = alice
        .must_do(
            "GET",
            &["_matrix", "client", "v3", "rooms", &room, "messages", &q],
            serde_json::Value::Null,
        )
        .await;
    // Complement also wants `end` to be a string, which is Synapse's habit; the spec omits
    // `end` when no further events are available, as here (the room's start is reached).
    assert!(body["start"].is_string(), "{body}");
    assert!(body["end"].is_string() || body.get("end").is_none(), "{body}");
    let chunk = body["chunk"].as_array().expect("chunk");
    assert_eq!(chunk.len(), 1, "only the message with a URL: {body}");
    assert_eq!(chunk[0]["content"]["url"], mxc.as_str());
    let r = must_download(&alice, chunk[0]["content"]["url"].as_str().expect("url")).await;
    assert_eq!(r.body, MATRIX_PNG);
    d.destroy().await;
}
