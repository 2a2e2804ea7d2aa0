//! The media repository: content-addressed files under `media_store_path`, metadata in
//! SQLite (`store::media`), thumbnails made once and kept, and the rules for serving
//! uploaded bytes to browsers safely.
//!
//! Layout of `media_store_path`:
//! - `content/ab/cd/abcd…` — every stored blob (uploads and thumbnails), named by the
//!   hex SHA-256 of its bytes, so identical uploads share one file;
//! - `tmp/` — uploads in progress; a body streams there (hashed as it is written, never
//!   held whole in memory), is fsynced and then renamed into `content/`. Whatever is
//!   left in `tmp/` at start-up is from an interrupted upload and is removed.

pub mod preview;
pub mod remote;
pub mod thumbnail;

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use futures_util::StreamExt;
use http_body_util::{BodyExt, StreamBody};
use hyper::body::{Frame, Incoming};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::{Notify, Semaphore};

use crate::config::Config;
use crate::error::{Error, Result};
use crate::http::response::Body;

/// Media settings. `max_upload_size`, `media_store_path` and the URL preview keys
/// (`url_preview_enabled`, `url_preview_ip_range_blacklist` / `_whitelist`,
/// `url_preview_url_blacklist`, `max_spider_size`) come from the config file; the rest are
/// Synapse's defaults until the config grows their keys (`unused_expiration_time`,
/// `max_pending_media_uploads`, `enable_authenticated_media`).
#[derive(Debug, Clone)]
pub struct MediaConfig {
    pub store_path: PathBuf,
    pub max_upload_size: u64,
    /// How long a media ID from `/create` waits for its upload (`unused_expiration_time`).
    pub unused_expiration_ms: i64,
    /// Pending `/create` IDs one user may hold (`max_pending_media_uploads`).
    pub max_pending_uploads: u64,
    /// New uploads are served only on the authenticated endpoints.
    pub authenticated_media: bool,
    pub url_preview_enabled: bool,
    pub preview_policy: preview::PreviewPolicy,
    pub url_preview_url_blacklist: Vec<preview::UrlRule>,
    /// `max_spider_size`: the most bytes read of a previewed URL.
    pub max_spider_size: u64,
}

impl MediaConfig {
    pub fn from_config(c: &Config) -> MediaConfig {
        MediaConfig {
            store_path: c.media_store_path.clone(),
            max_upload_size: c.max_upload_size,
            unused_expiration_ms: 24 * 60 * 60 * 1000,
            max_pending_uploads: 5,
            authenticated_media: true,
            url_preview_enabled: c.url_preview.enabled,
            preview_policy: preview::PreviewPolicy {
                blocklist: c
                    .url_preview
                    .ip_range_blacklist
                    .clone()
                    .unwrap_or_else(|| preview::PreviewPolicy::default().blocklist),
                allowlist: c.url_preview.ip_range_whitelist.clone(),
            },
            url_preview_url_blacklist: c.url_preview.url_blacklist.clone(),
            max_spider_size: c.url_preview.max_spider_size,
        }
    }
}

/// Thumbnails made at the same time (each may hold a decoded image of up to
/// `thumbnail::MAX_PIXELS` pixels).
const THUMBNAIL_WORKERS: usize = 2;
/// Distinct cached thumbnails per media item: `crop` requests keep the requested aspect
/// ratio, so their variety is up to clients; past this, thumbnails are made and served
/// without being kept.
pub const MAX_CACHED_THUMBNAILS: u64 = 24;
/// Bytes per read when streaming a file out.
const READ_CHUNK: usize = 128 * 1024;
/// Write buffer when streaming an upload to disk.
const WRITE_BUFFER: usize = 256 * 1024;

pub struct Media {
    pub config: MediaConfig,
    /// URL previews: the fetcher and its cache.
    pub previewer: preview::Previewer,
    content_dir: PathBuf,
    tmp_dir: PathBuf,
    /// Woken whenever an asynchronous upload completes, for downloads waiting on it.
    uploaded: Notify,
    /// Downloads parked until an asynchronous upload arrives.
    pub waiting: crate::notifier::Waiting,
    /// Media IDs with a `PUT` upload in progress (a second one is 409).
    uploading: Mutex<HashSet<String>>,
    thumbnail_permits: Semaphore,
    /// One generation per thumbnail at a time; later requests wait and then find it cached.
    thumbnail_locks: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

/// A blob in the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stored {
    pub sha256: String,
    pub length: u64,
}

