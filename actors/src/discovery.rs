//! WORK-DISC-01: one discovery pass over an account through the `Cloud` port, producing the
//! inventory snapshot that `spot_models::inventory::apply` diffs against the database.

use std::collections::{HashMap, HashSet};

use chrono::Duration;
use spot_cloud::{Cloud, CloudError, InstanceState, Lifecycle};
use spot_models::inventory::{ClusterRec, InstanceRec, InventorySnapshot, SnapshotRec, VolumeRec};

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
    let mut node_group_of: HashMap<String, String> = HashMap::new();
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
        match cloud.pod_inventory(&name).await {
            Ok(inv) => {
                rec.node_count = inv.nodes.len() as i64;
                for n in &inv.nodes {
                    rec.cpu_allocatable_m += i64::from(n.allocatable_cpu_millicores);
                    rec.mem_allocatable_mib += i64::from(n.allocatable_memory_mib);
                    if let Some(g) = &n.node_group {
                        node_group_of.insert(n.instance_id.clone(), g.clone());
                    }
                }
                let scheduled: Vec<_> = inv.pods.iter().filter(|p| p.node_name.is_some()).collect();
                rec.pod_count = scheduled.len() as i64;
                for p in &scheduled {
                    rec.cpu_requested_m += i64::from(p.cpu_request_millicores);
                    rec.mem_requested_mib += i64::from(p.memory_request_mib);
                    let pref = spot_cloud::PodRef {
                        namespace: p.namespace.clone(),
                        name: p.name.clone(),
                    };
                    if let Ok(samples) = cloud
                        .pod_usage(
                            &name,
                            &pref,
                            now - Duration::minutes(10),
                            now,
                            std::time::Duration::from_secs(300),
                        )
                        .await
                    {
                        if let Some(s) = samples.last() {
                            rec.cpu_used_m += i64::from(s.cpu_millicores);
                            rec.mem_used_mib += i64::from(s.memory_mib);
                        }
                    }
                }
            }
            // Without an in-cluster agent (AWS), node counts come from the instances below.
            Err(CloudError::Unsupported(_)) => {
                rec.node_count = instances
                    .iter()
                    .filter(|i| i.cluster.as_deref() == Some(name.as_str()))
                    .count() as i64;
            }
            Err(e) => return Err(e),
        }
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
                node_group: node_group_of.get(&i.id).cloned(),
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

/// Hourly usage history for the dashboards, read once when an account is first linked: the
/// cluster's pods' past usage from the cloud (the simulator or, in production, the agent's
/// metrics), with capacity, requests and prices at their current values. Providers without
/// usage history (`Unsupported`) yield nothing and the charts fill from live discoveries.
pub async fn backfill(
    cloud: &dyn Cloud,
    snap: &InventorySnapshot,
    days: i64,
) -> Result<Vec<spot_models::inventory::MetricPoint>, CloudError> {
    let now = cloud.now();
    let end = now;
    let start = end - Duration::days(days);
    let mut out = Vec::new();
    for c in &snap.clusters {
        let inv = match cloud.pod_inventory(&c.name).await {
            Ok(inv) => inv,
            Err(CloudError::Unsupported(_)) => return Ok(Vec::new()),
            Err(e) => return Err(e),
        };
        let mut cpu: HashMap<i64, i64> = HashMap::new();
        let mut mem: HashMap<i64, i64> = HashMap::new();
        for p in inv.pods.iter().filter(|p| p.node_name.is_some()) {
            let pref = spot_cloud::PodRef {
                namespace: p.namespace.clone(),
                name: p.name.clone(),
            };
            for s in cloud
                .pod_usage(
                    &c.name,
                    &pref,
                    start,
                    end,
                    std::time::Duration::from_secs(3600),
                )
                .await?
            {
                let hour = s.at.timestamp_millis() / 3_600_000 * 3_600_000;
                *cpu.entry(hour).or_default() += i64::from(s.cpu_millicores);
                *mem.entry(hour).or_default() += i64::from(s.memory_mib);
            }
        }
        let members: Vec<_> = snap
            .instances
            .iter()
            .filter(|i| i.cluster_name.as_deref() == Some(&c.name) && i.state == "running")
            .collect();
        let cost: f64 = members.iter().map(|i| i.hourly_price).sum();
        let od: f64 = members.iter().map(|i| i.on_demand_hourly).sum();
        let spot = members.iter().filter(|i| i.lifecycle == "spot").count() as i64;
        let mut hours: Vec<_> = cpu.keys().copied().collect();
        hours.sort_unstable();
        for h in hours {
            out.push(spot_models::inventory::MetricPoint {
                cluster_name: c.name.clone(),
                cluster_id: String::new(),
                ts: h,
                node_count: members.len() as i64,
                spot_node_count: spot,
                pod_count: c.pod_count,
                cpu_allocatable_m: c.cpu_allocatable_m,
                cpu_requested_m: c.cpu_requested_m,
                cpu_used_m: cpu.get(&h).copied().unwrap_or(0),
                mem_allocatable_mib: c.mem_allocatable_mib,
                mem_requested_mib: c.mem_requested_mib,
                mem_used_mib: mem.get(&h).copied().unwrap_or(0),
                hourly_cost: cost,
                on_demand_hourly_cost: od,
            });
        }
    }
    Ok(out)
}

