//! Server-side key backups (spec: "Server-side key backups"): versions, and the room keys
//! stored in the current one. The key data is opaque; the server only keeps, per session,
//! the better of two uploads by the spec's rules (see [`should_replace`]).

use serde_json::{Value, json};

use super::{Object, object};
use crate::app::App;
use crate::error::{Error, Result, bad_json, invalid_param, missing_param, not_found};
use crate::http::auth::User;
use crate::store::key_backup::{self, KeyRow};

/// The metadata that decides which of two keys for one session the backup keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyMeta {
    pub is_verified: bool,
    pub first_message_index: i64,
    pub forwarded_count: i64,
}

/// Whether an uploaded key replaces the stored one for the same session. The spec:
/// if `is_verified` differs, keep the verified key; else keep the lower
/// `first_message_index`; if that is equal too, keep the lower `forwarded_count`
/// (and on a full tie, the stored key).
///
/// Synapse differs in one case: it lets an unverified key with a lower
/// `first_message_index` replace a verified one. Glia follows the spec.
pub fn should_replace(stored: KeyMeta, new: KeyMeta) -> bool {
    if stored.is_verified != new.is_verified {
        return new.is_verified;
    }
    if stored.first_message_index != new.first_message_index {
        return new.first_message_index < stored.first_message_index;
    }
    new.forwarded_count < stored.forwarded_count
}

impl From<&KeyRow> for KeyMeta {
    fn from(k: &KeyRow) -> KeyMeta {
        KeyMeta {
            is_verified: k.is_verified,
            first_message_index: k.first_message_index,
            forwarded_count: k.forwarded_count,
        }
    }
}

/// Backup versions are positive integers as text; anything else names no backup.
fn parse_version(v: &str) -> Option<i64> {
    if v.is_empty() || v.len() > 18 || !v.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    v.parse().ok().filter(|n| *n > 0)
}

fn unknown_version() -> Error {
    not_found("Unknown backup version")
}

/// `algorithm` and `auth_data` of a version body. The spec makes `auth_data` an object;
/// SyTest and older clients send an opaque string, which Synapse stores too.
fn version_fields(body: &Object) -> Result<(String, String)> {
    let algorithm = match body.get("algorithm") {
        Some(Value::String(s)) if !s.is_empty() => s.clone(),
        None => return Err(missing_param("Missing 'algorithm'")),
        Some(_) => return Err(bad_json("'algorithm' must be a string")),
    };
    let auth_data = match body.get("auth_data") {
        Some(v @ (Value::Object(_) | Value::String(_))) => {
            serde_json::to_string(v).map_err(Error::internal)?
        }
        None => return Err(missing_param("Missing 'auth_data'")),
        Some(_) => return Err(bad_json("'auth_data' must be an object")),
    };
    Ok((algorithm, auth_data))
}

/// `POST /room_keys/version`: the new version becomes the current one.
pub async fn create_version(app: &App, user: &User, body: &Object) -> Result<String> {
    let (algorithm, auth_data) = version_fields(body)?;
    let nid = user.user_nid;
    let v =
        app.db.write(move |c| key_backup::create_version(c, nid, &algorithm, &auth_data)).await?;
    Ok(v.to_string())
}

/// `GET /room_keys/version[/{version}]`: without a version, the current one.
pub async fn get_version(app: &App, user: &User, version: Option<&str>) -> Result<Value> {
    let wanted = match version {
        None => None,
        Some(v) => Some(parse_version(v).ok_or_else(unknown_version)?),
    };
    let nid = user.user_nid;
    let found = app
        .db
        .read(move |c| {
            let row = match wanted {
                None => key_backup::current_version(c, nid)?,
                Some(v) => key_backup::version(c, nid, v)?,
            };
            match row {
                None => Ok(None),
                Some(r) => {
                    let count = key_backup::count(c, nid, r.version)?;
                    Ok(Some((r, count)))
                }
            }
        })
        .await?;
    let (row, count) = found.ok_or_else(|| not_found("No backup found"))?;
    let auth_data: Value = serde_json::from_str(&row.auth_data).map_err(Error::internal)?;
    Ok(json!({
        "algorithm": row.algorithm,
        "auth_data": auth_data,
        "count": count,
        "etag": row.etag.to_string(),
        "version": row.version.to_string(),
    }))
}

