//! `PUT /send/{txnId}`: transactions of PDUs and EDUs from other servers.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Map, Value, json};

use crate::app::App;
use crate::error::{Error, Result, bad_json};
use crate::federation::inbound;
use crate::federation::sender::{MAX_EDUS, MAX_PDUS};
use crate::http::request::Req;
use crate::http::response::{Resp, ok};
use crate::http::router::Router;
use crate::store::{federation as fed, now_ms, receipts, rooms, to_device};

pub fn routes(r: &mut Router) {
    r.put("/_matrix/federation/v1/send/{}", send);
}

async fn send(app: Arc<App>, req: Req) -> Result<Resp> {
    let origin = app.auth_server(&req).await?;
    let txn_id = req.param(0).to_string();
    let body = req.json_value()?;
    let pdus = match &body["pdus"] {
        Value::Array(a) => a.clone(),
        Value::Null => vec![],
        _ => return Err(bad_json("pdus must be an array")),
    };
    let edus = match &body["edus"] {
        Value::Array(a) => a.clone(),
        Value::Null => vec![],
        _ => return Err(bad_json("edus must be an array")),
    };
    if pdus.len() > MAX_PDUS || edus.len() > MAX_EDUS {
        return Err(bad_json(format!(
            "A transaction carries at most {MAX_PDUS} PDUs and {MAX_EDUS} EDUs"
        )));
    }
    if body.get("origin").and_then(Value::as_str).is_some_and(|o| o != origin) {
        return Err(bad_json("origin does not match the signing server"));
    }
    let (o, t) = (origin.clone(), txn_id.clone());
    if let Some(done) = app.db.read(move |c| fed::inbound_txn(c, &o, &t)).await? {
        let v: Value = serde_json::from_str(&done).map_err(Error::internal)?;
        return Ok(ok(&v));
    }
    let mut results = Map::new();
    for raw in &pdus {
        let id = raw["event_id"].as_str().map(str::to_string);
        match inbound::receive(&app, &origin, raw).await {
            // A rejected event was processed (it is stored as rejected): no error, as
            // Synapse, whose peers (SyTest among them) treat an error as a failed send.
            Ok((id, inbound::Outcome::Rejected(why))) => {
                tracing::debug!(%origin, event_id = %id, "rejected: {why}");
                results.insert(id.to_string(), json!({}));
            }
            Ok((id, _)) => {
                results.insert(id.to_string(), json!({}));
            }
            Err(e) => {
                let key = match id {
                    Some(id) => id,
                    None => pdu_id(&app, raw).await.unwrap_or_else(|| "unknown".into()),
                };
                results.insert(key, json!({"error": e.to_string()}));
            }
        }
    }
    for edu in &edus {
        if let Err(e) = apply_edu(&app, &origin, edu).await {
            tracing::info!(%origin, "ignoring an EDU: {e}");
        }
    }
    let response = json!({"pdus": results});
    let (o, s) = (origin.clone(), response.to_string());
    app.db.write(move |c| fed::put_inbound_txn(c, &o, &txn_id, &s, now_ms())).await?;
    Ok(ok(&response))
}

/// A best-effort event ID for reporting an error about a PDU that failed early: its ID
/// in its room's version (the reference hash differs between versions), when we know
/// the room.
async fn pdu_id(app: &App, raw: &Value) -> Option<String> {
    let obj: ruma::canonical_json::CanonicalJsonObject =
        serde_json::from_value(raw.clone()).ok()?;
    let room_id = raw["room_id"].as_str()?.to_string();
    let room = app.db.read(move |c| rooms::get(c, &room_id)).await.ok()??;
    let rules = crate::rooms::rules_for(&room.room_version).ok()?.1;
    inbound::event_id_of(&obj, &rules).ok().map(|i| i.to_string())
}

fn server_of(user_id: &str) -> &str {
    user_id.split_once(':').map(|(_, s)| s).unwrap_or("")
}

async fn apply_edu(app: &Arc<App>, origin: &str, edu: &Value) -> Result<()> {
    let content = &edu["content"];
    match edu["edu_type"].as_str().unwrap_or_default() {
        "m.typing" => typing(app, origin, content).await,
        "m.receipt" => receipt(app, origin, content).await,
        "m.direct_to_device" => direct_to_device(app, origin, content).await,
        "m.presence" => presence(app, origin, content).await,
        "m.device_list_update" => device_list(app, origin, content, false).await,
        "m.signing_key_update" => device_list(app, origin, content, true).await,
        _ => Ok(()),
    }
}

/// The room's nid if the user (of the origin) is joined to it and the room's ACL lets
/// their server in.
async fn joined_room(app: &App, room_id: &str, user_id: &str) -> Result<Option<i64>> {
    let (rid, uid) = (room_id.to_string(), user_id.to_string());
    app.db
        .read(move |c| {
            let Some(r) = rooms::get(c, &rid)? else { return Ok(None) };
            // The room's server ACL applies to EDUs too.
            if !crate::rooms::acl::room_allows(c, r.nid, server_of(&uid))? {
                return Ok(None);
            }
            let m = crate::store::events::membership(c, r.nid, &uid)?;
            Ok((m.as_deref() == Some("join")).then_some(r.nid))
        })
        .await
}

