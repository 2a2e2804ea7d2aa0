//! The content repository: uploads (`/_matrix/media/v3/upload`, `/_matrix/media/v1/create`
//! and `PUT /_matrix/media/v3/upload/{serverName}/{mediaId}`), downloads and thumbnails on
//! the authenticated `/_matrix/client/v1/media/*` endpoints and the legacy
//! `/_matrix/media/{r0,v3}/*` ones, `/config` and `/preview_url`.
//!
//! Uploads and downloads are streaming routes: bodies go to and from files without being
//! held in memory. Authenticated media (Synapse's `enable_authenticated_media`, its default
//! since 1.120): every upload is marked authenticated and is served only on the
//! `/_matrix/client/v1/media` endpoints; the legacy download and thumbnail endpoints stay
//! unauthenticated and answer 404 for such media (after the not-yet-uploaded check, as
//! Synapse does), which the spec allows as the 1.11 "freeze". Other servers' media is
//! fetched over federation on first use and cached (`media::remote`), on the authenticated
//! endpoints only.

use std::sync::Arc;
use std::time::Instant;

use http::{HeaderValue, Method, StatusCode, header};
use hyper::body::Incoming;
use serde_json::json;

use crate::app::App;
use crate::error::{Error, Result, not_found};
use crate::http::request::Req;
use crate::http::response::{Body, Resp, StreamResp, ok, streamed};
use crate::http::router::Router;
use crate::media::thumbnail::{self, Method as ThumbMethod, Outcome, ThumbError};
use crate::media::{self, preview};
use crate::store::media::{self as db, Content, MediaKey, MediaRow, ThumbnailRow};
use crate::store::now_ms;

pub fn routes(r: &mut Router) {
    // Authenticated (Matrix 1.11).
    r.get("/_matrix/client/v1/media/config", config);
    r.get("/_matrix/client/v1/media/preview_url", preview_url);
    r.streaming(Method::GET, "/_matrix/client/v1/media/download/{}/{}", download_authed);
    r.streaming(Method::GET, "/_matrix/client/v1/media/download/{}/{}/{}", download_authed);
    r.streaming(Method::GET, "/_matrix/client/v1/media/thumbnail/{}/{}", thumbnail_authed);
    // Uploads have no authenticated replacement yet; they always needed a token.
    r.streaming(Method::POST, "/_matrix/media/{v}/upload", upload);
    r.streaming(Method::PUT, "/_matrix/media/v3/upload/{}/{}", upload_async);
    r.post("/_matrix/media/v1/create", create);
    // Legacy, deprecated in 1.11.
    r.get("/_matrix/media/{v}/config", config);
    r.get("/_matrix/media/{v}/preview_url", preview_url);
    r.streaming(Method::GET, "/_matrix/media/{v}/download/{}/{}", download_legacy);
    r.streaming(Method::GET, "/_matrix/media/{v}/download/{}/{}/{}", download_legacy);
    r.streaming(Method::GET, "/_matrix/media/{v}/thumbnail/{}/{}", thumbnail_legacy);
}

/// Longest `filename` accepted on upload.
const MAX_FILENAME: usize = 1024;

async fn config(app: Arc<App>, req: Req) -> Result<Resp> {
    app.auth_member(&req).await?;
    Ok(ok(&json!({"m.upload.size": app.media.config.max_upload_size})))
}

