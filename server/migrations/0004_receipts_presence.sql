-- Read receipts (public and private, threaded) and presence.

CREATE TABLE receipts (
    room_nid       INTEGER NOT NULL REFERENCES rooms(nid),
    user_id        TEXT NOT NULL,
    receipt_type   TEXT NOT NULL,               -- m.read or m.read.private
    thread_id      TEXT NOT NULL,               -- '' for unthreaded receipts
    event_id       TEXT NOT NULL,
    ts             INTEGER NOT NULL,
    stream_pos     INTEGER NOT NULL,
    PRIMARY KEY (room_nid, user_id, receipt_type, thread_id)
) WITHOUT ROWID;
CREATE INDEX receipts_stream ON receipts(room_nid, stream_pos);

CREATE TABLE presence (
    user_id          TEXT PRIMARY KEY,
    state            TEXT NOT NULL,             -- online, unavailable, offline
    status_msg       TEXT,
    last_active_ts   INTEGER NOT NULL,
    stream_pos       INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX presence_stream ON presence(stream_pos);
