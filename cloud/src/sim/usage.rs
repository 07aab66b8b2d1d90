//! Weekly load patterns of simulated workloads.

use chrono::{DateTime, Datelike, Duration, Timelike, Utc};

use super::market::SIM_UTC_OFFSET_HOURS;

/// How a cluster's load varies over the week, in local time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UsagePattern {
    /// Production traffic: peak mid-afternoon, trough at night, quieter weekends.
    Diurnal,
    /// Dev / staging: busy on weekday office hours, idle at night and at weekends.
    OfficeHours,
    /// Batch processing: busy in the small hours, light during the day.
    NightlyBatch,
}

impl UsagePattern {
    /// Load factor in [0, 1] at UTC time `t`.
    pub fn factor(self, t: DateTime<Utc>) -> f64 {
        let local = t + Duration::hours(SIM_UTC_OFFSET_HOURS);
        let h = local.hour() as f64 + local.minute() as f64 / 60.0;
        let weekend = local.weekday().number_from_monday() > 5;
        match self {
            UsagePattern::Diurnal => {
                let day = if (7.0..21.0).contains(&h) {
                    (std::f64::consts::PI * (h - 7.0) / 14.0).sin()
                } else {
                    0.0
                };
                let f = 0.35 + 0.65 * day;
                if weekend {
                    f * 0.7
                } else {
                    f
                }
            }
            UsagePattern::OfficeHours => {
                if !weekend && (8.0..19.0).contains(&h) {
                    0.85 + 0.15 * (std::f64::consts::PI * (h - 8.0) / 11.0).sin()
                } else {
                    0.03
                }
            }
            UsagePattern::NightlyBatch => {
                if (1.0..6.0).contains(&h) {
                    1.0
                } else {
                    0.15
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn office_hours_pattern_idles_at_night_and_weekends() {
        // 2025-03-05 is a Wednesday; local = UTC-5.
        let at = |d: u32, h: u32| {
            Utc.with_ymd_and_hms(2025, 3, d, h, 0, 0)
                .single()
                .unwrap_or_default()
                - Duration::hours(SIM_UTC_OFFSET_HOURS)
        };
        let p = UsagePattern::OfficeHours;
        assert!(p.factor(at(5, 14)) > 0.8);
        assert!(p.factor(at(5, 3)) < 0.1);
        assert!(p.factor(at(8, 14)) < 0.1, "Saturday");
        assert!(UsagePattern::Diurnal.factor(at(5, 14)) > UsagePattern::Diurnal.factor(at(5, 3)));
    }
}
