//! The binary's own surface: help and version. (Scenarios that run the server live in
//! harness/tests/binary; this file also makes `cargo test` build `target/debug/glia`
//! for them, with the same features as the test build.)

use std::process::Command;

fn glia() -> Command {
    Command::new(env!("CARGO_BIN_EXE_glia"))
}

#[test]
fn help_lists_every_command() {
    let out = glia().arg("--help").output().expect("run glia --help");
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    for cmd in ["serve", "generate", "register-user", "check-config"] {
        assert!(text.contains(cmd), "--help does not mention {cmd}:\n{text}");
    }
}

#[test]
fn version_is_printed() {
    let out = glia().arg("--version").output().expect("run glia --version");
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains(env!("CARGO_PKG_VERSION")));
}

#[test]
fn unknown_command_fails() {
    let out = glia().arg("frobnicate").output().expect("run glia");
    assert!(!out.status.success());
}
