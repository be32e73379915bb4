//! `run.json`: the facts of a run that its CSVs and resolved profile do
//! not hold (when it started, how the steps went, what the watches missed,
//! what the load engine shed), so that `baton report DIR` can re-render
//! every report from the directory alone. It also names the directory's
//! format.
//!
//! Formats 1 and 2 differ only in `format_version` being present, so one
//! type reads both; a future format that changes a field gets a type of
//! its own here and a conversion into this one.

use super::{FORMAT_VERSION, RUN_JSON, RunDirError};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

/// The `cluster` of a format 1 run on the sandbox.
const V1_SIMULATOR_LABEL: &str = "sandbox (simulator)";

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunRecord {
    /// The run directory's format (see [`FORMAT_VERSION`]); 1 when the
    /// file does not say.
    #[serde(default = "super::unversioned")]
    pub format_version: u32,
    /// The baton that ran it (a re-render may be by a newer one).
    pub baton_version: String,
    /// The run clock's origin, RFC 3339 (UTC, milliseconds).
    pub started_at: String,
    pub interrupted: bool,
    /// `sandbox (simulator)` or the kubeconfig context.
    pub cluster: String,
    /// Ran on the embedded sandbox, a simulator, not a cluster. Format 1
    /// did not say; its `cluster` label did.
    #[serde(default)]
    pub simulator: bool,
    /// On the sandbox: who carried Service traffic, `userspace` (its
    /// proxy accepts, then resets when the Pod refuses) or `kernel`
    /// (nftables DNAT: a refused Pod fails the client's connect). Absent
    /// on a real cluster and before baton 0.1 recorded it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sandbox_data_plane: Option<String>,
    pub namespace: String,
    pub target_url: String,
    /// Requests the engine sent; `requests.csv` should hold as many rows.
    pub sent: u64,
    pub rows_written: u64,
    /// Arrivals over the in-flight cap, never sent.
    pub shed: u64,
    /// From the first scheduled instant to the end of the last request.
    pub elapsed_ns: u64,
    /// Failures per errno name (for the load-host advice).
    pub errnos: BTreeMap<String, u64>,
    pub warnings: Vec<String>,
    pub steps_started_ns: u64,
    pub steps_ended_ns: u64,
    pub rollout: RolloutRecord,
    /// Why the rollout is not complete, if it is not.
    pub rollout_incomplete: Option<String>,
    pub blind_spots: Vec<BlindSpotRecord>,
    /// The attribution's propagation allowance (format 1: only on the
    /// sandbox; absent means baton's default).
    pub propagation_allowance_ms: Option<u64>,
    /// Where the allowance came from (absent in format 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub propagation_allowance_from: Option<String>,
    /// What teardown did after the run, when the profile has a setup or
    /// teardown (absent in format 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub teardown: Option<TeardownRecord>,
    /// The in-cluster load workers (`load.from: cluster`), in index
    /// order; empty when the load came from this host (and before
    /// format 4).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub workers: Vec<WorkerRecord>,
}

/// One in-cluster load worker: where it ran, what arrived from it, its
/// clock, and why its records are not all here, if they are not.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct WorkerRecord {
    /// Its Job completion index (the `worker` column of `requests.csv`).
    pub index: u32,
    pub pod: String,
    pub node: Option<String>,
    /// Records that arrived intact.
    pub records: u64,
    /// What the worker said it sent (its END); `None` when it never said.
    pub sent: Option<u64>,
    /// Arrivals over its in-flight cap, never sent.
    pub shed: u64,
    /// p99 of how late its requests started, ms.
    pub lateness_p99_ms: Option<f64>,
    /// Its clock minus baton's, as measured, ns: already taken out of its
    /// records' times.
    pub clock_offset_ns: i64,
    /// The offset's error bound (half the tightest ping's round trip).
    pub clock_error_ns: u64,
    /// Why not every record it sent is here (it died, its stream broke,
    /// the checksum did not match); `None` when all arrived.
    pub lost: Option<String>,
}

impl RunRecord {
    /// The largest worker clock error: part of attribution's timing
    /// allowance. Zero when the load came from this host.
    pub fn clock_error_ns(&self) -> u64 {
        self.workers
            .iter()
            .map(|w| w.clock_error_ns)
            .max()
            .unwrap_or(0)
    }
}

/// After the run: the teardown steps as they went, then the objects the
/// profile's setup created, deleted or left.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct TeardownRecord {
    pub steps: Vec<StepRecord>,
    /// `Kind namespace/name`, deleted and gone.
    pub deleted: Vec<String>,
    pub left: Vec<Leftover>,
}

/// An object teardown could not remove, and why.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Leftover {
    pub object: String,
    pub why: String,
}