async fn typing(app: &Arc<App>, origin: &str, c: &Value) -> Result<()> {
    let (Some(room_id), Some(user_id)) = (c["room_id"].as_str(), c["user_id"].as_str()) else {
        return Err(bad_json("typing EDU without room_id or user_id"));
    };
    if server_of(user_id) != origin || joined_room(app, room_id, user_id).await?.is_none() {
        return Err(Error::Forbidden("typing for a user the origin does not own".into()));
    }
    let timeout =
        c["timeout"].as_u64().map(Duration::from_millis).unwrap_or(Duration::from_secs(30));
    let typing = c["typing"].as_bool().unwrap_or(false).then_some(timeout);
    if let Some(deadline) = app.typing.set(&app.notifier, room_id, user_id, typing) {
        let (app2, room_id, user_id) = (app.clone(), room_id.to_string(), user_id.to_string());
        tokio::spawn(async move {
            tokio::time::sleep_until(deadline.into()).await;
            app2.typing.expire(&app2.notifier, &room_id, &user_id, deadline);
        });
    }
    Ok(())
}

async fn receipt(app: &App, origin: &str, c: &Value) -> Result<()> {
    let Some(rooms_map) = c.as_object() else { return Err(bad_json("receipt EDU content")) };
    for (room_id, by_type) in rooms_map {
        let Some(users) = by_type["m.read"].as_object() else { continue };
        for (user_id, r) in users {
            if server_of(user_id) != origin {
                continue;
            }
            let Some(nid) = joined_room(app, room_id, user_id).await? else { continue };
            let Some(event_id) =
                r["event_ids"].as_array().and_then(|a| a.first()).and_then(Value::as_str)
            else {
                continue;
            };
            let row = receipts::ReceiptRow {
                user_id: user_id.clone(),
                receipt_type: "m.read".into(),
                thread_id: r["data"]["thread_id"].as_str().unwrap_or("").to_string(),
                event_id: event_id.to_string(),
                ts: r["data"]["ts"].as_i64().unwrap_or_else(now_ms),
            };
            app.db.write(move |c| receipts::put(c, nid, &row).map(|_| ())).await?;
        }
    }
    app.notifier.notify();
    Ok(())
}

async fn direct_to_device(app: &App, origin: &str, c: &Value) -> Result<()> {
    let sender = c["sender"].as_str().unwrap_or_default().to_string();
    if server_of(&sender) != origin {
        return Err(Error::Forbidden(
            "to-device message from a user the origin does not own".into(),
        ));
    }
    let event_type = c["type"].as_str().unwrap_or_default().to_string();
    let Some(messages) = c["messages"].as_object().cloned() else {
        return Err(bad_json("to-device EDU without messages"));
    };
    // A retried transaction is answered from `federation_inbound_txns`, so each
    // message is delivered once.
    let own = app.config.server_name.to_string();
    app.db
        .write(move |conn| {
            for (user_id, devices) in &messages {
                if server_of(user_id) != own {
                    continue;
                }
                let Some(devices) = devices.as_object() else { continue };
                for (device_id, content) in devices {
                    let pos = crate::store::account_data::next_stream_pos(conn, "to_device")?;
                    for (nid, _) in to_device::recipients(conn, user_id, device_id)? {
                        to_device::insert(
                            conn,
                            nid,
                            pos,
                            &sender,
                            &event_type,
                            &content.to_string(),
                        )?;
                    }
                }
            }
            Ok(())
        })
        .await?;
    app.notifier.notify();
    Ok(())
}

async fn presence(app: &App, origin: &str, c: &Value) -> Result<()> {
    let Some(push) = c["push"].as_array() else {
        return Err(bad_json("presence EDU without push"));
    };
    let updates: Vec<(String, String, Option<String>)> = push
        .iter()
        .filter_map(|p| {
            let user = p["user_id"].as_str()?;
            let state = p["presence"].as_str()?;
            if server_of(user) != origin || !crate::api::client::presence::STATES.contains(&state) {
                return None;
            }
            let msg = p["status_msg"].as_str().map(str::to_string).or(Some(String::new()));
            Some((user.to_string(), state.to_string(), msg))
        })
        .collect();
    if updates.is_empty() {
        return Ok(());
    }
    app.db
        .write(move |c| {
            for (u, st, msg) in &updates {
                crate::store::presence::set(c, u, st, msg.as_deref(), now_ms())?;
            }
            Ok(())
        })
        .await?;
    app.notifier.notify();
    Ok(())
}

async fn device_list(app: &Arc<App>, origin: &str, c: &Value, signing: bool) -> Result<()> {
    let user =
        c["user_id"].as_str().or_else(|| c["master_key"]["user_id"].as_str()).unwrap_or_default();
    if server_of(user) != origin {
        return Err(Error::Forbidden(
            "device list update for a user the origin does not own".into(),
        ));
    }
    // Both keep the cached list current and tell local room mates through /sync.
    if signing {
        crate::e2ee::remote_devices::signing_key_update(app, user, c).await
    } else {
        crate::e2ee::remote_devices::device_list_update(app, user, c).await
    }
}
