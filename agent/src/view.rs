//! The agent's view of the cluster, fed by the watchers, and the diff against what the
//! control plane last acknowledged.

use std::collections::{BTreeMap, BTreeSet};

use chrono::Utc;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use spot_agent_protocol as proto;

use crate::convert;

/// The watched resources, in heartbeat order.
pub const RESOURCES: [&str; 4] = ["nodes", "pods", "poddisruptionbudgets", "events"];
/// Resources that must be listed before the first snapshot.
pub const SNAPSHOT_RESOURCES: [&str; 3] = ["nodes", "pods", "poddisruptionbudgets"];
/// Upper bound of buffered events and usage samples while the control plane is away.
pub const MAX_BUFFERED: usize = 20_000;

/// One converted object from a watcher.
#[derive(Debug, Clone)]
pub enum Item {
    Node(proto::Node),
    Pod(proto::Pod),
    Pdb(proto::Pdb, Option<LabelSelector>),
    Event(String, proto::ClusterEvent),
}

impl Item {
    pub fn key(&self) -> String {
        match self {
            Item::Node(n) => n.name.clone(),
            Item::Pod(p) => p.key(),
            Item::Pdb(p, _) => p.key(),
            Item::Event(k, _) => k.clone(),
        }
    }
}

#[derive(Debug, Default)]
pub struct View {
    nodes: BTreeMap<String, proto::Node>,
    /// Pods without PDB membership (computed when the view is read).
    pods: BTreeMap<String, proto::Pod>,
    pdbs: BTreeMap<String, (proto::Pdb, Option<LabelSelector>)>,
    event_keys: BTreeSet<String>,
    events: Vec<proto::ClusterEvent>,
    usage: Vec<proto::UsageSample>,
    health: BTreeMap<&'static str, proto::WatchHealth>,
    synced: BTreeSet<&'static str>,
    /// A watcher re-listed (or the control plane asked): send a full snapshot next.
    pub need_snapshot: bool,
}

/// What the control plane holds (the last acknowledged snapshot plus deltas).
#[derive(Debug, Default, Clone)]
pub struct Sent {
    nodes: BTreeMap<String, proto::Node>,
    pods: BTreeMap<String, proto::Pod>,
    pdbs: BTreeMap<String, proto::Pdb>,
}

impl View {
    pub fn new() -> Self {
        let mut v = View::default();
        for r in RESOURCES {
            v.health.insert(
                r,
                proto::WatchHealth {
                    resource: r.to_string(),
                    healthy: false,
                    objects: 0,
                    last_event_at: None,
                    last_error: None,
                    relists: 0,
                },
            );
        }
        v
    }

    fn count(&self, resource: &str) -> u64 {
        (match resource {
            "nodes" => self.nodes.len(),
            "pods" => self.pods.len(),
            "poddisruptionbudgets" => self.pdbs.len(),
            _ => self.event_keys.len(),
        }) as u64
    }

    fn touch(&mut self, resource: &'static str) {
        let objects = self.count(resource);
        if let Some(h) = self.health.get_mut(resource) {
            h.healthy = true;
            h.objects = objects;
            h.last_event_at = Some(Utc::now());
        }
    }

    /// A watcher finished a (re-)list: replace its objects wholesale.
    pub fn replace(&mut self, resource: &'static str, items: Vec<Item>) {
        match resource {
            "nodes" => self.nodes.clear(),
            "pods" => self.pods.clear(),
            "poddisruptionbudgets" => self.pdbs.clear(),
            _ => self.event_keys.clear(),
        }
        for item in items {
            self.insert(item, false);
        }
        let relist = !self.synced.insert(resource);
        if let Some(h) = self.health.get_mut(resource) {
            if relist {
                h.relists += 1;
            }
            h.last_error = None;
        }
        if relist && resource != "events" {
            self.need_snapshot = true;
        }
        self.touch(resource);
    }

