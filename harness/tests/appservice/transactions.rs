//! Transactions pushed to the appservice: the events of rooms it is interested in, in
//! order, with its hs_token; retried with the same ID and content while it is down or
//! answers 500 or garbage, and nothing lost once it is back.

use std::collections::HashMap;
use std::time::Duration;

use glia_harness::appservice::Received;
use glia_harness::wait_until;
use serde_json::{Value, json};

use crate::{Setup, cs};

const TXN_PATH: &str = "/_matrix/app/v1/transactions/";
const DEADLINE: Duration = Duration::from_secs(30);

fn event_ids(body: &Value) -> Vec<String> {
    let events = body["events"].as_array().cloned().unwrap_or_default();
    events.iter().map(|e| e["event_id"].as_str().unwrap_or("").to_string()).collect()
}

/// Every event delivered, in delivery order, keeping one copy per transaction ID; panics
/// if a retried transaction ID carried different events (`unsigned.age` may differ).
fn delivered(requests: &[Received], ok_txns: &[String]) -> Vec<Value> {
    let mut seen: HashMap<String, Vec<String>> = HashMap::new();
    let mut out = vec![];
    for r in requests.iter().filter(|r| r.path.starts_with(TXN_PATH)) {
        let id = r.path.trim_start_matches(TXN_PATH).to_string();
        if let Some(prev) = seen.get(&id) {
            assert_eq!(prev, &event_ids(&r.body), "transaction {id} changed between retries");
            continue;
        }
        seen.insert(id.clone(), event_ids(&r.body));
        if ok_txns.contains(&id) || ok_txns.is_empty() {
            out.extend(r.body["events"].as_array().cloned().unwrap_or_default());
        }
    }
    out
}

fn bodies_of(events: &[Value], room_id: &str) -> Vec<String> {
    events
        .iter()
        .filter(|e| e["room_id"] == room_id && e["type"] == "m.room.message")
        .filter_map(|e| e["content"]["body"].as_str().map(str::to_string))
        .collect()
}

/// A room with a normal user and a ghost: the appservice gets the invite (target in its
/// namespace), the ghost's join and every later message in order, in client format, each
/// transaction with `Authorization: Bearer <hs_token>` and increasing IDs. Events of rooms
/// it has no interest in never reach it.
#[tokio::test]
async fn events_reach_the_appservice_in_order() {
    let Some(s) = Setup::new().await else { return };
    let user = s.d.register_user(0, "alice").await;
    let quiet = user.must_do("POST", &cs(&["createRoom"]), json!({})).await;
    let quiet_id = quiet["room_id"].as_str().expect("room").to_string();
    user.must_do(
        "PUT",
        &cs(&["rooms", &quiet_id, "send", "m.room.message", "q1"]),
        json!({"msgtype": "m.text", "body": "private"}),
    )
    .await;

    let room = user.must_do("POST", &cs(&["createRoom"]), json!({})).await;
    let room_id = room["room_id"].as_str().expect("room").to_string();
    let ghost = s.ghost("erin").await;
    user.must_do("POST", &cs(&["rooms", &room_id, "invite"]), json!({"user_id": ghost})).await;
    let q = format!("?user_id={}", glia_harness::client::encode_segment(&ghost));
    let asc = s.as_client();
    asc.request("POST", &[&cs(&["join", &room_id])[..], &[q.as_str()]].concat(), json!({}))
        .await
        .must_status(200);
    for i in 0..10 {
        let txn = format!("m{i}");
        user.must_do(
            "PUT",
            &cs(&["rooms", &room_id, "send", "m.room.message", &txn]),
            json!({"msgtype": "m.text", "body": format!("msg {i}")}),
        )
        .await;
    }
    let want: Vec<String> = (0..10).map(|i| format!("msg {i}")).collect();
    let events = wait_until("ten messages at the appservice", DEADLINE, || {
        let got = delivered(&s.fake.requests(), &[]);
        let n = bodies_of(&got, &room_id).len();
        async move { (n >= 10).then_some(got) }
    })
    .await;
    assert_eq!(bodies_of(&events, &room_id), want, "in order, once each");
    let member = events
        .iter()
        .filter(|e| e["type"] == "m.room.member" && e["state_key"] == ghost.as_str())
        .map(|e| e["content"]["membership"].as_str().unwrap_or("").to_string())
        .collect::<Vec<_>>();
    assert_eq!(member, vec!["invite", "join"], "the ghost's invite and join: {events:?}");
    let msg = events.iter().find(|e| e["type"] == "m.room.message").expect("a message");
    for key in ["event_id", "sender", "origin_server_ts", "room_id", "content"] {
        assert!(!msg[key].is_null(), "client-format event lacks {key}: {msg}");
    }
    assert!(bodies_of(&events, &quiet_id).is_empty(), "uninteresting room leaked");
    let txns = s.fake.requests_to(TXN_PATH);
    let mut last = 0u64;
    for r in &txns {
        assert_eq!(r.method, "PUT");
        assert_eq!(r.authorization.as_deref(), Some(format!("Bearer {}", s.reg.hs_token).as_str()));
        let id: u64 = r.path.trim_start_matches(TXN_PATH).parse().expect("numeric txn id");
        assert!(id > last, "transaction IDs increase: {id} after {last}");
        last = id;
    }
    s.d.destroy().await;
}

