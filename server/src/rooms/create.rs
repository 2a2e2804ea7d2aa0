//! `createRoom`: the initial events in the spec's order — create, the creator's join,
//! power levels, canonical alias, the preset's join rules / history visibility / guest
//! access, `initial_state`, name, topic, then invites — each authorised in turn and all
//! persisted in one transaction.

use std::sync::Arc;

use ruma::RoomId;
use ruma::room_version_rules::RoomIdFormatVersion;
use serde_json::{Map, Value, json};

use super::{NewEvent, PduRef, RoomHandle, builder, rules_for};
use crate::app::App;
use crate::error::{Error, Result, bad_json, invalid_param};
use crate::store::{now_ms, rooms, users};

pub const DEFAULT_ROOM_VERSION: &str = crate::api::client::capabilities::DEFAULT_ROOM_VERSION;

#[derive(Debug, Default, serde::Deserialize)]
pub struct CreateRoom {
    #[serde(default)]
    pub visibility: Option<String>,
    #[serde(default)]
    pub room_alias_name: Option<String>,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub topic: Option<String>,
    #[serde(default)]
    pub invite: Vec<String>,
    #[serde(default)]
    pub room_version: Option<String>,
    #[serde(default)]
    pub creation_content: Option<Map<String, Value>>,
    #[serde(default)]
    pub initial_state: Vec<InitialState>,
    #[serde(default)]
    pub preset: Option<String>,
    #[serde(default)]
    pub is_direct: bool,
    #[serde(default)]
    pub power_level_content_override: Option<Map<String, Value>>,
}

#[derive(Debug, serde::Deserialize)]
pub struct InitialState {
    #[serde(rename = "type")]
    pub event_type: String,
    #[serde(default)]
    pub state_key: String,
    pub content: Map<String, Value>,
}

fn default_power_levels(
    creator: &str,
    trusted: &[String],
    version: &str,
    creators_privileged: bool,
) -> Value {
    let mut users = Map::new();
    // v12+: creators have unlimited power and may not be listed.
    if !creators_privileged {
        users.insert(creator.to_string(), json!(100));
        for u in trusted {
            users.insert(u.clone(), json!(100));
        }
    }
    let mut events = json!({
        "m.room.name": 50,
        "m.room.power_levels": 100,
        "m.room.history_visibility": 100,
        "m.room.canonical_alias": 50,
        "m.room.avatar": 50,
        "m.room.tombstone": 100,
        "m.room.server_acl": 100,
        "m.room.encryption": 100,
    });
    if version == "11" || version.parse::<u32>().is_ok_and(|v| v >= 11) {
        events["m.room.topic"] = json!(50);
    }
    if creators_privileged {
        // v12+: upgrading must need more than the state default (spec, createRoom).
        events["m.room.tombstone"] = json!(150);
    }
    json!({
        "users": users,
        "users_default": 0,
        "events": events,
        "events_default": 0,
        "state_default": 50,
        "ban": 50,
        "kick": 50,
        "redact": 50,
        "invite": 0,
        "notifications": {"room": 50},
    })
}

/// Build and authorise the initial events in order, each against the state the previous
/// ones produced; a v12 room takes its ID from the create event.
fn build_all(
    app: &App,
    room: &mut RoomHandle,
    creator: &str,
    plan: &[NewEvent],
    now: i64,
    id_from_create: bool,
) -> Result<Vec<PduRef>> {
    let mut built = vec![];
    for new in plan {
        let what = new.event_type.clone();
        let is_create = what == "m.room.create" && room.state.is_empty();
        let pdu = builder::build(app, room, creator, new.clone(), now)?;
        builder::authorise(room, &pdu).map_err(|r| match what.as_str() {
            "m.room.member" | "m.room.power_levels" => {
                bad_json(format!("Cannot create room: {what}: {r}"))
            }
            _ => Error::Forbidden(format!("Cannot create room: {what}: {r}")),
        })?;
        if is_create && id_from_create {
            room.room_id = pdu.room_id.to_string();
        }
        if let Some(k) = &pdu.state_key {
            room.state.insert((pdu.type_str(), k.clone()), pdu.clone());
        }
        room.tips = vec![pdu.clone()];
        built.push(pdu);
    }
    Ok(built)
}

