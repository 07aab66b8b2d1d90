//! The planner: scenario tests with exact expectations and property tests (feasible,
//! within budgets and PDBs, protected nodes untouched, reasons for everything,
//! deterministic, on-demand minimums honoured).

use std::collections::BTreeMap;

use proptest::prelude::*;
use spot_engine::catalog::{Arch, Catalog, InstanceType, Lifecycle, NodeOverhead, SpotPool};
use spot_engine::consolidate::{Aggressiveness, ConsolidationMethod, Pdb};
use spot_engine::pack::CapacityReq;
use spot_engine::plan::{
    check, plan, KeepReason, Market, NodeFate, PlanAction, PlanInput, SnapNode, SnapPod,
    Strategy as PlanStrategy,
};
use spot_engine::policy::{
    ClusterPolicy, DisruptionBudget, LabelPair, OnDemandMinimum, SpotAffinity, SpotPreference,
};

const NOW: i64 = 1_767_225_600;

fn it(name: &str, vcpu: u32, gib: u64, gpus: u32, arch: Arch, od: f64) -> InstanceType {
    InstanceType {
        name: name.into(),
        family: name.split('.').next().unwrap_or("").into(),
        vcpu,
        memory_mib: gib * 1024,
        gpus,
        arch,
        burstable: false,
        on_demand_hourly: od,
    }
}

fn pool(t: &str, az: &str, price: f64, risk: f64) -> SpotPool {
    SpotPool {
        instance_type: t.into(),
        az: az.into(),
        spot_price: price,
        interruption_probability: risk,
    }
}

fn market() -> Market {
    let catalog = Catalog::new(
        vec![
            it("m5.large", 2, 8, 0, Arch::X86_64, 0.096),
            it("m5.xlarge", 4, 16, 0, Arch::X86_64, 0.192),
            it("m5.2xlarge", 8, 32, 0, Arch::X86_64, 0.384),
            it("c5.xlarge", 4, 8, 0, Arch::X86_64, 0.17),
            it("m6g.large", 2, 8, 0, Arch::Arm64, 0.077),
            it("g4dn.xlarge", 4, 16, 1, Arch::X86_64, 0.526),
        ],
        vec![
            pool("m5.large", "a", 0.040, 0.05),
            pool("m5.large", "b", 0.038, 0.10),
            pool("m5.xlarge", "a", 0.076, 0.05),
            pool("m5.xlarge", "b", 0.080, 0.02),
            pool("m5.2xlarge", "a", 0.150, 0.08),
            pool("c5.xlarge", "b", 0.068, 0.15),
            pool("m6g.large", "a", 0.031, 0.05),
            pool("g4dn.xlarge", "a", 0.21, 0.1),
        ],
    )
    .expect("catalog");
    Market {
        catalog,
        risk_flags: Default::default(),
        max_pods: BTreeMap::from([("m5.large".to_string(), 29), ("m6g.large".to_string(), 29)]),
        overhead: NodeOverhead::default(),
    }
}

fn pod(ns: &str, name: &str, cpu: u64, mem: u64) -> SnapPod {
    SnapPod {
        name: name.into(),
        namespace: ns.into(),
        labels: BTreeMap::new(),
        owner: None,
        priority: 0,
        cpu_millis: cpu,
        memory_mib: mem,
        gpus: 0,
        capacity: CapacityReq::Any,
        arch: None,
        anti_affinity_group: None,
        az_spread_group: None,
        pdb: None,
        do_not_disrupt: false,
        daemonset: false,
    }
}

fn node(
    m: &Market,
    name: &str,
    ty: &str,
    l: Lifecycle,
    az: &str,
    age: i64,
    pods: Vec<SnapPod>,
) -> SnapNode {
    let t = m.catalog.get(ty).expect("type");
    let oh = NodeOverhead {
        max_pods: m.max_pods.get(ty).copied().unwrap_or(110),
        ..NodeOverhead::default()
    };
    let (price, risk) = match l {
        Lifecycle::OnDemand => (t.on_demand_hourly, 0.0),
        Lifecycle::Spot => m
            .catalog
            .pools_of(ty)
            .find(|p| p.az == az)
            .map(|p| (p.spot_price, p.interruption_probability))
            .unwrap_or((t.on_demand_hourly * 0.4, 0.1)),
    };
    SnapNode {
        name: name.into(),
        instance_type: ty.into(),
        lifecycle: l,
        az: az.into(),
        arch: t.arch,
        hourly_price: price,
        allocatable: oh.allocatable(t),
        created_at: NOW - age,
        interruption_probability: risk,
        labels: BTreeMap::new(),
        taints: Vec::new(),
        unmanaged: false,
        do_not_disrupt: false,
        cordoned: false,
        ready: true,
        pinned: None,
        pods,
    }
}

