//! Who may call the admin API: nobody without a token (401), no non-admin anywhere (403,
//! before the request is even looked at), and admins get 404 for users and rooms that do
//! not exist.

use glia_harness::Deployment;
use glia_harness::client::unique_localpart;
use serde_json::{Value, json};

use crate::{adm, admin, cs, server_name};

/// Every admin endpoint, as (method, path, body), about `user` and `room`.
fn endpoints(user: &str, room: &str) -> Vec<(&'static str, Vec<String>, Value)> {
    let p = |parts: &[&str]| {
        let mut v = vec!["_synapse".to_string(), "admin".to_string()];
        v.extend(parts.iter().map(|s| s.to_string()));
        v
    };
    vec![
        ("GET", p(&["v2", "users"]), Value::Null),
        ("GET", p(&["v3", "users"]), Value::Null),
        ("GET", p(&["v2", "users", user]), Value::Null),
        ("PUT", p(&["v2", "users", user]), json!({"displayname": "x"})),
        ("POST", p(&["v1", "deactivate", user]), json!({})),
        ("POST", p(&["v1", "reset_password", user]), json!({"new_password": "pw"})),
        ("GET", p(&["v1", "whois", user]), Value::Null),
        ("GET", p(&["v1", "users", user, "admin"]), Value::Null),
        ("PUT", p(&["v1", "users", user, "admin"]), json!({"admin": true})),
        ("GET", p(&["v1", "users", user, "joined_rooms"]), Value::Null),
        ("GET", p(&["v2", "users", user, "devices"]), Value::Null),
        ("POST", p(&["v2", "users", user, "devices"]), json!({"device_id": "X"})),
        ("GET", p(&["v2", "users", user, "devices", "X"]), Value::Null),
        ("PUT", p(&["v2", "users", user, "devices", "X"]), json!({"display_name": "x"})),
        ("DELETE", p(&["v2", "users", user, "devices", "X"]), json!({})),
        ("POST", p(&["v2", "users", user, "delete_devices"]), json!({"devices": ["X"]})),
        ("GET", p(&["v1", "users", user, "override_ratelimit"]), Value::Null),
        ("POST", p(&["v1", "users", user, "override_ratelimit"]), json!({})),
        ("DELETE", p(&["v1", "users", user, "override_ratelimit"]), json!({})),
        ("GET", p(&["v1", "rooms"]), Value::Null),
        ("GET", p(&["v1", "rooms", room]), Value::Null),
        ("DELETE", p(&["v1", "rooms", room]), json!({})),
        ("GET", p(&["v1", "rooms", room, "members"]), Value::Null),
        ("GET", p(&["v1", "rooms", room, "state"]), Value::Null),
        ("GET", p(&["v1", "rooms", room, "block"]), Value::Null),
        ("PUT", p(&["v1", "rooms", room, "block"]), json!({"block": true})),
        ("DELETE", p(&["v2", "rooms", room]), json!({})),
        ("GET", p(&["v2", "rooms", room, "delete_status"]), Value::Null),
        ("GET", p(&["v2", "rooms", "delete_status", "abc"]), Value::Null),
        ("GET", p(&["v1", "registration_tokens"]), Value::Null),
        ("POST", p(&["v1", "registration_tokens", "new"]), json!({})),
        ("GET", p(&["v1", "registration_tokens", "abc"]), Value::Null),
        ("PUT", p(&["v1", "registration_tokens", "abc"]), json!({})),
        ("DELETE", p(&["v1", "registration_tokens", "abc"]), json!({})),
        ("GET", p(&["v1", "users", user, "media"]), Value::Null),
        ("DELETE", p(&["v1", "users", user, "media"]), json!({})),
        ("GET", p(&["v1", "media", "example.org", "abc"]), Value::Null),
        ("DELETE", p(&["v1", "media", "example.org", "abc"]), json!({})),
        ("POST", p(&["v1", "media", "delete", "?before_ts=99999999999999"]), json!({})),
        ("POST", p(&["v1", "send_server_notice"]), json!({"user_id": user, "content": {}})),
        ("PUT", p(&["v1", "send_server_notice", "t1"]), json!({"user_id": user, "content": {}})),
    ]
}

