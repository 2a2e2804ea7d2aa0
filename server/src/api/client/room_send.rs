//! Sending events and redactions, idempotent per device transaction ID.

use std::sync::Arc;

use serde_json::{Value, json};

use crate::app::App;
use crate::error::{Error, Result, bad_json, invalid_param, not_found};
use crate::http::request::Req;
use crate::http::response::{Resp, ok};
use crate::http::router::Router;
use crate::rooms::{self, NewEvent, Txn};
use crate::store::events;

pub fn routes(r: &mut Router) {
    r.put("/_matrix/client/{v}/rooms/{}/send/{}/{}", send);
    // The deprecated form without a transaction ID (r0; Synapse and SyTest still use it).
    r.post("/_matrix/client/{v}/rooms/{}/send/{}", send);
    r.put("/_matrix/client/{v}/rooms/{}/redact/{}/{}", redact);
}

fn txn(user: &crate::http::auth::User, scope: String, txn_id: &str) -> Txn {
    Txn {
        user_nid: user.user_nid,
        device_id: user.device_id.clone(),
        scope,
        txn_id: txn_id.to_string(),
    }
}

fn room_param(req: &Req) -> Result<String> {
    ruma::RoomId::parse(req.param(0)).map_err(|_| invalid_param("Invalid room ID"))?;
    Ok(req.param(0).to_string())
}

/// Unknown rooms answer like rooms the sender is not in.
fn not_in_room(e: Error, user: &str, room: &str) -> Error {
    match e {
        Error::NotFound(_) => Error::Forbidden(format!("User {user} not in room {room}")),
        other => other,
    }
}

async fn send(app: Arc<App>, req: Req) -> Result<Resp> {
    let user = app.auth(&req).await?;
    let room_id = room_param(&req)?;
    let event_type = req.param(1).to_string();
    if event_type.is_empty() {
        return Err(invalid_param("Empty event type"));
    }
    let content = Value::Object(req.json_object(false)?);
    // `rc_message`, except for a retransmission, which gets its event ID back as before.
    // POST has no transaction ID: a fresh one makes each request a new event.
    let txn_id = req.params.get(2).cloned().unwrap_or_else(|| crate::users::random_string(24));
    let t = txn(&user, format!("{room_id}/send"), &txn_id);
    if !app.ratelimits.disabled {
        let k = &t;
        let seen = app
            .db
            .read_point(|c| events::txn_event(c, k.user_nid, &k.device_id, &k.scope, &k.txn_id))
            .await?;
        let rl = &app.ratelimits;
        if seen.is_none() {
            app.ratelimit_user(&user, &[(&rl.message, rl.config.message, &user.user_id)], true)
                .await?;
        }
    }
    let new = NewEvent::message(&event_type, content);
    let id = rooms::send(&app, &room_id, &user.user_id, new, Some(t))
        .await
        .map_err(|e| not_in_room(e, &user.user_id, &room_id))?;
    Ok(ok(&json!({"event_id": id})))
}

async fn redact(app: Arc<App>, req: Req) -> Result<Resp> {
    let user = app.auth(&req).await?;
    let room_id = room_param(&req)?;
    let target = req.param(1).to_string();
    ruma::EventId::parse(&target).map_err(|_| invalid_param("Invalid event ID"))?;
    let body = req.json_object(true)?;
    let mut content = json!({});
    match body.get("reason") {
        None | Some(Value::Null) => {}
        Some(Value::String(r)) => content["reason"] = json!(r),
        Some(_) => return Err(bad_json("'reason' must be a string")),
    }
    let t = target.clone();
    let target_row = app.db.read(move |c| events::by_id(c, &t)).await?;
    let mut room = app
        .rooms
        .lock(&app, &room_id)
        .await
        .map_err(|e| not_in_room(e, &user.user_id, &room_id))?;
    if target_row.as_ref().is_some_and(|r| r.room_nid != room.nid) {
        return Err(not_found("Event not found"));
    }
    if room.rules.redaction.content_field_redacts {
        content["redacts"] = json!(target);
    }
    // Redacting someone else's event needs the power level `redact`. An event we do not
    // have (yet: another server's) may be redacted with that power, as in Synapse; the
    // redaction is applied when the event arrives. Without it, the event is not found.
    if target_row.as_ref().is_none_or(|r| r.sender != user.user_id) {
        let power = rooms::state_content(&room, "m.room.power_levels", "").unwrap_or(json!({}));
        let needed = power["redact"].as_i64().unwrap_or(50);
        if rooms::user_level(&room, &user.user_id) < needed {
            if target_row.is_none() {
                return Err(not_found("Event not found"));
            }
            return Err(Error::Forbidden(
                "You don't have permission to redact other users' events".into(),
            ));
        }
    }
    // Idempotent per transaction ID.
    let (nid, dev, tid) = (user.user_nid, user.device_id.clone(), req.param(2).to_string());
    let scope = format!("{room_id}/redact");
    let scope2 = scope.clone();
    if let Some(id) = app.db.read(move |c| events::txn_event(c, nid, &dev, &scope, &tid)).await? {
        return Ok(ok(&json!({"event_id": id})));
    }
    let new = NewEvent {
        event_type: "m.room.redaction".into(),
        state_key: None,
        content,
        redacts: Some(target.clone()),
    };
    let id = rooms::send_locked(
        &app,
        &mut room,
        &user.user_id,
        new,
        Some(txn(&user, scope2, req.param(2))),
    )
    .await?;
    // The target was redacted in the write that stored the redaction.
    Ok(ok(&json!({"event_id": id})))
}
