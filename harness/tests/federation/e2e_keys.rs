//! End-to-end keys across servers (Complement: TestFederationKeyUploadQuery): device keys
//! and one-time keys uploaded on one server are queried and claimed from another, through
//! `/user/keys/query`, `/user/keys/claim` and `/user/devices`.

use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::STANDARD_NO_PAD;
use glia_harness::federation::FakeServer;
use glia_harness::federation::room::Ev;
use glia_harness::rooms::WAIT;
use glia_harness::{Client, Deployment};
use ruma::signatures::Ed25519KeyPair;
use serde_json::{Value, json};

use crate::support::{hanging_server, one_trusting, server_of, unreachable_server};

fn keys_path(what: &str) -> Vec<&str> {
    let mut p = vec!["_matrix", "client", "v3", "keys"];
    p.extend(what.split('/'));
    p
}

/// Sign `v` as `user_id` with `pair` (ruma), as a client does.
fn signed(user_id: &str, pair: &Ed25519KeyPair, v: Value) -> Value {
    let map = v.as_object().cloned().expect("object");
    let mut obj = ruma::canonical_json::try_from_json_map(map).expect("canonical");
    ruma::signatures::sign_json(user_id, pair, &mut obj).expect("sign");
    serde_json::to_value(&obj).expect("json")
}

/// Upload signed device keys and two signed one-time keys for `c`'s device; returns the
/// device keys as uploaded.
async fn upload_keys(c: &Client) -> Value {
    let pair =
        Ed25519KeyPair::from_der(&Ed25519KeyPair::generate(), c.device_id.clone()).expect("key");
    let ed = STANDARD_NO_PAD.encode(pair.public_key());
    let curve = STANDARD_NO_PAD.encode(rand::random::<[u8; 32]>());
    let device_keys = signed(
        &c.user_id,
        &pair,
        json!({
            "user_id": c.user_id, "device_id": c.device_id,
            "algorithms": ["m.olm.v1.curve25519-aes-sha2", "m.megolm.v1.aes-sha2"],
            "keys": {format!("ed25519:{}", c.device_id): ed, format!("curve25519:{}", c.device_id): curve},
        }),
    );
    let mut otks = serde_json::Map::new();
    for id in ["AAAA", "AAAB"] {
        let k = json!({"key": STANDARD_NO_PAD.encode(rand::random::<[u8; 32]>())});
        otks.insert(format!("signed_curve25519:{id}"), signed(&c.user_id, &pair, k));
    }
    let body = json!({"device_keys": device_keys, "one_time_keys": otks});
    let r = c.request("POST", &keys_path("upload"), body).await.must_status(200);
    assert_eq!(r["one_time_key_counts"]["signed_curve25519"], 2, "{r}");
    device_keys
}

/// An ed25519 key named after its own public key (cross-signing keys are).
fn cross_signing_pair() -> (Ed25519KeyPair, String) {
    let der = Ed25519KeyPair::generate();
    let probe = Ed25519KeyPair::from_der(&der, "probe".into()).expect("key");
    let public = STANDARD_NO_PAD.encode(probe.public_key());
    (Ed25519KeyPair::from_der(&der, public.clone()).expect("key"), public)
}

/// Upload a master key and a self-signing key (signed by the master key) for `c`;
/// returns both as uploaded.
async fn upload_cross_signing(c: &Client) -> (Value, Value) {
    let (master, master_pub) = cross_signing_pair();
    let (_, ssk_pub) = cross_signing_pair();
    let key = |usage: &str, public: &str| json!({"user_id": c.user_id, "usage": [usage], "keys": {format!("ed25519:{public}"): public}});
    let master_key = signed(&c.user_id, &master, key("master", &master_pub));
    let self_signing = signed(&c.user_id, &master, key("self_signing", &ssk_pub));
    let body = json!({"master_key": master_key, "self_signing_key": self_signing});
    c.request("POST", &keys_path("device_signing/upload"), body).await.must_status(200);
    (master_key, self_signing)
}

