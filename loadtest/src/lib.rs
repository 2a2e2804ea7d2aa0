//! glia-loadtest: bounded, loopback-only load runs against Glia (started by the run) or any
//! homeserver (`--target URL`), driven by goose, and the side-by-side workload of
//! `ci/compare-synapse`. See the README's "Performance" section.

pub mod client;
pub mod compare;
pub mod scenarios;
pub mod server;
pub mod state_res;
pub mod stats;

/// goose's reqwest turns on rustls's aws-lc-rs provider next to the workspace's ring: with
/// two providers rustls cannot choose, so make ring the process default before any client
/// is built. Calling it again is harmless.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}
