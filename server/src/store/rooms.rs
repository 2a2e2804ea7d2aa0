//! The `rooms` and `room_aliases` tables.

use rusqlite::{Connection, OptionalExtension, params};

use crate::error::Result;

#[derive(Debug, Clone)]
pub struct RoomRow {
    pub nid: i64,
    pub room_id: String,
    pub room_version: String,
    pub creator: String,
    pub is_public: bool,
}

fn room_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<RoomRow> {
    Ok(RoomRow {
        nid: r.get(0)?,
        room_id: r.get(1)?,
        room_version: r.get(2)?,
        creator: r.get(3)?,
        is_public: r.get(4)?,
    })
}

pub fn get(conn: &Connection, room_id: &str) -> Result<Option<RoomRow>> {
    Ok(conn
        .prepare_cached(
            "SELECT nid, room_id, room_version, creator, is_public FROM rooms WHERE room_id = ?1",
        )?
        .query_row([room_id], room_row)
        .optional()?)
}

pub fn get_by_nid(conn: &Connection, nid: i64) -> Result<Option<RoomRow>> {
    Ok(conn
        .prepare_cached(
            "SELECT nid, room_id, room_version, creator, is_public FROM rooms WHERE nid = ?1",
        )?
        .query_row([nid], room_row)
        .optional()?)
}

pub fn insert(
    conn: &Connection,
    room_id: &str,
    version: &str,
    creator: &str,
    now: i64,
) -> Result<i64> {
    conn.prepare_cached(
        "INSERT INTO rooms (room_id, room_version, creator, created_ts) VALUES (?1, ?2, ?3, ?4)",
    )?
    .execute(params![room_id, version, creator, now])?;
    Ok(conn.last_insert_rowid())
}

pub fn set_public(conn: &Connection, room_nid: i64, public: bool) -> Result<()> {
    conn.prepare_cached("UPDATE rooms SET is_public = ?2 WHERE nid = ?1")?
        .execute(params![room_nid, public])?;
    Ok(())
}

