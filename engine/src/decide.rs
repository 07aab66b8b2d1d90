//! CORE-DECIDE: merge module recommendations into one versioned action plan.
//!
//! Conflict resolution is "stability beats savings":
//! 1. Maintenance mode pauses everything: every action is listed as blocked.
//! 2. No action may move pods onto, or buy capacity in, a pool whose interruption
//!    probability is AVOID (> 0.5) or that the global risk tracker flags: the bin
//!    packer's saving is blocked (the CORE-DECIDE example: do not delete node A if its
//!    pods would land on high-risk node B).
//! 3. One action per target; a stability action (raising requests) wins over a saving.
//!
//! Actions are ordered stability first, then by savings (largest first), then target.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::catalog::{monthly, Lifecycle, PoolKey, AVOID_THRESHOLD};
use crate::consolidate::{ConsolidationPlan, NodeAction};
use crate::rightsize::{Recommendation, RecommendationStatus};
use crate::spot::Choice;

/// Schema version of [`ActionPlan`]; bump on any breaking change of its JSON.
pub const ACTION_PLAN_VERSION: u32 = 1;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ActionKind {
    /// Raise a workload's requests (under-provisioned): stability.
    RightsizeUp,
    DeleteEmptyNode,
    DrainAndDeleteNode,
    ReplaceNode,
    /// Replace an on-demand node with spot capacity.
    MoveToSpot,
    /// Lower a workload's requests.
    RightsizeDown,
}

impl ActionKind {
    fn is_stability(self) -> bool {
        matches!(self, ActionKind::RightsizeUp)
    }
}

/// Where new capacity comes from, for actions that buy some.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Destination {
    pub instance_type: String,
    pub lifecycle: Lifecycle,
    pub az: String,
    pub hourly_price: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Action {
    pub kind: ActionKind,
    /// Node name or workload (`namespace/Kind/name`).
    pub target: String,
    pub reason: String,
    /// USD per month; negative for actions that cost money (stability).
    pub expected_monthly_savings: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub destination: Option<Destination>,
    /// Nodes receiving evicted pods (drains).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub receivers: Vec<String>,
    /// Further nodes a replacement launches (its pods need more than one new node); the
    /// executor launches them with `destination`, before any pod is evicted.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub extra_destinations: Vec<Destination>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BlockedAction {
    pub action: Action,
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ActionPlan {
    pub version: u32,
    /// Seconds since the Unix epoch (passed in).
    pub generated_at: i64,
    pub actions: Vec<Action>,
    pub blocked: Vec<BlockedAction>,
    pub expected_monthly_savings: f64,
}

impl ActionPlan {
    pub fn to_json(&self) -> serde_json::Result<String> {
        serde_json::to_string_pretty(self)
    }

    pub fn from_json(s: &str) -> serde_json::Result<Self> {
        serde_json::from_str(s)
    }
}

/// Proposal to move an on-demand node to spot (from [`crate::spot::select`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SpotMove {
    pub node: String,
    pub current_hourly: f64,
    pub choice: Choice,
}

/// Everything the decision engine weighs.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DecisionInput {
    pub consolidation: Option<ConsolidationPlan>,
    pub rightsizing: Vec<Recommendation>,
    pub spot_moves: Vec<SpotMove>,
    /// Fresh interruption probability per running node (from the risk model).
    pub node_risk: BTreeMap<String, f64>,
    /// Fresh interruption probability per pool.
    pub pool_risk: BTreeMap<PoolKey, f64>,
    /// Pools flagged by the global risk tracker.
    pub risk_flags: BTreeSet<PoolKey>,
    /// Cluster maintenance mode: pause all automated actions.
    pub maintenance_mode: bool,
}

fn destination_risk(input: &DecisionInput, d: &Destination) -> Option<String> {
    if d.lifecycle != Lifecycle::Spot {
        return None;
    }
    let key = PoolKey::new(&d.instance_type, &d.az);
    if input.risk_flags.contains(&key) {
        return Some(format!(
            "destination pool {key} is flagged by the global risk tracker"
        ));
    }
    match input.pool_risk.get(&key) {
        Some(&p) if p > AVOID_THRESHOLD => Some(format!(
            "destination pool {key} is AVOID (interruption risk {:.0}% > 50%)",
            p * 100.0
        )),
        _ => None,
    }
}

