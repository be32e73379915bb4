//! Side by side comparison of runs (`baton compare`, and the table
//! `baton matrix` ends with): what differed between the runs' settings,
//! and how each run went — verdict, failures per cause, failed/sent, the
//! longest disruption, latency.
//!
//! The table is pure: a run comes in as data already read
//! ([`RunColumn`]). [`read`] reads a run directory into one, through
//! `rundir`'s types, and what the HTML page adds beside it (the link to
//! its `report.html`, its requests over time); the text and Markdown
//! renderers are in [`render`], the HTML page in [`page`], with its
//! timelines drawn by [`sparkline`] and its links formed by [`link`].

pub mod link;
pub mod page;
pub mod read;
pub mod render;
pub mod sparkline;

use crate::rundir::RunSummary;
use crate::verdict::Verdict;
use serde_norway::Value;
use std::collections::{BTreeMap, HashSet};

/// Settings that are not settings: left out of the differences.
const NOT_SETTINGS: &[&str] = &["description"];

/// One run, as compared.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RunColumn {
    /// The column's heading: the run directory's name, or a matrix
    /// variant's slug.
    pub label: String,
    /// The resolved profile (`profile.resolved.yaml`) as a YAML tree.
    pub settings: Option<Value>,
    /// A matrix variant's settings, `path` → `value`, in `--vary` order
    /// (empty for a plain run).
    pub variant: Vec<(String, String)>,
    /// What the run measured; `None` when it produced no summary (a
    /// variant whose setup failed).
    pub measured: Option<Measured>,
    /// Why there is no measurement, shown in the verdict row.
    pub note: Option<String>,
}

/// The parts of a run's `summary.json` that a comparison shows.
#[derive(Clone, Debug, PartialEq)]
pub struct Measured {
    pub verdict: Verdict,
    pub interrupted: bool,
    pub sent: u64,
    pub failed: u64,
    /// Failed requests per cause.
    pub causes: BTreeMap<String, u64>,
    /// The longest stretch with no successful response; `None`: none.
    pub longest_disruption_ms: Option<f64>,
    /// Successful requests' latency from their actual start.
    pub latency_p50_ms: f64,
    pub latency_p99_ms: f64,
    pub rollout_completed: bool,
}

impl From<&RunSummary> for Measured {
    fn from(s: &RunSummary) -> Measured {
        Measured {
            verdict: s.verdict,
            interrupted: s.interrupted,
            sent: s.requests.sent,
            failed: s.requests.failed,
            causes: s.causes.clone(),
            longest_disruption_ms: s.longest_disruption.map(|d| d.len_ms),
            latency_p50_ms: s.latency_ms.p50,
            latency_p99_ms: s.latency_ms.p99,
            rollout_completed: s.rollout.completed,
        }
    }
}

impl Measured {
    /// A run that counts as "zero failures" for `baton matrix`: it was
    /// valid (not invalid, not interrupted), its rollout completed, and
    /// no request failed. A stalled rollout that failed nothing proves
    /// nothing about the setting.
    pub fn zero_failures(&self) -> bool {
        self.shortfall().is_none()
    }

    /// Why the run does not count as "zero failures", in words that
    /// follow "not chosen: " (`None`: it counts).
    pub fn shortfall(&self) -> Option<String> {
        if self.interrupted {
            Some("the run was interrupted".into())
        } else if self.verdict == Verdict::Invalid {
            Some("the run was invalid".into())
        } else if !self.rollout_completed {
            Some("its rollout did not complete".into())
        } else if self.failed > 0 {
            Some(format!("{} of {} requests failed", self.failed, self.sent))
        } else {
            None
        }
    }

    /// `PASS`, `FAIL`, `INVALID`, or `INTERRUPTED`.
    pub fn verdict_word(&self) -> String {
        if self.interrupted {
            "INTERRUPTED".into()
        } else {
            self.verdict.word().into()
        }
    }
}

