//! How baton's attribution scores against the referee, scenario by
//! scenario and cause by cause, and the bars it must meet (issue 10):
//! no wrong verdict, the dominant cause right in every scenario, at least
//! 95 % of failures with the right cause, at least 95 % of `high` right,
//! the true Pod first among the candidates in at least 90 % of failures.
//! And one of its own: where baton was sure (`high`: one Pod), that Pod
//! is the true one, so that a Pod-first figure below the bar is the
//! `medium` ties (several Pods that refuse alike), not wrong certainty.
//! Beside the Pod figure, what a fair guess among the Pods failing alike
//! attains ([`super::referee::Referee::alike`]): the ceiling of any
//! attribution from the client's side.
//!
//! Pure: the runs come in as data, a Markdown table goes out.

use super::referee::{Truth, UNKNOWN};
use std::collections::BTreeMap;
use std::fmt::Write;

/// One failed request: what baton said, what really happened.
pub use super::referee::Judged as Failure;

/// One scenario's run.
#[derive(Clone, Debug)]
pub struct Run {
    pub name: String,
    pub expected_verdict: String,
    pub verdict: String,
    /// What the scenario is built to show (checked against the referee).
    pub expected_dominant: Option<String>,
    pub failures: Vec<Failure>,
}

/// A bar, whether it was met, and the figure; and, for a bar not met
/// yet, the floor the suite holds meanwhile (so that what was won is not
/// lost) and whether the figure is above it.
#[derive(Clone, Debug)]
pub struct Bar {
    pub name: &'static str,
    pub met: bool,
    pub figure: String,
    pub floor: &'static str,
    pub floor_met: bool,
}

/// How close, as a share of the known failures, a second cause may come
/// to the most frequent one and count as dominant with it.
pub const NEAR_TIE: f64 = 0.10;

/// The most frequent of `causes` (ties: the first by name).
pub fn dominant<'a>(causes: impl Iterator<Item = &'a str>) -> Option<String> {
    let mut n: BTreeMap<&str, usize> = BTreeMap::new();
    for c in causes {
        *n.entry(c).or_default() += 1;
    }
    let best = n.values().copied().max()?;
    n.into_iter()
        .find(|(_, k)| *k == best)
        .map(|(c, _)| c.to_string())
}

impl Run {
    fn known(&self) -> impl Iterator<Item = &Failure> {
        self.failures.iter().filter(|f| f.truth.cause != UNKNOWN)
    }

    pub fn truth_dominant(&self) -> Option<String> {
        dominant(self.known().map(|f| f.truth.cause))
    }

    pub fn baton_dominant(&self) -> Option<String> {
        dominant(self.known().map(|f| f.cause.as_str()))
    }

    fn verdict_right(&self) -> bool {
        self.verdict == self.expected_verdict
    }

    /// The referee's dominant causes: the most frequent, and any other
    /// within [`NEAR_TIE`] of the known failures of it. A near tie is a
    /// scenario with no single dominant cause (`lag-and-premature`: old
    /// Pods lagging and new ones not listening, refusing alike), where
    /// which of the two leads is the random pick's coin flip.
    pub fn truth_dominants(&self) -> Vec<String> {
        let mut n: BTreeMap<&str, usize> = BTreeMap::new();
        for f in self.known() {
            *n.entry(f.truth.cause).or_default() += 1;
        }
        let known: usize = n.values().sum();
        let Some(best) = n.values().copied().max() else {
            return Vec::new();
        };
        let margin = (NEAR_TIE * known as f64).floor() as usize;
        n.into_iter()
            .filter(|(_, k)| k + margin >= best)
            .map(|(c, _)| c.to_string())
            .collect()
    }

    /// Baton's dominant cause is the referee's, or one of a near tie.
    fn dominant_right(&self) -> bool {
        match self.baton_dominant() {
            None => self.truth_dominant().is_none(),
            Some(b) => self.truth_dominants().contains(&b),
        }
    }
}

/// Counts over any set of failures.
#[derive(Clone, Copy, Debug, Default)]
struct Counts {
    failures: usize,
    unknown: usize,
    right: usize,
    high: usize,
    high_right: usize,
    /// Failures whose true cause names a Pod.
    with_pod: usize,
    pod_first: usize,
    /// What a fair guess among the Pods failing alike would have ranked
    /// first ([`Failure::alike`]): the sum of `1/alike`.
    attainable: f64,
    /// Of those, the ones baton was sure of (`high`).
    sure_with_pod: usize,
    sure_pod_first: usize,
}

