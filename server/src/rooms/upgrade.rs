//! Room upgrades (spec: "Room Upgrades"): a new room of the requested version with the
//! old room's important state, a tombstone in the old room, the old room restricted so
//! conversation moves on, and local aliases moved across.

use serde_json::{Map, Value, json};

use super::create::{self, CreateRoom, InitialState};
use super::{NewEvent, state_content};
use crate::app::App;
use crate::error::{Error, Result};
use crate::store::rooms;

/// State copied into the replacement room (Synapse's list).
const COPIED: &[&str] = &[
    "m.room.join_rules",
    "m.room.name",
    "m.room.topic",
    "m.room.history_visibility",
    "m.room.guest_access",
    "m.room.avatar",
    "m.room.encryption",
    "m.room.server_acl",
    "m.room.power_levels",
];

/// Upgrade `room_id` to `new_version`; `additional_creators` (v12+) become creators of the
/// new room alongside the upgrader (they are not carried over from the old room).
pub async fn upgrade(
    app: &App,
    user_id: &str,
    room_id: &str,
    new_version: &str,
    additional_creators: Vec<String>,
) -> Result<String> {
    let (_, new_rules) = super::rules_for(new_version)?;
    let new_privileged = new_rules.authorization.explicitly_privilege_room_creators;
    // Read what to copy, and check the user may tombstone the room.
    let (create_content, copied, power, last_event, my_level) = {
        let room = app.rooms.lock(app, room_id).await?;
        if room.membership_of(user_id).as_deref() != Some("join") {
            return Err(Error::Forbidden("You are not in the room".into()));
        }
        let power = state_content(&room, "m.room.power_levels", "").unwrap_or(json!({}));
        let needed = power["events"]["m.room.tombstone"]
            .as_i64()
            .unwrap_or(power["state_default"].as_i64().unwrap_or(50));
        let mine = super::user_level(&room, user_id);
        if mine < needed {
            return Err(Error::Forbidden("You don't have permission to upgrade the room".into()));
        }
        let copied: Vec<(String, Value)> = COPIED
            .iter()
            .filter_map(|t| state_content(&room, t, "").map(|c| (t.to_string(), c)))
            .collect();
        let last = room.tips.first().map(|t| t.event_id.to_string()).unwrap_or_default();
        let create = state_content(&room, "m.room.create", "").unwrap_or(json!({}));
        (create, copied, power, last, mine)
    };

    let mut creation = Map::new();
    if let Some(t) = create_content.get("type") {
        creation.insert("type".into(), t.clone());
    }
    creation.insert("predecessor".into(), json!({"room_id": room_id, "event_id": last_event}));
    if new_privileged && !additional_creators.is_empty() {
        creation.insert("additional_creators".into(), json!(additional_creators));
    }
    let mut pl_override = power.as_object().cloned().unwrap_or_default();
    let mut users =
        pl_override.get("users").and_then(Value::as_object).cloned().unwrap_or_default();
    if new_privileged {
        // v12+: the new room's creators have unlimited power and may not be listed.
        users.remove(user_id);
        for c in &additional_creators {
            users.remove(c);
        }
        // Upgrading again must need more than the state default (as createRoom sets).
        let state_default = power["state_default"].as_i64().unwrap_or(50);
        let tombstone = &power["events"]["m.room.tombstone"];
        if tombstone.as_i64().is_none_or(|t| t <= state_default) {
            let mut events =
                pl_override.get("events").and_then(Value::as_object).cloned().unwrap_or_default();
            events.insert("m.room.tombstone".into(), json!(150.max(state_default + 1)));
            pl_override.insert("events".into(), Value::Object(events));
        }
    } else {
        // The upgrader needs enough power in the new room to set its state; the old levels
        // are restored on top once the room exists (they arrive as
        // power_level_content_override).
        let needed_max = 100.max(my_level.min(i64::from(i32::MAX)));
        users.insert(user_id.to_string(), json!(needed_max));
    }
    pl_override.insert("users".into(), Value::Object(users));
    let req = CreateRoom {
        room_version: Some(new_version.to_string()),
        creation_content: Some(creation),
        preset: Some("private_chat".into()),
        power_level_content_override: Some(pl_override),
        initial_state: copied
            .into_iter()
            .filter(|(t, _)| t != "m.room.power_levels")
            .map(|(t, c)| InitialState {
                event_type: t,
                state_key: String::new(),
                content: c.as_object().cloned().unwrap_or_default(),
            })
            .collect(),
        ..Default::default()
    };
    let new_room = create::create(app, user_id, req).await?;

    // Tombstone the old room, then restrict it so only moderators can speak or invite.
    let tombstone = json!({"body": "This room has been replaced", "replacement_room": new_room});
    super::send(app, room_id, user_id, NewEvent::state("m.room.tombstone", "", tombstone), None)
        .await?;
    let mut restricted = power.clone();
    let needed = 50.max(power["users_default"].as_i64().unwrap_or(0) + 1);
    for key in ["events_default", "invite"] {
        if restricted[key].as_i64().unwrap_or(0) < needed {
            restricted[key] = json!(needed);
        }
    }
    if restricted != power {
        let new = NewEvent::state("m.room.power_levels", "", restricted);
        if let Err(e) = super::send(app, room_id, user_id, new, None).await {
            tracing::warn!(%room_id, error = %e, "could not restrict the upgraded room");
        }
    }

    // Move local aliases and the canonical alias.
    let (old, new) = (room_id.to_string(), new_room.clone());
    let moved = app
        .db
        .write(move |c| {
            let (Some(o), Some(n)) = (rooms::get(c, &old)?, rooms::get(c, &new)?) else {
                return Ok(vec![]);
            };
            let aliases = rooms::aliases_of(c, o.nid)?;
            c.prepare_cached("UPDATE room_aliases SET room_nid = ?2 WHERE room_nid = ?1")?
                .execute(rusqlite::params![o.nid, n.nid])?;
            Ok(aliases)
        })
        .await?;
    let canonical = {
        let room = app.rooms.lock(app, room_id).await?;
        state_content(&room, "m.room.canonical_alias", "")
    };
    if let Some(c) = canonical.filter(|c| {
        c.get("alias").is_some_and(|a| moved.iter().any(|m| Some(m.as_str()) == a.as_str()))
    }) {
        super::send(
            app,
            &new_room,
            user_id,
            NewEvent::state("m.room.canonical_alias", "", c),
            None,
        )
        .await?;
        let _ = super::send(
            app,
            room_id,
            user_id,
            NewEvent::state("m.room.canonical_alias", "", json!({})),
            None,
        )
        .await;
    }
    tracing::info!(old = %room_id, new = %new_room, version = %new_version, "upgraded room");
    Ok(new_room)
}
