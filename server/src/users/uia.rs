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
use crate::store::users;

const SESSION_LIFETIME: Duration = Duration::from_secs(15 * 60);

pub const DUMMY: &str = "m.login.dummy";
pub const PASSWORD: &str = "m.login.password";

#[derive(Default)]
pub struct UiaSessions {
    sessions: Mutex<HashMap<String, Session>>,
}

struct Session {
    completed: Vec<String>,
    created: Instant,
}

impl UiaSessions {
    fn new_session(&self) -> String {
        let id = super::random_string(24);
        if let Ok(mut s) = self.sessions.lock() {
            let now = Instant::now();
            s.retain(|_, v| now.duration_since(v.created) < SESSION_LIFETIME);
            s.insert(id.clone(), Session { completed: vec![], created: now });
        }
        id
    }

    fn completed(&self, session: &str) -> Option<Vec<String>> {
        let s = self.sessions.lock().ok()?;
        s.get(session)
            .filter(|v| v.created.elapsed() < SESSION_LIFETIME)
            .map(|v| v.completed.clone())
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

    fn finish(&self, session: &str) {
        if let Ok(mut s) = self.sessions.lock() {
            s.remove(session);
        }
    }

    fn challenge(flows: &[&[&str]], session: &str, completed: &[String]) -> Value {
        let flows: Vec<Value> = flows.iter().map(|f| json!({"stages": f})).collect();
        json!({"flows": flows, "params": {}, "session": session, "completed": completed})
    }

    /// Ok when `auth` completes one of `flows`; otherwise the 401 that tells the client
    /// what is left. `who` is the authenticated caller, for stages that re-check identity.
    pub async fn check(
        &self,
        app: &App,
        auth: Option<&Value>,
        flows: &[&[&str]],
        who: Option<&User>,
    ) -> Result<()> {
        let Some(auth) = auth.filter(|a| a.is_object()) else {
            let session = self.new_session();
            return Err(Error::Uia(Self::challenge(flows, &session, &[])));
        };
        let session = match auth.get("session") {
            None => self.new_session(),
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
            return Err(Error::Uia(Self::challenge(flows, &session, &done)));
        };
        if !flows.iter().any(|f| f.contains(&stage)) {
            let mut body =
                Self::challenge(flows, &session, &self.completed(&session).unwrap_or_default());
            body["errcode"] = json!("M_UNRECOGNIZED");
            body["error"] = json!(format!("Unsupported authentication type {stage}"));
            return Err(Error::Uia(body));
        }
        let passed = match stage {
            DUMMY => Ok(()),
            PASSWORD => check_password_stage(app, auth, who).await?,
            _ => Err("Unsupported authentication type".to_string()),
        };
        if let Err(msg) = passed {
            let mut body =
                Self::challenge(flows, &session, &self.completed(&session).unwrap_or_default());
            body["errcode"] = json!("M_FORBIDDEN");
            body["error"] = json!(msg);
            return Err(Error::Uia(body));
        }
        let done = self.complete(&session, stage);
        if flows.iter().any(|f| f.iter().all(|s| done.iter().any(|d| d == s))) {
            self.finish(&session);
            Ok(())
        } else {
            Err(Error::Uia(Self::challenge(flows, &session, &done)))
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