impl Media {
    /// Create the store's directories and clear interrupted uploads.
    pub fn open(config: MediaConfig) -> Result<Media> {
        let content_dir = config.store_path.join("content");
        let tmp_dir = config.store_path.join("tmp");
        for d in [&content_dir, &tmp_dir] {
            std::fs::create_dir_all(d)
                .map_err(|e| Error::internal(format!("creating {}: {e}", d.display())))?;
        }
        if let Ok(entries) = std::fs::read_dir(&tmp_dir) {
            for e in entries.flatten() {
                let _ = std::fs::remove_file(e.path());
            }
        }
        let previewer = preview::Previewer::new(
            config.preview_policy.clone(),
            config.url_preview_url_blacklist.clone(),
            config.max_spider_size,
        );
        Ok(Media {
            previewer,
            config,
            content_dir,
            tmp_dir,
            uploaded: Notify::new(),
            waiting: Default::default(),
            uploading: Mutex::new(HashSet::new()),
            thumbnail_permits: Semaphore::new(THUMBNAIL_WORKERS),
            thumbnail_locks: Mutex::new(HashMap::new()),
        })
    }

    /// Where the blob with this hash lives. `sha256` must be 64 hex digits.
    pub fn path_of(&self, sha256: &str) -> Result<PathBuf> {
        if sha256.len() != 64 || !sha256.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(Error::internal(format!("not a SHA-256: {sha256:?}")));
        }
        Ok(self.content_dir.join(&sha256[..2]).join(&sha256[2..4]).join(sha256))
    }

    /// Stream a request body into the store: at most `config.max_upload_size` bytes
    /// (413 `M_TOO_LARGE` as soon as it is exceeded), hashed while written, fsynced,
    /// then renamed into place under its hash (or dropped if that blob exists already).
    pub async fn store_stream(&self, body: Incoming) -> Result<Stored> {
        self.store_chunks(body_chunks(body, "the upload")).await
    }

    /// [`Media::store_stream`] for any stream of chunks (remote media).
    pub async fn store_chunks(
        &self,
        chunks: impl futures_util::Stream<Item = Result<Bytes>>,
    ) -> Result<Stored> {
        let mut chunks = std::pin::pin!(chunks);
        let limit = self.config.max_upload_size;
        let tmp = TempFile(self.tmp_dir.join(crate::users::random_string(32)));
        let file = tokio::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&tmp.0)
            .await
            .map_err(|e| Error::internal(format!("creating {}: {e}", tmp.0.display())))?;
        let mut out = tokio::io::BufWriter::with_capacity(WRITE_BUFFER, file);
        let mut hasher = Sha256::new();
        let mut length = 0u64;
        while let Some(data) = chunks.next().await {
            let data = data?;
            length += data.len() as u64;
            if length > limit {
                return Err(too_large(limit));
            }
            hasher.update(&data);
            out.write_all(&data).await.map_err(write_err)?;
        }
        out.flush().await.map_err(write_err)?;
        let file = out.into_inner();
        file.sync_all().await.map_err(write_err)?;
        drop(file);
        let sha256 = hex::encode(hasher.finalize());
        self.put_file(tmp, &sha256).await?;
        Ok(Stored { sha256, length })
    }

    /// Store bytes already in memory (thumbnails).
    pub async fn store_bytes(&self, bytes: &[u8]) -> Result<Stored> {
        let sha256 = hex::encode(Sha256::digest(bytes));
        let dest = self.path_of(&sha256)?;
        if tokio::fs::try_exists(&dest).await.unwrap_or(false) {
            return Ok(Stored { sha256, length: bytes.len() as u64 });
        }
        let tmp = TempFile(self.tmp_dir.join(crate::users::random_string(32)));
        let mut f = tokio::fs::File::create(&tmp.0).await.map_err(write_err)?;
        f.write_all(bytes).await.map_err(write_err)?;
        f.sync_all().await.map_err(write_err)?;
        drop(f);
        self.put_file(tmp, &sha256).await?;
        Ok(Stored { sha256, length: bytes.len() as u64 })
    }

    /// Move a finished temp file to its content address, durably.
    async fn put_file(&self, tmp: TempFile, sha256: &str) -> Result<()> {
        let dest = self.path_of(sha256)?;
        let dir = dest.parent().map(Path::to_path_buf).unwrap_or_default();
        if tokio::fs::try_exists(&dest).await.unwrap_or(false) {
            // Deduplicated: the same bytes are stored already; `tmp` is removed on drop.
            return Ok(());
        }
        tokio::fs::create_dir_all(&dir).await.map_err(write_err)?;
        tokio::fs::rename(&tmp.0, &dest).await.map_err(write_err)?;
        std::mem::forget(tmp);
        // The rename itself must survive power loss before the upload is acknowledged.
        let d = dir.clone();
        tokio::task::spawn_blocking(move || std::fs::File::open(&d).and_then(|f| f.sync_all()))
            .await
            .map_err(Error::internal)?
            .map_err(write_err)?;
        Ok(())
    }

    /// A response body streaming the blob from disk, and its length.
    pub async fn open_blob(&self, sha256: &str) -> Result<(Body, u64)> {
        let path = self.path_of(sha256)?;
        let file = tokio::fs::File::open(&path).await.map_err(|e| {
            tracing::error!(path = %path.display(), error = %e, "media file missing");
            Error::NotFound("Media not found".into())
        })?;
        let len = file.metadata().await.map_err(Error::internal)?.len();
        Ok((file_body(file, len), len))
    }

    /// Mark `media_id` as being uploaded; false if another upload to it is running.
    pub fn begin_upload(&self, media_id: &str) -> bool {
        self.uploading.lock().map(|mut s| s.insert(media_id.to_string())).unwrap_or(false)
    }

    pub fn end_upload(&self, media_id: &str) {
        if let Ok(mut s) = self.uploading.lock() {
            s.remove(media_id);
        }
    }

    /// Wake downloads waiting for an asynchronous upload.
    pub fn notify_uploaded(&self) {
        self.uploaded.notify_waiters();
    }

    /// A future that resolves at the next completed upload. Create it *before* checking
    /// the database, so an upload finishing in between is not missed.
    pub fn upload_notified(&self) -> tokio::sync::futures::Notified<'_> {
        self.uploaded.notified()
    }

    /// The lock for one thumbnail (`key`): whoever holds it makes the thumbnail or finds it
    /// made; the others wait, then find it cached.
    pub async fn thumbnail_lock(&self, key: &str) -> Result<ThumbnailGuard> {
        let lock = {
            let mut locks = self.thumbnail_locks.lock().map_err(|_| Error::internal("poisoned"))?;
            locks.retain(|_, l| Arc::strong_count(l) > 1);
            locks.entry(key.to_string()).or_default().clone()
        };
        let guard = lock.lock_owned().await;
        Ok(ThumbnailGuard { _key: guard })
    }

    /// One of the few slots for decoding images (each may hold a large decoded image).
    pub async fn thumbnail_permit(&self) -> Result<tokio::sync::SemaphorePermit<'_>> {
        self.thumbnail_permits.acquire().await.map_err(Error::internal)
    }
}

