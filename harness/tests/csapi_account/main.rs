//! Client-server API scenarios about a user's own account and settings: devices, password,
//! deactivation, profile, account data, filters and push rules. Named after the Complement
//! tests they mirror; run against in-process Glia by default, `GLIA_HARNESS_URL=...`
//! runs them against another server (Synapse is the reference).

mod account_data;
mod deactivate;
mod devices;
mod filter;
mod password;
mod profile;
mod push_rules;
mod pushers;

use glia_harness::{Client, Response};
use serde_json::{Value, json};

/// `/_matrix/client/v3/<rest...>` as path segments for [`Client::request`].
pub fn cs<'a>(rest: &[&'a str]) -> Vec<&'a str> {
    let mut p = vec!["_matrix", "client", "v3"];
    p.extend_from_slice(rest);
    p
}

/// The server name part of a user ID.
pub fn server_name(user_id: &str) -> &str {
    user_id.split_once(':').map(|(_, s)| s).expect("user ID has a server name")
}

/// The localpart of a user ID.
pub fn localpart(user_id: &str) -> &str {
    user_id
        .trim_start_matches('@')
        .split_once(':')
        .map(|(l, _)| l)
        .expect("user ID has a localpart")
}

/// Log `c`'s user in again on a new device, returning a client for that device.
pub async fn login_device(c: &Client, device_id: &str, display_name: &str) -> Client {
    let extra = json!({"device_id": device_id, "initial_device_display_name": display_name});
    let body = c.unauthed().login(&c.user_id, &c.password, extra).await.must_status(200);
    assert_eq!(body["device_id"], device_id, "login kept the requested device ID: {body}");
    c.logged_in(&body, &c.password)
}

/// Assert a user-interactive-auth 401 that offers a flow of just `m.login.password`, and
/// return its session ID.
#[track_caller]
pub fn password_challenge(r: &Response) -> String {
    let body = r.must_status(401);
    let flows =
        body["flows"].as_array().unwrap_or_else(|| panic!("{}: no flows in {body}", r.what));
    assert!(
        flows.iter().any(|f| f["stages"] == json!(["m.login.password"])),
        "{}: no m.login.password flow in {body}",
        r.what
    );
    body["session"]
        .as_str()
        .unwrap_or_else(|| panic!("{}: no session in {body}", r.what))
        .to_string()
}

/// Assert a failed UIA attempt: 401 with `M_FORBIDDEN` and the flows still offered.
#[track_caller]
pub fn uia_failed(r: &Response) -> Value {
    let body = r.must_error(401, "M_FORBIDDEN");
    assert!(body["flows"].is_array(), "{}: a failed stage still lists the flows: {body}", r.what);
    body
}

/// `whoami` with `c`'s token must be refused as an unknown token.
pub async fn must_be_logged_out(c: &Client) {
    c.get(&cs(&["account", "whoami"])).await.must_error(401, "M_UNKNOWN_TOKEN");
}

/// `whoami` with `c`'s token must still work, for `c`'s user.
pub async fn must_be_logged_in(c: &Client) {
    let body = c.get(&cs(&["account", "whoami"])).await.must_status(200);
    assert_eq!(body["user_id"], c.user_id.as_str(), "{body}");
}
