//! Users: list, query, create or modify (`/v2/users`), deactivate, reset a password, whois,
//! the admin flag, joined rooms and rate-limit overrides.

use std::sync::Arc;

use http::StatusCode;
use serde_json::{Map, Value, json};

use super::{
    bool_field, bool_param, choice_param, dir_param, existing_user, int_param, local_user_id,
    require_fields,
};
use crate::app::App;
use crate::error::{Error, Result, bad_json, invalid_param, not_found};
use crate::http::request::Req;
use crate::http::response::{Resp, empty_object, json as json_resp, ok};
use crate::http::router::Router;
use crate::store::ratelimit_overrides::{self, Override};
use crate::store::users::{self as user_store, ListQuery, ListedUser, UserRow};
use crate::store::{devices, events};
use crate::users::{self as accounts, Registration, admin as account_admin};

pub fn routes(r: &mut Router) {
    r.get("/_synapse/admin/v2/users", list_v2);
    r.get("/_synapse/admin/v3/users", list_v3);
    r.get("/_synapse/admin/v2/users/{}", query_user);
    r.put("/_synapse/admin/v2/users/{}", put_user);
    r.post("/_synapse/admin/v1/deactivate/{}", deactivate);
    r.post("/_synapse/admin/v1/reset_password/{}", reset_password);
    r.get("/_synapse/admin/v1/whois/{}", whois);
    // The spec's own endpoint: users may ask about themselves, admins about anyone.
    r.get("/_matrix/client/{v}/admin/whois/{}", whois);
    r.get("/_synapse/admin/v1/users/{}/admin", get_admin);
    r.put("/_synapse/admin/v1/users/{}/admin", put_admin);
    r.get("/_synapse/admin/v1/users/{}/joined_rooms", joined_rooms);
    r.get("/_synapse/admin/v1/users/{}/override_ratelimit", get_ratelimit);
    r.post("/_synapse/admin/v1/users/{}/override_ratelimit", set_ratelimit);
    r.delete("/_synapse/admin/v1/users/{}/override_ratelimit", delete_ratelimit);
}

/// User types Synapse knows (besides none).
const USER_TYPES: &[&str] = &["bot", "support"];
/// Synapse's limits on profile fields set through the admin API.
const MAX_DISPLAYNAME_LEN: usize = 256;
const MAX_AVATAR_URL_LEN: usize = 1000;

/// An account as `GET /v2/users/{userId}` shows it. `creation_ts` is in seconds here and
/// in milliseconds in the list, as in Synapse.
fn user_json(u: &UserRow, last_seen_ts: Option<i64>) -> Value {
    json!({
        "name": u.user_id,
        "admin": u.is_admin,
        "deactivated": u.deactivated,
        "locked": false,
        "shadow_banned": false,
        "suspended": false,
        "creation_ts": u.created_ts / 1000,
        "appservice_id": null,
        "consent_server_notice_sent": null,
        "consent_version": null,
        "consent_ts": null,
        "user_type": u.user_type,
        "is_guest": u.is_guest,
        "displayname": u.displayname,
        "avatar_url": u.avatar_url,
        "threepids": [],
        "external_ids": [],
        "erased": u.erased,
        "last_seen_ts": last_seen_ts,
    })
}

fn listed_json(l: &ListedUser) -> Value {
    let u = &l.row;
    json!({
        "name": u.user_id,
        "user_type": u.user_type,
        "is_guest": u.is_guest,
        "admin": u.is_admin,
        "deactivated": u.deactivated,
        "shadow_banned": false,
        "displayname": u.displayname,
        "avatar_url": u.avatar_url,
        "creation_ts": u.created_ts,
        "erased": u.erased,
        "last_seen_ts": l.last_seen_ts,
        "locked": false,
    })
}

async fn list_v2(app: Arc<App>, req: Req) -> Result<Resp> {
    // v2: `deactivated=true` includes deactivated users; otherwise they are left out.
    list(app, req, |d| if d == Some(true) { None } else { Some(false) }).await
}

async fn list_v3(app: Arc<App>, req: Req) -> Result<Resp> {
    // v3: `deactivated` filters both ways; absent lists everyone.
    list(app, req, |d| d).await
}

