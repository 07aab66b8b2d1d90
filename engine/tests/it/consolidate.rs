use std::collections::BTreeMap;

use proptest::prelude::*;
use spot_engine::catalog::{Arch, Lifecycle, Resources};
use spot_engine::consolidate::{
    consolidate, Aggressiveness, ClusterState, ConsolidationMethod, ConsolidationPolicy,
    NodeAction, Pdb, RunningNode, RunningPod,
};
use spot_engine::pack::{CapacityReq, NodeOffer};

const NOW: i64 = 1_800_000_000;

fn pod(name: &str, ns: &str, cpu: u64, mem: u64, pdb: Option<&str>) -> RunningPod {
    RunningPod {
        name: name.into(),
        namespace: ns.into(),
        labels: BTreeMap::new(),
        cpu_millis: cpu,
        memory_mib: mem,
        gpus: 0,
        capacity: CapacityReq::Any,
        arch: None,
        anti_affinity_group: None,
        pdb: pdb.map(Into::into),
        daemonset: false,
    }
}

fn node(name: &str, price: f64, pods: Vec<RunningPod>) -> RunningNode {
    RunningNode {
        name: name.into(),
        instance_type: "m5.xlarge".into(),
        lifecycle: Lifecycle::OnDemand,
        az: "a".into(),
        arch: Arch::X86_64,
        hourly_price: price,
        allocatable: Resources {
            cpu_millis: 4000,
            memory_mib: 16_000,
            gpus: 0,
            pods: 110,
        },
        created_at: NOW - 86_400,
        interruption_probability: 0.0,
        pods,
    }
}

fn replacement() -> Vec<NodeOffer> {
    vec![NodeOffer {
        instance_type: "m5.large".into(),
        lifecycle: Lifecycle::Spot,
        az: "a".into(),
        hourly_price: 0.035,
        arch: Arch::X86_64,
        allocatable: Resources {
            cpu_millis: 1900,
            memory_mib: 7000,
            gpus: 0,
            pods: 29,
        },
    }]
}

fn decision<'a>(
    p: &'a spot_engine::consolidate::ConsolidationPlan,
    n: &str,
) -> &'a spot_engine::consolidate::NodeDecision {
    p.decisions
        .iter()
        .find(|d| d.node == n)
        .expect("decision for every node")
}

#[test]
fn empty_node_is_deleted_and_underutilized_node_drained() {
    let state = ClusterState {
        nodes: vec![
            node("busy", 0.192, vec![pod("a", "default", 2500, 8000, None)]),
            node("empty", 0.192, vec![]),
            node("idle", 0.192, vec![pod("b", "default", 300, 500, None)]),
        ],
        pdbs: vec![],
    };
    let plan = consolidate(&state, &ConsolidationPolicy::default(), &replacement(), NOW);
    assert_eq!(plan.decisions.len(), 3);
    assert_eq!(decision(&plan, "empty").action, NodeAction::DeleteEmpty);
    assert_eq!(decision(&plan, "idle").action, NodeAction::DrainAndDelete);
    assert_eq!(decision(&plan, "idle").moves[0].to.as_deref(), Some("busy"));
    let busy = decision(&plan, "busy");
    assert_eq!(busy.action, NodeAction::Keep);
    assert!(!busy.reason.is_empty());
    assert!((plan.expected_monthly_savings - 2.0 * 0.192 * 730.0).abs() < 1e-6);
}

#[test]
fn excluded_namespace_keeps_node_unmanaged_with_zero_savings() {
    let state = ClusterState {
        nodes: vec![node(
            "sys",
            0.192,
            vec![pod("coredns", "kube-system", 100, 100, None)],
        )],
        pdbs: vec![],
    };
    let plan = consolidate(&state, &ConsolidationPolicy::default(), &replacement(), NOW);
    let d = decision(&plan, "sys");
    assert_eq!(d.action, NodeAction::Keep);
    assert!(d.unmanaged);
    assert_eq!(d.expected_monthly_savings, 0.0);
    assert!(plan.total_monthly_spend > 0.0);
}

#[test]
fn young_node_is_inside_stabilization_window() {
    let mut n = node("new", 0.192, vec![]);
    n.created_at = NOW - 60;
    let state = ClusterState {
        nodes: vec![n],
        pdbs: vec![],
    };
    let plan = consolidate(&state, &ConsolidationPolicy::default(), &replacement(), NOW);
    let d = decision(&plan, "new");
    assert_eq!(d.action, NodeAction::Keep);
    assert!(d.reason.contains("stabilization window"), "{}", d.reason);
}

#[test]
fn pdb_with_no_budget_blocks_drain_with_reason() {
    let state = ClusterState {
        nodes: vec![
            node("busy", 0.192, vec![pod("a", "default", 2500, 8000, None)]),
            node(
                "idle",
                0.192,
                vec![pod("web-1", "default", 300, 500, Some("web"))],
            ),
        ],
        pdbs: vec![Pdb {
            namespace: "default".into(),
            name: "web".into(),
            min_available: Some(2),
            max_unavailable: None,
            current_healthy: 2,
            expected_pods: 2,
        }],
    };
    let plan = consolidate(&state, &ConsolidationPolicy::default(), &replacement(), NOW);
    let d = decision(&plan, "idle");
    assert_eq!(d.action, NodeAction::Keep);
    assert!(d.reason.contains("PDB default/web"), "{}", d.reason);
}

