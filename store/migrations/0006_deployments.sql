-- Deployments from a site design (Drydock's deploy_nodes): the boot
-- actions each node runs, with the key the node proves itself with and the
-- status it reports, and the build data collected about nodes.

CREATE TABLE boot_actions (
    id         TEXT PRIMARY KEY,          -- ULID, as Drydock names actions
    task_id    TEXT NOT NULL,             -- the node's deploy task
    node       TEXT NOT NULL,             -- machine id (the design's node name)
    name       TEXT NOT NULL,             -- the BootAction document's name
    key        TEXT NOT NULL,             -- hex; one per node per deployment
    status     TEXT NOT NULL,             -- incomplete | unreported | success | failure
    details    TEXT NOT NULL DEFAULT '[]',-- JSON list of the node's messages
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
) STRICT;

CREATE INDEX boot_actions_node ON boot_actions(node, created_at);
CREATE INDEX boot_actions_task ON boot_actions(task_id);

CREATE TABLE build_data (
    id           INTEGER PRIMARY KEY,
    node         TEXT NOT NULL,
    task_id      TEXT NOT NULL DEFAULT '',
    generator    TEXT NOT NULL,           -- redfish, dhcp, heartbeat, lshw, lldp…
    data_format  TEXT NOT NULL,           -- a MIME type
    data_element TEXT NOT NULL,
    collected_at TEXT NOT NULL
) STRICT;

CREATE INDEX build_data_node ON build_data(node, collected_at);
CREATE INDEX build_data_task ON build_data(task_id);
