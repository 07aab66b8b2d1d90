//! Force on-demand (manual overrides): for one instance, a cluster, the organization or
//! (super-admins) the whole platform, for a number of hours or until revoked. Starting one
//! queues a force job per covered cluster; revoking or expiring one hands the clusters back
//! to the policy. The logic lives in `spot_jobs::force`; these handlers validate,
//! authorize and audit.

use std::time::Duration;

use poem::web::Data;
use poem_openapi::param::Path;
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Object, OpenApi};
use spot_models::inventory;
use spot_models::overrides::{self, NewOverride, Override, Scope};

use super::jobs::{job_view, JobView};
use super::{ts, ApiTags};
use crate::auth::BearerAuth;
use crate::body::Body;
use crate::error::ApiError;
use crate::gateway::AuditSlot;
use crate::state::AppState;

/// Longest override with a duration: 30 days (longer ones are "until revoked").
pub const MAX_HOURS: u32 = 720;
/// Ended overrides stay in the list this long.
const ENDED_VISIBLE_MS: i64 = 7 * 24 * 3_600_000;

pub struct OverridesApi;

#[derive(Object, serde::Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct ForceOnDemandRequest {
    /// How long the override lasts, in hours (1–720); absent or null: until revoked.
    #[serde(default)]
    pub duration_hours: Option<u32>,
    /// Why (shown in the list and the audit log), at most 500 characters.
    #[serde(default)]
    pub reason: Option<String>,
}

/// One manual override.
#[derive(Object)]
pub struct OverrideView {
    pub id: String,
    /// instance, cluster, organization or platform.
    pub scope: String,
    pub cluster_id: Option<String>,
    /// Instance scope: the instance as forced.
    pub instance_id: Option<String>,
    /// Instance scope: its on-demand replacement, once made (kept while the override lasts).
    pub replacement_instance_id: Option<String>,
    pub reason: Option<String>,
    pub created_by: String,
    pub created_at: chrono::DateTime<chrono::Utc>,
    /// Null: until revoked.
    pub expires_at: Option<chrono::DateTime<chrono::Utc>>,
    pub active: bool,
    pub ended_at: Option<chrono::DateTime<chrono::Utc>>,
    /// A user id, or `system` for an expiry.
    pub ended_by: Option<String>,
    /// revoked or expired.
    pub end_reason: Option<String>,
}

fn view(o: Override) -> OverrideView {
    let active = o.active_at(spot_models::now_ms());
    OverrideView {
        active,
        id: o.id,
        scope: o.scope,
        cluster_id: o.cluster_id,
        instance_id: o.instance_id,
        replacement_instance_id: o.replacement_instance_id,
        reason: o.reason,
        created_by: o.created_by,
        created_at: ts(o.created_at),
        expires_at: o.expires_at.map(ts),
        ended_at: o.ended_at.map(ts),
        ended_by: o.ended_by,
        end_reason: o.end_reason,
    }
}

/// An override and what it set in motion.
#[derive(Object)]
pub struct OverrideStarted {
    #[oai(rename = "override")]
    pub override_: OverrideView,
    /// One force job per covered cluster (watch `job.progress` / `job.action` events).
    pub jobs: Vec<JobView>,
    /// Clusters already running an optimization or force job: their force job is queued
    /// as soon as it ends (within 30 s).
    pub waiting_clusters: Vec<String>,
}

#[derive(Object)]
pub struct OverrideList {
    pub items: Vec<OverrideView>,
}

/// Platform overrides listed at most (active ones first).
const PLATFORM_LISTED: usize = 20;

/// One covered cluster of a platform override and its force job.
#[derive(Object)]
pub struct ClusterProgressView {
    pub organization_id: String,
    pub organization_name: String,
    pub cluster_id: String,
    pub cluster_name: String,
    /// The cluster's latest force job since the override began; null: none yet (the
    /// cluster was busy, the sweep queues it within 30 s).
    pub job_id: Option<String>,
    /// queued, running, succeeded, failed or cancelled; null without a job.
    pub job_status: Option<String>,
    /// The job's last message (why it failed, for one).
    pub job_message: Option<String>,
    /// The job only plans (safe mode or a dry-run policy): nothing is switched.
    pub dry_run: bool,
    /// Spot nodes to replace: the plan's actions, or before the plan (or when the job
    /// failed before planning) the cluster's spot nodes in the inventory.
    pub nodes_to_switch: i64,
    /// Whether `nodes_to_switch` comes from the job's plan.
    pub planned: bool,
    /// Replacements applied by the safe executor.
    pub nodes_switched: i64,
    /// Spot nodes the plan could not replace (no on-demand price for their type).
    pub blocked: i64,
}

