//! A request after routing: method, path captures, query, headers, the size-limited body
//! and the client's address. Body parsing maps each failure to the spec's errcode.

use std::net::IpAddr;

use bytes::Bytes;
use http::{HeaderMap, Method};
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::error::{Error, Result, bad_json};

pub struct Req {
    pub method: Method,
    pub path: String,
    /// Path and query exactly as sent (what `X-Matrix` signatures cover).
    pub uri: String,
    /// Percent-decoded path captures, in route order.
    pub params: Vec<String>,
    pub query: Vec<(String, String)>,
    pub headers: HeaderMap,
    pub body: Bytes,
    pub client_ip: IpAddr,
}

/// The largest and smallest integers canonical JSON allows (2^53 - 1).
const CANONICAL_INT_MAX: i64 = (1 << 53) - 1;

impl Req {
    /// Method and path: what a user-interactive auth session is bound to.
    pub fn operation(&self) -> String {
        format!("{} {}", self.method, self.path)
    }

    pub fn param(&self, i: usize) -> &str {
        self.params.get(i).map(String::as_str).unwrap_or("")
    }

    pub fn query(&self, key: &str) -> Option<&str> {
        self.query.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }

    /// The access token from `Authorization: Bearer` or the deprecated `access_token` query
    /// parameter (still used by older clients and SyTest).
    pub fn access_token(&self) -> Option<&str> {
        if let Some(v) = self.headers.get(http::header::AUTHORIZATION) {
            let v = v.to_str().ok()?;
            return v.strip_prefix("Bearer ").map(str::trim);
        }
        self.query("access_token")
    }

    /// The body as a JSON object. An empty body counts as `{}` where `allow_empty`.
    pub fn json_object(&self, allow_empty: bool) -> Result<serde_json::Map<String, Value>> {
        if allow_empty && self.body.iter().all(u8::is_ascii_whitespace) {
            return Ok(serde_json::Map::new());
        }
        match self.json_value()? {
            Value::Object(m) => Ok(m),
            _ => Err(bad_json("Content must be a JSON object.")),
        }
    }

    /// Parse the body as JSON: invalid UTF-8 or syntax is `M_NOT_JSON`; numbers outside the
    /// canonical-JSON range are `M_BAD_JSON`, because everything Glia stores may later have
    /// to be signed as canonical JSON.
    pub fn json_value(&self) -> Result<Value> {
        let text = std::str::from_utf8(&self.body)
            .map_err(|_| Error::NotJson("Content is not valid UTF-8.".into()))?;
        let v: Value = serde_json::from_str(text)
            .map_err(|e| Error::NotJson(format!("Content not JSON: {e}")))?;
        check_canonical_numbers(&v)?;
        Ok(v)
    }

    /// Deserialize the body into `T`; wrong field types are `M_BAD_JSON`.
    pub fn json<T: DeserializeOwned>(&self) -> Result<T> {
        let v = Value::Object(self.json_object(false)?);
        serde_json::from_value(v).map_err(|e| bad_json(format!("Invalid request body: {e}")))
    }

    /// Like `json`, but an empty body is `{}` (several endpoints allow omitting it).
    pub fn json_or_empty<T: DeserializeOwned>(&self) -> Result<T> {
        let v = Value::Object(self.json_object(true)?);
        serde_json::from_value(v).map_err(|e| bad_json(format!("Invalid request body: {e}")))
    }
}

pub fn check_canonical_numbers(v: &Value) -> Result<()> {
    match v {
        Value::Number(n) => {
            let ok = match n.as_i64() {
                Some(i) => (-CANONICAL_INT_MAX..=CANONICAL_INT_MAX).contains(&i),
                // u64 beyond i64, or a float: floats are not canonical JSON either, but
                // clients send them in account data (e.g. m.tag order), so only
                // integers out of range are refused.
                // A literal too big for i64/u64 arrives as an integral f64: refuse it too.
                None => n
                    .as_f64()
                    .is_some_and(|f| f.fract() != 0.0 || f.abs() <= CANONICAL_INT_MAX as f64),
            };
            if ok { Ok(()) } else { Err(bad_json(format!("JSON integer out of range: {n}"))) }
        }
        Value::Array(a) => a.iter().try_for_each(check_canonical_numbers),
        Value::Object(o) => o.values().try_for_each(check_canonical_numbers),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn canonical_range() {
        assert!(
            check_canonical_numbers(&json!({"a": [9007199254740991i64, -9007199254740991i64]}))
                .is_ok()
        );
        assert!(check_canonical_numbers(&json!({"a": 9007199254740992i64})).is_err());
        assert!(check_canonical_numbers(&json!([-9007199254740992i64])).is_err());
        assert!(check_canonical_numbers(&json!({"x": {"y": u64::MAX}})).is_err());
        assert!(check_canonical_numbers(&json!({"order": 0.5})).is_ok());
        let huge: Value = serde_json::from_str("[123456789012345678901234567890]").expect("json");
        assert!(check_canonical_numbers(&huge).is_err());
    }
}