fn input(
    nodes: Vec<SnapNode>,
    pending: Vec<SnapPod>,
    pdbs: Vec<Pdb>,
    policy: ClusterPolicy,
) -> PlanInput {
    PlanInput {
        nodes,
        pending,
        pdbs,
        policy,
        market: market(),
        now: NOW,
        pack_options: None,
    }
}

fn fate<'a>(p: &'a spot_engine::plan::Plan, n: &str) -> &'a NodeFate {
    &p.nodes.iter().find(|r| r.node == n).expect("report").fate
}

#[test]
fn empty_under_utilised_and_protected_nodes_get_the_right_decisions() {
    let m = market();
    let day = 86_400;
    let mut dnd = node(
        &m,
        "d-dnd",
        "m5.2xlarge",
        Lifecycle::OnDemand,
        "a",
        day,
        vec![pod("app", "x", 100, 100)],
    );
    dnd.do_not_disrupt = true;
    let mut unmanaged = node(
        &m,
        "e-unmanaged",
        "m5.2xlarge",
        Lifecycle::OnDemand,
        "a",
        day,
        vec![pod("app", "y", 100, 100)],
    );
    unmanaged.unmanaged = true;
    let nodes = vec![
        node(
            &m,
            "a-empty",
            "m5.xlarge",
            Lifecycle::OnDemand,
            "a",
            day,
            vec![],
        ),
        node(
            &m,
            "b-young",
            "m5.2xlarge",
            Lifecycle::OnDemand,
            "a",
            60,
            vec![pod("app", "z", 100, 100)],
        ),
        node(
            &m,
            "c-sys",
            "m5.2xlarge",
            Lifecycle::OnDemand,
            "a",
            day,
            vec![pod("kube-system", "dns", 100, 100)],
        ),
        dnd,
        unmanaged,
    ];
    let inp = input(nodes, vec![], vec![], ClusterPolicy::default());
    let p = plan(&inp).expect("plan");
    check(&inp, &p).expect("feasible");
    assert!(matches!(
        fate(&p, "a-empty"),
        NodeFate::DeletedEmpty { wave: 0 }
    ));
    assert_eq!(
        fate(&p, "b-young"),
        &NodeFate::Kept {
            why: KeepReason::StabilizationWindow
        }
    );
    assert_eq!(
        fate(&p, "c-sys"),
        &NodeFate::Kept {
            why: KeepReason::Unmanaged
        }
    );
    assert_eq!(
        fate(&p, "d-dnd"),
        &NodeFate::Kept {
            why: KeepReason::DoNotDisrupt
        }
    );
    assert_eq!(
        fate(&p, "e-unmanaged"),
        &NodeFate::Kept {
            why: KeepReason::Unmanaged
        }
    );
    // 5 nodes → budget 1 per wave.
    assert_eq!(p.disruption_budget, 1);
    assert!((p.costs.saving_hourly - 0.192).abs() < 1e-12);
}

#[test]
fn over_provisioned_on_demand_nodes_are_replaced_by_the_target_fleet_in_waves() {
    let m = market();
    let day = 86_400;
    // 12 old on-demand m5.2xlarge nodes, each 2 × (500 m, 1 GiB): 10 % → 1 per wave.
    let nodes: Vec<SnapNode> = (0..12)
        .map(|i| {
            node(
                &m,
                &format!("n{i:02}"),
                "m5.2xlarge",
                Lifecycle::OnDemand,
                "a",
                day,
                vec![
                    pod("app", &format!("p{i}a"), 500, 1024),
                    pod("app", &format!("p{i}b"), 500, 1024),
                ],
            )
        })
        .collect();
    let inp = input(nodes, vec![], vec![], ClusterPolicy::default());
    let p = plan(&inp).expect("plan");
    check(&inp, &p).expect("feasible");
    assert_eq!(p.strategy, PlanStrategy::Target);
    assert!(p.waves.iter().all(|w| w.disrupted <= 1));
    assert_eq!(p.waves.iter().map(|w| w.disrupted).sum::<u32>(), 12);
    assert!(
        p.costs.planned_hourly < 0.25 * p.costs.current_hourly,
        "{:?}",
        p.costs
    );
    assert!(p
        .fleet
        .iter()
        .filter(|n| n.new)
        .all(|n| n.lifecycle == Lifecycle::Spot));
    // Every removal says where its pods go.
    for w in &p.waves {
        for a in &w.actions {
            if let PlanAction::Replace { moves, by, .. } = a {
                assert!(!moves.is_empty() && !by.is_empty());
            }
        }
    }
    // Determinism.
    assert_eq!(plan(&inp).expect("again"), p);
    // The executor's view: one action per disrupted node, in wave order.
    let ap = p.to_action_plan();
    assert_eq!(ap.actions.len(), 12);
}

