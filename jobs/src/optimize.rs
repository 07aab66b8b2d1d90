//! "Optimize Now" for one cluster (CORE-DECIDE + CORE-EXEC): read the cluster (the
//! in-cluster agent's view: nodes, pods, PDBs, labels, taints, do-not-disrupt marks; the
//! simulator's inventory for a dry run of a cluster without an agent), score its pools
//! with the current risk model, plan with the engine's one planner ([`spot_engine::plan`]:
//! LP target fleet, a reason for every node, waves within the disruption budget and the
//! PDBs), store the versioned plan, then execute it action by action: launch replacement
//! capacity, wait until it is a Ready node, cordon and drain the old node through the
//! agent, delete its Node object, terminate the instance, record savings, audit each
//! action with actor `system` and the job id. SAFE_MODE, the cluster policy's dry run, or
//! a dry-run request send every call with `dry_run = true` ("would execute": validated,
//! nothing changes).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::Duration;

use serde_json::json;
use spot_cloud::{
    Cloud, CloudError, InstanceState, LaunchRequest, Lifecycle as CloudLifecycle, Mutation,
    TAG_EKS_CLUSTER, TAG_EKS_NODEGROUP, TAG_MANAGED,
};
use spot_engine::catalog::{Arch, Catalog, Lifecycle, PoolKey, Resources};
use spot_engine::consolidate::Pdb;
use spot_engine::decide::{self, ActionKind, ActionPlan, DecisionInput};
use spot_engine::plan::{
    constraints_from_node_selector, Market, Plan as EnginePlan, PlanInput, SnapNode, SnapPod,
};
use spot_models::{accounts, agents, inventory, jobs, risk as risk_store};

use crate::{agent_ops, audit_job, progress, publish, Done, Failure, JobContext};
use spot_actors::policy::ClusterPolicy;

pub const KIND: &str = "optimize";
/// How long a launched node may take to reach `running`.
const READY_TIMEOUT: Duration = Duration::from_secs(120);
use spot_actors::market::UNSCORED_RISK;

fn fail(msg: impl Into<String>) -> Failure {
    Failure::new(msg, json!({"executed": [], "not_run": []}))
}

pub(crate) fn cloud_lifecycle(l: Lifecycle) -> CloudLifecycle {
    match l {
        Lifecycle::Spot => CloudLifecycle::Spot,
        Lifecycle::OnDemand => CloudLifecycle::OnDemand,
    }
}

/// What the planner knew about one live node.
pub(crate) struct LiveNode {
    pub(crate) instance_id: String,
    pub(crate) node_group: Option<String>,
    /// Auto Scaling group that would replace the instance when it is terminated.
    pub(crate) asg_name: Option<String>,
    pub(crate) hourly_price: f64,
}

/// The market and cluster snapshot a plan is made from.
pub struct Snapshot {
    pub catalog: Catalog,
    /// Every node the cluster runs, with its pods, labels, taints and do-not-disrupt
    /// marks; cordoned and NotReady nodes are included (the planner keeps them and says
    /// why).
    pub nodes: Vec<SnapNode>,
    pub pdbs: Vec<Pdb>,
    /// Max pods per instance type, from the nodes' allocatable pod slots (the ENI limit
    /// the kubelet was configured with).
    pub max_pods: BTreeMap<String, u32>,
    pub pool_risk: BTreeMap<PoolKey, f64>,
    pub risk_flags: BTreeSet<PoolKey>,
    /// Usage of each workload (the agent's samples of its replicas over the last 2 days),
    /// for rightsizing. Empty until the agent has reported usage.
    pub workloads: Vec<spot_engine::rightsize::WorkloadUsage>,
    /// Where nodes and pods were read: `agent` (the in-cluster agent's view).
    pub source: &'static str,
    pub(crate) live: HashMap<String, LiveNode>,
}

impl Snapshot {
    /// The node an instance runs as, if it is one of the cluster's nodes.
    pub fn node_of_instance(&self, instance_id: &str) -> Option<&str> {
        self.live
            .iter()
            .find(|(_, l)| l.instance_id == instance_id)
            .map(|(name, _)| name.as_str())
    }
}

/// Prices, risk, architecture and launch time of the nodes being read.
struct NodeFacts<'a> {
    spot: &'a HashMap<(String, String), f64>,
    on_demand: &'a HashMap<String, f64>,
    arch_of: HashMap<&'a str, Arch>,
    pool_risk: &'a BTreeMap<PoolKey, f64>,
    described: &'a HashMap<String, spot_cloud::Instance>,
}

impl NodeFacts<'_> {
    fn hourly(&self, ty: &str, az: &str, lc: Lifecycle) -> f64 {
        match lc {
            Lifecycle::Spot => self.spot.get(&(ty.to_string(), az.to_string())).copied(),
            Lifecycle::OnDemand => self.on_demand.get(ty).copied(),
        }
        .unwrap_or(0.0)
    }

    fn risk(&self, ty: &str, az: &str, lc: Lifecycle) -> f64 {
        match lc {
            Lifecycle::Spot => self
                .pool_risk
                .get(&PoolKey::new(ty, az))
                .copied()
                .unwrap_or(UNSCORED_RISK),
            Lifecycle::OnDemand => 0.0,
        }
    }

    fn arch(&self, ty: &str) -> Arch {
        self.arch_of.get(ty).copied().unwrap_or(Arch::X86_64)
    }

    fn launched(&self, instance_id: &str) -> Option<i64> {
        self.described
            .get(instance_id)
            .map(|i| i.launch_time.timestamp())
    }

    fn live(&self, instance_id: &str, node_group: Option<String>, hourly: f64) -> LiveNode {
        LiveNode {
            instance_id: instance_id.to_string(),
            node_group,
            asg_name: self
                .described
                .get(instance_id)
                .and_then(|i| i.asg_name.clone()),
            hourly_price: hourly,
        }
    }
}

