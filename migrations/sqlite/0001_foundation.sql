-- Foundation schema (SQLite). Ids are UUID text; timestamps are UTC epoch milliseconds.
CREATE TABLE organizations (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    onboarding_state TEXT,
    audit_retention_days BIGINT,
    external_id TEXT NOT NULL UNIQUE
);

CREATE TABLE users (
    id TEXT PRIMARY KEY,
    email TEXT NOT NULL UNIQUE,
    password_hash TEXT NOT NULL,
    platform_role TEXT,
    created_at BIGINT NOT NULL
);

CREATE TABLE memberships (
    user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    organization_id TEXT NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    role TEXT NOT NULL CHECK (role IN ('owner', 'admin', 'viewer')),
    created_at BIGINT NOT NULL,
    PRIMARY KEY (user_id, organization_id)
);
CREATE INDEX memberships_org ON memberships(organization_id);

CREATE TABLE invites (
    id TEXT PRIMARY KEY,
    organization_id TEXT NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    email TEXT NOT NULL,
    role TEXT NOT NULL CHECK (role IN ('admin', 'viewer')),
    token_hash TEXT NOT NULL UNIQUE,
    invited_by TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    accepted_at BIGINT,
    revoked_at BIGINT
);
CREATE INDEX invites_org ON invites(organization_id);

CREATE TABLE accounts (
    id TEXT PRIMARY KEY,
    organization_id TEXT NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    provider TEXT NOT NULL,
    aws_account_id TEXT,
    method TEXT,
    role_arn TEXT,
    external_id TEXT,
    region TEXT,
    credentials_ciphertext TEXT,
    status TEXT NOT NULL CHECK (status IN ('pending', 'scanning', 'active', 'error', 'disconnected')),
    status_message TEXT,
    last_sync_at BIGINT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX accounts_org ON accounts(organization_id);
CREATE UNIQUE INDEX accounts_aws_id_live ON accounts(aws_account_id) WHERE status <> 'disconnected' AND aws_account_id IS NOT NULL;

CREATE TABLE sessions (
    id TEXT PRIMARY KEY,
    user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    organization_id TEXT NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    refresh_hash TEXT NOT NULL UNIQUE,
    created_at BIGINT NOT NULL,
    last_used_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    revoked_at BIGINT,
    impersonator_id TEXT,
    source_ip TEXT,
    user_agent TEXT
);
CREATE INDEX sessions_user ON sessions(user_id);

CREATE TABLE audit_chain_heads (
    chain_key TEXT PRIMARY KEY,
    seq BIGINT NOT NULL,
    hash TEXT NOT NULL
);

CREATE TABLE audit_logs (
    id TEXT PRIMARY KEY,
    chain_key TEXT NOT NULL,
    seq BIGINT NOT NULL,
    organization_id TEXT,
    ts BIGINT NOT NULL,
    actor_kind TEXT NOT NULL,
    actor_user_id TEXT,
    actor_email TEXT,
    actor_component TEXT,
    actor_admin_id TEXT,
    action TEXT NOT NULL,
    resource_type TEXT NOT NULL,
    resource_id TEXT,
    outcome TEXT NOT NULL CHECK (outcome IN ('success', 'failed', 'denied')),
    status_code BIGINT,
    source_ip TEXT,
    user_agent TEXT,
    request_id TEXT NOT NULL,
    diff TEXT NOT NULL,
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL,
    UNIQUE (chain_key, seq)
);
CREATE INDEX audit_logs_org_ts ON audit_logs(organization_id, ts);
