-- The push actions that are not plain main-timeline notifications: highlights and those in
-- a thread, usually few. Unread counts count the main timeline from the primary key and read
-- only these rows, instead of every unread action's columns.
CREATE INDEX event_push_actions_rare ON event_push_actions (room_nid, user_id, stream_pos)
    WHERE highlight <> 0 OR thread_id <> 'main';
