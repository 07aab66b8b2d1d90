//! Fleet math shown on the dashboard and the cluster pages: efficiency score and grade,
//! the EKS end-of-support calendar, cluster health, bin-packing waste (the resource gap's
//! dollar figure), the stability index and the hibernation opportunity of the weekly
//! heatmap. One implementation each; `api/` maps the results to responses.
//!
//! Pure: callers pass dates and measurements in.

use serde::{Deserialize, Serialize};

use crate::catalog::HOURS_PER_MONTH;

/// Headroom left unrequested on purpose before capacity counts as bin-packing waste.
pub const PACKING_HEADROOM: f64 = 0.15;
/// Utilization below which an hour of the week counts as idle.
pub const IDLE_UTILIZATION: f64 = 0.15;
/// Weeks per month for monthly estimates (52/12).
pub const WEEKS_PER_MONTH: f64 = 52.0 / 12.0;
/// Memory requests above this share of allocatable put a cluster under pressure.
pub const MEMORY_PRESSURE: f64 = 0.9;

/// Efficiency grade. Thresholds: A ≥ 0.80, B ≥ 0.65, C ≥ 0.50, D ≥ 0.35, F below.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Grade {
    A,
    B,
    C,
    D,
    F,
}

impl Grade {
    pub fn from_score(score: f64) -> Grade {
        match score {
            s if s >= 0.80 => Grade::A,
            s if s >= 0.65 => Grade::B,
            s if s >= 0.50 => Grade::C,
            s if s >= 0.35 => Grade::D,
            _ => Grade::F,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Grade::A => "A",
            Grade::B => "B",
            Grade::C => "C",
            Grade::D => "D",
            Grade::F => "F",
        }
    }

    /// D and F cost a cluster health points.
    pub fn is_poor(self) -> bool {
        matches!(self, Grade::D | Grade::F)
    }
}

/// A cluster's (or a metrics point's) capacity, requests, usage and cost.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Usage {
    pub cpu_allocatable_m: i64,
    pub cpu_requested_m: i64,
    pub cpu_used_m: i64,
    pub mem_allocatable_mib: i64,
    pub mem_requested_mib: i64,
    pub mem_used_mib: i64,
    /// USD per hour.
    pub hourly_cost: f64,
}

