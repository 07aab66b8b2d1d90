//! Planner benchmark (engine::plan): a 10,000-pod / ~2,000-node cluster and a 1,000-pod
//! cluster with mixed constraints (capacity type, arch, anti-affinity, zone spread, PDBs,
//! a few protected nodes), plus a pure what-if (no current nodes).
//!
//! Run: `cargo bench -p spot-engine --bench plan` (release). Prints, per scenario, the plan's
//! risk-weighted objective against the LP lower bound and the first-fit-decreasing baseline
//! measured on the same input in the same run, and the wall time and on-CPU time of
//! `plan()` (median of 3; the CPU time is the thread's, so it does not grow when other
//! work shares the machine).
//! Every plan is checked with `plan::check` and planned twice for determinism.
//!
//! What is compared: `obj` is the risk-weighted cost (`risk_premium` 0 here, so the real
//! price) of the whole fleet after *every* wave of the plan (no `max_waves`, so nothing
//! is held back by the disruption budget: the waves only order the changes), i.e. the
//! target fleet the planner commits to. `LB` is the objective of the pinned nodes plus a
//! valid lower bound over the movable pods (the fluid LP of the pods without
//! anti-affinity and zone spread for these constrained inputs; see `pack`), `FFD` the
//! pinned nodes plus first-fit-decreasing over the same movable pods and offers.
//!
//! The current fleet is what a Karpenter-style autoscaler would have bought: FFD over
//! batches of 50 pods as they arrived, with only m5/m6g xlarge/2xlarge offers (spot and
//! on-demand), and m5/m6g 4xlarge for the pods no 2xlarge holds, all nodes a day old:
//! ~1,950 nodes for 10,000 pods, ~190 for 1,000.

use std::collections::BTreeMap;
use std::time::Instant;

use spot_engine::catalog::{Catalog, NodeOverhead};
use spot_engine::consolidate::Pdb;
use spot_engine::pack::{pack_ffd, NodeOffer, Pod};
use spot_engine::plan::{check, plan, Market, PlanInput, SnapNode, SnapPod};
use spot_engine::policy::ClusterPolicy;
use spot_engine::spot::{offers_for_template, NodeTemplate};

const NOW: i64 = 1_767_225_600;
/// Pods per provisioning batch of the current fleet.
const BATCH: usize = 50;

mod common;
use common::{catalog, workload, Lcg};

