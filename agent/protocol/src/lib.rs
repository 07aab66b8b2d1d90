//! The agent protocol: every type that crosses the wire between the in-cluster agent
//! (`spot-agent`) and the control plane (`/api/agent/v1/...`). One place, shared by both
//! sides, so that they cannot drift.
//!
//! The agent only ever makes outbound HTTPS requests; it never listens on a port.
//! Every request carries `Authorization: Bearer <agent token>` (a per-cluster token, see
//! [`TOKEN_PREFIX`]); a revoked or unknown token is answered `401` and the agent stops
//! acting.
//!
//! | method | path | body | answer |
//! |---|---|---|---|
//! | POST | `/api/agent/v1/heartbeat` | [`Heartbeat`] | [`HeartbeatAck`] |
//! | POST | `/api/agent/v1/snapshot` | [`ClusterSnapshot`] | [`Ack`] |
//! | POST | `/api/agent/v1/delta` | [`ClusterDelta`] | [`Ack`] |
//! | GET | `/api/agent/v1/commands?wait=SECS` | — | [`CommandBatch`] (long poll, `wait` ≤ [`MAX_POLL_WAIT_SECS`]) |
//! | POST | `/api/agent/v1/commands/{id}/start` | — | `200` [`Command`] when the command was `pending`; `409` otherwise (never run it) |
//! | POST | `/api/agent/v1/commands/{id}/result` | [`CommandResult`] | [`Ack`] |
//!
//! Exactly-once execution: the agent claims a command with `start` before acting on it,
//! and only a `200` lets it run. A claimed command is never delivered again, so an agent
//! that restarts (or a second replica) cannot execute it twice; a command that was
//! started and never reported is failed by the control plane once its deadline passes.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Version of this protocol; sent in every heartbeat.
pub const PROTOCOL_VERSION: u32 = 1;
/// Path prefix of the agent API on the control plane.
pub const API_PREFIX: &str = "/api/agent/v1";
/// Agent tokens start with this, followed by an 8-character visible id and the secret.
pub const TOKEN_PREFIX: &str = "spa_";
/// Seconds between heartbeats.
pub const HEARTBEAT_INTERVAL_SECS: u64 = 30;
/// An agent whose last heartbeat is younger than this is "connected" (green).
pub const CONNECTED_WITHIN_SECS: i64 = 60;
/// Longest long-poll the control plane holds a commands request open.
pub const MAX_POLL_WAIT_SECS: u64 = 30;
/// Annotations that mark a pod (or node) as not to be disrupted by the optimizer.
pub const DO_NOT_DISRUPT_ANNOTATIONS: &[&str] = &[
    "spot-optimizer.io/do-not-disrupt",
    "karpenter.sh/do-not-disrupt",
    "cluster-autoscaler.kubernetes.io/safe-to-evict=false",
];

/// Whether `annotations` mark the object as not to be disrupted.
pub fn is_do_not_disrupt(annotations: &BTreeMap<String, String>) -> bool {
    DO_NOT_DISRUPT_ANNOTATIONS
        .iter()
        .any(|a| match a.split_once('=') {
            Some((key, value)) => annotations.get(key).is_some_and(|v| v == value),
            None => annotations.get(*a).is_some_and(|v| v == "true"),
        })
}

/// Extracts the EC2 instance id from a node's `spec.providerID`
/// (`aws:///us-east-1a/i-0123456789abcdef0`).
pub fn instance_id_from_provider_id(provider_id: &str) -> Option<String> {
    let rest = provider_id.strip_prefix("aws://")?;
    let id = rest.rsplit('/').next()?;
    (id.starts_with("i-") && id.len() > 2).then(|| id.to_string())
}

// ---------------------------------------------------------------------------------------
// Heartbeat
// ---------------------------------------------------------------------------------------

