//! The Kubernetes side of a simulated cluster: what an in-cluster agent sees and does.
//!
//! Each simulated node carries its Kubernetes state (cordoned, labels, taints, when it
//! became `Ready`); pods carry labels and the do-not-disrupt annotation; workloads may
//! have a PodDisruptionBudget. The simulated agent (`spot_actors::sim_agent`) reads
//! [`SimCloud::kube_view`] and executes commands through the methods here, exactly as the
//! real agent does through the Kubernetes API: an eviction that would take a workload
//! below its budget is refused ([`KubeError::PdbBlocked`], the API's 429), an evicted pod
//! goes `Pending` and is bound again by the simulated scheduler once a Ready,
//! schedulable node has room.
//!
//! PDBs and do-not-disrupt marks are derived from stable hashes of the workload names,
//! not from the world's random stream, so adding them changed no generated world.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use super::noise::str_key;
use super::world::{SimPod, World};
use super::{Method, SimCloud};
use crate::error::{CloudError, ResourceKind, Result};
use crate::types::*;

/// A launched instance registers as a node and turns `Ready` this long after launch.
pub const NODE_READY_AFTER: Duration = Duration::seconds(3);
/// Label carrying the workload name on every simulated pod (PDB selectors use it).
pub const APP_LABEL: &str = "app.kubernetes.io/name";
/// The annotation the simulator sets on do-not-disrupt pods.
pub const DO_NOT_DISRUPT: &str = "karpenter.sh/do-not-disrupt";

/// Kubernetes-level state of one node.
#[derive(Debug, Clone, PartialEq)]
pub struct NodeKube {
    /// When the kubelet reported `Ready`.
    pub ready_at: DateTime<Utc>,
    /// `spec.unschedulable` (cordoned).
    pub unschedulable: bool,
    /// Labels set through the agent (on top of the well-known ones).
    pub labels: BTreeMap<String, String>,
    pub taints: Vec<KubeTaint>,
    /// The Node object was deleted (the instance may still run until terminated).
    pub deleted: bool,
}

impl NodeKube {
    /// A node launched at `launch_time`, Ready [`NODE_READY_AFTER`] later.
    pub fn joining(launch_time: DateTime<Utc>) -> Self {
        NodeKube {
            ready_at: launch_time + NODE_READY_AFTER,
            unschedulable: false,
            labels: BTreeMap::new(),
            taints: Vec::new(),
            deleted: false,
        }
    }

    pub fn is_ready(&self, now: DateTime<Utc>) -> bool {
        !self.deleted && now >= self.ready_at
    }

    /// Whether the scheduler may bind new pods here.
    pub fn accepts_pods(&self, now: DateTime<Utc>) -> bool {
        self.is_ready(now)
            && !self.unschedulable
            && !self
                .taints
                .iter()
                .any(|t| t.effect == "NoSchedule" || t.effect == "NoExecute")
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KubeTaint {
    pub key: String,
    pub value: Option<String>,
    pub effect: String,
}

/// One node as the agent sees it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KubeNodeView {
    pub name: String,
    pub instance_id: String,
    pub instance_type: String,
    pub az: Az,
    pub lifecycle: Lifecycle,
    pub node_group: Option<String>,
    pub allocatable_cpu_millicores: u32,
    pub allocatable_memory_mib: u32,
    pub max_pods: u32,
    pub ready: bool,
    pub unschedulable: bool,
    pub labels: BTreeMap<String, String>,
    pub taints: Vec<KubeTaint>,
    pub created_at: DateTime<Utc>,
}

/// One pod as the agent sees it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KubePodView {
    pub pod: Pod,
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
    /// `namespace/name` of the PDBs selecting it.
    pub pdbs: Vec<String>,
}

/// One PodDisruptionBudget with its live status.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KubePdbView {
    pub namespace: String,
    pub name: String,
    pub match_labels: BTreeMap<String, String>,
    pub min_available: u32,
    pub disruptions_allowed: i32,
    pub current_healthy: i32,
    pub desired_healthy: i32,
    pub expected_pods: i32,
}

/// A cluster as its agent sees it at one time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KubeView {
    pub cluster: String,
    pub kubernetes_version: String,
    pub collected_at: DateTime<Utc>,
    pub nodes: Vec<KubeNodeView>,
    pub pods: Vec<KubePodView>,
    pub pdbs: Vec<KubePdbView>,
}

