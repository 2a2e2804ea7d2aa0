//! Joining, leaving and inviting across servers, from our users' side: joins through
//! `make_join` / `send_join` (each candidate server in turn), invites of remote users
//! (countersigned by their server), and invites our users receive for rooms we are not in.

use std::collections::HashMap;

use http::Method;
use ruma::canonical_json::{CanonicalJsonObject, CanonicalJsonValue};
use ruma::room_version_rules::{
    EventsReferenceFormatVersion, RoomIdFormatVersion, RoomVersionRules,
};
use serde_json::{Value, json};

use crate::app::App;
use crate::error::{Error, Result, bad_json};
use crate::federation::{encode, inbound};
use crate::rooms::{Locked, Pdu, PduRef, builder};
use crate::store::events::{self, Placement};
use crate::store::{now_ms, rooms};

/// Whether this server has a user joined to a room it knows.
pub async fn is_resident(app: &App, room_id: &str) -> Result<bool> {
    let (rid, own) = (room_id.to_string(), app.config.server_name.to_string());
    app.db
        .read(move |c| match rooms::get(c, &rid)? {
            Some(r) => crate::store::federation::server_in_room(c, r.nid, &own),
            None => Ok(false),
        })
        .await
}

/// Candidate servers for joining a room we are not in: those given, the server of the
/// invite the user has (if any), the room ID's own server (v12 room IDs name none), and
/// the servers we last knew in the room.
pub async fn candidate_servers(
    app: &App,
    user_id: &str,
    room_id: &str,
    given: &[String],
) -> Result<Vec<String>> {
    let mut out: Vec<String> = given.to_vec();
    let (rid, uid) = (room_id.to_string(), user_id.to_string());
    let (inviter, known): (Option<String>, Vec<String>) = app
        .db
        .read(move |c| {
            let Some(r) = rooms::get(c, &rid)? else { return Ok((None, vec![])) };
            let known = crate::store::federation::hosts(c, r.nid, "")?;
            let ms = events::memberships_of(c, &uid)?;
            let Some(m) = ms.iter().find(|m| m.room_nid == r.nid && m.membership == "invite")
            else {
                return Ok((None, known));
            };
            Ok((events::by_nid(c, m.event_nid)?.map(|e| e.sender), known))
        })
        .await?;
    if let Some(s) = inviter.as_deref().and_then(|u| u.split_once(':')).map(|(_, s)| s.to_string())
    {
        out.push(s);
    }
    if let Some((_, s)) = room_id.split_once(':') {
        out.push(s.to_string());
    }
    out.extend(known);
    let own = app.config.server_name.as_str();
    let mut seen = vec![];
    out.retain(|s| {
        s != own && !seen.contains(s) && {
            seen.push(s.clone());
            true
        }
    });
    Ok(out)
}

fn versions_query() -> String {
    (1..=12).map(|v| format!("ver={v}")).collect::<Vec<_>>().join("&")
}

/// Fill in a template from `make_join` / `make_leave` and sign it.
fn sign_template(
    app: &App,
    rules: &RoomVersionRules,
    template: &Value,
    content: Value,
) -> Result<PduRef> {
    let mut t = template.clone();
    let obj = t.as_object_mut().ok_or_else(|| Error::Unknown("make_* answered no event".into()))?;
    for k in ["signatures", "hashes", "unsigned", "event_id"] {
        obj.remove(k);
    }
    obj.insert("origin".into(), json!(app.config.server_name.as_str()));
    obj.insert("origin_server_ts".into(), json!(now_ms()));
    obj.insert("content".into(), content);
    if rules.events_reference_format == EventsReferenceFormatVersion::V1 {
        // A v1 room (also what an answer naming no version means) references events as
        // `[id, hashes]`; a bare ID is taken as that event with no hashes, as Synapse
        // does, so the join goes ahead and the room's state decides.
        for k in ["prev_events", "auth_events"] {
            if let Some(Value::Array(items)) = obj.get_mut(k) {
                for item in items.iter_mut().filter(|i| i.is_string()) {
                    *item = json!([item.clone(), {}]);
                }
            }
        }
    }
    let obj: CanonicalJsonObject = match CanonicalJsonValue::try_from(t) {
        Ok(CanonicalJsonValue::Object(o)) => o,
        _ => return Err(Error::Unknown("make_* answered an invalid event".into())),
    };
    builder::finish(app, rules, obj)
}

