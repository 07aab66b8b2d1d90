//! Cluster hibernation as the cluster actor executes it: on every tick (and at once on a
//! "sleep now" / "wake now") the stored schedule is evaluated by the engine, and when the
//! desired state differs from the stored one the cluster is put to sleep or woken through
//! the `Cloud` port:
//!
//! - sleep: with a connected agent the nodes of the chosen groups are drained first (best
//!   effort; the node running most pods of a protected namespace is left alone and its
//!   group keeps one node), then the groups' min / max / desired are remembered and the
//!   groups scaled to zero;
//! - wake: every remembered group gets exactly its remembered sizes back and, with an
//!   agent, the new nodes are awaited Ready.
//!
//! Transitions are idempotent (remembered sizes are written once per sleep, before any
//! group is touched; a group already at its target is left alone) and driven by state,
//! not by events: after downtime the first tick finds the stored state different from
//! the desired one and makes one `catch_up` transition, however many scheduled changes
//! were missed. Each transition is recorded, audited as `system` and published.

use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::json;
use spot_agent_protocol::{CommandKind, CommandOutcome, PodPhase};
use spot_cloud::{AsgUpdate, AutoScalingGroup, Cloud, TAG_EKS_CLUSTER, TAG_K8S_CLUSTER_PREFIX};
use spot_engine::hibernate::{self as hib, DayMode, GroupSize, Manual, Power, Schedule};
use spot_models::audit::{self, NewAuditRecord};
use spot_models::hibernation::{self as store, ScheduleRow};
use spot_models::{agents, inventory};

use crate::system::Deps;

pub const COMPONENT: &str = "CORE-HIBERNATE";
/// Time between two evaluations of a cluster's schedule. Transitions fall on quarter
/// hours (or pre-warm minutes before them), so they start at most this late.
pub const TICK: Duration = Duration::from_secs(15);
/// How long a sleep waits for the agent's cordons and drains, all nodes together, before
/// scaling down anyway (the agent works through its commands one at a time).
pub const DRAIN_TIMEOUT: Duration = Duration::from_secs(120);
/// How long one node's drain may wait on PodDisruptionBudgets. A budget that blocks while
/// the whole group goes to sleep will not unblock (the pods have nowhere to go), so the
/// drain gives up soon and the scale-down terminates the pods with their grace period.
pub const NODE_DRAIN_SECS: u64 = 20;
/// How long the cordons may take.
const CORDON_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a wake waits for the new nodes to turn Ready (best effort, reported).
pub const READY_TIMEOUT: Duration = Duration::from_secs(300);
const POLL: Duration = Duration::from_millis(250);

/// What started a transition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cause {
    Schedule,
    Manual,
    /// The first evaluation after the actor started found the cluster in the wrong state
    /// (a transition was missed while no replica ran it).
    CatchUp,
}

impl Cause {
    pub fn as_str(self) -> &'static str {
        match self {
            Cause::Schedule => "schedule",
            Cause::Manual => "manual",
            Cause::CatchUp => "catch_up",
        }
    }
}

/// The engine's schedule from a stored row.
pub fn schedule_of(row: &ScheduleRow) -> Result<Schedule, String> {
    let bad = |e: hib::ScheduleError| format!("stored schedule is invalid: {e}");
    let holidays: Vec<String> = serde_json::from_str(&row.holidays).map_err(|e| e.to_string())?;
    let overrides: Vec<StoredOverride> =
        serde_json::from_str(&row.overrides).map_err(|e| e.to_string())?;
    let manual = match row.manual_state.as_deref().and_then(Power::parse) {
        Some(power) => Some(Manual {
            power,
            until: row
                .manual_until
                .and_then(DateTime::<Utc>::from_timestamp_millis),
        }),
        None => None,
    };
    Ok(Schedule {
        enabled: row.enabled != 0,
        slots: hib::slots_from_string(&row.slots).map_err(bad)?,
        tz: hib::parse_tz(&row.timezone).map_err(bad)?,
        prewarm_minutes: hib::check_prewarm(row.prewarm_minutes).map_err(bad)?,
        holidays: holidays
            .iter()
            .map(|d| hib::parse_date("holidays", d))
            .collect::<Result<_, _>>()
            .map_err(bad)?,
        overrides: overrides
            .iter()
            .map(|o| Ok((hib::parse_date("overrides", &o.date)?, o.mode)))
            .collect::<Result<BTreeMap<_, _>, hib::ScheduleError>>()
            .map_err(bad)?,
        manual,
    })
}

