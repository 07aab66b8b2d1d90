//! The Lab (super_admin only, seeds Part 3 and `/lab/*`): a live single-instance switch
//! with timed phases, parallel A/B tests of two risk models, and graduation behind a safety
//! checklist computed from those results. The work runs in `spot_jobs::lab`; these handlers
//! validate, authorize and audit. A customer (or an impersonating admin) gets 403.

use poem::web::Data;
use poem_openapi::param::Path;
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Object, OpenApi};
use spot_engine::lab::Checklist;
use spot_jobs::lab as work;
use spot_models::lab as store;
use spot_models::{accounts, agents, jobs, risk as registry};

use super::jobs::{enqueue, JobView};
use super::{ts, ApiTags};
use crate::auth::BearerAuth;
use crate::body::Body;
use crate::error::ApiError;
use crate::gateway::AuditSlot;
use crate::state::AppState;

pub struct LabApi;

/// Longest A/B test: 7 days.
const MAX_AB_MINUTES: u32 = 7 * 24 * 60;
/// Largest instance set of an A/B test (both arms together).
const MAX_AB_INSTANCES: usize = 40;

#[derive(Object, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LabSwitchRequest {
    /// The EC2 id of a running instance that is a node of a cluster with a connected agent.
    pub instance_id: String,
    /// The linked account (internal id) when the same EC2 id exists in several.
    #[serde(default)]
    pub account_id: Option<String>,
    /// The model that picks the replacement pool: a registry id or `shipped:risk-v1`.
    pub model_id: String,
    /// Force the replacement's instance type (e.g. `c5.large`); absent: the model chooses
    /// among types at least as large.
    #[serde(default)]
    pub target_type: Option<String>,
}

/// One timed phase of a switch.
#[derive(Object)]
pub struct LabPhase {
    pub seq: i64,
    /// spot_request, boot, node_ready, cordon, drain, volume_detach, volume_attach, terminate.
    pub name: String,
    /// running, done, skipped or failed.
    pub status: String,
    pub started_at: chrono::DateTime<chrono::Utc>,
    pub finished_at: Option<chrono::DateTime<chrono::Utc>>,
    pub duration_ms: Option<i64>,
    pub detail: serde_json::Value,
}

#[derive(Object)]
pub struct LabSwitch {
    pub id: String,
    pub organization_id: String,
    pub account_id: String,
    pub cluster_id: String,
    pub instance_id: String,
    pub node_name: Option<String>,
    pub model_id: String,
    pub target_type: Option<String>,
    /// Where the model sent the replacement.
    pub chosen_type: Option<String>,
    pub chosen_az: Option<String>,
    pub chosen_lifecycle: Option<String>,
    pub new_instance_id: Option<String>,
    pub job_id: Option<String>,
    /// queued, running, succeeded or failed.
    pub status: String,
    pub error: Option<String>,
    pub requested_by: String,
    pub created_at: chrono::DateTime<chrono::Utc>,
    pub started_at: Option<chrono::DateTime<chrono::Utc>>,
    pub finished_at: Option<chrono::DateTime<chrono::Utc>>,
    /// In execution order.
    pub phases: Vec<LabPhase>,
}

#[derive(Object)]
pub struct LabSwitchList {
    pub items: Vec<LabSwitch>,
}

#[derive(Object)]
pub struct LabSwitchStarted {
    pub switch: LabSwitch,
    /// The `lab_switch` job (its phases stream as `lab.phase` on `/api/admin/events`).
    pub job: JobView,
}

#[derive(ApiResponse)]
pub enum SwitchAccepted {
    /// The switch is queued.
    #[oai(status = 202)]
    Accepted(Json<LabSwitchStarted>),
}

/// A running instance the Lab can use.
#[derive(Object)]
pub struct LabCandidate {
    pub organization_id: String,
    pub organization_name: String,
    pub account_id: String,
    pub account_name: String,
    /// sim or aws.
    pub provider: String,
    pub cluster_id: Option<String>,
    pub cluster_name: Option<String>,
    pub instance_id: String,
    pub instance_type: String,
    pub lifecycle: String,
    pub az: String,
    pub hourly_price: f64,
    /// A node of a cluster whose agent is connected: it can be switched live.
    pub switchable: bool,
    /// Held by a running A/B test.
    pub in_ab_test: bool,
    /// Prepared for the Lab (tag `spot-optimizer/lab-ready`: it carries a data volume).
    pub lab_ready: bool,
}

/// A model the Lab can run.
#[derive(Object)]
pub struct LabModel {
    pub id: String,
    pub name: String,
    pub status: String,
}

#[derive(Object)]
pub struct LabCandidates {
    pub instances: Vec<LabCandidate>,
    pub models: Vec<LabModel>,
}

