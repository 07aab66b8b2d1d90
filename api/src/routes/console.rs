//! The super-admin console beyond the client registry: live operations (platform KPIs, the
//! decision pipeline funnel and the status of each pipeline stage), the live log stream and
//! component state changes, organizations created by invite, the profile (name, e-mail,
//! password with re-authentication) and password reset for every user.

use std::collections::{BTreeMap, HashSet};

use futures_util::stream::BoxStream;
use futures_util::StreamExt;
use poem::web::Data;
use poem_openapi::param::Query;
use poem_openapi::payload::{EventStream, Json};
use poem_openapi::{ApiResponse, Object, OpenApi};
use spot_engine::catalog::HOURS_PER_MONTH;
use spot_models::audit::{self, NewAuditRecord};
use spot_models::clients;
use spot_models::console::{self as store, TokenRejection};
use spot_models::orgs;
use tokio_stream::wrappers::BroadcastStream;

use super::admin::{ClientView, Done};
use super::auth::CreatedTokens;
use super::{ts, ApiTags};
use crate::auth::{
    check_password_policy, hash_password_async, new_opaque_token, normalize_email, sha256_hex,
    verify_password_async, AuthCtx, BearerAuth,
};
use crate::body::Body;
use crate::error::ApiError;
use crate::gateway::{AuditSlot, ClientInfo};
use crate::logs::{self, LogLine, StateChange};
use crate::state::AppState;

pub struct ConsoleApi;

/// Job kinds whose plans are the engine's decisions.
const DECISION_KINDS: &[&str] = &["optimize", "force_on_demand"];
/// Audit actions recording each executed action of those jobs.
const ACTION_RECORDS: &[&str] = &["optimize.action", "force_on_demand.action"];
/// Reasons listed per funnel outcome.
const TOP_REASONS: usize = 10;

// ---------------------------------------------------------------------------------------
// Views
// ---------------------------------------------------------------------------------------

/// Platform-wide figures (organizations that are not soft-deleted).
#[derive(Object, Debug, Clone, PartialEq)]
pub struct PlatformKpis {
    pub organizations: i64,
    pub blocked_organizations: i64,
    /// Soft-deleted, awaiting the purge.
    pub deleted_organizations: i64,
    /// Linked accounts (neither the signup placeholder nor disconnected).
    pub accounts: i64,
    /// Live clusters of connected accounts.
    pub clusters: i64,
    /// Running cluster instances under management.
    pub nodes: i64,
    /// Σ current hourly price of running instances × 730 + EBS volumes and snapshots.
    pub monthly_spend: f64,
    /// Σ max(0, on-demand − current hourly price) of running instances × 730.
    pub monthly_savings: f64,
    /// Decisions (planned and blocked actions) per hour over the window.
    pub decisions_per_hour: f64,
    /// Decisions of jobs created in the last hour.
    pub decisions_last_hour: i64,
}

/// A reason and how often it occurred.
#[derive(Object, Debug, Clone, PartialEq)]
pub struct ReasonCount {
    pub reason: String,
    pub count: i64,
}

/// One step of the funnel.
#[derive(Object, Debug, Clone, PartialEq)]
pub struct FunnelStep {
    /// `pools_scored`, `candidates`, `planned`, `executed`, `failed` or `blocked`.
    pub step: String,
    pub count: i64,
}

/// The decision pipeline over the window: spot pools scored → candidate actions (every
/// action the engine proposed) → planned (not blocked) → executed, with failed and blocked
/// and their reasons.
#[derive(Object, Debug, Clone, PartialEq)]
pub struct DecisionFunnel {
    pub steps: Vec<FunnelStep>,
    /// Decision jobs (optimize, force on-demand) created in the window.
    pub jobs: i64,
    pub pools_scored: i64,
    /// Pools scored by the static fallback instead of the model.
    pub pools_degraded: i64,
    pub candidates: i64,
    pub planned: i64,
    /// Applied to the cloud / cluster.
    pub executed: i64,
    /// Ran in dry-run or safe mode ("would execute").
    pub dry_run: i64,
    /// Ran but did nothing (for example, recommend-only rightsizing).
    pub skipped: i64,
    /// Actions that failed, plus jobs that failed before they could plan.
    pub failed: i64,
    pub blocked: i64,
    pub blocked_reasons: Vec<ReasonCount>,
    pub failed_reasons: Vec<ReasonCount>,
}

/// Status of one pipeline stage.
#[derive(Object, Debug, Clone, PartialEq)]
pub struct StageStatus {
    /// `scoring`, `planning` or `execution`.
    pub stage: String,
    /// `ok`, `idle` (nothing in the window), `degraded`, `stale`, `backlog` or `stopped`.
    pub status: String,
    /// `green`, `yellow` or `red`.
    pub light: String,
    pub queued: i64,
    pub running: i64,
    /// Items the stage handled in the window.
    pub processed: i64,
    pub failed: i64,
    pub last_activity_at: Option<chrono::DateTime<chrono::Utc>>,
    pub detail: String,
}

