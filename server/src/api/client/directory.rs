//! Room aliases and the room directory: alias mappings, a room's local aliases, directory
//! visibility, and `/publicRooms`.

use std::sync::Arc;

use serde_json::{Value, json};

use crate::app::App;
use crate::error::{Error, Result, bad_json, invalid_param, not_found};
use crate::federation::queries;
use crate::http::auth::User;
use crate::http::request::Req;
use crate::http::response::{Resp, empty_object, ok};
use crate::http::router::Router;
use crate::rooms;
use crate::store::{events, rooms as room_store, state};

pub fn routes(r: &mut Router) {
    r.put("/_matrix/client/{v}/directory/room/{}", put_alias);
    r.get("/_matrix/client/{v}/directory/room/{}", get_alias);
    r.delete("/_matrix/client/{v}/directory/room/{}", delete_alias);
    r.get("/_matrix/client/{v}/rooms/{}/aliases", room_aliases);
    r.get("/_matrix/client/{v}/directory/list/room/{}", get_visibility);
    r.put("/_matrix/client/{v}/directory/list/room/{}", put_visibility);
    r.get("/_matrix/client/{v}/publicRooms", public_rooms_get);
    r.post("/_matrix/client/{v}/publicRooms", public_rooms_post);
}

fn local_alias(app: &App, alias: &str) -> Result<()> {
    let a = ruma::RoomAliasId::parse(alias)
        .map_err(|_| invalid_param(format!("Invalid room alias {alias}")))?;
    if a.server_name() != app.config.server_name {
        return Err(invalid_param("Room alias must be local"));
    }
    Ok(())
}

/// The power level the user has in the room and the level an event type needs.
fn levels(room: &rooms::RoomHandle, user_id: &str, event_type: &str) -> (i64, i64) {
    let p = rooms::state_content(room, "m.room.power_levels", "").unwrap_or(json!({}));
    let mine = rooms::user_level(room, user_id);
    let needed =
        p["events"][event_type].as_i64().unwrap_or(p["state_default"].as_i64().unwrap_or(50));
    (mine, needed)
}

async fn put_alias(app: Arc<App>, req: Req) -> Result<Resp> {
    let user = app.auth_member(&req).await?;
    let alias = req.param(0).to_string();
    local_alias(&app, &alias)?;
    let body = req.json_object(false)?;
    let room_id = match body.get("room_id") {
        Some(Value::String(s)) => s.clone(),
        Some(_) => return Err(bad_json("'room_id' must be a string")),
        None => return Err(Error::MissingParam("Missing 'room_id'".into())),
    };
    app.appservices.check_alias_not_exclusive(&alias, user.appservice.as_deref())?;
    // Appservices map aliases to rooms they are not in (bridged portals), as in Synapse.
    let room_nid = if user.appservice.is_some() {
        let rid = room_id.clone();
        let room = app.db.read(move |c| room_store::get(c, &rid)).await?;
        room.ok_or_else(|| not_found("Unknown room"))?.nid
    } else {
        super::room_state::joined_room(&app, &user, &room_id).await?.nid
    };
    let creator = user.user_id.clone();
    let added = app.db.write(move |c| room_store::put_alias(c, &alias, room_nid, &creator)).await?;
    if !added {
        return Err(Error::Conflict("Room alias already exists".into()));
    }
    Ok(empty_object())
}

async fn get_alias(app: Arc<App>, req: Req) -> Result<Resp> {
    let alias = req.param(0).to_string();
    let parsed = ruma::RoomAliasId::parse(&alias)
        .map_err(|_| invalid_param(format!("Invalid room alias {alias}")))?;
    if parsed.server_name() != app.config.server_name {
        return Ok(ok(&crate::federation::queries::directory(&app, &parsed).await?));
    }
    crate::appservice::query::ensure_alias(&app, &alias).await;
    let a = alias.clone();
    let found = app.db.read(move |c| room_store::get_alias(c, &a)).await?;
    let (room_id, _) = found.ok_or_else(|| not_found(format!("Room alias {alias} not found")))?;
    Ok(ok(&json!({"room_id": room_id, "servers": [app.config.server_name.as_str()]})))
}

async fn delete_alias(app: Arc<App>, req: Req) -> Result<Resp> {
    let user = app.auth_member(&req).await?;
    let alias = req.param(0).to_string();
    local_alias(&app, &alias)?;
    let a = alias.clone();
    let found = app.db.read(move |c| room_store::get_alias(c, &a)).await?;
    let (room_id, creator) =
        found.ok_or_else(|| not_found(format!("Room alias {alias} not found")))?;
    if creator != user.user_id && !user.is_admin {
        // As in Synapse: otherwise only users who may change the canonical alias.
        let room = app.rooms.lock(&app, &room_id).await?;
        let (mine, needed) = levels(&room, &user.user_id, "m.room.canonical_alias");
        if mine < needed || room.membership_of(&user.user_id).as_deref() != Some("join") {
            return Err(Error::Forbidden("You don't have permission to delete the alias.".into()));
        }
    }
    app.db.write(move |c| room_store::delete_alias(c, &alias)).await?;
    Ok(empty_object())
}