/// URL previews are off unless `url_preview_enabled`: then the endpoint answers as one the
/// server does not have, 404 `M_UNRECOGNIZED`, as Synapse. When on, `media::preview`
/// fetches the URL (http/https only: 400 otherwise) after checking the URL against
/// `url_preview_url_blacklist` (403 "URL blocked") and every address its host resolves to
/// against the IP policy (403 "IP address blocked"), connecting only to a checked address;
/// failures upstream are 502 (`M_TOO_LARGE` past `max_spider_size`), as in Synapse.
/// `og:image` is left as the remote URL (not downloaded into the media repository).
async fn preview_url(app: Arc<App>, req: Req) -> Result<Resp> {
    app.auth_member(&req).await?;
    if !app.media.config.url_preview_enabled {
        return Err(Error::Unrecognized("URL previews are disabled on this server".into()));
    }
    let url = req.query("url").ok_or_else(|| Error::MissingParam("Missing url".into()))?;
    let ts = match req.query("ts") {
        None => now_ms(),
        Some(t) => t
            .parse::<i64>()
            .map_err(|_| Error::InvalidParam("ts must be a timestamp in milliseconds".into()))?,
    };
    match app.media.previewer.preview(url, ts).await {
        Ok(og) => Ok(ok(&og)),
        Err(e) => {
            tracing::info!(%url, error = ?e, "URL preview failed");
            Err(match e {
                preview::PreviewError::BadUrl(m) => Error::InvalidParam(m),
                preview::PreviewError::IpBlocked => {
                    Error::Forbidden("IP address blocked by IP blacklist entry".into())
                }
                preview::PreviewError::UrlBlocked => Error::Forbidden("URL blocked".into()),
                preview::PreviewError::Upstream(m) => {
                    Error::BadGateway(format!("Failed to download content: {m}"))
                }
                preview::PreviewError::TooLarge(n) => {
                    Error::UpstreamTooLarge(format!("Requested file is too large > {n} bytes"))
                }
            })
        }
    }
}

// --- uploads --------------------------------------------------------------------------

/// The content type and file name an upload declares.
fn upload_meta(req: &Req) -> Result<(String, Option<String>)> {
    let content_type = media::normalise_upload_type(
        req.headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()),
    );
    let name = req.query("filename").filter(|n| !n.is_empty()).map(str::to_string);
    if name.as_ref().is_some_and(|n| n.len() > MAX_FILENAME) {
        return Err(Error::InvalidParam(format!("filename is longer than {MAX_FILENAME} bytes")));
    }
    Ok((content_type, name))
}

fn mxc(app: &App, media_id: &str) -> String {
    format!("mxc://{}/{media_id}", app.config.server_name)
}

async fn upload(app: Arc<App>, req: Req, body: Incoming) -> Result<StreamResp> {
    let user = app.auth_member(&req).await?;
    media::check_declared_length(&req.headers, app.media.config.max_upload_size)?;
    let (content_type, upload_name) = upload_meta(&req)?;
    let stored = app.media.store_stream(body).await?;
    let media_id = media::new_media_id();
    let content =
        Content { content_type, upload_name, length: stored.length, sha256: stored.sha256 };
    let id = media_id.clone();
    app.db.write(move |c| db::insert_uploaded(c, &id, user.user_nid, now_ms(), &content)).await?;
    tracing::info!(user = %user.user_id, %media_id, length = stored.length, "media uploaded");
    Ok(streamed(ok(&json!({"content_uri": mxc(&app, &media_id)}))))
}

/// `POST /_matrix/media/v1/create`: a media ID to upload to later. Each user may hold
/// `max_pending_uploads` unexpired ones (429 beyond, as the spec asks).
async fn create(app: Arc<App>, req: Req) -> Result<Resp> {
    let user = app.auth_member(&req).await?;
    let rl = &app.ratelimits;
    let limit = rl.config.media_create;
    app.ratelimit_user(&user, &[(&rl.media_create, limit, &user.user_id)], false).await?;
    let cfg = &app.media.config;
    let (expiry, max_pending) = (cfg.unused_expiration_ms, cfg.max_pending_uploads);
    let media_id = media::new_media_id();
    let id = media_id.clone();
    let now = now_ms();
    app.db
        .write(move |c| {
            let (pending, oldest) = db::pending_count(c, user.user_nid, now - expiry)?;
            if pending >= max_pending {
                let retry = oldest.map(|t| t + expiry - now).unwrap_or(expiry).max(0) as u64;
                return Err(Error::LimitExceeded("Too many pending media uploads".into(), retry));
            }
            db::insert_pending(c, &id, user.user_nid, now)
        })
        .await?;
    Ok(ok(&json!({"content_uri": mxc(&app, &media_id), "unused_expires_at": now + expiry})))
}

/// Ends the in-progress mark of an asynchronous upload however the request ends.
struct UploadMark(Arc<App>, String);

