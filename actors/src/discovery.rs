//! WORK-DISC-01: one discovery pass over an account through the `Cloud` port, producing the
//! inventory snapshot that `spot_models::inventory::apply` diffs against the database.

use std::collections::{HashMap, HashSet};

use chrono::Duration;
use spot_cloud::{Cloud, CloudError, InstanceState, Lifecycle};
use spot_models::inventory::{
    ClusterRec, InstanceRec, InventorySnapshot, SnapshotRec, ViewFigures, VolumeRec,
};

pub const COMPONENT: &str = "WORK-DISC-01";

/// EBS list prices, us-east-1, USD per GB-month (AWS public pricing).
fn ebs_gb_month(volume_type: &str) -> f64 {
    match volume_type {
        "gp2" => 0.10,
        "io1" | "io2" => 0.125,
        "st1" => 0.045,
        "sc1" => 0.015,
        "standard" => 0.05,
        _ => 0.08, // gp3
    }
}

/// EBS snapshot storage, USD per GB-month.
pub const SNAPSHOT_GB_MONTH: f64 = 0.05;

fn json_tags(tags: &impl serde::Serialize) -> String {
    serde_json::to_string(tags).unwrap_or_else(|_| "{}".into())
}

fn lower<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_value(v)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}

/// The most recent spot price per (instance type, AZ) over the last 6 hours. Empty when
/// `types` is empty (an empty filter would mean "every type").
pub async fn latest_spot_prices(
    cloud: &dyn Cloud,
    types: &[String],
) -> Result<HashMap<(String, String), f64>, CloudError> {
    let mut latest: HashMap<(String, String), (chrono::DateTime<chrono::Utc>, f64)> =
        HashMap::new();
    if types.is_empty() {
        return Ok(HashMap::new());
    }
    for p in cloud
        .spot_price_history(types, &[], cloud.now() - Duration::hours(6))
        .await?
    {
        let key = (p.instance_type.clone(), p.az.to_string());
        if latest.get(&key).is_none_or(|(t, _)| p.timestamp >= *t) {
            latest.insert(key, (p.timestamp, p.usd_per_hour));
        }
    }
    Ok(latest
        .into_iter()
        .map(|(k, (_, price))| (k, price))
        .collect())
}

