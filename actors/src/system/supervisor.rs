//! The root supervisor: takes the account leases of this replica, starts one account actor
//! per leased account and restarts a failed one alone, with exponential backoff; a restarted
//! actor waits before its first discovery, and the restart count resets after a healthy
//! period.

use super::*;

// ---------------------------------------------------------------------------------------
// Root supervisor

pub enum RootMsg {
    /// Start (or keep) the actor of an account and run a discovery now.
    Ensure(String),
    Resync(String),
    Stop(String),
    Restart(String),
    /// Fault injection for resilience drills: the account actor panics.
    InjectPanic(String),
    /// Tests: the root supervisor itself fails (its watchdog restarts it).
    InjectRootPanic,
    Health(RpcReplyPort<Vec<ActorHealth>>),
    /// Lease renewal: take free accounts, renew ours, stop the actors of lost ones.
    LeaseTick,
    /// Graduation broadcast: every account (and through it every cluster) actor swaps.
    SwapModel(Arc<ActiveModel>),
    /// Forward to a cluster actor of an account.
    ToCluster(String, String, ClusterMsg),
}

pub(super) struct Root;

pub(super) struct Child {
    actor: Option<ActorRef<AccountMsg>>,
    org_id: String,
    restarts: u32,
    last_failure: Option<String>,
    clusters: usize,
    /// When the current actor was (re)started.
    started: std::time::Instant,
}

pub(super) struct RootState {
    deps: Deps,
    children: HashMap<String, Child>,
}

pub(super) fn backoff(restarts: u32) -> Duration {
    Duration::from_millis((250u64 << restarts.min(7)).min(30_000))
}

/// How long a restarted account actor waits before its first discovery: a full discovery
/// is what most often failed, so a crash loop must not become a discovery storm against the
/// customer's cloud. 5 s after the first restart, doubling with each further one, never
/// longer than the discovery interval (a healthy actor's own pace). A user's re-sync still
/// runs at once.
pub fn first_discovery_after_restart(restarts: u32, interval: Duration) -> Duration {
    if restarts == 0 {
        return Duration::ZERO;
    }
    let d = Duration::from_secs(5u64 << (restarts - 1).min(10));
    d.min(interval)
}

/// How long an account actor must run without failing for its restart count (and so its
/// backoff) to start from zero again: two discovery intervals.
pub fn healthy_period(interval: Duration) -> Duration {
    (interval * 2).max(Duration::from_secs(1))
}

pub(super) async fn spawn_account(
    myself: &ActorRef<RootMsg>,
    deps: &Deps,
    account_id: &str,
    first_discovery: Duration,
) -> Result<ActorRef<AccountMsg>, ActorProcessingErr> {
    let (r, _) = Actor::spawn_linked(
        None,
        AccountActor,
        (deps.clone(), account_id.to_string(), first_discovery),
        myself.get_cell(),
    )
    .await?;
    Ok(r)
}

/// Starts (or restarts) the actor of an account this replica holds the lease of.
pub(super) async fn start_child(
    myself: &ActorRef<RootMsg>,
    st: &mut RootState,
    id: &str,
) -> Result<(), ActorProcessingErr> {
    let org_id = accounts::by_id(&st.deps.db, id)
        .await
        .ok()
        .flatten()
        .map(|a| a.organization_id)
        .unwrap_or_default();
    let actor = spawn_account(myself, &st.deps, id, Duration::ZERO).await?;
    let child = st.children.entry(id.to_string()).or_insert(Child {
        actor: None,
        org_id,
        restarts: 0,
        last_failure: None,
        clusters: 0,
        started: std::time::Instant::now(),
    });
    child.actor = Some(actor);
    child.started = std::time::Instant::now();
    Ok(())
}

