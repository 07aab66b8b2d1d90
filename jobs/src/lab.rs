//! The Lab (super-admins): a live single-instance switch runs as a `lab_switch` job through
//! the same safe executor steps as Optimize Now — the target model picks the replacement
//! pool, then: spot request (launch with an idempotent client token), boot (the instance
//! runs), node Ready (the agent sees a Ready node, the template's marks applied), cordon,
//! drain (PDB-respecting, through the agent), volume detach and attach (the old instance's
//! data volumes move to the new one), terminate (Node object deleted, instance
//! terminated). Each phase is timed, stored (`lab_switch_phases`), streamed as `lab.phase`
//! on the admin event stream and audited in the organization's chain.
//!
//! A parallel A/B test assigns two risk models to two instance sets (deterministically,
//! [`spot_engine::lab::assign`]) and, every tick, lets each set's model decide for each of
//! its instances — keep, move to a better pool, or replace after an interruption — and
//! executes the moves (launch, then terminate the old instance). Every decision records the
//! id of the model that made it; every tick stores one sample per arm (hourly cost, running
//! instances, interruptions, capacity changes). At the end a verdict is computed.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;
use spot_actors::risk::{ActiveModel, SHIPPED_ID, SHIPPED_MODEL};
use spot_actors::system::Deps;
use spot_cloud::{
    Cloud, CloudError, InstanceState, LaunchRequest, Lifecycle as CloudLifecycle, Mutation,
    SpotEventKind, Volume, TAG_EKS_CLUSTER, TAG_EKS_NODEGROUP, TAG_MANAGED,
};
use spot_engine::lab::{self as pure, Target};
use spot_models::audit::{self, NewAuditRecord};
use spot_models::lab as store;
use spot_models::{accounts, jobs, risk as registry};

use crate::optimize::{
    client_token, prepare, remove_node_object, retire_node, wait_running, AgentTarget,
};
use crate::{agent_ops, Done, Failure, JobContext};

pub const SWITCH_KIND: &str = "lab_switch";
pub const COMPONENT: &str = "LAB";
/// Tag carried by the instances of an A/B test's sets (value: the arm's tag).
pub const TAG_LAB: &str = "spot-optimizer/lab";
pub const TAG_LAB_TEST: &str = "spot-optimizer/lab-test";

/// Phases of a live switch, in execution order.
pub const PHASES: &[&str] = &[
    "spot_request",
    "boot",
    "node_ready",
    "cordon",
    "drain",
    "volume_detach",
    "volume_attach",
    "terminate",
];

/// Loads a model the Lab may use: the shipped model, or a validated / graduated / retired
/// registry entry. A model that does not load is an error (the Lab never measures the
/// heuristic in its place).
pub async fn load_model(deps: &Deps, id: &str) -> Result<Arc<ActiveModel>, String> {
    let current = deps.risk.current();
    if current.id == id {
        return Ok(current);
    }
    let m = if id == SHIPPED_ID {
        ActiveModel::load(
            SHIPPED_ID,
            "risk-v1 (shipped)",
            SHIPPED_MODEL,
            deps.risk.runtime(),
        )
    } else {
        let row = registry::model(&deps.db, id)
            .await
            .map_err(|e| e.to_string())?
            .ok_or_else(|| format!("no model {id} in the registry"))?;
        let bytes = registry::model_bytes(&deps.db, id)
            .await
            .map_err(|e| e.to_string())?
            .ok_or_else(|| format!("model {id} has no stored bytes"))?;
        let runtime = deps.risk.runtime().clone();
        let name = row.name.clone();
        let id2 = id.to_string();
        tokio::task::spawn_blocking(move || ActiveModel::load(&id2, &name, &bytes, &runtime))
            .await
            .map_err(|e| format!("loading model {id} failed: {e}"))?
    };
    if let Some(e) = &m.load_error {
        return Err(format!("model {id} does not load: {e}"));
    }
    Ok(Arc::new(m))
}

/// Connects to an account's cloud with its stored credentials.
pub async fn connect_account(
    deps: &Deps,
    account: &accounts::Account,
) -> Result<Arc<dyn Cloud>, String> {
    let ciphertext = accounts::credentials(&deps.db, &account.id)
        .await
        .map_err(|e| e.to_string())?;
    let target = spot_actors::system::target_of(&deps.keyring, account, ciphertext)?;
    deps.connector
        .connect(&target)
        .await
        .map_err(|e| spot_actors::system::human(&e))
}

