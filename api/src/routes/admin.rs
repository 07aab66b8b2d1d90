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

#[OpenApi(prefix_path = "/admin", tag = "ApiTags::Admin")]
impl AdminApi {
    /// Every customer organization (super_admin only).
    #[oai(path = "/organizations", method = "get", operation_id = "adminListOrganizations")]
    async fn organizations(&self, state: Data<&AppState>, auth: BearerAuth) -> poem::Result<Json<OrgSummaryList>> {
        auth.0.require_super_admin()?;
        let mut items = Vec::new();
        for o in orgs::list_orgs(&state.db).await.map_err(ApiError::from)? {
            let members = orgs::list_members(&state.db, &o.id).await.map_err(ApiError::from)?.len() as i64;
            items.push(OrgSummary { id: o.id, name: o.name, created_at: ts(o.created_at), members });
        }
        Ok(Json(OrgSummaryList { items }))
    }

    /// Act as an organization's owner. The session keeps the admin's identity: every action
    /// is audited as `impersonation` with both ids.
    #[oai(path = "/impersonate", method = "post", operation_id = "adminImpersonate")]
    async fn impersonate(
        &self,
        state: Data<&AppState>,
        auth: BearerAuth,
        client: Data<&ClientInfo>,
        slot: Data<&AuditSlot>,
        body: Body<ImpersonateRequest>,
    ) -> poem::Result<Json<TokenResponse>> {
        slot.record("admin.impersonate", "organization", Some(&body.organization_id));
        auth.0.require_super_admin()?;
        let members = orgs::list_members(&state.db, &body.organization_id).await.map_err(ApiError::from)?;
        let owner = members.into_iter().find(|m| m.role == "owner").ok_or(ApiError::NotFound("organization"))?;
        let tokens = super::auth::issue_session_tokens(&state, &client, &owner.user_id, &body.organization_id, Some(&auth.0.user_id)).await?;
        slot.diff(None, Some(serde_json::json!({"organization_id": body.organization_id, "as_user": owner.user_id})));
        Ok(Json(tokens))
    }
}
