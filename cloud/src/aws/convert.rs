//! SDK shapes → port types. Pure functions, so they are unit-tested without a server.
//!
//! AWS marks nearly every response field optional; a field EC2 always sends in practice
//! but that is missing here gets a neutral default (empty string, 0, the Unix epoch)
//! rather than failing the whole inventory: one odd resource must not hide the others.

use std::collections::BTreeMap;

use aws_sdk_autoscaling::types as asg;
use aws_sdk_ec2::types as ec2;
use aws_sdk_eks::types as eks;
use chrono::{DateTime, Utc};

use crate::sim::Catalog;
use crate::types::*;

/// SDK time → chrono. Out-of-range values (never sent by AWS) become the epoch.
pub(crate) fn time(t: Option<&aws_smithy_types::DateTime>) -> DateTime<Utc> {
    t.and_then(|t| DateTime::from_timestamp(t.secs(), t.subsec_nanos()))
        .unwrap_or(DateTime::UNIX_EPOCH)
}

/// chrono → SDK time.
pub(crate) fn sdk_time(t: DateTime<Utc>) -> aws_smithy_types::DateTime {
    aws_smithy_types::DateTime::from_secs_and_nanos(t.timestamp(), t.timestamp_subsec_nanos())
}

fn count(n: Option<i32>) -> u32 {
    n.and_then(|n| u32::try_from(n).ok()).unwrap_or(0)
}

pub(crate) fn ec2_tags(tags: &[ec2::Tag]) -> Tags {
    tags.iter()
        .filter_map(|t| Some((t.key()?.to_string(), t.value().unwrap_or("").to_string())))
        .collect()
}

pub(crate) fn instance_state(s: Option<&ec2::InstanceStateName>) -> InstanceState {
    match s.map(|s| s.as_str()) {
        Some("pending") => InstanceState::Pending,
        Some("running") => InstanceState::Running,
        Some("stopping") => InstanceState::Stopping,
        Some("stopped") => InstanceState::Stopped,
        Some("shutting-down") => InstanceState::ShuttingDown,
        Some("terminated") => InstanceState::Terminated,
        // A state added after this SDK was generated: treat as running, i.e. billed,
        // which errs on the side of showing cost rather than hiding it.
        _ => InstanceState::Running,
    }
}

/// One EC2 instance; `None` when the response lacks an instance id.
pub(crate) fn instance(i: &ec2::Instance) -> Option<Instance> {
    let id = i.instance_id()?.to_string();
    let tags = ec2_tags(i.tags());
    let lifecycle = match i.instance_lifecycle().map(|l| l.as_str()) {
        Some("spot") => Lifecycle::Spot,
        // "scheduled", "capacity-block" and plain on-demand are all billed at
        // on-demand-like rates for our purposes.
        _ => Lifecycle::OnDemand,
    };
    Some(Instance {
        id,
        instance_type: i
            .instance_type()
            .map(|t| t.as_str().to_string())
            .unwrap_or_default(),
        lifecycle,
        state: instance_state(i.state().and_then(|s| s.name())),
        az: i
            .placement()
            .and_then(|p| p.availability_zone())
            .unwrap_or("")
            .to_string(),
        launch_time: time(i.launch_time()),
        cluster: cluster_from_tags(&tags),
        asg_name: tags.get(TAG_ASG_NAME).cloned(),
        private_ip: i.private_ip_address().map(str::to_string),
        root_device_name: i.root_device_name().map(str::to_string),
        tags,
    })
}

fn volume_type(t: Option<&ec2::VolumeType>) -> VolumeType {
    match t.map(|t| t.as_str()) {
        Some("gp2") => VolumeType::Gp2,
        Some("gp3") => VolumeType::Gp3,
        Some("io1") => VolumeType::Io1,
        Some("io2") => VolumeType::Io2,
        Some("st1") => VolumeType::St1,
        Some("sc1") => VolumeType::Sc1,
        Some("standard") => VolumeType::Standard,
        _ => VolumeType::Other,
    }
}

