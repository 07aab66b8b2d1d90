-- Super-admin console: profile names, password resets and organizations created by invite.

-- A display name for the profile page (optional; the e-mail is shown when it is unset).
ALTER TABLE users ADD COLUMN display_name TEXT;

-- Password reset tokens (only the SHA-256 of the token is stored); single use, short-lived.
CREATE TABLE password_resets (
    token_hash TEXT PRIMARY KEY,
    user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    used_at BIGINT
);
CREATE INDEX password_resets_user ON password_resets(user_id);

-- An organization a platform admin created without an owner yet: the invited owner sets a
-- password when accepting (team invites of existing organizations stay in `invites`).
CREATE TABLE client_invites (
    id TEXT PRIMARY KEY,
    organization_id TEXT NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    email TEXT NOT NULL,
    token_hash TEXT NOT NULL UNIQUE,
    invited_by TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    accepted_at BIGINT
);
CREATE INDEX client_invites_org ON client_invites(organization_id);
