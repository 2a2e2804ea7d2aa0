//! Server-server API scenarios. So far: the key server and the federation version.

mod acl;
mod auth;
mod keys;
mod rooms;
