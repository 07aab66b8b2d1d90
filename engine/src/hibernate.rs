//! Cluster hibernation calendar math: whether a cluster should be awake or asleep at an
//! instant, when that next changes, and which Auto Scaling group sizes a sleep sets and a
//! wake restores.
//!
//! A [`Schedule`] is a weekly grid of 168 hourly slots (Monday 00:00 first) read in the
//! cluster's IANA time zone, so it follows daylight saving time as a wall clock does: on
//! the spring-forward day the skipped local hour (02:00–03:00 in America/New_York) is never
//! evaluated, and on the fall-back day the repeated hour (01:00–02:00) takes its slot's
//! state twice, i.e. for two real hours. Layers, strongest first:
//!
//! 1. a manual override ("sleep now" / "wake now") until an instant (or until changed);
//! 2. a disabled schedule keeps the cluster awake;
//! 3. a per-date override (sleep all day / stay awake all day), on the local date;
//! 4. a holiday (sleep all day), on the local date;
//! 5. the weekly slot of the local weekday and hour;
//!
//! and pre-warm: a cluster the layers 3–5 put to sleep wakes `prewarm_minutes` before they
//! wake it, so nodes are Ready when work starts.
//!
//! Pure: the instant is passed in.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Datelike, Duration, NaiveDate, TimeZone, Timelike, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

/// Slots in the weekly grid (7 days × 24 hours).
pub const SLOTS: usize = 168;
/// Longest pre-warm (4 hours).
pub const MAX_PREWARM_MINUTES: u32 = 240;
/// Every UTC offset in use is a multiple of 15 minutes (e.g. +05:45 Nepal, +12:45
/// Chatham), and so are DST shifts: local hour and date boundaries all fall on the UTC
/// quarter-hour grid, and a schedule's state is constant between two grid points.
const GRID_MINUTES: i64 = 15;
/// Transitions are searched at most this far ahead (beyond the last dated entry).
const HORIZON_DAYS: i64 = 8;
/// Hard bound of the search (holidays far in the future do not make it unbounded).
const MAX_HORIZON_DAYS: i64 = 400;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Power {
    Awake,
    Asleep,
}

impl Power {
    pub fn as_str(self) -> &'static str {
        match self {
            Power::Awake => "awake",
            Power::Asleep => "asleep",
        }
    }

    pub fn parse(s: &str) -> Option<Power> {
        match s {
            "awake" => Some(Power::Awake),
            "asleep" => Some(Power::Asleep),
            _ => None,
        }
    }

    fn from_awake(awake: bool) -> Power {
        if awake {
            Power::Awake
        } else {
            Power::Asleep
        }
    }
}

/// A per-date override.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DayMode {
    /// Sleep the whole local day.
    Sleep,
    /// Stay awake the whole local day (sprint day), even on a holiday.
    Awake,
}

/// A manual override: the cluster stays `power` until `until` (`None`: until changed).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manual {
    pub power: Power,
    pub until: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Schedule {
    pub enabled: bool,
    /// `true` = awake; index `weekday × 24 + hour`, Monday 00:00 first (local time).
    pub slots: [bool; SLOTS],
    pub tz: Tz,
    pub prewarm_minutes: u32,
    /// Local dates slept whole.
    pub holidays: BTreeSet<NaiveDate>,
    /// Local dates forced asleep or awake; stronger than holidays.
    pub overrides: BTreeMap<NaiveDate, DayMode>,
    pub manual: Option<Manual>,
}

