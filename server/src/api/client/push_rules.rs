//! Push rules: the spec's default ruleset (from ruma) plus the user's changes.
//! Clients such as matrix-js-sdk fetch these before their first sync.

use std::sync::Arc;

use ruma::push::{
    Action, InsertPushRuleError, NewConditionalPushRule, NewPatternedPushRule, NewPushRule,
    NewSimplePushRule, PushCondition, RemovePushRuleError, RuleKind, Ruleset,
};
use ruma::{OwnedRoomId, OwnedUserId, UserId};
use serde_json::{Value, json};

use crate::app::App;
use crate::error::{Error, Result, bad_json, invalid_param, missing_param, not_found};
use crate::http::auth::User;
use crate::http::request::Req;
use crate::http::response::{Resp, empty_object, ok};
use crate::http::router::Router;
use crate::store::push_rules;

pub fn routes(r: &mut Router) {
    r.get("/_matrix/client/{v}/pushrules", all);
    r.get("/_matrix/client/{v}/pushrules/", all);
    r.get("/_matrix/client/{v}/pushrules/{}/", scope);
    r.get("/_matrix/client/{v}/pushrules/{}", scope);
    r.get("/_matrix/client/{v}/pushrules/{}/{}/", kind);
    r.get("/_matrix/client/{v}/pushrules/{}/{}", kind);
    r.get("/_matrix/client/{v}/pushrules/{}/{}/{}", get_rule);
    r.put("/_matrix/client/{v}/pushrules/{}/{}/{}", put_rule);
    r.delete("/_matrix/client/{v}/pushrules/{}/{}/{}", delete_rule);
    r.get("/_matrix/client/{v}/pushrules/{}/{}/{}/enabled", get_enabled);
    r.put("/_matrix/client/{v}/pushrules/{}/{}/{}/enabled", put_enabled);
    r.get("/_matrix/client/{v}/pushrules/{}/{}/{}/actions", get_actions);
    r.put("/_matrix/client/{v}/pushrules/{}/{}/{}/actions", put_actions);
}

/// The stored content is the `m.push_rules` account data shape: `{"global": ruleset}`.
fn parse_stored(stored: Option<String>, user_id: &str) -> Result<Ruleset> {
    match stored {
        Some(text) => {
            let v: Value = serde_json::from_str(&text).map_err(Error::internal)?;
            serde_json::from_value(v.get("global").cloned().unwrap_or_default())
                .map_err(Error::internal)
        }
        None => {
            let uid = UserId::parse(user_id).map_err(Error::internal)?;
            Ok(Ruleset::server_default(&uid))
        }
    }
}

pub async fn load(app: &App, user: &User) -> Result<Ruleset> {
    let nid = user.user_nid;
    let stored = app.db.read(move |c| push_rules::get(c, nid)).await?;
    parse_stored(stored, &user.user_id)
}

/// Read, change and store the ruleset inside one writer job, so concurrent edits from two
/// clients cannot overwrite each other.
async fn modify<F>(app: &App, user: &User, f: F) -> Result<()>
where
    F: FnOnce(&mut Ruleset) -> Result<()> + Send + 'static,
{
    let (nid, uid) = (user.user_nid, user.user_id.clone());
    app.db
        .write(move |c| {
            let mut rules = parse_stored(push_rules::get(c, nid)?, &uid)?;
            f(&mut rules)?;
            let content = json!({"global": ruleset_json(&rules)?});
            let text = serde_json::to_string(&content).map_err(Error::internal)?;
            push_rules::put(c, nid, &text)
        })
        .await?;
    app.notifier.notify();
    Ok(())
}

fn check_scope(req: &Req) -> Result<()> {
    if req.param(0) == "global" {
        Ok(())
    } else {
        Err(invalid_param("Unknown push rule scope; only 'global' exists"))
    }
}

fn parse_kind(s: &str) -> Result<RuleKind> {
    match s {
        "override" => Ok(RuleKind::Override),
        "underride" => Ok(RuleKind::Underride),
        "sender" => Ok(RuleKind::Sender),
        "room" => Ok(RuleKind::Room),
        "content" => Ok(RuleKind::Content),
        _ => Err(invalid_param(format!("Unknown push rule kind {s}"))),
    }
}

/// One rule as the spec shows it, found in the serialised ruleset.
fn rule_json(rules: &Ruleset, kind: &str, rule_id: &str) -> Result<Value> {
    let v = serde_json::to_value(rules).map_err(Error::internal)?;
    v.get(kind)
        .and_then(Value::as_array)
        .and_then(|a| a.iter().find(|r| r["rule_id"] == rule_id))
        .cloned()
        .ok_or_else(|| not_found("Unknown rule"))
}

/// The ruleset as clients get it: every kind present, as an empty array when it has no
/// rules (ruma leaves empty kinds out; the spec's examples and Synapse always list all five,
/// and clients index them without checking).
pub fn ruleset_json(rules: &Ruleset) -> Result<Value> {
    let mut v = serde_json::to_value(rules).map_err(Error::internal)?;
    if let Some(m) = v.as_object_mut() {
        for kind in ["override", "content", "room", "sender", "underride"] {
            m.entry(kind).or_insert_with(|| json!([]));
        }
    }
    Ok(v)
}

async fn all(app: Arc<App>, req: Req) -> Result<Resp> {
    let u = app.auth(&req).await?;
    Ok(ok(&json!({"global": ruleset_json(&load(&app, &u).await?)?})))
}

async fn scope(app: Arc<App>, req: Req) -> Result<Resp> {
    let u = app.auth(&req).await?;
    check_scope(&req)?;
    Ok(ok(&ruleset_json(&load(&app, &u).await?)?))
}