/// A per-date override as stored (`{"date": "YYYY-MM-DD", "mode": "sleep" | "awake"}`).
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct StoredOverride {
    pub date: String,
    pub mode: DayMode,
}

/// Whether an Auto Scaling group belongs to the cluster (EKS and Kubernetes tags).
pub fn in_cluster(g: &AutoScalingGroup, cluster: &str) -> bool {
    g.tags.get(TAG_EKS_CLUSTER).is_some_and(|c| c == cluster)
        || g.tags
            .contains_key(&format!("{TAG_K8S_CLUSTER_PREFIX}{cluster}"))
}

fn size_of(g: &AutoScalingGroup) -> GroupSize {
    GroupSize {
        name: g.name.clone(),
        min: g.min_size,
        max: g.max_size,
        desired: g.desired_capacity,
    }
}

/// One cluster as the hibernation tick sees it.
pub struct Target<'a> {
    pub deps: &'a Deps,
    pub cloud: &'a dyn Cloud,
    pub org_id: &'a str,
    pub account_id: &'a str,
    pub cluster_id: &'a str,
    pub cluster: &'a str,
}

/// What a reconcile did.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Outcome {
    /// `awake`, `asleep` or `transitioning` after the reconcile.
    pub state: String,
    /// The transition made, if any (`success`, `partial` or `failed`).
    pub transition: Option<String>,
}

/// Brings the cluster to the state its schedule wants now. `first` marks the first
/// evaluation since the actor started (a change then is a catch-up); `manual` marks an
/// evaluation asked for by "sleep now" / "wake now".
pub async fn reconcile(t: &Target<'_>, first: bool, manual: bool) -> Result<Outcome, String> {
    let db = &t.deps.db;
    let row = store::schedule(db, t.org_id, t.cluster_id)
        .await
        .map_err(|e| e.to_string())?;
    let stored = store::state(db, t.org_id, t.cluster_id)
        .await
        .map_err(|e| e.to_string())?;
    let current = stored
        .as_ref()
        .map_or("awake".to_string(), |s| s.state.clone());
    let Some(row) = row else {
        return Ok(Outcome {
            state: current,
            transition: None,
        });
    };
    let schedule = schedule_of(&row)?;
    let now = Utc::now();
    let eval = schedule.evaluate(now);
    let desired = eval.power;
    if let Some(at) = crate::presleep::due(&current, &eval, now) {
        crate::presleep::notify(t, at, schedule.tz, now).await;
    }
    if current == desired.as_str() {
        return Ok(Outcome {
            state: current,
            transition: None,
        });
    }
    let cause = if eval.reason == hib::Reason::Manual || manual {
        Cause::Manual
    } else if first {
        Cause::CatchUp
    } else {
        Cause::Schedule
    };
    let reason = serde_json::to_value(eval.reason)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default();
    let node_groups: Vec<String> = serde_json::from_str(&row.node_groups).unwrap_or_default();
    let protected: Vec<String> =
        serde_json::from_str(&row.protected_namespaces).unwrap_or_default();
    let from = stored
        .as_ref()
        .map(|s| s.target.clone().filter(|_| s.state == "transitioning"))
        .and_then(|x| x)
        .map_or(current.clone(), |tg| format!("transitioning:{tg}"));
    store::set_state(
        db,
        t.org_id,
        t.cluster_id,
        "transitioning",
        Some(desired.as_str()),
        stored.as_ref().map_or(0.0, |s| s.saving_hourly),
        None,
    )
    .await
    .map_err(|e| e.to_string())?;
    let result = match desired {
        Power::Asleep => sleep(t, &node_groups, &protected).await,
        Power::Awake => wake(t).await,
    };
    let (outcome, saving, detail, error) = match result {
        Ok(done) => (
            if done.problems.is_empty() {
                "success"
            } else {
                "partial"
            },
            done.saving_hourly,
            done.detail,
            None,
        ),
        Err(failed) => ("failed", 0.0, failed.detail, Some(failed.message)),
    };
    let state = if error.is_some() {
        "transitioning"
    } else {
        desired.as_str()
    };
    let previous_error = stored.as_ref().and_then(|s| s.last_error.clone());
    store::set_state(
        db,
        t.org_id,
        t.cluster_id,
        state,
        error.as_ref().map(|_| desired.as_str()),
        if desired == Power::Asleep {
            saving
        } else {
            0.0
        },
        error.as_deref(),
    )
    .await
    .map_err(|e| e.to_string())?;
    // A failing transition is retried every tick; it is recorded once per distinct error.
    let repeated = error.is_some() && error == previous_error;
    if !repeated {
        let detail_text = detail.to_string();
        if let Err(e) = store::record_transition(
            db,
            t.org_id,
            t.cluster_id,
            &store::NewTransition {
                from_state: &from,
                to_state: desired.as_str(),
                cause: cause.as_str(),
                reason: &reason,
                outcome,
                saving_hourly: saving,
                detail: &detail_text,
            },
        )
        .await
        {
            tracing::error!(component = COMPONENT, error = %e, "transition not recorded");
        }
        let after = json!({
            "cluster": t.cluster,
            "from": from,
            "to": desired.as_str(),
            "cause": cause.as_str(),
            "reason": reason,
            "saving_hourly": saving,
            "error": error,
            "detail": detail,
        });
        audit_system(t, desired, outcome, after.clone()).await;
        t.deps.bus.publish(
            Some(t.org_id),
            if outcome == "failed" {
                "hibernation.failed"
            } else {
                "hibernation.changed"
            },
            json!({"cluster_id": t.cluster_id, "account_id": t.account_id, "state": state, "transition": after}),
        );
    }
    tracing::info!(component = COMPONENT, cluster = %t.cluster, to = desired.as_str(), cause = cause.as_str(), outcome, "hibernation transition");
    Ok(Outcome {
        state: state.to_string(),
        transition: Some(outcome.to_string()),
    })
}

