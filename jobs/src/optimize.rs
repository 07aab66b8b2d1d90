//! "Optimize Now" for one cluster (CORE-DECIDE + CORE-EXEC): read the cluster through the
//! Cloud port, score its pools with the current risk model, plan with the engine
//! (consolidation, on-demand → spot moves, decision engine), store the versioned plan, then
//! execute it action by action: launch replacement capacity, wait until it runs, terminate
//! the old node (its pods are rescheduled), record savings, audit each action with actor
//! `system` and the job id. SAFE_MODE, the cluster policy's dry run, or a dry-run request
//! send every call with `dry_run = true` ("would execute": validated, nothing changes).

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::time::Duration;

use serde_json::json;
use spot_cloud::{
    Cloud, CloudError, InstanceState, LaunchRequest, Lifecycle as CloudLifecycle, Mutation,
    WorkloadKind, TAG_EKS_CLUSTER, TAG_EKS_NODEGROUP,
};
use spot_engine::catalog::{Arch, Catalog, Lifecycle, PoolKey, Resources};
use spot_engine::consolidate::{self, ClusterState, RunningNode, RunningPod};
use spot_engine::decide::{self, ActionKind, ActionPlan, DecisionInput, SpotMove};
use spot_engine::pack::CapacityReq;
use spot_engine::spot::{self, Requirements};
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

fn engine_lifecycle(l: CloudLifecycle) -> Lifecycle {
    match l {
        CloudLifecycle::Spot => Lifecycle::Spot,
        CloudLifecycle::OnDemand => Lifecycle::OnDemand,
    }
}

fn cloud_lifecycle(l: Lifecycle) -> CloudLifecycle {
    match l {
        Lifecycle::Spot => CloudLifecycle::Spot,
        Lifecycle::OnDemand => CloudLifecycle::OnDemand,
    }
}

/// What the planner knew about one live node.
struct LiveNode {
    instance_id: String,
    node_group: Option<String>,
    /// Auto Scaling group that would replace the instance when it is terminated.
    asg_name: Option<String>,
    hourly_price: f64,
}

/// The market and cluster snapshot a plan is made from.
pub struct Snapshot {
    pub catalog: Catalog,
    pub state: ClusterState,
    pub pool_risk: BTreeMap<PoolKey, f64>,
    pub risk_flags: BTreeSet<PoolKey>,
    /// Usage of each workload (one representative pod, last 2 days at 5 minutes), for
    /// rightsizing. Empty when the cloud cannot report pod usage.
    pub workloads: Vec<spot_engine::rightsize::WorkloadUsage>,
    /// Where nodes and pods were read: `agent` (the in-cluster agent's view) or `cloud`
    /// (the simulator's inventory, for dry runs of clusters without an agent).
    pub source: &'static str,
    nodes: HashMap<String, LiveNode>,
}

