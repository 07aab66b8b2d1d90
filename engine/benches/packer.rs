//! Macro benchmark: LP (column generation) plan vs Karpenter-style FFD vs the LP lower
//! bound on generated clusters, against a generated catalog of ~150 instance types.
//!
//! Run: `cargo bench -p spot-engine --bench packer` (release). Prints a table; every
//! plan is checked with `check_plan` before it is reported.
//!
//! The catalog is synthetic but shaped like EC2: 18 families (general/compute/memory,
//! Intel/AMD/Graviton, plus burstable t3/t4g) × 8 sizes + 6 GPU types; memory per vCPU
//! 2/4/8 GiB; on-demand price per vCPU-hour from public us-east-1 list prices
//! (rounded, 2025); spot discounts of 55–75 % and interruption probabilities drawn from a
//! seeded generator, three zones.

use std::collections::BTreeSet;
use std::time::Instant;

use spot_engine::catalog::NodeOverhead;
use spot_engine::pack::{check_plan, pack, pack_ffd, NodeOffer, PackOptions, Pod};
use spot_engine::spot::{offers_for_template, NodeTemplate};

mod common;
use common::{catalog, workload};

fn ms(d: std::time::Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn run(name: &str, pods: &[Pod], offers: &[NodeOffer]) {
    let t0 = Instant::now();
    let ffd = pack_ffd(pods, offers).expect("ffd plan");
    let t_ffd = t0.elapsed();
    let t1 = Instant::now();
    let lp = pack(pods, offers, &PackOptions::default()).expect("lp plan");
    let t_lp = t1.elapsed();
    check_plan(pods, offers, &ffd).expect("ffd plan valid");
    check_plan(pods, offers, &lp).expect("lp plan valid");
    // Determinism: a second run gives the identical plan.
    let again = pack(pods, offers, &PackOptions::default()).expect("lp plan");
    assert_eq!(again.nodes, lp.nodes, "plan not deterministic");
    let lb = lp.lower_bound_hourly;
    let lp_only = lp.stats.lp_plan_cost_hourly.unwrap_or(f64::NAN);
    println!(
        "| {name:<18} | {:>6} | {:>10.4} | {:>10.4} | {:>10.4} | {:>7.4} | {:>7.4} | {:>5} | {:>5} | {:>6} | {:>4}/{:<4} | {:>9.1} | {:>9.1} |",
        pods.len(),
        lb,
        lp.cost_hourly,
        ffd.cost_hourly,
        lp.cost_hourly / lb,
        ffd.cost_hourly / lb,
        lp.nodes.len(),
        ffd.nodes.len(),
        format!("{:?}", lp.solver).to_lowercase(),
        lp.stats.colgen_iterations,
        if lp.stats.lp_converged { "conv" } else { "cut" },
        ms(t_lp),
        ms(t_ffd),
    );
    if std::env::var("PACK_VERBOSE").is_ok() {
        println!("|   stats: {:?}", lp.stats);
    }
    if (lp_only - lp.cost_hourly).abs() > 1e-9 {
        println!("|   (LP-dive plan alone: ${lp_only:.4}/h)");
    }
}

fn main() {
    let cat = catalog();
    let offers = offers_for_template(
        &cat,
        &NodeTemplate::default(),
        &BTreeSet::new(),
        &NodeOverhead::default(),
    );
    println!(
        "catalog: {} instance types, {} spot pools, {} offers after template/risk filter",
        cat.types().len(),
        cat.pools().len(),
        offers.len()
    );
    println!(
        "| scenario           |   pods |   LB $/h   |   LP $/h   |  FFD $/h   | LP/LB   | FFD/LB  | LPnod | FFDnd | solver | iters     |   LP ms   |  FFD ms   |"
    );
    println!("|{}|", "-".repeat(150));
    let sizes: Vec<usize> = std::env::var("PACK_SIZES")
        .ok()
        .map(|s| s.split(',').filter_map(|x| x.parse().ok()).collect())
        .unwrap_or_else(|| vec![100, 1_000, 10_000]);
    for &(n, constrained) in &[
        (100, false),
        (1_000, false),
        (10_000, false),
        (100, true),
        (1_000, true),
    ] {
        if !sizes.contains(&n) {
            continue;
        }
        let pods = workload(n, 7 + n as u64, constrained);
        let name = if constrained {
            "mixed-constraints"
        } else {
            "cpu/memory"
        };
        run(name, &pods, &offers);
    }
}
