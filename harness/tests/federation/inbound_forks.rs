//! Forks in a fake server's room: concurrent state changes on two branches reach Glia in
//! either order, and its current state is the one state resolution picks, whatever the
//! order of arrival.

use glia_harness::federation::room::Ev;
use serde_json::json;

use glia_harness::rooms::WAIT;

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

/// An event soft-failed on a fork, then an accepted event on top of it: the fork's event
/// behind the soft-failed one stops being a forward extremity (as in Synapse), so Glia's
/// next event does not point at it. Before, such extremities piled up, one per
/// soft-failed event, and kept two busy servers' current states apart.
#[tokio::test]
async fn test_extremities_behind_a_soft_failed_event_are_dropped() {
    let Some((d, fake, alice, peer)) = start_with(String::new()).await else { return };
    let (bob, charlie, dave) = (fake.user_id("bob"), fake.user_id("charlie"), fake.user_id("dave"));
    let room = fake.create_room("10", &bob);
    join_via(&alice, &room, &fake.server_name).await.must_status(200);
    let mut joins = vec![];
    for u in [&charlie, &dave] {
        joins.push(fake.send_in(&room, Ev::member(u, "join")).1);
    }
    fake.send_transaction(&peer, &joins, &[]).await.must_status(200);
    let (tips, create, power, charlie_join) = fake.room(&room, |r| {
        let id = |t: &str, k: &str| r.state_id(t, k).expect("state");
        (
            r.tips.clone(),
            id("m.room.create", ""),
            id("m.room.power_levels", ""),
            id("m.room.member", &charlie),
        )
    });
    // Two branches from the same tips: Bob bans Charlie; Dave talks.
    let ban = Ev::state("m.room.member", &charlie, &bob, json!({"membership": "ban"})).prev(&tips);
    let (ban_id, ban) = fake.send_in(&room, ban);
    let (p_id, p) = fake.send_in(&room, Ev::message(&dave, "branch").prev(&tips));
    // Charlie on Dave's branch: allowed by the state before it, not by Glia's current state
    // (soft-failed). Then Dave on top of Charlie's message: accepted.
    let y = Ev::message(&charlie, "soft").prev(std::slice::from_ref(&p_id)).auth(&[
        create,
        power,
        charlie_join,
    ]);
    let (y_id, y) = fake.send_in(&room, y);
    let (z_id, z) =
        fake.send_in(&room, Ev::message(&dave, "on top").prev(std::slice::from_ref(&y_id)));
    let answer = fake.send_transaction(&peer, &[ban, p, y, z], &[]).await.must_status(200);
    for id in [&ban_id, &p_id, &y_id, &z_id] {
        assert_eq!(pdu_result(&answer, id), &json!({}), "{answer}");
    }
    // Soft-failed: kept out of the timeline (and of the extremities), unlike Dave's.
    let timeline = crate::fakes::timeline_ids(&alice, &room).await;
    assert!(!timeline.contains(&y_id) && timeline.contains(&z_id), "{timeline:?}");
    // Glia's next event points at its extremities: the ban and Dave's last, not Dave's first.
    let id = glia_harness::rooms::send_text(&alice, &room, "after").await;
    let rules = glia_harness::federation::room::rules_of("10");
    let fake2 = &fake;
    let pdu = glia_harness::wait_until("alice's message at the fake server", WAIT, move || {
        let found =
            fake2.received_on("PUT", "/_matrix/federation/v1/send/").into_iter().find_map(|r| {
                r.body["pdus"]
                    .as_array()?
                    .iter()
                    .find(|p| glia_harness::federation::room::event_id_of(p, &rules) == id)
                    .cloned()
            });
        async move { found }
    })
    .await;
    let mut prev: Vec<String> = pdu["prev_events"]
        .as_array()
        .expect("prev_events")
        .iter()
        .filter_map(|p| p.as_str().map(str::to_string))
        .collect();
    prev.sort();
    let mut want = vec![ban_id, z_id];
    want.sort();
    assert_eq!(prev, want, "dave's first message {p_id} is still an extremity");
    d.destroy().await;
}