/// Why the cluster should be in its state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Reason {
    Manual,
    Disabled,
    Override,
    Holiday,
    Schedule,
    /// Asleep by the calendar but within the pre-warm period before a wake.
    Prewarm,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Transition {
    pub at: DateTime<Utc>,
    pub to: Power,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Evaluation {
    pub power: Power,
    pub reason: Reason,
    /// The next change of the desired state (none found within the search horizon, or a
    /// manual override without end).
    pub next: Option<Transition>,
}

/// Errors of schedule input; `field` names the offending field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {reason}")]
pub struct ScheduleError {
    pub field: String,
    pub reason: String,
}

fn err(field: &str, reason: impl Into<String>) -> ScheduleError {
    ScheduleError {
        field: field.into(),
        reason: reason.into(),
    }
}

/// Parses an IANA zone name (`America/New_York`).
pub fn parse_tz(name: &str) -> Result<Tz, ScheduleError> {
    name.parse::<Tz>()
        .map_err(|_| err("timezone", format!("unknown IANA time zone `{name}`")))
}

/// Parses `YYYY-MM-DD`.
pub fn parse_date(field: &str, s: &str) -> Result<NaiveDate, ScheduleError> {
    if s.len() != 10 {
        return Err(err(field, format!("`{s}` is not a date (YYYY-MM-DD)")));
    }
    NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .map_err(|_| err(field, format!("`{s}` is not a date (YYYY-MM-DD)")))
}

/// The 168 slots from a list of booleans (exactly 168).
pub fn slots_from(v: &[bool]) -> Result<[bool; SLOTS], ScheduleError> {
    <[bool; SLOTS]>::try_from(v).map_err(|_| {
        err(
            "slots",
            format!(
                "must have {SLOTS} entries (7 days × 24 hours, Monday 00:00 first), got {}",
                v.len()
            ),
        )
    })
}

/// Slots as a string of `1` (awake) and `0` (asleep), for storage.
pub fn slots_to_string(s: &[bool; SLOTS]) -> String {
    s.iter().map(|&a| if a { '1' } else { '0' }).collect()
}

pub fn slots_from_string(s: &str) -> Result<[bool; SLOTS], ScheduleError> {
    let v: Vec<bool> = s
        .chars()
        .map(|c| match c {
            '1' => Ok(true),
            '0' => Ok(false),
            other => Err(err("slots", format!("unexpected `{other}`"))),
        })
        .collect::<Result<_, _>>()?;
    slots_from(&v)
}

pub fn check_prewarm(minutes: i64) -> Result<u32, ScheduleError> {
    u32::try_from(minutes)
        .ok()
        .filter(|m| *m <= MAX_PREWARM_MINUTES)
        .ok_or_else(|| {
            err(
                "prewarm_minutes",
                format!("must be 0–{MAX_PREWARM_MINUTES}, got {minutes}"),
            )
        })
}

impl Schedule {
    /// Awake around the clock, schedule off, in UTC.
    pub fn always_awake() -> Schedule {
        Schedule {
            enabled: false,
            slots: [true; SLOTS],
            tz: chrono_tz::UTC,
            prewarm_minutes: 0,
            holidays: BTreeSet::new(),
            overrides: BTreeMap::new(),
            manual: None,
        }
    }

    /// The calendar's state (layers 3–5, no pre-warm, no manual override) at `t`.
    pub fn calendar_at(&self, t: DateTime<Utc>) -> (Power, Reason) {
        let local = t.with_timezone(&self.tz);
        let date = local.date_naive();
        if let Some(m) = self.overrides.get(&date) {
            return (
                match m {
                    DayMode::Sleep => Power::Asleep,
                    DayMode::Awake => Power::Awake,
                },
                Reason::Override,
            );
        }
        if self.holidays.contains(&date) {
            return (Power::Asleep, Reason::Holiday);
        }
        let slot = local.weekday().num_days_from_monday() as usize * 24 + local.hour() as usize;
        (Power::from_awake(self.slots[slot]), Reason::Schedule)
    }

    /// The last instant the search looks at, from `t`.
    fn horizon(&self, t: DateTime<Utc>) -> DateTime<Utc> {
        let mut end = t + Duration::days(HORIZON_DAYS);
        let last_date = self
            .holidays
            .iter()
            .next_back()
            .into_iter()
            .chain(self.overrides.keys().next_back())
            .max();
        if let Some(d) = last_date {
            if let Some(midnight) = d.and_hms_opt(0, 0, 0) {
                let at = self
                    .tz
                    .from_local_datetime(&midnight)
                    .earliest()
                    .map(|x| x.with_timezone(&Utc))
                    .unwrap_or(end);
                end = end.max(at + Duration::days(HORIZON_DAYS));
            }
        }
        end.min(t + Duration::days(MAX_HORIZON_DAYS))
    }

    /// The scheduled state (calendar + pre-warm) at `t`, using `grid` (the calendar at the
    /// grid points after `t`, see [`Grid`]).
    fn scheduled_with(&self, t: DateTime<Utc>, grid: &Grid) -> (Power, Reason) {
        let (p, r) = self.calendar_at(t);
        if p == Power::Awake || self.prewarm_minutes == 0 {
            return (p, r);
        }
        let reach = t + Duration::minutes(i64::from(self.prewarm_minutes));
        if grid.awake_within(t, reach) {
            (Power::Awake, Reason::Prewarm)
        } else {
            (p, r)
        }
    }

    /// The desired state at `t` and when it next changes.
    pub fn evaluate(&self, t: DateTime<Utc>) -> Evaluation {
        if let Some(m) = self.manual.filter(|m| m.until.is_none_or(|u| u > t)) {
            let next = match m.until {
                None => None,
                Some(until) => {
                    let after = self.unmanual().evaluate(until);
                    if after.power != m.power {
                        Some(Transition {
                            at: until,
                            to: after.power,
                        })
                    } else {
                        after.next
                    }
                }
            };
            return Evaluation {
                power: m.power,
                reason: Reason::Manual,
                next,
            };
        }
        if !self.enabled {
            return Evaluation {
                power: Power::Awake,
                reason: Reason::Disabled,
                next: None,
            };
        }
        let end = self.horizon(t);
        let prewarm = Duration::minutes(i64::from(self.prewarm_minutes));
        let grid = Grid::build(self, t, end + prewarm);
        let (power, reason) = self.scheduled_with(t, &grid);
        // The scheduled state can only change at a grid point, or `prewarm` before one.
        let mut candidates: Vec<DateTime<Utc>> = grid
            .points
            .iter()
            .flat_map(|(g, _)| [*g, *g - prewarm])
            .filter(|c| *c > t && *c <= end)
            .collect();
        candidates.sort();
        candidates.dedup();
        let next = candidates.into_iter().find_map(|c| {
            let (p, _) = self.scheduled_with(c, &grid);
            (p != power).then_some(Transition { at: c, to: p })
        });
        Evaluation {
            power,
            reason,
            next,
        }
    }

    fn unmanual(&self) -> Schedule {
        Schedule {
            manual: None,
            ..self.clone()
        }
    }

    /// When the calendar (with pre-warm, without manual override) next puts the cluster
    /// in `power` after `t`: the end of a "sleep now" / "wake now" without a duration.
    pub fn next_scheduled(&self, t: DateTime<Utc>, power: Power) -> Option<DateTime<Utc>> {
        let s = self.unmanual();
        let mut at = t;
        // At most two hops: the current run of the other state, then the change.
        for _ in 0..3 {
            let e = s.evaluate(at);
            if e.power == power && at > t {
                return Some(at);
            }
            at = e.next?.at;
            if e.next.is_some_and(|n| n.to == power) {
                return Some(at);
            }
        }
        None
    }
}

/// The calendar's awake/asleep at each UTC quarter-hour after a start: a state holds from
/// its grid point to the next.
struct Grid {
    /// `(grid point, awake)` ascending.
    points: Vec<(DateTime<Utc>, bool)>,
}

impl Grid {
    fn build(s: &Schedule, from: DateTime<Utc>, to: DateTime<Utc>) -> Grid {
        let step = Duration::minutes(GRID_MINUTES);
        let secs = from.timestamp();
        let q = GRID_MINUTES * 60;
        let first = secs - secs.rem_euclid(q) + q;
        let mut g = DateTime::<Utc>::from_timestamp(first, 0).unwrap_or(from);
        let mut points = Vec::new();
        while g <= to {
            points.push((g, s.calendar_at(g).0 == Power::Awake));
            g += step;
        }
        Grid { points }
    }

    /// Whether the calendar is awake at a grid point in `(t, reach]`.
    fn awake_within(&self, t: DateTime<Utc>, reach: DateTime<Utc>) -> bool {
        let start = self.points.partition_point(|(g, _)| *g <= t);
        self.points[start..]
            .iter()
            .take_while(|(g, _)| *g <= reach)
            .any(|(_, awake)| *awake)
    }
}

// ---------------------------------------------------------------------------------------
// Sizes of the Auto Scaling groups a sleep changes and a wake restores.

/// Min / max / desired of one Auto Scaling group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupSize {
    pub name: String,
    pub min: u32,
    pub max: u32,
    pub desired: u32,
}

