//! `baton compare DIR DIR...`: reads each run directory (see
//! `compare::read`), prints the side by side table, and writes it as
//! Markdown or HTML when asked. A directory that is missing, unreadable
//! or from a newer baton exits 2, naming it.
//!
//! `baton compare MATRIX_DIR` (a directory `baton matrix` wrote, alone)
//! compares its variants as the matrix did: with their costs and the
//! cheapest variant with zero failures, so `--html MATRIX_DIR/compare.html`
//! renders the matrix's page again with this baton.
//!
//! Not for: reading the directories or building and rendering the table
//! (`crate::compare`).

use crate::cli::CompareArgs;
use crate::compare::page::{self, Page};
use crate::compare::{self, RunColumn, Table, read, render};
use crate::exit::{self, Exit};
use crate::matrix::{self, Choice};
use std::path::{Path, PathBuf};

/// What is compared, read and built.
struct Compared {
    title: String,
    columns: Vec<RunColumn>,
    /// Each column's run directory.
    dirs: Vec<PathBuf>,
    table: Table,
    /// A matrix's costs and choice.
    choice: Option<Choice>,
}

pub fn run(args: CompareArgs) -> anyhow::Result<u8> {
    let c = match args.dirs.as_slice() {
        [dir] if read::is_matrix(dir) => of_matrix(dir)?,
        dirs => of_runs(dirs)?,
    };
    out!("{}", render::text(&c.table));
    if let Some(f) = &args.markdown {
        write(f, &render::markdown(&c.table, &c.title))?;
    }
    if let Some(f) = &args.html {
        let html = html_page(
            f,
            &c.title,
            &c.columns,
            &c.dirs,
            &c.table,
            c.choice.as_ref(),
        )?;
        write(f, &html)?;
    }
    Ok(exit::PASS)
}

fn of_runs(dirs: &[PathBuf]) -> anyhow::Result<Compared> {
    if let Some(m) = dirs.iter().find(|d| read::is_matrix(d)) {
        return Err(Exit::usage(format!(
            "{} is a `baton matrix` directory: compare it alone, or give its variants' directories ({}/<variant>) to compare them with other runs",
            m.display(),
            m.display()
        ))
        .into());
    }
    let mut columns = Vec::new();
    for (dir, label) in dirs.iter().zip(labels(dirs)) {
        columns.push(read::column(dir, label).map_err(Exit::usage)?);
    }
    Ok(Compared {
        title: "baton compare".into(),
        table: compare::build_table(&columns),
        columns,
        dirs: dirs.to_vec(),
        choice: None,
    })
}

fn of_matrix(dir: &Path) -> anyhow::Result<Compared> {
    let m = read::matrix(dir).map_err(Exit::usage)?;
    let cmp = matrix::comparison(&m.columns, m.varies(), &m.variants);
    let mut table = cmp.table;
    if m.record.interrupted {
        let planned: usize = m.record.vary.iter().map(|v| v.values.len()).product();
        table.notes.push(format!(
            "Interrupted: {} of {planned} variant(s) ran.",
            m.columns.len()
        ));
    }
    let name = m
        .columns
        .iter()
        .find_map(|c| {
            c.settings
                .as_ref()?
                .get("name")?
                .as_str()
                .map(str::to_string)
        })
        .unwrap_or_else(|| m.record.profile.clone());
    Ok(Compared {
        title: format!("baton matrix: {name}"),
        table,
        columns: m.columns,
        dirs: m.dirs,
        choice: Some(cmp.choice),
    })
}

/// `compare.html` for `columns`, to be written at `path`: each run's
/// report linked relative to it, and its requests over time read from
/// `dirs`.
pub(super) fn html_page(
    path: &Path,
    title: &str,
    columns: &[RunColumn],
    dirs: &[PathBuf],
    table: &Table,
    choice: Option<&Choice>,
) -> anyhow::Result<String> {
    let page_dir = path.parent().unwrap_or(Path::new(""));
    let files: Vec<page::RunFiles> = dirs.iter().map(|d| read::files(d, page_dir)).collect();
    page::render(&Page {
        title,
        runs: columns,
        files: &files,
        table,
        matrix: choice,
    })
    .map_err(|e| {
        anyhow::anyhow!(
            "cannot render {}: {e:#} (a bug in baton: please report it)",
            path.display()
        )
    })
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
