//! Account scan: reads the inventory through the `Cloud` port, reports progress on the
//! account row and finishes `active` (or `error` with a human message). Audited as the system
//! component `WORK-DISC-01`.

use std::sync::Arc;

use spot_cloud::{Cloud, CloudError};
use spot_models::accounts::{self, Account};
use spot_models::audit::{self, NewAuditRecord};

use crate::cloud_connect::{ConnectTarget, Credentials};
use crate::state::AppState;

pub const COMPONENT: &str = "WORK-DISC-01";

#[derive(Debug, Default, Clone, serde::Serialize)]
pub struct Counts {
    pub instances: i64,
    pub clusters: i64,
    pub volumes: i64,
    pub snapshots: i64,
}

/// A human sentence for a cloud error, shown on the account card.
pub fn human(e: &CloudError) -> String {
    match e {
        CloudError::Unauthorized(m) => format!("Access denied: {m}. Check the role's trust policy and external ID, or the access keys."),
        CloudError::Throttled { .. } => "AWS throttled the requests; the scan will be retried.".into(),
        CloudError::NotFound { .. } => format!("A resource was not found: {e}"),
        other => format!("The cloud API failed: {other}"),
    }
}

/// Builds the connect target of a stored account (decrypting keys in memory only).
pub async fn target_of(state: &AppState, a: &Account) -> Result<ConnectTarget, String> {
    let region = a.region.clone().unwrap_or_else(|| "us-east-1".into());
    let credentials = match a.method.as_deref() {
        Some("keys") => {
            let stored = accounts::credentials(&state.db, &a.id).await.map_err(|e| e.to_string())?.ok_or("credentials were removed")?;
            let plain = state.keyring.decrypt(&stored).map_err(|e| e.to_string())?;
            let v: serde_json::Value = serde_json::from_slice(&plain).map_err(|e| e.to_string())?;
            Credentials::Keys {
                access_key_id: v["access_key_id"].as_str().unwrap_or_default().to_string(),
                secret_access_key: v["secret_access_key"].as_str().unwrap_or_default().to_string(),
            }
        }
        _ => Credentials::Role {
            role_arn: a.role_arn.clone().ok_or("role ARN missing")?,
            external_id: a.external_id.clone().unwrap_or_default(),
        },
    };
    Ok(ConnectTarget { region, credentials })
}

async fn progress(state: &AppState, id: &str, phase: &str, pct: i64, c: &Counts) {
    let counts = serde_json::to_string(c).unwrap_or_else(|_| "{}".into());
    if let Err(e) = accounts::set_scan_progress(&state.db, id, phase, pct, &counts).await {
        tracing::warn!(component = COMPONENT, error = %e, "scan progress not saved");
    }
}

async fn read_inventory(state: &AppState, id: &str, cloud: Arc<dyn Cloud>) -> Result<Counts, CloudError> {
    let mut c = Counts::default();
    progress(state, id, "instances", 10, &c).await;
    c.instances = cloud.describe_instances().await?.iter().filter(|i| !matches!(i.state, spot_cloud::InstanceState::Terminated | spot_cloud::InstanceState::ShuttingDown)).count() as i64;
    progress(state, id, "clusters", 40, &c).await;
    c.clusters = cloud.list_eks_clusters().await?.len() as i64;
    progress(state, id, "volumes", 65, &c).await;
    c.volumes = cloud.describe_volumes().await?.len() as i64;
    progress(state, id, "snapshots", 85, &c).await;
    c.snapshots = cloud.describe_snapshots().await?.len() as i64;
    Ok(c)
}

/// Runs one scan of `account` to completion.
pub async fn run(state: AppState, account: Account) {
    let result = match target_of(&state, &account).await {
        Err(msg) => Err(msg),
        Ok(target) => match state.connector.connect(&target).await {
            Err(e) => Err(human(&e)),
            Ok(cloud) => read_inventory(&state, &account.id, cloud).await.map_err(|e| human(&e)),
        },
    };
    let (outcome, after) = match &result {
        Ok(c) => {
            let counts = serde_json::to_string(c).unwrap_or_else(|_| "{}".into());
            if let Err(e) = accounts::finish_scan(&state.db, &account.id, &counts).await {
                tracing::error!(component = COMPONENT, error = %e, "scan result not saved");
            }
            ("success", serde_json::json!({"status": "active", "counts": c}))
        }
        Err(msg) => {
            if let Err(e) = accounts::mark_error(&state.db, &account.id, msg).await {
                tracing::error!(component = COMPONENT, error = %e, "scan error not saved");
            }
            ("failed", serde_json::json!({"status": "error", "message": msg}))
        }
    };
    tracing::info!(component = COMPONENT, account_id = %account.id, outcome, "account scan finished");
    let rec = NewAuditRecord {
        organization_id: Some(account.organization_id.clone()),
        actor_kind: "system".into(),
        actor_component: Some(COMPONENT.into()),
        action: "account.scan".into(),
        resource_type: "account".into(),
        resource_id: Some(account.id.clone()),
        outcome: outcome.into(),
        request_id: uuid::Uuid::new_v4().to_string(),
        after: Some(after),
        ..Default::default()
    };
    if let Err(e) = audit::append(&state.db, rec).await {
        tracing::error!(component = "CORE-AUDIT", error = %e, "audit append failed");
    }
}

/// Starts a scan in the background (the actor system replaces this with supervised account
/// actors).
pub fn spawn(state: &AppState, account: Account) {
    tokio::spawn(run(state.clone(), account));
}
