//! `homeserver.yaml`: Synapse's key names wherever Glia has the same feature, so a Synapse
//! user's knowledge and hardening snippets carry over.
//!
//! The file is read into a YAML tree and walked key by key rather than deserialised in one
//! go, so that `check-config` can name *every* bad key instead of stopping at the first.
//! Unknown keys are warnings (a Synapse config carries many keys Glia does not need);
//! invalid values are errors.

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use ruma::{OwnedServerName, ServerName};
use serde_yaml_ng::{Mapping, Value};

/// Default limit on JSON request bodies. Synapse allows 200 events' worth (12.8 MB); no
/// client-server JSON request a real client sends comes near 8 MiB, and a lower ceiling
/// bounds the memory one connection can pin. Media uploads use `max_upload_size`.
pub const DEFAULT_MAX_JSON_BODY: usize = 8 * 1024 * 1024;

#[derive(Debug, Clone)]
pub struct Config {
    pub server_name: OwnedServerName,
    pub public_baseurl: Option<String>,
    pub listeners: Vec<Listener>,
    pub tls_certificate_path: Option<PathBuf>,
    pub tls_private_key_path: Option<PathBuf>,
    pub database: DatabaseConfig,
    pub signing_key_path: PathBuf,
    pub registration_shared_secret: Option<String>,
    pub registration_shared_secret_path: Option<PathBuf>,
    pub enable_registration: bool,
    pub enable_registration_without_verification: bool,
    pub enable_registration_captcha: bool,
    pub registration_requires_token: bool,
    pub allow_guest_access: bool,
    /// `allow_public_rooms_without_auth` (default false): `GET /publicRooms` of this
    /// server's own directory answers requests without an access token.
    pub allow_public_rooms_without_auth: bool,
    pub serve_server_wellknown: bool,
    /// `allow_public_rooms_over_federation`: other servers may list this server's room
    /// directory (Synapse's default: no).
    pub allow_public_rooms_over_federation: bool,
    pub media_store_path: PathBuf,
    pub max_upload_size: u64,
    pub max_json_body: usize,
    pub password_login_enabled: bool,
    /// `password_config.policy` (applied only when its `enabled` is true).
    pub password_policy: PasswordPolicy,
    /// `recaptcha_public_key`: sent to clients in the `m.login.recaptcha` stage's params.
    pub recaptcha_public_key: Option<String>,
    /// `recaptcha_private_key`: the `secret` posted to the verifier.
    pub recaptcha_private_key: Option<String>,
    /// `recaptcha_siteverify_api`: where captcha responses are verified.
    pub recaptcha_siteverify_api: String,
    /// `federation_domain_whitelist`: `None` federates with everyone; `Some` only with the
    /// listed server names (an empty list: with no one). See [`Config::federation_allowed`].
    pub federation_domain_whitelist: Option<BTreeSet<String>>,
    /// `federation.client_timeout` (default 60 s): how long an outbound federation request
    /// may take before it fails, so a peer that hangs cannot hold a request or a sender.
    pub federation_client_timeout: std::time::Duration,
    pub admin_contact: Option<String>,
    /// `enable_metrics`: serve Prometheus metrics on `type: metrics` listeners.
    pub enable_metrics: bool,
    /// `rc_message`, `rc_login`, ...: the rate limits (Synapse's defaults).
    pub rate_limits: crate::ratelimit::RateLimitConfig,
    /// Test-setup keys: see [`TestSetup`]. Each one logs a warning at start-up.
    pub test_setup: TestSetup,
    /// `url_preview_*` and `max_spider_size`.
    pub url_preview: UrlPreviewConfig,
    /// `app_service_config_files`: the registrations, each file read and checked.
    pub app_services: Vec<crate::appservice::Registration>,
    /// `trusted_key_servers`: notaries asked for a server's keys when the server itself
    /// cannot be reached. Synapse's default, matrix.org; an empty list asks no one.
    pub trusted_key_servers: Vec<TrustedKeyServer>,
    /// `old_signing_keys`: keys this server signed with before, served as
    /// `old_verify_keys` so that what they signed can still be checked.
    pub old_signing_keys: Vec<OldSigningKey>,
}

/// One entry of `trusted_key_servers`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrustedKeyServer {
    pub server_name: String,
    /// `verify_keys`: key ID -> unpadded base64 public key. Empty: the notary's own keys
    /// are fetched from it (Synapse warns about this; so does Glia).
    pub verify_keys: std::collections::BTreeMap<String, String>,
}

/// One entry of `old_signing_keys` (`"ed25519:id": {key: ..., expired_ts: ...}`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OldSigningKey {
    pub key_id: String,
    /// Unpadded base64 public key.
    pub key: String,
    pub expired_ts: i64,
}

/// Synapse's URL preview keys. Synapse requires `url_preview_ip_range_blacklist` when
/// previews are enabled; Glia defaults it to the recommended list
/// (`media::preview::DEFAULT_BLOCKLIST`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UrlPreviewConfig {
    /// `url_preview_enabled` (default false).
    pub enabled: bool,
    /// `url_preview_ip_range_blacklist`; `None`: the built-in recommended list.
    pub ip_range_blacklist: Option<Vec<IpRange>>,
    /// `url_preview_ip_range_whitelist`: ranges reachable although blocked.
    pub ip_range_whitelist: Vec<IpRange>,
    /// `url_preview_url_blacklist`: a URL matching every component of one rule is refused.
    pub url_blacklist: Vec<crate::media::preview::UrlRule>,
    /// `max_spider_size` (default 10M): the most bytes read of a previewed resource.
    pub max_spider_size: u64,
}

impl Default for UrlPreviewConfig {
    fn default() -> Self {
        UrlPreviewConfig {
            enabled: false,
            ip_range_blacklist: None,
            ip_range_whitelist: Vec::new(),
            url_blacklist: Vec::new(),
            max_spider_size: 10 * 1024 * 1024,
        }
    }
}

/// `password_config.policy`, with Synapse's fields and errcodes (see
/// `api::client::register::check_password_policy`). All off by default.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PasswordPolicy {
    pub minimum_length: usize,
    pub require_digit: bool,
    pub require_symbol: bool,
    pub require_lowercase: bool,
    pub require_uppercase: bool,
}

/// Synapse's default captcha verifier.
pub const DEFAULT_RECAPTCHA_SITEVERIFY_API: &str =
    "https://www.recaptcha.net/recaptcha/api/siteverify";

/// Settings a test deployment (SyTest, a private test federation) needs and a production
/// server must not get by accident. They keep Synapse's key names where Synapse has the
/// same setting. Every non-default value is reported by [`Config::test_setup_warnings`],
/// which `Server::start` logs at WARN.
///
/// The federation client (`federation::client`) honours the three federation keys, the
/// rate limiter (`ratelimit`) honours `rc_disabled`.
#[derive(Debug, Clone)]
pub struct TestSetup {
    /// `federation_custom_ca_list`: PEM files of the certificate authorities that outbound
    /// federation TLS trusts *instead of* the system roots (as in Synapse).
    pub federation_custom_ca_list: Vec<PathBuf>,
    /// `federation_verify_certificates` (default true): false accepts any certificate from
    /// federation peers.
    pub federation_verify_certificates: bool,
    /// `ip_range_whitelist`: address ranges that outbound requests may reach although
    /// they are loopback or private (which are refused by default, as in Synapse).
    pub ip_range_whitelist: Vec<IpRange>,
    /// `rc_disabled` (default false): true turns every rate limit off.
    pub rc_disabled: bool,
}

impl Default for TestSetup {
    fn default() -> Self {
        TestSetup {
            federation_custom_ca_list: Vec::new(),
            federation_verify_certificates: true,
            ip_range_whitelist: Vec::new(),
            rc_disabled: false,
        }
    }
}

/// An address range in CIDR notation: `127.0.0.0/8`, `::1/128`, or a bare address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IpRange {
    pub addr: IpAddr,
    pub prefix_len: u8,
}

