//! Deployments: the homeservers a scenario runs against.
//!
//! - default: Glia in-process, one per requested server, on `127.0.0.1:0`, each with a
//!   fresh temporary data directory, open `m.login.dummy` registration and guests allowed;
//! - `GLIA_HARNESS_URL=http://a,http://b`: servers that are already running (Synapse, a
//!   Glia binary). They must allow open registration; `GLIA_HARNESS_SHARED_SECRET` enables
//!   the admin-registration scenarios.
//!
//! Scenarios that need a configuration an external server cannot be given (registration
//! closed, a password policy) ask for it with [`Deployment::with_config`], which returns
//! `None` against external servers; the scenario then reports itself skipped.

use std::path::PathBuf;

use serde_json::Value;

use crate::client::Client;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    InProcess,
    External(Vec<String>),
}

impl Target {
    pub fn from_env() -> Target {
        match std::env::var("GLIA_HARNESS_URL") {
            Ok(v) if !v.trim().is_empty() => {
                Target::External(v.split(',').map(|s| s.trim().to_string()).collect())
            }
            _ => Target::InProcess,
        }
    }
}

/// Settings a scenario can ask of an in-process server.
#[derive(Debug, Clone)]
pub struct HsConfig {
    pub enable_registration: bool,
    pub allow_guest_access: bool,
    pub password_minimum_length: Option<u32>,
    /// Extra YAML appended to the generated config.
    pub extra_yaml: String,
    /// Add a `type: metrics` listener on a free loopback port (and `enable_metrics`).
    pub metrics: bool,
    /// Federate: the server is named `localhost:<port>` and serves TLS (the test CA's
    /// certificate) on that port, and trusts the test CA and loopback peers.
    pub federation_port: Option<u16>,
}

impl Default for HsConfig {
    fn default() -> Self {
        HsConfig {
            enable_registration: true,
            allow_guest_access: true,
            password_minimum_length: None,
            extra_yaml: String::new(),
            metrics: false,
            federation_port: None,
        }
    }
}

pub struct Homeserver {
    pub base_url: String,
    pub shared_secret: Option<String>,
    /// Set for in-process servers.
    pub server: Option<glia::Server>,
    pub data_dir: Option<tempfile::TempDir>,
    pub db_path: Option<PathBuf>,
    /// The configuration an in-process server was started with, to restart it.
    pub config_yaml: Option<String>,
}

pub struct Deployment {
    pub servers: Vec<Homeserver>,
    pub target: Target,
}

impl Deployment {
    /// N servers with the default (open) configuration.
    pub async fn new(n: usize) -> Deployment {
        match Target::from_env() {
            Target::InProcess => Deployment::in_process(n, &HsConfig::default()).await,
            Target::External(urls) => {
                assert!(
                    urls.len() >= n,
                    "this scenario needs {n} servers; GLIA_HARNESS_URL lists {}",
                    urls.len()
                );
                let secret = std::env::var("GLIA_HARNESS_SHARED_SECRET").ok();
                let servers = urls
                    .iter()
                    .take(n)
                    .map(|u| Homeserver {
                        base_url: u.trim_end_matches('/').to_string(),
                        shared_secret: secret.clone(),
                        server: None,
                        data_dir: None,
                        db_path: None,
                        config_yaml: None,
                    })
                    .collect();
                Deployment { servers, target: Target::External(urls) }
            }
        }
    }

    /// N in-process servers with a specific configuration; `None` against external servers.
    pub async fn with_config(n: usize, cfg: HsConfig) -> Option<Deployment> {
        match Target::from_env() {
            Target::InProcess => Some(Deployment::in_process(n, &cfg).await),
            Target::External(_) => {
                eprintln!(
                    "SKIP: scenario needs a server configuration an external target cannot be given"
                );
                None
            }
        }
    }

    /// N in-process servers that federate with each other over TLS on loopback; `None`
    /// against external servers. Clients still use each server's plain HTTP listener.
    pub async fn federated(n: usize) -> Option<Deployment> {
        Deployment::federated_with(n, HsConfig::default()).await
    }

    pub async fn federated_with(n: usize, cfg: HsConfig) -> Option<Deployment> {
        Deployment::federated_hosts(&vec!["localhost"; n], cfg).await
    }

