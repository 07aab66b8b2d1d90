//! Outbound notifications and weekly reports: the organization's notification settings
//! (Slack-compatible webhook, e-mail recipients, which notices to send), the record of
//! every notification and each delivery attempt, a test notification, and the stored
//! weekly reports (list, open one, make one now). Delivery itself is `crate::notify`'s;
//! reports are `crate::report`'s.

use chrono::Utc;
use poem::web::Data;
use poem_openapi::param::{Path, Query};
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Object, OpenApi};
use spot_models::notify::{self, AttemptRow, NotificationRow, ReportRow, SettingsRow};

use super::{ts, ApiTags};
use crate::auth::BearerAuth;
use crate::body::Body;
use crate::error::ApiError;
use crate::gateway::AuditSlot;
use crate::report::{self, ReportFigures};
use crate::state::AppState;

pub struct NotificationsApi;
pub struct ReportsApi;

/// Most e-mail recipients per organization.
pub const MAX_RECIPIENTS: usize = 20;
/// Longest webhook URL.
pub const MAX_URL_LEN: usize = 2048;

#[derive(Object)]
pub struct NotificationSettings {
    /// The webhook URL (admins and owners see it whole; viewers only its scheme and host).
    pub webhook_url: Option<String>,
    pub webhook_configured: bool,
    pub email_recipients: Vec<String>,
    /// Whether this server can send e-mail (SMTP configured by the operator). Without it
    /// e-mail recipients receive nothing.
    pub email_configured: bool,
    /// Notice 30 minutes before each scheduled cluster sleep.
    pub pre_sleep_enabled: bool,
    /// The weekly report (Monday, for the past week).
    pub weekly_report_enabled: bool,
    pub updated_by: Option<String>,
    pub updated_at: Option<chrono::DateTime<Utc>>,
}

#[derive(Object, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NotificationSettingsInput {
    /// Slack-compatible incoming webhook (`http://` or `https://`); null or empty: none.
    #[serde(default)]
    pub webhook_url: Option<String>,
    /// At most 20 addresses.
    #[serde(default)]
    pub email_recipients: Vec<String>,
    #[serde(default = "yes")]
    #[oai(default = "yes")]
    pub pre_sleep_enabled: bool,
    #[serde(default = "yes")]
    #[oai(default = "yes")]
    pub weekly_report_enabled: bool,
}

fn yes() -> bool {
    true
}

/// One delivery attempt on one channel.
#[derive(Object)]
pub struct DeliveryAttempt {
    /// `webhook` or `email`.
    pub channel: String,
    /// The webhook's scheme and host, or the recipients.
    pub target: String,
    pub attempt: i64,
    /// `success`, `retry` (tried again later), `failed` (gave up) or `skipped` (channel
    /// not configured on the server).
    pub outcome: String,
    pub status_code: Option<i64>,
    pub error: Option<String>,
    pub duration_ms: i64,
    pub at: chrono::DateTime<Utc>,
}

/// A notification and how its delivery went.
#[derive(Object)]
pub struct NotificationView {
    pub id: String,
    /// `pre_sleep`, `weekly_report` or `test`.
    pub kind: String,
    pub subject: String,
    /// `pending`, `sending`, `delivered`, `partial`, `failed` or `skipped`.
    pub status: String,
    /// What happened on each channel, in one line.
    pub summary: Option<String>,
    /// A user id, or `system`.
    pub created_by: String,
    pub created_at: chrono::DateTime<Utc>,
    pub finished_at: Option<chrono::DateTime<Utc>>,
    pub attempts: Vec<DeliveryAttempt>,
}

#[derive(Object)]
pub struct NotificationList {
    pub items: Vec<NotificationView>,
}

#[derive(ApiResponse)]
pub enum TestResponse {
    /// Queued; its delivery appears in the list within seconds.
    #[oai(status = 202)]
    Accepted(Json<NotificationView>),
}

