//! TestAsyncUpload (Complement: tests/csapi/media_async_uploads_test.go): `POST
//! /_matrix/media/v1/create` then `PUT /_matrix/media/v3/upload/{serverName}/{mediaId}`;
//! 504 `M_NOT_YET_UPLOADED` before the upload (after waiting `timeout_ms`), one upload
//! only (409 `M_CANNOT_OVERWRITE_MEDIA`), only by its creator, and a download that waits
//! for the upload to arrive.

use std::time::{Duration, Instant};

use glia_harness::Deployment;
use glia_harness::deployment::errcode;

use crate::{
    Api, MATRIX_PNG, create_media, download, mime, must_create_media, must_download, put_media,
    split_mxc,
};

#[tokio::test]
async fn test_async_upload() {
    let d = Deployment::new(1).await;
    let alice = d.register_user(0, "alice").await;

    // Create media: an mxc URI and when it expires unused (the spec recommends 24 h).
    let created = must_create_media(&alice).await;
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_millis() as i64;
    let expires = created["unused_expires_at"].as_i64().unwrap_or_else(|| panic!("{created}"));
    assert!(expires > now_ms, "unused_expires_at is in the future: {created}");

    // Not yet uploaded: 504 M_NOT_YET_UPLOADED on both endpoint families (the check comes
    // before the legacy endpoint's freeze), at once with timeout_ms=0 and after waiting.
    let mxc = created["content_uri"].as_str().expect("content_uri").to_string();
    for api in [Api::Authed, Api::Legacy] {
        let r = download(&alice, &mxc, api, None, "?timeout_ms=0").await;
        r.must_error(504, "M_NOT_YET_UPLOADED");
    }
    let started = Instant::now();
    download(&alice, &mxc, Api::Authed, None, "?timeout_ms=700")
        .await
        .must_error(504, "M_NOT_YET_UPLOADED");
    assert!(started.elapsed() >= Duration::from_millis(600), "timeout_ms was not waited for");
    let q = "?width=32&height=32&timeout_ms=0";
    crate::thumbnail(&alice, &mxc, Api::Authed, q).await.must_error(504, "M_NOT_YET_UPLOADED");

    // Upload media.
    let r = put_media(&alice, &mxc, MATRIX_PNG, Some("test.png"), Some("image/png")).await;
    assert!(r.must_status(200).is_object(), "{}", r.text());

    // Cannot upload to a media ID that has already been uploaded to (Complement sends no
    // body and no content type).
    let (server, id) = split_mxc(&mxc);
    let path = format!("/_matrix/media/v3/upload/{server}/{id}");
    let r = crate::send(&alice, "PUT", &path, None, None, true).await;
    r.must_error(409, "M_CANNOT_OVERWRITE_MEDIA");
    put_media(&alice, &mxc, b"other", None, Some("text/plain"))
        .await
        .must_error(409, "M_CANNOT_OVERWRITE_MEDIA");

    // Download media: what the PUT sent, with its content type and file name.
    let r = must_download(&alice, &mxc).await;
    assert_eq!(r.body, MATRIX_PNG);
    assert_eq!(mime(&r), "image/png");
    assert_eq!(crate::disposition(&r).1.as_deref(), Some("test.png"));
    d.destroy().await;
}

/// A download with `timeout_ms` started before the upload returns the content once it
/// arrives.
#[tokio::test]
async fn test_download_waits_for_async_upload() {
    let d = Deployment::new(1).await;
    let alice = d.register_user(0, "alice").await;
    let mxc = must_create_media(&alice).await["content_uri"].as_str().expect("uri").to_string();
    let waiter = {
        let (alice, mxc) = (alice.clone(), mxc.clone());
        tokio::spawn(
            async move { download(&alice, &mxc, Api::Authed, None, "?timeout_ms=15000").await },
        )
    };
    d.until_parked(0, "the download to wait for the upload", |app| app.media.waiting.count()).await;
    put_media(&alice, &mxc, b"worth the wait", None, Some("text/plain")).await.must_status(200);
    let r = waiter.await.expect("join");
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.body, b"worth the wait");
    d.destroy().await;
}

/// Only the creator may upload to a media ID; unknown IDs and other servers' are 404.
#[tokio::test]
async fn test_async_upload_permissions() {
    let d = Deployment::new(1).await;
    let alice = d.register_user(0, "alice").await;
    let eve = d.register_user(0, "eve").await;
    let mxc = must_create_media(&alice).await["content_uri"].as_str().expect("uri").to_string();
    put_media(&eve, &mxc, b"mine now", None, Some("text/plain"))
        .await
        .must_error(403, "M_FORBIDDEN");
    let (server, _) = split_mxc(&mxc);
    let unknown = format!("mxc://{server}/NeverCreated0123");
    put_media(&alice, &unknown, b"x", None, Some("text/plain"))
        .await
        .must_error(404, "M_NOT_FOUND");
    put_media(&alice, "mxc://remote.example.org/abc", b"x", None, Some("text/plain"))
        .await
        .must_error(404, "M_NOT_FOUND");
    // A media ID from /upload is not open for PUT either.
    let uploaded = crate::must_upload(&alice, b"done", None, "text/plain").await;
    put_media(&alice, &uploaded, b"again", None, Some("text/plain"))
        .await
        .must_error(409, "M_CANNOT_OVERWRITE_MEDIA");
    // The legit upload still works after all that.
    put_media(&alice, &mxc, b"ok", None, Some("text/plain")).await.must_status(200);
    create_media(&alice.unauthed()).await.must_error(401, "M_MISSING_TOKEN");
    d.destroy().await;
}

/// The spec asks servers to limit pending uploads per user with 429 `M_LIMIT_EXCEEDED`;
/// Glia and Synapse allow 5 (`max_pending_media_uploads`). Uploading to one frees a slot.
#[tokio::test]
async fn test_pending_upload_limit() {
    let d = Deployment::new(1).await;
    let alice = d.register_user(0, "alice").await;
    let mut uris = vec![];
    for _ in 0..5 {
        uris.push(
            must_create_media(&alice).await["content_uri"].as_str().expect("uri").to_string(),
        );
    }
    let r = create_media(&alice).await;
    let body = r.must_error(429, "M_LIMIT_EXCEEDED");
    assert!(body["retry_after_ms"].is_u64() || d.is_external(), "{body}");
    assert_eq!(errcode(&body), "M_LIMIT_EXCEEDED");
    put_media(&alice, &uris[0], b"x", None, Some("text/plain")).await.must_status(200);
    must_create_media(&alice).await;
    // Another user has their own allowance.
    let bob = d.register_user(0, "bob").await;
    must_create_media(&bob).await;
    d.destroy().await;
}
