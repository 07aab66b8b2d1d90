//! The Lab's live single-instance switch through the real AWS adapter against moto: an EKS
//! node (an instance tagged `eks:cluster-name` / `eks:nodegroup-name`, as discovery and the
//! executor read them) with a data volume is switched by a super-admin over HTTP. The
//! replacement is launched (RunInstances, spot, tagged as a node of the cluster and as
//! launched by Spot Optimizer), waited for, cordoned and drained around through the
//! cluster's agent, the data volume is detached and attached to the replacement
//! (DetachVolume / AttachVolume) and the old instance terminated. moto has no Kubernetes:
//! a small agent here speaks the agent protocol over HTTP with its own token and plays the
//! cluster (a kubelet registers every running instance of the cluster as a Ready node; the
//! commands act on its node and pod lists). Needs `moto_server`.

use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_config::{BehaviorVersion, Region};
use aws_credential_types::Credentials;
use aws_sdk_ec2::types as ec2_types;
use aws_sdk_eks::types as eks_types;
use chrono::Utc;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use spot_agent_protocol as proto;

use crate::aws::{connector, moto, Moto};
use crate::both;
use crate::optimize::wait_agent_view;
use crate::risk::super_admin;
use crate::support::{Backend, TestApp};

const CLUSTER: &str = "moto-eks";
const NODE_GROUP: &str = "general";
const AMI: &str = "ami-12c6146b";
/// The node's type and the type the switch is asked for.
const OLD_TYPE: &str = "m5.large";
const TARGET_TYPE: &str = "m6i.large";
const AZ: &str = "us-east-1a";

async fn seed_cluster(m: &Moto) -> aws_sdk_ec2::Client {
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
    let eks = aws_sdk_eks::Client::new(&sdk);
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
    aws_sdk_ec2::Client::new(&sdk)
}

fn tag(k: &str, v: &str) -> ec2_types::Tag {
    ec2_types::Tag::builder().key(k).value(v).build()
}

/// The cluster's node (on-demand, with a data volume at /dev/sdh): (instance id, volume id).
async fn seed_node(ec2: &aws_sdk_ec2::Client) -> (String, String) {
    let out = ec2
        .run_instances()
        .image_id(AMI)
        .instance_type(ec2_types::InstanceType::from(OLD_TYPE))
        .min_count(1)
        .max_count(1)
        .placement(
            ec2_types::Placement::builder()
                .availability_zone(AZ)
                .build(),
        )
        .tag_specifications(
            ec2_types::TagSpecification::builder()
                .resource_type(ec2_types::ResourceType::Instance)
                .tags(tag("eks:cluster-name", CLUSTER))
                .tags(tag("eks:nodegroup-name", NODE_GROUP))
                .tags(tag("spot-optimizer/lab-ready", "true"))
                .tags(tag("Name", "moto-eks-node"))
                .build(),
        )
        .send()
        .await
        .expect("RunInstances");
    let instance = out
        .instances()
        .first()
        .and_then(|i| i.instance_id())
        .expect("instance id")
        .to_string();
    // Created right after the instance, within the same second as its root volume: the
    // switch tells the root (attached as the instance's root device) from data volumes
    // by device name, not by creation time.
    let volume = ec2
        .create_volume()
        .availability_zone(AZ)
        .size(20)
        .volume_type(ec2_types::VolumeType::Gp3)
        .tag_specifications(
            ec2_types::TagSpecification::builder()
                .resource_type(ec2_types::ResourceType::Volume)
                .tags(tag("Name", "node-data"))
                .build(),
        )
        .send()
        .await
        .expect("CreateVolume")
        .volume_id()
        .expect("volume id")
        .to_string();
    ec2.attach_volume()
        .volume_id(&volume)
        .instance_id(&instance)
        .device("/dev/sdh")
        .send()
        .await
        .expect("AttachVolume");
    (instance, volume)
}

async fn instance(ec2: &aws_sdk_ec2::Client, id: &str) -> ec2_types::Instance {
    ec2.describe_instances()
        .instance_ids(id)
        .send()
        .await
        .expect("DescribeInstances")
        .reservations()
        .iter()
        .flat_map(|r| r.instances())
        .find(|i| i.instance_id() == Some(id))
        .cloned()
        .unwrap_or_else(|| panic!("{id} unknown to moto"))
}

