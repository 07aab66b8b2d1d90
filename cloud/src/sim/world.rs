//! The simulated account: instances, volumes, snapshots, Auto Scaling groups, EKS
//! clusters with nodes and pods, and the spot events that happen to them over time.
//!
//! The inventory is generated once from a seeded ChaCha RNG so that the same seed gives
//! the same account. It is shaped like the waste the product looks for: dev and staging
//! clusters that idle at night and at weekends, clusters whose pods request far more than
//! they use, on-demand node groups that could run on spot, instances in no cluster,
//! unattached volumes and snapshots whose volume is gone.
//!
//! Time moves through [`World::advance_to`]: at the start of every hour the world decides
//! which running spot instances will be interrupted during the *next* hour (so that the
//! rebalance recommendation, typically 10–20 minutes ahead, can be issued in time), then
//! delivers rebalance recommendations, two-minute notices and reclaims as their times come.
//! Auto Scaling groups replace lost instances, and pods of lost nodes go pending until a
//! node with room appears.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};

use chrono::{DateTime, Duration, Utc};
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::catalog::{az_index, az_name, Catalog, CatalogType};
use super::market::{hour_of, hour_start, interruption_probability, spot_slots, Market};
use super::noise::{mix, normal, str_key, unit};
use super::templates::{CLUSTER_TEMPLATES, K8S_ALPHABET, UNREGISTERED, WORKLOADS};
use super::usage::UsagePattern;
use super::SimProfile;
use crate::error::{CloudError, ResourceKind, Result};
use crate::types::*;

/// Terminated instances stay visible this long, as in EC2.
const TERMINATED_VISIBLE_FOR: Duration = Duration::hours(1);
/// Spot events are kept this long for `poll_events`.
const EVENT_RETENTION: Duration = Duration::days(7);
/// Usage samples are generated on this grid; finer steps repeat values.
const USAGE_GRID_SECONDS: i64 = 300;
/// Upper bound on samples per `pod_usage` call.
const MAX_USAGE_SAMPLES: usize = 20_000;
/// Every simulated instance boots from this device (DeleteOnTermination).
pub const SIM_ROOT_DEVICE: &str = "/dev/xvda";

#[derive(Debug, Clone)]
pub(crate) struct SimNode {
    pub(crate) name: String,
    pub(crate) node_group: Option<String>,
    pub(crate) alloc_cpu: u32,
    pub(crate) alloc_mem: u32,
    /// Kubernetes-level state (cordon, labels, taints, readiness): see `kube.rs`.
    pub(crate) kube: super::kube::NodeKube,
}

#[derive(Debug, Clone)]
pub(crate) struct SimInstance {
    pub(crate) inst: Instance,
    pub(crate) terminated_at: Option<DateTime<Utc>>,
    pub(crate) node: Option<SimNode>,
}

#[derive(Debug, Clone)]
struct SimAsg {
    name: String,
    min: u32,
    max: u32,
    desired: u32,
    types: Vec<String>,
    on_demand_base: u32,
    on_demand_pct: u32,
    tags: Tags,
    cluster: Option<String>,
    node_group: Option<String>,
}

#[derive(Debug, Clone)]
struct SimNodeGroup {
    name: String,
    asg_name: String,
    types: Vec<String>,
    capacity_type: Lifecycle,
}

#[derive(Debug, Clone)]
pub(crate) struct SimPod {
    pub(crate) pod: Pod,
    /// Average used / requested, before the weekly pattern.
    base_cpu: f64,
    base_mem: f64,
    pub(crate) key: u64,
}

#[derive(Debug, Clone)]
pub(crate) struct SimCluster {
    name: String,
    arn: String,
    version: String,
    created_at: DateTime<Utc>,
    tags: Tags,
    pattern: UsagePattern,
    node_groups: Vec<SimNodeGroup>,
    pub(crate) pods: Vec<SimPod>,
}

#[derive(Debug, Clone)]
enum Pending {
    Rebalance(String),
    Notice(String),
    Reclaim(String),
}

#[derive(Debug, Clone)]
struct LaunchRecord {
    request: LaunchRequest,
    instance_ids: Vec<String>,
}

/// The simulated account.
#[derive(Debug)]
pub struct World {
    seed: u64,
    account_id: String,
    region: String,
    pub(crate) instances: BTreeMap<String, SimInstance>,
    volumes: BTreeMap<String, Volume>,
    snapshots: BTreeMap<String, Snapshot>,
    /// Images that are registered; their snapshots cannot be deleted.
    registered_amis: HashSet<String>,
    asgs: BTreeMap<String, SimAsg>,
    pub(crate) clusters: BTreeMap<String, SimCluster>,
    events: VecDeque<SpotEvent>,
    pending: BTreeMap<(i64, u64), Pending>,
    /// Interruption draws exist for every hour up to and including this one.
    decided_through: i64,
    seq: u64,
    rng: ChaCha8Rng,
    ip_counter: u32,
    launches: HashMap<String, LaunchRecord>,
    /// PodDisruptionBudgets created through [`crate::sim::SimCloud::create_pdb`], per cluster.
    pub(crate) custom_pdbs: BTreeMap<String, Vec<super::kube::CustomPdb>>,
    /// Snapshots taken through the port that are still `pending`, with when they complete.
    pending_snapshots: BTreeMap<String, DateTime<Utc>>,
    /// How long a snapshot taken through the port stays `pending` (simulated time).
    pub(crate) snapshot_completion: Duration,
    /// Ids of deleted snapshots: a new snapshot never reuses one.
    retired_snapshots: HashSet<String>,
}

/// How long a snapshot taken through the port stays `pending` unless a test changes it
/// (EBS takes minutes to hours; the demo keeps it short).
pub const SNAPSHOT_COMPLETION_SECS: i64 = 2;

fn rand_hex(rng: &mut ChaCha8Rng, len: usize) -> String {
    (0..len)
        .map(|_| {
            let d = rng.gen_range(0..16u32);
            char::from_digit(d, 16).unwrap_or('0')
        })
        .collect()
}

fn k8s_suffix(rng: &mut ChaCha8Rng, len: usize) -> String {
    (0..len)
        .map(|_| char::from(K8S_ALPHABET[rng.gen_range(0..K8S_ALPHABET.len())]))
        .collect()
}

/// Allocatable resources of a node, after kubelet and system reservations (EKS AMI
/// formulas: CPU 6% of the first core, 1% of the second, 0.5% of cores 3–4, 0.25%
/// above; memory 255 MiB + 11 MiB per schedulable pod, plus a 100 MiB eviction threshold).
fn allocatable(t: &CatalogType) -> (u32, u32) {
    let cores = t.vcpu as f64;
    let mut reserved = 60.0;
    if cores > 1.0 {
        reserved += 10.0;
    }
    if cores > 2.0 {
        reserved += 5.0 * (cores.min(4.0) - 2.0);
    }
    if cores > 4.0 {
        reserved += 2.5 * (cores - 4.0);
    }
    let cpu = (t.vcpu * 1000).saturating_sub(reserved as u32);
    let max_pods = (t.vcpu * 15).clamp(8, 110);
    let mem = (t.memory_mib as u32).saturating_sub(255 + 11 * max_pods + 100);
    (cpu, mem)
}

/// Picks the pool (type, AZ index) for one more instance of a group. Spot follows EC2's
/// capacity-optimized allocation: the pool with the most spare capacity, with a mild
/// preference for balancing AZs; pools that cannot serve a launch are skipped. On-demand
/// balances AZs. `jitter` (in [0, 1)) breaks ties; pass a constant for a fixed choice.
fn choose_pool(
    types: &[String],
    per_az: &[usize; 3],
    lifecycle: Lifecycle,
    now: DateTime<Utc>,
    market: &mut Market,
    jitter: &mut dyn FnMut() -> f64,
) -> Option<(String, usize)> {
    let catalog = Catalog::embedded();
    let mut best: Option<(f64, String, usize)> = None;
    for ty in types {
        let (Some(t), Some(ti)) = (catalog.get(ty), catalog.index_of(ty)) else {
            continue;
        };
        for a in (0..3).filter(|&a| t.offered_in(a)) {
            let balance = per_az[a] as f64;
            let score = match lifecycle {
                Lifecycle::Spot => {
                    let capacity = market.at(market.pool_index(ti, a), now).capacity;
                    if spot_slots(capacity) == 0 {
                        continue;
                    }
                    capacity - 0.1 * balance + 0.15 * jitter()
                }
                Lifecycle::OnDemand => -balance + 0.5 * jitter(),
            };
            if best.as_ref().is_none_or(|b| score > b.0) {
                best = Some((score, ty.clone(), a));
            }
        }
    }
    best.map(|(_, ty, a)| (ty, a))
}

fn tag(k: &str, v: &str) -> (String, String) {
    (k.to_string(), v.to_string())
}