/// The agent's view as the planner's nodes (with pods), PDBs and live-node facts. Nodes
/// the optimizer cannot map to an instance (no provider id, type or zone: Fargate,
/// another cloud) are kept as unmanaged.
fn nodes_from_view(
    v: &agents::ClusterView,
    facts: &NodeFacts<'_>,
) -> (Vec<SnapNode>, Vec<Pdb>, HashMap<String, LiveNode>) {
    use spot_agent_protocol as proto;
    let fallback_time = v.collected_at.unwrap_or_else(chrono::Utc::now).timestamp();
    let mut by_node: HashMap<&str, Vec<SnapPod>> = HashMap::new();
    for p in &v.pods {
        // Only pods holding capacity on a node; pending pods are the cluster actor's
        // (it launches for them as they appear).
        if p.phase != proto::PodPhase::Running && p.phase != proto::PodPhase::Pending {
            continue;
        }
        let Some(node) = p.node_name.as_deref() else {
            continue;
        };
        let (capacity, arch) = constraints_from_node_selector(&p.node_selector);
        by_node.entry(node).or_default().push(SnapPod {
            name: p.name.clone(),
            namespace: p.namespace.clone(),
            labels: p.labels.clone(),
            owner: p.owner.as_ref().map(|o| format!("{}/{}", o.kind, o.name)),
            priority: p.priority.unwrap_or(0),
            cpu_millis: p.requests.cpu_millis,
            memory_mib: p.requests.memory_mib,
            gpus: p.requests.gpus,
            capacity,
            arch,
            anti_affinity_group: None,
            az_spread_group: None,
            pdb: p
                .pdbs
                .first()
                .map(|b| b.split_once('/').map_or(b.as_str(), |(_, n)| n).to_string()),
            do_not_disrupt: p.do_not_disrupt,
            daemonset: p.daemonset || p.mirror,
        });
    }
    let mut nodes = Vec::new();
    let mut live = HashMap::new();
    for n in &v.nodes {
        let pods = by_node.remove(n.name.as_str()).unwrap_or_default();
        let ec2 = match (&n.instance_id, &n.instance_type, &n.zone) {
            (Some(id), Some(ty), Some(az)) => Some((id, ty, az)),
            _ => None,
        };
        let lifecycle = match n.capacity_type.as_deref() {
            Some("spot") => Lifecycle::Spot,
            _ => Lifecycle::OnDemand,
        };
        let ty = n.instance_type.clone().unwrap_or_else(|| "unknown".into());
        let az = n.zone.clone().unwrap_or_default();
        let hourly = facts.hourly(&ty, &az, lifecycle);
        let created = ec2
            .and_then(|(id, _, _)| facts.launched(id))
            .or_else(|| n.created_at.map(|t| t.timestamp()))
            .unwrap_or(fallback_time);
        if let Some((id, _, _)) = ec2 {
            live.insert(n.name.clone(), facts.live(id, n.node_group.clone(), hourly));
        }
        nodes.push(SnapNode {
            name: n.name.clone(),
            arch: facts.arch(&ty),
            interruption_probability: facts.risk(&ty, &az, lifecycle),
            instance_type: ty,
            lifecycle,
            az,
            hourly_price: hourly,
            allocatable: Resources {
                cpu_millis: n.allocatable.cpu_millis,
                memory_mib: n.allocatable.memory_mib,
                gpus: n.allocatable.gpus,
                pods: if n.allocatable.pods > 0 {
                    n.allocatable.pods
                } else {
                    110
                },
            },
            created_at: created,
            labels: n.labels.clone(),
            // The cordon's own taint is the `cordoned` flag.
            taints: n
                .taints
                .iter()
                .filter(|t| t.key != "node.kubernetes.io/unschedulable")
                .map(|t| match &t.value {
                    Some(v) => format!("{}={v}:{}", t.key, t.effect),
                    None => format!("{}:{}", t.key, t.effect),
                })
                .collect(),
            unmanaged: ec2.is_none(),
            do_not_disrupt: proto::is_do_not_disrupt(&n.annotations),
            cordoned: n.unschedulable,
            ready: n.ready,
            pinned: None,
            pods,
        });
    }
    let pdbs = v
        .pdbs
        .iter()
        .map(|b| Pdb {
            namespace: b.namespace.clone(),
            name: b.name.clone(),
            min_available: b
                .min_available
                .as_deref()
                .and_then(|m| m.parse().ok())
                .or_else(|| {
                    // A percentage or an absent minimum: the live status says what is allowed.
                    u32::try_from(b.current_healthy - b.disruptions_allowed).ok()
                }),
            max_unavailable: b.max_unavailable.as_deref().and_then(|m| m.parse().ok()),
            current_healthy: u32::try_from(b.current_healthy).unwrap_or(0),
            expected_pods: u32::try_from(b.expected_pods).unwrap_or(0),
        })
        .collect();
    (nodes, pdbs, live)
}

/// Usage history window read for rightsizing.
const USAGE_WINDOW_HOURS: i64 = 48;

/// One usage series per workload (Deployment, StatefulSet, ...; DaemonSets and bare pods
/// excluded) from the agent's metrics samples of all its running replicas; requests are
/// the first replica's. A workload is rightsized only once its samples reach the
/// rightsizing minimum (a day at the metrics API's 5-minute grid).
async fn workload_usage(
    ctx: &JobContext,
    org_id: &str,
    cluster_id: &str,
    view: &agents::ClusterView,
    to: chrono::DateTime<chrono::Utc>,
) -> Vec<spot_engine::rightsize::WorkloadUsage> {
    let mut groups: BTreeMap<String, Vec<&spot_agent_protocol::Pod>> = BTreeMap::new();
    for p in view
        .pods
        .iter()
        .filter(|p| p.phase == spot_agent_protocol::PodPhase::Running && !p.daemonset)
    {
        let Some(o) = &p.owner else { continue };
        if o.kind == "DaemonSet" {
            continue;
        }
        groups
            .entry(format!("{}/{}/{}", p.namespace, o.kind, o.name))
            .or_default()
            .push(p);
    }
    let from = to - chrono::Duration::hours(USAGE_WINDOW_HOURS);
    let mut out = Vec::new();
    for (workload, replicas) in groups {
        let mut samples: Vec<(f64, f64)> = Vec::new();
        for r in &replicas {
            match agents::pod_usage(&ctx.db, org_id, cluster_id, &r.namespace, &r.name, from, to)
                .await
            {
                Ok(s) => {
                    samples.extend(s.iter().map(|u| (u.cpu_millis as f64, u.memory_mib as f64)))
                }
                Err(e) => {
                    tracing::warn!(component = "MOD-SIZE-01", workload, error = %e, "agent usage unreadable");
                }
            }
        }
        if samples.is_empty() {
            continue;
        }
        let rep = replicas[0];
        out.push(spot_engine::rightsize::WorkloadUsage {
            workload,
            replicas: replicas.len() as u32,
            cpu_request_millis: rep.requests.cpu_millis,
            memory_request_mib: rep.requests.memory_mib,
            cpu_samples_millis: samples.iter().map(|s| s.0).collect(),
            memory_samples_mib: samples.iter().map(|s| s.1).collect(),
        });
    }
    out
}

/// Reads the cluster and the market through the Cloud port and scores the pools.
pub async fn snapshot(
    ctx: &JobContext,
    cloud: &dyn Cloud,
    org_id: &str,
    cluster_id: &str,
    cluster: &str,
) -> Result<Snapshot, String> {
    let human = |e: CloudError| spot_actors::system::human(&e);
    // The agent's view is the one source of nodes, pods, PDBs and usage.
    let view = agents::cluster_view(&ctx.db, org_id, cluster_id)
        .await
        .map_err(|e| e.to_string())?
        .filter(|v| !v.nodes.is_empty())
        .ok_or_else(|| {
            format!("no cluster view of {cluster} yet: its in-cluster agent has not reported; install the agent (Clusters → {cluster} → Agent) and try again")
        })?;
    // MOD-AI-01: every pool is scored with the current model before the engine sees it.
    let model = ctx.risk.current();
    let market = spot_actors::market::read(cloud, &model, ctx.hive.as_ref())
        .await
        .map_err(|e| match e {
            spot_actors::market::MarketError::Cloud(c) => human(c),
            other => other.to_string(),
        })?;
    if let Err(e) = risk_store::upsert_pool_risk(&ctx.db, &market.scores).await {
        tracing::warn!(component = crate::COMPONENT, error = %e, "pool scores not saved");
    }
    let spot_actors::market::Market {
        catalog,
        pool_risk,
        risk_flags,
        on_demand: od,
        spot: spot_prices,
        ..
    } = market;
    // Node age (stabilization window) comes from the instance's launch time.
    let described: HashMap<String, spot_cloud::Instance> = cloud
        .describe_instances()
        .await
        .map_err(human)?
        .into_iter()
        .map(|i| (i.id.clone(), i))
        .collect();
    let facts = NodeFacts {
        spot: &spot_prices,
        on_demand: &od,
        arch_of: catalog
            .types()
            .iter()
            .map(|t| (t.name.as_str(), t.arch))
            .collect(),
        pool_risk: &pool_risk,
        described: &described,
    };
    let (mut nodes, pdbs, live) = nodes_from_view(&view, &facts);
    let source = "agent";
    nodes.sort_by(|a, b| a.name.cmp(&b.name));
    let mut max_pods: BTreeMap<String, u32> = BTreeMap::new();
    for n in nodes.iter().filter(|n| !n.unmanaged) {
        let slot = max_pods.entry(n.instance_type.clone()).or_insert(0);
        *slot = (*slot).max(n.allocatable.pods);
    }
    let workloads = workload_usage(ctx, org_id, cluster_id, &view, cloud.now()).await;
    Ok(Snapshot {
        catalog,
        nodes,
        pdbs,
        max_pods,
        source,
        pool_risk,
        risk_flags,
        workloads,
        live,
    })
}