/// Renews this replica's leases, takes accounts whose lease is free or expired (a dead
/// replica's), stops the actors of accounts another replica took, and runs re-syncs other
/// replicas were asked for.
pub(super) async fn lease_tick(
    myself: &ActorRef<RootMsg>,
    st: &mut RootState,
) -> Result<(), ActorProcessingErr> {
    let linked = match accounts::all_linked(&st.deps.db).await {
        Ok(l) => l,
        Err(e) => {
            tracing::warn!(component = "CORE-SUPERVISOR", error = %e, "lease renewal skipped");
            return Ok(());
        }
    };
    // Actors that ran a healthy period since their last restart start from zero again.
    let healthy = healthy_period(st.deps.interval);
    for (id, c) in st.children.iter_mut() {
        if c.restarts > 0 && c.actor.is_some() && c.started.elapsed() >= healthy {
            tracing::info!(component = "CORE-SUPERVISOR", account_id = %id, restarts = c.restarts, "account actor healthy again; restart count reset");
            c.restarts = 0;
        }
    }
    let ttl = st.deps.lease.as_millis() as i64;
    for a in linked {
        match leases::acquire(&st.deps.db, &a.id, &st.deps.replica_id, ttl).await {
            Ok(true) => {
                if !st.children.contains_key(&a.id) {
                    tracing::info!(component = "CORE-SUPERVISOR", account_id = %a.id, replica = %st.deps.replica_id, "account lease taken; starting its actor");
                    start_child(myself, st, &a.id).await?;
                }
                if leases::take_resync(&st.deps.db, &a.id, &st.deps.replica_id)
                    .await
                    .unwrap_or(false)
                {
                    if let Some(actor) = st.children.get(&a.id).and_then(|c| c.actor.clone()) {
                        let _ = actor.cast(AccountMsg::Discover);
                    }
                }
            }
            Ok(false) => {
                if let Some(c) = st.children.remove(&a.id) {
                    tracing::warn!(component = "CORE-SUPERVISOR", account_id = %a.id, "account lease lost to another replica; stopping its actor here");
                    if let Some(actor) = c.actor {
                        actor.stop(Some("lease lost".into()));
                    }
                }
            }
            Err(e) => {
                tracing::warn!(component = "CORE-SUPERVISOR", account_id = %a.id, error = %e, "lease renewal failed")
            }
        }
    }
    Ok(())
}

#[ractor::async_trait]
impl Actor for Root {
    type Msg = RootMsg;
    type State = RootState;
    type Arguments = Deps;

    async fn pre_start(
        &self,
        myself: ActorRef<Self::Msg>,
        deps: Deps,
    ) -> Result<RootState, ActorProcessingErr> {
        myself.send_interval((deps.lease / 3).max(Duration::from_millis(100)), || {
            RootMsg::LeaseTick
        });
        Ok(RootState {
            deps,
            children: HashMap::new(),
        })
    }

