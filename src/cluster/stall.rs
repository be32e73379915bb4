//! When a rollout has stalled: the rules, as pure functions over a
//! Deployment and the Pods of its new ReplicaSet, with time passed in.
//!
//! A rollout is stalled when
//! - the Deployment's `Progressing` condition has reason
//!   `ProgressDeadlineExceeded` (the controller itself gave up);
//! - a new-ReplicaSet Pod's container has been failing to get its image
//!   (`ErrImagePull`, `ImagePullBackOff`) for at least
//!   [`IMAGE_PULL_ALLOWANCE`], or cannot be created for a configuration
//!   error (`CreateContainerConfigError`) for as long; an invalid image
//!   name (`InvalidImageName`, `ErrImageNeverPull`) stalls at once;
//! - a new-ReplicaSet Pod's container waits in `CrashLoopBackOff` after at
//!   least [`CRASH_LOOP_RESTARTS`] restarts;
//! - no status count (observed generation, replicas, updated, ready,
//!   available, unavailable) has changed for the policy's `no_progress`.
//!
//! Why an allowance for image pulls: `ErrImagePull` is what a registry
//! hiccup looks like too, and the kubelet retries (after 10 s, then 20 s,
//! ...). 20 s from the first failure lets one retry happen; a retry that
//! is still pulling at that point (waiting `ContainerCreating`) does not
//! count, so only a Pod that is *still* failing is a stall. Why two
//! restarts for a crash loop: one crash is often a start-up race (the
//! database not up yet) that the first restart fixes; two in a row is a
//! loop.
//!
//! Not for: listing Pods or watching (the caller does that, see
//! `cluster::steps`), or deciding what to do about a stall.

use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::Pod;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::fmt;
use std::time::Duration;

/// How long a container may fail to get its image before it is a stall.
pub const IMAGE_PULL_ALLOWANCE: Duration = Duration::from_secs(20);
/// How many restarts a container in `CrashLoopBackOff` may have before it
/// is a stall.
pub const CRASH_LOOP_RESTARTS: i32 = 2;
/// The annotation holding a Deployment's and a ReplicaSet's revision.
pub const REVISION_ANNOTATION: &str = "deployment.kubernetes.io/revision";
/// The label that ties a Pod to its ReplicaSet's template.
pub const HASH_LABEL: &str = "pod-template-hash";

/// What to do when a rollout stalls.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OnStall {
    /// Fail the step (and the run's rollout) and leave the cluster as is.
    #[default]
    Fail,
    /// Roll back to the previous revision (`kubectl rollout undo`) and wait
    /// for that rollout, so the cluster is left serving the old version.
    Undo,
}

/// How stalls are detected and handled while waiting for a rollout.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StallPolicy {
    /// A rollout whose status counts stay unchanged this long is stalled.
    #[serde(with = "humantime_serde", default = "default_no_progress")]
    pub no_progress: Duration,
    #[serde(default)]
    pub on_stall: OnStall,
}

fn default_no_progress() -> Duration {
    Duration::from_secs(60)
}

impl Default for StallPolicy {
    fn default() -> Self {
        StallPolicy {
            no_progress: default_no_progress(),
            on_stall: OnStall::Fail,
        }
    }
}

/// Which rule found the stall. Names are the `reason` of the
/// `rollout_stalled` event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StallKind {
    ErrImagePull,
    ImagePullBackOff,
    InvalidImageName,
    CreateContainerConfigError,
    CrashLoopBackOff,
    ProgressDeadlineExceeded,
    NoProgress,
}

impl StallKind {
    pub fn as_str(self) -> &'static str {
        match self {
            StallKind::ErrImagePull => "ErrImagePull",
            StallKind::ImagePullBackOff => "ImagePullBackOff",
            StallKind::InvalidImageName => "InvalidImageName",
            StallKind::CreateContainerConfigError => "CreateContainerConfigError",
            StallKind::CrashLoopBackOff => "CrashLoopBackOff",
            StallKind::ProgressDeadlineExceeded => "ProgressDeadlineExceeded",
            StallKind::NoProgress => "NoProgress",
        }
    }
}

impl fmt::Display for StallKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A stall found: which rule, the Pod it is about (if any), and a sentence
/// for people.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StallFinding {
    pub kind: StallKind,
    pub pod: Option<String>,
    pub message: String,
}

impl fmt::Display for StallFinding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.kind, self.message)
    }
}

