//! The command line: `generate`, `check-config`, `register-user`, and `glia` with no
//! arguments serving the embedded default.

use std::ffi::OsStr;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use glia_harness::deployment::SHARED_SECRET;
use glia_harness::process::{GliaProcess, glia_binary, run_glia};
use glia_harness::{Client, HsConfig};
use serde_json::{Value, json};

use crate::{CLI_TIMEOUT, PASSWORD};

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o777
}

/// Whether the server says `user_id` is an admin (asked by an admin).
async fn is_admin(admin: &Client, user_id: &str) -> bool {
    let body =
        admin.must_do("GET", &["_synapse", "admin", "v2", "users", user_id], Value::Null).await;
    body["admin"].as_bool().unwrap_or_else(|| panic!("no admin flag in {body}"))
}

/// `glia generate` writes a config and a private signing key, says where, never overwrites,
/// and what it writes passes `check-config`.
#[tokio::test]
async fn generate_then_check_config() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let args = [
        OsStr::new("generate"),
        OsStr::new("--server-name"),
        OsStr::new("example.org"),
        OsStr::new("--data-dir"),
        data.as_os_str(),
    ];
    let out = run_glia(args, Some(dir.path()), CLI_TIMEOUT).await;
    out.must_succeed();
    let data = data.canonicalize().expect("data dir created");
    let config = data.join("homeserver.yaml");
    let key = data.join("example.org.signing.key");
    for f in [&config, &key] {
        assert!(f.is_file(), "{} missing after: {out}", f.display());
        assert!(
            out.stdout.contains(&f.display().to_string()),
            "generate does not say where it wrote {}: {out}",
            f.display()
        );
    }
    assert_eq!(mode(&key), 0o600, "signing key must be private");
    assert_eq!(mode(&config) & 0o077, 0, "the config holds the shared secret: not for other users");
    let text = std::fs::read_to_string(&config).expect("config");
    assert!(text.contains("server_name: \"example.org\""), "{text}");
    let key_text = std::fs::read_to_string(&key).expect("key");
    assert!(key_text.starts_with("ed25519 "), "signing key: {key_text}");

    let again = run_glia(args, Some(dir.path()), CLI_TIMEOUT).await;
    again.must_fail();
    assert!(again.output().contains("already exists"), "{again}");
    assert_eq!(std::fs::read_to_string(&config).expect("config"), text);
    assert_eq!(std::fs::read_to_string(&key).expect("key"), key_text);

    let check = run_glia(
        [OsStr::new("check-config"), OsStr::new("-c"), config.as_os_str()],
        Some(dir.path()),
        CLI_TIMEOUT,
    )
    .await;
    check.must_succeed();
    assert!(check.stdout.contains("OK"), "{check}");
    assert!(!check.output().contains("warning"), "{check}");
}

/// `check-config` names every bad key at once; unknown keys are warnings only.
#[tokio::test]
async fn check_config_names_every_bad_key() {
    let dir = tempfile::tempdir().expect("tempdir");
    let bad = dir.path().join("bad.yaml");
    std::fs::write(
        &bad,
        "server_name: 'not a name!'\n\
         enable_registration: maybe\n\
         listeners:\n  - port: 99999\n    type: http\n\
         max_upload_size: lots\n\
         database:\n  name: psycopg2\n\
         frobnicate: 1\n",
    )
    .expect("write");
    let out = run_glia(
        [OsStr::new("check-config"), OsStr::new("-c"), bad.as_os_str()],
        Some(dir.path()),
        CLI_TIMEOUT,
    )
    .await;
    out.must_fail();
    let all = out.output();
    for key in [
        "server_name",
        "enable_registration",
        "listeners[0].port",
        "max_upload_size",
        "database.name",
    ] {
        assert!(
            all.lines().any(|l| l.contains("error") && l.contains(&format!("{key}:"))),
            "no error names {key}: {out}"
        );
    }
    assert!(
        !all.lines().any(|l| l.contains("error") && l.contains("frobnicate")),
        "an unknown key is not an error: {out}"
    );

    let unknown = dir.path().join("unknown.yaml");
    std::fs::write(&unknown, "server_name: example.org\nfrobnicate: 1\nreport_stats: false\n")
        .expect("write");
    let out = run_glia(
        [OsStr::new("check-config"), OsStr::new("-c"), unknown.as_os_str()],
        Some(dir.path()),
        CLI_TIMEOUT,
    )
    .await;
    out.must_succeed();
    assert!(
        out.output().lines().any(|l| l.contains("warning") && l.contains("frobnicate")),
        "the unknown key is reported as a warning: {out}"
    );
    assert!(
        !out.output().contains("report_stats"),
        "a Synapse key Glia ignores is not even a warning: {out}"
    );
}

