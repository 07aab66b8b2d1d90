//! The static fallback risk rule (MOD-AI-01 failure mode "falls back to static
//! heuristics").

use super::features::col;
use super::{Features, RiskError, RiskModel, RiskScore};

/// Expert rule over the contract features, not fitted to data, so it needs no model file:
///
/// ```text
/// p = clamp( 0.6 · (1 − capacity_signal)³            (0 when the signal is missing)
///          + 0.5 · clamp((price_ratio_last − 0.4) / 0.6, 0, 1)
///          + 0.1 · min(hive_flags_24h_log1p / ln 6, 1), 0, 1)
/// ```
///
/// Why these terms: interruptions follow capacity, so scarcity dominates, cubed so
/// healthy pools stay near zero; a spot price close to on-demand is the visible symptom
/// of scarcity (pools normally sit 55–75% below on-demand); recent hive-mind flags (5+ in
/// 24 h saturate) mean the pool is interrupting right now. `onnx/features.py`
/// (`heuristic_probability`) holds the same constants and `onnx/README.md` reports its
/// held-out AUC/Brier next to the model's. Scores are marked `degraded`.
#[derive(Debug, Clone, Copy, Default)]
pub struct HeuristicModel;

impl HeuristicModel {
    /// The rule on one feature row.
    pub fn probability(features: &Features) -> f64 {
        let v = |i: usize| features.values.get(i).copied().map_or(0.0, f64::from);
        let scarcity = 1.0 - v(col::CAPACITY_SIGNAL);
        let cap_term = if v(col::CAPACITY_MISSING) > 0.5 {
            0.0
        } else {
            0.6 * scarcity.powi(3)
        };
        let price_term = 0.5 * ((v(col::PRICE_RATIO_LAST) - 0.4) / 0.6).clamp(0.0, 1.0);
        let hive_term = 0.1 * (v(col::HIVE_FLAGS) / 6f64.ln()).min(1.0);
        (cap_term + price_term + hive_term).clamp(0.0, 1.0)
    }
}

impl RiskModel for HeuristicModel {
    fn score(&self, batch: &[Features]) -> Result<Vec<RiskScore>, RiskError> {
        Ok(batch
            .iter()
            .map(|f| RiskScore::from_probability(Self::probability(f), f, true))
            .collect())
    }

    fn describe(&self) -> String {
        "heuristic (degraded)".to_owned()
    }

    fn is_degraded(&self) -> bool {
        true
    }
}
