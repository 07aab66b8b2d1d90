//! Cluster hibernation: the weekly schedule (168 hourly slots in an IANA time zone,
//! pre-warm, holidays, per-date overrides, selective node groups, protected namespaces),
//! "sleep now" / "wake now" / "resume the schedule", and the state with this month's
//! savings. The cluster actor carries transitions out (see `spot_actors::hibernation`).

use std::collections::BTreeSet;
use std::time::Duration;

use chrono::{DateTime, Datelike, TimeZone, Utc};
use poem::web::Data;
use poem_openapi::param::{Path, Query};
use poem_openapi::payload::Json;
use poem_openapi::{Enum, Object, OpenApi};
use spot_actors::hibernation::{self as hib_actor, StoredOverride};
use spot_engine::hibernate::{self as hib, DayMode, Power};
use spot_models::hibernation as store;
use spot_models::inventory;

use super::{ts, ApiTags};
use crate::auth::BearerAuth;
use crate::body::Body;
use crate::error::ApiError;
use crate::gateway::AuditSlot;
use crate::state::AppState;

pub struct HibernationApi;

/// Longest "sleep now" / "wake now" (30 days).
const MAX_HOURS: u32 = 720;
/// How long "sleep now" / "wake now" wait for the transition before answering.
/// Short: a sleep that drains nodes first takes minutes; the answer then says
/// `transitioning` and the state endpoint (or `hibernation.changed` events) follows it.
const NOW_TIMEOUT: Duration = Duration::from_secs(8);

/// `sleep` (the whole local day) or `awake` (stay awake the whole local day).
#[derive(Enum, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[oai(rename_all = "snake_case")]
#[serde(rename_all = "snake_case")]
pub enum OverrideMode {
    Sleep,
    Awake,
}

/// A per-date override.
#[derive(Object, Clone, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DateOverride {
    /// Local date, `YYYY-MM-DD`.
    pub date: String,
    pub mode: OverrideMode,
}

/// A cluster's hibernation schedule as stored.
#[derive(Object, Clone, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HibernationScheduleInput {
    /// Whether the schedule acts (manual "sleep now" / "wake now" act either way).
    #[serde(default)]
    #[oai(default)]
    pub enabled: bool,
    /// 168 hourly slots, `true` awake, Monday 00:00 (local) first: index `day × 24 + hour`.
    pub slots: Vec<bool>,
    /// IANA time zone the slots are read in, e.g. `America/New_York` (DST-correct).
    pub timezone: String,
    /// Wake this many minutes before the schedule does (0–240).
    #[serde(default)]
    #[oai(default)]
    pub prewarm_minutes: i64,
    /// Local dates slept all day, `YYYY-MM-DD`.
    #[serde(default)]
    #[oai(default)]
    pub holidays: Vec<String>,
    /// Local dates forced asleep or awake all day (stronger than holidays).
    #[serde(default)]
    #[oai(default)]
    pub overrides: Vec<DateOverride>,
    /// Auto Scaling groups to hibernate; empty: all of the cluster's.
    #[serde(default)]
    #[oai(default)]
    pub node_groups: Vec<String>,
    /// Namespaces whose pods keep one node awake.
    #[serde(default)]
    #[oai(default)]
    pub protected_namespaces: Vec<String>,
}

/// A country whose national holidays can be imported.
#[derive(Object, Clone, serde::Serialize)]
pub struct HolidayCountry {
    /// ISO 3166-1 alpha-2 code.
    pub code: String,
    pub name: String,
}

#[derive(Object, Clone, serde::Serialize)]
pub struct HolidayCountryList {
    pub items: Vec<HolidayCountry>,
    /// First and last year holidays are computed for.
    pub first_year: i32,
    pub last_year: i32,
}

/// One national holiday.
#[derive(Object, Clone, serde::Serialize)]
pub struct NationalHoliday {
    /// Local date, `YYYY-MM-DD`.
    pub date: String,
    /// English name; a substitute day ends in " (observed)".
    pub name: String,
}

/// A country's national holidays in one year, by date.
#[derive(Object, Clone, serde::Serialize)]
pub struct NationalHolidayList {
    pub country: String,
    pub country_name: String,
    pub year: i32,
    pub items: Vec<NationalHoliday>,
}

