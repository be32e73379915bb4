//! The sandbox SIMULATOR's controllers: Deployment, ReplicaSet,
//! EndpointSlice, disruption (PodDisruptionBudget status) and
//! HorizontalPodAutoscaler, with the Kubernetes rules that decide a rollout's safety
//! (see each module for the rules it mirrors, and where they come from in
//! `kubernetes/kubernetes`).
//!
//! They run as one level-triggered loop: every store change (and a tick,
//! for time-based rules such as minReadySeconds and progressDeadlineSeconds)
//! wakes it, and it reconciles Deployments, then ReplicaSets, then
//! EndpointSlices, then PodDisruptionBudgets, in that order and one after the other. Running them in
//! sequence means the Deployment controller always sees ReplicaSet status
//! that reflects the previous pass's scaling, which the real controllers
//! only get eventually; it removes a race, it does not add a guarantee
//! Kubernetes lacks.
//!
//! The Job controller ([`job`]) runs in the same loop, after the
//! ReplicaSet controller.
//!
//! The HorizontalPodAutoscaler controller ([`autoscaler`]) runs apart, on
//! its own sync period, as the real one does.

pub mod autoscaler;
pub mod deployment;
pub mod disruption;
pub mod endpointslice;
pub mod job;
pub mod replicaset;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{
    LabelSelector, ObjectMeta, OwnerReference, Time,
};
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use tokio_util::sync::CancellationToken;

use crate::events::Recorder;
use crate::store::Store;

/// How often the controllers re-check time-based rules with no change.
const TICK: Duration = Duration::from_millis(50);

/// Runs all controllers until `shutdown` is cancelled.
pub async fn run(store: Arc<Store>, shutdown: CancellationToken) {
    let mut wakeups = store.wakeups(TICK);
    let deploy_rec = Recorder::new(store.clone(), "deployment-controller");
    let rs_rec = Recorder::new(store.clone(), "replicaset-controller");
    let job_rec = Recorder::new(store.clone(), "job-controller");
    loop {
        deployment::reconcile_all(&store, &deploy_rec);
        replicaset::reconcile_all(&store, &rs_rec);
        job::reconcile_all(&store, &job_rec);
        endpointslice::reconcile_all(&store);
        disruption::reconcile_all(&store);
        if !wakeups.next(&shutdown).await {
            break;
        }
    }
}

/// Whether `labels` match a LabelSelector (matchLabels and matchExpressions).
/// An empty selector matches everything, as in Kubernetes.
pub fn selector_matches(sel: &LabelSelector, labels: Option<&BTreeMap<String, String>>) -> bool {
    let empty = BTreeMap::new();
    let labels = labels.unwrap_or(&empty);
    for (k, v) in sel.match_labels.iter().flatten() {
        if labels.get(k) != Some(v) {
            return false;
        }
    }
    for e in sel.match_expressions.iter().flatten() {
        let vals = e.values.as_deref().unwrap_or(&[]);
        let got = labels.get(&e.key);
        let ok = match e.operator.as_str() {
            "In" => got.is_some_and(|g| vals.contains(g)),
            "NotIn" => got.is_none_or(|g| !vals.contains(g)),
            "Exists" => got.is_some(),
            "DoesNotExist" => got.is_none(),
            _ => false,
        };
        if !ok {
            return false;
        }
    }
    true
}

/// Whether a map selector (a Service's) matches `labels`. An empty or absent
/// Service selector selects nothing (Kubernetes: no endpoints managed).
pub fn map_selector_matches(
    sel: &BTreeMap<String, String>,
    labels: Option<&BTreeMap<String, String>>,
) -> bool {
    !sel.is_empty()
        && sel
            .iter()
            .all(|(k, v)| labels.and_then(|l| l.get(k)) == Some(v))
}

/// The controller ownerReference of an object, if any.
pub fn controller_of(meta: &ObjectMeta) -> Option<&OwnerReference> {
    meta.owner_references
        .iter()
        .flatten()
        .find(|o| o.controller == Some(true))
}

/// Whether `meta` is controlled by the object with `uid`.
pub fn controlled_by(meta: &ObjectMeta, uid: &str) -> bool {
    controller_of(meta).is_some_and(|o| o.uid == uid)
}

/// An ownerReference to `(api_version, kind, meta)` as controller.
pub fn owner_ref(api_version: &str, kind: &str, meta: &ObjectMeta) -> OwnerReference {
    OwnerReference {
        api_version: api_version.to_string(),
        kind: kind.to_string(),
        name: meta.name.clone().unwrap_or_default(),
        uid: meta.uid.clone().unwrap_or_default(),
        controller: Some(true),
        block_owner_deletion: Some(true),
    }
}

pub fn is_terminating(meta: &ObjectMeta) -> bool {
    meta.deletion_timestamp.is_some()
}

fn phase(pod: &Pod) -> &str {
    pod.status
        .as_ref()
        .and_then(|s| s.phase.as_deref())
        .unwrap_or("Pending")
}

/// Kubernetes' `FilterActivePods`: not terminating, not Succeeded/Failed.
pub fn is_active(pod: &Pod) -> bool {
    !is_terminating(&pod.metadata) && !matches!(phase(pod), "Succeeded" | "Failed")
}

/// When the Pod's Ready condition last became True, if it is True.
pub fn ready_since(pod: &Pod) -> Option<Timestamp> {
    let c = pod
        .status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == "Ready")?;
    if c.status != "True" {
        return None;
    }
    Some(
        c.last_transition_time
            .as_ref()
            .map(|t| t.0)
            .unwrap_or_else(crate::node::now),
    )
}

pub fn is_ready(pod: &Pod) -> bool {
    ready_since(pod).is_some()
}

/// Kubernetes' `IsPodAvailable`: Ready for at least `min_ready_seconds`.
pub fn is_available(pod: &Pod, min_ready_seconds: i32, now: Timestamp) -> bool {
    match ready_since(pod) {
        None => false,
        Some(_) if min_ready_seconds <= 0 => true,
        Some(t) => t + SignedDuration::from_secs(min_ready_seconds as i64) <= now,
    }
}

/// Marks a Pod for graceful deletion the way the API server does for
/// `DELETE` with a grace period: `deletionGracePeriodSeconds` = the grace
/// period (the Pod's `terminationGracePeriodSeconds`, default 30, unless
/// given) and `deletionTimestamp` = now + grace (Kubernetes' meaning: the
/// time after which the object will be gone). The kubelet then stops the
/// Pod and removes it. A Pod already terminating is left as it is.
pub fn delete_pod_gracefully(
    store: &Store,
    ns: &str,
    name: &str,
    grace: Option<i64>,
) -> Result<Pod, crate::store::StoreError> {
    store.modify::<Pod>(ns, name, |p| {
        if p.metadata.deletion_timestamp.is_some() {
            return;
        }
        let g = grace
            .or_else(|| {
                p.spec
                    .as_ref()
                    .and_then(|s| s.termination_grace_period_seconds)
            })
            .unwrap_or(30)
            .max(0);
        p.metadata.deletion_grace_period_seconds = Some(g);
        p.metadata.deletion_timestamp =
            Some(Time(crate::node::now() + SignedDuration::from_secs(g)));
    })
}
