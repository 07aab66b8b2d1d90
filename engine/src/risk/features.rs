//! Contract v1 feature extraction (`onnx/CONTRACT.md`): one pool observation in, one
//! fixed-order `f32` row out.
//!
//! This is the single source of truth on the Rust side; `onnx/features.py` is its Python
//! twin used for training. The two are pinned together by `onnx/contract_vectors.json`
//! (raw observations with the expected feature rows), checked by the tests here. Every
//! computation happens in `f64` in a fixed order (sequential sums) and is rounded to
//! `f32` once at the end, exactly like the Python reference, so both sides agree to the
//! last bit or two.

use serde::{Deserialize, Serialize};

use super::RiskError;

/// Version of the feature/output contract these features implement.
pub const CONTRACT_VERSION: &str = "v1";
/// Name of the model's single input tensor, `float32 [N, FEATURE_COUNT]`.
pub const INPUT_NAME: &str = "features";
/// Name of the model's probability output, `float32 [N]` (or `[N, 1]`).
pub const OUTPUT_NAME: &str = "interruption_probability";
/// Hours of spot price history the price statistics look at (older entries are ignored).
pub const HISTORY_HOURS: usize = 24;
/// Hive-mind flag counts above this are clipped (one noisy pool must not saturate a model).
pub const HIVE_FLAG_CAP: u32 = 100;
/// `capacity_signal` when no placement score is known (with `capacity_signal_missing = 1`).
pub const CAPACITY_MISSING_VALUE: f64 = 0.5;

/// Feature names in contract order: the column `i` of the input tensor is `FEATURE_NAMES[i]`.
pub const FEATURE_NAMES: [&str; 22] = [
    "az_index",
    "family_hash",
    "family_generation",
    "log_spot_price_last",
    "log_spot_price_mean_24h",
    "price_ratio_last",
    "price_ratio_mean_24h",
    "price_volatility_24h",
    "price_trend_24h",
    "capacity_signal",
    "capacity_signal_missing",
    "hour_sin",
    "hour_cos",
    "dow_sin",
    "dow_cos",
    "hive_flags_24h_log1p",
    "cat_general",
    "cat_compute",
    "cat_memory",
    "cat_burstable",
    "cat_gpu",
    "vcpu_log2",
];
/// Number of features (`F` in the input shape `[N, F]`).
pub const FEATURE_COUNT: usize = FEATURE_NAMES.len();

/// Column indexes the heuristic and the tests need.
pub(crate) mod col {
    pub const PRICE_RATIO_LAST: usize = 5;
    pub const CAPACITY_SIGNAL: usize = 9;
    pub const CAPACITY_MISSING: usize = 10;
    pub const HIVE_FLAGS: usize = 15;
}

/// The contract's five family categories (one-hot); everything else (storage, HPC,
/// unknown) encodes as all zeros.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FamilyCategory {
    General,
    Compute,
    Memory,
    Burstable,
    /// GPU / accelerator families (`accelerated` in the cloud port's naming).
    #[serde(alias = "accelerated")]
    Gpu,
    /// Storage-optimised, HPC and unknown families.
    #[serde(other)]
    Other,
}

impl FamilyCategory {
    fn one_hot(self) -> [f64; 5] {
        let mut v = [0.0; 5];
        let slot = match self {
            FamilyCategory::General => Some(0),
            FamilyCategory::Compute => Some(1),
            FamilyCategory::Memory => Some(2),
            FamilyCategory::Burstable => Some(3),
            FamilyCategory::Gpu => Some(4),
            FamilyCategory::Other => None,
        };
        if let Some(i) = slot {
            v[i] = 1.0;
        }
        v
    }
}

/// What the product knows about one spot pool (instance type in an AZ) at scoring time.
///
/// This is also the JSON shape of `observation` in `onnx/contract_vectors.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PoolObservation {
    /// e.g. `c5.xlarge`; the family is the part before the first dot.
    pub instance_type: String,
    pub category: FamilyCategory,
    pub vcpu: u32,
    /// e.g. `us-east-1a`; the trailing letter gives the AZ index.
    pub az: String,
    /// Hourly spot prices (USD/h), oldest first, the last one in force now. Only the last
    /// [`HISTORY_HOURS`] are used; at least one is required.
    pub spot_prices: Vec<f64>,
    /// Regional on-demand price of the type (USD/h).
    pub on_demand_price: f64,
    /// AWS Spot placement score (1–10) for the pool, if known: the capacity signal.
    #[serde(default)]
    pub placement_score: Option<u8>,
    /// Hour of day, UTC, 0–23.
    pub hour_utc: u8,
    /// Day of week, 0 = Monday … 6 = Sunday (UTC).
    pub weekday: u8,
    /// Interruption flags the global risk tracker (hive mind) raised for this pool over
    /// the last 24 hours.
    #[serde(default)]
    pub hive_flags_24h: u32,
}

/// One contract feature row plus the data-quality facts that set the confidence score.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Features {
    pub values: [f32; FEATURE_COUNT],
    /// Hours of price history behind the price statistics (1–24).
    pub history_hours: u8,
    /// Whether a placement score was known (else `capacity_signal` is imputed).
    pub capacity_known: bool,
}

impl Features {
    /// Share of full information behind this row, in (0, 1]: fewer than 24 hours of prices
    /// or a missing capacity signal make any score less trustworthy.
    pub fn coverage(&self) -> f64 {
        let hist = f64::from(self.history_hours.min(HISTORY_HOURS as u8)) / HISTORY_HOURS as f64;
        let cap = if self.capacity_known { 1.0 } else { 0.75 };
        hist * cap
    }
}

