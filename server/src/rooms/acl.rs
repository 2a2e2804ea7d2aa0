//! Server ACLs (`m.room.server_acl`): which servers may take part in a room. Checked on
//! every inbound federation request about the room and on every outbound send.

use ruma::ServerName;
use ruma::events::room::server_acl::RoomServerAclEventContent;
use rusqlite::Connection;
use serde_json::Value;

use crate::error::Result;
use crate::store::{events, state};

/// Whether an ACL's content lets `server` in. No ACL (or an unreadable one) allows all.
pub fn allows(content: Option<&Value>, server: &str) -> bool {
    let Some(c) = content else { return true };
    let Ok(acl) = serde_json::from_value::<RoomServerAclEventContent>(c.clone()) else {
        return true;
    };
    match ServerName::parse(server) {
        Ok(name) => acl.is_allowed(&name),
        Err(_) => false,
    }
}

/// The content of a room's current ACL, if it has one.
pub fn current(conn: &Connection, room_nid: i64) -> Result<Option<Value>> {
    let Some(nid) = state::current_lookup(conn, room_nid, "m.room.server_acl", "")? else {
        return Ok(None);
    };
    Ok(events::by_nid(conn, nid)?
        .and_then(|e| serde_json::from_str::<Value>(&e.json).ok())
        .map(|v| v["content"].clone()))
}

/// Whether the room's current ACL lets `server` in.
pub fn room_allows(conn: &Connection, room_nid: i64, server: &str) -> Result<bool> {
    Ok(allows(current(conn, room_nid)?.as_ref(), server))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn globs_deny_and_ip_literals() {
        let acl = json!({"allow": ["*"], "deny": ["evil.example", "*.bad.example"], "allow_ip_literals": false});
        assert!(allows(Some(&acl), "good.example"));
        assert!(!allows(Some(&acl), "evil.example"));
        assert!(!allows(Some(&acl), "x.bad.example"));
        assert!(!allows(Some(&acl), "127.0.0.1"));
        assert!(allows(None, "anything.example"));
        let only = json!({"allow": ["ok.example"]});
        assert!(allows(Some(&only), "ok.example"));
        assert!(!allows(Some(&only), "other.example"));
    }
}
