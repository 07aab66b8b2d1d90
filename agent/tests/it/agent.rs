use std::time::Duration;

use serde_json::json;
use spot_agent::testing::{wait_until, FakeControlPlane, FakeKube};
use spot_agent::{Agent, AgentError, Config, Status};
use spot_agent_protocol as proto;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

const TOKEN: &str = "spa_abcdefgh_secret";
/// Upper bound of every wait (they return as soon as the condition holds; generous for a
/// loaded 2-core CI machine).
const T: Duration = Duration::from_secs(45);

fn config(cp: &FakeControlPlane) -> Config {
    spot_agent::testing::fast_config(&cp.url(), TOKEN).expect("valid config")
}

struct Running {
    status: Status,
    stop: Option<oneshot::Sender<()>>,
    handle: JoinHandle<Result<(), AgentError>>,
}

impl Running {
    async fn stop(mut self) -> Result<(), AgentError> {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        self.handle.await.expect("agent task")
    }
}

fn spawn(config: Config, kube: &FakeKube) -> Running {
    // RUST_LOG=spot_agent=debug shows the agent's log in failing tests.
    let _ = tracing_subscriber::fmt()
        .with_test_writer()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .try_init();
    let agent = Agent::new(config, kube.client()).expect("agent");
    let status = agent.status();
    let (tx, rx) = oneshot::channel::<()>();
    let handle = tokio::spawn(agent.run_until(async move {
        let _ = rx.await;
    }));
    Running {
        status,
        stop: Some(tx),
        handle,
    }
}

fn small_cluster(kube: &FakeKube) {
    kube.add_node("n1");
    kube.add_node("n2");
    kube.add_pod(
        "shop",
        "web-abc-1",
        Some("n1"),
        json!({"app": "web", "pod-template-hash": "abc"}),
        "ReplicaSet",
        "web-abc",
    );
    kube.add_pod(
        "kube-system",
        "fluentd-1",
        Some("n1"),
        json!({"app": "fluentd"}),
        "DaemonSet",
        "fluentd",
    );
    kube.add_pod(
        "kube-system",
        "kube-proxy-n1",
        Some("n1"),
        json!({"k8s-app": "kube-proxy"}),
        "Mirror",
        "",
    );
}

