//! One actor per linked account: discovery every interval (diff-applied), the scored
//! market for its cluster actors, and the account's spot signals every 15 seconds.

use super::*;

// ---------------------------------------------------------------------------------------
// Account actor

pub enum AccountMsg {
    Discover,
    /// Read the spot signals since the last poll.
    Signals,
    Clusters(RpcReplyPort<usize>),
    /// The account's model id and its cluster actors' model ids.
    Models(RpcReplyPort<(String, Vec<String>)>),
    SwapModel(Arc<ActiveModel>),
    /// Forward to one cluster actor (dropped, with its reply port, if there is none).
    ToCluster(String, ClusterMsg),
    Panic,
}

pub(super) struct AccountActor;

pub struct AccountState {
    deps: Deps,
    account_id: String,
    clusters: HashMap<String, ActorRef<ClusterMsg>>,
    last_events: chrono::DateTime<chrono::Utc>,
    consecutive_errors: u32,
    model: Arc<ActiveModel>,
    org_id: String,
    market: Option<Arc<crate::market::Market>>,
    /// The cloud connection of the last successful discovery (for the signal tick).
    cloud: Option<Arc<dyn Cloud>>,
    /// Instances of the last discovery by id.
    instances: HashMap<String, SeenInstance>,
    /// Signals already handled at `last_events` (instance id, kind).
    seen_events: std::collections::HashSet<(String, String)>,
}

#[ractor::async_trait]
impl Actor for AccountActor {
    type Msg = AccountMsg;
    type State = AccountState;
    /// The shared dependencies, the account, and how long to wait before the first
    /// discovery (zero on a fresh start; a restarted actor waits, see
    /// [`super::supervisor::first_discovery_after_restart`]).
    type Arguments = (Deps, String, Duration);

    async fn pre_start(
        &self,
        myself: ActorRef<AccountMsg>,
        (deps, account_id, first_discovery): (Deps, String, Duration),
    ) -> Result<AccountState, ActorProcessingErr> {
        if first_discovery.is_zero() {
            myself.cast(AccountMsg::Discover)?;
        } else {
            myself.send_after(first_discovery, || AccountMsg::Discover);
        }
        myself.send_interval(deps.interval, || AccountMsg::Discover);
        myself.send_interval(deps.interval.min(SIGNAL_INTERVAL), || AccountMsg::Signals);
        let org_id = accounts::by_id(&deps.db, &account_id)
            .await
            .ok()
            .flatten()
            .map(|a| a.organization_id)
            .unwrap_or_default();
        Ok(AccountState {
            org_id,
            market: None,
            model: deps.risk.current(),
            deps,
            account_id,
            clusters: HashMap::new(),
            last_events: chrono::Utc::now() - chrono::Duration::hours(1),
            consecutive_errors: 0,
            cloud: None,
            instances: HashMap::new(),
            seen_events: Default::default(),
        })
    }

    async fn handle(
        &self,
        myself: ActorRef<AccountMsg>,
        msg: AccountMsg,
        st: &mut AccountState,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            AccountMsg::Discover => discover_account(&myself, st).await,
            AccountMsg::Signals => {
                signal_tick(&myself, st).await;
                Ok(())
            }
            AccountMsg::Clusters(reply) => {
                let _ = reply.send(st.clusters.len());
                Ok(())
            }
            AccountMsg::Models(reply) => {
                let mut cm = Vec::new();
                for c in st.clusters.values() {
                    if let Ok(id) = ractor::call_t!(c, ClusterMsg::Model, 1000) {
                        cm.push(id);
                    }
                }
                let _ = reply.send((st.model.id.clone(), cm));
                Ok(())
            }
            AccountMsg::SwapModel(m) => {
                tracing::info!(component = risk_svc::COMPONENT, account_id = %st.account_id, from = %st.model.id, to = %m.id, "risk model swapped");
                for c in st.clusters.values() {
                    let _ = c.cast(ClusterMsg::SwapModel(m.clone()));
                }
                st.model = m;
                Ok(())
            }
            AccountMsg::ToCluster(name, msg) => {
                if let Some(c) = st.clusters.get(&name) {
                    let _ = c.cast(msg);
                }
                Ok(())
            }
            AccountMsg::Panic => panic!("injected fault in account actor {}", st.account_id),
        }
    }
}

/// Builds the connect target of a stored account (keys are decrypted in memory only).
pub(super) async fn audit_system(
    db: &Db,
    org_id: &str,
    account_id: &str,
    action: &str,
    outcome: &str,
    after: serde_json::Value,
) {
    let rec = NewAuditRecord {
        organization_id: Some(org_id.to_string()),
        actor_kind: "system".into(),
        actor_component: Some(COMPONENT.into()),
        action: action.into(),
        resource_type: "account".into(),
        resource_id: Some(account_id.to_string()),
        outcome: outcome.into(),
        request_id: uuid::Uuid::new_v4().to_string(),
        after: Some(after),
        ..Default::default()
    };
    if let Err(e) = audit::append(db, rec).await {
        tracing::error!(component = "CORE-AUDIT", error = %e, "audit append failed");
    }
}

