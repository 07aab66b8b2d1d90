//! The headline table: a simulated week of several clusters driven by the SHIPPED code.
//!
//! ```text
//! cargo bench -p spot-benches --bench week               # one week (~35 s on 2 busy cores)
//! cargo bench -p spot-benches --bench week -- --quick    # one day (same as WEEK_QUICK=1)
//! WEEK_WEEKS=4 cargo bench -p spot-benches --bench week  # four consecutive weeks
//! WEEK_PLAN_EVERY=3600 …                                 # our Optimize-Now cadence, seconds
//! WEEK_DEBUG=1 …                                         # trace plan waves and interruptions
//! ```
//!
//! The package builds the engine (with the ONNX runtime on tract) and the simulator only
//! (`spot-cloud` without its AWS adapter); the risk model is `onnx/risk-v1.onnx`, the bytes
//! the product embeds.
//!
//! World. The `sim` market of us-east-1 (seed 42; hourly spot price and capacity of every
//! pool, a day of warm-up for the model's price window). Every strategy sees the same
//! prices and the same interruption draws: at the end of each hour, the k-th node (launch
//! order) of a pool is interrupted when `draw(pool, hour, k)` is below the simulator's
//! interruption probability for the pool's capacity that hour and the node's exposure.
//! The instance universe is one NodePool for everybody: x86_64 general/compute/memory
//! families of generation ≥ 5, sizes large–8xlarge (the engine's node template).
//!
//! Clusters (same workload for every strategy, in simulated time steps of 10 s):
//! - `shop`: seven deployments, 330 → 1,400 pods over the day (diurnal, lower on
//!   weekends, ±4 % HPA noise every 5 minutes, 5-minute scale-down stabilisation), PDBs on
//!   three of them;
//! - `demo`: the former demo workload (156 pods at peak, web/api diurnal);
//! - `batch`: a small static base and weekday-night ETL bursts (0 → 88 big pods).
//!
//! A kube-scheduler model (LeastAllocated, the default) binds new pods to existing nodes;
//! pods it cannot place are pending and go to the strategy's provisioner. Scale-down
//! removes the newest pods (the ReplicaSet's ordering). Nodes bill per second at the hour's
//! price of their pool (on-demand at the on-demand price).
//!
//! Strategies:
//! 1. `all on-demand`: Karpenter-style machinery (below) over on-demand offers only.
//! 2. `Karpenter-style`: provisioning by first-fit-decreasing (`spot_engine::pack`, FFD
//!    only) over spot offers priced price-capacity-optimized (`price × 10 / placement
//!    score`; on-demand only as a last resort); a consolidation pass every 10 s of simulated
//!    time whenever the cluster changed: delete empty nodes, delete nodes whose pods fit on
//!    the other nodes (fewest pods first), replace on-demand nodes by a cheaper node (spot-
//!    to-spot replacement is off, Karpenter's default), at most 10 % of the nodes (rounded
//!    up) per pass, PDBs honoured, nodes younger than 60 s not candidates. Interrupted
//!    nodes' pods are rescheduled, then provisioned.
//! 3. `lowest-price spot`: as 2, offers priced at the spot price.
//! 4. `capacity-optimized spot`: as 2, offers ranked by placement score first, then price
//!    (`price × 100^(10 − score)`).
//! 5. `ours`: the shipped planner. Pools are scored every hour by the shipped ONNX model
//!    (`spot_engine::risk`, contract v1) with the hive-mind counts of interruptions seen in
//!    the last 24 h; pools interrupted in the last 30 minutes are flagged (`risk_flags`).
//!    Pending pods: `spot_engine::react::pending_pods` (the one planner, reaction budget).
//!    Interruption: `spot_engine::react::interruption` (`spot::select`, same capacity
//!    outside the interrupted pool) launches the replacement. Every 10 minutes an
//!    Optimize-Now pass: `plan::plan` on the cluster snapshot with the default policy
//!    (balanced, replace-and-move, disruption budget 10 % per wave, 10-minute stabilization
//!    window); wave 0 is executed (launches, deletions, evictions), later waves wait for
//!    the next pass, so the budget holds per 10 minutes.
//!
//! Reported per strategy: cost, savings vs on-demand, spot interruptions, pods disrupted
//! by interruptions and by consolidation (evictions by consolidation passes / plan waves)
//! separately, node launches, and p50/p99 of the in-process time of every decision
//! (provisioning, interruption reaction, consolidation pass or plan pass).
//!
//! Not modelled (for every strategy alike): node start-up latency (pods bind at once),
//! insufficient-capacity errors, DaemonSets, pod anti-affinity and zone spread, rebalance
//! recommendations. The Karpenter-style strategies are this file's model of Karpenter's
//! documented behaviour, not Karpenter itself.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::Instant;

use chrono::{DateTime, Datelike, Duration, Timelike};
use spot_cloud::sim::catalog::Catalog as SimCatalog;
use spot_cloud::sim::history::{export_range, placement_score, HISTORY_REGION};
use spot_cloud::sim::market::{interruption_probability, SIM_UTC_OFFSET_HOURS};
use spot_cloud::sim::SimClock;
use spot_cloud::{Architecture, InstanceCategory};
use spot_engine::catalog::{
    Arch, Catalog, InstanceType, Lifecycle, NodeOverhead, PoolKey, Resources, SpotPool,
};
use spot_engine::consolidate::Pdb;
use spot_engine::pack::{self, CapacityReq, NodeOffer, PackOptions, Pod};
use spot_engine::plan::{self, Market, PlanAction, PlanInput, PodMove, SnapNode, SnapPod};
use spot_engine::policy::ClusterPolicy;
use spot_engine::react;
use spot_engine::risk::{self, FamilyCategory, OnnxModel, PoolObservation, RiskModel, Runtime};
use spot_engine::spot::NodeTemplate;

/// The shipped risk model (contract v1): the bytes `spot-actors` embeds.
const SHIPPED_MODEL: &[u8] = include_bytes!("../../onnx/risk-v1.onnx");

const SEED: u64 = 42;
/// Hours of market history before the first simulated hour (the model's price window).
const WARMUP_H: usize = 24;
/// Simulation step and Karpenter's consolidation cadence, seconds.
const TICK: i64 = 10;
/// Workload (HPA) evaluation period, seconds.
const SCALE_EVERY: i64 = 300;
/// Our Optimize-Now cadence, seconds (`WEEK_PLAN_EVERY` overrides it).
const PLAN_EVERY: i64 = 600;
/// How long an interruption flags its pool (the hive mind's TTL), seconds.
const HIVE_TTL: i64 = 1800;
/// Karpenter: a node must be initialised before it is a consolidation candidate.
const KARPENTER_MIN_AGE: i64 = 60;
/// Karpenter's default disruption budget: 10 % of the nodes.
const KARPENTER_BUDGET: f64 = 0.10;
/// Sizes of the NodePool every strategy buys from.
const SIZES: [&str; 5] = ["large", "xlarge", "2xlarge", "4xlarge", "8xlarge"];

// ---------------------------------------------------------------------------------------
// Market

struct TypeInfo {
    it: InstanceType,
    alloc: Resources,
    category: FamilyCategory,
}

struct PoolSeries {
    ty: usize,
    az: String,
    price: Vec<f64>,
    capacity: Vec<f64>,
}

