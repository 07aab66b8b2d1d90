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
    /// Pods waiting for capacity (from the agent or a test): decide what to launch now.
    PendingPods {
        pods: Vec<spot_engine::pack::Pod>,
        reply: Option<RpcReplyPort<Result<LaunchDecision, String>>>,
    },
    /// A spot interruption notice for one of the cluster's nodes.
    Interruption {
        instance_id: String,
        instance_type: String,
        az: String,
    },
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
        _myself: ActorRef<ClusterMsg>,
        st: ClusterState,
    ) -> Result<ClusterState, ActorProcessingErr> {
        tracing::debug!(component = "CORE-CLUSTER", account_id = %st.account_id, cluster = %st.name, "cluster actor started");
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
            ClusterMsg::PendingPods { pods, reply } => {
                let d = match &st.market {
                    Some(m) => crate::react::pending_pods(
                        m,
                        &st.template,
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
        }
        Ok(())
    }
}
