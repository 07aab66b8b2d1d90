//! Discovered inventory and its diff-apply. A discovery produces an [`InventorySnapshot`] of
//! one account; [`apply`] compares it with the stored rows and, in one transaction, inserts
//! what is new, updates what changed, and marks what disappeared as gone (instances become
//! `terminated`). Unchanged rows cost one bulk `last_seen_at` update, so steady-state
//! rescans stay cheap.

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};
use sqlx::{Any, Transaction};

use crate::error::Result;
use crate::{new_id, Db};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClusterRec {
    pub name: String,
    pub provider: String,
    pub region: String,
    pub version: Option<String>,
    pub status: String,
    pub environment: Option<String>,
    /// JSON array of node groups.
    pub node_groups: String,
    /// JSON object of tags.
    pub tags: String,
    pub node_count: i64,
    pub pod_count: i64,
    pub cpu_allocatable_m: i64,
    pub cpu_requested_m: i64,
    pub cpu_used_m: i64,
    pub mem_allocatable_mib: i64,
    pub mem_requested_mib: i64,
    pub mem_used_mib: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InstanceRec {
    pub instance_id: String,
    pub cluster_name: Option<String>,
    pub instance_type: String,
    pub lifecycle: String,
    pub state: String,
    pub az: String,
    pub node_group: Option<String>,
    pub asg_name: Option<String>,
    pub tags: String,
    pub launch_time: Option<i64>,
    /// What the instance costs now: spot price for spot, on-demand price otherwise.
    pub hourly_price: f64,
    pub on_demand_hourly: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VolumeRec {
    pub volume_id: String,
    pub size_gib: i64,
    pub volume_type: String,
    pub state: String,
    pub attached_instance_id: Option<String>,
    pub last_attached_at: Option<i64>,
    pub created_at: Option<i64>,
    pub monthly_cost: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SnapshotRec {
    pub snapshot_id: String,
    pub volume_id: Option<String>,
    pub source_ami: Option<String>,
    pub started_at: Option<i64>,
    pub size_gib: i64,
    pub monthly_cost: f64,
}

#[derive(Debug, Clone, Default)]
pub struct InventorySnapshot {
    pub observed_at: i64,
    pub clusters: Vec<ClusterRec>,
    pub instances: Vec<InstanceRec>,
    pub volumes: Vec<VolumeRec>,
    pub snapshots: Vec<SnapshotRec>,
}

/// Counts of one kind of resource in a diff.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Diff {
    pub new: i64,
    pub changed: i64,
    pub gone: i64,
    pub total: i64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApplyReport {
    pub clusters: Diff,
    pub instances: Diff,
    pub volumes: Diff,
    pub snapshots: Diff,
}

async fn live_ids(
    tx: &mut Transaction<'_, Any>,
    table: &str,
    natural: &str,
    account_id: &str,
) -> Result<HashMap<String, String>> {
    let rows: Vec<(String, String)> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {natural}, id FROM {table} WHERE account_id = $1 AND gone_at IS NULL"
    )))
    .bind(account_id)
    .fetch_all(&mut **tx)
    .await?;
    Ok(rows.into_iter().collect())
}

async fn touch_and_retire(
    tx: &mut Transaction<'_, Any>,
    table: &str,
    account_id: &str,
    now: i64,
    gone_ids: &[String],
    extra_set: &str,
) -> Result<()> {
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "UPDATE {table} SET last_seen_at = $1 WHERE account_id = $2 AND gone_at IS NULL"
    )))
    .bind(now)
    .bind(account_id)
    .execute(&mut **tx)
    .await?;
    for id in gone_ids {
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "UPDATE {table} SET gone_at = $1{extra_set} WHERE id = $2"
        )))
        .bind(now)
        .bind(id)
        .execute(&mut **tx)
        .await?;
    }
    Ok(())
}

/// Rows per multi-row statement of [`apply`] (13 parameters a row stays far below the
/// parameter limits of SQLite and PostgreSQL).
const APPLY_ROWS: usize = 200;

