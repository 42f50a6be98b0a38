-- Machines, their MACs and lifecycle history; DHCP leases; onboarding stage
-- events; the outbox of events to publish; asynchronous tasks.
-- Times are UTC text in one fixed-width format, so they sort as they read.

CREATE TABLE machines (
    id           TEXT PRIMARY KEY,
    hostname     TEXT NOT NULL DEFAULT '',
    profile      TEXT NOT NULL DEFAULT '',
    rack_id      TEXT NOT NULL DEFAULT '',
    rack_name    TEXT NOT NULL DEFAULT '',
    tray         INTEGER NOT NULL DEFAULT 0,
    tray_type    TEXT NOT NULL DEFAULT '',
    bmc_endpoint TEXT NOT NULL DEFAULT '',
    source       TEXT NOT NULL,              -- config | discovered | api
    state        TEXT NOT NULL,              -- top-level state name, for filtering
    state_json   TEXT NOT NULL,              -- the whole state object
    state_since  TEXT NOT NULL,
    created_at   TEXT NOT NULL,
    updated_at   TEXT NOT NULL
) STRICT;
CREATE INDEX machines_state ON machines(state, id);
CREATE INDEX machines_hostname ON machines(hostname);

CREATE TABLE machine_macs (
    mac        TEXT PRIMARY KEY,
    machine_id TEXT NOT NULL REFERENCES machines(id) ON DELETE CASCADE,
    position   INTEGER NOT NULL
) STRICT;
CREATE INDEX machine_macs_machine ON machine_macs(machine_id, position);

CREATE TABLE transitions (
    seq        INTEGER PRIMARY KEY AUTOINCREMENT,
    machine_id TEXT NOT NULL REFERENCES machines(id) ON DELETE CASCADE,
    from_state TEXT NOT NULL,
    to_state   TEXT NOT NULL,
    state_json TEXT NOT NULL,
    cause      TEXT NOT NULL,
    at         TEXT NOT NULL
) STRICT;
CREATE INDEX transitions_machine ON transitions(machine_id, seq);

CREATE TABLE leases (
    ip         TEXT PRIMARY KEY,             -- one row per address: never two live leases
    mac        TEXT NOT NULL,
    hostname   TEXT NOT NULL DEFAULT '',
    state      TEXT NOT NULL,                -- offered | bound | released | declined
    expires_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
) STRICT;
CREATE INDEX leases_mac ON leases(mac);

CREATE TABLE stage_events (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    mac        TEXT NOT NULL,
    machine_id TEXT REFERENCES machines(id) ON DELETE SET NULL,
    stage      TEXT NOT NULL,
    phase      TEXT NOT NULL,
    detail     TEXT NOT NULL DEFAULT '',
    client_ip  TEXT NOT NULL DEFAULT '',
    at         TEXT NOT NULL
) STRICT;
CREATE INDEX stage_events_mac ON stage_events(mac, id);

CREATE TABLE outbox (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    topic        TEXT NOT NULL,
    payload      BLOB NOT NULL,
    qos          INTEGER NOT NULL,
    retain       INTEGER NOT NULL,
    created_at   TEXT NOT NULL,
    published_at TEXT
) STRICT;
CREATE INDEX outbox_pending ON outbox(id) WHERE published_at IS NULL;

CREATE TABLE tasks (
    id          TEXT PRIMARY KEY,
    kind        TEXT NOT NULL,
    machine_id  TEXT REFERENCES machines(id) ON DELETE SET NULL,
    status      TEXT NOT NULL,               -- queued | running | succeeded | failed | cancelled
    step        TEXT NOT NULL DEFAULT '',
    progress    INTEGER NOT NULL DEFAULT 0,  -- percent
    message     TEXT NOT NULL DEFAULT '',
    params      TEXT NOT NULL DEFAULT '{}',
    result      TEXT NOT NULL DEFAULT '{}',
    created_at  TEXT NOT NULL,
    updated_at  TEXT NOT NULL,
    finished_at TEXT
) STRICT;
CREATE INDEX tasks_status ON tasks(status, created_at);
