//! Acting on the waste lists: clean-up batches for orphaned volumes (snapshot, then
//! delete) and unused snapshots, terminate or authorize unregistered instances, and the
//! per-item progress of any batch job. Batches run on the job queue
//! ([`spot_jobs::waste`]); each item is re-verified against the cloud when it runs.

use std::collections::{HashMap, HashSet};

use poem::web::Data;
use poem_openapi::param::Path;
use poem_openapi::payload::Json;
use poem_openapi::{Object, OpenApi};
use spot_engine::catalog::HOURS_PER_MONTH;
use spot_models::batches::{self, NewItem};
use spot_models::{inventory, jobs};

use super::jobs::{enqueue, job_view, Accepted, JobView};
use super::{ts, ApiTags};
use crate::auth::BearerAuth;
use crate::body::Body;
use crate::error::ApiError;
use crate::gateway::AuditSlot;
use crate::state::AppState;

pub struct WasteApi;

/// Most items one batch takes.
pub const MAX_BATCH: usize = 1000;

/// Which waste entries to act on.
#[derive(Object, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WasteBatchRequest {
    /// The entries' `id`s as the waste list returns them (1–1000, no repeats).
    pub ids: Vec<String>,
    /// Validate every cloud call (EC2 DryRun) and report what would happen; nothing is
    /// changed. Safe mode forces it.
    #[serde(default)]
    pub dry_run: Option<bool>,
}

/// Unregistered instances to keep.
#[derive(Object, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthorizeRequest {
    /// The entries' `id`s as `GET /api/instances/unregistered` returns them (1–1000).
    pub ids: Vec<String>,
}

#[derive(Object)]
pub struct AuthorizeResult {
    /// How many instances are now authorized (kept).
    pub authorized: u64,
}

/// One item of a batch job.
#[derive(Object)]
pub struct JobItemView {
    /// The cloud id the item acts on (vol-…, snap-…, i-…).
    pub key: String,
    /// `volume`, `snapshot` or `instance`.
    pub kind: String,
    /// Order of execution, from 0.
    pub position: i64,
    /// The waste list entry's `id`.
    pub resource_id: String,
    pub account_id: String,
    /// `queued`, `running`, `done`, `failed` or `skipped`. An item the job never reached
    /// (it ended first) reads `skipped`; one it was in the middle of reads `failed`.
    pub status: String,
    /// Derived from the job and the item: a redelivered item is recognised by it.
    pub idempotency_key: String,
    /// USD per month the waste list showed when the batch was queued.
    pub expected_monthly_saving: f64,
    /// USD per month saved (a volume's cost minus its safety snapshot's; 0 unless done,
    /// and 0 in a dry run).
    pub monthly_saving: f64,
    /// What the item did: `snapshot_id` and `phase` for volumes, `would` (dry-run answers)
    /// and `would_save`, `mode`, and the facts re-verified.
    pub result: Option<serde_json::Value>,
    /// Why it failed or was skipped.
    pub error: Option<String>,
    pub started_at: Option<chrono::DateTime<chrono::Utc>>,
    pub finished_at: Option<chrono::DateTime<chrono::Utc>>,
}

/// A batch job with its items.
#[derive(Object)]
pub struct JobItemList {
    pub job: JobView,
    pub items: Vec<JobItemView>,
    pub done: u32,
    pub failed: u32,
    pub skipped: u32,
    /// Items not finished yet (queued or running).
    pub pending: u32,
    /// Σ `monthly_saving` of the done items.
    pub monthly_saving: f64,
}