async fn audit_system(t: &Target<'_>, to: Power, outcome: &str, after: serde_json::Value) {
    let rec = NewAuditRecord {
        organization_id: Some(t.org_id.to_string()),
        actor_kind: "system".into(),
        actor_component: Some(COMPONENT.into()),
        action: match to {
            Power::Asleep => "cluster.hibernation.sleep".into(),
            Power::Awake => "cluster.hibernation.wake".into(),
        },
        resource_type: "cluster".into(),
        resource_id: Some(t.cluster_id.to_string()),
        outcome: if outcome == "failed" {
            "failed".into()
        } else {
            "success".into()
        },
        request_id: uuid::Uuid::new_v4().to_string(),
        after: Some(after),
        ..Default::default()
    };
    if let Err(e) = audit::append(&t.deps.db, rec).await {
        tracing::error!(component = "CORE-AUDIT", error = %e, "audit append failed");
    }
}

struct Done {
    saving_hourly: f64,
    /// Best-effort steps that did not work (drains, Ready waits).
    problems: Vec<String>,
    detail: serde_json::Value,
}

struct Failed {
    message: String,
    detail: serde_json::Value,
}

fn failed(message: String, detail: serde_json::Value) -> Failed {
    Failed { message, detail }
}

/// The cluster's groups (all, or the chosen ones that exist).
async fn cluster_groups(
    t: &Target<'_>,
    chosen: &[String],
) -> Result<Vec<AutoScalingGroup>, String> {
    let all = t
        .cloud
        .describe_auto_scaling_groups()
        .await
        .map_err(|e| format!("describing Auto Scaling groups failed: {e}"))?;
    Ok(all
        .into_iter()
        .filter(|g| in_cluster(g, t.cluster))
        .filter(|g| chosen.is_empty() || chosen.contains(&g.name))
        .collect())
}