/// A manual override in force.
#[derive(Object, Clone, serde::Serialize)]
pub struct ManualOverride {
    /// `awake` or `asleep`.
    pub state: String,
    /// Until when (none: until woken / put to sleep again or the schedule is resumed).
    pub until: Option<DateTime<Utc>>,
    pub set_by: Option<String>,
}

#[derive(Object, Clone, serde::Serialize)]
pub struct HibernationSchedule {
    pub enabled: bool,
    pub slots: Vec<bool>,
    pub timezone: String,
    pub prewarm_minutes: i64,
    pub holidays: Vec<String>,
    pub overrides: Vec<DateOverride>,
    pub node_groups: Vec<String>,
    pub protected_namespaces: Vec<String>,
    pub manual: Option<ManualOverride>,
    /// When the schedule was last saved (none: never; these are the defaults).
    pub updated_at: Option<DateTime<Utc>>,
}

/// "Sleep now" / "wake now".
#[derive(Object, Clone, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NowRequest {
    /// For how many hours (1–720). Without it: until the schedule next changes to the
    /// other state (or, when it never does, until told otherwise).
    #[serde(default)]
    pub hours: Option<u32>,
}

#[derive(Object, Clone, serde::Serialize)]
pub struct NextTransition {
    pub at: DateTime<Utc>,
    /// `awake` or `asleep`.
    pub to: String,
}

#[derive(Object, Clone, serde::Serialize)]
pub struct RememberedGroup {
    pub asg_name: String,
    pub min_size: i64,
    pub max_size: i64,
    pub desired_capacity: i64,
}

#[derive(Object, Clone, serde::Serialize)]
pub struct HibernationTransition {
    pub id: String,
    pub at: DateTime<Utc>,
    pub from_state: String,
    pub to_state: String,
    /// `schedule`, `manual` or `catch_up`.
    pub cause: String,
    /// What the schedule said: `manual`, `override`, `holiday`, `schedule`, `prewarm`, `disabled`.
    pub reason: String,
    /// `success`, `partial` (a best-effort step such as a drain failed) or `failed`.
    pub outcome: String,
    pub saving_hourly: f64,
    pub detail: serde_json::Value,
}

/// This month's figures (UTC calendar month, up to now).
#[derive(Object, Clone, serde::Serialize)]
pub struct HibernationSavings {
    pub month_start: DateTime<Utc>,
    pub hours_elapsed: f64,
    pub hours_asleep: f64,
    /// The cluster's hourly cost awake (before the current sleep, or now).
    pub baseline_hourly: f64,
    /// Running 24/7 at the baseline since the month began.
    pub counterfactual_usd: f64,
    /// Hours asleep × the hourly price of the capacity each sleep removed.
    pub saved_usd: f64,
    /// Counterfactual minus savings.
    pub actual_usd: f64,
}

#[derive(Object, Clone, serde::Serialize)]
pub struct HibernationStatus {
    /// `awake`, `asleep` or `transitioning`.
    pub state: String,
    /// Where a transition is heading.
    pub target: Option<String>,
    pub since: Option<DateTime<Utc>>,
    pub last_error: Option<String>,
    /// What the schedule wants now, and why.
    pub desired: String,
    pub reason: String,
    pub next_transition: Option<NextTransition>,
    pub manual: Option<ManualOverride>,
    /// Hourly price of the capacity the current sleep removed (0 awake).
    pub saving_hourly: f64,
    pub savings: HibernationSavings,
    /// Group sizes to restore on wake (while asleep).
    pub remembered: Vec<RememberedGroup>,
    /// The cluster's Auto Scaling groups (from the inventory), for selective hibernation.
    pub groups: Vec<String>,
    /// Latest transitions, newest first (at most 20).
    pub transitions: Vec<HibernationTransition>,
}

async fn cluster_of(
    state: &AppState,
    org: &str,
    id: &str,
) -> Result<inventory::ClusterView, ApiError> {
    inventory::cluster(&state.db, org, id)
        .await
        .map_err(ApiError::from)?
        .ok_or(ApiError::NotFound("cluster"))
}

