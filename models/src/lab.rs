//! The Lab (super-admins only): live single-instance switches with their timed phases,
//! parallel A/B tests of two risk models (instance sets, per-tick samples, every decision
//! with the model that made it), and the graduations with the safety checklist they
//! passed. Platform records: each names the organization whose instances it touched, but
//! only platform administrators read them.

use serde::Serialize;

use crate::error::Result;
use crate::{new_id, now_ms, Db};

pub const QUEUED: &str = "queued";
pub const RUNNING: &str = "running";
pub const SUCCEEDED: &str = "succeeded";
pub const FAILED: &str = "failed";
/// A/B test statuses besides `running`.
pub const COMPLETED: &str = "completed";
pub const STOPPED: &str = "stopped";

#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct Switch {
    pub id: String,
    pub organization_id: String,
    pub account_id: String,
    pub cluster_id: String,
    pub instance_id: String,
    pub node_name: Option<String>,
    pub model_id: String,
    pub target_type: Option<String>,
    pub chosen_type: Option<String>,
    pub chosen_az: Option<String>,
    pub chosen_lifecycle: Option<String>,
    pub new_instance_id: Option<String>,
    pub job_id: Option<String>,
    pub status: String,
    pub error: Option<String>,
    pub requested_by: String,
    pub created_at: i64,
    pub started_at: Option<i64>,
    pub finished_at: Option<i64>,
}

const SWITCH_COLS: &str = "id, organization_id, account_id, cluster_id, instance_id, node_name, model_id, target_type, chosen_type, chosen_az, chosen_lifecycle, new_instance_id, job_id, status, error, requested_by, created_at, started_at, finished_at";

#[derive(Debug, Clone)]
pub struct NewSwitch<'a> {
    pub organization_id: &'a str,
    pub account_id: &'a str,
    pub cluster_id: &'a str,
    pub instance_id: &'a str,
    pub node_name: Option<&'a str>,
    pub model_id: &'a str,
    pub target_type: Option<&'a str>,
    pub requested_by: &'a str,
}

pub async fn insert_switch(db: &Db, s: NewSwitch<'_>) -> Result<Switch> {
    let id = new_id();
    sqlx::query(
        "INSERT INTO lab_switches (id, organization_id, account_id, cluster_id, instance_id, node_name, model_id, target_type, status, requested_by, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
    )
    .bind(&id)
    .bind(s.organization_id)
    .bind(s.account_id)
    .bind(s.cluster_id)
    .bind(s.instance_id)
    .bind(s.node_name)
    .bind(s.model_id)
    .bind(s.target_type)
    .bind(QUEUED)
    .bind(s.requested_by)
    .bind(now_ms())
    .execute(&db.pool)
    .await?;
    switch(db, &id)
        .await?
        .ok_or_else(|| crate::DbError::Corrupt("lab switch vanished".into()))
}

pub async fn set_switch_job(db: &Db, id: &str, job_id: &str) -> Result<()> {
    sqlx::query("UPDATE lab_switches SET job_id = $1 WHERE id = $2")
        .bind(job_id)
        .bind(id)
        .execute(&db.pool)
        .await?;
    Ok(())
}

pub async fn switch(db: &Db, id: &str) -> Result<Option<Switch>> {
    Ok(sqlx::query_as::<_, Switch>(sqlx::AssertSqlSafe(format!(
        "SELECT {SWITCH_COLS} FROM lab_switches WHERE id = $1"
    )))
    .bind(id)
    .fetch_optional(&db.pool)
    .await?)
}

pub async fn switch_of_job(db: &Db, job_id: &str) -> Result<Option<Switch>> {
    Ok(sqlx::query_as::<_, Switch>(sqlx::AssertSqlSafe(format!(
        "SELECT {SWITCH_COLS} FROM lab_switches WHERE job_id = $1"
    )))
    .bind(job_id)
    .fetch_optional(&db.pool)
    .await?)
}

/// Newest first.
pub async fn list_switches(db: &Db, limit: i64) -> Result<Vec<Switch>> {
    Ok(sqlx::query_as::<_, Switch>(sqlx::AssertSqlSafe(format!(
        "SELECT {SWITCH_COLS} FROM lab_switches ORDER BY created_at DESC, id LIMIT $1"
    )))
    .bind(limit)
    .fetch_all(&db.pool)
    .await?)
}