    fn insert(&mut self, item: Item, live: bool) {
        match item {
            Item::Node(n) => {
                self.nodes.insert(n.name.clone(), n);
            }
            Item::Pod(p) => {
                self.pods.insert(p.key(), p);
            }
            Item::Pdb(p, sel) => {
                self.pdbs.insert(p.key(), (p, sel));
            }
            Item::Event(k, e) => {
                self.event_keys.insert(k);
                // Events listed at start-up are history; only live ones are forwarded.
                if live && convert::event_is_interesting(&e) {
                    if self.events.len() >= MAX_BUFFERED {
                        self.events.remove(0);
                    }
                    self.events.push(e);
                }
            }
        }
    }

    pub fn apply(&mut self, resource: &'static str, item: Item) {
        self.insert(item, true);
        self.touch(resource);
    }

    pub fn delete(&mut self, resource: &'static str, key: &str) {
        match resource {
            "nodes" => {
                self.nodes.remove(key);
            }
            "pods" => {
                self.pods.remove(key);
            }
            "poddisruptionbudgets" => {
                self.pdbs.remove(key);
            }
            _ => {
                self.event_keys.remove(key);
            }
        }
        self.touch(resource);
    }

    pub fn watch_error(&mut self, resource: &'static str, error: String) {
        if let Some(h) = self.health.get_mut(resource) {
            h.healthy = false;
            h.last_error = Some(error);
        }
    }

    pub fn add_usage(&mut self, samples: Vec<proto::UsageSample>) {
        self.usage.extend(samples);
        if self.usage.len() > MAX_BUFFERED {
            let drop = self.usage.len() - MAX_BUFFERED;
            self.usage.drain(..drop);
        }
    }

    /// Whether every resource a snapshot needs has been listed.
    pub fn ready_for_snapshot(&self) -> bool {
        SNAPSHOT_RESOURCES.iter().all(|r| self.synced.contains(r))
    }

    pub fn health(&self) -> Vec<proto::WatchHealth> {
        RESOURCES
            .iter()
            .filter_map(|r| self.health.get(r).cloned())
            .collect()
    }

    /// Pods with their PDB membership.
    fn pods_with_pdbs(&self) -> BTreeMap<String, proto::Pod> {
        self.pods
            .iter()
            .map(|(k, p)| {
                let mut p = p.clone();
                p.pdbs = self
                    .pdbs
                    .values()
                    .filter(|(b, sel)| {
                        b.namespace == p.namespace
                            && convert::selector_matches(sel.as_ref(), &p.labels)
                    })
                    .map(|(b, _)| b.key())
                    .collect();
                (k.clone(), p)
            })
            .collect()
    }

    /// The whole view (takes the buffered usage samples) and what the control plane will
    /// hold once it acknowledges it.
    pub fn snapshot(&mut self) -> (proto::ClusterSnapshot, Sent) {
        let pods = self.pods_with_pdbs();
        let sent = Sent {
            nodes: self.nodes.clone(),
            pods: pods.clone(),
            pdbs: self
                .pdbs
                .iter()
                .map(|(k, (p, _))| (k.clone(), p.clone()))
                .collect(),
        };
        // Events are forwarded by deltas only; a snapshot supersedes the buffered ones.
        self.events.clear();
        let snap = proto::ClusterSnapshot {
            collected_at: Utc::now(),
            nodes: sent.nodes.values().cloned().collect(),
            pods: pods.into_values().collect(),
            pdbs: sent.pdbs.values().cloned().collect(),
            usage: std::mem::take(&mut self.usage),
            history: Vec::new(),
        };
        (snap, sent)
    }

    /// Changes since `sent` (takes the buffered events and usage) and the state after it.
    pub fn delta(&mut self, sent: &Sent) -> (proto::ClusterDelta, Sent) {
        let pods = self.pods_with_pdbs();
        let pdbs: BTreeMap<String, proto::Pdb> = self
            .pdbs
            .iter()
            .map(|(k, (p, _))| (k.clone(), p.clone()))
            .collect();
        let mut d = proto::ClusterDelta {
            collected_at: Some(Utc::now()),
            ..Default::default()
        };
        diff(
            &sent.nodes,
            &self.nodes,
            &mut d.nodes_upserted,
            &mut d.nodes_deleted,
        );
        diff(&sent.pods, &pods, &mut d.pods_upserted, &mut d.pods_deleted);
        diff(&sent.pdbs, &pdbs, &mut d.pdbs_upserted, &mut d.pdbs_deleted);
        d.events = std::mem::take(&mut self.events);
        d.usage = std::mem::take(&mut self.usage);
        let next = Sent {
            nodes: self.nodes.clone(),
            pods,
            pdbs,
        };
        (d, next)
    }