/// Down (connections dropped), then 500, then garbage with 200: every failed transaction
/// is retried with the same ID and content; once the appservice answers properly, every
/// message has arrived exactly once and in order.
#[tokio::test]
async fn appservice_down_or_broken_loses_nothing() {
    let Some(s) = Setup::new().await else { return };
    let user = s.d.register_user(0, "bob").await;
    let ghost = s.ghost("frank").await;
    let room = user.must_do("POST", &cs(&["createRoom"]), json!({"invite": [ghost]})).await;
    let room_id = room["room_id"].as_str().expect("room").to_string();
    // Messages concern the appservice once one of its users has joined.
    let q = format!("?user_id={}", glia_harness::client::encode_segment(&ghost));
    let join = [&cs(&["join", &room_id])[..], &[q.as_str()]].concat();
    s.as_client().request("POST", &join, json!({})).await.must_status(200);
    let send = |i: usize| {
        let (user, room_id) = (user.clone(), room_id.clone());
        async move {
            let txn = format!("t{i}");
            user.must_do(
                "PUT",
                &cs(&["rooms", &room_id, "send", "m.room.message", &txn]),
                json!({"msgtype": "m.text", "body": format!("msg {i}")}),
            )
            .await;
        }
    };
    // Wait for the first delivery so later failures are retries of known transactions.
    wait_until("the join at the appservice", DEADLINE, || {
        let joined =
            s.fake.requests_to(TXN_PATH).iter().any(|r| r.body.to_string().contains("\"join\""));
        async move { joined.then_some(()) }
    })
    .await;

    s.fake.set_down(true);
    send(0).await;
    send(1).await;
    // Nothing can be recorded while down; the server keeps the queue and keeps trying.
    s.fake.on(TXN_PATH, |_| (500, r#"{"errcode":"M_UNKNOWN","error":"broken"}"#.into()));
    s.fake.set_down(false);
    let before = s.fake.requests_to(TXN_PATH).len();
    wait_until("a retry answered with 500", DEADLINE, || {
        let n = s.fake.requests_to(TXN_PATH).len();
        async move { (n >= before + 2).then_some(()) }
    })
    .await;
    send(2).await;
    s.fake.on(TXN_PATH, |_| (200, "this is not JSON".into()));
    let before = s.fake.requests_to(TXN_PATH).len();
    wait_until("a retry answered with garbage", DEADLINE, || {
        let n = s.fake.requests_to(TXN_PATH).len();
        async move { (n >= before + 2).then_some(()) }
    })
    .await;
    send(3).await;
    // Back to normal: everything arrives.
    let ok_from = s.fake.requests_to(TXN_PATH).len();
    s.fake.on(TXN_PATH, |_| (200, "{}".into()));
    let want: Vec<String> = (0..4).map(|i| format!("msg {i}")).collect();
    let got = wait_until("all four messages acknowledged", DEADLINE, || {
        let reqs = s.fake.requests();
        let txns: Vec<_> = reqs.iter().filter(|r| r.path.starts_with(TXN_PATH)).collect();
        let acked: Vec<String> = txns[ok_from.min(txns.len())..]
            .iter()
            .map(|r| r.path.trim_start_matches(TXN_PATH).to_string())
            .collect();
        let got = bodies_of(&delivered(&reqs, &acked), &room_id);
        let done = got.len() >= 4;
        async move { done.then_some(got) }
    })
    .await;
    assert_eq!(got, want);
    // Retries reused IDs: more requests than distinct transaction IDs.
    let txns = s.fake.requests_to(TXN_PATH);
    let mut ids: Vec<&str> = txns.iter().map(|r| r.path.as_str()).collect();
    let n = ids.len();
    ids.dedup();
    assert!(ids.len() < n, "failed transactions were retried under the same ID");
    s.d.destroy().await;
}

/// With `receive_ephemeral`, typing and read receipts in a room with one of the
/// appservice's users arrive in transactions' `ephemeral` (and MSC2409's unstable key),
/// each with its `room_id`.
#[tokio::test]
async fn typing_and_receipts_reach_the_appservice() {
    let Some(s) = Setup::new().await else { return };
    let user = s.d.register_user(0, "typist").await;
    let ghost = s.ghost("gina").await;
    let room = user.must_do("POST", &cs(&["createRoom"]), json!({"invite": [ghost]})).await;
    let room_id = room["room_id"].as_str().expect("room").to_string();
    let q = format!("?user_id={}", glia_harness::client::encode_segment(&ghost));
    let join = [&cs(&["join", &room_id])[..], &[q.as_str()]].concat();
    s.as_client().request("POST", &join, json!({})).await.must_status(200);
    user.must_do(
        "PUT",
        &cs(&["rooms", &room_id, "typing", &user.user_id]),
        json!({"typing": true, "timeout": 10000}),
    )
    .await;
    let sent = user
        .must_do(
            "PUT",
            &cs(&["rooms", &room_id, "send", "m.room.message", "r1"]),
            json!({"msgtype": "m.text", "body": "hi"}),
        )
        .await;
    let event_id = sent["event_id"].as_str().expect("event_id").to_string();
    user.must_do("POST", &cs(&["rooms", &room_id, "receipt", "m.read", &event_id]), json!({}))
        .await;
    let eph = wait_until("typing and receipt at the appservice", DEADLINE, || {
        let eph: Vec<Value> = s
            .fake
            .requests_to(TXN_PATH)
            .iter()
            .flat_map(|r| r.body["ephemeral"].as_array().cloned().unwrap_or_default())
            .collect();
        let done = eph.iter().any(|e| e["type"] == "m.receipt")
            && eph.iter().any(|e| e["type"] == "m.typing");
        async move { done.then_some(eph) }
    })
    .await;
    let typing = eph.iter().find(|e| e["type"] == "m.typing").expect("typing");
    assert_eq!(typing["room_id"], room_id.as_str());
    assert_eq!(typing["content"]["user_ids"], json!([user.user_id]));
    let receipt = eph.iter().find(|e| e["type"] == "m.receipt").expect("receipt");
    assert_eq!(receipt["room_id"], room_id.as_str());
    assert!(receipt["content"][&event_id]["m.read"][&user.user_id]["ts"].is_i64(), "{receipt}");
    let with_eph =
        s.fake.requests_to(TXN_PATH).into_iter().find(|r| r.body["ephemeral"].is_array());
    let body = with_eph.expect("a transaction with ephemeral events").body;
    assert_eq!(body["ephemeral"], body["de.sorunome.msc2409.ephemeral"]);
    s.d.destroy().await;
}

/// With MSC4203's `receive_to_device`, to-device messages for the appservice's users
/// arrive in `de.sorunome.msc2409.to_device`, once per transaction ID. Device-less
/// appservice requests to device endpoints are 400 M_MISSING_PARAM; with `device_id` of
/// one of its user's devices they work.
#[tokio::test]
async fn to_device_messages_reach_the_appservice() {
    let Some(s) = Setup::new().await else { return };
    let user = s.d.register_user(0, "sender").await;
    let ghost = s.ghost("hal").await;
    let body = json!({"messages": {ghost.clone(): {"*": {"n": 1}}}});
    for _ in 0..2 {
        let send = cs(&["sendToDevice", "m.test", "td1"]);
        user.request("PUT", &send, body.clone()).await.must_status(200);
    }
    let msgs = wait_until("the to-device message at the appservice", DEADLINE, || {
        let msgs: Vec<Value> = s
            .fake
            .requests_to(TXN_PATH)
            .iter()
            .flat_map(|r| {
                r.body["de.sorunome.msc2409.to_device"].as_array().cloned().unwrap_or_default()
            })
            .collect();
        async move { (!msgs.is_empty()).then_some(msgs) }
    })
    .await;
    assert_eq!(msgs.len(), 1, "a repeated transaction ID is not sent again: {msgs:?}");
    assert_eq!(msgs[0]["to_user_id"], ghost.as_str());
    assert_eq!(msgs[0]["sender"], user.user_id.as_str());
    assert_eq!(msgs[0]["type"], "m.test");
    assert_eq!(msgs[0]["content"]["n"], 1);

    let asc = s.as_client();
    let ghost_q = format!("?user_id={}", glia_harness::client::encode_segment(&ghost));
    let upload = [&cs(&["keys", "upload"])[..], &[ghost_q.as_str()]].concat();
    asc.request("POST", &upload, json!({})).await.must_error(400, "M_MISSING_PARAM");
    // A device for the ghost (appservice login), then named with device_id.
    let login = json!({"type": "m.login.application_service", "device_id": "GHOSTDEV",
        "identifier": {"type": "m.id.user", "user": ghost}});
    asc.request("POST", &cs(&["login"]), login).await.must_status(200);
    let with_device = format!("{ghost_q}&device_id=GHOSTDEV");
    let upload = [&cs(&["keys", "upload"])[..], &[with_device.as_str()]].concat();
    asc.request("POST", &upload, json!({})).await.must_status(200);
    s.d.destroy().await;
}
