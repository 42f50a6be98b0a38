-- A BMC that manages several computer systems (a blade chassis, a
-- multi-node tray) is one record per system: system is the
-- ComputerSystem's URI the record manages, '' for the BMC's first. An
-- endpoint is then unique per system, not alone: SQLite cannot drop a
-- column constraint, so the table is rebuilt.

CREATE TABLE bmcs_by_system (
    id               TEXT PRIMARY KEY,
    endpoint         TEXT NOT NULL,                 -- https://10.88.1.10
    system           TEXT NOT NULL DEFAULT '',      -- /redfish/v1/Systems/2, '' for the BMC's first
    username         TEXT NOT NULL,
    secret           BLOB NOT NULL,                 -- the password, sealed with the data directory's key
    insecure         INTEGER NOT NULL DEFAULT 0,    -- 1: its TLS certificate is not verified
    machine_id       TEXT REFERENCES machines(id) ON DELETE SET NULL,
    linked_by        TEXT NOT NULL DEFAULT '',      -- config | mac | api | design: how machine_id was decided
    source           TEXT NOT NULL,                 -- config | discovered | api | design
    reachable        INTEGER NOT NULL DEFAULT 0,
    last_error       TEXT NOT NULL DEFAULT '',
    inventory        TEXT NOT NULL DEFAULT '{}',    -- what the last successful poll collected
    changed_at       TEXT,                          -- when a poll last found something new
    created_at       TEXT NOT NULL,
    updated_at       TEXT NOT NULL,
    override_pending TEXT NOT NULL DEFAULT '',      -- a persistent boot override Slipway set, to clear
    UNIQUE (endpoint, system)
) STRICT;

INSERT INTO bmcs_by_system (id, endpoint, username, secret, insecure, machine_id, linked_by, source,
    reachable, last_error, inventory, changed_at, created_at, updated_at, override_pending)
SELECT id, endpoint, username, secret, insecure, machine_id, linked_by, source,
    reachable, last_error, inventory, changed_at, created_at, updated_at, override_pending FROM bmcs;

DROP TABLE bmcs;
ALTER TABLE bmcs_by_system RENAME TO bmcs;
CREATE INDEX bmcs_machine ON bmcs(machine_id);
