use std::collections::HashSet;

use chrono::Datelike;
use poem::web::Data;
use poem_openapi::param::{Path, Query};
use poem_openapi::payload::Json;
use poem_openapi::{Object, OpenApi};
use spot_engine::catalog::HOURS_PER_MONTH;
use spot_engine::fleet;
use spot_models::inventory::{self, ClusterView, InstanceView};

use super::{ts, ApiTags};
use crate::auth::BearerAuth;
use crate::error::ApiError;
use crate::state::AppState;

pub struct InventoryApi;

/// The engine's fleet inputs of a cluster row.
pub(crate) fn usage(c: &ClusterView) -> fleet::Usage {
    fleet::Usage {
        cpu_allocatable_m: c.cpu_allocatable_m,
        cpu_requested_m: c.cpu_requested_m,
        cpu_used_m: c.cpu_used_m,
        mem_allocatable_mib: c.mem_allocatable_mib,
        mem_requested_mib: c.mem_requested_mib,
        mem_used_mib: c.mem_used_mib,
        hourly_cost: c.hourly_cost,
    }
}

/// A calendar day in the engine's terms.
fn fleet_date(d: chrono::NaiveDate) -> fleet::Date {
    fleet::Date::new(d.year(), d.month(), d.day())
}

#[derive(Object)]
pub struct ClusterSummary {
    pub id: String,
    pub name: String,
    pub account_id: String,
    pub account_name: String,
    pub provider: String,
    pub region: String,
    /// Availability zones of the cluster's nodes.
    pub azs: Vec<String>,
    pub kubernetes_version: Option<String>,
    /// Past EKS standard support.
    pub end_of_life: bool,
    pub status: String,
    pub environment: Option<String>,
    pub node_count: i64,
    pub pod_count: i64,
    /// Σ current hourly price × 730 (spot nodes at their spot price).
    pub monthly_run_rate: f64,
    /// The same nodes at on-demand prices × 730.
    pub monthly_on_demand_equivalent: f64,
    /// Spot nodes / running nodes, 0–1.
    pub spot_share: f64,
    pub cpu_allocatable_millicores: i64,
    pub cpu_requested_millicores: i64,
    pub cpu_used_millicores: i64,
    pub memory_allocatable_mib: i64,
    pub memory_requested_mib: i64,
    pub memory_used_mib: i64,
    /// See the formula on `GET /api/clusters`.
    pub efficiency_score: Option<f64>,
    pub efficiency_grade: Option<String>,
    pub health_score: i64,
    pub last_sync: chrono::DateTime<chrono::Utc>,
    /// The last 24 hours, one point per hour with data (oldest first), from the metrics
    /// discovery records: for the registry's sparklines and cost trend.
    pub trend_24h: ClusterTrend,
    /// The in-cluster agent: `not_installed`, `waiting`, `connected` (heartbeat < 60 s),
    /// `disconnected` or `revoked`.
    pub agent_status: super::agent::AgentStatus,
}

/// Hourly history of a cluster (each hour: the last discovery in it).
#[derive(Object, Default, Clone)]
pub struct ClusterTrend {
    pub hours: Vec<chrono::DateTime<chrono::Utc>>,
    pub nodes: Vec<i64>,
    pub pods: Vec<i64>,
    /// Hourly cost × 730 at each point.
    pub monthly_cost: Vec<f64>,
    /// Relative change of the monthly cost over the window (last vs first point), e.g.
    /// -0.12 for 12 % cheaper; absent with fewer than two points.
    pub monthly_cost_change: Option<f64>,
}

/// 24-hour trends of an organization's clusters (one metrics query for all of them).
async fn trends(
    state: &AppState,
    org_id: &str,
    account_id: Option<&str>,
    cluster_id: Option<&str>,
) -> std::collections::HashMap<String, ClusterTrend> {
    let from = chrono::Utc::now().timestamp_millis() - 24 * inventory::HOUR_MS;
    let points = match inventory::metrics(&state.db, org_id, from, account_id, cluster_id).await {
        Ok(p) => p,
        Err(e) => {
            tracing::warn!(component = "WORK-DISC-01", error = %e, "cluster trends unavailable");
            return Default::default();
        }
    };
    // cluster → hour → its latest point in that hour
    let mut by: std::collections::HashMap<String, Vec<(i64, &inventory::MetricPoint)>> =
        Default::default();
    for (hour, clusters) in inventory::latest_per_hour(&points) {
        for (id, p) in clusters {
            by.entry(id.to_string()).or_default().push((hour, p));
        }
    }
    by.into_iter()
        .map(|(id, hours)| {
            let mut t = ClusterTrend::default();
            for (h, p) in hours {
                t.hours.push(ts(h));
                t.nodes.push(p.node_count);
                t.pods.push(p.pod_count);
                t.monthly_cost.push(p.hourly_cost * HOURS_PER_MONTH);
            }
            if let (Some(first), Some(last)) = (t.monthly_cost.first(), t.monthly_cost.last()) {
                if t.monthly_cost.len() >= 2 && *first > 0.0 {
                    t.monthly_cost_change = Some(last / first - 1.0);
                }
            }
            (id, t)
        })
        .collect()
}

