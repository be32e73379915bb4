//! The normalised lifecycle event (DESIGN.md, "Lifecycle events"): what the
//! watches saw the cluster do, and what baton's own rollout steps did, on
//! the run clock, one row each in `events.csv`.
//!
//! One flat record type rather than an enum of payloads, so that
//! `events.csv` is a plain table a person can filter and `baton report`
//! can read back unchanged. Fields that do not apply to a kind are empty.
//!
//! Not for: interpreting events (see `timeline`) or producing them (see
//! `cluster::watch` and `cluster::steps`).

use serde::{Deserialize, Serialize};
use std::fmt;

/// What happened. Names are the `kind` column of `events.csv`.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    // --- Pods (object `pod/NAME`, `pod` = NAME) ---
    /// The Pod object appeared (creationTimestamp as API time).
    PodCreated,
    /// `PodScheduled` condition turned true.
    PodScheduled,
    /// A container entered `running` (startedAt as API time).
    ContainerStarted,
    /// A container's restartCount rose (`new` = the count; `reason` = the
    /// last termination reason, `exit_code` its code).
    ContainerRestarted,
    /// A container is waiting with a reason worth showing (ErrImagePull,
    /// ImagePullBackOff, CrashLoopBackOff): `reason` holds it.
    ContainerWaiting,
    /// `Ready` condition turned true.
    PodReady,
    /// `Ready` condition turned false after having been true.
    PodNotReady,
    /// `deletionTimestamp` set: the Pod is terminating. API time is the
    /// moment the delete was accepted (deletionTimestamp minus the grace
    /// period); `grace_period_s` holds deletionGracePeriodSeconds;
    /// `reason` the Pod's `DisruptionTarget` condition's reason when it has
    /// one (`EvictionByEvictionAPI`, `PreemptionByScheduler`,
    /// `DeletionByTaintManager`, ...; format 3), empty otherwise.
    PodDeleting,
    /// A container terminated (`exit_code`, `reason`; finishedAt as API time).
    ContainerTerminated,
    /// The Pod object is gone from the API.
    PodGone,

    // --- Endpoints (object `endpointslice/SLICE`, `pod` = targetRef name,
    //     `address` = the endpoint's address) ---
    EndpointAdded,
    /// `conditions.ready` turned true.
    EndpointReady,
    /// `conditions.ready` turned false (while the endpoint stays listed).
    EndpointNotReady,
    /// `conditions.serving` turned true.
    EndpointServing,
    /// `conditions.serving` turned false.
    EndpointNotServing,
    /// `conditions.terminating` turned true.
    EndpointTerminating,
    /// The endpoint is no longer in any slice of the Service.
    EndpointRemoved,

    // --- Controllers ---
    /// A ReplicaSet's desired replicas changed (`old` → `new`).
    ReplicaSetScaled,
    /// Deployment status moved (`new` like "updated 2/3 ready 3 available 3").
    DeploymentProgress,
    /// A Deployment condition changed (`reason`, `new` = status).
    DeploymentCondition,
    /// A `type: Warning` Event for one of the target's objects (`reason`:
    /// BackOff, Unhealthy, FailedScheduling, ...), and `Killing`.
    #[default]
    ClusterEvent,

    // --- baton itself (object `step/N`, `detail` = the step) ---
    StepStarted,
    StepEnded,
    /// The step failed (`reason`, `detail`).
    StepFailed,
    /// A line an `exec` step's command printed (`reason` `stdout` or
    /// `stderr`, `detail` the line); the first lines of each step only,
    /// the rest are in `steps/N.log`.
    StepOutput,
    /// The rollout stalled (`reason`: ErrImagePull, CrashLoopBackOff,
    /// ProgressDeadlineExceeded, NoProgress).
    RolloutStalled,
    /// A watch re-listed after a 410 or a dropped stream; `blind_ns` is how
    /// long it saw nothing. Events synthesised from the re-list carry `late`.
    WatchRestarted,

    // --- Disruptions around the Deployment (format 3) ---
    /// A Node was cordoned (`spec.unschedulable` turned true; object
    /// `node/NAME`). Watched when the profile drains or uncordons.
    NodeCordoned,
    /// A Node was uncordoned.
    NodeUncordoned,
    /// A `drain` step's eviction of a Pod was accepted (object `pod/NAME`,
    /// `reason` `EvictionByEvictionAPI`, or `Deleted` when the drain
    /// deletes rather than evicts; `detail` the Node).
    PodEvicted,
    /// The Eviction API refused to evict a Pod (429: a
    /// PodDisruptionBudget would be violated); `reason`
    /// `TooManyRequests`, `detail` the API's message. The drain retries.
    EvictionRefused,
    /// A PodDisruptionBudget's `status.disruptionsAllowed` changed
    /// (object `poddisruptionbudget/NAME`, `old` → `new`; `detail` its
    /// healthy / desired / expected Pods).
    DisruptionsAllowed,
    /// A HorizontalPodAutoscaler's `status.desiredReplicas` changed
    /// (object `horizontalpodautoscaler/NAME`, `old` → `new`; `detail` its
    /// current metrics).
    AutoscalerDesired,
}