impl Drop for UploadMark {
    fn drop(&mut self) {
        self.0.media.end_upload(&self.1);
    }
}

/// `PUT /_matrix/media/v3/upload/{serverName}/{mediaId}`: the content of a created ID,
/// once, by its creator, before it expires.
async fn upload_async(app: Arc<App>, req: Req, body: Incoming) -> Result<StreamResp> {
    let user = app.auth_member(&req).await?;
    let (server, media_id) = (req.param(0), req.param(1).to_string());
    if server != app.config.server_name.as_str() || !media::valid_media_id(&media_id) {
        return Err(not_found("Unknown media ID"));
    }
    if !app.media.begin_upload(&media_id) {
        return Err(Error::CannotOverwriteMedia("Media ID is being uploaded to".into()));
    }
    let _mark = UploadMark(app.clone(), media_id.clone());
    let id = media_id.clone();
    let row = app
        .db
        .read(move |c| db::get(c, &id))
        .await?
        .ok_or_else(|| not_found("Unknown media ID"))?;
    if row.user_nid != user.user_nid {
        return Err(Error::Forbidden("Only the creator of the media ID can upload to it".into()));
    }
    if row.length.is_some() {
        return Err(Error::CannotOverwriteMedia("Media ID already has content".into()));
    }
    if expired(&app, &row) {
        return Err(not_found("Media ID has expired"));
    }
    media::check_declared_length(&req.headers, app.media.config.max_upload_size)?;
    let (content_type, upload_name) = upload_meta(&req)?;
    let stored = app.media.store_stream(body).await?;
    let content =
        Content { content_type, upload_name, length: stored.length, sha256: stored.sha256 };
    let id = media_id.clone();
    let done = app.db.write(move |c| db::complete_pending(c, &id, now_ms(), &content)).await?;
    if !done {
        return Err(Error::CannotOverwriteMedia("Media ID already has content".into()));
    }
    app.media.notify_uploaded();
    tracing::info!(user = %user.user_id, %media_id, length = stored.length, "media uploaded");
    Ok(streamed(ok(&json!({}))))
}

fn expired(app: &App, row: &MediaRow) -> bool {
    row.length.is_none() && row.created_ts < now_ms() - app.media.config.unused_expiration_ms
}

// --- downloads ------------------------------------------------------------------------

/// Media to serve, local or cached from another server.
struct Source {
    key: MediaKey,
    content_type: String,
    upload_name: Option<String>,
    length: u64,
    sha256: String,
}

/// The media behind `{server}/{media_id}`: local uploads (after the wait below), or other
/// servers' media, fetched over federation into the cache on first use. The legacy
/// unauthenticated endpoints serve neither new local uploads nor remote media (the 1.11
/// freeze; Synapse with `enable_authenticated_media` does the same).
async fn resolve(
    app: &Arc<App>,
    req: &Req,
    server: &str,
    media_id: &str,
    authenticated: bool,
) -> Result<Source> {
    if !media::valid_server_name(server) {
        return Err(Error::InvalidParam(format!("Invalid server name: {server:?}")));
    }
    if !media::valid_media_id(media_id) {
        return Err(not_found("Media not found"));
    }
    if server != app.config.server_name.as_str() {
        if !authenticated && app.media.config.authenticated_media {
            return Err(not_found("Remote media is only served on /_matrix/client/v1/media"));
        }
        let row = media::remote::get(app, server, media_id).await?;
        return Ok(Source {
            key: MediaKey::Remote(server.to_string(), media_id.to_string()),
            content_type: row.content_type,
            upload_name: row.upload_name,
            length: row.length,
            sha256: row.sha256,
        });
    }
    let row = local_media(app, media_id, req.query("timeout_ms")).await?;
    check_legacy_access(app, &row, authenticated)?;
    Ok(Source {
        key: MediaKey::Local(row.media_id),
        content_type: row.content_type.unwrap_or_else(|| "application/octet-stream".into()),
        upload_name: row.upload_name,
        length: row.length.unwrap_or(0),
        sha256: row.sha256.ok_or_else(|| Error::internal("uploaded media without hash"))?,
    })
}

