//! The spot market of the simulated region: one capacity pool per (instance type, AZ).
//!
//! Each pool has a long-run discount off on-demand and a long-run capacity level. Around
//! them, hourly values follow mean-reverting (Ornstein–Uhlenbeck, discretised as AR(1))
//! walks; capacity also takes occasional shocks (a large customer grabbing a pool) that
//! decay over a few hours, and dips slightly in US business hours. Spot prices rise as
//! capacity tightens and are capped at the on-demand price, as on AWS. The per-instance
//! interruption hazard rises steeply as capacity falls ([`interruption_hazard_per_hour`]).
//!
//! Values are a pure function of (seed, pool, hour): the noise comes from a counter-based
//! hash instead of a sequential RNG, and each walk is recomputed from a fixed anchor (the
//! start of its 256-hour block, after a warm-up long enough for the AR(1) state to forget
//! its zero start). So history, the live sim and training exports agree exactly, whatever
//! order pools and hours are asked in.

use std::collections::HashMap;
use std::sync::Arc;

use chrono::{DateTime, Datelike, Timelike, Utc};

use super::catalog::{az_name, Catalog};
use super::noise::{mix, normal, str_key, unit};

/// Hours per cached block of pool history.
pub const BLOCK_HOURS: i64 = 256;
/// Warm-up before each block: e^(-96/12) ≈ 3e-4 of the zero start remains.
const WARMUP_HOURS: i64 = 96;
/// Price walk correlation time 12 h; capacity walk 8 h.
const PRICE_AR: f64 = 0.920_044_414_629_323_2; // exp(-1/12)
const CAPACITY_AR: f64 = 0.882_496_902_584_595; // exp(-1/8)
/// Standard deviation of log spot price around its pool mean.
const PRICE_SIGMA: f64 = 0.07;
/// Standard deviation of capacity around its pool mean.
const CAPACITY_SIGMA: f64 = 0.12;
/// Probability per pool-hour of a capacity shock (≈ one per pool every two weeks) and
/// the hourly decay of its effect (half-life ≈ 4 h).
const SHOCK_PROB: f64 = 0.003;
const SHOCK_DECAY: f64 = 0.85;
/// Published price changes only when the underlying price moved more than this
/// fraction: AWS spot prices change a few times a day, not continuously.
const PRICE_STICKINESS: f64 = 0.025;
/// Below this capacity a pool cannot launch anything.
pub const EXHAUSTED_CAPACITY: f64 = 0.05;
/// Hours the simulated region's users are offset from UTC (US East, ignoring DST): used
/// for business-hour demand here and for workload patterns in the world.
pub const SIM_UTC_OFFSET_HOURS: i64 = -5;

/// Hour index (hours since the Unix epoch) containing `t`.
pub fn hour_of(t: DateTime<Utc>) -> i64 {
    t.timestamp().div_euclid(3600)
}

/// Start of hour `h`.
pub fn hour_start(h: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(h.saturating_mul(3600), 0).unwrap_or(DateTime::UNIX_EPOCH)
}

/// Expected spot interruptions per instance-hour at a pool capacity level.
///
/// Shape: a floor of 5e-5/h (≈ 3.5% per month, the best Spot Advisor bucket) plus a term
/// growing with the sixth power of scarcity, so a healthy pool (capacity 0.8) stays under
/// 5% per month while a tight one (0.3) interrupts about 2% of instances per hour.
pub fn interruption_hazard_per_hour(capacity: f64) -> f64 {
    let scarcity = (1.0 - capacity).clamp(0.0, 1.0);
    5e-5 + 0.2 * scarcity.powi(6)
}

/// Probability that one instance is interrupted within `hours` at `capacity`.
pub fn interruption_probability(capacity: f64, hours: f64) -> f64 {
    1.0 - (-interruption_hazard_per_hour(capacity) * hours.max(0.0)).exp()
}