fn state_of(i: &ec2_types::Instance) -> String {
    i.state()
        .and_then(|s| s.name())
        .map(|n| n.as_str().to_string())
        .unwrap_or_default()
}

fn tag_of<'a>(i: &'a ec2_types::Instance, key: &str) -> Option<&'a str> {
    i.tags()
        .iter()
        .find(|t| t.key() == Some(key))
        .and_then(|t| t.value())
}

// ---------------------------------------------------------------------------------------
// The cluster's agent, played over the agent protocol.

/// What the fake cluster holds: nodes and pods by name.
#[derive(Default)]
struct Kube {
    nodes: BTreeMap<String, proto::Node>,
    pods: BTreeMap<String, proto::Pod>,
    /// Instances whose Node object was deleted (their kubelet does not register again).
    gone: HashSet<String>,
}

/// `(command, node)` in the order the agent ran them.
type Log = Arc<Mutex<Vec<(String, String)>>>;

struct FakeAgent {
    http: reqwest::Client,
    base: String,
    token: String,
    ec2: aws_sdk_ec2::Client,
    kube: Kube,
    log: Log,
    snapshot_sent: bool,
    replacements: u32,
}

fn node_of(i: &ec2_types::Instance) -> Option<proto::Node> {
    let id = i.instance_id()?.to_string();
    let ty = i.instance_type()?.as_str().to_string();
    let az = i.placement()?.availability_zone()?.to_string();
    let name = i
        .private_dns_name()
        .filter(|n| !n.is_empty())
        .map_or_else(|| format!("node-{id}"), str::to_string);
    let spot = i.instance_lifecycle().is_some_and(|l| l.as_str() == "spot");
    let mut labels = BTreeMap::new();
    labels.insert("kubernetes.io/hostname".to_string(), name.clone());
    labels.insert("node.kubernetes.io/instance-type".to_string(), ty.clone());
    labels.insert("topology.kubernetes.io/zone".to_string(), az.clone());
    labels.insert(
        "eks.amazonaws.com/capacityType".to_string(),
        if spot { "SPOT" } else { "ON_DEMAND" }.to_string(),
    );
    let node_group = tag_of(i, "eks:nodegroup-name").map(str::to_string);
    if let Some(g) = &node_group {
        labels.insert("eks.amazonaws.com/nodegroup".to_string(), g.clone());
    }
    Some(proto::Node {
        name,
        provider_id: Some(format!("aws:///{az}/{id}")),
        instance_id: Some(id),
        instance_type: Some(ty),
        zone: Some(az),
        capacity_type: Some(if spot { "spot" } else { "on-demand" }.to_string()),
        node_group,
        labels,
        annotations: BTreeMap::new(),
        taints: Vec::new(),
        allocatable: proto::Resources {
            cpu_millis: 1930,
            memory_mib: 7000,
            gpus: 0,
            pods: 29,
        },
        capacity: proto::Resources {
            cpu_millis: 2000,
            memory_mib: 7680,
            gpus: 0,
            pods: 29,
        },
        conditions: vec![proto::NodeCondition {
            kind: "Ready".into(),
            status: "True".into(),
            reason: Some("KubeletReady".into()),
            message: None,
        }],
        ready: true,
        unschedulable: false,
        created_at: Some(Utc::now()),
    })
}

fn pod(ns: &str, name: &str, node: &str, owner: (&str, &str), cpu: u64) -> proto::Pod {
    let mut labels = BTreeMap::new();
    labels.insert("app".to_string(), owner.1.to_string());
    proto::Pod {
        namespace: ns.into(),
        name: name.into(),
        uid: Some(uuid::Uuid::new_v4().to_string()),
        node_name: Some(node.into()),
        phase: proto::PodPhase::Running,
        owner: Some(proto::Owner {
            kind: owner.0.into(),
            name: owner.1.into(),
        }),
        requests: proto::Resources {
            cpu_millis: cpu,
            memory_mib: 256,
            gpus: 0,
            pods: 0,
        },
        priority: None,
        priority_class: None,
        labels,
        annotations: BTreeMap::new(),
        pdbs: Vec::new(),
        do_not_disrupt: false,
        daemonset: owner.0 == "DaemonSet",
        mirror: false,
        unschedulable_reason: None,
        node_selector: BTreeMap::new(),
        created_at: Some(Utc::now()),
    }
}