#[derive(Object, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LabAbTestRequest {
    /// Display name (default: "model A vs model B").
    #[serde(default)]
    pub name: Option<String>,
    /// The linked account whose instances form the two sets.
    pub account_id: String,
    pub model_a: String,
    pub model_b: String,
    /// Tag value of set A (`spot-optimizer/lab`), default `lab-stable`.
    #[serde(default)]
    pub tag_a: Option<String>,
    /// Tag value of set B, default `lab-beta`.
    #[serde(default)]
    pub tag_b: Option<String>,
    /// The instances to split (running, not Kubernetes nodes); absent: every running
    /// standalone instance of the account (at most 40).
    #[serde(default)]
    pub instance_ids: Option<Vec<String>>,
    /// How long the test runs (1–10080 minutes).
    pub duration_minutes: u32,
    /// Seconds between decisions (5–3600), default 60.
    #[serde(default)]
    pub tick_seconds: Option<u32>,
}

#[derive(Object)]
pub struct LabMember {
    pub arm: String,
    pub slot: i64,
    pub original_instance_id: String,
    pub instance_id: String,
    pub instance_type: String,
    pub az: String,
    pub lifecycle: String,
}

#[derive(Object)]
pub struct LabSample {
    pub tick: i64,
    pub arm: String,
    pub at: chrono::DateTime<chrono::Utc>,
    pub hourly_cost: f64,
    /// The same instance types at on-demand prices.
    pub on_demand_cost: f64,
    pub running: i64,
    pub interruptions: i64,
    pub decisions: i64,
}

#[derive(Object)]
pub struct LabDecision {
    pub tick: i64,
    pub arm: String,
    pub slot: i64,
    /// The model that made the decision.
    pub model_id: String,
    pub instance_id: String,
    /// keep, move or replace.
    pub action: String,
    pub from_pool: String,
    pub to_pool: Option<String>,
    pub probability: Option<f64>,
    pub reason: String,
    pub outcome: String,
    pub new_instance_id: Option<String>,
    pub at: chrono::DateTime<chrono::Utc>,
}

#[derive(Object)]
pub struct LabAbTest {
    pub id: String,
    pub name: String,
    pub organization_id: String,
    pub account_id: String,
    pub model_a: String,
    pub model_b: String,
    pub tag_a: String,
    pub tag_b: String,
    /// running, completed or stopped.
    pub status: String,
    pub tick_seconds: i64,
    pub starts_at: chrono::DateTime<chrono::Utc>,
    pub ends_at: chrono::DateTime<chrono::Utc>,
    pub ticks: i64,
    pub created_by: String,
    pub finished_at: Option<chrono::DateTime<chrono::Utc>>,
    /// Per-arm summary and the verdict table (so far, while running).
    pub verdict: Option<serde_json::Value>,
}

#[derive(Object)]
pub struct LabAbTestDetail {
    pub test: LabAbTest,
    pub members: Vec<LabMember>,
    /// One point per arm per tick, oldest first.
    pub samples: Vec<LabSample>,
    /// Newest first (at most 200).
    pub decisions: Vec<LabDecision>,
}

#[derive(Object)]
pub struct LabAbTestList {
    pub items: Vec<LabAbTest>,
}

#[derive(ApiResponse)]
pub enum AbCreated {
    /// The test runs; its first tick is due at once.
    #[oai(status = 201)]
    Created(Json<LabAbTestDetail>),
}

#[derive(Object, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LabGraduateRequest {
    pub model_id: String,
}

#[derive(Object)]
pub struct LabCheckItem {
    pub key: String,
    pub label: String,
    pub passed: bool,
    pub detail: String,
}

#[derive(Object)]
pub struct LabChecklist {
    pub model_id: String,
    pub passed: bool,
    pub items: Vec<LabCheckItem>,
}

#[derive(Object)]
pub struct LabGraduation {
    pub model_id: String,
    pub graduated_by: String,
    pub graduated_at: chrono::DateTime<chrono::Utc>,
    pub checklist: LabChecklist,
    /// The model now serving decisions.
    pub active_model: String,
}

fn checklist_view(model_id: &str, c: Checklist) -> LabChecklist {
    LabChecklist {
        model_id: model_id.to_string(),
        passed: c.passed,
        items: c
            .items
            .into_iter()
            .map(|i| LabCheckItem {
                key: i.key,
                label: i.label,
                passed: i.passed,
                detail: i.detail,
            })
            .collect(),
    }
}

async fn switch_view(state: &AppState, s: store::Switch) -> Result<LabSwitch, ApiError> {
    let phases = store::phases(&state.db, &s.id)
        .await
        .map_err(ApiError::from)?
        .into_iter()
        .map(|p| LabPhase {
            seq: p.seq,
            name: p.name,
            status: p.status,
            started_at: ts(p.started_at),
            finished_at: p.finished_at.map(ts),
            duration_ms: p.duration_ms,
            detail: serde_json::from_str(&p.detail).unwrap_or_default(),
        })
        .collect();
    Ok(LabSwitch {
        id: s.id,
        organization_id: s.organization_id,
        account_id: s.account_id,
        cluster_id: s.cluster_id,
        instance_id: s.instance_id,
        node_name: s.node_name,
        model_id: s.model_id,
        target_type: s.target_type,
        chosen_type: s.chosen_type,
        chosen_az: s.chosen_az,
        chosen_lifecycle: s.chosen_lifecycle,
        new_instance_id: s.new_instance_id,
        job_id: s.job_id,
        status: s.status,
        error: s.error,
        requested_by: s.requested_by,
        created_at: ts(s.created_at),
        started_at: s.started_at.map(ts),
        finished_at: s.finished_at.map(ts),
        phases,
    })
}

