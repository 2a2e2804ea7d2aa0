//! The `m.login.recaptcha` stage's server-side check: the client's response is posted,
//! form-encoded with `recaptcha_private_key` as `secret` (and the client's address as
//! `remoteip`), to `recaptcha_siteverify_api`, as Synapse does. Only a JSON answer with
//! `"success": true` passes. The verifier is the admin's choice, so plain `http://` is
//! allowed (a verifier on loopback in tests).

use std::time::Duration;

use bytes::Bytes;
use http::Method;
use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};
use serde_json::Value;

use crate::cli::http_client::{parse_url, request_bytes_at};

const TIMEOUT: Duration = Duration::from_secs(15);

/// `application/x-www-form-urlencoded` for the given pairs.
pub fn form_encode(pairs: &[(&str, &str)]) -> String {
    pairs
        .iter()
        .map(|(k, v)| {
            format!(
                "{}={}",
                utf8_percent_encode(k, NON_ALPHANUMERIC),
                utf8_percent_encode(v, NON_ALPHANUMERIC)
            )
        })
        .collect::<Vec<_>>()
        .join("&")
}

/// Ask the verifier at `url` about `response`: Ok(true) when it says success, Ok(false)
/// when it says otherwise, Err when it cannot be asked or answers nonsense.
pub async fn verify(
    tls: Option<std::sync::Arc<rustls::ClientConfig>>,
    url: &str,
    secret: &str,
    response: &str,
    remoteip: Option<&str>,
) -> Result<bool, String> {
    let base = parse_url(url)?;
    let mut pairs = vec![("secret", secret), ("response", response)];
    if let Some(ip) = remoteip {
        pairs.push(("remoteip", ip));
    }
    let body = Bytes::from(form_encode(&pairs));
    let (status, bytes) = tokio::time::timeout(
        TIMEOUT,
        request_bytes_at(
            &base,
            None,
            tls,
            Method::POST,
            "",
            "application/x-www-form-urlencoded",
            body,
        ),
    )
    .await
    .map_err(|_| format!("{url}: timed out"))??;
    if !status.is_success() {
        return Err(format!("{url}: HTTP {status}"));
    }
    let v: Value = serde_json::from_slice(&bytes).map_err(|e| format!("{url}: not JSON ({e})"))?;
    Ok(v.get("success") == Some(&Value::Bool(true)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn form_encoding() {
        assert_eq!(
            form_encode(&[("secret", "a b&c=d"), ("response", "ü/+")]),
            "secret=a%20b%26c%3Dd&response=%C3%BC%2F%2B"
        );
    }
}
