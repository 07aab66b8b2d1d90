//! Column generation over node patterns (Gilmore–Gomory), LP bound, integer dive.
//!
//! Master LP (covering form), one row per request shape `s` with demand `d_s`:
//!
//! ```text
//! min Σ_j c_j x_j   s.t.   Σ_j a_sj x_j ≥ d_s  ∀s,   x ≥ 0
//! ```
//!
//! where column `j` is a pattern: an offer class (instance type × lifecycle × zone,
//! deduplicated to the cheapest offer per capacity/eligibility signature) and how many
//! pods of each shape one node of it holds (`a_sj ≤ d_s`; at most one pod per
//! anti-affinity group). Pricing for a class with duals `π` is the bounded
//! multi-dimensional knapsack `max Σ π_s a_s` over CPU, memory, GPU and pod slots,
//! solved by depth-first branch and bound with a per-dimension fractional bound.
//!
//! Lower bound (Farley): for any `π ≥ 0`, with `θ = min(1, min_j c_j / π·a_j)` over *all*
//! patterns, `θ π` is dual feasible, so `θ Σ_s d_s π_s` bounds every plan from below. The
//! knapsack returns an upper bound on `max π·a` per class even when its node budget is
//! hit, so the bound stays valid on any budget. The LP is solved by Clarabel (pure-Rust
//! interior point) through good_lp; its duals are central rather than vertex duals,
//! which damps the dual oscillation column generation is known for.

// Index loops over the fixed DIMS resource axes read closer to the formulas.
#![allow(clippy::needless_range_loop)]

use std::collections::BTreeSet;

use good_lp::{
    clarabel, variable, DualValues, Expression, ProblemVariables, Solution, SolutionWithDual,
    SolverModel, Variable,
};

use crate::catalog::Resources;
use crate::{EngineError, Result};

use super::{ffd, PackOptions, Prepared};

pub(crate) struct Outcome {
    /// (offer index, pod indices) per node.
    pub nodes: Vec<(usize, Vec<usize>)>,
    pub lower_bound: f64,
    pub converged: bool,
    pub iterations: u32,
    pub columns: usize,
    pub classes: usize,
    pub lp_solves: u32,
    pub mip_columns: usize,
    pub mip_nodes: u64,
    pub mip_status: String,
    pub rmp_objective: f64,
}

const DIMS: usize = 4;

fn dims(r: &Resources) -> [u64; DIMS] {
    [
        r.cpu_millis,
        r.memory_mib,
        u64::from(r.gpus),
        u64::from(r.pods),
    ]
}

/// Cheapest offer per (allocatable, eligible-shape set), minus dominated ones.
struct Class {
    offer: usize,
    price: f64,
    cap: [u64; DIMS],
    eligible: Vec<bool>,
    /// Max pods of each shape on an empty node (0 if ineligible; 1 with anti-affinity).
    fit: Vec<u32>,
}

#[derive(Clone)]
struct Column {
    class: usize,
    /// (shape, count), sorted by shape, counts > 0.
    counts: Vec<(usize, u32)>,
    cost: f64,
}

/// Per dimension `k`: every node of offer `o` costs at least `(c_o / alloc_k(o)) × used_k`,
/// so `Σ_s d_s req_sk min_{o eligible for s} c_o / alloc_k(o)` bounds any plan. The
/// largest over the four dimensions is returned. Valid without any LP.
pub(crate) fn trivial_lower_bound(prep: &Prepared<'_>) -> f64 {
    let mut best: f64 = 0.0;
    for k in 0..DIMS {
        let mut total = 0.0;
        for s in &prep.shapes {
            let req = dims(&s.req)[k];
            if req == 0 {
                continue;
            }
            let rate = prep
                .offers
                .iter()
                .filter(|o| s.eligible(o))
                .map(|o| o.hourly_price / dims(&o.allocatable)[k].max(1) as f64)
                .fold(f64::INFINITY, f64::min);
            if rate.is_finite() {
                total += rate * req as f64 * s.pods.len() as f64;
            }
        }
        best = best.max(total);
    }
    best
}

fn max_fit(cap: &[u64; DIMS], req: &[u64; DIMS]) -> u64 {
    (0..DIMS)
        .filter(|&k| req[k] > 0)
        .map(|k| cap[k] / req[k])
        .min()
        .unwrap_or(u64::MAX)
}

fn build_classes(prep: &Prepared<'_>, demand: &[u32]) -> Vec<Class> {
    let mut seen: BTreeSet<([u64; DIMS], Vec<bool>)> = BTreeSet::new();
    let mut classes: Vec<Class> = Vec::new();
    for (oi, o) in prep.offers.iter().enumerate() {
        let eligible: Vec<bool> = prep.shapes.iter().map(|s| s.eligible(o)).collect();
        if !eligible.iter().any(|&e| e) {
            continue;
        }
        let cap = dims(&o.allocatable);
        if !seen.insert((cap, eligible.clone())) {
            continue; // a cheaper offer with the same signature came first
        }
        let fit = prep
            .shapes
            .iter()
            .enumerate()
            .map(|(s, sh)| {
                if !eligible[s] {
                    return 0;
                }
                let mut f = max_fit(&cap, &dims(&sh.req)).min(u64::from(demand[s]));
                if sh.group.is_some() {
                    f = f.min(1);
                }
                if let Some(m) = sh.per_node {
                    f = f.min(u64::from(m));
                }
                u32::try_from(f).unwrap_or(u32::MAX)
            })
            .collect();
        classes.push(Class {
            offer: oi,
            price: o.hourly_price,
            cap,
            eligible,
            fit,
        });
    }
    // Drop classes another class beats on price, capacity and eligibility at once:
    // any pattern of the dominated class is a no-dearer pattern of the dominating one.
    let n = classes.len();
    let mut keep = vec![true; n];
    for a in 0..n {
        for b in 0..n {
            if a == b || !keep[b] {
                continue;
            }
            let (ca, cb) = (&classes[a], &classes[b]);
            if cb.price <= ca.price
                && (0..DIMS).all(|k| cb.cap[k] >= ca.cap[k])
                && ca
                    .eligible
                    .iter()
                    .zip(&cb.eligible)
                    .all(|(&ea, &eb)| !ea || eb)
            {
                keep[a] = false;
                break;
            }
        }
    }
    classes
        .into_iter()
        .zip(keep)
        .filter_map(|(c, k)| k.then_some(c))
        .collect()
}

struct Item {
    shape: usize,
    value: f64,
    ub: u32,
    req: [u64; DIMS],
    group: Option<usize>,
}

