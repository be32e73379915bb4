//! The chart of `report.html`: every series of a run placed on one
//! shared time axis (run-clock seconds, `X0`..`X1` in SVG user units),
//! panel under panel: requests, latency, versions, a lane per Pod and per
//! endpoint, a marker per failure; the rollout's steps across them all.
//!
//! Bars and lines are drawn in data units (bucket index, count or log10
//! ms) under a transform, which keeps 6,000 buckets a few hundred KB.
//! Pure: no I/O, ordered collections only.

use super::HtmlInput;
use super::format::{
    candidates_text, epoch_ms, keep_end, keep_start, ms_to_s, outcome_text, r2, secs, wall_label,
};
use super::palette::{
    failing_outcomes, image_tag, pod_version_colour, version_colour, versions_in_order,
};
use crate::analyse::{BUCKET_NS, Bucket};
use crate::attribution::{Attribution, Cause, FailedRequest};
use crate::cluster::event::EventKind;
use crate::load::outcome::Outcome;
use crate::timeline::{EndpointState, Lifecycle, PodState, Timeline};
use serde::Serialize;
use std::collections::BTreeMap;
use std::fmt::Write as _;

/// The chart's coordinate system (SVG user units; the SVG scales to the
/// page width).
const WIDTH: f64 = 1200.0;
/// Left of the plot: panel titles, y ticks and lane labels.
const X0: f64 = 200.0;
const X1: f64 = 1185.0;
const LABEL_ROW: f64 = 14.0;
const PANEL_GAP: f64 = 22.0;
const REQUESTS_H: f64 = 110.0;
const LATENCY_H: f64 = 90.0;
const VERSIONS_H: f64 = 70.0;
const LANE_PITCH: f64 = 16.0;
const LANE_H: f64 = 12.0;
const MARKER_ROW: f64 = 14.0;
/// A failed segment of a bar is at least this tall, so that one failure
/// among a thousand successes still shows.
const MIN_FAILED_PX: f64 = 2.0;
/// Lane labels longer than this keep their end (the unique suffix of a
/// generated Pod name).
const LABEL_CHARS: usize = 28;
/// The same, beside a version tag (which keeps its start, up to
/// `TAG_CHARS`).
const LABEL_CHARS_TAGGED: usize = 17;
const TAG_CHARS: usize = 10;
/// Step labels longer than this are cut (the full text is in the title).
const STEP_LABEL_CHARS: usize = 60;
/// Rough width of one character of an 11 px label, for placing labels.
const CHAR_PX: f64 = 6.2;
const MAX_LABEL_ROWS: usize = 4;

#[derive(Serialize)]
pub(super) struct Chart {
    pub width: f64,
    pub height: f64,
    pub x0: f64,
    pub x1: f64,
    /// The run-clock seconds at `x1` (`x0` is 0 s).
    pub end_s: f64,
    /// The run clock's origin in Unix epoch ms, for the wall-clock axis.
    pub wall0_ms: Option<i64>,
    pub plot_top: f64,
    pub plot_bottom: f64,
    pub ticks_top_y: f64,
    pub ticks_bottom_y: f64,
    /// The stretch the chart opens on when scripts run: the incidents with
    /// a second either side, unless they span most of the run anyway.
    pub focus: Option<(f64, f64)>,
    pub ticks: Vec<Tick>,
    pub bands: Vec<Band>,
    pub marks: Vec<VLine>,
    pub labels: Vec<Label>,
    pub requests: BarPanel,
    pub latency: LinePanel,
    pub versions: BarPanel,
    pub pods: LanePanel,
    pub endpoints: LanePanel,
    pub failures: MarkerPanel,
}

#[derive(Serialize)]
pub(super) struct Tick {
    pub x: f64,
    pub label: String,
    /// The UTC wall clock at the tick (the bottom row), or the run clock
    /// again when the run did not record its start.
    pub wall: String,
}

/// A rollout step's span.
#[derive(Serialize)]
pub(super) struct Band {
    pub x: f64,
    pub w: f64,
    pub title: String,
}

/// A vertical line across every panel: a step's start, the stall.
#[derive(Serialize)]
pub(super) struct VLine {
    pub x: f64,
    pub cls: &'static str,
    pub title: String,
}

/// A label above the plot, in one of a few rows so labels do not overlap.
#[derive(Serialize)]
pub(super) struct Label {
    pub x: f64,
    pub y: f64,
    /// Where the label's text starts; left of `x` when it would run off
    /// the plot's right edge.
    pub text_x: f64,
    /// The run-clock seconds it marks (the zoom script places it by this).
    pub t: f64,
    pub text: String,
    pub title: String,
    pub cls: &'static str,
}

#[derive(Serialize)]
pub(super) struct YTick {
    pub y: f64,
    pub label: String,
}

#[derive(Serialize)]
pub(super) struct Series {
    pub cls: String,
    pub fill: String,
    pub d: String,
}