impl Default for RunRecord {
    fn default() -> Self {
        RunRecord {
            format_version: FORMAT_VERSION,
            baton_version: env!("CARGO_PKG_VERSION").to_string(),
            started_at: String::new(),
            interrupted: false,
            cluster: String::new(),
            simulator: false,
            sandbox_data_plane: None,
            namespace: String::new(),
            target_url: String::new(),
            sent: 0,
            rows_written: 0,
            shed: 0,
            elapsed_ns: 0,
            errnos: BTreeMap::new(),
            warnings: Vec::new(),
            steps_started_ns: 0,
            steps_ended_ns: 0,
            rollout: RolloutRecord::default(),
            rollout_incomplete: None,
            blind_spots: Vec::new(),
            propagation_allowance_ms: None,
            propagation_allowance_from: None,
            teardown: None,
            workers: Vec::new(),
        }
    }
}

/// How the rollout went: in `run.json`, and as `rollout` in `summary.json`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct RolloutRecord {
    pub completed: bool,
    pub steps: Vec<StepRecord>,
    pub stall: Option<StallRecord>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StepRecord {
    /// 1-based, in the profile's order.
    pub index: usize,
    pub description: String,
    pub started_ms: f64,
    pub ended_ms: f64,
    pub outcome: StepResult,
}

/// How a step ended. Written as text a person reads: `done`,
/// `failed: WHY`, `stalled: WHY`, `cancelled`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(into = "String", try_from = "String")]
pub enum StepResult {
    Done,
    Failed(String),
    Stalled(String),
    Cancelled,
}

impl StepResult {
    pub fn is_done(&self) -> bool {
        *self == StepResult::Done
    }
}

impl fmt::Display for StepResult {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StepResult::Done => f.write_str("done"),
            StepResult::Failed(why) => write!(f, "failed: {why}"),
            StepResult::Stalled(why) => write!(f, "stalled: {why}"),
            StepResult::Cancelled => f.write_str("cancelled"),
        }
    }
}

impl From<StepResult> for String {
    fn from(r: StepResult) -> String {
        r.to_string()
    }
}

impl TryFrom<String> for StepResult {
    type Error = String;

    fn try_from(s: String) -> Result<Self, String> {
        match s.as_str() {
            "done" => Ok(StepResult::Done),
            "cancelled" => Ok(StepResult::Cancelled),
            _ => {
                if let Some(why) = s.strip_prefix("failed: ") {
                    Ok(StepResult::Failed(why.to_string()))
                } else if let Some(why) = s.strip_prefix("stalled: ") {
                    Ok(StepResult::Stalled(why.to_string()))
                } else {
                    Err(format!(
                        "step outcome `{s}` is not done, failed: ..., stalled: ... or cancelled"
                    ))
                }
            }
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StallRecord {
    pub reason: String,
    pub at_ms: f64,
    /// `on_stall: undo` rolled the Deployment back.
    pub undone: bool,
}

/// A stretch in which a watch saw nothing.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct BlindSpotRecord {
    pub resource: String,
    pub from_ns: u64,
    pub len_ns: u64,
    /// Still blind when the run ended (absent in files written before
    /// this field existed: false).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub open: bool,
}

impl RunRecord {
    pub fn write(&self, dir: &Path) -> Result<(), RunDirError> {
        super::write_json(&dir.join(RUN_JSON), self)
    }

    /// Read `dir/run.json` in any released format; a newer one is refused.
    pub fn read(dir: &Path) -> Result<RunRecord, RunDirError> {
        let mut r: RunRecord = super::read_versioned(&dir.join(RUN_JSON))?;
        if r.format_version == 1 {
            r.simulator = r.cluster == V1_SIMULATOR_LABEL;
        }
        Ok(r)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_survives_a_round_trip_through_run_json() {
        let dir = tempfile::tempdir().unwrap();
        let r = RunRecord {
            sent: 10,
            rows_written: 10,
            rollout: RolloutRecord {
                completed: false,
                steps: vec![StepRecord {
                    index: 1,
                    description: "set_image nginx=nginx:1.28.0".into(),
                    started_ms: 1.5,
                    ended_ms: 2.5,
                    outcome: StepResult::Stalled("ErrImagePull: no such image".into()),
                }],
                stall: None,
            },
            rollout_incomplete: Some("stalled".into()),
            blind_spots: vec![BlindSpotRecord {
                resource: "pods".into(),
                from_ns: 5,
                len_ns: 7,
                open: true,
            }],
            ..RunRecord::default()
        };
        r.write(dir.path()).unwrap();
        assert_eq!(RunRecord::read(dir.path()).unwrap(), r);
        let text = std::fs::read_to_string(dir.path().join(RUN_JSON)).unwrap();
        assert!(
            text.starts_with(&format!("{{\n  \"format_version\": {FORMAT_VERSION},")),
            "{text}"
        );
    }

    #[test]
    fn step_outcomes_are_written_as_words_and_read_back_typed() {
        for r in [
            StepResult::Done,
            StepResult::Cancelled,
            StepResult::Failed("deployments.apps \"web\" not found".into()),
            StepResult::Stalled("CrashLoopBackOff".into()),
        ] {
            let json = serde_json::to_string(&r).unwrap();
            assert_eq!(serde_json::from_str::<StepResult>(&json).unwrap(), r);
        }
        assert_eq!(
            serde_json::to_string(&StepResult::Done).unwrap(),
            "\"done\""
        );
        assert!(serde_json::from_str::<StepResult>("\"finished\"").is_err());
    }
}