#[test]
fn pdb_allowance_spreads_evictions_over_waves() {
    let m = market();
    let day = 86_400;
    let mut nodes = Vec::new();
    for i in 0..30 {
        let mut a = pod("shop", &format!("api-{i}"), 300, 512);
        a.pdb = Some("api".into());
        nodes.push(node(
            &m,
            &format!("n{i:02}"),
            "m5.xlarge",
            Lifecycle::OnDemand,
            "a",
            day,
            vec![a],
        ));
    }
    let pdb = Pdb {
        namespace: "shop".into(),
        name: "api".into(),
        min_available: Some(28),
        max_unavailable: None,
        current_healthy: 30,
        expected_pods: 30,
    };
    // Budget 3 per wave, but the PDB allows 2 evictions at a time.
    let inp = input(nodes, vec![], vec![pdb], ClusterPolicy::default());
    let p = plan(&inp).expect("plan");
    check(&inp, &p).expect("feasible");
    assert_eq!(p.disruption_budget, 3);
    for w in &p.waves {
        assert!(w.pdb_evictions.get("shop/api").copied().unwrap_or(0) <= 2);
    }
    assert!(p
        .waves
        .iter()
        .any(|w| w.pdb_evictions.get("shop/api") == Some(&2)));
}

#[test]
fn max_waves_keeps_the_rest_with_budget_exhausted() {
    let m = market();
    let day = 86_400;
    let nodes: Vec<SnapNode> = (0..5)
        .map(|i| {
            node(
                &m,
                &format!("n{i}"),
                "m5.xlarge",
                Lifecycle::OnDemand,
                "a",
                day,
                vec![],
            )
        })
        .collect();
    let policy = ClusterPolicy {
        disruption_budget: DisruptionBudget {
            max_percent: 10.0,
            max_nodes: None,
            max_waves: Some(2),
        },
        ..ClusterPolicy::default()
    };
    let inp = input(nodes, vec![], vec![], policy);
    let p = plan(&inp).expect("plan");
    check(&inp, &p).expect("feasible");
    assert_eq!(p.waves.len(), 2);
    let exhausted = p
        .nodes
        .iter()
        .filter(|n| {
            n.fate
                == NodeFate::Kept {
                    why: KeepReason::BudgetExhausted,
                }
        })
        .count();
    assert_eq!(exhausted, 3);
}

#[test]
fn delete_empty_method_and_maintenance_mode() {
    let m = market();
    let day = 86_400;
    let nodes = vec![
        node(&m, "a", "m5.xlarge", Lifecycle::OnDemand, "a", day, vec![]),
        node(
            &m,
            "b",
            "m5.2xlarge",
            Lifecycle::OnDemand,
            "a",
            day,
            vec![pod("app", "x", 100, 100)],
        ),
    ];
    let policy = ClusterPolicy {
        method: ConsolidationMethod::DeleteEmpty,
        ..ClusterPolicy::default()
    };
    let inp = input(nodes.clone(), vec![], vec![], policy);
    let p = plan(&inp).expect("plan");
    assert!(matches!(fate(&p, "a"), NodeFate::DeletedEmpty { .. }));
    assert_eq!(
        fate(&p, "b"),
        &NodeFate::Kept {
            why: KeepReason::MethodDeleteEmpty
        }
    );
    let policy = ClusterPolicy {
        maintenance_mode: true,
        ..ClusterPolicy::default()
    };
    let inp = input(nodes, vec![pod("app", "new", 100, 100)], vec![], policy);
    let p = plan(&inp).expect("plan");
    check(&inp, &p).expect("feasible");
    assert!(p.nodes.iter().all(|n| n.fate
        == NodeFate::Kept {
            why: KeepReason::MaintenanceMode
        }));
    let ap = p.to_action_plan();
    assert!(ap.actions.is_empty());
}

