//! kube-runtime watchers feeding the [`View`](crate::view::View), and the metrics reader.

use std::collections::HashMap;
use std::fmt::Debug;
use std::future::Future;
use std::sync::{Arc, Mutex};

use futures_util::{pin_mut, StreamExt};
use k8s_openapi::api::apps::v1::ReplicaSet;
use k8s_openapi::api::core::v1::{Event as CoreEvent, Node, Pod};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use kube::api::{Api, DynamicObject, ListParams};
use kube::core::{ApiResource, GroupVersionKind};
use kube::runtime::watcher::{self, Event};
use kube::runtime::WatchStreamExt;
use kube::{Client, Resource, ResourceExt};
use serde::de::DeserializeOwned;
use spot_agent_protocol as proto;
use tokio::sync::Notify;

use crate::convert;
use crate::view::{Item, View};

/// The view shared by the watchers and the push loop.
#[derive(Clone)]
pub struct Shared {
    pub view: Arc<Mutex<View>>,
    pub changed: Arc<Notify>,
}

impl Shared {
    pub fn new() -> Self {
        Self {
            view: Arc::new(Mutex::new(View::new())),
            changed: Arc::new(Notify::new()),
        }
    }

    /// Runs `f` on the view (a poisoned lock is recovered: the view is plain data).
    pub fn with<T>(&self, f: impl FnOnce(&mut View) -> T) -> T {
        let mut g = self.view.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut g)
    }
}

impl Default for Shared {
    fn default() -> Self {
        Self::new()
    }
}

fn key_of<K: ResourceExt>(o: &K) -> String {
    match o.namespace() {
        Some(ns) => format!("{ns}/{}", o.name_any()),
        None => o.name_any(),
    }
}