    async fn handle(
        &self,
        myself: ActorRef<Self::Msg>,
        msg: RootMsg,
        st: &mut RootState,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            RootMsg::Ensure(id) | RootMsg::Resync(id) => {
                let running = st.children.get(&id).and_then(|c| c.actor.clone());
                match running {
                    Some(a) => {
                        let _ = a.cast(AccountMsg::Discover);
                    }
                    None => {
                        let ttl = st.deps.lease.as_millis() as i64;
                        match leases::acquire(&st.deps.db, &id, &st.deps.replica_id, ttl).await {
                            Ok(true) => start_child(&myself, st, &id).await?,
                            Ok(false) => {
                                // Another replica runs this account: leave it the request.
                                tracing::info!(component = "CORE-SUPERVISOR", account_id = %id, "account is leased by another replica; re-sync handed over");
                                if let Err(e) = leases::request_resync(&st.deps.db, &id).await {
                                    tracing::warn!(component = "CORE-SUPERVISOR", account_id = %id, error = %e, "re-sync request not saved");
                                }
                            }
                            Err(e) => {
                                tracing::warn!(component = "CORE-SUPERVISOR", account_id = %id, error = %e, "lease unavailable")
                            }
                        }
                    }
                }
            }
            RootMsg::LeaseTick => lease_tick(&myself, st).await?,
            RootMsg::Stop(id) => {
                if let Some(c) = st.children.remove(&id) {
                    if let Some(a) = c.actor {
                        a.stop(Some("account disconnected".into()));
                    }
                }
                let _ = leases::release(&st.deps.db, &id, &st.deps.replica_id).await;
            }
            RootMsg::Restart(id) => {
                if let Some(restarts) = st
                    .children
                    .get(&id)
                    .filter(|c| c.actor.is_none())
                    .map(|c| c.restarts)
                {
                    let wait = first_discovery_after_restart(restarts, st.deps.interval);
                    let actor = spawn_account(&myself, &st.deps, &id, wait).await?;
                    if let Some(c) = st.children.get_mut(&id) {
                        c.actor = Some(actor);
                        c.started = std::time::Instant::now();
                    }
                }
            }
            RootMsg::InjectRootPanic => {
                return Err("injected root supervisor failure".into());
            }
            RootMsg::InjectPanic(id) => {
                if let Some(a) = st.children.get(&id).and_then(|c| c.actor.clone()) {
                    let _ = a.cast(AccountMsg::Panic);
                }
            }
            RootMsg::ToCluster(account, cluster, msg) => {
                if let Some(a) = st.children.get(&account).and_then(|c| c.actor.clone()) {
                    let _ = a.cast(AccountMsg::ToCluster(cluster, msg));
                }
            }
            RootMsg::SwapModel(m) => {
                for c in st.children.values() {
                    if let Some(a) = &c.actor {
                        let _ = a.cast(AccountMsg::SwapModel(m.clone()));
                    }
                }
            }
            RootMsg::Health(reply) => {
                let mut out = Vec::new();
                for (id, c) in &st.children {
                    let clusters = match &c.actor {
                        Some(a) => {
                            ractor::call_t!(a, AccountMsg::Clusters, 1000).unwrap_or(c.clusters)
                        }
                        None => c.clusters,
                    };
                    let (model, cluster_models) = match &c.actor {
                        Some(a) => match ractor::call_t!(a, AccountMsg::Models, 2000) {
                            Ok((m, cm)) => (Some(m), cm),
                            Err(_) => (None, Vec::new()),
                        },
                        None => (None, Vec::new()),
                    };
                    out.push(ActorHealth {
                        account_id: id.clone(),
                        organization_id: c.org_id.clone(),
                        state: if c.actor.is_some() {
                            "running"
                        } else {
                            "restarting"
                        }
                        .into(),
                        restarts: c.restarts,
                        last_failure: c.last_failure.clone(),
                        clusters,
                        model,
                        cluster_models,
                    });
                }
                out.sort_by(|a, b| a.account_id.cmp(&b.account_id));
                let _ = reply.send(out);
            }
        }
        Ok(())
    }

    async fn handle_supervisor_evt(
        &self,
        myself: ActorRef<Self::Msg>,
        evt: SupervisionEvent,
        st: &mut RootState,
    ) -> Result<(), ActorProcessingErr> {
        let (cell, failure) = match evt {
            SupervisionEvent::ActorFailed(cell, err) => (cell, Some(err.to_string())),
            SupervisionEvent::ActorTerminated(cell, _, _) => (cell, None),
            _ => return Ok(()),
        };
        let Some((id, child)) = st.children.iter_mut().find(|(_, c)| {
            c.actor
                .as_ref()
                .is_some_and(|a| a.get_id() == cell.get_id())
        }) else {
            return Ok(());
        };
        child.actor = None;
        if let Some(reason) = failure {
            // A failure after a healthy period is a first failure again.
            if child.started.elapsed() >= healthy_period(st.deps.interval) {
                child.restarts = 0;
            }
            child.restarts += 1;
            child.last_failure = Some(reason.clone());
            let delay = backoff(child.restarts);
            tracing::error!(component = "CORE-SUPERVISOR", account_id = %id, restarts = child.restarts, ?delay, %reason, "account actor failed; restarting");
            st.deps.bus.publish(
                Some(&child.org_id),
                "actor.restarting",
                serde_json::json!({"account_id": id, "restarts": child.restarts, "reason": reason}),
            );
            let id = id.clone();
            myself.send_after(delay, move || RootMsg::Restart(id));
        } else {
            // A clean stop (disconnect or account gone): forget it.
            let id = id.clone();
            st.children.remove(&id);
        }
        Ok(())
    }
}
