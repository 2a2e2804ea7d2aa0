//! URL previews: the fetcher ([`Previewer`]: http/https only, at most
//! [`MAX_REDIRECTS`] redirects each re-checked, `max_spider_size` bytes, timeouts, an
//! hour-long in-memory cache), the Open Graph parser ([`parse_html`]), the
//! `url_preview_url_blacklist` rules ([`UrlRule`]) and the guard against server-side
//! request forgery (SSRF).
//!
//! A preview makes the homeserver fetch a URL a user chose, so without care a user could
//! make it reach its own loopback services, the LAN behind it or a cloud metadata service.
//! Before any connection, every address the host resolves to is checked here: loopback,
//! private, link-local, carrier-grade NAT, multicast, documentation and other reserved
//! ranges are refused (Synapse's recommended `url_preview_ip_range_blacklist`), IPv4
//! addresses carried inside IPv6 (mapped, compatible, NAT64, 6to4) are checked as the IPv4
//! address they reach, and `0.0.0.0` / `::` are always refused. An allow-list
//! (`url_preview_ip_range_whitelist`) overrides the block-list. The fetcher must connect
//! only to the addresses that passed (not resolve again), so DNS rebinding cannot swap
//! them between the check and the connection.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use http::{Request, StatusCode, header};
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::TokioIo;
use rustls_pki_types::ServerName;
use serde_json::{Map, Value};
use tokio::net::TcpStream;

use crate::config::IpRange;

/// Synapse's documented `url_preview_ip_range_blacklist`, Glia's default block-list.
pub const DEFAULT_BLOCKLIST: &[&str] = &[
    "127.0.0.0/8",
    "10.0.0.0/8",
    "172.16.0.0/12",
    "192.168.0.0/16",
    "100.64.0.0/10",
    "192.0.0.0/24",
    "169.254.0.0/16",
    "192.88.99.0/24",
    "198.18.0.0/15",
    "192.0.2.0/24",
    "198.51.100.0/24",
    "203.0.113.0/24",
    "224.0.0.0/4",
    "240.0.0.0/4",
    "::1/128",
    "fe80::/10",
    "fc00::/7",
    "2001:db8::/32",
    "ff00::/8",
    "fec0::/10",
];

/// Unroutable addresses refused whatever the lists say.
const ALWAYS_BLOCKED: &[IpAddr] =
    &[IpAddr::V4(Ipv4Addr::UNSPECIFIED), IpAddr::V6(Ipv6Addr::UNSPECIFIED)];

/// What previews may reach.
#[derive(Debug, Clone)]
pub struct PreviewPolicy {
    pub blocklist: Vec<IpRange>,
    pub allowlist: Vec<IpRange>,
}

impl Default for PreviewPolicy {
    fn default() -> Self {
        PreviewPolicy {
            blocklist: DEFAULT_BLOCKLIST.iter().filter_map(|r| IpRange::parse(r)).collect(),
            allowlist: Vec::new(),
        }
    }
}

/// The IPv4 address an IPv6 address delivers to, where it embeds one: IPv4-mapped
/// (`::ffff:a.b.c.d`), IPv4-compatible (`::a.b.c.d`, deprecated), NAT64 (`64:ff9b::/96`)
/// and 6to4 (`2002:AABB:CCDD::/48`).
fn embedded_ipv4(ip: Ipv6Addr) -> Option<Ipv4Addr> {
    let s = ip.segments();
    let tail = Ipv4Addr::new((s[6] >> 8) as u8, s[6] as u8, (s[7] >> 8) as u8, s[7] as u8);
    if let Some(v4) = ip.to_ipv4_mapped() {
        return Some(v4);
    }
    if s[..6] == [0, 0, 0, 0, 0, 0] && !(s[6] == 0 && s[7] <= 1) {
        return Some(tail);
    }
    if s[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        return Some(tail);
    }
    if s[0] == 0x2002 {
        return Some(Ipv4Addr::new((s[1] >> 8) as u8, s[1] as u8, (s[2] >> 8) as u8, s[2] as u8));
    }
    None
}

