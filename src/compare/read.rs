//! A run directory as a column of the comparison, read through `rundir`'s
//! types: `run.json` first (it says whether this baton can read the
//! directory), then `summary.json`, `profile.resolved.yaml` and, for a
//! matrix variant, `variant.json`.
//!
//! Not for: building or rendering the table (the parent module).

use super::{Measured, RunColumn};
use crate::rundir::{PROFILE_YAML, RunDirError, RunRecord, Summary, VariantRecord};
use std::path::Path;

/// What `baton compare` says a directory it cannot use should be.
const NEEDS: &str = "compare takes the directories `baton run` or `baton matrix` wrote";

/// One run directory as a column headed `label`. The error names the
/// directory or the file that is missing, unreadable or too new.
pub fn column(dir: &Path, label: String) -> Result<RunColumn, RunDirError> {
    if !dir.is_dir() {
        return Err(RunDirError::read(
            dir,
            format!("no such run directory ({NEEDS})"),
        ));
    }
    let summary = Summary::read_run(dir, NEEDS)?;
    RunRecord::read(dir)?;
    Ok(RunColumn {
        label,
        settings: Some(settings(dir)?),
        variant: VariantRecord::read(dir)?.map_or_else(Vec::new, |v| v.settings()),
        measured: Some(Measured::from(&summary)),
        note: None,
    })
}

/// The resolved profile as a YAML tree (the settings compared).
pub fn settings(dir: &Path) -> Result<serde_norway::Value, RunDirError> {
    let path = dir.join(PROFILE_YAML);
    let text = std::fs::read_to_string(&path).map_err(|e| RunDirError::read(&path, e))?;
    serde_norway::from_str(&text).map_err(|e| RunDirError::read(&path, format!("not YAML: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rundir::{RUN_JSON, SUMMARY_JSON};

    #[test]
    fn a_missing_directory_is_named_in_the_error() {
        let e = column(Path::new("/nonexistent/run-1"), "x".into()).unwrap_err();
        assert!(e.to_string().contains("/nonexistent/run-1"), "{e}");
    }

    #[test]
    fn a_directory_without_a_summary_names_the_missing_file() {
        let dir = tempfile::tempdir().unwrap();
        let e = column(dir.path(), "x".into()).unwrap_err();
        assert!(e.to_string().contains(SUMMARY_JSON), "{e}");
    }

    #[test]
    fn a_run_from_a_newer_format_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let fixture =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/rundir-v1/run-fail");
        for f in [SUMMARY_JSON, PROFILE_YAML] {
            std::fs::copy(fixture.join(f), dir.path().join(f)).unwrap();
        }
        std::fs::write(
            dir.path().join(RUN_JSON),
            r#"{"format_version": 99, "baton_version": "7.0.0"}"#,
        )
        .unwrap();
        let e = column(dir.path(), "x".into()).unwrap_err();
        assert!(matches!(e, RunDirError::TooNew { found: 99, .. }), "{e}");
    }
}
