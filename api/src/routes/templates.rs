//! Node templates: the organization's reusable node specifications (families,
//! architectures, sizes, capacity type and spot strategy, fallback, root volume, security
//! groups, labels and taints), with clone, an atomic default, validation against the
//! instance catalog, a live cost estimate from a linked account's scored market, and
//! protection of templates that cluster policies use.

use std::collections::BTreeMap;

use poem::web::Data;
use poem_openapi::param::{Path, Query};
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Object, OpenApi};
use spot_engine::template::{self as tmpl, TemplateSpec};
use spot_models::templates;

use super::jobs::{AllocationStrategy, Architecture, CapacityType};
use super::{ts, ApiTags};
use crate::auth::BearerAuth;
use crate::body::Body;
use crate::error::ApiError;
use crate::gateway::AuditSlot;
use crate::state::AppState;

pub struct TemplatesApi;

/// Root volume of launched nodes.
#[derive(Object, Clone, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StorageSpec {
    /// `gp3`, `gp2`, `io1` or `io2`.
    pub volume_type: String,
    /// 20–16384 GiB.
    pub size_gib: u32,
    /// Provisioned IOPS: gp3 3000–16000, io1 100–64000, io2 100–256000 (required for io1/io2;
    /// not accepted for gp2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iops: Option<u32>,
}

/// A taint put on launched nodes.
#[derive(Object, Clone, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TaintSpec {
    pub key: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    /// `NoSchedule`, `PreferNoSchedule` or `NoExecute`.
    pub effect: String,
}

/// What a node template says.
#[derive(Object, Clone, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TemplateSpecView {
    /// Instance families (at least one), e.g. `m6i`, `c7g`.
    pub families: Vec<String>,
    /// Allowed architectures (empty: those of the families). ARM64 with an x86-only family
    /// (e.g. `g4dn`) or x86_64 with a Graviton-only family is refused.
    pub architectures: Vec<Architecture>,
    /// Sizes never bought, e.g. `nano`, `metal`.
    pub excluded_sizes: Vec<String>,
    pub capacity_type: CapacityType,
    pub strategy: AllocationStrategy,
    pub allow_burstable: bool,
    /// Buy on-demand when no spot pool fits or spot capacity is exhausted.
    pub on_demand_fallback: bool,
    pub storage: StorageSpec,
    /// Security group ids attached to launched nodes (empty: the node group's).
    pub security_groups: Vec<String>,
    /// Labels put on launched nodes.
    pub labels: BTreeMap<String, String>,
    /// Taints put on launched nodes.
    pub taints: Vec<TaintSpec>,
}

/// A cluster whose policy uses the template.
#[derive(Object)]
pub struct TemplateUser {
    pub cluster_id: String,
    pub cluster_name: String,
}

#[derive(Object)]
pub struct TemplateView {
    pub id: String,
    pub name: String,
    pub description: Option<String>,
    /// The organization's default template (exactly one when there are templates).
    pub is_default: bool,
    pub spec: TemplateSpecView,
    /// Clusters whose policy uses it (it cannot be deleted while any does).
    pub used_by: Vec<TemplateUser>,
    pub created_at: chrono::DateTime<chrono::Utc>,
    pub updated_at: chrono::DateTime<chrono::Utc>,
}

#[derive(Object)]
pub struct TemplateList {
    pub items: Vec<TemplateView>,
}

/// A new template. `spec` fields that are left out take the defaults (spot,
/// capacity-optimized, on-demand fallback, a 50 GiB gp3 root volume).
#[derive(Object, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TemplateInput {
    /// Unique in the organization, 1–64 characters.
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    pub spec: TemplateSpecInput,
}

/// Template fields; the missing ones take their defaults (create) or keep their value
/// (update).
#[derive(Object, Default, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TemplateSpecInput {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub families: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub architectures: Option<Vec<Architecture>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub excluded_sizes: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capacity_type: Option<CapacityType>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub strategy: Option<AllocationStrategy>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allow_burstable: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_demand_fallback: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage: Option<StorageSpec>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub security_groups: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub labels: Option<BTreeMap<String, String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub taints: Option<Vec<TaintSpec>>,
}

