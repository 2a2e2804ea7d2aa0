//! Registration tokens (`/_synapse/admin/v1/registration_tokens`): list, create (given or
//! generated), read, update and delete. How registration uses them is in
//! `store::registration_tokens`.

use std::sync::Arc;

use serde_json::{Map, Value, json};

use super::bool_param;
use crate::app::App;
use crate::error::{Result, invalid_param, not_found};
use crate::http::request::Req;
use crate::http::response::{Resp, empty_object, ok};
use crate::http::router::Router;
use crate::store::now_ms;
use crate::store::registration_tokens::{self as tokens, TokenRow};

pub fn routes(r: &mut Router) {
    r.get("/_synapse/admin/v1/registration_tokens", list);
    r.post("/_synapse/admin/v1/registration_tokens/new", create);
    r.get("/_synapse/admin/v1/registration_tokens/{}", get);
    r.put("/_synapse/admin/v1/registration_tokens/{}", update);
    r.delete("/_synapse/admin/v1/registration_tokens/{}", delete);
}

fn token_json(t: &TokenRow) -> Value {
    json!({
        "token": t.token,
        "uses_allowed": t.uses_allowed,
        "pending": t.pending,
        "completed": t.completed,
        "expiry_time": t.expiry_time,
    })
}

async fn list(app: Arc<App>, req: Req) -> Result<Resp> {
    app.auth_admin(&req).await?;
    let valid = bool_param(&req, "valid")?;
    let rows = app.db.read(move |c| tokens::list(c, valid, now_ms())).await?;
    Ok(ok(&json!({"registration_tokens": rows.iter().map(token_json).collect::<Vec<_>>()})))
}

/// `uses_allowed`: a non-negative integer or null.
fn uses_allowed(v: &Value) -> Result<Option<i64>> {
    match v {
        Value::Null => Ok(None),
        Value::Number(n) if n.as_i64().is_some_and(|n| n >= 0) => Ok(n.as_i64()),
        _ => Err(invalid_param("uses_allowed must be a non-negative integer or null")),
    }
}

/// `expiry_time`: an integer (ms) not in the past, or null.
fn expiry_time(v: &Value) -> Result<Option<i64>> {
    match v {
        Value::Null => Ok(None),
        Value::Number(n) => match n.as_i64() {
            Some(t) if t < now_ms() => Err(invalid_param("expiry_time must not be in the past")),
            Some(t) => Ok(Some(t)),
            None => Err(invalid_param("expiry_time must be an integer or null")),
        },
        _ => Err(invalid_param("expiry_time must be an integer or null")),
    }
}

fn field<T>(body: &Map<String, Value>, key: &str, f: fn(&Value) -> Result<T>) -> Result<Option<T>> {
    body.get(key).map(f).transpose()
}

async fn create(app: Arc<App>, req: Req) -> Result<Resp> {
    app.auth_admin(&req).await?;
    let body = req.json_object(false)?;
    let given = match body.get("token") {
        None => None,
        Some(Value::String(t)) => {
            if !(1..=tokens::MAX_LENGTH).contains(&t.len()) {
                return Err(invalid_param(
                    "token must not be empty and must not be longer than 64 characters",
                ));
            }
            if !tokens::is_valid_token(t) {
                return Err(invalid_param(
                    "token must consist only of characters matched by the regex [A-Za-z0-9._~-]",
                ));
            }
            Some(t.clone())
        }
        Some(_) => return Err(invalid_param("token must be a string")),
    };
    let length = match (&given, body.get("length")) {
        (Some(_), _) | (None, None) => tokens::DEFAULT_GENERATED_LENGTH,
        (None, Some(Value::Number(n))) => match n.as_i64() {
            Some(l) if (1..=tokens::MAX_LENGTH as i64).contains(&l) => l as usize,
            Some(_) => {
                return Err(invalid_param(
                    "length must be greater than zero and not greater than 64",
                ));
            }
            None => return Err(invalid_param("length must be an integer")),
        },
        (None, Some(_)) => return Err(invalid_param("length must be an integer")),
    };
    let uses = field(&body, "uses_allowed", uses_allowed)?.flatten();
    let expiry = field(&body, "expiry_time", expiry_time)?.flatten();
    let row = app
        .db
        .write(move |c| {
            let token = match given {
                Some(t) => t,
                None => tokens::generate(c, length)?,
            };
            if !tokens::create(c, &token, uses, expiry)? {
                return Err(invalid_param(format!("Token already exists: {token}")));
            }
            tokens::get(c, &token)?.ok_or_else(|| not_found("token vanished"))
        })
        .await?;
    tracing::info!(token = %row.token, "created registration token");
    Ok(ok(&token_json(&row)))
}

async fn get(app: Arc<App>, req: Req) -> Result<Resp> {
    app.auth_admin(&req).await?;
    let t = req.param(0).to_string();
    let t2 = t.clone();
    let row = app.db.read(move |c| tokens::get(c, &t2)).await?;
    let row = row.ok_or_else(|| not_found(format!("No such registration token: {t}")))?;
    Ok(ok(&token_json(&row)))
}

async fn update(app: Arc<App>, req: Req) -> Result<Resp> {
    app.auth_admin(&req).await?;
    let body = req.json_object(false)?;
    let uses = field(&body, "uses_allowed", uses_allowed)?;
    let expiry = field(&body, "expiry_time", expiry_time)?;
    let t = req.param(0).to_string();
    let t2 = t.clone();
    let row = app.db.write(move |c| tokens::update(c, &t2, uses, expiry)).await?;
    let row = row.ok_or_else(|| not_found(format!("No such registration token: {t}")))?;
    Ok(ok(&token_json(&row)))
}

async fn delete(app: Arc<App>, req: Req) -> Result<Resp> {
    app.auth_admin(&req).await?;
    let t = req.param(0).to_string();
    let t2 = t.clone();
    if !app.db.write(move |c| tokens::delete(c, &t2)).await? {
        return Err(not_found(format!("No such registration token: {t}")));
    }
    Ok(empty_object())
}
