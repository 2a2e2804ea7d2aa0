//! Server notices (`POST /_synapse/admin/v1/send_server_notice`): messages from the server
//! itself, sent by a system user into a private room it shares with each recipient, as
//! Synapse does.
//!
//! Synapse needs a `server_notices` section in its config; Glia has no such key yet, so
//! notices are always enabled for admins, with fixed names:
//! - the system user is `@_server:<server_name>`, created on the first notice with no
//!   password and no devices, so nobody can log in as it. Its localpart starts with `_`,
//!   which registration refuses, so no one can register the name first and impersonate
//!   the server;
//! - each recipient's room is named "Server Notices", created by the system user with the
//!   recipient invited (power level -10 for everyone but the system user, so it is
//!   read-only) and tagged `m.server_notice` in the recipient's account data. A recipient
//!   who left their notice room gets a new one with the next notice.

use ruma::OwnedEventId;
use serde_json::{Value, json};

use super::{NewEvent, Txn, create};
use crate::app::App;
use crate::error::{Error, Result};
use crate::store::{account_data, events, rooms as room_store, server_notices, users};
use crate::users::{self as accounts, Registration};

pub const SYSTEM_LOCALPART: &str = "_server";
pub const SYSTEM_DISPLAY_NAME: &str = "Server Notices";
pub const ROOM_NAME: &str = "Server Notices";
/// The room tag clients use to show the room as the server's.
pub const ROOM_TAG: &str = "m.server_notice";

pub fn system_user_id(app: &App) -> String {
    format!("@{SYSTEM_LOCALPART}:{}", app.config.server_name)
}

/// The system user, created if this is the first notice.
async fn system_user(app: &App) -> Result<String> {
    let uid = system_user_id(app);
    let id = uid.clone();
    if app.db.read(move |c| users::exists(c, &id)).await? {
        return Ok(uid);
    }
    let r = Registration {
        user_id: uid.clone(),
        password: None,
        is_admin: false,
        is_guest: false,
        displayname: Some(SYSTEM_DISPLAY_NAME.into()),
    };
    match accounts::register(app, r, None, String::new()).await {
        // Another notice may have created it a moment ago.
        Ok(_) | Err(Error::UserInUse(_)) => Ok(uid),
        Err(e) => Err(e),
    }
}

/// The recipient's notice room: the one they last had, if they are still joined or
/// invited there, else a new one.
async fn notice_room(app: &App, system: &str, user_nid: i64, user_id: &str) -> Result<String> {
    let uid = user_id.to_string();
    let existing = app
        .db
        .read(move |c| {
            let Some(room_id) = server_notices::room_of(c, user_nid)? else { return Ok(None) };
            let Some(room) = room_store::get(c, &room_id)? else { return Ok(None) };
            let m = events::membership(c, room.nid, &uid)?;
            Ok(matches!(m.as_deref(), Some("join" | "invite")).then_some(room_id))
        })
        .await?;
    if let Some(r) = existing {
        return Ok(r);
    }
    let req = create::CreateRoom {
        preset: Some("private_chat".into()),
        name: Some(ROOM_NAME.into()),
        invite: vec![user_id.to_string()],
        power_level_content_override: json!({"users_default": -10}).as_object().cloned(),
        ..Default::default()
    };
    let room_id = create::create(app, system, req).await?;
    let rid = room_id.clone();
    app.db
        .write(move |c| {
            server_notices::set_room(c, user_nid, &rid)?;
            let tags = json!({"tags": {ROOM_TAG: {}}}).to_string();
            account_data::put(c, user_nid, &rid, "m.tag", &tags)?;
            Ok(())
        })
        .await?;
    app.notifier.notify();
    tracing::info!(%user_id, %room_id, "created server notice room");
    Ok(room_id)
}

/// Send one notice event to a local user. With `txn`, a retried request returns the
/// first request's event instead of sending again.
pub async fn send(
    app: &App,
    user_nid: i64,
    user_id: &str,
    event_type: &str,
    state_key: Option<&str>,
    content: Value,
    txn: Option<Txn>,
) -> Result<OwnedEventId> {
    if let Some(t) = txn.clone() {
        let prior = app
            .db
            .read(move |c| events::txn_event(c, t.user_nid, &t.device_id, &t.scope, &t.txn_id))
            .await?;
        if let Some(id) = prior {
            return OwnedEventId::try_from(id).map_err(Error::internal);
        }
    }
    let system = system_user(app).await?;
    let room_id = notice_room(app, &system, user_nid, user_id).await?;
    let new = match state_key {
        Some(k) => NewEvent::state(event_type, k, content),
        None => NewEvent::message(event_type, content),
    };
    let id = super::send(app, &room_id, &system, new, txn).await?;
    tracing::info!(%user_id, event_id = %id, "sent server notice");
    Ok(id)
}
