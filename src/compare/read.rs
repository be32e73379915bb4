//! A run directory as a column of the comparison, read through `rundir`'s
//! types: `run.json` first (it says whether this baton can read the
//! directory), then `summary.json`, `profile.resolved.yaml` and, for a
//! matrix variant, `variant.json`. Also what the HTML page shows beside
//! the column ([`files`]: the link to the run's `report.html`, its
//! requests over time, from `requests.csv` through `analyse`, the pass
//! `baton report` makes), and a whole matrix directory ([`matrix`]:
//! `matrix.json` and each variant's directory).
//!
//! Not for: building or rendering the table (the parent module).

use super::link::{self, Link};
use super::page::RunFiles;
use super::sparkline::Activity;
use super::{Measured, RunColumn};
use crate::matrix::{Variant, Vary};
use crate::rundir::{
    MATRIX_JSON, MatrixRecord, PROFILE_YAML, REPORT_HTML, REQUESTS_CSV, RunDirError, RunRecord,
    Summary, VariantRecord,
};
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

/// What the page shows beside the run in `dir`, for a page written in
/// `page_dir`. Never fails: what cannot be read is shown as the reason.
pub fn files(dir: &Path, page_dir: &Path) -> RunFiles {
    RunFiles {
        report: report_link(dir, page_dir),
        activity: activity(dir).map_err(|e| e.to_string()),
    }
}

/// The relative link from a page in `page_dir` to `dir/report.html`, or
/// why there is none (no report there; a path that cannot be resolved).
pub fn report_link(dir: &Path, page_dir: &Path) -> Link {
    let report = dir.join(REPORT_HTML);
    if !report.is_file() {
        return Link::Missing(format!("there is no {}", report.display()));
    }
    let page_dir = if page_dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        page_dir
    };
    let resolve = |p: &Path| {
        p.canonicalize()
            .map_err(|e| format!("cannot resolve {}: {e}", p.display()))
    };
    match (resolve(page_dir), resolve(&report)) {
        (Ok(from), Ok(to)) => link::relative(&from, &to).map_or_else(Link::Missing, Link::Href),
        (Err(why), _) | (_, Err(why)) => Link::Missing(why),
    }
}

/// The run's requests over time (`requests.csv`, bucketed by `analyse`
/// as for `report.html`) and its rollout steps (`summary.json`).
pub fn activity(dir: &Path) -> Result<Activity, RunDirError> {
    let summary = Summary::read_run(dir, NEEDS)?;
    let analysis =
        crate::analyse::analyse(&dir.join(REQUESTS_CSV), crate::analyse::Marks::default())?;
    Ok(Activity::new(&analysis.buckets, &summary.rollout.steps))
}

/// A `baton matrix` directory read back: each variant that ran, in order,
/// as a column, with the matrix's `--vary`s and the variant each column
/// ran (for `matrix::comparison`).
#[derive(Debug)]
pub struct MatrixDir {
    pub record: MatrixRecord,
    pub columns: Vec<RunColumn>,
    /// The variants' directories, one per column.
    pub dirs: Vec<std::path::PathBuf>,
    pub variants: Vec<Variant>,
}

impl MatrixDir {
    pub fn varies(&self) -> &[Vary] {
        &self.record.vary
    }
}

/// Whether `dir` is a `baton matrix` directory (it holds `matrix.json`).
pub fn is_matrix(dir: &Path) -> bool {
    dir.join(MATRIX_JSON).is_file()
}

