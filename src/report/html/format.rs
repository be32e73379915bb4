//! Numbers and strings as the report prints them: rounded coordinates,
//! seconds, cut labels, a failure's outcome and candidates in words.

use crate::attribution::{Attribution, FailedRequest};

/// Round to two decimals (enough for SVG user units), without `-0`.
pub(super) fn r2(v: f64) -> f64 {
    (v * 100.0).round() / 100.0 + 0.0
}

pub(super) fn secs(ns: u64) -> String {
    format!("{:.3}", ns as f64 / 1e9)
}

/// Seconds, with three decimals, from milliseconds.
pub(super) fn ms_to_s(ms: f64) -> String {
    format!("{:.3}", ms / 1000.0)
}

/// `s` cut to its last `n` characters behind an ellipsis.
pub(super) fn keep_end(s: &str, n: usize) -> String {
    let len = s.chars().count();
    if len <= n {
        return s.to_string();
    }
    let tail: String = s.chars().skip(len - (n - 1)).collect();
    format!("…{tail}")
}

/// `s` cut to its first `n` characters before an ellipsis.
pub(super) fn keep_start(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        return s.to_string();
    }
    let head: String = s.chars().take(n - 1).collect();
    format!("{head}…")
}

pub(super) fn candidates_text(a: &Attribution) -> String {
    a.candidates
        .iter()
        .map(|c| format!("{} ({})", c.pod, c.state))
        .collect::<Vec<_>>()
        .join("; ")
}

pub(super) fn outcome_text(f: &FailedRequest) -> String {
    match f.phase.as_str() {
        "" => f.outcome.as_str().to_string(),
        p => format!("{} ({p})", f.outcome.as_str()),
    }
}
