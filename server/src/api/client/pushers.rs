//! Pushers (spec: client-server API, "Push Notifications"): `GET /pushers` and
//! `POST /pushers/set`. Delivery to push gateways is `push::gateway`.

use std::sync::Arc;

use serde_json::{Map, Value, json};

use crate::app::App;
use crate::error::{Error, Result, bad_json, invalid_param};
use crate::http::request::Req;
use crate::http::response::{Resp, empty_object, ok};
use crate::http::router::Router;
use crate::store::pushers::{self, Pusher};

pub fn routes(r: &mut Router) {
    r.get("/_matrix/client/{v}/pushers", get_pushers);
    r.post("/_matrix/client/{v}/pushers/set", set_pusher);
}

/// The path every HTTP pusher's URL must have (spec: Push Gateway API).
const NOTIFY_PATH: &str = "/_matrix/push/v1/notify";

async fn get_pushers(app: Arc<App>, req: Req) -> Result<Resp> {
    let u = app.auth(&req).await?;
    let nid = u.user_nid;
    let list = app.db.read(move |c| pushers::for_user(c, nid)).await?;
    let list: Vec<Value> = list
        .into_iter()
        .map(|p| {
            let mut v = json!({
                "pushkey": p.pushkey,
                "kind": p.kind,
                "app_id": p.app_id,
                "app_display_name": p.app_display_name,
                "device_display_name": p.device_display_name,
                "lang": p.lang,
                "data": p.data,
            });
            if let Some(tag) = p.profile_tag.filter(|t| !t.is_empty()) {
                v["profile_tag"] = json!(tag);
            }
            v
        })
        .collect();
    Ok(ok(&json!({"pushers": list})))
}

fn string(body: &Map<String, Value>, key: &str) -> Result<String> {
    match body.get(key) {
        Some(Value::String(s)) => Ok(s.clone()),
        None | Some(Value::Null) => Err(Error::MissingParam(format!("Missing parameter: {key}"))),
        Some(_) => Err(bad_json(format!("'{key}' must be a string"))),
    }
}

/// The `data` of an HTTP pusher: an object whose `url` is an http(s) URL with the
/// notify path (as Synapse checks; the spec wants https, which is the gateway's affair).
fn check_http_data(data: &Value) -> Result<()> {
    let Some(url) = data.get("url") else {
        return Err(Error::MissingParam("'url' required in data for HTTP pusher".into()));
    };
    let url = url.as_str().ok_or_else(|| invalid_param("'url' must be a string"))?;
    let parsed = crate::cli::http_client::parse_url(url).map_err(invalid_param)?;
    if parsed.base_path != NOTIFY_PATH {
        return Err(invalid_param(format!("'url' must have a path of '{NOTIFY_PATH}'")));
    }
    if let Some(f) = data.get("format")
        && !f.is_string()
    {
        return Err(invalid_param("'format' must be a string"));
    }
    Ok(())
}

async fn set_pusher(app: Arc<App>, req: Req) -> Result<Resp> {
    let u = app.auth(&req).await?;
    let body = req.json_object(false)?;
    let app_id = string(&body, "app_id")?;
    let pushkey = string(&body, "pushkey")?;
    let nid = u.user_nid;
    // `kind: null` deletes the pusher.
    if body.get("kind").is_some_and(Value::is_null) {
        app.db.write(move |c| pushers::delete(c, nid, &app_id, &pushkey)).await?;
        return Ok(empty_object());
    }
    let kind = string(&body, "kind")?;
    let app_display_name = string(&body, "app_display_name")?;
    let device_display_name = string(&body, "device_display_name")?;
    let lang = string(&body, "lang")?;
    let data = match body.get("data") {
        Some(d @ Value::Object(_)) => d.clone(),
        None | Some(Value::Null) => {
            return Err(Error::MissingParam("Missing parameter: data".into()));
        }
        Some(_) => return Err(bad_json("'data' must be an object")),
    };
    let profile_tag = match body.get("profile_tag") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(_) => return Err(bad_json("'profile_tag' must be a string")),
    };
    let append = match body.get("append") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(_) => return Err(bad_json("'append' must be a boolean")),
    };
    if kind != "http" {
        return Err(invalid_param(format!("Unsupported pusher kind '{kind}'")));
    }
    if app_id.len() > 64 {
        return Err(invalid_param("'app_id' may be at most 64 characters"));
    }
    if pushkey.len() > 512 {
        return Err(invalid_param("'pushkey' may be at most 512 bytes"));
    }
    check_http_data(&data)?;
    let p = Pusher {
        user_nid: nid,
        app_id,
        pushkey,
        kind,
        app_display_name,
        device_display_name,
        profile_tag,
        lang,
        data,
        pushkey_ts: crate::store::now_ms(),
        device_id: Some(u.device_id.clone()),
    };
    app.db
        .write(move |c| {
            // Without `append`, the key belongs to this user alone from now on.
            if !append {
                pushers::delete_for_others(c, p.user_nid, &p.app_id, &p.pushkey)?;
            }
            pushers::upsert(c, &p)
        })
        .await?;
    Ok(empty_object())
}
