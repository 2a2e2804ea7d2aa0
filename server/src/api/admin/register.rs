//! Shared-secret registration (`/_synapse/admin/v1/register`), the protocol
//! `register_new_matrix_user` and `glia register-user` speak: fetch a nonce, then POST the
//! user with an HMAC-SHA1 over nonce, username, password and admin flag.

use std::sync::Arc;
use std::time::{Duration, Instant};

use hmac::{Hmac, KeyInit, Mac};
use serde_json::{Value, json};
use sha1::Sha1;

use crate::app::App;
use crate::error::{Error, Result, bad_json};
use crate::http::request::Req;
use crate::http::response::{Resp, ok};
use crate::users::{self as accounts, Registration};

/// Nonces expire after a minute, as in Synapse.
const NONCE_LIFETIME: Duration = Duration::from_secs(60);

fn secret(app: &App) -> Result<&str> {
    app.registration_shared_secret
        .as_deref()
        .ok_or_else(|| Error::BadJson("Shared secret registration is not enabled".into()))
}

pub async fn nonce(app: Arc<App>, _req: Req) -> Result<Resp> {
    secret(&app)?;
    let nonce = accounts::random_string(32);
    let mut nonces = app.registration_nonces.lock().map_err(|_| Error::internal("nonces"))?;
    let now = Instant::now();
    nonces.retain(|_, t| now.duration_since(*t) < NONCE_LIFETIME);
    nonces.insert(nonce.clone(), now);
    Ok(ok(&json!({"nonce": nonce})))
}

/// The MAC the client must send: hex HMAC-SHA1 of the NUL-joined fields.
pub fn mac(
    secret: &str,
    nonce: &str,
    user: &str,
    password: &str,
    admin: bool,
    user_type: Option<&str>,
) -> Vec<u8> {
    let mut m = Hmac::<Sha1>::new_from_slice(secret.as_bytes()).expect("HMAC takes any key length");
    m.update(nonce.as_bytes());
    m.update(b"\x00");
    m.update(user.as_bytes());
    m.update(b"\x00");
    m.update(password.as_bytes());
    m.update(b"\x00");
    m.update(if admin { b"admin" } else { b"notadmin" });
    if let Some(t) = user_type {
        m.update(b"\x00");
        m.update(t.as_bytes());
    }
    m.finalize().into_bytes().to_vec()
}

fn string_field<'a>(
    body: &'a serde_json::Map<String, Value>,
    key: &str,
) -> Result<Option<&'a str>> {
    match body.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.len() <= 512 && !s.contains('\0') => Ok(Some(s)),
        Some(_) => Err(bad_json(format!("Invalid {key}"))),
    }
}

pub async fn register(app: Arc<App>, req: Req) -> Result<Resp> {
    let secret = secret(&app)?.to_string();
    let body = req.json_object(false)?;
    let nonce = string_field(&body, "nonce")?.ok_or_else(|| bad_json("nonce must be specified"))?;
    // A nonce is consumed by the first attempt, right or wrong, so it cannot be replayed.
    let known = app
        .registration_nonces
        .lock()
        .map_err(|_| Error::internal("nonces"))?
        .remove(nonce)
        .is_some_and(|t| t.elapsed() < NONCE_LIFETIME);
    if !known {
        return Err(Error::Unknown("unrecognised nonce".into()));
    }
    let username =
        string_field(&body, "username")?.ok_or_else(|| bad_json("username must be specified"))?;
    let password =
        string_field(&body, "password")?.ok_or_else(|| bad_json("password must be specified"))?;
    let admin = match body.get("admin") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(_) => return Err(bad_json("admin must be a boolean")),
    };
    let user_type = string_field(&body, "user_type")?;
    let displayname = string_field(&body, "displayname")?.map(str::to_string);
    let given = string_field(&body, "mac")?.ok_or_else(|| bad_json("mac must be specified"))?;
    let given = hex::decode(given).map_err(|_| Error::Forbidden("HMAC incorrect".into()))?;
    let expected = mac(&secret, nonce, username, password, admin, user_type);
    if !constant_time_eq(&expected, &given) {
        return Err(Error::Forbidden("HMAC incorrect".into()));
    }
    super::super::client::register::check_password_policy(&app, password)?;
    let user_id =
        accounts::user_id_for_localpart(&username.to_lowercase(), &app.config.server_name)?;
    let r = Registration {
        user_id: user_id.clone(),
        password: Some(password.to_string()),
        is_admin: admin,
        is_guest: false,
        displayname,
    };
    let (_, session) =
        accounts::register(&app, r, Some((None, None)), req.client_ip.to_string()).await?;
    let session = session.ok_or_else(|| Error::internal("no session after registration"))?;
    Ok(ok(&json!({
        "user_id": user_id,
        "access_token": session.access_token,
        "device_id": session.device_id,
        "home_server": app.config.server_name.as_str(),
    })))
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mac_matches_synapse_construction() {
        // hmac.new(b"secret", b"abc\x00alice\x00pw\x00notadmin", hashlib.sha1).hexdigest()
        let m = hex::encode(mac("secret", "abc", "alice", "pw", false, None));
        assert_eq!(m, "42e32623fe124933c326f9d2d67ff7c617915a10");
        assert_ne!(
            mac("secret", "abc", "alice", "pw", true, None),
            mac("secret", "abc", "alice", "pw", false, None)
        );
    }
}