/// Applies a discovery snapshot of one account in a single transaction.
pub async fn apply(
    db: &Db,
    org_id: &str,
    account_id: &str,
    snap: &InventorySnapshot,
) -> Result<ApplyReport> {
    let now = snap.observed_at;
    let mut report = ApplyReport::default();
    let mut tx = db.begin_write().await?;
    // Write first: SQLite then takes its write lock now (waiting on busy_timeout) instead of
    // failing to upgrade a read lock later with "database is locked".
    sqlx::query("UPDATE accounts SET updated_at = updated_at WHERE id = $1")
        .bind(account_id)
        .execute(&mut *tx)
        .await?;

    // Clusters.
    let existing: Vec<ClusterRow> = sqlx::query_as("SELECT id, name, provider, region, version, status, environment, node_groups, tags, node_count, pod_count, cpu_allocatable_m, cpu_requested_m, cpu_used_m, mem_allocatable_mib, mem_requested_mib, mem_used_mib FROM clusters WHERE account_id = $1 AND gone_at IS NULL AND provider <> 'kubernetes'")
        .bind(account_id)
        .fetch_all(&mut *tx)
        .await?;
    let mut by_name: HashMap<String, ClusterRow> =
        existing.into_iter().map(|c| (c.name.clone(), c)).collect();
    let mut cluster_ids: HashMap<String, String> = HashMap::new();
    for c in &snap.clusters {
        report.clusters.total += 1;
        let id = match by_name.remove(&c.name) {
            Some(row) => {
                if row.rec() != *c {
                    report.clusters.changed += 1;
                    sqlx::query("UPDATE clusters SET provider = $1, region = $2, version = $3, status = $4, environment = $5, node_groups = $6, tags = $7, node_count = $8, pod_count = $9, cpu_allocatable_m = $10, cpu_requested_m = $11, cpu_used_m = $12, mem_allocatable_mib = $13, mem_requested_mib = $14, mem_used_mib = $15 WHERE id = $16")
                        .bind(&c.provider).bind(&c.region).bind(c.version.clone()).bind(&c.status).bind(c.environment.clone()).bind(&c.node_groups).bind(&c.tags)
                        .bind(c.node_count).bind(c.pod_count).bind(c.cpu_allocatable_m).bind(c.cpu_requested_m).bind(c.cpu_used_m)
                        .bind(c.mem_allocatable_mib).bind(c.mem_requested_mib).bind(c.mem_used_mib).bind(&row.id)
                        .execute(&mut *tx).await?;
                }
                row.id
            }
            None => {
                report.clusters.new += 1;
                let id = new_id();
                sqlx::query("INSERT INTO clusters (id, organization_id, account_id, name, provider, region, version, status, environment, node_groups, tags, node_count, pod_count, cpu_allocatable_m, cpu_requested_m, cpu_used_m, mem_allocatable_mib, mem_requested_mib, mem_used_mib, first_seen_at, last_seen_at) \
                             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $20) \
                             ON CONFLICT (account_id, name) DO UPDATE SET gone_at = NULL, status = excluded.status, last_seen_at = excluded.last_seen_at")
                    .bind(&id).bind(org_id).bind(account_id).bind(&c.name).bind(&c.provider).bind(&c.region).bind(c.version.clone()).bind(&c.status)
                    .bind(c.environment.clone()).bind(&c.node_groups).bind(&c.tags).bind(c.node_count).bind(c.pod_count)
                    .bind(c.cpu_allocatable_m).bind(c.cpu_requested_m).bind(c.cpu_used_m).bind(c.mem_allocatable_mib).bind(c.mem_requested_mib).bind(c.mem_used_mib).bind(now)
                    .execute(&mut *tx).await?;
                let (real,): (String,) =
                    sqlx::query_as("SELECT id FROM clusters WHERE account_id = $1 AND name = $2")
                        .bind(account_id)
                        .bind(&c.name)
                        .fetch_one(&mut *tx)
                        .await?;
                real
            }
        };
        cluster_ids.insert(c.name.clone(), id);
    }
    let gone: Vec<String> = by_name.into_values().map(|r| r.id).collect();
    report.clusters.gone = gone.len() as i64;
    touch_and_retire(
        &mut tx,
        "clusters",
        account_id,
        now,
        &gone,
        ", status = 'gone'",
    )
    .await?;

    // Instances.
    let existing: Vec<InstanceRow> = sqlx::query_as("SELECT id, instance_id, cluster_id, instance_type, lifecycle, state, az, node_group, asg_name, tags, hourly_price, on_demand_hourly FROM instances WHERE account_id = $1 AND gone_at IS NULL")
        .bind(account_id)
        .fetch_all(&mut *tx)
        .await?;
    let mut by_iid: HashMap<String, InstanceRow> = existing
        .into_iter()
        .map(|r| (r.instance_id.clone(), r))
        .collect();
    // New and changed instances are collected, then written in multi-row statements (a
    // large account is a handful of writes per discovery, not one per instance).
    let mut fresh: Vec<(&InstanceRec, Option<String>)> = Vec::new();
    let mut changed: Vec<(String, &InstanceRec, Option<String>)> = Vec::new();
    let mut events: Vec<(String, &'static str, serde_json::Value)> = Vec::new();
    let mut listed = std::collections::HashSet::new();
    for i in &snap.instances {
        report.instances.total += 1;
        if !listed.insert(i.instance_id.as_str()) {
            continue;
        }
        let cluster_id = i
            .cluster_name
            .as_ref()
            .and_then(|n| cluster_ids.get(n))
            .cloned();
        match by_iid.remove(&i.instance_id) {
            Some(row) => {
                let differs = row.cluster_id != cluster_id
                    || row.instance_type != i.instance_type
                    || row.lifecycle != i.lifecycle
                    || row.state != i.state
                    || row.az != i.az
                    || row.node_group != i.node_group
                    || row.asg_name != i.asg_name
                    || row.tags != i.tags
                    || (row.hourly_price - i.hourly_price).abs() > 1e-9
                    || (row.on_demand_hourly - i.on_demand_hourly).abs() > 1e-9;
                if differs {
                    report.instances.changed += 1;
                    if row.state != i.state || row.lifecycle != i.lifecycle {
                        events.push((row.id.clone(), "changed", serde_json::json!({"state": [row.state, i.state], "lifecycle": [row.lifecycle, i.lifecycle]})));
                    }
                    changed.push((row.id, i, cluster_id));
                }
            }
            None => {
                report.instances.new += 1;
                fresh.push((i, cluster_id));
            }
        }
    }
    for chunk in changed.chunks(APPLY_ROWS) {
        // `VALUES` columns are `column1…column11` on both SQLite and PostgreSQL.
        let sql = format!(
            "UPDATE instances SET cluster_id = v.column2, instance_type = v.column3, lifecycle = v.column4, state = v.column5, az = v.column6, \
             node_group = v.column7, asg_name = v.column8, tags = v.column9, hourly_price = v.column10, on_demand_hourly = v.column11 \
             FROM (VALUES {}) AS v WHERE instances.id = v.column1",
            crate::values_rows(chunk.len(), 11)
        );
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
        for (id, i, cluster_id) in chunk {
            q = q
                .bind(id.clone())
                .bind(cluster_id.clone())
                .bind(&i.instance_type)
                .bind(&i.lifecycle)
                .bind(&i.state)
                .bind(&i.az)
                .bind(i.node_group.clone())
                .bind(i.asg_name.clone())
                .bind(&i.tags)
                .bind(i.hourly_price)
                .bind(i.on_demand_hourly);
        }
        q.execute(&mut *tx).await?;
    }
    for chunk in fresh.chunks(APPLY_ROWS) {
        let sql = format!(
            "INSERT INTO instances (id, organization_id, account_id, cluster_id, instance_id, instance_type, lifecycle, state, az, node_group, asg_name, tags, launch_time, hourly_price, on_demand_hourly, first_seen_at, last_seen_at) \
             VALUES {} \
             ON CONFLICT (account_id, instance_id) DO UPDATE SET gone_at = NULL, state = excluded.state, cluster_id = excluded.cluster_id, last_seen_at = excluded.last_seen_at \
             RETURNING id, instance_id",
            crate::values_rows(chunk.len(), 17)
        );
        let mut q = sqlx::query_as::<_, (String, String)>(sqlx::AssertSqlSafe(sql));
        for (i, cluster_id) in chunk {
            q = q
                .bind(new_id())
                .bind(org_id)
                .bind(account_id)
                .bind(cluster_id.clone())
                .bind(&i.instance_id)
                .bind(&i.instance_type)
                .bind(&i.lifecycle)
                .bind(&i.state)
                .bind(&i.az)
                .bind(i.node_group.clone())
                .bind(i.asg_name.clone())
                .bind(&i.tags)
                .bind(i.launch_time)
                .bind(i.hourly_price)
                .bind(i.on_demand_hourly)
                .bind(now)
                .bind(now);
        }
        // The row id that holds each instance (a re-discovered one keeps its old row).
        let ids: HashMap<String, String> = q
            .fetch_all(&mut *tx)
            .await?
            .into_iter()
            .map(|(id, iid)| (iid, id))
            .collect();
        for (i, _) in chunk {
            if let Some(id) = ids.get(&i.instance_id) {
                events.push((id.clone(), "discovered", serde_json::json!({"instance_type": i.instance_type, "lifecycle": i.lifecycle, "az": i.az})));
            }
        }
    }
    let gone: Vec<String> = by_iid.into_values().map(|r| r.id).collect();
    report.instances.gone = gone.len() as i64;
    for id in &gone {
        events.push((
            id.clone(),
            "gone",
            serde_json::json!({"state": "terminated"}),
        ));
    }
    insert_events(&mut tx, org_id, now, &events).await?;
    touch_and_retire(
        &mut tx,
        "instances",
        account_id,
        now,
        &gone,
        ", state = 'terminated'",
    )
    .await?;

    // Volumes: every live volume is upserted (state and attachment change often), in
    // multi-row statements so a large account is a handful of writes, not one per volume.
    let existing = live_ids(&mut tx, "volumes", "volume_id", account_id).await?;
    let mut seen = existing.clone();
    let mut volumes: Vec<&VolumeRec> = Vec::with_capacity(snap.volumes.len());
    let mut listed = std::collections::HashSet::new();
    for v in &snap.volumes {
        report.volumes.total += 1;
        if seen.remove(&v.volume_id).is_none() && !existing.contains_key(&v.volume_id) {
            report.volumes.new += 1;
        }
        // One row per volume id: PostgreSQL refuses to upsert a row twice in a statement.
        if listed.insert(v.volume_id.as_str()) {
            volumes.push(v);
        }
    }
    for chunk in volumes.chunks(APPLY_ROWS) {
        let sql = format!(
            "INSERT INTO volumes (id, organization_id, account_id, volume_id, size_gib, volume_type, state, attached_instance_id, last_attached_at, created_at, monthly_cost, first_seen_at, last_seen_at) \
             VALUES {} \
             ON CONFLICT (account_id, volume_id) DO UPDATE SET gone_at = NULL, size_gib = excluded.size_gib, volume_type = excluded.volume_type, state = excluded.state, \
             attached_instance_id = excluded.attached_instance_id, last_attached_at = COALESCE(excluded.last_attached_at, volumes.last_attached_at), monthly_cost = excluded.monthly_cost",
            crate::values_rows(chunk.len(), 13)
        );
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
        for v in chunk {
            q = q
                .bind(new_id())
                .bind(org_id)
                .bind(account_id)
                .bind(&v.volume_id)
                .bind(v.size_gib)
                .bind(&v.volume_type)
                .bind(&v.state)
                .bind(v.attached_instance_id.clone())
                .bind(v.last_attached_at)
                .bind(v.created_at)
                .bind(v.monthly_cost)
                .bind(now)
                .bind(now);
        }
        q.execute(&mut *tx).await?;
    }
    let gone: Vec<String> = seen.into_values().collect();
    report.volumes.gone = gone.len() as i64;
    touch_and_retire(&mut tx, "volumes", account_id, now, &gone, "").await?;

    // Snapshots: only new ones are written (a snapshot never changes), also in batches.
    let existing = live_ids(&mut tx, "snapshots", "snapshot_id", account_id).await?;
    let mut seen = existing.clone();
    let mut fresh: Vec<&SnapshotRec> = Vec::new();
    let mut listed = std::collections::HashSet::new();
    for s in &snap.snapshots {
        report.snapshots.total += 1;
        if seen.remove(&s.snapshot_id).is_none()
            && !existing.contains_key(&s.snapshot_id)
            && listed.insert(s.snapshot_id.as_str())
        {
            report.snapshots.new += 1;
            fresh.push(s);
        }
    }
    for chunk in fresh.chunks(APPLY_ROWS) {
        let sql = format!(
            "INSERT INTO snapshots (id, organization_id, account_id, snapshot_id, volume_id, source_ami, started_at, size_gib, monthly_cost, first_seen_at, last_seen_at) \
             VALUES {} ON CONFLICT (account_id, snapshot_id) DO UPDATE SET gone_at = NULL",
            crate::values_rows(chunk.len(), 11)
        );
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
        for s in chunk {
            q = q
                .bind(new_id())
                .bind(org_id)
                .bind(account_id)
                .bind(&s.snapshot_id)
                .bind(s.volume_id.clone())
                .bind(s.source_ami.clone())
                .bind(s.started_at)
                .bind(s.size_gib)
                .bind(s.monthly_cost)
                .bind(now)
                .bind(now);
        }
        q.execute(&mut *tx).await?;
    }
    let gone: Vec<String> = seen.into_values().collect();
    report.snapshots.gone = gone.len() as i64;
    touch_and_retire(&mut tx, "snapshots", account_id, now, &gone, "").await?;

    // One metrics point per cluster for the time-series views.
    for c in &snap.clusters {
        let Some(cid) = cluster_ids.get(&c.name) else {
            continue;
        };
        let members = snap.instances.iter().filter(|i| {
            i.cluster_name.as_deref() == Some(&c.name)
                && (i.state == "running" || i.state == "pending")
        });
        let (mut nodes, mut spot, mut cost, mut od) = (0i64, 0i64, 0f64, 0f64);
        for i in members {
            nodes += 1;
            if i.lifecycle == "spot" {
                spot += 1;
            }
            cost += i.hourly_price;
            od += i.on_demand_hourly;
        }
        sqlx::query("INSERT INTO cluster_metrics (cluster_id, organization_id, ts, node_count, spot_node_count, pod_count, cpu_allocatable_m, cpu_requested_m, cpu_used_m, mem_allocatable_mib, mem_requested_mib, mem_used_mib, hourly_cost, on_demand_hourly_cost) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14) ON CONFLICT (cluster_id, ts) DO NOTHING")
            .bind(cid).bind(org_id).bind(now).bind(nodes).bind(spot).bind(c.pod_count).bind(c.cpu_allocatable_m).bind(c.cpu_requested_m).bind(c.cpu_used_m)
            .bind(c.mem_allocatable_mib).bind(c.mem_requested_mib).bind(c.mem_used_mib).bind(cost).bind(od)
            .execute(&mut *tx).await?;
    }
    tx.commit().await?;
    Ok(report)
}

/// The instance events of one discovery, in multi-row statements.
async fn insert_events(
    tx: &mut Transaction<'_, Any>,
    org_id: &str,
    ts: i64,
    events: &[(String, &'static str, serde_json::Value)],
) -> Result<()> {
    for chunk in events.chunks(APPLY_ROWS) {
        let sql = format!(
            "INSERT INTO instance_events (id, organization_id, instance_row_id, ts, kind, detail) VALUES {}",
            crate::values_rows(chunk.len(), 6)
        );
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
        for (row_id, kind, detail) in chunk {
            q = q
                .bind(new_id())
                .bind(org_id)
                .bind(row_id.clone())
                .bind(ts)
                .bind(*kind)
                .bind(detail.to_string());
        }
        q.execute(&mut **tx).await?;
    }
    Ok(())
}

#[derive(Debug, Clone, sqlx::FromRow)]
struct ClusterRow {
    id: String,
    name: String,
    provider: String,
    region: String,
    version: Option<String>,
    status: String,
    environment: Option<String>,
    node_groups: String,
    tags: String,
    node_count: i64,
    pod_count: i64,
    cpu_allocatable_m: i64,
    cpu_requested_m: i64,
    cpu_used_m: i64,
    mem_allocatable_mib: i64,
    mem_requested_mib: i64,
    mem_used_mib: i64,
}

impl ClusterRow {
    fn rec(&self) -> ClusterRec {
        ClusterRec {
            name: self.name.clone(),
            provider: self.provider.clone(),
            region: self.region.clone(),
            version: self.version.clone(),
            status: self.status.clone(),
            environment: self.environment.clone(),
            node_groups: self.node_groups.clone(),
            tags: self.tags.clone(),
            node_count: self.node_count,
            pod_count: self.pod_count,
            cpu_allocatable_m: self.cpu_allocatable_m,
            cpu_requested_m: self.cpu_requested_m,
            cpu_used_m: self.cpu_used_m,
            mem_allocatable_mib: self.mem_allocatable_mib,
            mem_requested_mib: self.mem_requested_mib,
            mem_used_mib: self.mem_used_mib,
        }
    }
}

#[derive(Debug, Clone, sqlx::FromRow)]
struct InstanceRow {
    id: String,
    instance_id: String,
    cluster_id: Option<String>,
    instance_type: String,
    lifecycle: String,
    state: String,
    az: String,
    node_group: Option<String>,
    asg_name: Option<String>,
    tags: String,
    hourly_price: f64,
    on_demand_hourly: f64,
}

// ---------------------------------------------------------------------------------------
// Read side (tenant-scoped). Inventory of disconnected accounts is hidden.

#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct ClusterView {
    pub id: String,
    pub account_id: String,
    pub account_name: String,
    pub name: String,
    pub provider: String,
    pub region: String,
    pub version: Option<String>,
    pub status: String,
    pub environment: Option<String>,
    pub node_groups: String,
    pub tags: String,
    pub node_count: i64,
    pub pod_count: i64,
    pub cpu_allocatable_m: i64,
    pub cpu_requested_m: i64,
    pub cpu_used_m: i64,
    pub mem_allocatable_mib: i64,
    pub mem_requested_mib: i64,
    pub mem_used_mib: i64,
    pub last_seen_at: i64,
    /// Sum of current hourly prices of the cluster's billed instances.
    pub hourly_cost: f64,
    /// What the same instances would cost on demand.
    pub on_demand_hourly: f64,
    pub instance_count: i64,
    pub spot_count: i64,
}

#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct InstanceView {
    pub id: String,
    pub account_id: String,
    pub cluster_id: Option<String>,
    pub instance_id: String,
    pub instance_type: String,
    pub lifecycle: String,
    pub state: String,
    pub az: String,
    pub node_group: Option<String>,
    pub asg_name: Option<String>,
    pub tags: String,
    pub launch_time: Option<i64>,
    pub hourly_price: f64,
    pub on_demand_hourly: f64,
    pub first_seen_at: i64,
    pub last_seen_at: i64,
    pub gone_at: Option<i64>,
    pub region: Option<String>,
}

#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct VolumeView {
    pub id: String,
    pub account_id: String,
    pub volume_id: String,
    pub size_gib: i64,
    pub volume_type: String,
    pub state: String,
    pub last_attached_at: Option<i64>,
    pub created_at: Option<i64>,
    pub monthly_cost: f64,
}

