//! The run directory: the contract between a run and everything that
//! reads it afterwards — `baton report` and `baton compare`, a CI step, a
//! person, a newer baton on another machine months later for a
//! postmortem.
//!
//! This module owns every file name in a run directory and, per file, the
//! one type or the one pair of functions that both writes and reads it.
//! `run.json` names the directory's format ([`FORMAT_VERSION`]); a reader
//! reads every format that was ever released and refuses a newer one,
//! naming it, with exit 2 ([`RunDirError::TooNew`]).
//!
//! Two kinds of file live here. The *record* of a run (`requests.csv`,
//! `events.csv`, `run.json`, `profile.resolved.yaml`, `cluster/`,
//! `variant.json`) is written once, by the run; the *reports*
//! (`summary.json`, `failures.csv`, `timeline.csv`, `report.html`,
//! `summary.md`, `junit.xml`) are derived from the record and rewritten by
//! every `baton report DIR`, in the format of the baton that renders.
//!
//! Rules for changing a format (see `reports/README.md`, which documents
//! each file and the version history):
//! - a field added to a JSON file is `#[serde(default)]`, so older files
//!   still read; a field is never renamed or removed without a new
//!   [`FORMAT_VERSION`] and a reader for the old one;
//! - CSV columns are only ever appended;
//! - the fixtures under `tests/fixtures/rundir-v*` are never edited: they
//!   are directories someone already has.
//!
//! Not for: producing what the files hold (`load`, `cluster`,
//! `attribution`, `verdict`) or rendering the reports (`report`).

pub mod events;
pub mod lifecycle;
pub mod matrix;
pub mod requests;
pub mod run_json;
pub mod summary;
pub mod variant;

use serde::Deserialize;
use std::path::{Path, PathBuf};

pub use lifecycle::{AtomicFile, RUNNING, Running, claim, make_room, write_atomic};
pub use matrix::MatrixRecord;
pub use run_json::RunRecord;
pub use summary::{LoadSummary, RunSummary, Summary};
pub use variant::VariantRecord;

/// The format this baton writes. History (also in `reports/README.md`):
/// - 1: baton 0.1.0; `run.json` has no `format_version`.
/// - 2: `run.json` and `matrix.json` carry `format_version`; otherwise as 1.
/// - 3: `events.csv` may hold the kinds of Nodes, budgets, autoscalers and
///   evictions (`node_cordoned`, `pod_evicted`, ...), which a format 2
///   reader would not know; `pod_deleting`'s `reason` names a disruption.
pub const FORMAT_VERSION: u32 = 4;

/// The format of a `run.json` or `matrix.json` that does not name one.
const UNVERSIONED: u32 = 1;

// The record of a run: written once, by the run.
/// The profile as it ran, every default filled in.
pub const PROFILE_YAML: &str = "profile.resolved.yaml";
/// One row per request sent ([`requests`]).
pub const REQUESTS_CSV: &str = "requests.csv";
/// One row per lifecycle event ([`events`]).
pub const EVENTS_CSV: &str = "events.csv";
/// What only the run knows ([`RunRecord`]).
pub const RUN_JSON: &str = "run.json";
/// The Deployment, Service, ReplicaSets and rollout history, before and
/// after (see [`cluster_file`]).
pub const CLUSTER_DIR: &str = "cluster";
/// The output of `exec` steps, one `N.log` per step.
pub const STEPS_DIR: &str = "steps";
/// On the sandbox: which Pod its proxy sent each connection to.
pub const GROUND_TRUTH_CSV: &str = "sandbox-ground-truth.csv";
/// On the sandbox: what each Pod's container did with connections, when.
pub const POD_TRUTH_CSV: &str = "sandbox-pod-truth.csv";
/// On the sandbox: every eviction its Eviction API allowed or refused.
pub const EVICTION_TRUTH_CSV: &str = "sandbox-evictions.csv";
/// A matrix variant's settings ([`VariantRecord`]).
pub const VARIANT_JSON: &str = "variant.json";