/// Bounded multi-dimensional knapsack by DFS branch and bound.
struct Knapsack<'a> {
    items: &'a [Item],
    orders: Vec<(usize, Vec<usize>)>,
    node_limit: u64,
    nodes: u64,
    aborted: bool,
    threshold: f64,
    best_val: f64,
    best: Vec<u32>,
    cur: Vec<u32>,
    group_used: Vec<bool>,
    /// Lagrange multipliers per dimension (USD per unit of resource): any `λ ≥ 0`
    /// gives the valid bound `λ·rem + Σ_j ub_j (v_j − λ·req_j)⁺`, which, unlike the
    /// single-dimension bounds, sees CPU and memory binding at once.
    lambda: [f64; DIMS],
}

impl<'a> Knapsack<'a> {
    fn new(items: &'a [Item], n_groups: usize, threshold: f64, node_limit: u64) -> Self {
        let mut orders = Vec::new();
        for k in 0..DIMS {
            if items.iter().all(|it| it.req[k] == 0) {
                continue;
            }
            let mut ord: Vec<usize> = (0..items.len()).collect();
            // Zero-requirement items first (infinite density), then value per unit of k.
            ord.sort_by(|&a, &b| {
                let da = density(&items[a], k);
                let db = density(&items[b], k);
                db.total_cmp(&da).then(a.cmp(&b))
            });
            orders.push((k, ord));
        }
        Self {
            items,
            orders,
            node_limit,
            nodes: 0,
            aborted: false,
            threshold,
            best_val: 0.0,
            best: vec![0; items.len()],
            cur: vec![0; items.len()],
            group_used: vec![false; n_groups],
            lambda: [0.0; DIMS],
        }
    }

    fn lagrange(&self, i: usize, rem: &[u64; DIMS], lambda: &[f64; DIMS]) -> f64 {
        let mut v: f64 = (0..DIMS).map(|k| lambda[k] * rem[k] as f64).sum();
        for (d, it) in self.items[i..].iter().enumerate() {
            let net = it.value - (0..DIMS).map(|k| lambda[k] * it.req[k] as f64).sum::<f64>();
            if net > 0.0 {
                v += net * f64::from(self.avail(i + d));
            }
        }
        v
    }

    /// Picks λ by projected subgradient descent (Polyak steps towards the greedy
    /// incumbent) on the root Lagrangian dual, in capacity-normalised units. Any λ is
    /// valid, so a deterministic fixed iteration count is enough.
    fn tune_lambda(&mut self, cap: &[u64; DIMS]) {
        let target = self.greedy(cap);
        let capf: Vec<f64> = cap.iter().map(|&c| (c as f64).max(1.0)).collect();
        let mut mu = [0.0f64; DIMS]; // λ_k = mu_k / cap_k
        let to_lambda = |mu: &[f64; DIMS]| {
            let mut l = [0.0; DIMS];
            for k in 0..DIMS {
                l[k] = mu[k] / capf[k];
            }
            l
        };
        let mut best = self.lagrange(0, cap, &[0.0; DIMS]);
        let mut best_mu = mu;
        for _ in 0..60 {
            let l = to_lambda(&mu);
            let f = self.lagrange(0, cap, &l);
            if f < best {
                best = f;
                best_mu = mu;
            }
            let mut g = [0.0f64; DIMS];
            for k in 0..DIMS {
                g[k] = 1.0;
            }
            for it in self.items {
                let net = it.value - (0..DIMS).map(|k| l[k] * it.req[k] as f64).sum::<f64>();
                if net > 0.0 {
                    for k in 0..DIMS {
                        g[k] -= f64::from(it.ub) * it.req[k] as f64 / capf[k];
                    }
                }
            }
            let norm: f64 = g.iter().map(|x| x * x).sum();
            if norm < 1e-18 {
                break;
            }
            let step = ((f - target).max(1e-9 * f.abs().max(1e-12))) / norm;
            for k in 0..DIMS {
                mu[k] = (mu[k] - step * g[k]).max(0.0);
            }
        }
        self.lambda = to_lambda(&best_mu);
    }

    /// Greedy fill in item order: a quick incumbent value.
    fn greedy(&self, cap: &[u64; DIMS]) -> f64 {
        let mut rem = *cap;
        let mut v = 0.0;
        let mut used = vec![false; self.group_used.len()];
        for it in self.items {
            if it.group.is_some_and(|g| used[g]) {
                continue;
            }
            let m = u64::from(it.ub).min(max_fit(&rem, &it.req));
            if m == 0 {
                continue;
            }
            let m = if it.group.is_some() { 1 } else { m };
            for k in 0..DIMS {
                rem[k] -= it.req[k] * m;
            }
            if let Some(g) = it.group {
                used[g] = true;
            }
            v += it.value * m as f64;
        }
        v
    }

    fn avail(&self, j: usize) -> u32 {
        let it = &self.items[j];
        if it.group.is_some_and(|g| self.group_used[g]) {
            0
        } else {
            it.ub
        }
    }

    /// Min over dimensions of the fractional single-dimension knapsack over items ≥ i.
    fn bound(&self, i: usize, rem: &[u64; DIMS]) -> f64 {
        let mut best = self.items[i..]
            .iter()
            .enumerate()
            .map(|(d, it)| it.value * f64::from(self.avail(i + d)))
            .sum::<f64>();
        for (k, ord) in &self.orders {
            let mut cap = rem[*k] as f64;
            let mut v = 0.0;
            for &j in ord {
                if j < i {
                    continue;
                }
                let ub = f64::from(self.avail(j));
                if ub == 0.0 {
                    continue;
                }
                let it = &self.items[j];
                let r = it.req[*k] as f64;
                if r == 0.0 {
                    v += it.value * ub;
                    continue;
                }
                if cap <= 0.0 {
                    break;
                }
                let take = (cap / r).min(ub);
                v += take * it.value;
                cap -= take * r;
            }
            best = best.min(v);
        }
        best.min(self.lagrange(i, rem, &self.lambda))
    }

    fn dfs(&mut self, i: usize, rem: [u64; DIMS], val: f64) {
        if self.nodes >= self.node_limit {
            self.aborted = true;
            return;
        }
        self.nodes += 1;
        if val > self.best_val {
            self.best_val = val;
            self.best.clone_from(&self.cur);
        }
        if i == self.items.len() {
            return;
        }
        let floor = self.best_val.max(self.threshold);
        if val + self.bound(i, &rem) <= floor * (1.0 + 1e-9) + 1e-12 {
            return;
        }
        let it = &self.items[i];
        let m = u64::from(self.avail(i)).min(max_fit(&rem, &it.req));
        let (req, value, group) = (it.req, it.value, it.group);
        for c in (0..=m).rev() {
            let mut r = rem;
            for k in 0..DIMS {
                r[k] -= req[k] * c;
            }
            let c32 = u32::try_from(c).unwrap_or(u32::MAX);
            self.cur[i] = c32;
            let set_group = c > 0 && group.is_some();
            if let (true, Some(g)) = (set_group, group) {
                self.group_used[g] = true;
            }
            self.dfs(i + 1, r, val + value * c as f64);
            if let (true, Some(g)) = (set_group, group) {
                self.group_used[g] = false;
            }
            if self.aborted {
                break;
            }
        }
        self.cur[i] = 0;
    }
}