async fn test_view(state: &AppState, t: store::AbTest) -> Result<LabAbTest, ApiError> {
    let verdict = match &t.verdict {
        Some(v) => serde_json::from_str(v).ok(),
        None => serde_json::to_value(
            work::verdict_of(&state.db, &t)
                .await
                .map_err(ApiError::from)?,
        )
        .ok(),
    };
    Ok(LabAbTest {
        id: t.id,
        name: t.name,
        organization_id: t.organization_id,
        account_id: t.account_id,
        model_a: t.model_a,
        model_b: t.model_b,
        tag_a: t.tag_a,
        tag_b: t.tag_b,
        status: t.status,
        tick_seconds: t.tick_secs,
        starts_at: ts(t.starts_at),
        ends_at: ts(t.ends_at),
        ticks: t.ticks,
        created_by: t.created_by,
        finished_at: t.finished_at.map(ts),
        verdict,
    })
}

async fn test_detail(state: &AppState, t: store::AbTest) -> Result<LabAbTestDetail, ApiError> {
    let id = t.id.clone();
    let members = store::members(&state.db, &id)
        .await
        .map_err(ApiError::from)?
        .into_iter()
        .map(|m| LabMember {
            arm: m.arm,
            slot: m.slot,
            original_instance_id: m.original_instance_id,
            instance_id: m.instance_id,
            instance_type: m.instance_type,
            az: m.az,
            lifecycle: m.lifecycle,
        })
        .collect();
    let samples = store::samples(&state.db, &id)
        .await
        .map_err(ApiError::from)?
        .into_iter()
        .map(|s| LabSample {
            tick: s.tick,
            arm: s.arm,
            at: ts(s.at),
            hourly_cost: s.hourly_cost,
            on_demand_cost: s.on_demand_cost,
            running: s.running,
            interruptions: s.interruptions,
            decisions: s.decisions,
        })
        .collect();
    let decisions = store::decisions(&state.db, &id, 200)
        .await
        .map_err(ApiError::from)?
        .into_iter()
        .map(|d| LabDecision {
            tick: d.tick,
            arm: d.arm,
            slot: d.slot,
            model_id: d.model_id,
            instance_id: d.instance_id,
            action: d.action,
            from_pool: d.from_pool,
            to_pool: d.to_pool,
            probability: d.probability,
            reason: d.reason,
            outcome: d.outcome,
            new_instance_id: d.new_instance_id,
            at: ts(d.at),
        })
        .collect();
    Ok(LabAbTestDetail {
        test: test_view(state, t).await?,
        members,
        samples,
        decisions,
    })
}

/// A model id the Lab may run: the shipped model or a registry entry that passed
/// validation. `field` names the request field in the 422.
async fn known_model(state: &AppState, field: &str, id: &str) -> Result<(), ApiError> {
    if id == spot_actors::risk::SHIPPED_ID {
        return Ok(());
    }
    if id.is_empty() || id.len() > 100 {
        return Err(ApiError::field(field, "must name a model"));
    }
    match registry::model(&state.db, id)
        .await
        .map_err(ApiError::from)?
    {
        Some(m) if m.status != registry::UPLOADED => Ok(()),
        Some(_) => Err(ApiError::field(
            field,
            format!("model {id} has not passed validation"),
        )),
        None => Err(ApiError::field(
            field,
            format!(
                "no model {id}: use a registry id or `{}`",
                spot_actors::risk::SHIPPED_ID
            ),
        )),
    }
}

fn tag_value(field: &str, v: Option<&str>, default: &str) -> Result<String, ApiError> {
    let v = v.unwrap_or(default).trim();
    if v.is_empty()
        || v.len() > 64
        || !v
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
    {
        return Err(ApiError::field(
            field,
            "must be 1 to 64 letters, digits, '-', '_' or '.'",
        ));
    }
    Ok(v.to_string())
}

/// A model's registry name (or the shipped model's), for default test names.
async fn model_display_name(state: &AppState, id: &str) -> String {
    if id == spot_actors::risk::SHIPPED_ID {
        return "risk-v1 (shipped)".to_string();
    }
    registry::model(&state.db, id)
        .await
        .ok()
        .flatten()
        .map_or_else(|| id.to_string(), |m| m.name)
}

