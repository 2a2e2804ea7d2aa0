//! TestRedact (Complement: tests/csapi/redact_test.go) and the redaction permission rules:
//! anyone may redact their own events, others' need the `redact` power level.

use glia_harness::{Client, Deployment};
use serde_json::{Value, json};

use crate::{
    create_room, cs, default_room_version, get_event, must_get_state, must_join, must_messages,
    must_put_state, privileged_creators, send_text, txn_id,
};

async fn redact(c: &Client, room_id: &str, event_id: &str, body: Value) -> glia_harness::Response {
    c.request("PUT", &cs(&["rooms", room_id, "redact", event_id, &txn_id()]), body).await
}

async fn must_redact(c: &Client, room_id: &str, event_id: &str) -> String {
    let body = redact(c, room_id, event_id, json!({"reason": "reasons..."})).await.must_status(200);
    body["event_id"].as_str().unwrap_or_else(|| panic!("no event_id in {body}")).to_string()
}

/// TestRedact: event content is redacted — the sender redacts a message, and another
/// member no longer sees its content in GET /event or in /messages, where the redaction
/// itself follows it.
#[tokio::test]
async fn test_redact_event_content_is_redacted() {
    let d = Deployment::new(1).await;
    let alice = d.register_user(0, "alice").await;
    let bob = d.register_user(0, "bob").await;
    let room = create_room(&alice, json!({"preset": "public_chat"})).await;
    must_join(&bob, &room).await;
    let content = json!({"msgtype": "m.text", "body": "expected message body"});
    let id = crate::must_send_event(&alice, &room, "m.room.message", content.clone()).await;
    let before = get_event(&bob, &room, &id).await.must_status(200);
    assert_eq!(before["content"], content, "{before}");

    let redaction = must_redact(&alice, &room, &id).await;
    let after = get_event(&bob, &room, &id).await.must_status(200);
    assert_eq!(after["content"], json!({}), "{after}");
    assert_eq!(after["type"], "m.room.message", "the event stays, emptied: {after}");
    assert_eq!(after["unsigned"]["redacted_because"]["event_id"], redaction.as_str(), "{after}");

    let page = must_messages(&bob, &room, &[("dir", "b"), ("limit", "10")]).await;
    let chunk = page["chunk"].as_array().expect("chunk");
    assert_eq!(chunk[0]["event_id"], redaction.as_str(), "{page}");
    assert_eq!(chunk[0]["type"], "m.room.redaction", "{page}");
    assert_eq!(chunk[0]["content"]["reason"], "reasons...", "{page}");
    let redacts = chunk[0]["redacts"].as_str().or_else(|| chunk[0]["content"]["redacts"].as_str());
    assert_eq!(redacts, Some(id.as_str()), "{page}");
    let original = chunk.iter().find(|e| e["event_id"] == id.as_str()).expect("the original");
    assert_eq!(original["content"], json!({}), "{page}");
    assert!(!page.to_string().contains("expected message body"), "{page}");

    // Redacting again is allowed and changes nothing more.
    must_redact(&alice, &room, &id).await;
    assert_eq!(get_event(&bob, &room, &id).await.must_status(200)["content"], json!({}));
    d.destroy().await;
}

/// Redacting another user's event needs the `redact` level: refused at 0, allowed once
/// raised to it; the creator (100, or creator power from v12) may always.
#[tokio::test]
async fn test_redact_others_events_needs_power() {
    let d = Deployment::new(1).await;
    let alice = d.register_user(0, "alice").await;
    let bob = d.register_user(0, "bob").await;
    let carol = d.register_user(0, "carol").await;
    let version = default_room_version(&alice).await;
    let room = create_room(&alice, json!({"preset": "public_chat"})).await;
    must_join(&bob, &room).await;
    must_join(&carol, &room).await;
    let alices = send_text(&alice, &room, "alice's words").await;
    let carols = send_text(&carol, &room, "carol's words").await;

    redact(&bob, &room, &alices, json!({})).await.must_error(403, "M_FORBIDDEN");
    redact(&bob, &room, &carols, json!({})).await.must_error(403, "M_FORBIDDEN");
    let still = get_event(&carol, &room, &carols).await.must_status(200);
    assert_eq!(still["content"]["body"], "carol's words", "{still}");

    // Bob becomes a moderator at the redact level.
    let mut pl = must_get_state(&alice, &room, "m.room.power_levels", "").await;
    let redact_level = pl["redact"].as_i64().unwrap_or(50);
    pl["users"][&bob.user_id] = json!(redact_level);
    if !privileged_creators(&version) {
        pl["users"][&alice.user_id] = json!(100);
    }
    must_put_state(&alice, &room, "m.room.power_levels", "", pl).await;
    must_redact(&bob, &room, &carols).await;
    let gone = get_event(&carol, &room, &carols).await.must_status(200);
    assert_eq!(gone["content"], json!({}), "{gone}");

    // The creator redacts bob's message.
    let bobs = send_text(&bob, &room, "bob's words").await;
    must_redact(&alice, &room, &bobs).await;
    assert_eq!(get_event(&bob, &room, &bobs).await.must_status(200)["content"], json!({}));
    d.destroy().await;
}

