//! Server ACLs across three Glias (Complement's TestACLs): once a room's
//! `m.room.server_acl` denies a server, events from that server are refused by the
//! others and new events are not sent to it.

use glia_harness::Deployment;
use glia_harness::rooms::*;
use serde_json::json;

#[tokio::test]
async fn test_acls() {
    // Server ACLs ignore ports: the denied server needs another host name.
    let hosts = ["localhost", "localhost", "127.0.0.1"];
    let Some(dep) = Deployment::federated_hosts(&hosts, Default::default()).await else {
        return;
    };
    let alice = dep.register_user(0, "alice").await;
    let bob = dep.register_user(1, "bob").await;
    let charlie = dep.register_user(2, "charlie").await;
    let room = create_room(&alice, json!({"preset": "public_chat"})).await;
    let hs1 = server_of(&alice.user_id);
    for c in [&bob, &charlie] {
        let r = join_through(c, &room, &[&hs1]).await;
        assert_eq!(r.status, 200, "join failed: {}", r.text());
        wait_membership(&alice, &room, &c.user_id, "join").await;
    }
    // Before the ACL, Charlie's messages reach everyone.
    let before = send_text(&charlie, &room, "before the ACL").await;
    for c in [&alice, &bob] {
        wait_event(c, &room, &before).await;
    }
    let acl = json!({"allow": ["*"], "deny": ["127.0.0.1"], "allow_ip_literals": true});
    alice
        .request("PUT", &cs(&["rooms", &room, "state", "m.room.server_acl", ""]), acl)
        .await
        .must_status(200);
    bob.sync_until(
        None,
        "the ACL on hs2",
        WAIT,
        has_event(&room, |e| e["type"] == "m.room.server_acl"),
    )
    .await;

    // Charlie's server is now refused, by the room's server and by Bob's.
    let denied = send_text(&charlie, &room, "after the ACL").await;
    let after_bob = send_text(&bob, &room, "bob after the ACL").await;
    wait_event(&alice, &room, &after_bob).await;
    for c in [&alice, &bob] {
        let r = c.get(&cs(&["rooms", &room, "event", &denied])).await;
        assert_eq!(r.status, 404, "an event from a denied server was accepted: {}", r.text());
    }
    // Alice's new messages are not sent to the denied server.
    let from_alice = send_text(&alice, &room, "not for hs3").await;
    wait_event(&bob, &room, &from_alice).await;
    let r = charlie.get(&cs(&["rooms", &room, "event", &from_alice])).await;
    assert_eq!(r.status, 404, "a denied server received a new event: {}", r.text());
    dep.destroy().await;
}
