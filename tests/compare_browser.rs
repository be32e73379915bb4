//! `compare.html` in a real browser: Chromium, headless, at 1440×900, on
//! the format-1 matrix of `tests/fixtures/` (`rollout.preStop=0s,3s`)
//! re-rendered by this baton (`baton compare MATRIX_DIR --html
//! MATRIX_DIR/compare.html`, the matrix's own page again). The DOM is
//! read after the page's scripts ran (`--dump-dom`): no script failed;
//! the cheapest variant with zero failures, and only it, is marked
//! chosen; each variant links to a `report.html` that exists; each has a
//! timeline; nothing is fetched from the network (the page's policy
//! blocks and counts any fetch, and no URL in it points out). A screenshot is left in
//! `target/tmp/report-browser/` (a CI artifact, not committed).
//!
//! `scripts/test.sh` installs Debian's `chromium` when it is missing.

mod common;

use common::browser::{headless, loaded_clean};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The fixture's matrix, its page re-rendered by this baton into a copy.
fn matrix_page() -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let from = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/rundir-v1/matrix");
    let dir = tmp.path().join("matrix");
    common::copy_dir(&from, &dir);
    let page = dir.join("compare.html");
    let before = std::fs::read(&page).unwrap();
    let out = Command::new(assert_cmd::cargo::cargo_bin("baton"))
        .arg("compare")
        .arg(&dir)
        .arg("--html")
        .arg(&page)
        .env_remove("GITHUB_ACTIONS")
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_ne!(
        std::fs::read(&page).unwrap(),
        before,
        "compare.html was not rewritten"
    );
    (tmp, page)
}

/// `name="value"` of every element whose class list holds `class`, as
/// Chromium serializes the DOM (attributes double-quoted).
fn attrs_of_class(dom: &str, class: &str, name: &str) -> Vec<String> {
    let tag = regex::Regex::new(r"<[a-z]+\s[^>]*>").unwrap();
    let value = |t: &str, a: &str| {
        regex::Regex::new(&format!(r#"\s{a}="([^"]*)""#))
            .unwrap()
            .captures(t)
            .map(|c| c[1].to_string())
    };
    tag.find_iter(dom)
        .map(|m| m.as_str())
        .filter(|t| value(t, "class").is_some_and(|c| c.split_whitespace().any(|c| c == class)))
        .filter_map(|t| value(t, name))
        .collect()
}

#[test]
fn the_matrix_page_marks_the_chosen_variant_links_every_report_and_runs_clean() {
    let (_tmp, page) = matrix_page();
    // Clean and self-contained, in the file and in the DOM.
    let dom = loaded_clean(&page);

    // The cheapest variant with zero failures is preStop-3s: its
    // timeline row and its column are marked, and nothing else.
    let chosen = attrs_of_class(&dom, "chosen", "data-run");
    assert_eq!(
        chosen,
        ["preStop-3s", "preStop-3s"],
        "the runs marked chosen (its timeline row, then its column)"
    );
    assert!(
        dom.contains(">CHOSEN<") && dom.contains("preStop-3s (rollout.preStop=3s) is chosen"),
        "the page does not say which variant it chose and why"
    );

    // Every variant links to its own report.html, relative to the page,
    // and the file is there.
    let hrefs = attrs_of_class(&dom, "report", "href");
    let page_dir = page.parent().unwrap();
    let mut linked = BTreeSet::new();
    for h in &hrefs {
        assert!(
            !h.contains(':') && !h.starts_with('/'),
            "{h} is not a relative link"
        );
        let target = page_dir.join(h);
        assert!(
            target.is_file(),
            "{h} points at {}, which does not exist",
            target.display()
        );
        assert_eq!(target.file_name().unwrap(), "report.html", "{h}");
        linked.insert(
            target
                .parent()
                .unwrap()
                .file_name()
                .unwrap()
                .to_string_lossy()
                .into_owned(),
        );
    }
    assert_eq!(
        linked,
        BTreeSet::from(["preStop-0s".to_string(), "preStop-3s".to_string()]),
        "the variants linked to their reports: {hrefs:?}"
    );

    // One timeline per variant, the failed requests of preStop-0s in red.
    assert_eq!(
        dom.matches("<svg class=\"spark\"").count(),
        2,
        "one timeline per variant"
    );
    assert_eq!(
        attrs_of_class(&dom, "failed", "d").len(),
        1,
        "red drawn for exactly the variant that failed requests"
    );

    let shots = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/tmp/report-browser");
    std::fs::create_dir_all(&shots).unwrap();
    let shot = shots.join("compare.png");
    let _ = std::fs::remove_file(&shot);
    let out = headless(&page, &[&format!("--screenshot={}", shot.display())]);
    assert!(
        out.status.success() && shot.is_file(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
