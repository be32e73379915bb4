//! Whether the load kept its schedule: an open-model load is only a
//! measurement of the target at the planned rate if the requests went out
//! at that rate and on time. Three ways it may not have:
//!
//! - the load host could not open connections as fast as planned (the
//!   rate over the span of actual starts is short of the plan);
//! - requests started late (the harness's own lateness, p99, over a
//!   bound: the target's response times would include it);
//! - arrivals were shed at the in-flight cap (`--concurrency`), never
//!   sent.
//!
//! Any of them makes the run invalid (exit 3): the target was not
//! measured as planned, whatever it did.
//!
//! Pure: figures in, the reason out.

use serde::{Deserialize, Serialize};
use std::time::Duration;

/// What the load did against its plan.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct ScheduleFacts {
    /// The plan's rate; `None` for the closed model (nothing scheduled).
    pub planned_rps: Option<f64>,
    pub sent: u64,
    pub shed: u64,
    /// First and last actual start, ns on the run clock.
    pub first_start_ns: u64,
    pub last_start_ns: u64,
    /// p99 of (actual start − due instant), every request.
    pub lateness_p99: Duration,
}

/// The bounds (profile `thresholds`, `baton load` flags).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ScheduleLimits {
    pub max_lateness: Duration,
    /// The share of the planned rate (and of the arrivals) that must
    /// have been sent, 0–1.
    pub min_achieved: f64,
}

impl Default for ScheduleLimits {
    fn default() -> Self {
        ScheduleLimits {
            max_lateness: DEFAULT_MAX_LATENESS,
            min_achieved: DEFAULT_MIN_ACHIEVED,
        }
    }
}

/// p99 lateness allowed by default. Healthy runs measure well under 1 ms
/// (the pacer thread sleeps to each instant); a quarter second means the
/// host was starved or overloaded, and a CI machine's noise stays far
/// below it.
pub const DEFAULT_MAX_LATENESS: Duration = Duration::from_millis(250);
/// The share of the plan that must be sent by default.
pub const DEFAULT_MIN_ACHIEVED: f64 = 0.95;

/// The figures, as `summary.json` shows them.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ScheduleFigures {
    pub planned_rps: f64,
    /// Over the span of actual starts: (sent − 1) / (last − first start).
    pub achieved_rps: f64,
    /// Sent over sent + shed.
    pub sent_share: f64,
    pub lateness_p99_ms: f64,
    pub max_lateness_ms: f64,
    pub min_achieved: f64,
}

/// The figures, and why the schedule was not kept if it was not. `None`
/// figures for the closed model or fewer than two requests: nothing to
/// judge.
pub fn judge(f: &ScheduleFacts, l: &ScheduleLimits) -> (Option<ScheduleFigures>, Option<String>) {
    let Some(planned) = f.planned_rps.filter(|r| *r > 0.0) else {
        return (None, None);
    };
    if f.sent < 2 || f.last_start_ns <= f.first_start_ns {
        return (None, None);
    }
    let span_s = (f.last_start_ns - f.first_start_ns) as f64 / 1e9;
    let achieved = (f.sent - 1) as f64 / span_s;
    let sent_share = f.sent as f64 / (f.sent + f.shed) as f64;
    let figures = ScheduleFigures {
        planned_rps: planned,
        achieved_rps: (achieved * 10.0).round() / 10.0,
        sent_share: (sent_share * 1000.0).round() / 1000.0,
        lateness_p99_ms: f.lateness_p99.as_secs_f64() * 1000.0,
        max_lateness_ms: l.max_lateness.as_secs_f64() * 1000.0,
        min_achieved: l.min_achieved,
    };
    let pct = |x: f64| format!("{:.0} %", x * 100.0);
    let why = if sent_share < l.min_achieved {
        Some(format!(
            "{} of {} arrivals ({}) were shed at the in-flight cap and never sent (at least {} must be): \
             raise the concurrency cap (load.concurrency, --concurrency) or leave it to its default",
            f.shed,
            f.sent + f.shed,
            pct(1.0 - sent_share),
            pct(l.min_achieved)
        ))
    } else if achieved < planned * l.min_achieved {
        Some(format!(
            "the load host sent {achieved:.0} requests/s of the {planned:.0} planned ({}; at least {} must be): \
             it cannot open connections that fast; lower the rate or spread the load over more hosts",
            pct(achieved / planned),
            pct(l.min_achieved)
        ))
    } else if f.lateness_p99 > l.max_lateness {
        Some(format!(
            "requests started {:.0} ms late (p99; allowed {:.0} ms): the load host fell behind its schedule, \
             so the target's response times include the harness's own delay",
            figures.lateness_p99_ms, figures.max_lateness_ms
        ))
    } else {
        None
    };
    (Some(figures), why)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 100 requests/s for 10 s, on time.
    fn kept() -> ScheduleFacts {
        ScheduleFacts {
            planned_rps: Some(100.0),
            sent: 1000,
            shed: 0,
            first_start_ns: 0,
            last_start_ns: 9_990_000_000,
            lateness_p99: Duration::from_micros(300),
        }
    }

    #[test]
    fn a_kept_schedule_is_measured_and_not_invalid() {
        let (fig, why) = judge(&kept(), &ScheduleLimits::default());
        assert_eq!(why, None);
        let fig = fig.unwrap();
        assert_eq!(fig.achieved_rps, 100.0);
        assert_eq!(fig.sent_share, 1.0);
    }

    #[test]
    fn a_host_that_cannot_open_connections_fast_enough_is_invalid() {
        // Asked 1e9/s, sent 95,000 over 10 s.
        let f = ScheduleFacts {
            planned_rps: Some(1e9),
            sent: 95_000,
            last_start_ns: 10_000_000_000,
            lateness_p99: Duration::from_millis(9_000),
            ..kept()
        };
        let why = judge(&f, &ScheduleLimits::default()).1.unwrap();
        assert!(
            why.contains("sent 9500 requests/s of the 1000000000 planned"),
            "{why}"
        );
    }

    #[test]
    fn arrivals_shed_at_the_cap_make_the_load_short_of_its_plan() {
        let f = ScheduleFacts {
            sent: 5,
            shed: 95,
            last_start_ns: 20_000_000,
            ..kept()
        };
        let why = judge(&f, &ScheduleLimits::default()).1.unwrap();
        assert!(why.contains("95 of 100 arrivals (95 %) were shed"), "{why}");
    }

    #[test]
    fn late_starts_beyond_the_bound_are_the_harness_s_not_the_target_s() {
        let f = ScheduleFacts {
            lateness_p99: Duration::from_millis(400),
            ..kept()
        };
        let why = judge(&f, &ScheduleLimits::default()).1.unwrap();
        assert!(why.contains("400 ms late"), "{why}");
        let lenient = ScheduleLimits {
            max_lateness: Duration::from_secs(1),
            ..ScheduleLimits::default()
        };
        assert_eq!(judge(&f, &lenient).1, None);
    }

    #[test]
    fn the_closed_model_and_a_single_request_are_not_judged() {
        let closed = ScheduleFacts {
            planned_rps: None,
            ..kept()
        };
        assert_eq!(judge(&closed, &ScheduleLimits::default()), (None, None));
        let one = ScheduleFacts { sent: 1, ..kept() };
        assert_eq!(judge(&one, &ScheduleLimits::default()), (None, None));
    }
}
