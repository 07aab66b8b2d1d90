//! The AWS adapter against a local moto server (`pip install 'moto[server]'`).
//!
//! Each test starts its own `moto_server` on a free loopback port (killed on drop), so
//! tests share no state and can run in parallel. Resources are seeded with the AWS SDK
//! directly, then read and changed through the `Cloud` port. Without `moto_server` on
//! PATH the tests fail, unless `SPOT_SKIP_MOTO=1`, in which case they print a SKIP line.
#![cfg(feature = "aws")]

use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_credential_types::Credentials;
use aws_sdk_autoscaling::types as asg_types;
use aws_sdk_ec2::types as ec2_types;
use aws_sdk_eks::types as eks_types;
use spot_cloud::aws::{AwsCloud, AwsConfig, AwsCredentials, Secret, DEFAULT_INTERRUPTION_QUEUE};
use spot_cloud::{
    AsgUpdate, Cloud, CloudError, InstanceState, LaunchRequest, Lifecycle, Mutation, ResourceKind,
    SpotEvent, SpotEventKind, Tags, TAG_CLIENT_TOKEN,
};

const REGION: &str = "us-east-1";
const ACCOUNT: &str = "123456789012";
const AMI: &str = "ami-12c6146b";
const ROLE_ARN: &str = "arn:aws:iam::123456789012:role/SpotOptimizer";

