-- Outbound notifications: per organization settings (a Slack-compatible webhook and e-mail
-- recipients), an outbox of messages (each delivered once by one replica) and a record of
-- every delivery attempt on every channel, failures included.
CREATE TABLE notification_settings (
    organization_id TEXT PRIMARY KEY REFERENCES organizations(id) ON DELETE CASCADE,
    webhook_url TEXT,
    -- JSON array of e-mail addresses.
    email_recipients TEXT NOT NULL DEFAULT '[]',
    pre_sleep_enabled BIGINT NOT NULL DEFAULT 1,
    weekly_report_enabled BIGINT NOT NULL DEFAULT 1,
    updated_by TEXT,
    updated_at BIGINT NOT NULL
);

CREATE TABLE notifications (
    id TEXT PRIMARY KEY,
    organization_id TEXT NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    -- 'pre_sleep' | 'weekly_report' | 'test'
    kind TEXT NOT NULL,
    -- One notification per key and organization (e.g. one pre-sleep notice per scheduled
    -- sleep); NULL: no deduplication.
    dedup_key TEXT,
    subject TEXT NOT NULL,
    text_body TEXT NOT NULL,
    html_body TEXT,
    -- JSON facts for the webhook payload (cluster, sleep time, report id).
    payload TEXT NOT NULL DEFAULT '{}',
    -- 'pending' | 'sending' | 'delivered' | 'partial' | 'failed' | 'skipped'
    status TEXT NOT NULL,
    -- A user id, or 'system' for background sends.
    created_by TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    claimed_by TEXT,
    claimed_at BIGINT,
    finished_at BIGINT,
    -- Why nothing was sent ('skipped') or what failed, in one line.
    summary TEXT
);
CREATE UNIQUE INDEX notifications_dedup ON notifications (organization_id, dedup_key);
CREATE INDEX notifications_status ON notifications (status, created_at);
CREATE INDEX notifications_org ON notifications (organization_id, created_at);

CREATE TABLE notification_attempts (
    id TEXT PRIMARY KEY,
    notification_id TEXT NOT NULL REFERENCES notifications(id) ON DELETE CASCADE,
    organization_id TEXT NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    -- 'webhook' | 'email'
    channel TEXT NOT NULL,
    -- The webhook's host or the recipients.
    target TEXT NOT NULL,
    attempt BIGINT NOT NULL,
    -- 'success' | 'retry' (will be tried again) | 'failed' (gave up)
    outcome TEXT NOT NULL,
    status_code BIGINT,
    error TEXT,
    duration_ms BIGINT NOT NULL,
    at BIGINT NOT NULL
);
CREATE INDEX notification_attempts_notification ON notification_attempts (notification_id, at);
