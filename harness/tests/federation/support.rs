//! Helpers the query scenarios share: peers that never answer or do not exist.

use std::sync::{Arc, Mutex};

/// The server name in a user ID, alias or mxc authority (`@a:localhost:1234`).
pub use glia_harness::rooms::server_of;

/// A server name nothing listens on (connections are refused).
pub fn unreachable_server() -> String {
    format!("localhost:{}", glia_harness::deployment::free_port())
}

/// A peer that accepts TCP connections and never says a word (not even TLS). Its server
/// name; the listener lives as long as the test's runtime.
pub async fn hanging_server() -> String {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = l.local_addr().expect("addr").port();
    let held: Arc<Mutex<Vec<tokio::net::TcpStream>>> = Arc::default();
    tokio::spawn(async move {
        while let Ok((s, _)) = l.accept().await {
            held.lock().expect("held").push(s);
        }
    });
    format!("localhost:{port}")
}

/// `Deployment::with_config` for one Glia trusting fake servers, plus `extra` YAML.
pub async fn one_trusting(extra: &str) -> Option<glia_harness::Deployment> {
    let yaml = format!("{}{extra}", glia_harness::federation::trusting_config_yaml());
    glia_harness::Deployment::with_config(
        1,
        glia_harness::HsConfig { extra_yaml: yaml, ..Default::default() },
    )
    .await
}

/// The percent-decoded value of `name` in a request URI's query string.
pub fn query_param(uri: &str, name: &str) -> Option<String> {
    let (_, q) = uri.split_once('?')?;
    let raw = q.split('&').find_map(|kv| kv.strip_prefix(&format!("{name}=")))?;
    let b = raw.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        match raw.get(i + 1..i + 3).and_then(|h| u8::from_str_radix(h, 16).ok()) {
            Some(v) if b[i] == b'%' => {
                out.push(v);
                i += 3;
            }
            _ => {
                out.push(b[i]);
                i += 1;
            }
        }
    }
    String::from_utf8(out).ok()
}
