//! Ephemeral events for appservices with `receive_ephemeral` (MSC2409, spec v1.13):
//! typing and read receipts of rooms they are interested in, queued like timeline events
//! (each with its `room_id`). Private receipts go only to the appservice owning the user.

use serde_json::{Value, json};

use crate::app::App;

/// The room's typing users, after a change.
pub async fn typing(app: &App, room_id: &str) {
    if !wanted(app) {
        return;
    }
    let (users, _) = app.typing.current(room_id);
    let ev = json!({"type": "m.typing", "room_id": room_id, "content": {"user_ids": users}});
    push(app, room_id, None, ev).await;
}

/// A receipt `user_id` sent for `event_id` (`kind`: m.read, m.read.private, ...).
pub async fn receipt(
    app: &App,
    room_id: &str,
    user_id: &str,
    kind: &str,
    event_id: &str,
    ts: i64,
    thread: &str,
) {
    if !wanted(app) {
        return;
    }
    let mut r = json!({"ts": ts});
    if !thread.is_empty() {
        r["thread_id"] = json!(thread);
    }
    let content = json!({ event_id: { kind: { user_id: r } } });
    let ev = json!({"type": "m.receipt", "room_id": room_id, "content": content});
    let only = (kind == "m.read.private").then_some(user_id);
    push(app, room_id, only, ev).await;
}

/// To-device messages for users of appservices with MSC4203's `receive_to_device`:
/// `(recipient, device ID or "*", content JSON)`, as `/sendToDevice` checked them.
pub async fn to_device(
    app: &App,
    sender: &str,
    event_type: &str,
    local: &[(String, String, String)],
) {
    let mut items = vec![];
    for a in app.appservices.list.iter().filter(|a| a.reg.receive_to_device && a.reg.url.is_some())
    {
        for (user_id, device_id, json) in local.iter().filter(|(u, _, _)| a.owns_user(u)) {
            let content: Value = serde_json::from_str(json).unwrap_or(json!({}));
            let msg = json!({"type": event_type, "sender": sender, "to_user_id": user_id,
                "to_device_id": device_id, "content": content});
            items.push((
                a.reg.id.clone(),
                crate::store::appservice::Item::ToDevice(msg.to_string()),
            ));
        }
    }
    if let Err(e) = super::sender::enqueue_all(app, items).await {
        tracing::warn!(%sender, "to-device messages not queued for appservices: {e}");
    }
}

fn wanted(app: &App) -> bool {
    app.appservices.list.iter().any(|a| a.reg.receive_ephemeral)
}

async fn push(app: &App, room_id: &str, only_owner_of: Option<&str>, ev: Value) {
    let result = async {
        let mut ids = super::interest::ephemeral_for_room(app, room_id).await?;
        if let Some(u) = only_owner_of {
            ids.retain(|id| app.appservices.by_id(id).is_some_and(|a| a.owns_user(u)));
        }
        super::sender::enqueue_ephemeral(app, ids, ev).await
    }
    .await;
    if let Err(e) = result {
        tracing::warn!(%room_id, "ephemeral event not queued for appservices: {e}");
    }
}