/// Kubernetes API failures of the simulated cluster.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum KubeError {
    #[error("{0}")]
    Cloud(#[from] CloudError),
    /// The Eviction API's 429: evicting would violate the budget.
    #[error("Cannot evict pod as it would violate the pod's disruption budget {pdb}")]
    PdbBlocked { pdb: String },
}

/// A PodDisruptionBudget created by a user (a test, or a demo of a drain that cannot
/// proceed): an empty `match_labels` selects every pod of the namespace.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CustomPdb {
    pub namespace: String,
    pub name: String,
    pub match_labels: BTreeMap<String, String>,
    /// `None`: every selected pod must stay available (no eviction is ever allowed).
    pub min_available: Option<u32>,
}

/// Workloads (namespace, kind, name) that have a PDB, with `minAvailable = replicas - 1`.
fn has_pdb(ns: &str, workload: &str, kind: WorkloadKind) -> bool {
    matches!(kind, WorkloadKind::Deployment | WorkloadKind::StatefulSet)
        && str_key(&format!("pdb/{ns}/{workload}")) % 3 == 0
}

fn is_do_not_disrupt(p: &SimPod) -> bool {
    p.pod
        .owner
        .as_ref()
        .is_some_and(|o| o.kind == WorkloadKind::Job)
        && p.key % 2 == 0
}

fn pod_labels(p: &SimPod) -> BTreeMap<String, String> {
    let mut l = BTreeMap::new();
    if let Some(o) = &p.pod.owner {
        l.insert(APP_LABEL.to_string(), o.name.clone());
    }
    l
}

fn max_pods_for(instance_type: &str) -> u32 {
    super::catalog::Catalog::embedded()
        .get(instance_type)
        .map(|t| {
            // ENI-based limit of the AWS VPC CNI: enis × (ips per eni − 1) + 2.
            let vcpu = t.vcpu.max(1);
            let enis = (vcpu / 2).clamp(2, 15);
            let ips = (vcpu * 2).clamp(4, 50);
            (enis * (ips - 1) + 2).min(737)
        })
        .unwrap_or(110)
}

impl World {
    fn cluster_pods_mut(&mut self, cluster: &str) -> Result<&mut Vec<SimPod>> {
        self.clusters
            .get_mut(cluster)
            .map(|c| &mut c.pods)
            .ok_or_else(|| CloudError::not_found(ResourceKind::EksCluster, cluster))
    }

    fn node_mut(&mut self, cluster: &str, node: &str) -> Result<&mut super::world::SimNode> {
        self.instances
            .values_mut()
            .filter(|i| i.inst.cluster.as_deref() == Some(cluster) && i.inst.state.is_billed())
            .filter_map(|i| i.node.as_mut())
            .find(|n| n.name == node && !n.kube.deleted)
            .ok_or_else(|| CloudError::not_found(ResourceKind::Instance, node))
    }

    fn ready_nodes(&self, cluster: &str, now: DateTime<Utc>) -> std::collections::HashSet<String> {
        self.instances
            .values()
            .filter(|i| {
                i.inst.cluster.as_deref() == Some(cluster) && i.inst.state == InstanceState::Running
            })
            .filter_map(|i| i.node.as_ref())
            .filter(|n| n.kube.is_ready(now))
            .map(|n| n.name.clone())
            .collect()
    }

