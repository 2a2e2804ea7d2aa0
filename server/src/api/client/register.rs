//! Account registration: `POST /register` (user-interactive auth), `/register/available`.

use std::sync::Arc;

use serde_json::{Value, json};

use crate::app::App;
use crate::config::PasswordPolicy;
use crate::error::{Error, Result, bad_json, invalid_param};
use crate::http::request::Req;
use crate::http::response::{Resp, ok};
use crate::http::router::Router;
use crate::store::{registration_tokens, users};
use crate::users::{self as accounts, Registration, uia};

pub fn routes(r: &mut Router) {
    r.post("/_matrix/client/{v}/register", register);
    r.get("/_matrix/client/{v}/register/available", available);
    r.get("/_matrix/client/v1/register/m.login.registration_token/validity", token_validity);
}

/// Longest username or password accepted, as in Synapse.
const MAX_FIELD: usize = 512;

fn opt_string(body: &serde_json::Map<String, Value>, key: &str) -> Result<Option<String>> {
    match body.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.len() <= MAX_FIELD => Ok(Some(s.clone())),
        Some(Value::String(_)) => Err(invalid_param(format!("'{key}' is too long"))),
        Some(_) => Err(bad_json(format!("'{key}' must be a string"))),
    }
}

/// Enforce `password_config.policy` on a new password (registration, password change,
/// admin-created users), with Synapse's rules, order, messages and errcodes.
pub fn check_password_policy(app: &App, password: &str) -> Result<()> {
    policy_violation(&app.config.password_policy, password)
        .map_or(Ok(()), |(msg, code)| Err(Error::PasswordRefused(msg, code)))
}

/// A policy rule: whether it is on, the characters it wants, their name, its errcode.
type PolicyRule = (bool, fn(char) -> bool, &'static str, &'static str);

/// The first rule of `policy` that `password` breaks: the message and errcode.
pub fn policy_violation(policy: &PasswordPolicy, password: &str) -> Option<(String, &'static str)> {
    if password.chars().count() < policy.minimum_length {
        return Some((
            format!("The password must be at least {} characters long", policy.minimum_length),
            "M_PASSWORD_TOO_SHORT",
        ));
    }
    let rules: [PolicyRule; 4] = [
        (policy.require_digit, |c| c.is_numeric(), "digit", "M_PASSWORD_NO_DIGIT"),
        (policy.require_symbol, |c| !c.is_ascii_alphanumeric(), "symbol", "M_PASSWORD_NO_SYMBOL"),
        (
            policy.require_uppercase,
            |c| c.is_ascii_uppercase(),
            "uppercase letter",
            "M_PASSWORD_NO_UPPERCASE",
        ),
        (
            policy.require_lowercase,
            |c| c.is_ascii_lowercase(),
            "lowercase letter",
            "M_PASSWORD_NO_LOWERCASE",
        ),
    ];
    rules
        .iter()
        .find(|(on, has, _, _)| *on && !password.chars().any(has))
        .map(|(_, _, what, code)| (format!("The password must include at least one {what}"), *code))
}

/// What a registration's login part asks for: `None` when `inhibit_login`, else the
/// device ID and the device's display name.
type Login = Option<(Option<String>, Option<String>)>;

fn login_params(body: &serde_json::Map<String, Value>) -> Result<Login> {
    let device_id = opt_string(body, "device_id")?;
    let display_name = opt_string(body, "initial_device_display_name")?;
    let inhibit_login = match body.get("inhibit_login") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(_) => return Err(bad_json("'inhibit_login' must be a boolean")),
    };
    Ok((!inhibit_login).then_some((device_id, display_name)))
}

async fn register(app: Arc<App>, req: Req) -> Result<Resp> {
    let kind = req.query("kind").unwrap_or("user");
    let body = req.json_object(true)?;
    let login = login_params(&body)?;
    if body.get("type").and_then(Value::as_str) == Some(super::appservice::LOGIN_TYPE) {
        return super::appservice::register(&app, &req, &body, login).await;
    }
    // `rc_registration`, per client address: looked at first, counted once an account exists.
    let (limits, ip) = (app.clone(), req.client_ip.to_string());
    let rl = &limits.ratelimits;
    rl.check(&rl.registration, &ip, rl.config.registration, false)?;
    let resp = match kind {
        "guest" => register_guest(app, req, login).await,
        "user" => register_user(app, req, body).await,
        other => Err(invalid_param(format!("Invalid kind: {other}"))),
    }?;
    rl.record(&rl.registration, &ip, rl.config.registration);
    Ok(resp)
}

