//! Optimize Now (an apalis job per request), job status, and the cluster's optimization
//! policy.

use poem::web::Data;
use poem_openapi::param::Path;
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Enum, Object, OpenApi};
use spot_jobs::policy::ClusterPolicy;
use spot_models::{inventory, jobs};

use super::{ts, ApiTags};
use crate::auth::BearerAuth;
use crate::body::Body;
use crate::error::ApiError;
use crate::gateway::AuditSlot;
use crate::state::AppState;

pub struct JobsApi;

// ---- Optimization policy, typed for the OpenAPI document (the engine's own types stay
// free of HTTP concerns; these mirror their JSON exactly).

/// Utilization below which a node is consolidated: conservative < 20 %, balanced < 50 %,
/// aggressive < 80 %.
#[derive(Enum, Clone, Copy, serde::Serialize, serde::Deserialize)]
#[oai(rename_all = "snake_case")]
#[serde(rename_all = "snake_case")]
pub enum Aggressiveness {
    Conservative,
    Balanced,
    Aggressive,
}

/// `delete_empty` (zero risk) or `replace_and_move` (evict pods / buy cheaper nodes).
#[derive(Enum, Clone, Copy, serde::Serialize, serde::Deserialize)]
#[oai(rename_all = "snake_case")]
#[serde(rename_all = "snake_case")]
pub enum ConsolidationMethod {
    DeleteEmpty,
    ReplaceAndMove,
}

#[derive(Enum, Clone, Copy, serde::Serialize, serde::Deserialize)]
pub enum Architecture {
    #[oai(rename = "x86_64")]
    #[serde(rename = "x86_64")]
    X86_64,
    #[oai(rename = "arm64")]
    #[serde(rename = "arm64")]
    Arm64,
}

#[derive(Enum, Clone, Copy, serde::Serialize, serde::Deserialize)]
#[oai(rename_all = "snake_case")]
#[serde(rename_all = "snake_case")]
pub enum CapacityType {
    Spot,
    OnDemand,
    Hybrid,
}

/// `lowest_price`, or `capacity_optimized` (price-capacity: a few percent of price for a much
/// lower interruption risk).
#[derive(Enum, Clone, Copy, serde::Serialize, serde::Deserialize)]
#[oai(rename_all = "snake_case")]
#[serde(rename_all = "snake_case")]
pub enum AllocationStrategy {
    LowestPrice,
    CapacityOptimized,
}

#[derive(Enum, Clone, Copy, serde::Serialize, serde::Deserialize)]
#[oai(rename_all = "snake_case")]
#[serde(rename_all = "snake_case")]
pub enum RightsizePercentile {
    P95,
    P99,
}

/// Which instances the optimizer may buy for the cluster.
#[derive(Object, serde::Serialize, serde::Deserialize)]
pub struct NodeTemplate {
    /// Instance families allowed (empty: all).
    pub allowed_families: Vec<String>,
    /// Architectures allowed (empty: all).
    pub architectures: Vec<Architecture>,
    /// Sizes never bought, e.g. `metal`.
    pub excluded_sizes: Vec<String>,
    pub capacity_type: CapacityType,
    pub strategy: AllocationStrategy,
    pub allow_burstable: bool,
    /// Buy on-demand when no spot pool fits (or spot capacity is exhausted).
    pub on_demand_fallback: bool,
}

/// A cluster's optimization policy.
#[derive(Object, serde::Serialize, serde::Deserialize)]
pub struct ClusterPolicyView {
    pub aggressiveness: Aggressiveness,
    pub method: ConsolidationMethod,
    /// Namespaces whose pods are never moved.
    pub excluded_namespaces: Vec<String>,
    /// Nodes younger than this are never touched (seconds).
    pub stabilization_window_secs: i64,
    pub template: NodeTemplate,
    /// Plan and log "would execute" without touching the cloud.
    pub dry_run: bool,
    /// Plans are produced but every action is blocked.
    pub maintenance_mode: bool,
    /// Rightsizing: recommended request = this usage percentile ...
    pub rightsize_percentile: RightsizePercentile,
    /// ... plus this headroom, 0.10–0.50.
    pub rightsize_headroom: f64,
    /// How long a drain waits for PodDisruptionBudgets before the action fails and the
    /// node is uncordoned and kept (5–3600 s).
    pub drain_timeout_secs: u64,
}