/// The safety checklist of `model_id`; `Err(409)` naming the failing items when it does
/// not pass. Graduation (here and on the AI model page) goes through this.
pub async fn require_checklist(state: &AppState, model_id: &str) -> Result<Checklist, ApiError> {
    let c = work::checklist_of(&state.db, model_id)
        .await
        .map_err(ApiError::from)?;
    if !c.passed {
        let failing: Vec<String> = c
            .items
            .iter()
            .filter(|i| !i.passed)
            .map(|i| format!("{} ({}: {})", i.key, i.label, i.detail))
            .collect();
        return Err(ApiError::Conflict {
            field: Some("model_id".into()),
            message: format!(
                "graduation refused: the Lab's safety checklist fails: {}",
                failing.join("; ")
            ),
        });
    }
    Ok(c)
}

#[OpenApi(prefix_path = "/lab", tag = "ApiTags::Admin")]
impl LabApi {
    /// Running instances of every organization (super_admin only), with whether each can
    /// be switched live (a node of a cluster whose agent is connected), and the models the
    /// Lab can run.
    #[oai(path = "/candidates", method = "get", operation_id = "labCandidates")]
    async fn candidates(
        &self,
        state: Data<&AppState>,
        auth: BearerAuth,
    ) -> poem::Result<Json<LabCandidates>> {
        auth.0.require_super_admin()?;
        let rows = store::candidates(&state.db, 2000)
            .await
            .map_err(ApiError::from)?;
        let busy = work::busy_instances(&state.db)
            .await
            .map_err(ApiError::from)?;
        let now = chrono::Utc::now();
        let mut connected: std::collections::HashMap<String, bool> = Default::default();
        let mut instances = Vec::with_capacity(rows.len());
        for c in rows {
            let switchable = match (
                &c.cluster_id,
                connected.get(c.cluster_id.as_deref().unwrap_or("")),
            ) {
                (None, _) => false,
                (Some(_), Some(v)) => *v,
                (Some(cl), None) => {
                    let v = agents::is_connected(&state.db, &c.organization_id, cl, now)
                        .await
                        .map_err(ApiError::from)?;
                    connected.insert(cl.clone(), v);
                    v
                }
            };
            let lab_ready = serde_json::from_str::<serde_json::Value>(&c.tags)
                .ok()
                .is_some_and(|t| t["spot-optimizer/lab-ready"] == "true");
            instances.push(LabCandidate {
                lab_ready,
                in_ab_test: busy.contains(&c.instance_id),
                organization_id: c.organization_id,
                organization_name: c.organization_name,
                account_id: c.account_id,
                account_name: c.account_name,
                provider: c.provider,
                cluster_id: c.cluster_id,
                cluster_name: c.cluster_name,
                instance_id: c.instance_id,
                instance_type: c.instance_type,
                lifecycle: c.lifecycle,
                az: c.az,
                hourly_price: c.hourly_price,
                switchable,
            });
        }
        let mut models = vec![LabModel {
            id: spot_actors::risk::SHIPPED_ID.into(),
            name: "risk-v1 (shipped)".into(),
            status: "shipped".into(),
        }];
        models.extend(
            registry::list_models(&state.db)
                .await
                .map_err(ApiError::from)?
                .into_iter()
                .filter(|m| m.status != registry::UPLOADED)
                .map(|m| LabModel {
                    id: m.id,
                    name: m.name,
                    status: m.status,
                }),
        );
        Ok(Json(LabCandidates { instances, models }))
    }