/// Sent every [`HEARTBEAT_INTERVAL_SECS`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Heartbeat {
    pub protocol_version: u32,
    pub agent_version: String,
    /// `gitVersion` of the API server, e.g. `v1.30.2-eks-1552ad0`.
    pub kubernetes_version: String,
    /// One entry per watched resource.
    pub watches: Vec<WatchHealth>,
    /// Whether `metrics.k8s.io` answered (usage samples are sent only when it does).
    pub metrics_available: bool,
    /// Set while the agent is (or, for the first heartbeat after reconnecting, was) in
    /// safe mode.
    #[serde(default)]
    pub safe_mode: Option<SafeModeReport>,
    pub sent_at: DateTime<Utc>,
}

/// Health of one watch (nodes, pods, pdbs, events).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WatchHealth {
    pub resource: String,
    pub healthy: bool,
    /// Objects currently held in the reflector's store.
    pub objects: u64,
    #[serde(default)]
    pub last_event_at: Option<DateTime<Utc>>,
    /// Last error (e.g. a 410 Gone that forced a re-list), if any.
    #[serde(default)]
    pub last_error: Option<String>,
    /// Full re-lists since the agent started (each 410 Gone causes one).
    #[serde(default)]
    pub relists: u64,
}

/// The agent's own safe mode: entered when the control plane was unreachable for longer
/// than the configured time; while in it the agent starts no command.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SafeModeReport {
    pub entered_at: DateTime<Utc>,
    /// `None` while still in safe mode.
    #[serde(default)]
    pub exited_at: Option<DateTime<Utc>>,
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HeartbeatAck {
    pub cluster_id: Uuid,
    pub server_time: DateTime<Utc>,
    /// The control plane asks for a full snapshot (e.g. after it lost the view).
    pub resync: bool,
}

/// Generic acknowledgement.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Ack {
    pub ok: bool,
}

// ---------------------------------------------------------------------------------------
// Cluster view
// ---------------------------------------------------------------------------------------

/// Requests or capacity in the units the optimizer uses.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Resources {
    pub cpu_millis: u64,
    pub memory_mib: u64,
    #[serde(default)]
    pub gpus: u32,
    /// Pod slots (nodes only; 0 for pods).
    #[serde(default)]
    pub pods: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Taint {
    pub key: String,
    #[serde(default)]
    pub value: Option<String>,
    /// `NoSchedule`, `PreferNoSchedule` or `NoExecute`.
    pub effect: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeCondition {
    /// `Ready`, `MemoryPressure`, `DiskPressure`, `PIDPressure`, `NetworkUnavailable`, …
    #[serde(rename = "type")]
    pub kind: String,
    /// `True`, `False` or `Unknown`.
    pub status: String,
    #[serde(default)]
    pub reason: Option<String>,
    #[serde(default)]
    pub message: Option<String>,
}

/// One Kubernetes node as the agent sees it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Node {
    pub name: String,
    #[serde(default)]
    pub provider_id: Option<String>,
    /// EC2 instance id from the provider id, when it is an AWS node.
    #[serde(default)]
    pub instance_id: Option<String>,
    /// `node.kubernetes.io/instance-type`.
    #[serde(default)]
    pub instance_type: Option<String>,
    /// `topology.kubernetes.io/zone`.
    #[serde(default)]
    pub zone: Option<String>,
    /// `spot` or `on-demand` (from `eks.amazonaws.com/capacityType`,
    /// `karpenter.sh/capacity-type` or the node-lifecycle label), when known.
    #[serde(default)]
    pub capacity_type: Option<String>,
    /// `eks.amazonaws.com/nodegroup`, when present.
    #[serde(default)]
    pub node_group: Option<String>,
    pub labels: BTreeMap<String, String>,
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
    pub taints: Vec<Taint>,
    pub allocatable: Resources,
    pub capacity: Resources,
    pub conditions: Vec<NodeCondition>,
    pub ready: bool,
    /// `spec.unschedulable` (cordoned).
    pub unschedulable: bool,
    #[serde(default)]
    pub created_at: Option<DateTime<Utc>>,
}

