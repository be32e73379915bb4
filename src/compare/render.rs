//! A comparison [`Table`] as aligned text (the terminal), Markdown (a CI
//! step summary, `compare.md`) and a self-contained HTML page
//! (`compare.html`, no network needed to view it).
//!
//! Not for: building the table (see the parent module).

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

/// One HTML page holding the table; every text escaped.
pub fn html(t: &Table, title: &str) -> String {
    let mut s = String::new();
    let _ = write!(
        s,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>{}</title>\n<style>\n\
         body {{ font-family: system-ui, sans-serif; margin: 2em; color: #222; }}\n\
         table {{ border-collapse: collapse; }}\n\
         th, td {{ border: 1px solid #ccc; padding: 0.3em 0.7em; text-align: left; vertical-align: top; }}\n\
         thead th {{ background: #f3f3f3; }}\n\
         tr.variant th, tr.setting th {{ font-family: monospace; font-weight: normal; }}\n\
         tr.variant td {{ background: #eef4ff; font-weight: bold; }}\n\
         td.pass {{ background: #dff5e1; font-weight: bold; }}\n\
         td.fail {{ background: #fbe0e0; font-weight: bold; }}\n\
         td.other {{ background: #fff4d6; font-weight: bold; }}\n\
         </style>\n</head>\n<body>\n<h1>{}</h1>\n<table>\n<thead><tr><th></th>",
        escape(title),
        escape(title)
    );
    for c in &t.columns {
        let _ = write!(s, "<th>{}</th>", escape(c));
    }
    s.push_str("</tr></thead>\n<tbody>\n");
    for r in &t.rows {
        let class = match r.kind {
            RowKind::Variant => "variant",
            RowKind::Setting => "setting",
            RowKind::Verdict => "verdict",
            RowKind::Measure | RowKind::Cost => "measure",
        };
        let _ = write!(
            s,
            "<tr class=\"{class}\"><th scope=\"row\">{}</th>",
            escape(&r.label)
        );
        for c in &r.cells {
            if r.kind == RowKind::Verdict {
                let v = match c.as_str() {
                    "PASS" => "pass",
                    "FAIL" => "fail",
                    _ => "other",
                };
                let _ = write!(s, "<td class=\"{v}\">{}</td>", escape(c));
            } else {
                let _ = write!(s, "<td>{}</td>", escape(c));
            }
        }
        s.push_str("</tr>\n");
    }
    s.push_str("</tbody>\n</table>\n");
    for n in t.choice_line.iter().chain(&t.notes) {
        let _ = writeln!(s, "<p>{}</p>", escape(n));
    }
    s.push_str("</body>\n</html>\n");
    s
}

/// Text safe inside HTML elements and double- or single-quoted
/// attributes.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for ch in s.chars() {
        match ch {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
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

    #[test]
    fn html_marks_verdicts_and_escapes_every_text() {
        let mut t = table();
        t.columns[0] = "<script>alert('x')</script>".into();
        t.rows[2].cells[0] = "a & b \"c\"".into();
        let out = html(&t, "runs <compared>");
        assert!(out.contains("<title>runs &lt;compared&gt;</title>"));
        assert!(out.contains("<th>&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;</th>"));
        assert!(!out.contains("<script>"));
        assert!(out.contains("<td>a &amp; b &quot;c&quot;</td>"));
        assert!(out.contains("<td class=\"fail\">FAIL</td><td class=\"pass\">PASS</td>"));
        assert!(out.contains("<p>cheapest with zero failures: preStop-3s</p>"));
    }

    #[test]
    fn escape_covers_the_five_html_specials() {
        assert_eq!(escape("<&>\"'x"), "&lt;&amp;&gt;&quot;&#39;x");
    }
}