impl EventKind {
    pub fn as_str(self) -> &'static str {
        // serde's names, without going through a serializer.
        match self {
            EventKind::PodCreated => "pod_created",
            EventKind::PodScheduled => "pod_scheduled",
            EventKind::ContainerStarted => "container_started",
            EventKind::ContainerRestarted => "container_restarted",
            EventKind::ContainerWaiting => "container_waiting",
            EventKind::PodReady => "pod_ready",
            EventKind::PodNotReady => "pod_not_ready",
            EventKind::PodDeleting => "pod_deleting",
            EventKind::ContainerTerminated => "container_terminated",
            EventKind::PodGone => "pod_gone",
            EventKind::EndpointAdded => "endpoint_added",
            EventKind::EndpointReady => "endpoint_ready",
            EventKind::EndpointNotReady => "endpoint_not_ready",
            EventKind::EndpointServing => "endpoint_serving",
            EventKind::EndpointNotServing => "endpoint_not_serving",
            EventKind::EndpointTerminating => "endpoint_terminating",
            EventKind::EndpointRemoved => "endpoint_removed",
            EventKind::ReplicaSetScaled => "replica_set_scaled",
            EventKind::DeploymentProgress => "deployment_progress",
            EventKind::DeploymentCondition => "deployment_condition",
            EventKind::ClusterEvent => "cluster_event",
            EventKind::StepStarted => "step_started",
            EventKind::StepEnded => "step_ended",
            EventKind::StepFailed => "step_failed",
            EventKind::StepOutput => "step_output",
            EventKind::RolloutStalled => "rollout_stalled",
            EventKind::WatchRestarted => "watch_restarted",
            EventKind::NodeCordoned => "node_cordoned",
            EventKind::NodeUncordoned => "node_uncordoned",
            EventKind::PodEvicted => "pod_evicted",
            EventKind::EvictionRefused => "eviction_refused",
            EventKind::DisruptionsAllowed => "disruptions_allowed",
            EventKind::AutoscalerDesired => "autoscaler_desired",
        }
    }
}

impl fmt::Display for EventKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One lifecycle event. Field order is the column order of `events.csv`
/// (`rundir::events`): a new field goes last.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct LifecycleEvent {
    /// When baton saw it: ns since the run's origin (the clock of
    /// `requests.csv`). The order of events is the order of this field.
    pub observed_ns: u64,
    /// The API's own time for the transition, mapped onto the run clock
    /// (may be negative: before the run). Kubernetes times have
    /// one-second resolution; `observed_ns` is the precise one.
    pub api_ns: Option<i64>,
    pub kind: EventKind,
    /// `pod/NAME`, `endpointslice/NAME`, `replicaset/NAME`,
    /// `deployment/NAME`, `step/N`, `watch/RESOURCE`.
    pub object: String,
    /// The Pod this event is about, if any (for endpoints, the targetRef).
    pub pod: String,
    /// For endpoint events, the endpoint's address.
    pub address: String,
    /// The state before and after, where the event is a change.
    pub old: String,
    pub new: String,
    /// A short machine-friendly reason (exit reason, Event reason, ...).
    pub reason: String,
    /// For `pod_deleting`: deletionGracePeriodSeconds.
    pub grace_period_s: Option<i64>,
    /// For `container_terminated` / `container_restarted`.
    pub exit_code: Option<i32>,
    /// For `watch_restarted`: how long the watch saw nothing.
    pub blind_ns: Option<u64>,
    /// Synthesised from a re-list rather than seen as it happened.
    pub late: bool,
    /// Free text for people (Event message, step description, ...).
    pub detail: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kind_names_match_their_serde_names() {
        let kinds = [
            EventKind::PodCreated,
            EventKind::ReplicaSetScaled,
            EventKind::EndpointNotServing,
            EventKind::WatchRestarted,
            EventKind::EvictionRefused,
            EventKind::AutoscalerDesired,
        ];
        for k in kinds {
            let json = serde_json::to_string(&k).unwrap();
            assert_eq!(json, format!("\"{}\"", k.as_str()));
        }
    }
}
