-- Federation: what is queued for other servers, and the transactions they sent us.

-- PDUs and EDUs waiting to be sent to a destination, in order. A row is written in the
-- same transaction as the event it carries and deleted once the destination accepted it.
CREATE TABLE federation_outbox (
    id             INTEGER PRIMARY KEY,
    destination    TEXT NOT NULL,
    kind           TEXT NOT NULL,              -- 'pdu' or 'edu'
    body           TEXT NOT NULL
);
CREATE INDEX federation_outbox_dest ON federation_outbox(destination, id);

-- Transactions received, so a retried transaction is answered without running it again.
CREATE TABLE federation_inbound_txns (
    origin         TEXT NOT NULL,
    txn_id         TEXT NOT NULL,
    response       TEXT NOT NULL,
    received_ts    INTEGER NOT NULL,
    PRIMARY KEY (origin, txn_id)
) WITHOUT ROWID;
