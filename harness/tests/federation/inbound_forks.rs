//! Forks in a fake server's room: concurrent state changes on two branches reach Glia in
//! either order, and its current state is the one state resolution picks, whatever the
//! order of arrival.

use glia_harness::federation::room::Ev;
use serde_json::json;

use crate::fakes::{cs, join_via, pdu_result, start_with};

/// Two concurrent topic changes by the same (all-powerful) sender: state resolution v2
/// orders them by their power-level mainline, then by origin_server_ts; the later wins.
/// A merge event on top keeps it.
#[tokio::test]
async fn test_inbound_federation_resolves_concurrent_state() {
    let Some((d, fake, alice, peer)) = start_with(String::new()).await else { return };
    let bob = fake.user_id("bob");
    for later_first in [false, true] {
        let room = fake.create_room("10", &bob);
        join_via(&alice, &room, &fake.server_name).await.must_status(200);
        let tips = fake.room(&room, |r| r.tips.clone());
        let base = glia_harness::federation::now_ms();
        let topic = |name: &str, ts: i64| {
            let mut ev = Ev::state("m.room.topic", "", &bob, json!({"topic": name})).prev(&tips);
            ev.extra.insert("origin_server_ts".into(), json!(ts));
            ev
        };
        let (early_id, early) = fake.send_in(&room, topic("earlier", base + 1_000));
        let (late_id, late) = fake.send_in(&room, topic("later", base + 2_000));
        let pdus = if later_first { [late, early] } else { [early, late] };
        let answer = fake.send_transaction(&peer, &pdus, &[]).await.must_status(200);
        for id in [&early_id, &late_id] {
            assert_eq!(pdu_result(&answer, id), &json!({}), "{answer}");
        }
        let state_topic = || async {
            let t = alice.get(&cs(&["rooms", &room, "state", "m.room.topic", ""])).await;
            t.must_status(200)["topic"].clone()
        };
        assert_eq!(state_topic().await, "later", "later_first={later_first}");
        // A message merging the branches leaves the resolved state as it is.
        let (merge_id, merge) = fake.send_in(&room, Ev::message(&bob, "merged"));
        let answer = fake.send_transaction(&peer, &[merge], &[]).await.must_status(200);
        assert_eq!(pdu_result(&answer, &merge_id), &json!({}), "{answer}");
        assert_eq!(state_topic().await, "later", "after the merge, later_first={later_first}");
    }
    d.destroy().await;
}
