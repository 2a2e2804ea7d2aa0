//! Media over federation (Complement: TestRemotePngThumbnail, and remote downloads):
//! `/_matrix/federation/v1/media/download` and `/thumbnail` served as `multipart/mixed`,
//! and a client's download of `mxc://other-server/...` fetched, cached and served.

use std::io::Cursor;

use glia_harness::client::Body;
use glia_harness::federation::{FakeServer, RawReply};
use glia_harness::{Client, Deployment};
use image::{DynamicImage, ImageFormat, Rgba, RgbaImage};
use serde_json::json;

use crate::support::{one_trusting, server_of, unreachable_server};

/// A `w` x `h` PNG with some detail.
fn png(w: u32, h: u32) -> Vec<u8> {
    let img = RgbaImage::from_fn(w, h, |x, y| Rgba([(x % 256) as u8, (y % 256) as u8, 99, 255]));
    let mut out = Cursor::new(Vec::new());
    DynamicImage::ImageRgba8(img).write_to(&mut out, ImageFormat::Png).expect("png");
    out.into_inner()
}

/// Upload; returns (server, media ID).
async fn upload(c: &Client, bytes: Vec<u8>, name: &str, ct: &'static str) -> (String, String) {
    let q = format!("?filename={name}");
    let r = c
        .request("POST", &["_matrix", "media", "v3", "upload", &q], Body::Raw(bytes, ct))
        .await
        .must_status(200);
    let mxc = r["content_uri"].as_str().expect("content_uri").to_string();
    let (server, id) = mxc.trim_start_matches("mxc://").split_once('/').expect("mxc");
    (server.to_string(), id.to_string())
}

fn media<'a>(what: &'a str, server: &'a str, id: &'a str, q: &'a str) -> Vec<&'a str> {
    let mut p = vec!["_matrix", "client", "v1", "media", what, server, id];
    if !q.is_empty() {
        p.push(q);
    }
    p
}

/// Decode an image response: its dimensions.
fn dimensions(r: &glia_harness::Response) -> (u32, u32) {
    let img = image::load_from_memory(&r.body).unwrap_or_else(|e| {
        panic!("{}: not an image ({e}): {:?}", r.what, r.header("content-type"))
    });
    (img.width(), img.height())
}

/// The parts of a multipart/mixed response: (headers text, body bytes).
fn parts(r: &glia_harness::Response) -> Vec<(String, Vec<u8>)> {
    let ct = r.header("content-type").expect("content-type").to_string();
    assert!(ct.starts_with("multipart/mixed"), "{}: {ct}", r.what);
    let boundary = ct.split("boundary=").nth(1).expect("boundary").trim_matches('"');
    let delimiter = format!("\r\n--{boundary}");
    let body = [b"\r\n".as_slice(), &r.body].concat();
    let mut out = vec![];
    let mut rest = &body[..];
    while let Some(i) = rest.windows(delimiter.len()).position(|w| w == delimiter.as_bytes()) {
        let part = &rest[..i];
        if let Some(h) = part.windows(4).position(|w| w == b"\r\n\r\n") {
            out.push((String::from_utf8_lossy(&part[..h]).into_owned(), part[h + 4..].to_vec()));
        }
        rest = &rest[i + delimiter.len()..];
    }
    assert!(rest.starts_with(b"--"), "{}: closing delimiter", r.what);
    out
}

/// TestRemotePngThumbnail: hs1's user uploads a PNG; hs2's user gets a thumbnail of it.
#[tokio::test]
async fn test_remote_png_thumbnail() {
    let Some(d) = Deployment::federated(2).await else { return };
    let alice = d.register_user(0, "alice").await;
    let bob = d.register_user(1, "bob").await;
    let (server, id) = upload(&alice, png(1000, 673), "test.png", "image/png").await;
    let r = bob.get(&media("thumbnail", &server, &id, "?width=32&height=32&method=scale")).await;
    assert_eq!(r.status, 200, "{}: {}", r.what, r.text());
    let (w, h) = dimensions(&r);
    assert!((w >= 32 || h >= 32) && w < 1000 && h < 673, "a thumbnail: {w}x{h}");
    assert!(r.header("content-type").is_some_and(|t| t.starts_with("image/")), "{:?}", r.headers);
    d.destroy().await;
}