/// Changes to a template; missing fields keep their value.
#[derive(Object, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TemplatePatch {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spec: Option<TemplateSpecInput>,
}

/// A copy's name (default: "<name> (copy)").
#[derive(Object, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CloneInput {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

/// What nodes of a template cost now in a linked account's market.
#[derive(Object)]
pub struct TemplateEstimate {
    /// Instance types the template admits.
    pub instance_types: u32,
    /// Spot pools (type × zone) it admits.
    pub pools: u32,
    /// Mean current spot price of those pools, USD/h.
    pub avg_spot_hourly: Option<f64>,
    /// Mean on-demand price of the admitted types, USD/h.
    pub avg_on_demand_hourly: Option<f64>,
    /// 1 − spot/on-demand of the means.
    pub spot_discount: Option<f64>,
    /// The account whose market priced it.
    pub account_id: String,
    pub region: String,
}

/// A security group of a linked account, for a template's `security_groups`.
#[derive(Object)]
pub struct SecurityGroupView {
    /// `sg-…`
    pub id: String,
    pub name: String,
    pub description: String,
    pub vpc_id: Option<String>,
    /// The EKS cluster the group is tagged for, if any.
    pub cluster: Option<String>,
}

/// The security groups of one linked account's region.
#[derive(Object)]
pub struct SecurityGroupList {
    pub account_id: String,
    pub account_name: String,
    pub region: String,
    pub items: Vec<SecurityGroupView>,
}

#[derive(ApiResponse)]
pub enum TemplateCreated {
    #[oai(status = 201)]
    Created(Json<TemplateView>),
}

#[derive(ApiResponse)]
pub enum TemplateDeleted {
    #[oai(status = 204)]
    Deleted,
}

const MAX_NAME: usize = 64;

fn check_name(name: &str) -> Result<String, ApiError> {
    let n = name.trim();
    if n.is_empty() || n.chars().count() > MAX_NAME {
        return Err(ApiError::field(
            "name",
            format!("a name of 1 to {MAX_NAME} characters is required"),
        ));
    }
    Ok(n.to_string())
}

fn default_spec() -> serde_json::Value {
    serde_json::json!({
        "families": [],
        "architectures": [],
        "excluded_sizes": [],
        "capacity_type": "spot",
        "strategy": "capacity_optimized",
        "allow_burstable": false,
        "on_demand_fallback": true,
        "storage": tmpl::Storage::default(),
        "security_groups": [],
        "labels": {},
        "taints": [],
    })
}

/// `base` with the input's fields laid over it, validated against the instance catalog.
fn build_spec(
    base: serde_json::Value,
    input: &TemplateSpecInput,
) -> Result<TemplateSpec, ApiError> {
    let mut v = base;
    let patch = serde_json::to_value(input).map_err(|e| ApiError::Internal(e.to_string()))?;
    if let (Some(b), serde_json::Value::Object(p)) = (v.as_object_mut(), patch) {
        for (k, val) in p {
            b.insert(k, val);
        }
    }
    let spec: TemplateSpec = serde_json::from_value(v)
        .map_err(|e| ApiError::field("spec", format!("invalid template: {e}")))?;
    tmpl::validate(&spec, catalog_families()).map_err(|e| ApiError::field(&e.field, e.message))?;
    Ok(spec)
}

/// Families (and their architectures) of the instance catalog the product ships.
fn catalog_families(
) -> &'static BTreeMap<String, std::collections::BTreeSet<spot_engine::catalog::Arch>> {
    static FAMILIES: std::sync::OnceLock<
        BTreeMap<String, std::collections::BTreeSet<spot_engine::catalog::Arch>>,
    > = std::sync::OnceLock::new();
    FAMILIES.get_or_init(|| {
        let mut out: BTreeMap<String, std::collections::BTreeSet<spot_engine::catalog::Arch>> =
            BTreeMap::new();
        for t in spot_cloud::sim::Catalog::embedded().types() {
            let arch = match t.architecture {
                spot_cloud::Architecture::Arm64 => spot_engine::catalog::Arch::Arm64,
                spot_cloud::Architecture::X86_64 => spot_engine::catalog::Arch::X86_64,
            };
            out.entry(t.family.clone()).or_default().insert(arch);
        }
        out
    })
}

