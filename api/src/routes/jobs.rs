//! Optimize Now (an apalis job per request), job status, and the cluster's optimization
//! policy.

use poem::web::Data;
use poem_openapi::param::Path;
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Object, OpenApi};
use spot_jobs::policy::ClusterPolicy;
use spot_models::{inventory, jobs};

use super::{ts, ApiTags};
use crate::auth::BearerAuth;
use crate::body::Body;
use crate::error::ApiError;
use crate::gateway::AuditSlot;
use crate::state::AppState;

pub struct JobsApi;

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
    pub plan: Option<serde_json::Value>,
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
        plan: parse(j.plan),
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
        let _ = jobs::finish(&state.db, &job.id, false, &format!("could not queue: {e}"), "{}").await;
        return Err(ApiError::Unavailable(format!("job queue: {e}")));
    }
    Ok(job_view(job))
}

#[OpenApi(tag = "ApiTags::Inventory")]
impl JobsApi {
    /// Optimize Now: plans the cluster with the engine (consolidation, on-demand → spot
    /// moves, risk-aware decision engine) and executes the plan as a background job
    /// (admins and owners). Returns 202 with the job.
    #[oai(path = "/clusters/:id/optimize", method = "post", operation_id = "optimizeCluster")]
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
        slot.diff(None, Some(serde_json::json!({"job_id": job.id, "dry_run": dry_run})));
        Ok(Accepted::Accepted(Json(enqueue(&state, job).await?)))
    }

    /// One job of the caller's organization.
    #[oai(path = "/jobs/:id", method = "get", operation_id = "getJob")]
    async fn job(&self, state: Data<&AppState>, auth: BearerAuth, id: Path<String>) -> poem::Result<Json<JobView>> {
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
    #[oai(path = "/clusters/:id/policy", method = "get", operation_id = "getClusterPolicy")]
    async fn policy(&self, state: Data<&AppState>, auth: BearerAuth, id: Path<String>) -> poem::Result<Json<serde_json::Value>> {
        inventory::cluster(&state.db, &auth.0.org_id, &id)
            .await
            .map_err(ApiError::from)?
            .ok_or(ApiError::NotFound("cluster"))?;
        let p = match jobs::cluster_policy(&state.db, &auth.0.org_id, &id).await.map_err(ApiError::from)? {
            Some(s) => ClusterPolicy::from_json(&s).unwrap_or_default(),
            None => ClusterPolicy::default(),
        };
        Ok(Json(serde_json::to_value(p).unwrap_or_default()))
    }

    /// Replaces the cluster's optimization policy (admins and owners). Unknown or invalid
    /// fields are rejected with 422 naming the field.
    #[oai(path = "/clusters/:id/policy", method = "put", operation_id = "putClusterPolicy")]
    async fn put_policy(
        &self,
        state: Data<&AppState>,
        auth: BearerAuth,
        slot: Data<&AuditSlot>,
        id: Path<String>,
        body: Json<serde_json::Value>,
    ) -> poem::Result<Json<serde_json::Value>> {
        slot.record("cluster.policy.update", "cluster", Some(&id));
        auth.0.require_admin()?;
        let cluster = inventory::cluster(&state.db, &auth.0.org_id, &id)
            .await
            .map_err(ApiError::from)?
            .ok_or(ApiError::NotFound("cluster"))?;
        let text = body.0.to_string();
        let p = ClusterPolicy::from_json(&text).map_err(|e| {
            let field = e.split(':').next().unwrap_or("policy").trim().to_string();
            ApiError::field(if field.is_empty() || field == "." { "policy" } else { &field }, e.clone())
        })?;
        if let Err((field, msg)) = p.validate() {
            return Err(ApiError::field(field, msg).into());
        }
        let before = jobs::cluster_policy(&state.db, &auth.0.org_id, &id).await.map_err(ApiError::from)?;
        let stored = serde_json::to_string(&p).unwrap_or_default();
        jobs::put_cluster_policy(&state.db, &auth.0.org_id, &id, &stored).await.map_err(ApiError::from)?;
        // The cluster actor's event-driven decisions follow the new template at once.
        state.actors.set_template(&cluster.account_id, &cluster.name, p.template.clone());
        slot.diff(before.and_then(|b| serde_json::from_str(&b).ok()), Some(serde_json::to_value(&p).unwrap_or_default()));
        Ok(Json(serde_json::to_value(p).unwrap_or_default()))
    }
}
