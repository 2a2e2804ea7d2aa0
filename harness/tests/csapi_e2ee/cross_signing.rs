//! Cross-signing: `POST /keys/device_signing/upload` (first upload without user-interactive
//! auth, replacement behind the password, signatures checked) and
//! `POST /keys/signatures/upload` round trips, seen through `/keys/query`.

use glia_harness::{Client, Deployment};
use serde_json::{Value, json};

use crate::{SigningKey, cs, device_keys, must_upload, query_keys};

/// A user's three cross-signing keys, the other two signed by the master key.
struct CrossSigning {
    master: SigningKey,
    self_signing: SigningKey,
    user_signing: SigningKey,
}

impl CrossSigning {
    fn new() -> CrossSigning {
        CrossSigning {
            master: SigningKey::cross_signing(),
            self_signing: SigningKey::cross_signing(),
            user_signing: SigningKey::cross_signing(),
        }
    }

    fn master_object(&self, c: &Client) -> Value {
        self.master.cross_signing_object(&c.user_id, "master")
    }

    fn signed_by_master(&self, c: &Client, key: &SigningKey, usage: &str) -> Value {
        let mut v = key.cross_signing_object(&c.user_id, usage);
        self.master.sign(&c.user_id, &mut v);
        v
    }

    fn upload_body(&self, c: &Client) -> Value {
        json!({
            "master_key": self.master_object(c),
            "self_signing_key": self.signed_by_master(c, &self.self_signing, "self_signing"),
            "user_signing_key": self.signed_by_master(c, &self.user_signing, "user_signing"),
        })
    }
}

fn upload_path() -> Vec<&'static str> {
    cs(&["keys", "device_signing", "upload"])
}

async fn upload_signatures(c: &Client, body: Value) -> Value {
    c.request("POST", &cs(&["keys", "signatures", "upload"]), body).await.must_status(200)
}

/// The first upload needs no password; the same keys again are a no-op; replacing them
/// needs the password; others see the master and self-signing keys but not the
/// user-signing key.
#[tokio::test]
async fn test_device_signing_upload() {
    let d = Deployment::new(1).await;
    let alice = d.register_user(0, "alice").await;
    let bob = d.register_user(0, "bob").await;
    let keys = CrossSigning::new();
    let body = keys.upload_body(&alice);
    alice.request("POST", &upload_path(), body.clone()).await.must_status(200);
    // The same keys again (a retry whose response was lost): no UIA.
    alice.request("POST", &upload_path(), body.clone()).await.must_status(200);

    let own = query_keys(&alice, &alice.user_id).await;
    assert_eq!(own["master_keys"][&alice.user_id], body["master_key"], "{own}");
    assert_eq!(own["self_signing_keys"][&alice.user_id], body["self_signing_key"], "{own}");
    assert_eq!(own["user_signing_keys"][&alice.user_id], body["user_signing_key"], "{own}");
    let theirs = query_keys(&bob, &alice.user_id).await;
    assert_eq!(theirs["master_keys"][&alice.user_id], body["master_key"], "{theirs}");
    assert_eq!(theirs["self_signing_keys"][&alice.user_id], body["self_signing_key"], "{theirs}");
    assert!(theirs["user_signing_keys"][&alice.user_id].is_null(), "only the owner: {theirs}");

    // New keys replace the old ones only with the password.
    let new_keys = CrossSigning::new();
    let new_body = new_keys.upload_body(&alice);
    let r = alice.request("POST", &upload_path(), new_body.clone()).await;
    let challenge = r.must_status(401);
    assert!(
        challenge["flows"]
            .as_array()
            .is_some_and(|f| f.iter().any(|f| f["stages"] == json!(["m.login.password"]))),
        "{challenge}"
    );
    let session = challenge["session"].as_str().expect("session");
    let mut with_auth = new_body.clone();
    with_auth["auth"] = alice.password_auth(Some(session));
    alice.request("POST", &upload_path(), with_auth).await.must_status(200);
    let own = query_keys(&alice, &alice.user_id).await;
    assert_eq!(own["master_keys"][&alice.user_id], new_body["master_key"], "{own}");
    d.destroy().await;
}

/// Bad cross-signing uploads: a self-signing key not signed by the master key, no master
/// key at all, a key for another user.
#[tokio::test]
async fn test_device_signing_upload_rejects_bad_keys() {
    let d = Deployment::new(1).await;
    let alice = d.register_user(0, "alice").await;
    let keys = CrossSigning::new();

    // Signed by the wrong key.
    let impostor = CrossSigning::new();
    let body = json!({
        "master_key": keys.master_object(&alice),
        "self_signing_key": impostor.signed_by_master(&alice, &keys.self_signing, "self_signing"),
    });
    alice.request("POST", &upload_path(), body).await.must_error(400, "M_INVALID_SIGNATURE");

    // No master key, here or stored.
    let body = json!({"self_signing_key": keys.signed_by_master(&alice, &keys.self_signing, "self_signing")});
    alice.request("POST", &upload_path(), body).await.must_error(400, "M_MISSING_PARAM");

    // A master key for someone else, or with the wrong usage.
    let mut other = keys.master_object(&alice);
    other["user_id"] = json!("@someone-else:example.org");
    alice
        .request("POST", &upload_path(), json!({"master_key": other}))
        .await
        .must_error(400, "M_INVALID_PARAM");
    let wrong_usage = keys.master.cross_signing_object(&alice.user_id, "self_signing");
    alice
        .request("POST", &upload_path(), json!({"master_key": wrong_usage}))
        .await
        .must_error(400, "M_INVALID_PARAM");

    // None of that stored anything: the real first upload still needs no password.
    alice.request("POST", &upload_path(), keys.upload_body(&alice)).await.must_status(200);
    d.destroy().await;
}

