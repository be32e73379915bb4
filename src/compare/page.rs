//! `compare.html`: runs side by side as a page in the style of
//! `report.html`. On top, for a matrix, the variant chosen and why (zero
//! failures, rollout completed, lowest cost) and what its cost means;
//! then every run's requests over time on one shared axis, so a reader
//! sees which run dropped requests and when; then the table of settings
//! and measures, each run's column headed by its verdict and a link to
//! its own `report.html`.
//!
//! Self-contained (inline CSS and SVG; no URL but the relative links to
//! the reports; a Content-Security-Policy that blocks any fetch, as
//! `report.html` declares, and a few lines of inline script that count
//! blocked fetches and script errors for the browser test) and rendered by the template engine that renders
//! `report.html`, with HTML auto-escaping on: every run label, setting
//! and note is escaped wherever it lands. [`build`] turns the comparison
//! into plain strings and numbers; the template only places them.
//!
//! Not for: reading run directories (`read`), the table's content
//! (`build_table`, `matrix::comparison`), or text and Markdown (`render`).

use super::link::Link;
use super::sparkline::{self, Activity, Axis, Sparkline, Tick};
use super::{Measured, RowKind, RunColumn, Table};
use crate::matrix::{Basis, Choice, CostPart};
use crate::verdict::Verdict;
use serde::Serialize;
use std::fmt::Write as _;

const TEMPLATE_NAME: &str = "compare.html.j2";
const TEMPLATE: &str = include_str!("compare.html.j2");

/// What the page shows of a run beyond its column, read from its
/// directory (`read::files`).
#[derive(Clone, Debug, PartialEq)]
pub struct RunFiles {
    /// The link to its `report.html`, or why there is none.
    pub report: Link,
    /// Its requests over time, or why they cannot be drawn.
    pub activity: Result<Activity, String>,
}

/// Everything the page shows.
pub struct Page<'a> {
    /// `baton compare`, `baton matrix: web`.
    pub title: &'a str,
    pub runs: &'a [RunColumn],
    /// One per run, in the same order.
    pub files: &'a [RunFiles],
    pub table: &'a Table,
    /// A matrix's choice and costs; `None` for runs compared as they are.
    pub matrix: Option<&'a Choice>,
}

/// Render the page. Deterministic: the same input gives the same bytes.
pub fn render(page: &Page<'_>) -> Result<String, minijinja::Error> {
    let view = build(page);
    let mut env = crate::report::html::environment();
    env.add_template(TEMPLATE_NAME, TEMPLATE)?;
    env.get_template(TEMPLATE_NAME)?.render(&view)
}

#[derive(Debug, Serialize)]
struct View {
    title: String,
    /// The line under the title.
    lead: String,
    /// A matrix: `CHOSEN` (pass) or `NONE` (fail) beside the title.
    badge: Option<Badge>,
    /// Why that variant was chosen, or why none was.
    why: Option<String>,
    cost: Option<CostMeaning>,
    meta: Vec<Meta>,
    columns: Vec<ColumnView>,
    timeline: Option<TimelineView>,
    rows: Vec<RowView>,
    notes: Vec<String>,
}

#[derive(Debug, Serialize)]
struct Badge {
    word: &'static str,
    class: &'static str,
}

#[derive(Debug, Serialize)]
struct Meta {
    label: &'static str,
    value: String,
}

/// What a matrix's cost number is.
#[derive(Debug, Serialize)]
struct CostMeaning {
    sentence: String,
    /// Per varied path: `rollout.preStop`: `0s → 0.00`, `3s → 1.00`.
    scales: Vec<ScaleView>,
}

#[derive(Debug, Serialize)]
struct ScaleView {
    path: String,
    how: String,
    values: Vec<String>,
}

#[derive(Debug, Serialize)]
struct ColumnView {
    label: String,
    href: Option<String>,
    no_link: Option<String>,
    verdict: String,
    verdict_class: &'static str,
    chosen: bool,
    /// A matrix variant not chosen: why.
    not_chosen: Option<String>,
    spark: Option<Sparkline>,
    no_spark: Option<String>,
    /// `201 of 1,820 failed`, `none of 1,816 failed`, `no result`.
    failed_text: String,
    failed: bool,
}