fn claim_body(user_id: &str, device_id: &str) -> Value {
    json!({"one_time_keys": {user_id: {device_id: "signed_curve25519"}}})
}

/// TestFederationKeyUploadQuery: hs2's user sees hs1's user's device keys (signatures
/// intact) and claims their one-time keys, one per claim, until none are left.
#[tokio::test]
async fn test_federation_key_upload_query() {
    let Some(d) = Deployment::federated(2).await else { return };
    let alice = d.register_user(0, "alice").await;
    let bob = d.register_user(1, "bob").await;
    let uploaded = upload_keys(&alice).await;
    let (master, self_signing) = upload_cross_signing(&alice).await;
    let r = bob
        .request("POST", &keys_path("query"), json!({"device_keys": {&alice.user_id: []}}))
        .await
        .must_status(200);
    assert_eq!(r["failures"], json!({}), "{r}");
    assert_eq!(r["master_keys"][&alice.user_id], master, "{r}");
    assert_eq!(r["self_signing_keys"][&alice.user_id], self_signing, "{r}");
    assert!(r["user_signing_keys"].get(&alice.user_id).is_none(), "{r}");
    let got = &r["device_keys"][&alice.user_id][&alice.device_id];
    for field in ["user_id", "device_id", "algorithms", "keys", "signatures"] {
        assert_eq!(got[field], uploaded[field], "{field} in {r}");
    }
    // Asking for one device by ID works too; an unknown device is simply absent.
    let body = json!({"device_keys": {&alice.user_id: ["NOSUCHDEVICE"]}});
    let r = bob.request("POST", &keys_path("query"), body).await.must_status(200);
    assert_eq!(r["device_keys"][&alice.user_id], json!({}), "{r}");

    let mut claimed = vec![];
    for _ in 0..2 {
        let body = claim_body(&alice.user_id, &alice.device_id);
        let r = bob.request("POST", &keys_path("claim"), body).await.must_status(200);
        assert_eq!(r["failures"], json!({}), "{r}");
        let keys = r["one_time_keys"][&alice.user_id][&alice.device_id]
            .as_object()
            .unwrap_or_else(|| panic!("a key claimed: {r}"))
            .clone();
        assert_eq!(keys.len(), 1, "{r}");
        let (id, key) = keys.into_iter().next().expect("one");
        assert!(id.starts_with("signed_curve25519:"), "{id}");
        assert!(key["signatures"][&alice.user_id].is_object(), "{key}");
        claimed.push(id);
    }
    assert_ne!(claimed[0], claimed[1], "each claim takes another key");
    let r = bob
        .request("POST", &keys_path("claim"), claim_body(&alice.user_id, &alice.device_id))
        .await
        .must_status(200);
    assert_eq!(r["one_time_keys"], json!({}), "none left: {r}");
    let counts = alice.request("POST", &keys_path("upload"), json!({})).await.must_status(200);
    assert_eq!(counts["one_time_key_counts"]["signed_curve25519"].as_u64().unwrap_or(0), 0);
    d.destroy().await;
}