#[tokio::test]
async fn snapshot_then_deltas_reach_the_control_plane() {
    let kube = FakeKube::start(true).await.unwrap();
    small_cluster(&kube);
    // The ReplicaSet names its Deployment: the owner is resolved by reading it.
    kube.put_apps("replicasets", json!({"metadata": {"name": "web-abc", "namespace": "shop",
        "ownerReferences": [{"apiVersion": "apps/v1", "kind": "Deployment", "name": "web", "uid": "d", "controller": true}]}}));
    kube.add_pdb("shop", "web-pdb", json!({"app": "web"}), 1);
    let cp = FakeControlPlane::start(TOKEN).await.unwrap();
    let agent = spawn(config(&cp), &kube);

    assert!(
        wait_until(T, || cp.with(|s| !s.snapshots.is_empty())).await,
        "no snapshot"
    );
    let snap = cp.with(|s| s.snapshots[0].clone());
    assert_eq!(snap.nodes.len(), 2);
    assert_eq!(snap.pods.len(), 3);
    assert_eq!(snap.pdbs.len(), 1);
    let n1 = snap.nodes.iter().find(|n| n.name == "n1").unwrap();
    assert_eq!(n1.instance_id.as_deref(), Some("i-n1"));
    assert_eq!(n1.capacity_type.as_deref(), Some("spot"));
    assert_eq!(n1.allocatable.pods, 29);
    assert!(n1.ready);
    let web = snap.pods.iter().find(|p| p.name == "web-abc-1").unwrap();
    assert_eq!(
        web.owner,
        Some(proto::Owner {
            kind: "Deployment".into(),
            name: "web".into()
        })
    );
    assert_eq!(web.pdbs, vec!["shop/web-pdb".to_string()]);
    assert_eq!(web.requests.cpu_millis, 250);
    assert!(snap
        .pods
        .iter()
        .any(|p| p.name == "fluentd-1" && p.daemonset));
    assert!(snap
        .pods
        .iter()
        .any(|p| p.name == "kube-proxy-n1" && p.mirror));

    // A pending pod and a warning event arrive as a delta.
    kube.add_pod(
        "shop",
        "web-abc-2",
        None,
        json!({"app": "web", "pod-template-hash": "abc"}),
        "ReplicaSet",
        "web-abc",
    );
    kube.add_event(
        "shop",
        "Pod",
        "web-abc-2",
        "FailedScheduling",
        "Warning",
        "0/2 nodes are available",
    );
    assert!(
        wait_until(T, || cp.with(|s| s
            .deltas
            .iter()
            .any(|d| d.pods_upserted.iter().any(|p| p.name == "web-abc-2"))))
        .await,
        "no delta with the new pod"
    );
    let pending = cp.with(|s| {
        s.deltas
            .iter()
            .flat_map(|d| d.pods_upserted.clone())
            .find(|p| p.name == "web-abc-2")
            .unwrap()
    });
    assert_eq!(pending.phase, proto::PodPhase::Pending);
    assert!(pending
        .unschedulable_reason
        .as_deref()
        .unwrap_or_default()
        .starts_with("Unschedulable"));
    assert!(
        wait_until(T, || cp.with(|s| s
            .deltas
            .iter()
            .any(|d| d.events.iter().any(|e| e.reason == "FailedScheduling"))))
        .await
    );

    // Node pressure: a node condition change is a node upsert.
    let mut n2 = kube.get("nodes", "n2").unwrap();
    n2["status"]["conditions"] =
        json!([{"type": "Ready", "status": "True"}, {"type": "MemoryPressure", "status": "True"}]);
    kube.upsert("nodes", n2);
    assert!(
        wait_until(T, || cp.with(|s| s.deltas.iter().any(|d| d
            .nodes_upserted
            .iter()
            .any(|n| n.name == "n2"
                && n.conditions.iter().any(
                    |c| c.kind == "MemoryPressure" && c.status == "True"
                )))))
        .await
    );
    // Deletion.
    kube.delete("pods", "shop/web-abc-2");
    assert!(
        wait_until(T, || cp
            .with(|s| s.deltas.iter().any(|d| d
                .pods_deleted
                .contains(&"shop/web-abc-2".to_string()))))
        .await
    );

    // Heartbeats carry versions, watch health and metrics; usage samples arrive.
    assert!(
        wait_until(T, || cp.with(|s| s.heartbeats.iter().any(|h| h
            .metrics_available
            && h.watches.iter().all(|w| w.healthy))))
        .await
    );
    let hb = cp.with(|s| s.heartbeats.last().cloned().unwrap());
    assert_eq!(hb.kubernetes_version, "v1.33.1-fake");
    assert_eq!(hb.agent_version, spot_agent::AGENT_VERSION);
    assert_eq!(hb.protocol_version, proto::PROTOCOL_VERSION);
    assert_eq!(hb.watches.len(), 4);
    assert!(hb.safe_mode.is_none());
    assert!(
        wait_until(T, || cp.with(|s| {
            s.deltas
                .iter()
                .flat_map(|d| d.usage.iter())
                .chain(s.snapshots.iter().flat_map(|x| x.usage.iter()))
                .any(|u| {
                    u.target == proto::UsageTarget::Pod
                        && u.cpu_millis == 150
                        && u.memory_mib == 192
                })
        }))
        .await,
        "no pod usage sample"
    );
    assert!(agent.status.metrics_available());
    // A resync request answers with a full snapshot.
    let n = cp.with(|s| s.snapshots.len());
    cp.with(|s| s.resync_next = true);
    assert!(wait_until(T, || cp.with(|s| s.snapshots.len() > n)).await);
    // Nothing here ever listened: the agent only made requests.
    agent.stop().await.unwrap();
}

