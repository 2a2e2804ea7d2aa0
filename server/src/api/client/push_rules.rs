//! Push rules: the spec's default ruleset plus the user's changes (see `push::ruleset`).
//! Clients such as matrix-js-sdk fetch these before their first sync. Paths are parsed as
//! Synapse does: everything under `/pushrules/` reaches one parser, and a path it cannot
//! make sense of is 400 `M_UNRECOGNIZED` (SyTest 61push/80torture).

use std::sync::Arc;

use ruma::UserId;
use ruma::push::{Action, PushCondition, Ruleset};
use serde_json::{Map, Value, json};

use crate::app::App;
use crate::error::{Error, Result, bad_json, invalid_param, missing_param, not_found};
use crate::http::auth::User;
use crate::http::request::Req;
use crate::http::response::{Resp, empty_object, ok};
use crate::http::router::Router;
use crate::push::ruleset::{self, InsertError, RemoveError};
use crate::store::push_rules;

pub fn routes(r: &mut Router) {
    r.get("/_matrix/client/{v}/pushrules/", all);
    r.put("/_matrix/client/{v}/pushrules/", unrecognized);
    r.delete("/_matrix/client/{v}/pushrules/", unrecognized);
    r.get("/_matrix/client/{v}/pushrules/{*}", get_path);
    r.put("/_matrix/client/{v}/pushrules/{*}", put_path);
    r.delete("/_matrix/client/{v}/pushrules/{*}", delete_path);
}

fn unrecognized_error() -> Error {
    Error::BadPath("Unrecognised request: a push rule path is /global/{kind}/{ruleId}".into())
}

async fn unrecognized(app: Arc<App>, req: Req) -> Result<Resp> {
    app.auth(&req).await?;
    Err(unrecognized_error())
}

/// The user's ruleset in the spec's shape (every kind present).
pub(crate) fn parse_stored(stored: Option<String>, user_id: &str) -> Result<Value> {
    match stored {
        Some(text) => {
            let v: Value = serde_json::from_str(&text).map_err(Error::internal)?;
            Ok(ruleset::from_stored(&v))
        }
        None => Ok(ruleset::server_default(&UserId::parse(user_id).map_err(Error::internal)?)),
    }
}

/// The user's ruleset as JSON.
pub async fn load_json(app: &App, user: &User) -> Result<Value> {
    let nid = user.user_nid;
    let stored = app.db.read(move |c| push_rules::get(c, nid)).await?;
    parse_stored(stored, &user.user_id)
}

/// The user's ruleset for evaluation.
pub async fn load(app: &App, user: &User) -> Result<Ruleset> {
    let uid = UserId::parse(&user.user_id).map_err(Error::internal)?;
    Ok(ruleset::to_ruma(&load_json(app, user).await?, &uid))
}

/// Read, change and store the ruleset inside one writer job, so concurrent edits from two
/// clients cannot overwrite each other.
async fn modify<F>(app: &App, user: &User, f: F) -> Result<()>
where
    F: FnOnce(&mut Value) -> Result<()> + Send + 'static,
{
    let (nid, uid) = (user.user_nid, user.user_id.clone());
    app.db
        .write(move |c| {
            let mut rules = parse_stored(push_rules::get(c, nid)?, &uid)?;
            f(&mut rules)?;
            let text = serde_json::to_string(&json!({"global": rules})).map_err(Error::internal)?;
            push_rules::put(c, nid, &text)
        })
        .await?;
    app.notifier.notify();
    Ok(())
}

async fn all(app: Arc<App>, req: Req) -> Result<Resp> {
    let u = app.auth(&req).await?;
    Ok(ok(&json!({"global": load_json(&app, &u).await?})))
}

/// `global/{kind}/{rule_id}[/{attr}]` of a PUT or DELETE path.
struct RuleSpec {
    kind: String,
    rule_id: String,
    attr: Option<String>,
}

fn rule_spec(path: &str) -> Result<RuleSpec> {
    let mut parts = path.split('/');
    if parts.next() != Some("global") {
        return Err(unrecognized_error());
    }
    let kind = parts.next().ok_or_else(unrecognized_error)?.to_string();
    let rule_id = parts.next().filter(|s| !s.is_empty()).ok_or_else(unrecognized_error)?;
    let attr = parts.next().filter(|s| !s.is_empty()).map(str::to_string);
    Ok(RuleSpec { kind, rule_id: rule_id.to_string(), attr })
}

fn check_kind(kind: &str) -> Result<()> {
    if ruleset::KINDS.contains(&kind) {
        Ok(())
    } else {
        Err(invalid_param(format!("Unknown push rule kind {kind}")))
    }
}

/// GET: the scope, a kind, a rule or one attribute of it; a path missing its trailing
/// slash or naming nothing known is 400, an unknown rule 404.
async fn get_path(app: Arc<App>, req: Req) -> Result<Resp> {
    let u = app.auth(&req).await?;
    let rules = load_json(&app, &u).await?;
    let parts: Vec<&str> = req.param(0).split('/').collect();
    if parts.first() != Some(&"global") {
        return Err(unrecognized_error());
    }
    let found = match parts[1..] {
        [""] => rules,
        [kind, ""] if ruleset::KINDS.contains(&kind) => rules[kind].clone(),
        [kind, rule_id, ref attr @ ..] if ruleset::KINDS.contains(&kind) && !rule_id.is_empty() => {
            let rule =
                ruleset::get(&rules, kind, rule_id).ok_or_else(|| not_found("Unknown rule"))?;
            match attr {
                [] => rule.clone(),
                [a] => match rule.get(*a) {
                    Some(v) if !a.is_empty() => json!({ *a: v }),
                    _ => return Err(unrecognized_error()),
                },
                _ => return Err(unrecognized_error()),
            }
        }
        _ => return Err(unrecognized_error()),
    };
    Ok(ok(&found))
}

