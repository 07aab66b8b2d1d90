//! The weekly report of an organization: what the week cost and saved, its efficiency grade
//! and the trend of that grade over the past weeks (stored weekly), the most valuable next
//! action and what hibernation saved. Every figure comes from the code that computes it
//! for the dashboard (`routes::dashboard::kpis_of`, the hourly metric buckets, the engine's
//! fleet heatmap and hibernation savings). The report is stored rendered as HTML and text,
//! queued for e-mail and webhook delivery (see [`crate::notify`]) and shown in the web app.
//!
//! A scheduler on every replica makes each organization's report of the past week (Monday
//! 00:00 UTC to Monday 00:00 UTC) once: the database accepts one scheduled report per
//! organization and week. Admins can also make one for the week so far at any time.

use std::time::Duration;

use chrono::{DateTime, Datelike, TimeZone, Timelike, Utc};
use poem_openapi::Object;
use serde::{Deserialize, Serialize};
use serde_json::json;
use spot_engine::fleet;
use spot_engine::hibernate::{self as hib, Power};
use spot_models::audit::{self, NewAuditRecord};
use spot_models::hibernation as hstore;
use spot_models::notify::{self, ReportRow};
use spot_models::{inventory, orgs, Db};

use crate::error::ApiError;
use crate::routes::dashboard::{by_time, kpis_of};
use crate::routes::ts;

pub const COMPONENT: &str = "CORE-REPORT";
/// Weeks of grades the trend shows.
pub const TREND_WEEKS: i64 = 8;

/// Monday 00:00 UTC of the week `t` falls in.
pub fn week_start(t: DateTime<Utc>) -> DateTime<Utc> {
    let d = t.date_naive() - chrono::Duration::days(i64::from(t.weekday().num_days_from_monday()));
    Utc.from_utc_datetime(&d.and_hms_opt(0, 0, 0).unwrap_or_default())
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Object)]
pub struct GradePoint {
    /// Monday 00:00 UTC of the week.
    pub week_start: DateTime<Utc>,
    pub grade: Option<String>,
    /// 0–1.
    pub score: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Object)]
pub struct TopAction {
    /// `spot`, `packing`, `idle_storage` or `hibernation`.
    pub kind: String,
    pub title: String,
    pub detail: String,
    /// Estimated monthly saving of the action.
    pub monthly_savings: f64,
}

/// Everything a weekly report shows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Object)]
pub struct ReportFigures {
    pub period_start: DateTime<Utc>,
    pub period_end: DateTime<Utc>,
    /// Σ over the period's hours of the clusters' actual hourly cost.
    pub spend: f64,
    /// The same hours at on-demand prices.
    pub on_demand_baseline: f64,
    /// on_demand_baseline − spend.
    pub savings: f64,
    /// savings ÷ on_demand_baseline × 100 (0 without data).
    pub savings_percent: f64,
    /// Hours of the period with cost data.
    pub hours_observed: i64,
    /// Run rate at the time of the report (dashboard "monthly spend").
    pub monthly_spend: f64,
    /// Dashboard "potential savings" (spot + packing + idle storage), monthly.
    pub potential_savings: f64,
    pub efficiency_score: Option<f64>,
    pub efficiency_grade: Option<String>,
    /// The stored weekly grades, oldest first, ending with this report's week.
    pub grade_trend: Vec<GradePoint>,
    /// `improving`, `declining`, `steady` or `new` (no earlier grade).
    pub trend: String,
    pub top_action: Option<TopAction>,
    /// What cluster hibernation saved during the period (against running 24/7).
    pub hibernation_savings: f64,
    pub hibernation_hours_asleep: f64,
    /// Idle hours a week that hibernation could still save, monthly (dashboard heatmap).
    pub hibernation_opportunity_monthly: f64,
    pub clusters: i64,
    pub nodes: i64,
    pub spot_share: f64,
}

fn grade_rank(g: &str) -> i32 {
    match g {
        "A" => 5,
        "B" => 4,
        "C" => 3,
        "D" => 2,
        "F" => 1,
        _ => 0,
    }
}