pub async fn switches_of_model(db: &Db, model_id: &str) -> Result<Vec<Switch>> {
    Ok(sqlx::query_as::<_, Switch>(sqlx::AssertSqlSafe(format!(
        "SELECT {SWITCH_COLS} FROM lab_switches WHERE model_id = $1 ORDER BY created_at, id"
    )))
    .bind(model_id)
    .fetch_all(&db.pool)
    .await?)
}

pub async fn start_switch(db: &Db, id: &str) -> Result<()> {
    sqlx::query("UPDATE lab_switches SET status = $1, started_at = $2 WHERE id = $3")
        .bind(RUNNING)
        .bind(now_ms())
        .bind(id)
        .execute(&db.pool)
        .await?;
    Ok(())
}

/// Records where the model sent the replacement.
pub async fn set_switch_choice(
    db: &Db,
    id: &str,
    instance_type: &str,
    az: &str,
    lifecycle: &str,
) -> Result<()> {
    sqlx::query(
        "UPDATE lab_switches SET chosen_type = $1, chosen_az = $2, chosen_lifecycle = $3 WHERE id = $4",
    )
    .bind(instance_type)
    .bind(az)
    .bind(lifecycle)
    .bind(id)
    .execute(&db.pool)
    .await?;
    Ok(())
}

pub async fn set_switch_new_instance(db: &Db, id: &str, instance_id: &str) -> Result<()> {
    sqlx::query("UPDATE lab_switches SET new_instance_id = $1 WHERE id = $2")
        .bind(instance_id)
        .bind(id)
        .execute(&db.pool)
        .await?;
    Ok(())
}

/// Ends a switch (`succeeded` or `failed`); a switch already ended is left as it is.
pub async fn finish_switch(db: &Db, id: &str, status: &str, error: Option<&str>) -> Result<()> {
    sqlx::query(
        "UPDATE lab_switches SET status = $1, error = $2, finished_at = $3 WHERE id = $4 AND status IN ('queued', 'running')",
    )
    .bind(status)
    .bind(error)
    .bind(now_ms())
    .bind(id)
    .execute(&db.pool)
    .await?;
    Ok(())
}

#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct Phase {
    pub switch_id: String,
    pub seq: i64,
    pub name: String,
    /// `running`, `done`, `skipped` or `failed`.
    pub status: String,
    pub started_at: i64,
    pub finished_at: Option<i64>,
    pub duration_ms: Option<i64>,
    /// JSON.
    pub detail: String,
}

/// Opens phase `seq` (`running`).
pub async fn start_phase(db: &Db, switch_id: &str, seq: i64, name: &str, at: i64) -> Result<()> {
    sqlx::query(
        "INSERT INTO lab_switch_phases (switch_id, seq, name, status, started_at, detail) VALUES ($1, $2, $3, $4, $5, '{}')",
    )
    .bind(switch_id)
    .bind(seq)
    .bind(name)
    .bind(RUNNING)
    .bind(at)
    .execute(&db.pool)
    .await?;
    Ok(())
}

/// Closes phase `seq` with its outcome and measured duration.
pub async fn end_phase(
    db: &Db,
    switch_id: &str,
    seq: i64,
    status: &str,
    at: i64,
    duration_ms: i64,
    detail: &str,
) -> Result<()> {
    sqlx::query(
        "UPDATE lab_switch_phases SET status = $1, finished_at = $2, duration_ms = $3, detail = $4 WHERE switch_id = $5 AND seq = $6",
    )
    .bind(status)
    .bind(at)
    .bind(duration_ms)
    .bind(detail)
    .bind(switch_id)
    .bind(seq)
    .execute(&db.pool)
    .await?;
    Ok(())
}

/// Phases in execution order.
pub async fn phases(db: &Db, switch_id: &str) -> Result<Vec<Phase>> {
    Ok(sqlx::query_as::<_, Phase>(
        "SELECT switch_id, seq, name, status, started_at, finished_at, duration_ms, detail FROM lab_switch_phases WHERE switch_id = $1 ORDER BY seq",
    )
    .bind(switch_id)
    .fetch_all(&db.pool)
    .await?)
}

