-- A user's session generation: a session token carries the generation it
-- was issued in, and one older than the user's is refused. A password
-- change or reset, or a role changed in the config, moves it on, which
-- ends every session the user had.

ALTER TABLE users ADD COLUMN session_gen INTEGER NOT NULL DEFAULT 0;