struct World {
    /// Unix seconds of hour 0 (the warm-up's first hour).
    start: i64,
    /// Simulated hours after the warm-up.
    hours: usize,
    types: Vec<TypeInfo>,
    type_of: HashMap<String, usize>,
    pools: Vec<PoolSeries>,
    pool_of: HashMap<(String, String), usize>,
    zones: Vec<String>,
    template: NodeTemplate,
    model: OnnxModel,
    pools_in_region: usize,
}

impl World {
    fn t0(&self) -> i64 {
        self.start + WARMUP_H as i64 * 3600
    }

    fn hour(&self, t: i64) -> usize {
        ((t - self.start) / 3600) as usize
    }

    fn score(&self, p: usize, h: usize) -> u8 {
        placement_score(self.pools[p].capacity[h])
    }

    fn od(&self, ty: usize) -> f64 {
        self.types[ty].it.on_demand_hourly
    }
}

fn load_world(hours: usize) -> World {
    let sim = SimCatalog::embedded();
    let mut families = BTreeSet::new();
    let mut other_sizes = BTreeSet::new();
    let mut types = Vec::new();
    for t in sim.types() {
        let size = t.name.split_once('.').map(|(_, s)| s).unwrap_or("");
        let in_pool = matches!(
            t.category,
            InstanceCategory::General | InstanceCategory::Compute | InstanceCategory::Memory
        ) && t.architecture == Architecture::X86_64
            && !t.burstable
            && t.gpus == 0
            && risk::features::family_generation(&t.family) >= 5.0
            && SIZES.contains(&size);
        if !SIZES.contains(&size) {
            other_sizes.insert(size.to_string());
        }
        if !in_pool {
            continue;
        }
        families.insert(t.family.clone());
        let it = InstanceType {
            name: t.name.clone(),
            family: t.family.clone(),
            vcpu: t.vcpu,
            memory_mib: t.memory_mib,
            gpus: 0,
            arch: Arch::X86_64,
            burstable: false,
            on_demand_hourly: t.on_demand_usd_per_hour,
        };
        let category = serde_json::to_value(t.category)
            .ok()
            .and_then(|v| serde_json::from_value::<FamilyCategory>(v).ok())
            .unwrap_or(FamilyCategory::Other);
        types.push(TypeInfo {
            alloc: NodeOverhead::default().allocatable(&it),
            it,
            category,
        });
    }
    types.sort_by(|a, b| a.it.name.cmp(&b.it.name));
    let type_of: HashMap<String, usize> = types
        .iter()
        .enumerate()
        .map(|(i, t)| (t.it.name.clone(), i))
        .collect();
    let template = NodeTemplate {
        allowed_families: families.into_iter().collect(),
        architectures: vec![Arch::X86_64],
        excluded_sizes: other_sizes.into_iter().collect(),
        ..NodeTemplate::default()
    };
    let days = hours.div_ceil(24) as i64;
    let start = SimClock::default_start() - Duration::days(days + 2);
    let end = start + Duration::hours((WARMUP_H + hours) as i64);
    let mut series: BTreeMap<(String, String), PoolSeries> = BTreeMap::new();
    let mut in_region = BTreeSet::new();
    for row in export_range(SEED, start, end) {
        in_region.insert((row.instance_type.clone(), row.az.clone()));
        let Some(&ty) = type_of.get(&row.instance_type) else {
            continue;
        };
        let e = series
            .entry((row.instance_type.clone(), row.az.clone()))
            .or_insert_with(|| PoolSeries {
                ty,
                az: row.az.clone(),
                price: Vec::new(),
                capacity: Vec::new(),
            });
        e.price.push(row.spot_price);
        e.capacity.push(row.capacity);
    }
    let pools: Vec<PoolSeries> = series
        .into_values()
        .filter(|p| p.price.len() == WARMUP_H + hours)
        .collect();
    let pool_of = pools
        .iter()
        .enumerate()
        .map(|(i, p)| ((types[p.ty].it.name.clone(), p.az.clone()), i))
        .collect();
    let zones: BTreeSet<String> = pools.iter().map(|p| p.az.clone()).collect();
    World {
        start: start.timestamp(),
        hours,
        types,
        type_of,
        pools,
        pool_of,
        zones: zones.into_iter().collect(),
        template,
        model: OnnxModel::from_bytes(SHIPPED_MODEL, Runtime::Tract).expect("shipped model loads"),
        pools_in_region: in_region.len(),
    }
}

/// Deterministic uniform draw in [0, 1) from (a, b, c).
fn draw(pool: usize, hour: usize, slot: usize) -> f64 {
    let mut x = (pool as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15)
        ^ (hour as u64).wrapping_mul(0xC2B2_AE3D_27D4_EB4F)
        ^ (slot as u64).wrapping_mul(0x1656_67B1_9E37_79F9)
        ^ SEED;
    x ^= x >> 33;
    x = x.wrapping_mul(0xff51_afd7_ed55_8ccd);
    x ^= x >> 33;
    x = x.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    x ^= x >> 33;
    (x >> 11) as f64 / (1u64 << 53) as f64
}

// ---------------------------------------------------------------------------------------
// Workload

#[derive(Clone, Copy)]
enum Load {
    Static,
    /// Trough at 04:00, peak at 16:00 local time; weekends at 60 %.
    Diurnal,
    /// Weekday nights from `from` to `to` (local hours): full at the start, finishing
    /// progressively.
    Nightly {
        from: f64,
        to: f64,
    },
}

struct Dep {
    name: &'static str,
    cpu: u64,
    mem: u64,
    min: u32,
    max: u32,
    load: Load,
    max_unavailable: Option<u32>,
}

struct ClusterSpec {
    name: &'static str,
    ns: &'static str,
    deps: Vec<Dep>,
}

fn dep(name: &'static str, cpu: u64, mem: u64, min: u32, max: u32, load: Load) -> Dep {
    Dep {
        name,
        cpu,
        mem,
        min,
        max,
        load,
        max_unavailable: None,
    }
}

fn clusters() -> Vec<ClusterSpec> {
    use Load::*;
    let pdb = |mut d: Dep, m: u32| {
        d.max_unavailable = Some(m);
        d
    };
    vec![
        ClusterSpec {
            name: "shop",
            ns: "shop",
            deps: vec![
                pdb(dep("web", 250, 512, 120, 600, Diurnal), 30),
                pdb(dep("api", 500, 1024, 80, 400, Diurnal), 20),
                dep("checkout", 1000, 2048, 20, 120, Diurnal),
                dep("search", 2000, 4096, 10, 60, Diurnal),
                dep("worker", 1000, 4096, 30, 150, Diurnal),
                pdb(dep("cache", 2000, 8192, 12, 12, Static), 1),
                dep("ingest", 500, 2048, 60, 60, Static),
            ],
        },
        ClusterSpec {
            name: "demo",
            ns: "demo",
            deps: vec![
                dep("web", 250, 512, 40, 80, Diurnal),
                dep("api", 500, 1024, 25, 50, Diurnal),
                dep("worker", 1000, 4096, 20, 20, Static),
                dep("cache", 2000, 8192, 6, 6, Static),
            ],
        },
        ClusterSpec {
            name: "batch",
            ns: "etl",
            deps: vec![
                dep("scheduler", 500, 1024, 8, 8, Static),
                dep(
                    "executor",
                    4000,
                    16384,
                    0,
                    48,
                    Nightly { from: 1.0, to: 5.0 },
                ),
                dep("reports", 1000, 2048, 0, 40, Nightly { from: 2.0, to: 4.0 }),
            ],
        },
    ]
}

