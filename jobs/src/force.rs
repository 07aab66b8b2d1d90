//! Force on-demand (MOD-OVR-01): one job per cluster makes the cluster comply with the
//! manual overrides in force — every spot node they cover (the whole cluster for a
//! cluster, organization or platform override; single nodes for instance overrides) is
//! replaced by an on-demand node of the same type through the same safe executor as
//! Optimize Now (launch, Ready, cordon, drain through the agent, terminate). The job is
//! level-triggered: it reads the overrides when it runs, so a redelivered or repeated job
//! finds the nodes already on demand and does nothing twice.

use std::collections::BTreeSet;

use serde_json::json;
use spot_models::{jobs, overrides};

use crate::optimize::{execute_plan, prepare, store_plan, Executed};
use crate::{Done, Failure, JobContext};

pub const KIND: &str = "force_on_demand";

pub async fn run(
    ctx: &JobContext,
    job: &jobs::JobRow,
    control: &crate::Control,
) -> Result<Done, Failure> {
    let prep = prepare(ctx, job, "force on-demand").await?;
    let now_ms = chrono::Utc::now().timestamp_millis();
    let active = overrides::active_for_cluster(&ctx.db, &prep.org, &prep.cluster_id, now_ms)
        .await
        .map_err(|e| Failure::new(e.to_string(), json!({"executed": [], "not_run": []})))?;
    let mode = if prep.dry { "dry_run" } else { "execute" };
    if active.is_empty() {
        return Ok(Done {
            message: "no override is in force for this cluster any more: nothing to do".into(),
            result: json!({"mode": mode, "actions": 0, "executed": [], "not_run": [], "overrides": []}),
        });
    }
    // The whole cluster, or only the nodes of instance overrides.
    let targets: Option<BTreeSet<String>> = if active.iter().any(|o| o.covers_cluster()) {
        None
    } else {
        Some(
            active
                .iter()
                .filter_map(|o| o.instance_id.as_deref())
                .filter_map(|i| prep.snap.node_of_instance(i).map(str::to_string))
                .collect(),
        )
    };
    let reason = match active.iter().find(|o| o.covers_cluster()) {
        Some(o) => format!("forced on-demand ({} override)", o.scope),
        None => "forced on-demand (instance override)".to_string(),
    };
    let now = prep.cloud.now().timestamp();
    let plan = spot_engine::plan::force_on_demand(
        &prep.snap.nodes,
        targets.as_ref(),
        &prep.snap.catalog,
        &reason,
        now,
    );
    store_plan(ctx, job, &plan, None, prep.snap.source).await?;
    let Executed { executed, .. } = execute_plan(
        ctx,
        job,
        control,
        &prep,
        &plan,
        "force_on_demand.action",
        false,
    )
    .await?;
    // Instance overrides follow their node to its on-demand replacement, which the planner
    // then keeps while the override lasts.
    if !prep.dry {
        for (action, detail) in plan.actions.iter().zip(&executed) {
            let Some(old) = detail["terminated"].as_str() else {
                continue;
            };
            let Some(new) = detail["launched"]
                .as_array()
                .and_then(|l| l.first())
                .and_then(|v| v.as_str())
            else {
                continue;
            };
            for o in active
                .iter()
                .filter(|o| !o.covers_cluster() && o.pinned_instance() == Some(old))
            {
                if let Err(e) = overrides::set_replacement(&ctx.db, &o.id, new).await {
                    tracing::warn!(component = crate::COMPONENT, override_id = %o.id, node = %action.target, error = %e, "replacement not recorded on the override");
                }
            }
        }
    }
    let ids: Vec<&str> = active.iter().map(|o| o.id.as_str()).collect();
    let message = if plan.actions.is_empty() {
        format!(
            "nothing to replace: the covered nodes already run on demand ({} blocked)",
            plan.blocked.len()
        )
    } else if prep.dry {
        format!(
            "dry run: {} spot nodes would be replaced by on-demand",
            plan.actions.len()
        )
    } else {
        format!("{} spot nodes replaced by on-demand", executed.len())
    };
    Ok(Done {
        message,
        result: json!({
            "mode": mode,
            "source": prep.snap.source,
            "actions": plan.actions.len(),
            "blocked": plan.blocked.len(),
            "expected_monthly_savings": plan.expected_monthly_savings,
            "executed": executed,
            "not_run": [],
            "overrides": ids,
        }),
    })
}

/// What starting (or re-checking) an override did: the jobs queued, and the clusters
/// that already run a node-changing job (the sweep queues theirs once it ends).
#[derive(Debug, Default)]
pub struct Started {
    pub jobs: Vec<jobs::JobRow>,
    pub waiting: Vec<String>,
}

/// Queues one force job per live cluster the override covers and pushes the on-demand
/// template to those clusters' actors at once (no spot launch for pending pods from now
/// on). A cluster with an optimization or force job already queued or running is left
/// waiting (the partial unique index decides), never doubled.
pub async fn start(
    db: &spot_models::Db,
    queue: &crate::JobQueue,
    actors: &spot_actors::system::Actors,
    o: &overrides::Override,
    requested_by: Option<&str>,
    safe_mode: bool,
) -> Result<Started, spot_models::DbError> {
    let mut out = Started::default();
    for (org, cluster) in overrides::clusters_of(db, o).await? {
        push_template(db, actors, &org, &cluster).await;
        match queue_node_job(db, queue, &org, &cluster, KIND, requested_by, safe_mode).await? {
            Some(job) => out.jobs.push(job),
            None => out.waiting.push(cluster),
        }
    }
    Ok(out)
}