#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct SnapshotView {
    pub id: String,
    pub account_id: String,
    pub snapshot_id: String,
    pub volume_id: Option<String>,
    pub source_ami: Option<String>,
    pub started_at: Option<i64>,
    pub size_gib: i64,
    pub monthly_cost: f64,
}

#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct InstanceEvent {
    pub ts: i64,
    pub kind: String,
    pub detail: String,
}

const CLUSTER_SELECT: &str = "SELECT c.id AS id, c.account_id AS account_id, a.name AS account_name, c.name AS name, c.provider AS provider, c.region AS region, \
    c.version AS version, c.status AS status, c.environment AS environment, c.node_groups AS node_groups, c.tags AS tags, c.node_count AS node_count, \
    c.pod_count AS pod_count, c.cpu_allocatable_m AS cpu_allocatable_m, c.cpu_requested_m AS cpu_requested_m, c.cpu_used_m AS cpu_used_m, \
    c.mem_allocatable_mib AS mem_allocatable_mib, c.mem_requested_mib AS mem_requested_mib, c.mem_used_mib AS mem_used_mib, c.last_seen_at AS last_seen_at, \
    CAST(COALESCE((SELECT SUM(i.hourly_price) FROM instances i WHERE i.cluster_id = c.id AND i.gone_at IS NULL), 0) AS DOUBLE PRECISION) AS hourly_cost, \
    CAST(COALESCE((SELECT SUM(i.on_demand_hourly) FROM instances i WHERE i.cluster_id = c.id AND i.gone_at IS NULL), 0) AS DOUBLE PRECISION) AS on_demand_hourly, \
    (SELECT COUNT(*) FROM instances i WHERE i.cluster_id = c.id AND i.gone_at IS NULL AND i.state IN ('running', 'pending')) AS instance_count, \
    (SELECT COUNT(*) FROM instances i WHERE i.cluster_id = c.id AND i.gone_at IS NULL AND i.state IN ('running', 'pending') AND i.lifecycle = 'spot') AS spot_count \
    FROM clusters c JOIN accounts a ON a.id = c.account_id \
    WHERE c.organization_id = $1 AND c.gone_at IS NULL AND a.status <> 'disconnected'";