/// Replicas the autoscaler recommends for `d` at `t`.
fn recommended(d: &Dep, key: usize, t: i64) -> u32 {
    let local = t + SIM_UTC_OFFSET_HOURS * 3600;
    let hour = local.rem_euclid(86_400) as f64 / 3600.0;
    let weekend = DateTime::from_timestamp(local, 0)
        .map(|d| d.weekday().num_days_from_monday() >= 5)
        .unwrap_or(false);
    let noise = (draw(0xD0D0 + key, t.div_euclid(SCALE_EVERY) as usize, 7) - 0.5) * 0.08;
    let level = match d.load {
        Load::Static => return d.max,
        Load::Diurnal => {
            let x = 0.5 - 0.5 * (std::f64::consts::TAU * (hour - 4.0) / 24.0).cos();
            let x = if weekend { 0.6 * x } else { x };
            (x + noise).clamp(0.0, 1.0)
        }
        Load::Nightly { from, to } => {
            if weekend || hour < from || hour >= to {
                0.0
            } else {
                1.0 - 0.8 * (hour - from) / (to - from)
            }
        }
    };
    d.min + ((d.max - d.min) as f64 * level).round() as u32
}

// ---------------------------------------------------------------------------------------
// Cluster state

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Strategy {
    OnDemand,
    Karpenter,
    LowestPrice,
    CapacityOptimized,
    Ours,
}

impl Strategy {
    fn name(self) -> &'static str {
        match self {
            Strategy::OnDemand => "all on-demand",
            Strategy::Karpenter => {
                "Karpenter-style (FFD, price-capacity-optimized, 10 s consolidation)"
            }
            Strategy::LowestPrice => "lowest-price spot",
            Strategy::CapacityOptimized => "capacity-optimized spot",
            Strategy::Ours => "ours (shipped planner + risk model)",
        }
    }
}

struct PodRec {
    id: String,
    dep: usize,
    req: Resources,
    node: Option<u64>,
}

struct NodeRec {
    ty: usize,
    pool: Option<usize>,
    lifecycle: Lifecycle,
    az: String,
    used: Resources,
    pods: BTreeSet<usize>,
    launched: i64,
    paid_until: i64,
}

impl NodeRec {
    fn fits(&self, alloc: &Resources, req: &Resources) -> bool {
        self.used.saturating_add(req).fits_in(alloc)
    }
}

struct ClusterSim {
    pods: Vec<PodRec>,
    /// Live pods per deployment, oldest first.
    dep_pods: Vec<Vec<usize>>,
    /// Last autoscaler recommendation per deployment (scale-down stabilisation).
    last_rec: Vec<u32>,
    next_seq: Vec<u64>,
    id_index: HashMap<String, usize>,
    nodes: BTreeMap<u64, NodeRec>,
    pending: Vec<usize>,
    dirty: bool,
    cost: f64,
}

fn sub(a: Resources, b: Resources) -> Resources {
    Resources {
        cpu_millis: a.cpu_millis.saturating_sub(b.cpu_millis),
        memory_mib: a.memory_mib.saturating_sub(b.memory_mib),
        gpus: a.gpus.saturating_sub(b.gpus),
        pods: a.pods.saturating_sub(b.pods),
    }
}

fn util(used: &Resources, alloc: &Resources) -> f64 {
    (used.cpu_millis as f64 / alloc.cpu_millis.max(1) as f64)
        .max(used.memory_mib as f64 / alloc.memory_mib.max(1) as f64)
}

fn node_name(id: u64) -> String {
    format!("node-{id:06}")
}

#[derive(Default)]
struct Stats {
    cost: f64,
    interruptions: usize,
    pods_interrupted: usize,
    pods_consolidated: usize,
    launches: usize,
    /// Every decision (ms).
    decide_ms: Vec<f64>,
    /// Consolidation passes (Karpenter-style) or plan passes (ours), ms.
    pass_ms: Vec<f64>,
    /// Provisioning and interruption reactions, ms.
    react_ms: Vec<f64>,
    errors: usize,
    peak_nodes: usize,
    node_seconds: f64,
    /// Requested / allocatable CPU over all nodes, sampled every 5 minutes.
    util_sum: f64,
    util_n: usize,
}

type OfferKey = (String, Lifecycle, String);

struct Sim<'w> {
    w: &'w World,
    specs: &'w [ClusterSpec],
    strat: Strategy,
    cl: Vec<ClusterSim>,
    next_node: u64,
    st: Stats,
    h: usize,
    /// Baselines: offers of the hour (hourly_price = what the strategy minimises) and
    /// key → (type, pool).
    offers: Vec<NodeOffer>,
    offer_meta: HashMap<OfferKey, (usize, Option<usize>)>,
    /// Ours: the scored market of the hour.
    market: Option<Market>,
    probs: Vec<f64>,
    /// Interruptions seen: (pool, time).
    seen: Vec<(usize, i64)>,
    plan_every: i64,
}

impl<'w> Sim<'w> {
    fn new(w: &'w World, specs: &'w [ClusterSpec], strat: Strategy) -> Self {
        let cl = specs
            .iter()
            .map(|s| ClusterSim {
                pods: Vec::new(),
                dep_pods: vec![Vec::new(); s.deps.len()],
                last_rec: vec![0; s.deps.len()],
                next_seq: vec![0; s.deps.len()],
                id_index: HashMap::new(),
                nodes: BTreeMap::new(),
                pending: Vec::new(),
                dirty: false,
                cost: 0.0,
            })
            .collect();
        Sim {
            w,
            specs,
            strat,
            cl,
            next_node: 0,
            st: Stats::default(),
            h: 0,
            offers: Vec::new(),
            offer_meta: HashMap::new(),
            market: None,
            probs: vec![0.0; w.pools.len()],
            seen: Vec::new(),
            plan_every: std::env::var("WEEK_PLAN_EVERY")
                .ok()
                .and_then(|v| v.parse::<i64>().ok())
                .filter(|&v| v >= TICK)
                .map_or(PLAN_EVERY, |v| v / TICK * TICK),
        }
    }

    fn price(&self, n: &NodeRec, h: usize) -> f64 {
        match n.pool {
            Some(p) => self.w.pools[p].price[h],
            None => self.w.od(n.ty),
        }
    }

    fn settle_all(&mut self, t: i64, h: usize) {
        for c in 0..self.cl.len() {
            let mut add = 0.0;
            let mut secs = 0.0;
            for n in self.cl[c].nodes.values() {
                let dt = (t - n.paid_until) as f64;
                add += self.price(n, h) * dt / 3600.0;
                secs += dt;
            }
            for n in self.cl[c].nodes.values_mut() {
                n.paid_until = t;
            }
            self.cl[c].cost += add;
            self.st.cost += add;
            self.st.node_seconds += secs;
        }
    }

    fn launch(&mut self, c: usize, ty: usize, pool: Option<usize>, az: &str, t: i64) -> u64 {
        let id = self.next_node;
        self.next_node += 1;
        self.st.launches += 1;
        let cl = &mut self.cl[c];
        cl.nodes.insert(
            id,
            NodeRec {
                ty,
                pool,
                lifecycle: if pool.is_some() {
                    Lifecycle::Spot
                } else {
                    Lifecycle::OnDemand
                },
                az: az.to_string(),
                used: Resources::default(),
                pods: BTreeSet::new(),
                launched: t,
                paid_until: t,
            },
        );
        cl.dirty = true;
        let total: usize = self.cl.iter().map(|c| c.nodes.len()).sum();
        self.st.peak_nodes = self.st.peak_nodes.max(total);
        id
    }