/// The thresholds of the rules; [`StallRules::new`] takes the policy's
/// `no_progress` and the defaults for the rest.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StallRules {
    pub no_progress: Duration,
    pub image_pull_allowance: Duration,
    pub crash_loop_restarts: i32,
}

impl StallRules {
    pub fn new(no_progress: Duration) -> Self {
        StallRules {
            no_progress,
            image_pull_allowance: IMAGE_PULL_ALLOWANCE,
            crash_loop_restarts: CRASH_LOOP_RESTARTS,
        }
    }
}

/// The Deployment status counts whose movement is progress.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Counts {
    observed_generation: i64,
    replicas: i32,
    updated: i32,
    ready: i32,
    available: i32,
    unavailable: i32,
}

fn counts(d: &Deployment) -> Counts {
    let Some(s) = d.status.as_ref() else {
        return Counts::default();
    };
    Counts {
        observed_generation: s.observed_generation.unwrap_or(0),
        replicas: s.replicas.unwrap_or(0),
        updated: s.updated_replicas.unwrap_or(0),
        ready: s.ready_replicas.unwrap_or(0),
        available: s.available_replicas.unwrap_or(0),
        unavailable: s.unavailable_replicas.unwrap_or(0),
    }
}

/// The memory the rules need across observations: when the counts last
/// moved, and since when each container has been failing to start. `now`
/// is any monotonic time (the run clock), the same origin every call.
#[derive(Clone, Debug)]
pub struct StallTracker {
    rules: StallRules,
    counts: Option<Counts>,
    counts_since: Duration,
    /// (pod, container) → when it was first seen failing to start
    /// (image pull or config error). Forgotten once it runs.
    start_failing_since: HashMap<(String, String), Duration>,
}

impl StallTracker {
    /// A tracker whose no-progress clock starts at `now`.
    pub fn new(rules: StallRules, now: Duration) -> Self {
        StallTracker {
            rules,
            counts: None,
            counts_since: now,
            start_failing_since: HashMap::new(),
        }
    }

    /// Look at the Deployment and its new ReplicaSet's Pods at `now`;
    /// `Some` when the rollout has stalled. Call it for every change and
    /// periodically (the no-progress rule needs time to pass).
    pub fn observe(
        &mut self,
        now: Duration,
        d: &Deployment,
        new_pods: &[Pod],
    ) -> Option<StallFinding> {
        let name = d.metadata.name.as_deref().unwrap_or("?");
        if let Some(c) = d
            .status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .into_iter()
            .flatten()
            .find(|c| c.type_.as_deref() == Some("Progressing"))
            && c.reason.as_deref() == Some("ProgressDeadlineExceeded")
        {
            return Some(StallFinding {
                kind: StallKind::ProgressDeadlineExceeded,
                pod: None,
                message: c.message.clone().unwrap_or_else(|| {
                    format!("deployment {name:?} exceeded its progress deadline")
                }),
            });
        }

        let pods_finding = self.observe_pods(now, new_pods);

        let c = counts(d);
        match self.counts {
            // The first look: the clock has run since the tracker started.
            None => self.counts = Some(c),
            Some(before) if before != c => {
                self.counts = Some(c);
                self.counts_since = now;
            }
            Some(_) => {}
        }
        if pods_finding.is_some() {
            return pods_finding;
        }
        let still = now.saturating_sub(self.counts_since);
        if still >= self.rules.no_progress {
            let paused = if d.spec.paused == Some(true) {
                " (the Deployment is paused: add a resume step)"
            } else {
                ""
            };
            return Some(StallFinding {
                kind: StallKind::NoProgress,
                pod: None,
                message: format!(
                    "deployment {name:?} made no progress for {} (updated {}, ready {}, available {} of {}){paused}",
                    humantime::format_duration(Duration::from_secs(still.as_secs())),
                    c.updated,
                    c.ready,
                    c.available,
                    d.spec.replicas.unwrap_or(1),
                ),
            });
        }
        None
    }