#[derive(Object)]
pub struct ClusterList {
    /// One page (see `limit` and `cursor`).
    pub items: Vec<ClusterSummary>,
    /// Over every cluster that matches the filters, not only this page.
    pub total_monthly_run_rate: f64,
    /// Pass as `cursor` for the next page; null on the last page.
    pub next_cursor: Option<String>,
}

#[derive(Object)]
pub struct InstanceSummary {
    pub id: String,
    pub instance_id: String,
    pub cluster_id: Option<String>,
    pub instance_type: String,
    /// `spot` or `on-demand`.
    pub lifecycle: String,
    pub state: String,
    pub az: String,
    /// Capacity pool: `<type>@<az>`.
    pub pool: String,
    pub node_group: Option<String>,
    pub hourly_price: f64,
    pub monthly_cost: f64,
    pub on_demand_hourly: f64,
    /// The pool is flagged by the global risk tracker (interruptions seen anywhere).
    pub pool_flagged: bool,
    /// Spot only: the risk model's probability that the pool interrupts within the hour.
    pub interruption_probability: Option<f64>,
    /// Spot only: `SAFE` (< 0.2), `CAUTION` (0.2–0.5) or `AVOID` (> 0.5, or flagged by the
    /// global risk tracker, which overrides the model while the flag lasts).
    pub risk_band: Option<String>,
    /// Which model scored the pool.
    pub risk_model: Option<String>,
    pub launched_at: Option<chrono::DateTime<chrono::Utc>>,
}

#[derive(Object)]
pub struct NodeGroupView {
    pub name: String,
    pub instance_types: Vec<String>,
    pub capacity_type: String,
    pub desired: i64,
    pub min: i64,
    pub max: i64,
}

#[derive(Object)]
pub struct ClusterDetail {
    pub cluster: ClusterSummary,
    pub node_groups: Vec<NodeGroupView>,
    pub nodes: Vec<InstanceSummary>,
}

#[derive(Object)]
pub struct InstanceList {
    /// One page (see `limit` and `cursor`).
    pub items: Vec<InstanceSummary>,
    /// Over the whole list, not only this page.
    pub total_monthly_cost: f64,
    /// Pass as `cursor` for the next page; null on the last page.
    pub next_cursor: Option<String>,
}

#[derive(Object)]
pub struct HistoryEntry {
    pub at: chrono::DateTime<chrono::Utc>,
    /// `discovered`, `changed` (state or lifecycle switch), `gone`.
    pub kind: String,
    pub detail: serde_json::Value,
}

#[derive(Object)]
pub struct AlternativePool {
    pub instance_type: String,
    pub az: String,
    pub vcpu: i64,
    pub memory_mib: i64,
    pub spot_price: f64,
    pub monthly_cost: f64,
    /// `SAFE`, `CAUTION` or `AVOID`: the risk model's band when the pool is scored, else
    /// the price-ratio rule; `AVOID` while the global risk tracker flags the pool.
    pub interruption_band: String,
    /// The risk model's probability, when the pool has been scored.
    pub interruption_probability: Option<f64>,
}

#[derive(Object)]
pub struct InstanceDetail {
    pub instance: InstanceSummary,
    pub account_id: String,
    pub tags: serde_json::Value,
    pub history: Vec<HistoryEntry>,
    /// The five cheapest spot pools with at least this instance's vCPU and memory and the
    /// same architecture, from the account's scored market (read at each discovery).
    pub alternatives: Vec<AlternativePool>,
    /// When the market behind `alternatives` was read; null until the account's market has
    /// been read by this server (its next discovery).
    pub alternatives_as_of: Option<chrono::DateTime<chrono::Utc>>,
}

