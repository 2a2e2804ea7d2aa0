//! Push-rule evaluation for local members (ruma's implementation of the spec's rules):
//! which events notify or highlight whom. The results feed the unread counts in `/sync`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use ruma::push::{
    Action, FlattenedJson, PushConditionPowerLevelsCtx, PushConditionRoomCtx, Ruleset,
};
use ruma::room_version_rules::RoomPowerLevelsRules;
use ruma::serde::Raw;
use ruma::{Int, OwnedRoomId, OwnedUserId, UInt};
use serde_json::{Value, json};

use super::{PduRef, RoomHandle};
use crate::app::App;
use crate::error::{Error, Result};
use crate::store::push_rules;

/// A member the event notifies, and whether it highlights for them.
#[derive(Debug, Clone)]
pub struct PushAction {
    pub user_id: String,
    pub highlight: bool,
    /// The `set_tweak` actions as a map (`sound`, `highlight`, ...), for push gateways.
    pub tweaks: serde_json::Map<String, Value>,
    /// Whether it counts as unread in the room: not for the invitee of an invite, who is
    /// only pushed (their unread counts start when they join).
    pub counts: bool,
}

/// The tweaks of `actions`: `{"set_tweak": k, "value": v}` as `k: v` (`true` without a
/// value), as push gateways get them.
fn tweaks_of(actions: &[Action]) -> serde_json::Map<String, Value> {
    let mut tweaks = serde_json::Map::new();
    for a in actions {
        if let Ok(v) = serde_json::to_value(a)
            && let Some(name) = v["set_tweak"].as_str()
        {
            tweaks.insert(name.to_string(), v.get("value").cloned().unwrap_or(json!(true)));
        }
    }
    tweaks
}

fn power_ctx(room: &RoomHandle) -> Option<PushConditionPowerLevelsCtx> {
    let pl = super::state_content(room, "m.room.power_levels", "")?;
    let users = pl["users"]
        .as_object()
        .map(|m| {
            m.iter()
                .filter_map(|(u, l)| {
                    Some((OwnedUserId::try_from(u.as_str()).ok()?, Int::new(l.as_i64()?)?))
                })
                .collect()
        })
        .unwrap_or_default();
    let mut notifications = ruma::power_levels::NotificationPowerLevels::new();
    if let Some(r) = pl["notifications"]["room"].as_i64().and_then(Int::new) {
        notifications.room = r;
    }
    Some(PushConditionPowerLevelsCtx::new(
        users,
        Int::new(pl["users_default"].as_i64().unwrap_or(0)).unwrap_or_default(),
        notifications,
        RoomPowerLevelsRules::new(
            &room.rules.authorization,
            super::privileged_creators(room)
                .iter()
                .filter_map(|c| OwnedUserId::try_from(c.as_str()).ok()),
        ),
    ))
}

/// The thread an event belongs to for unread counts: its thread root's event ID when it
/// is an `m.thread` relation; for another relation (a reaction, an edit) to an event in a
/// thread, that thread (as Synapse); else `main`.
pub fn thread_of(conn: &rusqlite::Connection, pdu: &PduRef) -> Result<String> {
    let content = pdu.content_ref();
    let rel = &content["m.relates_to"];
    let Some(related) = rel["event_id"].as_str() else { return Ok("main".into()) };
    if rel["rel_type"] == "m.thread" {
        return Ok(related.to_string());
    }
    let Some(row) = crate::store::events::by_id(conn, related)? else { return Ok("main".into()) };
    let parent: Value = serde_json::from_str(&row.json).map_err(Error::internal)?;
    let prel = &parent["content"]["m.relates_to"];
    Ok(match prel["event_id"].as_str() {
        Some(root) if prel["rel_type"] == "m.thread" => root.to_string(),
        _ => "main".into(),
    })
}

/// Users' rulesets as last built, with the stored text they were built from: building one
/// (parse, the spec's defaults, ruma's types) cost more than evaluating it, once per member
/// per event. A changed text builds again, so nothing needs invalidating.
type Built = HashMap<String, (Option<String>, Arc<Ruleset>)>;
static RULESETS: Mutex<Option<Built>> = Mutex::new(None);
/// Past this many users the cache starts again (bounds its memory).
const RULESETS_MAX: usize = 10_000;

/// The ruma ruleset of `uid` whose stored rules are `stored` (`None`: the defaults).
fn ruleset_for(uid: &OwnedUserId, stored: Option<String>) -> Result<Arc<Ruleset>> {
    {
        let cache = RULESETS.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((text, rules)) = cache.as_ref().and_then(|c| c.get(uid.as_str()))
            && *text == stored
        {
            return Ok(rules.clone());
        }
    }
    let rules = Arc::new(match &stored {
        Some(text) => {
            let v: Value = serde_json::from_str(text).map_err(Error::internal)?;
            crate::push::ruleset::to_ruma(&crate::push::ruleset::from_stored(&v), uid)
        }
        None => Ruleset::server_default(uid),
    });
    let mut cache = RULESETS.lock().unwrap_or_else(|p| p.into_inner());
    let map = cache.get_or_insert_with(HashMap::new);
    if map.len() >= RULESETS_MAX {
        map.clear();
    }
    map.insert(uid.to_string(), (stored, rules.clone()));
    Ok(rules)
}

