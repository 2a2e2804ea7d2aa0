-- Federation queries that do not involve rooms.

-- Whole key responses (`/_matrix/key/v2/server` answers) as their server signed them, so
-- that Glia can act as a notary (`/_matrix/key/v2/query`) and serve them on, countersigned.
CREATE TABLE server_key_responses (
    server_name     TEXT PRIMARY KEY,
    json            TEXT NOT NULL,                -- the signed response, canonical JSON
    valid_until_ts  INTEGER NOT NULL,
    fetched_ts      INTEGER NOT NULL
) WITHOUT ROWID;

-- Other servers' media, fetched for local users and kept: the bytes are in the media
-- store under their SHA-256 like local uploads.
CREATE TABLE remote_media (
    origin         TEXT NOT NULL,
    media_id       TEXT NOT NULL,
    content_type   TEXT NOT NULL,
    upload_name    TEXT,
    length         INTEGER NOT NULL,
    sha256         TEXT NOT NULL,
    fetched_ts     INTEGER NOT NULL,
    PRIMARY KEY (origin, media_id)
) WITHOUT ROWID;
CREATE INDEX remote_media_sha256 ON remote_media(sha256);

-- Thumbnails made locally from cached remote media (as media_thumbnails for local media).
CREATE TABLE remote_media_thumbnails (
    origin         TEXT NOT NULL,
    media_id       TEXT NOT NULL,
    width          INTEGER NOT NULL,
    height         INTEGER NOT NULL,
    method         TEXT NOT NULL,
    content_type   TEXT NOT NULL,
    length         INTEGER NOT NULL,
    sha256         TEXT NOT NULL,
    actual_width   INTEGER NOT NULL,
    actual_height  INTEGER NOT NULL,
    created_ts     INTEGER NOT NULL,
    PRIMARY KEY (origin, media_id, width, height, method),
    FOREIGN KEY (origin, media_id) REFERENCES remote_media(origin, media_id)
) WITHOUT ROWID;
CREATE INDEX remote_media_thumbnails_sha256 ON remote_media_thumbnails(sha256);