/// The engine half, pure: the planner ([`spot_engine::plan`]) decides every node's fate
/// within the disruption budget and the PDBs; its waves become the executor's ordered
/// actions, preceded by rightsizing increases and followed by rightsizing reductions
/// (recommendations). Returns the planner's plan too (per-node reasons, costs).
pub fn plan(
    snap: &Snapshot,
    policy: &ClusterPolicy,
    now: i64,
) -> Result<(ActionPlan, EnginePlan), String> {
    let input = PlanInput {
        nodes: snap.nodes.clone(),
        // Pending pods are the cluster actor's: it launches for them as they appear.
        pending: Vec::new(),
        pdbs: snap.pdbs.clone(),
        policy: policy.clone(),
        market: Market {
            catalog: snap.catalog.clone(),
            risk_flags: snap.risk_flags.clone(),
            max_pods: snap.max_pods.clone(),
            overhead: spot_engine::catalog::NodeOverhead::default(),
        },
        now,
        pack_options: None,
    };
    let planned = spot_engine::plan::plan(&input).map_err(|e| format!("planner: {e}"))?;
    let mut actions = planned.to_action_plan();
    // MOD-SIZE-01; a workload whose samples the engine rejects is left out.
    let rightsizing = decide::decide(
        &DecisionInput {
            // Rightsizing mode `off`: no recommendations at all.
            rightsizing: if policy.rightsize_mode == spot_engine::policy::RightsizeMode::Off {
                Vec::new()
            } else {
                snap.workloads
                    .iter()
                    .filter_map(|w| {
                        spot_engine::rightsize::recommend(w, &policy.rightsizing()).ok()
                    })
                    .collect()
            },
            maintenance_mode: policy.maintenance_mode,
            ..DecisionInput::default()
        },
        now,
    );
    let (up, down): (Vec<_>, Vec<_>) = rightsizing
        .actions
        .into_iter()
        .partition(|a| a.kind == ActionKind::RightsizeUp);
    let node_actions = std::mem::take(&mut actions.actions);
    actions.actions = up.into_iter().chain(node_actions).chain(down).collect();
    actions.blocked.extend(rightsizing.blocked);
    actions.expected_monthly_savings = actions
        .actions
        .iter()
        .map(|a| a.expected_monthly_savings)
        .sum();
    Ok((actions, planned))
}

/// What a policy would do to a cluster now: the planner's plan on the cluster's current
/// snapshot (the agent's view, the scored market) under `policy`. Read-only: nothing is
/// queued, launched or drained. The error is a sentence for the user.
pub async fn estimate(
    ctx: &JobContext,
    org: &str,
    cluster_id: &str,
    policy: &ClusterPolicy,
) -> Result<(ActionPlan, EnginePlan, &'static str), String> {
    let (cluster, account) = cluster_and_account(&ctx.db, org, cluster_id).await?;
    let cloud = connect(ctx, &account).await?;
    let snap = snapshot(ctx, cloud.as_ref(), org, cluster_id, &cluster.name).await?;
    let now = cloud.now().timestamp();
    let (actions, planned) = plan(&snap, policy, now)?;
    Ok((actions, planned, snap.source))
}

/// The cluster (of `org`) and its account; the error is a sentence for the user.
async fn cluster_and_account(
    db: &spot_models::Db,
    org: &str,
    cluster_id: &str,
) -> Result<(inventory::ClusterView, accounts::Account), String> {
    let cluster = inventory::cluster(db, org, cluster_id)
        .await
        .map_err(|e| e.to_string())?
        .ok_or("the cluster no longer exists")?;
    let account = accounts::by_id(db, &cluster.account_id)
        .await
        .map_err(|e| e.to_string())?
        .ok_or("the cluster's account no longer exists")?;
    Ok((cluster, account))
}

/// Connects to the account's cloud with its stored credentials (decrypted in memory).
pub(crate) async fn connect(
    ctx: &JobContext,
    account: &accounts::Account,
) -> Result<std::sync::Arc<dyn Cloud>, String> {
    let ciphertext = accounts::credentials(&ctx.db, &account.id)
        .await
        .map_err(|e| e.to_string())?;
    let target = spot_actors::system::target_of(&ctx.keyring, account, ciphertext)?;
    ctx.connector
        .connect(&target)
        .await
        .map_err(|e| spot_actors::system::human(&e))
}

/// What a job that changes a cluster's nodes has before it plans: the cluster, its
/// account and effective policy (overrides applied), the template's marks, whether it only
/// plans, the connected cloud and the snapshot.
pub(crate) struct Prepared {
    pub org: String,
    pub cluster_id: String,
    pub cluster: inventory::ClusterView,
    pub account: accounts::Account,
    pub policy: ClusterPolicy,
    pub(crate) marks: NodeMarks,
    pub dry: bool,
    pub cloud: std::sync::Arc<dyn Cloud>,
    pub snap: Snapshot,
}

/// Reads everything a node-changing job needs; refuses a real run without a connected
/// agent (nodes are retired only through it).
pub(crate) async fn prepare(
    ctx: &JobContext,
    job: &jobs::JobRow,
    what: &str,
) -> Result<Prepared, Failure> {
    let org = job
        .organization_id
        .clone()
        .ok_or_else(|| fail(format!("{what} job without organization")))?;
    let cluster_id = job
        .target_id
        .clone()
        .ok_or_else(|| fail(format!("{what} job without cluster")))?;
    let db = &ctx.db;
    let (cluster, account) = cluster_and_account(db, &org, &cluster_id)
        .await
        .map_err(fail)?;
    // The policy with the manual overrides in force: a forced cluster buys only on-demand
    // capacity, and instances forced one by one are kept as they are.
    let (policy, overrides) = spot_actors::policy::in_force(db, &org, &cluster_id)
        .await
        .map_err(fail)?;
    // Labels and taints the linked node template puts on every node this job launches.
    let marks = node_marks(db, &org, &cluster_id).await.map_err(fail)?;
    // Safe mode as recorded when the job was queued, or as this replica runs now: either
    // keeps the executor away from the cloud.
    let dry = job.safe_mode != 0 || ctx.safe_mode || policy.dry_run || job.dry_run != 0;
    // Nodes are retired only through the agent (cordon, PDB-respecting drain): without a
    // connected agent only a dry run may proceed.
    let connected = agents::is_connected(db, &org, &cluster_id, chrono::Utc::now())
        .await
        .map_err(|e| fail(e.to_string()))?;
    if !dry && !connected {
        return Err(fail(
            "no connected agent on this cluster: a real run needs the in-cluster agent to cordon and drain nodes safely. Install it (Clusters → Add cluster) and wait for its first heartbeat; a dry run still plans.",
        ));
    }
    progress(ctx, job, 5, "connecting to the cloud account").await;
    let cloud = connect(ctx, &account).await.map_err(fail)?;
    progress(ctx, job, 15, "reading nodes, pods and the spot market").await;
    let mut snap = snapshot(ctx, cloud.as_ref(), &org, &cluster_id, &cluster.name)
        .await
        .map_err(fail)?;
    pin_overridden(&mut snap, &overrides);
    Ok(Prepared {
        org,
        cluster_id,
        cluster,
        account,
        policy,
        marks,
        dry,
        cloud,
        snap,
    })
}