    fn pdbs(&self, cluster: &str, now: DateTime<Utc>) -> Vec<KubePdbView> {
        let Some(c) = self.clusters.get(cluster) else {
            return Vec::new();
        };
        let ready = self.ready_nodes(cluster, now);
        let mut by_workload: BTreeMap<(String, String), (i32, i32)> = BTreeMap::new();
        for p in &c.pods {
            let Some(o) = &p.pod.owner else { continue };
            if !has_pdb(&p.pod.namespace, &o.name, o.kind) {
                continue;
            }
            let e = by_workload
                .entry((p.pod.namespace.clone(), o.name.clone()))
                .or_default();
            e.0 += 1;
            if p.pod.phase == PodPhase::Running
                && p.pod.node_name.as_ref().is_some_and(|n| ready.contains(n))
            {
                e.1 += 1;
            }
        }
        let custom: Vec<KubePdbView> = self
            .custom_pdbs
            .get(cluster)
            .map(|list| {
                list.iter()
                    .map(|b| {
                        let selected = c.pods.iter().filter(|p| {
                            let labels = pod_labels(p);
                            p.pod.namespace == b.namespace
                                && b.match_labels.iter().all(|(k, v)| labels.get(k) == Some(v))
                        });
                        let (mut expected, mut healthy) = (0i32, 0i32);
                        for p in selected {
                            expected += 1;
                            if p.pod.phase == PodPhase::Running
                                && p.pod.node_name.as_ref().is_some_and(|n| ready.contains(n))
                            {
                                healthy += 1;
                            }
                        }
                        let min = b.min_available.map_or(expected, |m| m as i32);
                        KubePdbView {
                            namespace: b.namespace.clone(),
                            name: b.name.clone(),
                            match_labels: b.match_labels.clone(),
                            min_available: min.max(0) as u32,
                            disruptions_allowed: (healthy - min).max(0),
                            current_healthy: healthy,
                            desired_healthy: min,
                            expected_pods: expected,
                        }
                    })
                    .collect()
            })
            .unwrap_or_default();
        by_workload
            .into_iter()
            .map(|((ns, workload), (expected, healthy))| {
                let min = (expected - 1).max(0);
                KubePdbView {
                    namespace: ns,
                    name: format!("{workload}-pdb"),
                    match_labels: BTreeMap::from([(APP_LABEL.to_string(), workload)]),
                    min_available: min as u32,
                    disruptions_allowed: (healthy - min).max(0),
                    current_healthy: healthy,
                    desired_healthy: min,
                    expected_pods: expected,
                }
            })
            .chain(custom)
            .collect()
    }

    pub(crate) fn kube_view(
        &mut self,
        cluster: &str,
        version: String,
        now: DateTime<Utc>,
    ) -> Result<KubeView> {
        self.schedule_pending(cluster, now);
        let c = self
            .clusters
            .get(cluster)
            .ok_or_else(|| CloudError::not_found(ResourceKind::EksCluster, cluster))?;
        let nodes = self
            .instances
            .values()
            .filter(|i| i.inst.cluster.as_deref() == Some(cluster) && i.inst.state.is_billed())
            .filter_map(|i| {
                let n = i.node.as_ref().filter(|n| !n.kube.deleted)?;
                let mut labels = BTreeMap::from([
                    ("kubernetes.io/hostname".to_string(), n.name.clone()),
                    (
                        "node.kubernetes.io/instance-type".to_string(),
                        i.inst.instance_type.clone(),
                    ),
                    ("topology.kubernetes.io/zone".to_string(), i.inst.az.clone()),
                    (
                        "eks.amazonaws.com/capacityType".to_string(),
                        match i.inst.lifecycle {
                            Lifecycle::Spot => "SPOT".to_string(),
                            Lifecycle::OnDemand => "ON_DEMAND".to_string(),
                        },
                    ),
                ]);
                if let Some(ng) = &n.node_group {
                    labels.insert("eks.amazonaws.com/nodegroup".to_string(), ng.clone());
                }
                labels.extend(n.kube.labels.clone());
                Some(KubeNodeView {
                    name: n.name.clone(),
                    instance_id: i.inst.id.clone(),
                    instance_type: i.inst.instance_type.clone(),
                    az: i.inst.az.clone(),
                    lifecycle: i.inst.lifecycle,
                    node_group: n.node_group.clone(),
                    allocatable_cpu_millicores: n.alloc_cpu,
                    allocatable_memory_mib: n.alloc_mem,
                    max_pods: max_pods_for(&i.inst.instance_type),
                    ready: i.inst.state == InstanceState::Running && n.kube.is_ready(now),
                    unschedulable: n.kube.unschedulable,
                    labels,
                    taints: n.kube.taints.clone(),
                    created_at: i.inst.launch_time,
                })
            })
            .collect();
        let pdbs = self.pdbs(cluster, now);
        let pods = c
            .pods
            .iter()
            .map(|p| {
                let labels = pod_labels(p);
                let pdb_names = pdbs
                    .iter()
                    .filter(|b| {
                        b.namespace == p.pod.namespace
                            && b.match_labels.iter().all(|(k, v)| labels.get(k) == Some(v))
                    })
                    .map(|b| format!("{}/{}", b.namespace, b.name))
                    .collect();
                let mut annotations = BTreeMap::new();
                if is_do_not_disrupt(p) {
                    annotations.insert(DO_NOT_DISRUPT.to_string(), "true".to_string());
                }
                KubePodView {
                    pod: p.pod.clone(),
                    labels,
                    annotations,
                    pdbs: pdb_names,
                }
            })
            .collect();
        Ok(KubeView {
            cluster: cluster.to_string(),
            kubernetes_version: version,
            collected_at: now,
            nodes,
            pods,
            pdbs,
        })
    }

