//! A scriptable fake federation server: a real TLS listener on loopback with its own
//! ed25519 key (served at `/_matrix/key/v2/server`, signed with ruma), handlers a scenario
//! installs per path, a record of every request it received, and `X-Matrix`-signed
//! requests to the server under test. Its server name is `localhost:<port>`, which
//! resolves without DNS; the server under test must trust `fixtures/tls/ca.crt` and may
//! reach loopback (see [`trusting_config_yaml`]).
//!
//! It can also act as a homeserver in rooms ([`room`]): its own rooms, whose requests it
//! answers, and rooms of the server under test it joins ([`actions`]).

pub mod actions;
pub mod room;

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use base64::Engine;
use base64::engine::general_purpose::STANDARD_NO_PAD;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use ruma::canonical_json::CanonicalJsonObject;
use ruma::signatures::Ed25519KeyPair;
use serde_json::{Value, json};

use crate::client::Response;
use crate::fixtures_dir;

/// What the fake server received.
#[derive(Debug, Clone)]
pub struct Received {
    pub method: String,
    pub uri: String,
    pub authorization: Option<String>,
    pub body: Value,
}

/// A reply in full, for handlers that answer something other than JSON (media).
#[derive(Debug, Clone, Default)]
pub struct RawReply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

/// What a handler answers.
pub enum Answer {
    Json(u16, Value),
    /// Any bytes (garbage, truncated JSON), with this status.
    Raw(u16, Vec<u8>),
    /// Any status, headers and bytes.
    Full(RawReply),
    /// Never answer: the request hangs until the caller gives up.
    Hang,
}

type Handler = Arc<dyn Fn(&Received) -> Answer + Send + Sync>;
type Rooms = Arc<Mutex<HashMap<String, room::FakeRoom>>>;

pub struct FakeServer {
    pub server_name: String,
    pub addr: SocketAddr,
    pub key_id: String,
    key: Arc<Ed25519KeyPair>,
    handlers: Arc<Mutex<Vec<(String, String, Handler)>>>,
    pub received: Arc<Mutex<Vec<Received>>>,
    /// Rooms the fake server is in, by room ID.
    pub rooms: Rooms,
    http: reqwest::Client,
}

/// YAML that makes a Glia trust the fake servers: the test CA, and loopback peers.
pub fn trusting_config_yaml() -> String {
    let ca = fixtures_dir().join("tls/ca.crt");
    format!(
        "federation_custom_ca_list: [\"{}\"]\nip_range_whitelist: ['127.0.0.0/8', '::1/128']\n",
        ca.display()
    )
}

pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

