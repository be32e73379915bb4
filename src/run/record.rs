//! `run.json`: the facts of a run that its CSVs and resolved profile do
//! not hold (when it started, how the steps went, what the watches missed,
//! what the load engine shed), so that `baton report DIR` can re-render
//! every report from the directory alone, byte for byte.

use crate::report::run_summary::RolloutSummary;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;

pub const RUN_JSON: &str = "run.json";

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct RunRecord {
    /// The baton that ran it (a re-render may be by a newer one).
    pub baton_version: String,
    /// The run clock's origin, RFC 3339 (UTC, milliseconds).
    pub started_at: String,
    pub interrupted: bool,
    /// `sandbox (simulator)` or the kubeconfig context.
    pub cluster: String,
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
    pub rollout: RolloutSummary,
    /// Why the rollout is not complete, if it is not.
    pub rollout_incomplete: Option<String>,
    pub blind_spots: Vec<BlindSpotRecord>,
    /// The attribution's propagation allowance, when the run set one.
    pub propagation_allowance_ms: Option<u64>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct BlindSpotRecord {
    pub resource: String,
    pub from_ns: u64,
    pub len_ns: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    #[error("{path}: {why}")]
    Read { path: String, why: String },
}

impl RunRecord {
    pub fn write(&self, dir: &Path) -> std::io::Result<()> {
        let json = serde_json::to_string_pretty(self).map_err(std::io::Error::other)?;
        std::fs::write(dir.join(RUN_JSON), json + "\n")
    }

    pub fn read(dir: &Path) -> Result<RunRecord, RecordError> {
        let path = dir.join(RUN_JSON);
        let err = |why: String| RecordError::Read {
            path: path.display().to_string(),
            why,
        };
        let text = std::fs::read_to_string(&path).map_err(|e| err(e.to_string()))?;
        serde_json::from_str(&text).map_err(|e| err(e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_survives_a_round_trip_through_run_json() {
        let dir = tempfile::tempdir().unwrap();
        let r = RunRecord {
            baton_version: "0.1.0".into(),
            sent: 10,
            rows_written: 10,
            rollout_incomplete: Some("stalled".into()),
            blind_spots: vec![BlindSpotRecord {
                resource: "pods".into(),
                from_ns: 5,
                len_ns: 7,
            }],
            ..RunRecord::default()
        };
        r.write(dir.path()).unwrap();
        assert_eq!(RunRecord::read(dir.path()).unwrap(), r);
    }
}
