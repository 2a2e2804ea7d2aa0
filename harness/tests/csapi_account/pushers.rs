//! Pushers (spec: "Push Notifications"; SyTest 61push/06_get_pusher, 01message-pushed,
//! 08_rejected_pushers): `POST /pushers/set` and `GET /pushers`, and the notifications a
//! push gateway gets (against a tiny gateway on loopback, which only an in-process Glia
//! can be told to reach).

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use glia_harness::{Client, Deployment, HsConfig, stub_http, wait_until};
use serde_json::{Value, json};

use crate::{cs, login_device};

const WAIT: Duration = Duration::from_secs(20);
const NOTIFY: &str = "/_matrix/push/v1/notify";

fn pusher(app_id: &str, pushkey: &str, url: &str) -> Value {
    json!({
        "kind": "http", "app_id": app_id, "pushkey": pushkey, "lang": "en",
        "app_display_name": "Glia tests", "device_display_name": "phone",
        "profile_tag": "tag", "data": {"url": url, "format": "event_id_only"},
    })
}

async fn set(c: &Client, body: Value) -> glia_harness::Response {
    c.request("POST", &cs(&["pushers", "set"]), body).await
}

async fn list(c: &Client) -> Vec<Value> {
    let body = c.get(&cs(&["pushers"])).await.must_status(200);
    body["pushers"].as_array().cloned().unwrap_or_else(|| panic!("no pushers in {body}"))
}

/// Set, replace, list and delete a pusher; `append` and keys moving between users.
#[tokio::test]
async fn test_pushers_set_and_get() {
    let d = Deployment::new(1).await;
    let alice = d.register_user(0, "alice").await;
    let bob = d.register_user(0, "bob").await;
    let url = format!("https://push.example.org{NOTIFY}");
    assert!(list(&alice).await.is_empty());
    set(&alice, pusher("org.example.app", "key1", &url)).await.must_status(200);
    let got = list(&alice).await;
    assert_eq!(got.len(), 1, "{got:?}");
    let p = &got[0];
    assert_eq!(p["pushkey"], "key1", "{p}");
    assert_eq!(p["kind"], "http", "{p}");
    assert_eq!(p["app_id"], "org.example.app", "{p}");
    assert_eq!(p["app_display_name"], "Glia tests", "{p}");
    assert_eq!(p["device_display_name"], "phone", "{p}");
    assert_eq!(p["profile_tag"], "tag", "{p}");
    assert_eq!(p["lang"], "en", "{p}");
    assert_eq!(p["data"], json!({"url": url, "format": "event_id_only"}), "{p}");

    // The same app and key again replaces it.
    let mut again = pusher("org.example.app", "key1", &url);
    again["device_display_name"] = json!("tablet");
    set(&alice, again).await.must_status(200);
    let got = list(&alice).await;
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0]["device_display_name"], "tablet");

    // Bob taking the key with `append` leaves Alice's; without it, Alice's goes.
    let mut appended = pusher("org.example.app", "key1", &url);
    appended["append"] = json!(true);
    set(&bob, appended).await.must_status(200);
    assert_eq!(list(&alice).await.len(), 1);
    set(&bob, pusher("org.example.app", "key1", &url)).await.must_status(200);
    assert!(list(&alice).await.is_empty(), "the key moved to Bob");
    assert_eq!(list(&bob).await.len(), 1);

    // `kind: null` deletes.
    set(&bob, json!({"kind": null, "app_id": "org.example.app", "pushkey": "key1"}))
        .await
        .must_status(200);
    assert!(list(&bob).await.is_empty());
    d.destroy().await;
}

/// Missing parameters and HTTP pushers without a proper `data.url` are 400.
#[tokio::test]
async fn test_pushers_bad_input() {
    let d = Deployment::new(1).await;
    let alice = d.register_user(0, "alice").await;
    let url = format!("https://push.example.org{NOTIFY}");
    for key in ["app_id", "pushkey", "lang", "data", "kind", "app_display_name"] {
        let mut body = pusher("org.example.app", "key", &url);
        body.as_object_mut().map(|o| o.remove(key));
        set(&alice, body).await.must_error(400, "M_MISSING_PARAM");
    }
    for data in [json!({}), json!({"url": "https://push.example.org/wrong/path"})] {
        let mut body = pusher("org.example.app", "key", &url);
        body["data"] = data;
        let r = set(&alice, body).await;
        r.must_client_error();
        assert_eq!(r.status, 400, "{}: {}", r.what, r.text());
    }
    assert!(list(&alice).await.is_empty(), "nothing was stored");
    d.destroy().await;
}

