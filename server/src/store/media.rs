//! Media metadata: local media IDs (uploaded or pending) and their cached thumbnails.
//! The bytes themselves are files named by SHA-256 (see `crate::media`).

use rusqlite::{Connection, OptionalExtension, params};

use crate::error::Result;

#[derive(Debug, Clone)]
pub struct MediaRow {
    pub media_id: String,
    pub user_nid: i64,
    pub created_ts: i64,
    pub content_type: Option<String>,
    pub upload_name: Option<String>,
    /// `None` while an asynchronous upload is pending.
    pub length: Option<u64>,
    pub sha256: Option<String>,
    pub authenticated: bool,
}

/// What an upload stored.
#[derive(Debug, Clone)]
pub struct Content {
    pub content_type: String,
    pub upload_name: Option<String>,
    pub length: u64,
    pub sha256: String,
}

#[derive(Debug, Clone)]
pub struct ThumbnailRow {
    pub content_type: String,
    pub length: u64,
    pub sha256: String,
}

pub fn get(c: &Connection, media_id: &str) -> Result<Option<MediaRow>> {
    let mut st = c.prepare_cached(
        "SELECT media_id, user_nid, created_ts, content_type, upload_name, length, sha256,
                authenticated
         FROM media WHERE media_id = ?1",
    )?;
    Ok(st
        .query_row([media_id], |r| {
            Ok(MediaRow {
                media_id: r.get(0)?,
                user_nid: r.get(1)?,
                created_ts: r.get(2)?,
                content_type: r.get(3)?,
                upload_name: r.get(4)?,
                length: r.get::<_, Option<i64>>(5)?.map(|n| n as u64),
                sha256: r.get(6)?,
                authenticated: r.get(7)?,
            })
        })
        .optional()?)
}

/// A media ID created for an asynchronous upload, without content yet.
pub fn insert_pending(c: &Connection, media_id: &str, user_nid: i64, now: i64) -> Result<()> {
    c.prepare_cached("INSERT INTO media (media_id, user_nid, created_ts) VALUES (?1, ?2, ?3)")?
        .execute(params![media_id, user_nid, now])?;
    Ok(())
}

/// A media ID with its content, in one go (`POST /upload`).
pub fn insert_uploaded(
    c: &Connection,
    media_id: &str,
    user_nid: i64,
    now: i64,
    content: &Content,
) -> Result<()> {
    c.prepare_cached(
        "INSERT INTO media (media_id, user_nid, created_ts, content_type, upload_name, length,
                            sha256, uploaded_ts)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?3)",
    )?
    .execute(params![
        media_id,
        user_nid,
        now,
        content.content_type,
        content.upload_name,
        content.length as i64,
        content.sha256
    ])?;
    Ok(())
}

/// Give a pending media ID its content. False if it has content already (or vanished):
/// the check and the write are one statement, so two racing uploads cannot both win.
pub fn complete_pending(
    c: &Connection,
    media_id: &str,
    now: i64,
    content: &Content,
) -> Result<bool> {
    let n = c
        .prepare_cached(
            "UPDATE media SET content_type = ?2, upload_name = ?3, length = ?4, sha256 = ?5,
                              uploaded_ts = ?6
             WHERE media_id = ?1 AND length IS NULL",
        )?
        .execute(params![
            media_id,
            content.content_type,
            content.upload_name,
            content.length as i64,
            content.sha256,
            now
        ])?;
    Ok(n == 1)
}

/// How many of the user's media IDs created after `since` still wait for content, and the
/// creation time of the oldest of them.
pub fn pending_count(c: &Connection, user_nid: i64, since: i64) -> Result<(u64, Option<i64>)> {
    let mut st = c.prepare_cached(
        "SELECT COUNT(*), MIN(created_ts) FROM media
         WHERE user_nid = ?1 AND length IS NULL AND created_ts > ?2",
    )?;
    Ok(st.query_row(params![user_nid, since], |r| Ok((r.get::<_, i64>(0)? as u64, r.get(1)?)))?)
}