async fn register_guest(app: Arc<App>, req: Req, login: Login) -> Result<Resp> {
    if !app.config.allow_guest_access {
        // Synapse answers M_FORBIDDEN here; M_GUEST_ACCESS_FORBIDDEN is for guests' requests.
        return Err(Error::Forbidden("Guest access is disabled".into()));
    }
    // Guests get numeric localparts, which normal registration refuses (as in Synapse).
    let mut attempt = 0;
    let (user_id, session) = loop {
        let n = app.db.read(users::count).await? + 1 + attempt;
        let user_id = format!("@{n}:{}", app.config.server_name);
        let r = Registration {
            user_id: user_id.clone(),
            password: None,
            is_admin: false,
            is_guest: true,
            displayname: None,
        };
        match accounts::register(&app, r, login.clone(), req.client_ip.to_string()).await {
            Ok((_, s)) => break (user_id, s),
            Err(Error::UserInUse(_)) if attempt < 100 => attempt += 1,
            Err(e) => return Err(e),
        }
    };
    Ok(ok(&response(&app, &user_id, session)))
}

/// `username` as a new user ID, refused when taken by anyone but `assigned` (the account
/// this UIA session already made).
async fn check_username(app: &App, username: &str, assigned: Option<&str>) -> Result<String> {
    let id = accounts::user_id_for_localpart(&username.to_lowercase(), &app.config.server_name)?;
    app.appservices.check_user_not_exclusive(&id, None)?;
    let check = id.clone();
    if assigned != Some(id.as_str()) && app.db.read(move |c| users::exists(c, &check)).await? {
        return Err(Error::UserInUse("User ID already taken.".into()));
    }
    Ok(id)
}

async fn register_user(
    app: Arc<App>,
    req: Req,
    mut body: serde_json::Map<String, Value>,
) -> Result<Resp> {
    if !app.config.enable_registration {
        return Err(Error::Forbidden("Registration has been disabled".into()));
    }
    let session = body.get("auth").and_then(|a| a.get("session")).and_then(Value::as_str);
    let earlier = session.and_then(|s| app.uia.registration_state(s)).unwrap_or_default();
    // Username and password problems are reported before authentication, as Synapse does,
    // so clients learn of a taken name on their first request.
    if let Some(u) = opt_string(&body, "username")? {
        check_username(&app, &u, earlier.registered_user.as_deref()).await?;
    }
    // The password never rests in the session in the clear: only its hash is kept.
    let password = opt_string(&body, "password")?;
    body.remove("password");
    match &password {
        Some(p) => check_password_policy(&app, p)?,
        // A display name alone would wipe the session's earlier parameters (Synapse works
        // around the same client bug).
        None => _ = body.remove("initial_device_display_name"),
    }
    let auth = body.remove("auth");
    let flow = registration_flow(&app);
    let ip = req.client_ip.to_string();
    let (done, session, state) =
        match app.uia.check_registration(&app, auth.as_ref(), &[&flow], &ip, body).await {
            Ok(r) => r,
            Err(Error::Uia(challenge)) => {
                if let (Some(id), Some(p)) = (challenge.get("session"), password)
                    && let Some(id) = id.as_str()
                    && app.uia.registration_state(id).is_some_and(|r| r.password_hash.is_none())
                {
                    let hash = accounts::hash_password(p).await?;
                    app.uia.update_registration(id, |r| r.password_hash = Some(hash));
                }
                return Err(Error::Uia(challenge));
            }
            Err(e) => return Err(e),
        };
    let login = login_params(&state.params)?;
    let result = match state.registered_user {
        Some(user_id) => login_again(&app, &user_id, login, ip).await,
        None => {
            let hash = match password {
                Some(p) => accounts::hash_password(p).await?,
                None => state
                    .password_hash
                    .ok_or_else(|| Error::MissingParam("Missing params: password".into()))?,
            };
            let user_id = match opt_string(&state.params, "username")? {
                Some(u) => check_username(&app, &u, None).await?,
                None => accounts::user_id_for_localpart(
                    &accounts::random_string(12).to_lowercase(),
                    &app.config.server_name,
                )?,
            };
            let r = Registration {
                user_id: user_id.clone(),
                password: None,
                is_admin: false,
                is_guest: false,
                displayname: None,
            };
            let created = accounts::register_hashed(&app, r, Some(hash), login, ip).await;
            created.map(|(_, s)| {
                app.uia
                    .update_registration(&session, |r| r.registered_user = Some(user_id.clone()));
                ok(&response(&app, &user_id, s))
            })
        }
    };
    // The reserved use of the token counts once the account exists; otherwise it is freed.
    if let Some(token) = done.registration_token {
        let created = result.is_ok();
        app.db
            .write(move |c| {
                if created {
                    registration_tokens::complete(c, &token)
                } else {
                    registration_tokens::release(c, &token)
                }
            })
            .await?;
    }
    result
}