/// `PUT /room_keys/version/{version}`: only `auth_data` changes.
pub async fn update_version(app: &App, user: &User, version: &str, body: &Object) -> Result<()> {
    let (algorithm, auth_data) = version_fields(body)?;
    match body.get("version") {
        None => {}
        Some(Value::String(v)) if v == version => {}
        Some(_) => return Err(invalid_param("Version in body does not match")),
    }
    let v = parse_version(version).ok_or_else(unknown_version)?;
    let nid = user.user_nid;
    app.db
        .write(move |c| {
            let row = key_backup::version(c, nid, v)?.ok_or_else(unknown_version)?;
            if row.algorithm != algorithm {
                return Err(invalid_param("Algorithm does not match"));
            }
            key_backup::set_auth_data(c, nid, v, &auth_data)
        })
        .await
}

/// `DELETE /room_keys/version/{version}`: the version and its keys. Deleting a version
/// that was already deleted succeeds, as the spec asks.
pub async fn delete_version(app: &App, user: &User, version: &str) -> Result<()> {
    let v = parse_version(version).ok_or_else(unknown_version)?;
    let nid = user.user_nid;
    let existed = app.db.write(move |c| key_backup::delete_version(c, nid, v)).await?;
    if existed { Ok(()) } else { Err(unknown_version()) }
}

/// One session's key data from a request body.
fn key_data(v: &Value, room_id: &str, session_id: &str) -> Result<KeyRow> {
    let what = format!("key for session {session_id} in room {room_id}");
    let o = object(v, &what)?;
    let count = |k: &str| {
        o.get(k)
            .and_then(Value::as_i64)
            .filter(|n| *n >= 0)
            .ok_or_else(|| bad_json(format!("{what}: '{k}' must be a non-negative integer")))
    };
    let is_verified = o
        .get("is_verified")
        .and_then(Value::as_bool)
        .ok_or_else(|| bad_json(format!("{what}: 'is_verified' must be a boolean")))?;
    // An object in the spec; SyTest sends an opaque string, which Synapse stores too.
    let session_data = match o.get("session_data") {
        Some(v @ (Value::Object(_) | Value::String(_))) => {
            serde_json::to_string(v).map_err(Error::internal)?
        }
        _ => return Err(bad_json(format!("{what}: 'session_data' must be an object"))),
    };
    Ok(KeyRow {
        room_id: room_id.to_string(),
        session_id: session_id.to_string(),
        first_message_index: count("first_message_index")?,
        forwarded_count: count("forwarded_count")?,
        is_verified,
        session_data,
    })
}

fn check_room_id(room_id: &str) -> Result<()> {
    ruma::RoomId::parse(room_id)
        .map(|_| ())
        .map_err(|_| invalid_param(format!("{room_id:?} is not a valid room ID")))
}

/// The keys of a `PUT /room_keys/keys...` body at each level: all rooms, one room
/// (`{"sessions": ...}`) or one session (the key data itself).
pub fn keys_from_body(
    body: &Value,
    room_id: Option<&str>,
    session_id: Option<&str>,
) -> Result<Vec<KeyRow>> {
    let sessions = |room_id: &str, v: &Value| -> Result<Vec<KeyRow>> {
        check_room_id(room_id)?;
        let room = object(v, room_id)?;
        let sessions = room.get("sessions").ok_or_else(|| bad_json("Missing 'sessions'"))?;
        object(sessions, "sessions")?.iter().map(|(s, k)| key_data(k, room_id, s)).collect()
    };
    match (room_id, session_id) {
        (Some(r), Some(s)) => {
            check_room_id(r)?;
            Ok(vec![key_data(body, r, s)?])
        }
        (Some(r), None) => sessions(r, body),
        _ => {
            let rooms =
                object(body, "body")?.get("rooms").ok_or_else(|| bad_json("Missing 'rooms'"))?;
            let mut out = vec![];
            for (r, v) in object(rooms, "rooms")? {
                out.extend(sessions(r, v)?);
            }
            Ok(out)
        }
    }
}