/// A password change that logs out the other devices removes their pushers.
#[tokio::test]
async fn test_pushers_removed_on_password_change() {
    let d = Deployment::new(1).await;
    let alice = d.register_user(0, "alice").await;
    let url = format!("https://push.example.org{NOTIFY}");
    let phone = login_device(&alice, "PHONE", "phone").await;
    set(&phone, pusher("org.example.app", "phone-key", &url)).await.must_status(200);
    set(&alice, pusher("org.example.app", "own-key", &url)).await.must_status(200);
    assert_eq!(list(&alice).await.len(), 2);
    let auth = json!({"type": "m.login.password", "password": alice.password,
                      "identifier": {"type": "m.id.user", "user": alice.user_id}});
    alice
        .request(
            "POST",
            &cs(&["account", "password"]),
            json!({"new_password": "n3w-Passw0rd!", "auth": auth}),
        )
        .await
        .must_status(200);
    let keys: Vec<Value> = list(&alice).await.iter().map(|p| p["pushkey"].clone()).collect();
    assert_eq!(keys, [json!("own-key")]);
    d.destroy().await;
}

/// A push gateway on loopback: it records each notify body and answers from `answers`
/// (status and JSON; 200 `{}` once they run out).
struct FakeGateway {
    url: String,
    received: Arc<Mutex<Vec<Value>>>,
    answers: Arc<Mutex<VecDeque<(u16, Value)>>>,
}

async fn fake_gateway() -> FakeGateway {
    let received: Arc<Mutex<Vec<Value>>> = Arc::default();
    let answers: Arc<Mutex<VecDeque<(u16, Value)>>> = Arc::default();
    let (rec, ans) = (received.clone(), answers.clone());
    let addr = stub_http::serve(move |req| {
        if req.method != "POST" || req.path != NOTIFY {
            return (404, json!({}));
        }
        rec.lock().expect("received").push(serde_json::from_slice(&req.body).unwrap_or_default());
        ans.lock().expect("answers").pop_front().unwrap_or((200, json!({})))
    })
    .await;
    FakeGateway { url: format!("http://{addr}{NOTIFY}"), received, answers }
}

impl FakeGateway {
    /// Wait for a notification that `f` accepts.
    async fn wait_for(&self, what: &str, f: impl Fn(&Value) -> bool) -> Value {
        wait_until(what, WAIT, || {
            let found = self.received.lock().expect("received").iter().find(|b| f(b)).cloned();
            async move { found }
        })
        .await
    }
}

/// Alice (with a pusher) and Bob in a private room; returns them and the room.
async fn pushed_room(d: &Deployment, gw: &FakeGateway, data: Value) -> (Client, Client, String) {
    let alice = d.register_user(0, "alice").await;
    let bob = d.register_user(0, "bob").await;
    let r = alice
        .must_do(
            "POST",
            &cs(&["createRoom"]),
            json!({"preset": "private_chat", "name": "Pushy", "invite": [bob.user_id]}),
        )
        .await;
    let room = r["room_id"].as_str().expect("room").to_string();
    bob.must_do("POST", &cs(&["join", &room]), json!({})).await;
    let mut body = pusher("org.example.app", "alice-key", &gw.url);
    body["data"] = data;
    body["data"]["url"] = json!(gw.url);
    set(&alice, body).await.must_status(200);
    (alice, bob, room)
}

fn gateway_config() -> HsConfig {
    HsConfig { extra_yaml: "ip_range_whitelist: ['127.0.0.0/8']\n".into(), ..Default::default() }
}