fn spec_view(spec: &TemplateSpec) -> Result<TemplateSpecView, ApiError> {
    serde_json::to_value(spec)
        .and_then(serde_json::from_value)
        .map_err(|e| ApiError::Internal(format!("template does not serialize: {e}")))
}

fn parse_spec(row: &templates::TemplateRow) -> Result<TemplateSpec, ApiError> {
    spot_actors::policy::spec_of(row).map_err(ApiError::Internal)
}

async fn view(state: &AppState, row: templates::TemplateRow) -> Result<TemplateView, ApiError> {
    let used_by = templates::used_by(&state.db, &row.organization_id, &row.id)
        .await
        .map_err(ApiError::from)?
        .into_iter()
        .map(|(cluster_id, cluster_name)| TemplateUser {
            cluster_id,
            cluster_name,
        })
        .collect();
    view_with(row, used_by)
}

fn view_with(
    row: templates::TemplateRow,
    used_by: Vec<TemplateUser>,
) -> Result<TemplateView, ApiError> {
    let spec = parse_spec(&row)?;
    Ok(TemplateView {
        spec: spec_view(&spec)?,
        id: row.id,
        name: row.name,
        description: row.description,
        is_default: row.is_default == 1,
        used_by,
        created_at: ts(row.created_at),
        updated_at: ts(row.updated_at),
    })
}

async fn find(state: &AppState, org: &str, id: &str) -> Result<templates::TemplateRow, ApiError> {
    templates::get(&state.db, org, id)
        .await
        .map_err(ApiError::from)?
        .ok_or(ApiError::NotFound("template"))
}

async fn unique_name(
    state: &AppState,
    org: &str,
    name: &str,
    except: Option<&str>,
) -> Result<(), ApiError> {
    if templates::name_taken(&state.db, org, name, except)
        .await
        .map_err(ApiError::from)?
    {
        return Err(ApiError::field(
            "name",
            format!("a template named {name:?} already exists"),
        ));
    }
    Ok(())
}

/// A taken name found by the unique index (two requests at once) is the same 422.
fn insert_error(name: &str) -> impl Fn(spot_models::DbError) -> ApiError + '_ {
    move |e| match e {
        spot_models::DbError::Conflict(_) => {
            ApiError::field("name", format!("a template named {name:?} already exists"))
        }
        other => ApiError::from(other),
    }
}

/// Tells the cluster actors whose policy uses the template about its new spec.
async fn propagate(state: &AppState, org: &str, id: &str, spec: &TemplateSpec) {
    let Ok(users) = templates::used_by(&state.db, org, id).await else {
        return;
    };
    for (cluster_id, _) in users {
        if let Ok(Some(c)) = spot_models::inventory::cluster(&state.db, org, &cluster_id).await {
            state
                .actors
                .set_template(&c.account_id, &c.name, spec.node_template());
        }
    }
}

#[OpenApi(tag = "ApiTags::Inventory")]
impl TemplatesApi {
    /// The organization's node templates, the default first.
    #[oai(path = "/templates", method = "get", operation_id = "listTemplates")]
    async fn list(
        &self,
        state: Data<&AppState>,
        auth: BearerAuth,
    ) -> poem::Result<Json<TemplateList>> {
        // One query for the clusters of every template, not one per template.
        let mut users: BTreeMap<String, Vec<TemplateUser>> = BTreeMap::new();
        for (template_id, cluster_id, cluster_name) in
            templates::users_in_org(&state.db, &auth.0.org_id)
                .await
                .map_err(ApiError::from)?
        {
            users.entry(template_id).or_default().push(TemplateUser {
                cluster_id,
                cluster_name,
            });
        }
        let mut items = Vec::new();
        for row in templates::list(&state.db, &auth.0.org_id)
            .await
            .map_err(ApiError::from)?
        {
            let used_by = users.remove(&row.id).unwrap_or_default();
            items.push(view_with(row, used_by)?);
        }
        Ok(Json(TemplateList { items }))
    }