#[tokio::test]
async fn gone_410_relists_and_sends_a_fresh_snapshot() {
    let kube = FakeKube::start(false).await.unwrap();
    small_cluster(&kube);
    let cp = FakeControlPlane::start(TOKEN).await.unwrap();
    let agent = spawn(config(&cp), &kube);
    assert!(wait_until(T, || cp.with(|s| s.snapshots.len() == 1)).await);
    // Let a bookmark pass, then compact: every watch resumes with a stale
    // resourceVersion, gets 410 Gone and re-lists.
    tokio::time::sleep(Duration::from_millis(400)).await;
    kube.compact();
    assert!(
        wait_until(T, || cp.with(|s| s.snapshots.len() >= 2)).await,
        "no fresh snapshot after 410"
    );
    assert!(
        wait_until(T, || cp.with(|s| s.heartbeats.iter().any(|h| h
            .watches
            .iter()
            .any(|w| w.resource == "pods" && w.relists >= 1))))
        .await
    );
    assert!(kube
        .requests()
        .iter()
        .any(|r| r.contains("allowWatchBookmarks=true")));
    // The same when the API server answers the watch request itself with HTTP 410.
    let relists = |s: &spot_agent::testing::fake_cp::CpState| {
        s.heartbeats
            .last()
            .map(|h| h.watches.iter().map(|w| w.relists).sum::<u64>())
            .unwrap_or(0)
    };
    let before = cp.with(|s| relists(s));
    let snaps = cp.with(|s| s.snapshots.len());
    kube.set_gone_as_http(true);
    tokio::time::sleep(Duration::from_millis(400)).await;
    kube.compact();
    assert!(
        wait_until(T, || cp
            .with(|s| s.snapshots.len() > snaps && relists(s) >= before + 4))
        .await,
        "no re-list after an HTTP 410"
    );
    // Watching resumes after the re-list.
    kube.add_pod(
        "shop",
        "late",
        Some("n2"),
        json!({"app": "late"}),
        "StatefulSet",
        "late",
    );
    assert!(
        wait_until(T, || cp.with(|s| s
            .deltas
            .iter()
            .any(|d| d.pods_upserted.iter().any(|p| p.name == "late"))
            || s.snapshots
                .iter()
                .skip(1)
                .any(|x| x.pods.iter().any(|p| p.name == "late"))))
        .await
    );
    agent.stop().await.unwrap();
}

#[tokio::test]
async fn drain_blocked_by_a_pdb_waits_then_succeeds() {
    let kube = FakeKube::start(false).await.unwrap();
    small_cluster(&kube);
    kube.add_pdb("shop", "web-pdb", json!({"app": "web"}), 0);
    let cp = FakeControlPlane::start(TOKEN).await.unwrap();
    let agent = spawn(config(&cp), &kube);
    let id = cp.push_command(
        proto::CommandKind::Drain {
            node: "n1".into(),
            timeout_secs: 30,
            grace_period_secs: Some(10),
        },
        60,
    );
    // Blocked: several 429s, node cordoned, no result yet.
    assert!(
        wait_until(T, || kube.evictions().iter().filter(|e| e.1 == 429).count()
            >= 3)
        .await
    );
    assert_eq!(
        kube.get("nodes", "n1").unwrap()["spec"]["unschedulable"],
        json!(true)
    );
    assert!(cp.result(id).is_none());
    assert!(kube.get("pods", "shop/web-abc-1").is_some());
    kube.set_pdb_allowed("shop", "web-pdb", 1);
    assert!(wait_until(T, || cp.result(id).is_some()).await);
    let r = cp.result(id).unwrap();
    assert_eq!(r.outcome, proto::CommandOutcome::Succeeded, "{}", r.message);
    let rec = |pod: &str| r.evictions.iter().find(|e| e.pod == pod).unwrap().clone();
    assert_eq!(rec("shop/web-abc-1").outcome, "evicted");
    assert!(rec("shop/web-abc-1").retries >= 3, "{:?}", r.evictions);
    assert_eq!(rec("kube-system/fluentd-1").outcome, "skipped_daemonset");
    assert_eq!(rec("kube-system/kube-proxy-n1").outcome, "skipped_mirror");
    assert!(kube.get("pods", "shop/web-abc-1").is_none());
    assert!(kube.get("pods", "kube-system/fluentd-1").is_some());
    // The grace period override reached the Eviction API; DaemonSet/mirror pods were never evicted.
    let ev = kube.evictions();
    assert!(ev
        .iter()
        .all(|e| e.0 == "shop/web-abc-1" && e.2 == Some(10)));
    assert_eq!(cp.starts(id), vec![200]);
    agent.stop().await.unwrap();
}

