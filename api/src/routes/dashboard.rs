//! The observability dashboard's numbers, computed from stored inventory and metrics history.

use std::collections::BTreeMap;

use chrono::{Datelike, Timelike};
use poem::web::Data;
use poem_openapi::param::Query;
use poem_openapi::payload::Json;
use poem_openapi::{Object, OpenApi};
use spot_engine::catalog::HOURS_PER_MONTH;
use spot_engine::fleet;
use spot_models::inventory::{self, ClusterView, InstanceView, MetricPoint};

use super::inventory::usage;
use super::{ts, ApiTags};
use crate::auth::BearerAuth;
use crate::error::ApiError;
use crate::state::AppState;

pub struct DashboardApi;

#[derive(Object)]
pub struct Kpis {
    /// Σ current hourly price of running instances × 730 + EBS volumes and snapshots.
    pub monthly_spend: f64,
    pub monthly_compute: f64,
    pub monthly_storage: f64,
    /// Potential savings = spot + packing + idle storage (each below).
    pub potential_savings: f64,
    /// On-demand cluster nodes priced at the organization's observed median spot/on-demand
    /// ratio: Σ on-demand price × (1 − ratio) × 730. Zero until a spot price is observed.
    pub potential_spot_savings: f64,
    /// Σ cluster cost × max(0, 1 − requested/allocatable − 15% headroom) × 730.
    pub potential_packing_savings: f64,
    /// Unattached volumes + snapshots of deleted volumes, monthly.
    pub idle_storage: f64,
    /// Running spot cluster nodes ÷ running cluster nodes.
    pub spot_share: f64,
    /// Node-weighted mean of cluster efficiency scores (see `GET /api/clusters`).
    pub efficiency_score: Option<f64>,
    pub efficiency_grade: Option<String>,
    pub clusters: i64,
    pub nodes: i64,
    pub running_instances: i64,
}

#[derive(Object)]
pub struct SavingsPoint {
    pub at: chrono::DateTime<chrono::Utc>,
    /// What the fleet would cost at on-demand prices, per hour.
    pub on_demand_baseline_hourly: f64,
    pub actual_hourly: f64,
    /// (baseline − actual) ÷ baseline × 100.
    pub savings_percent: f64,
}

#[derive(Object)]
pub struct SavingsSeries {
    pub points: Vec<SavingsPoint>,
}

#[derive(Object)]
pub struct GapPoint {
    pub at: chrono::DateTime<chrono::Utc>,
    pub cpu_capacity_millicores: i64,
    pub cpu_requested_millicores: i64,
    pub cpu_used_millicores: i64,
    pub memory_capacity_mib: i64,
    pub memory_requested_mib: i64,
    pub memory_used_mib: i64,
}

#[derive(Object)]
pub struct ResourceGap {
    pub points: Vec<GapPoint>,
    /// Monthly cost of capacity neither requested nor kept as headroom (packing waste).
    pub bin_packing_waste_monthly: f64,
}

#[derive(Object)]
pub struct FleetSlice {
    /// `spot` or `on-demand`.
    pub lifecycle: String,
    /// Instance family, e.g. `m5`.
    pub family: String,
    pub instances: i64,
    pub monthly_cost: f64,
}

#[derive(Object)]
pub struct FleetComposition {
    pub slices: Vec<FleetSlice>,
}

#[derive(Object)]
pub struct HeatCell {
    /// 0 = Monday … 6 = Sunday (UTC).
    pub weekday: i64,
    /// 0–23 (UTC).
    pub hour: i64,
    /// Mean CPU used ÷ allocatable in this hour of the week.
    pub utilization: f64,
    /// Mean fleet cost during this hour.
    pub hourly_cost: f64,
    /// Utilization below 15%.
    pub idle: bool,
}

#[derive(Object)]
pub struct Heatmap {
    /// 168 cells, Monday 00:00 first; cells without data are omitted.
    pub cells: Vec<HeatCell>,
    /// Σ hourly cost of idle cells × 52/12 weeks: what sleeping through idle hours saves.
    pub hibernation_savings_monthly: f64,
    pub idle_hours_per_week: i64,
}

