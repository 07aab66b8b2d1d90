//! A fake Kubernetes API server: list + watch with resourceVersion for nodes, pods, PDBs
//! and events (bookmarks, `410 Gone` as a watch ERROR event once compacted), `/version`,
//! node GET/PATCH/DELETE, the pod eviction subresource (429 while a PDB allows no
//! disruption, 500 when several PDBs match, pod deleted on success), apps/v1 workloads
//! GET/PATCH, and `metrics.k8s.io` present or absent.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Router;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use serde_json::{json, Value};
use tokio::sync::broadcast;

const WATCHED: [&str; 4] = ["nodes", "pods", "poddisruptionbudgets", "events"];

#[derive(Debug, Clone)]
struct WatchEv {
    collection: String,
    rv: u64,
    kind: &'static str,
    object: Value,
}

#[derive(Default)]
struct KState {
    rv: u64,
    /// Watches from a resourceVersion older than this get 410 Gone.
    compacted: u64,
    uid: u64,
    store: BTreeMap<String, BTreeMap<String, Value>>,
    log: Vec<WatchEv>,
    /// apps/v1 objects by `plural/namespace/name`.
    apps: BTreeMap<String, Value>,
    metrics: bool,
    /// (pod key, HTTP status) per eviction request.
    evictions: Vec<(String, u16, Option<i64>)>,
    /// Every request as `METHOD path?query`.
    requests: Vec<String>,
    watch_gen: u64,
    /// Answer a stale watch with HTTP 410 instead of a 200 stream carrying an ERROR event.
    gone_as_http: bool,
}

/// The fake API server. Dropping it stops serving.
pub struct FakeKube {
    addr: SocketAddr,
    state: Arc<Mutex<KState>>,
    tx: broadcast::Sender<WatchEv>,
    gen_tx: tokio::sync::watch::Sender<u64>,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for FakeKube {
    fn drop(&mut self) {
        self.server.abort();
    }
}

#[derive(Clone)]
struct Ctx {
    state: Arc<Mutex<KState>>,
    tx: broadcast::Sender<WatchEv>,
    gen_rx: tokio::sync::watch::Receiver<u64>,
    bookmark_every: Duration,
}

fn status(code: u16, reason: &str, message: &str) -> Response {
    let body = json!({"kind": "Status", "apiVersion": "v1", "metadata": {},
        "status": if code < 300 { "Success" } else { "Failure" },
        "message": message, "reason": reason, "code": code});
    (
        StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        [("content-type", "application/json")],
        body.to_string(),
    )
        .into_response()
}

fn json_response(code: StatusCode, v: &Value) -> Response {
    (code, [("content-type", "application/json")], v.to_string()).into_response()
}

fn kind_of(collection: &str) -> (&'static str, &'static str) {
    match collection {
        "nodes" => ("v1", "Node"),
        "pods" => ("v1", "Pod"),
        "events" => ("v1", "Event"),
        _ => ("policy/v1", "PodDisruptionBudget"),
    }
}

fn key_of(v: &Value) -> String {
    let name = v["metadata"]["name"].as_str().unwrap_or_default();
    match v["metadata"]["namespace"].as_str() {
        Some(ns) => format!("{ns}/{name}"),
        None => name.to_string(),
    }
}

/// JSON merge patch (RFC 7386); with `strategic`, lists of objects that carry a `name`
/// are merged by name (as Kubernetes does for containers).
fn merge(target: &mut Value, patch: &Value, strategic: bool) {
    let Some(p) = patch.as_object() else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = json!({});
    }
    let Some(t) = target.as_object_mut() else {
        return;
    };
    for (k, v) in p {
        if v.is_null() {
            t.remove(k);
            continue;
        }
        let named_list = strategic
            && v.as_array()
                .is_some_and(|a| a.iter().all(|i| i.get("name").is_some()))
            && t.get(k).is_some_and(|x| x.is_array());
        if named_list {
            let Some(existing) = t.get_mut(k).and_then(|x| x.as_array_mut()) else {
                continue;
            };
            for item in v.as_array().into_iter().flatten() {
                match existing
                    .iter_mut()
                    .find(|e| e.get("name") == item.get("name"))
                {
                    Some(e) => merge(e, item, strategic),
                    None => existing.push(item.clone()),
                }
            }
        } else if v.is_object() {
            let entry = t.entry(k.clone()).or_insert_with(|| json!({}));
            merge(entry, v, strategic);
        } else {
            t.insert(k.clone(), v.clone());
        }
    }
}