impl Node {
    /// The conditions that put the node under pressure: `MemoryPressure`, `DiskPressure`,
    /// `PIDPressure` (any `*Pressure`) or `NetworkUnavailable` with status `True`.
    pub fn pressure(&self) -> Vec<String> {
        self.conditions
            .iter()
            .filter(|c| {
                c.status == "True"
                    && (c.kind.ends_with("Pressure") || c.kind == "NetworkUnavailable")
            })
            .map(|c| c.kind.clone())
            .collect()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum PodPhase {
    Pending,
    Running,
    Succeeded,
    Failed,
    Unknown,
}

/// The controller owning a pod, resolved through ReplicaSets to their Deployment.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Owner {
    /// `Deployment`, `StatefulSet`, `DaemonSet`, `Job`, `ReplicaSet`, `Node` (mirror pods), …
    pub kind: String,
    pub name: String,
}

/// One pod as the agent sees it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Pod {
    pub namespace: String,
    pub name: String,
    #[serde(default)]
    pub uid: Option<String>,
    #[serde(default)]
    pub node_name: Option<String>,
    pub phase: PodPhase,
    #[serde(default)]
    pub owner: Option<Owner>,
    /// Sum of the containers' requests (max with init containers), in optimizer units.
    pub requests: Resources,
    #[serde(default)]
    pub priority: Option<i32>,
    #[serde(default)]
    pub priority_class: Option<String>,
    pub labels: BTreeMap<String, String>,
    /// Only the annotations that matter to the optimizer (do-not-disrupt and the like).
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
    /// `namespace/name` of every PDB whose selector matches this pod.
    #[serde(default)]
    pub pdbs: Vec<String>,
    /// A do-not-disrupt annotation is set ([`is_do_not_disrupt`]).
    #[serde(default)]
    pub do_not_disrupt: bool,
    /// Owned by a DaemonSet (never evicted by a drain).
    #[serde(default)]
    pub daemonset: bool,
    /// A static (mirror) pod (never evicted by a drain).
    #[serde(default)]
    pub mirror: bool,
    /// For pending pods: the `PodScheduled=False` reason (`Unschedulable`) and message.
    #[serde(default)]
    pub unschedulable_reason: Option<String>,
    #[serde(default)]
    pub node_selector: BTreeMap<String, String>,
    #[serde(default)]
    pub created_at: Option<DateTime<Utc>>,
}

impl Pod {
    /// `namespace/name`.
    pub fn key(&self) -> String {
        format!("{}/{}", self.namespace, self.name)
    }
}

/// One PodDisruptionBudget.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Pdb {
    pub namespace: String,
    pub name: String,
    /// `spec.selector.matchLabels` (match expressions are evaluated by the agent when it
    /// fills [`Pod::pdbs`]).
    pub match_labels: BTreeMap<String, String>,
    #[serde(default)]
    pub min_available: Option<String>,
    #[serde(default)]
    pub max_unavailable: Option<String>,
    /// `status.disruptionsAllowed`.
    pub disruptions_allowed: i32,
    pub current_healthy: i32,
    pub desired_healthy: i32,
    pub expected_pods: i32,
}

impl Pdb {
    pub fn key(&self) -> String {
        format!("{}/{}", self.namespace, self.name)
    }
}

/// What a usage sample measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UsageTarget {
    Node,
    Pod,
}

/// One `metrics.k8s.io` reading.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UsageSample {
    pub target: UsageTarget,
    /// Empty for nodes.
    #[serde(default)]
    pub namespace: String,
    pub name: String,
    pub at: DateTime<Utc>,
    pub cpu_millis: u64,
    pub memory_mib: u64,
}

