//! `glia register-user`: create an account on a running server through shared-secret
//! registration, exactly as Synapse's `register_new_matrix_user` does.

use http::{Method, StatusCode};
use serde_json::{Value, json};

use super::http_client::{parse_url, request};
use crate::api::admin::register::mac;

pub struct Options {
    pub url: String,
    pub shared_secret: String,
    pub user: String,
    pub password: String,
    pub admin: bool,
}

/// Returns the new user's ID.
pub async fn register(o: &Options) -> Result<String, String> {
    let url = parse_url(&o.url)?;
    let path = "/_synapse/admin/v1/register";
    let (status, body) = request(&url, Method::GET, path, None).await?;
    if status != StatusCode::OK {
        return Err(format!("getting a nonce failed: {status} {body}"));
    }
    let nonce = body["nonce"].as_str().ok_or("the server sent no nonce")?.to_string();
    let mac = hex::encode(mac(&o.shared_secret, &nonce, &o.user, &o.password, o.admin, None));
    let req = json!({
        "nonce": nonce,
        "username": o.user,
        "password": o.password,
        "admin": o.admin,
        "mac": mac,
    });
    let (status, body) = request(&url, Method::POST, path, Some(&req)).await?;
    if status != StatusCode::OK {
        let msg = body.get("error").and_then(Value::as_str).unwrap_or("");
        return Err(format!("registration failed: {status} {msg}"));
    }
    Ok(body["user_id"].as_str().unwrap_or_default().to_string())
}