/// Glia's own event on two forks (its member event and a remote topic change, concurrent)
/// is stored with the resolved state before it, not the newest fork's: `/state_ids` at
/// Alice's next message has both her new member event and the topic. Before, it had the
/// topic fork's state (her old member event), which other servers resolved differently.
#[tokio::test]
async fn test_local_event_on_two_forks_has_the_resolved_state() {
    let Some((d, fake, alice, peer)) = start_with(String::new()).await else { return };
    let bob = fake.user_id("bob");
    let room = fake.create_room("10", &bob);
    join_via(&alice, &room, &fake.server_name).await.must_status(200);
    let tips = fake.room(&room, |r| r.tips.clone());
    let mine = alice
        .request(
            "PUT",
            &cs(&["rooms", &room, "state", "m.room.member", &alice.user_id]),
            json!({"membership": "join", "displayname": "forked"}),
        )
        .await
        .must_status(200)["event_id"]
        .as_str()
        .expect("event_id")
        .to_string();
    let topic = Ev::state("m.room.topic", "", &bob, json!({"topic": "other fork"})).prev(&tips);
    let (topic_id, topic) = fake.send_in(&room, topic);
    let answer = fake.send_transaction(&peer, &[topic], &[]).await.must_status(200);
    assert_eq!(pdu_result(&answer, &topic_id), &json!({}), "{answer}");
    let id = glia_harness::rooms::send_text(&alice, &room, "on both forks").await;
    let path = format!(
        "/_matrix/federation/v1/state_ids/{}?event_id={}",
        glia_harness::client::encode_segment(&room),
        glia_harness::client::encode_segment(&id)
    );
    let r = fake.request(&peer.base_url, &peer.server_name, "GET", &path, None).await;
    let ids = r.must_status(200)["pdu_ids"].clone();
    let ids: Vec<&str> =
        ids.as_array().expect("pdu_ids").iter().filter_map(|v| v.as_str()).collect();
    assert!(ids.contains(&mine.as_str()), "alice's member event missing: {ids:?}");
    assert!(ids.contains(&topic_id.as_str()), "the topic missing: {ids:?}");
    d.destroy().await;
}

