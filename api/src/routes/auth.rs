use poem::web::Data;
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Object, OpenApi};
use spot_models::{orgs, sessions};

use super::{ts, ApiTags};
use crate::auth::{
    check_password_policy, hash_password_async, new_opaque_token, normalize_email, sha256_hex,
    verify_password_async, BearerAuth,
};
use crate::body::Body;
use crate::error::ApiError;
use crate::gateway::{route_hint, AuditSlot, ClientInfo};
use crate::state::AppState;

pub struct AuthApi;

#[derive(Object, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignupRequest {
    /// Display name of the new organization (1–100 characters).
    pub org_name: String,
    pub email: String,
    /// At least 10 characters with a letter and a digit.
    pub password: String,
}

#[derive(Object, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    pub email: String,
    pub password: String,
}

#[derive(Object, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RefreshRequest {
    pub refresh_token: String,
}

#[derive(Object, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogoutRequest {
    /// Also revoke this refresh token (normally the session's own).
    pub refresh_token: Option<String>,
}

#[derive(Object, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AcceptInviteRequest {
    /// The token from the invite link.
    pub token: String,
    pub password: String,
}

#[derive(Object)]
pub struct TokenResponse {
    /// Short-lived JWT for `Authorization: Bearer`.
    pub access_token: String,
    /// Opaque, single-use: exchange it at `/api/auth/refresh` for a new pair.
    pub refresh_token: String,
    pub token_type: String,
    /// Access token lifetime in seconds.
    pub expires_in: i64,
}

#[derive(Object)]
pub struct UserView {
    pub id: String,
    pub email: String,
    pub created_at: chrono::DateTime<chrono::Utc>,
}

#[derive(Object)]
pub struct OrgView {
    pub id: String,
    pub name: String,
    pub created_at: chrono::DateTime<chrono::Utc>,
}

#[derive(Object)]
pub struct MeResponse {
    pub user: UserView,
    pub organization: OrgView,
    /// `owner`, `admin` or `viewer` in this organization.
    pub role: String,
    /// `super_admin` for platform operators.
    pub platform_role: Option<String>,
    /// Where the app should go: `onboarding` while the organization has no active account and
    /// the wizard was neither finished nor skipped, `dashboard` otherwise.
    pub route: String,
    pub onboarding_dismissed: bool,
    /// Set when a platform admin is acting as this user.
    pub impersonated_by: Option<String>,
}

#[derive(ApiResponse)]
pub enum CreatedTokens {
    /// Created; the caller is signed in.
    #[oai(status = 201)]
    Created(Json<TokenResponse>),
}

#[derive(ApiResponse)]
pub enum NoContent {
    #[oai(status = 204)]
    Done,
}

pub(crate) async fn issue_tokens(
    state: &AppState,
    client: &ClientInfo,
    user_id: &str,
    org_id: &str,
    impersonator: Option<&str>,
) -> Result<TokenResponse, ApiError> {
    let (refresh, refresh_hash) = new_opaque_token();
    let s = sessions::create(
        &state.db,
        sessions::NewSession {
            user_id,
            organization_id: org_id,
            refresh_hash: &refresh_hash,
            ttl_ms: state.cfg.refresh_ttl_secs * 1000,
            impersonator_id: impersonator,
            source_ip: Some(&client.ip.to_string()),
            user_agent: client.user_agent.as_deref(),
        },
    )
    .await?;
    let access = state.jwt.issue_as(
        user_id,
        org_id,
        &s.id,
        state.cfg.access_ttl_secs,
        impersonator,
    )?;
    Ok(TokenResponse {
        access_token: access,
        refresh_token: refresh,
        token_type: "Bearer".into(),
        expires_in: state.cfg.access_ttl_secs,
    })
}

#[OpenApi(prefix_path = "/auth", tag = "ApiTags::Auth")]
impl AuthApi {
    /// Create an organization and its owner.
    ///
    /// One transaction creates the organization, the owner user (argon2id hash) and a
    /// `pending` placeholder cloud account; on any failure nothing is left behind. Rate
    /// limited per client address (default 5 per hour).
    #[oai(path = "/signup", method = "post", operation_id = "signup")]
    async fn signup(
        &self,
        state: Data<&AppState>,
        client: Data<&ClientInfo>,
        slot: Data<&AuditSlot>,
        body: Body<SignupRequest>,
    ) -> poem::Result<CreatedTokens> {
        slot.record("auth.signup", "organization", None);
        state.check_signup_rate(client.ip).await?;
        let org_name = body.org_name.trim();
        if org_name.is_empty() || org_name.chars().count() > 100 {
            return Err(ApiError::field("org_name", "org_name must be 1 to 100 characters").into());
        }
        let email = normalize_email(&body.email)?;
        check_password_policy(&body.password, &email)?;
        if orgs::user_by_email(&state.db, &email)
            .await
            .map_err(ApiError::from)?
            .is_some()
        {
            return Err(ApiError::Conflict {
                field: Some("email".into()),
                message: "an account with this email already exists".into(),
            }
            .into());
        }
        let hash = hash_password_async(body.password.clone()).await?;
        let rec = orgs::signup(&state.db, org_name, &email, &hash)
            .await
            .map_err(|e| match e {
                spot_models::DbError::Conflict(_) => ApiError::Conflict {
                    field: Some("email".into()),
                    message: "an account with this email already exists".into(),
                },
                other => other.into(),
            })?;
        slot.record("auth.signup", "organization", Some(&rec.organization.id));
        slot.subject(Some(&rec.organization.id), Some(&rec.user.id), Some(&email));
        slot.diff(None, Some(serde_json::json!({"organization": rec.organization.name, "owner": email, "placeholder_account": rec.placeholder_account_id})));
        let tokens =
            issue_tokens(&state, &client, &rec.user.id, &rec.organization.id, None).await?;
        Ok(CreatedTokens::Created(Json(tokens)))
    }

