//! Node templates as an organization's reusable resource: which instance families,
//! architectures and sizes nodes may use, how they are bought (capacity type, spot
//! strategy, on-demand fallback), their root volume, security groups, and the labels and
//! taints put on launched nodes. Pure: validation against an instance catalog and the live
//! cost estimate from a scored market; storage and HTTP live elsewhere.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::catalog::{Arch, Catalog};
use crate::spot::{AllocationStrategy, CapacityType, NodeTemplate};

/// Root volume of launched nodes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Storage {
    /// `gp3`, `gp2`, `io1` or `io2`.
    pub volume_type: String,
    pub size_gib: u32,
    /// Provisioned IOPS (gp3, io1, io2); `None` takes the volume type's baseline.
    #[serde(default)]
    pub iops: Option<u32>,
}

impl Default for Storage {
    fn default() -> Self {
        Storage {
            volume_type: "gp3".into(),
            size_gib: 50,
            iops: None,
        }
    }
}

/// A Kubernetes taint put on launched nodes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Taint {
    pub key: String,
    #[serde(default)]
    pub value: Option<String>,
    /// `NoSchedule`, `PreferNoSchedule` or `NoExecute`.
    pub effect: String,
}

/// Everything a node template says.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TemplateSpec {
    /// Instance families (`m6i`, `c7g`, …); at least one.
    pub families: Vec<String>,
    /// Allowed architectures; empty means those of the families.
    #[serde(default)]
    pub architectures: Vec<Arch>,
    /// Sizes never used (`nano`, `micro`, `small`, …).
    #[serde(default)]
    pub excluded_sizes: Vec<String>,
    pub capacity_type: CapacityType,
    pub strategy: AllocationStrategy,
    #[serde(default)]
    pub allow_burstable: bool,
    pub on_demand_fallback: bool,
    #[serde(default)]
    pub storage: Storage,
    /// Security group ids (`sg-…`) attached to launched nodes; empty keeps the node
    /// group's.
    #[serde(default)]
    pub security_groups: Vec<String>,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    #[serde(default)]
    pub taints: Vec<Taint>,
}

/// A field the template gets wrong, and why (for a 422 naming the field).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

fn err(field: &str, message: impl Into<String>) -> FieldError {
    FieldError {
        field: field.into(),
        message: message.into(),
    }
}

/// Root volume bounds (EBS).
pub const MIN_DISK_GIB: u32 = 20;
pub const MAX_DISK_GIB: u32 = 16_384;

/// The IOPS range a volume type accepts, or `None` when it takes no IOPS setting.
fn iops_range(volume_type: &str) -> Option<(u32, u32)> {
    match volume_type {
        "gp3" => Some((3_000, 16_000)),
        "io1" => Some((100, 64_000)),
        "io2" => Some((100, 256_000)),
        _ => None,
    }
}

const VOLUME_TYPES: &[&str] = &["gp3", "gp2", "io1", "io2"];
const TAINT_EFFECTS: &[&str] = &["NoSchedule", "PreferNoSchedule", "NoExecute"];

/// A Kubernetes qualified name (label key name part, taint key name part).
fn qualified_name(s: &str) -> bool {
    let n = s.len();
    n > 0
        && n <= 63
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.')
        && s.chars().next().is_some_and(|c| c.is_ascii_alphanumeric())
        && s.chars().last().is_some_and(|c| c.is_ascii_alphanumeric())
}

/// A label or taint key: `[prefix/]name`, the prefix a DNS subdomain.
fn valid_key(key: &str) -> bool {
    match key.split_once('/') {
        Some((prefix, name)) => {
            !prefix.is_empty()
                && prefix.len() <= 253
                && prefix.split('.').all(|p| {
                    !p.is_empty()
                        && p.chars()
                            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
                })
                && qualified_name(name)
        }
        None => qualified_name(key),
    }
}

fn valid_value(v: &str) -> bool {
    v.is_empty() || qualified_name(v)
}

/// The architectures of each family in `catalog`.
pub fn family_arches(catalog: &Catalog) -> BTreeMap<String, BTreeSet<Arch>> {
    let mut out: BTreeMap<String, BTreeSet<Arch>> = BTreeMap::new();
    for t in catalog.types() {
        out.entry(t.family.clone()).or_default().insert(t.arch);
    }
    out
}