    /// Federating servers named `<host>:<port>`, one per host given. The test CA's
    /// certificate covers `localhost` and `127.0.0.1`: two hosts a server ACL can tell apart.
    pub async fn federated_hosts(hosts: &[&str], cfg: HsConfig) -> Option<Deployment> {
        if let Target::External(_) = Target::from_env() {
            eprintln!("SKIP: scenario needs federating in-process servers");
            return None;
        }
        let mut servers = vec![];
        for host in hosts {
            let port = free_port();
            let cfg = HsConfig { federation_port: Some(port), ..cfg.clone() };
            servers.push(start_in_process(&format!("{host}:{port}"), &cfg).await);
        }
        Some(Deployment { servers, target: Target::InProcess })
    }

    pub fn is_external(&self) -> bool {
        matches!(self.target, Target::External(_))
    }

    async fn in_process(n: usize, cfg: &HsConfig) -> Deployment {
        let mut servers = vec![];
        for i in 0..n {
            servers.push(start_in_process(&format!("hs{}", i + 1), cfg).await);
        }
        Deployment { servers, target: Target::InProcess }
    }

    /// Stop in-process server `i` and start it again on the same data and configuration.
    /// Its client listener comes back on another port: `base_url` changes.
    pub async fn restart(&mut self, i: usize) {
        let hs = &mut self.servers[i];
        let server = hs.server.take().expect("an in-process server");
        server.shutdown().await;
        let yaml = hs.config_yaml.clone().expect("its configuration");
        let (config, _) = glia::config::Config::from_yaml_str(&yaml)
            .unwrap_or_else(|r| panic!("harness config invalid: {:?}", r.errors));
        let server = glia::Server::start(config).await.expect("restart glia");
        hs.base_url = format!("http://{}", server.addrs[0]);
        hs.server = Some(server);
    }

    pub fn hs(&self, i: usize) -> &Homeserver {
        &self.servers[i]
    }

    /// Server `i`'s state when it runs in-process (None for external targets), for
    /// scenarios that wait on a server-side signal such as a parked long-poll.
    pub fn app(&self, i: usize) -> Option<std::sync::Arc<glia::app::App>> {
        self.servers[i].server.as_ref().map(|s| s.app.clone())
    }

    /// Wait until server `i` has at least one request parked in `waiting` (chosen from
    /// its state by `which`); at once for external targets, which show no such signal.
    pub async fn until_parked(
        &self,
        i: usize,
        what: &str,
        which: impl Fn(&glia::app::App) -> usize,
    ) {
        let Some(app) = self.app(i) else { return };
        crate::wait_until(what, std::time::Duration::from_secs(20), || {
            let parked = which(&app) > 0;
            async move { parked.then_some(()) }
        })
        .await;
    }

    /// A client without credentials for server `i`.
    pub fn client(&self, i: usize) -> Client {
        Client::new(&self.servers[i].base_url)
    }

    /// Register a fresh user with a unique localpart on server `i`.
    pub async fn register_user(&self, i: usize, prefix: &str) -> Client {
        let localpart = crate::client::unique_localpart(prefix);
        self.client(i).must_register(&localpart, "correct horse battery staple").await
    }

    /// Stop in-process servers and check each database is intact. External servers are
    /// left running. Call at the end of every scenario.
    pub async fn destroy(mut self) {
        for hs in &mut self.servers {
            if let Some(server) = hs.server.take() {
                // The server must still answer after whatever the scenario threw at it.
                let r = Client::new(&hs.base_url).get(&["_matrix", "client", "versions"]).await;
                assert_eq!(r.status, 200, "server stopped answering: {}", r.text());
                server.shutdown().await;
            }
            if let Some(path) = &hs.db_path {
                assert_eq!(integrity_check(path), "ok", "database corrupt after scenario");
            }
        }
    }
}

/// Start one in-process Glia with a fresh data directory.
async fn start_in_process(server_name: &str, cfg: &HsConfig) -> Homeserver {
    let dir = tempfile::tempdir().expect("temp dir");
    let yaml = config_yaml(server_name, dir.path(), 0, cfg);
    let (config, _) = glia::config::Config::from_yaml_str(&yaml)
        .unwrap_or_else(|r| panic!("harness config invalid: {:?}", r.errors));
    let db_path = config.database.path.clone();
    let server = glia::Server::start(config).await.expect("start glia");
    let addr = server.addrs[0];
    Homeserver {
        base_url: format!("http://{addr}"),
        shared_secret: Some(SHARED_SECRET.into()),
        server: Some(server),
        data_dir: Some(dir),
        db_path: Some(db_path),
        config_yaml: Some(yaml),
    }
}