/// Signatures: a device signed by the self-signing key and the master key signed by a
/// device (visible to everyone / to the owner), another user's master key signed by the
/// user-signing key (visible to the signer); bad signatures come back as failures.
#[tokio::test]
async fn test_signatures_upload() {
    let d = Deployment::new(1).await;
    let alice = d.register_user(0, "alice").await;
    let bob = d.register_user(0, "bob").await;
    let (device_key, dk) = device_keys(&alice);
    must_upload(&alice, json!({"device_keys": dk})).await;
    let keys = CrossSigning::new();
    alice.request("POST", &upload_path(), keys.upload_body(&alice)).await.must_status(200);

    // Alice's self-signing key signs her device.
    let mut signed_device = dk.clone();
    keys.self_signing.sign(&alice.user_id, &mut signed_device);
    let r =
        upload_signatures(&alice, json!({&alice.user_id: {&alice.device_id: signed_device}})).await;
    assert_eq!(r["failures"], json!({}), "{r}");
    let ssk_id = keys.self_signing.key_id();
    let q = query_keys(&bob, &alice.user_id).await;
    let sigs = &q["device_keys"][&alice.user_id][&alice.device_id]["signatures"][&alice.user_id];
    assert!(sigs[&ssk_id].is_string(), "self-signing signature on the device: {q}");
    assert!(sigs[format!("ed25519:{}", alice.device_id)].is_string(), "own signature kept: {q}");

    // Alice's device signs her master key.
    let mut signed_master = keys.master_object(&alice);
    device_key.sign(&alice.user_id, &mut signed_master);
    let r =
        upload_signatures(&alice, json!({&alice.user_id: {&keys.master.public: signed_master}}))
            .await;
    assert_eq!(r["failures"], json!({}), "{r}");
    let q = query_keys(&alice, &alice.user_id).await;
    let device_sig_id = format!("ed25519:{}", alice.device_id);
    assert!(
        q["master_keys"][&alice.user_id]["signatures"][&alice.user_id][&device_sig_id].is_string(),
        "device signature on the master key: {q}"
    );

    // Bob's user-signing key signs Alice's master key.
    let bob_keys = CrossSigning::new();
    bob.request("POST", &upload_path(), bob_keys.upload_body(&bob)).await.must_status(200);
    let mut alice_master = keys.master_object(&alice);
    bob_keys.user_signing.sign(&bob.user_id, &mut alice_master);
    let r =
        upload_signatures(&bob, json!({&alice.user_id: {&keys.master.public: alice_master}})).await;
    assert_eq!(r["failures"], json!({}), "{r}");
    let q = query_keys(&bob, &alice.user_id).await;
    assert!(
        q["master_keys"][&alice.user_id]["signatures"][&bob.user_id]
            [bob_keys.user_signing.key_id()]
        .is_string(),
        "Bob sees his signature of Alice's master key: {q}"
    );

    // A signature that does not verify, and a device that does not exist, are failures.
    let alice2 = alice.unauthed().must_login(&alice.user_id, &alice.password).await;
    let (_, dk2) = device_keys(&alice2);
    must_upload(&alice2, json!({"device_keys": dk2})).await;
    let stranger = SigningKey::cross_signing();
    let mut forged = dk2.clone();
    stranger.sign(&alice.user_id, &mut forged);
    // The stranger's signature, presented as the self-signing key's.
    let mine = forged["signatures"][&alice.user_id].as_object_mut().expect("signatures");
    let sig = mine.remove(&stranger.key_id()).expect("stranger's signature");
    mine.insert(ssk_id.clone(), sig);
    let body = json!({&alice.user_id: {&alice2.device_id: forged, "NOSUCHDEVICE": dk2}});
    let r = upload_signatures(&alice, body).await;
    let failures = &r["failures"][&alice.user_id];
    assert_eq!(failures[&alice2.device_id]["errcode"], "M_INVALID_SIGNATURE", "{r}");
    assert!(failures["NOSUCHDEVICE"]["errcode"].is_string(), "{r}");
    let q = query_keys(&bob, &alice.user_id).await;
    let sigs = &q["device_keys"][&alice.user_id][&alice2.device_id]["signatures"][&alice.user_id];
    assert!(sigs[&ssk_id].is_null(), "the forged signature was not stored: {q}");
    d.destroy().await;
}
