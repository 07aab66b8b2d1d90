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
//! is never acted on again. `CreateSnapshot` takes no client token, so a snapshot request
//! is reconciled instead: the request time is stored before the call and the snapshot id
//! right after it; an item resumed in between adopts the snapshot of that volume the
//! control plane took since the request rather than taking a second one.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};
use spot_actors::discovery::SNAPSHOT_GB_MONTH;
use spot_cloud::{Cloud, CloudError, InstanceState, Mutation, SnapshotState, Tags};
use spot_models::batches::{self, ItemRow};
use spot_models::{accounts, inventory, jobs};

use crate::{audit_job, progress, publish, Control, Done, Failure, JobContext, Stop};

pub const CLEANUP_VOLUMES: &str = "cleanup_volumes";
pub const CLEANUP_SNAPSHOTS: &str = "cleanup_snapshots";
pub const TERMINATE_UNREGISTERED: &str = "terminate_unregistered";

/// An instance carrying this tag (any value but `false`, `0` or `no`) is never terminated
/// by a batch, whatever the waste list says.
pub const TAG_PROTECT: &str = "spot-optimizer.io/protect";

/// The description the Cloud adapters give the snapshots they take.
const SNAPSHOT_DESCRIPTION: &str = "created by spot-optimizer";

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
    Done {
        saving: f64,
        result: Value,
    },
    /// A re-verification found it should not be acted on; nothing was changed.
    Skipped {
        reason: String,
        result: Value,
    },
    Failed {
        error: String,
        result: Value,
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
    }
}

