//! What one Pod and one endpoint look like at an instant, and the pure
//! reducers that move them from one state to the next, one lifecycle event
//! at a time.
//!
//! The reducers are idempotent where a watch can repeat itself: a re-list
//! after a 410 synthesises events for state baton had already seen (a
//! second `pod_ready`, a second `pod_deleting`), and those must not move a
//! "since" time. Not for: ordering events or answering queries (see the
//! parent module, which keeps one history of these states per object).

use crate::cluster::event::{EventKind, LifecycleEvent};
use serde::Serialize;
use std::fmt;

/// A Pod's phase-ish lifecycle, coarser than Kubernetes' own phase and
/// closer to what matters for routing. Precedence when several apply:
/// gone, then terminating, then ready, then running, then pending.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Lifecycle {
    /// Seen, but no container has started yet (scheduling, pulling, an
    /// image that does not exist).
    Pending,
    /// A container started at least once, and the Pod is not ready: starting
    /// up, failing its probe, or crash-looping.
    Running,
    /// The `Ready` condition is true.
    Ready,
    /// It has a deletionTimestamp.
    Terminating,
    /// The object is gone from the API.
    Gone,
}

impl Lifecycle {
    pub const ALL: [Lifecycle; 5] = [
        Lifecycle::Pending,
        Lifecycle::Running,
        Lifecycle::Ready,
        Lifecycle::Terminating,
        Lifecycle::Gone,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Lifecycle::Pending => "pending",
            Lifecycle::Running => "running",
            Lifecycle::Ready => "ready",
            Lifecycle::Terminating => "terminating",
            Lifecycle::Gone => "gone",
        }
    }
}

impl fmt::Display for Lifecycle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The moment a Pod got its deletionTimestamp.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Deletion {
    /// When baton saw it (the run clock: the truth for ordering).
    pub observed_ns: u64,
    /// When the API accepted the delete (one-second resolution).
    pub api_ns: Option<i64>,
    /// deletionGracePeriodSeconds.
    pub grace_period_s: Option<i64>,
    /// Synthesised from a re-list: the deletion happened while the watch
    /// was blind, some time before `observed_ns`.
    pub late: bool,
    /// The Pod's `DisruptionTarget` reason (`EvictionByEvictionAPI`, ...)
    /// when something other than its owner deleted it; empty otherwise.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub disruption: String,
}

impl Deletion {
    /// The deletion a `pod_deleting` event says.
    pub fn of(e: &LifecycleEvent) -> Deletion {
        Deletion {
            observed_ns: e.observed_ns,
            api_ns: e.api_ns,
            grace_period_s: e.grace_period_s,
            late: e.late,
            disruption: e.reason.clone(),
        }
    }
}

/// The last time a container of the Pod terminated.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Termination {
    pub observed_ns: u64,
    /// finishedAt (one-second resolution).
    pub api_ns: Option<i64>,
    pub exit_code: Option<i32>,
    pub reason: String,
    pub late: bool,
}

/// One Pod at an instant.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PodState {
    pub name: String,
    pub lifecycle: Lifecycle,
    /// Observed time of the last change of `lifecycle`.
    pub lifecycle_since_ns: u64,
    /// Observed time of the first event about this Pod.
    pub first_seen_ns: u64,
    /// creationTimestamp, when a `pod_created` event carried it.
    pub created_api_ns: Option<i64>,
    pub ready: bool,
    /// While ready: since when (observed).
    pub ready_since_ns: Option<u64>,
    /// The last time it became ready, kept after it stops being ready, so
    /// "failed just after becoming ready" still answers once a probe has
    /// caught up.
    pub last_became_ready_ns: Option<u64>,
    /// A container is running (started, and not terminated since).
    pub container_running: bool,
    /// The first time a container started.
    pub first_started_ns: Option<u64>,
    pub deletion: Option<Deletion>,
    pub last_termination: Option<Termination>,
    pub restart_count: u32,
    /// Observed time of the last `container_restarted`.
    pub last_restart_ns: Option<u64>,
    /// ErrImagePull, CrashLoopBackOff, ... while waiting.
    pub waiting_reason: Option<String>,
    pub gone_ns: Option<u64>,
    /// The last change to this state came from a re-list (`late` event).
    pub late: bool,
}

impl PodState {
    fn new(name: &str, ns: u64) -> Self {
        PodState {
            name: name.to_string(),
            lifecycle: Lifecycle::Pending,
            lifecycle_since_ns: ns,
            first_seen_ns: ns,
            created_api_ns: None,
            ready: false,
            ready_since_ns: None,
            last_became_ready_ns: None,
            container_running: false,
            first_started_ns: None,
            deletion: None,
            last_termination: None,
            restart_count: 0,
            last_restart_ns: None,
            waiting_reason: None,
            gone_ns: None,
            late: false,
        }
    }

