//! Applying a redaction to the event it redacts: the stored event is replaced by its
//! redacted form (the room version's algorithm), with `redacted_because`. Local
//! redactions are authorised before they are sent; for redactions from other servers
//! the spec leaves the check to the time they are applied: the redaction's sender must
//! be of the same server as the target's, or have the power level `redact`.

use ruma::canonical_json::{CanonicalJsonObject, RedactedBecause};
use ruma::room_version_rules::RoomVersionRules;
use rusqlite::Connection;

use crate::app::App;
use crate::error::{Error, Result};
use crate::rooms::{self, Locked, Pdu};
use crate::store::events;

fn server_of(user_id: &str) -> &str {
    user_id.split_once(':').map(|(_, s)| s).unwrap_or("")
}

/// Store `target` redacted by `redaction_id` in an open write, so that the redaction and
/// its effect become visible together. Some(whether the target is a state event) when it
/// was redacted; None when either is missing, the target is in another room or is
/// redacted already.
pub fn redact_in(
    c: &Connection,
    rules: &RoomVersionRules,
    room_nid: i64,
    target: &str,
    redaction_id: &str,
) -> Result<Option<bool>> {
    let Some(row) = events::by_id(c, target)? else { return Ok(None) };
    if row.room_nid != room_nid || row.redacted_by.is_some() {
        return Ok(None);
    }
    let Some(by) = events::by_id(c, redaction_id)? else { return Ok(None) };
    let obj: CanonicalJsonObject = serde_json::from_str(&row.json).map_err(Error::internal)?;
    let because: CanonicalJsonObject = serde_json::from_str(&by.json).map_err(Error::internal)?;
    let redacted = ruma::canonical_json::redact(
        obj,
        &rules.redaction,
        Some(RedactedBecause::from_json(because)),
    )
    .map_err(Error::internal)?;
    let text = serde_json::to_string(&redacted).map_err(Error::internal)?;
    events::mark_redacted(c, target, redaction_id, &text)?;
    // A redacted event no longer counts as unread, as in Synapse.
    if let Some(pos) = row.stream_pos {
        events::remove_push_actions(c, room_nid, pos)?;
    }
    Ok(Some(row.state_key.is_some()))
}

/// Store `target` redacted by `redaction_id` (both already stored in `room`).
pub async fn apply(app: &App, room: &mut Locked, target: &str, redaction_id: &str) -> Result<()> {
    let (rules, nid) = (room.rules.clone(), room.nid);
    let (target, redaction_id) = (target.to_string(), redaction_id.to_string());
    let was_state =
        app.db.write(move |c| redact_in(c, &rules, nid, &target, &redaction_id)).await?;
    if was_state == Some(true) {
        // Auth reads state contents: reload the room so it sees the redacted form.
        rooms::Rooms::reload(app, room).await?;
    }
    Ok(())
}

/// Whether a redaction from another server may apply: its sender is of the target
/// sender's server, or has the power level `redact` in current state.
fn may_redact(room: &Locked, target_sender: &str, redaction_sender: &str) -> bool {
    server_of(target_sender) == server_of(redaction_sender) || {
        let power = rooms::state_content(room, "m.room.power_levels", "").unwrap_or_default();
        rooms::user_level(room, redaction_sender) >= power["redact"].as_i64().unwrap_or(50)
    }
}

/// The redactions (target, redaction ID) to apply in the same write that stores `pdu`,
/// an accepted event from another server: `pdu`'s own target when it is a redaction
/// and the target is stored, and a stored redaction that arrived before `pdu` itself.
/// Both parts are read under the room lock, so they hold when the write runs.
pub async fn planned_with(app: &App, room: &Locked, pdu: &Pdu) -> Result<Vec<(String, String)>> {
    let mut plan = vec![];
    let id = pdu.event_id.to_string();
    if pdu.type_str() == "m.room.redaction"
        && let Some(target) = pdu.redacts.as_ref().map(|t| t.to_string())
        && target != id
    {
        let t = target.clone();
        if let Some(row) = app.db.read(move |c| events::by_id(c, &t)).await?
            && row.room_nid == room.nid
            && row.redacted_by.is_none()
        {
            if may_redact(room, &row.sender, pdu.sender.as_str()) {
                plan.push((target, id.clone()));
            } else {
                tracing::info!(redaction = %pdu.event_id, %target, "not applying a redaction its sender may not make");
            }
        }
    }
    let (t, nid) = (id.clone(), room.nid);
    let found = app.db.read(move |c| events::redactions_of(c, nid, &t)).await?;
    for (rid, json) in found {
        let redaction = Pdu::from_stored(&rid, &json, &room.rules)?;
        // The first allowed one redacts; the others would find it redacted already.
        if rid != id && may_redact(room, pdu.sender.as_str(), redaction.sender.as_str()) {
            plan.push((id.clone(), rid));
            break;
        }
    }
    Ok(plan)
}

/// Apply an accepted redaction from another server, if its sender may redact the target:
/// same server as the target's sender, or the power level `redact` in current state.
/// A target we do not have yet is redacted when it arrives ([`apply_pending`]).
pub async fn apply_remote(app: &App, room: &mut Locked, redaction: &Pdu) -> Result<()> {
    let Some(target) = redaction.redacts.as_ref().map(|t| t.to_string()) else { return Ok(()) };
    // An event that redacts itself is ignored (SyTest checks it; it would otherwise erase
    // its own reason to exist).
    if target == redaction.event_id.as_str() {
        return Ok(());
    }
    let t = target.clone();
    let Some(row) = app.db.read(move |c| events::by_id(c, &t)).await? else { return Ok(()) };
    if row.room_nid != room.nid || row.redacted_by.is_some() {
        return Ok(());
    }
    let allowed = may_redact(room, &row.sender, redaction.sender.as_str());
    if !allowed {
        tracing::info!(redaction = %redaction.event_id, %target, "not applying a redaction its sender may not make");
        return Ok(());
    }
    apply(app, room, &target, redaction.event_id.as_str()).await
}

/// After an event from another server is stored (live or backfilled): a redaction is
/// applied to its target, and redactions that arrived before the event (or that our
/// users sent for an event we lacked) are applied to it now, as the spec's "redactions
/// may arrive before the event they redact" needs.
pub async fn after_remote(app: &App, room: &mut Locked, pdu: &Pdu) -> Result<()> {
    if pdu.type_str() == "m.room.redaction" {
        apply_remote(app, room, pdu).await?;
    }
    apply_pending(app, room, pdu.event_id.as_str()).await
}

/// Apply the stored, accepted redactions of the room that name `target`.
pub async fn apply_pending(app: &App, room: &mut Locked, target: &str) -> Result<()> {
    let (t, nid) = (target.to_string(), room.nid);
    let found = app.db.read(move |c| events::redactions_of(c, nid, &t)).await?;
    for (id, json) in found {
        let redaction = Pdu::from_stored(&id, &json, &room.rules)?;
        apply_remote(app, room, &redaction).await?;
    }
    Ok(())
}
