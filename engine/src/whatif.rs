//! What-if entry point: plan a documented JSON workload without a cluster.
//!
//! The input format is [`Workload`] (JSON Schema: `engine/whatif/workload.schema.json`,
//! example: `engine/whatif/example.json`): an instance catalog (vCPU, memory, GPUs, arch,
//! max pods, on-demand price, spot price and interruption probability per zone), optional
//! current nodes with their pods, pods to place (pending), PDBs, and the cluster policy.
//! [`run`] returns a [`Report`]: the fleet after the plan, its cost, the LP lower bound and
//! gap, the first-fit-decreasing baseline on the same input, and the reasons. Solve time is
//! measured by the caller (the CLI adds `solve_ms`), so the report is deterministic.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::catalog::{monthly, Arch, Catalog, InstanceType, Lifecycle, NodeOverhead, SpotPool};
use crate::consolidate::Pdb;
use crate::plan::{
    self, FleetNode, Market, NodeReport, PendingReport, PlanInput, SnapNode, SnapPod, Strategy,
    Wave,
};
use crate::policy::ClusterPolicy;
use crate::{invalid, Result};

/// Version of the workload format and of the report.
pub const WHATIF_VERSION: u32 = 1;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Workload {
    /// Format version; must be 1.
    pub version: u32,
    /// "Now" in seconds since the Unix epoch (node ages are relative to it).
    #[serde(default)]
    pub now: i64,
    /// Zones offering on-demand capacity; default: every zone with a spot price.
    #[serde(default)]
    pub zones: Vec<String>,
    pub instance_types: Vec<WorkloadType>,
    #[serde(default)]
    pub nodes: Vec<WorkloadNode>,
    /// Pods to place (pending). `replicas` expands one entry into `name-0`, `name-1`, ...
    #[serde(default)]
    pub pods: Vec<WorkloadPod>,
    #[serde(default)]
    pub pdbs: Vec<Pdb>,
    #[serde(default)]
    pub policy: ClusterPolicy,
    /// Node reserve (EKS kube-reserved formula by default).
    #[serde(default)]
    pub reserve: Option<NodeOverhead>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkloadType {
    pub name: String,
    /// Default: the part of the name before the first dot.
    #[serde(default)]
    pub family: Option<String>,
    pub vcpu: u32,
    pub memory_mib: u64,
    #[serde(default)]
    pub gpus: u32,
    pub arch: Arch,
    /// Max pods per node (the ENI limit); default: the reserve's `max_pods` (110).
    #[serde(default)]
    pub max_pods: Option<u32>,
    #[serde(default)]
    pub burstable: bool,
    pub on_demand_hourly: f64,
    #[serde(default)]
    pub spot: Vec<WorkloadSpot>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkloadSpot {
    pub zone: String,
    pub price: f64,
    #[serde(default)]
    pub interruption_probability: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkloadNode {
    pub name: String,
    pub instance_type: String,
    pub lifecycle: Lifecycle,
    pub zone: String,
    /// Default: the catalog price (spot price of the zone, or on-demand).
    #[serde(default)]
    pub hourly_price: Option<f64>,
    /// Seconds since launch; default one day (outside any stabilization window).
    #[serde(default = "one_day")]
    pub age_secs: i64,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    #[serde(default)]
    pub taints: Vec<String>,
    #[serde(default)]
    pub unmanaged: bool,
    #[serde(default)]
    pub do_not_disrupt: bool,
    #[serde(default)]
    pub pods: Vec<WorkloadPod>,
}

fn one_day() -> i64 {
    86_400
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WorkloadPod {
    #[serde(flatten)]
    pub pod: SnapPod,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replicas: Option<u32>,
}

/// The what-if answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    pub version: u32,
    pub strategy: Strategy,
    /// The fleet after the plan.
    pub nodes: Vec<FleetNode>,
    /// Real USD/h of that fleet, and × 730.
    pub cost_hourly: f64,
    pub cost_monthly: f64,
    /// Risk-weighted objective the planner minimised (= cost with `risk_premium` 0).
    pub objective_hourly: f64,
    /// LP lower bound on the objective.
    pub lower_bound_hourly: f64,
    /// `(objective − lower_bound) / objective`.
    pub gap: f64,
    /// False when pods were put into free room of kept nodes the bound does not know.
    pub lower_bound_valid: bool,
    /// First-fit-decreasing (Karpenter-style) objective on the same input.
    pub ffd_baseline_hourly: f64,
    /// objective ÷ FFD baseline.
    pub ratio_to_ffd: f64,
    /// Current nodes' cost (0 without nodes) and the saving.
    pub current_hourly: f64,
    pub saving_hourly: f64,
    pub disruption_budget: u32,
    pub waves: Vec<Wave>,
    /// A reason per current node and per pod to place.
    pub node_reasons: Vec<NodeReport>,
    pub pod_reasons: Vec<PendingReport>,
    pub warnings: Vec<String>,
    pub packer: String,
}

/// Parses a workload; the error names the offending field path.
pub fn parse(json: &str) -> Result<Workload> {
    let de = &mut serde_json::Deserializer::from_str(json);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        invalid(
            if path.is_empty() {
                "workload".into()
            } else {
                path
            },
            e.inner().to_string(),
        )
    })
}

fn expand(pods: &[WorkloadPod], field: &str) -> Result<Vec<SnapPod>> {
    let mut out = Vec::new();
    for (i, p) in pods.iter().enumerate() {
        match p.replicas {
            None => out.push(p.pod.clone()),
            Some(0) => {}
            Some(n) if n > 100_000 => {
                return Err(invalid(format!("{field}[{i}].replicas"), "at most 100000"))
            }
            Some(n) => {
                for k in 0..n {
                    let mut q = p.pod.clone();
                    q.name = format!("{}-{k}", p.pod.name);
                    out.push(q);
                }
            }
        }
    }
    Ok(out)
}

/// Converts a workload into the planner's input (validating it).
pub fn to_plan_input(w: &Workload) -> Result<PlanInput> {
    if w.version != WHATIF_VERSION {
        return Err(invalid(
            "version",
            format!("must be {WHATIF_VERSION}, got {}", w.version),
        ));
    }
    let reserve = w.reserve.clone().unwrap_or_default();
    let mut types = Vec::new();
    let mut pools = Vec::new();
    let mut max_pods = BTreeMap::new();
    let mut zones: BTreeSet<String> = w.zones.iter().cloned().collect();
    for (i, t) in w.instance_types.iter().enumerate() {
        if t.vcpu == 0 || t.memory_mib == 0 {
            return Err(invalid(
                format!("instance_types[{i}]"),
                "vcpu and memory_mib must be > 0",
            ));
        }
        types.push(InstanceType {
            name: t.name.clone(),
            family: t
                .family
                .clone()
                .unwrap_or_else(|| t.name.split('.').next().unwrap_or("").to_string()),
            vcpu: t.vcpu,
            memory_mib: t.memory_mib,
            gpus: t.gpus,
            arch: t.arch,
            burstable: t.burstable,
            on_demand_hourly: t.on_demand_hourly,
        });
        if let Some(m) = t.max_pods {
            if m == 0 {
                return Err(invalid(
                    format!("instance_types[{i}].max_pods"),
                    "must be > 0",
                ));
            }
            max_pods.insert(t.name.clone(), m);
        }
        for s in &t.spot {
            if w.zones.is_empty() {
                zones.insert(s.zone.clone());
            }
            pools.push(SpotPool {
                instance_type: t.name.clone(),
                az: s.zone.clone(),
                spot_price: s.price,
                interruption_probability: s.interruption_probability,
            });
        }
    }
    let catalog = Catalog::with_zones(types, pools, zones.into_iter().collect())?;
    let mut nodes = Vec::new();
    for (i, n) in w.nodes.iter().enumerate() {
        let it = catalog.get(&n.instance_type).ok_or_else(|| {
            invalid(
                format!("nodes[{i}].instance_type"),
                format!("`{}` is not in instance_types", n.instance_type),
            )
        })?;
        let pool = catalog.pool(&crate::catalog::PoolKey::new(&n.instance_type, &n.zone));
        let price = match (n.hourly_price, n.lifecycle) {
            (Some(p), _) => p,
            (None, Lifecycle::OnDemand) => it.on_demand_hourly,
            (None, Lifecycle::Spot) => pool.map(|p| p.spot_price).ok_or_else(|| {
                invalid(
                    format!("nodes[{i}].hourly_price"),
                    format!(
                        "no spot price for {} in {}; give hourly_price",
                        n.instance_type, n.zone
                    ),
                )
            })?,
        };
        let oh = NodeOverhead {
            max_pods: max_pods.get(&it.name).copied().unwrap_or(reserve.max_pods),
            ..reserve.clone()
        };
        nodes.push(SnapNode {
            name: n.name.clone(),
            instance_type: n.instance_type.clone(),
            lifecycle: n.lifecycle,
            az: n.zone.clone(),
            arch: it.arch,
            hourly_price: price,
            allocatable: oh.allocatable(it),
            created_at: w.now - n.age_secs,
            interruption_probability: match n.lifecycle {
                Lifecycle::Spot => pool.map(|p| p.interruption_probability).unwrap_or(0.0),
                Lifecycle::OnDemand => 0.0,
            },
            labels: n.labels.clone(),
            taints: n.taints.clone(),
            unmanaged: n.unmanaged,
            do_not_disrupt: n.do_not_disrupt,
            cordoned: false,
            ready: true,
            pinned: None,
            pods: expand(&n.pods, &format!("nodes[{i}].pods"))?,
        });
    }
    Ok(PlanInput {
        nodes,
        pending: expand(&w.pods, "pods")?,
        pdbs: w.pdbs.clone(),
        policy: w.policy.clone(),
        market: Market {
            catalog,
            risk_flags: BTreeSet::new(),
            max_pods,
            overhead: reserve,
        },
        now: w.now,
        pack_options: None,
    })
}

/// Plans a workload.
pub fn run(w: &Workload) -> Result<Report> {
    let input = to_plan_input(w)?;
    let p = plan::plan(&input)?;
    let c = &p.costs;
    Ok(Report {
        version: WHATIF_VERSION,
        strategy: p.strategy,
        nodes: p.fleet,
        cost_hourly: c.planned_hourly,
        cost_monthly: monthly(c.planned_hourly),
        objective_hourly: c.objective_hourly,
        lower_bound_hourly: c.lower_bound_hourly,
        gap: c.gap,
        lower_bound_valid: c.lower_bound_valid,
        ffd_baseline_hourly: c.ffd_objective_hourly,
        ratio_to_ffd: if c.ffd_objective_hourly > 0.0 {
            c.objective_hourly / c.ffd_objective_hourly
        } else {
            1.0
        },
        current_hourly: c.current_hourly,
        saving_hourly: c.saving_hourly,
        disruption_budget: p.disruption_budget,
        waves: p.waves,
        node_reasons: p.nodes,
        pod_reasons: p.pending,
        warnings: p.warnings,
        packer: p.packer,
    })
}

/// Parses and plans.
pub fn run_json(json: &str) -> Result<Report> {
    run(&parse(json)?)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn bad_input_names_the_field() {
        let e = run_json(r#"{"version":1,"instance_types":[{"name":"m5.large","vcpu":"two"}]}"#)
            .unwrap_err()
            .to_string();
        assert!(e.contains("instance_types[0].vcpu"), "{e}");
        let e = run_json(r#"{"version":2,"instance_types":[]}"#)
            .unwrap_err()
            .to_string();
        assert!(e.contains("`version`"), "{e}");
        let e = run_json(
            r#"{"version":1,"instance_types":[{"name":"m5.large","vcpu":2,"memory_mib":8192,"arch":"x86_64","on_demand_hourly":0.096}],
                "nodes":[{"name":"n1","instance_type":"m9.huge","lifecycle":"spot","zone":"a"}]}"#,
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("nodes[0].instance_type"), "{e}");
    }

    #[test]
    fn replicas_expand_and_every_pod_gets_a_reason() {
        let r = run_json(
            r#"{"version":1,"instance_types":[{"name":"m5.large","vcpu":2,"memory_mib":8192,"arch":"x86_64","on_demand_hourly":0.096,
                "spot":[{"zone":"a","price":0.04,"interruption_probability":0.1}]}],
                "pods":[{"name":"web","cpu_millis":500,"memory_mib":1024,"replicas":5},
                        {"name":"huge","cpu_millis":64000,"memory_mib":1024}]}"#,
        )
        .expect("plans");
        assert_eq!(r.pod_reasons.len(), 6);
        let huge = r
            .pod_reasons
            .iter()
            .find(|p| p.pod == "default/huge")
            .expect("huge");
        assert!(
            huge.node.is_none() && huge.reason.starts_with("unschedulable"),
            "{huge:?}"
        );
        let placed: usize = r.nodes.iter().map(|n| n.pods.len()).sum();
        assert_eq!(placed, 5);
        // 5 × 500 m on m5.large (1930 m allocatable after the reserve) → 2 nodes at least.
        assert!(r.nodes.len() >= 2);
        assert!(r.lower_bound_hourly <= r.objective_hourly + 1e-12);
    }
}
