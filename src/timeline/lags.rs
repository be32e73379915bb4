//! Per-Pod lags between transitions that should follow each other closely,
//! measured on observed time: how long a deleted Pod stayed routable, how
//! long it took to exit and disappear, how long a ready Pod waited for its
//! endpoint. These are the numbers a remedy is sized from (a preStop sleep
//! must outlast the first; a grace period must outlast the second).
//!
//! Times are when each event was seen, except for events a watch delivered
//! late (`late`), which count from their API time: a stalled watch would
//! otherwise stretch every lag by its stall.
//!
//! Not for: judging whether a lag caused failures (see `attribution`).

use super::{Lifecycle, Timeline};
use crate::cluster::event::EventKind;
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// The lags of one Pod. A lag is `None` when either end never happened in
/// the record (the Pod was never deleted, never had an endpoint, ...).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PodLags {
    pub pod: String,
    /// When it got its deletionTimestamp: observed, or the API time when
    /// the watch delivered it late.
    pub deleted_ns: Option<u64>,
    /// When it first became ready (observed, or the API time when late).
    pub ready_ns: Option<u64>,
    /// Deletion → every endpoint of it not ready, terminating or removed
    /// (zero if none was routable at the deletion).
    #[serde(with = "opt_ms", rename = "deletion_to_endpoint_unroutable_ms")]
    pub deletion_to_endpoint_unroutable: Option<Duration>,
    /// Deletion → a container terminated.
    #[serde(with = "opt_ms", rename = "deletion_to_container_terminated_ms")]
    pub deletion_to_container_terminated: Option<Duration>,
    /// Deletion → the Pod object gone.
    #[serde(with = "opt_ms", rename = "deletion_to_gone_ms")]
    pub deletion_to_gone: Option<Duration>,
    /// Pod ready → an endpoint of it ready (zero when the endpoint was
    /// seen ready first: two watches need not agree on order).
    #[serde(with = "opt_ms", rename = "ready_to_endpoint_ready_ms")]
    pub ready_to_endpoint_ready: Option<Duration>,
}

/// An `Option<Duration>` as milliseconds (a float, so sub-millisecond
/// lags are not rounded away), and back (to the nanosecond).
pub mod opt_ms {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::Duration;

    pub fn serialize<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => s.serialize_some(&(d.as_secs_f64() * 1000.0)),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        let ms = Option::<f64>::deserialize(d)?;
        ms.map(|ms| {
            if ms.is_finite() && ms >= 0.0 {
                Ok(Duration::from_nanos((ms * 1e6).round() as u64))
            } else {
                Err(serde::de::Error::custom(format!(
                    "{ms} is not a duration in milliseconds"
                )))
            }
        })
        .transpose()
    }
}

fn dur(from: u64, to: u64) -> Duration {
    Duration::from_nanos(to.saturating_sub(from))
}

/// The lags of every Pod in the timeline, by Pod name.
pub fn pod_lags(timeline: &Timeline) -> Vec<PodLags> {
    timeline
        .pod_names()
        .map(|name| lags_of(timeline, name))
        .collect()
}

/// When an event happened, as well as the record tells: the moment it was
/// seen, unless the watch delivered it late, when its API time (to the
/// second, never after the moment it was seen) is the better clock.
fn happened_ns(e: &crate::cluster::event::LifecycleEvent) -> u64 {
    match (e.late, e.api_ns) {
        (true, Some(api)) => (api.max(0) as u64).min(e.observed_ns),
        _ => e.observed_ns,
    }
}

fn lags_of(t: &Timeline, name: &str) -> PodLags {
    let first = |kind: EventKind, after: u64| {
        t.pod_events(name)
            .find(|e| e.kind == kind && e.observed_ns >= after)
            .map(happened_ns)
    };
    let deleted_ns = first(EventKind::PodDeleting, 0);
    let ready_ns = first(EventKind::PodReady, 0);

    let deletion_to_endpoint_unroutable = deleted_ns.and_then(|d| {
        // The first instant at or after the deletion when no endpoint of the
        // Pod is both routable and not terminating.
        t.endpoint_history(name).next()?;
        let mut times: Vec<u64> = t
            .endpoint_history(name)
            .map(|(ns, _)| ns)
            .filter(|&ns| ns > d)
            .collect();
        times.sort_unstable();
        std::iter::once(d)
            .chain(times)
            .find(|&ns| {
                t.endpoints_of_at(name, ns)
                    .all(|e| !e.routable() || e.terminating)
            })
            .map(|ns| dur(d, ns))
    });
    let deletion_to_container_terminated =
        deleted_ns.and_then(|d| first(EventKind::ContainerTerminated, d).map(|ns| dur(d, ns)));
    let deletion_to_gone =
        deleted_ns.and_then(|d| first(EventKind::PodGone, d).map(|ns| dur(d, ns)));
    let ready_to_endpoint_ready = ready_ns.and_then(|r| {
        t.routable_intervals(name)
            .first()
            .map(|iv| dur(r, iv.start))
    });
    PodLags {
        pod: name.to_string(),
        deleted_ns,
        ready_ns,
        deletion_to_endpoint_unroutable,
        deletion_to_container_terminated,
        deletion_to_gone,
        ready_to_endpoint_ready,
    }
}