/// Nanoseconds this thread has run on a CPU (Linux `schedstat`), `None` elsewhere: the
/// plan's cost on one core whatever else the machine runs (wall time is load-dependent).
fn thread_cpu_ns() -> Option<u64> {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

fn snap_pod(p: &Pod, k: usize) -> SnapPod {
    let ns = ["web", "api", "batch", "data"][k % 4];
    let mut labels = BTreeMap::new();
    labels.insert("app".to_string(), format!("{ns}-{}", k % 7));
    SnapPod {
        name: p.id.clone(),
        namespace: ns.into(),
        labels,
        owner: Some(format!("Deployment/{ns}-{}", k % 7)),
        priority: 0,
        cpu_millis: p.cpu_millis,
        memory_mib: p.memory_mib,
        gpus: p.gpus,
        capacity: p.capacity,
        arch: p.arch,
        anti_affinity_group: p.anti_affinity_group.clone(),
        az_spread_group: p.az_spread_group.clone(),
        pdb: (ns == "api").then(|| "api".to_string()),
        do_not_disrupt: false,
        daemonset: false,
    }
}

/// (input, description). `protected`: 1 % do-not-disrupt nodes and 2 % young nodes.
fn scenario(cat: &Catalog, n: usize, with_nodes: bool, protected: bool) -> PlanInput {
    let pods = workload(n, 11 + n as u64, true);
    let all = offers_for_template(
        cat,
        &NodeTemplate::default(),
        &Default::default(),
        &NodeOverhead::default(),
    );
    // Karpenter-style fleet: xlarge/2xlarge nodes, 4xlarge only for the pods too big
    // for a 2xlarge (~2,000 nodes for 10,000 pods).
    let of = |names: &[&str]| -> Vec<NodeOffer> {
        all.iter()
            .filter(|o| names.contains(&o.instance_type.as_str()))
            .cloned()
            .collect()
    };
    let small = of(&["m5.xlarge", "m5.2xlarge", "m6g.xlarge", "m6g.2xlarge"]);
    let big = of(&["m5.4xlarge", "m6g.4xlarge"]);
    let fits_small = |p: &Pod| {
        small.iter().any(|o| {
            p.cpu_millis <= o.allocatable.cpu_millis && p.memory_mib <= o.allocatable.memory_mib
        })
    };
    let market = Market {
        catalog: cat.clone(),
        risk_flags: Default::default(),
        max_pods: BTreeMap::new(),
        overhead: NodeOverhead::default(),
    };
    let by_id: BTreeMap<&str, (usize, &Pod)> = pods
        .iter()
        .enumerate()
        .map(|(k, p)| (p.id.as_str(), (k, p)))
        .collect();
    let mut nodes = Vec::new();
    let mut pending = Vec::new();
    if with_nodes {
        // Provisioned in batches of pods as they arrived (Karpenter's batching window).
        let (fit, too_big): (Vec<Pod>, Vec<Pod>) = pods.iter().cloned().partition(fits_small);
        let mut fleet = Vec::new();
        for batch in fit.chunks(BATCH) {
            fleet.extend(pack_ffd(batch, &small).expect("legacy fleet").nodes);
        }
        for batch in too_big.chunks(BATCH) {
            fleet.extend(pack_ffd(batch, &big).expect("legacy fleet").nodes);
        }
        let mut rng = Lcg(5);
        for (i, pn) in fleet.iter().enumerate() {
            let it = cat.get(&pn.instance_type).expect("type");
            let risk = cat
                .pools_of(&pn.instance_type)
                .find(|p| p.az == pn.az)
                .map(|p| p.interruption_probability)
                .unwrap_or(0.0);
            let roll = rng.next() % 100;
            nodes.push(SnapNode {
                name: format!("ip-{i:05}"),
                instance_type: pn.instance_type.clone(),
                lifecycle: pn.lifecycle,
                az: pn.az.clone(),
                arch: it.arch,
                hourly_price: pn.hourly_price,
                allocatable: NodeOverhead::default().allocatable(it),
                created_at: if protected && roll < 2 {
                    NOW - 60
                } else {
                    NOW - 86_400
                },
                interruption_probability: if pn.lifecycle == spot_engine::catalog::Lifecycle::Spot {
                    risk
                } else {
                    0.0
                },
                labels: BTreeMap::new(),
                taints: Vec::new(),
                unmanaged: false,
                do_not_disrupt: protected && (2..3).contains(&roll),
                cordoned: false,
                ready: true,
                pinned: None,
                pods: pn
                    .pods
                    .iter()
                    .filter_map(|id| by_id.get(id.as_str()).map(|(k, p)| snap_pod(p, *k)))
                    .collect(),
            });
        }
    } else {
        pending = pods
            .iter()
            .enumerate()
            .map(|(k, p)| snap_pod(p, k))
            .collect();
    }
    let api = nodes
        .iter()
        .flat_map(|n| n.pods.iter())
        .chain(pending.iter())
        .filter(|p| p.pdb.is_some())
        .count() as u32;
    PlanInput {
        nodes,
        pending,
        pdbs: vec![Pdb {
            namespace: "api".into(),
            name: "api".into(),
            min_available: None,
            max_unavailable: Some((api / 10).max(1)),
            current_healthy: api,
            expected_pods: api,
        }],
        policy: ClusterPolicy {
            risk_premium: 0.0,
            ..ClusterPolicy::default()
        },
        market,
        now: NOW,
        pack_options: None,
    }
}

fn main() {
    let cat = catalog();
    println!("| scenario                  |  pods | nodes | obj $/h  |  LB $/h  | obj/LB | FFD $/h  | obj/FFD | waves | disrupted | plan ms (median of 3) | CPU ms (median of 3) |");
    println!("|{}|", "-".repeat(155));
    let only = std::env::var("PLAN_SIZES").ok();
    for &(name, n, with_nodes, protected) in &[
        ("what-if (no nodes)", 1_000usize, false, false),
        ("cluster", 1_000, true, false),
        ("cluster + protected", 1_000, true, true),
        ("what-if (no nodes)", 10_000, false, false),
        ("cluster", 10_000, true, false),
        ("cluster + protected", 10_000, true, true),
    ] {
        if only
            .as_deref()
            .is_some_and(|s| !s.split(',').any(|x| x == n.to_string()))
        {
            continue;
        }
        let input = scenario(&cat, n, with_nodes, protected);
        let mut times = Vec::new();
        let mut cpu = Vec::new();
        let mut result = None;
        for _ in 0..3 {
            let c = thread_cpu_ns();
            let t = Instant::now();
            let p = plan(&input).expect("plan");
            times.push(t.elapsed().as_secs_f64() * 1e3);
            if let (Some(a), Some(b)) = (c, thread_cpu_ns()) {
                cpu.push(b.saturating_sub(a) as f64 / 1e6);
            }
            if let Some(prev) = &result {
                assert_eq!(prev, &p, "plan not deterministic");
            }
            result = Some(p);
        }
        let p = result.expect("planned");
        check(&input, &p).expect("plan feasible and within budgets");
        times.sort_by(f64::total_cmp);
        cpu.sort_by(f64::total_cmp);
        let c = &p.costs;
        println!(
            "| {name:<25} | {:>5} | {:>5} | {:>8.3} | {:>8.3}{} | {:>6.4} | {:>8.3} | {:>7.4} | {:>5} | {:>9} | {:>21.1} | {:>20} |",
            n,
            input.nodes.len(),
            c.objective_hourly,
            c.lower_bound_hourly,
            if c.lower_bound_valid { " " } else { "*" },
            c.objective_hourly / c.lower_bound_hourly.max(1e-12),
            c.ffd_objective_hourly,
            c.objective_hourly / c.ffd_objective_hourly.max(1e-12),
            p.waves.len(),
            p.waves.iter().map(|w| w.disrupted).sum::<u32>(),
            times[1],
            cpu.get(1).map_or("n/a".to_string(), |c| format!("{c:.1}")),
        );
    }
    println!("(* = pods were put into free room of pinned nodes, which the LP bound does not see; the bound is then capped at the objective)");
}
