//! The cluster's state at any instant of a run, rebuilt from the lifecycle
//! events: which Pods exist and in what lifecycle, which endpoints a
//! Service proxy could route to, and how the two moved.
//!
//! Built once from `events.csv` (or the watches' events in memory), then
//! queried many times: once per failed request by attribution and once per
//! 100 ms bucket by `timeline.csv`. So [`Timeline::new`] precomputes, per
//! Pod and per endpoint, the list of states after each of its events, and
//! step functions of the ready-endpoint count and the Pods per lifecycle;
//! every query is a binary search.
//!
//! Observed time (`observed_ns`, the run clock) orders everything: the
//! state "at" an instant includes every event observed at or before it.
//! The API's own times (one-second resolution, another machine's clock)
//! ride along in the states as extra evidence only.
//!
//! Not for: deciding why a request failed (see `attribution`) or watching
//! the cluster (see `cluster::watch`). [`lags`] measures per-Pod delays
//! between related transitions.

pub mod lags;
pub mod late;
pub mod state;

#[cfg(test)]
pub(crate) mod testkit;

use crate::cluster::event::{EventKind, LifecycleEvent};
pub use state::{Deletion, EndpointState, Lifecycle, PodCounts, PodState, Termination};
use std::collections::BTreeMap;

/// Identifies an endpoint entry: the Pod behind it, its address, and the
/// EndpointSlice listing it. The Pod because an address can be reused by a
/// later Pod; the slice because the watch reports each slice on its own
/// (an address moving between slices is removed from one and added to the
/// other), and an address is listed while any slice lists it.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct EndpointKey {
    pub pod: String,
    pub address: String,
    pub slice: String,
}

/// A sequence of states of one object, each valid from its time on.
#[derive(Clone, Debug)]
struct History<S> {
    at: Vec<u64>,
    states: Vec<S>,
}

impl<S> History<S> {
    fn new() -> Self {
        History {
            at: Vec::new(),
            states: Vec::new(),
        }
    }

    fn push(&mut self, ns: u64, s: S) {
        self.at.push(ns);
        self.states.push(s);
    }

    fn last(&self) -> Option<&S> {
        self.states.last()
    }

    /// The state after every event observed at or before `ns`.
    fn at(&self, ns: u64) -> Option<&S> {
        let i = self.at.partition_point(|&t| t <= ns);
        i.checked_sub(1).map(|i| &self.states[i])
    }
}

/// A half-open interval `[start, end)` of observed time; `end` is `None`
/// while it lasts to the end of the record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Interval {
    pub start: u64,
    pub end: Option<u64>,
}

impl Interval {
    pub fn contains(&self, ns: u64) -> bool {
        self.start <= ns && self.end.is_none_or(|e| ns < e)
    }
}

/// Whether a proxy could have routed a new connection to a Pod at an
/// instant, given that proxies lag the EndpointSlices.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Routability {
    /// An endpoint of the Pod was listed and ready at that instant.
    Routable,
    /// None was, but one stopped being routable at `stopped_ns`, within the
    /// allowance before the instant: a lagging proxy may still use it.
    Lagging { stopped_ns: u64 },
    /// Not routable at the instant nor within the allowance before it.
    No,
    /// The Pod never had an endpoint event: nothing is known.
    Unknown,
}

/// Everything known about the cluster at one instant.
#[derive(Clone, Debug, PartialEq)]
pub struct ClusterState {
    pub at_ns: u64,
    /// Every Pod seen at or before the instant, gone ones included, by name.
    pub pods: Vec<PodState>,
    /// Every endpoint entry (one per slice listing an address) seen at or
    /// before the instant, removed ones included.
    pub endpoints: Vec<EndpointState>,
}

impl ClusterState {
    pub fn pod(&self, name: &str) -> Option<&PodState> {
        self.pods.iter().find(|p| p.name == name)
    }

    pub fn endpoints_of<'a>(&'a self, pod: &'a str) -> impl Iterator<Item = &'a EndpointState> {
        self.endpoints.iter().filter(move |e| e.pod == pod)
    }

