//! The Lab's pure logic: the deterministic split of an instance set into the two arms of an
//! A/B test, the per-arm summary and verdict of a test, and the safety checklist a risk
//! model must pass before it can be graduated.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use crate::catalog::{Catalog, InstanceType, PoolKey, AVOID_THRESHOLD};

/// Boot time (launch request → instance running) a switch must stay under, in seconds.
pub const MAX_BOOT_SECS: f64 = 60.0;
/// Node Ready time (instance running → Ready node in the cluster) a switch must stay under.
pub const MAX_NODE_READY_SECS: f64 = 120.0;

/// FNV-1a (64 bit): a stable hash that does not depend on the platform or the process.
fn fnv1a(s: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in s.as_bytes() {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// Splits instances into arm `a` and arm `b`: ordered by a stable hash of the instance id
/// (ties by id), then alternated, so the same instances always give the same arms whatever
/// order they come in, and the arms differ in size by at most one.
pub fn assign(instance_ids: &[String]) -> Vec<(String, &'static str)> {
    let mut ids: Vec<&String> = instance_ids.iter().collect();
    ids.sort_by(|x, y| fnv1a(x).cmp(&fnv1a(y)).then_with(|| x.cmp(y)));
    ids.dedup();
    ids.into_iter()
        .enumerate()
        .map(|(i, id)| (id.clone(), if i % 2 == 0 { "a" } else { "b" }))
        .collect()
}

/// One tick of one arm.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Point {
    pub hourly_cost: f64,
    /// The same instance types at on-demand prices.
    pub on_demand_cost: f64,
    pub interruptions: u64,
    pub decisions: u64,
}

/// What an arm did over a test.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ArmSummary {
    pub ticks: u64,
    /// Mean of the per-tick hourly cost of the arm's running instances (USD/h).
    pub avg_hourly_cost: f64,
    /// Mean hourly cost per slot.
    pub avg_hourly_cost_per_instance: f64,
    /// Cost over what the same instance types would cost on demand (1 = no saving): the
    /// arms' figure of merit, fair whatever sizes each set happens to hold.
    pub cost_vs_on_demand: f64,
    pub interruptions: u64,
    /// Moves and replacements (decisions that changed capacity).
    pub decisions: u64,
}

pub fn summarize(points: &[Point], slots: usize) -> ArmSummary {
    let n = points.len();
    let avg = if n == 0 {
        0.0
    } else {
        points.iter().map(|p| p.hourly_cost).sum::<f64>() / n as f64
    };
    ArmSummary {
        ticks: n as u64,
        avg_hourly_cost: avg,
        avg_hourly_cost_per_instance: if slots == 0 { 0.0 } else { avg / slots as f64 },
        cost_vs_on_demand: {
            let od: f64 = points.iter().map(|p| p.on_demand_cost).sum();
            if od > 0.0 {
                points.iter().map(|p| p.hourly_cost).sum::<f64>() / od
            } else {
                0.0
            }
        },
        interruptions: points.iter().map(|p| p.interruptions).sum(),
        decisions: points.iter().map(|p| p.decisions).sum(),
    }
}

/// One row of the verdict table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VerdictRow {
    pub metric: String,
    pub a: f64,
    pub b: f64,
    /// `a`, `b` or `tie` (lower is better for every metric).
    pub better: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Verdict {
    pub a: ArmSummary,
    pub b: ArmSummary,
    pub rows: Vec<VerdictRow>,
    /// Relative cost of arm b against arm a, against on-demand (negative: b is cheaper).
    pub cost_change_b_vs_a: f64,
    pub summary: String,
}

fn better(a: f64, b: f64) -> String {
    if (a - b).abs() <= 1e-9 * a.abs().max(b.abs()).max(1.0) {
        "tie".into()
    } else if a < b {
        "a".into()
    } else {
        "b".into()
    }
}