impl PreviewPolicy {
    /// May a preview connect to `ip`?
    pub fn allows(&self, ip: IpAddr) -> bool {
        let mut candidates = vec![ip];
        if let IpAddr::V6(v6) = ip
            && let Some(v4) = embedded_ipv4(v6)
        {
            candidates.push(IpAddr::V4(v4));
        }
        candidates.iter().all(|&a| {
            if ALWAYS_BLOCKED.contains(&a) {
                return false;
            }
            self.allowlist.iter().any(|r| r.contains(a))
                || !self.blocklist.iter().any(|r| r.contains(a))
        })
    }

    /// Check every address a host resolved to: one refused address refuses them all
    /// (an attacker controls which of several records a client would pick).
    pub fn check_all(&self, addrs: &[IpAddr]) -> Result<(), IpAddr> {
        if let Some(bad) = addrs.iter().find(|a| !self.allows(**a)) {
            return Err(*bad);
        }
        Ok(())
    }
}

/// Only `http` and `https` URLs with a host are previewed.
pub fn check_url(url: &str) -> Result<(), &'static str> {
    let lower = url.to_ascii_lowercase();
    let rest = lower
        .strip_prefix("https://")
        .or_else(|| lower.strip_prefix("http://"))
        .ok_or("only http and https URLs can be previewed")?;
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let host = authority.rsplit('@').next().unwrap_or("");
    if host.is_empty() || host.starts_with(':') {
        return Err("the URL has no host");
    }
    Ok(())
}

/// The host and port an `http(s)` URL connects to (brackets removed from IPv6 hosts).
pub fn host_port(url: &str) -> Result<(String, u16), &'static str> {
    check_url(url)?;
    let (scheme, rest) = url.split_once("://").ok_or("not a URL")?;
    let default_port = if scheme.eq_ignore_ascii_case("https") { 443 } else { 80 };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let hostport = authority.rsplit('@').next().unwrap_or("");
    let (host, port) = if let Some(v6) = hostport.strip_prefix('[') {
        let (host, after) = v6.split_once(']').ok_or("unterminated IPv6 address")?;
        (host, after.strip_prefix(':'))
    } else {
        match hostport.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (hostport, None),
        }
    };
    let port = match port {
        None | Some("") => default_port,
        Some(p) => p.parse::<u16>().map_err(|_| "invalid port")?,
    };
    if host.is_empty() {
        return Err("the URL has no host");
    }
    Ok((host.to_ascii_lowercase(), port))
}

/// The URL components `url_preview_url_blacklist` rules may name (Synapse's `urlsplit`
/// attributes).
const URL_COMPONENTS: &[&str] =
    &["scheme", "netloc", "hostname", "port", "path", "query", "fragment", "username", "password"];

/// One `url_preview_url_blacklist` entry: a URL is refused when every component it names
/// matches its glob (`*` any run, `?` one character). Synapse's `^regex` patterns are not
/// supported and are refused at config time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UrlRule {
    pub patterns: Vec<(String, String)>,
}

impl UrlRule {
    pub fn new(patterns: Vec<(String, String)>) -> Result<UrlRule, String> {
        if patterns.is_empty() {
            return Err("an empty rule would block every URL".into());
        }
        for (k, p) in &patterns {
            if !URL_COMPONENTS.contains(&k.as_str()) {
                return Err(format!(
                    "{k:?} is not a URL component ({})",
                    URL_COMPONENTS.join(", ")
                ));
            }
            if p.starts_with('^') {
                return Err(format!(
                    "{k}: regular expressions ({p:?}) are not supported; use a glob"
                ));
            }
        }
        Ok(UrlRule { patterns })
    }

    pub fn matches(&self, url: &str) -> bool {
        let parts = split_url(url);
        self.patterns.iter().all(|(k, p)| glob(p, parts.get(k.as_str()).map_or("", |v| v.as_str())))
    }
}