    /// Endpoints (addresses) listed and ready in some slice.
    pub fn ready_endpoints(&self) -> usize {
        let mut ready: Vec<(&str, &str)> = self
            .endpoints
            .iter()
            .filter(|e| e.routable())
            .map(|e| (e.pod.as_str(), e.address.as_str()))
            .collect();
        ready.sort_unstable();
        ready.dedup();
        ready.len()
    }

    /// Pods that exist (seen and not gone).
    pub fn existing_pods(&self) -> impl Iterator<Item = &PodState> {
        self.pods.iter().filter(|p| p.lifecycle != Lifecycle::Gone)
    }
}

/// The run's lifecycle events, indexed for queries at any instant.
#[derive(Clone, Debug)]
pub struct Timeline {
    events: Vec<LifecycleEvent>,
    pods: BTreeMap<String, History<PodState>>,
    /// Indices into `events` of each Pod's own events (Pod kinds only).
    pod_events: BTreeMap<String, Vec<usize>>,
    endpoints: BTreeMap<EndpointKey, History<EndpointState>>,
    /// Per Pod: the intervals in which some endpoint of it was routable.
    routable: BTreeMap<String, Vec<Interval>>,
    /// Step function: the count of routable endpoints after each change.
    ready_counts: History<usize>,
    /// Step function: Pods per lifecycle after each change.
    pod_counts: History<PodCounts>,
    first_endpoint_ns: Option<u64>,
    /// When a watch saw nothing: `[re-list - blind_ns, re-list]`, with the
    /// watch (`watch/pods`, ...), from `watch_restarted` events.
    blind: Vec<BlindWindow>,
}

/// A stretch in which a watch saw nothing (it re-listed at `end_ns`).
/// Events of that stretch arrive at its end, marked `late`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BlindWindow {
    pub start_ns: u64,
    pub end_ns: u64,
    pub watch: String,
}

fn is_pod_kind(k: EventKind) -> bool {
    matches!(
        k,
        EventKind::PodCreated
            | EventKind::PodScheduled
            | EventKind::ContainerStarted
            | EventKind::ContainerRestarted
            | EventKind::ContainerWaiting
            | EventKind::PodReady
            | EventKind::PodNotReady
            | EventKind::PodDeleting
            | EventKind::ContainerTerminated
            | EventKind::PodGone
    )
}

fn is_endpoint_kind(k: EventKind) -> bool {
    matches!(
        k,
        EventKind::EndpointAdded
            | EventKind::EndpointReady
            | EventKind::EndpointNotReady
            | EventKind::EndpointServing
            | EventKind::EndpointNotServing
            | EventKind::EndpointTerminating
            | EventKind::EndpointRemoved
    )
}

