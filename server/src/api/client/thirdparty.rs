//! `/thirdparty/*`: the protocols appservices bridge, and lookups of third-party users and
//! locations, proxied to the appservices that declared the protocol.

use std::sync::Arc;
use std::time::{Duration, Instant};

use http::Method;
use serde_json::{Value, json};

use crate::app::App;
use crate::appservice::http::segment;
use crate::error::{Error, Result};
use crate::http::request::Req;
use crate::http::response::{Resp, ok};
use crate::http::router::Router;

const LOOKUP_TIMEOUT: Duration = Duration::from_secs(10);
/// Protocol metadata rarely changes; it is kept an hour, as Synapse does.
const META_TTL: Duration = Duration::from_secs(3600);

pub fn routes(r: &mut Router) {
    r.get("/_matrix/client/{v}/thirdparty/protocols", protocols);
    r.get("/_matrix/client/{v}/thirdparty/protocol/{}", protocol);
    r.get("/_matrix/client/{v}/thirdparty/location", |a, r| lookup(a, r, "location", false));
    r.get("/_matrix/client/{v}/thirdparty/location/{}", |a, r| lookup(a, r, "location", true));
    r.get("/_matrix/client/{v}/thirdparty/user", |a, r| lookup(a, r, "user", false));
    r.get("/_matrix/client/{v}/thirdparty/user/{}", |a, r| lookup(a, r, "user", true));
}

/// One protocol's metadata merged across the appservices declaring it: the first answer's
/// fields, with every appservice's `instances`. `None` if no appservice answered.
async fn metadata(app: &App, protocol: &str) -> Option<Value> {
    let mut merged: Option<Value> = None;
    for a in app.appservices.list.iter().filter(|a| a.reg.protocols.iter().any(|p| p == protocol)) {
        let Some(url) = a.reg.url.as_deref() else { continue };
        let key = (a.reg.id.clone(), protocol.to_string());
        let cached = app.appservices.protocol_cache.lock().ok().and_then(|c| {
            c.get(&key).filter(|(at, _)| at.elapsed() < META_TTL).map(|(_, v)| v.clone())
        });
        let mut meta = match cached {
            Some(v) => v,
            None => {
                let path = format!("/_matrix/app/v1/thirdparty/protocol/{}", segment(protocol));
                match app
                    .appservices
                    .client
                    .request(Method::GET, url, &path, &a.reg.hs_token, None, LOOKUP_TIMEOUT)
                    .await
                {
                    Ok(v) if v.is_object() => {
                        if let Ok(mut c) = app.appservices.protocol_cache.lock() {
                            c.insert(key, (Instant::now(), v.clone()));
                        }
                        v
                    }
                    _ => continue,
                }
            }
        };
        // Clients pass `instance_id` back as /publicRooms' `third_party_instance_id`.
        if let Some(list) = meta["instances"].as_array_mut() {
            for i in list {
                if let Some(n) = i["network_id"].as_str() {
                    i["instance_id"] = json!(format!("{}|{n}", a.reg.id));
                }
            }
        }
        match &mut merged {
            None => merged = Some(meta),
            Some(m) => {
                let more = meta["instances"].as_array().cloned().unwrap_or_default();
                if let Some(list) = m["instances"].as_array_mut() {
                    list.extend(more);
                } else {
                    m["instances"] = json!(more);
                }
            }
        }
    }
    merged
}

async fn protocols(app: Arc<App>, req: Req) -> Result<Resp> {
    app.auth(&req).await?;
    let mut names: Vec<String> =
        app.appservices.list.iter().flat_map(|a| a.reg.protocols.clone()).collect();
    names.sort();
    names.dedup();
    let mut out = serde_json::Map::new();
    for p in names {
        if let Some(m) = metadata(&app, &p).await {
            out.insert(p, m);
        }
    }
    Ok(ok(&Value::Object(out)))
}

async fn protocol(app: Arc<App>, req: Req) -> Result<Resp> {
    app.auth(&req).await?;
    let p = req.param(0).to_string();
    match metadata(&app, &p).await {
        Some(m) => Ok(ok(&m)),
        None => Err(Error::NotFound(format!("The protocol {p} is unknown"))),
    }
}

/// `GET /thirdparty/{kind}[/{protocol}]?fields...`: every answering appservice's results,
/// concatenated. Without a protocol, the query (`alias` or `userid`) goes to every one.
async fn lookup(app: Arc<App>, req: Req, kind: &'static str, with_protocol: bool) -> Result<Resp> {
    app.auth(&req).await?;
    let protocol = with_protocol.then(|| req.param(0).to_string());
    if let Some(p) = &protocol
        && !app.appservices.list.iter().any(|a| a.reg.protocols.contains(p))
    {
        return Err(Error::NotFound(format!("The protocol {p} is unknown")));
    }
    let query: Vec<String> = req
        .query
        .iter()
        .filter(|(k, _)| k != "access_token")
        .map(|(k, v)| format!("{}={}", segment(k), segment(v)))
        .collect();
    let qs = if query.is_empty() { String::new() } else { format!("?{}", query.join("&")) };
    let mut results = vec![];
    for a in app.appservices.list.iter() {
        let Some(url) = a.reg.url.as_deref() else { continue };
        let path = match &protocol {
            Some(p) if a.reg.protocols.contains(p) => {
                format!("/_matrix/app/v1/thirdparty/{kind}/{}{qs}", segment(p))
            }
            Some(_) => continue,
            None if a.reg.protocols.is_empty() => continue,
            None => format!("/_matrix/app/v1/thirdparty/{kind}{qs}"),
        };
        match app
            .appservices
            .client
            .request(Method::GET, url, &path, &a.reg.hs_token, None, LOOKUP_TIMEOUT)
            .await
        {
            Ok(Value::Array(items)) => results.extend(items),
            Ok(_) => {
                tracing::info!(appservice = %a.reg.id, %path, "third-party lookup: not a list")
            }
            Err(e) => tracing::info!(appservice = %a.reg.id, %path, "third-party lookup: {e}"),
        }
    }
    Ok(ok(&Value::Array(results)))
}
