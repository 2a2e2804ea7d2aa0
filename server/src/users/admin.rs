//! Account changes an admin makes to someone else's account: deactivation (which, as in
//! Synapse, also makes the user leave every room) and password resets.

use crate::app::App;
use crate::error::Result;
use crate::rooms::membership;
use crate::store::{devices, events, users};

/// Deactivate a local account: no password, profile, devices or tokens any more (see
/// `store::users::deactivate`), marked erased if asked, then out of every room it was
/// joined to, invited to or knocking on. Deactivating twice is harmless.
pub async fn deactivate(app: &App, user_nid: i64, user_id: &str, erase: bool) -> Result<()> {
    app.db
        .write(move |c| {
            users::deactivate(c, user_nid)?;
            if erase {
                users::set_erased(c, user_nid, true)?;
            }
            Ok(())
        })
        .await?;
    app.notifier.notify(); // a device-list change
    let uid = user_id.to_string();
    let rooms = app.db.read(move |c| events::memberships_of(c, &uid)).await?;
    for m in rooms {
        if !matches!(m.membership.as_str(), "join" | "invite" | "knock") {
            continue;
        }
        let left =
            membership::set_membership(app, user_id, &m.room_id, user_id, "leave", None, None);
        if let Err(e) = left.await {
            let room_id = &m.room_id;
            tracing::warn!(%user_id, %room_id, error = %e, "deactivated user could not leave room");
        }
    }
    tracing::info!(%user_id, erase, "deactivated account (admin)");
    Ok(())
}

/// Give the account a new password; with `logout_devices`, every session ends except
/// `keep` (the admin's own device when admins reset their own password).
pub async fn set_password(
    app: &App,
    user_nid: i64,
    password: String,
    logout_devices: bool,
    keep: Option<i64>,
) -> Result<()> {
    let hash = super::hash_password(password).await?;
    app.db
        .write(move |c| {
            users::set_password_hash(c, user_nid, Some(&hash))?;
            if logout_devices {
                devices::delete_all_except(c, user_nid, keep)?;
            }
            Ok(())
        })
        .await?;
    if logout_devices {
        app.notifier.notify(); // a device-list change
    }
    Ok(())
}