#[tokio::test]
async fn drain_past_its_deadline_fails_and_leaves_the_node_cordoned() {
    let kube = FakeKube::start(false).await.unwrap();
    small_cluster(&kube);
    kube.add_pdb("shop", "web-pdb", json!({"app": "web"}), 0);
    // A second pod selected by two PDBs: the API answers 500; it must fail, never be forced.
    kube.add_pod(
        "shop",
        "both",
        Some("n1"),
        json!({"app": "both", "x": "y"}),
        "StatefulSet",
        "both",
    );
    kube.add_pdb("shop", "both-a", json!({"app": "both"}), 5);
    kube.add_pdb("shop", "both-b", json!({"x": "y"}), 5);
    let cp = FakeControlPlane::start(TOKEN).await.unwrap();
    let agent = spawn(config(&cp), &kube);
    let id = cp.push_command(
        proto::CommandKind::Drain {
            node: "n1".into(),
            timeout_secs: 2,
            grace_period_secs: None,
        },
        60,
    );
    assert!(wait_until(T, || cp.result(id).is_some()).await);
    let r = cp.result(id).unwrap();
    assert_eq!(r.outcome, proto::CommandOutcome::Failed);
    assert!(r.message.contains("deadline"), "{}", r.message);
    assert!(r.message.contains("cordoned"), "{}", r.message);
    let took = (r.finished_at - r.started_at).num_milliseconds();
    assert!((1900..8000).contains(&took), "drain took {took} ms");
    let web = r
        .evictions
        .iter()
        .find(|e| e.pod == "shop/web-abc-1")
        .unwrap();
    assert_eq!(web.outcome, "blocked_by_pdb");
    assert!(web.retries >= 2);
    let both = r.evictions.iter().find(|e| e.pod == "shop/both").unwrap();
    assert_eq!(both.outcome, "failed");
    assert!(kube.get("pods", "shop/both").is_some());
    assert!(kube.get("pods", "shop/web-abc-1").is_some());
    assert_eq!(
        kube.get("nodes", "n1").unwrap()["spec"]["unschedulable"],
        json!(true)
    );
    agent.stop().await.unwrap();
}