impl KState {
    fn write(
        &mut self,
        tx: &broadcast::Sender<WatchEv>,
        collection: &str,
        mut obj: Value,
        kind: &'static str,
    ) {
        self.rv += 1;
        let (api_version, k) = kind_of(collection);
        obj["apiVersion"] = json!(api_version);
        obj["kind"] = json!(k);
        obj["metadata"]["resourceVersion"] = json!(self.rv.to_string());
        if obj["metadata"]["uid"].is_null() {
            self.uid += 1;
            obj["metadata"]["uid"] = json!(format!("uid-{}", self.uid));
        }
        if obj["metadata"]["creationTimestamp"].is_null() {
            obj["metadata"]["creationTimestamp"] =
                json!(chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true));
        }
        let key = key_of(&obj);
        let coll = self.store.entry(collection.to_string()).or_default();
        if kind == "DELETED" {
            coll.remove(&key);
        } else {
            coll.insert(key, obj.clone());
        }
        let ev = WatchEv {
            collection: collection.to_string(),
            rv: self.rv,
            kind,
            object: obj,
        };
        self.log.push(ev.clone());
        let _ = tx.send(ev);
    }

    fn get(&self, collection: &str, key: &str) -> Option<Value> {
        self.store.get(collection).and_then(|c| c.get(key)).cloned()
    }
}

fn query_map(uri: &Uri) -> BTreeMap<String, String> {
    uri.query()
        .unwrap_or("")
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.to_string(), v.replace("%3D", "=").replace("%2F", "/")))
        .collect()
}

async fn handle(State(ctx): State<Ctx>, method: Method, uri: Uri, body: Bytes) -> Response {
    let path = uri.path().to_string();
    let q = query_map(&uri);
    ctx.state
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .requests
        .push(format!("{method} {}", uri));
    let segs: Vec<&str> = path.trim_matches('/').split('/').collect();
    let body: Value = if body.is_empty() {
        Value::Null
    } else {
        match serde_json::from_slice(&body) {
            Ok(v) => v,
            Err(e) => return status(400, "BadRequest", &format!("invalid JSON body: {e}")),
        }
    };
    match (method.clone(), segs.as_slice()) {
        (Method::GET, ["version"]) => json_response(
            StatusCode::OK,
            &json!({"major": "1", "minor": "33", "gitVersion": "v1.33.1-fake", "gitCommit": "0",
                "gitTreeState": "clean", "buildDate": "2026-01-01T00:00:00Z", "goVersion": "go1.24",
                "compiler": "gc", "platform": "linux/amd64"}),
        ),
        (Method::GET, ["api", "v1", coll]) if WATCHED.contains(coll) => {
            list_or_watch(&ctx, coll, &q).await
        }
        (Method::GET, ["apis", "policy", "v1", "poddisruptionbudgets"]) => {
            list_or_watch(&ctx, "poddisruptionbudgets", &q).await
        }
        (Method::GET, ["api", "v1", "nodes", name]) => {
            let st = ctx.state.lock().unwrap_or_else(|p| p.into_inner());
            match st.get("nodes", name) {
                Some(n) => json_response(StatusCode::OK, &n),
                None => status(404, "NotFound", &format!("nodes \"{name}\" not found")),
            }
        }
        (Method::PATCH, ["api", "v1", "nodes", name]) => patch_node(&ctx, name, &body),
        (Method::DELETE, ["api", "v1", "nodes", name]) => {
            let mut st = ctx.state.lock().unwrap_or_else(|p| p.into_inner());
            match st.get("nodes", name) {
                Some(n) => {
                    st.write(&ctx.tx, "nodes", n.clone(), "DELETED");
                    json_response(StatusCode::OK, &n)
                }
                None => status(404, "NotFound", &format!("nodes \"{name}\" not found")),
            }
        }
        (Method::POST, ["api", "v1", "namespaces", ns, "pods", name, "eviction"]) => {
            evict(&ctx, ns, name, &body)
        }
        (Method::GET, ["apis", "apps", "v1", "namespaces", ns, plural, name]) => {
            let st = ctx.state.lock().unwrap_or_else(|p| p.into_inner());
            match st.apps.get(&format!("{plural}/{ns}/{name}")) {
                Some(o) => json_response(StatusCode::OK, o),
                None => status(404, "NotFound", &format!("{plural} \"{name}\" not found")),
            }
        }
        (Method::PATCH, ["apis", "apps", "v1", "namespaces", ns, plural, name]) => {
            let mut st = ctx.state.lock().unwrap_or_else(|p| p.into_inner());
            st.rv += 1;
            let rv = st.rv;
            match st.apps.get_mut(&format!("{plural}/{ns}/{name}")) {
                Some(o) => {
                    merge(o, &body, true);
                    o["metadata"]["resourceVersion"] = json!(rv.to_string());
                    json_response(StatusCode::OK, o)
                }
                None => status(404, "NotFound", &format!("{plural} \"{name}\" not found")),
            }
        }
        (Method::GET, ["apis", "metrics.k8s.io", "v1beta1", what]) => metrics(&ctx, what),
        _ => status(
            404,
            "NotFound",
            &format!("the server could not find the requested resource ({method} {path})"),
        ),
    }
}