fn default_row(org: &str, cluster_id: &str) -> store::ScheduleRow {
    store::ScheduleRow {
        cluster_id: cluster_id.into(),
        organization_id: org.into(),
        enabled: 0,
        slots: "1".repeat(hib::SLOTS),
        timezone: "UTC".into(),
        prewarm_minutes: 0,
        holidays: "[]".into(),
        overrides: "[]".into(),
        node_groups: "[]".into(),
        protected_namespaces: "[]".into(),
        manual_state: None,
        manual_until: None,
        manual_by: None,
        updated_by: None,
        updated_at: 0,
    }
}

fn corrupt(e: impl std::fmt::Display) -> ApiError {
    ApiError::Internal(format!("stored hibernation schedule: {e}"))
}

fn manual_of(row: &store::ScheduleRow) -> Option<ManualOverride> {
    let state = row.manual_state.clone()?;
    let until = row.manual_until.map(ts);
    // An override that ended is not shown.
    if until.is_some_and(|u| u <= Utc::now()) {
        return None;
    }
    Some(ManualOverride {
        state,
        until,
        set_by: row.manual_by.clone(),
    })
}

fn view_of(row: &store::ScheduleRow, saved: bool) -> Result<HibernationSchedule, ApiError> {
    let slots = hib::slots_from_string(&row.slots).map_err(corrupt)?;
    let overrides: Vec<StoredOverride> = serde_json::from_str(&row.overrides).map_err(corrupt)?;
    Ok(HibernationSchedule {
        enabled: row.enabled != 0,
        slots: slots.to_vec(),
        timezone: row.timezone.clone(),
        prewarm_minutes: row.prewarm_minutes,
        holidays: serde_json::from_str(&row.holidays).map_err(corrupt)?,
        overrides: overrides
            .into_iter()
            .map(|o| DateOverride {
                date: o.date,
                mode: match o.mode {
                    DayMode::Sleep => OverrideMode::Sleep,
                    DayMode::Awake => OverrideMode::Awake,
                },
            })
            .collect(),
        node_groups: serde_json::from_str(&row.node_groups).map_err(corrupt)?,
        protected_namespaces: serde_json::from_str(&row.protected_namespaces).map_err(corrupt)?,
        manual: manual_of(row),
        updated_at: saved.then(|| ts(row.updated_at)),
    })
}

fn engine_field(e: hib::ScheduleError) -> ApiError {
    ApiError::field(&e.field.clone(), e.to_string())
}

/// A Kubernetes namespace name (RFC 1123 label).
fn valid_namespace(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

/// Validates the input field by field; returns it normalized (dates sorted, no
/// duplicates) as the stored JSON strings.
struct Checked {
    slots: String,
    holidays: String,
    overrides: String,
    node_groups: String,
    protected: String,
}

fn check(body: &HibernationScheduleInput) -> Result<Checked, ApiError> {
    let slots = hib::slots_from(&body.slots).map_err(engine_field)?;
    hib::parse_tz(&body.timezone).map_err(engine_field)?;
    hib::check_prewarm(body.prewarm_minutes).map_err(engine_field)?;
    let mut holidays = BTreeSet::new();
    for (i, d) in body.holidays.iter().enumerate() {
        holidays.insert(hib::parse_date(&format!("holidays[{i}]"), d).map_err(engine_field)?);
    }
    let mut overrides = std::collections::BTreeMap::new();
    for (i, o) in body.overrides.iter().enumerate() {
        let field = format!("overrides[{i}].date");
        let d = hib::parse_date(&field, &o.date).map_err(engine_field)?;
        if overrides.insert(d, o.mode).is_some() {
            return Err(ApiError::field(
                &field,
                format!("{field}: {} has two overrides", o.date),
            ));
        }
    }
    for (i, g) in body.node_groups.iter().enumerate() {
        if g.trim().is_empty() || g.len() > 255 {
            return Err(ApiError::field(
                &format!("node_groups[{i}]"),
                "an Auto Scaling group name is 1–255 characters",
            ));
        }
    }
    for (i, n) in body.protected_namespaces.iter().enumerate() {
        if !valid_namespace(n) {
            return Err(ApiError::field(
                &format!("protected_namespaces[{i}]"),
                format!(
                    "`{n}` is not a namespace name (lowercase letters, digits, '-', at most 63)"
                ),
            ));
        }
    }
    let overrides: Vec<StoredOverride> = overrides
        .into_iter()
        .map(|(d, mode)| StoredOverride {
            date: d.format("%Y-%m-%d").to_string(),
            mode: match mode {
                OverrideMode::Sleep => DayMode::Sleep,
                OverrideMode::Awake => DayMode::Awake,
            },
        })
        .collect();
    let dedup = |v: &[String]| -> Vec<String> {
        v.iter()
            .cloned()
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect()
    };
    let json = |v: serde_json::Value| v.to_string();
    Ok(Checked {
        slots: hib::slots_to_string(&slots),
        holidays: json(serde_json::json!(holidays
            .iter()
            .map(|d| d.format("%Y-%m-%d").to_string())
            .collect::<Vec<_>>())),
        overrides: json(serde_json::json!(overrides)),
        node_groups: json(serde_json::json!(dedup(&body.node_groups))),
        protected: json(serde_json::json!(dedup(&body.protected_namespaces))),
    })
}

fn default_new(updated_by: Option<&str>) -> store::NewSchedule<'_> {
    store::NewSchedule {
        enabled: false,
        slots: ALL_AWAKE,
        timezone: "UTC",
        prewarm_minutes: 0,
        holidays: "[]",
        overrides: "[]",
        node_groups: "[]",
        protected_namespaces: "[]",
        updated_by,
    }
}

