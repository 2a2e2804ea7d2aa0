//! Path + method -> handler. Routes are patterns of literal segments, captures and
//! alternatives (for `r0` / `v3` aliases). A path that matches no pattern is 404
//! `M_UNRECOGNIZED`; one that matches with another method is 405 `M_UNRECOGNIZED`.
//!
//! Most handlers get the request body read whole (within the JSON size limit) and answer
//! with a body in memory. A *streaming* handler (`Router::streaming`, used by the media
//! repository) gets the body unread as hyper's `Incoming` and may answer with a streamed
//! body: it enforces its own size limit.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use http::Method;
use hyper::body::Incoming;

use super::request::Req;
use super::response::{Resp, StreamResp};
use crate::app::App;
use crate::error::Result;

pub type BoxFut = Pin<Box<dyn Future<Output = Result<Resp>> + Send>>;
pub type Handler = Arc<dyn Fn(Arc<App>, Req) -> BoxFut + Send + Sync>;
pub type StreamFut = Pin<Box<dyn Future<Output = Result<StreamResp>> + Send>>;
/// Gets the request with an empty `body` and the body itself, unread.
pub type StreamHandler = Arc<dyn Fn(Arc<App>, Req, Incoming) -> StreamFut + Send + Sync>;

/// What a route runs.
#[derive(Clone)]
pub enum Endpoint {
    /// The body is read whole (size-limited) into `Req::body` before the handler runs.
    Buffered(Handler),
    /// The handler reads the body itself and may stream its response.
    Streaming(StreamHandler),
}

#[derive(Debug, Clone)]
enum Seg {
    Lit(&'static str),
    OneOf(&'static [&'static str]),
    Capture,
    /// Captures the rest of the path (for push rule IDs that may contain slashes).
    Rest,
}

struct Route {
    method: Method,
    pattern: &'static str,
    segs: Vec<Seg>,
    endpoint: Endpoint,
}

#[derive(Default)]
pub struct Router {
    routes: Vec<Route>,
}

pub enum Match {
    Found(Endpoint, Vec<String>),
    WrongMethod,
    NotFound,
}

/// Client-server API versions that serve the same handlers.
pub const CLIENT_VERSIONS: &[&str] = &["r0", "v3"];