/// Template fields to change; the others keep their defaults.
#[derive(Object, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeTemplateInput {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub allowed_families: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub architectures: Option<Vec<Architecture>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub excluded_sizes: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub capacity_type: Option<CapacityType>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub strategy: Option<AllocationStrategy>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub allow_burstable: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub on_demand_fallback: Option<bool>,
}

/// The policy to store. Every field is optional: a missing one takes its default (the
/// policy is replaced, not merged with the stored one).
#[derive(Object, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClusterPolicyInput {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub aggressiveness: Option<Aggressiveness>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub method: Option<ConsolidationMethod>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub excluded_namespaces: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stabilization_window_secs: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub template: Option<NodeTemplateInput>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dry_run: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub maintenance_mode: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rightsize_percentile: Option<RightsizePercentile>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rightsize_headroom: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub drain_timeout_secs: Option<u64>,
}

/// Overlays `patch` onto `base`, objects recursively.
fn overlay(base: &mut serde_json::Value, patch: serde_json::Value) {
    match (base, patch) {
        (serde_json::Value::Object(b), serde_json::Value::Object(p)) => {
            for (k, v) in p {
                match b.get_mut(&k) {
                    Some(slot) => overlay(slot, v),
                    None => {
                        b.insert(k, v);
                    }
                }
            }
        }
        (slot, v) => *slot = v,
    }
}

fn policy_view(p: &ClusterPolicy) -> Result<ClusterPolicyView, ApiError> {
    serde_json::to_value(p)
        .and_then(serde_json::from_value)
        .map_err(|e| ApiError::Internal(format!("policy does not serialize: {e}")))
}

/// One action of a plan.
#[derive(Object, serde::Deserialize)]
pub struct PlannedAction {
    /// `rightsize_up`, `delete_empty_node`, `drain_and_delete_node`, `replace_node`,
    /// `move_to_spot` or `rightsize_down` (execution order: stability first).
    pub kind: String,
    /// Node name, or `namespace/Kind/name` for a workload.
    pub target: String,
    pub reason: String,
    pub expected_monthly_savings: f64,
    #[serde(default)]
    pub destination: Option<PlannedDestination>,
    /// Nodes that receive the moved pods.
    #[serde(default)]
    pub receivers: Vec<String>,
}

/// Capacity an action buys.
#[derive(Object, serde::Deserialize)]
pub struct PlannedDestination {
    pub instance_type: String,
    /// `spot` or `on_demand`.
    pub lifecycle: String,
    pub az: String,
    pub hourly_price: f64,
}

/// An action the decision engine refused, and why (stability beats savings).
#[derive(Object, serde::Deserialize)]
pub struct BlockedAction {
    pub action: PlannedAction,
    pub reason: String,
}

/// The versioned action plan of an optimize job.
#[derive(Object, serde::Deserialize)]
pub struct ActionPlanView {
    pub version: u32,
    /// Seconds since the Unix epoch.
    pub generated_at: i64,
    pub actions: Vec<PlannedAction>,
    pub blocked: Vec<BlockedAction>,
    pub expected_monthly_savings: f64,
}

#[derive(Object, serde::Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct OptimizeRequest {
    /// Plan and log "would execute" without touching the cloud (also forced by the
    /// server's safe mode and the cluster policy's `dry_run`).
    #[serde(default)]
    pub dry_run: Option<bool>,
}

/// A job's status. `progress` is 0–100; `plan` is the versioned action plan (JSON) once
/// computed; `result` lists the actions that ran, failed and did not run.
#[derive(Object)]
pub struct JobView {
    pub id: String,
    pub kind: String,
    pub target_id: Option<String>,
    /// queued, running, succeeded or failed.
    pub status: String,
    pub progress: i64,
    pub message: Option<String>,
    pub dry_run: bool,
    pub plan: Option<ActionPlanView>,
    /// Optimize: `{mode: execute|dry_run, executed: [{index, kind, target, status:
    /// applied|would_execute|skipped, launched?, terminated?, fallback?, asg_resized?, ...}],
    /// failed?, not_run: [...], expected_monthly_savings, realised_monthly_savings, plan_ms}`.
    /// Risk recompute: `{accounts, pools, instances, failed, model, degraded}`.
    pub result: Option<serde_json::Value>,
    pub created_at: chrono::DateTime<chrono::Utc>,
    pub started_at: Option<chrono::DateTime<chrono::Utc>>,
    pub finished_at: Option<chrono::DateTime<chrono::Utc>>,
}

