//! Accounts: password hashing, user ID rules, sessions (device + access token).

pub mod admin;
pub mod captcha;
pub mod uia;

use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use argon2::{Argon2, PasswordHash};
use rand::RngExt;
use rand::distr::Alphanumeric;
use ruma::{ServerName, UserId};

use crate::app::App;
use crate::error::{Error, Result};
use crate::http::auth::hash_token;
use crate::store::{self, devices, now_ms, users};

/// Hash a password with argon2id (the crate's defaults: 19 MiB, 2 passes), off the runtime.
pub async fn hash_password(password: String) -> Result<String> {
    on_hashing_thread(move || {
        Argon2::default()
            .hash_password(password.as_bytes())
            .map(|h| h.to_string())
            .map_err(|e| Error::internal(format!("hashing password: {e}")))
    })
    .await?
}

pub async fn verify_password(hash: String, password: String) -> bool {
    on_hashing_thread(move || {
        PasswordHash::new(&hash)
            .map(|h| Argon2::default().verify_password(password.as_bytes(), &h).is_ok())
            .unwrap_or(false)
    })
    .await
    .unwrap_or(false)
}

type HashJob = Box<dyn FnOnce() + Send>;

/// Every argon2 hash runs on one thread, one at a time. Each hash allocates 19 MiB; on the
/// blocking pool every thread's malloc arena kept its own freed copy (20 registrations left
/// 300 MB resident, 20 concurrent ones 680 MB). On one thread the one copy is reused.
/// A hash takes about 50 ms in a release build, so this serves about 20 logins a second.
async fn on_hashing_thread<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Result<T> {
    static QUEUE: std::sync::OnceLock<Option<std::sync::Mutex<std::sync::mpsc::Sender<HashJob>>>> =
        std::sync::OnceLock::new();
    let queue = QUEUE.get_or_init(|| {
        let (tx, rx) = std::sync::mpsc::channel::<HashJob>();
        std::thread::Builder::new()
            .name("glia-argon2".into())
            // A panicking job loses its answer (the caller gets an error), not the thread.
            .spawn(move || {
                for job in rx {
                    let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(job));
                }
            })
            .ok()
            .map(|_| std::sync::Mutex::new(tx))
    });
    let queue = queue.as_ref().ok_or_else(|| Error::internal("no password hashing thread"))?;
    let (done_tx, done_rx) = tokio::sync::oneshot::channel();
    let job: HashJob = Box::new(move || {
        let _ = done_tx.send(f());
    });
    queue
        .lock()
        .map_err(|_| Error::internal("password hashing queue poisoned"))?
        .send(job)
        .map_err(|_| Error::internal("password hashing thread stopped"))?;
    done_rx.await.map_err(|_| Error::internal("password hashing thread dropped a job"))
}

pub fn random_string(len: usize) -> String {
    rand::rng().sample_iter(Alphanumeric).take(len).map(char::from).collect()
}

/// Device IDs as Synapse makes them: ten upper-case letters.
pub fn new_device_id() -> String {
    let mut rng = rand::rng();
    (0..10).map(|_| (b'A' + rng.random_range(0..26u8)) as char).collect()
}

/// Access tokens: a recognisable prefix and 192 bits of randomness.
pub fn new_access_token() -> String {
    format!("glia_{}", random_string(32))
}

/// Check a requested localpart as Synapse does for registration and build the user ID.
pub fn user_id_for_localpart(localpart: &str, server: &ServerName) -> Result<String> {
    let invalid = |m: &str| Error::InvalidUsername(m.to_string());
    if localpart.is_empty() {
        return Err(invalid("User ID cannot be empty"));
    }
    if !localpart
        .bytes()
        .all(|b| matches!(b, b'a'..=b'z' | b'0'..=b'9' | b'.' | b'_' | b'=' | b'-' | b'/' | b'+'))
    {
        return Err(invalid("User ID can only contain characters a-z, 0-9, or '=_-./+'"));
    }
    if localpart.starts_with('_') {
        return Err(invalid("User ID may not begin with _"));
    }
    if localpart.bytes().all(|b| b.is_ascii_digit()) {
        return Err(invalid("Numeric user IDs are reserved for guest users."));
    }
    let user_id = format!("@{localpart}:{server}");
    if user_id.len() > 255 {
        return Err(invalid("User ID may not be longer than 255 characters"));
    }
    UserId::parse(&user_id).map_err(|e| invalid(&format!("Invalid user ID: {e}")))?;
    Ok(user_id)
}