#[test]
fn conservative_never_buys_replacements() {
    let m = market();
    let day = 86_400;
    let nodes: Vec<SnapNode> = (0..3)
        .map(|i| {
            node(
                &m,
                &format!("n{i}"),
                "m5.2xlarge",
                Lifecycle::OnDemand,
                "a",
                day,
                vec![pod("app", &format!("p{i}"), 3000, 4096)],
            )
        })
        .collect();
    let policy = ClusterPolicy {
        aggressiveness: Aggressiveness::Conservative,
        ..ClusterPolicy::default()
    };
    let inp = input(nodes, vec![], vec![], policy);
    let p = plan(&inp).expect("plan");
    check(&inp, &p).expect("feasible");
    assert!(p.fleet.iter().all(|n| !n.new));
    assert_eq!(p.strategy, PlanStrategy::Incremental);
}

#[test]
fn invalid_input_names_the_field() {
    let m = market();
    let mut n = node(&m, "a", "m5.xlarge", Lifecycle::OnDemand, "a", 1, vec![]);
    n.hourly_price = -1.0;
    let e = plan(&input(vec![n], vec![], vec![], ClusterPolicy::default())).unwrap_err();
    assert!(e.to_string().contains("nodes[0].hourly_price"), "{e}");
    let policy = ClusterPolicy {
        risk_premium: -1.0,
        ..ClusterPolicy::default()
    };
    let e = plan(&input(vec![], vec![], vec![], policy)).unwrap_err();
    assert!(e.to_string().contains("policy.risk_premium"), "{e}");
}

// ----- property tests -----------------------------------------------------------------

const TYPES: &[(&str, Lifecycle, &str)] = &[
    ("m5.large", Lifecycle::Spot, "a"),
    ("m5.large", Lifecycle::OnDemand, "b"),
    ("m5.xlarge", Lifecycle::Spot, "b"),
    ("m5.xlarge", Lifecycle::OnDemand, "a"),
    ("m5.2xlarge", Lifecycle::OnDemand, "a"),
    ("c5.xlarge", Lifecycle::Spot, "b"),
    ("m6g.large", Lifecycle::Spot, "a"),
];

#[derive(Debug, Clone)]
struct GenNode {
    ty: usize,
    age_old: bool,
    unmanaged: bool,
    dnd: bool,
    pods: Vec<(u64, u64, u8, bool, u8)>, // cpu, mem, ns, pdb member, anti-affinity group
}

fn gen_node() -> impl proptest::strategy::Strategy<Value = GenNode> {
    (
        0..TYPES.len(),
        prop::bool::weighted(0.85),
        prop::bool::weighted(0.08),
        prop::bool::weighted(0.08),
        prop::collection::vec(
            (50u64..900, 64u64..2048, 0u8..4, any::<bool>(), 0u8..6),
            0..5,
        ),
    )
        .prop_map(|(ty, age_old, unmanaged, dnd, pods)| GenNode {
            ty,
            age_old,
            unmanaged,
            dnd,
            pods,
        })
}

