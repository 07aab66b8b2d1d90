//! `aws`: the [`Cloud`] port over the AWS SDK for Rust (EC2, Auto Scaling, STS, EKS).
//!
//! ```no_run
//! use spot_cloud::aws::{AwsCloud, AwsConfig, AwsCredentials};
//! use spot_cloud::Cloud;
//! # async fn demo() -> spot_cloud::Result<()> {
//! let cloud = AwsCloud::connect(AwsConfig {
//!     region: "us-east-1".into(),
//!     credentials: AwsCredentials::AssumeRole {
//!         role_arn: "arn:aws:iam::123456789012:role/SpotOptimizer".into(),
//!         external_id: "generated-per-linked-account".into(),
//!         session_name: "spot-optimizer-123456789012".into(),
//!         base: Box::new(AwsCredentials::Ambient),
//!     },
//!     endpoint_url: None,
//! })
//! .await?;
//! let me = cloud.caller_identity().await?;
//! let missing = cloud.check_permissions().await?;
//! # let _ = (me, missing);
//! # Ok(()) }
//! ```
//!
//! Behaviour worth knowing (see also the port contract in the crate docs):
//! - **Retries.** The SDK's standard retry mode retries throttling and transient errors
//!   with jittered exponential backoff, up to [`MAX_ATTEMPTS`] attempts per request (each
//!   page of a paginated call counts separately). What is still throttled after that is
//!   [`CloudError::Throttled`], for the caller's own (job-level) backoff.
//! - **Pagination.** Every list call follows `NextToken` to the end.
//! - **Dry runs.** EC2 mutations are sent with `DryRun=true` and EC2's
//!   `DryRunOperation` answer becomes [`Mutation::DryRun`]. Auto Scaling and EKS have no
//!   dry-run flag: the adapter validates by describing the target and changes nothing.
//! - **Role credentials** (`AssumeRole` + external id) are cached in memory by the SDK's
//!   identity cache and refreshed [`CREDENTIAL_REFRESH_BUFFER`] before they expire; no
//!   credential is ever written anywhere or logged.
//! - **On-demand prices** do not exist in the EC2 API (they are in the separate Pricing
//!   service, only in us-east-1 / ap-south-1); the adapter answers from the embedded
//!   public us-east-1 Linux price list the simulator uses ([`crate::sim::Catalog`]).
//! - **Spot events** ([`Cloud::poll_events`]) come from the interruption queue the
//!   customer's CloudFormation stack creates (EventBridge rules into SQS, as Karpenter
//!   does it; see [`interruption`]): long-polled, parsed, resolved to their pools and
//!   deleted. Without the queue the answer is empty, never an error.
//! - **Nodes, pods and usage** are not read through this port at all: the in-cluster agent
//!   reports them to the control plane's agent API.

pub mod config;
mod convert;
mod error;
pub mod interruption;

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use aws_config::identity::IdentityCache;
use aws_config::retry::RetryConfig;
use aws_config::sts::AssumeRoleProvider;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, ConfigLoader, Region, SdkConfig};
use aws_credential_types::Credentials;
use aws_sdk_autoscaling::types as asg_types;
use aws_sdk_ec2::client::Waiters;
use aws_sdk_ec2::error::SdkError;
use aws_sdk_ec2::types as ec2_types;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use chrono::{DateTime, Utc};

pub use self::config::{AwsConfig, AwsCredentials, Secret};
use self::error::{code_of, map_sdk_err, ErrCtx, DRY_RUN_OK};
use self::interruption::InterruptionQueue;
pub use self::interruption::DEFAULT_INTERRUPTION_QUEUE;
use crate::error::{CloudError, ResourceKind, Result};
use crate::sim::Catalog;
use crate::types::*;
use crate::Cloud;

/// Attempts per request (first try included) before a throttled call surfaces as
/// [`CloudError::Throttled`]. Five attempts with the SDK's backoff span ~10–20 s, long
/// enough to ride out a burst without stalling a job for minutes.
pub const MAX_ATTEMPTS: u32 = 5;

/// Assumed-role credentials are refreshed this long before they expire, so a request
/// never starts with credentials that die mid-pagination.
pub const CREDENTIAL_REFRESH_BUFFER: Duration = Duration::from_secs(300);

/// Tag put on instances launched by [`Cloud::launch_capacity`] and snapshots taken by
/// [`Cloud::create_snapshot`], holding the client token. EC2's own `ClientToken` makes
/// RunInstances idempotent but cannot tell a replay from a first launch (and
/// DescribeInstances' `client-token` filter is not universally supported), and
/// CreateSnapshot has none: this tag lets the adapter find and report the earlier call.
pub use crate::TAG_CLIENT_TOKEN;

/// How long [`Cloud::launch_capacity`] waits for instances to run before attaching them
/// to an Auto Scaling group (AttachInstances needs running instances).
const ATTACH_WAIT: Duration = Duration::from_secs(600);

/// The AWS adapter: one account (the credentials' account) in one region.
#[derive(Debug, Clone)]
pub struct AwsCloud {
    region: String,
    ec2: aws_sdk_ec2::Client,
    autoscaling: aws_sdk_autoscaling::Client,
    sts: aws_sdk_sts::Client,
    eks: aws_sdk_eks::Client,
    sqs: aws_sdk_sqs::Client,
    /// Spot signal queue settings and its cached URL (shared by clones).
    interruptions: Arc<InterruptionQueue>,
}

impl AwsCloud {
    /// Builds the SDK clients. Makes no network call, so a bad role or key shows up on
    /// the first request (use [`Cloud::caller_identity`] to verify a linked account).
    /// Fails with [`CloudError::Invalid`] on malformed configuration.
    pub async fn connect(config: AwsConfig) -> Result<Self> {
        validate(&config)?;
        let endpoint = config.endpoint_url.as_deref();
        let sdk = sdk_config(&config.region, endpoint, &config.credentials).await?;
        Ok(AwsCloud {
            region: config.region,
            ec2: aws_sdk_ec2::Client::new(&sdk),
            autoscaling: aws_sdk_autoscaling::Client::new(&sdk),
            sts: aws_sdk_sts::Client::new(&sdk),
            eks: aws_sdk_eks::Client::new(&sdk),
            sqs: aws_sdk_sqs::Client::new(&sdk),
            interruptions: Arc::new(InterruptionQueue::new(
                DEFAULT_INTERRUPTION_QUEUE.to_string(),
                interruption::DEFAULT_POLL_WAIT,
            )),
        })
    }

    /// Reads spot signals from the SQS queue `name` instead of
    /// [`DEFAULT_INTERRUPTION_QUEUE`] (a stack deployed with another
    /// `InterruptionQueueName`). Fails with [`CloudError::Invalid`] on a name SQS would
    /// reject (1–80 characters of letters, digits, `-`, `_`).
    pub fn with_interruption_queue(mut self, name: impl Into<String>) -> Result<Self> {
        let name = name.into();
        interruption::validate_queue_name(&name)?;
        let wait = self.interruptions.wait();
        self.interruptions = Arc::new(InterruptionQueue::new(name, wait));
        Ok(self)
    }

    /// Long-poll wait of the first receive in [`Cloud::poll_events`] (default
    /// [`interruption::DEFAULT_POLL_WAIT`]); at most [`interruption::MAX_POLL_WAIT`] so
    /// the caller is never stalled for long.
    pub fn with_interruption_poll_wait(mut self, wait: Duration) -> Result<Self> {
        if wait > interruption::MAX_POLL_WAIT {
            return Err(CloudError::invalid(
                "interruption_poll_wait",
                format!(
                    "must be at most {} s",
                    interruption::MAX_POLL_WAIT.as_secs()
                ),
            ));
        }
        let name = self.interruptions.name().to_string();
        self.interruptions = Arc::new(InterruptionQueue::new(name, wait));
        Ok(self)
    }