fn volume_state(s: Option<&ec2::VolumeState>) -> VolumeState {
    match s.map(|s| s.as_str()) {
        Some("creating") => VolumeState::Creating,
        Some("available") => VolumeState::Available,
        Some("in-use") => VolumeState::InUse,
        Some("deleting") => VolumeState::Deleting,
        Some("deleted") => VolumeState::Deleted,
        _ => VolumeState::Error,
    }
}

/// One EBS volume. `last_attached` is the attach time of a current attachment: EC2 does
/// not report detach times (CloudTrail does, which this adapter does not read yet).
pub(crate) fn volume(v: &ec2::Volume) -> Option<Volume> {
    let id = v.volume_id()?.to_string();
    let attachment = v.attachments().iter().find(|a| {
        matches!(
            a.state().map(|s| s.as_str()),
            Some("attached") | Some("attaching") | None
        )
    });
    Some(Volume {
        id,
        size_gib: count(v.size()),
        volume_type: volume_type(v.volume_type()),
        state: volume_state(v.state()),
        az: v.availability_zone().unwrap_or("").to_string(),
        create_time: time(v.create_time()),
        attached_instance_id: attachment.and_then(|a| a.instance_id()).map(str::to_string),
        device: attachment.and_then(|a| a.device()).map(str::to_string),
        last_attached: attachment
            .and_then(|a| a.attach_time())
            .map(|t| time(Some(t))),
        tags: ec2_tags(v.tags()),
    })
}

/// One security group.
pub(crate) fn security_group(g: &ec2::SecurityGroup) -> Option<SecurityGroup> {
    Some(SecurityGroup {
        id: g.group_id()?.to_string(),
        name: g.group_name().unwrap_or("").to_string(),
        description: g.description().unwrap_or("").to_string(),
        vpc_id: g.vpc_id().map(str::to_string),
        tags: ec2_tags(g.tags()),
    })
}

/// AMI id named in a snapshot description. EC2 does not link snapshots to images in
/// DescribeSnapshots; CreateImage writes "Created by CreateImage(i-…) for ami-… from
/// vol-…", which is what this reads.
pub(crate) fn ami_in_description(description: &str) -> Option<String> {
    let start = description.find("ami-")?;
    let rest = description.get(start..)?;
    let end = rest
        .char_indices()
        .skip(4)
        .find(|(_, c)| !c.is_ascii_hexdigit())
        .map(|(i, _)| i)
        .unwrap_or(rest.len());
    (end > 4).then(|| rest[..end].to_string())
}

pub(crate) fn snapshot(s: &ec2::Snapshot) -> Option<Snapshot> {
    let id = s.snapshot_id()?.to_string();
    let description = s.description().unwrap_or("").to_string();
    Some(Snapshot {
        id,
        volume_id: s.volume_id().map(str::to_string),
        source_ami: ami_in_description(&description),
        start_time: time(s.start_time()),
        size_gib: count(s.volume_size()),
        state: match s.state().map(|s| s.as_str()) {
            Some("completed") => SnapshotState::Completed,
            Some("pending") | Some("recovering") => SnapshotState::Pending,
            _ => SnapshotState::Error,
        },
        description,
        tags: ec2_tags(s.tags()),
    })
}

/// Coarse category from the family prefix, the same rule the simulator's catalog was
/// generated with (cloud/data/build_catalog.py).
pub(crate) fn category(family: &str) -> InstanceCategory {
    let first = family.chars().next();
    match first {
        Some('t') => InstanceCategory::Burstable,
        Some('g') | Some('p') => InstanceCategory::Accelerated,
        Some('m') => InstanceCategory::General,
        Some('c') => InstanceCategory::Compute,
        Some('r') | Some('x') => InstanceCategory::Memory,
        Some('i') => InstanceCategory::Storage,
        _ => InstanceCategory::Other,
    }
}

