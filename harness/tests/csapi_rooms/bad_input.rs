//! Bad input to the room endpoints gets a 4xx with a Matrix error, never a 500: writing to
//! a room one is not in, malformed room IDs, events over the 65,536-byte PDU limit
//! (TestEvent, Complement: tests/csapi/invalid_test.go), invalid numbers (TestJson),
//! another user's member event, and content that is not a JSON object.

use glia_harness::Deployment;
use glia_harness::client::Body;
use serde_json::json;

use crate::{
    create_room, cs, get_state, membership_of, must_join, must_put_state, put_state, send_event,
    send_text, txn_id,
};

/// Sending to a room you are not in (or that does not exist) is 403.
#[tokio::test]
async fn test_send_to_room_not_joined() {
    let d = Deployment::new(1).await;
    let alice = d.register_user(0, "alice").await;
    let eve = d.register_user(0, "eve").await;
    let room = create_room(&alice, json!({"preset": "public_chat"})).await;
    let msg = json!({"msgtype": "m.text", "body": "intruder"});
    send_event(&eve, &room, "m.room.message", msg.clone()).await.must_error(403, "M_FORBIDDEN");
    let server = alice.user_id.split_once(':').map(|(_, s)| s).expect("server name");
    let unknown = format!("!doesnotexist:{server}");
    send_event(&eve, &unknown, "m.room.message", msg.clone()).await.must_error(403, "M_FORBIDDEN");
    put_state(&eve, &unknown, "m.room.name", "", json!({"name": "x"}))
        .await
        .must_error(403, "M_FORBIDDEN");
    // An invited user is not joined yet.
    crate::must_invite(&alice, &room, &eve.user_id).await;
    send_event(&eve, &room, "m.room.message", msg).await.must_error(403, "M_FORBIDDEN");
    d.destroy().await;
}

/// Strings that are not room IDs where the path wants one: every endpoint refuses them
/// with a 4xx Matrix error. The spec types these parameters as room IDs without naming the
/// error; Synapse answers most with 403 (it looks the string up as a room one is not in),
/// Glia with 400 M_INVALID_PARAM, which is checked on Glia only.
#[tokio::test]
async fn test_invalid_room_ids() {
    let d = Deployment::new(1).await;
    let alice = d.register_user(0, "alice").await;
    let glia = !d.is_external();
    for bad in ["notaroom", "#alias:example.com", "@user:example.com"] {
        let txn = txn_id();
        let requests: Vec<(&str, Vec<&str>, serde_json::Value)> = vec![
            ("PUT", cs(&["rooms", bad, "send", "m.room.message", &txn]), json!({"body": "x"})),
            ("PUT", cs(&["rooms", bad, "state", "m.room.name", ""]), json!({"name": "x"})),
            ("GET", cs(&["rooms", bad, "state", "m.room.name", ""]), json!(null)),
            ("GET", cs(&["rooms", bad, "state"]), json!(null)),
            ("GET", cs(&["rooms", bad, "members"]), json!(null)),
            ("GET", cs(&["rooms", bad, "messages", "?dir=b"]), json!(null)),
            ("GET", cs(&["rooms", bad, "event", "$abc"]), json!(null)),
            ("POST", cs(&["rooms", bad, "join"]), json!({})),
            ("POST", cs(&["rooms", bad, "invite"]), json!({"user_id": alice.user_id})),
            ("PUT", cs(&["rooms", bad, "redact", "$abc", &txn]), json!({})),
        ];
        for (method, path, body) in requests {
            let body = if body.is_null() { Body::None } else { Body::Json(body) };
            let r = alice.request(method, &path, body).await;
            let err = r.must_client_error();
            // An alias where a room ID belongs may be looked up (and not found) instead.
            if glia && !bad.starts_with('#') {
                assert_eq!(r.status, 400, "{}: {err}", r.what);
                assert_eq!(err["errcode"], "M_INVALID_PARAM", "{}: {err}", r.what);
            }
        }
    }
    // `/join/{roomIdOrAlias}` takes either, but not something that is neither.
    let r = alice.request("POST", &cs(&["join", "notaroom"]), json!({})).await;
    let err = r.must_client_error();
    assert_eq!(r.status, 400, "{err}");
    d.destroy().await;
}

/// TestEvent (sytest "Event size limits"): a message or state event over 65,536 bytes is
/// 413 M_TOO_LARGE, and nothing is stored; a large event under the limit is fine.
#[tokio::test]
async fn test_event_size_limits() {
    let d = Deployment::new(1).await;
    let alice = d.register_user(0, "alice").await;
    let room = create_room(&alice, json!({"room_version": "6"})).await;
    let big = json!({"msgtype": "m.text", "body": "and they dont stop coming ".repeat(2700)});
    send_event(&alice, &room, "m.room.message", big).await.must_error(413, "M_TOO_LARGE");
    let big_state = json!({"body": "Dormammu, I've Come To Bargain.\n".repeat(2200)});
    put_state(&alice, &room, "marvel.universe.fate", "", big_state)
        .await
        .must_error(413, "M_TOO_LARGE");
    get_state(&alice, &room, "marvel.universe.fate", "").await.must_error(404, "M_NOT_FOUND");
    let page = crate::must_messages(&alice, &room, &[("dir", "b"), ("limit", "100")]).await;
    assert!(
        page["chunk"].as_array().expect("chunk").iter().all(|e| e["type"] != "m.room.message"),
        "{page}"
    );
    // 60,000 bytes of body fit (the rest of the event is well under 5 KiB).
    let fits = json!({"msgtype": "m.text", "body": "x".repeat(60_000)});
    crate::must_send_event(&alice, &room, "m.room.message", fits).await;
    send_text(&alice, &room, "and the room still works").await;
    d.destroy().await;
}