impl World {
    /// Builds the account. Deterministic in (seed, account_id, region, profile, now).
    pub fn generate(
        seed: u64,
        account_id: &str,
        region: &str,
        profile: &SimProfile,
        now: DateTime<Utc>,
        market: &mut Market,
    ) -> World {
        let mut w = World {
            seed,
            account_id: account_id.to_string(),
            region: region.to_string(),
            instances: BTreeMap::new(),
            volumes: BTreeMap::new(),
            snapshots: BTreeMap::new(),
            registered_amis: HashSet::new(),
            asgs: BTreeMap::new(),
            clusters: BTreeMap::new(),
            events: VecDeque::new(),
            pending: BTreeMap::new(),
            decided_through: hour_of(now) + 1,
            seq: 0,
            rng: ChaCha8Rng::seed_from_u64(mix(seed, 0x52_55_4e)),
            ip_counter: 0x00_01_00,
            launches: HashMap::new(),
            custom_pdbs: BTreeMap::new(),
            pending_snapshots: BTreeMap::new(),
            snapshot_completion: Duration::seconds(SNAPSHOT_COMPLETION_SECS),
            retired_snapshots: HashSet::new(),
        };
        let mut g = ChaCha8Rng::seed_from_u64(mix(seed, 0x57_4f_52_4c_44));
        let (clusters, nodes_per_cluster, unregistered) = match profile {
            SimProfile::Empty => (0, Vec::new(), 0),
            SimProfile::Demo {
                clusters,
                unregistered_instances,
            } => {
                let sizes = (0..*clusters).map(|_| g.gen_range(5..=12)).collect();
                (*clusters, sizes, *unregistered_instances)
            }
            SimProfile::Scale {
                instances,
                clusters,
            } => {
                let clusters = (*clusters).max(1).min(*instances.max(&1));
                let unregistered = instances / 20;
                let nodes = instances.saturating_sub(unregistered);
                let sizes = (0..clusters)
                    .map(|i| nodes / clusters + usize::from(i < nodes % clusters))
                    .collect();
                (clusters, sizes, unregistered)
            }
            SimProfile::Cleanup { instances, .. } => {
                // Load for the clean-up batches: snapshots complete at once.
                w.snapshot_completion = Duration::zero();
                (0, Vec::new(), *instances)
            }
        };
        for (i, nodes) in nodes_per_cluster.iter().enumerate().take(clusters) {
            w.generate_cluster(&mut g, i, *nodes, now, market);
        }
        w.generate_unregistered(&mut g, unregistered, now);
        let n = w.instances.len();
        let (unattached, orphans) = match profile {
            SimProfile::Cleanup {
                volumes, snapshots, ..
            } => (*volumes, *snapshots),
            _ => ((n * 8 / 100).max(3), (n * 6 / 100).max(3)),
        };
        w.generate_storage(&mut g, now, unattached, orphans);
        w
    }

    fn next_ip(&mut self) -> String {
        loop {
            self.ip_counter = self.ip_counter.wrapping_add(1) & 0x00ff_ffff;
            let last = self.ip_counter & 0xff;
            if last != 0 && last != 255 {
                break;
            }
        }
        let c = self.ip_counter;
        format!("10.{}.{}.{}", (c >> 16) & 0xff, (c >> 8) & 0xff, c & 0xff)
    }

    fn generate_cluster(
        &mut self,
        g: &mut ChaCha8Rng,
        index: usize,
        nodes: usize,
        now: DateTime<Utc>,
        market: &mut Market,
    ) {
        let Some(tpl) = CLUSTER_TEMPLATES.get(index % CLUSTER_TEMPLATES.len()) else {
            return;
        };
        let round = index / CLUSTER_TEMPLATES.len();
        let name = if round == 0 {
            tpl.base_name.to_string()
        } else {
            format!("{}-{}", tpl.base_name, round + 1)
        };
        let created_at = now - Duration::days(g.gen_range(30..700));
        let tags: Tags = [tag("environment", tpl.env), tag("team", "platform")].into();
        let cluster = SimCluster {
            arn: format!(
                "arn:aws:eks:{}:{}:cluster/{}",
                self.region, self.account_id, name
            ),
            name: name.clone(),
            version: tpl.version.to_string(),
            created_at,
            tags,
            pattern: tpl.pattern,
            node_groups: Vec::new(),
            pods: Vec::new(),
        };
        self.clusters.insert(name.clone(), cluster);

        // Split the cluster's nodes over its node groups by weight, at least one each.
        let total_weight: usize = tpl
            .node_groups
            .iter()
            .map(|n| n.weight)
            .sum::<usize>()
            .max(1);
        let mut remaining = nodes;
        let ng_count = tpl.node_groups.len();
        for (k, ng) in tpl.node_groups.iter().enumerate() {
            let share = if k + 1 == ng_count {
                remaining
            } else {
                (nodes * ng.weight / total_weight).max(1).min(remaining)
            };
            remaining = remaining.saturating_sub(share);
            let asg_name = format!(
                "eks-{}-{}-{}-{}-{}-{}",
                ng.name,
                rand_hex(g, 8),
                rand_hex(g, 4),
                rand_hex(g, 4),
                rand_hex(g, 4),
                rand_hex(g, 12)
            );
            let desired = share as u32;
            let asg_tags: Tags = [
                tag(TAG_EKS_CLUSTER, &name),
                tag(TAG_EKS_NODEGROUP, ng.name),
                tag(&format!("{TAG_K8S_CLUSTER_PREFIX}{name}"), "owned"),
                tag("k8s.io/cluster-autoscaler/enabled", "true"),
            ]
            .into();
            self.asgs.insert(
                asg_name.clone(),
                SimAsg {
                    name: asg_name.clone(),
                    min: if tpl.env == "production" {
                        (desired / 2).max(1)
                    } else {
                        0
                    },
                    max: desired * 2 + 2,
                    desired,
                    types: ng.types.iter().map(|s| s.to_string()).collect(),
                    on_demand_base: 0,
                    on_demand_pct: if ng.lifecycle == Lifecycle::Spot {
                        0
                    } else {
                        100
                    },
                    tags: asg_tags,
                    cluster: Some(name.clone()),
                    node_group: Some(ng.name.to_string()),
                },
            );
            let ng_entry = SimNodeGroup {
                name: ng.name.to_string(),
                asg_name: asg_name.clone(),
                types: ng.types.iter().map(|s| s.to_string()).collect(),
                capacity_type: ng.lifecycle,
            };
            if let Some(c) = self.clusters.get_mut(&name) {
                c.node_groups.push(ng_entry);
            }
            let ng_types: Vec<String> = ng.types.iter().map(|s| s.to_string()).collect();
            let mut per_az = [0usize; 3];
            for _ in 0..share {
                let choice =
                    choose_pool(&ng_types, &per_az, ng.lifecycle, now, market, &mut || {
                        g.gen::<f64>()
                    });
                let (ty, a) = choice.unwrap_or_else(|| (ng_types[0].clone(), 0));
                per_az[a] += 1;
                let ty = ty.as_str();
                let az = az_name(&self.region, a);
                let age = Duration::minutes(g.gen_range(60..60 * 24 * 90));
                let id = format!("i-0{}", rand_hex(g, 16));
                self.add_instance(
                    id,
                    ty,
                    &az,
                    ng.lifecycle,
                    InstanceState::Running,
                    now - age,
                    self.asgs
                        .get(&asg_name)
                        .map(|a| a.tags.clone())
                        .unwrap_or_default(),
                    Some(&asg_name),
                    Some(ng.name),
                );
            }
        }
        self.generate_pods(g, &name, tpl.overprovisioned);
    }

    #[allow(clippy::too_many_arguments)]
    fn add_instance(
        &mut self,
        id: String,
        ty: &str,
        az: &str,
        lifecycle: Lifecycle,
        state: InstanceState,
        launch_time: DateTime<Utc>,
        mut tags: Tags,
        asg_name: Option<&str>,
        node_group: Option<&str>,
    ) -> String {
        if let Some(asg) = asg_name {
            tags.insert(TAG_ASG_NAME.to_string(), asg.to_string());
        }
        let cluster = cluster_from_tags(&tags);
        let known_cluster = cluster
            .as_ref()
            .is_some_and(|c| self.clusters.contains_key(c));
        let ip = self.next_ip();
        // Only instances of a cluster the sim runs become Kubernetes nodes.
        let node = match (known_cluster, Catalog::embedded().get(ty)) {
            (true, Some(t)) => {
                let (alloc_cpu, alloc_mem) = allocatable(t);
                Some(SimNode {
                    name: format!("ip-{}.ec2.internal", ip.replace('.', "-")),
                    node_group: node_group
                        .map(str::to_string)
                        .or_else(|| tags.get(TAG_EKS_NODEGROUP).cloned()),
                    alloc_cpu,
                    alloc_mem,
                    kube: super::kube::NodeKube::joining(launch_time),
                })
            }
            _ => None,
        };
        tags.entry("Name".to_string())
            .or_insert_with(|| match (&cluster, node_group) {
                (Some(c), Some(ng)) => format!("{c}-{ng}-node"),
                (Some(c), None) => format!("{c}-node"),
                _ => "instance".to_string(),
            });
        let root_size = if Catalog::embedded().get(ty).is_some_and(|t| t.gpus > 0) {
            200
        } else {
            50 + 30 * (str_key(&id) % 3) as u32
        };
        let vol_id = format!("vol-0{}", rand_hex(&mut self.rng, 16));
        self.volumes.insert(
            vol_id.clone(),
            Volume {
                id: vol_id,
                size_gib: root_size,
                volume_type: VolumeType::Gp3,
                state: VolumeState::InUse,
                az: az.to_string(),
                create_time: launch_time,
                attached_instance_id: Some(id.clone()),
                device: Some(SIM_ROOT_DEVICE.to_string()),
                last_attached: Some(launch_time),
                tags: Tags::new(),
            },
        );
        let inst = Instance {
            id: id.clone(),
            instance_type: ty.to_string(),
            lifecycle,
            state,
            az: az.to_string(),
            asg_name: asg_name.map(str::to_string),
            cluster: cluster.clone(),
            tags,
            launch_time,
            private_ip: Some(ip),
            root_device_name: Some(SIM_ROOT_DEVICE.to_string()),
        };
        let has_node = node.is_some();
        self.instances.insert(
            id.clone(),
            SimInstance {
                inst,
                terminated_at: None,
                node,
            },
        );
        if has_node {
            if let Some(c) = cluster {
                self.add_daemonset_pods(&c, &id);
            }
        }
        id
    }

