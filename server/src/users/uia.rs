//! User-interactive authentication (spec: client-server API, "User-Interactive
//! Authentication API"). Sessions live in memory: they last minutes, and a restart only
//! makes a client start its flow again.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::app::App;
use crate::error::{Error, Result};
use crate::http::auth::User;
use crate::store::{registration_tokens, users};

const SESSION_LIFETIME: Duration = Duration::from_secs(15 * 60);

pub const DUMMY: &str = "m.login.dummy";
pub const PASSWORD: &str = "m.login.password";
/// Spec: "Token-authenticated registration" (`registration_requires_token`).
pub const REGISTRATION_TOKEN: &str = "m.login.registration_token";
/// Google reCAPTCHA (`enable_registration_captcha`), verified server-side.
pub const RECAPTCHA: &str = "m.login.recaptcha";

#[derive(Default)]
pub struct UiaSessions {
    sessions: Mutex<HashMap<String, Session>>,
    /// The operation (method and path) each session was started for.
    operations: Mutex<HashMap<String, String>>,
}

struct Session {
    completed: Vec<String>,
    created: Instant,
    /// The registration token one use of which this session holds (`pending`).
    registration_token: Option<String>,
    /// What a registration session remembers between its requests.
    registration: RegistrationState,
}

/// The parameters of a `/register` UIA session: a later request of the session may omit
/// them (spec: "the client may omit the other parameters"), and completing the session
/// again answers with the account it already made instead of `M_USER_IN_USE`.
#[derive(Clone, Debug, Default)]
pub struct RegistrationState {
    /// The request body, less `auth` and `password`, as last given non-empty.
    pub params: serde_json::Map<String, Value>,
    /// The argon2 hash of the password given on an earlier request.
    pub password_hash: Option<String>,
    /// The account this session created.
    pub registered_user: Option<String>,
}

/// What a completed UIA flow leaves to its caller.
#[derive(Debug, Default)]
pub struct Completed {
    /// A registration token reserved by the `m.login.registration_token` stage: the caller
    /// must `complete` it once the account exists, or `release` it if registration fails.
    pub registration_token: Option<String>,
    /// The session's ID.
    pub session: String,
}

impl Session {
    fn is_live(&self) -> bool {
        self.created.elapsed() < SESSION_LIFETIME
    }
}

impl UiaSessions {
    /// A fresh session, and the registration tokens held by sessions that expired (which
    /// the caller gives back).
    fn new_session(&self) -> (String, Vec<String>) {
        let id = super::random_string(24);
        let mut expired = vec![];
        if let Ok(mut s) = self.sessions.lock() {
            let now = Instant::now();
            s.retain(|_, v| {
                let live = v.is_live();
                if !live && let Some(t) = v.registration_token.take() {
                    expired.push(t);
                }
                live
            });
            s.insert(
                id.clone(),
                Session {
                    completed: vec![],
                    created: now,
                    registration_token: None,
                    registration: RegistrationState::default(),
                },
            );
        }
        (id, expired)
    }

    fn operation_of(&self, session: &str) -> Option<String> {
        self.operations.lock().ok()?.get(session).cloned()
    }

    fn bind_operation(&self, session: &str, operation: &str) {
        if let Ok(mut ops) = self.operations.lock() {
            // Bounded: sessions expire, and their bindings are dropped with them.
            if ops.len() > 10_000 {
                ops.clear();
            }
            ops.entry(session.to_string()).or_insert_with(|| operation.to_string());
        }
    }

    fn unbind_operation(&self, session: &str) {
        if let Ok(mut ops) = self.operations.lock() {
            ops.remove(session);
        }
    }

    /// A new session; tokens held by expired sessions are released on the way.
    async fn start_session(&self, app: &App) -> Result<String> {
        let (id, expired) = self.new_session();
        if !expired.is_empty() {
            app.db
                .write(move |c| {
                    for t in &expired {
                        registration_tokens::release(c, t)?;
                    }
                    Ok(())
                })
                .await?;
        }
        Ok(id)
    }