fn density(it: &Item, k: usize) -> f64 {
    if it.req[k] == 0 {
        f64::INFINITY
    } else {
        it.value / it.req[k] as f64
    }
}

/// Exact LP relaxation of the pricing knapsack (microlp simplex): the tightest bound
/// a fractional argument gives, used when branch and bound runs out of nodes.
fn knapsack_lp_bound(items: &[Item], cap: &[u64; DIMS]) -> Option<f64> {
    use microlp::{ComparisonOp, OptimizationDirection, Problem};
    let mut p = Problem::new(OptimizationDirection::Maximize);
    let vars: Vec<microlp::Variable> = items
        .iter()
        .map(|it| p.add_var(it.value, (0.0, f64::from(it.ub))))
        .collect();
    for k in 0..DIMS {
        let terms: Vec<(microlp::Variable, f64)> = items
            .iter()
            .zip(&vars)
            .filter(|(it, _)| it.req[k] > 0)
            .map(|(it, &v)| (v, it.req[k] as f64 / cap[k].max(1) as f64))
            .collect();
        if !terms.is_empty() {
            p.add_constraint(terms.as_slice(), ComparisonOp::Le, 1.0);
        }
    }
    let sol = p.solve().ok()?.into_solution().ok()?;
    // Simplex tolerance: pad so the bound stays an upper bound.
    Some(sol.objective() * (1.0 + 1e-7) + 1e-12)
}

/// Prices one class. Returns (improving pattern if any, its value, upper bound on
/// `max π·a` over the class's patterns).
fn price(
    prep: &Prepared<'_>,
    class: &Class,
    duals: &[f64],
    demand: &[u32],
    node_limit: u64,
) -> (Option<Vec<(usize, u32)>>, f64, f64) {
    let mut items: Vec<Item> = Vec::new();
    // Interior-point duals leave tiny positive values on slack rows; such items only
    // blow up the search. They are dropped and their whole value added to the bound.
    let negligible = class.price * 1e-6;
    let mut dropped = 0.0;
    for (s, sh) in prep.shapes.iter().enumerate() {
        let ub = class.fit[s].min(demand[s]);
        if ub == 0 || duals[s] <= 0.0 {
            continue;
        }
        if duals[s] < negligible {
            dropped += duals[s] * f64::from(ub);
            continue;
        }
        items.push(Item {
            shape: s,
            value: duals[s],
            ub,
            req: dims(&sh.req),
            group: sh.group,
        });
    }
    if items.is_empty() {
        return (None, 0.0, dropped);
    }
    // Greedy order: value per unit of normalised size, so the first dive is a good
    // incumbent.
    items.sort_by(|a, b| {
        let size = |it: &Item| {
            (0..DIMS)
                .map(|k| it.req[k] as f64 / class.cap[k].max(1) as f64)
                .sum::<f64>()
                .max(1e-12)
        };
        (b.value / size(b))
            .total_cmp(&(a.value / size(a)))
            .then(a.shape.cmp(&b.shape))
    });
    let mut ks = Knapsack::new(&items, prep.n_groups, class.price, node_limit);
    if ks.bound(0, &class.cap) + dropped <= class.price * (1.0 + 1e-9) {
        return (None, 0.0, class.price);
    }
    ks.tune_lambda(&class.cap);
    let root = ks.bound(0, &class.cap);
    if root <= class.price * (1.0 + 1e-9) {
        return (None, 0.0, root + dropped);
    }
    ks.dfs(0, class.cap, 0.0);
    let upper = dropped
        + if ks.aborted {
            knapsack_lp_bound(&items, &class.cap)
                .unwrap_or(root)
                .min(root)
                .max(ks.best_val)
        } else {
            ks.best_val.max(class.price)
        };
    if ks.best_val > class.price * (1.0 + 1e-9) + 1e-12 {
        let mut counts: Vec<(usize, u32)> = items
            .iter()
            .zip(&ks.best)
            .filter(|(_, &c)| c > 0)
            .map(|(it, &c)| (it.shape, c))
            .collect();
        counts.sort();
        (Some(counts), ks.best_val, upper)
    } else {
        (None, ks.best_val, upper)
    }
}

/// Solves the restricted master over the active columns. Returns (x per column, 0 for
/// inactive ones; π per shape).
fn solve_master(
    cols: &[Column],
    active: &[bool],
    demand: &[u32],
    n_shapes: usize,
) -> Result<(Vec<f64>, Vec<f64>)> {
    let mut vars = ProblemVariables::new();
    let idx: Vec<usize> = (0..cols.len()).filter(|&j| active[j]).collect();
    let xs: Vec<Variable> = idx.iter().map(|_| vars.add(variable().min(0.0))).collect();
    let objective: Expression = idx.iter().zip(&xs).map(|(&j, &x)| cols[j].cost * x).sum();
    let mut rows: Vec<Expression> = vec![Expression::from(0.0); n_shapes];
    for (&j, &x) in idx.iter().zip(&xs) {
        for &(s, a) in &cols[j].counts {
            let a = a.min(demand[s]);
            if a > 0 {
                rows[s] += f64::from(a) * x;
            }
        }
    }
    let mut model = vars.minimise(objective).using(clarabel);
    let mut refs = Vec::new();
    for (s, row) in rows.into_iter().enumerate() {
        if demand[s] > 0 {
            refs.push((s, model.add_constraint(row.geq(f64::from(demand[s])))));
        }
    }
    let mut sol = model
        .solve()
        .map_err(|e| EngineError::Solver(e.to_string()))?;
    let mut x = vec![0.0; cols.len()];
    for (&j, &v) in idx.iter().zip(&xs) {
        x[j] = sol.value(v).max(0.0);
    }
    let dual = sol.compute_dual();
    let mut pi = vec![0.0; n_shapes];
    for (s, r) in refs {
        let d = dual.dual(r);
        pi[s] = if d.is_finite() { d.max(0.0) } else { 0.0 };
    }
    if x.iter().any(|v| !v.is_finite()) {
        return Err(EngineError::Solver("non-finite LP solution".into()));
    }
    Ok((x, pi))
}

/// Reduced cost of column `c` under duals `pi` (coefficients capped at demand).
fn reduced_cost(c: &Column, pi: &[f64], demand: &[u32]) -> f64 {
    c.cost
        - c.counts
            .iter()
            .map(|&(s, a)| pi[s] * f64::from(a.min(demand[s])))
            .sum::<f64>()
}

/// (relative reduced cost, class, pattern) of a priced column.
type NewColumn = (f64, usize, Vec<(usize, u32)>);

