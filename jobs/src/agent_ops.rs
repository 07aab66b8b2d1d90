//! What jobs ask of a cluster's in-cluster agent: queue a command (idempotent per job and
//! step, so a redelivered job finds its earlier command instead of queueing another),
//! wait for its result, and watch the agent's cluster view for a new node to turn Ready.

use std::time::Duration;

use chrono::Utc;
use serde_json::json;
use spot_agent_protocol::{CommandKind, CommandOutcome};
use spot_models::agents::{self, CommandRecord, CommandStatus};
use spot_models::Db;

/// How long a replacement node may take to register and turn Ready.
pub const NODE_READY_TIMEOUT: Duration = Duration::from_secs(300);
/// Extra time after a command's own deadline before the job stops waiting for it.
const RESULT_GRACE: Duration = Duration::from_secs(30);
const POLL: Duration = Duration::from_millis(250);

/// One step of retiring or replacing a node, as the job's action reports it.
pub fn step(name: &str, detail: serde_json::Value) -> serde_json::Value {
    let mut v = json!({"step": name, "at": Utc::now()});
    if let (Some(o), Some(d)) = (v.as_object_mut(), detail.as_object()) {
        o.extend(d.clone());
    }
    v
}

/// Queues `kind` (idempotent under `key`) and waits until the agent reports its result.
/// `Err` carries a human message (not queued, expired, or no result in time); a command
/// that ran and failed is `Ok` with `CommandOutcome::Failed` in its result.
pub async fn run_command(
    db: &Db,
    org_id: &str,
    cluster_id: &str,
    key: &str,
    kind: &CommandKind,
    timeout: Duration,
    created_by: &str,
) -> Result<CommandRecord, String> {
    let deadline = Utc::now()
        + chrono::Duration::from_std(timeout + RESULT_GRACE)
            .unwrap_or_else(|_| chrono::Duration::seconds(600));
    let cmd = agents::enqueue_command(db, org_id, cluster_id, key, kind, deadline, created_by)
        .await
        .map_err(|e| format!("queueing {} failed: {e}", kind.name()))?
        .ok_or_else(|| "the cluster no longer exists".to_string())?;
    let give_up = tokio::time::Instant::now() + timeout + RESULT_GRACE + RESULT_GRACE;
    loop {
        let _ = agents::expire_commands(db, Some(cluster_id), Utc::now()).await;
        match agents::command(db, org_id, &cmd.id).await {
            Ok(Some(c)) if c.status.is_final() => {
                if c.status == CommandStatus::Expired {
                    return Err(format!(
                        "the agent did not complete {} in time: {}",
                        kind.name(),
                        c.reason.clone().unwrap_or_else(|| "expired".into())
                    ));
                }
                return Ok(c);
            }
            Ok(Some(_)) => {}
            Ok(None) => return Err("the command vanished".into()),
            Err(e) => {
                tracing::warn!(component = crate::COMPONENT, error = %e, "reading a command failed")
            }
        }
        if tokio::time::Instant::now() >= give_up {
            return Err(format!(
                "no result from the agent for {} within {} s",
                kind.name(),
                (timeout + RESULT_GRACE).as_secs()
            ));
        }
        tokio::time::sleep(POLL).await;
    }
}

/// Whether a finished command succeeded, with its message.
pub fn succeeded(c: &CommandRecord) -> (bool, String) {
    match &c.result {
        Some(r) => (r.outcome == CommandOutcome::Succeeded, r.message.clone()),
        None => (
            false,
            c.reason.clone().unwrap_or_else(|| "no result".into()),
        ),
    }
}

/// Waits until the agent's view shows a Ready node for each of `instance_ids`; returns
/// their node names.
pub async fn wait_nodes_ready(
    db: &Db,
    org_id: &str,
    cluster_id: &str,
    instance_ids: &[String],
    timeout: Duration,
) -> Result<Vec<String>, String> {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if let Ok(Some(view)) = agents::cluster_view(db, org_id, cluster_id).await {
            let ready: Vec<String> = instance_ids
                .iter()
                .filter_map(|id| {
                    view.nodes
                        .iter()
                        .find(|n| n.instance_id.as_deref() == Some(id.as_str()) && n.ready)
                        .map(|n| n.name.clone())
                })
                .collect();
            if ready.len() == instance_ids.len() {
                return Ok(ready);
            }
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(format!(
                "replacement node(s) {instance_ids:?} not Ready in the cluster after {} s",
                timeout.as_secs()
            ));
        }
        tokio::time::sleep(POLL).await;
    }
}
