//! The run's one clock: every request record and every lifecycle event is
//! stamped in nanoseconds since the same monotonic origin, so a failure and
//! the event that caused it can be compared directly.
//!
//! The API server's own times (a `deletionTimestamp`, a condition's
//! `lastTransitionTime`) are wall-clock; [`RunClock::wall_to_ns`] maps them
//! onto the run clock through the wall time taken at the origin. That
//! mapping is only as good as the clocks agree (and Kubernetes times have
//! one-second resolution), which is why events keep the observed time too.

use std::time::{Duration, Instant, SystemTime};

#[derive(Clone, Copy, Debug)]
pub struct RunClock {
    origin: Instant,
    wall_origin: SystemTime,
}

impl RunClock {
    /// Start the clock now.
    pub fn start() -> Self {
        RunClock {
            origin: Instant::now(),
            wall_origin: SystemTime::now(),
        }
    }

    pub fn origin(&self) -> Instant {
        self.origin
    }

    /// The wall-clock time of the origin (for reports and API times).
    pub fn wall_origin(&self) -> SystemTime {
        self.wall_origin
    }

    /// Nanoseconds since the origin, now.
    pub fn now_ns(&self) -> u64 {
        self.ns_at(Instant::now())
    }

    /// Nanoseconds since the origin at `t` (0 for instants before it).
    pub fn ns_at(&self, t: Instant) -> u64 {
        t.saturating_duration_since(self.origin).as_nanos() as u64
    }

    /// A wall-clock time (from the API server) on the run clock; negative
    /// when it lies before the origin.
    pub fn wall_to_ns(&self, t: SystemTime) -> i64 {
        match t.duration_since(self.wall_origin) {
            Ok(after) => clamp_i64(after),
            Err(before) => -clamp_i64(before.duration()),
        }
    }
}

fn clamp_i64(d: Duration) -> i64 {
    i64::try_from(d.as_nanos()).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wall_times_before_the_origin_map_to_negative_offsets() {
        let clock = RunClock::start();
        let before = clock.wall_origin() - Duration::from_millis(1500);
        let after = clock.wall_origin() + Duration::from_millis(250);
        assert_eq!(clock.wall_to_ns(before), -1_500_000_000);
        assert_eq!(clock.wall_to_ns(after), 250_000_000);
    }

    #[test]
    fn instants_before_the_origin_clamp_to_zero() {
        let clock = RunClock::start();
        let earlier = clock.origin() - Duration::from_millis(5);
        assert_eq!(clock.ns_at(earlier), 0);
        assert!(clock.ns_at(clock.origin() + Duration::from_millis(3)) == 3_000_000);
    }
}