/// A stored weekly report, without its rendered bodies.
#[derive(Object)]
pub struct ReportSummary {
    pub id: String,
    /// `scheduled` (the weekly job) or `manual`.
    pub kind: String,
    pub period_start: chrono::DateTime<Utc>,
    pub period_end: chrono::DateTime<Utc>,
    pub subject: String,
    pub created_by: String,
    pub created_at: chrono::DateTime<Utc>,
    pub efficiency_grade: Option<String>,
    pub trend: String,
    pub spend: f64,
    pub savings: f64,
    pub notification_id: Option<String>,
    /// Delivery status of its notification (`pending` … `skipped`), if one was queued.
    pub delivery_status: Option<String>,
}

#[derive(Object)]
pub struct ReportList {
    pub items: Vec<ReportSummary>,
}

/// A weekly report with its figures and both renderings.
#[derive(Object)]
pub struct WeeklyReport {
    #[oai(flatten)]
    pub summary: ReportSummary,
    pub figures: ReportFigures,
    pub html: String,
    pub text: String,
}

#[derive(ApiResponse)]
pub enum ReportCreated {
    /// Made, stored and queued for delivery.
    #[oai(status = 201)]
    Created(Json<WeeklyReport>),
}

fn settings_view(s: SettingsRow, state: &AppState, full: bool) -> NotificationSettings {
    let recipients = s.recipients();
    NotificationSettings {
        webhook_configured: s.webhook_url.is_some(),
        webhook_url: s.webhook_url.map(|u| {
            if full {
                u
            } else {
                crate::notify::redact_url(&u)
            }
        }),
        email_recipients: recipients,
        email_configured: state
            .cfg
            .smtp_url
            .as_deref()
            .is_some_and(|u| !u.trim().is_empty()),
        pre_sleep_enabled: s.pre_sleep_enabled != 0,
        weekly_report_enabled: s.weekly_report_enabled != 0,
        updated_by: s.updated_by,
        updated_at: (s.updated_at > 0).then(|| ts(s.updated_at)),
    }
}

fn attempt_view(a: AttemptRow) -> DeliveryAttempt {
    DeliveryAttempt {
        channel: a.channel,
        target: a.target,
        attempt: a.attempt,
        outcome: a.outcome,
        status_code: a.status_code,
        error: a.error,
        duration_ms: a.duration_ms,
        at: ts(a.at),
    }
}

async fn notification_view(
    state: &AppState,
    n: NotificationRow,
) -> Result<NotificationView, ApiError> {
    let attempts = notify::attempts(&state.db, &n.organization_id, &n.id)
        .await?
        .into_iter()
        .map(attempt_view)
        .collect();
    Ok(NotificationView {
        id: n.id,
        kind: n.kind,
        subject: n.subject,
        status: n.status,
        summary: n.summary,
        created_by: n.created_by,
        created_at: ts(n.created_at),
        finished_at: n.finished_at.map(ts),
        attempts,
    })
}

/// Checks a webhook URL: absolute http(s) with a host, no credentials, no spaces.
pub fn check_webhook_url(raw: &str) -> Result<String, ApiError> {
    let field = |m: &str| ApiError::field("webhook_url", m.to_string());
    let u = raw.trim();
    if u.len() > MAX_URL_LEN {
        return Err(field("webhook_url must be at most 2048 characters"));
    }
    if u.chars().any(char::is_whitespace) {
        return Err(field("webhook_url must not contain spaces"));
    }
    let parsed = reqwest::Url::parse(u)
        .map_err(|_| field("webhook_url must be an absolute http:// or https:// URL"))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(field("webhook_url must start with http:// or https://"));
    }
    if parsed.host_str().is_none_or(str::is_empty) {
        return Err(field("webhook_url must name a host"));
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(field(
            "webhook_url must not carry credentials (user:password@)",
        ));
    }
    Ok(u.to_string())
}