pub fn public_rooms(conn: &Connection) -> Result<Vec<RoomRow>> {
    let mut st = conn.prepare_cached(
        "SELECT nid, room_id, room_version, creator, is_public FROM rooms WHERE is_public = 1
         ORDER BY nid",
    )?;
    let rows = st.query_map([], room_row)?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// Returns false if the alias is taken.
pub fn put_alias(conn: &Connection, alias: &str, room_nid: i64, creator: &str) -> Result<bool> {
    let n = conn
        .prepare_cached(
            "INSERT INTO room_aliases (alias, room_nid, creator) VALUES (?1, ?2, ?3)
             ON CONFLICT (alias) DO NOTHING",
        )?
        .execute(params![alias, room_nid, creator])?;
    Ok(n == 1)
}

/// The room an alias points at, and who created the alias.
pub fn get_alias(conn: &Connection, alias: &str) -> Result<Option<(String, String)>> {
    Ok(conn
        .prepare_cached(
            "SELECT r.room_id, a.creator FROM room_aliases a JOIN rooms r ON r.nid = a.room_nid
             WHERE a.alias = ?1",
        )?
        .query_row([alias], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?)
}

pub fn delete_alias(conn: &Connection, alias: &str) -> Result<()> {
    conn.prepare_cached("DELETE FROM room_aliases WHERE alias = ?1")?.execute([alias])?;
    Ok(())
}

pub fn aliases_of(conn: &Connection, room_nid: i64) -> Result<Vec<String>> {
    let mut st =
        conn.prepare_cached("SELECT alias FROM room_aliases WHERE room_nid = ?1 ORDER BY alias")?;
    let rows = st.query_map([room_nid], |r| r.get(0))?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// A room as the admin API shows it: its row plus figures from its current state.
#[derive(Debug, Clone, Default)]
pub struct RoomStats {
    pub room_id: String,
    pub name: Option<String>,
    pub canonical_alias: Option<String>,
    pub joined_members: i64,
    pub joined_local_members: i64,
    pub version: String,
    pub creator: String,
    pub encryption: Option<String>,
    pub federatable: bool,
    pub public: bool,
    pub join_rules: Option<String>,
    pub guest_access: Option<String>,
    pub history_visibility: Option<String>,
    pub state_events: i64,
    pub room_type: Option<String>,
    pub avatar: Option<String>,
    pub topic: Option<String>,
}

/// A string field of a current state event of room `r`, or NULL (absent, or not a string).
fn state_field(event_type: &str, path: &str) -> String {
    format!(
        "(SELECT CASE json_type(e.json, '{path}') WHEN 'text'
            THEN json_extract(e.json, '{path}') END
          FROM current_state cs JOIN events e ON e.nid = cs.event_nid
          WHERE cs.room_nid = r.nid AND cs.event_type = '{event_type}' AND cs.state_key = '')"
    )
}

/// Every room with its figures, as a subquery with named columns; `?1` is the
/// `:server_name` suffix of local user IDs.
fn stats_sql() -> String {
    format!(
        "SELECT r.nid, r.room_id, r.room_version AS version, r.creator, r.is_public AS public,
           {} AS name, {} AS canonical_alias, {} AS encryption, {} AS join_rules,
           {} AS guest_access, {} AS history_visibility, {} AS avatar, {} AS topic,
           {} AS room_type,
           COALESCE((SELECT CASE json_type(e.json, '$.content.\"m.federate\"') WHEN 'false' THEN 0
               ELSE 1 END FROM current_state cs JOIN events e ON e.nid = cs.event_nid
             WHERE cs.room_nid = r.nid AND cs.event_type = 'm.room.create' AND cs.state_key = ''),
             1) AS federatable,
           (SELECT COUNT(*) FROM memberships m WHERE m.room_nid = r.nid AND m.membership = 'join')
             AS joined_members,
           (SELECT COUNT(*) FROM memberships m WHERE m.room_nid = r.nid AND m.membership = 'join'
             AND substr(m.user_id, -length(?1)) = ?1) AS joined_local_members,
           (SELECT COUNT(*) FROM current_state cs WHERE cs.room_nid = r.nid) AS state_events
         FROM rooms r",
        state_field("m.room.name", "$.content.name"),
        state_field("m.room.canonical_alias", "$.content.alias"),
        state_field("m.room.encryption", "$.content.algorithm"),
        state_field("m.room.join_rules", "$.content.join_rule"),
        state_field("m.room.guest_access", "$.content.guest_access"),
        state_field("m.room.history_visibility", "$.content.history_visibility"),
        state_field("m.room.avatar", "$.content.url"),
        state_field("m.room.topic", "$.content.topic"),
        state_field("m.room.create", "$.content.type"),
    )
}

const STATS_COLUMNS: &str = "room_id, name, canonical_alias, joined_members, joined_local_members, \
    version, creator, encryption, federatable, public, join_rules, guest_access, \
    history_visibility, state_events, room_type, avatar, topic";

fn stats_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<RoomStats> {
    Ok(RoomStats {
        room_id: r.get(0)?,
        name: r.get(1)?,
        canonical_alias: r.get(2)?,
        joined_members: r.get(3)?,
        joined_local_members: r.get(4)?,
        version: r.get(5)?,
        creator: r.get(6)?,
        encryption: r.get(7)?,
        federatable: r.get(8)?,
        public: r.get(9)?,
        join_rules: r.get(10)?,
        guest_access: r.get(11)?,
        history_visibility: r.get(12)?,
        state_events: r.get(13)?,
        room_type: r.get(14)?,
        avatar: r.get(15)?,
        topic: r.get(16)?,
    })
}

/// `order_by` values of the admin room list, the column each sorts by and whether it
/// sorts ascending by default (as in Synapse: sizes and versions largest first).
pub const ROOM_SORT: &[(&str, &str, bool)] = &[
    ("name", "name", true),
    ("alphabetical", "name", true),
    ("canonical_alias", "canonical_alias", true),
    ("joined_members", "joined_members", false),
    ("size", "joined_members", false),
    ("joined_local_members", "joined_local_members", false),
    ("version", "version", false),
    ("creator", "creator", true),
    ("encryption", "encryption", true),
    ("federatable", "federatable", true),
    ("public", "public", true),
    ("join_rules", "join_rules", true),
    ("guest_access", "guest_access", true),
    ("history_visibility", "history_visibility", true),
    ("state_events", "state_events", false),
];

#[derive(Debug, Clone, Default)]
pub struct RoomListQuery {
    pub from: i64,
    pub limit: i64,
    /// One of [`ROOM_SORT`].
    pub order_by: String,
    pub backwards: bool,
    /// Part of the name or of the canonical alias's localpart, or the exact room ID.
    pub search_term: Option<String>,
    pub public_rooms: Option<bool>,
    pub empty_rooms: Option<bool>,
}

/// A page of rooms with their figures, and how many rooms match.
pub fn list_with_stats(
    conn: &Connection,
    server_name: &str,
    q: &RoomListQuery,
) -> Result<(Vec<RoomStats>, i64)> {
    let mut filters = vec![];
    let mut args: Vec<rusqlite::types::Value> = vec![format!(":{server_name}").into()];
    if let Some(t) = q.search_term.as_deref() {
        let t_like = super::users::like_escape(&t.to_lowercase());
        args.push(format!("%{t_like}%").into());
        args.push(format!("#%{t_like}%:%").into());
        args.push(t.to_string().into());
        filters.push(
            "(LOWER(name) LIKE ?2 ESCAPE '\\' OR LOWER(canonical_alias) LIKE ?3 ESCAPE '\\'
              OR room_id = ?4)"
                .to_string(),
        );
    }
    if let Some(p) = q.public_rooms {
        filters.push(format!("public = {}", i64::from(p)));
    }
    match q.empty_rooms {
        Some(true) => filters.push("joined_members = 0".into()),
        Some(false) => filters.push("joined_members <> 0".into()),
        None => {}
    }
    let where_clause =
        if filters.is_empty() { String::new() } else { format!("WHERE {}", filters.join(" AND ")) };
    let (column, ascending) = ROOM_SORT
        .iter()
        .find(|(k, _, _)| *k == q.order_by)
        .map(|(_, c, a)| (*c, *a))
        .unwrap_or(("name", true));
    let dir = if ascending != q.backwards { "ASC" } else { "DESC" };
    let base = format!("FROM ({}) s {where_clause}", stats_sql());
    let total: i64 = conn.query_row(
        &format!("SELECT COUNT(*) {base}"),
        rusqlite::params_from_iter(args.iter()),
        |r| r.get(0),
    )?;
    let n = args.len();
    args.push(q.limit.into());
    args.push(q.from.into());
    let sql = format!(
        "SELECT {STATS_COLUMNS} {base} ORDER BY {column} {dir}, room_id {dir}
         LIMIT ?{} OFFSET ?{}",
        n + 1,
        n + 2
    );
    let mut st = conn.prepare(&sql)?;
    let rows = st.query_map(rusqlite::params_from_iter(args.iter()), stats_row)?;
    Ok((rows.collect::<rusqlite::Result<_>>()?, total))
}

/// One room's figures, if Glia knows the room.
pub fn stats(conn: &Connection, server_name: &str, room_id: &str) -> Result<Option<RoomStats>> {
    let sql = format!("SELECT {STATS_COLUMNS} FROM ({}) s WHERE room_id = ?2", stats_sql());
    Ok(conn
        .prepare_cached(&sql)?
        .query_row(params![format!(":{server_name}"), room_id], stats_row)
        .optional()?)
}

/// Devices of the room's joined local users (`joined_local_devices`).
pub fn joined_local_devices(conn: &Connection, room_nid: i64) -> Result<i64> {
    Ok(conn
        .prepare_cached(
            "SELECT COUNT(*) FROM memberships m JOIN users u ON u.user_id = m.user_id
             JOIN devices d ON d.user_nid = u.nid WHERE m.room_nid = ?1 AND m.membership = 'join'",
        )?
        .query_row([room_nid], |r| r.get(0))?)
}

/// Whether every local user with a membership in the room has forgotten it.
pub fn locally_forgotten(conn: &Connection, room_nid: i64) -> Result<bool> {
    Ok(conn
        .prepare_cached(
            "SELECT COUNT(*) > 0 AND SUM(m.forgotten = 0) = 0 FROM memberships m
             JOIN users u ON u.user_id = m.user_id WHERE m.room_nid = ?1",
        )?
        .query_row([room_nid], |r| r.get(0))?)
}

/// Local users with any membership in the room: (user ID, membership).
pub fn local_members(conn: &Connection, room_nid: i64) -> Result<Vec<(String, String)>> {
    let mut st = conn.prepare_cached(
        "SELECT m.user_id, m.membership FROM memberships m JOIN users u ON u.user_id = m.user_id
         WHERE m.room_nid = ?1 ORDER BY m.user_id",
    )?;
    let rows = st.query_map([room_nid], |r| Ok((r.get(0)?, r.get(1)?)))?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// Point every alias of `from` at `to` (a room replacing a shut-down one); returns them.
pub fn move_aliases(conn: &Connection, from: i64, to: i64) -> Result<Vec<String>> {
    let aliases = aliases_of(conn, from)?;
    conn.prepare_cached("UPDATE room_aliases SET room_nid = ?2 WHERE room_nid = ?1")?
        .execute(params![from, to])?;
    Ok(aliases)
}

/// Remove every trace of a room: its events, state, memberships, aliases, receipts, push
/// actions, the room account data and key backups of its users, and the room itself.
/// `blocked_rooms` is kept, so a blocked room cannot come back. One writer job: either
/// all of it goes or (if another table still refers to the room) none of it.
pub fn purge(conn: &Connection, room_nid: i64) -> Result<()> {
    let room_id: String =
        conn.query_row("SELECT room_id FROM rooms WHERE nid = ?1", [room_nid], |r| r.get(0))?;
    conn.execute_batch(&format!(
        "DELETE FROM forward_extremities WHERE room_nid = {room_nid};
         DELETE FROM current_state WHERE room_nid = {room_nid};
         DELETE FROM memberships WHERE room_nid = {room_nid};
         DELETE FROM receipts WHERE room_nid = {room_nid};
         DELETE FROM event_push_actions WHERE room_nid = {room_nid};
         DELETE FROM room_aliases WHERE room_nid = {room_nid};
         DELETE FROM event_edges WHERE event_nid IN
           (SELECT nid FROM events WHERE room_nid = {room_nid});
         DELETE FROM txn_ids WHERE event_id IN
           (SELECT event_id FROM events WHERE room_nid = {room_nid});
         DELETE FROM state_group_entries WHERE group_id IN
           (SELECT id FROM state_groups WHERE room_nid = {room_nid});
         DELETE FROM events WHERE room_nid = {room_nid};
         DELETE FROM state_groups WHERE room_nid = {room_nid};"
    ))?;
    super::auth_order::purge(conn, room_nid)?;
    for table in ["account_data", "room_key_backup_keys", "server_notice_rooms"] {
        conn.execute(&format!("DELETE FROM {table} WHERE room_id = ?1"), [&room_id])?;
    }
    conn.execute("DELETE FROM rooms WHERE nid = ?1", [room_nid])?;
    Ok(())
}

pub fn block(conn: &Connection, room_id: &str, by: &str, now: i64) -> Result<()> {
    conn.prepare_cached(
        "INSERT INTO blocked_rooms (room_id, user_id, ts) VALUES (?1, ?2, ?3)
         ON CONFLICT (room_id) DO UPDATE SET user_id = excluded.user_id, ts = excluded.ts",
    )?
    .execute(params![room_id, by, now])?;
    Ok(())
}

pub fn unblock(conn: &Connection, room_id: &str) -> Result<()> {
    conn.prepare_cached("DELETE FROM blocked_rooms WHERE room_id = ?1")?.execute([room_id])?;
    Ok(())
}

/// The admin who blocked the room, if it is blocked.
pub fn blocked_by(conn: &Connection, room_id: &str) -> Result<Option<String>> {
    Ok(conn
        .prepare_cached("SELECT user_id FROM blocked_rooms WHERE room_id = ?1")?
        .query_row([room_id], |r| r.get(0))
        .optional()?)
}

/// A room deletion started through the admin API.
#[derive(Debug, Clone)]
pub struct DeletionRow {
    pub delete_id: String,
    pub room_id: String,
    pub status: String,
    pub result: String,
    pub error: Option<String>,
}

fn deletion_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<DeletionRow> {
    Ok(DeletionRow {
        delete_id: r.get(0)?,
        room_id: r.get(1)?,
        status: r.get(2)?,
        result: r.get(3)?,
        error: r.get(4)?,
    })
}

pub fn insert_deletion(
    conn: &Connection,
    delete_id: &str,
    room_id: &str,
    result: &str,
    now: i64,
) -> Result<()> {
    conn.prepare_cached(
        "INSERT INTO room_deletions (delete_id, room_id, status, result, created_ts)
         VALUES (?1, ?2, 'scheduled', ?3, ?4)",
    )?
    .execute(params![delete_id, room_id, result, now])?;
    Ok(())
}

pub fn update_deletion(
    conn: &Connection,
    delete_id: &str,
    status: &str,
    result: &str,
    error: Option<&str>,
) -> Result<()> {
    conn.prepare_cached(
        "UPDATE room_deletions SET status = ?2, result = ?3, error = ?4 WHERE delete_id = ?1",
    )?
    .execute(params![delete_id, status, result, error])?;
    Ok(())
}

pub fn deletion(conn: &Connection, delete_id: &str) -> Result<Option<DeletionRow>> {
    Ok(conn
        .prepare_cached(
            "SELECT delete_id, room_id, status, result, error FROM room_deletions
             WHERE delete_id = ?1",
        )?
        .query_row([delete_id], deletion_row)
        .optional()?)
}

/// The room's deletions, oldest first.
pub fn deletions_of(conn: &Connection, room_id: &str) -> Result<Vec<DeletionRow>> {
    let mut st = conn.prepare_cached(
        "SELECT delete_id, room_id, status, result, error FROM room_deletions
         WHERE room_id = ?1 ORDER BY created_ts, delete_id",
    )?;
    let rows = st.query_map([room_id], deletion_row)?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::events::{self, NewEventRow};

    fn db() -> Connection {
        let mut c = Connection::open_in_memory().expect("db");
        crate::store::migrations::apply(&mut c).expect("migrate");
        c.pragma_update(None, "foreign_keys", "ON").expect("fks");
        c.execute("INSERT INTO users (nid, user_id, created_ts) VALUES (1, '@a:hs', 0)", [])
            .expect("user");
        c
    }

    /// A room with a create event, a's join, a name and a message, an alias, a receipt,
    /// a push action, a transaction ID and room account data.
    fn room(c: &Connection, room_id: &str) -> i64 {
        let nid = insert(c, room_id, "11", "@a:hs", 0).expect("room");
        let mut group = None;
        let mut prev: Vec<String> = vec![];
        let evs: [(&str, Option<&str>, &str, Option<&str>); 4] = [
            ("m.room.create", Some(""), r#"{"content":{"room_version":"11"}}"#, None),
            ("m.room.member", Some("@a:hs"), r#"{"content":{"membership":"join"}}"#, Some("join")),
            ("m.room.name", Some(""), r#"{"content":{"name":"Hello"}}"#, None),
            ("m.room.message", None, r#"{"content":{"body":"hi"}}"#, None),
        ];
        for (i, (t, k, json, membership)) in evs.into_iter().enumerate() {
            let id = format!("${room_id}{i}");
            let txn = (t == "m.room.message").then_some((1, "DEV", "scope", room_id));
            let done = events::append(
                c,
                nid,
                group,
                &NewEventRow {
                    event_id: &id,
                    event_type: t,
                    state_key: k,
                    sender: "@a:hs",
                    depth: i as i64,
                    origin_server_ts: 0,
                    json,
                    prev_events: &prev,
                    auth_events: &[],
                    membership,
                    txn,
                },
            )
            .expect("append");
            events::add_push_action(c, nid, "@a:hs", done.stream_pos, false, "main").expect("push");
            group = Some(done.state_after);
            prev = vec![id];
        }
        put_alias(c, &format!("#{room_id}:hs"), nid, "@a:hs").expect("alias");
        c.execute("INSERT INTO receipts VALUES (?1, '@a:hs', 'm.read', '', 'x', 0, 1)", [nid])
            .expect("receipt");
        crate::store::account_data::put(c, 1, room_id, "m.tag", "{}").expect("tag");
        nid
    }

    fn count(c: &Connection, sql: &str, nid: i64) -> i64 {
        c.query_row(sql, [nid], |r| r.get(0)).expect(sql)
    }

    #[test]
    fn stats_and_listing() {
        let c = db();
        room(&c, "!one:hs");
        let s = stats(&c, "hs", "!one:hs").expect("stats").expect("known");
        assert_eq!(s.name.as_deref(), Some("Hello"));
        assert_eq!((s.joined_members, s.joined_local_members, s.state_events), (1, 1, 3));
        assert!(s.federatable && !s.public);
        assert_eq!(
            stats(&c, "elsewhere", "!one:hs").expect("s").expect("k").joined_local_members,
            0
        );
        assert!(stats(&c, "hs", "!none:hs").expect("stats").is_none());
        room(&c, "!two:hs");
        let q = RoomListQuery { limit: 10, order_by: "name".into(), ..Default::default() };
        let (rows, total) = list_with_stats(&c, "hs", &q).expect("list");
        assert_eq!((rows.len(), total), (2, 2));
        for (order_by, _, _) in ROOM_SORT {
            for backwards in [false, true] {
                let q = RoomListQuery { order_by: order_by.to_string(), backwards, ..q.clone() };
                assert_eq!(list_with_stats(&c, "hs", &q).expect(order_by).1, 2, "{order_by}");
            }
        }
        let q = RoomListQuery { search_term: Some("!two:hs".into()), ..q };
        let (rows, total) = list_with_stats(&c, "hs", &q).expect("search");
        assert_eq!((rows[0].room_id.as_str(), total), ("!two:hs", 1));
    }

    #[test]
    fn purge_removes_the_room_and_nothing_else() {
        let c = db();
        let gone = room(&c, "!gone:hs");
        let kept = room(&c, "!kept:hs");
        block(&c, "!gone:hs", "@a:hs", 0).expect("block");
        purge(&c, gone).expect("purge");
        let per_room = [
            "SELECT COUNT(*) FROM events WHERE room_nid = ?1",
            "SELECT COUNT(*) FROM state_groups WHERE room_nid = ?1",
            "SELECT COUNT(*) FROM current_state WHERE room_nid = ?1",
            "SELECT COUNT(*) FROM memberships WHERE room_nid = ?1",
            "SELECT COUNT(*) FROM forward_extremities WHERE room_nid = ?1",
            "SELECT COUNT(*) FROM room_aliases WHERE room_nid = ?1",
            "SELECT COUNT(*) FROM receipts WHERE room_nid = ?1",
            "SELECT COUNT(*) FROM event_push_actions WHERE room_nid = ?1",
            "SELECT COUNT(*) FROM rooms WHERE nid = ?1",
        ];
        for sql in per_room {
            assert_eq!(count(&c, sql, gone), 0, "{sql}");
            assert!(count(&c, sql, kept) > 0, "the other room keeps its rows: {sql}");
        }
        // Rows left pointing at nothing (`?1` is unused: `count` binds one parameter).
        let orphans = [
            "SELECT COUNT(*) FROM state_group_entries
             WHERE group_id NOT IN (SELECT id FROM state_groups) AND ?1 > 0",
            "SELECT COUNT(*) FROM event_edges WHERE event_nid NOT IN (SELECT nid FROM events)
             AND ?1 > 0",
            "SELECT COUNT(*) FROM txn_ids WHERE event_id NOT IN (SELECT event_id FROM events)
             AND ?1 > 0",
            "SELECT COUNT(*) FROM account_data WHERE room_id = '!gone:hs' AND ?1 > 0",
        ];
        for sql in orphans {
            assert_eq!(count(&c, sql, 1), 0, "{sql}");
        }
        assert_eq!(count(&c, "SELECT COUNT(*) FROM txn_ids WHERE ?1 > 0", 1), 1);
        assert_eq!(blocked_by(&c, "!gone:hs").expect("blocked").as_deref(), Some("@a:hs"));
        let fk: i64 = c
            .query_row("SELECT COUNT(*) FROM pragma_foreign_key_check", [], |r| r.get(0))
            .expect("fk");
        assert_eq!(fk, 0);
    }
}
