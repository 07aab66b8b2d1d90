use poem::web::Data;
use poem_openapi::param::{Path, Query};
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Object, OpenApi};
use rand::Rng;
use spot_engine::catalog::HOURS_PER_MONTH;
use spot_models::audit::{self, NewAuditRecord};
use spot_models::clients::{self, ClientRow, ClientStats, ClientStatus};
use spot_models::{orgs, sessions};

use super::auth::TokenResponse;
use super::{ts, ApiTags};
use crate::auth::{
    check_password_policy, hash_password_async, new_opaque_token, normalize_email, AuthCtx,
    BearerAuth,
};
use crate::body::Body;
use crate::error::ApiError;
use crate::gateway::{AuditSlot, ClientInfo};
use crate::state::AppState;

/// Lifetime of an impersonation session (its access and refresh tokens die with it).
pub const IMPERSONATION_TTL_SECS: i64 = 30 * 60;

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

/// An organization in the client registry.
#[derive(Object)]
pub struct ClientView {
    pub id: String,
    pub name: String,
    pub created_at: chrono::DateTime<chrono::Utc>,
    /// `active`, `blocked` or `deleted` (soft).
    pub status: String,
    pub blocked_at: Option<chrono::DateTime<chrono::Utc>>,
    pub blocked_reason: Option<String>,
    pub deleted_at: Option<chrono::DateTime<chrono::Utc>>,
    /// A soft-deleted organization may be purged after this time; restorable until then.
    pub purge_after: Option<chrono::DateTime<chrono::Utc>>,
    /// Home of platform operators: cannot be blocked, deleted or impersonated.
    pub platform: bool,
    pub members: i64,
    pub owner_email: Option<String>,
    pub accounts: i64,
    pub clusters: i64,
    pub nodes: i64,
    pub monthly_spend: f64,
    pub monthly_savings: f64,
    pub last_activity_at: Option<chrono::DateTime<chrono::Utc>>,
    /// Clusters whose in-cluster agent is connected (out of `clusters`).
    pub agents_connected: i64,
}

#[derive(Object)]
pub struct ClientList {
    pub items: Vec<ClientView>,
}

#[derive(Object, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateClientRequest {
    /// Organization name (1–100 characters).
    pub name: String,
    /// The owner's e-mail (a new user).
    pub owner_email: String,
}

#[derive(Object)]
pub struct ClientCreated {
    pub client: ClientView,
    pub owner_user_id: String,
    pub owner_email: String,
    /// The owner's generated password: shown only in this response.
    pub password: String,
}

#[derive(ApiResponse)]
pub enum CreatedClient {
    /// The organization and its owner were created.
    #[oai(status = 201)]
    Created(Json<ClientCreated>),
}

#[derive(Object, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BlockClientRequest {
    /// Why (at most 500 characters), kept with the block and in the audit log.
    pub reason: Option<String>,
}

#[derive(ApiResponse)]
pub enum Done {
    #[oai(status = 204)]
    Done,
}

/// The impersonation the caller's session belongs to.
#[derive(Object)]
pub struct ImpersonationView {
    pub organization_id: String,
    pub organization_name: String,
    /// The organization's owner the admin acts as.
    pub as_user_id: String,
    pub as_email: String,
    /// Always `owner`: impersonation never grants more.
    pub role: String,
    pub admin_id: String,
    pub admin_email: Option<String>,
    pub started_at: chrono::DateTime<chrono::Utc>,
    pub expires_at: chrono::DateTime<chrono::Utc>,
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