impl Timeline {
    /// Index `events`, first sorting them by observed time (stable, so
    /// events observed at the same instant keep the order they came in).
    pub fn new(mut events: Vec<LifecycleEvent>) -> Self {
        events.sort_by_key(|e| e.observed_ns);
        let mut pods: BTreeMap<String, History<PodState>> = BTreeMap::new();
        let mut pod_events: BTreeMap<String, Vec<usize>> = BTreeMap::new();
        let mut endpoints: BTreeMap<EndpointKey, History<EndpointState>> = BTreeMap::new();
        let mut routable: BTreeMap<String, Vec<Interval>> = BTreeMap::new();
        // Per Pod, how many of its endpoint entries are routable right now.
        let mut routable_now: BTreeMap<String, usize> = BTreeMap::new();
        // Per (Pod, address), in how many slices it is routable right now:
        // the ready count counts an address once.
        let mut address_now: BTreeMap<(String, String), usize> = BTreeMap::new();
        let mut ready_counts = History::new();
        let mut pod_counts = History::new();
        let mut ready = 0usize;
        let mut counts = PodCounts::default();
        let mut first_endpoint_ns = None;
        let mut blind = Vec::new();

        for (i, e) in events.iter().enumerate() {
            if e.kind == EventKind::WatchRestarted {
                if let Some(b) = e.blind_ns {
                    blind.push(BlindWindow {
                        start_ns: e.observed_ns.saturating_sub(b),
                        end_ns: e.observed_ns,
                        watch: e.object.clone(),
                    });
                }
            } else if is_pod_kind(e.kind) && !e.pod.is_empty() {
                pod_events.entry(e.pod.clone()).or_default().push(i);
                let h = pods.entry(e.pod.clone()).or_insert_with(History::new);
                // A Pod re-created under the same name (a StatefulSet's) is
                // a new Pod: its state starts afresh.
                let recreated = e.kind == EventKind::PodCreated
                    && h.last().is_some_and(|p| p.gone_ns.is_some());
                let (before, after) = match h.last() {
                    Some(prev) if recreated => {
                        let s = PodState::first(e);
                        let (b, a) = (prev.lifecycle, s.lifecycle);
                        h.push(e.observed_ns, s);
                        (Some(b), a)
                    }
                    None => {
                        let s = PodState::first(e);
                        let l = s.lifecycle;
                        h.push(e.observed_ns, s);
                        (None, l)
                    }
                    Some(prev) => {
                        let mut s = prev.clone();
                        s.apply(e);
                        let (b, a) = (prev.lifecycle, s.lifecycle);
                        h.push(e.observed_ns, s);
                        (Some(b), a)
                    }
                };
                if before != Some(after) {
                    if let Some(b) = before {
                        counts.remove(b);
                    }
                    counts.add(after);
                    pod_counts.push(e.observed_ns, counts);
                }
            } else if is_endpoint_kind(e.kind) && !(e.pod.is_empty() && e.address.is_empty()) {
                first_endpoint_ns.get_or_insert(e.observed_ns);
                let key = EndpointKey {
                    pod: e.pod.clone(),
                    address: e.address.clone(),
                    slice: e.object.clone(),
                };
                let h = endpoints.entry(key).or_insert_with(History::new);
                let (was, now) = match h.last() {
                    None => {
                        let s = EndpointState::first(e);
                        let r = s.routable();
                        h.push(e.observed_ns, s);
                        (false, r)
                    }
                    Some(prev) => {
                        let mut s = prev.clone();
                        s.apply(e);
                        let (w, n) = (prev.routable(), s.routable());
                        h.push(e.observed_ns, s);
                        (w, n)
                    }
                };
                if was != now {
                    let n = routable_now.entry(e.pod.clone()).or_default();
                    let intervals = routable.entry(e.pod.clone()).or_default();
                    let slices = address_now
                        .entry((e.pod.clone(), e.address.clone()))
                        .or_default();
                    if now {
                        *slices += 1;
                        if *slices == 1 {
                            ready += 1;
                        }
                        *n += 1;
                        if *n == 1 {
                            intervals.push(Interval {
                                start: e.observed_ns,
                                end: None,
                            });
                        }
                    } else {
                        *slices -= 1;
                        if *slices == 0 {
                            ready -= 1;
                        }
                        *n -= 1;
                        if *n == 0
                            && let Some(last) = intervals.last_mut()
                        {
                            last.end = Some(e.observed_ns);
                        }
                    }
                    ready_counts.push(e.observed_ns, ready);
                } else {
                    routable.entry(e.pod.clone()).or_default();
                }
            }
        }

        blind.extend(late::late_windows(&events));
        Timeline {
            events,
            pods,
            pod_events,
            endpoints,
            routable,
            ready_counts,
            pod_counts,
            first_endpoint_ns,
            blind,
        }
    }

    /// The watches that were blind at `ns`.
    pub fn blind_at(&self, ns: u64) -> impl Iterator<Item = &BlindWindow> {
        self.blind
            .iter()
            .filter(move |b| b.start_ns <= ns && ns < b.end_ns)
    }

    /// The blind stretches that overlap `[from_ns, to_ns]`.
    pub fn blind_during(&self, from_ns: u64, to_ns: u64) -> impl Iterator<Item = &BlindWindow> {
        self.blind
            .iter()
            .filter(move |b| b.start_ns <= to_ns && from_ns < b.end_ns)
    }

    /// The blind spots read from events delivered late ([`late`]): the
    /// watches' own are in the run's record.
    pub fn late_blind_spots(&self) -> impl Iterator<Item = &BlindWindow> {
        self.blind.iter().filter(|b| b.watch == late::LATE_WATCH)
    }

