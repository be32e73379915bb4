//! The summary of a `baton run`: `summary.json` (everything, for tools),
//! `summary.md` (for a CI step summary), `junit.xml` (one test case per
//! threshold, for CI test views) and the text printed on the terminal.
//! All four render the same [`RunSummary`], so they cannot disagree.
//!
//! Not for: measuring or judging (the summary is built from their results).

use super::summary::Percentiles;
use crate::attribution::Incident;
use crate::verdict::Verdict;
use crate::verdict::run::ThresholdResult;
use serde::Serialize;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

pub const SUMMARY_JSON: &str = "summary.json";
pub const SUMMARY_MD: &str = "summary.md";
pub const JUNIT_XML: &str = "junit.xml";

#[derive(Clone, Debug, Serialize)]
pub struct RunSummary {
    pub kind: &'static str,
    pub baton_version: &'static str,
    pub name: String,
    pub verdict: Verdict,
    pub reason: String,
    pub interrupted: bool,
    pub started_at: String,
    pub elapsed_s: f64,
    /// `sandbox (simulator)` or the kubeconfig context.
    pub cluster: String,
    pub namespace: String,
    pub deployment: String,
    pub target_url: String,
    pub thresholds: Vec<ThresholdResult>,
    pub requests: RunRequests,
    pub outcomes: BTreeMap<&'static str, u64>,
    /// Failed requests per cause.
    pub causes: BTreeMap<String, u64>,
    /// Most important first: unexplained, then by size.
    pub incidents: Vec<Incident>,
    pub rps_target: f64,
    pub rps_achieved: f64,
    /// Successful requests, from the actual start.
    pub latency_ms: Percentiles,
    /// Successful requests, from the scheduled instant.
    pub response_time_ms: Percentiles,
    pub lateness_ms: Percentiles,
    pub longest_disruption: Option<Span>,
    /// Responses per version before the first step.
    pub versions_before_rollout: BTreeMap<String, u64>,
    /// Responses per version after the rollout settled.
    pub versions_after_rollout: BTreeMap<String, u64>,
    /// Responses per Pod after the rollout settled (the spread).
    pub backends_after_rollout: BTreeMap<String, u64>,
    pub rollout: RolloutSummary,
    /// Per-pod lags from the timeline (deletion → endpoint gone, ...).
    pub lags: serde_json::Value,
    pub watch_blind_spots: Vec<BlindSpotLine>,
    pub warnings: Vec<String>,
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct RunRequests {
    pub sent: u64,
    pub ok: u64,
    pub failed: u64,
    pub client_resource: u64,
    pub shed: u64,
    pub rows_written: u64,
}

#[derive(Clone, Copy, Debug, Serialize)]
pub struct Span {
    pub from_ms: f64,
    pub to_ms: f64,
    pub len_ms: f64,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, serde::Deserialize)]
pub struct RolloutSummary {
    pub completed: bool,
    pub steps: Vec<StepLine>,
    pub stall: Option<StallLine>,
}

#[derive(Clone, Debug, PartialEq, Serialize, serde::Deserialize)]
pub struct StepLine {
    pub index: usize,
    pub description: String,
    pub started_ms: f64,
    pub ended_ms: f64,
    /// `done`, `failed: ...`, `stalled: ...`, `cancelled`.
    pub outcome: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, serde::Deserialize)]
pub struct StallLine {
    pub reason: String,
    pub at_ms: f64,
    pub undone: bool,
}

#[derive(Clone, Debug, Serialize)]
pub struct BlindSpotLine {
    pub resource: String,
    pub from_ms: f64,
    pub len_ms: f64,
}

pub fn ns_to_ms(ns: u64) -> f64 {
    (ns as f64 / 1e4).round() / 100.0
}

impl RunSummary {
    pub fn write_all(&self, dir: &Path) -> std::io::Result<()> {
        let json = serde_json::to_string_pretty(self).map_err(std::io::Error::other)?;
        std::fs::write(dir.join(SUMMARY_JSON), json + "\n")?;
        std::fs::write(dir.join(SUMMARY_MD), self.markdown())?;
        std::fs::write(dir.join(JUNIT_XML), self.junit()?)?;
        Ok(())
    }

