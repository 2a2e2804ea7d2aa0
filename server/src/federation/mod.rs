//! Federation: the server's signing keys as other servers see them, other servers' keys,
//! the `X-Matrix` request signatures that authenticate server-to-server requests,
//! discovery and the outbound client.

pub mod backfill;
pub mod client;
pub mod inbound;
pub mod key_store;
pub mod keys;
pub mod membership;
pub mod queries;
pub mod remote_state;
pub mod resolve;
pub mod sender;
pub mod xmatrix;

/// Percent-encode one path segment of a federation URL (IDs contain `!`, `$`, `:`, `#`).
pub fn encode(segment: &str) -> String {
    percent_encoding::utf8_percent_encode(segment, percent_encoding::NON_ALPHANUMERIC).to_string()
}
