//! Joining, leaving and inviting across servers, resident side: `make_join` /
//! `send_join`, `make_leave` / `send_leave` (v1 and v2) and `invite` (v1 and v2).

use std::sync::Arc;

use ruma::canonical_json::CanonicalJsonObject;
use ruma::room_version_rules::{RoomIdFormatVersion, RoomVersionRules};
use serde_json::{Value, json};

use crate::app::App;
use crate::error::{Error, Result, bad_json};
use crate::federation::inbound::{self, Outcome};
use crate::http::request::Req;
use crate::http::response::{Resp, ok};
use crate::http::router::Router;
use crate::rooms::{NewEvent, Pdu, builder};
use crate::store::{events, now_ms};

pub fn routes(r: &mut Router) {
    r.get("/_matrix/federation/v1/make_join/{}/{}", make_join);
    r.get("/_matrix/federation/v1/make_leave/{}/{}", make_leave);
    r.put("/_matrix/federation/v1/send_join/{}/{}", send_join_v1);
    r.put("/_matrix/federation/v2/send_join/{}/{}", send_join_v2);
    r.put("/_matrix/federation/v1/send_leave/{}/{}", send_leave_v1);
    r.put("/_matrix/federation/v2/send_leave/{}/{}", send_leave_v2);
    r.put("/_matrix/federation/v1/invite/{}/{}", invite_v1);
    r.put("/_matrix/federation/v2/invite/{}/{}", invite_v2);
    r.get("/_matrix/federation/v1/make_knock/{}/{}", make_knock);
    r.put("/_matrix/federation/v1/send_knock/{}/{}", send_knock);
}

fn server_of(user_id: &str) -> &str {
    user_id.split_once(':').map(|(_, s)| s).unwrap_or("")
}

async fn make_join(app: Arc<App>, req: Req) -> Result<Resp> {
    make_membership(&app, &req, "join").await
}

async fn make_leave(app: Arc<App>, req: Req) -> Result<Resp> {
    make_membership(&app, &req, "leave").await
}

/// A membership event template for a user of the requesting server.
async fn make_membership(app: &App, req: &Req, membership: &str) -> Result<Resp> {
    let origin = app.auth_server(req).await?;
    let (room_id, user_id) = (req.param(0).to_string(), req.param(1).to_string());
    ruma::UserId::parse(&user_id).map_err(|_| bad_json("Invalid user ID"))?;
    if server_of(&user_id) != origin {
        return Err(Error::Forbidden("The user is not from the requesting server".into()));
    }
    let room = app.rooms.lock(app, &room_id).await?;
    check_acl(&room, &origin)?;
    let resident = {
        let (nid, own) = (room.nid, app.config.server_name.to_string());
        app.db.read(move |c| crate::store::federation::server_in_room(c, nid, &own)).await?
    };
    if !resident {
        return Err(Error::NotFound("This server is not in the room".into()));
    }
    // A joining or knocking server must speak the room's version.
    if membership == "join" || membership == "knock" {
        let supported: Vec<&str> =
            req.query.iter().filter(|(k, _)| k == "ver").map(|(_, v)| v.as_str()).collect();
        let version = room.version.as_str();
        // No `ver` at all means the joining server speaks only version 1.
        if !(supported.contains(&version) || supported.is_empty() && version == "1") {
            // The spec's error carries the room's version, so the joiner can say why.
            return Err(Error::Upstream {
                status: ::http::StatusCode::BAD_REQUEST,
                errcode: "M_INCOMPATIBLE_ROOM_VERSION",
                msg: format!(
                    "Your homeserver does not support the features required to join this room (version {version})"
                ),
                extra: json!({"room_version": version}),
            });
        }
    }
    let new = NewEvent::state("m.room.member", &user_id, json!({"membership": membership}));
    let template = builder::template(&room, &user_id, &new, now_ms())?;
    // Refuse now what the auth rules would refuse later (banned, invite-only, ...).
    let probe = probe(&room, &template)?;
    builder::authorise(&room, &probe)
        .map_err(|why| Error::Forbidden(format!("You are not allowed to {membership}: {why}")))?;
    Ok(ok(&json!({"event": template, "room_version": room.version.as_str()})))
}

