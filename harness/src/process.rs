//! Glia as a separate process: for scenarios about the binary itself (the CLI, signals,
//! `kill -9`). The binary is `$GLIA_BINARY`, else `target/debug/glia` beside the tests.

use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::Duration;

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
            std::fs::write(&config_path, config_yaml("localhost", dir, port, cfg)).expect("write config");
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
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("spawn glia");
        let base_url = format!("http://127.0.0.1:{port}");
        let p = GliaProcess { child, base_url, config_path, db_path: dir.join("homeserver.db"), log_path };
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
                if !ok
                    && let Ok(text) = std::fs::read_to_string(&log)
                {
                    assert!(!text.contains("glia: "), "glia failed to start:\n{text}");
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
                assert!(std::time::Instant::now() < deadline, "glia did not exit within {timeout:?}");
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
        status.and_then(|s| s.code())
    }
}

async fn reqwest_ok(c: &Client) -> bool {
    let url = format!("{}/_matrix/client/versions", c.base_url);
    match reqwest::Client::new().get(url).timeout(Duration::from_secs(2)).send().await {
        Ok(r) => r.status().is_success(),
        Err(_) => false,
    }
}

impl Drop for GliaProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