/// A message notifies Alice's gateway with the Push Gateway API body; after a gateway
/// failure the notification is retried; a read receipt sends a new badge.
#[tokio::test]
async fn test_pusher_notifies_gateway() {
    let gw = fake_gateway().await;
    let Some(d) = Deployment::with_config(1, gateway_config()).await else { return };
    let (alice, bob, room) = pushed_room(&d, &gw, json!({"extra": "kept"})).await;
    gw.answers.lock().expect("answers").push_back((500, json!({})));
    let r = bob
        .must_do(
            "PUT",
            &cs(&["rooms", &room, "send", "m.room.message", "t1"]),
            json!({"msgtype": "m.text", "body": "ping"}),
        )
        .await;
    let event_id = r["event_id"].as_str().expect("event_id").to_string();
    // The first attempt failed; the notification comes again.
    let bodies = wait_until("the notification, retried", WAIT, || {
        let got: Vec<Value> = gw
            .received
            .lock()
            .expect("received")
            .iter()
            .filter(|b| b["notification"]["event_id"] == event_id.as_str())
            .cloned()
            .collect();
        async move { (got.len() >= 2).then_some(got) }
    })
    .await;
    assert_eq!(bodies[0], bodies[1], "the retry sends the same notification");
    let body = bodies[1].clone();
    let n = &body["notification"];
    assert_eq!(n["room_id"], room.as_str(), "{n}");
    assert_eq!(n["type"], "m.room.message", "{n}");
    assert_eq!(n["sender"], bob.user_id.as_str(), "{n}");
    assert_eq!(n["room_name"], "Pushy", "{n}");
    assert!(n["sender_display_name"].is_string(), "{n}");
    assert_eq!(n["content"]["body"], "ping", "{n}");
    assert_eq!(n["counts"]["unread"], 1, "{n}");
    assert!(n["prio"] == "high" || n["prio"] == "low", "{n}");
    let dev = &n["devices"][0];
    assert_eq!(dev["app_id"], "org.example.app", "{n}");
    assert_eq!(dev["pushkey"], "alice-key", "{n}");
    assert!(dev["pushkey_ts"].is_u64(), "{n}");
    assert_eq!(dev["data"], json!({"extra": "kept"}), "the url is not sent: {n}");
    assert!(dev["tweaks"].is_object(), "{n}");

    // Reading the message sends the devices a zero badge.
    alice.must_do("POST", &cs(&["rooms", &room, "receipt", "m.read", &event_id]), json!({})).await;
    let badge = gw
        .wait_for("a zero badge", |b| {
            b["notification"]["counts"]["unread"] == 0 && b["notification"]["id"] == ""
        })
        .await;
    assert_eq!(badge["notification"]["devices"][0]["pushkey"], "alice-key", "{badge}");
    d.destroy().await;
}

/// `format: event_id_only` sends IDs and counts only; a gateway that rejects the
/// pushkey gets the pusher deleted.
#[tokio::test]
async fn test_pusher_event_id_only_and_rejected() {
    let gw = fake_gateway().await;
    let Some(d) = Deployment::with_config(1, gateway_config()).await else { return };
    let (alice, bob, room) = pushed_room(&d, &gw, json!({"format": "event_id_only"})).await;
    gw.answers.lock().expect("answers").push_back((200, json!({"rejected": ["alice-key"]})));
    let r = bob
        .must_do(
            "PUT",
            &cs(&["rooms", &room, "send", "m.room.message", "t1"]),
            json!({"msgtype": "m.text", "body": "secret"}),
        )
        .await;
    let event_id = r["event_id"].as_str().expect("event_id").to_string();
    let body = gw
        .wait_for("the notification", |b| b["notification"]["event_id"] == event_id.as_str())
        .await;
    let n = &body["notification"];
    assert_eq!(n["room_id"], room.as_str(), "{n}");
    assert_eq!(n["counts"]["unread"], 1, "{n}");
    for k in ["content", "sender", "type", "room_name", "sender_display_name"] {
        assert!(n.get(k).is_none(), "{k} in an event_id_only notification: {n}");
    }
    assert_eq!(n["devices"][0]["data"], json!({"format": "event_id_only"}), "{n}");
    wait_until("the rejected pusher to go", WAIT, || {
        let alice = alice.clone();
        async move { list(&alice).await.is_empty().then_some(()) }
    })
    .await;
    d.destroy().await;
}

