//! A scriptable fake application service: a plain-HTTP listener on loopback that records
//! every request Glia makes to it (transactions, queries, ping, third-party lookups) and
//! answers with handlers a scenario installs per path, or drops connections while "down".
//! `registration_yaml` writes the registration file that points a homeserver at it.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use serde_json::Value;

/// A request the appservice received.
#[derive(Debug, Clone)]
pub struct Received {
    pub method: String,
    /// Path and query, percent-decoded path.
    pub path: String,
    pub query: String,
    pub authorization: Option<String>,
    pub body: Value,
}

/// What a handler answers: a status and a raw body (so a scenario can answer garbage).
pub type Answer = (u16, String);
type Handler = Arc<dyn Fn(&Received) -> Answer + Send + Sync>;

pub struct FakeAppService {
    pub addr: SocketAddr,
    handlers: Arc<Mutex<Vec<(String, Handler)>>>,
    pub received: Arc<Mutex<Vec<Received>>>,
    down: Arc<AtomicBool>,
}

impl FakeAppService {
    /// Listening; transactions and pings answer 200 `{}` until a scenario says otherwise,
    /// other paths 404 `M_UNRECOGNIZED`.
    pub async fn start() -> FakeAppService {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let s = FakeAppService {
            addr,
            handlers: Arc::default(),
            received: Arc::default(),
            down: Arc::default(),
        };
        s.on("/_matrix/app/v1/transactions/", |_| (200, "{}".into()));
        s.on("/_matrix/app/v1/ping", |_| (200, "{}".into()));
        let (handlers, received, down) = (s.handlers.clone(), s.received.clone(), s.down.clone());
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else { continue };
                if down.load(Ordering::SeqCst) {
                    drop(stream); // connection reset: the appservice is "down"
                    continue;
                }
                let (handlers, received) = (handlers.clone(), received.clone());
                tokio::spawn(async move {
                    let svc = hyper::service::service_fn(move |req: hyper::Request<Incoming>| {
                        let (handlers, received) = (handlers.clone(), received.clone());
                        async move { Ok::<_, Infallible>(serve(req, &handlers, &received).await) }
                    });
                    let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                        .serve_connection(TokioIo::new(stream), svc)
                        .await;
                });
            }
        });
        s
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Answer requests whose path starts with `path_prefix` (the latest handler wins).
    pub fn on(&self, path_prefix: &str, f: impl Fn(&Received) -> Answer + Send + Sync + 'static) {
        self.handlers.lock().expect("handlers").insert(0, (path_prefix.to_string(), Arc::new(f)));
    }

    /// While down, every connection is closed without an answer.
    pub fn set_down(&self, down: bool) {
        self.down.store(down, Ordering::SeqCst);
    }

    pub fn requests(&self) -> Vec<Received> {
        self.received.lock().expect("received").clone()
    }

    /// Requests whose path starts with `prefix`.
    pub fn requests_to(&self, prefix: &str) -> Vec<Received> {
        self.requests().into_iter().filter(|r| r.path.starts_with(prefix)).collect()
    }
}

async fn serve(
    req: hyper::Request<Incoming>,
    handlers: &Mutex<Vec<(String, Handler)>>,
    received: &Mutex<Vec<Received>>,
) -> hyper::Response<Full<Bytes>> {
    let (parts, body) = req.into_parts();
    let bytes = body.collect().await.map(|b| b.to_bytes()).unwrap_or_default();
    let raw_path = parts.uri.path();
    let path = percent_encoding::percent_decode_str(raw_path).decode_utf8_lossy().into_owned();
    let r = Received {
        method: parts.method.to_string(),
        path: path.clone(),
        query: parts.uri.query().unwrap_or("").to_string(),
        authorization: parts
            .headers
            .get(hyper::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string),
        body: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    };
    let handler = handlers
        .lock()
        .expect("handlers")
        .iter()
        .find(|(p, _)| path.starts_with(p.as_str()))
        .map(|(_, h)| h.clone());
    received.lock().expect("received").push(r.clone());
    let (status, body) = match handler {
        Some(h) => h(&r),
        None => (404, r#"{"errcode":"M_UNRECOGNIZED","error":"not here"}"#.into()),
    };
    hyper::Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body)))
        .expect("response")
}

/// A registration file for `url` with the given tokens, sender and namespaces (user
/// regexes exclusive, plus `@_ns_.*` non-exclusive), written into `dir`.
pub struct Registration {
    pub id: String,
    pub as_token: String,
    pub hs_token: String,
    pub sender_localpart: String,
    pub path: std::path::PathBuf,
}

pub fn write_registration(
    dir: &std::path::Path,
    id: &str,
    url: Option<&str>,
    users: &[&str],
    aliases: &[&str],
    protocols: &[&str],
) -> Registration {
    let as_token = format!("as-{id}-{}", rand::random::<u64>());
    let hs_token = format!("hs-{id}-{}", rand::random::<u64>());
    let sender_localpart = format!("{id}-bot");
    let list = |items: &[&str]| -> String {
        items.iter().map(|r| format!("    - exclusive: true\n      regex: '{r}'\n")).collect()
    };
    let yaml = format!(
        "id: {id}\nurl: {}\nas_token: {as_token}\nhs_token: {hs_token}\n\
         sender_localpart: {sender_localpart}\nrate_limited: false\nreceive_ephemeral: true\n\
         org.matrix.msc4203.receive_to_device: true\n\
         namespaces:\n  users:\n{}  aliases:\n{}  rooms: []\nprotocols: [{}]\n",
        url.map(|u| format!("\"{u}\"")).unwrap_or_else(|| "null".into()),
        list(users),
        if aliases.is_empty() { "    []\n".to_string() } else { list(aliases) },
        protocols.join(", "),
    );
    let path = dir.join(format!("{id}.yaml"));
    std::fs::write(&path, yaml).expect("write registration");
    Registration { id: id.into(), as_token, hs_token, sender_localpart, path }
}