/// Nodes whose instance an instance-scope override forces on demand are kept as they are
/// while it lasts (the reason says until when).
pub(crate) fn pin_overridden(snap: &mut Snapshot, overrides: &[spot_models::overrides::Override]) {
    for o in overrides {
        let Some(instance) = o.pinned_instance() else {
            continue;
        };
        let Some(name) = snap.node_of_instance(instance).map(str::to_string) else {
            continue;
        };
        let until = o.expires_at.map_or_else(
            || "until revoked".to_string(),
            |t| {
                chrono::DateTime::<chrono::Utc>::from_timestamp_millis(t)
                    .map(|t| format!("until {}", t.format("%Y-%m-%d %H:%M UTC")))
                    .unwrap_or_default()
            },
        );
        if let Some(n) = snap.nodes.iter_mut().find(|n| n.name == name) {
            n.pinned = Some(format!("forced on-demand by a manual override {until}"));
        }
    }
}

/// What the executor did: the actions' details and the realised monthly savings.
pub(crate) struct Executed {
    pub executed: Vec<serde_json::Value>,
    pub realised: f64,
}

/// Runs a plan's actions in order through the safe executor, stopping at the first
/// failure or at a cancel / shutdown between actions. `kind` names the audit action
/// (`optimize.action`, `force_on_demand.action`); `savings` records each applied action's
/// expected saving as realised (not for overrides, which cost money on purpose).
pub(crate) async fn execute_plan(
    ctx: &JobContext,
    job: &jobs::JobRow,
    control: &crate::Control,
    prep: &Prepared,
    action_plan: &ActionPlan,
    kind: &str,
    savings: bool,
) -> Result<Executed, Failure> {
    let db = &ctx.db;
    let (org, cluster_id, dry) = (&prep.org, &prep.cluster_id, prep.dry);
    let mode = if dry { "dry_run" } else { "execute" };
    let mut executed = Vec::new();
    let total = action_plan.actions.len().max(1);
    let mut realised = 0.0;
    for (idx, action) in action_plan.actions.iter().enumerate() {
        // The action boundary: a cancel, a shutdown or a reaped job stops here, before
        // anything else touches the cloud or the cluster.
        if let Some(stop) = control.checkpoint().await {
            let not_run: Vec<serde_json::Value> = action_plan.actions[idx..]
                .iter()
                .map(|a| json!({"kind": a.kind, "target": a.target}))
                .collect();
            if !dry && !executed.is_empty() {
                ctx.actors.resync(&prep.account.id);
            }
            let result = json!({"mode": mode, "executed": executed, "not_run": not_run, "realised_monthly_savings": realised, "stopped": format!("{stop:?}").to_lowercase()});
            let done = format!("{idx} of {} actions ran", action_plan.actions.len());
            return Err(match stop {
                crate::Stop::Cancelled => {
                    Failure::cancelled(format!("cancelled: {done}; the rest did not run"), result)
                }
                crate::Stop::Shutdown => Failure::new(
                    format!("interrupted by a server shutdown: {done}; the rest did not run"),
                    result,
                ),
                crate::Stop::Lost => Failure::new(
                    format!(
                        "stopped: the job was closed while its worker was unresponsive; {done}"
                    ),
                    result,
                ),
            });
        }
        let pct = 40 + (55 * (idx + 1) / total) as i64;
        let agent = AgentTarget {
            db,
            drain_timeout: Duration::from_secs(prep.policy.drain_timeout_secs),
            org,
            cluster_id,
            job_id: &job.id,
            marks: &prep.marks,
        };
        let outcome = execute_action(
            prep.cloud.as_ref(),
            &agent,
            job,
            &prep.cluster.name,
            &prep.snap,
            &prep.policy,
            idx,
            action,
            dry,
        )
        .await;
        match outcome {
            Ok(detail) => {
                let applied = detail.get("status").and_then(|s| s.as_str()) == Some("applied");
                if applied && savings {
                    realised += action.expected_monthly_savings;
                    if let Err(e) = jobs::record_saving(
                        db,
                        org,
                        cluster_id,
                        &job.id,
                        &format!("{:?}", action.kind),
                        action.expected_monthly_savings,
                    )
                    .await
                    {
                        tracing::warn!(component = crate::COMPONENT, error = %e, "saving not recorded");
                    }
                }
                // Outcome `success` for every action that ran as intended (applied, would-execute in a
                // dry run, or skipped for want of the agent); `detail.status` says which.
                audit_job(ctx, job, kind, "success", detail.clone()).await;
                publish(
                    ctx,
                    job,
                    "job.action",
                    json!({"job_id": job.id, "cluster_id": cluster_id, "index": idx, "action": detail}),
                );
                executed.push(detail);
                progress(
                    ctx,
                    job,
                    pct,
                    &format!("action {}/{} done", idx + 1, action_plan.actions.len()),
                )
                .await;
            }
            Err(detail) => {
                audit_job(ctx, job, kind, "failed", detail.clone()).await;
                publish(
                    ctx,
                    job,
                    "job.action",
                    json!({"job_id": job.id, "cluster_id": cluster_id, "index": idx, "action": detail}),
                );
                let not_run: Vec<serde_json::Value> = action_plan.actions[idx + 1..]
                    .iter()
                    .map(|a| json!({"kind": a.kind, "target": a.target}))
                    .collect();
                ctx.actors.resync(&prep.account.id);
                let msg = format!(
                    "action {} of {} failed: {}",
                    idx + 1,
                    action_plan.actions.len(),
                    detail
                        .get("error")
                        .and_then(|e| e.as_str())
                        .unwrap_or("unknown error")
                );
                return Err(Failure::new(
                    msg,
                    json!({"mode": mode, "executed": executed, "failed": detail, "not_run": not_run, "realised_monthly_savings": realised}),
                ));
            }
        }
    }
    if !dry && !executed.is_empty() {
        ctx.actors.resync(&prep.account.id);
    }
    Ok(Executed { executed, realised })
}