#[derive(Object)]
pub struct VolumeItem {
    pub id: String,
    pub account_id: String,
    pub volume_id: String,
    pub size_gib: i64,
    pub volume_type: String,
    pub last_attached_at: Option<chrono::DateTime<chrono::Utc>>,
    pub created_at: Option<chrono::DateTime<chrono::Utc>>,
    pub monthly_cost: f64,
}

#[derive(Object)]
pub struct VolumeList {
    /// One page (see `limit` and `cursor`).
    pub items: Vec<VolumeItem>,
    /// Over the whole list, not only this page.
    pub total_monthly_cost: f64,
    /// Pass as `cursor` for the next page; null on the last page.
    pub next_cursor: Option<String>,
}

#[derive(Object)]
pub struct SnapshotItem {
    pub id: String,
    pub account_id: String,
    pub snapshot_id: String,
    pub volume_id: Option<String>,
    pub started_at: Option<chrono::DateTime<chrono::Utc>>,
    pub age_days: i64,
    pub size_gib: i64,
    pub monthly_cost: f64,
}

#[derive(Object)]
pub struct SnapshotList {
    /// One page (see `limit` and `cursor`).
    pub items: Vec<SnapshotItem>,
    /// Over the whole list, not only this page.
    pub total_monthly_cost: f64,
    /// Pass as `cursor` for the next page; null on the last page.
    pub next_cursor: Option<String>,
}

/// What the product knows about pool risk right now: the hive mind's flags and the
/// model's latest score per pool (MOD-AI-01).
struct PoolRiskIndex {
    flagged: HashSet<(String, String)>,
    /// The global risk tracker could not be read: no pool is known to be clean.
    flags_unknown: bool,
    scores: std::collections::HashMap<(String, String), spot_models::risk::PoolRisk>,
}

impl PoolRiskIndex {
    fn contains(&self, pool: &(String, String)) -> bool {
        self.flagged.contains(pool)
    }

    /// Model probability and band of a pool; a hive-mind flag overrides the band to AVOID
    /// while it lasts. While the tracker cannot be read, no pool is shown better than
    /// CAUTION (it may be flagged).
    fn risk(&self, instance_type: &str, az: &str) -> (Option<f64>, Option<String>, Option<String>) {
        let key = (instance_type.to_string(), az.to_string());
        let score = self.scores.get(&key);
        let band = if self.flagged.contains(&key) {
            Some("AVOID".to_string())
        } else if self.flags_unknown {
            match score.map(|s| s.action.as_str()) {
                Some("AVOID") => Some("AVOID".to_string()),
                _ => Some("CAUTION".to_string()),
            }
        } else {
            score.map(|s| s.action.clone())
        };
        (
            score.map(|s| s.probability),
            band,
            score.map(|s| s.model.clone()),
        )
    }
}

async fn flagged_pools(state: &AppState) -> PoolRiskIndex {
    let tracker = state.hive.flags(chrono::Utc::now()).await;
    let flags_unknown = tracker.is_unknown();
    let flagged = tracker
        .known()
        .unwrap_or(&[])
        .iter()
        .map(|f| (f.pool.instance_type.clone(), f.pool.az.clone()))
        .collect();
    let scores = match spot_models::risk::all_pool_risks(&state.db).await {
        Ok(rows) => rows
            .into_iter()
            .map(|r| ((r.instance_type.clone(), r.az.clone()), r))
            .collect(),
        Err(e) => {
            tracing::warn!(component = "MOD-AI-01", error = %e, "pool scores unavailable");
            Default::default()
        }
    };
    PoolRiskIndex {
        flagged,
        flags_unknown,
        scores,
    }
}

fn instance_summary(i: &InstanceView, flagged: &PoolRiskIndex) -> InstanceSummary {
    let (interruption_probability, risk_band, risk_model) = if i.lifecycle == "spot" {
        flagged.risk(&i.instance_type, &i.az)
    } else {
        (None, None, None)
    };
    InstanceSummary {
        interruption_probability,
        risk_band,
        risk_model,
        pool: format!("{}@{}", i.instance_type, i.az),
        pool_flagged: i.lifecycle == "spot"
            && flagged.contains(&(i.instance_type.clone(), i.az.clone())),
        id: i.id.clone(),
        instance_id: i.instance_id.clone(),
        cluster_id: i.cluster_id.clone(),
        instance_type: i.instance_type.clone(),
        lifecycle: i.lifecycle.clone(),
        state: i.state.clone(),
        az: i.az.clone(),
        node_group: i.node_group.clone(),
        hourly_price: i.hourly_price,
        monthly_cost: i.hourly_price * HOURS_PER_MONTH,
        on_demand_hourly: i.on_demand_hourly,
        launched_at: i.launch_time.map(ts),
    }
}

