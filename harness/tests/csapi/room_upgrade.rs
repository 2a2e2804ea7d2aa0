//! TestRoomUpgrade: the replacement room, the tombstone, copied state, moved aliases.

use glia_harness::Deployment;
use glia_harness::client::unique_localpart;
use serde_json::{Value, json};

#[tokio::test]
async fn test_room_upgrade() {
    let d = Deployment::new(1).await;
    let alice = d.register_user(0, "alice").await;
    let bob = d.register_user(0, "bob").await;
    let server = alice.user_id.split_once(':').map(|(_, s)| s.to_string()).expect("server");
    let alias = format!("#{}:{server}", unique_localpart("upg"));
    let r = alice
        .must_do(
            "POST",
            &["_matrix", "client", "v3", "createRoom"],
            json!({"preset": "public_chat", "name": "Old name", "room_version": "10",
                   "room_alias_name": alias.trim_start_matches('#').split(':').next().expect("local")}),
        )
        .await;
    let old = r["room_id"].as_str().expect("room").to_string();
    bob.must_do("POST", &["_matrix", "client", "v3", "join", &old], json!({})).await;

    // Bob has no power to upgrade.
    let r = bob
        .request(
            "POST",
            &["_matrix", "client", "v3", "rooms", &old, "upgrade"],
            json!({"new_version": "11"}),
        )
        .await;
    r.must_error(403, "M_FORBIDDEN");
    let r = alice
        .request(
            "POST",
            &["_matrix", "client", "v3", "rooms", &old, "upgrade"],
            json!({"new_version": "999"}),
        )
        .await;
    r.must_error(400, "M_UNSUPPORTED_ROOM_VERSION");

    let up = alice
        .must_do(
            "POST",
            &["_matrix", "client", "v3", "rooms", &old, "upgrade"],
            json!({"new_version": "11"}),
        )
        .await;
    let new = up["replacement_room"].as_str().expect("replacement_room").to_string();
    let tomb = alice
        .must_do(
            "GET",
            &["_matrix", "client", "v3", "rooms", &old, "state", "m.room.tombstone", ""],
            Value::Null,
        )
        .await;
    assert_eq!(tomb["replacement_room"], new.as_str());
    let create = alice
        .must_do(
            "GET",
            &["_matrix", "client", "v3", "rooms", &new, "state", "m.room.create", ""],
            Value::Null,
        )
        .await;
    assert_eq!(create["predecessor"]["room_id"], old.as_str(), "{create}");
    assert_eq!(create["room_version"], "11");
    let name = alice
        .must_do(
            "GET",
            &["_matrix", "client", "v3", "rooms", &new, "state", "m.room.name", ""],
            Value::Null,
        )
        .await;
    assert_eq!(name["name"], "Old name");
    let pl = alice
        .must_do(
            "GET",
            &["_matrix", "client", "v3", "rooms", &old, "state", "m.room.power_levels", ""],
            Value::Null,
        )
        .await;
    assert!(pl["events_default"].as_i64().unwrap_or(0) >= 50, "the old room is restricted: {pl}");
    let resolved = d
        .client(0)
        .get(&["_matrix", "client", "v3", "directory", "room", &alias])
        .await
        .must_status(200);
    assert_eq!(resolved["room_id"], new.as_str(), "the alias moved");
    // Bob can follow into the new room (it keeps the old join rules).
    bob.must_do("POST", &["_matrix", "client", "v3", "join", &new], json!({})).await;
    d.destroy().await;
}