/// A moto server child process, killed when dropped.
struct Moto {
    child: Child,
    url: String,
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn on_path(program: &str) -> bool {
    std::env::var_os("PATH")
        .map(|paths| {
            std::env::split_paths(&paths).any(|dir| Path::new(&dir).join(program).is_file())
        })
        .unwrap_or(false)
}

/// Starts moto, or returns `None` (after a loud SKIP line) when it is missing and
/// `SPOT_SKIP_MOTO=1`.
fn moto(test: &str) -> Option<Moto> {
    if !on_path("moto_server") {
        if std::env::var("SPOT_SKIP_MOTO").as_deref() == Ok("1") {
            eprintln!(
                "SKIP {test}: moto_server not found and SPOT_SKIP_MOTO=1 — AWS adapter NOT tested"
            );
            return None;
        }
        panic!(
            "moto_server not found: pip install 'moto[server]' (or set SPOT_SKIP_MOTO=1 to skip)"
        );
    }
    let port = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    let child = Command::new("moto_server")
        .args(["-H", "127.0.0.1", "-p", &port.to_string()])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn moto_server");
    let server = Moto {
        child,
        url: format!("http://127.0.0.1:{port}"),
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            Instant::now() < deadline,
            "moto_server did not start on port {port}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    Some(server)
}

fn keys() -> AwsCredentials {
    AwsCredentials::AccessKeys {
        access_key_id: "AKIAIOSFODNN7EXAMPLE".into(),
        secret_access_key: Secret::new("wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"),
    }
}

async fn adapter(moto: &Moto, credentials: AwsCredentials) -> AwsCloud {
    AwsCloud::connect(AwsConfig {
        region: REGION.into(),
        credentials,
        endpoint_url: Some(moto.url.clone()),
    })
    .await
    .expect("connect")
}

/// Plain SDK configuration for seeding moto.
async fn seed_config(moto: &Moto) -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .region(Region::new(REGION))
        .endpoint_url(&moto.url)
        .credentials_provider(Credentials::new(
            "AKIAIOSFODNN7EXAMPLE",
            "x",
            None,
            None,
            "test",
        ))
        .load()
        .await
}

fn tag(k: &str, v: &str) -> ec2_types::Tag {
    ec2_types::Tag::builder().key(k).value(v).build()
}

async fn run_instance(ec2: &aws_sdk_ec2::Client, spot: bool, tags: &[(&str, &str)]) -> String {
    let mut req = ec2
        .run_instances()
        .image_id(AMI)
        .instance_type(ec2_types::InstanceType::M5Large)
        .min_count(1)
        .max_count(1)
        .placement(
            ec2_types::Placement::builder()
                .availability_zone("us-east-1a")
                .build(),
        );
    if spot {
        req = req.instance_market_options(
            ec2_types::InstanceMarketOptionsRequest::builder()
                .market_type(ec2_types::MarketType::Spot)
                .build(),
        );
    }
    if !tags.is_empty() {
        req = req.tag_specifications(
            ec2_types::TagSpecification::builder()
                .resource_type(ec2_types::ResourceType::Instance)
                .set_tags(Some(tags.iter().map(|(k, v)| tag(k, v)).collect()))
                .build(),
        );
    }
    let out = req.send().await.expect("RunInstances");
    out.instances()
        .first()
        .and_then(|i| i.instance_id())
        .expect("instance id")
        .to_string()
}

async fn create_volume(ec2: &aws_sdk_ec2::Client) -> String {
    ec2.create_volume()
        .availability_zone("us-east-1a")
        .size(10)
        .volume_type(ec2_types::VolumeType::Gp3)
        .send()
        .await
        .expect("CreateVolume")
        .volume_id()
        .expect("volume id")
        .to_string()
}

#[tokio::test]
async fn identity_role_assumption_and_permissions() {
    let Some(moto) = moto("identity_role_assumption_and_permissions") else {
        return;
    };
    let cloud = adapter(&moto, keys()).await;
    let me = cloud.caller_identity().await.expect("identity");
    assert_eq!(me.account_id, ACCOUNT);
    assert!(!me.arn.contains("assumed-role"), "{me:?}");

    let role = adapter(
        &moto,
        AwsCredentials::AssumeRole {
            role_arn: ROLE_ARN.into(),
            external_id: "5f0c3e1a9b7d4e2f8a6c1b3d5e7f9a0b".into(),
            session_name: "spot-optimizer-123456789012".into(),
            base: Box::new(keys()),
        },
    )
    .await;
    let assumed = role.caller_identity().await.expect("assumed identity");
    assert_ne!(assumed.arn, me.arn);
    assert!(
        assumed
            .arn
            .contains("assumed-role/SpotOptimizer/spot-optimizer-123456789012"),
        "{assumed:?}"
    );
    // (moto invents a new role id per GetCallerIdentity for roles unknown to its IAM,
    // so only account and ARN are stable.)
    let again = role.caller_identity().await.expect("again");
    assert_eq!(
        (again.account_id, again.arn),
        (assumed.account_id, assumed.arn)
    );

    assert_eq!(
        role.check_permissions().await.expect("permissions"),
        Vec::<String>::new()
    );
    assert!(role
        .poll_events(role.now())
        .await
        .expect("events")
        .is_empty());
}

#[tokio::test]
async fn inventory_of_instances_volumes_snapshots_and_prices() {
    let Some(moto) = moto("inventory_of_instances_volumes_snapshots_and_prices") else {
        return;
    };
    let sdk = seed_config(&moto).await;
    let ec2 = aws_sdk_ec2::Client::new(&sdk);
    let on_demand = run_instance(
        &ec2,
        false,
        &[("eks:cluster-name", "prod"), ("Name", "node")],
    )
    .await;
    let spot = run_instance(&ec2, true, &[("kubernetes.io/cluster/staging", "owned")]).await;
    let loose = run_instance(&ec2, false, &[]).await;
    let volume = create_volume(&ec2).await;
    let snapshot = ec2
        .create_snapshot()
        .volume_id(&volume)
        .description("nightly")
        .send()
        .await
        .expect("CreateSnapshot")
        .snapshot_id()
        .expect("snapshot id")
        .to_string();

    let cloud = adapter(&moto, keys()).await;
    let instances = cloud.describe_instances().await.expect("instances");
    let find = |id: &str| {
        instances
            .iter()
            .find(|i| i.id == id)
            .expect("listed")
            .clone()
    };
    let od = find(&on_demand);
    assert_eq!(od.lifecycle, Lifecycle::OnDemand);
    assert_eq!(od.cluster.as_deref(), Some("prod"));
    assert_eq!(od.instance_type, "m5.large");
    assert_eq!(od.az, "us-east-1a");
    assert_eq!(od.state, InstanceState::Running);
    assert_eq!(od.tags.get("Name").map(String::as_str), Some("node"));
    let sp = find(&spot);
    assert_eq!(sp.lifecycle, Lifecycle::Spot);
    assert_eq!(sp.cluster.as_deref(), Some("staging"));
    assert_eq!(find(&loose).cluster, None);

    let volumes = cloud.describe_volumes().await.expect("volumes");
    let v = volumes
        .iter()
        .find(|v| v.id == volume)
        .expect("volume listed");
    assert_eq!((v.size_gib, v.attached_instance_id.as_deref()), (10, None));
    let snapshots = cloud.describe_snapshots().await.expect("snapshots");
    let s = snapshots
        .iter()
        .find(|s| s.id == snapshot)
        .expect("snapshot listed");
    assert_eq!(s.volume_id.as_deref(), Some(volume.as_str()));
    assert_eq!(s.description, "nightly");

    let since = cloud.now() - chrono::Duration::hours(1);
    let history = cloud
        .spot_price_history(&["m5.large".into()], &[], since)
        .await
        .expect("spot prices");
    assert!(!history.is_empty());
    assert!(history.iter().all(|p| p.instance_type == "m5.large"));
    let one_az = cloud
        .spot_price_history(&["m5.large".into()], &["us-east-1b".into()], since)
        .await
        .expect("spot prices in one AZ");
    assert!(!one_az.is_empty() && one_az.iter().all(|p| p.az == "us-east-1b"));

    let catalog = cloud.instance_type_catalog().await.expect("catalog");
    assert!(catalog.len() > 500, "{} types", catalog.len());
    let m5 = catalog
        .iter()
        .find(|t| t.name == "m5.large")
        .expect("m5.large");
    assert_eq!((m5.vcpu, m5.memory_mib), (2, 8192));
    assert!(m5.availability_zones.iter().any(|a| a == "us-east-1a"));
    let prices = cloud
        .on_demand_prices(&["m5.large".into()])
        .await
        .expect("prices");
    assert_eq!(prices.len(), 1);
}

#[tokio::test]
async fn terminate_and_clean_up_storage_honour_dry_run() {
    let Some(moto) = moto("terminate_and_clean_up_storage_honour_dry_run") else {
        return;
    };
    let sdk = seed_config(&moto).await;
    let ec2 = aws_sdk_ec2::Client::new(&sdk);
    let id = run_instance(&ec2, false, &[]).await;
    let cloud = adapter(&moto, keys()).await;
    let state_of = |instances: Vec<spot_cloud::Instance>| {
        instances.into_iter().find(|i| i.id == id).map(|i| i.state)
    };

    let dry = cloud
        .terminate_instances(std::slice::from_ref(&id), true)
        .await
        .expect("dry run");
    assert!(matches!(&dry, Mutation::DryRun(ok) if ok.resource_ids == vec![id.clone()]));
    let now = state_of(cloud.describe_instances().await.expect("instances"));
    assert_eq!(now, Some(InstanceState::Running));

    let missing = cloud
        .terminate_instances(&[id.clone(), "i-0000000000000dead".into()], false)
        .await;
    assert!(
        matches!(&missing, Err(CloudError::NotFound { kind: ResourceKind::Instance, id }) if id == "i-0000000000000dead"),
        "{missing:?}"
    );
    let done = cloud
        .terminate_instances(std::slice::from_ref(&id), false)
        .await
        .expect("terminate");
    let changes = done.applied().expect("applied");
    assert_eq!(changes.len(), 1);
    assert_eq!(changes[0].previous, InstanceState::Running);
    let now = state_of(cloud.describe_instances().await.expect("instances"));
    assert!(
        matches!(
            now,
            Some(InstanceState::ShuttingDown | InstanceState::Terminated)
        ),
        "{now:?}"
    );

    let volume = create_volume(&ec2).await;
    let token = format!("so-moto-{}", &volume[4..]);
    let snap = cloud
        .create_snapshot(&volume, &token, true)
        .await
        .expect("dry snapshot");
    assert!(snap.is_dry_run());
    let snap = cloud
        .create_snapshot(&volume, &token, false)
        .await
        .expect("snapshot")
        .applied()
        .expect("applied");
    assert_eq!(snap.volume_id.as_deref(), Some(volume.as_str()));
    assert_eq!(
        snap.tags.get(TAG_CLIENT_TOKEN).map(String::as_str),
        Some(token.as_str())
    );
    // CreateSnapshot has no client token: the adapter finds the tagged snapshot and
    // returns it rather than taking a second one (a redelivered batch item).
    let count_for = |snaps: Vec<spot_cloud::Snapshot>| {
        snaps
            .iter()
            .filter(|s| s.volume_id.as_deref() == Some(volume.as_str()))
            .count()
    };
    let before = count_for(cloud.describe_snapshots().await.expect("snapshots"));
    let again = cloud
        .create_snapshot(&volume, &token, false)
        .await
        .expect("repeat")
        .applied()
        .expect("applied");
    assert_eq!(
        again.id, snap.id,
        "the same token returns the same snapshot"
    );
    let repeat_dry = cloud
        .create_snapshot(&volume, &token, true)
        .await
        .expect("dry repeat");
    assert!(repeat_dry.is_dry_run());
    assert_eq!(
        count_for(cloud.describe_snapshots().await.expect("snapshots")),
        before
    );
    let other = create_volume(&ec2).await;
    assert!(matches!(
        cloud.create_snapshot(&other, &token, false).await,
        Err(CloudError::Invalid { .. })
    ));
    let second = cloud
        .create_snapshot(&volume, &format!("{token}-2"), false)
        .await
        .expect("another token")
        .applied()
        .expect("applied");
    assert_ne!(second.id, snap.id);
    assert!(matches!(
        cloud.create_snapshot(&volume, "", false).await,
        Err(CloudError::Invalid { .. })
    ));

    assert!(cloud
        .delete_volume(&volume, true)
        .await
        .expect("dry delete")
        .is_dry_run());
    let listed = |vs: Vec<spot_cloud::Volume>| vs.iter().any(|v| v.id == volume);
    assert!(listed(cloud.describe_volumes().await.expect("volumes")));
    assert_eq!(
        cloud.delete_volume(&volume, false).await.expect("delete"),
        Mutation::Applied(())
    );
    assert!(!listed(cloud.describe_volumes().await.expect("volumes")));
    assert!(matches!(
        cloud.delete_volume(&volume, true).await,
        Err(CloudError::NotFound {
            kind: ResourceKind::Volume,
            ..
        })
    ));

    assert!(cloud
        .delete_snapshot(&snap.id, true)
        .await
        .expect("dry")
        .is_dry_run());
    cloud
        .delete_snapshot(&snap.id, false)
        .await
        .expect("delete snapshot");
    assert!(!cloud
        .describe_snapshots()
        .await
        .expect("snapshots")
        .iter()
        .any(|s| s.id == snap.id));
}

/// The Lab's switch moves a node's data volume: detach (waits until available) and attach to
/// the replacement, both honouring dry run.
#[tokio::test]
async fn a_volume_moves_from_one_instance_to_another() {
    let Some(moto) = moto("a_volume_moves_from_one_instance_to_another") else {
        return;
    };
    let sdk = seed_config(&moto).await;
    let ec2 = aws_sdk_ec2::Client::new(&sdk);
    let old = run_instance(&ec2, true, &[]).await;
    let new = run_instance(&ec2, true, &[]).await;
    let volume = create_volume(&ec2).await;
    let cloud = adapter(&moto, keys()).await;
    let attached_to = |m: Mutation<spot_cloud::Volume>| {
        m.applied()
            .expect("applied, not a dry run")
            .attached_instance_id
    };

    let on_old = cloud
        .attach_volume_to(&volume, &old, "/dev/sdf", false)
        .await
        .expect("attach to the old node");
    assert_eq!(attached_to(on_old).as_deref(), Some(old.as_str()));
    let dry = cloud.detach_volume(&volume, true).await.expect("dry run");
    assert!(dry.is_dry_run(), "{dry:?}");
    let still = cloud
        .describe_volumes()
        .await
        .expect("volumes")
        .into_iter()
        .find(|v| v.id == volume)
        .and_then(|v| v.attached_instance_id);
    assert_eq!(still.as_deref(), Some(old.as_str()), "a dry run detached");
    let detached = cloud.detach_volume(&volume, false).await.expect("detach");
    assert_eq!(attached_to(detached), None);
    let again = cloud.detach_volume(&volume, false).await;
    assert!(
        matches!(&again, Err(CloudError::Invalid { field, .. }) if field == "volume_id"),
        "{again:?}"
    );
    let on_new = cloud
        .attach_volume_to(&volume, &new, "/dev/sdf", false)
        .await
        .expect("attach to the replacement");
    assert_eq!(attached_to(on_new).as_deref(), Some(new.as_str()));
}

#[tokio::test]
async fn auto_scaling_groups_update_and_launch() {
    let Some(moto) = moto("auto_scaling_groups_update_and_launch") else {
        return;
    };
    let sdk = seed_config(&moto).await;
    let ec2 = aws_sdk_ec2::Client::new(&sdk);
    let autoscaling = aws_sdk_autoscaling::Client::new(&sdk);
    ec2.create_launch_template()
        .launch_template_name("nodes")
        .launch_template_data(
            ec2_types::RequestLaunchTemplateData::builder()
                .image_id(AMI)
                .instance_type(ec2_types::InstanceType::M5Large)
                .build(),
        )
        .send()
        .await
        .expect("CreateLaunchTemplate");
    autoscaling
        .create_auto_scaling_group()
        .auto_scaling_group_name("prod-nodes")
        .launch_template(
            asg_types::LaunchTemplateSpecification::builder()
                .launch_template_name("nodes")
                .version("$Latest")
                .build(),
        )
        .min_size(0)
        .max_size(4)
        .desired_capacity(1)
        .availability_zones("us-east-1a")
        .tags(
            asg_types::Tag::builder()
                .key("eks:cluster-name")
                .value("prod")
                .propagate_at_launch(true)
                .build(),
        )
        .send()
        .await
        .expect("CreateAutoScalingGroup");

    let cloud = adapter(&moto, keys()).await;
    let groups = cloud.describe_auto_scaling_groups().await.expect("groups");
    let g = groups
        .iter()
        .find(|g| g.name == "prod-nodes")
        .expect("listed");
    assert_eq!((g.min_size, g.max_size, g.desired_capacity), (0, 4, 1));
    assert!(g.instance_types.contains(&"m5.large".to_string()), "{g:?}");
    assert_eq!(
        (g.on_demand_base_capacity, g.on_demand_percentage_above_base),
        (0, 100)
    );

    let update = AsgUpdate {
        name: "prod-nodes".into(),
        min_size: Some(1),
        max_size: Some(5),
        desired_capacity: Some(2),
    };
    assert!(cloud
        .update_auto_scaling_group(&update, true)
        .await
        .expect("dry")
        .is_dry_run());
    let after_dry = cloud.describe_auto_scaling_groups().await.expect("groups");
    let g = after_dry
        .iter()
        .find(|g| g.name == "prod-nodes")
        .expect("listed");
    assert_eq!((g.min_size, g.max_size, g.desired_capacity), (0, 4, 1));
    let applied = cloud
        .update_auto_scaling_group(&update, false)
        .await
        .expect("update")
        .applied()
        .expect("applied");
    assert_eq!(
        (applied.min_size, applied.max_size, applied.desired_capacity),
        (1, 5, 2)
    );

    let too_big = AsgUpdate {
        desired_capacity: Some(9),
        ..update.clone()
    };
    assert!(matches!(
        cloud.update_auto_scaling_group(&too_big, false).await,
        Err(CloudError::Invalid { .. })
    ));
    let unknown = AsgUpdate {
        name: "nope".into(),
        ..update
    };
    assert!(matches!(
        cloud.update_auto_scaling_group(&unknown, true).await,
        Err(CloudError::NotFound {
            kind: ResourceKind::AutoScalingGroup,
            ..
        })
    ));

    let request = LaunchRequest {
        instance_type: "c5.large".into(),
        az: Some("us-east-1a".into()),
        subnet_id: None,
        lifecycle: Lifecycle::Spot,
        count: 1,
        tags: Tags::from([("team".to_string(), "data".to_string())]),
        client_token: "job-42-action-0".into(),
        asg_name: Some("prod-nodes".into()),
    };
    assert!(cloud
        .launch_capacity(&request, true)
        .await
        .expect("dry launch")
        .is_dry_run());
    let launched = cloud
        .launch_capacity(&request, false)
        .await
        .expect("launch")
        .applied()
        .expect("applied");
    assert!(!launched.replayed);
    let [node] = launched.instances.as_slice() else {
        panic!("one instance: {launched:?}");
    };
    assert_eq!(node.instance_type, "c5.large");
    assert_eq!(node.lifecycle, Lifecycle::Spot);
    assert_eq!(node.cluster.as_deref(), Some("prod"));
    assert_eq!(node.asg_name.as_deref(), Some("prod-nodes"));
    let again = cloud
        .launch_capacity(&request, false)
        .await
        .expect("replay")
        .applied()
        .expect("applied");
    assert!(again.replayed);
    assert_eq!(again.instances.len(), 1);
    assert_eq!(again.instances[0].id, node.id);

    // Retiring a node for good: detach it with the desired capacity lowered, so that the
    // group neither replaces it nor scales another node in.
    let before = cloud.describe_auto_scaling_groups().await.expect("groups");
    let g = before
        .iter()
        .find(|g| g.name == "prod-nodes")
        .expect("listed");
    assert!(g.instance_ids.contains(&node.id), "{g:?}");
    let desired = g.desired_capacity;
    let dry = cloud
        .detach_from_auto_scaling_group("prod-nodes", std::slice::from_ref(&node.id), true)
        .await
        .expect("dry detach");
    assert!(dry.is_dry_run());
    assert!(matches!(
        cloud
            .detach_from_auto_scaling_group(
                "prod-nodes",
                &["i-0000000000000dead".to_string()],
                false
            )
            .await,
        Err(CloudError::Invalid { .. })
    ));
    let detached = cloud
        .detach_from_auto_scaling_group("prod-nodes", std::slice::from_ref(&node.id), false)
        .await
        .expect("detach")
        .applied()
        .expect("applied");
    assert_eq!(detached.desired_capacity, desired - 1);
    assert!(!detached.instance_ids.contains(&node.id), "{detached:?}");
}

#[tokio::test]
async fn eks_clusters_and_node_groups() {
    let Some(moto) = moto("eks_clusters_and_node_groups") else {
        return;
    };
    let sdk = seed_config(&moto).await;
    let eks = aws_sdk_eks::Client::new(&sdk);
    let role = "arn:aws:iam::123456789012:role/eks";
    eks.create_cluster()
        .name("prod")
        .version("1.31")
        .role_arn(role)
        .resources_vpc_config(
            eks_types::VpcConfigRequest::builder()
                .subnet_ids("subnet-1")
                .build(),
        )
        .send()
        .await
        .expect("CreateCluster");
    eks.create_nodegroup()
        .cluster_name("prod")
        .nodegroup_name("spot-workers")
        .node_role(role)
        .subnets("subnet-1")
        .instance_types("m5.large")
        .instance_types("m5a.large")
        .capacity_type(eks_types::CapacityTypes::Spot)
        .scaling_config(
            eks_types::NodegroupScalingConfig::builder()
                .min_size(1)
                .max_size(6)
                .desired_size(3)
                .build(),
        )
        .labels("role", "worker")
        .send()
        .await
        .expect("CreateNodegroup");

    let cloud = adapter(&moto, keys()).await;
    assert_eq!(
        cloud.list_eks_clusters().await.expect("clusters"),
        vec!["prod".to_string()]
    );
    let c = cloud.describe_eks_cluster("prod").await.expect("cluster");
    assert_eq!(c.name, "prod");
    assert_eq!(c.version, "1.31");
    assert!(c.arn.contains("cluster/prod"), "{}", c.arn);
    let [ng] = c.node_groups.as_slice() else {
        panic!("one node group: {c:?}");
    };
    assert_eq!(ng.name, "spot-workers");
    assert_eq!(ng.capacity_type, Lifecycle::Spot);
    assert_eq!(
        (
            ng.scaling.min_size,
            ng.scaling.max_size,
            ng.scaling.desired_size
        ),
        (1, 6, 3)
    );
    assert_eq!(
        ng.instance_types,
        vec!["m5.large".to_string(), "m5a.large".to_string()]
    );
    assert_eq!(ng.labels.get("role").map(String::as_str), Some("worker"));
    assert!(matches!(
        cloud.describe_eks_cluster("nope").await,
        Err(CloudError::NotFound {
            kind: ResourceKind::EksCluster,
            ..
        })
    ));
}

// ---------------------------------------------------------------------------------------
// Spot signals: the interruption queue (EventBridge rules -> SQS) of the CloudFormation
// stack, read by `poll_events`.

const TEMPLATE: &str = include_str!("../../deploy/cloudformation/spot-optimizer-role.yaml");

fn template() -> serde_yaml_ng::Value {
    serde_yaml_ng::from_str(TEMPLATE).expect("the CloudFormation template is YAML")
}

/// `(tag, value)` of a CloudFormation intrinsic such as `!Ref X` / `!GetAtt X.Arn`.
fn intrinsic(v: &serde_yaml_ng::Value) -> Option<(String, &serde_yaml_ng::Value)> {
    match v {
        serde_yaml_ng::Value::Tagged(t) => Some((
            t.tag.to_string().trim_start_matches('!').to_string(),
            &t.value,
        )),
        _ => None,
    }
}

fn is_intrinsic(v: &serde_yaml_ng::Value, tag: &str, target: &str) -> bool {
    intrinsic(v).is_some_and(|(t, x)| t == tag && x.as_str() == Some(target))
}

/// The template's `AWS::Events::Rule`s: (logical id, event pattern as JSON).
fn template_rules(t: &serde_yaml_ng::Value) -> Vec<(String, serde_json::Value)> {
    let resources = t["Resources"].as_mapping().expect("Resources");
    resources
        .iter()
        .filter(|(_, r)| r["Type"].as_str() == Some("AWS::Events::Rule"))
        .map(|(name, r)| {
            let pattern: serde_json::Value =
                serde_json::to_value(&r["Properties"]["EventPattern"]).expect("pattern as JSON");
            (name.as_str().expect("name").to_string(), pattern)
        })
        .collect()
}

#[test]
fn cloudformation_template_wires_the_interruption_queue() {
    let t = template();
    let r = &t["Resources"];
    let queue = &r["InterruptionQueue"];
    assert_eq!(queue["Type"].as_str(), Some("AWS::SQS::Queue"));
    let props = &queue["Properties"];
    assert!(is_intrinsic(
        &props["QueueName"],
        "Ref",
        "InterruptionQueueName"
    ));
    assert_eq!(
        t["Parameters"]["InterruptionQueueName"]["Default"].as_str(),
        Some(DEFAULT_INTERRUPTION_QUEUE),
        "the adapter looks the queue up by the template's default name"
    );
    assert_eq!(props["MessageRetentionPeriod"].as_u64(), Some(300));
    assert_eq!(props["SqsManagedSseEnabled"].as_bool(), Some(true));

    // Only EventBridge (and SQS itself) may send; plain HTTP is denied.
    let policy = &r["InterruptionQueuePolicy"]["Properties"];
    assert!(is_intrinsic(
        &policy["Queues"][0],
        "Ref",
        "InterruptionQueue"
    ));
    let statements = policy["PolicyDocument"]["Statement"]
        .as_sequence()
        .expect("statements");
    let allow = statements
        .iter()
        .find(|s| s["Effect"].as_str() == Some("Allow"))
        .expect("allow statement");
    let senders: Vec<&str> = allow["Principal"]["Service"]
        .as_sequence()
        .expect("services")
        .iter()
        .filter_map(|v| v.as_str())
        .collect();
    assert_eq!(senders, ["events.amazonaws.com", "sqs.amazonaws.com"]);
    assert_eq!(allow["Action"].as_str(), Some("sqs:SendMessage"));
    assert!(is_intrinsic(
        &allow["Resource"],
        "GetAtt",
        "InterruptionQueue.Arn"
    ));

    // Four rules, one per signal, each delivering into the queue.
    let rules = template_rules(&t);
    let mut detail_types: Vec<String> = rules
        .iter()
        .map(|(_, p)| {
            p["detail-type"][0]
                .as_str()
                .expect("detail-type")
                .to_string()
        })
        .collect();
    detail_types.sort();
    assert_eq!(
        detail_types,
        [
            "AWS Health Event",
            "EC2 Instance Rebalance Recommendation",
            "EC2 Instance State-change Notification",
            "EC2 Spot Instance Interruption Warning",
        ]
    );
    for (name, _) in &rules {
        let targets = r[name.as_str()]["Properties"]["Targets"]
            .as_sequence()
            .expect("targets");
        assert_eq!(targets.len(), 1, "{name}");
        assert!(
            is_intrinsic(&targets[0]["Arn"], "GetAtt", "InterruptionQueue.Arn"),
            "{name}"
        );
    }

    // The role may read that queue and nothing else over SQS.
    let policies = r["SpotOptimizerRole"]["Properties"]["Policies"]
        .as_sequence()
        .expect("policies");
    let sqs_statements: Vec<serde_yaml_ng::Value> = policies
        .iter()
        .flat_map(|p| {
            p["PolicyDocument"]["Statement"]
                .as_sequence()
                .cloned()
                .unwrap_or_default()
        })
        .filter(|s| {
            s["Action"].as_sequence().is_some_and(|a| {
                a.iter()
                    .any(|x| x.as_str().is_some_and(|x| x.starts_with("sqs:")))
            })
        })
        .collect();
    let [read] = sqs_statements.as_slice() else {
        panic!("one SQS statement: {sqs_statements:?}");
    };
    let mut actions: Vec<&str> = read["Action"]
        .as_sequence()
        .expect("actions")
        .iter()
        .filter_map(|v| v.as_str())
        .collect();
    actions.sort();
    assert_eq!(
        actions,
        [
            "sqs:DeleteMessage",
            "sqs:GetQueueAttributes",
            "sqs:GetQueueUrl",
            "sqs:ReceiveMessage"
        ]
    );
    assert!(is_intrinsic(
        &read["Resource"],
        "GetAtt",
        "InterruptionQueue.Arn"
    ));
    assert!(is_intrinsic(
        &t["Outputs"]["InterruptionQueueUrl"]["Value"],
        "Ref",
        "InterruptionQueue"
    ));
}

/// Creates the interruption queue in moto and the template's four EventBridge rules
/// (their real event patterns) targeting it. Returns the queue URL.
async fn interruption_stack(sdk: &SdkConfig, name: &str) -> String {
    let sqs = aws_sdk_sqs::Client::new(sdk);
    let url = sqs
        .create_queue()
        .queue_name(name)
        .send()
        .await
        .expect("CreateQueue")
        .queue_url()
        .expect("queue url")
        .to_string();
    let arn = sqs
        .get_queue_attributes()
        .queue_url(&url)
        .attribute_names(aws_sdk_sqs::types::QueueAttributeName::QueueArn)
        .send()
        .await
        .expect("GetQueueAttributes")
        .attributes()
        .and_then(|a| a.get(&aws_sdk_sqs::types::QueueAttributeName::QueueArn))
        .expect("queue arn")
        .clone();
    let events = aws_sdk_eventbridge::Client::new(sdk);
    let rules = template_rules(&template());
    assert_eq!(rules.len(), 4);
    for (rule, pattern) in rules {
        events
            .put_rule()
            .name(&rule)
            .event_pattern(pattern.to_string())
            .send()
            .await
            .expect("PutRule");
        events
            .put_targets()
            .rule(&rule)
            .targets(
                aws_sdk_eventbridge::types::Target::builder()
                    .id("SpotOptimizerInterruptionQueue")
                    .arn(&arn)
                    .build()
                    .expect("target"),
            )
            .send()
            .await
            .expect("PutTargets");
    }
    url
}

fn event(
    source: &str,
    detail_type: &str,
    resource: &str,
    detail: serde_json::Value,
) -> aws_sdk_eventbridge::types::PutEventsRequestEntry {
    aws_sdk_eventbridge::types::PutEventsRequestEntry::builder()
        .source(source)
        .detail_type(detail_type)
        .resources(resource)
        .detail(detail.to_string())
        .build()
}

async fn run_in(
    ec2: &aws_sdk_ec2::Client,
    instance_type: ec2_types::InstanceType,
    az: &str,
) -> String {
    ec2.run_instances()
        .image_id(AMI)
        .instance_type(instance_type)
        .min_count(1)
        .max_count(1)
        .placement(
            ec2_types::Placement::builder()
                .availability_zone(az)
                .build(),
        )
        .instance_market_options(
            ec2_types::InstanceMarketOptionsRequest::builder()
                .market_type(ec2_types::MarketType::Spot)
                .build(),
        )
        .send()
        .await
        .expect("RunInstances")
        .instances()
        .first()
        .and_then(|i| i.instance_id())
        .expect("instance id")
        .to_string()
}

/// Messages still in the queue, visible or in flight.
async fn queue_depth(sqs: &aws_sdk_sqs::Client, url: &str) -> u64 {
    use aws_sdk_sqs::types::QueueAttributeName as A;
    let out = sqs
        .get_queue_attributes()
        .queue_url(url)
        .attribute_names(A::ApproximateNumberOfMessages)
        .attribute_names(A::ApproximateNumberOfMessagesNotVisible)
        .send()
        .await
        .expect("GetQueueAttributes");
    let attrs = out.attributes().cloned().unwrap_or_default();
    [
        A::ApproximateNumberOfMessages,
        A::ApproximateNumberOfMessagesNotVisible,
    ]
    .iter()
    .map(|k| {
        attrs
            .get(k)
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or_else(|| panic!("{k:?} missing: {attrs:?}"))
    })
    .sum()
}

#[tokio::test]
async fn spot_signals_arrive_through_the_interruption_queue() {
    let Some(moto) = moto("spot_signals_arrive_through_the_interruption_queue") else {
        return;
    };
    let sdk = seed_config(&moto).await;
    let url = interruption_stack(&sdk, DEFAULT_INTERRUPTION_QUEUE).await;
    let ec2 = aws_sdk_ec2::Client::new(&sdk);
    let warned = run_in(&ec2, ec2_types::InstanceType::M5Large, "us-east-1a").await;
    let rebalanced = run_in(&ec2, ec2_types::InstanceType::C5Xlarge, "us-east-1b").await;
    let arn = |id: &str| format!("arn:aws:ec2:{REGION}:{ACCOUNT}:instance/{id}");

    let events = aws_sdk_eventbridge::Client::new(&sdk);
    let out = events
        .put_events()
        .entries(event(
            "aws.ec2",
            "EC2 Spot Instance Interruption Warning",
            &arn(&warned),
            serde_json::json!({"instance-id": warned, "instance-action": "terminate"}),
        ))
        .entries(event(
            "aws.ec2",
            "EC2 Instance Rebalance Recommendation",
            &arn(&rebalanced),
            serde_json::json!({"instance-id": rebalanced}),
        ))
        .entries(event(
            "aws.ec2",
            "EC2 Instance State-change Notification",
            &arn(&rebalanced),
            serde_json::json!({"instance-id": rebalanced, "state": "shutting-down"}),
        ))
        // Filtered out by the template's state-change pattern: never reaches the queue.
        .entries(event(
            "aws.ec2",
            "EC2 Instance State-change Notification",
            &arn(&warned),
            serde_json::json!({"instance-id": warned, "state": "running"}),
        ))
        .entries(event(
            "aws.health",
            "AWS Health Event",
            &warned,
            serde_json::json!({
                "eventArn": "arn:aws:health:us-east-1::event/EC2/AWS_EC2_INSTANCE_RETIREMENT_SCHEDULED/x",
                "service": "EC2",
                "eventTypeCode": "AWS_EC2_INSTANCE_RETIREMENT_SCHEDULED",
                "eventTypeCategory": "scheduledChange",
                "startTime": "Sat, 05 Jun 2038 15:10:09 GMT",
                "affectedEntities": [{"entityValue": warned}]
            }),
        ))
        .send()
        .await
        .expect("PutEvents");
    assert_eq!(out.failed_entry_count(), 0, "{out:?}");
    let sqs = aws_sdk_sqs::Client::new(&sdk);
    sqs.send_message()
        .queue_url(&url)
        .message_body("this is not an EventBridge event")
        .send()
        .await
        .expect("SendMessage");
    sqs.send_message()
        .queue_url(&url)
        .message_body(r#"{"detail-type": "Object Created", "source": "aws.s3", "detail": {}}"#)
        .send()
        .await
        .expect("SendMessage");
    assert_eq!(
        queue_depth(&sqs, &url).await,
        6,
        "4 routed events + 2 poison"
    );

    let cloud = adapter(&moto, keys())
        .await
        .with_interruption_poll_wait(Duration::from_secs(1))
        .expect("wait");
    let got = cloud.poll_events(chrono::Utc::now()).await.expect("poll");
    let find = |kind: SpotEventKind| -> &SpotEvent {
        got.iter()
            .find(|e| e.kind == kind)
            .unwrap_or_else(|| panic!("no {kind:?} in {got:?}"))
    };
    assert_eq!(got.len(), 4, "{got:#?}");
    let notice = find(SpotEventKind::InterruptionNotice);
    assert_eq!(
        (
            notice.instance_id.as_str(),
            notice.instance_type.as_str(),
            notice.az.as_str()
        ),
        (warned.as_str(), "m5.large", "us-east-1a")
    );
    assert_eq!(
        notice.action_time,
        Some(notice.time + chrono::Duration::minutes(2))
    );
    let rebalance = find(SpotEventKind::RebalanceRecommendation);
    assert_eq!(
        (
            rebalance.instance_id.as_str(),
            rebalance.instance_type.as_str(),
            rebalance.az.as_str()
        ),
        (rebalanced.as_str(), "c5.xlarge", "us-east-1b")
    );
    let change = find(SpotEventKind::InstanceStateChange {
        state: InstanceState::ShuttingDown,
    });
    assert_eq!(change.instance_id, rebalanced);
    let retirement = find(SpotEventKind::ScheduledChange);
    assert_eq!(
        (
            retirement.instance_id.as_str(),
            retirement.instance_type.as_str()
        ),
        (warned.as_str(), "m5.large")
    );
    assert_eq!(
        retirement.action_time.map(|t| t.to_rfc3339()),
        Some("2038-06-05T15:10:09+00:00".to_string())
    );
    assert!(
        got.windows(2).all(|w| w[0].time <= w[1].time),
        "oldest first"
    );

    // Everything was deleted, the poison messages included (not merely hidden).
    assert_eq!(queue_depth(&sqs, &url).await, 0);
    assert!(cloud
        .poll_events(chrono::Utc::now())
        .await
        .expect("second poll")
        .is_empty());
}

#[tokio::test]
async fn without_the_queue_there_are_no_signals_and_no_error() {
    let Some(moto) = moto("without_the_queue_there_are_no_signals_and_no_error") else {
        return;
    };
    let cloud = adapter(&moto, keys())
        .await
        .with_interruption_poll_wait(Duration::from_secs(1))
        .expect("wait");
    assert_eq!(cloud.interruption_queue(), DEFAULT_INTERRUPTION_QUEUE);
    for _ in 0..2 {
        assert_eq!(
            cloud.poll_events(chrono::Utc::now()).await.expect("poll"),
            vec![]
        );
    }
    assert!(matches!(
        adapter(&moto, keys())
            .await
            .with_interruption_queue("no spaces"),
        Err(CloudError::Invalid { .. })
    ));
    assert!(matches!(
        adapter(&moto, keys())
            .await
            .with_interruption_poll_wait(Duration::from_secs(11)),
        Err(CloudError::Invalid { .. })
    ));

    // A stack deployed with another queue name: the adapter reads that queue instead.
    let sdk = seed_config(&moto).await;
    let url = interruption_stack(&sdk, "acme-spot-signals").await;
    let ec2 = aws_sdk_ec2::Client::new(&sdk);
    let id = run_in(&ec2, ec2_types::InstanceType::M5Large, "us-east-1c").await;
    aws_sdk_sqs::Client::new(&sdk)
        .send_message()
        .queue_url(&url)
        .message_body(
            serde_json::json!({
                "version": "0",
                "id": "6a7e8feb-b491-4cf7-a9f1-bf3703467718",
                "detail-type": "EC2 Instance Rebalance Recommendation",
                "source": "aws.ec2",
                "account": ACCOUNT,
                "time": "2026-11-28T10:00:00Z",
                "region": REGION,
                "resources": [format!("arn:aws:ec2:{REGION}:{ACCOUNT}:instance/{id}")],
                "detail": {"instance-id": id}
            })
            .to_string(),
        )
        .send()
        .await
        .expect("SendMessage");
    let custom = adapter(&moto, keys())
        .await
        .with_interruption_queue("acme-spot-signals")
        .and_then(|c| c.with_interruption_poll_wait(Duration::from_secs(1)))
        .expect("custom queue");
    let got = custom.poll_events(chrono::Utc::now()).await.expect("poll");
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0].kind, SpotEventKind::RebalanceRecommendation);
    assert_eq!(
        (got[0].instance_id.as_str(), got[0].az.as_str()),
        (id.as_str(), "us-east-1c")
    );
    // The default-named adapter still sees nothing (it cached "no queue").
    assert!(cloud
        .poll_events(chrono::Utc::now())
        .await
        .expect("poll")
        .is_empty());
}