    pub(crate) fn set_unschedulable(
        &mut self,
        cluster: &str,
        node: &str,
        unschedulable: bool,
    ) -> Result<()> {
        self.node_mut(cluster, node)?.kube.unschedulable = unschedulable;
        Ok(())
    }

    pub(crate) fn evict(
        &mut self,
        cluster: &str,
        namespace: &str,
        pod: &str,
        now: DateTime<Utc>,
    ) -> std::result::Result<(), KubeError> {
        let pdbs = self.pdbs(cluster, now);
        let pods = self.cluster_pods_mut(cluster)?;
        let idx = pods
            .iter()
            .position(|p| p.pod.namespace == namespace && p.pod.name == pod)
            .ok_or_else(|| {
                CloudError::not_found(ResourceKind::Pod, format!("{namespace}/{pod}"))
            })?;
        let labels = pod_labels(&pods[idx]);
        if let Some(b) = pdbs.iter().find(|b| {
            b.namespace == namespace
                && b.match_labels.iter().all(|(k, v)| labels.get(k) == Some(v))
                && b.disruptions_allowed <= 0
        }) {
            // A pod that is not running does not count against its budget.
            if pods[idx].pod.phase == PodPhase::Running {
                return Err(KubeError::PdbBlocked {
                    pdb: format!("{}/{}", b.namespace, b.name),
                });
            }
        }
        let p = &mut pods[idx];
        if p.pod
            .owner
            .as_ref()
            .is_some_and(|o| o.kind == WorkloadKind::DaemonSet)
        {
            // DaemonSet pods are recreated on the same node; the agent never evicts them.
            return Ok(());
        }
        p.pod.node_name = None;
        p.pod.phase = PodPhase::Pending;
        self.schedule_pending(cluster, now);
        Ok(())
    }

    pub(crate) fn label_node(
        &mut self,
        cluster: &str,
        node: &str,
        labels: &BTreeMap<String, Option<String>>,
    ) -> Result<()> {
        let n = self.node_mut(cluster, node)?;
        for (k, v) in labels {
            match v {
                Some(v) => {
                    n.kube.labels.insert(k.clone(), v.clone());
                }
                None => {
                    n.kube.labels.remove(k);
                }
            }
        }
        Ok(())
    }

    pub(crate) fn taint_node(
        &mut self,
        cluster: &str,
        node: &str,
        add: &[KubeTaint],
        remove: &[KubeTaint],
    ) -> Result<()> {
        let n = self.node_mut(cluster, node)?;
        n.kube.taints.retain(|t| {
            !remove
                .iter()
                .any(|r| r.key == t.key && r.effect == t.effect)
        });
        for t in add {
            n.kube
                .taints
                .retain(|x| !(x.key == t.key && x.effect == t.effect));
            n.kube.taints.push(t.clone());
        }
        Ok(())
    }

    pub(crate) fn delete_node(
        &mut self,
        cluster: &str,
        node: &str,
        now: DateTime<Utc>,
    ) -> Result<()> {
        let n = self.node_mut(cluster, node)?;
        n.kube.deleted = true;
        let name = n.name.clone();
        // Pods bound to a deleted node are garbage-collected: controllers recreate them.
        let pods = self.cluster_pods_mut(cluster)?;
        pods.retain(|p| {
            !(p.pod.node_name.as_deref() == Some(name.as_str())
                && p.pod.owner.as_ref().map(|o| o.kind) == Some(WorkloadKind::DaemonSet))
        });
        for p in pods
            .iter_mut()
            .filter(|p| p.pod.node_name.as_deref() == Some(name.as_str()))
        {
            p.pod.node_name = None;
            p.pod.phase = PodPhase::Pending;
        }
        self.schedule_pending(cluster, now);
        Ok(())
    }

