//! Other servers' media, fetched for local users and kept like uploads (by SHA-256 in the
//! store, metadata in `remote_media`): the authenticated federation endpoint first
//! (`/_matrix/federation/v1/media/download`, a `multipart/mixed` answer whose second part
//! is the bytes or a `Location` to fetch them from), then the legacy
//! `/_matrix/media/v3/download/...?allow_remote=false` for servers without it.

use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, StatusCode, header};
use serde_json::Value;

use crate::app::App;
use crate::error::{Error, Result};
use crate::store::media::{self as db, RemoteRow};
use crate::store::now_ms;

/// The longest a fetch may take, redirect included.
const FETCH_TIMEOUT: Duration = Duration::from_secs(60);
/// Room for the multipart framing and JSON part around the bytes.
const MULTIPART_SLACK: usize = 64 * 1024;

/// The media `origin` serves as `media_id`: from the cache, else fetched now (once, however
/// many requests want it at the same time). Remote 404s are 404; unreachable servers,
/// errors and garbage are 502.
pub async fn get(app: &App, origin: &str, media_id: &str) -> Result<RemoteRow> {
    if let Some(row) = cached(app, origin, media_id).await? {
        return Ok(row);
    }
    let _only_one = app.media.thumbnail_lock(&format!("remote:{origin}/{media_id}")).await?;
    if let Some(row) = cached(app, origin, media_id).await? {
        return Ok(row);
    }
    let fetched =
        tokio::time::timeout(FETCH_TIMEOUT, download(app, origin, media_id)).await.map_err(
            |_| Error::BadGateway(format!("Timed out fetching remote media from {origin}")),
        )??;
    let stored = app.media.store_bytes(&fetched.bytes).await?;
    let row = RemoteRow {
        content_type: super::normalise_upload_type(fetched.content_type.as_deref()),
        upload_name: fetched.upload_name,
        length: stored.length,
        sha256: stored.sha256,
    };
    let (o, id, r) = (origin.to_string(), media_id.to_string(), row.clone());
    app.db.write(move |c| db::insert_remote(c, &o, &id, &r, now_ms())).await?;
    tracing::info!(%origin, %media_id, length = row.length, "remote media cached");
    Ok(row)
}

async fn cached(app: &App, origin: &str, media_id: &str) -> Result<Option<RemoteRow>> {
    let (o, id) = (origin.to_string(), media_id.to_string());
    app.db.read(move |c| db::remote(c, &o, &id)).await
}

struct Fetched {
    content_type: Option<String>,
    upload_name: Option<String>,
    bytes: Bytes,
}

async fn download(app: &App, origin: &str, media_id: &str) -> Result<Fetched> {
    let limit = app.media.config.max_upload_size as usize;
    let path = format!("/_matrix/federation/v1/media/download/{media_id}?timeout_ms=20000");
    let (status, headers, body) = get_signed(app, origin, &path, limit + MULTIPART_SLACK).await?;
    if status.is_success() {
        return from_multipart(app, origin, &headers, &body, limit).await;
    }
    if !endpoint_unknown(status, &body) {
        return Err(remote_error(origin, status));
    }
    let legacy = format!(
        "/_matrix/media/v3/download/{origin}/{media_id}?allow_remote=false&allow_redirect=true&timeout_ms=20000"
    );
    let (status, headers, body) = get_signed(app, origin, &legacy, limit).await?;
    if !status.is_success() {
        return Err(remote_error(origin, status));
    }
    Ok(fetched(&headers, body))
}

async fn get_signed(
    app: &App,
    origin: &str,
    path: &str,
    limit: usize,
) -> Result<(StatusCode, HeaderMap, Bytes)> {
    let name = app.config.server_name.as_str();
    app.federation
        .get_bytes(name, &app.signing_key, origin, path, limit)
        .await
        .map_err(|e| transport_error(origin, e))
}

/// A refused destination stays 403; a body over the limit is 502 `M_TOO_LARGE` (as
/// Synapse); anything else the transport met is 502.
fn transport_error(origin: &str, e: Error) -> Error {
    match e {
        Error::Forbidden(m) => Error::Forbidden(m),
        e if e.to_string().contains("length limit exceeded") => {
            Error::UpstreamTooLarge("Remote media is larger than max_upload_size".into())
        }
        e => {
            tracing::info!(%origin, error = %e, "fetching remote media failed");
            Error::BadGateway(format!("Failed to fetch remote media from {origin}"))
        }
    }
}