#[tokio::test]
async fn security_groups_are_listed() {
    let Some(moto) = moto("security_groups_are_listed") else {
        return;
    };
    let sdk = seed_config(&moto).await;
    let ec2 = aws_sdk_ec2::Client::new(&sdk);
    let vpc = ec2
        .create_vpc()
        .cidr_block("10.42.0.0/16")
        .send()
        .await
        .expect("CreateVpc");
    let vpc_id = vpc
        .vpc()
        .and_then(|v| v.vpc_id())
        .expect("vpc id")
        .to_string();
    let created = ec2
        .create_security_group()
        .group_name("prod-nodes")
        .description("Worker nodes of prod")
        .vpc_id(&vpc_id)
        .tag_specifications(
            ec2_types::TagSpecification::builder()
                .resource_type(ec2_types::ResourceType::SecurityGroup)
                .tags(tag("eks:cluster-name", "prod"))
                .build(),
        )
        .send()
        .await
        .expect("CreateSecurityGroup");
    let sg_id = created.group_id().expect("group id").to_string();

    let cloud = adapter(&moto, keys()).await;
    let groups = cloud
        .describe_security_groups()
        .await
        .expect("DescribeSecurityGroups");
    let g = groups
        .iter()
        .find(|g| g.id == sg_id)
        .unwrap_or_else(|| panic!("{sg_id} not listed: {groups:?}"));
    assert_eq!(g.name, "prod-nodes");
    assert_eq!(g.description, "Worker nodes of prod");
    assert_eq!(g.vpc_id.as_deref(), Some(vpc_id.as_str()));
    assert_eq!(
        g.tags.get("eks:cluster-name").map(String::as_str),
        Some("prod")
    );
    // Every VPC has its `default` group; the list is sorted by name.
    assert!(groups
        .iter()
        .any(|g| g.name == "default" && g.vpc_id.as_deref() == Some(vpc_id.as_str())));
    let names: Vec<&str> = groups.iter().map(|g| g.name.as_str()).collect();
    let mut sorted = names.clone();
    sorted.sort();
    assert_eq!(names, sorted);
    assert!(groups.iter().all(|g| g.id.starts_with("sg-")));
}