async fn sleep(t: &Target<'_>, chosen: &[String], protected: &[String]) -> Result<Done, Failed> {
    let db = &t.deps.db;
    let groups = cluster_groups(t, chosen)
        .await
        .map_err(|e| failed(e, json!({})))?;
    let members: HashSet<&str> = groups
        .iter()
        .flat_map(|g| g.instance_ids.iter().map(String::as_str))
        .collect();
    let mut problems = Vec::new();
    let mut drained = Vec::new();
    let mut attempted: Vec<String> = Vec::new();
    let mut kept: Option<(String, Option<String>)> = None;
    let connected = agents::is_connected(db, t.org_id, t.cluster_id, Utc::now())
        .await
        .unwrap_or(false);
    let view = if connected {
        agents::cluster_view(db, t.org_id, t.cluster_id)
            .await
            .ok()
            .flatten()
    } else {
        None
    };
    if let Some(view) = &view {
        // The node running most pods of protected namespaces stays (with its group).
        let mut protected_pods: BTreeMap<&str, usize> = BTreeMap::new();
        for p in &view.pods {
            if protected.contains(&p.namespace)
                && matches!(p.phase, PodPhase::Running | PodPhase::Pending)
            {
                if let Some(n) = &p.node_name {
                    *protected_pods.entry(n.as_str()).or_default() += 1;
                }
            }
        }
        let keep_node = protected_pods
            .iter()
            .filter(|(n, _)| {
                view.nodes.iter().any(|x| {
                    x.name == **n
                        && x.instance_id
                            .as_deref()
                            .is_some_and(|i| members.contains(i))
                })
            })
            .max_by(|a, b| a.1.cmp(b.1).then(b.0.cmp(a.0)))
            .map(|(n, _)| n.to_string());
        if let Some(node) = keep_node {
            let instance = view
                .nodes
                .iter()
                .find(|x| x.name == node)
                .and_then(|x| x.instance_id.clone());
            kept = Some((node, instance));
        }
        let to_drain: Vec<String> = view
            .nodes
            .iter()
            .filter(|n| {
                n.instance_id
                    .as_deref()
                    .is_some_and(|i| members.contains(i))
            })
            .filter(|n| kept.as_ref().is_none_or(|(k, _)| *k != n.name))
            .map(|n| n.name.clone())
            .collect();
        let attempt = uuid::Uuid::new_v4().to_string();
        // Cordon every node first, so evicted pods do not land on a node about to sleep.
        let until = tokio::time::Instant::now() + CORDON_TIMEOUT;
        let cordons = to_drain.iter().map(|node| {
            let key = format!("hibernate:{attempt}:cordon:{node}");
            let kind = CommandKind::Cordon { node: node.clone() };
            async move { (node.clone(), run_command(t, &key, &kind, until).await) }
        });
        for (node, r) in futures_util::future::join_all(cordons).await {
            if let Err(e) = r {
                problems.push(format!("cordon of {node}: {e}"));
            }
        }
        let until = tokio::time::Instant::now() + DRAIN_TIMEOUT;
        let drains = to_drain.iter().map(|node| {
            let key = format!("hibernate:{attempt}:drain:{node}");
            let kind = CommandKind::Drain {
                node: node.clone(),
                timeout_secs: NODE_DRAIN_SECS,
                grace_period_secs: None,
            };
            async move { (node.clone(), run_command(t, &key, &kind, until).await) }
        });
        for (node, r) in futures_util::future::join_all(drains).await {
            match r {
                Ok(()) => drained.push(node),
                Err(e) => problems.push(format!("drain of {node}: {e}")),
            }
        }
        attempted = to_drain;
    } else if !protected.is_empty() {
        // Without the agent's view the pods are unknown: keep one node of the first group
        // that has any, rather than risk the protected namespaces.
        if let Some(g) = groups.iter().find(|g| !g.instance_ids.is_empty()) {
            kept = Some((String::new(), g.instance_ids.first().cloned()));
        }
        problems.push("no connected agent: nodes were not drained and protected namespaces could not be located (one node kept)".into());
    }
    let keep_group = kept.as_ref().and_then(|(_, i)| {
        i.as_ref().and_then(|i| {
            groups
                .iter()
                .find(|g| g.instance_ids.contains(i))
                .map(|g| g.name.clone())
        })
    });
    let current: Vec<GroupSize> = groups.iter().map(size_of).collect();
    let remembered = remembered_sizes(t)
        .await
        .map_err(|e| failed(e, json!({})))?;
    let names: Vec<String> = current.iter().map(|g| g.name.clone()).collect();
    let plan = hib::plan_sleep(&current, &names, keep_group.as_deref(), &remembered);
    // Remember before touching anything: a crash after this point retries with the
    // original sizes.
    let rows: Vec<(String, i64, i64, i64)> = plan
        .remember
        .iter()
        .map(|g| {
            (
                g.name.clone(),
                i64::from(g.min),
                i64::from(g.max),
                i64::from(g.desired),
            )
        })
        .collect();
    store::remember(db, t.cluster_id, &rows)
        .await
        .map_err(|e| failed(format!("remembering group sizes failed: {e}"), json!({})))?;
    // The hourly price of what the sleep removes, and of the whole cluster before it (the
    // 24/7 baseline), at the inventory's current prices.
    let kept_instance = kept.as_ref().and_then(|(_, i)| i.clone());
    let running: Vec<inventory::InstanceView> =
        inventory::cluster_instances(db, t.org_id, t.cluster_id)
            .await
            .unwrap_or_default()
            .into_iter()
            .filter(|i| i.state == "running")
            .collect();
    let saving_hourly: f64 = running
        .iter()
        .filter(|i| members.contains(i.instance_id.as_str()))
        .filter(|i| Some(&i.instance_id) != kept_instance.as_ref())
        .map(|i| i.hourly_price)
        .sum();
    let cluster_hourly: f64 = running.iter().map(|i| i.hourly_price).sum();
    // The group keeping a node must keep *that* node: a plain scale-in to one would let
    // the group choose which instance to terminate. So its other instances leave the group
    // first (lowering its desired capacity, nothing is replaced) and are terminated after.
    let mut released = Vec::new();
    let mut keep_errors = Vec::new();
    if let (Some(group), Some(instance)) = (&keep_group, &kept_instance) {
        if let Some(g) = groups.iter().find(|g| &g.name == group) {
            let others: Vec<String> = g
                .instance_ids
                .iter()
                .filter(|i| *i != instance)
                .cloned()
                .collect();
            if !others.is_empty() {
                let lower_min = AsgUpdate {
                    name: group.clone(),
                    min_size: Some(0),
                    ..AsgUpdate::default()
                };
                match t.cloud.update_auto_scaling_group(&lower_min, false).await {
                    Ok(_) => match t
                        .cloud
                        .detach_from_auto_scaling_group(group, &others, false)
                        .await
                    {
                        Ok(_) => released = others,
                        Err(e) => keep_errors.push(format!("{group}: detaching failed: {e}")),
                    },
                    Err(e) => keep_errors.push(format!("{group}: {e}")),
                }
            }
        }
    }
    let (changed, mut errors) = apply(t, &plan.set).await;
    errors.extend(keep_errors);
    if !released.is_empty() {
        if let Err(e) = t.cloud.terminate_instances(&released, false).await {
            errors.push(format!("terminating {released:?} failed: {e}"));
        }
    }
    let detail = json!({
        "cluster_hourly": cluster_hourly,
        "groups": plan.set,
        "remembered": plan.remember,
        "drain_attempted": attempted,
        "drained": drained,
        "kept_node": kept.as_ref().map(|(n, i)| json!({"node": n, "instance_id": i})),
        "kept_group": keep_group,
        "released": released,
        "agent": connected,
        "problems": problems,
        "errors": errors,
        "changed": changed,
    });
    if !errors.is_empty() {
        return Err(failed(errors.join("; "), detail));
    }
    Ok(Done {
        saving_hourly,
        problems,
        detail,
    })
}