fn metrics(ctx: &Ctx, what: &str) -> Response {
    let st = ctx.state.lock().unwrap_or_else(|p| p.into_inner());
    if !st.metrics {
        return status(
            404,
            "NotFound",
            "the server could not find the requested resource",
        );
    }
    let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let items: Vec<Value> = match what {
        "nodes" => st
            .store
            .get("nodes")
            .into_iter()
            .flat_map(|c| c.values())
            .map(|n| json!({"metadata": {"name": n["metadata"]["name"]}, "timestamp": now, "window": "30s",
                "usage": {"cpu": "500m", "memory": "1Gi"}}))
            .collect(),
        "pods" => st
            .store
            .get("pods")
            .into_iter()
            .flat_map(|c| c.values())
            .map(|p| json!({"metadata": {"name": p["metadata"]["name"], "namespace": p["metadata"]["namespace"]},
                "timestamp": now, "window": "30s",
                "containers": [{"name": "a", "usage": {"cpu": "100m", "memory": "128Mi"}},
                               {"name": "b", "usage": {"cpu": "50m", "memory": "64Mi"}}]}))
            .collect(),
        _ => return status(404, "NotFound", "unknown metrics resource"),
    };
    let kind = if what == "nodes" {
        "NodeMetricsList"
    } else {
        "PodMetricsList"
    };
    json_response(
        StatusCode::OK,
        &json!({"kind": kind, "apiVersion": "metrics.k8s.io/v1beta1", "metadata": {}, "items": items}),
    )
}

fn patch_node(ctx: &Ctx, name: &str, patch: &Value) -> Response {
    let mut st = ctx.state.lock().unwrap_or_else(|p| p.into_inner());
    let Some(mut node) = st.get("nodes", name) else {
        return status(404, "NotFound", &format!("nodes \"{name}\" not found"));
    };
    if let Some(want) = patch["metadata"]["resourceVersion"].as_str() {
        if node["metadata"]["resourceVersion"].as_str() != Some(want) {
            return status(409, "Conflict", "the object has been modified");
        }
    }
    let mut patch = patch.clone();
    if let Some(m) = patch.get_mut("metadata").and_then(|m| m.as_object_mut()) {
        m.remove("resourceVersion");
    }
    merge(&mut node, &patch, true);
    st.write(&ctx.tx, "nodes", node.clone(), "MODIFIED");
    let node = st.get("nodes", name).unwrap_or(node);
    json_response(StatusCode::OK, &node)
}

