//! Judges a `baton run`: every threshold of the profile with its limit and
//! measured value, plus the conditions that make a run invalid (baton
//! could not measure faithfully) or failed regardless of thresholds (the
//! rollout did not complete).
//!
//! Pure: the measured facts in, the judgement out.

use super::Verdict;
use super::schedule::{self, ScheduleFacts, ScheduleFigures, ScheduleLimits};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::time::Duration;

/// What a run measured, as the judgement needs it.
#[derive(Clone, Debug, Default)]
pub struct RunFacts {
    pub sent: u64,
    pub rows_written: u64,
    pub failed: u64,
    pub client_resource: u64,
    /// p99 response time: successful requests from their scheduled
    /// instant, in ms (what a user waiting on the schedule saw).
    pub p99_ms: Option<f64>,
    /// p99 latency: the same requests from their actual start, in ms (the
    /// target's share, without the load host's own lateness).
    pub latency_p99_ms: Option<f64>,
    pub longest_disruption: Option<Duration>,
    /// Responses per version before the first step.
    pub versions_before: BTreeMap<String, u64>,
    /// Responses per version after the rollout settled.
    pub versions_after: BTreeMap<String, u64>,
    /// Distinct Pods that answered after the rollout settled.
    pub backends_after: u64,
    /// `None` when the rollout completed; else why not (failed step,
    /// stall, deadline, interrupted).
    pub rollout_incomplete: Option<String>,
    /// The longest time a watch saw nothing.
    pub longest_blind_spot: Duration,
    /// Still blind when the run ended: which watch (or `api`), and for
    /// how long by then.
    pub blind_at_end: Option<(String, Duration)>,
    /// Stopped (Ctrl-C, SIGTERM) before the run ended.
    pub interrupted: bool,
    /// How the load went against its plan.
    pub schedule: ScheduleFacts,
    /// The target Deployment's ReplicaSets with replicas wanted when the
    /// run ended, `name (replicas)`, from `cluster/replicasets.after.yaml`;
    /// `None` when that was not recorded.
    pub active_replicasets: Option<Vec<String>>,
    /// The load was pinned to some of the Pods by the Service's session
    /// affinity: why (see [`super::affinity`]).
    pub pinned_by_affinity: Option<String>,
    /// Per `version_share` threshold, in its order: its window.
    pub share_windows: Vec<super::share::ShareWindow>,
    /// In-cluster load workers whose records did not all arrive: which,
    /// how many did, and why.
    pub workers_lost: Vec<String>,
    /// In-cluster load workers that did not keep their share of the
    /// schedule within the bounds one host is held to: which, and how.
    pub workers_behind: Vec<String>,
}

/// The profile's limits (see `profile::Thresholds`).
#[derive(Clone, Debug, Default)]
pub struct Limits {
    pub max_failed: Option<u64>,
    pub max_error_rate: Option<f64>,
    pub p99_latency: Option<Duration>,
    pub max_disruption: Option<Duration>,
    pub initial_version: Option<String>,
    pub final_version: Option<String>,
    pub min_backends: Option<u64>,
    pub max_blind_spot: Duration,
    /// A rollout that did not complete fails the run (default). A profile
    /// about stall handling turns it off.
    pub rollout_must_complete: bool,
    /// Exactly one ReplicaSet of the Deployment wants replicas when the
    /// run ends: the old ones were scaled away (the zero-downtime guides'
    /// last check).
    pub single_replicaset: bool,
    /// Session affinity that pinned the load to some of the Pods fails the
    /// run (otherwise it is a warning).
    pub fail_on_pinned_affinity: bool,
    pub version_share: Vec<super::share::VersionShare>,
    pub schedule: ScheduleLimits,
}

/// One threshold's line in the summary and one JUnit test case.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ThresholdResult {
    pub name: String,
    pub limit: String,
    pub value: String,
    pub pass: bool,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Judgement {
    pub verdict: Verdict,
    /// The reason for the verdict, in one line.
    pub reason: String,
    pub thresholds: Vec<ThresholdResult>,
    /// How the load kept its schedule (see [`super::schedule`]).
    pub schedule: Option<ScheduleFigures>,
}

fn ms(d: Duration) -> String {
    format!("{} ms", d.as_millis())
}