/// `improving` / `declining` / `steady` from the last two graded weeks (by score when both
/// have one, else by grade), `new` with fewer than two.
pub fn trend_of(points: &[GradePoint]) -> String {
    let graded: Vec<&GradePoint> = points.iter().filter(|p| p.grade.is_some()).collect();
    let [.., prev, last] = graded.as_slice() else {
        return "new".into();
    };
    let delta = match (prev.score, last.score) {
        (Some(a), Some(b)) if (b - a).abs() >= 0.01 => (b - a).signum() as i32,
        (Some(_), Some(_)) => 0,
        _ => {
            grade_rank(last.grade.as_deref().unwrap_or(""))
                - grade_rank(prev.grade.as_deref().unwrap_or(""))
        }
    };
    match delta.signum() {
        1 => "improving".into(),
        -1 => "declining".into(),
        _ => "steady".into(),
    }
}

/// The trend as the report says it.
fn trend_text(trend: &str) -> &str {
    if trend == "new" {
        "first graded week"
    } else {
        trend
    }
}

/// "1 hour", "168 hours".
fn hours_label(n: i64) -> String {
    if n == 1 {
        "1 hour".into()
    } else {
        format!("{n} hours")
    }
}

fn money(v: f64) -> String {
    let cents = (v * 100.0).round() as i64;
    let (sign, cents) = if cents < 0 {
        ("-", -cents)
    } else {
        ("", cents)
    };
    let dollars = cents / 100;
    let mut s = dollars.to_string();
    let mut i = s.len() as i64 - 3;
    while i > 0 {
        s.insert(i as usize, ',');
        i -= 3;
    }
    format!("{sign}${s}.{:02}", cents % 100)
}

/// The report's figures for `[start, end)`; also stores the grade of `start`'s week.
pub async fn figures(
    db: &Db,
    org: &str,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
) -> Result<ReportFigures, ApiError> {
    let k = kpis_of(db, org, None).await?;
    let from = start.timestamp_millis();
    let to = end.timestamp_millis();
    let pts: Vec<_> = inventory::metrics(db, org, from, None, None)
        .await?
        .into_iter()
        .filter(|p| p.ts < to)
        .collect();
    let hours = by_time(&pts);
    let spend: f64 = hours.values().map(|p| p.hourly_cost).sum();
    let baseline: f64 = hours.values().map(|p| p.on_demand_hourly_cost).sum();
    let savings = (baseline - spend).max(0.0);
    // Hibernation: actual savings of every cluster over the period.
    let clusters = inventory::list_clusters(db, org, None).await?;
    let (mut hib_saved, mut hib_hours) = (0.0, 0.0);
    for c in &clusters {
        let rows = hstore::transitions_since(db, org, &c.id, from).await?;
        let changes: Vec<hib::Change> = rows
            .iter()
            .filter(|r| r.outcome != "failed" && r.at < to)
            .filter_map(|r| {
                Some(hib::Change {
                    at: ts(r.at),
                    to: Power::parse(&r.to_state)?,
                    saving_hourly: r.saving_hourly,
                })
            })
            .collect();
        let (h, s) = hib::savings(&changes, start, end);
        hib_hours += h;
        hib_saved += s;
    }
    // The opportunity left: the dashboard heatmap over the last four weeks.
    let heat_pts = inventory::metrics(db, org, to - 28 * 86_400_000, None, None).await?;
    let samples: Vec<fleet::HeatSample> = by_time(&heat_pts)
        .into_values()
        .filter(|p| p.ts < to)
        .map(|p| {
            let t = ts(p.ts);
            fleet::HeatSample {
                weekday: t.weekday().num_days_from_monday() as u8,
                hour: t.hour() as u8,
                cpu_used_m: p.cpu_used_m,
                cpu_allocatable_m: p.cpu_allocatable_m,
                hourly_cost: p.hourly_cost,
            }
        })
        .collect();
    let heat = fleet::heatmap(&samples);
    // The grade of the week, stored; the trend is the stored grades.
    // The week the figures are "as of": the one the period ends in.
    let week = week_start(end - chrono::Duration::milliseconds(1));
    notify::record_grade(
        db,
        org,
        week.timestamp_millis(),
        k.efficiency_score,
        k.efficiency_grade.as_deref(),
    )
    .await?;
    let mut grade_trend: Vec<GradePoint> =
        notify::grades_until(db, org, week.timestamp_millis(), TREND_WEEKS)
            .await?
            .into_iter()
            .map(|g| GradePoint {
                week_start: ts(g.week_start),
                grade: g.grade,
                score: g.score,
            })
            .collect();
    grade_trend.reverse();
    let trend = trend_of(&grade_trend);
    // The most valuable next action.
    let vols = inventory::orphaned_volumes(db, org).await?.len();
    let snaps = inventory::unused_snapshots(db, org).await?.len();
    let on_demand_nodes = (k.nodes as f64 * (1.0 - k.spot_share)).round() as i64;
    let candidates = [
        TopAction {
            kind: "spot".into(),
            title: "Move on-demand cluster nodes to Spot".into(),
            detail: format!("{on_demand_nodes} cluster nodes run on demand; run Optimize Now on their clusters to replace them with scored Spot capacity."),
            monthly_savings: k.potential_spot_savings,
        },
        TopAction {
            kind: "packing".into(),
            title: "Consolidate under-used nodes".into(),
            detail: "Requested capacity leaves nodes idle beyond the 15% headroom; Optimize Now bin-packs the pods onto fewer, cheaper nodes.".into(),
            monthly_savings: k.potential_packing_savings,
        },
        TopAction {
            kind: "idle_storage".into(),
            title: "Clean up idle storage".into(),
            detail: format!("{vols} unattached volumes and {snaps} unused snapshots are billed every month (Waste pages: snapshot, then delete)."),
            monthly_savings: k.idle_storage,
        },
        TopAction {
            kind: "hibernation".into(),
            title: "Hibernate clusters during idle hours".into(),
            detail: format!("{} hours a week run below 15% CPU use; a hibernation schedule scales them to zero.", heat.idle_hours_per_week),
            monthly_savings: heat.hibernation_savings_monthly,
        },
    ];
    let top_action = candidates
        .into_iter()
        .filter(|a| a.monthly_savings > 0.005)
        .max_by(|a, b| {
            a.monthly_savings
                .partial_cmp(&b.monthly_savings)
                .unwrap_or(std::cmp::Ordering::Equal)
        });
    Ok(ReportFigures {
        period_start: start,
        period_end: end,
        spend,
        on_demand_baseline: baseline,
        savings,
        savings_percent: if baseline > 0.0 {
            savings / baseline * 100.0
        } else {
            0.0
        },
        hours_observed: hours.len() as i64,
        monthly_spend: k.monthly_spend,
        potential_savings: k.potential_savings,
        efficiency_score: k.efficiency_score,
        efficiency_grade: k.efficiency_grade,
        grade_trend,
        trend,
        top_action,
        hibernation_savings: hib_saved,
        hibernation_hours_asleep: hib_hours,
        hibernation_opportunity_monthly: heat.hibernation_savings_monthly,
        clusters: k.clusters,
        nodes: k.nodes,
        spot_share: k.spot_share,
    })
}

