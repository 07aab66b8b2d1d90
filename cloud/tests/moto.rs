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
use spot_cloud::aws::{AwsCloud, AwsConfig, AwsCredentials, Secret};
use spot_cloud::{
    AsgUpdate, Cloud, CloudError, InstanceState, LaunchRequest, Lifecycle, Mutation, ResourceKind,
    Tags,
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
    assert!(matches!(
        role.pod_inventory("prod").await,
        Err(CloudError::Unsupported(_))
    ));
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
    let snap = cloud
        .create_snapshot(&volume, true)
        .await
        .expect("dry snapshot");
    assert!(snap.is_dry_run());
    let snap = cloud
        .create_snapshot(&volume, false)
        .await
        .expect("snapshot")
        .applied()
        .expect("applied");
    assert_eq!(snap.volume_id.as_deref(), Some(volume.as_str()));

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
