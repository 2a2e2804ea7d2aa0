//! The container entrypoint (deploy/entrypoint.sh) run against the built binary, as the
//! image runs it: generate on first start from `GLIA_*` variables, serve afterwards, keep
//! an existing config, refuse to start without a server name; and the
//! `register_new_matrix_user` wrapper the guides call.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use glia_harness::process::{free_port, glia_binary};
use glia_harness::python::repo_root;
use glia_harness::wait_until;

use crate::{CLI_TIMEOUT, PASSWORD};

const SIGTERM: &str = "-15";

fn script(name: &str) -> PathBuf {
    repo_root().join("deploy").join(name)
}

/// The entrypoint with a clean `GLIA_*` environment plus `vars`, output to `log`.
fn entrypoint(args: &[&str], vars: &[(&str, &str)], log: &Path) -> Child {
    let log = std::fs::File::create(log).expect("log");
    let mut cmd = Command::new("sh");
    cmd.arg(script("entrypoint.sh")).args(args);
    for (k, _) in std::env::vars() {
        if k.starts_with("GLIA_") {
            cmd.env_remove(k);
        }
    }
    cmd.env("GLIA_BIN", glia_binary()).env("NO_COLOR", "1");
    for (k, v) in vars {
        cmd.env(k, v);
    }
    cmd.stdin(Stdio::null())
        .stdout(log.try_clone().expect("log"))
        .stderr(log)
        .spawn()
        .expect("spawn entrypoint.sh")
}

async fn wait_exit(child: &mut Child, timeout: Duration) -> Option<i32> {
    let status = wait_until("the entrypoint to exit", timeout, || {
        let s = child.try_wait().expect("try_wait");
        async move { s }
    })
    .await;
    status.code()
}

async fn wait_health(base: &str, log: &Path) {
    let url = format!("{base}/health");
    let http = glia_harness::client::http_client(None);
    let body = wait_until(&format!("{url} to answer 200"), Duration::from_secs(30), || {
        let (http, url) = (http.clone(), url.clone());
        async move {
            let log = std::fs::read_to_string(log).unwrap_or_default();
            assert!(!log.lines().any(|l| l.starts_with("glia: ")), "glia failed:\n{log}");
            match http.get(&url).send().await {
                Ok(r) if r.status() == 200 => Some(r.text().await.unwrap_or_default()),
                _ => None,
            }
        }
    })
    .await;
    assert_eq!(body, "OK");
}

async fn stop(child: &mut Child) {
    let ok = Command::new("kill").arg(SIGTERM).arg(child.id().to_string()).status();
    assert!(ok.expect("kill").success());
    assert_eq!(wait_exit(child, Duration::from_secs(30)).await, Some(0), "clean exit on SIGTERM");
}

