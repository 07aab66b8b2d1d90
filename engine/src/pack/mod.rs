//! MOD-PACK-01: cheapest node set for a set of pods.
//!
//! Two solvers share this module's problem preparation and plan checking:
//! - [`ffd`]: Karpenter-style first-fit-decreasing (pods sorted by CPU then memory; a
//!   node keeps every offer that still fits its pods, the cheapest is chosen at the end).
//!   Baseline and fallback.
//! - [`colgen`]: Gilmore–Gomory pattern formulation. Pods are grouped into request
//!   shapes; column generation over per-offer patterns (pricing = bounded
//!   multi-dimensional knapsack) solves the LP relaxation, whose Farley bound is a valid
//!   lower bound on any plan's cost; residual rounding over the generated patterns
//!   (repeated vertex LP solves with microlp, fixing whole pattern copies) picks integer
//!   pattern counts, and the patterns are expanded into a concrete pod → node assignment.
//!
//! [`pack`] runs both and returns the cheaper plan (FFD wins ties and LP failures).
//! Work is bounded by iteration/node budgets in [`PackOptions`], never by wall time, so
//! results are deterministic.

pub mod colgen;
pub mod ffd;

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::catalog::{Arch, Lifecycle, Resources};
use crate::{check_non_negative, invalid, EngineError, Result};

/// Which capacity a pod may run on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CapacityReq {
    Spot,
    OnDemand,
    Any,
}

impl CapacityReq {
    pub fn allows(self, l: Lifecycle) -> bool {
        matches!(
            (self, l),
            (CapacityReq::Any, _)
                | (CapacityReq::Spot, Lifecycle::Spot)
                | (CapacityReq::OnDemand, Lifecycle::OnDemand)
        )
    }
}

/// A pod to place (its requests, not its usage).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Pod {
    pub id: String,
    pub cpu_millis: u64,
    pub memory_mib: u64,
    pub gpus: u32,
    pub capacity: CapacityReq,
    pub arch: Option<Arch>,
    /// Pods sharing a group never share a node (hostname anti-affinity).
    pub anti_affinity_group: Option<String>,
    /// Pods sharing a group are spread over zones with max skew 1.
    pub az_spread_group: Option<String>,
}

impl Pod {
    /// A pod with no constraints, handy in tests and benches.
    pub fn simple(id: impl Into<String>, cpu_millis: u64, memory_mib: u64) -> Self {
        Self {
            id: id.into(),
            cpu_millis,
            memory_mib,
            gpus: 0,
            capacity: CapacityReq::Any,
            arch: None,
            anti_affinity_group: None,
            az_spread_group: None,
        }
    }

    fn request(&self) -> Resources {
        Resources {
            cpu_millis: self.cpu_millis,
            memory_mib: self.memory_mib,
            gpus: self.gpus,
            pods: 1,
        }
    }
}

/// Something the packer may buy: an instance type, in a zone, on a lifecycle, at a
/// price, with its allocatable resources (capacity minus the per-node reserve).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NodeOffer {
    pub instance_type: String,
    pub lifecycle: Lifecycle,
    pub az: String,
    /// USD per hour.
    pub hourly_price: f64,
    pub arch: Arch,
    pub allocatable: Resources,
}

/// Work budgets. All are counts, so a plan never depends on machine speed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PackOptions {
    /// Column-generation rounds for the root LP.
    pub max_colgen_iterations: u32,
    /// Branch-and-bound nodes per pricing knapsack; when hit, the best column so far is
    /// used and the bound stays valid (the knapsack's root bound is used for Farley).
    pub pricing_node_limit: u64,
    /// Most-negative-reduced-cost columns added per round.
    pub max_new_columns_per_iteration: usize,
    /// LP solves allowed for residual rounding (the integer step); pods still
    /// uncovered afterwards are packed by FFD.
    pub max_rounding_solves: u32,
    /// Column-generation rounds on the residual demand after each rounding step.
    pub residual_colgen_iterations: u32,
    /// Skip the LP and return FFD (e.g. for an emergency re-plan).
    pub ffd_only: bool,
}

