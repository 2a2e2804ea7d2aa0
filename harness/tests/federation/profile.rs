//! Profiles across servers (Complement: TestOutboundFederationProfile,
//! TestInboundFederationProfile): a client asks its own server for a remote user's profile,
//! which asks the user's server with `/query/profile`.

use glia_harness::Deployment;
use glia_harness::federation::FakeServer;
use serde_json::json;

use crate::support::{hanging_server, one_trusting, query_param, server_of, unreachable_server};

fn profile_path<'a>(user_id: &'a str, field: Option<&'a str>) -> Vec<&'a str> {
    let mut p = vec!["_matrix", "client", "v3", "profile", user_id];
    p.extend(field);
    p
}

/// TestOutboundFederationProfile (Glia to Glia): hs2 sees hs1's user's display name and
/// avatar, as a whole and field by field; an unknown hs1 user is 404 M_NOT_FOUND.
#[tokio::test]
async fn test_outbound_federation_profile() {
    let Some(d) = Deployment::federated(2).await else { return };
    let alice = d.register_user(0, "alice").await;
    let bob = d.register_user(1, "bob").await;
    for (field, value) in [("displayname", "Alice \u{1F30D}"), ("avatar_url", "mxc://a/b")] {
        alice
            .must_do("PUT", &profile_path(&alice.user_id, Some(field)), json!({field: value}))
            .await;
    }
    let whole = bob.get(&profile_path(&alice.user_id, None)).await.must_status(200);
    assert_eq!(whole, json!({"displayname": "Alice \u{1F30D}", "avatar_url": "mxc://a/b"}));
    let r = bob.get(&profile_path(&alice.user_id, Some("displayname"))).await.must_status(200);
    assert_eq!(r, json!({"displayname": "Alice \u{1F30D}"}));
    let r = bob.get(&profile_path(&alice.user_id, Some("avatar_url"))).await.must_status(200);
    assert_eq!(r, json!({"avatar_url": "mxc://a/b"}));
    let nobody = format!("@nobody:{}", server_of(&alice.user_id));
    bob.get(&profile_path(&nobody, None)).await.must_error(404, "M_NOT_FOUND");
    bob.get(&profile_path(&nobody, Some("displayname"))).await.must_error(404, "M_NOT_FOUND");
    d.destroy().await;
}

/// TestOutboundFederationProfile against a fake server: the request is a signed
/// `/query/profile` with the user ID percent-encoded; only string fields are passed on.
#[tokio::test]
async fn test_outbound_federation_profile_from_fake_server() {
    let Some(d) = one_trusting("").await else { return };
    let bob = d.register_user(0, "bob").await;
    let fake = FakeServer::start().await;
    let remote = format!("@\u{e9}ve:{}", fake.server_name);
    fake.on("GET", "/_matrix/federation/v1/query/profile", |_| {
        (200, json!({"displayname": "Eve", "avatar_url": 7, "extra": "dropped"}))
    });
    let r = bob.get(&profile_path(&remote, None)).await.must_status(200);
    assert_eq!(r, json!({"displayname": "Eve"}));
    let r = bob.get(&profile_path(&remote, Some("avatar_url"))).await.must_status(200);
    assert_eq!(r, json!({}));
    let got = fake.received.lock().expect("received").clone();
    let q = got.iter().find(|r| r.uri.contains("query/profile")).expect("queried");
    assert_eq!(query_param(&q.uri, "user_id").as_deref(), Some(remote.as_str()), "{}", q.uri);
    assert!(!q.uri.contains('\u{e9}'), "non-ASCII is percent-encoded: {}", q.uri);
    let auth = q.authorization.as_deref().unwrap_or("");
    assert!(auth.starts_with("X-Matrix ") && auth.contains(&fake.server_name), "{auth}");
    // The remote's 404 is the client's 404.
    fake.on("GET", "/_matrix/federation/v1/query/profile", |_| {
        (404, json!({"errcode": "M_NOT_FOUND", "error": "no such user"}))
    });
    bob.get(&profile_path(&remote, None)).await.must_error(404, "M_NOT_FOUND");
    d.destroy().await;
}

/// A remote server that answers garbage, does not exist, or hangs: a clean 502 M_UNKNOWN
/// (as Synapse: "Failed to fetch profile"), and the server goes on serving.
#[tokio::test]
async fn test_outbound_federation_profile_failures() {
    let Some(d) = one_trusting("").await else { return };
    let bob = d.register_user(0, "bob").await;
    let fake = FakeServer::start().await;
    fake.on("GET", "/_matrix/federation/v1/query/profile", |_| (200, json!(["not", "an object"])));
    let garbage = format!("@x:{}", fake.server_name);
    bob.get(&profile_path(&garbage, None)).await.must_error(502, "M_UNKNOWN");
    fake.on("GET", "/_matrix/federation/v1/query/profile", |_| (500, json!({})));
    bob.get(&profile_path(&garbage, None)).await.must_error(502, "M_UNKNOWN");
    let down = format!("@x:{}", unreachable_server());
    bob.get(&profile_path(&down, None)).await.must_error(502, "M_UNKNOWN");
    let hung = format!("@x:{}", hanging_server().await);
    bob.get(&profile_path(&hung, Some("displayname"))).await.must_error(502, "M_UNKNOWN");
    bob.get(&profile_path("not-a-user-id", None)).await.must_error(400, "M_INVALID_PARAM");
    d.destroy().await;
}

/// `federation_domain_whitelist`: a profile on a server not on the list is refused with
/// 403 M_FORBIDDEN before anything is sent to it.
#[tokio::test]
async fn test_outbound_profile_respects_whitelist() {
    let fake = FakeServer::start().await;
    let Some(d) = one_trusting("federation_domain_whitelist: ['listed.example']\n").await else {
        return;
    };
    let bob = d.register_user(0, "bob").await;
    fake.on("GET", "/", |_| (200, json!({"displayname": "x"})));
    let remote = format!("@x:{}", fake.server_name);
    bob.get(&profile_path(&remote, None)).await.must_error(403, "M_FORBIDDEN");
    assert!(fake.received.lock().expect("received").is_empty(), "nothing reached the server");
    d.destroy().await;
}