fn item_view(i: batches::ItemRow, job_finished: bool) -> JobItemView {
    let result = i
        .result
        .as_deref()
        .and_then(|s| serde_json::from_str(s).ok());
    // The job ended (reaped, shut down) before this item finished: say so rather than
    // leave it queued or running for ever.
    let (status, error) = match (job_finished, i.status.as_str()) {
        (true, batches::QUEUED) => (
            batches::SKIPPED.to_string(),
            Some("not started: the job ended first".to_string()),
        ),
        (true, batches::RUNNING) => (
            batches::FAILED.to_string(),
            Some("interrupted: the job ended while this item was running; check the resource in the cloud".to_string()),
        ),
        _ => (i.status, i.error),
    };
    JobItemView {
        key: i.item_key,
        kind: i.kind,
        position: i.position,
        resource_id: i.resource_row_id,
        account_id: i.account_id,
        status,
        idempotency_key: i.idempotency_key,
        expected_monthly_saving: i.expected_monthly_saving,
        monthly_saving: i.monthly_saving,
        result,
        error,
        started_at: i.started_at.map(ts),
        finished_at: i.finished_at.map(ts),
    }
}

/// The ids checked: present, at most [`MAX_BATCH`], no repeats.
fn check_ids(ids: &[String]) -> Result<(), ApiError> {
    if ids.is_empty() {
        return Err(ApiError::field("ids", "at least one id is required"));
    }
    if ids.len() > MAX_BATCH {
        return Err(ApiError::field(
            "ids",
            format!("at most {MAX_BATCH} ids per batch, got {}", ids.len()),
        ));
    }
    let mut seen = HashSet::new();
    for (k, id) in ids.iter().enumerate() {
        if !seen.insert(id.as_str()) {
            return Err(ApiError::field(
                &format!("ids[{k}]"),
                format!("{id} is listed twice"),
            ));
        }
    }
    Ok(())
}

/// The batch items for `ids`, each of which must be on the organization's waste list of
/// `kind` now (`listed`: row id → item). An id of another organization (or of nothing) is
/// 404; a resource of this organization that is no longer waste is 422 naming the entry.
async fn pick(
    state: &AppState,
    org: &str,
    kind: &'static str,
    noun: &'static str,
    ids: &[String],
    mut listed: HashMap<String, NewItem>,
) -> Result<Vec<NewItem>, ApiError> {
    check_ids(ids)?;
    let mut out = Vec::with_capacity(ids.len());
    for (k, id) in ids.iter().enumerate() {
        match listed.remove(id) {
            Some(item) => out.push(item),
            None => {
                if batches::row_exists(&state.db, kind, org, id)
                    .await
                    .map_err(ApiError::from)?
                {
                    return Err(ApiError::field(
                        &format!("ids[{k}]"),
                        format!("{noun} {id} is no longer on the waste list (it changed since it was listed)"),
                    ));
                }
                return Err(ApiError::NotFound(noun));
            }
        }
    }
    Ok(out)
}

async fn queue_batch(
    state: &AppState,
    auth: &BearerAuth,
    slot: &AuditSlot,
    kind: &'static str,
    items: Vec<NewItem>,
    dry_run: bool,
) -> Result<Accepted, ApiError> {
    let keys: Vec<&str> = items.iter().map(|i| i.item_key.as_str()).collect();
    let job = batches::create(
        &state.db,
        jobs::NewJob {
            organization_id: Some(&auth.0.org_id),
            kind,
            target_id: None,
            dry_run,
            requested_by: Some(&auth.0.user_id),
            safe_mode: state.cfg.safe_mode,
        },
        &items,
    )
    .await
    .map_err(ApiError::from)?;
    slot.diff(
        None,
        Some(
            serde_json::json!({"job_id": job.id, "kind": kind, "dry_run": dry_run, "items": keys}),
        ),
    );
    Ok(Accepted::Accepted(Json(enqueue(state, job).await?)))
}

