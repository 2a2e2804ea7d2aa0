//! Other servers' media, fetched for local users and kept like uploads (by SHA-256 in the
//! store, metadata in `remote_media`): the authenticated federation endpoint first
//! (`/_matrix/federation/v1/media/download`, a `multipart/mixed` answer whose second part
//! is the bytes or a `Location` to fetch them from), then the legacy
//! `/_matrix/media/v3/download/...?allow_remote=false` for servers without it.

use std::time::Duration;

use bytes::{Bytes, BytesMut};
use futures_util::{Stream, StreamExt};
use http::{HeaderMap, StatusCode, header};
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use serde_json::Value;

use super::Stored;
use crate::app::App;
use crate::error::{Error, Result};
use crate::store::media::{self as db, RemoteRow};
use crate::store::now_ms;

/// The longest a fetch may take, redirect included.
const FETCH_TIMEOUT: Duration = Duration::from_secs(60);
/// The most read of a multipart answer before its media part starts (the JSON part), and
/// of an error answer.
const MULTIPART_HEAD_MAX: usize = 64 * 1024;
/// Bytes gathered before passing them on while looking for the closing boundary.
const READ_AHEAD: usize = 64 * 1024;

/// The media `origin` serves as `media_id`: from the cache, else fetched now (once, however
/// many requests want it at the same time), streamed into the store. Remote 404s are 404;
/// unreachable servers, errors and garbage are 502; more than `max_upload_size` is 502
/// `M_TOO_LARGE`.
pub async fn get(app: &App, origin: &str, media_id: &str) -> Result<RemoteRow> {
    if let Some(row) = cached(app, origin, media_id).await? {
        return Ok(row);
    }
    let _only_one = app.media.thumbnail_lock(&format!("remote:{origin}/{media_id}")).await?;
    if let Some(row) = cached(app, origin, media_id).await? {
        return Ok(row);
    }
    let (meta, stored) = tokio::time::timeout(FETCH_TIMEOUT, download(app, origin, media_id))
        .await
        .map_err(|_| Error::BadGateway(format!("Timed out fetching remote media from {origin}")))?
        .map_err(|e| match e {
            Error::TooLarge(_) => {
                Error::UpstreamTooLarge("Remote media is larger than max_upload_size".into())
            }
            e => e,
        })?;
    let row = RemoteRow {
        content_type: super::normalise_upload_type(meta.content_type.as_deref()),
        upload_name: meta.upload_name,
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

/// What the remote said about the bytes.
struct Meta {
    content_type: Option<String>,
    upload_name: Option<String>,
}

fn meta(headers: &HeaderMap) -> Meta {
    Meta {
        content_type: header_str(headers, header::CONTENT_TYPE).map(str::to_string),
        upload_name: header_str(headers, header::CONTENT_DISPOSITION).and_then(filename),
    }
}

async fn download(app: &App, origin: &str, media_id: &str) -> Result<(Meta, Stored)> {
    let path = format!("/_matrix/federation/v1/media/download/{media_id}?timeout_ms=20000");
    let resp = get_signed(app, origin, &path).await?;
    if resp.status().is_success() {
        return from_multipart(app, origin, resp).await;
    }
    let (status, body) = error_body(resp).await;
    if !endpoint_unknown(status, &body) {
        return Err(remote_error(origin, status));
    }
    let legacy = format!(
        "/_matrix/media/v3/download/{origin}/{media_id}?allow_remote=false&allow_redirect=true&timeout_ms=20000"
    );
    let resp = get_signed(app, origin, &legacy).await?;
    store_response(app, origin, resp).await
}

/// Store a plain (non-multipart) answer's body, with its headers' type and name.
async fn store_response(
    app: &App,
    origin: &str,
    resp: http::Response<Incoming>,
) -> Result<(Meta, Stored)> {
    if !resp.status().is_success() {
        return Err(remote_error(origin, resp.status()));
    }
    let (parts, body) = resp.into_parts();
    let stored = app.media.store_chunks(chunks(origin, body)).await?;
    Ok((meta(&parts.headers), stored))
}

/// The status and (at most 64 KiB of) the body of an error answer.
async fn error_body(resp: http::Response<Incoming>) -> (StatusCode, Bytes) {
    let status = resp.status();
    let body = Limited::new(resp.into_body(), MULTIPART_HEAD_MAX)
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    (status, body)
}

async fn get_signed(app: &App, origin: &str, path: &str) -> Result<http::Response<Incoming>> {
    let name = app.config.server_name.as_str();
    app.federation
        .get_stream(name, &app.signing_key, origin, path)
        .await
        .map_err(|e| transport_error(origin, e))
}

/// A body's chunks; a failed read is a transport error.
fn chunks(origin: &str, body: Incoming) -> impl Stream<Item = Result<Bytes>> {
    let origin = origin.to_string();
    super::body_chunks(body, "remote media")
        .map(move |c| c.map_err(|e| transport_error(&origin, e)))
}

/// A refused destination stays 403; anything else the transport met is 502.
fn transport_error(origin: &str, e: Error) -> Error {
    match e {
        Error::Forbidden(m) => Error::Forbidden(m),
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

/// The `boundary` of a `multipart/mixed` Content-Type.
fn boundary(content_type: &str) -> Option<String> {
    let mut params = content_type.split(';');
    if !params.next()?.trim().eq_ignore_ascii_case("multipart/mixed") {
        return None;
    }
    let b = params.find_map(|p| {
        let (k, v) = p.split_once('=')?;
        k.trim().eq_ignore_ascii_case("boundary").then(|| v.trim().trim_matches('"').to_string())
    })?;
    (!b.is_empty() && b.len() <= 70).then_some(b)
}

/// Read a multipart answer up to the media part's headers, then either follow its
/// `Location` or stream its bytes (up to the closing boundary) into the store.
async fn from_multipart(
    app: &App,
    origin: &str,
    resp: http::Response<Incoming>,
) -> Result<(Meta, Stored)> {
    let garbage = || Error::BadGateway(format!("{origin} answered garbage for its media"));
    let ct = header_str(resp.headers(), header::CONTENT_TYPE).unwrap_or("");
    let boundary = boundary(ct).ok_or_else(garbage)?;
    let mut body = std::pin::pin!(chunks(origin, resp.into_body()));
    let mut buf = BytesMut::new();
    let (headers, start) = loop {
        match media_part_head(&buf, &boundary).ok_or_else(garbage)? {
            Some(found) => break found,
            None if buf.len() > MULTIPART_HEAD_MAX => return Err(garbage()),
            None => match body.next().await {
                Some(chunk) => buf.extend_from_slice(&chunk?),
                None => return Err(garbage()),
            },
        }
    };
    let part_header =
        |name: &str| headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v);
    if let Some(location) = part_header("location") {
        let resp = app
            .federation
            .get_url_stream(location)
            .await
            .map_err(|e| transport_error(origin, e))?;
        return store_response(app, origin, resp).await;
    }
    let meta = Meta {
        content_type: part_header("content-type").cloned(),
        upload_name: part_header("content-disposition").and_then(|d| filename(d)),
    };
    let initial = buf.split_off(start);
    let bytes = until_delimiter(initial, body, format!("\r\n--{boundary}").into_bytes());
    let stored = app.media.store_chunks(bytes).await?;
    Ok((meta, stored))
}

fn find(hay: &[u8], needle: &[u8], from: usize) -> Option<usize> {
    hay.get(from..)?.windows(needle.len()).position(|w| w == needle).map(|i| i + from)
}

/// A part's headers and the offset of its first byte.
pub type PartHead = (Vec<(String, String)>, usize);

/// Where the second part (the media) of a multipart body starts: its headers and the
/// offset of its first byte. `Some(None)`: more bytes are needed; `None`: not multipart
/// as the spec's media answer has it (RFC 2046 framing, a JSON part, then the media).
pub fn media_part_head(body: &[u8], boundary: &str) -> Option<Option<PartHead>> {
    let delimiter = format!("--{boundary}");
    let next_delimiter = format!("\r\n--{boundary}");
    let mut pos = if body.starts_with(delimiter.as_bytes()) {
        delimiter.len()
    } else if body.len() < delimiter.len() {
        return Some(None);
    } else {
        match find(body, next_delimiter.as_bytes(), 0) {
            Some(i) => i + next_delimiter.len(),
            None => return Some(None),
        }
    };
    for part in 0.. {
        let Some(two) = body.get(pos..pos + 2) else { return Some(None) };
        if two == b"--" {
            return None; // the closing boundary before the media part
        }
        // Transport padding, then CRLF.
        while body.get(pos) == Some(&b' ') || body.get(pos) == Some(&b'\t') {
            pos += 1;
        }
        match body.get(pos..pos + 2) {
            None => return Some(None),
            Some(b"\r\n") => pos += 2,
            Some(_) => return None,
        }
        let (headers, start) = match body.get(pos..pos + 2) {
            None => return Some(None),
            Some(b"\r\n") => (vec![], pos + 2),
            Some(_) => {
                let Some(end) = find(body, b"\r\n\r\n", pos) else { return Some(None) };
                let text = std::str::from_utf8(&body[pos..end]).ok()?;
                let mut headers = vec![];
                for line in text.split("\r\n") {
                    let (k, v) = line.split_once(':')?;
                    headers.push((k.trim().to_string(), v.trim().to_string()));
                }
                (headers, end + 4)
            }
        };
        if part == 1 {
            return Some(Some((headers, start)));
        }
        let Some(end) = find(body, next_delimiter.as_bytes(), start) else { return Some(None) };
        pos = end + next_delimiter.len();
    }
    None
}

/// The bytes of `initial` and then `rest`, up to (not including) `delimiter`; a body that
/// ends before it is garbage. The last `delimiter.len() - 1` bytes are held back until it
/// is clear they are not the start of the delimiter.
fn until_delimiter(
    initial: BytesMut,
    rest: impl Stream<Item = Result<Bytes>> + Unpin,
    delimiter: Vec<u8>,
) -> impl Stream<Item = Result<Bytes>> {
    futures_util::stream::unfold(
        (initial, rest, delimiter, false),
        |(mut pending, mut rest, delimiter, done)| async move {
            if done {
                return None;
            }
            loop {
                if let Some(i) = find(&pending, &delimiter, 0) {
                    let out = pending.split_to(i).freeze();
                    return Some((Ok(out), (pending, rest, delimiter, true)));
                }
                let keep = delimiter.len() - 1;
                if pending.len() > keep + READ_AHEAD {
                    let out = pending.split_to(pending.len() - keep).freeze();
                    return Some((Ok(out), (pending, rest, delimiter, false)));
                }
                match rest.next().await {
                    Some(Ok(chunk)) => pending.extend_from_slice(&chunk),
                    Some(Err(e)) => return Some((Err(e), (pending, rest, delimiter, true))),
                    None => {
                        let e = Error::BadGateway("Remote media ended without its boundary".into());
                        return Some((Err(e), (pending, rest, delimiter, true)));
                    }
                }
            }
        },
    )
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

    const BODY: &[u8] = b"--abc\r\nContent-Type: application/json\r\n\r\n{}\r\n--abc\r\n\
        Content-Type: image/png\r\nContent-Disposition: inline; filename=a.png\r\n\r\n\
        \x89PNG\r\n--ab\r\n--abc--\r\n";

    #[test]
    fn multipart_heads() {
        assert_eq!(boundary("multipart/mixed; boundary=abc").as_deref(), Some("abc"));
        assert_eq!(boundary("Multipart/Mixed; boundary=\"abc\"").as_deref(), Some("abc"));
        assert_eq!(boundary("application/json"), None);
        assert_eq!(boundary("multipart/mixed"), None);
        let (headers, start) = media_part_head(BODY, "abc").expect("valid").expect("complete");
        assert_eq!(headers[0], ("Content-Type".into(), "image/png".into()));
        assert!(BODY[start..].starts_with(b"\x89PNG"));
        // Every prefix cut short asks for more; none is called garbage.
        let media_at = start;
        for cut in 0..media_at {
            assert_eq!(media_part_head(&BODY[..cut], "abc"), Some(None), "cut at {cut}");
        }
        let redirect =
            b"preamble\r\n--b\r\n\r\n{}\r\n--b\r\nLocation: https://x/y\r\n\r\n\r\n--b--";
        let (headers, _) = media_part_head(redirect, "b").expect("valid").expect("complete");
        assert_eq!(headers, vec![("Location".into(), "https://x/y".into())]);
        for bad in [&b"--abcgarbage"[..], b"--abc--\r\n", b"--abc\r\nno colon\r\n\r\n{}"] {
            assert_eq!(media_part_head(bad, "abc"), None, "{:?}", String::from_utf8_lossy(bad));
        }
    }

    async fn collect(chunks: Vec<&'static [u8]>) -> Result<Vec<u8>> {
        let initial = BytesMut::new();
        let rest = futures_util::stream::iter(
            chunks.into_iter().map(|c| Ok(Bytes::from_static(c))).collect::<Vec<_>>(),
        );
        let s = until_delimiter(initial, rest, b"\r\n--abc".to_vec());
        let parts: Vec<Result<Bytes>> = s.collect().await;
        let mut out = vec![];
        for p in parts {
            out.extend_from_slice(&p?);
        }
        Ok(out)
    }

    #[tokio::test]
    async fn media_bytes_stop_at_the_closing_boundary_however_chunked() {
        let (_, start) = media_part_head(BODY, "abc").expect("valid").expect("complete");
        let media = &BODY[start..];
        for split in 0..media.len() {
            let got = collect(vec![&media[..split], &media[split..]]).await.expect("ok");
            assert_eq!(got, b"\x89PNG\r\n--ab", "split at {split}");
        }
        let bytes: Vec<&'static [u8]> = media.chunks(1).collect();
        assert_eq!(collect(bytes).await.expect("ok"), b"\x89PNG\r\n--ab");
        let err = collect(vec![b"no boundary at all"]).await.expect_err("garbage");
        assert_eq!(err.status().as_u16(), 502);
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
