//! History visibility in /sync: the TestFetchHistorical* family's sync side. Under
//! `joined` a newcomer does not see what was said before they joined; under `shared` they do.

use std::time::Duration;

use glia_harness::Deployment;
use serde_json::json;

/// Whether a user who joins after a message sees it in their first syncs.
async fn seen_by_newcomer(visibility: &str) -> bool {
    let d = Deployment::new(1).await;
    let alice = d.register_user(0, "alice").await;
    let bob = d.register_user(0, "bob").await;
    let r = alice
        .must_do(
            "POST",
            &["_matrix", "client", "v3", "createRoom"],
            json!({"preset": "public_chat", "initial_state": [
                {"type": "m.room.history_visibility", "state_key": "", "content": {"history_visibility": visibility}}
            ]}),
        )
        .await;
    let room = r["room_id"].as_str().expect("room").to_string();
    let before = alice
        .must_do(
            "PUT",
            &["_matrix", "client", "v3", "rooms", &room, "send", "m.room.message", "hv1"],
            json!({"msgtype": "m.text", "body": "before"}),
        )
        .await["event_id"]
        .as_str()
        .expect("id")
        .to_string();
    bob.must_do("POST", &["_matrix", "client", "v3", "join", &room], json!({})).await;
    let after = alice
        .must_do(
            "PUT",
            &["_matrix", "client", "v3", "rooms", &room, "send", "m.room.message", "hv2"],
            json!({"msgtype": "m.text", "body": "after"}),
        )
        .await["event_id"]
        .as_str()
        .expect("id")
        .to_string();
    let mut saw_before = false;
    bob.sync_until(None, "the message after joining", Duration::from_secs(10), |resp| {
        let evs = resp["rooms"]["join"][&room]["timeline"]["events"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        saw_before |= evs.iter().any(|e| e["event_id"] == before.as_str());
        evs.iter().any(|e| e["event_id"] == after.as_str())
    })
    .await;
    d.destroy().await;
    saw_before
}

/// TestFetchHistoricalJoinedEventDenied (sync): `joined` hides what came before the join.
#[tokio::test]
async fn test_history_joined_hides_earlier_messages() {
    let saw_before = seen_by_newcomer("joined").await;
    assert!(
        !saw_before,
        "a message from before the join was visible under history_visibility joined"
    );
}

/// TestFetchHistoricalSharedEvent (sync): `shared` shows history to members.
#[tokio::test]
async fn test_history_shared_shows_earlier_messages() {
    let saw_before = seen_by_newcomer("shared").await;
    assert!(
        saw_before,
        "a message from before the join was hidden under history_visibility shared"
    );
}

/// SyTest "Current state appears in timeline in private history": state events in the
/// current state reach the timeline even when history visibility would hide them.
#[tokio::test]
async fn test_current_state_appears_in_private_history() {
    let d = Deployment::new(1).await;
    let creator = d.register_user(0, "creator").await;
    let syncer = d.register_user(0, "syncer").await;
    let invitee = d.register_user(0, "invitee").await;
    let r = creator
        .must_do(
            "POST",
            &["_matrix", "client", "v3", "createRoom"],
            json!({"preset": "public_chat"}),
        )
        .await;
    let room = r["room_id"].as_str().expect("room").to_string();
    syncer.must_do("POST", &["_matrix", "client", "v3", "join", &room], json!({})).await;
    creator
        .must_do(
            "PUT",
            &["_matrix", "client", "v3", "rooms", &room, "state", "m.room.history_visibility", ""],
            json!({"history_visibility": "joined"}),
        )
        .await;
    creator
        .must_do(
            "POST",
            &["_matrix", "client", "v3", "rooms", &room, "invite"],
            json!({"user_id": invitee.user_id}),
        )
        .await;
    let since = syncer
        .sync_until(None, "in the room", Duration::from_secs(10), |r| {
            r["rooms"]["join"][&room].is_object()
        })
        .await;
    syncer.must_do("POST", &["_matrix", "client", "v3", "rooms", &room, "leave"], json!({})).await;
    invitee.must_do("POST", &["_matrix", "client", "v3", "join", &room], json!({})).await;
    syncer.must_do("POST", &["_matrix", "client", "v3", "join", &room], json!({})).await;
    syncer
        .sync_until(Some(&since), "the invitee's join", Duration::from_secs(10), |r| {
            r["rooms"]["join"][&room]["timeline"]["events"].as_array().is_some_and(|evs| {
                evs.iter().any(|e| {
                    e["type"] == "m.room.member"
                        && e["state_key"] == invitee.user_id.as_str()
                        && e["content"]["membership"] == "join"
                })
            })
        })
        .await;
    d.destroy().await;
}
