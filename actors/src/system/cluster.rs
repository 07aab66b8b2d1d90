//! One actor per cluster: keeps the scored market and the node template, and answers
//! pending pods and interruption notices with a launch decision at once.

use super::*;

// ---------------------------------------------------------------------------------------
// Cluster actor: the per-cluster home of decisions (risk scoring, packing, hibernation).

pub enum ClusterMsg {
    Name(RpcReplyPort<String>),
    Model(RpcReplyPort<String>),
    SwapModel(Arc<ActiveModel>),
    /// Fresh market after a discovery.
    Market(Arc<crate::market::Market>),
    /// The node template of the cluster's stored policy (after a discovery or a change).
    Template(NodeTemplate),
    /// The policy's autoscaling toggle (after a discovery or a change): off, pending pods
    /// get no new node.
    Autoscaling(bool),
    /// Pods waiting for capacity (from the agent or a test): decide what to launch now.
    PendingPods {
        pods: Vec<spot_engine::pack::Pod>,
        reply: Option<RpcReplyPort<Result<LaunchDecision, String>>>,
    },
    /// Node pressure as the agent reports it: `reports` are the nodes it just sent (empty
    /// conditions = healthy); with `full` (a snapshot) every node not listed is gone, and
    /// `removed` names nodes a delta deleted. The actor keeps the set of pressured nodes
    /// and publishes `cluster.node_pressure` whenever it changes.
    NodePressure {
        cluster_id: String,
        reports: Vec<NodePressureReport>,
        removed: Vec<String>,
        full: bool,
    },
    /// The nodes under pressure now, with their conditions and since when.
    Pressured(RpcReplyPort<Vec<PressuredNode>>),
    /// A spot interruption notice for one of the cluster's nodes.
    Interruption {
        instance_id: String,
        instance_type: String,
        az: String,
    },
    /// The account's cloud connection of the latest discovery (hibernation acts through it).
    Cloud(Arc<dyn Cloud>),
    /// Evaluate the hibernation schedule now (timer, or `manual` after "sleep now" /
    /// "wake now" / a schedule change) and make the transition it asks for.
    Hibernate {
        manual: bool,
        reply: Option<RpcReplyPort<Result<crate::hibernation::Outcome, String>>>,
    },
}

/// One node's pressure conditions in an agent report.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct NodePressureReport {
    pub node: String,
    pub instance_id: Option<String>,
    /// `MemoryPressure`, `DiskPressure`, `PIDPressure`, `NetworkUnavailable`; empty when healthy.
    pub conditions: Vec<String>,
}

/// A node the cluster actor knows to be under pressure.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct PressuredNode {
    pub node: String,
    pub instance_id: Option<String>,
    pub conditions: Vec<String>,
    pub since: chrono::DateTime<chrono::Utc>,
}

pub struct ClusterState {
    pub account_id: String,
    pub org_id: String,
    pub name: String,
    pub model: Arc<ActiveModel>,
    pub market: Option<Arc<crate::market::Market>>,
    pub bus: Bus,
    /// Node template decisions follow (the cluster policy's; default until read).
    pub template: NodeTemplate,
    /// The policy's autoscaling toggle (on until read).
    pub autoscaling: bool,
    /// Nodes under pressure, by name (from the agent's reports).
    pub pressure: std::collections::BTreeMap<String, PressuredNode>,
    /// Database, bus and the rest (hibernation reads its schedule and records transitions).
    pub deps: Deps,
    /// The account's cloud connection (of the latest discovery).
    pub cloud: Option<Arc<dyn Cloud>>,
    /// No hibernation evaluation has run yet since the actor started: a transition made by
    /// the first one is a catch-up.
    pub hibernation_first: bool,
}