#[test]
fn delete_empty_method_never_moves_pods() {
    let state = ClusterState {
        nodes: vec![
            node("busy", 0.192, vec![pod("a", "default", 2500, 8000, None)]),
            node("idle", 0.192, vec![pod("b", "default", 300, 500, None)]),
        ],
        pdbs: vec![],
    };
    let policy = ConsolidationPolicy {
        method: ConsolidationMethod::DeleteEmpty,
        ..ConsolidationPolicy::default()
    };
    let plan = consolidate(&state, &policy, &replacement(), NOW);
    assert!(plan.decisions.iter().all(|d| d.moves.is_empty()));
}

#[test]
fn aggressive_replaces_when_pods_do_not_fit_elsewhere() {
    let state = ClusterState {
        nodes: vec![node(
            "lonely",
            0.192,
            vec![pod("a", "default", 1500, 3000, None)],
        )],
        pdbs: vec![],
    };
    let policy = ConsolidationPolicy {
        aggressiveness: Aggressiveness::Aggressive,
        ..ConsolidationPolicy::default()
    };
    let plan = consolidate(&state, &policy, &replacement(), NOW);
    assert!(matches!(
        decision(&plan, "lonely").action,
        NodeAction::Replace { .. }
    ));
    let conservative = ConsolidationPolicy {
        aggressiveness: Aggressiveness::Conservative,
        ..ConsolidationPolicy::default()
    };
    let plan = consolidate(&state, &conservative, &replacement(), NOW);
    assert_eq!(decision(&plan, "lonely").action, NodeAction::Keep);
}

fn arb_cluster() -> impl Strategy<Value = ClusterState> {
    let arb_pod = (0u8..4, 0u8..3, 100u64..1500, 100u64..4000, 0u8..10);
    let arb_node = (prop::collection::vec(arb_pod, 0..5), 0i64..3, 0u8..10);
    (
        prop::collection::vec(arb_node, 1..8),
        prop::collection::vec((0u32..4, 0u32..3, prop::bool::ANY), 3),
    )
        .prop_map(|(nodes, pdbs)| {
            let mut n_out = Vec::new();
            for (ni, (pods, age, risk)) in nodes.into_iter().enumerate() {
                let mut ps = Vec::new();
                for (pi, (pdb, ns, cpu, mem, excl)) in pods.into_iter().enumerate() {
                    let mut p = pod(
                        &format!("p{ni}-{pi}"),
                        ["default", "web", "kube-system"][ns as usize],
                        cpu,
                        mem,
                        (pdb < 3).then(|| format!("pdb{pdb}")).as_deref(),
                    );
                    if excl == 0 {
                        p.labels
                            .insert("karpenter.sh/do-not-evict".into(), "true".into());
                    }
                    ps.push(p);
                }
                let mut n = node(&format!("n{ni}"), 0.1 + ni as f64 * 0.01, ps);
                n.created_at = NOW - [30, 3_600, 86_400][age as usize];
                n.interruption_probability = f64::from(risk) / 10.0;
                n_out.push(n);
            }
            let mut pdb_out = Vec::new();
            for (i, (healthy, min, use_max)) in pdbs.into_iter().enumerate() {
                for ns in ["default", "web", "kube-system"] {
                    pdb_out.push(Pdb {
                        namespace: ns.into(),
                        name: format!("pdb{i}"),
                        min_available: (!use_max).then_some(min),
                        max_unavailable: use_max.then_some(min),
                        current_healthy: healthy + 1,
                        expected_pods: healthy + 1,
                    });
                }
            }
            ClusterState {
                nodes: n_out,
                pdbs: pdb_out,
            }
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn consolidation_never_violates_a_pdb_or_touches_excluded(
        state in arb_cluster(),
        aggr in prop::sample::select(vec![Aggressiveness::Conservative, Aggressiveness::Balanced, Aggressiveness::Aggressive]),
    ) {
        let policy = ConsolidationPolicy { aggressiveness: aggr, ..ConsolidationPolicy::default() };
        let plan = consolidate(&state, &policy, &replacement(), NOW);
        prop_assert_eq!(plan.decisions.len(), state.nodes.len());
        let mut evicted: BTreeMap<String, u32> = BTreeMap::new();
        for d in &plan.decisions {
            prop_assert!(!d.reason.is_empty());
            let n = state.nodes.iter().find(|n| n.name == d.node).expect("node");
            if d.action != NodeAction::Keep {
                prop_assert!(NOW - n.created_at >= policy.stabilization_window_secs);
                prop_assert!(!d.unmanaged);
            }
            for m in &d.moves {
                let p = n.pods.iter().find(|p| p.key() == m.pod).expect("moved pod on node");
                prop_assert!(p.namespace != "kube-system");
                prop_assert!(p.labels.get("karpenter.sh/do-not-evict").map(String::as_str) != Some("true"));
                if let Some(pdb) = &p.pdb {
                    *evicted.entry(format!("{}/{}", p.namespace, pdb)).or_default() += 1;
                }
                if let Some(to) = &m.to {
                    let t = state.nodes.iter().find(|n| &n.name == to).expect("target");
                    prop_assert!(t.interruption_probability <= 0.5);
                }
            }
        }
        for pdb in &state.pdbs {
            let key = format!("{}/{}", pdb.namespace, pdb.name);
            let used = evicted.get(&key).copied().unwrap_or(0);
            prop_assert!(used <= pdb.disruptions_allowed(), "{key}: {used} > {}", pdb.disruptions_allowed());
        }
        prop_assert_eq!(&evicted, &plan.pdb_evictions);
    }
}
