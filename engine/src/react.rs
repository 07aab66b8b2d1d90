//! Event-driven launch decisions (the cluster actor's "< 1 second" reaction), pure.
//!
//! Pending pods are planned by the one planner ([`crate::plan::plan`]) with no existing
//! node and a small packing budget: the same offers (template, flagged and AVOID pools
//! excluded, risk-weighted prices, ENI max pods), the same constraints and the same
//! per-pod reasons as Optimize Now. An interruption is answered with the replacement
//! [`crate::spot::select`] chooses for the same capacity outside the interrupted pool.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use crate::catalog::{Lifecycle, PoolKey};
use crate::pack::{PackOptions, Pod};
use crate::plan::{self, Market, PlanAction, PlanInput, SnapPod};
use crate::policy::ClusterPolicy;
use crate::spot::{self, NodeTemplate, Requirements};
use crate::{invalid, EngineError, Result};

/// One node to launch.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NodeToLaunch {
    pub instance_type: String,
    pub lifecycle: Lifecycle,
    pub az: String,
    pub hourly_price: f64,
    /// Pods (`namespace/name`) it is for.
    pub pods: Vec<String>,
}

/// What to launch, and for which pods.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Launches {
    pub nodes: Vec<NodeToLaunch>,
    /// Real USD/h of the nodes to launch.
    pub hourly_cost: f64,
    /// Risk-weighted USD/h the planner minimised (see `plan`'s objective).
    pub objective_hourly: f64,
    /// LP lower bound of the risk-weighted objective.
    pub lower_bound_hourly: Option<f64>,
    /// Pods no allowed offer can host, with the planner's reason.
    pub unschedulable: Vec<(String, String)>,
}

/// Packing budget of a reaction: a few column-generation rounds, then rounding.
pub fn reaction_pack_options() -> PackOptions {
    PackOptions {
        max_colgen_iterations: 20,
        residual_colgen_iterations: 1,
        max_rounding_solves: 50,
        ..PackOptions::default()
    }
}

/// A packer pod (`id` = `namespace/name`, or a bare name in `default`) as a pending pod.
pub fn pending_pod(p: &Pod) -> SnapPod {
    let (namespace, name) = p.id.split_once('/').unwrap_or(("default", p.id.as_str()));
    SnapPod {
        name: name.to_string(),
        namespace: namespace.to_string(),
        labels: Default::default(),
        owner: None,
        priority: 0,
        cpu_millis: p.cpu_millis,
        memory_mib: p.memory_mib,
        gpus: p.gpus,
        capacity: p.capacity,
        arch: p.arch,
        anti_affinity_group: p.anti_affinity_group.clone(),
        az_spread_group: p.az_spread_group.clone(),
        pdb: None,
        do_not_disrupt: false,
        daemonset: false,
    }
}

/// Plans new nodes for `pods` at time `now` under `template`.
pub fn pending_pods(
    market: &Market,
    template: &NodeTemplate,
    pods: &[Pod],
    now: i64,
) -> Result<Launches> {
    pending_pods_with(market, template, true, pods, now)
}

