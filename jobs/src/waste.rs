//! Waste clean-up batches: delete orphaned volumes (snapshot first), delete unused
//! snapshots, terminate unregistered instances. The items were chosen from the waste lists
//! when the batch was queued ([`spot_models::batches`]); each one is re-verified against
//! the cloud when its turn comes, because the account may have changed since:
//!
//! - a volume must still be unattached; it is snapshotted, the snapshot must reach
//!   `completed` (polled through the Cloud port), the volume is checked once more and only
//!   then deleted; the snapshot id is recorded with the saving (volume cost minus the
//!   snapshot's storage cost);
//! - a snapshot must still be unused by the inventory's rule: it backs no image and its
//!   source volume does not exist;
//! - an instance must still belong to no cluster (no cluster tag), to no Auto Scaling
//!   group (which would replace it), carry no [`TAG_PROTECT`] tag and not have been
//!   authorized (kept) by an admin meanwhile.
//!
//! A check that fails makes the item `skipped` with the reason; nothing is changed. Each
//! item passes a checkpoint before it acts (a cancel or a shutdown leaves the items not yet
//! started `skipped`), is persisted and published (`job.item`) as it starts and ends, and
//! is audited as `system` with the job id. An item already final (done, failed, skipped)
//! is never acted on again, and every cloud call of an item is idempotent: the snapshot
//! carries the item's idempotency key as its client token (a redelivered item gets the
//! snapshot the first delivery took), and the phase about to run (`delete`, `terminate`)
//! is stored before the call, so an item resumed after its delete went through is `done`,
//! not "no longer exists". A worker that dies mid-batch leaves the job to be resumed
//! ([`crate::RESUMABLE`]) from the first item not final.
//!
//! Failures are classified ([`crate::retry`]): transient ones (throttling, provider
//! outages, a dropped database connection) are retried with backoff; an item that cannot
//! succeed ends `skipped` or `failed`; a permission error aborts the batch.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};
use spot_actors::discovery::SNAPSHOT_GB_MONTH;
use spot_cloud::{Cloud, CloudError, InstanceState, Mutation, SnapshotState, Tags};
use spot_models::batches::{self, ItemRow};
use spot_models::{accounts, inventory, jobs};

use crate::retry::{self, Class};
use crate::{audit_job, progress, publish, Control, Done, Failure, JobContext, Stop};

pub const CLEANUP_VOLUMES: &str = "cleanup_volumes";
pub const CLEANUP_SNAPSHOTS: &str = "cleanup_snapshots";
pub const TERMINATE_UNREGISTERED: &str = "terminate_unregistered";

/// An instance carrying this tag (any value but `false`, `0` or `no`) is never terminated
/// by a batch, whatever the waste list says.
pub const TAG_PROTECT: &str = "spot-optimizer.io/protect";

/// How long a volume's safety snapshot may take to complete before the item fails and the
/// volume is kept. EBS takes minutes for small volumes and can take hours for large, new
/// ones; a batch holds its worker meanwhile, so a slow snapshot is given up on (it stays,
/// and a later batch can take the volume again).
pub const SNAPSHOT_WAIT: Duration = Duration::from_secs(30 * 60);
const POLL_FIRST: Duration = Duration::from_millis(500);
const POLL_MAX: Duration = Duration::from_secs(15);

/// The three waste batch kinds.
pub fn is_waste_kind(kind: &str) -> bool {
    matches!(
        kind,
        CLEANUP_VOLUMES | CLEANUP_SNAPSHOTS | TERMINATE_UNREGISTERED
    )
}

/// Whether an instance's tags protect it from termination.
pub fn is_protected(tags: &Tags) -> bool {
    tags.get(TAG_PROTECT)
        .is_some_and(|v| !matches!(v.trim().to_ascii_lowercase().as_str(), "false" | "0" | "no"))
}

/// How one item ended.
enum Outcome {
    /// It did what it was for (in a dry run: every call validated). `saving` is USD/month.
    Done { saving: f64, result: Value },
    /// A re-verification found it should not be acted on; nothing was changed.
    Skipped { reason: String, result: Value },
    Failed {
        error: String,
        result: Value,
        class: Class,
    },
    /// The job was stopped while this item waited (e.g. for its snapshot); what it did so
    /// far is in `result`, the rest was not done.
    Stopped {
        stop: Stop,
        reason: String,
        result: Value,
    },
}

