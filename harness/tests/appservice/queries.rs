//! What Glia asks the appservice: users and aliases in its namespaces it does not know,
//! the ping, and third-party protocol metadata and lookups.

use serde_json::json;

use crate::{Setup, cs};

/// Inviting an unknown user in the namespace asks `GET /_matrix/app/v1/users/{userId}`;
/// looking up an unknown alias in the namespace asks `/rooms/{alias}`; both with the
/// hs_token. Users and aliases outside the namespaces are not asked about.
#[tokio::test]
async fn unknown_users_and_aliases_are_asked_about() {
    let Some(s) = Setup::new().await else { return };
    s.fake.on("/_matrix/app/v1/users/", |_| (200, "{}".into()));
    s.fake.on("/_matrix/app/v1/rooms/", |_| {
        (404, r#"{"errcode":"M_NOT_FOUND","error":"no"}"#.into())
    });
    let user = s.d.register_user(0, "carol").await;
    let room = user.must_do("POST", &cs(&["createRoom"]), json!({})).await;
    let room_id = room["room_id"].as_str().expect("room");
    user.request(
        "POST",
        &cs(&["rooms", room_id, "invite"]),
        json!({"user_id": "@bridge_ghost:hs1"}),
    )
    .await;
    let asked = s.fake.requests_to("/_matrix/app/v1/users/");
    assert_eq!(asked.len(), 1, "{asked:?}");
    assert_eq!(asked[0].path, "/_matrix/app/v1/users/@bridge_ghost:hs1");
    assert_eq!(
        asked[0].authorization.as_deref(),
        Some(format!("Bearer {}", s.reg.hs_token).as_str())
    );

    let r = user.get(&cs(&["directory", "room", "#bridge_lobby:hs1"])).await;
    r.must_error(404, "M_NOT_FOUND");
    let asked = s.fake.requests_to("/_matrix/app/v1/rooms/");
    assert_eq!(asked.len(), 1);
    assert_eq!(asked[0].path, "/_matrix/app/v1/rooms/#bridge_lobby:hs1");
    user.get(&cs(&["directory", "room", "#elsewhere:hs1"])).await.must_error(404, "M_NOT_FOUND");
    user.get(&cs(&["profile", "@nobody:hs1"])).await.must_error(404, "M_NOT_FOUND");
    assert_eq!(s.fake.requests_to("/_matrix/app/v1/rooms/").len(), 1);
    assert_eq!(s.fake.requests_to("/_matrix/app/v1/users/").len(), 1);
    s.d.destroy().await;
}

/// `POST /_matrix/client/v1/appservice/{id}/ping`: 200 with `duration_ms` and the
/// appservice saw the transaction ID; another appservice's ID is 403; an appservice that
/// answers 500 is 502 M_BAD_STATUS, one that is down 502 M_CONNECTION_FAILED; one without
/// URL 400 M_URL_NOT_SET; a normal user's token 403.
#[tokio::test]
async fn ping_reports_the_appservice_state() {
    let Some(s) = Setup::new().await else { return };
    let asc = s.as_client();
    let path = ["_matrix", "client", "v1", "appservice", "bridge", "ping"];
    let body = asc.request("POST", &path, json!({"transaction_id": "p1"})).await.must_status(200);
    assert!(body["duration_ms"].is_u64(), "{body}");
    let pings = s.fake.requests_to("/_matrix/app/v1/ping");
    assert_eq!(pings.len(), 1);
    assert_eq!(pings[0].body["transaction_id"], "p1");
    assert_eq!(
        pings[0].authorization.as_deref(),
        Some(format!("Bearer {}", s.reg.hs_token).as_str())
    );

    let other = ["_matrix", "client", "v1", "appservice", "silent", "ping"];
    asc.request("POST", &other, json!({})).await.must_error(403, "M_FORBIDDEN");
    let mut silent = s.d.client(0);
    silent.access_token = Some(s.silent.as_token.clone());
    silent.request("POST", &other, json!({})).await.must_error(400, "M_URL_NOT_SET");
    let user = s.d.register_user(0, "pinger").await;
    user.request("POST", &path, json!({})).await.must_error(403, "M_FORBIDDEN");
    asc.request("POST", &path, json!({"transaction_id": 5})).await.must_error(400, "M_BAD_JSON");

    s.fake.on("/_matrix/app/v1/ping", |_| (500, r#"{"oops":true}"#.into()));
    let body = asc.request("POST", &path, json!({})).await.must_error(502, "M_BAD_STATUS");
    assert_eq!(body["status"], 500);
    assert_eq!(body["body"], r#"{"oops":true}"#);
    s.fake.set_down(true);
    asc.request("POST", &path, json!({})).await.must_error(502, "M_CONNECTION_FAILED");
    s.fake.set_down(false);
    s.d.destroy().await;
}

/// `/thirdparty/protocols` and `/thirdparty/protocol/{p}` carry the appservice's
/// metadata; user and location lookups are proxied with their fields and the hs_token;
/// an unknown protocol is 404.
#[tokio::test]
async fn thirdparty_lookups_are_proxied() {
    let Some(s) = Setup::new().await else { return };
    s.fake.on("/_matrix/app/v1/thirdparty/protocol/chat", |_| {
        let meta = json!({"user_fields": ["nick"], "location_fields": ["channel"], "icon": "mxc://x/y",
            "field_types": {}, "instances": [{"desc": "Chat", "fields": {}, "network_id": "chat"}]});
        (200, meta.to_string())
    });
    s.fake.on("/_matrix/app/v1/thirdparty/user/chat", |r| {
        let ok = r.query.contains("nick=bob");
        let body =
            json!([{"protocol": "chat", "userid": "@bridge_bob:hs1", "fields": {"nick": "bob"}}]);
        if ok { (200, body.to_string()) } else { (400, "{}".into()) }
    });
    s.fake.on("/_matrix/app/v1/thirdparty/location/chat", |_| {
        (
            200,
            json!([{"alias": "#bridge_x:hs1", "protocol": "chat", "fields": {"channel": "x"}}])
                .to_string(),
        )
    });
    let user = s.d.register_user(0, "looker").await;
    let all = user.get(&cs(&["thirdparty", "protocols"])).await.must_status(200);
    assert_eq!(all["chat"]["user_fields"], json!(["nick"]));
    let one = user.get(&cs(&["thirdparty", "protocol", "chat"])).await.must_status(200);
    assert_eq!(one["instances"][0]["desc"], "Chat");
    user.get(&cs(&["thirdparty", "protocol", "nope"])).await.must_error(404, "M_NOT_FOUND");
    let users = user.get(&cs(&["thirdparty", "user", "chat", "?nick=bob"])).await.must_status(200);
    assert_eq!(users[0]["userid"], "@bridge_bob:hs1");
    let locs =
        user.get(&cs(&["thirdparty", "location", "chat", "?channel=x"])).await.must_status(200);
    assert_eq!(locs[0]["alias"], "#bridge_x:hs1");
    let asked = s.fake.requests_to("/_matrix/app/v1/thirdparty/user/chat");
    assert_eq!(
        asked[0].authorization.as_deref(),
        Some(format!("Bearer {}", s.reg.hs_token).as_str())
    );
    assert!(!asked[0].query.contains("access_token"), "the client's token is not passed on");
    s.d.destroy().await;
}

/// An appservice publishes a room in its own network's list: not in the main
/// `/publicRooms`, in the list of its `third_party_instance_id`, in
/// `include_all_networks`; unpublished with DELETE. Users cannot edit these lists.
#[tokio::test]
async fn appservice_room_lists_are_separate() {
    let Some(s) = Setup::new().await else { return };
    let user = s.d.register_user(0, "lister").await;
    let room = user.must_do("POST", &cs(&["createRoom"]), json!({"preset": "public_chat"})).await;
    let room_id = room["room_id"].as_str().expect("room").to_string();
    let list = ["directory", "list", "appservice", "irc", room_id.as_str()];
    user.request("PUT", &cs(&list), json!({"visibility": "public"}))
        .await
        .must_error(403, "M_FORBIDDEN");
    let asc = s.as_client();
    asc.request("PUT", &cs(&list), json!({"visibility": "public"})).await.must_status(200);
    let ids = |body: serde_json::Value| -> Vec<String> {
        body["chunk"]
            .as_array()
            .expect("chunk")
            .iter()
            .filter_map(|r| r["room_id"].as_str().map(str::to_string))
            .collect()
    };
    let rooms = |filter: serde_json::Value| {
        let user = user.clone();
        async move { user.must_do("POST", &cs(&["publicRooms"]), filter).await }
    };
    assert!(!ids(rooms(json!({})).await).contains(&room_id), "not in the main list");
    let instance = json!({"third_party_instance_id": "bridge|irc"});
    assert!(ids(rooms(instance.clone()).await).contains(&room_id));
    assert!(
        !ids(rooms(json!({"third_party_instance_id": "bridge|xmpp"})).await).contains(&room_id)
    );
    assert!(ids(rooms(json!({"include_all_networks": true})).await).contains(&room_id));
    user.request("POST", &cs(&["publicRooms"]), json!({"third_party_instance_id": "nobar"}))
        .await
        .must_error(400, "M_INVALID_PARAM");
    asc.request("DELETE", &cs(&list), json!({})).await.must_status(200);
    assert!(!ids(rooms(instance).await).contains(&room_id), "unpublished");
    let missing = ["directory", "list", "appservice", "irc", "!nope:hs1"];
    asc.request("PUT", &cs(&missing), json!({})).await.must_error(404, "M_NOT_FOUND");
    s.d.destroy().await;
}
