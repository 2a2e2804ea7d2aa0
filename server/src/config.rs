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
    pub serve_server_wellknown: bool,
    pub media_store_path: PathBuf,
    pub max_upload_size: u64,
    pub max_json_body: usize,
    pub password_login_enabled: bool,
    pub password_minimum_length: usize,
    pub admin_contact: Option<String>,
}

#[derive(Debug, Clone)]
pub struct Listener {
    pub port: u16,
    pub bind_addresses: Vec<IpAddr>,
    pub tls: bool,
    /// Trust `X-Forwarded-For` from whatever connects to this listener (a reverse proxy).
    pub x_forwarded: bool,
    pub resources: Vec<String>,
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
    "trusted_key_servers",
    "suppress_key_server_warning",
    "media_store_path",
    "presence",
    "web_client_location",
    "room_list_publication_rules",
    "rc_message",
    "rc_registration",
    "rc_login",
    "rc_joins",
    "rc_invites",
    "rc_room_creation",
    "rc_media_create",
    "recaptcha_public_key",
    "recaptcha_private_key",
    "recaptcha_siteverify_api",
    "federation_domain_whitelist",
    "app_service_config_files",
    "url_preview_enabled",
    "enable_metrics",
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
            serve_server_wellknown: false,
            media_store_path: data_dir.join("media_store"),
            max_upload_size: 50 * 1024 * 1024,
            max_json_body: DEFAULT_MAX_JSON_BODY,
            password_login_enabled: true,
            password_minimum_length: 0,
            admin_contact: None,
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
        bool_key(&mut r, "serve_server_wellknown", &mut c.serve_server_wellknown);
        if let Some(v) = r.path("media_store_path") {
            c.media_store_path = v;
        }
        if let Some(v) = r.size("max_upload_size") {
            c.max_upload_size = v;
        }
        c.admin_contact = r.string("admin_contact");

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
                if let Some(n) = policy.uint("minimum_length")
                    && enabled
                {
                    c.password_minimum_length = n as usize;
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
        if c.enable_registration_captcha {
            report
                .warnings
                .push("enable_registration_captcha: captcha is not implemented yet".into());
        }
        if report.errors.is_empty() && server_name.is_some() {
            Ok((c, report))
        } else {
            Err(report)
        }
    }

    /// The base URL clients should use, for `.well-known/matrix/client`.
    pub fn client_base_url(&self) -> String {
        match &self.public_baseurl {
            Some(u) => u.clone(),
            None => format!("https://{}/", self.server_name),
        }
    }
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
        Some("metrics") | Some("manhole") | Some("replication") => {
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
    Some(Listener { port: port?, bind_addresses, tls, x_forwarded, resources })
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
    use super::*;

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
    fn sizes() {
        assert_eq!(parse_size("50M"), Some(50 * 1024 * 1024));
        assert_eq!(parse_size("10K"), Some(10240));
        assert_eq!(parse_size("123"), Some(123));
        assert_eq!(parse_size("M"), None);
        assert_eq!(parse_size("99999999999999G"), None);
    }
}