/// A join or knock of a local user on a room this server is not in.
pub struct Remote<'a> {
    pub app: &'a App,
    pub user_id: &'a str,
    pub room_id: &'a str,
    /// The member event's content (membership, profile, reason).
    pub content: Value,
}

impl Remote<'_> {
    /// Join through each candidate server in turn. PDUs the room's servers send while
    /// the join is in flight are queued, and processed once it is stored.
    pub async fn join(&self, servers: &[String]) -> Result<ruma::OwnedEventId> {
        let in_flight = self.app.rooms.begin_join(self.room_id);
        let mut last = Error::NotFound("No known servers to join the room through".into());
        for server in servers {
            let (app, user, room, content) =
                (self.app, self.user_id, self.room_id, self.content.clone());
            match join_via(app, server, user, room, content).await {
                Ok(id) => {
                    for (origin, pdu) in in_flight.finish() {
                        if let Err(e) = inbound::receive(app, &origin, &pdu).await {
                            tracing::info!(%origin, room_id = %room, "a PDU queued during our join failed: {e}");
                        }
                    }
                    return Ok(id);
                }
                Err(e) => last = self.failed(server, "join", e),
            }
        }
        Err(last)
    }

    /// Knock through each candidate server in turn. The knock and the room's stripped
    /// state are kept for /sync's `knock` section.
    pub async fn knock(&self, servers: &[String]) -> Result<ruma::OwnedEventId> {
        let mut last = Error::NotFound("No known servers to knock through".into());
        for server in servers {
            let (app, user, room, content) =
                (self.app, self.user_id, self.room_id, self.content.clone());
            match make_and_send(app, server, "knock", room, user, content).await {
                Ok((version, rules, pdu, resp)) => {
                    let mut obj = pdu.json.clone();
                    // Stored where /sync looks for a remote room's stripped state.
                    if let Ok(v) = CanonicalJsonValue::try_from(
                        json!({"invite_room_state": resp["knock_room_state"]}),
                    ) {
                        obj.insert("unsigned".into(), v);
                    }
                    store_outside_dag(app, room, &version, &rules, obj).await?;
                    return Ok(pdu.event_id.clone());
                }
                Err(e) => last = self.failed(server, "knock", e),
            }
        }
        Err(last)
    }

    /// Log a failed candidate. A peer that could not be reached or answered nonsense is
    /// a gateway failure (502, as in Synapse), not a bad request of the client's;
    /// refusals pass through.
    fn failed(&self, server: &str, what: &str, e: Error) -> Error {
        tracing::info!(%server, room_id = %self.room_id, "remote {what} failed: {e}");
        match e {
            Error::Unknown(m) => Error::BadGateway(format!("Failed to {what} the room: {m}")),
            e => e,
        }
    }
}

async fn join_via(
    app: &App,
    server: &str,
    user_id: &str,
    room_id: &str,
    content: Value,
) -> Result<ruma::OwnedEventId> {
    let (version, rules, pdu, resp) =
        make_and_send(app, server, "join", room_id, user_id, content).await?;
    let mut room = lock_or_create(app, room_id, &version, user_id).await?;
    let mut all: Vec<Value> = resp["auth_chain"].as_array().cloned().unwrap_or_default();
    let state_raw: Vec<Value> = resp["state"].as_array().cloned().unwrap_or_default();
    all.extend(state_raw.iter().cloned());
    inbound::store_outliers(app, &mut room, &all).await?;
    // The state before our join: the events of `state` that verified and passed auth.
    let mut ids: HashMap<(String, String), String> = HashMap::new();
    for r in &state_raw {
        let (Some(t), Some(k)) = (r["type"].as_str(), r["state_key"].as_str()) else { continue };
        let Ok(obj) = serde_json::from_value::<CanonicalJsonObject>(r.clone()) else { continue };
        let Ok(id) = inbound::event_id_of(&obj, &rules) else { continue };
        let sid = id.to_string();
        let ok = app
            .db
            .read(move |c| Ok(events::by_id(c, &sid)?.is_some_and(|e| e.rejected.is_none())))
            .await?;
        if ok {
            ids.insert((t.to_string(), k.to_string()), id.to_string());
        }
    }
    if !ids.contains_key(&("m.room.create".to_string(), String::new())) {
        return Err(Error::Unknown(format!("{server} sent no usable room state")));
    }
    // A join signed by the resident server too (restricted rooms) replaces ours.
    let pdu = match resp.get("event").filter(|e| e.is_object()) {
        Some(e) => inbound::verify_pdu(app, &rules, e).await.unwrap_or(pdu),
        None => pdu,
    };
    inbound::persist(app, &mut room, &pdu, Some((ids, None)), false, None, None).await?;
    Ok(pdu.event_id.clone())
}

