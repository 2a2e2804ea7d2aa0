//! The global `account_data` section.

use rusqlite::Connection;
use serde_json::{Value, json};

use super::Ctx;
use crate::error::{Error, Result};
use crate::filter::EventFilter;
use crate::store::{account_data, push_rules};

/// Whether an event type passes a filter's `types` / `not_types` (with `*` wildcards).
pub fn type_wanted(f: Option<&EventFilter>, event_type: &str) -> bool {
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

pub fn section(c: &Connection, ctx: &Ctx<'_>) -> Result<Value> {
    let nid = ctx.user.user_nid;
    let (from, to) = (ctx.since.map(|s| s.account_data).unwrap_or(0), ctx.upto.account_data);
    let mut rows = account_data::changed_global(c, nid, from, to)?;
    if ctx.since.is_none() && !rows.iter().any(|(t, _)| t == push_rules::TYPE) {
        // Clients read their push rules from the initial sync; defaults are not stored.
        let rules = crate::api::client::push_rules::parse_stored(
            push_rules::get(c, nid)?,
            &ctx.user.user_id,
        )?;
        let content = json!({"global": rules});
        rows.push((push_rules::TYPE.to_string(), content.to_string()));
    }
    let af = ctx.filter.account_data.as_ref();
    let mut events = vec![];
    for (event_type, content) in rows {
        if !type_wanted(af, &event_type) {
            continue;
        }
        let content: Value = serde_json::from_str(&content).map_err(Error::internal)?;
        events.push(json!({"type": event_type, "content": content}));
    }
    if let Some(limit) = af.and_then(|f| f.limit) {
        events.truncate(limit as usize);
    }
    Ok(json!({"events": events}))
}
