//! Remote room aliases (Complement: TestRemoteAliasRequestsUnderstandUnicode): a client
//! resolves another server's alias through its own server, which asks with
//! `/query/directory`.

use glia_harness::Deployment;
use glia_harness::client::encode_segment;
use glia_harness::federation::FakeServer;
use serde_json::json;

use crate::support::{one_trusting, query_param, server_of, unreachable_server};

/// TestRemoteAliasRequestsUnderstandUnicode: an alias with non-ASCII characters made on
/// hs1 resolves from hs2; an unknown one is 404.
#[tokio::test]
async fn test_remote_alias_requests_understand_unicode() {
    let Some(d) = Deployment::federated(2).await else { return };
    let alice = d.register_user(0, "alice").await;
    let bob = d.register_user(1, "bob").await;
    let room = alice.must_create_room(json!({"preset": "public_chat"})).await;
    let hs1 = server_of(&alice.user_id);
    let alias = format!("#unicode\u{2318}{}:{hs1}", glia_harness::client::unique_localpart("a"));
    let path = ["_matrix", "client", "v3", "directory", "room", alias.as_str()];
    alice.must_do("PUT", &path, json!({"room_id": room})).await;
    let r = bob.get(&path).await.must_status(200);
    assert_eq!(r["room_id"], room.as_str(), "{r}");
    assert!(r["servers"].as_array().is_some_and(|s| s.iter().any(|x| x == hs1.as_str())), "{r}");
    let unknown = format!("#nope\u{2318}:{hs1}");
    bob.get(&["_matrix", "client", "v3", "directory", "room", &unknown])
        .await
        .must_error(404, "M_NOT_FOUND");
    d.destroy().await;
}

/// Against a fake server: the alias arrives percent-encoded as UTF-8 and decodes to what
/// the client asked; garbage and unreachable servers are 502; unknown is 404.
#[tokio::test]
async fn test_remote_alias_against_fake_server() {
    let Some(d) = one_trusting("").await else { return };
    let bob = d.register_user(0, "bob").await;
    let fake = FakeServer::start().await;
    let alias = format!("#caf\u{e9}\u{1F375}:{}", fake.server_name);
    fake.on("GET", "/_matrix/federation/v1/query/directory", |r| {
        (200, json!({"room_id": "!room:fake", "servers": ["fake", 3], "seen": r.uri}))
    });
    let path = ["_matrix", "client", "v3", "directory", "room", alias.as_str()];
    let r = bob.get(&path).await.must_status(200);
    assert_eq!(r, json!({"room_id": "!room:fake", "servers": ["fake"]}));
    let got = fake.received.lock().expect("received").clone();
    let q = got.iter().find(|r| r.uri.contains("query/directory")).expect("queried");
    assert_eq!(query_param(&q.uri, "room_alias").as_deref(), Some(alias.as_str()), "{}", q.uri);
    assert!(q.uri.is_ascii(), "{}", q.uri);
    fake.on("GET", "/_matrix/federation/v1/query/directory", |_| {
        (404, json!({"errcode": "M_NOT_FOUND", "error": "Room alias not found"}))
    });
    bob.get(&path).await.must_error(404, "M_NOT_FOUND");
    fake.on("GET", "/_matrix/federation/v1/query/directory", |_| (200, json!({"room_id": 5})));
    bob.get(&path).await.must_error(502, "M_UNKNOWN");
    let down = format!("#a:{}", unreachable_server());
    bob.get(&["_matrix", "client", "v3", "directory", "room", &down])
        .await
        .must_error(502, "M_UNKNOWN");
    d.destroy().await;
}

/// The other way: a fake server asks Glia for a unicode alias, percent-encoded.
#[tokio::test]
async fn test_inbound_directory_query_understands_unicode() {
    let Some(d) = one_trusting("").await else { return };
    let alice = d.register_user(0, "alice").await;
    let room = alice
        .must_do("POST", &["_matrix", "client", "v3", "createRoom"], json!({}))
        .await["room_id"]
        .as_str()
        .expect("room_id")
        .to_string();
    let dest = server_of(&alice.user_id);
    let alias = format!("#\u{00fc}ber\u{1F980}:{dest}");
    alice
        .must_do(
            "PUT",
            &["_matrix", "client", "v3", "directory", "room", &alias],
            json!({"room_id": room}),
        )
        .await;
    let fake = FakeServer::start().await;
    let path =
        format!("/_matrix/federation/v1/query/directory?room_alias={}", encode_segment(&alias));
    let r = fake.request(&d.hs(0).base_url, &dest, "GET", &path, None).await.must_status(200);
    assert_eq!(r["room_id"], room.as_str(), "{r}");
    d.destroy().await;
}
