//! Executes control-plane commands against the Kubernetes API.

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::Utc;
use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::core::v1::{Node, Pod, PodSpec};
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::{Client, ResourceExt};
use serde_json::json;
use spot_agent_protocol as proto;
use tokio::time::Instant;

use crate::quantity;

/// Backoff between eviction rounds while a PDB blocks (429).
#[derive(Debug, Clone, Copy)]
pub struct Backoff {
    pub initial: Duration,
    pub max: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Self {
            initial: Duration::from_secs(1),
            max: Duration::from_secs(15),
        }
    }
}

pub struct Executor {
    client: Client,
    backoff: Backoff,
}

/// Outcome of one step, before the timestamps are added.
struct Done {
    ok: bool,
    message: String,
    evictions: Vec<proto::EvictionRecord>,
}

fn ok(message: impl Into<String>) -> Done {
    Done {
        ok: true,
        message: message.into(),
        evictions: Vec::new(),
    }
}

fn fail(message: impl Into<String>) -> Done {
    Done {
        ok: false,
        message: message.into(),
        evictions: Vec::new(),
    }
}

fn api_code(e: &kube::Error) -> Option<u16> {
    match e {
        kube::Error::Api(s) => Some(s.code),
        _ => None,
    }
}

impl Executor {
    pub fn new(client: Client, backoff: Backoff) -> Self {
        Self { client, backoff }
    }

    /// Runs one claimed command and returns its result.
    pub async fn execute(&self, cmd: &proto::Command) -> proto::CommandResult {
        let started_at = Utc::now();
        let until_deadline = (cmd.deadline - started_at)
            .to_std()
            .unwrap_or(Duration::ZERO);
        let done = match &cmd.command {
            proto::CommandKind::Cordon { node } => self.set_unschedulable(node, true).await,
            proto::CommandKind::Uncordon { node } => self.set_unschedulable(node, false).await,
            proto::CommandKind::Drain {
                node,
                timeout_secs,
                grace_period_secs,
            } => {
                let budget = Duration::from_secs(*timeout_secs).min(until_deadline);
                self.drain(node, budget, *grace_period_secs).await
            }
            proto::CommandKind::Label { node, labels } => self.label(node, labels).await,
            proto::CommandKind::Taint { node, add, remove } => self.taint(node, add, remove).await,
            proto::CommandKind::PatchRequests {
                namespace,
                workload_kind,
                workload,
                container,
                cpu_millis,
                memory_mib,
            } => {
                self.patch_requests(
                    namespace,
                    *workload_kind,
                    workload,
                    container,
                    *cpu_millis,
                    *memory_mib,
                )
                .await
            }
            proto::CommandKind::DeleteNode { node } => self.delete_node(node).await,
        };
        proto::CommandResult {
            outcome: if done.ok {
                proto::CommandOutcome::Succeeded
            } else {
                proto::CommandOutcome::Failed
            },
            message: done.message,
            evictions: done.evictions,
            started_at,
            finished_at: Utc::now(),
        }
    }

    fn nodes(&self) -> Api<Node> {
        Api::all(self.client.clone())
    }

    async fn set_unschedulable(&self, node: &str, value: bool) -> Done {
        let patch = json!({"spec": {"unschedulable": value}});
        match self
            .nodes()
            .patch(node, &PatchParams::default(), &Patch::Strategic(&patch))
            .await
        {
            Ok(_) => ok(format!(
                "node {node} {}",
                if value { "cordoned" } else { "uncordoned" }
            )),
            Err(e) if api_code(&e) == Some(404) => fail(format!("node {node} not found")),
            Err(e) => fail(format!("patching node {node}: {e}")),
        }
    }

    async fn label(&self, node: &str, labels: &BTreeMap<String, Option<String>>) -> Done {
        if labels.is_empty() {
            return fail("no labels given");
        }
        let patch = json!({"metadata": {"labels": labels}});
        match self
            .nodes()
            .patch(node, &PatchParams::default(), &Patch::Merge(&patch))
            .await
        {
            Ok(_) => ok(format!("node {node}: {} label(s) changed", labels.len())),
            Err(e) if api_code(&e) == Some(404) => fail(format!("node {node} not found")),
            Err(e) => fail(format!("labelling node {node}: {e}")),
        }
    }