    fn add_daemonset_pods(&mut self, cluster: &str, instance_id: &str) {
        let Some(node_name) = self
            .instances
            .get(instance_id)
            .and_then(|i| i.node.as_ref())
            .map(|n| n.name.clone())
        else {
            return;
        };
        let suffix_a = k8s_suffix(&mut self.rng, 5);
        let suffix_b = k8s_suffix(&mut self.rng, 5);
        let Some(c) = self.clusters.get_mut(cluster) else {
            return;
        };
        for (name, suffix, cpu, mem) in [
            ("aws-node", suffix_a, 25, 64),
            ("kube-proxy", suffix_b, 100, 64),
        ] {
            let pod_name = format!("{name}-{suffix}");
            c.pods.push(SimPod {
                key: str_key(&format!("kube-system/{pod_name}")),
                pod: Pod {
                    namespace: "kube-system".into(),
                    name: pod_name,
                    owner: Some(WorkloadRef {
                        kind: WorkloadKind::DaemonSet,
                        name: name.into(),
                    }),
                    node_name: Some(node_name.clone()),
                    phase: PodPhase::Running,
                    cpu_request_millicores: cpu,
                    memory_request_mib: mem,
                },
                base_cpu: 0.4,
                base_mem: 0.6,
            });
        }
    }

    fn generate_pods(&mut self, g: &mut ChaCha8Rng, cluster: &str, overprovisioned: bool) {
        let nodes: Vec<(u32, u32)> = self
            .instances
            .values()
            .filter(|i| i.inst.cluster.as_deref() == Some(cluster))
            .filter_map(|i| i.node.as_ref().map(|n| (n.alloc_cpu, n.alloc_mem)))
            .collect();
        let total_cpu: u64 = nodes.iter().map(|n| u64::from(n.0)).sum();
        let max_cpu = nodes.iter().map(|n| n.0).max().unwrap_or(0);
        let max_mem = nodes
            .iter()
            .map(|n| n.1)
            .min()
            .unwrap_or(0)
            .max(nodes.iter().map(|n| n.1).max().unwrap_or(0) / 2);
        if total_cpu == 0 {
            return;
        }
        let fill = g.gen_range(0.55..0.85);
        let target = (total_cpu as f64 * fill) as u64;
        let mut requested: u64 = 0;
        let start = g.gen_range(0..WORKLOADS.len());
        let mut used_names: HashMap<String, u32> = HashMap::new();
        let mut new_pods = Vec::new();
        let mut i = 0;
        while requested < target && i < 100_000 {
            let (ns, base, kind, cpu, mem) = WORKLOADS[(start + i) % WORKLOADS.len()];
            i += 1;
            let n = used_names.entry(format!("{ns}/{base}")).or_insert(0);
            *n += 1;
            let name = if *n == 1 {
                base.to_string()
            } else {
                format!("{base}-{n}")
            };
            let scale = *[0.5, 1.0, 1.0, 1.5, 2.0].choose(g).unwrap_or(&1.0);
            let cpu = ((f64::from(cpu) * scale) as u32)
                .min(max_cpu * 8 / 10)
                .max(50);
            let mem = ((f64::from(mem) * scale) as u32)
                .min(max_mem * 8 / 10)
                .max(64);
            let replicas = match kind {
                WorkloadKind::StatefulSet => 3,
                WorkloadKind::Job => g.gen_range(1..=4),
                _ => g.gen_range(2..=6),
            };
            let (base_cpu, base_mem): (f64, f64) = if overprovisioned {
                (g.gen_range(0.05..0.2), g.gen_range(0.15..0.35))
            } else {
                (g.gen_range(0.35..0.75), g.gen_range(0.5..0.85))
            };
            let rs_hash = k8s_suffix(g, 10);
            for r in 0..replicas {
                let pod_name = match kind {
                    WorkloadKind::StatefulSet => format!("{name}-{r}"),
                    WorkloadKind::Job => format!("{name}-{}", k8s_suffix(g, 5)),
                    _ => format!("{name}-{rs_hash}-{}", k8s_suffix(g, 5)),
                };
                let jitter = g.gen_range(0.9..1.1);
                new_pods.push(SimPod {
                    key: str_key(&format!("{cluster}/{ns}/{pod_name}")),
                    pod: Pod {
                        namespace: ns.to_string(),
                        name: pod_name,
                        owner: Some(WorkloadRef {
                            kind,
                            name: name.clone(),
                        }),
                        node_name: None,
                        phase: PodPhase::Pending,
                        cpu_request_millicores: cpu,
                        memory_request_mib: mem,
                    },
                    base_cpu: (base_cpu * jitter).min(1.0),
                    base_mem: (base_mem * jitter).min(1.0),
                });
                requested += u64::from(cpu);
            }
        }
        if let Some(c) = self.clusters.get_mut(cluster) {
            c.pods.extend(new_pods);
        }
        // Generated nodes have been Ready for a long time.
        self.schedule_pending(cluster, DateTime::<Utc>::MAX_UTC);
        // A generated cluster starts in steady state: replicas that did not fit were
        // never scaled up.
        if let Some(c) = self.clusters.get_mut(cluster) {
            c.pods.retain(|p| p.pod.phase == PodPhase::Running);
        }
    }

    /// Binds pending pods to nodes with room, spreading round-robin like the default
    /// scheduler's least-allocated scoring would.
    pub(crate) fn schedule_pending(&mut self, cluster: &str, now: DateTime<Utc>) {
        let mut nodes: Vec<(String, i64, i64)> = self
            .instances
            .values()
            .filter(|i| i.inst.cluster.as_deref() == Some(cluster))
            .filter(|i| i.inst.state == InstanceState::Running)
            .filter_map(|i| {
                i.node
                    .as_ref()
                    .filter(|n| n.kube.accepts_pods(now))
                    .map(|n| {
                        (
                            n.name.clone(),
                            i64::from(n.alloc_cpu),
                            i64::from(n.alloc_mem),
                        )
                    })
            })
            .collect();
        let Some(c) = self.clusters.get_mut(cluster) else {
            return;
        };
        let index: HashMap<String, usize> = nodes
            .iter()
            .enumerate()
            .map(|(i, n)| (n.0.clone(), i))
            .collect();
        for p in &c.pods {
            if let Some(&i) = p.pod.node_name.as_ref().and_then(|n| index.get(n)) {
                nodes[i].1 -= i64::from(p.pod.cpu_request_millicores);
                nodes[i].2 -= i64::from(p.pod.memory_request_mib);
            }
        }
        if nodes.is_empty() {
            return;
        }
        let mut cursor = 0usize;
        for p in c.pods.iter_mut().filter(|p| p.pod.node_name.is_none()) {
            let (cpu, mem) = (
                i64::from(p.pod.cpu_request_millicores),
                i64::from(p.pod.memory_request_mib),
            );
            for k in 0..nodes.len() {
                let i = (cursor + k) % nodes.len();
                if nodes[i].1 >= cpu && nodes[i].2 >= mem {
                    nodes[i].1 -= cpu;
                    nodes[i].2 -= mem;
                    p.pod.node_name = Some(nodes[i].0.clone());
                    p.pod.phase = PodPhase::Running;
                    cursor = i + 1;
                    break;
                }
            }
        }
    }

