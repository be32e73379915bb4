//! `report.html`: the one file a person opens when a CI gate fails. The
//! verdict and thresholds on top, then every series of the run on one
//! shared time axis (requests, latency, versions, a lane per Pod and per
//! endpoint, a marker per failure), then incidents and the failures.
//!
//! Self-contained: inline CSS, inline SVG, a few lines of inline script
//! for a crosshair; no URL of any kind, so it opens offline and from a CI
//! artifact store. Rendered by a template engine with HTML auto-escaping
//! on, so every string that came from the cluster or the target (Pod
//! names, event messages, versions, evidence) is escaped wherever it
//! lands, SVG text and attributes included. [`view`] and [`chart`] turn
//! the run into numbers and plain strings; the template only places them.
//!
//! The output is XHTML-clean polyglot markup (every element closed, no
//! named entities but XML's): it parses as HTML5 and as XML, which lets
//! the tests check it strictly.
//!
//! Not for: computing anything the other reports show (it renders the
//! same [`RunSummary`]), or reading a run directory back (`baton report`).

mod chart;
mod format;
mod palette;
mod tips;
mod view;

#[cfg(test)]
pub(crate) mod strict;
#[cfg(test)]
mod tests;

use crate::analyse::Bucket;
use crate::attribution::{Attribution, FailedRequest};
use crate::rundir::RunSummary;
use crate::timeline::Timeline;
use minijinja::{AutoEscape, Environment, UndefinedBehavior};

/// The file name of the report in a run directory.
pub const REPORT_HTML: &str = "report.html";

/// At most this many failures get a marker on the time axis (each with
/// its cause, candidates and evidence on hover). Beyond it the report
/// says how many it shows, taking failures in turn from every incident;
/// the bars of the requests panel, the incidents and `failures.csv` still
/// count every failure. About 450 bytes a marker.
pub const MAX_FAILURE_MARKERS: usize = 5_000;
/// At most this many failures get a row in the table below the chart
/// (chosen the same way, so each is also a marker). About 400 bytes a
/// row: with the markers and 6,000 buckets (a 10-minute run), a report
/// stays under 5 MB.
pub const MAX_FAILURE_ROWS: usize = 2_000;

const TEMPLATE_NAME: &str = "report.html.j2";
const TEMPLATE: &str = include_str!("report.html.j2");
/// The stylesheet every HTML page baton writes shares (`report.html`,
/// `compare.html`), inlined into each as the global `style`.
const STYLE: &str = include_str!("style.css");

/// Everything the report shows, as `baton run` (or `baton report`) has
/// it at the end.
pub struct HtmlInput<'a> {
    /// Verdict, reason, thresholds, incidents, rollout steps, counts.
    pub summary: &'a RunSummary,
    /// Per 100 ms: sent, ok, failed by outcome, p50/p99, versions.
    pub buckets: &'a [Bucket],
    /// Pods and endpoints over time.
    pub timeline: &'a Timeline,
    /// Every failed request, in `seq` order.
    pub failures: &'a [FailedRequest],
    /// One per failure, in the same order.
    pub attributions: &'a [Attribution],
}

#[derive(Debug, thiserror::Error)]
pub enum HtmlError {
    #[error(
        "cannot render report.html: {0:#} (a bug in baton: please report it; the CSV and JSON reports are unaffected)"
    )]
    Template(#[from] minijinja::Error),
    #[error(
        "cannot render report.html: {failures} failures but {attributions} attributions (a bug in baton: please report it)"
    )]
    Mismatch {
        failures: usize,
        attributions: usize,
    },
}

/// Render the report. Deterministic: the same input gives the same bytes.
pub fn render(input: &HtmlInput<'_>) -> Result<String, HtmlError> {
    if input.failures.len() != input.attributions.len() {
        return Err(HtmlError::Mismatch {
            failures: input.failures.len(),
            attributions: input.attributions.len(),
        });
    }
    let view = view::build(input, MAX_FAILURE_MARKERS, MAX_FAILURE_ROWS);
    let mut env = environment();
    env.add_template(TEMPLATE_NAME, TEMPLATE)?;
    let html = env.get_template(TEMPLATE_NAME)?.render(&view)?;
    Ok(html)
}

/// The template environment of every HTML page baton writes: HTML
/// escaping for every template whatever its name (minijinja would pick it
/// from a `.html` name; saying so keeps a renamed template from silently
/// losing it), an undefined variable is an error rather than an empty
/// string, and the shared stylesheet is the global `style`.
pub(crate) fn environment() -> Environment<'static> {
    let mut env = Environment::new();
    env.set_auto_escape_callback(|_| AutoEscape::Html);
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    env.set_trim_blocks(true);
    env.set_lstrip_blocks(true);
    env.add_global(
        "style",
        minijinja::Value::from_safe_string(STYLE.to_string()),
    );
    env
}