#[tokio::test]
async fn node_and_workload_commands() {
    let kube = FakeKube::start(false).await.unwrap();
    small_cluster(&kube);
    kube.put_apps("deployments", json!({"apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "shop", "resourceVersion": "1"},
        "spec": {"selector": {"matchLabels": {"app": "web"}}, "template": {"spec": {"containers": [
            {"name": "app", "image": "a", "resources": {"requests": {"cpu": "1", "memory": "1Gi"}, "limits": {"memory": "2Gi"}}},
            {"name": "sidecar", "image": "s"}]}}}}));
    kube.put_apps("deployments", json!({"apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "api", "namespace": "shop", "resourceVersion": "1"},
        "spec": {"selector": {"matchLabels": {"app": "api"}}, "template": {"spec": {"containers": [
            {"name": "server", "image": "a", "resources": {"requests": {"cpu": "2", "memory": "4Gi"}}}]}}}}));
    let cp = FakeControlPlane::start(TOKEN).await.unwrap();
    let agent = spawn(config(&cp), &kube);
    let cordon = cp.push_command(proto::CommandKind::Cordon { node: "n2".into() }, 60);
    assert!(wait_until(T, || cp.result(cordon).is_some()).await);
    assert_eq!(
        kube.get("nodes", "n2").unwrap()["spec"]["unschedulable"],
        json!(true)
    );
    let unc = cp.push_command(proto::CommandKind::Uncordon { node: "n2".into() }, 60);
    assert!(wait_until(T, || cp.result(unc).is_some()).await);
    assert_eq!(
        kube.get("nodes", "n2").unwrap()["spec"]["unschedulable"],
        json!(false)
    );
    let label = cp.push_command(
        proto::CommandKind::Label {
            node: "n2".into(),
            labels: [
                ("spot/pool".to_string(), Some("a".to_string())),
                ("eks.amazonaws.com/nodegroup".to_string(), None),
            ]
            .into(),
        },
        60,
    );
    assert!(wait_until(T, || cp.result(label).is_some()).await);
    let n2 = kube.get("nodes", "n2").unwrap();
    assert_eq!(n2["metadata"]["labels"]["spot/pool"], json!("a"));
    assert!(n2["metadata"]["labels"]
        .get("eks.amazonaws.com/nodegroup")
        .is_none());
    let t = |k: &str| proto::Taint {
        key: k.into(),
        value: Some("x".into()),
        effect: "NoSchedule".into(),
    };
    let taint = cp.push_command(
        proto::CommandKind::Taint {
            node: "n2".into(),
            add: vec![t("a"), t("b")],
            remove: vec![],
        },
        60,
    );
    assert!(wait_until(T, || cp.result(taint).is_some()).await);
    let untaint = cp.push_command(
        proto::CommandKind::Taint {
            node: "n2".into(),
            add: vec![],
            remove: vec![t("a")],
        },
        60,
    );
    assert!(wait_until(T, || cp.result(untaint).is_some()).await);
    let taints = kube.get("nodes", "n2").unwrap()["spec"]["taints"].clone();
    assert_eq!(
        taints,
        json!([{"key": "b", "value": "x", "effect": "NoSchedule"}])
    );
    let patch = cp.push_command(
        proto::CommandKind::PatchRequests {
            namespace: "shop".into(),
            workload_kind: proto::WorkloadKind::Deployment,
            workload: "web".into(),
            container: "app".into(),
            cpu_millis: Some(300),
            memory_mib: Some(512),
        },
        60,
    );
    assert!(wait_until(T, || cp.result(patch).is_some()).await);
    assert_eq!(
        cp.result(patch).unwrap().outcome,
        proto::CommandOutcome::Succeeded
    );
    let d = kube.get_apps("deployments", "shop", "web").unwrap();
    let containers = &d["spec"]["template"]["spec"]["containers"];
    assert_eq!(
        containers[0]["resources"]["requests"],
        json!({"cpu": "300m", "memory": "512Mi"})
    );
    assert_eq!(
        containers[0]["resources"]["limits"],
        json!({"memory": "2Gi"})
    );
    assert_eq!(containers[1]["name"], json!("sidecar"));
    let bad = cp.push_command(
        proto::CommandKind::PatchRequests {
            namespace: "shop".into(),
            workload_kind: proto::WorkloadKind::Deployment,
            workload: "web".into(),
            container: "nope".into(),
            cpu_millis: Some(300),
            memory_mib: None,
        },
        60,
    );
    assert!(wait_until(T, || cp.result(bad).is_some()).await);
    let r = cp.result(bad).unwrap();
    assert_eq!(r.outcome, proto::CommandOutcome::Failed);
    assert!(r.message.contains("nope"));
    // No container named (whole-pod rightsizing): the workload's only container, or a
    // refusal when it has several.
    let whole = cp.push_command(
        proto::CommandKind::PatchRequests {
            namespace: "shop".into(),
            workload_kind: proto::WorkloadKind::Deployment,
            workload: "api".into(),
            container: String::new(),
            cpu_millis: Some(700),
            memory_mib: Some(1536),
        },
        60,
    );
    assert!(wait_until(T, || cp.result(whole).is_some()).await);
    let r = cp.result(whole).unwrap();
    assert_eq!(r.outcome, proto::CommandOutcome::Succeeded, "{}", r.message);
    assert!(r.message.contains("server"), "{}", r.message);
    let d = kube.get_apps("deployments", "shop", "api").unwrap();
    assert_eq!(
        d["spec"]["template"]["spec"]["containers"][0]["resources"]["requests"],
        json!({"cpu": "700m", "memory": "1536Mi"})
    );
    let several = cp.push_command(
        proto::CommandKind::PatchRequests {
            namespace: "shop".into(),
            workload_kind: proto::WorkloadKind::Deployment,
            workload: "web".into(),
            container: String::new(),
            cpu_millis: Some(300),
            memory_mib: None,
        },
        60,
    );
    assert!(wait_until(T, || cp.result(several).is_some()).await);
    let r = cp.result(several).unwrap();
    assert_eq!(r.outcome, proto::CommandOutcome::Failed);
    assert!(r.message.contains("2 containers"), "{}", r.message);
    let del = cp.push_command(proto::CommandKind::DeleteNode { node: "n2".into() }, 60);
    assert!(wait_until(T, || cp.result(del).is_some()).await);
    assert!(kube.get("nodes", "n2").is_none());
    assert!(
        wait_until(T, || cp.with(|s| s
            .deltas
            .iter()
            .any(|d| d.nodes_deleted.contains(&"n2".to_string()))))
        .await
    );
    let missing = cp.push_command(
        proto::CommandKind::Cordon {
            node: "ghost".into(),
        },
        60,
    );
    assert!(wait_until(T, || cp.result(missing).is_some()).await);
    assert_eq!(
        cp.result(missing).unwrap().outcome,
        proto::CommandOutcome::Failed
    );
    agent.stop().await.unwrap();
}

