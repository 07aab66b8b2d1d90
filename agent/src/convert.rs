//! Kubernetes objects (k8s-openapi) → the protocol's view types.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use k8s_openapi::api::core::v1 as core;
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta, Time};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use spot_agent_protocol as proto;

use crate::quantity;

/// Annotation the kubelet sets on mirror (static) pods.
pub const MIRROR_ANNOTATION: &str = "kubernetes.io/config.mirror";
/// Extended resource name of NVIDIA GPUs.
pub const GPU_RESOURCE: &str = "nvidia.com/gpu";

pub fn time(t: &Time) -> Option<DateTime<Utc>> {
    DateTime::from_timestamp(t.0.as_second(), t.0.subsec_nanosecond().max(0) as u32)
}

fn created(meta: &ObjectMeta) -> Option<DateTime<Utc>> {
    meta.creation_timestamp.as_ref().and_then(time)
}

fn q_cpu(map: &BTreeMap<String, Quantity>) -> u64 {
    map.get("cpu")
        .and_then(|q| quantity::cpu_millis(&q.0).ok())
        .unwrap_or(0)
}

fn q_mem(map: &BTreeMap<String, Quantity>) -> u64 {
    map.get("memory")
        .and_then(|q| quantity::memory_mib(&q.0).ok())
        .unwrap_or(0)
}

fn q_count(map: &BTreeMap<String, Quantity>, key: &str) -> u64 {
    map.get(key)
        .and_then(|q| quantity::count(&q.0).ok())
        .unwrap_or(0)
}

/// Node resources (allocatable or capacity) in optimizer units.
pub fn node_resources(map: Option<&BTreeMap<String, Quantity>>) -> proto::Resources {
    let Some(map) = map else {
        return proto::Resources::default();
    };
    proto::Resources {
        cpu_millis: q_cpu(map),
        memory_mib: q_mem(map),
        gpus: u32::try_from(q_count(map, GPU_RESOURCE)).unwrap_or(u32::MAX),
        pods: u32::try_from(q_count(map, "pods")).unwrap_or(u32::MAX),
    }
}

/// Node → protocol node.
pub fn node(n: &core::Node) -> proto::Node {
    let labels = n.metadata.labels.clone().unwrap_or_default();
    let annotations = n.metadata.annotations.clone().unwrap_or_default();
    let spec = n.spec.clone().unwrap_or_default();
    let status = n.status.clone().unwrap_or_default();
    let provider_id = spec.provider_id.clone();
    let conditions: Vec<proto::NodeCondition> = status
        .conditions
        .unwrap_or_default()
        .into_iter()
        .map(|c| proto::NodeCondition {
            kind: c.type_,
            status: c.status,
            reason: c.reason,
            message: c.message,
        })
        .collect();
    let ready = conditions
        .iter()
        .any(|c| c.kind == "Ready" && c.status == "True");
    let label = |keys: &[&str]| keys.iter().find_map(|k| labels.get(*k).cloned());
    let capacity_type = label(&[
        "eks.amazonaws.com/capacityType",
        "karpenter.sh/capacity-type",
        "node.kubernetes.io/lifecycle",
        "node-lifecycle",
    ])
    .map(|v| match v.to_ascii_lowercase().as_str() {
        "spot" => "spot".to_string(),
        "on_demand" | "on-demand" | "ondemand" | "normal" => "on-demand".to_string(),
        other => other.to_string(),
    });
    proto::Node {
        name: n.metadata.name.clone().unwrap_or_default(),
        instance_id: provider_id
            .as_deref()
            .and_then(proto::instance_id_from_provider_id),
        provider_id,
        instance_type: label(&[
            "node.kubernetes.io/instance-type",
            "beta.kubernetes.io/instance-type",
        ]),
        zone: label(&[
            "topology.kubernetes.io/zone",
            "failure-domain.beta.kubernetes.io/zone",
        ]),
        capacity_type,
        node_group: label(&["eks.amazonaws.com/nodegroup", "karpenter.sh/nodepool"]),
        taints: spec
            .taints
            .unwrap_or_default()
            .into_iter()
            .map(|t| proto::Taint {
                key: t.key,
                value: t.value,
                effect: t.effect,
            })
            .collect(),
        allocatable: node_resources(status.allocatable.as_ref()),
        capacity: node_resources(status.capacity.as_ref()),
        conditions,
        ready,
        unschedulable: spec.unschedulable.unwrap_or(false),
        created_at: created(&n.metadata),
        labels,
        annotations,
    }
}

