-- Application services: what is owed to each one, in order, and the transaction in flight.

-- One row per item owed to an appservice, in the order it must be delivered: a timeline
-- event (by nid), or as JSON an ephemeral event (MSC2409: typing, receipts) or a
-- to-device message (MSC4203), told apart by `to_device`.
CREATE TABLE appservice_queue (
    seq            INTEGER PRIMARY KEY AUTOINCREMENT,
    as_id          TEXT NOT NULL,
    event_nid      INTEGER,
    ephemeral      TEXT,
    to_device      INTEGER NOT NULL DEFAULT 0,
    CHECK ((event_nid IS NULL) <> (ephemeral IS NULL))
);
CREATE INDEX appservice_queue_as ON appservice_queue(as_id, seq);

-- The last transaction ID used per appservice; `inflight_upto` (when set) is the last
-- queue seq that transaction carries, so a retry resends exactly the same items.
CREATE TABLE appservice_txns (
    as_id          TEXT PRIMARY KEY,
    last_txn_id    INTEGER NOT NULL,
    inflight_upto  INTEGER
) WITHOUT ROWID;

-- Rooms an appservice published in its own room directory list (per third-party network).
CREATE TABLE appservice_room_list (
    as_id          TEXT NOT NULL,
    network_id     TEXT NOT NULL,
    room_id        TEXT NOT NULL,
    PRIMARY KEY (as_id, network_id, room_id)
) WITHOUT ROWID;