/// A remote download comes back byte for byte with its type and file name, is cached
/// (still served, and thumbnailed, once the origin is gone), and is not served on the
/// legacy unauthenticated endpoint.
#[tokio::test]
async fn test_remote_media_download_is_cached() {
    let Some(mut d) = Deployment::federated(2).await else { return };
    let alice = d.register_user(0, "alice").await;
    let bob = d.register_user(1, "bob").await;
    let bytes = png(200, 100);
    let (server, id) = upload(&alice, bytes.clone(), "cat.png", "image/png").await;
    let r = bob.get(&media("download", &server, &id, "")).await;
    assert_eq!(r.status, 200, "{}: {}", r.what, r.text());
    assert_eq!(r.body, bytes);
    assert_eq!(r.header("content-type"), Some("image/png"));
    assert!(r.header("content-disposition").is_some_and(|v| v.contains("cat.png")), "{r:?}");
    bob.get(&["_matrix", "media", "v3", "download", &server, &id])
        .await
        .must_error(404, "M_NOT_FOUND");
    let missing = bob.get(&media("download", &server, "NoSuchMedia", "")).await;
    missing.must_error(404, "M_NOT_FOUND");
    // hs1 goes away: the cache answers.
    if let Some(s) = d.servers[0].server.take() {
        s.shutdown().await;
    }
    let again = bob.get(&media("download", &server, &id, "")).await;
    assert_eq!(again.status, 200, "{}", again.text());
    assert_eq!(again.body, bytes);
    let t = bob.get(&media("thumbnail", &server, &id, "?width=96&height=96&method=crop")).await;
    assert_eq!(t.status, 200, "{}", t.text());
    let (w, h) = dimensions(&t);
    assert_eq!(w, h, "crop keeps the requested aspect ratio: {w}x{h}");
    d.destroy().await;
}

/// A fake server asks Glia for media over federation: signed requests get multipart
/// answers (JSON, then the bytes); unsigned ones are 401, unknown media 404.
#[tokio::test]
async fn test_inbound_federation_media() {
    let Some(d) = one_trusting("").await else { return };
    let alice = d.register_user(0, "alice").await;
    let bytes = png(300, 300);
    let (dest, id) = upload(&alice, bytes.clone(), "dog.png", "image/png").await;
    assert_eq!(dest, server_of(&alice.user_id));
    let (base, fake) = (d.hs(0).base_url.clone(), FakeServer::start().await);
    let path = format!("/_matrix/federation/v1/media/download/{id}");
    let r = fake.request(&base, &dest, "GET", &path, None).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let p = parts(&r);
    assert_eq!(p.len(), 2, "{:?}", p.iter().map(|p| &p.0).collect::<Vec<_>>());
    assert!(p[0].0.to_ascii_lowercase().contains("application/json"), "{}", p[0].0);
    let meta: serde_json::Value = serde_json::from_slice(&p[0].1).expect("JSON part");
    assert!(meta.is_object());
    assert!(p[1].0.contains("image/png"), "{}", p[1].0);
    assert_eq!(p[1].1, bytes);
    let thumb =
        format!("/_matrix/federation/v1/media/thumbnail/{id}?width=32&height=32&method=crop");
    let r = fake.request(&base, &dest, "GET", &thumb, None).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let p = parts(&r);
    let img = image::load_from_memory(&p[1].1).expect("thumbnail decodes");
    assert_eq!((img.width(), img.height()), (32, 32));
    fake.raw_request(&base, "GET", &path, None, None).await.must_error(401, "M_UNAUTHORIZED");
    let unknown = "/_matrix/federation/v1/media/download/NoSuchMedia";
    fake.request(&base, &dest, "GET", unknown, None).await.must_error(404, "M_NOT_FOUND");
    let bad = format!("/_matrix/federation/v1/media/thumbnail/{id}?width=0&height=32");
    fake.request(&base, &dest, "GET", &bad, None).await.must_error(400, "M_INVALID_PARAM");
    d.destroy().await;
}

fn multipart_reply(media_headers: &str, bytes: &[u8]) -> RawReply {
    let mut body =
        b"--BOUNDARY\r\nContent-Type: application/json\r\n\r\n{}\r\n--BOUNDARY\r\n".to_vec();
    body.extend_from_slice(media_headers.as_bytes());
    body.extend_from_slice(b"\r\n\r\n");
    body.extend_from_slice(bytes);
    body.extend_from_slice(b"\r\n--BOUNDARY--\r\n");
    RawReply {
        status: 200,
        headers: vec![("content-type".into(), "multipart/mixed; boundary=BOUNDARY".into())],
        body,
    }
}