#[derive(Object)]
pub struct JobList {
    pub items: Vec<JobView>,
}

pub fn job_view(j: jobs::JobRow) -> JobView {
    let parse = |s: Option<String>| s.and_then(|s| serde_json::from_str(&s).ok());
    JobView {
        id: j.id,
        kind: j.kind,
        target_id: j.target_id,
        status: j.status,
        progress: j.progress,
        message: j.message,
        dry_run: j.dry_run != 0,
        plan: j.plan.and_then(|s| serde_json::from_str(&s).ok()),
        result: parse(j.result),
        created_at: ts(j.created_at),
        started_at: j.started_at.map(ts),
        finished_at: j.finished_at.map(ts),
    }
}

#[derive(ApiResponse)]
pub enum Accepted {
    /// The job is queued; poll `GET /api/jobs/{id}` or watch `job.progress` events.
    #[oai(status = 202)]
    Accepted(Json<JobView>),
}

/// Enqueues a job row on the apalis queue; a failed enqueue marks the job failed.
pub async fn enqueue(state: &AppState, job: jobs::JobRow) -> Result<JobView, ApiError> {
    if let Err(e) = state.jobs.enqueue(&job.id).await {
        let _ = jobs::finish(
            &state.db,
            &job.id,
            false,
            &format!("could not queue: {e}"),
            "{}",
        )
        .await;
        return Err(ApiError::Unavailable(format!("job queue: {e}")));
    }
    Ok(job_view(job))
}