pub fn verdict(a: ArmSummary, b: ArmSummary) -> Verdict {
    let rows = vec![
        VerdictRow {
            metric: "cost_vs_on_demand".into(),
            a: a.cost_vs_on_demand,
            b: b.cost_vs_on_demand,
            better: better(a.cost_vs_on_demand, b.cost_vs_on_demand),
        },
        VerdictRow {
            metric: "avg_hourly_cost_per_instance".into(),
            a: a.avg_hourly_cost_per_instance,
            b: b.avg_hourly_cost_per_instance,
            better: better(
                a.avg_hourly_cost_per_instance,
                b.avg_hourly_cost_per_instance,
            ),
        },
        VerdictRow {
            metric: "interruptions".into(),
            a: a.interruptions as f64,
            b: b.interruptions as f64,
            better: better(a.interruptions as f64, b.interruptions as f64),
        },
        VerdictRow {
            metric: "capacity_changes".into(),
            a: a.decisions as f64,
            b: b.decisions as f64,
            better: better(a.decisions as f64, b.decisions as f64),
        },
    ];
    let change = if a.cost_vs_on_demand > 0.0 {
        b.cost_vs_on_demand / a.cost_vs_on_demand - 1.0
    } else {
        0.0
    };
    let extra = b.interruptions as i64 - a.interruptions as i64;
    let summary = format!(
        "model B cost {:.1} % {} than model A (against on-demand), with {} {} interruption{}",
        change.abs() * 100.0,
        if change <= 0.0 { "less" } else { "more" },
        extra.abs(),
        if extra >= 0 { "more" } else { "fewer" },
        if extra.abs() == 1 { "" } else { "s" },
    );
    Verdict {
        a,
        b,
        rows,
        cost_change_b_vs_a: change,
        summary,
    }
}

/// A finished live switch, as the checklist sees it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SwitchEvidence {
    pub id: String,
    pub succeeded: bool,
    pub boot_secs: Option<f64>,
    pub node_ready_secs: Option<f64>,
}

/// An ended A/B test with the candidate in one arm.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AbEvidence {
    pub id: String,
    /// The candidate's arm and the other arm.
    pub candidate: ArmSummary,
    pub control: ArmSummary,
    pub control_model: String,
}

/// One safety check.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CheckItem {
    pub key: String,
    pub label: String,
    pub passed: bool,
    /// The figures behind the verdict.
    pub detail: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Checklist {
    pub passed: bool,
    pub items: Vec<CheckItem>,
}

impl Checklist {
    /// Keys of the items that failed.
    pub fn failing(&self) -> Vec<&str> {
        self.items
            .iter()
            .filter(|i| !i.passed)
            .map(|i| i.key.as_str())
            .collect()
    }
}

