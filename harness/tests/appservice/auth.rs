//! Appservice authentication: registering users in the namespace, masquerading with
//! `user_id`, logging in, exclusivity for normal users and aliases, wrong tokens.

use glia_harness::deployment::errcode;
use serde_json::json;

use glia_harness::{Client, Response};

use crate::{Setup, cs};

async fn as_register(c: &Client, username: &str) -> Response {
    let body = json!({"type": "m.login.application_service", "username": username});
    c.request("POST", &cs(&["register"]), body).await
}

/// The appservice registers users in its namespace without UIA (also with a leading
/// underscore and `inhibit_login`), not outside it; wrong or missing tokens are 401.
#[tokio::test]
async fn appservice_registers_users_in_its_namespace() {
    let Some(s) = Setup::new().await else { return };
    let asc = s.as_client();
    let r = as_register(&asc, "bridge_alice").await;
    let body = r.must_status(200);
    assert_eq!(body["user_id"], "@bridge_alice:hs1");
    assert!(body["access_token"].is_string(), "{body}");

    let mut ghost = s.d.client(0);
    ghost.access_token = body["access_token"].as_str().map(str::to_string);
    let me = ghost.get(&cs(&["account", "whoami"])).await.must_status(200);
    assert_eq!(me["user_id"], "@bridge_alice:hs1");

    let r = as_register(&asc, "nothers").await;
    r.must_error(400, "M_EXCLUSIVE");
    let r = as_register(&asc, "bridge_alice").await;
    r.must_error(400, "M_USER_IN_USE");

    let mut wrong = s.d.client(0);
    wrong.access_token = Some("not-the-as-token".into());
    let r = as_register(&wrong, "bridge_bob").await;
    r.must_error(401, "M_UNKNOWN_TOKEN");
    let r = as_register(&s.d.client(0), "bridge_bob").await;
    r.must_error(401, "M_MISSING_TOKEN");
    // The other appservice cannot take this one's exclusive users.
    let mut other = s.d.client(0);
    other.access_token = Some(s.silent.as_token.clone());
    let r = as_register(&other, "bridge_carol").await;
    r.must_error(400, "M_EXCLUSIVE");
    s.d.destroy().await;
}

/// A normal user cannot register inside an exclusive namespace (400 M_EXCLUSIVE) nor
/// create an alias in an exclusive alias namespace; the appservice can.
#[tokio::test]
async fn exclusive_namespaces_are_refused_to_normal_users() {
    let Some(s) = Setup::new().await else { return };
    let r = s.d.client(0).register("bridge_mallory", "correct horse battery staple").await;
    let body = r.must_error(400, "M_EXCLUSIVE");
    assert!(body["error"].is_string());
    // The sender's own ID is reserved too.
    let r = s.d.client(0).register("bridge-bot", "correct horse battery staple").await;
    assert_eq!(errcode(&r.json()), "M_EXCLUSIVE", "{}", r.text());

    let user = s.d.register_user(0, "normal").await;
    let room = user.must_do("POST", &cs(&["createRoom"]), json!({})).await;
    let room_id = room["room_id"].as_str().expect("room_id");
    let r = user
        .request(
            "PUT",
            &cs(&["directory", "room", "#bridge_room:hs1"]),
            json!({"room_id": room_id}),
        )
        .await;
    r.must_error(400, "M_EXCLUSIVE");
    user.request("PUT", &cs(&["directory", "room", "#other:hs1"]), json!({"room_id": room_id}))
        .await
        .must_status(200);
    // The appservice makes the alias in its own namespace, without being in the room.
    let asc = s.as_client();
    asc.request(
        "PUT",
        &cs(&["directory", "room", "#bridge_room:hs1"]),
        json!({"room_id": room_id}),
    )
    .await
    .must_status(200);
    s.d.destroy().await;
}