/// How many spot instances one request may obtain from a pool at `capacity`: none when
/// exhausted, a handful when tight, hundreds when healthy.
pub fn spot_slots(capacity: f64) -> u32 {
    if capacity < EXHAUSTED_CAPACITY {
        0
    } else {
        (400.0 * capacity * capacity).floor() as u32
    }
}

/// Fixed characteristics of one pool.
#[derive(Debug, Clone)]
pub struct PoolParams {
    pub type_index: usize,
    pub az_index: usize,
    /// Whether the AZ offers the type at all.
    pub offered: bool,
    pub on_demand: f64,
    /// Long-run fraction off on-demand (0.6 = spot costs 40% of on-demand).
    pub discount: f64,
    /// Long-run capacity level in [0, 1].
    pub mean_capacity: f64,
    key: u64,
}

/// The market state of a pool during one hour.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PoolHour {
    /// Published spot price, USD per hour.
    pub spot_price: f64,
    /// Capacity level in [0, 1]; 0 is exhausted.
    pub capacity: f64,
}

/// All pools of a region.
#[derive(Debug)]
pub struct Market {
    seed: u64,
    region: String,
    pools: Vec<PoolParams>,
    cache: HashMap<(usize, i64), Arc<Vec<PoolHour>>>,
    /// Test hook: pinned capacity per pool.
    capacity_overrides: HashMap<usize, f64>,
}

impl Market {
    pub fn new(seed: u64, region: &str) -> Self {
        let catalog = Catalog::embedded();
        let mut pools = Vec::with_capacity(catalog.len() * 3);
        for (ti, t) in catalog.types().iter().enumerate() {
            let type_key = str_key(&t.name);
            // Type-level discount: most pools sit 55–75% below on-demand; GPU and the
            // newest generations are in higher demand and discounted less.
            let mut type_discount = 0.55 + 0.20 * unit(mix(seed, type_key ^ 0xD15C_0047));
            if t.gpus > 0 {
                type_discount -= 0.12;
            }
            if t.family.chars().nth(1).is_some_and(|c| c >= '7') {
                type_discount -= 0.04;
            }
            let hot_prob = if t.gpus > 0 {
                0.45
            } else if t.vcpu >= 96 {
                0.35
            } else {
                0.15
            };
            for ai in 0..3 {
                let key = mix(mix(seed, type_key), ai as u64 + 1);
                let discount = (type_discount + (unit(mix(key, 1)) - 0.5) * 0.08).clamp(0.35, 0.85);
                let mean_capacity = if unit(mix(key, 2)) < hot_prob {
                    0.15 + 0.25 * unit(mix(key, 3))
                } else {
                    0.55 + 0.40 * unit(mix(key, 3))
                };
                pools.push(PoolParams {
                    type_index: ti,
                    az_index: ai,
                    offered: t.offered_in(ai),
                    on_demand: t.on_demand_usd_per_hour,
                    discount,
                    mean_capacity,
                    key,
                });
            }
        }
        Market {
            seed,
            region: region.to_string(),
            pools,
            cache: HashMap::new(),
            capacity_overrides: HashMap::new(),
        }
    }

    pub fn seed(&self) -> u64 {
        self.seed
    }

    pub fn region(&self) -> &str {
        &self.region
    }

    pub fn pools(&self) -> &[PoolParams] {
        &self.pools
    }

    /// Index of the pool of catalog type `type_index` in AZ `az_index`.
    pub fn pool_index(&self, type_index: usize, az_index: usize) -> usize {
        type_index * 3 + az_index.min(2)
    }

    /// Pool for a type name and AZ name, if both exist in the region.
    pub fn pool_of(&self, instance_type: &str, az: &str) -> Option<usize> {
        let ti = Catalog::embedded().index_of(instance_type)?;
        let ai = super::catalog::az_index(&self.region, az)?;
        Some(self.pool_index(ti, ai))
    }

