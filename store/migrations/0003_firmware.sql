-- Firmware images kept on the box for BMCs to fetch; the file is
-- <data_dir>/firmware/<id>.bin, id being its SHA-256.

CREATE TABLE firmware_images (
    id         TEXT PRIMARY KEY,             -- SHA-256, lower-case hex
    component  TEXT NOT NULL,                -- firmware inventory id: BMC, BIOS, …
    version    TEXT NOT NULL,
    size       INTEGER NOT NULL,
    filename   TEXT NOT NULL DEFAULT '',     -- as uploaded, for people
    created_at TEXT NOT NULL
) STRICT;

CREATE INDEX tasks_machine ON tasks(machine_id, created_at);