    /// Name of the SQS queue spot signals are read from.
    pub fn interruption_queue(&self) -> &str {
        self.interruptions.name()
    }

    /// Calls each read-only API the product depends on once (smallest page) and returns
    /// the IAM actions that were denied, e.g. `["ec2:DescribeSnapshots"]`; empty means the
    /// linked role is good. Account verification shows the list to the customer so they
    /// can fix the role's policy. Failures other than a denial (throttling, network) are
    /// returned as errors, since they say nothing about permissions.
    pub async fn check_permissions(&self) -> Result<Vec<String>> {
        let mut missing = Vec::new();
        let mut record = |action: &'static str, res: Result<()>| match res {
            Ok(()) => Ok(()),
            Err(CloudError::Unauthorized(_)) => {
                missing.push(action.to_string());
                Ok(())
            }
            Err(e) => Err(e),
        };
        let a = "ec2:DescribeInstances";
        let r = self.ec2.describe_instances().max_results(5).send().await;
        record(a, r.map(drop).map_err(|e| map_sdk_err(e, &ErrCtx::new(a))))?;
        let a = "ec2:DescribeVolumes";
        let r = self.ec2.describe_volumes().max_results(5).send().await;
        record(a, r.map(drop).map_err(|e| map_sdk_err(e, &ErrCtx::new(a))))?;
        let a = "ec2:DescribeSnapshots";
        let r = self
            .ec2
            .describe_snapshots()
            .owner_ids("self")
            .max_results(5)
            .send()
            .await;
        record(a, r.map(drop).map_err(|e| map_sdk_err(e, &ErrCtx::new(a))))?;
        let a = "ec2:DescribeSpotPriceHistory";
        let r = self
            .ec2
            .describe_spot_price_history()
            .instance_types(ec2_types::InstanceType::M5Large)
            .product_descriptions("Linux/UNIX")
            .start_time(convert::sdk_time(Utc::now()))
            .max_results(5)
            .send()
            .await;
        record(a, r.map(drop).map_err(|e| map_sdk_err(e, &ErrCtx::new(a))))?;
        let a = "autoscaling:DescribeAutoScalingGroups";
        let r = self
            .autoscaling
            .describe_auto_scaling_groups()
            .max_records(1)
            .send()
            .await;
        record(a, r.map(drop).map_err(|e| map_sdk_err(e, &ErrCtx::new(a))))?;
        let a = "eks:ListClusters";
        let r = self.eks.list_clusters().max_results(1).send().await;
        record(a, r.map(drop).map_err(|e| map_sdk_err(e, &ErrCtx::new(a))))?;
        Ok(missing)
    }

    /// Raw groups, all of them or the named ones.
    async fn raw_groups(&self, names: &[String]) -> Result<Vec<asg_types::AutoScalingGroup>> {
        let ctx = ErrCtx::new("autoscaling:DescribeAutoScalingGroups");
        let mut req = self
            .autoscaling
            .describe_auto_scaling_groups()
            .max_records(100);
        if !names.is_empty() {
            req = req.set_auto_scaling_group_names(Some(names.to_vec()));
        }
        let mut pages = req.into_paginator().send();
        let mut out = Vec::new();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| map_sdk_err(e, &ctx))?;
            out.extend(page.auto_scaling_groups().iter().cloned());
        }
        Ok(out)
    }

    /// One raw group; [`CloudError::NotFound`] when it does not exist (Auto Scaling
    /// answers an unknown name with an empty list, not an error).
    async fn raw_group(&self, name: &str) -> Result<asg_types::AutoScalingGroup> {
        self.raw_groups(&[name.to_string()])
            .await?
            .into_iter()
            .find(|g| g.auto_scaling_group_name() == Some(name))
            .ok_or_else(|| CloudError::not_found(ResourceKind::AutoScalingGroup, name))
    }

    /// Groups as port values, with the instance types of their launch templates and
    /// launch configurations added. That enrichment is best effort: a group scaled to
    /// zero still shows its type, but a denied or failed lookup (e.g. no
    /// `ec2:DescribeLaunchTemplateVersions`) only logs and leaves the list shorter.
    async fn groups_view(
        &self,
        raw: Vec<asg_types::AutoScalingGroup>,
    ) -> Result<Vec<AutoScalingGroup>> {
        let mut template_types: HashMap<(String, String), Option<String>> = HashMap::new();
        let mut config_names: BTreeSet<String> = BTreeSet::new();
        for g in &raw {
            if let Some(key) = template_key(g) {
                template_types.entry(key).or_insert(None);
            }
            if let Some(lc) = g.launch_configuration_name() {
                config_names.insert(lc.to_string());
            }
        }
        for (key, slot) in template_types.iter_mut() {
            match self.template_instance_type(&key.0, &key.1).await {
                Ok(t) => *slot = t,
                Err(e) => {
                    tracing::warn!(template = %key.0, error = %e, "launch template lookup failed")
                }
            }
        }
        let config_types = match self.launch_configuration_types(&config_names).await {
            Ok(m) => m,
            Err(e) => {
                tracing::warn!(error = %e, "launch configuration lookup failed");
                HashMap::new()
            }
        };
        let mut out = Vec::with_capacity(raw.len());
        for g in &raw {
            let Some(mut view) = convert::auto_scaling_group(g) else {
                continue;
            };
            let extra = template_key(g)
                .and_then(|k| template_types.get(&k).cloned().flatten())
                .into_iter()
                .chain(
                    g.launch_configuration_name()
                        .and_then(|n| config_types.get(n).cloned()),
                );
            view.instance_types.extend(extra);
            view.instance_types.sort();
            view.instance_types.dedup();
            out.push(view);
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    /// Instance type set in a launch template version (`None` when the template leaves
    /// it to overrides).
    async fn template_instance_type(
        &self,
        template: &str,
        version: &str,
    ) -> Result<Option<String>> {
        let ctx = ErrCtx::new("ec2:DescribeLaunchTemplateVersions");
        let mut req = self
            .ec2
            .describe_launch_template_versions()
            .versions(version);
        req = if template.starts_with("lt-") {
            req.launch_template_id(template)
        } else {
            req.launch_template_name(template)
        };
        let out = req.send().await.map_err(|e| map_sdk_err(e, &ctx))?;
        Ok(out
            .launch_template_versions()
            .first()
            .and_then(|v| v.launch_template_data())
            .and_then(|d| d.instance_type())
            .map(|t| t.as_str().to_string()))
    }

    async fn launch_configuration_types(
        &self,
        names: &BTreeSet<String>,
    ) -> Result<HashMap<String, String>> {
        let ctx = ErrCtx::new("autoscaling:DescribeLaunchConfigurations");
        let names: Vec<String> = names.iter().cloned().collect();
        let mut out = HashMap::new();
        // The API takes at most 50 names per call.
        for chunk in names.chunks(50) {
            let mut pages = self
                .autoscaling
                .describe_launch_configurations()
                .set_launch_configuration_names(Some(chunk.to_vec()))
                .into_paginator()
                .send();
            while let Some(page) = pages.next().await {
                let page = page.map_err(|e| map_sdk_err(e, &ctx))?;
                for lc in page.launch_configurations() {
                    if let (Some(n), Some(t)) = (lc.launch_configuration_name(), lc.instance_type())
                    {
                        out.insert(n.to_string(), t.to_string());
                    }
                }
            }
        }
        Ok(out)
    }

    /// Instances matching `filters` (all when empty).
    async fn instances_where(&self, filters: Vec<ec2_types::Filter>) -> Result<Vec<Instance>> {
        let ctx = ErrCtx::new("ec2:DescribeInstances");
        let mut req = self.ec2.describe_instances().max_results(1000);
        if !filters.is_empty() {
            req = req.set_filters(Some(filters));
        }
        let mut pages = req.into_paginator().send();
        let mut out = Vec::new();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| map_sdk_err(e, &ctx))?;
            for r in page.reservations() {
                out.extend(r.instances().iter().filter_map(convert::instance));
            }
        }
        Ok(out)
    }

    /// Instances by id; an unknown id fails with `NotFound` (EC2 semantics).
    async fn instances_by_id(&self, ids: &[String]) -> Result<Vec<Instance>> {
        let mut out = Vec::new();
        // EC2 accepts at most 1000 ids per call and then forbids MaxResults.
        for chunk in ids.chunks(1000) {
            let ctx = ErrCtx::new("ec2:DescribeInstances").resource(
                ResourceKind::Instance,
                chunk.first().cloned().unwrap_or_default(),
            );
            let mut pages = self
                .ec2
                .describe_instances()
                .set_instance_ids(Some(chunk.to_vec()))
                .into_paginator()
                .send();
            while let Some(page) = pages.next().await {
                let page = page.map_err(|e| map_sdk_err(e, &ctx))?;
                for r in page.reservations() {
                    out.extend(r.instances().iter().filter_map(convert::instance));
                }
            }
        }
        Ok(out)
    }

    async fn volume_by_id(&self, volume_id: &str) -> Result<Volume> {
        let ctx = ErrCtx::new("ec2:DescribeVolumes").resource(ResourceKind::Volume, volume_id);
        let out = self
            .ec2
            .describe_volumes()
            .volume_ids(volume_id)
            .send()
            .await
            .map_err(|e| map_sdk_err(e, &ctx))?;
        out.volumes()
            .iter()
            .filter_map(convert::volume)
            .find(|v| v.id == volume_id)
            .ok_or_else(|| CloudError::not_found(ResourceKind::Volume, volume_id))
    }

    async fn snapshot_by_id(&self, snapshot_id: &str) -> Result<Snapshot> {
        let ctx =
            ErrCtx::new("ec2:DescribeSnapshots").resource(ResourceKind::Snapshot, snapshot_id);
        let out = self
            .ec2
            .describe_snapshots()
            .snapshot_ids(snapshot_id)
            .send()
            .await
            .map_err(|e| map_sdk_err(e, &ctx))?;
        out.snapshots()
            .iter()
            .filter_map(convert::snapshot)
            .find(|s| s.id == snapshot_id)
            .ok_or_else(|| CloudError::not_found(ResourceKind::Snapshot, snapshot_id))
    }

    /// Newest Amazon Linux 2023 image (falling back to Amazon Linux 2) for the type's
    /// architecture, for launches that have no Auto Scaling group (and so no launch
    /// template) to take an image from.
    async fn default_image(&self, instance_type: &str) -> Result<String> {
        let ctx = ErrCtx::new("ec2:DescribeInstanceTypes")
            .resource(ResourceKind::InstanceType, instance_type);
        let info = self
            .ec2
            .describe_instance_types()
            .instance_types(ec2_types::InstanceType::from(instance_type))
            .send()
            .await
            .map_err(|e| map_sdk_err(e, &ctx))?;
        let arm = info
            .instance_types()
            .first()
            .and_then(|t| t.processor_info())
            .map(|p| {
                p.supported_architectures()
                    .iter()
                    .any(|a| a.as_str() == "arm64")
            })
            .unwrap_or(false);
        let arch = if arm { "arm64" } else { "x86_64" };
        let ctx = ErrCtx::new("ec2:DescribeImages");
        for pattern in [
            format!("al2023-ami-2023.*-kernel-*-{arch}"),
            format!("amzn2-ami-hvm-*-{arch}-gp2"),
        ] {
            let out = self
                .ec2
                .describe_images()
                .owners("amazon")
                .filters(filter("name", [pattern]))
                .filters(filter("architecture", [arch.to_string()]))
                .send()
                .await
                .map_err(|e| map_sdk_err(e, &ctx))?;
            let newest = out
                .images()
                .iter()
                .filter_map(|i| Some((i.creation_date().unwrap_or(""), i.image_id()?)))
                .max();
            if let Some((_, id)) = newest {
                return Ok(id.to_string());
            }
        }
        Err(CloudError::invalid(
            "instance_type",
            format!("no Amazon Linux image for {arch} in {}", self.region),
        ))
    }

    /// A subnet of the group's `VPCZoneIdentifier`, in `az` when one is requested.
    async fn group_subnet(
        &self,
        group: &asg_types::AutoScalingGroup,
        az: Option<&str>,
    ) -> Result<Option<String>> {
        let subnets: Vec<String> = group
            .vpc_zone_identifier()
            .unwrap_or("")
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect();
        let Some(az) = az else {
            return Ok(subnets.first().cloned());
        };
        if subnets.is_empty() {
            return Ok(None);
        }
        let ctx = ErrCtx::new("ec2:DescribeSubnets");
        let out = self
            .ec2
            .describe_subnets()
            .set_subnet_ids(Some(subnets))
            .send()
            .await
            .map_err(|e| map_sdk_err(e, &ctx))?;
        let found = out
            .subnets()
            .iter()
            .find(|s| s.availability_zone() == Some(az))
            .and_then(|s| s.subnet_id())
            .map(str::to_string);
        match found {
            Some(s) => Ok(Some(s)),
            None => Err(CloudError::invalid(
                "az",
                format!(
                    "group {} has no subnet in {az}",
                    group.auto_scaling_group_name().unwrap_or("")
                ),
            )),
        }
    }
}

