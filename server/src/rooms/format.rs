//! Events as clients see them (the spec's ClientEvent): the PDU's client fields plus
//! `unsigned` (age, prev_content for state, redacted_because, the sender device's
//! transaction_id, the viewer's membership at the event).

use std::collections::HashMap;

use rusqlite::Connection;
use serde_json::{Map, Value, json};

use crate::error::{Error, Result};
use crate::store::events::{self, EventRow};
use crate::store::now_ms;
use crate::store::state;

/// The device looking at the events, for `unsigned.transaction_id`.
#[derive(Clone, Copy)]
pub struct Viewer<'a> {
    pub user_nid: i64,
    pub user_id: &'a str,
    pub device_id: &'a str,
}

pub fn client_event(
    conn: &Connection,
    row: &EventRow,
    viewer: Option<Viewer<'_>>,
) -> Result<Value> {
    client_event_cached(conn, row, viewer, &mut HashMap::new(), None)
}

/// [`client_event`] with the viewer's membership per state group remembered across
/// the events of one answer (consecutive events mostly share their state).
fn client_event_cached(
    conn: &Connection,
    row: &EventRow,
    viewer: Option<Viewer<'_>>,
    memberships: &mut HashMap<i64, String>,
    states: Option<&state::Snapshots>,
) -> Result<Value> {
    let mut ev = client_fields(&row.json)?;
    ev.insert("event_id".into(), json!(row.event_id));
    // A v12 create event has no room_id; clients get the one it names (its own hash).
    if !ev.contains_key("room_id")
        && let Some(hash) = row.event_id.strip_prefix('$')
    {
        ev.insert("room_id".into(), json!(format!("!{hash}")));
    }
    if !ev.contains_key("content") {
        ev.insert("content".into(), json!({}));
    }
    let mut unsigned = Map::new();
    unsigned.insert("age".into(), json!((now_ms() - row.origin_server_ts).max(0)));
    if let Some(prev) = row.replaces_nid
        && let Some(p) = events::by_nid(conn, prev)?
    {
        let pj: Value = serde_json::from_str(&p.json).map_err(Error::internal)?;
        unsigned.insert("prev_content".into(), pj.get("content").cloned().unwrap_or(json!({})));
        unsigned.insert("prev_sender".into(), json!(p.sender));
        unsigned.insert("replaces_state".into(), json!(p.event_id));
    }
    // One level only: a redaction that is itself redacted (or redacts itself) must not
    // nest its own `redacted_because` without end.
    if let Some(by) = &row.redacted_by
        && let Some(mut r) = events::by_id(conn, by)?
    {
        r.redacted_by = None;
        // Synapse names the redaction too, beside the event itself.
        unsigned.insert("redacted_by".into(), json!(by));
        unsigned.insert("redacted_because".into(), client_event(conn, &r, None)?);
    }
    if let Some(v) = viewer {
        if v.user_id == row.sender
            && let Some(t) = events::txn_of(conn, v.user_nid, v.device_id, &row.event_id)?
        {
            unsigned.insert("transaction_id".into(), json!(t));
        }
        let membership = match row.state_after.or(row.state_before) {
            Some(group) => match memberships.get(&group) {
                Some(m) => m.clone(),
                None => {
                    let m = membership_at(conn, group, v.user_id, states)?;
                    memberships.insert(group, m.clone());
                    m
                }
            },
            None => "leave".to_string(),
        };
        unsigned.insert("membership".into(), json!(membership));
    }
    ev.insert("unsigned".into(), Value::Object(unsigned));
    Ok(Value::Object(ev))
}