/// `as_token` acts as the sender, `?user_id=` as a registered user in the namespace; a
/// user outside it is 403, an unregistered one is 403; `m.login.application_service`
/// logs a namespace user in.
#[tokio::test]
async fn masquerading_stays_inside_the_namespace() {
    let Some(s) = Setup::new().await else { return };
    let asc = s.as_client();
    let me = asc.get(&cs(&["account", "whoami"])).await.must_status(200);
    assert_eq!(me["user_id"], asc.user_id.as_str());
    let ghost = s.ghost("dave").await;
    let q = format!("?user_id={}", glia_harness::client::encode_segment(&ghost));
    let me = asc.get(&[&cs(&["account", "whoami"])[..], &[q.as_str()]].concat()).await;
    assert_eq!(me.must_status(200)["user_id"], ghost.as_str());

    let outsider = s.d.register_user(0, "outsider").await;
    let q = format!("?user_id={}", glia_harness::client::encode_segment(&outsider.user_id));
    let r = asc.get(&[&cs(&["account", "whoami"])[..], &[q.as_str()]].concat()).await;
    r.must_error(403, "M_FORBIDDEN");
    let q = "?user_id=%40bridge_nobody%3Ahs1";
    let r = asc.get(&[&cs(&["account", "whoami"])[..], &[q]].concat()).await;
    r.must_error(403, "M_FORBIDDEN");
    let mut wrong = s.d.client(0);
    wrong.access_token = Some(format!("{}x", s.reg.as_token));
    wrong.get(&cs(&["account", "whoami"])).await.must_error(401, "M_UNKNOWN_TOKEN");

    let login = |user: String| {
        let asc = asc.clone();
        async move {
            let body = json!({"type": "m.login.application_service", "identifier": {"type": "m.id.user", "user": user}});
            asc.request("POST", &cs(&["login"]), body).await
        }
    };
    let body = login(ghost.clone()).await.must_status(200);
    assert_eq!(body["user_id"], ghost.as_str());
    assert!(body["device_id"].is_string() && body["access_token"].is_string());
    login(outsider.user_id.clone()).await.must_error(403, "M_FORBIDDEN");
    let flows = s.d.client(0).get(&cs(&["login"])).await.must_status(200);
    assert!(
        flows["flows"]
            .as_array()
            .expect("flows")
            .iter()
            .any(|f| f["type"] == "m.login.application_service")
    );
    // Deactivating a ghost needs no password from the appservice.
    let q = format!("?user_id={}", glia_harness::client::encode_segment(&ghost));
    asc.request("POST", &[&cs(&["account", "deactivate"])[..], &[q.as_str()]].concat(), json!({}))
        .await
        .must_status(200);
    s.d.destroy().await;
}

/// With `rate_limited: false` the appservice (and its users) are not rate limited, while
/// a normal user under the same `rc_message` gets 429 M_LIMIT_EXCEEDED.
#[tokio::test]
async fn unlimited_appservice_skips_rate_limits() {
    let yaml = "rc_disabled: false\nrc_message:\n  per_second: 0.1\n  burst_count: 2\n";
    let Some(s) = Setup::with_yaml(yaml).await else { return };
    let user = s.d.register_user(0, "chatty").await;
    let room = user.must_do("POST", &cs(&["createRoom"]), json!({"preset": "public_chat"})).await;
    let room_id = room["room_id"].as_str().expect("room");
    let asc = s.as_client();
    asc.must_do("POST", &cs(&["join", room_id]), json!({})).await;
    let send = |c: &Client, i: usize| {
        let (c, room_id) = (c.clone(), room_id.to_string());
        async move {
            let txn = format!("t{i}");
            let body = json!({"msgtype": "m.text", "body": "x"});
            c.request("PUT", &cs(&["rooms", &room_id, "send", "m.room.message", &txn]), body).await
        }
    };
    for i in 0..10 {
        send(&asc, i).await.must_status(200);
    }
    let mut limited = false;
    for i in 0..5 {
        let r = send(&user, i).await;
        if r.status == 429 {
            r.must_error(429, "M_LIMIT_EXCEEDED");
            limited = true;
            break;
        }
    }
    assert!(limited, "the normal user was never limited: the limit is not in force");
    s.d.destroy().await;
}
