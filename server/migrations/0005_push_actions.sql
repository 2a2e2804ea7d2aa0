-- What push-rule evaluation decided for each local member and event: unread
-- notification and highlight counts are counted from here past the user's read receipt.
CREATE TABLE event_push_actions (
    room_nid       INTEGER NOT NULL REFERENCES rooms(nid),
    user_id        TEXT NOT NULL,
    stream_pos     INTEGER NOT NULL,
    highlight      INTEGER NOT NULL,
    PRIMARY KEY (room_nid, user_id, stream_pos)
) WITHOUT ROWID;