    fn generate_unregistered(&mut self, g: &mut ChaCha8Rng, count: usize, now: DateTime<Utc>) {
        if count == 0 {
            return;
        }
        // A legacy Auto Scaling group outside Kubernetes holds two of them.
        let legacy = "legacy-web-asg".to_string();
        let legacy_n = count.min(2) as u32;
        self.asgs.insert(
            legacy.clone(),
            SimAsg {
                name: legacy.clone(),
                min: legacy_n,
                max: 4,
                desired: legacy_n,
                types: vec!["m5.large".into()],
                on_demand_base: 0,
                on_demand_pct: 100,
                tags: [tag("Name", "legacy-web"), tag("environment", "production")].into(),
                cluster: None,
                node_group: None,
            },
        );
        for k in 0..legacy_n {
            let id = format!("i-0{}", rand_hex(g, 16));
            let az = az_name(&self.region, k as usize % 3);
            self.add_instance(
                id,
                "m5.large",
                &az,
                Lifecycle::OnDemand,
                InstanceState::Running,
                now - Duration::days(g.gen_range(100..900)),
                [tag("Name", "legacy-web")].into(),
                Some(&legacy),
                None,
            );
        }
        for k in 0..count.saturating_sub(legacy_n as usize) {
            let (name, ty, lifecycle, stopped) = UNREGISTERED[k % UNREGISTERED.len()];
            let name = if k < UNREGISTERED.len() {
                name.to_string()
            } else {
                format!("{name}-{}", k / UNREGISTERED.len() + 1)
            };
            let id = format!("i-0{}", rand_hex(g, 16));
            let az = az_name(&self.region, g.gen_range(0..3));
            let az = match Catalog::embedded().get(ty) {
                Some(t) if !t.offered_in(az_index(&self.region, &az).unwrap_or(0)) => {
                    az_name(&self.region, t.az_indexes.first().copied().unwrap_or(0))
                }
                _ => az,
            };
            let state = if stopped {
                InstanceState::Stopped
            } else {
                InstanceState::Running
            };
            self.add_instance(
                id,
                ty,
                &az,
                lifecycle,
                state,
                now - Duration::days(g.gen_range(3..1200)),
                [tag("Name", &name), tag("owner", "ops")].into(),
                None,
                None,
            );
        }
    }

    /// `unattached` volumes (leftovers of deleted PVCs and decommissioned servers) and
    /// `orphans` snapshots whose volume is gone, besides backups of live volumes and images.
    fn generate_storage(
        &mut self,
        g: &mut ChaCha8Rng,
        now: DateTime<Utc>,
        unattached: usize,
        orphans: usize,
    ) {
        let types = [
            VolumeType::Gp2,
            VolumeType::Gp3,
            VolumeType::Gp3,
            VolumeType::Io1,
            VolumeType::St1,
        ];
        for k in 0..unattached {
            let id = format!("vol-0{}", rand_hex(g, 16));
            let created = now - Duration::days(g.gen_range(30..900));
            let last_attached = if k % 4 == 3 {
                None
            } else {
                Some(now - Duration::days(g.gen_range(2..400)))
            };
            let mut tags = Tags::new();
            if k % 2 == 0 {
                tags.insert(
                    "kubernetes.io/created-for/pvc/name".into(),
                    format!("data-{}", k8s_suffix(g, 6)),
                );
            } else {
                tags.insert("Name".into(), format!("old-data-{k}"));
            }
            self.volumes.insert(
                id.clone(),
                Volume {
                    id,
                    size_gib: *[8u32, 20, 50, 100, 200, 500, 1000]
                        .choose(g)
                        .unwrap_or(&100),
                    volume_type: types[k % types.len()],
                    state: VolumeState::Available,
                    az: az_name(&self.region, g.gen_range(0..3)),
                    create_time: created,
                    attached_instance_id: None,
                    device: None,
                    last_attached,
                    tags,
                },
            );
        }
        // Backups of live volumes (not orphaned).
        let live: Vec<(String, u32, DateTime<Utc>)> = self
            .volumes
            .values()
            .filter(|v| v.state == VolumeState::InUse)
            .map(|v| (v.id.clone(), v.size_gib, v.create_time))
            .collect();
        for (vol, size, created) in &live {
            if !g.gen_bool(0.15) {
                continue;
            }
            let start = (*created).max(now - Duration::days(g.gen_range(1..30)));
            let id = format!("snap-0{}", rand_hex(g, 16));
            self.add_snapshot(id, Some(vol.clone()), None, start, *size, "daily backup");
        }
        // Orphans: the source volume has been deleted.
        for _ in 0..orphans {
            let gone = format!("vol-0{}", rand_hex(g, 16));
            let start = now - Duration::days(g.gen_range(40..1000));
            let size = *[8u32, 30, 100, 250, 500].choose(g).unwrap_or(&100);
            let id = format!("snap-0{}", rand_hex(g, 16));
            self.add_snapshot(id, Some(gone), None, start, size, "pre-migration backup");
        }
        // Snapshots backing images: one registered AMI, one deregistered.
        for registered in [true, false] {
            let ami = format!("ami-0{}", rand_hex(g, 16));
            if registered {
                self.registered_amis.insert(ami.clone());
            }
            let start = now - Duration::days(g.gen_range(20..500));
            let desc = format!("Created by CreateImage for {ami}");
            let id = format!("snap-0{}", rand_hex(g, 16));
            self.add_snapshot(id, Some("vol-ffffffff".into()), Some(ami), start, 30, &desc);
        }
    }

    fn add_snapshot(
        &mut self,
        id: String,
        volume_id: Option<String>,
        source_ami: Option<String>,
        start: DateTime<Utc>,
        size: u32,
        description: &str,
    ) -> String {
        self.snapshots.insert(
            id.clone(),
            Snapshot {
                id: id.clone(),
                volume_id,
                source_ami,
                start_time: start,
                size_gib: size,
                state: SnapshotState::Completed,
                description: description.to_string(),
                tags: Tags::new(),
            },
        );
        id
    }

    // ---------------------------------------------------------------- time

    /// Runs the world forward to `now`: hourly interruption decisions, event delivery,
    /// reclaims, Auto Scaling replacement and pod rescheduling.
    pub fn advance_to(&mut self, now: DateTime<Utc>, market: &mut Market) {
        let now_ms = now.timestamp_millis();
        loop {
            let decision_at = hour_start(self.decided_through).timestamp_millis();
            let next_pending = self.pending.keys().next().copied();
            match next_pending {
                Some(key) if key.0 <= decision_at && key.0 <= now_ms => {
                    if let Some(action) = self.pending.remove(&key) {
                        let at = DateTime::from_timestamp_millis(key.0).unwrap_or(now);
                        self.execute(action, at, market);
                    }
                }
                _ if decision_at <= now_ms => {
                    let hour = self.decided_through + 1;
                    self.decide_hour(hour, market);
                    self.decided_through = hour;
                }
                _ => break,
            }
        }
        // Pods waiting for capacity bind once a node is Ready and schedulable.
        let waiting: Vec<String> = self
            .clusters
            .values()
            .filter(|c| c.pods.iter().any(|p| p.pod.node_name.is_none()))
            .map(|c| c.name.clone())
            .collect();
        for c in waiting {
            self.schedule_pending(&c, now);
        }
        let cutoff = now - TERMINATED_VISIBLE_FOR;
        self.instances
            .retain(|_, i| i.terminated_at.is_none_or(|t| t > cutoff));
        let event_cutoff = now - EVENT_RETENTION;
        while self.events.front().is_some_and(|e| e.time < event_cutoff) {
            self.events.pop_front();
        }
    }

    fn schedule(&mut self, at: DateTime<Utc>, action: Pending) {
        self.seq += 1;
        self.pending
            .insert((at.timestamp_millis(), self.seq), action);
    }

    /// Decides, at the start of hour `hour - 1`, what happens to spot instances in `hour`.
    fn decide_hour(&mut self, hour: i64, market: &mut Market) {
        let decided_at = hour_start(hour - 1);
        // Groups left short by earlier capacity shortages try again every hour.
        let asg_names: Vec<String> = self.asgs.keys().cloned().collect();
        for name in asg_names {
            self.reconcile_asg(&name, decided_at, market);
        }
        let start = hour_start(hour);
        let spot: Vec<(String, String, String)> = self
            .instances
            .values()
            .filter(|i| i.inst.lifecycle == Lifecycle::Spot && i.inst.state.is_billed())
            .map(|i| {
                (
                    i.inst.id.clone(),
                    i.inst.instance_type.clone(),
                    i.inst.az.clone(),
                )
            })
            .collect();
        for (id, ty, az) in spot {
            let Some(pool) = market.pool_of(&ty, &az) else {
                continue;
            };
            let capacity = market.at_hour(pool, hour).capacity;
            let p = interruption_probability(capacity, 1.0);
            let key = mix(mix(self.seed, str_key(&id)), hour as u64);
            let offset = |salt: u64, span_s: f64| {
                Duration::milliseconds((unit(mix(key, salt)) * span_s * 1000.0) as i64)
            };
            if unit(key) < p {
                let notice = start + offset(1, 3600.0);
                // Usually 10–20 minutes of warning; sometimes the recommendation arrives
                // together with the notice.
                let rebalance = if unit(mix(key, 2)) < 0.85 {
                    notice - Duration::minutes(10) - offset(3, 600.0)
                } else {
                    notice
                };
                self.schedule(rebalance, Pending::Rebalance(id.clone()));
                self.schedule(notice, Pending::Notice(id));
            } else if unit(mix(key, 4)) < (4.0 * p).min(0.3) {
                // Elevated risk without an interruption: a recommendation only.
                self.schedule(start + offset(5, 3600.0), Pending::Rebalance(id));
            }
        }
    }