/// Which media a thumbnail belongs to: a local media ID, or another server's media
/// (origin, media ID) cached here. Their thumbnails live in separate tables.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MediaKey {
    Local(String),
    Remote(String, String),
}

impl MediaKey {
    /// The thumbnail table, and the origin (`?1`, empty for local media) and media ID
    /// (`?2`) to bind: local rows match `?1 = ''`, which keeps one set of statements.
    fn table(&self) -> (&'static str, &'static str, &str, &str) {
        match self {
            MediaKey::Local(id) => ("media_thumbnails", "?1 = ''", "", id),
            MediaKey::Remote(origin, id) => ("remote_media_thumbnails", "origin = ?1", origin, id),
        }
    }
}

pub fn thumbnail(
    c: &Connection,
    key: &MediaKey,
    width: u32,
    height: u32,
    method: &str,
) -> Result<Option<ThumbnailRow>> {
    let (table, origin_match, origin, id) = key.table();
    let mut st = c.prepare_cached(&format!(
        "SELECT content_type, length, sha256 FROM {table}
         WHERE {origin_match} AND media_id = ?2 AND width = ?3 AND height = ?4 AND method = ?5"
    ))?;
    Ok(st
        .query_row(params![origin, id, width, height, method], |r| {
            Ok(ThumbnailRow {
                content_type: r.get(0)?,
                length: r.get::<_, i64>(1)? as u64,
                sha256: r.get(2)?,
            })
        })
        .optional()?)
}

pub fn thumbnail_count(c: &Connection, key: &MediaKey) -> Result<u64> {
    let (table, origin_match, origin, id) = key.table();
    let n: i64 = c
        .prepare_cached(&format!(
            "SELECT COUNT(*) FROM {table} WHERE {origin_match} AND media_id = ?2"
        ))?
        .query_row(params![origin, id], |r| r.get(0))?;
    Ok(n as u64)
}

#[allow(clippy::too_many_arguments)]
pub fn insert_thumbnail(
    c: &Connection,
    key: &MediaKey,
    width: u32,
    height: u32,
    method: &str,
    row: &ThumbnailRow,
    actual: (u32, u32),
    now: i64,
) -> Result<()> {
    let (table, _, origin, id) = key.table();
    // Local rows have no origin column; `?1` is then bound and unused.
    let (col, val) = match key {
        MediaKey::Local(_) => ("", ""),
        MediaKey::Remote(..) => ("origin, ", "?1, "),
    };
    c.prepare_cached(&format!(
        "INSERT OR IGNORE INTO {table} ({col}media_id, width, height, method, content_type,
                                        length, sha256, actual_width, actual_height, created_ts)
         VALUES ({val}?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)"
    ))?
    .execute(params![
        origin,
        id,
        width,
        height,
        method,
        row.content_type,
        row.length as i64,
        row.sha256,
        actual.0,
        actual.1,
        now
    ])?;
    Ok(())
}

/// Another server's media as cached here.
#[derive(Debug, Clone)]
pub struct RemoteRow {
    pub content_type: String,
    pub upload_name: Option<String>,
    pub length: u64,
    pub sha256: String,
}

pub fn remote(c: &Connection, origin: &str, media_id: &str) -> Result<Option<RemoteRow>> {
    let mut st = c.prepare_cached(
        "SELECT content_type, upload_name, length, sha256 FROM remote_media
         WHERE origin = ?1 AND media_id = ?2",
    )?;
    Ok(st
        .query_row(params![origin, media_id], |r| {
            Ok(RemoteRow {
                content_type: r.get(0)?,
                upload_name: r.get(1)?,
                length: r.get::<_, i64>(2)? as u64,
                sha256: r.get(3)?,
            })
        })
        .optional()?)
}