async fn list(
    app: Arc<App>,
    req: Req,
    deactivated: fn(Option<bool>) -> Option<bool>,
) -> Result<Resp> {
    app.auth_admin(&req).await?;
    let sort: Vec<&str> = user_store::SORT_COLUMNS.iter().map(|(k, _)| *k).collect();
    let q = ListQuery {
        from: int_param(&req, "from", 0)?,
        limit: int_param(&req, "limit", 100)?,
        user_id: req.query("user_id").map(str::to_string),
        name: req.query("name").map(str::to_string),
        guests: bool_param(&req, "guests")?.unwrap_or(true),
        deactivated: deactivated(bool_param(&req, "deactivated")?),
        admins: bool_param(&req, "admins")?,
        not_user_types: req
            .query
            .iter()
            .filter(|(k, _)| k == "not_user_type")
            .map(|(_, v)| v.clone())
            .collect(),
        order_by: choice_param(&req, "order_by", "name", &sort)?.to_string(),
        backwards: dir_param(&req)?,
    };
    let q2 = q.clone();
    let (rows, total) = app.db.read(move |c| user_store::list(c, &q2)).await?;
    let mut body = json!({
        "users": rows.iter().map(listed_json).collect::<Vec<_>>(),
        "total": total,
    });
    if q.from + q.limit < total {
        body["next_token"] = json!((q.from + rows.len() as i64).to_string());
    }
    Ok(ok(&body))
}

async fn query_user(app: Arc<App>, req: Req) -> Result<Resp> {
    app.auth_admin(&req).await?;
    let uid = local_user_id(&app, req.param(0), "Can only look up local users")?;
    let u = existing_user(&app, &uid).await?;
    let nid = u.nid;
    let last_seen = app.db.read(move |c| user_store::last_seen(c, nid)).await?;
    Ok(ok(&user_json(&u, last_seen)))
}

/// A profile field from the body: `Some(None)` clears it, `None` leaves it.
fn profile_field(
    body: &Map<String, Value>,
    key: &str,
    max: usize,
) -> Result<Option<Option<String>>> {
    match body.get(key) {
        None => Ok(None),
        Some(Value::Null) => Ok(Some(None)),
        Some(Value::String(s)) if s.len() <= max => Ok(Some(Some(s.clone()))),
        Some(Value::String(_)) => {
            Err(bad_json(format!("'{key}' is too long (at most {max} bytes)")))
        }
        Some(_) => Err(bad_json(format!("'{key}' must be a string"))),
    }
}

/// Glia keeps no third-party IDs or external IDs; an empty list (what tools send back
/// after reading a user) is accepted, anything else refused rather than dropped.
fn no_ids(body: &Map<String, Value>, key: &str) -> Result<()> {
    match body.get(key) {
        None | Some(Value::Null) => Ok(()),
        Some(Value::Array(a)) if a.is_empty() => Ok(()),
        Some(Value::Array(_)) => Err(invalid_param(format!("Glia does not support '{key}'"))),
        Some(_) => Err(bad_json(format!("'{key}' must be a list"))),
    }
}

