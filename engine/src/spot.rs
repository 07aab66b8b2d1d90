//! MOD-SPOT-01: choose where a workload's capacity comes from.
//!
//! Candidates come from a node template (families, architectures, excluded sizes,
//! capacity type). Pools flagged by the global risk tracker are excluded outright.
//! The result is an ordered candidate list in fallback order: the best pool, then the
//! same type in another AZ, then another size of the same family, then another family,
//! then on-demand if the policy allows it. Every entry says why it is where it is.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use crate::catalog::{
    Arch, Catalog, InstanceType, Lifecycle, NodeOverhead, PoolKey, Resources, RiskLevel,
    AVOID_THRESHOLD,
};
use crate::pack::NodeOffer;
use crate::{EngineError, Result};

/// Capacity type of a node template.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CapacityType {
    Spot,
    OnDemand,
    /// Spot for stateless workloads, on-demand for stateful ones.
    Hybrid,
}

/// Spot allocation strategy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AllocationStrategy {
    /// Cheapest price per requested unit; risk only breaks ties.
    LowestPrice,
    /// Price-capacity optimized: `score = 0.6 × relative_price + 0.4 × risk`, where
    /// `relative_price` is price-per-unit divided by the cheapest candidate's. With these
    /// weights 0.1 of interruption probability is worth ~6.7 % of price, so a pool a few
    /// percent dearer but much safer wins (the MOD-SPOT-01 0.6/0.4 weighting).
    CapacityOptimized,
}

/// Node template: the boundary the autoscaler may never leave.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NodeTemplate {
    /// Allowed families (`m5`, `c6i`, ...); empty means all.
    pub allowed_families: Vec<String>,
    /// Allowed architectures; empty means all.
    pub architectures: Vec<Arch>,
    /// Blacklisted sizes (`nano`, `micro`, `small`, ...).
    pub excluded_sizes: Vec<String>,
    pub capacity_type: CapacityType,
    pub strategy: AllocationStrategy,
    /// Allow t-family (CPU-credit) instances.
    pub allow_burstable: bool,
    /// "Auto-fallback to On-Demand if Spot is unavailable".
    pub on_demand_fallback: bool,
}

impl Default for NodeTemplate {
    fn default() -> Self {
        Self {
            allowed_families: Vec::new(),
            architectures: Vec::new(),
            excluded_sizes: Vec::new(),
            capacity_type: CapacityType::Spot,
            strategy: AllocationStrategy::CapacityOptimized,
            allow_burstable: false,
            on_demand_fallback: true,
        }
    }
}

impl NodeTemplate {
    /// Why `it` is outside the template, or `None` if allowed.
    pub fn rejects(&self, it: &InstanceType) -> Option<String> {
        if !self.allowed_families.is_empty() && !self.allowed_families.contains(&it.family) {
            return Some(format!("family {} not in template", it.family));
        }
        if !self.architectures.is_empty() && !self.architectures.contains(&it.arch) {
            return Some(format!("architecture {:?} not in template", it.arch));
        }
        if self.excluded_sizes.iter().any(|s| s == it.size()) {
            return Some(format!("size {} excluded by template", it.size()));
        }
        if it.burstable && !self.allow_burstable {
            return Some("burstable instances blocked".into());
        }
        None
    }
}

/// What one replica of the workload requests.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Requirements {
    pub cpu_millis: u64,
    pub memory_mib: u64,
    pub gpus: u32,
    pub arch: Option<Arch>,
    /// Stateful workloads go on-demand under a hybrid template.
    pub stateful: bool,
}

/// Position of a candidate in the fallback order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FallbackStage {
    Preferred,
    SameTypeOtherAz,
    SameFamilyOtherSize,
    OtherFamily,
    OnDemand,
}

/// One ranked candidate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Choice {
    pub instance_type: String,
    pub az: String,
    pub lifecycle: Lifecycle,
    pub hourly_price: f64,
    pub monthly_price: f64,
    pub interruption_probability: f64,
    pub risk: RiskLevel,
    /// Price per requested unit (USD/h per replica-equivalent), see [`select`].
    pub price_per_unit: f64,
    /// Lower is better; only comparable within one call.
    pub score: f64,
    pub stage: FallbackStage,
    pub reason: String,
}

/// A pool left out, and why.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Exclusion {
    pub pool: PoolKey,
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SpotSelection {
    /// Fallback order: try `choices[0]` first.
    pub choices: Vec<Choice>,
    pub excluded: Vec<Exclusion>,
}