const ALL_AWAKE: &str = "111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111";

/// The state view: stored state, what the schedule wants, savings this month.
async fn status(
    state: &AppState,
    org: &str,
    cluster: &inventory::ClusterView,
) -> Result<HibernationStatus, ApiError> {
    let db = &state.db;
    let row = store::schedule(db, org, &cluster.id)
        .await
        .map_err(ApiError::from)?
        .unwrap_or_else(|| default_row(org, &cluster.id));
    let schedule = hib_actor::schedule_of(&row).map_err(corrupt)?;
    let now = Utc::now();
    let eval = schedule.evaluate(now);
    let st = store::state(db, org, &cluster.id)
        .await
        .map_err(ApiError::from)?;
    let month_start = Utc
        .with_ymd_and_hms(now.year(), now.month(), 1, 0, 0, 0)
        .single()
        .unwrap_or(now);
    let rows = store::transitions_since(db, org, &cluster.id, month_start.timestamp_millis())
        .await
        .map_err(ApiError::from)?;
    let changes: Vec<hib::Change> = rows
        .iter()
        .filter(|r| r.outcome != "failed")
        .filter_map(|r| {
            Some(hib::Change {
                at: ts(r.at),
                to: Power::parse(&r.to_state)?,
                saving_hourly: r.saving_hourly,
            })
        })
        .collect();
    let (hours_asleep, saved) = hib::savings(&changes, month_start, now);
    let asleep_now = st.as_ref().is_some_and(|s| s.state == "asleep");
    // Awake, the inventory's figure is the cluster's cost; asleep, the cost before the
    // current sleep (recorded with it).
    let before_sleep = rows
        .iter()
        .rev()
        .find(|r| r.to_state == "asleep" && r.outcome != "failed")
        .and_then(|r| serde_json::from_str::<serde_json::Value>(&r.detail).ok())
        .and_then(|d| d["cluster_hourly"].as_f64());
    let baseline_hourly = match (asleep_now, before_sleep) {
        (true, Some(b)) => b,
        _ => cluster.hourly_cost,
    };
    let hours_elapsed = (now - month_start).num_milliseconds() as f64 / 3_600_000.0;
    let counterfactual = baseline_hourly * hours_elapsed;
    let remembered = store::remembered(db, &cluster.id)
        .await
        .map_err(ApiError::from)?
        .into_iter()
        .map(|r| RememberedGroup {
            asg_name: r.asg_name,
            min_size: r.min_size,
            max_size: r.max_size,
            desired_capacity: r.desired_capacity,
        })
        .collect();
    let mut groups: BTreeSet<String> = inventory::cluster_instances(db, org, &cluster.id)
        .await
        .map_err(ApiError::from)?
        .into_iter()
        .filter_map(|i| i.asg_name)
        .collect();
    groups.extend(
        serde_json::from_str::<Vec<String>>(&row.node_groups)
            .unwrap_or_default()
            .into_iter(),
    );
    let transitions = store::recent_transitions(db, org, &cluster.id, 20)
        .await
        .map_err(ApiError::from)?
        .into_iter()
        .map(|r| HibernationTransition {
            detail: serde_json::from_str(&r.detail).unwrap_or_default(),
            id: r.id,
            at: ts(r.at),
            from_state: r.from_state,
            to_state: r.to_state,
            cause: r.cause,
            reason: r.reason,
            outcome: r.outcome,
            saving_hourly: r.saving_hourly,
        })
        .collect();
    Ok(HibernationStatus {
        state: st.as_ref().map_or("awake".into(), |s| s.state.clone()),
        target: st.as_ref().and_then(|s| s.target.clone()),
        since: st.as_ref().map(|s| ts(s.since)),
        last_error: st.as_ref().and_then(|s| s.last_error.clone()),
        desired: eval.power.as_str().into(),
        reason: serde_json::to_value(eval.reason)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default(),
        next_transition: eval.next.map(|n| NextTransition {
            at: n.at,
            to: n.to.as_str().into(),
        }),
        manual: manual_of(&row),
        saving_hourly: st.as_ref().map_or(0.0, |s| s.saving_hourly),
        savings: HibernationSavings {
            month_start,
            hours_elapsed,
            hours_asleep,
            baseline_hourly,
            counterfactual_usd: counterfactual,
            saved_usd: saved,
            actual_usd: (counterfactual - saved).max(0.0),
        },
        remembered,
        groups: groups.into_iter().collect(),
        transitions,
    })
}

