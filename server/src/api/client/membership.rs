//! Room membership: join, invite, leave, kick, ban, unban, forget, joined_rooms.

use std::sync::Arc;

use serde_json::{Value, json};

use crate::app::App;
use crate::error::{Error, Result, bad_json, invalid_param};
use crate::http::request::Req;
use crate::http::response::{Resp, empty_object, ok};
use crate::http::router::Router;
use crate::rooms::membership;
use crate::store::{events, rooms};

pub fn routes(r: &mut Router) {
    r.post("/_matrix/client/{v}/join/{}", join_by_id_or_alias);
    r.post("/_matrix/client/{v}/rooms/{}/join", join_room);
    r.post("/_matrix/client/{v}/rooms/{}/invite", invite);
    r.post("/_matrix/client/{v}/rooms/{}/leave", leave);
    r.post("/_matrix/client/{v}/rooms/{}/kick", kick);
    r.post("/_matrix/client/{v}/rooms/{}/ban", ban);
    r.post("/_matrix/client/{v}/rooms/{}/unban", unban);
    r.post("/_matrix/client/{v}/rooms/{}/forget", forget);
    r.get("/_matrix/client/{v}/joined_rooms", joined_rooms);
    r.post("/_matrix/client/{v}/knock/{}", knock);
}

fn reason(body: &serde_json::Map<String, Value>) -> Result<Option<String>> {
    match body.get("reason") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(bad_json("'reason' must be a string")),
    }
}

fn user_id_field(body: &serde_json::Map<String, Value>) -> Result<String> {
    match body.get("user_id") {
        Some(Value::String(s)) => {
            ruma::UserId::parse(s).map_err(|_| invalid_param("Invalid user_id"))?;
            Ok(s.clone())
        }
        None => Err(Error::MissingParam("Missing 'user_id'".into())),
        Some(_) => Err(bad_json("'user_id' must be a string")),
    }
}

async fn do_join(app: &App, req: &Req, id_or_alias: &str) -> Result<Resp> {
    let user = app.auth(req).await?;
    let body = req.json_object(true)?;
    let (room_id, mut servers) = membership::resolve_room_anywhere(app, id_or_alias).await?;
    for (k, v) in &req.query {
        if k == "server_name" || k == "via" {
            servers.push(v.clone());
        }
    }
    let rl = &app.ratelimits;
    if !crate::federation::membership::is_resident(app, &room_id).await? {
        let servers = crate::federation::membership::candidate_servers(
            app,
            &user.user_id,
            &room_id,
            &servers,
        )
        .await?;
        if !servers.is_empty() {
            app.ratelimit_user(
                &user,
                &[(&rl.joins_remote, rl.config.joins_remote, &user.user_id)],
                false,
            )
            .await?;
            let r = reason(&body)?;
            let (uid, rid) = (&user.user_id, &room_id);
            membership::remote_membership(app, uid, rid, &servers, r.as_deref(), "join").await?;
            return Ok(ok(&json!({"room_id": room_id})));
        }
    }
    app.ratelimit_user(&user, &[(&rl.joins_local, rl.config.joins_local, &user.user_id)], false)
        .await?;
    membership::join(app, &user.user_id, &room_id, reason(&body)?.as_deref()).await?;
    Ok(ok(&json!({"room_id": room_id})))
}

async fn join_by_id_or_alias(app: Arc<App>, req: Req) -> Result<Resp> {
    let target = req.param(0).to_string();
    do_join(&app, &req, &target).await
}

async fn join_room(app: Arc<App>, req: Req) -> Result<Resp> {
    let target = req.param(0).to_string();
    if !target.starts_with('!') {
        return Err(invalid_param("Invalid room ID"));
    }
    do_join(&app, &req, &target).await
}

async fn invite(app: Arc<App>, req: Req) -> Result<Resp> {
    let user = app.auth_member(&req).await?;
    let body = req.json_object(false)?;
    let target = user_id_field(&body)?;
    let room_id = membership::resolve_room(&app, req.param(0)).await?;
    let (rl, c) = (&app.ratelimits, &app.ratelimits.config);
    let checks = [
        (&rl.invites_per_room, c.invites_per_room, room_id.as_str()),
        (&rl.invites_per_user, c.invites_per_user, target.as_str()),
        (&rl.invites_per_issuer, c.invites_per_issuer, user.user_id.as_str()),
    ];
    app.ratelimit_user(&user, &checks, false).await?;
    membership::invite(&app, &user.user_id, &room_id, &target, reason(&body)?.as_deref()).await?;
    Ok(empty_object())
}

async fn leave(app: Arc<App>, req: Req) -> Result<Resp> {
    let user = app.auth(&req).await?;
    let body = req.json_object(true)?;
    let room_id = membership::resolve_room(&app, req.param(0)).await?;
    let r = reason(&body)?;
    membership::set_membership(
        &app,
        &user.user_id,
        &room_id,
        &user.user_id,
        "leave",
        r.as_deref(),
        None,
    )
    .await?;
    Ok(empty_object())
}

