//! The public room directory over federation: `GET`/`POST /_matrix/federation/v1/
//! publicRooms` served to other servers, and a client's `/publicRooms?server=` asking them.

use glia_harness::federation::FakeServer;
use glia_harness::{Deployment, HsConfig};
use serde_json::{Value, json};

use crate::support::{one_trusting, server_of, unreachable_server};

fn has_room(body: &Value, room: &str) -> bool {
    body["chunk"].as_array().is_some_and(|c| c.iter().any(|r| r["room_id"] == room))
}

async fn public_room(c: &glia_harness::Client, name: &str) -> String {
    c.must_create_room(json!({"preset": "public_chat", "visibility": "public", "name": name})).await
}

const OPEN: &str = "allow_public_rooms_over_federation: true\n";

/// hs2's user lists hs1's public rooms, plainly and with a search term (sent as POST).
#[tokio::test]
async fn test_remote_public_rooms() {
    let cfg = HsConfig { extra_yaml: OPEN.into(), ..Default::default() };
    let Some(d) = Deployment::federated_with(2, cfg).await else { return };
    let alice = d.register_user(0, "alice").await;
    let bob = d.register_user(1, "bob").await;
    let room = public_room(&alice, "Llama Gardening").await;
    let hs1 = server_of(&alice.user_id);
    let server = format!("?server={}", glia_harness::client::encode_segment(&hs1));
    let r = bob.get(&["_matrix", "client", "v3", "publicRooms", &server]).await.must_status(200);
    assert!(has_room(&r, &room), "{r}");
    let chunk = r["chunk"].as_array().expect("chunk");
    let entry = chunk.iter().find(|c| c["room_id"] == room.as_str()).expect("entry");
    assert_eq!(entry["name"], "Llama Gardening");
    let search = |term: &str| json!({"filter": {"generic_search_term": term}, "limit": 10});
    let path = ["_matrix", "client", "v3", "publicRooms", &server];
    let r = bob.must_do("POST", &path, search("llama")).await;
    assert!(has_room(&r, &room), "{r}");
    let r = bob.must_do("POST", &path, search("zebra")).await;
    assert!(!has_room(&r, &room), "{r}");
    d.destroy().await;
}

/// A fake server's signed GET and POST are answered; unsigned ones are 401.
#[tokio::test]
async fn test_inbound_federation_public_rooms() {
    let Some(d) = one_trusting(OPEN).await else { return };
    let alice = d.register_user(0, "alice").await;
    let room = public_room(&alice, "Otter Club").await;
    let dest = server_of(&alice.user_id);
    let base = d.hs(0).base_url.clone();
    let fake = FakeServer::start().await;
    let path = "/_matrix/federation/v1/publicRooms";
    let r = fake.request(&base, &dest, "GET", &format!("{path}?limit=5"), None).await;
    assert!(has_room(&r.must_status(200), &room));
    let body = json!({"filter": {"generic_search_term": "otter"}});
    let r = fake.request(&base, &dest, "POST", path, Some(body)).await.must_status(200);
    assert!(has_room(&r, &room), "{r}");
    let body = json!({"filter": {"generic_search_term": "badger"}});
    let r = fake.request(&base, &dest, "POST", path, Some(body)).await.must_status(200);
    assert!(!has_room(&r, &room), "{r}");
    fake.raw_request(&base, "GET", path, None, None).await.must_error(401, "M_UNAUTHORIZED");
    fake.request(&base, &dest, "POST", path, Some(json!({"limit": "ten"})))
        .await
        .must_error(400, "M_BAD_JSON");
    fake.request(&base, &dest, "GET", &format!("{path}?limit=x"), None)
        .await
        .must_error(400, "M_INVALID_PARAM");
    d.destroy().await;
}

/// A remote directory that answers garbage or is down is 502; the remote's answer is
/// passed on when it is well-formed.
#[tokio::test]
async fn test_remote_public_rooms_failures() {
    let Some(d) = one_trusting("").await else { return };
    let bob = d.register_user(0, "bob").await;
    let fake = FakeServer::start().await;
    fake.on("GET", "/_matrix/federation/v1/publicRooms", |_| {
        (200, json!({"chunk": [{"room_id": "!a:fake", "num_joined_members": 3}]}))
    });
    let q = |s: &str| format!("?server={}", glia_harness::client::encode_segment(s));
    let r = bob
        .get(&["_matrix", "client", "v3", "publicRooms", &q(&fake.server_name)])
        .await
        .must_status(200);
    assert_eq!(r["chunk"][0]["room_id"], "!a:fake");
    fake.on("GET", "/_matrix/federation/v1/publicRooms", |_| (200, json!({"chunk": "no"})));
    bob.get(&["_matrix", "client", "v3", "publicRooms", &q(&fake.server_name)])
        .await
        .must_error(502, "M_UNKNOWN");
    bob.get(&["_matrix", "client", "v3", "publicRooms", &q(&unreachable_server())])
        .await
        .must_error(502, "M_UNKNOWN");
    bob.get(&["_matrix", "client", "v3", "publicRooms", &q("bad server name!")])
        .await
        .must_error(400, "M_INVALID_PARAM");
    d.destroy().await;
}

/// By default (as in Synapse) other servers may not list the directory: 403 M_FORBIDDEN,
/// which a client asking through another Glia sees too.
#[tokio::test]
async fn test_public_rooms_over_federation_off_by_default() {
    let Some(d) = Deployment::federated(2).await else { return };
    let alice = d.register_user(0, "alice").await;
    let bob = d.register_user(1, "bob").await;
    public_room(&alice, "Hidden from other servers").await;
    let q = format!("?server={}", glia_harness::client::encode_segment(&server_of(&alice.user_id)));
    bob.get(&["_matrix", "client", "v3", "publicRooms", &q]).await.must_error(403, "M_FORBIDDEN");
    let fake = FakeServer::start().await;
    let dest = server_of(&alice.user_id);
    let path = "/_matrix/federation/v1/publicRooms";
    fake.request(&d.hs(0).base_url, &dest, "GET", path, None).await.must_error(403, "M_FORBIDDEN");
    d.destroy().await;
}