/// A non-admin gets 403 `M_FORBIDDEN` from every admin endpoint, even for its own account,
/// and nothing changes; without a token it is 401.
#[tokio::test]
async fn test_non_admin_is_refused_everywhere() {
    let d = Deployment::new(1).await;
    let bob = d.register_user(0, "bob").await;
    let room = {
        let body = bob.request("POST", &cs(&["createRoom"]), json!({})).await.must_status(200);
        body["room_id"].as_str().expect("room_id").to_string()
    };
    let victim = d.register_user(0, "victim").await;
    for target in [&victim.user_id, &bob.user_id] {
        for (method, path, body) in endpoints(target, &room) {
            let path: Vec<&str> = path.iter().map(String::as_str).collect();
            let r = bob.request(method, &path, body.clone()).await;
            // whois is the one endpoint users may call on themselves.
            if target == &bob.user_id && path.contains(&"whois") {
                r.must_status(200);
                continue;
            }
            r.must_error(403, "M_FORBIDDEN");
            let anon = bob.unauthed().request(method, &path, body).await;
            anon.must_error(401, "M_MISSING_TOKEN");
        }
    }
    // Nothing happened: the victim still works, bob is still no admin, the room is there.
    victim.get(&cs(&["account", "whoami"])).await.must_status(200);
    let joined = bob.get(&cs(&["joined_rooms"])).await.must_status(200);
    assert!(joined["joined_rooms"].as_array().expect("rooms").iter().any(|r| r == room.as_str()));
    d.destroy().await;
}

/// Admins asking about users and rooms the server does not have get 404 `M_NOT_FOUND`.
#[tokio::test]
async fn test_unknown_users_and_rooms() {
    let d = Deployment::new(1).await;
    let Some(admin) = admin(&d).await else { return };
    let server = server_name(&admin.user_id).to_string();
    let nobody = format!("@{}:{server}", unique_localpart("nobody"));
    let nowhere = format!("!{}:{server}", unique_localpart("nowhere").replace('-', ""));
    let cases: Vec<(&str, Vec<&str>, Value)> = vec![
        ("GET", adm(&["v2", "users", &nobody]), Value::Null),
        ("POST", adm(&["v1", "deactivate", &nobody]), json!({})),
        ("POST", adm(&["v1", "reset_password", &nobody]), json!({"new_password": "pw"})),
        ("GET", adm(&["v2", "users", &nobody, "devices"]), Value::Null),
        ("GET", adm(&["v2", "users", &nobody, "devices", "X"]), Value::Null),
        ("GET", adm(&["v1", "users", &nobody, "override_ratelimit"]), Value::Null),
        ("GET", adm(&["v1", "users", &nobody, "media"]), Value::Null),
        ("GET", adm(&["v1", "media", &server, "no-such-media"]), Value::Null),
        ("DELETE", adm(&["v1", "media", &server, "no-such-media"]), json!({})),
        ("POST", adm(&["v1", "users", &nobody, "override_ratelimit"]), json!({})),
        (
            "POST",
            adm(&["v1", "send_server_notice"]),
            json!({"user_id": nobody, "content": {"body": "x"}}),
        ),
        ("GET", adm(&["v1", "rooms", &nowhere]), Value::Null),
        ("GET", adm(&["v1", "rooms", &nowhere, "members"]), Value::Null),
        ("GET", adm(&["v1", "rooms", &nowhere, "state"]), Value::Null),
        ("GET", adm(&["v2", "rooms", &nowhere, "delete_status"]), Value::Null),
        ("GET", adm(&["v2", "rooms", "delete_status", "no-such-delete"]), Value::Null),
        ("GET", adm(&["v1", "registration_tokens", "no-such-token"]), Value::Null),
    ];
    for (method, path, body) in cases {
        admin.request(method, &path, body).await.must_error(404, "M_NOT_FOUND");
    }
    // Not 404, as in Synapse: unknown users are simply not admins and in no rooms.
    let flag = admin.get(&adm(&["v1", "users", &nobody, "admin"])).await.must_status(200);
    assert_eq!(flag, json!({"admin": false}));
    // Making an unknown user an admin is 404 on Glia; Synapse answers 200 and changes
    // nothing, so this is checked on Glia only.
    if !d.is_external() {
        let path = adm(&["v1", "users", &nobody, "admin"]);
        admin.request("PUT", &path, json!({"admin": true})).await.must_error(404, "M_NOT_FOUND");
    }
    d.destroy().await;
}
