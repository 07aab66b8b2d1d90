//! Outbound notifications: each organization's settings (a Slack-compatible webhook and
//! e-mail recipients), the outbox of messages to deliver (claimed by one replica, deduplicated
//! by key so a pre-sleep notice is sent once per scheduled sleep), the record of every
//! delivery attempt, the stored weekly reports and the efficiency grade per week.

use serde::Serialize;

use crate::error::Result;
use crate::{new_id, now_ms, Db};

// ---------------------------------------------------------------------------------------
// Settings

#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow)]
pub struct SettingsRow {
    pub organization_id: String,
    pub webhook_url: Option<String>,
    /// JSON array of addresses.
    pub email_recipients: String,
    pub pre_sleep_enabled: i64,
    pub weekly_report_enabled: i64,
    pub updated_by: Option<String>,
    pub updated_at: i64,
}

impl SettingsRow {
    /// The organization's settings before any were saved: nothing configured, both kinds on.
    pub fn default_for(org_id: &str) -> SettingsRow {
        SettingsRow {
            organization_id: org_id.to_string(),
            webhook_url: None,
            email_recipients: "[]".into(),
            pre_sleep_enabled: 1,
            weekly_report_enabled: 1,
            updated_by: None,
            updated_at: 0,
        }
    }

    pub fn recipients(&self) -> Vec<String> {
        serde_json::from_str(&self.email_recipients).unwrap_or_default()
    }
}

const SETTINGS_COLS: &str = "organization_id, webhook_url, email_recipients, pre_sleep_enabled, weekly_report_enabled, updated_by, updated_at";

pub async fn settings(db: &Db, org_id: &str) -> Result<Option<SettingsRow>> {
    Ok(
        sqlx::query_as::<_, SettingsRow>(sqlx::AssertSqlSafe(format!(
            "SELECT {SETTINGS_COLS} FROM notification_settings WHERE organization_id = $1"
        )))
        .bind(org_id)
        .fetch_optional(&db.pool)
        .await?,
    )
}

/// The stored settings, or the defaults.
pub async fn settings_or_default(db: &Db, org_id: &str) -> Result<SettingsRow> {
    Ok(settings(db, org_id)
        .await?
        .unwrap_or_else(|| SettingsRow::default_for(org_id)))
}

pub struct NewSettings<'a> {
    pub webhook_url: Option<&'a str>,
    /// JSON array.
    pub email_recipients: &'a str,
    pub pre_sleep_enabled: bool,
    pub weekly_report_enabled: bool,
    pub updated_by: Option<&'a str>,
}

pub async fn save_settings(db: &Db, org_id: &str, s: &NewSettings<'_>) -> Result<SettingsRow> {
    sqlx::query(
        "INSERT INTO notification_settings (organization_id, webhook_url, email_recipients, pre_sleep_enabled, weekly_report_enabled, updated_by, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7) \
         ON CONFLICT (organization_id) DO UPDATE SET webhook_url = excluded.webhook_url, email_recipients = excluded.email_recipients, \
           pre_sleep_enabled = excluded.pre_sleep_enabled, weekly_report_enabled = excluded.weekly_report_enabled, \
           updated_by = excluded.updated_by, updated_at = excluded.updated_at",
    )
    .bind(org_id)
    .bind(s.webhook_url)
    .bind(s.email_recipients)
    .bind(i64::from(s.pre_sleep_enabled))
    .bind(i64::from(s.weekly_report_enabled))
    .bind(s.updated_by)
    .bind(now_ms())
    .execute(&db.pool)
    .await?;
    settings(db, org_id)
        .await?
        .ok_or_else(|| crate::DbError::Corrupt("notification settings vanished".into()))
}

// ---------------------------------------------------------------------------------------
// Outbox

#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow)]
pub struct NotificationRow {
    pub id: String,
    pub organization_id: String,
    pub kind: String,
    pub dedup_key: Option<String>,
    pub subject: String,
    pub text_body: String,
    pub html_body: Option<String>,
    pub payload: String,
    pub status: String,
    pub created_by: String,
    pub created_at: i64,
    pub claimed_by: Option<String>,
    pub claimed_at: Option<i64>,
    pub finished_at: Option<i64>,
    pub summary: Option<String>,
}