/// Plans new nodes for `pods` at time `now` under `template`; with `autoscaling` off (the
/// cluster policy's master toggle) nothing is launched and every pod is reported
/// unschedulable with the planner's reason.
pub fn pending_pods_with(
    market: &Market,
    template: &NodeTemplate,
    autoscaling: bool,
    pods: &[Pod],
    now: i64,
) -> Result<Launches> {
    if pods.is_empty() {
        return Err(invalid("pods", "no pending pods"));
    }
    let input = PlanInput {
        nodes: Vec::new(),
        pending: pods.iter().map(pending_pod).collect(),
        pdbs: Vec::new(),
        policy: ClusterPolicy {
            template: template.clone(),
            autoscaling,
            ..ClusterPolicy::default()
        },
        market: market.clone(),
        now,
        pack_options: Some(reaction_pack_options()),
    };
    let planned = plan::plan(&input)?;
    let pods_of = |node: &str| -> Vec<String> {
        planned
            .fleet
            .iter()
            .find(|f| f.name == node)
            .map(|f| f.pods.clone())
            .unwrap_or_default()
    };
    let nodes: Vec<NodeToLaunch> = planned
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
            } => Some(NodeToLaunch {
                instance_type: instance_type.clone(),
                lifecycle: *lifecycle,
                az: az.clone(),
                hourly_price: *hourly_price,
                pods: pods_of(node),
            }),
            _ => None,
        })
        .collect();
    Ok(Launches {
        hourly_cost: nodes.iter().map(|n| n.hourly_price).sum(),
        objective_hourly: planned.costs.objective_hourly,
        lower_bound_hourly: planned
            .costs
            .lower_bound_valid
            .then_some(planned.costs.lower_bound_hourly),
        unschedulable: planned
            .pending
            .iter()
            .filter(|p| p.node.is_none())
            .map(|p| (p.pod.clone(), p.reason.clone()))
            .collect(),
        nodes,
    })
}