/// Held while one thumbnail is looked up or made.
pub struct ThumbnailGuard {
    _key: tokio::sync::OwnedMutexGuard<()>,
}

/// The data of a body as a stream of chunks; a failed read is `M_UNKNOWN` naming `what`.
pub fn body_chunks(
    body: Incoming,
    what: &'static str,
) -> impl futures_util::Stream<Item = Result<Bytes>> {
    http_body_util::BodyStream::new(body).filter_map(move |frame| async move {
        match frame {
            Ok(f) => f.into_data().ok().map(Ok),
            Err(e) => Some(Err(Error::Unknown(format!("reading {what}: {e}")))),
        }
    })
}

/// A temp file removed when dropped (an upload that failed, was too large or was a
/// duplicate), unless it was moved into place and forgotten.
struct TempFile(PathBuf);

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

fn too_large(limit: u64) -> Error {
    Error::TooLarge(format!("Upload request body is too large (the limit is {limit} bytes)"))
}

/// 413 before reading a body whose declared length is over the limit.
pub fn check_declared_length(headers: &http::HeaderMap, limit: u64) -> Result<()> {
    if let Some(len) = headers.get(http::header::CONTENT_LENGTH)
        && len.to_str().ok().and_then(|s| s.trim().parse::<u64>().ok()).is_some_and(|n| n > limit)
    {
        return Err(too_large(limit));
    }
    Ok(())
}

