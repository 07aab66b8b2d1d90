//! Cluster hibernation: the schedule of each cluster (validated by the engine before it
//! reaches here), its state (`awake` / `asleep` / `transitioning`), the Auto Scaling group
//! sizes remembered while it sleeps, and the history of transitions (for savings).

use serde::Serialize;

use crate::error::Result;
use crate::{new_id, now_ms, Db};

/// A cluster's stored schedule. JSON columns are as the migration describes.
#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow)]
pub struct ScheduleRow {
    pub cluster_id: String,
    pub organization_id: String,
    pub enabled: i64,
    pub slots: String,
    pub timezone: String,
    pub prewarm_minutes: i64,
    pub holidays: String,
    pub overrides: String,
    pub node_groups: String,
    pub protected_namespaces: String,
    pub manual_state: Option<String>,
    pub manual_until: Option<i64>,
    pub manual_by: Option<String>,
    pub updated_by: Option<String>,
    pub updated_at: i64,
}

const SCHEDULE_COLS: &str = "cluster_id, organization_id, enabled, slots, timezone, prewarm_minutes, holidays, overrides, node_groups, protected_namespaces, manual_state, manual_until, manual_by, updated_by, updated_at";

/// The schedule fields a user edits (the manual override is set apart).
pub struct NewSchedule<'a> {
    pub enabled: bool,
    pub slots: &'a str,
    pub timezone: &'a str,
    pub prewarm_minutes: i64,
    pub holidays: &'a str,
    pub overrides: &'a str,
    pub node_groups: &'a str,
    pub protected_namespaces: &'a str,
    pub updated_by: Option<&'a str>,
}

pub async fn schedule(db: &Db, org_id: &str, cluster_id: &str) -> Result<Option<ScheduleRow>> {
    Ok(sqlx::query_as::<_, ScheduleRow>(sqlx::AssertSqlSafe(format!(
        "SELECT {SCHEDULE_COLS} FROM hibernation_schedules WHERE organization_id = $1 AND cluster_id = $2"
    )))
    .bind(org_id)
    .bind(cluster_id)
    .fetch_optional(&db.pool)
    .await?)
}

/// Creates or replaces the cluster's schedule, keeping its manual override.
pub async fn save_schedule(
    db: &Db,
    org_id: &str,
    cluster_id: &str,
    s: &NewSchedule<'_>,
) -> Result<ScheduleRow> {
    sqlx::query(
        "INSERT INTO hibernation_schedules (cluster_id, organization_id, enabled, slots, timezone, prewarm_minutes, holidays, overrides, node_groups, protected_namespaces, updated_by, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) \
         ON CONFLICT (cluster_id) DO UPDATE SET enabled = excluded.enabled, slots = excluded.slots, timezone = excluded.timezone, prewarm_minutes = excluded.prewarm_minutes, holidays = excluded.holidays, overrides = excluded.overrides, node_groups = excluded.node_groups, protected_namespaces = excluded.protected_namespaces, updated_by = excluded.updated_by, updated_at = excluded.updated_at",
    )
    .bind(cluster_id)
    .bind(org_id)
    .bind(i64::from(s.enabled))
    .bind(s.slots)
    .bind(s.timezone)
    .bind(s.prewarm_minutes)
    .bind(s.holidays)
    .bind(s.overrides)
    .bind(s.node_groups)
    .bind(s.protected_namespaces)
    .bind(s.updated_by)
    .bind(now_ms())
    .execute(&db.pool)
    .await?;
    schedule(db, org_id, cluster_id)
        .await?
        .ok_or_else(|| crate::DbError::Corrupt("hibernation schedule vanished".into()))
}