    /// Removes a node, billing it up to `t`; returns its pods (unbound).
    fn remove_node(&mut self, c: usize, id: u64, t: i64) -> Vec<usize> {
        let Some(n) = self.cl[c].nodes.remove(&id) else {
            return Vec::new();
        };
        let dt = (t - n.paid_until) as f64;
        let add = self.price(&n, self.h) * dt / 3600.0;
        self.st.node_seconds += dt;
        let cl = &mut self.cl[c];
        cl.cost += add;
        self.st.cost += add;
        cl.dirty = true;
        for &p in &n.pods {
            cl.pods[p].node = None;
        }
        n.pods.into_iter().collect()
    }

    fn bind(&mut self, c: usize, p: usize, id: u64) -> bool {
        let alloc = match self.cl[c].nodes.get(&id) {
            Some(n) => self.w.types[n.ty].alloc,
            None => return false,
        };
        let cl = &mut self.cl[c];
        let req = cl.pods[p].req;
        if let Some(old) = cl.pods[p].node {
            if old == id {
                return true;
            }
        }
        let Some(n) = cl.nodes.get_mut(&id) else {
            return false;
        };
        if !n.fits(&alloc, &req) {
            return false;
        }
        n.used = n.used.saturating_add(&req);
        n.pods.insert(p);
        if let Some(old) = cl.pods[p].node.replace(id) {
            if let Some(o) = cl.nodes.get_mut(&old) {
                o.used = sub(o.used, req);
                o.pods.remove(&p);
            }
        }
        cl.dirty = true;
        true
    }

    /// kube-scheduler (LeastAllocated): binds each pod to the feasible node with the most
    /// free room; returns the pods nothing could take.
    fn schedule(&mut self, c: usize, pods: &[usize]) -> Vec<usize> {
        let mut left = Vec::new();
        for &p in pods {
            let req = self.cl[c].pods[p].req;
            let mut best: Option<(f64, u64)> = None;
            for (&id, n) in &self.cl[c].nodes {
                let a = &self.w.types[n.ty].alloc;
                if !n.fits(a, &req) {
                    continue;
                }
                let free = ((a.cpu_millis - n.used.cpu_millis - req.cpu_millis) as f64
                    / a.cpu_millis as f64
                    + (a.memory_mib - n.used.memory_mib - req.memory_mib) as f64
                        / a.memory_mib as f64)
                    / 2.0;
                if best.is_none_or(|(b, _)| free > b) {
                    best = Some((free, id));
                }
            }
            match best {
                Some((_, id)) if self.bind(c, p, id) => {}
                _ => left.push(p),
            }
        }
        left
    }

    // -- market ---------------------------------------------------------------------------

    fn set_hour(&mut self, h: usize, t: i64) {
        self.h = h;
        let w = self.w;
        if self.strat == Strategy::Ours {
            let now = DateTime::from_timestamp(t, 0).unwrap_or_default();
            let mut obs = Vec::with_capacity(w.pools.len());
            for (k, p) in w.pools.iter().enumerate() {
                let ti = &w.types[p.ty];
                obs.push(PoolObservation {
                    instance_type: ti.it.name.clone(),
                    category: ti.category,
                    vcpu: ti.it.vcpu,
                    az: p.az.clone(),
                    spot_prices: p.price[h + 1 - 24..=h].to_vec(),
                    on_demand_price: ti.it.on_demand_hourly,
                    placement_score: Some(w.score(k, h)),
                    hour_utc: now.hour() as u8,
                    weekday: now.weekday().num_days_from_monday() as u8,
                    hive_flags_24h: self
                        .seen
                        .iter()
                        .filter(|(sp, st)| *sp == k && t - st <= 24 * 3600)
                        .count() as u32,
                });
            }
            let feats = risk::extract_batch(&obs).expect("features");
            let scores = w.model.score(&feats).expect("scores");
            self.probs = scores.into_iter().map(|s| s.probability).collect();
            let pools: Vec<SpotPool> = w
                .pools
                .iter()
                .enumerate()
                .map(|(k, p)| SpotPool {
                    instance_type: w.types[p.ty].it.name.clone(),
                    az: p.az.clone(),
                    spot_price: p.price[h],
                    interruption_probability: self.probs[k],
                })
                .collect();
            let catalog = Catalog::with_zones(
                w.types.iter().map(|t| t.it.clone()).collect(),
                pools,
                w.zones.clone(),
            )
            .expect("catalog");
            self.market = Some(Market {
                catalog,
                risk_flags: BTreeSet::new(),
                max_pods: BTreeMap::new(),
                overhead: NodeOverhead::default(),
            });
            return;
        }
        self.offers.clear();
        self.offer_meta.clear();
        let spot = self.strat != Strategy::OnDemand;
        if spot {
            for (k, p) in w.pools.iter().enumerate() {
                let ti = &w.types[p.ty];
                let price = p.price[h];
                let score = f64::from(w.score(k, h));
                let eff = match self.strat {
                    Strategy::Karpenter => price * 10.0 / score,
                    Strategy::LowestPrice => price,
                    Strategy::CapacityOptimized => price * 100f64.powf(10.0 - score),
                    _ => price,
                };
                self.offers.push(NodeOffer {
                    instance_type: ti.it.name.clone(),
                    lifecycle: Lifecycle::Spot,
                    az: p.az.clone(),
                    hourly_price: eff,
                    arch: Arch::X86_64,
                    allocatable: ti.alloc,
                });
                self.offer_meta.insert(
                    (ti.it.name.clone(), Lifecycle::Spot, p.az.clone()),
                    (p.ty, Some(k)),
                );
            }
        }
        for (i, ti) in w.types.iter().enumerate() {
            for az in &w.zones {
                self.offers.push(NodeOffer {
                    instance_type: ti.it.name.clone(),
                    lifecycle: Lifecycle::OnDemand,
                    az: az.clone(),
                    // A spot strategy buys on-demand only when no spot offer fits.
                    hourly_price: ti.it.on_demand_hourly * if spot { 1e12 } else { 1.0 },
                    arch: Arch::X86_64,
                    allocatable: ti.alloc,
                });
                self.offer_meta.insert(
                    (ti.it.name.clone(), Lifecycle::OnDemand, az.clone()),
                    (i, None),
                );
            }
        }
    }

    /// Ours: the hour's market with the pools interrupted in the last 30 minutes flagged.
    fn market_now(&self, t: i64) -> Market {
        let mut m = self.market.clone().expect("market");
        m.risk_flags = self
            .seen
            .iter()
            .filter(|(_, st)| t - st < HIVE_TTL)
            .map(|(p, _)| {
                let ps = &self.w.pools[*p];
                PoolKey::new(&self.w.types[ps.ty].it.name, &ps.az)
            })
            .collect();
        m
    }

    fn real_price(&self, ty: usize, pool: Option<usize>) -> f64 {
        match pool {
            Some(p) => self.w.pools[p].price[self.h],
            None => self.w.od(ty),
        }
    }

    fn record(&mut self, ms: f64, pass: bool) {
        self.st.decide_ms.push(ms);
        if pass {
            self.st.pass_ms.push(ms);
        } else {
            self.st.react_ms.push(ms);
        }
    }

    // -- workload -------------------------------------------------------------------------