/// `PUT /_synapse/admin/v2/users/{userId}`: create the account (201) or change it (200).
async fn put_user(app: Arc<App>, req: Req) -> Result<Resp> {
    let admin = app.auth_admin(&req).await?;
    let body = req.json_object(false)?;
    let user_id =
        local_user_id(&app, req.param(0), "This endpoint can only be used with local users")?;
    no_ids(&body, "threepids")?;
    no_ids(&body, "external_ids")?;
    let user_type = match body.get("user_type") {
        None => None,
        Some(Value::Null) => Some(None),
        Some(Value::String(t)) if USER_TYPES.contains(&t.as_str()) => Some(Some(t.clone())),
        Some(_) => return Err(Error::Unknown("Invalid user type".into())),
    };
    let set_admin = bool_field(&body, "admin")?;
    let password = match body.get("password") {
        None | Some(Value::Null) => None,
        Some(Value::String(p)) if p.len() <= 512 => Some(p.clone()),
        Some(_) => return Err(Error::Unknown("Invalid password".into())),
    };
    let logout_devices = match body.get("logout_devices") {
        None => true,
        Some(Value::Bool(b)) => *b,
        Some(_) => {
            return Err(Error::Unknown("'logout_devices' parameter is not of type boolean".into()));
        }
    };
    let deactivate = match body.get("deactivated") {
        None => None,
        Some(Value::Bool(b)) => Some(*b),
        Some(_) => {
            return Err(Error::Unknown("'deactivated' parameter is not of type boolean".into()));
        }
    };
    match body.get("locked") {
        None | Some(Value::Bool(false)) => {}
        Some(Value::Bool(true)) if deactivate == Some(true) => {
            return Err(Error::Unknown("An user can't be deactivated and locked".into()));
        }
        Some(Value::Bool(true)) => {
            return Err(invalid_param("Glia cannot lock accounts (yet); deactivate instead"));
        }
        Some(_) => return Err(Error::Unknown("'locked' parameter is not of type boolean".into())),
    }
    let displayname = profile_field(&body, "displayname", MAX_DISPLAYNAME_LEN)?;
    let avatar_url = profile_field(&body, "avatar_url", MAX_AVATAR_URL_LEN)?;

    let uid = user_id.clone();
    let existing = app.db.read(move |c| user_store::get(c, &uid)).await?;
    let status = match existing {
        Some(u) => {
            if let Some(a) = set_admin
                && a != u.is_admin
                && !a
                && u.user_id == admin.user_id
            {
                return Err(Error::Unknown("You may not demote yourself.".into()));
            }
            let nid = u.nid;
            app.db
                .write(move |c| {
                    if let Some(d) = &displayname {
                        user_store::set_displayname(c, nid, d.as_deref())?;
                    }
                    if let Some(a) = &avatar_url {
                        user_store::set_avatar_url(c, nid, a.as_deref())?;
                    }
                    if let Some(a) = set_admin {
                        user_store::set_admin(c, nid, a)?;
                    }
                    if let Some(t) = &user_type {
                        user_store::set_user_type(c, nid, t.as_deref())?;
                    }
                    Ok(())
                })
                .await?;
            if let Some(p) = password {
                let keep = (u.user_id == admin.user_id).then_some(admin.device_nid);
                account_admin::set_password(&app, nid, p, logout_devices, keep).await?;
            }
            match deactivate {
                Some(true) if !u.deactivated => {
                    account_admin::deactivate(&app, nid, &u.user_id, false).await?;
                }
                Some(false) if u.deactivated => {
                    app.db.write(move |c| user_store::reactivate(c, nid)).await?;
                    tracing::info!(user_id = %u.user_id, "reactivated account");
                }
                _ => {}
            }
            StatusCode::OK
        }
        None => {
            let localpart = user_id.trim_start_matches('@').split(':').next().unwrap_or_default();
            accounts::user_id_for_localpart(localpart, &app.config.server_name)?;
            let r = Registration {
                user_id: user_id.clone(),
                password,
                is_admin: set_admin.unwrap_or(false),
                is_guest: false,
                displayname: displayname.flatten(),
            };
            let (nid, _) = accounts::register(&app, r, None, req.client_ip.to_string()).await?;
            let (t, a) = (user_type.flatten(), avatar_url.flatten());
            app.db
                .write(move |c| {
                    user_store::set_user_type(c, nid, t.as_deref())?;
                    if let Some(a) = &a {
                        user_store::set_avatar_url(c, nid, Some(a))?;
                    }
                    Ok(())
                })
                .await?;
            tracing::info!(%user_id, by = %admin.user_id, "created account (admin)");
            StatusCode::CREATED
        }
    };
    let u = existing_user(&app, &user_id).await?;
    let nid = u.nid;
    let last_seen = app.db.read(move |c| user_store::last_seen(c, nid)).await?;
    Ok(json_resp(status, &user_json(&u, last_seen)))
}

async fn deactivate(app: Arc<App>, req: Req) -> Result<Resp> {
    app.auth_admin(&req).await?;
    let uid = local_user_id(&app, req.param(0), "Can only deactivate local users")?;
    let u = existing_user(&app, &uid).await?;
    let body = req.json_object(true)?;
    let erase = bool_field(&body, "erase")?.unwrap_or(false);
    account_admin::deactivate(&app, u.nid, &u.user_id, erase).await?;
    Ok(ok(&json!({"id_server_unbind_result": "no-support"})))
}

async fn reset_password(app: Arc<App>, req: Req) -> Result<Resp> {
    let admin = app.auth_admin(&req).await?;
    let raw = req.param(0).to_string();
    ruma::UserId::parse(&raw).map_err(|_| invalid_param(format!("Invalid user ID: {raw}")))?;
    let body = req.json_object(false)?;
    require_fields(&body, &["new_password"])?;
    let password = match body.get("new_password") {
        Some(Value::String(p)) if p.len() <= 512 => p.clone(),
        _ => return Err(bad_json("'new_password' must be a string of at most 512 bytes")),
    };
    let logout_devices = bool_field(&body, "logout_devices")?.unwrap_or(true);
    let u = app
        .db
        .read(move |c| user_store::get(c, &raw))
        .await?
        .ok_or_else(|| not_found("Unknown user"))?;
    let keep = (u.user_id == admin.user_id).then_some(admin.device_nid);
    account_admin::set_password(&app, u.nid, password, logout_devices, keep).await?;
    tracing::info!(user_id = %u.user_id, by = %admin.user_id, "password reset (admin)");
    Ok(empty_object())
}