/// Count, median and maximum of one kind of lag over Pods.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LagStats {
    pub count: usize,
    #[serde(with = "opt_ms", rename = "median_ms")]
    pub median: Option<Duration>,
    #[serde(with = "opt_ms", rename = "max_ms")]
    pub max: Option<Duration>,
}

impl LagStats {
    /// Over the `Some` values; `None`s (lags that did not happen) are
    /// skipped.
    pub fn of(values: impl IntoIterator<Item = Option<Duration>>) -> Self {
        let mut v: Vec<Duration> = values.into_iter().flatten().collect();
        v.sort_unstable();
        LagStats {
            count: v.len(),
            median: median_sorted(&v),
            max: v.last().copied(),
        }
    }
}

/// The median of sorted values (the mean of the middle two for an even
/// count); `None` when empty.
fn median_sorted(v: &[Duration]) -> Option<Duration> {
    let n = v.len();
    match n {
        0 => None,
        _ if n % 2 == 1 => Some(v[n / 2]),
        _ => Some((v[n / 2 - 1] + v[n / 2]) / 2),
    }
}

/// The largest of the lags picked by `f`.
pub fn max_lag(lags: &[PodLags], f: impl Fn(&PodLags) -> Option<Duration>) -> Option<Duration> {
    lags.iter().filter_map(f).max()
}

/// The median of the lags picked by `f`.
pub fn median_lag(lags: &[PodLags], f: impl Fn(&PodLags) -> Option<Duration>) -> Option<Duration> {
    LagStats::of(lags.iter().map(f)).median
}

/// Every kind of lag, summarised over Pods (for `summary.json`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LagSummary {
    pub deletion_to_endpoint_unroutable: LagStats,
    pub deletion_to_container_terminated: LagStats,
    pub deletion_to_gone: LagStats,
    pub ready_to_endpoint_ready: LagStats,
}

impl LagSummary {
    pub fn of(lags: &[PodLags]) -> Self {
        LagSummary {
            deletion_to_endpoint_unroutable: LagStats::of(
                lags.iter().map(|l| l.deletion_to_endpoint_unroutable),
            ),
            deletion_to_container_terminated: LagStats::of(
                lags.iter().map(|l| l.deletion_to_container_terminated),
            ),
            deletion_to_gone: LagStats::of(lags.iter().map(|l| l.deletion_to_gone)),
            ready_to_endpoint_ready: LagStats::of(lags.iter().map(|l| l.ready_to_endpoint_ready)),
        }
    }
}

