//! Room state: get and set state events, list members.

use std::sync::Arc;

use rusqlite::{Connection, OptionalExtension};
use serde_json::{Map, Value, json};

use crate::app::App;
use crate::error::{Error, Result, invalid_param, not_found};
use crate::http::auth::User;
use crate::http::request::Req;
use crate::http::response::{Resp, ok};
use crate::http::router::Router;
use crate::rooms::{self, NewEvent, format};
use crate::store::rooms::RoomRow;
use crate::store::{events, rooms as room_store, state};

pub fn routes(r: &mut Router) {
    r.get("/_matrix/client/{v}/rooms/{}/state", all_state);
    r.get("/_matrix/client/{v}/rooms/{}/state/{}", get_state);
    r.get("/_matrix/client/{v}/rooms/{}/state/{}/", get_state);
    r.get("/_matrix/client/{v}/rooms/{}/state/{}/{*}", get_state);
    r.put("/_matrix/client/{v}/rooms/{}/state/{}", put_state);
    r.put("/_matrix/client/{v}/rooms/{}/state/{}/", put_state);
    r.put("/_matrix/client/{v}/rooms/{}/state/{}/{*}", put_state);
    r.get("/_matrix/client/{v}/rooms/{}/members", members);
    r.get("/_matrix/client/{v}/rooms/{}/joined_members", joined_members);
}

/// The room, if the user is joined to it. Unknown rooms and rooms the user is not in are
/// the same 403, so room existence does not leak.
pub async fn joined_room(app: &App, user: &User, room_id: &str) -> Result<RoomRow> {
    ruma::RoomId::parse(room_id).map_err(|_| invalid_param("Invalid room ID"))?;
    let (rid, uid) = (room_id.to_string(), user.user_id.clone());
    let found = app
        .db
        .read(move |c| {
            let Some(room) = room_store::get(c, &rid)? else { return Ok(None) };
            let m = events::membership(c, room.nid, &uid)?;
            Ok(Some((room, m)))
        })
        .await?;
    match found {
        Some((room, Some(m))) if m == "join" => Ok(room),
        _ => Err(Error::Forbidden(format!("User {} not in room {room_id}", user.user_id))),
    }
}

/// A room as a user may read it: as it is now if they are joined; as it was when they left
/// if they left and have not forgotten it (the spec: "If the user has left the room then
/// the state is taken from the state of the room when they left"). Anyone else gets the
/// same 403 as for an unknown room. Banned users read nothing, as in Synapse.
pub struct Readable {
    pub room: RoomRow,
    /// For a user who left: the stream position of their leave and the state after it.
    pub left: Option<(i64, Option<i64>)>,
}

impl Readable {
    /// The event nid for a state key, now or when the user left.
    pub fn lookup(&self, c: &Connection, event_type: &str, state_key: &str) -> Result<Option<i64>> {
        match self.left {
            None => state::current_lookup(c, self.room.nid, event_type, state_key),
            Some((_, Some(group))) => state::lookup(c, group, event_type, state_key),
            Some((_, None)) => Ok(None),
        }
    }

    /// The whole state as (type, state_key, event nid), now or when the user left.
    pub fn state(&self, c: &Connection) -> Result<Vec<(String, String, i64)>> {
        match self.left {
            None => state::current(c, self.room.nid),
            Some((_, Some(group))) => {
                Ok(state::state_at(c, group)?.into_iter().map(|((t, k), n)| (t, k, n)).collect())
            }
            Some((_, None)) => Ok(vec![]),
        }
    }
}