/// Runs one watcher until the stream ends (it does not: the watcher re-lists on 410 Gone
/// and backs off on errors).
async fn watch_loop<K, F, Fut>(api: Api<K>, resource: &'static str, shared: Shared, convert: F)
where
    K: Resource + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
    K::DynamicType: Default,
    F: Fn(K) -> Fut,
    Fut: Future<Output = Item>,
{
    loop {
        let stream = watcher::watcher(api.clone(), watcher::Config::default()).default_backoff();
        pin_mut!(stream);
        let mut buffer = Vec::new();
        while let Some(ev) = stream.next().await {
            match ev {
                Ok(Event::Init) => buffer.clear(),
                Ok(Event::InitApply(o)) => buffer.push(convert(o).await),
                Ok(Event::InitDone) => {
                    let items = std::mem::take(&mut buffer);
                    tracing::debug!(resource, objects = items.len(), "listed");
                    shared.with(|v| v.replace(resource, items));
                    shared.changed.notify_one();
                }
                Ok(Event::Apply(o)) => {
                    let item = convert(o).await;
                    shared.with(|v| v.apply(resource, item));
                    shared.changed.notify_one();
                }
                Ok(Event::Delete(o)) => {
                    let key = key_of(&o);
                    shared.with(|v| v.delete(resource, &key));
                    shared.changed.notify_one();
                }
                Err(e) => {
                    tracing::warn!(resource, error = %e, "watch error (the watcher retries; 410 Gone re-lists)");
                    shared.with(|v| v.watch_error(resource, e.to_string()));
                    // A 410 Gone answered to the watch request itself (rather than as a
                    // watch ERROR event) would make the watcher resume from the same stale
                    // resourceVersion forever: start over with a fresh list.
                    if let watcher::Error::WatchStartFailed(kube::Error::Api(s)) = &e {
                        if s.code == 410 {
                            break;
                        }
                    }
                }
            }
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

/// Resolves pod owners: ReplicaSets to their Deployment (reading the ReplicaSet, falling
/// back to stripping the pod-template-hash from its name).
#[derive(Clone)]
pub struct OwnerResolver {
    client: Client,
    cache: Arc<Mutex<HashMap<(String, String), proto::Owner>>>,
}

impl OwnerResolver {
    pub fn new(client: Client) -> Self {
        Self {
            client,
            cache: Arc::new(Mutex::new(HashMap::new())),
        }
    }

    pub async fn resolve(&self, pod: &Pod) -> Option<proto::Owner> {
        let owner = convert::controller_owner(&pod.metadata)?;
        if owner.kind != "ReplicaSet" {
            return Some(owner);
        }
        let ns = pod.metadata.namespace.clone().unwrap_or_default();
        let key = (ns.clone(), owner.name.clone());
        if let Some(o) = self
            .cache
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&key)
        {
            return Some(o.clone());
        }
        let labels = pod.metadata.labels.clone().unwrap_or_default();
        let by_name = || {
            convert::deployment_from_replicaset_name(&owner.name, &labels).map(|name| {
                proto::Owner {
                    kind: "Deployment".into(),
                    name,
                }
            })
        };
        let api: Api<ReplicaSet> = Api::namespaced(self.client.clone(), &ns);
        let resolved = match api.get_opt(&owner.name).await {
            Ok(Some(rs)) => {
                convert::controller_owner(&rs.metadata).unwrap_or_else(|| owner.clone())
            }
            Ok(None) => by_name().unwrap_or_else(|| owner.clone()),
            Err(e) => {
                // Not cached: a transient error is retried with the next pod of this ReplicaSet.
                tracing::debug!(error = %e, "reading ReplicaSet failed; resolving its Deployment by name");
                return Some(by_name().unwrap_or(owner));
            }
        };
        self.cache
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(key, resolved.clone());
        Some(resolved)
    }
}

/// Spawns the four watchers onto `tasks`.
pub fn spawn_watchers(client: &Client, shared: &Shared, tasks: &mut tokio::task::JoinSet<()>) {
    let nodes: Api<Node> = Api::all(client.clone());
    tasks.spawn(watch_loop(
        nodes,
        "nodes",
        shared.clone(),
        |n: Node| async move { Item::Node(convert::node(&n)) },
    ));
    let pods: Api<Pod> = Api::all(client.clone());
    let resolver = OwnerResolver::new(client.clone());
    tasks.spawn(watch_loop(pods, "pods", shared.clone(), move |p: Pod| {
        let resolver = resolver.clone();
        async move {
            let owner = resolver.resolve(&p).await;
            Item::Pod(convert::pod(&p, owner))
        }
    }));
    let pdbs: Api<PodDisruptionBudget> = Api::all(client.clone());
    tasks.spawn(watch_loop(
        pdbs,
        "poddisruptionbudgets",
        shared.clone(),
        |p: PodDisruptionBudget| async move {
            let sel = p.spec.as_ref().and_then(|s| s.selector.clone());
            Item::Pdb(convert::pdb(&p), sel)
        },
    ));
    let events: Api<CoreEvent> = Api::all(client.clone());
    tasks.spawn(watch_loop(
        events,
        "events",
        shared.clone(),
        |e: CoreEvent| async move { Item::Event(key_of(&e), convert::event(&e)) },
    ));
}

fn metrics_api(client: &Client, kind: &str, plural: &str) -> Api<DynamicObject> {
    let gvk = GroupVersionKind::gvk("metrics.k8s.io", "v1beta1", kind);
    let ar = ApiResource::from_gvk_with_plural(&gvk, plural);
    Api::all_with(client.clone(), &ar)
}

fn usage_of(v: &serde_json::Value) -> (u64, u64) {
    let cpu = v
        .get("cpu")
        .and_then(|q| q.as_str())
        .and_then(|q| crate::quantity::cpu_millis(q).ok())
        .unwrap_or(0);
    let mem = v
        .get("memory")
        .and_then(|q| q.as_str())
        .and_then(|q| crate::quantity::memory_mib(q).ok())
        .unwrap_or(0);
    (cpu, mem)
}

fn sample_time(o: &DynamicObject) -> chrono::DateTime<chrono::Utc> {
    o.data
        .get("timestamp")
        .and_then(|t| t.as_str())
        .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
        .map(|t| t.with_timezone(&chrono::Utc))
        .unwrap_or_else(chrono::Utc::now)
}

/// Reads node and pod usage from `metrics.k8s.io`. `Ok(None)` when the API is absent
/// (404: no metrics-server).
pub async fn read_metrics(client: &Client) -> Result<Option<Vec<proto::UsageSample>>, kube::Error> {
    let lp = ListParams::default();
    let nodes = match metrics_api(client, "NodeMetrics", "nodes").list(&lp).await {
        Ok(l) => l,
        Err(kube::Error::Api(s)) if s.code == 404 || s.code == 503 => return Ok(None),
        Err(e) => return Err(e),
    };
    let pods = match metrics_api(client, "PodMetrics", "pods").list(&lp).await {
        Ok(l) => l,
        Err(kube::Error::Api(s)) if s.code == 404 || s.code == 503 => return Ok(None),
        Err(e) => return Err(e),
    };
    let mut out = Vec::new();
    for n in &nodes.items {
        let (cpu, mem) = n.data.get("usage").map(usage_of).unwrap_or((0, 0));
        out.push(proto::UsageSample {
            target: proto::UsageTarget::Node,
            namespace: String::new(),
            name: n.name_any(),
            at: sample_time(n),
            cpu_millis: cpu,
            memory_mib: mem,
        });
    }
    for p in &pods.items {
        let (mut cpu, mut mem) = (0, 0);
        for c in p
            .data
            .get("containers")
            .and_then(|c| c.as_array())
            .into_iter()
            .flatten()
        {
            let (c1, m1) = c.get("usage").map(usage_of).unwrap_or((0, 0));
            cpu += c1;
            mem += m1;
        }
        out.push(proto::UsageSample {
            target: proto::UsageTarget::Pod,
            namespace: p.namespace().unwrap_or_default(),
            name: p.name_any(),
            at: sample_time(p),
            cpu_millis: cpu,
            memory_mib: mem,
        });
    }
    Ok(Some(out))
}