/// `(template id or name, version)` a group launches from, if it uses a template.
fn template_key(g: &asg_types::AutoScalingGroup) -> Option<(String, String)> {
    let spec = g.launch_template().or_else(|| {
        g.mixed_instances_policy()
            .and_then(|m| m.launch_template())
            .and_then(|lt| lt.launch_template_specification())
    })?;
    let template = spec
        .launch_template_id()
        .or(spec.launch_template_name())?
        .to_string();
    let version = spec.version().unwrap_or("$Default").to_string();
    Some((template, version))
}

fn filter(name: &str, values: impl IntoIterator<Item = String>) -> ec2_types::Filter {
    ec2_types::Filter::builder()
        .name(name)
        .set_values(Some(values.into_iter().collect()))
        .build()
}

/// `u32` from the port → `i32` for the SDK.
fn to_i32(field: &str, v: u32) -> Result<i32> {
    i32::try_from(v).map_err(|_| CloudError::invalid(field, format!("{v} is too large")))
}

/// Interprets the answer to an EC2 request sent with `DryRun=true`.
fn dry_run_answer<T, E, R, U>(
    res: std::result::Result<T, SdkError<E, R>>,
    ctx: &ErrCtx,
    ok: DryRunOk,
) -> Result<Mutation<U>>
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug + 'static,
{
    match res {
        Err(e) if code_of(&e) == Some(DRY_RUN_OK) => Ok(Mutation::DryRun(ok)),
        Err(e) => Err(map_sdk_err(e, ctx)),
        // Only an endpoint that ignores DryRun answers success; it may have acted, and
        // the caller must hear about it rather than believe nothing happened.
        Ok(_) => Err(CloudError::Other(format!(
            "{}: the endpoint ignored DryRun=true and performed the call",
            ctx.action
        ))),
    }
}

