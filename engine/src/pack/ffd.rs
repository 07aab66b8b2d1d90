//! Karpenter-style first-fit-decreasing.
//!
//! Pods are sorted by CPU, then memory (descending; id breaks ties). Each pod goes on the
//! first open node that can still take it; an open node keeps the set of offers that
//! can hold all its pods so far, and a new node starts with every offer that fits the
//! pod. At the end each node buys the cheapest offer left in its set. Fast and
//! deterministic, but it fills nodes up to the *largest* remaining type, which is why it
//! lands ~1.35–1.46× above the LP bound on mixed workloads.

use crate::catalog::Resources;

use super::Prepared;

struct OpenNode {
    pods: Vec<usize>,
    used: Resources,
    /// Offer indices (price order) that can still host every pod on the node.
    cands: Vec<usize>,
    /// Component-wise max allocatable over `cands`: a cheap necessary test.
    max_cap: Resources,
    groups: Vec<usize>,
}

fn max_cap(prep: &Prepared<'_>, cands: &[usize]) -> Resources {
    cands.iter().fold(Resources::default(), |acc, &o| {
        acc.component_max(&prep.offers[o].allocatable)
    })
}

/// Returns (offer index, pod indices) per node.
pub(crate) fn solve(prep: &Prepared<'_>) -> Vec<(usize, Vec<usize>)> {
    let all: Vec<usize> = (0..prep.pods.len()).collect();
    solve_subset(prep, &all)
}

/// FFD over a subset of the pods (indices into `prep.pods`).
pub(crate) fn solve_subset(prep: &Prepared<'_>, subset: &[usize]) -> Vec<(usize, Vec<usize>)> {
    let pods = prep.pods;
    let mut order: Vec<usize> = subset.to_vec();
    order.sort_by(|&a, &b| {
        let (pa, pb) = (&pods[a], &pods[b]);
        pb.cpu_millis
            .cmp(&pa.cpu_millis)
            .then(pb.memory_mib.cmp(&pa.memory_mib))
            .then(pb.gpus.cmp(&pa.gpus))
            .then_with(|| pa.id.cmp(&pb.id))
    });
    let mut nodes: Vec<OpenNode> = Vec::new();
    for p in order {
        let shape = &prep.shapes[prep.pod_shape[p]];
        let req = shape.req;
        let mut placed = false;
        for node in nodes.iter_mut() {
            if shape.group.is_some_and(|g| node.groups.contains(&g)) {
                continue;
            }
            let used = node.used.saturating_add(&req);
            if !used.fits_in(&node.max_cap) {
                continue;
            }
            let kept: Vec<usize> = node
                .cands
                .iter()
                .copied()
                .filter(|&o| {
                    let offer = prep.offers[o];
                    used.fits_in(&offer.allocatable) && shape.eligible(offer)
                })
                .collect();
            if kept.is_empty() {
                continue;
            }
            node.max_cap = max_cap(prep, &kept);
            node.cands = kept;
            node.used = used;
            node.pods.push(p);
            if let Some(g) = shape.group {
                node.groups.push(g);
            }
            placed = true;
            break;
        }
        if !placed {
            let cands: Vec<usize> = (0..prep.offers.len())
                .filter(|&o| shape.eligible(prep.offers[o]))
                .collect();
            // Prepared::new guarantees at least one eligible offer per shape.
            nodes.push(OpenNode {
                pods: vec![p],
                used: req,
                max_cap: max_cap(prep, &cands),
                cands,
                groups: shape.group.into_iter().collect(),
            });
        }
    }
    nodes
        .into_iter()
        .filter_map(|n| n.cands.first().map(|&o| (o, n.pods)))
        .collect()
}