pub async fn readable_room(app: &App, user: &User, room_id: &str) -> Result<Readable> {
    ruma::RoomId::parse(room_id).map_err(|_| invalid_param("Invalid room ID"))?;
    let (rid, uid) = (room_id.to_string(), user.user_id.clone());
    let found = app
        .db
        .read(move |c| {
            let Some(room) = room_store::get(c, &rid)? else { return Ok(None) };
            let m = c
                .prepare_cached(
                    "SELECT membership, event_nid, stream_pos, forgotten FROM memberships
                     WHERE room_nid = ?1 AND user_id = ?2",
                )?
                .query_row(rusqlite::params![room.nid, uid], |r| {
                    Ok((
                        r.get::<_, String>(0)?,
                        r.get::<_, i64>(1)?,
                        r.get::<_, i64>(2)?,
                        r.get::<_, bool>(3)?,
                    ))
                })
                .optional()?;
            Ok(match m {
                Some((m, ..)) if m == "join" => Some(Readable { room, left: None }),
                Some((m, event_nid, pos, false)) if m == "leave" => {
                    let group = events::by_nid(c, event_nid)?.and_then(|e| e.state_after);
                    Some(Readable { room, left: Some((pos, group)) })
                }
                _ => None,
            })
        })
        .await?;
    found.ok_or_else(|| Error::Forbidden(format!("User {} not in room {room_id}", user.user_id)))
}

fn state_key(req: &Req) -> String {
    req.params.get(2).cloned().unwrap_or_default()
}

async fn get_state(app: Arc<App>, req: Req) -> Result<Resp> {
    let user = app.auth(&req).await?;
    let room = readable_room(&app, &user, req.param(0)).await?;
    let (t, k) = (req.param(1).to_string(), state_key(&req));
    // `format=event` (v1.16): the whole client event instead of its content.
    let whole = match req.query("format") {
        None | Some("content") => false,
        Some("event") => true,
        Some(_) => return Err(invalid_param("format must be 'content' or 'event'")),
    };
    let found = app
        .db
        .read(move |c| {
            let Some(row) =
                room.lookup(c, &t, &k)?.map(|n| events::by_nid(c, n)).transpose()?.flatten()
            else {
                return Ok(None);
            };
            if whole {
                return format::client_event(c, &row, None).map(Some);
            }
            let pdu: Value = serde_json::from_str(&row.json).map_err(Error::internal)?;
            Ok(Some(pdu.get("content").cloned().unwrap_or(json!({}))))
        })
        .await?;
    Ok(ok(&found.ok_or_else(|| not_found("Event not found."))?))
}

async fn all_state(app: Arc<App>, req: Req) -> Result<Resp> {
    let user = app.auth(&req).await?;
    let room = readable_room(&app, &user, req.param(0)).await?;
    let list = app
        .db
        .read(move |c| {
            let nids: Vec<i64> = room.state(c)?.into_iter().map(|(_, _, n)| n).collect();
            format::client_events(c, &events::by_nids(c, &nids)?, None)
        })
        .await?;
    Ok(ok(&list))
}

async fn put_state(app: Arc<App>, req: Req) -> Result<Resp> {
    let user = app.auth_member(&req).await?;
    let room_id = req.param(0).to_string();
    ruma::RoomId::parse(&room_id).map_err(|_| invalid_param("Invalid room ID"))?;
    let content = Value::Object(req.json_object(false)?);
    let (t, k) = (req.param(1).to_string(), state_key(&req));
    if t == "m.room.canonical_alias" {
        check_canonical_alias(&app, &room_id, &content).await?;
    }
    let mut room = app.rooms.lock(&app, &room_id).await.map_err(|e| match e {
        Error::NotFound(_) => {
            Error::Forbidden(format!("User {} not in room {room_id}", user.user_id))
        }
        other => other,
    })?;
    // Setting a state key to what it already is, by the same sender, changes nothing.
    if let Some(cur) = room.get(&t, &k)
        && cur.sender == user.user_id
        && cur.content_value() == content
    {
        return Ok(ok(&json!({"event_id": cur.event_id})));
    }
    let id =
        rooms::send_locked(&app, &mut room, &user.user_id, NewEvent::state(&t, &k, content), None)
            .await?;
    Ok(ok(&json!({"event_id": id})))
}