impl IpRange {
    pub fn parse(s: &str) -> Option<IpRange> {
        let (addr, len) = match s.trim().split_once('/') {
            Some((a, l)) => (a, Some(l)),
            None => (s.trim(), None),
        };
        let addr: IpAddr = addr.parse().ok()?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix_len = match len {
            None => max,
            Some(l) if l.bytes().all(|b| b.is_ascii_digit()) && !l.is_empty() => {
                let n: u8 = l.parse().ok()?;
                if n > max {
                    return None;
                }
                n
            }
            Some(_) => return None,
        };
        Some(IpRange { addr, prefix_len })
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        fn prefix_eq(a: &[u8], b: &[u8], len: u8) -> bool {
            let (whole, rest) = ((len / 8) as usize, len % 8);
            if a[..whole] != b[..whole] {
                return false;
            }
            rest == 0 || (a[whole] ^ b[whole]) >> (8 - rest) == 0
        }
        // An IPv4-mapped IPv6 address (::ffff:a.b.c.d) is the IPv4 address it carries.
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
            v4 => v4,
        };
        match (self.addr, ip) {
            (IpAddr::V4(r), IpAddr::V4(a)) => prefix_eq(&r.octets(), &a.octets(), self.prefix_len),
            (IpAddr::V6(r), IpAddr::V6(a)) => prefix_eq(&r.octets(), &a.octets(), self.prefix_len),
            _ => false,
        }
    }
}

impl std::fmt::Display for IpRange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix_len)
    }
}

#[derive(Debug, Clone)]
pub struct Listener {
    pub port: u16,
    pub bind_addresses: Vec<IpAddr>,
    pub tls: bool,
    /// Trust `X-Forwarded-For` from whatever connects to this listener (a reverse proxy).
    pub x_forwarded: bool,
    pub resources: Vec<String>,
    /// A `type: metrics` listener: serves only `/_synapse/metrics` (and `/metrics`).
    pub metrics: bool,
}

#[derive(Debug, Clone)]
pub struct DatabaseConfig {
    pub path: PathBuf,
    /// `synchronous=FULL` (default) survives power loss; `NORMAL` survives kill -9 only.
    pub synchronous_full: bool,
    pub readers: usize,
}

/// What reading a config file found: the config (if every key was valid) and the warnings.
#[derive(Debug, Default)]
pub struct Report {
    pub errors: Vec<String>,
    pub warnings: Vec<String>,
}

/// Keys Synapse writes into a generated config that Glia accepts and has no use for.
const IGNORED_SYNAPSE_KEYS: &[&str] = &[
    "report_stats",
    "log_config",
    "pid_file",
    "macaroon_secret_key",
    "form_secret",
    "suppress_key_server_warning",
    "media_store_path",
    "presence",
    "web_client_location",
    "room_list_publication_rules",
    "default_room_version",
];

impl Config {
    /// The embedded default: `127.0.0.1:8008`, `localhost`, everything under `./glia-data`.
    pub fn embedded_default() -> Config {
        Config::defaults_for(
            ServerName::parse("localhost").expect("static server name is valid"),
            Path::new("glia-data"),
        )
    }

    /// Defaults that place every file under `data_dir`.
    pub fn defaults_for(server_name: OwnedServerName, data_dir: &Path) -> Config {
        Config {
            signing_key_path: data_dir.join(format!("{server_name}.signing.key")),
            server_name,
            public_baseurl: None,
            listeners: vec![Listener {
                port: 8008,
                bind_addresses: vec![IpAddr::from([127, 0, 0, 1])],
                tls: false,
                x_forwarded: false,
                resources: vec!["client".into(), "federation".into()],
                metrics: false,
            }],
            tls_certificate_path: None,
            tls_private_key_path: None,
            database: DatabaseConfig {
                path: data_dir.join("homeserver.db"),
                synchronous_full: true,
                readers: 4,
            },
            registration_shared_secret: None,
            registration_shared_secret_path: Some(data_dir.join("registration_shared_secret")),
            enable_registration: false,
            enable_registration_without_verification: false,
            enable_registration_captcha: false,
            registration_requires_token: false,
            allow_guest_access: false,
            allow_public_rooms_without_auth: false,
            serve_server_wellknown: false,
            allow_public_rooms_over_federation: false,
            media_store_path: data_dir.join("media_store"),
            max_upload_size: 50 * 1024 * 1024,
            max_json_body: DEFAULT_MAX_JSON_BODY,
            password_login_enabled: true,
            password_policy: PasswordPolicy::default(),
            recaptcha_public_key: None,
            recaptcha_private_key: None,
            recaptcha_siteverify_api: DEFAULT_RECAPTCHA_SITEVERIFY_API.into(),
            federation_domain_whitelist: None,
            federation_client_timeout: std::time::Duration::from_secs(60),
            admin_contact: None,
            enable_metrics: false,
            rate_limits: Default::default(),
            test_setup: TestSetup::default(),
            url_preview: UrlPreviewConfig::default(),
            app_services: Vec::new(),
            trusted_key_servers: vec![TrustedKeyServer {
                server_name: "matrix.org".into(),
                verify_keys: Default::default(),
            }],
            old_signing_keys: Vec::new(),
        }
    }

    pub fn from_file(path: &Path) -> Result<(Config, Report), Report> {
        let text = std::fs::read_to_string(path).map_err(|e| Report {
            errors: vec![format!("cannot read {}: {e}", path.display())],
            warnings: vec![],
        })?;
        Config::from_yaml_str(&text)
    }