fn write_err(e: std::io::Error) -> Error {
    Error::internal(format!("writing media: {e}"))
}

/// A body that reads `len` bytes of `file` in chunks as the connection takes them.
fn file_body(file: tokio::fs::File, len: u64) -> Body {
    let stream = futures_util::stream::unfold((file, len), |(mut file, left)| async move {
        if left == 0 {
            return None;
        }
        let mut buf = BytesMut::with_capacity(READ_CHUNK.min(left as usize));
        match file.read_buf(&mut buf).await {
            Ok(0) => Some((
                Err(std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "media file shrank")),
                (file, 0),
            )),
            Ok(n) => Some((Ok(Frame::data(buf.freeze())), (file, left - n as u64))),
            Err(e) => Some((Err(e), (file, 0))),
        }
    });
    StreamBody::new(stream).boxed_unsync()
}

// --- identifiers ---------------------------------------------------------------------

/// Media IDs are 1-255 of `A-Za-z0-9_-` (the spec's rule against path traversal).
pub fn valid_media_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 255
        && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// A server name as the spec's grammar has it (ruma's check, plus no empty DNS labels,
/// which ruma lets through: `..` is not a host).
pub fn valid_server_name(s: &str) -> bool {
    if ruma::ServerName::parse(s).is_err() {
        return false;
    }
    if s.starts_with('[') {
        return true;
    }
    let host = s.rsplit_once(':').map_or(s, |(h, _)| h);
    host.split('.').all(|label| !label.is_empty())
}

/// A new random media ID (Synapse's length).
pub fn new_media_id() -> String {
    crate::users::random_string(24)
}

// --- serving -------------------------------------------------------------------------

/// Types browsers may render inline from the media repository (the spec's list, "Serving
/// inline content"); everything else is `attachment`.
pub const INLINE_TYPES: &[&str] = &[
    "text/css",
    "text/plain",
    "text/csv",
    "application/json",
    "application/ld+json",
    "image/jpeg",
    "image/gif",
    "image/png",
    "image/apng",
    "image/webp",
    "image/avif",
    "video/mp4",
    "video/webm",
    "video/ogg",
    "video/quicktime",
    "audio/mp4",
    "audio/webm",
    "audio/aac",
    "audio/mpeg",
    "audio/ogg",
    "audio/wave",
    "audio/wav",
    "audio/x-wav",
    "audio/x-pn-wav",
    "audio/flac",
    "audio/x-flac",
];

/// Text types served with `charset=UTF-8` when the upload named no charset (as Synapse).
const TEXT_TYPES: &[&str] = &[
    "text/css",
    "text/csv",
    "text/html",
    "text/calendar",
    "text/plain",
    "text/javascript",
    "application/json",
    "application/ld+json",
    "application/rtf",
    "image/svg+xml",
    "text/xml",
];

/// Synapse's policy for media responses (the spec's recommendation plus `media-src`).
pub const CONTENT_SECURITY_POLICY: &str = "sandbox; default-src 'none'; script-src 'none'; \
     plugin-types application/pdf; style-src 'unsafe-inline'; media-src 'self'; object-src 'self';";

/// `type/subtype` of a Content-Type, lower-cased, without parameters.
pub fn base_type(content_type: &str) -> String {
    content_type.split(';').next().unwrap_or("").trim().to_ascii_lowercase()
}

fn is_token(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_graphic() && !b"()<>@,;:\\\"/[]?={}".contains(&b))
}

