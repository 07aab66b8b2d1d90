//! Event-driven decisions of a cluster actor (the seeds' "< 1 second" reaction): pending
//! pods or an interruption notice produce a launch decision from the cached market, without
//! waiting for the next discovery cycle. The deciding is the engine's
//! ([`spot_engine::react`], through the one planner); this adds the actor's context.

use serde::Serialize;
use spot_engine::pack::Pod;
use spot_engine::spot::NodeTemplate;

pub use spot_engine::react::NodeToLaunch;

use crate::market::Market;

/// What the cluster actor decided in reaction to an event.
#[derive(Debug, Clone, Serialize)]
pub struct LaunchDecision {
    pub cluster: String,
    /// `pending_pods` or `interruption:<instance id>`.
    pub trigger: String,
    pub nodes: Vec<NodeToLaunch>,
    pub hourly_cost: f64,
    /// Risk-weighted cost the planner minimised (pending pods only; = `hourly_cost` when
    /// the risk premium is 0).
    pub objective_hourly: Option<f64>,
    /// LP lower bound of that objective (pending pods only).
    pub lower_bound_hourly: Option<f64>,
    /// Pending pods no allowed offer can host, with the planner's reason.
    pub unschedulable: Vec<(String, String)>,
    /// Risk model the market was scored with.
    pub model: String,
    /// Time spent deciding, microseconds.
    pub decided_in_us: u64,
}

fn engine_market(market: &Market) -> spot_engine::plan::Market {
    spot_engine::plan::Market {
        catalog: market.catalog.clone(),
        risk_flags: market.risk_flags.clone(),
        max_pods: Default::default(),
        overhead: Default::default(),
    }
}

/// Plans the cheapest set of new nodes for pending pods (flagged and AVOID pools
/// excluded, prices weighed by risk) with the planner.
/// With `autoscaling` off (the cluster policy's master toggle) nothing is launched: the
/// decision lists every pod as unschedulable, with the reason.
pub fn pending_pods(
    market: &Market,
    template: &NodeTemplate,
    autoscaling: bool,
    cluster: &str,
    pods: &[Pod],
    now: i64,
) -> Result<LaunchDecision, String> {
    let started = std::time::Instant::now();
    let l = spot_engine::react::pending_pods_with(
        &engine_market(market),
        template,
        autoscaling,
        pods,
        now,
    )
    .map_err(|e| e.to_string())?;
    Ok(LaunchDecision {
        cluster: cluster.to_string(),
        trigger: "pending_pods".into(),
        nodes: l.nodes,
        hourly_cost: l.hourly_cost,
        objective_hourly: Some(l.objective_hourly),
        lower_bound_hourly: l.lower_bound_hourly,
        unschedulable: l.unschedulable,
        model: market.model.clone(),
        decided_in_us: started.elapsed().as_micros() as u64,
    })
}

/// Chooses the replacement of an interrupted node: same capacity, never the interrupted
/// pool, falling back per the template (other AZ, other family, on-demand).
pub fn interruption(
    market: &Market,
    template: &NodeTemplate,
    cluster: &str,
    instance_id: &str,
    instance_type: &str,
    az: &str,
) -> Result<LaunchDecision, String> {
    let started = std::time::Instant::now();
    let n = spot_engine::react::interruption(&engine_market(market), template, instance_type, az)
        .map_err(|e| e.to_string())?;
    Ok(LaunchDecision {
        cluster: cluster.to_string(),
        trigger: format!("interruption:{instance_id}"),
        hourly_cost: n.hourly_price,
        objective_hourly: None,
        lower_bound_hourly: None,
        nodes: vec![n],
        unschedulable: Vec::new(),
        model: market.model.clone(),
        decided_in_us: started.elapsed().as_micros() as u64,
    })
}
