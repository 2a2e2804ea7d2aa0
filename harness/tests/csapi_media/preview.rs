//! URL previews (`GET /_matrix/client/v1/media/preview_url`, legacy
//! `/_matrix/media/v3/preview_url`).
//!
//! Off by default (Synapse's `url_preview_enabled: false`): both endpoints answer as ones
//! the server does not have, 404 `M_UNRECOGNIZED`, after authentication. When on, a tiny
//! HTTP server in the scenario on 127.0.0.1 serves the pages; loopback is refused by the
//! default `url_preview_ip_range_blacklist`, so the scenarios that fetch it put it in
//! `url_preview_ip_range_whitelist`. These need a server configuration and skip against
//! external servers. (The address checks themselves are unit tests in
//! server/src/media/preview.rs.)

use std::net::SocketAddr;

use glia_harness::client::encode_segment;
use glia_harness::{Deployment, HsConfig};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use crate::send;

#[tokio::test]
async fn test_url_preview_disabled_by_default() {
    let d = Deployment::new(1).await;
    let alice = d.register_user(0, "alice").await;
    for path in [
        "/_matrix/client/v1/media/preview_url?url=https%3A%2F%2Fmatrix.org",
        "/_matrix/media/v3/preview_url?url=http%3A%2F%2F127.0.0.1%3A8008%2F",
    ] {
        send(&alice, "GET", path, None, None, true).await.must_error(404, "M_UNRECOGNIZED");
    }
    d.destroy().await;
}

const PAGE: &str = "<!doctype html><html><head><title>Fallback title</title>\
    <meta property=\"og:title\" content=\"Glia &amp; friends\">\
    <meta name=\"description\" content=\"A page about Glia\">\
    <meta property=\"og:image\" content=\"/logo.png\">\
    </head><body>hello</body></html>";

/// A tiny HTTP/1.1 server on 127.0.0.1: `/page` (HTML with Open Graph tags), `/redirect`
/// (302 to the cloud metadata address), `/loop` (redirects to itself), `/big` (64 KiB of
/// HTML without a Content-Length), `/missing` (404). One request per connection.
async fn page_server() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        while let Ok((mut sock, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut req = Vec::new();
                let mut buf = [0u8; 1024];
                while !req.windows(4).any(|w| w == b"\r\n\r\n") {
                    match sock.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => req.extend_from_slice(&buf[..n]),
                    }
                }
                let text = String::from_utf8_lossy(&req).to_string();
                let path = text.split_whitespace().nth(1).unwrap_or("/").to_string();
                let resp = match path.as_str() {
                    "/page" => format!(
                        "HTTP/1.1 200 OK\r\nContent-Type: text/html; charset=utf-8\r\n\
                         Content-Length: {}\r\nConnection: close\r\n\r\n{PAGE}",
                        PAGE.len()
                    ),
                    "/redirect" => "HTTP/1.1 302 Found\r\n\
                        Location: http://169.254.169.254/latest/meta-data/\r\n\
                        Content-Length: 0\r\nConnection: close\r\n\r\n"
                        .to_string(),
                    "/loop" => "HTTP/1.1 302 Found\r\nLocation: /loop\r\n\
                        Content-Length: 0\r\nConnection: close\r\n\r\n"
                        .to_string(),
                    "/to-page" => "HTTP/1.1 301 Moved\r\nLocation: /page\r\n\
                        Content-Length: 0\r\nConnection: close\r\n\r\n"
                        .to_string(),
                    "/big" => format!(
                        "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nConnection: close\r\n\r\n\
                         <html><head><title>big</title></head><body>{}</body></html>",
                        "x".repeat(64 * 1024)
                    ),
                    _ => "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                        .to_string(),
                };
                // The server under test may hang up early (an oversized page).
                let _ = sock.write_all(resp.as_bytes()).await;
                let _ = sock.shutdown().await;
            });
        }
    });
    addr
}

fn preview_path(url: &str) -> String {
    format!("/_matrix/client/v1/media/preview_url?url={}", encode_segment(url))
}

