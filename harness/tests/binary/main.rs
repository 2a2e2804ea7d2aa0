//! Black-box scenarios for the `glia` binary and its transport: the command line, signals
//! and `kill -9`, TLS and HTTP/2, `X-Forwarded-For`, body limits.
//!
//! The CLI and lifecycle scenarios run `target/debug/glia` (or `$GLIA_BINARY`): build it
//! first with `cargo build -p glia`. They always start their own servers, so they ignore
//! `GLIA_HARNESS_URL`.

mod appservice_queue;
mod cli;
mod deploy;
mod lifecycle;
mod transport;

use std::time::Duration;

/// Deadline for one CLI command (register-user hashes a password on the server).
pub const CLI_TIMEOUT: Duration = Duration::from_secs(60);

/// The password every scenario here uses.
pub const PASSWORD: &str = "correct horse battery staple";