    fn observe_pods(&mut self, now: Duration, pods: &[Pod]) -> Option<StallFinding> {
        let mut seen = std::collections::HashSet::new();
        let mut finding = None;
        for pod in pods {
            if pod.metadata.deletion_timestamp.is_some() {
                continue;
            }
            let pod_name = pod.metadata.name.clone().unwrap_or_default();
            let statuses = pod.status.as_ref().into_iter().flat_map(|s| {
                s.init_container_statuses
                    .iter()
                    .flatten()
                    .chain(s.container_statuses.iter().flatten())
            });
            for cs in statuses {
                let key = (pod_name.clone(), cs.name.clone());
                seen.insert(key.clone());
                let waiting = cs.state.as_ref().and_then(|s| s.waiting.as_ref());
                let Some(w) = waiting else {
                    // Running or terminated: it got started; forget.
                    self.start_failing_since.remove(&key);
                    continue;
                };
                let reason = w.reason.as_deref().unwrap_or("");
                let detail = w.message.as_deref().unwrap_or(reason);
                let found = |kind: StallKind, why: String| StallFinding {
                    kind,
                    pod: Some(pod_name.clone()),
                    message: format!("pod {pod_name:?} container {:?} {why}: {detail}", cs.name),
                };
                let hit = match reason {
                    "InvalidImageName" | "ErrImageNeverPull" => Some(found(
                        StallKind::InvalidImageName,
                        format!("cannot pull its image ({reason})"),
                    )),
                    "ErrImagePull" | "ImagePullBackOff" | "CreateContainerConfigError" => {
                        let since = *self.start_failing_since.entry(key).or_insert(now);
                        let failing = now.saturating_sub(since);
                        let kind = match reason {
                            "ErrImagePull" => StallKind::ErrImagePull,
                            "ImagePullBackOff" => StallKind::ImagePullBackOff,
                            _ => StallKind::CreateContainerConfigError,
                        };
                        (failing >= self.rules.image_pull_allowance).then(|| {
                            found(
                                kind,
                                format!(
                                    "has not started for {} ({reason})",
                                    humantime::format_duration(Duration::from_secs(
                                        failing.as_secs()
                                    ))
                                ),
                            )
                        })
                    }
                    "CrashLoopBackOff" if cs.restart_count >= self.rules.crash_loop_restarts => {
                        Some(found(
                            StallKind::CrashLoopBackOff,
                            format!("keeps crashing ({} restarts)", cs.restart_count),
                        ))
                    }
                    // ContainerCreating (maybe a retried pull in progress),
                    // PodInitializing, a first CrashLoopBackOff: wait.
                    _ => None,
                };
                if finding.is_none() {
                    finding = hit;
                }
            }
        }
        self.start_failing_since.retain(|k, _| seen.contains(k));
        finding
    }
}

/// A ReplicaSet's or Deployment's revision number, if it has one.
pub fn revision(meta: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta) -> Option<i64> {
    meta.annotations
        .as_ref()?
        .get(REVISION_ANNOTATION)?
        .parse()
        .ok()
}

/// Whether `rs` is controlled by `d` (its controller ownerReference).
pub fn owned_by(rs: &ReplicaSet, d: &Deployment) -> bool {
    let Some(uid) = d.metadata.uid.as_deref() else {
        return false;
    };
    rs.metadata
        .owner_references
        .iter()
        .flatten()
        .any(|o| o.uid == uid && o.controller == Some(true))
}

/// The Deployment's new ReplicaSet: the one of its ReplicaSets carrying
/// the Deployment's revision (the highest revision when the Deployment has
/// none yet).
pub fn new_replica_set<'a>(d: &Deployment, rss: &'a [ReplicaSet]) -> Option<&'a ReplicaSet> {
    let mine = || rss.iter().filter(|rs| owned_by(rs, d));
    match revision(&d.metadata) {
        Some(r) => mine().find(|rs| revision(&rs.metadata) == Some(r)),
        None => mine().max_by_key(|rs| revision(&rs.metadata).unwrap_or(0)),
    }
}

