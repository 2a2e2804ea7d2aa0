//! User and alias queries: before answering "unknown" for a local user or alias in an
//! appservice's namespace, ask that appservice (`GET /_matrix/app/v1/users/{userId}`,
//! `/rooms/{alias}`); it may create the user or alias before answering 200.

use std::time::Duration;

use http::Method;

use super::http::segment;
use crate::app::App;
use crate::store::{rooms, users};

const QUERY_TIMEOUT: Duration = Duration::from_secs(10);

/// Give the appservices owning a local, unknown `user_id` the chance to create it.
pub async fn ensure_user(app: &App, user_id: &str) {
    let owners: Vec<_> = app
        .appservices
        .list
        .iter()
        .filter(|a| a.reg.url.is_some() && a.reg.users.iter().any(|n| n.matches(user_id)))
        .cloned()
        .collect();
    if owners.is_empty() {
        return;
    }
    let uid = user_id.to_string();
    if app.db.read(move |c| users::exists(c, &uid)).await.unwrap_or(true) {
        return;
    }
    let path = format!("/_matrix/app/v1/users/{}", segment(user_id));
    ask(app, &owners, &path).await;
}

/// Give the appservices owning an unknown local `alias` the chance to create it. Returns
/// whether one answered that it did.
pub async fn ensure_alias(app: &App, alias: &str) -> bool {
    let owners: Vec<_> = app
        .appservices
        .list
        .iter()
        .filter(|a| a.reg.url.is_some() && a.owns_alias(alias))
        .cloned()
        .collect();
    if owners.is_empty() {
        return false;
    }
    let a = alias.to_string();
    if app.db.read(move |c| rooms::get_alias(c, &a)).await.ok().flatten().is_some() {
        return false;
    }
    ask(app, &owners, &format!("/_matrix/app/v1/rooms/{}", segment(alias))).await
}

async fn ask(app: &App, owners: &[std::sync::Arc<super::AppService>], path: &str) -> bool {
    for a in owners {
        let url = a.reg.url.as_deref().unwrap_or_default();
        let r = app
            .appservices
            .client
            .request(Method::GET, url, path, &a.reg.hs_token, None, QUERY_TIMEOUT)
            .await;
        match r {
            Ok(_) => return true,
            Err(e) => tracing::info!(appservice = %a.reg.id, %path, "query: {e}"),
        }
    }
    false
}