    async fn taint(&self, node: &str, add: &[proto::Taint], remove: &[proto::Taint]) -> Done {
        // spec.taints is replaced as a whole by a patch: read, change, write with the read
        // resourceVersion as precondition, retrying on conflicts.
        for _attempt in 0..5 {
            let n = match self.nodes().get(node).await {
                Ok(n) => n,
                Err(e) if api_code(&e) == Some(404) => {
                    return fail(format!("node {node} not found"))
                }
                Err(e) => return fail(format!("reading node {node}: {e}")),
            };
            let mut taints: Vec<serde_json::Value> = Vec::new();
            for t in n
                .spec
                .as_ref()
                .and_then(|s| s.taints.clone())
                .unwrap_or_default()
            {
                let gone = remove
                    .iter()
                    .chain(add.iter())
                    .any(|r| r.key == t.key && r.effect == t.effect);
                if !gone {
                    taints.push(serde_json::to_value(&t).unwrap_or(serde_json::Value::Null));
                }
            }
            for t in add {
                taints.push(json!({"key": t.key, "value": t.value, "effect": t.effect}));
            }
            let patch = json!({
                "metadata": {"resourceVersion": n.resource_version()},
                "spec": {"taints": taints},
            });
            match self
                .nodes()
                .patch(node, &PatchParams::default(), &Patch::Merge(&patch))
                .await
            {
                Ok(_) => {
                    return ok(format!(
                        "node {node}: {} taint(s) added, {} removed",
                        add.len(),
                        remove.len()
                    ))
                }
                Err(e) if api_code(&e) == Some(409) => continue,
                Err(e) => return fail(format!("tainting node {node}: {e}")),
            }
        }
        fail(format!(
            "tainting node {node}: kept conflicting with other writers"
        ))
    }

    async fn delete_node(&self, node: &str) -> Done {
        match self.nodes().delete(node, &DeleteParams::default()).await {
            Ok(_) => ok(format!("node {node} deleted")),
            Err(e) if api_code(&e) == Some(404) => ok(format!("node {node} was already gone")),
            Err(e) => fail(format!("deleting node {node}: {e}")),
        }
    }

    async fn patch_requests(
        &self,
        ns: &str,
        kind: proto::WorkloadKind,
        name: &str,
        container: &str,
        cpu: Option<u64>,
        mem: Option<u64>,
    ) -> Done {
        let mut requests = serde_json::Map::new();
        if let Some(c) = cpu {
            if c == 0 {
                return fail("cpu_millis must be greater than 0");
            }
            requests.insert("cpu".into(), quantity::format_cpu(c).into());
        }
        if let Some(m) = mem {
            if m == 0 {
                return fail("memory_mib must be greater than 0");
            }
            requests.insert("memory".into(), quantity::format_memory(m).into());
        }
        if requests.is_empty() {
            return fail("neither cpu_millis nor memory_mib given");
        }
        let kind_name = match kind {
            proto::WorkloadKind::Deployment => "deployment",
            proto::WorkloadKind::StatefulSet => "statefulset",
        };
        // The container to patch: the one named, or, when none is named (whole-pod
        // rightsizing), the workload's only container.
        let resolve = |spec: Option<&PodSpec>| -> Result<String, String> {
            let containers = spec.map(|s| s.containers.as_slice()).unwrap_or_default();
            if container.is_empty() {
                return match containers {
                    [only] => Ok(only.name.clone()),
                    _ => Err(format!(
                        "{kind_name} {ns}/{name} has {} containers: name the one to patch",
                        containers.len()
                    )),
                };
            }
            if containers.iter().any(|c| c.name == container) {
                Ok(container.to_string())
            } else {
                Err(format!(
                    "{kind_name} {ns}/{name} has no container {container:?}"
                ))
            }
        };
        // Strategic merge: containers merge by name, so only this container changes.
        let patch_for = |c: &str| {
            json!({"spec": {"template": {"spec": {"containers": [
                {"name": c, "resources": {"requests": requests.clone()}}
            ]}}}})
        };
        let pp = PatchParams::default();
        let result = match kind {
            proto::WorkloadKind::Deployment => {
                let api: Api<Deployment> = Api::namespaced(self.client.clone(), ns);
                match api.get(name).await {
                    Ok(d) => {
                        let spec = d.spec.as_ref().and_then(|s| s.template.spec.as_ref());
                        let c = match resolve(spec) {
                            Ok(c) => c,
                            Err(m) => return fail(m),
                        };
                        api.patch(name, &pp, &Patch::Strategic(&patch_for(&c)))
                            .await
                            .map(|_| c)
                    }
                    Err(e) => Err(e),
                }
            }
            proto::WorkloadKind::StatefulSet => {
                let api: Api<StatefulSet> = Api::namespaced(self.client.clone(), ns);
                match api.get(name).await {
                    Ok(d) => {
                        let spec = d.spec.as_ref().and_then(|s| s.template.spec.as_ref());
                        let c = match resolve(spec) {
                            Ok(c) => c,
                            Err(m) => return fail(m),
                        };
                        api.patch(name, &pp, &Patch::Strategic(&patch_for(&c)))
                            .await
                            .map(|_| c)
                    }
                    Err(e) => Err(e),
                }
            }
        };
        match result {
            Ok(container) => ok(format!(
                "{kind_name} {ns}/{name} container {container}: requests set to {}",
                serde_json::Value::Object(requests)
            )),
            Err(e) if api_code(&e) == Some(404) => {
                fail(format!("{kind_name} {ns}/{name} not found"))
            }
            Err(e) => fail(format!("patching {kind_name} {ns}/{name}: {e}")),
        }
    }

