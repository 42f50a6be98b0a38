-- OS releases (StarlingX USM's releases): signed bundles under
-- <data_dir>/assets/releases/<id>/, their manifest kept as uploaded.

CREATE TABLE releases (
    id         TEXT PRIMARY KEY,             -- the manifest's release_id
    state      TEXT NOT NULL,                -- USM's: available, deploying, deployed, …
    sw_version TEXT NOT NULL,                -- MM.mm.pp
    manifest   TEXT NOT NULL,                -- release.yaml, as JSON
    signer     TEXT NOT NULL,                -- the OpenPGP key that signed it (fingerprint)
    sha256     TEXT NOT NULL,                -- of the uploaded archive
    size       INTEGER NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
) STRICT;