/// The data volumes of an instance: every attached volume except its root. The root is
/// the volume attached as the instance's root device; only when the cloud reports no
/// device names is it taken to be the first volume created within two minutes of the
/// instance's launch (volumes of a launch template's block device mappings are created
/// with the root, so device names decide whenever they are known).
pub fn data_volumes(inst: &spot_cloud::Instance, volumes: &[Volume]) -> Vec<Volume> {
    let mut mine: Vec<&Volume> = volumes
        .iter()
        .filter(|v| v.attached_instance_id.as_deref() == Some(inst.id.as_str()))
        .collect();
    mine.sort_by(|a, b| a.create_time.cmp(&b.create_time).then(a.id.cmp(&b.id)));
    if let Some(root) = inst.root_device_name.as_deref() {
        if mine.iter().any(|v| v.device.is_some()) {
            return mine
                .into_iter()
                .filter(|v| v.device.as_deref() != Some(root))
                .cloned()
                .collect();
        }
    }
    let root = mine
        .iter()
        .find(|v| (v.create_time - inst.launch_time).num_seconds().abs() <= 120)
        .map(|v| v.id.clone());
    mine.into_iter()
        .filter(|v| Some(&v.id) != root.as_ref())
        .cloned()
        .collect()
}

fn lifecycle_str(l: CloudLifecycle) -> &'static str {
    match l {
        CloudLifecycle::Spot => "spot",
        CloudLifecycle::OnDemand => "on_demand",
    }
}

/// Times, stores, streams and audits the phases of one switch.
struct Phaser<'a> {
    ctx: &'a JobContext,
    job: &'a jobs::JobRow,
    sw: &'a store::Switch,
    seq: i64,
    started: Option<(Instant, i64, &'static str)>,
    done: Vec<serde_json::Value>,
}

impl<'a> Phaser<'a> {
    async fn start(&mut self, name: &'static str) {
        let at = spot_models::now_ms();
        if let Err(e) = store::start_phase(&self.ctx.db, &self.sw.id, self.seq, name, at).await {
            tracing::warn!(component = COMPONENT, switch = %self.sw.id, error = %e, "phase not stored");
        }
        self.started = Some((Instant::now(), at, name));
        self.ctx.bus.publish(
            None,
            "lab.phase",
            json!({"switch_id": self.sw.id, "job_id": self.job.id, "seq": self.seq, "phase": name, "status": "running", "started_at": chrono::DateTime::<chrono::Utc>::from_timestamp_millis(at)}),
        );
    }

    async fn end(&mut self, status: &str, detail: serde_json::Value) -> i64 {
        let Some((t0, at0, name)) = self.started.take() else {
            return 0;
        };
        let ms = t0.elapsed().as_millis() as i64;
        let at = spot_models::now_ms();
        if let Err(e) = store::end_phase(
            &self.ctx.db,
            &self.sw.id,
            self.seq,
            status,
            at,
            ms,
            &detail.to_string(),
        )
        .await
        {
            tracing::warn!(component = COMPONENT, switch = %self.sw.id, error = %e, "phase not stored");
        }
        let event = json!({"switch_id": self.sw.id, "job_id": self.job.id, "seq": self.seq, "phase": name, "status": status, "duration_ms": ms, "started_at": chrono::DateTime::<chrono::Utc>::from_timestamp_millis(at0), "detail": detail});
        self.ctx.bus.publish(None, "lab.phase", event.clone());
        crate::audit_job(
            self.ctx,
            self.job,
            &format!("lab.phase.{name}"),
            if status == "failed" {
                "failed"
            } else {
                "success"
            },
            event.clone(),
        )
        .await;
        self.done.push(event);
        self.seq += 1;
        ms
    }

    /// A phase with nothing to do (e.g. no data volume): recorded as `skipped`, 0 ms.
    async fn skip(&mut self, name: &'static str, why: &str) {
        self.start(name).await;
        if let Some(s) = self.started.as_mut() {
            s.0 = Instant::now();
        }
        self.end("skipped", json!({"reason": why})).await;
    }
}

/// Runs a `lab_switch` job.
pub async fn run_switch(
    ctx: &JobContext,
    job: &jobs::JobRow,
    control: &crate::Control,
) -> Result<Done, Failure> {
    let sw = store::switch_of_job(&ctx.db, &job.id)
        .await
        .map_err(|e| Failure::new(e.to_string(), json!({})))?
        .ok_or_else(|| Failure::new("no Lab switch belongs to this job", json!({})))?;
    let outcome = switch_inner(ctx, job, control, &sw).await;
    let (status, error) = match &outcome {
        Ok(_) => (store::SUCCEEDED, None),
        Err(f) => (store::FAILED, Some(f.message.clone())),
    };
    if let Err(e) = store::finish_switch(&ctx.db, &sw.id, status, error.as_deref()).await {
        tracing::warn!(component = COMPONENT, switch = %sw.id, error = %e, "switch outcome not stored");
    }
    ctx.bus.publish(
        None,
        "lab.switch",
        json!({"switch_id": sw.id, "job_id": job.id, "status": status, "error": error}),
    );
    outcome
}