    fn reserved_token(&self, session: &str) -> Option<String> {
        self.sessions.lock().ok()?.get(session)?.registration_token.clone()
    }

    /// Record the token a session reserved; false if the session is gone.
    fn hold_token(&self, session: &str, token: &str) -> bool {
        match self.sessions.lock() {
            Ok(mut s) => match s.get_mut(session) {
                Some(v) => {
                    v.registration_token = Some(token.to_string());
                    true
                }
                None => false,
            },
            Err(_) => false,
        }
    }

    fn completed(&self, session: &str) -> Option<Vec<String>> {
        let s = self.sessions.lock().ok()?;
        s.get(session).filter(|v| v.is_live()).map(|v| v.completed.clone())
    }

    fn complete(&self, session: &str, stage: &str) -> Vec<String> {
        let mut done = vec![];
        if let Ok(mut s) = self.sessions.lock()
            && let Some(v) = s.get_mut(session)
        {
            if !v.completed.iter().any(|c| c == stage) {
                v.completed.push(stage.to_string());
            }
            done = v.completed.clone();
        }
        done
    }

    /// The session's outcome; `keep` leaves the session (without its token) in place.
    fn finish(&self, session: &str, keep: bool) -> Completed {
        let token = self.sessions.lock().ok().and_then(|mut s| {
            if keep {
                s.get_mut(session).and_then(|v| v.registration_token.take())
            } else {
                s.remove(session).and_then(|v| v.registration_token)
            }
        });
        Completed { registration_token: token, session: session.to_string() }
    }

    fn challenge(app: &App, flows: &[&[&str]], session: &str, completed: &[String]) -> Value {
        let mut params = json!({});
        if flows.iter().any(|f| f.contains(&RECAPTCHA)) {
            params[RECAPTCHA] = json!({"public_key": app.config.recaptcha_public_key});
        }
        let flows: Vec<Value> = flows.iter().map(|f| json!({"stages": f})).collect();
        json!({"flows": flows, "params": params, "session": session, "completed": completed})
    }

    /// Ok when `auth` completes one of `flows`; otherwise the 401 that tells the client
    /// what is left. `who` is the authenticated caller, for stages that re-check identity.
    /// `operation` names the request (method and path): a session started for one
    /// operation cannot be used to complete another (403), as the spec requires.
    pub async fn check(
        &self,
        app: &App,
        auth: Option<&Value>,
        flows: &[&[&str]],
        who: Option<&User>,
        operation: &str,
    ) -> Result<()> {
        let given = auth.and_then(|a| a.get("session")).and_then(Value::as_str).map(str::to_string);
        if let Some(id) = &given
            && let Some(bound) = self.operation_of(id)
            && bound != operation
        {
            return Err(Error::Forbidden(
                "Requested operation has changed during the UI authentication session.".into(),
            ));
        }
        let done = match self.check_stages(app, auth, flows, who, None, false).await {
            Ok(d) => d,
            Err(Error::Uia(body)) => {
                if let Some(id) = body.get("session").and_then(Value::as_str) {
                    self.bind_operation(id, operation);
                }
                return Err(Error::Uia(body));
            }
            Err(e) => return Err(e),
        };
        if let Some(id) = &given {
            self.unbind_operation(id);
        }
        if let Some(t) = done.registration_token {
            // Not a registration: nothing will use the token.
            app.db.write(move |c| registration_tokens::release(c, &t)).await?;
        }
        Ok(())
    }