    /// AZ name of a pool.
    pub fn az_of(&self, pool: usize) -> String {
        az_name(&self.region, self.pools.get(pool).map_or(0, |p| p.az_index))
    }

    /// Pins a pool's capacity (test hook); `None` restores the walk.
    pub fn set_capacity_override(&mut self, pool: usize, capacity: Option<f64>) {
        match capacity {
            Some(c) => {
                self.capacity_overrides.insert(pool, c.clamp(0.0, 1.0));
            }
            None => {
                self.capacity_overrides.remove(&pool);
            }
        }
    }

    /// Market state of `pool` during hour `hour` (cached by block).
    pub fn at_hour(&mut self, pool: usize, hour: i64) -> PoolHour {
        let Some(params) = self.pools.get(pool) else {
            return PoolHour {
                spot_price: 0.0,
                capacity: 0.0,
            };
        };
        let block = hour.div_euclid(BLOCK_HOURS);
        let offset = hour.rem_euclid(BLOCK_HOURS) as usize;
        let values = match self.cache.get(&(pool, block)) {
            Some(v) => Arc::clone(v),
            None => {
                // Bound memory: a long-running sim or a far-back history query must not
                // grow the cache without limit; recomputing a block is cheap.
                if self.cache.len() > self.pools.len() * 3 {
                    self.cache.clear();
                }
                let v = Arc::new(compute_block(params, &self.region, block));
                self.cache.insert((pool, block), Arc::clone(&v));
                v
            }
        };
        let mut state = values.get(offset).copied().unwrap_or(PoolHour {
            spot_price: params.on_demand,
            capacity: 0.0,
        });
        if let Some(c) = self.capacity_overrides.get(&pool) {
            state.capacity = *c;
        }
        state
    }

    /// Market state of `pool` at time `t`.
    pub fn at(&mut self, pool: usize, t: DateTime<Utc>) -> PoolHour {
        self.at_hour(pool, hour_of(t))
    }

    /// Hourly states of `pool` for hours `[start, end)`, without caching (for exports).
    pub fn series(&self, pool: usize, start: i64, end: i64) -> Vec<PoolHour> {
        let Some(params) = self.pools.get(pool) else {
            return Vec::new();
        };
        let mut out = Vec::with_capacity((end - start).max(0) as usize);
        let mut h = start;
        while h < end {
            let block = h.div_euclid(BLOCK_HOURS);
            let values = compute_block(params, &self.region, block);
            let block_end = (block + 1) * BLOCK_HOURS;
            let stop = end.min(block_end);
            let from = h.rem_euclid(BLOCK_HOURS) as usize;
            let to = from + (stop - h) as usize;
            out.extend_from_slice(values.get(from..to).unwrap_or(&[]));
            h = stop;
        }
        if let Some(c) = self.capacity_overrides.get(&pool) {
            for s in &mut out {
                s.capacity = *c;
            }
        }
        out
    }

    /// Deterministic uniform in [0, 1) for pool `pool`, hour `hour` and purpose `salt`.
    pub fn pool_draw(&self, pool: usize, hour: i64, salt: u64) -> f64 {
        let key = self.pools.get(pool).map_or(0, |p| p.key);
        unit(mix(key, mix(hour as u64, salt)))
    }
}

/// Business-hours demand dip in capacity: up to 0.05 around 14:00 local on weekdays.
fn business_dip(hour: i64) -> f64 {
    let t = hour_start(hour) + chrono::Duration::hours(SIM_UTC_OFFSET_HOURS);
    if t.weekday().number_from_monday() > 5 {
        return 0.0;
    }
    let lh = t.hour() as f64;
    if (8.0..20.0).contains(&lh) {
        0.05 * (std::f64::consts::PI * (lh - 8.0) / 12.0).sin()
    } else {
        0.0
    }
}

