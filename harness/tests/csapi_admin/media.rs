//! Local media through the admin API: a user's media, one item, deleting by ID, by user
//! and by age and size.

use glia_harness::Deployment;
use glia_harness::client::{Body, unique_localpart};
use serde_json::{Value, json};

use crate::{adm, admin, query, server_name};

/// Upload `text` as a file; returns its media ID.
async fn upload(c: &glia_harness::Client, text: &str) -> String {
    let q = query(&[("filename", "note.txt")]);
    let body = c
        .request(
            "POST",
            &["_matrix", "media", "v3", "upload", &q],
            Body::Raw(text.as_bytes().to_vec(), "text/plain"),
        )
        .await
        .must_status(200);
    let uri = body["content_uri"].as_str().unwrap_or_else(|| panic!("{body}"));
    uri.rsplit('/').next().expect("media ID").to_string()
}

fn media_ids(body: &Value) -> Vec<String> {
    body["media"]
        .as_array()
        .unwrap_or_else(|| panic!("no media in {body}"))
        .iter()
        .map(|m| m["media_id"].as_str().expect("media_id").to_string())
        .collect()
}

#[tokio::test]
async fn test_media_admin() {
    let d = Deployment::new(1).await;
    let Some(admin) = admin(&d).await else { return };
    let user = d.register_user(0, "uploader").await;
    let server = server_name(&user.user_id).to_string();
    // Unique contents: identical files would share storage.
    let first = upload(&user, &unique_localpart("first file")).await;
    let second = upload(&user, &unique_localpart("second file")).await;
    let third = upload(&user, &unique_localpart("third file")).await;
    let list = adm(&["v1", "users", &user.user_id, "media"]);

    // Newest first by default.
    let body = admin.get(&list).await.must_status(200);
    assert_eq!(media_ids(&body), vec![third.clone(), second.clone(), first.clone()], "{body}");
    assert_eq!(body["total"], 3, "{body}");
    let m = &body["media"][0];
    assert_eq!(
        (m["media_type"].clone(), m["upload_name"].clone()),
        (json!("text/plain"), json!("note.txt"))
    );
    assert!(m["media_length"].as_u64().is_some_and(|n| n > 0) && m["created_ts"].is_u64(), "{m}");
    let q = query(&[("order_by", "created_ts"), ("dir", "f"), ("limit", "2")]);
    let page = admin.get(&adm(&["v1", "users", &user.user_id, "media", &q])).await.must_status(200);
    assert_eq!(
        (media_ids(&page), page["next_token"].clone()),
        (vec![first.clone(), second.clone()], json!(2))
    );

    let info = admin.get(&adm(&["v1", "media", &server, &first])).await.must_status(200);
    assert_eq!(info["media_info"]["media_id"], first.as_str(), "{info}");
    assert_eq!(info["media_info"]["user_id"], user.user_id.as_str(), "{info}");

    // Delete one by ID: gone from the list and from downloads.
    let one = adm(&["v1", "media", &server, &first]);
    let body = admin.request("DELETE", &one, json!({})).await.must_status(200);
    assert_eq!(body, json!({"deleted_media": [first], "total": 1}));
    let download = ["_matrix", "client", "v1", "media", "download", &server, &first];
    user.get(&download).await.must_error(404, "M_NOT_FOUND");
    admin.request("DELETE", &one, json!({})).await.must_error(404, "M_NOT_FOUND");
    let second_dl = ["_matrix", "client", "v1", "media", "download", &server, &second];
    let r = user.get(&second_dl).await;
    assert_eq!(r.status, 200, "the other media is still there: {}", r.text());

    // By age and size: nothing is larger than a terabyte; 1970 is refused.
    let q = query(&[("before_ts", "9999999999999"), ("size_gt", "1000000000000")]);
    let none = admin.request("POST", &adm(&["v1", "media", "delete", &q]), json!({})).await;
    assert_eq!(none.must_status(200), json!({"deleted_media": [], "total": 0}));
    let q = query(&[("before_ts", "1000")]);
    admin
        .request("POST", &adm(&["v1", "media", "delete", &q]), json!({}))
        .await
        .must_error(400, "M_INVALID_PARAM");

    // Everything of the user.
    let body = admin.request("DELETE", &list, json!({})).await.must_status(200);
    let mut gone: Vec<String> = serde_json::from_value(body["deleted_media"].clone()).expect("ids");
    gone.sort();
    let mut want = vec![second.clone(), third.clone()];
    want.sort();
    assert_eq!((gone, body["total"].clone()), (want, json!(2)), "{body}");
    assert_eq!(admin.get(&list).await.must_status(200)["total"], 0);
    user.get(&second_dl).await.must_error(404, "M_NOT_FOUND");
    // On Glia, the files went too (the media store is `<data dir>/media`).
    if let Some(dir) = &d.hs(0).data_dir {
        let left = files_in(&dir.path().join("media"));
        assert!(left.is_empty(), "files left in the media store: {left:?}");
    }

    must_fail_remote(&admin).await;
    d.destroy().await;
}

async fn must_fail_remote(admin: &glia_harness::Client) {
    let r = admin
        .request("DELETE", &adm(&["v1", "media", "elsewhere.example", "abc"]), json!({}))
        .await;
    crate::must_fail(&r, 400);
}

/// Regular files under `dir`, recursively.
fn files_in(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = vec![];
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                out.extend(files_in(&p));
            } else {
                out.push(p);
            }
        }
    }
    out
}
