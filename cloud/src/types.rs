//! Domain types of the `Cloud` port.
//!
//! Plain serde structs: no SDK type ever crosses the port, so the engine, the actors and
//! the API can be tested against the simulator and run unchanged against AWS. Times are
//! UTC; money is USD; memory is MiB (as AWS and Kubernetes report it); CPU for pods is
//! millicores (as Kubernetes requests are written).

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// A region name such as `us-east-1`.
pub type Region = String;
/// An availability zone name such as `us-east-1a`.
pub type Az = String;
/// Resource tags, sorted so that equal inventories compare and serialize equal.
pub type Tags = BTreeMap<String, String>;

/// Tag AWS puts on instances launched by an Auto Scaling group.
pub const TAG_ASG_NAME: &str = "aws:autoscaling:groupName";
/// Tag EKS managed node groups put on their instances.
pub const TAG_EKS_CLUSTER: &str = "eks:cluster-name";
/// Tag EKS managed node groups put on their instances.
pub const TAG_EKS_NODEGROUP: &str = "eks:nodegroup-name";
/// Prefix of the tag (`kubernetes.io/cluster/<name>` = `owned`|`shared`) that Kubernetes
/// tooling (eksctl, kops, Karpenter, cluster-autoscaler) puts on cluster nodes.
pub const TAG_K8S_CLUSTER_PREFIX: &str = "kubernetes.io/cluster/";
/// Tag Karpenter puts on the nodes it launches.
pub const TAG_KARPENTER_CLUSTER: &str = "karpenter.sh/discovery";
/// Tag (value `true`) Spot Optimizer puts on every instance it launches; the customer
/// role's action policy lets it terminate such instances (and cluster nodes) only.
pub const TAG_MANAGED: &str = "spot-optimizer:managed";

/// Who the credentials belong to (STS `GetCallerIdentity`). Used to verify a linked
/// account: the account id must match what the customer typed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallerIdentity {
    /// 12-digit AWS account id.
    pub account_id: String,
    /// ARN of the assumed role or IAM user.
    pub arn: String,
    /// Unique id of the principal.
    pub user_id: String,
}

/// An EC2 security group (for choosing the groups a node template attaches).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SecurityGroup {
    /// `sg-…`
    pub id: String,
    pub name: String,
    pub description: String,
    pub vpc_id: Option<String>,
    pub tags: Tags,
}

/// How an instance is bought.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Lifecycle {
    OnDemand,
    Spot,
}

/// EC2 instance state names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum InstanceState {
    Pending,
    Running,
    Stopping,
    Stopped,
    ShuttingDown,
    Terminated,
}

impl InstanceState {
    /// States in which the instance is billed for compute.
    pub fn is_billed(self) -> bool {
        matches!(self, InstanceState::Pending | InstanceState::Running)
    }
}

/// One EC2 instance.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Instance {
    pub id: String,
    pub instance_type: String,
    pub lifecycle: Lifecycle,
    pub state: InstanceState,
    pub az: Az,
    pub tags: Tags,
    pub launch_time: DateTime<Utc>,
    /// Kubernetes cluster this instance is a node of, derived from its tags by
    /// [`cluster_from_tags`]; `None` marks an "unregistered" instance.
    pub cluster: Option<String>,
    /// Auto Scaling group that owns the instance (from the `aws:autoscaling:groupName` tag).
    pub asg_name: Option<String>,
    pub private_ip: Option<String>,
    /// Device name of the root volume (`/dev/xvda`, `/dev/sda1`), when the cloud reports it:
    /// the attached volume with this device is the root disk.
    #[serde(default)]
    pub root_device_name: Option<String>,
}

