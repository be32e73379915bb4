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

/// The run clock's origin as ms since the Unix epoch, from `started_at`
/// (RFC 3339); `None` for a run that did not record it.
pub(super) fn epoch_ms(started_at: &str) -> Option<i64> {
    let t = humantime::parse_rfc3339(started_at).ok()?;
    let d = t.duration_since(std::time::UNIX_EPOCH).ok()?;
    i64::try_from(d.as_millis()).ok()
}

/// The UTC wall clock `t_s` run-clock seconds after an origin of
/// `origin_ms` epoch ms: `13:21:17`, or `13:21:17.5` with `decimals`.
/// (The page's script formats its zoomed ticks the same way.)
pub(super) fn wall_label(origin_ms: i64, t_s: f64, decimals: usize) -> String {
    // Rounded to what is shown first, so 59.96 s with one decimal reads
    // as the next minute's 00.0, never as 60.0.
    let unit = 10i64.pow(3 - decimals.min(3) as u32);
    let ms =
        ((origin_ms + (t_s * 1000.0).round() as i64) as f64 / unit as f64).round() as i64 * unit;
    let day_ms = ms.rem_euclid(86_400_000);
    let (h, m) = (day_ms / 3_600_000, day_ms / 60_000 % 60);
    let s = (day_ms % 60_000) as f64 / 1000.0;
    if decimals == 0 {
        format!("{h:02}:{m:02}:{:02}", s.floor() as i64)
    } else {
        let width = 3 + decimals;
        format!("{h:02}:{m:02}:{s:0width$.decimals$}")
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wall_labels_are_utc_time_of_day_after_the_origin() {
        let origin = epoch_ms("2026-11-29T13:21:11.948Z").unwrap();
        // To the nearest second shown (11.948 s reads as 12).
        assert_eq!(wall_label(origin, 0.0, 0), "13:21:12");
        assert_eq!(wall_label(origin, 5.59, 0), "13:21:18");
        assert_eq!(wall_label(origin, 5.59, 1), "13:21:17.5");
        assert_eq!(wall_label(origin, 0.052, 2), "13:21:12.00");
        // Rounding carries into the minute rather than showing 60.
        assert_eq!(wall_label(origin, 59.0 - 11.948 + 0.96, 1), "13:22:00.0");
        // Past midnight the clock starts again.
        assert_eq!(wall_label(origin, 11.0 * 3600.0, 0), "00:21:12");
    }

    #[test]
    fn a_run_without_a_start_time_has_no_wall_clock() {
        assert_eq!(epoch_ms(""), None);
        assert_eq!(epoch_ms("yesterday"), None);
    }
}
