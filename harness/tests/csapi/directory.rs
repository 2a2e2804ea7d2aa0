//! TestRoomAlias, TestRoomCanonicalAlias and TestPublicRooms.

use glia_harness::client::unique_localpart;
use glia_harness::{Client, Deployment};
use serde_json::{Value, json};

fn server_of(user_id: &str) -> &str {
    user_id.split_once(':').map(|(_, s)| s).unwrap_or_default()
}

async fn create_room(c: &Client, body: Value) -> String {
    let r = c.must_do("POST", &["_matrix", "client", "v3", "createRoom"], body).await;
    r["room_id"].as_str().expect("room_id").to_string()
}

/// TestRoomAlias: create, resolve, list, conflict, delete; others cannot delete it.
#[tokio::test]
async fn test_room_alias() {
    let d = Deployment::new(1).await;
    let alice = d.register_user(0, "alice").await;
    let bob = d.register_user(0, "bob").await;
    let room = create_room(&alice, json!({"preset": "public_chat"})).await;
    let alias = format!("#{}:{}", unique_localpart("alias"), server_of(&alice.user_id));
    let path = ["_matrix", "client", "v3", "directory", "room", &alias];
    alice.must_do("PUT", &path, json!({"room_id": room})).await;
    let got = d.client(0).get(&path).await.must_status(200);
    assert_eq!(got["room_id"], room.as_str());
    assert!(got["servers"].as_array().is_some_and(|s| !s.is_empty()), "{got}");
    let listed = alice
        .must_do("GET", &["_matrix", "client", "v3", "rooms", &room, "aliases"], Value::Null)
        .await;
    assert!(listed["aliases"].as_array().is_some_and(|a| a.contains(&json!(alias))), "{listed}");
    let r = alice.request("PUT", &path, json!({"room_id": room})).await;
    assert_eq!(r.status, 409, "an existing alias is a conflict: {}", r.text());
    bob.must_do("POST", &["_matrix", "client", "v3", "join", &room], json!({})).await;
    bob.request("DELETE", &path, Value::Null).await.must_error(403, "M_FORBIDDEN");
    alice.must_do("DELETE", &path, Value::Null).await;
    d.client(0).get(&path).await.must_error(404, "M_NOT_FOUND");
    // Joining by alias works while it exists.
    let alias2 = format!("#{}:{}", unique_localpart("join"), server_of(&alice.user_id));
    alice
        .must_do(
            "PUT",
            &["_matrix", "client", "v3", "directory", "room", &alias2],
            json!({"room_id": room}),
        )
        .await;
    let carol = d.register_user(0, "carol").await;
    let joined =
        carol.must_do("POST", &["_matrix", "client", "v3", "join", &alias2], json!({})).await;
    assert_eq!(joined["room_id"], room.as_str());
    d.destroy().await;
}

/// TestRoomCanonicalAlias: m.room.canonical_alias must name aliases that point at the room.
#[tokio::test]
async fn test_room_canonical_alias() {
    let d = Deployment::new(1).await;
    let alice = d.register_user(0, "alice").await;
    let room = create_room(&alice, json!({"preset": "public_chat"})).await;
    let other = create_room(&alice, json!({"preset": "public_chat"})).await;
    let server = server_of(&alice.user_id).to_string();
    let mine = format!("#{}:{server}", unique_localpart("mine"));
    let theirs = format!("#{}:{server}", unique_localpart("theirs"));
    alice
        .must_do(
            "PUT",
            &["_matrix", "client", "v3", "directory", "room", &mine],
            json!({"room_id": room}),
        )
        .await;
    alice
        .must_do(
            "PUT",
            &["_matrix", "client", "v3", "directory", "room", &theirs],
            json!({"room_id": other}),
        )
        .await;
    let path = ["_matrix", "client", "v3", "rooms", &room, "state", "m.room.canonical_alias", ""];
    alice.must_do("PUT", &path, json!({"alias": mine})).await;
    alice.request("PUT", &path, json!({"alias": theirs})).await.must_error(400, "M_BAD_ALIAS");
    let missing = format!("#{}:{server}", unique_localpart("nowhere"));
    alice
        .request("PUT", &path, json!({"alias": mine, "alt_aliases": [missing]}))
        .await
        .must_error(400, "M_BAD_ALIAS");
    let r = alice.request("PUT", &path, json!({"alias": "not-an-alias"})).await;
    assert_eq!(r.status, 400, "{}", r.text());
    let cur = alice.must_do("GET", &path, Value::Null).await;
    assert_eq!(cur["alias"], mine.as_str());
    d.destroy().await;
}

