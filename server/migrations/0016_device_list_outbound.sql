-- The stream_id of the last `m.device_list_update` sent to a server for a local user: the
-- `prev_id` of the next one, so the server can tell whether it missed an update.
CREATE TABLE device_list_outbound (
    destination  TEXT NOT NULL,
    user_id      TEXT NOT NULL,
    stream_id    INTEGER NOT NULL,
    PRIMARY KEY (destination, user_id)
) WITHOUT ROWID;