    /// Sign in with e-mail and password.
    ///
    /// Returns a short-lived access token and a rotating refresh token. Rate limited per
    /// client address (default 10 per minute) and per account (default 10 failed sign-ins per
    /// 15 minutes from any address); a wrong e-mail and a wrong password answer the same. 503
    /// while the server is saturated with password checks.
    #[oai(path = "/token", method = "post", operation_id = "login")]
    async fn token(
        &self,
        state: Data<&AppState>,
        client: Data<&ClientInfo>,
        slot: Data<&AuditSlot>,
        body: Body<LoginRequest>,
    ) -> poem::Result<Json<TokenResponse>> {
        slot.record("auth.login", "session", None);
        state.check_login_rate(client.ip).await?;
        let email = body.email.trim().to_lowercase();
        slot.subject(None, None, Some(&email));
        // Too many failures for this account from anywhere: refused before any hashing.
        state.limiter.check_account(&email).await?;
        let user = orgs::user_by_email(&state.db, &email)
            .await
            .map_err(ApiError::from)?;
        // Verify against a fixed hash when the user is unknown so timing does not reveal it.
        let hash = user
            .as_ref()
            .map(|u| u.password_hash.clone())
            .unwrap_or_else(|| DUMMY_HASH.to_string());
        let ok = verify_password_async(body.password.clone(), hash).await?;
        let (Some(user), true) = (user, ok) else {
            state.limiter.record_login_failure(&email).await;
            return Err(ApiError::Unauthorized("invalid email or password".into()).into());
        };
        let Some((org_id, _role)) = orgs::membership_of(&state.db, &user.id)
            .await
            .map_err(ApiError::from)?
        else {
            state.limiter.record_login_failure(&email).await;
            return Err(ApiError::Unauthorized("invalid email or password".into()).into());
        };
        slot.subject(Some(&org_id), Some(&user.id), Some(&email));
        super::admin::refuse_inactive_org(&state, &org_id).await?;
        let tokens = issue_tokens(&state, &client, &user.id, &org_id, None).await?;
        Ok(Json(tokens))
    }

    /// Exchange a refresh token for a new token pair.
    ///
    /// The presented refresh token is consumed: using it again answers 401 and revokes the
    /// whole session (reuse of a rotated token means it was copied), so every holder of that
    /// session must sign in again.
    #[oai(path = "/refresh", method = "post", operation_id = "refresh")]
    async fn refresh(
        &self,
        state: Data<&AppState>,
        slot: Data<&AuditSlot>,
        body: Body<RefreshRequest>,
    ) -> poem::Result<Json<TokenResponse>> {
        slot.record("auth.refresh", "session", None);
        let (new_refresh, new_hash) = new_opaque_token();
        let s = match sessions::rotate(
            &state.db,
            &sha256_hex(body.refresh_token.as_bytes()),
            &new_hash,
        )
        .await
        .map_err(ApiError::from)?
        {
            sessions::Rotation::Rotated(s) => s,
            sessions::Rotation::Reused(s) => {
                // A consumed token came back: whoever holds the session (a thief, or the
                // user) is signed out, and the audit log says why.
                slot.record("auth.refresh_reuse", "session", Some(&s.id));
                slot.subject(Some(&s.organization_id), Some(&s.user_id), None);
                tracing::warn!(component = "CORE-AUTH", session = %s.id, "refresh token reused; session revoked");
                return Err(ApiError::Unauthorized(
                    "refresh token was already used; the session has been revoked".into(),
                )
                .into());
            }
            sessions::Rotation::Invalid => {
                return Err(ApiError::Unauthorized(
                    "refresh token is invalid, expired or revoked".into(),
                )
                .into())
            }
        };
        slot.record("auth.refresh", "session", Some(&s.id));
        slot.subject(Some(&s.organization_id), Some(&s.user_id), None);
        let access = state.jwt.issue_as(
            &s.user_id,
            &s.organization_id,
            &s.id,
            state.cfg.access_ttl_secs,
            s.impersonator_id.as_deref(),
        )?;
        Ok(Json(TokenResponse {
            access_token: access,
            refresh_token: new_refresh,
            token_type: "Bearer".into(),
            expires_in: state.cfg.access_ttl_secs,
        }))
    }