async fn enabled(extra: &str) -> Option<Deployment> {
    let cfg = HsConfig {
        extra_yaml: format!("url_preview_enabled: true\nmax_spider_size: 16K\n{extra}"),
        ..Default::default()
    };
    Deployment::with_config(1, cfg).await
}

#[tokio::test]
async fn test_url_preview_returns_open_graph_data() {
    let Some(d) = enabled("url_preview_ip_range_whitelist: ['127.0.0.1']\n").await else {
        return;
    };
    let alice = d.register_user(0, "alice").await;
    let addr = page_server().await;
    let page = format!("http://{addr}/page");
    for path in [
        preview_path(&page),
        format!("{}&ts=1700000000000", preview_path(&page)),
        preview_path(&format!("http://{addr}/to-page")),
        preview_path(&page).replace("/_matrix/client/v1/media/", "/_matrix/media/v3/"),
    ] {
        let og = send(&alice, "GET", &path, None, None, true).await.must_status(200);
        assert_eq!(og["og:title"], "Glia & friends", "{path}: {og}");
        assert_eq!(og["og:description"], "A page about Glia", "{path}: {og}");
        assert_eq!(og["og:image"], format!("http://{addr}/logo.png"), "{path}: {og}");
    }
    // Upstream failures are 502, as in Synapse.
    for bad in ["missing", "loop"] {
        send(&alice, "GET", &preview_path(&format!("http://{addr}/{bad}")), None, None, true)
            .await
            .must_error(502, "M_UNKNOWN");
    }
    // An oversized page (past max_spider_size) is refused, and the server carries on.
    send(&alice, "GET", &preview_path(&format!("http://{addr}/big")), None, None, true)
        .await
        .must_error(502, "M_TOO_LARGE");
    // Only http and https.
    for bad in ["file:///etc/passwd", "ftp://127.0.0.1/x", "gopher://127.0.0.1:70/"] {
        send(&alice, "GET", &preview_path(bad), None, None, true)
            .await
            .must_error(400, "M_INVALID_PARAM");
    }
    d.destroy().await;
}

#[tokio::test]
async fn test_url_preview_refuses_blocked_addresses() {
    let Some(d) = enabled("").await else { return };
    let alice = d.register_user(0, "alice").await;
    let addr = page_server().await;
    // Loopback is in the default block-list.
    for url in [format!("http://{addr}/page"), format!("http://localhost:{}/page", addr.port())] {
        send(&alice, "GET", &preview_path(&url), None, None, true)
            .await
            .must_error(403, "M_FORBIDDEN");
    }
    d.destroy().await;
}

#[tokio::test]
async fn test_url_preview_rechecks_redirects() {
    let Some(d) = enabled("url_preview_ip_range_whitelist: ['127.0.0.1']\n").await else {
        return;
    };
    let alice = d.register_user(0, "alice").await;
    let addr = page_server().await;
    // The page server is allowed, the metadata address it redirects to is not.
    send(&alice, "GET", &preview_path(&format!("http://{addr}/redirect")), None, None, true)
        .await
        .must_error(403, "M_FORBIDDEN");
    d.destroy().await;
}

#[tokio::test]
async fn test_url_preview_url_blacklist() {
    let extra = "url_preview_ip_range_whitelist: ['127.0.0.1']\n\
                 url_preview_url_blacklist:\n  - netloc: '127.0.0.1:*'\n    path: '/page'\n";
    let Some(d) = enabled(extra).await else { return };
    let alice = d.register_user(0, "alice").await;
    let addr = page_server().await;
    send(&alice, "GET", &preview_path(&format!("http://{addr}/page")), None, None, true)
        .await
        .must_error(403, "M_FORBIDDEN");
    // A redirect into a blocked URL is refused too.
    send(&alice, "GET", &preview_path(&format!("http://{addr}/to-page")), None, None, true)
        .await
        .must_error(403, "M_FORBIDDEN");
    d.destroy().await;
}