    /// Cordon, then evict every pod on the node (DaemonSet and mirror pods skipped). A 429
    /// (a PDB allows no disruption) is retried with backoff until `budget` runs out; then
    /// the command fails and the node stays cordoned. A 500 (several PDBs match the pod)
    /// fails that pod: it is never forced.
    async fn drain(&self, node: &str, budget: Duration, grace: Option<i64>) -> Done {
        let deadline = Instant::now() + budget;
        let cordon = self.set_unschedulable(node, true).await;
        if !cordon.ok {
            return cordon;
        }
        let pods_api: Api<Pod> = Api::all(self.client.clone());
        let on_node = ListParams::default().fields(&format!("spec.nodeName={node}"));
        let pods = match pods_api.list(&on_node).await {
            Ok(l) => l.items,
            Err(e) => {
                return fail(format!(
                    "node {node} cordoned; listing its pods failed: {e}"
                ))
            }
        };
        struct Pending {
            ns: String,
            name: String,
            uid: Option<String>,
            retries: u32,
            last: Option<String>,
            blocked: bool,
        }
        let mut records: Vec<proto::EvictionRecord> = Vec::new();
        let mut pending: Vec<Pending> = Vec::new();
        for p in pods {
            let ns = p.namespace().unwrap_or_default();
            let name = p.name_any();
            let owner = crate::convert::controller_owner(&p.metadata);
            let view = crate::convert::pod(&p, owner);
            if view.mirror {
                records.push(record(&ns, &name, "skipped_mirror", 0, None));
            } else if view.daemonset {
                records.push(record(&ns, &name, "skipped_daemonset", 0, None));
            } else {
                pending.push(Pending {
                    ns,
                    name,
                    uid: p.metadata.uid.clone(),
                    retries: 0,
                    last: None,
                    blocked: false,
                });
            }
        }
        // The policy/v1 Eviction body is built here: kube's `evict()` serialises the delete
        // options as `delete_options`, which the API server ignores (the grace period
        // override would be lost).
        let eviction_body = |ns: &str, name: &str| {
            let mut body = json!({
                "apiVersion": "policy/v1",
                "kind": "Eviction",
                "metadata": {"name": name, "namespace": ns},
            });
            if let Some(g) = grace {
                body["deleteOptions"] = json!({"gracePeriodSeconds": g.max(0)});
            }
            body
        };
        let mut evicted: Vec<(String, String, Option<String>)> = Vec::new();
        let mut failed = false;
        let mut wait = self.backoff.initial;
        loop {
            let mut still = Vec::new();
            for mut p in pending {
                let api: Api<Pod> = Api::namespaced(self.client.clone(), &p.ns);
                // Bounded by the deadline even if the client retries 429s itself.
                let remaining = deadline
                    .saturating_duration_since(Instant::now())
                    .max(Duration::from_millis(100));
                let pp = PostParams::default();
                let body = eviction_body(&p.ns, &p.name);
                let call = api.create_subresource::<serde_json::Value, kube::core::Status>(
                    "eviction", &p.name, &pp, &body,
                );
                let evicted_now = match tokio::time::timeout(remaining, call).await {
                    Ok(r) => r,
                    Err(_) => {
                        p.retries += 1;
                        p.last = Some("eviction request did not answer before the deadline".into());
                        still.push(p);
                        continue;
                    }
                };
                match evicted_now {
                    Ok(_) => {
                        records.push(record(&p.ns, &p.name, "evicted", p.retries, None));
                        evicted.push((p.ns, p.name, p.uid));
                    }
                    Err(e) if api_code(&e) == Some(404) => {
                        records.push(record(
                            &p.ns,
                            &p.name,
                            "evicted",
                            p.retries,
                            Some("already gone".into()),
                        ));
                    }
                    Err(e) if api_code(&e) == Some(429) => {
                        p.retries += 1;
                        p.blocked = true;
                        p.last = Some(e.to_string());
                        still.push(p);
                    }
                    Err(e) if api_code(&e) == Some(500) => {
                        // Several PDBs select this pod: the API refuses; never force it.
                        failed = true;
                        records.push(record(
                            &p.ns,
                            &p.name,
                            "failed",
                            p.retries,
                            Some(e.to_string()),
                        ));
                    }
                    Err(e) => {
                        p.retries += 1;
                        p.blocked = false;
                        p.last = Some(e.to_string());
                        still.push(p);
                    }
                }
            }
            pending = still;
            if pending.is_empty() {
                break;
            }
            let now = Instant::now();
            if now >= deadline {
                break;
            }
            tokio::time::sleep(wait.min(deadline - now)).await;
            wait = (wait * 2).min(self.backoff.max);
        }
        let timed_out = !pending.is_empty();
        for p in pending {
            let outcome = if p.blocked {
                "blocked_by_pdb"
            } else {
                "failed"
            };
            records.push(record(&p.ns, &p.name, outcome, p.retries, p.last));
        }
        if timed_out || failed {
            let n_bad = records
                .iter()
                .filter(|r| r.outcome == "blocked_by_pdb" || r.outcome == "failed")
                .count();
            return Done {
                ok: false,
                message: format!(
                    "drain of node {node} {}: {n_bad} pod(s) not evicted; the node stays cordoned",
                    if timed_out {
                        "passed its deadline"
                    } else {
                        "failed"
                    }
                ),
                evictions: records,
            };
        }
        // Wait for the evicted pods to terminate (their grace period), within the deadline.
        let mut wait = self.backoff.initial;
        loop {
            let remaining: Vec<String> = match pods_api.list(&on_node).await {
                Ok(l) => l
                    .items
                    .iter()
                    .filter(|p| {
                        evicted.iter().any(|(ns, name, uid)| {
                            p.namespace().as_deref() == Some(ns.as_str())
                                && &p.name_any() == name
                                && (uid.is_none() || p.metadata.uid == *uid)
                        })
                    })
                    .map(|p| format!("{}/{}", p.namespace().unwrap_or_default(), p.name_any()))
                    .collect(),
                Err(e) => vec![format!("(listing pods failed: {e})")],
            };
            if remaining.is_empty() {
                break;
            }
            let now = Instant::now();
            if now >= deadline {
                return Done {
                    ok: false,
                    message: format!(
                        "drain of node {node} passed its deadline while pods were terminating: {}; the node stays cordoned",
                        remaining.join(", ")
                    ),
                    evictions: records,
                };
            }
            tokio::time::sleep(wait.min(deadline - now)).await;
            wait = (wait * 2).min(self.backoff.max);
        }
        let n = records.iter().filter(|r| r.outcome == "evicted").count();
        Done {
            ok: true,
            message: format!("node {node} cordoned and drained: {n} pod(s) evicted"),
            evictions: records,
        }
    }
}

fn record(
    ns: &str,
    name: &str,
    outcome: &str,
    retries: u32,
    message: Option<String>,
) -> proto::EvictionRecord {
    proto::EvictionRecord {
        pod: format!("{ns}/{name}"),
        outcome: outcome.to_string(),
        retries,
        message,
    }
}