/// `make_{kind}` then `send_{kind}` (v2) on one server: the room version, its rules, our
/// signed event and the server's answer.
async fn make_and_send(
    app: &App,
    server: &str,
    kind: &str,
    room_id: &str,
    user_id: &str,
    content: Value,
) -> Result<(String, RoomVersionRules, PduRef, Value)> {
    let ver = if kind == "leave" { String::new() } else { format!("?{}", versions_query()) };
    let path =
        format!("/_matrix/federation/v1/make_{kind}/{}/{}{ver}", encode(room_id), encode(user_id));
    let (status, body) = app.fed_request(server, Method::GET, &path, None).await?;
    if !status.is_success() {
        return Err(remote_error(server, status, &body));
    }
    let version = body["room_version"].as_str().unwrap_or("1").to_string();
    let (_, rules) = crate::rooms::rules_for(&version)
        .map_err(|_| Error::IncompatibleRoomVersion(format!("room version {version}")))?;
    if kind == "join" {
        app.rooms.set_join_version(room_id, &version);
    }
    let pdu = sign_template(app, &rules, &body["event"], content)?;
    // send_knock has only a v1 (which answers like the v2 of the others).
    let api = if kind == "knock" { "v1" } else { "v2" };
    let path = format!(
        "/_matrix/federation/{api}/send_{kind}/{}/{}",
        encode(room_id),
        encode(pdu.event_id.as_str())
    );
    let ev = serde_json::to_value(&pdu.json).map_err(Error::internal)?;
    let (status, resp) = if kind == "knock" {
        app.fed_request(server, Method::PUT, &path, Some(&ev)).await?
    } else {
        let v1 = path.replacen("/v2/", "/v1/", 1);
        put_v2_or_v1(app, server, &path, &ev, &v1, &ev).await?
    };
    if !status.is_success() {
        return Err(remote_error(server, status, &resp));
    }
    Ok((version, rules, pdu, resp))
}

/// PUT to a v2 endpoint, falling back to its v1 for a server that does not know the v2
/// (404 or 400 M_UNRECOGNIZED, as Synapse): v1 answers `[status, body]`, unwrapped here.
async fn put_v2_or_v1(
    app: &App,
    server: &str,
    v2: &str,
    v2_body: &Value,
    v1: &str,
    v1_body: &Value,
) -> Result<(http::StatusCode, Value)> {
    let (status, resp) = app.fed_request(server, Method::PUT, v2, Some(v2_body)).await?;
    let unknown = status == http::StatusCode::NOT_FOUND
        || status == http::StatusCode::BAD_REQUEST && resp["errcode"] == "M_UNRECOGNIZED";
    if !unknown {
        return Ok((status, resp));
    }
    let (status, resp) = app.fed_request(server, Method::PUT, v1, Some(v1_body)).await?;
    if !status.is_success() {
        return Ok((status, resp));
    }
    match resp.as_array().map(Vec::as_slice) {
        Some([_, body]) => Ok((status, body.clone())),
        _ => Err(Error::Unknown(format!("{server} sent a malformed v1 answer"))),
    }
}

fn remote_error(server: &str, status: http::StatusCode, body: &Value) -> Error {
    let msg = format!("{server}: {}", body["error"].as_str().unwrap_or(status.as_str()));
    match status.as_u16() {
        403 => Error::Forbidden(msg),
        404 => Error::NotFound(msg),
        // Other refusals reach the client as the server gave them (Synapse); the
        // errcode in `extra` replaces the placeholder. An incompatible room version
        // keeps the version it names.
        400..=499 if body["errcode"].as_str().is_some_and(|c| c.starts_with("M_")) => {
            let mut extra = json!({"errcode": body["errcode"]});
            if let Some(v) = body["room_version"].as_str() {
                extra["room_version"] = json!(v);
            }
            Error::Upstream { status, errcode: "M_UNKNOWN", msg, extra }
        }
        _ => Error::Unknown(msg),
    }
}