struct State<'p, 'a> {
    prep: &'p Prepared<'a>,
    opts: &'p PackOptions,
    classes: Vec<Class>,
    cols: Vec<Column>,
    /// Columns in the LP master. Columns priced far out are parked to keep the
    /// interior-point solves small; `keep` columns (feasibility basis, FFD warm start)
    /// are never parked.
    active: Vec<bool>,
    keep: Vec<bool>,
    colset: BTreeSet<(usize, Vec<(usize, u32)>)>,
    lp_solves: u32,
    iterations: u32,
    /// Objective of the last restricted master solved.
    last_rmp: f64,
}

impl State<'_, '_> {
    fn add(&mut self, class: usize, counts: Vec<(usize, u32)>, keep: bool) -> Option<usize> {
        if counts.is_empty() {
            return None;
        }
        if !self.colset.insert((class, counts.clone())) {
            let j = self
                .cols
                .iter()
                .position(|c| c.class == class && c.counts == counts)?;
            self.keep[j] |= keep;
            self.active[j] = true;
            return Some(j);
        }
        let cost = self.classes[class].price;
        self.cols.push(Column {
            class,
            counts,
            cost,
        });
        self.active.push(true);
        self.keep.push(keep);
        Some(self.cols.len() - 1)
    }

    /// Runs up to `rounds` pricing rounds on `demand`. Returns (x, π, Farley bound,
    /// converged).
    fn colgen(&mut self, demand: &[u32], rounds: u32) -> Result<(Vec<f64>, Vec<f64>, f64, bool)> {
        let r = self.colgen_inner(demand, rounds)?;
        self.last_rmp = self.cols.iter().zip(&r.0).map(|(c, v)| c.cost * v).sum();
        Ok(r)
    }

    fn colgen_inner(
        &mut self,
        demand: &[u32],
        rounds: u32,
    ) -> Result<(Vec<f64>, Vec<f64>, f64, bool)> {
        let n = self.prep.shapes.len();
        let (mut x, mut pi) = solve_master(&self.cols, &self.active, demand, n)?;
        self.lp_solves += 1;
        let mut lb: f64 = 0.0;
        let mut converged = false;
        for _ in 0..rounds {
            self.iterations += 1;
            let dpi: f64 = (0..n).map(|s| f64::from(demand[s]) * pi[s]).sum();
            let mut theta: f64 = 1.0;
            let mut new: Vec<NewColumn> = Vec::new();
            for (ci, class) in self.classes.iter().enumerate() {
                let (pattern, value, upper) =
                    price(self.prep, class, &pi, demand, self.opts.pricing_node_limit);
                if upper > class.price {
                    theta = theta.min(class.price / upper);
                }
                if let Some(p) = pattern {
                    new.push(((class.price - value) / class.price.max(1e-12), ci, p));
                }
            }
            if new.is_empty() && theta < 1.0 {
                // Converged as far as the node budget saw: re-price the classes whose
                // bound is still open with 20× the budget, to close the Farley bound.
                theta = 1.0;
                for (ci, class) in self.classes.iter().enumerate() {
                    let (pattern, value, upper) = price(
                        self.prep,
                        class,
                        &pi,
                        demand,
                        self.opts.pricing_node_limit.saturating_mul(20),
                    );
                    if upper > class.price {
                        theta = theta.min(class.price / upper);
                    }
                    if let Some(p) = pattern {
                        new.push(((class.price - value) / class.price.max(1e-12), ci, p));
                    }
                }
            }
            lb = lb.max(theta * dpi);
            if new.is_empty() {
                converged = true;
                break;
            }
            // Park columns priced well out of the current solution (rc > 25 % of cost
            // and unused); they stay available to the integer step.
            for j in 0..self.cols.len() {
                if self.active[j]
                    && !self.keep[j]
                    && x[j] < 1e-3
                    && reduced_cost(&self.cols[j], &pi, demand) > 0.25 * self.cols[j].cost
                {
                    self.active[j] = false;
                }
            }
            new.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
            let before = self.cols.len();
            let mut added = 0;
            for (_, ci, p) in new {
                if added >= self.opts.max_new_columns_per_iteration {
                    break;
                }
                if self.add(ci, p, false).is_some() {
                    added += 1;
                }
            }
            if self.cols.len() == before {
                break; // only known columns: duals too inexact to progress
            }
            let (nx, npi) = solve_master(&self.cols, &self.active, demand, n)?;
            self.lp_solves += 1;
            x = nx;
            pi = npi;
        }
        Ok((x, pi, lb, converged))
    }
}

/// Vertex LP over `cols` on residual demand `resid` (microlp simplex: a vertex has at
/// most one positive column per row, which is what rounding wants).
fn vertex_lp(cols: &[Column], resid: &[u32]) -> Option<Vec<f64>> {
    use microlp::{ComparisonOp, OptimizationDirection, Problem};
    let mut p = Problem::new(OptimizationDirection::Minimize);
    let useful: Vec<bool> = cols
        .iter()
        .map(|c| c.counts.iter().any(|&(s, _)| resid[s] > 0))
        .collect();
    let vars: Vec<Option<microlp::Variable>> = cols
        .iter()
        .zip(&useful)
        .map(|(c, &u)| u.then(|| p.add_var(c.cost, (0.0, f64::INFINITY))))
        .collect();
    let mut rows: Vec<Vec<(microlp::Variable, f64)>> = vec![Vec::new(); resid.len()];
    for (c, v) in cols.iter().zip(&vars) {
        if let Some(v) = v {
            for &(s, a) in &c.counts {
                if resid[s] > 0 {
                    rows[s].push((*v, f64::from(a.min(resid[s]))));
                }
            }
        }
    }
    for (s, terms) in rows.iter().enumerate() {
        if resid[s] > 0 {
            p.add_constraint(terms.as_slice(), ComparisonOp::Ge, f64::from(resid[s]));
        }
    }
    let sol = p.solve().ok()?.into_solution().ok()?;
    Some(
        vars.iter()
            .map(|v| v.map_or(0.0, |v| sol.var_value(v)))
            .collect(),
    )
}