async fn change_other(app: &App, req: &Req, membership_value: &str) -> Result<Resp> {
    let user = app.auth_member(req).await?;
    let body = req.json_object(false)?;
    let target = user_id_field(&body)?;
    let room_id = membership::resolve_room(app, req.param(0)).await?;
    let r = reason(&body)?;
    membership::set_membership(
        app,
        &user.user_id,
        &room_id,
        &target,
        membership_value,
        r.as_deref(),
        None,
    )
    .await?;
    Ok(empty_object())
}

async fn kick(app: Arc<App>, req: Req) -> Result<Resp> {
    // The auth rules let a moderator "kick" anyone not banned, even someone who never
    // joined or already left; like Synapse, only someone in the room (or invited or
    // knocking) can be kicked.
    app.auth_member(&req).await?;
    let body = req.json_object(false)?;
    let target = user_id_field(&body)?;
    let room_id = membership::resolve_room(&app, req.param(0)).await?;
    let (rid, t) = (room_id.clone(), target.clone());
    let current = app
        .db
        .read(move |c| match rooms::get(c, &rid)? {
            Some(r) => events::membership(c, r.nid, &t),
            None => Ok(None),
        })
        .await?;
    if !matches!(current.as_deref(), Some("join" | "invite" | "knock")) {
        return Err(Error::Forbidden("The target user is not in the room".into()));
    }
    change_other(&app, &req, "leave").await
}

async fn ban(app: Arc<App>, req: Req) -> Result<Resp> {
    change_other(&app, &req, "ban").await
}

async fn unban(app: Arc<App>, req: Req) -> Result<Resp> {
    let user = app.auth_member(&req).await?;
    let body = req.json_object(false)?;
    let target = user_id_field(&body)?;
    let room_id = membership::resolve_room(&app, req.param(0)).await?;
    let current = {
        let (rid, t) = (room_id.clone(), target.clone());
        app.db
            .read(move |c| match rooms::get(c, &rid)? {
                Some(r) => events::membership(c, r.nid, &t),
                None => Ok(None),
            })
            .await?
    };
    if current.as_deref() != Some("ban") {
        return Err(Error::Forbidden(format!("{target} is not banned")));
    }
    let r = reason(&body)?;
    membership::set_membership(&app, &user.user_id, &room_id, &target, "leave", r.as_deref(), None)
        .await?;
    Ok(empty_object())
}

async fn forget(app: Arc<App>, req: Req) -> Result<Resp> {
    let user = app.auth(&req).await?;
    let room_id = membership::resolve_room(&app, req.param(0)).await?;
    let uid = user.user_id.clone();
    app.db
        .write(move |c| {
            let room =
                rooms::get(c, &room_id)?.ok_or_else(|| Error::NotFound("Unknown room".into()))?;
            match events::membership(c, room.nid, &uid)?.as_deref() {
                Some("join") | Some("invite") | Some("knock") => {
                    Err(Error::Unknown("User is still in the room; leave it first".into()))
                }
                None => Err(Error::NotFound("You have never been in this room".into())),
                Some(_) => events::set_forgotten(c, room.nid, &uid),
            }
        })
        .await?;
    app.notifier.notify();
    Ok(empty_object())
}

async fn knock(app: Arc<App>, req: Req) -> Result<Resp> {
    let user = app.auth_member(&req).await?;
    let body = req.json_object(true)?;
    let (room_id, mut servers) = membership::resolve_room_anywhere(&app, req.param(0)).await?;
    let r = reason(&body)?;
    if !crate::federation::membership::is_resident(&app, &room_id).await? {
        for (k, v) in &req.query {
            if k == "server_name" || k == "via" {
                servers.push(v.clone());
            }
        }
        let servers = crate::federation::membership::candidate_servers(
            &app,
            &user.user_id,
            &room_id,
            &servers,
        )
        .await?;
        if !servers.is_empty() {
            let (uid, rid) = (&user.user_id, &room_id);
            membership::remote_membership(&app, uid, rid, &servers, r.as_deref(), "knock").await?;
            return Ok(ok(&json!({"room_id": room_id})));
        }
    }
    membership::set_membership(
        &app,
        &user.user_id,
        &room_id,
        &user.user_id,
        "knock",
        r.as_deref(),
        None,
    )
    .await?;
    Ok(ok(&json!({"room_id": room_id})))
}

async fn joined_rooms(app: Arc<App>, req: Req) -> Result<Resp> {
    let user = app.auth(&req).await?;
    let uid = user.user_id.clone();
    let rows = app.db.read(move |c| events::memberships_of(c, &uid)).await?;
    let joined: Vec<&str> =
        rows.iter().filter(|m| m.membership == "join").map(|m| m.room_id.as_str()).collect();
    Ok(ok(&json!({"joined_rooms": joined})))
}
