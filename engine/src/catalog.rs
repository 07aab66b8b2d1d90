//! Instance catalog and pricing math.
//!
//! Prices are USD per hour. A month is 730 hours (8,760 h / 12), the convention AWS
//! uses on its pricing pages, so every monthly figure in the product is `hourly × 730`.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use crate::{check_non_negative, invalid, Result};

/// Hours per month used for every monthly figure (AWS pricing-page convention).
pub const HOURS_PER_MONTH: f64 = 730.0;

/// Converts an hourly USD price to a monthly one (`hourly × 730`).
pub fn monthly(hourly: f64) -> f64 {
    hourly * HOURS_PER_MONTH
}

/// CPU architecture of an instance type or a pod requirement.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Arch {
    X86_64,
    Arm64,
}

/// How a node is bought.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Lifecycle {
    Spot,
    OnDemand,
}

/// One EC2 instance type. `on_demand_hourly` is the regional on-demand price (USD/h).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InstanceType {
    /// e.g. `m5.xlarge`
    pub name: String,
    /// e.g. `m5`
    pub family: String,
    pub vcpu: u32,
    pub memory_mib: u64,
    pub gpus: u32,
    pub arch: Arch,
    /// t-family instances run on CPU credits; production templates usually block them.
    pub burstable: bool,
    pub on_demand_hourly: f64,
}

impl InstanceType {
    /// The size part of the name (`xlarge` in `m5.xlarge`); empty when there is no dot.
    pub fn size(&self) -> &str {
        self.name.split_once('.').map(|(_, s)| s).unwrap_or("")
    }

    /// Monthly on-demand cost (`on_demand_hourly × 730`).
    pub fn on_demand_monthly(&self) -> f64 {
        monthly(self.on_demand_hourly)
    }

    /// Raw capacity before any reserve.
    pub fn capacity(&self) -> Resources {
        Resources {
            cpu_millis: u64::from(self.vcpu) * 1000,
            memory_mib: self.memory_mib,
            gpus: self.gpus,
            pods: u32::MAX,
        }
    }
}

/// A spot capacity pool: one instance type in one availability zone.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SpotPool {
    pub instance_type: String,
    pub az: String,
    /// Current spot price, USD/h.
    pub spot_price: f64,
    /// Predicted interruption probability in [0, 1] (MOD-AI-01 output).
    pub interruption_probability: f64,
}

impl SpotPool {
    pub fn key(&self) -> PoolKey {
        PoolKey::new(&self.instance_type, &self.az)
    }

    /// Monthly cost at the current spot price.
    pub fn monthly(&self) -> f64 {
        monthly(self.spot_price)
    }
}

/// Identifies a pool, e.g. for the global risk tracker's flag set
/// (`RISK:us-east-1a:c5.xlarge`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct PoolKey {
    pub instance_type: String,
    pub az: String,
}

impl PoolKey {
    pub fn new(instance_type: &str, az: &str) -> Self {
        Self {
            instance_type: instance_type.to_owned(),
            az: az.to_owned(),
        }
    }
}

impl std::fmt::Display for PoolKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.instance_type, self.az)
    }
}

/// Risk buckets of the ML output contract: SAFE (< 0.2), CAUTION (0.2–0.5), AVOID (> 0.5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum RiskLevel {
    Safe,
    Caution,
    Avoid,
}

/// Above this interruption probability a pool is AVOID: never a move target.
pub const AVOID_THRESHOLD: f64 = 0.5;
/// Below this interruption probability a pool is SAFE.
pub const SAFE_THRESHOLD: f64 = 0.2;

impl RiskLevel {
    pub fn from_probability(p: f64) -> Self {
        if p > AVOID_THRESHOLD {
            RiskLevel::Avoid
        } else if p >= SAFE_THRESHOLD {
            RiskLevel::Caution
        } else {
            RiskLevel::Safe
        }
    }
}

/// Node resources in scheduler units: CPU millicores, memory MiB, GPUs, pod slots.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize,
)]
pub struct Resources {
    pub cpu_millis: u64,
    pub memory_mib: u64,
    pub gpus: u32,
    pub pods: u32,
}

impl Resources {
    /// True when `self` fits into `cap` in every dimension.
    pub fn fits_in(&self, cap: &Resources) -> bool {
        self.cpu_millis <= cap.cpu_millis
            && self.memory_mib <= cap.memory_mib
            && self.gpus <= cap.gpus
            && self.pods <= cap.pods
    }