async fn switch_inner(
    ctx: &JobContext,
    job: &jobs::JobRow,
    control: &crate::Control,
    sw: &store::Switch,
) -> Result<Done, Failure> {
    let fail = |msg: String, phases: &[serde_json::Value]| {
        Failure::new(msg, json!({"switch_id": sw.id, "phases": phases}))
    };
    store::start_switch(&ctx.db, &sw.id)
        .await
        .map_err(|e| fail(e.to_string(), &[]))?;
    ctx.bus.publish(
        None,
        "lab.switch",
        json!({"switch_id": sw.id, "job_id": job.id, "status": "running"}),
    );
    let prep = prepare(ctx, job, "lab switch").await?;
    if prep.dry {
        return Err(fail(
            "the live switch changes real capacity and does not run in safe mode or under a dry-run policy".into(),
            &[],
        ));
    }
    let cloud = prep.cloud.as_ref();
    let node_name = prep
        .snap
        .node_of_instance(&sw.instance_id)
        .map(str::to_string)
        .ok_or_else(|| {
            fail(
                format!(
                    "{} is not a node of this cluster in the agent's view any more",
                    sw.instance_id
                ),
                &[],
            )
        })?;
    let live = prep
        .snap
        .live
        .get(&node_name)
        .ok_or_else(|| fail("node vanished from the snapshot".into(), &[]))?;
    let described = cloud
        .describe_instances()
        .await
        .map_err(|e| fail(spot_actors::system::human(&e), &[]))?;
    let inst = described
        .iter()
        .find(|i| i.id == sw.instance_id && i.state == InstanceState::Running)
        .cloned()
        .ok_or_else(|| fail(format!("{} is not running", sw.instance_id), &[]))?;
    let volumes = cloud
        .describe_volumes()
        .await
        .map_err(|e| fail(spot_actors::system::human(&e), &[]))?;
    let data = data_volumes(&inst, &volumes);

    // The target model decides where the replacement goes.
    let model = load_model(ctx, &sw.model_id)
        .await
        .map_err(|e| fail(e, &[]))?;
    let market = spot_actors::market::read(cloud, &model, ctx.hive.as_ref())
        .await
        .map_err(|e| fail(e.to_string(), &[]))?;
    let ranked = pure::targets(
        &market.catalog,
        &inst.instance_type,
        &inst.az,
        sw.target_type.as_deref(),
        !data.is_empty(),
        &market.risk_flags,
    );
    let target: Target = ranked.into_iter().next().ok_or_else(|| {
        fail(
            format!(
                "model {} finds no safe capacity for {}{}",
                model.id,
                sw.target_type.as_deref().unwrap_or(&inst.instance_type),
                if data.is_empty() {
                    String::new()
                } else {
                    format!(" in {} (its data volumes stay in their AZ)", inst.az)
                }
            ),
            &[],
        )
    })?;
    let mut lifecycle = if target.spot {
        CloudLifecycle::Spot
    } else {
        CloudLifecycle::OnDemand
    };
    let _ = store::set_switch_choice(
        &ctx.db,
        &sw.id,
        &target.instance_type,
        &target.az,
        lifecycle_str(lifecycle),
    )
    .await;
    ctx.bus.publish(
        None,
        "lab.switch",
        json!({"switch_id": sw.id, "job_id": job.id, "status": "running", "target": target, "model": model.id}),
    );

    let mut ph = Phaser {
        ctx,
        job,
        sw,
        seq: 0,
        started: None,
        done: Vec::new(),
    };
    let agent = AgentTarget {
        db: &ctx.db,
        drain_timeout: Duration::from_secs(prep.policy.drain_timeout_secs),
        org: &prep.org,
        cluster_id: &prep.cluster_id,
        job_id: &job.id,
        marks: &prep.marks,
    };
    macro_rules! checkpoint {
        () => {
            if let Some(stop) = control.checkpoint().await {
                return Err(Failure::cancelled(
                    format!("stopped ({stop:?}) before phase {}", PHASES[ph.seq as usize % PHASES.len()]),
                    json!({"switch_id": sw.id, "phases": ph.done}),
                ));
            }
        };
    }
    macro_rules! failed {
        ($msg:expr, $detail:expr) => {{
            let msg: String = $msg;
            ph.end("failed", $detail).await;
            return Err(Failure::new(
                msg,
                json!({"switch_id": sw.id, "phases": ph.done}),
            ));
        }};
    }

    // 1. Spot request.
    checkpoint!();
    ph.start("spot_request").await;
    let mut tags = spot_cloud::Tags::new();
    tags.insert(TAG_EKS_CLUSTER.into(), prep.cluster.name.clone());
    if let Some(g) = &live.node_group {
        tags.insert(TAG_EKS_NODEGROUP.into(), g.clone());
    }
    tags.insert("spot-optimizer/job".into(), job.id.clone());
    tags.insert("spot-optimizer/lab-switch".into(), sw.id.clone());
    // The customer role lets RunInstances through only with this tag in the request (and
    // terminates only cluster nodes and what we launched), as for Optimize Now.
    tags.insert(TAG_MANAGED.into(), "true".into());
    let mut req = LaunchRequest {
        instance_type: target.instance_type.clone(),
        az: Some(target.az.clone()),
        subnet_id: None,
        lifecycle,
        count: 1,
        tags,
        client_token: client_token(&job.id, 0, ""),
        asg_name: None,
    };
    let mut fallback = None;
    let launched = match cloud.launch_capacity(&req, false).await {
        Err(CloudError::InsufficientCapacity { .. })
            if req.lifecycle == CloudLifecycle::Spot && prep.policy.template.on_demand_fallback =>
        {
            fallback = Some(format!(
                "spot capacity for {} in {} is exhausted; fell back to on-demand",
                req.instance_type, target.az
            ));
            req.lifecycle = CloudLifecycle::OnDemand;
            req.client_token = client_token(&job.id, 0, "-od");
            lifecycle = CloudLifecycle::OnDemand;
            cloud.launch_capacity(&req, false).await
        }
        other => other,
    };
    let new_id = match launched {
        Ok(Mutation::Applied(r)) => match r.instances.into_iter().next() {
            Some(i) => i.id,
            None => failed!(
                "the launch returned no instance".into(),
                json!({"error": "no instance"})
            ),
        },
        Ok(Mutation::DryRun(_)) => failed!(
            "the launch was only validated".into(),
            json!({"error": "dry run"})
        ),
        Err(e) => {
            let m = spot_actors::system::human(&e);
            failed!(format!("spot request failed: {m}"), json!({"error": m}))
        }
    };
    let _ = store::set_switch_new_instance(&ctx.db, &sw.id, &new_id).await;
    ph.end(
        "done",
        json!({"instance_id": new_id, "instance_type": req.instance_type, "az": target.az, "lifecycle": lifecycle_str(lifecycle), "fallback": fallback, "model": model.id, "probability": target.probability, "hourly": target.hourly}),
    )
    .await;

    // 2. Boot.
    ph.start("boot").await;
    if let Err(e) = wait_running(cloud, std::slice::from_ref(&new_id)).await {
        failed!(
            format!("boot: {e}; the old node was kept, the new instance is left for inspection"),
            json!({"error": e, "instance_id": new_id})
        );
    }
    ph.end("done", json!({"instance_id": new_id})).await;

    // 3. Node Ready.
    ph.start("node_ready").await;
    let names = match agent_ops::wait_nodes_ready(
        &ctx.db,
        &prep.org,
        &prep.cluster_id,
        std::slice::from_ref(&new_id),
        agent_ops::NODE_READY_TIMEOUT,
    )
    .await
    {
        Ok(n) => n,
        Err(e) => failed!(
            format!("node Ready: {e}; the old node keeps running"),
            json!({"error": e, "instance_id": new_id})
        ),
    };
    let mut steps = Vec::new();
    if let Err(e) = agent.mark(0, &names, &mut steps).await {
        failed!(
            format!("labelling the new node failed: {e}; the old node keeps running"),
            json!({"error": e, "steps": steps})
        );
    }
    ph.end("done", json!({"nodes": names, "steps": steps}))
        .await;

    // 4. Cordon.
    checkpoint!();
    ph.start("cordon").await;
    match agent
        .command(
            0,
            "cordon",
            spot_agent_protocol::CommandKind::Cordon {
                node: node_name.clone(),
            },
            Duration::from_secs(60),
        )
        .await
    {
        Ok((true, msg, _)) => {
            ph.end("done", json!({"node": node_name, "message": msg}))
                .await;
        }
        Ok((false, msg, _)) => failed!(
            format!("cordon of {node_name} failed: {msg}"),
            json!({"error": msg, "node": node_name})
        ),
        Err(e) => failed!(
            format!("cordon of {node_name} failed: {e}"),
            json!({"error": e, "node": node_name})
        ),
    }

    // 5. Drain (uncordons the node itself when it fails).
    checkpoint!();
    ph.start("drain").await;
    let mut steps = Vec::new();
    if let Err(e) = agent.drain(0, &node_name, &mut steps).await {
        failed!(
            format!("drain: {e}"),
            json!({"error": e, "node": node_name, "steps": steps})
        );
    }
    ph.end("done", json!({"node": node_name, "steps": steps}))
        .await;

    // 6-7. Data volumes follow the node.
    let ids: Vec<String> = data.iter().map(|v| v.id.clone()).collect();
    if data.is_empty() {
        ph.skip("volume_detach", "the instance has no data volume")
            .await;
        ph.skip("volume_attach", "the instance has no data volume")
            .await;
    } else {
        checkpoint!();
        ph.start("volume_detach").await;
        for v in &data {
            if let Err(e) = cloud.detach_volume(&v.id, false).await {
                let m = spot_actors::system::human(&e);
                failed!(
                    format!("detaching {} failed: {m}", v.id),
                    json!({"error": m, "volume_id": v.id, "from": inst.id})
                );
            }
        }
        ph.end("done", json!({"volumes": ids, "from": inst.id}))
            .await;
        ph.start("volume_attach").await;
        for (k, v) in data.iter().enumerate() {
            // The device it had, so the node's mounts find it; else the next free name.
            let device = v
                .device
                .clone()
                .unwrap_or_else(|| format!("/dev/sd{}", (b'f' + (k as u8 % 10)) as char));
            if let Err(e) = cloud.attach_volume_to(&v.id, &new_id, &device, false).await {
                let m = spot_actors::system::human(&e);
                failed!(
                    format!("attaching {} to {new_id} failed: {m}; the volume is detached and available", v.id),
                    json!({"error": m, "volume_id": v.id, "to": new_id})
                );
            }
        }
        ph.end("done", json!({"volumes": ids, "to": new_id})).await;
    }

    // 8. Terminate the old node.
    checkpoint!();
    ph.start("terminate").await;
    let mut steps = Vec::new();
    remove_node_object(&agent, 0, &node_name, &mut steps).await;
    match retire_node(cloud, &prep.cluster.name, live, false).await {
        Ok(asg) => {
            ph.end(
                "done",
                json!({"instance_id": inst.id, "asg_resized": asg, "steps": steps}),
            )
            .await;
        }
        Err(e) => {
            let m = spot_actors::system::human(&e);
            failed!(
                format!("terminating {} failed: {m}", inst.id),
                json!({"error": m, "steps": steps})
            );
        }
    }
    ctx.actors.resync(&prep.account.id);
    let total_ms: i64 = ph
        .done
        .iter()
        .filter_map(|p| p["duration_ms"].as_i64())
        .sum();
    Ok(Done {
        message: format!(
            "switched {} ({}) to {} ({} {} in {}) in {:.1} s",
            inst.id,
            inst.instance_type,
            new_id,
            lifecycle_str(lifecycle),
            req.instance_type,
            target.az,
            total_ms as f64 / 1000.0
        ),
        result: json!({"switch_id": sw.id, "new_instance_id": new_id, "phases": ph.done, "total_ms": total_ms, "model": model.id}),
    })
}

