-- Cluster hibernation: one schedule per cluster, the Auto Scaling group sizes remembered
-- while it sleeps (restored exactly on wake), its current state, and every transition
-- (the savings are computed from them).
CREATE TABLE hibernation_schedules (
    cluster_id TEXT PRIMARY KEY REFERENCES clusters(id) ON DELETE CASCADE,
    organization_id TEXT NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    enabled BIGINT NOT NULL DEFAULT 0,
    -- 168 characters, '1' awake / '0' asleep, Monday 00:00 (local) first.
    slots TEXT NOT NULL,
    timezone TEXT NOT NULL,
    prewarm_minutes BIGINT NOT NULL DEFAULT 0,
    -- JSON arrays: ["YYYY-MM-DD"], [{"date": "YYYY-MM-DD", "mode": "sleep"|"awake"}],
    -- Auto Scaling group names (empty: all of the cluster's), namespaces.
    holidays TEXT NOT NULL DEFAULT '[]',
    overrides TEXT NOT NULL DEFAULT '[]',
    node_groups TEXT NOT NULL DEFAULT '[]',
    protected_namespaces TEXT NOT NULL DEFAULT '[]',
    -- Manual override ("sleep now" / "wake now"): 'awake' | 'asleep', until (NULL: open).
    manual_state TEXT,
    manual_until BIGINT,
    manual_by TEXT,
    updated_by TEXT,
    updated_at BIGINT NOT NULL
);

CREATE TABLE hibernation_state (
    cluster_id TEXT PRIMARY KEY REFERENCES clusters(id) ON DELETE CASCADE,
    organization_id TEXT NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    -- 'awake' | 'asleep' | 'transitioning' (towards `target`).
    state TEXT NOT NULL,
    target TEXT,
    since BIGINT NOT NULL,
    -- Hourly price of the capacity the current sleep removed (0 while awake).
    saving_hourly REAL NOT NULL DEFAULT 0,
    last_error TEXT,
    updated_at BIGINT NOT NULL
);

CREATE TABLE hibernation_remembered (
    cluster_id TEXT NOT NULL REFERENCES clusters(id) ON DELETE CASCADE,
    asg_name TEXT NOT NULL,
    min_size BIGINT NOT NULL,
    max_size BIGINT NOT NULL,
    desired_capacity BIGINT NOT NULL,
    remembered_at BIGINT NOT NULL,
    PRIMARY KEY (cluster_id, asg_name)
);

CREATE TABLE hibernation_transitions (
    id TEXT PRIMARY KEY,
    organization_id TEXT NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    cluster_id TEXT NOT NULL REFERENCES clusters(id) ON DELETE CASCADE,
    from_state TEXT NOT NULL,
    to_state TEXT NOT NULL,
    -- 'schedule' | 'manual' | 'catch_up'
    cause TEXT NOT NULL,
    reason TEXT NOT NULL,
    outcome TEXT NOT NULL,
    saving_hourly REAL NOT NULL DEFAULT 0,
    detail TEXT NOT NULL DEFAULT '{}',
    at BIGINT NOT NULL
);
CREATE INDEX hibernation_transitions_cluster_at ON hibernation_transitions (cluster_id, at);