/// What a sleep does.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SleepPlan {
    /// Sizes to remember (groups already remembered keep their earlier sizes: a sleep
    /// interrupted half-way and retried never remembers the zeros it set).
    pub remember: Vec<GroupSize>,
    /// Sizes to set now.
    pub set: Vec<GroupSize>,
}

/// Plans a sleep over the cluster's groups `current`: the `selected` ones (empty: all)
/// go to 0 / 0 / 0, except `keep_one` (the group of the node kept for protected
/// namespaces), which keeps exactly one node (1 / 1 / 1). `remembered` is what an earlier,
/// unfinished sleep already stored.
pub fn plan_sleep(
    current: &[GroupSize],
    selected: &[String],
    keep_one: Option<&str>,
    remembered: &[GroupSize],
) -> SleepPlan {
    let mut plan = SleepPlan::default();
    for g in current {
        if !selected.is_empty() && !selected.contains(&g.name) {
            continue;
        }
        let earlier = remembered.iter().find(|r| r.name == g.name);
        let keep = keep_one == Some(g.name.as_str()) && g.max >= 1;
        let target = if keep { 1 } else { 0 };
        // Max goes to zero too, so that no autoscaler (cluster-autoscaler reacting to the
        // pods left pending) scales a sleeping group back up; the kept group is pinned at
        // exactly one node so nothing scales it in or out.
        let wanted = GroupSize {
            name: g.name.clone(),
            min: target,
            max: target,
            desired: target,
        };
        if earlier.is_none() {
            plan.remember.push(g.clone());
        }
        if (g.min, g.max, g.desired) != (wanted.min, wanted.max, wanted.desired) {
            plan.set.push(wanted);
        }
    }
    plan
}