    pub fn saturating_add(&self, o: &Resources) -> Resources {
        Resources {
            cpu_millis: self.cpu_millis.saturating_add(o.cpu_millis),
            memory_mib: self.memory_mib.saturating_add(o.memory_mib),
            gpus: self.gpus.saturating_add(o.gpus),
            pods: self.pods.saturating_add(o.pods),
        }
    }

    /// Component-wise maximum.
    pub fn component_max(&self, o: &Resources) -> Resources {
        Resources {
            cpu_millis: self.cpu_millis.max(o.cpu_millis),
            memory_mib: self.memory_mib.max(o.memory_mib),
            gpus: self.gpus.max(o.gpus),
            pods: self.pods.max(o.pods),
        }
    }
}

/// What a node keeps for itself before pods get anything.
///
/// Default follows the EKS AMI / Karpenter kube-reserved formula: CPU 6 % of the first
/// core, 1 % of the second, 0.5 % of cores 3–4 and 0.25 % of every core above 4; memory
/// 255 MiB + 11 MiB per schedulable pod. On top of that a fixed system reserve (100 m CPU,
/// 100 MiB) and the kubelet hard eviction threshold (`memory.available < 100Mi`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NodeOverhead {
    /// Apply the EKS kube-reserved formula above.
    pub eks_kube_reserved: bool,
    /// Fixed CPU reserve in millicores (system-reserved).
    pub system_cpu_millis: u64,
    /// Fixed memory reserve in MiB (system-reserved + eviction threshold).
    pub system_memory_mib: u64,
    /// Pod slots per node (kubelet `maxPods`; 110 is the kubelet default).
    pub max_pods: u32,
}

impl Default for NodeOverhead {
    fn default() -> Self {
        Self {
            eks_kube_reserved: true,
            system_cpu_millis: 100,
            system_memory_mib: 200,
            max_pods: 110,
        }
    }
}

impl NodeOverhead {
    /// No reserve at all (useful in tests and for raw-capacity math).
    pub fn none() -> Self {
        Self {
            eks_kube_reserved: false,
            system_cpu_millis: 0,
            system_memory_mib: 0,
            max_pods: u32::MAX,
        }
    }

    /// Allocatable resources of `it`: capacity minus the reserve (saturating at 0).
    pub fn allocatable(&self, it: &InstanceType) -> Resources {
        let cap = it.capacity();
        let mut cpu_reserved = self.system_cpu_millis;
        let mut mem_reserved = self.system_memory_mib;
        if self.eks_kube_reserved {
            // Per-core percentages in millicores per core: 60, 10, 5, 5, then 2.5.
            let cores = u64::from(it.vcpu);
            let mut r10 = 0u64; // tenths of a millicore to keep 2.5 exact
            for core in 0..cores {
                r10 += match core {
                    0 => 600,
                    1 => 100,
                    2 | 3 => 50,
                    _ => 25,
                };
            }
            cpu_reserved += r10.div_ceil(10);
            let pods_for_mem = u64::from(self.max_pods.min(737));
            mem_reserved += 255 + 11 * pods_for_mem;
        }
        Resources {
            cpu_millis: cap.cpu_millis.saturating_sub(cpu_reserved),
            memory_mib: cap.memory_mib.saturating_sub(mem_reserved),
            gpus: cap.gpus,
            pods: self.max_pods,
        }
    }
}

/// Validated set of instance types and spot pools. Types are kept sorted by name so
/// every iteration order in the engine is deterministic.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Catalog {
    types: Vec<InstanceType>,
    pools: Vec<SpotPool>,
    /// Availability zones where on-demand capacity is offered (sorted).
    zones: Vec<String>,
}

impl Catalog {
    /// Builds a catalog; on-demand zones default to every zone seen in `pools`.
    pub fn new(types: Vec<InstanceType>, pools: Vec<SpotPool>) -> Result<Self> {
        let zones: BTreeSet<String> = pools.iter().map(|p| p.az.clone()).collect();
        Self::with_zones(types, pools, zones.into_iter().collect())
    }

