-- End-to-end encryption plumbing: device keys, one-time and fallback keys, cross-signing
-- keys and signatures, device-list changes, to-device messages and server-side key
-- backups. The server stores what clients upload and hands it back; it never looks inside
-- encrypted payloads.
--
-- Everything that belongs to one device references devices(nid) ON DELETE CASCADE, so
-- logging a device out (or deleting it) removes its keys and its undelivered messages.

-- A device's identity keys, as uploaded (JSON object, `unsigned` added on the way out).
CREATE TABLE e2e_device_keys (
    device_nid     INTEGER PRIMARY KEY REFERENCES devices(nid) ON DELETE CASCADE,
    key_json       TEXT NOT NULL,
    added_ts       INTEGER NOT NULL
);

-- One-time keys. `nid` grows with every upload, so claims hand out the oldest key first
-- (keys of one upload are equivalent; they go in key-ID order).
CREATE TABLE e2e_one_time_keys (
    nid            INTEGER PRIMARY KEY,
    device_nid     INTEGER NOT NULL REFERENCES devices(nid) ON DELETE CASCADE,
    algorithm      TEXT NOT NULL,
    key_id         TEXT NOT NULL,
    key_json       TEXT NOT NULL,            -- a JSON string or key object
    UNIQUE (device_nid, algorithm, key_id)
);
-- (device_nid, algorithm, rowid): counts per algorithm and "oldest first" claims.
CREATE INDEX e2e_one_time_keys_claim ON e2e_one_time_keys(device_nid, algorithm);

-- At most one fallback key per device and algorithm; handed out when the one-time keys run
-- out, never deleted by a claim, only marked used.
CREATE TABLE e2e_fallback_keys (
    device_nid     INTEGER NOT NULL REFERENCES devices(nid) ON DELETE CASCADE,
    algorithm      TEXT NOT NULL,
    key_id         TEXT NOT NULL,
    key_json       TEXT NOT NULL,
    used           INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (device_nid, algorithm)
) WITHOUT ROWID;

-- Cross-signing keys: 'master', 'self_signing', 'user_signing', as uploaded.
-- `public_key` is the unpadded base64 key (also the name part of its key ID).
CREATE TABLE e2e_cross_signing_keys (
    user_nid       INTEGER NOT NULL REFERENCES users(nid),
    key_type       TEXT NOT NULL,
    public_key     TEXT NOT NULL,
    key_json       TEXT NOT NULL,
    PRIMARY KEY (user_nid, key_type)
) WITHOUT ROWID;

-- Signatures added later with /keys/signatures/upload, kept beside the object they sign so
-- that the object stays byte-for-byte what its owner uploaded.
-- A device's keys signed by its owner's self-signing key: visible to everyone.
CREATE TABLE e2e_device_signatures (
    device_nid     INTEGER NOT NULL REFERENCES devices(nid) ON DELETE CASCADE,
    signer_key_id  TEXT NOT NULL,            -- ed25519:<self-signing public key>
    signature      TEXT NOT NULL,
    PRIMARY KEY (device_nid, signer_key_id)
) WITHOUT ROWID;
-- A cross-signing key signed by someone: its owner's devices (on the master key), or
-- another user's user-signing key. Shown only to the signer, as in Synapse.
CREATE TABLE e2e_key_signatures (
    target_user_nid INTEGER NOT NULL REFERENCES users(nid),
    target_key     TEXT NOT NULL,            -- the signed key's public_key
    signer_user_id TEXT NOT NULL,
    signer_key_id  TEXT NOT NULL,
    signature      TEXT NOT NULL,
    PRIMARY KEY (target_user_nid, target_key, signer_user_id, signer_key_id)
) WITHOUT ROWID;

-- The `device_lists` stream: one row per change of a user's devices or cross-signing
-- keys. `observer` NULL: everyone sharing a room with `user_id` (and the user) should
-- refetch their keys; otherwise only `observer` should (their own signatures of others).
-- `user_id` is text so remote users' changes can land here once federation exists.
CREATE TABLE device_list_changes (
    stream_pos     INTEGER NOT NULL,
    user_id        TEXT NOT NULL,
    observer       TEXT,
    PRIMARY KEY (stream_pos, user_id)
) WITHOUT ROWID;

-- Send-to-device messages waiting for their device: the `to_device` stream. A message is
-- deleted once the device syncs with a token past it.
CREATE TABLE to_device_messages (
    nid            INTEGER PRIMARY KEY,
    device_nid     INTEGER NOT NULL REFERENCES devices(nid) ON DELETE CASCADE,
    stream_pos     INTEGER NOT NULL,
    sender         TEXT NOT NULL,
    event_type     TEXT NOT NULL,
    content        TEXT NOT NULL
);
CREATE INDEX to_device_messages_inbox ON to_device_messages(device_nid, stream_pos);

-- Transaction IDs of PUT /sendToDevice, per sending device and event type (the request
-- path), so a retried request is not delivered twice.
CREATE TABLE to_device_txns (
    device_nid     INTEGER NOT NULL REFERENCES devices(nid) ON DELETE CASCADE,
    event_type     TEXT NOT NULL,
    txn_id         TEXT NOT NULL,
    added_ts       INTEGER NOT NULL,
    PRIMARY KEY (device_nid, event_type, txn_id)
) WITHOUT ROWID;

-- Server-side key backups. Versions count up per user and are never reused; a deleted
-- version keeps its row (deleting it again succeeds) but loses its keys.
CREATE TABLE room_key_backup_versions (
    user_nid       INTEGER NOT NULL REFERENCES users(nid),
    version        INTEGER NOT NULL,
    algorithm      TEXT NOT NULL,
    auth_data      TEXT NOT NULL,
    etag           INTEGER NOT NULL DEFAULT 0,
    deleted        INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (user_nid, version)
) WITHOUT ROWID;

CREATE TABLE room_key_backup_keys (
    user_nid       INTEGER NOT NULL,
    version        INTEGER NOT NULL,
    room_id        TEXT NOT NULL,
    session_id     TEXT NOT NULL,
    first_message_index INTEGER NOT NULL,
    forwarded_count INTEGER NOT NULL,
    is_verified    INTEGER NOT NULL,
    session_data   TEXT NOT NULL,
    PRIMARY KEY (user_nid, version, room_id, session_id),
    FOREIGN KEY (user_nid, version) REFERENCES room_key_backup_versions(user_nid, version)
) WITHOUT ROWID;