/// Plans a wake: every remembered group back to exactly its remembered sizes (groups that
/// no longer exist are skipped; groups already there are left alone).
pub fn plan_wake(current: &[GroupSize], remembered: &[GroupSize]) -> Vec<GroupSize> {
    remembered
        .iter()
        .filter(|r| current.iter().any(|g| g.name == r.name && *g != **r))
        .cloned()
        .collect()
}

// ---------------------------------------------------------------------------------------
// Savings

/// A completed change of state: from `at` on the cluster was `to`; a sleep removed
/// capacity priced `saving_hourly` (USD per hour).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Change {
    pub at: DateTime<Utc>,
    pub to: Power,
    pub saving_hourly: f64,
}

/// Hours slept and dollars saved over `[from, to)`, from the changes ordered by time (the
/// first may precede `from`: it gives the state the period starts in; before any change
/// the cluster was awake).
pub fn savings(changes: &[Change], from: DateTime<Utc>, to: DateTime<Utc>) -> (f64, f64) {
    let (mut hours, mut saved) = (0.0, 0.0);
    for (i, c) in changes.iter().enumerate() {
        if c.to != Power::Asleep {
            continue;
        }
        let end = changes.get(i + 1).map_or(to, |n| n.at).min(to);
        let start = c.at.max(from);
        if end > start {
            let h = (end - start).num_milliseconds() as f64 / 3_600_000.0;
            hours += h;
            saved += h * c.saving_hourly.max(0.0);
        }
    }
    (hours, saved)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn ny() -> Tz {
        parse_tz("America/New_York").expect("tz")
    }

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s)
            .expect("instant")
            .with_timezone(&Utc)
    }

    fn date(s: &str) -> NaiveDate {
        parse_date("date", s).expect("date")
    }

    /// Awake Monday–Friday 09:00–18:00, asleep otherwise.
    fn office(tz: Tz) -> Schedule {
        let mut slots = [false; SLOTS];
        for d in 0..5 {
            for h in 9..18 {
                slots[d * 24 + h] = true;
            }
        }
        Schedule {
            enabled: true,
            slots,
            tz,
            ..Schedule::always_awake()
        }
    }

    #[test]
    fn office_hours_in_new_york_follow_the_wall_clock() {
        let s = office(ny());
        // Monday 2026-01-05 08:59 EST = 13:59 UTC: asleep, wakes at 09:00 EST = 14:00 UTC.
        let e = s.evaluate(utc("2026-01-05T13:59:00Z"));
        assert_eq!(e.power, Power::Asleep);
        assert_eq!(e.reason, Reason::Schedule);
        assert_eq!(
            e.next,
            Some(Transition {
                at: utc("2026-01-05T14:00:00Z"),
                to: Power::Awake
            })
        );
        // In July (EDT, UTC−4) the same wall-clock hour is 13:00 UTC.
        let e = s.evaluate(utc("2026-07-06T12:30:00Z"));
        assert_eq!(
            e.next.map(|n| n.at),
            Some(utc("2026-07-06T13:00:00Z")),
            "{e:?}"
        );
        // Friday 18:00 EDT = 22:00 UTC: asleep until Monday 09:00 EDT.
        let e = s.evaluate(utc("2026-07-10T22:00:00Z"));
        assert_eq!(e.power, Power::Asleep);
        assert_eq!(e.next.map(|n| n.at), Some(utc("2026-07-13T13:00:00Z")));
    }

    #[test]
    fn spring_forward_skips_the_missing_local_hour() {
        // 2026-03-08 (Sunday): 02:00 EST jumps to 03:00 EDT at 07:00 UTC. Only the 02:00
        // slot is awake: that local hour does not exist, so the cluster never wakes for it.
        let mut s = Schedule {
            enabled: true,
            slots: [false; SLOTS],
            tz: ny(),
            ..Schedule::always_awake()
        };
        s.slots[6 * 24 + 2] = true;
        for t in [
            "2026-03-08T06:59:00Z", // 01:59 EST
            "2026-03-08T07:00:00Z", // 03:00 EDT
            "2026-03-08T07:30:00Z",
        ] {
            assert_eq!(s.evaluate(utc(t)).power, Power::Asleep, "{t}");
        }
        // The next wake is the 02:00 slot a week later (EDT, 06:00 UTC).
        let e = s.evaluate(utc("2026-03-08T06:00:00Z"));
        assert_eq!(
            e.next,
            Some(Transition {
                at: utc("2026-03-15T06:00:00Z"),
                to: Power::Awake
            })
        );
        // Awake 01:00 and 03:00 on that Sunday: one real hour apart is one transition
        // pair, the wake at 01:00 EST lasts until 03:00 EDT without a sleep between.
        let mut s2 = s.clone();
        s2.slots = [false; SLOTS];
        s2.slots[6 * 24 + 1] = true;
        s2.slots[6 * 24 + 3] = true;
        let e = s2.evaluate(utc("2026-03-08T06:10:00Z")); // 01:10 EST
        assert_eq!(e.power, Power::Awake);
        assert_eq!(
            e.next,
            Some(Transition {
                at: utc("2026-03-08T08:00:00Z"), // 04:00 EDT
                to: Power::Asleep
            })
        );
    }

    #[test]
    fn fall_back_sleeps_the_repeated_hour_twice() {
        // 2026-11-01 (Sunday): 02:00 EDT falls back to 01:00 EST at 06:00 UTC; local
        // 01:00–02:00 happens twice (05:00–06:00 and 06:00–07:00 UTC).
        let mut slots = [true; SLOTS];
        slots[6 * 24 + 1] = false;
        let s = Schedule {
            enabled: true,
            slots,
            tz: ny(),
            ..Schedule::always_awake()
        };
        let e = s.evaluate(utc("2026-11-01T04:30:00Z")); // 00:30 EDT
        assert_eq!(e.power, Power::Awake);
        assert_eq!(
            e.next,
            Some(Transition {
                at: utc("2026-11-01T05:00:00Z"),
                to: Power::Asleep
            })
        );
        // Both occurrences of 01:xx are asleep; the wake is at 02:00 EST = 07:00 UTC.
        assert_eq!(s.evaluate(utc("2026-11-01T05:30:00Z")).power, Power::Asleep);
        let e = s.evaluate(utc("2026-11-01T06:30:00Z"));
        assert_eq!(e.power, Power::Asleep);
        assert_eq!(
            e.next,
            Some(Transition {
                at: utc("2026-11-01T07:00:00Z"),
                to: Power::Awake
            })
        );
    }

    #[test]
    fn prewarm_wakes_early_and_across_dst() {
        let mut s = office(ny());
        s.prewarm_minutes = 30;
        // Monday 2026-03-09, the day after spring forward: 09:00 EDT = 13:00 UTC.
        let e = s.evaluate(utc("2026-03-09T12:00:00Z"));
        assert_eq!(e.power, Power::Asleep);
        assert_eq!(
            e.next,
            Some(Transition {
                at: utc("2026-03-09T12:30:00Z"),
                to: Power::Awake
            })
        );
        let e = s.evaluate(utc("2026-03-09T12:40:00Z"));
        assert_eq!((e.power, e.reason), (Power::Awake, Reason::Prewarm));
        // Pre-warm does not delay the sleep.
        let e = s.evaluate(utc("2026-03-09T21:59:00Z"));
        assert_eq!(
            e.next,
            Some(Transition {
                at: utc("2026-03-09T22:00:00Z"),
                to: Power::Asleep
            })
        );
        // A 45-minute pre-warm with an odd length: the wake at 08:15 EDT.
        s.prewarm_minutes = 45;
        assert_eq!(
            s.evaluate(utc("2026-03-09T12:00:00Z")).next.map(|n| n.at),
            Some(utc("2026-03-09T12:15:00Z"))
        );
    }

    #[test]
    fn overrides_beat_holidays_and_holidays_beat_slots() {
        let mut s = office(ny());
        // Thanksgiving 2026-11-26 (Thursday) and the Friday after are holidays; the Friday
        // is also a sprint day (stay awake), and Saturday is forced asleep too (no change).
        s.holidays = [date("2026-11-26"), date("2026-11-27")].into();
        s.overrides = [
            (date("2026-11-27"), DayMode::Awake),
            (date("2026-11-28"), DayMode::Sleep),
        ]
        .into();
        let thu_noon = utc("2026-11-26T17:00:00Z"); // 12:00 EST
        assert_eq!(s.evaluate(thu_noon).power, Power::Asleep);
        assert_eq!(s.evaluate(thu_noon).reason, Reason::Holiday);
        // The sprint day starts at local midnight Friday (05:00 UTC) and ends at local
        // midnight Saturday, where the override to sleep takes over.
        assert_eq!(
            s.evaluate(thu_noon).next,
            Some(Transition {
                at: utc("2026-11-27T05:00:00Z"),
                to: Power::Awake
            })
        );
        let fri_night = utc("2026-11-28T02:00:00Z"); // Fri 21:00 EST
        let e = s.evaluate(fri_night);
        assert_eq!((e.power, e.reason), (Power::Awake, Reason::Override));
        assert_eq!(
            e.next,
            Some(Transition {
                at: utc("2026-11-28T05:00:00Z"),
                to: Power::Asleep
            })
        );
        // Next wake: Monday 09:00 EST.
        let e = s.evaluate(utc("2026-11-28T05:00:00Z"));
        assert_eq!(e.next.map(|n| n.at), Some(utc("2026-11-30T14:00:00Z")));
    }

    #[test]
    fn manual_override_wins_until_it_ends() {
        let mut s = office(ny());
        let mon_noon = utc("2026-01-05T17:00:00Z");
        s.manual = Some(Manual {
            power: Power::Asleep,
            until: Some(utc("2026-01-05T19:00:00Z")),
        });
        let e = s.evaluate(mon_noon);
        assert_eq!((e.power, e.reason), (Power::Asleep, Reason::Manual));
        assert_eq!(
            e.next,
            Some(Transition {
                at: utc("2026-01-05T19:00:00Z"),
                to: Power::Awake
            })
        );
        // Wake now for two hours on a Saturday night; the schedule is asleep after it, so
        // the next change is the end of the override.
        s.manual = Some(Manual {
            power: Power::Awake,
            until: Some(utc("2026-01-11T04:00:00Z")),
        });
        let e = s.evaluate(utc("2026-01-11T02:00:00Z"));
        assert_eq!(e.power, Power::Awake);
        assert_eq!(e.next.map(|n| n.to), Some(Power::Asleep));
        // A wake-now ending inside awake hours continues to the scheduled sleep.
        s.manual = Some(Manual {
            power: Power::Awake,
            until: Some(utc("2026-01-05T15:00:00Z")),
        });
        let e = s.evaluate(utc("2026-01-05T13:00:00Z"));
        assert_eq!(e.next.map(|n| n.at), Some(utc("2026-01-05T23:00:00Z")));
        // An ended override is ignored; a disabled schedule stays awake without end.
        assert_eq!(s.evaluate(mon_noon).reason, Reason::Schedule);
        s.enabled = false;
        s.manual = None;
        assert_eq!(
            s.evaluate(mon_noon),
            Evaluation {
                power: Power::Awake,
                reason: Reason::Disabled,
                next: None
            }
        );
        // Manual overrides act on a disabled schedule too, without end.
        s.manual = Some(Manual {
            power: Power::Asleep,
            until: None,
        });
        assert_eq!(s.evaluate(mon_noon).power, Power::Asleep);
        assert_eq!(s.evaluate(mon_noon).next, None);
    }

    #[test]
    fn next_scheduled_finds_the_end_of_a_manual_sleep() {
        let s = office(ny());
        // Sleep now on Monday at noon: the schedule next wakes on Tuesday 09:00 EST.
        assert_eq!(
            s.next_scheduled(utc("2026-01-05T17:00:00Z"), Power::Awake),
            Some(utc("2026-01-06T14:00:00Z"))
        );
        // Wake now on Saturday: the schedule next sleeps on Monday 18:00 EST.
        assert_eq!(
            s.next_scheduled(utc("2026-01-10T17:00:00Z"), Power::Asleep),
            Some(utc("2026-01-12T23:00:00Z"))
        );
        assert_eq!(
            Schedule::always_awake().next_scheduled(utc("2026-01-05T17:00:00Z"), Power::Asleep),
            None
        );
    }

    #[test]
    fn input_is_checked_field_by_field() {
        assert_eq!(parse_tz("Mars/Olympus").unwrap_err().field, "timezone");
        assert!(parse_tz("Asia/Kathmandu").is_ok());
        assert_eq!(slots_from(&[true; 167]).unwrap_err().field, "slots");
        assert_eq!(check_prewarm(241).unwrap_err().field, "prewarm_minutes");
        assert_eq!(check_prewarm(-1).unwrap_err().field, "prewarm_minutes");
        assert_eq!(check_prewarm(240), Ok(240));
        assert!(parse_date("holidays[0]", "2026-02-30").is_err());
        assert!(parse_date("holidays[0]", "2026-2-3").is_err());
        let s = office(ny()).slots;
        assert_eq!(slots_from_string(&slots_to_string(&s)), Ok(s));
    }

    #[test]
    fn quarter_hour_zones_change_on_their_own_boundaries() {
        // Asia/Kathmandu is UTC+05:45: local 09:00 is 03:15 UTC.
        let s = office(parse_tz("Asia/Kathmandu").expect("tz"));
        let e = s.evaluate(utc("2026-01-05T02:00:00Z"));
        assert_eq!(e.next.map(|n| n.at), Some(utc("2026-01-05T03:15:00Z")));
    }

    #[test]
    fn savings_count_only_slept_hours_inside_the_period() {
        let c = |at: &str, to, rate| Change {
            at: utc(at),
            to,
            saving_hourly: rate,
        };
        let changes = [
            // Asleep since before the period: counted from its start.
            c("2026-02-28T20:00:00Z", Power::Asleep, 2.0),
            c("2026-03-01T08:00:00Z", Power::Awake, 0.0),
            c("2026-03-02T20:00:00Z", Power::Asleep, 3.0),
        ];
        let (h, usd) = savings(
            &changes,
            utc("2026-03-01T00:00:00Z"),
            utc("2026-03-02T22:30:00Z"),
        );
        assert!((h - 10.5).abs() < 1e-9, "{h}");
        assert!((usd - (8.0 * 2.0 + 2.5 * 3.0)).abs() < 1e-9, "{usd}");
        assert_eq!(
            savings(
                &[],
                utc("2026-03-01T00:00:00Z"),
                utc("2026-03-02T00:00:00Z")
            ),
            (0.0, 0.0)
        );
    }

    fn group() -> impl Strategy<Value = GroupSize> {
        (0u32..20, 0u32..20, 0u32..40).prop_map(|(min, extra, d)| {
            let max = min + extra;
            GroupSize {
                name: String::new(),
                min,
                max,
                desired: min + d % (extra + 1),
            }
        })
    }

    fn apply(groups: &mut [GroupSize], set: &[GroupSize]) {
        for s in set {
            if let Some(g) = groups.iter_mut().find(|g| g.name == s.name) {
                *g = s.clone();
            }
        }
    }

    proptest! {
        /// Sleep then wake restores every group exactly; a sleep retried half-way (or
        /// twice) remembers the original sizes, not the zeros.
        #[test]
        fn sleep_then_wake_restores_exactly(
            sizes in proptest::collection::vec(group(), 1..8),
            pick in proptest::collection::vec(any::<bool>(), 8),
            keep in proptest::option::of(0usize..8),
            interrupted_after in 0usize..8,
        ) {
            let original: Vec<GroupSize> = sizes
                .into_iter()
                .enumerate()
                .map(|(i, g)| GroupSize { name: format!("asg-{i}"), ..g })
                .collect();
            let selected: Vec<String> = original
                .iter()
                .zip(&pick)
                .filter(|(_, p)| **p)
                .map(|(g, _)| g.name.clone())
                .collect();
            let keep_name = keep.and_then(|k| original.get(k)).map(|g| g.name.clone());
            let mut groups = original.clone();
            // First attempt stops after `interrupted_after` updates, with everything
            // remembered (the sizes are stored before any group is touched).
            let first = plan_sleep(&groups, &selected, keep_name.as_deref(), &[]);
            let remembered = first.remember.clone();
            let cut = interrupted_after.min(first.set.len());
            apply(&mut groups, &first.set[..cut]);
            let retry = plan_sleep(&groups, &selected, keep_name.as_deref(), &remembered);
            prop_assert!(retry.remember.is_empty());
            apply(&mut groups, &retry.set);
            // Asleep: selected groups at zero (or the kept one at one), others untouched.
            for (g, o) in groups.iter().zip(&original) {
                let chosen = selected.is_empty() || selected.contains(&g.name);
                if !chosen {
                    prop_assert_eq!(g, o);
                } else if keep_name.as_deref() == Some(g.name.as_str()) && o.max >= 1 {
                    prop_assert_eq!((g.min, g.max, g.desired), (1, 1, 1));
                } else {
                    prop_assert_eq!((g.min, g.max, g.desired), (0, 0, 0));
                }
            }
            // A second sleep changes nothing.
            prop_assert!(plan_sleep(&groups, &selected, keep_name.as_deref(), &remembered).set.is_empty());
            let wake = plan_wake(&groups, &remembered);
            apply(&mut groups, &wake);
            prop_assert_eq!(&groups, &original);
            prop_assert!(plan_wake(&groups, &remembered).is_empty());
        }
    }
}