    /// The state a Pod starts in when `e` is the first event about it.
    pub fn first(e: &LifecycleEvent) -> Self {
        let mut s = PodState::new(&e.pod, e.observed_ns);
        s.apply(e);
        s
    }

    /// Move this state on by one event about the same Pod. Events of kinds
    /// that do not concern Pods leave it unchanged.
    pub fn apply(&mut self, e: &LifecycleEvent) {
        let ns = e.observed_ns;
        match e.kind {
            EventKind::PodCreated => {
                if self.created_api_ns.is_none() {
                    self.created_api_ns = e.api_ns;
                }
            }
            EventKind::PodScheduled => {}
            EventKind::ContainerStarted => {
                self.container_running = true;
                self.waiting_reason = None;
                self.first_started_ns.get_or_insert(ns);
            }
            EventKind::ContainerRestarted => {
                let count = e.new.trim().parse().unwrap_or(self.restart_count + 1);
                self.restart_count = count.max(self.restart_count);
                self.last_restart_ns = Some(ns);
                // The count rises when the new container starts.
                self.container_running = true;
                self.first_started_ns.get_or_insert(ns);
            }
            EventKind::ContainerWaiting => {
                self.container_running = false;
                self.waiting_reason = Some(e.reason.clone()).filter(|r| !r.is_empty());
            }
            EventKind::PodReady => {
                if !self.ready {
                    self.ready = true;
                    self.ready_since_ns = Some(ns);
                    self.last_became_ready_ns = Some(ns);
                }
                // A Pod cannot be ready without a running container, even
                // if the watch missed the start.
                self.container_running = true;
                self.first_started_ns.get_or_insert(ns);
            }
            EventKind::PodNotReady => {
                self.ready = false;
                self.ready_since_ns = None;
            }
            EventKind::PodDeleting => {
                // The first one counts: a re-list repeats it.
                if self.deletion.is_none() {
                    self.deletion = Some(Deletion::of(e));
                }
            }
            EventKind::ContainerTerminated => {
                self.container_running = false;
                self.last_termination = Some(Termination {
                    observed_ns: ns,
                    api_ns: e.api_ns,
                    exit_code: e.exit_code,
                    reason: e.reason.clone(),
                    late: e.late,
                });
            }
            EventKind::PodGone => {
                self.gone_ns.get_or_insert(ns);
                self.ready = false;
                self.ready_since_ns = None;
                self.container_running = false;
            }
            _ => return,
        }
        self.late = e.late;
        let lifecycle = self.derive_lifecycle();
        if lifecycle != self.lifecycle {
            self.lifecycle = lifecycle;
            self.lifecycle_since_ns = ns;
        }
    }

    fn derive_lifecycle(&self) -> Lifecycle {
        if self.gone_ns.is_some() {
            Lifecycle::Gone
        } else if self.deletion.is_some() {
            Lifecycle::Terminating
        } else if self.ready {
            Lifecycle::Ready
        } else if self.first_started_ns.is_some() {
            Lifecycle::Running
        } else {
            Lifecycle::Pending
        }
    }

    pub fn terminating(&self) -> bool {
        self.deletion.is_some() && self.gone_ns.is_none()
    }
}

/// One endpoint (an address of the Service, with the Pod behind it) at an
/// instant, merged over the Service's EndpointSlices.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct EndpointState {
    pub pod: String,
    pub address: String,
    /// The slice of the last event (`endpointslice/NAME`).
    pub slice: String,
    /// In some slice of the Service.
    pub listed: bool,
    pub ready: bool,
    pub serving: bool,
    pub terminating: bool,
    /// Observed time of the last change.
    pub since_ns: u64,
    /// While routable: since when.
    pub routable_since_ns: Option<u64>,
    /// When it last stopped being routable, if it ever was.
    pub unroutable_since_ns: Option<u64>,
    pub late: bool,
}

impl EndpointState {
    fn new(e: &LifecycleEvent) -> Self {
        EndpointState {
            pod: e.pod.clone(),
            address: e.address.clone(),
            slice: e.object.clone(),
            listed: false,
            ready: false,
            serving: false,
            terminating: false,
            since_ns: e.observed_ns,
            routable_since_ns: None,
            unroutable_since_ns: None,
            late: false,
        }
    }

    /// The state an endpoint starts in when `e` is the first event about it.
    pub fn first(e: &LifecycleEvent) -> Self {
        let mut s = EndpointState::new(e);
        s.apply(e);
        s
    }

    /// What a Service proxy routes new connections to: listed and ready.
    /// (kube-proxy falls back to serving-and-terminating endpoints when
    /// none is ready: see [`super::Timeline::terminating_fallback`].)
    pub fn routable(&self) -> bool {
        self.listed && self.ready
    }