fn build(
    nodes: &[GenNode],
    pending: &[(u64, u64, u8)],
    allowed: u32,
    budget_pct: f64,
    aggr: u8,
    od_pct: Option<f64>,
) -> PlanInput {
    let m = market();
    let mut out = Vec::new();
    let mut pdb_members = 0u32;
    for (i, g) in nodes.iter().enumerate() {
        let (ty, l, az) = TYPES[g.ty];
        let mut n = node(
            &m,
            &format!("n{i:03}"),
            ty,
            l,
            az,
            if g.age_old { 86_400 } else { 30 },
            vec![],
        );
        n.unmanaged = g.unmanaged;
        n.do_not_disrupt = g.dnd;
        let mut used = (0u64, 0u64);
        let mut groups = Vec::new();
        for (k, &(cpu, mem, ns, in_pdb, aa)) in g.pods.iter().enumerate() {
            if used.0 + cpu > n.allocatable.cpu_millis || used.1 + mem > n.allocatable.memory_mib {
                continue;
            }
            let mut p = pod(
                ["web", "api", "jobs", "kube-system"][ns as usize],
                &format!("p{i}-{k}"),
                cpu,
                mem,
            );
            p.labels.insert("app".into(), format!("a{}", ns));
            if in_pdb && ns == 1 {
                p.pdb = Some("api".into());
                pdb_members += 1;
            }
            if aa < 2 && !groups.contains(&aa) {
                p.anti_affinity_group = Some(format!("g{aa}"));
                groups.push(aa);
            }
            used.0 += cpu;
            used.1 += mem;
            n.pods.push(p);
        }
        // A DaemonSet pod on every node.
        if used.0 + 50 <= n.allocatable.cpu_millis && used.1 + 64 <= n.allocatable.memory_mib {
            let mut d = pod("kube-system", &format!("aws-node-{i}"), 50, 64);
            d.daemonset = true;
            n.pods.push(d);
        }
        out.push(n);
    }
    let pend: Vec<SnapPod> = pending
        .iter()
        .enumerate()
        .map(|(k, &(cpu, mem, kind))| {
            let mut p = pod("web", &format!("pending-{k}"), cpu, mem);
            p.labels.insert("app".into(), "a0".into());
            match kind {
                0 => p.arch = Some(Arch::Arm64),
                1 => p.capacity = CapacityReq::OnDemand,
                2 => p.anti_affinity_group = Some("g0".into()),
                3 => p.az_spread_group = Some("s".into()),
                4 => p.gpus = 1,
                5 => p.cpu_millis = 500_000, // unschedulable
                _ => {}
            }
            p
        })
        .collect();
    let pdbs = vec![Pdb {
        namespace: "api".into(),
        name: "api".into(),
        min_available: Some(pdb_members.saturating_sub(allowed)),
        max_unavailable: None,
        current_healthy: pdb_members,
        expected_pods: pdb_members,
    }];
    let policy = ClusterPolicy {
        aggressiveness: [
            Aggressiveness::Conservative,
            Aggressiveness::Balanced,
            Aggressiveness::Aggressive,
        ][aggr as usize % 3],
        disruption_budget: DisruptionBudget {
            max_percent: budget_pct,
            max_nodes: None,
            max_waves: if aggr >= 3 { Some(2) } else { None },
        },
        on_demand_minimums: od_pct
            .map(|p| {
                vec![OnDemandMinimum {
                    namespace: Some("web".into()),
                    selector: BTreeMap::from([("app".to_string(), "a0".to_string())]),
                    percent: Some(p),
                    replicas: None,
                }]
            })
            .unwrap_or_default(),
        ..ClusterPolicy::default()
    };
    input(out, pend, pdbs, policy)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, .. ProptestConfig::default() })]

    #[test]
    fn plans_are_feasible_within_budgets_and_explain_everything(
        nodes in prop::collection::vec(gen_node(), 0..14),
        pending in prop::collection::vec((100u64..3000, 128u64..8192, 0u8..9), 0..8),
        allowed in 0u32..3,
        budget_pct in prop::sample::select(vec![5.0, 10.0, 25.0, 100.0]),
        aggr in 0u8..5,
        od in prop::option::of(prop::sample::select(vec![0.0, 30.0, 50.0, 100.0])),
    ) {
        let inp = build(&nodes, &pending, allowed, budget_pct, aggr, od);
        let p = plan(&inp).expect("plan");
        // Feasible; budgets and PDBs per wave; protected nodes untouched; reasons cover
        // every node and every pending pod (all inside `check`).
        if let Err(e) = check(&inp, &p) {
            return Err(TestCaseError::fail(e));
        }
        // Protected nodes are reported kept with the protecting reason.
        for (i, n) in inp.nodes.iter().enumerate() {
            if n.unmanaged {
                prop_assert_eq!(&p.nodes[i].fate, &NodeFate::Kept { why: KeepReason::Unmanaged });
            }
            if !n.unmanaged && n.do_not_disrupt && !n.pods.iter().any(|p| !p.daemonset && p.namespace == "kube-system") {
                prop_assert_eq!(&p.nodes[i].fate, &NodeFate::Kept { why: KeepReason::DoNotDisrupt });
            }
        }
        for r in &p.nodes {
            prop_assert!(!r.reason.is_empty());
        }
        for r in &p.pending {
            prop_assert!(!r.reason.is_empty());
        }
        prop_assert!(p.costs.lower_bound_hourly <= p.costs.objective_hourly + 1e-9);
        // An on-demand minimum is met, or the plan says why not.
        if let Some(rule) = inp.policy.on_demand_minimums.first() {
            let (mut matching, mut on_od) = (0usize, 0usize);
            let scheduled: std::collections::BTreeSet<&str> =
                p.pending.iter().filter(|r| r.node.is_some()).map(|r| r.pod.as_str()).collect();
            for f in &p.fleet {
                for id in &f.pods {
                    let q = inp.nodes.iter().flat_map(|n| n.pods.iter()).chain(inp.pending.iter()).find(|q| &q.key() == id);
                    if q.is_some_and(|q| rule.matches(&q.namespace, &q.labels)) {
                        matching += 1;
                        on_od += usize::from(f.lifecycle == Lifecycle::OnDemand);
                    }
                }
            }
            let unscheduled = inp.pending.iter().filter(|q| rule.matches(&q.namespace, &q.labels) && !scheduled.contains(q.key().as_str())).count();
            let required = rule.required(matching + unscheduled);
            prop_assert!(on_od >= required || !p.warnings.is_empty(), "{} < {} without a warning", on_od, required);
        }
        // Deterministic.
        prop_assert_eq!(plan(&inp).expect("again"), p);
    }

    #[test]
    fn on_demand_minimum_is_met(
        nodes in prop::collection::vec(gen_node(), 0..10),
        pending in prop::collection::vec((100u64..3000, 128u64..8192, 6u8..9), 0..10),
        pct in 0.0f64..=100.0,
    ) {
        // Only managed, old nodes: every matching pod is movable or already placed.
        let nodes: Vec<GenNode> = nodes
            .into_iter()
            .map(|g| GenNode {
                age_old: true,
                unmanaged: false,
                dnd: false,
                // No kube-system pods: those make a node unmanaged (pinned).
                pods: g.pods.into_iter().map(|(c, m, ns, b, a)| (c, m, ns % 3, b, a)).collect(),
                ..g
            })
            .collect();
        let inp = build(&nodes, &pending, 100, 10.0, 1, Some(pct));
        let p = plan(&inp).expect("plan");
        if let Err(e) = check(&inp, &p) {
            return Err(TestCaseError::fail(e));
        }
        let rule = &inp.policy.on_demand_minimums[0];
        let matching: Vec<String> = inp
            .nodes
            .iter()
            .flat_map(|n| n.pods.iter())
            .chain(inp.pending.iter())
            .filter(|q| !q.daemonset && rule.matches(&q.namespace, &q.labels))
            .map(|q| q.key())
            .collect();
        let required = rule.required(matching.len());
        let on_od = p
            .fleet
            .iter()
            .filter(|n| n.lifecycle == Lifecycle::OnDemand)
            .flat_map(|n| n.pods.iter())
            .filter(|id| matching.contains(id))
            .count();
        prop_assert!(on_od >= required, "{} of {} required on on-demand", on_od, required);
        prop_assert!(p.warnings.is_empty());
    }
}