/// Requests of one pod: the sum over its containers, or the largest init container when
/// that is larger (per resource), as the scheduler computes it; plus pod overhead.
pub fn pod_requests(spec: &core::PodSpec) -> proto::Resources {
    let req = |c: &core::Container| -> (u64, u64, u64) {
        let empty = BTreeMap::new();
        let r = c
            .resources
            .as_ref()
            .and_then(|r| r.requests.as_ref())
            .unwrap_or(&empty);
        (q_cpu(r), q_mem(r), q_count(r, GPU_RESOURCE))
    };
    let (mut cpu, mut mem, mut gpu) = (0u64, 0u64, 0u64);
    for c in &spec.containers {
        let (c1, m1, g1) = req(c);
        cpu += c1;
        mem += m1;
        gpu += g1;
    }
    for c in spec.init_containers.iter().flatten() {
        let (c1, m1, g1) = req(c);
        cpu = cpu.max(c1);
        mem = mem.max(m1);
        gpu = gpu.max(g1);
    }
    if let Some(o) = &spec.overhead {
        cpu += q_cpu(o);
        mem += q_mem(o);
    }
    proto::Resources {
        cpu_millis: cpu,
        memory_mib: mem,
        gpus: u32::try_from(gpu).unwrap_or(u32::MAX),
        pods: 0,
    }
}

/// The controlling owner reference of an object, if any.
pub fn controller_owner(meta: &ObjectMeta) -> Option<proto::Owner> {
    let refs = meta.owner_references.as_ref()?;
    refs.iter()
        .find(|r| r.controller == Some(true))
        .or_else(|| refs.first())
        .map(|r| proto::Owner {
            kind: r.kind.clone(),
            name: r.name.clone(),
        })
}

/// ReplicaSet → Deployment by stripping the `pod-template-hash` suffix (the Deployment
/// controller names its ReplicaSets `<deployment>-<hash>`).
pub fn deployment_from_replicaset_name(
    rs: &str,
    pod_labels: &BTreeMap<String, String>,
) -> Option<String> {
    let hash = pod_labels.get("pod-template-hash")?;
    let name = rs.strip_suffix(hash.as_str())?.strip_suffix('-')?;
    (!name.is_empty()).then(|| name.to_string())
}

/// Pod → protocol pod (without PDB membership, see [`selector_matches`]). `owner` is the
/// resolved owner (ReplicaSets resolved to their Deployment by the caller).
pub fn pod(p: &core::Pod, owner: Option<proto::Owner>) -> proto::Pod {
    let spec = p.spec.clone().unwrap_or_default();
    let status = p.status.clone().unwrap_or_default();
    let all_annotations = p.metadata.annotations.clone().unwrap_or_default();
    let mirror = all_annotations.contains_key(MIRROR_ANNOTATION)
        || owner.as_ref().is_some_and(|o| o.kind == "Node");
    let daemonset = owner.as_ref().is_some_and(|o| o.kind == "DaemonSet");
    let phase = match status.phase.as_deref() {
        Some("Pending") => proto::PodPhase::Pending,
        Some("Running") => proto::PodPhase::Running,
        Some("Succeeded") => proto::PodPhase::Succeeded,
        Some("Failed") => proto::PodPhase::Failed,
        _ => proto::PodPhase::Unknown,
    };
    let unschedulable_reason = status
        .conditions
        .as_ref()
        .and_then(|cs| {
            cs.iter()
                .find(|c| c.type_ == "PodScheduled" && c.status == "False")
        })
        .map(|c| match (&c.reason, &c.message) {
            (Some(r), Some(m)) => format!("{r}: {m}"),
            (Some(r), None) => r.clone(),
            (None, Some(m)) => m.clone(),
            (None, None) => "Unschedulable".to_string(),
        });
    let annotations: BTreeMap<String, String> = all_annotations
        .iter()
        .filter(|(k, _)| {
            proto::DO_NOT_DISRUPT_ANNOTATIONS
                .iter()
                .any(|a| a.split('=').next() == Some(k.as_str()))
                || k.as_str() == MIRROR_ANNOTATION
        })
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    proto::Pod {
        namespace: p.metadata.namespace.clone().unwrap_or_default(),
        name: p.metadata.name.clone().unwrap_or_default(),
        uid: p.metadata.uid.clone(),
        node_name: spec.node_name.clone(),
        phase,
        requests: pod_requests(&spec),
        priority: spec.priority,
        priority_class: spec.priority_class_name.clone(),
        labels: p.metadata.labels.clone().unwrap_or_default(),
        do_not_disrupt: proto::is_do_not_disrupt(&all_annotations),
        annotations,
        pdbs: Vec::new(),
        daemonset,
        mirror,
        owner,
        unschedulable_reason,
        node_selector: spec.node_selector.unwrap_or_default(),
        created_at: created(&p.metadata),
    }
}

fn int_or_string(v: &IntOrString) -> String {
    match v {
        IntOrString::Int(i) => i.to_string(),
        IntOrString::String(s) => s.clone(),
    }
}

