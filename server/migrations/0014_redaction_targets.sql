-- Redactions by the event they name, so one that arrived before its target (from
-- another server, or ours of an event we lacked) is found when the target arrives.
-- `redacts` is top-level up to room version 10 and in `content` from version 11.
CREATE INDEX events_redaction_target ON events(
    COALESCE(json_extract(json, '$.redacts'), json_extract(json, '$.content.redacts'))
) WHERE event_type = 'm.room.redaction';