#[derive(Object)]
pub struct StabilityComponent {
    pub name: String,
    /// 0–100.
    pub score: f64,
    pub detail: String,
}

#[derive(Object)]
pub struct Stability {
    /// Mean of the components, 0–100 (the UI warns below 80).
    pub index: f64,
    pub components: Vec<StabilityComponent>,
}

fn median(mut v: Vec<f64>) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    v.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
    Some(v[v.len() / 2])
}

/// Bin-packing waste of the clusters, monthly (the engine's formula).
fn packing_waste_monthly(clusters: &[ClusterView]) -> f64 {
    let usages: Vec<fleet::Usage> = clusters.iter().map(usage).collect();
    fleet::packing_waste_monthly(&usages)
}

fn running(i: &InstanceView) -> bool {
    i.state == "running" || i.state == "pending"
}

async fn load(
    state: &AppState,
    org: &str,
    account: Option<&str>,
) -> Result<(Vec<ClusterView>, Vec<InstanceView>), ApiError> {
    Ok((
        inventory::list_clusters(&state.db, org, account).await?,
        inventory::live_instances(&state.db, org, account).await?,
    ))
}

fn window_start(days: Option<i64>, default: i64) -> Result<i64, ApiError> {
    let d = days.unwrap_or(default);
    if !(1..=90).contains(&d) {
        return Err(ApiError::field("days", "days must be between 1 and 90"));
    }
    Ok(chrono::Utc::now().timestamp_millis() - d * 86_400_000)
}

/// Sums cluster points per hour. Accounts are discovered at different moments, so points
/// are bucketed by the hour they fall in, and within an hour each cluster counts once (its
/// latest point): the series never shows a partial fleet or double counts a cluster that
/// was discovered twice in the hour. The bucket is stamped with the hour's start.
pub(crate) fn by_time(points: &[MetricPoint]) -> BTreeMap<i64, MetricPoint> {
    let latest = spot_models::inventory::latest_per_hour(points);
    let mut out: BTreeMap<i64, MetricPoint> = BTreeMap::new();
    for (hour, clusters) in latest {
        let e = out.entry(hour).or_insert_with(|| MetricPoint {
            cluster_name: String::new(),
            cluster_id: String::new(),
            ts: hour,
            ..zero()
        });
        for p in clusters.values() {
            e.node_count += p.node_count;
            e.spot_node_count += p.spot_node_count;
            e.pod_count += p.pod_count;
            e.cpu_allocatable_m += p.cpu_allocatable_m;
            e.cpu_requested_m += p.cpu_requested_m;
            e.cpu_used_m += p.cpu_used_m;
            e.mem_allocatable_mib += p.mem_allocatable_mib;
            e.mem_requested_mib += p.mem_requested_mib;
            e.mem_used_mib += p.mem_used_mib;
            e.hourly_cost += p.hourly_cost;
            e.on_demand_hourly_cost += p.on_demand_hourly_cost;
        }
    }
    out
}

fn zero() -> MetricPoint {
    MetricPoint {
        cluster_name: String::new(),
        cluster_id: String::new(),
        ts: 0,
        node_count: 0,
        spot_node_count: 0,
        pod_count: 0,
        cpu_allocatable_m: 0,
        cpu_requested_m: 0,
        cpu_used_m: 0,
        mem_allocatable_mib: 0,
        mem_requested_mib: 0,
        mem_used_mib: 0,
        hourly_cost: 0.0,
        on_demand_hourly_cost: 0.0,
    }
}

