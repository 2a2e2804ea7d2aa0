//! Filters: upload and download.

use std::sync::Arc;

use serde_json::{Value, json};

use crate::app::App;
use crate::error::{Error, Result, invalid_param, not_found};
use crate::filter::Filter;
use crate::http::request::Req;
use crate::http::response::Resp;
use crate::http::response::ok;
use crate::http::router::Router;
use crate::store::filters;

pub fn routes(r: &mut Router) {
    r.post("/_matrix/client/{v}/user/{}/filter", create);
    r.get("/_matrix/client/{v}/user/{}/filter/{}", get);
}

async fn create(app: Arc<App>, req: Req) -> Result<Resp> {
    let me = app.auth(&req).await?;
    super::require_self(&me, req.param(0), "create filters")?;
    let body = Value::Object(req.json_object(false)?);
    Filter::parse(&body)?;
    let text = serde_json::to_string(&body).map_err(Error::internal)?;
    let nid = me.user_nid;
    let id = app.db.write(move |c| filters::insert(c, nid, &text)).await?;
    Ok(ok(&json!({"filter_id": id.to_string()})))
}

async fn get(app: Arc<App>, req: Req) -> Result<Resp> {
    let me = app.auth(&req).await?;
    super::require_self(&me, req.param(0), "get filters")?;
    let id: i64 = req.param(1).parse().map_err(|_| invalid_param("Invalid filter ID"))?;
    let nid = me.user_nid;
    let text = app.db.read(move |c| filters::get(c, nid, id)).await?;
    let text = text.ok_or_else(|| not_found("No such filter"))?;
    let v: Value = serde_json::from_str(&text).map_err(Error::internal)?;
    Ok(ok(&v))
}