    /// Builds a catalog with an explicit list of on-demand zones.
    pub fn with_zones(
        mut types: Vec<InstanceType>,
        mut pools: Vec<SpotPool>,
        mut zones: Vec<String>,
    ) -> Result<Self> {
        types.sort_by(|a, b| a.name.cmp(&b.name));
        for w in types.windows(2) {
            if w[0].name == w[1].name {
                return Err(invalid(
                    "instance_type.name",
                    format!("duplicate `{}`", w[0].name),
                ));
            }
        }
        for t in &types {
            check_non_negative(&format!("{}.on_demand_hourly", t.name), t.on_demand_hourly)?;
            if t.vcpu == 0 || t.memory_mib == 0 {
                return Err(invalid(&t.name, "vcpu and memory_mib must be > 0"));
            }
        }
        pools.sort_by(|a, b| (&a.instance_type, &a.az).cmp(&(&b.instance_type, &b.az)));
        for w in pools.windows(2) {
            if w[0].key() == w[1].key() {
                return Err(invalid(
                    "spot_pool",
                    format!("duplicate pool {}", w[0].key()),
                ));
            }
        }
        for p in &pools {
            check_non_negative(&format!("{}.spot_price", p.key()), p.spot_price)?;
            let ip = p.interruption_probability;
            if !(ip.is_finite() && (0.0..=1.0).contains(&ip)) {
                return Err(invalid(
                    format!("{}.interruption_probability", p.key()),
                    format!("must be in [0, 1], got {ip}"),
                ));
            }
            if types
                .binary_search_by(|t| t.name.as_str().cmp(&p.instance_type))
                .is_err()
            {
                return Err(invalid(
                    "spot_pool.instance_type",
                    format!("pool {} names an unknown instance type", p.key()),
                ));
            }
        }
        zones.sort();
        zones.dedup();
        Ok(Self {
            types,
            pools,
            zones,
        })
    }

    pub fn types(&self) -> &[InstanceType] {
        &self.types
    }

    pub fn pools(&self) -> &[SpotPool] {
        &self.pools
    }

    pub fn zones(&self) -> &[String] {
        &self.zones
    }

    pub fn get(&self, name: &str) -> Option<&InstanceType> {
        self.types
            .binary_search_by(|t| t.name.as_str().cmp(name))
            .ok()
            .and_then(|i| self.types.get(i))
    }

    /// Spot pools of one instance type, sorted by zone.
    pub fn pools_of<'a>(
        &'a self,
        instance_type: &'a str,
    ) -> impl Iterator<Item = &'a SpotPool> + 'a {
        self.pools
            .iter()
            .filter(move |p| p.instance_type == instance_type)
    }

    pub fn pool(&self, key: &PoolKey) -> Option<&SpotPool> {
        self.pools.iter().find(|p| p.key() == *key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn m5_xlarge() -> InstanceType {
        InstanceType {
            name: "m5.xlarge".into(),
            family: "m5".into(),
            vcpu: 4,
            memory_mib: 16384,
            gpus: 0,
            arch: Arch::X86_64,
            burstable: false,
            on_demand_hourly: 0.192,
        }
    }

    #[test]
    fn monthly_is_hourly_times_730() {
        assert!((monthly(0.192) - 140.16).abs() < 1e-9);
        assert!((m5_xlarge().on_demand_monthly() - 140.16).abs() < 1e-9);
    }

    #[test]
    fn eks_reserve_matches_published_formula() {
        // 4 vCPU: 60 + 10 + 5 + 5 = 80 m kube-reserved + 100 m system.
        let a = NodeOverhead::default().allocatable(&m5_xlarge());
        assert_eq!(a.cpu_millis, 4000 - 180);
        // 255 + 11 × 110 = 1465 MiB kube-reserved + 200 MiB system/eviction.
        assert_eq!(a.memory_mib, 16384 - 1465 - 200);
        assert_eq!(a.pods, 110);
    }

    #[test]
    fn risk_levels_follow_contract() {
        assert_eq!(RiskLevel::from_probability(0.1), RiskLevel::Safe);
        assert_eq!(RiskLevel::from_probability(0.2), RiskLevel::Caution);
        assert_eq!(RiskLevel::from_probability(0.5), RiskLevel::Caution);
        assert_eq!(RiskLevel::from_probability(0.51), RiskLevel::Avoid);
    }

    #[test]
    fn catalog_rejects_pool_of_unknown_type_and_negative_price() {
        let pool = SpotPool {
            instance_type: "nope.large".into(),
            az: "a".into(),
            spot_price: 0.1,
            interruption_probability: 0.1,
        };
        assert!(Catalog::new(vec![m5_xlarge()], vec![pool]).is_err());
        let mut t = m5_xlarge();
        t.on_demand_hourly = -1.0;
        assert!(Catalog::new(vec![t], vec![]).is_err());
    }
}
