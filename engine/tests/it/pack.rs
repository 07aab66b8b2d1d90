use proptest::prelude::*;
use spot_engine::catalog::{Arch, Lifecycle, Resources};
use spot_engine::pack::{
    check_plan, pack, pack_ffd, CapacityReq, NodeOffer, PackOptions, Pod, SolverKind,
};
use spot_engine::EngineError;

fn offer(
    name: &str,
    l: Lifecycle,
    az: &str,
    price: f64,
    arch: Arch,
    vcpu: u64,
    gib: u64,
) -> NodeOffer {
    NodeOffer {
        instance_type: name.into(),
        lifecycle: l,
        az: az.into(),
        hourly_price: price,
        arch,
        allocatable: Resources {
            cpu_millis: vcpu * 1000 - 100,
            memory_mib: gib * 1024 - 512,
            gpus: 0,
            pods: 58,
        },
    }
}

fn offers() -> Vec<NodeOffer> {
    let mut v = Vec::new();
    let types: &[(&str, Arch, u64, u64, f64)] = &[
        ("m5.large", Arch::X86_64, 2, 8, 0.096),
        ("m5.xlarge", Arch::X86_64, 4, 16, 0.192),
        ("m5.4xlarge", Arch::X86_64, 16, 64, 0.768),
        ("c5.xlarge", Arch::X86_64, 4, 8, 0.17),
        ("c5.4xlarge", Arch::X86_64, 16, 32, 0.68),
        ("r5.xlarge", Arch::X86_64, 4, 32, 0.252),
        ("m6g.xlarge", Arch::Arm64, 4, 16, 0.154),
        ("c6g.2xlarge", Arch::Arm64, 8, 16, 0.272),
    ];
    for &(n, a, c, m, p) in types {
        for (k, az) in ["a", "b"].iter().enumerate() {
            v.push(offer(n, Lifecycle::OnDemand, az, p, a, c, m));
            v.push(offer(
                n,
                Lifecycle::Spot,
                az,
                p * (0.3 + 0.05 * k as f64),
                a,
                c,
                m,
            ));
        }
    }
    v
}

fn small_opts() -> PackOptions {
    PackOptions {
        max_colgen_iterations: 30,
        pricing_node_limit: 2_000,
        max_new_columns_per_iteration: 20,
        max_rounding_solves: 100,
        residual_colgen_iterations: 1,
        ffd_only: false,
    }
}

#[test]
fn identical_pods_pack_near_the_bound() {
    let pods: Vec<Pod> = (0..60)
        .map(|i| Pod::simple(format!("p{i:02}"), 500, 1024))
        .collect();
    let offers = offers();
    let plan = pack(&pods, &offers, &PackOptions::default()).expect("plan");
    check_plan(&pods, &offers, &plan).expect("valid");
    let ffd = pack_ffd(&pods, &offers).expect("ffd");
    assert!(plan.cost_hourly <= ffd.cost_hourly + 1e-9);
    assert!(plan.lower_bound_hourly <= plan.cost_hourly + 1e-9);
    assert!(!plan.reason.is_empty());
}

#[test]
fn empty_input_is_an_empty_plan() {
    let plan = pack(&[], &offers(), &PackOptions::default()).expect("plan");
    assert!(plan.nodes.is_empty());
    assert_eq!(plan.cost_hourly, 0.0);
}

#[test]
fn pod_too_big_for_any_offer_is_unschedulable() {
    let pods = vec![Pod::simple("huge", 64_000, 1024)];
    match pack(&pods, &offers(), &PackOptions::default()) {
        Err(EngineError::Unschedulable { pod, .. }) => assert_eq!(pod, "huge"),
        other => panic!("expected Unschedulable, got {other:?}"),
    }
}

#[test]
fn duplicate_pod_ids_are_rejected() {
    let pods = vec![Pod::simple("a", 100, 100), Pod::simple("a", 100, 100)];
    assert!(matches!(
        pack(&pods, &offers(), &PackOptions::default()),
        Err(EngineError::InvalidInput { .. })
    ));
}

#[test]
fn zone_spread_deals_replicas_over_zones() {
    let pods: Vec<Pod> = (0..7)
        .map(|i| Pod {
            az_spread_group: Some("web".into()),
            ..Pod::simple(format!("web-{i}"), 250, 256)
        })
        .collect();
    let offers = offers();
    let plan = pack(&pods, &offers, &small_opts()).expect("plan");
    check_plan(&pods, &offers, &plan).expect("valid");
    let in_a: usize = plan
        .nodes
        .iter()
        .filter(|n| n.az == "a")
        .map(|n| n.pods.len())
        .sum();
    assert!(in_a == 3 || in_a == 4, "{in_a} of 7 in zone a");
}