/// Applies a pressure report to the set of pressured nodes; returns the nodes whose
/// pressure started (or changed) and those whose pressure cleared.
fn apply_pressure(
    pressure: &mut std::collections::BTreeMap<String, PressuredNode>,
    reports: Vec<NodePressureReport>,
    removed: &[String],
    full: bool,
    now: chrono::DateTime<chrono::Utc>,
) -> (Vec<String>, Vec<String>) {
    let (mut started, mut cleared) = (Vec::new(), Vec::new());
    if full {
        let listed: std::collections::BTreeSet<&str> =
            reports.iter().map(|r| r.node.as_str()).collect();
        let gone: Vec<String> = pressure
            .keys()
            .filter(|n| !listed.contains(n.as_str()))
            .cloned()
            .collect();
        for n in gone {
            pressure.remove(&n);
            cleared.push(n);
        }
    }
    for n in removed {
        if pressure.remove(n).is_some() {
            cleared.push(n.clone());
        }
    }
    for r in reports {
        if r.conditions.is_empty() {
            if pressure.remove(&r.node).is_some() {
                cleared.push(r.node);
            }
            continue;
        }
        match pressure.get_mut(&r.node) {
            Some(p) if p.conditions == r.conditions => {}
            Some(p) => {
                p.conditions = r.conditions;
                started.push(r.node);
            }
            None => {
                started.push(r.node.clone());
                pressure.insert(
                    r.node.clone(),
                    PressuredNode {
                        node: r.node,
                        instance_id: r.instance_id,
                        conditions: r.conditions,
                        since: now,
                    },
                );
            }
        }
    }
    (started, cleared)
}

impl ClusterState {
    fn publish(&self, d: &Result<LaunchDecision, String>) {
        match d {
            Ok(d) => {
                tracing::info!(component = "CORE-DECIDE", cluster = %self.name, trigger = %d.trigger, nodes = d.nodes.len(), us = d.decided_in_us, "launch decision");
                self.bus.publish(
                    Some(&self.org_id),
                    "decision.launch",
                    serde_json::json!({"account_id": self.account_id, "decision": d}),
                );
            }
            Err(e) => {
                tracing::warn!(component = "CORE-DECIDE", cluster = %self.name, error = %e, "no launch decision");
                self.bus.publish(Some(&self.org_id), "decision.failed", serde_json::json!({"account_id": self.account_id, "cluster": self.name, "error": e}));
            }
        }
    }
}

pub(super) struct ClusterActor;

#[ractor::async_trait]
impl Actor for ClusterActor {
    type Msg = ClusterMsg;
    type State = ClusterState;
    type Arguments = ClusterState;

    async fn pre_start(
        &self,
        myself: ActorRef<ClusterMsg>,
        st: ClusterState,
    ) -> Result<ClusterState, ActorProcessingErr> {
        tracing::debug!(component = "CORE-CLUSTER", account_id = %st.account_id, cluster = %st.name, "cluster actor started");
        // Hibernation: evaluate at once (catching up a transition missed while down), then
        // on every tick.
        myself.cast(ClusterMsg::Hibernate {
            manual: false,
            reply: None,
        })?;
        myself.send_interval(crate::hibernation::TICK, || ClusterMsg::Hibernate {
            manual: false,
            reply: None,
        });
        Ok(st)
    }

    async fn handle(
        &self,
        _myself: ActorRef<ClusterMsg>,
        msg: ClusterMsg,
        st: &mut ClusterState,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            ClusterMsg::Name(reply) => {
                let _ = reply.send(st.name.clone());
            }
            ClusterMsg::Model(reply) => {
                let _ = reply.send(st.model.id.clone());
            }
            ClusterMsg::SwapModel(m) => st.model = m,
            ClusterMsg::Market(m) => st.market = Some(m),
            ClusterMsg::Template(t) => st.template = t,
            ClusterMsg::Autoscaling(on) => st.autoscaling = on,
            ClusterMsg::PendingPods { pods, reply } => {
                let d = match &st.market {
                    Some(m) => crate::react::pending_pods(
                        m,
                        &st.template,
                        st.autoscaling,
                        &st.name,
                        &pods,
                        chrono::Utc::now().timestamp(),
                    ),
                    None => {
                        Err("the market has not been read yet (discovery still running)".into())
                    }
                };
                st.publish(&d);
                if let Some(r) = reply {
                    let _ = r.send(d);
                }
            }
            ClusterMsg::NodePressure {
                cluster_id,
                reports,
                removed,
                full,
            } => {
                let (started, cleared) = apply_pressure(
                    &mut st.pressure,
                    reports,
                    &removed,
                    full,
                    chrono::Utc::now(),
                );
                if !started.is_empty() || !cleared.is_empty() {
                    tracing::warn!(component = "CORE-CLUSTER", cluster = %st.name, ?started, ?cleared, pressured = st.pressure.len(), "node pressure changed");
                    let nodes: Vec<&PressuredNode> = st.pressure.values().collect();
                    st.bus.publish(
                        Some(&st.org_id),
                        "cluster.node_pressure",
                        serde_json::json!({
                            "cluster_id": cluster_id,
                            "account_id": st.account_id,
                            "cluster": st.name,
                            "nodes": nodes,
                            "started": started,
                            "cleared": cleared,
                        }),
                    );
                }
            }
            ClusterMsg::Pressured(reply) => {
                let _ = reply.send(st.pressure.values().cloned().collect());
            }
            ClusterMsg::Interruption {
                instance_id,
                instance_type,
                az,
            } => {
                if let Some(m) = &st.market {
                    let d = crate::react::interruption(
                        m,
                        &st.template,
                        &st.name,
                        &instance_id,
                        &instance_type,
                        &az,
                    );
                    st.publish(&d);
                }
            }
            ClusterMsg::Cloud(c) => st.cloud = Some(c),
            ClusterMsg::Hibernate { manual, reply } => {
                let r = st.hibernate(manual).await;
                if let Err(e) = &r {
                    tracing::warn!(component = crate::hibernation::COMPONENT, cluster = %st.name, error = %e, "hibernation not evaluated");
                }
                if let Some(reply) = reply {
                    let _ = reply.send(r);
                }
            }
        }
        Ok(())
    }
}

