//! Outbound federation requests: discovery, TLS (rustls with the system roots, or only
//! `federation_custom_ca_list`, or — for test setups — no verification), refusal of
//! private and loopback addresses unless allow-listed, `X-Matrix` signing, timeouts and a
//! bound on response size.

use std::collections::BTreeSet;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{Method, Request, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use hyper_util::rt::TokioIo;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use serde_json::Value;
use tokio::net::TcpStream;

use super::resolve::{self, Target};
use super::xmatrix;
use crate::config::{Config, IpRange, federation_allowed_in};
use crate::error::{Error, Result};
use crate::keys::SigningKey;

const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Largest response accepted (a send_join of a big room is tens of MB).
const MAX_RESPONSE: usize = 200 * 1024 * 1024;

/// Largest key or well-known response accepted (real ones are well under a kilobyte).
const MAX_KEY_RESPONSE: usize = 1024 * 1024;

/// What a signed request is: who sends it where, and what.
pub struct RequestParts<'a> {
    pub origin: &'a str,
    pub key: &'a SigningKey,
    pub destination: &'a str,
    pub method: Method,
    pub path_and_query: &'a str,
    pub body: Option<&'a Value>,
}

pub struct FederationClient {
    /// None when the system has no usable DNS configuration: only IP literals and explicit
    /// ports then resolve (enough for test federations on loopback).
    resolver: Option<hickory_resolver::TokioResolver>,
    cache: resolve::Cache,
    tls: Arc<rustls::ClientConfig>,
    allowed: Vec<IpRange>,
    /// `federation_domain_whitelist` (None: every destination).
    domain_whitelist: Option<BTreeSet<String>>,
    /// `federation.client_timeout`: the bound on a whole request, connect to last byte.
    timeout: Duration,
}

/// Addresses a federation request must not reach unless allow-listed (SSRF).
pub fn is_private(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_documentation()
                || o[0] == 0
                || (o[0] == 100 && (64..128).contains(&o[1]))
                || (o[0] == 192 && o[1] == 0 && o[2] == 0)
                || o[0] >= 224
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_private(IpAddr::V4(v4));
            }
            let s = v6.segments();
            v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (s[0] & 0xfe00) == 0xfc00
                || (s[0] & 0xffc0) == 0xfe80
        }
    }
}

/// Accepts any server certificate: `federation_verify_certificates: false` (tests only).
#[derive(Debug)]
struct NoVerify(Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for NoVerify {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: rustls::pki_types::UnixTime,
    ) -> std::result::Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }
    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> std::result::Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }
    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> std::result::Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }
    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

