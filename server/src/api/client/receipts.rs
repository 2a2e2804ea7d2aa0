//! Read receipts (`/receipt`) and read markers (`/read_markers`).

use std::sync::Arc;

use serde_json::{Value, json};

use crate::app::App;
use crate::error::{Error, Result, bad_json, invalid_param, not_found};
use crate::http::auth::User;
use crate::http::request::Req;
use crate::http::response::{Resp, empty_object};
use crate::http::router::Router;
use crate::store::rooms::RoomRow;
use crate::store::{account_data, events, now_ms, receipts};

pub fn routes(r: &mut Router) {
    r.post("/_matrix/client/{v}/rooms/{}/receipt/{}/{}", receipt);
    r.post("/_matrix/client/{v}/rooms/{}/read_markers", read_markers);
}

async fn event_in_room(app: &App, room: &RoomRow, event_id: &str) -> Result<()> {
    ruma::EventId::parse(event_id).map_err(|_| invalid_param("Invalid event ID"))?;
    let (id, nid) = (event_id.to_string(), room.nid);
    let row = app.db.read(move |c| events::by_id(c, &id)).await?;
    match row {
        Some(r) if r.room_nid == nid => Ok(()),
        _ => Err(not_found("Event not found in this room")),
    }
}

async fn store_receipt(
    app: &App,
    user: &User,
    room: &RoomRow,
    kind: &str,
    event_id: &str,
    thread: &str,
) -> Result<()> {
    let row = receipts::ReceiptRow {
        user_id: user.user_id.clone(),
        receipt_type: kind.to_string(),
        thread_id: thread.to_string(),
        event_id: event_id.to_string(),
        ts: now_ms(),
    };
    let nid = room.nid;
    let edu = serde_json::json!({
        room.room_id.clone(): {kind: {row.user_id.clone(): {
            "event_ids": [row.event_id],
            "data": if thread.is_empty() { json!({"ts": row.ts}) } else { json!({"ts": row.ts, "thread_id": thread}) },
        }}}
    });
    let (ts, rid) = (row.ts, room.room_id.clone());
    app.db.write(move |c| receipts::put(c, nid, &row)).await?;
    app.notifier.notify();
    // Private receipts stay on this server.
    if kind == "m.read" {
        let own = app.config.server_name.to_string();
        let hosts =
            app.db.read(move |c| crate::store::federation::allowed_hosts(c, nid, &own)).await?;
        crate::federation::sender::send_edu(app, hosts, "m.receipt", edu).await?;
    }
    crate::appservice::ephemeral::receipt(app, &rid, &user.user_id, kind, event_id, ts, thread)
        .await;
    // The user's devices show a new badge count.
    app.pushes.badge(&user.user_id);
    Ok(())
}

async fn set_fully_read(app: &App, user: &User, room: &RoomRow, event_id: &str) -> Result<()> {
    let content = json!({"event_id": event_id}).to_string();
    let (nid, rid) = (user.user_nid, room.room_id.clone());
    app.db.write(move |c| account_data::put(c, nid, &rid, "m.fully_read", &content)).await?;
    app.notifier.notify();
    Ok(())
}

async fn receipt(app: Arc<App>, req: Req) -> Result<Resp> {
    let user = app.auth(&req).await?;
    let room = super::room_state::joined_room(&app, &user, req.param(0)).await?;
    let kind = req.param(1).to_string();
    let event_id = req.param(2).to_string();
    let body = req.json_object(true)?;
    let thread = match body.get("thread_id") {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(t)) if t == "main" || t.starts_with('$') => t.clone(),
        Some(_) => return Err(bad_json("'thread_id' must be \"main\" or an event ID")),
    };
    event_in_room(&app, &room, &event_id).await?;
    match kind.as_str() {
        "m.read" | "m.read.private" => {
            store_receipt(&app, &user, &room, &kind, &event_id, &thread).await?
        }
        "m.fully_read" if thread.is_empty() => {
            set_fully_read(&app, &user, &room, &event_id).await?
        }
        "m.fully_read" => return Err(bad_json("m.fully_read cannot be threaded")),
        other => return Err(Error::BadJson(format!("Unknown receipt type {other}"))),
    }
    Ok(empty_object())
}

async fn read_markers(app: Arc<App>, req: Req) -> Result<Resp> {
    let user = app.auth(&req).await?;
    let room = super::room_state::joined_room(&app, &user, req.param(0)).await?;
    let body = req.json_object(false)?;
    let field = |k: &str| -> Result<Option<String>> {
        match body.get(k) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(_) => Err(bad_json(format!("'{k}' must be an event ID"))),
        }
    };
    let (fully, read, private) =
        (field("m.fully_read")?, field("m.read")?, field("m.read.private")?);
    for id in [&fully, &read, &private].into_iter().flatten() {
        event_in_room(&app, &room, id).await?;
    }
    if let Some(id) = &read {
        store_receipt(&app, &user, &room, "m.read", id, "").await?;
    }
    if let Some(id) = &private {
        store_receipt(&app, &user, &room, "m.read.private", id, "").await?;
    }
    if let Some(id) = &fully {
        set_fully_read(&app, &user, &room, id).await?;
    }
    Ok(empty_object())
}