fn compute_block(p: &PoolParams, _region: &str, block: i64) -> Vec<PoolHour> {
    let first = block * BLOCK_HOURS;
    let mut out = Vec::with_capacity(BLOCK_HOURS as usize);
    let (mut xp, mut xc, mut shock) = (0.0f64, 0.0f64, 0.0f64);
    let price_innov = (1.0 - PRICE_AR * PRICE_AR).sqrt();
    let cap_innov = (1.0 - CAPACITY_AR * CAPACITY_AR).sqrt();
    let base_price = p.on_demand * (1.0 - p.discount);
    let mut published: Option<f64> = None;
    for h in (first - WARMUP_HOURS)..(first + BLOCK_HOURS) {
        let hk = h as u64;
        xp = PRICE_AR * xp + price_innov * normal(mix(p.key, mix(hk, 10)));
        xc = CAPACITY_AR * xc + cap_innov * normal(mix(p.key, mix(hk, 11)));
        shock *= SHOCK_DECAY;
        if unit(mix(p.key, mix(hk, 12))) < SHOCK_PROB {
            shock += 0.3 + 0.5 * unit(mix(p.key, mix(hk, 13)));
        }
        let capacity = if p.offered {
            (p.mean_capacity + CAPACITY_SIGMA * xc - shock - business_dip(h)).clamp(0.0, 1.0)
        } else {
            0.0
        };
        // Scarcity premium: below 0.4 capacity the price climbs towards on-demand.
        let scarcity = (0.4 - capacity).max(0.0);
        let raw = (base_price * (PRICE_SIGMA * xp).exp() * (1.0 + 2.0 * scarcity))
            .clamp(0.05 * p.on_demand, p.on_demand);
        let price = match published {
            Some(prev) if ((raw - prev) / prev).abs() <= PRICE_STICKINESS => prev,
            _ => (raw * 1e6).round() / 1e6,
        };
        published = Some(price);
        if h >= first {
            out.push(PoolHour {
                spot_price: price,
                capacity,
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pool_values_do_not_depend_on_query_order() {
        let mut a = Market::new(7, "us-east-1");
        let b = Market::new(7, "us-east-1");
        let pool = a.pool_of("m5.large", "us-east-1b").unwrap_or(0);
        let h0 = hour_of(chrono::Utc::now());
        let series = b.series(pool, h0 - 300, h0 + 300);
        for (i, s) in series.iter().enumerate().rev() {
            assert_eq!(*s, a.at_hour(pool, h0 - 300 + i as i64));
        }
    }

    #[test]
    fn hazard_rises_sharply_as_capacity_falls() {
        let healthy = interruption_hazard_per_hour(0.85);
        let tight = interruption_hazard_per_hour(0.25);
        assert!(tight > 100.0 * healthy, "{tight} vs {healthy}");
        // A healthy pool stays in the best Spot Advisor bucket (< 5% per month).
        assert!(interruption_probability(0.85, 720.0) < 0.05);
        assert_eq!(spot_slots(0.01), 0);
        assert!(spot_slots(0.9) > 100);
    }

    #[test]
    fn spot_is_capped_at_on_demand_and_discounted_on_average() {
        let m = Market::new(3, "us-east-1");
        let h0 = hour_of(SimStart::get());
        let mut ratios = Vec::new();
        for (i, p) in m.pools().iter().enumerate().filter(|(_, p)| p.offered) {
            for s in m.series(i, h0, h0 + 48) {
                assert!(s.spot_price <= p.on_demand + 1e-12);
                assert!(s.spot_price > 0.0);
                assert!((0.0..=1.0).contains(&s.capacity));
                ratios.push(s.spot_price / p.on_demand);
            }
        }
        let mean = ratios.iter().sum::<f64>() / ratios.len() as f64;
        // Spot is typically 55–75% off: the mean price ratio sits in 0.25–0.50.
        assert!((0.25..0.50).contains(&mean), "mean spot/on-demand {mean}");
    }

    struct SimStart;
    impl SimStart {
        fn get() -> DateTime<Utc> {
            super::super::clock::SimClock::default_start()
        }
    }
}
