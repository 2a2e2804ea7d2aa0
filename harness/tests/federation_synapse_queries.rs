//! Glia and Synapse answering each other's queries that involve no room: profiles,
//! aliases (with non-ASCII characters), public room lists, end-to-end keys, media (the
//! `multipart/mixed` federation download both ways, and thumbnails) and notary key lookups.
//!
//! Needs the Synapse that `ci/synapse-federation --test federation_synapse_queries` starts
//! (`GLIA_FED_PEER_URL`, `GLIA_FED_PEER_NAME`); without it every scenario is skipped.

use std::io::Cursor;

use glia_harness::client::{Body, encode_segment};
use glia_harness::rooms::{cs, server_of};
use glia_harness::{Client, Deployment};
use image::{DynamicImage, ImageFormat, Rgba, RgbaImage};
use serde_json::{Value, json};

/// A Glia that federates (with `extra` YAML), a user on it, and a user on the Synapse peer.
async fn setup_with(extra: &str) -> Option<(Deployment, Client, Client)> {
    let (Ok(url), Ok(_)) =
        (std::env::var("GLIA_FED_PEER_URL"), std::env::var("GLIA_FED_PEER_NAME"))
    else {
        eprintln!("SKIP: GLIA_FED_PEER_URL / GLIA_FED_PEER_NAME not set (ci/synapse-federation)");
        return None;
    };
    let cfg = glia_harness::HsConfig { extra_yaml: extra.into(), ..Default::default() };
    let dep = Deployment::federated_with(1, cfg).await?;
    let glia = dep.register_user(0, "gl").await;
    let localpart = glia_harness::client::unique_localpart("sy");
    let syn = Client::new(&url).must_register(&localpart, "correct horse battery staple").await;
    Some((dep, glia, syn))
}

async fn setup() -> Option<(Deployment, Client, Client)> {
    setup_with("").await
}

#[tokio::test]
async fn profiles_both_ways() {
    let Some((dep, glia, syn)) = setup().await else { return };
    for (c, name) in [(&glia, "Glia Person \u{1F33F}"), (&syn, "Synapse Person \u{1F40D}")] {
        c.must_do(
            "PUT",
            &cs(&["profile", &c.user_id, "displayname"]),
            json!({"displayname": name}),
        )
        .await;
    }
    let r = glia.get(&cs(&["profile", &syn.user_id])).await.must_status(200);
    assert_eq!(r["displayname"], "Synapse Person \u{1F40D}", "{r}");
    let r = syn.get(&cs(&["profile", &glia.user_id, "displayname"])).await.must_status(200);
    assert_eq!(r["displayname"], "Glia Person \u{1F33F}", "{r}");
    let ghost = format!("@ghost:{}", server_of(&syn.user_id));
    glia.get(&cs(&["profile", &ghost])).await.must_error(404, "M_NOT_FOUND");
    dep.destroy().await;
}

#[tokio::test]
async fn unicode_aliases_both_ways() {
    let Some((dep, glia, syn)) = setup().await else { return };
    for (owner, other) in [(&glia, &syn), (&syn, &glia)] {
        let room = owner.must_do("POST", &cs(&["createRoom"]), json!({})).await["room_id"]
            .as_str()
            .expect("room_id")
            .to_string();
        let local = glia_harness::client::unique_localpart("\u{2318}caf\u{e9}");
        let alias = format!("#{local}:{}", server_of(&owner.user_id));
        owner.must_do("PUT", &cs(&["directory", "room", &alias]), json!({"room_id": room})).await;
        let r = other.get(&cs(&["directory", "room", &alias])).await.must_status(200);
        assert_eq!(r["room_id"], room.as_str(), "{} resolving {alias}: {r}", other.user_id);
    }
    dep.destroy().await;
}

/// Synapse lists Glia's directory (Glia opened it); Glia asking Synapse gets Synapse's
/// default refusal (`allow_public_rooms_over_federation: false`) as 403.
#[tokio::test]
async fn public_rooms_both_ways() {
    let Some((dep, glia, syn)) = setup_with("allow_public_rooms_over_federation: true\n").await
    else {
        return;
    };
    let body = json!({"preset": "public_chat", "visibility": "public", "name": "Listed"});
    let room = glia.must_do("POST", &cs(&["createRoom"]), body).await["room_id"].clone();
    let q = format!("?server={}", encode_segment(&server_of(&glia.user_id)));
    let r = syn.get(&cs(&["publicRooms", &q])).await.must_status(200);
    assert!(r["chunk"].as_array().is_some_and(|c| c.iter().any(|e| e["room_id"] == room)), "{r}");
    let search = json!({"filter": {"generic_search_term": "listed"}});
    let r = syn.request("POST", &cs(&["publicRooms", &q]), search).await.must_status(200);
    assert!(r["chunk"].as_array().is_some_and(|c| c.iter().any(|e| e["room_id"] == room)), "{r}");
    let q = format!("?server={}", encode_segment(&server_of(&syn.user_id)));
    glia.get(&cs(&["publicRooms", &q])).await.must_error(403, "M_FORBIDDEN");
    dep.destroy().await;
}

