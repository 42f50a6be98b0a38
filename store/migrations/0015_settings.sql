-- What an operator changed while Slipway ran (the console's settings form),
-- kept over the configuration file's values until reset.
CREATE TABLE settings (
    key        TEXT PRIMARY KEY,
    value      TEXT NOT NULL,
    changed_by TEXT NOT NULL,
    changed_at TEXT NOT NULL
) STRICT;
