//! The optimization policy of a cluster: the minimal part of the seeds' infrastructure
//! policy and node template that the optimizer needs. Stored as JSON per cluster; a
//! cluster without one uses [`ClusterPolicy::default`].

use serde::{Deserialize, Serialize};
use spot_engine::consolidate::{Aggressiveness, ConsolidationMethod, ConsolidationPolicy};
use spot_engine::rightsize::{Percentile, RightsizePolicy};
use spot_engine::spot::NodeTemplate;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ClusterPolicy {
    /// conservative (< 20 % utilization), balanced (< 50 %), aggressive (< 80 %).
    pub aggressiveness: Aggressiveness,
    /// delete_empty or replace_and_move.
    pub method: ConsolidationMethod,
    /// Namespaces whose pods are never moved.
    pub excluded_namespaces: Vec<String>,
    /// Nodes younger than this are not touched (seconds).
    pub stabilization_window_secs: i64,
    /// Node template: families, architectures, excluded sizes, capacity type, strategy,
    /// on-demand fallback.
    pub template: NodeTemplate,
    /// Plan and log "would execute" without touching the cloud.
    pub dry_run: bool,
    /// Maintenance mode: plans are produced but every action is blocked.
    pub maintenance_mode: bool,
    /// Rightsizing: recommended request = this usage percentile (p95 or p99) ...
    pub rightsize_percentile: Percentile,
    /// ... plus this headroom (0.10–0.50).
    pub rightsize_headroom: f64,
    /// How long a drain may wait for PodDisruptionBudgets before the action fails and the
    /// node is uncordoned (30–3600 s).
    pub drain_timeout_secs: u64,
}

/// Default [`ClusterPolicy::drain_timeout_secs`].
pub const DEFAULT_DRAIN_TIMEOUT_SECS: u64 = 300;

impl Default for ClusterPolicy {
    fn default() -> Self {
        let c = ConsolidationPolicy::default();
        ClusterPolicy {
            aggressiveness: Aggressiveness::Balanced,
            method: ConsolidationMethod::ReplaceAndMove,
            excluded_namespaces: c.excluded_namespaces,
            stabilization_window_secs: c.stabilization_window_secs,
            template: NodeTemplate::default(),
            dry_run: false,
            maintenance_mode: false,
            rightsize_percentile: Percentile::P95,
            rightsize_headroom: 0.20,
            drain_timeout_secs: DEFAULT_DRAIN_TIMEOUT_SECS,
        }
    }
}

impl ClusterPolicy {
    /// Parses stored or submitted JSON; the error names the field.
    pub fn from_json(s: &str) -> Result<ClusterPolicy, String> {
        let de = &mut serde_json::Deserializer::from_str(s);
        serde_path_to_error::deserialize(de).map_err(|e| format!("{}: {}", e.path(), e.inner()))
    }

    /// Range checks serde cannot express; the error names the field.
    pub fn validate(&self) -> Result<(), (&'static str, String)> {
        if self.stabilization_window_secs < 0 {
            return Err(("stabilization_window_secs", "must be >= 0".into()));
        }
        if !(0.10..=0.50).contains(&self.rightsize_headroom) {
            return Err((
                "rightsize_headroom",
                format!(
                    "must be between 0.10 and 0.50, got {}",
                    self.rightsize_headroom
                ),
            ));
        }
        if !(5..=3600).contains(&self.drain_timeout_secs) {
            return Err((
                "drain_timeout_secs",
                format!(
                    "must be between 5 and 3600 seconds, got {}",
                    self.drain_timeout_secs
                ),
            ));
        }
        Ok(())
    }

    pub fn rightsizing(&self) -> RightsizePolicy {
        RightsizePolicy {
            percentile: self.rightsize_percentile,
            headroom: self.rightsize_headroom,
            ..RightsizePolicy::default()
        }
    }

    pub fn consolidation(&self) -> ConsolidationPolicy {
        ConsolidationPolicy {
            aggressiveness: self.aggressiveness,
            method: self.method,
            excluded_namespaces: self.excluded_namespaces.clone(),
            excluded_labels: ConsolidationPolicy::default().excluded_labels,
            stabilization_window_secs: self.stabilization_window_secs.max(0),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_round_trip_and_unknown_fields_are_named() {
        let p = ClusterPolicy::default();
        let s = serde_json::to_string(&p).unwrap_or_default();
        assert_eq!(ClusterPolicy::from_json(&s), Ok(p));
        let err = ClusterPolicy::from_json(r#"{"aggressiveness":"wild"}"#).unwrap_err();
        assert!(err.starts_with("aggressiveness"), "{err}");
        let err = ClusterPolicy::from_json(r#"{"template":{"bogus":1}}"#).unwrap_err();
        assert!(err.contains("template"), "{err}");
    }
}