/// Makes the in-cluster agents' views the source of each cluster's nodes, pods, requests
/// and (when the metrics API is present) usage: for every cluster of the account whose
/// agent reported within [`AGENT_VIEW_FRESH_SECS`], the figures from the cloud are
/// replaced by the agent's, and instances learn their node group from the agent's nodes.
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
        rec.node_count = view.nodes.len() as i64;
        rec.cpu_allocatable_m = view
            .nodes
            .iter()
            .map(|n| n.allocatable.cpu_millis as i64)
            .sum();
        rec.mem_allocatable_mib = view
            .nodes
            .iter()
            .map(|n| n.allocatable.memory_mib as i64)
            .sum();
        for n in &view.nodes {
            if let (Some(i), Some(g)) = (&n.instance_id, &n.node_group) {
                node_group_of.insert(i.clone(), g.clone());
            }
        }
        let scheduled: Vec<_> = view
            .pods
            .iter()
            .filter(|p| {
                p.node_name.is_some()
                    && matches!(
                        p.phase,
                        spot_agent_protocol::PodPhase::Running
                            | spot_agent_protocol::PodPhase::Pending
                    )
            })
            .collect();
        rec.pod_count = scheduled.len() as i64;
        rec.cpu_requested_m = scheduled.iter().map(|p| p.requests.cpu_millis as i64).sum();
        rec.mem_requested_mib = scheduled.iter().map(|p| p.requests.memory_mib as i64).sum();
        // Usage: the latest metrics-API reading of each node, when the agent has them.
        let from = now - chrono::Duration::minutes(10);
        let (mut cpu, mut mem, mut seen) = (0i64, 0i64, 0usize);
        for n in &view.nodes {
            let samples =
                spot_models::agents::node_usage(db, org_id, id, &n.name, from, now).await?;
            if let Some(s) = samples.last() {
                cpu += s.cpu_millis as i64;
                mem += s.memory_mib as i64;
                seen += 1;
            }
        }
        if seen > 0 {
            rec.cpu_used_m = cpu;
            rec.mem_used_mib = mem;
        }
    }
    for i in snap.instances.iter_mut() {
        if let Some(g) = node_group_of.get(&i.instance_id) {
            i.node_group = Some(g.clone());
        }
    }
    Ok(used)
}

/// An agent view younger than this (last heartbeat) feeds discovery.
pub const AGENT_VIEW_FRESH_SECS: i64 = 300;
