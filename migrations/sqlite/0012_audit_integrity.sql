-- Audit integrity (SQLite).
--
-- * Each chain head also carries the purge watermark (the last purged record's seq and hash),
--   so deleting a prefix, the tail or every row no longer verifies.
-- * `mac` on each record and `head_mac` on each head: HMAC-SHA256 under a key derived from the
--   server's secret key, which the database does not hold, so a rewritten-and-rehashed chain
--   (or a head moved to match a truncated one) no longer verifies. `mac_from` is the first seq
--   that must carry a MAC (records written before this migration have none).
-- * Append-only: UPDATE on audit_logs is refused; DELETE only while the retention purge has
--   set `audit_control.purging` inside its own write transaction. Chain heads only move forward
--   and are never deleted.

ALTER TABLE audit_logs ADD COLUMN mac TEXT;

ALTER TABLE audit_chain_heads ADD COLUMN purged_seq BIGINT NOT NULL DEFAULT 0;
ALTER TABLE audit_chain_heads ADD COLUMN purged_hash TEXT NOT NULL DEFAULT '0000000000000000000000000000000000000000000000000000000000000000';
ALTER TABLE audit_chain_heads ADD COLUMN mac_from BIGINT;
ALTER TABLE audit_chain_heads ADD COLUMN head_mac TEXT;

-- Existing chains: the watermark is what earlier purges left behind.
UPDATE audit_chain_heads SET
    purged_seq = COALESCE(
        (SELECT MIN(l.seq) FROM audit_logs l WHERE l.chain_key = audit_chain_heads.chain_key) - 1,
        seq),
    purged_hash = COALESCE(
        (SELECT l.prev_hash FROM audit_logs l WHERE l.chain_key = audit_chain_heads.chain_key
         ORDER BY l.seq ASC LIMIT 1),
        hash);

-- One row. The retention purge sets `purging` to 1 and back to 0 inside its write
-- transaction; no other connection ever sees it set (SQLite has one writer at a time).
CREATE TABLE audit_control (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    purging INTEGER NOT NULL DEFAULT 0
);
INSERT INTO audit_control (id, purging) VALUES (1, 0);

CREATE TRIGGER audit_logs_no_update BEFORE UPDATE ON audit_logs
BEGIN
    SELECT RAISE(ABORT, 'audit_logs is append-only: UPDATE refused');
END;

CREATE TRIGGER audit_logs_no_delete BEFORE DELETE ON audit_logs
WHEN (SELECT purging FROM audit_control WHERE id = 1) IS NOT 1
BEGIN
    SELECT RAISE(ABORT, 'audit_logs is append-only: DELETE refused outside the retention purge');
END;

CREATE TRIGGER audit_control_no_delete BEFORE DELETE ON audit_control
BEGIN
    SELECT RAISE(ABORT, 'audit_control cannot be deleted');
END;

CREATE TRIGGER audit_chain_heads_no_delete BEFORE DELETE ON audit_chain_heads
BEGIN
    SELECT RAISE(ABORT, 'audit_chain_heads is append-only: DELETE refused');
END;

CREATE TRIGGER audit_chain_heads_forward_only BEFORE UPDATE ON audit_chain_heads
WHEN NEW.chain_key <> OLD.chain_key
    OR NEW.seq < OLD.seq
    OR NEW.purged_seq < OLD.purged_seq
    OR (NEW.purged_seq <> OLD.purged_seq
        AND (SELECT purging FROM audit_control WHERE id = 1) IS NOT 1)
BEGIN
    SELECT RAISE(ABORT, 'audit chain heads only move forward');
END;
