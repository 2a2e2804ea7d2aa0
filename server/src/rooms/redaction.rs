//! Applying a redaction to the event it redacts: the stored JSON becomes the room
//! version's redacted form, with `redacted_because`, for every later read.

use ruma::canonical_json::{CanonicalJsonObject, RedactedBecause};
use ruma::room_version_rules::RoomVersionRules;

use crate::app::App;
use crate::error::{Error, Result};
use crate::store::events;

/// Redact `target` by the stored redaction `redaction_id` (nothing happens when either is
/// unknown: a redaction may arrive before its target).
pub async fn apply(
    app: &App,
    rules: &RoomVersionRules,
    target: &str,
    redaction_id: &str,
) -> Result<()> {
    let (rules, target, redaction_id) =
        (rules.clone(), target.to_string(), redaction_id.to_string());
    app.db
        .write(move |c| {
            let Some(row) = events::by_id(c, &target)? else { return Ok(()) };
            let Some(by) = events::by_id(c, &redaction_id)? else { return Ok(()) };
            let obj: CanonicalJsonObject =
                serde_json::from_str(&row.json).map_err(Error::internal)?;
            let because: CanonicalJsonObject =
                serde_json::from_str(&by.json).map_err(Error::internal)?;
            let redacted = ruma::canonical_json::redact(
                obj,
                &rules.redaction,
                Some(RedactedBecause::from_json(because)),
            )
            .map_err(Error::internal)?;
            let text = serde_json::to_string(&redacted).map_err(Error::internal)?;
            events::mark_redacted(c, &target, &redaction_id, &text)
        })
        .await
}

/// Whether a redaction from another server may take effect on `target`: the sender's
/// server sent the target too, or the sender has the room's `redact` power level.
pub fn allowed(
    power_levels: Option<&serde_json::Value>,
    redaction_sender: &str,
    target_sender: &str,
) -> bool {
    let server = |u: &str| u.split_once(':').map(|(_, s)| s.to_string());
    if server(redaction_sender) == server(target_sender) {
        return true;
    }
    let empty = serde_json::json!({});
    let p = power_levels.unwrap_or(&empty);
    let level =
        p["users"][redaction_sender].as_i64().unwrap_or(p["users_default"].as_i64().unwrap_or(0));
    level >= p["redact"].as_i64().unwrap_or(50)
}