    /// All events, in observed order.
    pub fn events(&self) -> &[LifecycleEvent] {
        &self.events
    }

    /// Names of every Pod that has events, sorted.
    pub fn pod_names(&self) -> impl Iterator<Item = &str> {
        self.pods.keys().map(String::as_str)
    }

    /// One Pod's own events (Pod kinds), in observed order.
    pub fn pod_events<'a>(&'a self, pod: &str) -> impl Iterator<Item = &'a LifecycleEvent> {
        self.pod_events
            .get(pod)
            .into_iter()
            .flatten()
            .map(|&i| &self.events[i])
    }

    /// The image a Pod was created with (its first container's), when the
    /// run recorded it (`pod_created`'s `new`; runs before it did not).
    pub fn pod_image(&self, pod: &str) -> Option<&str> {
        self.pod_events(pod)
            .find(|e| e.kind == EventKind::PodCreated && !e.new.is_empty())
            .map(|e| e.new.as_str())
    }

    /// The Pods terminated by something other than their owner, with why
    /// and when it was seen: a drain step's evictions (`pod_evicted`'s
    /// reason) and deletions carrying the Pod's `DisruptionTarget`
    /// condition (`pod_deleting`'s reason: an eviction by `kubectl
    /// drain`, a preemption, a taint), first of each Pod, in time order.
    /// Empty for runs that did not record them (format 2 and older).
    pub fn disruptions(&self) -> Vec<(&str, &str, u64)> {
        let mut seen = std::collections::BTreeSet::new();
        self.events
            .iter()
            .filter(|e| {
                !e.reason.is_empty()
                    && !e.pod.is_empty()
                    && matches!(e.kind, EventKind::PodEvicted | EventKind::PodDeleting)
            })
            .filter(|e| seen.insert(e.pod.as_str()))
            .map(|e| (e.pod.as_str(), e.reason.as_str(), e.observed_ns))
            .collect()
    }

    /// Every state the Pod went through, each with the observed time it
    /// began.
    pub fn pod_history(&self, pod: &str) -> impl Iterator<Item = (u64, &PodState)> {
        self.pods
            .get(pod)
            .into_iter()
            .flat_map(|h| h.at.iter().copied().zip(h.states.iter()))
    }

    /// Every state each endpoint of the Pod went through.
    pub fn endpoint_history<'a>(
        &'a self,
        pod: &'a str,
    ) -> impl Iterator<Item = (u64, &'a EndpointState)> {
        self.endpoints_of(pod)
            .flat_map(|h| h.at.iter().copied().zip(h.states.iter()))
    }

    /// The histories of one Pod's endpoints (keys sort by Pod first).
    fn endpoints_of<'a>(
        &'a self,
        pod: &'a str,
    ) -> impl Iterator<Item = &'a History<EndpointState>> {
        let from = EndpointKey {
            pod: pod.to_string(),
            address: String::new(),
            slice: String::new(),
        };
        self.endpoints
            .range(from..)
            .take_while(move |(k, _)| k.pod == pod)
            .map(|(_, h)| h)
    }

    /// The whole cluster at `ns`.
    pub fn state_at(&self, ns: u64) -> ClusterState {
        ClusterState {
            at_ns: ns,
            pods: self
                .pods
                .values()
                .filter_map(|h| h.at(ns).cloned())
                .collect(),
            endpoints: self
                .endpoints
                .values()
                .filter_map(|h| h.at(ns).cloned())
                .collect(),
        }
    }

    /// One Pod at `ns`; `None` before its first event or if never seen.
    pub fn pod_at(&self, pod: &str, ns: u64) -> Option<&PodState> {
        self.pods.get(pod).and_then(|h| h.at(ns))
    }

    /// The endpoints of one Pod at `ns`.
    pub fn endpoints_of_at<'a>(
        &'a self,
        pod: &'a str,
        ns: u64,
    ) -> impl Iterator<Item = &'a EndpointState> {
        self.endpoints_of(pod).filter_map(move |h| h.at(ns))
    }

    /// Pods existing (seen, not gone) at `ns`.
    pub fn existing_pods_at(&self, ns: u64) -> impl Iterator<Item = &PodState> {
        self.pods
            .values()
            .filter_map(move |h| h.at(ns))
            .filter(|p| p.lifecycle != Lifecycle::Gone)
    }

    /// How many endpoints were listed and ready at `ns`.
    pub fn ready_endpoints_at(&self, ns: u64) -> usize {
        self.ready_counts.at(ns).copied().unwrap_or(0)
    }

    /// The fewest and the most ready endpoints at any instant of
    /// `[from, to]`.
    pub fn ready_endpoints_range(&self, from: u64, to: u64) -> (usize, usize) {
        let first = self.ready_endpoints_at(from);
        let lo = self.ready_counts.at.partition_point(|&t| t <= from);
        let hi = self.ready_counts.at.partition_point(|&t| t <= to);
        self.ready_counts.states[lo..hi.max(lo)]
            .iter()
            .fold((first, first), |(mn, mx), &c| (mn.min(c), mx.max(c)))
    }

    /// Whether a proxy lagging by at most `allowance_ns` could have routed
    /// to `pod` at `ns` by kube-proxy's terminating fallback (KEP-1669):
    /// with no endpoint of the Service ready, new connections go to the
    /// endpoints that are serving and terminating, such as a deleted Pod
    /// in its preStop.
    pub fn terminating_fallback(&self, pod: &str, ns: u64, allowance_ns: u64) -> bool {
        [ns.saturating_sub(allowance_ns), ns].into_iter().any(|at| {
            self.ready_endpoints_at(at) == 0
                && self
                    .endpoints_of_at(pod, at)
                    .any(|e| e.listed && e.serving && e.terminating)
        })
    }

    /// Pods per lifecycle at `ns`.
    pub fn pods_by_state_at(&self, ns: u64) -> PodCounts {
        self.pod_counts.at(ns).copied().unwrap_or_default()
    }

    /// Whether any endpoint event had been observed by `ns`: before that,
    /// "no ready endpoints" means "not watched yet", not "none".
    pub fn endpoints_known_at(&self, ns: u64) -> bool {
        self.first_endpoint_ns.is_some_and(|f| f <= ns)
    }

    /// The intervals in which some endpoint of `pod` was routable.
    pub fn routable_intervals(&self, pod: &str) -> &[Interval] {
        self.routable.get(pod).map_or(&[], Vec::as_slice)
    }

    /// Every stretch in which a Pod's endpoint became routable while the
    /// record ran, `(pod, interval)`: not those of the first listing (their
    /// start is when baton looked, not when they changed), nor one whose
    /// start a blind watch delivered late (its time is when baton heard).
    pub fn routable_additions(&self) -> Vec<(&str, Interval)> {
        let Some(first) = self.first_endpoint_ns else {
            return Vec::new();
        };
        self.routable
            .iter()
            .flat_map(|(pod, ivs)| ivs.iter().map(move |iv| (pod.as_str(), *iv)))
            .filter(|(_, iv)| iv.start > first)
            .filter(|(_, iv)| {
                !self
                    .blind
                    .iter()
                    .any(|b| b.start_ns <= iv.start && iv.start <= b.end_ns)
            })
            .collect()
    }

    /// Whether a proxy lagging the EndpointSlices by at most `allowance_ns`
    /// could have routed a new connection to `pod` at `ns`.
    pub fn routability(&self, pod: &str, ns: u64, allowance_ns: u64) -> Routability {
        let Some(intervals) = self.routable.get(pod) else {
            return Routability::Unknown;
        };
        // Intervals are disjoint and in order: the last one starting at or
        // before `ns` is the only one that can contain it or have ended
        // most recently.
        let i = intervals.partition_point(|iv| iv.start <= ns);
        let Some(iv) = i.checked_sub(1).map(|i| intervals[i]) else {
            return Routability::No;
        };
        match iv.end {
            None => Routability::Routable,
            Some(end) if ns < end => Routability::Routable,
            Some(end) if ns - end <= allowance_ns => Routability::Lagging { stopped_ns: end },
            Some(_) => Routability::No,
        }
    }
}

#[cfg(test)]
mod tests;