/// Fetching from a fake server: the multipart answer with bytes, with a `Location`
/// redirect, and the legacy endpoint when the federation one is unknown (asked with
/// `allow_remote=false`); a 404 is 404, garbage and unreachable servers are 502.
#[tokio::test]
async fn test_remote_media_from_fake_server() {
    let Some(d) = one_trusting("").await else { return };
    let bob = d.register_user(0, "bob").await;
    let fake = FakeServer::start().await;
    let origin = fake.server_name.clone();
    fake.on_raw("GET", "/_matrix/federation/v1/media/download/direct", |_| {
        multipart_reply(
            "Content-Type: text/plain\r\nContent-Disposition: inline; filename*=utf-8''%C3%A9t%C3%A9.txt",
            b"hello from afar",
        )
    });
    let r = bob.get(&media("download", &origin, "direct", "")).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.body, b"hello from afar");
    assert!(r.header("content-type").is_some_and(|t| t.starts_with("text/plain")));
    assert!(r.header("content-disposition").is_some_and(|v| v.contains("%C3%A9t%C3%A9.txt")));

    let cdn = format!("https://127.0.0.1:{}/cdn/blob", fake.addr.port());
    fake.on_raw("GET", "/_matrix/federation/v1/media/download/redirected", move |_| {
        multipart_reply(&format!("Location: {cdn}"), b"")
    });
    fake.on_raw("GET", "/cdn/blob", |_| RawReply {
        status: 200,
        headers: vec![("content-type".into(), "application/octet-stream".into())],
        body: b"from the CDN".to_vec(),
    });
    let r = bob.get(&media("download", &origin, "redirected", "")).await;
    assert_eq!((r.status, r.body.as_slice()), (200, &b"from the CDN"[..]), "{}", r.text());

    fake.on_raw("GET", "/_matrix/media/v3/download/", |_| RawReply {
        status: 200,
        headers: vec![("content-type".into(), "text/plain".into())],
        body: b"legacy bytes".to_vec(),
    });
    let r = bob.get(&media("download", &origin, "oldserver", "")).await;
    assert_eq!((r.status, r.body.as_slice()), (200, &b"legacy bytes"[..]), "{}", r.text());
    let got = fake.received.lock().expect("received").clone();
    let legacy =
        got.iter().find(|r| r.uri.starts_with("/_matrix/media/v3/download/")).expect("legacy");
    assert!(legacy.uri.contains("allow_remote=false"), "{}", legacy.uri);
    assert!(legacy.uri.contains(&format!("/{origin}/oldserver")), "{}", legacy.uri);

    fake.on("GET", "/_matrix/federation/v1/media/download/gone", |_| {
        (404, json!({"errcode": "M_NOT_FOUND", "error": "gone"}))
    });
    bob.get(&media("download", &origin, "gone", "")).await.must_error(404, "M_NOT_FOUND");
    fake.on("GET", "/_matrix/federation/v1/media/download/junk", |_| {
        (200, json!({"not": "multipart"}))
    });
    bob.get(&media("download", &origin, "junk", "")).await.must_error(502, "M_UNKNOWN");
    let down = unreachable_server();
    bob.get(&media("download", &down, "x", "")).await.must_error(502, "M_UNKNOWN");
    bob.get(&media("download", "bad..server", "x", "")).await.must_error(400, "M_INVALID_PARAM");
    d.destroy().await;
}

/// Remote media over `max_upload_size` is refused (502 M_TOO_LARGE, as Synapse), and
/// `federation_domain_whitelist` refuses other origins before connecting (403).
#[tokio::test]
async fn test_remote_media_limits() {
    let fake = FakeServer::start().await;
    let yaml =
        format!("max_upload_size: 1K\nfederation_domain_whitelist: ['{}']\n", fake.server_name);
    let Some(d) = one_trusting(&yaml).await else { return };
    let bob = d.register_user(0, "bob").await;
    fake.on_raw("GET", "/_matrix/federation/v1/media/download/big", |_| {
        multipart_reply("Content-Type: application/octet-stream", &[7u8; 4096])
    });
    bob.get(&media("download", &fake.server_name, "big", "")).await.must_error(502, "M_TOO_LARGE");
    let other = FakeServer::start().await;
    bob.get(&media("download", &other.server_name, "x", "")).await.must_error(403, "M_FORBIDDEN");
    assert!(other.received.lock().expect("received").is_empty(), "not contacted");
    d.destroy().await;
}

/// A few megabytes, with near-boundaries inside, arrive byte for byte (the media part is
/// streamed into the store up to the closing boundary, not buffered whole).
#[tokio::test]
async fn test_remote_media_streamed_byte_for_byte() {
    let Some(d) = one_trusting("").await else { return };
    let bob = d.register_user(0, "bob").await;
    let fake = FakeServer::start().await;
    let mut bytes: Vec<u8> = (0..3_000_000u32).map(|i| (i * 7 % 251) as u8).collect();
    for at in [0, 65_535, 1_000_000, 2_999_000] {
        // Near misses only: the delimiter itself (CRLF, "--", boundary) may not occur in a
        // part (RFC 2046).
        bytes.splice(at..at, b"\r\n--BOUNDAR\r\n-BOUNDARY--BOUNDARY\r\n".iter().copied());
    }
    let sent = bytes.clone();
    fake.on_raw("GET", "/_matrix/federation/v1/media/download/big", move |_| {
        multipart_reply("Content-Type: application/octet-stream", &sent)
    });
    let r = bob.get(&media("download", &fake.server_name, "big", "")).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(r.body == bytes, "{} bytes back for {}", r.body.len(), bytes.len());
    d.destroy().await;
}