/// Alice, with a full-format pusher to `gw`, and Bob.
async fn alice_with_pusher(d: &Deployment, gw: &FakeGateway) -> (Client, Client) {
    let alice = d.register_user(0, "alice").await;
    let bob = d.register_user(0, "bob").await;
    let mut body = pusher("org.example.app", "alice-key", &gw.url);
    body["data"] = json!({"url": gw.url});
    set(&alice, body).await.must_status(200);
    (alice, bob)
}

/// An invite is pushed to the invitee (`.m.rule.invite_for_me`), who is not in the room
/// yet; it does not count as unread once they join.
#[tokio::test]
async fn test_pusher_invites_are_pushed() {
    let gw = fake_gateway().await;
    let Some(d) = Deployment::with_config(1, gateway_config()).await else { return };
    let (alice, bob) = alice_with_pusher(&d, &gw).await;
    let r = bob.must_do("POST", &cs(&["createRoom"]), json!({"preset": "private_chat"})).await;
    let room = r["room_id"].as_str().expect("room").to_string();
    bob.must_do("POST", &cs(&["rooms", &room, "invite"]), json!({"user_id": alice.user_id})).await;
    let body = gw
        .wait_for("the invite's notification", |b| b["notification"]["membership"] == "invite")
        .await;
    let n = &body["notification"];
    assert_eq!(n["room_id"], room.as_str(), "{n}");
    assert_eq!(n["type"], "m.room.member", "{n}");
    assert_eq!(n["user_is_target"], true, "{n}");
    assert_eq!(n["sender"], bob.user_id.as_str(), "{n}");
    alice.must_do("POST", &cs(&["join", &room]), json!({})).await;
    let filter = json!({"room": {"rooms": [room]}}).to_string();
    let sync = alice.sync(None, 0, Some(&filter)).await;
    assert_eq!(
        sync["rooms"]["join"][&room]["unread_notifications"]["notification_count"], 0,
        "{sync}"
    );
    d.destroy().await;
}

/// A room without a name is named by its canonical alias in pushes.
#[tokio::test]
async fn test_pusher_room_named_by_alias() {
    let gw = fake_gateway().await;
    let Some(d) = Deployment::with_config(1, gateway_config()).await else { return };
    let (alice, bob) = alice_with_pusher(&d, &gw).await;
    let alias_name = format!("pushy{}", std::process::id());
    let r = bob
        .must_do(
            "POST",
            &cs(&["createRoom"]),
            json!({"preset": "public_chat", "room_alias_name": alias_name}),
        )
        .await;
    let room = r["room_id"].as_str().expect("room").to_string();
    alice.must_do("POST", &cs(&["join", &room]), json!({})).await;
    let r = bob
        .must_do(
            "PUT",
            &cs(&["rooms", &room, "send", "m.room.message", "t1"]),
            json!({"msgtype": "m.text", "body": "hello"}),
        )
        .await;
    let event_id = r["event_id"].as_str().expect("event_id").to_string();
    let body = gw
        .wait_for("the message's notification", |b| {
            b["notification"]["event_id"] == event_id.as_str()
        })
        .await;
    let alias = format!("#{alias_name}:{}", crate::server_name(&bob.user_id));
    assert_eq!(body["notification"]["room_name"], alias.as_str(), "{body}");
    assert_eq!(body["notification"]["room_alias"], alias.as_str(), "{body}");
    d.destroy().await;
}

/// Logging a device out removes the pushers it set.
#[tokio::test]
async fn test_pushers_removed_on_logout() {
    let d = Deployment::new(1).await;
    let alice = d.register_user(0, "alice").await;
    let url = format!("https://push.example.org{NOTIFY}");
    let phone = login_device(&alice, "PHONE", "phone").await;
    // A push key of its own: a server moves a key set by another user (another scenario
    // on a shared server) away from this one.
    let key = glia_harness::client::unique_localpart("phone-key");
    set(&phone, pusher("org.example.app", &key, &url)).await.must_status(200);
    assert_eq!(list(&alice).await.len(), 1);
    phone.must_do("POST", &cs(&["logout"]), json!({})).await;
    assert!(list(&alice).await.is_empty(), "the phone's pusher went with it");
    d.destroy().await;
}