    fn verdict_word(&self) -> &'static str {
        if self.interrupted {
            "INTERRUPTED"
        } else {
            self.verdict.word()
        }
    }

    /// What a person reads on the terminal at the end of a run.
    pub fn human(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "\n{}: {}  ({})",
            self.verdict_word(),
            self.reason,
            self.name
        );
        let _ = writeln!(
            s,
            "  requests   {} sent, {} ok, {} failed{} at {:.0}/s (target {:.0}/s)",
            self.requests.sent,
            self.requests.ok,
            self.requests.failed,
            if self.requests.client_resource > 0 {
                format!(", {} harness", self.requests.client_resource)
            } else {
                String::new()
            },
            self.rps_achieved,
            self.rps_target
        );
        if let Some(d) = self.longest_disruption {
            let _ = writeln!(
                s,
                "  disruption {:.0} ms with no successful response (from {:.1} s)",
                d.len_ms,
                d.from_ms / 1000.0
            );
        }
        let _ = writeln!(
            s,
            "  versions   before: {}; after: {} from {} pod(s)",
            counts(&self.versions_before_rollout),
            counts(&self.versions_after_rollout),
            self.backends_after_rollout.len()
        );
        let _ = writeln!(
            s,
            "  rollout    {}",
            if self.rollout.completed {
                "completed".to_string()
            } else {
                self.rollout
                    .stall
                    .as_ref()
                    .map_or("did not complete".to_string(), |st| {
                        format!(
                            "stalled: {}{}",
                            st.reason,
                            if st.undone { " (undone)" } else { "" }
                        )
                    })
            }
        );
        for t in &self.thresholds {
            let _ = writeln!(
                s,
                "  {} {:<18} {} (limit {})",
                if t.pass { "ok  " } else { "FAIL" },
                t.name,
                t.value,
                t.limit
            );
        }
        for i in &self.incidents {
            let _ = writeln!(
                s,
                "  incident {}: {} × {} between {:.2} s and {:.2} s, pods {}",
                i.id,
                i.failures,
                i.cause.as_str(),
                i.first_ns as f64 / 1e9,
                i.last_ns as f64 / 1e9,
                i.pods.join(", ")
            );
            let _ = writeln!(s, "    evidence: {}", i.evidence);
            let _ = writeln!(s, "    remedy:   {}", i.remedy.text);
        }
        s
    }

    /// `summary.md`: for a GitHub step summary or a PR comment.
    pub fn markdown(&self) -> String {
        let mut s = String::new();
        let icon = match self.verdict {
            Verdict::Pass => "✅",
            Verdict::Fail => "❌",
            Verdict::Invalid => "⚠️",
        };
        let _ = writeln!(
            s,
            "## {icon} baton: {} — {}\n",
            md(&self.name),
            self.verdict_word()
        );
        let _ = writeln!(s, "**{}**\n", md(&self.reason));
        let _ = writeln!(
            s,
            "Deployment `{}` in `{}` on {}; load {} at {:.0}/s (achieved {:.0}/s).\n",
            md(&self.deployment),
            md(&self.namespace),
            md(&self.cluster),
            md(&self.target_url),
            self.rps_target,
            self.rps_achieved
        );
        let _ = writeln!(s, "| threshold | limit | measured | |\n|---|---|---|---|");
        for t in &self.thresholds {
            let _ = writeln!(
                s,
                "| {} | {} | {} | {} |",
                t.name,
                md(&t.limit),
                md(&t.value),
                if t.pass { "ok" } else { "**fail**" }
            );
        }
        let _ = writeln!(
            s,
            "\n{} requests: {} ok, {} failed, {} harness errors. Latency p50 {:.1} ms, p99 {:.1} ms.",
            self.requests.sent,
            self.requests.ok,
            self.requests.failed,
            self.requests.client_resource,
            self.latency_ms.p50,
            self.latency_ms.p99
        );
        let _ = writeln!(
            s,
            "\nWho answered: before the rollout {}; after it settled {}, from {} pod(s).",
            counts(&self.versions_before_rollout),
            counts(&self.versions_after_rollout),
            self.backends_after_rollout.len()
        );
        if !self.incidents.is_empty() {
            let _ = writeln!(
                s,
                "\n### Incidents\n\n| # | cause | failures | when | pods | remedy |\n|---|---|---|---|---|---|"
            );
            for i in &self.incidents {
                let _ = writeln!(
                    s,
                    "| {} | `{}` | {} | {:.2}–{:.2} s | {} | {} |",
                    i.id,
                    i.cause.as_str(),
                    i.failures,
                    i.first_ns as f64 / 1e9,
                    i.last_ns as f64 / 1e9,
                    md(&i.pods.join(", ")),
                    md(&i.remedy.text)
                );
            }
            let _ = writeln!(s, "\nEvidence:\n");
            for i in &self.incidents {
                let _ = writeln!(s, "{}. {}", i.id, md(&i.evidence));
            }
        }
        if !self.rollout.steps.is_empty() {
            let _ = writeln!(
                s,
                "\n### Rollout\n\n| step | start | end | outcome |\n|---|---|---|---|"
            );
            for st in &self.rollout.steps {
                let _ = writeln!(
                    s,
                    "| {}. {} | {:.2} s | {:.2} s | {} |",
                    st.index,
                    md(&st.description),
                    st.started_ms / 1000.0,
                    st.ended_ms / 1000.0,
                    md(&st.outcome)
                );
            }
        }
        s
    }

    /// `junit.xml`: one suite, one test case per threshold; a failed
    /// threshold is a failure with the measured value as its message.
    pub fn junit(&self) -> std::io::Result<String> {
        use quick_junit::{NonSuccessKind, Report, TestCase, TestCaseStatus, TestSuite};
        let mut suite = TestSuite::new(format!("baton: {}", self.name));
        for t in &self.thresholds {
            let status = if t.pass {
                TestCaseStatus::success()
            } else {
                let mut st = TestCaseStatus::non_success(NonSuccessKind::Failure);
                st.set_message(format!("{}: {} (limit {})", t.name, t.value, t.limit));
                st.set_type("threshold");
                st
            };
            let mut case = TestCase::new(t.name, status);
            case.set_classname(format!("baton.{}", self.name));
            suite.add_test_case(case);
        }
        if self.verdict == Verdict::Invalid {
            let mut st = TestCaseStatus::non_success(NonSuccessKind::Error);
            st.set_message(self.reason.clone());
            let mut case = TestCase::new("run_valid", st);
            case.set_classname(format!("baton.{}", self.name));
            suite.add_test_case(case);
        }
        let mut incidents = String::new();
        for i in &self.incidents {
            let _ = writeln!(
                incidents,
                "incident {}: {} x {}: {} | remedy: {}",
                i.id,
                i.failures,
                i.cause.as_str(),
                i.evidence,
                i.remedy.text
            );
        }
        if !incidents.is_empty() {
            suite.set_system_out(incidents);
        }
        let mut report = Report::new("baton");
        report.add_test_suite(suite);
        report.to_string().map_err(std::io::Error::other)
    }
}

/// `1.27.5 (412), 1.28.0 (3)`, or `nobody` when empty.
fn counts(m: &BTreeMap<String, u64>) -> String {
    if m.is_empty() {
        return "nobody".into();
    }
    m.iter()
        .map(|(k, n)| format!("{} ({n})", md(k)))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Text safe inside a Markdown table cell.
fn md(s: &str) -> String {
    s.replace('|', "\\|").replace('\n', " ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markdown_cells_escape_pipes_and_newlines() {
        assert_eq!(md("a|b\nc"), "a\\|b c");
    }
}
