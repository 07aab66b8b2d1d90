use poem::web::Data;
use poem_openapi::param::Path;
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Enum, Object, OpenApi};
use spot_models::orgs;

use super::auth::NoContent;
use super::{ts, ApiTags};
use crate::auth::{new_opaque_token, normalize_email, BearerAuth, Role};
use crate::body::Body;
use crate::error::ApiError;
use crate::gateway::AuditSlot;
use crate::state::AppState;

pub struct OrgApi;

#[derive(Enum, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[oai(rename_all = "snake_case")]
#[serde(rename_all = "snake_case")]
pub enum OnboardingState {
    Skipped,
    Completed,
}

#[derive(Object, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OnboardingRequest {
    pub state: OnboardingState,
}

#[derive(Enum, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[oai(rename_all = "snake_case")]
#[serde(rename_all = "snake_case")]
pub enum MemberRole {
    Owner,
    Admin,
    Viewer,
}

impl MemberRole {
    fn role(self) -> Role {
        match self {
            MemberRole::Owner => Role::Owner,
            MemberRole::Admin => Role::Admin,
            MemberRole::Viewer => Role::Viewer,
        }
    }
}

#[derive(Enum, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[oai(rename_all = "snake_case")]
#[serde(rename_all = "snake_case")]
pub enum InviteRole {
    Admin,
    Viewer,
}

#[derive(Object)]
pub struct MemberView {
    pub user_id: String,
    pub email: String,
    pub role: String,
    pub joined_at: chrono::DateTime<chrono::Utc>,
}

#[derive(Object)]
pub struct MemberList {
    pub items: Vec<MemberView>,
}

#[derive(Object, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoleUpdate {
    pub role: MemberRole,
}

#[derive(Object, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InviteRequest {
    pub email: String,
    /// Role the invitee gets (`owner` cannot be invited; promote a member instead).
    pub role: InviteRole,
}

#[derive(Object)]
pub struct InviteCreated {
    pub id: String,
    pub email: String,
    pub role: String,
    pub expires_at: chrono::DateTime<chrono::Utc>,
    /// Shown once: share it with the invitee. Only its hash is stored.
    pub token: String,
    pub accept_url: String,
}

#[derive(Object)]
pub struct InviteView {
    pub id: String,
    pub email: String,
    pub role: String,
    pub expires_at: chrono::DateTime<chrono::Utc>,
    pub accepted_at: Option<chrono::DateTime<chrono::Utc>>,
}

#[derive(Object)]
pub struct InviteList {
    pub items: Vec<InviteView>,
}

#[derive(Object, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OrgSettings {
    /// Days audit records are kept (30–3650), or null to keep them indefinitely.
    pub audit_retention_days: Option<i64>,
}

#[derive(ApiResponse)]
pub enum InviteResponse {
    #[oai(status = 201)]
    Created(Json<InviteCreated>),
}

fn member_view(m: orgs::Member) -> MemberView {
    MemberView {
        user_id: m.user_id,
        email: m.email,
        role: m.role,
        joined_at: ts(m.joined_at),
    }
}

#[OpenApi(prefix_path = "/org", tag = "ApiTags::Organization")]
impl OrgApi {
    /// Record that the onboarding wizard was skipped or completed; it is not shown again.
    #[oai(path = "/onboarding", method = "post", operation_id = "setOnboarding")]
    async fn onboarding(
        &self,
        state: Data<&AppState>,
        auth: BearerAuth,
        slot: Data<&AuditSlot>,
        body: Body<OnboardingRequest>,
    ) -> poem::Result<NoContent> {
        let value = match body.state {
            OnboardingState::Skipped => "skipped",
            OnboardingState::Completed => "completed",
        };
        slot.record("org.onboarding", "organization", Some(&auth.0.org_id));
        slot.diff(None, Some(serde_json::json!({ "onboarding_state": value })));
        orgs::set_onboarding_state(&state.db, &auth.0.org_id, value)
            .await
            .map_err(ApiError::from)?;
        Ok(NoContent::Done)
    }

    /// Members of the caller's organization.
    #[oai(path = "/members", method = "get", operation_id = "listMembers")]
    async fn members(
        &self,
        state: Data<&AppState>,
        auth: BearerAuth,
    ) -> poem::Result<Json<MemberList>> {
        let items = orgs::list_members(&state.db, &auth.0.org_id)
            .await
            .map_err(ApiError::from)?;
        Ok(Json(MemberList {
            items: items.into_iter().map(member_view).collect(),
        }))
    }

