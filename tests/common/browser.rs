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