fn delta() -> proto::ClusterDelta {
    proto::ClusterDelta {
        collected_at: Some(Utc::now()),
        ..Default::default()
    }
}

impl FakeAgent {
    async fn post(&self, path: &str, body: Option<Value>) -> (StatusCode, Value) {
        let mut req = self
            .http
            .post(format!("{}{path}", self.base))
            .bearer_auth(&self.token);
        if let Some(b) = &body {
            req = req.json(b);
        }
        let r = req.send().await.expect("agent request");
        let st = r.status();
        (st, r.json().await.unwrap_or(Value::Null))
    }

    /// The kubelet of every running instance of the cluster registers it as a Ready node.
    async fn join(&mut self) {
        let out = self
            .ec2
            .describe_instances()
            .filters(
                ec2_types::Filter::builder()
                    .name("tag:eks:cluster-name")
                    .values(CLUSTER)
                    .build(),
            )
            .filters(
                ec2_types::Filter::builder()
                    .name("instance-state-name")
                    .values("running")
                    .build(),
            )
            .send()
            .await
            .expect("DescribeInstances");
        let mut d = delta();
        for i in out.reservations().iter().flat_map(|r| r.instances()) {
            let Some(id) = i.instance_id() else { continue };
            let known = self
                .kube
                .nodes
                .values()
                .any(|n| n.instance_id.as_deref() == Some(id));
            if known || self.kube.gone.contains(id) {
                continue;
            }
            if let Some(n) = node_of(i) {
                self.kube.nodes.insert(n.name.clone(), n.clone());
                d.nodes_upserted.push(n);
            }
        }
        if self.snapshot_sent && !d.is_empty() {
            let (st, v) = self.post("/delta", Some(json!(d))).await;
            assert_eq!(st, StatusCode::OK, "delta: {v}");
        }
    }

    async fn heartbeat(&mut self) {
        let hb = proto::Heartbeat {
            protocol_version: proto::PROTOCOL_VERSION,
            agent_version: "lab-aws-test".into(),
            kubernetes_version: "v1.31.2-eks-7f9249a".into(),
            watches: Vec::new(),
            metrics_available: false,
            safe_mode: None,
            sent_at: Utc::now(),
        };
        let (st, ack) = self.post("/heartbeat", Some(json!(hb))).await;
        assert_eq!(st, StatusCode::OK, "heartbeat: {ack}");
        if ack["resync"] == true || !self.snapshot_sent {
            let snap = proto::ClusterSnapshot {
                collected_at: Utc::now(),
                nodes: self.kube.nodes.values().cloned().collect(),
                pods: self.kube.pods.values().cloned().collect(),
                pdbs: Vec::new(),
                usage: Vec::new(),
                history: Vec::new(),
            };
            let (st, v) = self.post("/snapshot", Some(json!(snap))).await;
            assert_eq!(st, StatusCode::OK, "snapshot: {v}");
            self.snapshot_sent = true;
        }
    }