    fn workload_step(&mut self, c: usize, t: i64) {
        let spec = &self.specs[c];
        let mut created = Vec::new();
        for (d, dp) in spec.deps.iter().enumerate() {
            let rec = recommended(dp, c * 100 + d, t);
            let current = self.cl[c].dep_pods[d].len() as u32;
            let prev = std::mem::replace(&mut self.cl[c].last_rec[d], rec);
            // Scale-down stabilisation: the highest recommendation of the last 5 minutes.
            let target = if rec >= current {
                rec
            } else {
                rec.max(prev).min(current)
            };
            if target < current {
                for _ in target..current {
                    let Some(p) = self.cl[c].dep_pods[d].pop() else {
                        break;
                    };
                    let cl = &mut self.cl[c];
                    let req = cl.pods[p].req;
                    if let Some(id) = cl.pods[p].node.take() {
                        if let Some(n) = cl.nodes.get_mut(&id) {
                            n.used = sub(n.used, req);
                            n.pods.remove(&p);
                        }
                    } else {
                        cl.pending.retain(|&q| q != p);
                    }
                    let id = cl.pods[p].id.clone();
                    cl.id_index.remove(&id);
                    cl.dirty = true;
                }
            } else {
                for _ in current..target {
                    let cl = &mut self.cl[c];
                    let seq = cl.next_seq[d];
                    cl.next_seq[d] += 1;
                    let id = format!("{}/{}-{seq}", spec.ns, dp.name);
                    let p = cl.pods.len();
                    cl.pods.push(PodRec {
                        id: id.clone(),
                        dep: d,
                        req: Resources {
                            cpu_millis: dp.cpu,
                            memory_mib: dp.mem,
                            gpus: 0,
                            pods: 1,
                        },
                        node: None,
                    });
                    cl.id_index.insert(id, p);
                    cl.dep_pods[d].push(p);
                    created.push(p);
                }
            }
        }
        let left = self.schedule(c, &created);
        self.cl[c].pending.extend(left);
    }

    // -- provisioning -----------------------------------------------------------------------

    fn provision(&mut self, c: usize, t: i64) {
        let pending = std::mem::take(&mut self.cl[c].pending);
        if pending.is_empty() {
            return;
        }
        let pods: Vec<Pod> = pending
            .iter()
            .map(|&p| {
                let r = &self.cl[c].pods[p];
                Pod {
                    id: r.id.clone(),
                    cpu_millis: r.req.cpu_millis,
                    memory_mib: r.req.memory_mib,
                    gpus: 0,
                    capacity: CapacityReq::Any,
                    arch: None,
                    anti_affinity_group: None,
                    az_spread_group: None,
                }
            })
            .collect();
        // (type, pool, az, pod ids) per node to launch.
        let mut launches: Vec<(usize, Option<usize>, String, Vec<String>)> = Vec::new();
        let started = Instant::now();
        if self.strat == Strategy::Ours {
            let market = self.market_now(t);
            match react::pending_pods(&market, &self.w.template, &pods, t) {
                Ok(l) => {
                    for n in l.nodes {
                        let ty = self.w.type_of[&n.instance_type];
                        let pool = (n.lifecycle == Lifecycle::Spot)
                            .then(|| self.w.pool_of[&(n.instance_type.clone(), n.az.clone())]);
                        launches.push((ty, pool, n.az, n.pods));
                    }
                }
                Err(_) => self.st.errors += 1,
            }
        } else {
            let opts = PackOptions {
                ffd_only: true,
                ..PackOptions::default()
            };
            match pack::pack(&pods, &self.offers, &opts) {
                Ok(plan) => {
                    for n in plan.nodes {
                        let key = (n.instance_type.clone(), n.lifecycle, n.az.clone());
                        let (ty, pool) = self.offer_meta[&key];
                        launches.push((ty, pool, n.az, n.pods));
                    }
                }
                Err(_) => self.st.errors += 1,
            }
        }
        self.record(started.elapsed().as_secs_f64() * 1e3, false);
        let mut left = Vec::new();
        for (ty, pool, az, ids) in launches {
            let id = self.launch(c, ty, pool, &az, t);
            for pid in ids {
                let Some(&p) = self.cl[c].id_index.get(&pid) else {
                    continue;
                };
                if !self.bind(c, p, id) {
                    left.push(p);
                }
            }
        }
        let placed: BTreeSet<usize> = pending
            .iter()
            .copied()
            .filter(|&p| self.cl[c].pods[p].node.is_some())
            .collect();
        left.extend(pending.iter().copied().filter(|p| !placed.contains(p)));
        left.sort_unstable();
        left.dedup();
        if !left.is_empty() {
            self.st.errors += 1;
        }
        self.cl[c].pending = left;
    }

    // -- interruptions ------------------------------------------------------------------------

    /// Draws the interruptions of hour `h` (ended at `t`): (cluster, node, pool).
    fn draw_interruptions(&self, h: usize, t: i64) -> Vec<(usize, u64, usize)> {
        let mut by_pool: BTreeMap<usize, Vec<(u64, usize)>> = BTreeMap::new();
        for (c, cl) in self.cl.iter().enumerate() {
            for (&id, n) in &cl.nodes {
                if let Some(p) = n.pool {
                    by_pool.entry(p).or_default().push((id, c));
                }
            }
        }
        let mut out = Vec::new();
        let hour0 = t - 3600;
        for (p, mut v) in by_pool {
            v.sort_unstable();
            let cap = self.w.pools[p].capacity[h];
            for (slot, (id, c)) in v.into_iter().enumerate() {
                let n = &self.cl[c].nodes[&id];
                let exposure = (t - n.launched.max(hour0)) as f64 / 3600.0;
                if draw(p, h - WARMUP_H, slot) < interruption_probability(cap, exposure) {
                    out.push((c, id, p));
                }
            }
        }
        out
    }

    fn interrupt(&mut self, c: usize, id: u64, t: i64) {
        let (ty, az) = {
            let n = &self.cl[c].nodes[&id];
            (n.ty, n.az.clone())
        };
        if std::env::var("WEEK_DEBUG").is_ok() {
            let n = &self.cl[c].nodes[&id];
            let p = n.pool.unwrap_or(0);
            let hl = self.w.hour(n.launched);
            eprintln!(
                "INT {:?} t+{}h c{c} {} {} age {:.1}h cap@launch {:.2} cap {:.2} score {} p {:.3} pods {}",
                self.strat,
                (t - self.w.t0()) / 3600,
                self.w.types[ty].it.name,
                az,
                (t - n.launched) as f64 / 3600.0,
                self.w.pools[p].capacity[hl],
                self.w.pools[p].capacity[self.h - 1],
                self.w.score(p, self.h - 1),
                self.probs[p],
                n.pods.len()
            );
        }
        let mut displaced = self.remove_node(c, id, t);
        self.st.interruptions += 1;
        self.st.pods_interrupted += displaced.len();
        displaced.sort_by_key(|&p| std::cmp::Reverse(self.cl[c].pods[p].req.cpu_millis));
        if self.strat == Strategy::Ours {
            let market = self.market_now(t);
            let started = Instant::now();
            let r = react::interruption(&market, &self.w.template, &self.w.types[ty].it.name, &az);
            self.record(started.elapsed().as_secs_f64() * 1e3, false);
            match r {
                Ok(n) if !displaced.is_empty() => {
                    let nty = self.w.type_of[&n.instance_type];
                    let pool = (n.lifecycle == Lifecycle::Spot)
                        .then(|| self.w.pool_of[&(n.instance_type.clone(), n.az.clone())]);
                    let nid = self.launch(c, nty, pool, &n.az, t);
                    displaced.retain(|&p| !self.bind(c, p, nid));
                }
                Ok(_) => {}
                Err(_) => self.st.errors += 1,
            }
        }
        let left = self.schedule(c, &displaced);
        self.cl[c].pending.extend(left);
    }

