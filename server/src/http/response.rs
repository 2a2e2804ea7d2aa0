//! Building responses: JSON bodies and the headers every response carries.

use bytes::Bytes;
use http::{HeaderValue, Response, StatusCode, header};
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Full};
use serde::Serialize;

use crate::error::Error;

/// A response whose body is in memory: what ordinary handlers return.
pub type Resp = Response<Full<Bytes>>;

/// Any response body, streamed or in memory: what streaming handlers return and what
/// goes out on the wire. A read error mid-stream aborts the response.
pub type Body = UnsyncBoxBody<Bytes, std::io::Error>;
pub type StreamResp = Response<Body>;

/// An in-memory response as a [`StreamResp`].
pub fn streamed(r: Resp) -> StreamResp {
    r.map(|b| b.map_err(|never| match never {}).boxed_unsync())
}

pub fn json<T: Serialize>(status: StatusCode, body: &T) -> Resp {
    let bytes = serde_json::to_vec(body).unwrap_or_else(|_| b"{}".to_vec());
    let mut r = Response::new(Full::new(Bytes::from(bytes)));
    *r.status_mut() = status;
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    r
}

pub fn ok<T: Serialize>(body: &T) -> Resp {
    json(StatusCode::OK, body)
}

pub fn empty_object() -> Resp {
    json(StatusCode::OK, &serde_json::json!({}))
}

pub fn from_error(e: &Error) -> Resp {
    let mut r = json(e.status(), &e.body());
    if let Error::LimitExceeded(_, ms) = e {
        let secs = ms.div_ceil(1000).to_string();
        if let Ok(v) = HeaderValue::from_str(&secs) {
            r.headers_mut().insert(header::RETRY_AFTER, v);
        }
    }
    r
}

/// The CORS headers the spec requires on every client-server response, so web clients
/// (Element, Hydrogen) served from other origins can call the API.
pub fn add_cors<B>(r: &mut Response<B>) {
    let h = r.headers_mut();
    h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, HeaderValue::from_static("*"));
    h.insert(
        header::ACCESS_CONTROL_ALLOW_METHODS,
        HeaderValue::from_static("GET, HEAD, POST, PUT, DELETE, OPTIONS"),
    );
    h.insert(
        header::ACCESS_CONTROL_ALLOW_HEADERS,
        HeaderValue::from_static("X-Requested-With, Content-Type, Authorization, Date"),
    );
}
