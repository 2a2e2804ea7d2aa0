//! Bad input gets a 4xx with a Matrix error, never a 500 or a crash: uploads over
//! `max_upload_size` (declared or streamed), thumbnails of things that are not images,
//! corrupt images and decompression bombs, malformed thumbnail parameters.

use glia_harness::{Deployment, HsConfig};
use image::ImageFormat;

use crate::{Api, image_bytes, must_download, must_upload, send, thumbnail, upload};

/// A server whose `max_upload_size` is 1 MiB (a config only in-process Glia can be given).
async fn small_limit() -> Option<Deployment> {
    let cfg = HsConfig { extra_yaml: "max_upload_size: 1M\n".into(), ..Default::default() };
    Deployment::with_config(1, cfg).await
}

/// Uploads over `max_upload_size` are 413 `M_TOO_LARGE`: at once when Content-Length
/// says so, and as soon as a streamed (chunked) body passes the limit; exactly the limit
/// is fine; nothing is stored; the server keeps serving.
#[tokio::test]
async fn test_upload_over_the_limit() {
    let Some(d) = small_limit().await else { return };
    let alice = d.register_user(0, "alice").await;
    let limit = 1024 * 1024;
    let at_limit = vec![7u8; limit];
    let mxc = must_upload(&alice, &at_limit, None, "application/octet-stream").await;
    assert_eq!(must_download(&alice, &mxc).await.body.len(), limit);

    // Declared: Content-Length over the limit.
    upload(&alice, &vec![7u8; limit + 1], None, Some("application/octet-stream"))
        .await
        .must_error(413, "M_TOO_LARGE");
    // Streamed without a length: refused once the limit is passed (the stream is longer
    // than the limit by far; the server does not read it all).
    let chunks = (0..64).map(|_| Ok::<_, std::io::Error>(bytes::Bytes::from(vec![1u8; 64 * 1024])));
    let body = reqwest::Body::wrap_stream(futures_util::stream::iter(chunks));
    let r = send(
        &alice,
        "POST",
        "/_matrix/media/v3/upload",
        Some(body),
        Some("application/octet-stream"),
        true,
    )
    .await;
    r.must_error(413, "M_TOO_LARGE");
    // The asynchronous upload has the same limit.
    let created = crate::must_create_media(&alice).await;
    let mxc2 = created["content_uri"].as_str().expect("uri");
    crate::put_media(&alice, mxc2, &vec![0u8; limit + 1], None, None)
        .await
        .must_error(413, "M_TOO_LARGE");
    // ... and the ID can still be uploaded to within it.
    crate::put_media(&alice, mxc2, b"small", None, None).await.must_status(200);

    // Nothing of the refused uploads is left in the store: two blobs (the 1 MiB one and
    // "small"), no temp files.
    if let Some(dir) = &d.hs(0).data_dir {
        let media = dir.path().join("media");
        let tmp = std::fs::read_dir(media.join("tmp")).expect("tmp dir").count();
        assert_eq!(tmp, 0, "temp files left behind");
        let blobs = walk(&media.join("content"));
        assert_eq!(blobs, 2, "only the accepted uploads are stored");
    }
    d.destroy().await;
}

fn walk(dir: &std::path::Path) -> usize {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries.flatten().map(|e| if e.path().is_dir() { walk(&e.path()) } else { 1 }).sum()
        })
        .unwrap_or(0)
}

/// Thumbnails of a non-image, a corrupt image (PNG header, garbage after), an image in
/// a format that is not thumbnailed and a decompression bomb (a tiny PNG claiming
/// 50,000 x 50,000 pixels): a 4xx every time, and the server lives on. Glia answers
/// the spec's 400 `M_UNKNOWN` ("cannot generate thumbnails") and 413 `M_TOO_LARGE` for the
/// bomb; Synapse 400 for all of them.
#[tokio::test]
async fn test_thumbnail_of_bad_content() {
    let d = Deployment::new(1).await;
    let alice = d.register_user(0, "alice").await;
    // A PNG signature and header, then garbage where the chunks should be.
    let mut corrupt = image_bytes(64, 64, ImageFormat::Png);
    corrupt.truncate(33);
    corrupt.extend_from_slice(&[0xab; 256]);
    let mut truncated = image_bytes(300, 200, ImageFormat::Jpeg);
    truncated.truncate(200);
    let cases: Vec<(&str, Vec<u8>, &str, u16)> = vec![
        ("text", b"just some text".to_vec(), "text/plain", 400),
        ("html as png", b"<html>not an image</html>".to_vec(), "image/png", 400),
        ("corrupt png", corrupt, "image/png", 400),
        ("truncated jpeg", truncated, "image/jpeg", 400),
        (
            "svg",
            br#"<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"/>"#.to_vec(),
            "image/svg+xml",
            400,
        ),
        ("empty", vec![], "image/png", 400),
        ("bomb", png_bomb(50_000, 50_000), "image/png", 413),
    ];
    for (what, bytes, ct, glia_status) in cases {
        let mxc = must_upload(&alice, &bytes, None, ct).await;
        for q in ["?width=32&height=32&method=scale", "?width=96&height=96&method=crop"] {
            let r = thumbnail(&alice, &mxc, Api::Authed, q).await;
            let err = r.must_client_error();
            if !d.is_external() {
                assert_eq!(r.status, glia_status, "{what}: {err}");
                let code = if glia_status == 413 { "M_TOO_LARGE" } else { "M_UNKNOWN" };
                assert_eq!(err["errcode"], code, "{what}: {err}");
            }
        }
        // The bytes themselves still download.
        assert_eq!(must_download(&alice, &mxc).await.body, bytes, "{what}");
    }
    d.destroy().await;
}