impl Counts {
    fn of<'a>(fs: impl Iterator<Item = &'a Failure>) -> Counts {
        let mut c = Counts::default();
        for f in fs {
            c.failures += 1;
            if f.truth.cause == UNKNOWN {
                c.unknown += 1;
                continue;
            }
            let right = f.right_cause();
            c.right += right as usize;
            if f.confidence == "high" {
                c.high += 1;
                c.high_right += right as usize;
            }
            if f.truth.pod.is_some() {
                c.with_pod += 1;
                c.pod_first += usize::from(f.pod_first());
                c.attainable += 1.0 / f.alike.max(1) as f64;
                if f.confidence == "high" {
                    c.sure_with_pod += 1;
                    c.sure_pod_first += usize::from(f.pod_first());
                }
            }
        }
        c
    }

    fn known(&self) -> usize {
        self.failures - self.unknown
    }
}

fn pct(n: usize, of: usize) -> String {
    if of == 0 {
        "–".into()
    } else {
        format!("{:.1} % ({n}/{of})", 100.0 * n as f64 / of as f64)
    }
}

/// The Pod-first figure and, beside it, what a fair guess among Pods
/// failing alike attains.
fn pod_first(c: &Counts) -> String {
    if c.with_pod == 0 {
        return "–".into();
    }
    format!(
        "{}; attainable {:.1} %",
        pct(c.pod_first, c.with_pod),
        100.0 * c.attainable / c.with_pod as f64
    )
}

fn share(n: usize, of: usize) -> f64 {
    if of == 0 { 1.0 } else { n as f64 / of as f64 }
}

/// Every bar, in the order.
pub fn bars(runs: &[Run]) -> Vec<Bar> {
    let all = Counts::of(runs.iter().flat_map(|r| &r.failures));
    let verdicts = runs.iter().filter(|r| r.verdict_right()).count();
    let dominants = runs.iter().filter(|r| r.dominant_right()).count();
    let right = share(all.right, all.known());
    let high = share(all.high_right, all.high);
    let first = share(all.pod_first, all.with_pod);
    let attainable = if all.with_pod == 0 {
        1.0
    } else {
        all.attainable / all.with_pod as f64
    };
    let sure_first = share(all.sure_pod_first, all.sure_with_pod);
    let unjudged = share(all.unknown, all.failures);
    vec![
        Bar {
            name: "no false PASS or FAIL",
            met: verdicts == runs.len(),
            figure: format!("{verdicts}/{} verdicts right", runs.len()),
            floor: "the bar",
            floor_met: verdicts == runs.len(),
        },
        Bar {
            name: "dominant cause right in every scenario",
            met: dominants == runs.len(),
            figure: format!("{dominants}/{}", runs.len()),
            floor: "the bar",
            floor_met: dominants == runs.len(),
        },
        Bar {
            name: "≥ 95 % of failures with the right cause",
            met: right >= 0.95,
            figure: pct(all.right, all.known()),
            // Met at 95.6–96.4 % (2026-11-29); a 2-core CI machine under
            // load measures the proxies' lag less tightly, so the suite
            // holds it at 93 % rather than fail on noise.
            floor: "≥ 93 %",
            floor_met: right >= 0.93,
        },
        Bar {
            name: "≥ 95 % of `high` right",
            met: high >= 0.95,
            figure: pct(all.high_right, all.high),
            floor: "the bar",
            floor_met: high >= 0.95,
        },
        Bar {
            name: "the true Pod first among candidates in ≥ 90 %",
            met: first >= 0.90,
            figure: pod_first(&all),
            // 74.4–75.5 % on 2026-12-01, and no higher on these scenarios:
            // the rest are ties among Pods that refuse alike (README, "How
            // right is the diagnosis"), each `medium`, where a fair guess
            // attains about 75 %: held at 72 %, and at 90 % of what a
            // fair guess attains on the day's runs.
            floor: "≥ 72 % and ≥ 90 % of the attainable",
            floor_met: first >= 0.72 && first >= 0.90 * attainable,
        },
        Bar {
            name: "≤ 5 % of failures the referee cannot judge",
            met: unjudged <= 0.05,
            figure: pct(all.unknown, all.failures),
            floor: "the bar",
            floor_met: unjudged <= 0.05,
        },
        Bar {
            name: "the true Pod first where baton named one (`high`) in ≥ 95 %",
            met: sure_first >= 0.95,
            figure: pct(all.sure_pod_first, all.sure_with_pod),
            floor: "the bar",
            floor_met: sure_first >= 0.95,
        },
    ]
}