// ------------------------------------------------------------------ A/B tests

/// Drives every running A/B test whose tick is due (every replica runs this; a tick is
/// claimed by one of them). Runs until the process ends.
pub async fn drive_ab_tests(deps: Deps) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        if let Err(e) = drive_once(&deps).await {
            tracing::warn!(component = COMPONENT, error = %e, "A/B test driver pass failed");
        }
    }
}

/// One pass: ends tests past their end, runs the due ticks of the others.
pub async fn drive_once(deps: &Deps) -> Result<usize, spot_models::DbError> {
    let now = spot_models::now_ms();
    let due = store::due_ab_tests(&deps.db, now).await?;
    let mut ran = 0;
    for t in due {
        if now >= t.ends_at {
            finish_ab_test(deps, &t, store::COMPLETED, None).await?;
            continue;
        }
        let Some(n) = store::claim_tick(&deps.db, &t, now).await? else {
            continue;
        };
        ran += 1;
        if let Err(e) = ab_tick(deps, &t, n).await {
            tracing::warn!(component = COMPONENT, test = %t.id, tick = n, error = %e, "A/B tick failed");
            deps.bus.publish(
                None,
                "lab.ab_tick",
                json!({"test_id": t.id, "tick": n, "error": e}),
            );
        }
    }
    Ok(ran)
}

