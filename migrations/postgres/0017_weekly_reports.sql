-- Weekly reports (stored as rendered HTML and text with the figures they show) and the
-- organization's efficiency grade per week (the report's trend).
CREATE TABLE weekly_reports (
    id TEXT PRIMARY KEY,
    organization_id TEXT NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    -- 'scheduled' (the weekly job, one per week) | 'manual' ("send now")
    kind TEXT NOT NULL,
    -- The week covered: Monday 00:00 UTC to the next Monday (manual: to the moment of the run).
    period_start BIGINT NOT NULL,
    period_end BIGINT NOT NULL,
    -- JSON: the figures the report shows.
    figures TEXT NOT NULL,
    subject TEXT NOT NULL,
    html TEXT NOT NULL,
    text_body TEXT NOT NULL,
    notification_id TEXT,
    created_by TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE UNIQUE INDEX weekly_reports_one_scheduled ON weekly_reports (organization_id, period_start) WHERE kind = 'scheduled';
CREATE INDEX weekly_reports_org ON weekly_reports (organization_id, period_start);

CREATE TABLE efficiency_grades (
    organization_id TEXT NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    -- Monday 00:00 UTC of the week.
    week_start BIGINT NOT NULL,
    score DOUBLE PRECISION,
    grade TEXT,
    recorded_at BIGINT NOT NULL,
    PRIMARY KEY (organization_id, week_start)
);