/// A UIA session completed again after it made its account: the same account, logged in
/// anew unless `inhibit_login`.
async fn login_again(app: &App, user_id: &str, login: Login, ip: String) -> Result<Resp> {
    let session = match login {
        Some((device_id, display_name)) => {
            let uid = user_id.to_string();
            let row = app.db.read(move |c| users::get(c, &uid)).await?;
            let nid = row.ok_or_else(|| Error::Forbidden("The account is gone".into()))?.nid;
            Some(accounts::new_session(app, nid, device_id, display_name, ip).await?)
        }
        None => None,
    };
    Ok(ok(&response(app, user_id, session)))
}

/// The one registration flow, as Synapse builds it: `m.login.dummy`, preceded by
/// `m.login.recaptcha` when `enable_registration_captcha` is on, preceded by
/// `m.login.registration_token` when `registration_requires_token` is on.
pub fn registration_flow(app: &App) -> Vec<&'static str> {
    let mut flow = vec![];
    if app.config.registration_requires_token {
        flow.push(uia::REGISTRATION_TOKEN);
    }
    if app.config.enable_registration_captcha {
        flow.push(uia::RECAPTCHA);
    }
    flow.push(uia::DUMMY);
    flow
}

/// `GET /_matrix/client/v1/register/m.login.registration_token/validity?token=`: whether
/// a token may be used now. 403 when registration does not take tokens (as Synapse).
async fn token_validity(app: Arc<App>, req: Req) -> Result<Resp> {
    if !app.config.registration_requires_token {
        return Err(Error::Forbidden("Registration tokens are not enabled".into()));
    }
    let token =
        req.query("token").ok_or_else(|| Error::MissingParam("Missing token".into()))?.to_string();
    let now = crate::store::now_ms();
    let valid = app.db.read(move |c| registration_tokens::is_usable(c, &token, now)).await?;
    Ok(ok(&json!({"valid": valid})))
}

fn response(app: &App, user_id: &str, session: Option<accounts::Session>) -> Value {
    let mut body = json!({"user_id": user_id, "home_server": app.config.server_name.as_str()});
    if let Some(s) = session {
        body["access_token"] = json!(s.access_token);
        body["device_id"] = json!(s.device_id);
    }
    body
}

async fn available(app: Arc<App>, req: Req) -> Result<Resp> {
    if !app.config.enable_registration {
        return Err(Error::Forbidden("Registration has been disabled".into()));
    }
    let username = req
        .query("username")
        .ok_or_else(|| Error::MissingParam("Missing username".into()))?
        .to_lowercase();
    let user_id = accounts::user_id_for_localpart(&username, &app.config.server_name)?;
    if app.db.read(move |c| users::exists(c, &user_id)).await? {
        return Err(Error::UserInUse("User ID already taken.".into()));
    }
    Ok(ok(&json!({"available": true})))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn password_policy_rules_in_synapse_order() {
        let off = PasswordPolicy::default();
        assert_eq!(policy_violation(&off, ""), None, "no policy: anything goes");
        let p = PasswordPolicy {
            minimum_length: 6,
            require_digit: true,
            require_symbol: true,
            require_lowercase: true,
            require_uppercase: true,
        };
        let code = |pw: &str| policy_violation(&p, pw).map(|(_, c)| c);
        assert_eq!(code("aB1!"), Some("M_PASSWORD_TOO_SHORT"));
        assert_eq!(code("äöüßé"), Some("M_PASSWORD_TOO_SHORT"), "counts characters");
        assert_eq!(code("abcdeF!"), Some("M_PASSWORD_NO_DIGIT"));
        assert_eq!(code("abcdeF1"), Some("M_PASSWORD_NO_SYMBOL"));
        assert_eq!(code("abcde1!"), Some("M_PASSWORD_NO_UPPERCASE"));
        assert_eq!(code("ABCDE1!"), Some("M_PASSWORD_NO_LOWERCASE"));
        assert_eq!(code("abcdE1 "), None, "a space is a symbol");
        assert_eq!(code("abcdE1ü"), None, "so is a non-ASCII letter, as in Synapse");
        let (msg, _) = policy_violation(&p, "a").expect("short");
        assert_eq!(msg, "The password must be at least 6 characters long");
    }
}
