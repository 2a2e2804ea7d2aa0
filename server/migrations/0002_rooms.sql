-- Rooms and events: the DAG, state snapshots as deduplicated deltas, current state,
-- memberships, transaction IDs and aliases.

CREATE TABLE rooms (
    nid            INTEGER PRIMARY KEY,
    room_id        TEXT NOT NULL UNIQUE,
    room_version   TEXT NOT NULL,
    creator        TEXT NOT NULL,
    is_public      INTEGER NOT NULL DEFAULT 0,   -- published in the room directory
    created_ts     INTEGER NOT NULL
);

-- Every event Glia holds. `json` is the full signed PDU (its redacted form once redacted).
-- `stream_pos` orders the local timeline for /sync; outliers (events known only for auth
-- or state) have none. Rejected and soft-failed events are kept and marked.
CREATE TABLE events (
    nid              INTEGER PRIMARY KEY,
    event_id         TEXT NOT NULL UNIQUE,
    room_nid         INTEGER NOT NULL REFERENCES rooms(nid),
    event_type       TEXT NOT NULL,
    state_key        TEXT,
    sender           TEXT NOT NULL,
    depth            INTEGER NOT NULL,
    origin_server_ts INTEGER NOT NULL,
    stream_pos       INTEGER UNIQUE,
    json             TEXT NOT NULL,
    state_before     INTEGER,                    -- state group before the event
    state_after      INTEGER,                    -- after it (the same for non-state events)
    rejected         TEXT,                       -- why, if rejected
    soft_failed      INTEGER NOT NULL DEFAULT 0,
    redacted_by      TEXT,
    replaces_nid     INTEGER                     -- the state event this one replaced
);
CREATE INDEX events_room_stream ON events(room_nid, stream_pos);
CREATE INDEX events_room_depth ON events(room_nid, depth);

CREATE TABLE event_edges (
    event_nid      INTEGER NOT NULL REFERENCES events(nid),
    prev_event_id  TEXT NOT NULL,
    PRIMARY KEY (event_nid, prev_event_id)
) WITHOUT ROWID;
CREATE INDEX event_edges_prev ON event_edges(prev_event_id);

-- The DAG's tips per room: the prev_events of the next local event.
CREATE TABLE forward_extremities (
    room_nid       INTEGER NOT NULL REFERENCES rooms(nid),
    event_nid      INTEGER NOT NULL REFERENCES events(nid),
    PRIMARY KEY (room_nid, event_nid)
) WITHOUT ROWID;

-- State snapshots: a group is its parent's state plus its own entries (a NULL event_nid
-- removes a key). Chains are cut by a full snapshot every so often (`depth` = chain length).
CREATE TABLE state_groups (
    id             INTEGER PRIMARY KEY,
    room_nid       INTEGER NOT NULL REFERENCES rooms(nid),
    parent         INTEGER REFERENCES state_groups(id),
    depth          INTEGER NOT NULL
);
CREATE TABLE state_group_entries (
    group_id       INTEGER NOT NULL REFERENCES state_groups(id),
    event_type     TEXT NOT NULL,
    state_key      TEXT NOT NULL,
    event_nid      INTEGER,
    PRIMARY KEY (group_id, event_type, state_key)
) WITHOUT ROWID;

CREATE TABLE current_state (
    room_nid       INTEGER NOT NULL REFERENCES rooms(nid),
    event_type     TEXT NOT NULL,
    state_key      TEXT NOT NULL,
    event_nid      INTEGER NOT NULL REFERENCES events(nid),
    PRIMARY KEY (room_nid, event_type, state_key)
) WITHOUT ROWID;

-- Current membership per (room, user), local and remote users alike; kept with
-- current_state so "which rooms is this user in" is one index lookup.
CREATE TABLE memberships (
    room_nid       INTEGER NOT NULL REFERENCES rooms(nid),
    user_id        TEXT NOT NULL,
    membership     TEXT NOT NULL,
    event_nid      INTEGER NOT NULL REFERENCES events(nid),
    stream_pos     INTEGER NOT NULL,
    forgotten      INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (room_nid, user_id)
) WITHOUT ROWID;
CREATE INDEX memberships_user ON memberships(user_id, membership);

-- Transaction IDs make sends idempotent per device.
CREATE TABLE txn_ids (
    user_nid       INTEGER NOT NULL REFERENCES users(nid),
    device_id      TEXT NOT NULL,
    txn_id         TEXT NOT NULL,
    event_id       TEXT NOT NULL,
    PRIMARY KEY (user_nid, device_id, txn_id)
) WITHOUT ROWID;
CREATE INDEX txn_ids_event ON txn_ids(event_id);

CREATE TABLE room_aliases (
    alias          TEXT PRIMARY KEY,
    room_nid       INTEGER NOT NULL REFERENCES rooms(nid),
    creator        TEXT NOT NULL
);
CREATE INDEX room_aliases_room ON room_aliases(room_nid);

INSERT INTO streams (name, position) VALUES
    ('events', 0), ('to_device', 0), ('device_lists', 0), ('receipts', 0), ('presence', 0);
