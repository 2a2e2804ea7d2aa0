//! An HTTP client for one homeserver, with Complement's `must_*` style helpers.

use std::time::Duration;

use reqwest::Method;
use serde_json::{Value, json};

/// A response, kept whole so a failing assertion can show it.
#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: Vec<u8>,
    pub what: String,
    /// The HTTP version the response came over (HTTP/1.1, or HTTP/2 by ALPN or prior knowledge).
    pub http_version: reqwest::Version,
}

impl Response {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!("{}: body is not JSON ({e}): {}", self.what, String::from_utf8_lossy(&self.body))
        })
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// Assert the status, returning the JSON body.
    #[track_caller]
    pub fn must_status(&self, status: u16) -> Value {
        assert_eq!(
            self.status,
            status,
            "{}: expected {status}, got {}: {}",
            self.what,
            self.status,
            self.text()
        );
        if self.body.is_empty() { Value::Null } else { self.json() }
    }

    /// Assert a Matrix error: status and errcode, and that `error` is a string.
    #[track_caller]
    pub fn must_error(&self, status: u16, errcode: &str) -> Value {
        let body = self.must_status(status);
        assert_eq!(body["errcode"], errcode, "{}: wrong errcode in {body}", self.what);
        assert!(
            body["error"].is_string() || status == 401,
            "{}: no error message in {body}",
            self.what
        );
        body
    }

    /// Assert a 4xx with a well-formed Matrix error body, whatever the code.
    #[track_caller]
    pub fn must_client_error(&self) -> Value {
        assert!(
            (400..500).contains(&self.status),
            "{}: expected 4xx, got {}: {}",
            self.what,
            self.status,
            self.text()
        );
        let body = self.json();
        assert!(
            body["errcode"].as_str().is_some_and(|c| c.starts_with("M_")),
            "{}: no errcode in {body}",
            self.what
        );
        body
    }
}