    /// Parse a config; on failure the report names every invalid key.
    pub fn from_yaml_str(text: &str) -> Result<(Config, Report), Report> {
        let mut report = Report::default();
        let root: Value = match serde_yaml_ng::from_str(text) {
            Ok(v) => v,
            Err(e) => {
                report.errors.push(format!("not valid YAML: {e}"));
                return Err(report);
            }
        };
        let map = match root {
            Value::Mapping(m) => m,
            Value::Null => Mapping::new(),
            _ => {
                report.errors.push("the top level must be a mapping of keys".into());
                return Err(report);
            }
        };
        let mut r =
            Reader { map: &map, prefix: String::new(), report: &mut report, seen: BTreeSet::new() };

        let server_name = match r.string("server_name") {
            Some(s) => match ServerName::parse(&s) {
                Ok(n) => Some(n),
                Err(e) => {
                    r.error("server_name", format!("{s:?} is not a valid server name ({e})"));
                    None
                }
            },
            None => {
                r.error("server_name", "is required".into());
                None
            }
        };
        let placeholder = ServerName::parse("localhost").expect("static server name is valid");
        let mut c =
            Config::defaults_for(server_name.clone().unwrap_or(placeholder), Path::new("."));
        // Paths that default relative to the data directory must be given explicitly in a file;
        // the database and signing key have Synapse's defaults relative to the working dir.
        c.signing_key_path = PathBuf::from(format!("{}.signing.key", c.server_name));
        c.registration_shared_secret_path = None;

        if let Some(v) = r.string("public_baseurl") {
            if v.starts_with("http://") || v.starts_with("https://") {
                c.public_baseurl = Some(if v.ends_with('/') { v } else { format!("{v}/") });
            } else {
                r.error("public_baseurl", format!("{v:?} must start with http:// or https://"));
            }
        }
        if let Some(v) = r.path("signing_key_path") {
            c.signing_key_path = v;
        }
        c.tls_certificate_path = r.path("tls_certificate_path");
        c.tls_private_key_path = r.path("tls_private_key_path");
        c.registration_shared_secret = r.string("registration_shared_secret");
        c.registration_shared_secret_path = r.path("registration_shared_secret_path");
        bool_key(&mut r, "enable_registration", &mut c.enable_registration);
        bool_key(
            &mut r,
            "enable_registration_without_verification",
            &mut c.enable_registration_without_verification,
        );
        bool_key(&mut r, "enable_registration_captcha", &mut c.enable_registration_captcha);
        bool_key(&mut r, "registration_requires_token", &mut c.registration_requires_token);
        bool_key(&mut r, "allow_guest_access", &mut c.allow_guest_access);
        bool_key(&mut r, "allow_public_rooms_without_auth", &mut c.allow_public_rooms_without_auth);
        bool_key(&mut r, "serve_server_wellknown", &mut c.serve_server_wellknown);
        bool_key(
            &mut r,
            "allow_public_rooms_over_federation",
            &mut c.allow_public_rooms_over_federation,
        );
        if let Some(v) = r.path("media_store_path") {
            c.media_store_path = v;
        }
        if let Some(v) = r.size("max_upload_size") {
            c.max_upload_size = v;
        }
        c.admin_contact = r.string("admin_contact");
        bool_key(&mut r, "enable_metrics", &mut c.enable_metrics);
        c.recaptcha_public_key = r.string("recaptcha_public_key");
        c.recaptcha_private_key = r.string("recaptcha_private_key");
        if let Some(v) = r.string("recaptcha_siteverify_api") {
            if v.starts_with("http://") || v.starts_with("https://") {
                c.recaptcha_siteverify_api = v;
            } else {
                r.error(
                    "recaptcha_siteverify_api",
                    format!("{v:?} must start with http:// or https://"),
                );
            }
        }
        if let Some(items) = r.list("federation_domain_whitelist") {
            let mut names = BTreeSet::new();
            for (i, v) in items.iter().enumerate() {
                match v.as_str().map(ServerName::parse) {
                    Some(Ok(n)) => {
                        names.insert(n.to_string());
                    }
                    _ => r.error(
                        &format!("federation_domain_whitelist[{i}]"),
                        format!("{v:?} is not a server name"),
                    ),
                }
            }
            c.federation_domain_whitelist = Some(names);
        }
        if let Some(items) = r.list("app_service_config_files") {
            let mut paths = vec![];
            for (i, v) in items.iter().enumerate() {
                match v.as_str() {
                    Some(s) => paths.push(PathBuf::from(s)),
                    None => {
                        r.error(&format!("app_service_config_files[{i}]"), "must be a path".into())
                    }
                }
            }
            match crate::appservice::registration::load_all(&paths) {
                Ok(regs) => c.app_services = regs,
                Err(errors) => r.report.errors.extend(errors),
            }
        }
        read_key_servers(&mut r, &mut c);
        if let Some(mut f) = r.child("federation") {
            if let Some(d) = f.duration("client_timeout") {
                c.federation_client_timeout = d;
            }
            f.warn_unknown();
        }
        read_test_setup(&mut r, &mut c.test_setup);
        read_url_preview(&mut r, &mut c.url_preview);
        read_rate_limits(&mut r, &mut c.rate_limits);

        if let Some(db) = r.child("database") {
            read_database(db, &mut c.database);
        } else {
            c.database.path = PathBuf::from("homeserver.db");
        }
        if let Some(pc) = r.child("password_config") {
            let mut pc = pc;
            bool_key(&mut pc, "enabled", &mut c.password_login_enabled);
            if let Some(mut policy) = pc.child("policy") {
                let mut enabled = false;
                bool_key(&mut policy, "enabled", &mut enabled);
                let mut p = PasswordPolicy::default();
                if let Some(n) = policy.uint("minimum_length") {
                    p.minimum_length = n as usize;
                }
                bool_key(&mut policy, "require_digit", &mut p.require_digit);
                bool_key(&mut policy, "require_symbol", &mut p.require_symbol);
                bool_key(&mut policy, "require_lowercase", &mut p.require_lowercase);
                bool_key(&mut policy, "require_uppercase", &mut p.require_uppercase);
                if enabled {
                    c.password_policy = p;
                }
                policy.warn_unknown();
            }
            pc.warn_unknown();
        }
        match r.list("listeners") {
            Some(items) => {
                c.listeners.clear();
                for (i, item) in items.iter().enumerate() {
                    let key = format!("listeners[{i}]");
                    match item {
                        Value::Mapping(m) => {
                            let prefix = format!("{key}.");
                            let mut lr =
                                Reader { map: m, prefix, report: r.report, seen: BTreeSet::new() };
                            if let Some(l) = read_listener(&mut lr) {
                                c.listeners.push(l);
                            }
                        }
                        _ => r.error(&key, "must be a mapping".into()),
                    }
                }
            }
            None => {
                // Synapse requires listeners; Glia falls back to the embedded default so a
                // minimal config (server_name alone) still serves.
            }
        }
        for key in IGNORED_SYNAPSE_KEYS {
            r.seen.insert((*key).to_string());
        }
        r.warn_unknown();

        if c.listeners.iter().any(|l| l.tls)
            && (c.tls_certificate_path.is_none() || c.tls_private_key_path.is_none())
        {
            report.errors.push(
                "listeners: a listener has `tls: true` but tls_certificate_path and \
                 tls_private_key_path are not both set"
                    .into(),
            );
        }
        if c.enable_registration
            && !c.enable_registration_without_verification
            && !c.enable_registration_captcha
            && !c.registration_requires_token
        {
            report.errors.push(
                "enable_registration: open registration without captcha or registration token \
                 invites spam; set enable_registration_without_verification: true if you really \
                 want it"
                    .into(),
            );
        }
        if c.listeners.iter().any(|l| l.metrics) && !c.enable_metrics {
            report.errors.push(
                "listeners: a `type: metrics` listener needs enable_metrics: true (as in Synapse)"
                    .into(),
            );
        }
        if c.enable_registration_captcha
            && (c.recaptcha_public_key.as_deref().unwrap_or("").is_empty()
                || c.recaptcha_private_key.as_deref().unwrap_or("").is_empty())
        {
            report.errors.push(
                "enable_registration_captcha: needs recaptcha_public_key and \
                 recaptcha_private_key"
                    .into(),
            );
        }
        if report.errors.is_empty() && server_name.is_some() {
            Ok((c, report))
        } else {
            Err(report)
        }
    }

    /// One loud line per test-setup key that weakens the server, for the start-up log.
    pub fn test_setup_warnings(&self) -> Vec<String> {
        let t = &self.test_setup;
        let mut w = Vec::new();
        if !t.federation_custom_ca_list.is_empty() {
            let files: Vec<String> =
                t.federation_custom_ca_list.iter().map(|p| p.display().to_string()).collect();
            w.push(format!(
                "TEST SETUP: federation_custom_ca_list: outbound federation trusts ONLY the CAs \
                 in {} instead of the system's; for test or private federations only",
                files.join(", ")
            ));
        }
        if !t.federation_verify_certificates {
            w.push(
                "TEST SETUP: federation_verify_certificates: false: federation peers' TLS \
                 certificates are NOT verified, anyone on the path can impersonate any server; \
                 never in production"
                    .into(),
            );
        }
        if !t.ip_range_whitelist.is_empty() {
            let ranges: Vec<String> = t.ip_range_whitelist.iter().map(|r| r.to_string()).collect();
            w.push(format!(
                "TEST SETUP: ip_range_whitelist: outbound requests may reach {} although \
                 loopback/private addresses are refused by default; remote users can make this \
                 server call those addresses",
                ranges.join(", ")
            ));
        }
        if t.rc_disabled {
            w.push(
                "TEST SETUP: rc_disabled: true: every rate limit is OFF, nothing slows down \
                 password guessing, registration or message floods; never in production"
                    .into(),
            );
        }
        w
    }

    /// Whether `federation_domain_whitelist` lets this server federate with `server_name`
    /// (inbound requests from it, outbound requests to it). Without the key, everyone.
    pub fn federation_allowed(&self, server_name: &str) -> bool {
        federation_allowed_in(self.federation_domain_whitelist.as_ref(), server_name)
    }

    /// The base URL clients should use, for `.well-known/matrix/client`.
    pub fn client_base_url(&self) -> String {
        match &self.public_baseurl {
            Some(u) => u.clone(),
            None => format!("https://{}/", self.server_name),
        }
    }
}

/// [`Config::federation_allowed`] for a whitelist held elsewhere (the federation client).
pub fn federation_allowed_in(whitelist: Option<&BTreeSet<String>>, server_name: &str) -> bool {
    whitelist.is_none_or(|w| w.contains(server_name))
}