/// Sets a manual override and has the cluster actor act on it now.
async fn now(
    state: &AppState,
    auth: &BearerAuth,
    slot: &AuditSlot,
    id: &str,
    power: Power,
    hours: Option<u32>,
) -> Result<HibernationStatus, ApiError> {
    auth.0.require_admin()?;
    let org = &auth.0.org_id;
    let cluster = cluster_of(state, org, id).await?;
    if let Some(h) = hours {
        if !(1..=MAX_HOURS).contains(&h) {
            return Err(ApiError::field(
                "hours",
                format!("hours must be 1–{MAX_HOURS}, got {h}"),
            ));
        }
    }
    let row = store::schedule(&state.db, org, &cluster.id)
        .await
        .map_err(ApiError::from)?
        .unwrap_or_else(|| default_row(org, &cluster.id));
    let schedule = hib_actor::schedule_of(&row).map_err(corrupt)?;
    let t = Utc::now();
    let until = match hours {
        Some(h) => Some(t + chrono::Duration::hours(i64::from(h))),
        // Until the schedule itself would be in the other state.
        None if schedule.enabled => {
            let other = match power {
                Power::Asleep => Power::Awake,
                Power::Awake => Power::Asleep,
            };
            schedule.next_scheduled(t, other)
        }
        None => None,
    };
    let by = Some(auth.0.user_id.as_str());
    store::set_manual(
        &state.db,
        org,
        &cluster.id,
        Some(power.as_str()),
        until.map(|u| u.timestamp_millis()),
        by,
        &default_new(by),
    )
    .await
    .map_err(ApiError::from)?;
    slot.diff(
        None,
        Some(serde_json::json!({"manual": power.as_str(), "until": until})),
    );
    match state
        .actors
        .hibernate(&cluster.account_id, &cluster.name, NOW_TIMEOUT)
        .await
    {
        Ok(Ok(_)) => {}
        // The override is stored: the actor's next tick acts on it.
        Ok(Err(e)) => {
            tracing::warn!(component = hib_actor::COMPONENT, cluster = %cluster.name, error = %e, "manual hibernation not carried out yet")
        }
        Err(e) => {
            tracing::warn!(component = hib_actor::COMPONENT, cluster = %cluster.name, error = %e, "cluster actor did not answer in time")
        }
    }
    status(state, org, &cluster).await
}

