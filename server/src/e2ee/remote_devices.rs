//! Remote users' device lists, cached as Synapse caches them: once a local user shares a
//! room with a remote user, their server tells us of every change, so their devices and
//! cross-signing keys are fetched once (`GET /user/devices/{userId}`), kept current by
//! `m.device_list_update` and `m.signing_key_update` EDUs, and `/keys/query` answers from
//! the copy, also while their server is down. A list is dropped once no room is shared.

use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use http::Method;
use serde_json::{Value, json};

use super::Object;
use crate::app::App;
use crate::error::{Error, Result};
use crate::federation::{encode, queries};
use crate::store::device_lists;
use crate::store::remote_devices::{self, Applied, CachedList, Update};

/// Remote users fetched at the same time by one query.
const FAN_OUT: usize = 20;

/// A remote user's whole list, from their server.
pub async fn fetch(app: &App, user_id: &str, timeout: Duration) -> Result<CachedList> {
    let server = user_id.split_once(':').map(|(_, s)| s).unwrap_or_default().to_string();
    let path = format!("/_matrix/federation/v1/user/devices/{}", encode(user_id));
    let (status, v) = queries::ask(app, &server, Method::GET, &path, None, timeout).await?;
    if !status.is_success() || !v.is_object() {
        return Err(Error::Unknown(format!("{server} answered {status} for {user_id}'s devices")));
    }
    // Only the user's own keys count, whatever else the answer holds.
    let owned = |k: &Value| (k["user_id"] == user_id).then(|| k.clone());
    let devices = v["devices"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|d| {
            let id = d["device_id"].as_str()?.to_string();
            let keys = device_keys(d.get("keys"), user_id);
            let name = d["device_display_name"].as_str().map(str::to_string);
            Some((id, keys, name))
        })
        .collect();
    Ok(CachedList {
        stream_id: v["stream_id"].as_i64().unwrap_or(0),
        stale: false,
        master_key: v.get("master_key").filter(|k| k.is_object()).and_then(owned),
        self_signing_key: v.get("self_signing_key").filter(|k| k.is_object()).and_then(owned),
        devices,
    })
}

/// A device's keys as its user's server gives them, unless they claim another user.
/// Keys naming no user are kept (Synapse keeps them as given; clients check signatures).
fn device_keys(k: Option<&Value>, user_id: &str) -> Option<Value> {
    k.filter(|k| k.is_object() && (k["user_id"].is_null() || k["user_id"] == user_id)).cloned()
}

/// Fetch a list and store it, if a room is still shared with the user.
async fn fetch_and_store(app: &App, user_id: &str, timeout: Duration) -> Result<CachedList> {
    let list = fetch(app, user_id, timeout).await?;
    let (u, l) = (user_id.to_string(), list.clone());
    app.db
        .write(move |c| {
            if remote_devices::shares_room(c, &u)? {
                remote_devices::replace(c, &u, &l)?;
            }
            Ok(())
        })
        .await?;
    Ok(list)
}

/// The `/keys/query` sections for `user_id` from a list: device keys (only `devices`,
/// when named) and cross-signing keys.
pub fn answer_from(body: &mut Value, user_id: &str, devices: &[String], list: &CachedList) {
    let mut per_device = Object::new();
    for (id, keys, name) in &list.devices {
        let Some(mut k) = keys.clone() else { continue };
        if !devices.is_empty() && !devices.contains(id) {
            continue;
        }
        if let (Some(o), Some(n)) = (k.as_object_mut(), name) {
            let unsigned = o.entry("unsigned").or_insert_with(|| json!({}));
            if let Some(u) = unsigned.as_object_mut() {
                u.insert("device_display_name".into(), json!(n));
            }
        }
        per_device.insert(id.clone(), k);
    }
    body["device_keys"][user_id] = Value::Object(per_device);
    if let Some(m) = &list.master_key {
        body["master_keys"][user_id] = m.clone();
    }
    if let Some(s) = &list.self_signing_key {
        body["self_signing_keys"][user_id] = s.clone();
    }
}