pub async fn list_clusters(
    db: &Db,
    org_id: &str,
    account_id: Option<&str>,
) -> Result<Vec<ClusterView>> {
    let sql = match account_id {
        Some(_) => format!("{CLUSTER_SELECT} AND c.account_id = $2 ORDER BY c.name"),
        None => format!("{CLUSTER_SELECT} ORDER BY c.name"),
    };
    let mut q = sqlx::query_as::<_, ClusterView>(sqlx::AssertSqlSafe(sql)).bind(org_id);
    if let Some(a) = account_id {
        q = q.bind(a);
    }
    Ok(q.fetch_all(&db.pool).await?)
}

pub async fn cluster(db: &Db, org_id: &str, id: &str) -> Result<Option<ClusterView>> {
    Ok(
        sqlx::query_as::<_, ClusterView>(sqlx::AssertSqlSafe(format!(
            "{CLUSTER_SELECT} AND c.id = $2"
        )))
        .bind(org_id)
        .bind(id)
        .fetch_optional(&db.pool)
        .await?,
    )
}

const INSTANCE_SELECT: &str = "SELECT i.id AS id, i.account_id AS account_id, i.cluster_id AS cluster_id, i.instance_id AS instance_id, i.instance_type AS instance_type, \
    i.lifecycle AS lifecycle, i.state AS state, i.az AS az, i.node_group AS node_group, i.asg_name AS asg_name, i.tags AS tags, i.launch_time AS launch_time, \
    i.hourly_price AS hourly_price, i.on_demand_hourly AS on_demand_hourly, i.first_seen_at AS first_seen_at, i.last_seen_at AS last_seen_at, i.gone_at AS gone_at, a.region AS region \
    FROM instances i JOIN accounts a ON a.id = i.account_id WHERE i.organization_id = $1 AND a.status <> 'disconnected'";