fn evict(ctx: &Ctx, ns: &str, name: &str, body: &Value) -> Response {
    let mut st = ctx.state.lock().unwrap_or_else(|p| p.into_inner());
    let key = format!("{ns}/{name}");
    let grace = body["deleteOptions"]["gracePeriodSeconds"].as_i64();
    let Some(pod) = st.get("pods", &key) else {
        st.evictions.push((key, 404, grace));
        return status(404, "NotFound", &format!("pods \"{name}\" not found"));
    };
    let labels: BTreeMap<String, String> =
        serde_json::from_value(pod["metadata"]["labels"].clone()).unwrap_or_default();
    let pdbs: Vec<Value> = st
        .store
        .get("poddisruptionbudgets")
        .into_iter()
        .flat_map(|c| c.values())
        .filter(|b| b["metadata"]["namespace"].as_str() == Some(ns))
        .filter(|b| {
            let sel: Option<LabelSelector> =
                serde_json::from_value(b["spec"]["selector"].clone()).ok();
            crate::convert::selector_matches(sel.as_ref(), &labels)
        })
        .cloned()
        .collect();
    if pdbs.len() > 1 {
        st.evictions.push((key, 500, grace));
        return status(
            500,
            "InternalError",
            "This pod has more than one PodDisruptionBudget, which the eviction subresource does not support.",
        );
    }
    if let Some(pdb) = pdbs.first() {
        let allowed = pdb["status"]["disruptionsAllowed"].as_i64().unwrap_or(0);
        if allowed <= 0 {
            st.evictions.push((key, 429, grace));
            return status(
                429,
                "TooManyRequests",
                &format!(
                    "Cannot evict pod as it would violate the pod's disruption budget {}.",
                    pdb["metadata"]["name"].as_str().unwrap_or_default()
                ),
            );
        }
        let mut pdb = pdb.clone();
        pdb["status"]["disruptionsAllowed"] = json!(allowed - 1);
        st.write(&ctx.tx, "poddisruptionbudgets", pdb, "MODIFIED");
    }
    st.write(&ctx.tx, "pods", pod, "DELETED");
    st.evictions.push((key, 201, grace));
    status(201, "", "")
}

async fn list_or_watch(ctx: &Ctx, coll: &str, q: &BTreeMap<String, String>) -> Response {
    if q.get("watch").map(String::as_str) == Some("true")
        || q.get("watch").map(String::as_str) == Some("1")
    {
        return watch(ctx, coll, q);
    }
    let st = ctx.state.lock().unwrap_or_else(|p| p.into_inner());
    let node_filter = q
        .get("fieldSelector")
        .and_then(|f| f.strip_prefix("spec.nodeName="))
        .map(str::to_string);
    let items: Vec<Value> = st
        .store
        .get(coll)
        .into_iter()
        .flat_map(|c| c.values())
        .filter(|o| match &node_filter {
            Some(n) => o["spec"]["nodeName"].as_str() == Some(n.as_str()),
            None => true,
        })
        .cloned()
        .collect();
    let (api_version, kind) = kind_of(coll);
    json_response(
        StatusCode::OK,
        &json!({"apiVersion": api_version, "kind": format!("{kind}List"),
            "metadata": {"resourceVersion": st.rv.to_string()}, "items": items}),
    )
}

fn line(kind: &str, object: &Value) -> Result<Bytes, Infallible> {
    Ok(Bytes::from(format!(
        "{}\n",
        json!({"type": kind, "object": object})
    )))
}

fn watch(ctx: &Ctx, coll: &str, q: &BTreeMap<String, String>) -> Response {
    let since: u64 = q
        .get("resourceVersion")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let bookmarks = q.get("allowWatchBookmarks").map(String::as_str) == Some("true");
    let timeout = q
        .get("timeoutSeconds")
        .and_then(|t| t.parse().ok())
        .map(Duration::from_secs)
        .unwrap_or(Duration::from_secs(300));
    let (out, rx_body) = tokio::sync::mpsc::channel::<Result<Bytes, Infallible>>(256);
    let (api_version, kind) = kind_of(coll);
    let coll = coll.to_string();
    let ctx = ctx.clone();
    let (backlog, mut rx, gone, my_gen) = {
        let st = ctx.state.lock().unwrap_or_else(|p| p.into_inner());
        let gone = since < st.compacted;
        if gone && st.gone_as_http {
            return status(
                410,
                "Expired",
                &format!("too old resource version: {since}"),
            );
        }
        let backlog: Vec<WatchEv> = st
            .log
            .iter()
            .filter(|e| e.collection == coll && e.rv > since)
            .cloned()
            .collect();
        (backlog, ctx.tx.subscribe(), gone, st.watch_gen)
    };
    let mut gen_rx = ctx.gen_rx.clone();
    gen_rx.mark_unchanged();
    tokio::spawn(async move {
        if gone {
            let err = json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                "message": format!("too old resource version: {since}"), "reason": "Expired", "code": 410});
            let _ = out.send(line("ERROR", &err)).await;
            return;
        }
        let mut last = since;
        for e in backlog {
            last = e.rv;
            if out.send(line(e.kind, &e.object)).await.is_err() {
                return;
            }
        }
        let end = tokio::time::Instant::now() + timeout;
        let mut tick = tokio::time::interval(ctx.bookmark_every);
        loop {
            tokio::select! {
                ev = rx.recv() => match ev {
                    Ok(e) if e.collection == coll && e.rv > last => {
                        last = e.rv;
                        if out.send(line(e.kind, &e.object)).await.is_err() { return; }
                    }
                    Ok(_) => {}
                    Err(broadcast::error::RecvError::Lagged(_)) => return,
                    Err(broadcast::error::RecvError::Closed) => return,
                },
                _ = tick.tick() => {
                    if bookmarks {
                        // A compaction ends this watch: a bookmark built after it would carry a
                        // resourceVersion that is still valid and hide the 410 from the watcher.
                        let rv = {
                            let st = ctx.state.lock().unwrap_or_else(|p| p.into_inner());
                            if st.watch_gen != my_gen { return; }
                            st.rv.max(last)
                        };
                        let bm = json!({"apiVersion": api_version, "kind": kind, "metadata": {"resourceVersion": rv.to_string()}});
                        if out.send(line("BOOKMARK", &bm)).await.is_err() { return; }
                    }
                }
                _ = gen_rx.changed() => return,
                _ = tokio::time::sleep_until(end) => return,
            }
        }
    });
    let stream =
        futures_util::stream::unfold(
            rx_body,
            |mut rx| async move { rx.recv().await.map(|b| (b, rx)) },
        );
    Response::builder()
        .status(StatusCode::OK)
        .header("content-type", "application/json")
        .body(Body::from_stream(stream))
        .unwrap_or_else(|_| status(500, "InternalError", "building the watch response"))
}