    /// Act as an organization's owner, never more: a short-lived impersonation session
    /// (`IMPERSONATION_TTL_SECS`, 30 minutes, refreshes included) whose tokens carry the
    /// target organization and the admin's identity in an `act` claim. Every request made
    /// with it is audited in the customer's chain with both identities; it ends with
    /// `POST /api/admin/impersonation/end` or at expiry. Blocked, deleted and platform
    /// organizations cannot be impersonated.
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
        let org = live_client(&state, &body.organization_id).await?;
        if org.status() == ClientStatus::Blocked {
            return Err(conflict("this organization is blocked; unblock it first").into());
        }
        if clients::has_platform_member(&state.db, &org.id)
            .await
            .map_err(ApiError::from)?
        {
            return Err(ApiError::Forbidden(
                "an organization of platform operators cannot be impersonated".into(),
            )
            .into());
        }
        let members = orgs::list_members(&state.db, &org.id)
            .await
            .map_err(ApiError::from)?;
        let owner = members
            .into_iter()
            .find(|m| m.role == "owner")
            .ok_or(ApiError::NotFound("organization"))?;
        let (refresh, refresh_hash) = new_opaque_token();
        let session = sessions::create(
            &state.db,
            sessions::NewSession {
                user_id: &owner.user_id,
                organization_id: &org.id,
                refresh_hash: &refresh_hash,
                ttl_ms: IMPERSONATION_TTL_SECS * 1000,
                impersonator_id: Some(&auth.0.user_id),
                source_ip: Some(&client.ip.to_string()),
                user_agent: client.user_agent.as_deref(),
            },
        )
        .await
        .map_err(ApiError::from)?;
        let ttl = state.cfg.access_ttl_secs.min(IMPERSONATION_TTL_SECS);
        let access = state.jwt.issue_as(
            &owner.user_id,
            &org.id,
            &session.id,
            ttl,
            Some(&auth.0.user_id),
        )?;
        let after = serde_json::json!({
            "organization_id": org.id,
            "as_user": owner.user_id,
            "as_email": owner.email,
            "session_id": session.id,
            "expires_at": ts(session.expires_at),
        });
        slot.diff(None, Some(after.clone()));
        audit_admin_action(
            &state,
            &auth.0,
            &client,
            "admin.impersonate.start",
            "session",
            Some(&session.id),
            &org.id,
            None,
            Some(after),
        )
        .await;
        Ok(Json(TokenResponse {
            access_token: access,
            refresh_token: refresh,
            token_type: "Bearer".into(),
            expires_in: ttl,
        }))
    }

    /// The impersonation the caller's session is part of: who acts as whom, until when.
    /// Answers 404 for a normal session.
    #[oai(
        path = "/impersonation",
        method = "get",
        operation_id = "adminCurrentImpersonation"
    )]
    async fn current_impersonation(
        &self,
        state: Data<&AppState>,
        auth: BearerAuth,
    ) -> poem::Result<Json<ImpersonationView>> {
        let a = &auth.0;
        let admin_id = a
            .impersonator_id
            .clone()
            .ok_or(ApiError::NotFound("impersonation"))?;
        let admin = orgs::user_by_id(&state.db, &admin_id)
            .await
            .map_err(ApiError::from)?;
        let org = clients::get(&state.db, &a.org_id)
            .await
            .map_err(ApiError::from)?
            .ok_or(ApiError::NotFound("organization"))?;
        let (started_at, expires_at) = clients::session_window(&state.db, &a.session_id)
            .await
            .map_err(ApiError::from)?
            .ok_or(ApiError::NotFound("impersonation"))?;
        Ok(Json(ImpersonationView {
            organization_id: org.id,
            organization_name: org.name,
            as_user_id: a.user_id.clone(),
            as_email: a.email.clone(),
            role: a.role.as_str().into(),
            admin_id,
            admin_email: admin.map(|u| u.email),
            started_at: ts(started_at),
            expires_at: ts(expires_at),
        }))
    }

    /// End the caller's impersonation: its session (access and refresh token) is revoked at
    /// once. Only an impersonation session may call this (403 otherwise).
    #[oai(
        path = "/impersonation/end",
        method = "post",
        operation_id = "adminEndImpersonation"
    )]
    async fn end_impersonation(
        &self,
        state: Data<&AppState>,
        auth: BearerAuth,
        client: Data<&ClientInfo>,
        slot: Data<&AuditSlot>,
    ) -> poem::Result<Done> {
        let a = &auth.0;
        slot.record("admin.impersonate.end", "session", Some(&a.session_id));
        let Some(admin_id) = a.impersonator_id.clone() else {
            return Err(ApiError::Forbidden("this session is not an impersonation".into()).into());
        };
        sessions::revoke(&state.db, &a.session_id)
            .await
            .map_err(ApiError::from)?;
        let admin_email = orgs::user_by_id(&state.db, &admin_id)
            .await
            .map_err(ApiError::from)?
            .map(|u| u.email);
        // The gateway records this request in the customer's chain; the platform chain gets
        // its own record.
        append_audit(
            &state,
            &client,
            None,
            &admin_id,
            admin_email,
            "admin.impersonate.end",
            "session",
            Some(&a.session_id),
            Some(serde_json::json!({"organization_id": a.org_id, "as_user": a.user_id})),
            None,
        )
        .await;
        Ok(Done::Done)
    }

    /// The client registry: every organization with its figures (super_admin only).
    ///
    /// `accounts`: linked accounts (not the signup placeholder, not disconnected);
    /// `clusters`: live clusters of connected accounts; `nodes`: running cluster instances;
    /// `monthly_spend`: Σ current hourly price of running instances × 730 + EBS volumes and
    /// snapshots (the dashboard's figure); `monthly_savings`: Σ max(0, on-demand − current
    /// hourly price) of running instances × 730; `last_activity_at`: newest audit record;
    /// `agents_connected`: clusters whose agent is connected. Soft-deleted organizations
    /// only with `include_deleted=true`.
    #[oai(path = "/clients", method = "get", operation_id = "adminListClients")]
    async fn list_clients(
        &self,
        state: Data<&AppState>,
        auth: BearerAuth,
        include_deleted: Query<Option<bool>>,
    ) -> poem::Result<Json<ClientList>> {
        auth.0.require_super_admin()?;
        let rows = clients::list(&state.db, include_deleted.0.unwrap_or(false))
            .await
            .map_err(ApiError::from)?;
        let mut stats = clients::stats(&state.db).await.map_err(ApiError::from)?;
        let platform = platform_orgs(&state).await?;
        let mut items = Vec::with_capacity(rows.len());
        for r in rows {
            let st = stats.remove(&r.id).unwrap_or_default();
            let agents = connected_agents(&state, &r.id).await?;
            let is_platform = platform.contains(&r.id);
            items.push(client_view(
                r,
                st,
                agents,
                is_platform,
                state.cfg.deleted_org_retention_days,
            ));
        }
        Ok(Json(ClientList { items }))
    }

    /// Create an organization with its owner. The owner's generated password is in the
    /// response and shown only this once (it is stored as an argon2id hash).
    #[oai(path = "/clients", method = "post", operation_id = "adminCreateClient")]
    async fn create_client(
        &self,
        state: Data<&AppState>,
        auth: BearerAuth,
        client: Data<&ClientInfo>,
        slot: Data<&AuditSlot>,
        body: Body<CreateClientRequest>,
    ) -> poem::Result<CreatedClient> {
        slot.record("admin.client.create", "organization", None);
        auth.0.require_super_admin()?;
        let name = body.name.trim();
        if name.is_empty() || name.chars().count() > 100 {
            return Err(ApiError::field("name", "name must be 1 to 100 characters").into());
        }
        let email = normalize_email(&body.owner_email).map_err(|_| {
            ApiError::field("owner_email", "owner_email must be a valid e-mail address")
        })?;
        if orgs::user_by_email(&state.db, &email)
            .await
            .map_err(ApiError::from)?
            .is_some()
        {
            return Err(email_taken().into());
        }
        let password = generate_password(&email)?;
        let hash = hash_password_async(password.clone()).await?;
        let rec = orgs::signup(&state.db, name, &email, &hash)
            .await
            .map_err(|e| match e {
                spot_models::DbError::Conflict(_) => email_taken(),
                other => other.into(),
            })?;
        let org_id = rec.organization.id.clone();
        slot.record("admin.client.create", "organization", Some(&org_id));
        let after = serde_json::json!({"name": name, "owner": email, "owner_id": rec.user.id});
        slot.diff(None, Some(after.clone()));
        audit_admin_action(
            &state,
            &auth.0,
            &client,
            "admin.client.create",
            "organization",
            Some(&org_id),
            &org_id,
            None,
            Some(after),
        )
        .await;
        let view = self.one(&state, &org_id).await?;
        Ok(CreatedClient::Created(Json(ClientCreated {
            client: view,
            owner_user_id: rec.user.id,
            owner_email: email,
            password,
        })))
    }

    /// Block an organization: every session of its members (and any impersonation of it)
    /// is revoked at once, and sign-ins answer 403 "this organization is blocked".
    #[oai(
        path = "/clients/:id/block",
        method = "post",
        operation_id = "adminBlockClient"
    )]
    async fn block_client(
        &self,
        state: Data<&AppState>,
        auth: BearerAuth,
        client: Data<&ClientInfo>,
        slot: Data<&AuditSlot>,
        id: Path<String>,
        body: Body<BlockClientRequest>,
    ) -> poem::Result<Json<ClientView>> {
        slot.record("admin.client.block", "organization", Some(&id));
        auth.0.require_super_admin()?;
        let reason = body
            .reason
            .as_deref()
            .map(str::trim)
            .filter(|r| !r.is_empty());
        if reason.is_some_and(|r| r.chars().count() > 500) {
            return Err(ApiError::field("reason", "reason must be at most 500 characters").into());
        }
        let org = self.changeable(&state, &id).await?;
        if org.status() == ClientStatus::Blocked {
            return Err(conflict("this organization is already blocked").into());
        }
        let revoked = clients::block(&state.db, &id, reason)
            .await
            .map_err(ApiError::from)?
            .ok_or_else(|| conflict("this organization is already blocked"))?;
        let before = serde_json::json!({"status": org.status().as_str()});
        let after =
            serde_json::json!({"status": "blocked", "reason": reason, "sessions_revoked": revoked});
        self.changed(
            &state,
            &auth,
            &client,
            &slot,
            "admin.client.block",
            &id,
            before,
            after,
        )
        .await
    }

    /// Lift a block: members can sign in again.
    #[oai(
        path = "/clients/:id/unblock",
        method = "post",
        operation_id = "adminUnblockClient"
    )]
    async fn unblock_client(
        &self,
        state: Data<&AppState>,
        auth: BearerAuth,
        client: Data<&ClientInfo>,
        slot: Data<&AuditSlot>,
        id: Path<String>,
    ) -> poem::Result<Json<ClientView>> {
        slot.record("admin.client.unblock", "organization", Some(&id));
        auth.0.require_super_admin()?;
        self.changeable(&state, &id).await?;
        if !clients::unblock(&state.db, &id)
            .await
            .map_err(ApiError::from)?
        {
            return Err(conflict("this organization is not blocked").into());
        }
        let (before, after) = (
            serde_json::json!({"status": "blocked"}),
            serde_json::json!({"status": "active"}),
        );
        self.changed(
            &state,
            &auth,
            &client,
            &slot,
            "admin.client.unblock",
            &id,
            before,
            after,
        )
        .await
    }

    /// Soft-delete an organization: hidden from the registry, sessions revoked, sign-ins
    /// refused; its data is kept and `POST …/restore` brings it back within the retention
    /// period (`purge_after`).
    #[oai(
        path = "/clients/:id",
        method = "delete",
        operation_id = "adminDeleteClient"
    )]
    async fn delete_client(
        &self,
        state: Data<&AppState>,
        auth: BearerAuth,
        client: Data<&ClientInfo>,
        slot: Data<&AuditSlot>,
        id: Path<String>,
    ) -> poem::Result<Json<ClientView>> {
        slot.record("admin.client.delete", "organization", Some(&id));
        auth.0.require_super_admin()?;
        let org = self.changeable(&state, &id).await?;
        let revoked = clients::soft_delete(&state.db, &id)
            .await
            .map_err(ApiError::from)?
            .ok_or(ApiError::NotFound("organization"))?;
        let before = serde_json::json!({"status": org.status().as_str()});
        let after = serde_json::json!({"status": "deleted", "sessions_revoked": revoked});
        self.changed(
            &state,
            &auth,
            &client,
            &slot,
            "admin.client.delete",
            &id,
            before,
            after,
        )
        .await
    }

    /// Restore a soft-deleted organization (it keeps a block it had).
    #[oai(
        path = "/clients/:id/restore",
        method = "post",
        operation_id = "adminRestoreClient"
    )]
    async fn restore_client(
        &self,
        state: Data<&AppState>,
        auth: BearerAuth,
        client: Data<&ClientInfo>,
        slot: Data<&AuditSlot>,
        id: Path<String>,
    ) -> poem::Result<Json<ClientView>> {
        slot.record("admin.client.restore", "organization", Some(&id));
        auth.0.require_super_admin()?;
        clients::get(&state.db, &id)
            .await
            .map_err(ApiError::from)?
            .ok_or(ApiError::NotFound("organization"))?;
        if !clients::restore(&state.db, &id)
            .await
            .map_err(ApiError::from)?
        {
            return Err(conflict("this organization is not deleted").into());
        }
        let restored = self.one(&state, &id).await?;
        let (before, after) = (
            serde_json::json!({"status": "deleted"}),
            serde_json::json!({"status": restored.status}),
        );
        slot.diff(Some(before.clone()), Some(after.clone()));
        audit_admin_action(
            &state,
            &auth.0,
            &client,
            "admin.client.restore",
            "organization",
            Some(&id),
            &id,
            Some(before),
            Some(after),
        )
        .await;
        Ok(Json(restored))
    }
}