/// A YAML tree as `dotted.path` → value, in the tree's own order; lists
/// are indexed by number, as `--set` writes them
/// (`rollout.steps.0.set_image.image`). Empty mappings and lists are
/// leaves (`{}`, `[]`).
pub fn flatten(tree: &Value) -> Vec<(String, String)> {
    let mut out = Vec::new();
    walk(tree, String::new(), &mut out);
    out
}

fn walk(v: &Value, path: String, out: &mut Vec<(String, String)>) {
    let join = |key: &str| {
        if path.is_empty() {
            key.to_string()
        } else {
            format!("{path}.{key}")
        }
    };
    match v {
        Value::Mapping(m) if !m.is_empty() => {
            for (k, child) in m {
                walk(child, join(&scalar(k)), out);
            }
        }
        Value::Sequence(items) if !items.is_empty() => {
            for (i, child) in items.iter().enumerate() {
                walk(child, join(&i.to_string()), out);
            }
        }
        Value::Tagged(t) => walk(&t.value, path, out),
        _ => out.push((path, scalar(v))),
    }
}

/// A leaf as a person reads it: text without quotes, numbers, `null`.
fn scalar(v: &Value) -> String {
    match v {
        Value::Null => "null".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => s.clone(),
        Value::Sequence(s) if s.is_empty() => "[]".into(),
        Value::Mapping(m) if m.is_empty() => "{}".into(),
        other => serde_norway::to_string(other)
            .map(|s| s.trim_end().to_string())
            .unwrap_or_default(),
    }
}

/// One setting that differs: its path and each run's value (`None`: the
/// run's profile does not have it).
#[derive(Clone, Debug, PartialEq)]
pub struct Difference {
    pub path: String,
    pub values: Vec<Option<String>>,
}

/// The settings whose values are not the same in every run, in the order
/// they first appear. A run with no settings (`None`) is left out of the
/// comparison of settings, and shows no value.
pub fn differing_settings(trees: &[Option<&Value>]) -> Vec<Difference> {
    let flat: Vec<Option<BTreeMap<String, String>>> = trees
        .iter()
        .map(|t| t.map(|t| flatten(t).into_iter().collect()))
        .collect();
    let mut order = Vec::new();
    let mut seen = HashSet::new();
    for t in trees.iter().flatten() {
        for (path, _) in flatten(t) {
            if seen.insert(path.clone()) {
                order.push(path);
            }
        }
    }
    let present: Vec<&BTreeMap<String, String>> = flat.iter().flatten().collect();
    order
        .into_iter()
        .filter(|path| !NOT_SETTINGS.contains(&path.as_str()))
        .filter(|path| {
            let first = present.first().map(|m| m.get(path));
            present.iter().any(|m| Some(m.get(path)) != first)
        })
        .map(|path| Difference {
            values: flat
                .iter()
                .map(|m| m.as_ref().and_then(|m| m.get(&path).cloned()))
                .collect(),
            path,
        })
        .collect()
}

/// What a row is, for styling (HTML) and grouping.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RowKind {
    /// A matrix variant's setting.
    Variant,
    /// A profile setting that differs between the runs.
    Setting,
    /// The verdict.
    Verdict,
    /// A measurement.
    Measure,
    /// A matrix variant's cost (the HTML page explains it).
    Cost,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Row {
    pub kind: RowKind,
    pub label: String,
    pub cells: Vec<String>,
}

/// Runs side by side: one column per run, one row per setting or
/// measurement.
#[derive(Clone, Debug, PartialEq)]
pub struct Table {
    /// The runs' labels, in order.
    pub columns: Vec<String>,
    pub rows: Vec<Row>,
    /// The line naming the matrix's choice, shown under the table before
    /// the notes (text, Markdown; the HTML page says it its own way).
    pub choice_line: Option<String>,
    /// Lines shown under the table (an interrupted matrix, ...).
    pub notes: Vec<String>,
}

/// Shown where a run has no value.
pub const NONE: &str = "—";

