//! Building a local event: choose auth and prev events, hash and sign it with the server
//! key (ruma signatures), derive its ID, and authorise it against the room's state with
//! ruma's implementation of the room version's auth rules.

use std::collections::HashMap;
use std::sync::Arc;

use ruma::canonical_json::{CanonicalJsonObject, CanonicalJsonValue};
use ruma::events::TimelineEventType;
use ruma::room_version_rules::{
    EventIdFormatVersion, EventsReferenceFormatVersion, RoomIdFormatVersion,
};
use ruma::{EventId, OwnedEventId, UserId};
use serde_json::{Value, json};

use super::{Pdu, PduRef, RoomHandle};
use crate::app::App;
use crate::error::{Error, Result, bad_json};

/// Largest PDU the spec allows, in canonical JSON bytes.
pub const MAX_PDU_BYTES: usize = 65_536;

/// Depth beyond which no event goes (the spec's canonical JSON integer limit).
const MAX_DEPTH: u64 = (1 << 53) - 1;

#[derive(Debug, Clone)]
pub struct NewEvent {
    pub event_type: String,
    pub state_key: Option<String>,
    pub content: Value,
    /// For `m.room.redaction`: the redacted event.
    pub redacts: Option<String>,
}

impl NewEvent {
    pub fn state(event_type: &str, state_key: &str, content: Value) -> NewEvent {
        NewEvent {
            event_type: event_type.into(),
            state_key: Some(state_key.into()),
            content,
            redacts: None,
        }
    }
    pub fn message(event_type: &str, content: Value) -> NewEvent {
        NewEvent { event_type: event_type.into(), state_key: None, content, redacts: None }
    }
}

fn canonical(v: Value) -> Result<CanonicalJsonValue> {
    CanonicalJsonValue::try_from(v)
        .map_err(|e| bad_json(format!("content is not canonical JSON: {e}")))
}

/// An event reference in the room version's format.
fn reference(room: &RoomHandle, e: &Pdu) -> Result<Value> {
    Ok(match room.rules.events_reference_format {
        EventsReferenceFormatVersion::V1 => {
            let hash =
                ruma::signatures::reference_hash(&e.json, &room.rules).map_err(Error::internal)?;
            json!([e.event_id.as_str(), {"sha256": hash}])
        }
        _ => json!(e.event_id.as_str()),
    })
}

pub fn build(
    app: &App,
    room: &RoomHandle,
    sender: &str,
    new: NewEvent,
    now_ms: i64,
) -> Result<PduRef> {
    let obj = template(room, sender, &new, now_ms)?;
    finish(app, &room.rules, obj)
}

/// An unsigned event on the room's current tips, as `make_join` / `make_leave` hand out
/// and as `build` signs.
pub fn template(
    room: &RoomHandle,
    sender: &str,
    new: &NewEvent,
    now_ms: i64,
) -> Result<CanonicalJsonObject> {
    let sender_id = UserId::parse(sender)
        .map_err(|_| Error::InvalidParam(format!("invalid sender {sender}")))?;
    let kind = TimelineEventType::from(new.event_type.as_str());
    let content_raw = serde_json::value::to_raw_value(&new.content).map_err(Error::internal)?;

    // Auth events: the state entries the auth rules consult for this event.
    let auth_types = ruma::state_res::auth_types_for_event(
        &kind,
        &sender_id,
        new.state_key.as_deref(),
        &content_raw,
        &room.rules.authorization,
    )
    .map_err(|e| bad_json(format!("invalid content for {}: {e}", new.event_type)))?;
    let mut auth: Vec<&PduRef> = vec![];
    for (t, k) in &auth_types {
        if let Some(e) = room.get(&t.to_string(), k)
            && !auth.iter().any(|a| a.event_id == e.event_id)
        {
            auth.push(e);
        }
    }
    let depth = room.tips.iter().map(|t| t.depth).max().map(|d| d + 1).unwrap_or(1).min(MAX_DEPTH);

    let mut obj = CanonicalJsonObject::new();
    let refs = |events: &[&PduRef]| -> Result<Value> {
        Ok(Value::Array(events.iter().map(|e| reference(room, e)).collect::<Result<_>>()?))
    };
    let tips: Vec<&PduRef> = room.tips.iter().collect();
    obj.insert("auth_events".into(), canonical(refs(&auth)?)?);
    obj.insert("prev_events".into(), canonical(refs(&tips)?)?);
    obj.insert("content".into(), canonical(new.content.clone())?);
    obj.insert("depth".into(), canonical(json!(depth))?);
    obj.insert("origin_server_ts".into(), canonical(json!(now_ms))?);
    // v12: the create event has no room_id (the room's ID is derived from it).
    let derived_id = matches!(room.rules.room_id_format, RoomIdFormatVersion::V2)
        && new.event_type == "m.room.create";
    if !derived_id {
        obj.insert("room_id".into(), canonical(json!(room.room_id))?);
    }
    obj.insert("sender".into(), canonical(json!(sender))?);
    obj.insert("type".into(), canonical(json!(new.event_type))?);
    if let Some(k) = &new.state_key {
        obj.insert("state_key".into(), canonical(json!(k))?);
    }
    if let Some(r) = &new.redacts
        && !room.rules.redaction.content_field_redacts
    {
        // v11+ moved `redacts` into content (the caller puts it there); earlier versions
        // read it at the top level.
        obj.insert("redacts".into(), canonical(json!(r))?);
    }
    Ok(obj)
}

