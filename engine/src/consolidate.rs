//! Consolidation (waste removal): delete empty nodes, drain or replace underutilized
//! ones, under the cluster's policy. Every node gets a decision with a reason, including
//! the nodes left alone ("why was this node not consolidated?").
//!
//! Utilization is by *requests* (what the scheduler reserves), taken as the bottleneck
//! `max(cpu_requested / cpu_allocatable, mem_requested / mem_allocatable)`; DaemonSet
//! pods are ignored because they exist on every node and go away with it.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::catalog::{monthly, Arch, Lifecycle, Resources, AVOID_THRESHOLD};
use crate::pack::{CapacityReq, NodeOffer};

/// Aggressiveness slider. Thresholds are the product's: a node is a candidate below
/// 20 % / 50 % / 80 % utilization.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Aggressiveness {
    /// < 20 %; only drains onto existing nodes, never buys a replacement.
    Conservative,
    /// < 50 %; drains onto existing nodes, or replaces with a node at most 80 % of the
    /// current price (the move has to pay for its disruption).
    Balanced,
    /// < 80 %; drains, or replaces with any cheaper node.
    Aggressive,
}

impl Aggressiveness {
    pub fn threshold(self) -> f64 {
        match self {
            Aggressiveness::Conservative => 0.20,
            Aggressiveness::Balanced => 0.50,
            Aggressiveness::Aggressive => 0.80,
        }
    }

