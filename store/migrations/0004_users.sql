-- Console and API users, and the session tokens revoked before they expire.

CREATE TABLE users (
    name          TEXT PRIMARY KEY,
    role          TEXT NOT NULL,                -- viewer | operator | admin
    password_hash TEXT NOT NULL,                -- bcrypt
    source        TEXT NOT NULL,                -- config | api | first-start
    must_change   INTEGER NOT NULL DEFAULT 0,   -- 1: a one-time password, to be changed
    created_at    TEXT NOT NULL,
    updated_at    TEXT NOT NULL
) STRICT;

CREATE TABLE revoked_tokens (
    id         TEXT PRIMARY KEY,                -- the token's jti
    expires_at TEXT NOT NULL                    -- after this it is refused anyway
) STRICT;
