-- The latest `memberships.stream_pos` when a remote user's list was fetched: a list is
-- only trusted while a room has been shared with the user since then, as their server
-- stops sending updates once no room is shared (Synapse resyncs on rejoin too).
ALTER TABLE remote_device_lists ADD COLUMN fetched_pos INTEGER NOT NULL DEFAULT 0;
