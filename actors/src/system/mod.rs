//! The supervision tree: a root supervisor owns one account actor per linked account; each
//! account actor owns one cluster actor per discovered cluster. A failure (error or panic) in
//! one actor restarts only that actor, with exponential backoff; health shows restarts.
//!
//! - [`supervisor`]: the root actor (account leases, restarts with backoff, health);
//! - [`account`]: one actor per linked account (discovery, spot signals, its clusters);
//! - [`cluster`]: one actor per cluster (the scored market, event-driven decisions);
//! - this module: the shared dependencies and the [`Actors`] handle the API uses.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort, SupervisionEvent};
use serde::Serialize;
use spot_models::accounts::{self, Account};
use spot_models::audit::{self, NewAuditRecord};
use spot_models::crypto::Keyring;
use spot_models::{inventory, leases, Db};

use crate::bus::Bus;
use crate::connect::{CloudConnector, ConnectTarget, Credentials};
use crate::discovery::{self, COMPONENT};
use crate::hive::{PoolId, RiskSignal, RiskTracker};
use crate::react::LaunchDecision;
use crate::risk::{self as risk_svc, ActiveModel, RiskService};
use spot_cloud::Cloud;
use spot_engine::spot::NodeTemplate;

mod account;
mod cluster;
mod supervisor;

pub use account::*;
pub use cluster::*;
pub use supervisor::*;

/// Everything actors need, shared.
#[derive(Clone)]
pub struct Deps {
    pub db: Db,
    pub connector: Arc<dyn CloudConnector>,
    pub keyring: Keyring,
    pub bus: Bus,
    pub hive: Arc<dyn RiskTracker>,
    /// The current risk model; actors copy it at start and on graduation broadcasts.
    pub risk: Arc<RiskService>,
    /// Time between discoveries of an account (default 5 minutes).
    pub interval: Duration,
    /// This replica's identity in account leases.
    pub replica_id: String,
    /// Lease period: an account's actor runs on the replica holding its lease, renewed every
    /// third of it; a dead replica's accounts move once its leases expire.
    pub lease: Duration,
}

#[derive(Debug, thiserror::Error)]
pub enum ActorError {
    #[error("actor system failed to start: {0}")]
    Spawn(String),
    #[error("actor system is not answering: {0}")]
    Call(String),
}

/// Health of one account actor.
#[derive(Debug, Clone, Serialize)]
pub struct ActorHealth {
    pub account_id: String,
    pub organization_id: String,
    /// `running` or `restarting`.
    pub state: String,
    pub restarts: u32,
    pub last_failure: Option<String>,
    pub clusters: usize,
    /// Risk model the account actor decides with (registry id, `shipped:risk-v1` or
    /// `heuristic`).
    pub model: Option<String>,
    /// Risk model of each of its cluster actors.
    pub cluster_models: Vec<String>,
}

