//! Client-server API scenarios, named after the Complement tests they mirror.
//! Run against in-process Glia by default; `GLIA_HARNESS_URL=...` runs them elsewhere.

mod admin_register;
mod apidoc_login;
mod apidoc_register;
mod apidoc_versions;
mod bad_input;
mod directory;
mod ephemeral;
mod history_visibility;
mod knocking;
mod legacy_events;
mod metrics;
mod rate_limits;
mod registration_controls;
mod room_extras;
mod room_upgrade;
mod sync_account_data;
mod sync_rooms;
mod unread_counts;