impl FakeServer {
    pub async fn start() -> FakeServer {
        let der = Ed25519KeyPair::generate();
        let version = format!("f{}", rand::random::<u16>());
        let key = Arc::new(Ed25519KeyPair::from_der(&der, version.clone()).expect("key"));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let server_name = format!("localhost:{}", addr.port());
        let tls = {
            use rustls::pki_types::pem::PemObject;
            let dir = fixtures_dir().join("tls");
            let certs: Vec<_> =
                rustls::pki_types::CertificateDer::pem_file_iter(dir.join("server.crt"))
                    .expect("cert")
                    .collect::<Result<_, _>>()
                    .expect("certs");
            let key = rustls::pki_types::PrivateKeyDer::from_pem_file(dir.join("server.key"))
                .expect("key");
            let provider = Arc::new(rustls::crypto::ring::default_provider());
            let mut cfg = rustls::ServerConfig::builder_with_provider(provider)
                .with_safe_default_protocol_versions()
                .expect("versions")
                .with_no_client_auth()
                .with_single_cert(certs, key)
                .expect("cert");
            cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
            tokio_rustls::TlsAcceptor::from(Arc::new(cfg))
        };
        let server = FakeServer {
            server_name: server_name.clone(),
            addr,
            key_id: format!("ed25519:{version}"),
            key,
            handlers: Arc::default(),
            received: Arc::default(),
            rooms: Arc::default(),
            http: crate::client::http_client(Some(&fixtures_dir().join("tls/ca.crt"))),
        };
        let shared = Shared {
            handlers: server.handlers.clone(),
            received: server.received.clone(),
            rooms: server.rooms.clone(),
            key: server.key.clone(),
            name: server_name,
        };
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else { continue };
                let (tls, shared) = (tls.clone(), shared.clone());
                tokio::spawn(async move {
                    let Ok(stream) = tls.accept(stream).await else { return };
                    let svc = hyper::service::service_fn(move |req: hyper::Request<Incoming>| {
                        let shared = shared.clone();
                        async move { Ok::<_, Infallible>(serve(req, &shared).await) }
                    });
                    let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                        .serve_connection(TokioIo::new(stream), svc)
                        .await;
                });
            }
        });
        server
    }

    /// Answer `method` requests whose path starts with `path_prefix` with JSON. The
    /// latest handler installed for a path wins; handlers come before the built-in key
    /// server (`GET "/"` shadows `/_matrix/key/v2/server` too) and the built-in answers
    /// about the fake server's rooms.
    pub fn on(
        &self,
        method: &str,
        path_prefix: &str,
        f: impl Fn(&Received) -> (u16, Value) + Send + Sync + 'static,
    ) {
        self.on_answer(method, path_prefix, move |r| {
            let (s, v) = f(r);
            Answer::Json(s, v)
        });
    }

    /// Like [`FakeServer::on`], answering any status, headers and bytes.
    pub fn on_raw(
        &self,
        method: &str,
        path_prefix: &str,
        f: impl Fn(&Received) -> RawReply + Send + Sync + 'static,
    ) {
        self.on_answer(method, path_prefix, move |r| Answer::Full(f(r)));
    }

    /// Like [`FakeServer::on`], for any [`Answer`] (garbage, or none at all).
    pub fn on_answer(
        &self,
        method: &str,
        path_prefix: &str,
        f: impl Fn(&Received) -> Answer + Send + Sync + 'static,
    ) {
        self.handlers.lock().expect("handlers").push((
            method.to_string(),
            path_prefix.to_string(),
            Arc::new(f),
        ));
    }

    /// The signed `/_matrix/key/v2/server` response the fake serves (valid for an hour).
    pub fn key_response(&self) -> Value {
        key_response(&self.key, &self.server_name)
    }

    /// `v` (an object) with this server's signature added, as a notary countersigns.
    pub fn sign_json(&self, v: &Value) -> Value {
        self.sign_json_as(&self.server_name, v)
    }

    /// `v` signed with this server's key under another server's name (a key that server
    /// rotated to, or a forgery).
    pub fn sign_json_as(&self, name: &str, v: &Value) -> Value {
        let mut obj: CanonicalJsonObject = serde_json::from_value(v.clone()).expect("canonical");
        ruma::signatures::sign_json(name, &*self.key, &mut obj).expect("sign");
        serde_json::to_value(&obj).expect("json")
    }

    /// The requests received so far with this method whose path starts with `prefix`.
    pub fn received_on(&self, method: &str, prefix: &str) -> Vec<Received> {
        let all = self.received.lock().expect("received");
        all.iter().filter(|r| r.method == method && r.uri.starts_with(prefix)).cloned().collect()
    }

    pub fn public_key_base64(&self) -> String {
        STANDARD_NO_PAD.encode(self.key.public_key())
    }

    /// An `X-Matrix` signed request to `base_url` (the server under test, named `destination`).
    pub async fn request(
        &self,
        base_url: &str,
        destination: &str,
        method: &str,
        path: &str,
        body: Option<Value>,
    ) -> Response {
        let header = self.x_matrix(method, path, destination, body.as_ref());
        self.raw_request(base_url, method, path, body, Some(header)).await
    }

    pub fn x_matrix(
        &self,
        method: &str,
        uri: &str,
        destination: &str,
        body: Option<&Value>,
    ) -> String {
        self.x_matrix_as(&self.server_name, method, uri, destination, body)
    }

    /// An `X-Matrix` header claiming to come from `origin`, signed with this server's key.
    pub fn x_matrix_as(
        &self,
        origin: &str,
        method: &str,
        uri: &str,
        destination: &str,
        body: Option<&Value>,
    ) -> String {
        let mut v =
            json!({"method": method, "uri": uri, "origin": origin, "destination": destination});
        if let Some(b) = body {
            v["content"] = b.clone();
        }
        let signed = self.sign_json_as(origin, &v);
        let sig = signed["signatures"][origin][&self.key_id].as_str().expect("sig").to_string();
        format!(
            "X-Matrix origin=\"{origin}\",destination=\"{destination}\",key=\"{}\",sig=\"{sig}\"",
            self.key_id
        )
    }

    /// A request with any Authorization header (or none), for forgery scenarios.
    pub async fn raw_request(
        &self,
        base_url: &str,
        method: &str,
        path: &str,
        body: Option<Value>,
        auth: Option<String>,
    ) -> Response {
        let url = format!("{}{path}", base_url.trim_end_matches('/'));
        let m = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
        let what = format!("{method} {url} (as {})", self.server_name);
        let mut req = self.http.request(m, &url);
        if let Some(a) = auth {
            req = req.header("authorization", a);
        }
        if let Some(b) = body {
            req = req.header("content-type", "application/json").body(b.to_string());
        }
        let resp = req.send().await.unwrap_or_else(|e| panic!("{what}: {e}"));
        let status = resp.status().as_u16();
        let http_version = resp.version();
        let headers = resp.headers().clone();
        let body = resp.bytes().await.expect("body").to_vec();
        Response { status, headers, body, what, http_version }
    }
}