pub fn target_of(
    keyring: &Keyring,
    a: &Account,
    ciphertext: Option<String>,
) -> Result<ConnectTarget, String> {
    let region = a.region.clone().unwrap_or_else(|| "us-east-1".into());
    let credentials = match a.method.as_deref() {
        Some("keys") => {
            let stored = ciphertext.ok_or("the account's credentials were removed")?;
            let plain = spot_models::accounts::open_credentials(keyring, &a.id, &stored)
                .map_err(|e| e.to_string())?;
            let v: serde_json::Value = serde_json::from_slice(&plain).map_err(|e| e.to_string())?;
            Credentials::Keys {
                access_key_id: v["access_key_id"].as_str().unwrap_or_default().to_string(),
                secret_access_key: v["secret_access_key"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
            }
        }
        _ => Credentials::Role {
            role_arn: a.role_arn.clone().ok_or("role ARN missing")?,
            external_id: a.external_id.clone().unwrap_or_default(),
        },
    };
    Ok(ConnectTarget {
        region,
        credentials,
    })
}

/// A human sentence for a cloud error, shown on the account card.
pub fn human(e: &spot_cloud::CloudError) -> String {
    use spot_cloud::CloudError;
    match e {
        CloudError::Unauthorized(m) => format!("Access denied: {m}. Check the role's trust policy and external ID, or the access keys."),
        CloudError::Throttled { .. } => "AWS throttled the requests; discovery will retry.".into(),
        other => format!("The cloud API failed: {other}"),
    }
}

// ---------------------------------------------------------------------------------------
// Handle used by the API

#[derive(Clone)]
pub struct Actors {
    root: ActorRef<RootMsg>,
    pub bus: Bus,
    db: spot_models::Db,
    replica_id: String,
}

impl Actors {
    /// Starts the root supervisor and one account actor per linked account.
    pub async fn start(deps: Deps) -> Result<Actors, ActorError> {
        let bus = deps.bus.clone();
        let db = deps.db.clone();
        let replica_id = deps.replica_id.clone();
        let (root, _) = Actor::spawn(None, Root, deps)
            .await
            .map_err(|e| ActorError::Spawn(e.to_string()))?;
        let actors = Actors {
            root,
            bus,
            db: db.clone(),
            replica_id,
        };
        for a in accounts::all_linked(&db)
            .await
            .map_err(|e| ActorError::Spawn(e.to_string()))?
        {
            actors.ensure(&a.id);
        }
        Ok(actors)
    }

    pub fn ensure(&self, account_id: &str) {
        let _ = self.root.cast(RootMsg::Ensure(account_id.to_string()));
    }

    pub fn resync(&self, account_id: &str) {
        let _ = self.root.cast(RootMsg::Resync(account_id.to_string()));
    }

    pub fn stop(&self, account_id: &str) {
        let _ = self.root.cast(RootMsg::Stop(account_id.to_string()));
    }

    pub fn inject_panic(&self, account_id: &str) {
        let _ = self.root.cast(RootMsg::InjectPanic(account_id.to_string()));
    }

    /// Graduation: makes `m` the current model and broadcasts it to every actor.
    pub fn swap_model(&self, risk: &RiskService, m: Arc<ActiveModel>) {
        risk.set(m.clone());
        let _ = self.root.cast(RootMsg::SwapModel(m));
    }

    /// The agent's node conditions reach the cluster actor (see
    /// [`ClusterMsg::NodePressure`]); dropped when the cluster has no actor.
    pub fn node_pressure(
        &self,
        account_id: &str,
        cluster: &str,
        cluster_id: &str,
        reports: Vec<cluster::NodePressureReport>,
        removed: Vec<String>,
        full: bool,
    ) {
        let _ = self.root.cast(RootMsg::ToCluster(
            account_id.to_string(),
            cluster.to_string(),
            ClusterMsg::NodePressure {
                cluster_id: cluster_id.to_string(),
                reports,
                removed,
                full,
            },
        ));
    }

    /// The cluster actor's nodes under pressure.
    pub async fn pressured_nodes(
        &self,
        account_id: &str,
        cluster: &str,
    ) -> Result<Vec<cluster::PressuredNode>, ActorError> {
        let (account_id, cluster) = (account_id.to_string(), cluster.to_string());
        ractor::call_t!(
            self.root,
            |reply| RootMsg::ToCluster(account_id, cluster, ClusterMsg::Pressured(reply)),
            5_000
        )
        .map_err(|e| ActorError::Call(e.to_string()))
    }

    /// Pending pods reach the cluster actor, which decides what to launch from its cached
    /// market (no discovery needed). `None` when the account or cluster has no actor.
    pub async fn pending_pods(
        &self,
        account_id: &str,
        cluster: &str,
        pods: Vec<spot_engine::pack::Pod>,
    ) -> Result<Result<LaunchDecision, String>, ActorError> {
        let (account_id, cluster) = (account_id.to_string(), cluster.to_string());
        ractor::call_t!(
            self.root,
            |reply| RootMsg::ToCluster(
                account_id,
                cluster,
                ClusterMsg::PendingPods {
                    pods,
                    reply: Some(reply)
                }
            ),
            10_000
        )
        .map_err(|e| ActorError::Call(e.to_string()))
    }

    /// Makes the cluster actor evaluate its hibernation schedule now and carry out the
    /// transition it asks for; waits at most `timeout` for the outcome (a sleep that drains
    /// through the agent may take longer and goes on).
    pub async fn hibernate(
        &self,
        account_id: &str,
        cluster: &str,
        timeout: Duration,
    ) -> Result<Result<crate::hibernation::Outcome, String>, ActorError> {
        let (account_id, cluster) = (account_id.to_string(), cluster.to_string());
        ractor::call_t!(
            self.root,
            |reply| RootMsg::ToCluster(
                account_id,
                cluster,
                ClusterMsg::Hibernate {
                    manual: true,
                    reply: Some(reply)
                }
            ),
            timeout.as_millis() as u64
        )
        .map_err(|e| ActorError::Call(e.to_string()))
    }

    /// The cluster's hibernation schedule changed: its actor evaluates it at once.
    pub fn hibernate_soon(&self, account_id: &str, cluster: &str) {
        let _ = self.root.cast(RootMsg::ToCluster(
            account_id.to_string(),
            cluster.to_string(),
            ClusterMsg::Hibernate {
                manual: false,
                reply: None,
            },
        ));
    }

    /// A cluster's policy changed: its actor decides with the new node template from now on.
    pub fn set_template(&self, account_id: &str, cluster: &str, template: NodeTemplate) {
        let _ = self.root.cast(RootMsg::ToCluster(
            account_id.to_string(),
            cluster.to_string(),
            ClusterMsg::Template(template),
        ));
    }

    pub async fn health(&self) -> Result<Vec<ActorHealth>, ActorError> {
        ractor::call_t!(self.root, RootMsg::Health, 5000)
            .map_err(|e| ActorError::Call(e.to_string()))
    }

    /// Stops every actor. Leases are not released: other replicas take the accounts when
    /// they expire (a crashed replica behaves the same).
    pub fn shutdown(&self) {
        self.root.stop(None);
    }

    /// Clean stop (SIGTERM): stops every actor, waits for them (at most `timeout`), then
    /// gives up this replica's account leases so another replica takes the accounts at
    /// once rather than when the leases expire. Returns how many leases were released.
    pub async fn shutdown_and_release(&self, timeout: std::time::Duration) -> usize {
        if let Err(e) = self
            .root
            .stop_and_wait(Some("shutting down".into()), Some(timeout))
            .await
        {
            tracing::warn!(component = "CORE-SUPERVISOR", error = %e, "actors did not stop in time");
        }
        match spot_models::leases::release_all(&self.db, &self.replica_id).await {
            Ok(n) => {
                tracing::info!(
                    component = "CORE-SUPERVISOR",
                    leases = n,
                    "account leases released"
                );
                n as usize
            }
            Err(e) => {
                tracing::warn!(component = "CORE-SUPERVISOR", error = %e, "leases not released; they expire on their own");
                0
            }
        }
    }
}