/// TestPublicRooms: published rooms are listed with their summary and can be searched;
/// directory visibility can be read and changed.
#[tokio::test]
async fn test_public_rooms() {
    let d = Deployment::new(1).await;
    let alice = d.register_user(0, "alice").await;
    let name = unique_localpart("Garden Club");
    let public = create_room(
        &alice,
        json!({"visibility": "public", "preset": "public_chat", "name": name, "topic": "tomatoes"}),
    )
    .await;
    let private = create_room(&alice, json!({"preset": "private_chat"})).await;
    let vis = ["_matrix", "client", "v3", "directory", "list", "room"];
    let v = d
        .client(0)
        .get(&[vis[0], vis[1], vis[2], vis[3], vis[4], vis[5], &public])
        .await
        .must_status(200);
    assert_eq!(v["visibility"], "public");
    let v = d
        .client(0)
        .get(&[vis[0], vis[1], vis[2], vis[3], vis[4], vis[5], &private])
        .await
        .must_status(200);
    assert_eq!(v["visibility"], "private");

    let found = alice
        .must_do(
            "POST",
            &["_matrix", "client", "v3", "publicRooms"],
            json!({"filter": {"generic_search_term": name}}),
        )
        .await;
    let chunk = found["chunk"].as_array().expect("chunk");
    let entry =
        chunk.iter().find(|r| r["room_id"] == public.as_str()).unwrap_or_else(|| panic!("{found}"));
    assert_eq!(entry["name"], name.as_str());
    assert_eq!(entry["topic"], "tomatoes");
    assert_eq!(entry["num_joined_members"], 1);
    assert!(
        entry["world_readable"].is_boolean() && entry["guest_can_join"].is_boolean(),
        "{entry}"
    );
    assert!(!chunk.iter().any(|r| r["room_id"] == private.as_str()));

    // Unpublish: it leaves the directory.
    alice
        .must_do(
            "PUT",
            &[vis[0], vis[1], vis[2], vis[3], vis[4], vis[5], &public],
            json!({"visibility": "private"}),
        )
        .await;
    let found = alice
        .must_do(
            "POST",
            &["_matrix", "client", "v3", "publicRooms"],
            json!({"filter": {"generic_search_term": name}}),
        )
        .await;
    assert!(
        !found["chunk"].as_array().expect("chunk").iter().any(|r| r["room_id"] == public.as_str()),
        "{found}"
    );
    let list = alice
        .must_do("GET", &["_matrix", "client", "v3", "publicRooms", "?limit=1"], Value::Null)
        .await;
    assert!(list["chunk"].as_array().is_some_and(|c| c.len() <= 1), "{list}");
    d.destroy().await;
}

const PUBLIC_ROOMS: &[&str] = &["_matrix", "client", "v3", "publicRooms"];

/// `GET /publicRooms` needs an access token by default (401 M_MISSING_TOKEN), as in
/// Synapse; so does POST.
#[tokio::test]
async fn test_public_rooms_needs_auth_by_default() {
    let d = Deployment::new(1).await;
    let anon = d.client(0);
    anon.get(PUBLIC_ROOMS).await.must_error(401, "M_MISSING_TOKEN");
    anon.request("POST", PUBLIC_ROOMS, json!({})).await.must_error(401, "M_MISSING_TOKEN");
    d.destroy().await;
}

/// With `allow_public_rooms_without_auth: true` anyone may list this server's directory
/// with GET (a bad token is ignored); another server's directory, and POST, still need a
/// user.
#[tokio::test]
async fn test_public_rooms_without_auth() {
    let cfg = glia_harness::HsConfig {
        extra_yaml: "allow_public_rooms_without_auth: true\n".into(),
        ..Default::default()
    };
    let Some(d) = Deployment::with_config(1, cfg).await else { return };
    let alice = d.register_user(0, "alice").await;
    let room = alice
        .must_do(
            "POST",
            &["_matrix", "client", "v3", "createRoom"],
            json!({"visibility": "public", "preset": "public_chat", "name": "Open"}),
        )
        .await["room_id"]
        .clone();
    let anon = d.client(0);
    let listed = anon.get(PUBLIC_ROOMS).await.must_status(200);
    let chunk = listed["chunk"].as_array().cloned().unwrap_or_default();
    assert!(chunk.iter().any(|r| r["room_id"] == room), "{listed}");
    let mut bad = d.client(0);
    bad.access_token = Some("not-a-token".into());
    bad.get(PUBLIC_ROOMS).await.must_status(200);
    let other = ["_matrix", "client", "v3", "publicRooms", "?server=other.example.org"];
    anon.get(&other).await.must_error(401, "M_MISSING_TOKEN");
    anon.request("POST", PUBLIC_ROOMS, json!({})).await.must_error(401, "M_MISSING_TOKEN");
    d.destroy().await;
}