    /// Sets the requests of every replica of a workload (new pods roll out at once).
    pub(crate) fn patch_requests(
        &mut self,
        cluster: &str,
        namespace: &str,
        kind: WorkloadKind,
        workload: &str,
        cpu_millicores: Option<u32>,
        memory_mib: Option<u32>,
    ) -> Result<usize> {
        let pods = self.cluster_pods_mut(cluster)?;
        let mut n = 0;
        for p in pods.iter_mut().filter(|p| {
            p.pod.namespace == namespace
                && p.pod
                    .owner
                    .as_ref()
                    .is_some_and(|o| o.kind == kind && o.name == workload)
        }) {
            if let Some(c) = cpu_millicores {
                p.pod.cpu_request_millicores = c;
            }
            if let Some(m) = memory_mib {
                p.pod.memory_request_mib = m;
            }
            n += 1;
        }
        if n == 0 {
            return Err(CloudError::not_found(
                ResourceKind::Pod,
                format!("{namespace}/{kind:?}/{workload}"),
            ));
        }
        Ok(n)
    }
}

impl SimCloud {
    /// The cluster as its agent sees it now (binds pending pods first, as the scheduler
    /// would have meanwhile).
    pub fn kube_view(&self, cluster: &str) -> Result<KubeView> {
        let (mut s, now) = self.enter(Method::KubeRead)?;
        let version = s.world.describe_cluster(cluster)?.version;
        s.world.kube_view(cluster, version, now)
    }

    /// Cordons (`true`) or uncordons a node.
    pub fn set_unschedulable(&self, cluster: &str, node: &str, unschedulable: bool) -> Result<()> {
        let (mut s, _) = self.enter(Method::KubeWrite)?;
        s.world.set_unschedulable(cluster, node, unschedulable)
    }

    /// The Eviction API for one pod.
    pub fn evict(
        &self,
        cluster: &str,
        namespace: &str,
        pod: &str,
    ) -> std::result::Result<(), KubeError> {
        let (mut s, now) = self.enter(Method::KubeWrite)?;
        s.world.evict(cluster, namespace, pod, now)
    }

    pub fn label_node(
        &self,
        cluster: &str,
        node: &str,
        labels: &BTreeMap<String, Option<String>>,
    ) -> Result<()> {
        let (mut s, _) = self.enter(Method::KubeWrite)?;
        s.world.label_node(cluster, node, labels)
    }

    pub fn taint_node(
        &self,
        cluster: &str,
        node: &str,
        add: &[KubeTaint],
        remove: &[KubeTaint],
    ) -> Result<()> {
        let (mut s, _) = self.enter(Method::KubeWrite)?;
        s.world.taint_node(cluster, node, add, remove)
    }

    /// Deletes the Node object.
    pub fn delete_node(&self, cluster: &str, node: &str) -> Result<()> {
        let (mut s, now) = self.enter(Method::KubeWrite)?;
        s.world.delete_node(cluster, node, now)
    }

    /// Creates a PodDisruptionBudget in the simulated cluster (replacing one of the same
    /// namespace and name).
    pub fn create_pdb(&self, cluster: &str, pdb: CustomPdb) -> Result<()> {
        let (mut s, _) = self.enter(Method::KubeWrite)?;
        if !s.world.clusters.contains_key(cluster) {
            return Err(CloudError::not_found(ResourceKind::EksCluster, cluster));
        }
        let list = s.world.custom_pdbs.entry(cluster.to_string()).or_default();
        list.retain(|b| !(b.namespace == pdb.namespace && b.name == pdb.name));
        list.push(pdb);
        Ok(())
    }

