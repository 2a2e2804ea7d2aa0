//! Application services (bridges): registrations, namespaces, who an event concerns, and
//! the transaction senders that push events to each appservice.
//!
//! - `registration`: the YAML files named by `app_service_config_files`;
//! - `auth`: `as_token` authentication with `user_id` masquerading;
//! - `interest`: which appservices an event, typing or receipt concerns (enqueued in the
//!   same write as the event, so nothing owed is lost across restarts);
//! - `sender`: one task per appservice delivering its queue as ordered transactions with
//!   exponential backoff; `http`: the outbound requests (transactions, queries, ping).

pub mod auth;
pub mod ephemeral;
pub mod http;
pub mod interest;
pub mod query;
pub mod registration;
pub mod sender;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use tokio::sync::Notify;

use crate::config::Config;
use crate::error::{Error, Result};
pub use registration::{Namespace, Registration};

/// One configured appservice at run time.
pub struct AppService {
    pub reg: Registration,
    /// `@sender_localpart:server_name`, the appservice's own user.
    pub user_id: String,
    /// Woken when something is enqueued for it.
    pub(crate) wake: Notify,
}

impl AppService {
    /// A user the appservice may act as and hears about: its sender or its user namespace.
    pub fn owns_user(&self, user_id: &str) -> bool {
        user_id == self.user_id || self.reg.users.iter().any(|n| n.matches(user_id))
    }

    pub fn owns_alias(&self, alias: &str) -> bool {
        self.reg.aliases.iter().any(|n| n.matches(alias))
    }

    pub fn owns_room(&self, room_id: &str) -> bool {
        self.reg.rooms.iter().any(|n| n.matches(room_id))
    }

    fn exclusive_user(&self, user_id: &str) -> bool {
        user_id == self.user_id || self.reg.users.iter().any(|n| n.exclusive && n.matches(user_id))
    }

    fn exclusive_alias(&self, alias: &str) -> bool {
        self.reg.aliases.iter().any(|n| n.exclusive && n.matches(alias))
    }
}

/// Every configured appservice and the outbound client they share.
pub struct AppServices {
    pub list: Vec<Arc<AppService>>,
    pub client: http::Client,
    /// Third-party protocol metadata per (appservice, protocol), with when it was fetched.
    pub protocol_cache: Mutex<HashMap<(String, String), (Instant, serde_json::Value)>>,
}

impl AppServices {
    pub fn new(config: &Config) -> Result<AppServices> {
        let list = config
            .app_services
            .iter()
            .map(|reg| {
                Arc::new(AppService {
                    user_id: format!("@{}:{}", reg.sender_localpart, config.server_name),
                    reg: reg.clone(),
                    wake: Notify::new(),
                })
            })
            .collect();
        Ok(AppServices {
            list,
            client: http::Client::new(config)?,
            protocol_cache: Mutex::default(),
        })
    }

    pub fn by_token(&self, token: &str) -> Option<&Arc<AppService>> {
        self.list.iter().find(|a| a.reg.as_token == token)
    }

    pub fn by_id(&self, id: &str) -> Option<&Arc<AppService>> {
        self.list.iter().find(|a| a.reg.id == id)
    }

    /// 400 `M_EXCLUSIVE` when an appservice other than `caller` claims `user_id`
    /// exclusively (registration by normal users, or by another appservice).
    pub fn check_user_not_exclusive(&self, user_id: &str, caller: Option<&str>) -> Result<()> {
        match self.list.iter().find(|a| a.exclusive_user(user_id)) {
            Some(a) if Some(a.reg.id.as_str()) != caller => {
                Err(Error::Exclusive("This user ID is reserved by an application service.".into()))
            }
            _ => Ok(()),
        }
    }

    /// 400 `M_EXCLUSIVE` when an appservice other than `caller` claims `alias` exclusively.
    pub fn check_alias_not_exclusive(&self, alias: &str, caller: Option<&str>) -> Result<()> {
        match self.list.iter().find(|a| a.exclusive_alias(alias)) {
            Some(a) if Some(a.reg.id.as_str()) != caller => {
                Err(Error::Exclusive("This alias is reserved by an application service.".into()))
            }
            _ => Ok(()),
        }
    }

    /// Wake the senders of these appservices (after their items were committed).
    pub fn wake(&self, ids: &[String]) {
        for a in &self.list {
            if ids.contains(&a.reg.id) {
                a.wake.notify_one();
            }
        }
    }
}
