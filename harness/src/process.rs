//! Glia as a separate process: for scenarios about the binary itself (the CLI, signals,
//! `kill -9`). The binary is `$GLIA_BINARY`, else `target/debug/glia` beside the tests.

use std::ffi::OsStr;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::client::Client;
use crate::deployment::{HsConfig, config_yaml};
use crate::wait::wait_until;

pub fn glia_binary() -> PathBuf {
    if let Ok(p) = std::env::var("GLIA_BINARY") {
        return PathBuf::from(p);
    }
    // target/debug/deps/<test-exe> -> target/debug/glia
    let exe = std::env::current_exe().expect("current exe");
    let dir = exe.parent().and_then(Path::parent).expect("target dir");
    let bin = dir.join("glia");
    assert!(
        bin.exists(),
        "{} is missing: build it first (cargo build -p glia) or set GLIA_BINARY",
        bin.display()
    );
    bin
}

/// A free loopback port (bound and released; fine for tests on one machine).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port()
}

pub struct GliaProcess {
    pub child: Child,
    pub base_url: String,
    pub config_path: PathBuf,
    pub db_path: PathBuf,
    pub log_path: PathBuf,
}

impl GliaProcess {
    /// Write a config into `dir` and start `glia serve -c` on a free port; wait until it answers.
    pub async fn start(dir: &Path, cfg: &HsConfig) -> GliaProcess {
        let port = free_port();
        let config_path = dir.join("homeserver.yaml");
        if !config_path.exists() {
            std::fs::write(&config_path, config_yaml("localhost", dir, port, cfg))
                .expect("write config");
        }
        let text = std::fs::read_to_string(&config_path).expect("config");
        let port = text
            .lines()
            .find_map(|l| l.trim().strip_prefix("- port: ").and_then(|p| p.trim().parse().ok()))
            .unwrap_or(port);
        let log_path = dir.join("glia.log");
        let log = std::fs::File::create(&log_path).expect("log file");
        let child = Command::new(glia_binary())
            .args(["serve", "-c"])
            .arg(&config_path)
            .env("GLIA_LOG", "info")
            .env("NO_COLOR", "1")
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("spawn glia");
        let base_url = format!("http://127.0.0.1:{port}");
        let p = GliaProcess {
            child,
            base_url,
            config_path,
            db_path: dir.join("homeserver.db"),
            log_path,
        };
        p.wait_ready().await;
        p
    }

    pub async fn wait_ready(&self) {
        let c = Client::new(&self.base_url);
        let url = format!("{}/_matrix/client/versions", self.base_url);
        let log = self.log_path.clone();
        wait_until(&format!("glia to answer at {url}"), Duration::from_secs(30), || {
            let c = c.clone();
            let log = log.clone();
            async move {
                let ok = reqwest_ok(&c).await;
                // main() reports a fatal error on a line of its own starting `glia: `.
                // Log lines start with a timestamp (and may hold `glia: `, the target).
                if !ok && let Ok(text) = std::fs::read_to_string(&log) {
                    assert!(
                        !text.lines().any(|l| l.starts_with("glia: ")),
                        "glia failed to start:\n{text}"
                    );
                }
                ok.then_some(())
            }
        })
        .await;
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    /// Send a signal (by number) to the process.
    pub fn signal(&self, sig: i32) {
        let status = Command::new("kill")
            .arg(format!("-{sig}"))
            .arg(self.child.id().to_string())
            .status()
            .expect("kill");
        assert!(status.success());
    }

    /// Wait for the process to exit and return its exit code.
    pub async fn wait_exit(&mut self, timeout: Duration) -> Option<i32> {
        let child = &mut self.child;
        let mut status = None;
        let deadline = std::time::Instant::now() + timeout;
        while status.is_none() {
            status = child.try_wait().expect("try_wait");
            if status.is_none() {
                assert!(
                    std::time::Instant::now() < deadline,
                    "glia did not exit within {timeout:?}"
                );
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
        status.and_then(|s| s.code())
    }
}

async fn reqwest_ok(c: &Client) -> bool {
    let url = format!("{}/_matrix/client/versions", c.base_url);
    // reqwest is built without a default TLS provider: take the harness's client.
    match crate::client::http_client(None).get(url).timeout(Duration::from_secs(2)).send().await {
        Ok(r) => r.status().is_success(),
        Err(_) => false,
    }
}

/// What a finished `glia` command printed, and how it exited.
#[derive(Debug)]
pub struct CliOutput {
    pub what: String,
    /// `None` when killed by a signal.
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl CliOutput {
    /// stdout and stderr together, for "the output mentions X".
    pub fn output(&self) -> String {
        format!("{}{}", self.stdout, self.stderr)
    }

    #[track_caller]
    pub fn must_succeed(&self) -> &CliOutput {
        assert_eq!(self.code, Some(0), "{self}");
        self
    }

    #[track_caller]
    pub fn must_fail(&self) -> &CliOutput {
        assert!(self.code.is_some_and(|c| c != 0), "expected a non-zero exit: {self}");
        self
    }
}

impl std::fmt::Display for CliOutput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} exited with {:?}\n--- stdout\n{}--- stderr\n{}",
            self.what, self.code, self.stdout, self.stderr
        )
    }
}

/// Run `glia <args>` to completion in `cwd` (default: the test's), stdin closed so a prompt
/// fails instead of hanging (password prompts read /dev/tty: always pass `-p`); killed and
/// reported as a failure after `timeout`.
pub async fn run_glia<I, S>(args: I, cwd: Option<&Path>, timeout: Duration) -> CliOutput
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let mut cmd = Command::new(glia_binary());
    cmd.args(args)
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if let Some(dir) = cwd {
        cmd.current_dir(dir);
    }
    let what = format!("{cmd:?}");
    let mut child = cmd.spawn().unwrap_or_else(|e| panic!("{what}: {e}"));
    let drain = |pipe: Option<Box<dyn Read + Send>>| {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            if let Some(mut p) = pipe {
                let _ = p.read_to_end(&mut buf);
            }
            String::from_utf8_lossy(&buf).into_owned()
        })
    };
    let out = drain(child.stdout.take().map(|p| Box::new(p) as _));
    let err = drain(child.stderr.take().map(|p| Box::new(p) as _));
    let deadline = Instant::now() + timeout;
    let status = loop {
        if let Some(s) = child.try_wait().expect("try_wait") {
            break s;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{what} did not finish within {timeout:?}");
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    CliOutput {
        what,
        code: status.code(),
        stdout: out.join().unwrap_or_default(),
        stderr: err.join().unwrap_or_default(),
    }
}

impl Drop for GliaProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
