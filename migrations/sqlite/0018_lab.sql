-- The Lab (super-admins): live single-instance switches with timed phases, and parallel
-- A/B tests of two risk models on two tagged instance sets. Platform records: they name the
-- organization whose (simulator or AWS) instances they touched.

-- A live switch of one running instance (a Kubernetes node) to a target instance type /
-- model, executed by a `lab_switch` job through the safe executor.
CREATE TABLE lab_switches (
    id TEXT PRIMARY KEY,
    organization_id TEXT NOT NULL,
    account_id TEXT NOT NULL,
    cluster_id TEXT NOT NULL,
    instance_id TEXT NOT NULL,
    node_name TEXT,
    model_id TEXT NOT NULL,
    target_type TEXT,
    chosen_type TEXT,
    chosen_az TEXT,
    chosen_lifecycle TEXT,
    new_instance_id TEXT,
    job_id TEXT,
    status TEXT NOT NULL,
    error TEXT,
    requested_by TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    started_at BIGINT,
    finished_at BIGINT
);
CREATE INDEX lab_switches_model ON lab_switches (model_id, created_at);
CREATE INDEX lab_switches_created ON lab_switches (created_at);

-- Timed phases of a switch, in execution order.
CREATE TABLE lab_switch_phases (
    switch_id TEXT NOT NULL REFERENCES lab_switches(id) ON DELETE CASCADE,
    seq BIGINT NOT NULL,
    name TEXT NOT NULL,
    status TEXT NOT NULL,
    started_at BIGINT NOT NULL,
    finished_at BIGINT,
    duration_ms BIGINT,
    detail TEXT NOT NULL DEFAULT '{}',
    PRIMARY KEY (switch_id, seq)
);

-- A parallel A/B test: arm `a` decides with model_a, arm `b` with model_b.
CREATE TABLE lab_ab_tests (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    organization_id TEXT NOT NULL,
    account_id TEXT NOT NULL,
    model_a TEXT NOT NULL,
    model_b TEXT NOT NULL,
    tag_a TEXT NOT NULL,
    tag_b TEXT NOT NULL,
    status TEXT NOT NULL,
    tick_secs BIGINT NOT NULL,
    starts_at BIGINT NOT NULL,
    ends_at BIGINT NOT NULL,
    next_tick_at BIGINT NOT NULL,
    ticks BIGINT NOT NULL DEFAULT 0,
    last_event_at BIGINT,
    verdict TEXT,
    error TEXT,
    created_by TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    finished_at BIGINT
);
CREATE INDEX lab_ab_tests_due ON lab_ab_tests (status, next_tick_at);

-- The instance sets: one row per slot; a slot follows its instance through moves.
CREATE TABLE lab_ab_members (
    test_id TEXT NOT NULL REFERENCES lab_ab_tests(id) ON DELETE CASCADE,
    arm TEXT NOT NULL,
    slot BIGINT NOT NULL,
    original_instance_id TEXT NOT NULL,
    instance_id TEXT NOT NULL,
    instance_type TEXT NOT NULL,
    az TEXT NOT NULL,
    lifecycle TEXT NOT NULL,
    PRIMARY KEY (test_id, arm, slot)
);

-- One point per arm per tick.
CREATE TABLE lab_ab_samples (
    test_id TEXT NOT NULL REFERENCES lab_ab_tests(id) ON DELETE CASCADE,
    tick BIGINT NOT NULL,
    arm TEXT NOT NULL,
    at BIGINT NOT NULL,
    hourly_cost DOUBLE PRECISION NOT NULL,
    on_demand_cost DOUBLE PRECISION NOT NULL,
    running BIGINT NOT NULL,
    interruptions BIGINT NOT NULL,
    decisions BIGINT NOT NULL,
    PRIMARY KEY (test_id, tick, arm)
);

-- Every decision an arm's model made, with the model that made it.
CREATE TABLE lab_decisions (
    id TEXT PRIMARY KEY,
    test_id TEXT NOT NULL REFERENCES lab_ab_tests(id) ON DELETE CASCADE,
    arm TEXT NOT NULL,
    tick BIGINT NOT NULL,
    slot BIGINT NOT NULL,
    model_id TEXT NOT NULL,
    instance_id TEXT NOT NULL,
    action TEXT NOT NULL,
    from_pool TEXT NOT NULL,
    to_pool TEXT,
    probability DOUBLE PRECISION,
    reason TEXT NOT NULL,
    outcome TEXT NOT NULL,
    new_instance_id TEXT,
    at BIGINT NOT NULL
);
CREATE INDEX lab_decisions_test ON lab_decisions (test_id, tick);

-- A Lab switch changes a cluster's nodes like Optimize Now and force on-demand: at most one
-- of them may be queued or running per cluster.
DROP INDEX jobs_one_active_node_job;
CREATE UNIQUE INDEX jobs_one_active_node_job ON jobs (target_id)
    WHERE kind IN ('optimize', 'force_on_demand', 'lab_switch') AND status IN ('queued', 'running');