impl FakeKube {
    /// Starts serving on 127.0.0.1 (an ephemeral port). `metrics`: whether
    /// `metrics.k8s.io` is served.
    pub async fn start(metrics: bool) -> std::io::Result<Self> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let state = Arc::new(Mutex::new(KState {
            metrics,
            rv: 1,
            ..KState::default()
        }));
        let (tx, _) = broadcast::channel(4096);
        let (gen_tx, gen_rx) = tokio::sync::watch::channel(0u64);
        let ctx = Ctx {
            state: state.clone(),
            tx: tx.clone(),
            gen_rx,
            bookmark_every: Duration::from_millis(250),
        };
        let app = Router::new().fallback(handle).with_state(ctx);
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(Self {
            addr,
            state,
            tx,
            gen_tx,
            server,
        })
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// A kube client pointed at this server.
    pub fn client(&self) -> kube::Client {
        let url: axum::http::Uri = self.url().parse().unwrap_or_default();
        crate::kube_client(kube::Config::new(url)).expect("a kube client for a plain http URL")
    }

    fn st(&self) -> std::sync::MutexGuard<'_, KState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Creates or replaces an object of a watched collection (`nodes`, `pods`,
    /// `poddisruptionbudgets`, `events`).
    pub fn upsert(&self, collection: &str, obj: Value) {
        let mut st = self.st();
        let exists = st.get(collection, &key_of(&obj)).is_some();
        st.write(
            &self.tx,
            collection,
            obj,
            if exists { "MODIFIED" } else { "ADDED" },
        );
    }

    pub fn delete(&self, collection: &str, key: &str) {
        let mut st = self.st();
        if let Some(o) = st.get(collection, key) {
            st.write(&self.tx, collection, o, "DELETED");
        }
    }

    pub fn get(&self, collection: &str, key: &str) -> Option<Value> {
        self.st().get(collection, key)
    }

    /// Stores an apps/v1 object (`replicasets`, `deployments`, `statefulsets`).
    pub fn put_apps(&self, plural: &str, obj: Value) {
        let key = format!("{plural}/{}", key_of(&obj));
        self.st().apps.insert(key, obj);
    }

    pub fn get_apps(&self, plural: &str, ns: &str, name: &str) -> Option<Value> {
        self.st()
            .apps
            .get(&format!("{plural}/{ns}/{name}"))
            .cloned()
    }

    pub fn add_node(&self, name: &str) {
        self.upsert(
            "nodes",
            json!({
                "metadata": {"name": name, "labels": {
                    "node.kubernetes.io/instance-type": "m5.large",
                    "topology.kubernetes.io/zone": "us-east-1a",
                    "eks.amazonaws.com/capacityType": "SPOT",
                    "eks.amazonaws.com/nodegroup": "ng-1"}},
                "spec": {"providerID": format!("aws:///us-east-1a/i-{name}")},
                "status": {"allocatable": {"cpu": "1930m", "memory": "7291Mi", "pods": "29"},
                           "capacity": {"cpu": "2", "memory": "8Gi", "pods": "29"},
                           "conditions": [{"type": "Ready", "status": "True"}]}
            }),
        );
    }

