-- Scale-out: each account actor runs on exactly one replica, the holder of a renewable
-- lease; a dead replica's accounts move when its leases expire. A re-sync asked of another
-- replica is left here for the holder to pick up.
CREATE TABLE actor_leases (
    account_id TEXT PRIMARY KEY,
    owner TEXT NOT NULL,
    expires_at BIGINT NOT NULL,
    resync_requested BIGINT NOT NULL DEFAULT 0
);
