//! Complement-style black-box scenarios for any Matrix homeserver.
//!
//! A [`Deployment`] is N homeservers: by default Glia in-process on loopback ports, each
//! with its own temporary data directory; `GLIA_HARNESS_URL` points the same scenarios at
//! already-running servers (Synapse, another Glia) instead. A [`Client`] talks HTTP to one
//! of them with `must_*` helpers that fail the test with the whole response in the message.

pub mod appservice;
pub mod client;
pub mod deployment;
pub mod federation;
pub mod matchers;
pub mod process;
pub mod python;
pub mod rooms;
pub mod stub_http;
pub mod sync;
pub mod wait;

pub use client::{Client, Response};
pub use deployment::{Deployment, Homeserver, HsConfig, Target};
pub use wait::wait_until;

/// The fixtures directory at the workspace root.
pub fn fixtures_dir() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures")
}
