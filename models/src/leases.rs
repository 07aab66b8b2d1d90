//! Renewable leases that give each account actor a single owning replica.

use crate::error::Result;
use crate::{now_ms, Backend, Db};

/// Takes or renews the lease of `account_id` for `owner` until now + `ttl_ms`. True when
/// `owner` holds it afterwards (it was free, expired, or already ours).
///
/// On SQLite (the embedded default: one replica, one writer) a lease we hold with more than
/// half its period left is not rewritten, so the lease tick does not take the database's
/// write lock for every account every time.
pub async fn acquire(db: &Db, account_id: &str, owner: &str, ttl_ms: i64) -> Result<bool> {
    let now = now_ms();
    if db.backend == Backend::Sqlite {
        let held: Option<(String, i64)> =
            sqlx::query_as("SELECT owner, expires_at FROM actor_leases WHERE account_id = $1")
                .bind(account_id)
                .fetch_optional(&db.pool)
                .await?;
        if held.is_some_and(|(o, exp)| o == owner && exp - now > ttl_ms / 2) {
            return Ok(true);
        }
    }
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

/// The holder takes a pending re-sync request (at most once). Reads first, so the common
/// case (nothing requested) writes nothing.
pub async fn take_resync(db: &Db, account_id: &str, owner: &str) -> Result<bool> {
    let pending: Option<(i64,)> = sqlx::query_as(
        "SELECT resync_requested FROM actor_leases WHERE account_id = $1 AND owner = $2",
    )
    .bind(account_id)
    .bind(owner)
    .fetch_optional(&db.pool)
    .await?;
    if pending.is_none_or(|(r,)| r == 0) {
        return Ok(false);
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    async fn expires(db: &Db, account: &str) -> i64 {
        let (e,): (i64,) =
            sqlx::query_as("SELECT expires_at FROM actor_leases WHERE account_id = $1")
                .bind(account)
                .fetch_one(&db.pool)
                .await
                .expect("lease");
        e
    }

    #[tokio::test]
    async fn sqlite_renews_a_held_lease_only_when_half_spent() {
        let dir = std::env::temp_dir().join(format!("spot-lease-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).expect("dir");
        let db = Db::connect(&format!("sqlite://{}/l.db", dir.display()))
            .await
            .expect("connect");
        db.migrate().await.expect("migrate");
        assert!(acquire(&db, "a", "me", 60_000).await.expect("acquire"));
        let first = expires(&db, "a").await;
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        assert!(acquire(&db, "a", "me", 60_000).await.expect("renew"));
        assert_eq!(
            expires(&db, "a").await,
            first,
            "a fresh lease is not rewritten"
        );
        assert!(!acquire(&db, "a", "other", 60_000).await.expect("other"));
        // Less than half of the period left (60 s of a 200 s period): renewed.
        assert!(acquire(&db, "a", "me", 200_000).await.expect("renew"));
        assert!(expires(&db, "a").await > first + 100_000);
        assert!(!take_resync(&db, "a", "me").await.expect("none"));
        request_resync(&db, "a").await.expect("request");
        assert!(!take_resync(&db, "a", "other").await.expect("not ours"));
        assert!(take_resync(&db, "a", "me").await.expect("take"));
        assert!(!take_resync(&db, "a", "me").await.expect("once"));
    }
}
