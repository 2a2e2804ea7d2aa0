//! Outbound federation queries that involve no room: profiles, room aliases, public room
//! lists and remote users' end-to-end keys. Each asks the server named in the ID, within a
//! deadline, and turns its answer (or silence, or garbage) into this server's errors.

use std::time::Duration;

use futures_util::StreamExt;
use http::{Method, StatusCode};
use serde_json::{Map, Value, json};

use super::client::RequestParts;
use super::encode;
use crate::app::App;
use crate::error::{Error, Result};

/// How long a client waits for a remote profile, alias or room list (Synapse's default
/// federation query timeout is of this order; a hung peer must not hold the client).
pub const QUERY_TIMEOUT: Duration = Duration::from_secs(10);
/// The most read of an answer to a query (a large server's room list page, or keys of
/// many devices, fit easily).
const MAX_QUERY_RESPONSE: usize = 16 * 1024 * 1024;

/// A signed request to `destination`, answered within `timeout`. Transport failures are
/// `Error::Unknown`; a refused destination (`federation_domain_whitelist`) `Forbidden`.
pub async fn ask(
    app: &App,
    destination: &str,
    method: Method,
    path: &str,
    body: Option<&Value>,
    timeout: Duration,
) -> Result<(StatusCode, Value)> {
    let parts = RequestParts {
        origin: app.config.server_name.as_str(),
        key: &app.signing_key,
        destination,
        method,
        path_and_query: path,
        body,
    };
    let req = app.federation.request_limited(parts, MAX_QUERY_RESPONSE);
    tokio::time::timeout(timeout, req)
        .await
        .map_err(|_| Error::Unknown(format!("{destination} did not answer in time")))?
}

/// What a client is told when a remote query fails: the remote's 404 and 403 pass through
/// (as Synapse passes remote errors through), anything else is 502 naming `what`.
fn client_error(destination: &str, what: &str, status: StatusCode, body: &Value) -> Error {
    let msg = body["error"].as_str().unwrap_or("").to_string();
    match status {
        StatusCode::NOT_FOUND => Error::NotFound(if msg.is_empty() { what.into() } else { msg }),
        StatusCode::FORBIDDEN => Error::Forbidden(msg),
        _ => Error::BadGateway(format!("Failed to fetch {what} from {destination}: {status}")),
    }
}

/// Ask and require a 200 with a JSON object; transport failures become 502 (a refused
/// destination stays 403).
async fn query_object(
    app: &App,
    destination: &str,
    method: Method,
    path: &str,
    body: Option<&Value>,
    what: &str,
) -> Result<Map<String, Value>> {
    let (status, v) = match ask(app, destination, method, path, body, QUERY_TIMEOUT).await {
        Ok(r) => r,
        Err(Error::Forbidden(m)) => return Err(Error::Forbidden(m)),
        Err(e) => {
            tracing::info!(%destination, error = %e, "federation query failed");
            return Err(Error::BadGateway(format!("Failed to fetch {what} from {destination}")));
        }
    };
    if !status.is_success() {
        return Err(client_error(destination, what, status, &v));
    }
    match v {
        Value::Object(m) => Ok(m),
        _ => Err(Error::BadGateway(format!("{destination} answered garbage for {what}"))),
    }
}

/// A remote user's profile (`field`: one of `displayname`, `avatar_url`, or all). Only
/// string values are kept: a remote cannot make us serve other shapes.
pub async fn profile(app: &App, user_id: &ruma::UserId, field: Option<&str>) -> Result<Value> {
    let destination = user_id.server_name().as_str();
    let mut path =
        format!("/_matrix/federation/v1/query/profile?user_id={}", encode(user_id.as_str()));
    if let Some(f) = field {
        path.push_str(&format!("&field={}", encode(f)));
    }
    let got = query_object(app, destination, Method::GET, &path, None, "profile").await?;
    let mut out = Map::new();
    for key in ["displayname", "avatar_url"] {
        if field.is_none_or(|f| f == key)
            && let Some(Value::String(s)) = got.get(key)
        {
            out.insert(key.into(), json!(s));
        }
    }
    Ok(Value::Object(out))
}