/// The headline numbers of an organization (or one of its accounts): what `GET
/// /api/dashboard/kpis` answers, and what the weekly report shows.
pub async fn kpis_of(
    db: &spot_models::Db,
    org: &str,
    account: Option<&str>,
) -> Result<Kpis, ApiError> {
    let clusters = inventory::list_clusters(db, org, account).await?;
    let instances = inventory::live_instances(db, org, account).await?;
    let live: Vec<_> = instances.iter().filter(|i| running(i)).collect();
    let compute_hourly: f64 = live.iter().map(|i| i.hourly_price).sum();
    let vols = inventory::orphaned_volumes(db, org)
        .await
        .map_err(ApiError::from)?;
    let snaps = inventory::unused_snapshots(db, org)
        .await
        .map_err(ApiError::from)?;
    let idle_storage: f64 = vols
        .iter()
        .filter(|v| account.is_none_or(|a| v.account_id == a))
        .map(|v| v.monthly_cost)
        .sum::<f64>()
        + snaps
            .iter()
            .filter(|s| account.is_none_or(|a| s.account_id == a))
            .map(|s| s.monthly_cost)
            .sum::<f64>();
    let storage = inventory::storage_monthly(db, org, account)
        .await
        .map_err(ApiError::from)?;
    let ratio = median(
        live.iter()
            .filter(|i| i.lifecycle == "spot" && i.on_demand_hourly > 0.0)
            .map(|i| i.hourly_price / i.on_demand_hourly)
            .collect(),
    );
    let spot_savings_hourly: f64 = match ratio {
        Some(r) => live
            .iter()
            .filter(|i| i.cluster_id.is_some() && i.lifecycle != "spot")
            .map(|i| i.on_demand_hourly * (1.0 - r))
            .sum(),
        None => 0.0,
    };
    let nodes: Vec<_> = live.iter().filter(|i| i.cluster_id.is_some()).collect();
    let spot_nodes = nodes.iter().filter(|i| i.lifecycle == "spot").count();
    // Each graded cluster weighs its instance count (at least 1).
    let scores: Vec<(f64, i64)> = clusters
        .iter()
        .filter_map(|c| fleet::efficiency(&usage(c)).map(|e| (e.score, c.instance_count)))
        .collect();
    let eff = fleet::weighted_efficiency(&scores);
    let spot_m = spot_savings_hourly * HOURS_PER_MONTH;
    let pack_m = packing_waste_monthly(&clusters);
    Ok(Kpis {
        monthly_spend: compute_hourly * HOURS_PER_MONTH + storage,
        monthly_compute: compute_hourly * HOURS_PER_MONTH,
        monthly_storage: storage,
        potential_savings: spot_m + pack_m + idle_storage,
        potential_spot_savings: spot_m,
        potential_packing_savings: pack_m,
        idle_storage,
        spot_share: if nodes.is_empty() {
            0.0
        } else {
            spot_nodes as f64 / nodes.len() as f64
        },
        efficiency_score: eff.as_ref().map(fleet::Efficiency::rounded_score),
        efficiency_grade: eff.map(|e| e.grade.as_str().to_string()),
        clusters: clusters.len() as i64,
        nodes: nodes.len() as i64,
        running_instances: live.len() as i64,
    })
}

#[OpenApi(prefix_path = "/dashboard", tag = "ApiTags::Dashboard")]
impl DashboardApi {
    /// Headline numbers (read-only; savings are potential, not realized).
    #[oai(path = "/kpis", method = "get", operation_id = "dashboardKpis")]
    async fn kpis(
        &self,
        state: Data<&AppState>,
        auth: BearerAuth,
        account_id: Query<Option<String>>,
    ) -> poem::Result<Json<Kpis>> {
        let account = account_id.0.as_deref().filter(|s| !s.is_empty());
        Ok(Json(kpis_of(&state.db, &auth.0.org_id, account).await?))
    }

    /// Hourly cost over time: on-demand baseline vs actual (total, or one cluster).
    #[oai(path = "/savings", method = "get", operation_id = "dashboardSavings")]
    async fn savings(
        &self,
        state: Data<&AppState>,
        auth: BearerAuth,
        days: Query<Option<i64>>,
        account_id: Query<Option<String>>,
        cluster_id: Query<Option<String>>,
    ) -> poem::Result<Json<SavingsSeries>> {
        let from = window_start(days.0, 7)?;
        let pts = inventory::metrics(
            &state.db,
            &auth.0.org_id,
            from,
            account_id.0.as_deref().filter(|s| !s.is_empty()),
            cluster_id.0.as_deref().filter(|s| !s.is_empty()),
        )
        .await
        .map_err(ApiError::from)?;
        let points = by_time(&pts)
            .into_values()
            .map(|p| SavingsPoint {
                at: ts(p.ts),
                on_demand_baseline_hourly: p.on_demand_hourly_cost,
                actual_hourly: p.hourly_cost,
                savings_percent: if p.on_demand_hourly_cost > 0.0 {
                    (p.on_demand_hourly_cost - p.hourly_cost) / p.on_demand_hourly_cost * 100.0
                } else {
                    0.0
                },
            })
            .collect();
        Ok(Json(SavingsSeries { points }))
    }

