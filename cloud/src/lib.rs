//! The `Cloud` port and its adapters.
//!
//! Everything the control plane needs from a cloud account goes through [`Cloud`]: a
//! narrow async trait over plain domain types ([`types`]) and one error enum
//! ([`CloudError`]). Adapters: [`sim`], a deterministic simulator of one AWS region (the
//! embedded default used for demos, tests and benchmarks), and `aws` over the AWS SDK
//! (cargo feature `aws`, on by default). The engine never sees SDK types.
//!
//! Contract shared by all adapters (tests hold the simulator to it):
//! - one `Cloud` value is bound to one account and one region;
//! - every mutating call takes `dry_run`; a dry run validates the request and returns
//!   [`Mutation::DryRun`] without changing anything (and without checking capacity);
//! - a missing resource is [`CloudError::NotFound`]; terminating an already terminated
//!   instance is not an error (EC2 terminate is idempotent);
//! - `launch_capacity` and `create_snapshot` are idempotent per `client_token`: a repeat
//!   with the same token returns what the first call made instead of making another
//!   (EC2 `CreateSnapshot` takes no token, so adapters tag the snapshot with it,
//!   [`TAG_CLIENT_TOKEN`], and look it up before creating);
//! - times come from [`Cloud::now`], which for the simulator is simulated time.
//!
//! Kubernetes (nodes, pods, PDBs, usage) is not part of this port: every cluster, real or
//! simulated, is seen through its in-cluster agent and the control plane's agent API.

#[cfg(feature = "aws")]
pub mod aws;
pub mod error;
pub mod sim;
pub mod types;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

pub use error::{CloudError, ResourceKind, Result};
pub use types::*;

/// Tag carrying the client token of a mutation on the resource it made (instances,
/// snapshots): a repeat of the call finds that resource by this tag. EC2 `CreateSnapshot`
/// takes no client token at all, and RunInstances' own token cannot tell a replay from a
/// first launch.
pub const TAG_CLIENT_TOKEN: &str = "spot-optimizer:client-token";

/// A client token is 1 to 64 ASCII characters (EC2's limit).
pub fn validate_client_token(token: &str) -> Result<()> {
    if token.is_empty() || token.len() > 64 || !token.is_ascii() {
        return Err(CloudError::invalid(
            "client_token",
            "must be 1 to 64 ASCII characters",
        ));
    }
    Ok(())
}

/// Port to one cloud account in one region.
#[async_trait]
pub trait Cloud: Send + Sync {
    /// Current time as the cloud sees it. Callers must use this, not the wall clock, for
    /// `since` arguments and schedules, so that simulated (accelerated) time works.
    fn now(&self) -> DateTime<Utc>;

    /// Region this handle is bound to.
    fn region(&self) -> &str;

    /// Who the credentials belong to; the cheapest call that proves access works.
    async fn caller_identity(&self) -> Result<CallerIdentity>;

    /// All instances, including those terminated within the last hour (as EC2 reports).
    async fn describe_instances(&self) -> Result<Vec<Instance>>;

    /// All EBS volumes.
    async fn describe_volumes(&self) -> Result<Vec<Volume>>;

    /// All EBS snapshots owned by the account.
    async fn describe_snapshots(&self) -> Result<Vec<Snapshot>>;

    /// Instance types offered in the region with their static facts.
    async fn instance_type_catalog(&self) -> Result<Vec<InstanceTypeInfo>>;

    /// On-demand prices (Linux) for the given types; an empty slice means all types.
    /// Unknown types are omitted rather than failing the call.
    async fn on_demand_prices(&self, instance_types: &[String]) -> Result<Vec<OnDemandPrice>>;

    /// Spot price observations since `since` (plus the observation in force at `since`),
    /// oldest first per pool. Empty `instance_types` / `azs` mean all.
    async fn spot_price_history(
        &self,
        instance_types: &[String],
        azs: &[Az],
        since: DateTime<Utc>,
    ) -> Result<Vec<SpotPricePoint>>;

    /// All security groups of the region (every VPC), sorted by name then id.
    async fn describe_security_groups(&self) -> Result<Vec<SecurityGroup>>;

    /// All Auto Scaling groups.
    async fn describe_auto_scaling_groups(&self) -> Result<Vec<AutoScalingGroup>>;

    /// Changes min / max / desired of a group. Rejects `min <= desired <= max`
    /// violations with [`CloudError::Invalid`]. Returns the group as updated.
    async fn update_auto_scaling_group(
        &self,
        update: &AsgUpdate,
        dry_run: bool,
    ) -> Result<Mutation<AutoScalingGroup>>;

    /// Detaches instances from their Auto Scaling group and lowers its desired capacity by
    /// as many (AWS `DetachInstances` with `ShouldDecrementDesiredCapacity`), so that
    /// terminating them afterwards launches no replacement and scales nothing else in.
    /// [`CloudError::Invalid`] when an instance is not in the group or the desired capacity
    /// would drop below the group's minimum. Returns the group as updated.
    async fn detach_from_auto_scaling_group(
        &self,
        group: &str,
        instance_ids: &[String],
        dry_run: bool,
    ) -> Result<Mutation<AutoScalingGroup>>;

    /// Names of the EKS clusters in the region.
    async fn list_eks_clusters(&self) -> Result<Vec<String>>;

    /// One EKS cluster with its managed node groups.
    async fn describe_eks_cluster(&self, name: &str) -> Result<EksCluster>;

    /// Launches instances (RunInstances). Spot launches fail with
    /// [`CloudError::InsufficientCapacity`] when the pool cannot serve `count`.
    async fn launch_capacity(
        &self,
        request: &LaunchRequest,
        dry_run: bool,
    ) -> Result<Mutation<LaunchResult>>;

    /// Terminates instances. All ids are checked first: one unknown id fails the whole
    /// call with `NotFound` and nothing is terminated.
    async fn terminate_instances(
        &self,
        instance_ids: &[String],
        dry_run: bool,
    ) -> Result<Mutation<Vec<InstanceStateChange>>>;

    /// Snapshots a volume (e.g. before deleting it). Idempotent per `client_token`: a
    /// repeat returns the snapshot the first call took (in whatever state it is now); the
    /// same token for another volume is [`CloudError::Invalid`].
    async fn create_snapshot(
        &self,
        volume_id: &str,
        client_token: &str,
        dry_run: bool,
    ) -> Result<Mutation<Snapshot>>;

    /// Deletes an unattached volume; an attached one is [`CloudError::Invalid`].
    async fn delete_volume(&self, volume_id: &str, dry_run: bool) -> Result<Mutation<()>>;

    /// Deletes a snapshot; one backing a registered image is [`CloudError::Invalid`].
    async fn delete_snapshot(&self, snapshot_id: &str, dry_run: bool) -> Result<Mutation<()>>;

    /// Detaches a data volume from its instance (`DetachVolume`); it becomes available.
    /// [`CloudError::Invalid`] when it is not attached (or is a running instance's root).
    async fn detach_volume(&self, volume_id: &str, dry_run: bool) -> Result<Mutation<Volume>>;

    /// Attaches an available volume to an instance in the same AZ as `device`
    /// (`AttachVolume`, e.g. `/dev/sdf`).
    async fn attach_volume_to(
        &self,
        volume_id: &str,
        instance_id: &str,
        device: &str,
        dry_run: bool,
    ) -> Result<Mutation<Volume>>;

    /// Spot signals (rebalance recommendations, interruption notices) issued after
    /// `since`, oldest first. Adapters keep at least the last 24 hours.
    async fn poll_events(&self, since: DateTime<Utc>) -> Result<Vec<SpotEvent>>;
}
