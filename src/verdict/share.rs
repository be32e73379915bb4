//! The `version_share` threshold: after a step that sets a canary's
//! weight (or its replica ratio), the share of responses a version gave,
//! judged over that step's window against the weight, within a tolerance.
//!
//! A step's window opens when the step ended plus `settle` (the time a
//! controller takes to apply it: ingress-nginx reconfigures within about
//! a second) and closes when the next step that changes the cluster
//! starts (not `sleep` or a wait), or when the load ends. The share is
//! over responses that named a version (`target.version_from`); failures
//! and responses without one are not counted either way.
//!
//! Pure: the windows and their counts in, the threshold lines out. Not
//! for: finding the windows' requests (`analyse`) or the steps' times
//! (`run`).

use super::run::ThresholdResult;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

/// Fewer answers than this in a window cannot show a share to within a
/// few percent: the threshold fails, asking for a longer window.
pub const MIN_ANSWERS: u64 = 100;

/// A fraction 0–1, written `10%` or `0.1` in a profile.
#[derive(Clone, Copy, Debug, PartialEq, PartialOrd, Default)]
pub struct Fraction(pub f64);

impl fmt::Display for Fraction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let pct = self.0 * 100.0;
        if (pct - pct.round()).abs() < 1e-9 {
            write!(f, "{}%", pct.round())
        } else {
            write!(f, "{pct:.1}%")
        }
    }
}

impl Serialize for Fraction {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

impl<'de> Deserialize<'de> for Fraction {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Number(f64),
            Text(String),
        }
        let bad = |what: &str| {
            serde::de::Error::custom(format!(
                "{what} is not a share: write a percentage (10%) or a fraction (0.1)"
            ))
        };
        let v = match Raw::deserialize(d)? {
            Raw::Number(n) => n,
            Raw::Text(t) => match t.trim().strip_suffix('%') {
                Some(p) => p.trim().parse::<f64>().map_err(|_| bad(&t))? / 100.0,
                None => t.trim().parse::<f64>().map_err(|_| bad(&t))?,
            },
        };
        if !(0.0..=1.0).contains(&v) {
            return Err(bad(&v.to_string()));
        }
        Ok(Fraction(v))
    }
}

fn default_tolerance() -> Fraction {
    Fraction(0.05)
}

fn default_settle() -> Duration {
    Duration::from_secs(1)
}

/// `{step: 2, version: v2, share: 10%, tolerance: 3%}` in a profile's
/// `thresholds.version_share`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VersionShare {
    /// The rollout step (1-based) whose window is judged.
    pub step: usize,
    pub version: String,
    pub share: Fraction,
    /// How far the measured share may be from `share` (default 5%).
    #[serde(default = "default_tolerance")]
    pub tolerance: Fraction,
    /// Not counted after the step ended (default 1 s).
    #[serde(default = "default_settle", with = "humantime_serde")]
    pub settle: Duration,
}

/// What the run measured in one share's window.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ShareWindow {
    /// Run clock, ns; `None` when the step did not run (or did not end).
    pub from_ns: Option<u64>,
    pub to_ns: Option<u64>,
    /// Answers per version in the window.
    pub versions: BTreeMap<String, u64>,
}

/// One rollout step as the windows need it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StepSpan {
    /// 1-based.
    pub index: usize,
    pub started_ns: u64,
    /// `None` when it did not end well (failed, cancelled).
    pub ended_ns: Option<u64>,
    /// It changes the cluster (not `sleep` or a wait): it closes the
    /// window of the step before.
    pub changes: bool,
}

/// The window of `share`: from its step's end plus `settle` to the start
/// of the next step that changes the cluster (`None`: the load's end).
/// `(None, None)` when its step did not run to its end.
pub fn window_of(share: &VersionShare, steps: &[StepSpan]) -> (Option<u64>, Option<u64>) {
    let Some(ended) = steps
        .iter()
        .find(|s| s.index == share.step)
        .and_then(|s| s.ended_ns)
    else {
        return (None, None);
    };
    let to = steps
        .iter()
        .filter(|s| s.index > share.step && s.changes)
        .map(|s| s.started_ns)
        .min();
    let from = ended + share.settle.as_nanos() as u64;
    (Some(to.map_or(from, |t| from.min(t))), to)
}

/// One `version_share` threshold as measured, for `summary.json` and the
/// report's versions panel (the target band over the window).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ShareFigure {
    pub step: usize,
    pub version: String,
    /// The target and tolerance, as fractions.
    pub share: f64,
    pub tolerance: f64,
    /// The window on the run clock; `None` when the step did not end.
    pub from_ms: Option<f64>,
    /// `None`: open until the load ended.
    pub to_ms: Option<f64>,
    /// Answers with a version in the window, and the version's share.
    pub answers: u64,
    pub measured: Option<f64>,
    pub pass: bool,
}

/// The figures of every share, in order (as [`judge`] judges them).
pub fn figures(shares: &[VersionShare], windows: &[ShareWindow]) -> Vec<ShareFigure> {
    let ms = |ns: u64| ns as f64 / 1e6;
    shares
        .iter()
        .zip(windows)
        .map(|(s, w)| {
            let answers: u64 = w.versions.values().sum();
            ShareFigure {
                step: s.step,
                version: s.version.clone(),
                share: s.share.0,
                tolerance: s.tolerance.0,
                from_ms: w.from_ns.map(ms),
                to_ms: w.to_ns.map(ms),
                answers,
                measured: (answers > 0).then(|| {
                    w.versions.get(&s.version).copied().unwrap_or(0) as f64 / answers as f64
                }),
                pass: one(s, w).pass,
            }
        })
        .collect()
}