#[derive(Serialize)]
pub(super) struct Rect {
    pub x: f64,
    pub y: f64,
    pub w: f64,
    pub h: f64,
    pub title: String,
}

/// Stacked bars, drawn in (bucket index, count) units under `transform`.
#[derive(Serialize)]
pub(super) struct BarPanel {
    pub title: &'static str,
    /// Shown when the panel has nothing to draw.
    pub empty_text: &'static str,
    pub y: f64,
    pub h: f64,
    pub transform: String,
    pub series: Vec<Series>,
    pub yticks: Vec<YTick>,
    pub empty: bool,
    pub overlay: Option<Rect>,
    /// Target bands, in the panel's units (versions: a `version_share`
    /// threshold's share ± tolerance of each bucket's answers).
    pub bands: Vec<TargetBand>,
}

/// A band drawn over a panel's bars, with what it means.
#[derive(Serialize)]
pub(super) struct TargetBand {
    pub d: String,
    pub title: String,
}

/// Latency lines, drawn in (bucket index, log10 ms) units.
#[derive(Serialize)]
pub(super) struct LinePanel {
    pub title: &'static str,
    /// Shown when the panel has nothing to draw.
    pub empty_text: &'static str,
    pub y: f64,
    pub h: f64,
    pub transform: String,
    pub p50: String,
    pub p99: String,
    pub yticks: Vec<YTick>,
    pub empty: bool,
}

#[derive(Serialize)]
pub(super) struct LanePanel {
    pub title: &'static str,
    /// Shown when the panel has nothing to draw.
    pub empty_text: &'static str,
    pub y: f64,
    pub h: f64,
    pub lanes: Vec<Lane>,
    pub empty: bool,
}

#[derive(Serialize)]
pub(super) struct Lane {
    pub y: f64,
    pub label: String,
    pub title: String,
    /// The Pod's image tag (its version), when the run recorded the image.
    pub tag: String,
    /// The version's colour when the tag names a version that answered.
    pub tag_fill: Option<&'static str>,
    pub segs: Vec<Seg>,
    pub marks: Vec<Mark>,
}

#[derive(Serialize)]
pub(super) struct Seg {
    pub x: f64,
    pub y: f64,
    pub w: f64,
    pub h: f64,
    pub cls: String,
    pub title: String,
}

/// A point event on a lane (a restart, a container exit): a short
/// vertical line, which keeps its width when the chart zooms.
#[derive(Serialize)]
pub(super) struct Mark {
    pub x: f64,
    pub y1: f64,
    pub y2: f64,
    pub cls: &'static str,
    pub title: String,
}

#[derive(Serialize)]
pub(super) struct MarkerPanel {
    pub title: &'static str,
    /// Shown when the panel has nothing to draw.
    pub empty_text: &'static str,
    pub y: f64,
    pub h: f64,
    pub rows: Vec<YTick>,
    pub markers: Vec<Marker>,
    pub empty: bool,
}

/// One failed request on the time axis.
#[derive(Serialize)]
pub(super) struct Marker {
    pub x: f64,
    pub y: f64,
    /// The outcome's class: a marker is coloured by what happened to the
    /// request, its row says why.
    pub cls: String,
    pub href: String,
    pub title: String,
}

/// The smallest of 1, 1.5, 2, 2.5, 3, 4, 5, 6, 8 × 10^k at least `v` (1
/// for nothing): a scale top that wastes little of a panel and halves to a
/// readable middle tick.
pub(super) fn nice_ceil(v: f64) -> f64 {
    const STEPS: [f64; 9] = [1.0, 1.5, 2.0, 2.5, 3.0, 4.0, 5.0, 6.0, 8.0];
    if v <= 1.0 {
        return 1.0;
    }
    let mut m = 10f64.powf(v.log10().floor());
    loop {
        for f in STEPS {
            if f * m >= v - 1e-9 {
                return f * m;
            }
        }
        m *= 10.0;
    }
}

/// A tick spacing giving at most about a dozen ticks over `end_s`.
pub(super) fn tick_step(end_s: f64) -> f64 {
    const STEPS: [f64; 17] = [
        0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 900.0, 1800.0,
        3600.0, 7200.0,
    ];
    STEPS
        .into_iter()
        .find(|s| end_s / s <= 12.0)
        .unwrap_or(7200.0)
}

/// The run-clock span the chart covers, `[0, end]`, in ns: everything
/// measured and everything seen, rounded up to a whole bucket.
fn end_ns(input: &HtmlInput<'_>) -> u64 {
    let s = input.summary;
    let ms_ns = |ms: f64| (ms.max(0.0) * 1e6) as u64;
    let candidates = [
        input.buckets.last().map_or(0, |b| b.start_ns + BUCKET_NS),
        input.timeline.events().last().map_or(0, |e| e.observed_ns),
        input.failures.iter().map(|f| f.start_ns).max().unwrap_or(0),
        s.rollout
            .steps
            .iter()
            .map(|st| ms_ns(st.ended_ms))
            .max()
            .unwrap_or(0),
        s.rollout.stall.as_ref().map_or(0, |st| ms_ns(st.at_ms)),
    ];
    let end = candidates.into_iter().max().unwrap_or(0).max(BUCKET_NS);
    // A little room on the right so the last state does not touch the edge.
    let padded = end + end / 100;
    padded.div_ceil(BUCKET_NS) * BUCKET_NS
}

