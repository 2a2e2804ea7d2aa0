//! HTTP handlers, one file per spec module. Handlers parse, call services, shape responses.

pub mod admin;
pub mod client;
pub mod federation;
pub mod media;

use std::sync::Arc;

use bytes::Bytes;
use http::{HeaderValue, header};
use http_body_util::Full;

use crate::app::App;
use crate::error::Result;
use crate::http::request::Req;
use crate::http::response::Resp;
use crate::http::router::Router;

pub fn router() -> Router {
    let mut r = Router::default();
    r.get("/health", health);
    client::routes(&mut r);
    media::routes(&mut r);
    admin::routes(&mut r);
    federation::routes(&mut r);
    r
}

/// `GET /health`: 200 `OK` (text/plain) on every listener while the server runs, like
/// Synapse's, for load balancers and container health checks. It checks nothing else, so
/// it stays cheap and unauthenticated.
async fn health(_app: Arc<App>, _req: Req) -> Result<Resp> {
    let mut r = Resp::new(Full::new(Bytes::from_static(b"OK")));
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"));
    Ok(r)
}
