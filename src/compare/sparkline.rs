//! The small timeline of each run on `compare.html`: requests per bar of
//! time (100 ms, wider for long runs), failed requests stacked in red at
//! the bottom of each bar, the load host's own errors in grey, and a
//! dashed line where each rollout step started. Every run is drawn on one
//! shared axis ([`Axis`]): the same run-clock seconds across and the same
//! requests-per-bar up, so two variants read side by side.
//!
//! Pure geometry: the requests come in as the buckets `analyse` made
//! from `requests.csv` (the pass `report.html` uses), the steps as
//! `summary.json` records them; the output is SVG path data and
//! coordinates in a `WIDTH` × `HEIGHT` box that the template stretches
//! to the page's width.
//!
//! Not for: reading the run directory (`read::activity`) or the report's
//! full chart (`report::html`).

use crate::analyse::{BUCKET_NS, Bucket};
use crate::load::outcome::Outcome;
use crate::rundir::run_json::StepRecord;
use serde::Serialize;
use std::fmt::Write as _;

/// The drawing box; the SVG is stretched across (`preserveAspectRatio`
/// none) and drawn 1:1 up, so heights are pixels.
pub const WIDTH: f64 = 1000.0;
pub const HEIGHT: f64 = 40.0;
/// At most this many bars across: a long run gets wider bars (whole
/// multiples of 100 ms) rather than a page of path data.
const MAX_BARS: u64 = 500;
/// A bar with any failure shows at least this much red, however tall the
/// bar.
const MIN_FAILED_PX: f64 = 2.0;
const BUCKET_MS: u64 = BUCKET_NS / 1_000_000;

/// What a run did over time, as the timeline needs it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Activity {
    /// One per 100 ms bucket with requests, in time order.
    pub bars: Vec<Bar>,
    pub steps: Vec<StepMark>,
}

/// Requests started in one 100 ms bucket.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Bar {
    pub start_ms: u64,
    pub ok: u64,
    /// Failures the target answers for.
    pub failed: u64,
    /// The load host's own errors (`client_resource`): not failures.
    pub host: u64,
}

#[derive(Clone, Debug, PartialEq)]
pub struct StepMark {
    /// When the step started, ms on the run clock.
    pub at_ms: f64,
    /// `1. set_image nginx=nginx:1.28.0`.
    pub label: String,
    /// It ended `done` (not failed, stalled or cancelled).
    pub done: bool,
}

impl Activity {
    /// From `analyse`'s buckets and the rollout's steps.
    pub fn new(buckets: &[Bucket], steps: &[StepRecord]) -> Activity {
        Activity {
            bars: buckets
                .iter()
                .map(|b| Bar {
                    start_ms: b.start_ns / 1_000_000,
                    ok: b.ok,
                    failed: b.target_failed(),
                    host: b.failed.get(&Outcome::ClientResource).copied().unwrap_or(0),
                })
                .collect(),
            steps: steps
                .iter()
                .map(|s| StepMark {
                    at_ms: s.started_ms,
                    label: format!("{}. {}", s.index, s.description),
                    done: s.outcome.is_done(),
                })
                .collect(),
        }
    }

    /// Where the run's last request or step start falls, in ms.
    fn end_ms(&self) -> f64 {
        let bars = self
            .bars
            .last()
            .map_or(0.0, |b| (b.start_ms + BUCKET_MS) as f64);
        self.steps.iter().map(|s| s.at_ms).fold(bars, f64::max)
    }
}

/// The scale every run's timeline shares.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Axis {
    /// The right edge, ms on the run clock (the left is 0).
    pub end_ms: f64,
    /// The width of one bar.
    pub bar_ms: u64,
    /// The most requests in any bar of any run: the full height.
    pub peak: u64,
    pub ticks: Vec<Tick>,
}

/// A labelled second on the axis, placed as a percentage of the width.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Tick {
    pub pct: f64,
    pub label: String,
}

impl Axis {
    /// The axis over every run given; `None` when no run sent a request.
    pub fn shared(runs: &[&Activity]) -> Option<Axis> {
        if runs.iter().all(|a| a.bars.is_empty()) {
            return None;
        }
        let end_ms = runs.iter().map(|a| a.end_ms()).fold(0.0, f64::max);
        let buckets = (end_ms / BUCKET_MS as f64).ceil() as u64;
        let bar_ms = BUCKET_MS * buckets.div_ceil(MAX_BARS).max(1);
        let peak = runs
            .iter()
            .flat_map(|a| binned(a, bar_ms))
            .map(|(_, b)| b.ok + b.failed + b.host)
            .max()
            .unwrap_or(0)
            .max(1);
        Some(Axis {
            end_ms,
            bar_ms,
            peak,
            ticks: ticks(end_ms),
        })
    }

