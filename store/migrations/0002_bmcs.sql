-- BMCs Slipway drives over Redfish, and what their last poll found.

CREATE TABLE bmcs (
    id          TEXT PRIMARY KEY,
    endpoint    TEXT NOT NULL UNIQUE,          -- https://10.88.1.10
    username    TEXT NOT NULL,
    secret      BLOB NOT NULL,                 -- the password, sealed with the data directory's key
    insecure    INTEGER NOT NULL DEFAULT 0,    -- 1: its TLS certificate is not verified
    machine_id  TEXT REFERENCES machines(id) ON DELETE SET NULL,
    linked_by   TEXT NOT NULL DEFAULT '',      -- config | mac | api: how machine_id was decided
    source      TEXT NOT NULL,                 -- config | discovered | api
    reachable   INTEGER NOT NULL DEFAULT 0,
    last_error  TEXT NOT NULL DEFAULT '',
    inventory   TEXT NOT NULL DEFAULT '{}',    -- what the last successful poll collected
    changed_at  TEXT,                          -- when a poll last found something new
    created_at  TEXT NOT NULL,
    updated_at  TEXT NOT NULL
) STRICT;
CREATE INDEX bmcs_machine ON bmcs(machine_id);
