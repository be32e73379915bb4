//! A comparison [`Table`] as aligned text (the terminal) and Markdown (a
//! CI step summary, `compare.md`).
//!
//! Not for: building the table (see the parent module), or the HTML page
//! (`compare.html`, see `page`).

use super::{RowKind, Table};
use std::fmt::Write as _;

/// Aligned columns: the row labels on the left, one column per run.
pub fn text(t: &Table) -> String {
    let mut grid: Vec<Vec<String>> = Vec::with_capacity(t.rows.len() + 1);
    let mut head = vec![String::new()];
    head.extend(t.columns.iter().cloned());
    grid.push(head);
    for r in &t.rows {
        let mut line = vec![r.label.clone()];
        line.extend(r.cells.iter().cloned());
        grid.push(line);
    }
    let ncols = t.columns.len() + 1;
    let widths: Vec<usize> = (0..ncols)
        .map(|c| {
            grid.iter()
                .map(|l| l.get(c).map_or(0, |s| s.chars().count()))
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut s = String::new();
    for (i, line) in grid.iter().enumerate() {
        let mut out = String::new();
        for (c, cell) in line.iter().enumerate() {
            if c > 0 {
                out.push_str("  ");
            }
            let pad = widths[c].saturating_sub(cell.chars().count());
            out.push_str(cell);
            out.extend(std::iter::repeat_n(' ', pad));
        }
        let _ = writeln!(s, "{}", out.trim_end());
        if i == 0 {
            let rule: Vec<String> = widths.iter().map(|w| "-".repeat(*w)).collect();
            let _ = writeln!(s, "{}", rule.join("  "));
        }
    }
    for n in t.choice_line.iter().chain(&t.notes) {
        let _ = writeln!(s, "{n}");
    }
    s
}

/// A Markdown table, then the matrix's choice and the notes as
/// paragraphs.
pub fn markdown(t: &Table, title: &str) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "## {}\n", md(title));
    let _ = write!(s, "| |");
    for c in &t.columns {
        let _ = write!(s, " {} |", md(c));
    }
    let _ = write!(s, "\n|---|");
    for _ in &t.columns {
        let _ = write!(s, "---|");
    }
    s.push('\n');
    for r in &t.rows {
        let label = match r.kind {
            RowKind::Variant | RowKind::Setting => format!("`{}`", md(&r.label)),
            RowKind::Verdict => format!("**{}**", md(&r.label)),
            RowKind::Measure | RowKind::Cost => md(&r.label),
        };
        let _ = write!(s, "| {label} |");
        for c in &r.cells {
            if r.kind == RowKind::Verdict {
                let _ = write!(s, " **{}** |", md(c));
            } else {
                let _ = write!(s, " {} |", md(c));
            }
        }
        s.push('\n');
    }
    for n in t.choice_line.iter().chain(&t.notes) {
        let _ = writeln!(s, "\n{}", md(n));
    }
    s
}

/// Text safe inside a Markdown table cell.
fn md(s: &str) -> String {
    s.replace('|', "\\|").replace('\n', " ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compare::Row;

    fn table() -> Table {
        Table {
            columns: vec!["preStop-0s".into(), "preStop-3s".into()],
            rows: vec![
                Row {
                    kind: RowKind::Variant,
                    label: "rollout.preStop".into(),
                    cells: vec!["0s".into(), "3s".into()],
                },
                Row {
                    kind: RowKind::Verdict,
                    label: "verdict".into(),
                    cells: vec!["FAIL".into(), "PASS".into()],
                },
                Row {
                    kind: RowKind::Measure,
                    label: "failed / sent".into(),
                    cells: vec!["40 / 2000".into(), "0 / 2000".into()],
                },
            ],
            choice_line: Some("cheapest with zero failures: preStop-3s".into()),
            notes: vec!["Interrupted: 2 of 3 variant(s) ran.".into()],
        }
    }

    #[test]
    fn text_aligns_every_column_under_its_heading() {
        let out = text(&table());
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines[0], "                 preStop-0s  preStop-3s");
        assert_eq!(lines[1], "---------------  ----------  ----------");
        assert_eq!(lines[2], "rollout.preStop  0s          3s");
        assert_eq!(lines[3], "verdict          FAIL        PASS");
        assert_eq!(lines[4], "failed / sent    40 / 2000   0 / 2000");
        assert_eq!(lines[5], "cheapest with zero failures: preStop-3s");
        assert_eq!(lines[6], "Interrupted: 2 of 3 variant(s) ran.");
    }

    #[test]
    fn markdown_is_a_table_with_one_column_per_run() {
        let out = markdown(&table(), "baton compare");
        assert!(
            out.starts_with("## baton compare\n\n| | preStop-0s | preStop-3s |\n|---|---|---|\n")
        );
        assert!(out.contains("| `rollout.preStop` | 0s | 3s |\n"));
        assert!(out.contains("| **verdict** | **FAIL** | **PASS** |\n"));
        assert!(out.contains(
            "\ncheapest with zero failures: preStop-3s\n\nInterrupted: 2 of 3 variant(s) ran.\n"
        ));
    }

    #[test]
    fn markdown_escapes_pipes_in_cells() {
        let mut t = table();
        t.rows[0].cells[0] = "a|b".into();
        assert!(markdown(&t, "x").contains("| a\\|b |"));
    }
}