fn skipped(reason: impl Into<String>, result: &Value) -> Outcome {
    Outcome::Skipped {
        reason: reason.into(),
        result: result.clone(),
    }
}

fn failed(error: impl Into<String>, result: &Value) -> Outcome {
    Outcome::Failed {
        error: error.into(),
        result: result.clone(),
        class: Class::Item,
    }
}

/// A cloud call that failed for good: a transient error that outlasted its retries, an
/// item-level error, or one that aborts the batch (permissions).
fn cloud_failed(what: &str, e: &CloudError, result: &Value) -> Outcome {
    let class = retry::of_cloud(e);
    let mut error = format!("{what}: {}", spot_actors::system::human(e));
    if class == Class::Transient {
        error.push_str(&format!(
            " (still failing after {} attempts)",
            retry::ATTEMPTS
        ));
    }
    Outcome::Failed {
        error,
        result: result.clone(),
        class,
    }
}

fn stop_word(stop: Stop) -> &'static str {
    match stop {
        Stop::Cancelled => "cancelled",
        Stop::Shutdown => "server shutting down",
        Stop::Lost => "job closed while its worker was unresponsive",
    }
}

async fn connect(ctx: &JobContext, account_id: &str) -> Result<Arc<dyn Cloud>, String> {
    let account = accounts::by_id(&ctx.db, account_id)
        .await
        .map_err(|e| e.to_string())?
        .ok_or("the item's account no longer exists")?;
    let ciphertext = accounts::credentials(&ctx.db, &account.id)
        .await
        .map_err(|e| e.to_string())?;
    let target = spot_actors::system::target_of(&ctx.keyring, &account, ciphertext)?;
    ctx.connector
        .connect(&target)
        .await
        .map_err(|e| spot_actors::system::human(&e))
}

fn item_event(job: &jobs::JobRow, item: &ItemRow, total: usize) -> Value {
    json!({
        "job_id": job.id,
        "kind": job.kind,
        "item_kind": item.kind,
        "key": item.item_key,
        "resource_id": item.resource_row_id,
        "position": item.position,
        "total": total,
        "status": item.status,
        "monthly_saving": item.monthly_saving,
        "result": item.result_json(),
        "error": item.error,
    })
}

/// Stores an item's progress before its next cloud call. False when it could not be
/// stored: the call must not be made (a resumed item would not know it was).
async fn persist(
    ctx: &JobContext,
    job: &jobs::JobRow,
    item: &ItemRow,
    result: &Value,
    retries: &mut u32,
) -> bool {
    let text = result.to_string();
    match retry::db(retries, || {
        batches::set_result(&ctx.db, &job.id, &item.item_key, &text)
    })
    .await
    {
        Ok(()) => true,
        Err(e) => {
            tracing::warn!(component = crate::COMPONENT, job_id = %job.id, item = %item.item_key, error = %e, "item state not saved");
            false
        }
    }
}

