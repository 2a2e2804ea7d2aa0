//! Glia's own users' device changes, as other servers hear of them: one
//! `m.device_list_update` per changed device, with the device's signed keys (or
//! `deleted`), a `stream_id` that grows per user and a `prev_id` naming the update sent
//! before to the same server; `/user/devices` answers with the latest `stream_id`.

use glia_harness::client::Body;
use glia_harness::rooms::WAIT;
use glia_harness::{Client, Deployment, HsConfig};
use serde_json::{Value, json};

use crate::fakes::cs;

const SEND: &str = "/_matrix/federation/v1/send/";

/// The `m.device_list_update` contents the fake server received for `user`, in order.
fn updates_for(fake: &glia_harness::federation::FakeServer, user: &str) -> Vec<Value> {
    fake.received_on("PUT", SEND)
        .into_iter()
        .flat_map(|r| r.body["edus"].as_array().cloned().unwrap_or_default())
        .filter(|e| e["edu_type"] == "m.device_list_update" && e["content"]["user_id"] == user)
        .map(|e| e["content"].clone())
        .collect()
}

/// Wait for the `n`th update for `user` and return it.
async fn nth_update(fake: &glia_harness::federation::FakeServer, user: &str, n: usize) -> Value {
    glia_harness::wait_until(&format!("device list update {n}"), WAIT, move || async move {
        updates_for(fake, user).get(n - 1).cloned()
    })
    .await
}

async fn upload_device_keys(c: &Client, ed: &str) {
    let keys = json!({
        "user_id": c.user_id, "device_id": c.device_id,
        "algorithms": ["m.olm.v1.curve25519-aes-sha2", "m.megolm.v1.aes-sha2"],
        "keys": {format!("ed25519:{}", c.device_id): ed},
        "signatures": {&c.user_id: {format!("ed25519:{}", c.device_id): "sig"}},
    });
    c.must_do("POST", &cs(&["keys", "upload"]), json!({"device_keys": keys})).await;
}

/// Key upload, new device, rename and logout each reach the fake server sharing Alice's
/// room as an update for that device, chained by `prev_id`; `/user/devices` agrees.
#[tokio::test]
async fn test_device_changes_reach_remote_servers_with_content() {
    let Some(s) = crate::fakes::joined_room(None).await else { return };
    let (fake, alice) = (&s.fake, &s.alice);
    upload_device_keys(alice, "key1").await;
    let first = nth_update(fake, &alice.user_id, 1).await;
    assert_eq!(first["device_id"], alice.device_id.as_str(), "{first}");
    assert_eq!(first["deleted"], false, "{first}");
    assert_eq!(first["keys"]["keys"][format!("ed25519:{}", alice.device_id)], "key1", "{first}");
    assert_eq!(first["keys"]["user_id"], alice.user_id.as_str(), "{first}");
    assert!(first["keys"]["signatures"][&alice.user_id].is_object(), "signed: {first}");
    assert!(first.get("device_display_name").is_none(), "no names over federation: {first}");
    // The first update this server gets for Alice follows none it was sent.
    assert_eq!(first["prev_id"], json!([]), "{first}");
    let s1 = first["stream_id"].as_i64().expect("stream_id");

    let phone = s.d.client(0).must_login(&alice.user_id, "correct horse battery staple").await;
    let added = nth_update(fake, &alice.user_id, 2).await;
    assert_eq!(added["device_id"], phone.device_id.as_str(), "{added}");
    assert_eq!(added["deleted"], false, "{added}");
    assert!(added.get("keys").is_none(), "no keys uploaded yet: {added}");
    assert_eq!(added["prev_id"], json!([s1]), "{added}");
    let s2 = added["stream_id"].as_i64().expect("stream_id");
    assert!(s2 > s1, "{s1} then {s2}");

    phone
        .must_do("PUT", &cs(&["devices", &phone.device_id]), json!({"display_name": "Phone"}))
        .await;
    let renamed = nth_update(fake, &alice.user_id, 3).await;
    assert_eq!(renamed["device_id"], phone.device_id.as_str(), "{renamed}");
    assert_eq!(renamed["prev_id"], json!([s2]), "{renamed}");
    let s3 = renamed["stream_id"].as_i64().expect("stream_id");
    assert!(s3 > s2);

    phone.must_do("POST", &cs(&["logout"]), json!({})).await;
    let deleted = nth_update(fake, &alice.user_id, 4).await;
    assert_eq!(deleted["device_id"], phone.device_id.as_str(), "{deleted}");
    assert_eq!(deleted["deleted"], true, "{deleted}");
    assert_eq!(deleted["prev_id"], json!([s3]), "{deleted}");
    let s4 = deleted["stream_id"].as_i64().expect("stream_id");
    assert!(s4 > s3);

    // New keys for the first device: the update carries them.
    upload_device_keys(alice, "key2").await;
    let rekeyed = nth_update(fake, &alice.user_id, 5).await;
    assert_eq!(rekeyed["keys"]["keys"][format!("ed25519:{}", alice.device_id)], "key2");
    assert_eq!(rekeyed["prev_id"], json!([s4]), "{rekeyed}");
    let s5 = rekeyed["stream_id"].as_i64().expect("stream_id");

    // `/user/devices` names the stream position of the last update.
    let enc = glia_harness::client::encode_segment;
    let path = format!("/_matrix/federation/v1/user/devices/{}", enc(&alice.user_id));
    let r = fake.request(&s.peer.base_url, &s.peer.server_name, "GET", &path, None).await;
    let r = r.must_status(200);
    assert_eq!(r["stream_id"], s5, "{r}");
    s.d.destroy().await;
}