    /// Rightsizing: sets a workload's requests; returns how many pods changed.
    pub fn patch_requests(
        &self,
        cluster: &str,
        namespace: &str,
        kind: WorkloadKind,
        workload: &str,
        cpu_millicores: Option<u32>,
        memory_mib: Option<u32>,
    ) -> Result<usize> {
        let (mut s, _) = self.enter(Method::KubeWrite)?;
        s.world.patch_requests(
            cluster,
            namespace,
            kind,
            workload,
            cpu_millicores,
            memory_mib,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::{SimClock, SimConfig};
    use crate::Cloud;

    fn sim() -> (SimCloud, SimClock) {
        let clock = SimClock::manual(SimClock::default_start());
        let mut cfg = SimConfig::for_account("123456789012", 42);
        cfg.clock = clock.clone();
        (SimCloud::new(cfg).expect("sim"), clock)
    }

    fn first_cluster(s: &SimCloud) -> String {
        let st = s.lock().expect("lock");
        st.world.cluster_names()[0].clone()
    }

    #[test]
    fn the_view_has_ready_nodes_pdbs_and_do_not_disrupt_pods() {
        let (s, _) = sim();
        let c = first_cluster(&s);
        let v = s.kube_view(&c).expect("view");
        assert!(!v.nodes.is_empty());
        assert!(v.nodes.iter().all(|n| n.ready && !n.unschedulable));
        assert!(v.nodes.iter().all(|n| n.max_pods >= 8));
        assert!(!v.pdbs.is_empty(), "some workloads have budgets");
        for b in &v.pdbs {
            assert_eq!(b.desired_healthy, b.expected_pods - 1);
            let members = v
                .pods
                .iter()
                .filter(|p| p.pdbs.contains(&format!("{}/{}", b.namespace, b.name)))
                .count() as i32;
            assert_eq!(members, b.expected_pods);
        }
    }

    #[test]
    fn cordon_keeps_new_pods_off_and_eviction_respects_the_budget() {
        let (s, _) = sim();
        let c = first_cluster(&s);
        let v = s.kube_view(&c).expect("view");
        let b = v
            .pdbs
            .iter()
            .find(|b| b.expected_pods >= 2)
            .expect("a budget");
        let members: Vec<&KubePodView> = v
            .pods
            .iter()
            .filter(|p| p.pdbs.contains(&format!("{}/{}", b.namespace, b.name)))
            .collect();
        // Cordon every node: evicted pods cannot land anywhere.
        for n in &v.nodes {
            s.set_unschedulable(&c, &n.name, true).expect("cordon");
        }
        let first = &members[0].pod;
        s.evict(&c, &first.namespace, &first.name)
            .expect("first eviction allowed");
        let second = &members[1].pod;
        let err = s.evict(&c, &second.namespace, &second.name).unwrap_err();
        assert!(matches!(err, KubeError::PdbBlocked { .. }), "{err:?}");
        let v2 = s.kube_view(&c).expect("view");
        let evicted = v2
            .pods
            .iter()
            .find(|p| p.pod.name == first.name)
            .expect("pod");
        assert_eq!(evicted.pod.phase, PodPhase::Pending);
        // Uncordon: the pending pod binds again and the budget allows another eviction.
        for n in &v.nodes {
            s.set_unschedulable(&c, &n.name, false).expect("uncordon");
        }
        let v3 = s.kube_view(&c).expect("view");
        let back = v3
            .pods
            .iter()
            .find(|p| p.pod.name == first.name)
            .expect("pod");
        assert_eq!(back.pod.phase, PodPhase::Running);
        s.evict(&c, &second.namespace, &second.name)
            .expect("allowed again");
    }

    #[test]
    fn a_launched_node_is_ready_only_after_it_joins() {
        let (s, clock) = sim();
        let c = first_cluster(&s);
        let before = s.kube_view(&c).expect("view").nodes.len();
        let req = LaunchRequest {
            instance_type: "m5.large".into(),
            lifecycle: Lifecycle::OnDemand,
            az: None,
            subnet_id: None,
            count: 1,
            client_token: "t-1".into(),
            tags: Tags::from([(TAG_EKS_CLUSTER.to_string(), c.clone())]),
            asg_name: None,
        };
        futures_lite_block(s.launch_capacity(&req, false)).expect("launch");
        let v = s.kube_view(&c).expect("view");
        assert_eq!(v.nodes.len(), before + 1);
        assert_eq!(v.nodes.iter().filter(|n| !n.ready).count(), 1);
        clock.advance(std::time::Duration::from_secs(5));
        let v = s.kube_view(&c).expect("view");
        assert!(v.nodes.iter().all(|n| n.ready));
    }

    fn futures_lite_block<F: std::future::Future>(f: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("runtime")
            .block_on(f)
    }
}