/// The uploaded local media `media_id`. Waits up to `timeout_ms` for an asynchronous
/// upload still to come (504 `M_NOT_YET_UPLOADED` after).
async fn local_media(app: &Arc<App>, media_id: &str, timeout_ms: Option<&str>) -> Result<MediaRow> {
    let media_id = media_id.to_string();
    let deadline = Instant::now() + media::wait_timeout(timeout_ms)?;
    loop {
        // Registered before the read, so an upload completing in between still wakes us.
        let notified = app.media.upload_notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        let id = media_id.clone();
        let row = app
            .db
            .read(move |c| db::get(c, &id))
            .await?
            .ok_or_else(|| not_found("Media not found"))?;
        if row.length.is_some() {
            return Ok(row);
        }
        if expired(app, &row) {
            return Err(not_found("Media ID has expired without being uploaded"));
        }
        if Instant::now() >= deadline {
            return Err(Error::NotYetUploaded("Media has not been uploaded yet".into()));
        }
        let _parked = app.media.waiting.guard();
        tokio::select! {
            _ = notified => {}
            _ = tokio::time::sleep_until(deadline.into()) => {}
            _ = app.shutting_down() => {
                return Err(Error::NotYetUploaded("Media has not been uploaded yet".into()));
            }
        }
    }
}

/// The legacy endpoints do not serve media marked authenticated (the freeze).
fn check_legacy_access(app: &App, row: &MediaRow, authenticated: bool) -> Result<()> {
    if !authenticated && app.media.config.authenticated_media && row.authenticated {
        return Err(not_found("Media is only served on /_matrix/client/v1/media"));
    }
    Ok(())
}

fn media_response(
    body: Body,
    length: u64,
    content_type: &str,
    disposition: &str,
) -> Result<StreamResp> {
    let mut r = http::Response::new(body);
    *r.status_mut() = StatusCode::OK;
    let h = r.headers_mut();
    let ct = HeaderValue::from_str(content_type)
        .unwrap_or_else(|_| HeaderValue::from_static("application/octet-stream"));
    h.insert(header::CONTENT_TYPE, ct);
    h.insert(
        header::CONTENT_DISPOSITION,
        HeaderValue::from_str(disposition).map_err(Error::internal)?,
    );
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(length));
    media::add_security_headers(h);
    Ok(r)
}

async fn download_authed(app: Arc<App>, req: Req, _body: Incoming) -> Result<StreamResp> {
    app.auth(&req).await?;
    let (server, media_id) = (req.param(0).to_string(), req.param(1).to_string());
    download(app, &req, &server, &media_id, true).await
}

async fn download_legacy(app: Arc<App>, req: Req, _body: Incoming) -> Result<StreamResp> {
    let (server, media_id) = (req.param(0).to_string(), req.param(1).to_string());
    download(app, &req, &server, &media_id, false).await
}

/// The bytes of `server`/`media_id` (a file name in the path, `req.params[2]`, overrides
/// the uploaded one). Also what federation's `/media/download` wraps.
pub(crate) async fn download(
    app: Arc<App>,
    req: &Req,
    server: &str,
    media_id: &str,
    authenticated: bool,
) -> Result<StreamResp> {
    let src = resolve(&app, req, server, media_id, authenticated).await?;
    let filename = req.params.get(2).map(String::as_str).or(src.upload_name.as_deref());
    let disposition = media::content_disposition(&src.content_type, filename);
    let (body, length) = app.media.open_blob(&src.sha256).await?;
    media_response(body, length, &media::served_content_type(&src.content_type), &disposition)
}

// --- thumbnails -----------------------------------------------------------------------

async fn thumbnail_authed(app: Arc<App>, req: Req, _body: Incoming) -> Result<StreamResp> {
    app.auth(&req).await?;
    let (server, media_id) = (req.param(0).to_string(), req.param(1).to_string());
    thumbnail(app, &req, &server, &media_id, true).await
}

async fn thumbnail_legacy(app: Arc<App>, req: Req, _body: Incoming) -> Result<StreamResp> {
    let (server, media_id) = (req.param(0).to_string(), req.param(1).to_string());
    thumbnail(app, &req, &server, &media_id, false).await
}

