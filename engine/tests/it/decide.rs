use std::collections::BTreeMap;

use spot_engine::catalog::{Lifecycle, PoolKey};
use spot_engine::consolidate::{ConsolidationPlan, NodeAction, NodeDecision, PodMove};
use spot_engine::decide::{decide, ActionKind, ActionPlan, DecisionInput, ACTION_PLAN_VERSION};
use spot_engine::rightsize::{Recommendation, RecommendationStatus};

fn drain(node: &str, to: &str, save: f64) -> NodeDecision {
    NodeDecision {
        node: node.into(),
        action: NodeAction::DrainAndDelete,
        utilization: 0.1,
        moves: vec![PodMove {
            pod: "default/a".into(),
            to: Some(to.into()),
        }],
        expected_monthly_savings: save,
        unmanaged: false,
        reason: "underutilized".into(),
    }
}

fn input() -> DecisionInput {
    DecisionInput {
        consolidation: Some(ConsolidationPlan {
            decisions: vec![
                drain("node-a", "node-b", 140.0),
                drain("node-c", "node-d", 70.0),
            ],
            total_monthly_spend: 560.0,
            expected_monthly_savings: 210.0,
            pdb_evictions: BTreeMap::new(),
        }),
        rightsizing: vec![
            Recommendation {
                workload: "default/Deployment/api".into(),
                status: RecommendationStatus::Increase,
                cpu_request_millis: 600,
                memory_request_mib: 1024,
                cpu_limit_millis: None,
                memory_limit_mib: 1200,
                monthly_savings: -12.0,
                reason: "under-provisioned".into(),
            },
            Recommendation {
                workload: "default/Deployment/batch".into(),
                status: RecommendationStatus::Skip,
                cpu_request_millis: 100,
                memory_request_mib: 100,
                cpu_limit_millis: None,
                memory_limit_mib: 100,
                monthly_savings: 0.0,
                reason: "below threshold".into(),
            },
        ],
        ..DecisionInput::default()
    }
}

#[test]
fn drain_onto_avoid_node_is_blocked_stability_beats_savings() {
    let mut i = input();
    i.node_risk.insert("node-b".into(), 0.85);
    let plan = decide(&i, 1_800_000_000);
    assert!(plan.actions.iter().all(|a| a.target != "node-a"));
    let b = plan
        .blocked
        .iter()
        .find(|b| b.action.target == "node-a")
        .expect("blocked");
    assert!(b.reason.contains("stability beats savings"), "{}", b.reason);
    assert!(plan.actions.iter().any(|a| a.target == "node-c"));
}

#[test]
fn stability_actions_come_first_and_skips_are_dropped() {
    let plan = decide(&input(), 0);
    assert_eq!(plan.actions[0].kind, ActionKind::RightsizeUp);
    assert_eq!(plan.actions[1].target, "node-a", "then largest saving");
    assert!(plan
        .actions
        .iter()
        .all(|a| a.target != "default/Deployment/batch"));
}

#[test]
fn maintenance_mode_blocks_everything() {
    let mut i = input();
    i.maintenance_mode = true;
    let plan = decide(&i, 0);
    assert!(plan.actions.is_empty());
    assert_eq!(plan.blocked.len(), 3);
    assert_eq!(plan.expected_monthly_savings, 0.0);
}

#[test]
fn replace_into_flagged_pool_is_blocked() {
    let mut i = input();
    if let Some(c) = i.consolidation.as_mut() {
        c.decisions.push(NodeDecision {
            node: "node-e".into(),
            action: NodeAction::Replace {
                instance_type: "c5.xlarge".into(),
                lifecycle: Lifecycle::Spot,
                az: "us-east-1a".into(),
                hourly_price: 0.06,
            },
            utilization: 0.3,
            moves: vec![],
            expected_monthly_savings: 90.0,
            unmanaged: false,
            reason: "replace".into(),
        });
    }
    i.risk_flags.insert(PoolKey::new("c5.xlarge", "us-east-1a"));
    let plan = decide(&i, 0);
    assert!(plan.blocked.iter().any(|b| b.action.target == "node-e"));
}

#[test]
fn plan_is_versioned_json_that_round_trips() {
    let plan = decide(&input(), 42);
    assert_eq!(plan.version, ACTION_PLAN_VERSION);
    let json = plan.to_json().expect("json");
    assert!(json.contains("\"version\": 1"));
    assert!(json.contains("\"kind\": \"drain_and_delete_node\""));
    let back = ActionPlan::from_json(&json).expect("parse");
    assert_eq!(back, plan);
}
