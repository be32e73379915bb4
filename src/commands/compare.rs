//! `baton compare DIR DIR...`: reads each run directory (see
//! `compare::read`), prints the side by side table, and writes it as
//! Markdown or HTML when asked. A directory that is missing, unreadable
//! or from a newer baton exits 2, naming it.
//!
//! Not for: reading the directories or building and rendering the table
//! (`crate::compare`).

use crate::cli::CompareArgs;
use crate::compare::{self, read, render};
use crate::exit::{self, Exit};
use std::path::{Path, PathBuf};

pub fn run(args: CompareArgs) -> anyhow::Result<u8> {
    let labels = labels(&args.dirs);
    let mut runs = Vec::new();
    for (dir, label) in args.dirs.iter().zip(labels) {
        runs.push(read::column(dir, label).map_err(Exit::usage)?);
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
fn labels(dirs: &[PathBuf]) -> Vec<String> {
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
}