    /// [`check`](Self::check) for `POST /register`, whose flows may hold the captcha and
    /// registration-token stages; `client_ip` is passed on to the captcha verifier.
    /// `params` is the request body less `auth` and `password`: empty, the session's
    /// earlier parameters stand; otherwise they replace them, as in Synapse. Completed
    /// registration sessions are kept (until they expire) so that a client repeating its
    /// last request gets the same account.
    pub async fn check_registration(
        &self,
        app: &App,
        auth: Option<&Value>,
        flows: &[&[&str]],
        client_ip: &str,
        params: serde_json::Map<String, Value>,
    ) -> Result<(Completed, String, RegistrationState)> {
        let given = auth.and_then(|a| a.get("session")).and_then(Value::as_str);
        if let Some(id) = given
            && self.completed(id).is_some()
        {
            self.remember_params(id, params.clone());
        }
        match self.check_stages(app, auth, flows, None, Some(client_ip), true).await {
            Ok(done) => {
                let id = done.session.clone();
                if Some(id.as_str()) != given {
                    self.remember_params(&id, params);
                }
                let state = self.registration_state(&id).unwrap_or_default();
                Ok((done, id, state))
            }
            Err(Error::Uia(body)) => {
                if let Some(id) = body.get("session").and_then(Value::as_str)
                    && Some(id) != given
                {
                    self.remember_params(id, params);
                }
                Err(Error::Uia(body))
            }
            Err(e) => Err(e),
        }
    }

    /// Keep non-empty `params` as the session's registration parameters.
    fn remember_params(&self, session: &str, params: serde_json::Map<String, Value>) {
        if !params.is_empty() {
            self.update_registration(session, |r| r.params = params);
        }
    }

    /// The registration parameters of a live session.
    pub fn registration_state(&self, session: &str) -> Option<RegistrationState> {
        let s = self.sessions.lock().ok()?;
        s.get(session).filter(|v| v.is_live()).map(|v| v.registration.clone())
    }

    /// Change what a registration session remembers (nothing if it is gone).
    pub fn update_registration(&self, session: &str, f: impl FnOnce(&mut RegistrationState)) {
        if let Ok(mut s) = self.sessions.lock()
            && let Some(v) = s.get_mut(session)
        {
            f(&mut v.registration);
        }
    }

    async fn check_stages(
        &self,
        app: &App,
        auth: Option<&Value>,
        flows: &[&[&str]],
        who: Option<&User>,
        client_ip: Option<&str>,
        keep: bool,
    ) -> Result<Completed> {
        let Some(auth) = auth.filter(|a| a.is_object()) else {
            let session = self.start_session(app).await?;
            return Err(Error::Uia(Self::challenge(app, flows, &session, &[])));
        };
        let session = match auth.get("session") {
            None => self.start_session(app).await?,
            Some(Value::String(s)) => {
                if self.completed(s).is_none() {
                    return Err(Error::Unknown("Unknown session ID".into()));
                }
                s.clone()
            }
            Some(_) => return Err(Error::BadJson("session must be a string".into())),
        };
        let Some(stage) = auth.get("type").and_then(Value::as_str) else {
            // Only the session: report progress so far.
            let done = self.completed(&session).unwrap_or_default();
            return Err(Error::Uia(Self::challenge(app, flows, &session, &done)));
        };
        // Like Synapse, a configured captcha can be solved even where no flow asks for it.
        let captcha_on = stage == RECAPTCHA && app.config.recaptcha_private_key.is_some();
        if !captcha_on && !flows.iter().any(|f| f.contains(&stage)) {
            let mut body = Self::challenge(
                app,
                flows,
                &session,
                &self.completed(&session).unwrap_or_default(),
            );
            body["errcode"] = json!("M_UNRECOGNIZED");
            body["error"] = json!(format!("Unsupported authentication type {stage}"));
            return Err(Error::Uia(body));
        }
        let passed: Result<(), (String, &str)> = match stage {
            DUMMY => Ok(()),
            PASSWORD => check_password_stage(app, auth, who).await?.map_err(|m| (m, "M_FORBIDDEN")),
            // A session that passed this stage (and may have used its token) passes again.
            REGISTRATION_TOKEN
                if self.completed(&session).is_some_and(|d| d.iter().any(|c| c == stage)) =>
            {
                Ok(())
            }
            REGISTRATION_TOKEN => self.check_token_stage(app, auth, &session).await?,
            RECAPTCHA => check_captcha_stage(app, auth, client_ip).await,
            _ => Err(("Unsupported authentication type".to_string(), "M_FORBIDDEN")),
        };
        if let Err((msg, errcode)) = passed {
            let mut body = Self::challenge(
                app,
                flows,
                &session,
                &self.completed(&session).unwrap_or_default(),
            );
            body["errcode"] = json!(errcode);
            body["error"] = json!(msg);
            return Err(Error::Uia(body));
        }
        let done = self.complete(&session, stage);
        if flows.iter().any(|f| f.iter().all(|s| done.iter().any(|d| d == s))) {
            Ok(self.finish(&session, keep))
        } else {
            Err(Error::Uia(Self::challenge(app, flows, &session, &done)))
        }
    }