fn summarize(c: &ClusterView, nodes: &[InstanceView], flagged: &PoolRiskIndex) -> ClusterSummary {
    let today = fleet_date(chrono::Utc::now().date_naive());
    let eol = fleet::end_of_life(c.version.as_deref(), today);
    let eff = fleet::efficiency(&usage(c));
    let spot_nodes: Vec<_> = nodes
        .iter()
        .filter(|n| n.lifecycle == "spot" && n.state == "running")
        .collect();
    let flagged_n = spot_nodes
        .iter()
        .filter(|n| flagged.contains(&(n.instance_type.clone(), n.az.clone())))
        .count();
    let running = nodes.iter().filter(|n| n.state == "running").count().max(1);
    let mut azs: Vec<String> = nodes
        .iter()
        .map(|n| n.az.clone())
        .collect::<HashSet<_>>()
        .into_iter()
        .collect();
    azs.sort();
    ClusterSummary {
        trend_24h: ClusterTrend::default(),
        agent_status: super::agent::AgentStatus::NotInstalled,
        id: c.id.clone(),
        name: c.name.clone(),
        account_id: c.account_id.clone(),
        account_name: c.account_name.clone(),
        provider: c.provider.clone(),
        region: c.region.clone(),
        azs,
        kubernetes_version: c.version.clone(),
        end_of_life: eol,
        status: c.status.clone(),
        environment: c.environment.clone(),
        node_count: c.instance_count.max(c.node_count),
        pod_count: c.pod_count,
        monthly_run_rate: c.hourly_cost * HOURS_PER_MONTH,
        monthly_on_demand_equivalent: c.on_demand_hourly * HOURS_PER_MONTH,
        spot_share: if c.instance_count > 0 {
            c.spot_count as f64 / c.instance_count as f64
        } else {
            0.0
        },
        cpu_allocatable_millicores: c.cpu_allocatable_m,
        cpu_requested_millicores: c.cpu_requested_m,
        cpu_used_millicores: c.cpu_used_m,
        memory_allocatable_mib: c.mem_allocatable_mib,
        memory_requested_mib: c.mem_requested_mib,
        memory_used_mib: c.mem_used_mib,
        efficiency_score: eff.as_ref().map(fleet::Efficiency::rounded_score),
        health_score: fleet::health(
            c.status == "active",
            eol,
            eff.map(|e| e.grade),
            flagged_n as f64 / running as f64,
        ),
        efficiency_grade: eff.map(|e| e.grade.as_str().to_string()),
        last_sync: ts(c.last_seen_at),
    }
}

