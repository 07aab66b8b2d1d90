//! The headline table: simulated weeks of one demo cluster on the `sim` market under four
//! strategies. Same market history (seed 42, us-east-1; WEEKS consecutive weeks, totals and
//! per-week averages), same workload, same interruption draws for every strategy (a node's
//! fate depends only on its pool, the hour and its slot in that pool). Prints cost, savings
//! vs all on-demand, interruptions and pods disrupted.
//!
//!   cargo bench -p spot-actors --bench week
//!
//! Strategies:
//! - `on-demand`: the packer over on-demand offers only.
//! - `lowest-price spot`: the packer over every spot pool at its current price.
//! - `capacity-optimized spot`: AWS-style price-capacity: each pool's price is weighed by its
//!   Spot placement score (the capacity signal), effective = price × 10 / score.
//! - `ours (model)`: pools scored every hour by the shipped ONNX model (contract v1, on
//!   tract) with the hive-mind flags of interruptions seen so far; AVOID and flagged pools
//!   excluded, effective price = price × (1 + 4 p) (a replacement costs about a node-hour
//!   and the pods' restart), on-demand fallback when no pool fits.
//!
//! Interrupted nodes are replaced at the next hour by packing their pods with the strategy's
//! current offers; nothing else moves (no rebalancing), as a conservative baseline for all.

use std::collections::{BTreeMap, HashMap};

use chrono::{Datelike, Duration, Timelike};
use spot_cloud::sim::catalog::Catalog as SimCatalog;
use spot_cloud::sim::history::{export_range, placement_score, HISTORY_REGION};
use spot_cloud::sim::market::interruption_probability;
use spot_cloud::sim::SimClock;
use spot_engine::catalog::{Arch, Lifecycle};
use spot_engine::pack::{self, CapacityReq, NodeOffer, PackOptions, Pod};
use spot_engine::risk::{self, FamilyCategory, OnnxModel, PoolObservation, RiskModel, Runtime};

const SEED: u64 = 42;
/// Consecutive simulated weeks (one week is too few interruptions to compare strategies).
const WEEKS: usize = 8;
const HOURS: usize = WEEKS * 7 * 24;
const WARMUP: usize = 24;

struct PoolSeries {
    instance_type: String,
    az: String,
    price: Vec<f64>,
    capacity: Vec<f64>,
    od: f64,
}

#[derive(Clone, Copy, PartialEq)]
enum Strategy {
    OnDemand,
    LowestPrice,
    CapacityOptimized,
    Model,
}

impl Strategy {
    fn name(self) -> &'static str {
        match self {
            Strategy::OnDemand => "on-demand",
            Strategy::LowestPrice => "lowest-price spot",
            Strategy::CapacityOptimized => "capacity-optimized spot",
            Strategy::Model => "ours (model)",
        }
    }
}

struct Node {
    pool: usize, // usize::MAX for on-demand
    pods: Vec<String>,
    od_price: f64,
}

/// Deterministic uniform draw in [0, 1) from (pool, hour, slot).
fn draw(pool: usize, hour: usize, slot: usize) -> f64 {
    let mut x = (pool as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15)
        ^ (hour as u64).wrapping_mul(0xC2B2_AE3D_27D4_EB4F)
        ^ (slot as u64).wrapping_mul(0x1656_67B1_9E37_79F9)
        ^ SEED;
    x ^= x >> 33;
    x = x.wrapping_mul(0xff51_afd7_ed55_8ccd);
    x ^= x >> 33;
    x = x.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    x ^= x >> 33;
    (x >> 11) as f64 / (1u64 << 53) as f64
}

fn workload() -> Vec<Pod> {
    let mut pods = Vec::new();
    let mut add = |n: usize, name: &str, cpu: u64, mem: u64| {
        for i in 0..n {
            pods.push(Pod {
                id: format!("{name}-{i}"),
                cpu_millis: cpu,
                memory_mib: mem,
                gpus: 0,
                capacity: CapacityReq::Any,
                arch: None,
                anti_affinity_group: None,
                az_spread_group: None,
            });
        }
    };
    add(80, "web", 250, 512);
    add(50, "api", 500, 1024);
    add(20, "worker", 1000, 4096);
    add(6, "cache", 2000, 8192);
    pods
}