fn validate(config: &AwsConfig) -> Result<()> {
    let region_ok = !config.region.is_empty()
        && config
            .region
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if !region_ok {
        return Err(CloudError::invalid(
            "region",
            format!("{:?} is not a region name", config.region),
        ));
    }
    if let Some(url) = &config.endpoint_url {
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            return Err(CloudError::invalid(
                "endpoint_url",
                "must be an http(s) URL",
            ));
        }
    }
    validate_credentials(&config.credentials)
}

fn validate_credentials(creds: &AwsCredentials) -> Result<()> {
    match creds {
        AwsCredentials::AccessKeys {
            access_key_id,
            secret_access_key,
        } => {
            if access_key_id.trim().is_empty() {
                return Err(CloudError::invalid("access_key_id", "is empty"));
            }
            if secret_access_key.is_empty() {
                return Err(CloudError::invalid("secret_access_key", "is empty"));
            }
            Ok(())
        }
        AwsCredentials::AssumeRole {
            role_arn,
            external_id,
            session_name,
            base,
        } => {
            if !(role_arn.starts_with("arn:") && role_arn.contains(":role/")) {
                return Err(CloudError::invalid("role_arn", "must be an IAM role ARN"));
            }
            // STS limits: external id 2–1224 chars, session name 2–64 of [\w+=,.@-].
            if !(2..=1224).contains(&external_id.len()) {
                return Err(CloudError::invalid(
                    "external_id",
                    "must be 2 to 1224 characters",
                ));
            }
            let name_ok = (2..=64).contains(&session_name.len())
                && session_name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "_+=,.@-".contains(c));
            if !name_ok {
                return Err(CloudError::invalid(
                    "session_name",
                    "must be 2 to 64 characters of letters, digits and _+=,.@-",
                ));
            }
            validate_credentials(base)
        }
        AwsCredentials::Ambient => Ok(()),
    }
}

/// Shared settings of every SDK client: region, endpoint override, retries, time-outs
/// and the identity cache that refreshes temporary credentials early.
fn loader(region: &str, endpoint: Option<&str>) -> ConfigLoader {
    let retry = RetryConfig::standard()
        .with_max_attempts(MAX_ATTEMPTS)
        .with_initial_backoff(Duration::from_millis(200))
        .with_max_backoff(Duration::from_secs(20));
    let timeouts = TimeoutConfig::builder()
        .connect_timeout(Duration::from_secs(5))
        .operation_attempt_timeout(Duration::from_secs(60))
        .operation_timeout(Duration::from_secs(180))
        .build();
    let mut l = aws_config::defaults(BehaviorVersion::latest())
        .region(Region::new(region.to_string()))
        .retry_config(retry)
        .timeout_config(timeouts)
        .identity_cache(
            IdentityCache::lazy()
                .buffer_time(CREDENTIAL_REFRESH_BUFFER)
                // Room for AssumeRole's own retries (the default is 5 s).
                .load_timeout(Duration::from_secs(30))
                .build(),
        );
    if let Some(url) = endpoint {
        l = l.endpoint_url(url);
    }
    l
}

/// SDK configuration whose credentials come from `creds`; recursive for role chains.
fn sdk_config<'a>(
    region: &'a str,
    endpoint: Option<&'a str>,
    creds: &'a AwsCredentials,
) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<SdkConfig>> + Send + 'a>> {
    Box::pin(async move {
        match creds {
            AwsCredentials::AccessKeys {
                access_key_id,
                secret_access_key,
            } => {
                let static_creds = Credentials::new(
                    access_key_id.clone(),
                    secret_access_key.expose().to_string(),
                    None,
                    None,
                    "spot-optimizer-access-keys",
                );
                Ok(loader(region, endpoint)
                    .credentials_provider(static_creds)
                    .load()
                    .await)
            }
            AwsCredentials::AssumeRole {
                role_arn,
                external_id,
                session_name,
                base,
            } => {
                let base_config = sdk_config(region, endpoint, base).await?;
                // The provider signs AssumeRole with the base credentials and talks to the
                // same (possibly overridden) STS endpoint; caching and early refresh are
                // done by the identity cache of the clients that use it.
                let provider = AssumeRoleProvider::builder(role_arn.clone())
                    .external_id(external_id.clone())
                    .session_name(session_name.clone())
                    .configure(&base_config)
                    .build()
                    .await;
                Ok(loader(region, endpoint)
                    .credentials_provider(provider)
                    .load()
                    .await)
            }
            AwsCredentials::Ambient => {
                let config = loader(region, endpoint).load().await;
                if config.credentials_provider().is_none() {
                    return Err(CloudError::Unauthorized(
                        "no ambient AWS credentials are configured".into(),
                    ));
                }
                Ok(config)
            }
        }
    })
}