pub async fn run(ctx: &JobContext, job: &jobs::JobRow, control: &Control) -> Result<Done, Failure> {
    let org = job
        .organization_id
        .clone()
        .ok_or_else(|| Failure::new("waste batch without organization", json!({})))?;
    // Safe mode as recorded when the job was queued, or as this replica runs now.
    let dry = job.safe_mode != 0 || ctx.safe_mode || job.dry_run != 0;
    let mode = if dry { "dry_run" } else { "execute" };
    let mut db_retries = 0u32;
    let items = retry::db(&mut db_retries, || batches::items(&ctx.db, &job.id))
        .await
        .map_err(|e| Failure::new(format!("batch items not readable: {e}"), json!({})))?;
    let total = items.len();
    let mut clouds: HashMap<String, Result<Arc<dyn Cloud>, String>> = HashMap::new();
    let mut touched: BTreeSet<String> = BTreeSet::new();
    let mut stopped: Option<Stop> = None;
    // A permission error: the batch stops and says why.
    let mut aborted: Option<String> = None;
    for (n, item) in items.iter().enumerate() {
        // Done, failed or skipped on an earlier delivery: never acted on again.
        if item.is_final() {
            continue;
        }
        // The item boundary: a cancel, a shutdown or a reaped job stops here, before this
        // item touches the cloud.
        if let Some(stop) = control.checkpoint().await {
            stopped = Some(stop);
            break;
        }
        match retry::db(&mut db_retries, || {
            batches::start(&ctx.db, &job.id, &item.item_key)
        })
        .await
        {
            Ok(true) => {}
            Ok(false) => continue,
            Err(e) => {
                return Err(Failure::new(
                    format!("item {} not started: {e}", item.item_key),
                    json!({"mode": mode, "error_class": retry::of_db(&e).as_str()}),
                ))
            }
        }
        let mut running = item.clone();
        running.status = batches::RUNNING.into();
        publish(ctx, job, "job.item", item_event(job, &running, total));
        let cloud = match clouds.get(&item.account_id) {
            Some(c) => c.clone(),
            None => {
                let c = connect(ctx, &item.account_id).await;
                clouds.insert(item.account_id.clone(), c.clone());
                c
            }
        };
        let mut retries = 0u32;
        let outcome = match cloud {
            Err(e) => failed(
                format!("cannot reach the account: {e}"),
                &item.result_json(),
            ),
            Ok(cloud) => {
                let c = cloud.as_ref();
                let r = &mut retries;
                match item.kind.as_str() {
                    batches::VOLUME => clean_volume(ctx, c, job, item, dry, control, r).await,
                    batches::SNAPSHOT => clean_snapshot(ctx, c, job, item, dry, r).await,
                    batches::INSTANCE => terminate_instance(ctx, c, job, &org, item, dry, r).await,
                    other => failed(format!("unknown item kind `{other}`"), &json!({})),
                }
            }
        };
        let acted = matches!(outcome, Outcome::Done { .. }) && !dry;
        if acted {
            touched.insert(item.account_id.clone());
        }
        if let Outcome::Failed {
            error,
            class: Class::Job,
            ..
        } = &outcome
        {
            aborted = Some(error.clone());
        }
        let ended = record(ctx, job, item, outcome, dry, total, retries).await;
        db_retries += retries;
        if let Some(stop) = ended {
            stopped = Some(stop);
            break;
        }
        if aborted.is_some() {
            break;
        }
        progress(
            ctx,
            job,
            5 + (90 * (n + 1) / total.max(1)) as i64,
            &format!("{} of {total} items handled", n + 1),
        )
        .await;
    }
    let reason = match (stopped, &aborted) {
        // Lost: the items not reached belong to the delivery that took the job over.
        (Some(Stop::Lost), _) => None,
        (Some(stop), _) => Some(format!(
            "not started: the job stopped ({})",
            stop_word(stop)
        )),
        (None, Some(why)) => Some(format!("not started: the batch was aborted ({why})")),
        (None, None) => None,
    };
    if let Some(reason) = reason {
        match batches::skip_queued(&ctx.db, &job.id, &reason).await {
            Ok(keys) => {
                for it in items.iter().filter(|i| keys.contains(&i.item_key)) {
                    let mut s = it.clone();
                    s.status = batches::SKIPPED.into();
                    s.error = Some(reason.clone());
                    publish(ctx, job, "job.item", item_event(job, &s, total));
                }
            }
            Err(e) => {
                tracing::warn!(component = crate::COMPONENT, job_id = %job.id, error = %e, "remaining items not marked skipped")
            }
        }
    }
    // Discovery confirms what changed (and refreshes the waste lists' costs).
    for account in &touched {
        ctx.actors.resync(account);
    }
    let items = retry::db(&mut db_retries, || batches::items(&ctx.db, &job.id))
        .await
        .map_err(|e| Failure::new(format!("batch items not readable: {e}"), json!({})))?;
    let (done, failed_n, skipped_n, saving) = batches::summary(&items);
    let would_save: f64 = items
        .iter()
        .filter(|i| i.status == batches::DONE)
        .filter_map(|i| i.result_json().get("would_save").and_then(Value::as_f64))
        .sum();
    // Retries of every delivery so far (a resumed job adds to its items' counts).
    let retries: u64 = items
        .iter()
        .filter_map(|i| i.result_json().get("retries").and_then(Value::as_u64))
        .sum::<u64>()
        .max(u64::from(db_retries));
    let result = json!({
        "mode": mode,
        "total": total,
        "done": done,
        "failed": failed_n,
        "skipped": skipped_n,
        "monthly_saving": saving,
        "would_save": would_save,
        "retries": retries,
        "aborted": aborted,
        "items": items.iter().map(|i| {
            let r = i.result_json();
            json!({
                "key": i.item_key,
                "status": i.status,
                "monthly_saving": i.monthly_saving,
                "error": i.error,
                "error_class": r.get("error_class"),
                "retries": r.get("retries"),
                "snapshot_id": r.get("snapshot_id"),
            })
        }).collect::<Vec<_>>(),
    });
    let counts = format!("{done} done, {failed_n} failed, {skipped_n} skipped of {total}");
    let summary = if dry {
        format!("dry run: {counts}; ${would_save:.2}/month would be saved")
    } else {
        format!("{counts}; ${saving:.2}/month saved")
    };
    match stopped {
        Some(Stop::Cancelled) => Err(Failure::cancelled(format!("cancelled: {summary}"), result)),
        Some(stop) => Err(Failure::new(
            format!("stopped ({}): {summary}", stop_word(stop)),
            result,
        )),
        None if aborted.is_some() => Err(Failure::new(
            format!(
                "aborted: {}; {summary}",
                aborted.as_deref().unwrap_or_default()
            ),
            result,
        )),
        None if failed_n > 0 => Err(Failure::new(summary, result)),
        None => Ok(Done {
            message: summary,
            result,
        }),
    }
}

