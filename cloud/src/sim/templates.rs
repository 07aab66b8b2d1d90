//! Shapes of the simulated account: cluster archetypes, workloads and stray instances.
//!
//! Each archetype carries a kind of waste the product should find: on-demand node groups
//! that could be spot, dev/staging clusters that idle off-hours, clusters whose pods
//! request far more than they use, GPU nodes kept warm for a bursty workload.

use super::usage::UsagePattern;
use crate::types::{Lifecycle, WorkloadKind};

pub(crate) struct NgTemplate {
    pub(crate) name: &'static str,
    pub(crate) types: &'static [&'static str],
    pub(crate) lifecycle: Lifecycle,
    pub(crate) weight: usize,
}

pub(crate) struct ClusterTemplate {
    pub(crate) base_name: &'static str,
    pub(crate) env: &'static str,
    pub(crate) pattern: UsagePattern,
    /// Pods request several times what they use.
    pub(crate) overprovisioned: bool,
    pub(crate) version: &'static str,
    pub(crate) node_groups: &'static [NgTemplate],
}

pub(crate) const CLUSTER_TEMPLATES: &[ClusterTemplate] = &[
    ClusterTemplate {
        base_name: "prod-core",
        env: "production",
        pattern: UsagePattern::Diurnal,
        overprovisioned: false,
        version: "1.31",
        node_groups: &[
            NgTemplate {
                name: "system",
                types: &["m5.xlarge", "m5a.xlarge", "m6i.xlarge"],
                lifecycle: Lifecycle::OnDemand,
                weight: 3,
            },
            NgTemplate {
                name: "spot-compute",
                types: &["c5.2xlarge", "c6i.2xlarge", "c5a.2xlarge"],
                lifecycle: Lifecycle::Spot,
                weight: 4,
            },
        ],
    },
    ClusterTemplate {
        base_name: "staging",
        env: "staging",
        pattern: UsagePattern::OfficeHours,
        overprovisioned: true,
        version: "1.30",
        node_groups: &[NgTemplate {
            name: "general",
            types: &["m5.large", "m6i.large"],
            lifecycle: Lifecycle::OnDemand,
            weight: 1,
        }],
    },
    ClusterTemplate {
        base_name: "dev",
        env: "development",
        pattern: UsagePattern::OfficeHours,
        overprovisioned: false,
        version: "1.31",
        node_groups: &[
            NgTemplate {
                name: "burstable",
                types: &["t3.xlarge", "t3a.xlarge"],
                lifecycle: Lifecycle::OnDemand,
                weight: 3,
            },
            NgTemplate {
                name: "arm-spot",
                types: &["m6g.xlarge", "m7g.xlarge"],
                lifecycle: Lifecycle::Spot,
                weight: 2,
            },
        ],
    },
    ClusterTemplate {
        base_name: "data-pipeline",
        env: "production",
        pattern: UsagePattern::NightlyBatch,
        overprovisioned: false,
        version: "1.29",
        node_groups: &[
            NgTemplate {
                name: "memory-spot",
                types: &["r5.xlarge", "r6i.xlarge", "r5a.xlarge"],
                lifecycle: Lifecycle::Spot,
                weight: 4,
            },
            NgTemplate {
                name: "control",
                types: &["m6g.large"],
                lifecycle: Lifecycle::OnDemand,
                weight: 1,
            },
        ],
    },
    ClusterTemplate {
        base_name: "ml-inference",
        env: "production",
        pattern: UsagePattern::Diurnal,
        overprovisioned: true,
        version: "1.32",
        node_groups: &[
            NgTemplate {
                name: "gpu",
                types: &["g4dn.xlarge", "g4dn.2xlarge"],
                lifecycle: Lifecycle::OnDemand,
                weight: 2,
            },
            NgTemplate {
                name: "cpu",
                types: &["c6g.xlarge", "c7g.xlarge"],
                lifecycle: Lifecycle::OnDemand,
                weight: 3,
            },
        ],
    },
];

/// (namespace, name, kind, cpu millicores, memory MiB) of typical workloads.
pub(crate) const WORKLOADS: &[(&str, &str, WorkloadKind, u32, u32)] = &[
    ("shop", "frontend", WorkloadKind::Deployment, 250, 512),
    ("shop", "checkout", WorkloadKind::Deployment, 500, 1024),
    ("shop", "cart", WorkloadKind::Deployment, 250, 512),
    ("shop", "catalog", WorkloadKind::Deployment, 500, 1024),
    ("shop", "search", WorkloadKind::Deployment, 1000, 2048),
    ("shop", "payments", WorkloadKind::Deployment, 500, 768),
    (
        "platform",
        "api-gateway",
        WorkloadKind::Deployment,
        500,
        512,
    ),
    ("platform", "auth", WorkloadKind::Deployment, 250, 256),
    (
        "platform",
        "notifications",
        WorkloadKind::Deployment,
        100,
        256,
    ),
    (
        "platform",
        "ingress-nginx",
        WorkloadKind::Deployment,
        500,
        512,
    ),
    ("data", "kafka", WorkloadKind::StatefulSet, 2000, 4096),
    ("data", "postgres", WorkloadKind::StatefulSet, 1000, 4096),
    ("data", "redis", WorkloadKind::StatefulSet, 500, 2048),
    ("data", "etl-worker", WorkloadKind::Deployment, 1500, 3072),
    ("data", "spark-executor", WorkloadKind::Job, 2000, 6144),
    ("ml", "model-server", WorkloadKind::Deployment, 2000, 4096),
    ("ml", "feature-store", WorkloadKind::Deployment, 1000, 2048),
    (
        "monitoring",
        "prometheus",
        WorkloadKind::StatefulSet,
        1000,
        4096,
    ),
    ("monitoring", "grafana", WorkloadKind::Deployment, 250, 512),
    ("default", "cron-reports", WorkloadKind::Job, 250, 512),
];

/// (Name tag, type, lifecycle, stopped) of instances outside any cluster.
pub(crate) const UNREGISTERED: &[(&str, &str, Lifecycle, bool)] = &[
    ("bastion", "t3.micro", Lifecycle::OnDemand, false),
    ("jenkins", "m5.2xlarge", Lifecycle::OnDemand, false),
    ("legacy-billing", "m4.xlarge", Lifecycle::OnDemand, false),
    ("vpn-gateway", "t3.small", Lifecycle::OnDemand, false),
    ("grafana-old", "t3.large", Lifecycle::OnDemand, false),
    ("etl-runner", "c5.4xlarge", Lifecycle::Spot, false),
    ("sftp", "t3a.medium", Lifecycle::OnDemand, false),
    ("old-elasticsearch", "r5.2xlarge", Lifecycle::OnDemand, true),
    ("reporting-db", "r6i.xlarge", Lifecycle::OnDemand, false),
    ("build-agent", "c6g.2xlarge", Lifecycle::OnDemand, false),
];

/// Kubernetes' random-suffix alphabet (no vowels, no confusable digits).
pub(crate) const K8S_ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
