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
    /// The current root supervisor; replaced by the watchdog when it dies.
    root: Arc<std::sync::RwLock<ActorRef<RootMsg>>>,
    /// Set by a deliberate shutdown so the watchdog does not start a new root.
    stopping: Arc<std::sync::atomic::AtomicBool>,
    /// How many times the root supervisor was restarted.
    root_restarts: Arc<std::sync::atomic::AtomicU32>,
    pub bus: Bus,
    db: spot_models::Db,
    replica_id: String,
}

impl Actors {
    /// Starts the root supervisor and one account actor per linked account. A watchdog
    /// supervises the root itself: if it fails, a new root starts (with backoff, reset after
    /// a healthy period) and takes this replica's accounts again.
    pub async fn start(deps: Deps) -> Result<Actors, ActorError> {
        let bus = deps.bus.clone();
        let db = deps.db.clone();
        let replica_id = deps.replica_id.clone();
        let (root, handle) = Actor::spawn(None, Root, deps.clone())
            .await
            .map_err(|e| ActorError::Spawn(e.to_string()))?;
        let actors = Actors {
            root: Arc::new(std::sync::RwLock::new(root)),
            stopping: Arc::new(std::sync::atomic::AtomicBool::new(false)),
            root_restarts: Arc::new(std::sync::atomic::AtomicU32::new(0)),
            bus,
            db: db.clone(),
            replica_id,
        };
        actors.ensure_all().await?;
        tokio::spawn(actors.clone().watch_root(handle, deps));
        Ok(actors)
    }

    async fn ensure_all(&self) -> Result<(), ActorError> {
        for a in accounts::all_linked(&self.db)
            .await
            .map_err(|e| ActorError::Spawn(e.to_string()))?
        {
            self.ensure(&a.id);
        }
        Ok(())
    }

    /// The root's watchdog: waits for the root to end and, unless this replica is shutting
    /// down, starts a new one and hands it the accounts again.
    async fn watch_root(self, mut handle: tokio::task::JoinHandle<()>, deps: Deps) {
        use std::sync::atomic::Ordering;
        let mut restarts: u32 = 0;
        let mut started = std::time::Instant::now();
        loop {
            let _ = handle.await;
            if self.stopping.load(Ordering::SeqCst) {
                return;
            }
            if started.elapsed() >= supervisor::healthy_period(deps.interval) {
                restarts = 0;
            }
            restarts += 1;
            // A failed actor's children are not stopped by ractor: stop the old root's
            // account actors so the new root does not run each account twice.
            self.root()
                .stop_children_and_wait(
                    Some("root supervisor ended".into()),
                    Some(Duration::from_secs(10)),
                )
                .await;
            let delay = supervisor::backoff(restarts);
            tracing::error!(
                component = "CORE-SUPERVISOR",
                restarts,
                ?delay,
                "root supervisor ended; restarting it"
            );
            self.bus.publish(
                None,
                "actor.root_restarting",
                serde_json::json!({"restarts": restarts}),
            );
            tokio::time::sleep(delay).await;
            if self.stopping.load(Ordering::SeqCst) {
                return;
            }
            match Actor::spawn(None, Root, deps.clone()).await {
                Ok((root, h)) => {
                    *self.root.write().unwrap_or_else(|p| p.into_inner()) = root;
                    self.root_restarts.fetch_add(1, Ordering::SeqCst);
                    handle = h;
                    started = std::time::Instant::now();
                    if let Err(e) = self.ensure_all().await {
                        tracing::error!(component = "CORE-SUPERVISOR", error = %e, "accounts not re-read after the root restart; discovery will retry");
                    }
                }
                Err(e) => {
                    tracing::error!(component = "CORE-SUPERVISOR", error = %e, "root supervisor did not start; retrying");
                    handle = tokio::spawn(async {});
                }
            }
        }
    }

    fn root(&self) -> ActorRef<RootMsg> {
        self.root.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// How many times the root supervisor was restarted by its watchdog.
    pub fn root_restarts(&self) -> u32 {
        self.root_restarts.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Tests: makes the root supervisor fail.
    pub fn inject_root_panic(&self) {
        let _ = self.root().cast(RootMsg::InjectRootPanic);
    }

    pub fn ensure(&self, account_id: &str) {
        let _ = self.root().cast(RootMsg::Ensure(account_id.to_string()));
    }

    pub fn resync(&self, account_id: &str) {
        let _ = self.root().cast(RootMsg::Resync(account_id.to_string()));
    }

    pub fn stop(&self, account_id: &str) {
        let _ = self.root().cast(RootMsg::Stop(account_id.to_string()));
    }

    pub fn inject_panic(&self, account_id: &str) {
        let _ = self
            .root()
            .cast(RootMsg::InjectPanic(account_id.to_string()));
    }

    /// Graduation: makes `m` the current model and broadcasts it to every actor.
    pub fn swap_model(&self, risk: &RiskService, m: Arc<ActiveModel>) {
        risk.set(m.clone());
        let _ = self.root().cast(RootMsg::SwapModel(m));
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
        let _ = self.root().cast(RootMsg::ToCluster(
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
            self.root(),
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
            self.root(),
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
            self.root(),
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
        let _ = self.root().cast(RootMsg::ToCluster(
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
        let _ = self.root().cast(RootMsg::ToCluster(
            account_id.to_string(),
            cluster.to_string(),
            ClusterMsg::Template(template),
        ));
    }

    /// A cluster's policy changed its autoscaling toggle: its actor follows at once (off:
    /// pending pods get no new node).
    pub fn set_autoscaling(&self, account_id: &str, cluster: &str, on: bool) {
        let _ = self.root().cast(RootMsg::ToCluster(
            account_id.to_string(),
            cluster.to_string(),
            ClusterMsg::Autoscaling(on),
        ));
    }

    pub async fn health(&self) -> Result<Vec<ActorHealth>, ActorError> {
        ractor::call_t!(self.root(), RootMsg::Health, 5000)
            .map_err(|e| ActorError::Call(e.to_string()))
    }

    /// Stops every actor. Leases are not released: other replicas take the accounts when
    /// they expire (a crashed replica behaves the same).
    pub fn shutdown(&self) {
        self.stopping
            .store(true, std::sync::atomic::Ordering::SeqCst);
        self.root().stop(None);
    }

    /// Clean stop (SIGTERM): stops every actor, waits for them (at most `timeout`), then
    /// gives up this replica's account leases so another replica takes the accounts at
    /// once rather than when the leases expire. Returns how many leases were released.
    pub async fn shutdown_and_release(&self, timeout: std::time::Duration) -> usize {
        self.stopping
            .store(true, std::sync::atomic::Ordering::SeqCst);
        if let Err(e) = self
            .root()
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
