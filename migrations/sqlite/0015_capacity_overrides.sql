-- Manual overrides (force on-demand): one row per override, at the scope it was given
-- (one instance, a cluster, the organization, or the whole platform), for a duration or
-- until revoked. The sweep ends expired ones and hands their clusters back to the policy.
CREATE TABLE capacity_overrides (
    id TEXT PRIMARY KEY,
    -- NULL for the platform scope (a super-admin's emergency override).
    organization_id TEXT,
    -- instance, cluster, organization or platform.
    scope TEXT NOT NULL,
    -- Set for the instance and cluster scopes.
    cluster_id TEXT,
    -- Instance scope: the node's instance as forced, and its on-demand replacement once the
    -- force job has replaced it (the planner keeps that one while the override lasts).
    instance_id TEXT,
    replacement_instance_id TEXT,
    reason TEXT,
    created_by TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    -- NULL: until revoked.
    expires_at BIGINT,
    ended_at BIGINT,
    -- A user id, or 'system' for an expiry.
    ended_by TEXT,
    -- revoked or expired.
    end_reason TEXT
);
CREATE INDEX capacity_overrides_org ON capacity_overrides (organization_id, ended_at);
CREATE INDEX capacity_overrides_due ON capacity_overrides (ended_at, expires_at);

-- Optimize Now and force on-demand change a cluster's nodes: at most one of them may be
-- queued or running per cluster.
DROP INDEX jobs_one_active_optimize;
CREATE UNIQUE INDEX jobs_one_active_node_job ON jobs (target_id)
    WHERE kind IN ('optimize', 'force_on_demand') AND status IN ('queued', 'running');
