//! Rooms: list, details, members, state, blocking, and deletion (v1 synchronous, v2 as a
//! background task with a status to poll, as in Synapse).

use std::sync::Arc;

use serde_json::{Map, Value, json};

use super::{
    bool_field, bool_param, choice_param, dir_param, int_param, require_fields, string_field,
};
use crate::app::App;
use crate::error::{Error, Result, bad_json, not_found};
use crate::http::request::Req;
use crate::http::response::{Resp, ok};
use crate::http::router::Router;
use crate::rooms::format;
use crate::rooms::shutdown::{self, Params, Report};
use crate::store::rooms::{self as room_store, DeletionRow, RoomListQuery, RoomStats};
use crate::store::{events, now_ms, state};

pub fn routes(r: &mut Router) {
    r.get("/_synapse/admin/v1/rooms", list);
    r.get("/_synapse/admin/v1/rooms/{}", details);
    r.delete("/_synapse/admin/v1/rooms/{}", delete_v1);
    r.get("/_synapse/admin/v1/rooms/{}/members", members);
    r.get("/_synapse/admin/v1/rooms/{}/state", room_state);
    r.get("/_synapse/admin/v1/rooms/{}/block", get_block);
    r.put("/_synapse/admin/v1/rooms/{}/block", put_block);
    r.delete("/_synapse/admin/v2/rooms/{}", delete_v2);
    r.get("/_synapse/admin/v2/rooms/delete_status/{}", status_by_id);
    r.get("/_synapse/admin/v2/rooms/{}/delete_status", status_by_room);
}

fn stats_json(s: &RoomStats) -> Map<String, Value> {
    let v = json!({
        "room_id": s.room_id,
        "name": s.name,
        "canonical_alias": s.canonical_alias,
        "joined_members": s.joined_members,
        "joined_local_members": s.joined_local_members,
        "version": s.version,
        "creator": s.creator,
        "encryption": s.encryption,
        "federatable": s.federatable,
        "public": s.public,
        "join_rules": s.join_rules,
        "guest_access": s.guest_access,
        "history_visibility": s.history_visibility,
        "state_events": s.state_events,
        "room_type": s.room_type,
    });
    v.as_object().cloned().unwrap_or_default()
}

async fn list(app: Arc<App>, req: Req) -> Result<Resp> {
    app.auth_admin(&req).await?;
    let sort: Vec<&str> = room_store::ROOM_SORT.iter().map(|(k, _, _)| *k).collect();
    let search_term = req.query("search_term").map(str::to_string);
    if search_term.as_deref() == Some("") {
        return Err(Error::InvalidParam("search_term cannot be an empty string".into()));
    }
    let q = RoomListQuery {
        from: int_param(&req, "from", 0)?,
        limit: int_param(&req, "limit", 100)?,
        order_by: choice_param(&req, "order_by", "name", &sort)?.to_string(),
        backwards: dir_param(&req)?,
        search_term,
        public_rooms: bool_param(&req, "public_rooms")?,
        empty_rooms: bool_param(&req, "empty_rooms")?,
    };
    let (q2, server) = (q.clone(), app.config.server_name.to_string());
    let (rows, total) = app.db.read(move |c| room_store::list_with_stats(c, &server, &q2)).await?;
    let mut body = json!({
        "rooms": rows.iter().map(stats_json).collect::<Vec<_>>(),
        "offset": q.from,
        "total_rooms": total,
    });
    if q.from + q.limit < total {
        body["next_batch"] = json!(q.from + q.limit);
    }
    if q.from > 0 {
        body["prev_batch"] = json!((q.from - q.limit).max(0));
    }
    Ok(ok(&body))
}

async fn details(app: Arc<App>, req: Req) -> Result<Resp> {
    app.auth_admin(&req).await?;
    let (rid, server) = (req.param(0).to_string(), app.config.server_name.to_string());
    let found = app
        .db
        .read(move |c| {
            let Some(room) = room_store::get(c, &rid)? else { return Ok(None) };
            let stats = room_store::stats(c, &server, &rid)?
                .ok_or_else(|| Error::internal("room without stats"))?;
            let devices = room_store::joined_local_devices(c, room.nid)?;
            let forgotten = room_store::locally_forgotten(c, room.nid)?;
            let tombstone = match state::current_lookup(c, room.nid, "m.room.tombstone", "")? {
                Some(nid) => events::by_nid(c, nid)?
                    .and_then(|e| serde_json::from_str::<Value>(&e.json).ok()),
                None => None,
            };
            Ok(Some((stats, devices, forgotten, tombstone)))
        })
        .await?;
    let (stats, devices, forgotten, tombstone) =
        found.ok_or_else(|| not_found("Room not found"))?;
    let mut body = stats_json(&stats);
    body.insert("avatar".into(), json!(stats.avatar));
    body.insert("topic".into(), json!(stats.topic));
    body.insert("joined_local_devices".into(), json!(devices));
    body.insert("forgotten".into(), json!(forgotten));
    body.insert("tombstoned".into(), json!(tombstone.is_some()));
    let replacement = tombstone.as_ref().and_then(|t| t["content"]["replacement_room"].as_str());
    body.insert("replacement_room".into(), json!(replacement));
    Ok(ok(&body))
}