#[OpenApi(tag = "ApiTags::Inventory")]
impl JobsApi {
    /// Optimize Now: plans the cluster with the engine (consolidation, on-demand → spot
    /// moves, risk-aware decision engine) and executes the plan as a background job
    /// (admins and owners). Returns 202 with the job; 409 while another optimization of the
    /// cluster is queued or running.
    #[oai(
        path = "/clusters/:id/optimize",
        method = "post",
        operation_id = "optimizeCluster"
    )]
    async fn optimize(
        &self,
        state: Data<&AppState>,
        auth: BearerAuth,
        slot: Data<&AuditSlot>,
        id: Path<String>,
        body: Body<OptimizeRequest>,
    ) -> poem::Result<Accepted> {
        slot.record("cluster.optimize", "cluster", Some(&id));
        auth.0.require_admin()?;
        inventory::cluster(&state.db, &auth.0.org_id, &id)
            .await
            .map_err(ApiError::from)?
            .ok_or(ApiError::NotFound("cluster"))?;
        // One optimization of a cluster at a time: two plans executing at once would fight.
        if let Some(running) =
            jobs::active_for_target(&state.db, &auth.0.org_id, spot_jobs::optimize::KIND, &id)
                .await
                .map_err(ApiError::from)?
        {
            return Err(ApiError::Conflict {
                field: None,
                message: format!(
                    "an optimization of this cluster is already {} (job {})",
                    running.status, running.id
                ),
            }
            .into());
        }
        let dry_run = body.dry_run.unwrap_or(false);
        let job = jobs::insert(
            &state.db,
            jobs::NewJob {
                organization_id: Some(&auth.0.org_id),
                kind: spot_jobs::optimize::KIND,
                target_id: Some(&id),
                dry_run,
                requested_by: Some(&auth.0.user_id),
            },
        )
        .await
        .map_err(ApiError::from)?;
        slot.diff(
            None,
            Some(serde_json::json!({"job_id": job.id, "dry_run": dry_run})),
        );
        Ok(Accepted::Accepted(Json(enqueue(&state, job).await?)))
    }

    /// One job of the caller's organization.
    #[oai(path = "/jobs/:id", method = "get", operation_id = "getJob")]
    async fn job(
        &self,
        state: Data<&AppState>,
        auth: BearerAuth,
        id: Path<String>,
    ) -> poem::Result<Json<JobView>> {
        let j = jobs::get_for_org(&state.db, &auth.0.org_id, &id)
            .await
            .map_err(ApiError::from)?
            .ok_or(ApiError::NotFound("job"))?;
        Ok(Json(job_view(j)))
    }

    /// The organization's 50 most recent jobs.
    #[oai(path = "/jobs", method = "get", operation_id = "listJobs")]
    async fn jobs(&self, state: Data<&AppState>, auth: BearerAuth) -> poem::Result<Json<JobList>> {
        let items = jobs::list_for_org(&state.db, &auth.0.org_id, 50)
            .await
            .map_err(ApiError::from)?
            .into_iter()
            .map(job_view)
            .collect();
        Ok(Json(JobList { items }))
    }

    /// The cluster's optimization policy (defaults when none was saved): aggressiveness
    /// (conservative < 20 %, balanced < 50 %, aggressive < 80 % utilization), method,
    /// excluded namespaces, stabilization window, node template, dry run, maintenance mode.
    #[oai(
        path = "/clusters/:id/policy",
        method = "get",
        operation_id = "getClusterPolicy"
    )]
    async fn policy(
        &self,
        state: Data<&AppState>,
        auth: BearerAuth,
        id: Path<String>,
    ) -> poem::Result<Json<ClusterPolicyView>> {
        inventory::cluster(&state.db, &auth.0.org_id, &id)
            .await
            .map_err(ApiError::from)?
            .ok_or(ApiError::NotFound("cluster"))?;
        let p = match jobs::cluster_policy(&state.db, &auth.0.org_id, &id)
            .await
            .map_err(ApiError::from)?
        {
            Some(s) => ClusterPolicy::from_json(&s).unwrap_or_default(),
            None => ClusterPolicy::default(),
        };
        Ok(Json(policy_view(&p)?))
    }

    /// Replaces the cluster's optimization policy (admins and owners). Unknown or invalid
    /// fields are rejected with 422 naming the field.
    #[oai(
        path = "/clusters/:id/policy",
        method = "put",
        operation_id = "putClusterPolicy"
    )]
    async fn put_policy(
        &self,
        state: Data<&AppState>,
        auth: BearerAuth,
        slot: Data<&AuditSlot>,
        id: Path<String>,
        body: Body<ClusterPolicyInput>,
    ) -> poem::Result<Json<ClusterPolicyView>> {
        slot.record("cluster.policy.update", "cluster", Some(&id));
        auth.0.require_admin()?;
        let cluster = inventory::cluster(&state.db, &auth.0.org_id, &id)
            .await
            .map_err(ApiError::from)?
            .ok_or(ApiError::NotFound("cluster"))?;
        // Missing fields (also inside `template`) take their defaults.
        let mut merged = serde_json::to_value(ClusterPolicy::default())
            .map_err(|e| ApiError::Internal(e.to_string()))?;
        overlay(
            &mut merged,
            serde_json::to_value(&*body).map_err(|e| ApiError::Internal(e.to_string()))?,
        );
        let p = ClusterPolicy::from_json(&merged.to_string()).map_err(|e| {
            let field = e.split(':').next().unwrap_or("policy").trim().to_string();
            ApiError::field(
                if field.is_empty() || field == "." {
                    "policy"
                } else {
                    &field
                },
                e.clone(),
            )
        })?;
        if let Err((field, msg)) = p.validate() {
            return Err(ApiError::field(field, msg).into());
        }
        let before = jobs::cluster_policy(&state.db, &auth.0.org_id, &id)
            .await
            .map_err(ApiError::from)?;
        let stored = serde_json::to_string(&p).unwrap_or_default();
        jobs::put_cluster_policy(&state.db, &auth.0.org_id, &id, &stored)
            .await
            .map_err(ApiError::from)?;
        // The cluster actor's event-driven decisions follow the new template at once.
        state
            .actors
            .set_template(&cluster.account_id, &cluster.name, p.template.clone());
        slot.diff(
            before.and_then(|b| serde_json::from_str(&b).ok()),
            Some(serde_json::to_value(&p).unwrap_or_default()),
        );
        Ok(Json(policy_view(&p)?))
    }
}