/// The safety checklist of a candidate model from its Lab results: at least one live
/// switch with it, none failed, every boot under [`MAX_BOOT_SECS`] and every node Ready
/// under [`MAX_NODE_READY_SECS`]; an ended A/B test against another model in which its
/// cost per instance and its interruptions are not worse than the other arm's (the latest
/// such test counts).
pub fn checklist(switches: &[SwitchEvidence], ab: Option<&AbEvidence>) -> Checklist {
    let mut items = Vec::new();
    let done: Vec<&SwitchEvidence> = switches.iter().collect();
    items.push(CheckItem {
        key: "switch_tested".into(),
        label: "At least one live switch ran with this model".into(),
        passed: !done.is_empty(),
        detail: match done.len() {
            1 => "1 live switch".to_string(),
            n => format!("{n} live switches"),
        },
    });
    let failed: Vec<&str> = done
        .iter()
        .filter(|s| !s.succeeded)
        .map(|s| s.id.as_str())
        .collect();
    items.push(CheckItem {
        key: "no_failed_switch".into(),
        label: "No failed switch".into(),
        passed: !done.is_empty() && failed.is_empty(),
        detail: if done.is_empty() {
            "no switch yet".into()
        } else if failed.is_empty() {
            "none failed".into()
        } else {
            format!("{} failed: {}", failed.len(), failed.join(", "))
        },
    });
    let max_of = |f: fn(&SwitchEvidence) -> Option<f64>| -> Option<f64> {
        done.iter()
            .filter(|s| s.succeeded)
            .filter_map(|s| f(s))
            .fold(None, |m: Option<f64>, x| Some(m.map_or(x, |m| m.max(x))))
    };
    let boot = max_of(|s| s.boot_secs);
    items.push(CheckItem {
        key: "boot_time".into(),
        label: format!("Boot time < {MAX_BOOT_SECS:.0} s"),
        passed: boot.is_some_and(|b| b < MAX_BOOT_SECS),
        detail: boot.map_or_else(
            || "no successful switch measured a boot".into(),
            |b| format!("slowest boot {b:.1} s"),
        ),
    });
    let ready = max_of(|s| s.node_ready_secs);
    items.push(CheckItem {
        key: "node_ready_time".into(),
        label: format!("Node Ready < {MAX_NODE_READY_SECS:.0} s"),
        passed: ready.is_some_and(|r| r < MAX_NODE_READY_SECS),
        detail: ready.map_or_else(
            || "no successful switch measured a node Ready".into(),
            |r| format!("slowest node Ready {r:.1} s"),
        ),
    });
    items.push(CheckItem {
        key: "ab_tested".into(),
        label: "A parallel A/B test against another model ended".into(),
        passed: ab.is_some_and(|a| a.candidate.ticks > 0 && a.control.ticks > 0),
        detail: ab.map_or_else(
            || "no ended A/B test with this model".into(),
            |a| {
                format!(
                    "test {} against {} ({} ticks)",
                    a.id, a.control_model, a.candidate.ticks
                )
            },
        ),
    });
    let cost_ok = ab.is_some_and(|a| {
        a.candidate.ticks > 0
            && a.candidate.cost_vs_on_demand <= a.control.cost_vs_on_demand * (1.0 + 1e-9)
    });
    items.push(CheckItem {
        key: "ab_cost_not_worse".into(),
        label: "A/B cost not worse than the other model".into(),
        passed: cost_ok,
        detail: ab.map_or_else(
            || "no A/B result".into(),
            |a| {
                format!(
                    "{:.1} % of on-demand against {:.1} %",
                    a.candidate.cost_vs_on_demand * 100.0,
                    a.control.cost_vs_on_demand * 100.0
                )
            },
        ),
    });
    let int_ok = ab.is_some_and(|a| {
        a.candidate.ticks > 0 && a.candidate.interruptions <= a.control.interruptions
    });
    items.push(CheckItem {
        key: "ab_interruptions_not_worse".into(),
        label: "A/B interruptions not more than the other model".into(),
        passed: int_ok,
        detail: ab.map_or_else(
            || "no A/B result".into(),
            |a| {
                format!(
                    "{} against {}",
                    a.candidate.interruptions, a.control.interruptions
                )
            },
        ),
    });
    Checklist {
        passed: items.iter().all(|i| i.passed),
        items,
    }
}

/// Risk premium of spot capacity when the Lab ranks targets: a pool is weighed at
/// `price × (1 + RISK_PREMIUM × p)` (the planner's default premium).
pub const RISK_PREMIUM: f64 = 3.0;
/// A model moves an A/B member only when the best target is this much cheaper (weighed
/// by risk) than where it is: hysteresis against churn.
pub const MOVE_MARGIN: f64 = 0.05;

/// Where a replacement may go, as the deciding model weighs it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Target {
    pub instance_type: String,
    pub az: String,
    pub spot: bool,
    pub hourly: f64,
    /// The model's interruption probability (0 for on-demand).
    pub probability: f64,
    /// Risk-weighed hourly price; lower is better.
    pub score: f64,
}

pub fn weigh(hourly: f64, probability: f64, spot: bool) -> f64 {
    if spot {
        hourly * (1.0 + RISK_PREMIUM * probability)
    } else {
        hourly
    }
}

