//! Media repository scenarios: uploads (plain and asynchronous), downloads and thumbnails
//! on the authenticated `/_matrix/client/v1/media` endpoints and the legacy
//! `/_matrix/media/v3` ones, `/config`, file names and `Content-Disposition`, the headers
//! that make serving user files safe, limits, bad input and a 100 MB streamed upload.
//! Named after the Complement tests they mirror (tests/csapi/apidoc_content_test.go,
//! media_async_uploads_test.go, media_misc_test.go, tests/media_*_test.go).
//!
//! Both Glia and Synapse (since 1.120, `enable_authenticated_media` on by default) serve
//! newly uploaded media only on the authenticated endpoints, so the scenarios download
//! through `/_matrix/client/v1/media` and check that the legacy download answers 404.
//! Complement's "over federation" cases need a second server reachable over federation;
//! they wait for Glia's federation.

mod async_upload;
mod bad_input;
mod config;
mod content;
mod filenames;
mod preview;
mod security;
mod streaming;
mod thumbnails;

use std::io::Cursor;

use glia_harness::client::encode_segment;
use glia_harness::{Client, Response};
use image::{DynamicImage, ImageFormat, Rgba, RgbaImage};
use serde_json::Value;

/// Complement's `data.MatrixPng` (279x129) and `data.LargePng` (1000x673).
pub const MATRIX_PNG: &[u8] = include_bytes!("../../../fixtures/media/matrix.png");
pub const LARGE_PNG: &[u8] = include_bytes!("../../../fixtures/media/large.png");

/// The CSP Synapse (and Glia) send with media.
pub const CSP_SANDBOX: &str = "sandbox";

/// A client per request: each scenario runs on its own tokio runtime, and a pooled
/// connection from a finished one would be dead (the external server is the same).
fn http() -> reqwest::Client {
    glia_harness::client::http_client(None)
}

/// Which family of endpoints to use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Api {
    /// `/_matrix/client/v1/media/*`, with the access token.
    Authed,
    /// `/_matrix/media/v3/*`, without one (as a browser following an old URL would).
    Legacy,
}

/// Send `method url` (`path_and_query` already encoded) with an optional body and
/// Content-Type; `auth` adds the client's access token.
pub async fn send(
    c: &Client,
    method: &str,
    path_and_query: &str,
    body: Option<reqwest::Body>,
    content_type: Option<&str>,
    auth: bool,
) -> Response {
    let url = format!("{}{path_and_query}", c.base_url);
    let method = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
    let what = format!("{method} {url}");
    let mut req = http().request(method, &url);
    if auth && let Some(t) = &c.access_token {
        req = req.bearer_auth(t);
    }
    if let Some(ct) = content_type {
        req = req.header("content-type", ct);
    }
    if let Some(b) = body {
        // Say the length even when it is 0 (hyper leaves it out then; Synapse requires it).
        if let Some(bytes) = b.as_bytes() {
            req = req.header("content-length", bytes.len());
        }
        req = req.body(b);
    }
    let resp = req.send().await.unwrap_or_else(|e| panic!("{what}: request failed: {e:?}"));
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let http_version = resp.version();
    let body =
        resp.bytes().await.unwrap_or_else(|e| panic!("{what}: reading body: {e:?}")).to_vec();
    Response { status, headers, body, what, http_version }
}

/// `?filename=...` (or nothing).
fn filename_query(filename: Option<&str>) -> String {
    filename.map(|f| format!("?filename={}", encode_segment(f))).unwrap_or_default()
}

/// `POST /_matrix/media/v3/upload`.
pub async fn upload(
    c: &Client,
    bytes: &[u8],
    filename: Option<&str>,
    content_type: Option<&str>,
) -> Response {
    let path = format!("/_matrix/media/v3/upload{}", filename_query(filename));
    send(c, "POST", &path, Some(bytes.to_vec().into()), content_type, true).await
}

/// Upload, requiring a 200; returns the `mxc://` URI.
pub async fn must_upload(
    c: &Client,
    bytes: &[u8],
    filename: Option<&str>,
    content_type: &str,
) -> String {
    let body = upload(c, bytes, filename, Some(content_type)).await.must_status(200);
    let uri = body["content_uri"].as_str().unwrap_or_else(|| panic!("no content_uri in {body}"));
    assert!(uri.starts_with("mxc://"), "not an mxc URI: {body}");
    uri.to_string()
}