/// Builds the action plan at time `now`.
pub fn decide(input: &DecisionInput, now: i64) -> ActionPlan {
    let mut proposed: Vec<Action> = Vec::new();
    if let Some(plan) = &input.consolidation {
        for d in &plan.decisions {
            let (kind, destination) = match &d.action {
                NodeAction::Keep => continue,
                NodeAction::DeleteEmpty => (ActionKind::DeleteEmptyNode, None),
                NodeAction::DrainAndDelete => (ActionKind::DrainAndDeleteNode, None),
                NodeAction::Replace {
                    instance_type,
                    lifecycle,
                    az,
                    hourly_price,
                } => (
                    ActionKind::ReplaceNode,
                    Some(Destination {
                        instance_type: instance_type.clone(),
                        lifecycle: *lifecycle,
                        az: az.clone(),
                        hourly_price: *hourly_price,
                    }),
                ),
            };
            let mut receivers: Vec<String> = d.moves.iter().filter_map(|m| m.to.clone()).collect();
            receivers.sort();
            receivers.dedup();
            proposed.push(Action {
                kind,
                target: d.node.clone(),
                reason: d.reason.clone(),
                expected_monthly_savings: d.expected_monthly_savings,
                destination,
                receivers,
                extra_destinations: Vec::new(),
            });
        }
    }
    for r in &input.rightsizing {
        let kind = match r.status {
            RecommendationStatus::Skip => continue,
            RecommendationStatus::Recommend => ActionKind::RightsizeDown,
            RecommendationStatus::Increase => ActionKind::RightsizeUp,
        };
        proposed.push(Action {
            kind,
            target: r.workload.clone(),
            reason: r.reason.clone(),
            expected_monthly_savings: r.monthly_savings,
            destination: None,
            receivers: Vec::new(),
            extra_destinations: Vec::new(),
        });
    }
    for m in &input.spot_moves {
        let c = &m.choice;
        proposed.push(Action {
            kind: ActionKind::MoveToSpot,
            target: m.node.clone(),
            reason: format!("on-demand → spot: {}", c.reason),
            expected_monthly_savings: monthly(m.current_hourly - c.hourly_price),
            destination: Some(Destination {
                instance_type: c.instance_type.clone(),
                lifecycle: c.lifecycle,
                az: c.az.clone(),
                hourly_price: c.hourly_price,
            }),
            receivers: Vec::new(),
            extra_destinations: Vec::new(),
        });
    }

    let mut actions = Vec::new();
    let mut blocked = Vec::new();
    if input.maintenance_mode {
        for a in proposed {
            blocked.push(BlockedAction {
                action: a,
                reason: "maintenance mode: automated actions are paused".into(),
            });
        }
    } else {
        // Stability first, then biggest saving, then target for determinism.
        proposed.sort_by(|a, b| {
            b.kind
                .is_stability()
                .cmp(&a.kind.is_stability())
                .then(
                    b.expected_monthly_savings
                        .total_cmp(&a.expected_monthly_savings),
                )
                .then_with(|| a.target.cmp(&b.target))
                .then(a.kind.cmp(&b.kind))
        });
        let mut taken: BTreeSet<String> = BTreeSet::new();
        for a in proposed {
            let risky_receiver = a.receivers.iter().find_map(|r| {
                input
                    .node_risk
                    .get(r)
                    .filter(|&&p| p > AVOID_THRESHOLD)
                    .map(|p| {
                        format!(
                            "receiver node {r} is AVOID (interruption risk {:.0}%)",
                            p * 100.0
                        )
                    })
            });
            let risky_dest = a
                .destination
                .as_ref()
                .and_then(|d| destination_risk(input, d));
            let why = if let Some(w) = risky_receiver.or(risky_dest) {
                Some(format!("stability beats savings: {w}"))
            } else if taken.contains(&a.target) {
                Some(format!("another action on {} takes precedence", a.target))
            } else {
                None
            };
            match why {
                Some(reason) => blocked.push(BlockedAction { action: a, reason }),
                None => {
                    taken.insert(a.target.clone());
                    actions.push(a);
                }
            }
        }
    }
    ActionPlan {
        version: ACTION_PLAN_VERSION,
        generated_at: now,
        expected_monthly_savings: actions.iter().map(|a| a.expected_monthly_savings).sum(),
        actions,
        blocked,
    }
}