    /// `m.login.registration_token`: reserve one use of a usable token for this session
    /// (once; a session that holds a use passes again). Expired, used-up and unknown
    /// tokens fail with `M_UNAUTHORIZED`, as in Synapse.
    async fn check_token_stage(
        &self,
        app: &App,
        auth: &Value,
        session: &str,
    ) -> Result<Result<(), (String, &'static str)>> {
        if self.reserved_token(session).is_some() {
            return Ok(Ok(()));
        }
        let Some(token) = auth.get("token").and_then(Value::as_str) else {
            return Ok(Err(("Registration token must be a string".into(), "M_INVALID_PARAM")));
        };
        let t = token.to_string();
        let now = crate::store::now_ms();
        if !app.db.write(move |c| registration_tokens::reserve(c, &t, now)).await? {
            return Ok(Err(("Invalid registration token".into(), "M_UNAUTHORIZED")));
        }
        if !self.hold_token(session, token) {
            let t = token.to_string();
            app.db.write(move |c| registration_tokens::release(c, &t)).await?;
            return Err(Error::Unknown("Unknown session ID".into()));
        }
        Ok(Ok(()))
    }
}

/// `m.login.recaptcha`: the client's `response`, checked with the verifier.
async fn check_captcha_stage(
    app: &App,
    auth: &Value,
    client_ip: Option<&str>,
) -> Result<(), (String, &'static str)> {
    let response = auth.get("response").and_then(Value::as_str).unwrap_or("");
    if response.is_empty() {
        return Err(("Captcha response is required".into(), "M_CAPTCHA_NEEDED"));
    }
    let secret = app.config.recaptcha_private_key.as_deref().unwrap_or("");
    let tls =
        crate::cli::http_client::native_tls_with(&app.config.test_setup.federation_custom_ca_list)
            .ok();
    match super::captcha::verify(
        tls,
        &app.config.recaptcha_siteverify_api,
        secret,
        response,
        client_ip,
    )
    .await
    {
        Ok(true) => Ok(()),
        Ok(false) => Err(("Captcha authentication failed".into(), "M_UNAUTHORIZED")),
        Err(e) => {
            tracing::warn!(error = %e, "cannot verify a captcha response");
            Err(("Captcha authentication failed".into(), "M_UNAUTHORIZED"))
        }
    }
}

/// `m.login.password` inside UIA: the password of the caller themselves. The inner error
/// is a failed attempt the client may retry (401); naming another user is refused outright
/// (403), as Synapse does.
async fn check_password_stage(
    app: &App,
    auth: &Value,
    who: Option<&User>,
) -> Result<Result<(), String>> {
    let Some(who) = who else {
        return Err(Error::Forbidden("Password authentication needs a logged-in user".into()));
    };
    let named = auth
        .get("identifier")
        .and_then(|i| i.get("user"))
        .or_else(|| auth.get("user"))
        .and_then(Value::as_str);
    if let Some(name) = named
        && super::local_user_id(app, name).as_deref() != Some(who.user_id.as_str())
    {
        return Err(Error::Forbidden("Invalid auth: that is not your account".into()));
    }
    let Some(password) = auth.get("password").and_then(Value::as_str) else {
        return Ok(Err("Missing password".into()));
    };
    let uid = who.user_id.clone();
    let row = app.db.read(move |c| users::get(c, &uid)).await?;
    let Some(hash) = row.and_then(|r| r.password_hash) else {
        return Ok(Err("Invalid username or password".into()));
    };
    if super::verify_password(hash, password.to_string()).await {
        Ok(Ok(()))
    } else {
        Ok(Err("Invalid username or password".into()))
    }
}