/// `mxc://server/id` -> (server, id).
pub fn split_mxc(mxc: &str) -> (String, String) {
    let rest = mxc.strip_prefix("mxc://").unwrap_or_else(|| panic!("not an mxc URI: {mxc}"));
    let (server, id) = rest.split_once('/').unwrap_or_else(|| panic!("no media ID in {mxc}"));
    (server.to_string(), id.to_string())
}

fn media_path(api: Api, what: &str, server: &str, media_id: &str) -> String {
    let base = match api {
        Api::Authed => "/_matrix/client/v1/media",
        Api::Legacy => "/_matrix/media/v3",
    };
    format!("{base}/{what}/{}/{}", encode_segment(server), encode_segment(media_id))
}

/// `GET .../download/{server}/{id}[/{fileName}][?query]`.
pub async fn download(
    c: &Client,
    mxc: &str,
    api: Api,
    file_name: Option<&str>,
    query: &str,
) -> Response {
    let (server, id) = split_mxc(mxc);
    download_raw(c, &server, &id, api, file_name, query).await
}

/// Like [`download`] with the server name and media ID given apart (for bad ones).
pub async fn download_raw(
    c: &Client,
    server: &str,
    media_id: &str,
    api: Api,
    file_name: Option<&str>,
    query: &str,
) -> Response {
    let mut path = media_path(api, "download", server, media_id);
    if let Some(f) = file_name {
        path.push('/');
        path.push_str(&encode_segment(f));
    }
    path.push_str(query);
    send(c, "GET", &path, None, None, api == Api::Authed).await
}

/// Download through the authenticated endpoint, requiring a 200.
pub async fn must_download(c: &Client, mxc: &str) -> Response {
    let r = download(c, mxc, Api::Authed, None, "").await;
    assert_eq!(r.status, 200, "{}: {}", r.what, r.text());
    r
}

/// `GET .../thumbnail/{server}/{id}?width=&height=&method=`.
pub async fn thumbnail(c: &Client, mxc: &str, api: Api, query: &str) -> Response {
    let (server, id) = split_mxc(mxc);
    let path = format!("{}{query}", media_path(api, "thumbnail", &server, &id));
    send(c, "GET", &path, None, None, api == Api::Authed).await
}

/// `POST /_matrix/media/v1/create`.
pub async fn create_media(c: &Client) -> Response {
    send(
        c,
        "POST",
        "/_matrix/media/v1/create",
        Some(b"{}".to_vec().into()),
        Some("application/json"),
        true,
    )
    .await
}

/// Create a media ID, requiring a 200; returns the whole body.
pub async fn must_create_media(c: &Client) -> Value {
    let body = create_media(c).await.must_status(200);
    let uri = body["content_uri"].as_str().unwrap_or_else(|| panic!("no content_uri in {body}"));
    assert!(uri.starts_with("mxc://"), "{body}");
    body
}

/// `PUT /_matrix/media/v3/upload/{server}/{id}`.
pub async fn put_media(
    c: &Client,
    mxc: &str,
    bytes: &[u8],
    filename: Option<&str>,
    content_type: Option<&str>,
) -> Response {
    let (server, id) = split_mxc(mxc);
    let path = format!(
        "/_matrix/media/v3/upload/{}/{}{}",
        encode_segment(&server),
        encode_segment(&id),
        filename_query(filename)
    );
    send(c, "PUT", &path, Some(bytes.to_vec().into()), content_type, true).await
}

/// The `type/subtype` of a response's Content-Type, lower-cased.
pub fn mime(r: &Response) -> String {
    r.header("content-type")
        .unwrap_or("")
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase()
}

/// A Content-Disposition header as (disposition, filename), the way Go's
/// `mime.ParseMediaType` reads it for Complement: `filename*=utf-8''...` (RFC 5987,
/// percent-decoded) wins over `filename=` (a token or a quoted string).
pub fn disposition(r: &Response) -> (String, Option<String>) {
    let h = r
        .header("content-disposition")
        .unwrap_or_else(|| panic!("{}: no Content-Disposition", r.what));
    parse_disposition(h)
}