/// Column generation + integer step. `warm` is the FFD plan, used as initial columns
/// and as the integer step's starting incumbent.
pub(crate) fn solve(
    prep: &Prepared<'_>,
    opts: &PackOptions,
    warm: &[(usize, Vec<usize>)],
) -> Result<Outcome> {
    let n = prep.shapes.len();
    let demand: Vec<u32> = prep
        .shapes
        .iter()
        .map(|s| u32::try_from(s.pods.len()).unwrap_or(u32::MAX))
        .collect();
    let classes = build_classes(prep, &demand);
    let mut st = State {
        prep,
        opts,
        classes,
        cols: Vec::new(),
        active: Vec::new(),
        keep: Vec::new(),
        colset: BTreeSet::new(),
        lp_solves: 0,
        iterations: 0,
        last_rmp: 0.0,
    };
    // Initial columns: per shape the class with the lowest price per pod (so the
    // master is feasible), and the FFD nodes mapped to the cheapest class holding them.
    for s in 0..n {
        let best = st
            .classes
            .iter()
            .enumerate()
            .filter(|(_, c)| c.fit[s] > 0)
            .min_by(|(_, a), (_, b)| {
                (a.price / f64::from(a.fit[s])).total_cmp(&(b.price / f64::from(b.fit[s])))
            })
            .map(|(i, c)| (i, c.fit[s]));
        match best {
            Some((ci, f)) => {
                st.add(ci, vec![(s, f)], true);
            }
            None => {
                return Err(EngineError::Solver(format!("shape {s} has no class")));
            }
        }
    }
    for (_, pods) in warm {
        let mut counts: Vec<(usize, u32)> = Vec::new();
        for &p in pods {
            let s = prep.pod_shape[p];
            match counts.iter_mut().find(|(cs, _)| *cs == s) {
                Some(e) => e.1 += 1,
                None => counts.push((s, 1)),
            }
        }
        counts.sort();
        let used = counts.iter().fold([0u64; DIMS], |mut acc, &(s, c)| {
            let r = dims(&prep.shapes[s].req);
            for k in 0..DIMS {
                acc[k] += r[k] * u64::from(c);
            }
            acc
        });
        let class = st.classes.iter().position(|cl| {
            counts
                .iter()
                .all(|&(s, c)| cl.eligible[s] && c <= cl.fit[s].max(1))
                && (0..DIMS).all(|k| used[k] <= cl.cap[k])
        });
        if let Some(ci) = class {
            st.add(ci, counts, true);
        }
    }

    let (_x, pi, lb, converged) = st.colgen(&demand, opts.max_colgen_iterations)?;
    let pool_size_for_stats = st.cols.len();
    let rmp_objective = st.last_rmp;
    let iterations = st.iterations;

    // Integer step, residual rounding: take a vertex LP solution over all generated
    // columns, fix ⌊x_j⌋ copies of each column (or one copy of the largest fractional
    // one when none reaches 1), generate columns for what is left, repeat.
    let _ = pi;
    let mut counts = vec![0u32; st.cols.len()];
    let mut resid = demand.clone();
    let mut rounds = 0;
    while resid.iter().any(|&d| d > 0) && rounds < opts.max_rounding_solves {
        rounds += 1;
        let Some(x) = vertex_lp(&st.cols, &resid) else {
            break;
        };
        let useful = |c: &Column, resid: &[u32]| c.counts.iter().any(|&(s, _)| resid[s] > 0);
        let mut fixes: Vec<(usize, u32)> = x
            .iter()
            .enumerate()
            .filter(|(j, &v)| v >= 1.0 - 1e-6 && useful(&st.cols[*j], &resid))
            .map(|(j, &v)| (j, (v + 1e-6).floor() as u32))
            .collect();
        if fixes.is_empty() {
            let pick = x
                .iter()
                .enumerate()
                .filter(|(j, &v)| v > 1e-9 && useful(&st.cols[*j], &resid))
                .max_by(|a, b| a.1.total_cmp(b.1).then(b.0.cmp(&a.0)))
                .map(|(j, _)| j);
            match pick {
                Some(j) => fixes.push((j, 1)),
                None => break,
            }
        }
        for (j, k) in fixes {
            for _ in 0..k {
                if !useful(&st.cols[j], &resid) {
                    break;
                }
                for &(s, a) in &st.cols[j].counts {
                    resid[s] = resid[s].saturating_sub(a);
                }
                counts[j] += 1;
            }
        }
        if resid.iter().any(|&d| d > 0) && opts.residual_colgen_iterations > 0 {
            // Patterns for the residual; failures only mean fewer columns.
            if st.colgen(&resid, opts.residual_colgen_iterations).is_ok() {
                counts.resize(st.cols.len(), 0);
            }
        }
    }
    counts.resize(st.cols.len(), 0);
    let mip_status = if resid.iter().all(|&d| d == 0) {
        "covered".to_string()
    } else {
        "budget hit; remainder packed by FFD".to_string()
    };
    let pool: Vec<usize> = (0..st.cols.len()).collect();

    // Expand patterns into nodes: pods of each shape are dealt in id order.
    let mut next: Vec<usize> = vec![0; n];
    let mut nodes: Vec<(usize, Vec<usize>)> = Vec::new();
    for (k, &j) in pool.iter().enumerate() {
        let col = &st.cols[j];
        for _ in 0..counts[k] {
            let mut pods = Vec::new();
            for &(s, a) in &col.counts {
                let members = &prep.shapes[s].pods;
                let take = (a as usize).min(members.len() - next[s]);
                pods.extend_from_slice(&members[next[s]..next[s] + take]);
                next[s] += take;
            }
            if pods.is_empty() {
                continue;
            }
            // A partly used pattern may fit a cheaper offer; the class offer always fits.
            let offer = prep
                .cheapest_offer_for(&pods)
                .unwrap_or(st.classes[col.class].offer);
            nodes.push((offer, pods));
        }
    }
    let leftover: Vec<usize> = (0..n)
        .flat_map(|s| prep.shapes[s].pods[next[s]..].iter().copied())
        .collect();
    if !leftover.is_empty() {
        nodes.extend(ffd::solve_subset(prep, &leftover));
    }
    Ok(Outcome {
        nodes,
        lower_bound: lb,
        converged,
        iterations,
        columns: st.cols.len(),
        classes: st.classes.len(),
        lp_solves: st.lp_solves,
        mip_columns: pool_size_for_stats,
        mip_nodes: u64::from(rounds),
        mip_status,
        rmp_objective,
    })
}

/// The fluid LP: pods are divisible over nodes of each offer class
/// (`y_cs` pods of shape `s` on class `c`, `n_c` fractional nodes; per class and
/// dimension `Σ_s y_cs req_sk ≤ n_c cap_ck`; `Σ_c y_cs ≥ d_s`; at most `n_c` pods of an
/// anti-affinity group, and at most `n_c × per_node_s` pods of a shape with a per-node
/// limit, on class `c`). Every integer plan is feasible for it, so its optimum bounds
/// every plan from below; it couples CPU and memory, unlike [`trivial_lower_bound`].
///
/// Solved over a few classes only (Clarabel, interior point): [`fluid_bound`] starts
/// from the classes cheapest per pod of each shape, prices every class with the cover
/// duals `π` — `V_c(π)`, the most one fractional node of class `c` holds, a ≤ 4-row LP
/// solved by a small dense simplex ([`small_lp_max`]) — and lets the most violated
/// classes join, for at most [`FLUID_ROUNDS`] rounds. Its bound is `θ Σ_s d_s π_s` with
/// `θ = min(1, min_c price_c / V_c(π))` over *all* classes: `θπ` is dual feasible for
/// the full fluid LP, so the bound is valid whatever the rounds and the solver's
/// tolerance. [`fluid_plan`] solves the plan's LP once over the offers the bound's LP
/// used plus, per zone-bound shape, the class cheapest per pod.
pub(crate) struct Fluid {
    /// Objective of the restricted LP (the plan's fluid cost).
    pub objective: f64,
    /// The classes the optimum uses.
    pub classes: Vec<FluidClass>,
    /// Classes in the restricted LP / all classes.
    pub classes_solved: usize,
    pub classes_total: usize,
    pub lp_solves: u32,
}

