-- Remote users' device lists, kept while a local user shares a room with them (Synapse's
-- device list cache): filled by the first key query, kept current by the owning server's
-- `m.device_list_update` / `m.signing_key_update` EDUs, answered from by later queries.

CREATE TABLE remote_device_lists (
    user_id           TEXT PRIMARY KEY,
    stream_id         INTEGER NOT NULL,          -- the owner's stream_id of the list held
    seen_ids          TEXT NOT NULL DEFAULT '[]',-- recent stream_ids applied (JSON), for prev_id
    stale             INTEGER NOT NULL DEFAULT 0,-- 1: refetch before answering from it
    master_key        TEXT,                      -- JSON as the owner signed it
    self_signing_key  TEXT,
    fetched_ts        INTEGER NOT NULL
) WITHOUT ROWID;

CREATE TABLE remote_devices (
    user_id       TEXT NOT NULL REFERENCES remote_device_lists(user_id) ON DELETE CASCADE,
    device_id     TEXT NOT NULL,
    keys          TEXT,                          -- device keys JSON, NULL when none uploaded
    display_name  TEXT,
    PRIMARY KEY (user_id, device_id)
) WITHOUT ROWID;
