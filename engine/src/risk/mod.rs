//! MOD-AI-01: spot interruption risk (feature `onnx`).
//!
//! The pipeline is `PoolObservation` → [`features::extract`] (contract v1, see
//! `onnx/CONTRACT.md`) → a [`RiskModel`] → [`RiskScore`]. Two models implement the trait:
//!
//! - [`OnnxModel`]: an uploaded/shipped ONNX graph (`onnx/risk-v1.onnx`) run on tract
//!   (pure Rust, always available) or on a libonnxruntime loaded at runtime.
//!   [`OnnxModel::from_bytes`] validates the graph against the contract before it can
//!   score anything: that is the model registry's upload validation (Flow 3).
//! - [`HeuristicModel`]: a fixed, documented rule used when no model loads. Its scores
//!   are marked `degraded` so callers and the UI can say so.
//!
//! Only `interruption_probability` comes from the model; `confidence` and `action` are
//! derived here (see [`RiskScore::from_probability`]) so every model, including the
//! heuristic, reports them the same way.

pub mod features;
mod heuristic;
mod onnx;

#[cfg(test)]
mod tests;

pub use self::features::{extract, extract_batch, FamilyCategory, Features, PoolObservation};
pub use self::heuristic::HeuristicModel;
pub use self::onnx::{active_runtime, OnnxModel, Runtime};
/// The contract's recommended action: SAFE (< 0.2), CAUTION (0.2–0.5), AVOID (> 0.5).
/// Same type (and thresholds) the spot selector and the decision engine use.
pub use crate::catalog::RiskLevel as Action;

/// Errors of the risk module. Model-validation variants are what the model registry shows
/// an admin whose upload was rejected, so each says what was expected.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum RiskError {
    /// An observation cannot be turned into features.
    #[error("invalid observation `{field}`: {reason}")]
    InvalidObservation { field: String, reason: String },
    /// The bytes are not a loadable ONNX model (garbage, truncated, unsupported op).
    #[error("model does not load: {0}")]
    InvalidModel(String),
    /// The model loads but its inputs/outputs do not follow the contract.
    #[error("model breaks contract v1: {0}")]
    ContractMismatch(String),
    /// The model ran on a contract vector and returned a value outside [0, 1] (or NaN).
    #[error("model output {value} for contract vector {vector} is outside [0, 1]")]
    OutOfRange { vector: usize, value: f32 },
    /// The requested runtime is unavailable (library missing, wrong version, init failed).
    #[error("ONNX runtime unavailable: {0}")]
    RuntimeUnavailable(String),
    /// ort binds one backend per process; another one was already chosen.
    #[error("ONNX runtime {requested} requested but this process already uses {active}")]
    RuntimeConflict { active: String, requested: String },
    /// Inference failed at scoring time (after a successful validation).
    #[error("inference failed: {0}")]
    Inference(String),
}

/// The contract's output for one pool. Serialises with the contract's field names
/// (`interruption_probability`, `confidence_score`, `recommended_action`).
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct RiskScore {
    /// Probability in [0, 1] that the pool interrupts (reference fleet of 10 instances)
    /// within the next hour.
    #[serde(rename = "interruption_probability")]
    pub probability: f64,
    /// How much to trust the probability, in [0, 1] (see [`RiskScore::from_probability`]).
    #[serde(rename = "confidence_score")]
    pub confidence: f64,
    #[serde(rename = "recommended_action")]
    pub action: Action,
    /// True when the score comes from the static heuristic because no model is loaded.
    pub degraded: bool,
}

/// Confidence multiplier for the heuristic: it is a fallback, never as trustworthy as a
/// validated model.
pub const HEURISTIC_CONFIDENCE_FACTOR: f64 = 0.5;

impl RiskScore {
    /// Derives the contract's confidence and action from a probability.
    ///
    /// `confidence = (1 − H₂(p)) × coverage × (0.5 if degraded)`, where `H₂` is the
    /// binary entropy in bits (a probability near 0 or 1 is a confident call, 0.5 is a
    /// coin flip) and `coverage` ([`Features::coverage`]) discounts short price history
    /// and a missing capacity signal. The action uses the contract thresholds on `p`.
    pub fn from_probability(p: f64, features: &Features, degraded: bool) -> Self {
        let p = if p.is_finite() {
            p.clamp(0.0, 1.0)
        } else {
            1.0
        };
        let h = |q: f64| if q <= 0.0 { 0.0 } else { -q * q.log2() };
        let entropy = h(p) + h(1.0 - p);
        let factor = if degraded {
            HEURISTIC_CONFIDENCE_FACTOR
        } else {
            1.0
        };
        RiskScore {
            probability: p,
            confidence: ((1.0 - entropy) * features.coverage() * factor).clamp(0.0, 1.0),
            action: Action::from_probability(p),
            degraded,
        }
    }
}

/// A spot interruption risk model. Implementations are shared between request handlers
/// (and hot-swapped by the registry), hence `Send + Sync`.
pub trait RiskModel: Send + Sync {
    /// Scores a batch; the output has one entry per input row, in order.
    fn score(&self, batch: &[Features]) -> Result<Vec<RiskScore>, RiskError>;

    /// Short description for logs and the API (`onnx:tract`, `heuristic (degraded)`).
    fn describe(&self) -> String;

    /// True for the fallback heuristic.
    fn is_degraded(&self) -> bool {
        false
    }
}

/// Loads `bytes` on `runtime`, or falls back to the heuristic (logging nothing: the caller
/// gets the load error to report next to the degraded model).
pub fn load_or_heuristic(
    bytes: Option<&[u8]>,
    runtime: &Runtime,
) -> (Box<dyn RiskModel>, Option<RiskError>) {
    match bytes.map(|b| OnnxModel::from_bytes(b, runtime.clone())) {
        Some(Ok(m)) => (Box::new(m), None),
        Some(Err(e)) => (Box::new(HeuristicModel), Some(e)),
        None => (Box::new(HeuristicModel), None),
    }
}