/// Ends a test (`completed`, or `stopped` by an admin) with its verdict, audited.
pub async fn finish_ab_test(
    deps: &Deps,
    t: &store::AbTest,
    status: &str,
    by: Option<&str>,
) -> Result<Option<pure::Verdict>, spot_models::DbError> {
    let v = verdict_of(&deps.db, t).await?;
    let ended = store::end_ab_test(
        &deps.db,
        &t.id,
        status,
        &serde_json::to_string(&v).unwrap_or_default(),
        None,
    )
    .await?;
    if !ended {
        return Ok(None);
    }
    audit::append(
        &deps.db,
        NewAuditRecord {
            organization_id: Some(t.organization_id.clone()),
            actor_kind: "system".into(),
            actor_component: Some(COMPONENT.into()),
            action: format!("lab.ab_test.{status}"),
            resource_type: "lab_ab_test".into(),
            resource_id: Some(t.id.clone()),
            outcome: "success".into(),
            request_id: uuid::Uuid::new_v4().to_string(),
            after: Some(
                json!({"by": by, "verdict": v, "model_a": t.model_a, "model_b": t.model_b}),
            ),
            ..Default::default()
        },
    )
    .await?;
    deps.bus.publish(
        None,
        "lab.ab_test",
        json!({"test_id": t.id, "status": status, "verdict": v}),
    );
    Ok(Some(v))
}

