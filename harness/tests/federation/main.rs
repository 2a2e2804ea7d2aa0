//! Server-server API scenarios. So far: the key server and the federation version.

mod acl;
mod auth;
mod directory;
mod e2e_keys;
mod keys;
mod media;
mod notary;
mod profile;
mod public_rooms;
mod query_auth;
mod rooms;
mod support;