fn esc(s: &str) -> String {
    spot_actors::presleep::escape(s)
}

/// The report as (subject, plain text, HTML).
pub fn render(org_name: &str, f: &ReportFigures) -> (String, String, String) {
    let period = format!(
        "{} - {}",
        f.period_start.format("%a %d %b %Y"),
        (f.period_end - chrono::Duration::seconds(1)).format("%a %d %b %Y")
    );
    let subject = format!("Spot Optimizer weekly report for {org_name}: {period}");
    let grade = f.efficiency_grade.as_deref().unwrap_or("-");
    let trend_line = f
        .grade_trend
        .iter()
        .map(|g| {
            format!(
                "{} {}",
                g.week_start.format("%d %b"),
                g.grade.as_deref().unwrap_or("-")
            )
        })
        .collect::<Vec<_>>()
        .join(", ");
    let action = match &f.top_action {
        Some(a) => format!(
            "{} (about {}/month): {}",
            a.title,
            money(a.monthly_savings),
            a.detail
        ),
        None => "Nothing stands out: no saving above a cent a month was found.".into(),
    };
    let text = format!(
        "Weekly report for {org_name}\n{period} (UTC)\n\n\
         Spend this week: {spend} (on-demand equivalent {base}, {hours} observed)\n\
         Saved this week: {saved} ({pct:.1}%)\n\
         Hibernation saved: {hib} ({hib_h:.1} hours asleep)\n\
         Monthly run rate: {run}; potential savings: {pot}/month\n\
         Efficiency grade: {grade} ({trend}); weekly grades: {trend_line}\n\
         Clusters: {clusters}, nodes: {nodes}, on Spot: {spot:.0}%\n\n\
         Top recommended action: {action}\n",
        spend = money(f.spend),
        base = money(f.on_demand_baseline),
        hours = hours_label(f.hours_observed),
        saved = money(f.savings),
        pct = f.savings_percent,
        hib = money(f.hibernation_savings),
        hib_h = f.hibernation_hours_asleep,
        run = money(f.monthly_spend),
        pot = money(f.potential_savings),
        trend = trend_text(&f.trend),
        clusters = f.clusters,
        nodes = f.nodes,
        spot = f.spot_share * 100.0,
    );
    let row = |label: &str, value: String| {
        format!("<tr><td style=\"padding:4px 12px 4px 0;color:#555\">{label}</td><td style=\"padding:4px 0;font-weight:600\">{value}</td></tr>")
    };
    let grades_html = f
        .grade_trend
        .iter()
        .map(|g| {
            format!(
                "<td style=\"padding:2px 6px;text-align:center\"><div style=\"font-size:11px;color:#777\">{}</div><div style=\"font-weight:700\">{}</div></td>",
                g.week_start.format("%d %b"),
                esc(g.grade.as_deref().unwrap_or("-"))
            )
        })
        .collect::<String>();
    let html = format!(
        "<!doctype html><html><body style=\"font-family:system-ui,sans-serif;color:#1a1a1a;max-width:640px\">\
         <h2 style=\"margin-bottom:0\">Weekly report for {org}</h2><p style=\"color:#555;margin-top:4px\">{period} (UTC)</p>\
         <table style=\"border-collapse:collapse\">{r1}{r2}{r3}{r4}{r5}{r6}</table>\
         <h3>Efficiency grade: {grade} <span style=\"font-weight:400;color:#555\">({trend})</span></h3>\
         <table style=\"border-collapse:collapse\"><tr>{grades_html}</tr></table>\
         <h3>Top recommended action</h3><p>{action}</p>\
         </body></html>",
        org = esc(org_name),
        r1 = row("Spend this week", format!("{} <span style=\"font-weight:400;color:#777\">(on-demand equivalent {}, {} observed)</span>", money(f.spend), money(f.on_demand_baseline), hours_label(f.hours_observed))),
        r2 = row("Saved this week", format!("{} ({:.1}%)", money(f.savings), f.savings_percent)),
        r3 = row("Hibernation saved", format!("{} ({:.1} hours asleep)", money(f.hibernation_savings), f.hibernation_hours_asleep)),
        r4 = row("Monthly run rate", money(f.monthly_spend)),
        r5 = row("Potential savings", format!("{}/month", money(f.potential_savings))),
        r6 = row("Clusters / nodes / on Spot", format!("{} / {} / {:.0}%", f.clusters, f.nodes, f.spot_share * 100.0)),
        grade = esc(grade),
        trend = esc(trend_text(&f.trend)),
        action = esc(&action),
    );
    (subject, text, html)
}