/// 403 when the room's server ACL bans the requesting server.
fn check_acl(room: &crate::rooms::RoomHandle, origin: &str) -> Result<()> {
    let acl = room.get("m.room.server_acl", "").map(|e| e.content_value());
    if crate::rooms::acl::allows(acl.as_ref(), origin) {
        Ok(())
    } else {
        Err(Error::Forbidden(format!("Server {origin} is banned from this room")))
    }
}

/// The template as a PDU, to run the auth rules on it before anyone signs it.
fn probe(room: &crate::rooms::RoomHandle, template: &CanonicalJsonObject) -> Result<Arc<Pdu>> {
    let id = ruma::OwnedEventId::try_from("$probe:glia.invalid").map_err(Error::internal)?;
    Ok(Arc::new(Pdu::from_object(id, template.clone(), &room.rules)?))
}

async fn make_knock(app: Arc<App>, req: Req) -> Result<Resp> {
    make_membership(&app, &req, "knock").await
}

/// A knock from another server's user: accepted into the room and relayed, answered with
/// the stripped state the knocker sees (`knock_room_state`).
async fn send_knock(app: Arc<App>, req: Req) -> Result<Resp> {
    send_membership(&app, &req, "knock").await?;
    let room = app.rooms.lock(&app, req.param(0)).await?;
    let stripped = crate::federation::membership::room_state_for_outsider(&room, None);
    Ok(ok(&json!({"knock_room_state": stripped})))
}

async fn send_join_v1(app: Arc<App>, req: Req) -> Result<Resp> {
    let body = send_membership(&app, &req, "join").await?;
    Ok(ok(&json!([200, body])))
}

async fn send_join_v2(app: Arc<App>, req: Req) -> Result<Resp> {
    Ok(ok(&send_membership(&app, &req, "join").await?))
}

async fn send_leave_v1(app: Arc<App>, req: Req) -> Result<Resp> {
    send_membership(&app, &req, "leave").await?;
    Ok(ok(&json!([200, {}])))
}

async fn send_leave_v2(app: Arc<App>, req: Req) -> Result<Resp> {
    send_membership(&app, &req, "leave").await?;
    Ok(ok(&json!({})))
}

/// Accept a signed join or leave from the user's server, relay it to the room's other
/// servers, and (for joins) answer with the room's state and auth chain.
async fn send_membership(app: &App, req: &Req, membership: &str) -> Result<Value> {
    let origin = app.auth_server(req).await?;
    let (room_id, event_id) = (req.param(0).to_string(), req.param(1).to_string());
    let raw = req.json_value()?;
    if raw["type"] != "m.room.member" || raw["content"]["membership"] != membership {
        return Err(bad_json(format!("Not an m.room.member {membership} event")));
    }
    let sender = raw["sender"].as_str().unwrap_or_default();
    if raw["state_key"].as_str() != Some(sender) {
        return Err(bad_json("state_key must be the sender"));
    }
    if server_of(sender) != origin {
        return Err(Error::Forbidden("The sender is not from the requesting server".into()));
    }
    if raw["room_id"].as_str() != Some(room_id.as_str()) {
        return Err(bad_json("The event is for another room"));
    }
    let mut room = app.rooms.lock(app, &room_id).await?;
    check_acl(&room, &origin)?;
    let pdu = inbound::verify_pdu(app, &room.rules, &raw).await?;
    if pdu.event_id.as_str() != event_id {
        return Err(bad_json("The event ID does not match the event"));
    }
    let outcome = inbound::process_relayed(app, &mut room, &origin, pdu.clone()).await?;
    match outcome {
        Outcome::Accepted | Outcome::Known | Outcome::Ignored | Outcome::Queued => {}
        Outcome::SoftFailed => {
            return Err(Error::Forbidden("The event is not allowed by the room's state".into()));
        }
        Outcome::Rejected(why) => {
            return Err(Error::Forbidden(format!("Event not allowed: {why}")));
        }
    }
    if membership != "join" {
        return Ok(json!({}));
    }
    let (eid, rules) = (pdu.event_id.to_string(), room.rules.clone());
    let own = app.config.server_name.to_string();
    app.db
        .read(move |c| {
            let row = events::by_id(c, &eid)?.ok_or_else(|| Error::internal("join not stored"))?;
            let state = match row.state_before {
                Some(g) => crate::rooms::resolve::ids_of_group(c, g)?,
                None => Default::default(),
            };
            let cache = crate::rooms::resolve::EventCache::new(c, &rules, &[]);
            let ids: Vec<ruma::OwnedEventId> = state
                .values()
                .filter_map(|i| ruma::OwnedEventId::try_from(i.as_str()).ok())
                .collect();
            let mut chain_ids = cache.auth_chain(&ids);
            chain_ids.extend(cache.get(&eid).map(|p| p.auth_events.clone()).unwrap_or_default());
            let state_events: Vec<_> = state.values().filter_map(|i| cache.get(i)).collect();
            let auth_chain: Vec<_> =
                chain_ids.iter().filter_map(|i| cache.get(i.as_str())).collect();
            let mut servers = crate::store::federation::hosts(c, row.room_nid, "")?;
            if !servers.contains(&own) {
                servers.push(own.clone());
            }
            Ok(send_join_response(&own, state_events, auth_chain, servers))
        })
        .await
}