    /// Live single-instance switch (super_admin only): the model picks the replacement pool
    /// (of `target_type` when given), then the safe executor launches it, waits until it
    /// boots and is a Ready node, cordons and drains the old node, moves its data volumes
    /// and terminates it. Each phase is timed, stored and streamed (`lab.phase` on
    /// `/api/admin/events`). 404 for an unknown running instance; 409 when its cluster's
    /// agent is not connected, the cluster already runs a node-changing job, or an A/B
    /// test holds the instance.
    #[oai(path = "/live-switch", method = "post", operation_id = "labLiveSwitch")]
    async fn live_switch(
        &self,
        state: Data<&AppState>,
        auth: BearerAuth,
        slot: Data<&AuditSlot>,
        body: Body<LabSwitchRequest>,
    ) -> poem::Result<SwitchAccepted> {
        slot.record("lab.live_switch", "instance", Some(&body.instance_id));
        auth.0.require_super_admin()?;
        let b = &body.0;
        if b.instance_id.is_empty() || b.instance_id.len() > 64 {
            return Err(ApiError::field("instance_id", "must be an EC2 instance id").into());
        }
        known_model(&state, "model_id", &b.model_id).await?;
        if let Some(t) = &b.target_type {
            let ok = t.len() <= 32
                && t.split_once('.').is_some_and(|(f, s)| {
                    !f.is_empty()
                        && !s.is_empty()
                        && t.chars()
                            .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-')
                });
            if !ok {
                return Err(ApiError::field(
                    "target_type",
                    "must be an instance type such as `c5.large`",
                )
                .into());
            }
        }
        let found = store::candidate(&state.db, &b.instance_id, b.account_id.as_deref())
            .await
            .map_err(ApiError::from)?;
        let c = match found.len() {
            0 => return Err(ApiError::NotFound("running instance").into()),
            1 => found
                .into_iter()
                .next()
                .ok_or(ApiError::NotFound("running instance"))?,
            _ => {
                return Err(ApiError::field(
                    "account_id",
                    "this instance id exists in several linked accounts: name the account",
                )
                .into())
            }
        };
        let Some(cluster_id) = c.cluster_id.clone() else {
            return Err(ApiError::field(
                "instance_id",
                "the live switch moves Kubernetes nodes (cordon and drain through the agent): this instance is not a node of a cluster",
            )
            .into());
        };
        if let Some(t) = &b.target_type {
            let account = accounts::by_id(&state.db, &c.account_id)
                .await
                .map_err(ApiError::from)?
                .ok_or(ApiError::NotFound("account"))?;
            let cloud = work::connect_account(&state.deps, &account)
                .await
                .map_err(|e| ApiError::Conflict {
                    field: None,
                    message: format!("the instance's account is unreachable: {e}"),
                })?;
            let catalog = cloud
                .instance_type_catalog()
                .await
                .map_err(|e| ApiError::Unavailable(spot_actors::system::human(&e)))?;
            if !catalog.iter().any(|x| &x.name == t) {
                return Err(ApiError::field(
                    "target_type",
                    format!("{t} is not offered in {}", cloud.region()),
                )
                .into());
            }
        }
        if !agents::is_connected(
            &state.db,
            &c.organization_id,
            &cluster_id,
            chrono::Utc::now(),
        )
        .await
        .map_err(ApiError::from)?
        {
            return Err(ApiError::Conflict {
                field: Some("instance_id".into()),
                message: format!(
                    "the agent of cluster {} is not connected: the switch drains the node through it",
                    c.cluster_name.as_deref().unwrap_or(&cluster_id)
                ),
            }
            .into());
        }
        if work::busy_instances(&state.db)
            .await
            .map_err(ApiError::from)?
            .contains(&c.instance_id)
        {
            return Err(ApiError::Conflict {
                field: Some("instance_id".into()),
                message: "a running A/B test holds this instance".into(),
            }
            .into());
        }
        let sw = store::insert_switch(
            &state.db,
            store::NewSwitch {
                organization_id: &c.organization_id,
                account_id: &c.account_id,
                cluster_id: &cluster_id,
                instance_id: &c.instance_id,
                node_name: None,
                model_id: &b.model_id,
                target_type: b.target_type.as_deref(),
                requested_by: &auth.0.email,
            },
        )
        .await
        .map_err(ApiError::from)?;
        let job = match jobs::insert(
            &state.db,
            jobs::NewJob {
                organization_id: Some(&c.organization_id),
                kind: work::SWITCH_KIND,
                target_id: Some(&cluster_id),
                dry_run: false,
                requested_by: Some(&auth.0.user_id),
                safe_mode: state.cfg.safe_mode,
            },
        )
        .await
        {
            Ok(j) => j,
            Err(spot_models::DbError::Conflict(_)) => {
                let _ = store::finish_switch(
                    &state.db,
                    &sw.id,
                    store::FAILED,
                    Some("the cluster already runs a node-changing job"),
                )
                .await;
                return Err(ApiError::Conflict {
                    field: Some("instance_id".into()),
                    message: "the instance's cluster already has an optimization, force on-demand or Lab switch queued or running".into(),
                }
                .into());
            }
            Err(e) => return Err(ApiError::from(e).into()),
        };
        store::set_switch_job(&state.db, &sw.id, &job.id)
            .await
            .map_err(ApiError::from)?;
        slot.record("lab.live_switch", "lab_switch", Some(&sw.id));
        slot.diff(
            None,
            Some(serde_json::json!({"switch_id": sw.id, "job_id": job.id, "instance_id": c.instance_id, "organization_id": c.organization_id, "model_id": b.model_id, "target_type": b.target_type})),
        );
        let job = enqueue(&state, job).await?;
        let sw = store::switch(&state.db, &sw.id)
            .await
            .map_err(ApiError::from)?
            .ok_or(ApiError::NotFound("lab switch"))?;
        Ok(SwitchAccepted::Accepted(Json(LabSwitchStarted {
            switch: switch_view(&state, sw).await?,
            job,
        })))
    }

    /// Recent live switches with their phases, newest first (super_admin only).
    #[oai(path = "/switches", method = "get", operation_id = "labListSwitches")]
    async fn switches(
        &self,
        state: Data<&AppState>,
        auth: BearerAuth,
    ) -> poem::Result<Json<LabSwitchList>> {
        auth.0.require_super_admin()?;
        let mut items = Vec::new();
        for s in store::list_switches(&state.db, 50)
            .await
            .map_err(ApiError::from)?
        {
            items.push(switch_view(&state, s).await?);
        }
        Ok(Json(LabSwitchList { items }))
    }