async fn members(app: Arc<App>, req: Req) -> Result<Resp> {
    app.auth_admin(&req).await?;
    let rid = req.param(0).to_string();
    let members = app
        .db
        .read(move |c| {
            let Some(room) = room_store::get(c, &rid)? else { return Ok(None) };
            Ok(Some(events::members(c, room.nid, "join")?))
        })
        .await?
        .ok_or_else(|| not_found("Room not found"))?;
    let ids: Vec<String> = members.into_iter().map(|(u, _)| u).collect();
    Ok(ok(&json!({"total": ids.len(), "members": ids})))
}

/// The room's current state as client events; `type` keeps one event type.
async fn room_state(app: Arc<App>, req: Req) -> Result<Resp> {
    app.auth_admin(&req).await?;
    let rid = req.param(0).to_string();
    let only = req.query("type").filter(|t| !t.is_empty()).map(str::to_string);
    let events = app
        .db
        .read(move |c| {
            let Some(room) = room_store::get(c, &rid)? else { return Ok(None) };
            let nids: Vec<i64> = state::current(c, room.nid)?
                .into_iter()
                .filter(|(t, _, _)| only.as_ref().is_none_or(|o| o == t))
                .map(|(_, _, n)| n)
                .collect();
            let rows = events::by_nids(c, &nids)?;
            Ok(Some(format::client_events(c, &rows, None)?))
        })
        .await?
        .ok_or_else(|| not_found("Room not found"))?;
    Ok(ok(&json!({"state": events})))
}

fn check_room_id(room_id: &str) -> Result<()> {
    ruma::RoomId::parse(room_id)
        .map(|_| ())
        .map_err(|_| Error::Unknown(format!("{room_id} is not a legal room ID")))
}

async fn get_block(app: Arc<App>, req: Req) -> Result<Resp> {
    app.auth_admin(&req).await?;
    let rid = req.param(0).to_string();
    check_room_id(&rid)?;
    let by = app.db.read(move |c| room_store::blocked_by(c, &rid)).await?;
    Ok(ok(&match by {
        Some(u) => json!({"block": true, "user_id": u}),
        None => json!({"block": false}),
    }))
}

async fn put_block(app: Arc<App>, req: Req) -> Result<Resp> {
    let admin = app.auth_admin(&req).await?;
    let body = req.json_object(false)?;
    let rid = req.param(0).to_string();
    check_room_id(&rid)?;
    require_fields(&body, &["block"])?;
    let block = match body.get("block") {
        Some(Value::Bool(b)) => *b,
        _ => return Err(bad_json("Param 'block' must be a boolean.")),
    };
    let room = rid.clone();
    app.db
        .write(move |c| {
            if block {
                room_store::block(c, &rid, &admin.user_id, now_ms())
            } else {
                room_store::unblock(c, &rid)
            }
        })
        .await?;
    tracing::info!(room_id = %room, block, "changed room block");
    Ok(ok(&json!({"block": block})))
}

/// What to do after the shutdown.
#[derive(Clone, Copy)]
struct Purge {
    purge: bool,
    /// Purge even if local users could not be made to leave.
    force: bool,
}

/// The body of both DELETE endpoints.
async fn delete_params(app: &App, req: &Req, requester: &str) -> Result<(Params, Purge)> {
    let body = req.json_object(false)?;
    let block = bool_field(&body, "block")?.unwrap_or(false);
    let purge = Purge {
        purge: bool_field(&body, "purge")?.unwrap_or(true),
        force: bool_field(&body, "force_purge")?.unwrap_or(false),
    };
    let new_room_user_id = string_field(&body, "new_room_user_id")?;
    if let Some(u) = &new_room_user_id {
        let local = ruma::UserId::parse(u).is_ok_and(|u| u.server_name() == app.config.server_name);
        if !local {
            return Err(Error::Unknown(format!("User must be our own: {u}")));
        }
        super::existing_user(app, u).await?;
    }
    let p = Params {
        requester: requester.to_string(),
        block,
        new_room_user_id,
        new_room_name: string_field(&body, "room_name")?,
        message: string_field(&body, "message")?,
    };
    Ok((p, purge))
}

