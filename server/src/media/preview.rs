//! URL previews: the guard against server-side request forgery (SSRF).
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

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

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

#[cfg(test)]
mod tests {
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
