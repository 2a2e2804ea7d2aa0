//! Listeners (plain and TLS, HTTP/1.1 and HTTP/2), the per-request pipeline (body limit,
//! CORS, client address, routing, one log line) and graceful shutdown.
//!
//! Routing comes before the body is read: a buffered route gets the body read whole
//! within `max_json_body`; a streaming route (media uploads) reads it itself.

pub mod auth;
pub mod request;
pub mod response;
pub mod router;
mod tls;

use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Method, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::app::App;
use crate::config::Listener;
use crate::error::{Error, Result};
use request::Req;
use response::StreamResp;
use router::{Endpoint, Match};

/// How long shutdown waits for in-flight requests before closing connections anyway.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

pub struct Bound {
    pub addrs: Vec<SocketAddr>,
    pub tasks: JoinSet<()>,
}

/// Bind every configured listener; connections are served until `shutdown` turns true.
pub async fn bind_all(app: &Arc<App>, shutdown: watch::Receiver<bool>) -> Result<Bound> {
    let mut tasks = JoinSet::new();
    let mut addrs = Vec::new();
    for l in &app.config.listeners {
        let tls = if l.tls { Some(tls::acceptor(&app.config)?) } else { None };
        let mut bound_any = false;
        let mut last_err = None;
        for ip in &l.bind_addresses {
            let addr = SocketAddr::new(*ip, l.port);
            match TcpListener::bind(addr).await {
                Ok(listener) => {
                    let local = listener.local_addr().map_err(Error::internal)?;
                    tracing::info!(addr = %local, tls = l.tls, "listening");
                    addrs.push(local);
                    bound_any = true;
                    tasks.spawn(accept_loop(
                        app.clone(),
                        listener,
                        l.clone(),
                        tls.clone(),
                        shutdown.clone(),
                    ));
                }
                // `::` is dual-stack on Linux, so the `0.0.0.0` that follows it in Synapse's
                // default list finds the port taken; that is expected.
                Err(e) => last_err = Some(format!("{addr}: {e}")),
            }
        }
        if !bound_any {
            return Err(Error::internal(format!(
                "cannot listen on port {}: {}",
                l.port,
                last_err.unwrap_or_default()
            )));
        }
    }
    Ok(Bound { addrs, tasks })
}