    fn x(&self, ms: f64) -> f64 {
        ms / self.end_ms * WIDTH
    }
}

/// About 6 to 10 labelled seconds, at a round step.
fn ticks(end_ms: f64) -> Vec<Tick> {
    const STEPS_S: [f64; 16] = [
        0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 900.0, 1800.0,
        3600.0,
    ];
    let end_s = end_ms / 1000.0;
    let step = STEPS_S
        .iter()
        .copied()
        .find(|s| end_s / s <= 10.0)
        .unwrap_or(7200.0);
    let decimals = usize::from(step < 1.0);
    (0..)
        .map(|k| k as f64 * step)
        .take_while(|t| *t <= end_s + 1e-9)
        .map(|t| Tick {
            pct: t / end_s * 100.0,
            label: format!("{t:.decimals$} s"),
        })
        .collect()
}

/// The bars of a run merged into bars `bar_ms` wide, by index.
fn binned(a: &Activity, bar_ms: u64) -> Vec<(u64, Bar)> {
    let mut out: Vec<(u64, Bar)> = Vec::new();
    for b in &a.bars {
        let i = b.start_ms / bar_ms;
        match out.last_mut() {
            Some((j, acc)) if *j == i => {
                acc.ok += b.ok;
                acc.failed += b.failed;
                acc.host += b.host;
            }
            _ => out.push((i, *b)),
        }
    }
    out
}

/// One run's timeline, ready to place in an `<svg>`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Sparkline {
    /// SVG path data: the requests that got an answer, the failed ones,
    /// the load host's errors.
    pub ok: String,
    pub failed: String,
    pub host: String,
    pub steps: Vec<StepLine>,
    /// From the start of the first bar with a failure to the end of the
    /// last, in seconds: `5.6–8.7 s`; `None` when nothing failed.
    pub failing: Option<String>,
}

/// A rollout step's start, as a vertical line.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct StepLine {
    pub x: String,
    /// `1. set_image nginx=nginx:1.28.0 at 6.64 s`.
    pub title: String,
    pub done: bool,
}