/// One threshold line per share, each with its window.
pub fn judge(shares: &[VersionShare], windows: &[ShareWindow]) -> Vec<ThresholdResult> {
    shares.iter().zip(windows).map(|(s, w)| one(s, w)).collect()
}

fn one(s: &VersionShare, w: &ShareWindow) -> ThresholdResult {
    let name = format!("version_share step {}", s.step);
    let limit = format!("{} {} ± {}", s.version, s.share, s.tolerance);
    let fail = |value: String| ThresholdResult {
        name: name.clone(),
        limit: limit.clone(),
        value,
        pass: false,
    };
    let Some(from) = w.from_ns else {
        return fail(format!("step {} did not run to its end", s.step));
    };
    let total: u64 = w.versions.values().sum();
    let span = match w.to_ns {
        Some(to) => format!("{:.1}–{:.1} s", from as f64 / 1e9, to as f64 / 1e9),
        None => format!("from {:.1} s", from as f64 / 1e9),
    };
    if total < MIN_ANSWERS {
        return fail(format!(
            "{total} answer(s) with a version in {span}, fewer than {MIN_ANSWERS}: \
             lengthen the wait after step {} or raise load.rate",
            s.step
        ));
    }
    let got = w.versions.get(&s.version).copied().unwrap_or(0);
    let share = got as f64 / total as f64;
    // A hair of slack so that 13.0% against 10% ± 3% passes despite
    // floating point.
    let pass = (share - s.share.0).abs() <= s.tolerance.0 + 1e-9;
    ThresholdResult {
        name,
        limit,
        value: format!("{} ({got} of {total} answers in {span})", Fraction(share)),
        pass,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn share(text: &str) -> VersionShare {
        serde_norway::from_str(text).unwrap()
    }

    fn window(v2: u64, v1: u64) -> ShareWindow {
        ShareWindow {
            from_ns: Some(5_000_000_000),
            to_ns: Some(25_000_000_000),
            versions: [("v1".to_string(), v1), ("v2".to_string(), v2)].into(),
        }
    }

    #[test]
    fn shares_are_read_as_percentages_or_fractions_and_out_of_range_is_refused() {
        let s = share("{step: 1, version: v2, share: 10%, tolerance: 3%}");
        assert_eq!((s.share, s.tolerance), (Fraction(0.1), Fraction(0.03)));
        assert_eq!(s.settle, Duration::from_secs(1));
        let s = share("{step: 1, version: v2, share: 0.5}");
        assert_eq!((s.share, s.tolerance), (Fraction(0.5), Fraction(0.05)));
        let e = serde_norway::from_str::<VersionShare>("{step: 1, version: v2, share: 110%}")
            .unwrap_err()
            .to_string();
        assert!(e.contains("is not a share"), "{e}");
        assert!(
            serde_norway::from_str::<VersionShare>("{step: 1, version: v2, share: ten}").is_err()
        );
    }

    #[test]
    fn a_share_within_the_tolerance_passes_and_one_outside_fails_with_the_counts() {
        let s = share("{step: 2, version: v2, share: 10%, tolerance: 3%}");
        let ok = judge(std::slice::from_ref(&s), &[window(120, 880)]);
        assert!(ok[0].pass, "{:?}", ok[0]);
        assert_eq!(ok[0].name, "version_share step 2");
        assert_eq!(ok[0].limit, "v2 10% ± 3%");
        assert_eq!(ok[0].value, "12% (120 of 1000 answers in 5.0–25.0 s)");
        let edge = judge(std::slice::from_ref(&s), &[window(130, 870)]);
        assert!(edge[0].pass, "13% is inside 10% ± 3%");
        let off = judge(std::slice::from_ref(&s), &[window(200, 800)]);
        assert!(!off[0].pass);
    }

    #[test]
    fn too_few_answers_or_a_step_that_never_ended_cannot_pass() {
        let s = share("{step: 2, version: v2, share: 10%}");
        let few = judge(std::slice::from_ref(&s), &[window(5, 45)]);
        assert!(!few[0].pass);
        assert!(few[0].value.contains("fewer than 100"), "{}", few[0].value);
        let never = judge(std::slice::from_ref(&s), &[ShareWindow::default()]);
        assert!(!never[0].pass);
        assert!(never[0].value.contains("did not run"), "{}", never[0].value);
    }

    #[test]
    fn a_window_runs_from_the_steps_end_past_waits_to_the_next_change() {
        let s = share("{step: 1, version: v2, share: 10%, settle: 500ms}");
        let span = |index, started_ns, ended_ns, changes| StepSpan {
            index,
            started_ns,
            ended_ns,
            changes,
        };
        let steps = [
            span(1, 1_000, Some(2_000), true),
            span(2, 2_000, Some(20_000_000_000), false),
            span(3, 20_000_000_000, Some(20_100_000_000), true),
        ];
        assert_eq!(
            window_of(&s, &steps),
            (Some(500_002_000), Some(20_000_000_000))
        );
        let last = share("{step: 3, version: v2, share: 10%, settle: 0s}");
        assert_eq!(window_of(&last, &steps), (Some(20_100_000_000), None));
        let failed = [span(1, 1_000, None, true)];
        assert_eq!(window_of(&s, &failed), (None, None));
    }

    #[test]
    fn a_version_that_never_answered_has_a_share_of_zero() {
        let s = share("{step: 1, version: v2, share: 0%, tolerance: 1%}");
        let w = ShareWindow {
            versions: [("v1".to_string(), 500)].into(),
            ..window(0, 0)
        };
        assert!(judge(std::slice::from_ref(&s), &[w])[0].pass);
    }
}