/// "Every response in this window came from `want`."
fn only_version(
    name: &'static str,
    want: &str,
    seen: &BTreeMap<String, u64>,
    if_none: &str,
) -> ThresholdResult {
    let total: u64 = seen.values().sum();
    let others: u64 = seen
        .iter()
        .filter(|(v, _)| v.as_str() != want)
        .map(|(_, n)| n)
        .sum();
    let value = if total == 0 {
        if_none.to_string()
    } else {
        seen.iter()
            .map(|(v, n)| format!("{v}: {n}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    ThresholdResult {
        name: name.to_string(),
        limit: want.to_string(),
        value,
        pass: total > 0 && others == 0,
    }
}

pub fn judge_run(f: &RunFacts, l: &Limits) -> Judgement {
    let mut t = Vec::new();
    if let Some(max) = l.max_failed {
        t.push(ThresholdResult {
            name: "max_failed".into(),
            limit: max.to_string(),
            value: f.failed.to_string(),
            pass: f.failed <= max,
        });
    }
    if let Some(max) = l.max_error_rate {
        let rate = if f.sent == 0 {
            0.0
        } else {
            f.failed as f64 / f.sent as f64
        };
        t.push(ThresholdResult {
            name: "max_error_rate".into(),
            limit: format!("{max}"),
            value: format!("{rate:.6}"),
            pass: rate <= max,
        });
    }
    // Over the limit only because the load host started requests late:
    // not the target's doing, so it cannot fail the run on its own.
    let mut p99_by_lateness = None;
    if let Some(max) = l.p99_latency {
        let limit_ms = max.as_secs_f64() * 1000.0;
        let pass = f.p99_ms.is_some_and(|v| v <= limit_ms);
        let mut value = f
            .p99_ms
            .map_or("no successful request".into(), |v| format!("{v:.1} ms"));
        if let (false, Some(resp), Some(lat)) = (pass, f.p99_ms, f.latency_p99_ms)
            && lat <= limit_ms
        {
            value.push_str(&format!(
                " (latency p99 {lat:.1} ms: the load host's own lateness pushed it over)"
            ));
            p99_by_lateness = Some((resp, lat));
        }
        t.push(ThresholdResult {
            name: "p99_latency".into(),
            limit: ms(max),
            value,
            pass,
        });
    }
    if let Some(max) = l.max_disruption {
        let d = f.longest_disruption.unwrap_or_default();
        t.push(ThresholdResult {
            name: "max_disruption".into(),
            limit: ms(max),
            value: if f.longest_disruption.is_some() {
                ms(d)
            } else {
                "none".into()
            },
            pass: f.longest_disruption.is_none() || d <= max,
        });
    }
    if let Some(want) = &l.initial_version {
        t.push(only_version(
            "initial_version",
            want,
            &f.versions_before,
            "no responses before the rollout began (lengthen load.warmup)",
        ));
    }
    if let Some(want) = &l.final_version {
        t.push(only_version(
            "final_version",
            want,
            &f.versions_after,
            "no responses after the rollout settled (lengthen load.cooldown)",
        ));
    }
    t.extend(super::share::judge(&l.version_share, &f.share_windows));
    if let Some(min) = l.min_backends {
        t.push(ThresholdResult {
            name: "min_backends".into(),
            limit: min.to_string(),
            value: f.backends_after.to_string(),
            pass: f.backends_after >= min,
        });
    }
    if l.single_replicaset {
        let (value, pass) = match &f.active_replicasets {
            None => (
                "not recorded (no cluster/replicasets.after.yaml)".to_string(),
                false,
            ),
            Some(v) if v.is_empty() => ("none".to_string(), false),
            Some(v) => (format!("{}: {}", v.len(), v.join(", ")), v.len() == 1),
        };
        t.push(ThresholdResult {
            name: "single_replicaset".into(),
            limit: "1 active".into(),
            value,
            pass,
        });
    }
    if l.fail_on_pinned_affinity {
        t.push(ThresholdResult {
            name: "session_affinity".into(),
            limit: "the load reaches every Pod".into(),
            value: match &f.pinned_by_affinity {
                None => "not pinned".into(),
                Some(_) => "pinned by sessionAffinity: ClientIP".into(),
            },
            pass: f.pinned_by_affinity.is_none(),
        });
    }
    if l.rollout_must_complete {
        t.push(ThresholdResult {
            name: "rollout_completed".into(),
            limit: "yes".into(),
            value: f
                .rollout_incomplete
                .clone()
                .map_or("yes".into(), |why| format!("no: {why}")),
            pass: f.rollout_incomplete.is_none(),
        });
    }

    let (figures, unkept) = schedule::judge(&f.schedule, &l.schedule);
    // An interrupted run concludes nothing; the thresholds so far are
    // shown for information.
    if f.interrupted {
        return Judgement {
            verdict: Verdict::Interrupted,
            reason: format!(
                "interrupted before the run ended ({} of {} requests failed so far): nothing is concluded",
                f.failed, f.sent
            ),
            thresholds: t,
            schedule: figures,
        };
    }
    // Invalid outranks fail: nothing can be concluded about the target.
    let invalid = if !f.workers_lost.is_empty() {
        Some(format!(
            "records were lost: {}; the load on the target is not fully known",
            f.workers_lost.join("; ")
        ))
    } else if f.rows_written != f.sent {
        Some(format!(
            "{} requests sent but {} records written: records were lost",
            f.sent, f.rows_written
        ))
    } else if f.client_resource > 0 {
        Some(format!(
            "{} requests failed on the load host's own limits (client_resource); the target was not measured faithfully",
            f.client_resource
        ))
    } else if let Some(why) = unkept {
        Some(why)
    } else if !f.workers_behind.is_empty() {
        Some(f.workers_behind.join("; "))
    } else if f.longest_blind_spot > l.max_blind_spot {
        Some(format!(
            "baton could not see the cluster for {} (a watch blind, or the API server not answering; allowed: {}): nothing in that time can be attributed",
            ms(f.longest_blind_spot),
            ms(l.max_blind_spot)
        ))
    } else if let Some((what, len)) = &f.blind_at_end {
        Some(format!(
            "baton could not see the cluster when the run ended ({what} silent for the last {}): how the rollout ended is unknown",
            ms(*len)
        ))
    } else if f.sent == 0 {
        Some("no request was sent".into())
    } else {
        None
    };
    if let Some(reason) = invalid {
        return Judgement {
            verdict: Verdict::Invalid,
            reason,
            thresholds: t,
            schedule: figures,
        };
    }
    let failing: Vec<&ThresholdResult> = t.iter().filter(|r| !r.pass).collect();
    if let (Some((resp, lat)), [only]) = (p99_by_lateness, failing.as_slice())
        && only.name == "p99_latency"
    {
        return Judgement {
            verdict: Verdict::Invalid,
            reason: format!(
                "p99 response time {resp:.1} ms is over the {} limit only because the load host \
                 started requests late (the target's latency p99, from each request's start, is \
                 {lat:.1} ms): lower the rate or give the load host more CPU",
                only.limit
            ),
            thresholds: t,
            schedule: figures,
        };
    }
    let (verdict, reason) = match failing.first() {
        None => (
            Verdict::Pass,
            format!(
                "{} of {} requests failed; every threshold held",
                f.failed, f.sent
            ),
        ),
        Some(first) => {
            let mut reason = format!("{}: {} (limit {})", first.name, first.value, first.limit);
            if failing.len() > 1 {
                reason.push_str(&format!(", and {} more threshold(s)", failing.len() - 1));
            }
            (Verdict::Fail, reason)
        }
    };
    Judgement {
        verdict,
        reason,
        thresholds: t,
        schedule: figures,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts() -> RunFacts {
        RunFacts {
            sent: 1000,
            rows_written: 1000,
            p99_ms: Some(12.0),
            versions_before: [("1.27".to_string(), 100)].into(),
            versions_after: [("1.28".to_string(), 200)].into(),
            backends_after: 3,
            ..RunFacts::default()
        }
    }

    fn limits() -> Limits {
        Limits {
            max_failed: Some(0),
            max_error_rate: Some(0.0),
            p99_latency: Some(Duration::from_millis(500)),
            max_disruption: Some(Duration::ZERO),
            initial_version: Some("1.27".into()),
            final_version: Some("1.28".into()),
            min_backends: Some(3),
            max_blind_spot: Duration::from_secs(5),
            rollout_must_complete: true,
            single_replicaset: false,
            fail_on_pinned_affinity: false,
            version_share: Vec::new(),
            schedule: ScheduleLimits::default(),
        }
    }

    #[test]
    fn a_load_that_fell_behind_its_schedule_makes_the_run_invalid() {
        let f = RunFacts {
            schedule: ScheduleFacts {
                planned_rps: Some(200.0),
                sent: 1000,
                shed: 0,
                first_start_ns: 0,
                // 1000 requests at 200/s, on the plan's rate but late.
                last_start_ns: 4_995_000_000,
                lateness_p99: Duration::from_secs(2),
            },
            ..facts()
        };
        let j = judge_run(&f, &limits());
        assert_eq!(j.verdict, Verdict::Invalid);
        assert!(j.reason.contains("late"), "{}", j.reason);
        assert!(j.schedule.is_some());
    }

    #[test]
    fn a_clean_rollout_passes_every_threshold() {
        let j = judge_run(&facts(), &limits());
        assert_eq!(j.verdict, Verdict::Pass, "{}", j.reason);
        assert_eq!(j.thresholds.len(), 8);
        assert!(j.thresholds.iter().all(|t| t.pass));
    }

    #[test]
    fn failures_fail_and_the_reason_names_the_first_broken_threshold() {
        let mut f = facts();
        f.failed = 40;
        f.longest_disruption = Some(Duration::from_millis(120));
        let j = judge_run(&f, &limits());
        assert_eq!(j.verdict, Verdict::Fail);
        assert_eq!(
            j.reason,
            "max_failed: 40 (limit 0), and 2 more threshold(s)"
        );
        let names: Vec<_> = j
            .thresholds
            .iter()
            .filter(|t| !t.pass)
            .map(|t| t.name.as_str())
            .collect();
        assert_eq!(names, ["max_failed", "max_error_rate", "max_disruption"]);
    }

    #[test]
    fn an_old_version_answering_after_the_rollout_fails_final_version() {
        let mut f = facts();
        f.versions_after.insert("1.27".into(), 3);
        let j = judge_run(&f, &limits());
        assert_eq!(j.verdict, Verdict::Fail);
        assert!(
            j.reason.starts_with("final_version: 1.27: 3, 1.28: 200"),
            "{}",
            j.reason
        );
    }

    #[test]
    fn no_responses_after_the_rollout_cannot_prove_the_final_version() {
        let mut f = facts();
        f.versions_after.clear();
        let j = judge_run(&f, &limits());
        assert_eq!(j.verdict, Verdict::Fail);
        assert!(j.reason.contains("lengthen load.cooldown"));
    }

    #[test]
    fn an_incomplete_rollout_fails_unless_the_profile_allows_it() {
        let mut f = facts();
        f.rollout_incomplete = Some("stalled: ErrImagePull (undone)".into());
        assert_eq!(judge_run(&f, &limits()).verdict, Verdict::Fail);
        let l = Limits {
            rollout_must_complete: false,
            final_version: None,
            ..limits()
        };
        assert_eq!(judge_run(&f, &l).verdict, Verdict::Pass);
    }

    #[test]
    fn harness_errors_make_the_run_invalid_even_when_thresholds_fail() {
        let mut f = facts();
        f.failed = 10;
        f.client_resource = 2;
        let j = judge_run(&f, &limits());
        assert_eq!(j.verdict, Verdict::Invalid);
        assert!(j.reason.contains("client_resource"));
    }

    #[test]
    fn a_run_that_ends_blind_is_invalid_however_short_the_blind_spot() {
        let mut f = facts();
        f.rollout_incomplete = Some("step 1 set image: failed: connect error".into());
        f.blind_at_end = Some(("api".into(), Duration::from_millis(300)));
        let j = judge_run(&f, &limits());
        assert_eq!(j.verdict, Verdict::Invalid);
        assert!(j.reason.contains("when the run ended"), "{}", j.reason);
        assert!(
            j.reason.contains("api silent for the last 300 ms"),
            "{}",
            j.reason
        );
    }

    #[test]
    fn a_long_watch_blind_spot_makes_the_run_invalid() {
        let mut f = facts();
        f.longest_blind_spot = Duration::from_secs(9);
        let j = judge_run(&f, &limits());
        assert_eq!(j.verdict, Verdict::Invalid);
        assert!(j.reason.contains("9000 ms"), "{}", j.reason);
    }

    #[test]
    fn lost_records_make_the_run_invalid() {
        let mut f = facts();
        f.rows_written = 999;
        assert_eq!(judge_run(&f, &limits()).verdict, Verdict::Invalid);
    }

    #[test]
    fn a_worker_whose_records_did_not_all_arrive_makes_the_run_invalid_naming_it() {
        let mut f = facts();
        f.failed = 0;
        f.workers_lost = vec![
            "load worker 1 (pod w-1-abcde): 812 records arrived: its stream closed before its END"
                .into(),
        ];
        let j = judge_run(&f, &limits());
        assert_eq!(j.verdict, Verdict::Invalid);
        assert!(
            j.reason.contains("worker 1 (pod w-1-abcde): 812 records"),
            "{}",
            j.reason
        );
    }

    #[test]
    fn a_worker_behind_its_share_of_the_schedule_makes_the_run_invalid_naming_it() {
        let mut f = facts();
        f.workers_behind = vec![
            "load worker 2 (pod w-2-xyz): requests started 80 ms late (p99; allowed 50 ms)".into(),
        ];
        let j = judge_run(&f, &limits());
        assert_eq!(j.verdict, Verdict::Invalid);
        assert!(
            j.reason.starts_with("load worker 2 (pod w-2-xyz)"),
            "{}",
            j.reason
        );
    }

    #[test]
    fn p99_over_the_limit_by_the_load_hosts_lateness_alone_is_invalid_not_failed() {
        let mut f = facts();
        f.p99_ms = Some(700.0);
        f.latency_p99_ms = Some(40.0);
        let j = judge_run(&f, &limits());
        assert_eq!(j.verdict, Verdict::Invalid, "{}", j.reason);
        assert!(j.reason.contains("started requests late"), "{}", j.reason);
        let t = j
            .thresholds
            .iter()
            .find(|t| t.name == "p99_latency")
            .unwrap();
        assert!(
            !t.pass && t.value.contains("lateness pushed it over"),
            "{t:?}"
        );
        // With another threshold failing too, the run fails on that one.
        f.failed = 3;
        assert_eq!(judge_run(&f, &limits()).verdict, Verdict::Fail);
        // The target itself over the limit: a plain failure.
        f.failed = 0;
        f.latency_p99_ms = Some(650.0);
        assert_eq!(judge_run(&f, &limits()).verdict, Verdict::Fail);
    }

    #[test]
    fn p99_over_the_limit_fails_and_no_success_cannot_pass_it() {
        let mut f = facts();
        f.p99_ms = Some(700.0);
        assert_eq!(judge_run(&f, &limits()).verdict, Verdict::Fail);
        f.p99_ms = None;
        let j = judge_run(&f, &limits());
        assert!(
            j.thresholds
                .iter()
                .any(|t| t.name == "p99_latency" && !t.pass)
        );
    }

    #[test]
    fn one_active_replicaset_holds_and_an_old_one_left_with_replicas_fails_naming_both() {
        let l = Limits {
            single_replicaset: true,
            ..limits()
        };
        let mut f = facts();
        f.active_replicasets = Some(vec!["web-7c5 (3)".into()]);
        let one = judge_run(&f, &l);
        let t = one
            .thresholds
            .iter()
            .find(|t| t.name == "single_replicaset")
            .unwrap();
        assert!(t.pass, "{t:?}");
        f.active_replicasets = Some(vec!["web-665 (1)".into(), "web-7c5 (3)".into()]);
        let two = judge_run(&f, &l);
        let t = two
            .thresholds
            .iter()
            .find(|t| t.name == "single_replicaset")
            .unwrap();
        assert!(!t.pass);
        assert_eq!(t.value, "2: web-665 (1), web-7c5 (3)");
        assert_eq!(two.verdict, Verdict::Fail);
        f.active_replicasets = None;
        let unknown = judge_run(&f, &l);
        assert!(
            !unknown
                .thresholds
                .iter()
                .any(|t| t.name == "single_replicaset" && t.pass)
        );
    }
}

#[cfg(test)]
mod more_tests {
    use super::*;

    #[test]
    fn a_new_version_answering_before_the_rollout_fails_initial_version() {
        let f = RunFacts {
            sent: 10,
            rows_written: 10,
            versions_before: [("1.27".into(), 5), ("1.28".into(), 1)].into(),
            ..RunFacts::default()
        };
        let l = Limits {
            initial_version: Some("1.27".into()),
            ..Limits::default()
        };
        let j = judge_run(&f, &l);
        assert_eq!(j.verdict, Verdict::Fail);
        assert_eq!(j.reason, "initial_version: 1.27: 5, 1.28: 1 (limit 1.27)");
    }

    #[test]
    fn too_few_pods_answering_after_a_scale_up_fails_min_backends() {
        let f = RunFacts {
            sent: 10,
            rows_written: 10,
            backends_after: 1,
            ..RunFacts::default()
        };
        let l = Limits {
            min_backends: Some(3),
            ..Limits::default()
        };
        let j = judge_run(&f, &l);
        assert_eq!(j.verdict, Verdict::Fail);
        assert_eq!(j.reason, "min_backends: 1 (limit 3)");
    }
}