    /// Largest replacement price as a fraction of the current one; `None`: no replace.
    fn max_replacement_ratio(self) -> Option<f64> {
        match self {
            Aggressiveness::Conservative => None,
            Aggressiveness::Balanced => Some(0.80),
            Aggressiveness::Aggressive => Some(1.0 - 1e-9),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConsolidationMethod {
    /// Only delete nodes that are already empty. Zero risk.
    DeleteEmpty,
    /// Evict pods to empty a node, or replace it with a cheaper one.
    ReplaceAndMove,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConsolidationPolicy {
    pub aggressiveness: Aggressiveness,
    pub method: ConsolidationMethod,
    /// Pods in these namespaces are never moved; their nodes are never consolidated.
    pub excluded_namespaces: Vec<String>,
    /// `(key, value)` pairs, e.g. `("karpenter.sh/do-not-evict", "true")`.
    pub excluded_labels: Vec<(String, String)>,
    /// A node younger than this is not touched (anti-flapping grace period), seconds.
    pub stabilization_window_secs: i64,
}

impl Default for ConsolidationPolicy {
    fn default() -> Self {
        Self {
            aggressiveness: Aggressiveness::Balanced,
            method: ConsolidationMethod::ReplaceAndMove,
            excluded_namespaces: vec!["kube-system".into()],
            excluded_labels: vec![("karpenter.sh/do-not-evict".into(), "true".into())],
            stabilization_window_secs: 600,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunningPod {
    pub name: String,
    pub namespace: String,
    pub labels: BTreeMap<String, String>,
    pub cpu_millis: u64,
    pub memory_mib: u64,
    pub gpus: u32,
    pub capacity: CapacityReq,
    pub arch: Option<Arch>,
    pub anti_affinity_group: Option<String>,
    /// Name of the PodDisruptionBudget selecting this pod (in its namespace), if any.
    pub pdb: Option<String>,
    /// DaemonSet pods go with their node: ignored for utilization and moves.
    pub daemonset: bool,
}

impl RunningPod {
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
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunningNode {
    pub name: String,
    pub instance_type: String,
    pub lifecycle: Lifecycle,
    pub az: String,
    pub arch: Arch,
    pub hourly_price: f64,
    pub allocatable: Resources,
    /// Creation time, seconds since the Unix epoch.
    pub created_at: i64,
    /// Interruption probability of the node's pool (0 for on-demand).
    pub interruption_probability: f64,
    pub pods: Vec<RunningPod>,
}

/// A PodDisruptionBudget and its live status.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Pdb {
    pub namespace: String,
    pub name: String,
    pub min_available: Option<u32>,
    pub max_unavailable: Option<u32>,
    /// Pods selected by the PDB that are currently healthy.
    pub current_healthy: u32,
    /// Pods the PDB expects (replicas of the owner).
    pub expected_pods: u32,
}

impl Pdb {
    /// Evictions the budget allows now: `healthy − minAvailable` and
    /// `maxUnavailable − (expected − healthy)`, the smaller when both are set
    /// (what the API server reports as `disruptionsAllowed`).
    pub fn disruptions_allowed(&self) -> u32 {
        let mut allowed = u32::MAX;
        if let Some(min) = self.min_available {
            allowed = allowed.min(self.current_healthy.saturating_sub(min));
        }
        if let Some(max) = self.max_unavailable {
            let unavailable = self.expected_pods.saturating_sub(self.current_healthy);
            allowed = allowed.min(max.saturating_sub(unavailable));
        }
        if allowed == u32::MAX {
            // A PDB with neither field set protects nothing in Kubernetes either.
            self.current_healthy
        } else {
            allowed
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClusterState {
    pub nodes: Vec<RunningNode>,
    pub pdbs: Vec<Pdb>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum NodeAction {
    /// Nothing to do; see the reason.
    Keep,
    /// Node is empty (DaemonSets aside): delete it.
    DeleteEmpty,
    /// Evict its pods onto other existing nodes, then delete it.
    DrainAndDelete,
    /// Launch a cheaper node, move the pods there, delete this one.
    Replace {
        instance_type: String,
        lifecycle: Lifecycle,
        az: String,
        hourly_price: f64,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PodMove {
    /// `namespace/name`
    pub pod: String,
    /// Destination node name; `None` means the replacement node.
    pub to: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NodeDecision {
    pub node: String,
    pub action: NodeAction,
    pub utilization: f64,
    pub moves: Vec<PodMove>,
    pub expected_monthly_savings: f64,
    /// True when the node runs excluded pods: counted in spend, 0 potential savings.
    pub unmanaged: bool,
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConsolidationPlan {
    /// One decision per node, in node-name order.
    pub decisions: Vec<NodeDecision>,
    pub total_monthly_spend: f64,
    pub expected_monthly_savings: f64,
    /// Evictions the plan spends per PDB (`namespace/name`).
    pub pdb_evictions: BTreeMap<String, u32>,
}

fn utilization(used: &Resources, alloc: &Resources) -> f64 {
    let f = |u: u64, a: u64| if a == 0 { 0.0 } else { u as f64 / a as f64 };
    f(used.cpu_millis, alloc.cpu_millis).max(f(used.memory_mib, alloc.memory_mib))
}

fn excluded_reason(p: &RunningPod, policy: &ConsolidationPolicy) -> Option<String> {
    if policy.excluded_namespaces.contains(&p.namespace) {
        return Some(format!(
            "pod {} is in excluded namespace {}",
            p.key(),
            p.namespace
        ));
    }
    policy
        .excluded_labels
        .iter()
        .find(|(k, v)| p.labels.get(k) == Some(v))
        .map(|(k, v)| format!("pod {} carries excluded label {k}={v}", p.key()))
}

struct Target {
    idx: usize,
    used: Resources,
    groups: Vec<String>,
}

fn fits_on(p: &RunningPod, n: &RunningNode, t: &Target) -> bool {
    p.capacity.allows(n.lifecycle)
        && p.arch.is_none_or(|a| a == n.arch)
        && p.anti_affinity_group
            .as_ref()
            .is_none_or(|g| !t.groups.contains(g))
        && t.used.saturating_add(&p.request()).fits_in(&n.allocatable)
}

/// Plans consolidation for `state` at time `now` (seconds since the Unix epoch).
/// `replacement_offers` are the offers a replacement node may be bought from (already
/// filtered by template and risk, e.g. [`crate::spot::offers_for_template`]).
pub fn consolidate(
    state: &ClusterState,
    policy: &ConsolidationPolicy,
    replacement_offers: &[NodeOffer],
    now: i64,
) -> ConsolidationPlan {
    let nodes = &state.nodes;
    let mut order: Vec<usize> = (0..nodes.len()).collect();
    order.sort_by(|&a, &b| nodes[a].name.cmp(&nodes[b].name));

    let movable = |p: &RunningPod| !p.daemonset;
    let used_of = |n: &RunningNode| {
        n.pods
            .iter()
            .filter(|p| movable(p))
            .fold(Resources::default(), |acc, p| {
                acc.saturating_add(&p.request())
            })
    };
    let mut targets: Vec<Target> = nodes
        .iter()
        .enumerate()
        .map(|(i, n)| Target {
            idx: i,
            used: used_of(n),
            groups: n
                .pods
                .iter()
                .filter_map(|p| p.anti_affinity_group.clone())
                .collect(),
        })
        .collect();
    let mut pdb_left: BTreeMap<String, u32> = state
        .pdbs
        .iter()
        .map(|p| {
            (
                format!("{}/{}", p.namespace, p.name),
                p.disruptions_allowed(),
            )
        })
        .collect();
    let mut pdb_spent: BTreeMap<String, u32> = BTreeMap::new();

    let mut decisions: BTreeMap<usize, NodeDecision> = BTreeMap::new();
    let mut removed = vec![false; nodes.len()];
    let mut received = vec![false; nodes.len()];
    let threshold = policy.aggressiveness.threshold();
    let keep = |i: usize, util: f64, unmanaged: bool, reason: String| NodeDecision {
        node: nodes[i].name.clone(),
        action: NodeAction::Keep,
        utilization: util,
        moves: Vec::new(),
        expected_monthly_savings: 0.0,
        unmanaged,
        reason,
    };

    // Pass 1: classify; collect drain candidates.
    let mut candidates: Vec<(f64, usize)> = Vec::new();
    for &i in &order {
        let n = &nodes[i];
        let util = utilization(&used_of(n), &n.allocatable);
        // DaemonSet pods run on every node and come back on any replacement: they never
        // make a node unmanaged (a kube-system DaemonSet would otherwise exclude them all).
        if let Some(why) = n
            .pods
            .iter()
            .filter(|p| !p.daemonset)
            .find_map(|p| excluded_reason(p, policy))
        {
            decisions.insert(
                i,
                keep(
                    i,
                    util,
                    true,
                    format!("unmanaged: {why}; node is never consolidated"),
                ),
            );
            continue;
        }
        let age = now - n.created_at;
        if age < policy.stabilization_window_secs {
            decisions.insert(
                i,
                keep(
                    i,
                    util,
                    false,
                    format!(
                        "node is {} min old, inside the {} min stabilization window",
                        age.max(0) / 60,
                        policy.stabilization_window_secs / 60
                    ),
                ),
            );
            continue;
        }
        let pods = n.pods.iter().filter(|p| movable(p)).count();
        if pods == 0 {
            removed[i] = true;
            decisions.insert(
                i,
                NodeDecision {
                    node: n.name.clone(),
                    action: NodeAction::DeleteEmpty,
                    utilization: 0.0,
                    moves: Vec::new(),
                    expected_monthly_savings: monthly(n.hourly_price),
                    unmanaged: false,
                    reason: format!(
                        "empty node (DaemonSets aside): delete, saves ${:.2}/mo",
                        monthly(n.hourly_price)
                    ),
                },
            );
            continue;
        }
        if policy.method == ConsolidationMethod::DeleteEmpty {
            decisions.insert(
                i,
                keep(
                    i,
                    util,
                    false,
                    format!("runs {pods} pods; method delete_empty only removes empty nodes"),
                ),
            );
            continue;
        }
        if util >= threshold {
            decisions.insert(
                i,
                keep(
                    i,
                    util,
                    false,
                    format!(
                        "utilization {:.0}% is not below the {:?} threshold {:.0}%",
                        util * 100.0,
                        policy.aggressiveness,
                        threshold * 100.0
                    ),
                ),
            );
            continue;
        }
        candidates.push((util, i));
    }

    // Pass 2: least utilized first (cheapest to drain), name breaks ties.
    candidates.sort_by(|a, b| {
        a.0.total_cmp(&b.0)
            .then(nodes[a.1].name.cmp(&nodes[b.1].name))
    });
    for (util, i) in candidates {
        let n = &nodes[i];
        if received[i] {
            decisions.insert(
                i,
                keep(
                    i,
                    util,
                    false,
                    "receives pods from another node in this plan; not drained in the same round"
                        .into(),
                ),
            );
            continue;
        }
        let mut pods: Vec<&RunningPod> = n.pods.iter().filter(|p| movable(p)).collect();
        pods.sort_by(|a, b| {
            b.cpu_millis
                .cmp(&a.cpu_millis)
                .then(b.memory_mib.cmp(&a.memory_mib))
                .then_with(|| a.key().cmp(&b.key()))
        });
        // PDB check first: a drain is all-or-nothing.
        let mut need: BTreeMap<String, u32> = BTreeMap::new();
        for p in &pods {
            if let Some(pdb) = &p.pdb {
                *need.entry(format!("{}/{}", p.namespace, pdb)).or_default() += 1;
            }
        }
        if let Some((pdb, k)) = need
            .iter()
            .find(|(pdb, k)| pdb_left.get(*pdb).is_some_and(|left| **k > *left))
        {
            decisions.insert(
                i,
                keep(
                    i,
                    util,
                    false,
                    format!(
                        "draining would evict {k} pod(s) of PDB {pdb}, which allows {} more disruption(s)",
                        pdb_left.get(pdb).copied().unwrap_or(0)
                    ),
                ),
            );
            continue;
        }
        // Try to place every pod on other live nodes; fullest targets first so the
        // cluster packs tighter. AVOID-risk nodes never receive pods.
        let mut tgt_order: Vec<usize> = (0..nodes.len())
            .filter(|&j| {
                j != i
                    && !removed[j]
                    && nodes[j].interruption_probability <= AVOID_THRESHOLD
                    && now - nodes[j].created_at >= 0
            })
            .collect();
        tgt_order.sort_by(|&a, &b| {
            let ua = utilization(&targets[a].used, &nodes[a].allocatable);
            let ub = utilization(&targets[b].used, &nodes[b].allocatable);
            ub.total_cmp(&ua).then(nodes[a].name.cmp(&nodes[b].name))
        });
        let mut trial: Vec<(usize, Resources, Vec<String>)> = tgt_order
            .iter()
            .map(|&j| (j, targets[j].used, targets[j].groups.clone()))
            .collect();
        let mut moves = Vec::new();
        let mut all_fit = true;
        for p in &pods {
            let slot = trial.iter_mut().find(|(j, used, groups)| {
                fits_on(
                    p,
                    &nodes[*j],
                    &Target {
                        idx: *j,
                        used: *used,
                        groups: groups.clone(),
                    },
                )
            });
            match slot {
                Some((j, used, groups)) => {
                    *used = used.saturating_add(&p.request());
                    if let Some(g) = &p.anti_affinity_group {
                        groups.push(g.clone());
                    }
                    moves.push(PodMove {
                        pod: p.key(),
                        to: Some(nodes[*j].name.clone()),
                    });
                }
                None => {
                    all_fit = false;
                    break;
                }
            }
        }
        let spend_pdb = |pdb_left: &mut BTreeMap<String, u32>,
                         pdb_spent: &mut BTreeMap<String, u32>| {
            for (pdb, k) in &need {
                if let Some(left) = pdb_left.get_mut(pdb) {
                    *left -= k;
                }
                *pdb_spent.entry(pdb.clone()).or_default() += k;
            }
        };
        if all_fit {
            for (j, used, groups) in trial {
                if used != targets[j].used {
                    received[j] = true;
                }
                targets[j].used = used;
                targets[j].groups = groups;
                let _ = targets[j].idx;
            }
            removed[i] = true;
            spend_pdb(&mut pdb_left, &mut pdb_spent);
            let save = monthly(n.hourly_price);
            decisions.insert(
                i,
                NodeDecision {
                    node: n.name.clone(),
                    action: NodeAction::DrainAndDelete,
                    utilization: util,
                    moves,
                    expected_monthly_savings: save,
                    unmanaged: false,
                    reason: format!(
                        "utilization {:.0}% below {:.0}%: its {} pods fit on existing nodes; delete saves ${save:.2}/mo",
                        util * 100.0,
                        threshold * 100.0,
                        pods.len()
                    ),
                },
            );
            continue;
        }
        // Replacement: cheapest offer holding all pods, if cheap enough for the policy.
        let used = used_of(n);
        let replacement = policy
            .aggressiveness
            .max_replacement_ratio()
            .and_then(|ratio| {
                replacement_offers
                    .iter()
                    .filter(|o| {
                        o.hourly_price < n.hourly_price * ratio
                            && used.fits_in(&o.allocatable)
                            && pods.iter().all(|p| {
                                p.capacity.allows(o.lifecycle) && p.arch.is_none_or(|a| a == o.arch)
                            })
                            && {
                                let mut groups: Vec<&String> = pods
                                    .iter()
                                    .filter_map(|p| p.anti_affinity_group.as_ref())
                                    .collect();
                                let before = groups.len();
                                groups.sort();
                                groups.dedup();
                                groups.len() == before
                            }
                    })
                    .min_by(|a, b| {
                        a.hourly_price
                            .total_cmp(&b.hourly_price)
                            .then_with(|| a.instance_type.cmp(&b.instance_type))
                            .then_with(|| a.az.cmp(&b.az))
                    })
            });
        match replacement {
            Some(o) => {
                spend_pdb(&mut pdb_left, &mut pdb_spent);
                removed[i] = true;
                let save = monthly(n.hourly_price - o.hourly_price);
                decisions.insert(
                    i,
                    NodeDecision {
                        node: n.name.clone(),
                        action: NodeAction::Replace {
                            instance_type: o.instance_type.clone(),
                            lifecycle: o.lifecycle,
                            az: o.az.clone(),
                            hourly_price: o.hourly_price,
                        },
                        utilization: util,
                        moves: pods
                            .iter()
                            .map(|p| PodMove {
                                pod: p.key(),
                                to: None,
                            })
                            .collect(),
                        expected_monthly_savings: save,
                        unmanaged: false,
                        reason: format!(
                            "utilization {:.0}% below {:.0}%: pods do not fit elsewhere; replace {} (${:.4}/h) with {:?} {} in {} (${:.4}/h), saves ${save:.2}/mo",
                            util * 100.0,
                            threshold * 100.0,
                            n.instance_type,
                            n.hourly_price,
                            o.lifecycle,
                            o.instance_type,
                            o.az,
                            o.hourly_price
                        ),
                    },
                );
            }
            None => {
                let why = match policy.aggressiveness.max_replacement_ratio() {
                    None => "conservative policy never buys a replacement".to_string(),
                    Some(r) => format!(
                        "no offer holding its pods costs below {:.0}% of the current ${:.4}/h",
                        r * 100.0,
                        n.hourly_price
                    ),
                };
                decisions.insert(
                    i,
                    keep(
                        i,
                        util,
                        false,
                        format!(
                            "utilization {:.0}% below {:.0}%, but its pods do not fit on other nodes and {why}",
                            util * 100.0,
                            threshold * 100.0
                        ),
                    ),
                );
            }
        }
    }

    let decisions: Vec<NodeDecision> = order.iter().filter_map(|i| decisions.remove(i)).collect();
    ConsolidationPlan {
        total_monthly_spend: nodes.iter().map(|n| monthly(n.hourly_price)).sum(),
        expected_monthly_savings: decisions.iter().map(|d| d.expected_monthly_savings).sum(),
        decisions,
        pdb_evictions: pdb_spent,
    }
}