/// Refuses a webhook whose host is, or now resolves to, a loopback, private, link-local
/// (cloud metadata), unique-local or other non-public address (a name that does not resolve
/// yet is accepted: every send checks again).
pub async fn check_webhook_address(url: &str) -> Result<(), ApiError> {
    let parsed = reqwest::Url::parse(url).map_err(|_| {
        ApiError::field(
            "webhook_url",
            "webhook_url must be an absolute http:// or https:// URL",
        )
    })?;
    match crate::notify::check_target(&parsed).await {
        crate::notify::Target::Refused(r) => Err(ApiError::field(
            "webhook_url",
            format!("webhook_url must point at a public address: {r}"),
        )),
        crate::notify::Target::Public(_) | crate::notify::Target::Unresolved(_) => Ok(()),
    }
}

fn check_recipients(raw: &[String]) -> Result<Vec<String>, ApiError> {
    if raw.len() > MAX_RECIPIENTS {
        return Err(ApiError::field(
            "email_recipients",
            format!("at most {MAX_RECIPIENTS} e-mail recipients"),
        ));
    }
    let mut out: Vec<String> = Vec::new();
    for (i, r) in raw.iter().enumerate() {
        let e = crate::auth::normalize_email(r).map_err(|_| {
            ApiError::field(
                "email_recipients",
                format!("email_recipients[{i}] is not a valid e-mail address"),
            )
        })?;
        if !out.contains(&e) {
            out.push(e);
        }
    }
    Ok(out)
}

fn summary_of(
    r: &ReportRow,
    delivery_status: Option<String>,
) -> (ReportSummary, Option<ReportFigures>) {
    let figures: Option<ReportFigures> = serde_json::from_str(&r.figures).ok();
    (
        ReportSummary {
            id: r.id.clone(),
            kind: r.kind.clone(),
            period_start: ts(r.period_start),
            period_end: ts(r.period_end),
            subject: r.subject.clone(),
            created_by: r.created_by.clone(),
            created_at: ts(r.created_at),
            efficiency_grade: figures.as_ref().and_then(|f| f.efficiency_grade.clone()),
            trend: figures
                .as_ref()
                .map_or_else(String::new, |f| f.trend.clone()),
            spend: figures.as_ref().map_or(0.0, |f| f.spend),
            savings: figures.as_ref().map_or(0.0, |f| f.savings),
            notification_id: r.notification_id.clone(),
            delivery_status,
        },
        figures,
    )
}

async fn delivery_status(state: &AppState, r: &ReportRow) -> Result<Option<String>, ApiError> {
    Ok(match &r.notification_id {
        Some(id) => notify::notification(&state.db, &r.organization_id, id)
            .await?
            .map(|n| n.status),
        None => None,
    })
}

async fn full_report(state: &AppState, r: ReportRow) -> Result<WeeklyReport, ApiError> {
    let status = delivery_status(state, &r).await?;
    let (summary, figures) = summary_of(&r, status);
    let figures =
        figures.ok_or_else(|| ApiError::Internal("stored report figures unreadable".into()))?;
    Ok(WeeklyReport {
        summary,
        figures,
        html: r.html,
        text: r.text_body,
    })
}

#[OpenApi(prefix_path = "/org/notifications", tag = "ApiTags::Organization")]
impl NotificationsApi {
    /// The organization's notification settings, and whether this server can send e-mail.
    #[oai(path = "/", method = "get", operation_id = "getNotificationSettings")]
    async fn get_settings(
        &self,
        state: Data<&AppState>,
        auth: BearerAuth,
    ) -> poem::Result<Json<NotificationSettings>> {
        let s = notify::settings_or_default(&state.db, &auth.0.org_id)
            .await
            .map_err(ApiError::from)?;
        let full = auth.0.require_admin().is_ok();
        Ok(Json(settings_view(s, &state, full)))
    }

