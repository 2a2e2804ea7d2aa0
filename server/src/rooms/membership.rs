//! Membership changes: join, invite, leave, kick, ban, unban. Each is one `m.room.member`
//! event; the room version's auth rules decide whether it is allowed.

use ruma::OwnedEventId;
use serde_json::{Value, json};

use super::{NewEvent, Txn};
use crate::app::App;
use crate::error::{Error, Result, invalid_param};
use crate::store::{rooms, users};

/// A join or invite carries the user's profile, as in Synapse.
async fn profile_content(app: &App, user_id: &str, membership: &str) -> Result<Value> {
    let mut content = json!({"membership": membership});
    let uid = user_id.to_string();
    if let Some(p) = app.db.read(move |c| users::get(c, &uid)).await? {
        if let Some(d) = p.displayname {
            content["displayname"] = json!(d);
        }
        if let Some(a) = p.avatar_url {
            content["avatar_url"] = json!(a);
        }
    }
    Ok(content)
}

/// Resolve a room ID or a local alias to a room ID.
pub async fn resolve_room(app: &App, id_or_alias: &str) -> Result<String> {
    if id_or_alias.starts_with('!') {
        ruma::RoomId::parse(id_or_alias).map_err(|_| invalid_param("Invalid room ID"))?;
        return Ok(id_or_alias.to_string());
    }
    if id_or_alias.starts_with('#') {
        ruma::RoomAliasId::parse(id_or_alias).map_err(|_| invalid_param("Invalid room alias"))?;
        crate::appservice::query::ensure_alias(app, id_or_alias).await;
        let a = id_or_alias.to_string();
        let found = app.db.read(move |c| rooms::get_alias(c, &a)).await?;
        return found.map(|(r, _)| r).ok_or_else(|| Error::NotFound("Room alias not found".into()));
    }
    Err(invalid_param(format!("{id_or_alias} is neither a room ID nor an alias")))
}

/// Resolve a room ID or an alias on any server to a room ID and the servers the alias
/// names (asking the alias's server over federation).
pub async fn resolve_room_anywhere(app: &App, id_or_alias: &str) -> Result<(String, Vec<String>)> {
    let remote = id_or_alias.starts_with('#')
        && ruma::RoomAliasId::parse(id_or_alias)
            .is_ok_and(|a| a.server_name() != app.config.server_name);
    if !remote {
        return Ok((resolve_room(app, id_or_alias).await?, vec![]));
    }
    let server = id_or_alias.split_once(':').map(|(_, s)| s).unwrap_or_default();
    let path = format!(
        "/_matrix/federation/v1/query/directory?room_alias={}",
        crate::federation::encode(id_or_alias)
    );
    let (status, body) = app.fed_request(server, http::Method::GET, &path, None).await?;
    if !status.is_success() {
        return Err(Error::NotFound("Room alias not found".into()));
    }
    let room_id = body["room_id"]
        .as_str()
        .ok_or_else(|| Error::Unknown(format!("{server} answered no room_id")))?
        .to_string();
    let servers = body["servers"]
        .as_array()
        .map(|a| a.iter().filter_map(|s| s.as_str().map(str::to_string)).collect())
        .unwrap_or_default();
    Ok((room_id, servers))
}

/// Join (`membership` "join") or knock on ("knock") a room this server is not in,
/// through other servers.
pub async fn remote_membership(
    app: &App,
    user_id: &str,
    room_id: &str,
    servers: &[String],
    reason: Option<&str>,
    membership: &str,
) -> Result<OwnedEventId> {
    super::shutdown::check_not_blocked(app, room_id).await?;
    let content = with_reason(profile_content(app, user_id, membership).await?, reason);
    let fed = crate::federation::membership::Remote { app, user_id, room_id, content };
    if membership == "knock" { fed.knock(servers).await } else { fed.join(servers).await }
}

fn with_reason(mut content: Value, reason: Option<&str>) -> Value {
    if let Some(r) = reason {
        content["reason"] = json!(r);
    }
    content
}

