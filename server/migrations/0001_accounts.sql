-- Accounts, devices, access tokens, profiles, account data (push rules included, as the
-- global `m.push_rules` type) and filters.
-- Tables join on integer surrogate keys; text identifiers appear once.

CREATE TABLE users (
    nid            INTEGER PRIMARY KEY,
    user_id        TEXT NOT NULL UNIQUE,          -- full @localpart:server
    password_hash  TEXT,                          -- argon2id PHC string; NULL: no password login
    is_admin       INTEGER NOT NULL DEFAULT 0,
    is_guest       INTEGER NOT NULL DEFAULT 0,
    deactivated    INTEGER NOT NULL DEFAULT 0,
    displayname    TEXT,
    avatar_url     TEXT,
    created_ts     INTEGER NOT NULL
);

CREATE TABLE devices (
    nid            INTEGER PRIMARY KEY,
    user_nid       INTEGER NOT NULL REFERENCES users(nid),
    device_id      TEXT NOT NULL,
    display_name   TEXT,
    last_seen_ts   INTEGER,
    last_seen_ip   TEXT,
    created_ts     INTEGER NOT NULL,
    UNIQUE (user_nid, device_id)
);

-- Only a SHA-256 of each token is stored: a leaked database does not leak sessions.
CREATE TABLE access_tokens (
    token_hash     BLOB PRIMARY KEY,
    device_nid     INTEGER NOT NULL REFERENCES devices(nid) ON DELETE CASCADE,
    created_ts     INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX access_tokens_device ON access_tokens(device_nid);

-- Global account data has room_id ''; per-room account data names its room.
-- stream_pos orders changes for /sync.
CREATE TABLE account_data (
    user_nid       INTEGER NOT NULL REFERENCES users(nid),
    room_id        TEXT NOT NULL,
    data_type      TEXT NOT NULL,
    content        TEXT NOT NULL,
    stream_pos     INTEGER NOT NULL,
    PRIMARY KEY (user_nid, room_id, data_type)
) WITHOUT ROWID;
CREATE INDEX account_data_stream ON account_data(user_nid, stream_pos);

CREATE TABLE filters (
    user_nid       INTEGER NOT NULL REFERENCES users(nid),
    filter_id      INTEGER NOT NULL,
    filter_json    TEXT NOT NULL,
    PRIMARY KEY (user_nid, filter_id)
) WITHOUT ROWID;

-- One row per stream: the last position handed out.
CREATE TABLE streams (
    name           TEXT PRIMARY KEY,
    position       INTEGER NOT NULL
) WITHOUT ROWID;
INSERT INTO streams (name, position) VALUES ('account_data', 0);