/// The inbound endpoints, asked by a fake server: `/user/devices` (no display names over
/// federation, stream_id), `/user/keys/query`, `/user/keys/claim`; unknown users and
/// devices are empty answers; other servers' users and bad bodies are 400.
#[tokio::test]
async fn test_inbound_user_keys_endpoints() {
    let Some(d) = one_trusting("").await else { return };
    let alice = d.register_user(0, "alice").await;
    alice
        .must_do(
            "PUT",
            &["_matrix", "client", "v3", "devices", &alice.device_id],
            json!({"display_name": "Alice's secret phone"}),
        )
        .await;
    let uploaded = upload_keys(&alice).await;
    let (master, self_signing) = upload_cross_signing(&alice).await;
    let dest = server_of(&alice.user_id);
    let base = d.hs(0).base_url.clone();
    let fake = FakeServer::start().await;
    let enc = glia_harness::client::encode_segment;
    let devices = |u: &str| format!("/_matrix/federation/v1/user/devices/{}", enc(u));

    let r = fake.request(&base, &dest, "GET", &devices(&alice.user_id), None).await;
    let r = r.must_status(200);
    assert_eq!(r["user_id"], alice.user_id.as_str());
    assert!(r["stream_id"].as_i64().is_some_and(|s| s > 0), "{r}");
    let list = r["devices"].as_array().expect("devices");
    assert_eq!(list.len(), 1, "{r}");
    assert_eq!(list[0]["device_id"], alice.device_id.as_str());
    assert_eq!(list[0]["keys"]["keys"], uploaded["keys"]);
    assert!(!r.to_string().contains("secret phone"), "no display names over federation: {r}");
    assert_eq!((&r["master_key"], &r["self_signing_key"]), (&master, &self_signing), "{r}");

    let nobody = format!("@nobody:{dest}");
    let r = fake.request(&base, &dest, "GET", &devices(&nobody), None).await.must_status(200);
    assert_eq!(r["devices"], json!([]), "{r}");
    fake.request(&base, &dest, "GET", &devices("@x:elsewhere.example"), None)
        .await
        .must_error(400, "M_INVALID_PARAM");
    fake.request(&base, &dest, "GET", &devices("not-a-user"), None)
        .await
        .must_error(400, "M_INVALID_PARAM");

    let q = "/_matrix/federation/v1/user/keys/query";
    let body =
        json!({"device_keys": {&alice.user_id: [], &nobody: [], "@x:elsewhere.example": []}});
    let r = fake.request(&base, &dest, "POST", q, Some(body)).await.must_status(200);
    assert_eq!(r["device_keys"][&alice.user_id][&alice.device_id]["keys"], uploaded["keys"]);
    assert_eq!(r["device_keys"][&nobody], json!({}), "{r}");
    assert!(r["device_keys"].get("@x:elsewhere.example").is_none(), "{r}");
    assert!(r.get("user_signing_keys").is_none(), "never another user's: {r}");
    fake.request(&base, &dest, "POST", q, Some(json!({"device_keys": [1]})))
        .await
        .must_error(400, "M_BAD_JSON");

    let c = "/_matrix/federation/v1/user/keys/claim";
    let body = json!({"one_time_keys": {
        &alice.user_id: {&alice.device_id: "signed_curve25519", "NODEVICE": "signed_curve25519"},
    }});
    let r = fake.request(&base, &dest, "POST", c, Some(body)).await.must_status(200);
    let keys = &r["one_time_keys"][&alice.user_id];
    assert_eq!(keys[&alice.device_id].as_object().map(|o| o.len()), Some(1), "{r}");
    assert!(keys.get("NODEVICE").is_none(), "{r}");
    fake.request(&base, &dest, "POST", c, Some(json!({"one_time_keys": {"@a:b": 1}})))
        .await
        .must_error(400, "M_BAD_JSON");
    // Unsigned: refused before any work.
    fake.raw_request(&base, "POST", c, Some(json!({"one_time_keys": {}})), None)
        .await
        .must_error(401, "M_UNAUTHORIZED");
    // Oversized JSON is refused by size alone.
    let huge = json!({"device_keys": {&alice.user_id: ["x".repeat(9 * 1024 * 1024)]}});
    let r = fake.request(&base, &dest, "POST", q, Some(huge)).await;
    r.must_error(413, "M_TOO_LARGE");
    d.destroy().await;
}