/// `PUT /room_keys/keys...?version=`: merge the keys into the current version. Returns the
/// version's `etag` and `count`.
pub async fn put_keys(app: &App, user: &User, version: &str, keys: Vec<KeyRow>) -> Result<Value> {
    let wanted = parse_version(version);
    let nid = user.user_nid;
    let version = version.to_string();
    let (etag, count) = app
        .db
        .write(move |c| {
            let current = key_backup::current_version(c, nid)?
                .ok_or_else(|| not_found(format!("Version '{version}' not found")))?;
            if Some(current.version) != wanted {
                return Err(match wanted {
                    Some(v) if key_backup::version(c, nid, v)?.is_some() => {
                        Error::WrongRoomKeysVersion { current_version: current.version.to_string() }
                    }
                    _ => not_found(format!("Version '{version}' not found")),
                });
            }
            let v = current.version;
            let mut changed = false;
            for k in &keys {
                let replace = match key_backup::key(c, nid, v, &k.room_id, &k.session_id)? {
                    None => true,
                    Some(stored) => should_replace(KeyMeta::from(&stored), KeyMeta::from(k)),
                };
                if replace {
                    key_backup::put_key(c, nid, v, k)?;
                    changed = true;
                }
            }
            let etag = if changed { key_backup::bump_etag(c, nid, v)? } else { current.etag };
            Ok((etag, key_backup::count(c, nid, v)?))
        })
        .await?;
    Ok(json!({"etag": etag.to_string(), "count": count}))
}

fn key_json(k: &KeyRow) -> Result<Value> {
    let session_data: Value = serde_json::from_str(&k.session_data).map_err(Error::internal)?;
    Ok(json!({
        "first_message_index": k.first_message_index,
        "forwarded_count": k.forwarded_count,
        "is_verified": k.is_verified,
        "session_data": session_data,
    }))
}

/// `GET /room_keys/keys...?version=`: the body at the level asked for.
pub async fn get_keys(
    app: &App,
    user: &User,
    version: &str,
    room_id: Option<String>,
    session_id: Option<String>,
) -> Result<Value> {
    let v = parse_version(version).ok_or_else(unknown_version)?;
    let nid = user.user_nid;
    let (r, s) = (room_id.clone(), session_id.clone());
    let keys = app
        .db
        .read(move |c| {
            key_backup::version(c, nid, v)?.ok_or_else(unknown_version)?;
            key_backup::keys(c, nid, v, r.as_deref(), s.as_deref())
        })
        .await?;
    if session_id.is_some() {
        let k = keys.first().ok_or_else(|| not_found("No room_keys found"))?;
        return key_json(k);
    }
    let mut rooms = serde_json::Map::new();
    for k in &keys {
        let room = rooms.entry(k.room_id.clone()).or_insert_with(|| json!({"sessions": {}}));
        if let Some(sessions) = room.get_mut("sessions").and_then(Value::as_object_mut) {
            sessions.insert(k.session_id.clone(), key_json(k)?);
        }
    }
    match room_id {
        Some(r) => Ok(rooms.remove(&r).unwrap_or_else(|| json!({"sessions": {}}))),
        None => Ok(json!({"rooms": rooms})),
    }
}

