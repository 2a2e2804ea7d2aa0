//! A PDU as Glia holds it: the signed JSON plus the fields auth and state resolution read,
//! parsed once. Implements ruma's `state_res::Event` so ruma's auth rules and state
//! resolution run on it directly.

use std::sync::Arc;

use ruma::canonical_json::CanonicalJsonObject;
use ruma::events::TimelineEventType;
use ruma::room_version_rules::{
    EventsReferenceFormatVersion, RoomIdFormatVersion, RoomVersionRules,
};
use ruma::{MilliSecondsSinceUnixEpoch, OwnedEventId, OwnedRoomId, OwnedUserId, UInt};
use serde_json::Value;
use serde_json::value::RawValue;

use crate::error::{Error, Result, bad_json};

#[derive(Debug, Clone)]
pub struct Pdu {
    pub event_id: OwnedEventId,
    pub room_id: OwnedRoomId,
    pub sender: OwnedUserId,
    pub origin_server_ts: MilliSecondsSinceUnixEpoch,
    pub kind: TimelineEventType,
    pub content: Box<RawValue>,
    pub state_key: Option<String>,
    pub prev_events: Vec<OwnedEventId>,
    pub auth_events: Vec<OwnedEventId>,
    pub redacts: Option<OwnedEventId>,
    pub depth: u64,
    pub rejected: bool,
    /// The whole signed event, as sent over federation.
    pub json: CanonicalJsonObject,
    /// `content` parsed once: membership and display names are read from state events
    /// for every member on every send (push evaluation), where parsing each time showed.
    parsed_content: Value,
}

pub type PduRef = Arc<Pdu>;

fn refs(v: Option<&Value>, format: EventsReferenceFormatVersion) -> Result<Vec<OwnedEventId>> {
    let Some(Value::Array(items)) = v else { return Ok(vec![]) };
    items
        .iter()
        .map(|item| {
            let id = match format {
                // v1/v2 rooms: `[["$id:server", {"sha256": ...}], ...]`.
                EventsReferenceFormatVersion::V1 => item.get(0).and_then(Value::as_str),
                _ => item.as_str(),
            };
            id.and_then(|s| OwnedEventId::try_from(s).ok())
                .ok_or_else(|| bad_json(format!("invalid event reference {item}")))
        })
        .collect()
}

/// A v12 room's ID: its create event's reference hash (the event ID without `$`) with the
/// room sigil.
pub fn room_id_of_create(create_event_id: &ruma::EventId) -> Result<OwnedRoomId> {
    let hash = create_event_id.as_str().trim_start_matches('$');
    ruma::RoomId::new_v2(hash).map_err(|e| bad_json(format!("invalid room ID: {e}")))
}

/// The inverse: the create event ID a v12 room ID names.
pub fn create_id_of_room(room_id: &ruma::RoomId) -> Result<OwnedEventId> {
    OwnedEventId::try_from(format!("${}", room_id.strip_sigil()))
        .map_err(|e| bad_json(format!("room ID names no event: {e}")))
}

impl Pdu {
    /// Parse a PDU whose ID is known (computed for v3+ rooms, carried for v1/v2).
    pub fn from_object(
        event_id: OwnedEventId,
        json: CanonicalJsonObject,
        rules: &RoomVersionRules,
    ) -> Result<Pdu> {
        let v: Value = serde_json::to_value(&json).map_err(Error::internal)?;
        let s = |k: &str| v.get(k).and_then(Value::as_str);
        let room_id = match s("room_id") {
            Some(r) => OwnedRoomId::try_from(r).ok(),
            // v12: the create event carries no room_id; the room's ID is its own hash.
            None if s("type") == Some("m.room.create")
                && matches!(rules.room_id_format, RoomIdFormatVersion::V2) =>
            {
                room_id_of_create(&event_id).ok()
            }
            None => None,
        }
        .ok_or_else(|| bad_json("event has no valid room_id"))?;
        let sender = s("sender")
            .and_then(|r| OwnedUserId::try_from(r).ok())
            .ok_or_else(|| bad_json("event has no valid sender"))?;
        let kind = TimelineEventType::from(s("type").ok_or_else(|| bad_json("event has no type"))?);
        let ts = v
            .get("origin_server_ts")
            .and_then(Value::as_u64)
            .and_then(UInt::new)
            .ok_or_else(|| bad_json("event has no origin_server_ts"))?;
        let content =
            v.get("content").cloned().unwrap_or_else(|| Value::Object(Default::default()));
        let parsed_content = content;
        let content = serde_json::value::to_raw_value(&parsed_content).map_err(Error::internal)?;
        let redacts = s("redacts")
            .or_else(|| v.get("content").and_then(|c| c.get("redacts")).and_then(Value::as_str))
            .and_then(|r| OwnedEventId::try_from(r).ok());
        let format = rules.events_reference_format;
        Ok(Pdu {
            event_id,
            room_id,
            sender,
            origin_server_ts: MilliSecondsSinceUnixEpoch(ts),
            kind,
            content,
            state_key: s("state_key").map(str::to_string),
            prev_events: refs(v.get("prev_events"), format)?,
            auth_events: refs(v.get("auth_events"), format)?,
            redacts,
            depth: v.get("depth").and_then(Value::as_u64).unwrap_or(0),
            rejected: false,
            json,
            parsed_content,
        })
    }

