//! The simulated in-cluster agent: one per simulated cluster, speaking exactly the agent
//! protocol (`spot_agent_protocol`) over HTTP to the control plane's `/api/agent/v1`
//! routes with its own agent token, so the demo exercises the same code path a real
//! cluster's agent does. It reads the simulator's Kubernetes view
//! ([`SimCloud::kube_view`]) where the real agent watches the API server, and executes
//! commands through the simulator's Kubernetes operations (cordon, Eviction API with
//! PodDisruptionBudgets, labels, taints, request patches, node deletion).
//!
//! Like the real agent it sends a snapshot on connect (and when asked to resync), deltas
//! every [`SimAgentConfig::delta_every`], a heartbeat every
//! [`SimAgentConfig::heartbeat_every`], long-polls commands, claims each with `start`
//! before acting, and stops for good on a 401 (token revoked).

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use spot_agent_protocol as proto;
use spot_cloud::sim::kube::{KubeError, KubeTaint, KubeView};
use spot_cloud::sim::SimCloud;
use spot_cloud::{Lifecycle, PodPhase, WorkloadKind};
use tokio::sync::watch;

/// Version the simulated agent reports.
pub const SIM_AGENT_VERSION: &str = concat!("sim-", env!("CARGO_PKG_VERSION"));

#[derive(Debug, Clone)]
pub struct SimAgentConfig {
    /// Control-plane base URL, e.g. `http://127.0.0.1:8080`.
    pub base_url: String,
    pub token: String,
    /// The simulated cluster's name.
    pub cluster: String,
    pub heartbeat_every: Duration,
    pub delta_every: Duration,
    /// Long-poll wait for commands.
    pub poll_wait: Duration,
}

