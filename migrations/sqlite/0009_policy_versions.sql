-- Every stored change of a cluster's optimization policy, numbered per cluster, so that
-- "last updated by / at" can be shown and any version can be restored.
CREATE TABLE cluster_policy_versions (
    id TEXT PRIMARY KEY,
    organization_id TEXT NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    cluster_id TEXT NOT NULL REFERENCES clusters(id) ON DELETE CASCADE,
    version BIGINT NOT NULL,
    policy TEXT NOT NULL,
    template_id TEXT,
    created_by TEXT,
    note TEXT,
    created_at BIGINT NOT NULL
);
CREATE UNIQUE INDEX cluster_policy_versions_number ON cluster_policy_versions (cluster_id, version);
