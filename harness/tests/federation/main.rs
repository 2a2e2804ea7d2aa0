//! Server-server API scenarios. So far: the key server and the federation version.

mod auth;
mod directory;
mod keys;
mod profile;
mod public_rooms;
mod support;
