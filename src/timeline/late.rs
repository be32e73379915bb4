//! Blind spots read from the events themselves: a Pod transition whose
//! API time trails the moment baton saw it, by more than the watch's
//! usual delay, was delivered late (a stalled stream the watch did not
//! notice, an overloaded API server), and until it arrived baton was
//! blind to it. The stretch from when it happened to when it was seen is
//! a blind spot like a watch's re-list: failures inside it are not
//! attributed, and a long one makes the run INVALID.
//!
//! The usual delay is measured, not assumed: it is the smallest lag of
//! any live Pod transition of the run, which absorbs a skew between the
//! API server's clock and this host's (a cluster whose clock runs 5 s
//! behind would otherwise look late in everything). API times have
//! one-second resolution, so only an excess over [`LATE_AFTER`] counts.
//!
//! Not for: the watches' own blind spots (re-lists after a dropped
//! stream, a silent API server), which the watches record as they happen.

use super::BlindWindow;
use crate::cluster::event::{EventKind, LifecycleEvent};
use crate::cluster::normalise::LATE_AFTER;

/// The watch a late-delivery blind spot is named for.
pub const LATE_WATCH: &str = "watch/pods (events delivered late)";

/// The transitions whose API time the API server itself set when it
/// wrote them (creationTimestamp; deletionTimestamp less the grace
/// period): their lag is the watch's delivery alone. A condition's or a
/// container's time comes from the kubelet (its clock, and its own delay
/// in reporting, which is the cluster being slow, not baton being blind).
fn timed(k: EventKind) -> bool {
    matches!(k, EventKind::PodCreated | EventKind::PodDeleting)
}

/// The late-delivery blind spots of `events` (sorted by observed time),
/// merged where they overlap.
pub(super) fn late_windows(events: &[LifecycleEvent]) -> Vec<BlindWindow> {
    // Not the initial list: it reports what happened before baton
    // watched. A re-list's events count (they are late, and fall in the
    // watch's own blind spot anyway); the normaliser's `late` mark cannot
    // tell them from a stalled stream's, and both were blindness.
    let lags: Vec<(u64, i64)> = events
        .iter()
        .filter(|e| timed(e.kind) && !e.detail.starts_with("initial list"))
        .filter_map(|e| Some((e.observed_ns, e.observed_ns as i64 - e.api_ns?)))
        .collect();
    let Some(usual) = lags.iter().map(|(_, lag)| *lag).min() else {
        return Vec::new();
    };
    let bound = LATE_AFTER.as_nanos() as i64;
    let mut out: Vec<BlindWindow> = Vec::new();
    for (seen, lag) in lags {
        let excess = lag - usual;
        if excess <= bound {
            continue;
        }
        let start = seen.saturating_sub(excess as u64);
        match out.last_mut() {
            Some(last) if start <= last.end_ns => {
                last.start_ns = last.start_ns.min(start);
                last.end_ns = last.end_ns.max(seen);
            }
            _ => out.push(BlindWindow {
                start_ns: start,
                end_ns: seen,
                watch: LATE_WATCH.to_string(),
            }),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::timeline::testkit::{api, pod};

    const S: i64 = 1_000;

    /// A live transition seen at `seen_ms` that happened at `api_ms`.
    fn at(seen_ms: u64, api_ms: i64, kind: EventKind) -> LifecycleEvent {
        api(pod(seen_ms, kind, "web-1"), api_ms)
    }

    #[test]
    fn a_transition_delivered_eight_seconds_late_opens_a_blind_spot_back_to_when_it_happened() {
        let events = vec![
            at(1_000, 700, EventKind::PodCreated),
            at(2_000, 1_600, EventKind::PodCreated),
            at(20_000, 20_000 - 8 * S - 400, EventKind::PodDeleting),
        ];
        let w = late_windows(&events);
        assert_eq!(w.len(), 1, "{w:?}");
        // The usual delay (300 ms) is not blindness; the 8.1 s beyond it is.
        assert_eq!(w[0].end_ns, 20_000_000_000);
        assert_eq!(w[0].start_ns, 20_000_000_000 - 8_100_000_000);
        assert_eq!(w[0].watch, LATE_WATCH);
    }

    #[test]
    fn a_cluster_clock_behind_this_host_is_not_blindness() {
        // Every transition 5 s "late": the API server's clock is behind.
        let events: Vec<_> = (1..=6)
            .map(|k| {
                at(
                    k * 1_000 + 10_000,
                    (k * 1_000) as i64 + 5_000,
                    EventKind::PodCreated,
                )
            })
            .collect();
        assert!(late_windows(&events).is_empty());
    }

    #[test]
    fn second_resolution_api_times_and_the_initial_list_are_not_late() {
        let mut initial = at(9_000, 0, EventKind::PodCreated);
        initial.detail = "initial list: container nginx".into();
        let events = vec![
            initial,
            at(10_000, 9_900, EventKind::PodCreated),
            // Truncated to the second: 2.9 s behind, within the bound.
            at(12_950, 10_000, EventKind::PodDeleting),
        ];
        assert!(late_windows(&events).is_empty());
    }

    #[test]
    fn overlapping_late_stretches_merge_into_one() {
        let events = vec![
            at(1_000, 1_000, EventKind::PodCreated),
            at(20_000, 12_000, EventKind::PodDeleting),
            at(20_010, 11_000, EventKind::PodCreated),
        ];
        let w = late_windows(&events);
        assert_eq!(w.len(), 1, "{w:?}");
        assert_eq!(
            (w[0].start_ns, w[0].end_ns),
            (11_000_000_000, 20_010_000_000)
        );
    }

    #[test]
    fn a_kubelet_reporting_late_is_the_cluster_being_slow_not_baton_blind() {
        let events = vec![
            at(1_000, 1_000, EventKind::PodCreated),
            // The kubelet's status update (its clock, its delay) 9 s late.
            at(20_000, 11_000, EventKind::ContainerTerminated),
            at(20_000, 11_000, EventKind::PodNotReady),
        ];
        assert!(late_windows(&events).is_empty());
    }
}
