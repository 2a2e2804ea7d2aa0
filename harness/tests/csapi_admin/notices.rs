//! Server notices: the user is invited to a notice room tagged `m.server_notice`, later
//! notices land in the same room, and a retried `PUT` with one transaction ID sends once.

use glia_harness::Deployment;
use serde_json::json;

use crate::{BACKGROUND, adm, admin, cs, message_bodies, must_fail, must_join, server_name};

#[tokio::test]
async fn test_send_server_notice() {
    let d = Deployment::new(1).await;
    let Some(admin) = admin(&d).await else { return };
    let user = d.register_user(0, "noticed").await;
    let send = adm(&["v1", "send_server_notice"]);
    let notice = |text: &str| {
        let content = json!({"msgtype": "m.text", "body": text});
        json!({"user_id": user.user_id, "content": content})
    };

    let body = admin.request("POST", &send, notice("First notice")).await.must_status(200);
    assert!(body["event_id"].as_str().is_some_and(|e| e.starts_with('$')), "{body}");

    // The user is invited to the notice room.
    let mut room = None;
    user.sync_until(None, "an invite to the server notice room", BACKGROUND, |resp| {
        room = resp["rooms"]["invite"].as_object().and_then(|m| m.keys().next().cloned());
        room.is_some()
    })
    .await;
    let room = room.expect("invited room");
    must_join(&user, &room).await;
    let tags =
        user.get(&cs(&["user", &user.user_id, "rooms", &room, "tags"])).await.must_status(200);
    assert!(tags["tags"].get("m.server_notice").is_some(), "{tags}");
    assert!(message_bodies(&user, &room).await.contains(&"First notice".to_string()));

    // The next notice goes to the same room; a retried PUT is sent once.
    let put = adm(&["v1", "send_server_notice", "txn-1"]);
    let first = admin.request("PUT", &put, notice("Second notice")).await.must_status(200);
    let again = admin.request("PUT", &put, notice("Second notice")).await.must_status(200);
    assert_eq!(first["event_id"], again["event_id"], "{first} {again}");
    let bodies = message_bodies(&user, &room).await;
    assert_eq!(
        bodies.iter().filter(|b| *b == "Second notice").count(),
        1,
        "sent once, in the same room: {bodies:?}"
    );

    // The notice room is read-only for the user.
    let r = user
        .request(
            "PUT",
            &cs(&["rooms", &room, "send", "m.room.message", "reply-1"]),
            json!({"msgtype": "m.text", "body": "hello?"}),
        )
        .await;
    must_fail(&r, 403);

    // Refusals.
    admin
        .request("POST", &send, json!({"user_id": user.user_id}))
        .await
        .must_error(400, "M_MISSING_PARAM");
    let remote = json!({"user_id": "@someone:elsewhere.example", "content": {"body": "x"}});
    must_fail(&admin.request("POST", &send, remote).await, 400);
    let nobody = format!("@nobody-here:{}", server_name(&user.user_id));
    let r =
        admin.request("POST", &send, json!({"user_id": nobody, "content": {"body": "x"}})).await;
    r.must_error(404, "M_NOT_FOUND");
    d.destroy().await;
}
