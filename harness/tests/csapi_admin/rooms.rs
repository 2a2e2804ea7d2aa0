//! Rooms through the admin API: list and search, details, members, state, blocking, and
//! deletion (v2 in the background with its status, v1 with a replacement room).

use glia_harness::Deployment;
use glia_harness::client::unique_localpart;
use serde_json::{Value, json};

use crate::{
    adm, admin, create_room, cs, joined_rooms, message_bodies, must_fail, must_join, poll, query,
    send_text, server_name, strings,
};

fn room_ids(body: &Value) -> Vec<String> {
    body["rooms"]
        .as_array()
        .unwrap_or_else(|| panic!("no rooms in {body}"))
        .iter()
        .map(|r| r["room_id"].as_str().expect("room_id").to_string())
        .collect()
}

#[tokio::test]
async fn test_room_list_and_details() {
    let d = Deployment::new(1).await;
    let Some(admin) = admin(&d).await else { return };
    let alice = d.register_user(0, "alice").await;
    let bob = d.register_user(0, "bob").await;
    let p = unique_localpart("rlist");
    let name = format!("Room {p}");
    let room = create_room(
        &alice,
        json!({"preset": "public_chat", "name": name, "topic": "Things", "room_alias_name": p}),
    )
    .await;
    must_join(&bob, &room).await;
    let other = create_room(&alice, json!({"name": format!("Other {p}")})).await;

    // Synapse fills in room statistics in the background: wait for both members.
    let details = adm(&["v1", "rooms", &room]);
    let body = poll(&admin, &details, "room statistics", |b| b["joined_members"] == 2).await;
    let alias = format!("#{p}:{}", server_name(&alice.user_id));
    for (k, v) in [
        ("room_id", json!(room)),
        ("name", json!(name)),
        ("topic", json!("Things")),
        ("canonical_alias", json!(alias)),
        ("joined_local_members", json!(2)),
        ("creator", json!(alice.user_id)),
        ("join_rules", json!("public")),
        ("history_visibility", json!("shared")),
        ("federatable", json!(true)),
        ("public", json!(false)),
        ("encryption", Value::Null),
        ("tombstoned", json!(false)),
    ] {
        assert_eq!(body[k], v, "{k} in {body}");
    }
    assert!(
        body["version"].is_string() && body["state_events"].as_u64().is_some_and(|n| n >= 6),
        "{body}"
    );

    // Search by name, by alias and by exact room ID; sort by name both ways.
    let search = |term: String, extra: Vec<(&'static str, &'static str)>| {
        let admin = admin.clone();
        async move {
            let mut q = vec![("search_term", term.as_str())];
            q.extend(extra);
            admin.get(&adm(&["v1", "rooms", &query(&q)])).await.must_status(200)
        }
    };
    let both = poll(
        &admin,
        &adm(&["v1", "rooms", &query(&[("search_term", &p)])]),
        "both rooms listed",
        |b| b["total_rooms"] == 2,
    )
    .await;
    assert_eq!(room_ids(&both), vec![other.clone(), room.clone()], "Other < Room: {both}");
    assert_eq!(both["offset"], 0, "{both}");
    let back = search(p.clone(), vec![("dir", "b")]).await;
    assert_eq!(room_ids(&back), vec![room.clone(), other.clone()], "{back}");
    let page = search(p.clone(), vec![("limit", "1")]).await;
    assert_eq!((room_ids(&page).len(), page["next_batch"].clone()), (1, json!(1)), "{page}");
    let by_size = search(p.clone(), vec![("order_by", "joined_members")]).await;
    assert_eq!(room_ids(&by_size)[0], room, "the larger room first: {by_size}");
    let exact = search(room.clone(), vec![]).await;
    assert_eq!(room_ids(&exact), vec![room.clone()]);
    let entry = &exact["rooms"][0];
    assert_eq!((entry["name"].clone(), entry["joined_members"].clone()), (json!(name), json!(2)));
    admin
        .get(&adm(&["v1", "rooms", &query(&[("order_by", "shoe_size")])]))
        .await
        .must_error(400, "M_INVALID_PARAM");

    // Members and state.
    let body = admin.get(&adm(&["v1", "rooms", &room, "members"])).await.must_status(200);
    let mut members = strings(&body["members"]);
    members.sort();
    let mut want = vec![alice.user_id.clone(), bob.user_id.clone()];
    want.sort();
    assert_eq!((members, body["total"].clone()), (want, json!(2)));
    let body = admin.get(&adm(&["v1", "rooms", &room, "state"])).await.must_status(200);
    let types: Vec<&str> = body["state"]
        .as_array()
        .expect("state")
        .iter()
        .filter_map(|e| e["type"].as_str())
        .collect();
    for t in ["m.room.create", "m.room.member", "m.room.name", "m.room.power_levels"] {
        assert!(types.contains(&t), "{t} in {body}");
    }
    let q = query(&[("type", "m.room.name")]);
    let body = admin.get(&adm(&["v1", "rooms", &room, "state", &q])).await.must_status(200);
    let state = body["state"].as_array().expect("state");
    assert_eq!(state.len(), 1, "{body}");
    assert_eq!(state[0]["content"]["name"], name.as_str(), "{body}");
    d.destroy().await;
}

