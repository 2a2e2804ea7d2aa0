//! `POST /user_directory/search`: local users who share a room with the searcher or are in
//! a public room (Synapse's default, `search_all_users: false`).

use std::sync::Arc;

use serde_json::{Value, json};

use crate::app::App;
use crate::error::{Result, bad_json};
use crate::http::request::Req;
use crate::http::response::{Resp, ok};
use crate::http::router::Router;

pub fn routes(r: &mut Router) {
    r.post("/_matrix/client/{v}/user_directory/search", search);
}

async fn search(app: Arc<App>, req: Req) -> Result<Resp> {
    let user = app.auth(&req).await?;
    let body = req.json_object(false)?;
    let term = body
        .get("search_term")
        .and_then(Value::as_str)
        .ok_or_else(|| bad_json("'search_term' must be a string"))?
        .to_lowercase();
    let limit = match body.get("limit") {
        None | Some(Value::Null) => 10,
        Some(v) => {
            v.as_u64().ok_or_else(|| bad_json("'limit' must be a number"))?.min(1000) as usize
        }
    };
    let me = user.user_id.clone();
    let like = format!("%{}%", term.replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_"));
    let rows = app
        .db
        .read(move |c| {
            let mut st = c.prepare_cached(
                "SELECT u.user_id, u.displayname, u.avatar_url FROM users u
                 WHERE u.deactivated = 0 AND u.is_guest = 0
                   AND (lower(u.user_id) LIKE ?2 ESCAPE '\\' OR lower(COALESCE(u.displayname, '')) LIKE ?2 ESCAPE '\\')
                   AND (u.user_id = ?1
                     OR EXISTS (SELECT 1 FROM memberships a JOIN memberships b ON a.room_nid = b.room_nid
                                WHERE a.user_id = ?1 AND a.membership = 'join'
                                  AND b.user_id = u.user_id AND b.membership = 'join')
                     OR EXISTS (SELECT 1 FROM memberships m JOIN rooms r ON r.nid = m.room_nid
                                WHERE m.user_id = u.user_id AND m.membership = 'join' AND r.is_public = 1))
                 ORDER BY u.user_id LIMIT ?3",
            )?;
            let rows = st.query_map(rusqlite::params![me, like, (limit + 1) as i64], |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, Option<String>>(1)?, r.get::<_, Option<String>>(2)?))
            })?;
            Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
        })
        .await?;
    let limited = rows.len() > limit;
    let results: Vec<Value> = rows
        .into_iter()
        .take(limit)
        .map(|(id, name, avatar)| {
            let mut v = json!({"user_id": id});
            if let Some(n) = name {
                v["display_name"] = json!(n);
            }
            if let Some(a) = avatar {
                v["avatar_url"] = json!(a);
            }
            v
        })
        .collect();
    Ok(ok(&json!({"results": results, "limited": limited})))
}
