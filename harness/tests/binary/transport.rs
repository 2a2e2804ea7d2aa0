//! The transport: TLS listeners with the test CA in fixtures/tls, HTTP/2 (ALPN and prior
//! knowledge), `X-Forwarded-For` on `x_forwarded` listeners only, the JSON body limit.
//!
//! These start Glia in-process with listeners of their own.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use glia_harness::client::{Body, http_client, http_client_builder};
use glia_harness::deployment::{config_yaml, integrity_check};
use glia_harness::{Client, HsConfig};
use reqwest::Version;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::PASSWORD;

const VERSIONS: [&str; 3] = ["_matrix", "client", "versions"];
const LOGIN: [&str; 4] = ["_matrix", "client", "v3", "login"];

fn tls_fixtures() -> PathBuf {
    glia_harness::fixtures_dir().join("tls")
}

/// One listener on 127.0.0.1, a port of its own, as a YAML list item.
fn listener(tls: bool, x_forwarded: bool) -> String {
    format!(
        "  - port: 0\n    bind_addresses: ['127.0.0.1']\n    type: http\n\
         \x20   tls: {tls}\n    x_forwarded: {x_forwarded}\n\
         \x20   resources:\n      - names: [client, federation]\n"
    )
}

/// An in-process Glia with the harness's config but `listeners` (YAML list items) in place
/// of its one listener. `server.addrs[i]` is listener `i`.
struct Hs {
    server: glia::Server,
    dir: tempfile::TempDir,
}

impl Hs {
    async fn start(listeners: &[String], extra_yaml: &str) -> Hs {
        let dir = tempfile::tempdir().expect("tempdir");
        let cfg = HsConfig { extra_yaml: extra_yaml.to_string(), ..HsConfig::default() };
        let yaml = config_yaml("localhost", dir.path(), 0, &cfg);
        let start = yaml.find("listeners:\n").expect("config has listeners");
        let end = start + yaml[start..].find("database:").expect("listeners end");
        let yaml = format!("{}listeners:\n{}{}", &yaml[..start], listeners.concat(), &yaml[end..]);
        let (config, _) = glia::config::Config::from_yaml_str(&yaml)
            .unwrap_or_else(|r| panic!("config invalid: {:?}\n{yaml}", r.errors));
        let server = glia::Server::start(config).await.expect("start glia");
        assert_eq!(server.addrs.len(), listeners.len(), "one address per listener");
        Hs { server, dir }
    }

    fn addr(&self, i: usize) -> SocketAddr {
        self.server.addrs[i]
    }

    fn http(&self, i: usize) -> Client {
        Client::new(&format!("http://{}", self.addr(i)))
    }

    async fn stop(self) {
        let db = self.dir.path().join("homeserver.db");
        self.server.shutdown().await;
        assert_eq!(integrity_check(&db), "ok");
    }
}

/// A `tls: true` listener serves HTTPS with the configured certificate; HTTP/2 works over
/// TLS (ALPN h2) and on plain HTTP (prior knowledge), for GETs and for JSON POSTs.
#[tokio::test]
async fn tls_listener_and_http2() {
    let tls = tls_fixtures();
    let extra = format!(
        "tls_certificate_path: \"{}\"\ntls_private_key_path: \"{}\"\n",
        tls.join("server.crt").display(),
        tls.join("server.key").display()
    );
    let hs = Hs::start(&[listener(true, false), listener(false, false)], &extra).await;
    let port = hs.addr(0).port();
    let ca = tls.join("ca.crt");

    // HTTP/1.1 over TLS, by name and by IP address (both in the certificate).
    for host in ["localhost", "127.0.0.1"] {
        let c = Client::with_http(&format!("https://{host}:{port}"), http_client(Some(&ca)));
        let r = c.get(&VERSIONS).await;
        r.must_status(200);
        assert_eq!(r.http_version, Version::HTTP_11, "{}", r.what);
    }

    // HTTP/2 chosen by ALPN.
    let h2 = http_client_builder(Some(&ca), &[b"h2", b"http/1.1"]).build().expect("client");
    let h2 = Client::with_http(&format!("https://localhost:{port}"), h2);
    let r = h2.get(&VERSIONS).await;
    r.must_status(200);
    assert_eq!(r.http_version, Version::HTTP_2, "ALPN h2: {}", r.what);
    let alice = h2.must_register("alice", PASSWORD).await;
    let r = alice.get(&["_matrix", "client", "v3", "account", "whoami"]).await;
    assert_eq!(r.must_status(200)["user_id"], alice.user_id.as_str());
    assert_eq!(r.http_version, Version::HTTP_2);

    // A client that does not trust the test CA is refused.
    let untrusted = Client::with_http(&format!("https://localhost:{port}"), http_client(None));
    let r = untrusted.try_request("GET", &VERSIONS, Body::None, &[]).await;
    assert!(r.is_err(), "an unknown CA must fail the handshake: {r:?}");

    // Plain HTTP/2 with prior knowledge on the plain listener.
    let h2c = http_client_builder(None, &[]).http2_prior_knowledge().build().expect("client");
    let h2c = Client::with_http(&format!("http://{}", hs.addr(1)), h2c);
    let r = h2c.get(&VERSIONS).await;
    r.must_status(200);
    assert_eq!(r.http_version, Version::HTTP_2, "prior knowledge: {}", r.what);
    let r = h2c.login("alice", PASSWORD, json!({})).await;
    r.must_status(200);
    assert_eq!(r.http_version, Version::HTTP_2);

    hs.stop().await;
}