    /// One live switch with its timed phases (super_admin only).
    #[oai(path = "/switches/:id", method = "get", operation_id = "labGetSwitch")]
    async fn switch(
        &self,
        state: Data<&AppState>,
        auth: BearerAuth,
        id: Path<String>,
    ) -> poem::Result<Json<LabSwitch>> {
        auth.0.require_super_admin()?;
        let s = store::switch(&state.db, &id)
            .await
            .map_err(ApiError::from)?
            .ok_or(ApiError::NotFound("lab switch"))?;
        Ok(Json(switch_view(&state, s).await?))
    }

    /// Starts a parallel A/B test (super_admin only): the instances (running, not
    /// Kubernetes nodes) are split deterministically into set A (tag `tag_a`, decided by
    /// `model_a`) and set B (`tag_b`, `model_b`); every tick each model decides for its own
    /// set (keep, move to a better pool, replace after an interruption) and the moves are
    /// executed. 409 when an instance is already in a running test.
    #[oai(path = "/ab-tests", method = "post", operation_id = "labCreateAbTest")]
    async fn create_ab(
        &self,
        state: Data<&AppState>,
        auth: BearerAuth,
        slot: Data<&AuditSlot>,
        body: Body<LabAbTestRequest>,
    ) -> poem::Result<AbCreated> {
        slot.record("lab.ab_test.create", "lab_ab_test", None);
        auth.0.require_super_admin()?;
        let b = &body.0;
        known_model(&state, "model_a", &b.model_a).await?;
        known_model(&state, "model_b", &b.model_b).await?;
        if b.model_a == b.model_b {
            return Err(ApiError::field("model_b", "must differ from model_a").into());
        }
        let tag_a = tag_value("tag_a", b.tag_a.as_deref(), "lab-stable")?;
        let tag_b = tag_value("tag_b", b.tag_b.as_deref(), "lab-beta")?;
        if tag_a == tag_b {
            return Err(ApiError::field("tag_b", "must differ from tag_a").into());
        }
        if !(1..=MAX_AB_MINUTES).contains(&b.duration_minutes) {
            return Err(ApiError::field(
                "duration_minutes",
                format!("must be 1 to {MAX_AB_MINUTES}"),
            )
            .into());
        }
        let tick = b.tick_seconds.unwrap_or(60);
        if !(5..=3600).contains(&tick) {
            return Err(ApiError::field("tick_seconds", "must be 5 to 3600").into());
        }
        let name = b.name.clone().unwrap_or_default();
        if name.chars().count() > 200 {
            return Err(ApiError::field("name", "must be at most 200 characters").into());
        }
        let account = accounts::by_id(&state.db, &b.account_id)
            .await
            .map_err(ApiError::from)?
            .filter(|a| a.aws_account_id.is_some() && a.status != "disconnected")
            .ok_or_else(|| ApiError::field("account_id", "no such linked account"))?;
        let standalone = store::standalone(&state.db, &account.id)
            .await
            .map_err(ApiError::from)?;
        let chosen: Vec<store::Candidate> = match &b.instance_ids {
            None => standalone.into_iter().take(MAX_AB_INSTANCES).collect(),
            Some(ids) => {
                let mut out = Vec::new();
                for id in ids {
                    match standalone.iter().find(|c| &c.instance_id == id) {
                        Some(c) => out.push(c.clone()),
                        None => {
                            return Err(ApiError::field(
                                "instance_ids",
                                format!("{id} is not a running standalone instance of this account (Kubernetes nodes are tested with the live switch)"),
                            )
                            .into())
                        }
                    }
                }
                out
            }
        };
        if chosen.len() < 2 || chosen.len() > MAX_AB_INSTANCES {
            return Err(ApiError::field(
                "instance_ids",
                format!(
                    "an A/B test needs 2 to {MAX_AB_INSTANCES} running standalone instances ({} found)",
                    chosen.len()
                ),
            )
            .into());
        }
        let busy = work::busy_instances(&state.db)
            .await
            .map_err(ApiError::from)?;
        if let Some(c) = chosen.iter().find(|c| busy.contains(&c.instance_id)) {
            return Err(ApiError::Conflict {
                field: Some("instance_ids".into()),
                message: format!("{} is already in a running A/B test", c.instance_id),
            }
            .into());
        }
        let ids: Vec<String> = chosen.iter().map(|c| c.instance_id.clone()).collect();
        let members: Vec<(String, String, String, String, String)> = spot_engine::lab::assign(&ids)
            .into_iter()
            .filter_map(|(id, arm)| {
                let c = chosen.iter().find(|c| c.instance_id == id)?;
                Some((
                    arm.to_string(),
                    id,
                    c.instance_type.clone(),
                    c.az.clone(),
                    c.lifecycle.clone(),
                ))
            })
            .collect();
        let display = if name.trim().is_empty() {
            format!(
                "{} vs {}",
                model_display_name(&state, &b.model_a).await,
                model_display_name(&state, &b.model_b).await
            )
        } else {
            name.trim().to_string()
        };
        let t = store::insert_ab_test(
            &state.db,
            store::NewAbTest {
                name: &display,
                organization_id: &account.organization_id,
                account_id: &account.id,
                model_a: &b.model_a,
                model_b: &b.model_b,
                tag_a: &tag_a,
                tag_b: &tag_b,
                tick_secs: i64::from(tick),
                duration_secs: i64::from(b.duration_minutes) * 60,
                created_by: &auth.0.email,
            },
            &members,
        )
        .await
        .map_err(ApiError::from)?;
        // On the simulator the sets carry their tag as EC2 would show it.
        if let Some(sim) = state.connector.as_sim() {
            if let (Some(aws_id), Some(region)) = (&account.aws_account_id, &account.region) {
                if let Ok(world) = sim.world(aws_id, region) {
                    for (arm, id, ..) in &members {
                        let _ = world.tag_instance(id, work::TAG_LAB, t.tag_of(arm));
                        let _ = world.tag_instance(id, work::TAG_LAB_TEST, &t.id);
                    }
                }
            }
        }
        slot.record("lab.ab_test.create", "lab_ab_test", Some(&t.id));
        slot.diff(
            None,
            Some(serde_json::json!({"test_id": t.id, "organization_id": t.organization_id, "account_id": t.account_id, "model_a": t.model_a, "model_b": t.model_b, "members": members.iter().map(|m| serde_json::json!({"arm": m.0, "instance_id": m.1})).collect::<Vec<_>>()})),
        );
        Ok(AbCreated::Created(Json(test_detail(&state, t).await?)))
    }

