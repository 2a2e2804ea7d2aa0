//! The shared state every handler receives.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

use crate::config::Config;
use crate::http::router::Router;
use crate::keys::SigningKey;
use crate::store::Db;
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
    pub started: Instant,
}