/// The count of `glia_state_resolution_seconds` in a metrics exposition.
fn resolutions(text: &str) -> u64 {
    text.lines()
        .find_map(|l| l.strip_prefix("glia_state_resolution_seconds_count "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("glia_state_resolution_seconds_count missing from:\n{text}"))
}

/// A fork of two concurrent topic changes is resolved, and the metrics endpoint counts
/// it: `glia_state_resolution_seconds` (and the conflicted keys) grow. The histogram is
/// per process, and other scenarios of this binary may resolve too, so only an increase
/// is checked.
#[tokio::test]
async fn test_state_resolution_is_counted_in_metrics() {
    let cfg = glia_harness::HsConfig { metrics: true, ..Default::default() };
    let Some(d) = glia_harness::Deployment::federated_with(1, cfg).await else { return };
    let fake = glia_harness::federation::FakeServer::start().await;
    let alice = d.register_user(0, "alice").await;
    let peer = glia_harness::federation::actions::Peer::new(
        &d.hs(0).base_url,
        &crate::fakes::server_of(&alice.user_id),
    );
    let addrs = &d.hs(0).server.as_ref().expect("in-process").addrs;
    let metrics =
        glia_harness::Client::new(&format!("http://{}", addrs.last().expect("a metrics listener")));
    let scrape = || async {
        let r = metrics.get(&["_synapse", "metrics"]).await;
        assert_eq!(r.status, 200);
        r.text()
    };
    let bob = fake.user_id("bob");
    let room = fake.create_room("10", &bob);
    join_via(&alice, &room, &fake.server_name).await.must_status(200);
    let before = resolutions(&scrape().await);
    let tips = fake.room(&room, |r| r.tips.clone());
    let topic =
        |name: &str| Ev::state("m.room.topic", "", &bob, json!({"topic": name})).prev(&tips);
    let (one_id, one) = fake.send_in(&room, topic("one"));
    let (two_id, two) = fake.send_in(&room, topic("two"));
    let answer = fake.send_transaction(&peer, &[one, two], &[]).await.must_status(200);
    for id in [&one_id, &two_id] {
        assert_eq!(pdu_result(&answer, id), &json!({}), "{answer}");
    }
    let text = scrape().await;
    assert!(resolutions(&text) > before, "no resolution counted after a fork:\n{text}");
    for needle in [
        "# TYPE glia_state_resolution_seconds histogram",
        "glia_state_resolution_seconds_bucket{le=\"+Inf\"} ",
        "glia_state_resolution_seconds_sum ",
        "glia_state_resolution_conflicted_keys_count ",
    ] {
        assert!(text.contains(needle), "{needle} missing from:\n{text}");
    }
    d.destroy().await;
}

/// A room version 1 room (the original state resolution): Bob's two concurrent topics
/// resolve to the one of greater depth (v2 would take the later timestamp), and Bob's ban
/// of Charlie beats Charlie's concurrent display-name change, whichever fork arrives first.
#[tokio::test]
async fn test_room_v1_forks_resolve_with_the_original_algorithm() {
    let Some((d, fake, alice, peer)) = start_with(String::new()).await else { return };
    let (bob, charlie) = (fake.user_id("bob"), fake.user_id("charlie"));
    for deep_first in [false, true] {
        let room = fake.create_room("1", &bob);
        fake.send_in(&room, Ev::member(&charlie, "join"));
        join_via(&alice, &room, &fake.server_name).await.must_status(200);
        let (tips, create, power, rules, bob_join, charlie_join) = fake.room(&room, |r| {
            let id = |t: &str, k: &str| r.state_id(t, k).expect("state");
            (
                r.tips.clone(),
                id("m.room.create", ""),
                id("m.room.power_levels", ""),
                id("m.room.join_rules", ""),
                id("m.room.member", &bob),
                id("m.room.member", &charlie),
            )
        });
        let base = glia_harness::federation::now_ms();
        let topic = |name: &str, ts: i64, prev: &[String]| {
            let mut ev = Ev::state("m.room.topic", "", &bob, json!({"topic": name}))
                .prev(prev)
                .auth(&[create.clone(), power.clone(), bob_join.clone()]);
            ev.extra.insert("origin_server_ts".into(), json!(ts));
            ev
        };
        // Fork B, deeper: Charlie talks and renames himself, then Bob sets an early topic.
        let charlie_auth = [create.clone(), power.clone(), charlie_join.clone()];
        let (msg_id, msg) =
            fake.send_in(&room, Ev::message(&charlie, "hi").prev(&tips).auth(&charlie_auth));
        let rename = Ev::state(
            "m.room.member",
            &charlie,
            &charlie,
            json!({"membership": "join", "displayname": "C"}),
        )
        .prev(std::slice::from_ref(&msg_id))
        .auth(&[create.clone(), power.clone(), rules.clone(), charlie_join.clone()]);
        let (rename_id, rename) = fake.send_in(&room, rename);
        let (deep_id, deep) =
            fake.send_in(&room, topic("deep", base + 1_000, std::slice::from_ref(&rename_id)));
        // Fork A, shallower: Bob sets a later topic, then bans Charlie.
        let (shallow_id, shallow) = fake.send_in(&room, topic("shallow", base + 2_000, &tips));
        let ban = Ev::state("m.room.member", &charlie, &bob, json!({"membership": "ban"}))
            .prev(std::slice::from_ref(&shallow_id))
            .auth(&[create.clone(), power.clone(), bob_join.clone(), charlie_join.clone()]);
        let (ban_id, ban) = fake.send_in(&room, ban);
        let (fork_a, fork_b) = (vec![shallow, ban], vec![msg, rename, deep]);
        let (first, second) = if deep_first { (fork_b, fork_a) } else { (fork_a, fork_b) };
        for pdus in [first, second] {
            let answer = fake.send_transaction(&peer, &pdus, &[]).await.must_status(200);
            for id in [&msg_id, &rename_id, &deep_id, &shallow_id, &ban_id] {
                if let Some(r) = answer["pdus"].get(id.as_str()) {
                    assert_eq!(r, &json!({}), "{id}: {answer}");
                }
            }
        }
        let state = |t: &'static str, k: String| {
            let alice = &alice;
            let room = &room;
            async move { alice.get(&cs(&["rooms", room, "state", t, &k])).await.must_status(200) }
        };
        assert_eq!(
            state("m.room.topic", String::new()).await["topic"],
            "deep",
            "deep_first={deep_first}"
        );
        assert_eq!(
            state("m.room.member", charlie.clone()).await["membership"],
            "ban",
            "deep_first={deep_first}"
        );
    }
    d.destroy().await;
}
