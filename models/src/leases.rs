//! Renewable leases that give each account actor a single owning replica.

use crate::error::Result;
use crate::{now_ms, Db};

/// Takes or renews the lease of `account_id` for `owner` until now + `ttl_ms`. True when
/// `owner` holds it afterwards (it was free, expired, or already ours).
pub async fn acquire(db: &Db, account_id: &str, owner: &str, ttl_ms: i64) -> Result<bool> {
    let now = now_ms();
    let r = sqlx::query(
        "INSERT INTO actor_leases (account_id, owner, expires_at) VALUES ($1, $2, $3) \
         ON CONFLICT (account_id) DO UPDATE SET owner = excluded.owner, expires_at = excluded.expires_at \
         WHERE actor_leases.owner = excluded.owner OR actor_leases.expires_at < $4",
    )
    .bind(account_id)
    .bind(owner)
    .bind(now + ttl_ms)
    .bind(now)
    .execute(&db.pool)
    .await?;
    Ok(r.rows_affected() == 1)
}

/// Gives a lease up (clean shutdown, account disconnected).
pub async fn release(db: &Db, account_id: &str, owner: &str) -> Result<()> {
    sqlx::query("DELETE FROM actor_leases WHERE account_id = $1 AND owner = $2")
        .bind(account_id)
        .bind(owner)
        .execute(&db.pool)
        .await?;
    Ok(())
}

/// Gives up every lease `owner` holds (the replica is shutting down): other replicas take
/// the accounts at their next lease tick instead of waiting for expiry.
pub async fn release_all(db: &Db, owner: &str) -> Result<u64> {
    let r = sqlx::query("DELETE FROM actor_leases WHERE owner = $1")
        .bind(owner)
        .execute(&db.pool)
        .await?;
    Ok(r.rows_affected())
}

/// Leaves a re-sync request for whichever replica holds the account.
pub async fn request_resync(db: &Db, account_id: &str) -> Result<()> {
    sqlx::query("UPDATE actor_leases SET resync_requested = 1 WHERE account_id = $1")
        .bind(account_id)
        .execute(&db.pool)
        .await?;
    Ok(())
}

/// The holder takes a pending re-sync request (at most once).
pub async fn take_resync(db: &Db, account_id: &str, owner: &str) -> Result<bool> {
    let r = sqlx::query(
        "UPDATE actor_leases SET resync_requested = 0 WHERE account_id = $1 AND owner = $2 AND resync_requested = 1",
    )
    .bind(account_id)
    .bind(owner)
    .execute(&db.pool)
    .await?;
    Ok(r.rows_affected() == 1)
}

/// The current holder, if the lease is live.
pub async fn holder(db: &Db, account_id: &str) -> Result<Option<String>> {
    let row: Option<(String,)> =
        sqlx::query_as("SELECT owner FROM actor_leases WHERE account_id = $1 AND expires_at >= $2")
            .bind(account_id)
            .bind(now_ms())
            .fetch_optional(&db.pool)
            .await?;
    Ok(row.map(|r| r.0))
}