/// Reads everything discovery needs. `progress(phase, percent)` is called between phases.
pub async fn discover(
    cloud: &dyn Cloud,
    progress: &(dyn Fn(&str, i64) + Send + Sync),
) -> Result<InventorySnapshot, CloudError> {
    let now = cloud.now();
    progress("instances", 10);
    let instances: Vec<_> = cloud
        .describe_instances()
        .await?
        .into_iter()
        .filter(|i| i.state != InstanceState::Terminated)
        .collect();
    let types: Vec<String> = instances
        .iter()
        .map(|i| i.instance_type.clone())
        .collect::<HashSet<_>>()
        .into_iter()
        .collect();
    progress("prices", 25);
    let od: HashMap<String, f64> = if types.is_empty() {
        HashMap::new()
    } else {
        cloud
            .on_demand_prices(&types)
            .await?
            .into_iter()
            .map(|p| (p.instance_type, p.usd_per_hour))
            .collect()
    };
    let spot = latest_spot_prices(cloud, &types).await?;

    progress("clusters", 40);
    let mut clusters = Vec::new();
    for name in cloud.list_eks_clusters().await? {
        let c = cloud.describe_eks_cluster(&name).await?;
        let mut rec = ClusterRec {
            name: c.name.clone(),
            provider: "eks".into(),
            region: cloud.region().to_string(),
            version: Some(c.version.clone()),
            status: c.status.to_lowercase(),
            environment: ["environment", "env", "Environment"]
                .iter()
                .find_map(|k| c.tags.get(*k).cloned()),
            node_groups: serde_json::to_string(&c.node_groups).unwrap_or_else(|_| "[]".into()),
            tags: json_tags(&c.tags),
            node_count: 0,
            pod_count: 0,
            cpu_allocatable_m: 0,
            cpu_requested_m: 0,
            cpu_used_m: 0,
            mem_allocatable_mib: 0,
            mem_requested_mib: 0,
            mem_used_mib: 0,
        };
        // Nodes are the cluster's running instances until its agent reports (its view then
        // replaces every figure: see [`overlay_agent_views`]).
        rec.node_count = instances
            .iter()
            .filter(|i| i.cluster.as_deref() == Some(name.as_str()) && i.state.is_billed())
            .count() as i64;
        clusters.push(rec);
    }

    let instance_recs = instances
        .iter()
        .map(|i| {
            let on_demand = od.get(&i.instance_type).copied().unwrap_or(0.0);
            let hourly = match i.lifecycle {
                Lifecycle::Spot => spot
                    .get(&(i.instance_type.clone(), i.az.to_string()))
                    .copied()
                    .unwrap_or(on_demand),
                _ => on_demand,
            };
            let billed = i.state.is_billed();
            InstanceRec {
                instance_id: i.id.clone(),
                cluster_name: i.cluster.clone(),
                instance_type: i.instance_type.clone(),
                lifecycle: lower(&i.lifecycle).replace('_', "-"),
                state: lower(&i.state),
                az: i.az.to_string(),
                node_group: None,
                asg_name: i.asg_name.clone(),
                tags: json_tags(&i.tags),
                launch_time: Some(i.launch_time.timestamp_millis()),
                hourly_price: if billed { hourly } else { 0.0 },
                on_demand_hourly: if billed { on_demand } else { 0.0 },
            }
        })
        .collect();

    progress("volumes", 65);
    let volumes = cloud
        .describe_volumes()
        .await?
        .into_iter()
        .map(|v| {
            let vt = lower(&v.volume_type);
            VolumeRec {
                monthly_cost: f64::from(v.size_gib) * ebs_gb_month(&vt),
                volume_id: v.id,
                size_gib: i64::from(v.size_gib),
                volume_type: vt,
                state: lower(&v.state),
                attached_instance_id: v.attached_instance_id,
                last_attached_at: v.last_attached.map(|t| t.timestamp_millis()),
                created_at: Some(v.create_time.timestamp_millis()),
            }
        })
        .collect();
    progress("snapshots", 85);
    let snapshots = cloud
        .describe_snapshots()
        .await?
        .into_iter()
        .map(|s| SnapshotRec {
            monthly_cost: f64::from(s.size_gib) * SNAPSHOT_GB_MONTH,
            snapshot_id: s.id,
            volume_id: s.volume_id,
            source_ami: s.source_ami,
            started_at: Some(s.start_time.timestamp_millis()),
            size_gib: i64::from(s.size_gib),
        })
        .collect();
    Ok(InventorySnapshot {
        observed_at: now.timestamp_millis(),
        clusters,
        instances: instance_recs,
        volumes,
        snapshots,
    })
}