/// Maps run-clock time onto the plot.
#[derive(Clone, Copy)]
struct Scale {
    end_ns: u64,
}

impl Scale {
    pub fn x(self, ns: u64) -> f64 {
        r2(X0 + ns.min(self.end_ns) as f64 / self.end_ns as f64 * (X1 - X0))
    }

    pub fn x_ms(self, ms: f64) -> f64 {
        self.x((ms.max(0.0) * 1e6) as u64)
    }

    /// Plot width of one bucket.
    fn px_per_bucket(self) -> f64 {
        BUCKET_NS as f64 / self.end_ns as f64 * (X1 - X0)
    }
}

/// Labels above the plot, each in the first row where it does not overlap
/// the previous label of that row.
struct LabelRows {
    /// Per row, the x where its last label's text ends.
    ends: Vec<f64>,
}

impl LabelRows {
    fn place(&mut self, x: f64, text: &str) -> (usize, f64) {
        let w = text.chars().count() as f64 * CHAR_PX + 6.0;
        let text_x = if x + w > X1 { (X1 - w).max(X0) } else { x };
        for (row, end) in self.ends.iter_mut().enumerate() {
            if text_x >= *end {
                *end = text_x + w;
                return (row, text_x);
            }
        }
        if self.ends.len() < MAX_LABEL_ROWS {
            self.ends.push(text_x + w);
            return (self.ends.len() - 1, text_x);
        }
        // Every row is taken: overlap in the last one rather than lose it.
        let last = self.ends.len() - 1;
        self.ends[last] = self.ends[last].max(text_x + w);
        (last, text_x)
    }
}