/// The replacement of an interrupted `instance_type` node in `az`: the same capacity,
/// never the interrupted pool, falling back per the template (other AZ, other family,
/// on-demand).
pub fn interruption(
    market: &Market,
    template: &NodeTemplate,
    instance_type: &str,
    az: &str,
) -> Result<NodeToLaunch> {
    let it = market
        .catalog
        .types()
        .iter()
        .find(|t| t.name == instance_type)
        .ok_or_else(|| {
            invalid(
                "instance_type",
                format!("{instance_type} is not in the catalog"),
            )
        })?;
    let mut flags: BTreeSet<PoolKey> = market.risk_flags.clone();
    flags.insert(PoolKey::new(instance_type, az));
    let req = Requirements {
        cpu_millis: u64::from(it.vcpu) * 1000,
        memory_mib: it.memory_mib,
        gpus: it.gpus,
        arch: Some(it.arch),
        stateful: false,
    };
    let sel = spot::select(&market.catalog, template, &req, &flags)?;
    let c = sel.choices.into_iter().next().ok_or_else(|| {
        EngineError::NoCandidates("no replacement capacity is allowed by the template".into())
    })?;
    Ok(NodeToLaunch {
        instance_type: c.instance_type,
        lifecycle: c.lifecycle,
        az: c.az,
        hourly_price: c.hourly_price,
        pods: Vec::new(),
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::catalog::{Arch, Catalog, InstanceType, SpotPool};
    use crate::pack::CapacityReq;

    fn market() -> Market {
        let types = vec![
            InstanceType {
                name: "m5.large".into(),
                family: "m5".into(),
                vcpu: 2,
                memory_mib: 8192,
                gpus: 0,
                arch: Arch::X86_64,
                burstable: false,
                on_demand_hourly: 0.096,
            },
            InstanceType {
                name: "m5.xlarge".into(),
                family: "m5".into(),
                vcpu: 4,
                memory_mib: 16384,
                gpus: 0,
                arch: Arch::X86_64,
                burstable: false,
                on_demand_hourly: 0.192,
            },
        ];
        let pools = vec![
            SpotPool {
                instance_type: "m5.large".into(),
                az: "us-east-1a".into(),
                spot_price: 0.035,
                interruption_probability: 0.05,
            },
            SpotPool {
                instance_type: "m5.xlarge".into(),
                az: "us-east-1a".into(),
                spot_price: 0.07,
                interruption_probability: 0.05,
            },
            SpotPool {
                instance_type: "m5.xlarge".into(),
                az: "us-east-1b".into(),
                spot_price: 0.06,
                interruption_probability: 0.05,
            },
        ];
        Market {
            catalog: Catalog::new(types, pools).unwrap(),
            risk_flags: BTreeSet::new(),
            max_pods: Default::default(),
            overhead: Default::default(),
        }
    }

    #[test]
    fn pending_pods_get_nodes_and_every_pod_is_placed_once() {
        let pods: Vec<Pod> = (0..6)
            .map(|i| Pod::simple(format!("web/api-{i}"), 500, 1024))
            .collect();
        let l = pending_pods(&market(), &NodeTemplate::default(), &pods, 1_000).unwrap();
        assert!(!l.nodes.is_empty());
        assert!(l.unschedulable.is_empty());
        let mut placed: Vec<String> = l.nodes.iter().flat_map(|n| n.pods.clone()).collect();
        placed.sort();
        let mut want: Vec<String> = pods.iter().map(|p| p.id.clone()).collect();
        want.sort();
        assert_eq!(placed, want);
        let sum: f64 = l.nodes.iter().map(|n| n.hourly_price).sum();
        assert!((l.hourly_cost - sum).abs() < 1e-9);
        if let Some(lb) = l.lower_bound_hourly {
            assert!(
                lb <= l.objective_hourly + 1e-9,
                "{lb} > {}",
                l.objective_hourly
            );
        }
    }

    #[test]
    fn autoscaling_off_launches_nothing_and_says_why() {
        let pods: Vec<Pod> = (0..3)
            .map(|i| Pod {
                id: format!("web/p{i}"),
                cpu_millis: 500,
                memory_mib: 512,
                gpus: 0,
                capacity: CapacityReq::Any,
                arch: None,
                anti_affinity_group: None,
                az_spread_group: None,
            })
            .collect();
        let on = pending_pods_with(&market(), &NodeTemplate::default(), true, &pods, 0).unwrap();
        assert!(!on.nodes.is_empty());
        let off = pending_pods_with(&market(), &NodeTemplate::default(), false, &pods, 0).unwrap();
        assert!(off.nodes.is_empty(), "{off:?}");
        assert_eq!(off.hourly_cost, 0.0);
        assert_eq!(off.unschedulable.len(), 3);
        assert!(off
            .unschedulable
            .iter()
            .all(|(_, why)| why.contains("autoscaling is off")));
    }

    #[test]
    fn a_pod_no_offer_fits_is_reported_not_launched_for() {
        let mut huge = Pod::simple("ml/train", 64_000, 1024);
        huge.capacity = CapacityReq::Any;
        let l = pending_pods(&market(), &NodeTemplate::default(), &[huge], 1_000).unwrap();
        assert!(l.nodes.is_empty());
        assert_eq!(l.unschedulable.len(), 1);
        assert_eq!(l.unschedulable[0].0, "ml/train");
    }

    #[test]
    fn interruption_never_picks_the_interrupted_pool() {
        let n = interruption(
            &market(),
            &NodeTemplate::default(),
            "m5.xlarge",
            "us-east-1b",
        )
        .unwrap();
        assert!(!(n.instance_type == "m5.xlarge" && n.az == "us-east-1b"));
        let e = interruption(&market(), &NodeTemplate::default(), "x9.huge", "us-east-1a");
        assert!(e.is_err());
    }
}

#[cfg(test)]
mod selector_tests {
    use std::collections::BTreeMap;

    use crate::catalog::Arch;
    use crate::pack::CapacityReq;
    use crate::plan::constraints_from_node_selector;

    fn sel(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn node_selectors_become_capacity_and_arch_constraints() {
        assert_eq!(
            constraints_from_node_selector(&sel(&[])),
            (CapacityReq::Any, None)
        );
        assert_eq!(
            constraints_from_node_selector(&sel(&[
                ("karpenter.sh/capacity-type", "on-demand"),
                ("kubernetes.io/arch", "arm64")
            ])),
            (CapacityReq::OnDemand, Some(Arch::Arm64))
        );
        assert_eq!(
            constraints_from_node_selector(&sel(&[
                ("eks.amazonaws.com/capacityType", "SPOT"),
                ("kubernetes.io/arch", "amd64")
            ])),
            (CapacityReq::Spot, Some(Arch::X86_64))
        );
        assert_eq!(
            constraints_from_node_selector(&sel(&[("kubernetes.io/arch", "s390x")])),
            (CapacityReq::Any, None)
        );
    }
}