#[async_trait]
impl Cloud for AwsCloud {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }

    fn region(&self) -> &str {
        &self.region
    }

    async fn caller_identity(&self) -> Result<CallerIdentity> {
        let ctx = ErrCtx::new("sts:GetCallerIdentity");
        let out = self
            .sts
            .get_caller_identity()
            .send()
            .await
            .map_err(|e| map_sdk_err(e, &ctx))?;
        Ok(CallerIdentity {
            account_id: out.account().unwrap_or("").to_string(),
            arn: out.arn().unwrap_or("").to_string(),
            user_id: out.user_id().unwrap_or("").to_string(),
        })
    }

    async fn describe_instances(&self) -> Result<Vec<Instance>> {
        self.instances_where(Vec::new()).await
    }

    async fn describe_volumes(&self) -> Result<Vec<Volume>> {
        let ctx = ErrCtx::new("ec2:DescribeVolumes");
        let mut pages = self
            .ec2
            .describe_volumes()
            .max_results(500)
            .into_paginator()
            .send();
        let mut out = Vec::new();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| map_sdk_err(e, &ctx))?;
            out.extend(page.volumes().iter().filter_map(convert::volume));
        }
        Ok(out)
    }

    async fn describe_security_groups(&self) -> Result<Vec<SecurityGroup>> {
        let ctx = ErrCtx::new("ec2:DescribeSecurityGroups");
        let mut pages = self
            .ec2
            .describe_security_groups()
            .max_results(1000)
            .into_paginator()
            .send();
        let mut out = Vec::new();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| map_sdk_err(e, &ctx))?;
            out.extend(
                page.security_groups()
                    .iter()
                    .filter_map(convert::security_group),
            );
        }
        out.sort_by(|a, b| a.name.cmp(&b.name).then(a.id.cmp(&b.id)));
        Ok(out)
    }

    async fn describe_snapshots(&self) -> Result<Vec<Snapshot>> {
        let ctx = ErrCtx::new("ec2:DescribeSnapshots");
        let mut pages = self
            .ec2
            .describe_snapshots()
            .owner_ids("self")
            .max_results(1000)
            .into_paginator()
            .send();
        let mut out = Vec::new();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| map_sdk_err(e, &ctx))?;
            out.extend(page.snapshots().iter().filter_map(convert::snapshot));
        }
        Ok(out)
    }

    async fn instance_type_catalog(&self) -> Result<Vec<InstanceTypeInfo>> {
        let ctx = ErrCtx::new("ec2:DescribeInstanceTypeOfferings");
        let mut azs_of: HashMap<String, BTreeSet<String>> = HashMap::new();
        let mut pages = self
            .ec2
            .describe_instance_type_offerings()
            .location_type(ec2_types::LocationType::AvailabilityZone)
            .max_results(1000)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| map_sdk_err(e, &ctx))?;
            for o in page.instance_type_offerings() {
                if let (Some(t), Some(az)) = (o.instance_type(), o.location()) {
                    azs_of
                        .entry(t.as_str().to_string())
                        .or_default()
                        .insert(az.to_string());
                }
            }
        }
        let ctx = ErrCtx::new("ec2:DescribeInstanceTypes");
        let mut pages = self
            .ec2
            .describe_instance_types()
            .max_results(100)
            .into_paginator()
            .send();
        let mut out = Vec::new();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| map_sdk_err(e, &ctx))?;
            for t in page.instance_types() {
                let name = t.instance_type().map(|n| n.as_str()).unwrap_or("");
                let azs = azs_of
                    .get(name)
                    .map(|s| s.iter().cloned().collect())
                    .unwrap_or_default();
                out.extend(convert::instance_type_info(t, azs));
            }
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    /// From the embedded public price list (us-east-1, Linux, shared tenancy), whatever
    /// the region: the EC2 API has no prices. Regional differences are a few percent and
    /// cancel out in savings ratios; a Pricing API source can replace this later.
    async fn on_demand_prices(&self, instance_types: &[String]) -> Result<Vec<OnDemandPrice>> {
        let catalog = Catalog::embedded();
        let price = |t: &crate::sim::catalog::CatalogType| OnDemandPrice {
            instance_type: t.name.clone(),
            usd_per_hour: t.on_demand_usd_per_hour,
        };
        Ok(if instance_types.is_empty() {
            catalog.types().iter().map(price).collect()
        } else {
            instance_types
                .iter()
                .filter_map(|n| catalog.get(n))
                .map(price)
                .collect()
        })
    }

    async fn spot_price_history(
        &self,
        instance_types: &[String],
        azs: &[Az],
        since: DateTime<Utc>,
    ) -> Result<Vec<SpotPricePoint>> {
        let ctx = ErrCtx::new("ec2:DescribeSpotPriceHistory");
        let mut req = self
            .ec2
            .describe_spot_price_history()
            .product_descriptions("Linux/UNIX")
            .start_time(convert::sdk_time(since))
            .end_time(convert::sdk_time(Utc::now()))
            .max_results(1000);
        for t in instance_types {
            req = req.instance_types(ec2_types::InstanceType::from(t.as_str()));
        }
        if !azs.is_empty() {
            req = req.filters(filter("availability-zone", azs.iter().cloned()));
        }
        let mut pages = req.into_paginator().send();
        let mut out = Vec::new();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| map_sdk_err(e, &ctx))?;
            out.extend(
                page.spot_price_history()
                    .iter()
                    .filter_map(convert::spot_price)
                    .filter(|p| azs.is_empty() || azs.contains(&p.az)),
            );
        }
        // AWS answers newest first across pools; the port wants oldest first per pool.
        out.sort_by(|a, b| {
            (&a.instance_type, &a.az, a.timestamp).cmp(&(&b.instance_type, &b.az, b.timestamp))
        });
        Ok(out)
    }

    async fn describe_auto_scaling_groups(&self) -> Result<Vec<AutoScalingGroup>> {
        let raw = self.raw_groups(&[]).await?;
        self.groups_view(raw).await
    }

    /// Auto Scaling has no DryRun: a dry run describes the group, checks the new sizes
    /// and returns without calling UpdateAutoScalingGroup.
    async fn update_auto_scaling_group(
        &self,
        update: &AsgUpdate,
        dry_run: bool,
    ) -> Result<Mutation<AutoScalingGroup>> {
        let group = self.raw_group(&update.name).await?;
        let current = |v: Option<i32>| v.and_then(|v| u32::try_from(v).ok()).unwrap_or(0);
        let min = update.min_size.unwrap_or(current(group.min_size()));
        let max = update.max_size.unwrap_or(current(group.max_size()));
        let desired = update
            .desired_capacity
            .unwrap_or(current(group.desired_capacity()));
        if min > max {
            return Err(CloudError::invalid(
                "min_size",
                format!("min {min} exceeds max {max}"),
            ));
        }
        if desired < min || desired > max {
            return Err(CloudError::invalid(
                "desired_capacity",
                format!("desired {desired} outside [{min}, {max}]"),
            ));
        }
        if dry_run {
            return Ok(Mutation::DryRun(DryRunOk {
                operation: "UpdateAutoScalingGroup".into(),
                resource_ids: vec![update.name.clone()],
                message: format!(
                    "would set min={min} max={max} desired={desired} (validated by describing the group; Auto Scaling has no DryRun)"
                ),
            }));
        }
        let ctx = ErrCtx::new("autoscaling:UpdateAutoScalingGroup")
            .resource(ResourceKind::AutoScalingGroup, &update.name);
        self.autoscaling
            .update_auto_scaling_group()
            .auto_scaling_group_name(&update.name)
            .set_min_size(update.min_size.map(|v| to_i32("min_size", v)).transpose()?)
            .set_max_size(update.max_size.map(|v| to_i32("max_size", v)).transpose()?)
            .set_desired_capacity(
                update
                    .desired_capacity
                    .map(|v| to_i32("desired_capacity", v))
                    .transpose()?,
            )
            .send()
            .await
            .map_err(|e| map_sdk_err(e, &ctx))?;
        let group = self.raw_group(&update.name).await?;
        self.groups_view(vec![group])
            .await?
            .into_iter()
            .next()
            .map(Mutation::Applied)
            .ok_or_else(|| CloudError::not_found(ResourceKind::AutoScalingGroup, &update.name))
    }

    async fn detach_from_auto_scaling_group(
        &self,
        group: &str,
        instance_ids: &[String],
        dry_run: bool,
    ) -> Result<Mutation<AutoScalingGroup>> {
        let g = self.raw_group(group).await?;
        if instance_ids.is_empty() {
            return Err(CloudError::invalid(
                "instance_ids",
                "at least one instance is required",
            ));
        }
        let members: Vec<&str> = g
            .instances()
            .iter()
            .filter_map(|i| i.instance_id())
            .collect();
        if let Some(id) = instance_ids
            .iter()
            .find(|id| !members.contains(&id.as_str()))
        {
            return Err(CloudError::invalid(
                "instance_ids",
                format!("{id} is not in Auto Scaling group {group}"),
            ));
        }
        let current = |v: Option<i32>| v.and_then(|v| u32::try_from(v).ok()).unwrap_or(0);
        let (min, desired) = (current(g.min_size()), current(g.desired_capacity()));
        let n = instance_ids.len() as u32;
        if desired < min + n {
            return Err(CloudError::invalid(
                "desired_capacity",
                format!("detaching {n} would take desired {desired} below min {min}"),
            ));
        }
        if dry_run {
            return Ok(Mutation::DryRun(DryRunOk {
                operation: "DetachInstances".into(),
                resource_ids: instance_ids.to_vec(),
                message: format!(
                    "would detach from {group} and set desired={} (validated by describing the group; Auto Scaling has no DryRun)",
                    desired - n
                ),
            }));
        }
        let ctx = ErrCtx::new("autoscaling:DetachInstances")
            .resource(ResourceKind::AutoScalingGroup, group);
        self.autoscaling
            .detach_instances()
            .auto_scaling_group_name(group)
            .set_instance_ids(Some(instance_ids.to_vec()))
            .should_decrement_desired_capacity(true)
            .send()
            .await
            .map_err(|e| map_sdk_err(e, &ctx))?;
        let group_now = self.raw_group(group).await?;
        self.groups_view(vec![group_now])
            .await?
            .into_iter()
            .next()
            .map(Mutation::Applied)
            .ok_or_else(|| CloudError::not_found(ResourceKind::AutoScalingGroup, group))
    }

    async fn list_eks_clusters(&self) -> Result<Vec<String>> {
        let ctx = ErrCtx::new("eks:ListClusters");
        let mut pages = self
            .eks
            .list_clusters()
            .max_results(100)
            .into_paginator()
            .send();
        let mut out = Vec::new();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| map_sdk_err(e, &ctx))?;
            out.extend(page.clusters().iter().cloned());
        }
        out.sort();
        Ok(out)
    }

    async fn describe_eks_cluster(&self, name: &str) -> Result<EksCluster> {
        let ctx = ErrCtx::new("eks:DescribeCluster").resource(ResourceKind::EksCluster, name);
        let out = self
            .eks
            .describe_cluster()
            .name(name)
            .send()
            .await
            .map_err(|e| map_sdk_err(e, &ctx))?;
        let cluster = out
            .cluster()
            .ok_or_else(|| CloudError::not_found(ResourceKind::EksCluster, name))?;
        let ctx = ErrCtx::new("eks:ListNodegroups").resource(ResourceKind::EksCluster, name);
        let mut names = Vec::new();
        let mut pages = self
            .eks
            .list_nodegroups()
            .cluster_name(name)
            .max_results(100)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| map_sdk_err(e, &ctx))?;
            names.extend(page.nodegroups().iter().cloned());
        }
        let ctx = ErrCtx::new("eks:DescribeNodegroup").resource(ResourceKind::EksCluster, name);
        let mut node_groups = Vec::with_capacity(names.len());
        for ng in names {
            let out = self
                .eks
                .describe_nodegroup()
                .cluster_name(name)
                .nodegroup_name(&ng)
                .send()
                .await;
            match out {
                Ok(out) => node_groups.extend(out.nodegroup().and_then(convert::node_group)),
                // Deleted between list and describe: not part of the cluster any more.
                Err(e) if code_of(&e) == Some("ResourceNotFoundException") => continue,
                Err(e) => return Err(map_sdk_err(e, &ctx)),
            }
        }
        node_groups.sort_by(|a, b| a.name.cmp(&b.name));
        convert::eks_cluster(cluster, node_groups)
            .ok_or_else(|| CloudError::not_found(ResourceKind::EksCluster, name))
    }

    /// RunInstances with the request's `ClientToken`, the instances tagged with
    /// [`TAG_CLIENT_TOKEN`]. With `asg_name`, the instances are launched from the
    /// group's launch template (so they join its cluster), in one of its subnets, and
    /// then attached to it (AttachInstances raises desired capacity by `count`); groups
    /// on legacy launch configurations are rejected as `Invalid`. Without a group, the
    /// newest Amazon Linux image of the type's architecture is used.
    async fn launch_capacity(
        &self,
        request: &LaunchRequest,
        dry_run: bool,
    ) -> Result<Mutation<LaunchResult>> {
        let token = &request.client_token;
        crate::validate_client_token(token)?;
        if request.count == 0 || request.count > 1000 {
            return Err(CloudError::invalid("count", "must be between 1 and 1000"));
        }
        let count = to_i32("count", request.count)?;
        let previous = self
            .instances_where(vec![filter(
                &format!("tag:{TAG_CLIENT_TOKEN}"),
                [token.clone()],
            )])
            .await?;
        if !previous.is_empty() {
            let ids: Vec<String> = previous.iter().map(|i| i.id.clone()).collect();
            if dry_run {
                return Ok(Mutation::DryRun(DryRunOk {
                    operation: "RunInstances".into(),
                    resource_ids: ids,
                    message: "client token already used; nothing would be launched".into(),
                }));
            }
            return Ok(Mutation::Applied(LaunchResult {
                instances: previous,
                replayed: true,
            }));
        }

        let mut tags: Tags = request.tags.clone();
        let mut run = self
            .ec2
            .run_instances()
            .instance_type(ec2_types::InstanceType::from(
                request.instance_type.as_str(),
            ))
            .min_count(count)
            .max_count(count)
            .client_token(token)
            .dry_run(dry_run);
        let mut subnet = request.subnet_id.clone();
        if let Some(name) = &request.asg_name {
            let group = self.raw_group(name).await?;
            let (desired, max) = (
                group.desired_capacity().unwrap_or(0),
                group.max_size().unwrap_or(0),
            );
            if desired.saturating_add(count) > max {
                return Err(CloudError::invalid(
                    "count",
                    format!("attaching {count} would exceed max size {max} of {name}"),
                ));
            }
            let Some((template, version)) = template_key(&group) else {
                return Err(CloudError::invalid(
                    "asg_name",
                    format!(
                        "{name} uses a launch configuration; only launch templates are supported"
                    ),
                ));
            };
            let spec = ec2_types::LaunchTemplateSpecification::builder().version(version);
            let spec = if template.starts_with("lt-") {
                spec.launch_template_id(template)
            } else {
                spec.launch_template_name(template)
            };
            run = run.launch_template(spec.build());
            if subnet.is_none() {
                subnet = self.group_subnet(&group, request.az.as_deref()).await?;
            }
            for t in group.tags() {
                if let (Some(k), true) = (t.key(), t.propagate_at_launch().unwrap_or(false)) {
                    tags.entry(k.to_string())
                        .or_insert_with(|| t.value().unwrap_or("").to_string());
                }
            }
        } else {
            run = run.image_id(self.default_image(&request.instance_type).await?);
        }
        match (&subnet, &request.az) {
            (Some(s), _) => run = run.subnet_id(s),
            (None, Some(az)) => {
                run = run.placement(
                    ec2_types::Placement::builder()
                        .availability_zone(az)
                        .build(),
                )
            }
            (None, None) => {}
        }
        if request.lifecycle == Lifecycle::Spot {
            run = run.instance_market_options(
                ec2_types::InstanceMarketOptionsRequest::builder()
                    .market_type(ec2_types::MarketType::Spot)
                    .spot_options(
                        ec2_types::SpotMarketOptions::builder()
                            .spot_instance_type(ec2_types::SpotInstanceType::OneTime)
                            .instance_interruption_behavior(
                                ec2_types::InstanceInterruptionBehavior::Terminate,
                            )
                            .build(),
                    )
                    .build(),
            );
        }
        // `aws:` tags are reserved (AttachInstances adds the group tag itself).
        tags.retain(|k, _| !k.starts_with("aws:"));
        tags.insert(TAG_CLIENT_TOKEN.to_string(), token.clone());
        run = run.tag_specifications(
            ec2_types::TagSpecification::builder()
                .resource_type(ec2_types::ResourceType::Instance)
                .set_tags(Some(
                    tags.iter()
                        .map(|(k, v)| ec2_types::Tag::builder().key(k).value(v).build())
                        .collect(),
                ))
                .build(),
        );
        let ctx = ErrCtx::new("ec2:RunInstances").pool(
            request.instance_type.clone(),
            request.az.clone().unwrap_or_default(),
        );
        let sent = run.send().await;
        if dry_run {
            return dry_run_answer(
                sent,
                &ctx,
                DryRunOk {
                    operation: "RunInstances".into(),
                    resource_ids: request.asg_name.iter().cloned().collect(),
                    message: format!(
                        "would launch {} x {} ({:?})",
                        request.count, request.instance_type, request.lifecycle
                    ),
                },
            );
        }
        let out = sent.map_err(|e| map_sdk_err(e, &ctx))?;
        let ids: Vec<String> = out
            .instances()
            .iter()
            .filter_map(|i| i.instance_id().map(str::to_string))
            .collect();
        if let Some(name) = &request.asg_name {
            self.ec2
                .wait_until_instance_running()
                .set_instance_ids(Some(ids.clone()))
                .wait(ATTACH_WAIT)
                .await
                .map_err(|e| {
                    CloudError::Other(format!(
                        "launched {} but they did not reach running to join {name}: {}",
                        ids.join(", "),
                        aws_smithy_types::error::display::DisplayErrorContext(&e)
                    ))
                })?;
            let ctx = ErrCtx::new("autoscaling:AttachInstances")
                .resource(ResourceKind::AutoScalingGroup, name);
            self.autoscaling
                .attach_instances()
                .auto_scaling_group_name(name)
                .set_instance_ids(Some(ids.clone()))
                .send()
                .await
                .map_err(|e| map_sdk_err(e, &ctx))?;
        }
        let instances = if ids.is_empty() {
            Vec::new()
        } else {
            self.instances_by_id(&ids).await?
        };
        Ok(Mutation::Applied(LaunchResult {
            instances,
            replayed: false,
        }))
    }

    async fn terminate_instances(
        &self,
        instance_ids: &[String],
        dry_run: bool,
    ) -> Result<Mutation<Vec<InstanceStateChange>>> {
        if instance_ids.is_empty() {
            return Err(CloudError::invalid(
                "instance_ids",
                "at least one id is required",
            ));
        }
        if let Some(bad) = instance_ids.iter().find(|id| !id.starts_with("i-")) {
            return Err(CloudError::invalid(
                "instance_ids",
                format!("malformed id {bad}"),
            ));
        }
        // Check every id before terminating any (port contract; also makes the dry run
        // validate existence the same way on every endpoint).
        self.instances_by_id(instance_ids).await?;
        let ctx = ErrCtx::new("ec2:TerminateInstances").resource(
            ResourceKind::Instance,
            instance_ids.first().cloned().unwrap_or_default(),
        );
        if dry_run {
            let sent = self
                .ec2
                .terminate_instances()
                .set_instance_ids(Some(instance_ids.to_vec()))
                .dry_run(true)
                .send()
                .await;
            return dry_run_answer(
                sent,
                &ctx,
                DryRunOk {
                    operation: "TerminateInstances".into(),
                    resource_ids: instance_ids.to_vec(),
                    message: format!("would terminate {} instance(s)", instance_ids.len()),
                },
            );
        }
        let mut changes = Vec::new();
        for chunk in instance_ids.chunks(1000) {
            let out = self
                .ec2
                .terminate_instances()
                .set_instance_ids(Some(chunk.to_vec()))
                .send()
                .await
                .map_err(|e| map_sdk_err(e, &ctx))?;
            changes.extend(out.terminating_instances().iter().filter_map(|c| {
                Some(InstanceStateChange {
                    instance_id: c.instance_id()?.to_string(),
                    previous: convert::instance_state(c.previous_state().and_then(|s| s.name())),
                    current: convert::instance_state(c.current_state().and_then(|s| s.name())),
                })
            }));
        }
        Ok(Mutation::Applied(changes))
    }

    /// CreateSnapshot has no client token: the snapshot is tagged with it at creation
    /// ([`TAG_CLIENT_TOKEN`], in the same call) and a snapshot already carrying the token is
    /// returned instead of taking another. The look-up and the create are two calls, so two
    /// concurrent first calls with one token could both create; the job system never runs
    /// one item twice at once (a job is claimed by one worker).
    async fn create_snapshot(
        &self,
        volume_id: &str,
        client_token: &str,
        dry_run: bool,
    ) -> Result<Mutation<Snapshot>> {
        crate::validate_client_token(client_token)?;
        let ctx = ErrCtx::new("ec2:DescribeSnapshots").resource(ResourceKind::Volume, volume_id);
        let previous: Vec<Snapshot> = self
            .ec2
            .describe_snapshots()
            .owner_ids("self")
            .filters(filter(
                &format!("tag:{TAG_CLIENT_TOKEN}"),
                [client_token.to_string()],
            ))
            .send()
            .await
            .map_err(|e| map_sdk_err(e, &ctx))?
            .snapshots()
            .iter()
            .filter_map(convert::snapshot)
            .filter(|s| s.tags.get(TAG_CLIENT_TOKEN).map(String::as_str) == Some(client_token))
            .collect();
        if let Some(prev) = previous.into_iter().min_by_key(|s| s.start_time) {
            if prev.volume_id.as_deref() != Some(volume_id) {
                return Err(CloudError::invalid(
                    "client_token",
                    format!(
                        "already used for {} of {} (IdempotentParameterMismatch)",
                        prev.id,
                        prev.volume_id.as_deref().unwrap_or("another volume")
                    ),
                ));
            }
            if dry_run {
                return Ok(Mutation::DryRun(DryRunOk {
                    operation: "CreateSnapshot".into(),
                    resource_ids: vec![prev.id.clone()],
                    message: format!(
                        "client token already used ({}); nothing would be created",
                        prev.id
                    ),
                }));
            }
            return Ok(Mutation::Applied(prev));
        }
        let ctx = ErrCtx::new("ec2:CreateSnapshot").resource(ResourceKind::Volume, volume_id);
        let sent = self
            .ec2
            .create_snapshot()
            .volume_id(volume_id)
            .description("created by spot-optimizer")
            .tag_specifications(
                ec2_types::TagSpecification::builder()
                    .resource_type(ec2_types::ResourceType::Snapshot)
                    .tags(
                        ec2_types::Tag::builder()
                            .key(TAG_CLIENT_TOKEN)
                            .value(client_token)
                            .build(),
                    )
                    .build(),
            )
            .dry_run(dry_run)
            .send()
            .await;
        if dry_run {
            return dry_run_answer(
                sent,
                &ctx,
                DryRunOk {
                    operation: "CreateSnapshot".into(),
                    resource_ids: vec![volume_id.to_string()],
                    message: format!("would snapshot {volume_id}"),
                },
            );
        }
        let out = sent.map_err(|e| map_sdk_err(e, &ctx))?;
        let snapshot_id = out
            .snapshot_id()
            .ok_or_else(|| CloudError::Other("CreateSnapshot returned no snapshot id".into()))?;
        let mut tags = convert::ec2_tags(out.tags());
        tags.entry(TAG_CLIENT_TOKEN.to_string())
            .or_insert_with(|| client_token.to_string());
        Ok(Mutation::Applied(Snapshot {
            id: snapshot_id.to_string(),
            volume_id: out.volume_id().map(str::to_string),
            source_ami: None,
            start_time: convert::time(out.start_time()),
            size_gib: out
                .volume_size()
                .and_then(|s| u32::try_from(s).ok())
                .unwrap_or(0),
            state: match out.state().map(|s| s.as_str()) {
                Some("completed") => SnapshotState::Completed,
                Some("error") => SnapshotState::Error,
                _ => SnapshotState::Pending,
            },
            description: out.description().unwrap_or("").to_string(),
            tags,
        }))
    }

    async fn delete_volume(&self, volume_id: &str, dry_run: bool) -> Result<Mutation<()>> {
        let ctx = ErrCtx::new("ec2:DeleteVolume").resource(ResourceKind::Volume, volume_id);
        if dry_run {
            // EC2's dry run checks permissions only; check existence and attachment here
            // so that a dry run predicts the real call.
            let volume = self.volume_by_id(volume_id).await?;
            if let Some(instance) = &volume.attached_instance_id {
                return Err(CloudError::invalid(
                    "volume",
                    format!("{volume_id} is attached to {instance} (VolumeInUse)"),
                ));
            }
            let sent = self
                .ec2
                .delete_volume()
                .volume_id(volume_id)
                .dry_run(true)
                .send()
                .await;
            return dry_run_answer(
                sent,
                &ctx,
                DryRunOk {
                    operation: "DeleteVolume".into(),
                    resource_ids: vec![volume_id.to_string()],
                    message: format!("would delete {volume_id} ({} GiB)", volume.size_gib),
                },
            );
        }
        self.ec2
            .delete_volume()
            .volume_id(volume_id)
            .send()
            .await
            .map_err(|e| map_sdk_err(e, &ctx))?;
        Ok(Mutation::Applied(()))
    }

    async fn delete_snapshot(&self, snapshot_id: &str, dry_run: bool) -> Result<Mutation<()>> {
        let ctx = ErrCtx::new("ec2:DeleteSnapshot").resource(ResourceKind::Snapshot, snapshot_id);
        if dry_run {
            let snapshot = self.snapshot_by_id(snapshot_id).await?;
            if let Some(ami) = &snapshot.source_ami {
                return Err(CloudError::invalid(
                    "snapshot",
                    format!("{snapshot_id} may back {ami} (InvalidSnapshot.InUse)"),
                ));
            }
            let sent = self
                .ec2
                .delete_snapshot()
                .snapshot_id(snapshot_id)
                .dry_run(true)
                .send()
                .await;
            return dry_run_answer(
                sent,
                &ctx,
                DryRunOk {
                    operation: "DeleteSnapshot".into(),
                    resource_ids: vec![snapshot_id.to_string()],
                    message: format!("would delete {snapshot_id} ({} GiB)", snapshot.size_gib),
                },
            );
        }
        self.ec2
            .delete_snapshot()
            .snapshot_id(snapshot_id)
            .send()
            .await
            .map_err(|e| map_sdk_err(e, &ctx))?;
        Ok(Mutation::Applied(()))
    }

    /// Spot signals from the interruption queue (see [`interruption`]): interruption
    /// warnings, rebalance recommendations, instances leaving `running` and AWS Health
    /// scheduled changes, each with its pool, oldest first. The queue hands every
    /// message out once and it is deleted once handled, so `since` is not needed to
    /// avoid repeats and is not used (a late message older than `since` still counts).
    /// Empty, not an error, when the customer's stack has no queue.
    async fn detach_volume(&self, volume_id: &str, dry_run: bool) -> Result<Mutation<Volume>> {
        let ctx = ErrCtx::new("ec2:DetachVolume").resource(ResourceKind::Volume, volume_id);
        let volume = self.volume_by_id(volume_id).await?;
        let Some(instance) = volume.attached_instance_id.clone() else {
            return Err(CloudError::invalid(
                "volume_id",
                format!("{volume_id} is not attached (IncorrectState)"),
            ));
        };
        if dry_run {
            let sent = self
                .ec2
                .detach_volume()
                .volume_id(volume_id)
                .instance_id(&instance)
                .dry_run(true)
                .send()
                .await;
            return dry_run_answer(
                sent,
                &ctx,
                DryRunOk {
                    operation: "DetachVolume".into(),
                    resource_ids: vec![volume_id.to_string()],
                    message: format!("would detach {volume_id} from {instance}"),
                },
            );
        }
        // The instance is named (optional in EC2): the call then fails rather than detach
        // the volume from another instance it was moved to meanwhile (and moto needs it).
        self.ec2
            .detach_volume()
            .volume_id(volume_id)
            .instance_id(&instance)
            .send()
            .await
            .map_err(|e| map_sdk_err(e, &ctx))?;
        // DetachVolume is asynchronous: wait (bounded) until the volume is available.
        for _ in 0..60 {
            let v = self.volume_by_id(volume_id).await?;
            if v.attached_instance_id.is_none() {
                return Ok(Mutation::Applied(v));
            }
            tokio::time::sleep(std::time::Duration::from_millis(500)).await;
        }
        Err(CloudError::Other(format!(
            "{volume_id} still attached 30 s after DetachVolume"
        )))
    }

    async fn attach_volume_to(
        &self,
        volume_id: &str,
        instance_id: &str,
        device: &str,
        dry_run: bool,
    ) -> Result<Mutation<Volume>> {
        let ctx = ErrCtx::new("ec2:AttachVolume").resource(ResourceKind::Volume, volume_id);
        let sent = self
            .ec2
            .attach_volume()
            .volume_id(volume_id)
            .instance_id(instance_id)
            .device(device)
            .dry_run(dry_run)
            .send()
            .await;
        if dry_run {
            return dry_run_answer(
                sent,
                &ctx,
                DryRunOk {
                    operation: "AttachVolume".into(),
                    resource_ids: vec![volume_id.to_string(), instance_id.to_string()],
                    message: format!("would attach {volume_id} to {instance_id} as {device}"),
                },
            );
        }
        sent.map_err(|e| map_sdk_err(e, &ctx))?;
        Ok(Mutation::Applied(self.volume_by_id(volume_id).await?))
    }

    async fn poll_events(&self, _since: DateTime<Utc>) -> Result<Vec<SpotEvent>> {
        self.poll_interruption_queue().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys() -> AwsCredentials {
        AwsCredentials::AccessKeys {
            access_key_id: "AKIAIOSFODNN7EXAMPLE".into(),
            secret_access_key: Secret::new("secret"),
        }
    }

    #[test]
    fn configuration_is_validated_before_any_call() {
        let ok = AwsConfig {
            region: "us-east-1".into(),
            credentials: keys(),
            endpoint_url: None,
        };
        assert!(validate(&ok).is_ok());
        let bad_region = AwsConfig {
            region: "US East".into(),
            ..ok.clone()
        };
        assert!(matches!(
            validate(&bad_region),
            Err(CloudError::Invalid { .. })
        ));
        let bad_role = AwsConfig {
            credentials: AwsCredentials::AssumeRole {
                role_arn: "arn:aws:iam::123456789012:user/x".into(),
                external_id: "abcdef".into(),
                session_name: "spot".into(),
                base: Box::new(keys()),
            },
            ..ok.clone()
        };
        assert!(matches!(
            validate(&bad_role),
            Err(CloudError::Invalid { .. })
        ));
        let bad_session = AwsConfig {
            credentials: AwsCredentials::AssumeRole {
                role_arn: "arn:aws:iam::123456789012:role/x".into(),
                external_id: "abcdef".into(),
                session_name: "has space".into(),
                base: Box::new(AwsCredentials::Ambient),
            },
            ..ok
        };
        assert!(matches!(
            validate(&bad_session),
            Err(CloudError::Invalid { .. })
        ));
    }

    /// A network failure while fetching role credentials must not read as "the
    /// customer's role is broken" (Unauthorized marks the linked account for attention).
    #[test]
    fn unreachable_sts_is_not_unauthorized() {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("free port")
            .port();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let cloud = rt
            .block_on(AwsCloud::connect(AwsConfig {
                region: "us-east-1".into(),
                credentials: AwsCredentials::AssumeRole {
                    role_arn: "arn:aws:iam::123456789012:role/SpotOptimizer".into(),
                    external_id: "0123456789abcdef".into(),
                    session_name: "spot-optimizer-test".into(),
                    base: Box::new(keys()),
                },
                endpoint_url: Some(format!("http://127.0.0.1:{port}")),
            }))
            .expect("connect");
        let err = rt
            .block_on(cloud.caller_identity())
            .expect_err("nothing listens");
        assert!(matches!(err, CloudError::Other(_)), "{err:?}");
    }

    #[test]
    fn catalog_prices_cover_common_types() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let cloud = rt
            .block_on(AwsCloud::connect(AwsConfig {
                region: "eu-west-1".into(),
                credentials: keys(),
                endpoint_url: Some("http://127.0.0.1:1".into()),
            }))
            .expect("connect makes no call");
        let prices = rt
            .block_on(cloud.on_demand_prices(&["m5.large".into(), "nope.large".into()]))
            .expect("prices");
        assert_eq!(prices.len(), 1);
        assert!((prices[0].usd_per_hour - 0.096).abs() < 1e-9);
    }
}
