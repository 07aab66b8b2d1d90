//! The optimization policy of a cluster: the part of the seeds' infrastructure policy and
//! node template that the optimizer needs. Stored as JSON per cluster; a cluster without
//! one uses [`ClusterPolicy::default`].
//!
//! Every field defaults, so a stored policy from an older release (without
//! `disruption_budget`, `on_demand_minimums` or `risk_premium`) still parses.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::consolidate::{Aggressiveness, ConsolidationMethod, ConsolidationPolicy};
use crate::pack::CapacityReq;
use crate::rightsize::{Percentile, RightsizePolicy};
use crate::spot::NodeTemplate;

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
    /// node is uncordoned (5–3600 s).
    pub drain_timeout_secs: u64,
    /// How many nodes a plan may disrupt at a time (one wave).
    pub disruption_budget: DisruptionBudget,
    /// "Run at least N % (or N replicas) of this namespace / label selector on on-demand".
    pub on_demand_minimums: Vec<OnDemandMinimum>,
    /// Risk premium in the planner's objective: an offer with interruption probability
    /// `p` (0 on-demand) is weighed at `price × (1 + risk_premium × p)` plus, per node,
    /// `risk_premium × (NODE_EXPOSURE_COST_HOURLY + NODE_INTERRUPTION_COST_HOURLY × p)`
    /// (see `plan`; 0 = price only). Reported costs are always real prices. Default 3.
    pub risk_premium: f64,
    /// Pods carrying any of these labels are never moved; their nodes are unmanaged
    /// (default `karpenter.sh/do-not-evict=true`).
    pub excluded_labels: Vec<LabelPair>,
    /// Where a namespace's pods may run: `force` spot only, `prefer` spot (falling back
    /// to on-demand), `never` on-demand only. A pod's own capacity-type node selector
    /// wins over its namespace's rule.
    pub spot_affinity: Vec<SpotAffinity>,
    /// `off`: no rightsizing; `recommend`: recommendations only (the default); `auto`:
    /// Optimize Now applies them to Deployments and StatefulSets through the agent.
    pub rightsize_mode: RightsizeMode,
    /// Severity threshold: rightsizing reductions saving less than this many USD per
    /// month are not recommended (0–10000; default 10).
    pub rightsize_min_monthly_savings: f64,
    /// Intelligent autoscaling (the seeds' master toggle, default on). Off: the cluster
    /// never gets a new node, even for pending pods — the cluster actor's pending-pod
    /// reaction launches nothing (the pods are reported unschedulable, "autoscaling is
    /// off") and Optimize Now only consolidates into the capacity that exists: empty
    /// nodes are deleted and under-utilised nodes drained onto other existing nodes, but
    /// no node is replaced by a cheaper one and nothing moves to new spot capacity
    /// (every such step buys a node). Pending pods go only into free room of existing
    /// nodes.
    pub autoscaling: bool,
    /// Enforce multi-AZ high availability (default off): the pods of each workload (same
    /// namespace and owner, e.g. `Deployment/api`) are spread over availability zones —
    /// new nodes for them are chosen with a zone skew of at most 1, and consolidation
    /// never moves such a pod to a node in another zone than its own. Pods without an
    /// owner are not grouped; a pod's own spread group wins.
    pub multi_az_spread: bool,
}

/// A `key=value` label.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LabelPair {
    pub key: String,
    pub value: String,
}

/// How a namespace's pods use spot capacity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SpotPreference {
    /// Spot only (`nodeSelector: capacity-type=spot`): pending when no spot is available.
    Force,
    /// Spot first, on-demand when spot is unavailable (the default for every pod).
    Prefer,
    /// On-demand only.
    Never,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SpotAffinity {
    pub namespace: String,
    pub mode: SpotPreference,
}

/// Rightsizing operating mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RightsizeMode {
    Off,
    /// Recommendations only: nothing is patched.
    Recommend,
    /// Optimize Now applies the recommendations: the agent patches the requests of
    /// Deployments and StatefulSets (a rolling update); never in a dry run.
    Auto,
}

/// Disruption budget: at most `max_percent` % of the cluster's nodes (rounded down, at
/// least 1), and at most `max_nodes` when set, are disrupted (deleted or replaced) in one
/// wave; a plan has at most `max_waves` waves when set (further nodes are kept with the
/// reason "disruption budget exhausted").
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DisruptionBudget {
    pub max_percent: f64,
    pub max_nodes: Option<u32>,
    pub max_waves: Option<u32>,
}

impl Default for DisruptionBudget {
    fn default() -> Self {
        Self {
            max_percent: 10.0,
            max_nodes: None,
            max_waves: None,
        }
    }
}