impl AdminApi {
    /// One organization of the registry, with its figures.
    /// Records an organization change (request diff, and the audit record in the
    /// platform chain and the organization's own) and answers with the organization.
    #[allow(clippy::too_many_arguments)]
    async fn changed(
        &self,
        state: &AppState,
        auth: &BearerAuth,
        client: &ClientInfo,
        slot: &AuditSlot,
        action: &str,
        id: &str,
        before: serde_json::Value,
        after: serde_json::Value,
    ) -> poem::Result<Json<ClientView>> {
        slot.diff(Some(before.clone()), Some(after.clone()));
        audit_admin_action(
            state,
            &auth.0,
            client,
            action,
            "organization",
            Some(id),
            id,
            Some(before),
            Some(after),
        )
        .await;
        Ok(Json(self.one(state, id).await?))
    }

    async fn one(&self, state: &AppState, id: &str) -> Result<ClientView, ApiError> {
        let row = clients::get(&state.db, id)
            .await?
            .ok_or(ApiError::NotFound("organization"))?;
        let st = clients::stats(&state.db)
            .await?
            .remove(id)
            .unwrap_or_default();
        let agents = connected_agents(state, id).await?;
        let platform = clients::has_platform_member(&state.db, id).await?;
        Ok(client_view(
            row,
            st,
            agents,
            platform,
            state.cfg.deleted_org_retention_days,
        ))
    }