    /// Replaces the notification settings (admins and owners). 422 names the field:
    /// `webhook_url` (absolute http/https URL with a host, no credentials, ≤ 2048
    /// characters, not pointing at a loopback, private, link-local / cloud metadata or
    /// unique-local address unless the server allows private webhooks) or `email_recipients` (valid addresses, at most 20).
    #[oai(path = "/", method = "put", operation_id = "putNotificationSettings")]
    async fn put_settings(
        &self,
        state: Data<&AppState>,
        auth: BearerAuth,
        slot: Data<&AuditSlot>,
        body: Body<NotificationSettingsInput>,
    ) -> poem::Result<Json<NotificationSettings>> {
        slot.record("notifications.update", "organization", Some(&auth.0.org_id));
        auth.0.require_admin()?;
        let webhook = match body.webhook_url.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(u) => {
                let u = check_webhook_url(u)?;
                if !state.cfg.allow_private_webhooks {
                    check_webhook_address(&u).await?;
                }
                Some(u)
            }
        };
        let recipients = check_recipients(&body.email_recipients)?;
        let before = notify::settings(&state.db, &auth.0.org_id)
            .await
            .map_err(ApiError::from)?;
        let recipients_json =
            serde_json::to_string(&recipients).map_err(|e| ApiError::Internal(e.to_string()))?;
        let saved = notify::save_settings(
            &state.db,
            &auth.0.org_id,
            &notify::NewSettings {
                webhook_url: webhook.as_deref(),
                email_recipients: &recipients_json,
                pre_sleep_enabled: body.pre_sleep_enabled,
                weekly_report_enabled: body.weekly_report_enabled,
                updated_by: Some(&auth.0.user_id),
            },
        )
        .await
        .map_err(ApiError::from)?;
        // The audit keeps the webhook's host only (the path is a secret).
        let audited = |s: &SettingsRow| {
            serde_json::json!({
                "webhook": s.webhook_url.as_deref().map(crate::notify::redact_url),
                "email_recipients": s.recipients(),
                "pre_sleep_enabled": s.pre_sleep_enabled != 0,
                "weekly_report_enabled": s.weekly_report_enabled != 0,
            })
        };
        slot.diff(before.as_ref().map(audited), Some(audited(&saved)));
        Ok(Json(settings_view(saved, &state, true)))
    }

    /// Sends a test notification to the configured webhook and recipients (admins and
    /// owners). Answers at once; the delivery and each attempt appear in
    /// `GET /api/org/notifications/deliveries`.
    #[oai(path = "/test", method = "post", operation_id = "sendTestNotification")]
    async fn send_test(
        &self,
        state: Data<&AppState>,
        auth: BearerAuth,
        slot: Data<&AuditSlot>,
    ) -> poem::Result<TestResponse> {
        slot.record("notifications.test", "organization", Some(&auth.0.org_id));
        auth.0.require_admin()?;
        let text = format!(
            "This is a test notification from Spot Optimizer, sent by {} at {} UTC. Pre-sleep notices and weekly reports arrive here the same way.",
            auth.0.email,
            Utc::now().format("%Y-%m-%d %H:%M:%S")
        );
        let html = format!("<p>{}</p>", spot_actors::presleep::escape(&text));
        let n = notify::enqueue(
            &state.db,
            &auth.0.org_id,
            &notify::NewNotification {
                kind: "test",
                dedup_key: None,
                subject: "Spot Optimizer test notification",
                text_body: &text,
                html_body: Some(&html),
                payload: "{}",
                created_by: &auth.0.user_id,
            },
        )
        .await
        .map_err(ApiError::from)?
        .ok_or_else(|| ApiError::Internal("test notification not queued".into()))?;
        slot.diff(None, Some(serde_json::json!({"notification_id": n.id})));
        Ok(TestResponse::Accepted(Json(
            notification_view(&state, n).await?,
        )))
    }

    /// The organization's notifications, newest first, each with every delivery attempt
    /// (status code or error); optionally one `kind`.
    #[oai(
        path = "/deliveries",
        method = "get",
        operation_id = "listNotificationDeliveries"
    )]
    async fn list_deliveries(
        &self,
        state: Data<&AppState>,
        auth: BearerAuth,
        kind: Query<Option<String>>,
        limit: Query<Option<i64>>,
    ) -> poem::Result<Json<NotificationList>> {
        let limit = limit.0.unwrap_or(50);
        if !(1..=200).contains(&limit) {
            return Err(ApiError::field("limit", "limit must be between 1 and 200").into());
        }
        let kind = kind.0.filter(|k| !k.is_empty());
        if let Some(k) = &kind {
            if !["pre_sleep", "weekly_report", "test"].contains(&k.as_str()) {
                return Err(ApiError::field(
                    "kind",
                    "kind must be pre_sleep, weekly_report or test",
                )
                .into());
            }
        }
        let rows = notify::list(&state.db, &auth.0.org_id, kind.as_deref(), limit)
            .await
            .map_err(ApiError::from)?;
        let mut items = Vec::with_capacity(rows.len());
        for n in rows {
            items.push(notification_view(&state, n).await?);
        }
        Ok(Json(NotificationList { items }))
    }

    /// One notification with its delivery attempts.
    #[oai(
        path = "/deliveries/:id",
        method = "get",
        operation_id = "getNotificationDelivery"
    )]
    async fn get_delivery(
        &self,
        state: Data<&AppState>,
        auth: BearerAuth,
        id: Path<String>,
    ) -> poem::Result<Json<NotificationView>> {
        let n = notify::notification(&state.db, &auth.0.org_id, &id)
            .await
            .map_err(ApiError::from)?
            .ok_or(ApiError::NotFound("notification"))?;
        Ok(Json(notification_view(&state, n).await?))
    }
}

