//! `summary.json`: the verdict and everything behind it, for tools. Its
//! `kind` says which command wrote it: `run` ([`RunSummary`], also the
//! source of `summary.md`, `junit.xml`, `report.html` and the terminal
//! summary) or `load` ([`LoadSummary`]).
//!
//! A report, not a record: `baton report DIR` rewrites it in the format of
//! the baton that renders. `baton compare` reads it as it finds it, so a
//! field added here is `#[serde(default)]`.

use super::run_json::{RolloutRecord, TeardownRecord};
use super::{RunDirError, SUMMARY_JSON};
use crate::attribution::Incident;
use crate::load::host::HostLimits;
use crate::timeline::lags::{LagSummary, PodLags};
use crate::verdict::Verdict;
use crate::verdict::run::ThresholdResult;
use crate::verdict::schedule::ScheduleFigures;
use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;

/// A `summary.json`, of either kind.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
// A run summary is read far more often than it is moved; boxing it would
// only add noise at every use.
#[allow(clippy::large_enum_variant)]
pub enum Summary {
    Run(RunSummary),
    Load(LoadSummary),
}

/// [`Summary`] borrowed, for writing without a copy.
#[derive(Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
enum SummaryRef<'a> {
    Run(&'a RunSummary),
    Load(&'a LoadSummary),
}

impl Summary {
    pub fn write(&self, dir: &Path) -> Result<(), RunDirError> {
        super::write_json(&dir.join(SUMMARY_JSON), self)
    }

    /// Write `dir/summary.json` of kind `run`.
    pub fn write_run(s: &RunSummary, dir: &Path) -> Result<(), RunDirError> {
        super::write_json(&dir.join(SUMMARY_JSON), &SummaryRef::Run(s))
    }

    /// Write `dir/summary.json` of kind `load`.
    pub fn write_load(s: &LoadSummary, dir: &Path) -> Result<(), RunDirError> {
        super::write_json(&dir.join(SUMMARY_JSON), &SummaryRef::Load(s))
    }

    pub fn read(dir: &Path) -> Result<Summary, RunDirError> {
        super::read_json(&dir.join(SUMMARY_JSON))
    }

    /// `dir/summary.json` as a `baton run` summary; a `baton load` one is
    /// refused, saying what `needs` it.
    pub fn read_run(dir: &Path, needs: &'static str) -> Result<RunSummary, RunDirError> {
        match Summary::read(dir)? {
            Summary::Run(s) => Ok(s),
            Summary::Load(_) => Err(RunDirError::LoadDirectory {
                path: dir.to_path_buf(),
                needs,
            }),
        }
    }
}

/// The summary of a `baton run`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RunSummary {
    pub baton_version: String,
    pub name: String,
    pub verdict: Verdict,
    pub reason: String,
    pub interrupted: bool,
    pub started_at: String,
    pub elapsed_s: f64,
    /// `sandbox (simulator)` or the kubeconfig context.
    pub cluster: String,
    /// Ran on the embedded sandbox, a simulator: the verdict is the
    /// simulator's, not a cluster's. Every report says so first.
    #[serde(default)]
    pub simulator: bool,
    pub namespace: String,
    pub deployment: String,
    pub target_url: String,
    pub thresholds: Vec<ThresholdResult>,
    /// The `version_share` thresholds with their windows (format 3).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub version_shares: Vec<crate::verdict::share::ShareFigure>,
    pub requests: RequestCounts,
    /// Requests per outcome, every outcome present.
    pub outcomes: BTreeMap<String, u64>,
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
    /// When and how densely requests failed (absent when none did, and in
    /// older run directories).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failures: Option<FailureFigures>,
    /// Responses per version before the first step.
    pub versions_before_rollout: BTreeMap<String, u64>,
    /// Responses per version after the rollout settled.
    pub versions_after_rollout: BTreeMap<String, u64>,
    /// Responses per Pod after the rollout settled (the spread).
    pub backends_after_rollout: BTreeMap<String, u64>,
    pub rollout: RolloutRecord,
    /// Per-pod lags from the timeline (deletion → endpoint gone, ...).
    pub lags: Lags,
    pub watch_blind_spots: Vec<BlindSpotLine>,
    pub warnings: Vec<String>,
    /// The propagation allowance attribution used and where it came from
    /// (measured in the run, or configured). Absent in older run directories.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub propagation: Option<crate::attribution::propagation::Chosen>,
    /// How the load kept its schedule (absent in format 1).
    #[serde(default)]
    pub schedule: Option<ScheduleFigures>,
    /// What teardown did, when the profile has a setup or teardown.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub teardown: Option<TeardownRecord>,
    /// The in-cluster load workers, one line each (format 4; empty when
    /// the load came from this host).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub workers: Vec<WorkerFigures>,
}

