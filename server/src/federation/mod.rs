//! Federation: the server's signing keys as other servers see them, other servers' keys,
//! the `X-Matrix` request signatures that authenticate server-to-server requests,
//! discovery and the outbound client.

pub mod client;
pub mod key_store;
pub mod keys;
pub mod queries;
pub mod resolve;
pub mod xmatrix;