/// Derives cluster membership from instance tags.
///
/// Order matters: the EKS tag is authoritative; the generic `kubernetes.io/cluster/<name>`
/// tag (value `owned` or `shared`) covers self-managed clusters; Karpenter's discovery tag
/// covers nodes it launched. Returns `None` for instances in no cluster.
pub fn cluster_from_tags(tags: &Tags) -> Option<String> {
    if let Some(name) = tags.get(TAG_EKS_CLUSTER).filter(|v| !v.is_empty()) {
        return Some(name.clone());
    }
    let generic = tags.iter().find_map(|(k, v)| {
        let name = k.strip_prefix(TAG_K8S_CLUSTER_PREFIX)?;
        (!name.is_empty() && (v == "owned" || v == "shared")).then(|| name.to_string())
    });
    if generic.is_some() {
        return generic;
    }
    tags.get(TAG_KARPENTER_CLUSTER)
        .filter(|v| !v.is_empty())
        .cloned()
}

/// EBS volume types.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum VolumeType {
    Gp2,
    Gp3,
    Io1,
    Io2,
    St1,
    Sc1,
    Standard,
    /// A type this crate does not know yet; priced conservatively by callers.
    Other,
}

/// EBS volume states.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum VolumeState {
    Creating,
    Available,
    InUse,
    Deleting,
    Deleted,
    Error,
}

/// One EBS volume. `Available` volumes with no attachment are cleanup candidates.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Volume {
    pub id: String,
    pub size_gib: u32,
    pub volume_type: VolumeType,
    pub state: VolumeState,
    pub az: Az,
    pub create_time: DateTime<Utc>,
    /// Instance the volume is attached to, if any.
    pub attached_instance_id: Option<String>,
    /// Device name of that attachment (`/dev/xvdf`), when attached.
    #[serde(default)]
    pub device: Option<String>,
    /// When the volume was last attached; `None` if never attached. AWS does not report
    /// detach times directly; the AWS adapter derives this from CloudTrail when available.
    pub last_attached: Option<DateTime<Utc>>,
    pub tags: Tags,
}

/// Snapshot states.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SnapshotState {
    Pending,
    Completed,
    Error,
}

/// One EBS snapshot. A snapshot whose `volume_id` no longer exists and that backs no
/// image is "orphaned".
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Snapshot {
    pub id: String,
    /// Volume the snapshot was taken from. AWS reports `vol-ffffffff` for copied
    /// snapshots; the volume may have been deleted since.
    pub volume_id: Option<String>,
    /// Image (AMI) this snapshot backs; such snapshots cannot be deleted while the image
    /// is registered.
    pub source_ami: Option<String>,
    pub start_time: DateTime<Utc>,
    pub size_gib: u32,
    pub state: SnapshotState,
    pub description: String,
    pub tags: Tags,
}

/// CPU architecture of an instance type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Architecture {
    #[serde(rename = "x86_64")]
    X86_64,
    #[serde(rename = "arm64")]
    Arm64,
}

/// Coarse instance family category, from the family prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InstanceCategory {
    General,
    Compute,
    Memory,
    Burstable,
    Accelerated,
    Storage,
    Other,
}

/// Static facts about one instance type in the region.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InstanceTypeInfo {
    /// e.g. `m5.large`.
    pub name: String,
    /// e.g. `m5`.
    pub family: String,
    pub category: InstanceCategory,
    pub vcpu: u32,
    pub memory_mib: u64,
    pub architecture: Architecture,
    /// Number of GPUs (0 for none).
    pub gpus: u32,
    /// Total GPU memory.
    pub gpu_memory_mib: u64,
    /// T-family CPU-credit instance: its sustained CPU is below `vcpu`, which the bin
    /// packer must know.
    pub burstable: bool,
    /// AZs of the region offering this type (from DescribeInstanceTypeOfferings).
    pub availability_zones: Vec<Az>,
}

/// Public on-demand price of an instance type (Linux, shared tenancy).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OnDemandPrice {
    pub instance_type: String,
    pub usd_per_hour: f64,
}

/// One spot price observation of a capacity pool (instance type in an AZ). A price
/// holds from `timestamp` until the next observation of the same pool.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SpotPricePoint {
    pub instance_type: String,
    pub az: Az,
    pub usd_per_hour: f64,
    pub timestamp: DateTime<Utc>,
}

