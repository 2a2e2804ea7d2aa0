//! Event filters (spec: client-server API, "Filtering"). Stored as the client sent them;
//! parsed into these types to validate on upload and to apply in `/sync` and `/messages`.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::{Result, bad_json};

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Filter {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_fields: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_format: Option<EventFormat>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub presence: Option<EventFilter>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account_data: Option<EventFilter>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub room: Option<RoomFilter>,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum EventFormat {
    Client,
    Federation,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct EventFilter {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub types: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_types: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub senders: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_senders: Option<Vec<String>>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct RoomEventFilter {
    #[serde(flatten)]
    pub base: EventFilter,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rooms: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_rooms: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contains_url: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lazy_load_members: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub include_redundant_members: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unread_thread_notifications: Option<bool>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct RoomFilter {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rooms: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_rooms: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub include_leave: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ephemeral: Option<RoomEventFilter>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<RoomEventFilter>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeline: Option<RoomEventFilter>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account_data: Option<RoomEventFilter>,
}

impl Filter {
    /// Validate a filter a client uploads: field types, room and user IDs.
    pub fn parse(v: &Value) -> Result<Filter> {
        let f: Filter = serde_json::from_value(v.clone())
            .map_err(|e| bad_json(format!("Invalid filter: {e}")))?;
        let mut room_lists: Vec<&Vec<String>> = vec![];
        let mut sender_lists: Vec<&Vec<String>> = vec![];
        for ef in [&f.presence, &f.account_data].into_iter().flatten() {
            sender_lists.extend(ef.senders.iter().chain(ef.not_senders.iter()));
        }
        if let Some(r) = &f.room {
            room_lists.extend(r.rooms.iter().chain(r.not_rooms.iter()));
            for ref_ in [&r.ephemeral, &r.state, &r.timeline, &r.account_data].into_iter().flatten()
            {
                room_lists.extend(ref_.rooms.iter().chain(ref_.not_rooms.iter()));
                sender_lists.extend(ref_.base.senders.iter().chain(ref_.base.not_senders.iter()));
            }
        }
        for id in room_lists.into_iter().flatten() {
            ruma::RoomId::parse(id)
                .map_err(|_| bad_json(format!("Invalid room ID in filter: {id}")))?;
        }
        for id in sender_lists.into_iter().flatten() {
            ruma::UserId::parse(id)
                .map_err(|_| bad_json(format!("Invalid user ID in filter: {id}")))?;
        }
        Ok(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn valid_filters_parse() {
        let f = Filter::parse(&json!({
            "room": {"timeline": {"limit": 10, "types": ["m.room.message"], "lazy_load_members": true},
                     "rooms": ["!a:b"]},
            "event_format": "client",
            "presence": {"not_types": ["*"]},
            "future_field": 1
        }))
        .expect("valid");
        let t = f.room.and_then(|r| r.timeline).expect("timeline");
        assert_eq!(t.base.limit, Some(10));
        assert_eq!(t.lazy_load_members, Some(true));
    }

    #[test]
    fn bad_filters_are_refused() {
        for bad in [
            json!({"room": {"timeline": {"limit": "ten"}}}),
            json!({"event_format": "xml"}),
            json!({"room": {"rooms": ["not-a-room"]}}),
            json!({"presence": {"senders": ["nobody"]}}),
            json!({"event_fields": "content"}),
        ] {
            assert_eq!(Filter::parse(&bad).expect_err("bad").errcode(), "M_BAD_JSON", "{bad}");
        }
    }
}
