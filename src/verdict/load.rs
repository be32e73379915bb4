//! Judges a `baton load`: no lost records, no harness errors, the
//! schedule kept (see [`super::schedule`]), something sent, and no more
//! failures than allowed.
//!
//! Pure: counts in, verdict out.

use super::Verdict;
use super::schedule::{self, ScheduleFacts, ScheduleFigures, ScheduleLimits};

/// What a load run's verdict depends on.
#[derive(Clone, Debug, Default)]
pub struct LoadCounts {
    pub sent: u64,
    pub failed: u64,
    pub client_resource: u64,
    pub rows_written: u64,
    /// Failures allowed before the verdict is `fail`.
    pub max_failed: u64,
    pub schedule: ScheduleFacts,
    pub schedule_limits: ScheduleLimits,
}

/// The verdict, its reason, and how the schedule was kept.
#[derive(Clone, Debug, PartialEq)]
pub struct LoadJudgement {
    pub verdict: Verdict,
    pub reason: String,
    pub schedule: Option<ScheduleFigures>,
}

pub fn judge_load(c: &LoadCounts) -> LoadJudgement {
    let (figures, unkept) = schedule::judge(&c.schedule, &c.schedule_limits);
    let (verdict, reason) = verdict_of(c, unkept);
    LoadJudgement {
        verdict,
        reason,
        schedule: figures,
    }
}

fn verdict_of(c: &LoadCounts, unkept: Option<String>) -> (Verdict, String) {
    if c.rows_written != c.sent {
        return (
            Verdict::Invalid,
            format!(
                "{} requests sent but {} records written: records were lost",
                c.sent, c.rows_written
            ),
        );
    }
    if c.client_resource > 0 {
        return (
            Verdict::Invalid,
            format!(
                "{} requests failed on the load host's own limits (client_resource); the target was not measured faithfully",
                c.client_resource
            ),
        );
    }
    if let Some(why) = unkept {
        return (Verdict::Invalid, why);
    }
    if c.sent == 0 {
        return (Verdict::Invalid, "no request was sent".into());
    }
    if c.failed > c.max_failed {
        return (
            Verdict::Fail,
            format!(
                "{} of {} requests failed (allowed: {})",
                c.failed, c.sent, c.max_failed
            ),
        );
    }
    (
        Verdict::Pass,
        format!(
            "{} of {} requests failed (allowed: {})",
            c.failed, c.sent, c.max_failed
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counts(sent: u64, failed: u64) -> LoadCounts {
        LoadCounts {
            sent,
            failed,
            rows_written: sent,
            ..Default::default()
        }
    }

    #[test]
    fn no_failures_pass_and_any_failure_fails_by_default() {
        assert_eq!(judge_load(&counts(100, 0)).verdict, Verdict::Pass);
        let LoadJudgement {
            verdict: v, reason, ..
        } = judge_load(&counts(100, 3));
        assert_eq!(v, Verdict::Fail);
        assert_eq!(reason, "3 of 100 requests failed (allowed: 0)");
    }

    #[test]
    fn a_failure_budget_is_honoured() {
        let mut c = counts(100, 3);
        c.max_failed = 3;
        assert_eq!(judge_load(&c).verdict, Verdict::Pass);
    }

    #[test]
    fn harness_errors_make_the_run_invalid_not_failed() {
        let mut c = counts(100, 5);
        c.client_resource = 1;
        let LoadJudgement {
            verdict: v, reason, ..
        } = judge_load(&c);
        assert_eq!(v, Verdict::Invalid);
        assert!(reason.contains("client_resource"));
    }

    #[test]
    fn lost_records_make_the_run_invalid_first() {
        let mut c = counts(100, 0);
        c.rows_written = 99;
        c.client_resource = 1;
        assert!(judge_load(&c).reason.contains("lost"));
    }

    #[test]
    fn a_run_that_sent_nothing_proves_nothing() {
        assert_eq!(judge_load(&counts(0, 0)).verdict, Verdict::Invalid);
    }
}