/// Servers that are down, hang, or answer garbage end up in `failures` (within the
/// client's `timeout`), while the answers of working servers and local users still come
/// back; a server's answer about another server's users is dropped.
#[tokio::test]
async fn test_key_query_failures_are_per_server() {
    let Some(d) = one_trusting("").await else { return };
    let bob = d.register_user(0, "bob").await;
    let fake = FakeServer::start().await;
    let garbage = FakeServer::start().await;
    let eve = format!("@eve:{}", fake.server_name);
    let (down, hung) = (unreachable_server(), hanging_server().await);
    let eve2 = eve.clone();
    fake.on("POST", "/_matrix/federation/v1/user/keys/query", move |_| {
        let dk = json!({"user_id": eve2, "device_id": "E", "algorithms": [], "keys": {}});
        (200, json!({"device_keys": {&eve2: {"E": dk}, "@mallory:other.example": {"M": {}}}}))
    });
    fake.on("POST", "/_matrix/federation/v1/user/keys/claim", move |r| {
        (
            200,
            json!({"one_time_keys": r.body["one_time_keys"].clone().as_object().map(|u| {
                u.keys().map(|k| (k.clone(), json!({"E": {"signed_curve25519:1": {"key": "k"}}})))
                    .collect::<serde_json::Map<_, _>>()
            })}),
        )
    });
    garbage.on("POST", "/_matrix/federation/v1/user/keys", |_| (200, json!("garbage")));
    let body = json!({
        "timeout": 2000,
        "device_keys": {
            &eve: [], &bob.user_id: [], format!("@a:{down}"): [], format!("@b:{hung}"): [],
            format!("@c:{}", garbage.server_name): [],
        },
    });
    let started = Instant::now();
    let r = bob.request("POST", &keys_path("query"), body).await.must_status(200);
    assert!(started.elapsed() < Duration::from_secs(15), "the hung server did not hold us");
    assert_eq!(r["device_keys"][&eve]["E"]["device_id"], "E", "{r}");
    assert!(r["device_keys"].get("@mallory:other.example").is_none(), "{r}");
    assert!(r["device_keys"][&bob.user_id].is_object(), "{r}");
    for server in [&down, &hung, &garbage.server_name] {
        assert!(r["failures"][server]["status"].is_u64(), "{server} in failures: {r}");
    }
    assert!(r["failures"].get(&fake.server_name).is_none(), "{r}");
    let body = json!({
        "timeout": 2000,
        "one_time_keys": {&eve: {"E": "signed_curve25519"}, format!("@b:{hung}"): {"D": "x"}},
    });
    let r = bob.request("POST", &keys_path("claim"), body).await.must_status(200);
    assert_eq!(r["one_time_keys"][&eve]["E"]["signed_curve25519:1"]["key"], "k", "{r}");
    assert!(r["failures"][&hung].is_object(), "{r}");
    d.destroy().await;
}

/// A query naming many servers that all hang still answers within the client's
/// `timeout` (servers are asked a few at a time, against one deadline), each in `failures`.
#[tokio::test]
async fn test_key_query_many_hanging_servers_bounded_by_timeout() {
    let Some(d) = one_trusting("").await else { return };
    let bob = d.register_user(0, "bob").await;
    let mut users = serde_json::Map::new();
    let mut servers = vec![];
    for _ in 0..45 {
        let s = hanging_server().await;
        users.insert(format!("@u:{s}"), json!([]));
        servers.push(s);
    }
    let started = Instant::now();
    let body = json!({"timeout": 1500, "device_keys": users});
    let r = bob.request("POST", &keys_path("query"), body).await.must_status(200);
    assert!(started.elapsed() < Duration::from_secs(8), "took {:?}", started.elapsed());
    for s in &servers {
        assert!(r["failures"][s].is_object(), "{s} in failures: {r}");
    }
    d.destroy().await;
}

// ---------------------------------------------------------------------------------------
// Remote device lists are cached (issue 6): Charlie of the fake server shares Alice's room,
// so Glia keeps his device list, fetched once with `/user/devices` and kept current by his
// server's EDUs.

