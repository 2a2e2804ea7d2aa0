//! `/sync`: initial and incremental, long-polling on the notifier.
//!
//! Streams served so far: global account data (push rules included). Room sections are
//! present and empty because no rooms exist yet; they fill in with the rooms work.

pub mod token;

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::app::App;
use crate::error::{Error, Result};
use crate::filter::{EventFilter, Filter};
use crate::http::auth::User;
use crate::store::account_data;
pub use token::SyncToken;

/// The longest a client may ask the server to hold a request open.
const MAX_TIMEOUT: Duration = Duration::from_secs(300);

pub struct SyncRequest {
    pub since: Option<SyncToken>,
    pub timeout: Duration,
    pub filter: Filter,
}

/// The positions every stream has reached (committed).
async fn current(app: &App) -> Result<SyncToken> {
    app.db
        .read(|c| {
            let account_data =
                c.query_row("SELECT position FROM streams WHERE name = 'account_data'", [], |r| {
                    r.get(0)
                })?;
            Ok(SyncToken { account_data })
        })
        .await
}

pub async fn sync(app: &App, user: &User, req: SyncRequest) -> Result<Value> {
    let deadline = Instant::now() + req.timeout.min(MAX_TIMEOUT);
    let mut wake = app.notifier.subscribe();
    loop {
        let now = current(app).await?;
        let since = match req.since {
            None => return build(app, user, None, now, &req.filter).await,
            Some(s) => s,
        };
        if now.is_after(&since) {
            let body = build(app, user, Some(since), now, &req.filter).await?;
            // Another user's writes advance the stream too; only answer with data for us.
            if has_data(&body) {
                return Ok(body);
            }
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return build(app, user, Some(since), now, &req.filter).await;
        }
        tokio::select! {
            changed = wake.changed() => changed.map_err(|_| Error::internal("notifier gone"))?,
            _ = tokio::time::sleep(left) => {}
            _ = app.shutting_down() => {
                return build(app, user, Some(since), now, &req.filter).await;
            }
        }
    }
}

fn has_data(body: &Value) -> bool {
    body["account_data"]["events"].as_array().is_some_and(|a| !a.is_empty())
}

fn wanted(f: Option<&EventFilter>, event_type: &str) -> bool {
    let Some(f) = f else { return true };
    let matches = |pat: &String| match pat.strip_suffix('*') {
        Some(prefix) => event_type.starts_with(prefix),
        None => pat == event_type,
    };
    if f.not_types.as_ref().is_some_and(|n| n.iter().any(matches)) {
        return false;
    }
    f.types.as_ref().is_none_or(|t| t.iter().any(matches))
}

async fn build(
    app: &App,
    user: &User,
    since: Option<SyncToken>,
    upto: SyncToken,
    filter: &Filter,
) -> Result<Value> {
    let nid = user.user_nid;
    let (from, to) = (since.map(|s| s.account_data).unwrap_or(0), upto.account_data);
    let mut rows = app.db.read(move |c| account_data::changed_global(c, nid, from, to)).await?;
    if since.is_none() && !rows.iter().any(|(t, _)| t == crate::store::push_rules::TYPE) {
        // Clients read their push rules from the initial sync; defaults are not stored.
        let rules = crate::api::client::push_rules::load(app, user).await?;
        let content = json!({"global": crate::api::client::push_rules::ruleset_json(&rules)?});
        rows.push((crate::store::push_rules::TYPE.to_string(), content.to_string()));
    }
    let af = filter.account_data.as_ref();
    let mut events = vec![];
    for (event_type, content) in rows {
        if !wanted(af, &event_type) {
            continue;
        }
        let content: Value = serde_json::from_str(&content).map_err(Error::internal)?;
        events.push(json!({"type": event_type, "content": content}));
    }
    if let Some(limit) = af.and_then(|f| f.limit) {
        events.truncate(limit as usize);
    }
    Ok(json!({
        "next_batch": upto.to_string(),
        "account_data": {"events": events},
        "rooms": {"join": {}, "invite": {}, "leave": {}, "knock": {}},
    }))
}