/// An Auto Scaling group.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AutoScalingGroup {
    pub name: String,
    pub min_size: u32,
    pub max_size: u32,
    pub desired_capacity: u32,
    /// Instances currently in the group (not terminated).
    pub instance_ids: Vec<String>,
    /// Instance types the group may launch (launch template or mixed-instances overrides).
    pub instance_types: Vec<String>,
    pub availability_zones: Vec<Az>,
    /// Mixed-instances policy: the first `on_demand_base_capacity` instances are
    /// on-demand, and `on_demand_percentage_above_base` percent of the rest; the others
    /// are spot. A group without a mixed policy is 0 / 100 (all on-demand).
    pub on_demand_base_capacity: u32,
    pub on_demand_percentage_above_base: u32,
    pub tags: Tags,
}

/// Requested new sizes for [`crate::Cloud::update_auto_scaling_group`]; `None` leaves a
/// value unchanged.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct AsgUpdate {
    pub name: String,
    pub min_size: Option<u32>,
    pub max_size: Option<u32>,
    pub desired_capacity: Option<u32>,
}

/// Min / max / desired node count of an EKS managed node group.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScalingConfig {
    pub min_size: u32,
    pub max_size: u32,
    pub desired_size: u32,
}

/// An EKS managed node group.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NodeGroup {
    pub name: String,
    pub instance_types: Vec<String>,
    pub capacity_type: Lifecycle,
    pub scaling: ScalingConfig,
    /// The Auto Scaling group EKS created for the node group.
    pub asg_name: Option<String>,
    pub status: String,
    pub labels: Tags,
}

/// An EKS cluster.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EksCluster {
    pub name: String,
    pub arn: String,
    /// Kubernetes minor version, e.g. `1.31`.
    pub version: String,
    pub status: String,
    pub created_at: DateTime<Utc>,
    pub node_groups: Vec<NodeGroup>,
    pub tags: Tags,
}

/// What to launch. The `client_token` makes the call idempotent: repeating a request
/// with the same token returns the instances of the first call instead of launching
/// more (AWS `ClientToken`, at most 64 ASCII characters). Use job id + action index.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LaunchRequest {
    pub instance_type: String,
    /// Target AZ; when `None` (and no subnet), the provider chooses.
    pub az: Option<Az>,
    pub subnet_id: Option<String>,
    pub lifecycle: Lifecycle,
    pub count: u32,
    pub tags: Tags,
    pub client_token: String,
    /// Attach the new instances to this Auto Scaling group (its desired capacity grows
    /// accordingly).
    pub asg_name: Option<String>,
}

/// Instances created by [`crate::Cloud::launch_capacity`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LaunchResult {
    pub instances: Vec<Instance>,
    /// True when the client token had been used before and nothing new was launched.
    pub replayed: bool,
}

/// State transition reported by [`crate::Cloud::terminate_instances`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InstanceStateChange {
    pub instance_id: String,
    pub previous: InstanceState,
    pub current: InstanceState,
}

/// What a dry run would have done. A dry run validates the request (existence,
/// parameters, permissions) but never checks capacity and never changes anything.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DryRunOk {
    /// Operation name, e.g. `TerminateInstances`.
    pub operation: String,
    /// Resources the call would touch.
    pub resource_ids: Vec<String>,
    pub message: String,
}

/// Result of a mutating call: applied, or validated only (dry run).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "outcome", content = "result", rename_all = "snake_case")]
pub enum Mutation<T> {
    Applied(T),
    DryRun(DryRunOk),
}

impl<T> Mutation<T> {
    pub fn is_dry_run(&self) -> bool {
        matches!(self, Mutation::DryRun(_))
    }

    /// The applied result, or `None` for a dry run.
    pub fn applied(self) -> Option<T> {
        match self {
            Mutation::Applied(t) => Some(t),
            Mutation::DryRun(_) => None,
        }
    }
}

