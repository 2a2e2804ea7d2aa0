//! `/sync`: initial and incremental, long-polling on the notifier.
//!
//! The response is assembled from one function per section (`account_data`, rooms,
//! end-to-end encryption), each reading its stream between the client's token and the
//! positions the server had reached when the request started building.

pub mod account_data;
pub mod e2ee;
pub mod rooms;
pub mod token;

use std::time::{Duration, Instant};

use rusqlite::Connection;
use serde_json::{Value, json};

use crate::app::App;
use crate::error::{Error, Result};
use crate::filter::Filter;
use crate::http::auth::User;
pub use token::SyncToken;

/// A JSON object of owned values, moved in: `json!` copies each value by serializing it,
/// which for the rooms of an initial sync was a copy of the whole answer.
pub(crate) fn object<const N: usize>(entries: [(&str, Value); N]) -> Value {
    Value::Object(entries.into_iter().map(|(k, v)| (k.to_string(), v)).collect())
}

/// The longest a client may ask the server to hold a request open.
const MAX_TIMEOUT: Duration = Duration::from_secs(300);

pub struct SyncRequest {
    pub since: Option<SyncToken>,
    pub timeout: Duration,
    pub filter: Filter,
    pub full_state: bool,
}

/// What every section builder needs.
pub struct Ctx<'a> {
    pub user: &'a User,
    pub since: Option<SyncToken>,
    pub upto: SyncToken,
    pub filter: &'a Filter,
    pub full_state: bool,
}

/// The positions every stream has reached (committed).
pub async fn current(app: &App) -> Result<SyncToken> {
    let mut t = app
        .db
        .read(|c| {
            let mut st = c.prepare_cached("SELECT name, position FROM streams")?;
            let mut t = SyncToken::default();
            let rows = st.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))?;
            for row in rows {
                let (name, pos) = row?;
                match name.as_str() {
                    "account_data" => t.account_data = pos,
                    "events" => t.events = pos,
                    "to_device" => t.to_device = pos,
                    "device_lists" => t.device_lists = pos,
                    "receipts" => t.receipts = pos,
                    "presence" => t.presence = pos,
                    _ => {}
                }
            }
            Ok(t)
        })
        .await?;
    t.typing = app.notifier.typing_position();
    Ok(t)
}

pub async fn sync(app: &App, user: &User, req: SyncRequest) -> Result<Value> {
    let deadline = Instant::now() + req.timeout.min(MAX_TIMEOUT);
    let mut wake = app.notifier.subscribe();
    loop {
        let now = current(app).await?;
        let Some(since) = req.since else {
            return build(app, user, None, now, &req).await;
        };
        if since.exceeds(&now) {
            return Err(Error::InvalidParam("since token is from the future".into()));
        }
        if now.is_after(&since) || req.full_state {
            let body = build(app, user, Some(since), now, &req).await?;
            // Other users' writes advance the streams too; answer only with data for us.
            if req.full_state || has_data(&body) {
                return Ok(body);
            }
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return build(app, user, Some(since), now, &req).await;
        }
        let _waiting = crate::metrics::WaiterGuard::new();
        let _parked = app.notifier.waiting.guard();
        tokio::select! {
            changed = wake.changed() => changed.map_err(|_| Error::internal("notifier gone"))?,
            _ = tokio::time::sleep(left) => {}
            _ = app.shutting_down() => {
                return build(app, user, Some(since), now, &req).await;
            }
        }
    }
}

fn presence_section(c: &Connection, ctx: &Ctx<'_>) -> Result<Value> {
    let (from, to) = (ctx.since.map(|s| s.presence).unwrap_or(0), ctx.upto.presence);
    let rows = crate::store::presence::changed_for(c, &ctx.user.user_id, from, to)?;
    let events: Vec<Value> = rows
        .iter()
        .map(|r| json!({"type": "m.presence", "sender": r.user_id, "content": crate::api::client::presence::content(r)}))
        .collect();
    Ok(json!({"events": events}))
}

fn non_empty(v: &Value) -> bool {
    match v {
        Value::Array(a) => !a.is_empty(),
        Value::Object(o) => !o.is_empty(),
        _ => false,
    }
}

/// Whether an incremental response carries anything for the client.
fn has_data(body: &Value) -> bool {
    non_empty(&body["account_data"]["events"])
        || ["join", "invite", "leave", "knock"].iter().any(|k| non_empty(&body["rooms"][k]))
        || non_empty(&body["to_device"]["events"])
        || non_empty(&body["device_lists"]["changed"])
        || non_empty(&body["device_lists"]["left"])
        || non_empty(&body["presence"]["events"])
}

async fn build(
    app: &App,
    user: &User,
    since: Option<SyncToken>,
    upto: SyncToken,
    req: &SyncRequest,
) -> Result<Value> {
    let typing = app.typing.snapshot();
    let (user, filter, full_state) = (user.clone(), req.filter.clone(), req.full_state);
    let device_nid = user.device_nid;
    // Every section from one reader connection in one blocking task: a hop to the
    // blocking pool per section cost more than most sections themselves.
    let (body, acked) = app
        .db
        .read(move |c| {
            let ctx = Ctx { user: &user, since, upto, filter: &filter, full_state };
            let mut body = object([
                ("next_batch", Value::String(upto.to_string())),
                ("account_data", account_data::section(c, &ctx)?),
                ("rooms", rooms::section(c, &ctx, typing)?),
                ("presence", presence_section(c, &ctx)?),
            ]);
            let acked = e2ee::section(c, &ctx, &mut body)?;
            Ok((body, acked))
        })
        .await?;
    if acked {
        let from = since.map(|s| s.to_device).unwrap_or(0);
        app.db.write(move |c| crate::store::to_device::delete_acked(c, device_nid, from)).await?;
    }
    Ok(body)
}
