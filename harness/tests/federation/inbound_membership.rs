//! Inbound send_join / send_leave with bad input from a fake server, after Complement's
//! TestBannedUserCannotSendJoin, TestCannotSendNonJoinViaSendJoinV2 and
//! TestCannotSendNonLeaveViaSendLeaveV2.

use glia_harness::federation::room::Ev;
use serde_json::json;

use crate::fakes::{Setup, cs, joined_room, membership};

/// TestBannedUserCannotSendJoin: a join of a banned user, built by their server on the
/// room's state, is 403 M_FORBIDDEN and the user stays banned.
#[tokio::test]
async fn test_banned_user_cannot_send_join() {
    let Some(s) = joined_room(None).await else { return };
    s.alice.must_do("POST", &cs(&["rooms", &s.room, "ban"]), json!({"user_id": s.charlie})).await;
    // make_join already refuses.
    s.fake
        .make_membership(&s.peer, "join", &s.room, &s.charlie)
        .await
        .must_error(403, "M_FORBIDDEN");
    // A join built without make_join (on the state before the ban) is refused as well.
    let join = s.fake.build(&s.room, Ev::member(&s.charlie, "join"));
    let id = s.fake.event_id(&s.room, &join);
    s.fake
        .send_membership(&s.peer, "join", &s.room, &id, &join)
        .await
        .must_error(403, "M_FORBIDDEN");
    assert_eq!(membership(&s.alice, &s.room, &s.charlie).await, "ban");
    s.d.destroy().await;
}

/// Each event that is not `expected` membership of its sender goes to `kind` and is 400.
async fn refuses_other_events(s: &Setup, kind: &str, expected: &str) {
    let dora = s.fake.user_id("dora");
    let mut events = vec![
        ("regular event", Ev::message(&s.charlie, "bzz")),
        (
            "non-state membership event",
            Ev::new("m.room.member", &s.charlie, json!({"membership": expected})),
        ),
        (
            "mismatched state key",
            Ev::state("m.room.member", &dora, &s.charlie, json!({"membership": expected})),
        ),
    ];
    for m in ["join", "leave", "knock", "invite"] {
        if m != expected {
            events.push(("other membership", Ev::member(&s.charlie, m)));
        }
    }
    for (what, ev) in events {
        let built = s.fake.build(&s.room, ev);
        let id = s.fake.event_id(&s.room, &built);
        let r = s.fake.send_membership(&s.peer, kind, &s.room, &id, &built).await;
        assert_eq!(r.status, 400, "{what} via send_{kind}: {}", r.text());
    }
}

/// TestCannotSendNonJoinViaSendJoinV2.
#[tokio::test]
async fn test_cannot_send_non_join_via_send_join_v2() {
    let Some(s) = joined_room(None).await else { return };
    refuses_other_events(&s, "join", "join").await;
    s.d.destroy().await;
}

/// TestCannotSendNonLeaveViaSendLeaveV2.
#[tokio::test]
async fn test_cannot_send_non_leave_via_send_leave_v2() {
    let Some(s) = joined_room(None).await else { return };
    refuses_other_events(&s, "leave", "leave").await;
    // A proper leave through make_leave / send_leave is accepted.
    let made = s.fake.make_membership(&s.peer, "leave", &s.room, &s.charlie).await;
    let leave = s.fake.sign_template(&made.must_status(200));
    let id = s.fake.event_id(&s.room, &leave);
    s.fake.send_membership(&s.peer, "leave", &s.room, &id, &leave).await.must_status(200);
    assert_eq!(membership(&s.alice, &s.room, &s.charlie).await, "leave");
    s.d.destroy().await;
}

/// make_join refusals: a user of another server than the requester (403), a room Glia
/// does not know (404), a requester not offering the room's version (400
/// M_INCOMPATIBLE_ROOM_VERSION, naming the version). send_join refusals: the event for another room, under
/// another event ID, or with a forged signature.
#[tokio::test]
async fn test_make_join_and_send_join_refusals() {
    let Some(s) = joined_room(None).await else { return };
    let version = s.fake.room(&s.room, |r| r.version.clone());
    let dora = s.fake.user_id("dora");
    let alien = format!("@dora:{}", s.peer.server_name);
    s.fake.make_membership(&s.peer, "join", &s.room, &alien).await.must_error(403, "M_FORBIDDEN");
    let nowhere = format!("!nowhere:{}", s.peer.server_name);
    s.fake.make_membership(&s.peer, "join", &nowhere, &dora).await.must_error(404, "M_NOT_FOUND");
    let path = format!(
        "/_matrix/federation/v1/make_join/{}/{}?ver=1",
        glia_harness::client::encode_segment(&s.room),
        glia_harness::client::encode_segment(&dora)
    );
    if version != "1" {
        let body = s
            .fake
            .request(&s.peer.base_url, &s.peer.server_name, "GET", &path, None)
            .await
            .must_error(400, "M_INCOMPATIBLE_ROOM_VERSION");
        // The error names the room's version (spec, make_join 400).
        assert_eq!(body["room_version"], json!(version), "{body}");
    }

    let made = s.fake.make_membership(&s.peer, "join", &s.room, &dora).await.must_status(200);
    let join = s.fake.sign_template(&made);
    let id = s.fake.event_id(&s.room, &join);
    let r = s.fake.send_membership(&s.peer, "join", &nowhere, &id, &join).await;
    assert_eq!(r.status, 400, "the event is for another room: {}", r.text());
    let r = s.fake.send_membership(&s.peer, "join", &s.room, "$another", &join).await;
    assert_eq!(r.status, 400, "another event ID: {}", r.text());
    let mut forged = join.clone();
    forged["signatures"] = s.fake.build(&s.room, Ev::message(&dora, "x"))["signatures"].clone();
    let r = s.fake.send_membership(&s.peer, "join", &s.room, &id, &forged).await;
    assert_eq!(r.status, 403, "forged signature: {}", r.text());
    let members = s.alice.get(&cs(&["rooms", &s.room, "joined_members"])).await.must_status(200);
    assert!(members["joined"].get(&dora).is_none(), "dora joined: {members}");
    // The genuine join goes in.
    s.fake.send_membership(&s.peer, "join", &s.room, &id, &join).await.must_status(200);
    assert_eq!(membership(&s.alice, &s.room, &dora).await, "join");
    s.d.destroy().await;
}