/// Live operations: KPIs, the funnel and the pipeline stages, all from stored data.
#[derive(Object, Debug, Clone, PartialEq)]
pub struct Operations {
    pub generated_at: chrono::DateTime<chrono::Utc>,
    /// Hours the funnel and rates cover.
    pub window_hours: i64,
    pub kpis: PlatformKpis,
    pub funnel: DecisionFunnel,
    pub stages: Vec<StageStatus>,
}

/// One log line (secrets redacted).
#[derive(Object, Debug, Clone)]
pub struct LogLineView {
    pub seq: i64,
    pub ts: chrono::DateTime<chrono::Utc>,
    /// `TRACE`, `DEBUG`, `INFO`, `WARN` or `ERROR`.
    pub level: String,
    pub target: String,
    pub component: Option<String>,
    pub message: String,
    pub fields: BTreeMap<String, String>,
}

#[derive(Object)]
pub struct LogLines {
    pub items: Vec<LogLineView>,
    /// Lines the server keeps (the oldest are dropped).
    pub capacity: i64,
}

/// A component state change and the lines logged around it.
#[derive(Object)]
pub struct StateChangeView {
    pub id: i64,
    pub ts: chrono::DateTime<chrono::Utc>,
    pub component: String,
    pub from: String,
    pub to: String,
    pub detail: Option<String>,
    pub before: Vec<LogLineView>,
    pub after: Vec<LogLineView>,
}

#[derive(Object)]
pub struct StateChangeList {
    pub items: Vec<StateChangeView>,
}

#[derive(Object, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InviteClientRequest {
    /// Organization name (1–100 characters).
    pub name: String,
    /// The future owner's e-mail (not yet registered).
    pub owner_email: String,
}

#[derive(Object)]
pub struct ClientInvited {
    pub client: ClientView,
    pub owner_email: String,
    /// The link the owner opens to set a password: shown only in this response (and e-mailed
    /// to the owner when SMTP is configured, printed to the server log otherwise).
    pub invite_url: String,
    pub expires_at: chrono::DateTime<chrono::Utc>,
}

#[derive(ApiResponse)]
pub enum InvitedClient {
    /// The organization was created; its owner is invited.
    #[oai(status = 201)]
    Created(Json<ClientInvited>),
}

#[derive(Object, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AcceptOwnerInviteRequest {
    /// The token from the invite link.
    pub token: String,
    pub password: String,
}

#[derive(Object)]
pub struct ProfileView {
    pub id: String,
    pub email: String,
    pub name: Option<String>,
    pub platform_role: Option<String>,
    pub created_at: chrono::DateTime<chrono::Utc>,
}

#[derive(Object, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProfileUpdate {
    /// Display name (at most 100 characters; empty clears it).
    pub name: Option<String>,
    /// New e-mail address.
    pub email: Option<String>,
    /// The current password (re-authentication).
    pub current_password: String,
}

#[derive(Object, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PasswordChange {
    pub current_password: String,
    pub new_password: String,
}

#[derive(Object)]
pub struct PasswordChanged {
    /// Other sessions of the user that were signed out.
    pub sessions_revoked: i64,
}

#[derive(Object, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResetRequest {
    pub email: String,
}

#[derive(Object, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResetConfirm {
    /// The token from the reset link.
    pub token: String,
    pub password: String,
}

#[derive(ApiResponse)]
pub enum Accepted {
    /// Accepted: when the address belongs to a user, a reset link is on its way.
    #[oai(status = 202)]
    Accepted,
}

fn line_view(l: LogLine) -> LogLineView {
    LogLineView {
        seq: l.seq as i64,
        ts: l.ts,
        level: l.level,
        target: l.target,
        component: l.component,
        message: l.message,
        fields: l.fields,
    }
}

fn change_view(c: StateChange) -> StateChangeView {
    StateChangeView {
        id: c.id as i64,
        ts: c.ts,
        component: c.component,
        from: c.from,
        to: c.to,
        detail: c.detail,
        before: c.before.into_iter().map(line_view).collect(),
        after: c.after.into_iter().map(line_view).collect(),
    }
}

/// Parses the `level` filter (default `info`).
fn min_level(level: Option<&str>) -> Result<u8, ApiError> {
    match level {
        None => Ok(2),
        Some(l) => logs::severity(l).ok_or_else(|| {
            ApiError::field(
                "level",
                "level must be one of trace, debug, info, warn, error",
            )
        }),
    }
}

fn caller(req: &poem::Request) -> Result<AuthCtx, ApiError> {
    req.extensions().get::<AuthCtx>().cloned().ok_or_else(|| {
        ApiError::Unauthorized("authentication required: send a valid access token".into())
    })
}