const NOTIFICATION_COLS: &str = "id, organization_id, kind, dedup_key, subject, text_body, html_body, payload, status, created_by, created_at, claimed_by, claimed_at, finished_at, summary";

pub struct NewNotification<'a> {
    pub kind: &'a str,
    pub dedup_key: Option<&'a str>,
    pub subject: &'a str,
    pub text_body: &'a str,
    pub html_body: Option<&'a str>,
    /// JSON object.
    pub payload: &'a str,
    pub created_by: &'a str,
}

/// Queues a notification. With a `dedup_key` already used by the organization nothing is
/// queued and `None` comes back (the notice was queued before, by this or another replica).
pub async fn enqueue(
    db: &Db,
    org_id: &str,
    n: &NewNotification<'_>,
) -> Result<Option<NotificationRow>> {
    let id = new_id();
    let done = sqlx::query(
        "INSERT INTO notifications (id, organization_id, kind, dedup_key, subject, text_body, html_body, payload, status, created_by, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'pending', $9, $10) \
         ON CONFLICT (organization_id, dedup_key) DO NOTHING",
    )
    .bind(&id)
    .bind(org_id)
    .bind(n.kind)
    .bind(n.dedup_key)
    .bind(n.subject)
    .bind(n.text_body)
    .bind(n.html_body)
    .bind(n.payload)
    .bind(n.created_by)
    .bind(now_ms())
    .execute(&db.pool)
    .await?;
    if done.rows_affected() == 0 {
        return Ok(None);
    }
    notification(db, org_id, &id).await
}

pub async fn notification(db: &Db, org_id: &str, id: &str) -> Result<Option<NotificationRow>> {
    Ok(
        sqlx::query_as::<_, NotificationRow>(sqlx::AssertSqlSafe(format!(
            "SELECT {NOTIFICATION_COLS} FROM notifications WHERE organization_id = $1 AND id = $2"
        )))
        .bind(org_id)
        .bind(id)
        .fetch_optional(&db.pool)
        .await?,
    )
}

/// The organization's notifications, newest first (optionally one kind).
pub async fn list(
    db: &Db,
    org_id: &str,
    kind: Option<&str>,
    limit: i64,
) -> Result<Vec<NotificationRow>> {
    let filter = if kind.is_some() { " AND kind = $3" } else { "" };
    let mut q = sqlx::query_as::<_, NotificationRow>(sqlx::AssertSqlSafe(format!(
        "SELECT {NOTIFICATION_COLS} FROM notifications WHERE organization_id = $1{filter} ORDER BY created_at DESC, id DESC LIMIT $2"
    )))
    .bind(org_id)
    .bind(limit);
    if let Some(k) = kind {
        q = q.bind(k);
    }
    Ok(q.fetch_all(&db.pool).await?)
}

/// Claims up to `limit` pending notifications for `replica` (each is claimed by exactly one
/// replica). Notifications left `sending` by a replica that stopped more than `stale_ms`
/// ago are closed as failed rather than sent again (the receiver may already have them).
pub async fn claim_pending(
    db: &Db,
    replica: &str,
    limit: i64,
    stale_ms: i64,
) -> Result<Vec<NotificationRow>> {
    let now = now_ms();
    sqlx::query("UPDATE notifications SET status = 'failed', finished_at = $1, summary = 'interrupted: the replica sending it stopped; not sent again' WHERE status = 'sending' AND claimed_at < $2")
        .bind(now)
        .bind(now - stale_ms)
        .execute(&db.pool)
        .await?;
    let candidates: Vec<(String,)> = sqlx::query_as(
        "SELECT id FROM notifications WHERE status = 'pending' ORDER BY created_at, id LIMIT $1",
    )
    .bind(limit)
    .fetch_all(&db.pool)
    .await?;
    let mut out = Vec::new();
    for (id,) in candidates {
        let done = sqlx::query("UPDATE notifications SET status = 'sending', claimed_by = $1, claimed_at = $2 WHERE id = $3 AND status = 'pending'")
            .bind(replica)
            .bind(now)
            .bind(&id)
            .execute(&db.pool)
            .await?;
        if done.rows_affected() == 1 {
            if let Some(row) = sqlx::query_as::<_, NotificationRow>(sqlx::AssertSqlSafe(format!(
                "SELECT {NOTIFICATION_COLS} FROM notifications WHERE id = $1"
            )))
            .bind(&id)
            .fetch_optional(&db.pool)
            .await?
            {
                out.push(row);
            }
        }
    }
    Ok(out)
}

