//! The end-to-end encryption sections of `/sync` (spec: "Send-to-Device messaging" and
//! "End-to-end encryption", extensions to sync): `to_device`, `device_lists`,
//! `device_one_time_keys_count` and `device_unused_fallback_key_types`.

use rusqlite::Connection;
use serde_json::{Value, json};

use super::Ctx;
use crate::e2ee;
use crate::error::Result;
use crate::store::{device_lists, e2e_keys, to_device};

/// Add the sections to `body`. To-device messages at or before `since` were delivered by an
/// earlier response the client has now acknowledged by syncing from it: the caller deletes
/// them when this returns true.
pub fn section(c: &Connection, ctx: &Ctx<'_>, body: &mut Value) -> Result<bool> {
    let (since, upto, device_nid) = (ctx.since, ctx.upto, ctx.user.device_nid);
    let from = since.map(|s| s.to_device).unwrap_or(0);
    let (messages, acked) = to_device::pending(c, device_nid, from, upto.to_device)?;
    let counts = e2e_keys::one_time_key_counts(c, device_nid)?;
    let fallback = e2e_keys::unused_fallback_key_types(c, device_nid)?;
    // Device list changes are only reported incrementally.
    let lists = match since {
        None => Default::default(),
        Some(s) => device_lists::changes(
            c,
            &ctx.user.user_id,
            device_lists::Range {
                lists_from: s.device_lists,
                lists_to: upto.device_lists,
                events_from: s.events,
                events_to: upto.events,
            },
        )?,
    };
    let events: Vec<Value> = messages.into_iter().map(e2ee::to_device::event).collect();
    let (changed, left) = lists;
    // Empty sections are left out, as Synapse does (Complement checks that an acknowledged
    // message is gone by the absence of `to_device.events`); the key counts are always
    // there, so clients can tell "none left" from "unchanged".
    if let Some(o) = body.as_object_mut() {
        if !events.is_empty() {
            o.insert("to_device".into(), json!({"events": events}));
        }
        let mut lists = serde_json::Map::new();
        if !changed.is_empty() {
            lists.insert("changed".into(), json!(changed));
        }
        if !left.is_empty() {
            lists.insert("left".into(), json!(left));
        }
        if !lists.is_empty() {
            o.insert("device_lists".into(), Value::Object(lists));
        }
        o.insert("device_one_time_keys_count".into(), json!(counts));
        o.insert("device_unused_fallback_key_types".into(), json!(fallback));
    }
    Ok(acked)
}