/// `trusted_key_servers` and `old_signing_keys`, in Synapse's shapes.
fn read_key_servers(r: &mut Reader<'_>, c: &mut Config) {
    if let Some(items) = r.list("trusted_key_servers") {
        c.trusted_key_servers.clear();
        for (i, v) in items.iter().enumerate() {
            let key = format!("trusted_key_servers[{i}]");
            let name = v.get("server_name").and_then(Value::as_str).map(ServerName::parse);
            let Some(Ok(name)) = name else {
                r.error(&key, "needs a valid server_name".into());
                continue;
            };
            let mut verify_keys = std::collections::BTreeMap::new();
            match v.get("verify_keys") {
                None | Some(Value::Null) => {}
                Some(Value::Mapping(m)) => {
                    for (id, k) in m {
                        match (id.as_str(), k.as_str().map(|k| k.trim_end_matches('='))) {
                            (Some(id), Some(k))
                                if id.starts_with("ed25519:")
                                    && ruma::serde::Base64::<ruma::serde::base64::Standard>::parse(k)
                                        .is_ok() =>
                            {
                                verify_keys.insert(id.to_string(), k.to_string());
                            }
                            _ => r.error(
                                &format!("{key}.verify_keys"),
                                format!("{id:?}: {k:?} must be an ed25519 key ID and base64 key"),
                            ),
                        }
                    }
                }
                Some(_) => r.error(&format!("{key}.verify_keys"), "must be a mapping".into()),
            }
            c.trusted_key_servers
                .push(TrustedKeyServer { server_name: name.to_string(), verify_keys });
        }
    }
    match r.get("old_signing_keys") {
        None => {}
        Some(Value::Mapping(map)) => read_old_signing_keys(r, map, c),
        Some(_) => r.error("old_signing_keys", "must be a mapping".into()),
    }
}

fn read_old_signing_keys(r: &mut Reader<'_>, map: &Mapping, c: &mut Config) {
    {
        for (id, v) in map {
            let id = id.as_str().unwrap_or_default().to_string();
            let key = v.get("key").and_then(Value::as_str).map(|k| k.trim_end_matches('='));
            let expired = v.get("expired_ts").and_then(Value::as_i64);
            match (key, expired) {
                (Some(k), Some(ts))
                    if id.starts_with("ed25519:")
                        && ruma::serde::Base64::<ruma::serde::base64::Standard>::parse(k)
                            .is_ok() =>
                {
                    c.old_signing_keys.push(OldSigningKey {
                        key_id: id,
                        key: k.to_string(),
                        expired_ts: ts,
                    });
                }
                _ => r.error(
                    &format!("old_signing_keys.{id}"),
                    "must be an ed25519 key ID mapping to {key: <base64>, expired_ts: <ms>}".into(),
                ),
            }
        }
    }
}

fn read_test_setup(r: &mut Reader<'_>, t: &mut TestSetup) {
    if let Some(items) = r.list("federation_custom_ca_list") {
        for (i, v) in items.iter().enumerate() {
            match v.as_str() {
                Some(p) if !p.is_empty() => t.federation_custom_ca_list.push(PathBuf::from(p)),
                _ => r.error(
                    &format!("federation_custom_ca_list[{i}]"),
                    "must be the path of a PEM file".into(),
                ),
            }
        }
    }
    bool_key(r, "federation_verify_certificates", &mut t.federation_verify_certificates);
    if let Some(items) = r.list("ip_range_whitelist") {
        for (i, v) in items.iter().enumerate() {
            match v.as_str().and_then(IpRange::parse) {
                Some(range) => t.ip_range_whitelist.push(range),
                None => r.error(
                    &format!("ip_range_whitelist[{i}]"),
                    format!("{v:?} is not an address range like 127.0.0.0/8 or ::1/128"),
                ),
            }
        }
    }
    bool_key(r, "rc_disabled", &mut t.rc_disabled);
}

fn ip_range_list(r: &mut Reader<'_>, key: &str) -> Option<Vec<IpRange>> {
    let items = r.list(key)?;
    let mut out = Vec::new();
    for (i, v) in items.iter().enumerate() {
        match v.as_str().and_then(IpRange::parse) {
            Some(range) => out.push(range),
            None => r.error(
                &format!("{key}[{i}]"),
                format!("{v:?} is not an address range like 127.0.0.0/8 or ::1/128"),
            ),
        }
    }
    Some(out)
}

fn read_url_preview(r: &mut Reader<'_>, u: &mut UrlPreviewConfig) {
    use crate::media::preview::UrlRule;
    bool_key(r, "url_preview_enabled", &mut u.enabled);
    u.ip_range_blacklist = ip_range_list(r, "url_preview_ip_range_blacklist");
    u.ip_range_whitelist = ip_range_list(r, "url_preview_ip_range_whitelist").unwrap_or_default();
    if let Some(items) = r.list("url_preview_url_blacklist") {
        for (i, v) in items.iter().enumerate() {
            let key = format!("url_preview_url_blacklist[{i}]");
            let Value::Mapping(m) = v else {
                r.error(&key, "must be a mapping of URL component to pattern".into());
                continue;
            };
            let mut pairs = Vec::new();
            for (k, p) in m {
                match (k.as_str(), p.as_str()) {
                    (Some(k), Some(p)) => pairs.push((k.to_string(), p.to_string())),
                    _ => r.error(&key, format!("{k:?}: {p:?} must be a component and a string")),
                }
            }
            match UrlRule::new(pairs) {
                Ok(rule) => u.url_blacklist.push(rule),
                Err(e) => r.error(&key, e),
            }
        }
    }
    if let Some(n) = r.size("max_spider_size") {
        if n == 0 {
            r.error("max_spider_size", "must be more than 0".into());
        } else {
            u.max_spider_size = n;
        }
    }
}

/// The `rc_*` keys: each limit a mapping of `per_second` (a number >= 0) and `burst_count`
/// (a whole number >= 0); missing ones keep Synapse's defaults.
fn read_rate_limits(r: &mut Reader<'_>, rc: &mut crate::ratelimit::RateLimitConfig) {
    use crate::ratelimit::Limit;
    fn limit(r: &mut Reader<'_>, key: &str, out: &mut Limit) {
        let Some(mut c) = r.child(key) else { return };
        if let Some(v) = c.get("per_second") {
            match v.as_f64() {
                Some(f) if f >= 0.0 && f.is_finite() => out.per_second = f,
                _ => {
                    c.error("per_second", "must be a number of actions a second, 0 or more".into())
                }
            }
        }
        if let Some(v) = c.get("burst_count") {
            match v.as_f64() {
                Some(f) if f >= 0.0 && f.is_finite() && f.fract() == 0.0 => out.burst_count = f,
                _ => c.error("burst_count", "must be a whole number, 0 or more".into()),
            }
        }
        c.warn_unknown();
    }
    fn nested(r: &mut Reader<'_>, key: &str, subs: &mut [(&str, &mut Limit)]) {
        let Some(mut c) = r.child(key) else { return };
        for (k, out) in subs.iter_mut() {
            limit(&mut c, k, out);
        }
        c.warn_unknown();
    }
    limit(r, "rc_message", &mut rc.message);
    limit(r, "rc_registration", &mut rc.registration);
    nested(
        r,
        "rc_login",
        &mut [
            ("address", &mut rc.login_address),
            ("account", &mut rc.login_account),
            ("failed_attempts", &mut rc.login_failed_attempts),
        ],
    );
    nested(r, "rc_joins", &mut [("local", &mut rc.joins_local), ("remote", &mut rc.joins_remote)]);
    nested(
        r,
        "rc_invites",
        &mut [
            ("per_room", &mut rc.invites_per_room),
            ("per_user", &mut rc.invites_per_user),
            ("per_issuer", &mut rc.invites_per_issuer),
        ],
    );
    limit(r, "rc_room_creation", &mut rc.room_creation);
    limit(r, "rc_media_create", &mut rc.media_create);
}