/// An override's progress across all organizations.
#[derive(Object)]
pub struct OverrideProgressView {
    /// Ordered by organization and cluster name.
    pub clusters: Vec<ClusterProgressView>,
    pub nodes_to_switch: i64,
    pub nodes_switched: i64,
    pub blocked: i64,
    /// Covered clusters with a force job.
    pub jobs_total: i64,
    /// Of those, jobs that ended (succeeded, failed or cancelled).
    pub jobs_finished: i64,
    /// Of those, jobs that failed or were cancelled.
    pub jobs_failed: i64,
    /// Covered clusters still without a force job.
    pub clusters_waiting: i64,
    /// Every covered cluster's force job ended.
    pub complete: bool,
    /// Complete, and every covered spot node was switched (none left, none blocked).
    pub all_switched: bool,
}

fn progress_view(p: overrides::OverrideProgress) -> OverrideProgressView {
    OverrideProgressView {
        clusters: p
            .clusters
            .into_iter()
            .map(|c| ClusterProgressView {
                organization_id: c.organization_id,
                organization_name: c.organization_name,
                cluster_id: c.cluster_id,
                cluster_name: c.cluster_name,
                job_id: c.job_id,
                job_status: c.job_status,
                job_message: c.job_message,
                dry_run: c.dry_run,
                nodes_to_switch: c.nodes_to_switch,
                planned: c.planned,
                nodes_switched: c.nodes_switched,
                blocked: c.blocked,
            })
            .collect(),
        nodes_to_switch: p.nodes_to_switch,
        nodes_switched: p.nodes_switched,
        blocked: p.blocked,
        jobs_total: p.jobs_total,
        jobs_finished: p.jobs_finished,
        jobs_failed: p.jobs_failed,
        clusters_waiting: p.clusters_waiting,
        complete: p.complete,
        all_switched: p.all_switched,
    }
}

/// A platform-wide override and how far it got.
#[derive(Object)]
pub struct PlatformOverride {
    #[oai(rename = "override")]
    pub override_: OverrideView,
    pub progress: OverrideProgressView,
}

#[derive(Object)]
pub struct PlatformOverrideList {
    pub items: Vec<PlatformOverride>,
}

#[derive(ApiResponse)]
pub enum StartedResponse {
    /// The override is in force; its force jobs are queued.
    #[oai(status = 202)]
    Accepted(Json<OverrideStarted>),
}

fn validate(body: &ForceOnDemandRequest) -> Result<Option<i64>, ApiError> {
    validate_scope(body, Scope::Cluster)
}

/// [`validate`] for a scope: the platform-wide emergency override needs a reason.
fn validate_scope(body: &ForceOnDemandRequest, scope: Scope) -> Result<Option<i64>, ApiError> {
    if scope == Scope::Platform && body.reason.as_deref().is_none_or(|r| r.trim().is_empty()) {
        return Err(ApiError::field(
            "reason",
            "reason is required for the platform-wide emergency override (it is shown to every organization's audit log)",
        ));
    }
    if let Some(r) = &body.reason {
        if r.chars().count() > 500 {
            return Err(ApiError::field(
                "reason",
                "reason must be at most 500 characters",
            ));
        }
    }
    match body.duration_hours {
        None => Ok(None),
        Some(h) if (1..=MAX_HOURS).contains(&h) => {
            Ok(Some(spot_models::now_ms() + i64::from(h) * 3_600_000))
        }
        Some(_) => Err(ApiError::field(
            "duration_hours",
            format!("duration_hours must be 1–{MAX_HOURS} (omit it for \"until revoked\")"),
        )),
    }
}

async fn start(
    state: &AppState,
    auth: &BearerAuth,
    slot: &AuditSlot,
    new: NewOverride<'_>,
) -> Result<StartedResponse, ApiError> {
    let o = overrides::create(&state.db, new)
        .await
        .map_err(ApiError::from)?;
    let started = spot_jobs::force::start(
        &state.db,
        &state.jobs,
        &state.actors,
        &o,
        Some(&auth.0.user_id),
        state.cfg.safe_mode,
    )
    .await
    .map_err(ApiError::from)?;
    slot.diff(
        None,
        Some(serde_json::json!({
            "override_id": o.id,
            "scope": o.scope,
            "cluster_id": o.cluster_id,
            "instance_id": o.instance_id,
            "expires_at": o.expires_at,
            "jobs": started.jobs.iter().map(|j| j.id.clone()).collect::<Vec<_>>(),
            "waiting_clusters": started.waiting,
        })),
    );
    Ok(StartedResponse::Accepted(Json(OverrideStarted {
        override_: view(o),
        jobs: started.jobs.into_iter().map(job_view).collect(),
        waiting_clusters: started.waiting,
    })))
}