pub fn insert_remote(
    c: &Connection,
    origin: &str,
    media_id: &str,
    row: &RemoteRow,
    now: i64,
) -> Result<()> {
    c.prepare_cached(
        "INSERT OR REPLACE INTO remote_media
           (origin, media_id, content_type, upload_name, length, sha256, fetched_ts)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )?
    .execute(params![
        origin,
        media_id,
        row.content_type,
        row.upload_name,
        row.length as i64,
        row.sha256,
        now
    ])?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn db() -> Connection {
        let mut c = Connection::open_in_memory().expect("open");
        crate::store::migrations::apply(&mut c).expect("migrate");
        c.execute("INSERT INTO users (nid, user_id, created_ts) VALUES (1, '@a:x', 0)", [])
            .expect("user");
        c
    }

    fn content(sha: &str) -> Content {
        Content {
            content_type: "image/png".into(),
            upload_name: Some("a.png".into()),
            length: 3,
            sha256: sha.into(),
        }
    }

    #[test]
    fn pending_then_completed_once() {
        let c = db();
        insert_pending(&c, "abc", 1, 100).expect("create");
        let row = get(&c, "abc").expect("get").expect("row");
        assert_eq!(row.length, None);
        assert!(row.authenticated);
        assert_eq!(pending_count(&c, 1, 0).expect("count"), (1, Some(100)));
        assert_eq!(pending_count(&c, 1, 100).expect("count").0, 0, "expired ones do not count");
        assert!(complete_pending(&c, "abc", 200, &content("00")).expect("complete"));
        assert!(!complete_pending(&c, "abc", 300, &content("11")).expect("again"), "only once");
        let row = get(&c, "abc").expect("get").expect("row");
        assert_eq!((row.length, row.sha256.as_deref()), (Some(3), Some("00")));
        assert_eq!(pending_count(&c, 1, 0).expect("count").0, 0);
    }

    #[test]
    fn thumbnails_are_cached_once() {
        let c = db();
        insert_uploaded(&c, "m", 1, 1, &content("aa")).expect("upload");
        let t = ThumbnailRow { content_type: "image/png".into(), length: 9, sha256: "bb".into() };
        let m = MediaKey::Local("m".into());
        insert_thumbnail(&c, &m, 32, 32, "crop", &t, (32, 32), 5).expect("insert");
        insert_thumbnail(&c, &m, 32, 32, "crop", &t, (32, 32), 6).expect("racing insert");
        assert_eq!(thumbnail_count(&c, &m).expect("count"), 1);
        assert!(thumbnail(&c, &m, 32, 32, "crop").expect("get").is_some());
        assert!(thumbnail(&c, &m, 32, 32, "scale").expect("get").is_none());
    }

    #[test]
    fn remote_media_and_its_thumbnails_are_kept_apart_from_local() {
        let c = db();
        insert_uploaded(&c, "m", 1, 1, &content("aa")).expect("upload");
        let row = RemoteRow {
            content_type: "image/png".into(),
            upload_name: None,
            length: 3,
            sha256: "cc".into(),
        };
        insert_remote(&c, "other.example", "m", &row, 1).expect("remote");
        assert_eq!(remote(&c, "other.example", "m").expect("get").expect("row").sha256, "cc");
        assert!(remote(&c, "third.example", "m").expect("get").is_none());
        let t = ThumbnailRow { content_type: "image/png".into(), length: 9, sha256: "dd".into() };
        let r = MediaKey::Remote("other.example".into(), "m".into());
        insert_thumbnail(&c, &r, 32, 32, "crop", &t, (32, 32), 5).expect("insert");
        assert!(thumbnail(&c, &r, 32, 32, "crop").expect("get").is_some());
        let local = MediaKey::Local("m".into());
        assert!(thumbnail(&c, &local, 32, 32, "crop").expect("get").is_none(), "not local");
        assert_eq!(thumbnail_count(&c, &local).expect("count"), 0);
        assert_eq!(thumbnail_count(&c, &r).expect("count"), 1);
    }
}