/// A Kubernetes event worth reacting to (scheduling failures, node pressure, evictions).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClusterEvent {
    /// `Node`, `Pod`, …
    pub involved_kind: String,
    #[serde(default)]
    pub namespace: String,
    pub name: String,
    /// e.g. `FailedScheduling`, `NodeNotReady`, `EvictionThresholdMet`.
    pub reason: String,
    pub message: String,
    /// `Normal` or `Warning`.
    pub event_type: String,
    pub at: DateTime<Utc>,
}

/// The whole view, sent on connect, after a re-list and when asked ([`HeartbeatAck::resync`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClusterSnapshot {
    pub collected_at: DateTime<Utc>,
    pub nodes: Vec<Node>,
    pub pods: Vec<Pod>,
    pub pdbs: Vec<Pdb>,
    /// Usage samples; on connect they may reach back up to [`USAGE_BACKFILL_HOURS`] (what the
    /// agent can read from a metrics store), later ones are the latest readings.
    #[serde(default)]
    pub usage: Vec<UsageSample>,
    /// The cluster's past hourly usage (pods' totals), when the agent can read it on connect.
    /// The control plane fills the dashboards' history with the hours it has not recorded.
    #[serde(default)]
    pub history: Vec<HistoryPoint>,
}

/// One hour of the cluster's past usage: the sum over its scheduled pods.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HistoryPoint {
    /// The start of the hour.
    pub hour: DateTime<Utc>,
    pub cpu_millis: u64,
    pub memory_mib: u64,
}

/// How far back usage samples and history points in a snapshot may reach.
pub const USAGE_BACKFILL_HOURS: i64 = 48;
/// How far back a snapshot's [`ClusterSnapshot::history`] may reach.
pub const HISTORY_BACKFILL_DAYS: i64 = 14;

/// Changes since the previous snapshot or delta. Upserts carry the whole object.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClusterDelta {
    pub collected_at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub nodes_upserted: Vec<Node>,
    /// Node names.
    #[serde(default)]
    pub nodes_deleted: Vec<String>,
    #[serde(default)]
    pub pods_upserted: Vec<Pod>,
    /// `namespace/name`.
    #[serde(default)]
    pub pods_deleted: Vec<String>,
    #[serde(default)]
    pub pdbs_upserted: Vec<Pdb>,
    /// `namespace/name`.
    #[serde(default)]
    pub pdbs_deleted: Vec<String>,
    #[serde(default)]
    pub usage: Vec<UsageSample>,
    #[serde(default)]
    pub events: Vec<ClusterEvent>,
}

impl ClusterDelta {
    pub fn is_empty(&self) -> bool {
        self.nodes_upserted.is_empty()
            && self.nodes_deleted.is_empty()
            && self.pods_upserted.is_empty()
            && self.pods_deleted.is_empty()
            && self.pdbs_upserted.is_empty()
            && self.pdbs_deleted.is_empty()
            && self.usage.is_empty()
            && self.events.is_empty()
    }
}

// ---------------------------------------------------------------------------------------
// Commands
// ---------------------------------------------------------------------------------------

/// Workload kinds whose requests the agent may patch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum WorkloadKind {
    Deployment,
    StatefulSet,
}

/// What the control plane asks the agent to do.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum CommandKind {
    /// Mark the node unschedulable.
    Cordon { node: String },
    /// Mark the node schedulable again.
    Uncordon { node: String },
    /// Cordon, then evict every pod on the node through the Eviction API (DaemonSet and
    /// mirror pods skipped). A 429 (PDB allows no disruption) is retried with backoff until
    /// `timeout_secs`; when it passes the command fails and the node is left cordoned.
    Drain {
        node: String,
        timeout_secs: u64,
        /// Overrides each pod's `terminationGracePeriodSeconds` when set.
        #[serde(default)]
        grace_period_secs: Option<i64>,
    },
    /// Set (`Some`) or remove (`None`) node labels.
    Label {
        node: String,
        labels: BTreeMap<String, Option<String>>,
    },
    /// Add taints and remove taints (by key and effect).
    Taint {
        node: String,
        #[serde(default)]
        add: Vec<Taint>,
        #[serde(default)]
        remove: Vec<Taint>,
    },
    /// Set a container's requests on a Deployment or StatefulSet (rightsizing).
    PatchRequests {
        namespace: String,
        workload_kind: WorkloadKind,
        workload: String,
        /// The container to patch; empty: the workload's only container (the requests
        /// are then the whole pod's; a workload with several containers fails).
        container: String,
        #[serde(default)]
        cpu_millis: Option<u64>,
        #[serde(default)]
        memory_mib: Option<u64>,
    },
    /// Delete the Node object (after its instance was terminated).
    DeleteNode { node: String },
}