/// One offer class in the fluid optimum.
pub(crate) struct FluidClass {
    /// Offer index (price order).
    pub offer: usize,
    /// (shape, fractional pods), pods > 0.
    pub pods: Vec<(usize, f64)>,
}

/// Class-generation rounds for the fluid LP (a count, never time).
pub(crate) const FLUID_ROUNDS: u32 = 10;
/// Classes joining the restricted fluid LP per round (most violated first).
const FLUID_NEW_CLASSES: usize = 30;
/// Classes per shape in the first restricted fluid LP (cheapest per pod of the shape).
const FLUID_SEED_CLASSES: usize = 2;

/// `max v·y` s.t. `A y ≤ b`, `y ≥ 0` (`b ≥ 0`, `A` dense, row-major `m × n`) by a dense
/// primal simplex from the slack basis (Dantzig rule, bounded pivots). Returns a
/// rigorous upper bound on the optimum — the final multipliers `λ`, scaled up until
/// `λ·A_j ≥ v_j` for every column, are dual feasible, so `λ·b` bounds the optimum even
/// with rounding errors — and the primal vertex. `INFINITY` when a column with positive
/// value uses no row.
fn small_lp_max(v: &[f64], a: &[f64], b: &[f64]) -> (f64, Vec<f64>) {
    let n = v.len();
    let m = b.len();
    if n == 0 {
        return (0.0, Vec::new());
    }
    let w = n + m;
    let mut t = vec![0.0f64; m * w];
    let mut rhs = b.to_vec();
    for k in 0..m {
        t[k * w..k * w + n].copy_from_slice(&a[k * n..(k + 1) * n]);
        t[k * w + n + k] = 1.0;
    }
    let mut basis: Vec<usize> = (n..n + m).collect();
    let mut z: Vec<f64> = v
        .iter()
        .copied()
        .chain(std::iter::repeat_n(0.0, m))
        .collect();
    let vmax = v.iter().copied().fold(0.0f64, f64::max);
    for _ in 0..(8 * (n + m)).min(2_000) {
        let mut e = usize::MAX;
        let mut best = 1e-12 * vmax.max(1e-300);
        for (j, &zj) in z.iter().enumerate() {
            if zj > best {
                best = zj;
                e = j;
            }
        }
        if e == usize::MAX {
            break;
        }
        let mut r = usize::MAX;
        let mut ratio = f64::INFINITY;
        for k in 0..m {
            let aik = t[k * w + e];
            if aik > 1e-12 {
                let q = rhs[k] / aik;
                if q < ratio {
                    ratio = q;
                    r = k;
                }
            }
        }
        if r == usize::MAX {
            return (f64::INFINITY, Vec::new());
        }
        let piv = t[r * w + e];
        for j in 0..w {
            t[r * w + j] /= piv;
        }
        rhs[r] /= piv;
        let (before, rest) = t.split_at_mut(r * w);
        let (prow, after) = rest.split_at_mut(w);
        for (k, row) in before.chunks_mut(w).chain(after.chunks_mut(w)).enumerate() {
            let k = if k < r { k } else { k + 1 };
            let f = row[e];
            if f != 0.0 {
                for j in 0..w {
                    row[j] -= f * prow[j];
                }
                rhs[k] -= f * rhs[r];
            }
        }
        let f = z[e];
        for j in 0..w {
            z[j] -= f * prow[j];
        }
        basis[r] = e;
    }
    let lambda: Vec<f64> = (0..m).map(|k| (-z[n + k]).max(0.0)).collect();
    let mut scale: f64 = 1.0;
    for j in 0..n {
        if v[j] > 0.0 {
            let d: f64 = (0..m).map(|k| lambda[k] * a[k * n + j]).sum();
            if d <= 0.0 {
                return (f64::INFINITY, Vec::new());
            }
            scale = scale.max(v[j] / d);
        }
    }
    let ub = scale * (0..m).map(|k| lambda[k] * b[k]).sum::<f64>() * (1.0 + 1e-9);
    let mut y = vec![0.0; n];
    for (k, &bj) in basis.iter().enumerate() {
        if bj < n {
            y[bj] = rhs[k].max(0.0);
        }
    }
    (ub, y)
}

/// Prices one class for the fluid LP: the best fractional node of `class` under duals
/// `pi` (resources, per-node limits, one pod per anti-affinity group). Returns (upper
/// bound on its value, the pattern as (shape, pods per node)).
fn fluid_price(prep: &Prepared<'_>, class: &Class, pi: &[f64]) -> (f64, Vec<(usize, f64)>) {
    let cols: Vec<usize> = (0..prep.shapes.len())
        .filter(|&s| pi[s] > 0.0 && class.fit[s] > 0)
        .collect();
    let n = cols.len();
    if n == 0 {
        return (0.0, Vec::new());
    }
    let mut a: Vec<f64> = Vec::new();
    let mut b: Vec<f64> = Vec::new();
    for k in 0..DIMS {
        let row: Vec<f64> = cols
            .iter()
            .map(|&s| dims(&prep.shapes[s].req)[k] as f64 / class.cap[k].max(1) as f64)
            .collect();
        if row.iter().any(|&x| x > 0.0) {
            a.extend(row);
            b.push(1.0);
        }
    }
    let mut groups: std::collections::BTreeMap<usize, Vec<usize>> = Default::default();
    for (j, &s) in cols.iter().enumerate() {
        let sh = &prep.shapes[s];
        // A shape's own limit is implied by the shared one when they are equal.
        if let Some(m) = sh.per_node.filter(|&m| prep.per_node_total != Some(m)) {
            let mut row = vec![0.0; n];
            row[j] = 1.0;
            a.extend(row);
            b.push(f64::from(m));
        }
        if let Some(g) = sh.group {
            groups.entry(g).or_default().push(j);
        }
    }
    for (_, js) in groups {
        let mut row = vec![0.0; n];
        for j in js {
            row[j] = 1.0;
        }
        a.extend(row);
        b.push(1.0);
    }
    if let Some(total) = prep.per_node_total {
        let row: Vec<f64> = cols
            .iter()
            .map(|&s| f64::from(u8::from(prep.shapes[s].per_node.is_some())))
            .collect();
        if row.iter().any(|&x| x > 0.0) {
            a.extend(row);
            b.push(f64::from(total));
        }
    }
    let v: Vec<f64> = cols.iter().map(|&s| pi[s]).collect();
    let (ub, y) = small_lp_max(&v, &a, &b);
    let pattern = cols
        .iter()
        .zip(y)
        .filter(|(_, y)| *y > 1e-9)
        .map(|(&s, y)| (s, y))
        .collect();
    (ub, pattern)
}