/// Sets (or with `state = None` clears) the manual override. A cluster without a schedule
/// gets `default` first (disabled, so only the override acts).
pub async fn set_manual(
    db: &Db,
    org_id: &str,
    cluster_id: &str,
    state: Option<&str>,
    until: Option<i64>,
    by: Option<&str>,
    default: &NewSchedule<'_>,
) -> Result<ScheduleRow> {
    if schedule(db, org_id, cluster_id).await?.is_none() {
        let _ = save_schedule(db, org_id, cluster_id, default).await;
    }
    sqlx::query("UPDATE hibernation_schedules SET manual_state = $1, manual_until = $2, manual_by = $3, updated_at = $4 WHERE organization_id = $5 AND cluster_id = $6")
        .bind(state)
        .bind(until)
        .bind(by)
        .bind(now_ms())
        .bind(org_id)
        .bind(cluster_id)
        .execute(&db.pool)
        .await?;
    schedule(db, org_id, cluster_id)
        .await?
        .ok_or_else(|| crate::DbError::Corrupt("hibernation schedule vanished".into()))
}

// ---------------------------------------------------------------------------------------
// State

#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow)]
pub struct StateRow {
    pub cluster_id: String,
    pub organization_id: String,
    /// `awake`, `asleep` or `transitioning`.
    pub state: String,
    /// Where a transition is heading (`awake` / `asleep`).
    pub target: Option<String>,
    pub since: i64,
    pub saving_hourly: f64,
    pub last_error: Option<String>,
    pub updated_at: i64,
}

pub async fn state(db: &Db, org_id: &str, cluster_id: &str) -> Result<Option<StateRow>> {
    Ok(sqlx::query_as::<_, StateRow>(
        "SELECT cluster_id, organization_id, state, target, since, saving_hourly, last_error, updated_at FROM hibernation_state WHERE organization_id = $1 AND cluster_id = $2",
    )
    .bind(org_id)
    .bind(cluster_id)
    .fetch_optional(&db.pool)
    .await?)
}

/// Writes the cluster's state; `since` moves only when `state` changes.
pub async fn set_state(
    db: &Db,
    org_id: &str,
    cluster_id: &str,
    state: &str,
    target: Option<&str>,
    saving_hourly: f64,
    last_error: Option<&str>,
) -> Result<()> {
    let now = now_ms();
    sqlx::query(
        "INSERT INTO hibernation_state (cluster_id, organization_id, state, target, since, saving_hourly, last_error, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $5) \
         ON CONFLICT (cluster_id) DO UPDATE SET \
           since = CASE WHEN hibernation_state.state = excluded.state THEN hibernation_state.since ELSE excluded.since END, \
           state = excluded.state, target = excluded.target, saving_hourly = excluded.saving_hourly, \
           last_error = excluded.last_error, updated_at = excluded.updated_at",
    )
    .bind(cluster_id)
    .bind(org_id)
    .bind(state)
    .bind(target)
    .bind(now)
    .bind(saving_hourly)
    .bind(last_error)
    .execute(&db.pool)
    .await?;
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Remembered group sizes

#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct RememberedRow {
    pub asg_name: String,
    pub min_size: i64,
    pub max_size: i64,
    pub desired_capacity: i64,
    pub remembered_at: i64,
}

pub async fn remembered(db: &Db, cluster_id: &str) -> Result<Vec<RememberedRow>> {
    Ok(sqlx::query_as::<_, RememberedRow>(
        "SELECT asg_name, min_size, max_size, desired_capacity, remembered_at FROM hibernation_remembered WHERE cluster_id = $1 ORDER BY asg_name",
    )
    .bind(cluster_id)
    .fetch_all(&db.pool)
    .await?)
}

