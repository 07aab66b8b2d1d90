-- Scan progress for linked accounts (the onboarding progress bar).
ALTER TABLE accounts ADD COLUMN scan_phase TEXT;
ALTER TABLE accounts ADD COLUMN scan_progress BIGINT NOT NULL DEFAULT 0;
ALTER TABLE accounts ADD COLUMN scan_counts TEXT;
ALTER TABLE accounts ADD COLUMN disconnected_at BIGINT;
