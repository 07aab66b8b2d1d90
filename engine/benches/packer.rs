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

use spot_engine::catalog::{Arch, Catalog, InstanceType, NodeOverhead, SpotPool};
use spot_engine::pack::{check_plan, pack, pack_ffd, CapacityReq, NodeOffer, PackOptions, Pod};
use spot_engine::spot::{offers_for_template, NodeTemplate};

struct Lcg(u64);
impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.0 >> 33
    }
    fn unit(&mut self) -> f64 {
        (self.next() % 1_000_000) as f64 / 1_000_000.0
    }
    fn pick<T: Copy>(&mut self, xs: &[T]) -> T {
        xs[(self.next() % xs.len() as u64) as usize]
    }
}

fn catalog() -> Catalog {
    // (family, GiB per vCPU, USD per vCPU-hour, arch, burstable)
    let fams: &[(&str, u64, f64, Arch, bool)] = &[
        ("m5", 4, 0.0480, Arch::X86_64, false),
        ("m6i", 4, 0.0480, Arch::X86_64, false),
        ("m7i", 4, 0.0504, Arch::X86_64, false),
        ("m6a", 4, 0.0432, Arch::X86_64, false),
        ("m6g", 4, 0.0385, Arch::Arm64, false),
        ("m7g", 4, 0.0408, Arch::Arm64, false),
        ("c5", 2, 0.0425, Arch::X86_64, false),
        ("c6i", 2, 0.0425, Arch::X86_64, false),
        ("c7i", 2, 0.0446, Arch::X86_64, false),
        ("c6a", 2, 0.0383, Arch::X86_64, false),
        ("c6g", 2, 0.0340, Arch::Arm64, false),
        ("c7g", 2, 0.0363, Arch::Arm64, false),
        ("r5", 8, 0.0630, Arch::X86_64, false),
        ("r6i", 8, 0.0630, Arch::X86_64, false),
        ("r6a", 8, 0.0567, Arch::X86_64, false),
        ("r6g", 8, 0.0504, Arch::Arm64, false),
        ("t3", 4, 0.0416, Arch::X86_64, true),
        ("t4g", 4, 0.0336, Arch::Arm64, true),
    ];
    let sizes: &[(&str, u32)] = &[
        ("large", 2),
        ("xlarge", 4),
        ("2xlarge", 8),
        ("4xlarge", 16),
        ("8xlarge", 32),
        ("12xlarge", 48),
        ("16xlarge", 64),
        ("24xlarge", 96),
    ];
    let mut types = Vec::new();
    for &(f, gib, per_vcpu, arch, burst) in fams {
        for &(s, vcpu) in sizes {
            if burst && vcpu > 8 {
                continue;
            }
            types.push(InstanceType {
                name: format!("{f}.{s}"),
                family: f.into(),
                vcpu,
                memory_mib: u64::from(vcpu) * gib * 1024,
                gpus: 0,
                arch,
                burstable: burst,
                on_demand_hourly: (per_vcpu * f64::from(vcpu) * 1e4).round() / 1e4,
            });
        }
    }
    for (name, vcpu, gib, gpus, price) in [
        ("g4dn.xlarge", 4, 16, 1, 0.526),
        ("g4dn.2xlarge", 8, 32, 1, 0.752),
        ("g4dn.12xlarge", 48, 192, 4, 3.912),
        ("g5.xlarge", 4, 16, 1, 1.006),
        ("g5.2xlarge", 8, 32, 1, 1.212),
        ("g5.12xlarge", 48, 192, 4, 5.672),
    ] {
        types.push(InstanceType {
            name: name.into(),
            family: name.split('.').next().unwrap_or("").into(),
            vcpu,
            memory_mib: gib * 1024,
            gpus,
            arch: Arch::X86_64,
            burstable: false,
            on_demand_hourly: price,
        });
    }
    let mut rng = Lcg(42);
    let mut pools = Vec::new();
    for t in &types {
        for az in ["us-east-1a", "us-east-1b", "us-east-1c"] {
            let discount = 0.55 + 0.20 * rng.unit();
            let risk = 0.02 + 0.58 * rng.unit() * rng.unit();
            pools.push(SpotPool {
                instance_type: t.name.clone(),
                az: az.into(),
                spot_price: (t.on_demand_hourly * (1.0 - discount) * 1e5).round() / 1e5,
                interruption_probability: risk,
            });
        }
    }
    Catalog::new(types, pools).expect("valid generated catalog")
}

/// 15 request shapes (CPU millicores, memory MiB) with skewed popularity.
const SHAPES: &[(u64, u64, u32)] = &[
    (100, 128, 10),
    (250, 256, 12),
    (250, 1024, 8),
    (500, 512, 10),
    (500, 2048, 8),
    (1000, 1024, 8),
    (1000, 4096, 8),
    (1500, 3072, 6),
    (2000, 2048, 6),
    (2000, 8192, 5),
    (3000, 6144, 4),
    (4000, 4096, 4),
    (4000, 16384, 3),
    (6000, 12288, 2),
    (8000, 32768, 1),
];

fn workload(n: usize, seed: u64, constrained: bool) -> Vec<Pod> {
    let mut rng = Lcg(seed);
    let total: u32 = SHAPES.iter().map(|s| s.2).sum();
    (0..n)
        .map(|i| {
            let mut r = (rng.next() % u64::from(total)) as u32;
            let mut shape = SHAPES[0];
            for s in SHAPES {
                if r < s.2 {
                    shape = *s;
                    break;
                }
                r -= s.2;
            }
            let mut p = Pod::simple(format!("pod-{i:05}"), shape.0, shape.1);
            if constrained {
                let roll = rng.next() % 100;
                if roll < 10 {
                    p.capacity = CapacityReq::OnDemand; // stateful
                } else if roll < 40 {
                    p.capacity = CapacityReq::Spot;
                }
                if rng.next() % 100 < 20 {
                    p.arch = Some(rng.pick(&[Arch::X86_64, Arch::Arm64]));
                }
                if rng.next() % 100 < 10 {
                    // replicas of a handful of deployments: anti-affinity + zone spread
                    let d = rng.next() % 8;
                    p.anti_affinity_group = Some(format!("deploy-{d}"));
                    p.az_spread_group = Some(format!("deploy-{d}"));
                }
            }
            p
        })
        .collect()
}

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