/// Ranks targets for replacing an instance of type `current` in `az`, best first: spot
/// pools (never AVOID or flagged ones) of `only_type`, or else of every type at least as
/// large as `current` (same architecture, no fewer GPUs, at most twice its vCPUs, burstable
/// only if it is), in `az` only when `keep_az` (its volumes must follow it), plus the
/// on-demand capacity of the type(s) in `az`.
pub fn targets(
    catalog: &Catalog,
    current: &str,
    az: &str,
    only_type: Option<&str>,
    keep_az: bool,
    flags: &BTreeSet<PoolKey>,
) -> Vec<Target> {
    let Some(cur) = catalog.get(current) else {
        return Vec::new();
    };
    let eligible = |t: &InstanceType| match only_type {
        Some(o) => t.name == o,
        None => {
            t.arch == cur.arch
                && t.gpus >= cur.gpus
                && t.vcpu >= cur.vcpu
                && t.memory_mib >= cur.memory_mib
                && t.vcpu <= cur.vcpu.saturating_mul(2)
                && (!t.burstable || cur.burstable)
        }
    };
    let mut out: Vec<Target> = catalog
        .pools()
        .iter()
        .filter(|p| !keep_az || p.az == az)
        .filter(|p| p.interruption_probability <= AVOID_THRESHOLD && !flags.contains(&p.key()))
        .filter(|p| catalog.get(&p.instance_type).is_some_and(eligible))
        .map(|p| Target {
            instance_type: p.instance_type.clone(),
            az: p.az.clone(),
            spot: true,
            hourly: p.spot_price,
            probability: p.interruption_probability,
            score: weigh(p.spot_price, p.interruption_probability, true),
        })
        .collect();
    out.extend(
        catalog
            .types()
            .iter()
            .filter(|t| eligible(t))
            .map(|t| Target {
                instance_type: t.name.clone(),
                az: az.to_string(),
                spot: false,
                hourly: t.on_demand_hourly,
                probability: 0.0,
                score: t.on_demand_hourly,
            }),
    );
    out.sort_by(|x, y| {
        x.score
            .total_cmp(&y.score)
            .then_with(|| x.instance_type.cmp(&y.instance_type))
            .then_with(|| x.az.cmp(&y.az))
            .then_with(|| x.spot.cmp(&y.spot))
    });
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("i-{i:04x}")).collect()
    }

    #[test]
    fn assignment_is_deterministic_balanced_and_order_free() {
        let a = assign(&ids(9));
        let mut shuffled = ids(9);
        shuffled.reverse();
        let b = assign(&shuffled);
        assert_eq!(a, b);
        let in_a = a.iter().filter(|x| x.1 == "a").count();
        assert_eq!(in_a, 5);
        assert_eq!(a.len(), 9);
        // Not simply the sorted order alternated.
        let naive: Vec<(String, &str)> = ids(9)
            .into_iter()
            .enumerate()
            .map(|(i, s)| (s, if i % 2 == 0 { "a" } else { "b" }))
            .collect();
        assert_ne!(a, naive);
    }

    fn arm(cost: f64, interruptions: u64) -> ArmSummary {
        ArmSummary {
            ticks: 3,
            avg_hourly_cost: cost * 2.0,
            avg_hourly_cost_per_instance: cost,
            cost_vs_on_demand: cost,
            interruptions,
            decisions: 1,
        }
    }

    fn good_switch() -> SwitchEvidence {
        SwitchEvidence {
            id: "s1".into(),
            succeeded: true,
            boot_secs: Some(3.0),
            node_ready_secs: Some(5.0),
        }
    }

    #[test]
    fn checklist_passes_only_with_every_item() {
        let ab = AbEvidence {
            id: "t".into(),
            candidate: arm(0.1, 0),
            control: arm(0.2, 1),
            control_model: "m0".into(),
        };
        let c = checklist(&[good_switch()], Some(&ab));
        assert!(c.passed, "{c:?}");
        assert!(c.failing().is_empty());

        let none = checklist(&[], None);
        assert!(!none.passed);
        assert_eq!(
            none.failing(),
            vec![
                "switch_tested",
                "no_failed_switch",
                "boot_time",
                "node_ready_time",
                "ab_tested",
                "ab_cost_not_worse",
                "ab_interruptions_not_worse"
            ]
        );

        let slow = SwitchEvidence {
            boot_secs: Some(75.0),
            ..good_switch()
        };
        assert_eq!(checklist(&[slow], Some(&ab)).failing(), vec!["boot_time"]);
        let failed = SwitchEvidence {
            id: "s2".into(),
            succeeded: false,
            boot_secs: None,
            node_ready_secs: None,
        };
        assert_eq!(
            checklist(&[good_switch(), failed], Some(&ab)).failing(),
            vec!["no_failed_switch"]
        );
        let worse = AbEvidence {
            candidate: arm(0.3, 2),
            ..ab
        };
        assert_eq!(
            checklist(&[good_switch()], Some(&worse)).failing(),
            vec!["ab_cost_not_worse", "ab_interruptions_not_worse"]
        );
    }

    #[test]
    fn verdict_says_which_arm_is_better_per_metric() {
        let a = summarize(
            &[
                Point {
                    hourly_cost: 1.0,
                    on_demand_cost: 2.0,
                    interruptions: 0,
                    decisions: 0,
                },
                Point {
                    hourly_cost: 1.0,
                    on_demand_cost: 2.0,
                    interruptions: 1,
                    decisions: 1,
                },
            ],
            2,
        );
        let b = summarize(
            &[
                Point {
                    hourly_cost: 0.8,
                    on_demand_cost: 2.0,
                    interruptions: 1,
                    decisions: 2,
                },
                Point {
                    hourly_cost: 0.9,
                    on_demand_cost: 2.0,
                    interruptions: 1,
                    decisions: 0,
                },
            ],
            2,
        );
        assert!((a.avg_hourly_cost_per_instance - 0.5).abs() < 1e-12);
        assert!((a.cost_vs_on_demand - 0.5).abs() < 1e-12);
        let v = verdict(a, b);
        assert_eq!(v.rows[0].better, "b");
        assert_eq!(v.rows[1].better, "b");
        assert_eq!(v.rows[2].better, "a");
        assert_eq!(v.rows[3].better, "a");
        assert!((v.cost_change_b_vs_a + 0.15).abs() < 1e-9, "{v:?}");
        assert!(v.summary.contains("15.0 % less"), "{}", v.summary);
        assert!(v.summary.contains("1 more interruption"), "{}", v.summary);
    }

    #[test]
    fn targets_follow_the_models_probabilities() {
        use crate::catalog::{Arch, SpotPool};
        let t = |name: &str, vcpu: u32, od: f64| InstanceType {
            name: name.into(),
            family: name.split('.').next().unwrap_or("").into(),
            vcpu,
            memory_mib: u64::from(vcpu) * 4096,
            gpus: 0,
            arch: Arch::X86_64,
            burstable: false,
            on_demand_hourly: od,
        };
        let pool = |ty: &str, az: &str, price: f64, p: f64| SpotPool {
            instance_type: ty.into(),
            az: az.into(),
            spot_price: price,
            interruption_probability: p,
        };
        let cat = Catalog::new(
            vec![
                t("m5.large", 2, 0.096),
                t("c5.large", 2, 0.085),
                t("m5.4xlarge", 16, 0.768),
            ],
            vec![
                pool("m5.large", "a", 0.030, 0.1),
                pool("c5.large", "a", 0.025, 0.6),
                pool("c5.large", "b", 0.028, 0.05),
                pool("m5.4xlarge", "a", 0.010, 0.0),
            ],
        )
        .expect("catalog");
        let r = targets(&cat, "m5.large", "a", None, false, &BTreeSet::new());
        // AVOID pools and types more than twice as large are never targets.
        assert!(r.iter().all(|x| x.instance_type != "m5.4xlarge"));
        assert!(!r
            .iter()
            .any(|x| x.spot && x.instance_type == "c5.large" && x.az == "a"));
        assert_eq!(
            (r[0].instance_type.as_str(), r[0].az.as_str()),
            ("c5.large", "b")
        );
        // Volumes keep the AZ; a forced type is the only type.
        let r = targets(&cat, "m5.large", "a", None, true, &BTreeSet::new());
        assert_eq!(r[0].instance_type, "m5.large");
        assert!(r.iter().all(|x| x.az == "a"));
        let r = targets(
            &cat,
            "m5.large",
            "a",
            Some("c5.large"),
            true,
            &BTreeSet::new(),
        );
        assert!(r.iter().all(|x| x.instance_type == "c5.large"));
        assert_eq!(r.len(), 1, "{r:?}");
        assert!(!r[0].spot);
        // A flagged pool is out.
        let flags: BTreeSet<PoolKey> = [PoolKey::new("c5.large", "b")].into_iter().collect();
        let r = targets(&cat, "m5.large", "a", None, false, &flags);
        assert_eq!(r[0].instance_type, "m5.large");
    }
}