impl CommandKind {
    /// Short name (`cordon`, `drain`, …).
    pub fn name(&self) -> &'static str {
        match self {
            CommandKind::Cordon { .. } => "cordon",
            CommandKind::Uncordon { .. } => "uncordon",
            CommandKind::Drain { .. } => "drain",
            CommandKind::Label { .. } => "label",
            CommandKind::Taint { .. } => "taint",
            CommandKind::PatchRequests { .. } => "patch_requests",
            CommandKind::DeleteNode { .. } => "delete_node",
        }
    }
}

/// One queued command.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Command {
    pub id: Uuid,
    pub command: CommandKind,
    pub created_at: DateTime<Utc>,
    /// After this the control plane fails the command if no result arrived.
    pub deadline: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CommandBatch {
    pub commands: Vec<Command>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CommandOutcome {
    Succeeded,
    Failed,
}

/// One pod's fate during a drain.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EvictionRecord {
    /// `namespace/name`.
    pub pod: String,
    /// `evicted`, `skipped_daemonset`, `skipped_mirror`, `blocked_by_pdb`, `failed`.
    pub outcome: String,
    /// 429 answers received before the eviction went through (or the deadline passed).
    #[serde(default)]
    pub retries: u32,
    #[serde(default)]
    pub message: Option<String>,
}

/// Reported once per command.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CommandResult {
    pub outcome: CommandOutcome,
    pub message: String,
    /// Drains: what happened to each pod.
    #[serde(default)]
    pub evictions: Vec<EvictionRecord>,
    pub started_at: DateTime<Utc>,
    pub finished_at: DateTime<Utc>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn provider_ids_give_instance_ids() {
        assert_eq!(
            instance_id_from_provider_id("aws:///us-east-1a/i-0abc").as_deref(),
            Some("i-0abc")
        );
        assert_eq!(instance_id_from_provider_id("gce://p/z/n"), None);
        assert_eq!(instance_id_from_provider_id("aws:///us-east-1a/"), None);
    }

    #[test]
    fn do_not_disrupt_annotations() {
        let mut a = BTreeMap::new();
        assert!(!is_do_not_disrupt(&a));
        a.insert("karpenter.sh/do-not-disrupt".into(), "true".into());
        assert!(is_do_not_disrupt(&a));
        let mut b = BTreeMap::new();
        b.insert(
            "cluster-autoscaler.kubernetes.io/safe-to-evict".into(),
            "false".into(),
        );
        assert!(is_do_not_disrupt(&b));
        b.insert(
            "cluster-autoscaler.kubernetes.io/safe-to-evict".into(),
            "true".into(),
        );
        assert!(!is_do_not_disrupt(&b));
    }

    #[test]
    fn commands_are_tagged_by_type() {
        let c = CommandKind::Drain {
            node: "n1".into(),
            timeout_secs: 600,
            grace_period_secs: None,
        };
        let v = serde_json::to_value(&c).unwrap();
        assert_eq!(v["type"], "drain");
        assert_eq!(serde_json::from_value::<CommandKind>(v).unwrap(), c);
        assert!(
            serde_json::from_value::<CommandKind>(serde_json::json!({"type": "reboot"})).is_err()
        );
    }
}