/// Who is using the account from where. As in Synapse, every connection is listed under
/// one device key `""` (tools read `devices[""]`); a connection is a device's last
/// address and time.
async fn whois(app: Arc<App>, req: Req) -> Result<Resp> {
    let me = app.auth(&req).await?;
    let raw = req.param(0);
    let target =
        ruma::UserId::parse(raw).map_err(|_| invalid_param(format!("Invalid user ID: {raw}")))?;
    if target.as_str() != me.user_id && !me.is_admin {
        return Err(Error::Forbidden("You are not a server admin".into()));
    }
    if target.server_name() != app.config.server_name {
        return Err(Error::Unknown("Can only whois a local user".into()));
    }
    let uid = target.to_string();
    let devs = app
        .db
        .read(move |c| match user_store::get(c, &uid)? {
            Some(u) => devices::list(c, u.nid),
            None => Ok(vec![]),
        })
        .await?;
    let connections: Vec<Value> = devs
        .iter()
        .filter_map(|d| {
            let ip = d.last_seen_ip.as_ref()?;
            Some(json!({"ip": ip, "last_seen": d.last_seen_ts}))
        })
        .collect();
    Ok(ok(&json!({
        "user_id": target.as_str(),
        "devices": {"": {"sessions": [{"connections": connections}]}},
    })))
}

async fn get_admin(app: Arc<App>, req: Req) -> Result<Resp> {
    app.auth_admin(&req).await?;
    let uid =
        local_user_id(&app, req.param(0), "Only local users can be admins of this homeserver")?;
    // Unknown users are simply not admins (as in Synapse).
    let u = app.db.read(move |c| user_store::get(c, &uid)).await?;
    Ok(ok(&json!({"admin": u.is_some_and(|u| u.is_admin)})))
}

async fn put_admin(app: Arc<App>, req: Req) -> Result<Resp> {
    let admin = app.auth_admin(&req).await?;
    let body = req.json_object(false)?;
    require_fields(&body, &["admin"])?;
    let uid =
        local_user_id(&app, req.param(0), "Only local users can be admins of this homeserver")?;
    let set = bool_field(&body, "admin")?.unwrap_or(false);
    if uid == admin.user_id && !set {
        return Err(Error::Unknown("You may not demote yourself.".into()));
    }
    let u = existing_user(&app, &uid).await?;
    let nid = u.nid;
    app.db.write(move |c| user_store::set_admin(c, nid, set)).await?;
    tracing::info!(user_id = %uid, admin = set, by = %admin.user_id, "changed server admin flag");
    Ok(empty_object())
}

async fn joined_rooms(app: Arc<App>, req: Req) -> Result<Resp> {
    app.auth_admin(&req).await?;
    let uid = req.param(0).to_string();
    let rows = app.db.read(move |c| events::memberships_of(c, &uid)).await?;
    let mut rooms: Vec<String> =
        rows.into_iter().filter(|m| m.membership == "join").map(|m| m.room_id).collect();
    rooms.sort();
    Ok(ok(&json!({"total": rooms.len(), "joined_rooms": rooms})))
}

/// The target of a rate-limit override: a local, existing user.
async fn ratelimit_target(app: &App, req: &Req, not_local: &str) -> Result<UserRow> {
    let uid = local_user_id(app, req.param(0), not_local)?;
    existing_user(app, &uid).await
}

async fn get_ratelimit(app: Arc<App>, req: Req) -> Result<Resp> {
    app.auth_admin(&req).await?;
    let u = ratelimit_target(&app, &req, "Can only look up local users").await?;
    let nid = u.nid;
    let o = app.db.read(move |c| ratelimit_overrides::get(c, nid)).await?;
    Ok(ok(&match o {
        Some(o) => {
            json!({"messages_per_second": o.messages_per_second, "burst_count": o.burst_count})
        }
        None => json!({}),
    }))
}

async fn set_ratelimit(app: Arc<App>, req: Req) -> Result<Resp> {
    app.auth_admin(&req).await?;
    let u = ratelimit_target(&app, &req, "Only local users can be ratelimited").await?;
    let body = req.json_object(true)?;
    let field = |key: &str| match body.get(key) {
        None => Ok(0),
        Some(v) => v
            .as_i64()
            .filter(|n| *n >= 0)
            .ok_or_else(|| invalid_param(format!("{v} parameter must be a positive int"))),
    };
    let o = Override {
        messages_per_second: field("messages_per_second")?,
        burst_count: field("burst_count")?,
    };
    let nid = u.nid;
    app.db.write(move |c| ratelimit_overrides::set(c, nid, o)).await?;
    Ok(ok(&json!({"messages_per_second": o.messages_per_second, "burst_count": o.burst_count})))
}

async fn delete_ratelimit(app: Arc<App>, req: Req) -> Result<Resp> {
    app.auth_admin(&req).await?;
    let u = ratelimit_target(&app, &req, "Only local users can be ratelimited").await?;
    let nid = u.nid;
    app.db.write(move |c| ratelimit_overrides::delete(c, nid)).await?;
    Ok(empty_object())
}
