//! A Glia process for one run: a temporary data directory, a config written here, a free
//! loopback port. Killed when dropped.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::client::Hs;

/// The `glia` binary: `--glia PATH`, else `$GLIA_BINARY`, else `glia` beside this
/// executable (or beside its parent directory, for test executables in `deps/`).
pub fn glia_binary(explicit: Option<&Path>) -> Result<PathBuf, String> {
    if let Some(p) = explicit {
        return Ok(p.to_path_buf());
    }
    if let Ok(p) = std::env::var("GLIA_BINARY") {
        return Ok(PathBuf::from(p));
    }
    let exe = std::env::current_exe().map_err(|e| format!("current exe: {e}"))?;
    let mut dir = exe.parent();
    while let Some(d) = dir {
        let bin = d.join("glia");
        if bin.is_file() {
            return Ok(bin);
        }
        if d.file_name().is_some_and(|n| n == "target") {
            break;
        }
        dir = d.parent();
    }
    Err(format!(
        "no glia binary beside {}: build it (cargo build --release -p glia), pass --glia PATH \
         or set GLIA_BINARY",
        exe.display()
    ))
}

pub struct GliaServer {
    child: Child,
    pub base_url: String,
    /// The Prometheus exposition (`type: metrics` listener).
    pub metrics_url: String,
    /// `localhost` alone, or `localhost:<port>` when it federates.
    pub server_name: String,
    pub dir: tempfile::TempDir,
}

/// A loopback port that was free a moment ago (a federating server's name must name its
/// port before the server binds it).
fn free_port() -> Result<u16, String> {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| format!("free port: {e}"))
}

/// The repository's test TLS material (a CA, and a certificate for `localhost` and
/// `127.0.0.1` that it signed): the same files the harness's federating servers use.
fn tls_fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/tls")
}

impl GliaServer {
    /// Start `glia serve` with open registration and `extra_yaml` appended (rate limits
    /// are off unless `extra_yaml` sets `rc_disabled` itself).
    pub async fn start(binary: &Path, extra_yaml: &str) -> Result<GliaServer, String> {
        GliaServer::start_with(binary, extra_yaml, false, "").await
    }

    /// `start` with `database.args.synchronous` set (`full`, the default, or `normal`).
    pub async fn start_synchronous(binary: &Path, synchronous: &str) -> Result<GliaServer, String> {
        let args = format!("    synchronous: {synchronous}\n");
        GliaServer::start_with(binary, "", false, &args).await
    }

    /// `start`, federating: named `localhost:<port>`, serving federation over TLS on that
    /// port with the test certificate, and trusting the test CA and loopback peers (the
    /// configuration of the harness's `Deployment::federated`). Clients still use the
    /// plain listener at `base_url`.
    pub async fn start_federating(binary: &Path, extra_yaml: &str) -> Result<GliaServer, String> {
        GliaServer::start_with(binary, extra_yaml, true, "").await
    }

    /// `db_args`: more lines under `database.args` (indented four spaces).
    async fn start_with(
        binary: &Path,
        extra_yaml: &str,
        federate: bool,
        db_args: &str,
    ) -> Result<GliaServer, String> {
        let dir = tempfile::Builder::new()
            .prefix("glia-loadtest.")
            .tempdir()
            .map_err(|e| format!("temp dir: {e}"))?;
        let port = free_port()?;
        // Every run server exposes metrics, so a run can report the server's own timings.
        let metrics_port = free_port()?;
        let d = dir.path().display();
        let (server_name, tls_listener, tls_config) = if federate {
            let fed = free_port()?;
            let tls = tls_fixtures();
            (
                format!("localhost:{fed}"),
                format!(
                    "  - port: {fed}\n    bind_addresses: ['127.0.0.1']\n    type: http\n    \
                     tls: true\n    resources:\n      - names: [client, federation]\n"
                ),
                format!(
                    "tls_certificate_path: \"{}\"\ntls_private_key_path: \"{}\"\n\
                     federation_custom_ca_list: [\"{}\"]\n\
                     ip_range_whitelist: ['127.0.0.0/8', '::1/128']\n",
                    tls.join("server.crt").display(),
                    tls.join("server.key").display(),
                    tls.join("ca.crt").display()
                ),
            )
        } else {
            ("localhost".to_string(), String::new(), String::new())
        };
        let mut yaml = format!(
            "server_name: \"{server_name}\"\n\
             listeners:\n  - port: {port}\n    bind_addresses: ['127.0.0.1']\n    type: http\n\
             \x20   resources:\n      - names: [client]\n{tls_listener}\
             \x20 - port: {metrics_port}\n    bind_addresses: ['127.0.0.1']\n    type: metrics\n\
             database:\n  name: sqlite3\n  args:\n    database: \"{d}/homeserver.db\"\n{db_args}\
             signing_key_path: \"{d}/signing.key\"\n\
             media_store_path: \"{d}/media\"\n\
             enable_registration: true\n\
             enable_registration_without_verification: true\n\
             enable_metrics: true\n{tls_config}"
        );
        if !extra_yaml.lines().any(|l| l.starts_with("rc_disabled:")) {
            yaml.push_str("rc_disabled: true\n");
        }
        yaml.push_str(extra_yaml);
        let config = dir.path().join("homeserver.yaml");
        std::fs::write(&config, yaml).map_err(|e| format!("write config: {e}"))?;
        let log = std::fs::File::create(dir.path().join("glia.log"))
            .map_err(|e| format!("log file: {e}"))?;
        let err_log = log.try_clone().map_err(|e| format!("log file: {e}"))?;
        let child = Command::new(binary)
            .args(["serve", "-c"])
            .arg(&config)
            .env("GLIA_LOG", std::env::var("GLIA_LOADTEST_LOG").unwrap_or_else(|_| "warn".into()))
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(err_log)
            .spawn()
            .map_err(|e| format!("spawn {}: {e}", binary.display()))?;
        let mut server = GliaServer {
            child,
            base_url: format!("http://127.0.0.1:{port}"),
            metrics_url: format!("http://127.0.0.1:{metrics_port}/_synapse/metrics"),
            server_name,
            dir,
        };
        server.wait_ready(Duration::from_secs(60)).await?;
        Ok(server)
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("glia.log")).unwrap_or_default()
    }

    /// Poll `/versions` until it answers, the process exits, or the deadline passes.
    async fn wait_ready(&mut self, within: Duration) -> Result<(), String> {
        let hs = Hs::new(&self.base_url);
        let deadline = Instant::now() + within;
        loop {
            if hs.versions().await {
                return Ok(());
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(format!("glia exited ({status}) before answering:\n{}", self.log()));
            }
            if Instant::now() > deadline {
                return Err(format!("glia did not answer within {within:?}:\n{}", self.log()));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for GliaServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        // The data directory goes with the run; `GLIA_LOADTEST_KEEP_LOGS=DIR` keeps each
        // server's log and database (`DIR/<server name>.log`, `.db`) to look into a failed run.
        if let Ok(keep) = std::env::var("GLIA_LOADTEST_KEEP_LOGS") {
            let name = self.server_name.replace(':', "_");
            let _ = std::fs::create_dir_all(&keep);
            for (from, to) in
                [("glia.log", "log"), ("homeserver.db", "db"), ("homeserver.db-wal", "db-wal")]
            {
                let _ = std::fs::copy(
                    self.dir.path().join(from),
                    Path::new(&keep).join(format!("{name}.{to}")),
                );
            }
        }
    }
}

/// Resident set size of a process, in KiB (`VmRSS` in `/proc/PID/status`).
pub fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}