/// Pods that existed in the record but never became ready (an image that
/// does not exist, a probe that never passes).
pub fn never_ready(timeline: &Timeline) -> Vec<String> {
    timeline
        .pod_names()
        .filter(|p| {
            timeline
                .pod_history(p)
                .all(|(_, s)| s.last_became_ready_ns.is_none() && s.lifecycle != Lifecycle::Ready)
        })
        .map(str::to_string)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::timeline::testkit::*;

    fn ms(n: u64) -> Option<Duration> {
        Some(Duration::from_millis(n))
    }

    #[test]
    fn a_deleted_pod_has_every_deletion_lag() {
        let mut ev = pod_already_up(0, "old");
        ev.extend(pod_down(1000, "old", 40, 300));
        let t = Timeline::new(ev);
        let l = &pod_lags(&t)[0];
        assert_eq!(l.pod, "old");
        assert_eq!(l.deleted_ns, Some(1000 * MS));
        assert_eq!(l.deletion_to_endpoint_unroutable, ms(40));
        assert_eq!(l.deletion_to_container_terminated, ms(300));
        assert_eq!(l.deletion_to_gone, ms(320));
    }

    #[test]
    fn events_a_stalled_watch_delivered_late_count_from_their_api_time() {
        // Deleted at 1000 ms and exited at 1300 ms by the API's clock, both
        // delivered together at 8000 ms after a stall.
        let mut ev = pod_already_up(0, "old");
        ev.push(late(api(deleting(8000, "old", 30), 1000)));
        ev.push(late(api(terminated(8000, "old", 0, "Completed"), 1300)));
        let t = Timeline::new(ev);
        let l = &pod_lags(&t)[0];
        assert_eq!(l.deleted_ns, Some(1000 * MS));
        assert_eq!(l.deletion_to_container_terminated, ms(300));
    }

    #[test]
    fn an_endpoint_marked_terminating_while_still_ready_counts_as_out() {
        let mut ev = pod_already_up(0, "old");
        ev.push(deleting(1000, "old", 30));
        ev.push(ep(1025, EventKind::EndpointTerminating, "old"));
        ev.push(ep(1060, EventKind::EndpointNotReady, "old"));
        let t = Timeline::new(ev);
        assert_eq!(pod_lags(&t)[0].deletion_to_endpoint_unroutable, ms(25));
    }

    #[test]
    fn an_endpoint_already_unready_at_deletion_has_zero_lag() {
        let mut ev = pod_already_up(0, "old");
        ev.push(ep(500, EventKind::EndpointNotReady, "old"));
        ev.push(deleting(1000, "old", 30));
        let t = Timeline::new(ev);
        assert_eq!(pod_lags(&t)[0].deletion_to_endpoint_unroutable, ms(0));
    }

    #[test]
    fn an_endpoint_that_never_leaves_has_no_lag_and_a_pod_without_endpoints_neither() {
        let mut ev = pod_already_up(0, "stuck");
        ev.push(deleting(1000, "stuck", 30));
        ev.push(pod(0, EventKind::PodCreated, "bare"));
        ev.push(deleting(1000, "bare", 30));
        let t = Timeline::new(ev);
        let lags = pod_lags(&t);
        let bare = lags.iter().find(|l| l.pod == "bare").unwrap();
        let stuck = lags.iter().find(|l| l.pod == "stuck").unwrap();
        assert_eq!(bare.deletion_to_endpoint_unroutable, None);
        assert_eq!(stuck.deletion_to_endpoint_unroutable, None);
        assert_eq!(stuck.deletion_to_gone, None);
    }

    #[test]
    fn ready_to_endpoint_ready_is_measured_and_never_negative() {
        let mut ev = vec![
            pod(0, EventKind::PodCreated, "a"),
            pod(100, EventKind::PodReady, "a"),
            ep(100, EventKind::EndpointAdded, "a"),
            ep(180, EventKind::EndpointReady, "a"),
            pod(0, EventKind::PodCreated, "b"),
            ep(90, EventKind::EndpointAdded, "b"),
            ep(90, EventKind::EndpointReady, "b"),
            pod(100, EventKind::PodReady, "b"),
        ];
        ev.push(pod(0, EventKind::PodCreated, "never"));
        let t = Timeline::new(ev);
        let lags = pod_lags(&t);
        assert_eq!(lags[0].ready_to_endpoint_ready, ms(80));
        assert_eq!(lags[1].ready_to_endpoint_ready, ms(0));
        assert_eq!(lags[2].ready_to_endpoint_ready, None);
        assert_eq!(never_ready(&t), vec!["never".to_string()]);
    }

    #[test]
    fn stats_skip_missing_lags_and_take_the_middle() {
        let s = LagStats::of([ms(30), None, ms(10), ms(20)]);
        assert_eq!(s.count, 3);
        assert_eq!(s.median, ms(20));
        assert_eq!(s.max, ms(30));
        let even = LagStats::of([ms(10), ms(20)]);
        assert_eq!(even.median, ms(15));
        let empty = LagStats::of([None]);
        assert_eq!((empty.count, empty.median, empty.max), (0, None, None));
    }

    #[test]
    fn max_and_median_helpers_pick_the_field_asked_for() {
        let mut ev = pod_already_up(0, "a");
        ev.extend(pod_already_up(0, "b"));
        ev.extend(pod_down(1000, "a", 40, 300));
        ev.extend(pod_down(2000, "b", 100, 200));
        let t = Timeline::new(ev);
        let lags = pod_lags(&t);
        assert_eq!(
            max_lag(&lags, |l| l.deletion_to_endpoint_unroutable),
            ms(100)
        );
        assert_eq!(
            median_lag(&lags, |l| l.deletion_to_endpoint_unroutable),
            ms(70)
        );
        assert_eq!(
            max_lag(&lags, |l| l.deletion_to_container_terminated),
            ms(300)
        );
        let sum = LagSummary::of(&lags);
        assert_eq!(sum.deletion_to_gone.max, ms(320));
        let json = serde_json::to_value(&lags[0]).unwrap();
        assert_eq!(json["deletion_to_endpoint_unroutable_ms"], 40.0);
    }
}