/// How many replicas of `req` one node of `it` holds, as a real number: the bottleneck
/// of `vcpu×1000 / cpu_millis` and `memory / memory_mib`. Price per unit is
/// `hourly / units`, so a type is judged by what the workload needs, not by raw vCPU.
fn units(it: &InstanceType, req: &Requirements) -> f64 {
    let cpu = if req.cpu_millis > 0 {
        (f64::from(it.vcpu) * 1000.0) / req.cpu_millis as f64
    } else {
        f64::INFINITY
    };
    let mem = if req.memory_mib > 0 {
        it.memory_mib as f64 / req.memory_mib as f64
    } else {
        f64::INFINITY
    };
    let u = cpu.min(mem);
    if u.is_finite() {
        u
    } else {
        f64::from(it.vcpu)
    }
}

fn fits(it: &InstanceType, req: &Requirements) -> bool {
    u64::from(it.vcpu) * 1000 >= req.cpu_millis
        && it.memory_mib >= req.memory_mib
        && it.gpus >= req.gpus
        && req.arch.is_none_or(|a| a == it.arch)
}

/// Ranks capacity for one workload. `risk_flags` is the global risk tracker's set of
/// flagged pools ("hive mind"); those are never returned.
pub fn select(
    catalog: &Catalog,
    template: &NodeTemplate,
    req: &Requirements,
    risk_flags: &BTreeSet<PoolKey>,
) -> Result<SpotSelection> {
    let want_spot = match template.capacity_type {
        CapacityType::Spot => true,
        CapacityType::OnDemand => false,
        CapacityType::Hybrid => !req.stateful,
    };
    let allow_on_demand = match template.capacity_type {
        CapacityType::Spot => template.on_demand_fallback,
        CapacityType::OnDemand => true,
        CapacityType::Hybrid => true,
    };
    let eligible: Vec<&InstanceType> = catalog
        .types()
        .iter()
        .filter(|t| template.rejects(t).is_none() && fits(t, req))
        .collect();
    if eligible.is_empty() {
        return Err(EngineError::NoCandidates(
            "no instance type in the template fits the request".into(),
        ));
    }

    struct Raw<'a> {
        it: &'a InstanceType,
        az: String,
        lifecycle: Lifecycle,
        price: f64,
        risk: f64,
        ppu: f64,
    }
    let mut excluded = Vec::new();
    let mut spot: Vec<Raw> = Vec::new();
    if want_spot {
        for it in &eligible {
            for p in catalog.pools_of(&it.name) {
                if risk_flags.contains(&p.key()) {
                    excluded.push(Exclusion {
                        pool: p.key(),
                        reason: "flagged by the global risk tracker (recent interruption)".into(),
                    });
                    continue;
                }
                spot.push(Raw {
                    it,
                    az: p.az.clone(),
                    lifecycle: Lifecycle::Spot,
                    price: p.spot_price,
                    risk: p.interruption_probability,
                    ppu: p.spot_price / units(it, req),
                });
            }
        }
    }
    let mut od: Vec<Raw> = Vec::new();
    if allow_on_demand {
        for it in &eligible {
            for az in catalog.zones() {
                od.push(Raw {
                    it,
                    az: az.clone(),
                    lifecycle: Lifecycle::OnDemand,
                    price: it.on_demand_hourly,
                    risk: 0.0,
                    ppu: it.on_demand_hourly / units(it, req),
                });
            }
        }
    }
    let min_ppu = spot
        .iter()
        .chain(od.iter())
        .map(|r| r.ppu)
        .fold(f64::INFINITY, f64::min)
        .max(1e-12);
    let score = |r: &Raw| -> f64 {
        let rel = r.ppu / min_ppu;
        match template.strategy {
            AllocationStrategy::LowestPrice => rel + 1e-6 * r.risk,
            AllocationStrategy::CapacityOptimized => 0.6 * rel + 0.4 * r.risk,
        }
    };
    let cmp = |a: &Raw, b: &Raw| {
        score(a)
            .total_cmp(&score(b))
            .then_with(|| a.it.name.cmp(&b.it.name))
            .then_with(|| a.az.cmp(&b.az))
    };
    spot.sort_by(cmp);
    od.sort_by(cmp);

    let mut choices = Vec::new();
    let strategy = match template.strategy {
        AllocationStrategy::LowestPrice => "lowest_price",
        AllocationStrategy::CapacityOptimized => "capacity_optimized",
    };
    let mk = |r: &Raw, stage: FallbackStage, reason: String| Choice {
        instance_type: r.it.name.clone(),
        az: r.az.clone(),
        lifecycle: r.lifecycle,
        hourly_price: r.price,
        monthly_price: crate::catalog::monthly(r.price),
        interruption_probability: r.risk,
        risk: RiskLevel::from_probability(r.risk),
        price_per_unit: r.ppu,
        score: score(r),
        stage,
        reason,
    };
    if let Some(best) = spot.first() {
        let best_name = best.it.name.clone();
        let best_family = best.it.family.clone();
        let savings = 1.0 - best.price / best.it.on_demand_hourly.max(1e-12);
        choices.push(mk(
            best,
            FallbackStage::Preferred,
            format!(
                "{} spot in {}: best {} score; ${:.4}/h per replica-unit, interruption risk {:.0}% ({:?}), {:.0}% below on-demand",
                best_name,
                best.az,
                strategy,
                best.ppu,
                best.risk * 100.0,
                RiskLevel::from_probability(best.risk),
                savings * 100.0
            ),
        ));
        let stage_of = |r: &Raw| {
            if r.it.name == best_name {
                FallbackStage::SameTypeOtherAz
            } else if r.it.family == best_family {
                FallbackStage::SameFamilyOtherSize
            } else {
                FallbackStage::OtherFamily
            }
        };
        let mut rest: Vec<(FallbackStage, &Raw)> =
            spot.iter().skip(1).map(|r| (stage_of(r), r)).collect();
        // Stable sort keeps score order inside each stage.
        rest.sort_by_key(|(s, _)| *s);
        for (stage, r) in rest {
            let why = match stage {
                FallbackStage::SameTypeOtherAz => {
                    format!("fallback: same type {} in another AZ ({})", r.it.name, r.az)
                }
                FallbackStage::SameFamilyOtherSize => format!(
                    "fallback: same family {}, other size {}",
                    r.it.family, r.it.name
                ),
                _ => format!("fallback: other family {} ({})", r.it.family, r.it.name),
            };
            let mut reason = format!(
                "{why}; ${:.4}/h per replica-unit, risk {:.0}%",
                r.ppu,
                r.risk * 100.0
            );
            if r.risk > AVOID_THRESHOLD {
                reason.push_str("; AVOID pool (risk > 50%), last resort");
            }
            choices.push(mk(r, stage, reason));
        }
    }
    for r in &od {
        let reason = if want_spot {
            format!(
                "on-demand fallback {} in {} (policy allows): no interruption risk, ${:.4}/h",
                r.it.name, r.az, r.price
            )
        } else if template.capacity_type == CapacityType::Hybrid {
            format!(
                "stateful workload under hybrid template: on-demand {} in {}",
                r.it.name, r.az
            )
        } else {
            format!("on-demand template: {} in {}", r.it.name, r.az)
        };
        choices.push(mk(r, FallbackStage::OnDemand, reason));
    }
    // AVOID pools are ranked last among spot candidates: stability beats savings.
    let (mut ok, avoid): (Vec<Choice>, Vec<Choice>) = choices
        .into_iter()
        .partition(|c| c.lifecycle == Lifecycle::OnDemand || c.risk != RiskLevel::Avoid);
    let od_start = ok
        .iter()
        .position(|c| c.lifecycle == Lifecycle::OnDemand)
        .unwrap_or(ok.len());
    let tail = ok.split_off(od_start);
    ok.extend(avoid);
    ok.extend(tail);
    if ok.is_empty() {
        return Err(EngineError::NoCandidates(
            "every spot pool is flagged and on-demand fallback is disabled".into(),
        ));
    }
    Ok(SpotSelection {
        choices: ok,
        excluded,
    })
}