/// PDB → protocol PDB.
pub fn pdb(p: &PodDisruptionBudget) -> proto::Pdb {
    let spec = p.spec.clone().unwrap_or_default();
    let status = p.status.clone().unwrap_or_default();
    proto::Pdb {
        namespace: p.metadata.namespace.clone().unwrap_or_default(),
        name: p.metadata.name.clone().unwrap_or_default(),
        match_labels: spec
            .selector
            .as_ref()
            .and_then(|s| s.match_labels.clone())
            .unwrap_or_default(),
        min_available: spec.min_available.as_ref().map(int_or_string),
        max_unavailable: spec.max_unavailable.as_ref().map(int_or_string),
        disruptions_allowed: status.disruptions_allowed,
        current_healthy: status.current_healthy,
        desired_healthy: status.desired_healthy,
        expected_pods: status.expected_pods,
    }
}

/// Whether a label selector matches `labels`. A PDB with no selector matches nothing; an
/// empty selector (`{}`) matches every pod in its namespace (policy/v1 semantics).
/// An unknown operator matches nothing.
pub fn selector_matches(sel: Option<&LabelSelector>, labels: &BTreeMap<String, String>) -> bool {
    let Some(sel) = sel else {
        return false;
    };
    for (k, v) in sel.match_labels.iter().flatten() {
        if labels.get(k) != Some(v) {
            return false;
        }
    }
    for e in sel.match_expressions.iter().flatten() {
        let values = e.values.clone().unwrap_or_default();
        let ok = match e.operator.as_str() {
            "In" => labels.get(&e.key).is_some_and(|v| values.contains(v)),
            "NotIn" => !labels.get(&e.key).is_some_and(|v| values.contains(v)),
            "Exists" => labels.contains_key(&e.key),
            "DoesNotExist" => !labels.contains_key(&e.key),
            _ => false,
        };
        if !ok {
            return false;
        }
    }
    true
}

/// Core v1 Event → protocol event.
pub fn event(e: &core::Event) -> proto::ClusterEvent {
    let at = e
        .last_timestamp
        .as_ref()
        .and_then(time)
        .or_else(|| {
            e.event_time
                .as_ref()
                .and_then(|t| DateTime::from_timestamp(t.0.as_second(), 0))
        })
        .or_else(|| e.first_timestamp.as_ref().and_then(time))
        .or_else(|| created(&e.metadata))
        .unwrap_or_else(Utc::now);
    proto::ClusterEvent {
        involved_kind: e.involved_object.kind.clone().unwrap_or_default(),
        namespace: e.involved_object.namespace.clone().unwrap_or_default(),
        name: e.involved_object.name.clone().unwrap_or_default(),
        reason: e.reason.clone().unwrap_or_default(),
        message: e.message.clone().unwrap_or_default(),
        event_type: e.type_.clone().unwrap_or_else(|| "Normal".to_string()),
        at,
    }
}

