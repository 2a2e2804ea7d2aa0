//! `glia generate`: a commented `homeserver.yaml` with Synapse's key names, a signing key
//! and a registration shared secret, like `python -m synapse.app.homeserver --generate-config`.

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use ruma::ServerName;

use crate::keys;

pub struct Generated {
    pub config_path: PathBuf,
    pub signing_key_path: PathBuf,
}

/// What `generate` writes: the names, paths and the plain-HTTP listener.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    pub server_name: String,
    pub data_dir: PathBuf,
    pub config_path: Option<PathBuf>,
    pub http_port: u16,
    pub bind_addresses: Vec<IpAddr>,
}

impl Options {
    /// Loopback on port 8008: ready for a reverse proxy on the same machine.
    pub fn new(server_name: &str, data_dir: &Path) -> Options {
        Options {
            server_name: server_name.to_string(),
            data_dir: data_dir.to_path_buf(),
            config_path: None,
            http_port: 8008,
            bind_addresses: vec![
                IpAddr::from([0u16, 0, 0, 0, 0, 0, 0, 1]),
                IpAddr::from([127, 0, 0, 1]),
            ],
        }
    }
}

pub fn generate(
    server_name: &str,
    data_dir: &Path,
    config_path: Option<&Path>,
) -> Result<Generated, String> {
    let mut opts = Options::new(server_name, data_dir);
    opts.config_path = config_path.map(Path::to_path_buf);
    generate_with(&opts)
}

pub fn generate_with(opts: &Options) -> Result<Generated, String> {
    let (server_name, data_dir, config_path) =
        (opts.server_name.as_str(), opts.data_dir.as_path(), opts.config_path.as_deref());
    let name = ServerName::parse(server_name)
        .map_err(|e| format!("--server-name {server_name:?} is not a valid server name: {e}"))?;
    std::fs::create_dir_all(data_dir)
        .map_err(|e| format!("cannot create {}: {e}", data_dir.display()))?;
    let data_dir = data_dir.canonicalize().map_err(|e| format!("{}: {e}", data_dir.display()))?;
    let config_path =
        config_path.map(Path::to_path_buf).unwrap_or_else(|| data_dir.join("homeserver.yaml"));
    if config_path.exists() {
        return Err(format!("{} already exists; not overwriting it", config_path.display()));
    }
    let signing_key_path = data_dir.join(format!("{name}.signing.key"));
    if !signing_key_path.exists() {
        let (line, _) = keys::generate().map_err(|e| e.to_string())?;
        keys::write_private_file(&signing_key_path, &line).map_err(|e| e.to_string())?;
    }
    let secret = crate::users::random_string(48);
    let text = template(name.as_str(), &data_dir, &signing_key_path, &secret)
        .replace("  - port: 8008\n", &format!("  - port: {}\n", opts.http_port))
        .replace("    bind_addresses: ['::1', '127.0.0.1']\n", &bind_line(&opts.bind_addresses));
    keys::write_private_file(&config_path, &text).map_err(|e| e.to_string())?;
    Ok(Generated { config_path, signing_key_path })
}

fn bind_line(addrs: &[IpAddr]) -> String {
    let quoted: Vec<String> = addrs.iter().map(|a| format!("'{a}'")).collect();
    format!("    bind_addresses: [{}]\n", quoted.join(", "))
}

fn template(server_name: &str, data_dir: &Path, key: &Path, secret: &str) -> String {
    let d = data_dir.display();
    let k = key.display();
    format!(
        r#"# Glia configuration. Key names follow Synapse's homeserver.yaml, so Synapse
# documentation and hardening snippets apply. Check it with: glia check-config -c <this file>

# The domain in your users' IDs (@alice:{server_name}). It cannot be changed later.
server_name: "{server_name}"

# The URL clients use to reach this server (served in /.well-known/matrix/client).
# public_baseurl: "https://{server_name}/"

listeners:
  # Plain HTTP for a reverse proxy (Traefik, nginx) on the same machine or network.
  - port: 8008
    bind_addresses: ['::1', '127.0.0.1']
    type: http
    tls: false
    # Trust X-Forwarded-For from the proxy, so logs and rate limits see real clients.
    x_forwarded: true
    resources:
      - names: [client, federation]

  # Direct TLS for federation on port 8448, if no proxy terminates TLS:
  # - port: 8448
  #   type: http
  #   tls: true
  #   resources:
  #     - names: [federation]

# PEM files for listeners with `tls: true`.
# tls_certificate_path: "{d}/{server_name}.tls.crt"
# tls_private_key_path: "{d}/{server_name}.tls.key"

database:
  name: sqlite3
  args:
    database: "{d}/homeserver.db"
    # full (default) survives power loss; normal survives crashes only, and is faster.
    # synchronous: full

media_store_path: "{d}/media_store"
signing_key_path: "{k}"

# Lets `glia register-user -c <this file>` create accounts. Keep it secret.
registration_shared_secret: "{secret}"

# Hardening defaults: registration closed, no guests.
enable_registration: false
allow_guest_access: false

# Open registration without captcha or tokens attracts spam bots; Glia refuses to start
# with enable_registration: true unless this is set too.
# enable_registration_without_verification: false

# Registration with tokens made by the admin API (/_synapse/admin/v1/registration_tokens).
# registration_requires_token: false

# Registration behind a captcha (Google reCAPTCHA or a compatible verifier).
# enable_registration_captcha: false
# recaptcha_public_key: ""
# recaptcha_private_key: ""

# Federate only with these servers ([] = no federation; absent = everyone).
# federation_domain_whitelist: []

# password_config:
#   policy:
#     enabled: true
#     minimum_length: 12
#     require_digit: true
#     require_symbol: true
#     require_lowercase: true
#     require_uppercase: true

# Serve /.well-known/matrix/server pointing federation at port 443 of server_name.
# serve_server_wellknown: false

report_stats: false
"#
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_config_is_valid_and_not_overwritten() {
        let dir = tempfile::tempdir().expect("tempdir");
        let g = generate("example.org", dir.path(), None).expect("generate");
        let (c, report) = crate::config::Config::from_file(&g.config_path).expect("valid config");
        assert!(report.warnings.is_empty(), "{:?}", report.warnings);
        assert_eq!(c.server_name.as_str(), "example.org");
        assert!(c.registration_shared_secret.is_some());
        crate::keys::SigningKey::load(&c.signing_key_path).expect("key loads");
        assert!(generate("example.org", dir.path(), None).is_err(), "refuses to overwrite");
    }

    #[test]
    fn port_and_bind_addresses_are_written() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut opts = Options::new("example.org", dir.path());
        opts.http_port = 18008;
        opts.bind_addresses = vec!["0.0.0.0".parse().expect("ip")];
        let g = generate_with(&opts).expect("generate");
        let (c, _) = crate::config::Config::from_file(&g.config_path).expect("valid config");
        assert_eq!(c.listeners[0].port, 18008);
        assert_eq!(c.listeners[0].bind_addresses, opts.bind_addresses);
    }
}