/// Persists, publishes and audits how an item ended. Returns the stop when the item was
/// interrupted by one.
async fn record(
    ctx: &JobContext,
    job: &jobs::JobRow,
    item: &ItemRow,
    outcome: Outcome,
    dry: bool,
    total: usize,
    mut retries: u32,
) -> Option<Stop> {
    if let Outcome::Stopped {
        stop: Stop::Lost, ..
    } = &outcome
    {
        // The job was handed to a new delivery while this worker was unresponsive: the
        // item is that delivery's to finish, and writing it here would end it half done.
        tracing::warn!(component = crate::COMPONENT, job_id = %job.id, item = %item.item_key, "job lost to a new delivery: item left to it");
        return Some(Stop::Lost);
    }
    let (status, saving, mut result, error, stop, class) = match outcome {
        Outcome::Done { saving, result } => (batches::DONE, saving, result, None, None, None),
        Outcome::Skipped { reason, result } => {
            (batches::SKIPPED, 0.0, result, Some(reason), None, None)
        }
        Outcome::Failed {
            error,
            result,
            class,
        } => (batches::FAILED, 0.0, result, Some(error), None, Some(class)),
        Outcome::Stopped {
            stop,
            reason,
            result,
        } => (
            batches::SKIPPED,
            0.0,
            result,
            Some(reason),
            Some(stop),
            None,
        ),
    };
    let saving = if dry { 0.0 } else { saving };
    if let Some(o) = result.as_object_mut() {
        o.insert(
            "mode".into(),
            json!(if dry { "dry_run" } else { "execute" }),
        );
        o.insert("idempotency_key".into(), json!(item.idempotency_key));
        // Retries add up over deliveries of the item.
        let before = o.get("retries").and_then(Value::as_u64).unwrap_or(0);
        let all = before + u64::from(retries);
        if all > 0 {
            o.insert("retries".into(), json!(all));
        }
        if let Some(c) = class {
            o.insert("error_class".into(), json!(c.as_str()));
        }
    }
    let text = result.to_string();
    if let Err(e) = retry::db(&mut retries, || {
        batches::finish(
            &ctx.db,
            &job.id,
            &item.item_key,
            status,
            saving,
            &text,
            error.as_deref(),
        )
    })
    .await
    {
        tracing::warn!(component = crate::COMPONENT, job_id = %job.id, item = %item.item_key, error = %e, "item outcome not saved");
    }
    if status == batches::DONE && !dry {
        let org = job.organization_id.as_deref().unwrap_or_default();
        if let Err(e) = batches::mark_gone(&ctx.db, &item.kind, org, &item.resource_row_id).await {
            tracing::warn!(component = crate::COMPONENT, job_id = %job.id, item = %item.item_key, error = %e, "inventory row not retired");
        }
    }
    let mut ended = item.clone();
    ended.status = status.into();
    ended.monthly_saving = saving;
    ended.result = Some(result.to_string());
    ended.error = error.clone();
    publish(ctx, job, "job.item", item_event(job, &ended, total));
    let action = match item.kind.as_str() {
        batches::VOLUME => "waste.volume.delete",
        batches::SNAPSHOT => "waste.snapshot.delete",
        _ => "waste.instance.terminate",
    };
    // `success` for an item that ended as intended (done, or skipped by a re-verification
    // or a stop); `detail.status` says which.
    let outcome = match status {
        batches::FAILED => "failed",
        _ => "success",
    };
    audit_job(
        ctx,
        job,
        action,
        outcome,
        json!({
            "item": item.item_key,
            "account_id": item.account_id,
            "status": status,
            "dry_run": dry,
            "monthly_saving": saving,
            "idempotency_key": item.idempotency_key,
            "result": result,
            "error": error,
            "error_class": class.map(Class::as_str),
        }),
    )
    .await;
    stop
}