    // -- Karpenter-style consolidation ---------------------------------------------------------

    fn pdb_ok(&self, c: usize, id: u64, used: &[u32]) -> bool {
        let mut need = vec![0u32; used.len()];
        for &p in &self.cl[c].nodes[&id].pods {
            need[self.cl[c].pods[p].dep] += 1;
        }
        self.specs[c].deps.iter().enumerate().all(|(d, dp)| {
            dp.max_unavailable
                .is_none_or(|m| need[d] == 0 || used[d] + need[d] <= m)
        })
    }

    fn use_pdb(&self, c: usize, id: u64, used: &mut [u32]) {
        for &p in &self.cl[c].nodes[&id].pods {
            used[self.cl[c].pods[p].dep] += 1;
        }
    }

    /// One consolidation pass; true when it changed something.
    fn karpenter_pass(&mut self, c: usize, t: i64) -> bool {
        let started = Instant::now();
        let n_nodes = self.cl[c].nodes.len();
        if n_nodes == 0 {
            return false;
        }
        let mut budget = ((n_nodes as f64) * KARPENTER_BUDGET).ceil() as usize;
        let mut gone: BTreeSet<u64> = BTreeSet::new();
        let mut touched: BTreeSet<u64> = BTreeSet::new();
        let mut pdb_used = vec![0u32; self.specs[c].deps.len()];
        let cands: Vec<u64> = self.cl[c]
            .nodes
            .iter()
            .filter(|(_, n)| t - n.launched >= KARPENTER_MIN_AGE)
            .map(|(&id, _)| id)
            .collect();
        // Plan first (on the snapshot), then execute.
        let mut deletes: Vec<u64> = Vec::new();
        let mut drains: Vec<(u64, Vec<(usize, u64)>)> = Vec::new();
        for &id in &cands {
            if budget == 0 {
                break;
            }
            if self.cl[c].nodes[&id].pods.is_empty() {
                deletes.push(id);
                gone.insert(id);
                budget -= 1;
            }
        }
        let mut order: Vec<(usize, f64, u64)> = cands
            .iter()
            .filter(|id| !gone.contains(id))
            .map(|&id| {
                let n = &self.cl[c].nodes[&id];
                (n.pods.len(), util(&n.used, &self.w.types[n.ty].alloc), id)
            })
            .collect();
        order.sort_by(|a, b| a.0.cmp(&b.0).then(a.1.total_cmp(&b.1)).then(a.2.cmp(&b.2)));
        // Overlay of pods moved this pass: receivers are not candidates any more.
        let mut overlay: BTreeMap<u64, Resources> = BTreeMap::new();
        for &(_, _, id) in &order {
            if budget == 0 {
                break;
            }
            if touched.contains(&id) || !self.pdb_ok(c, id, &pdb_used) {
                continue;
            }
            let mut ex = gone.clone();
            ex.insert(id);
            // Receivers see the pods already moved onto them in this pass.
            let Some(moves) = self.try_drain(c, id, &ex, &overlay) else {
                continue;
            };
            self.use_pdb(c, id, &mut pdb_used);
            for &(p, dst) in &moves {
                let e = overlay.entry(dst).or_default();
                *e = e.saturating_add(&self.cl[c].pods[p].req);
                touched.insert(dst);
            }
            gone.insert(id);
            drains.push((id, moves));
            budget -= 1;
        }
        // Replace on-demand nodes by a cheaper node (spot-to-spot is off by default).
        let mut replaces: Vec<(u64, usize, Option<usize>, String)> = Vec::new();
        for &(_, _, id) in &order {
            if budget == 0 {
                break;
            }
            let n = &self.cl[c].nodes[&id];
            if gone.contains(&id)
                || touched.contains(&id)
                || n.lifecycle != Lifecycle::OnDemand
                || n.pods.is_empty()
                || !self.pdb_ok(c, id, &pdb_used)
            {
                continue;
            }
            // What FFD buys for these pods alone: the offer (strategy's price) that holds
            // them all on one node.
            let Some(best) = self
                .offers
                .iter()
                .filter(|o| n.used.fits_in(&o.allocatable))
                .min_by(|a, b| a.hourly_price.total_cmp(&b.hourly_price))
            else {
                continue;
            };
            let (ty, pool) =
                self.offer_meta[&(best.instance_type.clone(), best.lifecycle, best.az.clone())];
            if self.real_price(ty, pool) < self.real_price(n.ty, None) - 1e-9 {
                self.use_pdb(c, id, &mut pdb_used);
                gone.insert(id);
                replaces.push((id, ty, pool, best.az.clone()));
                budget -= 1;
            }
        }
        self.record(started.elapsed().as_secs_f64() * 1e3, true);
        let acted = !(deletes.is_empty() && drains.is_empty() && replaces.is_empty());
        for id in deletes {
            self.remove_node(c, id, t);
        }
        for (id, moves) in drains {
            self.st.pods_consolidated += moves.len();
            for (p, dst) in moves {
                if !self.bind(c, p, dst) {
                    self.cl[c].pending.push(p);
                }
            }
            let rest = self.remove_node(c, id, t);
            let left = self.schedule(c, &rest);
            self.cl[c].pending.extend(left);
        }
        for (id, ty, pool, az) in replaces {
            let nid = self.launch(c, ty, pool, &az, t);
            let pods: Vec<usize> = self.cl[c].nodes[&id].pods.iter().copied().collect();
            self.st.pods_consolidated += pods.len();
            for p in pods {
                if !self.bind(c, p, nid) {
                    self.cl[c].pending.push(p);
                }
            }
            let rest = self.remove_node(c, id, t);
            let left = self.schedule(c, &rest);
            self.cl[c].pending.extend(left);
        }
        acted
    }

    /// Where `id`'s pods would go on the other nodes (fullest first, counting the pods
    /// this pass already moved there), if they all fit.
    fn try_drain(
        &self,
        c: usize,
        id: u64,
        gone: &BTreeSet<u64>,
        overlay: &BTreeMap<u64, Resources>,
    ) -> Option<Vec<(usize, u64)>> {
        let cl = &self.cl[c];
        let mut pods: Vec<usize> = cl.nodes[&id].pods.iter().copied().collect();
        pods.sort_by_key(|&p| {
            (
                std::cmp::Reverse(cl.pods[p].req.cpu_millis),
                std::cmp::Reverse(cl.pods[p].req.memory_mib),
                p,
            )
        });
        let mut recv: Vec<(f64, u64, Resources, Resources)> = cl
            .nodes
            .iter()
            .filter(|(nid, _)| **nid != id && !gone.contains(nid))
            .map(|(&nid, n)| {
                let a = self.w.types[n.ty].alloc;
                let used = overlay
                    .get(&nid)
                    .map_or(n.used, |o| n.used.saturating_add(o));
                (util(&used, &a), nid, used, a)
            })
            .collect();
        recv.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
        let mut moves = Vec::new();
        for p in pods {
            let req = cl.pods[p].req;
            let slot = recv
                .iter_mut()
                .find(|r| r.2.saturating_add(&req).fits_in(&r.3))?;
            slot.2 = slot.2.saturating_add(&req);
            moves.push((p, slot.1));
        }
        Some(moves)
    }