    /// Creates a template (admins and owners). The organization's first template becomes
    /// its default. 422 names the invalid field: a taken name, no family, an unknown
    /// family, architectures the families do not have, disk size or IOPS out of range,
    /// malformed security groups, labels or taints.
    #[oai(path = "/templates", method = "post", operation_id = "createTemplate")]
    async fn create(
        &self,
        state: Data<&AppState>,
        auth: BearerAuth,
        slot: Data<&AuditSlot>,
        body: Body<TemplateInput>,
    ) -> poem::Result<TemplateCreated> {
        slot.record("template.create", "node_template", None);
        auth.0.require_admin()?;
        let name = check_name(&body.name)?;
        let spec = build_spec(default_spec(), &body.spec)?;
        unique_name(&state, &auth.0.org_id, &name, None).await?;
        let json = serde_json::to_string(&spec).map_err(|e| ApiError::Internal(e.to_string()))?;
        let row = templates::insert(
            &state.db,
            &auth.0.org_id,
            templates::NewTemplate {
                name: &name,
                description: body.description.as_deref(),
                spec: &json,
                created_by: Some(&auth.0.user_id),
            },
        )
        .await
        .map_err(insert_error(&name))?;
        slot.record("template.create", "node_template", Some(&row.id));
        slot.diff(
            None,
            Some(serde_json::json!({"name": row.name, "spec": spec})),
        );
        Ok(TemplateCreated::Created(Json(view(&state, row).await?)))
    }

