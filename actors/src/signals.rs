//! Reactions to spot signals that go through the in-cluster agent: a node whose instance
//! received the two-minute interruption warning is cordoned and drained at once (the
//! Eviction API still respects PodDisruptionBudgets), so its pods move while the node still
//! runs instead of dying with it.

use spot_agent_protocol::CommandKind;
use spot_models::audit::{self, NewAuditRecord};
use spot_models::{agents, inventory};

use crate::system::Deps;

/// Seconds a drain for an interruption may take: the warning comes two minutes ahead.
pub const INTERRUPTION_DRAIN_SECS: u64 = 110;

/// Queues a drain of the node running `instance_id` in `cluster` when the cluster has a
/// connected agent (idempotent per instance: a repeated warning queues nothing new).
/// Returns the command id when one was queued.
pub async fn drain_interrupted(
    deps: &Deps,
    org_id: &str,
    account_id: &str,
    cluster: &str,
    instance_id: &str,
) -> Option<String> {
    let db = &deps.db;
    let clusters = inventory::list_clusters(db, org_id, Some(account_id))
        .await
        .ok()?;
    let cluster_id = clusters.into_iter().find(|c| c.name == cluster)?.id;
    let now = chrono::Utc::now();
    if !agents::is_connected(db, org_id, &cluster_id, now)
        .await
        .unwrap_or(false)
    {
        return None;
    }
    let view = agents::cluster_view(db, org_id, &cluster_id).await.ok()??;
    let node = view
        .nodes
        .iter()
        .find(|n| n.instance_id.as_deref() == Some(instance_id))?
        .name
        .clone();
    let kind = CommandKind::Drain {
        node: node.clone(),
        timeout_secs: INTERRUPTION_DRAIN_SECS,
        grace_period_secs: None,
    };
    let deadline = now + chrono::Duration::seconds(INTERRUPTION_DRAIN_SECS as i64 + 30);
    let cmd = match agents::enqueue_command(
        db,
        org_id,
        &cluster_id,
        &format!("interruption:{instance_id}"),
        &kind,
        deadline,
        "system:spot-interruption",
    )
    .await
    {
        Ok(Some(c)) => c,
        Ok(None) => return None,
        Err(e) => {
            tracing::warn!(component = "SVC-RISK-GLB", error = %e, "drain on interruption not queued");
            return None;
        }
    };
    // A repeated warning finds the command queued by the first: nothing new to record.
    if cmd.created_at.timestamp_millis() < now.timestamp_millis() {
        return Some(cmd.id);
    }
    let rec = NewAuditRecord {
        organization_id: Some(org_id.to_string()),
        actor_kind: "system".into(),
        actor_component: Some("spot-signals".into()),
        action: "agent.drain_on_interruption".into(),
        resource_type: "cluster".into(),
        resource_id: Some(cluster_id.clone()),
        outcome: "success".into(),
        request_id: uuid::Uuid::new_v4().to_string(),
        after: Some(
            serde_json::json!({"node": node, "instance_id": instance_id, "command_id": cmd.id}),
        ),
        ..Default::default()
    };
    if let Err(e) = audit::append(db, rec).await {
        tracing::error!(component = "CORE-AUDIT", error = %e, "audit append failed");
    }
    deps.bus.publish(
        Some(org_id),
        "agent.drain_on_interruption",
        serde_json::json!({"cluster_id": cluster_id, "node": node, "instance_id": instance_id, "command_id": cmd.id}),
    );
    Some(cmd.id)
}