/// Stores the plan on the job: the executor's actions plus, when the planner made it, its
/// explanation (a reason for every node, the waves, the costs and the warnings).
pub(crate) async fn store_plan(
    ctx: &JobContext,
    job: &jobs::JobRow,
    action_plan: &ActionPlan,
    planned: Option<&EnginePlan>,
    source: &str,
) -> Result<(), Failure> {
    let mut stored = serde_json::to_value(action_plan).unwrap_or_default();
    if let Some(o) = stored.as_object_mut() {
        if let Some(planned) = planned {
            o.insert("strategy".into(), json!(planned.strategy));
            o.insert("disruption_budget".into(), json!(planned.disruption_budget));
            o.insert("waves".into(), json!(planned.waves.len()));
            o.insert("nodes".into(), json!(planned.nodes));
            o.insert("costs".into(), json!(planned.costs));
            o.insert("warnings".into(), json!(planned.warnings));
        }
        o.insert("source".into(), json!(source));
    }
    jobs::set_plan(&ctx.db, &job.id, &stored.to_string())
        .await
        .map_err(|e| fail(format!("plan not saved: {e}")))?;
    progress(
        ctx,
        job,
        40,
        &format!(
            "plan ready: {} actions, {} blocked",
            action_plan.actions.len(),
            action_plan.blocked.len()
        ),
    )
    .await;
    Ok(())
}

pub async fn run(
    ctx: &JobContext,
    job: &jobs::JobRow,
    control: &crate::Control,
) -> Result<Done, Failure> {
    let decide_started = std::time::Instant::now();
    let prep = prepare(ctx, job, "optimize").await?;
    let now = prep.cloud.now().timestamp();
    let (action_plan, planned) = plan(&prep.snap, &prep.policy, now).map_err(fail)?;
    let plan_ms = decide_started.elapsed().as_millis() as u64;
    store_plan(ctx, job, &action_plan, Some(&planned), prep.snap.source).await?;
    let Executed { executed, realised } = execute_plan(
        ctx,
        job,
        control,
        &prep,
        &action_plan,
        "optimize.action",
        true,
    )
    .await?;
    let dry = prep.dry;
    let mode = if dry { "dry_run" } else { "execute" };
    let message = if action_plan.actions.is_empty() {
        format!(
            "nothing to do: the cluster is already efficient ({} actions blocked)",
            action_plan.blocked.len()
        )
    } else if dry {
        format!(
            "dry run: {} actions would execute, ${:.2}/month expected",
            action_plan.actions.len(),
            action_plan.expected_monthly_savings
        )
    } else {
        format!(
            "{} actions executed, ${realised:.2}/month saved",
            executed.len()
        )
    };
    Ok(Done {
        message,
        result: json!({
            "mode": mode,
            "source": prep.snap.source,
            "plan_ms": plan_ms,
            "actions": action_plan.actions.len(),
            "blocked": action_plan.blocked.len(),
            "expected_monthly_savings": action_plan.expected_monthly_savings,
            "realised_monthly_savings": realised,
            "executed": executed,
            "not_run": [],
        }),
    })
}

/// Token for an idempotent launch: the same job and action always reuse it.
pub(crate) fn client_token(job_id: &str, idx: usize, suffix: &str) -> String {
    let t = format!("so-{}-{idx}{suffix}", job_id.replace('-', ""));
    t.chars().take(64).collect()
}

/// The cluster whose agent carries out the Kubernetes half of an action.
pub(crate) struct AgentTarget<'a> {
    pub(crate) db: &'a spot_models::Db,
    /// How long a drain may wait for PodDisruptionBudgets (the cluster policy's).
    pub(crate) drain_timeout: Duration,
    pub(crate) org: &'a str,
    pub(crate) cluster_id: &'a str,
    pub(crate) job_id: &'a str,
    /// What the linked node template puts on launched nodes.
    pub(crate) marks: &'a NodeMarks,
}

/// Labels and taints for launched nodes (from the cluster's linked node template).
#[derive(Debug, Default)]
pub(crate) struct NodeMarks {
    template: Option<String>,
    labels: BTreeMap<String, String>,
    taints: Vec<spot_agent_protocol::Taint>,
}

async fn node_marks(
    db: &spot_models::Db,
    org: &str,
    cluster_id: &str,
) -> Result<NodeMarks, String> {
    let Some(t) = spot_models::templates::of_cluster(db, org, cluster_id)
        .await
        .map_err(|e| e.to_string())?
    else {
        return Ok(NodeMarks::default());
    };
    let spec = spot_actors::policy::spec_of(&t)?;
    Ok(NodeMarks {
        template: Some(t.name),
        labels: spec.labels,
        taints: spec
            .taints
            .into_iter()
            .map(|t| spot_agent_protocol::Taint {
                key: t.key,
                value: t.value,
                effect: t.effect,
            })
            .collect(),
    })
}

impl AgentTarget<'_> {
    /// Puts the template's labels and taints on freshly Ready nodes, before any pod is
    /// moved onto them. `Err` is a human message (the caller keeps the old node).
    pub(crate) async fn mark(
        &self,
        idx: usize,
        nodes: &[String],
        steps: &mut Vec<serde_json::Value>,
    ) -> Result<(), String> {
        use spot_agent_protocol::CommandKind;
        let m = self.marks;
        for node in nodes {
            if !m.labels.is_empty() {
                let labels = m
                    .labels
                    .iter()
                    .map(|(k, v)| (k.clone(), Some(v.clone())))
                    .collect();
                let (ok, msg, detail) = self
                    .command(
                        idx,
                        &format!("label:{node}"),
                        CommandKind::Label {
                            node: node.clone(),
                            labels,
                        },
                        Duration::from_secs(60),
                    )
                    .await?;
                steps.push(agent_ops::step(
                    "label",
                    json!({"node": node, "ok": ok, "message": msg, "template": m.template, "labels": m.labels, "command_id": detail["command_id"]}),
                ));
                if !ok {
                    return Err(format!("labelling {node} failed: {msg}"));
                }
            }
            if !m.taints.is_empty() {
                let (ok, msg, detail) = self
                    .command(
                        idx,
                        &format!("taint:{node}"),
                        CommandKind::Taint {
                            node: node.clone(),
                            add: m.taints.clone(),
                            remove: Vec::new(),
                        },
                        Duration::from_secs(60),
                    )
                    .await?;
                steps.push(agent_ops::step(
                    "taint",
                    json!({"node": node, "ok": ok, "message": msg, "template": m.template, "taints": m.taints, "command_id": detail["command_id"]}),
                ));
                if !ok {
                    return Err(format!("tainting {node} failed: {msg}"));
                }
            }
        }
        Ok(())
    }

    /// Runs one agent command for action `idx`; `Err` is a human message.
    pub(crate) async fn command(
        &self,
        idx: usize,
        step: &str,
        kind: spot_agent_protocol::CommandKind,
        timeout: Duration,
    ) -> Result<(bool, String, serde_json::Value), String> {
        let key = format!("job:{}:{idx}:{step}", self.job_id);
        let rec = agent_ops::run_command(
            self.db,
            self.org,
            self.cluster_id,
            &key,
            &kind,
            timeout,
            &format!("system:job:{}", self.job_id),
        )
        .await?;
        let (ok, msg) = agent_ops::succeeded(&rec);
        let evictions = rec
            .result
            .as_ref()
            .map(|r| serde_json::to_value(&r.evictions).unwrap_or_default())
            .unwrap_or(json!([]));
        Ok((
            ok,
            msg,
            json!({"command_id": rec.id, "evictions": evictions}),
        ))
    }

    /// Cordons and drains `node` through the agent. On failure the node is uncordoned
    /// (it keeps running and serving) and the steps so far are returned with the error.
    pub(crate) async fn drain(
        &self,
        idx: usize,
        node: &str,
        steps: &mut Vec<serde_json::Value>,
    ) -> Result<(), String> {
        use spot_agent_protocol::CommandKind;
        let (ok, msg, detail) = self
            .command(
                idx,
                "drain",
                CommandKind::Drain {
                    node: node.to_string(),
                    timeout_secs: self.drain_timeout.as_secs(),
                    grace_period_secs: None,
                },
                self.drain_timeout,
            )
            .await?;
        steps.push(agent_ops::step(
            "drain",
            json!({"node": node, "ok": ok, "message": msg, "command_id": detail["command_id"], "evictions": detail["evictions"]}),
        ));
        if ok {
            return Ok(());
        }
        let undo = self
            .command(
                idx,
                "uncordon",
                CommandKind::Uncordon {
                    node: node.to_string(),
                },
                Duration::from_secs(60),
            )
            .await;
        steps.push(agent_ops::step(
            "uncordon",
            json!({"node": node, "ok": undo.as_ref().is_ok_and(|u| u.0), "message": match &undo { Ok(u) => u.1.clone(), Err(e) => e.clone() }}),
        ));
        Err(format!(
            "drain of {node} failed: {msg}; the node was uncordoned and keeps running"
        ))
    }
}