#[tokio::test]
async fn test_block_room() {
    let d = Deployment::new(1).await;
    let Some(admin) = admin(&d).await else { return };
    let alice = d.register_user(0, "alice").await;
    let bob = d.register_user(0, "bob").await;
    let room = create_room(&alice, json!({"preset": "public_chat"})).await;
    let path = adm(&["v1", "rooms", &room, "block"]);
    assert_eq!(admin.get(&path).await.must_status(200), json!({"block": false}));
    assert_eq!(
        admin.request("PUT", &path, json!({"block": true})).await.must_status(200),
        json!({"block": true})
    );
    let body = admin.get(&path).await.must_status(200);
    assert_eq!(body, json!({"block": true, "user_id": admin.user_id}));
    // Nobody may join a blocked room, server admins included.
    for u in [&bob, &admin] {
        must_fail(&u.request("POST", &cs(&["join", &room]), json!({})).await, 403);
    }
    admin.request("PUT", &path, json!({"block": false})).await.must_status(200);
    must_join(&bob, &room).await;
    admin.request("PUT", &path, json!({"block": "yes"})).await.must_error(400, "M_BAD_JSON");
    d.destroy().await;
}

/// `DELETE /v2/rooms/{roomId}` with `block` and `purge`: local members are made to leave,
/// the room disappears, its status can be polled, and it cannot be joined again.
#[tokio::test]
async fn test_delete_room_v2() {
    let d = Deployment::new(1).await;
    let Some(admin) = admin(&d).await else { return };
    let alice = d.register_user(0, "alice").await;
    let bob = d.register_user(0, "bob").await;
    let carol = d.register_user(0, "carol").await;
    let room = create_room(&alice, json!({"preset": "public_chat"})).await;
    must_join(&bob, &room).await;
    alice
        .request("POST", &cs(&["rooms", &room, "invite"]), json!({"user_id": carol.user_id}))
        .await
        .must_status(200);
    send_text(&alice, &room, "soon gone").await;

    let body = admin
        .request("DELETE", &adm(&["v2", "rooms", &room]), json!({"block": true, "purge": true}))
        .await
        .must_status(200);
    let delete_id = body["delete_id"].as_str().unwrap_or_else(|| panic!("{body}")).to_string();
    let status = adm(&["v2", "rooms", "delete_status", &delete_id]);
    let done = poll(&admin, &status, "the deletion to finish", |b| {
        assert_ne!(b["status"], "failed", "{b}");
        b["status"] == "complete"
    })
    .await;
    assert_eq!(done["room_id"], room.as_str(), "{done}");
    let mut kicked = strings(&done["shutdown_room"]["kicked_users"]);
    kicked.sort();
    let mut want = vec![alice.user_id.clone(), bob.user_id.clone(), carol.user_id.clone()];
    want.sort();
    assert_eq!(kicked, want, "{done}");
    assert_eq!(done["shutdown_room"]["failed_to_kick_users"], json!([]), "{done}");
    let by_room = admin.get(&adm(&["v2", "rooms", &room, "delete_status"])).await.must_status(200);
    assert_eq!(by_room["results"][0]["delete_id"], delete_id.as_str(), "{by_room}");

    admin.get(&adm(&["v1", "rooms", &room])).await.must_error(404, "M_NOT_FOUND");
    assert!(!joined_rooms(&alice).await.contains(&room));
    assert!(!joined_rooms(&bob).await.contains(&room));
    must_fail(&bob.request("POST", &cs(&["join", &room]), json!({})).await, 403);
    let block = admin.get(&adm(&["v1", "rooms", &room, "block"])).await.must_status(200);
    assert_eq!(block["block"], true, "{block}");
    d.destroy().await;
}

/// `DELETE /v1/rooms/{roomId}` with a replacement room: joined members move there, the
/// local aliases follow, and the message explains.
#[tokio::test]
async fn test_delete_room_v1_with_replacement() {
    let d = Deployment::new(1).await;
    let Some(admin) = admin(&d).await else { return };
    let alice = d.register_user(0, "alice").await;
    let bob = d.register_user(0, "bob").await;
    let p = unique_localpart("moved");
    let room = create_room(&alice, json!({"preset": "public_chat", "room_alias_name": p})).await;
    must_join(&bob, &room).await;
    let alias = format!("#{p}:{}", server_name(&alice.user_id));

    let body = admin
        .request(
            "DELETE",
            &adm(&["v1", "rooms", &room]),
            json!({
                "new_room_user_id": admin.user_id,
                "room_name": "New home",
                "message": "We moved",
            }),
        )
        .await
        .must_status(200);
    let mut kicked = strings(&body["kicked_users"]);
    kicked.sort();
    let mut want = vec![alice.user_id.clone(), bob.user_id.clone()];
    want.sort();
    assert_eq!(kicked, want, "{body}");
    assert_eq!(strings(&body["local_aliases"]), vec![alias.clone()], "{body}");
    let new_room = body["new_room_id"].as_str().unwrap_or_else(|| panic!("{body}")).to_string();

    admin.get(&adm(&["v1", "rooms", &room])).await.must_error(404, "M_NOT_FOUND");
    for u in [&alice, &bob] {
        let rooms = joined_rooms(u).await;
        assert!(rooms.contains(&new_room) && !rooms.contains(&room), "{rooms:?}");
    }
    let resolved = bob.get(&cs(&["directory", "room", &alias])).await.must_status(200);
    assert_eq!(resolved["room_id"], new_room.as_str(), "{resolved}");
    assert!(message_bodies(&bob, &new_room).await.contains(&"We moved".to_string()));
    d.destroy().await;
}
