-- Other servers' signing keys, fetched from them (or a notary) and kept until they expire.
CREATE TABLE server_keys (
    server_name     TEXT NOT NULL,
    key_id          TEXT NOT NULL,
    key             TEXT NOT NULL,                -- unpadded base64 ed25519 public key
    valid_until_ts  INTEGER NOT NULL,             -- 0 for old_verify_keys (expired keys)
    fetched_ts      INTEGER NOT NULL,
    PRIMARY KEY (server_name, key_id)
) WITHOUT ROWID;