/// The agent's view in the shapes the planner reads: the inventory, the PDBs, and the
/// nodes that must not be disrupted (cordoned by someone else, or running a pod marked
/// do-not-disrupt).
fn inventory_from_view(
    cluster: &str,
    v: &agents::ClusterView,
) -> (
    spot_cloud::PodInventory,
    Vec<spot_engine::consolidate::Pdb>,
    HashSet<String>,
) {
    use spot_agent_protocol as proto;
    let mut protected: HashSet<String> = v
        .nodes
        .iter()
        .filter(|n| n.unschedulable || proto::is_do_not_disrupt(&n.annotations))
        .map(|n| n.name.clone())
        .collect();
    let nodes = v
        .nodes
        .iter()
        .filter_map(|n| {
            Some(spot_cloud::KubeNode {
                name: n.name.clone(),
                instance_id: n.instance_id.clone()?,
                instance_type: n.instance_type.clone()?,
                az: n.zone.clone()?,
                lifecycle: match n.capacity_type.as_deref() {
                    Some("spot") => CloudLifecycle::Spot,
                    _ => CloudLifecycle::OnDemand,
                },
                node_group: n.node_group.clone(),
                allocatable_cpu_millicores: u32::try_from(n.allocatable.cpu_millis)
                    .unwrap_or(u32::MAX),
                allocatable_memory_mib: u32::try_from(n.allocatable.memory_mib).unwrap_or(u32::MAX),
                ready: n.ready,
            })
        })
        .collect();
    let mut pods = Vec::new();
    for p in &v.pods {
        if p.do_not_disrupt {
            if let Some(n) = &p.node_name {
                protected.insert(n.clone());
            }
        }
        let phase = match p.phase {
            proto::PodPhase::Pending => spot_cloud::PodPhase::Pending,
            proto::PodPhase::Running => spot_cloud::PodPhase::Running,
            // Finished pods hold no capacity.
            _ => continue,
        };
        let kind = match p.owner.as_ref().map(|o| o.kind.as_str()) {
            Some("Deployment") | Some("ReplicaSet") => WorkloadKind::Deployment,
            Some("StatefulSet") => WorkloadKind::StatefulSet,
            Some("DaemonSet") => WorkloadKind::DaemonSet,
            Some("Job") => WorkloadKind::Job,
            _ => WorkloadKind::Other,
        };
        pods.push(spot_cloud::Pod {
            namespace: p.namespace.clone(),
            name: p.name.clone(),
            owner: p.owner.as_ref().map(|o| spot_cloud::WorkloadRef {
                kind: if p.daemonset {
                    WorkloadKind::DaemonSet
                } else {
                    kind
                },
                name: o.name.clone(),
            }),
            node_name: p.node_name.clone(),
            phase,
            cpu_request_millicores: u32::try_from(p.requests.cpu_millis).unwrap_or(u32::MAX),
            memory_request_mib: u32::try_from(p.requests.memory_mib).unwrap_or(u32::MAX),
        });
    }
    let pdbs = v
        .pdbs
        .iter()
        .map(|b| spot_engine::consolidate::Pdb {
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
    (
        spot_cloud::PodInventory {
            cluster: cluster.to_string(),
            collected_at: v.collected_at.unwrap_or_else(chrono::Utc::now),
            nodes,
            pods,
        },
        pdbs,
        protected,
    )
}

/// Usage history window and step read for rightsizing.
const USAGE_WINDOW_HOURS: i64 = 48;
const USAGE_STEP: Duration = Duration::from_secs(300);

/// One usage series per workload (Deployment, StatefulSet, ...; DaemonSets and bare pods
/// excluded), read from one running replica; requests are that replica's.
async fn workload_usage(
    cloud: &dyn Cloud,
    cluster: &str,
    pods: &[spot_cloud::Pod],
) -> Vec<spot_engine::rightsize::WorkloadUsage> {
    let mut groups: BTreeMap<String, Vec<&spot_cloud::Pod>> = BTreeMap::new();
    for p in pods
        .iter()
        .filter(|p| p.phase == spot_cloud::PodPhase::Running)
    {
        let Some(o) = &p.owner else { continue };
        if o.kind == WorkloadKind::DaemonSet {
            continue;
        }
        groups
            .entry(format!("{}/{:?}/{}", p.namespace, o.kind, o.name))
            .or_default()
            .push(p);
    }
    let to = cloud.now();
    let from = to - chrono::Duration::hours(USAGE_WINDOW_HOURS);
    let mut out = Vec::new();
    for (workload, replicas) in groups {
        let rep = replicas[0];
        let pod = spot_cloud::PodRef {
            namespace: rep.namespace.clone(),
            name: rep.name.clone(),
        };
        let samples = match cloud.pod_usage(cluster, &pod, from, to, USAGE_STEP).await {
            Ok(s) => s,
            Err(CloudError::Unsupported(_)) => return Vec::new(),
            Err(e) => {
                tracing::warn!(component = "MOD-SIZE-01", workload, error = %e, "usage unavailable; workload not rightsized");
                continue;
            }
        };
        out.push(spot_engine::rightsize::WorkloadUsage {
            workload,
            replicas: replicas.len() as u32,
            cpu_request_millis: u64::from(rep.cpu_request_millicores),
            memory_request_mib: u64::from(rep.memory_request_mib),
            cpu_samples_millis: samples
                .iter()
                .map(|s| f64::from(s.cpu_millicores))
                .collect(),
            memory_samples_mib: samples.iter().map(|s| f64::from(s.memory_mib)).collect(),
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
    let human = |e: CloudError| {
        match e {
        CloudError::Unsupported(_) => "reading pods needs the in-cluster agent for this cloud; install it on the cluster first".to_string(),
        other => spot_actors::system::human(&other),
    }
    };
    // The agent's view is the source of nodes, pods and PDBs; without one (never
    // connected) only the simulator can answer, for a dry run.
    let view = agents::cluster_view(&ctx.db, org_id, cluster_id)
        .await
        .map_err(|e| e.to_string())?
        .filter(|v| !v.nodes.is_empty());
    let (inv, pdbs, protected, pdb_members, source) = match view {
        Some(v) => {
            let (inv, pdbs, protected) = inventory_from_view(cluster, &v);
            let members: Vec<(String, String, String)> = v
                .pods
                .iter()
                .filter_map(|p| {
                    let pdb = p.pdbs.first()?;
                    let name = pdb.split_once('/').map_or(pdb.as_str(), |(_, n)| n);
                    Some((p.namespace.clone(), p.name.clone(), name.to_string()))
                })
                .collect();
            (inv, pdbs, protected, members, "agent")
        }
        None => (
            cloud.pod_inventory(cluster).await.map_err(human)?,
            Vec::new(),
            HashSet::new(),
            Vec::new(),
            "cloud",
        ),
    };
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
    let arch_of: HashMap<&str, Arch> = catalog
        .types()
        .iter()
        .map(|t| (t.name.as_str(), t.arch))
        .collect();
    // PDB of each pod (the engine takes the name within the pod's namespace).
    let pdb_of: HashMap<(&str, &str), String> = pdb_members
        .iter()
        .map(|(ns, name, pdb)| ((ns.as_str(), name.as_str()), pdb.clone()))
        .collect();
    let mut by_node: HashMap<&str, Vec<RunningPod>> = HashMap::new();
    for p in &inv.pods {
        let Some(node) = p.node_name.as_deref() else {
            continue;
        };
        by_node.entry(node).or_default().push(RunningPod {
            name: p.name.clone(),
            namespace: p.namespace.clone(),
            labels: BTreeMap::new(),
            cpu_millis: u64::from(p.cpu_request_millicores),
            memory_mib: u64::from(p.memory_request_mib),
            gpus: 0,
            capacity: CapacityReq::Any,
            arch: None,
            anti_affinity_group: None,
            pdb: pdb_of
                .get(&(p.namespace.as_str(), p.name.as_str()))
                .cloned(),
            daemonset: p
                .owner
                .as_ref()
                .is_some_and(|o| o.kind == WorkloadKind::DaemonSet),
        });
    }
    // Node age (stabilization window) comes from the instance's launch time.
    let described: HashMap<String, spot_cloud::Instance> = cloud
        .describe_instances()
        .await
        .map_err(human)?
        .into_iter()
        .map(|i| (i.id.clone(), i))
        .collect();
    let mut nodes = Vec::new();
    let mut live = HashMap::new();
    // Cordoned nodes, and nodes running do-not-disrupt pods, are left out of planning.
    for n in inv
        .nodes
        .iter()
        .filter(|n| n.ready && !protected.contains(&n.name))
    {
        let lifecycle = engine_lifecycle(n.lifecycle);
        let hourly = match lifecycle {
            Lifecycle::Spot => spot_prices
                .get(&(n.instance_type.clone(), n.az.clone()))
                .copied(),
            Lifecycle::OnDemand => od.get(&n.instance_type).copied(),
        }
        .unwrap_or(0.0);
        let launch = described.get(&n.instance_id).map_or_else(
            || inv.collected_at.timestamp(),
            |i| i.launch_time.timestamp(),
        );
        nodes.push(RunningNode {
            name: n.name.clone(),
            instance_type: n.instance_type.clone(),
            lifecycle,
            az: n.az.clone(),
            arch: arch_of
                .get(n.instance_type.as_str())
                .copied()
                .unwrap_or(Arch::X86_64),
            hourly_price: hourly,
            allocatable: Resources {
                cpu_millis: u64::from(n.allocatable_cpu_millicores),
                memory_mib: u64::from(n.allocatable_memory_mib),
                gpus: 0,
                pods: 110,
            },
            created_at: launch,
            interruption_probability: if lifecycle == Lifecycle::Spot {
                pool_risk
                    .get(&PoolKey::new(&n.instance_type, &n.az))
                    .copied()
                    .unwrap_or(UNSCORED_RISK)
            } else {
                0.0
            },
            pods: by_node.remove(n.name.as_str()).unwrap_or_default(),
        });
        live.insert(
            n.name.clone(),
            LiveNode {
                instance_id: n.instance_id.clone(),
                node_group: n.node_group.clone(),
                asg_name: described
                    .get(&n.instance_id)
                    .and_then(|i| i.asg_name.clone()),
                hourly_price: hourly,
            },
        );
    }
    nodes.sort_by(|a, b| a.name.cmp(&b.name));
    let workloads = workload_usage(cloud, cluster, &inv.pods).await;
    Ok(Snapshot {
        catalog,
        state: ClusterState { nodes, pdbs },
        source,
        pool_risk,
        risk_flags,
        workloads,
        nodes: live,
    })
}

/// The engine half: consolidation, on-demand → spot moves, decision engine. Pure.
pub fn plan(snap: &Snapshot, policy: &ClusterPolicy, now: i64) -> ActionPlan {
    let overhead = spot_engine::catalog::NodeOverhead::default();
    let offers =
        spot::offers_for_template(&snap.catalog, &policy.template, &snap.risk_flags, &overhead);
    let consolidation =
        consolidate::consolidate(&snap.state, &policy.consolidation(), &offers, now);
    let mut spot_moves = Vec::new();
    let touched: HashSet<&str> = consolidation
        .decisions
        .iter()
        .filter(|d| !matches!(d.action, consolidate::NodeAction::Keep))
        .map(|d| d.node.as_str())
        .collect();
    if policy.template.capacity_type != spot::CapacityType::OnDemand {
        for n in
            snap.state.nodes.iter().filter(|n| {
                n.lifecycle == Lifecycle::OnDemand && !touched.contains(n.name.as_str())
            })
        {
            let excluded = n
                .pods
                .iter()
                .any(|p| !p.daemonset && policy.excluded_namespaces.contains(&p.namespace));
            if excluded || n.pods.iter().all(|p| p.daemonset) {
                continue;
            }
            // Same capacity on spot: the node's allocatable must fit again.
            let req = Requirements {
                cpu_millis: n.allocatable.cpu_millis,
                memory_mib: n.allocatable.memory_mib,
                gpus: 0,
                arch: Some(n.arch),
                stateful: false,
            };
            if let Ok(sel) = spot::select(&snap.catalog, &policy.template, &req, &snap.risk_flags) {
                if let Some(c) = sel
                    .choices
                    .into_iter()
                    .find(|c| c.lifecycle == Lifecycle::Spot && c.hourly_price < n.hourly_price)
                {
                    spot_moves.push(SpotMove {
                        node: n.name.clone(),
                        current_hourly: n.hourly_price,
                        choice: c,
                    });
                }
            }
        }
    }
    let node_risk = snap
        .state
        .nodes
        .iter()
        .map(|n| (n.name.clone(), n.interruption_probability))
        .collect();
    decide::decide(
        &DecisionInput {
            consolidation: Some(consolidation),
            // MOD-SIZE-01; a workload whose samples the engine rejects is left out.
            rightsizing: snap
                .workloads
                .iter()
                .filter_map(|w| spot_engine::rightsize::recommend(w, &policy.rightsizing()).ok())
                .collect(),
            spot_moves,
            node_risk,
            pool_risk: snap.pool_risk.clone(),
            risk_flags: snap.risk_flags.clone(),
            maintenance_mode: policy.maintenance_mode,
        },
        now,
    )
}

pub async fn run(ctx: &JobContext, job: &jobs::JobRow) -> Result<Done, Failure> {
    let org = job
        .organization_id
        .clone()
        .ok_or_else(|| fail("optimize job without organization"))?;
    let cluster_id = job
        .target_id
        .clone()
        .ok_or_else(|| fail("optimize job without cluster"))?;
    let db = &ctx.db;
    let cluster = inventory::cluster(db, &org, &cluster_id)
        .await
        .map_err(|e| fail(e.to_string()))?
        .ok_or_else(|| fail("the cluster no longer exists"))?;
    let account = accounts::by_id(db, &cluster.account_id)
        .await
        .map_err(|e| fail(e.to_string()))?
        .ok_or_else(|| fail("the cluster's account no longer exists"))?;
    let policy = match jobs::cluster_policy(db, &org, &cluster_id)
        .await
        .map_err(|e| fail(e.to_string()))?
    {
        Some(s) => ClusterPolicy::from_json(&s)
            .map_err(|e| fail(format!("stored policy is invalid: {e}")))?,
        None => ClusterPolicy::default(),
    };
    let dry = ctx.safe_mode || policy.dry_run || job.dry_run != 0;
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
    let ciphertext = accounts::credentials(db, &account.id)
        .await
        .map_err(|e| fail(e.to_string()))?;
    let target =
        spot_actors::system::target_of(&ctx.keyring, &account, ciphertext).map_err(fail)?;
    let cloud = ctx
        .connector
        .connect(&target)
        .await
        .map_err(|e| fail(spot_actors::system::human(&e)))?;
    progress(ctx, job, 15, "reading nodes, pods and the spot market").await;
    let decide_started = std::time::Instant::now();
    let snap = snapshot(ctx, cloud.as_ref(), &org, &cluster_id, &cluster.name)
        .await
        .map_err(fail)?;
    let now = cloud.now().timestamp();
    let action_plan = plan(&snap, &policy, now);
    let plan_ms = decide_started.elapsed().as_millis() as u64;
    let plan_json = serde_json::to_string(&action_plan).unwrap_or_default();
    if let Err(e) = jobs::set_plan(db, &job.id, &plan_json).await {
        return Err(fail(format!("plan not saved: {e}")));
    }
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
    let mode = if dry { "dry_run" } else { "execute" };
    let mut executed = Vec::new();
    let total = action_plan.actions.len().max(1);
    let mut realised = 0.0;
    for (idx, action) in action_plan.actions.iter().enumerate() {
        let pct = 40 + (55 * (idx + 1) / total) as i64;
        let agent = AgentTarget {
            db,
            drain_timeout: Duration::from_secs(policy.drain_timeout_secs),
            org: &org,
            cluster_id: &cluster_id,
            job_id: &job.id,
        };
        let outcome = execute_action(
            cloud.as_ref(),
            &agent,
            job,
            &cluster.name,
            &snap,
            &policy,
            idx,
            action,
            dry,
        )
        .await;
        match outcome {
            Ok(detail) => {
                let applied = detail.get("status").and_then(|s| s.as_str()) == Some("applied");
                if applied {
                    realised += action.expected_monthly_savings;
                    if let Err(e) = jobs::record_saving(
                        db,
                        &org,
                        &cluster_id,
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
                audit_job(ctx, job, "optimize.action", "success", detail.clone()).await;
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
                audit_job(ctx, job, "optimize.action", "failed", detail.clone()).await;
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
                ctx.actors.resync(&account.id);
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
        ctx.actors.resync(&account.id);
    }
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
            "source": snap.source,
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
fn client_token(job_id: &str, idx: usize, suffix: &str) -> String {
    let t = format!("so-{}-{idx}{suffix}", job_id.replace('-', ""));
    t.chars().take(64).collect()
}

/// The cluster whose agent carries out the Kubernetes half of an action.
struct AgentTarget<'a> {
    db: &'a spot_models::Db,
    /// How long a drain may wait for PodDisruptionBudgets (the cluster policy's).
    drain_timeout: Duration,
    org: &'a str,
    cluster_id: &'a str,
    job_id: &'a str,
}

impl AgentTarget<'_> {
    /// Runs one agent command for action `idx`; `Err` is a human message.
    async fn command(
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
    async fn drain(
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
        ActionKind::RightsizeDown | ActionKind::RightsizeUp => Ok(with(
            json!({"status": "skipped", "reason": "rightsizing is recommend-only: the plan sizes whole pods, and requests are set per container by the workload's owner"}),
        )),
        ActionKind::DeleteEmptyNode | ActionKind::DrainAndDeleteNode => {
            let node = snap
                .nodes
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
            match retire_node(cloud, node, dry).await {
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
                .nodes
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
            let mut req = LaunchRequest {
                instance_type: dest.instance_type.clone(),
                az: Some(dest.az.clone()),
                subnet_id: None,
                lifecycle: cloud_lifecycle(dest.lifecycle),
                count: 1,
                tags,
                client_token: client_token(&job.id, idx, ""),
                asg_name: None,
            };
            let mut fallback = None;
            let launched = match cloud.launch_capacity(&req, dry).await {
                Err(CloudError::InsufficientCapacity { .. })
                    if req.lifecycle == CloudLifecycle::Spot
                        && policy.template.on_demand_fallback =>
                {
                    fallback = Some(format!(
                        "spot capacity for {} in {} is exhausted; fell back to on-demand",
                        req.instance_type, dest.az
                    ));
                    req.lifecycle = CloudLifecycle::OnDemand;
                    req.client_token = client_token(&job.id, idx, "-od");
                    cloud.launch_capacity(&req, dry).await
                }
                other => other,
            };
            let launched = launched.map_err(|e| {
                with(json!({"error": spot_actors::system::human(&e), "step": "launch"}))
            })?;
            let new_ids: Vec<String> = match launched {
                Mutation::Applied(r) => r.instances.into_iter().map(|i| i.id).collect(),
                Mutation::DryRun(_) => Vec::new(),
            };
            let mut steps = Vec::new();
            if !dry {
                steps.push(agent_ops::step(
                    "launch",
                    json!({"instance_ids": new_ids, "instance_type": req.instance_type, "lifecycle": req.lifecycle}),
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
                    Ok(names) => steps.push(agent_ops::step("ready", json!({"nodes": names}))),
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
            let asg = retire_node(cloud, node, dry)
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
                json!({"status": status, "launched": new_ids, "terminated": node.instance_id, "asg_resized": asg, "replaced_hourly": node.hourly_price, "lifecycle": req.lifecycle, "fallback": fallback, "monthly_savings": savings_note, "steps": steps}),
            ))
        }
    }
}

/// Deletes the Node object of a drained node before its instance is terminated (best
/// effort: the cloud controller removes it too; a failure is reported in the steps, not as
/// a failed action).
async fn remove_node_object(
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

/// Terminates a node for good. When an Auto Scaling group owns it, it is first detached
/// with the group's desired capacity lowered by one (lowering the group's minimum first if
/// it would block that), so the group neither replaces it nor scales in another node.
async fn retire_node(
    cloud: &dyn Cloud,
    node: &LiveNode,
    dry: bool,
) -> Result<Option<String>, CloudError> {
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

async fn wait_running(cloud: &dyn Cloud, ids: &[String]) -> Result<(), String> {
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
