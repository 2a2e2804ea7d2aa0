//! Complement: TestProfileDisplayName and TestProfileAvatarURL
//! (tests/csapi/apidoc_profile_displayname_test.go, apidoc_profile_avatar_url_test.go).

use glia_harness::Deployment;
use glia_harness::client::unique_localpart;
use serde_json::json;

use crate::{cs, server_name};

const AVATAR_URL: &str = "mxc://example.com/SEsfnsuifSDFSSEF";

/// PUT /profile/:user_id/displayname sets my name; GET is publicly accessible.
#[tokio::test]
async fn test_profile_display_name() {
    let d = Deployment::new(1).await;
    let alice = d.register_user(0, "alice").await;
    let path = cs(&["profile", &alice.user_id, "displayname"]);

    alice.request("PUT", &path, json!({"displayname": "my_display_name"})).await.must_status(200);
    let body = alice.unauthed().get(&path).await.must_status(200);
    assert_eq!(body["displayname"], "my_display_name", "{body}");
    let body = alice.get(&path).await.must_status(200);
    assert_eq!(body["displayname"], "my_display_name", "{body}");

    // The whole profile shows it too.
    let body = alice.unauthed().get(&cs(&["profile", &alice.user_id])).await.must_status(200);
    assert_eq!(body["displayname"], "my_display_name", "{body}");
    d.destroy().await;
}

/// PUT /profile/:user_id/avatar_url sets my avatar; GET is publicly accessible.
#[tokio::test]
async fn test_profile_avatar_url() {
    let d = Deployment::new(1).await;
    let alice = d.register_user(0, "alice").await;
    let path = cs(&["profile", &alice.user_id, "avatar_url"]);

    alice.request("PUT", &path, json!({"avatar_url": AVATAR_URL})).await.must_status(200);
    let body = alice.unauthed().get(&path).await.must_status(200);
    assert_eq!(body["avatar_url"], AVATAR_URL, "{body}");

    // GET /profile/:user_id returns both fields.
    let name_path = cs(&["profile", &alice.user_id, "displayname"]);
    alice.request("PUT", &name_path, json!({"displayname": "Alice"})).await.must_status(200);
    let body = alice.unauthed().get(&cs(&["profile", &alice.user_id])).await.must_status(200);
    assert_eq!(body["avatar_url"], AVATAR_URL, "{body}");
    assert_eq!(body["displayname"], "Alice", "{body}");
    d.destroy().await;
}

/// Only the user sets their own profile; unknown users have none; values must be strings.
#[tokio::test]
async fn test_profile_display_name_errors() {
    let d = Deployment::new(1).await;
    let alice = d.register_user(0, "alice").await;
    let bob = d.register_user(0, "bob").await;
    let bob_name = cs(&["profile", &bob.user_id, "displayname"]);
    let bob_avatar = cs(&["profile", &bob.user_id, "avatar_url"]);

    bob.request("PUT", &bob_name, json!({"displayname": "Bob"})).await.must_status(200);

    // Setting another user's profile is forbidden (M_FORBIDDEN), and changes nothing. The
    // spec's status is 403; Synapse (1.163) answers 400 with that errcode.
    for (p, body) in [
        (&bob_name, json!({"displayname": "Mallory"})),
        (&bob_avatar, json!({"avatar_url": AVATAR_URL})),
    ] {
        let r = alice.request("PUT", p, body).await;
        if d.is_external() {
            let err = r.must_client_error();
            assert_eq!(err["errcode"], "M_FORBIDDEN", "{}: {err}", r.what);
        } else {
            r.must_error(403, "M_FORBIDDEN");
        }
    }
    // Without a token at all: 401.
    bob.unauthed()
        .request("PUT", &bob_name, json!({"displayname": "Mallory"}))
        .await
        .must_error(401, "M_MISSING_TOKEN");
    let body = alice.get(&bob_name).await.must_status(200);
    assert_eq!(body["displayname"], "Bob", "{body}");

    // A local user who does not exist has no profile: 404, M_NOT_FOUND in the spec's
    // example (Synapse 1.163 says M_UNKNOWN for the whole profile).
    let nobody = format!("@{}:{}", unique_localpart("nobody"), server_name(&alice.user_id));
    for p in [
        cs(&["profile", &nobody]),
        cs(&["profile", &nobody, "displayname"]),
        cs(&["profile", &nobody, "avatar_url"]),
    ] {
        let r = alice.get(&p).await;
        if d.is_external() {
            r.must_client_error();
            assert_eq!(r.status, 404, "{}: {}", r.what, r.text());
        } else {
            r.must_error(404, "M_NOT_FOUND");
        }
    }

    // Values of the wrong type are refused with a 400, and change nothing.
    for (p, body) in [
        (&bob_name, json!({"displayname": 42})),
        (&bob_avatar, json!({"avatar_url": ["mxc://a/b"]})),
    ] {
        let r = bob.request("PUT", p, body).await;
        r.must_client_error();
        assert_eq!(r.status, 400, "{}: {}", r.what, r.text());
    }
    let body = bob.get(&bob_name).await.must_status(200);
    assert_eq!(body["displayname"], "Bob", "{body}");
    d.destroy().await;
}