/// Evaluate `pdu` for every local joined member but its sender (and the invitee of an invite).
pub async fn evaluate(app: &App, room: &RoomHandle, pdu: &PduRef) -> Result<Vec<PushAction>> {
    let mut members: Vec<(String, String)> = room
        .state
        .iter()
        .filter(|((t, _), e)| t == "m.room.member" && e.content_ref()["membership"] == "join")
        .map(|((_, k), e)| {
            (k.clone(), e.content_ref()["displayname"].as_str().unwrap_or(k).to_string())
        })
        .collect();
    let member_count = UInt::new(members.len() as u64).unwrap_or_default();
    let joined: Vec<String> = members.iter().map(|(u, _)| u.clone()).collect();
    // The invitee of an invite is not in the room yet, but it is theirs to be told about
    // (the default `.m.rule.invite_for_me`), as in Synapse.
    if pdu.type_str() == "m.room.member"
        && let Some(invitee) = &pdu.state_key
        && pdu.content_ref()["membership"] == "invite"
        && !members.iter().any(|(u, _)| u == invitee)
    {
        members.push((invitee.clone(), invitee.clone()));
    }
    let local = format!(":{}", app.config.server_name);
    let event = json!({
        "type": pdu.type_str(),
        "content": pdu.content_value(),
        "sender": pdu.sender,
        "room_id": pdu.room_id,
        "event_id": pdu.event_id,
        "state_key": pdu.state_key,
        "origin_server_ts": pdu.origin_server_ts,
    });
    let raw: Raw<Value> = Raw::new(&event).map_err(Error::internal)?;
    // Flattened once for every member (ruma's `get_actions` flattens it per call).
    let flat = FlattenedJson::from_raw(&raw);
    let room_id = OwnedRoomId::try_from(room.room_id.as_str()).map_err(Error::internal)?;
    let power = power_ctx(room);
    let mut out = vec![];
    let candidates: Vec<(String, String)> = members
        .into_iter()
        .filter(|(u, _)| u != pdu.sender.as_str() && u.ends_with(&local))
        .collect();
    // One read for every member's push rules: a read per member per event made each send
    // cost about 75 µs per member (1.5 ms in a room of 20).
    let ids: Vec<String> = candidates.iter().map(|(u, _)| u.clone()).collect();
    let load = move |c: &rusqlite::Connection| {
        // One read transaction for all of them, not one per statement.
        let _snapshot = c.unchecked_transaction()?;
        ids.iter()
            .map(|id| match crate::store::users::get(c, id)? {
                Some(u) => Ok(Some(push_rules::get(c, u.nid)?)),
                None => Ok(None),
            })
            .collect::<Result<Vec<Option<Option<String>>>>>()
    };
    let stored_rules = app.db.read_keyed(candidates.len(), load).await?;
    for ((user_id, display_name), stored) in candidates.into_iter().zip(stored_rules) {
        // Not a user of this server (any more).
        let Some(stored) = stored else { continue };
        let Ok(uid) = OwnedUserId::try_from(user_id.as_str()) else { continue };
        let rules = ruleset_for(&uid, stored)?;
        let mut ctx = PushConditionRoomCtx::new(room_id.clone(), member_count, uid, display_name);
        ctx.power_levels = power.clone();
        // As `Ruleset::get_actions`: the first rule that applies (the sender, whom it
        // skips, is not a candidate).
        let mut actions: &[Action] = &[];
        for rule in rules.as_ref() {
            if rule.applies(&flat, &ctx).await {
                actions = rule.actions();
                break;
            }
        }
        if actions.iter().any(Action::should_notify) {
            let highlight = actions.iter().any(Action::is_highlight);
            let counts = joined.contains(&user_id);
            out.push(PushAction { user_id, highlight, tweaks: tweaks_of(actions), counts });
        }
    }
    Ok(out)
}

/// Store the counted push actions of a stored event, with its thread (for per-thread
/// unread counts).
pub fn record(
    c: &rusqlite::Connection,
    room_nid: i64,
    pdu: &PduRef,
    actions: &[PushAction],
    stream_pos: i64,
) -> Result<()> {
    let counted: Vec<_> = actions.iter().filter(|a| a.counts).collect();
    let thread = if counted.is_empty() { String::new() } else { thread_of(c, pdu)? };
    for a in counted {
        crate::store::events::add_push_action(
            c,
            room_nid,
            a.user_id.as_str(),
            stream_pos,
            a.highlight,
            &thread,
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_ruleset_is_built_again_only_when_its_stored_text_changes() {
        let uid = OwnedUserId::try_from("@cache-test:glia.example").expect("uid");
        let a = ruleset_for(&uid, None).expect("defaults");
        let b = ruleset_for(&uid, None).expect("defaults");
        assert!(Arc::ptr_eq(&a, &b), "same text, same ruleset");
        let text = r#"{"global":{"override":[{"rule_id":".m.rule.master","default":true,"enabled":true,"conditions":[],"actions":[]}]}}"#;
        let c = ruleset_for(&uid, Some(text.into())).expect("stored");
        assert!(!Arc::ptr_eq(&a, &c), "changed text, new ruleset");
        let d = ruleset_for(&uid, Some(text.into())).expect("stored");
        assert!(Arc::ptr_eq(&c, &d));
    }
}