// ---------------------------------------------------------------- A/B tests

#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct AbTest {
    pub id: String,
    pub name: String,
    pub organization_id: String,
    pub account_id: String,
    pub model_a: String,
    pub model_b: String,
    pub tag_a: String,
    pub tag_b: String,
    pub status: String,
    pub tick_secs: i64,
    pub starts_at: i64,
    pub ends_at: i64,
    pub next_tick_at: i64,
    pub ticks: i64,
    pub last_event_at: Option<i64>,
    /// JSON verdict once the test ended.
    pub verdict: Option<String>,
    pub error: Option<String>,
    pub created_by: String,
    pub created_at: i64,
    pub finished_at: Option<i64>,
}

const AB_COLS: &str = "id, name, organization_id, account_id, model_a, model_b, tag_a, tag_b, status, tick_secs, starts_at, ends_at, next_tick_at, ticks, last_event_at, verdict, error, created_by, created_at, finished_at";

impl AbTest {
    pub fn model_of(&self, arm: &str) -> &str {
        if arm == "a" {
            &self.model_a
        } else {
            &self.model_b
        }
    }
    pub fn tag_of(&self, arm: &str) -> &str {
        if arm == "a" {
            &self.tag_a
        } else {
            &self.tag_b
        }
    }
}

#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct Member {
    pub test_id: String,
    pub arm: String,
    pub slot: i64,
    pub original_instance_id: String,
    pub instance_id: String,
    pub instance_type: String,
    pub az: String,
    pub lifecycle: String,
}

#[derive(Debug, Clone)]
pub struct NewAbTest<'a> {
    pub name: &'a str,
    pub organization_id: &'a str,
    pub account_id: &'a str,
    pub model_a: &'a str,
    pub model_b: &'a str,
    pub tag_a: &'a str,
    pub tag_b: &'a str,
    pub tick_secs: i64,
    pub duration_secs: i64,
    pub created_by: &'a str,
}

/// A new running test with its members (arm, instance id, type, AZ, lifecycle), in one
/// transaction. The first tick is due at once.
pub async fn insert_ab_test(
    db: &Db,
    t: NewAbTest<'_>,
    members: &[(String, String, String, String, String)],
) -> Result<AbTest> {
    let id = new_id();
    let now = now_ms();
    let mut tx = db.begin_write().await?;
    sqlx::query(
        "INSERT INTO lab_ab_tests (id, name, organization_id, account_id, model_a, model_b, tag_a, tag_b, status, tick_secs, starts_at, ends_at, next_tick_at, ticks, created_by, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $11, 0, $13, $11)",
    )
    .bind(&id)
    .bind(t.name)
    .bind(t.organization_id)
    .bind(t.account_id)
    .bind(t.model_a)
    .bind(t.model_b)
    .bind(t.tag_a)
    .bind(t.tag_b)
    .bind(RUNNING)
    .bind(t.tick_secs)
    .bind(now)
    .bind(now + t.duration_secs * 1000)
    .bind(t.created_by)
    .execute(&mut *tx)
    .await?;
    let mut slots: std::collections::HashMap<&str, i64> = Default::default();
    for (arm, instance, ty, az, lc) in members {
        let slot = slots.entry(arm.as_str()).or_insert(0);
        sqlx::query(
            "INSERT INTO lab_ab_members (test_id, arm, slot, original_instance_id, instance_id, instance_type, az, lifecycle) VALUES ($1, $2, $3, $4, $4, $5, $6, $7)",
        )
        .bind(&id)
        .bind(arm)
        .bind(*slot)
        .bind(instance)
        .bind(ty)
        .bind(az)
        .bind(lc)
        .execute(&mut *tx)
        .await?;
        *slot += 1;
    }
    tx.commit().await?;
    ab_test(db, &id)
        .await?
        .ok_or_else(|| crate::DbError::Corrupt("A/B test vanished".into()))
}