pub fn parse_disposition(h: &str) -> (String, Option<String>) {
    let mut parts = split_params(h).into_iter();
    let kind = parts.next().unwrap_or_default().trim().to_ascii_lowercase();
    let (mut plain, mut extended) = (None, None);
    for p in parts {
        let Some((k, v)) = p.split_once('=') else { continue };
        let (k, v) = (k.trim().to_ascii_lowercase(), v.trim());
        if k == "filename*" {
            let (charset, rest) =
                v.split_once('\'').unwrap_or_else(|| panic!("bad filename* in {h}"));
            assert!(charset.eq_ignore_ascii_case("utf-8"), "filename* charset {charset} in {h}");
            let (_lang, value) =
                rest.split_once('\'').unwrap_or_else(|| panic!("bad filename* in {h}"));
            extended = Some(percent_decode(value));
        } else if k == "filename" {
            plain = Some(match v.strip_prefix('"').and_then(|v| v.strip_suffix('"')) {
                Some(q) => q.replace("\\\"", "\"").replace("\\\\", "\\"),
                None => v.to_string(),
            });
        }
    }
    (kind, extended.or(plain))
}

/// Split on `;` outside quoted strings.
fn split_params(h: &str) -> Vec<String> {
    let (mut out, mut cur, mut quoted, mut escaped) = (vec![], String::new(), false, false);
    for ch in h.chars() {
        match ch {
            _ if escaped => {
                escaped = false;
                cur.push(ch);
            }
            '\\' if quoted => {
                escaped = true;
                cur.push(ch);
            }
            '"' => {
                quoted = !quoted;
                cur.push(ch);
            }
            ';' if !quoted => out.push(std::mem::take(&mut cur)),
            _ => cur.push(ch),
        }
    }
    out.push(cur);
    out
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%'
            && let Some(v) = s.get(i + 1..i + 3).and_then(|h| u8::from_str_radix(h, 16).ok())
        {
            out.push(v);
            i += 3;
            continue;
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8(out).unwrap_or_else(|e| panic!("filename* is not UTF-8: {e}"))
}

/// An image of `w` x `h` in `format`, with some detail so encoders do real work.
pub fn image_bytes(w: u32, h: u32, format: ImageFormat) -> Vec<u8> {
    let img = RgbaImage::from_fn(w, h, |x, y| {
        Rgba([(x * 255 / w.max(1)) as u8, (y * 255 / h.max(1)) as u8, ((x ^ y) & 0xff) as u8, 255])
    });
    let img = DynamicImage::ImageRgba8(img);
    let img =
        if format == ImageFormat::Jpeg { DynamicImage::ImageRgb8(img.to_rgb8()) } else { img };
    let mut out = Cursor::new(Vec::new());
    img.write_to(&mut out, format).expect("encode test image");
    out.into_inner()
}

/// Decode a thumbnail (as Complement does with Go's png/jpeg packages): its dimensions.
#[track_caller]
pub fn decode_image(r: &Response) -> (u32, u32) {
    let m = mime(r);
    assert!(m == "image/png" || m == "image/jpeg", "{}: unexpected thumbnail type {m}", r.what);
    let format = if m == "image/png" { ImageFormat::Png } else { ImageFormat::Jpeg };
    let img = image::load_from_memory_with_format(&r.body, format)
        .unwrap_or_else(|e| panic!("{}: thumbnail does not decode as {m}: {e}", r.what));
    (img.width(), img.height())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dispositions_parse_like_go() {
        assert_eq!(parse_disposition("inline"), ("inline".into(), None));
        assert_eq!(
            parse_disposition("inline; filename=a.png"),
            ("inline".into(), Some("a.png".into()))
        );
        assert_eq!(
            parse_disposition("attachment; filename=\"a;b \\\"c\\\"\""),
            ("attachment".into(), Some("a;b \"c\"".into()))
        );
        assert_eq!(
            parse_disposition("inline; filename=x; filename*=utf-8''%F0%9F%90%94"),
            ("inline".into(), Some("\u{1F414}".into()))
        );
    }
}
