use poem::web::Data;
use poem_openapi::payload::Json;
use poem_openapi::{Object, OpenApi};
use spot_models::orgs;

use super::auth::TokenResponse;
use super::{ts, ApiTags};
use crate::auth::BearerAuth;
use crate::body::Body;
use crate::error::ApiError;
use crate::gateway::{AuditSlot, ClientInfo};
use crate::state::AppState;

pub struct AdminApi;

#[derive(Object)]
pub struct OrgSummary {
    pub id: String,
    pub name: String,
    pub created_at: chrono::DateTime<chrono::Utc>,
    pub members: i64,
}

#[derive(Object)]
pub struct OrgSummaryList {
    pub items: Vec<OrgSummary>,
}

#[derive(Object, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImpersonateRequest {
    pub organization_id: String,
}

#[derive(Object)]
pub struct ActorHealthView {
    pub account_id: String,
    pub organization_id: String,
    /// `running` or `restarting` (after a failure, with backoff).
    pub state: String,
    pub restarts: i64,
    pub last_failure: Option<String>,
    pub clusters: i64,
    /// Risk model the account actor decides with.
    pub model: Option<String>,
    /// Risk model of each of its cluster actors.
    pub cluster_models: Vec<String>,
}

#[derive(Object)]
pub struct SystemHealth {
    /// `ok`, or `degraded` when an actor is restarting or the risk model fell back to the
    /// static heuristic.
    pub status: String,
    pub database: String,
    pub actors: Vec<ActorHealthView>,
    pub risk_model: super::risk::ActiveModelView,
    /// SAFE_MODE: optimization jobs only plan ("would execute").
    pub safe_mode: bool,
    /// The job queue: this replica's worker and the depth per job kind (all replicas).
    pub job_queue: JobQueueHealth,
}

#[derive(Object)]
pub struct JobQueueHealth {
    /// This replica's worker is polling the queue.
    pub worker_alive: bool,
    /// Times it was restarted after stopping on a backend error.
    pub worker_restarts: i64,
    pub last_error: Option<String>,
    /// Queued and running jobs per kind.
    pub kinds: Vec<JobKindDepth>,
}

#[derive(Object)]
pub struct JobKindDepth {
    pub kind: String,
    pub queued: i64,
    pub running: i64,
    /// `green` below 100 queued, `yellow` up to 500, `red` above.
    pub light: String,
}

#[OpenApi(prefix_path = "/admin", tag = "ApiTags::Admin")]
impl AdminApi {
    /// System health: database, and every account actor with its restarts (super_admin only).
    #[oai(path = "/health", method = "get", operation_id = "adminHealth")]
    async fn health(
        &self,
        state: Data<&AppState>,
        auth: BearerAuth,
    ) -> poem::Result<Json<SystemHealth>> {
        auth.0.require_super_admin()?;
        let database = match state.db.ping().await {
            Ok(()) => "ok".to_string(),
            Err(e) => format!("unreachable: {e}"),
        };
        let actors = state
            .actors
            .health()
            .await
            .map_err(|e| ApiError::Unavailable(e.to_string()))?;
        let risk_model = super::risk::active_view(&state);
        let queue = state.jobs.runtime().health();
        let kinds = spot_models::jobs::depth_by_kind(&state.db)
            .await
            .map_err(ApiError::from)?
            .into_iter()
            .map(|(kind, queued, running)| JobKindDepth {
                light: match queued {
                    q if q < 100 => "green",
                    q if q <= 500 => "yellow",
                    _ => "red",
                }
                .into(),
                kind,
                queued,
                running,
            })
            .collect();
        let degraded = database != "ok"
            || risk_model.degraded
            || !queue.alive
            || actors.iter().any(|a| a.state != "running");
        Ok(Json(SystemHealth {
            status: if degraded { "degraded" } else { "ok" }.into(),
            database,
            actors: actors
                .into_iter()
                .map(|a| ActorHealthView {
                    account_id: a.account_id,
                    organization_id: a.organization_id,
                    state: a.state,
                    restarts: i64::from(a.restarts),
                    last_failure: a.last_failure,
                    clusters: a.clusters as i64,
                    model: a.model,
                    cluster_models: a.cluster_models,
                })
                .collect(),
            risk_model,
            safe_mode: state.cfg.safe_mode,
            job_queue: JobQueueHealth {
                worker_alive: queue.alive,
                worker_restarts: queue.restarts as i64,
                last_error: queue.last_error,
                kinds,
            },
        }))
    }

    /// Every customer organization (super_admin only).
    #[oai(
        path = "/organizations",
        method = "get",
        operation_id = "adminListOrganizations"
    )]
    async fn organizations(
        &self,
        state: Data<&AppState>,
        auth: BearerAuth,
    ) -> poem::Result<Json<OrgSummaryList>> {
        auth.0.require_super_admin()?;
        let mut items = Vec::new();
        for o in orgs::list_orgs(&state.db).await.map_err(ApiError::from)? {
            let members = orgs::list_members(&state.db, &o.id)
                .await
                .map_err(ApiError::from)?
                .len() as i64;
            items.push(OrgSummary {
                id: o.id,
                name: o.name,
                created_at: ts(o.created_at),
                members,
            });
        }
        Ok(Json(OrgSummaryList { items }))
    }

    /// Act as an organization's owner. The session keeps the admin's identity: every action
    /// is audited as `impersonation` with both ids.
    #[oai(
        path = "/impersonate",
        method = "post",
        operation_id = "adminImpersonate"
    )]
    async fn impersonate(
        &self,
        state: Data<&AppState>,
        auth: BearerAuth,
        client: Data<&ClientInfo>,
        slot: Data<&AuditSlot>,
        body: Body<ImpersonateRequest>,
    ) -> poem::Result<Json<TokenResponse>> {
        slot.record(
            "admin.impersonate",
            "organization",
            Some(&body.organization_id),
        );
        auth.0.require_super_admin()?;
        let members = orgs::list_members(&state.db, &body.organization_id)
            .await
            .map_err(ApiError::from)?;
        let owner = members
            .into_iter()
            .find(|m| m.role == "owner")
            .ok_or(ApiError::NotFound("organization"))?;
        let tokens = super::auth::issue_session_tokens(
            &state,
            &client,
            &owner.user_id,
            &body.organization_id,
            Some(&auth.0.user_id),
        )
        .await?;
        slot.diff(None, Some(serde_json::json!({"organization_id": body.organization_id, "as_user": owner.user_id})));
        Ok(Json(tokens))
    }
}
