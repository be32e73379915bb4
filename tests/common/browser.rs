//! Chromium, headless, for the tests that open baton's HTML pages as a
//! person would: the DOM after the page's scripts ran (`--dump-dom`) and
//! screenshots. `scripts/test.sh` installs Debian's `chromium` when it is
//! missing.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The first browser found, by the names Debian, Ubuntu and Google use.
pub fn browser() -> PathBuf {
    [
        "chromium",
        "chromium-browser",
        "google-chrome",
        "google-chrome-stable",
    ]
    .iter()
    .find_map(|b| which::which(b).ok())
    .expect("no Chromium found: scripts/test.sh installs Debian's `chromium`")
}

pub fn headless(page: &Path, extra: &[&str]) -> std::process::Output {
    let profile = tempfile::tempdir().unwrap();
    Command::new(browser())
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--hide-scrollbars",
            "--window-size=1440,900",
            "--virtual-time-budget=5000",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .args(extra)
        .arg(format!("file://{}", page.display()))
        .output()
        .expect("run the browser")
}

pub fn attr(dom: &str, name: &str) -> Option<i64> {
    let at = dom.find(&format!("{name}=\""))? + name.len() + 2;
    dom[at..].split('"').next()?.parse().ok()
}

/// `page` loaded headless as a person opens it, and checked to have run
/// clean: the browser ended well, no script failed, nothing was fetched
/// (the page's policy counted no blocked fetch, and neither the file as
/// written, where `/` may be escaped, nor the DOM the browser made of it
/// names a network URL in `src`, `href` or `url()`, or an `@import`).
/// The DOM after the page's scripts ran.
pub fn loaded_clean(page: &Path) -> String {
    let html = std::fs::read_to_string(page).unwrap();
    let out = headless(page, &["--dump-dom"]);
    let dom = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success() && dom.contains("</html>"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        attr(&dom, "data-script-errors"),
        Some(0),
        "script errors on the page (or its script did not run)"
    );
    assert_eq!(
        attr(&dom, "data-blocked-fetches"),
        Some(0),
        "the page tried to fetch something (its policy blocked it)"
    );
    let fetches = regex::Regex::new(
        r#"(?i)(src|href)\s*=\s*["']?\s*(https?:)?(//|&#x2f;&#x2f;)|url\(\s*["']?\s*(https?:)?(//|&#x2f;&#x2f;)|@import"#,
    )
    .unwrap();
    for (what, text) in [("the file", html.as_str()), ("its DOM", dom.as_str())] {
        assert!(
            !fetches.is_match(text),
            "{} ({what}) loads something from the network: {:?}",
            page.display(),
            fetches.find(text).map(|m| m.as_str())
        );
    }
    dom
}