#[test]
fn pending_pods_alone_plan_onto_existing_room_then_new_nodes() {
    // The pending-pod reaction: room on an existing node first, the rest on new nodes, with
    // a latency budget (first-fit-decreasing only).
    let m = market();
    let nodes = vec![node(
        &m,
        "a",
        "m5.xlarge",
        Lifecycle::Spot,
        "a",
        60,
        vec![pod("app", "x", 3000, 1024)],
    )];
    let pending: Vec<SnapPod> = (0..6)
        .map(|i| pod("app", &format!("p{i}"), 500, 1024))
        .collect();
    let mut inp = input(nodes, pending, vec![], ClusterPolicy::default());
    inp.pack_options = Some(spot_engine::pack::PackOptions {
        ffd_only: true,
        ..Default::default()
    });
    let p = plan(&inp).expect("plan");
    check(&inp, &p).expect("feasible");
    // m5.xlarge allocatable 3820 m with 3000 m used: room for one 500 m pod.
    assert_eq!(
        p.pending
            .iter()
            .filter(|r| r.node.as_deref() == Some("a"))
            .count(),
        1
    );
    assert!(p
        .pending
        .iter()
        .all(|r| r.node.is_some() && r.wave == Some(0)));
    assert_eq!(
        p.nodes[0].fate,
        NodeFate::Kept {
            why: KeepReason::StabilizationWindow
        }
    );
}