#[derive(Debug, Serialize)]
struct TimelineView {
    /// The drawing box of every timeline: `1000`, `40`.
    width: String,
    height: String,
    ticks: Vec<TickView>,
    /// `100 ms`.
    bar: String,
    peak: u64,
    any_host_errors: bool,
    any_steps: bool,
}

#[derive(Debug, Serialize)]
struct TickView {
    /// From the left, in percent of the width: `16.67`.
    left: String,
    label: String,
}

#[derive(Debug, Serialize)]
struct RowView {
    class: &'static str,
    label: String,
    /// The row label links to the cost's meaning.
    explained: bool,
    cells: Vec<CellView>,
}

#[derive(Debug, Serialize)]
struct CellView {
    text: String,
    /// Lines under the text (a cost's parts).
    detail: Vec<String>,
    /// For the verdict row: the badge's class.
    verdict_class: Option<&'static str>,
}

fn build(p: &Page<'_>) -> View {
    let runs = p.runs;
    let best = p.matrix.and_then(|m| m.best);
    let activities: Vec<&Activity> = p
        .files
        .iter()
        .filter_map(|f| f.activity.as_ref().ok())
        .collect();
    let axis = Axis::shared(&activities);
    let columns: Vec<ColumnView> = runs
        .iter()
        .enumerate()
        .map(|(i, r)| column(r, p.files.get(i), axis.as_ref(), p.matrix, i, runs))
        .collect();
    let timeline = axis.map(|a| TimelineView {
        width: format!("{:.0}", sparkline::WIDTH),
        height: format!("{:.0}", sparkline::HEIGHT),
        bar: format!("{} ms", a.bar_ms),
        peak: a.peak,
        ticks: a.ticks.iter().map(tick).collect(),
        any_host_errors: activities.iter().any(|a| a.bars.iter().any(|b| b.host > 0)),
        any_steps: activities.iter().any(|a| !a.steps.is_empty()),
    });
    let rows = p
        .table
        .rows
        .iter()
        .map(|r| row(r, runs, p.matrix))
        .collect();
    let (badge, lead, why) = match p.matrix {
        Some(m) => {
            let (badge, lead) = match best.and_then(|b| runs.get(b)) {
                Some(r) => (
                    Badge {
                        word: "CHOSEN",
                        class: "pass",
                    },
                    format!("{}: the cheapest variant with zero failures", r.label),
                ),
                None => (
                    Badge {
                        word: "NONE",
                        class: "fail",
                    },
                    "No variant had zero failures".to_string(),
                ),
            };
            (Some(badge), lead, Some(why_chosen(runs, m)))
        }
        None => (
            None,
            format!(
                "{} run{} side by side",
                runs.len(),
                if runs.len() == 1 { "" } else { "s" }
            ),
            None,
        ),
    };
    let mut meta = vec![Meta {
        label: if p.matrix.is_some() {
            "variants"
        } else {
            "runs"
        },
        value: runs.len().to_string(),
    }];
    if let Some(m) = p.matrix {
        for s in &m.scales {
            meta.push(Meta {
                label: "varied",
                value: format!(
                    "{} ({})",
                    s.path,
                    s.values
                        .iter()
                        .map(|(v, _)| v.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            });
        }
    }
    View {
        title: p.title.to_string(),
        lead,
        badge,
        why,
        cost: p.matrix.map(cost_meaning),
        meta,
        columns,
        timeline,
        rows,
        notes: p.table.notes.clone(),
    }
}

fn tick(t: &Tick) -> TickView {
    TickView {
        left: format!("{:.2}", t.pct),
        label: t.label.clone(),
    }
}

fn column(
    r: &RunColumn,
    files: Option<&RunFiles>,
    axis: Option<&Axis>,
    matrix: Option<&Choice>,
    i: usize,
    runs: &[RunColumn],
) -> ColumnView {
    let (href, no_link) = match files.map(|f| &f.report) {
        Some(Link::Href(h)) => (Some(h.clone()), None),
        Some(Link::Missing(why)) => (None, Some(why.clone())),
        None => (None, Some("its directory was not read".into())),
    };
    let (spark, no_spark) = match (files.map(|f| &f.activity), axis) {
        (Some(Ok(a)), Some(axis)) if !a.bars.is_empty() => (Some(sparkline::draw(a, axis)), None),
        (Some(Ok(_)), _) => (None, Some("no request recorded".into())),
        (Some(Err(why)), _) => (None, Some(why.clone())),
        (None, _) => (None, Some("its directory was not read".into())),
    };
    let (failed_text, failed) = match &r.measured {
        Some(m) if m.failed == 0 => (format!("none of {} failed", thousands(m.sent)), false),
        Some(m) => (
            format!("{} of {} failed", thousands(m.failed), thousands(m.sent)),
            true,
        ),
        None => ("no result".into(), false),
    };
    let chosen = matrix.and_then(|m| m.best) == Some(i);
    ColumnView {
        label: r.label.clone(),
        href,
        no_link,
        verdict: r
            .measured
            .as_ref()
            .map_or_else(|| "NO RESULT".into(), Measured::verdict_word),
        verdict_class: verdict_class(r.measured.as_ref()),
        chosen,
        not_chosen: match matrix {
            Some(m) if !chosen => Some(not_chosen(r, i, runs, m)),
            _ => None,
        },
        spark,
        no_spark,
        failed_text,
        failed,
    }
}

/// The badge classes of `style.css` (`none` is the page's own).
fn verdict_class(m: Option<&Measured>) -> &'static str {
    match m {
        None => "none",
        Some(m) if m.interrupted => "interrupted",
        Some(m) => match m.verdict {
            Verdict::Pass => "pass",
            Verdict::Fail => "fail",
            Verdict::Invalid => "invalid",
            Verdict::Interrupted => "interrupted",
        },
    }
}

fn row(r: &super::Row, runs: &[RunColumn], matrix: Option<&Choice>) -> RowView {
    // Not `verdict`: that is the badge's class in `style.css`.
    let class = match r.kind {
        RowKind::Variant => "r-variant",
        RowKind::Setting => "r-setting",
        RowKind::Verdict => "r-verdict",
        RowKind::Measure => "r-measure",
        RowKind::Cost => "r-cost",
    };
    let cells = r
        .cells
        .iter()
        .enumerate()
        .map(|(i, text)| CellView {
            text: text.clone(),
            detail: match (r.kind, matrix.and_then(|m| m.costs.get(i))) {
                (RowKind::Cost, Some(c)) => c.parts.iter().map(part_words).collect(),
                _ => Vec::new(),
            },
            verdict_class: (r.kind == RowKind::Verdict)
                .then(|| verdict_class(runs.get(i).and_then(|c| c.measured.as_ref()))),
        })
        .collect();
    RowView {
        class,
        label: r.label.clone(),
        explained: r.kind == RowKind::Cost && matrix.is_some(),
        cells,
    }
}

/// One path's part of a cost, in words: `rollout.preStop 3s: 100% of the
/// largest value tried (3s)`.
fn part_words(p: &CostPart) -> String {
    match &p.basis {
        Basis::Share { largest } if p.value == *largest && p.cost > 0.0 => {
            format!("{} {}: the largest value tried", p.path, p.value)
        }
        Basis::Share { largest } => format!(
            "{} {}: {:.0}% of the largest value tried ({largest})",
            p.path,
            p.value,
            p.cost * 100.0
        ),
        Basis::Order => format!(
            "{} {}: listed {} of {} (not numbers: costed by order)",
            p.path,
            p.value,
            ordinal(p.position + 1),
            p.of
        ),
    }
}

/// What the cost number is, and each varied path's scale.
fn cost_meaning(m: &Choice) -> CostMeaning {
    let n = m.scales.len();
    let by_order = m.scales.iter().any(|s| s.basis == Basis::Order);
    let mut sentence = format!(
        "Cost is not money or time: baton ranks variants by how much of each varied setting they use. \
         For each varied setting, a variant's value costs its share of the largest value tried for it \
         (the largest costs 1, none costs 0); a variant's cost is the sum over the {n} varied setting{}, \
         so it runs from 0 to {n}. Smaller is cheaper: a shorter preStop or grace period makes every \
         rollout quicker, a smaller surge needs less spare capacity.",
        if n == 1 { "" } else { "s" }
    );
    if by_order {
        sentence.push_str(
            " A setting whose values are not all numbers costs by its place in the list given: \
             0 for the first, 1 for the last.",
        );
    }
    CostMeaning {
        sentence,
        scales: m
            .scales
            .iter()
            .map(|s| ScaleView {
                path: s.path.clone(),
                how: match &s.basis {
                    Basis::Share { largest } => format!("share of {largest}"),
                    Basis::Order => "place in the list".into(),
                },
                values: s
                    .values
                    .iter()
                    .map(|(v, c)| format!("{v} → {c:.2}"))
                    .collect(),
            })
            .collect(),
    }
}

/// The sentence under the title of a matrix's page.
fn why_chosen(runs: &[RunColumn], m: &Choice) -> String {
    let zero: Vec<usize> = (0..runs.len())
        .filter(|&i| {
            runs[i]
                .measured
                .as_ref()
                .is_some_and(Measured::zero_failures)
        })
        .collect();
    let total = |i: usize| m.costs.get(i).map_or(0.0, |c| c.total);
    let Some((b, run)) = m.best.and_then(|b| runs.get(b).map(|r| (b, r))) else {
        return format!(
            "None of the {} variant{} had zero failures (a valid, uninterrupted run whose rollout \
             completed with no request failed), so none is chosen; each column says what kept it out.",
            runs.len(),
            if runs.len() == 1 { "" } else { "s" }
        );
    };
    let sent = run.measured.as_ref().map_or(0, |x| x.sent);
    let cheapest = if zero.len() == 1 {
        "it is the only variant that did all three, so the cheapest that did".to_string()
    } else {
        format!(
            "of the {} variants that did all three it has the lowest cost",
            zero.len()
        )
    };
    let mut s = format!(
        "{}{} is chosen: no request failed (0 of {}), its rollout completed and the run was \
         valid, and {cheapest} (cost {:.2}, see below for what that means)",
        run.label,
        describe(run),
        thousands(sent),
        total(b)
    );
    let ties: Vec<&str> = zero
        .iter()
        .filter(|&&i| i != b && total(i) == total(b))
        .map(|&i| runs[i].label.as_str())
        .collect();
    if !ties.is_empty() {
        let _ = write!(
            s,
            "; {} costs the same, and equal costs go to the values listed first",
            ties.join(", ")
        );
    }
    s.push('.');
    s
}

/// Why a variant was not chosen.
fn not_chosen(r: &RunColumn, i: usize, runs: &[RunColumn], m: &Choice) -> String {
    let Some(measured) = &r.measured else {
        return "no result".into();
    };
    if let Some(why) = measured.shortfall() {
        return why;
    }
    let total = |i: usize| m.costs.get(i).map_or(0.0, |c| c.total);
    match m.best.and_then(|b| runs.get(b).map(|best| (b, best))) {
        Some((b, best)) if total(i) > total(b) => format!(
            "zero failures, but it costs more ({:.2}, {} costs {:.2})",
            total(i),
            best.label,
            total(b)
        ),
        Some((_, best)) => format!(
            "zero failures at the same cost as {}, whose values are listed first",
            best.label
        ),
        None => "zero failures".into(),
    }
}

/// ` (rollout.preStop=3s)`, or nothing for a run that is no variant.
fn describe(r: &RunColumn) -> String {
    if r.variant.is_empty() {
        return String::new();
    }
    let set: Vec<String> = r.variant.iter().map(|(p, v)| format!("{p}={v}")).collect();
    format!(" ({})", set.join(", "))
}

/// `1st`, `2nd`, `3rd`, `4th`, ..., `11th`, `21st`.
fn ordinal(n: usize) -> String {
    let suffix = match (n % 10, n % 100) {
        (_, 11..=13) => "th",
        (1, _) => "st",
        (2, _) => "nd",
        (3, _) => "rd",
        _ => "th",
    };
    format!("{n}{suffix}")
}

/// `1816` as `1,816`.
fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests;