/// Behind a proxy (`x_forwarded: true`) the device's IP is the left-most X-Forwarded-For
/// address; elsewhere the header is ignored, since any client can send it.
#[tokio::test]
async fn x_forwarded_for_only_on_x_forwarded_listeners() {
    let hs = Hs::start(&[listener(false, true), listener(false, false)], "").await;
    let (proxied, direct) = (hs.http(0), hs.http(1));
    let alice = direct.must_register("alice", PASSWORD).await;
    let login = json!({
        "type": "m.login.password",
        "identifier": {"type": "m.id.user", "user": "alice"},
        "password": PASSWORD,
    });
    let xff = [("x-forwarded-for", "203.0.113.9, 10.0.0.1")];
    let via_proxy =
        proxied.request_with("POST", &LOGIN, login.clone(), &xff).await.must_status(200);
    let not_trusted =
        direct.request_with("POST", &LOGIN, login.clone(), &xff).await.must_status(200);
    let garbage = proxied
        .request_with("POST", &LOGIN, login, &[("x-forwarded-for", "not-an-address")])
        .await
        .must_status(200);

    let devices = alice.must_do("GET", &["_matrix", "client", "v3", "devices"], Value::Null).await;
    let ip_of = |login: &Value| {
        let id = login["device_id"].as_str().expect("device_id");
        let d = devices["devices"]
            .as_array()
            .expect("devices")
            .iter()
            .find(|d| d["device_id"] == id)
            .unwrap_or_else(|| panic!("device {id} not in {devices}"));
        d["last_seen_ip"].as_str().unwrap_or_default().to_string()
    };
    assert_eq!(ip_of(&via_proxy), "203.0.113.9", "{devices}");
    assert_eq!(ip_of(&not_trusted), "127.0.0.1", "{devices}");
    assert_eq!(
        ip_of(&garbage),
        "127.0.0.1",
        "an unparsable header falls back to the peer: {devices}"
    );
    hs.stop().await;
}

/// A login body of `total` bytes: valid JSON, padded inside the password.
fn big_login(total: usize) -> Vec<u8> {
    let head = br#"{"type":"m.login.password","identifier":{"type":"m.id.user","user":"alice"},"password":""#;
    let mut body = head.to_vec();
    body.resize(total - 2, b'a');
    body.extend_from_slice(b"\"}");
    body
}

/// POST `body` with chunked transfer encoding (no Content-Length) over a raw connection,
/// 64 KiB per chunk; returns the status and body of the response.
async fn post_chunked(addr: SocketAddr, path: &str, body: Vec<u8>) -> (u16, String) {
    let stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let (mut rd, mut wr) = stream.into_split();
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\n\
         Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
    );
    // The server may answer and close before the body is all sent: write errors are fine.
    let writer = tokio::spawn(async move {
        wr.write_all(head.as_bytes()).await?;
        for chunk in body.chunks(64 * 1024) {
            wr.write_all(format!("{:x}\r\n", chunk.len()).as_bytes()).await?;
            wr.write_all(chunk).await?;
            wr.write_all(b"\r\n").await?;
        }
        wr.write_all(b"0\r\n\r\n").await
    });
    let mut buf = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(60), rd.read_to_end(&mut buf)).await;
    let read_error = match read {
        Ok(r) => r.err(),
        Err(_) => panic!("no response to the chunked request within 60s"),
    };
    let _ = writer.await;
    let text = String::from_utf8_lossy(&buf).into_owned();
    let Some((head, body)) = text.split_once("\r\n\r\n") else {
        panic!("no complete response (read error {read_error:?}): {text:?}");
    };
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("bad status line: {head}"));
    (status, body.to_string())
}

/// A 10 MB JSON body gets 413 M_TOO_LARGE, declared (Content-Length) or streamed (chunked),
/// over HTTP/1.1 and HTTP/2, and the server keeps answering.
#[tokio::test]
async fn oversized_body_is_413() {
    let hs = Hs::start(&[listener(false, false)], "").await;
    let c = hs.http(0);
    let body = big_login(10 * 1024 * 1024);

    let r = c
        .try_request("POST", &LOGIN, Body::Raw(body.clone(), "application/json"), &[])
        .await
        .unwrap_or_else(|e| panic!("Content-Length body: no response: {e}"));
    r.must_error(413, "M_TOO_LARGE");

    let (status, text) = post_chunked(hs.addr(0), "/_matrix/client/v3/login", body.clone()).await;
    assert_eq!(status, 413, "chunked body: {text}");
    // The response may itself be chunked: find the JSON object in it.
    let json = text
        .find('{')
        .and_then(|s| text.rfind('}').map(|e| &text[s..=e]))
        .unwrap_or_else(|| panic!("no JSON in {text:?}"));
    let json: Value = serde_json::from_str(json).expect("JSON error body");
    assert_eq!(json["errcode"], "M_TOO_LARGE", "{json}");

    let h2c = http_client_builder(None, &[]).http2_prior_knowledge().build().expect("client");
    let h2c = Client::with_http(&c.base_url, h2c);
    let r = h2c
        .try_request("POST", &LOGIN, Body::Raw(body, "application/json"), &[])
        .await
        .unwrap_or_else(|e| panic!("HTTP/2 body: no response: {e}"));
    r.must_error(413, "M_TOO_LARGE");

    // Still serving, JSON bodies included.
    c.get(&VERSIONS).await.must_status(200);
    c.login("nobody", "wrong", json!({})).await.must_error(403, "M_FORBIDDEN");
    hs.stop().await;
}
