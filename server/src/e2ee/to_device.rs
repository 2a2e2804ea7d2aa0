//! Send-to-device messaging: `PUT /sendToDevice/{eventType}/{txnId}`.

use std::collections::BTreeMap;

use ruma::UserId;
use serde_json::Value;

use super::Object;
use crate::app::App;
use crate::error::{Error, Result, bad_json};
use crate::http::auth::User;
use crate::store::account_data::next_stream_pos;
use crate::store::{now_ms, to_device};

/// The largest message content, in bytes of JSON: what fits in a federation EDU (Synapse
/// refuses larger ones with 413 `M_TOO_LARGE` for local recipients too).
pub const MAX_CONTENT_SIZE: usize = 65536;

/// Send `messages` (user ID -> device ID or `*` -> content). Local devices get them in
/// their `/sync` `to_device` section; remote users' messages are queued as one
/// `m.direct_to_device` EDU per server, in the same transaction. A transaction ID the device already used for this event type
/// sends nothing again. Returns once the messages are stored.
pub async fn send(
    app: &App,
    sender: &User,
    event_type: String,
    txn_id: String,
    messages: &Object,
) -> Result<()> {
    // (user ID, device ID or "*", content JSON)
    let mut local: Vec<(String, String, String)> = vec![];
    // server -> user ID -> device ID -> content
    let mut remote: BTreeMap<String, Object> = BTreeMap::new();
    for (user_id, per_device) in messages {
        let per_device = per_device.as_object().ok_or_else(|| {
            bad_json(format!("messages.{user_id} must map device IDs to contents"))
        })?;
        for (device_id, content) in per_device {
            if !content.is_object() {
                return Err(bad_json(format!("messages.{user_id}.{device_id} must be an object")));
            }
            let json = serde_json::to_string(content).map_err(Error::internal)?;
            if json.len() > MAX_CONTENT_SIZE {
                return Err(Error::TooLarge(format!(
                    "To-device message for {user_id}:{device_id} is too large to send ({} > \
                     {MAX_CONTENT_SIZE})",
                    json.len()
                )));
            }
            match UserId::parse(user_id) {
                Err(_) => {
                    tracing::info!(sender = %sender.user_id, recipient = %user_id,
                        "ignoring to-device message to an invalid user ID");
                }
                Ok(u) if u.server_name() != app.config.server_name => {
                    let users = remote.entry(u.server_name().to_string()).or_default();
                    let devices = users
                        .entry(user_id.clone())
                        .or_insert_with(|| Value::Object(Object::new()));
                    if let Some(d) = devices.as_object_mut() {
                        d.insert(device_id.clone(), content.clone());
                    }
                }
                Ok(_) => local.push((user_id.clone(), device_id.clone(), json)),
            }
        }
    }
    let sender_device = sender.device_nid;
    let from = sender.user_id.clone();
    let delivered = app
        .db
        .write(move |c| {
            if !to_device::claim_txn(c, sender_device, &event_type, &txn_id, now_ms())? {
                return Ok((false, vec![]));
            }
            let mut servers = vec![];
            for (server, messages) in &remote {
                let edu = serde_json::json!({
                    "edu_type": "m.direct_to_device",
                    "content": {
                        "sender": from,
                        "type": event_type,
                        "message_id": format!("{sender_device}.{txn_id}"),
                        "messages": messages,
                    },
                });
                crate::store::federation::enqueue(
                    c,
                    std::slice::from_ref(server),
                    "edu",
                    &edu.to_string(),
                )?;
                servers.push(server.clone());
            }
            // One content per recipient device; a message to a named device takes precedence
            // over one to `*` in the same request.
            let mut by_device: BTreeMap<i64, &str> = BTreeMap::new();
            for wildcard_pass in [true, false] {
                for (user_id, device_id, json) in &local {
                    if (device_id == "*") != wildcard_pass {
                        continue;
                    }
                    for (nid, _) in to_device::recipients(c, user_id, device_id)? {
                        by_device.insert(nid, json);
                    }
                }
            }
            if by_device.is_empty() {
                return Ok((false, servers));
            }
            let pos = next_stream_pos(c, "to_device")?;
            for (nid, json) in by_device {
                to_device::insert(c, nid, pos, &from, &event_type, json)?;
            }
            Ok((true, servers))
        })
        .await?;
    let (delivered, servers) = delivered;
    for s in &servers {
        app.fed_sender.wake(s);
    }
    if delivered {
        app.notifier.notify();
    }
    Ok(())
}

/// The `to_device` events of a stored message.
pub fn event(m: to_device::Message) -> Value {
    let content: Value = serde_json::from_str(&m.content).unwrap_or(Value::Object(Object::new()));
    serde_json::json!({"sender": m.sender, "type": m.event_type, "content": content})
}