/// The workload kinds rightsizing may patch, from a `namespace/Kind/name` target.
fn patchable(target: &str) -> Option<(&str, spot_agent_protocol::WorkloadKind, &str)> {
    let mut parts = target.splitn(3, '/');
    let (ns, kind, name) = (parts.next()?, parts.next()?, parts.next()?);
    let kind = match kind {
        "Deployment" => spot_agent_protocol::WorkloadKind::Deployment,
        "StatefulSet" => spot_agent_protocol::WorkloadKind::StatefulSet,
        _ => return None,
    };
    (!ns.is_empty() && !name.is_empty()).then_some((ns, kind, name))
}

/// A rightsizing action. Mode `recommend` (and `off`, which plans none) skips it; mode
/// `auto` recomputes the recommendation from the snapshot the plan was made from and has
/// the agent patch the workload's requests (a Deployment or StatefulSet; its only
/// container), or says what it would patch in a dry run.
async fn rightsize(
    agent: &AgentTarget<'_>,
    snap: &Snapshot,
    policy: &ClusterPolicy,
    idx: usize,
    action: &decide::Action,
    dry: bool,
) -> Result<serde_json::Value, serde_json::Value> {
    use spot_engine::policy::RightsizeMode;
    if policy.rightsize_mode != RightsizeMode::Auto {
        return Ok(
            json!({"status": "skipped", "reason": "rightsizing mode is recommend (recommendations only): set the policy's rightsizing mode to auto to apply them"}),
        );
    }
    let Some((namespace, kind, workload)) = patchable(&action.target) else {
        return Ok(
            json!({"status": "skipped", "reason": "only Deployments and StatefulSets are patched automatically"}),
        );
    };
    let usage = snap
        .workloads
        .iter()
        .find(|w| w.workload == action.target)
        .ok_or_else(|| json!({"error": "the workload's usage vanished from the snapshot"}))?;
    let rec = spot_engine::rightsize::recommend(usage, &policy.rightsizing())
        .map_err(|e| json!({"error": format!("recommendation: {e}")}))?;
    let sizes = json!({
        "cpu_millis": rec.cpu_request_millis,
        "memory_mib": rec.memory_request_mib,
        "previous": {"cpu_millis": usage.cpu_request_millis, "memory_mib": usage.memory_request_mib},
    });
    let mut out =
        json!({"status": if dry { "would_execute" } else { "applied" }, "requests": sizes});
    if dry {
        return Ok(out);
    }
    let (ok, msg, detail) = agent
        .command(
            idx,
            "patch_requests",
            spot_agent_protocol::CommandKind::PatchRequests {
                namespace: namespace.to_string(),
                workload_kind: kind,
                workload: workload.to_string(),
                container: String::new(),
                cpu_millis: Some(rec.cpu_request_millis),
                memory_mib: Some(rec.memory_request_mib),
            },
            Duration::from_secs(120),
        )
        .await
        .map_err(|e| json!({"error": e, "step": "patch_requests", "requests": sizes}))?;
    let step = agent_ops::step(
        "patch_requests",
        json!({"ok": ok, "message": msg, "command_id": detail["command_id"]}),
    );
    if !ok {
        return Err(
            json!({"error": format!("patching {} failed: {msg}", action.target), "requests": sizes, "steps": [step]}),
        );
    }
    if let Some(o) = out.as_object_mut() {
        o.insert("steps".into(), json!([step]));
    }
    Ok(out)
}