    /// Move this state on by one event about the same endpoint.
    pub fn apply(&mut self, e: &LifecycleEvent) {
        let was_routable = self.routable();
        match e.kind {
            EventKind::EndpointAdded => {
                self.listed = true;
                // The watch may say which conditions it arrived with.
                for (cond, value) in conditions(&e.new) {
                    match cond {
                        "ready" => self.ready = value,
                        "serving" => self.serving = value,
                        "terminating" => self.terminating = value,
                        _ => {}
                    }
                }
            }
            EventKind::EndpointReady => {
                self.listed = true;
                self.ready = true;
            }
            EventKind::EndpointNotReady => {
                self.listed = true;
                self.ready = false;
            }
            EventKind::EndpointServing => {
                self.listed = true;
                self.serving = true;
            }
            EventKind::EndpointNotServing => {
                self.listed = true;
                self.serving = false;
            }
            EventKind::EndpointTerminating => {
                self.listed = true;
                self.terminating = true;
            }
            EventKind::EndpointRemoved => {
                self.listed = false;
                self.ready = false;
                self.serving = false;
            }
            _ => return,
        }
        if !e.object.is_empty() {
            self.slice = e.object.clone();
        }
        self.late = e.late;
        self.since_ns = e.observed_ns;
        match (was_routable, self.routable()) {
            (false, true) => {
                self.routable_since_ns = Some(e.observed_ns);
            }
            (true, false) => {
                self.routable_since_ns = None;
                self.unroutable_since_ns = Some(e.observed_ns);
            }
            _ => {}
        }
    }

    /// A short description: "ready", "not ready, terminating", "removed".
    pub fn describe(&self) -> String {
        if !self.listed {
            return "removed".to_string();
        }
        let mut s = String::from(if self.ready { "ready" } else { "not ready" });
        if self.terminating {
            s.push_str(", terminating");
        }
        if !self.serving && !self.ready {
            s.push_str(", not serving");
        }
        s
    }
}

/// The conditions an `endpoint_added` event's `new` column may carry:
/// words separated by commas, spaces or semicolons, each `cond`,
/// `cond=true|false` or `not_cond` (e.g. `ready,serving` or
/// `ready=false serving=true terminating=true`).
fn conditions(s: &str) -> impl Iterator<Item = (&str, bool)> {
    s.split([',', ' ', ';'])
        .filter(|w| !w.is_empty())
        .filter_map(|w| match w.split_once(['=', ':']) {
            Some((k, v)) => match v {
                "true" => Some((k, true)),
                "false" => Some((k, false)),
                _ => None,
            },
            None => match w.strip_prefix("not_") {
                Some(k) => Some((k, false)),
                None => Some((w, true)),
            },
        })
}

/// How many Pods are in each lifecycle at an instant (a row of
/// `timeline.csv`). Gone Pods count once they have been seen.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct PodCounts {
    pub pending: u32,
    pub running: u32,
    pub ready: u32,
    pub terminating: u32,
    pub gone: u32,
}

impl PodCounts {
    pub fn get(&self, l: Lifecycle) -> u32 {
        match l {
            Lifecycle::Pending => self.pending,
            Lifecycle::Running => self.running,
            Lifecycle::Ready => self.ready,
            Lifecycle::Terminating => self.terminating,
            Lifecycle::Gone => self.gone,
        }
    }

    fn slot(&mut self, l: Lifecycle) -> &mut u32 {
        match l {
            Lifecycle::Pending => &mut self.pending,
            Lifecycle::Running => &mut self.running,
            Lifecycle::Ready => &mut self.ready,
            Lifecycle::Terminating => &mut self.terminating,
            Lifecycle::Gone => &mut self.gone,
        }
    }

    pub(crate) fn add(&mut self, l: Lifecycle) {
        *self.slot(l) += 1;
    }

    pub(crate) fn remove(&mut self, l: Lifecycle) {
        let slot = self.slot(l);
        *slot = slot.saturating_sub(1);
    }

    /// Pods that exist (not gone).
    pub fn existing(&self) -> u32 {
        self.pending + self.running + self.ready + self.terminating
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn added_endpoint_conditions_parse_in_every_spelling() {
        let got: Vec<_> = conditions("ready,serving").collect();
        assert_eq!(got, vec![("ready", true), ("serving", true)]);
        let got: Vec<_> = conditions("ready=false serving=true terminating:true").collect();
        assert_eq!(
            got,
            vec![("ready", false), ("serving", true), ("terminating", true)]
        );
        let got: Vec<_> = conditions("not_ready; serving").collect();
        assert_eq!(got, vec![("ready", false), ("serving", true)]);
        assert_eq!(conditions("").count(), 0);
    }

    #[test]
    fn pod_counts_never_go_negative() {
        let mut c = PodCounts::default();
        c.remove(Lifecycle::Ready);
        assert_eq!(c.ready, 0);
        c.add(Lifecycle::Ready);
        c.add(Lifecycle::Gone);
        assert_eq!(c.existing(), 1);
        assert_eq!(c.get(Lifecycle::Gone), 1);
    }
}
