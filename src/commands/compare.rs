//! `baton compare DIR DIR...`: reads each run directory's `summary.json`,
//! `profile.resolved.yaml` and (for a matrix variant) `variant.json`,
//! prints the side by side table, and writes it as Markdown or HTML when
//! asked. A directory that is missing or unreadable exits 2, naming it.
//!
//! Not for: building or rendering the table (`crate::compare`).

use crate::cli::CompareArgs;
use crate::compare::{self, Measured, RunColumn, render};
use crate::exit::{self, Exit};
use crate::profile::RESOLVED_YAML;
use crate::report::run_summary::SUMMARY_JSON;
use std::path::{Path, PathBuf};

/// A matrix variant's settings, written into its run directory.
pub const VARIANT_JSON: &str = "variant.json";

pub fn run(args: CompareArgs) -> anyhow::Result<u8> {
    let labels = labels(&args.dirs);
    let mut runs = Vec::new();
    for (dir, label) in args.dirs.iter().zip(labels) {
        runs.push(load_run(dir, label).map_err(Exit::usage)?);
    }
    let table = compare::build_table(&runs);
    out!("{}", render::text(&table));
    let title = "baton compare";
    if let Some(f) = &args.markdown {
        write(f, &render::markdown(&table, title))?;
    }
    if let Some(f) = &args.html {
        write(f, &render::html(&table, title))?;
    }
    Ok(exit::PASS)
}

/// Column headings: each directory's name, or the path as given when two
/// directories share a name.
pub fn labels(dirs: &[PathBuf]) -> Vec<String> {
    let names: Vec<String> = dirs
        .iter()
        .map(|d| {
            d.file_name()
                .map_or_else(|| d.display().to_string(), |n| n.to_string_lossy().into())
        })
        .collect();
    names
        .iter()
        .zip(dirs)
        .map(|(n, d)| {
            if names.iter().filter(|m| *m == n).count() > 1 {
                d.display().to_string()
            } else {
                n.clone()
            }
        })
        .collect()
}

/// One run directory as a column. The error names the directory and the
/// file that is missing or unreadable.
pub fn load_run(dir: &Path, label: String) -> Result<RunColumn, String> {
    if !dir.is_dir() {
        return Err(format!(
            "{}: no such run directory (give the directories `baton run` or `baton matrix` wrote)",
            dir.display()
        ));
    }
    let read = |name: &str| {
        let path = dir.join(name);
        std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))
    };
    let summary_path = dir.join(SUMMARY_JSON);
    let summary: serde_json::Value = serde_json::from_str(&read(SUMMARY_JSON)?)
        .map_err(|e| format!("{}: not JSON: {e}", summary_path.display()))?;
    let measured =
        Measured::from_summary(&summary).map_err(|e| format!("{}: {e}", summary_path.display()))?;
    let settings = serde_norway::from_str(&read(RESOLVED_YAML)?)
        .map_err(|e| format!("{}: not YAML: {e}", dir.join(RESOLVED_YAML).display()))?;
    Ok(RunColumn {
        label,
        settings: Some(settings),
        variant: read_variant(dir)?,
        measured: Some(measured),
        note: None,
    })
}

/// `variant.json`'s settings, or none when the file is absent.
pub fn read_variant(dir: &Path) -> Result<Vec<(String, String)>, String> {
    let path = dir.join(VARIANT_JSON);
    let Ok(text) = std::fs::read_to_string(&path) else {
        return Ok(Vec::new());
    };
    let v: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| format!("{}: not JSON: {e}", path.display()))?;
    let list = v["variant"].as_array().cloned().unwrap_or_default();
    Ok(list
        .iter()
        .filter_map(|s| Some((s["path"].as_str()?.into(), s["value"].as_str()?.into())))
        .collect())
}

fn write(path: &Path, text: &str) -> anyhow::Result<()> {
    std::fs::write(path, text)
        .map_err(|e| Exit::usage(format!("cannot write {}: {e}", path.display())).into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_directory_names_unless_two_share_one() {
        let dirs = [
            PathBuf::from("reports/a"),
            PathBuf::from("x/run"),
            PathBuf::from("y/run"),
        ];
        assert_eq!(labels(&dirs), ["a", "x/run", "y/run"]);
    }

    #[test]
    fn a_missing_directory_is_named_in_the_error() {
        let e = load_run(Path::new("/nonexistent/run-1"), "x".into()).unwrap_err();
        assert!(e.contains("/nonexistent/run-1"), "{e}");
    }

    #[test]
    fn a_directory_without_a_summary_names_the_missing_file() {
        let dir = tempfile::tempdir().unwrap();
        let e = load_run(dir.path(), "x".into()).unwrap_err();
        assert!(e.contains("summary.json"), "{e}");
    }

    #[test]
    fn a_variant_file_gives_the_variants_settings() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join(VARIANT_JSON),
            r#"{"variant": [{"path": "rollout.preStop", "value": "3s"}]}"#,
        )
        .unwrap();
        assert_eq!(
            read_variant(dir.path()).unwrap(),
            [("rollout.preStop".to_string(), "3s".to_string())]
        );
        assert!(read_variant(&dir.path().join("none")).unwrap().is_empty());
    }
}
