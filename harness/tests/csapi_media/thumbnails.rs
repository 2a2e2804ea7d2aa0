//! TestLocalPngThumbnail (Complement: tests/media_thumbnail_test.go; sytest "POSTed media
//! can be thumbnailed") and more: every supported source format, `scale` and `crop`, no
//! upscaling, thumbnails cached and reused, and the legacy endpoint's freeze.

use glia_harness::Deployment;
use image::ImageFormat;

use crate::{Api, LARGE_PNG, decode_image, disposition, image_bytes, mime, must_upload, thumbnail};

fn q(w: u32, h: u32, method: &str) -> String {
    format!("?width={w}&height={h}&method={method}")
}

/// TestLocalPngThumbnail: a 32x32 `scale` thumbnail of a 1000x673 PNG decodes as a PNG or
/// JPEG, served inline; no token is 401; the legacy endpoint answers 404 for media
/// uploaded after the freeze (Complement skips that part on Synapse for that reason).
#[tokio::test]
async fn test_local_png_thumbnail() {
    let d = Deployment::new(1).await;
    let alice = d.register_user(0, "alice").await;
    let mxc = must_upload(&alice, LARGE_PNG, Some("test.png"), "image/png").await;
    let r = thumbnail(&alice, &mxc, Api::Authed, &q(32, 32, "scale")).await;
    assert_eq!(r.status, 200, "{}: {}", r.what, r.text());
    let (w, h) = decode_image(&r);
    // Never smaller than asked unless the aspect ratio makes it so; never the original.
    assert!(w >= 32 || h >= 32, "{w}x{h}");
    assert!(w < 1000 && h < 673, "a thumbnail, not the original: {w}x{h}");
    assert_eq!(disposition(&r).0, "inline");
    thumbnail(&alice.unauthed(), &mxc, Api::Authed, &q(32, 32, "scale"))
        .await
        .must_error(401, "M_MISSING_TOKEN");
    thumbnail(&alice, &mxc, Api::Legacy, &q(32, 32, "scale")).await.must_error(404, "M_NOT_FOUND");
    d.destroy().await;
}

/// `crop` returns the requested aspect ratio at (at least) the requested size; `scale`
/// keeps the source's aspect ratio. Sizes are the spec's recommended ones, which Synapse
/// pre-generates.
#[tokio::test]
async fn test_thumbnail_methods() {
    let d = Deployment::new(1).await;
    let alice = d.register_user(0, "alice").await;
    let mxc = must_upload(&alice, LARGE_PNG, None, "image/png").await;
    for (w, h) in [(32, 32), (96, 96)] {
        let r = thumbnail(&alice, &mxc, Api::Authed, &q(w, h, "crop")).await;
        assert_eq!(r.status, 200, "{}: {}", r.what, r.text());
        let (tw, th) = decode_image(&r);
        assert!(tw >= w && th >= h, "crop {w}x{h} gave {tw}x{th}");
        assert_eq!(tw * h, th * w, "crop {w}x{h} has the requested aspect ratio: {tw}x{th}");
    }
    for (w, h) in [(320, 240), (640, 480)] {
        let r = thumbnail(&alice, &mxc, Api::Authed, &q(w, h, "scale")).await;
        assert_eq!(r.status, 200, "{}: {}", r.what, r.text());
        let (tw, th) = decode_image(&r);
        assert!(tw <= 1000 && th <= 673, "never larger than the source: {tw}x{th}");
        assert!(tw >= w || th >= h, "scale {w}x{h} gave {tw}x{th}");
        // 1000x673 kept within a rounding error.
        let ratio = f64::from(tw) / f64::from(th);
        assert!((ratio - 1000.0 / 673.0).abs() < 0.05, "scale keeps the aspect ratio: {tw}x{th}");
    }
    d.destroy().await;
}

