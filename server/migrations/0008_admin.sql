-- State behind the admin API (`/_synapse/admin/`): user types and erasure, registration
-- tokens, per-user rate-limit overrides, blocked rooms, room deletions and the rooms
-- server notices are sent to.

-- NULL (a normal user), 'bot' or 'support', as in Synapse.
ALTER TABLE users ADD COLUMN user_type TEXT;
-- Deactivated with `erase: true`.
ALTER TABLE users ADD COLUMN erased INTEGER NOT NULL DEFAULT 0;

-- Tokens that allow registration when `registration_requires_token` is on. `pending`
-- counts registrations that have passed the token stage but not finished; a token is
-- usable while pending + completed < uses_allowed (NULL: unlimited) and it has not expired.
CREATE TABLE registration_tokens (
    token          TEXT PRIMARY KEY,
    uses_allowed   INTEGER,
    pending        INTEGER NOT NULL DEFAULT 0,
    completed      INTEGER NOT NULL DEFAULT 0,
    expiry_time    INTEGER                       -- ms since the epoch; NULL: never
) WITHOUT ROWID;

-- `/_synapse/admin/v1/users/{userId}/override_ratelimit`: 0 and 0 mean "not limited".
CREATE TABLE ratelimit_overrides (
    user_nid             INTEGER PRIMARY KEY REFERENCES users(nid),
    messages_per_second  INTEGER NOT NULL,
    burst_count          INTEGER NOT NULL
);

-- Rooms nobody on this server may join or be invited to. Kept when a room is purged, so
-- that it cannot come back.
CREATE TABLE blocked_rooms (
    room_id        TEXT PRIMARY KEY,
    user_id        TEXT NOT NULL,                -- the admin who blocked it
    ts             INTEGER NOT NULL
) WITHOUT ROWID;

-- Room deletions started with `DELETE /_synapse/admin/v2/rooms/{roomId}`, for the
-- delete_status endpoints. `result` is the shutdown report (kicked users, aliases) as JSON.
CREATE TABLE room_deletions (
    delete_id      TEXT PRIMARY KEY,
    room_id        TEXT NOT NULL,
    status         TEXT NOT NULL,                -- scheduled, active, complete, failed
    result         TEXT NOT NULL,
    error          TEXT,
    created_ts     INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX room_deletions_room ON room_deletions(room_id, created_ts);

-- The room each user receives server notices in (created on the first notice).
CREATE TABLE server_notice_rooms (
    user_nid       INTEGER PRIMARY KEY REFERENCES users(nid),
    room_id        TEXT NOT NULL
);