#[allow(clippy::too_many_arguments)]
async fn execute_action(
    cloud: &dyn Cloud,
    agent: &AgentTarget<'_>,
    job: &jobs::JobRow,
    cluster: &str,
    snap: &Snapshot,
    policy: &ClusterPolicy,
    idx: usize,
    action: &decide::Action,
    dry: bool,
) -> Result<serde_json::Value, serde_json::Value> {
    let base = json!({"index": idx, "kind": action.kind, "target": action.target, "destination": action.destination, "expected_monthly_savings": action.expected_monthly_savings, "dry_run": dry});
    let with = |extra: serde_json::Value| {
        let mut v = base.clone();
        if let (Some(o), Some(e)) = (v.as_object_mut(), extra.as_object()) {
            o.extend(e.clone());
        }
        v
    };
    let status = if dry { "would_execute" } else { "applied" };
    match action.kind {
        ActionKind::RightsizeDown | ActionKind::RightsizeUp => {
            rightsize(agent, snap, policy, idx, action, dry)
                .await
                .map(&with)
                .map_err(&with)
        }
        ActionKind::DeleteEmptyNode | ActionKind::DrainAndDeleteNode => {
            let node = snap
                .live
                .get(&action.target)
                .ok_or_else(|| with(json!({"error": "node vanished from the snapshot"})))?;
            let mut steps = Vec::new();
            if !dry {
                agent
                    .drain(idx, &action.target, &mut steps)
                    .await
                    .map_err(|e| with(json!({"error": e, "step": "drain", "steps": steps})))?;
                // As Karpenter does: the Node object goes first, then its instance.
                remove_node_object(agent, idx, &action.target, &mut steps).await;
            }
            match retire_node(cloud, cluster, node, dry).await {
                Ok(asg) => {
                    if !dry {
                        steps.push(agent_ops::step(
                            "terminate",
                            json!({"instance_id": node.instance_id, "asg_resized": asg}),
                        ));
                    }
                    Ok(with(
                        json!({"status": status, "terminated": node.instance_id, "asg_resized": asg, "steps": steps}),
                    ))
                }
                Err(e) => Err(with(
                    json!({"error": spot_actors::system::human(&e), "instance_id": node.instance_id, "steps": steps}),
                )),
            }
        }
        ActionKind::ReplaceNode | ActionKind::MoveToSpot => {
            let node = snap
                .live
                .get(&action.target)
                .ok_or_else(|| with(json!({"error": "node vanished from the snapshot"})))?;
            let dest = action
                .destination
                .as_ref()
                .ok_or_else(|| with(json!({"error": "replacement without destination"})))?;
            let mut tags = spot_cloud::Tags::new();
            tags.insert(TAG_EKS_CLUSTER.into(), cluster.into());
            if let Some(g) = &node.node_group {
                tags.insert(TAG_EKS_NODEGROUP.into(), g.clone());
            }
            tags.insert("spot-optimizer/job".into(), job.id.clone());
            // The customer role lets us terminate only cluster nodes and what we launched.
            tags.insert(TAG_MANAGED.into(), "true".into());
            // The replacement's nodes (one, or more when its pods need them), each with an
            // idempotent client token; spot capacity errors fall back to on-demand when the
            // template allows.
            let mut fallback = None;
            let mut new_ids: Vec<String> = Vec::new();
            let mut lifecycle = cloud_lifecycle(dest.lifecycle);
            let mut launched_types = Vec::new();
            let all = std::iter::once(dest).chain(action.extra_destinations.iter());
            for (k, d) in all.enumerate() {
                let suffix = if k == 0 {
                    String::new()
                } else {
                    format!("-{k}")
                };
                let mut req = LaunchRequest {
                    instance_type: d.instance_type.clone(),
                    az: Some(d.az.clone()),
                    subnet_id: None,
                    lifecycle: cloud_lifecycle(d.lifecycle),
                    count: 1,
                    tags: tags.clone(),
                    client_token: client_token(&job.id, idx, &suffix),
                    asg_name: None,
                };
                let launched = match cloud.launch_capacity(&req, dry).await {
                    Err(CloudError::InsufficientCapacity { .. })
                        if req.lifecycle == CloudLifecycle::Spot
                            && policy.template.on_demand_fallback =>
                    {
                        fallback = Some(format!(
                            "spot capacity for {} in {} is exhausted; fell back to on-demand",
                            req.instance_type, d.az
                        ));
                        req.lifecycle = CloudLifecycle::OnDemand;
                        req.client_token = client_token(&job.id, idx, &format!("{suffix}-od"));
                        cloud.launch_capacity(&req, dry).await
                    }
                    other => other,
                };
                let launched = launched.map_err(|e| {
                    with(json!({"error": spot_actors::system::human(&e), "step": "launch", "launched": new_ids}))
                })?;
                if k == 0 {
                    lifecycle = req.lifecycle;
                }
                launched_types.push(json!({"instance_type": req.instance_type, "lifecycle": req.lifecycle, "az": d.az}));
                if let Mutation::Applied(r) = launched {
                    new_ids.extend(r.instances.into_iter().map(|i| i.id));
                }
            }
            let mut steps = Vec::new();
            if !dry {
                steps.push(agent_ops::step(
                    "launch",
                    json!({"instance_ids": new_ids, "instance_type": dest.instance_type, "lifecycle": lifecycle, "nodes": launched_types}),
                ));
                wait_running(cloud, &new_ids).await.map_err(|e| with(json!({"error": e, "step": "wait", "launched": new_ids, "steps": steps, "note": "the old node was kept; the new one is left running for inspection"})))?;
                // Nothing new lands on the old node from now on.
                let old = &action.target;
                let (ok, msg, detail) = agent
                    .command(
                        idx,
                        "cordon",
                        spot_agent_protocol::CommandKind::Cordon { node: old.clone() },
                        Duration::from_secs(60),
                    )
                    .await
                    .map_err(|e| with(json!({"error": e, "step": "cordon", "launched": new_ids, "steps": steps})))?;
                steps.push(agent_ops::step(
                    "cordon",
                    json!({"node": old, "ok": ok, "message": msg, "command_id": detail["command_id"]}),
                ));
                if !ok {
                    return Err(with(
                        json!({"error": format!("cordon of {old} failed: {msg}"), "step": "cordon", "launched": new_ids, "steps": steps}),
                    ));
                }
                // The replacement must be a Ready node before any pod is evicted.
                match agent_ops::wait_nodes_ready(
                    agent.db,
                    agent.org,
                    agent.cluster_id,
                    &new_ids,
                    agent_ops::NODE_READY_TIMEOUT,
                )
                .await
                {
                    Ok(names) => {
                        steps.push(agent_ops::step("ready", json!({"nodes": names})));
                        if let Err(e) = agent.mark(idx, &names, &mut steps).await {
                            let _ = agent
                                .command(
                                    idx,
                                    "uncordon",
                                    spot_agent_protocol::CommandKind::Uncordon {
                                        node: old.clone(),
                                    },
                                    Duration::from_secs(60),
                                )
                                .await;
                            return Err(with(
                                json!({"error": e, "step": "label", "launched": new_ids, "steps": steps, "note": "the old node was uncordoned and keeps running"}),
                            ));
                        }
                    }
                    Err(e) => {
                        let _ = agent
                            .command(
                                idx,
                                "uncordon",
                                spot_agent_protocol::CommandKind::Uncordon { node: old.clone() },
                                Duration::from_secs(60),
                            )
                            .await;
                        return Err(with(
                            json!({"error": e, "step": "ready", "launched": new_ids, "steps": steps, "note": "the old node was uncordoned and keeps running"}),
                        ));
                    }
                }
                agent.drain(idx, old, &mut steps).await.map_err(|e| {
                    with(json!({"error": e, "step": "drain", "launched": new_ids, "steps": steps}))
                })?;
                remove_node_object(agent, idx, old, &mut steps).await;
            }
            let asg = retire_node(cloud, cluster, node, dry)
                .await
                .map_err(|e| with(json!({"error": spot_actors::system::human(&e), "step": "terminate", "instance_id": node.instance_id, "launched": new_ids, "steps": steps})))?;
            if !dry {
                steps.push(agent_ops::step(
                    "terminate",
                    json!({"instance_id": node.instance_id, "asg_resized": asg}),
                ));
            }
            let savings_note = if fallback.is_some() {
                json!(null)
            } else {
                json!(action.expected_monthly_savings)
            };
            Ok(with(
                json!({"status": status, "launched": new_ids, "terminated": node.instance_id, "asg_resized": asg, "replaced_hourly": node.hourly_price, "lifecycle": lifecycle, "fallback": fallback, "monthly_savings": savings_note, "steps": steps}),
            ))
        }
    }
}

/// Deletes the Node object of a drained node before its instance is terminated (best
/// effort: the cloud controller removes it too; a failure is reported in the steps, not as
/// a failed action).
pub(crate) async fn remove_node_object(
    agent: &AgentTarget<'_>,
    idx: usize,
    node: &str,
    steps: &mut Vec<serde_json::Value>,
) {
    let r = agent
        .command(
            idx,
            "delete-node",
            spot_agent_protocol::CommandKind::DeleteNode {
                node: node.to_string(),
            },
            Duration::from_secs(60),
        )
        .await;
    steps.push(agent_ops::step(
        "delete_node",
        json!({"node": node, "ok": r.as_ref().is_ok_and(|x| x.0), "message": match &r { Ok(x) => x.1.clone(), Err(e) => e.clone() }}),
    ));
}