/// Builds the node offers the packer may buy under `template`: a spot offer per
/// unflagged pool whose risk is not AVOID (> 0.5, stability beats savings) and, when
/// the template allows on-demand, an on-demand offer per zone.
pub fn offers_for_template(
    catalog: &Catalog,
    template: &NodeTemplate,
    risk_flags: &BTreeSet<PoolKey>,
    overhead: &NodeOverhead,
) -> Vec<NodeOffer> {
    let spot_ok = template.capacity_type != CapacityType::OnDemand;
    let od_ok = template.capacity_type != CapacityType::Spot || template.on_demand_fallback;
    let mut out = Vec::new();
    for it in catalog.types() {
        if template.rejects(it).is_some() {
            continue;
        }
        let alloc: Resources = overhead.allocatable(it);
        if alloc.cpu_millis == 0 || alloc.memory_mib == 0 {
            continue;
        }
        if spot_ok {
            for p in catalog.pools_of(&it.name) {
                if risk_flags.contains(&p.key()) || p.interruption_probability > AVOID_THRESHOLD {
                    continue;
                }
                out.push(NodeOffer {
                    instance_type: it.name.clone(),
                    lifecycle: Lifecycle::Spot,
                    az: p.az.clone(),
                    hourly_price: p.spot_price,
                    arch: it.arch,
                    allocatable: alloc,
                });
            }
        }
        if od_ok {
            for az in catalog.zones() {
                out.push(NodeOffer {
                    instance_type: it.name.clone(),
                    lifecycle: Lifecycle::OnDemand,
                    az: az.clone(),
                    hourly_price: it.on_demand_hourly,
                    arch: it.arch,
                    allocatable: alloc,
                });
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::SpotPool;

    fn t(name: &str, vcpu: u32, mem_gib: u64, od: f64) -> InstanceType {
        InstanceType {
            name: name.into(),
            family: name.split('.').next().unwrap_or("").into(),
            vcpu,
            memory_mib: mem_gib * 1024,
            gpus: 0,
            arch: Arch::X86_64,
            burstable: name.starts_with('t'),
            on_demand_hourly: od,
        }
    }
    fn p(ty: &str, az: &str, price: f64, risk: f64) -> SpotPool {
        SpotPool {
            instance_type: ty.into(),
            az: az.into(),
            spot_price: price,
            interruption_probability: risk,
        }
    }
    fn catalog() -> Catalog {
        Catalog::new(
            vec![
                t("c5.xlarge", 4, 8, 0.17),
                t("m5.large", 2, 8, 0.096),
                t("m5.xlarge", 4, 16, 0.192),
                t("t3.xlarge", 4, 16, 0.1664),
            ],
            vec![
                p("c5.xlarge", "us-east-1a", 0.060, 0.30),
                p("c5.xlarge", "us-east-1b", 0.062, 0.05),
                p("m5.large", "us-east-1a", 0.035, 0.10),
                p("m5.xlarge", "us-east-1a", 0.075, 0.04),
                p("t3.xlarge", "us-east-1a", 0.01, 0.01),
            ],
        )
        .expect("valid catalog")
    }
    fn req() -> Requirements {
        Requirements {
            cpu_millis: 1000,
            memory_mib: 2048,
            gpus: 0,
            arch: None,
            stateful: false,
        }
    }

    #[test]
    fn lowest_price_picks_cheapest_per_unit_and_blocks_burstable() {
        let tpl = NodeTemplate {
            strategy: AllocationStrategy::LowestPrice,
            ..NodeTemplate::default()
        };
        let s = select(&catalog(), &tpl, &req(), &BTreeSet::new()).expect("candidates");
        assert_eq!(s.choices[0].instance_type, "c5.xlarge");
        assert_eq!(s.choices[0].az, "us-east-1a");
        assert!(s.choices.iter().all(|c| c.instance_type != "t3.xlarge"));
        assert!(!s.choices[0].reason.is_empty());
    }

    #[test]
    fn capacity_optimized_pays_a_few_percent_for_lower_risk() {
        let s = select(
            &catalog(),
            &NodeTemplate::default(),
            &req(),
            &BTreeSet::new(),
        )
        .expect("candidates");
        assert_eq!(s.choices[0].instance_type, "c5.xlarge");
        assert_eq!(
            s.choices[0].az, "us-east-1b",
            "3% dearer but 5% vs 30% risk"
        );
    }

    #[test]
    fn flagged_pool_excluded_and_fallback_order_holds() {
        let flags: BTreeSet<PoolKey> = [PoolKey::new("c5.xlarge", "us-east-1b")].into();
        let s = select(&catalog(), &NodeTemplate::default(), &req(), &flags).expect("candidates");
        assert!(s.choices.iter().all(|c| !(c.lifecycle == Lifecycle::Spot
            && c.instance_type == "c5.xlarge"
            && c.az == "us-east-1b")));
        assert_eq!(s.excluded.len(), 1);
        let stages: Vec<FallbackStage> = s.choices.iter().map(|c| c.stage).collect();
        let mut sorted = stages.clone();
        sorted.sort();
        assert_eq!(stages, sorted, "stages appear in fallback order");
        assert_eq!(
            s.choices.last().map(|c| c.lifecycle),
            Some(Lifecycle::OnDemand)
        );
    }

    #[test]
    fn stateful_under_hybrid_gets_on_demand_only() {
        let tpl = NodeTemplate {
            capacity_type: CapacityType::Hybrid,
            ..NodeTemplate::default()
        };
        let r = Requirements {
            stateful: true,
            ..req()
        };
        let s = select(&catalog(), &tpl, &r, &BTreeSet::new()).expect("candidates");
        assert!(s.choices.iter().all(|c| c.lifecycle == Lifecycle::OnDemand));
    }

    #[test]
    fn no_fallback_and_all_flagged_is_an_error() {
        let tpl = NodeTemplate {
            on_demand_fallback: false,
            allowed_families: vec!["m5".into()],
            ..NodeTemplate::default()
        };
        let flags: BTreeSet<PoolKey> = [
            PoolKey::new("m5.large", "us-east-1a"),
            PoolKey::new("m5.xlarge", "us-east-1a"),
        ]
        .into();
        assert!(select(&catalog(), &tpl, &req(), &flags).is_err());
    }
}