/// Hash and sign an event with the server key (adding a v1/v2 event ID) and parse it.
pub fn finish(
    app: &App,
    rules: &ruma::room_version_rules::RoomVersionRules,
    obj: CanonicalJsonObject,
) -> Result<PduRef> {
    sign_event(app.config.server_name.as_str(), &app.signing_key, rules, obj)
}

/// `finish` with an explicit server name and key (deterministic for the payload snapshots).
pub fn sign_event(
    server_name: &str,
    key: &crate::keys::SigningKey,
    rules: &ruma::room_version_rules::RoomVersionRules,
    mut obj: CanonicalJsonObject,
) -> Result<PduRef> {
    let v1_ids = matches!(rules.event_id_format, EventIdFormatVersion::V1);
    if v1_ids && !obj.contains_key("event_id") {
        let id = format!("${}:{}", crate::users::random_string(18), server_name);
        obj.insert("event_id".into(), canonical(json!(id))?);
    }
    let too_large = |size: usize| {
        Error::TooLarge(format!("Event is {size} bytes; the limit is {MAX_PDU_BYTES}"))
    };
    // Check before hashing too: ruma refuses to hash an event over the limit, which is
    // the client's mistake (413), not the server's.
    let unsigned_size = serde_json::to_vec(&obj).map_err(Error::internal)?.len();
    if unsigned_size > MAX_PDU_BYTES {
        return Err(too_large(unsigned_size));
    }
    ruma::signatures::hash_and_sign_event(server_name, &key.pair, &mut obj, &rules.redaction)
        .map_err(|e| match e {
            ruma::signatures::JsonError::PduTooLarge => too_large(unsigned_size),
            e => Error::internal(format!("signing: {e}")),
        })?;
    let size = serde_json::to_vec(&obj).map_err(Error::internal)?.len();
    if size > MAX_PDU_BYTES {
        return Err(too_large(size));
    }
    let event_id = if v1_ids {
        obj.get("event_id").and_then(|v| v.as_str()).map(str::to_string).unwrap_or_default()
    } else {
        let hash = ruma::signatures::reference_hash(&obj, rules).map_err(Error::internal)?;
        format!("${hash}")
    };
    let event_id = OwnedEventId::try_from(event_id).map_err(Error::internal)?;
    Ok(Arc::new(Pdu::from_object(event_id, obj, rules)?))
}

/// Check an event against the room's current state with the room version's auth rules.
pub fn authorise(room: &RoomHandle, pdu: &PduRef) -> Result<(), String> {
    let by_id: HashMap<&EventId, &PduRef> =
        room.state.values().map(|e| (&*e.event_id, e)).collect();
    ruma::state_res::check_state_independent_auth_rules(
        &room.rules.authorization,
        pdu,
        |id: &EventId| by_id.get(id).map(|e| (*e).clone()),
    )?;
    ruma::state_res::check_state_dependent_auth_rules(&room.rules.authorization, pdu, |t, k| {
        room.state.get(&(t.to_string(), k.to_string())).cloned()
    })
}
