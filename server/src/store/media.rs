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

pub fn thumbnail(
    c: &Connection,
    media_id: &str,
    width: u32,
    height: u32,
    method: &str,
) -> Result<Option<ThumbnailRow>> {
    let mut st = c.prepare_cached(
        "SELECT content_type, length, sha256 FROM media_thumbnails
         WHERE media_id = ?1 AND width = ?2 AND height = ?3 AND method = ?4",
    )?;
    Ok(st
        .query_row(params![media_id, width, height, method], |r| {
            Ok(ThumbnailRow {
                content_type: r.get(0)?,
                length: r.get::<_, i64>(1)? as u64,
                sha256: r.get(2)?,
            })
        })
        .optional()?)
}

pub fn thumbnail_count(c: &Connection, media_id: &str) -> Result<u64> {
    let n: i64 = c
        .prepare_cached("SELECT COUNT(*) FROM media_thumbnails WHERE media_id = ?1")?
        .query_row([media_id], |r| r.get(0))?;
    Ok(n as u64)
}

#[allow(clippy::too_many_arguments)]
pub fn insert_thumbnail(
    c: &Connection,
    media_id: &str,
    width: u32,
    height: u32,
    method: &str,
    row: &ThumbnailRow,
    actual: (u32, u32),
    now: i64,
) -> Result<()> {
    c.prepare_cached(
        "INSERT OR IGNORE INTO media_thumbnails (media_id, width, height, method, content_type,
                                                 length, sha256, actual_width, actual_height,
                                                 created_ts)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
    )?
    .execute(params![
        media_id,
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
        insert_thumbnail(&c, "m", 32, 32, "crop", &t, (32, 32), 5).expect("insert");
        insert_thumbnail(&c, "m", 32, 32, "crop", &t, (32, 32), 6).expect("racing insert");
        assert_eq!(thumbnail_count(&c, "m").expect("count"), 1);
        assert!(thumbnail(&c, "m", 32, 32, "crop").expect("get").is_some());
        assert!(thumbnail(&c, "m", 32, 32, "scale").expect("get").is_none());
    }
}
