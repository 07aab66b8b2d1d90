-- Client lifecycle, managed by platform super-admins: a blocked organization's members cannot
-- sign in (their sessions are revoked when it is blocked); a soft-deleted one is hidden and
-- refuses sign-ins too, its data kept until the retention purge (restorable before that).
ALTER TABLE organizations ADD COLUMN blocked_at BIGINT;
ALTER TABLE organizations ADD COLUMN blocked_reason TEXT;
ALTER TABLE organizations ADD COLUMN deleted_at BIGINT;