/// Checks a template against the instance catalog: at least one family, every family
/// known, architectures compatible with the families (ARM64 with x86-only families such
/// as `g4dn` or `p3`, or x86_64 with Graviton-only families, is refused), sizes, disk
/// bounds and IOPS for the volume type, security group ids, label and taint syntax.
pub fn validate(
    spec: &TemplateSpec,
    families: &BTreeMap<String, BTreeSet<Arch>>,
) -> Result<(), FieldError> {
    if spec.families.is_empty() {
        return Err(err(
            "families",
            "choose at least one instance family (e.g. m6i, c7g)",
        ));
    }
    let mut seen = BTreeSet::new();
    for f in &spec.families {
        if !seen.insert(f) {
            return Err(err("families", format!("family {f} is listed twice")));
        }
        if !families.contains_key(f) {
            return Err(err(
                "families",
                format!("unknown instance family {f:?} (not in the instance catalog)"),
            ));
        }
    }
    if !spec.architectures.is_empty() {
        let wanted: BTreeSet<Arch> = spec.architectures.iter().copied().collect();
        let incompatible: Vec<&str> = spec
            .families
            .iter()
            .filter(|f| families.get(*f).is_some_and(|a| a.is_disjoint(&wanted)))
            .map(String::as_str)
            .collect();
        if !incompatible.is_empty() {
            let arch = |a: &Arch| match a {
                Arch::X86_64 => "x86_64",
                Arch::Arm64 => "arm64",
            };
            let names: Vec<&str> = wanted.iter().map(arch).collect();
            return Err(err(
                "architectures",
                format!(
                    "{} {} no {} instance types: remove {} or allow {} too",
                    incompatible.join(", "),
                    if incompatible.len() == 1 {
                        "has"
                    } else {
                        "have"
                    },
                    names.join(" or "),
                    if incompatible.len() == 1 {
                        "it"
                    } else {
                        "them"
                    },
                    if wanted.contains(&Arch::Arm64) {
                        "x86_64"
                    } else {
                        "arm64"
                    },
                ),
            ));
        }
    }
    for s in &spec.excluded_sizes {
        if s.is_empty() || !s.chars().all(|c| c.is_ascii_alphanumeric()) {
            return Err(err(
                "excluded_sizes",
                format!("{s:?} is not an instance size"),
            ));
        }
    }
    let st = &spec.storage;
    if !VOLUME_TYPES.contains(&st.volume_type.as_str()) {
        return Err(err(
            "storage.volume_type",
            format!("must be one of {}", VOLUME_TYPES.join(", ")),
        ));
    }
    if !(MIN_DISK_GIB..=MAX_DISK_GIB).contains(&st.size_gib) {
        return Err(err(
            "storage.size_gib",
            format!("must be between {MIN_DISK_GIB} and {MAX_DISK_GIB} GiB"),
        ));
    }
    match (st.iops, iops_range(&st.volume_type)) {
        (Some(_), None) => {
            return Err(err(
                "storage.iops",
                format!("{} volumes take no IOPS setting", st.volume_type),
            ))
        }
        (Some(i), Some((lo, hi))) if !(lo..=hi).contains(&i) => {
            return Err(err(
                "storage.iops",
                format!("{} IOPS must be between {lo} and {hi}", st.volume_type),
            ))
        }
        (None, _) if st.volume_type.starts_with("io") => {
            return Err(err(
                "storage.iops",
                format!("{} volumes need provisioned IOPS", st.volume_type),
            ))
        }
        _ => {}
    }
    for g in &spec.security_groups {
        let hex = g.strip_prefix("sg-").unwrap_or("");
        if !(hex.len() == 8 || hex.len() == 17) || !hex.chars().all(|c| c.is_ascii_hexdigit()) {
            return Err(err(
                "security_groups",
                format!("{g:?} is not a security group id (sg- and 8 or 17 hex digits)"),
            ));
        }
    }
    for (k, v) in &spec.labels {
        if !valid_key(k) {
            return Err(err("labels", format!("{k:?} is not a valid label key")));
        }
        if !valid_value(v) {
            return Err(err(
                "labels",
                format!("{v:?} is not a valid label value for {k}"),
            ));
        }
    }
    for t in &spec.taints {
        if !valid_key(&t.key) {
            return Err(err(
                "taints",
                format!("{:?} is not a valid taint key", t.key),
            ));
        }
        if let Some(v) = &t.value {
            if !valid_value(v) {
                return Err(err("taints", format!("{v:?} is not a valid taint value")));
            }
        }
        if !TAINT_EFFECTS.contains(&t.effect.as_str()) {
            return Err(err(
                "taints",
                format!("effect must be one of {}", TAINT_EFFECTS.join(", ")),
            ));
        }
    }
    Ok(())
}