// The reports: derived from the record, rewritten by `baton report`.
/// Verdict, thresholds, counts, incidents ([`Summary`]).
pub const SUMMARY_JSON: &str = "summary.json";
pub const SUMMARY_MD: &str = "summary.md";
pub const JUNIT_XML: &str = "junit.xml";
pub const REPORT_HTML: &str = "report.html";
/// Every failed request with its attribution.
pub const FAILURES_CSV: &str = "failures.csv";
/// Per 100 ms bucket: requests, outcomes, latency, versions, cluster state.
pub const TIMELINE_CSV: &str = "timeline.csv";

// A matrix directory: one run directory per variant, and these.
/// The variants, their costs and the cheapest with zero failures
/// ([`MatrixRecord`]).
pub const MATRIX_JSON: &str = "matrix.json";
pub const COMPARE_MD: &str = "compare.md";
pub const COMPARE_HTML: &str = "compare.html";

/// The files a run directory's reports are rendered from.
pub const RECORD_FILES: [&str; 4] = [RUN_JSON, PROFILE_YAML, REQUESTS_CSV, EVENTS_CSV];

/// Which of [`RECORD_FILES`] `dir` lacks.
pub fn missing_record_files(dir: &Path) -> Vec<&'static str> {
    RECORD_FILES
        .into_iter()
        .filter(|f| !dir.join(f).is_file())
        .collect()
}

/// The files of `cluster/`: `deployment.before.yaml`,
/// `history.after.txt`, ... `object` is `deployment`, `service`,
/// `replicasets` or `history`; `when` is `before` or `after`.
pub fn cluster_file(dir: &Path, object: &str, when: &str) -> PathBuf {
    let ext = if object == "history" { "txt" } else { "yaml" };
    dir.join(CLUSTER_DIR).join(format!("{object}.{when}.{ext}"))
}

/// `reports/<kind>-<UTC time>`, the default run directory, e.g.
/// `reports/run-nginx-rolling-update-20261123T071500Z`.
pub fn default_dir(kind: &str) -> PathBuf {
    let now = humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string();
    let stamp: String = now.chars().filter(|c| c.is_ascii_alphanumeric()).collect();
    Path::new("reports").join(format!("{kind}-{stamp}"))
}

/// A name (a profile's, a variant's) fit for a directory name.
pub fn slug(name: &str) -> String {
    let s: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '-'
            }
        })
        .collect();
    s.trim_matches('-').chars().take(40).collect()
}

/// A run directory that cannot be read (or written); each message names
/// the file.
#[derive(Debug, thiserror::Error)]
pub enum RunDirError {
    #[error("{}: {why}", path.display())]
    Read { path: PathBuf, why: String },
    #[error(
        "{}: format_version {found} is newer than this baton (version {ours}) reads \
         (formats up to {FORMAT_VERSION}); it was written by baton {written_by}: \
         read it with that baton or a newer one",
        path.display(),
        ours = env!("CARGO_PKG_VERSION"),
    )]
    TooNew {
        path: PathBuf,
        found: u32,
        written_by: String,
    },
    #[error("{}: is a `baton load` directory; {needs}", path.display())]
    LoadDirectory { path: PathBuf, needs: &'static str },
    #[error("cannot write {}: {why}", path.display())]
    Write { path: PathBuf, why: String },
    #[error(
        "{} already holds a run ({} is there): pass --force to replace it, or give another --out",
        path.display(),
        found.display()
    )]
    Occupied { path: PathBuf, found: PathBuf },
}

impl RunDirError {
    /// A directory that cannot be read or used is bad input (2); a file
    /// that cannot be written (a full disk) leaves a run that was not
    /// recorded faithfully (3).
    pub fn exit_code(&self) -> u8 {
        match self {
            RunDirError::Write { .. } => crate::exit::INVALID,
            _ => crate::exit::USAGE,
        }
    }

    pub(crate) fn read(path: &Path, why: impl std::fmt::Display) -> RunDirError {
        RunDirError::Read {
            path: path.to_path_buf(),
            why: why.to_string(),
        }
    }

    pub(crate) fn write(path: &Path, why: impl std::fmt::Display) -> RunDirError {
        RunDirError::Write {
            path: path.to_path_buf(),
            why: why.to_string(),
        }
    }
}