fn remote_error(origin: &str, status: StatusCode) -> Error {
    if status == StatusCode::NOT_FOUND {
        Error::NotFound("Media not found".into())
    } else {
        Error::BadGateway(format!("{origin} answered {status} for its media"))
    }
}

/// Whether the answer means "no such endpoint" (an older server): then the legacy
/// endpoint is tried.
fn endpoint_unknown(status: StatusCode, body: &[u8]) -> bool {
    let errcode = serde_json::from_slice::<Value>(body)
        .ok()
        .and_then(|v| v["errcode"].as_str().map(str::to_string));
    matches!(
        (status.as_u16(), errcode.as_deref()),
        (405, _) | (400 | 404, Some("M_UNRECOGNIZED")) | (404, None)
    )
}

fn header_str(h: &HeaderMap, name: header::HeaderName) -> Option<&str> {
    h.get(name).and_then(|v| v.to_str().ok())
}

fn fetched(headers: &HeaderMap, bytes: Bytes) -> Fetched {
    Fetched {
        content_type: header_str(headers, header::CONTENT_TYPE).map(str::to_string),
        upload_name: header_str(headers, header::CONTENT_DISPOSITION).and_then(filename),
        bytes,
    }
}

async fn from_multipart(
    app: &App,
    origin: &str,
    headers: &HeaderMap,
    body: &Bytes,
    limit: usize,
) -> Result<Fetched> {
    let garbage = || Error::BadGateway(format!("{origin} answered garbage for its media"));
    let ct = header_str(headers, header::CONTENT_TYPE).ok_or_else(garbage)?;
    let parts = parse_multipart(ct, body).ok_or_else(garbage)?;
    let media = parts.get(1).ok_or_else(garbage)?;
    if let Some(location) = media.header("location") {
        let (status, headers, bytes) = app
            .federation
            .get_url(location, limit)
            .await
            .map_err(|e| transport_error(origin, e))?;
        if !status.is_success() {
            return Err(remote_error(origin, status));
        }
        return Ok(fetched(&headers, bytes));
    }
    if media.body.len() > limit {
        return Err(Error::UpstreamTooLarge("Remote media is larger than max_upload_size".into()));
    }
    Ok(Fetched {
        content_type: media.header("content-type").map(str::to_string),
        upload_name: media.header("content-disposition").and_then(filename),
        bytes: body.slice_ref(media.body),
    })
}

/// One part of a multipart body.
#[derive(Debug)]
pub struct Part<'a> {
    pub headers: Vec<(String, String)>,
    pub body: &'a [u8],
}

impl Part<'_> {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

fn find(hay: &[u8], needle: &[u8], from: usize) -> Option<usize> {
    hay.get(from..)?.windows(needle.len()).position(|w| w == needle).map(|i| i + from)
}

/// The parts of a `multipart/mixed` body (RFC 2046), or `None` if it is not one.
pub fn parse_multipart<'a>(content_type: &str, body: &'a [u8]) -> Option<Vec<Part<'a>>> {
    let mut params = content_type.split(';');
    if !params.next()?.trim().eq_ignore_ascii_case("multipart/mixed") {
        return None;
    }
    let boundary = params.find_map(|p| {
        let (k, v) = p.split_once('=')?;
        k.trim().eq_ignore_ascii_case("boundary").then(|| v.trim().trim_matches('"').to_string())
    })?;
    if boundary.is_empty() || boundary.len() > 70 {
        return None;
    }
    let delimiter = format!("--{boundary}");
    let next_delimiter = format!("\r\n--{boundary}");
    let mut pos = if body.starts_with(delimiter.as_bytes()) {
        delimiter.len()
    } else {
        find(body, next_delimiter.as_bytes(), 0)? + next_delimiter.len()
    };
    let mut parts = vec![];
    loop {
        if body.get(pos..pos + 2)? == b"--" {
            return Some(parts);
        }
        // Transport padding, then CRLF.
        while body.get(pos) == Some(&b' ') || body.get(pos) == Some(&b'\t') {
            pos += 1;
        }
        if body.get(pos..pos + 2)? != b"\r\n" {
            return None;
        }
        pos += 2;
        let (headers, body_start) = if body.get(pos..pos + 2)? == b"\r\n" {
            (vec![], pos + 2)
        } else {
            let end = find(body, b"\r\n\r\n", pos)?;
            let text = std::str::from_utf8(&body[pos..end]).ok()?;
            let mut headers = vec![];
            for line in text.split("\r\n") {
                let (k, v) = line.split_once(':')?;
                headers.push((k.trim().to_string(), v.trim().to_string()));
            }
            (headers, end + 4)
        };
        let end = find(body, next_delimiter.as_bytes(), body_start)?;
        parts.push(Part { headers, body: &body[body_start..end] });
        pos = end + next_delimiter.len();
    }
}