    /// An existing, not deleted organization that is not the platform's own.
    async fn changeable(&self, state: &AppState, id: &str) -> Result<ClientRow, ApiError> {
        let org = live_client(state, id).await?;
        if clients::has_platform_member(&state.db, id).await? {
            return Err(conflict(
                "the organization of platform operators cannot be blocked or deleted",
            ));
        }
        Ok(org)
    }
}

/// One organization of the registry with its figures (404 when it does not exist).
pub(crate) async fn client_view_of(state: &AppState, id: &str) -> Result<ClientView, ApiError> {
    AdminApi.one(state, id).await
}

/// Refuses sign-ins (and invite acceptance) into a blocked or deleted organization.
pub(crate) async fn refuse_inactive_org(state: &AppState, org_id: &str) -> Result<(), ApiError> {
    match clients::status(&state.db, org_id)
        .await?
        .and_then(ClientStatus::login_refusal)
    {
        Some(message) => Err(ApiError::Forbidden(message.into())),
        None => Ok(()),
    }
}

/// An organization that exists and is not soft-deleted (404 otherwise).
async fn live_client(state: &AppState, id: &str) -> Result<ClientRow, ApiError> {
    clients::get(&state.db, id)
        .await?
        .filter(|o| o.deleted_at.is_none())
        .ok_or(ApiError::NotFound("organization"))
}

