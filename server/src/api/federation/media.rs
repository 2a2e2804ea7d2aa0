//! Media for other servers (`/_matrix/federation/v1/media/download/{mediaId}` and
//! `/media/thumbnail/{mediaId}`): local media only, as the spec's `multipart/mixed`
//! answer: a JSON part (the metadata object, empty for now) and the bytes with their
//! `Content-Type` and `Content-Disposition`. The bytes stream from the file.

use std::sync::Arc;

use bytes::Bytes;
use futures_util::StreamExt;
use http::{HeaderValue, Method, header};
use http_body_util::{BodyExt, BodyStream, StreamBody};
use hyper::body::{Frame, Incoming};

use crate::api::media::{download, thumbnail};
use crate::app::App;
use crate::error::{Error, Result};
use crate::http::request::Req;
use crate::http::response::StreamResp;
use crate::http::router::Router;

pub fn routes(r: &mut Router) {
    r.streaming(Method::GET, "/_matrix/federation/v1/media/download/{}", download_fed);
    r.streaming(Method::GET, "/_matrix/federation/v1/media/thumbnail/{}", thumbnail_fed);
}

async fn download_fed(app: Arc<App>, req: Req, _body: Incoming) -> Result<StreamResp> {
    app.auth_server(&req).await?;
    let (ours, media_id) = (app.config.server_name.to_string(), req.param(0).to_string());
    // No file name override over federation: the path has only the media ID.
    let mut req = req;
    req.params.truncate(1);
    let inner = download(app, &req, &ours, &media_id, true).await?;
    multipart(inner)
}

async fn thumbnail_fed(app: Arc<App>, req: Req, _body: Incoming) -> Result<StreamResp> {
    app.auth_server(&req).await?;
    let (ours, media_id) = (app.config.server_name.to_string(), req.param(0).to_string());
    let inner = thumbnail(app, &req, &ours, &media_id, true).await?;
    multipart(inner)
}

/// Wrap a media response as `multipart/mixed`: `{}` as the JSON part, then the media
/// with its type and disposition.
fn multipart(inner: StreamResp) -> Result<StreamResp> {
    let boundary = crate::users::random_string(32);
    let (parts, body) = inner.into_parts();
    let header = |name: header::HeaderName| {
        parts.headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or("").to_string()
    };
    let head = format!(
        "--{boundary}\r\nContent-Type: application/json\r\n\r\n{{}}\r\n--{boundary}\r\n\
         Content-Type: {}\r\nContent-Disposition: {}\r\n\r\n",
        header(header::CONTENT_TYPE),
        header(header::CONTENT_DISPOSITION)
    );
    let tail = format!("\r\n--{boundary}--\r\n");
    let total = header(header::CONTENT_LENGTH)
        .parse::<u64>()
        .ok()
        .map(|n| n + head.len() as u64 + tail.len() as u64);
    let frames = futures_util::stream::once(async move { Ok(Frame::data(Bytes::from(head))) })
        .chain(BodyStream::new(body))
        .chain(futures_util::stream::once(async move { Ok(Frame::data(Bytes::from(tail))) }));
    let mut r = http::Response::new(StreamBody::new(frames).boxed_unsync());
    let h = r.headers_mut();
    let ct = format!("multipart/mixed; boundary={boundary}");
    h.insert(header::CONTENT_TYPE, HeaderValue::from_str(&ct).map_err(Error::internal)?);
    if let Some(n) = total {
        h.insert(header::CONTENT_LENGTH, HeaderValue::from(n));
    }
    Ok(r)
}