#[test]
fn packing_is_deterministic() {
    let pods: Vec<Pod> = (0..40)
        .map(|i| {
            Pod::simple(
                format!("p{i:02}"),
                100 + (i as u64 * 37) % 900,
                128 + (i as u64 * 211) % 3000,
            )
        })
        .collect();
    let offers = offers();
    let a = pack(&pods, &offers, &small_opts()).expect("plan");
    let b = pack(&pods, &offers, &small_opts()).expect("plan");
    assert_eq!(a, b);
}

fn arb_pod(i: usize) -> impl Strategy<Value = Pod> {
    (
        prop::sample::select(vec![100u64, 250, 500, 1000, 2000, 3500]),
        prop::sample::select(vec![128u64, 512, 1024, 2048, 4096, 12_000]),
        prop::sample::select(vec![
            CapacityReq::Any,
            CapacityReq::Any,
            CapacityReq::Spot,
            CapacityReq::OnDemand,
        ]),
        prop::option::weighted(0.2, prop::sample::select(vec![Arch::X86_64, Arch::Arm64])),
        prop::option::weighted(0.2, 0u8..3),
        prop::option::weighted(0.15, 0u8..2),
    )
        .prop_map(move |(cpu, mem, cap, arch, aa, spread)| Pod {
            id: format!("pod-{i:03}"),
            cpu_millis: cpu,
            memory_mib: mem,
            gpus: 0,
            capacity: cap,
            arch,
            anti_affinity_group: aa.map(|g| format!("aa-{g}")),
            az_spread_group: spread.map(|g| format!("sp-{g}")),
        })
}

fn arb_pods() -> impl Strategy<Value = Vec<Pod>> {
    (1usize..36).prop_flat_map(|n| (0..n).map(arb_pod).collect::<Vec<_>>())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn plans_satisfy_every_invariant(pods in arb_pods()) {
        let offers = offers();
        let plan = pack(&pods, &offers, &small_opts()).expect("plan");
        let ffd = pack_ffd(&pods, &offers).expect("ffd");
        // every pod exactly once, capacity in every dimension, arch, capacity type,
        // anti-affinity, zone spread, cost = node sum, cost >= lower bound
        prop_assert_eq!(check_plan(&pods, &offers, &plan), Ok(()));
        prop_assert_eq!(check_plan(&pods, &offers, &ffd), Ok(()));
        prop_assert!(plan.cost_hourly + 1e-9 >= plan.lower_bound_hourly);
        prop_assert!(ffd.cost_hourly + 1e-9 >= plan.lower_bound_hourly);
        // the returned plan is never dearer than the FFD baseline
        prop_assert!(plan.cost_hourly <= ffd.cost_hourly + 1e-9);
        if plan.proven_optimal {
            prop_assert!(ffd.cost_hourly + 1e-9 >= plan.cost_hourly);
        }
        if plan.solver == SolverKind::Lp {
            prop_assert!(plan.stats.lp_plan_cost_hourly.is_some());
        }
    }
}

fn arb_many_shapes() -> impl Strategy<Value = Vec<Pod>> {
    (150usize..260).prop_flat_map(|n| (0..n).map(arb_pod).collect::<Vec<_>>())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 6, ..ProptestConfig::default() })]

    /// Many constrained shapes take the fluid-LP path (bound by class generation and
    /// pricing, plan rounded and its remainders repacked): every invariant still holds,
    /// the bound stays below every plan, and the result is deterministic.
    #[test]
    fn fluid_path_plans_satisfy_every_invariant(pods in arb_many_shapes()) {
        let offers = offers();
        let plan = pack(&pods, &offers, &small_opts()).expect("plan");
        let ffd = pack_ffd(&pods, &offers).expect("ffd");
        prop_assert_eq!(check_plan(&pods, &offers, &plan), Ok(()));
        prop_assert!(ffd.cost_hourly + 1e-9 >= plan.lower_bound_hourly);
        prop_assert!(plan.cost_hourly <= ffd.cost_hourly + 1e-9);
        if plan.stats.shapes >= 60 {
            prop_assert!(plan.stats.integer_status.contains("fluid LP"), "{}", plan.stats.integer_status);
        }
        let again = pack(&pods, &offers, &small_opts()).expect("plan");
        prop_assert_eq!(again, plan);
    }
}