#[OpenApi(tag = "ApiTags::Inventory")]
impl InventoryApi {
    /// Clusters of the organization with run rate, spot share, efficiency and health.
    ///
    /// Efficiency: score = ½·(requested ÷ allocatable) + ½·(used ÷ requested), each the mean
    /// of CPU and memory capped at 1; A ≥ 0.80, B ≥ 0.65, C ≥ 0.50, D ≥ 0.35, else F.
    /// Health (0–100): −30 if the control plane is not active, −20 past EKS standard support,
    /// −15 for grade D/F, up to −30 for the share of spot nodes in globally flagged pools.
    /// Monthly run rate = Σ current hourly price × 730.
    ///
    /// Cursor paging: at most `limit` clusters per page (1–500, default 100); pass the
    /// page's `next_cursor` as `cursor` (with the same filters and sort) for the next one.
    #[allow(clippy::too_many_arguments)]
    #[oai(path = "/clusters", method = "get", operation_id = "listClusters")]
    async fn clusters(
        &self,
        state: Data<&AppState>,
        auth: BearerAuth,
        /// Only clusters of this linked account.
        account_id: Query<Option<String>>,
        /// Case-insensitive substring of the name, region or account name.
        q: Query<Option<String>>,
        /// Environment tag (e.g. `production`).
        environment: Query<Option<String>>,
        status: Query<Option<String>>,
        /// Only clusters with a monthly run rate of at least this many dollars.
        min_monthly_cost: Query<Option<f64>>,
        /// `name` (default), `cost`, `nodes`, `efficiency`, `health`; prefix `-` for descending.
        sort: Query<Option<String>>,
        /// The previous page's `next_cursor`.
        cursor: Query<Option<String>>,
        /// Page size, 1–500 (default 100).
        limit: Query<Option<i64>>,
    ) -> poem::Result<Json<ClusterList>> {
        let limit = crate::paging::limit(limit.0)?;
        let flagged = flagged_pools(&state).await;
        let rows = inventory::list_clusters(
            &state.db,
            &auth.0.org_id,
            account_id.0.as_deref().filter(|s| !s.is_empty()),
        )
        .await
        .map_err(ApiError::from)?;
        // One query for every cluster's nodes (no query per cluster).
        let mut by_cluster: std::collections::HashMap<String, Vec<InstanceView>> =
            std::collections::HashMap::new();
        for i in inventory::clustered_instances(&state.db, &auth.0.org_id)
            .await
            .map_err(ApiError::from)?
        {
            if let Some(cid) = i.cluster_id.clone() {
                by_cluster.entry(cid).or_default().push(i);
            }
        }
        let mut trend = trends(
            &state,
            &auth.0.org_id,
            account_id.0.as_deref().filter(|s| !s.is_empty()),
            None,
        )
        .await;
        // One query for every cluster's agent state.
        let agent_states =
            spot_models::agents::states(&state.db, &auth.0.org_id, chrono::Utc::now())
                .await
                .map_err(ApiError::from)?;
        let mut items: Vec<ClusterSummary> = rows
            .iter()
            .map(|c| {
                let mut sum = summarize(
                    c,
                    by_cluster.get(&c.id).map(Vec::as_slice).unwrap_or(&[]),
                    &flagged,
                );
                sum.trend_24h = trend.remove(&c.id).unwrap_or_default();
                if let Some(a) = agent_states.get(&c.id) {
                    sum.agent_status = (*a).into();
                }
                sum
            })
            .collect();
        if let Some(q) =
            q.0.as_deref()
                .map(str::to_lowercase)
                .filter(|s| !s.is_empty())
        {
            items.retain(|c| {
                c.name.to_lowercase().contains(&q)
                    || c.region.contains(&q)
                    || c.account_name.to_lowercase().contains(&q)
            });
        }
        if let Some(env) = environment.0.as_deref().filter(|s| !s.is_empty()) {
            items.retain(|c| {
                c.environment
                    .as_deref()
                    .is_some_and(|e| e.eq_ignore_ascii_case(env))
            });
        }
        if let Some(s) = status.0.as_deref().filter(|s| !s.is_empty()) {
            items.retain(|c| c.status == s);
        }
        if let Some(min) = min_monthly_cost.0 {
            items.retain(|c| c.monthly_run_rate >= min);
        }
        let sort = sort.0.unwrap_or_else(|| "name".into());
        let (desc, key) = match sort.strip_prefix('-') {
            Some(k) => (true, k.to_string()),
            None => (false, sort.clone()),
        };
        use crate::paging::SortKey;
        let key_of: fn(&ClusterSummary) -> SortKey = match key.as_str() {
            "name" => |c| SortKey::Text(c.name.clone()),
            "cost" => |c| SortKey::Num(c.monthly_run_rate),
            "nodes" => |c| SortKey::Int(c.node_count),
            "efficiency" => |c| SortKey::Num(c.efficiency_score.unwrap_or(-1.0)),
            "health" => |c| SortKey::Int(c.health_score),
            _ => return Err(ApiError::field("sort", "sort must be one of name, cost, nodes, efficiency, health (optionally prefixed with -)").into()),
        };
        let total = items.iter().map(|c| c.monthly_run_rate).sum();
        let keyed = items
            .into_iter()
            .map(|c| (key_of(&c), c.id.clone(), c))
            .collect();
        let (items, next_cursor) =
            crate::paging::page(keyed, &sort, desc, cursor.0.as_deref(), limit)?;
        Ok(Json(ClusterList {
            items,
            total_monthly_run_rate: total,
            next_cursor,
        }))
    }

