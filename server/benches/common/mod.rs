//! What the benches share: a real Glia (`glia::Server::start` on a temporary data
//! directory, SQLite, the harness's config format) and users registered through Glia's
//! own code.
//!
//! `GLIA_BENCH_SYNCHRONOUS=normal` runs with `synchronous: normal` (no fsync per commit);
//! the default is the server's default, `full`.

#![allow(dead_code)] // each bench uses part of this

use std::sync::Arc;

use glia::app::App;
use glia::http::auth::User;

pub struct Bench {
    pub rt: tokio::runtime::Runtime,
    pub server: Option<glia::Server>,
    pub app: Arc<App>,
    pub synchronous: String,
    _dir: tempfile::TempDir,
}

fn config_yaml(dir: &std::path::Path, synchronous: &str) -> String {
    let d = dir.display();
    format!(
        "server_name: \"bench.local\"\n\
         listeners:\n  - port: 0\n    bind_addresses: ['127.0.0.1']\n    type: http\n\
         \x20   resources:\n      - names: [client]\n\
         database:\n  name: sqlite3\n  args:\n    database: \"{d}/homeserver.db\"\n\
         \x20   synchronous: {synchronous}\n\
         signing_key_path: \"{d}/signing.key\"\n\
         media_store_path: \"{d}/media\"\n\
         enable_registration: false\n"
    )
}

impl Bench {
    pub fn start() -> Bench {
        let synchronous = std::env::var("GLIA_BENCH_SYNCHRONOUS").unwrap_or_else(|_| "full".into());
        let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime");
        let dir = tempfile::tempdir().expect("temp dir");
        let (config, _) =
            glia::config::Config::from_yaml_str(&config_yaml(dir.path(), &synchronous))
                .unwrap_or_else(|r| panic!("bench config invalid: {:?}", r.errors));
        let server = rt.block_on(glia::Server::start(config)).expect("start glia");
        let app = server.app.clone();
        Bench { rt, server: Some(server), app, synchronous, _dir: dir }
    }

    /// Register a user without a password (no hashing) and log in a device.
    pub async fn register(&self, localpart: &str) -> User {
        let app = &self.app;
        let user_id = format!("@{localpart}:{}", app.config.server_name);
        let reg = glia::users::Registration {
            user_id: user_id.clone(),
            password: None,
            is_admin: false,
            is_guest: false,
            displayname: Some(format!("Member {localpart}")),
        };
        let (user_nid, session) =
            glia::users::register(app, reg, Some((None, Some("bench".into()))), "127.0.0.1".into())
                .await
                .expect("register");
        let session = session.expect("session");
        let hash = glia::http::auth::hash_token(&session.access_token);
        let owner = app
            .db
            .read(move |c| glia::store::devices::owner_of_token(c, &hash))
            .await
            .expect("token owner")
            .expect("token");
        assert_eq!(owner.user_nid, user_nid);
        User {
            user_nid,
            user_id,
            device_nid: owner.device_nid,
            device_id: owner.device_id,
            is_admin: false,
            is_guest: false,
            appservice: None,
        }
    }

    /// `n` users in a new public room (created by the first, the others joined).
    pub async fn room(&self, n: usize, name: &str) -> (Vec<User>, String) {
        let mut users = vec![];
        for i in 0..n {
            users.push(self.register(&format!("member{i:04}")).await);
        }
        let req = glia::rooms::create::CreateRoom {
            preset: Some("public_chat".into()),
            name: Some(name.into()),
            topic: Some(format!("{n} members")),
            ..Default::default()
        };
        let app = &self.app;
        let room_id =
            glia::rooms::create::create(app, &users[0].user_id, req).await.expect("create");
        for u in &users[1..] {
            glia::rooms::membership::join(app, &u.user_id, &room_id, None).await.expect("join");
        }
        (users, room_id)
    }

    pub fn shutdown(mut self) {
        if let Some(server) = self.server.take() {
            drop(self.app);
            self.rt.block_on(server.shutdown());
        }
    }
}