/// Events worth sending: every warning, plus the normal ones that describe node and
/// scheduling state changes.
pub fn event_is_interesting(e: &proto::ClusterEvent) -> bool {
    const REASONS: &[&str] = &[
        "NodeNotReady",
        "NodeNotSchedulable",
        "NodeReady",
        "RemovingNode",
        "RegisteredNode",
        "Evicted",
        "Preempted",
        "Killing",
        "TriggeredScaleUp",
        "EvictionThresholdMet",
    ];
    e.event_type == "Warning" || REASONS.contains(&e.reason.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelectorRequirement;
    use serde_json::json;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn node_conversion() {
        let n: core::Node = serde_json::from_value(json!({
            "metadata": {"name": "ip-10-0-0-1", "labels": {
                "node.kubernetes.io/instance-type": "m5.large",
                "topology.kubernetes.io/zone": "us-east-1a",
                "eks.amazonaws.com/capacityType": "SPOT",
                "eks.amazonaws.com/nodegroup": "ng-1"}},
            "spec": {"providerID": "aws:///us-east-1a/i-0abc", "unschedulable": true,
                     "taints": [{"key": "k", "value": "v", "effect": "NoSchedule"}]},
            "status": {"allocatable": {"cpu": "1930m", "memory": "7291Mi", "pods": "29", "nvidia.com/gpu": "1"},
                       "capacity": {"cpu": "2", "memory": "8Gi", "pods": "29"},
                       "conditions": [{"type": "Ready", "status": "True"},
                                      {"type": "MemoryPressure", "status": "False"}]}
        }))
        .unwrap();
        let p = node(&n);
        assert_eq!(p.instance_id.as_deref(), Some("i-0abc"));
        assert_eq!(p.instance_type.as_deref(), Some("m5.large"));
        assert_eq!(p.zone.as_deref(), Some("us-east-1a"));
        assert_eq!(p.capacity_type.as_deref(), Some("spot"));
        assert_eq!(p.node_group.as_deref(), Some("ng-1"));
        assert!(p.ready && p.unschedulable);
        assert_eq!(
            p.allocatable,
            proto::Resources {
                cpu_millis: 1930,
                memory_mib: 7291,
                gpus: 1,
                pods: 29
            }
        );
        assert_eq!(p.capacity.memory_mib, 8192);
        assert_eq!(p.taints[0].effect, "NoSchedule");
        assert_eq!(p.conditions.len(), 2);
    }

    #[test]
    fn pod_conversion() {
        let p: core::Pod = serde_json::from_value(json!({
            "metadata": {"name": "web-7d9f-abc", "namespace": "shop",
                "labels": {"app": "web", "pod-template-hash": "7d9f"},
                "annotations": {"karpenter.sh/do-not-disrupt": "true", "other": "x"},
                "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web-7d9f", "uid": "u", "controller": true}]},
            "spec": {"containers": [
                        {"name": "a", "resources": {"requests": {"cpu": "250m", "memory": "256Mi"}}},
                        {"name": "b", "resources": {"requests": {"cpu": "0.5", "memory": "1Gi"}}}],
                     "initContainers": [{"name": "i", "resources": {"requests": {"cpu": "2", "memory": "64Mi"}}}],
                     "priority": 100},
            "status": {"phase": "Pending", "conditions": [{"type": "PodScheduled", "status": "False", "reason": "Unschedulable", "message": "0/3 nodes are available"}]}
        }))
        .unwrap();
        let owner = controller_owner(&p.metadata).unwrap();
        assert_eq!(owner.kind, "ReplicaSet");
        let labels = p.metadata.labels.clone().unwrap();
        assert_eq!(
            deployment_from_replicaset_name(&owner.name, &labels).as_deref(),
            Some("web")
        );
        let c = pod(
            &p,
            Some(proto::Owner {
                kind: "Deployment".into(),
                name: "web".into(),
            }),
        );
        assert_eq!(c.requests.cpu_millis, 2000, "init container max wins");
        assert_eq!(c.requests.memory_mib, 1280, "containers sum wins");
        assert_eq!(c.phase, proto::PodPhase::Pending);
        assert!(c.do_not_disrupt);
        assert!(!c.daemonset && !c.mirror);
        assert_eq!(
            c.unschedulable_reason.as_deref(),
            Some("Unschedulable: 0/3 nodes are available")
        );
        assert!(!c.annotations.contains_key("other"));
        assert_eq!(c.priority, Some(100));
    }

    #[test]
    fn daemonset_and_mirror_flags() {
        let ds: core::Pod = serde_json::from_value(json!({
            "metadata": {"name": "fluentd-x", "namespace": "kube-system",
                "ownerReferences": [{"apiVersion": "apps/v1", "kind": "DaemonSet", "name": "fluentd", "uid": "u", "controller": true}]},
            "spec": {"containers": []}
        }))
        .unwrap();
        assert!(pod(&ds, controller_owner(&ds.metadata)).daemonset);
        let mirror: core::Pod = serde_json::from_value(json!({
            "metadata": {"name": "kube-proxy-n1", "namespace": "kube-system",
                "annotations": {"kubernetes.io/config.mirror": "abc"}},
            "spec": {"containers": []}
        }))
        .unwrap();
        assert!(pod(&mirror, None).mirror);
    }

    #[test]
    fn selectors() {
        let l = labels(&[("app", "web"), ("tier", "front")]);
        let sel = |v: serde_json::Value| serde_json::from_value::<LabelSelector>(v).unwrap();
        assert!(!selector_matches(None, &l));
        assert!(selector_matches(Some(&sel(json!({}))), &l));
        assert!(selector_matches(
            Some(&sel(json!({"matchLabels": {"app": "web"}}))),
            &l
        ));
        assert!(!selector_matches(
            Some(&sel(json!({"matchLabels": {"app": "db"}}))),
            &l
        ));
        let expr = |op: &str, values: &[&str]| LabelSelector {
            match_labels: None,
            match_expressions: Some(vec![LabelSelectorRequirement {
                key: "tier".into(),
                operator: op.into(),
                values: Some(values.iter().map(|s| s.to_string()).collect()),
            }]),
        };
        assert!(selector_matches(Some(&expr("In", &["front", "x"])), &l));
        assert!(!selector_matches(Some(&expr("NotIn", &["front"])), &l));
        assert!(selector_matches(Some(&expr("Exists", &[])), &l));
        assert!(!selector_matches(Some(&expr("DoesNotExist", &[])), &l));
        assert!(!selector_matches(Some(&expr("Bogus", &[])), &l));
    }
}