    /// One cluster with its node groups and nodes.
    #[oai(path = "/clusters/:id", method = "get", operation_id = "getCluster")]
    async fn cluster(
        &self,
        state: Data<&AppState>,
        auth: BearerAuth,
        id: Path<String>,
    ) -> poem::Result<Json<ClusterDetail>> {
        let c = inventory::cluster(&state.db, &auth.0.org_id, &id)
            .await
            .map_err(ApiError::from)?
            .ok_or(ApiError::NotFound("cluster"))?;
        let nodes = inventory::cluster_instances(&state.db, &auth.0.org_id, &c.id)
            .await
            .map_err(ApiError::from)?;
        let flagged = flagged_pools(&state).await;
        let groups: Vec<serde_json::Value> =
            serde_json::from_str(&c.node_groups).unwrap_or_default();
        let node_groups = groups
            .iter()
            .map(|g| NodeGroupView {
                name: g["name"].as_str().unwrap_or_default().to_string(),
                instance_types: g["instance_types"]
                    .as_array()
                    .map(|a| {
                        a.iter()
                            .filter_map(|t| t.as_str().map(str::to_string))
                            .collect()
                    })
                    .unwrap_or_default(),
                capacity_type: g["capacity_type"].as_str().unwrap_or_default().to_string(),
                desired: g["scaling"]["desired_size"]
                    .as_i64()
                    .or_else(|| g["scaling"]["desired"].as_i64())
                    .unwrap_or(0),
                min: g["scaling"]["min_size"]
                    .as_i64()
                    .or_else(|| g["scaling"]["min"].as_i64())
                    .unwrap_or(0),
                max: g["scaling"]["max_size"]
                    .as_i64()
                    .or_else(|| g["scaling"]["max"].as_i64())
                    .unwrap_or(0),
            })
            .collect();
        let mut cluster = summarize(&c, &nodes, &flagged);
        cluster.agent_status =
            spot_models::agents::state(&state.db, &auth.0.org_id, &c.id, chrono::Utc::now())
                .await
                .map_err(ApiError::from)?
                .into();
        cluster.trend_24h = trends(&state, &auth.0.org_id, None, Some(&c.id))
            .await
            .remove(&c.id)
            .unwrap_or_default();
        Ok(Json(ClusterDetail {
            cluster,
            node_groups,
            nodes: nodes
                .iter()
                .map(|n| instance_summary(n, &flagged))
                .collect(),
        }))
    }