/// The restricted fluid LP over the classes `set` (Clarabel). Returns (objective, per
/// class of `set`: (nodes, [(shape, pods)]), cover duals π per shape).
#[allow(clippy::type_complexity)]
fn fluid_lp(
    prep: &Prepared<'_>,
    classes: &[Class],
    set: &[usize],
    pairs: &[BTreeSet<usize>],
    demand: &[u32],
) -> Option<(f64, Vec<(f64, Vec<(usize, f64)>)>, Vec<f64>)> {
    let n_shapes = prep.shapes.len();
    let mut vars = ProblemVariables::new();
    let ns: Vec<Variable> = set.iter().map(|_| vars.add(variable().min(0.0))).collect();
    let mut ys: Vec<Vec<(usize, Variable)>> = Vec::with_capacity(set.len());
    for &ci in set {
        let c = &classes[ci];
        let row = pairs[ci]
            .iter()
            .copied()
            .filter(|&s| c.fit[s] > 0 && demand[s] > 0)
            .map(|s| (s, vars.add(variable().min(0.0))))
            .collect();
        ys.push(row);
    }
    let objective: Expression = set
        .iter()
        .zip(&ns)
        .map(|(&ci, &n)| classes[ci].price * n)
        .sum();
    let mut model = vars.minimise(objective).using(clarabel);
    // Loose tolerances: fewer interior-point iterations; the bound stays valid whatever
    // the duals' accuracy (see `fluid_bound`), and the plan is rounded anyway. For the
    // same reason each step's linear solve is refined to 1e-8, not Clarabel's 1e-13:
    // refinement was about half the solve time, and the solutions agree to 1e-6.
    model
        .settings()
        .tol_gap_rel(1e-6)
        .tol_gap_abs(1e-7)
        .tol_feas(1e-7)
        .iterative_refinement_reltol(1e-8)
        .iterative_refinement_abstol(1e-8);
    let mut cover: Vec<Expression> = vec![Expression::from(0.0); n_shapes];
    for ((&ci, &n), row) in set.iter().zip(&ns).zip(&ys) {
        let c = &classes[ci];
        for k in 0..DIMS {
            let mut e = Expression::from(0.0);
            let mut any = false;
            for &(s, y) in row {
                let r = dims(&prep.shapes[s].req)[k];
                if r > 0 {
                    e += (r as f64 / c.cap[k].max(1) as f64) * y;
                    any = true;
                }
            }
            if any {
                model.add_constraint(e.leq(n));
            }
        }
        let mut groups: std::collections::BTreeMap<usize, Expression> = Default::default();
        // The per-node-limited shapes together: at most `per_node_total` per node.
        let mut limited: Option<Expression> = None;
        for &(s, y) in row {
            cover[s] += y;
            let sh = &prep.shapes[s];
            if sh.per_node.is_some() && prep.per_node_total.is_some() {
                *limited.get_or_insert_with(|| Expression::from(0.0)) += y;
            }
            if let Some(g) = sh.group {
                *groups.entry(g).or_insert_with(|| Expression::from(0.0)) += y;
            }
            // A shape's own limit is implied by the shared one when they are equal.
            if let Some(m) = sh.per_node.filter(|&m| prep.per_node_total != Some(m)) {
                model.add_constraint(Expression::from(y).leq(f64::from(m) * n));
            }
        }
        for (_, e) in groups {
            model.add_constraint(e.leq(n));
        }
        if let (Some(e), Some(total)) = (limited, prep.per_node_total) {
            model.add_constraint(e.leq(f64::from(total) * n));
        }
    }
    let mut refs = Vec::new();
    for (s, e) in cover.into_iter().enumerate() {
        if demand[s] > 0 {
            refs.push((s, model.add_constraint(e.geq(f64::from(demand[s])))));
        }
    }
    let mut sol = model.solve().ok()?;
    let obj: f64 = set
        .iter()
        .zip(&ns)
        .map(|(&ci, &n)| classes[ci].price * sol.value(n).max(0.0))
        .sum();
    if !obj.is_finite() {
        return None;
    }
    let per = ns
        .iter()
        .zip(&ys)
        .map(|(&n, row)| {
            (
                sol.value(n).max(0.0),
                row.iter()
                    .map(|&(s, y)| (s, sol.value(y).max(0.0)))
                    .filter(|(_, y)| *y > 1e-6)
                    .collect(),
            )
        })
        .collect();
    let dual = sol.compute_dual();
    let mut pi = vec![0.0; n_shapes];
    for (s, r) in refs {
        let d = dual.dual(r);
        pi[s] = if d.is_finite() { d.max(0.0) } else { 0.0 };
    }
    Some((obj, per, pi))
}

/// Variables of class `c` in a fluid LP: the shapes it can host.
fn fluid_shapes(c: &Class, demand: &[u32]) -> Vec<usize> {
    (0..demand.len())
        .filter(|&s| c.fit[s] > 0 && demand[s] > 0)
        .collect()
}

fn fluid_pairs(classes: &[Class], demand: &[u32]) -> Vec<BTreeSet<usize>> {
    classes
        .iter()
        .map(|c| fluid_shapes(c, demand).into_iter().collect())
        .collect()
}

fn fluid_demand(prep: &Prepared<'_>) -> Vec<u32> {
    prep.shapes
        .iter()
        .map(|s| u32::try_from(s.pods.len()).unwrap_or(u32::MAX))
        .collect()
}

/// Per shape, the [`FLUID_SEED_CLASSES`] classes cheapest per pod of that shape alone.
fn fluid_seed(
    prep: &Prepared<'_>,
    classes: &[Class],
    demand: &[u32],
    per_shape: usize,
) -> Vec<bool> {
    let mut in_set = vec![false; classes.len()];
    for (s, sh) in prep.shapes.iter().enumerate() {
        if demand[s] == 0 {
            continue;
        }
        let r = dims(&sh.req);
        let mut best: Vec<(f64, usize)> = classes
            .iter()
            .enumerate()
            .filter(|(_, c)| c.fit[s] > 0)
            .map(|(ci, c)| {
                let share = (0..DIMS)
                    .map(|k| r[k] as f64 / c.cap[k].max(1) as f64)
                    .fold(0.0f64, f64::max);
                let per = if sh.group.is_some() {
                    1.0
                } else {
                    sh.per_node.map_or(0.0, |m| 1.0 / f64::from(m.max(1)))
                };
                (c.price * share.max(per), ci)
            })
            .collect();
        best.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
        for &(_, ci) in best.iter().take(per_shape) {
            in_set[ci] = true;
        }
    }
    in_set
}