/// One in-cluster load worker's share of the run: what it sent, what
/// failed, how it kept its schedule, its clock, and what was lost.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct WorkerFigures {
    pub index: u32,
    pub pod: String,
    pub node: Option<String>,
    pub sent: u64,
    pub failed: u64,
    pub shed: u64,
    pub lateness_p99_ms: Option<f64>,
    pub clock_error_ms: f64,
    pub lost: Option<String>,
}

impl RunSummary {
    /// The rate to show: over the span of actual starts when the load kept
    /// a schedule (`rps_achieved` divides by the elapsed time, which also
    /// holds the drain of the last requests and reads low).
    pub fn shown_rps(&self) -> f64 {
        self.schedule
            .as_ref()
            .map_or(self.rps_achieved, |s| s.achieved_rps)
    }

    /// `PASS`, `FAIL`, `INVALID`, or `INTERRUPTED`.
    pub fn verdict_word(&self) -> &'static str {
        if self.interrupted {
            "INTERRUPTED"
        } else {
            self.verdict.word()
        }
    }
}

/// What became of the requests, in both kinds of summary.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct RequestCounts {
    pub sent: u64,
    pub ok: u64,
    /// Failures the target answers for.
    pub failed: u64,
    /// The load host's own errors; never counted as failures.
    pub client_resource: u64,
    /// Arrivals refused by the in-flight cap: not sent.
    pub shed: u64,
    pub rows_written: u64,
}

/// A stretch of the run, in ms on the run clock.
#[derive(Clone, Copy, Debug, Serialize, Deserialize)]
pub struct Span {
    pub from_ms: f64,
    pub to_ms: f64,
    pub len_ms: f64,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct BlindSpotLine {
    pub resource: String,
    pub from_ms: f64,
    pub len_ms: f64,
    /// Still blind when the run ended.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub open: bool,
}

/// How the failures spread over the run, beyond their count: the
/// stretch they fell in, how many seconds had any, and the worst second.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FailureFigures {
    /// Start of the first and of the last failed request.
    pub first_ms: f64,
    pub last_ms: f64,
    /// Whole seconds of the run clock in which any request failed.
    pub seconds_with_failures: u64,
    /// The one-second window with the most failures (100 ms steps).
    pub worst_second: WorstSecond,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct WorstSecond {
    pub from_ms: f64,
    pub sent: u64,
    pub failed: u64,
    /// failed / sent in that second.
    pub error_rate: f64,
}

/// Per-Pod lags and their summary.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Lags {
    pub pods: Vec<PodLags>,
    pub summary: LagSummary,
}

/// Quantiles of a histogram of microseconds, in milliseconds.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Percentiles {
    /// Which instant the times count from: `start` (when the connect
    /// began) or `scheduled` (when the request was due, open model).
    pub measured_from: String,
    pub count: u64,
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub p99_9: f64,
    pub max: f64,
    pub mean: f64,
}

impl Percentiles {
    pub fn of(h: &Histogram<u64>, measured_from: &str) -> Percentiles {
        let ms = |us: u64| us as f64 / 1000.0;
        Percentiles {
            measured_from: measured_from.to_string(),
            count: h.len(),
            p50: ms(h.value_at_quantile(0.50)),
            p90: ms(h.value_at_quantile(0.90)),
            p99: ms(h.value_at_quantile(0.99)),
            p99_9: ms(h.value_at_quantile(0.999)),
            max: ms(h.max()),
            mean: (h.mean() / 1000.0 * 1000.0).round() / 1000.0,
        }
    }
}

/// Requests per second over `elapsed_s`, to one decimal (0 for no time).
pub fn rate_per_s(sent: u64, elapsed_s: f64) -> f64 {
    if elapsed_s > 0.0 {
        (sent as f64 / elapsed_s * 10.0).round() / 10.0
    } else {
        0.0
    }
}