/// What to send as a request body.
pub enum Body {
    None,
    Json(Value),
    Raw(Vec<u8>, &'static str),
}

impl From<Value> for Body {
    fn from(v: Value) -> Body {
        Body::Json(v)
    }
}

#[derive(Clone)]
pub struct Client {
    pub base_url: String,
    pub user_id: String,
    pub device_id: String,
    pub access_token: Option<String>,
    pub password: String,
    http: reqwest::Client,
}

pub fn http_client(extra_root: Option<&std::path::Path>) -> reqwest::Client {
    http_client_builder(extra_root, &[]).build().expect("HTTP client")
}

/// The builder behind [`http_client`], for clients that need more (HTTP/2 prior knowledge).
/// `alpn` is offered in the TLS handshake: `&[b"h2", b"http/1.1"]` lets a server pick HTTP/2;
/// empty (as in [`http_client`]) means HTTP/1.1 over TLS.
pub fn http_client_builder(
    extra_root: Option<&std::path::Path>,
    alpn: &[&[u8]],
) -> reqwest::ClientBuilder {
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    if let Some(path) = extra_root {
        use rustls::pki_types::pem::PemObject;
        for cert in rustls::pki_types::CertificateDer::pem_file_iter(path).expect("CA file") {
            roots.add(cert.expect("CA cert")).expect("add CA");
        }
    }
    let mut tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("TLS versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    tls.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    reqwest::Client::builder()
        .tls_backend_preconfigured(tls)
        .timeout(Duration::from_secs(60))
        .no_proxy()
}

/// Percent-encode one path segment (user IDs contain `@` and `:`).
pub fn encode_segment(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                out.push(b as char)
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

impl Client {
    pub fn new(base_url: &str) -> Client {
        Client::with_http(base_url, http_client(None))
    }

    pub fn with_http(base_url: &str, http: reqwest::Client) -> Client {
        Client {
            base_url: base_url.trim_end_matches('/').to_string(),
            user_id: String::new(),
            device_id: String::new(),
            access_token: None,
            password: String::new(),
            http,
        }
    }

    /// A client without credentials for the same server.
    pub fn unauthed(&self) -> Client {
        Client::with_http(&self.base_url, self.http.clone())
    }

    /// Send a request. `path` segments are encoded one by one, so IDs can be passed as is;
    /// a segment that starts with `?` is appended as the query string.
    pub async fn request(&self, method: &str, path: &[&str], body: impl Into<Body>) -> Response {
        self.request_with(method, path, body, &[]).await
    }

    /// [`Client::request`] with extra request headers.
    pub async fn request_with(
        &self,
        method: &str,
        path: &[&str],
        body: impl Into<Body>,
        headers: &[(&str, &str)],
    ) -> Response {
        self.try_request(method, path, body, headers).await.unwrap_or_else(|e| panic!("{e}"))
    }

    /// Like [`Client::request_with`], but a transport failure (refused, reset, timeout) is an
    /// `Err` instead of a panic: for load that runs while the server is stopped or killed.
    pub async fn try_request(
        &self,
        method: &str,
        path: &[&str],
        body: impl Into<Body>,
        headers: &[(&str, &str)],
    ) -> Result<Response, String> {
        let mut url = self.base_url.clone();
        let mut query = String::new();
        for seg in path {
            if let Some(q) = seg.strip_prefix('?') {
                query = format!("?{q}");
            } else if seg.starts_with('/') {
                url.push_str(seg);
            } else {
                url.push('/');
                url.push_str(&encode_segment(seg));
            }
        }
        url.push_str(&query);
        let method = Method::from_bytes(method.as_bytes()).expect("method");
        let what = format!("{method} {url}");
        let mut req = self.http.request(method, &url);
        if let Some(t) = &self.access_token {
            req = req.bearer_auth(t);
        }
        for (name, value) in headers {
            req = req.header(*name, *value);
        }
        req = match body.into() {
            Body::None => req,
            Body::Json(v) => req.header("content-type", "application/json").body(v.to_string()),
            Body::Raw(bytes, ct) => req.header("content-type", ct).body(bytes),
        };
        let resp = req.send().await.map_err(|e| format!("{what}: request failed: {e:?}"))?;
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let http_version = resp.version();
        let body = resp.bytes().await.map_err(|e| format!("{what}: reading body: {e:?}"))?.to_vec();
        Ok(Response { status, headers, body, what, http_version })
    }

    pub async fn get(&self, path: &[&str]) -> Response {
        self.request("GET", path, Body::None).await
    }

    /// Send and require a 200, returning the JSON body.
    pub async fn must_do(&self, method: &str, path: &[&str], body: impl Into<Body>) -> Value {
        let r = self.request(method, path, body).await;
        r.must_status(200)
    }

    /// `POST /createRoom` with `body`, requiring a 200; returns the room ID.
    pub async fn must_create_room(&self, body: Value) -> String {
        let r = self.must_do("POST", &["_matrix", "client", "v3", "createRoom"], body).await;
        r["room_id"].as_str().unwrap_or_else(|| panic!("no room_id in {r}")).to_string()
    }

    /// Register with the dummy stage (open registration), logging the client in.
    pub async fn register(&self, localpart: &str, password: &str) -> Response {
        self.request(
            "POST",
            &["_matrix", "client", "v3", "register"],
            json!({"username": localpart, "password": password, "auth": {"type": "m.login.dummy"}}),
        )
        .await
    }

    /// Register and return a logged-in client; panics unless it succeeds.
    pub async fn must_register(&self, localpart: &str, password: &str) -> Client {
        let body = self.register(localpart, password).await.must_status(200);
        self.logged_in(&body, password)
    }

    pub fn logged_in(&self, body: &Value, password: &str) -> Client {
        let mut c = self.unauthed();
        c.user_id = body["user_id"].as_str().expect("user_id").to_string();
        c.device_id = body["device_id"].as_str().unwrap_or_default().to_string();
        c.access_token = body["access_token"].as_str().map(str::to_string);
        c.password = password.to_string();
        c
    }

    pub async fn login(&self, user: &str, password: &str, extra: Value) -> Response {
        let mut body = json!({
            "type": "m.login.password",
            "identifier": {"type": "m.id.user", "user": user},
            "password": password,
        });
        if let (Some(b), Some(e)) = (body.as_object_mut(), extra.as_object()) {
            b.extend(e.clone());
        }
        self.request("POST", &["_matrix", "client", "v3", "login"], body).await
    }

    pub async fn must_login(&self, user: &str, password: &str) -> Client {
        let body = self.login(user, password, json!({})).await.must_status(200);
        self.logged_in(&body, password)
    }

    /// The UIA `auth` object for this client's own password.
    pub fn password_auth(&self, session: Option<&str>) -> Value {
        let mut a = json!({
            "type": "m.login.password",
            "identifier": {"type": "m.id.user", "user": self.user_id},
            "password": self.password,
        });
        if let Some(s) = session {
            a["session"] = json!(s);
        }
        a
    }
}

/// A localpart unique within this test process and across runs against one server.
pub fn unique_localpart(prefix: &str) -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    let n = N.fetch_add(1, Ordering::Relaxed);
    let r: u32 = rand::random::<u32>() % 1_000_000;
    format!("{prefix}-{r}-{n}")
}