    /// Runs one claimed command against the fake cluster: the outcome, its message, the
    /// evictions of a drain and the changes to report.
    fn act(
        &mut self,
        kind: &proto::CommandKind,
    ) -> (
        proto::CommandOutcome,
        String,
        Vec<proto::EvictionRecord>,
        proto::ClusterDelta,
    ) {
        use proto::CommandKind as K;
        let mut d = delta();
        let ok = proto::CommandOutcome::Succeeded;
        let failed = proto::CommandOutcome::Failed;
        let node_name = match kind {
            K::Cordon { node }
            | K::Uncordon { node }
            | K::Drain { node, .. }
            | K::Label { node, .. }
            | K::Taint { node, .. }
            | K::DeleteNode { node } => node.clone(),
            K::PatchRequests { .. } => {
                return (failed, "not supported here".into(), Vec::new(), d);
            }
        };
        let Some(node) = self.kube.nodes.get_mut(&node_name) else {
            return (failed, format!("node {node_name} not found"), Vec::new(), d);
        };
        match kind {
            K::Cordon { .. } | K::Uncordon { .. } => {
                node.unschedulable = matches!(kind, K::Cordon { .. });
                d.nodes_upserted.push(node.clone());
                (ok, format!("{node_name} updated"), Vec::new(), d)
            }
            K::Label { labels, .. } => {
                for (k, v) in labels {
                    match v {
                        Some(v) => node.labels.insert(k.clone(), v.clone()),
                        None => node.labels.remove(k),
                    };
                }
                d.nodes_upserted.push(node.clone());
                (ok, format!("{node_name} labelled"), Vec::new(), d)
            }
            K::Taint { add, remove, .. } => {
                node.taints.retain(|t| {
                    !remove
                        .iter()
                        .any(|r| r.key == t.key && r.effect == t.effect)
                });
                node.taints.extend(add.iter().cloned());
                d.nodes_upserted.push(node.clone());
                (ok, format!("{node_name} tainted"), Vec::new(), d)
            }
            K::Drain { .. } => {
                node.unschedulable = true;
                d.nodes_upserted.push(node.clone());
                // Evicted pods come back (their controller recreates them) on a Ready,
                // schedulable node.
                let target = self
                    .kube
                    .nodes
                    .values()
                    .find(|n| n.name != node_name && n.ready && !n.unschedulable)
                    .map(|n| n.name.clone());
                let on_node: Vec<proto::Pod> = self
                    .kube
                    .pods
                    .values()
                    .filter(|p| p.node_name.as_deref() == Some(node_name.as_str()))
                    .cloned()
                    .collect();
                let mut evictions = Vec::new();
                for p in on_node {
                    if p.daemonset {
                        evictions.push(proto::EvictionRecord {
                            pod: p.key(),
                            outcome: "skipped_daemonset".into(),
                            retries: 0,
                            message: None,
                        });
                        continue;
                    }
                    let Some(target) = &target else {
                        return (
                            failed,
                            format!("no node can take {}", p.key()),
                            evictions,
                            d,
                        );
                    };
                    self.kube.pods.remove(&p.key());
                    d.pods_deleted.push(p.key());
                    self.replacements += 1;
                    let mut again = p.clone();
                    again.name = format!("{}-r{}", p.name, self.replacements);
                    again.uid = Some(uuid::Uuid::new_v4().to_string());
                    again.node_name = Some(target.clone());
                    again.created_at = Some(Utc::now());
                    self.kube.pods.insert(again.key(), again.clone());
                    d.pods_upserted.push(again);
                    evictions.push(proto::EvictionRecord {
                        pod: p.key(),
                        outcome: "evicted".into(),
                        retries: 0,
                        message: None,
                    });
                }
                (ok, format!("{node_name} drained"), evictions, d)
            }
            K::DeleteNode { .. } => {
                if let Some(id) = &node.instance_id {
                    self.kube.gone.insert(id.clone());
                }
                self.kube.nodes.remove(&node_name);
                let left: Vec<String> = self
                    .kube
                    .pods
                    .values()
                    .filter(|p| p.node_name.as_deref() == Some(node_name.as_str()))
                    .map(proto::Pod::key)
                    .collect();
                for k in left {
                    self.kube.pods.remove(&k);
                    d.pods_deleted.push(k);
                }
                d.nodes_deleted.push(node_name.clone());
                (ok, format!("node {node_name} deleted"), Vec::new(), d)
            }
            K::PatchRequests { .. } => unreachable!("answered above"),
        }
    }