/// The fluid LP's lower bound (see [`Fluid`]) by class generation over the dual.
/// Returns `None` when the solver fails or `prep` has anti-affinity groups or per-node
/// limits (only the relaxed problem is bounded this way).
pub(crate) fn fluid_bound(prep: &Prepared<'_>) -> Option<FluidBound> {
    if prep
        .shapes
        .iter()
        .any(|s| s.group.is_some() || s.per_node.is_some())
    {
        return None;
    }
    let demand = fluid_demand(prep);
    let classes = build_classes(prep, &demand);
    let nc = classes.len();
    let mut in_set = fluid_seed(prep, &classes, &demand, FLUID_SEED_CLASSES);
    let pairs = fluid_pairs(&classes, &demand);
    let dpi = |pi: &[f64]| -> f64 { demand.iter().zip(pi).map(|(&d, &p)| f64::from(d) * p).sum() };
    let mut bound: f64 = 0.0;
    let mut objective = f64::INFINITY;
    let mut solves = 0;
    let mut used: BTreeSet<(String, crate::catalog::Lifecycle, String)> = BTreeSet::new();
    let mut converged = false;
    for _ in 0..FLUID_ROUNDS {
        let set: Vec<usize> = (0..nc).filter(|&c| in_set[c]).collect();
        let (obj, per, pi) = fluid_lp(prep, &classes, &set, &pairs, &demand)?;
        solves += 1;
        objective = obj;
        let mut theta: f64 = 1.0;
        let mut violated: Vec<(f64, usize)> = Vec::new();
        used.clear();
        for (&ci, (n, _)) in set.iter().zip(&per) {
            if *n > 1e-6 {
                let o = prep.offers[classes[ci].offer];
                used.insert((o.instance_type.clone(), o.lifecycle, o.az.clone()));
            }
        }
        for (ci, c) in classes.iter().enumerate() {
            let (v, _) = fluid_price(prep, c, &pi);
            if v > c.price {
                theta = theta.min(c.price / v);
                if !in_set[ci] && v > c.price * (1.0 + 1e-5) {
                    violated.push((c.price / v, ci));
                }
            }
        }
        bound = bound.max(theta * dpi(&pi));
        if violated.is_empty() {
            converged = true;
            break;
        }
        violated.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
        for &(_, ci) in violated.iter().take(FLUID_NEW_CLASSES) {
            in_set[ci] = true;
        }
    }
    Some(FluidBound {
        bound: (bound * (1.0 - 1e-6)).min(objective),
        used,
        converged,
        classes_solved: in_set.iter().filter(|&&x| x).count(),
        classes_total: nc,
        lp_solves: solves,
    })
}

/// What [`fluid_bound`] found.
pub(crate) struct FluidBound {
    /// Valid lower bound on every plan of the problem.
    pub bound: f64,
    /// (instance type, lifecycle, zone) of the offers the last restricted LP uses.
    pub used: BTreeSet<(String, crate::catalog::Lifecycle, String)>,
    /// No class was left violated (the bound is then the fluid optimum).
    pub converged: bool,
    pub classes_solved: usize,
    pub classes_total: usize,
    pub lp_solves: u32,
}

/// The fluid LP's plan (see [`Fluid`]) over the classes whose offer (instance type,
/// lifecycle, zone) is in `hint` plus, per shape no hinted class hosts or bound to a
/// zone, the class cheapest per pod; one solve.
pub(crate) fn fluid_plan(
    prep: &Prepared<'_>,
    hint: &BTreeSet<(String, crate::catalog::Lifecycle, String)>,
) -> Option<Fluid> {
    let demand = fluid_demand(prep);
    let classes = build_classes(prep, &demand);
    let nc = classes.len();
    // The hinted classes, plus per shape no hinted class can host (or bound to a zone)
    // the seed classes.
    let mut in_set: Vec<bool> = classes
        .iter()
        .map(|c| {
            let o = prep.offers[c.offer];
            hint.contains(&(o.instance_type.clone(), o.lifecycle, o.az.clone()))
        })
        .collect();
    let seed = fluid_seed(prep, &classes, &demand, 1);
    let mut covered = vec![false; prep.shapes.len()];
    for (ci, c) in classes.iter().enumerate() {
        if in_set[ci] {
            for (s, cov) in covered.iter_mut().enumerate() {
                *cov |= c.fit[s] > 0;
            }
        }
    }
    for (ci, c) in classes.iter().enumerate() {
        if seed[ci]
            && (0..prep.shapes.len())
                .any(|s| c.fit[s] > 0 && (!covered[s] || prep.shapes[s].az.is_some()))
        {
            in_set[ci] = true;
        }
    }
    let set: Vec<usize> = (0..nc).filter(|&c| in_set[c]).collect();
    let pairs = fluid_pairs(&classes, &demand);
    let (objective, per, _) = fluid_lp(prep, &classes, &set, &pairs, &demand)?;
    let mut used = Vec::new();
    for (&ci, (n, pods)) in set.iter().zip(per) {
        if n > 0.0 && !pods.is_empty() {
            used.push(FluidClass {
                offer: classes[ci].offer,
                pods,
            });
        }
    }
    Some(Fluid {
        objective,
        classes: used,
        classes_solved: set.len(),
        classes_total: nc,
        lp_solves: 1,
    })
}

#[cfg(test)]
mod tests {
    use super::small_lp_max;

    #[test]
    fn small_lp_max_solves_and_bounds_exactly() {
        // max 5x + 4y + 3z s.t. 2x + 3y + z ≤ 5, 4x + y + 2z ≤ 11, 3x + 4y + 2z ≤ 8:
        // optimum 13 at (2, 0, 1).
        let v = [5.0, 4.0, 3.0];
        let a = [2.0, 3.0, 1.0, 4.0, 1.0, 2.0, 3.0, 4.0, 2.0];
        let b = [5.0, 11.0, 8.0];
        let (ub, y) = small_lp_max(&v, &a, &b);
        assert!((13.0..13.0 + 1e-6).contains(&ub), "{ub}");
        let val: f64 = v.iter().zip(&y).map(|(v, y)| v * y).sum();
        assert!((val - 13.0).abs() < 1e-9, "{y:?}");
        for k in 0..3 {
            let used: f64 = (0..3).map(|j| a[k * 3 + j] * y[j]).sum();
            assert!(used <= b[k] + 1e-9);
        }
    }

    #[test]
    fn small_lp_max_unbounded_and_empty() {
        // A valued column using no row is unbounded.
        assert_eq!(small_lp_max(&[1.0], &[0.0], &[1.0]).0, f64::INFINITY);
        assert_eq!(small_lp_max(&[], &[], &[1.0]).0, 0.0);
        // Two independent unit boxes: 3 + 2.
        let (ub, y) = small_lp_max(&[3.0, 2.0], &[1.0, 0.0, 0.0, 1.0], &[1.0, 1.0]);
        assert!((ub - 5.0).abs() < 1e-6 && ub >= 5.0);
        assert_eq!(y, vec![1.0, 1.0]);
    }
}