fn conflict(message: &str) -> ApiError {
    ApiError::Conflict {
        field: None,
        message: message.into(),
    }
}

fn email_taken() -> ApiError {
    ApiError::Conflict {
        field: Some("owner_email".into()),
        message: "an account with this email already exists".into(),
    }
}

/// A random 20-character password that satisfies the password policy.
fn generate_password(email: &str) -> Result<String, ApiError> {
    const ALPHABET: &[u8] = b"abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    let mut rng = rand::thread_rng();
    for _ in 0..100 {
        let p: String = (0..20)
            .map(|_| char::from(ALPHABET[rng.gen_range(0..ALPHABET.len())]))
            .collect();
        if check_password_policy(&p, email).is_ok() {
            return Ok(p);
        }
    }
    Err(ApiError::Internal("could not generate a password".into()))
}

/// Organizations that are home to a platform operator.
async fn platform_orgs(state: &AppState) -> Result<std::collections::HashSet<String>, ApiError> {
    let mut out = std::collections::HashSet::new();
    for o in clients::list(&state.db, true).await? {
        if clients::has_platform_member(&state.db, &o.id).await? {
            out.insert(o.id);
        }
    }
    Ok(out)
}

async fn connected_agents(state: &AppState, org_id: &str) -> Result<i64, ApiError> {
    Ok(
        spot_models::agents::states(&state.db, org_id, chrono::Utc::now())
            .await?
            .values()
            .filter(|s| **s == spot_models::agents::AgentState::Connected)
            .count() as i64,
    )
}

