-- Threads in unread counts, and pushers.

-- The thread an event with push actions belongs to: 'main', or its thread root's event ID
-- (spec: "Receipts" and `unread_thread_notifications`).
ALTER TABLE event_push_actions ADD COLUMN thread_id TEXT NOT NULL DEFAULT 'main';

-- Pushers (spec: "Push Notifications"; `POST /pushers/set`), one per app and push key and
-- user. `device_id` is the device whose access token made it: pushers end with their
-- device (see the trigger below), as Synapse ends them with their access token.
CREATE TABLE pushers (
    user_nid             INTEGER NOT NULL REFERENCES users(nid),
    app_id               TEXT NOT NULL,
    pushkey              TEXT NOT NULL,
    kind                 TEXT NOT NULL,
    app_display_name     TEXT NOT NULL,
    device_display_name  TEXT NOT NULL,
    profile_tag          TEXT,
    lang                 TEXT NOT NULL,
    data                 TEXT NOT NULL,             -- JSON object
    pushkey_ts           INTEGER NOT NULL,          -- when set, in ms
    device_id            TEXT,
    PRIMARY KEY (user_nid, app_id, pushkey)
) WITHOUT ROWID;
CREATE INDEX pushers_key ON pushers(app_id, pushkey);

-- A device that goes (logout, deletion, a password change logging others out) takes its
-- pushers with it: its owner no longer wants that phone told about messages.
CREATE TRIGGER pushers_of_deleted_device AFTER DELETE ON devices
BEGIN
    DELETE FROM pushers WHERE user_nid = OLD.user_nid AND device_id = OLD.device_id;
END;