/// Answer what can be answered from the cache for remote users sharing a room with a
/// local user, fetching (and caching) those not cached yet or stale. Returns the users
/// left to ask with `/user/keys/query` (no room shared: nothing is cached for them) and,
/// per server, the failures of users that could be answered neither way.
pub async fn query(
    app: &App,
    body: &mut Value,
    wanted: Vec<(String, Vec<String>)>,
    timeout: Duration,
) -> Result<(Vec<(String, Vec<String>)>, Object)> {
    let looked = app
        .db
        .read(move |c| {
            let mut out = vec![];
            for (user, devices) in wanted {
                let cached = if remote_devices::shares_room(c, &user)? {
                    Some(remote_devices::get(c, &user)?)
                } else {
                    None
                };
                out.push((user, devices, cached));
            }
            Ok(out)
        })
        .await?;
    let mut uncached_users = vec![];
    let mut fetch_users = vec![];
    let mut unshared = vec![];
    for (user, devices, cached) in looked {
        match cached {
            None => {
                unshared.push(user.clone());
                uncached_users.push((user, devices));
            }
            Some(Some(list)) if !list.stale => answer_from(body, &user, &devices, &list),
            Some(old) => fetch_users.push((user, devices, old)),
        }
    }
    if !unshared.is_empty() {
        // No room shared any more: their server stops telling us of changes.
        app.db
            .write(move |c| {
                for u in &unshared {
                    remote_devices::drop_user(c, u)?;
                }
                Ok(())
            })
            .await?;
    }
    let deadline = tokio::time::Instant::now() + timeout;
    let fetched: Vec<_> = futures_util::stream::iter(fetch_users.into_iter().map(
        |(user, devices, old)| async move {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let r = fetch_and_store(app, &user, left).await;
            (user, devices, old, r)
        },
    ))
    .buffer_unordered(FAN_OUT)
    .collect()
    .await;
    let mut failures = Object::new();
    for (user, devices, old, r) in fetched {
        match (r, old) {
            (Ok(list), _) => answer_from(body, &user, &devices, &list),
            // Their server is down: the copy we have (stale or not) beats nothing.
            (Err(_), Some(old)) => answer_from(body, &user, &devices, &old),
            (Err(e), None) => {
                let server = user.split_once(':').map(|(_, s)| s).unwrap_or_default();
                failures.insert(server.to_string(), queries::failure(&e));
            }
        }
    }
    Ok((uncached_users, failures))
}

/// An `m.device_list_update` from the user's server: applied to the cached list when it
/// follows on from what we hold, else the list is fetched again (in the background).
/// Local users sharing a room see the user in `device_lists.changed` either way.
pub async fn device_list_update(app: &Arc<App>, user_id: &str, c: &Value) -> Result<()> {
    let update = Update {
        device_id: c["device_id"].as_str().unwrap_or_default().to_string(),
        stream_id: c["stream_id"].as_i64().unwrap_or(0),
        prev_ids: c["prev_id"].as_array().into_iter().flatten().filter_map(Value::as_i64).collect(),
        deleted: c["deleted"].as_bool().unwrap_or(false),
        keys: device_keys(c.get("keys"), user_id),
        display_name: c["device_display_name"].as_str().map(str::to_string),
    };
    let u = user_id.to_string();
    let applied = app
        .db
        .write(move |c| {
            let applied = if remote_devices::shares_room(c, &u)? {
                // Nothing cached yet for a user we share a room with: the update cannot
                // be applied to anything, so fetch the whole list (Synapse resyncs too).
                match remote_devices::apply_update(c, &u, &update)? {
                    Applied::NotCached => Applied::NeedsResync,
                    other => other,
                }
            } else {
                remote_devices::drop_user(c, &u)?;
                Applied::NotCached
            };
            Ok(applied)
        })
        .await?;
    if applied == Applied::NeedsResync {
        // Fetched before local users hear of the change, so the query they make then is
        // answered from the fresh copy rather than racing the fetch.
        if let Err(e) = fetch_and_store(app, user_id, queries::QUERY_TIMEOUT).await {
            // Stays stale: the next query fetches it again.
            tracing::info!(user_id = %user_id, "device list resync failed: {e}");
        }
    }
    let u = user_id.to_string();
    app.db.write(move |c| device_lists::changed_remote(c, &u)).await?;
    app.notifier.notify();
    Ok(())
}

/// An `m.signing_key_update`: the user's new cross-signing keys, into the cached list.
pub async fn signing_key_update(app: &App, user_id: &str, c: &Value) -> Result<()> {
    let owned = |k: Option<&Value>| k.filter(|k| k.is_object() && k["user_id"] == user_id).cloned();
    let (master, ssk) = (owned(c.get("master_key")), owned(c.get("self_signing_key")));
    let u = user_id.to_string();
    app.db
        .write(move |c| {
            if remote_devices::shares_room(c, &u)? {
                remote_devices::set_cross_signing(c, &u, master.as_ref(), ssk.as_ref())?;
            } else {
                remote_devices::drop_user(c, &u)?;
            }
            device_lists::changed_remote(c, &u)?;
            Ok(())
        })
        .await?;
    app.notifier.notify();
    Ok(())
}