pub async fn ab_test(db: &Db, id: &str) -> Result<Option<AbTest>> {
    Ok(sqlx::query_as::<_, AbTest>(sqlx::AssertSqlSafe(format!(
        "SELECT {AB_COLS} FROM lab_ab_tests WHERE id = $1"
    )))
    .bind(id)
    .fetch_optional(&db.pool)
    .await?)
}

pub async fn list_ab_tests(db: &Db, limit: i64) -> Result<Vec<AbTest>> {
    Ok(sqlx::query_as::<_, AbTest>(sqlx::AssertSqlSafe(format!(
        "SELECT {AB_COLS} FROM lab_ab_tests ORDER BY created_at DESC, id LIMIT $1"
    )))
    .bind(limit)
    .fetch_all(&db.pool)
    .await?)
}

/// Ended tests (completed or stopped) in which `model_id` was one of the arms, oldest first.
pub async fn ended_tests_of_model(db: &Db, model_id: &str) -> Result<Vec<AbTest>> {
    Ok(sqlx::query_as::<_, AbTest>(sqlx::AssertSqlSafe(format!(
        "SELECT {AB_COLS} FROM lab_ab_tests WHERE (model_a = $1 OR model_b = $1) AND status IN ('completed', 'stopped') ORDER BY created_at, id"
    )))
    .bind(model_id)
    .fetch_all(&db.pool)
    .await?)
}

/// Running tests whose next tick is due at `now`.
pub async fn due_ab_tests(db: &Db, now: i64) -> Result<Vec<AbTest>> {
    Ok(sqlx::query_as::<_, AbTest>(sqlx::AssertSqlSafe(format!(
        "SELECT {AB_COLS} FROM lab_ab_tests WHERE status = $1 AND next_tick_at <= $2 ORDER BY next_tick_at"
    )))
    .bind(RUNNING)
    .bind(now)
    .fetch_all(&db.pool)
    .await?)
}

/// Claims tick number `t.ticks` of a running test for this replica: moves its next tick on
/// only if nobody else did. Returns the claimed tick index.
pub async fn claim_tick(db: &Db, t: &AbTest, now: i64) -> Result<Option<i64>> {
    let next = now + t.tick_secs * 1000;
    let r = sqlx::query(
        "UPDATE lab_ab_tests SET next_tick_at = $1, ticks = ticks + 1 WHERE id = $2 AND status = $3 AND ticks = $4",
    )
    .bind(next)
    .bind(&t.id)
    .bind(RUNNING)
    .bind(t.ticks)
    .execute(&db.pool)
    .await?;
    Ok((r.rows_affected() == 1).then_some(t.ticks))
}

/// Ends a running test with its verdict; `false` when it had already ended.
pub async fn end_ab_test(
    db: &Db,
    id: &str,
    status: &str,
    verdict: &str,
    error: Option<&str>,
) -> Result<bool> {
    let r = sqlx::query(
        "UPDATE lab_ab_tests SET status = $1, verdict = $2, error = $3, finished_at = $4 WHERE id = $5 AND status = $6",
    )
    .bind(status)
    .bind(verdict)
    .bind(error)
    .bind(now_ms())
    .bind(id)
    .bind(RUNNING)
    .execute(&db.pool)
    .await?;
    Ok(r.rows_affected() == 1)
}

pub async fn members(db: &Db, test_id: &str) -> Result<Vec<Member>> {
    Ok(sqlx::query_as::<_, Member>(
        "SELECT test_id, arm, slot, original_instance_id, instance_id, instance_type, az, lifecycle FROM lab_ab_members WHERE test_id = $1 ORDER BY arm, slot",
    )
    .bind(test_id)
    .fetch_all(&db.pool)
    .await?)
}

/// The instance a slot now follows.
#[allow(clippy::too_many_arguments)]
pub async fn move_member(
    db: &Db,
    test_id: &str,
    arm: &str,
    slot: i64,
    instance_id: &str,
    instance_type: &str,
    az: &str,
    lifecycle: &str,
) -> Result<()> {
    sqlx::query(
        "UPDATE lab_ab_members SET instance_id = $1, instance_type = $2, az = $3, lifecycle = $4 WHERE test_id = $5 AND arm = $6 AND slot = $7",
    )
    .bind(instance_id)
    .bind(instance_type)
    .bind(az)
    .bind(lifecycle)
    .bind(test_id)
    .bind(arm)
    .bind(slot)
    .execute(&db.pool)
    .await?;
    Ok(())
}

