//! The `users` table: accounts and their profiles.

use rusqlite::{Connection, OptionalExtension, params};

use crate::error::{Error, Result};

#[derive(Debug, Clone)]
pub struct UserRow {
    pub nid: i64,
    pub user_id: String,
    pub password_hash: Option<String>,
    pub is_admin: bool,
    pub is_guest: bool,
    pub deactivated: bool,
    pub displayname: Option<String>,
    pub avatar_url: Option<String>,
    /// `bot`, `support` or none, as in Synapse.
    pub user_type: Option<String>,
    /// Deactivated with `erase`.
    pub erased: bool,
    pub created_ts: i64,
}

const COLUMNS: &str = "nid, user_id, password_hash, is_admin, is_guest, deactivated, displayname, \
    avatar_url, user_type, erased, created_ts";

fn row(r: &rusqlite::Row<'_>) -> rusqlite::Result<UserRow> {
    Ok(UserRow {
        nid: r.get(0)?,
        user_id: r.get(1)?,
        password_hash: r.get(2)?,
        is_admin: r.get(3)?,
        is_guest: r.get(4)?,
        deactivated: r.get(5)?,
        displayname: r.get(6)?,
        avatar_url: r.get(7)?,
        user_type: r.get(8)?,
        erased: r.get(9)?,
        created_ts: r.get(10)?,
    })
}

pub fn get(conn: &Connection, user_id: &str) -> Result<Option<UserRow>> {
    let mut st = conn.prepare_cached(&format!("SELECT {COLUMNS} FROM users WHERE user_id = ?1"))?;
    Ok(st.query_row([user_id], row).optional()?)
}

pub fn exists(conn: &Connection, user_id: &str) -> Result<bool> {
    let mut st = conn.prepare_cached("SELECT 1 FROM users WHERE user_id = ?1")?;
    Ok(st.exists([user_id])?)
}

pub struct NewUser<'a> {
    pub user_id: &'a str,
    pub password_hash: Option<&'a str>,
    pub is_admin: bool,
    pub is_guest: bool,
    pub displayname: Option<&'a str>,
}