impl Default for PackOptions {
    fn default() -> Self {
        Self {
            max_colgen_iterations: 80,
            pricing_node_limit: 5_000,
            max_new_columns_per_iteration: 40,
            max_rounding_solves: 300,
            residual_colgen_iterations: 3,
            ffd_only: false,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SolverKind {
    /// Column generation + integer solve over the generated patterns.
    Lp,
    /// First-fit-decreasing.
    Ffd,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlannedNode {
    pub instance_type: String,
    pub lifecycle: Lifecycle,
    pub az: String,
    pub hourly_price: f64,
    /// Pod ids, sorted.
    pub pods: Vec<String>,
}

/// Counters for observability and the benchmark.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PackStats {
    pub shapes: usize,
    pub offer_classes: usize,
    pub columns: usize,
    pub colgen_iterations: u32,
    pub lp_converged: bool,
    pub lp_solves: u32,
    /// Columns offered to the integer step.
    pub integer_columns: usize,
    /// LP solves the integer step used.
    pub rounding_solves: u64,
    pub integer_status: String,
    /// Objective of the root restricted master LP (USD/h). Equals the LP optimum when
    /// column generation converged with exact pricing; not itself a lower bound.
    pub root_lp_hourly: f64,
    pub ffd_cost_hourly: f64,
    pub lp_plan_cost_hourly: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PackPlan {
    pub nodes: Vec<PlannedNode>,
    /// Sum of node prices, USD/h.
    pub cost_hourly: f64,
    /// Valid lower bound on the cost of any feasible plan for these pods and offers.
    pub lower_bound_hourly: f64,
    /// `(cost − lower_bound) / cost`, 0 for an empty plan.
    pub gap: f64,
    pub solver: SolverKind,
    /// True when the cost equals the lower bound (within 1e-9 relative).
    pub proven_optimal: bool,
    pub reason: String,
    pub stats: PackStats,
}

/// A group of identical pods (same requests and constraints): the LP's rows.
#[derive(Debug, Clone)]
pub(crate) struct Shape {
    pub req: Resources,
    pub capacity: CapacityReq,
    pub arch: Option<Arch>,
    pub group: Option<usize>,
    pub az: Option<String>,
    /// At most this many pods of the shape on one node (an aggregate of pods of
    /// distinct anti-affinity groups); only the fluid plan LP sets it.
    pub per_node: Option<u32>,
    /// Pod indices, sorted by pod id.
    pub pods: Vec<usize>,
}

/// Validated problem shared by both solvers.
pub(crate) struct Prepared<'a> {
    pub pods: &'a [Pod],
    /// Offers sorted by (price, type, lifecycle, az): index order is price order.
    pub offers: Vec<&'a NodeOffer>,
    pub shapes: Vec<Shape>,
    pub pod_shape: Vec<usize>,
    pub n_groups: usize,
    /// At most this many pods of the `per_node` shapes *together* on one node (their
    /// members are pods of this many distinct anti-affinity groups, one per group per
    /// node); only the fluid plan LP sets it.
    pub per_node_total: Option<u32>,
}

impl Shape {
    pub fn eligible(&self, o: &NodeOffer) -> bool {
        self.capacity.allows(o.lifecycle)
            && self.arch.is_none_or(|a| a == o.arch)
            && self.az.as_deref().is_none_or(|z| z == o.az)
            && self.req.fits_in(&o.allocatable)
    }
}

impl<'a> Prepared<'a> {
    pub fn new(pods: &'a [Pod], offers: &'a [NodeOffer]) -> Result<Self> {
        let mut ids = BTreeSet::new();
        for p in pods {
            if !ids.insert(p.id.as_str()) {
                return Err(invalid("pod.id", format!("duplicate pod id `{}`", p.id)));
            }
        }
        for o in offers {
            check_non_negative(
                &format!("offer {}.hourly_price", o.instance_type),
                o.hourly_price,
            )?;
        }
        let mut sorted: Vec<&NodeOffer> = offers.iter().collect();
        sorted.sort_by(|a, b| {
            a.hourly_price
                .total_cmp(&b.hourly_price)
                .then_with(|| a.instance_type.cmp(&b.instance_type))
                .then_with(|| a.lifecycle.cmp(&b.lifecycle))
                .then_with(|| a.az.cmp(&b.az))
        });

        // Zone spread: pods of a spread group, in id order, are dealt round-robin over
        // the zones that can host them, so every zone gets floor(n/z) or ceil(n/z) pods
        // (max skew 1) before packing; both solvers then see a zone requirement.
        let mut spread: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
        for (i, p) in pods.iter().enumerate() {
            if let Some(g) = &p.az_spread_group {
                spread.entry(g.as_str()).or_default().push(i);
            }
        }
        let mut pod_az: Vec<Option<String>> = vec![None; pods.len()];
        // The zones hosting a (capacity, arch, request): the same for many members.
        let mut hosts: BTreeMap<(CapacityReq, Option<Arch>, Resources), BTreeSet<&str>> =
            BTreeMap::new();
        for members in spread.values_mut() {
            members.sort_by(|&a, &b| pods[a].id.cmp(&pods[b].id));
            let mut zones: Option<BTreeSet<&str>> = None;
            for &m in members.iter() {
                let p = &pods[m];
                let key = (p.capacity, p.arch, p.request());
                let z = hosts.entry(key).or_insert_with(|| {
                    sorted
                        .iter()
                        .filter(|o| {
                            p.capacity.allows(o.lifecycle)
                                && p.arch.is_none_or(|a| a == o.arch)
                                && p.request().fits_in(&o.allocatable)
                        })
                        .map(|o| o.az.as_str())
                        .collect()
                });
                zones = Some(match zones {
                    None => z.clone(),
                    Some(acc) => acc.intersection(z).copied().collect(),
                });
            }
            let zones: Vec<&str> = zones.unwrap_or_default().into_iter().collect();
            if zones.is_empty() {
                continue; // reported as unschedulable below
            }
            for (k, &m) in members.iter().enumerate() {
                pod_az[m] = Some(zones[k % zones.len()].to_owned());
            }
        }

        let mut group_ids: BTreeMap<&str, usize> = BTreeMap::new();
        for p in pods {
            if let Some(g) = &p.anti_affinity_group {
                let n = group_ids.len();
                group_ids.entry(g.as_str()).or_insert(n);
            }
        }
        type Key = (
            Resources,
            CapacityReq,
            Option<Arch>,
            Option<usize>,
            Option<String>,
        );
        let mut by_key: BTreeMap<Key, Vec<usize>> = BTreeMap::new();
        for (i, p) in pods.iter().enumerate() {
            let g = p
                .anti_affinity_group
                .as_deref()
                .and_then(|g| group_ids.get(g).copied());
            by_key
                .entry((p.request(), p.capacity, p.arch, g, pod_az[i].clone()))
                .or_default()
                .push(i);
        }
        let mut shapes = Vec::with_capacity(by_key.len());
        let mut pod_shape = vec![0usize; pods.len()];
        for ((req, capacity, arch, group, az), mut members) in by_key {
            members.sort_by(|&a, &b| pods[a].id.cmp(&pods[b].id));
            let s = Shape {
                req,
                capacity,
                arch,
                group,
                az,
                per_node: None,
                pods: members,
            };
            if !sorted.iter().any(|o| s.eligible(o)) {
                let pod = &pods[s.pods[0]];
                return Err(EngineError::Unschedulable {
                    pod: pod.id.clone(),
                    reason: format!(
                        "no offer fits {}m CPU / {} MiB / {} GPU with capacity {:?}, arch {:?}{} after the node reserve",
                        req.cpu_millis,
                        req.memory_mib,
                        req.gpus,
                        capacity,
                        arch,
                        if pod.az_spread_group.is_some() {
                            format!(", zone {:?}", s.az)
                        } else {
                            String::new()
                        }
                    ),
                });
            }
            for &m in &s.pods {
                pod_shape[m] = shapes.len();
            }
            shapes.push(s);
        }
        Ok(Self {
            pods,
            offers: sorted,
            shapes,
            pod_shape,
            n_groups: group_ids.len(),
            per_node_total: None,
        })
    }

    /// Cheapest offer that can host all of `pods` together (eligibility and capacity),
    /// scanning in price order.
    pub fn cheapest_offer_for(&self, pods: &[usize]) -> Option<usize> {
        // Every shape's eligibility at once: the lifecycles all allow, the one arch and
        // zone any of them names (two different ones: no offer), and the summed request
        // (which fits only where each request fits).
        let mut used = Resources::default();
        let (mut spot, mut on_demand) = (true, true);
        let mut arch: Option<Arch> = None;
        let mut az: Option<&str> = None;
        for &p in pods {
            used = used.saturating_add(&self.pods[p].request());
            let s = &self.shapes[self.pod_shape[p]];
            spot &= s.capacity.allows(Lifecycle::Spot);
            on_demand &= s.capacity.allows(Lifecycle::OnDemand);
            if let Some(a) = s.arch {
                if arch.is_some_and(|x| x != a) {
                    return None;
                }
                arch = Some(a);
            }
            if let Some(z) = s.az.as_deref() {
                if az.is_some_and(|x| x != z) {
                    return None;
                }
                az = Some(z);
            }
        }
        self.offers.iter().position(|o| {
            used.fits_in(&o.allocatable)
                && match o.lifecycle {
                    Lifecycle::Spot => spot,
                    Lifecycle::OnDemand => on_demand,
                }
                && arch.is_none_or(|a| a == o.arch)
                && az.is_none_or(|z| z == o.az)
        })
    }

    /// Hourly cost of (offer index, pod indices) nodes; empty nodes cost nothing.
    pub fn cost(&self, nodes: &[(usize, Vec<usize>)]) -> f64 {
        nodes
            .iter()
            .filter(|(_, pods)| !pods.is_empty())
            .map(|(o, _)| self.offers[*o].hourly_price)
            .sum()
    }

    /// Builds a plan from (offer index, pod indices) nodes; empty nodes are dropped.
    pub fn to_nodes(&self, nodes: &[(usize, Vec<usize>)]) -> (Vec<PlannedNode>, f64) {
        let mut out = Vec::with_capacity(nodes.len());
        for (o, pods) in nodes {
            if pods.is_empty() {
                continue;
            }
            let offer = self.offers[*o];
            let mut ids: Vec<String> = pods.iter().map(|&p| self.pods[p].id.clone()).collect();
            ids.sort();
            out.push(PlannedNode {
                instance_type: offer.instance_type.clone(),
                lifecycle: offer.lifecycle,
                az: offer.az.clone(),
                hourly_price: offer.hourly_price,
                pods: ids,
            });
        }
        (out, self.cost(nodes))
    }
}

fn gap(cost: f64, lb: f64) -> f64 {
    if cost <= 0.0 {
        0.0
    } else {
        ((cost - lb) / cost).max(0.0)
    }
}

/// Plans the cheapest node set for `pods` using `offers`.
///
/// Runs FFD first (baseline, warm start, fallback), then column generation unless
/// `opts.ffd_only`. Returns the cheaper plan; the lower bound is the LP's Farley bound
/// when the LP ran, else the trivial per-shape bound. Errors only on invalid input or an
/// unschedulable pod, never because the LP failed.
pub fn pack(pods: &[Pod], offers: &[NodeOffer], opts: &PackOptions) -> Result<PackPlan> {
    let prep = Prepared::new(pods, offers)?;
    let ffd_nodes = ffd::solve(&prep);
    let (ffd_plan_nodes, ffd_cost) = prep.to_nodes(&ffd_nodes);
    let mut stats = PackStats {
        shapes: prep.shapes.len(),
        ffd_cost_hourly: ffd_cost,
        ..PackStats::default()
    };
    let trivial_lb = colgen::trivial_lower_bound(&prep);
    let ffd_plan = |lb: f64, reason: String, stats: PackStats| {
        let lb = lb.min(ffd_cost);
        PackPlan {
            cost_hourly: ffd_cost,
            lower_bound_hourly: lb,
            gap: gap(ffd_cost, lb),
            solver: SolverKind::Ffd,
            proven_optimal: ffd_cost <= lb * (1.0 + 1e-9) + 1e-12,
            nodes: ffd_plan_nodes.clone(),
            reason,
            stats,
        }
    };
    if pods.is_empty() {
        return Ok(ffd_plan(0.0, "no pods: nothing to buy".into(), stats));
    }
    if opts.ffd_only {
        return Ok(ffd_plan(
            trivial_lb,
            format!("first-fit-decreasing only (requested); ${ffd_cost:.4}/h"),
            stats,
        ));
    }
    // Many constrained shapes (anti-affinity groups × zone-spread zones) make column
    // generation crawl: those problems are solved by fluid LPs (see `relax_repair`).
    // When that path's LP fails, column generation runs alone: the portfolio would only
    // repeat the failed solve.
    let solved = if relax_repair(&prep, opts) {
        fluid_path(&prep).unwrap_or_else(|| colgen::solve(&prep, opts, &ffd_nodes))
    } else {
        let cg = colgen::solve(&prep, opts, &ffd_nodes);
        if pods.len() >= PORTFOLIO_MIN_PODS {
            best_of(&prep, cg, fluid_path(&prep))
        } else {
            cg
        }
    };
    match solved {
        Err(e) => Ok(ffd_plan(
            trivial_lb,
            format!("LP failed ({e}); fell back to first-fit-decreasing at ${ffd_cost:.4}/h"),
            stats,
        )),
        Ok(out) => {
            stats.offer_classes = out.classes;
            stats.columns = out.columns;
            stats.colgen_iterations = out.iterations;
            stats.lp_converged = out.converged;
            stats.lp_solves = out.lp_solves;
            stats.integer_columns = out.mip_columns;
            stats.rounding_solves = out.mip_nodes;
            stats.integer_status = out.mip_status.clone();
            stats.root_lp_hourly = out.rmp_objective;
            let lb = out.lower_bound.max(trivial_lb);
            let (lp_nodes, lp_cost) = prep.to_nodes(&out.nodes);
            stats.lp_plan_cost_hourly = Some(lp_cost);
            let bound_txt = format!(
                "LP lower bound ${lb:.4}/h ({} after {} column-generation rounds, {} columns)",
                if out.converged {
                    "converged"
                } else {
                    "budget hit, Farley bound"
                },
                out.iterations,
                out.columns
            );
            if lp_cost < ffd_cost {
                let lb = lb.min(lp_cost);
                Ok(PackPlan {
                    cost_hourly: lp_cost,
                    lower_bound_hourly: lb,
                    gap: gap(lp_cost, lb),
                    solver: SolverKind::Lp,
                    proven_optimal: lp_cost <= lb * (1.0 + 1e-9) + 1e-12,
                    nodes: lp_nodes,
                    reason: format!(
                        "column generation plan ${lp_cost:.4}/h on {} nodes, {:.2}% above the {bound_txt}; first-fit-decreasing would cost ${ffd_cost:.4}/h ({:.3}× this plan)",
                        out.nodes.iter().filter(|(_, p)| !p.is_empty()).count(),
                        gap(lp_cost, lb) * 100.0,
                        ffd_cost / lp_cost.max(1e-12)
                    ),
                    stats,
                })
            } else {
                Ok(ffd_plan(
                    lb,
                    format!(
                        "first-fit-decreasing plan ${ffd_cost:.4}/h is no dearer than the LP plan ${lp_cost:.4}/h; {bound_txt}"
                    ),
                    stats,
                ))
            }
        }
    }
}

/// Pods from which column generation's plan and bound are checked against the fluid
/// path's ([`best_of`]). Below it the fluid LP's bound, which ignores integrality, is the
/// weaker one and its plan rarely the cheaper, and small problems (a few pending pods)
/// must stay fast.
const PORTFOLIO_MIN_PODS: usize = 500;

/// Shapes from which a constrained problem is solved by [`relax_repair`].
const RELAX_MIN_SHAPES: usize = 60;

/// Problems with many anti-affinity / zone-spread shapes (every group × zone splits a
/// request shape; column generation then needs hundreds of rounds): fluid LPs instead.
/// - Bound: the fluid LP ([`colgen::Fluid`]) of the pods without anti-affinity and zone
///   spread. Every plan of the constrained problem is feasible for it, so it is valid.
/// - Plan: the fluid LP in which zone-bound pods keep their zone (aggregated per
///   capacity/arch/zone), rounded by [`round_fluid`] with every constraint enforced.
///
/// Whether `prep` takes this path ([`fluid_path`]); small or unconstrained problems are
/// solved by column generation.
fn relax_repair(prep: &Prepared<'_>, opts: &PackOptions) -> bool {
    let constrained = prep
        .shapes
        .iter()
        .any(|s| s.group.is_some() || s.az.is_some());
    constrained && prep.shapes.len() >= RELAX_MIN_SHAPES && !opts.ffd_only
}

/// Column generation's outcome and the fluid path's together: the cheaper plan (column
/// generation's on a tie), and the larger of the two lower bounds (both are valid, and
/// neither dominates: the fluid LP ignores integrality, while column generation's Farley
/// bound is weakened by its pricing knapsacks' upper bounds when they stop at their node
/// budget). Either alone when the other failed.
fn best_of(
    prep: &Prepared<'_>,
    cg: Result<colgen::Outcome>,
    fluid: Option<Result<colgen::Outcome>>,
) -> Result<colgen::Outcome> {
    let Some(Ok(fl)) = fluid else {
        return cg;
    };
    let Ok(cg) = cg else {
        return Ok(fl);
    };
    let (cg_cost, fl_cost) = (prep.cost(&cg.nodes), prep.cost(&fl.nodes));
    let bound = cg.lower_bound.max(fl.lower_bound);
    let (mut best, other, other_cost) = if fl_cost < cg_cost - 1e-9 {
        (fl, "column generation", cg_cost)
    } else {
        (cg, "the fluid LP", fl_cost)
    };
    best.lower_bound = bound;
    best.mip_status = format!(
        "{}; {other}'s plan cost ${other_cost:.4}/h; bound: the larger of both",
        best.mip_status
    );
    Ok(best)
}

/// The fluid path (see [`relax_repair`]) for any problem: `None` when an LP solve fails.
fn fluid_path(prep: &Prepared<'_>) -> Option<Result<colgen::Outcome>> {
    let pods = without_placement_constraints(prep.pods);
    let offers: Vec<NodeOffer> = prep.offers.iter().map(|o| (*o).clone()).collect();
    let rprep = match Prepared::new(&pods, &offers) {
        Ok(r) => r,
        Err(e) => return Some(Err(e)),
    };
    // The bound: the fluid LP of the relaxation.
    let relaxed = colgen::fluid_bound(&rprep)?;
    let bound = relaxed.bound;
    // The plan: the fluid LP of the relaxation in which zone-bound pods keep their zone,
    // aggregated per (capacity, arch, zone), rounded with every constraint enforced.
    let zprep = zone_aggregated(prep, &rprep);
    let fl = colgen::fluid_plan(&zprep, &relaxed.used)?;
    let nodes = round_fluid(prep, &zprep, &fl);
    Some(Ok(colgen::Outcome {
        nodes,
        lower_bound: bound,
        converged: relaxed.converged,
        iterations: relaxed.lp_solves,
        columns: relaxed.classes_solved + fl.classes_solved,
        classes: relaxed.classes_total,
        lp_solves: relaxed.lp_solves + fl.lp_solves,
        mip_columns: 0,
        mip_nodes: 0,
        mip_status: format!(
            "fluid LP (anti-affinity relaxed, zone-bound pods aggregated; {} of {} classes) rounded, remainders repacked",
            fl.classes_solved, fl.classes_total
        ),
        rmp_objective: fl.objective,
    }))
}

/// `pods` without anti-affinity and zone spread (the relaxation the bound is taken of).
fn without_placement_constraints(pods: &[Pod]) -> Vec<Pod> {
    pods.iter()
        .map(|p| Pod {
            anti_affinity_group: None,
            az_spread_group: None,
            ..p.clone()
        })
        .collect()
}

/// `rprep`'s shapes for the pods without zone, plus one shape per (capacity, arch, zone)
/// holding every zone-bound pod (request: the members' mean, rounded up). Only for the
/// plan's LP, never for a bound (the aggregation restricts the mix).
fn zone_aggregated<'a>(prep: &Prepared<'a>, rprep: &Prepared<'a>) -> Prepared<'a> {
    let zoned = |p: usize| prep.shapes[prep.pod_shape[p]].az.clone();
    let mut shapes: Vec<Shape> = Vec::new();
    for s in &rprep.shapes {
        let members: Vec<usize> = s
            .pods
            .iter()
            .copied()
            .filter(|&p| zoned(p).is_none())
            .collect();
        if !members.is_empty() {
            shapes.push(Shape {
                pods: members,
                group: None,
                az: None,
                per_node: None,
                ..s.clone()
            });
        }
    }
    let mut agg: BTreeMap<(CapacityReq, Option<Arch>, String), Vec<usize>> = BTreeMap::new();
    for (p, pod) in prep.pods.iter().enumerate() {
        if let Some(z) = zoned(p) {
            agg.entry((pod.capacity, pod.arch, z)).or_default().push(p);
        }
    }
    for ((capacity, arch, az), members) in agg {
        let n = members.len() as u64;
        let sum = members.iter().fold(Resources::default(), |a, &p| {
            a.saturating_add(&prep.pods[p].request())
        });
        let req = Resources {
            cpu_millis: sum.cpu_millis.div_ceil(n),
            memory_mib: sum.memory_mib.div_ceil(n),
            gpus: u32::try_from(u64::from(sum.gpus).div_ceil(n)).unwrap_or(u32::MAX),
            pods: 1,
        };
        // Members all in anti-affinity groups: one node holds at most one per group.
        let groups: Option<BTreeSet<usize>> = members
            .iter()
            .map(|&p| prep.shapes[prep.pod_shape[p]].group)
            .collect();
        shapes.push(Shape {
            req,
            capacity,
            arch,
            group: None,
            az: Some(az),
            per_node: groups.map(|g| u32::try_from(g.len()).unwrap_or(u32::MAX)),
            pods: members,
        });
    }
    let mut pod_shape = vec![0usize; prep.pods.len()];
    for (k, s) in shapes.iter().enumerate() {
        for &p in &s.pods {
            pod_shape[p] = k;
        }
    }
    // Every per-node-limited shape shares one budget per node: one pod per group.
    let limited: BTreeSet<usize> = shapes
        .iter()
        .filter(|s| s.per_node.is_some())
        .flat_map(|s| s.pods.iter())
        .filter_map(|&p| prep.shapes[prep.pod_shape[p]].group)
        .collect();
    Prepared {
        pods: prep.pods,
        offers: rprep.offers.clone(),
        shapes,
        pod_shape,
        n_groups: 0,
        per_node_total: (!limited.is_empty())
            .then(|| u32::try_from(limited.len()).unwrap_or(u32::MAX)),
    }
}

/// Rounds the fluid LP of `zprep`: each shape's pods are dealt to the classes in
/// proportion to the LP (largest remainders, members largest first so every class gets
/// the mix); each class's pods fill as many *whole* nodes of the class's offer as their
/// volume fills completely (anti-affinity pods first, then largest first, each into the
/// node whose free room is most aligned with it, never two pods of an anti-affinity
/// group together); zone-bound pods only go to classes of their zone whose offer can
/// host them. The pods left over (the fractional remainders, and pods their class could
/// not host) go first fit into the whole nodes' free room; the rest by a greedy set
/// cover (no further LP solve) described in the body; what even that cannot place goes
/// into free room, then to FFD. Every node buys the cheapest
/// offer holding its pods, and [`improve`] empties or merges the emptiest nodes. All of
/// `prep`'s constraints hold.
fn round_fluid(
    prep: &Prepared<'_>,
    zprep: &Prepared<'_>,
    fl: &colgen::Fluid,
) -> Vec<(usize, Vec<usize>)> {
    let nc = fl.classes.len();
    let mut per_class: Vec<Vec<usize>> = vec![Vec::new(); nc];
    let mut alloc: Vec<Vec<(usize, f64)>> = vec![Vec::new(); zprep.shapes.len()];
    for (c, fc) in fl.classes.iter().enumerate() {
        for &(s, y) in &fc.pods {
            alloc[s].push((c, y));
        }
    }
    let req = |p: usize| prep.pods[p].request();
    let group = |p: usize| prep.shapes[prep.pod_shape[p]].group;
    let mut leftover: Vec<usize> = Vec::new();
    let mut spill: Vec<usize> = Vec::new();
    for (s, shape) in zprep.shapes.iter().enumerate() {
        let d = shape.pods.len();
        let total: f64 = alloc[s].iter().map(|x| x.1).sum();
        if total <= 0.0 {
            leftover.extend(shape.pods.iter().copied());
            continue;
        }
        let scale = d as f64 / total;
        let mut counts: Vec<(usize, usize, f64)> = alloc[s]
            .iter()
            .map(|&(c, y)| {
                let v = y * scale;
                let f = (v + 1e-9).floor();
                (c, f as usize, v - f)
            })
            .collect();
        let mut given: usize = counts.iter().map(|x| x.1).sum();
        let mut order: Vec<usize> = (0..counts.len()).collect();
        order.sort_by(|&a, &b| counts[b].2.total_cmp(&counts[a].2).then(a.cmp(&b)));
        let mut k = 0;
        while given < d && !order.is_empty() {
            counts[order[k % order.len()]].1 += 1;
            given += 1;
            k += 1;
        }
        // Members largest first, dealt round-robin over the classes' quotas.
        let mut members = shape.pods.clone();
        members.sort_by(|&a, &b| {
            let (ra, rb) = (req(a), req(b));
            rb.cpu_millis
                .cmp(&ra.cpu_millis)
                .then(rb.memory_mib.cmp(&ra.memory_mib))
                .then(a.cmp(&b))
        });
        let mut quota: Vec<(usize, usize)> = counts
            .iter()
            .filter(|x| x.1 > 0)
            .map(|x| (x.0, x.1))
            .collect();
        // Zone-bound members first, each to the class of its zone with the most quota
        // left (none: it is packed with the remainders).
        let (zoned_m, free_m): (Vec<usize>, Vec<usize>) = members
            .into_iter()
            .partition(|&p| prep.shapes[prep.pod_shape[p]].az.is_some());
        for p in zoned_m {
            let z = prep.shapes[prep.pod_shape[p]].az.as_deref();
            let best = quota
                .iter()
                .enumerate()
                .filter(|(_, q)| {
                    let o = zprep.offers[fl.classes[q.0].offer];
                    q.1 > 0
                        && Some(o.az.as_str()) == z
                        && prep.shapes[prep.pod_shape[p]].eligible(o)
                })
                .max_by(|a, b| a.1 .1.cmp(&b.1 .1).then(b.0.cmp(&a.0)))
                .map(|(k, _)| k);
            match best {
                Some(k) => {
                    per_class[quota[k].0].push(p);
                    quota[k].1 -= 1;
                }
                None => spill.push(p),
            }
        }
        let mut it = free_m.into_iter();
        'deal: loop {
            let mut any = false;
            for q in quota.iter_mut() {
                if q.1 == 0 {
                    continue;
                }
                match it.next() {
                    Some(p) => {
                        per_class[q.0].push(p);
                        q.1 -= 1;
                        any = true;
                    }
                    None => break 'deal,
                }
            }
            if !any {
                break;
            }
        }
        leftover.extend(it);
    }
    // Per class: whole nodes first, as many as the class's pods fill completely.
    let mut bins: Vec<Bin> = Vec::new();
    let mut rest: Vec<usize> = Vec::new();
    for (c, pods) in per_class.into_iter().enumerate() {
        if pods.is_empty() {
            continue;
        }
        let o = fl.classes[c].offer;
        let offer = zprep.offers[o];
        let cap = offer.allocatable;
        let (elig, inel): (Vec<usize>, Vec<usize>) = pods
            .into_iter()
            .partition(|&p| prep.shapes[prep.pod_shape[p]].eligible(offer));
        leftover.extend(inel);
        let vol = elig
            .iter()
            .fold(Resources::default(), |a, &p| a.saturating_add(&req(p)));
        let n_full = (load(&vol, &cap) + 1e-6).floor() as usize;
        // Largest (as a share of the node) first, each into the node whose free room
        // points most its way (the largest dot product of the pod's and the free room's
        // shares of the node): CPU-heavy pods go where CPU is left, memory-heavy ones
        // where memory is, so the whole nodes fill in every dimension.
        let mut order = elig;
        order.sort_by(|&a, &b| {
            group(b)
                .is_some()
                .cmp(&group(a).is_some())
                .then(load(&req(b), &cap).total_cmp(&load(&req(a), &cap)))
                .then(a.cmp(&b))
        });
        let first = bins.len();
        bins.extend((0..n_full).map(|_| Bin::new(o)));
        for p in order {
            let r = req(p);
            let g = group(p);
            let best = (first..bins.len())
                .filter(|&k| bins[k].fits(&r, g, &cap))
                .map(|k| (alignment(&r, &bins[k].used, &cap), k))
                .max_by(|a, b| a.0.total_cmp(&b.0).then(b.1.cmp(&a.1)));
            match best {
                Some((_, k)) => bins[k].put(p, &r, g),
                None => rest.push(p),
            }
        }
    }
    rest.extend(spill);
    // Pods whose class could not host them (an aggregated zone shape's class too small
    // for its largest members) are packed with the remainders, not node by node.
    rest.append(&mut leftover);
    // The fractional remainders, largest first: first fit into the free room of any
    // whole node; the others by greedy set cover over the LP's offers and every
    // undominated offer class: each step fills one node of every such offer by the
    // dot-product rule ([`fill_bin`]) and keeps the one whose pods are worth most (their
    // requests at the cheapest unit rates) per dollar of the cheapest offer holding them.
    rest.sort_by(|&a, &b| {
        let (pa, pb) = (&prep.pods[a], &prep.pods[b]);
        pb.cpu_millis
            .cmp(&pa.cpu_millis)
            .then(pb.memory_mib.cmp(&pa.memory_mib))
            .then(a.cmp(&b))
    });
    let n_whole = bins.len();
    let mut rest_out: Vec<usize> = Vec::new();
    for p in rest {
        let r = req(p);
        let g = group(p);
        let s = &prep.shapes[prep.pod_shape[p]];
        let room = (0..n_whole).find(|&k| {
            let bo = prep.offers[bins[k].offer];
            s.eligible(bo) && bins[k].fits(&r, g, &bo.allocatable)
        });
        match room {
            Some(k) => bins[k].put(p, &r, g),
            None => rest_out.push(p),
        }
    }
    let mut cands: Vec<usize> = fl.classes.iter().map(|c| c.offer).collect();
    cands.sort_unstable();
    cands.dedup();
    let mut types = PodTypes::new(prep, rest_out);
    // Shapes none of the LP's offers hosts (zone-bound pods the LP's zones lack): the
    // offers cheapest per pod and cheapest outright that host them join.
    for t in 0..types.len() {
        let sh = &prep.shapes[types.shape[t]];
        if cands.iter().any(|&o| sh.eligible(prep.offers[o])) {
            continue;
        }
        let elig = || (0..prep.offers.len()).filter(|&o| sh.eligible(prep.offers[o]));
        let per_pod = elig().min_by(|&a, &b| {
            let f = |o: usize| {
                prep.offers[o].hourly_price
                    * load(&sh.req, &prep.offers[o].allocatable)
                        .max(1.0 / f64::from(prep.offers[o].allocatable.pods.max(1)))
            };
            f(a).total_cmp(&f(b)).then(a.cmp(&b))
        });
        cands.extend(per_pod);
        cands.extend(elig().next());
        cands.sort_unstable();
        cands.dedup();
    }
    // A pod's worth: its request at the cheapest rate per unit of CPU, memory and pod
    // slots among those offers that may host it (the largest of the three).
    let tval: Vec<f64> = (0..types.len())
        .map(|t| {
            let sh = &prep.shapes[types.shape[t]];
            let r = types.req[t];
            let mut best = [f64::INFINITY; 3];
            for &o in &cands {
                let of = prep.offers[o];
                if sh.eligible(of) {
                    let a = of.allocatable;
                    best[0] = best[0].min(of.hourly_price / a.cpu_millis.max(1) as f64);
                    best[1] = best[1].min(of.hourly_price / a.memory_mib.max(1) as f64);
                    best[2] = best[2].min(of.hourly_price / f64::from(a.pods.max(1)));
                }
            }
            if best[0].is_finite() {
                (r.cpu_millis as f64 * best[0])
                    .max(r.memory_mib as f64 * best[1])
                    .max(f64::from(r.pods) * best[2])
            } else {
                0.0
            }
        })
        .collect();
    // Then every offer class over the remainders' types (the cheapest per allocatable
    // and eligibility, undominated) may take remainders too.
    let mut sigs: Vec<(usize, Vec<bool>)> = Vec::new();
    for (o, of) in prep.offers.iter().enumerate() {
        let el: Vec<bool> = (0..types.len())
            .map(|t| prep.shapes[types.shape[t]].eligible(of))
            .collect();
        if !el.iter().any(|&e| e) {
            continue;
        }
        let dominated = sigs.iter().any(|(q, e2)| {
            let a = prep.offers[*q];
            a.hourly_price <= of.hourly_price
                && of.allocatable.fits_in(&a.allocatable)
                && el.iter().zip(e2).all(|(&x, &y)| !x || y)
        });
        if !dominated {
            sigs.push((o, el));
        }
    }
    cands.extend(sigs.into_iter().map(|x| x.0));
    cands.sort_unstable();
    cands.dedup();
    let elig_types: Vec<Vec<usize>> = cands
        .iter()
        .map(|&o| {
            (0..types.len())
                .filter(|&t| prep.shapes[types.shape[t]].eligible(prep.offers[o]))
                .collect()
        })
        .collect();
    // Each candidate's fill is kept while every type it takes still has as many pods
    // left as it takes: the greedy fill, and so its ratio, would come out the same (the
    // types it passed over can only have lost pods).
    let mut memo: Vec<Option<Fill>> = vec![None; cands.len()];
    while types.remaining() > 0 {
        let mut best: Option<(f64, usize)> = None;
        for (ci, &o) in cands.iter().enumerate() {
            let stale = memo[ci]
                .as_ref()
                .is_none_or(|f| f.usage.iter().any(|&(t, u)| types.pods[t].len() < u));
            if stale {
                memo[ci] = Some(Fill::new(prep, &types, &tval, o, &elig_types[ci]));
            }
            let Some(f) = memo[ci].as_ref().filter(|f| !f.picks.is_empty()) else {
                continue;
            };
            if best.is_none_or(|b| f.ratio > b.0 * (1.0 + 1e-12)) {
                best = Some((f.ratio, ci));
            }
        }
        let Some((_, ci)) = best else {
            break;
        };
        let o = cands[ci];
        let picks = memo[ci].take().map(|f| f.picks).unwrap_or_default();
        let mut b = Bin::new(o);
        for t in picks {
            if let Some(p) = types.take(t) {
                b.put(p, &types.req[t], types.group[t]);
            }
        }
        bins.push(b);
    }
    leftover.extend(types.drain());
    // Pods no class of theirs could host: first fit into the nodes' free room, then FFD.
    leftover.sort_by(|&a, &b| {
        let (pa, pb) = (&prep.pods[a], &prep.pods[b]);
        pb.cpu_millis
            .cmp(&pa.cpu_millis)
            .then(pb.memory_mib.cmp(&pa.memory_mib))
            .then_with(|| pa.id.cmp(&pb.id))
    });
    let mut unplaced = Vec::new();
    for p in leftover {
        let s = &prep.shapes[prep.pod_shape[p]];
        let slot = (0..bins.len()).find(|&k| {
            let o = prep.offers[bins[k].offer];
            s.eligible(o) && bins[k].fits(&s.req, s.group, &o.allocatable)
        });
        match slot {
            Some(k) => bins[k].put(p, &s.req, s.group),
            None => unplaced.push(p),
        }
    }
    // Every node buys the cheapest offer holding its pods.
    let mut out: Vec<(usize, Vec<usize>)> = Vec::with_capacity(bins.len());
    for b in bins {
        if b.pods.is_empty() {
            continue;
        }
        match prep.cheapest_offer_for(&b.pods) {
            Some(c) => out.push((c, b.pods)),
            None => unplaced.extend(b.pods),
        }
    }
    if !unplaced.is_empty() {
        unplaced.sort_unstable();
        out.extend(ffd::solve_subset(prep, &unplaced));
    }
    improve(prep, &mut out);
    out
}

/// A set-cover candidate's node: the pod types [`fill_bin`] puts on an empty node of
/// an offer, and their worth per dollar of the cheapest offer holding them.
#[derive(Clone)]
struct Fill {
    ratio: f64,
    picks: Vec<usize>,
    /// (type, pods of it taken), ascending by type.
    usage: Vec<(usize, usize)>,
}

impl Fill {
    fn new(
        prep: &Prepared<'_>,
        types: &PodTypes,
        tval: &[f64],
        o: usize,
        allowed: &[usize],
    ) -> Self {
        let picks = fill_bin(&Bin::new(o), &prep.offers[o].allocatable, types, allowed);
        let mut usage: BTreeMap<usize, usize> = BTreeMap::new();
        let mut pods = Vec::with_capacity(picks.len());
        for &t in &picks {
            let used = usage.entry(t).or_insert(0);
            let n = types.pods[t].len();
            if *used < n {
                pods.push(types.pods[t][n - 1 - *used]);
            }
            *used += 1;
        }
        let buy = prep.cheapest_offer_for(&pods).unwrap_or(o);
        let v: f64 = picks.iter().map(|&t| tval[t]).sum();
        Self {
            ratio: v / prep.offers[buy].hourly_price.max(1e-12),
            picks,
            usage: usage.into_iter().collect(),
        }
    }
}

/// Pods grouped by shape (identical requests and constraints) for [`fill_bin`]; each
/// type's pods are taken lowest index first.
struct PodTypes {
    req: Vec<Resources>,
    group: Vec<Option<usize>>,
    shape: Vec<usize>,
    /// Per type, pod indices in descending order (taken from the end).
    pods: Vec<Vec<usize>>,
}

impl PodTypes {
    fn new(prep: &Prepared<'_>, pods: Vec<usize>) -> Self {
        let mut by: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
        for p in pods {
            by.entry(prep.pod_shape[p]).or_default().push(p);
        }
        let mut t = Self {
            req: Vec::with_capacity(by.len()),
            group: Vec::with_capacity(by.len()),
            shape: Vec::with_capacity(by.len()),
            pods: Vec::with_capacity(by.len()),
        };
        for (s, mut ps) in by {
            ps.sort_unstable_by(|a, b| b.cmp(a));
            t.req.push(prep.shapes[s].req);
            t.group.push(prep.shapes[s].group);
            t.shape.push(s);
            t.pods.push(ps);
        }
        t
    }
    fn len(&self) -> usize {
        self.pods.len()
    }
    fn remaining(&self) -> usize {
        self.pods.iter().map(Vec::len).sum()
    }
    fn take(&mut self, t: usize) -> Option<usize> {
        self.pods[t].pop()
    }
    /// Every pod not taken, ascending.
    fn drain(&mut self) -> Vec<usize> {
        let mut out: Vec<usize> = self.pods.iter_mut().flat_map(std::mem::take).collect();
        out.sort_unstable();
        out
    }
}

/// Fills a node (starting from `b`, capacity `cap`) by the dot-product rule: repeatedly
/// the pod type among `allowed` that fits (resources, anti-affinity) and whose request,
/// as shares of `cap`, has the largest dot product with the node's free room. Returns the
/// picked types in order (a type once per pod); `types` is not changed.
fn fill_bin(b: &Bin, cap: &Resources, types: &PodTypes, allowed: &[usize]) -> Vec<usize> {
    let v = |r: &Resources| {
        [
            r.cpu_millis as f64,
            r.memory_mib as f64,
            f64::from(r.pods),
            f64::from(r.gpus),
        ]
    };
    let capf = v(cap);
    let inv: Vec<f64> = capf
        .iter()
        .map(|&c| if c > 0.0 { 1.0 / (c * c) } else { 0.0 })
        .collect();
    let reqs: Vec<[f64; 4]> = allowed.iter().map(|&t| v(&types.req[t])).collect();
    let mut used = b.used;
    let mut groups = b.groups.clone();
    let mut left: Vec<usize> = allowed.iter().map(|&t| types.pods[t].len()).collect();
    let mut picks = Vec::new();
    loop {
        let u = v(&used);
        let free = [
            capf[0] - u[0],
            capf[1] - u[1],
            capf[2] - u[2],
            capf[3] - u[3],
        ];
        let mut best: Option<(f64, usize)> = None;
        for (i, &t) in allowed.iter().enumerate() {
            if left[i] == 0 {
                continue;
            }
            let r = &reqs[i];
            if r[0] > free[0] || r[1] > free[1] || r[2] > free[2] || r[3] > free[3] {
                continue;
            }
            if types.group[t].is_some_and(|g| groups.contains(&g)) {
                continue;
            }
            let score = r[0] * free[0] * inv[0]
                + r[1] * free[1] * inv[1]
                + r[2] * free[2] * inv[2]
                + r[3] * free[3] * inv[3];
            if best.is_none_or(|x| score > x.0) {
                best = Some((score, i));
            }
        }
        let Some((_, i)) = best else {
            break;
        };
        let t = allowed[i];
        used = used.saturating_add(&types.req[t]);
        if let Some(g) = types.group[t] {
            groups.insert(g);
        }
        left[i] -= 1;
        picks.push(t);
    }
    picks
}

/// How well request `r` fits the free room of a node using `used` of `cap`: the dot
/// product of `r`'s and the free room's shares of `cap` over CPU, memory and pod slots.
fn alignment(r: &Resources, used: &Resources, cap: &Resources) -> f64 {
    let term = |r: u64, u: u64, c: u64| {
        if c == 0 {
            0.0
        } else {
            (r as f64 / c as f64) * (c.saturating_sub(u) as f64 / c as f64)
        }
    };
    term(r.cpu_millis, used.cpu_millis, cap.cpu_millis)
        + term(r.memory_mib, used.memory_mib, cap.memory_mib)
        + term(u64::from(r.pods), u64::from(used.pods), u64::from(cap.pods))
}

/// Largest share of `cap` that `u` uses over CPU, memory, pod slots and GPUs.
fn load(u: &Resources, cap: &Resources) -> f64 {
    let f = |u: u64, a: u64| {
        if a == 0 {
            if u == 0 {
                0.0
            } else {
                f64::INFINITY
            }
        } else {
            u as f64 / a as f64
        }
    };
    f(u.cpu_millis, cap.cpu_millis)
        .max(f(u.memory_mib, cap.memory_mib))
        .max(f(u64::from(u.pods), u64::from(cap.pods)))
        .max(f(u64::from(u.gpus), u64::from(cap.gpus)))
}

/// A node being filled by the rounding.
#[derive(Clone)]
struct Bin {
    offer: usize,
    used: Resources,
    pods: Vec<usize>,
    groups: BTreeSet<usize>,
}

impl Bin {
    fn new(offer: usize) -> Self {
        Self {
            offer,
            used: Resources::default(),
            pods: Vec::new(),
            groups: BTreeSet::new(),
        }
    }
    fn fits(&self, r: &Resources, g: Option<usize>, cap: &Resources) -> bool {
        g.is_none_or(|g| !self.groups.contains(&g)) && self.used.saturating_add(r).fits_in(cap)
    }
    fn put(&mut self, p: usize, r: &Resources, g: Option<usize>) {
        self.used = self.used.saturating_add(r);
        self.pods.push(p);
        if let Some(g) = g {
            self.groups.insert(g);
        }
    }
}

/// Nodes [`improve`] tries to empty or merge (the least utilised ones).
const IMPROVE_CANDIDATES: usize = 256;

/// Local improvement of a plan, all constraints kept: the least utilised nodes (at most
/// [`IMPROVE_CANDIDATES`]) are emptied into the free room of the other nodes when all
/// their pods fit there, then pairs of them are merged when one node holding both pod
/// sets is cheaper than the two. Bounded by the candidate count; deterministic.
pub(crate) fn improve(prep: &Prepared<'_>, nodes: &mut Vec<(usize, Vec<usize>)>) {
    let req = |p: usize| prep.shapes[prep.pod_shape[p]].req;
    let group = |p: usize| prep.shapes[prep.pod_shape[p]].group;
    let mut bins: Vec<Bin> = nodes
        .iter()
        .map(|(o, ps)| {
            let mut b = Bin::new(*o);
            for &p in ps {
                b.put(p, &req(p), group(p));
            }
            b
        })
        .collect();
    let util = |b: &Bin| load(&b.used, &prep.offers[b.offer].allocatable);
    let mut cands: Vec<usize> = (0..bins.len()).collect();
    cands.sort_by(|&a, &b| util(&bins[a]).total_cmp(&util(&bins[b])).then(a.cmp(&b)));
    cands.truncate(IMPROVE_CANDIDATES);
    let mut gone = vec![false; bins.len()];
    // 1. Empty a node into the others' free room (fullest first).
    let mut by_fill: Vec<usize> = (0..bins.len()).collect();
    by_fill.sort_by(|&a, &b| util(&bins[b]).total_cmp(&util(&bins[a])).then(a.cmp(&b)));
    for &i in &cands {
        let mut pods = bins[i].pods.clone();
        pods.sort_by(|&a, &b| {
            let (ra, rb) = (req(a), req(b));
            rb.cpu_millis
                .cmp(&ra.cpu_millis)
                .then(rb.memory_mib.cmp(&ra.memory_mib))
                .then(a.cmp(&b))
        });
        let mut trial: BTreeMap<usize, Bin> = BTreeMap::new();
        let mut ok = true;
        for &p in &pods {
            let s = &prep.shapes[prep.pod_shape[p]];
            let slot = by_fill.iter().copied().find(|&j| {
                if j == i || gone[j] {
                    return false;
                }
                let b = trial.get(&j).unwrap_or(&bins[j]);
                let o = prep.offers[b.offer];
                s.eligible(o) && b.fits(&s.req, s.group, &o.allocatable)
            });
            match slot {
                Some(j) => {
                    let mut b = trial.remove(&j).unwrap_or_else(|| bins[j].clone());
                    b.put(p, &s.req, s.group);
                    trial.insert(j, b);
                }
                None => {
                    ok = false;
                    break;
                }
            }
        }
        if ok {
            for (j, b) in trial {
                bins[j] = b;
            }
            gone[i] = true;
            bins[i].pods.clear();
        }
    }
    // 2. Merge pairs of remaining candidates onto one cheaper node.
    let price = |o: usize| prep.offers[o].hourly_price;
    for a in 0..cands.len() {
        let i = cands[a];
        if gone[i] {
            continue;
        }
        let mut best: Option<(f64, usize, usize)> = None;
        for &j in &cands[a + 1..] {
            if gone[j] || bins[i].groups.iter().any(|g| bins[j].groups.contains(g)) {
                continue;
            }
            let both: Vec<usize> = bins[i].pods.iter().chain(&bins[j].pods).copied().collect();
            if let Some(o) = prep.cheapest_offer_for(&both) {
                let saving = price(bins[i].offer) + price(bins[j].offer) - price(o);
                if saving > 1e-9 && best.is_none_or(|b| saving > b.0) {
                    best = Some((saving, j, o));
                }
            }
        }
        if let Some((_, j, o)) = best {
            let moved = std::mem::take(&mut bins[j].pods);
            for p in moved {
                bins[i].put(p, &req(p), group(p));
            }
            bins[i].offer = o;
            gone[j] = true;
        }
    }
    *nodes = bins
        .into_iter()
        .filter(|b| !b.pods.is_empty())
        .map(|b| {
            let o = prep.cheapest_offer_for(&b.pods).unwrap_or(b.offer);
            (o, b.pods)
        })
        .collect();
}

/// First-fit-decreasing alone (the Karpenter-style baseline), with the trivial bound.
pub fn pack_ffd(pods: &[Pod], offers: &[NodeOffer]) -> Result<PackPlan> {
    pack(
        pods,
        offers,
        &PackOptions {
            ffd_only: true,
            ..PackOptions::default()
        },
    )
}

/// Checks every invariant of a plan: each pod placed exactly once, no node over its
/// allocatable in any dimension, node offers exist, capacity/arch/zone requirements,
/// anti-affinity, zone spread skew ≤ 1, and `cost_hourly` equals the node sum.
/// Returns a description of the first violation.
pub fn check_plan(pods: &[Pod], offers: &[NodeOffer], plan: &PackPlan) -> Result<(), String> {
    let by_id: BTreeMap<&str, &Pod> = pods.iter().map(|p| (p.id.as_str(), p)).collect();
    let mut seen: BTreeSet<&str> = BTreeSet::new();
    let mut spread: BTreeMap<&str, BTreeMap<&str, usize>> = BTreeMap::new();
    let mut cost = 0.0;
    for (n, node) in plan.nodes.iter().enumerate() {
        let offer = offers
            .iter()
            .find(|o| {
                o.instance_type == node.instance_type
                    && o.lifecycle == node.lifecycle
                    && o.az == node.az
                    && o.hourly_price == node.hourly_price
            })
            .ok_or_else(|| format!("node {n} ({}) matches no offer", node.instance_type))?;
        cost += offer.hourly_price;
        let mut used = Resources::default();
        let mut groups = BTreeSet::new();
        for id in &node.pods {
            let p = by_id
                .get(id.as_str())
                .ok_or_else(|| format!("node {n} holds unknown pod {id}"))?;
            if !seen.insert(id.as_str()) {
                return Err(format!("pod {id} placed twice"));
            }
            used = used.saturating_add(&p.request());
            if !p.capacity.allows(offer.lifecycle) {
                return Err(format!(
                    "pod {id} requires {:?}, node is {:?}",
                    p.capacity, offer.lifecycle
                ));
            }
            if p.arch.is_some_and(|a| a != offer.arch) {
                return Err(format!("pod {id} arch mismatch"));
            }
            if let Some(g) = &p.anti_affinity_group {
                if !groups.insert(g.as_str()) {
                    return Err(format!("anti-affinity group {g} twice on node {n}"));
                }
            }
            if let Some(g) = &p.az_spread_group {
                *spread
                    .entry(g.as_str())
                    .or_default()
                    .entry(offer.az.as_str())
                    .or_default() += 1;
            }
        }
        if !used.fits_in(&offer.allocatable) {
            return Err(format!(
                "node {n} ({}) over capacity: {used:?} > {:?}",
                node.instance_type, offer.allocatable
            ));
        }
    }
    if seen.len() != pods.len() {
        return Err(format!("{} of {} pods placed", seen.len(), pods.len()));
    }
    if (cost - plan.cost_hourly).abs() > 1e-6 * cost.max(1.0) {
        return Err(format!("cost {} != node sum {cost}", plan.cost_hourly));
    }
    if plan.lower_bound_hourly > plan.cost_hourly * (1.0 + 1e-9) + 1e-9 {
        return Err("lower bound above cost".into());
    }
    for (g, zones) in spread {
        let _ = g;
        let (mn, mx) = zones
            .values()
            .fold((usize::MAX, 0), |(a, b), &c| (a.min(c), b.max(c)));
        // Only zones actually used are counted; the dealing guarantees ≤ 1 skew.
        if mx > mn + 1 && zones.len() > 1 {
            return Err(format!("zone spread skew {mn}..{mx}"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn res(cpu_millis: u64, memory_mib: u64) -> Resources {
        Resources {
            cpu_millis,
            memory_mib,
            gpus: 0,
            pods: 1,
        }
    }

    #[test]
    fn from_the_portfolio_size_the_cheaper_plan_and_the_larger_bound_of_both_methods_win() {
        // Unconstrained pods (column generation's path) in three shapes that pack unevenly,
        // on three instance sizes: big enough for the fluid path to be tried as well.
        let offer = |name: &str, vcpu: u64, price: f64| NodeOffer {
            instance_type: name.into(),
            lifecycle: Lifecycle::OnDemand,
            az: "a".into(),
            hourly_price: price,
            arch: Arch::X86_64,
            allocatable: Resources {
                cpu_millis: vcpu * 1000 - 100,
                memory_mib: vcpu * 4096 - 512,
                gpus: 0,
                pods: 58,
            },
        };
        let offers = vec![
            offer("m5.large", 2, 0.096),
            offer("m5.xlarge", 4, 0.192),
            offer("m5.4xlarge", 16, 0.768),
        ];
        let pods: Vec<Pod> = (0..PORTFOLIO_MIN_PODS)
            .map(|i| match i % 3 {
                0 => Pod::simple(format!("p{i:04}"), 700, 1500),
                1 => Pod::simple(format!("p{i:04}"), 1300, 2600),
                _ => Pod::simple(format!("p{i:04}"), 300, 5000),
            })
            .collect();
        // A tight column-generation budget: its Farley bound stays loose.
        let opts = PackOptions {
            max_colgen_iterations: 1,
            pricing_node_limit: 10,
            max_new_columns_per_iteration: 5,
            max_rounding_solves: 50,
            residual_colgen_iterations: 1,
            ffd_only: false,
        };
        let plan = pack(&pods, &offers, &opts).expect("plan");
        check_plan(&pods, &offers, &plan).expect("feasible");
        let prep = Prepared::new(&pods, &offers).expect("prepared");
        let cg = colgen::solve(&prep, &opts, &ffd::solve(&prep)).expect("column generation");
        let fl = fluid_path(&prep).expect("fluid path").expect("fluid LP");
        let (cg_cost, fl_cost) = (prep.cost(&cg.nodes), prep.cost(&fl.nodes));
        assert!(plan.cost_hourly <= cg_cost.min(fl_cost) + 1e-9, "{plan:?}");
        let bound = cg.lower_bound.max(fl.lower_bound);
        // The instance is one where the fluid path wins on both counts.
        assert!(fl_cost < cg_cost && fl.lower_bound > cg.lower_bound);
        assert!(
            plan.lower_bound_hourly + 1e-9 >= bound.min(plan.cost_hourly),
            "{} vs {bound}",
            plan.lower_bound_hourly
        );
        assert!(plan.lower_bound_hourly <= plan.cost_hourly + 1e-9);
        // One pod fewer: column generation alone (its own bound, its own plan).
        let small = pack(&pods[1..], &offers, &opts).expect("plan");
        assert!(!small
            .stats
            .integer_status
            .contains("bound: the larger of both"));
    }

    #[test]
    fn alignment_prefers_the_node_with_room_in_the_pods_heavy_resource() {
        let cap = Resources {
            cpu_millis: 8000,
            memory_mib: 16384,
            gpus: 0,
            pods: 100,
        };
        // What two nodes use: one has CPU left, the other memory; both hold either pod.
        let cpu_left = res(2000, 15000);
        let mem_left = res(6000, 4096);
        let cpu_heavy = res(1000, 512);
        let mem_heavy = res(250, 4096);
        assert!(alignment(&cpu_heavy, &cpu_left, &cap) > alignment(&cpu_heavy, &mem_left, &cap));
        assert!(alignment(&mem_heavy, &mem_left, &cap) > alignment(&mem_heavy, &cpu_left, &cap));
        // A full node has no room in any direction.
        assert_eq!(alignment(&cpu_heavy, &cap, &cap), 0.0);
    }

    #[test]
    fn zone_bound_aggregates_share_one_per_node_budget() {
        let offer = |l: Lifecycle, az: &str| NodeOffer {
            instance_type: "m5.4xlarge".into(),
            lifecycle: l,
            az: az.into(),
            hourly_price: if l == Lifecycle::Spot { 0.3 } else { 0.768 },
            arch: Arch::X86_64,
            allocatable: Resources {
                cpu_millis: 15_900,
                memory_mib: 65_000,
                gpus: 0,
                pods: 58,
            },
        };
        let offers = vec![
            offer(Lifecycle::Spot, "a"),
            offer(Lifecycle::OnDemand, "a"),
            offer(Lifecycle::Spot, "b"),
            offer(Lifecycle::OnDemand, "b"),
        ];
        // Three deployments spread over two zones, replicas on any capacity or on spot
        // only: two aggregated shapes per zone, pods of three groups in each.
        let mut pods = Vec::new();
        for g in 0..3 {
            for k in 0..4 {
                let mut p = Pod::simple(format!("d{g}-{k}"), 500, 1024);
                p.anti_affinity_group = Some(format!("d{g}"));
                p.az_spread_group = Some(format!("d{g}"));
                if k >= 2 {
                    p.capacity = CapacityReq::Spot;
                }
                pods.push(p);
            }
        }
        let prep = Prepared::new(&pods, &offers).expect("valid");
        let relaxed = without_placement_constraints(&pods);
        let rprep = Prepared::new(&relaxed, &offers).expect("valid");
        let z = zone_aggregated(&prep, &rprep);
        let limited: Vec<&Shape> = z.shapes.iter().filter(|s| s.per_node.is_some()).collect();
        assert_eq!(limited.len(), 4, "two capacities × two zones: {limited:?}");
        assert!(limited.iter().all(|s| s.per_node == Some(3)));
        // Each aggregate alone would allow 3 per node, two of them 6: together only 3.
        assert_eq!(z.per_node_total, Some(3));
        assert_eq!(prep.per_node_total, None);
    }

    #[test]
    fn cheapest_offer_for_honours_every_pods_capacity_arch_and_zone() {
        let offer = |t: &str, l: Lifecycle, az: &str, arch: Arch, price: f64, cpu: u64| NodeOffer {
            instance_type: t.into(),
            lifecycle: l,
            az: az.into(),
            hourly_price: price,
            arch,
            allocatable: Resources {
                cpu_millis: cpu,
                memory_mib: 16_000,
                gpus: 0,
                pods: 58,
            },
        };
        let offers = vec![
            offer("small", Lifecycle::Spot, "a", Arch::X86_64, 0.05, 1_900),
            offer("spot-a", Lifecycle::Spot, "a", Arch::X86_64, 0.1, 3_900),
            offer("arm-b", Lifecycle::Spot, "b", Arch::Arm64, 0.12, 3_900),
            offer("od-a", Lifecycle::OnDemand, "a", Arch::X86_64, 0.2, 3_900),
            offer("od-b", Lifecycle::OnDemand, "b", Arch::X86_64, 0.3, 3_900),
        ];
        let mut pods = vec![
            Pod::simple("any", 1_500, 512),
            Pod::simple("od", 1_000, 512),
            Pod::simple("arm", 500, 512),
            Pod::simple("zone-a", 500, 512),
            Pod::simple("zone-b", 500, 512),
        ];
        pods[1].capacity = CapacityReq::OnDemand;
        pods[2].arch = Some(Arch::Arm64);
        // Two replicas of one spread group: one per zone (ids in order: a, then b).
        pods[3].az_spread_group = Some("g".into());
        pods[4].az_spread_group = Some("g".into());
        let prep = Prepared::new(&pods, &offers).expect("valid");
        let name = |ps: &[usize]| {
            prep.cheapest_offer_for(ps)
                .map(|o| prep.offers[o].instance_type.as_str())
        };
        // Together the pods outgrow the small node: the cheapest that holds them all.
        assert_eq!(name(&[0]), Some("small"));
        assert_eq!(name(&[0, 3]), Some("spot-a"));
        assert_eq!(name(&[0, 1]), Some("od-a"));
        assert_eq!(name(&[2]), Some("arm-b"));
        assert_eq!(name(&[1, 4]), Some("od-b"));
        // No offer is both arm and on-demand; no node is in two zones.
        assert_eq!(name(&[1, 2]), None);
        assert_eq!(name(&[3, 4]), None);
    }
}