/// Reads every `federation_custom_ca_list` file, so that a wrong path or a file without
/// certificates stops the server at start-up rather than when federation first needs it.
pub fn check_custom_ca_list(t: &TestSetup) -> Result<usize, String> {
    use rustls_pki_types::CertificateDer;
    use rustls_pki_types::pem::PemObject;
    let mut n = 0;
    for path in &t.federation_custom_ca_list {
        let certs = CertificateDer::pem_file_iter(path)
            .and_then(|it| it.collect::<Result<Vec<_>, _>>())
            .map_err(|e| format!("federation_custom_ca_list: {}: {e}", path.display()))?;
        if certs.is_empty() {
            return Err(format!(
                "federation_custom_ca_list: {}: no certificate found",
                path.display()
            ));
        }
        n += certs.len();
    }
    Ok(n)
}

fn read_database(mut r: Reader<'_>, db: &mut DatabaseConfig) {
    match r.string("name").as_deref() {
        None | Some("sqlite3") => {}
        Some(other) => r.error("name", format!("{other:?} is not supported; use sqlite3")),
    }
    if let Some(mut args) = r.child("args") {
        if let Some(p) = args.path("database") {
            db.path = p;
        }
        match args.string("synchronous").as_deref() {
            None | Some("full") | Some("FULL") => db.synchronous_full = true,
            Some("normal") | Some("NORMAL") => db.synchronous_full = false,
            Some(other) => args.error("synchronous", format!("{other:?} must be full or normal")),
        }
        if let Some(n) = args.uint("readers") {
            if (1..=64).contains(&n) {
                db.readers = n as usize;
            } else {
                args.error("readers", "must be between 1 and 64".into());
            }
        }
        // Synapse's sqlite args that mean nothing here.
        for k in ["cp_min", "cp_max", "check_same_thread"] {
            args.seen.insert(k.into());
        }
        args.warn_unknown();
    }
    r.seen.insert("allow_unsafe_locale".into());
    r.warn_unknown();
}

fn read_listener(r: &mut Reader<'_>) -> Option<Listener> {
    let port = match r.uint("port") {
        Some(p) if p <= u16::MAX as u64 => Some(p as u16),
        Some(_) => {
            r.error("port", "must be between 0 and 65535".into());
            None
        }
        None => {
            r.error("port", "is required".into());
            None
        }
    };
    let mut bind_addresses = Vec::new();
    if let Some(items) = r.list("bind_addresses") {
        for (i, v) in items.iter().enumerate() {
            match v.as_str().map(|s| s.parse::<IpAddr>()) {
                Some(Ok(ip)) => bind_addresses.push(ip),
                _ => r.error(&format!("bind_addresses[{i}]"), "must be an IP address".into()),
            }
        }
    }
    if bind_addresses.is_empty() {
        // Synapse binds to all interfaces by default; so does Glia when a listener is written.
        bind_addresses = vec![IpAddr::from([0u8; 16]), IpAddr::from([0, 0, 0, 0])];
    }
    match r.string("type").as_deref() {
        None | Some("http") => {}
        Some("metrics") => {
            let port = port?;
            r.seen.insert("resources".into());
            r.seen.insert("tls".into());
            r.seen.insert("x_forwarded".into());
            return Some(Listener {
                port,
                bind_addresses,
                tls: false,
                x_forwarded: false,
                resources: vec![],
                metrics: true,
            });
        }
        Some("manhole") | Some("replication") => {
            r.report.warnings.push(format!(
                "{}type: listener type is not supported by Glia; listener skipped",
                r.prefix
            ));
            return None;
        }
        Some(other) => r.error("type", format!("{other:?} is not a listener type")),
    }
    let mut tls = false;
    bool_key(r, "tls", &mut tls);
    let mut x_forwarded = false;
    bool_key(r, "x_forwarded", &mut x_forwarded);
    let mut resources = Vec::new();
    if let Some(items) = r.list("resources") {
        for (i, item) in items.iter().enumerate() {
            let names = item.get("names").and_then(Value::as_sequence);
            match names {
                Some(names) => {
                    for n in names {
                        match n.as_str() {
                            Some(
                                s @ ("client" | "federation" | "keys" | "media" | "static"
                                | "openid" | "health" | "consent" | "replication" | "metrics"),
                            ) => resources.push(s.to_string()),
                            _ => r.error(
                                &format!("resources[{i}].names"),
                                format!("unknown resource {n:?}"),
                            ),
                        }
                    }
                }
                None => r.error(&format!("resources[{i}].names"), "must be a list".into()),
            }
        }
    } else {
        resources = vec!["client".into(), "federation".into()];
    }
    r.warn_unknown();
    Some(Listener { port: port?, bind_addresses, tls, x_forwarded, resources, metrics: false })
}

fn bool_key(r: &mut Reader<'_>, key: &str, out: &mut bool) {
    if let Some(v) = r.bool(key) {
        *out = v;
    }
}

/// Walks one YAML mapping, recording which keys were read and every invalid value by its
/// full dotted name.
struct Reader<'a> {
    map: &'a Mapping,
    prefix: String,
    report: &'a mut Report,
    seen: BTreeSet<String>,
}

impl<'a> Reader<'a> {
    fn get(&mut self, key: &str) -> Option<&'a Value> {
        self.seen.insert(key.to_string());
        match self.map.get(key) {
            None | Some(Value::Null) => None,
            Some(v) => Some(v),
        }
    }

    fn error(&mut self, key: &str, msg: String) {
        self.report.errors.push(format!("{}{key}: {msg}", self.prefix));
    }

    fn string(&mut self, key: &str) -> Option<String> {
        match self.get(key)? {
            Value::String(s) => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            _ => {
                self.error(key, "must be a string".into());
                None
            }
        }
    }

    fn path(&mut self, key: &str) -> Option<PathBuf> {
        self.string(key).map(PathBuf::from)
    }

    fn bool(&mut self, key: &str) -> Option<bool> {
        match self.get(key)? {
            Value::Bool(b) => Some(*b),
            _ => {
                self.error(key, "must be true or false".into());
                None
            }
        }
    }

    fn uint(&mut self, key: &str) -> Option<u64> {
        match self.get(key)? {
            Value::Number(n) if n.as_u64().is_some() => n.as_u64(),
            _ => {
                self.error(key, "must be a non-negative whole number".into());
                None
            }
        }
    }

    /// A size: a number of bytes, or Synapse's "50M" / "10K" / "1G" strings.
    fn size(&mut self, key: &str) -> Option<u64> {
        match self.get(key)? {
            Value::Number(n) if n.as_u64().is_some() => n.as_u64(),
            Value::String(s) => match parse_size(s) {
                Some(n) => Some(n),
                None => {
                    self.error(key, format!("{s:?} is not a size like 50M"));
                    None
                }
            },
            _ => {
                self.error(key, "must be a size like 50M".into());
                None
            }
        }
    }

    /// A duration: milliseconds, or Synapse's "500ms" / "30s" / "5m" / "1h" / "2d" strings.
    fn duration(&mut self, key: &str) -> Option<std::time::Duration> {
        let d = match self.get(key)? {
            Value::Number(n) => n.as_u64().map(std::time::Duration::from_millis),
            Value::String(s) => parse_duration(s),
            _ => None,
        };
        if d.is_none_or(|d| d.is_zero()) {
            self.error(
                key,
                "must be a positive duration like 30s or a number of milliseconds".into(),
            );
            return None;
        }
        d
    }

    fn list(&mut self, key: &str) -> Option<&'a Vec<Value>> {
        match self.get(key)? {
            Value::Sequence(s) => Some(s),
            _ => {
                self.error(key, "must be a list".into());
                None
            }
        }
    }

    fn child(&mut self, key: &str) -> Option<Reader<'_>> {
        let prefix = format!("{}{key}.", self.prefix);
        match self.get(key)? {
            Value::Mapping(m) => {
                Some(Reader { map: m, prefix, report: self.report, seen: BTreeSet::new() })
            }
            _ => {
                self.error(key, "must be a mapping".into());
                None
            }
        }
    }

    fn warn_unknown(&mut self) {
        for k in self.map.keys() {
            let name = k.as_str().map(str::to_string).unwrap_or_else(|| format!("{k:?}"));
            if !self.seen.contains(&name) {
                self.report.warnings.push(format!("{}{name}: unknown key, ignored", self.prefix));
            }
        }
    }
}

