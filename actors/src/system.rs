//! The supervision tree: a root supervisor owns one account actor per linked account; each
//! account actor owns one cluster actor per discovered cluster. A failure (error or panic) in
//! one actor restarts only that actor, with exponential backoff; health shows restarts.

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

/// Days of usage history read when an account is first linked.
pub const HISTORY_DAYS: i64 = 14;

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

// ---------------------------------------------------------------------------------------
// Root supervisor

pub enum RootMsg {
    /// Start (or keep) the actor of an account and run a discovery now.
    Ensure(String),
    Resync(String),
    Stop(String),
    Restart(String),
    /// Fault injection for resilience drills: the account actor panics.
    InjectPanic(String),
    Health(RpcReplyPort<Vec<ActorHealth>>),
    /// Lease renewal: take free accounts, renew ours, stop the actors of lost ones.
    LeaseTick,
    /// Graduation broadcast: every account (and through it every cluster) actor swaps.
    SwapModel(Arc<ActiveModel>),
    /// Forward to a cluster actor of an account.
    ToCluster(String, String, ClusterMsg),
}

struct Root;

struct Child {
    actor: Option<ActorRef<AccountMsg>>,
    org_id: String,
    restarts: u32,
    last_failure: Option<String>,
    clusters: usize,
}

struct RootState {
    deps: Deps,
    children: HashMap<String, Child>,
}

fn backoff(restarts: u32) -> Duration {
    Duration::from_millis((250u64 << restarts.min(7)).min(30_000))
}

async fn spawn_account(
    myself: &ActorRef<RootMsg>,
    deps: &Deps,
    account_id: &str,
) -> Result<ActorRef<AccountMsg>, ActorProcessingErr> {
    let (r, _) = Actor::spawn_linked(
        None,
        AccountActor,
        (deps.clone(), account_id.to_string()),
        myself.get_cell(),
    )
    .await?;
    Ok(r)
}

/// Starts (or restarts) the actor of an account this replica holds the lease of.
async fn start_child(
    myself: &ActorRef<RootMsg>,
    st: &mut RootState,
    id: &str,
) -> Result<(), ActorProcessingErr> {
    let org_id = accounts::by_id(&st.deps.db, id)
        .await
        .ok()
        .flatten()
        .map(|a| a.organization_id)
        .unwrap_or_default();
    let actor = spawn_account(myself, &st.deps, id).await?;
    let child = st.children.entry(id.to_string()).or_insert(Child {
        actor: None,
        org_id,
        restarts: 0,
        last_failure: None,
        clusters: 0,
    });
    child.actor = Some(actor);
    Ok(())
}

/// Renews this replica's leases, takes accounts whose lease is free or expired (a dead
/// replica's), stops the actors of accounts another replica took, and runs re-syncs other
/// replicas were asked for.
async fn lease_tick(
    myself: &ActorRef<RootMsg>,
    st: &mut RootState,
) -> Result<(), ActorProcessingErr> {
    let linked = match accounts::all_linked(&st.deps.db).await {
        Ok(l) => l,
        Err(e) => {
            tracing::warn!(component = "CORE-SUPERVISOR", error = %e, "lease renewal skipped");
            return Ok(());
        }
    };
    let ttl = st.deps.lease.as_millis() as i64;
    for a in linked {
        match leases::acquire(&st.deps.db, &a.id, &st.deps.replica_id, ttl).await {
            Ok(true) => {
                if !st.children.contains_key(&a.id) {
                    tracing::info!(component = "CORE-SUPERVISOR", account_id = %a.id, replica = %st.deps.replica_id, "account lease taken; starting its actor");
                    start_child(myself, st, &a.id).await?;
                }
                if leases::take_resync(&st.deps.db, &a.id, &st.deps.replica_id)
                    .await
                    .unwrap_or(false)
                {
                    if let Some(actor) = st.children.get(&a.id).and_then(|c| c.actor.clone()) {
                        let _ = actor.cast(AccountMsg::Discover);
                    }
                }
            }
            Ok(false) => {
                if let Some(c) = st.children.remove(&a.id) {
                    tracing::warn!(component = "CORE-SUPERVISOR", account_id = %a.id, "account lease lost to another replica; stopping its actor here");
                    if let Some(actor) = c.actor {
                        actor.stop(Some("lease lost".into()));
                    }
                }
            }
            Err(e) => {
                tracing::warn!(component = "CORE-SUPERVISOR", account_id = %a.id, error = %e, "lease renewal failed")
            }
        }
    }
    Ok(())
}