/// Remembers up to when the spot signals of a test were read.
pub async fn set_last_event_at(db: &Db, test_id: &str, at: i64) -> Result<()> {
    sqlx::query("UPDATE lab_ab_tests SET last_event_at = $1 WHERE id = $2")
        .bind(at)
        .bind(test_id)
        .execute(&db.pool)
        .await?;
    Ok(())
}

#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct Sample {
    pub test_id: String,
    pub tick: i64,
    pub arm: String,
    pub at: i64,
    pub hourly_cost: f64,
    /// What the same instance types would cost on demand (normalises set composition).
    pub on_demand_cost: f64,
    pub running: i64,
    pub interruptions: i64,
    pub decisions: i64,
}

/// Stores one arm's point of a tick (a repeated tick is ignored).
pub async fn insert_sample(db: &Db, s: &Sample) -> Result<()> {
    sqlx::query(
        "INSERT INTO lab_ab_samples (test_id, tick, arm, at, hourly_cost, on_demand_cost, running, interruptions, decisions) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT (test_id, tick, arm) DO NOTHING",
    )
    .bind(&s.test_id)
    .bind(s.tick)
    .bind(&s.arm)
    .bind(s.at)
    .bind(s.hourly_cost)
    .bind(s.on_demand_cost)
    .bind(s.running)
    .bind(s.interruptions)
    .bind(s.decisions)
    .execute(&db.pool)
    .await?;
    Ok(())
}

pub async fn samples(db: &Db, test_id: &str) -> Result<Vec<Sample>> {
    Ok(sqlx::query_as::<_, Sample>(
        "SELECT test_id, tick, arm, at, hourly_cost, on_demand_cost, running, interruptions, decisions FROM lab_ab_samples WHERE test_id = $1 ORDER BY tick, arm",
    )
    .bind(test_id)
    .fetch_all(&db.pool)
    .await?)
}

#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct Decision {
    pub id: String,
    pub test_id: String,
    pub arm: String,
    pub tick: i64,
    pub slot: i64,
    pub model_id: String,
    pub instance_id: String,
    /// `keep`, `move` or `replace` (after an interruption).
    pub action: String,
    pub from_pool: String,
    pub to_pool: Option<String>,
    pub probability: Option<f64>,
    pub reason: String,
    /// `applied`, `kept` or `failed: ...`.
    pub outcome: String,
    pub new_instance_id: Option<String>,
    pub at: i64,
}

pub async fn insert_decision(db: &Db, d: &Decision) -> Result<()> {
    sqlx::query(
        "INSERT INTO lab_decisions (id, test_id, arm, tick, slot, model_id, instance_id, action, from_pool, to_pool, probability, reason, outcome, new_instance_id, at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)",
    )
    .bind(&d.id)
    .bind(&d.test_id)
    .bind(&d.arm)
    .bind(d.tick)
    .bind(d.slot)
    .bind(&d.model_id)
    .bind(&d.instance_id)
    .bind(&d.action)
    .bind(&d.from_pool)
    .bind(&d.to_pool)
    .bind(d.probability)
    .bind(&d.reason)
    .bind(&d.outcome)
    .bind(&d.new_instance_id)
    .bind(d.at)
    .execute(&db.pool)
    .await?;
    Ok(())
}

/// Decisions of a test, newest first (at most `limit`).
pub async fn decisions(db: &Db, test_id: &str, limit: i64) -> Result<Vec<Decision>> {
    Ok(sqlx::query_as::<_, Decision>(
        "SELECT id, test_id, arm, tick, slot, model_id, instance_id, action, from_pool, to_pool, probability, reason, outcome, new_instance_id, at FROM lab_decisions WHERE test_id = $1 ORDER BY tick DESC, arm, slot LIMIT $2",
    )
    .bind(test_id)
    .bind(limit)
    .fetch_all(&db.pool)
    .await?)
}

// ---------------------------------------------------------------- graduations

#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct Graduation {
    pub id: String,
    pub model_id: String,
    pub graduated_by: String,
    pub graduated_at: i64,
    /// JSON: the checklist items that all passed.
    pub checklist: String,
}