fn client_view(
    r: ClientRow,
    st: ClientStats,
    agents_connected: i64,
    platform: bool,
    retention_days: i64,
) -> ClientView {
    let status = r.status().as_str().to_string();
    let purge_after = r
        .deleted_at
        .map(|d| ts(d + retention_days * 24 * 3600 * 1000));
    ClientView {
        id: r.id,
        name: r.name,
        created_at: ts(r.created_at),
        status,
        blocked_at: r.blocked_at.map(ts),
        blocked_reason: r.blocked_reason,
        deleted_at: r.deleted_at.map(ts),
        purge_after,
        platform,
        members: st.members,
        owner_email: st.owner_email,
        accounts: st.accounts,
        clusters: st.clusters,
        nodes: st.nodes,
        monthly_spend: st.compute_hourly * HOURS_PER_MONTH + st.storage_monthly,
        monthly_savings: st.savings_hourly * HOURS_PER_MONTH,
        last_activity_at: st.last_activity_at.map(ts),
        agents_connected,
    }
}

/// Records a platform admin's action on an organization in the organization's own chain and
/// in the platform chain (the gateway adds the request record in the admin's chain).
#[allow(clippy::too_many_arguments)]
async fn audit_admin_action(
    state: &AppState,
    admin: &AuthCtx,
    client: &ClientInfo,
    action: &str,
    resource_type: &str,
    resource_id: Option<&str>,
    org_id: &str,
    before: Option<serde_json::Value>,
    after: Option<serde_json::Value>,
) {
    for chain in [Some(org_id), None] {
        append_audit(
            state,
            client,
            chain,
            &admin.user_id,
            Some(admin.email.clone()),
            action,
            resource_type,
            resource_id,
            before.clone(),
            after.clone(),
        )
        .await;
    }
}

/// Appends one record of a platform admin's action to an organization's chain, or to the
/// platform chain when `org_id` is `None`. A failed append is logged loudly: the action has
/// already happened.
#[allow(clippy::too_many_arguments)]
async fn append_audit(
    state: &AppState,
    client: &ClientInfo,
    org_id: Option<&str>,
    admin_id: &str,
    admin_email: Option<String>,
    action: &str,
    resource_type: &str,
    resource_id: Option<&str>,
    before: Option<serde_json::Value>,
    after: Option<serde_json::Value>,
) {
    let rec = NewAuditRecord {
        organization_id: org_id.map(str::to_string),
        actor_kind: "user".into(),
        actor_user_id: Some(admin_id.to_string()),
        actor_email: admin_email,
        actor_component: None,
        actor_admin_id: Some(admin_id.to_string()),
        action: action.into(),
        resource_type: resource_type.into(),
        resource_id: resource_id.map(str::to_string),
        outcome: "success".into(),
        status_code: None,
        source_ip: Some(client.ip.to_string()),
        user_agent: client.user_agent.clone(),
        request_id: client.request_id.clone(),
        before,
        after,
    };
    if let Err(e) = audit::append(&state.db, rec).await {
        tracing::error!(component = "CORE-AUDIT", error = %e, action, "audit append failed");
    }
}