impl TemplateSpec {
    /// What the spot selector and the planner follow.
    pub fn node_template(&self) -> NodeTemplate {
        NodeTemplate {
            allowed_families: self.families.clone(),
            architectures: self.architectures.clone(),
            excluded_sizes: self.excluded_sizes.clone(),
            capacity_type: self.capacity_type,
            strategy: self.strategy,
            allow_burstable: self.allow_burstable,
            on_demand_fallback: self.on_demand_fallback,
        }
    }
}

/// What nodes of a template cost now: the pools it admits in a scored market.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Estimate {
    /// Instance types the template admits.
    pub instance_types: usize,
    /// Spot pools (type × zone) the template admits.
    pub pools: usize,
    /// Mean current spot price of those pools, USD/h; `None` without pools.
    pub avg_spot_hourly: Option<f64>,
    /// Mean on-demand price of the admitted types, USD/h; `None` without types.
    pub avg_on_demand_hourly: Option<f64>,
    /// `1 − spot / on-demand` of the means, when both exist.
    pub spot_discount: Option<f64>,
}

/// The live cost estimate of a template on `catalog` (the scored market).
pub fn estimate(spec: &TemplateSpec, catalog: &Catalog) -> Estimate {
    let t = spec.node_template();
    let admitted: BTreeSet<&str> = catalog
        .types()
        .iter()
        .filter(|it| t.rejects(it).is_none())
        .map(|it| it.name.as_str())
        .collect();
    let od: Vec<f64> = catalog
        .types()
        .iter()
        .filter(|it| admitted.contains(it.name.as_str()))
        .map(|it| it.on_demand_hourly)
        .collect();
    let spot: Vec<f64> = catalog
        .pools()
        .iter()
        .filter(|p| admitted.contains(p.instance_type.as_str()))
        .map(|p| p.spot_price)
        .collect();
    let mean = |v: &[f64]| (!v.is_empty()).then(|| v.iter().sum::<f64>() / v.len() as f64);
    let (avg_spot_hourly, avg_on_demand_hourly) = (mean(&spot), mean(&od));
    Estimate {
        instance_types: admitted.len(),
        pools: spot.len(),
        spot_discount: match (avg_spot_hourly, avg_on_demand_hourly) {
            (Some(s), Some(o)) if o > 0.0 => Some(1.0 - s / o),
            _ => None,
        },
        avg_spot_hourly,
        avg_on_demand_hourly,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::{InstanceType, SpotPool};

    fn it(name: &str, arch: Arch, od: f64) -> InstanceType {
        let family = name.split('.').next().unwrap_or(name).to_string();
        InstanceType {
            name: name.into(),
            burstable: family.starts_with('t'),
            family,
            vcpu: 4,
            memory_mib: 16_384,
            gpus: 0,
            arch,
            on_demand_hourly: od,
        }
    }

    fn catalog() -> Catalog {
        let types = vec![
            it("m6i.xlarge", Arch::X86_64, 0.192),
            it("m6g.xlarge", Arch::Arm64, 0.154),
            it("g4dn.xlarge", Arch::X86_64, 0.526),
            it("c7g.large", Arch::Arm64, 0.0725),
            it("t3.small", Arch::X86_64, 0.0208),
        ];
        let pools = vec![
            SpotPool {
                instance_type: "m6i.xlarge".into(),
                az: "us-east-1a".into(),
                spot_price: 0.08,
                interruption_probability: 0.05,
            },
            SpotPool {
                instance_type: "m6i.xlarge".into(),
                az: "us-east-1b".into(),
                spot_price: 0.10,
                interruption_probability: 0.05,
            },
            SpotPool {
                instance_type: "m6g.xlarge".into(),
                az: "us-east-1a".into(),
                spot_price: 0.06,
                interruption_probability: 0.05,
            },
            SpotPool {
                instance_type: "g4dn.xlarge".into(),
                az: "us-east-1a".into(),
                spot_price: 0.2,
                interruption_probability: 0.05,
            },
        ];
        Catalog::new(types, pools).expect("catalog")
    }

    fn spec(families: &[&str]) -> TemplateSpec {
        TemplateSpec {
            families: families.iter().map(|f| f.to_string()).collect(),
            architectures: Vec::new(),
            excluded_sizes: vec!["nano".into()],
            capacity_type: CapacityType::Spot,
            strategy: AllocationStrategy::CapacityOptimized,
            allow_burstable: false,
            on_demand_fallback: true,
            storage: Storage::default(),
            security_groups: vec!["sg-0123456789abcdef0".into()],
            labels: [("team".to_string(), "web".to_string())].into(),
            taints: vec![Taint {
                key: "dedicated".into(),
                value: Some("web".into()),
                effect: "NoSchedule".into(),
            }],
        }
    }

    fn field(s: &TemplateSpec) -> Option<String> {
        validate(s, &family_arches(&catalog()))
            .err()
            .map(|e| e.field)
    }

    #[test]
    fn a_sound_template_passes() {
        assert_eq!(field(&spec(&["m6i", "m6g"])), None);
    }

    #[test]
    fn every_rule_names_its_field() {
        assert_eq!(field(&spec(&[])).as_deref(), Some("families"));
        assert_eq!(field(&spec(&["m6i", "m6i"])).as_deref(), Some("families"));
        assert_eq!(field(&spec(&["z9x"])).as_deref(), Some("families"));
        // ARM64 with an x86-only GPU family, and x86 with a Graviton family.
        let mut s = spec(&["g4dn", "m6g"]);
        s.architectures = vec![Arch::Arm64];
        let Err(e) = validate(&s, &family_arches(&catalog())) else {
            panic!("arm64 with g4dn must be refused");
        };
        assert_eq!(e.field, "architectures");
        assert!(
            e.message.contains("g4dn") && !e.message.contains("m6g"),
            "{e}"
        );
        let mut s = spec(&["c7g"]);
        s.architectures = vec![Arch::X86_64];
        assert_eq!(field(&s).as_deref(), Some("architectures"));
        // Both architectures admit both kinds of family.
        s.architectures = vec![Arch::X86_64, Arch::Arm64];
        assert_eq!(field(&s), None);
        let mut s = spec(&["m6i"]);
        s.storage.size_gib = 10;
        assert_eq!(field(&s).as_deref(), Some("storage.size_gib"));
        s.storage.size_gib = MAX_DISK_GIB + 1;
        assert_eq!(field(&s).as_deref(), Some("storage.size_gib"));
        s.storage.size_gib = 100;
        s.storage.iops = Some(20_000);
        assert_eq!(field(&s).as_deref(), Some("storage.iops"));
        s.storage.volume_type = "gp2".into();
        s.storage.iops = Some(3_000);
        assert_eq!(field(&s).as_deref(), Some("storage.iops"));
        s.storage.volume_type = "io2".into();
        s.storage.iops = None;
        assert_eq!(field(&s).as_deref(), Some("storage.iops"));
        s.storage.volume_type = "st1".into();
        assert_eq!(field(&s).as_deref(), Some("storage.volume_type"));
        let mut s = spec(&["m6i"]);
        s.security_groups = vec!["sg-xyz".into()];
        assert_eq!(field(&s).as_deref(), Some("security_groups"));
        let mut s = spec(&["m6i"]);
        s.labels.insert("bad key!".into(), "x".into());
        assert_eq!(field(&s).as_deref(), Some("labels"));
        let mut s = spec(&["m6i"]);
        s.labels.insert("example.com/tier".into(), "-bad".into());
        assert_eq!(field(&s).as_deref(), Some("labels"));
        let mut s = spec(&["m6i"]);
        s.taints[0].effect = "Sometimes".into();
        assert_eq!(field(&s).as_deref(), Some("taints"));
        let mut s = spec(&["m6i"]);
        s.excluded_sizes = vec!["x.large".into()];
        assert_eq!(field(&s).as_deref(), Some("excluded_sizes"));
    }

    #[test]
    fn the_estimate_averages_the_admitted_pools() {
        let e = estimate(&spec(&["m6i", "m6g"]), &catalog());
        assert_eq!(e.instance_types, 2);
        assert_eq!(e.pools, 3);
        let close = |a: Option<f64>, b: f64| {
            assert!((a.unwrap_or(f64::NAN) - b).abs() < 1e-9, "{a:?} vs {b}")
        };
        close(e.avg_spot_hourly, (0.08 + 0.10 + 0.06) / 3.0);
        close(e.avg_on_demand_hourly, (0.192 + 0.154) / 2.0);
        close(e.spot_discount, 1.0 - 0.08 / 0.173);
        // Burstable t3 stays out unless allowed; a family with no pools has no spot mean.
        let e = estimate(&spec(&["t3"]), &catalog());
        assert_eq!((e.instance_types, e.pools, e.avg_spot_hourly), (0, 0, None));
        let mut s = spec(&["t3"]);
        s.allow_burstable = true;
        let e = estimate(&s, &catalog());
        assert_eq!((e.instance_types, e.pools), (1, 0));
        assert!(e.avg_spot_hourly.is_none() && e.spot_discount.is_none());
    }
}