    /// Capacity vs requested vs used over time, and the bin-packing waste in dollars.
    #[oai(
        path = "/resource-gap",
        method = "get",
        operation_id = "dashboardResourceGap"
    )]
    async fn resource_gap(
        &self,
        state: Data<&AppState>,
        auth: BearerAuth,
        days: Query<Option<i64>>,
        account_id: Query<Option<String>>,
    ) -> poem::Result<Json<ResourceGap>> {
        let from = window_start(days.0, 7)?;
        let account = account_id.0.as_deref().filter(|s| !s.is_empty());
        let pts = inventory::metrics(&state.db, &auth.0.org_id, from, account, None)
            .await
            .map_err(ApiError::from)?;
        let points = by_time(&pts)
            .into_values()
            .map(|p| GapPoint {
                at: ts(p.ts),
                cpu_capacity_millicores: p.cpu_allocatable_m,
                cpu_requested_millicores: p.cpu_requested_m,
                cpu_used_millicores: p.cpu_used_m,
                memory_capacity_mib: p.mem_allocatable_mib,
                memory_requested_mib: p.mem_requested_mib,
                memory_used_mib: p.mem_used_mib,
            })
            .collect();
        let clusters = inventory::list_clusters(&state.db, &auth.0.org_id, account)
            .await
            .map_err(ApiError::from)?;
        Ok(Json(ResourceGap {
            points,
            bin_packing_waste_monthly: packing_waste_monthly(&clusters),
        }))
    }

    /// Running instances by lifecycle × family with their monthly cost.
    #[oai(path = "/fleet", method = "get", operation_id = "dashboardFleet")]
    async fn fleet(
        &self,
        state: Data<&AppState>,
        auth: BearerAuth,
        account_id: Query<Option<String>>,
    ) -> poem::Result<Json<FleetComposition>> {
        let instances = inventory::live_instances(
            &state.db,
            &auth.0.org_id,
            account_id.0.as_deref().filter(|s| !s.is_empty()),
        )
        .await
        .map_err(ApiError::from)?;
        let mut groups: BTreeMap<(String, String), (i64, f64)> = BTreeMap::new();
        for i in instances.iter().filter(|i| running(i)) {
            let family = i
                .instance_type
                .split('.')
                .next()
                .unwrap_or(&i.instance_type)
                .to_string();
            let e = groups.entry((i.lifecycle.clone(), family)).or_default();
            e.0 += 1;
            e.1 += i.hourly_price * HOURS_PER_MONTH;
        }
        Ok(Json(FleetComposition {
            slices: groups
                .into_iter()
                .map(|((lifecycle, family), (n, cost))| FleetSlice {
                    lifecycle,
                    family,
                    instances: n,
                    monthly_cost: cost,
                })
                .collect(),
        }))
    }

    /// 24×7 utilization heatmap over the last weeks with idle blocks and the hibernation
    /// opportunity.
    #[oai(path = "/heatmap", method = "get", operation_id = "dashboardHeatmap")]
    async fn heatmap(
        &self,
        state: Data<&AppState>,
        auth: BearerAuth,
        days: Query<Option<i64>>,
        account_id: Query<Option<String>>,
    ) -> poem::Result<Json<Heatmap>> {
        let from = window_start(days.0, 28)?;
        let pts = inventory::metrics(
            &state.db,
            &auth.0.org_id,
            from,
            account_id.0.as_deref().filter(|s| !s.is_empty()),
            None,
        )
        .await
        .map_err(ApiError::from)?;
        let samples: Vec<fleet::HeatSample> = by_time(&pts)
            .into_values()
            .map(|p| {
                let t = ts(p.ts);
                fleet::HeatSample {
                    // 0–6 and 0–23: both fit a u8.
                    weekday: t.weekday().num_days_from_monday() as u8,
                    hour: t.hour() as u8,
                    cpu_used_m: p.cpu_used_m,
                    cpu_allocatable_m: p.cpu_allocatable_m,
                    hourly_cost: p.hourly_cost,
                }
            })
            .collect();
        let map = fleet::heatmap(&samples);
        Ok(Json(Heatmap {
            cells: map
                .cells
                .into_iter()
                .map(|c| HeatCell {
                    weekday: i64::from(c.weekday),
                    hour: i64::from(c.hour),
                    utilization: c.utilization,
                    hourly_cost: c.hourly_cost,
                    idle: c.idle,
                })
                .collect(),
            hibernation_savings_monthly: map.hibernation_savings_monthly,
            idle_hours_per_week: map.idle_hours_per_week,
        }))
    }

    /// Stability index (0–100) = mean of: spot stability (share of spot nodes outside pools
    /// the global risk tracker flags), resource pressure (share of clusters with memory
    /// requests under 90% of allocatable and no node the agent reports under memory, disk,
    /// PID or network pressure) and control-plane freshness (share of linked
    /// accounts synced within two discovery intervals).
    #[oai(
        path = "/stability",
        method = "get",
        operation_id = "dashboardStability"
    )]
    async fn stability(
        &self,
        state: Data<&AppState>,
        auth: BearerAuth,
        account_id: Query<Option<String>>,
    ) -> poem::Result<Json<Stability>> {
        let org = &auth.0.org_id;
        let account = account_id.0.as_deref().filter(|s| !s.is_empty());
        let (clusters, instances) = load(&state, org, account).await?;
        let tracker = state.hive.flags(chrono::Utc::now()).await;
        let flagged: std::collections::HashSet<(String, String)> = tracker
            .known()
            .unwrap_or(&[])
            .iter()
            .map(|f| (f.pool.instance_type.clone(), f.pool.az.clone()))
            .collect();
        let spot: Vec<_> = instances
            .iter()
            .filter(|i| running(i) && i.lifecycle == "spot")
            .collect();
        // Unknown flags (the tracker is down): no spot node is known to be safe, so each
        // counts as at risk and the component says why.
        let at_risk = if tracker.is_unknown() {
            spot.len()
        } else {
            spot.iter()
                .filter(|i| flagged.contains(&(i.instance_type.clone(), i.az.clone())))
                .count()
        };
        // Under pressure: memory requests above 90 % of allocatable, or a node the agent
        // reports with a pressure condition (memory, disk, PIDs, network).
        let agent_fresh = chrono::Utc::now().timestamp_millis()
            - spot_actors::discovery::AGENT_VIEW_FRESH_SECS * 1000;
        let node_pressure =
            spot_models::agents::clusters_with_node_pressure(&state.db, org, agent_fresh)
                .await
                .map_err(ApiError::from)?;
        let pressured = clusters
            .iter()
            .filter(|c| fleet::memory_pressured(&usage(c)) || node_pressure.contains(&c.id))
            .count();
        let accounts = spot_models::accounts::list(&state.db, org)
            .await
            .map_err(ApiError::from)?;
        let linked: Vec<_> = accounts
            .iter()
            .filter(|a| a.aws_account_id.is_some() && account.is_none_or(|x| a.id == x))
            .collect();
        let now = chrono::Utc::now().timestamp_millis();
        let fresh = linked
            .iter()
            .filter(|a| {
                fleet::synced_recently(
                    a.status == "active",
                    a.last_sync_at,
                    now,
                    state.cfg.discovery_interval_secs,
                )
            })
            .count();
        let s = fleet::stability(&fleet::StabilityInputs {
            spot_nodes: spot.len(),
            spot_nodes_in_flagged_pools: at_risk,
            clusters: clusters.len(),
            clusters_memory_pressured: pressured,
            linked_accounts: linked.len(),
            accounts_synced_recently: fresh,
        });
        Ok(Json(Stability {
            index: s.index,
            components: s
                .components
                .into_iter()
                .map(|c| StabilityComponent {
                    detail: if tracker.is_unknown() && c.name == "spot_stability" {
                        format!("{} The global risk tracker is unavailable, so which pools are flagged is unknown: every spot node is counted as at risk until it answers.", c.detail)
                    } else {
                        c.detail
                    },
                    name: c.name,
                    score: c.score,
                })
                .collect(),
        }))
    }
}