    /// Change a member's role. Only owners grant or remove `owner`; the last owner stays.
    #[oai(
        path = "/members/:user_id",
        method = "patch",
        operation_id = "updateMemberRole"
    )]
    async fn update_member(
        &self,
        state: Data<&AppState>,
        auth: BearerAuth,
        slot: Data<&AuditSlot>,
        user_id: Path<String>,
        body: Body<RoleUpdate>,
    ) -> poem::Result<Json<MemberView>> {
        let a = &auth.0;
        slot.record("member.update_role", "member", Some(&user_id));
        a.require_admin()?;
        let member = orgs::get_member(&state.db, &a.org_id, &user_id)
            .await
            .map_err(ApiError::from)?
            .ok_or(ApiError::NotFound("member"))?;
        let current = Role::parse(&member.role).unwrap_or(Role::Viewer);
        let wanted = body.role.role();
        if (current == Role::Owner || wanted == Role::Owner) && a.role != Role::Owner {
            return Err(ApiError::Forbidden(
                "only an owner can grant or remove the owner role".into(),
            )
            .into());
        }
        if current == Role::Owner
            && wanted != Role::Owner
            && orgs::count_owners(&state.db, &a.org_id)
                .await
                .map_err(ApiError::from)?
                <= 1
        {
            return Err(ApiError::Conflict {
                field: Some("role".into()),
                message: "the organization needs at least one owner".into(),
            }
            .into());
        }
        orgs::set_member_role(&state.db, &a.org_id, &user_id, wanted.as_str())
            .await
            .map_err(ApiError::from)?;
        slot.diff(
            Some(serde_json::json!({"role": member.role})),
            Some(serde_json::json!({"role": wanted.as_str()})),
        );
        let updated = orgs::get_member(&state.db, &a.org_id, &user_id)
            .await
            .map_err(ApiError::from)?
            .ok_or(ApiError::NotFound("member"))?;
        Ok(Json(member_view(updated)))
    }

    /// Remove a member (their sessions end at once).
    #[oai(
        path = "/members/:user_id",
        method = "delete",
        operation_id = "removeMember"
    )]
    async fn remove_member(
        &self,
        state: Data<&AppState>,
        auth: BearerAuth,
        slot: Data<&AuditSlot>,
        user_id: Path<String>,
    ) -> poem::Result<NoContent> {
        let a = &auth.0;
        slot.record("member.remove", "member", Some(&user_id));
        a.require_admin()?;
        let member = orgs::get_member(&state.db, &a.org_id, &user_id)
            .await
            .map_err(ApiError::from)?
            .ok_or(ApiError::NotFound("member"))?;
        if member.role == "owner" {
            if a.role != Role::Owner {
                return Err(ApiError::Forbidden("only an owner can remove an owner".into()).into());
            }
            if orgs::count_owners(&state.db, &a.org_id)
                .await
                .map_err(ApiError::from)?
                <= 1
            {
                return Err(ApiError::Conflict {
                    field: None,
                    message: "the organization needs at least one owner".into(),
                }
                .into());
            }
        }
        orgs::remove_member(&state.db, &a.org_id, &user_id)
            .await
            .map_err(ApiError::from)?;
        slot.diff(
            Some(serde_json::json!({"email": member.email, "role": member.role})),
            None,
        );
        Ok(NoContent::Done)
    }

    /// Invite a teammate by e-mail. The response carries the one-time token and link.
    #[oai(path = "/invites", method = "post", operation_id = "createInvite")]
    async fn create_invite(
        &self,
        state: Data<&AppState>,
        auth: BearerAuth,
        slot: Data<&AuditSlot>,
        body: Body<InviteRequest>,
    ) -> poem::Result<InviteResponse> {
        let a = &auth.0;
        slot.record("invite.create", "invite", None);
        a.require_admin()?;
        let email = normalize_email(&body.email)?;
        if orgs::user_by_email(&state.db, &email)
            .await
            .map_err(ApiError::from)?
            .is_some()
        {
            return Err(ApiError::Conflict {
                field: Some("email".into()),
                message: "a user with this email already exists".into(),
            }
            .into());
        }
        let role = match body.role {
            InviteRole::Admin => "admin",
            InviteRole::Viewer => "viewer",
        };
        let (token, hash) = new_opaque_token();
        let inv = orgs::create_invite(
            &state.db,
            &a.org_id,
            &email,
            role,
            &hash,
            &a.user_id,
            state.cfg.invite_ttl_secs * 1000,
        )
        .await
        .map_err(ApiError::from)?;
        slot.record("invite.create", "invite", Some(&inv.id));
        slot.diff(
            None,
            Some(serde_json::json!({"email": email, "role": role})),
        );
        Ok(InviteResponse::Created(Json(InviteCreated {
            id: inv.id,
            email: inv.email,
            role: inv.role,
            expires_at: ts(inv.expires_at),
            accept_url: format!(
                "{}/invite/accept?token={}",
                state.cfg.public_url.trim_end_matches('/'),
                token
            ),
            token,
        })))
    }

    /// Pending and accepted invites of the organization.
    #[oai(path = "/invites", method = "get", operation_id = "listInvites")]
    async fn list_invites(
        &self,
        state: Data<&AppState>,
        auth: BearerAuth,
    ) -> poem::Result<Json<InviteList>> {
        let items = orgs::list_invites(&state.db, &auth.0.org_id)
            .await
            .map_err(ApiError::from)?;
        Ok(Json(InviteList {
            items: items
                .into_iter()
                .map(|i| InviteView {
                    id: i.id,
                    email: i.email,
                    role: i.role,
                    expires_at: ts(i.expires_at),
                    accepted_at: i.accepted_at.map(ts),
                })
                .collect(),
        }))
    }

    /// Revoke a pending invite.
    #[oai(
        path = "/invites/:id",
        method = "delete",
        operation_id = "revokeInvite"
    )]
    async fn revoke_invite(
        &self,
        state: Data<&AppState>,
        auth: BearerAuth,
        slot: Data<&AuditSlot>,
        id: Path<String>,
    ) -> poem::Result<NoContent> {
        slot.record("invite.revoke", "invite", Some(&id));
        auth.0.require_admin()?;
        if !orgs::revoke_invite(&state.db, &auth.0.org_id, &id)
            .await
            .map_err(ApiError::from)?
        {
            return Err(ApiError::NotFound("invite").into());
        }
        Ok(NoContent::Done)
    }

    /// Organization settings.
    #[oai(path = "/settings", method = "get", operation_id = "getOrgSettings")]
    async fn get_settings(
        &self,
        state: Data<&AppState>,
        auth: BearerAuth,
    ) -> poem::Result<Json<OrgSettings>> {
        let org = orgs::org_by_id(&state.db, &auth.0.org_id)
            .await
            .map_err(ApiError::from)?
            .ok_or(ApiError::NotFound("organization"))?;
        Ok(Json(OrgSettings {
            audit_retention_days: org.audit_retention_days,
        }))
    }

    /// Update organization settings. Retention applies at the next periodic purge.
    #[oai(path = "/settings", method = "put", operation_id = "updateOrgSettings")]
    async fn put_settings(
        &self,
        state: Data<&AppState>,
        auth: BearerAuth,
        slot: Data<&AuditSlot>,
        body: Body<OrgSettings>,
    ) -> poem::Result<Json<OrgSettings>> {
        let a = &auth.0;
        slot.record("org.settings.update", "organization", Some(&a.org_id));
        a.require_admin()?;
        if let Some(d) = body.audit_retention_days {
            if !(30..=3650).contains(&d) {
                return Err(ApiError::field(
                    "audit_retention_days",
                    "audit_retention_days must be between 30 and 3650, or null for indefinite",
                )
                .into());
            }
        }
        let org = orgs::org_by_id(&state.db, &a.org_id)
            .await
            .map_err(ApiError::from)?
            .ok_or(ApiError::NotFound("organization"))?;
        orgs::set_audit_retention(&state.db, &a.org_id, body.audit_retention_days)
            .await
            .map_err(ApiError::from)?;
        slot.diff(
            Some(serde_json::json!({"audit_retention_days": org.audit_retention_days})),
            Some(serde_json::json!({"audit_retention_days": body.audit_retention_days})),
        );
        Ok(Json(OrgSettings {
            audit_retention_days: body.audit_retention_days,
        }))
    }
}
