//! A real client library drives the server: matrix-nio (Python) registers, logs in,
//! checks whoami, sets and reads its display name and logs out, through
//! `harness/clients/nio_login.py`.
//!
//! Needs the venv made by `ci/setup-python` (`<repo>/.venv/nio`), or a Python with
//! matrix-nio in `$GLIA_NIO_PYTHON`. Without it the test fails: it is never skipped.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use glia_harness::Deployment;
use glia_harness::client::unique_localpart;
use serde_json::Value;

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn nio_python() -> PathBuf {
    let py = match std::env::var_os("GLIA_NIO_PYTHON") {
        Some(p) if !p.is_empty() => PathBuf::from(p),
        _ => repo_root().join(".venv/nio/bin/python"),
    };
    assert!(
        py.exists(),
        "{} is missing: run ci/setup-python to install matrix-nio (or set GLIA_NIO_PYTHON)",
        py.display()
    );
    let check = Command::new(&py)
        .args(["-c", "import nio"])
        .output()
        .unwrap_or_else(|e| panic!("running {}: {e}; run ci/setup-python", py.display()));
    assert!(
        check.status.success(),
        "{} cannot import nio: run ci/setup-python\n{}",
        py.display(),
        String::from_utf8_lossy(&check.stderr)
    );
    py
}

struct Output {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

/// Run the script to completion (killing it after `timeout`) off the runtime's threads,
/// so the in-process server keeps serving it.
async fn run_script(py: PathBuf, args: Vec<String>, timeout: Duration) -> Output {
    tokio::task::spawn_blocking(move || {
        let script = repo_root().join("harness/clients/nio_login.py");
        let mut child = Command::new(&py)
            .arg(&script)
            .args(&args)
            .env("PYTHONUNBUFFERED", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {} {}: {e}", py.display(), script.display()));
        let deadline = Instant::now() + timeout;
        let status = loop {
            if let Some(s) = child.try_wait().expect("try_wait") {
                break Some(s);
            }
            if Instant::now() >= deadline {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        let out = child.wait_with_output().expect("script output");
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(
            status.is_some(),
            "nio_login.py did not finish within {timeout:?}\nstdout: {stdout}\nstderr: {stderr}"
        );
        Output { code: status.and_then(|s| s.code()), stdout, stderr }
    })
    .await
    .expect("script task")
}

/// matrix-nio's register (m.login.dummy), login, whoami, set/get_displayname, logout.
#[tokio::test]
async fn test_nio_register_login_profile_logout() {
    let py = nio_python();
    let d = Deployment::new(1).await;
    let base = d.hs(0).base_url.clone();
    let localpart = unique_localpart("nio");
    let out = run_script(
        py,
        vec![base, localpart.clone(), "nio correct horse battery".into()],
        Duration::from_secs(90),
    )
    .await;
    let line = out.stdout.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or_default();
    let r: Value = serde_json::from_str(line).unwrap_or_else(|e| {
        panic!(
            "nio_login.py printed no JSON ({e}), exit {:?}\nstdout: {}\nstderr: {}",
            out.code, out.stdout, out.stderr
        )
    });
    assert_eq!(out.code, Some(0), "nio_login.py failed: {r}\nstderr: {}", out.stderr);
    assert_eq!(r["ok"], true, "{r}");
    eprintln!("nio_login.py: {r}");

    let user_id = r["register"]["user_id"].as_str().expect("register.user_id");
    assert!(user_id.starts_with(&format!("@{localpart}:")), "registered as {user_id}: {r}");
    assert!(r["register"]["device_id"].as_str().is_some_and(|s| !s.is_empty()), "{r}");
    assert_eq!(r["login"]["user_id"], user_id, "{r}");
    let device = r["login"]["device_id"].as_str().expect("login.device_id");
    assert_ne!(device, r["register"]["device_id"], "login made a new device: {r}");
    assert_eq!(r["whoami"]["user_id"], user_id, "{r}");
    assert_eq!(r["whoami"]["device_id"], device, "{r}");
    assert_eq!(r["whoami"]["is_guest"], false, "{r}");
    assert_eq!(r["displayname"], "Nio Tester ✓ 🐍", "{r}");
    assert_eq!(r["logout"], true, "{r}");
    assert_eq!(r["after_logout"], "M_UNKNOWN_TOKEN", "{r}");
    d.destroy().await;
}