fn rejection(kind: &'static str, r: TokenRejection) -> ApiError {
    match r {
        TokenRejection::Unknown => ApiError::NotFound(kind),
        TokenRejection::Expired => ApiError::field("token", format!("this {kind} has expired")),
        TokenRejection::Used => ApiError::Conflict {
            field: Some("token".into()),
            message: format!("this {kind} was already used"),
        },
    }
}

#[OpenApi(tag = "ApiTags::Admin")]
impl ConsoleApi {
    /// Live operations (super_admin only): platform KPIs, the decision pipeline funnel over
    /// the last `hours` (1–720, default 24) and the status of each pipeline stage. Every
    /// figure comes from stored data: organizations and inventory, the risk scores of spot
    /// pools, the plans of optimize / force on-demand jobs (candidates, planned, blocked with
    /// reasons) and the audit records of their executed actions (applied, dry run, skipped,
    /// failed with reasons).
    #[oai(
        path = "/admin/operations",
        method = "get",
        operation_id = "adminOperations"
    )]
    async fn operations(
        &self,
        state: Data<&AppState>,
        auth: BearerAuth,
        hours: Query<Option<i64>>,
    ) -> poem::Result<Json<Operations>> {
        auth.0.require_super_admin()?;
        let hours = hours.0.unwrap_or(24);
        if !(1..=720).contains(&hours) {
            return Err(ApiError::field("hours", "hours must be between 1 and 720").into());
        }
        Ok(Json(
            operations_at(&state, chrono::Utc::now(), hours).await?,
        ))
    }

    /// The newest log lines of this server (super_admin only), oldest first, at `level` or
    /// above (default `info`), at most `limit` (1–2000, default 200). Secrets (bearer
    /// tokens, JWTs, AWS keys, passwords, `secret=` / `token=` values, URL credentials) are
    /// redacted.
    #[oai(path = "/admin/logs", method = "get", operation_id = "adminLogs")]
    async fn logs(
        &self,
        auth: BearerAuth,
        level: Query<Option<String>>,
        limit: Query<Option<i64>>,
    ) -> poem::Result<Json<LogLines>> {
        auth.0.require_super_admin()?;
        let min = min_level(level.0.as_deref())?;
        let limit = limit.0.unwrap_or(200);
        if !(1..=logs::RING_CAPACITY as i64).contains(&limit) {
            return Err(ApiError::field("limit", "limit must be between 1 and 2000").into());
        }
        Ok(Json(LogLines {
            items: logs::hub()
                .recent(min, limit as usize)
                .into_iter()
                .map(line_view)
                .collect(),
            capacity: logs::RING_CAPACITY as i64,
        }))
    }

    /// Live log stream (server-sent events, super_admin only): every new line at `level` or
    /// above (default `info`), redacted as in `GET /api/admin/logs`. A client too slow to
    /// keep up skips lines rather than stalling the server. `EventSource` cannot send
    /// headers, so the access token may be passed as `?access_token=`; the stream ends within
    /// 10 s of the session's revocation and when the access token expires; it counts toward
    /// the live-stream caps (429 beyond).
    #[oai(
        path = "/admin/logs/stream",
        method = "get",
        operation_id = "streamAdminLogs"
    )]
    async fn log_stream(
        &self,
        state: Data<&AppState>,
        req: &poem::Request,
        level: Query<Option<String>>,
    ) -> poem::Result<EventStream<BoxStream<'static, LogLineView>>> {
        let auth = caller(req)?;
        auth.require_super_admin()?;
        let min = min_level(level.0.as_deref())?;
        // Counted with the event streams (per-user and server-wide caps); ends on the
        // session's revocation or the token's expiry.
        let (slot, until) = super::events::live_stream_bounds(&state, req, &auth)?;
        let s = BroadcastStream::new(logs::hub().subscribe())
            .take_until(until)
            .filter_map(move |r| {
                let _held = &slot;
                async move {
                    let l = r.ok()?;
                    l.at_least(min).then(|| line_view(l))
                }
            })
            .boxed();
        Ok(EventStream::new(s).keep_alive(std::time::Duration::from_secs(15)))
    }

    /// Component state changes seen by this server's monitor (database, job queue worker,
    /// risk model, each account actor), newest first, each with the last 20 log lines before
    /// it and the 10 after (super_admin only).
    #[oai(
        path = "/admin/logs/changes",
        method = "get",
        operation_id = "adminStateChanges"
    )]
    async fn state_changes(&self, auth: BearerAuth) -> poem::Result<Json<StateChangeList>> {
        auth.0.require_super_admin()?;
        Ok(Json(StateChangeList {
            items: logs::hub().changes().into_iter().map(change_view).collect(),
        }))
    }

    /// Create an organization by inviting its owner (super_admin only): no password is
    /// generated; the owner sets one at `POST /api/auth/owner-invites/accept` with the token
    /// of `invite_url`, before `expires_at` (the invite lifetime, 7 days by default).
    #[oai(
        path = "/admin/clients/invite",
        method = "post",
        operation_id = "adminInviteClient"
    )]
    async fn invite_client(
        &self,
        state: Data<&AppState>,
        auth: BearerAuth,
        client: Data<&ClientInfo>,
        slot: Data<&AuditSlot>,
        body: Body<InviteClientRequest>,
    ) -> poem::Result<InvitedClient> {
        slot.record("admin.client.invite", "organization", None);
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
            return Err(ApiError::Conflict {
                field: Some("owner_email".into()),
                message: "an account with this email already exists".into(),
            }
            .into());
        }
        let (token, token_hash) = new_opaque_token();
        let (org_id, invite) = store::create_org_with_invite(
            &state.db,
            name,
            &email,
            &token_hash,
            &auth.0.user_id,
            state.cfg.invite_ttl_secs * 1000,
        )
        .await
        .map_err(ApiError::from)?;
        slot.record("admin.client.invite", "organization", Some(&org_id));
        let after = serde_json::json!({"name": name, "owner": email, "invite_id": invite.id, "expires_at": ts(invite.expires_at)});
        slot.diff(None, Some(after.clone()));
        for chain in [Some(org_id.as_str()), None] {
            admin_audit(
                &state,
                &auth.0,
                &client,
                chain,
                "admin.client.invite",
                "organization",
                Some(&org_id),
                Some(after.clone()),
            )
            .await;
        }
        let invite_url = format!(
            "{}/accept-owner-invite?token={token}",
            state.cfg.public_url.trim_end_matches('/')
        );
        // The link is shown to the admin once; it is also mailed to the owner when SMTP is
        // configured, and printed to the server log otherwise (the live stream redacts it).
        deliver_link(
            &state,
            &email,
            "Your Spot Optimizer organization is ready",
            format!(
                "An organization \"{name}\" was created for you on Spot Optimizer.\n\nChoose your password and sign in: {invite_url}\n\nThe link is valid until {}.",
                ts(invite.expires_at).to_rfc2822()
            ),
            format!("owner invite for {email}"),
            &invite_url,
        );
        let view = super::admin::client_view_of(&state, &org_id).await?;
        Ok(InvitedClient::Created(Json(ClientInvited {
            client: view,
            owner_email: email,
            invite_url,
            expires_at: ts(invite.expires_at),
        })))
    }

    /// Accept an owner invite: creates the owner with this password and signs them in.
    /// 404 for an unknown token, 422 when it expired, 409 when it was already used, 403 when
    /// the organization was blocked or deleted meanwhile.
    #[oai(
        path = "/auth/owner-invites/accept",
        method = "post",
        operation_id = "acceptOwnerInvite"
    )]
    async fn accept_owner_invite(
        &self,
        state: Data<&AppState>,
        client: Data<&ClientInfo>,
        slot: Data<&AuditSlot>,
        body: Body<AcceptOwnerInviteRequest>,
    ) -> poem::Result<CreatedTokens> {
        slot.record("invite.owner_accept", "invite", None);
        state.check_signup_rate(client.ip).await?;
        let token_hash = sha256_hex(body.token.trim().as_bytes());
        let Some(pending) = store::client_invite_by_token_hash(&state.db, &token_hash)
            .await
            .map_err(ApiError::from)?
        else {
            return Err(ApiError::NotFound("invite").into());
        };
        super::admin::refuse_inactive_org(&state, &pending.organization_id).await?;
        check_password_policy(&body.password, &pending.email)?;
        let hash = hash_password_async(body.password.clone()).await?;
        let (user_id, invite) =
            store::accept_client_invite(&state.db, &token_hash, &hash, spot_models::now_ms())
                .await
                .map_err(|e| match e {
                    spot_models::DbError::Conflict(_) => ApiError::Conflict {
                        field: Some("token".into()),
                        message: "a user with the invited email already exists".into(),
                    },
                    other => other.into(),
                })?
                .map_err(|r| rejection("invite", r))?;
        slot.record("invite.owner_accept", "invite", Some(&invite.id));
        slot.subject(
            Some(&invite.organization_id),
            Some(&user_id),
            Some(&invite.email),
        );
        slot.diff(
            None,
            Some(serde_json::json!({"email": invite.email, "role": "owner"})),
        );
        let tokens =
            super::auth::issue_tokens(&state, &client, &user_id, &invite.organization_id, None)
                .await?;
        Ok(CreatedTokens::Created(Json(tokens)))
    }

    /// The caller's profile.
    #[oai(path = "/auth/profile", method = "get", operation_id = "getProfile")]
    async fn get_profile(
        &self,
        state: Data<&AppState>,
        auth: BearerAuth,
    ) -> poem::Result<Json<ProfileView>> {
        Ok(Json(profile_view(&state, &auth.0.user_id).await?))
    }

    /// Change the caller's name and e-mail; the current password is required (403 when it
    /// is wrong). Not allowed while impersonating.
    #[oai(path = "/auth/profile", method = "put", operation_id = "updateProfile")]
    async fn update_profile(
        &self,
        state: Data<&AppState>,
        auth: BearerAuth,
        slot: Data<&AuditSlot>,
        body: Body<ProfileUpdate>,
    ) -> poem::Result<Json<ProfileView>> {
        slot.record("auth.profile.update", "user", Some(&auth.0.user_id));
        let a = &auth.0;
        refuse_impersonation(a)?;
        let current = store::profile(&state.db, &a.user_id)
            .await
            .map_err(ApiError::from)?
            .ok_or(ApiError::NotFound("user"))?;
        let name = match body.name.as_deref().map(str::trim) {
            None => current.display_name.clone(),
            Some("") => None,
            Some(n) if n.chars().count() > 100 => {
                return Err(ApiError::field("name", "name must be at most 100 characters").into())
            }
            Some(n) => Some(n.to_string()),
        };
        let email = match body.email.as_deref() {
            None => current.email.clone(),
            Some(e) => normalize_email(e)
                .map_err(|_| ApiError::field("email", "email must be a valid e-mail address"))?,
        };
        reauthenticate(&state, &a.user_id, &body.current_password).await?;
        store::update_profile(&state.db, &a.user_id, name.as_deref(), &email)
            .await
            .map_err(|e| match e {
                spot_models::DbError::Conflict(_) => ApiError::Conflict {
                    field: Some("email".into()),
                    message: "an account with this email already exists".into(),
                },
                other => other.into(),
            })?;
        slot.diff(
            Some(serde_json::json!({"name": current.display_name, "email": current.email})),
            Some(serde_json::json!({"name": name, "email": email})),
        );
        Ok(Json(profile_view(&state, &a.user_id).await?))
    }

    /// Change the caller's password; the current one is required (403 when it is wrong).
    /// Every other session of the user is signed out at once; this one stays. Not allowed
    /// while impersonating.
    #[oai(
        path = "/auth/password",
        method = "post",
        operation_id = "changePassword"
    )]
    async fn change_password(
        &self,
        state: Data<&AppState>,
        auth: BearerAuth,
        slot: Data<&AuditSlot>,
        body: Body<PasswordChange>,
    ) -> poem::Result<Json<PasswordChanged>> {
        slot.record("auth.password.change", "user", Some(&auth.0.user_id));
        let a = &auth.0;
        refuse_impersonation(a)?;
        check_password_policy(&body.new_password, &a.email).map_err(|e| match e {
            ApiError::Validation { message, .. } => ApiError::Validation {
                field: Some("new_password".into()),
                message: message.replacen("password", "new_password", 1),
            },
            other => other,
        })?;
        reauthenticate(&state, &a.user_id, &body.current_password).await?;
        let hash = hash_password_async(body.new_password.clone()).await?;
        let revoked = store::change_password(&state.db, &a.user_id, &hash, Some(&a.session_id))
            .await
            .map_err(ApiError::from)?;
        slot.diff(None, Some(serde_json::json!({"sessions_revoked": revoked})));
        Ok(Json(PasswordChanged {
            sessions_revoked: revoked as i64,
        }))
    }

    /// Ask for a password reset link. Always 202, whether or not the address is registered
    /// (no account enumeration). The single-use link (valid 1 hour) is e-mailed when SMTP is
    /// configured (`SPOT_SMTP_URL`) and printed to the server log otherwise; the live log
    /// stream redacts the token.
    /// Rate limited per client address like signups.
    #[oai(
        path = "/auth/password-reset",
        method = "post",
        operation_id = "requestPasswordReset"
    )]
    async fn request_reset(
        &self,
        state: Data<&AppState>,
        client: Data<&ClientInfo>,
        slot: Data<&AuditSlot>,
        body: Body<ResetRequest>,
    ) -> poem::Result<Accepted> {
        slot.record("auth.password_reset.request", "user", None);
        state.check_signup_rate(client.ip).await?;
        let email = normalize_email(&body.email)?;
        let Some(user) = orgs::user_by_email(&state.db, &email)
            .await
            .map_err(ApiError::from)?
        else {
            return Ok(Accepted::Accepted);
        };
        let org = orgs::membership_of(&state.db, &user.id)
            .await
            .map_err(ApiError::from)?
            .map(|(o, _)| o);
        slot.subject(org.as_deref(), Some(&user.id), Some(&email));
        slot.record("auth.password_reset.request", "user", Some(&user.id));
        let (token, token_hash) = new_opaque_token();
        store::create_password_reset(
            &state.db,
            &user.id,
            &token_hash,
            state.cfg.password_reset_ttl_secs * 1000,
        )
        .await
        .map_err(ApiError::from)?;
        let url = format!(
            "{}/reset-password?token={token}",
            state.cfg.public_url.trim_end_matches('/')
        );
        deliver_link(
            &state,
            &email,
            "Reset your Spot Optimizer password",
            format!(
                "Someone asked to reset the password of {email} on Spot Optimizer.\n\nChoose a new password: {url}\n\nThe link is valid for {} minutes and can be used once. If you did not ask for it, ignore this message.",
                state.cfg.password_reset_ttl_secs / 60
            ),
            format!("password reset link for {email}"),
            &url,
        );
        Ok(Accepted::Accepted)
    }

    /// Set a new password with a reset token: every session of the user is signed out.
    /// 404 for an unknown token, 422 when it expired, 409 when it was already used.
    #[oai(
        path = "/auth/password-reset/confirm",
        method = "post",
        operation_id = "confirmPasswordReset"
    )]
    async fn confirm_reset(
        &self,
        state: Data<&AppState>,
        client: Data<&ClientInfo>,
        slot: Data<&AuditSlot>,
        body: Body<ResetConfirm>,
    ) -> poem::Result<Done> {
        slot.record("auth.password_reset.confirm", "user", None);
        state.check_login_rate(client.ip).await?;
        let token_hash = sha256_hex(body.token.trim().as_bytes());
        let user_id = store::password_reset_user(&state.db, &token_hash)
            .await
            .map_err(ApiError::from)?
            .ok_or(ApiError::NotFound("reset link"))?;
        let user = orgs::user_by_id(&state.db, &user_id)
            .await
            .map_err(ApiError::from)?
            .ok_or(ApiError::NotFound("reset link"))?;
        check_password_policy(&body.password, &user.email)?;
        let hash = hash_password_async(body.password.clone()).await?;
        let (user_id, revoked) =
            store::redeem_password_reset(&state.db, &token_hash, &hash, spot_models::now_ms())
                .await
                .map_err(ApiError::from)?
                .map_err(|r| rejection("reset link", r))?;
        let org = orgs::membership_of(&state.db, &user_id)
            .await
            .map_err(ApiError::from)?
            .map(|(o, _)| o);
        slot.record("auth.password_reset.confirm", "user", Some(&user_id));
        slot.subject(org.as_deref(), Some(&user_id), Some(&user.email));
        slot.diff(None, Some(serde_json::json!({"sessions_revoked": revoked})));
        Ok(Done::Done)
    }
}

