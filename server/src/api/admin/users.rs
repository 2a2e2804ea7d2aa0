//! `GET /_synapse/admin/v2/users/{userId}`: an account as Synapse's admin API shows it.

use std::sync::Arc;

use serde_json::json;

use crate::app::App;
use crate::error::{Result, not_found};
use crate::http::request::Req;
use crate::http::response::{Resp, ok};
use crate::store::users;

pub async fn query_user(app: Arc<App>, req: Req) -> Result<Resp> {
    app.auth_admin(&req).await?;
    let uid = req.param(0).to_string();
    let u = app.db.read(move |c| users::get(c, &uid)).await?;
    let u = u.ok_or_else(|| not_found("User not found"))?;
    Ok(ok(&json!({
        "name": u.user_id,
        "admin": u.is_admin,
        "is_guest": u.is_guest,
        "deactivated": u.deactivated,
        "displayname": u.displayname,
        "avatar_url": u.avatar_url,
        "user_type": null,
        "locked": false,
        "shadow_banned": false,
    })))
}