    // -- ours: Optimize-Now passes ----------------------------------------------------------

    fn plan_input(&self, c: usize, t: i64) -> PlanInput {
        let spec = &self.specs[c];
        let cl = &self.cl[c];
        let w = self.w;
        let snap_pod = |p: usize| {
            let r = &cl.pods[p];
            let dp = &spec.deps[r.dep];
            let (ns, name) = r.id.split_once('/').unwrap_or((spec.ns, r.id.as_str()));
            let mut labels = BTreeMap::new();
            labels.insert("app".to_string(), dp.name.to_string());
            SnapPod {
                name: name.to_string(),
                namespace: ns.to_string(),
                labels,
                owner: Some(format!("Deployment/{}", dp.name)),
                priority: 0,
                cpu_millis: r.req.cpu_millis,
                memory_mib: r.req.memory_mib,
                gpus: 0,
                capacity: CapacityReq::Any,
                arch: None,
                anti_affinity_group: None,
                az_spread_group: None,
                pdb: dp.max_unavailable.map(|_| dp.name.to_string()),
                do_not_disrupt: false,
                daemonset: false,
            }
        };
        let nodes: Vec<SnapNode> = cl
            .nodes
            .iter()
            .map(|(&id, n)| SnapNode {
                name: node_name(id),
                instance_type: w.types[n.ty].it.name.clone(),
                lifecycle: n.lifecycle,
                az: n.az.clone(),
                arch: Arch::X86_64,
                hourly_price: self.real_price(n.ty, n.pool),
                allocatable: w.types[n.ty].alloc,
                created_at: n.launched,
                interruption_probability: n.pool.map_or(0.0, |p| self.probs[p]),
                labels: BTreeMap::new(),
                taints: Vec::new(),
                unmanaged: false,
                do_not_disrupt: false,
                cordoned: false,
                ready: true,
                pinned: None,
                pods: n.pods.iter().map(|&p| snap_pod(p)).collect(),
            })
            .collect();
        let pdbs: Vec<Pdb> = spec
            .deps
            .iter()
            .enumerate()
            .filter_map(|(d, dp)| {
                let m = dp.max_unavailable?;
                let replicas = cl.dep_pods[d].len() as u32;
                let healthy = cl.dep_pods[d]
                    .iter()
                    .filter(|&&p| cl.pods[p].node.is_some())
                    .count() as u32;
                Some(Pdb {
                    namespace: spec.ns.to_string(),
                    name: dp.name.to_string(),
                    min_available: None,
                    max_unavailable: Some(m),
                    current_healthy: healthy,
                    expected_pods: replicas,
                })
            })
            .collect();
        let pending: Vec<SnapPod> = cl.pending.iter().map(|&p| snap_pod(p)).collect();
        PlanInput {
            nodes,
            pending,
            pdbs,
            policy: ClusterPolicy {
                template: w.template.clone(),
                ..ClusterPolicy::default()
            },
            market: self.market_now(t),
            now: t,
            pack_options: None,
        }
    }

    fn ours_pass(&mut self, c: usize, t: i64) {
        if self.cl[c].nodes.is_empty() {
            return;
        }
        let input = self.plan_input(c, t);
        let started = Instant::now();
        let planned = plan::plan(&input);
        self.record(started.elapsed().as_secs_f64() * 1e3, true);
        let planned = match planned {
            Ok(p) => p,
            Err(_) => {
                self.st.errors += 1;
                return;
            }
        };
        let Some(w0) = planned.waves.iter().find(|w| w.index == 0) else {
            return;
        };
        if std::env::var("WEEK_DEBUG").is_ok() {
            let mut k = [0usize; 4];
            let mut mv = [0usize; 2];
            for a in &w0.actions {
                match a {
                    PlanAction::Launch { .. } => k[0] += 1,
                    PlanAction::DeleteEmpty { .. } => k[1] += 1,
                    PlanAction::Drain { moves, .. } => {
                        k[2] += 1;
                        mv[0] += moves.len()
                    }
                    PlanAction::Replace { moves, .. } => {
                        k[3] += 1;
                        mv[1] += moves.len()
                    }
                }
            }
            if k.iter().sum::<usize>() > 0 {
                eprintln!(
                    "t+{:>6}s c{c} {:?} nodes {} waves {} launch {} del {} drain {} ({} pods) replace {} ({} pods) saving {:.3}/h",
                    t - self.w.t0(),
                    planned.strategy,
                    self.cl[c].nodes.len(),
                    planned.waves.len(),
                    k[0], k[1], k[2], mv[0], k[3], mv[1],
                    planned.costs.saving_hourly
                );
            }
        }
        let mut new_ids: HashMap<String, u64> = HashMap::new();
        for a in &w0.actions {
            if let PlanAction::Launch {
                node,
                instance_type,
                lifecycle,
                az,
                ..
            } = a
            {
                let ty = self.w.type_of[instance_type];
                let pool = (*lifecycle == Lifecycle::Spot)
                    .then(|| self.w.pool_of[&(instance_type.clone(), az.clone())]);
                let id = self.launch(c, ty, pool, az, t);
                new_ids.insert(node.clone(), id);
            }
        }
        let resolve = |name: &str| -> Option<u64> {
            new_ids
                .get(name)
                .copied()
                .or_else(|| name.strip_prefix("node-").and_then(|s| s.parse().ok()))
        };
        for a in &w0.actions {
            let (node, moves) = match a {
                PlanAction::Launch { .. } => continue,
                PlanAction::DeleteEmpty { node, .. } => (node, &[] as &[PodMove]),
                PlanAction::Drain { node, moves, .. } | PlanAction::Replace { node, moves, .. } => {
                    (node, &moves[..])
                }
            };
            let Some(id) = resolve(node) else {
                self.st.errors += 1;
                continue;
            };
            self.st.pods_consolidated += moves.len();
            for m in moves {
                let (Some(&p), Some(dst)) = (self.cl[c].id_index.get(&m.pod), resolve(&m.to))
                else {
                    self.st.errors += 1;
                    continue;
                };
                if !self.bind(c, p, dst) {
                    self.st.errors += 1;
                }
            }
            let rest = self.remove_node(c, id, t);
            let left = self.schedule(c, &rest);
            self.cl[c].pending.extend(left);
        }
        for pr in &planned.pending {
            if pr.wave != Some(0) {
                continue;
            }
            let (Some(&p), Some(dst)) = (
                self.cl[c].id_index.get(&pr.pod),
                pr.node.as_deref().and_then(resolve),
            ) else {
                continue;
            };
            if self.bind(c, p, dst) {
                self.cl[c].pending.retain(|&q| q != p);
            }
        }
    }

    // -- main loop ----------------------------------------------------------------------------

