-- Transaction IDs are scoped to the endpoint they were used on (room + send/redact), as
-- Synapse scopes them to the request path: the same txn ID in two rooms is two events.
CREATE TABLE txn_ids_scoped (
    user_nid       INTEGER NOT NULL REFERENCES users(nid),
    device_id      TEXT NOT NULL,
    scope          TEXT NOT NULL,
    txn_id         TEXT NOT NULL,
    event_id       TEXT NOT NULL,
    PRIMARY KEY (user_nid, device_id, scope, txn_id)
) WITHOUT ROWID;
INSERT INTO txn_ids_scoped (user_nid, device_id, scope, txn_id, event_id)
    SELECT user_nid, device_id, '', txn_id, event_id FROM txn_ids;
DROP TABLE txn_ids;
ALTER TABLE txn_ids_scoped RENAME TO txn_ids;
CREATE INDEX txn_ids_event ON txn_ids(event_id);