async fn room_aliases(app: Arc<App>, req: Req) -> Result<Resp> {
    let user = app.auth(&req).await?;
    let room = super::room_state::joined_room(&app, &user, req.param(0)).await?;
    let aliases = app.db.read(move |c| room_store::aliases_of(c, room.nid)).await?;
    Ok(ok(&json!({"aliases": aliases})))
}

async fn get_visibility(app: Arc<App>, req: Req) -> Result<Resp> {
    let room_id = req.param(0).to_string();
    let room = app.db.read(move |c| room_store::get(c, &room_id)).await?;
    let room = room.ok_or_else(|| not_found("Unknown room"))?;
    Ok(ok(&json!({"visibility": if room.is_public { "public" } else { "private" }})))
}

async fn put_visibility(app: Arc<App>, req: Req) -> Result<Resp> {
    let user = app.auth_member(&req).await?;
    let room_id = req.param(0).to_string();
    let body = req.json_object(true)?;
    let public = match body.get("visibility").and_then(Value::as_str) {
        Some("public") => true,
        Some("private") | None => false,
        Some(other) => return Err(invalid_param(format!("Unknown visibility {other}"))),
    };
    let room = app.rooms.lock(&app, &room_id).await?;
    let (mine, needed) = levels(&room, &user.user_id, "m.room.canonical_alias");
    if !user.is_admin
        && (mine < needed || room.membership_of(&user.user_id).as_deref() != Some("join"))
    {
        return Err(Error::Forbidden(
            "You don't have permission to change the room's directory visibility".into(),
        ));
    }
    let nid = room.nid;
    drop(room);
    app.db.write(move |c| room_store::set_public(c, nid, public)).await?;
    Ok(empty_object())
}

/// One public room as the directory shows it.
fn summarise(c: &rusqlite::Connection, room: &room_store::RoomRow) -> Result<Value> {
    let content = |t: &str| -> Result<Value> {
        match state::current_lookup(c, room.nid, t, "")? {
            Some(nid) => match events::by_nid(c, nid)? {
                Some(r) => {
                    let v: Value = serde_json::from_str(&r.json).map_err(Error::internal)?;
                    Ok(v["content"].clone())
                }
                None => Ok(Value::Null),
            },
            None => Ok(Value::Null),
        }
    };
    let mut v = json!({
        "room_id": room.room_id,
        "num_joined_members": events::members(c, room.nid, "join")?.len(),
        "world_readable": content("m.room.history_visibility")?["history_visibility"] == "world_readable",
        "guest_can_join": content("m.room.guest_access")?["guest_access"] == "can_join",
    });
    for (t, field, key) in [
        ("m.room.name", "name", "name"),
        ("m.room.topic", "topic", "topic"),
        ("m.room.canonical_alias", "alias", "canonical_alias"),
        ("m.room.avatar", "url", "avatar_url"),
        ("m.room.join_rules", "join_rule", "join_rule"),
    ] {
        if let Some(s) = content(t)?[field].as_str() {
            v[key] = json!(s);
        }
    }
    if let Some(s) = content("m.room.create")?["type"].as_str() {
        v["room_type"] = json!(s);
    }
    Ok(v)
}

/// Which room list `/publicRooms` shows: the server's own, one appservice network's
/// (`third_party_instance_id` = `<appservice id>|<network id>`, as in Synapse), or both.
pub(crate) enum Network {
    Main,
    Instance(String, String),
    All,
}

pub(crate) async fn public_rooms(
    app: &App,
    limit: Option<u64>,
    since: Option<&str>,
    search: Option<String>,
    network: Network,
) -> Result<Resp> {
    let offset = match since {
        None => 0,
        Some(s) => s
            .strip_prefix('o')
            .and_then(|n| n.parse::<usize>().ok())
            .ok_or_else(|| invalid_param("Invalid pagination token"))?,
    };
    let mut all = app
        .db
        .read(move |c| {
            let mut rooms = match network {
                Network::Instance(..) => vec![],
                Network::Main | Network::All => room_store::public_rooms(c)?,
            };
            for (as_id, net, room_id) in crate::store::appservice::listed_rooms(c)? {
                let wanted = match &network {
                    Network::Main => false,
                    Network::All => true,
                    Network::Instance(a, n) => *a == as_id && *n == net,
                };
                if wanted
                    && !rooms.iter().any(|r| r.room_id == room_id)
                    && let Some(r) = room_store::get(c, &room_id)?
                {
                    rooms.push(r);
                }
            }
            let mut out = vec![];
            for room in rooms {
                out.push(summarise(c, &room)?);
            }
            Ok(out)
        })
        .await?;
    if let Some(term) = search.map(|t| t.to_lowercase()).filter(|t| !t.is_empty()) {
        all.retain(|r| {
            ["name", "topic", "canonical_alias"]
                .iter()
                .any(|k| r[k].as_str().is_some_and(|s| s.to_lowercase().contains(&term)))
        });
    }
    // Largest rooms first, as Synapse orders them; room ID breaks ties stably.
    all.sort_by(|a, b| {
        b["num_joined_members"]
            .as_u64()
            .cmp(&a["num_joined_members"].as_u64())
            .then_with(|| a["room_id"].as_str().cmp(&b["room_id"].as_str()))
    });
    let total = all.len();
    let limit = limit.map(|l| l as usize).unwrap_or(total).min(500);
    let chunk: Vec<Value> = all.into_iter().skip(offset).take(limit).collect();
    let mut body = json!({"chunk": chunk, "total_room_count_estimate": total});
    if offset + chunk_len(&body) < total {
        body["next_batch"] = json!(format!("o{}", offset + limit));
    }
    if offset > 0 {
        body["prev_batch"] = json!(format!("o{}", offset.saturating_sub(limit)));
    }
    Ok(ok(&body))
}