/// How many `GET /user/devices` requests a Glia answered (from its metrics).
async fn user_devices_requests(d: &Deployment, i: usize) -> u64 {
    let addrs = &d.hs(i).server.as_ref().expect("in-process").addrs;
    for a in addrs {
        // The federation listener speaks TLS: only the metrics one answers this.
        let c = Client::new(&format!("http://{a}"));
        let Ok(r) = c.try_request("GET", &["_synapse", "metrics"], Body::None, &[]).await else {
            continue;
        };
        if r.status != 200 {
            continue;
        }
        return r
            .text()
            .lines()
            .filter(|l| {
                l.starts_with("glia_http_requests_total{method=\"GET\"")
                    && l.contains("/user/devices/")
            })
            .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
            .sum();
    }
    panic!("no metrics listener");
}

/// Between two Glias: once Bob's server holds Alice's list, her new device, its keys, a
/// rename and its removal reach Bob's answers through updates alone, without another
/// `/user/devices` fetch.
#[tokio::test]
async fn test_glia_applies_glia_device_updates_without_resync() {
    let cfg = HsConfig { metrics: true, ..Default::default() };
    let Some(d) = Deployment::federated_with(2, cfg).await else { return };
    let (alice, bob, _room) = crate::rooms::shared_room(&d).await;
    upload_device_keys(&alice, "a1").await;
    let query = json!({"device_keys": {&alice.user_id: []}});
    let first = bob.must_do("POST", &cs(&["keys", "query"]), query.clone()).await;
    assert!(first["device_keys"][&alice.user_id].get(&alice.device_id).is_some(), "{first}");
    let fetches = user_devices_requests(&d, 0).await;
    assert_eq!(fetches, 1, "bob's server fetched alice's list once");

    let phone = d.client(0).must_login(&alice.user_id, "correct horse battery staple").await;
    upload_device_keys(&phone, "p1").await;
    let (b, q, alice_id, phone_id) = (&bob, &query, &alice.user_id, &phone.device_id);
    let has_phone = move |want: bool| async move {
        let r = b.must_do("POST", &cs(&["keys", "query"]), q.clone()).await;
        (r["device_keys"][alice_id].get(phone_id).is_some() == want).then_some(r)
    };
    let r = glia_harness::wait_until("alice's phone at bob's", WAIT, move || has_phone(true)).await;
    assert_eq!(r["device_keys"][alice_id][phone_id]["keys"][format!("ed25519:{phone_id}")], "p1");
    phone.must_do("POST", &cs(&["logout"]), json!({})).await;
    glia_harness::wait_until("alice's phone gone at bob's", WAIT, move || has_phone(false)).await;
    assert_eq!(user_devices_requests(&d, 0).await, fetches, "updates applied without a fetch");
    d.destroy().await;
}