/// Draw one run on the shared axis.
pub fn draw(a: &Activity, axis: &Axis) -> Sparkline {
    let scale = (HEIGHT - 1.0) / axis.peak as f64;
    let w = axis.x(axis.bar_ms as f64);
    let (mut ok, mut failed, mut host) = (String::new(), String::new(), String::new());
    let rect = |path: &mut String, x: f64, bottom: f64, h: f64| {
        if h > 0.0 {
            let _ = write!(path, "M{x:.2} {:.2}h{w:.2}v{h:.2}h-{w:.2}z", bottom - h);
        }
    };
    let bars = binned(a, axis.bar_ms);
    for (i, b) in &bars {
        let x = axis.x((*i * axis.bar_ms) as f64);
        let total = (b.ok + b.failed + b.host) as f64 * scale;
        let hf = if b.failed > 0 {
            (b.failed as f64 * scale).max(MIN_FAILED_PX)
        } else {
            0.0
        };
        let hh = b.host as f64 * scale;
        let ho = (total - hf - hh).max(0.0);
        rect(&mut failed, x, HEIGHT, hf);
        rect(&mut host, x, HEIGHT - hf, hh);
        rect(&mut ok, x, HEIGHT - hf - hh, ho);
    }
    let failing_bars: Vec<u64> = bars
        .iter()
        .filter(|(_, b)| b.failed > 0)
        .map(|(i, _)| *i)
        .collect();
    let failing = match (failing_bars.first(), failing_bars.last()) {
        (Some(first), Some(last)) => Some(format!(
            "{:.1}–{:.1} s",
            (first * axis.bar_ms) as f64 / 1000.0,
            ((last + 1) * axis.bar_ms) as f64 / 1000.0
        )),
        _ => None,
    };
    Sparkline {
        ok,
        failed,
        host,
        steps: a
            .steps
            .iter()
            .map(|s| StepLine {
                x: format!("{:.2}", axis.x(s.at_ms)),
                title: format!("{} at {:.2} s", s.label, s.at_ms / 1000.0),
                done: s.done,
            })
            .collect(),
        failing,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bar(start_ms: u64, ok: u64, failed: u64) -> Bar {
        Bar {
            start_ms,
            ok,
            failed,
            host: 0,
        }
    }

    fn activity(bars: Vec<Bar>) -> Activity {
        Activity {
            bars,
            steps: Vec::new(),
        }
    }

    /// The `(x, y, w, h)` of each rectangle in a path.
    fn rects(d: &str) -> Vec<(f64, f64, f64, f64)> {
        d.split('M')
            .filter(|s| !s.is_empty())
            .map(|s| {
                let n: Vec<f64> = s
                    .split(['h', 'v', 'z', ' '])
                    .filter(|x| !x.is_empty())
                    .map(|x| x.parse().unwrap())
                    .collect();
                (n[0], n[1], n[2], n[3])
            })
            .collect()
    }

    #[test]
    fn buckets_split_into_answered_failed_and_the_hosts_own_errors() {
        let b = Bucket {
            start_ns: 4_600_000_000,
            sent: 20,
            ok: 12,
            failed: [(Outcome::ConnectRefused, 5), (Outcome::ClientResource, 3)].into(),
            ..Bucket::default()
        };
        let a = Activity::new(&[b], &[]);
        assert_eq!(
            a.bars,
            [Bar {
                start_ms: 4600,
                ok: 12,
                failed: 5,
                host: 3
            }]
        );
    }

    #[test]
    fn every_run_shares_one_time_scale_and_one_height_scale() {
        let short = activity(vec![bar(0, 10, 0), bar(900, 10, 0)]);
        let long = activity(vec![bar(0, 20, 0), bar(1900, 20, 0)]);
        let axis = Axis::shared(&[&short, &long]).unwrap();
        assert_eq!((axis.end_ms, axis.bar_ms, axis.peak), (2000.0, 100, 20));
        let s = rects(&draw(&short, &axis).ok);
        let l = rects(&draw(&long, &axis).ok);
        // The same instant lands at the same x, half way across.
        assert_eq!(s[1].0, 450.0);
        assert_eq!(l[1].0, 950.0);
        assert_eq!(s[1].2, l[1].2);
        // Half the requests, half the height.
        assert!((s[0].3 * 2.0 - l[0].3).abs() < 0.02, "{s:?} {l:?}");
    }

    #[test]
    fn failures_sit_red_at_the_bottom_and_a_single_one_still_shows() {
        let a = activity(vec![bar(0, 999, 1), bar(100, 500, 500)]);
        let axis = Axis::shared(&[&a]).unwrap();
        let s = draw(&a, &axis);
        let red = rects(&s.failed);
        assert_eq!(red.len(), 2);
        // One failure in 1,000 is under a pixel, drawn as two.
        assert_eq!(red[0].3, MIN_FAILED_PX);
        assert_eq!(red[0].1 + red[0].3, HEIGHT);
        // Half failed: the lower half red, the upper half answered.
        let ok = rects(&s.ok);
        assert!((red[1].3 - ok[1].3).abs() < 0.02, "{red:?} {ok:?}");
        assert!((ok[1].1 + ok[1].3 - red[1].1).abs() < 0.02);
        assert_eq!(s.failing.as_deref(), Some("0.0–0.2 s"));
    }

    #[test]
    fn a_run_without_failures_draws_no_red_and_names_no_span() {
        let a = activity(vec![bar(0, 10, 0)]);
        let s = draw(&a, &Axis::shared(&[&a]).unwrap());
        assert!(s.failed.is_empty());
        assert_eq!(s.failing, None);
    }

    #[test]
    fn steps_are_lines_where_they_started_and_stretch_the_axis() {
        let mut a = activity(vec![bar(0, 10, 0)]);
        a.steps.push(StepMark {
            at_ms: 1000.0,
            label: "2. wait_rollout".into(),
            done: false,
        });
        let axis = Axis::shared(&[&a]).unwrap();
        assert_eq!(axis.end_ms, 1000.0);
        let s = draw(&a, &axis);
        assert_eq!(s.steps[0].x, "1000.00");
        assert_eq!(s.steps[0].title, "2. wait_rollout at 1.00 s");
        assert!(!s.steps[0].done);
    }

    #[test]
    fn a_long_run_gets_wider_bars_not_more_of_them() {
        // Ten minutes of 100 ms buckets.
        let a = activity((0..6000).map(|i| bar(i * 100, 10, 0)).collect());
        let axis = Axis::shared(&[&a]).unwrap();
        assert_eq!(axis.bar_ms, 1200);
        assert_eq!(axis.peak, 120);
        assert!(rects(&draw(&a, &axis).ok).len() <= MAX_BARS as usize);
    }

    #[test]
    fn ticks_are_round_seconds_across_the_axis() {
        let labels: Vec<String> = ticks(9_700.0).into_iter().map(|t| t.label).collect();
        assert_eq!(
            labels,
            [
                "0 s", "1 s", "2 s", "3 s", "4 s", "5 s", "6 s", "7 s", "8 s", "9 s"
            ]
        );
        let t = ticks(600.0);
        assert_eq!(t[1].label, "0.1 s");
        assert!((t[1].pct - 100.0 / 6.0).abs() < 1e-9);
        assert_eq!(ticks(95_000.0)[1].label, "10 s");
    }

    #[test]
    fn no_axis_when_no_run_sent_anything() {
        assert_eq!(Axis::shared(&[&Activity::default()]), None);
        assert_eq!(Axis::shared(&[]), None);
    }
}
