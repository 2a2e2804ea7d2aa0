//! Python client libraries (matrix-nio) run by the tests against a server: finding the
//! venv `ci/setup-python` makes, and running a script with a deadline off the async
//! runtime so an in-process server keeps serving it.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The venv's Python (or `$GLIA_NIO_PYTHON`), checked by running `check` (Python code
/// that exits non-zero when what the test needs is missing). Fails, never skips.
pub fn nio_python(check: &str, what: &str) -> PathBuf {
    venv_python("nio", "GLIA_NIO_PYTHON", "ci/setup-python", check, what)
}

/// The Python of `<repo>/.venv/<venv>` (or of `$env_var`), made by the `setup` script,
/// checked by running `check`. Fails, never skips.
pub fn venv_python(venv: &str, env_var: &str, setup: &str, check: &str, what: &str) -> PathBuf {
    let py = match std::env::var_os(env_var) {
        Some(p) if !p.is_empty() => PathBuf::from(p),
        _ => repo_root().join(format!(".venv/{venv}/bin/python")),
    };
    assert!(
        py.exists(),
        "{} is missing: run {setup} to install {what} (or set {env_var})",
        py.display()
    );
    let out = Command::new(&py)
        .args(["-c", check])
        .output()
        .unwrap_or_else(|e| panic!("running {}: {e}; run {setup}", py.display()));
    assert!(
        out.status.success(),
        "{} cannot run {what}: run {setup}\n{}",
        py.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    py
}

pub struct ScriptOutput {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

/// Run `script` (relative to the repository root) to completion, killing it after
/// `timeout`, off the runtime's threads.
pub async fn run_script(
    py: PathBuf,
    script: &'static str,
    args: Vec<String>,
    timeout: Duration,
) -> ScriptOutput {
    tokio::task::spawn_blocking(move || {
        let path = repo_root().join(script);
        let mut child = Command::new(&py)
            .arg(&path)
            .args(&args)
            .env("PYTHONUNBUFFERED", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {} {}: {e}", py.display(), path.display()));
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
            // Polling the child process for exit (std has no wait with a deadline).
            std::thread::sleep(Duration::from_millis(20));
        };
        let out = child.wait_with_output().expect("script output");
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(
            status.is_some(),
            "{script} did not finish within {timeout:?}\nstdout: {stdout}\nstderr: {stderr}"
        );
        ScriptOutput { code: status.and_then(|s| s.code()), stdout, stderr }
    })
    .await
    .expect("script task")
}