fn ratio(a: i64, b: i64) -> f64 {
    if b <= 0 {
        0.0
    } else {
        (a as f64 / b as f64).clamp(0.0, 1.5)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Efficiency {
    /// In [0, 1].
    pub score: f64,
    pub grade: Grade,
}

impl Efficiency {
    /// The score as responses show it: rounded to 0.001 (the grade comes from the
    /// unrounded score).
    pub fn rounded_score(&self) -> f64 {
        (self.score * 1000.0).round() / 1000.0
    }
}

/// score = ½·packing + ½·utilization, where packing = requested / allocatable and
/// utilization = used / requested, each the mean of CPU and memory and capped at 1.
/// A cluster without capacity data (no agent) gets no score.
pub fn efficiency(u: &Usage) -> Option<Efficiency> {
    if u.cpu_allocatable_m == 0 && u.mem_allocatable_mib == 0 {
        return None;
    }
    let packing = (ratio(u.cpu_requested_m, u.cpu_allocatable_m).min(1.0)
        + ratio(u.mem_requested_mib, u.mem_allocatable_mib).min(1.0))
        / 2.0;
    let usage = (ratio(u.cpu_used_m, u.cpu_requested_m).min(1.0)
        + ratio(u.mem_used_mib, u.mem_requested_mib).min(1.0))
        / 2.0;
    let score = 0.5 * packing + 0.5 * usage;
    Some(Efficiency {
        score,
        grade: Grade::from_score(score),
    })
}

/// Node-weighted mean of cluster efficiency scores (`(score, node count)`; a count below
/// 1 weighs 1), with its grade; `None` when no cluster has a score.
pub fn weighted_efficiency(scores: &[(f64, i64)]) -> Option<Efficiency> {
    let (mut sum, mut w) = (0.0, 0.0);
    for &(s, n) in scores {
        let k = n.max(1) as f64;
        sum += s * k;
        w += k;
    }
    (w > 0.0).then(|| {
        let score = sum / w;
        Efficiency {
            score,
            grade: Grade::from_score(score),
        }
    })
}

/// A calendar date (proleptic Gregorian), ordered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Date {
    pub year: i32,
    pub month: u32,
    pub day: u32,
}

impl Date {
    pub const fn new(year: i32, month: u32, day: u32) -> Self {
        Self { year, month, day }
    }
}

/// End of standard support for EKS Kubernetes versions (AWS's published calendar).
pub const EKS_END_OF_SUPPORT: &[(&str, Date)] = &[
    ("1.25", Date::new(2024, 5, 1)),
    ("1.26", Date::new(2024, 6, 11)),
    ("1.27", Date::new(2024, 7, 24)),
    ("1.28", Date::new(2024, 11, 26)),
    ("1.29", Date::new(2025, 3, 23)),
    ("1.30", Date::new(2025, 7, 23)),
    ("1.31", Date::new(2025, 11, 26)),
    ("1.32", Date::new(2026, 3, 23)),
    ("1.33", Date::new(2026, 7, 29)),
    ("1.34", Date::new(2026, 12, 2)),
    ("1.35", Date::new(2027, 3, 27)),
];

/// End of standard support of `version`, if the calendar lists it.
pub fn end_of_support(version: &str) -> Option<Date> {
    EKS_END_OF_SUPPORT
        .iter()
        .find(|(v, _)| *v == version)
        .map(|(_, d)| *d)
}

/// True when the version is past standard support on `today` (the end date itself
/// counts); unlisted versions older than 1.25 count as EOL, unknown newer ones do not.
pub fn end_of_life(version: Option<&str>, today: Date) -> bool {
    let Some(v) = version else { return false };
    match end_of_support(v) {
        Some(d) => d <= today,
        None => v
            .split('.')
            .nth(1)
            .and_then(|m| m.parse::<u32>().ok())
            .is_some_and(|m| m < 25),
    }
}

/// Health score 0–100: start at 100; −30 when the control plane is not active, −20 when
/// the Kubernetes version is past standard support, −15 for efficiency grade D or F, and
/// up to −30 in proportion to the share of spot nodes in pools the risk tracker flags.
pub fn health(active: bool, eol: bool, grade: Option<Grade>, flagged_share: f64) -> i64 {
    let mut h = 100.0;
    if !active {
        h -= 30.0;
    }
    if eol {
        h -= 20.0;
    }
    if grade.is_some_and(Grade::is_poor) {
        h -= 15.0;
    }
    let share = if flagged_share.is_finite() {
        flagged_share.clamp(0.0, 1.0)
    } else {
        0.0
    };
    h -= 30.0 * share;
    h.round().clamp(0.0, 100.0) as i64
}

/// Hourly cost of capacity neither requested nor kept as headroom:
/// `cost × max(0, 1 − mean(cpu requested/allocatable, mem requested/allocatable, capped at 1) − 15 %)`.
/// Zero when either allocatable is unknown.
pub fn packing_waste_hourly(u: &Usage) -> f64 {
    if u.cpu_allocatable_m == 0 || u.mem_allocatable_mib == 0 {
        return 0.0;
    }
    let req = (u.cpu_requested_m as f64 / u.cpu_allocatable_m as f64
        + u.mem_requested_mib as f64 / u.mem_allocatable_mib as f64)
        / 2.0;
    u.hourly_cost * (1.0 - req.min(1.0) - PACKING_HEADROOM).max(0.0)
}

/// The resource gap's dollar figure: Σ packing waste × 730.
pub fn packing_waste_monthly(clusters: &[Usage]) -> f64 {
    clusters.iter().map(packing_waste_hourly).sum::<f64>() * HOURS_PER_MONTH
}

/// Capacity vs requests vs usage at one point in time.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ResourceGap {
    /// Allocatable − requested (never below 0).
    pub cpu_unrequested_m: i64,
    /// Requested − used (never below 0).
    pub cpu_requested_unused_m: i64,
    pub mem_unrequested_mib: i64,
    pub mem_requested_unused_mib: i64,
}

pub fn resource_gap(u: &Usage) -> ResourceGap {
    ResourceGap {
        cpu_unrequested_m: (u.cpu_allocatable_m - u.cpu_requested_m).max(0),
        cpu_requested_unused_m: (u.cpu_requested_m - u.cpu_used_m).max(0),
        mem_unrequested_mib: (u.mem_allocatable_mib - u.mem_requested_mib).max(0),
        mem_requested_unused_mib: (u.mem_requested_mib - u.mem_used_mib).max(0),
    }
}

