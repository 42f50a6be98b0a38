-- The outbox is read by several consumers (the MQTT relay, the console's
-- stream, an upstream bridge), each with its own cursor: the id of the last
-- event it has handled. The single published_at column served one consumer
-- only; the relay's progress becomes the "mqtt" cursor.

CREATE TABLE outbox_cursors (
    consumer   TEXT PRIMARY KEY,
    last_id    INTEGER NOT NULL,
    updated_at TEXT NOT NULL
) STRICT;

INSERT INTO outbox_cursors (consumer, last_id, updated_at)
    SELECT 'mqtt', COALESCE(MAX(id), 0), strftime('%Y-%m-%dT%H:%M:%S.000000000Z', 'now')
    FROM outbox WHERE published_at IS NOT NULL;

DROP INDEX outbox_pending;
ALTER TABLE outbox DROP COLUMN published_at;
CREATE INDEX outbox_created ON outbox(created_at);
