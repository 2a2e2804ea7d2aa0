//! The `registration_tokens` table: tokens that allow registration when
//! `registration_requires_token` is on, managed through the admin API.
//!
//! Using a token during registration takes two steps, as in Synapse: the
//! `m.login.registration_token` stage [`reserve`]s one use (`pending`), so a token with one
//! use left cannot be spent by two registrations at once; when the account is created the
//! use is [`complete`]d, and if the registration is abandoned (its UIA session expires) it
//! is [`release`]d. A token is usable while `pending + completed < uses_allowed` (no limit
//! when `uses_allowed` is NULL) and its `expiry_time` has not passed.

use rand::RngExt;
use rusqlite::{Connection, OptionalExtension, params};

use crate::error::Result;

/// The longest token, given or generated.
pub const MAX_LENGTH: usize = 64;
/// Length of a generated token when none is asked for.
pub const DEFAULT_GENERATED_LENGTH: usize = 16;
/// The characters a token may hold (`[A-Za-z0-9._~-]`), which are also those generated.
pub const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._~-";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenRow {
    pub token: String,
    pub uses_allowed: Option<i64>,
    pub pending: i64,
    pub completed: i64,
    pub expiry_time: Option<i64>,
}

impl TokenRow {
    /// Whether a registration may (still) use the token at `now` (ms).
    pub fn is_usable(&self, now: i64) -> bool {
        self.uses_allowed.is_none_or(|n| self.pending + self.completed < n)
            && self.expiry_time.is_none_or(|t| t > now)
    }
}

/// Whether `token` has the shape an admin may give a token: 1 to 64 characters from
/// [`ALPHABET`].
pub fn is_valid_token(token: &str) -> bool {
    (1..=MAX_LENGTH).contains(&token.len()) && token.bytes().all(|b| ALPHABET.contains(&b))
}

const COLUMNS: &str = "token, uses_allowed, pending, completed, expiry_time";

fn row(r: &rusqlite::Row<'_>) -> rusqlite::Result<TokenRow> {
    Ok(TokenRow {
        token: r.get(0)?,
        uses_allowed: r.get(1)?,
        pending: r.get(2)?,
        completed: r.get(3)?,
        expiry_time: r.get(4)?,
    })
}

pub fn get(conn: &Connection, token: &str) -> Result<Option<TokenRow>> {
    Ok(conn
        .prepare_cached(&format!("SELECT {COLUMNS} FROM registration_tokens WHERE token = ?1"))?
        .query_row([token], row)
        .optional()?)
}

/// Every token; with `valid`, only the usable (`Some(true)`) or unusable ones at `now`.
pub fn list(conn: &Connection, valid: Option<bool>, now: i64) -> Result<Vec<TokenRow>> {
    let mut st =
        conn.prepare_cached(&format!("SELECT {COLUMNS} FROM registration_tokens ORDER BY token"))?;
    let rows = st.query_map([], row)?.collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(match valid {
        None => rows,
        Some(v) => rows.into_iter().filter(|t| t.is_usable(now) == v).collect(),
    })
}

/// Add a token; false if it exists already.
pub fn create(
    conn: &Connection,
    token: &str,
    uses_allowed: Option<i64>,
    expiry_time: Option<i64>,
) -> Result<bool> {
    let n = conn
        .prepare_cached(
            "INSERT INTO registration_tokens (token, uses_allowed, expiry_time) VALUES (?1, ?2, ?3)
             ON CONFLICT (token) DO NOTHING",
        )?
        .execute(params![token, uses_allowed, expiry_time])?;
    Ok(n == 1)
}

/// A random token of `length` characters from [`ALPHABET`] that is not taken yet.
pub fn generate(conn: &Connection, length: usize) -> Result<String> {
    let mut rng = rand::rng();
    loop {
        let t: String =
            (0..length).map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char).collect();
        if get(conn, &t)?.is_none() {
            return Ok(t);
        }
    }
}

/// Change a token's limits: `Some(v)` sets a field (to `v`, which may be NULL), `None`
/// leaves it. Returns the token as it now is, or `None` if there is no such token.
pub fn update(
    conn: &Connection,
    token: &str,
    uses_allowed: Option<Option<i64>>,
    expiry_time: Option<Option<i64>>,
) -> Result<Option<TokenRow>> {
    if let Some(u) = uses_allowed {
        conn.prepare_cached("UPDATE registration_tokens SET uses_allowed = ?2 WHERE token = ?1")?
            .execute(params![token, u])?;
    }
    if let Some(e) = expiry_time {
        conn.prepare_cached("UPDATE registration_tokens SET expiry_time = ?2 WHERE token = ?1")?
            .execute(params![token, e])?;
    }
    get(conn, token)
}

/// Returns whether the token existed.
pub fn delete(conn: &Connection, token: &str) -> Result<bool> {
    Ok(conn.prepare_cached("DELETE FROM registration_tokens WHERE token = ?1")?.execute([token])?
        == 1)
}

/// Whether a registration may use `token` now (the validity endpoint's question).
pub fn is_usable(conn: &Connection, token: &str, now: i64) -> Result<bool> {
    Ok(get(conn, token)?.is_some_and(|t| t.is_usable(now)))
}