    /// Instances (nodes) of one cluster, by node group then instance id. Cursor paging:
    /// at most `limit` per page (1–500, default 100); pass `next_cursor` as `cursor`.
    #[oai(
        path = "/clusters/:id/instances",
        method = "get",
        operation_id = "listClusterInstances"
    )]
    async fn cluster_instances(
        &self,
        state: Data<&AppState>,
        auth: BearerAuth,
        id: Path<String>,
        /// The previous page's `next_cursor`.
        cursor: Query<Option<String>>,
        /// Page size, 1–500 (default 100).
        limit: Query<Option<i64>>,
    ) -> poem::Result<Json<InstanceList>> {
        let limit = crate::paging::limit(limit.0)?;
        let c = inventory::cluster(&state.db, &auth.0.org_id, &id)
            .await
            .map_err(ApiError::from)?
            .ok_or(ApiError::NotFound("cluster"))?;
        let flagged = flagged_pools(&state).await;
        let rows = inventory::cluster_instances(&state.db, &auth.0.org_id, &c.id)
            .await
            .map_err(ApiError::from)?;
        let total = rows
            .iter()
            .map(|i| instance_summary(i, &flagged).monthly_cost)
            .sum();
        let keyed = rows
            .iter()
            .map(|n| {
                let key = format!(
                    "{}\u{1}{}",
                    n.node_group.as_deref().unwrap_or(""),
                    n.instance_id
                );
                (
                    crate::paging::SortKey::Text(key),
                    n.id.clone(),
                    instance_summary(n, &flagged),
                )
            })
            .collect();
        let (items, next_cursor) =
            crate::paging::page(keyed, "node_group", false, cursor.0.as_deref(), limit)?;
        Ok(Json(InstanceList {
            items,
            total_monthly_cost: total,
            next_cursor,
        }))
    }

    /// Instances that belong to no cluster, most expensive first. Cursor paging: at most
    /// `limit` per page (1–500, default 100); pass `next_cursor` as `cursor`.
    #[oai(
        path = "/instances/unregistered",
        method = "get",
        operation_id = "listUnregisteredInstances"
    )]
    async fn unregistered(
        &self,
        state: Data<&AppState>,
        auth: BearerAuth,
        /// The previous page's `next_cursor`.
        cursor: Query<Option<String>>,
        /// Page size, 1–500 (default 100).
        limit: Query<Option<i64>>,
    ) -> poem::Result<Json<InstanceList>> {
        let limit = crate::paging::limit(limit.0)?;
        let flagged = flagged_pools(&state).await;
        let items: Vec<_> = inventory::unregistered(&state.db, &auth.0.org_id)
            .await
            .map_err(ApiError::from)?
            .iter()
            .map(|n| instance_summary(n, &flagged))
            .collect();
        let total = items.iter().map(|i| i.monthly_cost).sum();
        let keyed = items
            .into_iter()
            .map(|i| (crate::paging::SortKey::Num(i.monthly_cost), i.id.clone(), i))
            .collect();
        let (items, next_cursor) =
            crate::paging::page(keyed, "-cost", true, cursor.0.as_deref(), limit)?;
        Ok(Json(InstanceList {
            items,
            total_monthly_cost: total,
            next_cursor,
        }))
    }

    /// One instance with its history and the five cheapest compatible spot pools.
    #[oai(path = "/instances/:id", method = "get", operation_id = "getInstance")]
    async fn instance(
        &self,
        state: Data<&AppState>,
        auth: BearerAuth,
        id: Path<String>,
    ) -> poem::Result<Json<InstanceDetail>> {
        let i = inventory::instance(&state.db, &auth.0.org_id, &id)
            .await
            .map_err(ApiError::from)?
            .ok_or(ApiError::NotFound("instance"))?;
        let flagged = flagged_pools(&state).await;
        let history = inventory::instance_history(&state.db, &auth.0.org_id, &i.id)
            .await
            .map_err(ApiError::from)?
            .into_iter()
            .map(|e| HistoryEntry {
                at: ts(e.ts),
                kind: e.kind,
                detail: serde_json::from_str(&e.detail).unwrap_or_default(),
            })
            .collect();
        let (alternatives, alternatives_as_of) = alternatives(&state, &i, &flagged);
        Ok(Json(InstanceDetail {
            instance: instance_summary(&i, &flagged),
            account_id: i.account_id.clone(),
            tags: serde_json::from_str(&i.tags).unwrap_or_default(),
            history,
            alternatives,
            alternatives_as_of,
        }))
    }

    /// Unattached EBS volumes with their monthly cost, most expensive first. Cursor paging:
    /// at most `limit` per page (1–500, default 100); pass `next_cursor` as `cursor`.
    #[oai(
        path = "/volumes/orphaned",
        method = "get",
        operation_id = "listOrphanedVolumes"
    )]
    async fn orphaned(
        &self,
        state: Data<&AppState>,
        auth: BearerAuth,
        /// The previous page's `next_cursor`.
        cursor: Query<Option<String>>,
        /// Page size, 1–500 (default 100).
        limit: Query<Option<i64>>,
    ) -> poem::Result<Json<VolumeList>> {
        let limit = crate::paging::limit(limit.0)?;
        let items: Vec<_> = inventory::orphaned_volumes(&state.db, &auth.0.org_id)
            .await
            .map_err(ApiError::from)?
            .into_iter()
            .map(|v| VolumeItem {
                id: v.id,
                account_id: v.account_id,
                volume_id: v.volume_id,
                size_gib: v.size_gib,
                volume_type: v.volume_type,
                last_attached_at: v.last_attached_at.map(ts),
                created_at: v.created_at.map(ts),
                monthly_cost: v.monthly_cost,
            })
            .collect();
        let total = items.iter().map(|v| v.monthly_cost).sum();
        let keyed = items
            .into_iter()
            .map(|v| (crate::paging::SortKey::Num(v.monthly_cost), v.id.clone(), v))
            .collect();
        let (items, next_cursor) =
            crate::paging::page(keyed, "-cost", true, cursor.0.as_deref(), limit)?;
        Ok(Json(VolumeList {
            items,
            total_monthly_cost: total,
            next_cursor,
        }))
    }

    /// Snapshots whose source volume is gone and that back no image, with monthly cost,
    /// most expensive first. Cursor paging: at most `limit` per page (1–500, default 100);
    /// pass `next_cursor` as `cursor`.
    #[oai(
        path = "/snapshots/unused",
        method = "get",
        operation_id = "listUnusedSnapshots"
    )]
    async fn unused(
        &self,
        state: Data<&AppState>,
        auth: BearerAuth,
        /// The previous page's `next_cursor`.
        cursor: Query<Option<String>>,
        /// Page size, 1–500 (default 100).
        limit: Query<Option<i64>>,
    ) -> poem::Result<Json<SnapshotList>> {
        let limit = crate::paging::limit(limit.0)?;
        let now = chrono::Utc::now().timestamp_millis();
        let items: Vec<_> = inventory::unused_snapshots(&state.db, &auth.0.org_id)
            .await
            .map_err(ApiError::from)?
            .into_iter()
            .map(|s| SnapshotItem {
                age_days: s.started_at.map(|t| (now - t) / 86_400_000).unwrap_or(0),
                id: s.id,
                account_id: s.account_id,
                snapshot_id: s.snapshot_id,
                volume_id: s.volume_id,
                started_at: s.started_at.map(ts),
                size_gib: s.size_gib,
                monthly_cost: s.monthly_cost,
            })
            .collect();
        let total = items.iter().map(|s| s.monthly_cost).sum();
        let keyed = items
            .into_iter()
            .map(|s| (crate::paging::SortKey::Num(s.monthly_cost), s.id.clone(), s))
            .collect();
        let (items, next_cursor) =
            crate::paging::page(keyed, "-cost", true, cursor.0.as_deref(), limit)?;
        Ok(Json(SnapshotList {
            items,
            total_monthly_cost: total,
            next_cursor,
        }))
    }
}