#[tokio::test]
async fn revoked_token_stops_the_agent() {
    let kube = FakeKube::start(false).await.unwrap();
    small_cluster(&kube);
    let cp = FakeControlPlane::start(TOKEN).await.unwrap();
    let agent = spawn(config(&cp), &kube);
    assert!(wait_until(T, || cp.with(|s| !s.snapshots.is_empty())).await);
    cp.with(|s| s.revoked = true);
    let res = tokio::time::timeout(T, agent.handle)
        .await
        .expect("agent stopped")
        .expect("task");
    assert!(matches!(res, Err(AgentError::Revoked(401))), "{res:?}");
    assert!(agent.status.stopped());
    // Even once the token works again, the stopped agent acts no more.
    cp.with(|s| s.revoked = false);
    let id = cp.push_command(proto::CommandKind::Cordon { node: "n1".into() }, 60);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(cp.starts(id).is_empty());
    assert!(kube.get("nodes", "n1").unwrap()["spec"]
        .get("unschedulable")
        .is_none());
}

#[tokio::test]
async fn rejected_token_or_missing_settings_refuse_to_start() {
    assert!(matches!(Config::new("", TOKEN), Err(AgentError::Config(_))));
    assert!(matches!(
        Config::new("https://cp.example", " "),
        Err(AgentError::Config(_))
    ));
    assert!(matches!(
        Config::new("cp.example", TOKEN),
        Err(AgentError::Config(_))
    ));
    let kube = FakeKube::start(false).await.unwrap();
    let cp = FakeControlPlane::start("spa_other").await.unwrap();
    let agent = spawn(config(&cp), &kube);
    let res = tokio::time::timeout(T, agent.handle)
        .await
        .expect("agent refused")
        .expect("task");
    assert!(matches!(res, Err(AgentError::Rejected(401))), "{res:?}");
    assert!(cp.with(|s| s.snapshots.is_empty()));
}

