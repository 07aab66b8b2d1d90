//! One planner: the LP packer drives every consolidation decision, explained, within
//! disruption budgets.
//!
//! [`plan`] takes a [`PlanInput`] (cluster snapshot, PDBs, policy, scored market, `now`)
//! and returns a versioned [`Plan`]: ordered waves of actions, the fleet after the plan,
//! and a reason for **every** existing node and **every** pending pod.
//!
//! How it decides:
//! 1. Nodes are classified. A node is pinned (kept, never touched, never receives pods
//!    when unmanaged or do-not-disrupt) when it is unmanaged (flag, excluded namespace or
//!    label on a pod), marked do-not-disrupt (node or pod), in maintenance mode, inside the
//!    stabilization window, holds more pods of a PDB than the PDB allows to be disrupted,
//!    runs a pod no offer can host, or (method `delete_empty`) runs pods. The others are
//!    candidates; their non-DaemonSet pods plus the pending pods are the movable pods.
//! 2. Per-workload on-demand minimums turn enough movable matching pods into on-demand
//!    pods (pods already on on-demand nodes first) so that the minimum holds afterwards.
//! 3. Offers come from the node template and the market: flagged and AVOID pools
//!    excluded, allocatable = capacity − the EKS reserve (max pods from the type's ENI
//!    limit when known) − the largest DaemonSet footprint seen on a node; an offer with
//!    interruption probability `p` (0 on-demand) is weighed at `price × (1 + λ p) +
//!    λ (NODE_EXPOSURE_COST_HOURLY + NODE_INTERRUPTION_COST_HOURLY × p)`, λ the policy's
//!    `risk_premium` (the last terms are per node: fewer, larger nodes in safer pools win
//!    at equal price).
//! 4. The LP packer ([`crate::pack::pack`]) computes the target fleet for the movable pods.
//!    Two change sets are built and compared:
//!    - *target*: keep the candidate nodes whose (type, lifecycle, zone) the target fleet
//!      uses (fullest first), fill their free room, pack the rest with the LP onto new
//!      nodes; every other candidate node is deleted or replaced;
//!    - *incremental*: delete empty nodes, drain under-utilised nodes (below the
//!      aggressiveness threshold) whose pods fit on other nodes (never onto spot nodes in
//!      AVOID or flagged pools), pack pending pods.
//!
//!    The target set wins when the method is `replace_and_move`, aggressiveness is not
//!    conservative, and it saves more than the incremental set by at least the
//!    aggressiveness margin of the replaced nodes' cost (balanced: 20 %, aggressive: any)
//!    plus [`POD_DISRUPTION_COST_HOURLY`] per pod it evicts beyond the incremental set
//!    (objectives compared without the per-node exposure weight: having fewer nodes is
//!    no reason on its own to restart pods).
//! 5. Removals are ordered (empty first, then largest saving) into waves, each disrupting
//!    at most the budget's node count and evicting at most a PDB's allowance per PDB; a
//!    new node is launched in the first wave that moves pods onto it (wave 0 for
//!    pending pods). With `max_waves`, removals that do not fit are kept ("disruption
//!    budget exhausted") and the plan is recomputed without them.
//!
//! Pure and deterministic: no IO, no clock (`now` is an input), work bounded by the
//! packer's iteration budgets; ties are broken by names.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::catalog::{Arch, Catalog, Lifecycle, NodeOverhead, PoolKey, Resources, AVOID_THRESHOLD};
use crate::consolidate::{
    Aggressiveness, ClusterState, ConsolidationMethod, Pdb, RunningNode, RunningPod,
};
use crate::decide::{self, ActionKind, ActionPlan, BlockedAction, Destination};
use crate::pack::{self, CapacityReq, NodeOffer, PackOptions, Pod};
use crate::policy::ClusterPolicy;
use crate::spot::CapacityType;
use crate::{check_non_negative, invalid, EngineError, Result};

/// Schema version of [`Plan`]; bump on any breaking change of its JSON.
pub const PLAN_VERSION: u32 = 1;

/// Label or annotation key that marks a node or pod as not to be disrupted.
pub const DO_NOT_DISRUPT: &str = "karpenter.sh/do-not-disrupt";
/// Hourly saving a replacement must bring per pod it evicts beyond what the incremental
/// consolidation evicts (≈ $3.65 per pod-month): without it a plan re-run every few
/// minutes replaces nodes for cents and restarts pods all day.
pub const POD_DISRUPTION_COST_HOURLY: f64 = 0.005;
/// Per-node part of the risk weighting (USD/h per unit of `risk_premium × p`): what an
/// interruption costs beyond the node's price share (restarts, rescheduling), the same
/// for a small node as for a large one.
pub const NODE_INTERRUPTION_COST_HOURLY: f64 = 0.25;
/// Per-node exposure weight (USD/h per unit of `risk_premium`), spot and on-demand alike:
/// the interruption count grows with the node count, so at equal price the objective
/// prefers fewer, larger nodes.
pub const NODE_EXPOSURE_COST_HOURLY: f64 = 0.01;
/// Label on a node that the optimizer must leave alone.
pub const UNMANAGED_LABEL: &str = "spot-optimizer.io/unmanaged";

/// A pod's capacity type and architecture from its node selector (the labels Karpenter and
/// EKS managed node groups put on nodes: `karpenter.sh/capacity-type`,
/// `eks.amazonaws.com/capacityType`, `kubernetes.io/arch`).
pub fn constraints_from_node_selector(
    selector: &BTreeMap<String, String>,
) -> (CapacityReq, Option<Arch>) {
    let sel = |k: &str| selector.get(k).map(|v| v.to_ascii_lowercase());
    let capacity = match sel("karpenter.sh/capacity-type")
        .or_else(|| sel("eks.amazonaws.com/capacityType"))
        .as_deref()
    {
        Some("spot") => CapacityReq::Spot,
        Some("on-demand") | Some("on_demand") => CapacityReq::OnDemand,
        _ => CapacityReq::Any,
    };
    let arch = match sel("kubernetes.io/arch").as_deref() {
        Some("amd64") => Some(Arch::X86_64),
        Some("arm64") => Some(Arch::Arm64),
        _ => None,
    };
    (capacity, arch)
}

/// A pod in the snapshot (running on a node, or pending).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SnapPod {
    pub name: String,
    #[serde(default = "default_namespace")]
    pub namespace: String,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// Owning workload, e.g. `Deployment/api` (reasons only).
    #[serde(default)]
    pub owner: Option<String>,
    /// Pod priority; higher-priority pending pods are placed first.
    #[serde(default)]
    pub priority: i32,
    pub cpu_millis: u64,
    pub memory_mib: u64,
    #[serde(default)]
    pub gpus: u32,
    #[serde(default = "any_capacity")]
    pub capacity: CapacityReq,
    #[serde(default)]
    pub arch: Option<Arch>,
    /// Pods sharing a group never share a node.
    #[serde(default)]
    pub anti_affinity_group: Option<String>,
    /// Pods sharing a group are spread over zones (max skew 1 among the pods placed by
    /// the packer).
    #[serde(default)]
    pub az_spread_group: Option<String>,
    /// Name of the PDB (in the pod's namespace) selecting this pod.
    #[serde(default)]
    pub pdb: Option<String>,
    /// `karpenter.sh/do-not-disrupt`: its node is never disrupted.
    #[serde(default)]
    pub do_not_disrupt: bool,
    #[serde(default)]
    pub daemonset: bool,
}

fn default_namespace() -> String {
    "default".into()
}

fn any_capacity() -> CapacityReq {
    CapacityReq::Any
}

impl SnapPod {
    /// `namespace/name`.
    pub fn key(&self) -> String {
        format!("{}/{}", self.namespace, self.name)
    }

    fn request(&self) -> Resources {
        Resources {
            cpu_millis: self.cpu_millis,
            memory_mib: self.memory_mib,
            gpus: self.gpus,
            pods: 1,
        }
    }

    /// From the consolidation snapshot type (labels carry do-not-disrupt/-evict).
    pub fn from_running(p: &RunningPod) -> Self {
        let dnd = ["karpenter.sh/do-not-disrupt", "karpenter.sh/do-not-evict"]
            .iter()
            .any(|k| p.labels.get(*k).is_some_and(|v| v == "true"));
        Self {
            name: p.name.clone(),
            namespace: p.namespace.clone(),
            labels: p.labels.clone(),
            owner: None,
            priority: 0,
            cpu_millis: p.cpu_millis,
            memory_mib: p.memory_mib,
            gpus: p.gpus,
            capacity: p.capacity,
            arch: p.arch,
            anti_affinity_group: p.anti_affinity_group.clone(),
            az_spread_group: None,
            pdb: p.pdb.clone(),
            do_not_disrupt: dnd,
            daemonset: p.daemonset,
        }
    }
}

/// An existing node.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SnapNode {
    pub name: String,
    pub instance_type: String,
    pub lifecycle: Lifecycle,
    pub az: String,
    pub arch: Arch,
    /// USD per hour.
    pub hourly_price: f64,
    pub allocatable: Resources,
    /// Seconds since the Unix epoch.
    pub created_at: i64,
    #[serde(default)]
    pub interruption_probability: f64,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// `key=value:Effect`; a tainted node never receives moved pods.
    #[serde(default)]
    pub taints: Vec<String>,
    /// Not managed by the optimizer (e.g. a node group it must not touch).
    #[serde(default)]
    pub unmanaged: bool,
    #[serde(default)]
    pub do_not_disrupt: bool,
    /// Cordoned (`spec.unschedulable`) by someone else: kept, receives no pods.
    #[serde(default)]
    pub cordoned: bool,
    /// The node's `Ready` condition; a node that is not Ready is kept and receives no pods.
    #[serde(default = "yes")]
    pub ready: bool,
    /// Kept as it is, for this reason: a manual override (e.g. forced on demand until a
    /// time). It still receives pods.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pinned: Option<String>,
    #[serde(default)]
    pub pods: Vec<SnapPod>,
}

fn yes() -> bool {
    true
}

impl SnapNode {
    pub fn from_running(n: &RunningNode) -> Self {
        Self {
            name: n.name.clone(),
            instance_type: n.instance_type.clone(),
            lifecycle: n.lifecycle,
            az: n.az.clone(),
            arch: n.arch,
            hourly_price: n.hourly_price,
            allocatable: n.allocatable,
            created_at: n.created_at,
            interruption_probability: n.interruption_probability,
            labels: BTreeMap::new(),
            taints: Vec::new(),
            unmanaged: false,
            do_not_disrupt: false,
            cordoned: false,
            ready: true,
            pinned: None,
            pods: n.pods.iter().map(SnapPod::from_running).collect(),
        }
    }
}

/// The scored market: catalog (spot pools carry the risk model's probability), pools the
/// global risk tracker flags, per-type max pods (ENI limit) and the node reserve.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Market {
    pub catalog: Catalog,
    #[serde(default)]
    pub risk_flags: BTreeSet<PoolKey>,
    /// Max pods per node by instance type (from the ENI limit); types not listed use
    /// `overhead.max_pods`.
    #[serde(default)]
    pub max_pods: BTreeMap<String, u32>,
    #[serde(default)]
    pub overhead: NodeOverhead,
}

/// Everything the planner weighs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlanInput {
    #[serde(default)]
    pub nodes: Vec<SnapNode>,
    #[serde(default)]
    pub pending: Vec<SnapPod>,
    #[serde(default)]
    pub pdbs: Vec<Pdb>,
    #[serde(default)]
    pub policy: ClusterPolicy,
    pub market: Market,
    /// Seconds since the Unix epoch.
    pub now: i64,
    /// Work budget of every packing; default [`pack_opts`] by pod count. A latency-bound
    /// caller (the pending-pod reaction) passes a smaller one, e.g. `ffd_only`.
    #[serde(default)]
    pub pack_options: Option<PackOptions>,
}

impl PlanInput {
    /// Builds the input from the consolidation snapshot `jobs::optimize` already reads.
    pub fn from_cluster_state(
        state: &ClusterState,
        pending: Vec<SnapPod>,
        policy: ClusterPolicy,
        market: Market,
        now: i64,
    ) -> Self {
        Self {
            nodes: state.nodes.iter().map(SnapNode::from_running).collect(),
            pending,
            pdbs: state.pdbs.clone(),
            policy,
            market,
            now,
            pack_options: None,
        }
    }

    fn opts(&self, n: usize) -> PackOptions {
        self.pack_options.clone().unwrap_or_else(|| pack_opts(n))
    }
}

/// Why a node is kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KeepReason {
    /// A manual override holds it as it is (forced on demand).
    ManualOverride,
    Unmanaged,
    /// Cordoned by someone else (a human or another controller).
    Cordoned,
    /// Its `Ready` condition is not true.
    NotReady,
    DoNotDisrupt,
    MaintenanceMode,
    StabilizationWindow,
    Pdb,
    /// A pod on it fits no offer of the template (it could not be re-placed).
    Unplaceable,
    /// Method `delete_empty` and the node runs pods.
    MethodDeleteEmpty,
    /// Its type/lifecycle/zone is part of the LP target fleet.
    InTargetFleet,
    /// Utilization not below the aggressiveness threshold.
    WellUtilized,
    /// Under-utilised, but its pods do not fit on the other nodes.
    PodsDoNotFit,
    /// Replacing it would save less than the policy requires.
    SavingBelowThreshold,
    /// It would be disrupted, but the waves allowed are full.
    BudgetExhausted,
}