/// Device keys and two one-time keys for `c` (Synapse does not check signatures).
async fn upload_keys(c: &Client) -> Value {
    let dk = json!({
        "user_id": c.user_id, "device_id": c.device_id,
        "algorithms": ["m.olm.v1.curve25519-aes-sha2"],
        "keys": {format!("ed25519:{}", c.device_id): "edkey", format!("curve25519:{}", c.device_id): "curvekey"},
        "signatures": {&c.user_id: {format!("ed25519:{}", c.device_id): "sig"}},
    });
    let otks = json!({
        "signed_curve25519:AAAA": {"key": "k1", "signatures": {&c.user_id: {"ed25519:X": "s"}}},
        "signed_curve25519:AAAB": {"key": "k2", "signatures": {&c.user_id: {"ed25519:X": "s"}}},
    });
    c.must_do("POST", &cs(&["keys", "upload"]), json!({"device_keys": dk, "one_time_keys": otks}))
        .await;
    dk
}

#[tokio::test]
async fn keys_query_and_claim_both_ways() {
    let Some((dep, glia, syn)) = setup().await else { return };
    for (owner, asker) in [(&glia, &syn), (&syn, &glia)] {
        let dk = upload_keys(owner).await;
        let body = json!({"device_keys": {&owner.user_id: []}});
        let r = asker.request("POST", &cs(&["keys", "query"]), body).await.must_status(200);
        assert_eq!(r["failures"], json!({}), "{r}");
        let got = &r["device_keys"][&owner.user_id][&owner.device_id];
        assert_eq!(got["keys"], dk["keys"], "{} querying {}: {r}", asker.user_id, owner.user_id);
        let body =
            json!({"one_time_keys": {&owner.user_id: {&owner.device_id: "signed_curve25519"}}});
        let r = asker.request("POST", &cs(&["keys", "claim"]), body).await.must_status(200);
        let keys = &r["one_time_keys"][&owner.user_id][&owner.device_id];
        assert_eq!(keys.as_object().map(|k| k.len()), Some(1), "{r}");
    }
    dep.destroy().await;
}

fn png(w: u32, h: u32) -> Vec<u8> {
    let img = RgbaImage::from_fn(w, h, |x, y| Rgba([(x % 256) as u8, (y % 256) as u8, 7, 255]));
    let mut out = Cursor::new(Vec::new());
    DynamicImage::ImageRgba8(img).write_to(&mut out, ImageFormat::Png).expect("png");
    out.into_inner()
}

#[tokio::test]
async fn media_both_ways() {
    let Some((dep, glia, syn)) = setup().await else { return };
    for (owner, asker) in [(&glia, &syn), (&syn, &glia)] {
        let bytes = png(640, 480);
        let r = owner
            .request(
                "POST",
                &["_matrix", "media", "v3", "upload", "?filename=pic.png"],
                Body::Raw(bytes.clone(), "image/png"),
            )
            .await
            .must_status(200);
        let mxc = r["content_uri"].as_str().expect("content_uri").to_string();
        let (server, id) = mxc.trim_start_matches("mxc://").split_once('/').expect("mxc");
        let path = ["_matrix", "client", "v1", "media", "download", server, id];
        let r = asker.get(&path).await;
        assert_eq!(r.status, 200, "{} downloading {mxc}: {}", asker.user_id, r.text());
        assert_eq!(r.body, bytes, "{} downloading {mxc}", asker.user_id);
        let thumb = [
            "_matrix",
            "client",
            "v1",
            "media",
            "thumbnail",
            server,
            id,
            "?width=64&height=64&method=scale",
        ];
        let r = asker.get(&thumb).await;
        assert_eq!(r.status, 200, "{} thumbnailing {mxc}: {}", asker.user_id, r.text());
        let img = image::load_from_memory(&r.body).expect("thumbnail decodes");
        assert!(img.width() < 640 && img.height() < 480, "{}x{}", img.width(), img.height());
    }
    dep.destroy().await;
}

#[tokio::test]
async fn notaries_both_ways() {
    let Some((dep, glia, syn)) = setup().await else { return };
    let (g, s) = (server_of(&glia.user_id), server_of(&syn.user_id));
    // Synapse serves keys it has cached: a signed request from Glia puts Glia's there.
    glia.get(&cs(&["profile", &syn.user_id])).await;
    for (asker, about, notary) in [(&glia, &s, &g), (&syn, &g, &s)] {
        let r = asker.unauthed().get(&["_matrix", "key", "v2", "query", about]).await;
        let r = r.must_status(200);
        let resp = r["server_keys"]
            .as_array()
            .and_then(|k| k.iter().find(|k| k["server_name"] == about.as_str()))
            .unwrap_or_else(|| panic!("{notary} has {about}'s keys: {r}"));
        assert!(resp["signatures"][about].is_object(), "{r}");
        assert!(resp["signatures"][notary].is_object(), "countersigned by {notary}: {r}");
    }
    dep.destroy().await;
}
