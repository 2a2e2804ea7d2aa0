//! The global `account_data` section.

use rusqlite::Connection;
use serde_json::Value;

use super::{Ctx, object};
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
    let rows = account_data::changed_global(c, nid, from, to)?;
    let af = ctx.filter.account_data.as_ref();
    // Contents are moved in, not copied (the push rules are large).
    let event = |event_type: String, content: Value| {
        object([("type", Value::String(event_type)), ("content", content)])
    };
    let mut events = vec![];
    let mut has_push_rules = false;
    for (event_type, content) in rows {
        has_push_rules |= event_type == push_rules::TYPE;
        if !type_wanted(af, &event_type) {
            continue;
        }
        let content: Value = serde_json::from_str(&content).map_err(Error::internal)?;
        events.push(event(event_type, content));
    }
    if ctx.since.is_none() && !has_push_rules && type_wanted(af, push_rules::TYPE) {
        // Clients read their push rules from the initial sync; defaults are not stored.
        let rules = crate::api::client::push_rules::parse_stored(
            push_rules::get(c, nid)?,
            &ctx.user.user_id,
        )?;
        events.push(event(push_rules::TYPE.to_string(), object([("global", rules)])));
    }
    if let Some(limit) = af.and_then(|f| f.limit) {
        events.truncate(limit as usize);
    }
    Ok(object([("events", Value::Array(events))]))
}