    fn execute(&mut self, action: Pending, at: DateTime<Utc>, market: &mut Market) {
        match action {
            // Signals for instances that are already gone are dropped, as on EC2.
            Pending::Rebalance(id) | Pending::Notice(id) if !self.is_running(&id) => {}
            Pending::Rebalance(id) => {
                self.emit(SpotEventKind::RebalanceRecommendation, &id, at, None)
            }
            Pending::Notice(id) => {
                let reclaim = at + Duration::minutes(2);
                self.emit(SpotEventKind::InterruptionNotice, &id, at, Some(reclaim));
                self.schedule(reclaim, Pending::Reclaim(id));
            }
            Pending::Reclaim(id) => {
                if self.is_running(&id) {
                    self.terminate_one(&id, at, market);
                }
            }
        }
    }

    /// Sends a spot interruption notice for `id` at `now` (reclaimed two minutes later),
    /// as EC2 does; false when `id` is not a running spot instance.
    pub(crate) fn interrupt_now(
        &mut self,
        id: &str,
        now: DateTime<Utc>,
        market: &mut Market,
    ) -> bool {
        let spot = self
            .instances
            .get(id)
            .is_some_and(|i| i.inst.lifecycle == Lifecycle::Spot);
        if !spot || !self.is_running(id) {
            return false;
        }
        self.execute(Pending::Notice(id.to_string()), now, market);
        true
    }

    fn is_running(&self, id: &str) -> bool {
        self.instances
            .get(id)
            .is_some_and(|i| i.inst.state.is_billed())
    }

    fn emit(
        &mut self,
        kind: SpotEventKind,
        id: &str,
        at: DateTime<Utc>,
        action: Option<DateTime<Utc>>,
    ) {
        let Some(i) = self.instances.get(id) else {
            return;
        };
        self.events.push_back(SpotEvent {
            kind,
            instance_id: id.to_string(),
            instance_type: i.inst.instance_type.clone(),
            az: i.inst.az.clone(),
            time: at,
            action_time: action,
        });
    }

    /// Terminates one instance now: its root volume goes with it, its pods go pending,
    /// and its Auto Scaling group (if any) replaces it.
    fn terminate_one(
        &mut self,
        id: &str,
        at: DateTime<Utc>,
        market: &mut Market,
    ) -> Option<InstanceState> {
        let i = self.instances.get_mut(id)?;
        let previous = i.inst.state;
        if previous == InstanceState::Terminated {
            return Some(previous);
        }
        i.inst.state = InstanceState::Terminated;
        i.terminated_at = Some(at);
        let cluster = i.inst.cluster.clone();
        let node_name = i.node.as_ref().map(|n| n.name.clone());
        let asg = i.inst.asg_name.clone();
        // Root volumes are DeleteOnTermination; other volumes are detached.
        let attached: Vec<String> = self
            .volumes
            .values()
            .filter(|v| v.attached_instance_id.as_deref() == Some(id))
            .map(|v| v.id.clone())
            .collect();
        for vid in &attached {
            let root = self
                .volumes
                .get(vid)
                .is_some_and(|v| v.device.as_deref() == Some(SIM_ROOT_DEVICE));
            if root {
                self.volumes.remove(vid);
            } else if let Some(v) = self.volumes.get_mut(vid) {
                v.state = VolumeState::Available;
                v.attached_instance_id = None;
                v.device = None;
                v.last_attached = Some(at);
            }
        }
        if let (Some(c), Some(node)) = (&cluster, &node_name) {
            if let Some(cl) = self.clusters.get_mut(c) {
                // DaemonSet pods die with their node; others wait for a new one.
                cl.pods.retain(|p| {
                    !(p.pod.node_name.as_deref() == Some(node.as_str())
                        && p.pod.owner.as_ref().map(|o| o.kind) == Some(WorkloadKind::DaemonSet))
                });
                for p in cl.pods.iter_mut() {
                    if p.pod.node_name.as_deref() == Some(node.as_str()) {
                        p.pod.node_name = None;
                        p.pod.phase = PodPhase::Pending;
                    }
                }
            }
        }
        if let Some(a) = asg {
            self.reconcile_asg(&a, at, market);
        }
        if let Some(c) = cluster {
            self.schedule_pending(&c, at);
        }
        Some(previous)
    }

    fn asg_members(&self, name: &str) -> Vec<&SimInstance> {
        self.instances
            .values()
            .filter(|i| i.inst.asg_name.as_deref() == Some(name) && i.inst.state.is_billed())
            .collect()
    }

    /// Brings a group to its desired size: launches into the least-used offered AZ with
    /// the first type whose pool can serve (spot), or terminates the newest instances.
    fn reconcile_asg(&mut self, name: &str, now: DateTime<Utc>, market: &mut Market) {
        let Some(asg) = self.asgs.get(name).cloned() else {
            return;
        };
        let members = self.asg_members(name);
        let live = members.len() as u32;
        if live > asg.desired {
            let mut newest: Vec<(DateTime<Utc>, String)> = members
                .iter()
                .map(|i| (i.inst.launch_time, i.inst.id.clone()))
                .collect();
            newest.sort_by(|a, b| b.cmp(a));
            let excess = (live - asg.desired) as usize;
            for (_, id) in newest.into_iter().take(excess) {
                // Scale-in is not a replacement: mark terminated without reconciling.
                if let Some(i) = self.instances.get_mut(&id) {
                    i.inst.asg_name = None;
                }
                self.terminate_one(&id, now, market);
            }
            return;
        }
        let mut on_demand = members
            .iter()
            .filter(|i| i.inst.lifecycle == Lifecycle::OnDemand)
            .count() as u32;
        let mut per_az = [0usize; 3];
        for m in &members {
            if let Some(a) = az_index(&self.region, &m.inst.az) {
                per_az[a] += 1;
            }
        }
        let above_base = asg.desired.saturating_sub(asg.on_demand_base);
        let want_on_demand =
            asg.on_demand_base.min(asg.desired) + (above_base * asg.on_demand_pct).div_ceil(100);
        for _ in live..asg.desired {
            let lifecycle = if on_demand < want_on_demand {
                Lifecycle::OnDemand
            } else {
                Lifecycle::Spot
            };
            let choice = choose_pool(&asg.types, &per_az, lifecycle, now, market, &mut || 0.0);
            let Some((ty, a)) = choice else {
                // No pool can serve: the group stays short and retries next hour.
                break;
            };
            per_az[a] += 1;
            if lifecycle == Lifecycle::OnDemand {
                on_demand += 1;
            }
            let id = format!("i-0{}", rand_hex(&mut self.rng, 16));
            let az = az_name(&self.region, a);
            self.add_instance(
                id,
                &ty,
                &az,
                lifecycle,
                InstanceState::Running,
                now,
                asg.tags.clone(),
                Some(name),
                asg.node_group.as_deref(),
            );
        }
        if let Some(c) = asg.cluster {
            self.schedule_pending(&c, now);
        }
    }

    // ---------------------------------------------------------------- reads

    pub fn instances(&self) -> Vec<Instance> {
        self.instances.values().map(|i| i.inst.clone()).collect()
    }

    pub fn volumes(&self) -> Vec<Volume> {
        self.volumes.values().cloned().collect()
    }

    pub fn snapshots(&self) -> Vec<Snapshot> {
        self.snapshots.values().cloned().collect()
    }

    /// The account's security groups: the VPC's `default` group and, per EKS cluster,
    /// the cluster security group EKS creates and a node group. Ids derive from the seed
    /// and the group's name (a private generator: the world's own random sequence is not
    /// disturbed), so they are stable for a world.
    pub fn security_groups(&self) -> Vec<SecurityGroup> {
        let id = |name: &str| {
            let key = mix(str_key(&self.account_id), str_key(name));
            let mut rng = ChaCha8Rng::seed_from_u64(mix(self.seed, key));
            rand_hex(&mut rng, 16)
        };
        let vpc = format!("vpc-0{}", id("vpc"));
        let group = |name: String, description: String, tags: Tags| SecurityGroup {
            id: format!("sg-0{}", id(&name)),
            name,
            description,
            vpc_id: Some(vpc.clone()),
            tags,
        };
        let mut out = vec![group(
            "default".into(),
            "default VPC security group".into(),
            Tags::new(),
        )];
        for c in self.clusters.values() {
            let owned: Tags = [(TAG_EKS_CLUSTER.to_string(), c.name.clone())].into();
            out.push(group(
                format!("eks-cluster-sg-{}", c.name),
                "EKS created security group applied to ENI that is attached to EKS Control Plane master nodes, as well as any managed workloads.".into(),
                owned.clone(),
            ));
            out.push(group(
                format!("{}-nodes", c.name),
                format!("Worker nodes of {}", c.name),
                owned,
            ));
        }
        out.sort_by(|a, b| a.name.cmp(&b.name).then(a.id.cmp(&b.id)));
        out
    }

    fn asg_view(&self, a: &SimAsg) -> AutoScalingGroup {
        let members = self.asg_members(&a.name);
        let mut azs: Vec<Az> = (0..3).map(|i| az_name(&self.region, i)).collect();
        azs.sort();
        AutoScalingGroup {
            name: a.name.clone(),
            min_size: a.min,
            max_size: a.max,
            desired_capacity: a.desired,
            instance_ids: members.iter().map(|i| i.inst.id.clone()).collect(),
            instance_types: a.types.clone(),
            availability_zones: azs,
            on_demand_base_capacity: a.on_demand_base,
            on_demand_percentage_above_base: a.on_demand_pct,
            tags: a.tags.clone(),
        }
    }