/// Makes, stores and queues the report of `[start, end)`. `kind` is `scheduled` (at most
/// one per organization and week: `None` when it exists) or `manual`.
pub async fn generate(
    db: &Db,
    org: &str,
    kind: &str,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
    created_by: &str,
) -> Result<Option<ReportRow>, ApiError> {
    let o = orgs::org_by_id(db, org)
        .await?
        .ok_or(ApiError::NotFound("organization"))?;
    let f = figures(db, org, start, end).await?;
    let (subject, text, html) = render(&o.name, &f);
    let figures_json = serde_json::to_string(&f).map_err(|e| ApiError::Internal(e.to_string()))?;
    let Some(report) = notify::insert_report(
        db,
        org,
        &notify::NewReport {
            kind,
            period_start: start.timestamp_millis(),
            period_end: end.timestamp_millis(),
            figures: &figures_json,
            subject: &subject,
            html: &html,
            text_body: &text,
            created_by,
        },
    )
    .await?
    else {
        return Ok(None);
    };
    let settings = notify::settings_or_default(db, org).await?;
    let mut report = report;
    if settings.weekly_report_enabled != 0 || kind == "manual" {
        let payload = json!({"report_id": report.id, "figures": f});
        let dedup = format!("weekly_report:{}", report.id);
        if let Some(n) = notify::enqueue(
            db,
            org,
            &notify::NewNotification {
                kind: "weekly_report",
                dedup_key: Some(&dedup),
                subject: &subject,
                text_body: &text,
                html_body: Some(&html),
                payload: &payload.to_string(),
                created_by,
            },
        )
        .await?
        {
            notify::set_report_notification(db, &report.id, &n.id).await?;
            report.notification_id = Some(n.id);
        }
    }
    if created_by == "system" {
        let rec = NewAuditRecord {
            organization_id: Some(org.to_string()),
            actor_kind: "system".into(),
            actor_component: Some(COMPONENT.into()),
            action: "report.weekly_generated".into(),
            resource_type: "weekly_report".into(),
            resource_id: Some(report.id.clone()),
            outcome: "success".into(),
            request_id: uuid::Uuid::new_v4().to_string(),
            after: Some(json!({
                "period_start": start,
                "period_end": end,
                "notification_id": report.notification_id,
                "efficiency_grade": f.efficiency_grade,
                "savings": f.savings,
            })),
            ..Default::default()
        };
        audit::append(db, rec).await?;
    }
    Ok(Some(report))
}