/// Synapse's duration strings: a number with an optional unit (ms, s, m, h, d, w, y);
/// no unit means milliseconds.
pub fn parse_duration(s: &str) -> Option<std::time::Duration> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: u64 = num.parse().ok()?;
    let ms: u64 = match unit.trim() {
        "" | "ms" => 1,
        "s" => 1000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        "w" => 7 * 86_400_000,
        "y" => 365 * 86_400_000,
        _ => return None,
    };
    n.checked_mul(ms).map(std::time::Duration::from_millis)
}

pub fn parse_size(s: &str) -> Option<u64> {
    let s = s.trim();
    let (num, mult) = match s.char_indices().last()? {
        (i, 'K' | 'k') => (&s[..i], 1024),
        (i, 'M' | 'm') => (&s[..i], 1024 * 1024),
        (i, 'G' | 'g') => (&s[..i], 1024 * 1024 * 1024),
        _ => (s, 1),
    };
    num.trim().parse::<u64>().ok()?.checked_mul(mult)
}

#[cfg(test)]
mod tests {
    /// The hardening snippet from the guide self-hosters follow, pasted unchanged.
    const SEED_HARDENING: &str = "server_name: my.matrix.host
enable_registration: false
allow_guest_access: false

## Recaptcha and registration config
recaptcha_public_key: \"####################\"
recaptcha_private_key: \"####################\"
enable_registration_captcha: true

## Disable federation if you want
federation_domain_whitelist: []

rc_message:
  per_second: 0.2  # messages per second
  burst_count: 10   # allow bursts of up to 10 messages
rc_registration:
  per_second: 0.03  # registration requests per second
  burst_count: 5    # burst limit
";

    #[test]
    fn metrics_listeners_need_enable_metrics() {
        let yaml = "server_name: a.b\nlisteners:\n  - port: 9000\n    type: metrics\n";
        let err = Config::from_yaml_str(yaml).expect_err("refused");
        assert!(err.errors.iter().any(|e| e.contains("enable_metrics")), "{:?}", err.errors);
        let (c, _) =
            Config::from_yaml_str(&format!("{yaml}enable_metrics: true\n")).expect("accepted");
        assert!(c.listeners[0].metrics && c.enable_metrics);
    }

    #[test]
    fn the_seed_hardening_snippet_works_unchanged() {
        let (c, report) = Config::from_yaml_str(SEED_HARDENING).expect("accepted as is");
        assert!(report.warnings.is_empty(), "{:?}", report.warnings);
        assert!(!c.enable_registration && !c.allow_guest_access && c.enable_registration_captcha);
        assert_eq!(c.recaptcha_public_key.as_deref(), Some("####################"));
        assert!(!c.federation_allowed("matrix.org"), "[] federates with no one");
        assert_eq!(
            (c.rate_limits.message.per_second, c.rate_limits.message.burst_count),
            (0.2, 10.0)
        );
        assert_eq!(
            (c.rate_limits.registration.per_second, c.rate_limits.registration.burst_count),
            (0.03, 5.0)
        );
    }

    use super::*;

    #[test]
    fn key_servers_and_old_signing_keys_in_synapses_shapes() {
        let (c, _) = Config::from_yaml_str("server_name: a.b\n").expect("valid");
        assert_eq!(c.trusted_key_servers.len(), 1, "matrix.org by default, as Synapse");
        assert_eq!(c.trusted_key_servers[0].server_name, "matrix.org");
        let yaml = "server_name: a.b\ntrusted_key_servers: []\n";
        assert!(Config::from_yaml_str(yaml).expect("valid").0.trusted_key_servers.is_empty());
        let yaml = "server_name: a.b\ntrusted_key_servers:\n  - server_name: n.example:8448\n    \
                    verify_keys:\n      \"ed25519:auto\": \"Noi6WqcDj0QmPxCNQqgezwTlBKrGAWQ8SnbIgQDXBqQ\"\n\
                    old_signing_keys:\n  \"ed25519:old\": {key: \"AAAA\", expired_ts: 123}\n";
        let (c, r) = Config::from_yaml_str(yaml).expect("valid");
        assert!(r.warnings.is_empty(), "{:?}", r.warnings);
        assert_eq!(c.trusted_key_servers[0].server_name, "n.example:8448");
        assert!(c.trusted_key_servers[0].verify_keys.contains_key("ed25519:auto"));
        assert_eq!(
            c.old_signing_keys,
            vec![OldSigningKey {
                key_id: "ed25519:old".into(),
                key: "AAAA".into(),
                expired_ts: 123
            }]
        );
        for bad in [
            "trusted_key_servers: [{verify_keys: {}}]",
            "trusted_key_servers: [{server_name: 'a b'}]",
            "trusted_key_servers: [{server_name: x.y, verify_keys: {'ed25519:a': '!!'}}]",
            "old_signing_keys: {'ed25519:x': {key: AAAA}}",
            "old_signing_keys: [1]",
        ] {
            let err = Config::from_yaml_str(&format!("server_name: a.b\n{bad}\n"));
            assert!(err.is_err(), "{bad}");
        }
    }

    #[test]
    fn minimal_config_has_synapse_defaults() {
        let (c, _) = Config::from_yaml_str("server_name: example.org\n").expect("valid");
        assert_eq!(c.server_name.as_str(), "example.org");
        assert!(!c.enable_registration);
        assert!(!c.allow_guest_access);
        assert_eq!(c.listeners[0].port, 8008);
    }

    #[test]
    fn every_bad_key_is_named() {
        let yaml = "server_name: 'not a name!'\nenable_registration: maybe\n\
                    listeners:\n  - port: 99999\n    tls: 1\nmax_upload_size: lots\n\
                    database:\n  name: psycopg2\nfrobnicate: 1\n";
        let report = Config::from_yaml_str(yaml).expect_err("invalid");
        let all = report.errors.join("\n");
        for key in [
            "server_name",
            "enable_registration",
            "listeners[0].port",
            "listeners[0].tls",
            "max_upload_size",
            "database.name",
        ] {
            assert!(all.contains(&format!("{key}:")), "{key} missing from:\n{all}");
        }
        assert!(!all.contains("frobnicate"), "unknown keys are not errors");
    }

    #[test]
    fn url_preview_keys() {
        let (c, report) = Config::from_yaml_str("server_name: a.b\n").expect("valid");
        assert_eq!(c.url_preview, UrlPreviewConfig::default());
        assert!(!c.url_preview.enabled);
        assert_eq!(c.url_preview.max_spider_size, 10 * 1024 * 1024);
        assert!(report.warnings.is_empty(), "{:?}", report.warnings);
        let yaml = "server_name: a.b\nurl_preview_enabled: true\n\
                    url_preview_ip_range_blacklist: ['10.0.0.0/8', '::1/128']\n\
                    url_preview_ip_range_whitelist: ['127.0.0.1']\n\
                    url_preview_url_blacklist:\n  - netloc: '*.evil.example'\n  \
                    - scheme: http\n    netloc: plain.example\nmax_spider_size: 1K\n";
        let (c, report) = Config::from_yaml_str(yaml).expect("valid");
        assert!(report.warnings.is_empty(), "{:?}", report.warnings);
        let u = &c.url_preview;
        assert!(u.enabled);
        assert_eq!(u.ip_range_blacklist.as_ref().map(Vec::len), Some(2));
        assert_eq!(u.ip_range_whitelist, vec![IpRange::parse("127.0.0.1").expect("range")]);
        assert_eq!(u.url_blacklist.len(), 2);
        assert_eq!(u.max_spider_size, 1024);
        assert!(u.url_blacklist[0].matches("https://a.evil.example/x"));
        assert!(!u.url_blacklist[0].matches("https://evil.example.org/"));
        assert!(u.url_blacklist[1].matches("http://plain.example/"));
        assert!(!u.url_blacklist[1].matches("https://plain.example/"));
    }

