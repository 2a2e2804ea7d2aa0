//! HTTP handlers, one file per spec module. Handlers parse, call services, shape responses.

pub mod admin;
pub mod client;
pub mod federation;

use crate::http::router::Router;

pub fn router() -> Router {
    let mut r = Router::default();
    client::routes(&mut r);
    admin::routes(&mut r);
    federation::routes(&mut r);
    r
}
