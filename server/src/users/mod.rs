//! Accounts: password hashing, user ID rules, sessions (device + access token).

pub mod admin;
pub mod captcha;
pub mod uia;

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
    on_hashing_thread(move || hash_blocking(password.as_bytes())).await?
}

pub async fn verify_password(hash: String, password: String) -> bool {
    on_hashing_thread(move || verify_blocking(&hash, password.as_bytes())).await.unwrap_or(false)
}

thread_local! {
    /// argon2's working memory, kept by the hashing thread from one hash to the next.
    static ARGON2_MEMORY: std::cell::RefCell<Vec<argon2::Block>> =
        const { std::cell::RefCell::new(Vec::new()) };
}

/// argon2 into reused memory. Every block is written on the first pass before it is read,
/// so the previous hash's contents do not matter.
fn argon2_into(argon: &Argon2, password: &[u8], salt: &[u8], out: &mut [u8]) -> Result<()> {
    let blocks = argon.params().block_count();
    ARGON2_MEMORY.with(|m| {
        let mut m = m.borrow_mut();
        if m.len() < blocks {
            m.resize(blocks, argon2::Block::default());
        }
        let res = argon.hash_password_into_with_memory(password, salt, out, &mut m[..]);
        // A stored hash with a larger memory cost than ours: do not keep that much around.
        if m.len() > argon2::Params::DEFAULT_M_COST as usize {
            *m = Vec::new();
        }
        res.map_err(|e| Error::internal(format!("hashing password: {e}")))
    })
}

fn hash_blocking(password: &[u8]) -> Result<String> {
    use argon2::password_hash::phc::{Output, ParamsString, Salt};
    let params = argon2::Params::default();
    let argon = Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params.clone());
    let mut salt = [0u8; Salt::RECOMMENDED_LENGTH];
    rand::rng().fill(&mut salt[..]);
    let mut out = [0u8; argon2::Params::DEFAULT_OUTPUT_LEN];
    argon2_into(&argon, password, &salt, &mut out)?;
    let bad = |e: argon2::password_hash::phc::Error| Error::internal(format!("hashing: {e}"));
    let hash = PasswordHash {
        algorithm: argon2::Algorithm::Argon2id.ident(),
        version: Some(argon2::Version::V0x13.into()),
        params: ParamsString::try_from(&params).map_err(|e| Error::internal(e.to_string()))?,
        salt: Some(Salt::new(&salt).map_err(bad)?),
        hash: Some(Output::new(&out).map_err(bad)?),
    };
    Ok(hash.to_string())
}

fn verify_blocking(hash: &str, password: &[u8]) -> bool {
    use argon2::password_hash::phc::Output;
    let Ok(h) = PasswordHash::new(hash) else { return false };
    let (Some(salt), Some(expected)) = (&h.salt, &h.hash) else { return false };
    let Ok(algorithm) = argon2::Algorithm::try_from(h.algorithm.as_str()) else { return false };
    let version = match h.version.map(argon2::Version::try_from) {
        None => argon2::Version::default(),
        Some(Ok(v)) => v,
        Some(Err(_)) => return false,
    };
    let Ok(params) = argon2::Params::try_from(&h) else { return false };
    let argon = Argon2::new(algorithm, version, params);
    let mut out = vec![0u8; expected.len()];
    argon2_into(&argon, password, salt, &mut out).is_ok()
        // Output's equality is constant-time.
        && Output::new(&out).is_ok_and(|o| &o == expected)
}

type HashJob = Box<dyn FnOnce() + Send>;

/// Every argon2 hash runs on one thread, one at a time, in that thread's reused 19 MiB.
/// Allocating it per hash on the blocking pool left freed copies resident in malloc's
/// arenas (20 registrations: 300 MB resident; 20 concurrent ones: 680 MB).
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
    mut r: Registration,
    login: Option<(Option<String>, Option<String>)>,
    ip: String,
) -> Result<(i64, Option<Session>)> {
    let hash = match r.password.take() {
        Some(p) => Some(hash_password(p).await?),
        None => None,
    };
    register_hashed(app, r, hash, login, ip).await
}

/// [`register`] with the password already hashed (`r.password` is ignored).
pub async fn register_hashed(
    app: &App,
    r: Registration,
    hash: Option<String>,
    login: Option<(Option<String>, Option<String>)>,
    ip: String,
) -> Result<(i64, Option<Session>)> {
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

    /// Hashes in reused memory are ordinary argon2id PHC strings: argon2's own verifier
    /// accepts ours and ours accepts its, whatever the previous hash left in the memory.
    #[tokio::test]
    async fn password_hashes_interoperate_with_argon2() {
        use argon2::password_hash::{PasswordHasher, PasswordVerifier};
        let ours = hash_password("correct horse".into()).await.expect("hash");
        assert!(ours.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{ours}");
        let parsed = PasswordHash::new(&ours).expect("PHC string");
        assert!(Argon2::default().verify_password(b"correct horse", &parsed).is_ok());
        assert!(Argon2::default().verify_password(b"wrong horse", &parsed).is_err());
        let theirs = Argon2::default().hash_password(b"battery staple").expect("hash").to_string();
        assert!(verify_password(theirs.clone(), "battery staple".into()).await);
        assert!(!verify_password(theirs, "battery stapler".into()).await);
        assert!(verify_password(ours.clone(), "correct horse".into()).await);
        assert!(!verify_password(ours, "correct horse ".into()).await);
        assert!(!verify_password("not a hash".into(), "x".into()).await);
    }

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