    /// Live cost estimate of a (draft) template: the mean current spot and on-demand
    /// prices of the pools it admits in a linked account's scored market (`account_id`,
    /// or the first linked account), with how many pools. 422 names an invalid field; 409
    /// when no account is linked.
    #[oai(
        path = "/templates/estimate",
        method = "post",
        operation_id = "estimateTemplate"
    )]
    async fn estimate(
        &self,
        state: Data<&AppState>,
        auth: BearerAuth,
        account_id: Query<Option<String>>,
        body: Body<TemplateSpecInput>,
    ) -> poem::Result<Json<TemplateEstimate>> {
        let spec = build_spec(default_spec(), &body)?;
        let ctx = spot_jobs::JobContext {
            deps: state.deps.clone(),
            actors: state.actors.clone(),
            safe_mode: true,
        };
        let account = account_id.0.as_deref().filter(|s| !s.is_empty());
        let (market, acc) = spot_jobs::optimize::account_market(&ctx, &auth.0.org_id, account)
            .await
            .map_err(|e| ApiError::Conflict {
                field: None,
                message: format!("no market to price the template: {e}"),
            })?;
        let e = tmpl::estimate(&spec, &market.catalog);
        Ok(Json(TemplateEstimate {
            instance_types: e.instance_types as u32,
            pools: e.pools as u32,
            avg_spot_hourly: e.avg_spot_hourly,
            avg_on_demand_hourly: e.avg_on_demand_hourly,
            spot_discount: e.spot_discount,
            account_id: acc.id,
            region: acc.region.unwrap_or_default(),
        }))
    }

    /// The security groups of a linked account (`account_id`, or the first linked
    /// account), read from the cloud now, for choosing a template's `security_groups`.
    /// 404 for an unknown account; 409 when no account is linked or the account cannot be
    /// read (e.g. the role lacks `ec2:DescribeSecurityGroups`).
    #[oai(
        path = "/templates/security-groups",
        method = "get",
        operation_id = "listTemplateSecurityGroups"
    )]
    async fn security_groups(
        &self,
        state: Data<&AppState>,
        auth: BearerAuth,
        account_id: Query<Option<String>>,
    ) -> poem::Result<Json<SecurityGroupList>> {
        let org = &auth.0.org_id;
        let account = match account_id.0.as_deref().filter(|s| !s.is_empty()) {
            Some(id) => spot_models::accounts::get(&state.db, org, id)
                .await
                .map_err(ApiError::from)?
                .filter(|a| a.status != "disconnected")
                .ok_or(ApiError::NotFound("account"))?,
            None => spot_models::accounts::list(&state.db, org)
                .await
                .map_err(ApiError::from)?
                .into_iter()
                .find(|a| a.status == "active")
                .ok_or_else(|| ApiError::Conflict {
                    field: None,
                    message: "no cloud account is linked: link one to read its security groups"
                        .into(),
                })?,
        };
        let unreadable = |e: String| ApiError::Conflict {
            field: Some("account_id".into()),
            message: format!(
                "the security groups of {} cannot be read: {e}",
                account.name
            ),
        };
        let ct = spot_models::accounts::credentials(&state.db, &account.id)
            .await
            .map_err(ApiError::from)?;
        let target =
            spot_actors::system::target_of(&state.keyring, &account, ct).map_err(unreadable)?;
        let cloud = state
            .connector
            .connect(&target)
            .await
            .map_err(|e| unreadable(e.to_string()))?;
        let groups = cloud
            .describe_security_groups()
            .await
            .map_err(|e| unreadable(e.to_string()))?;
        Ok(Json(SecurityGroupList {
            account_id: account.id.clone(),
            account_name: account.name.clone(),
            region: cloud.region().to_string(),
            items: groups
                .into_iter()
                .map(|g| SecurityGroupView {
                    cluster: g.tags.get(spot_cloud::TAG_EKS_CLUSTER).cloned(),
                    id: g.id,
                    name: g.name,
                    description: g.description,
                    vpc_id: g.vpc_id,
                })
                .collect(),
        }))
    }

    /// One template.
    #[oai(path = "/templates/:id", method = "get", operation_id = "getTemplate")]
    async fn get(
        &self,
        state: Data<&AppState>,
        auth: BearerAuth,
        id: Path<String>,
    ) -> poem::Result<Json<TemplateView>> {
        let row = find(&state, &auth.0.org_id, &id).await?;
        Ok(Json(view(&state, row).await?))
    }

    /// Changes a template (admins and owners); missing fields keep their value. Clusters
    /// whose policy uses it follow the new spec at once.
    #[oai(
        path = "/templates/:id",
        method = "patch",
        operation_id = "updateTemplate"
    )]
    async fn update(
        &self,
        state: Data<&AppState>,
        auth: BearerAuth,
        slot: Data<&AuditSlot>,
        id: Path<String>,
        body: Body<TemplatePatch>,
    ) -> poem::Result<Json<TemplateView>> {
        slot.record("template.update", "node_template", Some(&id));
        auth.0.require_admin()?;
        let row = find(&state, &auth.0.org_id, &id).await?;
        let before = parse_spec(&row)?;
        let name = match &body.name {
            Some(n) => check_name(n)?,
            None => row.name.clone(),
        };
        unique_name(&state, &auth.0.org_id, &name, Some(&row.id)).await?;
        let base = serde_json::to_value(&before).map_err(|e| ApiError::Internal(e.to_string()))?;
        let spec = build_spec(
            base,
            body.spec.as_ref().unwrap_or(&TemplateSpecInput::default()),
        )?;
        let description = match &body.description {
            Some(d) => Some(d.as_str()),
            None => row.description.as_deref(),
        };
        let json = serde_json::to_string(&spec).map_err(|e| ApiError::Internal(e.to_string()))?;
        let found = templates::update(&state.db, &auth.0.org_id, &id, &name, description, &json)
            .await
            .map_err(insert_error(&name))?;
        if !found {
            return Err(ApiError::NotFound("template").into());
        }
        propagate(&state, &auth.0.org_id, &id, &spec).await;
        slot.diff(
            Some(serde_json::json!({"name": row.name, "spec": before})),
            Some(serde_json::json!({"name": name, "spec": spec})),
        );
        let row = find(&state, &auth.0.org_id, &id).await?;
        Ok(Json(view(&state, row).await?))
    }

    /// Deletes a template (admins and owners). 409 naming the clusters while a policy uses
    /// it. Deleting the default makes the oldest remaining template the default.
    #[oai(
        path = "/templates/:id",
        method = "delete",
        operation_id = "deleteTemplate"
    )]
    async fn delete(
        &self,
        state: Data<&AppState>,
        auth: BearerAuth,
        slot: Data<&AuditSlot>,
        id: Path<String>,
    ) -> poem::Result<TemplateDeleted> {
        slot.record("template.delete", "node_template", Some(&id));
        auth.0.require_admin()?;
        match templates::delete(&state.db, &auth.0.org_id, &id)
            .await
            .map_err(ApiError::from)?
        {
            templates::Deleted::Deleted => Ok(TemplateDeleted::Deleted),
            templates::Deleted::NotFound => Err(ApiError::NotFound("template").into()),
            templates::Deleted::InUse(clusters) => Err(ApiError::Conflict {
                field: None,
                message: format!(
                    "the template is used by the policy of {}: link those clusters to another template first",
                    clusters.join(", ")
                ),
            }
            .into()),
        }
    }

    /// Copies a template under a new name (admins and owners); the copy is never the
    /// default.
    #[oai(
        path = "/templates/:id/clone",
        method = "post",
        operation_id = "cloneTemplate"
    )]
    async fn clone_template(
        &self,
        state: Data<&AppState>,
        auth: BearerAuth,
        slot: Data<&AuditSlot>,
        id: Path<String>,
        body: Body<CloneInput>,
    ) -> poem::Result<TemplateCreated> {
        slot.record("template.clone", "node_template", Some(&id));
        auth.0.require_admin()?;
        let src = find(&state, &auth.0.org_id, &id).await?;
        let name = match &body.name {
            Some(n) => check_name(n)?,
            None => {
                let mut n = format!("{} (copy)", src.name);
                let mut i = 2;
                while templates::name_taken(&state.db, &auth.0.org_id, &n, None)
                    .await
                    .map_err(ApiError::from)?
                {
                    n = format!("{} (copy {i})", src.name);
                    i += 1;
                }
                check_name(&n)?
            }
        };
        unique_name(&state, &auth.0.org_id, &name, None).await?;
        let row = templates::insert(
            &state.db,
            &auth.0.org_id,
            templates::NewTemplate {
                name: &name,
                description: src.description.as_deref(),
                spec: &src.spec,
                created_by: Some(&auth.0.user_id),
            },
        )
        .await
        .map_err(insert_error(&name))?;
        slot.diff(
            None,
            Some(serde_json::json!({"from": src.id, "id": row.id, "name": row.name})),
        );
        Ok(TemplateCreated::Created(Json(view(&state, row).await?)))
    }

    /// Makes the template the organization's default (admins and owners), atomically:
    /// exactly one default at any moment.
    #[oai(
        path = "/templates/:id/default",
        method = "post",
        operation_id = "setDefaultTemplate"
    )]
    async fn set_default(
        &self,
        state: Data<&AppState>,
        auth: BearerAuth,
        slot: Data<&AuditSlot>,
        id: Path<String>,
    ) -> poem::Result<Json<TemplateView>> {
        slot.record("template.default", "node_template", Some(&id));
        auth.0.require_admin()?;
        if !templates::set_default(&state.db, &auth.0.org_id, &id)
            .await
            .map_err(ApiError::from)?
        {
            return Err(ApiError::NotFound("template").into());
        }
        let row = find(&state, &auth.0.org_id, &id).await?;
        Ok(Json(view(&state, row).await?))
    }
}