/// Static facts of one type; `azs` comes from DescribeInstanceTypeOfferings.
pub(crate) fn instance_type_info(
    t: &ec2::InstanceTypeInfo,
    azs: Vec<Az>,
) -> Option<InstanceTypeInfo> {
    let name = t.instance_type()?.as_str().to_string();
    let family = name.split('.').next().unwrap_or("").to_string();
    let architecture = if t
        .processor_info()
        .map(|p| {
            p.supported_architectures()
                .iter()
                .any(|a| a.as_str() == "arm64")
        })
        .unwrap_or(false)
    {
        Architecture::Arm64
    } else {
        Architecture::X86_64
    };
    let gpu = t.gpu_info();
    let gpus = gpu
        .map(|g| g.gpus().iter().map(|d| count(d.count())).sum())
        .unwrap_or(0);
    let gpu_memory_mib = gpu
        .and_then(|g| g.total_gpu_memory_in_mib())
        .map(|m| u64::try_from(m).unwrap_or(0))
        .unwrap_or(0);
    let known = Catalog::embedded().get(&name).map(|c| c.category);
    Some(InstanceTypeInfo {
        category: known.unwrap_or_else(|| category(&family)),
        family,
        vcpu: count(t.v_cpu_info().and_then(|v| v.default_v_cpus())),
        memory_mib: t
            .memory_info()
            .and_then(|m| m.size_in_mib())
            .and_then(|m| u64::try_from(m).ok())
            .unwrap_or(0),
        architecture,
        gpus,
        gpu_memory_mib,
        burstable: t.burstable_performance_supported().unwrap_or(false),
        availability_zones: azs,
        name,
    })
}

pub(crate) fn spot_price(p: &ec2::SpotPrice) -> Option<SpotPricePoint> {
    Some(SpotPricePoint {
        instance_type: p.instance_type()?.as_str().to_string(),
        az: p.availability_zone()?.to_string(),
        usd_per_hour: p.spot_price()?.parse().ok()?,
        timestamp: time(p.timestamp()),
    })
}