    #[test]
    fn bad_url_preview_values_are_named() {
        let yaml = "server_name: a.b\nurl_preview_enabled: yes please\n\
                    url_preview_ip_range_blacklist: ['nope']\n\
                    url_preview_ip_range_whitelist: 7\n\
                    url_preview_url_blacklist:\n  - colour: red\n  - 3\n\
                    max_spider_size: huge\n";
        let all = Config::from_yaml_str(yaml).expect_err("invalid").errors.join("\n");
        for key in [
            "url_preview_enabled:",
            "url_preview_ip_range_blacklist[0]:",
            "url_preview_ip_range_whitelist:",
            "url_preview_url_blacklist[0]:",
            "url_preview_url_blacklist[1]:",
            "max_spider_size:",
        ] {
            assert!(all.contains(key), "{key} missing from:\n{all}");
        }
    }

    #[test]
    fn unknown_keys_warn() {
        let (_, report) =
            Config::from_yaml_str("server_name: a.b\nfrobnicate: 1\nreport_stats: true\n")
                .expect("valid");
        assert_eq!(report.warnings, vec!["frobnicate: unknown key, ignored".to_string()]);
    }

    #[test]
    fn open_registration_needs_explicit_opt_in() {
        let err = Config::from_yaml_str("server_name: a.b\nenable_registration: true\n")
            .expect_err("refused");
        assert!(err.errors[0].starts_with("enable_registration:"));
        Config::from_yaml_str(
            "server_name: a.b\nenable_registration: true\n\
             enable_registration_without_verification: true\n",
        )
        .expect("allowed with opt-in");
    }

    #[test]
    fn open_registration_is_allowed_with_token_or_captcha() {
        let (c, _) = Config::from_yaml_str(
            "server_name: a.b\nenable_registration: true\nregistration_requires_token: true\n",
        )
        .expect("token-gated registration is verified");
        assert!(c.registration_requires_token);
        let err = Config::from_yaml_str(
            "server_name: a.b\nenable_registration: true\nenable_registration_captcha: true\n",
        )
        .expect_err("captcha needs its keys");
        assert!(err.errors[0].starts_with("enable_registration_captcha:"), "{:?}", err.errors);
        let (c, report) = Config::from_yaml_str(
            "server_name: a.b\nenable_registration: true\nenable_registration_captcha: true\n\
             recaptcha_public_key: pub\nrecaptcha_private_key: priv\n",
        )
        .expect("captcha-gated registration is verified");
        assert!(report.warnings.is_empty(), "{:?}", report.warnings);
        assert_eq!(c.recaptcha_public_key.as_deref(), Some("pub"));
        assert_eq!(c.recaptcha_siteverify_api, DEFAULT_RECAPTCHA_SITEVERIFY_API);
        let (c, _) = Config::from_yaml_str(
            "server_name: a.b\nrecaptcha_siteverify_api: http://127.0.0.1:9/verify\n",
        )
        .expect("plain http verifier");
        assert_eq!(c.recaptcha_siteverify_api, "http://127.0.0.1:9/verify");
        let err = Config::from_yaml_str("server_name: a.b\nrecaptcha_siteverify_api: ftp://x\n")
            .expect_err("bad url");
        assert!(err.errors[0].starts_with("recaptcha_siteverify_api:"));
    }

    #[test]
    fn password_policy_applies_only_when_enabled() {
        let yaml = "server_name: a.b\npassword_config:\n  policy:\n    enabled: true\n\
                    \x20   minimum_length: 8\n    require_digit: true\n    require_symbol: true\n\
                    \x20   require_lowercase: true\n    require_uppercase: true\n";
        let (c, report) = Config::from_yaml_str(yaml).expect("valid");
        assert!(report.warnings.is_empty(), "{:?}", report.warnings);
        assert_eq!(
            c.password_policy,
            PasswordPolicy {
                minimum_length: 8,
                require_digit: true,
                require_symbol: true,
                require_lowercase: true,
                require_uppercase: true
            }
        );
        let (c, _) =
            Config::from_yaml_str(&yaml.replace("enabled: true", "enabled: false")).expect("valid");
        assert_eq!(c.password_policy, PasswordPolicy::default());
        let err = Config::from_yaml_str(&yaml.replace("require_digit: true", "require_digit: 1"))
            .expect_err("invalid");
        assert_eq!(err.errors, ["password_config.policy.require_digit: must be true or false"]);
    }

    #[test]
    fn federation_client_timeout() {
        let (c, _) = Config::from_yaml_str("server_name: a.b\n").expect("valid");
        assert_eq!(c.federation_client_timeout, std::time::Duration::from_secs(60));
        for (v, ms) in [("2500", 2500), ("'500ms'", 500), ("'30s'", 30_000), ("'2m'", 120_000)] {
            let y = format!("server_name: a.b\nfederation:\n  client_timeout: {v}\n");
            let (c, _) = Config::from_yaml_str(&y).expect("valid");
            assert_eq!(c.federation_client_timeout.as_millis(), ms, "{v}");
        }
        for v in ["'soon'", "0", "'5x'"] {
            let y = format!("server_name: a.b\nfederation:\n  client_timeout: {v}\n");
            let r = Config::from_yaml_str(&y).expect_err("invalid");
            assert!(
                r.errors.iter().any(|e| e.contains("federation.client_timeout")),
                "{v}: {:?}",
                r.errors
            );
        }
    }

    #[test]
    fn federation_domain_whitelist() {
        let (c, _) = Config::from_yaml_str("server_name: a.b\n").expect("valid");
        assert!(c.federation_domain_whitelist.is_none());
        assert!(c.federation_allowed("anyone.example"), "no whitelist: everyone");
        let (c, report) = Config::from_yaml_str(
            "server_name: a.b\nfederation_domain_whitelist: [good.example, 'localhost:8448']\n",
        )
        .expect("valid");
        assert!(report.warnings.is_empty(), "{:?}", report.warnings);
        assert!(c.federation_allowed("good.example"));
        assert!(c.federation_allowed("localhost:8448"));
        assert!(!c.federation_allowed("localhost:8449"), "the port is part of the name");
        assert!(!c.federation_allowed("evil.example"));
        assert!(!c.federation_allowed("sub.good.example"), "exact names, no subdomains");
        let (c, _) = Config::from_yaml_str("server_name: a.b\nfederation_domain_whitelist: []\n")
            .expect("valid");
        assert!(!c.federation_allowed("good.example"), "empty list: no federation");
        let err = Config::from_yaml_str(
            "server_name: a.b\nfederation_domain_whitelist: [ok.example, 'bad name', 3]\n",
        )
        .expect_err("invalid");
        assert_eq!(err.errors.len(), 2, "{:?}", err.errors);
        assert!(err.errors[0].starts_with("federation_domain_whitelist[1]:"));
        assert!(err.errors[1].starts_with("federation_domain_whitelist[2]:"));
    }

    #[test]
    fn test_setup_keys_default_to_production_values() {
        let (c, _) = Config::from_yaml_str("server_name: a.b\n").expect("valid");
        let t = &c.test_setup;
        assert!(t.federation_custom_ca_list.is_empty());
        assert!(t.federation_verify_certificates);
        assert!(t.ip_range_whitelist.is_empty());
        assert!(!t.rc_disabled);
        assert!(c.test_setup_warnings().is_empty());
    }

    #[test]
    fn test_setup_keys_parse_and_warn() {
        let yaml = "server_name: localhost:8800\n\
                    federation_custom_ca_list: [/sytest/keys/ca.crt]\n\
                    federation_verify_certificates: false\n\
                    ip_range_whitelist: ['127.0.0.0/8', '::1/128', '10.1.2.3']\n\
                    rc_disabled: true\n";
        let (c, report) = Config::from_yaml_str(yaml).expect("valid");
        assert!(report.warnings.is_empty(), "{:?}", report.warnings);
        let t = &c.test_setup;
        assert_eq!(t.federation_custom_ca_list, vec![PathBuf::from("/sytest/keys/ca.crt")]);
        assert!(!t.federation_verify_certificates);
        assert_eq!(
            t.ip_range_whitelist.iter().map(|r| r.to_string()).collect::<Vec<_>>(),
            ["127.0.0.0/8", "::1/128", "10.1.2.3/32"]
        );
        assert!(t.rc_disabled);
        let warnings = c.test_setup_warnings();
        assert_eq!(warnings.len(), 4, "{warnings:?}");
        for (w, (key, risk)) in warnings.iter().zip([
            ("federation_custom_ca_list", "trusts ONLY the CAs in /sytest/keys/ca.crt"),
            ("federation_verify_certificates", "NOT verified"),
            ("ip_range_whitelist", "remote users can make this server call those addresses"),
            ("rc_disabled", "every rate limit is OFF"),
        ]) {
            assert!(w.starts_with(&format!("TEST SETUP: {key}")), "{w}");
            assert!(w.contains(risk), "{w}");
            assert!(!w.contains("  "), "one line, single spaces: {w}");
        }
    }