async fn wake(t: &Target<'_>) -> Result<Done, Failed> {
    let db = &t.deps.db;
    let remembered = remembered_sizes(t)
        .await
        .map_err(|e| failed(e, json!({})))?;
    let names: Vec<String> = remembered.iter().map(|g| g.name.clone()).collect();
    let groups = cluster_groups(t, &names)
        .await
        .map_err(|e| failed(e, json!({})))?;
    let current: Vec<GroupSize> = groups.iter().map(size_of).collect();
    let before: HashSet<String> = groups
        .iter()
        .flat_map(|g| g.instance_ids.iter().cloned())
        .collect();
    let set = hib::plan_wake(&current, &remembered);
    let (changed, errors) = apply(t, &set).await;
    let missing: Vec<&String> = names
        .iter()
        .filter(|n| !groups.iter().any(|g| &g.name == *n))
        .collect();
    let mut detail =
        json!({"groups": set, "changed": changed, "errors": errors, "missing_groups": missing});
    if !errors.is_empty() {
        return Err(failed(errors.join("; "), detail));
    }
    store::forget(db, t.cluster_id).await.map_err(|e| {
        failed(
            format!("forgetting group sizes failed: {e}"),
            detail.clone(),
        )
    })?;
    let mut problems = Vec::new();
    if agents::is_connected(db, t.org_id, t.cluster_id, Utc::now())
        .await
        .unwrap_or(false)
    {
        let launched: Vec<String> = match cluster_groups(t, &names).await {
            Ok(gs) => gs
                .iter()
                .flat_map(|g| g.instance_ids.iter().cloned())
                .filter(|i| !before.contains(i))
                .collect(),
            Err(e) => {
                problems.push(e);
                Vec::new()
            }
        };
        match wait_ready(t, &launched, READY_TIMEOUT).await {
            Ok(n) => detail["ready_nodes"] = json!(n),
            Err(e) => problems.push(e),
        }
    }
    detail["problems"] = json!(problems);
    Ok(Done {
        saving_hourly: 0.0,
        problems,
        detail,
    })
}