/// Create the room; returns its ID (and the alias, if one was asked for).
pub async fn create(app: &App, creator: &str, req: CreateRoom) -> Result<String> {
    let version = req.room_version.clone().unwrap_or_else(|| DEFAULT_ROOM_VERSION.to_string());
    if !crate::api::client::capabilities::ROOM_VERSIONS.contains(&version.as_str()) {
        return Err(Error::UnsupportedRoomVersion(format!(
            "Room version {version} is not supported"
        )));
    }
    let (version_id, rules) = rules_for(&version)?;
    let visibility = match req.visibility.as_deref() {
        None | Some("private") => false,
        Some("public") => true,
        Some(other) => return Err(invalid_param(format!("Unknown visibility {other}"))),
    };
    let preset = match req.preset.as_deref() {
        Some(p @ ("private_chat" | "public_chat" | "trusted_private_chat")) => p.to_string(),
        Some(other) => return Err(invalid_param(format!("Unknown preset {other}"))),
        None if visibility => "public_chat".into(),
        None => "private_chat".into(),
    };
    for u in &req.invite {
        ruma::UserId::parse(u)
            .map_err(|_| invalid_param(format!("Invalid user ID in invite: {u}")))?;
    }
    let alias = match &req.room_alias_name {
        Some(local) => {
            if local.is_empty()
                || local.contains(':')
                || local.contains('#')
                || local.chars().any(char::is_whitespace)
            {
                return Err(invalid_param("room_alias_name must be a bare localpart"));
            }
            let alias = format!("#{local}:{}", app.config.server_name);
            ruma::RoomAliasId::parse(&alias).map_err(|_| invalid_param("Invalid alias"))?;
            let a = alias.clone();
            if app.db.read(move |c| rooms::get_alias(c, &a)).await?.is_some() {
                return Err(Error::RoomInUse("Room alias already taken".into()));
            }
            Some(alias)
        }
        None => None,
    };

    // v12+ rooms are named after their create event, known once it is built.
    let id_from_create = matches!(rules.room_id_format, RoomIdFormatVersion::V2);
    let creators_privileged = rules.authorization.explicitly_privilege_room_creators;
    let room_id = if id_from_create {
        String::new()
    } else {
        let id = format!("!{}:{}", crate::users::random_string(18), app.config.server_name);
        RoomId::parse(&id).map_err(Error::internal)?;
        id
    };
    let room = RoomHandle {
        nid: 0,
        room_id,
        version: version_id,
        rules,
        state: Default::default(),
        tips: vec![],
        state_group: None,
        pipe: Default::default(),
    };

    let profile = {
        let c = creator.to_string();
        app.db.read(move |conn| users::get(conn, &c)).await?
    };
    let mut member = json!({"membership": "join"});
    if let Some(p) = &profile {
        if let Some(d) = &p.displayname {
            member["displayname"] = json!(d);
        }
        if let Some(a) = &p.avatar_url {
            member["avatar_url"] = json!(a);
        }
    }

    let mut create_content = req.creation_content.clone().unwrap_or_default();
    create_content.insert("room_version".into(), json!(version));
    if version.parse::<u32>().is_ok_and(|v| v < 11) {
        create_content.insert("creator".into(), json!(creator));
    } else {
        create_content.remove("creator");
    }
    let trusted = if preset == "trusted_private_chat" { req.invite.clone() } else { vec![] };
    if room.rules.authorization.additional_room_creators {
        // Trusted invitees become creators too (spec: createRoom, `creation_content`).
        let mut extra: Vec<Value> = match create_content.get("additional_creators") {
            None => vec![],
            Some(Value::Array(a)) => a.clone(),
            Some(_) => return Err(bad_json("'additional_creators' must be an array")),
        };
        for e in &extra {
            if e.as_str().is_none_or(|u| ruma::UserId::parse(u).is_err()) {
                return Err(bad_json(format!("Invalid user ID in additional_creators: {e}")));
            }
        }
        for u in &trusted {
            if !extra.iter().any(|e| e.as_str() == Some(u)) {
                extra.push(json!(u));
            }
        }
        if !extra.is_empty() {
            create_content.insert("additional_creators".into(), Value::Array(extra));
        }
    }
    let mut power = default_power_levels(creator, &trusted, &version, creators_privileged);
    if let (Some(o), Some(p)) = (&req.power_level_content_override, power.as_object_mut()) {
        for (k, v) in o {
            p.insert(k.clone(), v.clone());
        }
    }

    let mut plan = vec![
        NewEvent::state("m.room.create", "", Value::Object(create_content)),
        NewEvent::state("m.room.member", creator, member),
        NewEvent::state("m.room.power_levels", "", power),
    ];
    if let Some(a) = &alias {
        plan.push(NewEvent::state("m.room.canonical_alias", "", json!({"alias": a})));
    }
    let (join_rule, guest) = match preset.as_str() {
        "public_chat" => ("public", None),
        _ => ("invite", Some("can_join")),
    };
    plan.push(NewEvent::state("m.room.join_rules", "", json!({"join_rule": join_rule})));
    plan.push(NewEvent::state(
        "m.room.history_visibility",
        "",
        json!({"history_visibility": "shared"}),
    ));
    if let Some(g) = guest {
        plan.push(NewEvent::state("m.room.guest_access", "", json!({"guest_access": g})));
    }
    for s in &req.initial_state {
        plan.push(NewEvent::state(&s.event_type, &s.state_key, Value::Object(s.content.clone())));
    }
    if let Some(n) = &req.name {
        plan.push(NewEvent::state("m.room.name", "", json!({"name": n})));
    }
    if let Some(t) = &req.topic {
        // The plain text also goes into an `m.topic` block with the text/plain mimetype
        // (Matrix 1.15), as Synapse does.
        let content =
            json!({"topic": t, "m.topic": {"m.text": [{"body": t, "mimetype": "text/plain"}]}});
        plan.push(NewEvent::state("m.room.topic", "", content));
    }
    for u in &req.invite {
        let mut content = json!({"membership": "invite"});
        if req.is_direct {
            content["is_direct"] = json!(true);
        }
        plan.push(NewEvent::state("m.room.member", u, content));
    }

    // Build and authorise every event against the state the previous ones produced, then
    // lock the new room. Nobody can know its ID before then, so the lock is uncontended;
    // it refuses an ID already in use, which for v12 means a create event identical to
    // another's (same creator, content and millisecond): a later timestamp names another.
    let first = now_ms();
    let mut now = first;
    let (mut room, built) = loop {
        let mut handle = RoomHandle {
            nid: 0,
            room_id: room.room_id.clone(),
            version: room.version.clone(),
            rules: room.rules.clone(),
            state: Default::default(),
            tips: vec![],
            state_group: None,
            pipe: Default::default(),
        };
        let built = build_all(app, &mut handle, creator, &plan, now, id_from_create)?;
        match app.rooms.lock_new(handle).await {
            Ok(locked) => break (locked, built),
            Err(_) if id_from_create && now < first + 10 => now += 1,
            Err(e) => return Err(e),
        }
    };
    let room_id = room.room_id.clone();
    // Now the room row, then the events, in one writer job each.
    let (rid, v, c) = (room_id.clone(), version.clone(), creator.to_string());
    let alias2 = alias.clone();
    let room_nid = app
        .db
        .write(move |conn| {
            let nid = rooms::insert(conn, &rid, &v, &c, now_ms())?;
            if visibility {
                rooms::set_public(conn, nid, true)?;
            }
            if let Some(a) = &alias2
                && !rooms::put_alias(conn, a, nid, &c)?
            {
                return Err(Error::RoomInUse("Room alias already taken".into()));
            }
            Ok(nid)
        })
        .await?;
    room.nid = room_nid;
    room.state.clear();
    room.tips.clear();
    room.state_group = None;
    let batch = built.into_iter().map(|p| (Arc::clone(&p), None)).collect();
    super::persist(app, &mut room, batch).await?;
    tracing::info!(%room_id, %creator, %version, "created room");
    Ok(room_id)
}
