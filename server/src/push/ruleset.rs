//! A user's push rules as the spec shows them (`{"override": [...], "content": [...], ...}`),
//! edited as JSON. ruma's `Ruleset` cannot hold a room rule whose ID is not a room ID
//! (Synapse accepts any ID, e.g. an alias, and such a rule simply never matches), so edits
//! work on the JSON and evaluation converts to ruma, leaving out rules ruma cannot type.

use ruma::push::Ruleset;
use ruma::{RoomId, UserId};
use serde_json::{Map, Value, json};

/// The five kinds, in the spec's order of priority.
pub const KINDS: [&str; 5] = ["override", "content", "room", "sender", "underride"];

/// Why an insertion was refused.
#[derive(Debug, PartialEq, Eq)]
pub enum InsertError {
    /// `before`/`after` names a rule that is not one of the user's own of this kind.
    UnknownRelative,
    /// `before` is above `after`.
    BeforeAboveAfter,
}

/// Why a removal was refused.
#[derive(Debug, PartialEq, Eq)]
pub enum RemoveError {
    ServerDefault,
    NotFound,
}

/// The spec's default rules for `user_id`, every kind present.
pub fn server_default(user_id: &UserId) -> Value {
    complete(serde_json::to_value(Ruleset::server_default(user_id)).unwrap_or_default())
}

/// The `global` ruleset of stored `m.push_rules` content, every kind present.
pub fn from_stored(content: &Value) -> Value {
    complete(content.get("global").cloned().unwrap_or_default())
}

/// Every kind present, as an empty array when it has no rules (clients index them all).
fn complete(mut v: Value) -> Value {
    if !v.is_object() {
        v = json!({});
    }
    if let Some(m) = v.as_object_mut() {
        for kind in KINDS {
            if !m.get(kind).is_some_and(Value::is_array) {
                m.insert(kind.to_string(), json!([]));
            }
        }
    }
    v
}

fn rules_mut<'a>(ruleset: &'a mut Value, kind: &str) -> Option<&'a mut Vec<Value>> {
    ruleset.get_mut(kind)?.as_array_mut()
}

fn position(rules: &[Value], rule_id: &str) -> Option<usize> {
    rules.iter().position(|r| r["rule_id"] == rule_id)
}

/// The rule `rule_id` of `kind`.
pub fn get<'a>(ruleset: &'a Value, kind: &str, rule_id: &str) -> Option<&'a Value> {
    ruleset.get(kind)?.as_array()?.iter().find(|r| r["rule_id"] == rule_id)
}

/// The rule `rule_id` of `kind`, to change an attribute.
pub fn get_mut<'a>(
    ruleset: &'a mut Value,
    kind: &str,
    rule_id: &str,
) -> Option<&'a mut Map<String, Value>> {
    rules_mut(ruleset, kind)?.iter_mut().find(|r| r["rule_id"] == rule_id)?.as_object_mut()
}

/// Add or replace a user rule. A new rule goes first among its kind (after
/// `.m.rule.master` for override rules); `after`/`before` name one of the user's own rules
/// to place it relative to. A replaced rule keeps its place (unless placed) and `enabled`.
pub fn insert(
    ruleset: &mut Value,
    kind: &str,
    mut rule: Map<String, Value>,
    after: Option<&str>,
    before: Option<&str>,
) -> Result<(), InsertError> {
    let Some(rules) = rules_mut(ruleset, kind) else {
        return Err(InsertError::UnknownRelative);
    };
    let user_rule = |rules: &[Value], id: &str| {
        position(rules, id).filter(|&i| rules[i]["default"] != true && !id.starts_with('.'))
    };
    let rule_id = rule.get("rule_id").and_then(Value::as_str).unwrap_or_default().to_string();
    // Check the relative rules before changing anything.
    for id in after.into_iter().chain(before) {
        if id != rule_id && user_rule(rules, id).is_none() {
            return Err(InsertError::UnknownRelative);
        }
    }
    // Edit a copy, so that a refusal leaves the ruleset as it was.
    let mut edited = rules.clone();
    let existing = position(&edited, &rule_id);
    if let Some(i) = existing {
        if let Some(enabled) = edited[i].get("enabled") {
            rule.insert("enabled".into(), enabled.clone());
        }
        edited.remove(i);
    }
    let below_master =
        kind == "override" && edited.first().is_some_and(|r| r["rule_id"] == ".m.rule.master");
    let mut to = match existing {
        Some(i) if after.is_none() && before.is_none() => i,
        _ => usize::from(below_master),
    };
    if let Some(i) = after.and_then(|id| position(&edited, id)) {
        to = i + 1;
    }
    if let Some(i) = before.and_then(|id| position(&edited, id)) {
        if after.is_some() && i < to {
            return Err(InsertError::BeforeAboveAfter);
        }
        to = i;
    }
    edited.insert(to.min(edited.len()), Value::Object(rule));
    *rules = edited;
    Ok(())
}