/// Read a matrix directory: `matrix.json`, then each variant's run
/// directory (`DIR/<slug>`). A variant that `matrix.json` records with no
/// result (its setup failed) is a column saying so; any other variant
/// that cannot be read is an error naming its directory.
pub fn matrix(dir: &Path) -> Result<MatrixDir, RunDirError> {
    let record = MatrixRecord::read(dir)?;
    let (mut columns, mut dirs, mut variants) = (Vec::new(), Vec::new(), Vec::new());
    for v in &record.variants {
        let set: Vec<(String, String)> = v
            .settings
            .iter()
            .map(|s| (s.path.clone(), s.value.clone()))
            .collect();
        let variant = Variant::of(&record.vary, &set).ok_or_else(|| {
            RunDirError::read(
                &dir.join(MATRIX_JSON),
                format!(
                    "variant {} sets values that are not among those varied",
                    v.slug
                ),
            )
        })?;
        let vdir = dir.join(&v.slug);
        let mut column = match column(&vdir, v.slug.clone()) {
            Ok(c) => c,
            Err(e) if v.verdict.is_none() => RunColumn {
                label: v.slug.clone(),
                settings: settings(&vdir).ok(),
                note: Some(format!("matrix.json records no result ({e})")),
                ..RunColumn::default()
            },
            Err(e) => return Err(e),
        };
        column.variant = set;
        columns.push(column);
        dirs.push(vdir);
        variants.push(variant);
    }
    Ok(MatrixDir {
        record,
        columns,
        dirs,
        variants,
    })
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

    fn fixture_matrix() -> (tempfile::TempDir, std::path::PathBuf) {
        let tmp = tempfile::tempdir().unwrap();
        let from = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/rundir-v1/matrix");
        let dir = tmp.path().join("matrix");
        copy_dir(&from, &dir);
        (tmp, dir)
    }

    fn copy_dir(from: &Path, to: &Path) {
        std::fs::create_dir_all(to).unwrap();
        for e in std::fs::read_dir(from).unwrap() {
            let e = e.unwrap();
            if e.file_type().unwrap().is_dir() {
                copy_dir(&e.path(), &to.join(e.file_name()));
            } else {
                std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
            }
        }
    }

    #[test]
    fn a_matrix_directory_reads_back_as_its_variants_in_order() {
        let (_tmp, dir) = fixture_matrix();
        assert!(is_matrix(&dir));
        assert!(!is_matrix(&dir.join("preStop-0s")));
        let m = matrix(&dir).unwrap();
        let labels: Vec<&str> = m.columns.iter().map(|c| c.label.as_str()).collect();
        assert_eq!(labels, ["preStop-0s", "preStop-3s"]);
        assert_eq!(m.dirs[1], dir.join("preStop-3s"));
        assert_eq!(m.variants[1].positions, [1]);
        assert_eq!(
            m.columns[0].variant,
            [("rollout.preStop".to_string(), "0s".to_string())]
        );
        assert_eq!(m.columns[0].measured.as_ref().unwrap().failed, 201);
    }

    #[test]
    fn a_variant_recorded_without_a_result_is_a_column_saying_so() {
        let (_tmp, dir) = fixture_matrix();
        let mut record = MatrixRecord::read(&dir).unwrap();
        record.variants[0].verdict = None;
        record.write(&dir).unwrap();
        std::fs::remove_file(dir.join("preStop-0s/summary.json")).unwrap();
        let m = matrix(&dir).unwrap();
        assert_eq!(m.columns[0].measured, None);
        let note = m.columns[0].note.as_deref().unwrap();
        assert!(note.contains("records no result"), "{note}");
        assert!(m.columns[0].settings.is_some());
    }

    #[test]
    fn a_variant_with_a_result_that_cannot_be_read_is_an_error_naming_it() {
        let (_tmp, dir) = fixture_matrix();
        std::fs::remove_file(dir.join("preStop-3s/summary.json")).unwrap();
        let e = matrix(&dir).unwrap_err().to_string();
        assert!(e.contains("preStop-3s") && e.contains(SUMMARY_JSON), "{e}");
    }

    #[test]
    fn a_matrix_record_naming_a_value_never_varied_is_refused() {
        let (_tmp, dir) = fixture_matrix();
        let mut record = MatrixRecord::read(&dir).unwrap();
        record.variants[1].settings[0].value = "9s".into();
        record.write(&dir).unwrap();
        let e = matrix(&dir).unwrap_err().to_string();
        assert!(e.contains("matrix.json") && e.contains("preStop-3s"), "{e}");
    }

    #[test]
    fn a_runs_files_give_its_report_link_and_its_requests_over_time() {
        let (_tmp, dir) = fixture_matrix();
        let f = files(&dir.join("preStop-0s"), &dir);
        assert_eq!(f.report, Link::Href("preStop-0s/report.html".into()));
        let a = f.activity.unwrap();
        let sent: u64 = a.bars.iter().map(|b| b.ok + b.failed + b.host).sum();
        let failed: u64 = a.bars.iter().map(|b| b.failed).sum();
        assert_eq!((sent, failed), (1820, 201));
        assert_eq!(a.steps.len(), 2);
        assert_eq!(a.steps[0].label, "1. set_image nginx=nginx:1.28.0");
        // From a page elsewhere, the link goes up and across.
        let f = files(&dir.join("preStop-3s"), &dir.join("preStop-0s"));
        assert_eq!(f.report, Link::Href("../preStop-3s/report.html".into()));
    }

    #[test]
    fn a_run_without_a_report_or_requests_says_why_not() {
        let (_tmp, dir) = fixture_matrix();
        let run = dir.join("preStop-0s");
        std::fs::remove_file(run.join(REPORT_HTML)).unwrap();
        std::fs::remove_file(run.join(REQUESTS_CSV)).unwrap();
        let f = files(&run, &dir);
        match &f.report {
            Link::Missing(why) => assert!(why.contains(REPORT_HTML), "{why}"),
            other => panic!("{other:?}"),
        }
        let why = f.activity.unwrap_err();
        assert!(why.contains(REQUESTS_CSV), "{why}");
    }
}