impl DisruptionBudget {
    /// Nodes that may be disrupted per wave in a cluster of `nodes` nodes (≥ 1).
    pub fn per_wave(&self, nodes: usize) -> usize {
        let pct = if self.max_percent.is_finite() {
            self.max_percent.clamp(0.0, 100.0)
        } else {
            10.0
        };
        let mut n = ((nodes as f64) * pct / 100.0 + 1e-9).floor() as usize;
        if let Some(m) = self.max_nodes {
            n = n.min(m as usize);
        }
        n.max(1)
    }
}

/// A per-workload on-demand minimum. A pod matches when it is in `namespace` (if set) and
/// carries every `selector` label. The planner requires
/// `max(ceil(percent/100 × matching), min(replicas, matching))` of the matching pods to run
/// on on-demand nodes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OnDemandMinimum {
    #[serde(default)]
    pub namespace: Option<String>,
    #[serde(default)]
    pub selector: BTreeMap<String, String>,
    /// 0–100.
    #[serde(default)]
    pub percent: Option<f64>,
    #[serde(default)]
    pub replicas: Option<u32>,
}

impl OnDemandMinimum {
    pub fn matches(&self, namespace: &str, labels: &BTreeMap<String, String>) -> bool {
        self.namespace.as_deref().is_none_or(|n| n == namespace)
            && self.selector.iter().all(|(k, v)| labels.get(k) == Some(v))
    }

    /// On-demand pods required out of `matching` matching pods.
    pub fn required(&self, matching: usize) -> usize {
        let by_pct = self
            .percent
            .map(|p| ((p.clamp(0.0, 100.0) / 100.0) * matching as f64 - 1e-9).ceil() as usize)
            .unwrap_or(0);
        let by_rep = self.replicas.map(|r| r as usize).unwrap_or(0);
        by_pct.max(by_rep).min(matching)
    }

