//! The periodic audit retention purge. It deletes records older than each organization's
//! retention setting and records the purge itself in the organization's chain, as the
//! `system` actor `CORE-AUDIT-RETENTION`, in the same transaction (with the new purge
//! watermark, so `verify` still accounts for every record ever written).

use std::time::Duration;

use spot_models::audit::{self, NewAuditRecord};
use spot_models::{now_ms, Db, DbError};

pub const COMPONENT: &str = "CORE-AUDIT-RETENTION";

/// One pass over every organization with a finite retention. Returns rows purged in total.
pub async fn purge_once(db: &Db) -> Result<i64, DbError> {
    purge_once_at(db, now_ms()).await
}

/// [`purge_once`] as if the clock read `now` (epoch milliseconds).
pub async fn purge_once_at(db: &Db, now: i64) -> Result<i64, DbError> {
    let mut total = 0;
    for (org_id, days) in audit::retention_targets(db).await? {
        let cutoff = now - days * 24 * 3600 * 1000;
        let done = audit::purge_before(db, &org_id, cutoff, |s| NewAuditRecord {
            organization_id: Some(org_id.clone()),
            actor_kind: "system".into(),
            actor_component: Some(COMPONENT.into()),
            action: "audit.retention_purge".into(),
            resource_type: "audit_logs".into(),
            outcome: "success".into(),
            request_id: uuid::Uuid::new_v4().to_string(),
            after: Some(serde_json::json!({
                "purged": s.purged,
                "older_than_ms": s.cutoff_ms,
                "retention_days": days,
                "watermark_seq": s.through_seq,
                "watermark_hash": s.through_hash,
            })),
            ..Default::default()
        })
        .await?;
        if let Some((s, _)) = done {
            total += s.purged;
            tracing::info!(component = COMPONENT, org_id = %org_id, purged = s.purged, watermark_seq = s.through_seq, "audit retention purge");
        }
    }
    Ok(total)
}

/// Runs the purge forever at `interval`; errors are logged and the next pass retries.
pub async fn run(db: Db, interval: Duration) {
    let mut tick = tokio::time::interval(interval);
    loop {
        tick.tick().await;
        if let Err(e) = purge_once(&db).await {
            tracing::error!(component = COMPONENT, error = %e, "audit retention purge failed");
        }
    }
}
