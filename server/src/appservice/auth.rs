//! Appservice authentication: a request carrying an appservice's `as_token` acts as the
//! appservice's sender, or as the user named by `?user_id=` when that user is in the
//! appservice's namespace and registered (masquerading). `?device_id=` (MSC3202, also as
//! `org.matrix.msc3202.device_id`) picks one of that user's devices.

use std::sync::Arc;

use super::AppService;
use crate::app::App;
use crate::error::{Error, Result};
use crate::http::auth::User;
use crate::http::request::Req;
use crate::store::{e2e_keys, now_ms, users};

/// The user an appservice request acts as.
pub async fn user(app: &App, req: &Req, a: &Arc<AppService>) -> Result<User> {
    let target = req.query("user_id").unwrap_or(&a.user_id).to_string();
    if !a.owns_user(&target) {
        return Err(Error::Forbidden(format!(
            "Application service cannot masquerade as this user ({target})."
        )));
    }
    let device = req.query("device_id").or_else(|| req.query("org.matrix.msc3202.device_id"));
    let device = device.map(str::to_string);
    let t = target.clone();
    let (row, dev) = app
        .db
        .read(move |c| {
            let Some(u) = users::get(c, &t)? else { return Ok((None, None)) };
            let dev = match &device {
                Some(d) => {
                    Some(e2e_keys::device_nid(c, u.nid, d)?.map(|n| (n, d.clone())).ok_or(()))
                }
                None => None,
            };
            Ok((Some(u), dev))
        })
        .await?;
    let row = row.ok_or_else(|| {
        Error::Forbidden(format!("Application service has not registered this user ({target})"))
    })?;
    if row.deactivated {
        return Err(Error::Forbidden(format!("User {target} has been deactivated")));
    }
    // Without a device the appservice acts device-less, as in Synapse.
    let (device_nid, device_id) = match dev {
        None => (0, String::new()),
        Some(Ok(d)) => d,
        Some(Err(())) => {
            return Err(Error::Forbidden(
                "Application service has not registered this device".into(),
            ));
        }
    };
    Ok(User {
        user_nid: row.nid,
        user_id: row.user_id,
        device_nid,
        device_id,
        is_admin: row.is_admin,
        is_guest: false,
        appservice: Some(a.reg.id.clone()),
    })
}

/// Make sure every appservice's sender user exists (it acts without registering).
pub async fn ensure_senders(app: &App) -> Result<()> {
    let ids: Vec<String> = app.appservices.list.iter().map(|a| a.user_id.clone()).collect();
    app.db
        .write(move |c| {
            for id in &ids {
                if !users::exists(c, id)? {
                    let localpart = id.trim_start_matches('@').split(':').next().unwrap_or("");
                    let new = users::NewUser {
                        user_id: id,
                        password_hash: None,
                        is_admin: false,
                        is_guest: false,
                        displayname: Some(localpart),
                    };
                    users::insert(c, &new, now_ms())?;
                }
            }
            Ok(())
        })
        .await
}