/// A loopback port that was free a moment ago (a server name must name its port before
/// the server binds it).
pub fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr").port()
}

/// The shared secret in-process servers use for `/_synapse/admin/v1/register`.
pub const SHARED_SECRET: &str = "harness-shared-secret";

pub fn integrity_check(path: &std::path::Path) -> String {
    let c = rusqlite::Connection::open(path).expect("open db");
    c.query_row("PRAGMA integrity_check", [], |r| r.get(0)).expect("integrity_check")
}

/// The YAML the harness gives a Glia it starts (in-process or as a binary).
pub fn config_yaml(server_name: &str, dir: &std::path::Path, port: u16, cfg: &HsConfig) -> String {
    let d = dir.display();
    let mut y = format!(
        "server_name: \"{server_name}\"\n\
         listeners:\n  - port: {port}\n    bind_addresses: ['127.0.0.1']\n    type: http\n\
         \x20   resources:\n      - names: [client, federation]\n{}\
         database:\n  name: sqlite3\n  args:\n    database: \"{d}/homeserver.db\"\n\
         signing_key_path: \"{d}/signing.key\"\n\
         media_store_path: \"{d}/media\"\n\
         registration_shared_secret: \"{SHARED_SECRET}\"\n\
         enable_registration: {}\n\
         enable_registration_without_verification: true\n\
         allow_guest_access: {}\n",
        if cfg.metrics {
            "  - port: 0\n    bind_addresses: ['127.0.0.1']\n    type: metrics\nenable_metrics: true\n"
        } else {
            ""
        },
        cfg.enable_registration,
        cfg.allow_guest_access
    );
    if let Some(p) = cfg.federation_port {
        let tls = crate::fixtures_dir().join("tls");
        // The TLS listener goes right after the client listener, inside `listeners:`.
        let first = "      - names: [client, federation]\n";
        y = y.replacen(
            first,
            &format!(
                "{first}  - port: {p}\n    bind_addresses: ['127.0.0.1']\n    type: http\n    tls: true\n\
                 \x20   resources:\n      - names: [client, federation]\n"
            ),
            1,
        );
        y.push_str(&format!(
            "tls_certificate_path: \"{}\"\ntls_private_key_path: \"{}\"\n",
            tls.join("server.crt").display(),
            tls.join("server.key").display()
        ));
        y.push_str(&crate::federation::trusting_config_yaml());
    }
    if let Some(n) = cfg.password_minimum_length {
        y.push_str(&format!(
            "password_config:\n  policy:\n    enabled: true\n    minimum_length: {n}\n"
        ));
    }
    // Scenarios make many requests quickly: no rate limits, unless a scenario sets
    // `rc_disabled` itself (the rate-limit scenarios do, with their own `rc_*` values).
    if !cfg.extra_yaml.lines().any(|l| l.starts_with("rc_disabled:")) {
        y.push_str("rc_disabled: true\n");
    }
    y.push_str(&cfg.extra_yaml);
    y
}

/// Register through the shared-secret admin API, as `register_new_matrix_user` does.
pub async fn admin_register(
    hs: &Homeserver,
    localpart: &str,
    password: &str,
    admin: bool,
) -> crate::Response {
    use hmac::{Hmac, KeyInit, Mac};
    let c = Client::new(&hs.base_url);
    let nonce = c.get(&["_synapse", "admin", "v1", "register"]).await.must_status(200)["nonce"]
        .as_str()
        .expect("nonce")
        .to_string();
    let secret = hs.shared_secret.as_deref().expect("shared secret");
    let mut mac = Hmac::<sha1::Sha1>::new_from_slice(secret.as_bytes()).expect("key");
    mac.update(
        format!("{nonce}\0{localpart}\0{password}\0{}", if admin { "admin" } else { "notadmin" })
            .as_bytes(),
    );
    let mac = hex::encode(mac.finalize().into_bytes());
    c.request(
        "POST",
        &["_synapse", "admin", "v1", "register"],
        serde_json::json!({"nonce": nonce, "username": localpart, "password": password, "admin": admin, "mac": mac}),
    )
    .await
}

/// The `errcode` of a JSON error body, for readable assertions.
pub fn errcode(v: &Value) -> &str {
    v["errcode"].as_str().unwrap_or("")
}