/// Remembers group sizes; a group already remembered keeps its earlier sizes (a retried
/// sleep must never overwrite the originals with the zeros it set).
pub async fn remember(db: &Db, cluster_id: &str, groups: &[(String, i64, i64, i64)]) -> Result<()> {
    let now = now_ms();
    let mut tx = db.begin_write().await?;
    for (name, min, max, desired) in groups {
        sqlx::query("INSERT INTO hibernation_remembered (cluster_id, asg_name, min_size, max_size, desired_capacity, remembered_at) VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (cluster_id, asg_name) DO NOTHING")
            .bind(cluster_id)
            .bind(name)
            .bind(*min)
            .bind(*max)
            .bind(*desired)
            .bind(now)
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await?;
    Ok(())
}

/// Forgets the remembered sizes (after a complete wake).
pub async fn forget(db: &Db, cluster_id: &str) -> Result<()> {
    sqlx::query("DELETE FROM hibernation_remembered WHERE cluster_id = $1")
        .bind(cluster_id)
        .execute(&db.pool)
        .await?;
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Transitions

#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow)]
pub struct TransitionRow {
    pub id: String,
    pub cluster_id: String,
    pub from_state: String,
    pub to_state: String,
    /// `schedule`, `manual` or `catch_up`.
    pub cause: String,
    pub reason: String,
    /// `success`, `partial` or `failed`.
    pub outcome: String,
    /// Hourly price of the capacity a sleep removed.
    pub saving_hourly: f64,
    /// JSON: groups changed, nodes drained, errors.
    pub detail: String,
    pub at: i64,
}

pub struct NewTransition<'a> {
    pub from_state: &'a str,
    pub to_state: &'a str,
    pub cause: &'a str,
    pub reason: &'a str,
    pub outcome: &'a str,
    pub saving_hourly: f64,
    pub detail: &'a str,
}

pub async fn record_transition(
    db: &Db,
    org_id: &str,
    cluster_id: &str,
    t: &NewTransition<'_>,
) -> Result<TransitionRow> {
    let row = TransitionRow {
        id: new_id(),
        cluster_id: cluster_id.to_string(),
        from_state: t.from_state.to_string(),
        to_state: t.to_state.to_string(),
        cause: t.cause.to_string(),
        reason: t.reason.to_string(),
        outcome: t.outcome.to_string(),
        saving_hourly: t.saving_hourly,
        detail: t.detail.to_string(),
        at: now_ms(),
    };
    sqlx::query("INSERT INTO hibernation_transitions (id, organization_id, cluster_id, from_state, to_state, cause, reason, outcome, saving_hourly, detail, at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)")
        .bind(&row.id)
        .bind(org_id)
        .bind(cluster_id)
        .bind(&row.from_state)
        .bind(&row.to_state)
        .bind(&row.cause)
        .bind(&row.reason)
        .bind(&row.outcome)
        .bind(row.saving_hourly)
        .bind(&row.detail)
        .bind(row.at)
        .execute(&db.pool)
        .await?;
    Ok(row)
}

const TRANSITION_COLS: &str =
    "id, cluster_id, from_state, to_state, cause, reason, outcome, saving_hourly, detail, at";

/// Transitions at or after `since_ms`, oldest first, plus the last one before it (the
/// state the period starts in).
pub async fn transitions_since(
    db: &Db,
    org_id: &str,
    cluster_id: &str,
    since_ms: i64,
) -> Result<Vec<TransitionRow>> {
    let before: Option<TransitionRow> = sqlx::query_as::<_, TransitionRow>(sqlx::AssertSqlSafe(format!(
        "SELECT {TRANSITION_COLS} FROM hibernation_transitions WHERE organization_id = $1 AND cluster_id = $2 AND at < $3 AND outcome <> 'failed' ORDER BY at DESC LIMIT 1"
    )))
    .bind(org_id)
    .bind(cluster_id)
    .bind(since_ms)
    .fetch_optional(&db.pool)
    .await?;
    let mut rows: Vec<TransitionRow> = before.into_iter().collect();
    rows.extend(
        sqlx::query_as::<_, TransitionRow>(sqlx::AssertSqlSafe(format!(
            "SELECT {TRANSITION_COLS} FROM hibernation_transitions WHERE organization_id = $1 AND cluster_id = $2 AND at >= $3 ORDER BY at, id"
        )))
        .bind(org_id)
        .bind(cluster_id)
        .bind(since_ms)
        .fetch_all(&db.pool)
        .await?,
    );
    Ok(rows)
}

/// The latest transitions, newest first.
pub async fn recent_transitions(
    db: &Db,
    org_id: &str,
    cluster_id: &str,
    limit: i64,
) -> Result<Vec<TransitionRow>> {
    Ok(sqlx::query_as::<_, TransitionRow>(sqlx::AssertSqlSafe(format!(
        "SELECT {TRANSITION_COLS} FROM hibernation_transitions WHERE organization_id = $1 AND cluster_id = $2 ORDER BY at DESC, id DESC LIMIT $3"
    )))
    .bind(org_id)
    .bind(cluster_id)
    .bind(limit)
    .fetch_all(&db.pool)
    .await?)
}