/// `*` matches any run of characters, `?` one; everything else itself.
fn glob(pattern: &str, text: &str) -> bool {
    let (p, t): (Vec<char>, Vec<char>) = (pattern.chars().collect(), text.chars().collect());
    let (mut pi, mut ti, mut star, mut mark) = (0, 0, None, 0);
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = ti;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ti = mark;
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

/// A URL's components, as Python's `urlsplit` names them.
fn split_url(url: &str) -> HashMap<&'static str, String> {
    let mut m = HashMap::new();
    let (scheme, rest) = url.split_once("://").unwrap_or(("", url));
    m.insert("scheme", scheme.to_ascii_lowercase());
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (netloc, rest) = rest.split_at(end);
    m.insert("netloc", netloc.to_string());
    let (rest, fragment) = rest.split_once('#').unwrap_or((rest, ""));
    let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
    m.insert("path", path.to_string());
    m.insert("query", query.to_string());
    m.insert("fragment", fragment.to_string());
    let (userinfo, hostport) = netloc.rsplit_once('@').unwrap_or(("", netloc));
    let (user, pass) = userinfo.split_once(':').unwrap_or((userinfo, ""));
    m.insert("username", user.to_string());
    m.insert("password", pass.to_string());
    if let Ok((host, _)) = host_port(url) {
        m.insert("hostname", host);
    }
    let port = if hostport.ends_with(']') { None } else { hostport.rsplit_once(':') };
    m.insert("port", port.map(|(_, p)| p.to_string()).unwrap_or_default());
    m
}

/// Resolve a `Location` against the URL it came from.
pub fn join_url(base: &str, location: &str) -> String {
    let location = location.trim();
    if location.contains("://") {
        return location.to_string();
    }
    let (scheme, rest) = base.split_once("://").unwrap_or(("http", base));
    if let Some(net) = location.strip_prefix("//") {
        return format!("{scheme}://{net}");
    }
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, path) = rest.split_at(end);
    if location.starts_with('/') {
        return format!("{scheme}://{authority}{location}");
    }
    let path = path.split(['?', '#']).next().unwrap_or("");
    if location.starts_with('?') || location.starts_with('#') || location.is_empty() {
        return format!("{scheme}://{authority}{path}{location}");
    }
    let dir = match path.rfind('/') {
        Some(i) => &path[..=i],
        None => "/",
    };
    format!("{scheme}://{authority}{dir}{location}")
}

// --- HTML ------------------------------------------------------------------------------