/// One pass of the scheduler: the past week's report of every organization that has none
/// and existed before the week ended. Returns the reports made.
pub async fn schedule_once(db: &Db, now: DateTime<Utc>) -> Result<usize, ApiError> {
    let end = week_start(now);
    let start = end - chrono::Duration::days(7);
    let mut made = 0;
    for o in orgs::list_orgs(db).await? {
        if o.created_at >= end.timestamp_millis() {
            continue;
        }
        if notify::scheduled_report_exists(db, &o.id, start.timestamp_millis()).await? {
            continue;
        }
        match generate(db, &o.id, "scheduled", start, end, "system").await {
            Ok(Some(_)) => made += 1,
            Ok(None) => {}
            Err(e) => {
                tracing::warn!(component = COMPONENT, org = %o.id, error = %e, "weekly report not made")
            }
        }
    }
    Ok(made)
}

/// Runs [`schedule_once`] every `interval`.
pub async fn run(db: Db, interval: Duration) {
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        match schedule_once(&db, Utc::now()).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(component = COMPONENT, reports = n, "weekly reports made"),
            Err(e) => {
                tracing::warn!(component = COMPONENT, error = %e, "weekly report scheduler failed")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(s: &str) -> DateTime<Utc> {
        s.parse().expect("timestamp")
    }

    #[test]
    fn hours_are_counted_in_words() {
        assert_eq!(hours_label(1), "1 hour");
        assert_eq!(hours_label(0), "0 hours");
        assert_eq!(hours_label(168), "168 hours");
    }

    #[test]
    fn weeks_start_on_monday_midnight_utc() {
        assert_eq!(
            week_start(utc("2026-11-29T10:00:00Z")),
            utc("2026-11-23T00:00:00Z")
        );
        assert_eq!(
            week_start(utc("2026-11-23T00:00:00Z")),
            utc("2026-11-23T00:00:00Z")
        );
        assert_eq!(
            week_start(utc("2026-11-22T23:59:59Z")),
            utc("2026-11-16T00:00:00Z")
        );
    }

    fn gp(grade: Option<&str>, score: Option<f64>) -> GradePoint {
        GradePoint {
            week_start: utc("2026-11-23T00:00:00Z"),
            grade: grade.map(str::to_string),
            score,
        }
    }

    #[test]
    fn the_trend_compares_the_last_two_graded_weeks() {
        assert_eq!(trend_of(&[]), "new");
        assert_eq!(trend_of(&[gp(Some("C"), Some(0.5))]), "new");
        assert_eq!(
            trend_of(&[gp(Some("C"), Some(0.5)), gp(Some("B"), Some(0.7))]),
            "improving"
        );
        assert_eq!(
            trend_of(&[gp(Some("B"), Some(0.7)), gp(Some("B"), Some(0.6))]),
            "declining"
        );
        assert_eq!(
            trend_of(&[gp(Some("B"), Some(0.7)), gp(Some("B"), Some(0.705))]),
            "steady"
        );
        assert_eq!(
            trend_of(&[gp(Some("D"), None), gp(None, None), gp(Some("A"), None)]),
            "improving"
        );
    }

    #[test]
    fn money_has_cents_and_thousands() {
        assert_eq!(money(1234567.891), "$1,234,567.89");
        assert_eq!(money(0.5), "$0.50");
        assert_eq!(money(-12.0), "-$12.00");
        assert_eq!(money(999.999), "$1,000.00");
    }
}
