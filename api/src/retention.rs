//! The periodic audit retention purge. It deletes records older than each organization's
//! retention setting and records the purge itself in the organization's chain, as the
//! `system` actor `CORE-AUDIT-RETENTION`.

use std::time::Duration;

use spot_models::audit::{self, NewAuditRecord};
use spot_models::{now_ms, Db, DbError};

pub const COMPONENT: &str = "CORE-AUDIT-RETENTION";

/// One pass over every organization with a finite retention. Returns rows purged in total.
pub async fn purge_once(db: &Db) -> Result<i64, DbError> {
    let mut total = 0;
    for (org_id, days) in audit::retention_targets(db).await? {
        let cutoff = now_ms() - days * 24 * 3600 * 1000;
        let purged = audit::purge_before(db, &org_id, cutoff).await?;
        if purged > 0 {
            total += purged;
            audit::append(
                db,
                NewAuditRecord {
                    organization_id: Some(org_id.clone()),
                    actor_kind: "system".into(),
                    actor_component: Some(COMPONENT.into()),
                    action: "audit.retention_purge".into(),
                    resource_type: "audit_logs".into(),
                    outcome: "success".into(),
                    request_id: uuid::Uuid::new_v4().to_string(),
                    after: Some(serde_json::json!({"purged": purged, "older_than_ms": cutoff, "retention_days": days})),
                    ..Default::default()
                },
            )
            .await?;
            tracing::info!(component = COMPONENT, org_id = %org_id, purged, "audit retention purge");
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
