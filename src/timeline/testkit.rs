//! Builders for hand-made lifecycle event lists, shared by the timeline
//! and attribution tests. Times are in milliseconds of the run clock, the
//! unit a person writing a scenario thinks in.

use crate::cluster::event::{EventKind, LifecycleEvent};

pub const MS: u64 = 1_000_000;

/// A Pod event at `ms`.
pub fn pod(ms: u64, kind: EventKind, name: &str) -> LifecycleEvent {
    LifecycleEvent {
        observed_ns: ms * MS,
        kind,
        object: format!("pod/{name}"),
        pod: name.to_string(),
        ..Default::default()
    }
}

/// An endpoint event at `ms` for `name`'s endpoint (address derived from
/// the name, so each Pod has its own).
pub fn ep(ms: u64, kind: EventKind, name: &str) -> LifecycleEvent {
    LifecycleEvent {
        observed_ns: ms * MS,
        kind,
        object: "endpointslice/web-service-abc".to_string(),
        pod: name.to_string(),
        address: addr(name),
        ..Default::default()
    }
}

pub fn addr(name: &str) -> String {
    // Stable and distinct per name; the value itself does not matter.
    let h = name
        .bytes()
        .fold(7u32, |h, b| h.wrapping_mul(31).wrapping_add(b as u32));
    format!("127.0.{}.{}", (h >> 8) % 250 + 1, h % 250 + 1)
}

/// `pod_deleting` at `ms` with a grace period.
pub fn deleting(ms: u64, name: &str, grace_s: i64) -> LifecycleEvent {
    LifecycleEvent {
        grace_period_s: Some(grace_s),
        ..pod(ms, EventKind::PodDeleting, name)
    }
}

/// `container_terminated` at `ms`.
pub fn terminated(ms: u64, name: &str, exit_code: i32, reason: &str) -> LifecycleEvent {
    LifecycleEvent {
        exit_code: Some(exit_code),
        reason: reason.to_string(),
        ..pod(ms, EventKind::ContainerTerminated, name)
    }
}

/// `container_restarted` at `ms` to restart count `count`.
pub fn restarted(ms: u64, name: &str, count: u32) -> LifecycleEvent {
    LifecycleEvent {
        new: count.to_string(),
        reason: "Error".to_string(),
        exit_code: Some(1),
        ..pod(ms, EventKind::ContainerRestarted, name)
    }
}

/// The same event, marked as synthesised from a re-list.
pub fn late(e: LifecycleEvent) -> LifecycleEvent {
    LifecycleEvent { late: true, ..e }
}

/// The same event, with an API time.
pub fn api(e: LifecycleEvent, api_ms: i64) -> LifecycleEvent {
    LifecycleEvent {
        api_ns: Some(api_ms * MS as i64),
        ..e
    }
}

/// A Pod that starts and becomes ready, with its endpoint: created at
/// `ms`, running at `ms + 100`, ready (and endpoint added and ready) at
/// `ms + 200`.
pub fn pod_up(ms: u64, name: &str) -> Vec<LifecycleEvent> {
    vec![
        pod(ms, EventKind::PodCreated, name),
        pod(ms, EventKind::PodScheduled, name),
        pod(ms + 100, EventKind::ContainerStarted, name),
        ep(ms + 100, EventKind::EndpointAdded, name),
        pod(ms + 200, EventKind::PodReady, name),
        ep(ms + 200, EventKind::EndpointReady, name),
        ep(ms + 200, EventKind::EndpointServing, name),
    ]
}

/// A Pod that was already up when the run began (a watch's initial list):
/// everything at `ms`.
pub fn pod_already_up(ms: u64, name: &str) -> Vec<LifecycleEvent> {
    vec![
        pod(ms, EventKind::PodCreated, name),
        pod(ms, EventKind::ContainerStarted, name),
        pod(ms, EventKind::PodReady, name),
        ep(ms, EventKind::EndpointAdded, name),
        ep(ms, EventKind::EndpointReady, name),
        ep(ms, EventKind::EndpointServing, name),
    ]
}

/// A Pod deleted at `ms` as Kubernetes does it: deletionTimestamp, then
/// the endpoint goes not ready and terminating `ep_lag_ms` later, the
/// container exits `exit_ms` after the deletion, the endpoint is removed
/// and the Pod is gone shortly after.
pub fn pod_down(ms: u64, name: &str, ep_lag_ms: u64, exit_ms: u64) -> Vec<LifecycleEvent> {
    vec![
        deleting(ms, name, 30),
        ep(ms + ep_lag_ms, EventKind::EndpointNotReady, name),
        ep(ms + ep_lag_ms, EventKind::EndpointTerminating, name),
        pod(ms + ep_lag_ms, EventKind::PodNotReady, name),
        terminated(ms + exit_ms, name, 0, "Completed"),
        ep(ms + exit_ms + 10, EventKind::EndpointRemoved, name),
        pod(ms + exit_ms + 20, EventKind::PodGone, name),
    ]
}
