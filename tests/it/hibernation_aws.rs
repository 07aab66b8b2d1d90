//! Cluster hibernation through the real AWS adapter against moto: the cluster actor's
//! "sleep now" reads the cluster's Auto Scaling groups (DescribeAutoScalingGroups, EKS
//! tag), remembers min / max / desired and sets all three to zero
//! (UpdateAutoScalingGroup); "resume" restores exactly what was remembered. A group of
//! another cluster is never touched. Needs `moto_server` (`pip install 'moto[server]'`).

use std::time::Duration;

use aws_config::{BehaviorVersion, Region};
use aws_credential_types::Credentials;
use aws_sdk_autoscaling::types as asg_types;
use aws_sdk_ec2::types as ec2_types;
use aws_sdk_eks::types as eks_types;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::aws::{connector, moto, Moto};
use crate::both;
use crate::support::{Backend, Session, TestApp};

const CLUSTER: &str = "moto-eks";

/// (name, min, max, desired, cluster tag)
const GROUPS: [(&str, i32, i32, i32, &str); 3] = [
    ("moto-eks-general", 1, 5, 2, CLUSTER),
    ("moto-eks-batch", 0, 3, 1, CLUSTER),
    ("other-cluster-nodes", 1, 2, 1, "other"),
];

async fn seed(m: &Moto) -> aws_sdk_autoscaling::Client {
    let sdk = aws_config::defaults(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .endpoint_url(&m.url)
        .credentials_provider(Credentials::new(
            "AKIAIOSFODNN7EXAMPLE",
            "x",
            None,
            None,
            "test",
        ))
        .load()
        .await;
    let ec2 = aws_sdk_ec2::Client::new(&sdk);
    let eks = aws_sdk_eks::Client::new(&sdk);
    let autoscaling = aws_sdk_autoscaling::Client::new(&sdk);
    eks.create_cluster()
        .name(CLUSTER)
        .version("1.31")
        .role_arn("arn:aws:iam::123456789012:role/eks")
        .resources_vpc_config(
            eks_types::VpcConfigRequest::builder()
                .subnet_ids("subnet-1")
                .build(),
        )
        .send()
        .await
        .expect("CreateCluster");
    ec2.create_launch_template()
        .launch_template_name("nodes")
        .launch_template_data(
            ec2_types::RequestLaunchTemplateData::builder()
                .image_id("ami-12c6146b")
                .instance_type(ec2_types::InstanceType::M5Large)
                .build(),
        )
        .send()
        .await
        .expect("CreateLaunchTemplate");
    for (name, min, max, desired, cluster) in GROUPS {
        autoscaling
            .create_auto_scaling_group()
            .auto_scaling_group_name(name)
            .launch_template(
                asg_types::LaunchTemplateSpecification::builder()
                    .launch_template_name("nodes")
                    .version("$Latest")
                    .build(),
            )
            .min_size(min)
            .max_size(max)
            .desired_capacity(desired)
            .availability_zones("us-east-1a")
            .tags(
                asg_types::Tag::builder()
                    .key("eks:cluster-name")
                    .value(cluster)
                    .propagate_at_launch(true)
                    .build(),
            )
            .send()
            .await
            .expect("CreateAutoScalingGroup");
    }
    autoscaling
}

/// (name, min, max, desired) of every group, by name, as moto has them.
async fn sizes(autoscaling: &aws_sdk_autoscaling::Client) -> Vec<(String, i32, i32, i32)> {
    let out = autoscaling
        .describe_auto_scaling_groups()
        .send()
        .await
        .expect("DescribeAutoScalingGroups");
    let mut v: Vec<_> = out
        .auto_scaling_groups()
        .iter()
        .map(|g| {
            (
                g.auto_scaling_group_name().unwrap_or_default().to_string(),
                g.min_size().unwrap_or(-1),
                g.max_size().unwrap_or(-1),
                g.desired_capacity().unwrap_or(-1),
            )
        })
        .collect();
    v.sort();
    v
}

async fn state(app: &TestApp, s: &Session, id: &str, want: &str) -> Value {
    let mut last = Value::Null;
    for _ in 0..200 {
        last = app
            .json(
                Method::GET,
                &format!("/api/clusters/{id}/hibernation/state"),
                Some(&s.access),
                None,
            )
            .await
            .1;
        if last["state"] == want {
            return last;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    panic!("cluster never reached {want}: {last}");
}

async fn sleep_and_wake_on_moto_restore_exact_sizes(b: Backend) {
    let m = moto().await;
    let autoscaling = seed(&m).await;
    let original = sizes(&autoscaling).await;
    assert_eq!(original.len(), 3, "{original:?}");
    let app = TestApp::start_with_connector(b, connector(&m)).await;
    let s = app.signup("Moto Sleep").await;
    let body = json!({"access_key_id": "AKIAIOSFODNN7EXAMPLE", "secret_access_key": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "region": "us-east-1", "name": "Lab"});
    let (st, acc) = app
        .json(
            Method::POST,
            "/api/accounts/keys",
            Some(&s.access),
            Some(body),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{acc}");
    // The scan discovers the EKS cluster.
    let mut cluster = Value::Null;
    for _ in 0..200 {
        let (_, list) = app
            .json(Method::GET, "/api/clusters", Some(&s.access), None)
            .await;
        if let Some(c) = list["items"]
            .as_array()
            .and_then(|a| a.iter().find(|c| c["name"] == CLUSTER))
        {
            cluster = c.clone();
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let id = cluster["id"]
        .as_str()
        .unwrap_or_else(|| panic!("{CLUSTER} not discovered"))
        .to_string();
    let schedule = json!({
        "enabled": false,
        "slots": vec![true; 168],
        "timezone": "UTC",
        "prewarm_minutes": 0,
        "holidays": [],
        "overrides": [],
        "node_groups": [],
        "protected_namespaces": [],
    });
    let (st, v) = app
        .json(
            Method::PUT,
            &format!("/api/clusters/{id}/hibernation"),
            Some(&s.access),
            Some(schedule),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    let (st, v) = app
        .json(
            Method::POST,
            &format!("/api/clusters/{id}/hibernation/sleep"),
            Some(&s.access),
            Some(json!({})),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    let v = state(&app, &s, &id, "asleep").await;
    let asleep = sizes(&autoscaling).await;
    for (g, o) in asleep.iter().zip(&original) {
        if g.0.starts_with("moto-eks-") {
            assert_eq!((g.1, g.2, g.3), (0, 0, 0), "{g:?}");
        } else {
            assert_eq!(g, o, "a group of another cluster was changed");
        }
    }
    let mut remembered: Vec<(String, i64, i64, i64)> = v["remembered"]
        .as_array()
        .expect("remembered")
        .iter()
        .map(|r| {
            (
                r["asg_name"].as_str().unwrap_or_default().to_string(),
                r["min_size"].as_i64().unwrap_or(-1),
                r["max_size"].as_i64().unwrap_or(-1),
                r["desired_capacity"].as_i64().unwrap_or(-1),
            )
        })
        .collect();
    remembered.sort();
    let want: Vec<(String, i64, i64, i64)> = original
        .iter()
        .filter(|g| g.0.starts_with("moto-eks-"))
        .map(|g| (g.0.clone(), g.1.into(), g.2.into(), g.3.into()))
        .collect();
    assert_eq!(remembered, want);
    // A second "sleep now" changes nothing: the remembered sizes are not overwritten by
    // the zeros.
    app.json(
        Method::POST,
        &format!("/api/clusters/{id}/hibernation/sleep"),
        Some(&s.access),
        Some(json!({})),
    )
    .await;
    let v = state(&app, &s, &id, "asleep").await;
    assert_eq!(v["transitions"].as_array().map(Vec::len), Some(1), "{v}");
    let (st, v) = app
        .json(
            Method::POST,
            &format!("/api/clusters/{id}/hibernation/resume"),
            Some(&s.access),
            None,
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    let v = state(&app, &s, &id, "awake").await;
    assert_eq!(sizes(&autoscaling).await, original, "restored exactly");
    assert_eq!(v["remembered"], json!([]));
    let outcomes: Vec<&str> = v["transitions"]
        .as_array()
        .expect("transitions")
        .iter()
        .map(|t| t["outcome"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(outcomes, vec!["success", "success"], "{v}");
}
both!(sleep_and_wake_on_moto_restore_exact_sizes);