    /// Puts back events and usage of a delta or snapshot the control plane did not take.
    pub fn restore(&mut self, events: Vec<proto::ClusterEvent>, usage: Vec<proto::UsageSample>) {
        let mut e = events;
        e.append(&mut self.events);
        self.events = e;
        let mut u = usage;
        u.append(&mut self.usage);
        self.usage = u;
        if self.events.len() > MAX_BUFFERED {
            let drop = self.events.len() - MAX_BUFFERED;
            self.events.drain(..drop);
        }
        self.add_usage(Vec::new());
    }

    /// Node by name (for tests and the drain).
    pub fn node(&self, name: &str) -> Option<&proto::Node> {
        self.nodes.get(name)
    }
}

fn diff<T: Clone + PartialEq>(
    old: &BTreeMap<String, T>,
    new: &BTreeMap<String, T>,
    upserted: &mut Vec<T>,
    deleted: &mut Vec<String>,
) {
    for (k, v) in new {
        if old.get(k) != Some(v) {
            upserted.push(v.clone());
        }
    }
    for k in old.keys() {
        if !new.contains_key(k) {
            deleted.push(k.clone());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(name: &str, app: &str) -> Item {
        Item::Pod(proto::Pod {
            namespace: "ns".into(),
            name: name.into(),
            uid: None,
            node_name: None,
            phase: proto::PodPhase::Running,
            owner: None,
            requests: proto::Resources::default(),
            priority: None,
            priority_class: None,
            labels: [("app".to_string(), app.to_string())].into(),
            annotations: BTreeMap::new(),
            pdbs: vec![],
            do_not_disrupt: false,
            daemonset: false,
            mirror: false,
            unschedulable_reason: None,
            node_selector: BTreeMap::new(),
            created_at: None,
        })
    }

    fn pdb(name: &str, app: &str) -> Item {
        let sel: LabelSelector = serde_json::from_value(
            json!({"matchExpressions": [{"key": "app", "operator": "In", "values": [app]}]}),
        )
        .unwrap();
        Item::Pdb(
            proto::Pdb {
                namespace: "ns".into(),
                name: name.into(),
                match_labels: BTreeMap::new(),
                min_available: Some("1".into()),
                max_unavailable: None,
                disruptions_allowed: 0,
                current_healthy: 1,
                desired_healthy: 1,
                expected_pods: 1,
            },
            Some(sel),
        )
    }

    #[test]
    fn deltas_carry_only_changes_and_pdb_membership_follows_pdbs() {
        let mut v = View::new();
        v.replace("nodes", vec![]);
        v.replace("pods", vec![pod("a", "web"), pod("b", "db")]);
        assert!(!v.ready_for_snapshot());
        v.replace("poddisruptionbudgets", vec![]);
        assert!(v.ready_for_snapshot());
        assert!(!v.need_snapshot);
        let (snap, sent) = v.snapshot();
        assert_eq!(snap.pods.len(), 2);
        let (d, sent) = v.delta(&sent);
        assert!(d.is_empty());
        // a PDB selecting app=web by expression makes pod a a member: pod a is re-sent
        v.apply("poddisruptionbudgets", pdb("web-pdb", "web"));
        let (d, sent) = v.delta(&sent);
        assert_eq!(d.pdbs_upserted.len(), 1);
        assert_eq!(d.pods_upserted.len(), 1);
        assert_eq!(d.pods_upserted[0].pdbs, vec!["ns/web-pdb".to_string()]);
        v.delete("pods", "ns/b");
        let (d, _) = v.delta(&sent);
        assert_eq!(d.pods_deleted, vec!["ns/b".to_string()]);
        assert!(d.pods_upserted.is_empty());
        // a second list of the same resource is a re-list
        v.replace("pods", vec![]);
        assert!(v.need_snapshot);
        assert_eq!(v.health()[1].relists, 1);
    }
}
