//! Event-driven decisions of a cluster actor (the seeds' "< 1 second" reaction): pending
//! pods or an interruption notice produce a launch decision from the cached market, without
//! waiting for the next discovery cycle. Pure over the market snapshot.

use std::collections::BTreeSet;

use serde::Serialize;
use spot_engine::catalog::{Lifecycle, NodeOverhead, PoolKey};
use spot_engine::pack::{self, PackOptions, Pod};
use spot_engine::spot::{self, NodeTemplate, Requirements};

use crate::market::Market;

/// One node to launch.
#[derive(Debug, Clone, Serialize)]
pub struct NodeToLaunch {
    pub instance_type: String,
    pub lifecycle: Lifecycle,
    pub az: String,
    pub hourly_price: f64,
    /// Pods (ids) it is for.
    pub pods: Vec<String>,
}

/// What the cluster actor decided in reaction to an event.
#[derive(Debug, Clone, Serialize)]
pub struct LaunchDecision {
    pub cluster: String,
    /// `pending_pods` or `interruption:<instance id>`.
    pub trigger: String,
    pub nodes: Vec<NodeToLaunch>,
    pub hourly_cost: f64,
    /// LP lower bound of the packing (pending pods only).
    pub lower_bound_hourly: Option<f64>,
    /// Risk model the market was scored with.
    pub model: String,
    /// Time spent deciding, microseconds.
    pub decided_in_us: u64,
}

/// Packs pending pods onto the cheapest set of new nodes the template allows (flagged and
/// AVOID pools excluded).
pub fn pending_pods(
    market: &Market,
    template: &NodeTemplate,
    cluster: &str,
    pods: &[Pod],
) -> Result<LaunchDecision, String> {
    let started = std::time::Instant::now();
    let offers = spot::offers_for_template(
        &market.catalog,
        template,
        &market.risk_flags,
        &NodeOverhead::default(),
    );
    let opts = PackOptions {
        max_colgen_iterations: 20,
        ..PackOptions::default()
    };
    let plan = pack::pack(pods, &offers, &opts).map_err(|e| e.to_string())?;
    Ok(LaunchDecision {
        cluster: cluster.to_string(),
        trigger: "pending_pods".into(),
        hourly_cost: plan.cost_hourly,
        lower_bound_hourly: Some(plan.lower_bound_hourly),
        nodes: plan
            .nodes
            .into_iter()
            .map(|n| NodeToLaunch {
                instance_type: n.instance_type,
                lifecycle: n.lifecycle,
                az: n.az,
                hourly_price: n.hourly_price,
                pods: n.pods,
            })
            .collect(),
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
    let it = market
        .catalog
        .types()
        .iter()
        .find(|t| t.name == instance_type)
        .ok_or_else(|| format!("{instance_type} is not in the catalog"))?;
    let mut flags: BTreeSet<PoolKey> = market.risk_flags.clone();
    flags.insert(PoolKey::new(instance_type, az));
    let req = Requirements {
        cpu_millis: u64::from(it.vcpu) * 1000,
        memory_mib: it.memory_mib,
        gpus: it.gpus,
        arch: Some(it.arch),
        stateful: false,
    };
    let sel = spot::select(&market.catalog, template, &req, &flags).map_err(|e| e.to_string())?;
    let c = sel
        .choices
        .into_iter()
        .next()
        .ok_or("no replacement capacity is allowed by the template")?;
    Ok(LaunchDecision {
        cluster: cluster.to_string(),
        trigger: format!("interruption:{instance_id}"),
        hourly_cost: c.hourly_price,
        lower_bound_hourly: None,
        nodes: vec![NodeToLaunch {
            instance_type: c.instance_type,
            lifecycle: c.lifecycle,
            az: c.az,
            hourly_price: c.hourly_price,
            pods: Vec::new(),
        }],
        model: market.model.clone(),
        decided_in_us: started.elapsed().as_micros() as u64,
    })
}