/// Shut down, then purge if asked. As in Synapse, an unknown room is no error (there is
/// nothing to shut down or purge; blocking it still works), and a room some local user
/// is still joined to is purged only with `force_purge`.
async fn shutdown_and_purge(app: &App, room_id: &str, p: &Params, purge: Purge) -> Result<Report> {
    let report = shutdown::shutdown(app, room_id, p).await?;
    if purge.purge {
        if !purge.force && !report.failed_to_kick_users.is_empty() {
            return Err(Error::Unknown("Users are still joined to this room".into()));
        }
        match shutdown::purge(app, room_id).await {
            Err(Error::NotFound(_)) => {}
            other => other?,
        }
    }
    Ok(report)
}

/// `DELETE /_synapse/admin/v1/rooms/{roomId}`: the whole deletion within the request.
async fn delete_v1(app: Arc<App>, req: Req) -> Result<Resp> {
    let admin = app.auth_admin(&req).await?;
    let room_id = req.param(0).to_string();
    let (p, purge) = delete_params(&app, &req, &admin.user_id).await?;
    check_room_id(&room_id)?;
    let report = shutdown_and_purge(&app, &room_id, &p, purge).await?;
    Ok(ok(&report))
}

/// `DELETE /_synapse/admin/v2/rooms/{roomId}`: starts the deletion in the background and
/// answers with its `delete_id` at once.
async fn delete_v2(app: Arc<App>, req: Req) -> Result<Resp> {
    let admin = app.auth_admin(&req).await?;
    let room_id = req.param(0).to_string();
    let (p, purge) = delete_params(&app, &req, &admin.user_id).await?;
    check_room_id(&room_id)?;
    let delete_id = crate::users::random_string(16);
    let (did, rid) = (delete_id.clone(), room_id.clone());
    let empty = serde_json::to_string(&Report::default()).map_err(Error::internal)?;
    app.db
        .write(move |c| {
            let busy = room_store::deletions_of(c, &rid)?
                .iter()
                .any(|d| matches!(d.status.as_str(), "scheduled" | "active"));
            if busy {
                return Err(Error::Unknown(format!("Purge already in progress for {rid}")));
            }
            room_store::insert_deletion(c, &did, &rid, &empty, now_ms())
        })
        .await?;
    tracing::info!(%room_id, %delete_id, "starting room deletion");
    let did = delete_id.clone();
    tokio::spawn(async move {
        let set = |status: &'static str, report: &Report, error: Option<String>| {
            let (app, did) = (app.clone(), did.clone());
            let result = serde_json::to_string(report).unwrap_or_else(|_| "{}".into());
            async move {
                let id = did.clone();
                let w = app.db.write(move |c| {
                    room_store::update_deletion(c, &id, status, &result, error.as_deref())
                });
                if let Err(e) = w.await {
                    tracing::error!(delete_id = %did, error = %e, "cannot record deletion status");
                }
            }
        };
        set("active", &Report::default(), None).await;
        match shutdown_and_purge(&app, &room_id, &p, purge).await {
            Ok(report) => set("complete", &report, None).await,
            Err(e) => {
                tracing::warn!(%room_id, error = %e, "room deletion failed");
                set("failed", &Report::default(), Some(e.to_string())).await;
            }
        }
    });
    Ok(ok(&json!({"delete_id": delete_id})))
}

fn deletion_json(d: &DeletionRow) -> Value {
    let report: Value = serde_json::from_str(&d.result).unwrap_or_else(|_| json!({}));
    let mut v = json!({
        "delete_id": d.delete_id,
        "room_id": d.room_id,
        "status": d.status,
        "shutdown_room": report,
    });
    if let Some(e) = &d.error {
        v["error"] = json!(e);
    }
    v
}

async fn status_by_id(app: Arc<App>, req: Req) -> Result<Resp> {
    app.auth_admin(&req).await?;
    let did = req.param(0).to_string();
    let d2 = did.clone();
    let d = app.db.read(move |c| room_store::deletion(c, &d2)).await?;
    let d = d.ok_or_else(|| not_found(format!("delete id '{did}' not found")))?;
    Ok(ok(&deletion_json(&d)))
}

async fn status_by_room(app: Arc<App>, req: Req) -> Result<Resp> {
    app.auth_admin(&req).await?;
    let rid = req.param(0).to_string();
    check_room_id(&rid)?;
    let r2 = rid.clone();
    let all = app.db.read(move |c| room_store::deletions_of(c, &r2)).await?;
    if all.is_empty() {
        return Err(not_found(format!("No delete task for room_id '{rid}' found")));
    }
    Ok(ok(&json!({"results": all.iter().map(deletion_json).collect::<Vec<_>>()})))
}