/// The verdict of a test from its samples.
pub async fn verdict_of(
    db: &spot_models::Db,
    t: &store::AbTest,
) -> Result<pure::Verdict, spot_models::DbError> {
    let samples = store::samples(db, &t.id).await?;
    let members = store::members(db, &t.id).await?;
    let summary = |arm: &str| {
        let points: Vec<pure::Point> = samples
            .iter()
            .filter(|s| s.arm == arm)
            .map(|s| pure::Point {
                hourly_cost: s.hourly_cost,
                on_demand_cost: s.on_demand_cost,
                interruptions: s.interruptions.max(0) as u64,
                decisions: s.decisions.max(0) as u64,
            })
            .collect();
        pure::summarize(&points, members.iter().filter(|m| m.arm == arm).count())
    };
    Ok(pure::verdict(summary("a"), summary("b")))
}

fn pool_name(ty: &str, az: &str, lc: &str) -> String {
    format!("{ty}/{az}/{lc}")
}

/// One tick of a test: each arm's model decides for each of its instances; moves and
/// replacements are executed; one sample per arm is stored and streamed.
pub async fn ab_tick(deps: &Deps, t: &store::AbTest, tick: i64) -> Result<(), String> {
    let db = &deps.db;
    let account = accounts::by_id(db, &t.account_id)
        .await
        .map_err(|e| e.to_string())?
        .ok_or("the test's account no longer exists")?;
    let cloud = connect_account(deps, &account).await?;
    let cloud = cloud.as_ref();
    let described: HashMap<String, spot_cloud::Instance> = cloud
        .describe_instances()
        .await
        .map_err(|e| spot_actors::system::human(&e))?
        .into_iter()
        .map(|i| (i.id.clone(), i))
        .collect();
    let now_cloud = cloud.now();
    let since = t
        .last_event_at
        .and_then(chrono::DateTime::<chrono::Utc>::from_timestamp_millis)
        .unwrap_or_else(|| now_cloud - chrono::Duration::seconds(t.tick_secs.max(1)));
    let notices: HashSet<String> = cloud
        .poll_events(since)
        .await
        .map_err(|e| spot_actors::system::human(&e))?
        .into_iter()
        .filter(|e| e.kind == SpotEventKind::InterruptionNotice)
        .map(|e| e.instance_id)
        .collect();
    let _ = store::set_last_event_at(db, &t.id, now_cloud.timestamp_millis()).await;
    let members = store::members(db, &t.id).await.map_err(|e| e.to_string())?;
    for arm in ["a", "b"] {
        let model_id = t.model_of(arm);
        let model = load_model(deps, model_id).await?;
        let market = spot_actors::market::read(cloud, &model, deps.hive.as_ref())
            .await
            .map_err(|e| e.to_string())?;
        let mut hourly = 0.0;
        let mut on_demand = 0.0;
        let mut running = 0i64;
        let mut interruptions = 0i64;
        let mut changes = 0i64;
        for m in members.iter().filter(|m| m.arm == arm) {
            let inst = described.get(&m.instance_id);
            let alive = inst.is_some_and(|i| {
                matches!(i.state, InstanceState::Running | InstanceState::Pending)
            });
            let interrupted = notices.contains(&m.instance_id) || !alive;
            let spot = m.lifecycle == "spot";
            let price_now = |ty: &str, az: &str, spot: bool| -> f64 {
                if spot {
                    market
                        .spot
                        .get(&(ty.to_string(), az.to_string()))
                        .copied()
                        .unwrap_or(0.0)
                } else {
                    market.on_demand.get(ty).copied().unwrap_or(0.0)
                }
            };
            let p_now = if spot {
                market
                    .pool_risk
                    .get(&spot_engine::catalog::PoolKey::new(&m.instance_type, &m.az))
                    .copied()
                    .unwrap_or(spot_actors::market::UNSCORED_RISK)
            } else {
                0.0
            };
            let current_score = pure::weigh(price_now(&m.instance_type, &m.az, spot), p_now, spot);
            let ranked = pure::targets(
                &market.catalog,
                &m.instance_type,
                &m.az,
                None,
                false,
                &market.risk_flags,
            );
            let best = ranked.into_iter().next();
            let from = pool_name(&m.instance_type, &m.az, &m.lifecycle);
            let (action, reason) = if interrupted {
                if alive {
                    interruptions += 1;
                    ("replace", "spot interruption notice".to_string())
                } else {
                    interruptions += 1;
                    ("replace", "the instance is gone (reclaimed)".to_string())
                }
            } else {
                match &best {
                    Some(b)
                        if b.score < current_score * (1.0 - pure::MOVE_MARGIN)
                            && !(b.instance_type == m.instance_type
                                && b.az == m.az
                                && b.spot == spot) =>
                    {
                        (
                            "move",
                            format!(
                                "{} weighs ${:.4}/h against ${:.4}/h here (p {:.2})",
                                pool_name(
                                    &b.instance_type,
                                    &b.az,
                                    if b.spot { "spot" } else { "on_demand" }
                                ),
                                b.score,
                                current_score,
                                p_now
                            ),
                        )
                    }
                    _ => (
                        "keep",
                        format!("no target weighs {:.0} % less", pure::MOVE_MARGIN * 100.0),
                    ),
                }
            };
            let mut decision = store::Decision {
                id: spot_models::new_id(),
                test_id: t.id.clone(),
                arm: arm.into(),
                tick,
                slot: m.slot,
                model_id: model.id.clone(),
                instance_id: m.instance_id.clone(),
                action: action.into(),
                from_pool: from,
                to_pool: None,
                probability: Some(p_now),
                reason,
                outcome: "kept".into(),
                new_instance_id: None,
                at: spot_models::now_ms(),
            };
            let mut cost = if alive {
                price_now(&m.instance_type, &m.az, spot)
            } else {
                0.0
            };
            let mut counted_running = alive;
            let mut od_type = m.instance_type.clone();
            if action != "keep" {
                match &best {
                    None => decision.outcome = "failed: no safe capacity".into(),
                    Some(b) => {
                        let lc = if b.spot {
                            CloudLifecycle::Spot
                        } else {
                            CloudLifecycle::OnDemand
                        };
                        decision.to_pool =
                            Some(pool_name(&b.instance_type, &b.az, lifecycle_str(lc)));
                        decision.probability = Some(b.probability);
                        let mut tags = spot_cloud::Tags::new();
                        tags.insert(TAG_LAB.into(), t.tag_of(arm).to_string());
                        tags.insert(TAG_LAB_TEST.into(), t.id.clone());
                        tags.insert(TAG_MANAGED.into(), "true".into());
                        let token: String =
                            format!("lab-{}-{arm}{}-{tick}", t.id.replace('-', ""), m.slot)
                                .chars()
                                .take(64)
                                .collect();
                        let req = LaunchRequest {
                            instance_type: b.instance_type.clone(),
                            az: Some(b.az.clone()),
                            subnet_id: None,
                            lifecycle: lc,
                            count: 1,
                            tags,
                            client_token: token,
                            asg_name: None,
                        };
                        match cloud.launch_capacity(&req, false).await {
                            Ok(Mutation::Applied(r)) if !r.instances.is_empty() => {
                                let new_id = r.instances[0].id.clone();
                                if alive {
                                    if let Err(e) = cloud
                                        .terminate_instances(
                                            std::slice::from_ref(&m.instance_id),
                                            false,
                                        )
                                        .await
                                    {
                                        tracing::warn!(component = COMPONENT, instance = %m.instance_id, error = %e, "old A/B instance not terminated");
                                    }
                                }
                                let _ = store::move_member(
                                    db,
                                    &t.id,
                                    arm,
                                    m.slot,
                                    &new_id,
                                    &b.instance_type,
                                    &b.az,
                                    lifecycle_str(lc),
                                )
                                .await;
                                decision.outcome = "applied".into();
                                decision.new_instance_id = Some(new_id);
                                cost = b.hourly;
                                od_type = b.instance_type.clone();
                                counted_running = true;
                                changes += 1;
                            }
                            Ok(_) => decision.outcome = "failed: nothing launched".into(),
                            Err(e) => {
                                decision.outcome =
                                    format!("failed: {}", spot_actors::system::human(&e))
                            }
                        }
                    }
                }
            }
            hourly += cost;
            if counted_running {
                on_demand += market.on_demand.get(&od_type).copied().unwrap_or(0.0);
            }
            running += i64::from(counted_running);
            store::insert_decision(db, &decision)
                .await
                .map_err(|e| e.to_string())?;
            if decision.action != "keep" {
                audit::append(
                    db,
                    NewAuditRecord {
                        organization_id: Some(t.organization_id.clone()),
                        actor_kind: "system".into(),
                        actor_component: Some(COMPONENT.into()),
                        action: format!("lab.ab_decision.{}", decision.action),
                        resource_type: "instance".into(),
                        resource_id: Some(decision.instance_id.clone()),
                        outcome: if decision.outcome == "applied" {
                            "success".into()
                        } else {
                            "failed".into()
                        },
                        request_id: t.id.clone(),
                        after: Some(serde_json::to_value(&decision).unwrap_or_default()),
                        ..Default::default()
                    },
                )
                .await
                .map_err(|e| e.to_string())?;
            }
        }
        let sample = store::Sample {
            test_id: t.id.clone(),
            tick,
            arm: arm.into(),
            at: spot_models::now_ms(),
            hourly_cost: hourly,
            on_demand_cost: on_demand,
            running,
            interruptions,
            decisions: changes,
        };
        store::insert_sample(db, &sample)
            .await
            .map_err(|e| e.to_string())?;
        deps.bus.publish(
            None,
            "lab.ab_tick",
            json!({"test_id": t.id, "tick": tick, "arm": arm, "model": model.id, "sample": sample}),
        );
    }
    Ok(())
}