    /// A/B tests, newest first (super_admin only).
    #[oai(path = "/ab-tests", method = "get", operation_id = "labListAbTests")]
    async fn list_ab(
        &self,
        state: Data<&AppState>,
        auth: BearerAuth,
    ) -> poem::Result<Json<LabAbTestList>> {
        auth.0.require_super_admin()?;
        let mut items = Vec::new();
        for t in store::list_ab_tests(&state.db, 50)
            .await
            .map_err(ApiError::from)?
        {
            items.push(test_view(&state, t).await?);
        }
        Ok(Json(LabAbTestList { items }))
    }

    /// One A/B test: its sets, the side-by-side series (cost, interruptions, decisions per
    /// tick and arm), the latest decisions with the model that made each, and the verdict
    /// (super_admin only). Live ticks stream as `lab.ab_tick` on `/api/admin/events`.
    #[oai(path = "/ab-tests/:id", method = "get", operation_id = "labGetAbTest")]
    async fn get_ab(
        &self,
        state: Data<&AppState>,
        auth: BearerAuth,
        id: Path<String>,
    ) -> poem::Result<Json<LabAbTestDetail>> {
        auth.0.require_super_admin()?;
        let t = store::ab_test(&state.db, &id)
            .await
            .map_err(ApiError::from)?
            .ok_or(ApiError::NotFound("A/B test"))?;
        Ok(Json(test_detail(&state, t).await?))
    }