/// A valid 8x8 PNG whose header claims `w` x `h` (with a correct CRC).
fn png_bomb(w: u32, h: u32) -> Vec<u8> {
    let mut png = image_bytes(8, 8, ImageFormat::Png);
    png[16..20].copy_from_slice(&w.to_be_bytes());
    png[20..24].copy_from_slice(&h.to_be_bytes());
    let mut crc = 0xffff_ffffu32;
    for &b in &png[12..29] {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 == 1 { (crc >> 1) ^ 0xedb8_8320 } else { crc >> 1 };
        }
    }
    png[29..33].copy_from_slice(&(!crc).to_be_bytes());
    png
}

/// Thumbnail parameters: width and height are required positive integers (400
/// `M_MISSING_PARAM` / `M_INVALID_PARAM`); unknown media is 404.
#[tokio::test]
async fn test_thumbnail_parameters() {
    let d = Deployment::new(1).await;
    let alice = d.register_user(0, "alice").await;
    let mxc = must_upload(&alice, crate::LARGE_PNG, None, "image/png").await;
    thumbnail(&alice, &mxc, Api::Authed, "?height=32").await.must_error(400, "M_MISSING_PARAM");
    thumbnail(&alice, &mxc, Api::Authed, "?width=32").await.must_error(400, "M_MISSING_PARAM");
    thumbnail(&alice, &mxc, Api::Authed, "?width=abc&height=32")
        .await
        .must_error(400, "M_INVALID_PARAM");
    thumbnail(&alice, &mxc, Api::Authed, "?width=32&height=-4")
        .await
        .must_error(400, "M_INVALID_PARAM");
    thumbnail(&alice, &mxc, Api::Authed, "?width=1.5&height=32")
        .await
        .must_error(400, "M_INVALID_PARAM");
    if !d.is_external() {
        // Synapse takes any method and falls back; the spec lists only crop and scale.
        let r = thumbnail(&alice, &mxc, Api::Authed, "?width=32&height=32&method=stretch").await;
        r.must_error(400, "M_INVALID_PARAM");
        // Zero is not a size.
        let r = thumbnail(&alice, &mxc, Api::Authed, "?width=0&height=32").await;
        r.must_error(400, "M_INVALID_PARAM");
    }
    // Absurd sizes get the largest thumbnail there is, not an allocation of that size.
    let r = thumbnail(&alice, &mxc, Api::Authed, "?width=100000&height=100000&method=crop").await;
    assert_eq!(r.status, 200, "{}", r.text());
    let (w, h) = crate::decode_image(&r);
    assert!(w <= 1000 && h <= 673, "{w}x{h}");
    let (server, _) = crate::split_mxc(&mxc);
    let unknown = format!("mxc://{server}/DoesNotExist123");
    thumbnail(&alice, &unknown, Api::Authed, "?width=32&height=32")
        .await
        .must_error(404, "M_NOT_FOUND");
    crate::download(&alice, &unknown, Api::Authed, None, "").await.must_error(404, "M_NOT_FOUND");
    // Not media endpoints: an unknown one under /media is M_UNRECOGNIZED.
    let r = send(&alice, "GET", "/_matrix/client/v1/media/nonsense", None, None, true).await;
    assert_eq!(r.status, 404, "{}", r.text());
    d.destroy().await;
}

/// The upload's declared Content-Type is kept when it is a media type; a missing one is
/// `application/octet-stream` (the spec's default), and so is one that is not a media
/// type (Glia; Synapse keeps any ASCII string), which keeps what is sent back a valid
/// header.
#[tokio::test]
async fn test_upload_content_types() {
    let d = Deployment::new(1).await;
    let alice = d.register_user(0, "alice").await;
    let r = upload(&alice, b"no type", None, None).await;
    let mxc = r.must_status(200)["content_uri"].as_str().expect("uri").to_string();
    let got = must_download(&alice, &mxc).await;
    // reqwest sends no Content-Type for a bare body: the server's default applies.
    assert_eq!(crate::mime(&got), "application/octet-stream");
    if !d.is_external() {
        let mxc = must_upload(&alice, b"x", None, "not a media type").await;
        assert_eq!(crate::mime(&must_download(&alice, &mxc).await), "application/octet-stream");
    }
    d.destroy().await;
}
