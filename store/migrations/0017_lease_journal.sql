-- How far the leases' journal (the database's "-leases" file) is applied to
-- the leases table: its records up to seq are here, in the same commit.
CREATE TABLE lease_journal (
    id  INTEGER PRIMARY KEY CHECK (id = 1),
    seq INTEGER NOT NULL
) STRICT;
INSERT INTO lease_journal (id, seq) VALUES (1, 0);