impl ClusterState {
    async fn hibernate(&mut self, manual: bool) -> Result<crate::hibernation::Outcome, String> {
        let Some(cloud) = self.cloud.clone() else {
            return Err("the account has not been connected yet".into());
        };
        let cluster_id = crate::hibernation::cluster_id_of(
            &self.deps,
            &self.org_id,
            &self.account_id,
            &self.name,
        )
        .await
        .ok_or("the cluster is not in the inventory")?;
        let first = std::mem::replace(&mut self.hibernation_first, false);
        let target = crate::hibernation::Target {
            deps: &self.deps,
            cloud: cloud.as_ref(),
            org_id: &self.org_id,
            account_id: &self.account_id,
            cluster_id: &cluster_id,
            cluster: &self.name,
        };
        crate::hibernation::reconcile(&target, first, manual).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Default)]
    struct Pressure {
        pressure: std::collections::BTreeMap<String, PressuredNode>,
    }

    fn report(node: &str, conditions: &[&str]) -> NodePressureReport {
        NodePressureReport {
            node: node.into(),
            instance_id: None,
            conditions: conditions.iter().map(|c| c.to_string()).collect(),
        }
    }

    #[test]
    fn pressure_transitions_are_reported_once() {
        let mut st = Pressure::default();
        let t0 = chrono::Utc::now();
        let (s, c) = apply_pressure(
            &mut st.pressure,
            vec![report("n1", &["MemoryPressure"]), report("n2", &[])],
            &[],
            false,
            t0,
        );
        assert_eq!((s, c), (vec!["n1".to_string()], vec![]));
        // The same report again changes nothing; `since` stays.
        let (s, c) = apply_pressure(
            &mut st.pressure,
            vec![report("n1", &["MemoryPressure"])],
            &[],
            false,
            t0 + chrono::Duration::seconds(5),
        );
        assert!(s.is_empty() && c.is_empty());
        assert_eq!(st.pressure["n1"].since, t0);
        // New conditions are a change.
        let (s, _) = apply_pressure(
            &mut st.pressure,
            vec![report("n1", &["MemoryPressure", "DiskPressure"])],
            &[],
            false,
            t0,
        );
        assert_eq!(s, vec!["n1".to_string()]);
        // Healthy again, deleted, or absent from a snapshot: cleared.
        let (_, c) = apply_pressure(&mut st.pressure, vec![report("n1", &[])], &[], false, t0);
        assert_eq!(c, vec!["n1".to_string()]);
        apply_pressure(
            &mut st.pressure,
            vec![
                report("n3", &["PIDPressure"]),
                report("n4", &["DiskPressure"]),
            ],
            &[],
            false,
            t0,
        );
        let (_, c) = apply_pressure(&mut st.pressure, vec![], &["n3".to_string()], false, t0);
        assert_eq!(c, vec!["n3".to_string()]);
        let (_, c) = apply_pressure(&mut st.pressure, vec![report("n5", &[])], &[], true, t0);
        assert_eq!(c, vec!["n4".to_string()]);
        assert!(st.pressure.is_empty());
    }
}
