//! The shared state every handler receives.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

use tokio::sync::watch;

use crate::config::Config;
use crate::federation::client::FederationClient;
use crate::http::router::Router;
use crate::keys::SigningKey;
use crate::media::Media;
use crate::notifier::Notifier;
use crate::rooms::Rooms;
use crate::store::Db;
use crate::typing::Typing;
use crate::users::uia::UiaSessions;

pub struct App {
    pub config: Config,
    pub db: Db,
    pub router: Router,
    pub signing_key: SigningKey,
    /// The secret for `/_synapse/admin/v1/register`, from the config or its file.
    pub registration_shared_secret: Option<String>,
    /// Nonces handed out by `GET /_synapse/admin/v1/register`, each usable once.
    pub registration_nonces: Mutex<HashMap<String, Instant>>,
    pub uia: UiaSessions,
    pub notifier: Notifier,
    pub rooms: Rooms,
    pub typing: Typing,
    pub metrics: crate::metrics::Metrics,
    /// The `rc_*` rate limiters.
    pub ratelimits: crate::ratelimit::RateLimits,
    /// Outbound federation requests (discovery, TLS, signing).
    pub federation: FederationClient,
    /// Outbound transactions, one sender per destination.
    pub fed_sender: crate::federation::sender::Sender,
    /// Application services (bridges) from `app_service_config_files`.
    pub appservices: crate::appservice::AppServices,
    /// The media repository (files, thumbnails, waits for asynchronous uploads).
    pub media: Media,
    /// Notifications queued for push gateways.
    pub pushes: crate::push::gateway::Gateway,
    pub started: Instant,
    /// Turns true when shutdown begins, so long-polls can answer at once.
    pub shutdown: watch::Receiver<bool>,
}

impl App {
    /// A request to another server, signed with our key.
    pub async fn fed_request(
        &self,
        destination: &str,
        method: http::Method,
        path_and_query: &str,
        body: Option<&serde_json::Value>,
    ) -> crate::error::Result<(http::StatusCode, serde_json::Value)> {
        self.federation
            .request(
                self.config.server_name.as_str(),
                &self.signing_key,
                destination,
                method,
                path_and_query,
                body,
            )
            .await
    }

    /// Resolves once shutdown has begun.
    pub async fn shutting_down(&self) {
        let mut rx = self.shutdown.clone();
        let _ = rx.wait_for(|s| *s).await;
    }
}