pub async fn record_graduation(
    db: &Db,
    model_id: &str,
    by: &str,
    checklist: &str,
) -> Result<Graduation> {
    let g = Graduation {
        id: new_id(),
        model_id: model_id.to_string(),
        graduated_by: by.to_string(),
        graduated_at: now_ms(),
        checklist: checklist.to_string(),
    };
    sqlx::query(
        "INSERT INTO model_graduations (id, model_id, graduated_by, graduated_at, checklist) VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(&g.id)
    .bind(&g.model_id)
    .bind(&g.graduated_by)
    .bind(g.graduated_at)
    .bind(&g.checklist)
    .execute(&db.pool)
    .await?;
    Ok(g)
}

pub async fn graduations(db: &Db, model_id: &str) -> Result<Vec<Graduation>> {
    Ok(sqlx::query_as::<_, Graduation>(
        "SELECT id, model_id, graduated_by, graduated_at, checklist FROM model_graduations WHERE model_id = $1 ORDER BY graduated_at DESC",
    )
    .bind(model_id)
    .fetch_all(&db.pool)
    .await?)
}

// ---------------------------------------------------------------- candidates

/// A running instance any organization's linked account reports (the Lab's picker).
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct Candidate {
    pub organization_id: String,
    pub organization_name: String,
    pub account_id: String,
    pub account_name: String,
    pub provider: String,
    pub cluster_id: Option<String>,
    pub cluster_name: Option<String>,
    pub instance_id: String,
    pub instance_type: String,
    pub lifecycle: String,
    pub az: String,
    pub hourly_price: f64,
    /// JSON object of the instance's tags.
    pub tags: String,
}

const CANDIDATE_SQL: &str = "SELECT i.organization_id, o.name AS organization_name, i.account_id, a.name AS account_name, a.provider, i.cluster_id, c.name AS cluster_name, i.instance_id, i.instance_type, i.lifecycle, i.az, i.hourly_price, i.tags \
     FROM instances i JOIN accounts a ON a.id = i.account_id JOIN organizations o ON o.id = i.organization_id LEFT JOIN clusters c ON c.id = i.cluster_id \
     WHERE i.state = 'running' AND i.gone_at IS NULL AND a.status <> 'disconnected' AND o.deleted_at IS NULL";

/// Running instances of every organization (at most `limit`), by organization, account,
/// cluster and id.
pub async fn candidates(db: &Db, limit: i64) -> Result<Vec<Candidate>> {
    Ok(sqlx::query_as::<_, Candidate>(sqlx::AssertSqlSafe(format!(
        "{CANDIDATE_SQL} ORDER BY o.name, a.name, c.name, i.instance_id LIMIT $1"
    )))
    .bind(limit)
    .fetch_all(&db.pool)
    .await?)
}

/// One running instance by its cloud id (optionally within one linked account).
pub async fn candidate(
    db: &Db,
    instance_id: &str,
    account_id: Option<&str>,
) -> Result<Vec<Candidate>> {
    Ok(match account_id {
        Some(a) => {
            sqlx::query_as::<_, Candidate>(sqlx::AssertSqlSafe(format!(
                "{CANDIDATE_SQL} AND i.instance_id = $1 AND i.account_id = $2"
            )))
            .bind(instance_id)
            .bind(a)
            .fetch_all(&db.pool)
            .await?
        }
        None => {
            sqlx::query_as::<_, Candidate>(sqlx::AssertSqlSafe(format!(
                "{CANDIDATE_SQL} AND i.instance_id = $1"
            )))
            .bind(instance_id)
            .fetch_all(&db.pool)
            .await?
        }
    })
}

/// Running instances of one account that are not Kubernetes nodes.
pub async fn standalone(db: &Db, account_id: &str) -> Result<Vec<Candidate>> {
    Ok(sqlx::query_as::<_, Candidate>(sqlx::AssertSqlSafe(format!(
        "{CANDIDATE_SQL} AND i.account_id = $1 AND i.cluster_id IS NULL ORDER BY i.instance_id"
    )))
    .bind(account_id)
    .fetch_all(&db.pool)
    .await?)
}