/// Every alias in `m.room.canonical_alias` must be valid, and local ones must point at
/// this room (400 `M_BAD_ALIAS`). Remote aliases are checked once federation exists.
async fn check_canonical_alias(app: &App, room_id: &str, content: &Value) -> Result<()> {
    let mut aliases = vec![];
    match content.get("alias") {
        None | Some(Value::Null) => {}
        Some(Value::String(a)) => aliases.push(a.clone()),
        Some(_) => return Err(Error::BadJson("'alias' must be a string".into())),
    }
    match content.get("alt_aliases") {
        None | Some(Value::Null) => {}
        Some(Value::Array(list)) => {
            for a in list {
                let a = a
                    .as_str()
                    .ok_or_else(|| Error::BadJson("'alt_aliases' must be strings".into()))?;
                aliases.push(a.to_string());
            }
        }
        Some(_) => return Err(Error::BadJson("'alt_aliases' must be a list".into())),
    }
    for alias in aliases {
        let parsed = ruma::RoomAliasId::parse(&alias)
            .map_err(|_| Error::InvalidParam(format!("{alias} is not a valid room alias")))?;
        if parsed.server_name() != app.config.server_name {
            continue;
        }
        let a = alias.clone();
        let target = app.db.read(move |c| room_store::get_alias(c, &a)).await?;
        if target.map(|(r, _)| r).as_deref() != Some(room_id) {
            return Err(Error::BadAlias(format!("Room alias {alias} does not point to the room")));
        }
    }
    Ok(())
}

async fn members(app: Arc<App>, req: Req) -> Result<Resp> {
    let user = app.auth(&req).await?;
    let room = readable_room(&app, &user, req.param(0)).await?;
    let only = req.query("membership").map(str::to_string);
    let not = req.query("not_membership").map(str::to_string);
    // `at`: the members as they were at a pagination token (never past what the user
    // may read).
    let at = req.query("at").map(super::room_events::parse_position).transpose()?;
    let chunk = app
        .db
        .read(move |c| {
            let state = match at {
                Some(pos) => {
                    let limit = room.left.map(|(p, _)| p).unwrap_or(i64::MAX).min(pos);
                    match events::timeline_desc(c, room.room.nid, i64::MIN, limit, 1)?
                        .first()
                        .and_then(|r| r.state_after)
                    {
                        Some(g) => state::state_at(c, g)?
                            .into_iter()
                            .map(|((t, k), n)| (t, k, n))
                            .collect(),
                        None => vec![],
                    }
                }
                None => room.state(c)?,
            };
            let nids: Vec<i64> = state
                .into_iter()
                .filter(|(t, _, _)| t == "m.room.member")
                .map(|(_, _, n)| n)
                .collect();
            let rows = events::by_nids(c, &nids)?;
            let list = format::client_events(c, &rows, None)?;
            Ok(list
                .into_iter()
                .filter(|e| {
                    let m = e["content"]["membership"].as_str().unwrap_or_default();
                    only.as_deref().is_none_or(|o| o == m) && not.as_deref().is_none_or(|n| n != m)
                })
                .collect::<Vec<_>>())
        })
        .await?;
    Ok(ok(&json!({"chunk": chunk})))
}

async fn joined_members(app: Arc<App>, req: Req) -> Result<Resp> {
    let user = app.auth(&req).await?;
    let room = joined_room(&app, &user, req.param(0)).await?;
    let joined = app
        .db
        .read(move |c| {
            let mut out = Map::new();
            for (uid, nid) in events::members(c, room.nid, "join")? {
                let Some(row) = events::by_nid(c, nid)? else { continue };
                let pdu: Value = serde_json::from_str(&row.json).map_err(Error::internal)?;
                let content = &pdu["content"];
                let mut m = Map::new();
                for (from, to) in [("displayname", "display_name"), ("avatar_url", "avatar_url")] {
                    if let Some(v) = content.get(from).filter(|v| v.is_string()) {
                        m.insert(to.into(), v.clone());
                    }
                }
                out.insert(uid, Value::Object(m));
            }
            Ok(out)
        })
        .await?;
    Ok(ok(&json!({"joined": joined})))
}