    pub fn asgs(&self) -> Vec<AutoScalingGroup> {
        self.asgs.values().map(|a| self.asg_view(a)).collect()
    }

    pub fn cluster_names(&self) -> Vec<String> {
        self.clusters.keys().cloned().collect()
    }

    pub fn describe_cluster(&self, name: &str) -> Result<EksCluster> {
        let c = self
            .clusters
            .get(name)
            .ok_or_else(|| CloudError::not_found(ResourceKind::EksCluster, name))?;
        Ok(EksCluster {
            name: c.name.clone(),
            arn: c.arn.clone(),
            version: c.version.clone(),
            status: "ACTIVE".into(),
            created_at: c.created_at,
            tags: c.tags.clone(),
            node_groups: c
                .node_groups
                .iter()
                .map(|ng| {
                    let asg = self.asgs.get(&ng.asg_name);
                    NodeGroup {
                        name: ng.name.clone(),
                        instance_types: ng.types.clone(),
                        capacity_type: ng.capacity_type,
                        scaling: ScalingConfig {
                            min_size: asg.map_or(0, |a| a.min),
                            max_size: asg.map_or(0, |a| a.max),
                            desired_size: asg.map_or(0, |a| a.desired),
                        },
                        asg_name: Some(ng.asg_name.clone()),
                        status: "ACTIVE".into(),
                        labels: [tag("eks.amazonaws.com/nodegroup", &ng.name)].into(),
                    }
                })
                .collect(),
        })
    }

    pub fn events_since(&self, since: DateTime<Utc>) -> Vec<SpotEvent> {
        self.events
            .iter()
            .filter(|e| e.time > since)
            .cloned()
            .collect()
    }