#[OpenApi(tag = "ApiTags::Inventory")]
impl WasteApi {
    /// Cleans up orphaned volumes (admins and owners): a batch job that, per volume,
    /// checks it is still unattached, snapshots it, waits for the snapshot to complete,
    /// checks again and deletes it, recording the snapshot id and the monthly saving
    /// (volume cost minus snapshot storage). A volume attached meanwhile is skipped.
    /// Returns 202 with the job; follow `GET /api/jobs/{id}/items` or `job.item` events.
    /// An id of another organization is 404; one no longer orphaned is 422 naming it.
    #[oai(
        path = "/volumes/orphaned/cleanup",
        method = "post",
        operation_id = "cleanupOrphanedVolumes"
    )]
    async fn cleanup_volumes(
        &self,
        state: Data<&AppState>,
        auth: BearerAuth,
        slot: Data<&AuditSlot>,
        body: Body<WasteBatchRequest>,
    ) -> poem::Result<Accepted> {
        slot.record("waste.volumes.cleanup", "job", None);
        auth.0.require_admin()?;
        let org = auth.0.org_id.clone();
        let listed = inventory::orphaned_volumes(&state.db, &org)
            .await
            .map_err(ApiError::from)?
            .into_iter()
            .map(|v| {
                let item = NewItem {
                    item_key: v.volume_id,
                    kind: batches::VOLUME,
                    resource_row_id: v.id.clone(),
                    account_id: v.account_id,
                    expected_monthly_saving: v.monthly_cost,
                };
                (v.id, item)
            })
            .collect();
        let items = pick(&state, &org, batches::VOLUME, "volume", &body.ids, listed).await?;
        let dry = body.dry_run.unwrap_or(false);
        Ok(queue_batch(
            &state,
            &auth,
            &slot,
            spot_jobs::waste::CLEANUP_VOLUMES,
            items,
            dry,
        )
        .await?)
    }

    /// Deletes unused snapshots (admins and owners): a batch job that re-verifies each
    /// snapshot is still unused (backs no image, its source volume does not exist) and
    /// deletes it, recording the monthly saving. Returns 202 with the job. An id of
    /// another organization is 404; one no longer unused is 422 naming it.
    #[oai(
        path = "/snapshots/unused/cleanup",
        method = "post",
        operation_id = "cleanupUnusedSnapshots"
    )]
    async fn cleanup_snapshots(
        &self,
        state: Data<&AppState>,
        auth: BearerAuth,
        slot: Data<&AuditSlot>,
        body: Body<WasteBatchRequest>,
    ) -> poem::Result<Accepted> {
        slot.record("waste.snapshots.cleanup", "job", None);
        auth.0.require_admin()?;
        let org = auth.0.org_id.clone();
        let listed = inventory::unused_snapshots(&state.db, &org)
            .await
            .map_err(ApiError::from)?
            .into_iter()
            .map(|s| {
                let item = NewItem {
                    item_key: s.snapshot_id,
                    kind: batches::SNAPSHOT,
                    resource_row_id: s.id.clone(),
                    account_id: s.account_id,
                    expected_monthly_saving: s.monthly_cost,
                };
                (s.id, item)
            })
            .collect();
        let items = pick(
            &state,
            &org,
            batches::SNAPSHOT,
            "snapshot",
            &body.ids,
            listed,
        )
        .await?;
        let dry = body.dry_run.unwrap_or(false);
        Ok(queue_batch(
            &state,
            &auth,
            &slot,
            spot_jobs::waste::CLEANUP_SNAPSHOTS,
            items,
            dry,
        )
        .await?)
    }

    /// Terminates unregistered instances (admins and owners): a batch job that, per
    /// instance, re-verifies it is in no cluster, in no Auto Scaling group, not authorized
    /// and carries no `spot-optimizer.io/protect` tag, then terminates it and records the
    /// monthly saving. Anything else is skipped with the reason. Returns 202 with the job.
    /// An id of another organization is 404; one no longer unregistered is 422 naming it.
    #[oai(
        path = "/instances/unregistered/terminate",
        method = "post",
        operation_id = "terminateUnregisteredInstances"
    )]
    async fn terminate(
        &self,
        state: Data<&AppState>,
        auth: BearerAuth,
        slot: Data<&AuditSlot>,
        body: Body<WasteBatchRequest>,
    ) -> poem::Result<Accepted> {
        slot.record("waste.instances.terminate", "job", None);
        auth.0.require_admin()?;
        let org = auth.0.org_id.clone();
        let listed = inventory::unregistered(&state.db, &org)
            .await
            .map_err(ApiError::from)?
            .into_iter()
            .map(|i| {
                let item = NewItem {
                    item_key: i.instance_id,
                    kind: batches::INSTANCE,
                    resource_row_id: i.id.clone(),
                    account_id: i.account_id,
                    expected_monthly_saving: i.hourly_price * HOURS_PER_MONTH,
                };
                (i.id, item)
            })
            .collect();
        let items = pick(
            &state,
            &org,
            batches::INSTANCE,
            "instance",
            &body.ids,
            listed,
        )
        .await?;
        let dry = body.dry_run.unwrap_or(false);
        Ok(queue_batch(
            &state,
            &auth,
            &slot,
            spot_jobs::waste::TERMINATE_UNREGISTERED,
            items,
            dry,
        )
        .await?)
    }

    /// Authorizes unregistered instances (admins and owners): they are kept, remembered,
    /// leave the waste list and are skipped by terminate batches. An id of another
    /// organization is 404; one that is no longer unregistered is 422 naming it.
    #[oai(
        path = "/instances/unregistered/authorize",
        method = "post",
        operation_id = "authorizeUnregisteredInstances"
    )]
    async fn authorize(
        &self,
        state: Data<&AppState>,
        auth: BearerAuth,
        slot: Data<&AuditSlot>,
        body: Body<AuthorizeRequest>,
    ) -> poem::Result<Json<AuthorizeResult>> {
        slot.record("waste.instances.authorize", "instance", None);
        auth.0.require_admin()?;
        let org = auth.0.org_id.clone();
        let listed = inventory::unregistered(&state.db, &org)
            .await
            .map_err(ApiError::from)?
            .into_iter()
            .map(|i| {
                let item = NewItem {
                    item_key: i.instance_id,
                    kind: batches::INSTANCE,
                    resource_row_id: i.id.clone(),
                    account_id: i.account_id,
                    expected_monthly_saving: 0.0,
                };
                (i.id, item)
            })
            .collect();
        let items = pick(
            &state,
            &org,
            batches::INSTANCE,
            "instance",
            &body.ids,
            listed,
        )
        .await?;
        let rows: Vec<String> = items.iter().map(|i| i.resource_row_id.clone()).collect();
        let n = inventory::authorize_instances(&state.db, &org, &rows, &auth.0.user_id)
            .await
            .map_err(ApiError::from)?;
        slot.diff(
            None,
            Some(serde_json::json!({"authorized": items.iter().map(|i| &i.item_key).collect::<Vec<_>>()})),
        );
        state.actors.bus.publish(
            Some(&org),
            "inventory.changed",
            serde_json::json!({"reason": "instances authorized", "count": n}),
        );
        Ok(Json(AuthorizeResult { authorized: n }))
    }

    /// A batch job with its items (status, result, error, saving), in execution order.
    /// Any job of the caller's organization; jobs without items list none.
    #[oai(
        path = "/jobs/:id/items",
        method = "get",
        operation_id = "listJobItems"
    )]
    async fn items(
        &self,
        state: Data<&AppState>,
        auth: BearerAuth,
        id: Path<String>,
    ) -> poem::Result<Json<JobItemList>> {
        let job = jobs::get_for_org(&state.db, &auth.0.org_id, &id)
            .await
            .map_err(ApiError::from)?
            .ok_or(ApiError::NotFound("job"))?;
        let rows = batches::items_for_org(&state.db, &auth.0.org_id, &id)
            .await
            .map_err(ApiError::from)?;
        let finished = !matches!(job.status.as_str(), jobs::QUEUED | jobs::RUNNING);
        let items: Vec<JobItemView> = rows.into_iter().map(|i| item_view(i, finished)).collect();
        let count = |s: &str| items.iter().filter(|i| i.status == s).count() as u32;
        let (done, failed, skipped) = (
            count(batches::DONE),
            count(batches::FAILED),
            count(batches::SKIPPED),
        );
        let monthly_saving = items
            .iter()
            .filter(|i| i.status == batches::DONE)
            .map(|i| i.monthly_saving)
            .sum();
        Ok(Json(JobItemList {
            pending: items.len() as u32 - done - failed - skipped,
            job: job_view(job),
            items,
            done,
            failed,
            skipped,
            monthly_saving,
        }))
    }
}