impl SimAgentConfig {
    pub fn new(base_url: &str, token: &str, cluster: &str) -> Self {
        SimAgentConfig {
            base_url: base_url.trim_end_matches('/').to_string(),
            token: token.to_string(),
            cluster: cluster.to_string(),
            heartbeat_every: Duration::from_secs(proto::HEARTBEAT_INTERVAL_SECS),
            delta_every: Duration::from_secs(1),
            poll_wait: Duration::from_secs(20),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SimAgentError {
    #[error("the control plane rejected the agent token (401)")]
    Unauthorized,
    #[error("control plane: {0}")]
    Http(String),
    #[error("simulated cluster: {0}")]
    Cluster(String),
}

impl From<reqwest::Error> for SimAgentError {
    fn from(e: reqwest::Error) -> Self {
        SimAgentError::Http(e.to_string())
    }
}

/// Converts the simulator's view into the protocol's snapshot.
pub fn snapshot_of(view: &KubeView) -> proto::ClusterSnapshot {
    let nodes = view
        .nodes
        .iter()
        .map(|n| {
            let alloc = proto::Resources {
                cpu_millis: u64::from(n.allocatable_cpu_millicores),
                memory_mib: u64::from(n.allocatable_memory_mib),
                gpus: 0,
                pods: n.max_pods,
            };
            proto::Node {
                name: n.name.clone(),
                provider_id: Some(format!("aws:///{}/{}", n.az, n.instance_id)),
                instance_id: Some(n.instance_id.clone()),
                instance_type: Some(n.instance_type.clone()),
                zone: Some(n.az.clone()),
                capacity_type: Some(
                    match n.lifecycle {
                        Lifecycle::Spot => "spot",
                        Lifecycle::OnDemand => "on-demand",
                    }
                    .to_string(),
                ),
                node_group: n.node_group.clone(),
                labels: n.labels.clone(),
                annotations: BTreeMap::new(),
                taints: n
                    .taints
                    .iter()
                    .map(|t| proto::Taint {
                        key: t.key.clone(),
                        value: t.value.clone(),
                        effect: t.effect.clone(),
                    })
                    .collect(),
                allocatable: alloc,
                capacity: alloc,
                conditions: vec![proto::NodeCondition {
                    kind: "Ready".into(),
                    status: if n.ready { "True" } else { "False" }.into(),
                    reason: Some(
                        if n.ready {
                            "KubeletReady"
                        } else {
                            "KubeletNotReady"
                        }
                        .into(),
                    ),
                    message: None,
                }],
                ready: n.ready,
                unschedulable: n.unschedulable,
                created_at: Some(n.created_at),
            }
        })
        .collect();
    let pods = view
        .pods
        .iter()
        .map(|p| {
            let owner = p.pod.owner.as_ref().map(|o| proto::Owner {
                kind: match o.kind {
                    WorkloadKind::Deployment => "Deployment",
                    WorkloadKind::StatefulSet => "StatefulSet",
                    WorkloadKind::DaemonSet => "DaemonSet",
                    WorkloadKind::Job => "Job",
                    WorkloadKind::Other => "ReplicaSet",
                }
                .into(),
                name: o.name.clone(),
            });
            let daemonset = p
                .pod
                .owner
                .as_ref()
                .is_some_and(|o| o.kind == WorkloadKind::DaemonSet);
            let pending = p.pod.phase == PodPhase::Pending;
            proto::Pod {
                namespace: p.pod.namespace.clone(),
                name: p.pod.name.clone(),
                uid: None,
                node_name: p.pod.node_name.clone(),
                phase: if pending {
                    proto::PodPhase::Pending
                } else {
                    proto::PodPhase::Running
                },
                owner,
                requests: proto::Resources {
                    cpu_millis: u64::from(p.pod.cpu_request_millicores),
                    memory_mib: u64::from(p.pod.memory_request_mib),
                    gpus: 0,
                    pods: 0,
                },
                priority: daemonset.then_some(2_000_001_000),
                priority_class: daemonset.then(|| "system-node-critical".to_string()),
                labels: p.labels.clone(),
                do_not_disrupt: proto::is_do_not_disrupt(&p.annotations),
                annotations: p.annotations.clone(),
                pdbs: p.pdbs.clone(),
                daemonset,
                mirror: false,
                unschedulable_reason: pending.then(|| {
                    "Unschedulable: 0/N nodes are available: insufficient cpu or memory".to_string()
                }),
                node_selector: BTreeMap::new(),
                created_at: None,
            }
        })
        .collect();
    let pdbs = view
        .pdbs
        .iter()
        .map(|b| proto::Pdb {
            namespace: b.namespace.clone(),
            name: b.name.clone(),
            match_labels: b.match_labels.clone(),
            min_available: Some(b.min_available.to_string()),
            max_unavailable: None,
            disruptions_allowed: b.disruptions_allowed,
            current_healthy: b.current_healthy,
            desired_healthy: b.desired_healthy,
            expected_pods: b.expected_pods,
        })
        .collect();
    proto::ClusterSnapshot {
        collected_at: view.collected_at,
        nodes,
        pods,
        pdbs,
        usage: Vec::new(),
        history: Vec::new(),
    }
}

/// What changed between two snapshots.
pub fn delta_between(
    old: &proto::ClusterSnapshot,
    new: &proto::ClusterSnapshot,
) -> proto::ClusterDelta {
    fn diff<T: PartialEq + Clone>(
        old: &[T],
        new: &[T],
        key: impl Fn(&T) -> String,
    ) -> (Vec<T>, Vec<String>) {
        let before: HashMap<String, &T> = old.iter().map(|x| (key(x), x)).collect();
        let after: HashMap<String, &T> = new.iter().map(|x| (key(x), x)).collect();
        let upserted = new
            .iter()
            .filter(|x| before.get(&key(x)).is_none_or(|o| *o != *x))
            .cloned()
            .collect();
        let mut deleted: Vec<String> = before
            .keys()
            .filter(|k| !after.contains_key(*k))
            .cloned()
            .collect();
        deleted.sort();
        (upserted, deleted)
    }
    let (nodes_upserted, nodes_deleted) = diff(&old.nodes, &new.nodes, |n| n.name.clone());
    let (pods_upserted, pods_deleted) = diff(&old.pods, &new.pods, proto::Pod::key);
    let (pdbs_upserted, pdbs_deleted) = diff(&old.pdbs, &new.pdbs, proto::Pdb::key);
    proto::ClusterDelta {
        collected_at: Some(new.collected_at),
        nodes_upserted,
        nodes_deleted,
        pods_upserted,
        pods_deleted,
        pdbs_upserted,
        pdbs_deleted,
        usage: Vec::new(),
        events: Vec::new(),
    }
}

struct Client {
    http: reqwest::Client,
    cfg: SimAgentConfig,
}

impl Client {
    fn url(&self, path: &str) -> String {
        format!("{}{}{}", self.cfg.base_url, proto::API_PREFIX, path)
    }

    async fn check(resp: reqwest::Response) -> Result<reqwest::Response, SimAgentError> {
        match resp.status().as_u16() {
            401 | 403 => Err(SimAgentError::Unauthorized),
            s if s >= 400 => {
                let body = resp.text().await.unwrap_or_default();
                Err(SimAgentError::Http(format!("{s}: {body}")))
            }
            _ => Ok(resp),
        }
    }

    async fn post<T: serde::Serialize>(
        &self,
        path: &str,
        body: &T,
    ) -> Result<reqwest::Response, SimAgentError> {
        let resp = self
            .http
            .post(self.url(path))
            .bearer_auth(&self.cfg.token)
            .json(body)
            .send()
            .await?;
        Self::check(resp).await
    }
}

/// Runs one simulated agent until `stop` turns true or the token is rejected.
pub async fn run(
    cfg: SimAgentConfig,
    sim: Arc<SimCloud>,
    mut stop: watch::Receiver<bool>,
) -> Result<(), SimAgentError> {
    let http = reqwest::Client::builder()
        .timeout(cfg.poll_wait + Duration::from_secs(15))
        .build()?;
    let client = Arc::new(Client { http, cfg });
    let (cmd_stop_tx, cmd_stop) = watch::channel(false);
    let commands = tokio::spawn(command_loop(client.clone(), sim.clone(), cmd_stop));
    let result = view_loop(&client, &sim, &mut stop).await;
    let _ = cmd_stop_tx.send(true);
    commands.abort();
    if let Err(e) = &result {
        tracing::warn!(component = "sim-agent", cluster = %client.cfg.cluster, error = %e, "simulated agent stopped");
    }
    result
}

/// What the metrics API would report: each running pod's latest usage and each node's sum.
async fn usage_samples(sim: &SimCloud, view: &KubeView) -> Vec<proto::UsageSample> {
    use spot_cloud::Cloud;
    let now = sim.now();
    let from = now - chrono::Duration::minutes(5);
    let mut out = Vec::new();
    let mut per_node: HashMap<String, (u64, u64)> = HashMap::new();
    for p in view
        .pods
        .iter()
        .filter(|p| p.pod.phase == PodPhase::Running)
    {
        let r = spot_cloud::PodRef {
            namespace: p.pod.namespace.clone(),
            name: p.pod.name.clone(),
        };
        let Ok(samples) = sim
            .pod_usage(&view.cluster, &r, from, now, Duration::from_secs(300))
            .await
        else {
            continue;
        };
        let Some(u) = samples.last() else { continue };
        if let Some(n) = &p.pod.node_name {
            let e = per_node.entry(n.clone()).or_default();
            e.0 += u64::from(u.cpu_millicores);
            e.1 += u64::from(u.memory_mib);
        }
        out.push(proto::UsageSample {
            target: proto::UsageTarget::Pod,
            namespace: p.pod.namespace.clone(),
            name: p.pod.name.clone(),
            at: view.collected_at,
            cpu_millis: u64::from(u.cpu_millicores),
            memory_mib: u64::from(u.memory_mib),
        });
    }
    let mut nodes: Vec<_> = per_node.into_iter().collect();
    nodes.sort();
    out.extend(
        nodes
            .into_iter()
            .map(|(name, (cpu, mem))| proto::UsageSample {
                target: proto::UsageTarget::Node,
                namespace: String::new(),
                name,
                at: view.collected_at,
                cpu_millis: cpu,
                memory_mib: mem,
            }),
    );
    out
}

/// Days of hourly history the simulated cluster's metrics store holds.
pub const HISTORY_DAYS: i64 = 14;
/// Step of the per-workload usage sent on connect.
const BACKFILL_STEP: Duration = Duration::from_secs(600);

/// What a metrics store (Prometheus beside the cluster) holds when the agent connects:
/// the cluster's hourly usage totals over [`HISTORY_DAYS`] and, for one running replica of
/// each workload, its usage every 10 minutes over [`proto::USAGE_BACKFILL_HOURS`].
async fn backfill(
    sim: &SimCloud,
    view: &KubeView,
) -> (Vec<proto::HistoryPoint>, Vec<proto::UsageSample>) {
    use spot_cloud::Cloud;
    let now = sim.now();
    let hour_start = |t: chrono::DateTime<Utc>| {
        let ms = t.timestamp_millis().div_euclid(3_600_000) * 3_600_000;
        chrono::DateTime::<Utc>::from_timestamp_millis(ms).unwrap_or(t)
    };
    let start = hour_start(now - chrono::Duration::days(HISTORY_DAYS)) + chrono::Duration::hours(1);
    let mut totals: BTreeMap<chrono::DateTime<Utc>, (u64, u64)> = BTreeMap::new();
    let mut sampled = std::collections::BTreeSet::new();
    let mut past = Vec::new();
    let recent = now - chrono::Duration::hours(proto::USAGE_BACKFILL_HOURS);
    for p in view
        .pods
        .iter()
        .filter(|p| p.pod.node_name.is_some() && p.pod.phase == PodPhase::Running)
    {
        let r = spot_cloud::PodRef {
            namespace: p.pod.namespace.clone(),
            name: p.pod.name.clone(),
        };
        if let Ok(samples) = sim
            .pod_usage(&view.cluster, &r, start, now, Duration::from_secs(3600))
            .await
        {
            for u in samples {
                let e = totals.entry(hour_start(u.at)).or_default();
                e.0 += u64::from(u.cpu_millicores);
                e.1 += u64::from(u.memory_mib);
            }
        }
        let Some(owner) = &p.pod.owner else { continue };
        if !sampled.insert((
            p.pod.namespace.clone(),
            format!("{:?}/{}", owner.kind, owner.name),
        )) {
            continue;
        }
        if let Ok(samples) = sim
            .pod_usage(&view.cluster, &r, recent, now, BACKFILL_STEP)
            .await
        {
            past.extend(samples.into_iter().map(|u| proto::UsageSample {
                target: proto::UsageTarget::Pod,
                namespace: p.pod.namespace.clone(),
                name: p.pod.name.clone(),
                at: u.at,
                cpu_millis: u64::from(u.cpu_millicores),
                memory_mib: u64::from(u.memory_mib),
            }));
        }
    }
    let history = totals
        .into_iter()
        .filter(|(hour, _)| *hour < hour_start(now))
        .map(|(hour, (cpu, mem))| proto::HistoryPoint {
            hour,
            cpu_millis: cpu,
            memory_mib: mem,
        })
        .collect();
    (history, past)
}

async fn heartbeat(
    client: &Client,
    version: &str,
    view: &KubeView,
) -> Result<proto::HeartbeatAck, SimAgentError> {
    let watch = |resource: &str, objects: usize| proto::WatchHealth {
        resource: resource.to_string(),
        healthy: true,
        objects: objects as u64,
        last_event_at: Some(view.collected_at),
        last_error: None,
        relists: 0,
    };
    let hb = proto::Heartbeat {
        protocol_version: proto::PROTOCOL_VERSION,
        agent_version: SIM_AGENT_VERSION.to_string(),
        kubernetes_version: format!("v{version}.0-eks-sim"),
        watches: vec![
            watch("nodes", view.nodes.len()),
            watch("pods", view.pods.len()),
            watch("poddisruptionbudgets", view.pdbs.len()),
            watch("events", 0),
        ],
        metrics_available: true,
        safe_mode: None,
        sent_at: Utc::now(),
    };
    Ok(client.post("/heartbeat", &hb).await?.json().await?)
}

async fn view_loop(
    client: &Client,
    sim: &SimCloud,
    stop: &mut watch::Receiver<bool>,
) -> Result<(), SimAgentError> {
    let cluster = client.cfg.cluster.clone();
    let read = || {
        sim.kube_view(&cluster)
            .map_err(|e| SimAgentError::Cluster(e.to_string()))
    };
    let mut view = read()?;
    let version = view.kubernetes_version.clone();
    let ack = heartbeat(client, &version, &view).await?;
    tracing::info!(component = "sim-agent", cluster = %cluster, cluster_id = %ack.cluster_id, "simulated agent connected");
    let mut sent = snapshot_of(&view);
    let mut first = sent.clone();
    let (history, past) = backfill(sim, &view).await;
    first.usage = past;
    first.usage.extend(usage_samples(sim, &view).await);
    first.history = history;
    client.post("/snapshot", &first).await?;
    let mut last_beat = tokio::time::Instant::now();
    let mut last_usage = tokio::time::Instant::now();
    loop {
        tokio::select! {
            _ = tokio::time::sleep(client.cfg.delta_every) => {}
            _ = stop.changed() => {}
        }
        if *stop.borrow() {
            return Ok(());
        }
        view = match read() {
            Ok(v) => v,
            Err(e) => {
                tracing::warn!(component = "sim-agent", cluster = %cluster, error = %e, "cluster view unavailable");
                continue;
            }
        };
        let now = snapshot_of(&view);
        let mut resync = false;
        if last_beat.elapsed() >= client.cfg.heartbeat_every {
            match heartbeat(client, &version, &view).await {
                Ok(ack) => resync = ack.resync,
                Err(SimAgentError::Unauthorized) => return Err(SimAgentError::Unauthorized),
                Err(e) => {
                    tracing::warn!(component = "sim-agent", cluster = %cluster, error = %e, "heartbeat failed");
                }
            }
            last_beat = tokio::time::Instant::now();
        }
        // The metrics API is read every 30 s, as the real agent does.
        let usage = if last_usage.elapsed() >= Duration::from_secs(30) {
            last_usage = tokio::time::Instant::now();
            usage_samples(sim, &view).await
        } else {
            Vec::new()
        };
        let outcome = if resync {
            let mut full = now.clone();
            full.usage = usage;
            client.post("/snapshot", &full).await.map(|_| ())
        } else {
            let mut delta = delta_between(&sent, &now);
            delta.usage = usage;
            if delta.is_empty() {
                Ok(())
            } else {
                client.post("/delta", &delta).await.map(|_| ())
            }
        };
        match outcome {
            Ok(()) => sent = now,
            Err(SimAgentError::Unauthorized) => return Err(SimAgentError::Unauthorized),
            Err(e) => {
                // Send the whole view next time: the control plane may have missed this one.
                tracing::warn!(component = "sim-agent", cluster = %cluster, error = %e, "cluster view push failed");
                if client.post("/snapshot", &now).await.is_ok() {
                    sent = now;
                }
            }
        }
    }
}

async fn command_loop(client: Arc<Client>, sim: Arc<SimCloud>, stop: watch::Receiver<bool>) {
    loop {
        if *stop.borrow() {
            return;
        }
        let url = format!(
            "{}?wait={}",
            client.url("/commands"),
            client.cfg.poll_wait.as_secs()
        );
        let batch = match client
            .http
            .get(url)
            .bearer_auth(&client.cfg.token)
            .send()
            .await
        {
            Ok(r) => match Client::check(r).await {
                Ok(r) => r.json::<proto::CommandBatch>().await.ok(),
                Err(SimAgentError::Unauthorized) => return,
                Err(_) => None,
            },
            Err(_) => None,
        };
        let Some(batch) = batch else {
            tokio::time::sleep(Duration::from_secs(2)).await;
            continue;
        };
        for cmd in batch.commands {
            // Claim first: only a 200 lets the agent act (a restarted agent never runs a
            // command twice).
            let claimed = client
                .http
                .post(client.url(&format!("/commands/{}/start", cmd.id)))
                .bearer_auth(&client.cfg.token)
                .send()
                .await;
            match claimed {
                Ok(r) if r.status().is_success() => {}
                Ok(r) if r.status().as_u16() == 401 => return,
                _ => continue,
            }
            let started_at = Utc::now();
            let (outcome, message, evictions) = execute(&sim, &client.cfg.cluster, &cmd).await;
            let result = proto::CommandResult {
                outcome,
                message,
                evictions,
                started_at,
                finished_at: Utc::now(),
            };
            for attempt in 0..5u32 {
                match client
                    .post(&format!("/commands/{}/result", cmd.id), &result)
                    .await
                {
                    Ok(_) => break,
                    Err(SimAgentError::Unauthorized) => return,
                    Err(e) => {
                        tracing::warn!(component = "sim-agent", command = %cmd.id, error = %e, "reporting a result failed; retrying");
                        tokio::time::sleep(Duration::from_millis(500 * u64::from(attempt + 1)))
                            .await;
                    }
                }
            }
        }
    }
}

fn kube_taints(t: &[proto::Taint]) -> Vec<KubeTaint> {
    t.iter()
        .map(|t| KubeTaint {
            key: t.key.clone(),
            value: t.value.clone(),
            effect: t.effect.clone(),
        })
        .collect()
}

/// Executes one command against the simulated cluster.
pub async fn execute(
    sim: &SimCloud,
    cluster: &str,
    cmd: &proto::Command,
) -> (proto::CommandOutcome, String, Vec<proto::EvictionRecord>) {
    use proto::CommandOutcome::{Failed, Succeeded};
    let done = |r: Result<String, String>| match r {
        Ok(m) => (Succeeded, m, Vec::new()),
        Err(m) => (Failed, m, Vec::new()),
    };
    let e = |e: spot_cloud::CloudError| e.to_string();
    match &cmd.command {
        proto::CommandKind::Cordon { node } => done(
            sim.set_unschedulable(cluster, node, true)
                .map(|_| format!("node {node} cordoned"))
                .map_err(e),
        ),
        proto::CommandKind::Uncordon { node } => done(
            sim.set_unschedulable(cluster, node, false)
                .map(|_| format!("node {node} uncordoned"))
                .map_err(e),
        ),
        proto::CommandKind::Label { node, labels } => done(
            sim.label_node(cluster, node, labels)
                .map(|_| format!("{} label(s) changed on {node}", labels.len()))
                .map_err(e),
        ),
        proto::CommandKind::Taint { node, add, remove } => done(
            sim.taint_node(cluster, node, &kube_taints(add), &kube_taints(remove))
                .map(|_| format!("taints changed on {node}"))
                .map_err(e),
        ),
        proto::CommandKind::DeleteNode { node } => done(
            sim.delete_node(cluster, node)
                .map(|_| format!("node {node} deleted"))
                .map_err(e),
        ),
        proto::CommandKind::PatchRequests {
            namespace,
            workload_kind,
            workload,
            cpu_millis,
            memory_mib,
            ..
        } => {
            let kind = match workload_kind {
                proto::WorkloadKind::Deployment => WorkloadKind::Deployment,
                proto::WorkloadKind::StatefulSet => WorkloadKind::StatefulSet,
            };
            let cpu = cpu_millis.map(|c| u32::try_from(c).unwrap_or(u32::MAX));
            let mem = memory_mib.map(|m| u32::try_from(m).unwrap_or(u32::MAX));
            done(
                sim.patch_requests(cluster, namespace, kind, workload, cpu, mem)
                    .map(|n| format!("{n} pod(s) of {namespace}/{workload} updated"))
                    .map_err(e),
            )
        }
        proto::CommandKind::Drain {
            node, timeout_secs, ..
        } => drain(sim, cluster, node, Duration::from_secs(*timeout_secs)).await,
    }
}

/// Cordon, then evict every pod of the node (DaemonSet pods skipped); a pod whose budget
/// allows no disruption is retried with backoff until `timeout`, after which the drain
/// fails and the node stays cordoned.
async fn drain(
    sim: &SimCloud,
    cluster: &str,
    node: &str,
    timeout: Duration,
) -> (proto::CommandOutcome, String, Vec<proto::EvictionRecord>) {
    if let Err(e) = sim.set_unschedulable(cluster, node, true) {
        return (proto::CommandOutcome::Failed, e.to_string(), Vec::new());
    }
    let deadline = tokio::time::Instant::now() + timeout;
    let mut records: BTreeMap<String, proto::EvictionRecord> = BTreeMap::new();
    let mut backoff = Duration::from_millis(200);
    loop {
        let view = match sim.kube_view(cluster) {
            Ok(v) => v,
            Err(e) => return (proto::CommandOutcome::Failed, e.to_string(), Vec::new()),
        };
        let on_node: Vec<_> = view
            .pods
            .iter()
            .filter(|p| p.pod.node_name.as_deref() == Some(node))
            .collect();
        let mut blocked = 0;
        for p in on_node {
            let key = format!("{}/{}", p.pod.namespace, p.pod.name);
            if p.pod
                .owner
                .as_ref()
                .is_some_and(|o| o.kind == WorkloadKind::DaemonSet)
            {
                records.entry(key.clone()).or_insert(proto::EvictionRecord {
                    pod: key,
                    outcome: "skipped_daemonset".into(),
                    retries: 0,
                    message: None,
                });
                continue;
            }
            match sim.evict(cluster, &p.pod.namespace, &p.pod.name) {
                Ok(()) => {
                    let r = records.entry(key.clone()).or_insert(proto::EvictionRecord {
                        pod: key,
                        outcome: String::new(),
                        retries: 0,
                        message: None,
                    });
                    r.outcome = "evicted".into();
                    r.message = None;
                }
                Err(KubeError::PdbBlocked { pdb }) => {
                    blocked += 1;
                    let r = records.entry(key.clone()).or_insert(proto::EvictionRecord {
                        pod: key,
                        outcome: String::new(),
                        retries: 0,
                        message: None,
                    });
                    r.outcome = "blocked_by_pdb".into();
                    r.retries += 1;
                    r.message = Some(format!("429: disruption budget {pdb} allows no eviction"));
                }
                Err(KubeError::Cloud(e)) => {
                    records.insert(
                        key.clone(),
                        proto::EvictionRecord {
                            pod: key,
                            outcome: "failed".into(),
                            retries: 0,
                            message: Some(e.to_string()),
                        },
                    );
                }
            }
        }
        let failed: Vec<String> = records
            .values()
            .filter(|r| r.outcome == "failed")
            .map(|r| r.pod.clone())
            .collect();
        if !failed.is_empty() {
            // Surfaced, never forced: the node stays cordoned and the command fails.
            return (
                proto::CommandOutcome::Failed,
                format!(
                    "drain of {node} stopped: eviction failed for {}; the node stays cordoned",
                    failed.join(", ")
                ),
                records.into_values().collect(),
            );
        }
        if blocked == 0 {
            let evicted = records.values().filter(|r| r.outcome == "evicted").count();
            return (
                proto::CommandOutcome::Succeeded,
                format!("node {node} drained: {evicted} pod(s) evicted"),
                records.into_values().collect(),
            );
        }
        if tokio::time::Instant::now() + backoff > deadline {
            return (
                proto::CommandOutcome::Failed,
                format!(
                    "drain of {node} timed out after {} s: {blocked} pod(s) still blocked by disruption budgets; the node stays cordoned",
                    timeout.as_secs()
                ),
                records.into_values().collect(),
            );
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_secs(5));
    }
}

// ---------------------------------------------------------------------------------------
// The manager: one simulated agent per simulated cluster

/// Runs the simulated agents of a simulator-backed control plane.
///
/// - Installing: when a user creates (or rotates) a cluster's agent token, the API hands
///   the token to [`SimAgents::install`], as if the user had run the install command.
/// - Demo organizations ([`SimAgents::auto_install`]) get an agent on every cluster
///   automatically, as soon as discovery finds it.
/// - After a restart the plaintext tokens are gone (only hashes are stored): a cluster
///   with an active token and no running simulated agent gets its token rotated (audited
///   as `system`) and a new agent.
pub struct SimAgents {
    db: spot_models::Db,
    connector: Arc<dyn crate::connect::CloudConnector>,
    bus: crate::bus::Bus,
    base_url: std::sync::OnceLock<String>,
    running: std::sync::Mutex<HashMap<String, watch::Sender<bool>>>,
    auto: std::sync::Mutex<std::collections::HashSet<String>>,
    /// Clusters whose simulated agent was taken off ([`SimAgents::detach`]): the reconcile
    /// loop leaves them until a token is issued for them again.
    detached: std::sync::Mutex<std::collections::HashSet<String>>,
    /// Timing of the agents it starts (tests shorten it).
    pub heartbeat_every: Duration,
}

/// A token younger than this is being installed by the API: the reconcile loop leaves it.
const FRESH_TOKEN_MS: i64 = 30_000;
/// How often the manager looks for clusters to serve.
pub const RECONCILE_EVERY: Duration = Duration::from_secs(3);

impl SimAgents {
    /// `None` unless the connector is the simulator.
    pub fn new(
        db: spot_models::Db,
        connector: Arc<dyn crate::connect::CloudConnector>,
        bus: crate::bus::Bus,
    ) -> Option<Arc<Self>> {
        connector.as_sim()?;
        Some(Arc::new(SimAgents {
            db,
            connector,
            bus,
            base_url: std::sync::OnceLock::new(),
            running: std::sync::Mutex::new(HashMap::new()),
            auto: std::sync::Mutex::new(std::collections::HashSet::new()),
            detached: std::sync::Mutex::new(std::collections::HashSet::new()),
            heartbeat_every: Duration::from_secs(proto::HEARTBEAT_INTERVAL_SECS),
        }))
    }

    /// Every cluster of this organization gets a simulated agent (the demo).
    pub fn auto_install(&self, org_id: &str) {
        self.auto
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(org_id.to_string());
    }

    /// Takes the cluster's simulated agent off, as uninstalling the agent would on a real
    /// cluster: it stops (after the push it may be making) and the reconcile loop does not
    /// bring it back until a token is issued or rotated for the cluster. Whoever holds the
    /// token then speaks for the cluster alone. Returns once the agent has ended.
    pub async fn detach(&self, cluster_id: &str) {
        self.detached
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(cluster_id.to_string());
        let tx = self
            .running
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(cluster_id);
        if let Some(tx) = tx {
            let _ = tx.send(true);
            tx.closed().await;
        }
    }

    /// Starts the reconcile loop once the server's address is known.
    pub fn start(self: &Arc<Self>, base_url: String) {
        if self.base_url.set(base_url).is_err() {
            return;
        }
        let me = Arc::downgrade(self);
        tokio::spawn(async move {
            loop {
                let Some(m) = me.upgrade() else { return };
                if let Err(e) = m.reconcile().await {
                    tracing::warn!(component = "sim-agent", error = %e, "reconciling simulated agents failed");
                }
                drop(m);
                tokio::time::sleep(RECONCILE_EVERY).await;
            }
        });
    }

    pub fn is_running(&self, cluster_id: &str) -> bool {
        self.running
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(cluster_id)
            .is_some_and(|tx| !tx.is_closed())
    }

    /// Starts (or restarts) the simulated agent of a cluster with `token`. Returns false
    /// when the cluster is not one the simulator runs.
    pub async fn install(&self, cluster_id: &str, token: &str) -> bool {
        let Some(base) = self.base_url.get().cloned() else {
            return false;
        };
        let targets = match spot_models::agent_targets::all(&self.db).await {
            Ok(t) => t,
            Err(e) => {
                tracing::warn!(component = "sim-agent", error = %e, "cannot read clusters");
                return false;
            }
        };
        let Some(t) = targets.into_iter().find(|t| t.cluster_id == cluster_id) else {
            return false;
        };
        self.detached
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(cluster_id);
        self.spawn(&base, &t, token).await
    }

    async fn spawn(
        &self,
        base: &str,
        t: &spot_models::agent_targets::AgentTarget,
        token: &str,
    ) -> bool {
        let Some(sim) = self.connector.as_sim() else {
            return false;
        };
        let Ok(world) = sim.world(&t.cloud_account_id, &t.region) else {
            return false;
        };
        {
            use spot_cloud::Cloud;
            match world.list_eks_clusters().await {
                Ok(names) if names.contains(&t.cluster_name) => {}
                _ => return false,
            }
        }
        let mut cfg = SimAgentConfig::new(base, token, &t.cluster_name);
        cfg.heartbeat_every = self.heartbeat_every;
        let (tx, rx) = watch::channel(false);
        if let Some(old) = self
            .running
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(t.cluster_id.clone(), tx)
        {
            let _ = old.send(true);
        }
        let cluster_id = t.cluster_id.clone();
        tokio::spawn(async move {
            // The receiver is dropped when the agent ends (401, stop): `is_running` sees a
            // closed channel.
            let _ = run(cfg, world, rx).await;
            tracing::info!(component = "sim-agent", cluster_id = %cluster_id, "simulated agent ended");
        });
        true
    }

    async fn reconcile(&self) -> Result<(), spot_models::DbError> {
        let Some(base) = self.base_url.get().cloned() else {
            return Ok(());
        };
        let now = spot_models::now_ms();
        let auto = self.auto.lock().unwrap_or_else(|e| e.into_inner()).clone();
        for t in spot_models::agent_targets::all(&self.db).await? {
            if self.is_running(&t.cluster_id)
                || self
                    .detached
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .contains(&t.cluster_id)
            {
                continue;
            }
            let issued = match t.token_created_at {
                Some(at) if now - at < FRESH_TOKEN_MS => continue,
                Some(_) => {
                    spot_models::agents::rotate_token(
                        &self.db,
                        &t.organization_id,
                        &t.cluster_id,
                        Some("system:sim-agent"),
                    )
                    .await?
                }
                None if auto.contains(&t.organization_id) => {
                    match spot_models::agents::issue_token(
                        &self.db,
                        &t.organization_id,
                        &t.cluster_id,
                        Some("system:sim-agent"),
                    )
                    .await
                    {
                        Ok(i) => i,
                        Err(spot_models::DbError::Conflict(_)) => continue,
                        Err(e) => return Err(e),
                    }
                }
                None => continue,
            };
            if self.spawn(&base, &t, &issued.token).await {
                self.audit(&t, &issued.row.token_prefix).await;
            }
        }
        Ok(())
    }

    async fn audit(&self, t: &spot_models::agent_targets::AgentTarget, prefix: &str) {
        let rec = spot_models::audit::NewAuditRecord {
            organization_id: Some(t.organization_id.clone()),
            actor_kind: "system".into(),
            actor_component: Some("sim-agent".into()),
            action: "agent.sim_install".into(),
            resource_type: "cluster".into(),
            resource_id: Some(t.cluster_id.clone()),
            outcome: "success".into(),
            request_id: uuid::Uuid::new_v4().to_string(),
            after: Some(serde_json::json!({
                "cluster": t.cluster_name,
                "token_prefix": prefix,
                "reason": "simulated cluster: the simulated agent was (re)installed with a new token",
            })),
            ..Default::default()
        };
        if let Err(e) = spot_models::audit::append(&self.db, rec).await {
            tracing::warn!(component = "sim-agent", error = %e, "audit append failed");
        }
        self.bus.publish(
            Some(&t.organization_id),
            "agent.installed",
            serde_json::json!({"cluster_id": t.cluster_id, "token_prefix": prefix, "simulated": true}),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use spot_cloud::sim::{SimClock, SimConfig};

    fn sim() -> Arc<SimCloud> {
        let mut cfg = SimConfig::for_account("123456789012", 42);
        cfg.clock = SimClock::manual(SimClock::default_start());
        Arc::new(SimCloud::new(cfg).expect("sim"))
    }

    async fn first_cluster(s: &SimCloud) -> String {
        use spot_cloud::Cloud;
        s.list_eks_clusters().await.expect("clusters")[0].clone()
    }

    #[tokio::test]
    async fn deltas_carry_exactly_what_changed() {
        let s = sim();
        let c = first_cluster(&s).await;
        let a = snapshot_of(&s.kube_view(&c).expect("view"));
        assert!(delta_between(&a, &a).is_empty());
        let node = a.nodes[0].name.clone();
        s.set_unschedulable(&c, &node, true).expect("cordon");
        let b = snapshot_of(&s.kube_view(&c).expect("view"));
        let d = delta_between(&a, &b);
        assert_eq!(d.nodes_upserted.len(), 1);
        assert!(d.nodes_upserted[0].unschedulable);
        assert!(d.pods_upserted.is_empty() && d.nodes_deleted.is_empty());
        assert!(a.pods.iter().any(|p| !p.pdbs.is_empty()));
    }

    #[tokio::test]
    async fn a_drain_evicts_everything_but_daemonsets_and_leaves_the_node_cordoned() {
        let s = sim();
        let c = first_cluster(&s).await;
        let v = s.kube_view(&c).expect("view");
        // The node with the fewest pods drains into the others' free room.
        let node = v
            .nodes
            .iter()
            .min_by_key(|n| {
                v.pods
                    .iter()
                    .filter(|p| p.pod.node_name.as_deref() == Some(n.name.as_str()))
                    .count()
            })
            .expect("node")
            .name
            .clone();
        let cmd = proto::Command {
            id: uuid::Uuid::new_v4(),
            command: proto::CommandKind::Drain {
                node: node.clone(),
                timeout_secs: 2,
                grace_period_secs: None,
            },
            created_at: Utc::now(),
            deadline: Utc::now(),
        };
        let (outcome, msg, records) = execute(&s, &c, &cmd).await;
        let after = s.kube_view(&c).expect("view");
        let n = after.nodes.iter().find(|n| n.name == node).expect("node");
        assert!(n.unschedulable);
        let left: Vec<_> = after
            .pods
            .iter()
            .filter(|p| p.pod.node_name.as_deref() == Some(node.as_str()))
            .collect();
        match outcome {
            proto::CommandOutcome::Succeeded => {
                assert!(left.iter().all(|p| p
                    .pod
                    .owner
                    .as_ref()
                    .is_some_and(|o| o.kind == WorkloadKind::DaemonSet)));
                assert!(records.iter().any(|r| r.outcome == "skipped_daemonset"));
            }
            proto::CommandOutcome::Failed => {
                assert!(msg.contains("timed out"), "{msg}");
                assert!(records.iter().any(|r| r.outcome == "blocked_by_pdb"));
            }
        }
    }
}
