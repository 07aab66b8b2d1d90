-- Refresh-token reuse detection: every refresh token a session has rotated away from is kept
-- (hashed) until the session goes, so replaying one is recognised and revokes the session.
CREATE TABLE session_retired_refresh (
    refresh_hash TEXT PRIMARY KEY,
    session_id TEXT NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
    retired_at BIGINT NOT NULL
);
CREATE INDEX session_retired_refresh_session ON session_retired_refresh(session_id);

-- Why a session ended early (`logout`, `refresh_reuse`, `password_changed`).
ALTER TABLE sessions ADD COLUMN revoked_reason TEXT;
