//! Application service scenarios: an in-test appservice (`glia_harness::appservice`)
//! registered through `app_service_config_files`, driving Glia with its `as_token` and
//! receiving transactions, queries and pings. They need the server's configuration, so
//! against an external target they report themselves skipped (SyTest's 60app-services,
//! run through sytest-compat, covers the same ground on any server).

mod auth;
mod queries;
mod transactions;

use glia_harness::appservice::{FakeAppService, Registration, write_registration};
use glia_harness::{Client, Deployment, HsConfig};

/// A Glia with one appservice (users `@bridge_.*`, aliases `#bridge_.*`, protocol `chat`)
/// pointing at a fake appservice, and a second one with `url: null`.
pub struct Setup {
    pub d: Deployment,
    pub fake: FakeAppService,
    pub reg: Registration,
    pub silent: Registration,
    _dir: tempfile::TempDir,
}

impl Setup {
    pub async fn new() -> Option<Setup> {
        Setup::with_yaml("").await
    }

    /// The same with more server configuration.
    pub async fn with_yaml(extra: &str) -> Option<Setup> {
        let dir = tempfile::tempdir().expect("tempdir");
        let fake = FakeAppService::start().await;
        let reg = write_registration(
            dir.path(),
            "bridge",
            Some(&fake.url()),
            &["@bridge_.*"],
            &["#bridge_.*"],
            &["chat"],
        );
        let silent = write_registration(dir.path(), "silent", None, &["@silent_.*"], &[], &[]);
        let cfg = HsConfig {
            extra_yaml: format!(
                "app_service_config_files: [\"{}\", \"{}\"]\n{extra}",
                reg.path.display(),
                silent.path.display()
            ),
            ..HsConfig::default()
        };
        let d = Deployment::with_config(1, cfg).await?;
        Some(Setup { d, fake, reg, silent, _dir: dir })
    }

    /// A client authenticated with the appservice's `as_token`.
    pub fn as_client(&self) -> Client {
        let mut c = self.d.client(0);
        c.access_token = Some(self.reg.as_token.clone());
        c.user_id = format!("@{}:hs1", self.reg.sender_localpart);
        c
    }

    /// Register `@bridge_<name>:hs1` through the appservice; returns its user ID.
    pub async fn ghost(&self, name: &str) -> String {
        let body = serde_json::json!({
            "type": "m.login.application_service",
            "username": format!("bridge_{name}"),
            "inhibit_login": true,
        });
        let r = self.as_client().request("POST", &cs(&["register"]), body).await;
        r.must_status(200)["user_id"].as_str().expect("user_id").to_string()
    }
}

/// `/_matrix/client/v3/<rest...>`.
pub fn cs<'a>(rest: &[&'a str]) -> Vec<&'a str> {
    let mut p = vec!["_matrix", "client", "v3"];
    p.extend_from_slice(rest);
    p
}
