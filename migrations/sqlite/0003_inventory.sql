-- Discovered inventory. Rows are never deleted by discovery: what disappears from the cloud
-- gets `gone_at` (instances also move to state `terminated`), so history and audit links stay.
CREATE TABLE clusters (
    id TEXT PRIMARY KEY,
    organization_id TEXT NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    account_id TEXT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    provider TEXT NOT NULL,
    region TEXT NOT NULL,
    version TEXT,
    status TEXT NOT NULL,
    environment TEXT,
    node_groups TEXT NOT NULL,
    tags TEXT NOT NULL,
    node_count BIGINT NOT NULL DEFAULT 0,
    pod_count BIGINT NOT NULL DEFAULT 0,
    cpu_allocatable_m BIGINT NOT NULL DEFAULT 0,
    cpu_requested_m BIGINT NOT NULL DEFAULT 0,
    cpu_used_m BIGINT NOT NULL DEFAULT 0,
    mem_allocatable_mib BIGINT NOT NULL DEFAULT 0,
    mem_requested_mib BIGINT NOT NULL DEFAULT 0,
    mem_used_mib BIGINT NOT NULL DEFAULT 0,
    first_seen_at BIGINT NOT NULL,
    last_seen_at BIGINT NOT NULL,
    gone_at BIGINT,
    UNIQUE (account_id, name)
);
CREATE INDEX clusters_org ON clusters(organization_id);

CREATE TABLE instances (
    id TEXT PRIMARY KEY,
    organization_id TEXT NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    account_id TEXT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    cluster_id TEXT,
    instance_id TEXT NOT NULL,
    instance_type TEXT NOT NULL,
    lifecycle TEXT NOT NULL,
    state TEXT NOT NULL,
    az TEXT NOT NULL,
    node_group TEXT,
    asg_name TEXT,
    tags TEXT NOT NULL,
    launch_time BIGINT,
    hourly_price REAL NOT NULL DEFAULT 0,
    on_demand_hourly REAL NOT NULL DEFAULT 0,
    first_seen_at BIGINT NOT NULL,
    last_seen_at BIGINT NOT NULL,
    gone_at BIGINT,
    UNIQUE (account_id, instance_id)
);
CREATE INDEX instances_org ON instances(organization_id);
CREATE INDEX instances_cluster ON instances(cluster_id);

CREATE TABLE volumes (
    id TEXT PRIMARY KEY,
    organization_id TEXT NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    account_id TEXT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    volume_id TEXT NOT NULL,
    size_gib BIGINT NOT NULL,
    volume_type TEXT NOT NULL,
    state TEXT NOT NULL,
    attached_instance_id TEXT,
    last_attached_at BIGINT,
    created_at BIGINT,
    monthly_cost REAL NOT NULL DEFAULT 0,
    first_seen_at BIGINT NOT NULL,
    last_seen_at BIGINT NOT NULL,
    gone_at BIGINT,
    UNIQUE (account_id, volume_id)
);
CREATE INDEX volumes_org ON volumes(organization_id);

CREATE TABLE snapshots (
    id TEXT PRIMARY KEY,
    organization_id TEXT NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    account_id TEXT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    snapshot_id TEXT NOT NULL,
    volume_id TEXT,
    source_ami TEXT,
    started_at BIGINT,
    size_gib BIGINT NOT NULL,
    monthly_cost REAL NOT NULL DEFAULT 0,
    first_seen_at BIGINT NOT NULL,
    last_seen_at BIGINT NOT NULL,
    gone_at BIGINT,
    UNIQUE (account_id, snapshot_id)
);
CREATE INDEX snapshots_org ON snapshots(organization_id);

-- One row per cluster per discovery: the time series behind the dashboard charts.
CREATE TABLE cluster_metrics (
    cluster_id TEXT NOT NULL REFERENCES clusters(id) ON DELETE CASCADE,
    organization_id TEXT NOT NULL,
    ts BIGINT NOT NULL,
    node_count BIGINT NOT NULL,
    spot_node_count BIGINT NOT NULL,
    pod_count BIGINT NOT NULL,
    cpu_allocatable_m BIGINT NOT NULL,
    cpu_requested_m BIGINT NOT NULL,
    cpu_used_m BIGINT NOT NULL,
    mem_allocatable_mib BIGINT NOT NULL,
    mem_requested_mib BIGINT NOT NULL,
    mem_used_mib BIGINT NOT NULL,
    hourly_cost REAL NOT NULL,
    on_demand_hourly_cost REAL NOT NULL,
    PRIMARY KEY (cluster_id, ts)
);
CREATE INDEX cluster_metrics_org_ts ON cluster_metrics(organization_id, ts);

-- Lifecycle history of an instance (launch, interruption, switch, termination).
CREATE TABLE instance_events (
    id TEXT PRIMARY KEY,
    organization_id TEXT NOT NULL,
    instance_row_id TEXT NOT NULL REFERENCES instances(id) ON DELETE CASCADE,
    ts BIGINT NOT NULL,
    kind TEXT NOT NULL,
    detail TEXT NOT NULL
);
CREATE INDEX instance_events_instance ON instance_events(instance_row_id, ts);