pub async fn cluster_instances(
    db: &Db,
    org_id: &str,
    cluster_id: &str,
) -> Result<Vec<InstanceView>> {
    Ok(sqlx::query_as::<_, InstanceView>(sqlx::AssertSqlSafe(format!(
        "{INSTANCE_SELECT} AND i.cluster_id = $2 AND i.gone_at IS NULL ORDER BY i.node_group, i.instance_id"
    )))
    .bind(org_id)
    .bind(cluster_id)
    .fetch_all(&db.pool)
    .await?)
}

/// Live instances of every cluster of an organization, in one query (for cluster lists).
pub async fn clustered_instances(db: &Db, org_id: &str) -> Result<Vec<InstanceView>> {
    Ok(sqlx::query_as::<_, InstanceView>(sqlx::AssertSqlSafe(format!(
        "{INSTANCE_SELECT} AND i.cluster_id IS NOT NULL AND i.gone_at IS NULL ORDER BY i.node_group, i.instance_id"
    )))
    .bind(org_id)
    .fetch_all(&db.pool)
    .await?)
}

pub async fn instance(db: &Db, org_id: &str, id: &str) -> Result<Option<InstanceView>> {
    Ok(
        sqlx::query_as::<_, InstanceView>(sqlx::AssertSqlSafe(format!(
            "{INSTANCE_SELECT} AND i.id = $2"
        )))
        .bind(org_id)
        .bind(id)
        .fetch_optional(&db.pool)
        .await?,
    )
}