#[OpenApi(prefix_path = "/reports", tag = "ApiTags::Dashboard")]
impl ReportsApi {
    /// The organization's weekly reports, newest week first.
    #[oai(path = "/", method = "get", operation_id = "listWeeklyReports")]
    async fn list(
        &self,
        state: Data<&AppState>,
        auth: BearerAuth,
    ) -> poem::Result<Json<ReportList>> {
        let rows = notify::list_reports(&state.db, &auth.0.org_id, 104)
            .await
            .map_err(ApiError::from)?;
        let mut items = Vec::with_capacity(rows.len());
        for r in &rows {
            let status = delivery_status(&state, r).await?;
            items.push(summary_of(r, status).0);
        }
        Ok(Json(ReportList { items }))
    }

    /// One weekly report: its figures, HTML and text.
    #[oai(path = "/:id", method = "get", operation_id = "getWeeklyReport")]
    async fn get(
        &self,
        state: Data<&AppState>,
        auth: BearerAuth,
        id: Path<String>,
    ) -> poem::Result<Json<WeeklyReport>> {
        let r = notify::report(&state.db, &auth.0.org_id, &id)
            .await
            .map_err(ApiError::from)?
            .ok_or(ApiError::NotFound("report"))?;
        Ok(Json(full_report(&state, r).await?))
    }

    /// Makes the report of the last 7 days now (admins and owners), stores it and sends it
    /// to the configured webhook and recipients (the weekly job does the same every
    /// Monday for the past week).
    #[oai(path = "/", method = "post", operation_id = "runWeeklyReport")]
    async fn run(
        &self,
        state: Data<&AppState>,
        auth: BearerAuth,
        slot: Data<&AuditSlot>,
    ) -> poem::Result<ReportCreated> {
        slot.record("report.weekly_run", "weekly_report", None);
        auth.0.require_admin()?;
        let end = Utc::now();
        let start = end - chrono::Duration::days(7);
        let r = report::generate(
            &state.db,
            &auth.0.org_id,
            "manual",
            start,
            end,
            &auth.0.user_id,
        )
        .await?
        .ok_or_else(|| ApiError::Internal("manual report not stored".into()))?;
        slot.diff(
            None,
            Some(serde_json::json!({"report_id": r.id, "notification_id": r.notification_id})),
        );
        Ok(ReportCreated::Created(Json(full_report(&state, r).await?)))
    }
}