/// The Content-Type to record for an upload: the client's if it is a well-formed media
/// type (`type/subtype`, optional `; name=value` parameters), else
/// `application/octet-stream` (also the spec's default when none is given). Keeping only
/// well-formed values means the stored type can always be sent back as a header.
pub fn normalise_upload_type(header: Option<&str>) -> String {
    const DEFAULT: &str = "application/octet-stream";
    let Some(v) = header.map(str::trim).filter(|v| !v.is_empty()) else {
        return DEFAULT.into();
    };
    if v.len() > 255 {
        return DEFAULT.into();
    }
    let mut parts = v.split(';');
    let essence = parts.next().unwrap_or("").trim();
    let ok_essence = essence.split_once('/').is_some_and(|(t, s)| is_token(t) && is_token(s));
    let ok_params = parts.all(|p| {
        let p = p.trim();
        p.is_empty()
            || p.split_once('=').is_some_and(|(k, v)| {
                let v = v.trim();
                is_token(k.trim())
                    && (is_token(v)
                        || (v.len() >= 2
                            && v.starts_with('"')
                            && v.ends_with('"')
                            && v[1..v.len() - 1]
                                .bytes()
                                .all(|b| b.is_ascii_graphic() || b == b' ')))
            })
    });
    if ok_essence && ok_params { v.to_string() } else { DEFAULT.into() }
}

/// The Content-Type header for stored content: as uploaded, with a UTF-8 charset added to
/// text types that named none.
pub fn served_content_type(stored: &str) -> String {
    let base = base_type(stored);
    if TEXT_TYPES.contains(&base.as_str()) && !stored.to_ascii_lowercase().contains("charset=") {
        format!("{stored}; charset=UTF-8")
    } else {
        stored.to_string()
    }
}

/// `inline` only for the spec's safe types, `attachment` otherwise; with the file name
/// (RFC 6266: a plain token when it is one, else `filename*=utf-8''` percent-encoded, so
/// no file name can break out of the header).
pub fn content_disposition(content_type: &str, filename: Option<&str>) -> String {
    let disposition = if INLINE_TYPES.contains(&base_type(content_type).as_str()) {
        "inline"
    } else {
        "attachment"
    };
    match filename.filter(|f| !f.is_empty()) {
        None => disposition.to_string(),
        Some(name) if is_token(name) => format!("{disposition}; filename={name}"),
        Some(name) => format!("{disposition}; filename*=utf-8''{}", rfc5987_encode(name)),
    }
}

