//! Simulated time.
//!
//! Every time the simulator uses comes from one [`SimClock`], so a run is reproducible
//! from (seed, clock readings): tests advance a manual clock, demos run accelerated, and
//! a long-running embedded install can follow the wall clock.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, TimeZone, Utc};

#[derive(Debug)]
enum Mode {
    /// Time moves only through [`SimClock::advance`].
    Manual { start: DateTime<Utc> },
    /// `sim = sim_origin + speed * (real elapsed since real_origin)`.
    Scaled {
        real_origin: Instant,
        sim_origin: DateTime<Utc>,
        speed: f64,
    },
}

#[derive(Debug)]
struct Inner {
    mode: Mode,
    /// Manual advances, in milliseconds, added on top of the mode's reading.
    offset_ms: AtomicI64,
}

/// A shareable clock; clones observe the same time.
#[derive(Debug, Clone)]
pub struct SimClock(Arc<Inner>);

impl SimClock {
    fn with_mode(mode: Mode) -> Self {
        SimClock(Arc::new(Inner {
            mode,
            offset_ms: AtomicI64::new(0),
        }))
    }

    /// A clock that stands still at `start` until advanced: the test clock.
    pub fn manual(start: DateTime<Utc>) -> Self {
        Self::with_mode(Mode::Manual { start })
    }

    /// Follows the wall clock.
    pub fn real_time() -> Self {
        Self::accelerated(Utc::now(), 1.0)
    }

    /// Starts at `start` and runs `speed` simulated seconds per real second (3600.0 is
    /// one simulated hour per second). A non-finite or negative speed is treated as 0
    /// (a clock that only moves when advanced).
    pub fn accelerated(start: DateTime<Utc>, speed: f64) -> Self {
        let speed = if speed.is_finite() && speed > 0.0 {
            speed
        } else {
            0.0
        };
        Self::with_mode(Mode::Scaled {
            real_origin: Instant::now(),
            sim_origin: start,
            speed,
        })
    }

    /// A fixed, documented start for tests and reproducible demos: Monday
    /// 2025-03-03 00:00 UTC.
    pub fn default_start() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2025, 3, 3, 0, 0, 0)
            .single()
            .unwrap_or(DateTime::UNIX_EPOCH)
    }

    /// Current simulated time, truncated to milliseconds so that readings are exactly
    /// reproducible.
    pub fn now(&self) -> DateTime<Utc> {
        let base = match &self.0.mode {
            Mode::Manual { start } => *start,
            Mode::Scaled {
                real_origin,
                sim_origin,
                speed,
            } => {
                let real = real_origin.elapsed().as_secs_f64();
                let sim_ms = (real * speed * 1000.0).min(i64::MAX as f64 / 2.0) as i64;
                sim_origin
                    .checked_add_signed(chrono::Duration::milliseconds(sim_ms))
                    .unwrap_or(*sim_origin)
            }
        };
        let offset = self.0.offset_ms.load(Ordering::SeqCst).max(-i64::MAX);
        // Saturate rather than panic if someone advances past the calendar's end.
        let t = base
            .checked_add_signed(chrono::Duration::milliseconds(offset))
            .unwrap_or(base);
        DateTime::from_timestamp_millis(t.timestamp_millis()).unwrap_or(t)
    }

    /// Moves simulated time forward by `d` (works in every mode).
    pub fn advance(&self, d: Duration) {
        let ms = i64::try_from(d.as_millis()).unwrap_or(i64::MAX / 4);
        self.0.offset_ms.fetch_add(ms, Ordering::SeqCst);
    }
}

impl Default for SimClock {
    fn default() -> Self {
        Self::real_time()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manual_clock_moves_only_when_advanced() {
        let c = SimClock::manual(SimClock::default_start());
        let t0 = c.now();
        std::thread::sleep(Duration::from_millis(5));
        assert_eq!(c.now(), t0);
        c.advance(Duration::from_secs(90));
        assert_eq!(c.now(), t0 + chrono::Duration::seconds(90));
        let clone = c.clone();
        clone.advance(Duration::from_secs(10));
        assert_eq!(c.now(), t0 + chrono::Duration::seconds(100));
    }

    #[test]
    fn accelerated_clock_runs_faster_than_real_time() {
        let c = SimClock::accelerated(SimClock::default_start(), 3600.0);
        std::thread::sleep(Duration::from_millis(20));
        let elapsed = c.now() - SimClock::default_start();
        assert!(elapsed >= chrono::Duration::seconds(60), "{elapsed}");
    }
}
