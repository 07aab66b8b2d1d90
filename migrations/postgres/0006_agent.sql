-- The in-cluster agent: per-cluster tokens, its last reported status, the cluster view it
-- pushes (nodes, pods, PDBs as JSON rows, usage samples) and the commands queued for it.

-- Agent tokens: only the SHA-256 of the token is stored, with its visible prefix
-- (`spa_XXXXXXXX`). At most one active (unrevoked) token per cluster.
CREATE TABLE agent_tokens (
    id TEXT PRIMARY KEY,
    organization_id TEXT NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    cluster_id TEXT NOT NULL REFERENCES clusters(id) ON DELETE CASCADE,
    token_prefix TEXT NOT NULL,
    token_hash TEXT NOT NULL UNIQUE,
    created_at BIGINT NOT NULL,
    created_by TEXT,
    revoked_at BIGINT
);
CREATE INDEX agent_tokens_cluster ON agent_tokens(cluster_id, created_at);
CREATE UNIQUE INDEX agent_tokens_one_active ON agent_tokens(cluster_id) WHERE revoked_at IS NULL;

-- What the agent last said about itself (heartbeat) and when its view was last refreshed.
CREATE TABLE agent_status (
    cluster_id TEXT PRIMARY KEY REFERENCES clusters(id) ON DELETE CASCADE,
    organization_id TEXT NOT NULL,
    first_seen_at BIGINT,
    last_heartbeat_at BIGINT,
    agent_version TEXT,
    kubernetes_version TEXT,
    protocol_version BIGINT,
    watches TEXT NOT NULL DEFAULT '[]',
    metrics_available BIGINT NOT NULL DEFAULT 0,
    safe_mode TEXT,
    token_prefix TEXT,
    collected_at BIGINT,
    snapshot_at BIGINT,
    view_updated_at BIGINT
);

-- The cluster view: one JSON row per object, replaced wholesale by a snapshot.
CREATE TABLE agent_nodes (
    cluster_id TEXT NOT NULL REFERENCES clusters(id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    data TEXT NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (cluster_id, name)
);

CREATE TABLE agent_pods (
    cluster_id TEXT NOT NULL REFERENCES clusters(id) ON DELETE CASCADE,
    pod_key TEXT NOT NULL,
    phase TEXT NOT NULL,
    node_name TEXT,
    data TEXT NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (cluster_id, pod_key)
);

CREATE TABLE agent_pdbs (
    cluster_id TEXT NOT NULL REFERENCES clusters(id) ON DELETE CASCADE,
    pdb_key TEXT NOT NULL,
    data TEXT NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (cluster_id, pdb_key)
);

-- metrics.k8s.io readings (target `node` or `pod`; namespace empty for nodes), kept at
-- least 48 hours.
CREATE TABLE agent_usage (
    cluster_id TEXT NOT NULL REFERENCES clusters(id) ON DELETE CASCADE,
    target TEXT NOT NULL,
    namespace TEXT NOT NULL,
    name TEXT NOT NULL,
    at BIGINT NOT NULL,
    cpu_millis BIGINT NOT NULL,
    memory_mib BIGINT NOT NULL,
    PRIMARY KEY (cluster_id, target, namespace, name, at)
);
CREATE INDEX agent_usage_cluster_at ON agent_usage(cluster_id, at);

-- Commands for the agent. Enqueueing the same idempotency key twice yields one command.
CREATE TABLE agent_commands (
    id TEXT PRIMARY KEY,
    organization_id TEXT NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    cluster_id TEXT NOT NULL REFERENCES clusters(id) ON DELETE CASCADE,
    kind TEXT NOT NULL,
    command TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('pending', 'running', 'succeeded', 'failed', 'expired')),
    idempotency_key TEXT NOT NULL,
    created_by TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    deadline BIGINT NOT NULL,
    started_at BIGINT,
    finished_at BIGINT,
    result TEXT,
    reason TEXT,
    UNIQUE (cluster_id, idempotency_key)
);
CREATE INDEX agent_commands_queue ON agent_commands(cluster_id, status, created_at);
CREATE INDEX agent_commands_org ON agent_commands(organization_id, created_at);
