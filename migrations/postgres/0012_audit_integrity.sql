-- Audit integrity (PostgreSQL).
--
-- * Each chain head also carries the purge watermark (the last purged record's seq and hash),
--   so deleting a prefix, the tail or every row no longer verifies.
-- * `mac` on each record and `head_mac` on each head: HMAC-SHA256 under a key derived from the
--   server's secret key, which the database does not hold, so a rewritten-and-rehashed chain
--   (or a head moved to match a truncated one) no longer verifies. `mac_from` is the first seq
--   that must carry a MAC (records written before this migration have none).
-- * Append-only: UPDATE and TRUNCATE on audit_logs are refused; DELETE only inside a
--   transaction of the retention purge, which sets the transaction-local
--   `spot.audit_purge = 'on'`. Chain heads only move forward and are never deleted.

ALTER TABLE audit_logs ADD COLUMN mac TEXT;

ALTER TABLE audit_chain_heads
    ADD COLUMN purged_seq BIGINT NOT NULL DEFAULT 0,
    ADD COLUMN purged_hash TEXT NOT NULL DEFAULT '0000000000000000000000000000000000000000000000000000000000000000',
    ADD COLUMN mac_from BIGINT,
    ADD COLUMN head_mac TEXT;

-- Existing chains: the watermark is what earlier purges left behind.
UPDATE audit_chain_heads SET
    purged_seq = COALESCE(
        (SELECT MIN(l.seq) FROM audit_logs l WHERE l.chain_key = audit_chain_heads.chain_key) - 1,
        seq),
    purged_hash = COALESCE(
        (SELECT l.prev_hash FROM audit_logs l WHERE l.chain_key = audit_chain_heads.chain_key
         ORDER BY l.seq ASC LIMIT 1),
        hash);

CREATE FUNCTION audit_logs_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' AND current_setting('spot.audit_purge', true) = 'on' THEN
        RETURN OLD;
    END IF;
    RAISE EXCEPTION 'audit_logs is append-only: % refused', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END;
$$;

CREATE TRIGGER audit_logs_append_only BEFORE UPDATE OR DELETE ON audit_logs
    FOR EACH ROW EXECUTE FUNCTION audit_logs_append_only();
CREATE TRIGGER audit_logs_no_truncate BEFORE TRUNCATE ON audit_logs
    FOR EACH STATEMENT EXECUTE FUNCTION audit_logs_append_only();

CREATE FUNCTION audit_chain_heads_forward_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE' THEN
        IF NEW.chain_key = OLD.chain_key
            AND NEW.seq >= OLD.seq
            AND NEW.purged_seq >= OLD.purged_seq
            AND (NEW.purged_seq = OLD.purged_seq
                 OR current_setting('spot.audit_purge', true) = 'on') THEN
            RETURN NEW;
        END IF;
    END IF;
    RAISE EXCEPTION 'audit chain heads only move forward: % refused', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END;
$$;

CREATE TRIGGER audit_chain_heads_forward_only BEFORE UPDATE OR DELETE ON audit_chain_heads
    FOR EACH ROW EXECUTE FUNCTION audit_chain_heads_forward_only();
CREATE TRIGGER audit_chain_heads_no_truncate BEFORE TRUNCATE ON audit_chain_heads
    FOR EACH STATEMENT EXECUTE FUNCTION audit_chain_heads_forward_only();