const DEVICES: &str = "/_matrix/federation/v1/user/devices/";

/// Device keys of Charlie's device `id` (unsigned: Glia passes them on as given).
fn charlie_device(charlie: &str, id: &str) -> Value {
    json!({
        "user_id": charlie, "device_id": id,
        "algorithms": ["m.olm.v1.curve25519-aes-sha2", "m.megolm.v1.aes-sha2"],
        "keys": {format!("ed25519:{id}"): format!("ed-{id}"), format!("curve25519:{id}"): format!("cu-{id}")},
    })
}

/// The fake server answers `/user/devices` for Charlie with `devices` at `stream_id`,
/// what `set` last put there.
fn serve_devices(
    s: &crate::fakes::Setup,
) -> std::sync::Arc<std::sync::Mutex<(i64, Vec<&'static str>)>> {
    let list = std::sync::Arc::new(std::sync::Mutex::new((1, vec!["D1"])));
    let (l, charlie) = (list.clone(), s.charlie.clone());
    s.fake.on("GET", DEVICES, move |_| {
        let (stream_id, ids) = l.lock().expect("list").clone();
        let devices: Vec<Value> = ids
            .iter()
            .map(|id| json!({"device_id": id, "keys": charlie_device(&charlie, id)}))
            .collect();
        (200, json!({"user_id": charlie, "stream_id": stream_id, "devices": devices}))
    });
    list
}

async fn charlie_devices(s: &crate::fakes::Setup) -> Vec<String> {
    let r = s
        .alice
        .request("POST", &keys_path("query"), json!({"device_keys": {&s.charlie: []}}))
        .await
        .must_status(200);
    assert_eq!(r["failures"], json!({}), "{r}");
    let mut ids: Vec<String> = r["device_keys"][&s.charlie]
        .as_object()
        .map(|m| m.keys().cloned().collect())
        .unwrap_or_default();
    ids.sort();
    ids
}

fn device_list_edu(charlie: &str, device: &str, stream_id: i64, prev: &[i64]) -> Value {
    json!({"edu_type": "m.device_list_update", "content": {
        "user_id": charlie, "device_id": device, "stream_id": stream_id, "prev_id": prev,
        "deleted": false, "keys": charlie_device(charlie, device),
    }})
}

/// The second query for a user we share a room with is answered from the cache: one
/// `/user/devices` fetch, no `/user/keys/query`.
#[tokio::test]
async fn test_remote_device_list_is_cached() {
    let Some(s) = crate::fakes::joined_room(None).await else { return };
    serve_devices(&s);
    assert_eq!(charlie_devices(&s).await, ["D1"]);
    assert_eq!(charlie_devices(&s).await, ["D1"]);
    assert_eq!(s.fake.received_on("GET", DEVICES).len(), 1, "fetched again");
    assert!(s.fake.received_on("POST", "/_matrix/federation/v1/user/keys/query").is_empty());
    s.d.destroy().await;
}

/// An `m.device_list_update` that follows on from the cached list (prev_id known) adds the
/// new device to later answers without a fetch; Alice hears of the change through /sync.
#[tokio::test]
async fn test_device_list_update_edu_updates_the_cache() {
    let Some(s) = crate::fakes::joined_room(None).await else { return };
    serve_devices(&s);
    assert_eq!(charlie_devices(&s).await, ["D1"]);
    let since =
        s.alice.sync(None, 0, None).await["next_batch"].as_str().expect("since").to_string();
    let edu = device_list_edu(&s.charlie, "D2", 2, &[1]);
    s.fake.send_transaction(&s.peer, &[], &[edu]).await.must_status(200);
    let charlie = s.charlie.clone();
    s.alice
        .sync_until(Some(&since), "charlie in device_lists.changed", WAIT, move |r| {
            r["device_lists"]["changed"]
                .as_array()
                .is_some_and(|u| u.iter().any(|u| u == charlie.as_str()))
        })
        .await;
    assert_eq!(charlie_devices(&s).await, ["D1", "D2"]);
    assert_eq!(s.fake.received_on("GET", DEVICES).len(), 1, "the EDU applied without a fetch");
    s.d.destroy().await;
}