fn bad(field: &str, reason: impl Into<String>) -> RiskError {
    RiskError::InvalidObservation {
        field: field.to_owned(),
        reason: reason.into(),
    }
}

/// FNV-1a (32-bit) of the family's bytes, low 16 bits scaled to [0, 1): a stable numeric
/// id that needs no vocabulary (new families just get a new id).
pub fn family_hash(family: &str) -> f64 {
    let mut h: u32 = 0x811C_9DC5;
    for b in family.bytes() {
        h ^= u32::from(b);
        h = h.wrapping_mul(0x0100_0193);
    }
    f64::from(h & 0xFFFF) / 65536.0
}

/// The digits right after the family's leading letters (`m6gd` → 6, `x2iedn` → 2), or 0
/// when there are none (or more than three, which is not a generation).
pub fn family_generation(family: &str) -> f64 {
    let rest = family.trim_start_matches(|c: char| c.is_ascii_alphabetic());
    let digits: &str = rest
        .find(|c: char| !c.is_ascii_digit())
        .map_or(rest, |end| &rest[..end]);
    if digits.is_empty() || digits.len() > 3 {
        return 0.0;
    }
    digits.parse::<u32>().map_or(0.0, f64::from)
}

/// Index of the AZ from its trailing letter (`…a` → 0, `…c` → 2); 0 when it is not a
/// lowercase letter.
pub fn az_index(az: &str) -> f64 {
    match az.chars().last() {
        Some(c) if c.is_ascii_lowercase() => f64::from(c as u32 - 'a' as u32),
        _ => 0.0,
    }
}

/// Builds the contract v1 feature row for one observation.
///
/// Errors name the offending field: empty or non-positive prices, a non-positive
/// on-demand price, hour/weekday/placement score/vCPU out of range.
pub fn extract(obs: &PoolObservation) -> Result<Features, RiskError> {
    let start = obs.spot_prices.len().saturating_sub(HISTORY_HOURS);
    let prices = &obs.spot_prices[start..];
    let Some(&last) = prices.last() else {
        return Err(bad("spot_prices", "at least one price is required"));
    };
    if let Some(p) = prices.iter().find(|p| !(p.is_finite() && **p > 0.0)) {
        return Err(bad(
            "spot_prices",
            format!("prices must be finite and > 0, got {p}"),
        ));
    }
    let od = obs.on_demand_price;
    if !(od.is_finite() && od > 0.0) {
        return Err(bad(
            "on_demand_price",
            format!("must be finite and > 0, got {od}"),
        ));
    }
    if obs.hour_utc > 23 {
        return Err(bad(
            "hour_utc",
            format!("must be 0–23, got {}", obs.hour_utc),
        ));
    }
    if obs.weekday > 6 {
        return Err(bad(
            "weekday",
            format!("must be 0–6 (Monday = 0), got {}", obs.weekday),
        ));
    }
    if obs.vcpu == 0 {
        return Err(bad("vcpu", "must be >= 1"));
    }
    let (capacity, missing) = match obs.placement_score {
        Some(s @ 1..=10) => (f64::from(s) / 10.0, 0.0),
        Some(s) => return Err(bad("placement_score", format!("must be 1–10, got {s}"))),
        None => (CAPACITY_MISSING_VALUE, 1.0),
    };

    let n = prices.len() as f64;
    let mut total = 0.0;
    for p in prices {
        total += p;
    }
    let mean = total / n;
    let mut sq = 0.0;
    for p in prices {
        let d = p - mean;
        sq += d * d;
    }
    let std = (sq / n).sqrt();
    let family = obs
        .instance_type
        .split_once('.')
        .map_or(obs.instance_type.as_str(), |(f, _)| f);
    let tau = 2.0 * std::f64::consts::PI;
    let hour = f64::from(obs.hour_utc);
    let dow = f64::from(obs.weekday);
    let flags = obs.hive_flags_24h.min(HIVE_FLAG_CAP);
    let cat = obs.category.one_hot();

    let v: [f64; FEATURE_COUNT] = [
        az_index(&obs.az),
        family_hash(family),
        family_generation(family),
        last.ln(),
        mean.ln(),
        last / od,
        mean / od,
        std / mean,
        last / mean - 1.0,
        capacity,
        missing,
        (tau * hour / 24.0).sin(),
        (tau * hour / 24.0).cos(),
        (tau * dow / 7.0).sin(),
        (tau * dow / 7.0).cos(),
        f64::from(flags).ln_1p(),
        cat[0],
        cat[1],
        cat[2],
        cat[3],
        cat[4],
        f64::from(obs.vcpu).log2(),
    ];
    Ok(Features {
        values: v.map(|x| x as f32),
        history_hours: prices.len() as u8,
        capacity_known: missing == 0.0,
    })
}

/// [`extract`] over a batch; the first invalid observation fails the batch (its index is
/// in the error's field name).
pub fn extract_batch(observations: &[PoolObservation]) -> Result<Vec<Features>, RiskError> {
    observations
        .iter()
        .enumerate()
        .map(|(i, o)| {
            extract(o).map_err(|e| match e {
                RiskError::InvalidObservation { field, reason } => RiskError::InvalidObservation {
                    field: format!("[{i}].{field}"),
                    reason,
                },
                other => other,
            })
        })
        .collect()
}