/// The file name of a `Content-Disposition` value (`filename*=utf-8''...` preferred).
pub fn filename(disposition: &str) -> Option<String> {
    let params: Vec<(String, &str)> = disposition
        .split(';')
        .skip(1)
        .filter_map(|p| p.split_once('='))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim()))
        .collect();
    if let Some((_, v)) = params.iter().find(|(k, _)| k == "filename*") {
        let (charset, rest) = v.split_once('\'')?;
        let (_, encoded) = rest.split_once('\'')?;
        if charset.eq_ignore_ascii_case("utf-8") {
            let name = percent_encoding::percent_decode_str(encoded).decode_utf8().ok()?;
            return Some(name.into_owned()).filter(|n| !n.is_empty());
        }
    }
    let (_, v) = params.iter().find(|(k, _)| k == "filename")?;
    Some(v.trim_matches('"').to_string()).filter(|n| !n.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn multipart_bodies() {
        let body = b"--abc\r\nContent-Type: application/json\r\n\r\n{}\r\n--abc\r\n\
                     Content-Type: image/png\r\nContent-Disposition: inline; filename=a.png\r\n\r\n\
                     \x89PNG\r\n--ab\r\n--abc--\r\n";
        let parts = parse_multipart("multipart/mixed; boundary=abc", body).expect("parts");
        assert_eq!(parts.len(), 2);
        assert_eq!(parts[0].body, b"{}");
        assert_eq!(parts[1].header("content-type"), Some("image/png"));
        assert_eq!(parts[1].body, b"\x89PNG\r\n--ab", "bytes that look like boundaries stay");
        let quoted = parse_multipart("Multipart/Mixed; boundary=\"abc\"", body).expect("quoted");
        assert_eq!(quoted.len(), 2);
        let redirect =
            b"preamble\r\n--b\r\n\r\n{}\r\n--b\r\nLocation: https://x/y\r\n\r\n\r\n--b--";
        let parts = parse_multipart("multipart/mixed; boundary=b", redirect).expect("parts");
        assert_eq!(parts[1].header("Location"), Some("https://x/y"));
        assert!(parts[0].headers.is_empty());
        for (ct, bad) in [
            ("application/json", &body[..]),
            ("multipart/mixed", &body[..]),
            ("multipart/mixed; boundary=zzz", &body[..]),
            ("multipart/mixed; boundary=abc", &b"--abc\r\nContent-Type: x\r\n\r\nunterminated"[..]),
            ("multipart/mixed; boundary=abc", &b"--abcgarbage"[..]),
            ("multipart/mixed; boundary=abc", &b""[..]),
        ] {
            assert!(parse_multipart(ct, bad).is_none(), "{ct}: {:?}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn file_names_from_content_disposition() {
        assert_eq!(filename("inline; filename=a.png").as_deref(), Some("a.png"));
        assert_eq!(filename("attachment; filename=\"a b.txt\"").as_deref(), Some("a b.txt"));
        assert_eq!(
            filename("inline; filename*=utf-8''%F0%9F%90%94.png").as_deref(),
            Some("\u{1F414}.png")
        );
        assert_eq!(filename("inline"), None);
        assert_eq!(filename("inline; filename="), None);
    }

    #[test]
    fn unknown_endpoints_fall_back() {
        let unrecognized = br#"{"errcode":"M_UNRECOGNIZED","error":"x"}"#;
        let not_found = br#"{"errcode":"M_NOT_FOUND","error":"x"}"#;
        assert!(endpoint_unknown(StatusCode::NOT_FOUND, unrecognized));
        assert!(endpoint_unknown(StatusCode::BAD_REQUEST, unrecognized));
        assert!(endpoint_unknown(StatusCode::METHOD_NOT_ALLOWED, b""));
        assert!(endpoint_unknown(StatusCode::NOT_FOUND, b"<html>"));
        assert!(!endpoint_unknown(StatusCode::NOT_FOUND, not_found));
        assert!(!endpoint_unknown(StatusCode::BAD_GATEWAY, unrecognized));
    }
}