/// An update whose prev_id Glia never saw means it missed some: it fetches the whole list
/// again, and answers with what the server has now.
#[tokio::test]
async fn test_device_list_update_with_unknown_prev_id_resyncs() {
    let Some(s) = crate::fakes::joined_room(None).await else { return };
    let list = serve_devices(&s);
    assert_eq!(charlie_devices(&s).await, ["D1"]);
    *list.lock().expect("list") = (9, vec!["D1", "D3", "D4"]);
    let edu = device_list_edu(&s.charlie, "D4", 9, &[8]);
    s.fake.send_transaction(&s.peer, &[], &[edu]).await.must_status(200);
    let fake = &s.fake;
    glia_harness::wait_until("a resync of charlie's devices", WAIT, move || async move {
        (fake.received_on("GET", DEVICES).len() >= 2).then_some(())
    })
    .await;
    // D3 came only with the resync (the EDU named D4).
    let setup = &s;
    glia_harness::wait_until("the resynced list", WAIT, move || async move {
        (charlie_devices(setup).await == ["D1", "D3", "D4"]).then_some(())
    })
    .await;
    s.d.destroy().await;
}

/// An update for a user whose list Glia never fetched cannot be applied to anything: Glia
/// fetches the list (Synapse resyncs too) before its users hear of the change. Device keys that name no user are kept as
/// given (as Synapse does); keys claiming another user are not.
#[tokio::test]
async fn test_device_list_update_for_uncached_user_fetches_the_list() {
    let Some(s) = crate::fakes::joined_room(None).await else { return };
    let charlie = s.charlie.clone();
    s.fake.on("GET", DEVICES, move |_| {
        let devices = json!([
            {"device_id": "BARE", "keys": {"device_keys": {}}},
            {"device_id": "OTHER", "keys": charlie_device("@someone:else", "OTHER")},
            {"device_id": "D1", "keys": charlie_device(&charlie, "D1")},
        ]);
        (200, json!({"user_id": charlie, "stream_id": 1, "devices": devices}))
    });
    let edu = json!({"edu_type": "m.device_list_update", "content": {
        "user_id": s.charlie, "device_id": "BARE", "stream_id": 1, "prev_id": [],
        "deleted": false, "keys": {"device_keys": {}},
    }});
    s.fake.send_transaction(&s.peer, &[], &[edu]).await.must_status(200);
    // Fetched before the change is announced: the query that follows is answered from
    // the copy, with no second fetch.
    assert_eq!(s.fake.received_on("GET", DEVICES).len(), 1);
    assert_eq!(charlie_devices(&s).await, ["BARE", "D1"]);
    assert_eq!(s.fake.received_on("GET", DEVICES).len(), 1, "fetched again");
    s.d.destroy().await;
}

/// Charlie's server goes down: the cached list still answers, without a failure.
#[tokio::test]
async fn test_device_list_answered_from_cache_while_remote_is_down() {
    let Some(s) = crate::fakes::joined_room(None).await else { return };
    serve_devices(&s);
    assert_eq!(charlie_devices(&s).await, ["D1"]);
    s.fake.on("GET", DEVICES, |_| (503, json!({"errcode": "M_UNKNOWN"})));
    s.fake.on("POST", "/_matrix/federation/v1/user/keys/query", |_| (503, json!({})));
    assert_eq!(charlie_devices(&s).await, ["D1"]);
    s.d.destroy().await;
}