/// The Lab evidence of a model and its safety checklist.
pub async fn checklist_of(
    db: &spot_models::Db,
    model_id: &str,
) -> Result<pure::Checklist, spot_models::DbError> {
    let mut switches = Vec::new();
    for s in store::switches_of_model(db, model_id).await? {
        if s.status != store::SUCCEEDED && s.status != store::FAILED {
            continue;
        }
        let phases = store::phases(db, &s.id).await?;
        let secs = |name: &str| {
            phases
                .iter()
                .find(|p| p.name == name && p.status == "done")
                .and_then(|p| p.duration_ms)
                .map(|ms| ms as f64 / 1000.0)
        };
        switches.push(pure::SwitchEvidence {
            id: s.id.clone(),
            succeeded: s.status == store::SUCCEEDED,
            boot_secs: secs("boot"),
            node_ready_secs: secs("node_ready"),
        });
    }
    let tests = store::ended_tests_of_model(db, model_id).await?;
    let mut ab = None;
    if let Some(t) = tests.iter().rev().find(|t| t.model_a != t.model_b) {
        let v = verdict_of(db, t).await?;
        let (candidate, control, control_model) = if t.model_a == model_id {
            (v.a, v.b, t.model_b.clone())
        } else {
            (v.b, v.a, t.model_a.clone())
        };
        ab = Some(pure::AbEvidence {
            id: t.id.clone(),
            candidate,
            control,
            control_model,
        });
    }
    Ok(pure::checklist(&switches, ab.as_ref()))
}

