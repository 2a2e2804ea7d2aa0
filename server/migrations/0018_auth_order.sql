-- State resolution walks auth chains back from the states in decreasing nid, which is only
-- sound while every event's auth events have smaller nids than it. That holds unless an
-- event was stored before one of its auth events: `auth_gaps` keeps the auth event IDs
-- that were missing when a citing event was stored, and a room where one of them turned
-- up later goes into `auth_unordered_rooms`, whose resolutions walk the full chains.
CREATE TABLE auth_gaps (
    event_id  TEXT NOT NULL,
    room_nid  INTEGER NOT NULL,
    PRIMARY KEY (event_id, room_nid)
) WITHOUT ROWID;

CREATE TABLE auth_unordered_rooms (
    room_nid  INTEGER PRIMARY KEY
);

-- Existing events: auth_events holds IDs (room versions 3+) or [ID, hashes] pairs (1, 2).
INSERT OR IGNORE INTO auth_gaps (event_id, room_nid)
SELECT CASE a.type WHEN 'array' THEN json_extract(a.value, '$[0]') ELSE a.value END, e.room_nid
FROM events e, json_each(e.json, '$.auth_events') a
WHERE NOT EXISTS (SELECT 1 FROM events x WHERE x.event_id =
    CASE a.type WHEN 'array' THEN json_extract(a.value, '$[0]') ELSE a.value END);

INSERT OR IGNORE INTO auth_unordered_rooms (room_nid)
SELECT DISTINCT e.room_nid
FROM events e, json_each(e.json, '$.auth_events') a
JOIN events x ON x.event_id =
    CASE a.type WHEN 'array' THEN json_extract(a.value, '$[0]') ELSE a.value END
WHERE x.nid >= e.nid;