    /// A running pod on `node` owned by `owner_kind`/`owner_name` (controller).
    pub fn add_pod(
        &self,
        ns: &str,
        name: &str,
        node: Option<&str>,
        labels: Value,
        owner_kind: &str,
        owner_name: &str,
    ) {
        let mut annotations = json!({});
        let owners = if owner_kind == "Mirror" {
            annotations = json!({"kubernetes.io/config.mirror": "hash"});
            json!([{"apiVersion": "v1", "kind": "Node", "name": node.unwrap_or_default(), "uid": "n", "controller": true}])
        } else {
            json!([{"apiVersion": "apps/v1", "kind": owner_kind, "name": owner_name, "uid": "o", "controller": true}])
        };
        let (phase, conditions) = match node {
            Some(_) => (
                "Running",
                json!([{"type": "PodScheduled", "status": "True"}]),
            ),
            None => (
                "Pending",
                json!([{"type": "PodScheduled", "status": "False", "reason": "Unschedulable",
                "message": "0/1 nodes are available: 1 Insufficient cpu."}]),
            ),
        };
        self.upsert("pods", json!({
            "metadata": {"name": name, "namespace": ns, "labels": labels, "annotations": annotations,
                "ownerReferences": owners},
            "spec": {"nodeName": node, "terminationGracePeriodSeconds": 30, "containers": [
                {"name": "app", "resources": {"requests": {"cpu": "250m", "memory": "256Mi"}}}]},
            "status": {"phase": phase, "conditions": conditions}
        }));
    }

    pub fn add_pdb(&self, ns: &str, name: &str, match_labels: Value, disruptions_allowed: i32) {
        self.upsert(
            "poddisruptionbudgets",
            json!({
                "metadata": {"name": name, "namespace": ns},
                "spec": {"minAvailable": 1, "selector": {"matchLabels": match_labels}},
                "status": {"disruptionsAllowed": disruptions_allowed, "currentHealthy": 1,
                           "desiredHealthy": 1, "expectedPods": 1, "observedGeneration": 1}
            }),
        );
    }

    pub fn set_pdb_allowed(&self, ns: &str, name: &str, allowed: i32) {
        if let Some(mut p) = self.get("poddisruptionbudgets", &format!("{ns}/{name}")) {
            p["status"]["disruptionsAllowed"] = json!(allowed);
            self.upsert("poddisruptionbudgets", p);
        }
    }

    /// A core/v1 event (`type_`: `Normal` or `Warning`) about `kind` `ns/obj_name`.
    pub fn add_event(
        &self,
        ns: &str,
        kind: &str,
        obj_name: &str,
        reason: &str,
        type_: &str,
        message: &str,
    ) {
        let name = format!("{obj_name}.{}", self.st().rv);
        let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        self.upsert(
            "events",
            json!({
                "metadata": {"name": name, "namespace": ns},
                "involvedObject": {"kind": kind, "name": obj_name, "namespace": ns},
                "reason": reason, "message": message, "type": type_,
                "firstTimestamp": now, "lastTimestamp": now, "count": 1
            }),
        );
    }

    /// Compacts the history: open watches end, and resuming from any resourceVersion
    /// before now answers 410 Gone (the watchers must re-list).
    pub fn compact(&self) {
        {
            let mut st = self.st();
            st.rv += 1;
            st.compacted = st.rv;
            st.log.clear();
            st.watch_gen += 1;
        }
        let _ = self.gen_tx.send(self.st().watch_gen);
    }

    /// After [`compact`](Self::compact), answer stale watches with HTTP 410 (`true`) or
    /// with a 200 stream carrying a 410 ERROR event (`false`, the default).
    pub fn set_gone_as_http(&self, on: bool) {
        self.st().gone_as_http = on;
    }

    pub fn set_metrics(&self, on: bool) {
        self.st().metrics = on;
    }

    /// Eviction requests as (`namespace/name`, HTTP status, grace period sent).
    pub fn evictions(&self) -> Vec<(String, u16, Option<i64>)> {
        self.st().evictions.clone()
    }

    /// Requests received, as `METHOD /path?query`.
    pub fn requests(&self) -> Vec<String> {
        self.st().requests.clone()
    }
}