/// Kinds of spot signals.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SpotEventKind {
    /// EC2 instance rebalance recommendation: elevated interruption risk, usually 10–20
    /// minutes before an interruption notice, sometimes with no interruption at all.
    RebalanceRecommendation,
    /// The two-minute spot interruption notice; `action_time` is when the instance stops.
    InterruptionNotice,
    /// The instance left the running state (EventBridge "EC2 Instance State-change
    /// Notification"): `state` is the new one (stopping, stopped, shutting-down or
    /// terminated). Not a market signal by itself: it tells the account that its view of
    /// the instance is stale.
    InstanceStateChange { state: InstanceState },
    /// AWS Health scheduled change for the instance (retirement, maintenance reboot):
    /// the instance will be disrupted at `action_time` whatever the spot market does.
    ScheduledChange,
}

/// One spot signal for one instance.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SpotEvent {
    pub kind: SpotEventKind,
    pub instance_id: String,
    /// The capacity pool: instance type ...
    pub instance_type: String,
    /// ... in this AZ.
    pub az: Az,
    /// When the signal was issued.
    pub time: DateTime<Utc>,
    /// For interruption notices, when the instance is reclaimed.
    pub action_time: Option<DateTime<Utc>>,
}

/// Kubernetes workload kinds that own pods.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum WorkloadKind {
    Deployment,
    StatefulSet,
    DaemonSet,
    Job,
    Other,
}

/// The controller that owns a pod (resolved through ReplicaSets to the Deployment).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct WorkloadRef {
    pub kind: WorkloadKind,
    pub name: String,
}

/// Pod phases that matter for capacity planning.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum PodPhase {
    /// Not bound to a node (waiting for capacity).
    Pending,
    Running,
}

/// One pod with its resource requests.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Pod {
    pub namespace: String,
    pub name: String,
    pub owner: Option<WorkloadRef>,
    pub node_name: Option<String>,
    pub phase: PodPhase,
    pub cpu_request_millicores: u32,
    pub memory_request_mib: u32,
}

/// One Kubernetes node.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KubeNode {
    /// Node name, e.g. `ip-10-0-1-23.ec2.internal`.
    pub name: String,
    pub instance_id: String,
    pub instance_type: String,
    pub az: Az,
    pub lifecycle: Lifecycle,
    pub node_group: Option<String>,
    pub allocatable_cpu_millicores: u32,
    pub allocatable_memory_mib: u32,
    pub ready: bool,
}

/// Nodes and pods of one cluster at one time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PodInventory {
    pub cluster: String,
    pub collected_at: DateTime<Utc>,
    pub nodes: Vec<KubeNode>,
    pub pods: Vec<Pod>,
}

/// Identifies a pod for [`crate::Cloud::pod_usage`].
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct PodRef {
    pub namespace: String,
    pub name: String,
}

/// Measured usage of one pod at one time (average over the sample step).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct UsageSample {
    pub at: DateTime<Utc>,
    pub cpu_millicores: u32,
    pub memory_mib: u32,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tags(pairs: &[(&str, &str)]) -> Tags {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn cluster_membership_prefers_the_eks_tag() {
        let t = tags(&[
            ("eks:cluster-name", "prod"),
            ("kubernetes.io/cluster/other", "owned"),
        ]);
        assert_eq!(cluster_from_tags(&t).as_deref(), Some("prod"));
    }

    #[test]
    fn cluster_membership_from_the_generic_kubernetes_tag() {
        let t = tags(&[("kubernetes.io/cluster/staging", "shared")]);
        assert_eq!(cluster_from_tags(&t).as_deref(), Some("staging"));
        let not_member = tags(&[("kubernetes.io/cluster/staging", "no")]);
        assert_eq!(cluster_from_tags(&not_member), None);
        assert_eq!(cluster_from_tags(&tags(&[("Name", "bastion")])), None);
    }

    #[test]
    fn mutation_serializes_with_an_explicit_outcome() {
        let m: Mutation<()> = Mutation::DryRun(DryRunOk {
            operation: "DeleteVolume".into(),
            resource_ids: vec!["vol-1".into()],
            message: "ok".into(),
        });
        let v = serde_json::to_value(&m).unwrap();
        assert_eq!(v["outcome"], "dry_run");
        assert!(m.is_dry_run());
    }
}