/// JPEG, GIF and WebP sources thumbnail too (the image types Synapse thumbnails).
#[tokio::test]
async fn test_thumbnail_formats() {
    let d = Deployment::new(1).await;
    let alice = d.register_user(0, "alice").await;
    for (format, ct) in [
        (ImageFormat::Jpeg, "image/jpeg"),
        (ImageFormat::Gif, "image/gif"),
        (ImageFormat::WebP, "image/webp"),
        (ImageFormat::Png, "image/png"),
    ] {
        let mxc = must_upload(&alice, &image_bytes(400, 300, format), None, ct).await;
        let r = thumbnail(&alice, &mxc, Api::Authed, &q(96, 96, "crop")).await;
        assert_eq!(r.status, 200, "{ct}: {}: {}", r.what, r.text());
        let (w, h) = decode_image(&r);
        assert_eq!((w, h), (96, 96), "{ct}");
        assert_eq!(disposition(&r).0, "inline", "{ct}");
    }
    d.destroy().await;
}

/// Servers MUST NOT upscale: an image smaller than the requested size comes back at its
/// own size (Glia returns the original bytes, as the spec suggests).
#[tokio::test]
async fn test_thumbnail_never_upscales() {
    let d = Deployment::new(1).await;
    let alice = d.register_user(0, "alice").await;
    let small = image_bytes(40, 20, ImageFormat::Png);
    let mxc = must_upload(&alice, &small, None, "image/png").await;
    let r = thumbnail(&alice, &mxc, Api::Authed, &q(320, 240, "scale")).await;
    assert_eq!(r.status, 200, "{}: {}", r.what, r.text());
    assert_eq!(decode_image(&r), (40, 20));
    if !d.is_external() {
        assert_eq!(r.body, small, "Glia serves small content as it is");
        assert_eq!(mime(&r), "image/png");
    }
    d.destroy().await;
}

/// The same thumbnail twice is the same bytes; Glia makes it once and keeps it (one row
/// in its cache table for each thumbnail made, checked on Glia's database).
#[tokio::test]
async fn test_thumbnails_are_cached() {
    let d = Deployment::new(1).await;
    let alice = d.register_user(0, "alice").await;
    let mxc = must_upload(&alice, LARGE_PNG, None, "image/png").await;
    let first = thumbnail(&alice, &mxc, Api::Authed, &q(96, 96, "crop")).await;
    assert_eq!(first.status, 200, "{}", first.text());
    // Concurrent requests for one thumbnail: it is still made once.
    let mut tasks = vec![];
    for _ in 0..4 {
        let (alice, mxc) = (alice.clone(), mxc.clone());
        tasks.push(tokio::spawn(async move {
            thumbnail(&alice, &mxc, Api::Authed, &q(640, 480, "scale")).await
        }));
    }
    let mut bodies = vec![];
    for t in tasks {
        let r = t.await.expect("join");
        assert_eq!(r.status, 200, "{}", r.text());
        bodies.push(r.body);
    }
    assert!(bodies.windows(2).all(|w| w[0] == w[1]), "one thumbnail for all");
    let again = thumbnail(&alice, &mxc, Api::Authed, &q(96, 96, "crop")).await;
    assert!(again.body == first.body, "served from the cache");
    // Any size within the same box is the same thumbnail.
    let near = thumbnail(&alice, &mxc, Api::Authed, &q(600, 400, "scale")).await;
    assert!(near.body == bodies[0], "600x400 scale is served from the 640x480 thumbnail");
    if let Some(path) = &d.hs(0).db_path {
        let c = rusqlite::Connection::open(path).expect("db");
        let (_, id) = crate::split_mxc(&mxc);
        let n: i64 = c
            .query_row("SELECT COUNT(*) FROM media_thumbnails WHERE media_id = ?1", [&id], |r| {
                r.get(0)
            })
            .expect("count");
        assert_eq!(n, 2, "one 96x96 crop and one 640x480 scale");
    }
    d.destroy().await;
}