/// `DELETE /room_keys/keys...?version=`: returns the version's `etag` and `count`.
pub async fn delete_keys(
    app: &App,
    user: &User,
    version: &str,
    room_id: Option<String>,
    session_id: Option<String>,
) -> Result<Value> {
    let v = parse_version(version).ok_or_else(unknown_version)?;
    let nid = user.user_nid;
    let (etag, count) = app
        .db
        .write(move |c| {
            key_backup::version(c, nid, v)?.ok_or_else(unknown_version)?;
            key_backup::delete_keys(c, nid, v, room_id.as_deref(), session_id.as_deref())?;
            Ok((key_backup::bump_etag(c, nid, v)?, key_backup::count(c, nid, v)?))
        })
        .await?;
    Ok(json!({"etag": etag.to_string(), "count": count}))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(is_verified: bool, first_message_index: i64, forwarded_count: i64) -> KeyMeta {
        KeyMeta { is_verified, first_message_index, forwarded_count }
    }

    #[test]
    fn replacement_rules_follow_the_spec() {
        // Complement TestE2EKeyBackupReplaceRoomKeyRules: none of these replace.
        let unverified = m(false, 10, 5);
        for new in [m(false, 11, 5), m(false, 10, 6), m(false, 11, 6)] {
            assert!(!should_replace(unverified, new), "{new:?}");
        }
        let verified = m(true, 10, 5);
        for new in [
            m(false, 11, 5),
            m(false, 10, 6),
            m(false, 11, 6),
            m(true, 11, 5),
            m(true, 10, 6),
            m(true, 11, 6),
        ] {
            assert!(!should_replace(verified, new), "{new:?}");
        }
        // Verified wins over unverified, whatever the indexes (here Synapse differs).
        assert!(!should_replace(verified, m(false, 0, 0)));
        assert!(should_replace(unverified, m(true, 99, 99)));
        // Then the lower first_message_index, then the lower forwarded_count.
        assert!(should_replace(unverified, m(false, 9, 99)));
        assert!(should_replace(unverified, m(false, 10, 4)));
        assert!(!should_replace(unverified, m(false, 10, 5)), "a tie keeps the stored key");
    }

    #[test]
    fn versions_are_positive_integers() {
        assert_eq!(parse_version("1"), Some(1));
        assert_eq!(parse_version("42"), Some(42));
        for bad in ["", "0", "-1", "1.0", "abc", " 1", "99999999999999999999"] {
            assert_eq!(parse_version(bad), None, "{bad}");
        }
    }

    #[test]
    fn key_bodies_at_each_level() {
        let key = json!({"first_message_index": 1, "forwarded_count": 0, "is_verified": false,
                         "session_data": {"ciphertext": "c"}});
        let one = keys_from_body(&key, Some("!r:s"), Some("sess")).expect("session level");
        assert_eq!((one[0].room_id.as_str(), one[0].session_id.as_str()), ("!r:s", "sess"));
        let room = json!({"sessions": {"a": key, "b": key}});
        assert_eq!(keys_from_body(&room, Some("!r:s"), None).expect("room level").len(), 2);
        let all = json!({"rooms": {"!r:s": room, "!q:s": {"sessions": {}}}});
        assert_eq!(keys_from_body(&all, None, None).expect("all").len(), 2);

        let bad_key =
            |k: Value| keys_from_body(&k, Some("!r:s"), Some("s")).map_err(|e| e.errcode());
        assert_eq!(
            bad_key(
                json!({"first_message_index": 1, "forwarded_count": 0, "is_verified": "no", "session_data": {}})
            ),
            Err("M_BAD_JSON")
        );
        assert_eq!(
            bad_key(
                json!({"first_message_index": -1, "forwarded_count": 0, "is_verified": false, "session_data": {}})
            ),
            Err("M_BAD_JSON")
        );
        assert_eq!(
            bad_key(json!({"first_message_index": 1, "is_verified": false, "session_data": {}})),
            Err("M_BAD_JSON")
        );
        assert_eq!(
            bad_key(json!({"first_message_index": 1, "forwarded_count": 0, "is_verified": false})),
            Err("M_BAD_JSON")
        );
        assert_eq!(bad_key(json!([])), Err("M_BAD_JSON"));
        assert!(keys_from_body(&key, Some("not a room"), Some("s")).is_err());
        assert!(keys_from_body(&json!({"rooms": []}), None, None).is_err());
        assert!(keys_from_body(&json!({}), None, None).is_err());
    }
}