/// Closes a notification: `delivered`, `partial`, `failed` or `skipped`.
pub async fn finish(db: &Db, id: &str, status: &str, summary: Option<&str>) -> Result<()> {
    sqlx::query(
        "UPDATE notifications SET status = $1, summary = $2, finished_at = $3 WHERE id = $4",
    )
    .bind(status)
    .bind(summary)
    .bind(now_ms())
    .bind(id)
    .execute(&db.pool)
    .await?;
    Ok(())
}

#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow)]
pub struct AttemptRow {
    pub id: String,
    pub notification_id: String,
    pub channel: String,
    pub target: String,
    pub attempt: i64,
    pub outcome: String,
    pub status_code: Option<i64>,
    pub error: Option<String>,
    pub duration_ms: i64,
    pub at: i64,
}

pub struct NewAttempt<'a> {
    pub notification_id: &'a str,
    pub organization_id: &'a str,
    pub channel: &'a str,
    pub target: &'a str,
    pub attempt: i64,
    pub outcome: &'a str,
    pub status_code: Option<i64>,
    pub error: Option<&'a str>,
    pub duration_ms: i64,
}

pub async fn record_attempt(db: &Db, a: &NewAttempt<'_>) -> Result<()> {
    sqlx::query("INSERT INTO notification_attempts (id, notification_id, organization_id, channel, target, attempt, outcome, status_code, error, duration_ms, at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)")
        .bind(new_id())
        .bind(a.notification_id)
        .bind(a.organization_id)
        .bind(a.channel)
        .bind(a.target)
        .bind(a.attempt)
        .bind(a.outcome)
        .bind(a.status_code)
        .bind(a.error)
        .bind(a.duration_ms)
        .bind(now_ms())
        .execute(&db.pool)
        .await?;
    Ok(())
}

/// The attempts of one of the organization's notifications, oldest first.
pub async fn attempts(db: &Db, org_id: &str, notification_id: &str) -> Result<Vec<AttemptRow>> {
    Ok(sqlx::query_as::<_, AttemptRow>(
        "SELECT id, notification_id, channel, target, attempt, outcome, status_code, error, duration_ms, at FROM notification_attempts WHERE organization_id = $1 AND notification_id = $2 ORDER BY at, attempt, id",
    )
    .bind(org_id)
    .bind(notification_id)
    .fetch_all(&db.pool)
    .await?)
}

// ---------------------------------------------------------------------------------------
// Weekly reports and grades

#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow)]
pub struct ReportRow {
    pub id: String,
    pub organization_id: String,
    pub kind: String,
    pub period_start: i64,
    pub period_end: i64,
    pub figures: String,
    pub subject: String,
    pub html: String,
    pub text_body: String,
    pub notification_id: Option<String>,
    pub created_by: String,
    pub created_at: i64,
}

const REPORT_COLS: &str = "id, organization_id, kind, period_start, period_end, figures, subject, html, text_body, notification_id, created_by, created_at";

pub struct NewReport<'a> {
    pub kind: &'a str,
    pub period_start: i64,
    pub period_end: i64,
    pub figures: &'a str,
    pub subject: &'a str,
    pub html: &'a str,
    pub text_body: &'a str,
    pub created_by: &'a str,
}