impl From<RunDirError> for crate::exit::Exit {
    fn from(e: RunDirError) -> Self {
        crate::exit::Exit {
            code: e.exit_code(),
            message: e.to_string(),
        }
    }
}

/// The version fields every versioned JSON file starts with.
#[derive(Deserialize)]
struct Versioned {
    #[serde(default = "unversioned")]
    format_version: u32,
    #[serde(default)]
    baton_version: String,
}

fn unversioned() -> u32 {
    UNVERSIONED
}

/// Read a versioned JSON file (`run.json`, `matrix.json`) as `T`, after
/// checking its format is one this baton reads.
fn read_versioned<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T, RunDirError> {
    let text = std::fs::read_to_string(path).map_err(|e| RunDirError::read(path, e))?;
    let v: Versioned = serde_json::from_str(&text)
        .map_err(|e| RunDirError::read(path, format!("not a baton file: {e}")))?;
    if v.format_version > FORMAT_VERSION {
        return Err(RunDirError::TooNew {
            path: path.to_path_buf(),
            found: v.format_version,
            written_by: if v.baton_version.is_empty() {
                "(unknown)".into()
            } else {
                v.baton_version
            },
        });
    }
    serde_json::from_str(&text).map_err(|e| RunDirError::read(path, e))
}

/// Write `value` as pretty JSON with a final newline, whole or not at all.
fn write_json<T: serde::Serialize>(path: &Path, value: &T) -> Result<(), RunDirError> {
    let json = serde_json::to_string_pretty(value).map_err(|e| RunDirError::write(path, e))?;
    write_atomic(path, (json + "\n").as_bytes())
}

/// Read a JSON file that carries no version of its own (its directory's
/// `run.json` does).
fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T, RunDirError> {
    let text = std::fs::read_to_string(path).map_err(|e| RunDirError::read(path, e))?;
    serde_json::from_str(&text).map_err(|e| RunDirError::read(path, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs_keep_letters_digits_and_dashes_only() {
        assert_eq!(slug("nginx rolling/update!"), "nginx-rolling-update");
        assert_eq!(slug(&"x".repeat(60)).len(), 40);
    }

    #[test]
    fn an_empty_directory_lacks_every_record_file() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(missing_record_files(dir.path()), RECORD_FILES);
        std::fs::write(dir.path().join(RUN_JSON), "{}").unwrap();
        assert!(!missing_record_files(dir.path()).contains(&RUN_JSON));
    }

    #[test]
    fn cluster_files_are_yaml_but_the_history_table() {
        let d = Path::new("r");
        assert_eq!(
            cluster_file(d, "deployment", "before"),
            Path::new("r/cluster/deployment.before.yaml")
        );
        assert_eq!(
            cluster_file(d, "history", "after"),
            Path::new("r/cluster/history.after.txt")
        );
    }

    #[test]
    fn a_file_from_a_newer_format_is_refused_naming_its_version_and_writer() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(RUN_JSON);
        std::fs::write(
            &path,
            format!(
                r#"{{"format_version": {}, "baton_version": "9.0.0", "new_field": 1}}"#,
                FORMAT_VERSION + 1
            ),
        )
        .unwrap();
        let e = read_versioned::<serde_json::Value>(&path).unwrap_err();
        assert!(matches!(e, RunDirError::TooNew { found, .. } if found == FORMAT_VERSION + 1));
        let msg = e.to_string();
        assert!(msg.contains("run.json") && msg.contains("9.0.0"), "{msg}");
    }

    #[test]
    fn a_file_without_a_version_is_format_1() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(RUN_JSON);
        std::fs::write(&path, r#"{"baton_version": "0.1.0"}"#).unwrap();
        let v: serde_json::Value = read_versioned(&path).unwrap();
        assert_eq!(v["baton_version"], "0.1.0");
        let text = std::fs::read_to_string(&path).unwrap();
        let probe: Versioned = serde_json::from_str(&text).unwrap();
        assert_eq!(probe.format_version, 1);
    }
}