/// Checks, against the cloud as it is now, that `instance_id` is a node of `cluster` (by
/// its cluster tags, as discovery reads them): the plan was made from a snapshot, and an
/// instance id that no longer is (or never was) a node of the cluster being optimized is
/// never terminated, whatever the plan says.
pub(crate) async fn confirm_cluster_node(
    cloud: &dyn Cloud,
    cluster: &str,
    instance_id: &str,
) -> Result<(), CloudError> {
    let all = cloud.describe_instances().await?;
    let Some(inst) = all.iter().find(|i| i.id == instance_id) else {
        return Err(CloudError::invalid(
            "instance_id",
            format!("{instance_id} no longer exists; nothing was terminated"),
        ));
    };
    match spot_cloud::cluster_from_tags(&inst.tags) {
        Some(c) if c == cluster => Ok(()),
        Some(other) => Err(CloudError::invalid(
            "instance_id",
            format!(
                "{instance_id} is a node of cluster {other}, not {cluster}; refused to terminate it"
            ),
        )),
        None => Err(CloudError::invalid(
            "instance_id",
            format!("{instance_id} carries no cluster tag of {cluster}; refused to terminate it"),
        )),
    }
}

/// Terminates a node for good. When an Auto Scaling group owns it, it is first detached
/// with the group's desired capacity lowered by one (lowering the group's minimum first if
/// it would block that), so the group neither replaces it nor scales in another node.
/// Only a node of `cluster` (checked against its tags at this moment) is touched.
pub(crate) async fn retire_node(
    cloud: &dyn Cloud,
    cluster: &str,
    node: &LiveNode,
    dry: bool,
) -> Result<Option<String>, CloudError> {
    confirm_cluster_node(cloud, cluster, &node.instance_id).await?;
    let mut resized = None;
    if let Some(name) = &node.asg_name {
        let groups = cloud.describe_auto_scaling_groups().await?;
        if let Some(g) = groups
            .iter()
            .find(|g| &g.name == name && g.instance_ids.contains(&node.instance_id))
        {
            let desired = g.desired_capacity.saturating_sub(1);
            if g.min_size > desired {
                let lower_min = spot_cloud::AsgUpdate {
                    name: name.clone(),
                    min_size: Some(desired),
                    max_size: None,
                    desired_capacity: None,
                };
                cloud.update_auto_scaling_group(&lower_min, dry).await?;
            }
            // (A dry run cannot validate the detach against a minimum it only pretended to lower.)
            if !(dry && g.min_size > desired) {
                cloud
                    .detach_from_auto_scaling_group(
                        name,
                        std::slice::from_ref(&node.instance_id),
                        dry,
                    )
                    .await?;
            }
            resized = Some(format!(
                "{name}: desired {} → {desired}",
                g.desired_capacity
            ));
        }
    }
    cloud
        .terminate_instances(std::slice::from_ref(&node.instance_id), dry)
        .await?;
    Ok(resized)
}

pub(crate) async fn wait_running(cloud: &dyn Cloud, ids: &[String]) -> Result<(), String> {
    let deadline = tokio::time::Instant::now() + READY_TIMEOUT;
    loop {
        let all = cloud
            .describe_instances()
            .await
            .map_err(|e| spot_actors::system::human(&e))?;
        let ready = ids.iter().all(|id| {
            all.iter()
                .any(|i| &i.id == id && i.state == InstanceState::Running)
        });
        if ready {
            return Ok(());
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(format!(
                "new capacity {ids:?} not running after {} s",
                READY_TIMEOUT.as_secs()
            ));
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// The scored market of one of the organization's linked accounts (`account_id`, or the
/// first linked one): instance catalog, on-demand and spot prices, pool risk, with the
/// account it priced. The error is a sentence for the user.
pub async fn account_market(
    ctx: &JobContext,
    org: &str,
    account_id: Option<&str>,
) -> Result<(spot_actors::market::Market, accounts::Account), String> {
    let linked = accounts::list(&ctx.db, org)
        .await
        .map_err(|e| e.to_string())?;
    let account = linked
        .into_iter()
        .filter(|a| a.aws_account_id.is_some())
        .find(|a| account_id.is_none_or(|id| a.id == id))
        .ok_or_else(|| match account_id {
            Some(_) => "no such linked account".to_string(),
            None => "link a cloud account first: prices come from its region's market".to_string(),
        })?;
    let cloud = connect(ctx, &account).await?;
    let model = ctx.risk.current();
    let market = spot_actors::market::read(cloud.as_ref(), &model, ctx.hive.as_ref())
        .await
        .map_err(|e| match e {
            spot_actors::market::MarketError::Cloud(c) => spot_actors::system::human(&c),
            other => other.to_string(),
        })?;
    Ok((market, account))
}

#[cfg(test)]
mod executor_scope_tests {
    use super::*;
    use spot_cloud::sim::SimCloud;

    fn live(instance_id: &str) -> LiveNode {
        LiveNode {
            instance_id: instance_id.to_string(),
            node_group: None,
            asg_name: None,
            hourly_price: 0.1,
        }
    }

    async fn state_of(cloud: &SimCloud, id: &str) -> InstanceState {
        cloud
            .describe_instances()
            .await
            .expect("describe")
            .into_iter()
            .find(|i| i.id == id)
            .expect("instance")
            .state
    }

    #[tokio::test]
    async fn only_nodes_of_the_cluster_being_optimized_are_terminated() {
        let cloud = SimCloud::for_account("123456789012", 42).expect("sim");
        let all = cloud.describe_instances().await.expect("describe");
        let running = |i: &&spot_cloud::Instance| i.state == InstanceState::Running;
        let node = all
            .iter()
            .filter(running)
            .find(|i| i.cluster.is_some())
            .expect("a cluster node");
        let cluster = node.cluster.clone().expect("cluster");
        let other_node = all
            .iter()
            .filter(running)
            .find(|i| i.cluster.as_deref().is_some_and(|c| c != cluster))
            .expect("a node of another cluster");
        let stray = all
            .iter()
            .filter(running)
            .find(|i| i.cluster.is_none())
            .expect("an unregistered instance");

        // A node of another cluster, an instance of no cluster, an unknown id: refused,
        // and nothing is terminated.
        for id in [&other_node.id, &stray.id] {
            let e = retire_node(&cloud, &cluster, &live(id), false)
                .await
                .expect_err("must refuse");
            assert!(e.to_string().contains("refused"), "{e}");
            assert_eq!(state_of(&cloud, id).await, InstanceState::Running);
        }
        assert!(
            retire_node(&cloud, &cluster, &live("i-0000000000000dead"), false)
                .await
                .is_err()
        );

        // The check reads the tags at execution time: a node retagged into another cluster
        // after the plan was made is refused too.
        cloud
            .tag_instance(&node.id, TAG_EKS_CLUSTER, "somebody-else")
            .expect("tag");
        assert!(retire_node(&cloud, &cluster, &live(&node.id), false)
            .await
            .is_err());
        assert_eq!(state_of(&cloud, &node.id).await, InstanceState::Running);
        cloud
            .tag_instance(&node.id, TAG_EKS_CLUSTER, &cluster)
            .expect("tag");

        // The cluster's own node: terminated.
        retire_node(&cloud, &cluster, &live(&node.id), false)
            .await
            .expect("a node of the cluster is retired");
        assert_ne!(state_of(&cloud, &node.id).await, InstanceState::Running);
    }
}