/// The `send_join` (v2) answer: the state before the join and its auth chain, oldest
/// first (by depth, then ID) so the payload does not depend on hash-map order.
pub fn send_join_response(
    own: &str,
    mut state: Vec<crate::rooms::PduRef>,
    mut auth_chain: Vec<crate::rooms::PduRef>,
    mut servers: Vec<String>,
) -> Value {
    let order = |a: &crate::rooms::PduRef, b: &crate::rooms::PduRef| {
        (a.depth, a.event_id.as_str()).cmp(&(b.depth, b.event_id.as_str()))
    };
    state.sort_by(order);
    auth_chain.sort_by(order);
    servers.sort();
    json!({
        "origin": own,
        "state": state.iter().map(|p| json!(p.json)).collect::<Vec<_>>(),
        "auth_chain": auth_chain.iter().map(|p| json!(p.json)).collect::<Vec<_>>(),
        "members_omitted": false,
        "servers_in_room": servers,
    })
}

async fn invite_v1(app: Arc<App>, req: Req) -> Result<Resp> {
    let raw = req.json_value()?;
    let version = "1".to_string();
    let state = raw["unsigned"]["invite_room_state"].clone();
    let signed = receive_invite(&app, &req, raw, &version, state).await?;
    Ok(ok(&json!([200, {"event": signed}])))
}

async fn invite_v2(app: Arc<App>, req: Req) -> Result<Resp> {
    let body = req.json_value()?;
    let version =
        body["room_version"].as_str().ok_or_else(|| bad_json("Missing room_version"))?.to_string();
    let signed = receive_invite(
        &app,
        &req,
        body["event"].clone(),
        &version,
        body["invite_room_state"].clone(),
    )
    .await?;
    Ok(ok(&json!({"event": signed})))
}

