//! What the admin API asks of the media tables (`media`, `media_thumbnails`, owned by the
//! media repository): a user's media page by page, media by age and size, and deletion.

use std::collections::BTreeSet;

use rusqlite::{Connection, params};

use crate::error::Result;

/// A local media item as the admin API lists it.
#[derive(Debug, Clone)]
pub struct MediaItem {
    pub media_id: String,
    pub user_id: String,
    pub media_type: Option<String>,
    pub media_length: Option<i64>,
    pub upload_name: Option<String>,
    pub created_ts: i64,
    /// Glia does not track downloads: the upload time (or creation, while pending).
    pub last_access_ts: i64,
    pub authenticated: bool,
    pub sha256: Option<String>,
}

const COLUMNS: &str = "m.media_id, u.user_id, m.content_type, m.length, m.upload_name, \
    m.created_ts, COALESCE(m.uploaded_ts, m.created_ts), m.authenticated, m.sha256";

fn item(r: &rusqlite::Row<'_>) -> rusqlite::Result<MediaItem> {
    Ok(MediaItem {
        media_id: r.get(0)?,
        user_id: r.get(1)?,
        media_type: r.get(2)?,
        media_length: r.get(3)?,
        upload_name: r.get(4)?,
        created_ts: r.get(5)?,
        last_access_ts: r.get(6)?,
        authenticated: r.get(7)?,
        sha256: r.get(8)?,
    })
}

/// `order_by` values Synapse accepts for a user's media, and the SQL they sort by
/// (Glia has no quarantine: those sort as equal).
pub const SORT: &[(&str, &str)] = &[
    ("media_id", "m.media_id"),
    ("upload_name", "m.upload_name"),
    ("created_ts", "m.created_ts"),
    ("last_access_ts", "COALESCE(m.uploaded_ts, m.created_ts)"),
    ("media_length", "m.length"),
    ("media_type", "m.content_type"),
    ("quarantined_by", "NULL"),
    ("safe_from_quarantine", "NULL"),
];

pub fn get(conn: &Connection, media_id: &str) -> Result<Option<MediaItem>> {
    use rusqlite::OptionalExtension;
    Ok(conn
        .prepare_cached(&format!(
            "SELECT {COLUMNS} FROM media m JOIN users u ON u.nid = m.user_nid WHERE m.media_id = ?1"
        ))?
        .query_row([media_id], item)
        .optional()?)
}

/// A page of the user's media and how many they have.
pub fn by_user(
    conn: &Connection,
    user_nid: i64,
    from: i64,
    limit: i64,
    order_by: &str,
    backwards: bool,
) -> Result<(Vec<MediaItem>, i64)> {
    let total: i64 =
        conn.query_row("SELECT COUNT(*) FROM media WHERE user_nid = ?1", [user_nid], |r| r.get(0))?;
    let col = SORT.iter().find(|(k, _)| *k == order_by).map(|(_, c)| *c).unwrap_or("m.created_ts");
    let dir = if backwards { "DESC" } else { "ASC" };
    let mut st = conn.prepare(&format!(
        "SELECT {COLUMNS} FROM media m JOIN users u ON u.nid = m.user_nid WHERE m.user_nid = ?1
         ORDER BY {col} {dir}, m.media_id ASC LIMIT ?2 OFFSET ?3"
    ))?;
    let rows = st.query_map(params![user_nid, limit, from], item)?;
    Ok((rows.collect::<rusqlite::Result<_>>()?, total))
}