fn actions_from(v: Option<&Value>) -> Result<Value> {
    let v = v.ok_or_else(|| missing_param("Missing 'actions'"))?;
    // ruma keeps unknown actions as custom ones; clients may only send the spec's (the
    // legacy `dont_notify` and `coalesce` included), as Synapse checks.
    let known = |a: &Value| match a {
        Value::String(s) => matches!(s.as_str(), "notify" | "dont_notify" | "coalesce"),
        Value::Object(o) => o.get("set_tweak").is_some_and(Value::is_string),
        _ => false,
    };
    if !v.as_array().is_some_and(|a| a.iter().all(known)) {
        return Err(bad_json("Invalid actions: each is 'notify' or a 'set_tweak' object"));
    }
    let actions: Vec<Action> =
        serde_json::from_value(v.clone()).map_err(|e| bad_json(format!("Invalid actions: {e}")))?;
    serde_json::to_value(actions).map_err(Error::internal)
}

/// The stored rule for a PUT body, checked as Synapse does.
fn new_rule(kind: &str, rule_id: &str, body: &Map<String, Value>) -> Result<Map<String, Value>> {
    let mut rule = json!({"rule_id": rule_id, "default": false, "enabled": true});
    match kind {
        "override" | "underride" => {
            let conditions =
                body.get("conditions").ok_or_else(|| missing_param("Missing 'conditions'"))?;
            let parsed: Vec<PushCondition> = serde_json::from_value(conditions.clone())
                .map_err(|e| bad_json(format!("Invalid conditions: {e}")))?;
            if conditions.as_array().is_some_and(|c| c.iter().any(|c| c.get("kind").is_none())) {
                return Err(bad_json("Condition without 'kind'"));
            }
            rule["conditions"] = serde_json::to_value(parsed).map_err(Error::internal)?;
        }
        "content" => {
            let pattern = body
                .get("pattern")
                .and_then(Value::as_str)
                .ok_or_else(|| missing_param("Content rules need a 'pattern'"))?;
            rule["pattern"] = json!(pattern);
        }
        _ => {}
    }
    rule["actions"] = actions_from(body.get("actions"))?;
    Ok(rule.as_object().cloned().unwrap_or_default())
}

async fn put_path(app: Arc<App>, req: Req) -> Result<Resp> {
    let u = app.auth(&req).await?;
    let spec = rule_spec(req.param(0))?;
    check_kind(&spec.kind)?;
    if spec.rule_id.contains(['/', '\\']) {
        return Err(invalid_param("rule_id may not contain slashes"));
    }
    let body = req.json_object(false)?;
    let RuleSpec { kind, rule_id, attr } = spec;
    if let Some(attr) = attr {
        let (key, value) = match attr.as_str() {
            "enabled" => {
                let enabled = body
                    .get("enabled")
                    .and_then(Value::as_bool)
                    .ok_or_else(|| bad_json("'enabled' must be a boolean"))?;
                ("enabled", json!(enabled))
            }
            "actions" => ("actions", actions_from(body.get("actions"))?),
            _ => return Err(unrecognized_error()),
        };
        modify(&app, &u, move |rules| {
            let rule = ruleset::get_mut(rules, &kind, &rule_id)
                .ok_or_else(|| not_found("Unknown rule"))?;
            rule.insert(key.into(), value);
            Ok(())
        })
        .await?;
        return Ok(empty_object());
    }
    if rule_id.starts_with('.') {
        return Err(invalid_param("cannot add new rule_ids that start with '.'"));
    }
    let rule = new_rule(&kind, &rule_id, &body)?;
    let after = req.query("after").map(str::to_string);
    let before = req.query("before").map(str::to_string);
    modify(&app, &u, move |rules| {
        ruleset::insert(rules, &kind, rule, after.as_deref(), before.as_deref()).map_err(|e| {
            // 400, not 404: the spec keeps 404 for the rule being updated.
            match e {
                InsertError::UnknownRelative => {
                    Error::Unknown("before/after rule not found".into())
                }
                InsertError::BeforeAboveAfter => invalid_param("'before' is above 'after'"),
            }
        })
    })
    .await?;
    Ok(empty_object())
}

async fn delete_path(app: Arc<App>, req: Req) -> Result<Resp> {
    let u = app.auth(&req).await?;
    let spec = rule_spec(req.param(0))?;
    check_kind(&spec.kind)?;
    modify(&app, &u, move |rules| {
        ruleset::remove(rules, &spec.kind, &spec.rule_id).map_err(|e| match e {
            RemoveError::ServerDefault => invalid_param("Cannot delete a server-default rule"),
            RemoveError::NotFound => not_found("Unknown rule"),
        })
    })
    .await?;
    Ok(empty_object())
}