fn main() {
    let start = SimClock::default_start() - Duration::days(7 * WEEKS as i64 + 2);
    let end = start + Duration::hours((WARMUP + HOURS) as i64);
    let sim_catalog = SimCatalog::embedded();
    let mut series: BTreeMap<(String, String), PoolSeries> = BTreeMap::new();
    for row in export_range(SEED, start, end) {
        let e = series
            .entry((row.instance_type.clone(), row.az.clone()))
            .or_insert_with(|| PoolSeries {
                instance_type: row.instance_type.clone(),
                az: row.az.clone(),
                price: Vec::new(),
                capacity: Vec::new(),
                od: row.on_demand_price,
            });
        e.price.push(row.spot_price);
        e.capacity.push(row.capacity);
    }
    let pools: Vec<PoolSeries> = series
        .into_values()
        .filter(|p| p.price.len() == WARMUP + HOURS)
        .collect();
    let types: Vec<&spot_cloud::sim::catalog::CatalogType> = sim_catalog
        .types()
        .iter()
        .filter(|t| t.gpus == 0 && !t.burstable)
        .collect();
    let info: HashMap<&str, &spot_cloud::sim::catalog::CatalogType> =
        types.iter().map(|t| (t.name.as_str(), *t)).collect();
    let overhead = spot_engine::catalog::NodeOverhead::default();
    let alloc = |t: &spot_cloud::sim::catalog::CatalogType| {
        overhead.allocatable(&spot_engine::catalog::InstanceType {
            name: t.name.clone(),
            family: t.family.clone(),
            vcpu: t.vcpu,
            memory_mib: t.memory_mib,
            gpus: 0,
            arch: Arch::X86_64,
            burstable: false,
            on_demand_hourly: t.on_demand_usd_per_hour,
        })
    };
    let model = OnnxModel::from_bytes(spot_actors::risk::SHIPPED_MODEL, Runtime::Tract)
        .expect("shipped model loads");
    let pods = workload();
    let pod_index: HashMap<&str, &Pod> = pods.iter().map(|p| (p.id.as_str(), p)).collect();
    println!("{WEEKS} simulated weeks: {} pods ({} vCPU requested), {} spot pools of {HISTORY_REGION}, seed {SEED}", pods.len(), pods.iter().map(|p| p.cpu_millis).sum::<u64>() / 1000, pools.len());
    println!(
        "{:<26} {:>12} {:>10} {:>16} {:>17} {:>12}",
        "strategy", "cost/week $", "savings", "interruptions", "pods disrupted", "decide ms"
    );
    println!(
        "{:<26} {:>12} {:>10} {:>16} {:>17} {:>12}",
        "",
        "(average)",
        "",
        format!("(total, {WEEKS} wk)"),
        format!("(total, {WEEKS} wk)"),
        "(total)"
    );
    let mut baseline = None;
    for strategy in [
        Strategy::OnDemand,
        Strategy::LowestPrice,
        Strategy::CapacityOptimized,
        Strategy::Model,
    ] {
        let mut nodes: Vec<Node> = Vec::new();
        let mut displaced: Vec<String> = pods.iter().map(|p| p.id.clone()).collect();
        let (mut cost, mut interruptions, mut disrupted) = (0.0f64, 0usize, 0usize);
        let mut flags: Vec<(usize, usize)> = Vec::new(); // (pool, hour seen)
        let mut decide_ms = 0.0f64;
        for h in 0..HOURS {
            let t = WARMUP + h;
            if !displaced.is_empty() {
                let started = std::time::Instant::now();
                // Offers for this hour (hourly_price = what the strategy optimises).
                let mut offers: Vec<NodeOffer> = Vec::new();
                let mut offer_pool: Vec<usize> = Vec::new();
                let mut probs: Vec<f64> = vec![0.0; pools.len()];
                if strategy == Strategy::Model {
                    let now = start + Duration::hours(t as i64);
                    let mut obs = Vec::new();
                    let mut idx = Vec::new();
                    for (k, p) in pools.iter().enumerate() {
                        let Some(ti) = info.get(p.instance_type.as_str()) else {
                            continue;
                        };
                        obs.push(PoolObservation {
                            instance_type: p.instance_type.clone(),
                            category: serde_json::from_value::<FamilyCategory>(
                                serde_json::to_value(ti.category).unwrap_or_default(),
                            )
                            .unwrap_or(FamilyCategory::Other),
                            vcpu: ti.vcpu,
                            az: p.az.clone(),
                            spot_prices: p.price[t + 1 - 24..=t].to_vec(),
                            on_demand_price: p.od,
                            placement_score: Some(placement_score(p.capacity[t])),
                            hour_utc: now.hour() as u8,
                            weekday: now.weekday().num_days_from_monday() as u8,
                            hive_flags_24h: flags
                                .iter()
                                .filter(|(fp, fh)| *fp == k && h - fh <= 24)
                                .count() as u32,
                        });
                        idx.push(k);
                    }
                    let feats = risk::extract_batch(&obs).expect("features");
                    for (s, k) in model.score(&feats).expect("scores").into_iter().zip(idx) {
                        probs[k] = s.probability;
                    }
                }
                for (k, p) in pools.iter().enumerate() {
                    let Some(ti) = info.get(p.instance_type.as_str()) else {
                        continue;
                    };
                    let price = p.price[t];
                    let eff = match strategy {
                        Strategy::OnDemand => continue,
                        Strategy::LowestPrice => price,
                        Strategy::CapacityOptimized => {
                            price * 10.0 / f64::from(placement_score(p.capacity[t]))
                        }
                        Strategy::Model => {
                            // The hive mind flags a pool for 30 minutes: the replacement decided right
                            // after an interruption (next simulated hour) still sees the flag.
                            let flagged = flags.iter().any(|(fp, fh)| *fp == k && h - fh <= 1);
                            if probs[k] > 0.5 || flagged {
                                continue;
                            }
                            price * (1.0 + 4.0 * probs[k])
                        }
                    };
                    offers.push(NodeOffer {
                        instance_type: p.instance_type.clone(),
                        lifecycle: Lifecycle::Spot,
                        az: p.az.clone(),
                        hourly_price: eff,
                        arch: Arch::X86_64,
                        allocatable: alloc(ti),
                    });
                    offer_pool.push(k);
                }
                if strategy == Strategy::OnDemand || strategy == Strategy::Model {
                    for ti in &types {
                        offers.push(NodeOffer {
                            instance_type: ti.name.clone(),
                            lifecycle: Lifecycle::OnDemand,
                            az: format!("{HISTORY_REGION}a"),
                            hourly_price: ti.on_demand_usd_per_hour,
                            arch: Arch::X86_64,
                            allocatable: alloc(ti),
                        });
                        offer_pool.push(usize::MAX);
                    }
                }
                let batch: Vec<Pod> = displaced
                    .iter()
                    .filter_map(|id| pod_index.get(id.as_str()).map(|p| (*p).clone()))
                    .collect();
                let opts = PackOptions {
                    max_colgen_iterations: 20,
                    ..PackOptions::default()
                };
                let plan = pack::pack(&batch, &offers, &opts).expect("pack");
                for n in plan.nodes {
                    let k = offers
                        .iter()
                        .position(|o| {
                            o.instance_type == n.instance_type
                                && o.az == n.az
                                && o.lifecycle == n.lifecycle
                        })
                        .map(|i| offer_pool[i])
                        .unwrap_or(usize::MAX);
                    let od_price = info
                        .get(n.instance_type.as_str())
                        .map(|t| t.on_demand_usd_per_hour)
                        .unwrap_or(0.0);
                    nodes.push(Node {
                        pool: k,
                        pods: n.pods,
                        od_price,
                    });
                }
                displaced.clear();
                decide_ms += started.elapsed().as_secs_f64() * 1000.0;
            }
            // Pay for the hour, then draw interruptions.
            let mut slots: HashMap<usize, usize> = HashMap::new();
            let mut survivors = Vec::new();
            for n in nodes.drain(..) {
                if n.pool == usize::MAX {
                    cost += n.od_price;
                    survivors.push(n);
                    continue;
                }
                let p = &pools[n.pool];
                cost += p.price[t];
                let slot = slots.entry(n.pool).or_insert(0);
                let u = draw(n.pool, h, *slot);
                *slot += 1;
                if u < interruption_probability(p.capacity[t], 1.0) {
                    interruptions += 1;
                    disrupted += n.pods.len();
                    flags.push((n.pool, h));
                    displaced.extend(n.pods);
                } else {
                    survivors.push(n);
                }
            }
            nodes = survivors;
        }
        let base = *baseline.get_or_insert(cost);
        println!(
            "{:<26} {:>12.2} {:>9.1}% {:>16} {:>17} {:>12.1}",
            strategy.name(),
            cost / WEEKS as f64,
            100.0 * (1.0 - cost / base),
            interruptions,
            disrupted,
            decide_ms
        );
    }
}