/// Local media last touched before `before_ts` and larger than `size_gt` bytes; with
/// `keep_profiles`, not the avatar of any user or the current avatar of any room.
pub fn old(
    conn: &Connection,
    server_name: &str,
    before_ts: i64,
    size_gt: i64,
    keep_profiles: bool,
) -> Result<Vec<String>> {
    let keep = if keep_profiles {
        "AND ('mxc://' || ?3 || '/' || m.media_id) NOT IN
           (SELECT avatar_url FROM users WHERE avatar_url IS NOT NULL)
         AND ('mxc://' || ?3 || '/' || m.media_id) NOT IN
           (SELECT json_extract(e.json, '$.content.url') FROM current_state cs
            JOIN events e ON e.nid = cs.event_nid WHERE cs.event_type = 'm.room.avatar')"
    } else {
        "AND ?3 IS NOT NULL"
    };
    let mut st = conn.prepare(&format!(
        "SELECT m.media_id FROM media m
         WHERE COALESCE(m.uploaded_ts, m.created_ts) < ?1 AND COALESCE(m.length, 0) > ?2 {keep}
         ORDER BY m.media_id"
    ))?;
    let rows = st.query_map(params![before_ts, size_gt, server_name], |r| r.get(0))?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// Delete media items and their thumbnails. Returns the IDs that existed and the blobs
/// (SHA-256 names) nothing refers to any more, whose files the caller removes once this
/// has committed.
pub fn delete(conn: &Connection, media_ids: &[String]) -> Result<(Vec<String>, Vec<String>)> {
    let mut deleted = vec![];
    let mut blobs = BTreeSet::new();
    for id in media_ids {
        let mut st = conn.prepare_cached(
            "SELECT sha256 FROM media WHERE media_id = ?1 AND sha256 IS NOT NULL
             UNION SELECT sha256 FROM media_thumbnails WHERE media_id = ?1",
        )?;
        for sha in st.query_map([id], |r| r.get::<_, String>(0))? {
            blobs.insert(sha?);
        }
        conn.prepare_cached("DELETE FROM media_thumbnails WHERE media_id = ?1")?.execute([id])?;
        if conn.prepare_cached("DELETE FROM media WHERE media_id = ?1")?.execute([id])? == 1 {
            deleted.push(id.clone());
        }
    }
    let mut orphans = vec![];
    for sha in blobs {
        let used: bool = conn
            .prepare_cached(
                "SELECT EXISTS (SELECT 1 FROM media WHERE sha256 = ?1)
                   OR EXISTS (SELECT 1 FROM media_thumbnails WHERE sha256 = ?1)
                   OR EXISTS (SELECT 1 FROM remote_media WHERE sha256 = ?1)
                   OR EXISTS (SELECT 1 FROM remote_media_thumbnails WHERE sha256 = ?1)",
            )?
            .query_row([&sha], |r| r.get(0))?;
        if !used {
            orphans.push(sha);
        }
    }
    Ok((deleted, orphans))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shared_blobs_stay_until_their_last_user_goes() {
        let mut c = Connection::open_in_memory().expect("db");
        crate::store::migrations::apply(&mut c).expect("migrate");
        c.execute_batch(
            "INSERT INTO users (nid, user_id, created_ts) VALUES (1, '@a:hs', 0);
             INSERT INTO media
               (media_id, user_nid, created_ts, content_type, length, sha256, uploaded_ts)
               VALUES ('one', 1, 10, 'image/png', 5, 'aaaa', 10),
                      ('two', 1, 20, 'image/png', 5, 'aaaa', 20),
                      ('three', 1, 30, 'text/plain', 100, 'bbbb', 30);
             INSERT INTO media_thumbnails (media_id, width, height, method, content_type, length,
               sha256, actual_width, actual_height, created_ts)
               VALUES ('one', 32, 32, 'scale', 'image/png', 3, 'cccc', 32, 32, 11);
             UPDATE users SET avatar_url = 'mxc://hs/three' WHERE nid = 1;",
        )
        .expect("rows");
        for (order_by, _) in SORT {
            let (rows, total) = by_user(&c, 1, 0, 10, order_by, false).expect(order_by);
            assert_eq!((rows.len(), total), (3, 3), "{order_by}");
        }
        let (page, total) = by_user(&c, 1, 0, 2, "created_ts", true).expect("page");
        assert_eq!(total, 3);
        assert_eq!(page.iter().map(|m| m.media_id.as_str()).collect::<Vec<_>>(), ["three", "two"]);
        assert_eq!(old(&c, "hs", 25, 0, true).expect("old"), ["one", "two"]);
        assert_eq!(old(&c, "hs", 100, 0, false).expect("old"), ["one", "three", "two"]);
        assert_eq!(old(&c, "hs", 100, 50, false).expect("big"), ["three"]);
        let (gone, orphans) = delete(&c, &["one".into(), "nope".into()]).expect("delete");
        assert_eq!(gone, ["one"]);
        assert_eq!(orphans, ["cccc"], "aaaa is still used by 'two'");
        let (_, orphans) = delete(&c, &["two".into()]).expect("delete");
        assert_eq!(orphans, ["aaaa"]);
    }
}