    /// Sign out: revokes the session behind the access token (and the given refresh token).
    /// Both tokens answer 401 afterwards.
    #[oai(path = "/logout", method = "post", operation_id = "logout")]
    async fn logout(
        &self,
        state: Data<&AppState>,
        auth: BearerAuth,
        slot: Data<&AuditSlot>,
        body: Body<LogoutRequest>,
    ) -> poem::Result<NoContent> {
        slot.record("auth.logout", "session", Some(&auth.0.session_id));
        sessions::revoke(&state.db, &auth.0.session_id)
            .await
            .map_err(ApiError::from)?;
        if let Some(rt) = &body.refresh_token {
            sessions::revoke_by_refresh(&state.db, &sha256_hex(rt.as_bytes()))
                .await
                .map_err(ApiError::from)?;
        }
        Ok(NoContent::Done)
    }

    /// The signed-in user, their organization and role, and where the app should route.
    #[oai(path = "/me", method = "get", operation_id = "me")]
    async fn me(&self, state: Data<&AppState>, auth: BearerAuth) -> poem::Result<Json<MeResponse>> {
        let a = &auth.0;
        let user = orgs::user_by_id(&state.db, &a.user_id)
            .await
            .map_err(ApiError::from)?
            .ok_or(ApiError::NotFound("user"))?;
        let org = orgs::org_by_id(&state.db, &a.org_id)
            .await
            .map_err(ApiError::from)?
            .ok_or(ApiError::NotFound("organization"))?;
        let route = route_hint(&state, &org).await?;
        Ok(Json(MeResponse {
            user: UserView {
                id: user.id,
                email: user.email,
                created_at: ts(user.created_at),
            },
            organization: OrgView {
                id: org.id.clone(),
                name: org.name.clone(),
                created_at: ts(org.created_at),
            },
            role: a.role.as_str().into(),
            platform_role: user.platform_role,
            route: route.into(),
            onboarding_dismissed: org.onboarding_state.is_some(),
            impersonated_by: a.impersonator_id.clone(),
        }))
    }

    /// Accept a team invite: creates the user with the invited role and signs them in.
    #[oai(
        path = "/invites/accept",
        method = "post",
        operation_id = "acceptInvite"
    )]
    async fn accept_invite(
        &self,
        state: Data<&AppState>,
        client: Data<&ClientInfo>,
        slot: Data<&AuditSlot>,
        body: Body<AcceptInviteRequest>,
    ) -> poem::Result<CreatedTokens> {
        slot.record("invite.accept", "invite", None);
        state.check_signup_rate(client.ip).await?;
        let hash_of_token = sha256_hex(body.token.trim().as_bytes());
        let Some(pending) = orgs::invite_by_token_hash(&state.db, &hash_of_token)
            .await
            .map_err(ApiError::from)?
        else {
            return Err(ApiError::NotFound("invite").into());
        };
        super::admin::refuse_inactive_org(&state, &pending.organization_id).await?;
        check_password_policy(&body.password, &pending.email)?;
        let pw_hash = hash_password_async(body.password.clone()).await?;
        let res = orgs::accept_invite(&state.db, &hash_of_token, &pw_hash)
            .await
            .map_err(|e| match e {
                spot_models::DbError::Conflict(_) => ApiError::Conflict {
                    field: Some("token".into()),
                    message: "a user with the invited email already exists".into(),
                },
                other => other.into(),
            })?;
        let (user, invite) = match res {
            Ok(v) => v,
            Err(orgs::InviteRejection::Unknown) => return Err(ApiError::NotFound("invite").into()),
            Err(orgs::InviteRejection::Expired) => {
                return Err(ApiError::field("token", "this invite has expired").into())
            }
            Err(orgs::InviteRejection::Used) => {
                return Err(ApiError::Conflict {
                    field: Some("token".into()),
                    message: "this invite was already used".into(),
                }
                .into())
            }
        };
        slot.record("invite.accept", "invite", Some(&invite.id));
        slot.subject(
            Some(&invite.organization_id),
            Some(&user.id),
            Some(&user.email),
        );
        slot.diff(
            None,
            Some(serde_json::json!({"email": user.email, "role": invite.role})),
        );
        let tokens = issue_tokens(&state, &client, &user.id, &invite.organization_id, None).await?;
        Ok(CreatedTokens::Created(Json(tokens)))
    }
}

/// argon2id hash of a random string, used to equalize login timing for unknown users.
const DUMMY_HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$1XvTHtL0Yk1R7l3T1nCzJ1q1k8yXo8bKXfXxQ1nN6Qk";
