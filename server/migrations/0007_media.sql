-- The media repository. Files live under `media_store_path`, named by the SHA-256 of
-- their bytes (so identical uploads share one file); these tables hold what the files
-- mean: who uploaded what under which media ID, and which thumbnails exist.

-- One row per local media ID. An asynchronous upload (`POST /_matrix/media/v1/create`)
-- starts as a row with NULL content_type/length/sha256 until its `PUT` arrives.
CREATE TABLE media (
    media_id       TEXT PRIMARY KEY,              -- [A-Za-z0-9_-], the path of mxc://server/ID
    user_nid       INTEGER NOT NULL REFERENCES users(nid),
    created_ts     INTEGER NOT NULL,
    content_type   TEXT,                          -- as uploaded (checked to be a media type)
    upload_name    TEXT,                          -- the `filename` query parameter, if any
    length         INTEGER,                       -- NULL: created, not yet uploaded
    sha256         TEXT,                          -- hex; the file's name in the store
    uploaded_ts    INTEGER,
    -- Served only on the authenticated /_matrix/client/v1/media endpoints (Synapse's
    -- `enable_authenticated_media`, on by default): every upload so far.
    authenticated  INTEGER NOT NULL DEFAULT 1
) WITHOUT ROWID;
-- Pending asynchronous uploads per user (their number is limited).
CREATE INDEX media_pending ON media(user_nid, created_ts) WHERE length IS NULL;
CREATE INDEX media_sha256 ON media(sha256);

-- Thumbnails generated on first request and kept. The key is the normalised request
-- (see media::thumbnail::normalise), not the exact width/height a client asked for.
CREATE TABLE media_thumbnails (
    media_id       TEXT NOT NULL REFERENCES media(media_id),
    width          INTEGER NOT NULL,              -- the normalised requested box
    height         INTEGER NOT NULL,
    method         TEXT NOT NULL,                 -- 'scale' | 'crop'
    content_type   TEXT NOT NULL,                 -- image/png | image/jpeg
    length         INTEGER NOT NULL,
    sha256         TEXT NOT NULL,
    actual_width   INTEGER NOT NULL,
    actual_height  INTEGER NOT NULL,
    created_ts     INTEGER NOT NULL,
    PRIMARY KEY (media_id, width, height, method)
) WITHOUT ROWID;
CREATE INDEX media_thumbnails_sha256 ON media_thumbnails(sha256);
