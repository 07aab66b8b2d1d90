-- Job control: a heartbeat and the worker holding each running job (a reaper fails jobs
-- whose worker died), cancellation, safe mode recorded at enqueue, and one active
-- optimization per cluster enforced by the database.
ALTER TABLE jobs ADD COLUMN heartbeat_at BIGINT;
ALTER TABLE jobs ADD COLUMN worker_id TEXT;
ALTER TABLE jobs ADD COLUMN safe_mode BIGINT NOT NULL DEFAULT 0;
ALTER TABLE jobs ADD COLUMN cancel_requested_at BIGINT;

-- Earlier versions could leave an optimization 'running' forever (its process died) and
-- then refuse every later one; keep only the newest active one per cluster.
UPDATE jobs SET status = 'failed',
    message = 'interrupted: the process running this job stopped before it finished',
    finished_at = CAST(EXTRACT(EPOCH FROM now()) * 1000 AS BIGINT)
WHERE kind = 'optimize' AND status IN ('queued', 'running') AND EXISTS (
    SELECT 1 FROM jobs newer
    WHERE newer.kind = 'optimize' AND newer.target_id = jobs.target_id
      AND newer.status IN ('queued', 'running')
      AND (newer.created_at > jobs.created_at
           OR (newer.created_at = jobs.created_at AND newer.id > jobs.id)));

CREATE UNIQUE INDEX jobs_one_active_optimize ON jobs (target_id)
    WHERE kind = 'optimize' AND status IN ('queued', 'running');
CREATE INDEX jobs_running_heartbeat ON jobs (status, heartbeat_at);
