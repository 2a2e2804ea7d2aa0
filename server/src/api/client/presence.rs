//! Presence: `GET` / `PUT /presence/{userId}/status`.

use std::sync::Arc;

use serde_json::{Value, json};

use crate::app::App;
use crate::error::{Error, Result, bad_json, invalid_param, not_found};
use crate::http::request::Req;
use crate::http::response::{Resp, empty_object, ok};
use crate::http::router::Router;
use crate::store::{now_ms, presence};

pub fn routes(r: &mut Router) {
    r.get("/_matrix/client/{v}/presence/{}/status", get_status);
    r.put("/_matrix/client/{v}/presence/{}/status", put_status);
}

pub const STATES: &[&str] = &["online", "unavailable", "offline"];

/// Set presence (from the endpoint or a sync's `set_presence`) and wake syncs.
pub async fn set(app: &App, user_id: &str, state: &str, status_msg: Option<String>) -> Result<()> {
    let (uid, st) = (user_id.to_string(), state.to_string());
    app.db
        .write(move |c| {
            let before = presence::get(c, &uid)?;
            presence::set(c, &uid, &st, status_msg.as_deref(), now_ms())?;
            let after = presence::get(c, &uid)?;
            // Other servers hear of changes, not of every sync that repeats the state.
            let changed = match (&before, &after) {
                (Some(b), Some(a)) => b.state != a.state || b.status_msg != a.status_msg,
                _ => true,
            };
            if changed && let Some(a) = &after {
                let mut entry = content(a);
                entry["user_id"] = json!(uid);
                presence::federate(c, &uid, &json!({"push": [entry]}))?;
            }
            Ok(())
        })
        .await?;
    app.notifier.notify();
    Ok(())
}

async fn put_status(app: Arc<App>, req: Req) -> Result<Resp> {
    let user = app.auth(&req).await?;
    if req.param(0) != user.user_id {
        return Err(Error::Forbidden("Cannot set another user's presence".into()));
    }
    let body = req.json_object(false)?;
    let state = match body.get("presence") {
        Some(Value::String(s)) if STATES.contains(&s.as_str()) => s.clone(),
        Some(Value::String(s)) => return Err(invalid_param(format!("Unknown presence {s}"))),
        _ => return Err(bad_json("'presence' must be a string")),
    };
    let msg = match body.get("status_msg") {
        None => None,
        Some(Value::Null) => Some(String::new()),
        Some(Value::String(s)) => Some(s.clone()),
        Some(_) => return Err(bad_json("'status_msg' must be a string")),
    };
    set(&app, &user.user_id, &state, msg).await?;
    Ok(empty_object())
}

pub fn content(row: &presence::PresenceRow) -> Value {
    let ago = (now_ms() - row.last_active_ts).max(0);
    let mut c = json!({
        "presence": row.state,
        "last_active_ago": ago,
        "currently_active": row.state == "online" && ago < 5 * 60 * 1000,
    });
    if let Some(m) = &row.status_msg {
        c["status_msg"] = json!(m);
    }
    c
}

async fn get_status(app: Arc<App>, req: Req) -> Result<Resp> {
    app.auth(&req).await?;
    let target = req.param(0).to_string();
    let id = ruma::UserId::parse(&target).map_err(|_| invalid_param("Invalid user ID"))?;
    let t = target.clone();
    match app.db.read(move |c| presence::get(c, &t)).await? {
        Some(row) => Ok(ok(&content(&row))),
        None if id.server_name() == app.config.server_name => {
            let t = target.clone();
            let known = app.db.read(move |c| crate::store::users::exists(c, &t)).await?;
            if !known {
                return Err(not_found("Unknown user"));
            }
            Ok(ok(&json!({"presence": "offline"})))
        }
        None => Err(not_found("Presence of remote users arrives with federation")),
    }
}