/// The registration-token stage: if the token is usable, hold one use for this
/// registration (`pending + 1`) and return true; otherwise change nothing and return
/// false. Run it in the writer, so the check and the reservation are one step.
pub fn reserve(conn: &Connection, token: &str, now: i64) -> Result<bool> {
    if !is_usable(conn, token, now)? {
        return Ok(false);
    }
    conn.prepare_cached("UPDATE registration_tokens SET pending = pending + 1 WHERE token = ?1")?
        .execute([token])?;
    Ok(true)
}

/// The registration that reserved a use of `token` created its account: the use moves
/// from `pending` to `completed`. (A token deleted meanwhile is left deleted.)
pub fn complete(conn: &Connection, token: &str) -> Result<()> {
    conn.prepare_cached(
        "UPDATE registration_tokens SET pending = MAX(pending - 1, 0), completed = completed + 1
         WHERE token = ?1",
    )?
    .execute([token])?;
    Ok(())
}

/// The registration that reserved a use of `token` was abandoned: give the use back.
pub fn release(conn: &Connection, token: &str) -> Result<()> {
    conn.prepare_cached(
        "UPDATE registration_tokens SET pending = MAX(pending - 1, 0) WHERE token = ?1",
    )?
    .execute([token])?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn db() -> Connection {
        let mut c = Connection::open_in_memory().expect("db");
        crate::store::migrations::apply(&mut c).expect("migrate");
        c
    }

    #[test]
    fn token_shape() {
        assert!(is_valid_token("abcXYZ019._~-"));
        assert!(is_valid_token(&"a".repeat(64)));
        for bad in ["", "has space", "slash/", "ümlaut", "plus+", &"a".repeat(65)] {
            assert!(!is_valid_token(bad), "{bad:?}");
        }
    }

    #[test]
    fn create_get_update_delete() {
        let c = db();
        assert!(create(&c, "abc", Some(3), None).expect("create"));
        assert!(!create(&c, "abc", None, None).expect("again"), "tokens are unique");
        let t = get(&c, "abc").expect("get").expect("exists");
        assert_eq!((t.uses_allowed, t.pending, t.completed, t.expiry_time), (Some(3), 0, 0, None));
        let t = update(&c, "abc", Some(None), Some(Some(5_000))).expect("update").expect("row");
        assert_eq!((t.uses_allowed, t.expiry_time), (None, Some(5_000)));
        let t = update(&c, "abc", None, None).expect("no-op").expect("row");
        assert_eq!((t.uses_allowed, t.expiry_time), (None, Some(5_000)), "None leaves fields");
        assert!(update(&c, "nope", Some(Some(1)), None).expect("update").is_none());
        assert!(delete(&c, "abc").expect("delete"));
        assert!(!delete(&c, "abc").expect("delete again"));
    }

    #[test]
    fn generated_tokens_have_the_length_and_alphabet() {
        let c = db();
        for len in [1, 16, 64] {
            let t = generate(&c, len).expect("generate");
            assert_eq!(t.len(), len);
            assert!(is_valid_token(&t), "{t}");
        }
    }

    #[test]
    fn uses_are_reserved_then_completed_or_released() {
        let c = db();
        create(&c, "two", Some(2), None).expect("create");
        assert!(reserve(&c, "two", 0).expect("1st"));
        assert!(reserve(&c, "two", 0).expect("2nd"));
        assert!(
            !reserve(&c, "two", 0).expect("3rd"),
            "both uses are held by pending registrations"
        );
        assert!(!is_usable(&c, "two", 0).expect("usable"));
        release(&c, "two").expect("abandon one");
        assert!(is_usable(&c, "two", 0).expect("usable again"));
        complete(&c, "two").expect("finish the other");
        let t = get(&c, "two").expect("get").expect("row");
        assert_eq!((t.pending, t.completed), (0, 1));
        assert!(reserve(&c, "two", 0).expect("last use"));
        complete(&c, "two").expect("finish");
        assert!(!is_usable(&c, "two", 0).expect("used up"));
        assert!(!reserve(&c, "unknown", 0).expect("unknown"), "unknown tokens are refused");
        // Completing never makes pending negative, even if called too often.
        complete(&c, "two").expect("extra");
        assert_eq!(get(&c, "two").expect("get").expect("row").pending, 0);
    }

    #[test]
    fn expiry_and_zero_uses() {
        let c = db();
        create(&c, "soon", None, Some(1_000)).expect("create");
        assert!(is_usable(&c, "soon", 999).expect("before"));
        assert!(!is_usable(&c, "soon", 1_000).expect("at expiry"));
        create(&c, "zero", Some(0), None).expect("create");
        assert!(!is_usable(&c, "zero", 0).expect("zero uses"));
        create(&c, "free", None, None).expect("create");
        let valid: Vec<String> =
            list(&c, Some(true), 2_000).expect("list").into_iter().map(|t| t.token).collect();
        assert_eq!(valid, vec!["free".to_string()]);
        let invalid: Vec<String> =
            list(&c, Some(false), 2_000).expect("list").into_iter().map(|t| t.token).collect();
        assert_eq!(invalid, vec!["soon".to_string(), "zero".to_string()]);
        assert_eq!(list(&c, None, 2_000).expect("list").len(), 3);
    }
}
