//! The few client-server calls the runs need for their setup and for the comparison, on
//! plain reqwest (goose measures the load itself).

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};
use serde_json::{Value, json};

pub fn enc(s: &str) -> String {
    utf8_percent_encode(s, NON_ALPHANUMERIC).to_string()
}

/// One registered user with a device and its access token.
#[derive(Debug, Clone)]
pub struct Creds {
    pub user_id: String,
    pub token: String,
}

#[derive(Clone)]
pub struct Hs {
    pub base_url: String,
    pub http: reqwest::Client,
}

/// Transaction IDs unique within this process.
static TXN: AtomicU64 = AtomicU64::new(0);

pub fn next_txn() -> String {
    format!("lt{}", TXN.fetch_add(1, Ordering::Relaxed))
}

impl Hs {
    pub fn new(base_url: &str) -> Hs {
        let http = reqwest::Client::builder()
            // Long-polls are bounded by their own `timeout`; this only catches a hung server.
            .timeout(Duration::from_secs(120))
            .pool_max_idle_per_host(64)
            .build()
            .unwrap_or_default();
        Hs { base_url: base_url.trim_end_matches('/').to_string(), http }
    }

    pub async fn versions(&self) -> bool {
        let url = format!("{}/_matrix/client/versions", self.base_url);
        matches!(self.http.get(url).timeout(Duration::from_secs(2)).send().await,
                 Ok(r) if r.status().is_success())
    }

    /// A request; returns the status and the JSON body (`Null` when there is none).
    pub async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        token: Option<&str>,
        body: Option<&Value>,
    ) -> Result<(u16, Value), String> {
        let url = format!("{}{path}", self.base_url);
        let mut rb = self.http.request(method, url);
        if let Some(t) = token {
            rb = rb.bearer_auth(t);
        }
        if let Some(b) = body {
            rb = rb.json(b);
        }
        let resp = rb.send().await.map_err(|e| format!("{path}: {e}"))?;
        let status = resp.status().as_u16();
        let bytes = resp.bytes().await.map_err(|e| format!("{path}: {e}"))?;
        let json = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        Ok((status, json))
    }

    /// `call`, requiring 200.
    pub async fn ok(
        &self,
        method: reqwest::Method,
        path: &str,
        token: Option<&str>,
        body: Option<&Value>,
    ) -> Result<Value, String> {
        match self.call(method, path, token, body).await? {
            (200, v) => Ok(v),
            (s, v) => Err(format!("{path}: {s} {v}")),
        }
    }

    /// Open registration with `m.login.dummy` (Glia's and Synapse's open registration).
    pub async fn register(&self, localpart: &str) -> Result<Creds, String> {
        let body = json!({
            "username": localpart,
            "password": format!("pw-{localpart}-load"),
            "auth": {"type": "m.login.dummy"},
            "initial_device_display_name": "glia-loadtest",
        });
        let v = self
            .ok(reqwest::Method::POST, "/_matrix/client/v3/register", None, Some(&body))
            .await?;
        match (v["user_id"].as_str(), v["access_token"].as_str()) {
            (Some(u), Some(t)) => Ok(Creds { user_id: u.into(), token: t.into() }),
            _ => Err(format!("register {localpart}: {v}")),
        }
    }

    pub async fn create_room(&self, who: &Creds, body: &Value) -> Result<String, String> {
        let v = self
            .ok(
                reqwest::Method::POST,
                "/_matrix/client/v3/createRoom",
                Some(&who.token),
                Some(body),
            )
            .await?;
        v["room_id"].as_str().map(String::from).ok_or_else(|| format!("createRoom: {v}"))
    }

    pub async fn join(&self, who: &Creds, room_id: &str) -> Result<(), String> {
        let path = format!("/_matrix/client/v3/join/{}", enc(room_id));
        self.ok(reqwest::Method::POST, &path, Some(&who.token), Some(&json!({}))).await.map(drop)
    }

    /// Send one `m.room.message`; returns the status and body (callers judge them).
    pub async fn send_text(
        &self,
        who: &Creds,
        room_id: &str,
        body: &str,
    ) -> Result<(u16, Value), String> {
        let path =
            format!("/_matrix/client/v3/rooms/{}/send/m.room.message/{}", enc(room_id), next_txn());
        let content = json!({"msgtype": "m.text", "body": body});
        self.call(reqwest::Method::PUT, &path, Some(&who.token), Some(&content)).await
    }

    /// `/sync` with an optional `since`, a timeout in ms and an inline filter.
    pub async fn sync(
        &self,
        who: &Creds,
        since: Option<&str>,
        timeout_ms: u64,
        filter: Option<&Value>,
    ) -> Result<Value, String> {
        let mut path = format!("/_matrix/client/v3/sync?timeout={timeout_ms}");
        if let Some(s) = since {
            path.push_str(&format!("&since={}", enc(s)));
        }
        if let Some(f) = filter {
            path.push_str(&format!("&filter={}", enc(&f.to_string())));
        }
        self.ok(reqwest::Method::GET, &path, Some(&who.token), None).await
    }

    /// Register `n` users `{prefix}{i}` and join them all to a new public room created by
    /// the first. Returns the users and the room.
    pub async fn room_with_users(
        &self,
        prefix: &str,
        n: usize,
    ) -> Result<(Vec<Creds>, String), String> {
        let mut users = Vec::with_capacity(n);
        for i in 0..n.max(1) {
            users.push(self.register(&format!("{prefix}{i}")).await?);
        }
        let room = self
            .create_room(&users[0], &json!({"preset": "public_chat", "name": "load test"}))
            .await?;
        for u in &users[1..] {
            self.join(u, &room).await?;
        }
        Ok((users, room))
    }
}

/// A prefix for user names that will not collide with an earlier run on the same server.
pub fn run_prefix(what: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() % 1_000_000_000)
        .unwrap_or(0);
    format!("lt{what}{nanos}u")
}