pub(super) async fn discover_account(
    myself: &ActorRef<AccountMsg>,
    st: &mut AccountState,
) -> Result<(), ActorProcessingErr> {
    let deps = st.deps.clone();
    let Some(account) = accounts::by_id(&deps.db, &st.account_id).await? else {
        myself.stop(Some("account deleted".into()));
        return Ok(());
    };
    if account.status == "disconnected" || account.aws_account_id.is_none() {
        myself.stop(Some("account disconnected".into()));
        return Ok(());
    }
    let org = account.organization_id.clone();
    let first = account.status != "active";
    if first {
        accounts::set_scanning(&deps.db, &account.id).await?;
    }
    deps.bus.publish(
        Some(&org),
        "scan.progress",
        serde_json::json!({"account_id": account.id, "phase": "connecting", "progress": 5}),
    );
    let started = std::time::Instant::now();
    let model = st.model.clone();
    let ciphertext = accounts::credentials(&deps.db, &account.id).await?;
    let outcome: Result<(inventory::ApplyReport, Vec<String>), String> = async {
        let target = target_of(&deps.keyring, &account, ciphertext)?;
        let cloud = deps.connector.connect(&target).await.map_err(|e| human(&e))?;
        let bus = deps.bus.clone();
        let db = deps.db.clone();
        let (acc_id, org_id) = (account.id.clone(), org.clone());
        let progress = move |phase: &str, pct: i64| {
            bus.publish(Some(&org_id), "scan.progress", serde_json::json!({"account_id": acc_id, "phase": phase, "progress": pct}));
            let (db, acc_id, phase) = (db.clone(), acc_id.clone(), phase.to_string());
            if first {
                tokio::spawn(async move {
                    let _ = accounts::set_scan_progress(&db, &acc_id, &phase, pct, "{}").await;
                });
            }
        };
        let mut snap = discovery::discover(cloud.as_ref(), &progress).await.map_err(|e| human(&e))?;
        // The in-cluster agents' views are the source of nodes, pods and usage.
        if let Err(e) = discovery::overlay_agent_views(&deps.db, &org, &account.id, &mut snap).await {
            tracing::warn!(component = COMPONENT, error = %e, "agent views not read; cloud figures kept");
        }
        let names = snap.clusters.iter().map(|c| c.name.clone()).collect();
        let report = inventory::apply(&deps.db, &org, &account.id, &snap).await.map_err(|e| format!("saving the inventory failed: {e}"))?;
        // MOD-AI-01: score every pool the account runs in, with this actor's model.
        let pools: std::collections::HashSet<(String, String)> = snap
            .instances
            .iter()
            .filter(|i| i.state == "running")
            .map(|i| (i.instance_type.clone(), i.az.clone()))
            .collect();
        // Accounts with clusters or running instances read the whole market (every pool
        // scored): their cluster actors react to events with it, and the API serves an
        // instance's cheaper alternatives from it (no cloud call per request). An empty
        // account scores only the pools it runs in (none).
        let mut market = None;
        let scored = if snap.clusters.is_empty() && pools.is_empty() {
            risk_svc::score_pools(cloud.as_ref(), &model, deps.hive.as_ref(), &pools).await.map_err(|e| e.to_string())
        } else {
            match crate::market::read(cloud.as_ref(), &model, deps.hive.as_ref()).await {
                Ok(m) => {
                    let rows = m.scores.clone();
                    market = Some(Arc::new(m));
                    Ok(rows)
                }
                Err(e) => Err(e.to_string()),
            }
        };
        // A failed read keeps the last good market (its `read_at` says how old it is).
        if market.is_some() {
            deps.risk.set_market(&account.id, market.clone());
        }
        st.market = market;
        match scored {
            Ok(rows) => match spot_models::risk::upsert_pool_risk(&deps.db, &rows).await {
                Ok(n) => deps.bus.publish(Some(&org), "risk.scored", serde_json::json!({"account_id": account.id, "pools": n, "model": model.id})),
                Err(e) => tracing::warn!(component = risk_svc::COMPONENT, error = %e, "pool scores not saved"),
            },
            Err(e) => tracing::warn!(component = risk_svc::COMPONENT, error = %e, "pools not scored"),
        }
        // What the signal tick needs between discoveries: the connected cloud and which
        // cluster each instance belongs to.
        st.instances = snap
            .instances
            .iter()
            .map(|i| {
                (
                    i.instance_id.clone(),
                    SeenInstance {
                        cluster: i.cluster_name.clone(),
                        running_spot: i.lifecycle == "spot" && i.state == "running",
                    },
                )
            })
            .collect();
        st.cloud = Some(cloud.clone());
        st.org_id = org.clone();
        poll_signals(myself, st, cloud.as_ref()).await;
        Ok((report, names))
    }
    .await;
    match outcome {
        Ok((report, names)) => {
            st.consecutive_errors = 0;
            let counts = serde_json::json!({"instances": report.instances.total, "clusters": report.clusters.total, "volumes": report.volumes.total, "snapshots": report.snapshots.total});
            accounts::finish_scan(&deps.db, &account.id, &counts.to_string()).await?;
            accounts::touch_sync(&deps.db, &account.id).await?;
            ensure_clusters(myself, st, &names).await;
            if let Some(m) = &st.market {
                for c in st.clusters.values() {
                    let _ = c.cast(ClusterMsg::Market(m.clone()));
                }
            }
            if let Some(cloud) = &st.cloud {
                for c in st.clusters.values() {
                    let _ = c.cast(ClusterMsg::Cloud(cloud.clone()));
                }
            }
            // Each cluster actor decides with its cluster's node template as in force (a
            // force-on-demand override makes it on-demand only).
            if let Ok(views) = inventory::list_clusters(&deps.db, &org, Some(&account.id)).await {
                for v in views {
                    if let Some(actor) = st.clusters.get(&v.name) {
                        let (template, autoscaling) = match crate::policy::in_force(
                            &deps.db, &org, &v.id,
                        )
                        .await
                        {
                            Ok((p, _)) => (p.template, p.autoscaling),
                            Err(e) => {
                                tracing::warn!(component = COMPONENT, cluster = %v.name, error = %e, "policy unreadable; default template");
                                (NodeTemplate::default(), true)
                            }
                        };
                        let _ = actor.cast(ClusterMsg::Template(template));
                        let _ = actor.cast(ClusterMsg::Autoscaling(autoscaling));
                    }
                }
            }
            let ms = started.elapsed().as_millis() as i64;
            tracing::info!(component = COMPONENT, account_id = %account.id, ms, ?report, "discovery finished");
            deps.bus.publish(Some(&org), "scan.progress", serde_json::json!({"account_id": account.id, "phase": "done", "progress": 100, "counts": counts}));
            deps.bus.publish(
                Some(&org),
                "account.status",
                serde_json::json!({"account_id": account.id, "status": "active"}),
            );
            let changed = report.instances.new
                + report.instances.changed
                + report.instances.gone
                + report.clusters.new
                + report.clusters.gone
                + report.volumes.new
                + report.volumes.gone
                + report.snapshots.new
                + report.snapshots.gone;
            if changed > 0 {
                deps.bus.publish(
                    Some(&org),
                    "inventory.changed",
                    serde_json::to_value(&report).unwrap_or_default(),
                );
            }
            if first || changed > 0 {
                audit_system(&deps.db, &org, &account.id, "account.discovery", "success", serde_json::json!({"status": "active", "counts": counts, "diff": report, "duration_ms": ms})).await;
            }
        }
        Err(msg) => {
            st.consecutive_errors += 1;
            tracing::warn!(component = COMPONENT, account_id = %account.id, error = %msg, "discovery failed");
            accounts::mark_error(&deps.db, &account.id, &msg).await?;
            deps.bus.publish(
                Some(&org),
                "account.status",
                serde_json::json!({"account_id": account.id, "status": "error", "message": msg}),
            );
            if st.consecutive_errors == 1 {
                audit_system(
                    &deps.db,
                    &org,
                    &account.id,
                    "account.discovery",
                    "failed",
                    serde_json::json!({"status": "error", "message": msg}),
                )
                .await;
            }
        }
    }
    Ok(())
}

