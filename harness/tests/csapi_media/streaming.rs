//! A 100 MB upload streamed from a generator (never built in memory on the client), then
//! streamed back: length and SHA-256 match. What it shows is that streaming works end to
//! end; the server writes the body to disk as it arrives and reads the download from the
//! file. Against an external server the size is its `m.upload.size` if that is smaller
//! (Synapse's default is 50 MiB).

use std::time::Instant;

use glia_harness::{Deployment, HsConfig};
use sha2::{Digest, Sha256};

use crate::{send, split_mxc};

const SIZE: u64 = 100 * 1024 * 1024;
const CHUNK: usize = 256 * 1024;

/// Deterministic pseudo-random bytes (xorshift), chunk by chunk, hashed as produced.
fn generator(total: u64, hasher: std::sync::Arc<std::sync::Mutex<Sha256>>) -> reqwest::Body {
    let stream =
        futures_util::stream::unfold((0u64, 0x9e37_79b9_7f4a_7c15u64), move |(sent, mut x)| {
            let hasher = hasher.clone();
            async move {
                if sent >= total {
                    return None;
                }
                let n = CHUNK.min((total - sent) as usize);
                let mut buf = Vec::with_capacity(n);
                while buf.len() < n {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    buf.extend_from_slice(&x.to_le_bytes());
                }
                buf.truncate(n);
                hasher.lock().expect("hasher").update(&buf);
                Some((Ok::<_, std::io::Error>(bytes::Bytes::from(buf)), (sent + n as u64, x)))
            }
        });
    reqwest::Body::wrap_stream(stream)
}

#[tokio::test]
async fn test_streaming_large_upload() {
    let cfg = HsConfig { extra_yaml: "max_upload_size: 128M\n".into(), ..Default::default() };
    let d = match Deployment::with_config(1, cfg).await {
        Some(d) => d,
        None => Deployment::new(1).await,
    };
    let alice = d.register_user(0, "alice").await;
    let config = send(&alice, "GET", "/_matrix/client/v1/media/config", None, None, true)
        .await
        .must_status(200);
    let size = config["m.upload.size"].as_u64().map_or(SIZE, |limit| limit.min(SIZE));

    // Upload with a declared length (Synapse requires Content-Length) from the generator.
    let hasher = std::sync::Arc::new(std::sync::Mutex::new(Sha256::new()));
    let body = generator(size, hasher.clone());
    let started = Instant::now();
    let url = format!("{}/_matrix/media/v3/upload?filename=big.bin", alice.base_url);
    let resp = reqwest_client()
        .post(&url)
        .bearer_auth(alice.access_token.as_deref().expect("token"))
        .header("content-type", "application/octet-stream")
        .header("content-length", size.to_string())
        .body(body)
        .send()
        .await
        .expect("upload");
    let status = resp.status();
    let json: serde_json::Value = resp.json().await.expect("json");
    assert_eq!(status, 200, "{json}");
    let up = started.elapsed();
    let sent_hash = hex::encode(hasher.lock().expect("hasher").clone().finalize());
    let mxc = json["content_uri"].as_str().expect("uri").to_string();

    // Download, hashing chunk by chunk.
    let (server, id) = split_mxc(&mxc);
    let started = Instant::now();
    let mut resp = reqwest_client()
        .get(format!("{}/_matrix/client/v1/media/download/{server}/{id}", alice.base_url))
        .bearer_auth(alice.access_token.as_deref().expect("token"))
        .send()
        .await
        .expect("download");
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.content_length(), Some(size), "Content-Length of the download");
    let mut got = Sha256::new();
    let mut len = 0u64;
    while let Some(chunk) = resp.chunk().await.expect("chunk") {
        len += chunk.len() as u64;
        got.update(&chunk);
    }
    assert_eq!(len, size);
    assert_eq!(hex::encode(got.finalize()), sent_hash, "the bytes that came back differ");
    eprintln!(
        "streamed {} MiB: upload {:.1}s, download {:.1}s",
        size / (1024 * 1024),
        up.as_secs_f64(),
        started.elapsed().as_secs_f64()
    );

    // Glia also takes a body of unknown length (chunked), within the limit.
    if !d.is_external() {
        let hasher = std::sync::Arc::new(std::sync::Mutex::new(Sha256::new()));
        let r = send(
            &alice,
            "POST",
            "/_matrix/media/v3/upload",
            Some(generator(3 * 1024 * 1024 + 17, hasher.clone())),
            Some("application/octet-stream"),
            true,
        )
        .await;
        let mxc = r.must_status(200)["content_uri"].as_str().expect("uri").to_string();
        let back = crate::must_download(&alice, &mxc).await;
        assert_eq!(back.body.len(), 3 * 1024 * 1024 + 17);
        let want = hex::encode(hasher.lock().expect("hasher").clone().finalize());
        assert_eq!(hex::encode(Sha256::digest(&back.body)), want);
        // The store is content-addressed: the file is named by the hash of its bytes.
        if let Some(dir) = &d.hs(0).data_dir {
            let path =
                dir.path().join("media/content").join(&want[..2]).join(&want[2..4]).join(&want);
            assert_eq!(
                std::fs::metadata(&path).map(|m| m.len()).ok(),
                Some(3 * 1024 * 1024 + 17),
                "{}",
                path.display()
            );
        }
    }
    d.destroy().await;
}

fn reqwest_client() -> reqwest::Client {
    glia_harness::client::http_client(None)
}
