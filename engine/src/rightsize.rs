//! MOD-SIZE-01: request/limit recommendations from usage samples.
//!
//! recommended request = percentile(usage) × (1 + headroom), rounded up to the
//! scheduler's practical granularity (CPU 5 m, memory 4 MiB) with floors of 10 m and
//! 32 MiB. Memory limit = max(request, peak × (1 + headroom)) so a burst to the observed
//! peak does not OOM; no CPU limit is recommended because CPU limits throttle (CFS
//! quota) without protecting neighbours, which requests already do.
//! Savings are priced per resource: `Δcpu_vcpu × $/vCPU-h + Δmem_GiB × $/GiB-h`, × replicas
//! × 730 h.

use serde::{Deserialize, Serialize};

use crate::catalog::monthly;
use crate::{check_non_negative, invalid, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Percentile {
    P95,
    P99,
}

impl Percentile {
    fn q(self) -> f64 {
        match self {
            Percentile::P95 => 0.95,
            Percentile::P99 => 0.99,
        }
    }
}

/// Unit prices used to turn resource deltas into money.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResourcePrices {
    pub per_vcpu_hour: f64,
    pub per_gib_hour: f64,
}

impl Default for ResourcePrices {
    /// Kubecost's default on-demand split (CPU $0.031611/vCPU-h, RAM $0.004237/GiB-h),
    /// close to an m5's price divided over its 1:4 vCPU:GiB shape.
    fn default() -> Self {
        Self {
            per_vcpu_hour: 0.031611,
            per_gib_hour: 0.004237,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RightsizePolicy {
    pub percentile: Percentile,
    /// Safety buffer on top of the percentile, 0.10–0.50 (default 0.20).
    pub headroom: f64,
    /// Severity threshold: skip savings below this many USD per month (restarting pods
    /// to save cents is not worth it). Increases are never skipped.
    pub min_monthly_savings: f64,
    /// Fewer samples than this is not evidence (default 288 = one day at 5 min).
    pub min_samples: usize,
    pub prices: ResourcePrices,
}

impl Default for RightsizePolicy {
    fn default() -> Self {
        Self {
            percentile: Percentile::P95,
            headroom: 0.20,
            min_monthly_savings: 10.0,
            min_samples: 288,
            prices: ResourcePrices::default(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WorkloadUsage {
    /// e.g. `default/Deployment/api`
    pub workload: String,
    pub replicas: u32,
    pub cpu_request_millis: u64,
    pub memory_request_mib: u64,
    /// Per-pod CPU usage samples, millicores (e.g. 14 days of Prometheus data).
    pub cpu_samples_millis: Vec<f64>,
    /// Per-pod working-set memory samples, MiB.
    pub memory_samples_mib: Vec<f64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RecommendationStatus {
    /// Lower requests: saves money.
    Recommend,
    /// Raise requests: the workload is under-provisioned (costs money, buys safety).
    Increase,
    /// Below the severity threshold or not enough data.
    Skip,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Recommendation {
    pub workload: String,
    pub status: RecommendationStatus,
    pub cpu_request_millis: u64,
    pub memory_request_mib: u64,
    /// `None`: no CPU limit (see module docs).
    pub cpu_limit_millis: Option<u64>,
    pub memory_limit_mib: u64,
    /// Positive = saving, negative = added cost; all replicas, USD per month.
    pub monthly_savings: f64,
    pub reason: String,
}

/// Nearest-rank percentile (`ceil(q·n)`-th smallest), the definition Prometheus'
/// `quantile_over_time` approximates; never interpolates above the data.
pub fn percentile(samples: &[f64], q: f64) -> Option<f64> {
    if samples.is_empty() {
        return None;
    }
    let mut v = samples.to_vec();
    v.sort_by(f64::total_cmp);
    let rank = ((q * v.len() as f64).ceil() as usize).clamp(1, v.len());
    Some(v[rank - 1])
}

fn round_up(x: f64, step: u64, floor: u64) -> u64 {
    let s = step as f64;
    (((x / s).ceil() * s) as u64).max(floor)
}

/// Recommends requests/limits for one workload.
pub fn recommend(w: &WorkloadUsage, policy: &RightsizePolicy) -> Result<Recommendation> {
    if !(0.10..=0.50).contains(&policy.headroom) {
        return Err(invalid(
            "headroom",
            format!("must be within 0.10..=0.50, got {}", policy.headroom),
        ));
    }
    check_non_negative("min_monthly_savings", policy.min_monthly_savings)?;
    for (name, xs) in [
        ("cpu_samples_millis", &w.cpu_samples_millis),
        ("memory_samples_mib", &w.memory_samples_mib),
    ] {
        if let Some(bad) = xs.iter().find(|x| !(x.is_finite() && **x >= 0.0)) {
            return Err(invalid(
                format!("{}.{name}", w.workload),
                format!("bad sample {bad}"),
            ));
        }
    }
    let n = w.cpu_samples_millis.len().min(w.memory_samples_mib.len());
    let skip = |reason: String| Recommendation {
        workload: w.workload.clone(),
        status: RecommendationStatus::Skip,
        cpu_request_millis: w.cpu_request_millis,
        memory_request_mib: w.memory_request_mib,
        cpu_limit_millis: None,
        memory_limit_mib: w.memory_request_mib,
        monthly_savings: 0.0,
        reason,
    };
    if n < policy.min_samples.max(1) {
        return Ok(skip(format!(
            "only {n} samples; need {} before recommending",
            policy.min_samples
        )));
    }
    let q = policy.percentile.q();
    let h = 1.0 + policy.headroom;
    let cpu_p = percentile(&w.cpu_samples_millis, q).unwrap_or(0.0);
    let mem_p = percentile(&w.memory_samples_mib, q).unwrap_or(0.0);
    let mem_peak = w.memory_samples_mib.iter().copied().fold(0.0, f64::max);
    let cpu_req = round_up(cpu_p * h, 5, 10);
    let mem_req = round_up(mem_p * h, 4, 32);
    let mem_lim = mem_req.max(round_up(mem_peak * h, 4, 32));

    let d_cpu = (w.cpu_request_millis as f64 - cpu_req as f64) / 1000.0;
    let d_mem = (w.memory_request_mib as f64 - mem_req as f64) / 1024.0;
    let hourly = (d_cpu * policy.prices.per_vcpu_hour + d_mem * policy.prices.per_gib_hour)
        * f64::from(w.replicas);
    let savings = monthly(hourly);
    let pct = match policy.percentile {
        Percentile::P95 => "p95",
        Percentile::P99 => "p99",
    };
    let basis = format!(
        "{pct} CPU {cpu_p:.0}m, {pct} memory {mem_p:.0} MiB (peak {mem_peak:.0}) + {:.0}% headroom over {n} samples",
        policy.headroom * 100.0
    );
    let under = cpu_req > w.cpu_request_millis || mem_req > w.memory_request_mib;
    let (status, reason) = if under {
        (
            RecommendationStatus::Increase,
            format!(
                "under-provisioned: {basis} needs {cpu_req}m / {mem_req} MiB vs requested {}m / {} MiB",
                w.cpu_request_millis, w.memory_request_mib
            ),
        )
    } else if savings < policy.min_monthly_savings {
        (
            RecommendationStatus::Skip,
            format!(
                "saves ${savings:.2}/mo, below the ${:.2}/mo severity threshold; {basis}",
                policy.min_monthly_savings
            ),
        )
    } else {
        (
            RecommendationStatus::Recommend,
            format!(
                "requests {}m / {} MiB → {cpu_req}m / {mem_req} MiB saves ${savings:.2}/mo across {} replicas; {basis}",
                w.cpu_request_millis, w.memory_request_mib, w.replicas
            ),
        )
    };
    if status == RecommendationStatus::Skip {
        return Ok(skip(reason));
    }
    Ok(Recommendation {
        workload: w.workload.clone(),
        status,
        cpu_request_millis: cpu_req,
        memory_request_mib: mem_req,
        cpu_limit_millis: None,
        memory_limit_mib: mem_lim,
        monthly_savings: savings,
        reason,
    })
}

/// Recommends for many workloads, in input order.
pub fn recommend_all(
    ws: &[WorkloadUsage],
    policy: &RightsizePolicy,
) -> Result<Vec<Recommendation>> {
    ws.iter().map(|w| recommend(w, policy)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn usage(cpu: f64, mem: f64, n: usize) -> WorkloadUsage {
        WorkloadUsage {
            workload: "default/Deployment/api".into(),
            replicas: 10,
            cpu_request_millis: 2000,
            memory_request_mib: 4096,
            cpu_samples_millis: (0..n)
                .map(|i| cpu * (0.5 + (i % 10) as f64 / 10.0))
                .collect(),
            memory_samples_mib: (0..n)
                .map(|i| mem * (0.5 + (i % 10) as f64 / 10.0))
                .collect(),
        }
    }

    #[test]
    fn nearest_rank_percentile() {
        let xs: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&xs, 0.95), Some(95.0));
        assert_eq!(percentile(&xs, 0.99), Some(99.0));
        assert_eq!(percentile(&[], 0.95), None);
    }

    #[test]
    fn overprovisioned_workload_gets_lower_requests_and_savings() {
        let r = recommend(&usage(200.0, 500.0, 1000), &RightsizePolicy::default()).expect("ok");
        assert_eq!(r.status, RecommendationStatus::Recommend);
        // p95 of 200×{0.5..1.4} = 280 m; ×1.2 = 336 → 340 m.
        assert_eq!(r.cpu_request_millis, 340);
        assert!(r.memory_limit_mib >= r.memory_request_mib);
        assert!(r.monthly_savings > 10.0);
        assert!(r.cpu_limit_millis.is_none());
    }

    #[test]
    fn small_savings_are_skipped_with_reason() {
        let mut w = usage(1500.0, 3000.0, 1000);
        w.replicas = 1;
        w.cpu_request_millis = 2600;
        w.memory_request_mib = 5100;
        let r = recommend(&w, &RightsizePolicy::default()).expect("ok");
        assert_eq!(r.status, RecommendationStatus::Skip);
        assert!(r.reason.contains("severity threshold"), "{}", r.reason);
    }

    #[test]
    fn underprovisioned_is_an_increase_and_p99_is_higher() {
        let r = recommend(&usage(3000.0, 500.0, 1000), &RightsizePolicy::default()).expect("ok");
        assert_eq!(r.status, RecommendationStatus::Increase);
        let p99 = RightsizePolicy {
            percentile: Percentile::P99,
            ..RightsizePolicy::default()
        };
        let a = recommend(&usage(200.0, 500.0, 1000), &RightsizePolicy::default()).expect("ok");
        let b = recommend(&usage(200.0, 500.0, 1000), &p99).expect("ok");
        assert!(b.cpu_request_millis >= a.cpu_request_millis);
    }

    #[test]
    fn rejects_bad_headroom_and_nan_samples() {
        let p = RightsizePolicy {
            headroom: 0.9,
            ..RightsizePolicy::default()
        };
        assert!(recommend(&usage(1.0, 1.0, 500), &p).is_err());
        let mut w = usage(1.0, 1.0, 500);
        w.cpu_samples_millis[3] = f64::NAN;
        assert!(recommend(&w, &RightsizePolicy::default()).is_err());
    }

    #[test]
    fn too_few_samples_skips() {
        let r = recommend(&usage(200.0, 500.0, 10), &RightsizePolicy::default()).expect("ok");
        assert_eq!(r.status, RecommendationStatus::Skip);
    }
}
