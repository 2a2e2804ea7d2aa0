//! Server-server API scenarios: keys, request authentication, rooms between two Glias,
//! and bad input from (and misbehaving) fake federation servers.

mod auth;
mod fakes;
mod inbound_forks;
mod inbound_invite;
mod inbound_membership;
mod inbound_send;
mod keys;
mod outbound_fake;
mod rooms;