/// Hands a single-use link to its recipient: by e-mail when SMTP is configured (in the
/// background; a failure is logged without the link), otherwise printed to the server log
/// (`what` names it; the live log stream redacts the token).
fn deliver_link(state: &AppState, to: &str, subject: &str, text: String, what: String, url: &str) {
    let Some(smtp) = state.cfg.smtp_url.clone().filter(|u| !u.trim().is_empty()) else {
        tracing::info!(
            component = "CORE-AUTH",
            "{what} (no mail server configured): {url}"
        );
        return;
    };
    let (from, to, subject) = (
        state.cfg.smtp_from.clone(),
        to.to_string(),
        subject.to_string(),
    );
    tokio::spawn(async move {
        match send_mail(&smtp, &from, &to, &subject, text).await {
            Ok(()) => tracing::info!(component = "CORE-AUTH", "{what}: sent by e-mail"),
            Err(e) => {
                tracing::warn!(component = "CORE-AUTH", error = %e, "{what}: the e-mail could not be sent")
            }
        }
    });
}

async fn send_mail(
    smtp_url: &str,
    from: &str,
    to: &str,
    subject: &str,
    text: String,
) -> Result<(), String> {
    use lettre::message::Mailbox;
    use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
    let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(smtp_url)
        .map_err(|e| format!("SPOT_SMTP_URL: {e}"))?
        .timeout(Some(std::time::Duration::from_secs(20)))
        .build();
    let from: Mailbox = from.parse().map_err(|e| format!("SPOT_SMTP_FROM: {e}"))?;
    let to: Mailbox = to.parse().map_err(|e| format!("recipient: {e}"))?;
    let msg = Message::builder()
        .from(from)
        .to(to)
        .subject(subject)
        .body(text)
        .map_err(|e| format!("message not built: {e}"))?;
    transport
        .send(msg)
        .await
        .map(|_| ())
        .map_err(|e| e.to_string())
}

