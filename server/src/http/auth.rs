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
        let hash = hash_token(token);
        let owner = self.db.read(move |c| devices::owner_of_token(c, &hash)).await?;
        match owner {
            Some(o) if !o.deactivated => Ok(User {
                user_nid: o.user_nid,
                user_id: o.user_id,
                device_nid: o.device_nid,
                device_id: o.device_id,
                is_admin: o.is_admin,
                is_guest: o.is_guest,
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
