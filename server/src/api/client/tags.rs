//! Room tags, kept in the `m.tag` room account data as the spec presents them in `/sync`.

use std::sync::Arc;

use serde_json::{Map, Value, json};

use crate::app::App;
use crate::error::{Error, Result, bad_json, invalid_param};
use crate::http::request::Req;
use crate::http::response::{Resp, empty_object, ok};
use crate::http::router::Router;
use crate::store::account_data;

pub fn routes(r: &mut Router) {
    r.get("/_matrix/client/{v}/user/{}/rooms/{}/tags", get_tags);
    r.put("/_matrix/client/{v}/user/{}/rooms/{}/tags/{}", put_tag);
    r.delete("/_matrix/client/{v}/user/{}/rooms/{}/tags/{}", delete_tag);
}

fn room_param(req: &Req) -> Result<String> {
    ruma::RoomId::parse(req.param(1)).map_err(|_| invalid_param("Invalid room ID"))?;
    Ok(req.param(1).to_string())
}

async fn get_tags(app: Arc<App>, req: Req) -> Result<Resp> {
    let user = app.auth(&req).await?;
    super::require_self(&user, req.param(0), "read tags")?;
    let (nid, room) = (user.user_nid, room_param(&req)?);
    let stored = app.db.read(move |c| account_data::get(c, nid, &room, "m.tag")).await?;
    let content: Value = match stored {
        Some(t) => serde_json::from_str(&t).map_err(Error::internal)?,
        None => json!({"tags": {}}),
    };
    Ok(ok(&json!({"tags": content.get("tags").cloned().unwrap_or(json!({}))})))
}

/// Change the tag map inside one writer job, then wake syncs.
async fn modify(
    app: &App,
    user_nid: i64,
    room: String,
    f: impl FnOnce(&mut Map<String, Value>) + Send + 'static,
) -> Result<()> {
    app.db
        .write(move |c| {
            let mut content: Value = match account_data::get(c, user_nid, &room, "m.tag")? {
                Some(t) => serde_json::from_str(&t).map_err(Error::internal)?,
                None => json!({"tags": {}}),
            };
            if !content["tags"].is_object() {
                content["tags"] = json!({});
            }
            if let Some(tags) = content["tags"].as_object_mut() {
                f(tags);
            }
            account_data::put(c, user_nid, &room, "m.tag", &content.to_string()).map(|_| ())
        })
        .await?;
    app.notifier.notify();
    Ok(())
}

async fn put_tag(app: Arc<App>, req: Req) -> Result<Resp> {
    let user = app.auth(&req).await?;
    super::require_self(&user, req.param(0), "set tags")?;
    let room = room_param(&req)?;
    let tag = req.param(2).to_string();
    if tag.is_empty() || tag.len() > 255 {
        return Err(invalid_param("Invalid tag"));
    }
    let body = req.json_object(true)?;
    if let Some(o) = body.get("order")
        && !o.is_number()
        && !o.is_null()
    {
        return Err(bad_json("'order' must be a number"));
    }
    modify(&app, user.user_nid, room, move |tags| {
        tags.insert(tag, Value::Object(body));
    })
    .await?;
    Ok(empty_object())
}

async fn delete_tag(app: Arc<App>, req: Req) -> Result<Resp> {
    let user = app.auth(&req).await?;
    super::require_self(&user, req.param(0), "delete tags")?;
    let room = room_param(&req)?;
    let tag = req.param(2).to_string();
    modify(&app, user.user_nid, room, move |tags| {
        tags.remove(&tag);
    })
    .await?;
    Ok(empty_object())
}