    /// Stops a running A/B test now and computes its verdict (super_admin only). 409 when
    /// it has already ended.
    #[oai(
        path = "/ab-tests/:id/stop",
        method = "post",
        operation_id = "labStopAbTest"
    )]
    async fn stop_ab(
        &self,
        state: Data<&AppState>,
        auth: BearerAuth,
        slot: Data<&AuditSlot>,
        id: Path<String>,
    ) -> poem::Result<Json<LabAbTestDetail>> {
        slot.record("lab.ab_test.stop", "lab_ab_test", Some(&id));
        auth.0.require_super_admin()?;
        let t = store::ab_test(&state.db, &id)
            .await
            .map_err(ApiError::from)?
            .ok_or(ApiError::NotFound("A/B test"))?;
        let ended = work::finish_ab_test(&state.deps, &t, store::STOPPED, Some(&auth.0.email))
            .await
            .map_err(ApiError::from)?;
        if ended.is_none() {
            return Err(ApiError::Conflict {
                field: None,
                message: format!("this A/B test has already ended ({})", t.status),
            }
            .into());
        }
        let t = store::ab_test(&state.db, &id)
            .await
            .map_err(ApiError::from)?
            .ok_or(ApiError::NotFound("A/B test"))?;
        Ok(Json(test_detail(&state, t).await?))
    }

    /// The safety checklist of a model, computed from its Lab results (super_admin only):
    /// a live switch ran, none failed, boot < 60 s, node Ready < 120 s, an A/B test
    /// against another model ended with cost and interruptions not worse.
    #[oai(
        path = "/models/:id/checklist",
        method = "get",
        operation_id = "labModelChecklist"
    )]
    async fn checklist(
        &self,
        state: Data<&AppState>,
        auth: BearerAuth,
        id: Path<String>,
    ) -> poem::Result<Json<LabChecklist>> {
        auth.0.require_super_admin()?;
        registry::model(&state.db, &id)
            .await
            .map_err(ApiError::from)?
            .ok_or(ApiError::NotFound("model"))?;
        let c = work::checklist_of(&state.db, &id)
            .await
            .map_err(ApiError::from)?;
        Ok(Json(checklist_view(&id, c)))
    }

    /// Graduates a model to production once its safety checklist passes (super_admin
    /// only): it becomes the active model in every actor (and replica), and the checklist is
    /// recorded with the graduation. 409 naming the failing items otherwise.
    #[oai(path = "/graduate", method = "post", operation_id = "labGraduate")]
    async fn graduate(
        &self,
        state: Data<&AppState>,
        auth: BearerAuth,
        slot: Data<&AuditSlot>,
        body: Body<LabGraduateRequest>,
    ) -> poem::Result<Json<LabGraduation>> {
        slot.record("risk_model.graduate", "risk_model", Some(&body.model_id));
        auth.0.require_super_admin()?;
        let id = body.model_id.clone();
        let m = registry::model(&state.db, &id)
            .await
            .map_err(ApiError::from)?
            .ok_or_else(|| ApiError::field("model_id", "no such model in the registry"))?;
        if m.status == registry::GRADUATED {
            return Err(ApiError::Conflict {
                field: Some("model_id".into()),
                message: "this model is already graduated".into(),
            }
            .into());
        }
        if m.status == registry::UPLOADED {
            return Err(ApiError::field("model_id", "this model has not passed validation").into());
        }
        let (g, c) = graduate_checked(&state, &id, &auth.0.email).await?;
        slot.diff(
            None,
            Some(serde_json::json!({"active": id, "checklist": c})),
        );
        Ok(Json(LabGraduation {
            model_id: g.model_id,
            graduated_by: g.graduated_by,
            graduated_at: ts(g.graduated_at),
            checklist: checklist_view(&id, c),
            active_model: super::risk::active_view(&state).id,
        }))
    }
}

/// Graduates `id` after its checklist passed, hot-swaps it everywhere and records the
/// checklist with the graduation.
pub async fn graduate_checked(
    state: &AppState,
    id: &str,
    by: &str,
) -> Result<(store::Graduation, Checklist), ApiError> {
    let c = require_checklist(state, id).await?;
    registry::graduate(&state.db, id)
        .await
        .map_err(ApiError::from)?;
    state.reload_risk_model(true).await?;
    let g = store::record_graduation(
        &state.db,
        id,
        by,
        &serde_json::to_string(&c).unwrap_or_default(),
    )
    .await
    .map_err(ApiError::from)?;
    Ok((g, c))
}

/// The demo's Lab-ready account ("Acme Lab", simulator): one node of each of its clusters
/// gets a data volume (an available volume of its AZ attached to it), so a live switch of
/// that node exercises the volume detach and attach phases, and the account keeps its
/// standalone instances for A/B tests. Returns the prepared node instances.
pub async fn prepare_demo_lab(state: &AppState, aws_account_id: &str, region: &str) -> Vec<String> {
    use spot_cloud::Cloud;
    let Some(sim) = state.connector.as_sim() else {
        return Vec::new();
    };
    let Ok(world) = sim.world(aws_account_id, region) else {
        return Vec::new();
    };
    let (Ok(instances), Ok(volumes)) = (
        world.describe_instances().await,
        world.describe_volumes().await,
    ) else {
        return Vec::new();
    };
    let mut prepared = Vec::new();
    let mut used = std::collections::BTreeSet::new();
    let mut clusters: Vec<&spot_cloud::Instance> = instances
        .iter()
        .filter(|i| i.state == spot_cloud::InstanceState::Running && i.cluster.is_some())
        .collect();
    clusters.sort_by(|a, b| a.cluster.cmp(&b.cluster).then(a.id.cmp(&b.id)));
    let mut seen = std::collections::BTreeSet::new();
    for node in clusters {
        let Some(cluster) = &node.cluster else {
            continue;
        };
        if seen.contains(cluster) {
            continue;
        }
        let Some(v) = volumes
            .iter()
            .find(|v| v.attached_instance_id.is_none() && v.az == node.az && !used.contains(&v.id))
        else {
            continue;
        };
        if world.attach_volume(&v.id, &node.id).is_ok() {
            let _ = world.tag_instance(&node.id, "spot-optimizer/lab-ready", "true");
            used.insert(v.id.clone());
            seen.insert(cluster.clone());
            prepared.push(node.id.clone());
        }
    }
    tracing::info!(component = spot_jobs::lab::COMPONENT, nodes = ?prepared, "demo Lab account prepared: these nodes carry a data volume");
    prepared
}
