//! Inbound request authentication (spec: server-server API, "Request Authentication"):
//! X-Matrix signatures checked against keys Glia fetches from the origin; anything
//! unsigned, forged or misdirected is 401 before any work is done. Also the first
//! authenticated endpoints, query/profile and query/directory.

use glia_harness::federation::{FakeServer, trusting_config_yaml};
use glia_harness::{Deployment, HsConfig};
use serde_json::json;

async fn deployment() -> Option<Deployment> {
    Deployment::with_config(
        1,
        HsConfig { extra_yaml: trusting_config_yaml(), ..Default::default() },
    )
    .await
}

fn server_name(user_id: &str) -> String {
    user_id.split_once(':').map(|(_, s)| s.to_string()).expect("server name")
}

/// TestInboundFederationProfile: a signed profile query is answered; Glia fetched the
/// fake server's key over TLS to do so.
#[tokio::test]
async fn test_inbound_federation_profile() {
    let Some(d) = deployment().await else { return };
    let alice = d.register_user(0, "alice").await;
    alice
        .must_do(
            "PUT",
            &["_matrix", "client", "v3", "profile", &alice.user_id, "displayname"],
            json!({"displayname": "Alice A."}),
        )
        .await;
    let fake = FakeServer::start().await;
    let dest = server_name(&alice.user_id);
    let path = format!(
        "/_matrix/federation/v1/query/profile?user_id={}",
        glia_harness::client::encode_segment(&alice.user_id)
    );
    let r = fake.request(&d.hs(0).base_url, &dest, "GET", &path, None).await;
    assert_eq!(r.must_status(200)["displayname"], "Alice A.");
    let fetched = fake
        .received
        .lock()
        .expect("received")
        .iter()
        .any(|r| r.uri.starts_with("/_matrix/key/v2/server"));
    assert!(fetched, "Glia fetched the origin's key from the origin");
    // One field only.
    let r = fake
        .request(&d.hs(0).base_url, &dest, "GET", &format!("{path}&field=avatar_url"), None)
        .await;
    assert!(r.must_status(200).get("displayname").is_none());
    // Unknown local user: 404.
    let path = format!(
        "/_matrix/federation/v1/query/profile?user_id=%40nobody%3A{}",
        glia_harness::client::encode_segment(&dest)
    );
    fake.request(&d.hs(0).base_url, &dest, "GET", &path, None).await.must_error(404, "M_NOT_FOUND");
    d.destroy().await;
}

/// Unsigned, forged and misdirected requests are all 401 M_UNAUTHORIZED.
#[tokio::test]
async fn test_inbound_federation_rejects_bad_signatures() {
    let Some(d) = deployment().await else { return };
    let alice = d.register_user(0, "alice").await;
    let fake = FakeServer::start().await;
    let other = FakeServer::start().await;
    let dest = server_name(&alice.user_id);
    let path = format!(
        "/_matrix/federation/v1/query/profile?user_id={}",
        glia_harness::client::encode_segment(&alice.user_id)
    );
    let base = d.hs(0).base_url.clone();
    // No Authorization header.
    fake.raw_request(&base, "GET", &path, None, None).await.must_error(401, "M_UNAUTHORIZED");
    // Garbage header.
    fake.raw_request(&base, "GET", &path, None, Some("X-Matrix nonsense".into()))
        .await
        .must_error(401, "M_UNAUTHORIZED");
    // Signed by another server's key but claiming to be `fake`.
    let forged =
        other.x_matrix("GET", &path, &dest, None).replace(&other.server_name, &fake.server_name);
    fake.raw_request(&base, "GET", &path, None, Some(forged))
        .await
        .must_error(401, "M_UNAUTHORIZED");
    // Signed for a different URI than the one requested.
    let wrong_uri =
        fake.x_matrix("GET", "/_matrix/federation/v1/query/profile?user_id=%40x%3Ay", &dest, None);
    fake.raw_request(&base, "GET", &path, None, Some(wrong_uri))
        .await
        .must_error(401, "M_UNAUTHORIZED");
    // Meant for another destination.
    let misdirected = fake.x_matrix("GET", &path, "elsewhere.example", None);
    fake.raw_request(&base, "GET", &path, None, Some(misdirected))
        .await
        .must_error(401, "M_UNAUTHORIZED");
    // A correctly signed request still works afterwards.
    fake.request(&base, &dest, "GET", &path, None).await.must_status(200);
    d.destroy().await;
}

/// TestInboundFederationDirectory (query/directory): a local alias resolves.
#[tokio::test]
async fn test_inbound_federation_directory() {
    let Some(d) = deployment().await else { return };
    let alice = d.register_user(0, "alice").await;
    let local = glia_harness::client::unique_localpart("fed");
    let r = alice
        .must_do(
            "POST",
            &["_matrix", "client", "v3", "createRoom"],
            json!({"preset": "public_chat", "room_alias_name": local}),
        )
        .await;
    let room = r["room_id"].as_str().expect("room").to_string();
    let dest = server_name(&alice.user_id);
    let fake = FakeServer::start().await;
    let alias = format!("#{local}:{dest}");
    let path = format!(
        "/_matrix/federation/v1/query/directory?room_alias={}",
        glia_harness::client::encode_segment(&alias)
    );
    let body = fake.request(&d.hs(0).base_url, &dest, "GET", &path, None).await.must_status(200);
    assert_eq!(body["room_id"], room.as_str());
    assert!(
        body["servers"].as_array().is_some_and(|s| s.iter().any(|x| x == dest.as_str())),
        "{body}"
    );
    d.destroy().await;
}

/// `federation_domain_whitelist`: a correctly signed request from a server not on the list
/// is 403 M_FORBIDDEN, refused before its key is even fetched; a listed server is served.
#[tokio::test]
async fn test_federation_domain_whitelist_refuses_others() {
    let listed = FakeServer::start().await;
    let unlisted = FakeServer::start().await;
    let yaml = format!(
        "{}federation_domain_whitelist: ['{}']\n",
        trusting_config_yaml(),
        listed.server_name
    );
    let cfg = HsConfig { extra_yaml: yaml, ..Default::default() };
    let Some(d) = Deployment::with_config(1, cfg).await else { return };
    let alice = d.register_user(0, "alice").await;
    let dest = server_name(&alice.user_id);
    let path = format!(
        "/_matrix/federation/v1/query/profile?user_id={}",
        glia_harness::client::encode_segment(&alice.user_id)
    );
    let base = d.hs(0).base_url.clone();
    unlisted.request(&base, &dest, "GET", &path, None).await.must_error(403, "M_FORBIDDEN");
    assert!(
        unlisted.received.lock().expect("received").is_empty(),
        "Glia did not contact the unlisted server"
    );
    listed.request(&base, &dest, "GET", &path, None).await.must_status(200);
    d.destroy().await;
}
