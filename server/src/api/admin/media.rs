//! Local media through the admin API: a user's media (list, delete), one item (query,
//! delete) and media by age and size (delete). Deleting removes the rows, the thumbnails
//! and the files no other media item shares (files are content-addressed).
//!
//! Glia has no quarantine and does not track downloads: `quarantined_by` is always null,
//! `safe_from_quarantine` false, and `last_access_ts` is the upload time.

use std::sync::Arc;

use serde_json::{Value, json};

use super::{bool_param, choice_param, existing_user, int_param, local_user_id};
use crate::app::App;
use crate::error::{Error, Result, invalid_param, missing_param, not_found};
use crate::http::request::Req;
use crate::http::response::{Resp, ok};
use crate::http::router::Router;
use crate::store::media_admin::{self as store, MediaItem};

pub fn routes(r: &mut Router) {
    r.get("/_synapse/admin/v1/users/{}/media", list_user_media);
    r.delete("/_synapse/admin/v1/users/{}/media", delete_user_media);
    r.post("/_synapse/admin/v1/media/delete", delete_old);
    r.post("/_synapse/admin/v1/media/{}/delete", delete_old);
    r.get("/_synapse/admin/v1/media/{}/{}", query_media);
    r.delete("/_synapse/admin/v1/media/{}/{}", delete_one);
}

fn item_json(m: &MediaItem) -> Value {
    json!({
        "media_id": m.media_id,
        "media_type": m.media_type,
        "media_length": m.media_length,
        "upload_name": m.upload_name,
        "created_ts": m.created_ts,
        "url_cache": null,
        "last_access_ts": m.last_access_ts,
        "quarantined_by": null,
        "safe_from_quarantine": false,
        "user_id": m.user_id,
        "authenticated": m.authenticated,
        "sha256": m.sha256,
    })
}

/// The page a user's media request asks for: (from, limit, order_by, backwards). Without
/// `order_by` and `dir`, newest first (Synapse keeps that default for old clients).
fn page(req: &Req) -> Result<(i64, i64, String, bool)> {
    let from = int_param(req, "from", 0)?;
    let limit = int_param(req, "limit", 100)?;
    if req.query("order_by").is_none() && req.query("dir").is_none() {
        return Ok((from, limit, "created_ts".into(), true));
    }
    let sort: Vec<&str> = store::SORT.iter().map(|(k, _)| *k).collect();
    let order_by = choice_param(req, "order_by", "created_ts", &sort)?.to_string();
    Ok((from, limit, order_by, super::dir_param(req)?))
}

async fn user_media(app: &App, req: &Req) -> Result<(Vec<MediaItem>, i64, i64, i64)> {
    app.auth_admin(req).await?;
    let uid = local_user_id(app, req.param(0), "Can only look up local users")?;
    let u = match existing_user(app, &uid).await {
        Err(Error::NotFound(_)) => return Err(not_found("Unknown user")),
        other => other?,
    };
    let (from, limit, order_by, backwards) = page(req)?;
    let nid = u.nid;
    let (items, total) =
        app.db.read(move |c| store::by_user(c, nid, from, limit, &order_by, backwards)).await?;
    Ok((items, total, from, limit))
}

async fn list_user_media(app: Arc<App>, req: Req) -> Result<Resp> {
    let (items, total, from, limit) = user_media(&app, &req).await?;
    let mut body =
        json!({"media": items.iter().map(item_json).collect::<Vec<_>>(), "total": total});
    if from + limit < total {
        body["next_token"] = json!(from + items.len() as i64);
    }
    Ok(ok(&body))
}

async fn delete_user_media(app: Arc<App>, req: Req) -> Result<Resp> {
    let (items, _, _, _) = user_media(&app, &req).await?;
    let ids = items.into_iter().map(|m| m.media_id).collect();
    deleted(&app, ids).await
}

/// Delete the media and then the files nothing refers to any more; answers Synapse's
/// `{"deleted_media": [...], "total": n}`.
async fn deleted(app: &App, ids: Vec<String>) -> Result<Resp> {
    let (gone, orphans) = app.db.write(move |c| store::delete(c, &ids)).await?;
    // Files go only after the rows are committed: a crash in between leaves an unused
    // file, never a row without its file.
    for sha in orphans {
        let path = app.media.path_of(&sha)?;
        if let Err(e) = tokio::fs::remove_file(&path).await
            && e.kind() != std::io::ErrorKind::NotFound
        {
            tracing::warn!(path = %path.display(), error = %e, "could not remove media file");
        }
    }
    tracing::info!(count = gone.len(), "deleted local media (admin)");
    Ok(ok(&json!({"total": gone.len(), "deleted_media": gone})))
}

fn check_local(app: &App, server_name: &str, what: &str) -> Result<()> {
    if server_name != app.config.server_name.as_str() {
        return Err(Error::Unknown(what.to_string()));
    }
    Ok(())
}

async fn query_media(app: Arc<App>, req: Req) -> Result<Resp> {
    app.auth_admin(&req).await?;
    // Remote media is not cached yet (no federation), so only local media is known.
    let local = req.param(0) == app.config.server_name.as_str();
    let id = req.param(1).to_string();
    let m = if local { app.db.read(move |c| store::get(c, &id)).await? } else { None };
    let m = m.ok_or_else(|| not_found("Unknown media"))?;
    let mut info = item_json(&m);
    info["media_origin"] = Value::Null;
    info["filesystem_id"] = Value::Null;
    Ok(ok(&json!({"media_info": info})))
}

async fn delete_one(app: Arc<App>, req: Req) -> Result<Resp> {
    app.auth_admin(&req).await?;
    check_local(&app, req.param(0), "Can only delete local media")?;
    let id = req.param(1).to_string();
    let id2 = id.clone();
    if app.db.read(move |c| store::get(c, &id2)).await?.is_none() {
        return Err(not_found("Unknown media"));
    }
    deleted(&app, vec![id]).await
}

/// `POST /v1/media/delete?before_ts=...&size_gt=...&keep_profiles=...`.
async fn delete_old(app: Arc<App>, req: Req) -> Result<Resp> {
    app.auth_admin(&req).await?;
    if req.query("before_ts").is_none() {
        return Err(missing_param("Missing integer query parameter 'before_ts'"));
    }
    let before_ts = int_param(&req, "before_ts", 0)?;
    let size_gt = int_param(&req, "size_gt", 0)?;
    let keep_profiles = bool_param(&req, "keep_profiles")?.unwrap_or(true);
    if before_ts < 30_000_000_000 {
        return Err(invalid_param(
            "Query parameter before_ts you provided is from the year 1970. Double check that \
             you are providing a timestamp in milliseconds.",
        ));
    }
    if !req.params.is_empty() {
        check_local(&app, req.param(0), "Can only delete local media")?;
    }
    let server = app.config.server_name.to_string();
    let ids =
        app.db.read(move |c| store::old(c, &server, before_ts, size_gt, keep_profiles)).await?;
    deleted(&app, ids).await
}