/// `register-user` against a running server: with `-c` and with `--shared-secret`; a wrong
/// secret and a taken name fail with a non-zero exit.
#[tokio::test]
async fn register_user_against_running_server() {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = GliaProcess::start(dir.path(), &HsConfig::default()).await;
    let config = p.config_path.to_str().expect("UTF-8 path");
    let cli = |args: &[&str]| {
        let mut args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
        args.insert(0, "register-user".into());
        args.push(p.base_url.clone());
        run_glia(args, Some(dir.path()), CLI_TIMEOUT)
    };

    let out = cli(&["-u", "admin", "-p", PASSWORD, "--admin", "-c", config]).await;
    out.must_succeed();
    assert!(out.stdout.contains("@admin:localhost"), "{out}");
    let admin = Client::new(&p.base_url).must_login("admin", PASSWORD).await;
    assert_eq!(admin.user_id, "@admin:localhost");
    assert!(is_admin(&admin, "@admin:localhost").await);

    let out =
        cli(&["-u", "bob", "-p", "bobs password", "--no-admin", "--shared-secret", SHARED_SECRET])
            .await;
    out.must_succeed();
    Client::new(&p.base_url).must_login("bob", "bobs password").await;
    assert!(!is_admin(&admin, "@bob:localhost").await);

    let out =
        cli(&["-u", "mallory", "-p", PASSWORD, "--admin", "--shared-secret", "not the secret"])
            .await;
    out.must_fail();
    assert!(
        out.output().contains("HMAC") && out.output().contains("403"),
        "the failure says why: {out}"
    );
    let r = Client::new(&p.base_url).login("mallory", PASSWORD, json!({})).await;
    assert_eq!(r.status, 403, "mallory must not exist: {}", r.text());

    let out = cli(&["-u", "admin", "-p", "another password", "--no-admin", "-c", config]).await;
    out.must_fail();
    let msg = out.output().to_lowercase();
    assert!(
        msg.contains("taken") || msg.contains("in use"),
        "the failure says the name is taken: {out}"
    );
    // The first registration is untouched.
    Client::new(&p.base_url).must_login("admin", PASSWORD).await;
    assert!(is_admin(&admin, "@admin:localhost").await);
}

/// `glia` alone serves the embedded default (127.0.0.1:8008, `localhost`, ./glia-data),
/// and `glia register-user` alone finds its secret there.
#[tokio::test]
async fn no_arguments_serves_embedded_default() {
    match std::net::TcpListener::bind("127.0.0.1:8008") {
        Ok(l) => drop(l),
        Err(e) => {
            eprintln!("SKIP: port 8008 is not free ({e}); the embedded default needs it");
            return;
        }
    }
    let cwd = tempfile::tempdir().expect("tempdir");
    let logs = tempfile::tempdir().expect("tempdir");
    let log_path = logs.path().join("glia.log");
    let log = std::fs::File::create(&log_path).expect("log");
    let child = Command::new(glia_binary())
        .current_dir(cwd.path())
        .env("GLIA_LOG", "info")
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(log.try_clone().expect("log"))
        .stderr(log)
        .spawn()
        .expect("spawn glia");
    let data = cwd.path().join("glia-data");
    let mut p = GliaProcess {
        child,
        base_url: "http://127.0.0.1:8008".into(),
        config_path: PathBuf::new(),
        db_path: data.join("homeserver.db"),
        log_path,
    };
    p.wait_ready().await;

    for f in ["homeserver.db", "localhost.signing.key", "registration_shared_secret"] {
        assert!(data.join(f).is_file(), "glia-data/{f} missing: {}", p.log());
    }
    assert_eq!(mode(&data.join("registration_shared_secret")), 0o600);
    assert_eq!(mode(&data.join("localhost.signing.key")), 0o600);

    // The default is closed to open registration.
    let c = Client::new(&p.base_url);
    let r = c.register("someone", PASSWORD).await;
    assert_eq!(r.status, 403, "open registration is off by default: {}", r.text());

    let out = run_glia(
        ["register-user", "-u", "admin", "-p", PASSWORD, "--admin"],
        Some(cwd.path()),
        CLI_TIMEOUT,
    )
    .await;
    out.must_succeed();
    let admin = c.must_login("admin", PASSWORD).await;
    assert_eq!(admin.user_id, "@admin:localhost");
    assert!(is_admin(&admin, "@admin:localhost").await);

    p.signal(15);
    let code = p.wait_exit(Duration::from_secs(30)).await;
    assert_eq!(code, Some(0), "{}", p.log());
    assert_eq!(glia_harness::deployment::integrity_check(&p.db_path), "ok");
}

/// A registration with a bad regex in `app_service_config_files` stops `glia serve` at
/// start-up (and fails `check-config`) with a message naming the file and the key.
#[tokio::test]
async fn bad_appservice_registration_names_file_and_key() {
    let dir = tempfile::tempdir().expect("tempdir");
    let reg = dir.path().join("bridge.yaml");
    std::fs::write(
        &reg,
        "id: bridge\nurl: http://127.0.0.1:9\nas_token: a\nhs_token: h\nsender_localpart: bot\n\
         namespaces:\n  users:\n    - exclusive: true\n      regex: '@bridge_[unclosed'\n",
    )
    .expect("write");
    let config = dir.path().join("homeserver.yaml");
    std::fs::write(
        &config,
        format!(
            "server_name: example.org\napp_service_config_files: [\"{}\"]\n\
             database:\n  name: sqlite3\n  args:\n    database: \"{}/db\"\n",
            reg.display(),
            dir.path().display()
        ),
    )
    .expect("write");
    for cmd in ["check-config", "serve"] {
        let out = run_glia(
            [OsStr::new(cmd), OsStr::new("-c"), config.as_os_str()],
            Some(dir.path()),
            CLI_TIMEOUT,
        )
        .await;
        out.must_fail();
        let all = out.output();
        assert!(
            all.contains("bridge.yaml") && all.contains("namespaces.users[0].regex"),
            "{cmd}: the error names neither file nor key: {out}"
        );
    }
}
