//! A minimal JSON-over-HTTP(S) client for the command line (register-user), on hyper and
//! rustls with the system's root certificates.

use std::sync::Arc;

use bytes::Bytes;
use http::{Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use rustls_pki_types::ServerName;
use serde_json::Value;
use tokio::net::TcpStream;

pub struct Url {
    pub tls: bool,
    pub host: String,
    pub port: u16,
    pub base_path: String,
}

pub fn parse_url(url: &str) -> Result<Url, String> {
    let (tls, rest) = if let Some(r) = url.strip_prefix("https://") {
        (true, r)
    } else if let Some(r) = url.strip_prefix("http://") {
        (false, r)
    } else {
        return Err(format!("{url}: the URL must start with http:// or https://"));
    };
    let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
    let (host, port) = match authority.rsplit_once(':') {
        Some((h, p)) if !h.ends_with(']') || authority.starts_with('[') => match p.parse() {
            Ok(p) => (h.to_string(), p),
            Err(_) => (authority.to_string(), if tls { 443 } else { 80 }),
        },
        _ => (authority.to_string(), if tls { 443 } else { 80 }),
    };
    let host = host.trim_start_matches('[').trim_end_matches(']').to_string();
    Ok(Url { tls, host, port, base_path: format!("/{}", path.trim_end_matches('/')) })
}

/// Send one request; returns the status and the JSON body (Null if not JSON).
pub async fn request(
    base: &Url,
    method: Method,
    path: &str,
    body: Option<&Value>,
) -> Result<(StatusCode, Value), String> {
    let bytes = body.map(|b| b.to_string()).unwrap_or_default();
    let (status, body) =
        request_bytes(base, method, path, "application/json", Bytes::from(bytes)).await?;
    let json = serde_json::from_slice(&body).unwrap_or(Value::Null);
    Ok((status, json))
}

/// Send one request with a body of `content_type`; returns the status and the raw body.
/// Also used by the server for the captcha verifier (`recaptcha_siteverify_api`).
pub async fn request_bytes(
    base: &Url,
    method: Method,
    path: &str,
    content_type: &str,
    body: Bytes,
) -> Result<(StatusCode, Bytes), String> {
    request_bytes_at(base, None, None, method, path, content_type, body).await
}

/// [`request_bytes`], connecting to `addr` (an address of `base.host` the caller has
/// checked) instead of resolving the host again, and with `tls` instead of the system's
/// root certificates when given.
pub async fn request_bytes_at(
    base: &Url,
    addr: Option<std::net::SocketAddr>,
    tls: Option<Arc<rustls::ClientConfig>>,
    method: Method,
    path: &str,
    content_type: &str,
    body: Bytes,
) -> Result<(StatusCode, Bytes), String> {
    let full_path = format!("{}{}", base.base_path.trim_end_matches('/'), path);
    let connected = match addr {
        Some(a) => TcpStream::connect(a).await,
        None => TcpStream::connect((base.host.as_str(), base.port)).await,
    };
    let tcp =
        connected.map_err(|e| format!("cannot connect to {}:{}: {e}", base.host, base.port))?;
    let host_header = format!("{}:{}", base.host, base.port);
    let req = Request::builder()
        .method(method)
        .uri(if full_path.is_empty() { "/".to_string() } else { full_path })
        .header("host", host_header)
        .header("content-type", content_type)
        .body(Full::new(body))
        .map_err(|e| e.to_string())?;
    if base.tls {
        let cfg = match tls {
            Some(cfg) => cfg,
            None => native_tls()?,
        };
        let name = ServerName::try_from(base.host.clone()).map_err(|e| e.to_string())?;
        let tls = tokio_rustls::TlsConnector::from(cfg)
            .connect(name, tcp)
            .await
            .map_err(|e| format!("TLS to {}: {e}", base.host))?;
        send(TokioIo::new(tls), req).await
    } else {
        send(TokioIo::new(tcp), req).await
    }
}

/// TLS trusting the system's root certificates; `extra` PEM files add more roots.
pub fn native_tls_with(extra: &[std::path::PathBuf]) -> Result<Arc<rustls::ClientConfig>, String> {
    use rustls_pki_types::CertificateDer;
    use rustls_pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls_native_certs::load_native_certs().certs {
        let _ = roots.add(cert);
    }
    for path in extra {
        let certs =
            CertificateDer::pem_file_iter(path).map_err(|e| format!("{}: {e}", path.display()))?;
        for cert in certs.flatten() {
            let _ = roots.add(cert);
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let cfg = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(cfg))
}

fn native_tls() -> Result<Arc<rustls::ClientConfig>, String> {
    native_tls_with(&[])
}

async fn send<T>(io: T, req: Request<Full<Bytes>>) -> Result<(StatusCode, Bytes), String>
where
    T: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake(io).await.map_err(|e| e.to_string())?;
    tokio::spawn(conn);
    let resp = sender.send_request(req).await.map_err(|e| e.to_string())?;
    let status = resp.status();
    let body = resp.into_body().collect().await.map_err(|e| e.to_string())?.to_bytes();
    Ok((status, body))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        let u = parse_url("http://localhost:8008").expect("ok");
        assert_eq!(
            (u.tls, u.host.as_str(), u.port, u.base_path.as_str()),
            (false, "localhost", 8008, "/")
        );
        let u = parse_url("https://matrix.example.org/").expect("ok");
        assert_eq!((u.tls, u.port), (true, 443));
        let u = parse_url("http://[::1]:8008").expect("ok");
        assert_eq!((u.host.as_str(), u.port), ("::1", 8008));
        assert!(parse_url("ftp://x").is_err());
    }
}