impl FederationClient {
    pub fn new(config: &Config) -> Result<FederationClient> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(Error::internal)?;
        let setup = &config.test_setup;
        let mut tls = if !setup.federation_verify_certificates {
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(NoVerify(provider)))
                .with_no_client_auth()
        } else {
            let mut roots = rustls::RootCertStore::empty();
            if setup.federation_custom_ca_list.is_empty() {
                for cert in rustls_native_certs::load_native_certs().certs {
                    let _ = roots.add(cert);
                }
            } else {
                for path in &setup.federation_custom_ca_list {
                    let certs = CertificateDer::pem_file_iter(path).map_err(|e| {
                        Error::internal(format!(
                            "federation_custom_ca_list {}: {e}",
                            path.display()
                        ))
                    })?;
                    for cert in certs {
                        roots.add(cert.map_err(Error::internal)?).map_err(Error::internal)?;
                    }
                }
            }
            builder.with_root_certificates(roots).with_no_client_auth()
        };
        tls.alpn_protocols = vec![b"http/1.1".to_vec()];
        let resolver = match hickory_resolver::TokioResolver::builder_tokio()
            .and_then(|b| b.build())
        {
            Ok(r) => Some(r),
            Err(e) => {
                tracing::warn!(error = %e, "no DNS resolver: federation reaches only IP literals and name:port");
                None
            }
        };
        Ok(FederationClient {
            resolver,
            cache: resolve::Cache::default(),
            tls: Arc::new(tls),
            allowed: setup.ip_range_whitelist.clone(),
            domain_whitelist: config.federation_domain_whitelist.clone(),
            timeout: config.federation_client_timeout,
        })
    }

    /// 403 `M_FORBIDDEN` for a destination `federation_domain_whitelist` leaves out.
    fn check_destination(&self, destination: &str) -> Result<()> {
        if federation_allowed_in(self.domain_whitelist.as_ref(), destination) {
            Ok(())
        } else {
            Err(Error::Forbidden(format!(
                "Federation denied with {destination}: not in federation_domain_whitelist"
            )))
        }
    }

    /// Where to reach `server_name`.
    pub async fn resolve(&self, server_name: &str) -> Target {
        if let Some(t) = resolve::resolve_static(server_name) {
            return t;
        }
        let delegated = match self.cache.get(server_name) {
            Some(d) => d,
            None => {
                let d = self.fetch_well_known(server_name).await;
                self.cache.put(server_name, d.clone());
                d
            }
        };
        resolve::resolve_dynamic(self.resolver.as_ref(), server_name, delegated).await
    }

    async fn fetch_well_known(&self, host: &str) -> Option<String> {
        let target = Target {
            host: host.into(),
            port: 443,
            tls_name: host.into(),
            host_header: host.into(),
        };
        let path = "/.well-known/matrix/server";
        let (status, _, body) = self
            .raw_full(&target, Method::GET, path, None, Bytes::new(), MAX_KEY_RESPONSE)
            .await
            .ok()?;
        if !status.is_success() {
            return None;
        }
        let v: Value = serde_json::from_slice(&body).ok()?;
        resolve::parse_well_known(&v)
    }

    /// The addresses of a target, minus forbidden ones.
    async fn addresses(&self, target: &Target) -> Result<Vec<SocketAddr>> {
        let ips: Vec<IpAddr> = match target.host.parse::<IpAddr>() {
            Ok(ip) => vec![ip],
            Err(_) => self
                .resolver
                .as_ref()
                .ok_or_else(|| {
                    Error::BadGateway(format!("cannot resolve {}: no DNS resolver", target.host))
                })?
                .lookup_ip(format!("{}.", target.host))
                .await
                .map_err(|e| Error::BadGateway(format!("cannot resolve {}: {e}", target.host)))?
                .iter()
                .collect(),
        };
        let allowed: Vec<SocketAddr> = ips
            .into_iter()
            .filter(|ip| !is_private(*ip) || self.allowed.iter().any(|r| r.contains(*ip)))
            .map(|ip| SocketAddr::new(ip, target.port))
            .collect();
        if allowed.is_empty() {
            return Err(Error::Forbidden(format!(
                "{} has no address federation may reach",
                target.host
            )));
        }
        Ok(allowed)
    }

    /// A request's status, headers and at most `limit` bytes of body.
    async fn raw_full(
        &self,
        target: &Target,
        method: Method,
        path: &str,
        authorization: Option<String>,
        body: Bytes,
        limit: usize,
    ) -> Result<(StatusCode, http::HeaderMap, Bytes)> {
        let fut = async {
            let resp = self.send(target, method, path, authorization, body).await?;
            let status = resp.status();
            let (parts, body) = resp.into_parts();
            let bytes = Limited::new(body, limit)
                .collect()
                .await
                .map_err(|e| Error::BadGateway(format!("reading response: {e}")))?
                .to_bytes();
            Ok((status, parts.headers, bytes))
        };
        tokio::time::timeout(self.timeout, fut)
            .await
            .map_err(|_| Error::BadGateway(format!("request to {} timed out", target.host)))?
    }

    /// Connect, send, and return the response with its body still to be read (within
    /// `REQUEST_TIMEOUT` up to the response head; the caller bounds reading the body).
    async fn send(
        &self,
        target: &Target,
        method: Method,
        path: &str,
        authorization: Option<String>,
        body: Bytes,
    ) -> Result<http::Response<hyper::body::Incoming>> {
        let fut = async {
            let mut last = None;
            let mut stream = None;
            for addr in self.addresses(target).await? {
                match tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(addr)).await {
                    Ok(Ok(s)) => {
                        stream = Some(s);
                        break;
                    }
                    Ok(Err(e)) => last = Some(e.to_string()),
                    Err(_) => last = Some("timed out".into()),
                }
            }
            let stream = stream.ok_or_else(|| {
                Error::BadGateway(format!(
                    "cannot connect to {}:{}: {}",
                    target.host,
                    target.port,
                    last.unwrap_or_default()
                ))
            })?;
            let name = ServerName::try_from(target.tls_name.clone())
                .map_err(|e| Error::BadGateway(e.to_string()))?;
            let tls = tokio_rustls::TlsConnector::from(self.tls.clone())
                .connect(name, stream)
                .await
                .map_err(|e| Error::BadGateway(format!("TLS to {}: {e}", target.tls_name)))?;
            let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
                .await
                .map_err(|e| Error::BadGateway(e.to_string()))?;
            tokio::spawn(conn);
            let mut req =
                Request::builder().method(method).uri(path).header("host", &target.host_header);
            if let Some(a) = authorization {
                req = req.header("authorization", a);
            }
            if !body.is_empty() {
                req = req.header("content-type", "application/json");
            }
            let req = req.body(Full::new(body)).map_err(Error::internal)?;
            sender.send_request(req).await.map_err(|e| Error::BadGateway(e.to_string()))
        };
        tokio::time::timeout(self.timeout, fut)
            .await
            .map_err(|_| Error::BadGateway(format!("request to {} timed out", target.host)))?
    }

    /// A signed request to another server; returns the status and JSON body.
    pub async fn request(
        &self,
        origin: &str,
        key: &SigningKey,
        destination: &str,
        method: Method,
        path_and_query: &str,
        body: Option<&Value>,
    ) -> Result<(StatusCode, Value)> {
        let r = RequestParts { origin, key, destination, method, path_and_query, body };
        self.request_limited(r, MAX_RESPONSE).await
    }

    /// [`FederationClient::request`] reading at most `limit` bytes of response (queries
    /// whose answers are small: a peer cannot make us hold 200 MB for a profile).
    pub async fn request_limited(
        &self,
        r: RequestParts<'_>,
        limit: usize,
    ) -> Result<(StatusCode, Value)> {
        let RequestParts { origin, key, destination, method, path_and_query, body } = r;
        self.check_destination(destination)?;
        let auth = xmatrix::sign(method.as_str(), path_and_query, origin, destination, body, key)?;
        let bytes = match body {
            Some(b) => Bytes::from(serde_json::to_vec(b).map_err(Error::internal)?),
            None => Bytes::new(),
        };
        let target = self.resolve(destination).await;
        let (status, _, resp) =
            self.raw_full(&target, method, path_and_query, Some(auth), bytes, limit).await?;
        let json = serde_json::from_slice(&resp).unwrap_or(Value::Null);
        Ok((status, json))
    }

    /// A signed GET answered with anything (media), its body left to the caller to read.
    pub async fn get_stream(
        &self,
        origin: &str,
        key: &SigningKey,
        destination: &str,
        path_and_query: &str,
    ) -> Result<http::Response<hyper::body::Incoming>> {
        self.check_destination(destination)?;
        let auth = xmatrix::sign("GET", path_and_query, origin, destination, None, key)?;
        let target = self.resolve(destination).await;
        self.send(&target, Method::GET, path_and_query, Some(auth), Bytes::new()).await
    }

    /// An unsigned GET of an `https://` URL (where a media download redirected to), with
    /// the same address checks as federation requests; its body left to the caller.
    pub async fn get_url_stream(&self, url: &str) -> Result<http::Response<hyper::body::Incoming>> {
        let uri: http::Uri =
            url.parse().map_err(|_| Error::Unknown(format!("not a URL: {url:?}")))?;
        if uri.scheme_str() != Some("https") {
            return Err(Error::Unknown(format!("only https:// redirects are followed: {url:?}")));
        }
        let host = uri.host().ok_or_else(|| Error::Unknown(format!("no host in {url:?}")))?;
        let host = host.trim_start_matches('[').trim_end_matches(']').to_string();
        let target = Target {
            host: host.clone(),
            port: uri.port_u16().unwrap_or(443),
            tls_name: host,
            host_header: uri.authority().map(|a| a.to_string()).unwrap_or_default(),
        };
        let path = uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
        self.send(&target, Method::GET, path, None, Bytes::new()).await
    }

    /// An unsigned GET (the key API).
    pub async fn get_unsigned(&self, destination: &str, path: &str) -> Result<(StatusCode, Value)> {
        self.check_destination(destination)?;
        let target = self.resolve(destination).await;
        let (status, _, resp) =
            self.raw_full(&target, Method::GET, path, None, Bytes::new(), MAX_KEY_RESPONSE).await?;
        Ok((status, serde_json::from_slice(&resp).unwrap_or(Value::Null)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn whitelist_refuses_other_destinations_before_connecting() {
        let (mut config, _) = Config::from_yaml_str(
            "server_name: a.example\nfederation_domain_whitelist: ['b.example']\n",
        )
        .expect("config");
        config.test_setup.federation_custom_ca_list.clear();
        let client = FederationClient::new(&config).expect("client");
        let key = SigningKey::from_seed("a", &[7; 32]).expect("key");
        for dest in ["c.example", "127.0.0.1:1"] {
            let err = client
                .request(
                    "a.example",
                    &key,
                    dest,
                    Method::GET,
                    "/_matrix/federation/v1/version",
                    None,
                )
                .await
                .expect_err("refused");
            assert_eq!(err.errcode(), "M_FORBIDDEN", "{dest}: {err}");
            let err =
                client.get_unsigned(dest, "/_matrix/key/v2/server").await.expect_err("refused");
            assert_eq!(err.errcode(), "M_FORBIDDEN", "{dest}: {err}");
        }
        assert!(client.check_destination("b.example").is_ok());
    }

    #[test]
    fn private_ranges() {
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.1.1",
            "100.64.0.1",
            "0.0.0.0",
            "::1",
            "fd00::1",
            "fe80::1",
            "::ffff:127.0.0.1",
        ] {
            assert!(is_private(ip.parse().expect("ip")), "{ip}");
        }
        for ip in ["1.1.1.1", "8.8.8.8", "2001:4860:4860::8888"] {
            assert!(!is_private(ip.parse().expect("ip")), "{ip}");
        }
    }
}