/// Build the comparison: variant settings, then differing profile
/// settings (those already shown as variant settings left out), then the
/// verdict, failed/sent, failures per cause (most first), the longest
/// disruption and latency p50/p99.
pub fn build_table(runs: &[RunColumn]) -> Table {
    let mut rows = Vec::new();
    let cells = |f: &dyn Fn(&RunColumn) -> String| runs.iter().map(f).collect::<Vec<_>>();

    let mut variant_paths: Vec<&str> = Vec::new();
    for r in runs {
        for (p, _) in &r.variant {
            if !variant_paths.contains(&p.as_str()) {
                variant_paths.push(p);
            }
        }
    }
    for path in &variant_paths {
        rows.push(Row {
            kind: RowKind::Variant,
            label: path.to_string(),
            cells: cells(&|r| {
                r.variant
                    .iter()
                    .find(|(p, _)| p == path)
                    .map_or(NONE.to_string(), |(_, v)| v.clone())
            }),
        });
    }
    let trees: Vec<Option<&Value>> = runs.iter().map(|r| r.settings.as_ref()).collect();
    for d in differing_settings(&trees) {
        if variant_paths.contains(&d.path.as_str()) {
            continue;
        }
        rows.push(Row {
            kind: RowKind::Setting,
            label: d.path,
            cells: d
                .values
                .into_iter()
                .map(|v| v.unwrap_or_else(|| NONE.to_string()))
                .collect(),
        });
    }

    rows.push(Row {
        kind: RowKind::Verdict,
        label: "verdict".into(),
        cells: cells(&|r| match (&r.measured, &r.note) {
            (Some(m), _) => m.verdict_word(),
            (None, Some(n)) => format!("no result: {n}"),
            (None, None) => "no result".into(),
        }),
    });
    let measure = |label: &str, f: &dyn Fn(&Measured) -> String| Row {
        kind: RowKind::Measure,
        label: label.to_string(),
        cells: runs
            .iter()
            .map(|r| r.measured.as_ref().map_or(NONE.to_string(), f))
            .collect(),
    };
    rows.push(measure("failed / sent", &|m| {
        format!("{} / {}", m.failed, m.sent)
    }));
    let mut totals: BTreeMap<&str, u64> = BTreeMap::new();
    for m in runs.iter().filter_map(|r| r.measured.as_ref()) {
        for (c, n) in &m.causes {
            *totals.entry(c).or_default() += n;
        }
    }
    let mut causes: Vec<(&str, u64)> = totals.into_iter().filter(|(_, n)| *n > 0).collect();
    causes.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    for (cause, _) in causes {
        rows.push(measure(&format!("failed: {cause}"), &|m| {
            m.causes.get(cause).copied().unwrap_or(0).to_string()
        }));
    }
    rows.push(measure("longest disruption", &|m| {
        m.longest_disruption_ms
            .map_or("none".into(), |ms| format!("{ms:.0} ms"))
    }));
    rows.push(measure("latency p50", &|m| {
        format!("{:.1} ms", m.latency_p50_ms)
    }));
    rows.push(measure("latency p99", &|m| {
        format!("{:.1} ms", m.latency_p99_ms)
    }));
    Table {
        columns: runs.iter().map(|r| r.label.clone()).collect(),
        rows,
        choice_line: None,
        notes: Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn yaml(s: &str) -> Value {
        serde_norway::from_str(s).unwrap()
    }

    fn measured(verdict: Verdict, sent: u64, failed: u64, causes: &[(&str, u64)]) -> Measured {
        Measured {
            verdict,
            interrupted: false,
            sent,
            failed,
            causes: causes.iter().map(|(c, n)| (c.to_string(), *n)).collect(),
            longest_disruption_ms: (failed > 0).then_some(812.4),
            latency_p50_ms: 1.25,
            latency_p99_ms: 9.5,
            rollout_completed: true,
        }
    }

    fn run(label: &str, profile: &str, m: Measured) -> RunColumn {
        RunColumn {
            label: label.into(),
            settings: Some(yaml(profile)),
            measured: Some(m),
            ..Default::default()
        }
    }

    #[test]
    fn flatten_gives_dotted_paths_with_numbered_list_items_in_tree_order() {
        let t = yaml(
            "name: x\nload: {rate: 200, timeout: 2s}\nrollout:\n  steps:\n    - set_image: {image: 'nginx:1.28'}\n    - sleep: 5s\nempty: {}\nnone: []\nn: null\n",
        );
        assert_eq!(
            flatten(&t),
            vec![
                ("name".into(), "x".into()),
                ("load.rate".into(), "200".into()),
                ("load.timeout".into(), "2s".into()),
                (
                    "rollout.steps.0.set_image.image".into(),
                    "nginx:1.28".into()
                ),
                ("rollout.steps.1.sleep".into(), "5s".into()),
                ("empty".into(), "{}".into()),
                ("none".into(), "[]".into()),
                ("n".into(), "null".into()),
            ]
        );
    }

    #[test]
    fn only_settings_that_differ_are_listed_with_each_runs_value() {
        let a = yaml("name: a\nload: {rate: 200, timeout: 2s}\n");
        let b = yaml("name: a\nload: {rate: 500, timeout: 2s}\n");
        assert_eq!(
            differing_settings(&[Some(&a), Some(&b)]),
            vec![Difference {
                path: "load.rate".into(),
                values: vec![Some("200".into()), Some("500".into())],
            }]
        );
    }

    #[test]
    fn a_setting_present_in_one_run_only_differs_and_shows_as_missing_elsewhere() {
        let a = yaml("thresholds: {max_failed: 0}\n");
        let b = yaml("thresholds: {max_failed: 0, p99_latency: 500ms}\n");
        let d = differing_settings(&[Some(&a), Some(&b)]);
        assert_eq!(d.len(), 1);
        assert_eq!(d[0].path, "thresholds.p99_latency");
        assert_eq!(d[0].values, vec![None, Some("500ms".into())]);
    }

    #[test]
    fn a_longer_step_list_differs_by_its_extra_items() {
        let a = yaml("steps: [{sleep: 1s}]\n");
        let b = yaml("steps: [{sleep: 1s}, {sleep: 2s}]\n");
        let d = differing_settings(&[Some(&a), Some(&b)]);
        assert_eq!(
            d.iter().map(|d| d.path.as_str()).collect::<Vec<_>>(),
            ["steps.1.sleep"]
        );
    }

    #[test]
    fn identical_profiles_and_descriptions_give_no_differences() {
        let a = yaml("name: a\ndescription: one\n");
        let b = yaml("name: a\ndescription: two\n");
        assert!(differing_settings(&[Some(&a), Some(&b)]).is_empty());
        assert!(differing_settings(&[Some(&a), None]).is_empty());
    }

    #[test]
    fn a_run_summary_gives_the_compared_measures() {
        // A summary.json as baton 0.1.0 wrote it (format 1).
        let text = include_str!("../../tests/fixtures/rundir-v1/run-fail/summary.json");
        let crate::rundir::Summary::Run(s) = serde_json::from_str(text).unwrap() else {
            panic!("a run summary")
        };
        let m = Measured::from(&s);
        assert_eq!(m.verdict, Verdict::Fail);
        assert_eq!((m.sent, m.failed), (1816, 201));
        assert_eq!(m.causes["endpoint_lag_on_termination"], 197);
        assert_eq!(m.longest_disruption_ms, Some(15.0));
        assert_eq!(m.latency_p50_ms, 0.624);
        assert!(m.rollout_completed);
        assert!(!m.zero_failures());
    }

    #[test]
    fn zero_failures_needs_a_valid_complete_uninterrupted_run() {
        let ok = measured(Verdict::Pass, 100, 0, &[]);
        assert!(ok.zero_failures());
        // A failed latency threshold with no failed request still counts.
        assert!(
            Measured {
                verdict: Verdict::Fail,
                ..ok.clone()
            }
            .zero_failures()
        );
        for m in [
            Measured {
                verdict: Verdict::Invalid,
                ..ok.clone()
            },
            Measured {
                interrupted: true,
                ..ok.clone()
            },
            Measured {
                rollout_completed: false,
                ..ok.clone()
            },
            Measured {
                failed: 1,
                ..ok.clone()
            },
        ] {
            assert!(!m.zero_failures(), "{m:?}");
        }
    }

    #[test]
    fn a_shortfall_says_why_a_run_is_not_zero_failures_most_basic_first() {
        let ok = measured(Verdict::Pass, 100, 0, &[]);
        assert_eq!(ok.shortfall(), None);
        let failed = Measured {
            failed: 3,
            ..ok.clone()
        };
        assert_eq!(
            failed.shortfall().as_deref(),
            Some("3 of 100 requests failed")
        );
        let stalled = Measured {
            rollout_completed: false,
            ..failed.clone()
        };
        assert_eq!(
            stalled.shortfall().as_deref(),
            Some("its rollout did not complete")
        );
        let stopped = Measured {
            interrupted: true,
            verdict: Verdict::Invalid,
            ..stalled
        };
        assert_eq!(
            stopped.shortfall().as_deref(),
            Some("the run was interrupted")
        );
    }

    #[test]
    fn the_table_shows_variants_then_differing_settings_then_measures() {
        let m0 = measured(
            Verdict::Fail,
            2000,
            40,
            &[
                ("endpoint_lag_on_termination", 30),
                ("killed_in_flight", 10),
            ],
        );
        let m3 = measured(Verdict::Pass, 2000, 0, &[]);
        let mut a = run("preStop-0s", "name: x\nload: {rate: 200}\n", m0);
        a.variant = vec![("rollout.preStop".into(), "0s".into())];
        let mut b = run("preStop-3s", "name: x\nload: {rate: 100}\n", m3);
        b.variant = vec![("rollout.preStop".into(), "3s".into())];
        let t = build_table(&[a, b]);
        assert_eq!(t.columns, ["preStop-0s", "preStop-3s"]);
        let labels: Vec<&str> = t.rows.iter().map(|r| r.label.as_str()).collect();
        assert_eq!(
            labels,
            [
                "rollout.preStop",
                "load.rate",
                "verdict",
                "failed / sent",
                "failed: endpoint_lag_on_termination",
                "failed: killed_in_flight",
                "longest disruption",
                "latency p50",
                "latency p99",
            ]
        );
        let cells = |label: &str| {
            t.rows
                .iter()
                .find(|r| r.label == label)
                .unwrap()
                .cells
                .clone()
        };
        assert_eq!(cells("rollout.preStop"), ["0s", "3s"]);
        assert_eq!(cells("verdict"), ["FAIL", "PASS"]);
        assert_eq!(cells("failed / sent"), ["40 / 2000", "0 / 2000"]);
        assert_eq!(cells("failed: killed_in_flight"), ["10", "0"]);
        assert_eq!(cells("longest disruption"), ["812 ms", "none"]);
        assert_eq!(cells("latency p99"), ["9.5 ms", "9.5 ms"]);
    }

    #[test]
    fn a_variant_path_that_is_also_a_profile_setting_is_shown_once() {
        let m = measured(Verdict::Pass, 1, 0, &[]);
        let mut a = run("rate-100", "load: {rate: 100}\n", m.clone());
        a.variant = vec![("load.rate".into(), "100".into())];
        let mut b = run("rate-500", "load: {rate: 500}\n", m);
        b.variant = vec![("load.rate".into(), "500".into())];
        let t = build_table(&[a, b]);
        assert_eq!(t.rows.iter().filter(|r| r.label == "load.rate").count(), 1);
        assert_eq!(t.rows[0].kind, RowKind::Variant);
    }

    #[test]
    fn a_run_without_a_result_shows_why_and_no_measures() {
        let a = RunColumn {
            label: "broken".into(),
            note: Some("setup failed".into()),
            ..Default::default()
        };
        let t = build_table(&[a]);
        let verdict = t.rows.iter().find(|r| r.label == "verdict").unwrap();
        assert_eq!(verdict.cells, ["no result: setup failed"]);
        let sent = t.rows.iter().find(|r| r.label == "failed / sent").unwrap();
        assert_eq!(sent.cells, [NONE]);
    }
}