/// An Auto Scaling group. `instance_types` here holds only what the group itself says
/// (mixed-instances overrides, the types of its current instances); the adapter adds
/// the type from the launch template or configuration.
pub(crate) fn auto_scaling_group(g: &asg::AutoScalingGroup) -> Option<AutoScalingGroup> {
    let name = g.auto_scaling_group_name()?.to_string();
    let mixed = g.mixed_instances_policy();
    let mut instance_types: Vec<String> = mixed
        .and_then(|m| m.launch_template())
        .map(|lt| {
            lt.overrides()
                .iter()
                .filter_map(|o| o.instance_type().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    instance_types.extend(
        g.instances()
            .iter()
            .filter_map(|i| i.instance_type().map(str::to_string)),
    );
    instance_types.sort();
    instance_types.dedup();
    let distribution = mixed.and_then(|m| m.instances_distribution());
    Some(AutoScalingGroup {
        name,
        min_size: count(g.min_size()),
        max_size: count(g.max_size()),
        desired_capacity: count(g.desired_capacity()),
        instance_ids: g
            .instances()
            .iter()
            .filter(|i| {
                !matches!(
                    i.lifecycle_state().map(|s| s.as_str()),
                    Some("Terminated") | Some("Terminating:Proceed")
                )
            })
            .filter_map(|i| i.instance_id().map(str::to_string))
            .collect(),
        instance_types,
        availability_zones: g.availability_zones().to_vec(),
        on_demand_base_capacity: count(distribution.and_then(|d| d.on_demand_base_capacity())),
        on_demand_percentage_above_base: distribution
            .and_then(|d| d.on_demand_percentage_above_base_capacity())
            .map(|p| count(Some(p)))
            .unwrap_or(100),
        tags: g
            .tags()
            .iter()
            .filter_map(|t| Some((t.key()?.to_string(), t.value().unwrap_or("").to_string())))
            .collect(),
    })
}

pub(crate) fn node_group(n: &eks::Nodegroup) -> Option<NodeGroup> {
    let scaling = n.scaling_config();
    Some(NodeGroup {
        name: n.nodegroup_name()?.to_string(),
        instance_types: n.instance_types().to_vec(),
        capacity_type: match n.capacity_type().map(|c| c.as_str()) {
            Some("SPOT") => Lifecycle::Spot,
            _ => Lifecycle::OnDemand,
        },
        scaling: ScalingConfig {
            min_size: count(scaling.and_then(|s| s.min_size())),
            max_size: count(scaling.and_then(|s| s.max_size())),
            desired_size: count(scaling.and_then(|s| s.desired_size())),
        },
        asg_name: n
            .resources()
            .and_then(|r| r.auto_scaling_groups().first())
            .and_then(|g| g.name())
            .map(str::to_string),
        status: n
            .status()
            .map(|s| s.as_str().to_string())
            .unwrap_or_default(),
        labels: n
            .labels()
            .map(|l| l.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
            .unwrap_or_default(),
    })
}

pub(crate) fn eks_cluster(c: &eks::Cluster, node_groups: Vec<NodeGroup>) -> Option<EksCluster> {
    Some(EksCluster {
        name: c.name()?.to_string(),
        arn: c.arn().unwrap_or("").to_string(),
        version: c.version().unwrap_or("").to_string(),
        status: c
            .status()
            .map(|s| s.as_str().to_string())
            .unwrap_or_default(),
        created_at: time(c.created_at()),
        node_groups,
        tags: c
            .tags()
            .map(|t| {
                t.iter()
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect::<BTreeMap<_, _>>()
            })
            .unwrap_or_default(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ami_ids_come_from_create_image_descriptions() {
        assert_eq!(
            ami_in_description("Created by CreateImage(i-0abc) for ami-0123abcd from vol-1")
                .as_deref(),
            Some("ami-0123abcd")
        );
        assert_eq!(ami_in_description("nightly backup"), None);
        assert_eq!(ami_in_description("ami-"), None);
    }

    #[test]
    fn spot_lifecycle_and_cluster_come_from_the_instance() {
        let i = ec2::Instance::builder()
            .instance_id("i-1")
            .instance_type(ec2::InstanceType::M5Large)
            .instance_lifecycle(ec2::InstanceLifecycleType::Spot)
            .state(
                ec2::InstanceState::builder()
                    .name(ec2::InstanceStateName::Running)
                    .build(),
            )
            .tags(
                ec2::Tag::builder()
                    .key(TAG_EKS_CLUSTER)
                    .value("prod")
                    .build(),
            )
            .launch_time(aws_smithy_types::DateTime::from_secs(1_700_000_000))
            .build();
        let got = instance(&i).expect("has an id");
        assert_eq!(got.lifecycle, Lifecycle::Spot);
        assert_eq!(got.cluster.as_deref(), Some("prod"));
        assert_eq!(got.state, InstanceState::Running);
        assert_eq!(got.launch_time.timestamp(), 1_700_000_000);
        assert!(instance(&ec2::Instance::builder().build()).is_none());
    }

    #[test]
    fn asg_without_mixed_policy_is_all_on_demand() {
        let g = asg::AutoScalingGroup::builder()
            .auto_scaling_group_name("g")
            .min_size(1)
            .max_size(3)
            .desired_capacity(2)
            .build();
        let got = auto_scaling_group(&g).expect("named");
        assert_eq!(
            (
                got.on_demand_base_capacity,
                got.on_demand_percentage_above_base
            ),
            (0, 100)
        );
        assert_eq!(
            (got.min_size, got.max_size, got.desired_capacity),
            (1, 3, 2)
        );
    }
}