/// Why a volume must not be deleted now, if it must not.
fn volume_in_use(v: &spot_cloud::Volume) -> Option<String> {
    if let Some(i) = &v.attached_instance_id {
        return Some(format!("{} is attached to {i} now; it was kept", v.id));
    }
    if v.state != spot_cloud::VolumeState::Available {
        return Some(format!(
            "{} is {:?}, not available; it was kept",
            v.id, v.state
        ));
    }
    None
}

/// The saving stored with an item's progress (a resumed item reports it).
fn stored_saving(r: &Value, field: &str) -> f64 {
    r.get(field).and_then(Value::as_f64).unwrap_or(0.0)
}

async fn clean_volume(
    ctx: &JobContext,
    cloud: &dyn Cloud,
    job: &jobs::JobRow,
    item: &ItemRow,
    dry: bool,
    control: &Control,
    retries: &mut u32,
) -> Outcome {
    let vol = item.item_key.as_str();
    // The item's client token: a repeated snapshot request returns the first snapshot.
    let token = item.idempotency_key.as_str();
    // What an earlier delivery of this item already did (empty the first time).
    let mut r = item.result_json();
    let volumes = match retry::cloud(retries, || cloud.describe_volumes()).await {
        Ok(v) => v,
        Err(e) => return cloud_failed("reading volumes", &e, &r),
    };
    let Some(v) = volumes.iter().find(|v| v.id == vol) else {
        // Resumed after the delete went through: the item is done.
        if r.get("phase").and_then(Value::as_str) == Some("delete") {
            let saving = stored_saving(&r, "net_monthly_saving");
            return Outcome::Done { saving, result: r };
        }
        return skipped(format!("{vol} no longer exists"), &r);
    };
    if let Some(reason) = volume_in_use(v) {
        return skipped(reason, &r);
    }
    let snapshot_cost = f64::from(v.size_gib) * SNAPSHOT_GB_MONTH;
    let saving = (item.expected_monthly_saving - snapshot_cost).max(0.0);
    r["size_gib"] = json!(v.size_gib);
    r["volume_monthly_cost"] = json!(item.expected_monthly_saving);
    r["snapshot_monthly_cost"] = json!(snapshot_cost);
    r["net_monthly_saving"] = json!(saving);
    if dry {
        let mut would = Vec::new();
        match retry::cloud(retries, || cloud.create_snapshot(vol, token, true)).await {
            Ok(Mutation::DryRun(ok)) => would.push(ok.message),
            Ok(Mutation::Applied(_)) => {
                return failed("the cloud applied a dry-run snapshot request", &r)
            }
            Err(e) => return cloud_failed("CreateSnapshot (dry run)", &e, &r),
        }
        match retry::cloud(retries, || cloud.delete_volume(vol, true)).await {
            Ok(Mutation::DryRun(ok)) => would.push(ok.message),
            Ok(Mutation::Applied(_)) => {
                return failed("the cloud applied a dry-run volume deletion", &r)
            }
            Err(CloudError::Invalid { msg, .. }) => return skipped(msg, &r),
            Err(e) => return cloud_failed("DeleteVolume (dry run)", &e, &r),
        }
        r["would"] = json!(would);
        r["would_save"] = json!(saving);
        return Outcome::Done { saving, result: r };
    }

    // 1. The safety snapshot: the one an earlier delivery took (known, or found again by
    //    the client token), or a new one.
    let snapshot_id = match r.get("snapshot_id").and_then(Value::as_str) {
        Some(id) => id.to_string(),
        None => match retry::cloud(retries, || cloud.create_snapshot(vol, token, false)).await {
            Ok(Mutation::Applied(s)) => s.id,
            Ok(Mutation::DryRun(_)) => {
                return failed(
                    "the cloud answered a real snapshot request as a dry run",
                    &r,
                )
            }
            Err(e) => return cloud_failed("CreateSnapshot", &e, &r),
        },
    };
    r["snapshot_id"] = json!(snapshot_id);
    r["client_token"] = json!(token);
    r["phase"] = json!("snapshot");
    if !persist(ctx, job, item, &r, retries).await {
        return Outcome::Failed {
            error: format!(
                "the state of {vol} could not be saved; it was kept (snapshot {snapshot_id} stays)"
            ),
            result: r,
            class: Class::Transient,
        };
    }

    // 2. Wait until it is complete: deleting a volume whose snapshot then fails would lose
    //    the data.
    let deadline = tokio::time::Instant::now() + SNAPSHOT_WAIT;
    let mut pause = POLL_FIRST;
    loop {
        match retry::cloud(retries, || cloud.describe_snapshots()).await {
            Ok(snaps) => match snaps.iter().find(|s| s.id == snapshot_id).map(|s| s.state) {
                Some(SnapshotState::Completed) => break,
                Some(SnapshotState::Error) => {
                    return failed(format!("snapshot {snapshot_id} failed; {vol} was kept"), &r)
                }
                Some(SnapshotState::Pending) => {}
                None => {
                    return failed(
                        format!(
                            "snapshot {snapshot_id} disappeared before completing; {vol} was kept"
                        ),
                        &r,
                    )
                }
            },
            Err(e) => return cloud_failed("reading snapshots", &e, &r),
        }
        if tokio::time::Instant::now() >= deadline {
            return failed(
                format!(
                    "snapshot {snapshot_id} did not complete within {} minutes; {vol} was kept (the snapshot stays)",
                    SNAPSHOT_WAIT.as_secs() / 60
                ),
                &r,
            );
        }
        if let Some(stop) = control.checkpoint().await {
            return Outcome::Stopped {
                stop,
                reason: format!(
                    "stopped ({}) while snapshot {snapshot_id} was completing; {vol} was kept (the snapshot stays)",
                    stop_word(stop)
                ),
                result: r,
            };
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(POLL_MAX);
    }
    r["snapshot_completed"] = json!(true);

    // 3. Still unattached? The wait may have been long.
    match retry::cloud(retries, || cloud.describe_volumes()).await {
        Ok(volumes) => match volumes.iter().find(|v| v.id == vol) {
            None => {
                return skipped(
                    format!(
                    "{vol} disappeared while its snapshot completed (snapshot {snapshot_id} stays)"
                ),
                    &r,
                )
            }
            Some(v) => {
                if let Some(reason) = volume_in_use(v) {
                    return skipped(format!("{reason} (snapshot {snapshot_id} stays)"), &r);
                }
            }
        },
        Err(e) => return cloud_failed("reading volumes", &e, &r),
    }

    // 4. Delete (the phase is stored first: a resumed item finding the volume gone is done).
    r["phase"] = json!("delete");
    if !persist(ctx, job, item, &r, retries).await {
        r["phase"] = json!("kept");
        return Outcome::Failed {
            error: format!(
                "the state of {vol} could not be saved; it was kept (snapshot {snapshot_id} stays)"
            ),
            result: r,
            class: Class::Transient,
        };
    }
    match retry::cloud(retries, || cloud.delete_volume(vol, false)).await {
        Ok(_) => Outcome::Done { saving, result: r },
        Err(CloudError::Invalid { msg, .. }) => {
            r["phase"] = json!("kept");
            skipped(msg, &r)
        }
        // Gone: a retry after a delete whose answer was lost, or someone else's delete.
        Err(CloudError::NotFound { .. }) => Outcome::Done { saving, result: r },
        Err(e) => {
            r["phase"] = json!("kept");
            cloud_failed("DeleteVolume", &e, &r)
        }
    }
}

async fn clean_snapshot(
    ctx: &JobContext,
    cloud: &dyn Cloud,
    job: &jobs::JobRow,
    item: &ItemRow,
    dry: bool,
    retries: &mut u32,
) -> Outcome {
    let id = item.item_key.as_str();
    let mut r = item.result_json();
    let snaps = match retry::cloud(retries, || cloud.describe_snapshots()).await {
        Ok(s) => s,
        Err(e) => return cloud_failed("reading snapshots", &e, &r),
    };
    let Some(s) = snaps.iter().find(|s| s.id == id) else {
        if r.get("phase").and_then(Value::as_str) == Some("delete") {
            let saving = stored_saving(&r, "monthly_saving");
            return Outcome::Done { saving, result: r };
        }
        return skipped(format!("{id} no longer exists"), &r);
    };
    // The inventory's rule for "unused", checked against the cloud now: it backs no image
    // and its source volume does not exist.
    if let Some(ami) = &s.source_ami {
        return skipped(format!("{id} backs image {ami}; it was kept"), &r);
    }
    if let Some(source) = &s.volume_id {
        match retry::cloud(retries, || cloud.describe_volumes()).await {
            Ok(volumes) if volumes.iter().any(|v| &v.id == source) => {
                return skipped(
                    format!("{id}'s source volume {source} exists; it was kept"),
                    &r,
                )
            }
            Ok(_) => {}
            Err(e) => return cloud_failed("reading volumes", &e, &r),
        }
    }
    let saving = f64::from(s.size_gib) * SNAPSHOT_GB_MONTH;
    r["size_gib"] = json!(s.size_gib);
    if !dry {
        r["phase"] = json!("delete");
        r["monthly_saving"] = json!(saving);
        if !persist(ctx, job, item, &r, retries).await {
            return Outcome::Failed {
                error: format!("the state of {id} could not be saved; it was kept"),
                result: r,
                class: Class::Transient,
            };
        }
    }
    match retry::cloud(retries, || cloud.delete_snapshot(id, dry)).await {
        Ok(Mutation::DryRun(ok)) => {
            r["would"] = json!([ok.message]);
            r["would_save"] = json!(saving);
            Outcome::Done { saving, result: r }
        }
        Ok(Mutation::Applied(())) if !dry => Outcome::Done { saving, result: r },
        Ok(Mutation::Applied(())) => failed("the cloud applied a dry-run snapshot deletion", &r),
        Err(CloudError::Invalid { msg, .. }) => {
            r["phase"] = json!("kept");
            skipped(msg, &r)
        }
        // Gone: a retry after a delete whose answer was lost, or someone else's delete.
        Err(CloudError::NotFound { .. }) if !dry => Outcome::Done { saving, result: r },
        Err(CloudError::NotFound { .. }) => {
            skipped(format!("{id} was deleted by someone else meanwhile"), &r)
        }
        Err(e) => {
            r["phase"] = json!("kept");
            cloud_failed("DeleteSnapshot", &e, &r)
        }
    }
}

async fn terminate_instance(
    ctx: &JobContext,
    cloud: &dyn Cloud,
    job: &jobs::JobRow,
    org: &str,
    item: &ItemRow,
    dry: bool,
    retries: &mut u32,
) -> Outcome {
    let id = item.item_key.as_str();
    let mut r = item.result_json();
    let instances = match retry::cloud(retries, || cloud.describe_instances()).await {
        Ok(i) => i,
        Err(e) => return cloud_failed("reading instances", &e, &r),
    };
    let resumed = r.get("phase").and_then(Value::as_str) == Some("terminate");
    let Some(i) = instances.iter().find(|i| i.id == id) else {
        if resumed {
            let saving = stored_saving(&r, "monthly_saving");
            return Outcome::Done { saving, result: r };
        }
        return skipped(format!("{id} no longer exists"), &r);
    };
    if matches!(
        i.state,
        InstanceState::Terminated | InstanceState::ShuttingDown
    ) {
        // Resumed after the terminate went through: the item is done.
        if resumed {
            let saving = stored_saving(&r, "monthly_saving");
            return Outcome::Done { saving, result: r };
        }
        return skipped(format!("{id} is already terminated"), &r);
    }
    // Never a node of a managed cluster, never a protected or authorized instance.
    if let Some(cluster) = &i.cluster {
        return skipped(
            format!("{id} is a node of cluster {cluster}; cluster nodes are never terminated here"),
            &r,
        );
    }
    if let Some(group) = &i.asg_name {
        return skipped(
            format!(
                "{id} belongs to Auto Scaling group {group}, which would replace it; it was kept"
            ),
            &r,
        );
    }
    if is_protected(&i.tags) {
        return skipped(
            format!("{id} carries the {TAG_PROTECT} tag; it was kept"),
            &r,
        );
    }
    let mut db_retries = 0;
    match retry::db(&mut db_retries, || {
        inventory::authorized_at(&ctx.db, org, &item.resource_row_id)
    })
    .await
    {
        Ok(Some(_)) => return skipped(format!("{id} was authorized (kept) meanwhile"), &r),
        Ok(None) => {}
        Err(e) => {
            return Outcome::Failed {
                error: format!("authorization not readable: {e}"),
                result: r,
                class: retry::of_db(&e),
            }
        }
    }
    *retries += db_retries;
    // A stopped instance costs no compute: terminating it saves only what the list said it
    // costs while running, which is nothing now.
    let saving = if i.state.is_billed() {
        item.expected_monthly_saving
    } else {
        0.0
    };
    r["instance_type"] = json!(i.instance_type);
    r["state_before"] = json!(i.state);
    if !dry {
        r["phase"] = json!("terminate");
        r["monthly_saving"] = json!(saving);
        if !persist(ctx, job, item, &r, retries).await {
            return Outcome::Failed {
                error: format!("the state of {id} could not be saved; it was kept"),
                result: r,
                class: Class::Transient,
            };
        }
    }
    let ids = [id.to_string()];
    match retry::cloud(retries, || cloud.terminate_instances(&ids, dry)).await {
        Ok(Mutation::DryRun(ok)) => {
            r["would"] = json!([ok.message]);
            r["would_save"] = json!(saving);
            Outcome::Done { saving, result: r }
        }
        Ok(Mutation::Applied(changes)) if !dry => {
            r["changes"] = json!(changes);
            Outcome::Done { saving, result: r }
        }
        Ok(Mutation::Applied(_)) => failed("the cloud applied a dry-run termination", &r),
        Err(CloudError::NotFound { .. }) => skipped(format!("{id} no longer exists"), &r),
        Err(e) => {
            r["phase"] = json!("kept");
            cloud_failed("TerminateInstances", &e, &r)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_protect_tag_protects_unless_it_says_no() {
        let tags = |v: &str| -> Tags { [(TAG_PROTECT.to_string(), v.to_string())].into() };
        assert!(is_protected(&tags("true")));
        assert!(is_protected(&tags("")));
        assert!(is_protected(&tags("yes, finance")));
        assert!(!is_protected(&tags("false")));
        assert!(!is_protected(&tags(" No ")));
        assert!(!is_protected(&tags("0")));
        assert!(!is_protected(&Tags::new()));
    }

    #[test]
    fn only_the_three_waste_kinds_are_waste_batches() {
        for k in [CLEANUP_VOLUMES, CLEANUP_SNAPSHOTS, TERMINATE_UNREGISTERED] {
            assert!(is_waste_kind(k));
        }
        assert!(!is_waste_kind("optimize"));
    }
}
