//! The `X-Matrix` Authorization scheme (spec: server-server API, "Request Authentication"):
//! the request's method, URI, origin, destination and JSON body, signed by the origin.

use ruma::canonical_json::CanonicalJsonObject;
use ruma::signatures::{PublicKeyMap, PublicKeySet};
use serde_json::{Value, json};

use crate::error::{Error, Result};
use crate::keys::SigningKey;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct XMatrix {
    pub origin: String,
    pub destination: Option<String>,
    pub key: String,
    pub sig: String,
}

fn unauthorized(msg: &str) -> Error {
    Error::Unauthorized(msg.into())
}

/// Parse `X-Matrix origin="a",destination="b",key="ed25519:k",sig="..."`. Values may be
/// quoted or bare; unknown parameters are ignored, as the spec asks.
pub fn parse(header: &str) -> Result<XMatrix> {
    let rest = header
        .trim()
        .strip_prefix("X-Matrix")
        .filter(|r| r.starts_with(char::is_whitespace))
        .ok_or_else(|| unauthorized("Authorization is not X-Matrix"))?;
    let (mut origin, mut destination, mut key, mut sig) = (None, None, None, None);
    for part in split_params(rest) {
        let Some((k, v)) = part.split_once('=') else { continue };
        let v = v.trim();
        let v = match v.strip_prefix('"').and_then(|v| v.strip_suffix('"')) {
            Some(inner) => inner.replace("\\\"", "\"").replace("\\\\", "\\"),
            None => v.to_string(),
        };
        match k.trim().to_ascii_lowercase().as_str() {
            "origin" => origin = Some(v),
            "destination" => destination = Some(v),
            "key" => key = Some(v),
            "sig" => sig = Some(v),
            _ => {}
        }
    }
    Ok(XMatrix {
        origin: origin.ok_or_else(|| unauthorized("X-Matrix without origin"))?,
        destination,
        key: key.ok_or_else(|| unauthorized("X-Matrix without key"))?,
        sig: sig.ok_or_else(|| unauthorized("X-Matrix without sig"))?,
    })
}

/// Split on commas outside double quotes.
fn split_params(s: &str) -> Vec<String> {
    let mut out = vec![String::new()];
    let (mut quoted, mut escaped) = (false, false);
    for c in s.chars() {
        match c {
            '\\' if quoted && !escaped => {
                escaped = true;
                out.last_mut().expect("non-empty").push(c);
                continue;
            }
            '"' if !escaped => quoted = !quoted,
            ',' if !quoted => {
                out.push(String::new());
                continue;
            }
            _ => {}
        }
        escaped = false;
        out.last_mut().expect("non-empty").push(c);
    }
    out.into_iter().map(|p| p.trim().to_string()).filter(|p| !p.is_empty()).collect()
}

fn request_object(
    method: &str,
    uri: &str,
    origin: &str,
    destination: &str,
    content: Option<&Value>,
) -> Result<CanonicalJsonObject> {
    let mut v = json!({"method": method, "uri": uri, "origin": origin, "destination": destination});
    if let Some(c) = content {
        v["content"] = c.clone();
    }
    serde_json::from_value(v)
        .map_err(|e| Error::BadJson(format!("request body is not canonical JSON: {e}")))
}

/// The Authorization header value for an outbound request.
pub fn sign(
    method: &str,
    uri: &str,
    origin: &str,
    destination: &str,
    content: Option<&Value>,
    key: &SigningKey,
) -> Result<String> {
    let mut obj = request_object(method, uri, origin, destination, content)?;
    ruma::signatures::sign_json(origin, &key.pair, &mut obj).map_err(Error::internal)?;
    let sig = obj
        .get("signatures")
        .and_then(|s| s.as_object())
        .and_then(|s| s.get(origin))
        .and_then(|s| s.as_object())
        .and_then(|s| s.get(&format!("ed25519:{}", key.version)))
        .and_then(|s| s.as_str())
        .ok_or_else(|| Error::internal("signature missing after signing"))?
        .to_string();
    Ok(format!(
        "X-Matrix origin=\"{origin}\",destination=\"{destination}\",key=\"ed25519:{}\",sig=\"{sig}\"",
        key.version
    ))
}

/// Verify a request's signature against the origin's public key (unpadded base64).
pub fn verify(
    x: &XMatrix,
    method: &str,
    uri: &str,
    our_name: &str,
    content: Option<&Value>,
    origin_key_base64: &str,
) -> Result<()> {
    if let Some(d) = &x.destination
        && d != our_name
    {
        return Err(unauthorized("X-Matrix destination is not this server"));
    }
    let mut obj = request_object(method, uri, &x.origin, our_name, content)?;
    let sig = json!({x.origin.clone(): {x.key.clone(): x.sig.clone()}});
    obj.insert("signatures".into(), serde_json::from_value(sig).map_err(Error::internal)?);
    let key = ruma::serde::Base64::parse(origin_key_base64.trim_end_matches('='))
        .map_err(|_| unauthorized("origin key is not base64"))?;
    let mut set = PublicKeySet::new();
    set.insert(x.key.clone(), key);
    let mut map = PublicKeyMap::new();
    map.insert(x.origin.clone(), set);
    ruma::signatures::verify_json(&map, &obj)
        .map_err(|_| unauthorized("X-Matrix signature does not verify"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_parsing() {
        let x = parse(r#"X-Matrix origin=origin.example,destination="dest.example",key="ed25519:a_1",sig="ABC=""#).expect("ok");
        assert_eq!(x.origin, "origin.example");
        assert_eq!(x.destination.as_deref(), Some("dest.example"));
        assert_eq!((x.key.as_str(), x.sig.as_str()), ("ed25519:a_1", "ABC="));
        let x =
            parse(r#"X-Matrix origin="a,b",key="k",sig="s",future="x""#).expect("quoted commas");
        assert_eq!(x.origin, "a,b");
        assert!(parse("Bearer abc").is_err());
        assert!(parse("X-Matrix origin=a").is_err());
        assert!(parse("X-Matrixorigin=a,key=k,sig=s").is_err());
    }

    #[test]
    fn sign_then_verify_and_forgeries_fail() {
        let key = SigningKey::from_seed("a_k", &[3u8; 32]).expect("key");
        let body = json!({"pdus": [], "edus": []});
        let uri = "/_matrix/federation/v1/send/txn1";
        let header = sign("PUT", uri, "a.example", "b.example", Some(&body), &key).expect("sign");
        let x = parse(&header).expect("parse");
        let pk = key.public_key_base64();
        verify(&x, "PUT", uri, "b.example", Some(&body), &pk).expect("verifies");
        // Any change breaks it: method, uri, body, destination, key.
        assert!(verify(&x, "POST", uri, "b.example", Some(&body), &pk).is_err());
        assert!(verify(&x, "PUT", "/other", "b.example", Some(&body), &pk).is_err());
        assert!(verify(&x, "PUT", uri, "b.example", Some(&json!({"pdus": [1]})), &pk).is_err());
        assert!(verify(&x, "PUT", uri, "c.example", Some(&body), &pk).is_err());
        let other = SigningKey::from_seed("a_k", &[4u8; 32]).expect("key");
        assert!(
            verify(&x, "PUT", uri, "b.example", Some(&body), &other.public_key_base64()).is_err()
        );
    }
}