/// Remove a user rule.
pub fn remove(ruleset: &mut Value, kind: &str, rule_id: &str) -> Result<(), RemoveError> {
    let rules = rules_mut(ruleset, kind).ok_or(RemoveError::NotFound)?;
    let i = position(rules, rule_id).ok_or(RemoveError::NotFound)?;
    if rules[i]["default"] == true {
        return Err(RemoveError::ServerDefault);
    }
    rules.remove(i);
    Ok(())
}

/// The ruleset as ruma evaluates it: room and sender rules whose IDs are not room or user
/// IDs are left out (they could never match), and anything unreadable falls back to the
/// spec's defaults.
pub fn to_ruma(ruleset: &Value, user_id: &UserId) -> Ruleset {
    let mut v = ruleset.clone();
    for (kind, valid) in
        [("room", is_room_id as fn(&str) -> bool), ("sender", |s: &str| UserId::parse(s).is_ok())]
    {
        if let Some(rules) = rules_mut(&mut v, kind) {
            rules.retain(|r| r["rule_id"].as_str().is_some_and(valid));
        }
    }
    serde_json::from_value(v).unwrap_or_else(|_| Ruleset::server_default(user_id))
}

fn is_room_id(s: &str) -> bool {
    <&RoomId>::try_from(s).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user() -> ruma::OwnedUserId {
        UserId::parse("@alice:example.org").expect("user id")
    }

    fn room_rule(id: &str) -> Map<String, Value> {
        let v = json!({"rule_id": id, "default": false, "enabled": true, "actions": ["notify"]});
        v.as_object().cloned().expect("object")
    }

    fn ids(ruleset: &Value, kind: &str) -> Vec<String> {
        ruleset[kind]
            .as_array()
            .expect("kind")
            .iter()
            .map(|r| r["rule_id"].as_str().unwrap_or_default().to_string())
            .collect()
    }

    #[test]
    fn new_rules_go_first_and_relative() {
        let mut rs = server_default(&user());
        for id in ["#a:x", "#b:x"] {
            insert(&mut rs, "room", room_rule(id), None, None).expect("insert");
        }
        assert_eq!(ids(&rs, "room"), ["#b:x", "#a:x"]);
        insert(&mut rs, "room", room_rule("#c:x"), None, Some("#a:x")).expect("before");
        assert_eq!(ids(&rs, "room"), ["#b:x", "#c:x", "#a:x"]);
        insert(&mut rs, "room", room_rule("#d:x"), Some("#a:x"), None).expect("after");
        assert_eq!(ids(&rs, "room"), ["#b:x", "#c:x", "#a:x", "#d:x"]);
        assert_eq!(
            insert(&mut rs, "room", room_rule("#e:x"), None, Some("#nope:x")),
            Err(InsertError::UnknownRelative)
        );
        assert_eq!(
            insert(&mut rs, "room", room_rule("#e:x"), Some("#d:x"), Some("#b:x")),
            Err(InsertError::BeforeAboveAfter)
        );
        assert_eq!(ids(&rs, "room"), ["#b:x", "#c:x", "#a:x", "#d:x"], "refusals change nothing");
    }

    #[test]
    fn override_rules_stay_below_master_and_replacing_keeps_enabled() {
        let mut rs = server_default(&user());
        let mut r = room_rule("mine");
        r.insert("conditions".into(), json!([]));
        insert(&mut rs, "override", r.clone(), None, None).expect("insert");
        assert_eq!(ids(&rs, "override")[..2], [".m.rule.master", "mine"]);
        get_mut(&mut rs, "override", "mine").expect("rule").insert("enabled".into(), json!(false));
        insert(&mut rs, "override", r, None, None).expect("replace");
        assert_eq!(get(&rs, "override", "mine").expect("rule")["enabled"], false);
        assert_eq!(
            insert(&mut rs, "override", room_rule("x"), Some(".m.rule.master"), None),
            Err(InsertError::UnknownRelative),
            "server-default rules are no anchors"
        );
    }

    #[test]
    fn remove_and_convert() {
        let mut rs = server_default(&user());
        insert(&mut rs, "room", room_rule("#alias:x"), None, None).expect("insert");
        insert(&mut rs, "room", room_rule("!room:x"), None, None).expect("insert");
        let ruma = to_ruma(&rs, &user());
        assert_eq!(ruma.room.len(), 1, "the alias rule is left out of evaluation");
        assert!(ruma.override_.iter().any(|r| r.rule_id == ".m.rule.master"));
        assert_eq!(remove(&mut rs, "room", "#alias:x"), Ok(()));
        assert_eq!(remove(&mut rs, "room", "#alias:x"), Err(RemoveError::NotFound));
        assert_eq!(remove(&mut rs, "override", ".m.rule.master"), Err(RemoveError::ServerDefault));
    }
}
