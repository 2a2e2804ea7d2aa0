//! Shutting a room down from the admin API (`DELETE /_synapse/admin/v{1,2}/rooms/{roomId}`),
//! in Synapse's order: optionally block the room, optionally create a replacement room,
//! make every local member leave (and forget) it, move the local aliases to the
//! replacement, and finally purge the room's rows in one writer job.

use serde::{Deserialize, Serialize};
use serde_json::json;

use super::{NewEvent, Rooms, create, membership};
use crate::app::App;
use crate::error::{Error, Result};
use crate::store::{events, now_ms, rooms as room_store};

/// What a shutdown did, in Synapse's shape (the body of v1 DELETE, `shutdown_room` in v2's
/// delete status).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Report {
    pub kicked_users: Vec<String>,
    pub failed_to_kick_users: Vec<String>,
    pub local_aliases: Vec<String>,
    pub new_room_id: Option<String>,
}

#[derive(Debug, Clone, Default)]
pub struct Params {
    /// The admin asking (recorded as who blocked the room).
    pub requester: String,
    pub block: bool,
    /// Local user who creates a replacement room the joined members are moved to.
    pub new_room_user_id: Option<String>,
    pub new_room_name: Option<String>,
    pub message: Option<String>,
}

pub const DEFAULT_NEW_ROOM_NAME: &str = "Content Violation Notification";
pub const DEFAULT_MESSAGE: &str = "Sharing illegal content on this server is not permitted \
    and rooms in violation will be blocked.";

/// A room refuses joins, invites and knocks once an admin has blocked it, from anyone
/// (server admins included, as in Synapse).
pub async fn check_not_blocked(app: &App, room_id: &str) -> Result<()> {
    let rid = room_id.to_string();
    if app.db.read(move |c| room_store::blocked_by(c, &rid)).await?.is_some() {
        return Err(Error::Forbidden("This room has been blocked on this server".into()));
    }
    Ok(())
}

/// Shut the room down (without purging it). An unknown room is blocked if asked and
/// otherwise left alone: the report is then empty.
pub async fn shutdown(app: &App, room_id: &str, p: &Params) -> Result<Report> {
    let mut report = Report::default();
    if p.block {
        let (rid, by) = (room_id.to_string(), p.requester.clone());
        app.db.write(move |c| room_store::block(c, &rid, &by, now_ms())).await?;
        tracing::info!(%room_id, by = %p.requester, "blocked room");
    }
    let rid = room_id.to_string();
    let Some(room) = app.db.read(move |c| room_store::get(c, &rid)).await? else {
        return Ok(report);
    };
    let replacement = match &p.new_room_user_id {
        Some(creator) => {
            let req = create::CreateRoom {
                preset: Some("public_chat".into()),
                name: Some(p.new_room_name.clone().unwrap_or_else(|| DEFAULT_NEW_ROOM_NAME.into())),
                power_level_content_override: json!({"users_default": -10}).as_object().cloned(),
                ..Default::default()
            };
            let new_id = create::create(app, creator, req).await?;
            report.new_room_id = Some(new_id.clone());
            Some((creator.clone(), new_id))
        }
        None => None,
    };
    let nid = room.nid;
    let members = app.db.read(move |c| room_store::local_members(c, nid)).await?;
    for (user_id, m) in members {
        if !matches!(m.as_str(), "join" | "invite" | "knock") {
            continue;
        }
        // Each member leaves by themselves, as in Synapse (a leave needs no power).
        let left = async {
            membership::set_membership(app, &user_id, room_id, &user_id, "leave", None, None)
                .await?;
            let uid = user_id.clone();
            app.db.write(move |c| events::set_forgotten(c, nid, &uid)).await?;
            if let Some((_, new_room)) = &replacement
                && m == "join"
            {
                membership::join(app, &user_id, new_room, None).await?;
            }
            Ok::<_, Error>(())
        };
        match left.await {
            Ok(()) => report.kicked_users.push(user_id),
            Err(e) => {
                tracing::warn!(%room_id, %user_id, error = %e, "could not remove user from room");
                report.failed_to_kick_users.push(user_id);
            }
        }
    }
    if let Some((creator, new_room)) = &replacement {
        let msg = p.message.clone().unwrap_or_else(|| DEFAULT_MESSAGE.into());
        let content = json!({"msgtype": "m.text", "body": msg});
        super::send(app, new_room, creator, NewEvent::message("m.room.message", content), None)
            .await?;
        let new_room = new_room.clone();
        report.local_aliases = app
            .db
            .write(move |c| {
                let to = room_store::get(c, &new_room)?
                    .ok_or_else(|| Error::internal("replacement room vanished"))?;
                room_store::move_aliases(c, nid, to.nid)
            })
            .await?;
    }
    app.notifier.notify();
    tracing::info!(%room_id, kicked = report.kicked_users.len(), "shut down room");
    Ok(report)
}

/// Remove every trace of the room from the database (404 if Glia does not know it). The
/// room stays locked throughout, so no event can be added to it meanwhile, and its
/// in-memory handle is dropped, so a later use finds it gone.
pub async fn purge(app: &App, room_id: &str) -> Result<()> {
    let mut room = app.rooms.lock(app, room_id).await?;
    let nid = room.nid;
    let outcome = app.db.write(move |c| room_store::purge(c, nid)).await;
    Rooms::invalidate(&mut room);
    outcome?;
    app.notifier.notify();
    tracing::info!(%room_id, "purged room");
    Ok(())
}