fn decode_entities(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find('&') {
        out.push_str(&rest[..i]);
        rest = &rest[i..];
        // Entities are short: look for the `;` in the next few bytes only (bytes, not a
        // string slice, which could split a character).
        let end = rest.bytes().take(12).position(|b| b == b';');
        let decoded = end.and_then(|e| {
            let name = &rest[1..e];
            let c = match name {
                "amp" => Some('&'),
                "lt" => Some('<'),
                "gt" => Some('>'),
                "quot" => Some('"'),
                "apos" => Some('\''),
                "nbsp" => Some('\u{a0}'),
                _ => name.strip_prefix('#').and_then(|n| {
                    let code = match n.strip_prefix(['x', 'X']) {
                        Some(h) => u32::from_str_radix(h, 16).ok(),
                        None => n.parse().ok(),
                    };
                    code.and_then(char::from_u32)
                }),
            };
            c.map(|c| (c, e))
        });
        match decoded {
            Some((c, e)) => {
                out.push(c);
                rest = &rest[e + 1..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

fn collapse_ws(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The attributes of a start tag (`body` is what follows the tag name, up to `>`).
fn attributes(body: &str) -> Vec<(String, String)> {
    let b = body.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        while i < b.len() && (b[i].is_ascii_whitespace() || b[i] == b'/') {
            i += 1;
        }
        let start = i;
        while i < b.len() && !b[i].is_ascii_whitespace() && b[i] != b'=' && b[i] != b'/' {
            i += 1;
        }
        if start == i {
            i += 1;
            continue;
        }
        let name = body[start..i].to_ascii_lowercase();
        while i < b.len() && b[i].is_ascii_whitespace() {
            i += 1;
        }
        if i < b.len() && b[i] == b'=' {
            i += 1;
            while i < b.len() && b[i].is_ascii_whitespace() {
                i += 1;
            }
            let value = if i < b.len() && (b[i] == b'"' || b[i] == b'\'') {
                let q = b[i];
                let s = i + 1;
                let e = b[s..].iter().position(|&c| c == q).map_or(b.len(), |p| s + p);
                i = e + 1;
                &body[s..e]
            } else {
                let s = i;
                while i < b.len() && !b[i].is_ascii_whitespace() {
                    i += 1;
                }
                &body[s..i]
            };
            out.push((name, decode_entities(value)));
        } else {
            out.push((name, String::new()));
        }
    }
    out
}

/// The Open Graph data of an HTML page: `og:*` from `<meta property|name="og:…">`, with
/// `<title>` and `<meta name="description">` as fallbacks for `og:title` and
/// `og:description`; relative `og:image` URLs are made absolute against `page_url`.
pub fn parse_html(html: &str, page_url: &str) -> Map<String, Value> {
    let lower = html.to_ascii_lowercase();
    let mut og = Map::new();
    let mut title = None;
    let mut description = None;
    let mut pos = 0;
    while let Some(off) = lower[pos..].find('<') {
        let at = pos + off;
        let after = &lower[at + 1..];
        if after.starts_with("!--") {
            pos = lower[at..].find("-->").map_or(lower.len(), |e| at + e + 3);
            continue;
        }
        let name_len = after.find(|c: char| !c.is_ascii_alphanumeric()).unwrap_or(after.len());
        let name = &after[..name_len];
        // No `>` left: no complete tag either (and no rescanning for every later `<`).
        let Some(tag_end) = lower[at..].find('>').map(|e| at + e) else { break };
        match name {
            "meta" => {
                let attrs = attributes(&html[at + 1 + name_len..tag_end]);
                let get = |k: &str| attrs.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
                let key = get("property").or_else(|| get("name")).unwrap_or_default();
                if let Some(content) = get("content") {
                    if key.starts_with("og:") {
                        og.entry(key).or_insert(Value::String(content));
                    } else if key.eq_ignore_ascii_case("description") && description.is_none() {
                        description = Some(content);
                    }
                }
            }
            "title" if title.is_none() => {
                let s = (tag_end + 1).min(lower.len());
                let e = lower[s..].find("</title").map_or(lower.len(), |e| s + e);
                title = Some(collapse_ws(&decode_entities(&html[s..e])));
            }
            "script" | "style" => {
                let close = format!("</{name}");
                pos = lower[tag_end.min(lower.len())..]
                    .find(&close)
                    .map_or(lower.len(), |e| tag_end + e + close.len());
                continue;
            }
            _ => {}
        }
        pos = (tag_end + 1).min(lower.len());
        if pos <= at {
            break;
        }
    }
    if !og.contains_key("og:title")
        && let Some(t) = title.filter(|t| !t.is_empty())
    {
        og.insert("og:title".into(), Value::String(t));
    }
    if !og.contains_key("og:description")
        && let Some(d) = description.map(|d| collapse_ws(&d)).filter(|d| !d.is_empty())
    {
        og.insert("og:description".into(), Value::String(d));
    }
    if let Some(Value::String(img)) = og.get("og:image").cloned() {
        og.insert("og:image".into(), Value::String(join_url(page_url, &img)));
    }
    og
}

// --- fetching --------------------------------------------------------------------------

/// Redirects followed, each re-checked.
pub const MAX_REDIRECTS: usize = 5;
/// Connecting (per address) and the whole fetch.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
const FETCH_TIMEOUT: Duration = Duration::from_secs(30);
/// Cached previews: one hour, at most this many.
const CACHE_TTL: Duration = Duration::from_secs(3600);
const CACHE_MAX: usize = 1000;
const TS_BUCKET_MS: i64 = 3600 * 1000;

#[derive(Debug, PartialEq, Eq)]
pub enum PreviewError {
    /// Not an http(s) URL, or unparseable (400).
    BadUrl(String),
    /// The host resolves to a refused address (403).
    IpBlocked,
    /// `url_preview_url_blacklist` (403).
    UrlBlocked,
    /// DNS, connection, TLS, timeouts, non-2xx answers, too many redirects (502).
    Upstream(String),
    /// More than `max_spider_size` bytes (502 `M_TOO_LARGE`).
    TooLarge(u64),
}

/// Fetches and parses previews, with the SSRF policy and an in-memory cache.
pub struct Previewer {
    pub policy: PreviewPolicy,
    pub url_blacklist: Vec<UrlRule>,
    pub max_size: u64,
    cache: Mutex<HashMap<(String, i64), (Instant, Value)>>,
    tls: OnceLock<Arc<rustls::ClientConfig>>,
}

impl Previewer {
    pub fn new(policy: PreviewPolicy, url_blacklist: Vec<UrlRule>, max_size: u64) -> Previewer {
        Previewer {
            policy,
            url_blacklist,
            max_size,
            cache: Mutex::new(HashMap::new()),
            tls: OnceLock::new(),
        }
    }

    /// The TLS client configuration (system roots), made on first use.
    fn tls(&self) -> Arc<rustls::ClientConfig> {
        self.tls
            .get_or_init(|| {
                let mut roots = rustls::RootCertStore::empty();
                for cert in rustls_native_certs::load_native_certs().certs {
                    let _ = roots.add(cert);
                }
                let provider = Arc::new(rustls::crypto::ring::default_provider());
                let cfg = rustls::ClientConfig::builder_with_provider(provider)
                    .with_safe_default_protocol_versions()
                    .expect("ring supports the default TLS versions")
                    .with_root_certificates(roots)
                    .with_no_client_auth();
                Arc::new(cfg)
            })
            .clone()
    }

    /// The preview of `url` as of `ts` (ms; cached per hour-long bucket of it).
    pub async fn preview(&self, url: &str, ts: i64) -> Result<Value, PreviewError> {
        let key = (url.to_string(), ts.div_euclid(TS_BUCKET_MS));
        if let Some((at, v)) = self.cache.lock().expect("cache").get(&key)
            && at.elapsed() < CACHE_TTL
        {
            return Ok(v.clone());
        }
        let v = tokio::time::timeout(FETCH_TIMEOUT, self.fetch(url))
            .await
            .map_err(|_| PreviewError::Upstream("timed out fetching the URL".into()))??;
        let mut cache = self.cache.lock().expect("cache");
        if cache.len() >= CACHE_MAX {
            cache.retain(|_, (at, _)| at.elapsed() < CACHE_TTL);
            while cache.len() >= CACHE_MAX {
                let oldest = cache.iter().min_by_key(|(_, (at, _))| *at).map(|(k, _)| k.clone());
                match oldest {
                    Some(k) => cache.remove(&k),
                    None => break,
                };
            }
        }
        cache.insert(key, (Instant::now(), v.clone()));
        Ok(v)
    }

    fn check(&self, url: &str) -> Result<(String, u16), PreviewError> {
        check_url(url).map_err(|e| PreviewError::BadUrl(e.into()))?;
        if self.url_blacklist.iter().any(|r| r.matches(url)) {
            return Err(PreviewError::UrlBlocked);
        }
        host_port(url).map_err(|e| PreviewError::BadUrl(e.into()))
    }

    async fn fetch(&self, original: &str) -> Result<Value, PreviewError> {
        let mut url = original.to_string();
        for _ in 0..=MAX_REDIRECTS {
            let (host, port) = self.check(&url)?;
            let addrs = self.resolve(&host, port).await?;
            let (status, headers, body) = self.get(&url, &host, port, &addrs).await?;
            if status.is_redirection()
                && let Some(loc) = headers.get(header::LOCATION).and_then(|v| v.to_str().ok())
            {
                url = join_url(&url, loc);
                continue;
            }
            if !status.is_success() {
                return Err(PreviewError::Upstream(format!("the URL answered {status}")));
            }
            let content_type = headers
                .get(header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_ascii_lowercase();
            let mime = content_type.split(';').next().unwrap_or("").trim().to_string();
            let mut og = Map::new();
            if mime == "text/html" || mime == "application/xhtml+xml" {
                og = parse_html(&String::from_utf8_lossy(&body), &url);
            } else if mime.starts_with("image/") {
                og.insert("og:image".into(), Value::String(url.clone()));
                og.insert("og:image:type".into(), Value::String(mime));
                og.insert("matrix:image:size".into(), Value::from(body.len() as u64));
            }
            return Ok(Value::Object(og));
        }
        Err(PreviewError::Upstream(format!("more than {MAX_REDIRECTS} redirects")))
    }

    /// Resolve once and check every address; the connection uses only these.
    async fn resolve(&self, host: &str, port: u16) -> Result<Vec<IpAddr>, PreviewError> {
        let addrs: Vec<IpAddr> = match host.parse::<IpAddr>() {
            Ok(ip) => vec![ip],
            Err(_) => tokio::time::timeout(CONNECT_TIMEOUT, tokio::net::lookup_host((host, port)))
                .await
                .map_err(|_| PreviewError::Upstream("DNS timed out".into()))?
                .map_err(|e| PreviewError::Upstream(format!("DNS resolution failure: {e}")))?
                .map(|a| a.ip())
                .collect(),
        };
        if addrs.is_empty() {
            return Err(PreviewError::Upstream("DNS resolution failure".into()));
        }
        self.policy.check_all(&addrs).map_err(|ip| {
            tracing::info!(%host, %ip, "URL preview refused: address is blocked");
            PreviewError::IpBlocked
        })?;
        Ok(addrs)
    }

    async fn get(
        &self,
        url: &str,
        host: &str,
        port: u16,
        addrs: &[IpAddr],
    ) -> Result<(StatusCode, http::HeaderMap, Bytes), PreviewError> {
        let mut tcp = None;
        let mut last_err = String::from("no address");
        for ip in addrs {
            match tokio::time::timeout(
                CONNECT_TIMEOUT,
                TcpStream::connect(SocketAddr::new(*ip, port)),
            )
            .await
            {
                Ok(Ok(s)) => {
                    tcp = Some(s);
                    break;
                }
                Ok(Err(e)) => last_err = e.to_string(),
                Err(_) => last_err = "connection timed out".into(),
            }
        }
        let tcp =
            tcp.ok_or_else(|| PreviewError::Upstream(format!("cannot connect: {last_err}")))?;
        let (scheme, rest) = url.split_once("://").unwrap_or(("http", url));
        let https = scheme.eq_ignore_ascii_case("https");
        let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
        let path = rest[end..].split('#').next().unwrap_or("");
        let path = if path.is_empty() || path.starts_with('?') {
            format!("/{path}")
        } else {
            path.to_string()
        };
        let default_port = if https { 443 } else { 80 };
        let host_name = if host.contains(':') { format!("[{host}]") } else { host.to_string() };
        let host_header =
            if port == default_port { host_name } else { format!("{host_name}:{port}") };
        let req = Request::get(path)
            .header(header::HOST, host_header)
            .header(
                header::USER_AGENT,
                concat!("Glia/", env!("CARGO_PKG_VERSION"), " (URL preview)"),
            )
            .header(header::ACCEPT, "text/html, image/*;q=0.9, */*;q=0.5")
            .body(Empty::<Bytes>::new())
            .map_err(|e| PreviewError::BadUrl(e.to_string()))?;
        if https {
            let name = ServerName::try_from(host.to_string())
                .map_err(|e| PreviewError::BadUrl(e.to_string()))?;
            let tls = tokio_rustls::TlsConnector::from(self.tls())
                .connect(name, tcp)
                .await
                .map_err(|e| PreviewError::Upstream(format!("TLS: {e}")))?;
            self.send(TokioIo::new(tls), req).await
        } else {
            self.send(TokioIo::new(tcp), req).await
        }
    }

    async fn send<T>(
        &self,
        io: T,
        req: Request<Empty<Bytes>>,
    ) -> Result<(StatusCode, http::HeaderMap, Bytes), PreviewError>
    where
        T: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
    {
        let up = |e: hyper::Error| PreviewError::Upstream(e.to_string());
        let (mut sender, conn) = hyper::client::conn::http1::handshake(io).await.map_err(up)?;
        let conn = tokio::spawn(conn);
        let result = async {
            let resp = sender.send_request(req).await.map_err(up)?;
            let (parts, mut body) = resp.into_parts();
            let declared = parts
                .headers
                .get(header::CONTENT_LENGTH)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse::<u64>().ok());
            if parts.status.is_success() && declared.is_some_and(|n| n > self.max_size) {
                return Err(PreviewError::TooLarge(self.max_size));
            }
            let mut buf = BytesMut::new();
            if parts.status.is_success() {
                while let Some(frame) = body.frame().await {
                    let frame = frame.map_err(up)?;
                    if let Ok(data) = frame.into_data() {
                        if buf.len() as u64 + data.len() as u64 > self.max_size {
                            return Err(PreviewError::TooLarge(self.max_size));
                        }
                        buf.extend_from_slice(&data);
                    }
                }
            }
            Ok((parts.status, parts.headers, buf.freeze()))
        }
        .await;
        // Redirects and errors are not read; the connection is dropped with them.
        conn.abort();
        result
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn globs_and_url_rules() {
        assert!(glob("*.evil.example", "a.b.evil.example"));
        assert!(!glob("*.evil.example", "evil.example"));
        assert!(glob("ex?mple", "example"));
        assert!(glob("*", ""));
        assert!(!glob("a*b", "acbd"));
        let r = UrlRule::new(vec![("netloc".into(), "evil.example".into())]).expect("rule");
        assert!(r.matches("http://evil.example/x"));
        assert!(!r.matches("http://evil.example:81/x"));
        let r = UrlRule::new(vec![
            ("hostname".into(), "*.example".into()),
            ("path".into(), "/private/*".into()),
        ])
        .expect("rule");
        assert!(r.matches("https://a.example:8443/private/x?y"));
        assert!(!r.matches("https://a.example/public"));
        assert!(UrlRule::new(vec![("colour".into(), "red".into())]).is_err());
        assert!(UrlRule::new(vec![("netloc".into(), "^re$".into())]).is_err());
        assert!(UrlRule::new(vec![]).is_err());
    }

    #[test]
    fn joining_urls() {
        let b = "http://a.b:81/dir/page?q=1";
        assert_eq!(join_url(b, "https://x.y/z"), "https://x.y/z");
        assert_eq!(join_url(b, "//x.y/z"), "http://x.y/z");
        assert_eq!(join_url(b, "/root"), "http://a.b:81/root");
        assert_eq!(join_url(b, "other"), "http://a.b:81/dir/other");
        assert_eq!(join_url("http://a.b", "x.png"), "http://a.b/x.png");
    }

    #[test]
    fn open_graph_from_html() {
        let html = r#"<!doctype html><html><head>
            <!-- <meta property="og:title" content="commented out"> -->
            <title> Fallback
               title </title>
            <script>var s = "<meta property='og:title' content='script'>";</script>
            <META PROPERTY="og:title" CONTENT="Tom &amp; Jerry">
            <meta name="og:site_name" content='Site'>
            <meta property=og:image content=/img/a.png>
            <meta name="description" content="A page">
            </head><body><meta property="og:title" content="second"></body></html>"#;
        let og = parse_html(html, "https://ex.org/a/b");
        assert_eq!(og["og:title"], "Tom & Jerry");
        assert_eq!(og["og:site_name"], "Site");
        assert_eq!(og["og:image"], "https://ex.org/img/a.png");
        assert_eq!(og["og:description"], "A page");
        let og = parse_html("<title>Just &#x41;&#66; title</title>", "http://x/");
        assert_eq!(og["og:title"], "Just AB title");
        assert!(!og.contains_key("og:description"));
        assert!(parse_html("<<<>>><meta", "http://x/").is_empty());
        assert!(parse_html("<title>unterminated</title", "http://x/").contains_key("og:title"));
        // Multi-byte text right after `&` and tags that never close must not panic.
        let og = parse_html("<title>a &ééééééééé; &#xZZ; &</title><meta", "http://x/");
        assert_eq!(og["og:title"], "a &ééééééééé; &#xZZ; &");
        assert!(parse_html(&"<".repeat(10_000), "http://x/").is_empty());
    }

    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("ip")
    }

    #[test]
    fn private_and_loopback_ranges_are_refused() {
        let p = PreviewPolicy::default();
        for bad in [
            "127.0.0.1",
            "127.255.0.9",
            "10.1.2.3",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.1.1",
            "169.254.169.254", // cloud metadata
            "100.64.0.1",
            "0.0.0.0",
            "224.0.0.1",
            "255.255.255.255",
            "::1",
            "::",
            "fe80::1",
            "fd00::1",
            "ff02::1",
            "::ffff:127.0.0.1", // IPv4-mapped
            "::ffff:10.0.0.1",  // IPv4-mapped
            "::127.0.0.1",      // IPv4-compatible
            "64:ff9b::a00:1",   // NAT64 of 10.0.0.1
            "2002:7f00:1::",    // 6to4 of 127.0.0.1
            "2002:c0a8:101::1", // 6to4 of 192.168.1.1
        ] {
            assert!(!p.allows(ip(bad)), "{bad} must be refused");
        }
    }

    #[test]
    fn public_addresses_pass() {
        let p = PreviewPolicy::default();
        for good in [
            "8.8.8.8",
            "1.1.1.1",
            "172.32.0.1",
            "2606:4700::1111",
            "::ffff:8.8.8.8",
            "64:ff9b::808:808",
        ] {
            assert!(p.allows(ip(good)), "{good} must be allowed");
        }
    }

    #[test]
    fn the_allowlist_overrides_the_blocklist_but_not_unspecified() {
        let p = PreviewPolicy {
            allowlist: vec![IpRange::parse("10.1.0.0/16").expect("range")],
            ..Default::default()
        };
        assert!(p.allows(ip("10.1.2.3")));
        assert!(!p.allows(ip("10.2.0.1")));
        let all = PreviewPolicy {
            allowlist: vec![IpRange::parse("0.0.0.0/0").expect("range")],
            ..Default::default()
        };
        assert!(!all.allows(ip("0.0.0.0")), "0.0.0.0 is never reachable");
        assert!(all.allows(ip("127.0.0.1")));
    }

    #[test]
    fn one_bad_record_refuses_the_host() {
        let p = PreviewPolicy::default();
        assert_eq!(p.check_all(&[ip("8.8.8.8"), ip("127.0.0.1")]), Err(ip("127.0.0.1")));
        assert_eq!(p.check_all(&[ip("8.8.8.8")]), Ok(()));
    }

    #[test]
    fn hosts_and_ports() {
        assert_eq!(host_port("https://Matrix.org/x"), Ok(("matrix.org".into(), 443)));
        assert_eq!(host_port("http://a.b:8080?q"), Ok(("a.b".into(), 8080)));
        assert_eq!(host_port("http://u:p@[::1]:81/"), Ok(("::1".into(), 81)));
        assert_eq!(host_port("http://[::1]/"), Ok(("::1".into(), 80)));
        assert!(host_port("http://a.b:99999/").is_err());
    }

    #[test]
    fn urls() {
        assert!(check_url("https://matrix.org/blog").is_ok());
        assert!(check_url("HTTP://example.com").is_ok());
        for bad in [
            "file:///etc/passwd",
            "gopher://x",
            "https://",
            "http://user@/x",
            "javascript:alert(1)",
        ] {
            assert!(check_url(bad).is_err(), "{bad}");
        }
    }
}