/// A cluster's figures from its agent's stored view: nodes, scheduled pods and their
/// requests, and (when the metrics API is present) the nodes' latest usage.
pub async fn view_figures(
    db: &spot_models::Db,
    org_id: &str,
    cluster_id: &str,
    view: &spot_models::agents::ClusterView,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<ViewFigures, spot_models::DbError> {
    let scheduled: Vec<_> = view
        .pods
        .iter()
        .filter(|p| {
            p.node_name.is_some()
                && matches!(
                    p.phase,
                    spot_agent_protocol::PodPhase::Running | spot_agent_protocol::PodPhase::Pending
                )
        })
        .collect();
    // Usage: the latest metrics-API reading of each node, when the agent has them.
    let from = now - chrono::Duration::minutes(10);
    let (mut cpu, mut mem, mut seen) = (0i64, 0i64, 0usize);
    for n in &view.nodes {
        let samples =
            spot_models::agents::node_usage(db, org_id, cluster_id, &n.name, from, now).await?;
        if let Some(s) = samples.last() {
            cpu += s.cpu_millis as i64;
            mem += s.memory_mib as i64;
            seen += 1;
        }
    }
    Ok(ViewFigures {
        node_count: view.nodes.len() as i64,
        pod_count: scheduled.len() as i64,
        cpu_allocatable_m: view
            .nodes
            .iter()
            .map(|n| n.allocatable.cpu_millis as i64)
            .sum(),
        mem_allocatable_mib: view
            .nodes
            .iter()
            .map(|n| n.allocatable.memory_mib as i64)
            .sum(),
        cpu_requested_m: scheduled.iter().map(|p| p.requests.cpu_millis as i64).sum(),
        mem_requested_mib: scheduled.iter().map(|p| p.requests.memory_mib as i64).sum(),
        used: (seen > 0).then_some((cpu, mem)),
    })
}

/// Makes the in-cluster agents' views the source of each cluster's nodes, pods, requests
/// and (when the metrics API is present) usage: for every cluster of the account whose
/// agent reported within [`AGENT_VIEW_FRESH_SECS`], the figures are the agent's, and
/// instances learn their node group from the agent's nodes. Clusters without a fresh
/// agent keep what the cloud shows (their running instances) and no pods.
/// Returns how many clusters were taken from an agent.
pub async fn overlay_agent_views(
    db: &spot_models::Db,
    org_id: &str,
    account_id: &str,
    snap: &mut InventorySnapshot,
) -> Result<usize, spot_models::DbError> {
    let ids: HashMap<String, String> =
        spot_models::inventory::list_clusters(db, org_id, Some(account_id))
            .await?
            .into_iter()
            .map(|c| (c.name, c.id))
            .collect();
    let now = chrono::Utc::now();
    let mut used = 0;
    let mut node_group_of: HashMap<String, String> = HashMap::new();
    for rec in snap.clusters.iter_mut() {
        let Some(id) = ids.get(&rec.name) else {
            continue;
        };
        let Some(view) = spot_models::agents::cluster_view(db, org_id, id).await? else {
            continue;
        };
        let fresh = view
            .last_heartbeat_at
            .is_some_and(|t| (now - t).num_seconds() < AGENT_VIEW_FRESH_SECS);
        if !fresh || view.nodes.is_empty() {
            continue;
        }
        used += 1;
        let f = view_figures(db, org_id, id, &view, now).await?;
        rec.node_count = f.node_count;
        rec.pod_count = f.pod_count;
        rec.cpu_allocatable_m = f.cpu_allocatable_m;
        rec.mem_allocatable_mib = f.mem_allocatable_mib;
        rec.cpu_requested_m = f.cpu_requested_m;
        rec.mem_requested_mib = f.mem_requested_mib;
        if let Some((cpu, mem)) = f.used {
            rec.cpu_used_m = cpu;
            rec.mem_used_mib = mem;
        }
        for n in &view.nodes {
            if let (Some(i), Some(g)) = (&n.instance_id, &n.node_group) {
                node_group_of.insert(i.clone(), g.clone());
            }
        }
    }
    for i in snap.instances.iter_mut() {
        if let Some(g) = node_group_of.get(&i.instance_id) {
            i.node_group = Some(g.clone());
        }
    }
    Ok(used)
}

/// Called when an agent's snapshot has been stored: the cluster's figures follow the view
/// at once (not at the next discovery), and the hours of `history` before the cluster's
/// first recorded point fill its dashboards' history (prices and capacity at their current
/// values, as nothing else is known of the past). Returns the history points written.
pub async fn refresh_from_agent(
    db: &spot_models::Db,
    org_id: &str,
    cluster_id: &str,
    history: &[spot_agent_protocol::HistoryPoint],
) -> Result<usize, spot_models::DbError> {
    use spot_models::inventory;
    let Some(view) = spot_models::agents::cluster_view(db, org_id, cluster_id).await? else {
        return Ok(0);
    };
    let f = view_figures(db, org_id, cluster_id, &view, chrono::Utc::now()).await?;
    inventory::set_cluster_figures(db, cluster_id, &f).await?;
    if history.is_empty() {
        return Ok(0);
    }
    let Some(c) = inventory::cluster(db, org_id, cluster_id).await? else {
        return Ok(0);
    };
    let before = inventory::first_metric_ts(db, cluster_id)
        .await?
        .map_or(i64::MAX, |t| {
            t.div_euclid(inventory::HOUR_MS) * inventory::HOUR_MS
        });
    let points: Vec<_> = history
        .iter()
        .map(|h| h.hour.timestamp_millis().div_euclid(inventory::HOUR_MS) * inventory::HOUR_MS)
        .zip(history)
        .filter(|(ts, _)| *ts < before)
        .map(|(ts, h)| inventory::MetricPoint {
            cluster_name: c.name.clone(),
            cluster_id: String::new(),
            ts,
            node_count: f.node_count,
            spot_node_count: c.spot_count,
            pod_count: f.pod_count,
            cpu_allocatable_m: f.cpu_allocatable_m,
            cpu_requested_m: f.cpu_requested_m,
            cpu_used_m: i64::try_from(h.cpu_millis).unwrap_or(i64::MAX),
            mem_allocatable_mib: f.mem_allocatable_mib,
            mem_requested_mib: f.mem_requested_mib,
            mem_used_mib: i64::try_from(h.memory_mib).unwrap_or(i64::MAX),
            hourly_cost: c.hourly_cost,
            on_demand_hourly_cost: c.on_demand_hourly,
        })
        .collect();
    inventory::insert_metrics(db, org_id, &c.account_id, &points).await
}

/// An agent view younger than this (last heartbeat) feeds discovery.
pub const AGENT_VIEW_FRESH_SECS: i64 = 300;
