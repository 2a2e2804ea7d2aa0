//! The client-server API.

pub mod account;
pub mod account_data;
pub mod appservice;
pub mod capabilities;
pub mod create_room;
pub mod devices;
pub mod directory;
pub mod discovery;
pub mod filter;
pub mod key_backup;
pub mod keys;
pub mod legacy_events;
pub mod login;
pub mod membership;
pub mod presence;
pub mod profile;
pub mod push_rules;
pub mod pushers;
pub mod receipts;
pub mod register;
pub mod room_events;
pub mod room_send;
pub mod room_state;
pub mod sync;
pub mod tags;
pub mod thirdparty;
pub mod to_device;
pub mod typing;
pub mod user_directory;

use crate::error::{Error, Result};
use crate::http::auth::User;
use crate::http::router::Router;

pub fn routes(r: &mut Router) {
    discovery::routes(r);
    capabilities::routes(r);
    register::routes(r);
    login::routes(r);
    account::routes(r);
    devices::routes(r);
    profile::routes(r);
    account_data::routes(r);
    filter::routes(r);
    push_rules::routes(r);
    pushers::routes(r);
    sync::routes(r);
    create_room::routes(r);
    membership::routes(r);
    room_state::routes(r);
    room_send::routes(r);
    room_events::routes(r);
    directory::routes(r);
    typing::routes(r);
    receipts::routes(r);
    presence::routes(r);
    tags::routes(r);
    user_directory::routes(r);
    keys::routes(r);
    to_device::routes(r);
    key_backup::routes(r);
    appservice::routes(r);
    thirdparty::routes(r);
    legacy_events::routes(r);
}

/// Endpoints under `/user/{userId}/...` act only on the caller's own data.
pub fn require_self(user: &User, path_user: &str, what: &str) -> Result<()> {
    if user.user_id == path_user {
        Ok(())
    } else {
        Err(Error::Forbidden(format!("Cannot {what} for other users.")))
    }
}