/// The policy's namespace spot rules and excluded labels change what the planner does:
/// `never` keeps a namespace's pods off spot (the target fleet costs more), `force` keeps
/// them off on-demand, and a pod with an excluded label makes its node unmanaged.
#[test]
fn spot_affinity_and_excluded_labels_drive_the_plan() {
    let m = market();
    let day = 86_400;
    let nodes: Vec<SnapNode> = (0..6)
        .map(|i| {
            let mut legacy = pod("app", &format!("p{i}a"), 500, 1024);
            if i == 0 {
                legacy
                    .labels
                    .insert("app".to_string(), "legacy-db".to_string());
            }
            node(
                &m,
                &format!("n{i:02}"),
                "m5.2xlarge",
                Lifecycle::OnDemand,
                "a",
                day,
                vec![legacy, pod("app", &format!("p{i}b"), 500, 1024)],
            )
        })
        .collect();
    let budget = DisruptionBudget {
        max_percent: 100.0,
        max_nodes: None,
        max_waves: None,
    };
    let base = ClusterPolicy {
        disruption_budget: budget.clone(),
        ..ClusterPolicy::default()
    };
    let default_plan = plan(&input(nodes.clone(), vec![], vec![], base.clone())).expect("plan");
    assert!(default_plan
        .fleet
        .iter()
        .filter(|n| n.new)
        .any(|n| n.lifecycle == Lifecycle::Spot));

    let never = ClusterPolicy {
        spot_affinity: vec![SpotAffinity {
            namespace: "app".into(),
            mode: SpotPreference::Never,
        }],
        ..base.clone()
    };
    let inp = input(nodes.clone(), vec![], vec![], never);
    let p = plan(&inp).expect("plan");
    check(&inp, &p).expect("feasible");
    assert!(p
        .fleet
        .iter()
        .filter(|n| n.new)
        .all(|n| n.lifecycle == Lifecycle::OnDemand));
    assert!(
        p.costs.planned_hourly > default_plan.costs.planned_hourly,
        "never-spot {:?} vs default {:?}",
        p.costs,
        default_plan.costs
    );

    let force = ClusterPolicy {
        spot_affinity: vec![SpotAffinity {
            namespace: "app".into(),
            mode: SpotPreference::Force,
        }],
        ..base.clone()
    };
    let p = plan(&input(nodes.clone(), vec![], vec![], force)).expect("plan");
    assert!(p
        .fleet
        .iter()
        .filter(|n| n.new)
        .all(|n| n.lifecycle == Lifecycle::Spot));

    let excluded = ClusterPolicy {
        excluded_labels: vec![LabelPair {
            key: "app".into(),
            value: "legacy-db".into(),
        }],
        ..base
    };
    let p = plan(&input(nodes, vec![], vec![], excluded)).expect("plan");
    assert_eq!(
        fate(&p, "n00"),
        &NodeFate::Kept {
            why: KeepReason::Unmanaged
        }
    );
    assert!(
        matches!(
            fate(&default_plan, "n00"),
            NodeFate::Replaced { .. } | NodeFate::Drained { .. }
        ),
        "{:?}",
        fate(&default_plan, "n00")
    );
}

fn owned(ns: &str, name: &str, owner: &str, cpu: u64, mem: u64) -> SnapPod {
    SnapPod {
        owner: Some(owner.into()),
        ..pod(ns, name, cpu, mem)
    }
}

/// Autoscaling off: the planner never buys a node. The over-provisioned fleet the target
/// strategy would replace is only consolidated into existing capacity, and pending pods go
/// only into existing room (the rest are unschedulable, saying why).
#[test]
fn autoscaling_off_never_launches_a_node() {
    let m = market();
    let day = 86_400;
    let nodes: Vec<SnapNode> = (0..6)
        .map(|i| {
            node(
                &m,
                &format!("n{i:02}"),
                "m5.2xlarge",
                Lifecycle::OnDemand,
                "a",
                day,
                if i == 5 {
                    Vec::new()
                } else {
                    vec![pod("app", &format!("p{i}"), 500, 1024)]
                },
            )
        })
        .collect();
    let pending: Vec<SnapPod> = (0..3)
        .map(|i| pod("app", &format!("q{i}"), 6000, 20 * 1024))
        .collect();
    let on = input(
        nodes.clone(),
        pending.clone(),
        vec![],
        ClusterPolicy {
            disruption_budget: DisruptionBudget {
                max_percent: 100.0,
                ..DisruptionBudget::default()
            },
            ..ClusterPolicy::default()
        },
    );
    let p_on = plan(&on).expect("plan");
    check(&on, &p_on).expect("feasible");
    let launches = |p: &spot_engine::plan::Plan| {
        p.waves
            .iter()
            .flat_map(|w| w.actions.iter())
            .filter(|a| matches!(a, PlanAction::Launch { .. }))
            .count()
    };
    assert!(launches(&p_on) > 0, "autoscaling on buys nodes");
    let mut off = on.clone();
    off.policy.autoscaling = false;
    let p = plan(&off).expect("plan");
    check(&off, &p).expect("feasible");
    assert_eq!(launches(&p), 0, "{:?}", p.waves);
    assert!(p.fleet.iter().all(|n| !n.new));
    assert!(p
        .nodes
        .iter()
        .all(|r| !matches!(r.fate, NodeFate::Replaced { .. })));
    assert_ne!(p.strategy, PlanStrategy::Target);
    // It still consolidates: the empty node goes, light nodes drain onto the others.
    assert!(matches!(fate(&p, "n05"), NodeFate::DeletedEmpty { .. }));
    assert!(
        p.nodes
            .iter()
            .filter(|r| matches!(r.fate, NodeFate::Drained { .. }))
            .count()
            >= 1
    );
    // Pending pods: into existing room, or unschedulable with the reason.
    for r in &p.pending {
        match &r.node {
            Some(n) => assert!(!n.starts_with("new-"), "{r:?}"),
            None => assert!(r.reason.contains("autoscaling is off"), "{r:?}"),
        }
    }
    assert!(p.costs.planned_hourly <= p.costs.current_hourly + 1e-9);
}