impl Router {
    /// Add a route. Pattern segments: `{}` captures one segment, `{*}` the rest,
    /// `{r0|v3}` any of the listed alternatives.
    pub fn add<F, Fut>(&mut self, method: Method, pattern: &'static str, f: F)
    where
        F: Fn(Arc<App>, Req) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Resp>> + Send + 'static,
    {
        let handler: Handler = Arc::new(move |app, req| Box::pin(f(app, req)));
        self.routes.push(Route {
            method,
            pattern,
            segs: parse(pattern),
            endpoint: Endpoint::Buffered(handler),
        });
    }

    /// Add a streaming route (same patterns as `add`): the handler reads the body itself.
    pub fn streaming<F, Fut>(&mut self, method: Method, pattern: &'static str, f: F)
    where
        F: Fn(Arc<App>, Req, Incoming) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<StreamResp>> + Send + 'static,
    {
        let handler: StreamHandler = Arc::new(move |app, req, body| Box::pin(f(app, req, body)));
        self.routes.push(Route {
            method,
            pattern,
            segs: parse(pattern),
            endpoint: Endpoint::Streaming(handler),
        });
    }

    pub fn get<F, Fut>(&mut self, p: &'static str, f: F)
    where
        F: Fn(Arc<App>, Req) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Resp>> + Send + 'static,
    {
        self.add(Method::GET, p, f)
    }
    pub fn post<F, Fut>(&mut self, p: &'static str, f: F)
    where
        F: Fn(Arc<App>, Req) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Resp>> + Send + 'static,
    {
        self.add(Method::POST, p, f)
    }
    pub fn put<F, Fut>(&mut self, p: &'static str, f: F)
    where
        F: Fn(Arc<App>, Req) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Resp>> + Send + 'static,
    {
        self.add(Method::PUT, p, f)
    }
    pub fn delete<F, Fut>(&mut self, p: &'static str, f: F)
    where
        F: Fn(Arc<App>, Req) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Resp>> + Send + 'static,
    {
        self.add(Method::DELETE, p, f)
    }

    /// `path` is the raw (still percent-encoded) request path.
    /// The pattern of the route serving a path, for metrics labels (bounded cardinality).
    pub fn label(&self, method: &Method, path: &str) -> &'static str {
        let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
        self.routes
            .iter()
            .find(|r| {
                (r.method == *method || (*method == Method::HEAD && r.method == Method::GET))
                    && match_segs(&r.segs, &parts).is_some()
            })
            .map(|r| r.pattern)
            .unwrap_or("unrecognized")
    }

    pub fn find(&self, method: &Method, path: &str) -> Match {
        let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
        let mut path_matched = false;
        for route in &self.routes {
            let Some(captures) = match_segs(&route.segs, &parts) else {
                continue;
            };
            // HEAD is answered by the GET handler (hyper drops the body).
            if route.method == *method || (*method == Method::HEAD && route.method == Method::GET) {
                return Match::Found(route.endpoint.clone(), captures);
            }
            path_matched = true;
        }
        if path_matched { Match::WrongMethod } else { Match::NotFound }
    }
}

fn parse(pattern: &'static str) -> Vec<Seg> {
    pattern
        .trim_start_matches('/')
        .split('/')
        .map(|s| match s {
            "{}" => Seg::Capture,
            "{*}" => Seg::Rest,
            "{v}" => Seg::OneOf(CLIENT_VERSIONS),
            other => Seg::Lit(other),
        })
        .collect()
}

fn decode(s: &str) -> String {
    percent_encoding::percent_decode_str(s).decode_utf8_lossy().into_owned()
}

fn match_segs(segs: &[Seg], parts: &[&str]) -> Option<Vec<String>> {
    let mut captures = Vec::new();
    for (i, seg) in segs.iter().enumerate() {
        match seg {
            Seg::Rest => {
                let rest = parts.get(i..)?;
                if rest.is_empty() || rest.iter().all(|p| p.is_empty()) {
                    return None;
                }
                captures.push(rest.iter().map(|p| decode(p)).collect::<Vec<_>>().join("/"));
                return Some(captures);
            }
            Seg::Lit(l) => {
                if parts.get(i)? != l {
                    return None;
                }
            }
            Seg::OneOf(alts) => {
                if !alts.contains(parts.get(i)?) {
                    return None;
                }
            }
            Seg::Capture => {
                let p = parts.get(i)?;
                if p.is_empty() {
                    return None;
                }
                captures.push(decode(p));
            }
        }
    }
    (parts.len() == segs.len()).then_some(captures)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn segs(p: &'static str) -> Vec<Seg> {
        let mut r = Router::default();
        r.get(p, |_, _| async { Ok(super::super::response::empty_object()) });
        r.routes.remove(0).segs
    }

    #[test]
    fn matching() {
        let s = segs("/_matrix/client/{v}/profile/{}/displayname");
        let parts: Vec<&str> =
            "_matrix/client/v3/profile/%40a%3Ab/displayname".split('/').collect();
        assert_eq!(match_segs(&s, &parts), Some(vec!["@a:b".to_string()]));
        let parts: Vec<&str> = "_matrix/client/v4/profile/x/displayname".split('/').collect();
        assert_eq!(match_segs(&s, &parts), None);
        let parts: Vec<&str> = "_matrix/client/r0/profile//displayname".split('/').collect();
        assert_eq!(match_segs(&s, &parts), None, "empty captures do not match");
        let s = segs("/a/{}/{*}");
        let parts: Vec<&str> = "a/b/c/d%2Fe".split('/').collect();
        assert_eq!(match_segs(&s, &parts), Some(vec!["b".into(), "c/d/e".into()]));
    }
}