pub async fn join(
    app: &App,
    user_id: &str,
    room_id: &str,
    reason: Option<&str>,
) -> Result<OwnedEventId> {
    super::shutdown::check_not_blocked(app, room_id).await?;
    let content = with_reason(profile_content(app, user_id, "join").await?, reason);
    let mut room = app.rooms.lock(app, room_id).await?;
    // Joining again while joined is a no-op that returns the current event, as in Synapse.
    if room.membership_of(user_id).as_deref() == Some("join")
        && let Some(e) = room.get("m.room.member", user_id)
    {
        return Ok(e.event_id.clone());
    }
    let new = NewEvent::state("m.room.member", user_id, content);
    super::send_locked(app, &mut room, user_id, new, None).await
}

pub async fn invite(
    app: &App,
    sender: &str,
    room_id: &str,
    target: &str,
    reason: Option<&str>,
) -> Result<OwnedEventId> {
    ruma::UserId::parse(target).map_err(|_| invalid_param("Invalid user ID"))?;
    super::shutdown::check_not_blocked(app, room_id).await?;
    crate::appservice::query::ensure_user(app, target).await;
    let content = with_reason(json!({"membership": "invite"}), reason);
    let mut room = app.rooms.lock(app, room_id).await?;
    match room.membership_of(target).as_deref() {
        Some("join") => return Err(Error::Forbidden(format!("{target} is already in the room."))),
        Some("ban") => return Err(Error::Forbidden(format!("{target} is banned from the room"))),
        _ => {}
    }
    let new = NewEvent::state("m.room.member", target, content);
    let remote =
        ruma::UserId::parse(target).is_ok_and(|t| t.server_name() != app.config.server_name);
    if !remote {
        return super::send_locked(app, &mut room, sender, new, None).await;
    }
    // A remote user's server countersigns the invite before it enters the room.
    let pdu = super::builder::build(app, &room, sender, new, crate::store::now_ms())?;
    super::builder::authorise(&room, &pdu)
        .map_err(|reason| Error::Forbidden(format!("Event not allowed: {reason}")))?;
    let signed = crate::federation::membership::send_invite(app, &room, &pdu).await?;
    super::persist(app, &mut room, vec![(signed.clone(), None)]).await?;
    Ok(signed.event_id.clone())
}

/// Leave, kick, ban and unban: `sender` sets `target`'s membership.
pub async fn set_membership(
    app: &App,
    sender: &str,
    room_id: &str,
    target: &str,
    membership: &str,
    reason: Option<&str>,
    txn: Option<Txn>,
) -> Result<OwnedEventId> {
    ruma::UserId::parse(target).map_err(|_| invalid_param("Invalid user ID"))?;
    if membership == "knock" {
        super::shutdown::check_not_blocked(app, room_id).await?;
    }
    // Rejecting an invite to (or leaving) a room this server is not in.
    if membership == "leave"
        && sender == target
        && !crate::federation::membership::is_resident(app, room_id).await?
    {
        let (rid, uid) = (room_id.to_string(), target.to_string());
        let known = app
            .db
            .read(move |c| match rooms::get(c, &rid)? {
                Some(r) => crate::store::events::membership(c, r.nid, &uid),
                None => Ok(None),
            })
            .await?;
        if matches!(known.as_deref(), Some("invite") | Some("knock")) {
            return crate::federation::membership::leave_remote(app, target, room_id).await;
        }
    }
    let mut room = app.rooms.lock(app, room_id).await?;
    let current = room.membership_of(target);
    if membership == "leave" && sender == target && current.is_none() {
        return Err(Error::Forbidden("You are not in this room".into()));
    }
    if membership == "knock" && current.as_deref() == Some("join") {
        return Err(Error::Forbidden("You are already in the room".into()));
    }
    let mut content = with_reason(json!({"membership": membership}), reason);
    if membership == "knock" {
        // A knock shows who knocks, like a join.
        let profile = profile_content(app, target, "knock").await?;
        for k in ["displayname", "avatar_url"] {
            if let Some(v) = profile.get(k) {
                content[k] = v.clone();
            }
        }
    }
    let new = NewEvent::state(
        "m.room.member",
        target,
        with_reason(json!({"membership": membership}), reason),
    );
    super::send_locked(app, &mut room, sender, new, txn).await
}
