//! Outbound requests to appservices: `Authorization: Bearer <hs_token>`, JSON both ways,
//! plain HTTP or TLS (system roots, or `federation_custom_ca_list` in test setups, as
//! Synapse's SyTest setup trusts its CA for appservices too), each with a deadline.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{Method, Request, StatusCode, Uri, header};
use http_body_util::{BodyExt, Full, Limited};
use hyper_util::rt::TokioIo;
use rustls_pki_types::{CertificateDer, ServerName, pem::PemObject};
use serde_json::Value;
use tokio::net::TcpStream;

use crate::config::Config;
use crate::error::{Error, Result};

/// The most an appservice's answer may hold (queries and third-party lookups are small).
const MAX_RESPONSE: usize = 4 * 1024 * 1024;

pub struct Client {
    tls: Arc<rustls::ClientConfig>,
}

/// Why a request to an appservice failed (the ping endpoint reports each differently).
#[derive(Debug)]
pub enum Failure {
    Timeout,
    Connection(String),
    /// A non-2xx status, with the body as sent.
    Status(StatusCode, String),
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::Timeout => write!(f, "timed out"),
            Failure::Connection(e) => write!(f, "connection failed: {e}"),
            Failure::Status(s, _) => write!(f, "answered {s}"),
        }
    }
}

impl Client {
    pub fn new(config: &Config) -> Result<Client> {
        let mut roots = rustls::RootCertStore::empty();
        let custom = &config.test_setup.federation_custom_ca_list;
        for path in custom {
            let certs = CertificateDer::pem_file_iter(path)
                .map_err(|e| Error::internal(format!("{}: {e}", path.display())))?;
            for cert in certs.flatten() {
                let _ = roots.add(cert);
            }
        }
        if custom.is_empty() {
            for cert in rustls_native_certs::load_native_certs().certs {
                let _ = roots.add(cert);
            }
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let tls = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(Error::internal)?
            .with_root_certificates(roots)
            .with_no_client_auth();
        Ok(Client { tls: Arc::new(tls) })
    }

    /// `method` `base` + `path` (path segments already percent-encoded), with `hs_token`.
    /// Ok only for a 2xx status with a JSON body (an object or, for lookups, a list).
    pub async fn request(
        &self,
        method: Method,
        base: &str,
        path: &str,
        hs_token: &str,
        body: Option<&Value>,
        timeout: Duration,
    ) -> std::result::Result<Value, Failure> {
        let url = format!("{}{path}", base.trim_end_matches('/'));
        tokio::time::timeout(timeout, self.send(method, &url, hs_token, body))
            .await
            .map_err(|_| Failure::Timeout)?
    }

    async fn send(
        &self,
        method: Method,
        url: &str,
        hs_token: &str,
        body: Option<&Value>,
    ) -> std::result::Result<Value, Failure> {
        let conn = |e: String| Failure::Connection(e);
        let uri: Uri = url.parse().map_err(|e| conn(format!("bad URL {url}: {e}")))?;
        let https = uri.scheme_str() == Some("https");
        let host = uri.host().ok_or_else(|| conn(format!("no host in {url}")))?.to_string();
        let port = uri.port_u16().unwrap_or(if https { 443 } else { 80 });
        let authority = uri.authority().map(|a| a.to_string()).unwrap_or_else(|| host.clone());
        let path = uri.path_and_query().map(|p| p.to_string()).unwrap_or_else(|| "/".into());
        let bare = host.trim_start_matches('[').trim_end_matches(']').to_string();
        let tcp =
            TcpStream::connect((bare.as_str(), port)).await.map_err(|e| conn(e.to_string()))?;
        let data = body.map(|b| Bytes::from(b.to_string())).unwrap_or_default();
        let mut req = Request::builder()
            .method(method)
            .uri(path)
            .header(header::HOST, authority)
            .header(header::AUTHORIZATION, format!("Bearer {hs_token}"))
            .header(header::USER_AGENT, concat!("Glia/", env!("CARGO_PKG_VERSION")));
        if body.is_some() {
            req = req.header(header::CONTENT_TYPE, "application/json");
        }
        let req = req.body(Full::new(data)).map_err(|e| conn(e.to_string()))?;
        if https {
            let name = ServerName::try_from(bare).map_err(|e| conn(e.to_string()))?;
            let tls = tokio_rustls::TlsConnector::from(self.tls.clone())
                .connect(name, tcp)
                .await
                .map_err(|e| conn(format!("TLS: {e}")))?;
            exchange(TokioIo::new(tls), req).await
        } else {
            exchange(TokioIo::new(tcp), req).await
        }
    }
}

async fn exchange<T>(io: T, req: Request<Full<Bytes>>) -> std::result::Result<Value, Failure>
where
    T: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let conn = |e: hyper::Error| Failure::Connection(e.to_string());
    let (mut sender, connection) = hyper::client::conn::http1::handshake(io).await.map_err(conn)?;
    let task = tokio::spawn(connection);
    let result = async {
        let resp = sender.send_request(req).await.map_err(conn)?;
        let (parts, body) = resp.into_parts();
        let bytes = Limited::new(body, MAX_RESPONSE)
            .collect()
            .await
            .map_err(|e| Failure::Connection(format!("reading the answer: {e}")))?
            .to_bytes();
        if !parts.status.is_success() {
            return Err(Failure::Status(parts.status, String::from_utf8_lossy(&bytes).into()));
        }
        serde_json::from_slice::<Value>(&bytes)
            .map_err(|_| Failure::Connection("the answer is not JSON".into()))
    }
    .await;
    task.abort();
    result
}

/// A path segment, percent-encoded (user IDs and aliases carry `@`, `#` and `:`).
pub fn segment(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
}
