//! The sweeps every replica runs: agent commands whose deadline passed are expired (never
//! claimed) or failed (claimed, no result) even when nobody reads them, each audited as the
//! `system` actor `CORE-AGENT-SWEEP`; and the job reaper, which fails running jobs whose
//! worker stopped beating (audited `job.reaped`).

use std::time::Duration;

use chrono::Utc;
use spot_models::audit::{self, NewAuditRecord};
use spot_models::{agents, Db, DbError};

pub const COMPONENT: &str = "CORE-AGENT-SWEEP";

/// One pass over every cluster. Returns the commands it expired or failed.
pub async fn sweep_once(db: &Db) -> Result<usize, DbError> {
    let changed = agents::expire_commands(db, None, Utc::now()).await?;
    for c in &changed {
        audit::append(
            db,
            NewAuditRecord {
                organization_id: Some(c.organization_id.clone()),
                actor_kind: "system".into(),
                actor_component: Some(COMPONENT.into()),
                action: "agent.command_expired".into(),
                resource_type: "agent_command".into(),
                resource_id: Some(c.id.clone()),
                outcome: "success".into(),
                request_id: uuid::Uuid::new_v4().to_string(),
                after: Some(serde_json::json!({
                    "cluster_id": c.cluster_id,
                    "status": c.status,
                    "reason": c.reason,
                    "deadline": c.deadline,
                })),
                ..Default::default()
            },
        )
        .await?;
    }
    Ok(changed.len())
}

/// Runs [`sweep_once`] and the job reaper every `interval`.
pub async fn run(db: Db, interval: Duration) {
    let mut tick = tokio::time::interval(interval);
    loop {
        tick.tick().await;
        match spot_jobs::reap_orphans(&db).await {
            Ok(0) => {}
            Ok(n) => tracing::warn!(component = COMPONENT, jobs = n, "orphaned jobs failed"),
            Err(e) => tracing::warn!(component = COMPONENT, error = %e, "job reaper failed"),
        }
        match sweep_once(&db).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(
                component = COMPONENT,
                commands = n,
                "agent commands past their deadline closed"
            ),
            Err(e) => {
                tracing::warn!(component = COMPONENT, error = %e, "agent command sweep failed")
            }
        }
    }
}
