//! Spot Optimizer decision engine: pure, deterministic planning logic.
//!
//! Everything here is a function over a snapshot: no IO, no async, no database, no
//! wall clock (callers pass `now` in as seconds since the Unix epoch). Work limits are
//! iteration/node budgets, so the same input always gives the same plan on any machine.
//!
//! Modules:
//! - [`catalog`]: instance types, spot pools, pricing math (monthly = hourly × 730).
//! - [`spot`]: MOD-SPOT-01, spot pool selection with strategies and fallback order.
//! - [`pack`]: MOD-PACK-01, bin packing by column generation + LP bound, FFD baseline.
//! - [`consolidate`]: waste removal under policy (aggressiveness, PDBs, exclusions).
//! - [`rightsize`]: MOD-SIZE-01, percentile + headroom request recommendations.
//! - [`decide`]: CORE-DECIDE, merges recommendations into a versioned action plan.
//! - [`plan`]: the one planner: LP target fleet, explained decisions, disruption waves.
//! - [`policy`]: the cluster's optimization policy (JSON).
//! - [`whatif`]: the what-if entry point over a documented JSON workload.
//! - [`fleet`]: fleet math (grades, EOL calendar, efficiency, waste, stability, idle hours).
//! - [`hibernate`]: hibernation calendar (DST-correct weekly slots, holidays, overrides)
//!   and the Auto Scaling group sizes a sleep sets and a wake restores.
//! - [`holidays`]: national public holidays of a few countries (rules, offline).
//! - `risk` (feature `onnx`): MOD-AI-01, interruption-risk features, ONNX models
//!   (tract or onnxruntime) and the static heuristic fallback.

#![deny(clippy::unwrap_used)]

pub mod catalog;
pub mod consolidate;
pub mod decide;
pub mod fleet;
pub mod hibernate;
pub mod holidays;
pub mod lab;
pub mod pack;
pub mod plan;
pub mod policy;
pub mod react;
pub mod rightsize;
#[cfg(feature = "onnx")]
pub mod risk;
pub mod spot;
pub mod template;
pub mod whatif;

/// Errors of the engine. Every variant names the offending input so a caller can
/// surface it to a user without guessing.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum EngineError {
    /// Input failed validation (negative price, NaN, duplicate id, ...).
    #[error("invalid input `{field}`: {reason}")]
    InvalidInput { field: String, reason: String },
    /// A pod fits on no offered node (after the per-node reserve) or no offer
    /// satisfies its architecture / capacity / zone requirement.
    #[error("pod `{pod}` cannot be scheduled: {reason}")]
    Unschedulable { pod: String, reason: String },
    /// The node template and risk flags leave no instance to choose from.
    #[error("no candidate instance: {0}")]
    NoCandidates(String),
    /// The LP solver failed; callers of [`pack::pack`] never see this because the
    /// packer falls back to FFD, but lower-level helpers may return it.
    #[error("LP solver failed: {0}")]
    Solver(String),
}

/// Result alias used throughout the engine.
pub type Result<T, E = EngineError> = std::result::Result<T, E>;

pub(crate) fn invalid(field: impl Into<String>, reason: impl Into<String>) -> EngineError {
    EngineError::InvalidInput {
        field: field.into(),
        reason: reason.into(),
    }
}

/// Checks that a price/probability-like number is finite and non-negative.
pub(crate) fn check_non_negative(field: &str, value: f64) -> Result<()> {
    if value.is_finite() && value >= 0.0 {
        Ok(())
    } else {
        Err(invalid(
            field,
            format!("must be finite and >= 0, got {value}"),
        ))
    }
}