async fn remembered_sizes(t: &Target<'_>) -> Result<Vec<GroupSize>, String> {
    Ok(store::remembered(&t.deps.db, t.cluster_id)
        .await
        .map_err(|e| format!("reading remembered sizes failed: {e}"))?
        .into_iter()
        .map(|r| GroupSize {
            name: r.asg_name,
            min: u32::try_from(r.min_size).unwrap_or(0),
            max: u32::try_from(r.max_size).unwrap_or(0),
            desired: u32::try_from(r.desired_capacity).unwrap_or(0),
        })
        .collect())
}

/// Sets each group's sizes; returns the groups changed and the errors.
async fn apply(t: &Target<'_>, set: &[GroupSize]) -> (Vec<String>, Vec<String>) {
    let (mut changed, mut errors) = (Vec::new(), Vec::new());
    for g in set {
        let update = AsgUpdate {
            name: g.name.clone(),
            min_size: Some(g.min),
            max_size: Some(g.max),
            desired_capacity: Some(g.desired),
        };
        match t.cloud.update_auto_scaling_group(&update, false).await {
            Ok(_) => changed.push(g.name.clone()),
            Err(e) => errors.push(format!("{}: {e}", g.name)),
        }
    }
    (changed, errors)
}

/// Queues an agent command and waits for its result until `until` (the command expires
/// then if the agent has not finished it).
async fn run_command(
    t: &Target<'_>,
    key: &str,
    kind: &CommandKind,
    until: tokio::time::Instant,
) -> Result<(), String> {
    let db = &t.deps.db;
    let left = until.saturating_duration_since(tokio::time::Instant::now());
    let deadline =
        Utc::now() + chrono::Duration::from_std(left).unwrap_or_else(|_| chrono::Duration::zero());
    let cmd = agents::enqueue_command(
        db,
        t.org_id,
        t.cluster_id,
        key,
        kind,
        deadline,
        "system:hibernation",
    )
    .await
    .map_err(|e| format!("not queued: {e}"))?
    .ok_or("the cluster no longer exists")?;
    // A little past the deadline, so the expiry (or a late result) is read.
    let give_up = until + Duration::from_secs(5);
    loop {
        let _ = agents::expire_commands(db, Some(t.cluster_id), Utc::now()).await;
        if let Ok(Some(c)) = agents::command(db, t.org_id, &cmd.id).await {
            if c.status.is_final() {
                return match &c.result {
                    Some(r) if r.outcome == CommandOutcome::Succeeded => Ok(()),
                    Some(r) => Err(r.message.clone()),
                    None => Err(c.reason.unwrap_or_else(|| "no result".into())),
                };
            }
        }
        if tokio::time::Instant::now() >= give_up {
            return Err("no result from the agent in time".into());
        }
        tokio::time::sleep(POLL).await;
    }
}

/// Waits until the agent reports each instance as a Ready node; returns their names.
async fn wait_ready(
    t: &Target<'_>,
    instance_ids: &[String],
    timeout: Duration,
) -> Result<Vec<String>, String> {
    let give_up = tokio::time::Instant::now() + timeout;
    loop {
        if let Ok(Some(view)) = agents::cluster_view(&t.deps.db, t.org_id, t.cluster_id).await {
            let ready: Vec<String> = instance_ids
                .iter()
                .filter_map(|id| {
                    view.nodes
                        .iter()
                        .find(|n| n.instance_id.as_deref() == Some(id) && n.ready)
                        .map(|n| n.name.clone())
                })
                .collect();
            if ready.len() == instance_ids.len() {
                return Ok(ready);
            }
        }
        if tokio::time::Instant::now() >= give_up {
            return Err(format!(
                "nodes of {instance_ids:?} not Ready after {} s",
                timeout.as_secs()
            ));
        }
        tokio::time::sleep(POLL).await;
    }
}

/// The id of the cluster named `cluster` in the account (from the inventory).
pub async fn cluster_id_of(
    deps: &Deps,
    org_id: &str,
    account_id: &str,
    cluster: &str,
) -> Option<String> {
    inventory::list_clusters(&deps.db, org_id, Some(account_id))
        .await
        .ok()?
        .into_iter()
        .find(|c| c.name == cluster)
        .map(|c| c.id)
}