/// The chart of a run: `shown` are the failures that get a marker,
/// `has_row[i]` whether failure `i` has a table row to link to.
pub(super) fn chart(input: &HtmlInput<'_>, shown: &[usize], has_row: &[bool]) -> Chart {
    let end = end_ns(input);
    let scale = Scale { end_ns: end };
    let s = input.summary;
    // Step labels first: their rows decide where the plot starts.
    let mut rows = LabelRows { ends: Vec::new() };
    // (row, x, text x, seconds, text, title, class)
    type Placed = (usize, f64, f64, f64, String, String, &'static str);
    let mut placed: Vec<Placed> = Vec::new();
    let mut bands = Vec::new();
    let mut marks = Vec::new();
    for st in &s.rollout.steps {
        let x = scale.x_ms(st.started_ms);
        let x_end = scale.x_ms(st.ended_ms);
        let full = format!("{}. {}", st.index, st.description);
        let title = format!(
            "step {} from {} s to {} s: {}",
            full,
            ms_to_s(st.started_ms),
            ms_to_s(st.ended_ms),
            st.outcome
        );
        let text = keep_start(&full, STEP_LABEL_CHARS);
        let (row, text_x) = rows.place(x, &text);
        let cls = if st.outcome.is_done() {
            "step"
        } else {
            "step bad"
        };
        placed.push((
            row,
            x,
            text_x,
            st.started_ms / 1000.0,
            text,
            title.clone(),
            cls,
        ));
        bands.push(Band {
            x,
            w: r2((x_end - x).max(0.0)),
            title: title.clone(),
        });
        marks.push(VLine { x, cls, title });
    }
    if let Some(st) = &s.rollout.stall {
        let x = scale.x_ms(st.at_ms);
        let text = keep_start(&format!("stalled: {}", st.reason), STEP_LABEL_CHARS);
        let title = format!(
            "the rollout stalled at {} s: {}{}",
            ms_to_s(st.at_ms),
            st.reason,
            if st.undone { " (rolled back)" } else { "" }
        );
        let (row, text_x) = rows.place(x, &text);
        placed.push((
            row,
            x,
            text_x,
            st.at_ms / 1000.0,
            text,
            title.clone(),
            "stall",
        ));
        marks.push(VLine {
            x,
            cls: "stall",
            title,
        });
    }
    let label_h = rows.ends.len() as f64 * LABEL_ROW;
    let labels = placed
        .into_iter()
        .map(|(row, x, text_x, t, text, title, cls)| Label {
            x,
            y: r2(row as f64 * LABEL_ROW + 11.0),
            text_x: r2(text_x + 3.0),
            t: (t * 1000.0).round() / 1000.0,
            text,
            title,
            cls,
        })
        .collect();
    let ticks_top_y = label_h + 12.0;
    let plot_top = ticks_top_y + 8.0;

    let mut y = plot_top;
    let requests = requests_panel(input, scale, y);
    y += requests.h + PANEL_GAP;
    let latency = latency_panel(input.buckets, scale, y);
    y += latency.h + PANEL_GAP;
    let versions = versions_panel(input.buckets, &input.summary.version_shares, scale, y);
    y += versions.h + PANEL_GAP;
    let answered = versions_in_order(input.buckets);
    let pods = pods_panel(input.timeline, &answered, scale, end, y);
    y += pods.h + PANEL_GAP;
    let allowance_ns = input
        .summary
        .propagation
        .as_ref()
        .map(|p| (p.allowance_ms * 1e6) as u64);
    let endpoints = endpoints_panel(input.timeline, &answered, scale, end, y, allowance_ns);
    y += endpoints.h + PANEL_GAP;
    let failures = failures_panel(input.failures, input.attributions, shown, has_row, scale, y);
    y += failures.h;
    let plot_bottom = r2(y);
    let ticks_bottom_y = plot_bottom + 14.0;

    let end_s = end as f64 / 1e9;
    let step = tick_step(end_s);
    let mut ticks = Vec::new();
    let wall0_ms = epoch_ms(&s.started_at);
    let decimals = usize::from(step < 1.0);
    let mut k = 0u64;
    loop {
        let t = k as f64 * step;
        if t > end_s + 1e-9 {
            break;
        }
        let label = format!("{t:.decimals$} s");
        ticks.push(Tick {
            x: scale.x((t * 1e9).round() as u64),
            wall: wall0_ms.map_or_else(|| label.clone(), |w| wall_label(w, t, decimals)),
            label,
        });
        k += 1;
    }

    let incidents = &input.summary.incidents;
    let focus = incidents
        .iter()
        .map(|i| i.first_ns)
        .min()
        .zip(incidents.iter().map(|i| i.last_ns).max())
        .map(|(first, last)| {
            let a = (first as f64 / 1e9 - 1.0).max(0.0);
            let b = (last as f64 / 1e9 + 1.0).min(end_s);
            (r2(a), r2(b))
        })
        .filter(|(a, b)| b - a < 0.7 * end_s);

    Chart {
        width: WIDTH,
        height: r2(ticks_bottom_y + 8.0),
        focus,
        x0: X0,
        x1: X1,
        end_s: r2(end_s),
        wall0_ms,
        plot_top: r2(plot_top),
        plot_bottom,
        ticks_top_y: r2(ticks_top_y),
        ticks_bottom_y: r2(ticks_bottom_y),
        ticks,
        bands,
        marks,
        labels,
        requests,
        latency,
        versions,
        pods,
        endpoints,
        failures,
    }
}

/// `translate(x0, bottom) scale(sx, -sy)`: (bucket index, value up) units.
fn unit_transform(bottom: f64, sx: f64, sy: f64) -> String {
    format!("translate({X0},{}) scale({},{})", r2(bottom), sx, -sy)
}

/// y ticks at 0, half and the top of a count scale.
fn count_ticks(y: f64, h: f64, max: f64) -> Vec<YTick> {
    [0.0, 0.5, 1.0]
        .into_iter()
        .map(|f| YTick {
            y: r2(y + h - f * h),
            label: format!("{}", (max * f * 10.0).round() / 10.0),
        })
        .collect()
}

/// Appends one bar `[base, base + h]` at bucket `i`, in units.
fn bar(d: &mut String, i: u64, base: f64, h: f64) {
    let _ = write!(d, "M{i} {}v{}h1v{}z", r2(base), r2(h), r2(-h));
}

fn requests_panel(input: &HtmlInput<'_>, scale: Scale, y: f64) -> BarPanel {
    let buckets = input.buckets;
    let outcomes = failing_outcomes(buckets);
    let h = REQUESTS_H;
    // First pass: the scale, with the minimum height of failed segments.
    let raw_max = buckets.iter().map(|b| b.sent).max().unwrap_or(0) as f64;
    let mut ymax = nice_ceil(raw_max);
    let min_units = |ymax: f64| MIN_FAILED_PX / h * ymax;
    let stacked_max = buckets
        .iter()
        .map(|b| {
            b.ok as f64
                + b.failed
                    .values()
                    .map(|&n| (n as f64).max(min_units(ymax)))
                    .sum::<f64>()
        })
        .fold(0.0, f64::max);
    if stacked_max > ymax {
        ymax = nice_ceil(stacked_max);
    }
    let min_h = min_units(ymax);
    let mut ok = String::new();
    let mut failed: BTreeMap<Outcome, String> = BTreeMap::new();
    for b in buckets {
        let i = b.start_ns / BUCKET_NS;
        let mut base = 0.0;
        if b.ok > 0 {
            bar(&mut ok, i, 0.0, b.ok as f64);
            base = b.ok as f64;
        }
        for o in &outcomes {
            if let Some(&n) = b.failed.get(o)
                && n > 0
            {
                let hh = (n as f64).max(min_h);
                bar(failed.entry(*o).or_default(), i, base, hh);
                base += hh;
            }
        }
    }
    let mut series = vec![Series {
        cls: "o-ok".into(),
        fill: String::new(),
        d: ok,
    }];
    for o in &outcomes {
        series.push(Series {
            cls: format!("o-{}", o.as_str()),
            fill: String::new(),
            d: failed.remove(o).unwrap_or_default(),
        });
    }
    let overlay = input.summary.longest_disruption.map(|d| {
        let x = scale.x_ms(d.from_ms);
        let w = (scale.x_ms(d.to_ms) - x).max(2.0);
        Rect {
            x,
            y,
            w: r2(w),
            h,
            title: format!(
                "longest disruption: {:.0} ms with no successful response, from {} s to {} s",
                d.len_ms,
                ms_to_s(d.from_ms),
                ms_to_s(d.to_ms)
            ),
        }
    });
    BarPanel {
        title: "requests / 100 ms",
        empty_text: "no requests",
        y: r2(y),
        h,
        transform: unit_transform(y + h, r2_fine(scale.px_per_bucket()), r2_fine(h / ymax)),
        series,
        yticks: count_ticks(y, h, ymax),
        empty: buckets.is_empty(),
        overlay,
        bands: Vec::new(),
    }
}

/// Round a scale factor to 6 significant-enough decimals.
fn r2_fine(v: f64) -> f64 {
    (v * 1e6).round() / 1e6
}

fn latency_panel(buckets: &[Bucket], scale: Scale, y: f64) -> LinePanel {
    let h = LATENCY_H;
    let values = buckets
        .iter()
        .flat_map(|b| [b.p50_ms, b.p99_ms])
        .flatten()
        .filter(|v| *v > 0.0);
    let (lo, hi) = values.fold((f64::INFINITY, 0.0f64), |(lo, hi), v| {
        (lo.min(v), hi.max(v))
    });
    let empty = hi <= 0.0;
    let lo_dec = if empty {
        0.0
    } else {
        lo.log10().floor().max(-3.0)
    };
    let mut hi_dec = if empty { 1.0 } else { hi.log10().ceil() };
    if hi_dec <= lo_dec {
        hi_dec = lo_dec + 1.0;
    }
    let line = |get: fn(&Bucket) -> Option<f64>| {
        let mut d = String::new();
        let mut prev: Option<u64> = None;
        for b in buckets {
            let i = b.start_ns / BUCKET_NS;
            let Some(v) = get(b).filter(|v| *v > 0.0) else {
                prev = None;
                continue;
            };
            let ly = (v.log10() - lo_dec).max(0.0);
            let cmd = if prev == Some(i.wrapping_sub(1)) {
                'L'
            } else {
                'M'
            };
            let _ = write!(d, "{cmd}{}.5 {}", i, (ly * 1000.0).round() / 1000.0);
            prev = Some(i);
        }
        d
    };
    let p50 = line(|b| b.p50_ms);
    let p99 = line(|b| b.p99_ms);
    let decades = hi_dec - lo_dec;
    let yticks = (0..=decades as i64)
        .map(|k| {
            let dec = lo_dec + k as f64;
            YTick {
                y: r2(y + h - k as f64 / decades * h),
                label: ms_label(10f64.powf(dec)),
            }
        })
        .collect();
    LinePanel {
        title: "latency p50 / p99 (log)",
        empty_text: "no complete responses",
        y: r2(y),
        h,
        transform: unit_transform(y + h, r2_fine(scale.px_per_bucket()), r2_fine(h / decades)),
        p50,
        p99,
        yticks,
        empty,
    }
}

/// `0.1 ms`, `10 ms`, `1 s`, `10 s`.
pub(super) fn ms_label(ms: f64) -> String {
    if ms >= 1000.0 {
        format!("{} s", ms / 1000.0)
    } else if ms >= 1.0 {
        format!("{ms:.0} ms")
    } else {
        format!("{ms} ms")
    }
}

/// Answers per version, stacked; a version a `version_share` threshold
/// judges is stacked first, so its bars' tops are its share, and the
/// threshold's band (share ± tolerance of each bucket's answers, over its
/// window) shows whether they stayed in it.
fn versions_panel(
    buckets: &[Bucket],
    shares: &[crate::verdict::share::ShareFigure],
    scale: Scale,
    y: f64,
) -> BarPanel {
    let h = VERSIONS_H;
    let order = versions_in_order(buckets);
    let ymax = nice_ceil(
        buckets
            .iter()
            .map(|b| b.versions.values().sum::<u64>())
            .max()
            .unwrap_or(0) as f64,
    );
    // Colours keep the order versions first answered in; the stack puts
    // judged versions at the bottom.
    let mut stack: Vec<usize> = (0..order.len()).collect();
    stack.sort_by_key(|&k| !shares.iter().any(|s| s.version == order[k]));
    let mut paths: Vec<String> = vec![String::new(); order.len()];
    for b in buckets {
        let i = b.start_ns / BUCKET_NS;
        let mut base = 0.0;
        for &k in &stack {
            if let Some(&n) = b.versions.get(order[k])
                && n > 0
            {
                bar(&mut paths[k], i, base, n as f64);
                base += n as f64;
            }
        }
    }
    let bands = shares
        .iter()
        .filter_map(|s| {
            let from = (s.from_ms? * 1e6) as u64;
            let to = s.to_ms.map(|t| (t * 1e6) as u64);
            // One band over the window at the window's mean answers per
            // bucket: the threshold judges the window, not each bucket.
            let inside: Vec<&Bucket> = buckets
                .iter()
                .filter(|b| b.start_ns >= from && to.is_none_or(|t| b.start_ns + BUCKET_NS <= t))
                .collect();
            let (first, last) = (inside.first()?, inside.last()?);
            let mean = inside
                .iter()
                .map(|b| b.versions.values().sum::<u64>())
                .sum::<u64>() as f64
                / inside.len() as f64;
            let (i0, i1) = (first.start_ns / BUCKET_NS, last.start_ns / BUCKET_NS + 1);
            let lo = (s.share - s.tolerance).max(0.0) * mean;
            let hi = (s.share + s.tolerance).min(1.0) * mean;
            let mut d = format!("M{i0} {}H{i1}V{}H{i0}z", r2(lo), r2(hi));
            if let Some(m) = s.measured {
                d.push_str(&format!("M{i0} {}H{i1}", r2(m * mean)));
            }
            let pct = |f: f64| crate::verdict::share::Fraction(f).to_string();
            Some(TargetBand {
                d,
                title: format!(
                    "step {}: {} should answer {} ± {} here; it answered {} of {} ({})",
                    s.step,
                    s.version,
                    pct(s.share),
                    pct(s.tolerance),
                    s.measured.map_or("none".to_string(), pct),
                    s.answers,
                    if s.pass { "within" } else { "outside the band" }
                ),
            })
        })
        .collect();
    BarPanel {
        title: "responses per version",
        empty_text: "no version read from the responses (see target.version_from)",
        y: r2(y),
        h,
        transform: unit_transform(y + h, r2_fine(scale.px_per_bucket()), r2_fine(h / ymax)),
        series: paths
            .into_iter()
            .enumerate()
            .map(|(k, d)| Series {
                cls: "version".into(),
                fill: version_colour(k).to_string(),
                d,
            })
            .collect(),
        yticks: count_ticks(y, h, ymax),
        empty: order.is_empty(),
        overlay: None,
        bands,
    }
}

/// Pods in the order they appeared, then by name.
fn pods_in_order(timeline: &Timeline) -> Vec<&str> {
    let mut v: Vec<(u64, &str)> = timeline
        .pod_names()
        .map(|n| (timeline.pod_history(n).next().map_or(0, |(ns, _)| ns), n))
        .collect();
    v.sort();
    v.into_iter().map(|(_, n)| n).collect()
}

fn lane_y(y: f64, k: usize) -> f64 {
    r2(y + k as f64 * LANE_PITCH + (LANE_PITCH - LANE_H) / 2.0)
}

fn lanes_height(n: usize) -> f64 {
    n.max(1) as f64 * LANE_PITCH
}

/// Describes a Pod state for a segment's title.
fn pod_state_words(p: &PodState) -> String {
    let mut s = p.lifecycle.as_str().to_string();
    if let Some(w) = &p.waiting_reason {
        let _ = write!(s, ", waiting: {w}");
    }
    if p.lifecycle == Lifecycle::Terminating
        && let Some(g) = p.deletion.as_ref().and_then(|d| d.grace_period_s)
    {
        let _ = write!(s, " (grace {g} s)");
    }
    if p.restart_count > 0 {
        let _ = write!(s, ", {} restart(s)", p.restart_count);
    }
    s
}

/// Merges consecutive states with the same key into segments
/// `(from, to, state)`, the last one running to `end`.
fn segments<'a, S, K: PartialEq>(
    history: impl Iterator<Item = (u64, &'a S)>,
    key: impl Fn(&S) -> K,
    end: u64,
) -> Vec<(u64, u64, &'a S)>
where
    S: 'a,
{
    let mut out: Vec<(u64, u64, &'a S)> = Vec::new();
    let mut cur: Option<(u64, &'a S, K)> = None;
    for (ns, s) in history {
        let k = key(s);
        match &cur {
            Some((_, _, ck)) if *ck == k => {}
            _ => {
                if let Some((from, st, _)) = cur.take() {
                    out.push((from, ns, st));
                }
                cur = Some((ns, s, k));
            }
        }
    }
    if let Some((from, st, _)) = cur {
        out.push((from, end.max(from), st));
    }
    out
}

/// A lane's label, version tag and the tag's colour: the Pod's name cut
/// to its unique end, shorter when a tag stands beside it.
fn lane_label(
    timeline: &Timeline,
    pod: &str,
    versions: &[&str],
) -> (String, String, Option<&'static str>) {
    match timeline.pod_image(pod) {
        Some(image) => (
            keep_end(pod, LABEL_CHARS_TAGGED),
            keep_start(image_tag(image), TAG_CHARS),
            pod_version_colour(image, versions),
        ),
        None => (keep_end(pod, LABEL_CHARS), String::new(), None),
    }
}

fn pods_panel(timeline: &Timeline, versions: &[&str], scale: Scale, end: u64, y: f64) -> LanePanel {
    let pods = pods_in_order(timeline);
    let lanes = pods
        .iter()
        .enumerate()
        .map(|(k, &pod)| {
            let ly = lane_y(y, k);
            let segs = segments(
                timeline.pod_history(pod),
                |p: &PodState| (p.lifecycle, p.waiting_reason.clone()),
                end,
            )
            .into_iter()
            .map(|(from, to, p)| {
                let x = scale.x(from);
                let w = r2((scale.x(to) - x).max(0.0));
                let gone = p.lifecycle == Lifecycle::Gone;
                let mut cls = format!("l-{}", p.lifecycle.as_str());
                // Waiting matters while the Pod should be coming up.
                if p.waiting_reason.is_some()
                    && matches!(p.lifecycle, Lifecycle::Pending | Lifecycle::Running)
                {
                    cls.push_str(" waiting");
                }
                Seg {
                    x,
                    y: if gone {
                        r2(ly + LANE_H / 2.0 - 1.0)
                    } else {
                        ly
                    },
                    w,
                    h: if gone { 2.0 } else { LANE_H },
                    cls,
                    title: format!(
                        "{pod}: {} from {} s to {} s",
                        pod_state_words(p),
                        secs(from),
                        secs(to)
                    ),
                }
            })
            .collect();
            let marks = timeline
                .pod_events(pod)
                .filter_map(|e| {
                    let x = scale.x(e.observed_ns);
                    let why = match (e.reason.as_str(), e.exit_code) {
                        ("", None) => String::new(),
                        (r, None) => format!(": {r}"),
                        ("", Some(c)) => format!(": exit code {c}"),
                        (r, Some(c)) => format!(": {r}, exit code {c}"),
                    };
                    match e.kind {
                        EventKind::ContainerRestarted => Some(Mark {
                            x,
                            y1: r2(ly - 2.0),
                            y2: r2(ly + LANE_H + 2.0),
                            cls: "restart",
                            title: format!(
                                "{pod}: container restarted (count {}) at {} s{why}",
                                e.new,
                                secs(e.observed_ns)
                            ),
                        }),
                        EventKind::ContainerTerminated => Some(Mark {
                            x,
                            y1: r2(ly - 1.0),
                            y2: r2(ly + LANE_H + 1.0),
                            cls: "exit",
                            title: format!(
                                "{pod}: container exited at {} s{why}",
                                secs(e.observed_ns)
                            ),
                        }),
                        _ => None,
                    }
                })
                .chain(eviction_marks(timeline, pod, scale, ly))
                .collect();
            let (label, tag, tag_fill) = lane_label(timeline, pod, versions);
            Lane {
                y: ly,
                label,
                title: match timeline.pod_image(pod) {
                    Some(image) => format!("{pod} ({image})"),
                    None => pod.to_string(),
                },
                tag,
                tag_fill,
                segs,
                marks,
            }
        })
        .collect::<Vec<_>>();
    LanePanel {
        title: "pods",
        empty_text: "no pod events seen",
        y: r2(y),
        h: lanes_height(lanes.len()),
        empty: lanes.is_empty(),
        lanes,
    }
}

/// A drain's evictions of `pod`, accepted and refused, as marks above its
/// lane (they are not Pod events: the drain step records them).
fn eviction_marks<'a>(
    timeline: &'a Timeline,
    pod: &'a str,
    scale: Scale,
    ly: f64,
) -> impl Iterator<Item = Mark> + 'a {
    timeline
        .events()
        .iter()
        .filter(move |e| e.pod == pod)
        .filter_map(move |e| {
            let (cls, what) = match e.kind {
                EventKind::PodEvicted => ("evicted", "evicted"),
                EventKind::EvictionRefused => ("evict-refused", "eviction refused"),
                _ => return None,
            };
            Some(Mark {
                x: scale.x(e.observed_ns),
                y1: r2(ly - 4.0),
                y2: r2(ly + LANE_H / 2.0),
                cls,
                title: format!(
                    "{pod}: {what} at {} s ({})",
                    secs(e.observed_ns),
                    if e.detail.is_empty() {
                        &e.reason
                    } else {
                        &e.detail
                    }
                ),
            })
        })
}

/// An endpoint's drawn state: class and words; `None` when not listed.
fn endpoint_class(e: &EndpointState) -> Option<(&'static str, &'static str)> {
    if !e.listed {
        None
    } else if e.ready {
        Some(("e-ready", "ready"))
    } else if e.serving && e.terminating {
        Some(("e-serving", "serving, terminating"))
    } else if e.terminating {
        Some(("e-terminating", "terminating, not serving"))
    } else {
        Some(("e-notready", "not ready"))
    }
}

/// The endpoint lanes. `allowance_ns`: the propagation allowance the
/// attribution used; after every stretch an endpoint was ready, a hatched
/// band that long shows where a lagging proxy may still route to it (the
/// diagnosis of endpoint lag, drawn: failures inside it are the lag).
fn endpoints_panel(
    timeline: &Timeline,
    versions: &[&str],
    scale: Scale,
    end: u64,
    y: f64,
    allowance_ns: Option<u64>,
) -> LanePanel {
    let mut lanes = Vec::new();
    for pod in pods_in_order(timeline) {
        // One lane per endpoint entry (address and slice) of the Pod.
        let mut per_entry: BTreeMap<(&str, &str), Vec<(u64, &EndpointState)>> = BTreeMap::new();
        for (ns, e) in timeline.endpoint_history(pod) {
            per_entry
                .entry((e.address.as_str(), e.slice.as_str()))
                .or_default()
                .push((ns, e));
        }
        for ((address, slice), history) in per_entry {
            let ly = lane_y(y, lanes.len());
            let states = segments(history.into_iter(), endpoint_class, end);
            let bands: Vec<Seg> = allowance_ns
                .into_iter()
                .flat_map(|allow| {
                    states
                        .iter()
                        .filter(move |(_, to, e)| e.ready && *to < end)
                        .map(move |(_, to, _)| {
                            let x = scale.x(*to);
                            let until = (*to + allow).min(end);
                            Seg {
                                x,
                                y: ly,
                                w: r2((scale.x(until) - x).max(0.0)),
                                h: LANE_H,
                                cls: "e-lag".to_string(),
                                title: format!(
                                    "{pod} {address}: no longer ready from {} s; a lagging proxy may still route here until {} s (the {} ms propagation allowance)",
                                    secs(*to),
                                    secs(until),
                                    allow / 1_000_000
                                ),
                            }
                        })
                })
                .collect();
            let segs = states
                .into_iter()
                .filter_map(|(from, to, e)| {
                    let (cls, words) = endpoint_class(e)?;
                    let x = scale.x(from);
                    Some(Seg {
                        x,
                        y: ly,
                        w: r2((scale.x(to) - x).max(0.0)),
                        h: LANE_H,
                        cls: cls.to_string(),
                        title: format!(
                            "{pod} {address}: {words} from {} s to {} s",
                            secs(from),
                            secs(to)
                        ),
                    })
                })
                .chain(bands)
                .collect();
            let (label, tag, tag_fill) = lane_label(timeline, pod, versions);
            lanes.push(Lane {
                y: ly,
                label,
                tag,
                tag_fill,
                title: format!("{pod} at {address} ({slice})"),
                segs,
                marks: Vec::new(),
            });
        }
    }
    LanePanel {
        title: "endpoints",
        empty_text: "no endpoint events seen",
        y: r2(y),
        h: lanes_height(lanes.len()),
        empty: lanes.is_empty(),
        lanes,
    }
}

fn failures_panel(
    failures: &[FailedRequest],
    attributions: &[Attribution],
    shown: &[usize],
    has_row: &[bool],
    scale: Scale,
    y: f64,
) -> MarkerPanel {
    // A row per cause that occurs, in the order causes are shown.
    let causes: Vec<Cause> = Cause::ALL
        .into_iter()
        .filter(|c| attributions.iter().any(|a| a.cause == *c))
        .collect();
    let row_y = |c: Cause| {
        let k = causes.iter().position(|x| *x == c).unwrap_or(0);
        y + k as f64 * MARKER_ROW + 2.0
    };
    let markers = shown
        .iter()
        .map(|&i| {
            let (f, a) = (&failures[i], &attributions[i]);
            let mut title = format!(
                "{} s #{} {}{}\n{}, {} confidence, incident {}",
                secs(f.start_ns),
                f.seq,
                outcome_text(f),
                f.status.map(|s| format!(" {s}")).unwrap_or_default(),
                a.cause.as_str(),
                a.confidence.as_str(),
                a.incident
            );
            if !a.candidates.is_empty() {
                let _ = write!(title, "\npods: {}", candidates_text(a));
            }
            if !a.evidence.is_empty() {
                let _ = write!(title, "\n{}", a.evidence);
            }
            Marker {
                x: scale.x(f.start_ns),
                y: r2(row_y(a.cause)),
                cls: format!("o-{}", f.outcome.as_str()),
                href: if has_row[i] {
                    format!("#f-{}", f.seq)
                } else {
                    String::new()
                },
                title,
            }
        })
        .collect();
    MarkerPanel {
        title: "failures (by cause)",
        empty_text: "no failed requests",
        y: r2(y),
        h: causes.len().max(1) as f64 * MARKER_ROW,
        rows: causes
            .iter()
            .map(|c| YTick {
                y: r2(row_y(*c) + 8.0),
                label: c.as_str().to_string(),
            })
            .collect(),
        markers,
        empty: failures.is_empty(),
    }
}