/// Set of the instance ids any running A/B test holds (they cannot be switched meanwhile).
pub async fn busy_instances(
    db: &spot_models::Db,
) -> Result<BTreeSet<String>, spot_models::DbError> {
    let mut out = BTreeSet::new();
    for t in store::list_ab_tests(db, 1000).await? {
        if t.status != store::RUNNING {
            continue;
        }
        for m in store::members(db, &t.id).await? {
            out.insert(m.instance_id);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::data_volumes;
    use chrono::{TimeZone, Utc};
    use spot_cloud::{Instance, InstanceState, Lifecycle, Volume, VolumeState, VolumeType};

    fn inst(root: Option<&str>) -> Instance {
        Instance {
            id: "i-1".into(),
            instance_type: "m5.large".into(),
            lifecycle: Lifecycle::OnDemand,
            state: InstanceState::Running,
            az: "us-east-1a".into(),
            tags: Default::default(),
            launch_time: Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap(),
            cluster: None,
            asg_name: None,
            private_ip: None,
            root_device_name: root.map(str::to_string),
        }
    }

    fn vol(id: &str, device: Option<&str>, secs_after_launch: i64) -> Volume {
        Volume {
            id: id.into(),
            size_gib: 20,
            volume_type: VolumeType::Gp3,
            state: VolumeState::InUse,
            az: "us-east-1a".into(),
            create_time: Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap()
                + chrono::Duration::seconds(secs_after_launch),
            attached_instance_id: Some("i-1".into()),
            device: device.map(str::to_string),
            last_attached: None,
            tags: Default::default(),
        }
    }

    fn ids(v: Vec<Volume>) -> Vec<String> {
        v.into_iter().map(|v| v.id).collect()
    }

    #[test]
    fn the_root_device_decides_even_when_a_data_volume_was_created_with_it() {
        // A launch template's data volume is created in the same second as the root and
        // sorts first by id: by creation time alone it would pass for the root.
        let vols = [
            vol("vol-0a-data", Some("/dev/sdf"), 0),
            vol("vol-0b-root", Some("/dev/xvda"), 0),
            vol("vol-0c-later", Some("/dev/sdg"), 3_600),
        ];
        assert_eq!(
            ids(data_volumes(&inst(Some("/dev/xvda")), &vols)),
            ["vol-0a-data", "vol-0c-later"]
        );
        // Another instance's volumes are never this one's.
        let mut other = vol("vol-0d-other", Some("/dev/sdh"), 0);
        other.attached_instance_id = Some("i-2".into());
        assert_eq!(
            ids(data_volumes(&inst(Some("/dev/xvda")), &[other])),
            Vec::<String>::new()
        );
    }

    #[test]
    fn without_device_names_the_volume_created_at_launch_is_the_root() {
        let vols = [vol("vol-root", None, 5), vol("vol-data", None, 7_200)];
        assert_eq!(ids(data_volumes(&inst(None), &vols)), ["vol-data"]);
        assert_eq!(
            ids(data_volumes(&inst(Some("/dev/xvda")), &vols)),
            ["vol-data"]
        );
    }
}