fn chunk_len(body: &Value) -> usize {
    body["chunk"].as_array().map(Vec::len).unwrap_or(0)
}

/// `limit`, `since` and the search term of a `POST /publicRooms` body (client or
/// federation).
pub(crate) type PostParams = (Option<u64>, Option<String>, Option<String>);

pub(crate) fn post_params(body: &serde_json::Map<String, Value>) -> Result<PostParams> {
    let limit = match body.get("limit") {
        None | Some(Value::Null) => None,
        Some(v) => {
            Some(v.as_u64().ok_or_else(|| bad_json("'limit' must be a non-negative integer"))?)
        }
    };
    let since = match body.get("since") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(_) => return Err(bad_json("'since' must be a string")),
    };
    let term = body
        .get("filter")
        .and_then(|f| f.get("generic_search_term"))
        .and_then(Value::as_str)
        .map(str::to_string);
    Ok((limit, since, term))
}

/// Which room list a `POST /publicRooms` body asks for.
fn network_param(body: &serde_json::Map<String, Value>) -> Result<Network> {
    Ok(match (body.get("third_party_instance_id"), body.get("include_all_networks")) {
        (Some(Value::String(id)), _) => match id.split_once('|') {
            Some((a, n)) => Network::Instance(a.to_string(), n.to_string()),
            None => return Err(invalid_param("Invalid third_party_instance_id")),
        },
        (Some(Value::Null) | None, Some(Value::Bool(true))) => Network::All,
        (Some(Value::Null) | None, None | Some(Value::Null) | Some(Value::Bool(false))) => {
            Network::Main
        }
        (Some(_), _) => return Err(bad_json("'third_party_instance_id' must be a string")),
        (_, Some(_)) => return Err(bad_json("'include_all_networks' must be a boolean")),
    })
}

/// The other server a `server=` parameter names, if it names one.
fn remote_server<'a>(app: &App, server: Option<&'a str>) -> Result<Option<&'a str>> {
    match server {
        Some(s) if s != app.config.server_name.as_str() => {
            if !crate::media::valid_server_name(s) {
                return Err(invalid_param(format!("Invalid server name {s:?}")));
            }
            Ok(Some(s))
        }
        _ => Ok(None),
    }
}

async fn public_rooms_get(app: Arc<App>, req: Req) -> Result<Resp> {
    // With `allow_public_rooms_without_auth`, anyone may read this server's own directory
    // (a bad or missing token is then ignored, as in Synapse); asking about another
    // server's still needs a user.
    match app.auth(&req).await {
        Ok(_) => {}
        Err(Error::MissingToken(_) | Error::UnknownToken(_))
            if app.config.allow_public_rooms_without_auth && req.query("server").is_none() => {}
        Err(e) => return Err(e),
    }
    let limit = req
        .query("limit")
        .map(|l| l.parse::<u64>())
        .transpose()
        .map_err(|_| invalid_param("limit"))?;
    if let Some(server) = remote_server(&app, req.query("server"))? {
        let got = queries::public_rooms(&app, server, limit, req.query("since"), None).await?;
        return Ok(ok(&got));
    }
    public_rooms(&app, limit, req.query("since"), None, Network::Main).await
}

async fn public_rooms_post(app: Arc<App>, req: Req) -> Result<Resp> {
    let _user: User = app.auth(&req).await?;
    let remote = remote_server(&app, req.query("server"))?;
    let body = req.json_object(true)?;
    let (limit, since, term) = post_params(&body)?;
    let network = network_param(&body)?;
    if let Some(server) = remote {
        // A search goes to the other server as a POST, a plain listing as a GET (Synapse).
        let search = term.map(|t| {
            let mut b = json!({"filter": {"generic_search_term": t}});
            if let Some(l) = limit {
                b["limit"] = json!(l);
            }
            if let Some(s) = &since {
                b["since"] = json!(s);
            }
            b
        });
        let got =
            queries::public_rooms(&app, server, limit, since.as_deref(), search.as_ref()).await?;
        return Ok(ok(&got));
    }
    public_rooms(&app, limit, since.as_deref(), term, network).await
}