/// Memory requests above 90 % of allocatable.
pub fn memory_pressured(u: &Usage) -> bool {
    u.mem_allocatable_mib > 0
        && u.mem_requested_mib as f64 > MEMORY_PRESSURE * u.mem_allocatable_mib as f64
}

/// Discovery intervals a linked account may miss before its control plane counts as stale.
pub const SYNC_INTERVALS: i64 = 2;
/// Grace on top of the missed intervals (a discovery still running), in milliseconds.
pub const SYNC_GRACE_MS: i64 = 60_000;

/// Control-plane freshness of one linked account: active, and its last sync finished at
/// or after `now − 2 discovery intervals − 1 minute` (times in Unix milliseconds).
pub fn synced_recently(
    active: bool,
    last_sync_ms: Option<i64>,
    now_ms: i64,
    discovery_interval_secs: u64,
) -> bool {
    let interval_ms = i64::try_from(discovery_interval_secs)
        .unwrap_or(i64::MAX)
        .saturating_mul(1000);
    let horizon = now_ms
        .saturating_sub(SYNC_INTERVALS.saturating_mul(interval_ms))
        .saturating_sub(SYNC_GRACE_MS);
    active && last_sync_ms.is_some_and(|t| t >= horizon)
}

/// Counts behind the stability index.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StabilityInputs {
    pub spot_nodes: usize,
    pub spot_nodes_in_flagged_pools: usize,
    pub clusters: usize,
    pub clusters_memory_pressured: usize,
    pub linked_accounts: usize,
    pub accounts_synced_recently: usize,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StabilityComponent {
    pub name: String,
    /// 0–100.
    pub score: f64,
    pub detail: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Stability {
    /// Mean of the components, rounded to 0.1 (the UI warns below 80).
    pub index: f64,
    pub components: Vec<StabilityComponent>,
}

/// Stability index (0–100) = mean of: spot stability (share of spot nodes outside flagged
/// pools), resource pressure (share of clusters with memory requests ≤ 90 % of
/// allocatable, see [`memory_pressured`]) and control-plane freshness (share of linked
/// accounts synced recently, see [`synced_recently`]). An empty population scores 100.
pub fn stability(s: &StabilityInputs) -> Stability {
    let share = |bad: usize, all: usize| {
        if all == 0 {
            100.0
        } else {
            100.0 * (1.0 - bad.min(all) as f64 / all as f64)
        }
    };
    let components = vec![
        StabilityComponent {
            name: "spot_stability".into(),
            score: share(s.spot_nodes_in_flagged_pools, s.spot_nodes),
            detail: format!(
                "{} of {} spot nodes in flagged pools",
                s.spot_nodes_in_flagged_pools, s.spot_nodes
            ),
        },
        StabilityComponent {
            name: "resource_pressure".into(),
            score: share(s.clusters_memory_pressured, s.clusters),
            detail: format!(
                "{} of {} clusters above 90% memory requests or with a node under pressure",
                s.clusters_memory_pressured, s.clusters
            ),
        },
        StabilityComponent {
            name: "control_plane".into(),
            score: if s.linked_accounts == 0 {
                100.0
            } else {
                100.0 * s.accounts_synced_recently.min(s.linked_accounts) as f64
                    / s.linked_accounts as f64
            },
            detail: format!(
                "{} of {} accounts synced recently",
                s.accounts_synced_recently, s.linked_accounts
            ),
        },
    ];
    let index = components.iter().map(|c| c.score).sum::<f64>() / components.len() as f64;
    Stability {
        index: (index * 10.0).round() / 10.0,
        components,
    }
}

/// One metrics sample for the weekly heatmap.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct HeatSample {
    /// 0 = Monday … 6 = Sunday.
    pub weekday: u8,
    /// 0–23.
    pub hour: u8,
    pub cpu_used_m: i64,
    pub cpu_allocatable_m: i64,
    pub hourly_cost: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct HeatCell {
    pub weekday: u8,
    pub hour: u8,
    /// Σ CPU used ÷ Σ allocatable over the samples of this hour of the week.
    pub utilization: f64,
    /// Mean fleet cost in this hour of the week.
    pub hourly_cost: f64,
    /// Utilization below 15 % (and capacity known).
    pub idle: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Heatmap {
    /// Cells with data, Monday 00:00 first.
    pub cells: Vec<HeatCell>,
    /// Σ hourly cost of idle cells × 52/12: what sleeping through idle hours saves a month.
    pub hibernation_savings_monthly: f64,
    pub idle_hours_per_week: i64,
}

/// The 24×7 heatmap and the hibernation opportunity.
pub fn heatmap(samples: &[HeatSample]) -> Heatmap {
    let mut acc: std::collections::BTreeMap<(u8, u8), (f64, f64, f64, i64)> =
        std::collections::BTreeMap::new();
    for s in samples {
        let e = acc.entry((s.weekday, s.hour)).or_default();
        e.0 += s.cpu_used_m as f64;
        e.1 += s.cpu_allocatable_m as f64;
        e.2 += s.hourly_cost;
        e.3 += 1;
    }
    let cells: Vec<HeatCell> = acc
        .into_iter()
        .map(|((weekday, hour), (used, alloc, cost, n))| {
            let utilization = if alloc > 0.0 { used / alloc } else { 0.0 };
            HeatCell {
                weekday,
                hour,
                utilization,
                hourly_cost: cost / n.max(1) as f64,
                idle: alloc > 0.0 && utilization < IDLE_UTILIZATION,
            }
        })
        .collect();
    let idle: Vec<&HeatCell> = cells.iter().filter(|c| c.idle).collect();
    Heatmap {
        hibernation_savings_monthly: idle.iter().map(|c| c.hourly_cost).sum::<f64>()
            * WEEKS_PER_MONTH,
        idle_hours_per_week: idle.len() as i64,
        cells,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) {
        assert!((a - b).abs() < 1e-12, "{a} != {b}");
    }

    #[test]
    fn grades_have_exact_edges() {
        assert_eq!(Grade::from_score(0.80), Grade::A);
        assert_eq!(Grade::from_score(0.7999), Grade::B);
        assert_eq!(Grade::from_score(0.65), Grade::B);
        assert_eq!(Grade::from_score(0.50), Grade::C);
        assert_eq!(Grade::from_score(0.35), Grade::D);
        assert_eq!(Grade::from_score(0.3499), Grade::F);
        assert_eq!(Grade::D.as_str(), "D");
        assert!(Grade::F.is_poor() && !Grade::C.is_poor());
    }

    #[test]
    fn efficiency_is_half_packing_half_usage() {
        // packing = (2000/4000 + 6000/8000)/2 = 0.625; usage = (1000/2000 + 3000/6000)/2 = 0.5
        let u = Usage {
            cpu_allocatable_m: 4000,
            cpu_requested_m: 2000,
            cpu_used_m: 1000,
            mem_allocatable_mib: 8000,
            mem_requested_mib: 6000,
            mem_used_mib: 3000,
            hourly_cost: 1.0,
        };
        let e = efficiency(&u).expect("score");
        close(e.score, 0.5625);
        assert_eq!(e.grade, Grade::C);
        // Over-used requests are capped at 1 (ratio clamp 1.5, then min 1).
        let hot = Usage {
            cpu_used_m: 9000,
            mem_used_mib: 9000,
            ..u
        };
        close(efficiency(&hot).expect("score").score, 0.5 * 0.625 + 0.5);
        assert_eq!(efficiency(&Usage::default()), None);
        let w = weighted_efficiency(&[(0.9, 3), (0.5, 0)]).expect("w");
        close(w.score, (0.9 * 3.0 + 0.5) / 4.0);
        assert_eq!(w.grade, Grade::A); // exactly 0.80
        assert_eq!(weighted_efficiency(&[]), None);
    }

    #[test]
    fn responses_show_the_score_to_three_decimals() {
        // 0.5625 → 562.5 rounds half away from zero → 0.563; the grade stays C.
        let e = Efficiency {
            score: 0.5625,
            grade: Grade::C,
        };
        close(e.rounded_score(), 0.563);
        // 0.79996 shows as 0.8 but is graded on the unrounded score: B.
        let w = weighted_efficiency(&[(0.79996, 1)]).expect("w");
        close(w.rounded_score(), 0.8);
        assert_eq!(w.grade, Grade::B);
    }

    #[test]
    fn eol_follows_the_eks_calendar() {
        let d = Date::new(2026, 11, 23);
        assert!(end_of_life(Some("1.29"), d));
        assert!(end_of_life(Some("1.33"), d));
        assert!(!end_of_life(Some("1.34"), d));
        assert!(end_of_life(Some("1.34"), Date::new(2026, 12, 2)));
        assert!(end_of_life(Some("1.20"), d));
        assert!(!end_of_life(Some("1.40"), d));
        assert!(!end_of_life(None, d));
        assert_eq!(end_of_support("1.31"), Some(Date::new(2025, 11, 26)));
    }

    #[test]
    fn health_deductions() {
        assert_eq!(health(true, false, Some(Grade::A), 0.0), 100);
        assert_eq!(health(false, true, Some(Grade::D), 0.5), 20);
        assert_eq!(health(true, false, None, 0.25), 93); // 92.5 rounds half away from zero
        assert_eq!(health(false, true, Some(Grade::F), 2.0), 5);
    }

    #[test]
    fn packing_waste_and_gap() {
        // req = (1000/4000 + 2000/8000)/2 = 0.25 → 1 − 0.25 − 0.15 = 0.60 of $2/h.
        let u = Usage {
            cpu_allocatable_m: 4000,
            cpu_requested_m: 1000,
            cpu_used_m: 400,
            mem_allocatable_mib: 8000,
            mem_requested_mib: 2000,
            mem_used_mib: 2500,
            hourly_cost: 2.0,
        };
        close(packing_waste_hourly(&u), 1.2);
        close(packing_waste_monthly(&[u, u]), 2.4 * 730.0);
        let full = Usage {
            cpu_requested_m: 4000,
            mem_requested_mib: 8000,
            ..u
        };
        close(packing_waste_hourly(&full), 0.0);
        close(
            packing_waste_hourly(&Usage {
                mem_allocatable_mib: 0,
                ..u
            }),
            0.0,
        );
        assert_eq!(
            resource_gap(&u),
            ResourceGap {
                cpu_unrequested_m: 3000,
                cpu_requested_unused_m: 600,
                mem_unrequested_mib: 6000,
                mem_requested_unused_mib: 0,
            }
        );
        assert!(!memory_pressured(&u));
        assert!(memory_pressured(&Usage {
            mem_requested_mib: 7201,
            ..u
        }));
        assert!(!memory_pressured(&Usage {
            mem_requested_mib: 7200,
            ..u
        }));
    }

    #[test]
    fn stability_index_is_the_mean_rounded() {
        let s = stability(&StabilityInputs {
            spot_nodes: 8,
            spot_nodes_in_flagged_pools: 2,
            clusters: 3,
            clusters_memory_pressured: 1,
            linked_accounts: 0,
            accounts_synced_recently: 0,
        });
        // (75 + 66.666… + 100) / 3 = 80.555… → 80.6
        close(s.index, 80.6);
        close(s.components[0].score, 75.0);
        assert_eq!(
            s.components[1].detail,
            "1 of 3 clusters above 90% memory requests or with a node under pressure"
        );
        close(stability(&StabilityInputs::default()).index, 100.0);
    }

    #[test]
    fn accounts_are_fresh_within_two_intervals_and_a_minute() {
        // now 1,000,000 ms, interval 300 s → horizon 1,000,000 − 600,000 − 60,000 = 340,000.
        assert!(synced_recently(true, Some(340_000), 1_000_000, 300));
        assert!(synced_recently(true, Some(1_000_000), 1_000_000, 300));
        assert!(!synced_recently(true, Some(339_999), 1_000_000, 300));
        assert!(!synced_recently(true, None, 1_000_000, 300));
        assert!(!synced_recently(false, Some(1_000_000), 1_000_000, 300));
        // An absurd interval saturates instead of overflowing: nothing is stale.
        assert!(synced_recently(true, Some(i64::MIN), 0, u64::MAX));
    }

    #[test]
    fn heatmap_idle_hours_and_hibernation() {
        let s = |weekday, hour, used, cost| HeatSample {
            weekday,
            hour,
            cpu_used_m: used,
            cpu_allocatable_m: 1000,
            hourly_cost: cost,
        };
        let h = heatmap(&[
            s(0, 3, 100, 1.0),
            s(0, 3, 180, 3.0), // 280/2000 = 14 % → idle, mean cost 2.0
            s(0, 9, 150, 5.0), // exactly 15 % → not idle
            s(6, 23, 0, 1.5),  // idle
        ]);
        assert_eq!(h.cells.len(), 3);
        close(h.cells[0].utilization, 0.14);
        close(h.cells[0].hourly_cost, 2.0);
        assert!(h.cells[0].idle && !h.cells[1].idle && h.cells[2].idle);
        assert_eq!(h.idle_hours_per_week, 2);
        close(h.hibernation_savings_monthly, 3.5 * 52.0 / 12.0);
    }
}