    fn run(mut self) -> (Stats, Vec<f64>) {
        let w = self.w;
        let t0 = w.t0();
        let t_end = t0 + w.hours as i64 * 3600;
        self.set_hour(w.hour(t0), t0);
        let mut t = t0;
        while t < t_end {
            if t > t0 && (t - w.start) % 3600 == 0 {
                let h = w.hour(t);
                self.settle_all(t, h - 1);
                let victims = self.draw_interruptions(h - 1, t);
                for &(_, _, p) in &victims {
                    self.seen.push((p, t));
                }
                self.set_hour(h, t);
                for (c, id, _) in victims {
                    self.interrupt(c, id, t);
                }
            }
            if (t - t0) % SCALE_EVERY == 0 {
                for c in 0..self.cl.len() {
                    self.workload_step(c, t);
                }
            }
            for c in 0..self.cl.len() {
                self.provision(c, t);
            }
            if self.strat == Strategy::Ours {
                if t > t0 && (t - t0) % self.plan_every == 0 {
                    for c in 0..self.cl.len() {
                        self.ours_pass(c, t);
                        self.provision(c, t);
                    }
                }
            } else {
                for c in 0..self.cl.len() {
                    if self.cl[c].dirty {
                        let acted = self.karpenter_pass(c, t);
                        self.cl[c].dirty = acted;
                        self.provision(c, t);
                    }
                }
            }
            if (t - t0) % SCALE_EVERY == 0 {
                let (mut used, mut alloc) = (0u64, 0u64);
                for cl in &self.cl {
                    for n in cl.nodes.values() {
                        used += n.used.cpu_millis;
                        alloc += w.types[n.ty].alloc.cpu_millis;
                    }
                }
                if alloc > 0 {
                    self.st.util_sum += used as f64 / alloc as f64;
                    self.st.util_n += 1;
                }
            }
            t += TICK;
        }
        let h_last = w.hour(t_end - 1);
        self.settle_all(t_end, h_last);
        let per_cluster = self.cl.iter().map(|c| c.cost).collect();
        (self.st, per_cluster)
    }
}

// ---------------------------------------------------------------------------------------
// Report

fn pct(v: &[f64], q: f64) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    let i = ((q * s.len() as f64).ceil() as usize).clamp(1, s.len()) - 1;
    s[i]
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick")
        || std::env::var("WEEK_QUICK").is_ok_and(|v| !v.is_empty() && v != "0");
    let weeks: usize = std::env::var("WEEK_WEEKS")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|&w| w > 0)
        .unwrap_or(1);
    let hours = if quick { 24 } else { weeks * 168 };
    let wall = Instant::now();
    let world = load_world(hours);
    let specs = clusters();
    let span = if quick {
        "1 simulated day (--quick)".to_string()
    } else if weeks == 1 {
        "1 simulated week".to_string()
    } else {
        format!("{weeks} consecutive simulated weeks")
    };
    println!(
        "{span}, {} clusters; sim market of {HISTORY_REGION}, seed {SEED}; NodePool: {} types, {} spot pools (of {} in the region)",
        specs.len(),
        world.types.len(),
        world.pools.len(),
        world.pools_in_region
    );
    for s in &specs {
        let peak: u32 = s.deps.iter().map(|d| d.max).sum();
        let low: u32 = s.deps.iter().map(|d| d.min).sum();
        println!(
            "  cluster {:<6} {} deployments, {low}–{peak} pods",
            s.name,
            s.deps.len()
        );
    }
    let strategies = [
        Strategy::OnDemand,
        Strategy::Karpenter,
        Strategy::LowestPrice,
        Strategy::CapacityOptimized,
        Strategy::Ours,
    ];
    let mut results: Vec<(Strategy, Stats, Vec<f64>, f64)> = Vec::new();
    for s in strategies {
        let started = Instant::now();
        let (st, per) = Sim::new(&world, &specs, s).run();
        let secs = started.elapsed().as_secs_f64();
        eprintln!("  {:<40} simulated in {secs:.1} s", s.name());
        results.push((s, st, per, secs));
    }
    let per_week = 168.0 / hours as f64;
    let od_cost = results[0].1.cost;
    let get = |s: Strategy| &results.iter().find(|r| r.0 == s).expect("ran").1;
    println!();
    println!(
        "| strategy | cost / week | savings vs on-demand | spot interruptions | pods disrupted by interruption | pods disrupted by consolidation | node launches | planning p50 / p99 |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    for (s, st, _, _) in &results {
        println!(
            "| {} | ${:.2} | {} | {} | {} | {} | {} | {:.2} / {:.1} ms |",
            s.name(),
            st.cost * per_week,
            if *s == Strategy::OnDemand {
                "—".to_string()
            } else {
                format!("{:.1} %", 100.0 * (1.0 - st.cost / od_cost))
            },
            st.interruptions,
            st.pods_interrupted,
            st.pods_consolidated,
            st.launches,
            pct(&st.decide_ms, 0.5),
            pct(&st.decide_ms, 0.99),
        );
    }
    println!();
    println!("Per cluster (cost / week) and details:");
    print!("| strategy |");
    for s in &specs {
        print!(" {} |", s.name);
    }
    println!(" CPU requested / allocatable | peak nodes | node-hours / week | decisions (provision+react / passes) | pass p50 / p99 | errors | sim time |");
    print!("|---|");
    for _ in &specs {
        print!("---|");
    }
    println!("---|---|---|---|---|---|---|");
    for (s, st, per, secs) in &results {
        print!("| {} |", s.name());
        for c in per {
            print!(" ${:.2} |", c * per_week);
        }
        println!(
            " {:.0} % | {} | {:.0} | {} / {} | {:.2} / {:.1} ms | {} | {:.1} s |",
            100.0 * st.util_sum / st.util_n.max(1) as f64,
            st.peak_nodes,
            st.node_seconds / 3600.0 * per_week,
            st.react_ms.len(),
            st.pass_ms.len(),
            pct(&st.pass_ms, 0.5),
            pct(&st.pass_ms, 0.99),
            st.errors,
            secs
        );
    }
    let base = get(Strategy::Karpenter);
    let ours = get(Strategy::Ours);
    let capo = get(Strategy::CapacityOptimized);
    let ratio = |a: f64, b: f64| {
        if b > 0.0 {
            format!("{:.2}×", a / b)
        } else if a > 0.0 {
            "∞".to_string()
        } else {
            "—".to_string()
        }
    };
    println!();
    println!("Ours against the Karpenter-style baseline (same process, same market and draws):");
    println!(
        "- cost {}; pods disrupted by consolidation {}; by interruption {}; interruptions {}; node launches {}; planning p50 {} / p99 {}",
        ratio(ours.cost, base.cost),
        ratio(ours.pods_consolidated as f64, base.pods_consolidated as f64),
        ratio(ours.pods_interrupted as f64, base.pods_interrupted as f64),
        ratio(ours.interruptions as f64, base.interruptions as f64),
        ratio(ours.launches as f64, base.launches as f64),
        ratio(pct(&ours.decide_ms, 0.5), pct(&base.decide_ms, 0.5)),
        ratio(pct(&ours.decide_ms, 0.99), pct(&base.decide_ms, 0.99)),
    );
    let verdict = |ok: bool| if ok { "MET" } else { "NOT MET" };
    println!("Targets (reported, not asserted):");
    println!(
        "- our cost ≤ Karpenter-style: {} (${:.2} vs ${:.2} per week)",
        verdict(ours.cost <= base.cost),
        ours.cost * per_week,
        base.cost * per_week
    );
    println!(
        "- our pods disrupted by consolidation ≤ 0.5 × Karpenter-style: {} ({} vs {}, limit {:.1})",
        verdict(ours.pods_consolidated as f64 <= 0.5 * base.pods_consolidated as f64),
        ours.pods_consolidated,
        base.pods_consolidated,
        0.5 * base.pods_consolidated as f64
    );
    println!(
        "- our spot interruptions ≤ capacity-optimized: {} ({} vs {})",
        verdict(ours.interruptions <= capo.interruptions),
        ours.interruptions,
        capo.interruptions
    );
    eprintln!("total wall time {:.1} s", wall.elapsed().as_secs_f64());
}