/// Lock a room, creating its row first if this server has never seen it.
async fn lock_or_create(app: &App, room_id: &str, version: &str, creator: &str) -> Result<Locked> {
    let (rid, v, cr) = (room_id.to_string(), version.to_string(), creator.to_string());
    app.db
        .write(move |c| {
            if rooms::get(c, &rid)?.is_none() {
                rooms::insert(c, &rid, &v, &cr, now_ms())?;
            }
            Ok(())
        })
        .await?;
    app.rooms.lock(app, room_id).await
}

/// Send an invite of a remote user to their server, which countersigns it.
pub async fn send_invite(app: &App, room: &Locked, pdu: &PduRef) -> Result<PduRef> {
    let target = pdu.state_key.clone().unwrap_or_default();
    let server = target.split_once(':').map(|(_, s)| s.to_string()).unwrap_or_default();
    let body = invite_request(room, pdu);
    let path = format!(
        "/_matrix/federation/v2/invite/{}/{}",
        encode(room.room_id.as_str()),
        encode(pdu.event_id.as_str())
    );
    // The v1 API knows only room versions 1 and 2 (its body is the bare event).
    let (status, resp) = if matches!(room.version.as_str(), "1" | "2") {
        let v1 = path.replacen("/v2/", "/v1/", 1);
        put_v2_or_v1(app, &server, &path, &body, &v1, &body["event"]).await?
    } else {
        app.fed_request(&server, Method::PUT, &path, Some(&body)).await?
    };
    if !status.is_success() {
        return Err(remote_error(&server, status, &resp));
    }
    if !resp["event"].is_object() {
        return Err(Error::Unknown(format!("{server} answered the invite with no event")));
    }
    // An event that is not canonical JSON (floats, huge integers) is the remote's bad
    // JSON, which the inviter is told of as such (Synapse: 400 M_BAD_JSON).
    let obj: CanonicalJsonObject = serde_json::from_value(resp["event"].clone())
        .map_err(|e| bad_json(format!("{server} answered the invite with invalid JSON: {e}")))?;
    let id = inbound::event_id_of(&obj, &room.rules)?;
    if id != pdu.event_id {
        return Err(Error::Unknown(format!("{server} changed the invite event")));
    }
    Ok(std::sync::Arc::new(Pdu::from_object(id, obj, &room.rules)?))
}

/// The body of `PUT /v2/invite`: the event, the room version and the stripped state the
/// invited user sees before joining.
pub fn invite_request(room: &crate::rooms::RoomHandle, pdu: &Pdu) -> Value {
    json!({
        "event": pdu.json,
        "room_version": room.version.as_str(),
        "invite_room_state": room_state_for_outsider(room, Some(pdu.sender.as_str())),
    })
}

/// The state an invited or knocking server is shown (`invite_room_state`,
/// `knock_room_state`), with the member event of `member` if given. v12 rooms: whole
/// PDUs, so the other server can check the create event names the room (spec 1.16;
/// Synapse insists on it for v12); stripped events before, as they always were.
pub fn room_state_for_outsider(room: &crate::rooms::RoomHandle, member: Option<&str>) -> Value {
    let full = matches!(room.rules.room_id_format, RoomIdFormatVersion::V2);
    let one = |e: &Pdu| if full { json!(e.json) } else { strip(e) };
    let mut out = vec![];
    for t in crate::sync::rooms::INVITE_STATE {
        if let Some(e) = room.get(t, "") {
            out.push(one(e));
        }
    }
    if let Some(e) = member.and_then(|m| room.get("m.room.member", m)) {
        out.push(one(e));
    }
    Value::Array(out)
}

fn strip(e: &Pdu) -> Value {
    json!({"type": e.type_str(), "state_key": e.state_key, "content": e.content_value(), "sender": e.sender})
}