/// Nanoseconds on the run clock as milliseconds, to two decimals.
pub fn ns_to_ms(ns: u64) -> f64 {
    (ns as f64 / 1e4).round() / 100.0
}

/// The summary of a `baton load`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct LoadSummary {
    pub baton_version: String,
    pub verdict: Verdict,
    pub reason: String,
    pub interrupted: bool,
    pub started_at: String,
    pub elapsed_s: f64,
    pub settings: LoadSettings,
    pub requests: LoadRequests,
    /// Count per outcome, every outcome present.
    pub outcomes: BTreeMap<String, u64>,
    pub rps_target: Option<f64>,
    pub rps_achieved: f64,
    /// Successful requests, from the actual start.
    pub latency_ms: Percentiles,
    /// Successful requests, from the scheduled instant (includes lateness).
    pub response_time_ms: Percentiles,
    /// Actual start minus scheduled instant, every request.
    pub lateness_ms: Percentiles,
    pub connect_ms: Percentiles,
    pub ttfb_ms: Percentiles,
    /// Failures by errno.
    pub errors: BTreeMap<String, u64>,
    /// How the load kept its schedule (open model only).
    #[serde(default)]
    pub schedule: Option<ScheduleFigures>,
    pub host: HostLimits,
    pub warnings: Vec<String>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct LoadRequests {
    #[serde(flatten)]
    pub counts: RequestCounts,
    /// Connections opened (fewer than requests only with `--keepalive`).
    pub new_connections: u64,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct LoadSettings {
    pub url: String,
    pub rate: Option<f64>,
    /// `open` or `closed`.
    pub model: String,
    pub concurrency: usize,
    pub requests: Option<u64>,
    pub duration_s: Option<f64>,
    pub timeout_ms: u64,
    pub connect_timeout_ms: u64,
    pub keepalive: bool,
    pub workers: usize,
    pub source_ips: Vec<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_kind_comes_first_and_says_which_command_wrote_it() {
        let dir = tempfile::tempdir().unwrap();
        let s = Summary::Load(LoadSummary {
            baton_version: "0.1.0".into(),
            verdict: Verdict::Pass,
            reason: "no failures".into(),
            interrupted: false,
            started_at: String::new(),
            elapsed_s: 1.0,
            settings: LoadSettings {
                url: "http://127.0.0.1:1/".into(),
                rate: Some(10.0),
                model: "open".into(),
                concurrency: 1,
                requests: None,
                duration_s: Some(1.0),
                timeout_ms: 1000,
                connect_timeout_ms: 1000,
                keepalive: false,
                workers: 1,
                source_ips: vec![],
            },
            requests: LoadRequests {
                counts: RequestCounts {
                    sent: 10,
                    ok: 10,
                    rows_written: 10,
                    ..RequestCounts::default()
                },
                new_connections: 10,
            },
            outcomes: BTreeMap::new(),
            rps_target: Some(10.0),
            rps_achieved: 10.0,
            latency_ms: Percentiles::default(),
            response_time_ms: Percentiles::default(),
            lateness_ms: Percentiles::default(),
            connect_ms: Percentiles::default(),
            ttfb_ms: Percentiles::default(),
            errors: BTreeMap::new(),
            schedule: None,
            host: HostLimits::default(),
            warnings: vec![],
        });
        s.write(dir.path()).unwrap();
        let text = std::fs::read_to_string(dir.path().join(SUMMARY_JSON)).unwrap();
        assert!(text.starts_with("{\n  \"kind\": \"load\","), "{text}");
        // The counts stay where `baton load` 0.1.0 put them.
        assert!(
            text.contains("\"requests\": {\n    \"sent\": 10,\n    \"ok\": 10,"),
            "{text}"
        );
        assert!(
            matches!(Summary::read(dir.path()).unwrap(), Summary::Load(l) if l.requests.counts.sent == 10)
        );
        let e = Summary::read_run(dir.path(), "compare takes `baton run` directories").unwrap_err();
        assert!(e.to_string().contains("`baton load` directory"), "{e}");
    }

    #[test]
    fn rates_round_to_a_tenth_and_no_time_is_no_rate() {
        assert_eq!(rate_per_s(1000, 3.0), 333.3);
        assert_eq!(rate_per_s(5, 0.0), 0.0);
    }
}