async fn accept_loop(
    app: Arc<App>,
    listener: TcpListener,
    cfg: Listener,
    tls: Option<tokio_rustls::TlsAcceptor>,
    mut shutdown: watch::Receiver<bool>,
) {
    let graceful = GracefulShutdown::new();
    let cfg = Arc::new(cfg);
    loop {
        let accepted = tokio::select! {
            r = listener.accept() => r,
            _ = shutdown.wait_for(|s| *s) => break,
        };
        let (stream, peer) = match accepted {
            Ok(x) => x,
            Err(e) => {
                // Out of file descriptors and the like: back off instead of spinning.
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let app = app.clone();
        let cfg = cfg.clone();
        let svc = hyper::service::service_fn(move |req| {
            let app = app.clone();
            let cfg = cfg.clone();
            async move { Ok::<_, Infallible>(handle(app, &cfg, peer, req).await) }
        });
        let builder = auto::Builder::new(TokioExecutor::new());
        match &tls {
            None => {
                let conn = builder.serve_connection(TokioIo::new(stream), svc).into_owned();
                let fut = graceful.watch(conn);
                tokio::spawn(async move {
                    let _ = fut.await;
                });
            }
            Some(acceptor) => {
                let acceptor = acceptor.clone();
                let watcher = graceful.watcher();
                tokio::spawn(async move {
                    let handshake =
                        tokio::time::timeout(Duration::from_secs(10), acceptor.accept(stream));
                    let stream = match handshake.await {
                        Ok(Ok(s)) => s,
                        Ok(Err(e)) => {
                            tracing::debug!(%peer, error = %e, "TLS handshake failed");
                            return;
                        }
                        Err(_) => return,
                    };
                    let conn = builder.serve_connection(TokioIo::new(stream), svc).into_owned();
                    let _ = watcher.watch(conn).await;
                });
            }
        }
    }
    drop(listener);
    if tokio::time::timeout(SHUTDOWN_GRACE, graceful.shutdown()).await.is_err() {
        tracing::warn!("in-flight requests did not finish within the grace period");
    }
}

/// The whole per-request pipeline. Never fails: errors become Matrix error responses.
async fn handle(
    app: Arc<App>,
    listener: &Listener,
    peer: SocketAddr,
    req: http::Request<Incoming>,
) -> StreamResp {
    let started = Instant::now();
    let client_ip = client_ip(listener, peer.ip(), req.headers());
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    if listener.metrics {
        return metrics_response(&app, &method, &path);
    }
    let route = app.router.label(&method, &path);
    let mut resp = match dispatch(app.clone(), client_ip, req).await {
        Ok(r) => r,
        Err(e) => {
            if let Error::Internal(cause) = &e {
                tracing::error!(%method, %path, %cause, "request failed");
            }
            response::streamed(response::from_error(&e))
        }
    };
    response::add_cors(&mut resp);
    let elapsed = started.elapsed().as_secs_f64();
    app.metrics.record(method.as_str(), route, resp.status().as_u16(), elapsed);
    tracing::info!(
        target: "glia::access",
        "{client_ip} {method} {path} {} {:.1}ms",
        resp.status().as_u16(),
        elapsed * 1000.0
    );
    resp
}

/// A `type: metrics` listener serves the Prometheus exposition and nothing else.
fn metrics_response(app: &App, method: &Method, path: &str) -> StreamResp {
    if *method == Method::GET && (path == "/_synapse/metrics" || path == "/metrics") {
        let text = app.metrics.render(&app.config.database.path);
        let mut r = http::Response::new(Full::new(Bytes::from(text)));
        r.headers_mut().insert(
            http::header::CONTENT_TYPE,
            http::HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
        );
        return response::streamed(r);
    }
    response::streamed(response::from_error(&Error::Unrecognized("Unrecognized request".into())))
}

async fn dispatch(
    app: Arc<App>,
    client_ip: IpAddr,
    req: http::Request<Incoming>,
) -> Result<StreamResp> {
    let (parts, body) = req.into_parts();
    if parts.method == Method::OPTIONS {
        // CORS preflight: any path, no authentication, headers added by the caller.
        let mut r = response::empty_object();
        *r.status_mut() = StatusCode::NO_CONTENT;
        *r.body_mut() = Full::new(Bytes::new());
        return Ok(response::streamed(r));
    }
    let (endpoint, params) = match app.router.find(&parts.method, parts.uri.path()) {
        Match::Found(e, p) => (e, p),
        Match::WrongMethod => {
            return Err(Error::MethodNotAllowed("Unrecognized request".into()));
        }
        Match::NotFound => return Err(Error::Unrecognized("Unrecognized request".into())),
    };
    let query = parts
        .uri
        .query()
        .map(|q| {
            q.split('&')
                .filter(|p| !p.is_empty())
                .map(|p| {
                    let (k, v) = p.split_once('=').unwrap_or((p, ""));
                    (form_decode(k), form_decode(v))
                })
                .collect()
        })
        .unwrap_or_default();
    let mut req = Req {
        method: parts.method,
        path: parts.uri.path().to_string(),
        uri: parts.uri.path_and_query().map(|p| p.as_str().to_string()).unwrap_or_default(),
        params,
        query,
        headers: parts.headers,
        body: Bytes::new(),
        client_ip,
    };
    let handler = match endpoint {
        Endpoint::Streaming(handler) => return handler(app, req, body).await,
        Endpoint::Buffered(handler) => handler,
    };
    let limit = app.config.max_json_body;
    let too_large = || Error::TooLarge(format!("Request body exceeds {limit} bytes"));
    if let Some(len) = req.headers.get(http::header::CONTENT_LENGTH)
        && len.to_str().ok().and_then(|s| s.parse::<u64>().ok()).is_some_and(|n| n > limit as u64)
    {
        return Err(too_large());
    }
    let body = Limited::new(body, limit).collect().await.map_err(|e| {
        if e.downcast_ref::<http_body_util::LengthLimitError>().is_some() {
            too_large()
        } else {
            Error::BadJson(format!("could not read request body: {e}"))
        }
    })?;
    req.body = body.to_bytes();
    handler(app, req).await.map(response::streamed)
}

fn form_decode(s: &str) -> String {
    let s = s.replace('+', " ");
    percent_encoding::percent_decode_str(&s).decode_utf8_lossy().into_owned()
}

/// Behind a reverse proxy (`x_forwarded: true`) the client is the left-most address of
/// `X-Forwarded-For`; elsewhere the header is ignored, since any client could forge it.
fn client_ip(listener: &Listener, peer: IpAddr, headers: &http::HeaderMap) -> IpAddr {
    if listener.x_forwarded
        && let Some(ip) = headers
            .get("x-forwarded-for")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(',').next())
            .and_then(|v| v.trim().parse::<IpAddr>().ok())
    {
        return ip;
    }
    peer
}