    /// Human description, e.g. `namespace payments, app=api: ≥ 50% on on-demand`.
    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        if let Some(n) = &self.namespace {
            parts.push(format!("namespace {n}"));
        }
        for (k, v) in &self.selector {
            parts.push(format!("{k}={v}"));
        }
        if parts.is_empty() {
            parts.push("all pods".into());
        }
        let mut req = Vec::new();
        if let Some(p) = self.percent {
            req.push(format!("{p}%"));
        }
        if let Some(r) = self.replicas {
            req.push(format!("{r} replicas"));
        }
        format!(
            "{}: at least {} on on-demand",
            parts.join(", "),
            req.join(" and ")
        )
    }
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
            disruption_budget: DisruptionBudget::default(),
            on_demand_minimums: Vec::new(),
            risk_premium: 3.0,
            excluded_labels: ConsolidationPolicy::default()
                .excluded_labels
                .into_iter()
                .map(|(key, value)| LabelPair { key, value })
                .collect(),
            spot_affinity: Vec::new(),
            rightsize_mode: RightsizeMode::Recommend,
            rightsize_min_monthly_savings: RightsizePolicy::default().min_monthly_savings,
            autoscaling: true,
            multi_az_spread: false,
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
        let pct = self.disruption_budget.max_percent;
        if !(pct.is_finite() && pct > 0.0 && pct <= 100.0) {
            return Err((
                "disruption_budget.max_percent",
                format!("must be in (0, 100], got {pct}"),
            ));
        }
        if self.disruption_budget.max_waves == Some(0) {
            return Err(("disruption_budget.max_waves", "must be >= 1".into()));
        }
        if !(self.risk_premium.is_finite() && (0.0..=10.0).contains(&self.risk_premium)) {
            return Err((
                "risk_premium",
                format!("must be between 0 and 10, got {}", self.risk_premium),
            ));
        }
        for (i, l) in self.excluded_labels.iter().enumerate() {
            if l.key.trim().is_empty() || l.key.len() > 317 || l.value.len() > 63 {
                return Err((
                    "excluded_labels",
                    format!(
                        "label {} needs a key (at most 317 characters) and a value of at most 63",
                        i + 1
                    ),
                ));
            }
        }
        let mut seen = std::collections::BTreeSet::new();
        for a in &self.spot_affinity {
            let ok = !a.namespace.is_empty()
                && a.namespace.len() <= 63
                && a.namespace
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
                && !a.namespace.starts_with('-')
                && !a.namespace.ends_with('-');
            if !ok {
                return Err((
                    "spot_affinity.namespace",
                    format!("{:?} is not a Kubernetes namespace name", a.namespace),
                ));
            }
            if !seen.insert(a.namespace.as_str()) {
                return Err((
                    "spot_affinity.namespace",
                    format!("namespace {} has two rules", a.namespace),
                ));
            }
        }
        let t = self.rightsize_min_monthly_savings;
        if !(t.is_finite() && (0.0..=10_000.0).contains(&t)) {
            return Err((
                "rightsize_min_monthly_savings",
                format!("must be between 0 and 10000 USD, got {t}"),
            ));
        }
        for m in &self.on_demand_minimums {
            if m.percent.is_none() && m.replicas.is_none() {
                return Err((
                    "on_demand_minimums",
                    "each rule needs `percent` or `replicas`".into(),
                ));
            }
            if let Some(p) = m.percent {
                if !(p.is_finite() && (0.0..=100.0).contains(&p)) {
                    return Err((
                        "on_demand_minimums.percent",
                        format!("must be between 0 and 100, got {p}"),
                    ));
                }
            }
        }
        Ok(())
    }

    /// The capacity a pod of `namespace` may use: its own node selector's requirement
    /// (`own`) when it has one, else its namespace's spot affinity.
    pub fn capacity_for(&self, namespace: &str, own: CapacityReq) -> CapacityReq {
        if own != CapacityReq::Any {
            return own;
        }
        match self
            .spot_affinity
            .iter()
            .find(|a| a.namespace == namespace)
            .map(|a| a.mode)
        {
            Some(SpotPreference::Force) => CapacityReq::Spot,
            Some(SpotPreference::Never) => CapacityReq::OnDemand,
            Some(SpotPreference::Prefer) | None => CapacityReq::Any,
        }
    }

    /// The zone-spread group of a pod under this policy: its own group when it has one,
    /// else, with [`ClusterPolicy::multi_az_spread`], its workload (`namespace/owner`).
    /// DaemonSet pods and pods without an owner are never grouped.
    pub fn spread_group(
        &self,
        namespace: &str,
        owner: Option<&str>,
        own: Option<&str>,
        daemonset: bool,
    ) -> Option<String> {
        if let Some(g) = own {
            return Some(g.to_string());
        }
        if !self.multi_az_spread || daemonset {
            return None;
        }
        owner
            .filter(|o| !o.is_empty())
            .map(|o| format!("{namespace}/{o}"))
    }

    pub fn rightsizing(&self) -> RightsizePolicy {
        RightsizePolicy {
            percentile: self.rightsize_percentile,
            headroom: self.rightsize_headroom,
            min_monthly_savings: self.rightsize_min_monthly_savings,
            ..RightsizePolicy::default()
        }
    }

    pub fn consolidation(&self) -> ConsolidationPolicy {
        ConsolidationPolicy {
            aggressiveness: self.aggressiveness,
            method: self.method,
            excluded_namespaces: self.excluded_namespaces.clone(),
            excluded_labels: self
                .excluded_labels
                .iter()
                .map(|l| (l.key.clone(), l.value.clone()))
                .collect(),
            stabilization_window_secs: self.stabilization_window_secs.max(0),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
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

    #[test]
    fn the_actors_json_shape_still_parses() {
        // A policy as the actors crate stores it today (no planner fields).
        let s = r#"{"aggressiveness":"aggressive","method":"delete_empty","excluded_namespaces":["kube-system"],
            "stabilization_window_secs":300,"dry_run":true,"maintenance_mode":false,
            "rightsize_percentile":"p99","rightsize_headroom":0.3}"#;
        let p = ClusterPolicy::from_json(s).expect("parses");
        assert_eq!(p.aggressiveness, Aggressiveness::Aggressive);
        assert_eq!(p.disruption_budget, DisruptionBudget::default());
        assert_eq!(p.validate(), Ok(()));
    }

    #[test]
    fn spot_affinity_sets_capacity_unless_the_pod_has_its_own() {
        let p = ClusterPolicy {
            spot_affinity: vec![
                SpotAffinity {
                    namespace: "ci".into(),
                    mode: SpotPreference::Force,
                },
                SpotAffinity {
                    namespace: "payments".into(),
                    mode: SpotPreference::Never,
                },
                SpotAffinity {
                    namespace: "web".into(),
                    mode: SpotPreference::Prefer,
                },
            ],
            ..ClusterPolicy::default()
        };
        assert_eq!(p.validate(), Ok(()));
        assert_eq!(p.capacity_for("ci", CapacityReq::Any), CapacityReq::Spot);
        assert_eq!(
            p.capacity_for("payments", CapacityReq::Any),
            CapacityReq::OnDemand
        );
        assert_eq!(p.capacity_for("web", CapacityReq::Any), CapacityReq::Any);
        assert_eq!(p.capacity_for("other", CapacityReq::Any), CapacityReq::Any);
        assert_eq!(
            p.capacity_for("ci", CapacityReq::OnDemand),
            CapacityReq::OnDemand
        );
        let mut dup = p.clone();
        dup.spot_affinity[1].namespace = "ci".into();
        assert_eq!(dup.validate().unwrap_err().0, "spot_affinity.namespace");
        let mut bad = p;
        bad.spot_affinity[0].namespace = "Not Valid".into();
        assert_eq!(bad.validate().unwrap_err().0, "spot_affinity.namespace");
    }

    #[test]
    fn excluded_labels_and_rightsizing_threshold_reach_the_engines() {
        let p = ClusterPolicy {
            excluded_labels: vec![LabelPair {
                key: "app".into(),
                value: "legacy-db".into(),
            }],
            rightsize_min_monthly_savings: 25.0,
            ..ClusterPolicy::default()
        };
        assert_eq!(
            p.consolidation().excluded_labels,
            vec![("app".to_string(), "legacy-db".to_string())]
        );
        assert_eq!(p.rightsizing().min_monthly_savings, 25.0);
        // The default keeps Karpenter's do-not-evict label.
        assert_eq!(
            ClusterPolicy::default().consolidation().excluded_labels,
            ConsolidationPolicy::default().excluded_labels
        );
        let bad = ClusterPolicy {
            rightsize_min_monthly_savings: -1.0,
            ..ClusterPolicy::default()
        };
        assert_eq!(
            bad.validate().unwrap_err().0,
            "rightsize_min_monthly_savings"
        );
    }

    #[test]
    fn autoscaling_and_spread_default_and_parse() {
        let p = ClusterPolicy::default();
        assert!(p.autoscaling);
        assert!(!p.multi_az_spread);
        // An older stored policy (without the fields) keeps the defaults.
        let old = ClusterPolicy::from_json(r#"{"aggressiveness":"balanced"}"#).expect("parses");
        assert!(old.autoscaling && !old.multi_az_spread);
        let p = ClusterPolicy::from_json(
            r#"{"autoscaling":false,"multi_az_spread":true,"rightsize_mode":"auto"}"#,
        )
        .expect("parses");
        assert!(!p.autoscaling && p.multi_az_spread);
        assert_eq!(p.rightsize_mode, RightsizeMode::Auto);
        let err = ClusterPolicy::from_json(r#"{"autoscaling":"yes"}"#).unwrap_err();
        assert!(err.starts_with("autoscaling"), "{err}");
        let err = ClusterPolicy::from_json(r#"{"rightsize_mode":"always"}"#).unwrap_err();
        assert!(err.starts_with("rightsize_mode"), "{err}");
    }

    #[test]
    fn spread_groups_follow_the_workload_only_when_enforced() {
        let mut p = ClusterPolicy::default();
        assert_eq!(
            p.spread_group("web", Some("Deployment/api"), None, false),
            None
        );
        assert_eq!(
            p.spread_group("web", None, Some("zone-group"), false),
            Some("zone-group".into())
        );
        p.multi_az_spread = true;
        assert_eq!(
            p.spread_group("web", Some("Deployment/api"), None, false),
            Some("web/Deployment/api".into())
        );
        assert_eq!(p.spread_group("web", None, None, false), None);
        assert_eq!(
            p.spread_group("kube-system", Some("DaemonSet/cni"), None, true),
            None
        );
        assert_eq!(
            p.spread_group("web", Some("Deployment/api"), Some("own"), false),
            Some("own".into())
        );
    }

    #[test]
    fn budget_is_ten_percent_at_least_one() {
        let b = DisruptionBudget::default();
        assert_eq!(b.per_wave(0), 1);
        assert_eq!(b.per_wave(5), 1);
        assert_eq!(b.per_wave(10), 1);
        assert_eq!(b.per_wave(19), 1);
        assert_eq!(b.per_wave(20), 2);
        assert_eq!(b.per_wave(2000), 200);
        let b = DisruptionBudget {
            max_percent: 50.0,
            max_nodes: Some(3),
            max_waves: None,
        };
        assert_eq!(b.per_wave(100), 3);
    }

    #[test]
    fn on_demand_minimum_counts() {
        let m = OnDemandMinimum {
            namespace: Some("pay".into()),
            selector: BTreeMap::from([("app".to_string(), "api".to_string())]),
            percent: Some(30.0),
            replicas: Some(2),
        };
        assert_eq!(m.required(10), 3);
        assert_eq!(m.required(4), 2);
        assert_eq!(m.required(1), 1);
        assert_eq!(m.required(0), 0);
        let labels = BTreeMap::from([("app".to_string(), "api".to_string())]);
        assert!(m.matches("pay", &labels));
        assert!(!m.matches("web", &labels));
        assert!(!m.matches("pay", &BTreeMap::new()));
        let p = ClusterPolicy {
            on_demand_minimums: vec![OnDemandMinimum {
                namespace: None,
                selector: BTreeMap::new(),
                percent: None,
                replicas: None,
            }],
            ..ClusterPolicy::default()
        };
        assert_eq!(p.validate().unwrap_err().0, "on_demand_minimums");
    }
}