/// An instance as the last discovery saw it.
#[derive(Debug, Clone)]
pub(super) struct SeenInstance {
    cluster: Option<String>,
    running_spot: bool,
}

/// Reads the account's spot signals since the last poll (every [`SIGNAL_INTERVAL`] and
/// after each discovery): interruption and rebalance notices flag the pool in the
/// cross-tenant risk tracker (pool ids only), an interruption makes the node's cluster
/// actor decide its replacement and drains the node through the agent at once, and a spot
/// node that left unexpectedly triggers a discovery.
pub(super) async fn poll_signals(
    myself: &ActorRef<AccountMsg>,
    st: &mut AccountState,
    cloud: &dyn Cloud,
) {
    let deps = st.deps.clone();
    let org = st.org_id.clone();
    let account_id = st.account_id.clone();
    let region = cloud.region().to_string();
    let events = match cloud.poll_events(st.last_events).await {
        Ok(e) => e,
        Err(e) => {
            tracing::debug!(component = COMPONENT, account_id = %account_id, error = %e, "spot signals not read");
            return;
        }
    };
    let mut stale = false;
    for ev in events {
        // A notice already handled (polls overlap by the event time's resolution).
        if ev.time <= st.last_events
            && st
                .seen_events
                .contains(&(ev.instance_id.clone(), format!("{:?}", ev.kind)))
        {
            continue;
        }
        let (signal, kind) = match ev.kind {
            spot_cloud::SpotEventKind::InterruptionNotice => {
                (Some(RiskSignal::Interruption), "spot.interruption")
            }
            spot_cloud::SpotEventKind::RebalanceRecommendation => {
                (Some(RiskSignal::Rebalance), "spot.rebalance")
            }
            // Retirement / maintenance: the node should move as on a rebalance, but it
            // says nothing about the spot market, so the pool is not flagged.
            spot_cloud::SpotEventKind::ScheduledChange => (None, "spot.scheduled_change"),
            // A spot node discovery still saw running has left it: the inventory is
            // stale, discover again (once per poll).
            spot_cloud::SpotEventKind::InstanceStateChange { .. } => {
                stale |= st
                    .instances
                    .get(&ev.instance_id)
                    .is_some_and(|i| i.running_spot);
                (None, "instance.state_changed")
            }
        };
        let pool = PoolId {
            region: region.to_string(),
            az: ev.az.clone(),
            instance_type: ev.instance_type.clone(),
        };
        if let Some(signal) = signal {
            if let Err(e) = deps.hive.flag(&pool, signal, ev.time).await {
                tracing::warn!(component = "SVC-RISK-GLB", error = %e, "risk tracker unavailable");
            }
        }
        deps.bus.publish(Some(&org), kind, serde_json::json!({"account_id": account_id, "instance_id": ev.instance_id, "instance_type": ev.instance_type, "az": ev.az, "event": ev.kind}));
        // The node's cluster actor decides its replacement now (event-driven).
        if ev.kind == spot_cloud::SpotEventKind::InterruptionNotice {
            let cluster = st
                .instances
                .get(&ev.instance_id)
                .and_then(|i| i.cluster.clone());
            if let Some(actor) = cluster.as_ref().and_then(|c| st.clusters.get(c)) {
                let _ = actor.cast(ClusterMsg::Interruption {
                    instance_id: ev.instance_id.clone(),
                    instance_type: ev.instance_type.clone(),
                    az: ev.az.clone(),
                });
            }
            // The node leaves in two minutes: cordon and drain it through the agent now.
            if let Some(c) = &cluster {
                crate::signals::drain_interrupted(&deps, &org, &account_id, c, &ev.instance_id)
                    .await;
            }
        }
        if ev.time > st.last_events {
            st.seen_events.clear();
            st.last_events = ev.time;
        }
        st.seen_events
            .insert((ev.instance_id.clone(), format!("{:?}", ev.kind)));
    }
    if stale {
        let _ = myself.cast(AccountMsg::Discover);
    }
}

