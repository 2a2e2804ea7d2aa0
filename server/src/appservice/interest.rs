//! Which appservices an event concerns. As in Synapse, an appservice hears about an event
//! when its sender or (for membership) its target is in the appservice's user namespace,
//! when the room is in its room namespace, when one of the room's aliases is in its alias
//! namespace, or when a joined member of the room is one of its users.

use std::collections::HashSet;

use crate::app::App;
use crate::error::Result;
use crate::rooms::{PduRef, RoomHandle};
use crate::store::rooms as room_store;

use super::AppService;

/// For each event of a batch about to be persisted in `room` (whose state is the state
/// before the batch), the IDs of the appservices to enqueue it for.
pub async fn for_batch(app: &App, room: &RoomHandle, batch: &[PduRef]) -> Result<Vec<Vec<String>>> {
    let services = &app.appservices.list;
    if services.is_empty() || batch.is_empty() {
        return Ok(vec![vec![]; batch.len()]);
    }
    let mut aliases: Vec<String> = vec![];
    if services.iter().any(|a| !a.reg.aliases.is_empty()) {
        let nid = room.nid;
        aliases = app.db.read(move |c| room_store::aliases_of(c, nid)).await?;
        if let Some(c) = room.get("m.room.canonical_alias", "") {
            let content = c.content_value();
            aliases.extend(content["alias"].as_str().map(str::to_string));
            if let Some(alt) = content["alt_aliases"].as_array() {
                aliases.extend(alt.iter().filter_map(|a| a.as_str().map(str::to_string)));
            }
        }
    }
    let mut joined: HashSet<String> = room
        .state
        .iter()
        .filter(|((t, _), e)| t == "m.room.member" && e.content_ref()["membership"] == "join")
        .map(|((_, k), _)| k.clone())
        .collect();
    let mut out = vec![];
    for pdu in batch {
        if pdu.type_str() == "m.room.member"
            && let Some(k) = &pdu.state_key
        {
            // Members joining within the batch (room creation) count for later events.
            if pdu.content_ref()["membership"] == "join" {
                joined.insert(k.clone());
            }
        }
        let ids = services
            .iter()
            .filter(|a| a.reg.url.is_some() && concerns(a, room, pdu, &aliases, &joined))
            .map(|a| a.reg.id.clone())
            .collect();
        out.push(ids);
    }
    Ok(out)
}

fn concerns(
    a: &AppService,
    room: &RoomHandle,
    pdu: &PduRef,
    aliases: &[String],
    joined: &HashSet<String>,
) -> bool {
    a.owns_user(pdu.sender.as_str())
        || (pdu.type_str() == "m.room.member"
            && pdu.state_key.as_deref().is_some_and(|k| a.owns_user(k)))
        || a.owns_room(&room.room_id)
        || aliases.iter().any(|al| a.owns_alias(al))
        || joined.iter().any(|u| a.owns_user(u))
}

/// Appservices with `receive_ephemeral` that hear about a room's ephemeral events (typing,
/// receipts): those with a joined member or the room in their namespaces.
pub async fn ephemeral_for_room(app: &App, room_id: &str) -> Result<Vec<String>> {
    let wanting: Vec<_> = app
        .appservices
        .list
        .iter()
        .filter(|a| a.reg.receive_ephemeral && a.reg.url.is_some())
        .collect();
    if wanting.is_empty() {
        return Ok(vec![]);
    }
    let rid = room_id.to_string();
    let members: Vec<String> = app
        .db
        .read(move |c| match room_store::get(c, &rid)? {
            Some(r) => Ok(crate::store::events::members(c, r.nid, "join")?
                .into_iter()
                .map(|(u, _)| u)
                .collect()),
            None => Ok(vec![]),
        })
        .await?;
    Ok(wanting
        .into_iter()
        .filter(|a| a.owns_room(room_id) || members.iter().any(|u| a.owns_user(u)))
        .map(|a| a.reg.id.clone())
        .collect())
}