/// First start generates /data/homeserver.yaml from the variables and serves it (health,
/// the listener's port, the server name); a restart keeps the config unchanged;
/// GLIA_REPORT_STATS is accepted with a note; register_new_matrix_user works against it.
#[tokio::test]
async fn entrypoint_generates_once_then_serves() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let port = free_port().to_string();
    let data_s = data.display().to_string();
    let vars = [
        ("GLIA_SERVER_NAME", "chat.example.org"),
        ("GLIA_DATA_DIR", data_s.as_str()),
        ("GLIA_HTTP_PORT", port.as_str()),
        ("GLIA_BIND_ADDRESSES", "127.0.0.1"),
        ("GLIA_REPORT_STATS", "yes"),
    ];
    let base = format!("http://127.0.0.1:{port}");
    let log = dir.path().join("first.log");
    let mut child = entrypoint(&[], &vars, &log);
    wait_health(&base, &log).await;
    let config = data.join("homeserver.yaml");
    let text = std::fs::read_to_string(&config).expect("config generated");
    assert!(text.contains("server_name: \"chat.example.org\""), "{text}");
    assert!(data.join("chat.example.org.signing.key").is_file());
    let versions = glia_harness::Client::new(&base).get(&["_matrix", "client", "versions"]).await;
    versions.must_status(200);

    let register = Command::new(script("register_new_matrix_user"))
        .env("GLIA_BIN", glia_binary())
        .args(["-c", config.to_str().expect("utf-8"), "-u", "admin", "-p", PASSWORD, "-a"])
        .arg(&base)
        .stdin(Stdio::null())
        .output()
        .expect("run register_new_matrix_user");
    let out = String::from_utf8_lossy(&register.stdout).into_owned()
        + &String::from_utf8_lossy(&register.stderr);
    assert!(register.status.success(), "register_new_matrix_user failed: {out}");
    assert!(out.contains("@admin:chat.example.org"), "{out}");
    stop(&mut child).await;
    let first_log = std::fs::read_to_string(&log).expect("log");
    assert!(first_log.contains("GLIA_REPORT_STATS is ignored"), "{first_log}");

    // Second start: the config exists, so nothing is generated again.
    let log = dir.path().join("second.log");
    let mut child = entrypoint(&["serve"], &vars, &log);
    wait_health(&base, &log).await;
    assert_eq!(std::fs::read_to_string(&config).expect("config"), text, "config rewritten");
    let client = glia_harness::Client::new(&base);
    client.login("admin", PASSWORD, serde_json::json!({})).await.must_status(200);
    stop(&mut child).await;
    let second_log = std::fs::read_to_string(&log).expect("log");
    assert!(!second_log.contains("generating"), "{second_log}");
}

/// Without a config and without GLIA_SERVER_NAME the entrypoint fails, saying what to set;
/// `generate` honours GLIA_CONFIG_PATH; `glia serve` reads GLIA_CONFIG_PATH too.
#[tokio::test]
async fn entrypoint_needs_a_server_name_and_honours_config_path() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let data_s = data.display().to_string();
    let log = dir.path().join("noname.log");
    let mut child = entrypoint(&[], &[("GLIA_DATA_DIR", data_s.as_str())], &log);
    assert_eq!(wait_exit(&mut child, CLI_TIMEOUT).await, Some(1));
    let out = std::fs::read_to_string(&log).expect("log");
    assert!(out.contains("GLIA_SERVER_NAME"), "{out}");
    assert!(!data.join("homeserver.yaml").exists());

    let conf = dir.path().join("conf.yaml");
    let conf_s = conf.display().to_string();
    let port = free_port().to_string();
    let vars = [
        ("GLIA_SERVER_NAME", "example.net"),
        ("GLIA_DATA_DIR", data_s.as_str()),
        ("GLIA_CONFIG_PATH", conf_s.as_str()),
        ("GLIA_HTTP_PORT", port.as_str()),
        ("GLIA_BIND_ADDRESSES", "127.0.0.1"),
    ];
    let log = dir.path().join("generate.log");
    let mut child = entrypoint(&["generate"], &vars, &log);
    let code = wait_exit(&mut child, CLI_TIMEOUT).await;
    let out = std::fs::read_to_string(&log).expect("log");
    assert_eq!(code, Some(0), "{out}");
    assert!(conf.is_file(), "generate ignored GLIA_CONFIG_PATH: {out}");
    assert!(!data.join("homeserver.yaml").exists());

    // `glia serve` with no -c: GLIA_CONFIG_PATH names the config.
    let log_path = dir.path().join("serve.log");
    let log = std::fs::File::create(&log_path).expect("log");
    let mut child = Command::new(glia_binary())
        .arg("serve")
        .env("GLIA_CONFIG_PATH", &conf)
        .current_dir(dir.path())
        .stdin(Stdio::null())
        .stdout(log.try_clone().expect("log"))
        .stderr(log)
        .spawn()
        .expect("spawn glia");
    wait_health(&format!("http://127.0.0.1:{port}"), &log_path).await;
    stop(&mut child).await;
}
