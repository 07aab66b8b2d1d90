//! The generated catalog and workloads shared by the engine benchmarks (`packer`, `plan`):
//! one seeded generator, so both measure the same inputs.
#![allow(dead_code)]

use spot_engine::catalog::{Arch, Catalog, InstanceType, SpotPool};
use spot_engine::pack::{CapacityReq, Pod};

pub struct Lcg(pub u64);
impl Lcg {
    pub fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.0 >> 33
    }
    pub fn unit(&mut self) -> f64 {
        (self.next() % 1_000_000) as f64 / 1_000_000.0
    }
    pub fn pick<T: Copy>(&mut self, xs: &[T]) -> T {
        xs[(self.next() % xs.len() as u64) as usize]
    }
}

pub fn catalog() -> Catalog {
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
pub const SHAPES: &[(u64, u64, u32)] = &[
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

pub fn workload(n: usize, seed: u64, constrained: bool) -> Vec<Pod> {
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