/// What happens to an existing node.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "decision", rename_all = "snake_case")]
pub enum NodeFate {
    Kept {
        why: KeepReason,
    },
    /// Empty (DaemonSets aside): deleted.
    DeletedEmpty {
        wave: u32,
    },
    /// Under-utilised: its pods move to existing nodes, then it is deleted.
    Drained {
        wave: u32,
    },
    /// Its pods move to new (and possibly existing) nodes, then it is deleted.
    Replaced {
        wave: u32,
        /// New nodes receiving its pods.
        by: Vec<String>,
        /// Highest interruption probability among the new spot nodes receiving its pods.
        risk: f64,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NodeReport {
    pub node: String,
    #[serde(flatten)]
    pub fate: NodeFate,
    /// Real USD/h this node's change saves (0 when kept).
    pub saving_hourly: f64,
    pub utilization: f64,
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PendingReport {
    /// `namespace/name`.
    pub pod: String,
    /// Node it goes to (existing name or a new node's name); `None` when unschedulable.
    pub node: Option<String>,
    pub wave: Option<u32>,
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PodMove {
    /// `namespace/name`.
    pub pod: String,
    pub from: String,
    pub to: String,
}

/// One step of a wave.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum PlanAction {
    /// Buy a node (before the wave's removals).
    Launch {
        node: String,
        instance_type: String,
        lifecycle: Lifecycle,
        az: String,
        hourly_price: f64,
        interruption_probability: f64,
    },
    DeleteEmpty {
        node: String,
        saving_hourly: f64,
    },
    /// Evict the node's pods to `moves`' destinations, then delete it.
    Drain {
        node: String,
        moves: Vec<PodMove>,
        saving_hourly: f64,
    },
    /// Like `Drain`, with new nodes among the destinations.
    Replace {
        node: String,
        by: Vec<String>,
        moves: Vec<PodMove>,
        saving_hourly: f64,
        /// On-demand → spot or spot → on-demand, when the destinations' lifecycle differs.
        lifecycle_change: Option<String>,
    },
}

impl PlanAction {
    /// The existing node it disrupts, if any.
    pub fn disrupted(&self) -> Option<&str> {
        match self {
            PlanAction::Launch { .. } => None,
            PlanAction::DeleteEmpty { node, .. }
            | PlanAction::Drain { node, .. }
            | PlanAction::Replace { node, .. } => Some(node),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Wave {
    pub index: u32,
    pub actions: Vec<PlanAction>,
    /// Existing nodes disrupted in this wave (≤ the budget).
    pub disrupted: u32,
    /// Pods evicted per PDB (`namespace/name`) in this wave.
    pub pdb_evictions: BTreeMap<String, u32>,
}

/// A node of the fleet after the plan.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FleetNode {
    pub name: String,
    pub instance_type: String,
    pub lifecycle: Lifecycle,
    pub az: String,
    pub hourly_price: f64,
    pub new: bool,
    /// Non-DaemonSet pods (`namespace/name`), sorted.
    pub pods: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Strategy {
    /// Nothing movable.
    None,
    /// The LP target fleet.
    Target,
    /// Delete empty, drain under-utilised, pack pending pods.
    Incremental,
}

/// Cost figures (USD/h). `objective`, `lower_bound` and `ffd` are risk-weighted (see
/// [`NODE_INTERRUPTION_COST_HOURLY`]; real prices when `risk_premium` is 0); `current`
/// and `planned` are real prices.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Costs {
    pub current_hourly: f64,
    pub planned_hourly: f64,
    pub saving_hourly: f64,
    pub saving_monthly: f64,
    pub objective_hourly: f64,
    /// Pinned nodes' objective + the LP lower bound over the movable pods.
    pub lower_bound_hourly: f64,
    /// `(objective − lower_bound) / objective`.
    pub gap: f64,
    /// Pinned nodes' objective + first-fit-decreasing over the movable pods.
    pub ffd_objective_hourly: f64,
    /// False when the plan put pods into free room of pinned nodes: the LP bound does
    /// not know that room, so `lower_bound_hourly` is then capped at the objective and is
    /// not a proven bound.
    pub lower_bound_valid: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    pub version: u32,
    pub generated_at: i64,
    pub strategy: Strategy,
    /// Nodes that may be disrupted per wave.
    pub disruption_budget: u32,
    /// Maintenance mode: the plan is informative, every action is blocked.
    pub maintenance_mode: bool,
    pub waves: Vec<Wave>,
    /// One per existing node, in name order.
    pub nodes: Vec<NodeReport>,
    /// One per pending pod, in id order.
    pub pending: Vec<PendingReport>,
    /// The fleet after every wave, existing nodes (name order) then new ones.
    pub fleet: Vec<FleetNode>,
    pub costs: Costs,
    /// On-demand minimums that could not be met (pods pinned to spot or unschedulable).
    pub warnings: Vec<String>,
    /// What the packer said about the target fleet.
    pub packer: String,
}

// ---------------------------------------------------------------------------------------

/// Internal pod: index into `Ctx::pods`.
struct P<'a> {
    src: &'a SnapPod,
    id: String,
    cap: CapacityReq,
    /// Node index, `None` for pending pods.
    node: Option<usize>,
    pdb: Option<String>,
    /// Zone-spread group under the policy (its own, or its workload's with multi-AZ
    /// spread).
    spread: Option<String>,
}

struct Ctx<'a> {
    input: &'a PlanInput,
    pods: Vec<P<'a>>,
    /// Non-DaemonSet pods per node.
    node_pods: Vec<Vec<usize>>,
    pending: Vec<usize>,
    pdb_allowed: BTreeMap<String, u32>,
    /// Objective price and risk by offer key.
    offers: Vec<NodeOffer>,
    offer_info: BTreeMap<(String, Lifecycle, String), (f64, f64)>,
    memo: std::cell::RefCell<BTreeMap<Vec<usize>, Packed>>,
}

fn offer_key(o: &NodeOffer) -> (String, Lifecycle, String) {
    (o.instance_type.clone(), o.lifecycle, o.az.clone())
}

fn utilization(used: &Resources, alloc: &Resources) -> f64 {
    let f = |u: u64, a: u64| if a == 0 { 0.0 } else { u as f64 / a as f64 };
    f(used.cpu_millis, alloc.cpu_millis).max(f(used.memory_mib, alloc.memory_mib))
}

fn validate(input: &PlanInput) -> Result<()> {
    input
        .policy
        .validate()
        .map_err(|(f, r)| invalid(format!("policy.{f}"), r))?;
    let mut names = BTreeSet::new();
    let mut ids = BTreeSet::new();
    for (i, n) in input.nodes.iter().enumerate() {
        if !names.insert(n.name.as_str()) {
            return Err(invalid(
                format!("nodes[{i}].name"),
                format!("duplicate node `{}`", n.name),
            ));
        }
        check_non_negative(&format!("nodes[{i}].hourly_price"), n.hourly_price)?;
        let ip = n.interruption_probability;
        if !(ip.is_finite() && (0.0..=1.0).contains(&ip)) {
            return Err(invalid(
                format!("nodes[{i}].interruption_probability"),
                format!("must be in [0, 1], got {ip}"),
            ));
        }
        for p in &n.pods {
            if !ids.insert(p.key()) {
                return Err(invalid("pods", format!("duplicate pod `{}`", p.key())));
            }
        }
    }
    for p in &input.pending {
        if !ids.insert(p.key()) {
            return Err(invalid("pending", format!("duplicate pod `{}`", p.key())));
        }
    }
    let mut pdbs = BTreeSet::new();
    for p in &input.pdbs {
        if !pdbs.insert((p.namespace.as_str(), p.name.as_str())) {
            return Err(invalid(
                "pdbs",
                format!("duplicate PDB `{}/{}`", p.namespace, p.name),
            ));
        }
    }
    Ok(())
}

/// Builds risk-weighted offers. Returns (offers, key → (real price, risk)).
fn build_offers(input: &PlanInput, ds_reserve: Resources) -> Vec<(NodeOffer, f64, f64)> {
    let m = &input.market;
    let t = &input.policy.template;
    let spot_ok = t.capacity_type != CapacityType::OnDemand;
    let od_ok = t.capacity_type != CapacityType::Spot || t.on_demand_fallback;
    let lambda = input.policy.risk_premium;
    let mut out = Vec::new();
    for it in m.catalog.types() {
        if t.rejects(it).is_some() {
            continue;
        }
        let overhead = NodeOverhead {
            max_pods: m
                .max_pods
                .get(&it.name)
                .copied()
                .unwrap_or(m.overhead.max_pods),
            ..m.overhead.clone()
        };
        let a = overhead.allocatable(it);
        let alloc = Resources {
            cpu_millis: a.cpu_millis.saturating_sub(ds_reserve.cpu_millis),
            memory_mib: a.memory_mib.saturating_sub(ds_reserve.memory_mib),
            gpus: a.gpus.saturating_sub(ds_reserve.gpus),
            pods: a.pods.saturating_sub(ds_reserve.pods),
        };
        if alloc.cpu_millis == 0 || alloc.memory_mib == 0 || alloc.pods == 0 {
            continue;
        }
        if spot_ok {
            for p in m.catalog.pools_of(&it.name) {
                if m.risk_flags.contains(&p.key()) || p.interruption_probability > AVOID_THRESHOLD {
                    continue;
                }
                out.push((
                    NodeOffer {
                        instance_type: it.name.clone(),
                        lifecycle: Lifecycle::Spot,
                        az: p.az.clone(),
                        hourly_price: risk_weighted(
                            p.spot_price,
                            lambda,
                            p.interruption_probability,
                        ),
                        arch: it.arch,
                        allocatable: alloc,
                    },
                    p.spot_price,
                    p.interruption_probability,
                ));
            }
        }
        if od_ok {
            for az in m.catalog.zones() {
                out.push((
                    NodeOffer {
                        instance_type: it.name.clone(),
                        lifecycle: Lifecycle::OnDemand,
                        az: az.clone(),
                        hourly_price: risk_weighted(it.on_demand_hourly, lambda, 0.0),
                        arch: it.arch,
                        allocatable: alloc,
                    },
                    it.on_demand_hourly,
                    0.0,
                ));
            }
        }
    }
    out
}

fn pod_fits_offer(p: &P<'_>, o: &NodeOffer) -> bool {
    p.cap.allows(o.lifecycle)
        && p.src.arch.is_none_or(|a| a == o.arch)
        && p.src.request().fits_in(&o.allocatable)
}

/// A receiving node's running state during placement.
#[derive(Clone)]
struct Room {
    node: usize,
    used: Resources,
    groups: BTreeSet<String>,
}

fn fits_room(ctx: &Ctx<'_>, p: &P<'_>, r: &Room) -> bool {
    let n = &ctx.input.nodes[r.node];
    p.cap.allows(n.lifecycle)
        && p.src.arch.is_none_or(|a| a == n.arch)
        && p.src
            .anti_affinity_group
            .as_ref()
            .is_none_or(|g| !r.groups.contains(g))
        && r.used
            .saturating_add(&p.src.request())
            .fits_in(&n.allocatable)
}

fn put(room: &mut Room, p: &P<'_>) {
    room.used = room.used.saturating_add(&p.src.request());
    if let Some(g) = &p.src.anti_affinity_group {
        room.groups.insert(g.clone());
    }
}

fn room_of(ctx: &Ctx<'_>, i: usize) -> Room {
    let mut r = Room {
        node: i,
        used: Resources::default(),
        groups: BTreeSet::new(),
    };
    for p in &ctx.input.nodes[i].pods {
        // DaemonSet pods use the node too.
        r.used = r.used.saturating_add(&p.request());
        if let Some(g) = &p.anti_affinity_group {
            r.groups.insert(g.clone());
        }
    }
    r
}

/// A candidate change set.
struct Outcome {
    strategy: Strategy,
    /// Candidate node index → kept reason, for kept candidates.
    kept: BTreeMap<usize, KeepReason>,
    /// Removed node indices.
    removed: BTreeSet<usize>,
    /// Pod index → destination: existing node index or new node index.
    dest: BTreeMap<usize, Dest>,
    /// New nodes: (offer index in ctx.offers, pod indices).
    new_nodes: Vec<(usize, Vec<usize>)>,
    /// Pending pods that could not be scheduled, with the reason.
    unschedulable: BTreeMap<usize, String>,
    /// Objective cost of the whole fleet after the change.
    objective: f64,
    packer: String,
    lower_bound_movable: f64,
    ffd_movable: f64,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Dest {
    Existing(usize),
    New(usize),
}

/// A spot node in a pool that is AVOID (risk above [`AVOID_THRESHOLD`]) or flagged by the
/// global risk tracker: it receives no moved pods.
fn at_risk(input: &PlanInput, n: &SnapNode) -> bool {
    n.lifecycle == Lifecycle::Spot
        && (n.interruption_probability > AVOID_THRESHOLD
            || input
                .market
                .risk_flags
                .contains(&PoolKey::new(&n.instance_type, &n.az)))
}

fn node_objective(ctx: &Ctx<'_>, i: usize) -> f64 {
    let n = &ctx.input.nodes[i];
    let r = if n.lifecycle == Lifecycle::Spot {
        n.interruption_probability
    } else {
        0.0
    };
    risk_weighted(n.hourly_price, ctx.input.policy.risk_premium, r)
}

/// Objective price of a node of real price `price` and interruption probability `p`
/// (0 for on-demand): `price × (1 + λ p) + λ (NODE_EXPOSURE_COST_HOURLY +
/// NODE_INTERRUPTION_COST_HOURLY × p)`. The last two terms are per node, whatever its
/// size: every node is an exposure (an interruption restarts all of its pods), so at
/// equal price fewer, larger nodes in safer pools win. With `risk_premium` 0 the
/// objective is the real price.
fn risk_weighted(price: f64, lambda: f64, p: f64) -> f64 {
    price * (1.0 + lambda * p)
        + lambda * (NODE_EXPOSURE_COST_HOURLY + NODE_INTERRUPTION_COST_HOURLY * p)
}

/// Packs `pods` onto new nodes with the LP; pods the packer reports unschedulable are
/// returned separately (bounded retries: one per pod at most).
type Packed = (
    Vec<(usize, Vec<usize>)>,
    BTreeMap<usize, String>,
    f64,
    f64,
    String,
);

fn pack_new(ctx: &Ctx<'_>, pods: &[usize], opts: &PackOptions) -> Packed {
    // The same pod set is often packed twice (target and incremental sets): memoised.
    if let Some(hit) = ctx.memo.borrow().get(pods) {
        return hit.clone();
    }
    let out = pack_new_uncached(ctx, pods, opts);
    ctx.memo.borrow_mut().insert(pods.to_vec(), out.clone());
    out
}

fn pack_new_uncached(ctx: &Ctx<'_>, pods: &[usize], opts: &PackOptions) -> Packed {
    let mut todo: Vec<usize> = pods.to_vec();
    let mut bad: BTreeMap<usize, String> = BTreeMap::new();
    loop {
        if todo.is_empty() {
            return (Vec::new(), bad, 0.0, 0.0, "nothing to pack".into());
        }
        let pk: Vec<Pod> = todo
            .iter()
            .map(|&i| {
                let p = &ctx.pods[i];
                Pod {
                    id: p.id.clone(),
                    cpu_millis: p.src.cpu_millis,
                    memory_mib: p.src.memory_mib,
                    gpus: p.src.gpus,
                    capacity: p.cap,
                    arch: p.src.arch,
                    anti_affinity_group: p.src.anti_affinity_group.clone(),
                    az_spread_group: p.spread.clone(),
                }
            })
            .collect();
        match pack::pack(&pk, &ctx.offers, opts) {
            Ok(plan) => {
                let by_id: BTreeMap<&str, usize> =
                    todo.iter().map(|&i| (ctx.pods[i].id.as_str(), i)).collect();
                let offer_idx: BTreeMap<(String, Lifecycle, String), usize> = ctx
                    .offers
                    .iter()
                    .enumerate()
                    .map(|(k, o)| (offer_key(o), k))
                    .collect();
                let mut nodes = Vec::new();
                for n in &plan.nodes {
                    let key = (n.instance_type.clone(), n.lifecycle, n.az.clone());
                    let Some(&o) = offer_idx.get(&key) else {
                        continue;
                    };
                    let members: Vec<usize> = n
                        .pods
                        .iter()
                        .filter_map(|id| by_id.get(id.as_str()).copied())
                        .collect();
                    nodes.push((o, members));
                }
                return (
                    nodes,
                    bad,
                    plan.lower_bound_hourly,
                    plan.stats.ffd_cost_hourly,
                    plan.reason,
                );
            }
            Err(EngineError::Unschedulable { pod, reason }) => {
                let Some(pos) = todo.iter().position(|&i| ctx.pods[i].id == pod) else {
                    return (Vec::new(), bad, 0.0, 0.0, format!("packer: {reason}"));
                };
                let i = todo.remove(pos);
                bad.insert(i, reason);
            }
            Err(e) => {
                for &i in &todo {
                    bad.insert(i, e.to_string());
                }
                return (Vec::new(), bad, 0.0, 0.0, e.to_string());
            }
        }
    }
}

/// Work budget of one packing: the packer's defaults on small problems, fewer column-
/// generation rounds, knapsack nodes and rounding solves as the pod count grows (the bound
/// stays valid — Farley — on any budget; only the gap grows). Counts, never wall time.
pub fn pack_opts(n: usize) -> PackOptions {
    let d = PackOptions::default();
    if n <= 300 {
        d
    } else if n <= 3_000 {
        PackOptions {
            max_colgen_iterations: 15,
            pricing_node_limit: 1_000,
            max_rounding_solves: 60,
            residual_colgen_iterations: 1,
            ..d
        }
    } else {
        PackOptions {
            max_colgen_iterations: 6,
            pricing_node_limit: 300,
            max_rounding_solves: 30,
            residual_colgen_iterations: 1,
            ..d
        }
    }
}

/// Places `pods` first onto `rooms` (first fit, rooms in name order; zone-spread pods
/// skipped), the rest onto new nodes with the LP.
fn place(ctx: &Ctx<'_>, rooms: &mut [Room], pods: &[usize], out: &mut Outcome, fill: bool) {
    let mut order: Vec<usize> = pods.to_vec();
    order.sort_by(|&a, &b| {
        let (pa, pb) = (&ctx.pods[a], &ctx.pods[b]);
        pb.src
            .priority
            .cmp(&pa.src.priority)
            .then(pb.src.cpu_millis.cmp(&pa.src.cpu_millis))
            .then(pb.src.memory_mib.cmp(&pa.src.memory_mib))
            .then_with(|| pa.id.cmp(&pb.id))
    });
    let mut rest = Vec::new();
    let autoscaling = ctx.input.policy.autoscaling;
    for i in order {
        let p = &ctx.pods[i];
        // Zone-spread pods go to new nodes the packer spreads, unless no node may be
        // bought: then existing room is all there is.
        let slot = if fill && (p.spread.is_none() || !autoscaling) {
            rooms.iter_mut().find(|r| fits_room(ctx, p, r))
        } else {
            None
        };
        match slot {
            Some(r) => {
                put(r, p);
                out.dest.insert(i, Dest::Existing(r.node));
            }
            None => rest.push(i),
        }
    }
    rest.sort_unstable();
    if !autoscaling {
        for i in rest {
            out.unschedulable.insert(
                i,
                "autoscaling is off in the cluster's policy: no node is launched, and no existing node has room".into(),
            );
        }
        return;
    }
    let (nodes, bad, lb, ffd, reason) = pack_new(ctx, &rest, &ctx.input.opts(rest.len()));
    for (o, members) in nodes {
        let k = out.new_nodes.len();
        for &m in &members {
            out.dest.insert(m, Dest::New(k));
        }
        out.objective += ctx.offers[o].hourly_price;
        out.new_nodes.push((o, members));
    }
    out.unschedulable.extend(bad);
    if !rest.is_empty() && out.packer.is_empty() {
        out.packer = reason;
        out.lower_bound_movable = lb;
        out.ffd_movable = ffd;
    }
}

/// The whole plan for a fixed set of pinned nodes.
struct Classified {
    /// Node index → keep reason for pinned nodes (with text).
    pinned: BTreeMap<usize, (KeepReason, String)>,
}

fn classify(ctx: &Ctx<'_>, forced: &BTreeMap<usize, (KeepReason, String)>) -> Classified {
    let input = ctx.input;
    let pol = &input.policy;
    let excluded_labels = pol.consolidation().excluded_labels;
    let mut pinned = forced.clone();
    for (i, n) in input.nodes.iter().enumerate() {
        if pinned.contains_key(&i) {
            continue;
        }
        let pods: Vec<&SnapPod> = n.pods.iter().filter(|p| !p.daemonset).collect();
        let why: Option<(KeepReason, String)> = (|| {
            if let Some(why) = &n.pinned {
                return Some((KeepReason::ManualOverride, why.clone()));
            }
            if n.unmanaged || n.labels.get(UNMANAGED_LABEL).is_some_and(|v| v == "true") {
                return Some((KeepReason::Unmanaged, "unmanaged node".to_string()));
            }
            if n.cordoned {
                return Some((
                    KeepReason::Cordoned,
                    "cordoned by someone else; left alone until it is uncordoned".to_string(),
                ));
            }
            if !n.ready {
                return Some((
                    KeepReason::NotReady,
                    "node is not Ready; left alone".to_string(),
                ));
            }
            for p in &pods {
                if pol.excluded_namespaces.contains(&p.namespace) {
                    return Some((
                        KeepReason::Unmanaged,
                        format!(
                            "unmanaged: pod {} is in excluded namespace {}",
                            p.key(),
                            p.namespace
                        ),
                    ));
                }
                if let Some((k, v)) = excluded_labels
                    .iter()
                    .find(|(k, v)| p.labels.get(k) == Some(v))
                {
                    return Some((
                        KeepReason::Unmanaged,
                        format!("unmanaged: pod {} carries excluded label {k}={v}", p.key()),
                    ));
                }
            }
            if n.do_not_disrupt || n.labels.get(DO_NOT_DISRUPT).is_some_and(|v| v == "true") {
                return Some((
                    KeepReason::DoNotDisrupt,
                    format!("node is marked {DO_NOT_DISRUPT}"),
                ));
            }
            if let Some(p) = pods.iter().find(|p| p.do_not_disrupt) {
                return Some((
                    KeepReason::DoNotDisrupt,
                    format!("pod {} is marked {DO_NOT_DISRUPT}", p.key()),
                ));
            }
            if pol.maintenance_mode {
                return Some((
                    KeepReason::MaintenanceMode,
                    "maintenance mode: automated actions are paused".into(),
                ));
            }
            let age = input.now - n.created_at;
            if age < pol.stabilization_window_secs {
                return Some((
                    KeepReason::StabilizationWindow,
                    format!(
                        "node is {} min old, inside the {} min stabilization window",
                        age.max(0) / 60,
                        pol.stabilization_window_secs / 60
                    ),
                ));
            }
            let mut need: BTreeMap<String, u32> = BTreeMap::new();
            for &pi in &ctx.node_pods[i] {
                if let Some(k) = &ctx.pods[pi].pdb {
                    *need.entry(k.clone()).or_default() += 1;
                }
            }
            for (k, c) in &need {
                let allowed = ctx.pdb_allowed.get(k).copied().unwrap_or(u32::MAX);
                if *c > allowed {
                    return Some((
                        KeepReason::Pdb,
                        format!(
                            "PDB {k} allows {allowed} disruption(s); the node holds {c} of its pods"
                        ),
                    ));
                }
            }
            if pol.method == ConsolidationMethod::DeleteEmpty && !pods.is_empty() {
                return Some((
                    KeepReason::MethodDeleteEmpty,
                    format!(
                        "runs {} pods; method delete_empty only removes empty nodes",
                        pods.len()
                    ),
                ));
            }
            for &pi in &ctx.node_pods[i] {
                let p = &ctx.pods[pi];
                if !ctx.offers.iter().any(|o| pod_fits_offer(p, o)) {
                    return Some((
                        KeepReason::Unplaceable,
                        format!(
                            "pod {} fits no instance the template allows; it stays where it is",
                            p.id
                        ),
                    ));
                }
            }
            None
        })();
        if let Some(w) = why {
            pinned.insert(i, w);
        }
    }
    Classified { pinned }
}

/// Marks enough movable pods of each on-demand-minimum rule as on-demand. Returns
/// warnings for rules that cannot be met.
fn apply_on_demand_minimums(ctx: &mut Ctx<'_>, movable: &BTreeSet<usize>) -> Vec<String> {
    let mut warnings = Vec::new();
    let rules = ctx.input.policy.on_demand_minimums.clone();
    for rule in &rules {
        let matching: Vec<usize> = (0..ctx.pods.len())
            .filter(|&i| !ctx.pods[i].src.daemonset)
            .filter(|&i| rule.matches(&ctx.pods[i].src.namespace, &ctx.pods[i].src.labels))
            .collect();
        let required = rule.required(matching.len());
        let mut have = 0usize;
        let mut upgradeable: Vec<usize> = Vec::new();
        for &i in &matching {
            let p = &ctx.pods[i];
            if movable.contains(&i) {
                if p.cap == CapacityReq::OnDemand {
                    have += 1;
                } else if p.cap == CapacityReq::Any {
                    upgradeable.push(i);
                }
            } else if let Some(n) = p.node {
                if ctx.input.nodes[n].lifecycle == Lifecycle::OnDemand {
                    have += 1;
                }
            }
        }
        // Pods already on on-demand nodes first (no move needed), then by id.
        upgradeable.sort_by(|&a, &b| {
            let od = |i: usize| {
                ctx.pods[i]
                    .node
                    .is_some_and(|n| ctx.input.nodes[n].lifecycle == Lifecycle::OnDemand)
            };
            od(b)
                .cmp(&od(a))
                .then_with(|| ctx.pods[a].id.cmp(&ctx.pods[b].id))
        });
        for &i in &upgradeable {
            if have >= required {
                break;
            }
            let p = &ctx.pods[i];
            let od_fits = ctx.offers.iter().any(|o| {
                o.lifecycle == Lifecycle::OnDemand
                    && p.src.arch.is_none_or(|a| a == o.arch)
                    && p.src.request().fits_in(&o.allocatable)
            });
            if !od_fits {
                continue;
            }
            ctx.pods[i].cap = CapacityReq::OnDemand;
            have += 1;
        }
        if have < required {
            warnings.push(format!(
                "{}: only {have} of the required {required} pods can run on on-demand",
                rule.describe()
            ));
        }
    }
    warnings
}

fn incremental(ctx: &Ctx<'_>, cands: &[usize], receivers: &BTreeSet<usize>) -> Outcome {
    let input = ctx.input;
    let threshold = input.policy.aggressiveness.threshold();
    let mut out = Outcome {
        strategy: Strategy::Incremental,
        kept: BTreeMap::new(),
        removed: BTreeSet::new(),
        dest: BTreeMap::new(),
        new_nodes: Vec::new(),
        unschedulable: BTreeMap::new(),
        objective: 0.0,
        packer: String::new(),
        lower_bound_movable: 0.0,
        ffd_movable: 0.0,
    };
    let mut rooms: BTreeMap<usize, Room> =
        receivers.iter().map(|&i| (i, room_of(ctx, i))).collect();
    let mut received: BTreeSet<usize> = BTreeSet::new();
    // Forced: a node whose pods no longer allow its lifecycle (on-demand minimums).
    let forced = |i: usize| {
        ctx.node_pods[i]
            .iter()
            .any(|&p| !ctx.pods[p].cap.allows(input.nodes[i].lifecycle))
    };
    let mut order: Vec<(f64, usize)> = cands
        .iter()
        .map(|&i| {
            let n = &input.nodes[i];
            let used = ctx.node_pods[i].iter().fold(Resources::default(), |a, &p| {
                a.saturating_add(&ctx.pods[p].src.request())
            });
            (utilization(&used, &n.allocatable), i)
        })
        .collect();
    order.sort_by(|a, b| {
        a.0.total_cmp(&b.0)
            .then(input.nodes[a.1].name.cmp(&input.nodes[b.1].name))
    });
    let mut homeless: Vec<usize> = Vec::new();
    // Forced nodes go first and never receive pods (their pods need new capacity of the
    // other lifecycle: not with autoscaling off, when they are ordinary candidates).
    for &(_, i) in &order {
        if input.policy.autoscaling && forced(i) {
            out.removed.insert(i);
            rooms.remove(&i);
            homeless.extend(ctx.node_pods[i].iter().copied());
        }
    }
    for (util, i) in order {
        if out.removed.contains(&i) {
            continue;
        }
        if ctx.node_pods[i].is_empty() && !received.contains(&i) {
            out.removed.insert(i);
            rooms.remove(&i);
            continue;
        }
        if util >= threshold {
            out.kept.insert(i, KeepReason::WellUtilized);
            continue;
        }
        if received.contains(&i) {
            out.kept.insert(i, KeepReason::PodsDoNotFit);
            continue;
        }
        // Trial drain onto other receivers (fullest first, name).
        // (Utilisation computed once per room, not per comparison: thousands of nodes.)
        let mut keyed: Vec<(f64, usize)> = rooms
            .iter()
            .filter(|(&j, _)| j != i && !out.removed.contains(&j))
            .map(|(&j, r)| (utilization(&r.used, &input.nodes[j].allocatable), j))
            .collect();
        keyed.sort_by(|a, b| {
            b.0.total_cmp(&a.0)
                .then(input.nodes[a.1].name.cmp(&input.nodes[b.1].name))
        });
        let others: Vec<usize> = keyed.into_iter().map(|x| x.1).collect();
        // Trial placements touch few rooms: keep the changed ones in an overlay.
        let mut overlay: BTreeMap<usize, Room> = BTreeMap::new();
        let mut pods = ctx.node_pods[i].clone();
        pods.sort_by(|&a, &b| {
            let (pa, pb) = (&ctx.pods[a], &ctx.pods[b]);
            pb.src
                .cpu_millis
                .cmp(&pa.src.cpu_millis)
                .then_with(|| pa.id.cmp(&pb.id))
        });
        let mut moves = Vec::new();
        let mut ok = true;
        for &p in &pods {
            let pod = &ctx.pods[p];
            // A zone-spread pod stays in its zone: moving never worsens the spread.
            let found = others.iter().copied().find(|j| {
                (pod.spread.is_none() || input.nodes[*j].az == input.nodes[i].az)
                    && overlay
                        .get(j)
                        .or_else(|| rooms.get(j))
                        .is_some_and(|r| fits_room(ctx, pod, r))
            });
            match found.and_then(|j| {
                overlay
                    .get(&j)
                    .or_else(|| rooms.get(&j))
                    .cloned()
                    .map(|r| (j, r))
            }) {
                Some((j, mut r)) => {
                    put(&mut r, pod);
                    overlay.insert(j, r);
                    moves.push((p, j));
                }
                None => {
                    ok = false;
                    break;
                }
            }
        }
        if ok {
            for (j, r) in overlay {
                rooms.insert(j, r);
            }
            for (p, j) in moves {
                out.dest.insert(p, Dest::Existing(j));
                received.insert(j);
            }
            out.removed.insert(i);
            rooms.remove(&i);
        } else {
            out.kept.insert(i, KeepReason::PodsDoNotFit);
        }
    }
    homeless.extend(ctx.pending.iter().copied());
    let mut rs: Vec<Room> = rooms.into_values().collect();
    rs.sort_by(|a, b| input.nodes[a.node].name.cmp(&input.nodes[b.node].name));
    place(ctx, &mut rs, &homeless, &mut out, true);
    out
}

fn target(
    ctx: &Ctx<'_>,
    cands: &[usize],
    receivers: &BTreeSet<usize>,
    target_nodes: &[(usize, Vec<usize>)],
    movable: &[usize],
) -> Outcome {
    let input = ctx.input;
    let mut out = Outcome {
        strategy: Strategy::Target,
        kept: BTreeMap::new(),
        removed: BTreeSet::new(),
        dest: BTreeMap::new(),
        new_nodes: Vec::new(),
        unschedulable: BTreeMap::new(),
        objective: 0.0,
        packer: String::new(),
        lower_bound_movable: 0.0,
        ffd_movable: 0.0,
    };
    let mut want: BTreeMap<(String, Lifecycle, String), usize> = BTreeMap::new();
    for (o, _) in target_nodes {
        *want.entry(offer_key(&ctx.offers[*o])).or_default() += 1;
    }
    let mut order: Vec<(f64, usize)> = cands
        .iter()
        .map(|&i| {
            let n = &input.nodes[i];
            let used = ctx.node_pods[i].iter().fold(Resources::default(), |a, &p| {
                a.saturating_add(&ctx.pods[p].src.request())
            });
            (utilization(&used, &n.allocatable), i)
        })
        .collect();
    order.sort_by(|a, b| {
        b.0.total_cmp(&a.0)
            .then(input.nodes[a.1].name.cmp(&input.nodes[b.1].name))
    });
    for (_, i) in order {
        let n = &input.nodes[i];
        let key = (n.instance_type.clone(), n.lifecycle, n.az.clone());
        let ok_pods = ctx.node_pods[i]
            .iter()
            .all(|&p| ctx.pods[p].cap.allows(n.lifecycle));
        match want.get_mut(&key) {
            Some(c) if *c > 0 && ok_pods && !ctx.node_pods[i].is_empty() => {
                *c -= 1;
                out.kept.insert(i, KeepReason::InTargetFleet);
            }
            _ => {
                out.removed.insert(i);
            }
        }
    }
    // Receivers: pinned receivers and the kept candidates.
    let mut rs: Vec<Room> = receivers
        .iter()
        .copied()
        .filter(|i| !out.removed.contains(i))
        .map(|i| room_of(ctx, i))
        .collect();
    rs.sort_by(|a, b| input.nodes[a.node].name.cmp(&input.nodes[b.node].name));
    let homeless: Vec<usize> = movable
        .iter()
        .copied()
        .filter(|&p| ctx.pods[p].node.is_none_or(|n| out.removed.contains(&n)))
        .collect();
    if out.kept.is_empty() && homeless.len() == movable.len() && rs.is_empty() {
        // Nothing kept, nothing to fill: the target fleet is the answer.
        for (o, members) in target_nodes {
            let k = out.new_nodes.len();
            for &m in members {
                out.dest.insert(m, Dest::New(k));
            }
            out.objective += ctx.offers[*o].hourly_price;
            out.new_nodes.push((*o, members.clone()));
        }
        return out;
    }
    if homeless.len() <= REPACK_MAX_PODS {
        // Few pods: packing them again around the kept nodes' free room is cheap.
        place(ctx, &mut rs, &homeless, &mut out, true);
    } else {
        refit_target(ctx, &mut rs, &homeless, target_nodes, &mut out);
    }
    out
}

/// Up to this many homeless pods the target strategy packs them again (free room of the
/// receivers first); above it the target fleet is refitted ([`refit_target`]) instead of
/// packing the whole fleet a second time.
const REPACK_MAX_PODS: usize = 200;

/// New nodes [`refit_target`] tries to empty into free room (the emptiest ones).
const REFIT_EMPTY_TRIES: usize = 64;

/// A new node being refitted by [`refit_target`].
struct NewBin {
    offer: usize,
    pods: Vec<usize>,
    used: Resources,
    groups: BTreeSet<String>,
}

impl NewBin {
    fn fits(&self, ctx: &Ctx<'_>, p: &P<'_>) -> bool {
        let o = &ctx.offers[self.offer];
        pod_fits_offer(p, o)
            && p.src
                .anti_affinity_group
                .as_ref()
                .is_none_or(|g| !self.groups.contains(g))
            && self
                .used
                .saturating_add(&p.src.request())
                .fits_in(&o.allocatable)
    }
    fn put(&mut self, ctx: &Ctx<'_>, i: usize) {
        let p = &ctx.pods[i];
        self.used = self.used.saturating_add(&p.src.request());
        if let Some(g) = &p.src.anti_affinity_group {
            self.groups.insert(g.clone());
        }
        self.pods.push(i);
    }
}

/// The target fleet adapted to the kept nodes without packing it again: per kept node,
/// the target node of its offer holding the fewest homeless pods is dropped; the homeless
/// pods of the dropped nodes (orphans) go first fit into the receivers' free room (not
/// zone-spread pods), then into the free room of the remaining new nodes (zone-spread
/// pods only in the zone they were dealt), and the rest are packed anew. Every new node
/// then buys the cheapest offer holding its pods (zone kept when it holds a spread pod).
fn refit_target(
    ctx: &Ctx<'_>,
    rooms: &mut [Room],
    homeless: &[usize],
    target_nodes: &[(usize, Vec<usize>)],
    out: &mut Outcome,
) {
    let input = ctx.input;
    let home: BTreeSet<usize> = homeless.iter().copied().collect();
    let mut kept_per_key: BTreeMap<(String, Lifecycle, String), usize> = BTreeMap::new();
    for &i in out.kept.keys() {
        let n = &input.nodes[i];
        *kept_per_key
            .entry((n.instance_type.clone(), n.lifecycle, n.az.clone()))
            .or_default() += 1;
    }
    // Target nodes by offer key, fewest homeless pods first (stable on target order).
    let mut by_key: BTreeMap<(String, Lifecycle, String), Vec<(usize, usize)>> = BTreeMap::new();
    for (t, (o, members)) in target_nodes.iter().enumerate() {
        let movers = members.iter().filter(|p| home.contains(p)).count();
        by_key
            .entry(offer_key(&ctx.offers[*o]))
            .or_default()
            .push((movers, t));
    }
    let mut dropped = vec![false; target_nodes.len()];
    for (key, mut ts) in by_key {
        let k = kept_per_key.get(&key).copied().unwrap_or(0);
        ts.sort_unstable();
        for &(_, t) in ts.iter().take(k) {
            dropped[t] = true;
        }
    }
    let mut bins: Vec<NewBin> = Vec::new();
    let mut orphans: Vec<(usize, String)> = Vec::new();
    let mut placed: BTreeSet<usize> = BTreeSet::new();
    for (t, (o, members)) in target_nodes.iter().enumerate() {
        let az = &ctx.offers[*o].az;
        if dropped[t] {
            orphans.extend(
                members
                    .iter()
                    .filter(|p| home.contains(p))
                    .map(|&p| (p, az.clone())),
            );
            continue;
        }
        let mut b = NewBin {
            offer: *o,
            pods: Vec::new(),
            used: Resources::default(),
            groups: BTreeSet::new(),
        };
        for &p in members.iter().filter(|p| home.contains(p)) {
            b.put(ctx, p);
            placed.insert(p);
        }
        bins.push(b);
    }
    // Homeless pods the target fleet does not hold (none when it packed every movable
    // pod) are orphans with no zone of their own.
    placed.extend(orphans.iter().map(|o| o.0));
    for &p in homeless {
        if !placed.contains(&p) {
            orphans.push((p, String::new()));
        }
    }
    orphans.sort_by(|a, b| {
        let (pa, pb) = (&ctx.pods[a.0], &ctx.pods[b.0]);
        pb.src
            .priority
            .cmp(&pa.src.priority)
            .then(pb.src.cpu_millis.cmp(&pa.src.cpu_millis))
            .then(pb.src.memory_mib.cmp(&pa.src.memory_mib))
            .then_with(|| pa.id.cmp(&pb.id))
    });
    let mut rest: Vec<usize> = Vec::new();
    for (i, az) in orphans {
        let p = &ctx.pods[i];
        if p.spread.is_none() {
            if let Some(r) = rooms.iter_mut().find(|r| fits_room(ctx, p, r)) {
                put(r, p);
                out.dest.insert(i, Dest::Existing(r.node));
                continue;
            }
        }
        let slot = bins.iter_mut().find(|b| {
            (p.spread.is_none() || (!az.is_empty() && ctx.offers[b.offer].az == az))
                && b.fits(ctx, p)
        });
        match slot {
            Some(b) => b.put(ctx, i),
            None => rest.push(i),
        }
    }
    // The emptiest new nodes (at most REFIT_EMPTY_TRIES) are emptied when all of their
    // pods fit into the receivers' free room (not zone-spread pods) or the other new
    // nodes' (zone-spread pods only in their zone).
    let util = |b: &NewBin| utilization(&b.used, &ctx.offers[b.offer].allocatable);
    let mut order: Vec<usize> = (0..bins.len()).collect();
    order.sort_by(|&a, &b| util(&bins[a]).total_cmp(&util(&bins[b])).then(a.cmp(&b)));
    order.truncate(REFIT_EMPTY_TRIES);
    for k in order {
        if bins[k].pods.is_empty() {
            continue;
        }
        let az = ctx.offers[bins[k].offer].az.clone();
        let mut room_trial: BTreeMap<usize, Room> = BTreeMap::new();
        let mut bin_trial: BTreeMap<usize, NewBin> = BTreeMap::new();
        let mut moves: Vec<(usize, Dest)> = Vec::new();
        let mut ok = true;
        for &i in &bins[k].pods {
            let p = &ctx.pods[i];
            if p.spread.is_none() {
                let r = (0..rooms.len())
                    .find(|&j| fits_room(ctx, p, room_trial.get(&j).unwrap_or(&rooms[j])));
                if let Some(j) = r {
                    let mut room = room_trial.remove(&j).unwrap_or_else(|| rooms[j].clone());
                    put(&mut room, p);
                    moves.push((i, Dest::Existing(room.node)));
                    room_trial.insert(j, room);
                    continue;
                }
            }
            let slot = (0..bins.len()).find(|&j| {
                j != k
                    && !bins[j].pods.is_empty()
                    && (p.spread.is_none() || ctx.offers[bins[j].offer].az == az)
                    && bin_trial.get(&j).unwrap_or(&bins[j]).fits(ctx, p)
            });
            match slot {
                Some(j) => {
                    let mut b = bin_trial.remove(&j).unwrap_or_else(|| NewBin {
                        offer: bins[j].offer,
                        pods: bins[j].pods.clone(),
                        used: bins[j].used,
                        groups: bins[j].groups.clone(),
                    });
                    b.put(ctx, i);
                    bin_trial.insert(j, b);
                }
                None => {
                    ok = false;
                    break;
                }
            }
        }
        if ok {
            for (j, r) in room_trial {
                rooms[j] = r;
            }
            for (j, b) in bin_trial {
                bins[j] = b;
            }
            for (i, d) in moves {
                out.dest.insert(i, d);
            }
            bins[k].pods.clear();
        }
    }
    for mut b in bins {
        if b.pods.is_empty() {
            continue;
        }
        let zone = b
            .pods
            .iter()
            .any(|&p| ctx.pods[p].spread.is_some())
            .then(|| ctx.offers[b.offer].az.clone());
        let cheapest = ctx
            .offers
            .iter()
            .enumerate()
            .filter(|(_, o)| {
                zone.as_deref().is_none_or(|z| z == o.az)
                    && b.used.fits_in(&o.allocatable)
                    && b.pods.iter().all(|&p| pod_fits_offer(&ctx.pods[p], o))
            })
            .min_by(|a, b| {
                a.1.hourly_price
                    .total_cmp(&b.1.hourly_price)
                    .then(a.0.cmp(&b.0))
            })
            .map(|(k, _)| k);
        if let Some(k) = cheapest {
            if ctx.offers[k].hourly_price < ctx.offers[b.offer].hourly_price {
                b.offer = k;
            }
        }
        let k = out.new_nodes.len();
        for &m in &b.pods {
            out.dest.insert(m, Dest::New(k));
        }
        out.objective += ctx.offers[b.offer].hourly_price;
        out.new_nodes.push((b.offer, b.pods));
    }
    rest.sort_unstable();
    place(ctx, rooms, &rest, out, false);
}

/// Plans the cluster. Errors only on invalid input.
pub fn plan(input: &PlanInput) -> Result<Plan> {
    validate(input)?;
    let mut forced: BTreeMap<usize, (KeepReason, String)> = BTreeMap::new();
    // Bounded: an overflowing round pins the nodes that did not fit a wave and plans
    // again; from the third round on only empty nodes may still be deleted, and dropping
    // overflowing empty deletions never makes another removal overflow.
    for round in 0..6 {
        match plan_round(input, &forced, round >= 2)? {
            Ok(plan) => return Ok(plan),
            Err(overflow) => {
                for i in overflow {
                    forced.insert(
                        i,
                        (
                            KeepReason::BudgetExhausted,
                            "would be disrupted, but every allowed wave is full (disruption budget exhausted)".into(),
                        ),
                    );
                }
            }
        }
    }
    Err(EngineError::Solver(
        "disruption waves did not settle".into(),
    ))
}

#[allow(clippy::type_complexity)]
fn plan_round(
    input: &PlanInput,
    forced: &BTreeMap<usize, (KeepReason, String)>,
    last: bool,
) -> Result<std::result::Result<Plan, Vec<usize>>> {
    let pol = &input.policy;
    // Pods.
    let mut pods: Vec<P<'_>> = Vec::new();
    let mut node_pods: Vec<Vec<usize>> = vec![Vec::new(); input.nodes.len()];
    let pdb_key = |p: &SnapPod| p.pdb.as_ref().map(|n| format!("{}/{}", p.namespace, n));
    let spread_of = |p: &SnapPod| {
        pol.spread_group(
            &p.namespace,
            p.owner.as_deref(),
            p.az_spread_group.as_deref(),
            p.daemonset,
        )
    };
    let mut ds_reserve = Resources::default();
    for (i, n) in input.nodes.iter().enumerate() {
        let mut ds = Resources::default();
        for p in &n.pods {
            if p.daemonset {
                ds = ds.saturating_add(&p.request());
                continue;
            }
            node_pods[i].push(pods.len());
            pods.push(P {
                src: p,
                id: p.key(),
                cap: input.policy.capacity_for(&p.namespace, p.capacity),
                node: Some(i),
                pdb: pdb_key(p),
                spread: spread_of(p),
            });
        }
        ds_reserve = ds_reserve.component_max(&ds);
    }
    let mut pending = Vec::new();
    for p in input.pending.iter().filter(|p| !p.daemonset) {
        pending.push(pods.len());
        pods.push(P {
            src: p,
            id: p.key(),
            cap: input.policy.capacity_for(&p.namespace, p.capacity),
            node: None,
            pdb: pdb_key(p),
            spread: spread_of(p),
        });
    }
    let offers3 = build_offers(input, ds_reserve);
    let offer_info = offers3
        .iter()
        .map(|(o, real, risk)| (offer_key(o), (*real, *risk)))
        .collect();
    let offers: Vec<NodeOffer> = offers3.into_iter().map(|(o, _, _)| o).collect();
    let pdb_allowed: BTreeMap<String, u32> = input
        .pdbs
        .iter()
        .map(|p| {
            (
                format!("{}/{}", p.namespace, p.name),
                p.disruptions_allowed(),
            )
        })
        .collect();
    let mut ctx = Ctx {
        input,
        pods,
        node_pods,
        pending,
        pdb_allowed,
        offers,
        offer_info,
        memo: Default::default(),
    };
    let mut pinned = classify(&ctx, forced).pinned;
    if last {
        // Only empty nodes may still change.
        for (i, _) in input.nodes.iter().enumerate() {
            if !pinned.contains_key(&i) && !ctx.node_pods[i].is_empty() {
                pinned.insert(
                    i,
                    (
                        KeepReason::BudgetExhausted,
                        "would be disrupted, but every allowed wave is full (disruption budget exhausted)".into(),
                    ),
                );
            }
        }
    }
    let cands: Vec<usize> = (0..input.nodes.len())
        .filter(|i| !pinned.contains_key(i))
        .collect();
    let movable_set: BTreeSet<usize> = cands
        .iter()
        .flat_map(|&i| ctx.node_pods[i].iter().copied())
        .chain(ctx.pending.iter().copied())
        .collect();
    let warnings = apply_on_demand_minimums(&mut ctx, &movable_set);
    let movable: Vec<usize> = movable_set.iter().copied().collect();
    // Receivers: any node that is not unmanaged / do-not-disrupt / tainted / AVOID.
    let receivers: BTreeSet<usize> = (0..input.nodes.len())
        .filter(|i| {
            let n = &input.nodes[*i];
            !matches!(
                pinned.get(i).map(|w| w.0),
                Some(KeepReason::Unmanaged)
                    | Some(KeepReason::Cordoned)
                    | Some(KeepReason::NotReady)
                    | Some(KeepReason::DoNotDisrupt)
                    | Some(KeepReason::MaintenanceMode)
            ) && n.taints.is_empty()
                && !at_risk(input, n)
                && !n.unmanaged
        })
        .collect();
    let pinned_objective: f64 = pinned.keys().map(|&i| node_objective(&ctx, i)).sum();

    // Target fleet over every movable pod.
    let (target_nodes, t_bad, lb, ffd, packer) =
        pack_new(&ctx, &movable, &ctx.input.opts(movable.len()));
    // Running pods the packer cannot place pin their node for the next round.
    let bad_running: Vec<usize> = t_bad.keys().filter_map(|&p| ctx.pods[p].node).collect();
    if !bad_running.is_empty() {
        let mut f = forced.clone();
        for n in bad_running {
            f.insert(
                n,
                (
                    KeepReason::Unplaceable,
                    "a pod on it cannot be placed on any allowed instance together with its constraints".into(),
                ),
            );
        }
        return plan_round(input, &f, last);
    }
    let movable_ok: Vec<usize> = movable
        .iter()
        .copied()
        .filter(|p| !t_bad.contains_key(p))
        .collect();
    let mut ctx_pending_ok = ctx.pending.clone();
    ctx_pending_ok.retain(|p| !t_bad.contains_key(p));
    let ctx_pending_all = std::mem::replace(&mut ctx.pending, ctx_pending_ok);

    let mut inc = incremental(&ctx, &cands, &receivers);
    // Replacing buys nodes: not with autoscaling off.
    let replace_ok = pol.method == ConsolidationMethod::ReplaceAndMove
        && pol.aggressiveness != Aggressiveness::Conservative
        && !pol.maintenance_mode
        && pol.autoscaling;
    let mut chosen = if replace_ok && !cands.is_empty() {
        let mut tgt = target(&ctx, &cands, &receivers, &target_nodes, &movable_ok);
        let kept_obj = |o: &Outcome| -> f64 {
            cands
                .iter()
                .filter(|i| !o.removed.contains(i))
                .map(|&i| node_objective(&ctx, i))
                .sum()
        };
        let cost_t = tgt.objective + kept_obj(&tgt);
        let cost_i = inc.objective + kept_obj(&inc);
        // The per-node exposure weight steers what is bought, not whether to replace:
        // replacing nodes only to have fewer of them would restart pods for no saving.
        let exposure = |o: &Outcome| -> f64 {
            let nodes = cands.iter().filter(|i| !o.removed.contains(i)).count() + o.new_nodes.len();
            pol.risk_premium * NODE_EXPOSURE_COST_HOURLY * nodes as f64
        };
        let (churn_t, churn_i) = (cost_t - exposure(&tgt), cost_i - exposure(&inc));
        let replaced_cost: f64 = tgt
            .removed
            .iter()
            .filter(|i| !inc.removed.contains(i))
            .map(|&i| input.nodes[i].hourly_price)
            .sum();
        // Moving pods has a price of its own (restarts, cold caches): every pod the target
        // set evicts beyond the incremental set's must earn its keep.
        let churn_pods: usize = tgt
            .removed
            .iter()
            .filter(|i| !inc.removed.contains(i))
            .map(|&i| ctx.node_pods[i].len())
            .sum();
        let margin = match pol.aggressiveness {
            Aggressiveness::Balanced => 0.20 * replaced_cost,
            _ => 1e-9,
        } + POD_DISRUPTION_COST_HOURLY * churn_pods as f64;
        if churn_t + margin < churn_i {
            tgt.objective = cost_t;
            tgt
        } else {
            // Nodes the target set would have replaced are kept for want of saving.
            for &i in &tgt.removed {
                if !inc.removed.contains(&i) {
                    if let Some(k) = inc.kept.get_mut(&i) {
                        if *k != KeepReason::PodsDoNotFit || churn_t < churn_i {
                            *k = KeepReason::SavingBelowThreshold;
                        }
                    }
                }
            }
            inc.objective = cost_i;
            inc
        }
    } else {
        let k: f64 = cands
            .iter()
            .filter(|i| !inc.removed.contains(i))
            .map(|&i| node_objective(&ctx, i))
            .sum();
        inc.objective += k;
        inc
    };
    chosen.objective += pinned_objective;
    for (p, r) in &t_bad {
        chosen.unschedulable.entry(*p).or_insert_with(|| r.clone());
    }
    ctx.pending = ctx_pending_all;
    if movable.is_empty() && chosen.removed.is_empty() {
        chosen.strategy = Strategy::None;
    }
    build_plan(
        &ctx,
        &pinned,
        chosen,
        lb,
        ffd,
        packer,
        pinned_objective,
        warnings,
    )
}

#[allow(clippy::too_many_arguments)]
fn build_plan(
    ctx: &Ctx<'_>,
    pinned: &BTreeMap<usize, (KeepReason, String)>,
    out: Outcome,
    lb_movable: f64,
    ffd_movable: f64,
    packer: String,
    pinned_objective: f64,
    warnings: Vec<String>,
) -> Result<std::result::Result<Plan, Vec<usize>>> {
    let input = ctx.input;
    let pol = &input.policy;
    let n_nodes = input.nodes.len();
    let budget = pol.disruption_budget.per_wave(n_nodes);
    let new_name = |k: usize| format!("new-{:04}", k + 1);
    let node_name = |d: Dest| match d {
        Dest::Existing(i) => input.nodes[i].name.clone(),
        Dest::New(k) => new_name(k),
    };
    let real = |o: usize| {
        ctx.offer_info
            .get(&offer_key(&ctx.offers[o]))
            .copied()
            .unwrap_or((ctx.offers[o].hourly_price, 0.0))
    };
    // Per removed node: saving and new receivers.
    struct Rem {
        node: usize,
        moves: Vec<(usize, Dest)>,
        saving: f64,
        by: Vec<usize>,
        risk: f64,
        pdb: BTreeMap<String, u32>,
    }
    let mut rems: Vec<Rem> = Vec::new();
    for &i in &out.removed {
        let mut moves: Vec<(usize, Dest)> = ctx.node_pods[i]
            .iter()
            .filter_map(|&p| out.dest.get(&p).map(|d| (p, *d)))
            .collect();
        moves.sort_by(|a, b| ctx.pods[a.0].id.cmp(&ctx.pods[b.0].id));
        let mut by: Vec<usize> = moves
            .iter()
            .filter_map(|(_, d)| match d {
                Dest::New(k) => Some(*k),
                _ => None,
            })
            .collect();
        by.sort_unstable();
        by.dedup();
        let mut share = 0.0;
        let mut risk: f64 = 0.0;
        for &k in &by {
            let (o, members) = &out.new_nodes[k];
            let from_here = members
                .iter()
                .filter(|m| ctx.pods[**m].node == Some(i))
                .count();
            let (price, r) = real(*o);
            share += price * from_here as f64 / members.len().max(1) as f64;
            if ctx.offers[*o].lifecycle == Lifecycle::Spot {
                risk = risk.max(r);
            }
        }
        let mut pdb: BTreeMap<String, u32> = BTreeMap::new();
        for &p in &ctx.node_pods[i] {
            if let Some(k) = &ctx.pods[p].pdb {
                *pdb.entry(k.clone()).or_default() += 1;
            }
        }
        rems.push(Rem {
            node: i,
            moves,
            saving: input.nodes[i].hourly_price - share,
            by,
            risk,
            pdb,
        });
    }
    // Order: empty first, then drains, then replacements; larger saving first; name.
    let class = |r: &Rem| {
        if r.moves.is_empty() {
            0
        } else if r.by.is_empty() {
            1
        } else {
            2
        }
    };
    rems.sort_by(|a, b| {
        class(a)
            .cmp(&class(b))
            .then(b.saving.total_cmp(&a.saving))
            .then_with(|| input.nodes[a.node].name.cmp(&input.nodes[b.node].name))
    });
    // Waves.
    let mut wave_of: BTreeMap<usize, u32> = BTreeMap::new();
    let mut waves_count: Vec<usize> = Vec::new();
    let mut waves_pdb: Vec<BTreeMap<String, u32>> = Vec::new();
    let mut overflow = Vec::new();
    for r in &rems {
        let mut w = 0;
        loop {
            if w == waves_count.len() {
                waves_count.push(0);
                waves_pdb.push(BTreeMap::new());
            }
            let pdb_ok = r.pdb.iter().all(|(k, c)| {
                let used = waves_pdb[w].get(k).copied().unwrap_or(0);
                used + c <= ctx.pdb_allowed.get(k).copied().unwrap_or(u32::MAX)
            });
            if waves_count[w] < budget && pdb_ok {
                break;
            }
            w += 1;
        }
        if pol
            .disruption_budget
            .max_waves
            .is_some_and(|m| w as u32 >= m)
        {
            overflow.push(r.node);
            continue;
        }
        waves_count[w] += 1;
        for (k, c) in &r.pdb {
            *waves_pdb[w].entry(k.clone()).or_default() += c;
        }
        wave_of.insert(r.node, w as u32);
    }
    if !overflow.is_empty() {
        return Ok(Err(overflow));
    }
    // Launch wave of each new node: first wave moving pods onto it; pending-only: 0.
    let mut launch_wave: Vec<u32> = vec![u32::MAX; out.new_nodes.len()];
    for (k, (_, members)) in out.new_nodes.iter().enumerate() {
        for &m in members {
            let w = match ctx.pods[m].node {
                Some(n) => wave_of.get(&n).copied().unwrap_or(0),
                None => 0,
            };
            launch_wave[k] = launch_wave[k].min(w);
        }
        if launch_wave[k] == u32::MAX {
            launch_wave[k] = 0;
        }
    }
    let n_waves = waves_count.len().max(
        launch_wave
            .iter()
            .map(|&w| w as usize + 1)
            .max()
            .unwrap_or(0),
    );
    let mut waves: Vec<Wave> = (0..n_waves)
        .map(|w| Wave {
            index: w as u32,
            actions: Vec::new(),
            disrupted: 0,
            pdb_evictions: BTreeMap::new(),
        })
        .collect();
    for (k, (o, _)) in out.new_nodes.iter().enumerate() {
        let off = &ctx.offers[*o];
        let (price, risk) = real(*o);
        waves[launch_wave[k] as usize]
            .actions
            .push(PlanAction::Launch {
                node: new_name(k),
                instance_type: off.instance_type.clone(),
                lifecycle: off.lifecycle,
                az: off.az.clone(),
                hourly_price: price,
                interruption_probability: risk,
            });
    }
    let mut reports: BTreeMap<usize, NodeReport> = BTreeMap::new();
    let util_of = |i: usize| {
        let used = ctx.node_pods[i].iter().fold(Resources::default(), |a, &p| {
            a.saturating_add(&ctx.pods[p].src.request())
        });
        utilization(&used, &input.nodes[i].allocatable)
    };
    for r in &rems {
        let w = wave_of.get(&r.node).copied().unwrap_or(0);
        let n = &input.nodes[r.node];
        let wave = &mut waves[w as usize];
        wave.disrupted += 1;
        for (k, c) in &r.pdb {
            *wave.pdb_evictions.entry(k.clone()).or_default() += c;
        }
        let moves: Vec<PodMove> = r
            .moves
            .iter()
            .map(|(p, d)| PodMove {
                pod: ctx.pods[*p].id.clone(),
                from: n.name.clone(),
                to: node_name(*d),
            })
            .collect();
        let (action, fate, reason) = if r.moves.is_empty() {
            (
                PlanAction::DeleteEmpty {
                    node: n.name.clone(),
                    saving_hourly: r.saving,
                },
                NodeFate::DeletedEmpty { wave: w },
                format!(
                    "empty node (DaemonSets aside): delete in wave {w}, saves ${:.4}/h",
                    r.saving
                ),
            )
        } else if r.by.is_empty() {
            let mut to: Vec<String> = moves.iter().map(|m| m.to.clone()).collect();
            to.sort();
            to.dedup();
            (
                PlanAction::Drain {
                    node: n.name.clone(),
                    moves: moves.clone(),
                    saving_hourly: r.saving,
                },
                NodeFate::Drained { wave: w },
                format!(
                    "under-utilised ({:.0}%): its {} pods fit on {}; delete in wave {w}, saves ${:.4}/h",
                    util_of(r.node) * 100.0,
                    moves.len(),
                    to.join(", "),
                    r.saving
                ),
            )
        } else {
            let by: Vec<String> = r.by.iter().map(|&k| new_name(k)).collect();
            let lcs: BTreeSet<Lifecycle> =
                r.by.iter()
                    .map(|&k| ctx.offers[out.new_nodes[k].0].lifecycle)
                    .collect();
            let change = match (n.lifecycle, lcs.len(), lcs.iter().next()) {
                (Lifecycle::OnDemand, 1, Some(Lifecycle::Spot)) => {
                    Some("on_demand_to_spot".to_string())
                }
                (Lifecycle::Spot, 1, Some(Lifecycle::OnDemand)) => {
                    Some("spot_to_on_demand".to_string())
                }
                _ => None,
            };
            let types: Vec<String> =
                r.by.iter()
                    .map(|&k| {
                        let o = &ctx.offers[out.new_nodes[k].0];
                        format!("{} {} {}", o.instance_type, lc_name(o.lifecycle), o.az)
                    })
                    .collect();
            (
                PlanAction::Replace {
                    node: n.name.clone(),
                    by: by.clone(),
                    moves: moves.clone(),
                    saving_hourly: r.saving,
                    lifecycle_change: change.clone(),
                },
                NodeFate::Replaced {
                    wave: w,
                    by: by.clone(),
                    risk: r.risk,
                },
                format!(
                    "not in the LP target fleet: its {} pods move to {} ({}){}; saves ${:.4}/h, replacement risk {:.0}%",
                    moves.len(),
                    by.join(", "),
                    types.join(", "),
                    change.map(|c| format!(", {}", c.replace('_', " "))).unwrap_or_default(),
                    r.saving,
                    r.risk * 100.0
                ),
            )
        };
        wave.actions.push(action);
        reports.insert(
            r.node,
            NodeReport {
                node: n.name.clone(),
                fate,
                saving_hourly: r.saving,
                utilization: util_of(r.node),
                reason,
            },
        );
    }
    for (i, n) in input.nodes.iter().enumerate() {
        if reports.contains_key(&i) {
            continue;
        }
        let (why, text) = if let Some((w, t)) = pinned.get(&i) {
            (*w, t.clone())
        } else {
            let w = out
                .kept
                .get(&i)
                .copied()
                .unwrap_or(KeepReason::WellUtilized);
            let u = util_of(i);
            let t = match w {
                KeepReason::InTargetFleet => format!(
                    "{} {} in {} is part of the LP target fleet; kept ({:.0}% utilized)",
                    n.instance_type,
                    lc_name(n.lifecycle),
                    n.az,
                    u * 100.0
                ),
                KeepReason::WellUtilized => format!(
                    "utilization {:.0}% is not below the {:?} threshold {:.0}%",
                    u * 100.0,
                    pol.aggressiveness,
                    pol.aggressiveness.threshold() * 100.0
                ),
                KeepReason::PodsDoNotFit => format!(
                    "under-utilised ({:.0}%), but its pods do not fit on the other nodes and replacing it does not pay",
                    u * 100.0
                ),
                KeepReason::SavingBelowThreshold => format!(
                    "replacing it with the LP target fleet saves less than the {:?} policy requires",
                    pol.aggressiveness
                ),
                other => format!("{other:?}"),
            };
            (w, t)
        };
        reports.insert(
            i,
            NodeReport {
                node: n.name.clone(),
                fate: NodeFate::Kept { why },
                saving_hourly: 0.0,
                utilization: util_of(i),
                reason: text,
            },
        );
    }
    let mut nodes: Vec<NodeReport> = reports.into_values().collect();
    nodes.sort_by(|a, b| a.node.cmp(&b.node));
    for w in &mut waves {
        w.actions.sort_by_key(|a| match a {
            PlanAction::Launch { node, .. } => (0, node.clone()),
            PlanAction::DeleteEmpty { node, .. } => (1, node.clone()),
            PlanAction::Drain { node, .. } => (2, node.clone()),
            PlanAction::Replace { node, .. } => (3, node.clone()),
        });
    }
    // Pending reports.
    let mut pending: Vec<PendingReport> = ctx
        .pending
        .iter()
        .map(|&p| {
            let id = ctx.pods[p].id.clone();
            match (out.dest.get(&p), out.unschedulable.get(&p)) {
                (Some(Dest::Existing(i)), _) => PendingReport {
                    pod: id,
                    node: Some(input.nodes[*i].name.clone()),
                    wave: Some(0),
                    reason: format!("fits the free room of existing node {}", input.nodes[*i].name),
                },
                (Some(Dest::New(k)), _) => {
                    let o = &ctx.offers[out.new_nodes[*k].0];
                    PendingReport {
                        pod: id,
                        node: Some(new_name(*k)),
                        wave: Some(launch_wave[*k]),
                        reason: format!(
                            "placed by the LP packer on new node {} ({} {} {}), launched in wave {}",
                            new_name(*k),
                            o.instance_type,
                            lc_name(o.lifecycle),
                            o.az,
                            launch_wave[*k]
                        ),
                    }
                }
                (None, Some(r)) => PendingReport {
                    pod: id,
                    node: None,
                    wave: None,
                    reason: format!("unschedulable: {r}"),
                },
                (None, None) => PendingReport {
                    pod: id,
                    node: None,
                    wave: None,
                    reason: "unschedulable: no allowed instance fits it".into(),
                },
            }
        })
        .collect();
    pending.sort_by(|a, b| a.pod.cmp(&b.pod));
    // Fleet after.
    let mut fleet: Vec<FleetNode> = Vec::new();
    let mut on_existing: BTreeMap<usize, Vec<String>> = BTreeMap::new();
    for (p, d) in &out.dest {
        if let Dest::Existing(i) = d {
            on_existing
                .entry(*i)
                .or_default()
                .push(ctx.pods[*p].id.clone());
        }
    }
    let mut current = 0.0;
    let mut planned = 0.0;
    for (i, n) in input.nodes.iter().enumerate() {
        current += n.hourly_price;
        if out.removed.contains(&i) {
            continue;
        }
        planned += n.hourly_price;
        let mut ps: Vec<String> = ctx.node_pods[i]
            .iter()
            .map(|&p| ctx.pods[p].id.clone())
            .collect();
        ps.extend(on_existing.remove(&i).unwrap_or_default());
        ps.sort();
        fleet.push(FleetNode {
            name: n.name.clone(),
            instance_type: n.instance_type.clone(),
            lifecycle: n.lifecycle,
            az: n.az.clone(),
            hourly_price: n.hourly_price,
            new: false,
            pods: ps,
        });
    }
    fleet.sort_by(|a, b| a.name.cmp(&b.name));
    for (k, (o, members)) in out.new_nodes.iter().enumerate() {
        let off = &ctx.offers[*o];
        let (price, _) = real(*o);
        planned += price;
        let mut ps: Vec<String> = members.iter().map(|&p| ctx.pods[p].id.clone()).collect();
        ps.sort();
        fleet.push(FleetNode {
            name: new_name(k),
            instance_type: off.instance_type.clone(),
            lifecycle: off.lifecycle,
            az: off.az.clone(),
            hourly_price: price,
            new: true,
            pods: ps,
        });
    }
    let objective = out.objective;
    let raw_lower = pinned_objective + lb_movable;
    let used_pinned_room = out
        .dest
        .values()
        .any(|d| matches!(d, Dest::Existing(i) if pinned.contains_key(i)));
    let lower_bound_valid = !used_pinned_room && raw_lower <= objective * (1.0 + 1e-9) + 1e-12;
    let lower = raw_lower.min(objective);
    let costs = Costs {
        current_hourly: current,
        planned_hourly: planned,
        saving_hourly: current - planned,
        saving_monthly: crate::catalog::monthly(current - planned),
        objective_hourly: objective,
        lower_bound_hourly: lower,
        gap: if objective > 0.0 {
            ((objective - lower) / objective).max(0.0)
        } else {
            0.0
        },
        ffd_objective_hourly: pinned_objective + ffd_movable,
        lower_bound_valid,
    };
    Ok(Ok(Plan {
        version: PLAN_VERSION,
        generated_at: input.now,
        strategy: out.strategy,
        disruption_budget: budget as u32,
        maintenance_mode: pol.maintenance_mode,
        waves,
        nodes,
        pending,
        fleet,
        costs,
        warnings,
        packer,
    }))
}

fn lc_name(l: Lifecycle) -> &'static str {
    match l {
        Lifecycle::Spot => "spot",
        Lifecycle::OnDemand => "on-demand",
    }
}

impl Plan {
    /// The plan as the executor's [`ActionPlan`] (`jobs::optimize` executes those):
    /// deletions and drains map one to one; a replacement launches every new node its
    /// pods need that no earlier action launched (`destination`, then
    /// `extra_destinations`; each new node is attached to exactly one replacement, the
    /// first in wave order); launches no replacement carries (new nodes for pending pods
    /// only) are listed as blocked: pending pods are the cluster actor's. Maintenance mode
    /// blocks everything.
    pub fn to_action_plan(&self) -> ActionPlan {
        let launches: BTreeMap<&str, Destination> = self
            .waves
            .iter()
            .flat_map(|w| w.actions.iter())
            .filter_map(|a| match a {
                PlanAction::Launch {
                    node,
                    instance_type,
                    lifecycle,
                    az,
                    hourly_price,
                    ..
                } => Some((
                    node.as_str(),
                    Destination {
                        instance_type: instance_type.clone(),
                        lifecycle: *lifecycle,
                        az: az.clone(),
                        hourly_price: *hourly_price,
                    },
                )),
                _ => None,
            })
            .collect();
        let reason_of: BTreeMap<&str, &str> = self
            .nodes
            .iter()
            .map(|n| (n.node.as_str(), n.reason.as_str()))
            .collect();
        let mut attached: BTreeSet<&str> = BTreeSet::new();
        let mut actions = Vec::new();
        for w in &self.waves {
            for a in &w.actions {
                let (kind, target, saving, dest, extra, receivers) = match a {
                    PlanAction::Launch { .. } => continue,
                    PlanAction::DeleteEmpty {
                        node,
                        saving_hourly,
                    } => (
                        ActionKind::DeleteEmptyNode,
                        node,
                        *saving_hourly,
                        None,
                        Vec::new(),
                        Vec::new(),
                    ),
                    PlanAction::Drain {
                        node,
                        moves,
                        saving_hourly,
                    } => {
                        let mut r: Vec<String> = moves.iter().map(|m| m.to.clone()).collect();
                        r.sort();
                        r.dedup();
                        (
                            ActionKind::DrainAndDeleteNode,
                            node,
                            *saving_hourly,
                            None,
                            Vec::new(),
                            r,
                        )
                    }
                    PlanAction::Replace {
                        node,
                        by,
                        moves,
                        saving_hourly,
                        lifecycle_change,
                    } => {
                        // Every new node this replacement needs that no earlier action
                        // launched is launched by it, before its pods are evicted.
                        let mut dests: Vec<Destination> = Vec::new();
                        for b in by {
                            if attached.contains(b.as_str()) {
                                continue;
                            }
                            if let Some(d) = launches.get(b.as_str()) {
                                attached.insert(b.as_str());
                                dests.push(d.clone());
                            }
                        }
                        let mut dests = dests.into_iter();
                        let dest = dests.next();
                        let extra: Vec<Destination> = dests.collect();
                        let mut r: Vec<String> = moves.iter().map(|m| m.to.clone()).collect();
                        r.sort();
                        r.dedup();
                        let kind = match (lifecycle_change.as_deref(), &dest) {
                            (_, None) => ActionKind::DrainAndDeleteNode,
                            (Some("on_demand_to_spot"), Some(_)) => ActionKind::MoveToSpot,
                            _ => ActionKind::ReplaceNode,
                        };
                        (kind, node, *saving_hourly, dest, extra, r)
                    }
                };
                actions.push(decide::Action {
                    kind,
                    target: target.clone(),
                    reason: format!(
                        "wave {}: {}",
                        w.index,
                        reason_of.get(target.as_str()).copied().unwrap_or("")
                    ),
                    expected_monthly_savings: crate::catalog::monthly(saving),
                    destination: dest,
                    receivers,
                    extra_destinations: extra,
                });
            }
        }
        let mut blocked = Vec::new();
        for (name, d) in &launches {
            if !attached.contains(name) {
                blocked.push(BlockedAction {
                    action: decide::Action {
                        kind: ActionKind::ReplaceNode,
                        target: (*name).to_string(),
                        reason: format!(
                            "launch {} {} in {}",
                            d.instance_type,
                            lc_name(d.lifecycle),
                            d.az
                        ),
                        expected_monthly_savings: -crate::catalog::monthly(d.hourly_price),
                        destination: Some(d.clone()),
                        receivers: Vec::new(),
                        extra_destinations: Vec::new(),
                    },
                    reason: "standalone launches need the executor's launch step".into(),
                });
            }
        }
        if self.maintenance_mode {
            for a in actions.drain(..) {
                blocked.push(BlockedAction {
                    action: a,
                    reason: "maintenance mode: automated actions are paused".into(),
                });
            }
        }
        let expected = actions.iter().map(|a| a.expected_monthly_savings).sum();
        ActionPlan {
            version: decide::ACTION_PLAN_VERSION,
            generated_at: self.generated_at,
            actions,
            blocked,
            expected_monthly_savings: expected,
        }
    }
}

/// Checks a plan against its input: every node and pending pod has a report; no wave
/// disrupts more than the budget or evicts more than a PDB allows; unmanaged and
/// do-not-disrupt nodes are neither disrupted nor receive pods; the fleet after the plan
/// places every running (non-DaemonSet) pod and every scheduled pending pod exactly once,
/// within each node's allocatable (new nodes: the offer's), honouring capacity type, arch
/// and anti-affinity. Returns the first violation.
pub fn check(input: &PlanInput, plan: &Plan) -> std::result::Result<(), String> {
    let names: BTreeSet<&str> = input.nodes.iter().map(|n| n.name.as_str()).collect();
    let reported: BTreeSet<&str> = plan.nodes.iter().map(|n| n.node.as_str()).collect();
    if names != reported || plan.nodes.len() != input.nodes.len() {
        return Err("node reports do not cover every node exactly once".into());
    }
    let pend: BTreeSet<String> = input
        .pending
        .iter()
        .filter(|p| !p.daemonset)
        .map(|p| p.key())
        .collect();
    let prep: BTreeSet<String> = plan.pending.iter().map(|p| p.pod.clone()).collect();
    if pend != prep {
        return Err("pending reports do not cover every pending pod".into());
    }
    let budget = input.policy.disruption_budget.per_wave(input.nodes.len());
    let allowed: BTreeMap<String, u32> = input
        .pdbs
        .iter()
        .map(|p| {
            (
                format!("{}/{}", p.namespace, p.name),
                p.disruptions_allowed(),
            )
        })
        .collect();
    let by_name: BTreeMap<&str, &SnapNode> =
        input.nodes.iter().map(|n| (n.name.as_str(), n)).collect();
    let protected = |n: &SnapNode| {
        n.unmanaged
            || n.cordoned
            || !n.ready
            || n.do_not_disrupt
            || n.labels.get(DO_NOT_DISRUPT).is_some_and(|v| v == "true")
            || n.labels.get(UNMANAGED_LABEL).is_some_and(|v| v == "true")
            || n.pods.iter().any(|p| {
                !p.daemonset
                    && (p.do_not_disrupt || input.policy.excluded_namespaces.contains(&p.namespace))
            })
    };
    for w in &plan.waves {
        let disrupted: Vec<&str> = w.actions.iter().filter_map(|a| a.disrupted()).collect();
        if disrupted.len() > budget {
            return Err(format!(
                "wave {} disrupts {} > budget {budget}",
                w.index,
                disrupted.len()
            ));
        }
        let mut ev: BTreeMap<String, u32> = BTreeMap::new();
        for d in &disrupted {
            let n = by_name
                .get(d)
                .ok_or_else(|| format!("unknown node {d} disrupted"))?;
            if protected(n) {
                return Err(format!("protected node {d} disrupted"));
            }
            for p in n.pods.iter().filter(|p| !p.daemonset) {
                if let Some(b) = &p.pdb {
                    *ev.entry(format!("{}/{}", p.namespace, b)).or_default() += 1;
                }
            }
        }
        for (k, c) in ev {
            if c > allowed.get(&k).copied().unwrap_or(u32::MAX) {
                return Err(format!("wave {} evicts {c} pods of PDB {k}", w.index));
            }
        }
    }
    // Fleet feasibility.
    let mut pods: BTreeMap<String, &SnapPod> = BTreeMap::new();
    for n in &input.nodes {
        for p in n.pods.iter().filter(|p| !p.daemonset) {
            pods.insert(p.key(), p);
        }
    }
    let scheduled: BTreeSet<&str> = plan
        .pending
        .iter()
        .filter(|p| p.node.is_some())
        .map(|p| p.pod.as_str())
        .collect();
    for p in input.pending.iter().filter(|p| !p.daemonset) {
        if scheduled.contains(p.key().as_str()) {
            pods.insert(p.key(), p);
        }
    }
    let mut seen: BTreeSet<&str> = BTreeSet::new();
    for f in &plan.fleet {
        let (alloc, arch, base): (Resources, Arch, Resources) = if f.new {
            let it = input
                .market
                .catalog
                .get(&f.instance_type)
                .ok_or_else(|| format!("new node {} of unknown type", f.name))?;
            let oh = NodeOverhead {
                max_pods: input
                    .market
                    .max_pods
                    .get(&it.name)
                    .copied()
                    .unwrap_or(input.market.overhead.max_pods),
                ..input.market.overhead.clone()
            };
            (oh.allocatable(it), it.arch, Resources::default())
        } else {
            let n = by_name
                .get(f.name.as_str())
                .ok_or("fleet names an unknown node")?;
            if protected(n) {
                let before: BTreeSet<String> = n
                    .pods
                    .iter()
                    .filter(|p| !p.daemonset)
                    .map(|p| p.key())
                    .collect();
                let after: BTreeSet<String> = f.pods.iter().cloned().collect();
                if before != after {
                    return Err(format!("protected node {} changed pods", f.name));
                }
            }
            let ds = n
                .pods
                .iter()
                .filter(|p| p.daemonset)
                .fold(Resources::default(), |a, p| a.saturating_add(&p.request()));
            (n.allocatable, n.arch, ds)
        };
        let mut used = base;
        let mut groups = BTreeSet::new();
        for id in &f.pods {
            let p = pods
                .get(id)
                .ok_or_else(|| format!("{} holds unknown pod {id}", f.name))?;
            if !seen.insert(id.as_str()) {
                return Err(format!("pod {id} placed twice"));
            }
            used = used.saturating_add(&p.request());
            if !p.capacity.allows(f.lifecycle) {
                return Err(format!(
                    "pod {id} needs {:?}, {} is {:?}",
                    p.capacity, f.name, f.lifecycle
                ));
            }
            if p.arch.is_some_and(|a| a != arch) {
                return Err(format!("pod {id} arch mismatch on {}", f.name));
            }
            if let Some(g) = &p.anti_affinity_group {
                if !groups.insert(g.clone()) {
                    return Err(format!("anti-affinity {g} twice on {}", f.name));
                }
            }
        }
        if !used.fits_in(&alloc) {
            return Err(format!("{} over capacity: {used:?} > {alloc:?}", f.name));
        }
    }
    if seen.len() != pods.len() {
        return Err(format!("{} of {} pods placed", seen.len(), pods.len()));
    }
    Ok(())
}

/// Force on-demand: replaces each spot node named in `targets` (all spot nodes when
/// `targets` is `None`) by an on-demand node of the same type in the same zone, one
/// action per node in name order, for the executor's safe path (launch, Ready, cordon,
/// drain through the agent, terminate). Nodes already on demand need nothing; a spot node
/// whose type the catalog does not price is blocked with the reason. Pure.
pub fn force_on_demand(
    nodes: &[SnapNode],
    targets: Option<&BTreeSet<String>>,
    catalog: &Catalog,
    reason: &str,
    now: i64,
) -> ActionPlan {
    let mut actions = Vec::new();
    let mut blocked = Vec::new();
    let mut chosen: Vec<&SnapNode> = nodes
        .iter()
        .filter(|n| n.lifecycle == Lifecycle::Spot)
        .filter(|n| targets.is_none_or(|t| t.contains(&n.name)))
        .collect();
    chosen.sort_by(|a, b| a.name.cmp(&b.name));
    for n in chosen {
        let od = catalog.get(&n.instance_type).map(|t| t.on_demand_hourly);
        let action = decide::Action {
            kind: ActionKind::ReplaceNode,
            target: n.name.clone(),
            reason: format!("{reason}: spot {} in {} → on-demand", n.instance_type, n.az),
            // Negative: on demand costs more than the spot node it replaces.
            expected_monthly_savings: od
                .map(|p| crate::catalog::monthly(n.hourly_price - p))
                .unwrap_or(0.0),
            destination: od.map(|p| Destination {
                instance_type: n.instance_type.clone(),
                lifecycle: Lifecycle::OnDemand,
                az: n.az.clone(),
                hourly_price: p,
            }),
            receivers: Vec::new(),
            extra_destinations: Vec::new(),
        };
        if od.is_none() {
            blocked.push(BlockedAction {
                reason: format!("{} has no on-demand price in the catalog", n.instance_type),
                action,
            });
        } else {
            actions.push(action);
        }
    }
    let expected = actions.iter().map(|a| a.expected_monthly_savings).sum();
    ActionPlan {
        version: 1,
        generated_at: now,
        actions,
        blocked,
        expected_monthly_savings: expected,
    }
}

#[cfg(test)]
mod force_tests {
    use super::*;
    use crate::catalog::InstanceType;

    fn node(name: &str, lifecycle: Lifecycle, price: f64) -> SnapNode {
        SnapNode {
            name: name.into(),
            instance_type: "m5.large".into(),
            lifecycle,
            az: "us-east-1a".into(),
            arch: Arch::X86_64,
            hourly_price: price,
            allocatable: Resources {
                cpu_millis: 2000,
                memory_mib: 8192,
                gpus: 0,
                pods: 29,
            },
            created_at: 0,
            interruption_probability: 0.0,
            labels: BTreeMap::new(),
            taints: Vec::new(),
            unmanaged: false,
            do_not_disrupt: false,
            cordoned: false,
            ready: true,
            pinned: None,
            pods: Vec::new(),
        }
    }

    fn catalog() -> Catalog {
        Catalog::new(
            vec![InstanceType {
                name: "m5.large".into(),
                family: "m5".into(),
                vcpu: 2,
                memory_mib: 8192,
                gpus: 0,
                arch: Arch::X86_64,
                burstable: false,
                on_demand_hourly: 0.096,
            }],
            Vec::new(),
        )
        .expect("catalog")
    }

    #[test]
    fn every_spot_node_in_scope_gets_an_on_demand_twin() {
        let nodes = vec![
            node("b", Lifecycle::Spot, 0.04),
            node("a", Lifecycle::Spot, 0.03),
            node("c", Lifecycle::OnDemand, 0.096),
        ];
        let p = force_on_demand(&nodes, None, &catalog(), "forced", 7);
        let targets: Vec<&str> = p.actions.iter().map(|a| a.target.as_str()).collect();
        assert_eq!(targets, ["a", "b"], "spot nodes only, in name order");
        for a in &p.actions {
            assert_eq!(a.kind, ActionKind::ReplaceNode);
            let d = a.destination.as_ref().expect("destination");
            assert_eq!(
                (d.lifecycle, d.instance_type.as_str(), d.az.as_str()),
                (Lifecycle::OnDemand, "m5.large", "us-east-1a")
            );
            assert!(a.expected_monthly_savings < 0.0, "on demand costs more");
        }
        let only: BTreeSet<String> = ["b".to_string(), "c".to_string()].into();
        let p = force_on_demand(&nodes, Some(&only), &catalog(), "forced", 7);
        assert_eq!(p.actions.len(), 1);
        assert_eq!(p.actions[0].target, "b");
        let mut odd = node("x", Lifecycle::Spot, 0.1);
        odd.instance_type = "zz9.huge".into();
        let p = force_on_demand(&[odd], None, &catalog(), "forced", 7);
        assert!(p.actions.is_empty());
        assert_eq!(p.blocked.len(), 1);
    }
}

#[cfg(test)]
mod refit_tests {
    use super::*;
    use crate::catalog::{InstanceType, SpotPool};

    fn catalog() -> Catalog {
        let t = |name: &str, vcpu: u32, price: f64| InstanceType {
            name: name.into(),
            family: "m5".into(),
            vcpu,
            memory_mib: u64::from(vcpu) * 4096,
            gpus: 0,
            arch: Arch::X86_64,
            burstable: false,
            on_demand_hourly: price,
        };
        let types = vec![
            t("m5.large", 2, 0.096),
            t("m5.2xlarge", 8, 0.384),
            t("m5.4xlarge", 16, 0.768),
        ];
        let mut pools = Vec::new();
        for (k, it) in types.iter().enumerate() {
            for (z, az) in ["us-east-1a", "us-east-1b"].iter().enumerate() {
                pools.push(SpotPool {
                    instance_type: it.name.clone(),
                    az: (*az).into(),
                    spot_price: it.on_demand_hourly * (0.30 + 0.02 * (k + z) as f64),
                    interruption_probability: 0.05,
                });
            }
        }
        Catalog::new(types, pools).expect("catalog")
    }

    fn pod(i: usize) -> SnapPod {
        let (cpu, mem) = [(250, 512), (500, 1024), (300, 2048), (700, 768)][i % 4];
        SnapPod {
            name: format!("p-{i:04}"),
            namespace: "web".into(),
            labels: BTreeMap::new(),
            owner: Some(format!("Deployment/web-{}", i % 5)),
            priority: 0,
            cpu_millis: cpu,
            memory_mib: mem,
            gpus: 0,
            // On-demand-only pods sit on the on-demand nodes (the first 240 pods).
            capacity: if i.is_multiple_of(10) && i < 240 {
                CapacityReq::OnDemand
            } else {
                CapacityReq::Any
            },
            arch: None,
            anti_affinity_group: i.is_multiple_of(9).then(|| format!("g-{}", i % 4)),
            az_spread_group: i.is_multiple_of(9).then(|| format!("g-{}", i % 4)),
            pdb: None,
            do_not_disrupt: false,
            daemonset: false,
        }
    }

    fn input() -> PlanInput {
        let cat = catalog();
        let overhead = NodeOverhead::default();
        let mut nodes = Vec::new();
        let mut next = 0;
        // 60 on-demand m5.large with 4 pods each, 3 spot m5.4xlarge (the target fleet's
        // kind of node) with 20 each, one of them young (a pinned receiver).
        for k in 0..63 {
            let (it, lifecycle, n_pods) = if k < 60 {
                ("m5.large", Lifecycle::OnDemand, 4)
            } else {
                ("m5.4xlarge", Lifecycle::Spot, 20)
            };
            let ty = cat.get(it).expect("type");
            let az = if k % 2 == 0 {
                "us-east-1a"
            } else {
                "us-east-1b"
            };
            let price = if lifecycle == Lifecycle::Spot {
                cat.pools_of(it)
                    .find(|p| p.az == az)
                    .map_or(ty.on_demand_hourly, |p| p.spot_price)
            } else {
                ty.on_demand_hourly
            };
            let pods: Vec<SnapPod> = (next..next + n_pods).map(pod).collect();
            next += n_pods;
            nodes.push(SnapNode {
                name: format!("n-{k:03}"),
                instance_type: it.into(),
                lifecycle,
                az: az.into(),
                arch: Arch::X86_64,
                hourly_price: price,
                allocatable: overhead.allocatable(ty),
                created_at: if k == 62 { 1_000_000 - 60 } else { 0 },
                interruption_probability: if lifecycle == Lifecycle::Spot {
                    0.05
                } else {
                    0.0
                },
                labels: BTreeMap::new(),
                taints: Vec::new(),
                unmanaged: false,
                do_not_disrupt: false,
                cordoned: false,
                ready: true,
                pinned: None,
                pods,
            });
        }
        PlanInput {
            nodes,
            pending: (next..next + 20).map(pod).collect(),
            pdbs: Vec::new(),
            policy: ClusterPolicy {
                risk_premium: 0.0,
                ..ClusterPolicy::default()
            },
            market: Market {
                catalog: cat,
                risk_flags: Default::default(),
                max_pods: BTreeMap::new(),
                overhead,
            },
            now: 1_000_000,
            pack_options: None,
        }
    }

    /// More than [`REPACK_MAX_PODS`] homeless pods around kept and pinned nodes: the
    /// target fleet is refitted, not packed again, and the plan stays feasible,
    /// deterministic and cheaper than the current fleet.
    #[test]
    fn refitted_target_fleet_is_feasible_and_deterministic() {
        let input = input();
        let movable: usize = input.nodes.iter().map(|n| n.pods.len()).sum();
        assert!(movable > REPACK_MAX_PODS);
        let p = plan(&input).expect("plan");
        check(&input, &p).expect("feasible within budgets");
        assert_eq!(p.strategy, Strategy::Target);
        assert!(
            p.pending.iter().all(|x| x.node.is_some()),
            "every pending pod is placed"
        );
        assert!(p.costs.planned_hourly < p.costs.current_hourly);
        assert!(p.costs.lower_bound_hourly <= p.costs.objective_hourly + 1e-9);
        assert_eq!(p, plan(&input).expect("plan"), "deterministic");
    }
}