/// What every connection task of the fake server shares.
#[derive(Clone)]
struct Shared {
    handlers: Arc<Mutex<Vec<(String, String, Handler)>>>,
    received: Arc<Mutex<Vec<Received>>>,
    rooms: Rooms,
    key: Arc<Ed25519KeyPair>,
    name: String,
}

async fn serve(req: hyper::Request<Incoming>, s: &Shared) -> hyper::Response<Full<Bytes>> {
    let (parts, body) = req.into_parts();
    let bytes = body.collect().await.map(|b| b.to_bytes()).unwrap_or_default();
    let r = Received {
        method: parts.method.to_string(),
        uri: parts.uri.path_and_query().map(|p| p.to_string()).unwrap_or_default(),
        authorization: parts
            .headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string),
        body: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    };
    s.received.lock().expect("received").push(r.clone());
    // Installed handlers first (a scenario may refuse to serve keys), then the key server,
    // then the fake server's rooms.
    let found = s
        .handlers
        .lock()
        .expect("handlers")
        .iter()
        .rev()
        .find(|(m, p, _)| *m == r.method && r.uri.starts_with(p.as_str()))
        .map(|(_, _, h)| h.clone());
    let answer = match found {
        Some(h) => h(&r),
        None if r.method == "GET" && r.uri.starts_with("/_matrix/key/v2/server") => {
            Answer::Json(200, key_response(&s.key, &s.name))
        }
        None => match room::answer(&s.rooms, &s.name, &r) {
            Some((status, v)) => Answer::Json(status, v),
            None => Answer::Json(
                404,
                json!({"errcode": "M_UNRECOGNIZED", "error": "fake server: no handler"}),
            ),
        },
    };
    let reply = match answer {
        Answer::Json(status, v) => json_reply(status, v.to_string().into_bytes()),
        Answer::Raw(status, b) => json_reply(status, b),
        Answer::Full(reply) => reply,
        Answer::Hang => std::future::pending().await,
    };
    let mut resp = hyper::Response::new(Full::new(Bytes::from(reply.body)));
    *resp.status_mut() = hyper::StatusCode::from_u16(reply.status)
        .unwrap_or(hyper::StatusCode::INTERNAL_SERVER_ERROR);
    for (k, v) in reply.headers {
        if let (Ok(k), Ok(v)) = (
            hyper::header::HeaderName::from_bytes(k.as_bytes()),
            hyper::header::HeaderValue::from_str(&v),
        ) {
            resp.headers_mut().append(k, v);
        }
    }
    resp
}

/// A reply with a JSON content type (the body may be anything: garbage scenarios).
fn json_reply(status: u16, body: Vec<u8>) -> RawReply {
    RawReply { status, headers: vec![("content-type".into(), "application/json".into())], body }
}

fn key_response(key: &Ed25519KeyPair, name: &str) -> Value {
    let v = json!({
        "server_name": name,
        "valid_until_ts": now_ms() + 3_600_000,
        "verify_keys": {format!("ed25519:{}", key.version()): {"key": STANDARD_NO_PAD.encode(key.public_key())}},
        "old_verify_keys": {},
    });
    let mut obj: CanonicalJsonObject = serde_json::from_value(v).expect("canonical");
    ruma::signatures::sign_json(name, key, &mut obj).expect("sign");
    serde_json::to_value(&obj).expect("json")
}
