-- Batches on the queue: every item of a waste clean-up job (orphaned volume, unused
-- snapshot, unregistered instance) is a row with its own status, result and error, so a
-- redelivered or resumed job never acts twice on an item that is already done, and the
-- web app can show per-item progress after a reload.
CREATE TABLE job_items (
    job_id TEXT NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,
    -- The cloud id the item acts on (vol-…, snap-…, i-…).
    item_key TEXT NOT NULL,
    organization_id TEXT NOT NULL,
    -- volume, snapshot or instance.
    kind TEXT NOT NULL,
    -- Order of execution within the job (0-based).
    position BIGINT NOT NULL,
    -- The inventory row the item was chosen from, and its account.
    resource_row_id TEXT NOT NULL,
    account_id TEXT NOT NULL,
    -- queued, running, done, failed or skipped.
    status TEXT NOT NULL,
    -- Derived from the job id and the item: the same item always carries the same key.
    idempotency_key TEXT NOT NULL,
    -- USD per month the inventory reported for the resource when the batch was queued.
    expected_monthly_saving DOUBLE PRECISION NOT NULL DEFAULT 0,
    -- USD per month saved once done (0 otherwise, and 0 in a dry run).
    monthly_saving DOUBLE PRECISION NOT NULL DEFAULT 0,
    -- JSON: what the item did (snapshot id, phase, dry-run answers, skip reason).
    result TEXT,
    error TEXT,
    created_at BIGINT NOT NULL,
    started_at BIGINT,
    finished_at BIGINT,
    PRIMARY KEY (job_id, item_key)
);
CREATE INDEX job_items_order ON job_items (job_id, position);
CREATE UNIQUE INDEX job_items_idempotency ON job_items (idempotency_key);

-- Unregistered instances an admin reviewed and chose to keep: they leave the waste list
-- and a terminate batch skips them.
ALTER TABLE instances ADD COLUMN authorized_at BIGINT;
ALTER TABLE instances ADD COLUMN authorized_by TEXT;