/// TestJson: integers outside the canonical-JSON range and floats are M_BAD_JSON; JSON's
/// non-values (NaN, Infinity) are a 400.
#[tokio::test]
async fn test_json_numbers_in_events() {
    let d = Deployment::new(1).await;
    let alice = d.register_user(0, "alice").await;
    let room = create_room(&alice, json!({"room_version": "6"})).await;
    for raw in [
        &b"{\"body\": 9007199254740992}"[..],
        b"{\"body\": -9007199254740992}",
        b"{\"body\": 1.1}",
        b"{\"nested\": {\"deep\": [1, 2.5]}}",
    ] {
        let txn = txn_id();
        let path = cs(&["rooms", &room, "send", "complement.dummy", &txn]);
        let r = alice.request("PUT", &path, Body::Raw(raw.to_vec(), "application/json")).await;
        r.must_error(400, "M_BAD_JSON");
        let path = cs(&["rooms", &room, "state", "complement.dummy", ""]);
        let r = alice.request("PUT", &path, Body::Raw(raw.to_vec(), "application/json")).await;
        r.must_error(400, "M_BAD_JSON");
    }
    for raw in [&b"{\"body\": Infinity}"[..], b"{\"body\": -Infinity}", b"{\"body\": NaN}"] {
        let txn = txn_id();
        let path = cs(&["rooms", &room, "send", "complement.dummy", &txn]);
        let r = alice.request("PUT", &path, Body::Raw(raw.to_vec(), "application/json")).await;
        let err = r.must_client_error();
        assert_eq!(r.status, 400, "{err}");
    }
    // The largest canonical integers are fine.
    let txn = txn_id();
    let path = cs(&["rooms", &room, "send", "complement.dummy", &txn]);
    let ok = Body::Raw(
        b"{\"max\": 9007199254740991, \"min\": -9007199254740991}".to_vec(),
        "application/json",
    );
    alice.request("PUT", &path, ok).await.must_status(200);
    d.destroy().await;
}

/// Setting someone else's m.room.member event is a forged membership: 403, and their
/// membership is unchanged. Changing one's own member event (a per-room display name) is
/// fine.
#[tokio::test]
async fn test_forged_member_state_key() {
    let d = Deployment::new(1).await;
    let alice = d.register_user(0, "alice").await;
    let bob = d.register_user(0, "bob").await;
    let carol = d.register_user(0, "carol").await;
    let room = create_room(&alice, json!({"preset": "public_chat"})).await;
    must_join(&bob, &room).await;
    // Joining someone else in, even as the room's creator.
    put_state(&alice, &room, "m.room.member", &carol.user_id, json!({"membership": "join"}))
        .await
        .must_error(403, "M_FORBIDDEN");
    crate::get_state(&alice, &room, "m.room.member", &carol.user_id)
        .await
        .must_error(404, "M_NOT_FOUND");
    // Making the creator leave, or changing their display name, as bob.
    put_state(&bob, &room, "m.room.member", &alice.user_id, json!({"membership": "leave"}))
        .await
        .must_error(403, "M_FORBIDDEN");
    put_state(
        &bob,
        &room,
        "m.room.member",
        &alice.user_id,
        json!({"membership": "join", "displayname": "Alice is a fool"}),
    )
    .await
    .must_error(403, "M_FORBIDDEN");
    assert_eq!(membership_of(&bob, &room, &alice.user_id).await, "join");
    // A member event with a state key that is not a user ID at all.
    let r = put_state(&alice, &room, "m.room.member", "not-a-user", json!({"membership": "join"}))
        .await;
    let err = r.must_client_error();
    assert!(r.status == 400 || r.status == 403, "{err}");
    // Bob changing his own per-room display name is allowed.
    must_put_state(
        &bob,
        &room,
        "m.room.member",
        &bob.user_id,
        json!({"membership": "join", "displayname": "Bobby"}),
    )
    .await;
    let m = crate::must_get_state(&alice, &room, "m.room.member", &bob.user_id).await;
    assert_eq!(m["displayname"], "Bobby", "{m}");
    d.destroy().await;
}

/// Event content must be a JSON object: arrays, strings, numbers and null are M_BAD_JSON
/// for messages and state alike.
#[tokio::test]
async fn test_non_object_content() {
    let d = Deployment::new(1).await;
    let alice = d.register_user(0, "alice").await;
    let room = create_room(&alice, json!({})).await;
    for content in [json!([1, 2]), json!("string"), json!(42), json!(null), json!(true)] {
        let txn = txn_id();
        let path = cs(&["rooms", &room, "send", "m.room.message", &txn]);
        let raw = Body::Raw(content.to_string().into_bytes(), "application/json");
        alice.request("PUT", &path, raw).await.must_error(400, "M_BAD_JSON");
        let path = cs(&["rooms", &room, "state", "org.example.state", ""]);
        let raw = Body::Raw(content.to_string().into_bytes(), "application/json");
        alice.request("PUT", &path, raw).await.must_error(400, "M_BAD_JSON");
    }
    // Not JSON at all.
    let txn = txn_id();
    let path = cs(&["rooms", &room, "send", "m.room.message", &txn]);
    let r = alice.request("PUT", &path, Body::Raw(b"{not json".to_vec(), "application/json")).await;
    r.must_error(400, "M_NOT_JSON");
    d.destroy().await;
}