/// Resolve what a client typed at login (`alice` or `@alice:server`) to a local user ID.
/// Glia stores user IDs in lower case (registration folds them), so the lookup is
/// case-insensitive as in Synapse.
pub fn local_user_id(app: &App, input: &str) -> Option<String> {
    let full = if input.starts_with('@') {
        input.to_lowercase()
    } else {
        format!("@{}:{}", input.to_lowercase(), app.config.server_name)
    };
    let id = UserId::parse(&full).ok()?;
    (id.server_name() == app.config.server_name).then(|| id.to_string())
}

pub struct Session {
    pub access_token: String,
    pub device_id: String,
}

/// Create (or reuse) a device for the user and give it a fresh access token.
pub async fn new_session(
    app: &App,
    user_nid: i64,
    device_id: Option<String>,
    display_name: Option<String>,
    ip: String,
) -> Result<Session> {
    let device_id = device_id.unwrap_or_else(new_device_id);
    let access_token = new_access_token();
    let hash = hash_token(&access_token);
    let dev = device_id.clone();
    app.db
        .write(move |c| {
            let now = now_ms();
            let nid = devices::upsert(c, user_nid, &dev, display_name.as_deref(), Some(&ip), now)?;
            devices::replace_tokens(c, nid, &hash, now)
        })
        .await?;
    Ok(Session { access_token, device_id })
}

/// Register a local user (already validated) and, unless `inhibit_login`, log them in.
pub struct Registration {
    pub user_id: String,
    pub password: Option<String>,
    pub is_admin: bool,
    pub is_guest: bool,
    pub displayname: Option<String>,
}

pub async fn register(
    app: &App,
    r: Registration,
    login: Option<(Option<String>, Option<String>)>,
    ip: String,
) -> Result<(i64, Option<Session>)> {
    let hash = match r.password {
        Some(p) => Some(hash_password(p).await?),
        None => None,
    };
    // Synapse's default display name is the localpart.
    let displayname =
        r.displayname.or_else(|| UserId::parse(&r.user_id).ok().map(|u| u.localpart().to_string()));
    let user_id = r.user_id.clone();
    let nid = app
        .db
        .write(move |c| {
            store::users::insert(
                c,
                &users::NewUser {
                    user_id: &user_id,
                    password_hash: hash.as_deref(),
                    is_admin: r.is_admin,
                    is_guest: r.is_guest,
                    displayname: displayname.as_deref(),
                },
                now_ms(),
            )
        })
        .await?;
    tracing::info!(user_id = %r.user_id, admin = r.is_admin, guest = r.is_guest, "registered user");
    let session = match login {
        Some((device_id, display_name)) => {
            Some(new_session(app, nid, device_id, display_name, ip).await?)
        }
        None => None,
    };
    Ok((nid, session))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn localpart_rules_match_synapse() {
        let s = ServerName::parse("example.org").expect("name");
        assert_eq!(user_id_for_localpart("alice", &s).expect("ok"), "@alice:example.org");
        assert!(user_id_for_localpart("a.b_c=d-e/f+g", &s).is_ok());
        for bad in ["", "Alice", "al ice", "al:ice", "_alice", "12345", "ålice", &"a".repeat(250)]
        {
            let e = user_id_for_localpart(bad, &s).expect_err(bad);
            assert_eq!(e.errcode(), "M_INVALID_USERNAME", "{bad}");
        }
    }

    #[test]
    fn tokens_and_devices_look_right() {
        assert_ne!(new_access_token(), new_access_token());
        let d = new_device_id();
        assert_eq!(d.len(), 10);
        assert!(d.bytes().all(|b| b.is_ascii_uppercase()));
    }
}
