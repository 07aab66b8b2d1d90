-- MOD-AI-01 model registry (Flow 3): uploaded ONNX risk models and their lifecycle
-- uploaded -> validated -> graduated -> retired. Bytes live in the database so every
-- replica can load a graduated model.
CREATE TABLE risk_models (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    status TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    size_bytes BIGINT NOT NULL,
    bytes BYTEA NOT NULL,
    validation TEXT NOT NULL,
    uploaded_by TEXT NOT NULL,
    uploaded_at BIGINT NOT NULL,
    validated_at BIGINT,
    graduated_at BIGINT,
    retired_at BIGINT
);
CREATE INDEX risk_models_status ON risk_models(status);

-- Latest risk score per spot pool (market data only: no tenant column, shared by all
-- organizations like the hive mind).
CREATE TABLE pool_risk (
    region TEXT NOT NULL,
    az TEXT NOT NULL,
    instance_type TEXT NOT NULL,
    probability DOUBLE PRECISION NOT NULL,
    confidence DOUBLE PRECISION NOT NULL,
    action TEXT NOT NULL,
    model TEXT NOT NULL,
    degraded BIGINT NOT NULL,
    scored_at BIGINT NOT NULL,
    PRIMARY KEY (region, az, instance_type)
);

-- User-triggered batches (Optimize Now, risk recompute). apalis carries the delivery; this
-- row carries status, progress and the result shown to users. organization_id is NULL for
-- platform jobs (risk recompute).
CREATE TABLE jobs (
    id TEXT PRIMARY KEY,
    organization_id TEXT,
    kind TEXT NOT NULL,
    target_id TEXT,
    status TEXT NOT NULL,
    progress BIGINT NOT NULL DEFAULT 0,
    message TEXT,
    dry_run BIGINT NOT NULL DEFAULT 0,
    plan TEXT,
    result TEXT,
    requested_by TEXT,
    created_at BIGINT NOT NULL,
    started_at BIGINT,
    finished_at BIGINT
);
CREATE INDEX jobs_org ON jobs(organization_id, created_at);

-- Optimization policy per cluster (the minimal part the optimizer needs).
CREATE TABLE cluster_policies (
    cluster_id TEXT PRIMARY KEY REFERENCES clusters(id) ON DELETE CASCADE,
    organization_id TEXT NOT NULL,
    policy TEXT NOT NULL,
    updated_at BIGINT NOT NULL
);

-- Realised savings of executed actions.
CREATE TABLE savings_records (
    id TEXT PRIMARY KEY,
    organization_id TEXT NOT NULL,
    cluster_id TEXT NOT NULL,
    job_id TEXT NOT NULL,
    action TEXT NOT NULL,
    monthly_savings DOUBLE PRECISION NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX savings_org ON savings_records(organization_id, created_at);
