//! TLS for listeners with `tls: true`: rustls with the ring provider, certificate chain and
//! key from PEM files (`tls_certificate_path`, `tls_private_key_path`), ALPN for h2.

use std::sync::Arc;

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::TlsAcceptor;

use crate::config::Config;
use crate::error::{Error, Result};

pub fn acceptor(config: &Config) -> Result<TlsAcceptor> {
    let (Some(cert_path), Some(key_path)) =
        (&config.tls_certificate_path, &config.tls_private_key_path)
    else {
        return Err(Error::internal(
            "TLS listener without tls_certificate_path/tls_private_key_path",
        ));
    };
    let certs = CertificateDer::pem_file_iter(cert_path)
        .and_then(|it| it.collect::<Result<Vec<_>, _>>())
        .map_err(|e| {
            Error::internal(format!("tls_certificate_path {}: {e}", cert_path.display()))
        })?;
    if certs.is_empty() {
        return Err(Error::internal(format!(
            "tls_certificate_path {}: no certificate found",
            cert_path.display()
        )));
    }
    let key = PrivateKeyDer::from_pem_file(key_path).map_err(|e| {
        Error::internal(format!("tls_private_key_path {}: {e}", key_path.display()))
    })?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut cfg = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(Error::internal)?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| Error::internal(format!("TLS certificate/key: {e}")))?;
    cfg.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(cfg)))
}