/// Multi-AZ spread: the pods of one workload are spread over zones on new nodes, and
/// consolidation never moves a workload's pod into another zone.
#[test]
fn multi_az_spread_spreads_each_workload_over_zones() {
    let pending: Vec<SnapPod> = (0..4)
        .map(|i| owned("web", &format!("api-{i}"), "Deployment/api", 500, 1024))
        .collect();
    let mut inp = input(vec![], pending, vec![], ClusterPolicy::default());
    let zones_of = |p: &spot_engine::plan::Plan| {
        let mut per: BTreeMap<String, usize> = BTreeMap::new();
        for n in &p.fleet {
            *per.entry(n.az.clone()).or_default() += n.pods.len();
        }
        per.retain(|_, c| *c > 0);
        per
    };
    let plain = plan(&inp).expect("plan");
    check(&inp, &plain).expect("feasible");
    inp.policy.multi_az_spread = true;
    let spread = plan(&inp).expect("plan");
    check(&inp, &spread).expect("feasible");
    let per = zones_of(&spread);
    assert!(per.len() >= 2, "one zone: {per:?}");
    let (lo, hi) = (
        per.values().min().copied().unwrap_or(0),
        per.values().max().copied().unwrap_or(0),
    );
    assert!(hi - lo <= 1, "skew {per:?}");
    assert_eq!(per.values().sum::<usize>(), 4);
    assert_ne!(plain.fleet, spread.fleet, "the policy changes the plan");
    // Pods without an owner are not grouped by the policy.
    let loose: Vec<SnapPod> = (0..4)
        .map(|i| pod("web", &format!("x-{i}"), 500, 1024))
        .collect();
    let mut li = input(vec![], loose, vec![], ClusterPolicy::default());
    let a = plan(&li).expect("plan");
    li.policy.multi_az_spread = true;
    assert_eq!(plan(&li).expect("plan").fleet, a.fleet);

    // Consolidation (autoscaling off: existing capacity only): two light nodes in two
    // zones, one pod of `api` each. Without spread one drains onto the other; with
    // spread both stay, each pod in its zone.
    let m = market();
    let day = 86_400;
    let nodes = vec![
        node(
            &m,
            "za",
            "m5.xlarge",
            Lifecycle::Spot,
            "a",
            day,
            vec![owned("web", "api-0", "Deployment/api", 500, 1024)],
        ),
        node(
            &m,
            "zb",
            "m5.xlarge",
            Lifecycle::Spot,
            "b",
            day,
            vec![owned("web", "api-1", "Deployment/api", 500, 1024)],
        ),
    ];
    let policy = ClusterPolicy {
        autoscaling: false,
        disruption_budget: DisruptionBudget {
            max_percent: 100.0,
            ..DisruptionBudget::default()
        },
        ..ClusterPolicy::default()
    };
    let mut ci = input(nodes, vec![], vec![], policy);
    let p = plan(&ci).expect("plan");
    check(&ci, &p).expect("feasible");
    assert_eq!(
        p.nodes
            .iter()
            .filter(|r| matches!(r.fate, NodeFate::Drained { .. }))
            .count(),
        1,
        "{:?}",
        p.nodes
    );
    ci.policy.multi_az_spread = true;
    let p = plan(&ci).expect("plan");
    check(&ci, &p).expect("feasible");
    for n in ["za", "zb"] {
        assert_eq!(
            fate(&p, n),
            &NodeFate::Kept {
                why: KeepReason::PodsDoNotFit
            },
            "{:?}",
            p.nodes
        );
    }
}