    /// Claims and runs every queued command; the changes are reported before the result.
    async fn serve_commands(&mut self) {
        let r = self
            .http
            .get(format!("{}/commands?wait=0", self.base))
            .bearer_auth(&self.token)
            .send()
            .await
            .expect("commands");
        assert_eq!(r.status(), StatusCode::OK);
        let batch: proto::CommandBatch = r.json().await.expect("command batch");
        for c in batch.commands {
            let (st, v) = self.post(&format!("/commands/{}/start", c.id), None).await;
            if st != StatusCode::OK {
                // Claimed elsewhere or expired: never run it.
                eprintln!("command {} not started: {st} {v}", c.id);
                continue;
            }
            let started_at = Utc::now();
            let (outcome, message, evictions, d) = self.act(&c.command);
            let node = match &c.command {
                proto::CommandKind::Cordon { node }
                | proto::CommandKind::Uncordon { node }
                | proto::CommandKind::Drain { node, .. }
                | proto::CommandKind::Label { node, .. }
                | proto::CommandKind::Taint { node, .. }
                | proto::CommandKind::DeleteNode { node } => node.clone(),
                proto::CommandKind::PatchRequests { .. } => String::new(),
            };
            self.log
                .lock()
                .expect("log")
                .push((c.command.name().to_string(), node));
            if !d.is_empty() {
                let (st, v) = self.post("/delta", Some(json!(d))).await;
                assert_eq!(st, StatusCode::OK, "delta: {v}");
            }
            let result = proto::CommandResult {
                outcome,
                message,
                evictions,
                started_at,
                finished_at: Utc::now(),
            };
            let (st, v) = self
                .post(&format!("/commands/{}/result", c.id), Some(json!(result)))
                .await;
            assert_eq!(st, StatusCode::OK, "result: {v}");
        }
    }

