//! The words of attribution: durations as a person reads them, what a
//! failure looked like, what a candidate Pod was doing. Evidence lines are
//! for people (failures.csv, the HTML report), so they favour "40 ms after"
//! over raw nanoseconds.

use crate::load::outcome::{Outcome, Phase};
use crate::timeline::{Lifecycle, Timeline};

/// A duration in nanoseconds as "40 ms" (under 10 s) or "12.5 s".
pub fn dur(ns: u64) -> String {
    if ns < 10_000_000_000 {
        format!("{} ms", (ns + 500_000) / 1_000_000)
    } else {
        format!("{:.1} s", ns as f64 / 1e9)
    }
}

/// "40 ms after" / "40 ms before" for `at - reference`.
pub fn offset(at: u64, reference: u64) -> String {
    if at >= reference {
        format!("{} after", dur(at - reference))
    } else {
        format!("{} before", dur(reference - at))
    }
}

/// What became of the request, as a verb phrase: "refused", "reset
/// mid-body", "HTTP 503".
pub fn failure(outcome: Outcome, phase: Phase, status: Option<u16>) -> String {
    let when = match phase {
        Phase::Write => " while sending",
        Phase::FirstByte => " before the first byte",
        Phase::Body => " mid-body",
        Phase::Connect | Phase::None => "",
    };
    match outcome {
        Outcome::Ok => "succeeded".to_string(),
        Outcome::HttpStatus => match status {
            Some(s) => format!("HTTP {s}"),
            None => "unexpected HTTP status".to_string(),
        },
        Outcome::ConnectRefused => "refused".to_string(),
        Outcome::ConnectTimeout => "connect timed out".to_string(),
        Outcome::Reset => format!("reset{when}"),
        Outcome::Eof => format!("closed{when}"),
        Outcome::Timeout => format!("timed out{when}"),
        Outcome::Tls => "failed TLS".to_string(),
        Outcome::Dns => "failed DNS".to_string(),
        Outcome::ClientResource => "hit a load-host limit".to_string(),
        Outcome::Other => "failed".to_string(),
    }
}

/// A candidate Pod's state at `ns`, e.g. "terminating 40 ms (grace 30 s),
/// endpoint ready" or "ready 150 ms, endpoint ready".
pub fn pod_state(t: &Timeline, pod: &str, ns: u64) -> String {
    let Some(p) = t.pod_at(pod, ns) else {
        return "not seen by the watch".to_string();
    };
    let mut s = match p.lifecycle {
        Lifecycle::Terminating => {
            let since = p
                .deletion
                .as_ref()
                .map_or(p.lifecycle_since_ns, |d| d.observed_ns);
            let mut s = format!("terminating {}", dur(ns.saturating_sub(since)));
            if let Some(g) = p.deletion.as_ref().and_then(|d| d.grace_period_s) {
                s.push_str(&format!(" (grace {g} s)"));
            }
            if p.last_termination.is_some() && !p.container_running {
                s.push_str(", container exited");
            }
            s
        }
        Lifecycle::Ready => {
            let since = p.ready_since_ns.unwrap_or(p.lifecycle_since_ns);
            format!("ready {}", dur(ns.saturating_sub(since)))
        }
        l => format!("{l} {}", dur(ns.saturating_sub(p.lifecycle_since_ns))),
    };
    if p.restart_count > 0 {
        s.push_str(&format!(", {} restarts", p.restart_count));
        if let Some(r) = p.last_restart_ns {
            s.push_str(&format!(" (last {} ago)", dur(ns.saturating_sub(r))));
        }
    }
    // One line per listed address; "removed" only if none is listed (an
    // address moving between slices leaves a removed entry behind).
    let all: Vec<_> = t.endpoints_of_at(pod, ns).collect();
    let listed: Vec<_> = all.iter().filter(|e| e.listed).collect();
    let mut eps: Vec<String> = listed
        .iter()
        .map(|e| format!("endpoint {}", e.describe()))
        .collect();
    if listed.is_empty() && !all.is_empty() {
        eps.push("endpoint removed".to_string());
    }
    if eps.is_empty() {
        s.push_str(", no endpoint");
    } else {
        s.push_str(", ");
        s.push_str(&eps.join(", "));
    }
    if p.late {
        s.push_str(" (seen late, after a re-list)");
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::timeline::testkit::*;

    #[test]
    fn durations_read_as_ms_then_seconds() {
        assert_eq!(dur(40 * MS), "40 ms");
        assert_eq!(dur(40 * MS + 600_000), "41 ms");
        assert_eq!(dur(9_999 * MS), "9999 ms");
        assert_eq!(dur(12_500 * MS), "12.5 s");
        assert_eq!(offset(1040 * MS, 1000 * MS), "40 ms after");
        assert_eq!(offset(990 * MS, 1000 * MS), "10 ms before");
    }

    #[test]
    fn failures_read_as_what_happened() {
        assert_eq!(
            failure(Outcome::ConnectRefused, Phase::Connect, None),
            "refused"
        );
        assert_eq!(failure(Outcome::Reset, Phase::Body, None), "reset mid-body");
        assert_eq!(
            failure(Outcome::Eof, Phase::FirstByte, None),
            "closed before the first byte"
        );
        assert_eq!(
            failure(Outcome::HttpStatus, Phase::None, Some(503)),
            "HTTP 503"
        );
    }

    #[test]
    fn candidate_state_names_lifecycle_age_grace_and_endpoint() {
        let mut ev = pod_already_up(0, "a");
        ev.extend(pod_down(1000, "a", 100, 500));
        let t = Timeline::new(ev);
        assert_eq!(pod_state(&t, "a", 500 * MS), "ready 500 ms, endpoint ready");
        assert_eq!(
            pod_state(&t, "a", 1040 * MS),
            "terminating 40 ms (grace 30 s), endpoint ready"
        );
        assert_eq!(
            pod_state(&t, "a", 1200 * MS),
            "terminating 200 ms (grace 30 s), endpoint not ready, terminating"
        );
        assert_eq!(
            pod_state(&t, "a", 1505 * MS),
            "terminating 505 ms (grace 30 s), container exited, endpoint not ready, terminating"
        );
        assert_eq!(pod_state(&t, "b", 0), "not seen by the watch");
    }
}