    /// Parse a stored event.
    pub fn from_stored(event_id: &str, json: &str, rules: &RoomVersionRules) -> Result<Pdu> {
        let obj: CanonicalJsonObject = serde_json::from_str(json).map_err(Error::internal)?;
        let id = OwnedEventId::try_from(event_id).map_err(Error::internal)?;
        Pdu::from_object(id, obj, rules)
    }

    pub fn content_value(&self) -> Value {
        self.parsed_content.clone()
    }

    /// `content`, borrowed: no parse, no copy.
    pub fn content_ref(&self) -> &Value {
        &self.parsed_content
    }

    pub fn is_state(&self) -> bool {
        self.state_key.is_some()
    }

    pub fn type_str(&self) -> String {
        self.kind.to_string()
    }
}

impl ruma::state_res::Event for Pdu {
    type Id = OwnedEventId;

    fn event_id(&self) -> &Self::Id {
        &self.event_id
    }
    fn room_id(&self) -> Option<&ruma::RoomId> {
        // The auth rules tell a v12 create event (no room_id) from one that carries it.
        self.json.contains_key("room_id").then_some(&*self.room_id)
    }
    fn sender(&self) -> &ruma::UserId {
        &self.sender
    }
    fn origin_server_ts(&self) -> MilliSecondsSinceUnixEpoch {
        self.origin_server_ts
    }
    fn event_type(&self) -> &TimelineEventType {
        &self.kind
    }
    fn content(&self) -> &RawValue {
        &self.content
    }
    fn state_key(&self) -> Option<&str> {
        self.state_key.as_deref()
    }
    fn prev_events(&self) -> Box<dyn DoubleEndedIterator<Item = &Self::Id> + '_> {
        Box::new(self.prev_events.iter())
    }
    fn auth_events(&self) -> Box<dyn DoubleEndedIterator<Item = &Self::Id> + '_> {
        Box::new(self.auth_events.iter())
    }
    fn redacts(&self) -> Option<&Self::Id> {
        self.redacts.as_ref()
    }
    fn rejected(&self) -> bool {
        self.rejected
    }
}

#[cfg(test)]
mod tests {
    use ruma::canonical_json::CanonicalJsonObject;
    use ruma::room_version_rules::RoomVersionRules;
    use serde_json::json;

    use super::*;

    #[test]
    fn v12_room_id_is_the_create_events_url_safe_reference_hash() {
        let rules = RoomVersionRules::V12;
        let obj: CanonicalJsonObject = serde_json::from_value(json!({
            "auth_events": [],
            "prev_events": [],
            "content": {"room_version": "12"},
            "depth": 1,
            "origin_server_ts": 1_700_000_000_000u64,
            "sender": "@alice:example.org",
            "state_key": "",
            "type": "m.room.create",
            "hashes": {"sha256": "aGFzaA"},
            "signatures": {},
        }))
        .expect("object");
        let hash = ruma::signatures::reference_hash(&obj, &rules).expect("hash");
        let event_id = OwnedEventId::try_from(format!("${hash}")).expect("event ID");
        let pdu = Pdu::from_object(event_id.clone(), obj, &rules).expect("pdu");
        let room_id = pdu.room_id.as_str();
        assert_eq!(room_id, format!("!{hash}"));
        assert!(!room_id.contains(':'), "no server part: {room_id}");
        assert!(
            !room_id.contains('+') && !room_id.contains('/') && !room_id.contains('='),
            "URL-safe unpadded base64: {room_id}"
        );
        assert_eq!(create_id_of_room(&pdu.room_id).expect("back"), event_id);
        // ruma's auth rules must see no room_id on the create event itself.
        assert!(ruma::state_res::Event::room_id(&pdu).is_none());
    }

    #[test]
    fn a_create_event_without_room_id_is_refused_before_v12() {
        let obj: CanonicalJsonObject = serde_json::from_value(json!({
            "content": {}, "depth": 1, "origin_server_ts": 1, "sender": "@a:example.org",
            "state_key": "", "type": "m.room.create", "auth_events": [], "prev_events": [],
        }))
        .expect("object");
        let id = OwnedEventId::try_from("$abc").expect("id");
        assert!(Pdu::from_object(id, obj, &RoomVersionRules::V11).is_err());
    }
}