/// The PDU's fields a client sees, the others skipped while parsing rather than parsed
/// into values and dropped (a PDU's hashes, signatures and DAG references are most of it).
fn client_fields(json: &str) -> Result<Map<String, Value>> {
    /// A field present (even as null) keeps its value; `Option<Value>` alone reads null
    /// as absent.
    fn present<'de, D: serde::Deserializer<'de>>(
        d: D,
    ) -> std::result::Result<Option<Value>, D::Error> {
        serde::Deserialize::deserialize(d).map(Some)
    }
    #[derive(serde::Deserialize)]
    struct Fields {
        #[serde(default, deserialize_with = "present")]
        content: Option<Value>,
        #[serde(default, deserialize_with = "present")]
        origin_server_ts: Option<Value>,
        #[serde(default, deserialize_with = "present")]
        room_id: Option<Value>,
        #[serde(default, deserialize_with = "present")]
        sender: Option<Value>,
        #[serde(default, deserialize_with = "present")]
        state_key: Option<Value>,
        #[serde(default, deserialize_with = "present", rename = "type")]
        event_type: Option<Value>,
        #[serde(default, deserialize_with = "present")]
        redacts: Option<Value>,
    }
    let f: Fields = match serde_json::from_str(json) {
        Ok(f) => f,
        // Whatever a struct cannot take (a repeated key, say) is read as before.
        Err(_) => {
            let pdu: Value = serde_json::from_str(json).map_err(Error::internal)?;
            let field = |key: &str| pdu.get(key).cloned();
            Fields {
                content: field("content"),
                origin_server_ts: field("origin_server_ts"),
                room_id: field("room_id"),
                sender: field("sender"),
                state_key: field("state_key"),
                event_type: field("type"),
                redacts: field("redacts"),
            }
        }
    };
    let mut ev = Map::new();
    for (key, v) in [
        ("content", f.content),
        ("origin_server_ts", f.origin_server_ts),
        ("room_id", f.room_id),
        ("sender", f.sender),
        ("state_key", f.state_key),
        ("type", f.event_type),
        ("redacts", f.redacts),
    ] {
        if let Some(v) = v {
            ev.insert(key.into(), v);
        }
    }
    Ok(ev)
}

/// The viewer's membership in state `group` (the state after an event), "leave" if they
/// had none (spec v1.11: `unsigned.membership`, MSC4115).
fn membership_at(
    conn: &Connection,
    group: i64,
    user_id: &str,
    states: Option<&state::Snapshots>,
) -> Result<String> {
    let Some(nid) = state::lookup_in(states, conn, group, "m.room.member", user_id)? else {
        return Ok("leave".into());
    };
    let Some(member) = events::by_nid(conn, nid)? else {
        return Ok("leave".into());
    };
    let pdu: Value = serde_json::from_str(&member.json).map_err(Error::internal)?;
    Ok(pdu["content"]["membership"].as_str().unwrap_or("leave").to_string())
}

pub fn client_events(
    conn: &Connection,
    rows: &[EventRow],
    viewer: Option<Viewer<'_>>,
) -> Result<Vec<Value>> {
    client_events_with(conn, rows, viewer, None)
}

/// [`client_events`], looking memberships up in `states` (full states read already).
pub fn client_events_with(
    conn: &Connection,
    rows: &[EventRow],
    viewer: Option<Viewer<'_>>,
    states: Option<&state::Snapshots>,
) -> Result<Vec<Value>> {
    let mut memberships = HashMap::new();
    rows.iter().map(|r| client_event_cached(conn, r, viewer, &mut memberships, states)).collect()
}

/// Stripped state (for invites and knocks): type, state_key, content, sender.
pub fn stripped(row: &EventRow) -> Result<Value> {
    let pdu: Value = serde_json::from_str(&row.json).map_err(Error::internal)?;
    Ok(json!({
        "type": pdu["type"],
        "state_key": pdu["state_key"],
        "content": pdu["content"],
        "sender": pdu["sender"],
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_fields_keeps_the_client_keys_only_and_nulls_as_given() {
        let pdu = r#"{"auth_events":["$a"],"content":{"body":"hi","n":[1,{"x":null}]},
            "depth":3,"hashes":{"sha256":"h"},"origin_server_ts":5,"prev_events":["$p"],
            "redacts":null,"room_id":"!r:x","sender":"@a:x","signatures":{},"type":"m.room.message"}"#;
        let ev = client_fields(pdu).expect("fields");
        assert_eq!(
            Value::Object(ev),
            json!({"content": {"body": "hi", "n": [1, {"x": null}]}, "origin_server_ts": 5,
                   "redacts": null, "room_id": "!r:x", "sender": "@a:x", "type": "m.room.message"})
        );
    }

    #[test]
    fn client_fields_reads_a_repeated_key_as_a_json_value_does() {
        let pdu = r#"{"type":"a","type":"b","content":{}}"#;
        let ev = client_fields(pdu).expect("fields");
        assert_eq!(Value::Object(ev), json!({"type": "b", "content": {}}));
    }
}