    #[test]
    fn bad_test_setup_values_are_named() {
        let yaml = "server_name: a.b\n\
                    federation_custom_ca_list: [ok.pem, 3, '']\n\
                    federation_verify_certificates: nope\n\
                    ip_range_whitelist: ['127.0.0.0/33', 'localhost', '::1/', '1.2.3.4/8x']\n\
                    rc_disabled: 1\n";
        let all = Config::from_yaml_str(yaml).expect_err("invalid").errors.join("\n");
        for key in [
            "federation_custom_ca_list[1]:",
            "federation_custom_ca_list[2]:",
            "federation_verify_certificates:",
            "ip_range_whitelist[0]:",
            "ip_range_whitelist[1]:",
            "ip_range_whitelist[2]:",
            "ip_range_whitelist[3]:",
            "rc_disabled:",
        ] {
            assert!(all.contains(key), "{key} missing from:\n{all}");
        }
        assert!(!all.contains("federation_custom_ca_list[0]"), "{all}");
        let err = Config::from_yaml_str("server_name: a.b\nip_range_whitelist: 127.0.0.1\n")
            .expect_err("not a list");
        assert_eq!(err.errors, ["ip_range_whitelist: must be a list"]);
    }

    #[test]
    fn ip_ranges() {
        let r = |s| IpRange::parse(s).expect(s);
        let ip = |s: &str| s.parse::<IpAddr>().expect("ip");
        assert!(r("127.0.0.0/8").contains(ip("127.1.2.3")));
        assert!(!r("127.0.0.0/8").contains(ip("128.0.0.1")));
        assert!(r("127.0.0.0/8").contains(ip("::ffff:127.0.0.1")), "v4-mapped");
        assert!(r("::1/128").contains(ip("::1")));
        assert!(!r("::1/128").contains(ip("::2")));
        assert!(!r("::1/128").contains(ip("127.0.0.1")));
        assert!(r("10.0.0.0/12").contains(ip("10.15.255.255")));
        assert!(!r("10.0.0.0/12").contains(ip("10.16.0.0")));
        assert!(r("0.0.0.0/0").contains(ip("8.8.8.8")));
        assert!(r("fe80::/10").contains(ip("febf::1")));
        assert!(!r("fe80::/10").contains(ip("fec0::1")));
        assert_eq!(IpRange::parse("1.2.3.4/32").map(|r| r.prefix_len), Some(32));
        for bad in ["1.2.3.4/33", "::/129", "x", "1.2.3.4/", "1.2.3.4/-1", "/8"] {
            assert_eq!(IpRange::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn custom_ca_list_files_are_checked() {
        let dir = tempfile::tempdir().expect("tempdir");
        let good = dir.path().join("ca.pem");
        std::fs::copy(concat!(env!("CARGO_MANIFEST_DIR"), "/../fixtures/tls/ca.crt"), &good)
            .expect("copy fixture CA");
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "not a certificate\n").expect("write");
        let mut t = TestSetup::default();
        assert_eq!(check_custom_ca_list(&t), Ok(0));
        t.federation_custom_ca_list = vec![good.clone()];
        assert_eq!(check_custom_ca_list(&t), Ok(1));
        t.federation_custom_ca_list = vec![good, empty];
        let err = check_custom_ca_list(&t).expect_err("empty file");
        assert!(err.contains("no certificate found"), "{err}");
        t.federation_custom_ca_list = vec![dir.path().join("missing.pem")];
        let err = check_custom_ca_list(&t).expect_err("missing file");
        assert!(err.starts_with("federation_custom_ca_list: "), "{err}");
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("50M"), Some(50 * 1024 * 1024));
        assert_eq!(parse_size("10K"), Some(10240));
        assert_eq!(parse_size("123"), Some(123));
        assert_eq!(parse_size("M"), None);
        assert_eq!(parse_size("99999999999999G"), None);
    }
    #[test]
    fn rate_limits_default_to_synapse_values() {
        use crate::ratelimit::Limit;
        let (c, _) = Config::from_yaml_str("server_name: a.b\n").expect("valid");
        let rc = &c.rate_limits;
        assert_eq!(rc.message, Limit::new(0.2, 10.0));
        assert_eq!(rc.registration, Limit::new(0.17, 3.0));
        assert_eq!(rc.login_address, Limit::new(0.17, 3.0));
        assert_eq!(rc.login_account, Limit::new(0.17, 3.0));
        assert_eq!(rc.login_failed_attempts, Limit::new(0.17, 3.0));
        assert_eq!(rc.joins_local, Limit::new(0.1, 10.0));
        assert_eq!(rc.joins_remote, Limit::new(0.01, 10.0));
        assert_eq!(rc.invites_per_room, Limit::new(0.3, 10.0));
        assert_eq!(rc.invites_per_user, Limit::new(0.003, 5.0));
        assert_eq!(rc.invites_per_issuer, Limit::new(0.5, 5.0));
        assert_eq!(rc.room_creation, Limit::new(0.05, 10.0));
        assert_eq!(rc.media_create, Limit::new(10.0, 50.0));
    }

    #[test]
    fn rate_limits_parse_and_bad_values_are_named() {
        use crate::ratelimit::Limit;
        let yaml = "server_name: a.b\n\
                    rc_message: {per_second: 5, burst_count: 2}\n\
                    rc_login:\n  failed_attempts: {per_second: 0.5}\n\
                    rc_joins: {remote: {burst_count: 4}}\n\
                    rc_media_create: {per_second: 1.5, burst_count: 7.0}\n";
        let (c, report) = Config::from_yaml_str(yaml).expect("valid");
        assert!(report.warnings.is_empty(), "{:?}", report.warnings);
        let rc = &c.rate_limits;
        assert_eq!(rc.message, Limit::new(5.0, 2.0));
        assert_eq!(rc.login_failed_attempts, Limit::new(0.5, 3.0));
        assert_eq!(rc.login_address, Limit::new(0.17, 3.0));
        assert_eq!(rc.joins_remote, Limit::new(0.01, 4.0));
        assert_eq!(rc.media_create, Limit::new(1.5, 7.0));

        let yaml = "server_name: a.b\n\
                    rc_message: {per_second: -1, burst_count: x}\n\
                    rc_registration: 3\n\
                    rc_login: {address: {per_second: fast}, account: {burst_count: 1.5}}\n\
                    rc_invites: {per_user: {per_second: .inf}, per_issuer: {burst_count: -2}}\n\
                    rc_room_creation: {per_second: '1'}\n";
        let all = Config::from_yaml_str(yaml).expect_err("invalid").errors.join("\n");
        for key in [
            "rc_message.per_second:",
            "rc_message.burst_count:",
            "rc_registration: must be a mapping",
            "rc_login.address.per_second:",
            "rc_login.account.burst_count:",
            "rc_invites.per_user.per_second:",
            "rc_invites.per_issuer.burst_count:",
            "rc_room_creation.per_second:",
        ] {
            assert!(all.contains(key), "{key} missing from:\n{all}");
        }
        let (_, report) = Config::from_yaml_str(
            "server_name: a.b\nrc_joins: {local: {per_second: 1, x: 2}, y: {}}\n",
        )
        .expect("unknown keys warn");
        assert_eq!(
            report.warnings,
            ["rc_joins.local.x: unknown key, ignored", "rc_joins.y: unknown key, ignored"]
        );
    }
}
