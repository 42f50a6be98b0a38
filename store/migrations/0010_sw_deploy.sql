-- The OS release a machine runs (set when a USM deploy reprovisions it;
-- the inventory's own profile is kept beneath it), and the one USM deploy
-- in progress, as one JSON document with its hosts.

ALTER TABLE machines ADD COLUMN release_id TEXT NOT NULL DEFAULT '';

CREATE TABLE sw_deploy (
    id         INTEGER PRIMARY KEY CHECK (id = 1),  -- one deploy at a time
    state      TEXT NOT NULL,
    doc        TEXT NOT NULL,                       -- the deploy and its hosts, JSON
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
) STRICT;