/// The whole report: per scenario, per cause, the bars.
pub fn table(runs: &[Run]) -> String {
    let mut s = String::new();
    s.push_str("| scenario | verdict (expected) | failures | right cause | dominant: baton / truth | `high` right | true Pod first |\n");
    s.push_str("|---|---|---|---|---|---|---|\n");
    for r in runs {
        let c = Counts::of(r.failures.iter());
        let mark = |ok: bool| if ok { "" } else { " ✗" };
        let _ = writeln!(
            s,
            "| {} | {} ({}){} | {}{} | {} | {} / {}{} | {} | {} |",
            r.name,
            r.verdict,
            r.expected_verdict,
            mark(r.verdict_right()),
            c.failures,
            if c.unknown > 0 {
                format!(" ({} unjudged)", c.unknown)
            } else {
                String::new()
            },
            pct(c.right, c.known()),
            r.baton_dominant().unwrap_or_else(|| "–".into()),
            match r.truth_dominants().as_slice() {
                [] => "–".to_string(),
                ds => ds.join(" ≈ "),
            },
            mark(r.dominant_right()),
            pct(c.high_right, c.high),
            pod_first(&c),
        );
    }
    s.push_str("\n| cause | by baton | by the referee | both | precision | recall |\n");
    s.push_str("|---|---|---|---|---|---|\n");
    let known: Vec<&Failure> = runs
        .iter()
        .flat_map(|r| &r.failures)
        .filter(|f| f.truth.cause != UNKNOWN)
        .collect();
    let mut causes: Vec<&str> = known
        .iter()
        .flat_map(|f| [f.cause.as_str(), f.truth.cause])
        .collect();
    causes.sort();
    causes.dedup();
    for cause in causes {
        let by_baton = known.iter().filter(|f| f.cause == cause).count();
        let by_truth = known.iter().filter(|f| f.truth.cause == cause).count();
        let both = known
            .iter()
            .filter(|f| f.cause == cause && f.truth.cause == cause)
            .count();
        let _ = writeln!(
            s,
            "| {cause} | {by_baton} | {by_truth} | {both} | {} | {} |",
            pct(both, by_baton),
            pct(both, by_truth)
        );
    }
    s.push_str("\n| scenario | baton said | the referee said | failures |\n|---|---|---|---|\n");
    for r in runs {
        let mut wrong: BTreeMap<(&str, &str), usize> = BTreeMap::new();
        for f in r.known().filter(|f| f.cause != f.truth.cause) {
            *wrong.entry((f.cause.as_str(), f.truth.cause)).or_default() += 1;
        }
        for ((said, truth), n) in wrong {
            let _ = writeln!(s, "| {} | {said} | {truth} | {n} |", r.name);
        }
    }
    s.push_str("\n| bar | met | figure | held meanwhile |\n|---|---|---|---|\n");
    for b in bars(runs) {
        let _ = writeln!(
            s,
            "| {} | {} | {} | {}{} |",
            b.name,
            if b.met { "yes" } else { "**no**" },
            b.figure,
            b.floor,
            if b.floor_met { "" } else { " ✗" }
        );
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(
        cause: &str,
        confidence: &str,
        candidates: &[&str],
        truth: &'static str,
        pod: Option<&str>,
    ) -> Failure {
        Failure {
            cause: cause.into(),
            confidence: confidence.into(),
            candidates: candidates.iter().map(|s| s.to_string()).collect(),
            truth: Truth {
                cause: truth,
                pod: pod.map(String::from),
            },
            alike: 1,
        }
    }

    fn run(failures: Vec<Failure>) -> Run {
        Run {
            name: "s".into(),
            expected_verdict: "fail".into(),
            verdict: "fail".into(),
            expected_dominant: None,
            failures,
        }
    }

    #[test]
    fn a_near_tie_has_no_single_dominant_cause_but_a_clear_lead_does() {
        let lag = |truth| {
            f(
                "endpoint_lag_on_termination",
                "low",
                &["a"],
                truth,
                Some("a"),
            )
        };
        // The referee: 52 premature, 48 lag (4 % apart); baton: all lag.
        let mut fs: Vec<Failure> = (0..52).map(|_| lag("premature_readiness")).collect();
        fs.extend((0..48).map(|_| lag("endpoint_lag_on_termination")));
        let r = run(fs.clone());
        assert_eq!(
            r.truth_dominants(),
            vec!["endpoint_lag_on_termination", "premature_readiness"]
        );
        assert!(r.dominant_right(), "baton named one of a near tie");
        // 62 to 38 (24 % apart) is a lead: naming the runner-up is wrong.
        let mut fs: Vec<Failure> = (0..62).map(|_| lag("premature_readiness")).collect();
        fs.extend((0..38).map(|_| lag("endpoint_lag_on_termination")));
        let r = run(fs);
        assert_eq!(r.truth_dominants(), vec!["premature_readiness"]);
        assert!(
            !r.dominant_right(),
            "baton named the runner-up of a clear lead"
        );
    }

    #[test]
    fn a_blame_everyone_attribution_misses_the_pod_bar() {
        // Right cause, but the true Pod is second each time.
        let fs = (0..10)
            .map(|_| {
                f(
                    "endpoint_lag_on_termination",
                    "high",
                    &["a", "b"],
                    "endpoint_lag_on_termination",
                    Some("b"),
                )
            })
            .collect();
        let b = bars(&[run(fs)]);
        assert!(b[2].met && b[3].met, "{b:?}");
        assert!(!b[4].met && !b[4].floor_met, "{b:?}");
        // Sure of the wrong Pod: the `high` Pod bar fails too.
        assert!(!b[6].met && !b[6].floor_met, "{b:?}");
    }

    #[test]
    fn ties_named_medium_miss_the_pod_bar_but_not_the_sure_pod_bar() {
        // One sure and right; three ties among three Pods, one guessed right.
        let mut fs = vec![f(
            "premature_readiness",
            "high",
            &["a"],
            "premature_readiness",
            Some("a"),
        )];
        for truth in ["a", "b", "c"] {
            fs.push(f(
                "premature_readiness",
                "medium",
                &["a", "b", "c"],
                "premature_readiness",
                Some(truth),
            ));
        }
        for tie in &mut fs[1..] {
            tie.alike = 3;
        }
        let b = bars(&[run(fs)]);
        assert!(!b[4].met, "{b:?}");
        assert!(b[6].met && b[6].floor_met, "{b:?}");
        // One sure, three one-in-three guesses: a fair guess attains half.
        assert_eq!(b[4].figure, "50.0 % (2/4); attainable 50.0 %");
    }

    #[test]
    fn a_pod_first_figure_well_below_what_a_fair_guess_attains_misses_the_floor() {
        // Every failure's Pod could be told apart (alike 1), yet 20 of 100
        // put another Pod first: above 72 %, below 90 % of the attainable.
        let fs = (0..100)
            .map(|i| {
                let cands: &[&str] = if i < 20 { &["b", "a"] } else { &["a", "b"] };
                f(
                    "endpoint_lag_on_termination",
                    "medium",
                    cands,
                    "endpoint_lag_on_termination",
                    Some("a"),
                )
            })
            .collect();
        let b = bars(&[run(fs)]);
        assert_eq!(b[4].figure, "80.0 % (80/100); attainable 100.0 %");
        assert!(!b[4].met && !b[4].floor_met, "{b:?}");
    }

    #[test]
    fn confident_wrong_causes_miss_the_cause_and_high_bars_and_the_dominant() {
        let mut fs: Vec<Failure> = (0..6)
            .map(|_| {
                f(
                    "no_ready_endpoints",
                    "high",
                    &[],
                    "container_crash",
                    Some("p"),
                )
            })
            .collect();
        fs.extend((0..4).map(|_| {
            f(
                "container_crash",
                "low",
                &["p"],
                "container_crash",
                Some("p"),
            )
        }));
        let b = bars(&[run(fs)]);
        assert!(!b[1].met && !b[2].met && !b[3].met, "{b:?}");
        assert!(
            !b[1].floor_met && !b[2].floor_met && !b[3].floor_met,
            "{b:?}"
        );
    }

    #[test]
    fn a_wrong_verdict_misses_the_first_bar_and_unjudged_failures_are_counted() {
        let mut r = run(vec![f("unexplained", "low", &[], UNKNOWN, None)]);
        r.verdict = "pass".into();
        let b = bars(&[r]);
        assert!(!b[0].met && !b[5].met, "{b:?}");
        assert!(!b[0].floor_met && !b[5].floor_met, "{b:?}");
    }
}
