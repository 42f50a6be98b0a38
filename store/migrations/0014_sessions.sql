-- Every login's session, so that an admin can list them and end one. The
-- token itself is not kept: only its id (the JWT's jti), which a revocation
-- names. Rows past their expiry are forgotten at the next login.

CREATE TABLE sessions (
    id         TEXT PRIMARY KEY,
    user       TEXT NOT NULL,
    client     TEXT NOT NULL,
    gen        INTEGER NOT NULL,
    created_at TEXT NOT NULL,
    expires_at TEXT NOT NULL
);
CREATE INDEX sessions_user ON sessions (user);
