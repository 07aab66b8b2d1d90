//! Labelled market history for training the spot risk model.
//!
//! Rows come from the same market model the live simulator uses (same seed, same pool
//! walks), one per (instance type, AZ, hour). The label says whether an interruption
//! happened in the pool during the following hour, for a reference fleet of
//! [`REFERENCE_FLEET`] instances drawn at the pool's hazard: that is the event the risk
//! model has to predict from price and capacity signals known at the row's time.

use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use super::catalog::Catalog;
use super::clock::SimClock;
use super::market::{hour_of, hour_start, interruption_probability, Market};

/// Instances per pool the interruption label is drawn for.
pub const REFERENCE_FLEET: f64 = 10.0;
/// Region the exports describe.
pub const HISTORY_REGION: &str = "us-east-1";

/// One pool-hour.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HistoryRow {
    /// Start of the hour.
    pub time: DateTime<Utc>,
    pub instance_type: String,
    pub az: String,
    /// Spot price in force during the hour, USD per hour.
    pub spot_price: f64,
    pub on_demand_price: f64,
    /// Pool capacity level in [0, 1] during the hour.
    pub capacity: f64,
    /// Whether the reference fleet saw an interruption during the next hour.
    pub interrupted_next_hour: bool,
}

/// `days` of hourly history ending at [`SimClock::default_start`], for every offered pool
/// of `us-east-1`. Deterministic in `seed`; rows are grouped by pool, oldest first.
pub fn export(seed: u64, days: u32) -> impl Iterator<Item = HistoryRow> {
    let end = SimClock::default_start();
    export_range(seed, end - Duration::days(i64::from(days)), end)
}

/// Hourly history for the hours starting in `[start, end)`.
pub fn export_range(
    seed: u64,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
) -> impl Iterator<Item = HistoryRow> {
    let market = Arc::new(Market::new(seed, HISTORY_REGION));
    let (h0, h1) = (hour_of(start), hour_of(end));
    let pools: Vec<usize> = market
        .pools()
        .iter()
        .enumerate()
        .filter(|(_, p)| p.offered)
        .map(|(i, _)| i)
        .collect();
    pools.into_iter().flat_map(move |pool| {
        let market = Arc::clone(&market);
        let catalog = Catalog::embedded();
        let params = market.pools().get(pool).cloned();
        // One extra hour to know the capacity the label is drawn at.
        let series = market.series(pool, h0, h1 + 1);
        let az = market.az_of(pool);
        let rows: Vec<HistoryRow> = match params {
            Some(p) => {
                let name = catalog
                    .types()
                    .get(p.type_index)
                    .map(|t| t.name.clone())
                    .unwrap_or_default();
                series
                    .windows(2)
                    .enumerate()
                    .map(|(k, w)| {
                        let h = h0 + k as i64;
                        let p_next = interruption_probability(w[1].capacity, REFERENCE_FLEET);
                        HistoryRow {
                            time: hour_start(h),
                            instance_type: name.clone(),
                            az: az.clone(),
                            spot_price: w[0].spot_price,
                            on_demand_price: p.on_demand,
                            capacity: w[0].capacity,
                            interrupted_next_hour: market.pool_draw(pool, h + 1, 0x1AB) < p_next,
                        }
                    })
                    .collect()
            }
            None => Vec::new(),
        };
        rows.into_iter()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn correlation(xs: &[f64], ys: &[f64]) -> f64 {
        let n = xs.len() as f64;
        let (mx, my) = (xs.iter().sum::<f64>() / n, ys.iter().sum::<f64>() / n);
        let cov: f64 = xs.iter().zip(ys).map(|(x, y)| (x - mx) * (y - my)).sum();
        let vx: f64 = xs.iter().map(|x| (x - mx).powi(2)).sum();
        let vy: f64 = ys.iter().map(|y| (y - my).powi(2)).sum();
        cov / (vx.sqrt() * vy.sqrt())
    }

    #[test]
    fn export_is_deterministic_and_labels_follow_capacity() {
        let a: Vec<HistoryRow> = export(11, 2).take(500).collect();
        let b: Vec<HistoryRow> = export(11, 2).take(500).collect();
        assert_eq!(a, b);
        assert_eq!(a[0].time + Duration::hours(1), a[1].time);

        let rows: Vec<HistoryRow> = export(11, 7).collect();
        assert!(rows.len() > 150 * 3 * 24 * 7 / 2);
        assert!(rows
            .iter()
            .all(|r| r.spot_price > 0.0 && r.spot_price <= r.on_demand_price));
        let positives = rows.iter().filter(|r| r.interrupted_next_hour).count();
        assert!(positives > 100, "{positives} interruptions in a week");
        let cap: Vec<f64> = rows.iter().map(|r| r.capacity).collect();
        let lab: Vec<f64> = rows
            .iter()
            .map(|r| f64::from(u8::from(r.interrupted_next_hour)))
            .collect();
        let r = correlation(&cap, &lab);
        assert!(r < -0.2, "capacity vs interruption correlation {r}");
    }
}

/// Columns of [`write_csv`].
pub const CSV_HEADER: &str = "time,instance_type,family,category,vcpu,memory_mib,gpus,burstable,\
az,az_index,spot_price,on_demand_price,capacity,placement_score,interrupted_next_hour";

/// Spot placement score (1–10) the simulator reports for a capacity level in [0, 1].
pub fn placement_score(capacity: f64) -> u8 {
    (capacity * 10.0).ceil().clamp(1.0, 10.0) as u8
}

/// Writes `days` of labelled history (seed `seed`) as CSV: the training data of the risk
/// model (`onnx/train.py`). One row per (instance type, AZ, hour), grouped by pool, oldest
/// first. Static instance facts come from the embedded catalog. `placement_score` is the
/// capacity signal the product can observe; `capacity` (the hidden truth) is for analysis
/// only and must never be a feature. Returns the number of rows.
pub fn write_csv(seed: u64, days: u32, out: &mut impl std::io::Write) -> std::io::Result<u64> {
    use super::catalog::az_index;
    let catalog = Catalog::embedded();
    writeln!(out, "{CSV_HEADER}")?;
    let mut n = 0u64;
    for row in export(seed, days) {
        let Some(t) = catalog.get(&row.instance_type) else {
            return Err(std::io::Error::other(format!(
                "{} is not in the catalog",
                row.instance_type
            )));
        };
        let category = serde_json::to_value(t.category)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_else(|| "other".to_owned());
        writeln!(
            out,
            "{},{},{},{},{},{},{},{},{},{},{},{},{:.6},{},{}",
            row.time.format("%Y-%m-%dT%H:%M:%SZ"),
            row.instance_type,
            t.family,
            category,
            t.vcpu,
            t.memory_mib,
            t.gpus,
            u8::from(t.burstable),
            row.az,
            az_index(HISTORY_REGION, &row.az).unwrap_or(0),
            row.spot_price,
            row.on_demand_price,
            row.capacity,
            placement_score(row.capacity),
            u8::from(row.interrupted_next_hour),
        )?;
        n += 1;
    }
    out.flush()?;
    Ok(n)
}
