//! Server-server API scenarios: keys, request authentication, rooms between two Glias,
//! and bad input from (and misbehaving) fake federation servers.

mod acl;
mod auth;
mod backfill;
mod dag_repair;
mod device_list_out;
mod directory;
mod e2e_keys;
mod fakes;
mod inbound_forks;
mod inbound_gaps;
mod inbound_invite;
mod inbound_membership;
mod inbound_send;
mod keys;
mod media;
mod notary;
mod outbound_fake;
mod profile;
mod public_rooms;
mod query_auth;
mod rooms;
mod rooms_v12;
mod support;