/// Interruption band from price pressure when no model has scored the pool: spot prices
/// close to on-demand signal scarce capacity. The global risk tracker overrides to AVOID.
fn band(spot: f64, on_demand: f64, flagged: bool) -> &'static str {
    if flagged {
        return "AVOID";
    }
    let r = if on_demand > 0.0 {
        spot / on_demand
    } else {
        1.0
    };
    if r < 0.45 {
        "SAFE"
    } else if r < 0.7 {
        "CAUTION"
    } else {
        "AVOID"
    }
}

/// The five cheapest spot pools compatible with `i` (same architecture, at least its vCPU,
/// memory and GPUs; its own pool excluded), from the scored market the account's actor read
/// at its last discovery: a viewer's request never calls the customer's cloud. Also returns
/// when that market was read (`None`: not read on this server yet).
fn alternatives(
    state: &AppState,
    i: &InstanceView,
    flagged: &PoolRiskIndex,
) -> (Vec<AlternativePool>, Option<chrono::DateTime<chrono::Utc>>) {
    // `i` was read with the caller's organization filter, so its account is the caller's.
    let Some(market) = state.risk.market(&i.account_id) else {
        return (Vec::new(), None);
    };
    let Some(me) = market.catalog.get(&i.instance_type) else {
        return (Vec::new(), Some(market.read_at));
    };
    let mut pools: Vec<AlternativePool> = market
        .spot
        .iter()
        .filter(|((t, az), _)| !(t == &i.instance_type && az == &i.az))
        .filter_map(|((t, az), price)| {
            let info = market.catalog.get(t)?;
            let compatible = info.arch == me.arch
                && info.vcpu >= me.vcpu
                && info.memory_mib >= me.memory_mib
                && info.gpus >= me.gpus;
            if !compatible {
                return None;
            }
            let is_flagged = flagged.contains(&(t.clone(), az.clone()));
            let (probability, model_band, _) = flagged.risk(t, az);
            let probability = probability.or_else(|| {
                market
                    .pool_risk
                    .get(&spot_engine::catalog::PoolKey::new(t, az))
                    .copied()
            });
            Some(AlternativePool {
                interruption_band: model_band
                    .unwrap_or_else(|| band(*price, info.on_demand_hourly, is_flagged).into()),
                interruption_probability: probability,
                vcpu: i64::from(info.vcpu),
                memory_mib: info.memory_mib as i64,
                monthly_cost: price * HOURS_PER_MONTH,
                spot_price: *price,
                instance_type: t.clone(),
                az: az.clone(),
            })
        })
        .collect();
    pools.sort_by(|a, b| {
        a.spot_price
            .partial_cmp(&b.spot_price)
            .unwrap_or(std::cmp::Ordering::Equal)
            .then(a.instance_type.cmp(&b.instance_type))
            .then(a.az.cmp(&b.az))
    });
    pools.truncate(5);
    (pools, Some(market.read_at))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bands_follow_price_pressure_and_flags() {
        assert_eq!(band(0.03, 0.1, false), "SAFE");
        assert_eq!(band(0.05, 0.1, false), "CAUTION");
        assert_eq!(band(0.09, 0.1, false), "AVOID");
        assert_eq!(band(0.01, 0.1, true), "AVOID");
    }
}