fn dimension(req: &Req, name: &str) -> Result<u32> {
    let v = req.query(name).ok_or_else(|| Error::MissingParam(format!("Missing {name}")))?;
    match v.parse::<i64>() {
        Ok(n) if n > 0 => Ok(n.min(i64::from(u32::MAX)) as u32),
        _ => Err(Error::InvalidParam(format!("{name} must be a positive integer"))),
    }
}

fn cannot_thumbnail() -> Error {
    Error::Unknown("Cannot generate thumbnails for the requested content".into())
}

/// Serve the cached thumbnail for the request, making it first if there is none. At
/// most one request makes a given thumbnail; others wait for it and then find it cached.
/// Remote media is thumbnailed here from the cached original. Also what federation's
/// `/media/thumbnail` wraps.
pub(crate) async fn thumbnail(
    app: Arc<App>,
    req: &Req,
    server: &str,
    media_id: &str,
    authenticated: bool,
) -> Result<StreamResp> {
    let width = dimension(req, "width")?;
    let height = dimension(req, "height")?;
    let method = match req.query("method") {
        None => ThumbMethod::Scale,
        Some(m) => ThumbMethod::parse(m)
            .ok_or_else(|| Error::InvalidParam("method must be 'crop' or 'scale'".into()))?,
    };
    let src = resolve(&app, req, server, media_id, authenticated).await?;
    if !thumbnail::is_thumbnailable(&src.content_type) {
        return Err(cannot_thumbnail());
    }
    let want = thumbnail::normalise(width, height, method);
    let lock_key = format!("{:?}/{}x{}/{}", src.key, want.width, want.height, method.as_str());
    let _lock = app.media.thumbnail_lock(&lock_key).await?;

    let (key, m) = (src.key.clone(), method.as_str());
    let (cached, count) = app
        .db
        .read(move |c| {
            Ok((db::thumbnail(c, &key, want.width, want.height, m)?, db::thumbnail_count(c, &key)?))
        })
        .await?;
    if let Some(t) = cached {
        return serve_thumbnail(&app, &t).await;
    }

    let path = app.media.path_of(&src.sha256)?;
    let outcome = {
        let _permit = app.media.thumbnail_permit().await?;
        tokio::task::spawn_blocking(move || thumbnail::generate_from_file(&path, want))
            .await
            .map_err(Error::internal)?
    };
    let (t, actual) = match outcome {
        Ok(Outcome::Original { content_type, width, height }) => {
            // The source itself, re-typed by what it really is (PNG or JPEG).
            let t = ThumbnailRow {
                content_type: content_type.into(),
                length: src.length,
                sha256: src.sha256.clone(),
            };
            (t, (width, height))
        }
        Ok(Outcome::Made(made)) => {
            let stored = app.media.store_bytes(&made.bytes).await?;
            let t = ThumbnailRow {
                content_type: made.content_type.into(),
                length: stored.length,
                sha256: stored.sha256,
            };
            (t, (made.width, made.height))
        }
        Err(ThumbError::TooLarge) => {
            return Err(Error::TooLarge("Content is too large to thumbnail".into()));
        }
        Err(ThumbError::Unsupported(why)) => {
            tracing::info!(media = ?src.key, %why, "cannot thumbnail");
            return Err(cannot_thumbnail());
        }
    };
    if count < media::MAX_CACHED_THUMBNAILS {
        let (key, t2) = (src.key.clone(), t.clone());
        app.db
            .write(move |c| {
                db::insert_thumbnail(c, &key, want.width, want.height, m, &t2, actual, now_ms())
            })
            .await?;
    }
    serve_thumbnail(&app, &t).await
}

async fn serve_thumbnail(app: &App, t: &ThumbnailRow) -> Result<StreamResp> {
    let (body, length) = app.media.open_blob(&t.sha256).await?;
    let ext = if t.content_type == "image/jpeg" { "jpg" } else { "png" };
    let disposition = format!("inline; filename=thumbnail.{ext}");
    media_response(body, length, &t.content_type, &disposition)
}