/// Remember an invite (or the leave that rejects one) for a room this server is not in:
/// the event is kept with a stream position so /sync shows it, outside the room's DAG.
pub async fn store_remote_invite(
    app: &App,
    room_id: &str,
    version: &str,
    rules: &RoomVersionRules,
    mut obj: CanonicalJsonObject,
    invite_room_state: Value,
) -> Result<()> {
    if is_resident(app, room_id).await? {
        // We are in the room: the invite is an ordinary event of its DAG.
        let id = inbound::event_id_of(&obj, rules)?;
        let pdu = std::sync::Arc::new(Pdu::from_object(id, obj, rules)?);
        let origin = pdu.sender.server_name().to_string();
        let mut room = app.rooms.lock(app, room_id).await?;
        inbound::process(app, &mut room, &origin, pdu, true).await?;
        return Ok(());
    }
    if invite_room_state.is_array()
        && let Ok(v) = CanonicalJsonValue::try_from(json!({"invite_room_state": invite_room_state}))
    {
        obj.insert("unsigned".into(), v);
    }
    store_outside_dag(app, room_id, version, rules, obj).await
}

async fn store_outside_dag(
    app: &App,
    room_id: &str,
    version: &str,
    rules: &RoomVersionRules,
    obj: CanonicalJsonObject,
) -> Result<()> {
    let id = inbound::event_id_of(&obj, rules)?;
    let pdu = Pdu::from_object(id, obj, rules)?;
    let membership = pdu.content_ref()["membership"].as_str().unwrap_or("leave").to_string();
    let (rid, v) = (room_id.to_string(), version.to_string());
    app.db
        .write(move |c| {
            let room_nid = match rooms::get(c, &rid)? {
                Some(r) => r.nid,
                None => rooms::insert(c, &rid, &v, pdu.sender.as_str(), now_ms())?,
            };
            if events::by_id(c, pdu.event_id.as_str())?.is_some() {
                return Ok(());
            }
            let json = serde_json::to_string(&pdu.json).map_err(Error::internal)?;
            let prev: Vec<String> = pdu.prev_events.iter().map(|e| e.to_string()).collect();
            let t = pdu.type_str();
            let row = inbound::new_row(&pdu, &t, &json, &prev);
            let place = Placement {
                timeline: true,
                extremity: false,
                current: false,
                rejected: None,
                soft_failed: false,
            };
            let done = events::insert(c, room_nid, None, &row, place)?;
            if let Some(target) = pdu.state_key.as_deref() {
                events::set_membership(
                    c,
                    room_nid,
                    target,
                    &membership,
                    done.nid,
                    done.stream_pos,
                )?;
            }
            Ok(())
        })
        .await?;
    app.notifier.notify();
    Ok(())
}

/// Reject an invite to (or leave) a room this server is not in: through `make_leave` /
/// `send_leave` on the candidate servers, else only locally.
/// Returns the leave event's ID, or (rejected only here) the invite's.
pub async fn leave_remote(app: &App, user_id: &str, room_id: &str) -> Result<ruma::OwnedEventId> {
    let servers = candidate_servers(app, user_id, room_id, &[]).await?;
    for server in &servers {
        match leave_via(app, server, user_id, room_id).await {
            Ok(id) => return Ok(id),
            Err(e) => tracing::info!(%server, %room_id, "remote leave failed: {e}"),
        }
    }
    // Nobody could be reached: forget the invite here, as Synapse does.
    let (rid, uid) = (room_id.to_string(), user_id.to_string());
    let invite = app
        .db
        .write(move |c| {
            let Some(r) = rooms::get(c, &rid)? else { return Ok(None) };
            let ms = events::memberships_of(c, &uid)?;
            let Some(m) = ms.iter().find(|m| m.room_nid == r.nid) else { return Ok(None) };
            let pos = crate::store::account_data::next_stream_pos(c, "events")?;
            events::set_membership(c, r.nid, &uid, "leave", m.event_nid, pos)?;
            Ok(events::by_nid(c, m.event_nid)?.map(|e| e.event_id))
        })
        .await?;
    app.notifier.notify();
    let id = invite.ok_or_else(|| Error::NotFound("No invite to reject".into()))?;
    ruma::OwnedEventId::try_from(id).map_err(Error::internal)
}

async fn leave_via(
    app: &App,
    server: &str,
    user_id: &str,
    room_id: &str,
) -> Result<ruma::OwnedEventId> {
    let (version, rules, pdu, _) =
        make_and_send(app, server, "leave", room_id, user_id, json!({"membership": "leave"}))
            .await?;
    store_outside_dag(app, room_id, &version, &rules, pdu.json.clone()).await?;
    Ok(pdu.event_id.clone())
}
