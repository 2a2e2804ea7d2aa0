//! Who is calling: access tokens (header or query), resolved through the hashed token table.

use sha2::{Digest, Sha256};

use super::request::Req;
use crate::app::App;
use crate::error::{Error, Result};
use crate::store::devices;

/// An authenticated caller.
#[derive(Debug, Clone)]
pub struct User {
    pub user_nid: i64,
    pub user_id: String,
    pub device_nid: i64,
    pub device_id: String,
    pub is_admin: bool,
    pub is_guest: bool,
    /// Set when an application service's `as_token` authenticated the request.
    pub appservice: Option<String>,
}

impl User {
    /// 400 `M_MISSING_PARAM` for a device-less caller (an appservice acting without
    /// `device_id`) on endpoints that act for a device.
    pub fn require_device(&self) -> Result<()> {
        if self.device_nid == 0 {
            return Err(Error::MissingParam(
                "This endpoint acts for a device: an application service must name one with \
                 device_id"
                    .into(),
            ));
        }
        Ok(())
    }
}

pub fn hash_token(token: &str) -> Vec<u8> {
    Sha256::digest(token.as_bytes()).to_vec()
}

impl App {
    /// The caller behind the request's access token: 401 `M_MISSING_TOKEN` without one,
    /// 401 `M_UNKNOWN_TOKEN` for a token that is not (or no longer) valid.
    pub async fn auth(&self, req: &Req) -> Result<User> {
        let token = req
            .access_token()
            .ok_or_else(|| Error::MissingToken("Missing access token.".into()))?;
        if let Some(a) = self.appservices.by_token(token) {
            return crate::appservice::auth::user(self, req, a).await;
        }
        let hash = hash_token(token);
        let owner = self.db.read_point(|c| devices::owner_of_token(c, &hash)).await?;
        match owner {
            Some(o) if !o.deactivated => Ok(User {
                user_nid: o.user_nid,
                user_id: o.user_id,
                device_nid: o.device_nid,
                device_id: o.device_id,
                is_admin: o.is_admin,
                is_guest: o.is_guest,
                appservice: None,
            }),
            _ => Err(Error::UnknownToken("Unrecognised access token.".into())),
        }
    }

    /// Like `auth`, but guests get 403 `M_GUEST_ACCESS_FORBIDDEN`.
    pub async fn auth_member(&self, req: &Req) -> Result<User> {
        let u = self.auth(req).await?;
        if u.is_guest {
            return Err(Error::GuestAccessForbidden("Guest access not allowed".into()));
        }
        Ok(u)
    }

    /// Like `auth`, but only server admins pass.
    pub async fn auth_admin(&self, req: &Req) -> Result<User> {
        let u = self.auth(req).await?;
        if !u.is_admin {
            return Err(Error::Forbidden("You are not a server admin".into()));
        }
        Ok(u)
    }
}

impl App {
    /// The server behind an `X-Matrix` signed federation request: 401 `M_UNAUTHORIZED` for
    /// a missing, malformed or forged signature, checked before any other work; 403
    /// `M_FORBIDDEN` for an origin `federation_domain_whitelist` leaves out.
    pub async fn auth_server(&self, req: &Req) -> Result<String> {
        let header =
            req.headers.get(http::header::AUTHORIZATION).and_then(|v| v.to_str().ok()).ok_or_else(
                || Error::Unauthorized("Missing X-Matrix Authorization header".into()),
            )?;
        let x = crate::federation::xmatrix::parse(header)?;
        ruma::ServerName::parse(&x.origin)
            .map_err(|_| Error::Unauthorized("Invalid origin".into()))?;
        // `federation_domain_whitelist`: refused before any key is fetched (as Synapse).
        if !self.config.federation_allowed(&x.origin) {
            return Err(Error::Forbidden(format!(
                "Federation denied with {}: not in federation_domain_whitelist",
                x.origin
            )));
        }
        let content = if req.body.is_empty() { None } else { Some(req.json_value()?) };
        let key = crate::federation::key_store::verify_key(
            self,
            &x.origin,
            &x.key,
            crate::store::now_ms(),
        )
        .await
        .map_err(|e| match e {
            Error::Unauthorized(m) => Error::Unauthorized(m),
            other => {
                Error::Unauthorized(format!("cannot get {}'s key {}: {other}", x.origin, x.key))
            }
        })?;
        crate::federation::xmatrix::verify(
            &x,
            req.method.as_str(),
            &req.uri,
            self.config.server_name.as_str(),
            content.as_ref(),
            &key,
        )?;
        self.fed_sender.destination_alive(&x.origin);
        Ok(x.origin)
    }
}
