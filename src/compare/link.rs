//! The link from `compare.html` to each run's `report.html`: a relative
//! URL, so the page and the run directories beside it can be moved,
//! zipped or uploaded together and still link up (`preStop-0s/report.html`
//! in a matrix directory).
//!
//! Pure: it works on paths already made absolute and normalized (see
//! `read::report_link`, which checks the report exists and resolves the
//! paths).
//!
//! Not for: checking that a file exists, or anything but relative links.

use std::fmt::Write as _;
use std::path::{Component, Path};

/// Where a run's `report.html` is, seen from the page.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Link {
    /// A relative URL, percent-encoded, e.g. `preStop-0s/report.html`.
    Href(String),
    /// Why there is no link, in words that follow "no link to its
    /// report: ".
    Missing(String),
}

impl Link {
    pub fn href(&self) -> Option<&str> {
        match self {
            Link::Href(h) => Some(h),
            Link::Missing(_) => None,
        }
    }
}

/// The relative URL of the file `target` from a page in the directory
/// `from_dir`. Both must be absolute and normalized (no `.` or `..`, as
/// `canonicalize` gives them). The error says why no relative URL can be
/// formed: another drive (Windows), a name that is not UTF-8.
pub fn relative(from_dir: &Path, target: &Path) -> Result<String, String> {
    let from: Vec<Component> = from_dir.components().collect();
    let to: Vec<Component> = target.components().collect();
    let rooted = |c: &[Component]| {
        c.iter()
            .take_while(|c| matches!(c, Component::Prefix(_) | Component::RootDir))
            .count()
    };
    let (rf, rt) = (rooted(&from), rooted(&to));
    if rf == 0 || rt == 0 {
        return Err("its path is not absolute".into());
    }
    if from[..rf] != to[..rt] {
        return Err(format!(
            "it is on another drive than the page ({})",
            target.display()
        ));
    }
    let common = from.iter().zip(&to).take_while(|(a, b)| a == b).count();
    let mut parts: Vec<String> = Vec::new();
    for c in &from[common..] {
        match c {
            Component::Normal(_) => parts.push("..".into()),
            _ => return Err("the page's directory is not normalized".into()),
        }
    }
    for c in &to[common..] {
        match c {
            Component::Normal(name) => {
                let name = name
                    .to_str()
                    .ok_or_else(|| format!("its path is not UTF-8 ({})", target.display()))?;
                parts.push(encode_segment(name));
            }
            _ => return Err("its path is not normalized".into()),
        }
    }
    if parts.is_empty() {
        return Err("it is the page itself".into());
    }
    Ok(parts.join("/"))
}

/// One path segment of a URL: unreserved characters as they are, every
/// other byte of its UTF-8 as `%XX` (so `#`, `?`, `%`, a space or a `:`
/// in a directory name cannot end or change the URL).
fn encode_segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_report_below_the_page_is_linked_down_from_it() {
        assert_eq!(
            relative(
                Path::new("/tmp/m"),
                Path::new("/tmp/m/preStop-0s/report.html")
            ),
            Ok("preStop-0s/report.html".into())
        );
    }

    #[test]
    fn a_report_elsewhere_is_linked_up_and_across() {
        assert_eq!(
            relative(
                Path::new("/home/me/out"),
                Path::new("/home/me/reports/run-a/report.html")
            ),
            Ok("../reports/run-a/report.html".into())
        );
        assert_eq!(
            relative(Path::new("/a/b/c"), Path::new("/x/report.html")),
            Ok("../../../x/report.html".into())
        );
    }

    #[test]
    fn characters_that_would_change_the_url_are_percent_encoded() {
        assert_eq!(
            relative(Path::new("/r"), Path::new("/r/a b#1?x%/c:d/é/report.html")),
            Ok("a%20b%231%3Fx%25/c%3Ad/%C3%A9/report.html".into())
        );
    }

    #[test]
    fn no_link_is_formed_from_relative_paths() {
        let e = relative(Path::new("out"), Path::new("/r/report.html")).unwrap_err();
        assert!(e.contains("not absolute"), "{e}");
    }

    #[cfg(unix)]
    #[test]
    fn a_name_that_is_not_utf8_gives_no_link_and_says_why() {
        use std::os::unix::ffi::OsStrExt;
        let odd = std::ffi::OsStr::from_bytes(b"/r/run-\xff/report.html");
        let e = relative(Path::new("/r"), Path::new(odd)).unwrap_err();
        assert!(e.contains("not UTF-8"), "{e}");
    }
}