/// The Pods of `rs` among `pods` (by its `pod-template-hash`).
pub fn pods_of<'a>(rs: &ReplicaSet, pods: &'a [Pod]) -> Vec<&'a Pod> {
    let hash = rs.metadata.labels.as_ref().and_then(|l| l.get(HASH_LABEL));
    let Some(hash) = hash else {
        return Vec::new();
    };
    pods.iter()
        .filter(|p| p.metadata.labels.as_ref().and_then(|l| l.get(HASH_LABEL)) == Some(hash))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::apps::v1::{DeploymentCondition, DeploymentSpec, DeploymentStatus};
    use k8s_openapi::api::core::v1::{
        ContainerState, ContainerStateRunning, ContainerStateWaiting, ContainerStatus, PodStatus,
    };
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference, Time};

    const S: fn(u64) -> Duration = Duration::from_secs;

    fn deployment(updated: i32, ready: i32, available: i32) -> Deployment {
        Deployment {
            metadata: ObjectMeta {
                name: Some("web".into()),
                uid: Some("uid-d".into()),
                generation: Some(2),
                ..Default::default()
            },
            spec: DeploymentSpec {
                replicas: Some(3),
                ..Default::default()
            },
            status: Some(DeploymentStatus {
                observed_generation: Some(2),
                replicas: Some(4),
                updated_replicas: Some(updated),
                ready_replicas: Some(ready),
                available_replicas: Some(available),
                ..Default::default()
            }),
        }
    }

    fn pod(name: &str, reason: Option<&str>, restarts: i32) -> Pod {
        let state = match reason {
            Some(r) => ContainerState {
                waiting: Some(ContainerStateWaiting {
                    reason: Some(r.into()),
                    message: Some(format!("{r} details")),
                }),
                ..Default::default()
            },
            None => ContainerState {
                running: Some(ContainerStateRunning::default()),
                ..Default::default()
            },
        };
        Pod {
            metadata: ObjectMeta {
                name: Some(name.into()),
                ..Default::default()
            },
            spec: None,
            status: Some(PodStatus {
                container_statuses: Some(vec![ContainerStatus {
                    name: "nginx".into(),
                    restart_count: restarts,
                    state: Some(state),
                    ..Default::default()
                }]),
                ..Default::default()
            }),
        }
    }

    fn tracker() -> StallTracker {
        StallTracker::new(StallRules::new(S(60)), S(0))
    }

    #[test]
    fn a_progress_deadline_exceeded_condition_stalls_at_once() {
        let mut d = deployment(1, 3, 3);
        d.status.as_mut().unwrap().conditions = Some(vec![DeploymentCondition {
            type_: Some("Progressing".into()),
            status: Some("False".into()),
            reason: Some("ProgressDeadlineExceeded".into()),
            message: Some("ReplicaSet \"web-1\" has timed out progressing.".into()),
            ..Default::default()
        }]);
        let f = tracker().observe(S(0), &d, &[]).expect("stalled");
        assert_eq!(f.kind, StallKind::ProgressDeadlineExceeded);
        assert!(f.message.contains("timed out progressing"), "{f}");
    }

    #[test]
    fn an_image_pull_error_is_allowed_for_a_while_then_stalls() {
        let mut t = tracker();
        let d = deployment(1, 3, 3);
        assert_eq!(
            t.observe(S(1), &d, &[pod("p", Some("ErrImagePull"), 0)]),
            None
        );
        assert_eq!(
            t.observe(S(5), &d, &[pod("p", Some("ImagePullBackOff"), 0)]),
            None
        );
        let f = t
            .observe(S(21), &d, &[pod("p", Some("ImagePullBackOff"), 0)])
            .expect("stalled after the allowance");
        assert_eq!(f.kind, StallKind::ImagePullBackOff);
        assert_eq!(f.pod.as_deref(), Some("p"));
        assert!(f.message.contains("has not started for 20s"), "{f}");
    }

    #[test]
    fn a_retried_pull_in_progress_at_the_allowance_is_not_a_stall() {
        let mut t = tracker();
        let d = deployment(1, 3, 3);
        assert_eq!(
            t.observe(S(0), &d, &[pod("p", Some("ErrImagePull"), 0)]),
            None
        );
        assert_eq!(
            t.observe(S(25), &d, &[pod("p", Some("ContainerCreating"), 0)]),
            None
        );
        // Still failing after the retry: the clock kept running.
        assert!(
            t.observe(S(26), &d, &[pod("p", Some("ErrImagePull"), 0)])
                .is_some()
        );
    }

    #[test]
    fn a_container_that_started_forgets_its_pull_failures() {
        let mut t = tracker();
        let d = deployment(1, 3, 3);
        t.observe(S(0), &d, &[pod("p", Some("ErrImagePull"), 0)]);
        t.observe(S(10), &d, &[pod("p", None, 0)]);
        // A fresh failure starts a fresh allowance.
        assert_eq!(
            t.observe(S(25), &d, &[pod("p", Some("ErrImagePull"), 0)]),
            None
        );
        assert!(
            t.observe(S(45), &d, &[pod("p", Some("ErrImagePull"), 0)])
                .is_some()
        );
    }

    #[test]
    fn an_invalid_image_name_stalls_at_once() {
        let f = tracker()
            .observe(
                S(0),
                &deployment(1, 3, 3),
                &[pod("p", Some("InvalidImageName"), 0)],
            )
            .expect("stalled");
        assert_eq!(f.kind, StallKind::InvalidImageName);
    }

    #[test]
    fn a_crash_loop_stalls_from_the_second_restart() {
        let mut t = tracker();
        let d = deployment(1, 3, 3);
        assert_eq!(
            t.observe(S(0), &d, &[pod("p", Some("CrashLoopBackOff"), 1)]),
            None
        );
        let f = t
            .observe(S(1), &d, &[pod("p", Some("CrashLoopBackOff"), 2)])
            .expect("stalled");
        assert_eq!(f.kind, StallKind::CrashLoopBackOff);
        assert!(f.message.contains("2 restarts"), "{f}");
    }

    #[test]
    fn terminating_pods_are_not_judged() {
        let mut p = pod("p", Some("InvalidImageName"), 0);
        p.metadata.deletion_timestamp = Some(Time(Default::default()));
        assert_eq!(tracker().observe(S(0), &deployment(1, 3, 3), &[p]), None);
    }

    #[test]
    fn unchanged_counts_for_no_progress_stall_and_any_change_resets_the_clock() {
        let mut t = tracker();
        assert_eq!(t.observe(S(0), &deployment(1, 3, 3), &[]), None);
        assert_eq!(t.observe(S(59), &deployment(1, 3, 3), &[]), None);
        // Progress at 59 s: the clock restarts.
        assert_eq!(t.observe(S(59), &deployment(2, 3, 3), &[]), None);
        assert_eq!(t.observe(S(118), &deployment(2, 3, 3), &[]), None);
        let f = t
            .observe(S(119), &deployment(2, 3, 3), &[])
            .expect("no progress for 60 s");
        assert_eq!(f.kind, StallKind::NoProgress);
        assert!(f.message.contains("1m"), "{f}");
    }

    #[test]
    fn the_no_progress_clock_starts_when_the_tracker_does() {
        let mut t = StallTracker::new(StallRules::new(S(60)), S(100));
        // First observation long after creation still counts from creation.
        assert!(t.observe(S(160), &deployment(1, 3, 3), &[]).is_some());
    }

    #[test]
    fn a_paused_deployment_without_progress_says_so() {
        let mut d = deployment(0, 3, 3);
        d.spec.paused = Some(true);
        let f = tracker().observe(S(61), &d, &[]).expect("stalled");
        assert!(f.message.contains("paused"), "{f}");
    }

    fn rs(name: &str, owner: &str, rev: &str, hash: &str) -> ReplicaSet {
        ReplicaSet {
            metadata: ObjectMeta {
                name: Some(name.into()),
                annotations: Some([(REVISION_ANNOTATION.to_string(), rev.to_string())].into()),
                labels: Some([(HASH_LABEL.to_string(), hash.to_string())].into()),
                owner_references: Some(vec![OwnerReference {
                    uid: owner.into(),
                    controller: Some(true),
                    ..Default::default()
                }]),
                ..Default::default()
            },
            ..Default::default()
        }
    }

    #[test]
    fn the_new_replica_set_is_the_owned_one_with_the_deployments_revision() {
        let mut d = deployment(1, 3, 3);
        let rss = vec![
            rs("a", "uid-d", "1", "h1"),
            rs("b", "uid-d", "2", "h2"),
            rs("c", "someone-else", "3", "h3"),
        ];
        assert_eq!(
            new_replica_set(&d, &rss).unwrap().metadata.name.as_deref(),
            Some("b")
        );
        d.metadata.annotations = Some([(REVISION_ANNOTATION.into(), "1".into())].into());
        assert_eq!(
            new_replica_set(&d, &rss).unwrap().metadata.name.as_deref(),
            Some("a")
        );
    }

    #[test]
    fn pods_of_a_replica_set_match_its_template_hash() {
        let mut p1 = pod("p1", None, 0);
        p1.metadata.labels = Some([(HASH_LABEL.into(), "h2".into())].into());
        let mut p2 = pod("p2", None, 0);
        p2.metadata.labels = Some([(HASH_LABEL.into(), "h1".into())].into());
        let pods = [p1, p2];
        let got: Vec<_> = pods_of(&rs("b", "uid-d", "2", "h2"), &pods)
            .iter()
            .map(|p| p.metadata.name.clone().unwrap())
            .collect();
        assert_eq!(got, vec!["p1".to_string()]);
    }
}