/// Live instances that belong to no cluster and that nobody authorized (kept on purpose).
pub async fn unregistered(db: &Db, org_id: &str) -> Result<Vec<InstanceView>> {
    Ok(sqlx::query_as::<_, InstanceView>(sqlx::AssertSqlSafe(format!(
        "{INSTANCE_SELECT} AND i.cluster_id IS NULL AND i.gone_at IS NULL AND i.authorized_at IS NULL ORDER BY i.hourly_price DESC, i.instance_id"
    )))
    .bind(org_id)
    .fetch_all(&db.pool)
    .await?)
}

/// Marks unregistered instances (row ids) of `org_id` as authorized by `user_id`: they are
/// kept, leave the waste list, and terminate batches skip them. Returns how many changed.
pub async fn authorize_instances(
    db: &Db,
    org_id: &str,
    row_ids: &[String],
    user_id: &str,
) -> Result<u64> {
    let now = crate::now_ms();
    let mut tx = db.begin_write().await?;
    let mut n = 0;
    for id in row_ids {
        n += sqlx::query(
            "UPDATE instances SET authorized_at = $1, authorized_by = $2 WHERE id = $3 AND organization_id = $4 AND cluster_id IS NULL AND authorized_at IS NULL",
        )
        .bind(now)
        .bind(user_id)
        .bind(id)
        .bind(org_id)
        .execute(&mut *tx)
        .await?
        .rows_affected();
    }
    tx.commit().await?;
    Ok(n)
}

/// When the instance (row id) was authorized, if it was.
pub async fn authorized_at(db: &Db, org_id: &str, row_id: &str) -> Result<Option<i64>> {
    let row: Option<(Option<i64>,)> = sqlx::query_as(
        "SELECT authorized_at FROM instances WHERE id = $1 AND organization_id = $2",
    )
    .bind(row_id)
    .bind(org_id)
    .fetch_optional(&db.pool)
    .await?;
    Ok(row.and_then(|r| r.0))
}

pub async fn instance_history(
    db: &Db,
    org_id: &str,
    instance_row_id: &str,
) -> Result<Vec<InstanceEvent>> {
    Ok(sqlx::query_as::<_, InstanceEvent>("SELECT ts, kind, detail FROM instance_events WHERE organization_id = $1 AND instance_row_id = $2 ORDER BY ts DESC LIMIT 100")
        .bind(org_id)
        .bind(instance_row_id)
        .fetch_all(&db.pool)
        .await?)
}