/// Between two Glias: Bob's server caches Alice's list on his first query; when she
/// uploads keys for a new device, her server's update makes his answer include it.
#[tokio::test]
async fn test_cached_device_list_follows_a_new_device_between_glias() {
    let Some(d) = Deployment::federated(2).await else { return };
    let (alice, bob, _room) = crate::rooms::shared_room(&d).await;
    upload_keys(&alice).await;
    let query = json!({"device_keys": {&alice.user_id: []}});
    let first = bob.request("POST", &keys_path("query"), query.clone()).await.must_status(200);
    assert!(first["device_keys"][&alice.user_id].get(&alice.device_id).is_some(), "{first}");
    let second_device =
        d.client(0).must_login(&alice.user_id, "correct horse battery staple").await;
    upload_keys(&second_device).await;
    let (bob2, q, new_id) = (&bob, &query, second_device.device_id.clone());
    let alice_id = alice.user_id.clone();
    glia_harness::wait_until("alice's second device in bob's answer", WAIT, move || {
        let (new_id, alice_id) = (new_id.clone(), alice_id.clone());
        async move {
            let r = bob2.request("POST", &keys_path("query"), q.clone()).await.must_status(200);
            r["device_keys"][&alice_id].get(&new_id).is_some().then_some(())
        }
    })
    .await;
    d.destroy().await;
}

/// Once Charlie leaves the only shared room his server stops telling Glia of changes: the
/// cached list is dropped and each query asks his server again.
#[tokio::test]
async fn test_device_list_cache_dropped_when_no_room_is_shared() {
    let Some(s) = crate::fakes::joined_room(None).await else { return };
    serve_devices(&s);
    assert_eq!(charlie_devices(&s).await, ["D1"]);
    let (_, leave) = s.fake.send_in(&s.room, Ev::member(&s.charlie, "leave"));
    s.fake.send_transaction(&s.peer, &[leave], &[]).await.must_status(200);
    glia_harness::rooms::wait_membership(&s.alice, &s.room, &s.charlie, "leave").await;
    let charlie = s.charlie.clone();
    s.fake.on("POST", "/_matrix/federation/v1/user/keys/query", move |_| {
        (200, json!({"device_keys": {&charlie: {"D9": charlie_device(&charlie, "D9")}}}))
    });
    assert_eq!(charlie_devices(&s).await, ["D9"]);
    assert_eq!(charlie_devices(&s).await, ["D9"]);
    let asked = s.fake.received_on("POST", "/_matrix/federation/v1/user/keys/query").len();
    assert_eq!(asked, 2, "each query asks charlie's server");
    assert_eq!(s.fake.received_on("GET", DEVICES).len(), 1);
    s.d.destroy().await;
}

/// Charlie leaves and rejoins with no query in between: his server sent no updates while
/// no room was shared, so the list fetched before is not trusted and is fetched again.
#[tokio::test]
async fn test_device_list_fetched_again_after_leave_and_rejoin() {
    let Some(s) = crate::fakes::joined_room(None).await else { return };
    let list = serve_devices(&s);
    assert_eq!(charlie_devices(&s).await, ["D1"]);
    let (_, leave) = s.fake.send_in(&s.room, Ev::member(&s.charlie, "leave"));
    s.fake.send_transaction(&s.peer, &[leave], &[]).await.must_status(200);
    glia_harness::rooms::wait_membership(&s.alice, &s.room, &s.charlie, "leave").await;
    *list.lock().expect("list") = (5, vec!["D1", "D2"]);
    s.fake.join(&s.peer, &s.room, &s.charlie).await;
    glia_harness::rooms::wait_membership(&s.alice, &s.room, &s.charlie, "join").await;
    assert_eq!(charlie_devices(&s).await, ["D1", "D2"]);
    assert_eq!(s.fake.received_on("GET", DEVICES).len(), 2, "fetched again after the rejoin");
    assert_eq!(charlie_devices(&s).await, ["D1", "D2"]);
    assert_eq!(s.fake.received_on("GET", DEVICES).len(), 2, "then answered from the copy");
    s.d.destroy().await;
}