async fn kind(app: Arc<App>, req: Req) -> Result<Resp> {
    let u = app.auth(&req).await?;
    check_scope(&req)?;
    parse_kind(req.param(1))?;
    let v = serde_json::to_value(load(&app, &u).await?).map_err(Error::internal)?;
    Ok(ok(&v.get(req.param(1)).cloned().unwrap_or(json!([]))))
}

async fn get_rule(app: Arc<App>, req: Req) -> Result<Resp> {
    let u = app.auth(&req).await?;
    check_scope(&req)?;
    parse_kind(req.param(1))?;
    Ok(ok(&rule_json(&load(&app, &u).await?, req.param(1), req.param(2))?))
}

fn actions_from(v: Option<&Value>) -> Result<Vec<Action>> {
    let v = v.ok_or_else(|| missing_param("Missing 'actions'"))?;
    serde_json::from_value(v.clone()).map_err(|e| bad_json(format!("Invalid actions: {e}")))
}

async fn put_rule(app: Arc<App>, req: Req) -> Result<Resp> {
    let u = app.auth(&req).await?;
    check_scope(&req)?;
    let kind = parse_kind(req.param(1))?;
    let rule_id = req.param(2).to_string();
    let body = req.json_object(false)?;
    let actions = actions_from(body.get("actions"))?;
    let conditions = || -> Result<Vec<PushCondition>> {
        match body.get("conditions") {
            None | Some(Value::Null) => Ok(vec![]),
            Some(v) => serde_json::from_value(v.clone())
                .map_err(|e| bad_json(format!("Invalid conditions: {e}"))),
        }
    };
    let new = match kind {
        RuleKind::Override => {
            NewPushRule::Override(NewConditionalPushRule::new(rule_id, conditions()?, actions))
        }
        RuleKind::Underride => {
            NewPushRule::Underride(NewConditionalPushRule::new(rule_id, conditions()?, actions))
        }
        RuleKind::Content => {
            let pattern = body
                .get("pattern")
                .and_then(Value::as_str)
                .ok_or_else(|| missing_param("Content rules need a 'pattern'"))?;
            NewPushRule::Content(NewPatternedPushRule::new(rule_id, pattern.into(), actions))
        }
        RuleKind::Room => {
            let id = OwnedRoomId::try_from(rule_id)
                .map_err(|_| invalid_param("Room rule IDs must be room IDs"))?;
            NewPushRule::Room(NewSimplePushRule::new(id, actions))
        }
        RuleKind::Sender => {
            let id = OwnedUserId::try_from(rule_id)
                .map_err(|_| invalid_param("Sender rule IDs must be user IDs"))?;
            NewPushRule::Sender(NewSimplePushRule::new(id, actions))
        }
        _ => return Err(invalid_param("Unknown push rule kind")),
    };
    let after = req.query("after").map(str::to_string);
    let before = req.query("before").map(str::to_string);
    modify(&app, &u, move |rules| {
        rules.insert(new, after.as_deref(), before.as_deref()).map_err(|e| match e {
            // 400, not 404: the spec keeps 404 for the rule being updated.
            InsertPushRuleError::UnknownRuleId => {
                Error::Unknown("before/after rule not found".into())
            }
            other => invalid_param(other.to_string()),
        })
    })
    .await?;
    Ok(empty_object())
}

async fn delete_rule(app: Arc<App>, req: Req) -> Result<Resp> {
    let u = app.auth(&req).await?;
    check_scope(&req)?;
    let kind = parse_kind(req.param(1))?;
    let id = req.param(2).to_string();
    modify(&app, &u, move |rules| {
        rules.remove(kind, id).map_err(|e| match e {
            RemovePushRuleError::ServerDefault => {
                invalid_param("Cannot delete a server-default rule")
            }
            _ => not_found("Unknown rule"),
        })
    })
    .await?;
    Ok(empty_object())
}

async fn get_enabled(app: Arc<App>, req: Req) -> Result<Resp> {
    let u = app.auth(&req).await?;
    check_scope(&req)?;
    parse_kind(req.param(1))?;
    let r = rule_json(&load(&app, &u).await?, req.param(1), req.param(2))?;
    Ok(ok(&json!({"enabled": r["enabled"]})))
}

async fn put_enabled(app: Arc<App>, req: Req) -> Result<Resp> {
    let u = app.auth(&req).await?;
    check_scope(&req)?;
    let kind = parse_kind(req.param(1))?;
    let body = req.json_object(false)?;
    let enabled = body
        .get("enabled")
        .and_then(Value::as_bool)
        .ok_or_else(|| bad_json("'enabled' must be a boolean"))?;
    let id = req.param(2).to_string();
    modify(&app, &u, move |rules| {
        rules.set_enabled(kind, id, enabled).map_err(|_| not_found("Unknown rule"))
    })
    .await?;
    Ok(empty_object())
}

async fn get_actions(app: Arc<App>, req: Req) -> Result<Resp> {
    let u = app.auth(&req).await?;
    check_scope(&req)?;
    parse_kind(req.param(1))?;
    let r = rule_json(&load(&app, &u).await?, req.param(1), req.param(2))?;
    Ok(ok(&json!({"actions": r["actions"]})))
}

async fn put_actions(app: Arc<App>, req: Req) -> Result<Resp> {
    let u = app.auth(&req).await?;
    check_scope(&req)?;
    let kind = parse_kind(req.param(1))?;
    let body = req.json_object(false)?;
    let actions = actions_from(body.get("actions"))?;
    let id = req.param(2).to_string();
    modify(&app, &u, move |rules| {
        rules.set_actions(kind, id, actions).map_err(|_| not_found("Unknown rule"))
    })
    .await?;
    Ok(empty_object())
}