    async fn run(mut self) {
        let mut last_heartbeat: Option<std::time::Instant> = None;
        loop {
            self.join().await;
            if last_heartbeat.is_none_or(|t| t.elapsed() >= Duration::from_secs(5)) {
                self.heartbeat().await;
                last_heartbeat = Some(std::time::Instant::now());
            }
            self.serve_commands().await;
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

/// Starts the cluster's agent: the node of `instance` runs two replicas of a Deployment
/// and a DaemonSet pod. Returns the task (aborted by the caller) and the command log.
async fn start_agent(
    app: &TestApp,
    token: &str,
    ec2: &aws_sdk_ec2::Client,
    instance: &str,
) -> (tokio::task::JoinHandle<()>, Log, String) {
    let log: Log = Arc::default();
    let mut agent = FakeAgent {
        http: app.http.clone(),
        base: app.url(proto::API_PREFIX),
        token: token.to_string(),
        ec2: ec2.clone(),
        kube: Kube::default(),
        log: log.clone(),
        snapshot_sent: false,
        replacements: 0,
    };
    agent.join().await;
    let node = agent
        .kube
        .nodes
        .values()
        .find(|n| n.instance_id.as_deref() == Some(instance))
        .map(|n| n.name.clone())
        .expect("the seeded instance registered as a node");
    for p in [
        pod("default", "web-1", &node, ("Deployment", "web"), 500),
        pod("default", "web-2", &node, ("Deployment", "web"), 500),
        pod(
            "kube-system",
            "aws-node-x1",
            &node,
            ("DaemonSet", "aws-node"),
            25,
        ),
    ] {
        agent.kube.pods.insert(p.key(), p);
    }
    (tokio::spawn(agent.run()), log, node)
}

async fn a_live_switch_on_moto_moves_the_node_and_its_volume(b: Backend) {
    let m = moto().await;
    let ec2 = seed_cluster(&m).await;
    let (old, volume) = seed_node(&ec2).await;
    let app = TestApp::start_with_connector(b, connector(&m)).await;
    let admin = super_admin(&app).await;
    let owner = app.signup("Moto Lab").await;
    let body = json!({"access_key_id": "AKIAIOSFODNN7EXAMPLE", "secret_access_key": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "region": "us-east-1", "name": "Lab"});
    let (st, acc) = app
        .json(
            Method::POST,
            "/api/accounts/keys",
            Some(&owner.access),
            Some(body),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{acc}");
    let account_id = acc["id"].as_str().expect("account id").to_string();
    // The scan discovers the EKS cluster (and the node by its cluster tag).
    let mut cluster = Value::Null;
    for _ in 0..200 {
        let (_, list) = app
            .json(Method::GET, "/api/clusters", Some(&owner.access), None)
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
    let cluster_id = cluster["id"]
        .as_str()
        .unwrap_or_else(|| panic!("{CLUSTER} not discovered"))
        .to_string();
    let (st, t) = app
        .json(
            Method::POST,
            &format!("/api/clusters/{cluster_id}/agent"),
            Some(&owner.access),
            Some(json!({})),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{t}");
    let token = t["token"].as_str().expect("agent token").to_string();
    let (agent, log, old_node) = start_agent(&app, &token, &ec2, &old).await;
    wait_agent_view(&app, &owner, &cluster_id).await;

    // The Lab lists the node as switchable (its cluster's agent is connected) and
    // Lab-ready.
    let (st, c) = app
        .json(Method::GET, "/api/lab/candidates", Some(&admin), None)
        .await;
    assert_eq!(st, StatusCode::OK, "{c}");
    let cand = c["instances"]
        .as_array()
        .expect("instances")
        .iter()
        .find(|i| i["instance_id"] == old.as_str())
        .unwrap_or_else(|| panic!("{old} not a candidate: {c}"))
        .clone();
    assert_eq!(cand["provider"], "aws", "{cand}");
    assert_eq!(cand["account_id"], account_id.as_str(), "{cand}");
    assert_eq!(cand["cluster_id"], cluster_id.as_str(), "{cand}");
    assert_eq!(cand["instance_type"], OLD_TYPE, "{cand}");
    assert_eq!(cand["az"], AZ, "{cand}");
    assert_eq!(cand["switchable"], true, "{cand}");
    assert_eq!(cand["lab_ready"], true, "{cand}");

    let (st, started) = app
        .json(
            Method::POST,
            "/api/lab/live-switch",
            Some(&admin),
            Some(json!({"instance_id": old, "model_id": spot_actors::risk::SHIPPED_ID, "target_type": TARGET_TYPE})),
        )
        .await;
    assert_eq!(st, StatusCode::ACCEPTED, "{started}");
    let job_id = started["job"]["id"].as_str().expect("job id").to_string();
    let switch_id = started["switch"]["id"]
        .as_str()
        .expect("switch id")
        .to_string();
    let mut job = Value::Null;
    for _ in 0..900 {
        let (st, j) = app
            .json(
                Method::GET,
                &format!("/api/admin/risk/jobs/{job_id}"),
                Some(&admin),
                None,
            )
            .await;
        assert_eq!(st, StatusCode::OK, "{j}");
        job = j;
        if ["succeeded", "failed", "cancelled"].contains(&job["status"].as_str().unwrap_or("")) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let (st, sw) = app
        .json(
            Method::GET,
            &format!("/api/lab/switches/{switch_id}"),
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{sw}");
    assert_eq!(job["status"], "succeeded", "{job}\n{sw}");
    assert_eq!(sw["status"], "succeeded", "{sw}");
    assert_eq!(sw["instance_id"], old.as_str());
    assert_eq!(sw["cluster_id"], cluster_id.as_str());
    // The shipped model sent the replacement to a spot pool of the asked type, in the
    // volume's AZ.
    assert_eq!(sw["chosen_type"], TARGET_TYPE, "{sw}");
    assert_eq!(sw["chosen_az"], AZ, "{sw}");
    assert_eq!(sw["chosen_lifecycle"], "spot", "{sw}");
    let new = sw["new_instance_id"]
        .as_str()
        .expect("new instance")
        .to_string();
    assert_ne!(new, old);

    // Every phase ran, in order, timed, none overlapping: with a connected agent and a data
    // volume nothing is skipped.
    let phases = sw["phases"].as_array().expect("phases");
    let names: Vec<&str> = phases
        .iter()
        .map(|p| p["name"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(names, spot_jobs::lab::PHASES, "{sw}");
    let mut last_end = 0i64;
    for (k, p) in phases.iter().enumerate() {
        assert_eq!(p["seq"], k as i64, "{p}");
        assert_eq!(p["status"], "done", "{p}");
        assert!(p["duration_ms"].as_i64().is_some_and(|ms| ms >= 0), "{p}");
        let at = |f: &str| {
            chrono::DateTime::parse_from_rfc3339(p[f].as_str().expect("time"))
                .expect("rfc3339")
                .timestamp_millis()
        };
        assert!(at("started_at") >= last_end, "phases overlap: {sw}");
        assert!(at("finished_at") >= at("started_at"), "{p}");
        last_end = at("finished_at");
    }
    let phase = |name: &str| {
        phases
            .iter()
            .find(|p| p["name"] == name)
            .map(|p| p["detail"].clone())
            .unwrap_or_default()
    };
    let d = phase("spot_request");
    assert_eq!(d["instance_id"], new.as_str(), "{d}");
    assert_eq!(d["lifecycle"], "spot", "{d}");
    assert_eq!(d["fallback"], Value::Null, "{d}");
    // The new node is the one the kubelet registered for the new instance.
    let new_node = phase("node_ready")["nodes"][0]
        .as_str()
        .expect("new node name")
        .to_string();
    assert_ne!(new_node, old_node);
    let d = phase("drain");
    assert_eq!(d["node"], old_node.as_str(), "{d}");
    let mut evictions: Vec<(String, String)> = d["steps"][0]["evictions"]
        .as_array()
        .expect("evictions")
        .iter()
        .map(|e| {
            (
                e["pod"].as_str().unwrap_or("").to_string(),
                e["outcome"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    evictions.sort();
    assert_eq!(
        evictions,
        vec![
            ("default/web-1".to_string(), "evicted".to_string()),
            ("default/web-2".to_string(), "evicted".to_string()),
            (
                "kube-system/aws-node-x1".to_string(),
                "skipped_daemonset".to_string()
            ),
        ],
        "{d}"
    );
    assert_eq!(phase("volume_detach")["volumes"], json!([volume]));
    assert_eq!(phase("volume_detach")["from"], old.as_str());
    assert_eq!(phase("volume_attach")["volumes"], json!([volume]));
    assert_eq!(phase("volume_attach")["to"], new.as_str());
    assert_eq!(phase("terminate")["instance_id"], old.as_str());

    // The agent was asked, in order, to cordon and drain the old node and to delete its
    // Node object; nothing touched the new node (no template marks to apply).
    let ran = log.lock().expect("log").clone();
    assert_eq!(
        ran,
        vec![
            ("cordon".to_string(), old_node.clone()),
            ("drain".to_string(), old_node.clone()),
            ("delete_node".to_string(), old_node.clone()),
        ]
    );
    agent.abort();

    // In moto: the old instance is terminated, the replacement runs as a spot m6i.large in
    // the AZ, tagged as a node of the cluster launched by Spot Optimizer for this switch,
    // and the data volume is attached to it.
    let o = instance(&ec2, &old).await;
    assert_eq!(state_of(&o), "terminated");
    let n = instance(&ec2, &new).await;
    assert_eq!(state_of(&n), "running");
    assert_eq!(n.instance_type().map(|t| t.as_str()), Some(TARGET_TYPE));
    assert_eq!(
        n.instance_lifecycle().map(|l| l.as_str()),
        Some("spot"),
        "{n:?}"
    );
    assert_eq!(n.placement().and_then(|p| p.availability_zone()), Some(AZ));
    assert_eq!(tag_of(&n, "eks:cluster-name"), Some(CLUSTER));
    assert_eq!(tag_of(&n, "eks:nodegroup-name"), Some(NODE_GROUP));
    assert_eq!(tag_of(&n, "spot-optimizer:managed"), Some("true"));
    assert_eq!(
        tag_of(&n, "spot-optimizer/lab-switch"),
        Some(switch_id.as_str())
    );
    assert_eq!(tag_of(&n, "spot-optimizer/job"), Some(job_id.as_str()));
    let v = ec2
        .describe_volumes()
        .volume_ids(&volume)
        .send()
        .await
        .expect("DescribeVolumes");
    let v = v.volumes().first().expect("the data volume is kept");
    assert_eq!(v.state().map(|s| s.as_str()), Some("in-use"), "{v:?}");
    let attached: Vec<(Option<&str>, Option<&str>)> = v
        .attachments()
        .iter()
        .map(|a| (a.instance_id(), a.device()))
        .collect();
    // On the replacement under the device name it had, so the node's mounts find it.
    assert_eq!(attached, vec![(Some(new.as_str()), Some("/dev/sdh"))]);

    // Every phase is in the customer's audit chain.
    let (_, audit) = app
        .json(
            Method::GET,
            "/api/audit-logs?limit=200",
            Some(&owner.access),
            None,
        )
        .await;
    let actions: Vec<&str> = audit["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter_map(|e| e["action"].as_str())
        .collect();
    for p in spot_jobs::lab::PHASES {
        assert!(
            actions.contains(&format!("lab.phase.{p}").as_str()),
            "lab.phase.{p} not audited: {actions:?}"
        );
    }
}
both!(a_live_switch_on_moto_moves_the_node_and_its_volume);