#[tokio::test]
async fn unreachable_control_plane_puts_the_agent_in_safe_mode() {
    let kube = FakeKube::start(false).await.unwrap();
    small_cluster(&kube);
    let cp = FakeControlPlane::start(TOKEN).await.unwrap();
    let agent = spawn(config(&cp), &kube);
    assert!(wait_until(T, || cp.with(|s| !s.snapshots.is_empty())).await);
    cp.with(|s| s.unreachable = true);
    assert!(
        wait_until(T, || agent.status.in_safe_mode()).await,
        "no safe mode"
    );
    // The command poll still answers: the agent sees the command but must not start it.
    let id = cp.push_command(proto::CommandKind::Cordon { node: "n1".into() }, 60);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(
        cp.starts(id).is_empty(),
        "a command was started in safe mode"
    );
    assert!(kube.get("nodes", "n1").unwrap()["spec"]
        .get("unschedulable")
        .is_none());
    let hb_before = cp.with(|s| s.heartbeats.len());
    let snaps_down = cp.with(|s| s.snapshots.len());
    cp.with(|s| s.unreachable = false);
    assert!(
        wait_until(T, || cp.with(|s| s.heartbeats.iter().skip(hb_before).any(
            |h| h.safe_mode.as_ref().is_some_and(|m| m.exited_at.is_some())
        )))
        .await,
        "safe mode not reported after reconnecting"
    );
    let report = cp.with(|s| {
        s.heartbeats
            .iter()
            .skip(hb_before)
            .find_map(|h| h.safe_mode.clone())
            .unwrap()
    });
    assert!(report.reason.contains("unreachable"), "{}", report.reason);
    assert!(!agent.status.in_safe_mode());
    assert!(
        wait_until(T, || cp.with(|s| s.snapshots.len() > snaps_down)).await,
        "no snapshot after reconnecting"
    );
    // Back to normal: the command runs now.
    assert!(wait_until(T, || cp.result(id).is_some()).await);
    assert_eq!(cp.starts(id), vec![200]);
    agent.stop().await.unwrap();
}

#[tokio::test]
async fn a_claimed_command_is_never_executed_twice_across_restarts() {
    let kube = FakeKube::start(false).await.unwrap();
    small_cluster(&kube);
    let cp = FakeControlPlane::start(TOKEN).await.unwrap();
    // The control plane keeps listing claimed commands (as a racing replica would see them).
    cp.with(|s| s.redeliver_claimed = true);
    let first = spawn(config(&cp), &kube);
    let id = cp.push_command(proto::CommandKind::Cordon { node: "n1".into() }, 60);
    assert!(wait_until(T, || cp.result(id).is_some()).await);
    assert_eq!(first.status.executed(), vec![id]);
    // The first agent keeps polling: it sees the command again and is refused with 409.
    assert!(wait_until(T, || cp.starts(id).contains(&409)).await);
    first.stop().await.unwrap();
    // Undo the cordon by hand; a restarted agent must not cordon again.
    let mut n1 = kube.get("nodes", "n1").unwrap();
    n1["spec"]["unschedulable"] = json!(false);
    kube.upsert("nodes", n1);
    let second = spawn(config(&cp), &kube);
    assert!(
        wait_until(T, || cp.starts(id).iter().filter(|c| **c == 409).count()
            >= 2)
        .await
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(second.status.executed().is_empty());
    assert_eq!(
        kube.get("nodes", "n1").unwrap()["spec"]["unschedulable"],
        json!(false)
    );
    assert_eq!(cp.with(|s| s.results.len()), 1);
    assert_eq!(cp.starts(id).iter().filter(|c| **c == 200).count(), 1);
    second.stop().await.unwrap();
}

#[tokio::test]
async fn absent_metrics_api_is_reported_and_the_agent_keeps_working() {
    let kube = FakeKube::start(false).await.unwrap();
    small_cluster(&kube);
    let cp = FakeControlPlane::start(TOKEN).await.unwrap();
    let agent = spawn(config(&cp), &kube);
    assert!(
        wait_until(T, || cp
            .with(|s| !s.snapshots.is_empty() && s.heartbeats.len() >= 3))
        .await
    );
    assert!(cp.with(|s| s.heartbeats.iter().all(|h| !h.metrics_available)));
    assert!(cp.with(|s| s.snapshots.iter().all(|x| x.usage.is_empty())
        && s.deltas.iter().all(|d| d.usage.is_empty())));
    assert!(kube
        .requests()
        .iter()
        .any(|r| r.contains("/apis/metrics.k8s.io/v1beta1/nodes")));
    // It comes up later: usage flows and the heartbeat says so.
    kube.set_metrics(true);
    assert!(
        wait_until(T, || cp
            .with(|s| s.heartbeats.last().is_some_and(|h| h.metrics_available)))
        .await
    );
    assert!(
        wait_until(T, || cp
            .with(|s| s.deltas.iter().any(|d| !d.usage.is_empty())))
        .await
    );
    agent.stop().await.unwrap();
}