    pub fn pod_inventory(&self, cluster: &str, now: DateTime<Utc>) -> Result<PodInventory> {
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
                Some(KubeNode {
                    name: n.name.clone(),
                    instance_id: i.inst.id.clone(),
                    instance_type: i.inst.instance_type.clone(),
                    az: i.inst.az.clone(),
                    lifecycle: i.inst.lifecycle,
                    node_group: n.node_group.clone(),
                    allocatable_cpu_millicores: n.alloc_cpu,
                    allocatable_memory_mib: n.alloc_mem,
                    ready: i.inst.state == InstanceState::Running && n.kube.is_ready(now),
                })
            })
            .collect();
        Ok(PodInventory {
            cluster: cluster.to_string(),
            collected_at: now,
            nodes,
            pods: c.pods.iter().map(|p| p.pod.clone()).collect(),
        })
    }

    pub fn pod_usage(
        &self,
        cluster: &str,
        pod: &PodRef,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        step: std::time::Duration,
    ) -> Result<Vec<UsageSample>> {
        let c = self
            .clusters
            .get(cluster)
            .ok_or_else(|| CloudError::not_found(ResourceKind::EksCluster, cluster))?;
        let p = c
            .pods
            .iter()
            .find(|p| p.pod.namespace == pod.namespace && p.pod.name == pod.name)
            .ok_or_else(|| {
                CloudError::not_found(ResourceKind::Pod, format!("{}/{}", pod.namespace, pod.name))
            })?;
        let step_ms = i64::try_from(step.as_millis()).unwrap_or(i64::MAX);
        if step_ms < 1000 {
            return Err(CloudError::invalid("step", "must be at least one second"));
        }
        if to <= from {
            return Ok(Vec::new());
        }
        let span_ms = (to - from).num_milliseconds();
        if span_ms / step_ms >= MAX_USAGE_SAMPLES as i64 {
            return Err(CloudError::invalid(
                "step",
                format!("more than {MAX_USAGE_SAMPLES} samples requested"),
            ));
        }
        let mut out = Vec::new();
        let mut t = from;
        while t < to {
            out.push(sample(p, c.pattern, t));
            match t.checked_add_signed(Duration::milliseconds(step_ms)) {
                Some(next) => t = next,
                None => break,
            }
        }
        Ok(out)
    }

    // ---------------------------------------------------------------- mutations

    pub fn update_asg(
        &mut self,
        update: &AsgUpdate,
        dry_run: bool,
        now: DateTime<Utc>,
        market: &mut Market,
    ) -> Result<Mutation<AutoScalingGroup>> {
        let asg = self
            .asgs
            .get(&update.name)
            .ok_or_else(|| CloudError::not_found(ResourceKind::AutoScalingGroup, &update.name))?;
        let min = update.min_size.unwrap_or(asg.min);
        let max = update.max_size.unwrap_or(asg.max);
        let desired = update.desired_capacity.unwrap_or(asg.desired);
        if min > max {
            return Err(CloudError::invalid(
                "min_size",
                format!("min {min} exceeds max {max}"),
            ));
        }
        if desired < min || desired > max {
            return Err(CloudError::invalid(
                "desired_capacity",
                format!("desired {desired} outside [{min}, {max}]"),
            ));
        }
        if dry_run {
            return Ok(Mutation::DryRun(DryRunOk {
                operation: "UpdateAutoScalingGroup".into(),
                resource_ids: vec![update.name.clone()],
                message: format!("would set min={min} max={max} desired={desired}"),
            }));
        }
        if let Some(a) = self.asgs.get_mut(&update.name) {
            a.min = min;
            a.max = max;
            a.desired = desired;
        }
        self.reconcile_asg(&update.name, now, market);
        let view = self
            .asgs
            .get(&update.name)
            .map(|a| self.asg_view(a))
            .ok_or_else(|| CloudError::not_found(ResourceKind::AutoScalingGroup, &update.name))?;
        Ok(Mutation::Applied(view))
    }

    /// `DetachInstances` with `ShouldDecrementDesiredCapacity`: the instances leave the
    /// group (and lose its tag) and the desired capacity drops by as many; nothing is
    /// launched or terminated.
    pub fn detach(
        &mut self,
        group: &str,
        ids: &[String],
        dry_run: bool,
    ) -> Result<Mutation<AutoScalingGroup>> {
        let asg = self
            .asgs
            .get(group)
            .ok_or_else(|| CloudError::not_found(ResourceKind::AutoScalingGroup, group))?;
        if ids.is_empty() {
            return Err(CloudError::invalid(
                "instance_ids",
                "at least one instance is required",
            ));
        }
        for id in ids {
            let member = self.instances.get(id).is_some_and(|i| {
                i.inst.asg_name.as_deref() == Some(group) && i.inst.state.is_billed()
            });
            if !member {
                return Err(CloudError::invalid(
                    "instance_ids",
                    format!("{id} is not in Auto Scaling group {group}"),
                ));
            }
        }
        let n = ids.len() as u32;
        if asg.desired < asg.min + n {
            return Err(CloudError::invalid(
                "desired_capacity",
                format!(
                    "detaching {n} would take desired {} below min {}",
                    asg.desired, asg.min
                ),
            ));
        }
        if dry_run {
            return Ok(Mutation::DryRun(DryRunOk {
                operation: "DetachInstances".into(),
                resource_ids: ids.to_vec(),
                message: format!(
                    "would detach from {group} and set desired={}",
                    asg.desired - n
                ),
            }));
        }
        for id in ids {
            if let Some(i) = self.instances.get_mut(id) {
                i.inst.asg_name = None;
                i.inst.tags.remove(TAG_ASG_NAME);
            }
        }
        if let Some(a) = self.asgs.get_mut(group) {
            a.desired -= n;
        }
        let view = self
            .asgs
            .get(group)
            .map(|a| self.asg_view(a))
            .ok_or_else(|| CloudError::not_found(ResourceKind::AutoScalingGroup, group))?;
        Ok(Mutation::Applied(view))
    }

    pub fn launch(
        &mut self,
        req: &LaunchRequest,
        dry_run: bool,
        now: DateTime<Utc>,
        market: &mut Market,
    ) -> Result<Mutation<LaunchResult>> {
        let catalog = Catalog::embedded();
        crate::validate_client_token(&req.client_token)?;
        if req.count == 0 || req.count > 1000 {
            return Err(CloudError::invalid("count", "must be between 1 and 1000"));
        }
        let (Some(t), Some(ti)) = (
            catalog.get(&req.instance_type),
            catalog.index_of(&req.instance_type),
        ) else {
            return Err(CloudError::invalid(
                "instance_type",
                format!("{} is not offered in {}", req.instance_type, self.region),
            ));
        };
        if let Some(a) = &req.asg_name {
            let asg = self
                .asgs
                .get(a)
                .ok_or_else(|| CloudError::not_found(ResourceKind::AutoScalingGroup, a))?;
            if asg.desired + req.count > asg.max {
                return Err(CloudError::invalid(
                    "count",
                    format!(
                        "attaching {} would exceed max size {} of {a}",
                        req.count, asg.max
                    ),
                ));
            }
        }
        if let Some(prev) = self.launches.get(&req.client_token) {
            if prev.request != *req {
                return Err(CloudError::invalid(
                    "client_token",
                    "reused with different parameters (IdempotentParameterMismatch)",
                ));
            }
            if dry_run {
                return Ok(Mutation::DryRun(DryRunOk {
                    operation: "RunInstances".into(),
                    resource_ids: prev.instance_ids.clone(),
                    message: "client token already used; nothing would be launched".into(),
                }));
            }
            let instances = prev
                .instance_ids
                .iter()
                .filter_map(|id| self.instances.get(id).map(|i| i.inst.clone()))
                .collect();
            return Ok(Mutation::Applied(LaunchResult {
                instances,
                replayed: true,
            }));
        }
        let az_idx = match (&req.az, &req.subnet_id) {
            (Some(az), _) => Some(az_index(&self.region, az).ok_or_else(|| {
                CloudError::invalid("az", format!("{az} is not an AZ of {}", self.region))
            })?),
            (None, Some(subnet)) => Some((str_key(subnet) % 3) as usize),
            (None, None) => None,
        };
        if let Some(a) = az_idx {
            if !t.offered_in(a) {
                return Err(CloudError::invalid(
                    "az",
                    format!(
                        "{} is not offered in {}",
                        req.instance_type,
                        az_name(&self.region, a)
                    ),
                ));
            }
        }
        if dry_run {
            return Ok(Mutation::DryRun(DryRunOk {
                operation: "RunInstances".into(),
                resource_ids: Vec::new(),
                message: format!(
                    "would launch {} x {} ({:?})",
                    req.count, req.instance_type, req.lifecycle
                ),
            }));
        }
        // Unspecified AZ: spot goes to the roomiest offered pool, on-demand to the first.
        let a = match az_idx {
            Some(a) => a,
            None => {
                let offered = t.az_indexes.clone();
                match req.lifecycle {
                    Lifecycle::Spot => offered
                        .iter()
                        .copied()
                        .max_by(|&x, &y| {
                            let cx = market.at(market.pool_index(ti, x), now).capacity;
                            let cy = market.at(market.pool_index(ti, y), now).capacity;
                            cx.total_cmp(&cy).then(y.cmp(&x))
                        })
                        .unwrap_or(0),
                    Lifecycle::OnDemand => offered.first().copied().unwrap_or(0),
                }
            }
        };
        let az = az_name(&self.region, a);
        if req.lifecycle == Lifecycle::Spot {
            let capacity = market.at(market.pool_index(ti, a), now).capacity;
            if spot_slots(capacity) < req.count {
                return Err(CloudError::InsufficientCapacity {
                    instance_type: req.instance_type.clone(),
                    az,
                });
            }
        }
        let mut tags = req.tags.clone();
        let mut node_group = tags.get(TAG_EKS_NODEGROUP).cloned();
        if let Some(asg) = req.asg_name.as_ref().and_then(|a| self.asgs.get(a)) {
            for (k, v) in &asg.tags {
                tags.entry(k.clone()).or_insert_with(|| v.clone());
            }
            node_group = node_group.or_else(|| asg.node_group.clone());
        }
        let mut ids = Vec::new();
        for _ in 0..req.count {
            let id = format!("i-0{}", rand_hex(&mut self.rng, 16));
            ids.push(self.add_instance(
                id,
                &req.instance_type,
                &az,
                req.lifecycle,
                InstanceState::Running,
                now,
                tags.clone(),
                req.asg_name.as_deref(),
                node_group.as_deref(),
            ));
        }
        if let Some(a) = req.asg_name.as_ref().and_then(|a| self.asgs.get_mut(a)) {
            a.desired += req.count;
        }
        if let Some(c) = cluster_from_tags(&tags).filter(|c| self.clusters.contains_key(c)) {
            self.schedule_pending(&c, now);
        }
        self.launches.insert(
            req.client_token.clone(),
            LaunchRecord {
                request: req.clone(),
                instance_ids: ids.clone(),
            },
        );
        Ok(Mutation::Applied(LaunchResult {
            instances: ids
                .iter()
                .filter_map(|id| self.instances.get(id).map(|i| i.inst.clone()))
                .collect(),
            replayed: false,
        }))
    }

    pub fn terminate(
        &mut self,
        ids: &[String],
        dry_run: bool,
        now: DateTime<Utc>,
        market: &mut Market,
    ) -> Result<Mutation<Vec<InstanceStateChange>>> {
        if ids.is_empty() {
            return Err(CloudError::invalid(
                "instance_ids",
                "at least one id is required",
            ));
        }
        for id in ids {
            if !id.starts_with("i-") {
                return Err(CloudError::invalid(
                    "instance_ids",
                    format!("malformed id {id}"),
                ));
            }
            if !self.instances.contains_key(id) {
                return Err(CloudError::not_found(ResourceKind::Instance, id));
            }
        }
        if dry_run {
            return Ok(Mutation::DryRun(DryRunOk {
                operation: "TerminateInstances".into(),
                resource_ids: ids.to_vec(),
                message: format!("would terminate {} instance(s)", ids.len()),
            }));
        }
        let mut changes = Vec::new();
        for id in ids {
            if let Some(previous) = self.terminate_one(id, now, market) {
                changes.push(InstanceStateChange {
                    instance_id: id.clone(),
                    previous,
                    current: InstanceState::Terminated,
                });
            }
        }
        Ok(Mutation::Applied(changes))
    }

    /// CreateSnapshot, idempotent per `client_token` as the port requires: the snapshot is
    /// tagged with the token ([`crate::TAG_CLIENT_TOKEN`]) and a repeat with the same token
    /// returns that snapshot instead of taking another (a token already used for another
    /// volume is `Invalid`, as EC2's `IdempotentParameterMismatch`).
    pub fn create_snapshot(
        &mut self,
        volume_id: &str,
        client_token: &str,
        dry_run: bool,
        now: DateTime<Utc>,
    ) -> Result<Mutation<Snapshot>> {
        crate::validate_client_token(client_token)?;
        if !dry_run {
            if let Some(prev) = self.snapshot_by_token(client_token) {
                if prev.volume_id.as_deref() != Some(volume_id) {
                    return Err(CloudError::invalid(
                        "client_token",
                        format!(
                            "already used for a snapshot of {} (IdempotentParameterMismatch)",
                            prev.volume_id.as_deref().unwrap_or("another volume")
                        ),
                    ));
                }
                return Ok(Mutation::Applied(prev.clone()));
            }
        }
        let v = self
            .volumes
            .get(volume_id)
            .ok_or_else(|| CloudError::not_found(ResourceKind::Volume, volume_id))?;
        if dry_run {
            return Ok(Mutation::DryRun(DryRunOk {
                operation: "CreateSnapshot".into(),
                resource_ids: vec![volume_id.to_string()],
                message: format!("would snapshot {} GiB", v.size_gib),
            }));
        }
        let id = loop {
            let id = format!("snap-0{}", rand_hex(&mut self.rng, 16));
            // Ids restored from a journal came from the same generator: never reuse one.
            if !self.snapshots.contains_key(&id) && !self.retired_snapshots.contains(&id) {
                break id;
            }
        };
        Ok(Mutation::Applied(self.restore_snapshot(
            volume_id,
            &id,
            client_token,
            now,
            now,
        )?))
    }

    pub(crate) fn snapshots_len(&self) -> usize {
        self.snapshots.len()
    }

    /// The snapshot carrying `client_token`, if any.
    fn snapshot_by_token(&self, client_token: &str) -> Option<&Snapshot> {
        self.snapshots
            .values()
            .find(|s| s.tags.get(crate::TAG_CLIENT_TOKEN).map(String::as_str) == Some(client_token))
    }

    /// Records a snapshot of `volume_id` with a known id, started at `start` (a new one, or
    /// one replayed from the journal): `pending` until `start` plus the completion time.
    pub(crate) fn restore_snapshot(
        &mut self,
        volume_id: &str,
        id: &str,
        client_token: &str,
        start: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<Snapshot> {
        let size = self
            .volumes
            .get(volume_id)
            .ok_or_else(|| CloudError::not_found(ResourceKind::Volume, volume_id))?
            .size_gib;
        let id = self.add_snapshot(
            id.to_string(),
            Some(volume_id.to_string()),
            None,
            start,
            size,
            "created by spot-optimizer",
        );
        let done_at = start + self.snapshot_completion;
        if let Some(s) = self.snapshots.get_mut(&id) {
            s.tags
                .insert(crate::TAG_CLIENT_TOKEN.into(), client_token.to_string());
            if done_at > now {
                s.state = SnapshotState::Pending;
                self.pending_snapshots.insert(id.clone(), done_at);
            }
        }
        self.snapshots
            .get(&id)
            .cloned()
            .ok_or_else(|| CloudError::Other("snapshot vanished".into()))
    }

    /// Completes the snapshots whose time has come.
    pub fn complete_snapshots(&mut self, now: DateTime<Utc>) {
        let done: Vec<String> = self
            .pending_snapshots
            .iter()
            .filter(|(_, at)| **at <= now)
            .map(|(id, _)| id.clone())
            .collect();
        for id in done {
            self.pending_snapshots.remove(&id);
            if let Some(s) = self.snapshots.get_mut(&id) {
                s.state = SnapshotState::Completed;
            }
        }
    }

    /// Attaches an available volume to an instance (test and Lab hook: someone attached it
    /// outside the control plane).
    pub fn attach_volume(
        &mut self,
        volume_id: &str,
        instance_id: &str,
        device: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<()> {
        if !self.instances.contains_key(instance_id) {
            return Err(CloudError::not_found(ResourceKind::Instance, instance_id));
        }
        // No device given: the next free one from /dev/sdf, as the console picks.
        let taken: std::collections::BTreeSet<String> = self
            .volumes
            .values()
            .filter(|v| v.attached_instance_id.as_deref() == Some(instance_id))
            .filter_map(|v| v.device.clone())
            .collect();
        let device = match device {
            Some(d) if taken.contains(d) => {
                return Err(CloudError::invalid(
                    "device",
                    format!("{d} is already in use on {instance_id}"),
                ))
            }
            Some(d) => d.to_string(),
            None => ('f'..='z')
                .map(|c| format!("/dev/sd{c}"))
                .find(|d| !taken.contains(d))
                .ok_or_else(|| {
                    CloudError::invalid("device", format!("no free device on {instance_id}"))
                })?,
        };
        let v = self
            .volumes
            .get_mut(volume_id)
            .ok_or_else(|| CloudError::not_found(ResourceKind::Volume, volume_id))?;
        if let Some(i) = &v.attached_instance_id {
            return Err(CloudError::invalid(
                "volume_id",
                format!("{volume_id} is already attached to {i}"),
            ));
        }
        v.attached_instance_id = Some(instance_id.to_string());
        v.device = Some(device);
        v.state = VolumeState::InUse;
        v.last_attached = Some(now);
        Ok(())
    }

    /// `DetachVolume` through the port: the volume becomes `available`. A root volume
    /// (the one created with its instance) cannot be detached from a running instance.
    pub fn detach_volume(
        &mut self,
        volume_id: &str,
        dry_run: bool,
        now: DateTime<Utc>,
    ) -> Result<Mutation<Volume>> {
        let v = self
            .volumes
            .get(volume_id)
            .ok_or_else(|| CloudError::not_found(ResourceKind::Volume, volume_id))?;
        let Some(instance) = v.attached_instance_id.clone() else {
            return Err(CloudError::invalid(
                "volume_id",
                format!("{volume_id} is not attached (IncorrectState)"),
            ));
        };
        if v.device.as_deref() == Some(SIM_ROOT_DEVICE) && self.is_running(&instance) {
            return Err(CloudError::invalid(
                "volume_id",
                format!(
                    "{volume_id} is the root volume of running {instance} (OperationNotPermitted)"
                ),
            ));
        }
        if dry_run {
            return Ok(Mutation::DryRun(DryRunOk {
                operation: "DetachVolume".into(),
                resource_ids: vec![volume_id.to_string()],
                message: format!("would detach {volume_id} from {instance}"),
            }));
        }
        let v = self
            .volumes
            .get_mut(volume_id)
            .ok_or_else(|| CloudError::not_found(ResourceKind::Volume, volume_id))?;
        v.attached_instance_id = None;
        v.device = None;
        v.state = VolumeState::Available;
        v.last_attached = Some(now);
        Ok(Mutation::Applied(v.clone()))
    }

    /// `AttachVolume` through the port: an available volume to a live instance in its AZ.
    pub fn attach_volume_to(
        &mut self,
        volume_id: &str,
        instance_id: &str,
        device: &str,
        dry_run: bool,
        now: DateTime<Utc>,
    ) -> Result<Mutation<Volume>> {
        let inst = self
            .instances
            .get(instance_id)
            .ok_or_else(|| CloudError::not_found(ResourceKind::Instance, instance_id))?;
        if matches!(
            inst.inst.state,
            InstanceState::Terminated | InstanceState::ShuttingDown
        ) {
            return Err(CloudError::invalid(
                "instance_id",
                format!("{instance_id} is not running (IncorrectInstanceState)"),
            ));
        }
        let inst_az = inst.inst.az.clone();
        let v = self
            .volumes
            .get(volume_id)
            .ok_or_else(|| CloudError::not_found(ResourceKind::Volume, volume_id))?;
        if let Some(i) = &v.attached_instance_id {
            return Err(CloudError::invalid(
                "volume_id",
                format!("{volume_id} is already attached to {i} (VolumeInUse)"),
            ));
        }
        if v.az != inst_az {
            return Err(CloudError::invalid(
                "volume_id",
                format!(
                    "{volume_id} is in {} and {instance_id} in {inst_az}: a volume attaches only in its own AZ",
                    v.az
                ),
            ));
        }
        if dry_run {
            return Ok(Mutation::DryRun(DryRunOk {
                operation: "AttachVolume".into(),
                resource_ids: vec![volume_id.to_string(), instance_id.to_string()],
                message: format!("would attach {volume_id} to {instance_id}"),
            }));
        }
        self.attach_volume(volume_id, instance_id, Some(device), now)?;
        self.volumes
            .get(volume_id)
            .cloned()
            .map(Mutation::Applied)
            .ok_or_else(|| CloudError::Other("volume vanished".into()))
    }

    /// Sets a tag on an instance (test and Lab hook); cluster membership follows the tags
    /// as EC2 inventory would report it.
    pub fn tag_instance(&mut self, instance_id: &str, key: &str, value: &str) -> Result<()> {
        let i = self
            .instances
            .get_mut(instance_id)
            .ok_or_else(|| CloudError::not_found(ResourceKind::Instance, instance_id))?;
        i.inst.tags.insert(key.to_string(), value.to_string());
        i.inst.cluster = cluster_from_tags(&i.inst.tags);
        Ok(())
    }

    pub fn delete_volume(&mut self, volume_id: &str, dry_run: bool) -> Result<Mutation<()>> {
        let v = self
            .volumes
            .get(volume_id)
            .ok_or_else(|| CloudError::not_found(ResourceKind::Volume, volume_id))?;
        if let Some(i) = &v.attached_instance_id {
            return Err(CloudError::invalid(
                "volume_id",
                format!("{volume_id} is attached to {i} (VolumeInUse)"),
            ));
        }
        if dry_run {
            return Ok(Mutation::DryRun(DryRunOk {
                operation: "DeleteVolume".into(),
                resource_ids: vec![volume_id.to_string()],
                message: format!("would delete {} GiB", v.size_gib),
            }));
        }
        self.volumes.remove(volume_id);
        Ok(Mutation::Applied(()))
    }

    pub fn delete_snapshot(&mut self, snapshot_id: &str, dry_run: bool) -> Result<Mutation<()>> {
        let s = self
            .snapshots
            .get(snapshot_id)
            .ok_or_else(|| CloudError::not_found(ResourceKind::Snapshot, snapshot_id))?;
        if let Some(ami) = s
            .source_ami
            .as_ref()
            .filter(|a| self.registered_amis.contains(*a))
        {
            return Err(CloudError::invalid(
                "snapshot_id",
                format!("{snapshot_id} is in use by {ami} (InvalidSnapshot.InUse)"),
            ));
        }
        if dry_run {
            return Ok(Mutation::DryRun(DryRunOk {
                operation: "DeleteSnapshot".into(),
                resource_ids: vec![snapshot_id.to_string()],
                message: format!("would delete {} GiB", s.size_gib),
            }));
        }
        self.snapshots.remove(snapshot_id);
        self.pending_snapshots.remove(snapshot_id);
        self.retired_snapshots.insert(snapshot_id.to_string());
        Ok(Mutation::Applied(()))
    }
}

/// Usage of a pod at `t`: request × base utilisation × weekly pattern × noise. Memory
/// follows the pattern weakly (caches and heaps do not shrink at night).
fn sample(p: &SimPod, pattern: UsagePattern, t: DateTime<Utc>) -> UsageSample {
    let slot = t.timestamp().div_euclid(USAGE_GRID_SECONDS) * USAGE_GRID_SECONDS;
    let grid_t = DateTime::from_timestamp(slot, 0).unwrap_or(t);
    let f = pattern.factor(grid_t);
    let n = normal(mix(p.key, slot as u64));
    let cpu_req = f64::from(p.pod.cpu_request_millicores);
    let mem_req = f64::from(p.pod.memory_request_mib);
    let cpu = (cpu_req * p.base_cpu * f * (1.0 + 0.15 * n)).clamp(1.0, cpu_req * 3.0);
    let mem = (mem_req * p.base_mem * (0.7 + 0.3 * f) * (1.0 + 0.03 * n)).clamp(1.0, mem_req * 1.5);
    UsageSample {
        at: t,
        cpu_millicores: cpu.round() as u32,
        memory_mib: mem.round() as u32,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allocatable_is_below_capacity() {
        let t = Catalog::embedded().get("m5.large");
        let (cpu, mem) = t.map(allocatable).unwrap_or((0, 0));
        assert!((1800..2000).contains(&cpu), "{cpu}");
        assert!((6500..8192).contains(&mem), "{mem}");
    }
}
