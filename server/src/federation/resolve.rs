//! Server discovery (spec: server-server API, "Resolving server names"): IP literals,
//! explicit ports, `/.well-known/matrix/server` delegation, SRV records
//! (`_matrix-fed._tcp`, then the deprecated `_matrix._tcp`), and port 8448.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde_json::Value;

/// Where to send requests for a server name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// The host to connect to (a DNS name or an IP literal).
    pub host: String,
    pub port: u16,
    /// The name the TLS certificate must be valid for (SNI).
    pub tls_name: String,
    /// The `Host` header.
    pub host_header: String,
}

pub const DEFAULT_PORT: u16 = 8448;
/// Well-known results are cached a day; failures an hour (Synapse's defaults).
const WELL_KNOWN_TTL: Duration = Duration::from_secs(24 * 3600);
const WELL_KNOWN_FAILURE_TTL: Duration = Duration::from_secs(3600);

/// Split `host[:port]`, handling `[v6]:port`.
pub fn split_host_port(s: &str) -> (String, Option<u16>) {
    if let Some(rest) = s.strip_prefix('[')
        && let Some((ip, tail)) = rest.split_once(']')
    {
        let port = tail.strip_prefix(':').and_then(|p| p.parse().ok());
        return (ip.to_string(), port);
    }
    match s.rsplit_once(':') {
        Some((h, p)) if !h.contains(':') => match p.parse() {
            Ok(port) => (h.to_string(), Some(port)),
            Err(_) => (s.to_string(), None),
        },
        _ => (s.to_string(), None),
    }
}

/// The delegated server from a well-known body, if valid.
pub fn parse_well_known(body: &Value) -> Option<String> {
    let s = body.get("m.server")?.as_str()?.trim();
    if s.is_empty() || s.contains('/') || s.chars().any(char::is_whitespace) {
        return None;
    }
    Some(s.to_string())
}

/// Resolution that needs no network: IP literals and explicit ports. `None` means the
/// well-known and SRV steps are needed.
pub fn resolve_static(server_name: &str) -> Option<Target> {
    let (host, port) = split_host_port(server_name);
    if host.parse::<IpAddr>().is_ok() {
        return Some(Target {
            host: host.clone(),
            port: port.unwrap_or(DEFAULT_PORT),
            tls_name: host,
            host_header: server_name.to_string(),
        });
    }
    port.map(|p| Target {
        host: host.clone(),
        port: p,
        tls_name: host,
        host_header: server_name.to_string(),
    })
}

#[derive(Default)]
pub struct Cache {
    well_known: Mutex<HashMap<String, (Option<String>, Instant)>>,
}

impl Cache {
    pub fn get(&self, server: &str) -> Option<Option<String>> {
        let map = self.well_known.lock().unwrap_or_else(|p| p.into_inner());
        map.get(server).filter(|(_, exp)| *exp > Instant::now()).map(|(v, _)| v.clone())
    }

    pub fn put(&self, server: &str, delegated: Option<String>) {
        let ttl = if delegated.is_some() { WELL_KNOWN_TTL } else { WELL_KNOWN_FAILURE_TTL };
        let mut map = self.well_known.lock().unwrap_or_else(|p| p.into_inner());
        map.insert(server.to_string(), (delegated, Instant::now() + ttl));
    }
}

/// The SRV target for `name`, trying `_matrix-fed._tcp` then `_matrix._tcp`.
pub async fn srv(
    resolver: Option<&hickory_resolver::TokioResolver>,
    name: &str,
) -> Option<(String, u16)> {
    let resolver = resolver?;
    for prefix in ["_matrix-fed._tcp", "_matrix._tcp"] {
        let Ok(lookup) = resolver.srv_lookup(format!("{prefix}.{name}.")).await else { continue };
        let mut best: Option<(u16, u16, String, u16)> = None;
        for record in lookup.answers() {
            if let hickory_resolver::proto::rr::RData::SRV(s) = &record.data {
                let target = s.target.to_utf8().trim_end_matches('.').to_string();
                // Lowest priority wins; among equals, the highest weight (no randomness
                // needed for correctness).
                let better = match &best {
                    None => true,
                    Some((p, w, _, _)) => s.priority < *p || (s.priority == *p && s.weight > *w),
                };
                if better && !target.is_empty() {
                    best = Some((s.priority, s.weight, target, s.port));
                }
            }
        }
        if let Some((_, _, host, port)) = best {
            return Some((host, port));
        }
    }
    None
}

/// Resolve `name` (no explicit port, not an IP) after the well-known step produced
/// `delegated` (or nothing).
pub async fn resolve_dynamic(
    resolver: Option<&hickory_resolver::TokioResolver>,
    server_name: &str,
    delegated: Option<String>,
) -> Target {
    if let Some(d) = delegated {
        if let Some(mut t) = resolve_static(&d) {
            t.host_header = d;
            return t;
        }
        if let Some((host, port)) = srv(resolver, &d).await {
            return Target { host, port, tls_name: d.clone(), host_header: d };
        }
        return Target { host: d.clone(), port: DEFAULT_PORT, tls_name: d.clone(), host_header: d };
    }
    if let Some((host, port)) = srv(resolver, server_name).await {
        return Target {
            host,
            port,
            tls_name: server_name.into(),
            host_header: server_name.into(),
        };
    }
    Target {
        host: server_name.into(),
        port: DEFAULT_PORT,
        tls_name: server_name.into(),
        host_header: server_name.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn host_and_port() {
        assert_eq!(split_host_port("example.org"), ("example.org".into(), None));
        assert_eq!(split_host_port("example.org:8008"), ("example.org".into(), Some(8008)));
        assert_eq!(split_host_port("[::1]:8448"), ("::1".into(), Some(8448)));
        assert_eq!(split_host_port("[::1]"), ("::1".into(), None));
        assert_eq!(split_host_port("::1"), ("::1".into(), None));
    }

    #[test]
    fn static_resolution() {
        let t = resolve_static("127.0.0.1").expect("ip");
        assert_eq!(
            (t.host.as_str(), t.port, t.host_header.as_str()),
            ("127.0.0.1", 8448, "127.0.0.1")
        );
        let t = resolve_static("localhost:8800").expect("port");
        assert_eq!(
            (t.host.as_str(), t.port, t.tls_name.as_str()),
            ("localhost", 8800, "localhost")
        );
        assert_eq!(t.host_header, "localhost:8800");
        assert!(resolve_static("example.org").is_none(), "needs well-known and SRV");
    }

    #[test]
    fn well_known_bodies() {
        assert_eq!(
            parse_well_known(&json!({"m.server": "matrix.example.org:443"})),
            Some("matrix.example.org:443".into())
        );
        assert_eq!(parse_well_known(&json!({"m.server": ""})), None);
        assert_eq!(parse_well_known(&json!({"m.server": "https://x/"})), None);
        assert_eq!(parse_well_known(&json!({"other": 1})), None);
    }

    #[test]
    fn cache_expires_failures_sooner() {
        let c = Cache::default();
        c.put("a", Some("b".into()));
        c.put("x", None);
        assert_eq!(c.get("a"), Some(Some("b".into())));
        assert_eq!(c.get("x"), Some(None));
        assert_eq!(c.get("unknown"), None);
    }
}