/// An invite of one of our users to a room on another server: check it, countersign it,
/// and remember it so the user sees it in /sync.
async fn receive_invite(
    app: &App,
    req: &Req,
    raw: Value,
    version: &str,
    invite_room_state: Value,
) -> Result<Value> {
    let origin = app.auth_server(req).await?;
    let (room_id, event_id) = (req.param(0).to_string(), req.param(1).to_string());
    let (_, rules) = crate::rooms::rules_for(version).map_err(|_| {
        Error::IncompatibleRoomVersion(format!("Room version {version} is not supported"))
    })?;
    if raw["type"] != "m.room.member" || raw["content"]["membership"] != "invite" {
        return Err(bad_json("Not an invite event"));
    }
    if raw["room_id"].as_str() != Some(room_id.as_str()) {
        return Err(bad_json("The event is for another room"));
    }
    let sender = raw["sender"].as_str().unwrap_or_default().to_string();
    if server_of(&sender) != origin {
        return Err(Error::Forbidden("The inviter is not from the requesting server".into()));
    }
    // A room we know with an ACL banning the inviting server: refused before anything
    // about the user is told (Synapse checks the ACL first too).
    let (rid, o) = (room_id.clone(), origin.clone());
    let banned = app
        .db
        .read(move |c| match crate::store::rooms::get(c, &rid)? {
            Some(r) => Ok(!crate::rooms::acl::room_allows(c, r.nid, &o)?),
            None => Ok(false),
        })
        .await?;
    if banned {
        return Err(Error::Forbidden(format!("Server {origin} is banned from this room")));
    }
    let target = raw["state_key"].as_str().unwrap_or_default().to_string();
    if server_of(&target) != app.config.server_name.as_str() {
        return Err(bad_json("The invited user is not on this server"));
    }
    let t = target.clone();
    let user = app.db.read(move |c| crate::store::users::get(c, &t)).await?;
    // An invite for a user who does not exist (or is deactivated) is signed and accepted
    // all the same, as Synapse does, so the answer does not tell which users exist; it
    // is not kept, as nobody can see it.
    let deliver = user.is_some_and(|u| !u.deactivated);
    let pdu = inbound::verify_pdu(app, &rules, &raw).await?;
    if pdu.event_id.as_str() != event_id {
        return Err(bad_json("The event ID does not match the event"));
    }
    if matches!(rules.room_id_format, RoomIdFormatVersion::V2) {
        check_invite_create(&rules, &room_id, &invite_room_state)?;
    }
    let mut obj = pdu.json.clone();
    ruma::signatures::sign_json(app.config.server_name.as_str(), &app.signing_key.pair, &mut obj)
        .map_err(|e| Error::internal(format!("signing: {e}")))?;
    let signed: Value = serde_json::to_value(&obj).map_err(Error::internal)?;
    if !deliver {
        return Ok(signed);
    }
    crate::federation::membership::store_remote_invite(
        app,
        &room_id,
        version,
        &rules,
        obj,
        invite_room_state,
    )
    .await?;
    Ok(signed)
}

/// v12+: `invite_room_state` must carry the room's create event as a PDU whose hash is
/// the room ID (spec 1.16, `PUT /v2/invite`), so a server cannot invite to a room that is
/// not what it claims.
fn check_invite_create(rules: &RoomVersionRules, room_id: &str, state: &Value) -> Result<()> {
    let bad = || crate::error::invalid_param("invite_room_state has no valid m.room.create event");
    let create = state
        .as_array()
        .and_then(|l| l.iter().find(|e| e["type"] == "m.room.create"))
        .ok_or_else(bad)?;
    let obj: CanonicalJsonObject = serde_json::from_value(create.clone()).map_err(|_| bad())?;
    let id = inbound::event_id_of(&obj, rules).map_err(|_| bad())?;
    let derived = crate::rooms::pdu::room_id_of_create(&id).map_err(|_| bad())?;
    if derived.as_str() != room_id {
        return Err(bad());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_v12_invite_must_carry_the_create_event_that_names_the_room() {
        let rules = RoomVersionRules::V12;
        let create = json!({
            "auth_events": [], "prev_events": [], "content": {"room_version": "12"},
            "depth": 1, "origin_server_ts": 1, "sender": "@a:example.org", "state_key": "",
            "type": "m.room.create", "hashes": {"sha256": "aGFzaA"}, "signatures": {},
        });
        let obj: CanonicalJsonObject = serde_json::from_value(create.clone()).expect("object");
        let id = inbound::event_id_of(&obj, &rules).expect("id");
        let room = crate::rooms::pdu::room_id_of_create(&id).expect("room");
        let name = json!({"type": "m.room.name", "state_key": "", "content": {"name": "x"}});
        let state = json!([name, create]);
        assert!(check_invite_create(&rules, room.as_str(), &state).is_ok());
        assert!(check_invite_create(&rules, "!someotherroom", &state).is_err());
        assert!(check_invite_create(&rules, room.as_str(), &json!([name])).is_err());
        assert!(check_invite_create(&rules, room.as_str(), &json!(null)).is_err());
    }
}