/// Time between two reads of an account's spot signals (interruption notices give two
/// minutes; the drain must start well inside them).
pub const SIGNAL_INTERVAL: Duration = Duration::from_secs(15);

pub(super) async fn signal_tick(myself: &ActorRef<AccountMsg>, st: &mut AccountState) {
    // The connection and the organization of the last successful discovery: no database
    // read or reconnection every 15 seconds.
    if let Some(cloud) = st.cloud.clone() {
        poll_signals(myself, st, cloud.as_ref()).await;
    }
}

pub(super) async fn ensure_clusters(
    myself: &ActorRef<AccountMsg>,
    st: &mut AccountState,
    names: &Vec<String>,
) {
    st.clusters.retain(|name, actor| {
        let keep = names.contains(name);
        if !keep {
            actor.stop(Some("cluster gone".into()));
        }
        keep
    });
    for name in names {
        if st.clusters.contains_key(name) {
            continue;
        }
        match Actor::spawn_linked(
            None,
            ClusterActor,
            ClusterState {
                account_id: st.account_id.clone(),
                org_id: st.org_id.clone(),
                name: name.clone(),
                model: st.model.clone(),
                market: st.market.clone(),
                bus: st.deps.bus.clone(),
                template: NodeTemplate::default(),
                autoscaling: true,
                pressure: Default::default(),
                deps: st.deps.clone(),
                cloud: st.cloud.clone(),
                hibernation_first: true,
            },
            myself.get_cell(),
        )
        .await
        {
            Ok((a, _)) => {
                st.clusters.insert(name.clone(), a);
            }
            Err(e) => {
                tracing::error!(component = "CORE-SUPERVISOR", cluster = %name, error = %e, "cluster actor failed to start")
            }
        }
    }
}