/// Queues a node-changing job (`optimize` or `force_on_demand`) for a cluster; `None`
/// when the cluster already has one queued or running (the partial unique index) or the
/// queue refused it (the row is failed with the reason).
async fn queue_node_job(
    db: &spot_models::Db,
    queue: &crate::JobQueue,
    org: &str,
    cluster: &str,
    kind: &str,
    requested_by: Option<&str>,
    safe_mode: bool,
) -> Result<Option<jobs::JobRow>, spot_models::DbError> {
    let job = match jobs::insert(
        db,
        jobs::NewJob {
            organization_id: Some(org),
            kind,
            target_id: Some(cluster),
            dry_run: false,
            requested_by,
            safe_mode,
        },
    )
    .await
    {
        Ok(job) => job,
        Err(spot_models::DbError::Conflict(_)) => return Ok(None),
        Err(e) => return Err(e),
    };
    if let Err(e) = queue.enqueue(&job).await {
        let _ = jobs::fail_queued(db, &job.id, &format!("could not queue: {e}")).await;
        return Ok(None);
    }
    Ok(Some(job))
}

/// Tells the cluster's actor the template now in force.
async fn push_template(
    db: &spot_models::Db,
    actors: &spot_actors::system::Actors,
    org: &str,
    cluster_id: &str,
) {
    let Ok(Some(c)) = spot_models::inventory::cluster(db, org, cluster_id).await else {
        return;
    };
    match spot_actors::policy::in_force(db, org, cluster_id).await {
        Ok((p, _)) => actors.set_template(&c.account_id, &c.name, p.template),
        Err(e) => {
            tracing::warn!(component = crate::COMPONENT, cluster = %c.name, error = %e, "policy unreadable; template not pushed")
        }
    }
}

/// Ends an override (revoked by `by`, or expired: `by` = `system`) and hands its clusters
/// back to the policy: their actors get the policy's template again, and (unless
/// `hand_back` is false) an optimization job per cluster lets the planner decide what the
/// cluster should run now. Returns `None` when it had already ended.
pub async fn end(
    db: &spot_models::Db,
    queue: &crate::JobQueue,
    actors: &spot_actors::system::Actors,
    o: &overrides::Override,
    by: &str,
    reason: &str,
    safe_mode: bool,
) -> Result<Option<Started>, spot_models::DbError> {
    if !overrides::end(db, &o.id, by, reason).await? {
        return Ok(None);
    }
    let mut out = Started::default();
    for (org, cluster) in overrides::clusters_of(db, o).await? {
        push_template(db, actors, &org, &cluster).await;
        // Another override may still force this cluster: then it stays as it is.
        let still = overrides::active_for_cluster(
            db,
            &org,
            &cluster,
            chrono::Utc::now().timestamp_millis(),
        )
        .await?
        .iter()
        .any(|x| x.covers_cluster());
        if still {
            continue;
        }
        match queue_node_job(
            db,
            queue,
            &org,
            &cluster,
            crate::optimize::KIND,
            None,
            safe_mode,
        )
        .await?
        {
            Some(job) => out.jobs.push(job),
            None => out.waiting.push(cluster),
        }
    }
    Ok(Some(out))
}

/// One pass of the override timers (every replica, every 30 s; the rows are the timers,
/// so they survive restarts): expired overrides end and hand their clusters back to the
/// policy, audited as `system`; clusters an active override covers whose force job could
/// not start yet (another job was running) get it now. Returns (ended, queued).
pub async fn sweep(
    db: &spot_models::Db,
    queue: &crate::JobQueue,
    actors: &spot_actors::system::Actors,
    safe_mode: bool,
) -> Result<(usize, usize), spot_models::DbError> {
    let now = chrono::Utc::now().timestamp_millis();
    let mut ended = 0;
    for o in overrides::due(db, now).await? {
        let Some(done) = end(db, queue, actors, &o, "system", "expired", safe_mode).await? else {
            continue;
        };
        ended += 1;
        let job_ids: Vec<&str> = done.jobs.iter().map(|j| j.id.as_str()).collect();
        spot_models::audit::append(
            db,
            spot_models::audit::NewAuditRecord {
                organization_id: o.organization_id.clone(),
                actor_kind: "system".into(),
                actor_component: Some("MOD-OVR-01".into()),
                action: "override.expired".into(),
                resource_type: "override".into(),
                resource_id: Some(o.id.clone()),
                outcome: "success".into(),
                request_id: uuid::Uuid::new_v4().to_string(),
                after: Some(json!({"scope": o.scope, "cluster_id": o.cluster_id, "instance_id": o.instance_id, "revert_jobs": job_ids, "waiting": done.waiting})),
                ..Default::default()
            },
        )
        .await?;
    }
    let mut queued = 0;
    for (o, org, cluster) in overrides::uncovered_clusters(db, now).await? {
        push_template(db, actors, &org, &cluster).await;
        if let Some(job) = queue_node_job(db, queue, &org, &cluster, KIND, None, safe_mode).await? {
            queued += 1;
            spot_models::audit::append(
                db,
                spot_models::audit::NewAuditRecord {
                    organization_id: Some(org.clone()),
                    actor_kind: "system".into(),
                    actor_component: Some("MOD-OVR-01".into()),
                    action: "override.force_queued".into(),
                    resource_type: "cluster".into(),
                    resource_id: Some(cluster.clone()),
                    outcome: "success".into(),
                    request_id: uuid::Uuid::new_v4().to_string(),
                    after: Some(json!({"override_id": o.id, "job_id": job.id})),
                    ..Default::default()
                },
            )
            .await?;
        }
    }
    Ok((ended, queued))
}