/// Unattached (`available`) volumes, most expensive first.
pub async fn orphaned_volumes(db: &Db, org_id: &str) -> Result<Vec<VolumeView>> {
    Ok(sqlx::query_as::<_, VolumeView>(
        "SELECT v.id AS id, v.account_id AS account_id, v.volume_id AS volume_id, v.size_gib AS size_gib, v.volume_type AS volume_type, v.state AS state, \
         v.last_attached_at AS last_attached_at, v.created_at AS created_at, v.monthly_cost AS monthly_cost \
         FROM volumes v JOIN accounts a ON a.id = v.account_id \
         WHERE v.organization_id = $1 AND v.gone_at IS NULL AND a.status <> 'disconnected' AND v.attached_instance_id IS NULL AND v.state = 'available' \
         ORDER BY v.monthly_cost DESC, v.volume_id",
    )
    .bind(org_id)
    .fetch_all(&db.pool)
    .await?)
}

/// Snapshots whose source volume no longer exists and that back no image.
pub async fn unused_snapshots(db: &Db, org_id: &str) -> Result<Vec<SnapshotView>> {
    Ok(sqlx::query_as::<_, SnapshotView>(
        "SELECT s.id AS id, s.account_id AS account_id, s.snapshot_id AS snapshot_id, s.volume_id AS volume_id, s.source_ami AS source_ami, \
         s.started_at AS started_at, s.size_gib AS size_gib, s.monthly_cost AS monthly_cost \
         FROM snapshots s JOIN accounts a ON a.id = s.account_id \
         WHERE s.organization_id = $1 AND s.gone_at IS NULL AND a.status <> 'disconnected' AND s.source_ami IS NULL \
         AND (s.volume_id IS NULL OR NOT EXISTS (SELECT 1 FROM volumes v WHERE v.account_id = s.account_id AND v.volume_id = s.volume_id AND v.gone_at IS NULL)) \
         ORDER BY s.monthly_cost DESC, s.snapshot_id",
    )
    .bind(org_id)
    .fetch_all(&db.pool)
    .await?)
}

/// One point of a cluster's metrics time series.
#[derive(Debug, Clone, Serialize, Deserialize, sqlx::FromRow)]
pub struct MetricPoint {
    pub cluster_name: String,
    /// Set when read back (`metrics`); empty when written.
    #[sqlx(default)]
    pub cluster_id: String,
    pub ts: i64,
    pub node_count: i64,
    pub spot_node_count: i64,
    pub pod_count: i64,
    pub cpu_allocatable_m: i64,
    pub cpu_requested_m: i64,
    pub cpu_used_m: i64,
    pub mem_allocatable_mib: i64,
    pub mem_requested_mib: i64,
    pub mem_used_mib: i64,
    pub hourly_cost: f64,
    pub on_demand_hourly_cost: f64,
}

/// Stores history points (existing timestamps are kept).
pub async fn insert_metrics(
    db: &Db,
    org_id: &str,
    account_id: &str,
    points: &[MetricPoint],
) -> Result<usize> {
    let mut tx = db.begin_write().await?;
    let ids: Vec<(String, String)> =
        sqlx::query_as("SELECT name, id FROM clusters WHERE account_id = $1 AND gone_at IS NULL")
            .bind(account_id)
            .fetch_all(&mut *tx)
            .await?;
    let ids: HashMap<String, String> = ids.into_iter().collect();
    let mut n = 0;
    for p in points {
        let Some(cid) = ids.get(&p.cluster_name) else {
            continue;
        };
        sqlx::query("INSERT INTO cluster_metrics (cluster_id, organization_id, ts, node_count, spot_node_count, pod_count, cpu_allocatable_m, cpu_requested_m, cpu_used_m, mem_allocatable_mib, mem_requested_mib, mem_used_mib, hourly_cost, on_demand_hourly_cost) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14) ON CONFLICT (cluster_id, ts) DO NOTHING")
            .bind(cid).bind(org_id).bind(p.ts).bind(p.node_count).bind(p.spot_node_count).bind(p.pod_count).bind(p.cpu_allocatable_m).bind(p.cpu_requested_m)
            .bind(p.cpu_used_m).bind(p.mem_allocatable_mib).bind(p.mem_requested_mib).bind(p.mem_used_mib).bind(p.hourly_cost).bind(p.on_demand_hourly_cost)
            .execute(&mut *tx).await?;
        n += 1;
    }
    tx.commit().await?;
    Ok(n)
}

/// Milliseconds in an hour, the bucket of the metrics series.
pub const HOUR_MS: i64 = 3_600_000;

/// Buckets points by the hour they fall in (keyed by the hour's start, ms) and keeps each
/// cluster's latest point within an hour: accounts are discovered at different moments and
/// a cluster may be discovered several times an hour.
pub fn latest_per_hour(points: &[MetricPoint]) -> BTreeMap<i64, BTreeMap<&str, &MetricPoint>> {
    let mut out: BTreeMap<i64, BTreeMap<&str, &MetricPoint>> = BTreeMap::new();
    for p in points {
        let slot = out
            .entry(p.ts.div_euclid(HOUR_MS) * HOUR_MS)
            .or_default()
            .entry(p.cluster_id.as_str())
            .or_insert(p);
        if p.ts > slot.ts {
            *slot = p;
        }
    }
    out
}