fn refuse_impersonation(a: &AuthCtx) -> Result<(), ApiError> {
    if a.impersonator_id.is_some() {
        return Err(ApiError::Forbidden(
            "an impersonation session cannot change the user's credentials".into(),
        ));
    }
    Ok(())
}

async fn reauthenticate(state: &AppState, user_id: &str, password: &str) -> Result<(), ApiError> {
    let user = orgs::user_by_id(&state.db, user_id)
        .await?
        .ok_or(ApiError::NotFound("user"))?;
    if !verify_password_async(password.to_string(), user.password_hash).await? {
        return Err(ApiError::Forbidden(
            "the current password is not correct".into(),
        ));
    }
    Ok(())
}

async fn profile_view(state: &AppState, user_id: &str) -> Result<ProfileView, ApiError> {
    let p = store::profile(&state.db, user_id)
        .await?
        .ok_or(ApiError::NotFound("user"))?;
    Ok(ProfileView {
        id: p.id,
        email: p.email,
        name: p.display_name,
        platform_role: p.platform_role,
        created_at: ts(p.created_at),
    })
}

#[allow(clippy::too_many_arguments)]
async fn admin_audit(
    state: &AppState,
    admin: &AuthCtx,
    client: &ClientInfo,
    org_id: Option<&str>,
    action: &str,
    resource_type: &str,
    resource_id: Option<&str>,
    after: Option<serde_json::Value>,
) {
    let rec = NewAuditRecord {
        organization_id: org_id.map(str::to_string),
        actor_kind: "user".into(),
        actor_user_id: Some(admin.user_id.clone()),
        actor_email: Some(admin.email.clone()),
        actor_admin_id: Some(admin.user_id.clone()),
        action: action.into(),
        resource_type: resource_type.into(),
        resource_id: resource_id.map(str::to_string),
        outcome: "success".into(),
        source_ip: Some(client.ip.to_string()),
        user_agent: client.user_agent.clone(),
        request_id: client.request_id.clone(),
        after,
        ..Default::default()
    };
    if let Err(e) = audit::append(&state.db, rec).await {
        tracing::error!(component = "CORE-AUDIT", error = %e, action, "audit append failed");
    }
}