#[OpenApi(tag = "ApiTags::Inventory")]
impl OverridesApi {
    /// Forces one instance (a node of a managed cluster) to on-demand (admins and owners):
    /// if it runs on spot it is replaced by an on-demand node of the same type through the
    /// safe executor, and the planner keeps it on demand until the override expires or is
    /// revoked. 422 when the instance is not a node of a cluster.
    #[oai(
        path = "/instances/:id/force-on-demand",
        method = "post",
        operation_id = "forceInstanceOnDemand"
    )]
    async fn force_instance(
        &self,
        state: Data<&AppState>,
        auth: BearerAuth,
        slot: Data<&AuditSlot>,
        id: Path<String>,
        body: Body<ForceOnDemandRequest>,
    ) -> poem::Result<StartedResponse> {
        slot.record("override.create", "instance", Some(&id));
        auth.0.require_admin()?;
        let expires_at = validate(&body)?;
        let i = inventory::instance(&state.db, &auth.0.org_id, &id)
            .await
            .map_err(ApiError::from)?
            .ok_or(ApiError::NotFound("instance"))?;
        let Some(cluster) = i.cluster_id.as_deref() else {
            return Err(ApiError::field(
                "id",
                "this instance is not a node of a managed cluster: only cluster nodes can be forced on demand",
            )
            .into());
        };
        Ok(start(
            &state,
            &auth,
            &slot,
            NewOverride {
                organization_id: Some(&auth.0.org_id),
                scope: Scope::Instance,
                cluster_id: Some(cluster),
                instance_id: Some(&i.instance_id),
                reason: body.reason.as_deref(),
                created_by: &auth.0.user_id,
                expires_at,
            },
        )
        .await?)
    }

    /// Forces every node of a cluster to on-demand (admins and owners), for a duration or
    /// until revoked; the cluster buys only on-demand capacity meanwhile.
    #[oai(
        path = "/clusters/:id/force-on-demand",
        method = "post",
        operation_id = "forceClusterOnDemand"
    )]
    async fn force_cluster(
        &self,
        state: Data<&AppState>,
        auth: BearerAuth,
        slot: Data<&AuditSlot>,
        id: Path<String>,
        body: Body<ForceOnDemandRequest>,
    ) -> poem::Result<StartedResponse> {
        slot.record("override.create", "cluster", Some(&id));
        auth.0.require_admin()?;
        let expires_at = validate(&body)?;
        inventory::cluster(&state.db, &auth.0.org_id, &id)
            .await
            .map_err(ApiError::from)?
            .ok_or(ApiError::NotFound("cluster"))?;
        Ok(start(
            &state,
            &auth,
            &slot,
            NewOverride {
                organization_id: Some(&auth.0.org_id),
                scope: Scope::Cluster,
                cluster_id: Some(&id),
                instance_id: None,
                reason: body.reason.as_deref(),
                created_by: &auth.0.user_id,
                expires_at,
            },
        )
        .await?)
    }

    /// Forces every cluster of the organization to on-demand (owners and admins).
    #[oai(
        path = "/org/force-on-demand",
        method = "post",
        operation_id = "forceOrganizationOnDemand"
    )]
    async fn force_org(
        &self,
        state: Data<&AppState>,
        auth: BearerAuth,
        slot: Data<&AuditSlot>,
        body: Body<ForceOnDemandRequest>,
    ) -> poem::Result<StartedResponse> {
        slot.record("override.create", "organization", Some(&auth.0.org_id));
        auth.0.require_admin()?;
        let expires_at = validate(&body)?;
        Ok(start(
            &state,
            &auth,
            &slot,
            NewOverride {
                organization_id: Some(&auth.0.org_id),
                scope: Scope::Organization,
                cluster_id: None,
                instance_id: None,
                reason: body.reason.as_deref(),
                created_by: &auth.0.user_id,
                expires_at,
            },
        )
        .await?)
    }

    /// The platform-wide emergency override (super-admins): every managed cluster of every
    /// organization goes on demand. `reason` is required here (422 naming it when absent
    /// or blank); follow the switch with `GET /api/admin/overrides`.
    #[oai(
        path = "/admin/force-on-demand",
        method = "post",
        operation_id = "adminForcePlatformOnDemand"
    )]
    async fn force_platform(
        &self,
        state: Data<&AppState>,
        auth: BearerAuth,
        slot: Data<&AuditSlot>,
        body: Body<ForceOnDemandRequest>,
    ) -> poem::Result<StartedResponse> {
        slot.record("override.create", "platform", None);
        auth.0.require_super_admin()?;
        let expires_at = validate_scope(&body, Scope::Platform)?;
        Ok(start(
            &state,
            &auth,
            &slot,
            NewOverride {
                organization_id: None,
                scope: Scope::Platform,
                cluster_id: None,
                instance_id: None,
                reason: body.reason.as_deref(),
                created_by: &auth.0.user_id,
                expires_at,
            },
        )
        .await?)
    }

    /// The platform-wide emergency overrides (super-admins): active ones first, then those
    /// ended in the last 7 days, newest first, each with its progress across every
    /// organization, computed from the force jobs queued while it was in force (per
    /// cluster: the latest one).
    #[oai(
        path = "/admin/overrides",
        method = "get",
        operation_id = "adminListPlatformOverrides",
        tag = "ApiTags::Admin"
    )]
    async fn list_platform(
        &self,
        state: Data<&AppState>,
        auth: BearerAuth,
    ) -> poem::Result<Json<PlatformOverrideList>> {
        auth.0.require_super_admin()?;
        let now = spot_models::now_ms();
        let mut items: Vec<Override> = overrides::list_platform(&state.db)
            .await
            .map_err(ApiError::from)?
            .into_iter()
            .filter(|o| {
                o.active_at(now)
                    || o.ended_at.or(o.expires_at).unwrap_or(now) >= now - ENDED_VISIBLE_MS
            })
            .collect();
        // Active first; newest first within each group (the list's order, kept by a stable sort).
        items.sort_by_key(|o| !o.active_at(now));
        items.truncate(PLATFORM_LISTED);
        let mut out = Vec::with_capacity(items.len());
        for o in items {
            let progress = overrides::progress(&state.db, &o)
                .await
                .map_err(ApiError::from)?;
            out.push(PlatformOverride {
                override_: view(o),
                progress: progress_view(progress),
            });
        }
        Ok(Json(PlatformOverrideList { items: out }))
    }

    /// The organization's overrides (and the platform's): active ones first, then those
    /// ended in the last 7 days.
    #[oai(path = "/overrides", method = "get", operation_id = "listOverrides")]
    async fn list(
        &self,
        state: Data<&AppState>,
        auth: BearerAuth,
    ) -> poem::Result<Json<OverrideList>> {
        let items = overrides::list(&state.db, &auth.0.org_id, ENDED_VISIBLE_MS)
            .await
            .map_err(ApiError::from)?;
        Ok(Json(OverrideList {
            items: items.into_iter().map(view).collect(),
        }))
    }

    /// Revokes an override (admins and owners; a platform one: super-admins): its
    /// clusters go back to the policy, and an optimization per cluster lets the planner
    /// decide what they should run now. 409 when it already ended.
    #[oai(
        path = "/overrides/:id/revoke",
        method = "post",
        operation_id = "revokeOverride"
    )]
    async fn revoke(
        &self,
        state: Data<&AppState>,
        auth: BearerAuth,
        slot: Data<&AuditSlot>,
        id: Path<String>,
    ) -> poem::Result<Json<OverrideStarted>> {
        slot.record("override.revoke", "override", Some(&id));
        auth.0.require_admin()?;
        let o = overrides::get_for_org(&state.db, &auth.0.org_id, &id)
            .await
            .map_err(ApiError::from)?
            .ok_or(ApiError::NotFound("override"))?;
        if o.scope == Scope::Platform.as_str() {
            auth.0.require_super_admin()?;
        }
        if !o.active_at(spot_models::now_ms()) {
            return Err(ApiError::Conflict {
                field: None,
                message: "the override already ended".into(),
            }
            .into());
        }
        let done = spot_jobs::force::end(
            &state.db,
            &state.jobs,
            &state.actors,
            &o,
            &auth.0.user_id,
            "revoked",
            state.cfg.safe_mode,
        )
        .await
        .map_err(ApiError::from)?
        .ok_or_else(|| ApiError::Conflict {
            field: None,
            message: "the override already ended".into(),
        })?;
        slot.diff(
            Some(serde_json::json!({"active": true})),
            Some(serde_json::json!({"active": false, "revert_jobs": done.jobs.iter().map(|j| j.id.clone()).collect::<Vec<_>>(), "waiting_clusters": done.waiting})),
        );
        let o = overrides::get(&state.db, &id)
            .await
            .map_err(ApiError::from)?
            .ok_or(ApiError::NotFound("override"))?;
        Ok(Json(OverrideStarted {
            override_: view(o),
            jobs: done.jobs.into_iter().map(job_view).collect(),
            waiting_clusters: done.waiting,
        }))
    }
}

/// The override timers, every `interval` on every replica: expiries and clusters whose
/// force job is still to be queued ([`spot_jobs::force::sweep`]).
pub async fn run_sweep(state: AppState, interval: Duration) {
    let mut tick = tokio::time::interval(interval);
    loop {
        tick.tick().await;
        match spot_jobs::force::sweep(&state.db, &state.jobs, &state.actors, state.cfg.safe_mode)
            .await
        {
            Ok((0, 0)) => {}
            Ok((ended, queued)) => {
                tracing::info!(component = "MOD-OVR-01", ended, queued, "override timers")
            }
            Err(e) => tracing::warn!(component = "MOD-OVR-01", error = %e, "override sweep failed"),
        }
    }
}