/// Redacting a state event keeps the keys the room version preserves (a name loses its
/// `name`; power levels keep their levels), and the room keeps working.
#[tokio::test]
async fn test_redact_state_event() {
    let d = Deployment::new(1).await;
    let alice = d.register_user(0, "alice").await;
    let room =
        create_room(&alice, json!({"preset": "public_chat", "name": "to be redacted"})).await;
    let state = alice.get(&cs(&["rooms", &room, "state"])).await.must_status(200);
    let name_id = state
        .as_array()
        .expect("state")
        .iter()
        .find(|e| e["type"] == "m.room.name")
        .and_then(|e| e["event_id"].as_str())
        .expect("name event")
        .to_string();
    must_redact(&alice, &room, &name_id).await;
    let ev = get_event(&alice, &room, &name_id).await.must_status(200);
    assert_eq!(ev["content"], json!({}), "{ev}");
    // The room's current name is the redacted event's (empty) content.
    let r = crate::get_state(&alice, &room, "m.room.name", "").await;
    assert!(r.status == 200 || r.status == 404, "{}", r.text());
    if r.status == 200 {
        assert!(r.json().get("name").is_none(), "{}", r.text());
    }
    send_text(&alice, &room, "still works").await;
    must_put_state(&alice, &room, "m.room.name", "", json!({"name": "new name"})).await;
    assert_eq!(must_get_state(&alice, &room, "m.room.name", "").await["name"], "new name");
    d.destroy().await;
}

/// Redacting an event of another room is a 404; an event the server does not have (it
/// may be another server's, not arrived yet) only a moderator may redact, as in Synapse
/// (anyone else gets a 404); a malformed event ID is a 4xx; a non-member cannot redact.
#[tokio::test]
async fn test_redact_unknown_event() {
    let d = Deployment::new(1).await;
    let alice = d.register_user(0, "alice").await;
    let eve = d.register_user(0, "eve").await;
    let room = create_room(&alice, json!({"preset": "public_chat"})).await;
    let other = create_room(&alice, json!({"preset": "public_chat"})).await;
    let elsewhere = send_text(&alice, &other, "elsewhere").await;
    // The spec defines no error for another room's event: Glia answers 404 M_NOT_FOUND,
    // Synapse 400. Either way nothing else may be redacted.
    let r = redact(&alice, &room, &elsewhere, json!({})).await;
    r.must_client_error();
    if !d.is_external() {
        r.must_error(404, "M_NOT_FOUND");
    }
    // Alice (the creator, power 100) may redact an event not seen yet.
    let r = redact(&alice, &room, "$doesnotexist", json!({})).await;
    let id = r.must_status(200)["event_id"].as_str().expect("event_id").to_string();
    // Glia serves the redaction; Synapse answers 404 for it (its target is unknown).
    if !d.is_external() {
        let redaction = get_event(&alice, &room, &id).await.must_status(200);
        assert_eq!(redaction["type"], "m.room.redaction", "{redaction}");
    }
    // Eve, joined with power 0, may not.
    eve.request("POST", &cs(&["rooms", &room, "join"]), json!({})).await.must_status(200);
    redact(&eve, &room, "$alsounknown", json!({})).await.must_error(404, "M_NOT_FOUND");
    eve.request("POST", &cs(&["rooms", &room, "leave"]), json!({})).await.must_status(200);
    let ev = get_event(&alice, &other, &elsewhere).await.must_status(200);
    assert_eq!(
        ev["content"]["body"], "elsewhere",
        "a redaction in one room reaches no other: {ev}"
    );
    let mine = send_text(&alice, &room, "mine").await;
    let r = redact(&eve, &room, &mine, json!({})).await;
    r.must_error(403, "M_FORBIDDEN");
    d.destroy().await;
}

/// A local redaction and its effect are stored in one write: a member polling /sync
/// (without waiting, from a token before the message) while the sender redacts never
/// gets a response with the redaction and the message whole. Several rounds, so that a
/// redaction applied in a second write would show.
#[tokio::test]
async fn test_local_redaction_is_never_seen_before_its_effect() {
    let d = Deployment::new(1).await;
    let alice = d.register_user(0, "alice").await;
    let bob = d.register_user(0, "bob").await;
    let room = create_room(&alice, json!({"preset": "public_chat"})).await;
    must_join(&bob, &room).await;
    for round in 0..5 {
        let since = bob.sync_until(None, "a sync token", glia_harness::rooms::WAIT, |_| true).await;
        let id = send_text(&alice, &room, &format!("regrettable {round}")).await;
        let (poller, room2, id2) = (bob.clone(), room.clone(), id.clone());
        let watch = tokio::spawn(async move {
            let deadline = std::time::Instant::now() + glia_harness::rooms::WAIT;
            // A new timeout each poll: Synapse answers a repeated identical /sync from its
            // response cache, which would never show the redaction.
            for timeout in 0.. {
                let r = poller.sync(Some(&since), timeout, None).await;
                let events = r["rooms"]["join"][&room2]["timeline"]["events"].clone();
                let events = events.as_array().cloned().unwrap_or_default();
                let redacts = |e: &Value| {
                    e["type"] == "m.room.redaction"
                        && (e["redacts"] == id2.as_str() || e["content"]["redacts"] == id2.as_str())
                };
                if events.iter().any(redacts) {
                    if let Some(m) = events.iter().find(|e| e["event_id"] == id2.as_str()) {
                        assert_eq!(m["content"], json!({}), "round {round}: in the same sync: {m}");
                    }
                    return;
                }
                assert!(std::time::Instant::now() < deadline, "round {round}: no redaction");
            }
        });
        must_redact(&alice, &room, &id).await;
        watch.await.expect("the /sync poller");
    }
    d.destroy().await;
}
