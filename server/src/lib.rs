//! Glia, a Matrix homeserver for people who self-host.
//!
//! The path of a request: `http` (listeners, TLS, limits, routing) -> `api` (one handler
//! file per spec module) -> services (`users`, ...) -> `store` (SQLite, one writer).

pub mod api;
pub mod app;
pub mod appservice;
pub mod cli;
pub mod config;
pub mod e2ee;
pub mod error;
pub mod federation;
pub mod filter;
pub mod http;
pub mod keys;
pub mod media;
pub mod metrics;
pub mod notifier;
pub mod push;
pub mod ratelimit;
pub mod rooms;
pub mod store;
pub mod sync;
pub mod typing;
pub mod users;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::app::App;
use crate::config::Config;
use crate::error::{Error, Result};
use crate::keys::SigningKey;
use crate::store::Db;

/// A running homeserver: its bound addresses and the means to stop it.
pub struct Server {
    pub addrs: Vec<SocketAddr>,
    pub app: Arc<App>,
    shutdown: watch::Sender<bool>,
    tasks: JoinSet<()>,
}

impl Server {
    /// Open storage, load or create the keys and secrets, bind the listeners.
    pub async fn start(config: Config) -> Result<Server> {
        for warning in config.test_setup_warnings() {
            tracing::warn!("{warning}");
        }
        config::check_custom_ca_list(&config.test_setup).map_err(Error::internal)?;
        let db = Db::open(
            &config.database.path,
            config.database.synchronous_full,
            config.database.readers,
        )?;
        let signing_key = SigningKey::load_or_generate(&config.signing_key_path)?;
        let registration_shared_secret = load_shared_secret(&config)?;
        let (tx, rx) = watch::channel(false);
        let app = Arc::new(App {
            router: api::router(),
            db,
            signing_key,
            registration_shared_secret,
            registration_nonces: Mutex::new(Default::default()),
            uia: Default::default(),
            notifier: Default::default(),
            rooms: Default::default(),
            typing: Default::default(),
            metrics: Default::default(),
            ratelimits: ratelimit::RateLimits::new(
                config.rate_limits.clone(),
                config.test_setup.rc_disabled,
            ),
            federation: federation::client::FederationClient::new(&config)?,
            fed_sender: Default::default(),
            appservices: appservice::AppServices::new(&config)?,
            media: media::Media::open(media::MediaConfig::from_config(&config))?,
            pushes: Default::default(),
            shutdown: rx.clone(),
            started: Instant::now(),
            config,
        });
        push::gateway::Gateway::start(&app);
        appservice::auth::ensure_senders(&app).await.inspect_err(|_| app.db.close())?;
        let mut bound = http::bind_all(&app, rx).await.inspect_err(|_| app.db.close())?;
        appservice::sender::spawn_all(&app, &mut bound.tasks);
        app.fed_sender.start(&app).await?;
        tracing::info!(server_name = %app.config.server_name, "Glia {} ready", env!("CARGO_PKG_VERSION"));
        Ok(Server { addrs: bound.addrs, app, shutdown: tx, tasks: bound.tasks })
    }

    /// Stop accepting, let in-flight requests finish, then flush the database writer.
    pub async fn shutdown(mut self) {
        let _ = self.shutdown.send(true);
        while self.tasks.join_next().await.is_some() {}
        let app = self.app.clone();
        let _ = tokio::task::spawn_blocking(move || app.db.close()).await;
        tracing::info!("shut down cleanly");
    }

    /// Resolves when the server has been asked to stop by `shutdown`'s signal or the
    /// listeners ended on their own.
    pub async fn wait(&mut self) {
        while self.tasks.join_next().await.is_some() {}
    }
}

/// The shared secret: from the config, else from `registration_shared_secret_path`
/// (generated there on first start, as the embedded default does).
fn load_shared_secret(config: &Config) -> Result<Option<String>> {
    if let Some(s) = &config.registration_shared_secret {
        return Ok(Some(s.clone()));
    }
    let Some(path) = &config.registration_shared_secret_path else {
        return Ok(None);
    };
    if !path.exists() {
        keys::write_private_file(path, &users::random_string(48))?;
        tracing::info!(path = %path.display(), "generated registration shared secret");
    }
    let s = std::fs::read_to_string(path)
        .map_err(|e| Error::internal(format!("reading {}: {e}", path.display())))?;
    Ok(Some(s.trim().to_string()))
}