#[ractor::async_trait]
impl Actor for Root {
    type Msg = RootMsg;
    type State = RootState;
    type Arguments = Deps;

    async fn pre_start(
        &self,
        myself: ActorRef<Self::Msg>,
        deps: Deps,
    ) -> Result<RootState, ActorProcessingErr> {
        myself.send_interval((deps.lease / 3).max(Duration::from_millis(100)), || {
            RootMsg::LeaseTick
        });
        Ok(RootState {
            deps,
            children: HashMap::new(),
        })
    }

    async fn handle(
        &self,
        myself: ActorRef<Self::Msg>,
        msg: RootMsg,
        st: &mut RootState,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            RootMsg::Ensure(id) | RootMsg::Resync(id) => {
                let running = st.children.get(&id).and_then(|c| c.actor.clone());
                match running {
                    Some(a) => {
                        let _ = a.cast(AccountMsg::Discover);
                    }
                    None => {
                        let ttl = st.deps.lease.as_millis() as i64;
                        match leases::acquire(&st.deps.db, &id, &st.deps.replica_id, ttl).await {
                            Ok(true) => start_child(&myself, st, &id).await?,
                            Ok(false) => {
                                // Another replica runs this account: leave it the request.
                                tracing::info!(component = "CORE-SUPERVISOR", account_id = %id, "account is leased by another replica; re-sync handed over");
                                if let Err(e) = leases::request_resync(&st.deps.db, &id).await {
                                    tracing::warn!(component = "CORE-SUPERVISOR", account_id = %id, error = %e, "re-sync request not saved");
                                }
                            }
                            Err(e) => {
                                tracing::warn!(component = "CORE-SUPERVISOR", account_id = %id, error = %e, "lease unavailable")
                            }
                        }
                    }
                }
            }
            RootMsg::LeaseTick => lease_tick(&myself, st).await?,
            RootMsg::Stop(id) => {
                if let Some(c) = st.children.remove(&id) {
                    if let Some(a) = c.actor {
                        a.stop(Some("account disconnected".into()));
                    }
                }
                let _ = leases::release(&st.deps.db, &id, &st.deps.replica_id).await;
            }
            RootMsg::Restart(id) => {
                if st.children.get(&id).is_some_and(|c| c.actor.is_none()) {
                    let actor = spawn_account(&myself, &st.deps, &id).await?;
                    if let Some(c) = st.children.get_mut(&id) {
                        c.actor = Some(actor);
                    }
                }
            }
            RootMsg::InjectPanic(id) => {
                if let Some(a) = st.children.get(&id).and_then(|c| c.actor.clone()) {
                    let _ = a.cast(AccountMsg::Panic);
                }
            }
            RootMsg::ToCluster(account, cluster, msg) => {
                if let Some(a) = st.children.get(&account).and_then(|c| c.actor.clone()) {
                    let _ = a.cast(AccountMsg::ToCluster(cluster, msg));
                }
            }
            RootMsg::SwapModel(m) => {
                for c in st.children.values() {
                    if let Some(a) = &c.actor {
                        let _ = a.cast(AccountMsg::SwapModel(m.clone()));
                    }
                }
            }
            RootMsg::Health(reply) => {
                let mut out = Vec::new();
                for (id, c) in &st.children {
                    let clusters = match &c.actor {
                        Some(a) => {
                            ractor::call_t!(a, AccountMsg::Clusters, 1000).unwrap_or(c.clusters)
                        }
                        None => c.clusters,
                    };
                    let (model, cluster_models) = match &c.actor {
                        Some(a) => match ractor::call_t!(a, AccountMsg::Models, 2000) {
                            Ok((m, cm)) => (Some(m), cm),
                            Err(_) => (None, Vec::new()),
                        },
                        None => (None, Vec::new()),
                    };
                    out.push(ActorHealth {
                        account_id: id.clone(),
                        organization_id: c.org_id.clone(),
                        state: if c.actor.is_some() {
                            "running"
                        } else {
                            "restarting"
                        }
                        .into(),
                        restarts: c.restarts,
                        last_failure: c.last_failure.clone(),
                        clusters,
                        model,
                        cluster_models,
                    });
                }
                out.sort_by(|a, b| a.account_id.cmp(&b.account_id));
                let _ = reply.send(out);
            }
        }
        Ok(())
    }

    async fn handle_supervisor_evt(
        &self,
        myself: ActorRef<Self::Msg>,
        evt: SupervisionEvent,
        st: &mut RootState,
    ) -> Result<(), ActorProcessingErr> {
        let (cell, failure) = match evt {
            SupervisionEvent::ActorFailed(cell, err) => (cell, Some(err.to_string())),
            SupervisionEvent::ActorTerminated(cell, _, _) => (cell, None),
            _ => return Ok(()),
        };
        let Some((id, child)) = st.children.iter_mut().find(|(_, c)| {
            c.actor
                .as_ref()
                .is_some_and(|a| a.get_id() == cell.get_id())
        }) else {
            return Ok(());
        };
        child.actor = None;
        if let Some(reason) = failure {
            child.restarts += 1;
            child.last_failure = Some(reason.clone());
            let delay = backoff(child.restarts);
            tracing::error!(component = "CORE-SUPERVISOR", account_id = %id, restarts = child.restarts, ?delay, %reason, "account actor failed; restarting");
            st.deps.bus.publish(
                Some(&child.org_id),
                "actor.restarting",
                serde_json::json!({"account_id": id, "restarts": child.restarts, "reason": reason}),
            );
            let id = id.clone();
            myself.send_after(delay, move || RootMsg::Restart(id));
        } else {
            // A clean stop (disconnect or account gone): forget it.
            let id = id.clone();
            st.children.remove(&id);
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------
// Account actor

pub enum AccountMsg {
    Discover,
    /// Read the spot signals since the last poll.
    Signals,
    Clusters(RpcReplyPort<usize>),
    /// The account's model id and its cluster actors' model ids.
    Models(RpcReplyPort<(String, Vec<String>)>),
    SwapModel(Arc<ActiveModel>),
    /// Forward to one cluster actor (dropped, with its reply port, if there is none).
    ToCluster(String, ClusterMsg),
    Panic,
}

struct AccountActor;

pub struct AccountState {
    deps: Deps,
    account_id: String,
    clusters: HashMap<String, ActorRef<ClusterMsg>>,
    last_events: chrono::DateTime<chrono::Utc>,
    consecutive_errors: u32,
    model: Arc<ActiveModel>,
    org_id: String,
    market: Option<Arc<crate::market::Market>>,
    /// The cloud connection of the last successful discovery (for the signal tick).
    cloud: Option<Arc<dyn Cloud>>,
    /// Instances of the last discovery by id.
    instances: HashMap<String, SeenInstance>,
    /// Signals already handled at `last_events` (instance id, kind).
    seen_events: std::collections::HashSet<(String, String)>,
}

#[ractor::async_trait]
impl Actor for AccountActor {
    type Msg = AccountMsg;
    type State = AccountState;
    type Arguments = (Deps, String);

    async fn pre_start(
        &self,
        myself: ActorRef<AccountMsg>,
        (deps, account_id): (Deps, String),
    ) -> Result<AccountState, ActorProcessingErr> {
        myself.cast(AccountMsg::Discover)?;
        myself.send_interval(deps.interval, || AccountMsg::Discover);
        myself.send_interval(deps.interval.min(SIGNAL_INTERVAL), || AccountMsg::Signals);
        let org_id = accounts::by_id(&deps.db, &account_id)
            .await
            .ok()
            .flatten()
            .map(|a| a.organization_id)
            .unwrap_or_default();
        Ok(AccountState {
            org_id,
            market: None,
            model: deps.risk.current(),
            deps,
            account_id,
            clusters: HashMap::new(),
            last_events: chrono::Utc::now() - chrono::Duration::hours(1),
            consecutive_errors: 0,
            cloud: None,
            instances: HashMap::new(),
            seen_events: Default::default(),
        })
    }

    async fn handle(
        &self,
        myself: ActorRef<AccountMsg>,
        msg: AccountMsg,
        st: &mut AccountState,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            AccountMsg::Discover => discover_account(&myself, st).await,
            AccountMsg::Signals => {
                signal_tick(&myself, st).await;
                Ok(())
            }
            AccountMsg::Clusters(reply) => {
                let _ = reply.send(st.clusters.len());
                Ok(())
            }
            AccountMsg::Models(reply) => {
                let mut cm = Vec::new();
                for c in st.clusters.values() {
                    if let Ok(id) = ractor::call_t!(c, ClusterMsg::Model, 1000) {
                        cm.push(id);
                    }
                }
                let _ = reply.send((st.model.id.clone(), cm));
                Ok(())
            }
            AccountMsg::SwapModel(m) => {
                tracing::info!(component = risk_svc::COMPONENT, account_id = %st.account_id, from = %st.model.id, to = %m.id, "risk model swapped");
                for c in st.clusters.values() {
                    let _ = c.cast(ClusterMsg::SwapModel(m.clone()));
                }
                st.model = m;
                Ok(())
            }
            AccountMsg::ToCluster(name, msg) => {
                if let Some(c) = st.clusters.get(&name) {
                    let _ = c.cast(msg);
                }
                Ok(())
            }
            AccountMsg::Panic => panic!("injected fault in account actor {}", st.account_id),
        }
    }
}

/// Builds the connect target of a stored account (keys are decrypted in memory only).
pub fn target_of(
    keyring: &Keyring,
    a: &Account,
    ciphertext: Option<String>,
) -> Result<ConnectTarget, String> {
    let region = a.region.clone().unwrap_or_else(|| "us-east-1".into());
    let credentials = match a.method.as_deref() {
        Some("keys") => {
            let stored = ciphertext.ok_or("the account's credentials were removed")?;
            let plain = keyring.decrypt(&stored).map_err(|e| e.to_string())?;
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

async fn audit_system(
    db: &Db,
    org_id: &str,
    account_id: &str,
    action: &str,
    outcome: &str,
    after: serde_json::Value,
) {
    let rec = NewAuditRecord {
        organization_id: Some(org_id.to_string()),
        actor_kind: "system".into(),
        actor_component: Some(COMPONENT.into()),
        action: action.into(),
        resource_type: "account".into(),
        resource_id: Some(account_id.to_string()),
        outcome: outcome.into(),
        request_id: uuid::Uuid::new_v4().to_string(),
        after: Some(after),
        ..Default::default()
    };
    if let Err(e) = audit::append(db, rec).await {
        tracing::error!(component = "CORE-AUDIT", error = %e, "audit append failed");
    }
}

async fn discover_account(
    myself: &ActorRef<AccountMsg>,
    st: &mut AccountState,
) -> Result<(), ActorProcessingErr> {
    let deps = st.deps.clone();
    let Some(account) = accounts::by_id(&deps.db, &st.account_id).await? else {
        myself.stop(Some("account deleted".into()));
        return Ok(());
    };
    if account.status == "disconnected" || account.aws_account_id.is_none() {
        myself.stop(Some("account disconnected".into()));
        return Ok(());
    }
    let org = account.organization_id.clone();
    let first = account.status != "active";
    if first {
        accounts::set_scanning(&deps.db, &account.id).await?;
    }
    deps.bus.publish(
        Some(&org),
        "scan.progress",
        serde_json::json!({"account_id": account.id, "phase": "connecting", "progress": 5}),
    );
    let started = std::time::Instant::now();
    let model = st.model.clone();
    let ciphertext = accounts::credentials(&deps.db, &account.id).await?;
    let outcome: Result<(inventory::ApplyReport, Vec<String>), String> = async {
        let target = target_of(&deps.keyring, &account, ciphertext)?;
        let cloud = deps.connector.connect(&target).await.map_err(|e| human(&e))?;
        let bus = deps.bus.clone();
        let db = deps.db.clone();
        let (acc_id, org_id) = (account.id.clone(), org.clone());
        let progress = move |phase: &str, pct: i64| {
            bus.publish(Some(&org_id), "scan.progress", serde_json::json!({"account_id": acc_id, "phase": phase, "progress": pct}));
            let (db, acc_id, phase) = (db.clone(), acc_id.clone(), phase.to_string());
            if first {
                tokio::spawn(async move {
                    let _ = accounts::set_scan_progress(&db, &acc_id, &phase, pct, "{}").await;
                });
            }
        };
        let mut snap = discovery::discover(cloud.as_ref(), &progress).await.map_err(|e| human(&e))?;
        // The in-cluster agents' views are the source of nodes, pods and usage.
        if let Err(e) = discovery::overlay_agent_views(&deps.db, &org, &account.id, &mut snap).await {
            tracing::warn!(component = COMPONENT, error = %e, "agent views not read; cloud figures kept");
        }
        let names = snap.clusters.iter().map(|c| c.name.clone()).collect();
        let report = inventory::apply(&deps.db, &org, &account.id, &snap).await.map_err(|e| format!("saving the inventory failed: {e}"))?;
        // MOD-AI-01: score every pool the account runs in, with this actor's model.
        let pools: std::collections::HashSet<(String, String)> = snap
            .instances
            .iter()
            .filter(|i| i.state == "running")
            .map(|i| (i.instance_type.clone(), i.az.clone()))
            .collect();
        // Accounts with clusters read the whole market (every pool scored) for their cluster
        // actors' event reactions; others score only the pools they run in.
        let mut market = None;
        let scored = if snap.clusters.is_empty() {
            risk_svc::score_pools(cloud.as_ref(), &model, deps.hive.as_ref(), &pools).await.map_err(|e| e.to_string())
        } else {
            match crate::market::read(cloud.as_ref(), &model, deps.hive.as_ref()).await {
                Ok(m) => {
                    let rows = m.scores.clone();
                    market = Some(Arc::new(m));
                    Ok(rows)
                }
                Err(e) => Err(e.to_string()),
            }
        };
        st.market = market;
        match scored {
            Ok(rows) => match spot_models::risk::upsert_pool_risk(&deps.db, &rows).await {
                Ok(n) => deps.bus.publish(Some(&org), "risk.scored", serde_json::json!({"account_id": account.id, "pools": n, "model": model.id})),
                Err(e) => tracing::warn!(component = risk_svc::COMPONENT, error = %e, "pool scores not saved"),
            },
            Err(e) => tracing::warn!(component = risk_svc::COMPONENT, error = %e, "pools not scored"),
        }
        if first {
            progress("history", 95);
            match discovery::backfill(cloud.as_ref(), &snap, HISTORY_DAYS).await {
                Ok(points) => {
                    // SQLite can report "database is locked" under concurrent writers; the
                    // history is only read once, so retry briefly instead of losing it.
                    for attempt in 1..=5u64 {
                        match inventory::insert_metrics(&deps.db, &org, &account.id, &points).await {
                            Ok(_) => break,
                            Err(e) if attempt < 5 => {
                                tracing::debug!(component = COMPONENT, error = %e, attempt, "history insert retry");
                                tokio::time::sleep(Duration::from_millis(200 * attempt)).await;
                            }
                            Err(e) => tracing::warn!(component = COMPONENT, error = %e, "history not saved"),
                        }
                    }
                }
                Err(e) => tracing::warn!(component = COMPONENT, error = %e, "history unavailable"),
            }
        }
        // What the signal tick needs between discoveries: the connected cloud and which
        // cluster each instance belongs to.
        st.instances = snap
            .instances
            .iter()
            .map(|i| {
                (
                    i.instance_id.clone(),
                    SeenInstance {
                        cluster: i.cluster_name.clone(),
                        running_spot: i.lifecycle == "spot" && i.state == "running",
                    },
                )
            })
            .collect();
        st.cloud = Some(cloud.clone());
        poll_signals(myself, st, cloud.as_ref(), &account, &target.region).await;
        Ok((report, names))
    }
    .await;
    match outcome {
        Ok((report, names)) => {
            st.consecutive_errors = 0;
            let counts = serde_json::json!({"instances": report.instances.total, "clusters": report.clusters.total, "volumes": report.volumes.total, "snapshots": report.snapshots.total});
            accounts::finish_scan(&deps.db, &account.id, &counts.to_string()).await?;
            accounts::touch_sync(&deps.db, &account.id).await?;
            ensure_clusters(myself, st, &names).await;
            if let Some(m) = &st.market {
                for c in st.clusters.values() {
                    let _ = c.cast(ClusterMsg::Market(m.clone()));
                }
            }
            // Each cluster actor decides with its cluster's stored node template.
            if let Ok(views) = inventory::list_clusters(&deps.db, &org, Some(&account.id)).await {
                for v in views {
                    if let Some(actor) = st.clusters.get(&v.name) {
                        let template =
                            match spot_models::jobs::cluster_policy(&deps.db, &org, &v.id).await {
                                Ok(Some(s)) => crate::policy::ClusterPolicy::from_json(&s)
                                    .map(|p| p.template)
                                    .unwrap_or_default(),
                                _ => NodeTemplate::default(),
                            };
                        let _ = actor.cast(ClusterMsg::Template(template));
                    }
                }
            }
            let ms = started.elapsed().as_millis() as i64;
            tracing::info!(component = COMPONENT, account_id = %account.id, ms, ?report, "discovery finished");
            deps.bus.publish(Some(&org), "scan.progress", serde_json::json!({"account_id": account.id, "phase": "done", "progress": 100, "counts": counts}));
            deps.bus.publish(
                Some(&org),
                "account.status",
                serde_json::json!({"account_id": account.id, "status": "active"}),
            );
            let changed = report.instances.new
                + report.instances.changed
                + report.instances.gone
                + report.clusters.new
                + report.clusters.gone
                + report.volumes.new
                + report.volumes.gone
                + report.snapshots.new
                + report.snapshots.gone;
            if changed > 0 {
                deps.bus.publish(
                    Some(&org),
                    "inventory.changed",
                    serde_json::to_value(&report).unwrap_or_default(),
                );
            }
            if first || changed > 0 {
                audit_system(&deps.db, &org, &account.id, "account.discovery", "success", serde_json::json!({"status": "active", "counts": counts, "diff": report, "duration_ms": ms})).await;
            }
        }
        Err(msg) => {
            st.consecutive_errors += 1;
            tracing::warn!(component = COMPONENT, account_id = %account.id, error = %msg, "discovery failed");
            accounts::mark_error(&deps.db, &account.id, &msg).await?;
            deps.bus.publish(
                Some(&org),
                "account.status",
                serde_json::json!({"account_id": account.id, "status": "error", "message": msg}),
            );
            if st.consecutive_errors == 1 {
                audit_system(
                    &deps.db,
                    &org,
                    &account.id,
                    "account.discovery",
                    "failed",
                    serde_json::json!({"status": "error", "message": msg}),
                )
                .await;
            }
        }
    }
    Ok(())
}

/// An instance as the last discovery saw it.
#[derive(Debug, Clone)]
struct SeenInstance {
    cluster: Option<String>,
    running_spot: bool,
}

/// Reads the account's spot signals since the last poll (every [`SIGNAL_INTERVAL`] and
/// after each discovery): interruption and rebalance notices flag the pool in the
/// cross-tenant risk tracker (pool ids only), an interruption makes the node's cluster
/// actor decide its replacement and drains the node through the agent at once, and a spot
/// node that left unexpectedly triggers a discovery.
async fn poll_signals(
    myself: &ActorRef<AccountMsg>,
    st: &mut AccountState,
    cloud: &dyn Cloud,
    account: &Account,
    region: &str,
) {
    let deps = st.deps.clone();
    let org = account.organization_id.clone();
    let events = match cloud.poll_events(st.last_events).await {
        Ok(e) => e,
        Err(e) => {
            tracing::debug!(component = COMPONENT, account_id = %account.id, error = %e, "spot signals not read");
            return;
        }
    };
    let mut stale = false;
    for ev in events {
        // A notice already handled (polls overlap by the event time's resolution).
        if ev.time <= st.last_events
            && st
                .seen_events
                .contains(&(ev.instance_id.clone(), format!("{:?}", ev.kind)))
        {
            continue;
        }
        let (signal, kind) = match ev.kind {
            spot_cloud::SpotEventKind::InterruptionNotice => {
                (Some(RiskSignal::Interruption), "spot.interruption")
            }
            spot_cloud::SpotEventKind::RebalanceRecommendation => {
                (Some(RiskSignal::Rebalance), "spot.rebalance")
            }
            // Retirement / maintenance: the node should move as on a rebalance, but it
            // says nothing about the spot market, so the pool is not flagged.
            spot_cloud::SpotEventKind::ScheduledChange => (None, "spot.scheduled_change"),
            // A spot node discovery still saw running has left it: the inventory is
            // stale, discover again (once per poll).
            spot_cloud::SpotEventKind::InstanceStateChange { .. } => {
                stale |= st
                    .instances
                    .get(&ev.instance_id)
                    .is_some_and(|i| i.running_spot);
                (None, "instance.state_changed")
            }
        };
        let pool = PoolId {
            region: region.to_string(),
            az: ev.az.clone(),
            instance_type: ev.instance_type.clone(),
        };
        if let Some(signal) = signal {
            if let Err(e) = deps.hive.flag(&pool, signal, ev.time).await {
                tracing::warn!(component = "SVC-RISK-GLB", error = %e, "risk tracker unavailable");
            }
        }
        deps.bus.publish(Some(&org), kind, serde_json::json!({"account_id": account.id, "instance_id": ev.instance_id, "instance_type": ev.instance_type, "az": ev.az, "event": ev.kind}));
        // The node's cluster actor decides its replacement now (event-driven).
        if ev.kind == spot_cloud::SpotEventKind::InterruptionNotice {
            let cluster = st
                .instances
                .get(&ev.instance_id)
                .and_then(|i| i.cluster.clone());
            if let Some(actor) = cluster.as_ref().and_then(|c| st.clusters.get(c)) {
                let _ = actor.cast(ClusterMsg::Interruption {
                    instance_id: ev.instance_id.clone(),
                    instance_type: ev.instance_type.clone(),
                    az: ev.az.clone(),
                });
            }
            // The node leaves in two minutes: cordon and drain it through the agent now.
            if let Some(c) = &cluster {
                crate::signals::drain_interrupted(&deps, &org, &account.id, c, &ev.instance_id)
                    .await;
            }
        }
        if ev.time > st.last_events {
            st.seen_events.clear();
            st.last_events = ev.time;
        }
        st.seen_events
            .insert((ev.instance_id.clone(), format!("{:?}", ev.kind)));
    }
    if stale {
        let _ = myself.cast(AccountMsg::Discover);
    }
}

/// Time between two reads of an account's spot signals (interruption notices give two
/// minutes; the drain must start well inside them).
pub const SIGNAL_INTERVAL: Duration = Duration::from_secs(15);

async fn signal_tick(myself: &ActorRef<AccountMsg>, st: &mut AccountState) {
    let Some(cloud) = st.cloud.clone() else {
        return;
    };
    let account = match accounts::by_id(&st.deps.db, &st.account_id).await {
        Ok(Some(a)) => a,
        _ => return,
    };
    let region = cloud.region().to_string();
    poll_signals(myself, st, cloud.as_ref(), &account, &region).await;
}

async fn ensure_clusters(
    myself: &ActorRef<AccountMsg>,
    st: &mut AccountState,
    names: &Vec<String>,
) {
    st.clusters.retain(|name, actor| {
        let keep = names.contains(name);
        if !keep {
            actor.stop(Some("cluster gone".into()));
        }
        keep
    });
    for name in names {
        if st.clusters.contains_key(name) {
            continue;
        }
        match Actor::spawn_linked(
            None,
            ClusterActor,
            ClusterState {
                account_id: st.account_id.clone(),
                org_id: st.org_id.clone(),
                name: name.clone(),
                model: st.model.clone(),
                market: st.market.clone(),
                bus: st.deps.bus.clone(),
                template: NodeTemplate::default(),
            },
            myself.get_cell(),
        )
        .await
        {
            Ok((a, _)) => {
                st.clusters.insert(name.clone(), a);
            }
            Err(e) => {
                tracing::error!(component = "CORE-SUPERVISOR", cluster = %name, error = %e, "cluster actor failed to start")
            }
        }
    }
}

// ---------------------------------------------------------------------------------------
// Cluster actor: the per-cluster home of decisions (risk scoring, packing, hibernation).

pub enum ClusterMsg {
    Name(RpcReplyPort<String>),
    Model(RpcReplyPort<String>),
    SwapModel(Arc<ActiveModel>),
    /// Fresh market after a discovery.
    Market(Arc<crate::market::Market>),
    /// The node template of the cluster's stored policy (after a discovery or a change).
    Template(NodeTemplate),
    /// Pods waiting for capacity (from the agent or a test): decide what to launch now.
    PendingPods {
        pods: Vec<spot_engine::pack::Pod>,
        reply: Option<RpcReplyPort<Result<LaunchDecision, String>>>,
    },
    /// A spot interruption notice for one of the cluster's nodes.
    Interruption {
        instance_id: String,
        instance_type: String,
        az: String,
    },
}

pub struct ClusterState {
    pub account_id: String,
    pub org_id: String,
    pub name: String,
    pub model: Arc<ActiveModel>,
    pub market: Option<Arc<crate::market::Market>>,
    pub bus: Bus,
    /// Node template decisions follow (the cluster policy's; default until read).
    pub template: NodeTemplate,
}

impl ClusterState {
    fn publish(&self, d: &Result<LaunchDecision, String>) {
        match d {
            Ok(d) => {
                tracing::info!(component = "CORE-DECIDE", cluster = %self.name, trigger = %d.trigger, nodes = d.nodes.len(), us = d.decided_in_us, "launch decision");
                self.bus.publish(
                    Some(&self.org_id),
                    "decision.launch",
                    serde_json::json!({"account_id": self.account_id, "decision": d}),
                );
            }
            Err(e) => {
                tracing::warn!(component = "CORE-DECIDE", cluster = %self.name, error = %e, "no launch decision");
                self.bus.publish(Some(&self.org_id), "decision.failed", serde_json::json!({"account_id": self.account_id, "cluster": self.name, "error": e}));
            }
        }
    }
}

struct ClusterActor;

#[ractor::async_trait]
impl Actor for ClusterActor {
    type Msg = ClusterMsg;
    type State = ClusterState;
    type Arguments = ClusterState;

    async fn pre_start(
        &self,
        _myself: ActorRef<ClusterMsg>,
        st: ClusterState,
    ) -> Result<ClusterState, ActorProcessingErr> {
        tracing::debug!(component = "CORE-CLUSTER", account_id = %st.account_id, cluster = %st.name, "cluster actor started");
        Ok(st)
    }

    async fn handle(
        &self,
        _myself: ActorRef<ClusterMsg>,
        msg: ClusterMsg,
        st: &mut ClusterState,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            ClusterMsg::Name(reply) => {
                let _ = reply.send(st.name.clone());
            }
            ClusterMsg::Model(reply) => {
                let _ = reply.send(st.model.id.clone());
            }
            ClusterMsg::SwapModel(m) => st.model = m,
            ClusterMsg::Market(m) => st.market = Some(m),
            ClusterMsg::Template(t) => st.template = t,
            ClusterMsg::PendingPods { pods, reply } => {
                let d = match &st.market {
                    Some(m) => crate::react::pending_pods(
                        m,
                        &st.template,
                        &st.name,
                        &pods,
                        chrono::Utc::now().timestamp(),
                    ),
                    None => {
                        Err("the market has not been read yet (discovery still running)".into())
                    }
                };
                st.publish(&d);
                if let Some(r) = reply {
                    let _ = r.send(d);
                }
            }
            ClusterMsg::Interruption {
                instance_id,
                instance_type,
                az,
            } => {
                if let Some(m) = &st.market {
                    let d = crate::react::interruption(
                        m,
                        &st.template,
                        &st.name,
                        &instance_id,
                        &instance_type,
                        &az,
                    );
                    st.publish(&d);
                }
            }
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------
// Handle used by the API

#[derive(Clone)]
pub struct Actors {
    root: ActorRef<RootMsg>,
    pub bus: Bus,
}

impl Actors {
    /// Starts the root supervisor and one account actor per linked account.
    pub async fn start(deps: Deps) -> Result<Actors, ActorError> {
        let bus = deps.bus.clone();
        let db = deps.db.clone();
        let (root, _) = Actor::spawn(None, Root, deps)
            .await
            .map_err(|e| ActorError::Spawn(e.to_string()))?;
        let actors = Actors { root, bus };
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
}