fn cloud_err(what: &str, e: &CloudError) -> String {
    format!("{what}: {}", spot_actors::system::human(e))
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

async fn persist(ctx: &JobContext, job: &jobs::JobRow, item: &ItemRow, result: &Value) {
    if let Err(e) = batches::set_result(&ctx.db, &job.id, &item.item_key, &result.to_string()).await
    {
        tracing::warn!(component = crate::COMPONENT, job_id = %job.id, item = %item.item_key, error = %e, "item state not saved");
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
    let items = batches::items(&ctx.db, &job.id)
        .await
        .map_err(|e| Failure::new(format!("batch items not readable: {e}"), json!({})))?;
    let total = items.len();
    let mut clouds: HashMap<String, Result<Arc<dyn Cloud>, String>> = HashMap::new();
    let mut touched: BTreeSet<String> = BTreeSet::new();
    let mut stopped: Option<Stop> = None;
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
        match batches::start(&ctx.db, &job.id, &item.item_key).await {
            Ok(true) => {}
            Ok(false) => continue,
            Err(e) => {
                return Err(Failure::new(
                    format!("item {} not started: {e}", item.item_key),
                    json!({"mode": mode}),
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
        let outcome = match cloud {
            Err(e) => failed(
                format!("cannot reach the account: {e}"),
                &item.result_json(),
            ),
            Ok(cloud) => match item.kind.as_str() {
                batches::VOLUME => clean_volume(ctx, cloud.as_ref(), job, item, dry, control).await,
                batches::SNAPSHOT => clean_snapshot(cloud.as_ref(), item, dry).await,
                batches::INSTANCE => terminate_instance(ctx, cloud.as_ref(), &org, item, dry).await,
                other => failed(format!("unknown item kind `{other}`"), &json!({})),
            },
        };
        let acted = matches!(outcome, Outcome::Done { .. }) && !dry;
        if acted {
            touched.insert(item.account_id.clone());
        }
        if let Some(stop) = record(ctx, job, item, outcome, dry, total).await {
            stopped = Some(stop);
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
    if let Some(stop) = stopped {
        let reason = format!("not started: the job stopped ({})", stop_word(stop));
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
    let items = batches::items(&ctx.db, &job.id)
        .await
        .map_err(|e| Failure::new(format!("batch items not readable: {e}"), json!({})))?;
    let (done, failed_n, skipped_n, saving) = batches::summary(&items);
    let would_save: f64 = items
        .iter()
        .filter(|i| i.status == batches::DONE)
        .filter_map(|i| i.result_json().get("would_save").and_then(Value::as_f64))
        .sum();
    let result = json!({
        "mode": mode,
        "total": total,
        "done": done,
        "failed": failed_n,
        "skipped": skipped_n,
        "monthly_saving": saving,
        "would_save": would_save,
        "items": items.iter().map(|i| json!({
            "key": i.item_key,
            "status": i.status,
            "monthly_saving": i.monthly_saving,
            "error": i.error,
            "snapshot_id": i.result_json().get("snapshot_id"),
        })).collect::<Vec<_>>(),
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
) -> Option<Stop> {
    let (status, saving, mut result, error, stop) = match outcome {
        Outcome::Done { saving, result } => (batches::DONE, saving, result, None, None),
        Outcome::Skipped { reason, result } => (batches::SKIPPED, 0.0, result, Some(reason), None),
        Outcome::Failed { error, result } => (batches::FAILED, 0.0, result, Some(error), None),
        Outcome::Stopped {
            stop,
            reason,
            result,
        } => (batches::SKIPPED, 0.0, result, Some(reason), Some(stop)),
    };
    let saving = if dry { 0.0 } else { saving };
    if let Some(o) = result.as_object_mut() {
        o.insert(
            "mode".into(),
            json!(if dry { "dry_run" } else { "execute" }),
        );
        o.insert("idempotency_key".into(), json!(item.idempotency_key));
    }
    if let Err(e) = batches::finish(
        &ctx.db,
        &job.id,
        &item.item_key,
        status,
        saving,
        &result.to_string(),
        error.as_deref(),
    )
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

async fn clean_volume(
    ctx: &JobContext,
    cloud: &dyn Cloud,
    job: &jobs::JobRow,
    item: &ItemRow,
    dry: bool,
    control: &Control,
) -> Outcome {
    let vol = item.item_key.as_str();
    // What an earlier delivery of this item already did (empty the first time).
    let mut r = item.result_json();
    let volumes = match cloud.describe_volumes().await {
        Ok(v) => v,
        Err(e) => return failed(cloud_err("reading volumes", &e), &r),
    };
    let Some(v) = volumes.iter().find(|v| v.id == vol) else {
        // Resumed after the delete went through: the item is done.
        if r.get("phase").and_then(Value::as_str) == Some("delete") {
            let saving = r
                .get("net_monthly_saving")
                .and_then(Value::as_f64)
                .unwrap_or(0.0);
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
        match cloud.create_snapshot(vol, true).await {
            Ok(Mutation::DryRun(ok)) => would.push(ok.message),
            Ok(Mutation::Applied(_)) => {
                return failed("the cloud applied a dry-run snapshot request", &r)
            }
            Err(e) => return failed(cloud_err("CreateSnapshot (dry run)", &e), &r),
        }
        match cloud.delete_volume(vol, true).await {
            Ok(Mutation::DryRun(ok)) => would.push(ok.message),
            Ok(Mutation::Applied(_)) => {
                return failed("the cloud applied a dry-run volume deletion", &r)
            }
            Err(CloudError::Invalid { msg, .. }) => return skipped(msg, &r),
            Err(e) => return failed(cloud_err("DeleteVolume (dry run)", &e), &r),
        }
        r["would"] = json!(would);
        r["would_save"] = json!(saving);
        return Outcome::Done { saving, result: r };
    }

    // 1. The safety snapshot: the one an earlier delivery took, or a new one.
    let mut snapshot_id = r
        .get("snapshot_id")
        .and_then(Value::as_str)
        .map(str::to_string);
    if snapshot_id.is_none() {
        if let Some(since) = r
            .get("snapshot_requested_at")
            .and_then(Value::as_str)
            .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
        {
            // Requested before a crash that lost the answer: adopt that snapshot.
            match cloud.describe_snapshots().await {
                Ok(snaps) => {
                    snapshot_id = snaps
                        .into_iter()
                        .filter(|s| {
                            s.volume_id.as_deref() == Some(vol)
                                && s.description == SNAPSHOT_DESCRIPTION
                                && s.start_time >= since - chrono::Duration::seconds(5)
                        })
                        .max_by_key(|s| s.start_time)
                        .map(|s| s.id)
                }
                Err(e) => return failed(cloud_err("reading snapshots", &e), &r),
            }
        }
    }
    let snapshot_id = match snapshot_id {
        Some(id) => id,
        None => {
            r["snapshot_requested_at"] = json!(cloud.now().to_rfc3339());
            persist(ctx, job, item, &r).await;
            match cloud.create_snapshot(vol, false).await {
                Ok(Mutation::Applied(s)) => s.id,
                Ok(Mutation::DryRun(_)) => {
                    return failed(
                        "the cloud answered a real snapshot request as a dry run",
                        &r,
                    )
                }
                Err(e) => return failed(cloud_err("CreateSnapshot", &e), &r),
            }
        }
    };
    r["snapshot_id"] = json!(snapshot_id);
    r["phase"] = json!("snapshot");
    persist(ctx, job, item, &r).await;

    // 2. Wait until it is complete: deleting a volume whose snapshot then fails would lose
    //    the data.
    let deadline = tokio::time::Instant::now() + SNAPSHOT_WAIT;
    let mut pause = POLL_FIRST;
    loop {
        match cloud.describe_snapshots().await {
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
            // A passing error while waiting is not the snapshot's failure: look again.
            Err(e) if e.is_retryable() => {}
            Err(e) => return failed(cloud_err("reading snapshots", &e), &r),
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
    match cloud.describe_volumes().await {
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
        Err(e) => return failed(cloud_err("reading volumes", &e), &r),
    }

    // 4. Delete.
    r["phase"] = json!("delete");
    persist(ctx, job, item, &r).await;
    match cloud.delete_volume(vol, false).await {
        Ok(_) => Outcome::Done { saving, result: r },
        Err(CloudError::Invalid { msg, .. }) => {
            r["phase"] = json!("kept");
            skipped(msg, &r)
        }
        Err(CloudError::NotFound { .. }) => {
            skipped(format!("{vol} was deleted by someone else meanwhile"), &r)
        }
        Err(e) => {
            r["phase"] = json!("kept");
            failed(cloud_err("DeleteVolume", &e), &r)
        }
    }
}

async fn clean_snapshot(cloud: &dyn Cloud, item: &ItemRow, dry: bool) -> Outcome {
    let id = item.item_key.as_str();
    let mut r = item.result_json();
    let snaps = match cloud.describe_snapshots().await {
        Ok(s) => s,
        Err(e) => return failed(cloud_err("reading snapshots", &e), &r),
    };
    let Some(s) = snaps.iter().find(|s| s.id == id) else {
        return skipped(format!("{id} no longer exists"), &r);
    };
    // The inventory's rule for "unused", checked against the cloud now: it backs no image
    // and its source volume does not exist.
    if let Some(ami) = &s.source_ami {
        return skipped(format!("{id} backs image {ami}; it was kept"), &r);
    }
    if let Some(source) = &s.volume_id {
        match cloud.describe_volumes().await {
            Ok(volumes) if volumes.iter().any(|v| &v.id == source) => {
                return skipped(
                    format!("{id}'s source volume {source} exists; it was kept"),
                    &r,
                )
            }
            Ok(_) => {}
            Err(e) => return failed(cloud_err("reading volumes", &e), &r),
        }
    }
    let saving = f64::from(s.size_gib) * SNAPSHOT_GB_MONTH;
    r["size_gib"] = json!(s.size_gib);
    match cloud.delete_snapshot(id, dry).await {
        Ok(Mutation::DryRun(ok)) => {
            r["would"] = json!([ok.message]);
            r["would_save"] = json!(saving);
            Outcome::Done { saving, result: r }
        }
        Ok(Mutation::Applied(())) if !dry => Outcome::Done { saving, result: r },
        Ok(Mutation::Applied(())) => failed("the cloud applied a dry-run snapshot deletion", &r),
        Err(CloudError::Invalid { msg, .. }) => skipped(msg, &r),
        Err(CloudError::NotFound { .. }) => {
            skipped(format!("{id} was deleted by someone else meanwhile"), &r)
        }
        Err(e) => failed(cloud_err("DeleteSnapshot", &e), &r),
    }
}

async fn terminate_instance(
    ctx: &JobContext,
    cloud: &dyn Cloud,
    org: &str,
    item: &ItemRow,
    dry: bool,
) -> Outcome {
    let id = item.item_key.as_str();
    let mut r = item.result_json();
    let instances = match cloud.describe_instances().await {
        Ok(i) => i,
        Err(e) => return failed(cloud_err("reading instances", &e), &r),
    };
    let Some(i) = instances.iter().find(|i| i.id == id) else {
        return skipped(format!("{id} no longer exists"), &r);
    };
    if matches!(
        i.state,
        InstanceState::Terminated | InstanceState::ShuttingDown
    ) {
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
    match inventory::authorized_at(&ctx.db, org, &item.resource_row_id).await {
        Ok(Some(_)) => return skipped(format!("{id} was authorized (kept) meanwhile"), &r),
        Ok(None) => {}
        Err(e) => return failed(format!("authorization not readable: {e}"), &r),
    }
    // A stopped instance costs no compute: terminating it saves only what the list said it
    // costs while running, which is nothing now.
    let saving = if i.state.is_billed() {
        item.expected_monthly_saving
    } else {
        0.0
    };
    r["instance_type"] = json!(i.instance_type);
    r["state_before"] = json!(i.state);
    match cloud.terminate_instances(&[id.to_string()], dry).await {
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
        Err(e) => failed(cloud_err("TerminateInstances", &e), &r),
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