/// Metrics of the organization's live clusters since `from_ms` (optionally one account or
/// cluster), oldest first.
pub async fn metrics(
    db: &Db,
    org_id: &str,
    from_ms: i64,
    account_id: Option<&str>,
    cluster_id: Option<&str>,
) -> Result<Vec<MetricPoint>> {
    let mut sql = String::from(
        "SELECT c.name AS cluster_name, c.id AS cluster_id, m.ts AS ts, m.node_count AS node_count, m.spot_node_count AS spot_node_count, m.pod_count AS pod_count, \
         m.cpu_allocatable_m AS cpu_allocatable_m, m.cpu_requested_m AS cpu_requested_m, m.cpu_used_m AS cpu_used_m, m.mem_allocatable_mib AS mem_allocatable_mib, \
         m.mem_requested_mib AS mem_requested_mib, m.mem_used_mib AS mem_used_mib, m.hourly_cost AS hourly_cost, m.on_demand_hourly_cost AS on_demand_hourly_cost \
         FROM cluster_metrics m JOIN clusters c ON c.id = m.cluster_id JOIN accounts a ON a.id = c.account_id \
         WHERE m.organization_id = $1 AND m.ts >= $2 AND c.gone_at IS NULL AND a.status <> 'disconnected'",
    );
    let mut i = 3;
    if account_id.is_some() {
        sql.push_str(&format!(" AND c.account_id = ${i}"));
        i += 1;
    }
    if cluster_id.is_some() {
        sql.push_str(&format!(" AND c.id = ${i}"));
    }
    sql.push_str(" ORDER BY m.ts, c.name");
    let mut q = sqlx::query_as::<_, MetricPoint>(sqlx::AssertSqlSafe(sql))
        .bind(org_id)
        .bind(from_ms);
    if let Some(a) = account_id {
        q = q.bind(a);
    }
    if let Some(c) = cluster_id {
        q = q.bind(c);
    }
    Ok(q.fetch_all(&db.pool).await?)
}

/// Live instances of the organization (optionally one account), billed or not.
pub async fn live_instances(
    db: &Db,
    org_id: &str,
    account_id: Option<&str>,
) -> Result<Vec<InstanceView>> {
    let sql = match account_id {
        Some(_) => format!("{INSTANCE_SELECT} AND i.gone_at IS NULL AND i.account_id = $2"),
        None => format!("{INSTANCE_SELECT} AND i.gone_at IS NULL"),
    };
    let mut q = sqlx::query_as::<_, InstanceView>(sqlx::AssertSqlSafe(sql)).bind(org_id);
    if let Some(a) = account_id {
        q = q.bind(a);
    }
    Ok(q.fetch_all(&db.pool).await?)
}

/// Monthly EBS cost (volumes and snapshots) of the organization's live storage.
pub async fn storage_monthly(db: &Db, org_id: &str, account_id: Option<&str>) -> Result<f64> {
    let filter = if account_id.is_some() {
        " AND x.account_id = $2"
    } else {
        ""
    };
    let mut total = 0.0;
    for table in ["volumes", "snapshots"] {
        let sql = format!(
            "SELECT CAST(COALESCE(SUM(x.monthly_cost), 0) AS DOUBLE PRECISION) FROM {table} x JOIN accounts a ON a.id = x.account_id \
             WHERE x.organization_id = $1 AND x.gone_at IS NULL AND a.status <> 'disconnected'{filter}"
        );
        let mut q = sqlx::query_as::<_, (f64,)>(sqlx::AssertSqlSafe(sql)).bind(org_id);
        if let Some(a) = account_id {
            q = q.bind(a);
        }
        total += q.fetch_one(&db.pool).await?.0;
    }
    Ok(total)
}

/// A cluster's figures as its in-cluster agent's view gives them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ViewFigures {
    pub node_count: i64,
    pub pod_count: i64,
    pub cpu_allocatable_m: i64,
    pub cpu_requested_m: i64,
    pub mem_allocatable_mib: i64,
    pub mem_requested_mib: i64,
    /// Sums of the nodes' latest metrics readings; `None` without the metrics API.
    pub used: Option<(i64, i64)>,
}

/// Writes an agent view's figures onto the cluster row (usage only when measured), so the
/// dashboards follow the agent without waiting for the next discovery.
pub async fn set_cluster_figures(db: &Db, cluster_id: &str, f: &ViewFigures) -> Result<()> {
    sqlx::query(
        "UPDATE clusters SET node_count = $1, pod_count = $2, cpu_allocatable_m = $3, cpu_requested_m = $4, \
         mem_allocatable_mib = $5, mem_requested_mib = $6, cpu_used_m = COALESCE($7, cpu_used_m), mem_used_mib = COALESCE($8, mem_used_mib) \
         WHERE id = $9",
    )
    .bind(f.node_count)
    .bind(f.pod_count)
    .bind(f.cpu_allocatable_m)
    .bind(f.cpu_requested_m)
    .bind(f.mem_allocatable_mib)
    .bind(f.mem_requested_mib)
    .bind(f.used.map(|u| u.0))
    .bind(f.used.map(|u| u.1))
    .bind(cluster_id)
    .execute(&db.pool)
    .await?;
    Ok(())
}

/// The timestamp (ms) of a cluster's oldest metrics point, if it has any.
pub async fn first_metric_ts(db: &Db, cluster_id: &str) -> Result<Option<i64>> {
    let (ts,): (Option<i64>,) =
        sqlx::query_as("SELECT MIN(ts) FROM cluster_metrics WHERE cluster_id = $1")
            .bind(cluster_id)
            .fetch_one(&db.pool)
            .await?;
    Ok(ts)
}