/// The room a remote alias points at: `{room_id, servers}`.
pub async fn directory(app: &App, alias: &ruma::RoomAliasId) -> Result<Value> {
    let destination = alias.server_name().as_str();
    let path =
        format!("/_matrix/federation/v1/query/directory?room_alias={}", encode(alias.as_str()));
    let got = query_object(app, destination, Method::GET, &path, None, "room alias").await?;
    let room_id = got
        .get("room_id")
        .and_then(Value::as_str)
        .filter(|r| ruma::RoomId::parse(*r).is_ok())
        .ok_or_else(|| {
            Error::BadGateway(format!("{destination} answered garbage for the alias"))
        })?;
    let servers: Vec<&str> = got
        .get("servers")
        .and_then(Value::as_array)
        .map(|s| s.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    Ok(json!({"room_id": room_id, "servers": servers}))
}

/// A remote server's public room list. With a search filter (`body`), POST as Synapse
/// does; else GET with `limit` and `since`.
pub async fn public_rooms(
    app: &App,
    server: &str,
    limit: Option<u64>,
    since: Option<&str>,
    body: Option<&Value>,
) -> Result<Value> {
    let path = "/_matrix/federation/v1/publicRooms";
    let got = match body {
        Some(b) => query_object(app, server, Method::POST, path, Some(b), "room list").await?,
        None => {
            let mut q = vec![];
            if let Some(l) = limit {
                q.push(format!("limit={l}"));
            }
            if let Some(s) = since {
                q.push(format!("since={}", encode(s)));
            }
            let full =
                if q.is_empty() { path.to_string() } else { format!("{path}?{}", q.join("&")) };
            query_object(app, server, Method::GET, &full, None, "room list").await?
        }
    };
    if !got.get("chunk").is_some_and(Value::is_array) {
        return Err(Error::BadGateway(format!("{server} answered garbage for its room list")));
    }
    Ok(Value::Object(got))
}

/// A `failures` entry for a server a key query could not reach, in Synapse's shape.
pub fn failure(e: &Error) -> Value {
    match e {
        Error::Forbidden(_) => json!({"status": 403, "message": "Federation Denied"}),
        other => json!({"status": 503, "message": other.to_string()}),
    }
}

/// Servers a key query asks at the same time (a client may name thousands).
const FAN_OUT: usize = 20;

/// POST `body` to `path` on each server, `FAN_OUT` at a time, all within `timeout`. A
/// server that fails, answers an error or answers something that is not a JSON object, or
/// is not reached in time, gets an `Err`.
pub async fn fan_out(
    app: &App,
    path: &str,
    requests: Vec<(String, Value)>,
    timeout: Duration,
) -> Vec<(String, Result<Map<String, Value>>)> {
    let deadline = tokio::time::Instant::now() + timeout;
    let calls = requests.into_iter().map(|(server, body)| async move {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        let r = match ask(app, &server, Method::POST, path, Some(&body), left).await {
            Ok((status, Value::Object(m))) if status.is_success() => Ok(m),
            Ok((status, v)) if !status.is_success() => Err(Error::Unknown(format!(
                "{server} answered {status}: {}",
                v["error"].as_str().unwrap_or("")
            ))),
            Ok(_) => Err(Error::Unknown(format!("{server} answered garbage"))),
            Err(e) => Err(e),
        };
        if let Err(e) = &r {
            tracing::info!(%server, %path, error = %e, "federation key request failed");
        }
        (server, r)
    });
    futures_util::stream::iter(calls).buffer_unordered(FAN_OUT).collect().await
}

/// Whether `user_id` belongs to `server` (remote answers are trusted only for their own
/// users).
pub fn is_user_of(user_id: &str, server: &str) -> bool {
    ruma::UserId::parse(user_id).is_ok_and(|u| u.server_name().as_str() == server)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_values_are_percent_encoded_as_utf8() {
        assert_eq!(encode("@a:b.c"), "%40a%3Ab%2Ec");
        assert_eq!(encode("#\u{e9}:x"), "%23%C3%A9%3Ax");
    }

    #[test]
    fn remote_errors_map_to_client_errors() {
        let e = client_error("x", "profile", StatusCode::NOT_FOUND, &json!({"error": "nope"}));
        assert_eq!((e.status().as_u16(), e.errcode()), (404, "M_NOT_FOUND"));
        let e = client_error("x", "profile", StatusCode::INTERNAL_SERVER_ERROR, &Value::Null);
        assert_eq!(e.status().as_u16(), 502);
        assert_eq!(failure(&Error::Forbidden("w".into()))["status"], 403);
        assert_eq!(failure(&Error::Unknown("down".into()))["status"], 503);
        assert!(is_user_of("@a:x.y:8448", "x.y:8448"));
        assert!(!is_user_of("@a:x.y", "z"));
        assert!(!is_user_of("garbage", "z"));
    }
}