/// RFC 5987 `value-chars`: attr-chars as they are, every other byte of the UTF-8 as %XX.
fn rfc5987_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"!#$&+-.^_`|~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The headers every media download and thumbnail carries.
pub fn add_security_headers(h: &mut http::HeaderMap) {
    use http::HeaderValue;
    h.insert(
        http::header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    h.insert("x-content-security-policy", HeaderValue::from_static("sandbox;"));
    h.insert(http::header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert("cross-origin-resource-policy", HeaderValue::from_static("cross-origin"));
    h.insert(http::header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    h.insert(
        "x-robots-tag",
        HeaderValue::from_static("noindex, nofollow, noarchive, noimageindex"),
    );
    // Media never changes under its ID; authenticated, so private caches only.
    h.insert(http::header::CACHE_CONTROL, HeaderValue::from_static("private, max-age=86400"));
}

/// How long a download may wait for an asynchronous upload: the client's `timeout_ms`
/// (default 20 s, as the spec says), at most 60 s (Synapse's cap).
pub fn wait_timeout(timeout_ms: Option<&str>) -> Result<Duration> {
    let ms = match timeout_ms {
        None => 20_000,
        Some(s) => s
            .parse::<u64>()
            .map_err(|_| Error::InvalidParam("timeout_ms must be a non-negative integer".into()))?,
    };
    Ok(Duration::from_millis(ms.min(60_000)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn media_ids() {
        assert!(valid_media_id("AbC_-09"));
        for bad in ["", "..", "../etc/passwd", "a/b", "a%2Fb", "a.b", "é", "a b", &"a".repeat(256)]
        {
            assert!(!valid_media_id(bad), "{bad:?}");
        }
        let id = new_media_id();
        assert!(valid_media_id(&id) && id.len() == 24);
    }

    #[test]
    fn server_names() {
        for good in ["localhost", "example.org", "example.org:8448", "1.2.3.4", "[::1]:80", "hs1"] {
            assert!(valid_server_name(good), "{good}");
        }
        for bad in
            ["", "..", ".", "a..b", ".example.org", "../etc", "a/b", "host name", "[::1", "x:y"]
        {
            assert!(!valid_server_name(bad), "{bad:?}");
        }
    }

    #[test]
    fn dispositions() {
        assert_eq!(content_disposition("image/png", None), "inline");
        assert_eq!(content_disposition("IMAGE/PNG; x=y", Some("a.png")), "inline; filename=a.png");
        assert_eq!(content_disposition("text/html", Some("a.html")), "attachment; filename=a.html");
        assert_eq!(content_disposition("image/svg+xml", None), "attachment");
        assert_eq!(content_disposition("Text/Plain; charset=utf-8", None), "inline");
        assert_eq!(
            content_disposition("image/png", Some("name with spaces")),
            "inline; filename*=utf-8''name%20with%20spaces"
        );
        assert_eq!(
            content_disposition("application/pdf", Some("\u{1F414}")),
            "attachment; filename*=utf-8''%F0%9F%90%94"
        );
        // Header injection is impossible: CR, LF and quotes are encoded.
        let d = content_disposition("text/plain", Some("a\r\nSet-Cookie: x=\"1\""));
        assert!(d.bytes().all(|b| b.is_ascii_graphic() || b == b' '), "{d}");
        assert!(http::HeaderValue::from_str(&d).is_ok());
        assert_eq!(
            content_disposition("text/plain", Some("../../etc/passwd")),
            "inline; filename*=utf-8''..%2F..%2Fetc%2Fpasswd"
        );
    }

    #[test]
    fn upload_types() {
        assert_eq!(normalise_upload_type(None), "application/octet-stream");
        assert_eq!(normalise_upload_type(Some("  ")), "application/octet-stream");
        assert_eq!(normalise_upload_type(Some("image/png")), "image/png");
        assert_eq!(normalise_upload_type(Some("img/png")), "img/png");
        assert_eq!(
            normalise_upload_type(Some("Text/Plain; charset=utf-8")),
            "Text/Plain; charset=utf-8"
        );
        assert_eq!(
            normalise_upload_type(Some("text/plain; name=\"a b\"")),
            "text/plain; name=\"a b\""
        );
        for bad in
            ["png", "image/", "/png", "image/png\u{7f}", "a/b; c", "a b/c", "image/png, text/html"]
        {
            assert_eq!(normalise_upload_type(Some(bad)), "application/octet-stream", "{bad:?}");
        }
    }

    #[test]
    fn served_types() {
        assert_eq!(served_content_type("text/html"), "text/html; charset=UTF-8");
        assert_eq!(served_content_type("text/plain; charset=latin1"), "text/plain; charset=latin1");
        assert_eq!(served_content_type("image/png"), "image/png");
    }

    #[test]
    fn timeouts() {
        assert_eq!(wait_timeout(None).expect("default"), Duration::from_secs(20));
        assert_eq!(wait_timeout(Some("100")).expect("ms"), Duration::from_millis(100));
        assert_eq!(wait_timeout(Some("999999999")).expect("capped"), Duration::from_secs(60));
        assert!(wait_timeout(Some("-1")).is_err());
    }

    #[tokio::test]
    async fn blobs_are_content_addressed_and_deduplicated() {
        let dir = tempfile::tempdir().expect("tmp");
        let mut cfg = MediaConfig::from_config(&Config::embedded_default());
        cfg.store_path = dir.path().join("media");
        let m = Media::open(cfg).expect("open");
        let a = m.store_bytes(b"hello").await.expect("store");
        assert_eq!(a.sha256, hex::encode(Sha256::digest(b"hello")));
        let b = m.store_bytes(b"hello").await.expect("store again");
        assert_eq!(a, b);
        let path = m.path_of(&a.sha256).expect("path");
        assert_eq!(std::fs::read(&path).expect("read"), b"hello");
        assert!(path.starts_with(dir.path().join("media").join("content")));
        assert_eq!(std::fs::read_dir(dir.path().join("media/tmp")).expect("tmp").count(), 0);
        assert!(m.path_of("../../etc/passwd").is_err());
        let (body, len) = m.open_blob(&a.sha256).await.expect("open");
        assert_eq!(len, 5);
        assert_eq!(
            body.collect().await.expect("read").to_bytes(),
            bytes::Bytes::from_static(b"hello")
        );
    }
}