/// Stores a report. A second scheduled report for the same week is refused by the database
/// (another replica made it): `None`.
pub async fn insert_report(db: &Db, org_id: &str, r: &NewReport<'_>) -> Result<Option<ReportRow>> {
    let id = new_id();
    let res = sqlx::query("INSERT INTO weekly_reports (id, organization_id, kind, period_start, period_end, figures, subject, html, text_body, created_by, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)")
        .bind(&id)
        .bind(org_id)
        .bind(r.kind)
        .bind(r.period_start)
        .bind(r.period_end)
        .bind(r.figures)
        .bind(r.subject)
        .bind(r.html)
        .bind(r.text_body)
        .bind(r.created_by)
        .bind(now_ms())
        .execute(&db.pool)
        .await;
    match res {
        Ok(_) => report(db, org_id, &id).await,
        Err(e) if is_unique_violation(&e) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

fn is_unique_violation(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(d) if d.is_unique_violation())
}

pub async fn set_report_notification(
    db: &Db,
    report_id: &str,
    notification_id: &str,
) -> Result<()> {
    sqlx::query("UPDATE weekly_reports SET notification_id = $1 WHERE id = $2")
        .bind(notification_id)
        .bind(report_id)
        .execute(&db.pool)
        .await?;
    Ok(())
}

pub async fn report(db: &Db, org_id: &str, id: &str) -> Result<Option<ReportRow>> {
    Ok(sqlx::query_as::<_, ReportRow>(sqlx::AssertSqlSafe(format!(
        "SELECT {REPORT_COLS} FROM weekly_reports WHERE organization_id = $1 AND id = $2"
    )))
    .bind(org_id)
    .bind(id)
    .fetch_optional(&db.pool)
    .await?)
}

/// The organization's reports, newest week first.
pub async fn list_reports(db: &Db, org_id: &str, limit: i64) -> Result<Vec<ReportRow>> {
    Ok(sqlx::query_as::<_, ReportRow>(sqlx::AssertSqlSafe(format!(
        "SELECT {REPORT_COLS} FROM weekly_reports WHERE organization_id = $1 ORDER BY period_start DESC, created_at DESC LIMIT $2"
    )))
    .bind(org_id)
    .bind(limit)
    .fetch_all(&db.pool)
    .await?)
}

/// Whether the scheduled report of the week starting at `period_start` exists.
pub async fn scheduled_report_exists(db: &Db, org_id: &str, period_start: i64) -> Result<bool> {
    let n: (i64,) = sqlx::query_as("SELECT COUNT(*) FROM weekly_reports WHERE organization_id = $1 AND period_start = $2 AND kind = 'scheduled'")
        .bind(org_id)
        .bind(period_start)
        .fetch_one(&db.pool)
        .await?;
    Ok(n.0 > 0)
}

#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow)]
pub struct GradeRow {
    pub week_start: i64,
    pub score: Option<f64>,
    pub grade: Option<String>,
    pub recorded_at: i64,
}

/// Stores the organization's efficiency grade of the week (the latest figure of the week wins).
pub async fn record_grade(
    db: &Db,
    org_id: &str,
    week_start: i64,
    score: Option<f64>,
    grade: Option<&str>,
) -> Result<()> {
    sqlx::query("INSERT INTO efficiency_grades (organization_id, week_start, score, grade, recorded_at) VALUES ($1, $2, $3, $4, $5) \
                 ON CONFLICT (organization_id, week_start) DO UPDATE SET score = excluded.score, grade = excluded.grade, recorded_at = excluded.recorded_at")
        .bind(org_id)
        .bind(week_start)
        .bind(score)
        .bind(grade)
        .bind(now_ms())
        .execute(&db.pool)
        .await?;
    Ok(())
}

/// The stored grades up to and including `week_start`, newest first.
pub async fn grades_until(
    db: &Db,
    org_id: &str,
    week_start: i64,
    limit: i64,
) -> Result<Vec<GradeRow>> {
    Ok(sqlx::query_as::<_, GradeRow>(
        "SELECT week_start, score, grade, recorded_at FROM efficiency_grades WHERE organization_id = $1 AND week_start <= $2 ORDER BY week_start DESC LIMIT $3",
    )
    .bind(org_id)
    .bind(week_start)
    .bind(limit)
    .fetch_all(&db.pool)
    .await?)
}