/// Insert a user; `M_USER_IN_USE` if the ID is taken (checked inside the writer, so two
/// racing registrations of one name cannot both succeed).
pub fn insert(conn: &Connection, u: &NewUser<'_>, now: i64) -> Result<i64> {
    if exists(conn, u.user_id)? {
        return Err(Error::UserInUse("User ID already taken.".into()));
    }
    let mut st = conn.prepare_cached(
        "INSERT INTO users (user_id, password_hash, is_admin, is_guest, displayname, created_ts)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?;
    st.execute(params![u.user_id, u.password_hash, u.is_admin, u.is_guest, u.displayname, now])?;
    Ok(conn.last_insert_rowid())
}

pub fn set_password_hash(conn: &Connection, user_nid: i64, hash: Option<&str>) -> Result<()> {
    conn.prepare_cached("UPDATE users SET password_hash = ?2 WHERE nid = ?1")?
        .execute(params![user_nid, hash])?;
    Ok(())
}

pub fn set_displayname(conn: &Connection, user_nid: i64, name: Option<&str>) -> Result<()> {
    conn.prepare_cached("UPDATE users SET displayname = ?2 WHERE nid = ?1")?
        .execute(params![user_nid, name])?;
    Ok(())
}

pub fn set_avatar_url(conn: &Connection, user_nid: i64, url: Option<&str>) -> Result<()> {
    conn.prepare_cached("UPDATE users SET avatar_url = ?2 WHERE nid = ?1")?
        .execute(params![user_nid, url])?;
    Ok(())
}

/// Deactivation keeps the row (the ID may never be reused) but removes everything that
/// lets the account act or be found: password, profile, devices and their tokens.
pub fn deactivate(conn: &Connection, user_nid: i64) -> Result<()> {
    conn.prepare_cached(
        "UPDATE users SET deactivated = 1, password_hash = NULL, displayname = NULL,
         avatar_url = NULL WHERE nid = ?1",
    )?
    .execute([user_nid])?;
    let gone: Vec<String> = conn
        .prepare_cached("DELETE FROM devices WHERE user_nid = ?1 RETURNING device_id")?
        .query_map([user_nid], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    for d in gone {
        super::device_lists::device_changed(conn, user_nid, &d)?;
    }
    // Server-side key backups go too, as in Synapse.
    super::key_backup::delete_all(conn, user_nid)?;
    Ok(())
}

pub fn count(conn: &Connection) -> Result<i64> {
    Ok(conn.query_row("SELECT COUNT(*) FROM users", [], |r| r.get(0))?)
}

pub fn set_admin(conn: &Connection, user_nid: i64, admin: bool) -> Result<()> {
    conn.prepare_cached("UPDATE users SET is_admin = ?2 WHERE nid = ?1")?
        .execute(params![user_nid, admin])?;
    Ok(())
}

pub fn set_user_type(conn: &Connection, user_nid: i64, user_type: Option<&str>) -> Result<()> {
    conn.prepare_cached("UPDATE users SET user_type = ?2 WHERE nid = ?1")?
        .execute(params![user_nid, user_type])?;
    Ok(())
}

pub fn set_erased(conn: &Connection, user_nid: i64, erased: bool) -> Result<()> {
    conn.prepare_cached("UPDATE users SET erased = ?2 WHERE nid = ?1")?
        .execute(params![user_nid, erased])?;
    Ok(())
}

/// Undo a deactivation: the account may log in again once it has a password.
pub fn reactivate(conn: &Connection, user_nid: i64) -> Result<()> {
    conn.prepare_cached("UPDATE users SET deactivated = 0, erased = 0 WHERE nid = ?1")?
        .execute([user_nid])?;
    Ok(())
}

/// The most recent activity of any of the user's devices.
pub fn last_seen(conn: &Connection, user_nid: i64) -> Result<Option<i64>> {
    Ok(conn
        .prepare_cached("SELECT MAX(last_seen_ts) FROM devices WHERE user_nid = ?1")?
        .query_row([user_nid], |r| r.get(0))?)
}

/// What the admin user list filters and sorts by (Synapse's `GET /_synapse/admin/v2/users`).
#[derive(Debug, Clone, Default)]
pub struct ListQuery {
    pub from: i64,
    pub limit: i64,
    /// Substring of the user ID.
    pub user_id: Option<String>,
    /// Substring of the localpart or the display name (takes precedence over `user_id`).
    pub name: Option<String>,
    pub guests: bool,
    /// `None`: both; `Some(b)`: only (de)activated users.
    pub deactivated: Option<bool>,
    pub admins: Option<bool>,
    /// User types to leave out; `""` stands for "no type".
    pub not_user_types: Vec<String>,
    /// A column from [`SORT_COLUMNS`].
    pub order_by: String,
    pub backwards: bool,
}

/// One row of the admin user list.
#[derive(Debug, Clone)]
pub struct ListedUser {
    pub row: UserRow,
    pub last_seen_ts: Option<i64>,
}

/// `order_by` values Synapse accepts, and the SQL they sort by.
pub const SORT_COLUMNS: &[(&str, &str)] = &[
    ("name", "u.user_id"),
    ("displayname", "u.displayname"),
    ("is_guest", "u.is_guest"),
    ("admin", "u.is_admin"),
    ("deactivated", "u.deactivated"),
    ("user_type", "u.user_type"),
    ("avatar_url", "u.avatar_url"),
    ("shadow_banned", "NULL"),
    ("creation_ts", "u.created_ts"),
    ("last_seen_ts", "d.last_seen_ts"),
    ("locked", "NULL"),
];

/// `%` and `_` match themselves in a LIKE pattern built from user input.
pub fn like_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// A page of users and the number of users matching the filters.
pub fn list(conn: &Connection, q: &ListQuery) -> Result<(Vec<ListedUser>, i64)> {
    let mut filters: Vec<String> = vec![];
    let mut args: Vec<rusqlite::types::Value> = vec![];
    // Adds a bound argument and returns its placeholder.
    fn bind(
        args: &mut Vec<rusqlite::types::Value>,
        v: impl Into<rusqlite::types::Value>,
    ) -> String {
        args.push(v.into());
        format!("?{}", args.len())
    }
    if let Some(n) = q.name.as_deref().filter(|n| !n.is_empty()) {
        // `@<localpart>:` contains the term, or the display name does.
        let n = like_escape(&n.to_lowercase());
        let (a, b) = (bind(&mut args, format!("@%{n}%:%")), bind(&mut args, format!("%{n}%")));
        filters.push(format!(
            "(u.user_id LIKE {a} ESCAPE '\\' OR LOWER(u.displayname) LIKE {b} ESCAPE '\\')"
        ));
    } else if let Some(id) = q.user_id.as_deref().filter(|n| !n.is_empty()) {
        let a = bind(&mut args, format!("%{}%", like_escape(&id.to_lowercase())));
        filters.push(format!("u.user_id LIKE {a} ESCAPE '\\'"));
    }
    if !q.guests {
        filters.push("u.is_guest = 0".into());
    }
    match q.deactivated {
        Some(true) => filters.push("u.deactivated = 1".into()),
        Some(false) => filters.push("u.deactivated = 0".into()),
        None => {}
    }
    match q.admins {
        Some(true) => filters.push("u.is_admin = 1".into()),
        Some(false) => filters.push("u.is_admin = 0".into()),
        None => {}
    }
    let types: Vec<&String> = q.not_user_types.iter().filter(|t| !t.is_empty()).collect();
    let exclude_untyped = q.not_user_types.iter().any(String::is_empty);
    if !types.is_empty() {
        let marks: Vec<String> = types.into_iter().map(|t| bind(&mut args, t.clone())).collect();
        let not_in = format!("u.user_type NOT IN ({})", marks.join(", "));
        if exclude_untyped {
            filters.push(format!("(u.user_type IS NOT NULL AND {not_in})"));
        } else {
            filters.push(format!("(u.user_type IS NULL OR {not_in})"));
        }
    } else if exclude_untyped {
        filters.push("u.user_type IS NOT NULL".into());
    }
    let where_clause =
        if filters.is_empty() { String::new() } else { format!("WHERE {}", filters.join(" AND ")) };
    let order = SORT_COLUMNS
        .iter()
        .find(|(k, _)| *k == q.order_by)
        .map(|(_, col)| *col)
        .unwrap_or("u.user_id");
    let dir = if q.backwards { "DESC" } else { "ASC" };
    let base = format!(
        "FROM users u LEFT JOIN (SELECT user_nid, MAX(last_seen_ts) AS last_seen_ts FROM devices
         GROUP BY user_nid) d ON d.user_nid = u.nid {where_clause}"
    );
    let total: i64 = conn.query_row(
        &format!("SELECT COUNT(*) {base}"),
        rusqlite::params_from_iter(args.iter()),
        |r| r.get(0),
    )?;
    let cols =
        COLUMNS.split(", ").map(|c| format!("u.{}", c.trim())).collect::<Vec<_>>().join(", ");
    let (limit, offset) = (bind(&mut args, q.limit), bind(&mut args, q.from));
    let sql = format!(
        "SELECT {cols}, d.last_seen_ts {base} ORDER BY {order} {dir}, u.user_id ASC
         LIMIT {limit} OFFSET {offset}"
    );
    let mut st = conn.prepare(&sql)?;
    let rows = st.query_map(rusqlite::params_from_iter(args.iter()), |r| {
        Ok(ListedUser { row: row(r)?, last_seen_ts: r.get(11)? })
    })?;
    Ok((rows.collect::<rusqlite::Result<_>>()?, total))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_sort_order_and_filter_runs() {
        let mut c = Connection::open_in_memory().expect("db");
        crate::store::migrations::apply(&mut c).expect("migrate");
        for (i, name) in ["@b:hs", "@a:hs", "@c_1:hs"].iter().enumerate() {
            let u = NewUser {
                user_id: name,
                password_hash: None,
                is_admin: i == 0,
                is_guest: false,
                displayname: Some("Some%One"),
            };
            insert(&c, &u, i as i64).expect("user");
        }
        for (order_by, _) in SORT_COLUMNS {
            for backwards in [false, true] {
                let q = ListQuery {
                    limit: 10,
                    guests: true,
                    order_by: order_by.to_string(),
                    backwards,
                    ..Default::default()
                };
                let (rows, total) = list(&c, &q).expect(order_by);
                assert_eq!((rows.len(), total), (3, 3), "{order_by}");
            }
        }
        let q = |f: fn(&mut ListQuery)| {
            let mut q = ListQuery {
                limit: 10,
                guests: true,
                order_by: "name".into(),
                ..Default::default()
            };
            f(&mut q);
            list(&c, &q).expect("list").0.into_iter().map(|u| u.row.user_id).collect::<Vec<_>>()
        };
        assert_eq!(q(|_| {}), ["@a:hs", "@b:hs", "@c_1:hs"]);
        assert_eq!(q(|q| q.name = Some("c_".into())), ["@c_1:hs"], "`_` is not a wildcard");
        assert_eq!(q(|q| q.name = Some("s%e".into())), Vec::<String>::new(), "`%` is literal");
        assert_eq!(q(|q| q.name = Some("some%one".into())).len(), 3, "display names match");
        assert_eq!(q(|q| q.admins = Some(true)), ["@b:hs"]);
        assert_eq!(q(|q| q.not_user_types = vec![String::new()]), Vec::<String>::new());
        assert_eq!(q(|q| q.not_user_types = vec!["bot".into()]).len(), 3);
    }
}