#[OpenApi(tag = "ApiTags::Hibernation")]
impl HibernationApi {
    /// The cluster's hibernation schedule (the defaults — disabled, awake around the
    /// clock, UTC — until one is saved).
    #[oai(
        path = "/clusters/:id/hibernation",
        method = "get",
        operation_id = "getHibernationSchedule"
    )]
    async fn get_schedule(
        &self,
        state: Data<&AppState>,
        auth: BearerAuth,
        id: Path<String>,
    ) -> poem::Result<Json<HibernationSchedule>> {
        let org = &auth.0.org_id;
        let cluster = cluster_of(&state, org, &id).await?;
        let row = store::schedule(&state.db, org, &cluster.id)
            .await
            .map_err(ApiError::from)?;
        let saved = row.is_some();
        let row = row.unwrap_or_else(|| default_row(org, &cluster.id));
        Ok(Json(view_of(&row, saved)?))
    }

    /// Replaces the cluster's hibernation schedule (admins and owners); 422 names the
    /// field (`slots` must have 168 entries, `timezone` an IANA zone, `prewarm_minutes`
    /// 0–240, dates `YYYY-MM-DD`). The manual override, if any, stays. The cluster actor
    /// evaluates the new schedule at once.
    #[oai(
        path = "/clusters/:id/hibernation",
        method = "put",
        operation_id = "putHibernationSchedule"
    )]
    async fn put_schedule(
        &self,
        state: Data<&AppState>,
        auth: BearerAuth,
        slot: Data<&AuditSlot>,
        id: Path<String>,
        body: Body<HibernationScheduleInput>,
    ) -> poem::Result<Json<HibernationSchedule>> {
        slot.record("cluster.hibernation.update", "cluster", Some(&id));
        auth.0.require_admin()?;
        let org = &auth.0.org_id;
        let cluster = cluster_of(&state, org, &id).await?;
        let c = check(&body)?;
        let before = store::schedule(&state.db, org, &cluster.id)
            .await
            .map_err(ApiError::from)?;
        let row = store::save_schedule(
            &state.db,
            org,
            &cluster.id,
            &store::NewSchedule {
                enabled: body.enabled,
                slots: &c.slots,
                timezone: &body.timezone,
                prewarm_minutes: body.prewarm_minutes,
                holidays: &c.holidays,
                overrides: &c.overrides,
                node_groups: &c.node_groups,
                protected_namespaces: &c.protected,
                updated_by: Some(&auth.0.user_id),
            },
        )
        .await
        .map_err(ApiError::from)?;
        let view = view_of(&row, true)?;
        let as_json = |v: &HibernationSchedule| {
            let mut j = serde_json::to_value(v).unwrap_or_default();
            if let Some(o) = j.as_object_mut() {
                o.remove("updated_at");
                o.remove("manual");
            }
            j
        };
        slot.diff(
            before
                .as_ref()
                .and_then(|b| view_of(b, true).ok())
                .map(|b| as_json(&b)),
            Some(as_json(&view)),
        );
        state
            .actors
            .hibernate_soon(&cluster.account_id, &cluster.name);
        Ok(Json(view))
    }

    /// Hibernate now (admins and owners): the cluster sleeps for `hours`, or until the
    /// schedule next wakes it. Answers with the state once the cluster actor has acted
    /// (or after 8 s, still `transitioning`).
    #[oai(
        path = "/clusters/:id/hibernation/sleep",
        method = "post",
        operation_id = "hibernateClusterNow"
    )]
    async fn sleep_now(
        &self,
        state: Data<&AppState>,
        auth: BearerAuth,
        slot: Data<&AuditSlot>,
        id: Path<String>,
        body: Body<NowRequest>,
    ) -> poem::Result<Json<HibernationStatus>> {
        slot.record("cluster.hibernation.sleep_now", "cluster", Some(&id));
        Ok(Json(
            now(&state, &auth, &slot, &id, Power::Asleep, body.hours).await?,
        ))
    }

    /// Wake now (admins and owners): the cluster stays awake for `hours`, or until the
    /// schedule next puts it to sleep; the remembered group sizes are restored exactly.
    #[oai(
        path = "/clusters/:id/hibernation/wake",
        method = "post",
        operation_id = "wakeClusterNow"
    )]
    async fn wake_now(
        &self,
        state: Data<&AppState>,
        auth: BearerAuth,
        slot: Data<&AuditSlot>,
        id: Path<String>,
        body: Body<NowRequest>,
    ) -> poem::Result<Json<HibernationStatus>> {
        slot.record("cluster.hibernation.wake_now", "cluster", Some(&id));
        Ok(Json(
            now(&state, &auth, &slot, &id, Power::Awake, body.hours).await?,
        ))
    }

    /// Ends a manual override (admins and owners): the schedule decides again.
    #[oai(
        path = "/clusters/:id/hibernation/resume",
        method = "post",
        operation_id = "resumeHibernationSchedule"
    )]
    async fn resume(
        &self,
        state: Data<&AppState>,
        auth: BearerAuth,
        slot: Data<&AuditSlot>,
        id: Path<String>,
    ) -> poem::Result<Json<HibernationStatus>> {
        slot.record("cluster.hibernation.resume", "cluster", Some(&id));
        auth.0.require_admin()?;
        let org = &auth.0.org_id;
        let cluster = cluster_of(&state, org, &id).await?;
        let by = Some(auth.0.user_id.as_str());
        store::set_manual(
            &state.db,
            org,
            &cluster.id,
            None,
            None,
            by,
            &default_new(by),
        )
        .await
        .map_err(ApiError::from)?;
        slot.diff(None, Some(serde_json::json!({"manual": null})));
        state
            .actors
            .hibernate_soon(&cluster.account_id, &cluster.name);
        Ok(Json(status(&state, org, &cluster).await?))
    }

    /// Countries whose national holidays the hibernation calendar can import (computed
    /// from each country's rules on the server; nothing is fetched).
    #[oai(
        path = "/holidays/countries",
        method = "get",
        operation_id = "listHolidayCountries"
    )]
    async fn holiday_countries(&self, _auth: BearerAuth) -> Json<HolidayCountryList> {
        Json(HolidayCountryList {
            items: spot_engine::holidays::COUNTRIES
                .iter()
                .map(|c| HolidayCountry {
                    code: c.code.to_string(),
                    name: c.name.to_string(),
                })
                .collect(),
            first_year: *spot_engine::holidays::YEARS.start(),
            last_year: *spot_engine::holidays::YEARS.end(),
        })
    }

    /// The national public holidays of `country` (ISO code, see `/holidays/countries`) in
    /// `year` (default: the current year), for the one-click import into a hibernation
    /// calendar. 422 names `country` or `year` when unsupported.
    #[oai(
        path = "/holidays",
        method = "get",
        operation_id = "listNationalHolidays"
    )]
    async fn national_holidays(
        &self,
        _auth: BearerAuth,
        country: Query<Option<String>>,
        year: Query<Option<String>>,
    ) -> poem::Result<Json<NationalHolidayList>> {
        use spot_engine::holidays as hd;
        let code = country.0.unwrap_or_default();
        let c = hd::country(code.trim()).ok_or_else(|| {
            ApiError::field(
                "country",
                hd::HolidayError::Country(code.clone()).to_string(),
            )
        })?;
        let year = match year.0.as_deref().map(str::trim) {
            None | Some("") => Utc::now().year(),
            Some(y) => y
                .parse::<i32>()
                .map_err(|_| ApiError::field("year", format!("{y:?} is not a year")))?,
        };
        let days = hd::national(c.code, year).map_err(|e| match e {
            hd::HolidayError::Country(_) => ApiError::field("country", e.to_string()),
            hd::HolidayError::Year(_) => ApiError::field("year", e.to_string()),
        })?;
        Ok(Json(NationalHolidayList {
            country: c.code.to_string(),
            country_name: c.name.to_string(),
            year,
            items: days
                .into_iter()
                .map(|h| NationalHoliday {
                    date: h.date.to_string(),
                    name: h.name,
                })
                .collect(),
        }))
    }

    /// The cluster's hibernation state: stored state, what the schedule wants and when it
    /// next changes, remembered group sizes, the latest transitions, and this month's
    /// savings against running 24/7.
    #[oai(
        path = "/clusters/:id/hibernation/state",
        method = "get",
        operation_id = "getHibernationState"
    )]
    async fn get_state(
        &self,
        state: Data<&AppState>,
        auth: BearerAuth,
        id: Path<String>,
    ) -> poem::Result<Json<HibernationStatus>> {
        let org = &auth.0.org_id;
        let cluster = cluster_of(&state, org, &id).await?;
        Ok(Json(status(&state, org, &cluster).await?))
    }
}