// ---------------------------------------------------------------------------------------
// Live operations
// ---------------------------------------------------------------------------------------

fn top(map: BTreeMap<String, i64>) -> Vec<ReasonCount> {
    let mut v: Vec<ReasonCount> = map
        .into_iter()
        .map(|(reason, count)| ReasonCount { reason, count })
        .collect();
    v.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.reason.cmp(&b.reason)));
    v.truncate(TOP_REASONS);
    v
}

fn short(reason: &str) -> String {
    let r = reason.trim();
    if r.chars().count() > 160 {
        let mut s: String = r.chars().take(160).collect();
        s.push('…');
        s
    } else if r.is_empty() {
        "unspecified".into()
    } else {
        r.to_string()
    }
}

fn light_of(status: &str) -> &'static str {
    match status {
        "ok" | "idle" => "green",
        "degraded" | "stale" | "backlog" => "yellow",
        _ => "red",
    }
}

/// Live operations as of `now` over the last `hours`.
pub async fn operations_at(
    state: &AppState,
    now: chrono::DateTime<chrono::Utc>,
    hours: i64,
) -> Result<Operations, ApiError> {
    let db = &state.db;
    let now_ms = now.timestamp_millis();
    let since = now_ms - hours * 3_600_000;
    let hour_ago = now_ms - 3_600_000;

    // KPIs over organizations that are not soft-deleted.
    let counts = store::platform_counts(db).await?;
    let live: HashSet<String> = clients::list(db, false)
        .await?
        .into_iter()
        .map(|o| o.id)
        .collect();
    let mut kpis = PlatformKpis {
        organizations: counts.organizations,
        blocked_organizations: counts.blocked_organizations,
        deleted_organizations: counts.deleted_organizations,
        accounts: 0,
        clusters: 0,
        nodes: 0,
        monthly_spend: 0.0,
        monthly_savings: 0.0,
        decisions_per_hour: 0.0,
        decisions_last_hour: 0,
    };
    for (org, st) in clients::stats(db).await? {
        if !live.contains(&org) {
            continue;
        }
        kpis.accounts += st.accounts;
        kpis.clusters += st.clusters;
        kpis.nodes += st.nodes;
        kpis.monthly_spend += st.compute_hourly * HOURS_PER_MONTH + st.storage_monthly;
        kpis.monthly_savings += st.savings_hourly * HOURS_PER_MONTH;
    }

    // Funnel: plans of decision jobs, and the executor's audit records.
    let (pools_scored, pools_degraded, newest_score) = store::pools_scored(db, since).await?;
    let jobs = store::decision_jobs(db, DECISION_KINDS, since).await?;
    let mut planned = 0i64;
    let mut blocked = 0i64;
    let mut failed = 0i64;
    let mut blocked_reasons: BTreeMap<String, i64> = BTreeMap::new();
    let mut failed_reasons: BTreeMap<String, i64> = BTreeMap::new();
    let mut planning_failed = 0i64;
    let mut planned_jobs = 0i64;
    let mut last_job: Option<i64> = None;
    for j in &jobs {
        last_job = last_job.max(Some(j.created_at));
        let plan: Option<serde_json::Value> =
            j.plan.as_deref().and_then(|p| serde_json::from_str(p).ok());
        match plan {
            Some(p) => {
                planned_jobs += 1;
                let actions = p["actions"].as_array().map_or(0, |a| a.len()) as i64;
                let blocks = p["blocked"].as_array().cloned().unwrap_or_default();
                planned += actions;
                blocked += blocks.len() as i64;
                for b in &blocks {
                    *blocked_reasons
                        .entry(short(b["reason"].as_str().unwrap_or("")))
                        .or_default() += 1;
                }
                if j.created_at >= hour_ago {
                    kpis.decisions_last_hour += actions + blocks.len() as i64;
                }
            }
            None if j.status == spot_models::jobs::FAILED => {
                planning_failed += 1;
                failed += 1;
                *failed_reasons
                    .entry(short(&format!(
                        "job failed before planning: {}",
                        j.message.as_deref().unwrap_or("")
                    )))
                    .or_default() += 1;
            }
            None => {}
        }
    }
    let candidates = planned + blocked;
    kpis.decisions_per_hour = candidates as f64 / hours as f64;

    let (mut executed, mut dry_run, mut skipped, mut action_failed) = (0i64, 0i64, 0i64, 0i64);
    let mut last_action: Option<i64> = None;
    for r in store::action_records(db, ACTION_RECORDS, since).await? {
        last_action = last_action.max(Some(r.ts));
        let diff: serde_json::Value = serde_json::from_str(&r.diff).unwrap_or_default();
        let detail = &diff["after"]["detail"];
        if r.outcome == "success" {
            match detail["status"].as_str() {
                Some("applied") => executed += 1,
                Some("would_execute") => dry_run += 1,
                _ => skipped += 1,
            }
        } else {
            action_failed += 1;
            *failed_reasons
                .entry(short(detail["error"].as_str().unwrap_or("")))
                .or_default() += 1;
        }
    }
    failed += action_failed;
    let funnel = DecisionFunnel {
        steps: [
            ("pools_scored", pools_scored),
            ("candidates", candidates),
            ("planned", planned),
            ("executed", executed),
            ("failed", failed),
            ("blocked", blocked),
        ]
        .into_iter()
        .map(|(s, c)| FunnelStep {
            step: s.into(),
            count: c,
        })
        .collect(),
        jobs: jobs.len() as i64,
        pools_scored,
        pools_degraded,
        candidates,
        planned,
        executed,
        dry_run,
        skipped,
        failed,
        blocked,
        blocked_reasons: top(blocked_reasons),
        failed_reasons: top(failed_reasons),
    };

    // Stages.
    let model = super::risk::active_view(state);
    let stale_after_ms = (state.cfg.discovery_interval_secs as i64).max(60) * 3 * 1000;
    let scoring_status = match newest_score {
        None => "idle",
        Some(_) if model.degraded => "degraded",
        Some(t) if now_ms - t > stale_after_ms => "stale",
        Some(_) => "ok",
    };
    let mut q_total = (0i64, 0i64);
    for k in DECISION_KINDS {
        let (q, r, _) = store::job_stage_counts(db, k).await?;
        q_total.0 += q;
        q_total.1 += r;
    }
    let planning_status = if q_total.0 > 100 {
        "backlog"
    } else if jobs.is_empty() && q_total.1 == 0 {
        "idle"
    } else {
        "ok"
    };
    let worker = state.jobs.runtime().health();
    let execution_status = if !worker.alive {
        "stopped"
    } else if action_failed > 0 && executed + dry_run + skipped == 0 {
        "degraded"
    } else if last_action.is_none() {
        "idle"
    } else {
        "ok"
    };
    let stages = vec![
        StageStatus {
            stage: "scoring".into(),
            status: scoring_status.into(),
            light: light_of(scoring_status).into(),
            queued: 0,
            running: 0,
            processed: pools_scored,
            failed: pools_degraded,
            last_activity_at: newest_score.map(ts),
            detail: format!(
                "risk model {} ({}){}",
                model.name,
                model.runtime,
                if model.degraded {
                    " (degraded: static fallback)"
                } else {
                    ""
                }
            ),
        },
        StageStatus {
            stage: "planning".into(),
            status: planning_status.into(),
            light: light_of(planning_status).into(),
            queued: q_total.0,
            running: q_total.1,
            processed: planned_jobs,
            failed: planning_failed,
            last_activity_at: last_job.map(ts),
            detail: format!("{} decision jobs in the window", jobs.len()),
        },
        StageStatus {
            stage: "execution".into(),
            status: execution_status.into(),
            light: light_of(execution_status).into(),
            queued: 0,
            running: q_total.1,
            processed: executed + dry_run + skipped,
            failed: action_failed,
            last_activity_at: last_action.map(ts),
            detail: if worker.alive {
                format!("job worker running ({} restarts)", worker.restarts)
            } else {
                format!(
                    "job worker stopped: {}",
                    worker.last_error.unwrap_or_default()
                )
            },
        },
    ];
    Ok(Operations {
        generated_at: now,
        window_hours: hours,
        kpis,
        funnel,
        stages,
    })
}
