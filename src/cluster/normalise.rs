//! Turns successive states of the watched objects (Pods, EndpointSlices,
//! ReplicaSets, the Deployment, core/v1 Events, and around them the
//! Nodes, PodDisruptionBudgets and HorizontalPodAutoscalers that disrupt
//! or resize it) into [`LifecycleEvent`]s:
//! the transitions between the last known state of each object and the new
//! one, as `EventKind`'s doc comments define them.
//!
//! Pure: no I/O and no clock reading. The caller (`cluster::watch`) says
//! when it observed each state; the [`RunClock`] is only used to map the
//! API's wall-clock times onto the run clock.
//!
//! A re-list (after a watch restart, or the initial list) is diffed against
//! the last known state too, so nothing the watch missed is lost: missed
//! transitions come out marked `late`, and objects absent from the re-list
//! come out as gone / removed.
//!
//! Not for: deciding what a transition means for requests (see `timeline`).

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::str::FromStr;
use std::time::{Duration, SystemTime};

use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::core::v1::{ContainerStatus, Event as CoreEvent, Node, Pod};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use k8s_openapi::jiff::Timestamp;

use crate::clock::RunClock;
use crate::cluster::event::{EventKind, LifecycleEvent};

/// The annotation the EndpointSlice controller sets to the time of the
/// change (a Pod's) that triggered the slice's last update.
pub const LAST_CHANGE_TRIGGER_TIME: &str = "endpoints.kubernetes.io/last-change-trigger-time";

/// Container waiting reasons worth an event: the ones that mean the
/// container will not run without someone's help.
const WAITING_REASONS: &[&str] = &[
    "ErrImagePull",
    "ImagePullBackOff",
    "CrashLoopBackOff",
    "InvalidImageName",
    "CreateContainerConfigError",
    "CreateContainerError",
    "RunContainerError",
];

/// The kinds of object baton watches, one watch each.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Resource {
    Pods,
    EndpointSlices,
    ReplicaSets,
    Deployments,
    Events,
    /// Watched only when the profile drains or uncordons (cluster-scoped:
    /// the drain's ClusterRole grants it).
    Nodes,
    DisruptionBudgets,
    Autoscalers,
}

impl Resource {
    pub const ALL: [Resource; 8] = [
        Resource::Pods,
        Resource::EndpointSlices,
        Resource::ReplicaSets,
        Resource::Deployments,
        Resource::Events,
        Resource::Nodes,
        Resource::DisruptionBudgets,
        Resource::Autoscalers,
    ];

    /// The API's plural name (`pods`, ...), as in `watch/pods`.
    pub fn as_str(self) -> &'static str {
        match self {
            Resource::Pods => "pods",
            Resource::EndpointSlices => "endpointslices",
            Resource::ReplicaSets => "replicasets",
            Resource::Deployments => "deployments",
            Resource::Events => "events",
            Resource::Nodes => "nodes",
            Resource::DisruptionBudgets => "poddisruptionbudgets",
            Resource::Autoscalers => "horizontalpodautoscalers",
        }
    }
}

/// One state of one watched object.
#[derive(Clone, Debug)]
pub enum Object {
    Pod(Box<Pod>),
    EndpointSlice(Box<EndpointSlice>),
    ReplicaSet(Box<ReplicaSet>),
    Deployment(Box<Deployment>),
    Event(Box<CoreEvent>),
    Node(Box<Node>),
    DisruptionBudget(Box<PodDisruptionBudget>),
    Autoscaler(Box<HorizontalPodAutoscaler>),
}

impl Object {
    pub fn resource(&self) -> Resource {
        match self {
            Object::Pod(_) => Resource::Pods,
            Object::EndpointSlice(_) => Resource::EndpointSlices,
            Object::ReplicaSet(_) => Resource::ReplicaSets,
            Object::Deployment(_) => Resource::Deployments,
            Object::Event(_) => Resource::Events,
            Object::Node(_) => Resource::Nodes,
            Object::DisruptionBudget(_) => Resource::DisruptionBudgets,
            Object::Autoscaler(_) => Resource::Autoscalers,
        }
    }

    fn meta(&self) -> &ObjectMeta {
        match self {
            Object::Pod(o) => &o.metadata,
            Object::EndpointSlice(o) => &o.metadata,
            Object::ReplicaSet(o) => &o.metadata,
            Object::Deployment(o) => &o.metadata,
            Object::Event(o) => &o.metadata,
            Object::Node(o) => &o.metadata,
            Object::DisruptionBudget(o) => &o.metadata,
            Object::Autoscaler(o) => &o.metadata,
        }
    }

    fn name(&self) -> String {
        self.meta().name.clone().unwrap_or_default()
    }
}

/// How far a Pod transition's API time (one-second resolution) may trail
/// the moment its watch event arrived before the event counts as late.
pub const LATE_AFTER: std::time::Duration = std::time::Duration::from_secs(3);

/// Where a full list of a resource comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ListKind {
    /// The watch's first list: the state when baton started watching.
    /// Events are not late; their `detail` says "initial list".
    Initial,
    /// A re-list after the watch restarted (410 Gone, dropped stream):
    /// whatever changed meanwhile comes out `late`.
    AfterRestart,
}

/// The last known state of every watched object, and the diff to the next.
#[derive(Debug)]
pub struct Normaliser {
    clock: RunClock,
    /// The target Deployment's name, then any watched beside it
    /// (`target.also_watch`): their Events belong to the target, and only
    /// they are tracked among Deployments.
    deployments: Vec<String>,
    pods: BTreeMap<String, PodState>,
    /// Slice name → endpoint address → state.
    slices: BTreeMap<String, BTreeMap<String, EndpointState>>,
    /// ReplicaSet name → spec.replicas.
    replica_sets: BTreeMap<String, i32>,
    /// Deployment name → its last state.
    deploy: BTreeMap<String, DeploymentState>,
    /// (Event uid, count) already reported: a re-list or a repeated
    /// MODIFIED must not report the same occurrence twice.
    events_seen: HashSet<(String, i32)>,
    /// Each watched Deployment's Pod template labels: which budgets
    /// cover them.
    pod_labels: Vec<BTreeMap<String, String>>,
    /// Node name → cordoned.
    nodes: BTreeMap<String, bool>,
    /// Budget name → disruptionsAllowed, for budgets selecting the Pods.
    budgets: BTreeMap<String, i32>,
    /// Autoscaler name → desiredReplicas, for those scaling the Deployment.
    autoscalers: BTreeMap<String, i32>,
}

#[derive(Clone, Debug, Default, PartialEq)]
struct PodState {
    uid: String,
    /// The first container's image: the Pod's version on the report's lane.
    image: String,
    created: Option<Timestamp>,
    /// `PodScheduled` is True (with its transition time).
    scheduled: Option<Option<Timestamp>>,
    /// The `Ready` condition: `None` while the Pod has none.
    ready: Option<(bool, Option<Timestamp>)>,
    /// deletionTimestamp and deletionGracePeriodSeconds, once set.
    deleting: Option<(Option<Timestamp>, Option<i64>)>,
    /// The `DisruptionTarget` condition's reason (why the Pod is being
    /// terminated by something other than its owner: an eviction, ...).
    disruption: Option<String>,
    containers: BTreeMap<String, ContainerState>,
}

#[derive(Clone, Debug, Default, PartialEq)]
struct ContainerState {
    /// `Some(startedAt)` while running.
    running: Option<Option<Timestamp>>,
    restarts: i32,
    /// lastState.terminated: why the previous run ended.
    last_termination: Option<Termination>,
    waiting: Option<String>,
    terminated: Option<Termination>,
}

#[derive(Clone, Debug, PartialEq)]
struct Termination {
    exit_code: i32,
    reason: String,
    finished_at: Option<Timestamp>,
}

#[derive(Clone, Debug, PartialEq)]
struct EndpointState {
    pod: String,
    ready: bool,
    serving: bool,
    terminating: bool,
}

#[derive(Clone, Debug, PartialEq)]
struct DeploymentState {
    progress: String,
    /// type → (status, reason).
    conditions: BTreeMap<String, (String, String)>,
}

impl Normaliser {
    /// A normaliser for the Deployment named `deployment`.
    pub fn new(clock: RunClock, deployment: &str) -> Self {
        Normaliser {
            clock,
            deployments: vec![deployment.to_string()],
            pods: BTreeMap::new(),
            slices: BTreeMap::new(),
            replica_sets: BTreeMap::new(),
            deploy: BTreeMap::new(),
            events_seen: HashSet::new(),
            pod_labels: Vec::new(),
            nodes: BTreeMap::new(),
            budgets: BTreeMap::new(),
            autoscalers: BTreeMap::new(),
        }
    }

    /// Deployments watched beside the target (`target.also_watch`).
    pub fn also_deployments(mut self, names: impl IntoIterator<Item = String>) -> Self {
        self.deployments.extend(names);
        self
    }

    /// The labels of each watched Deployment's Pods: budgets selecting
    /// them are the Deployments' (without them, no budget is reported).
    pub fn with_pod_labels(mut self, labels: Vec<BTreeMap<String, String>>) -> Self {
        self.pod_labels = labels;
        self
    }

    /// An object was added or modified (a watch's ADDED / MODIFIED). A Pod
    /// transition whose API time trails the moment baton saw it by more
    /// than [`LATE_AFTER`] comes out `late`: the watch delivered it late
    /// (a stalled stream, an overloaded API server), and its API time is
    /// the better clock for it.
    pub fn applied(&mut self, obj: Object, observed_ns: u64) -> Vec<LifecycleEvent> {
        let is_pod = matches!(obj, Object::Pod(_));
        let mut out = self.diff(obj, observed_ns);
        if is_pod {
            for e in &mut out {
                if e.api_ns
                    .is_some_and(|api| observed_ns as i64 - api > LATE_AFTER.as_nanos() as i64)
                {
                    e.late = true;
                }
            }
        }
        out
    }

    /// The events between an object's last known state and `obj`.
    fn diff(&mut self, obj: Object, observed_ns: u64) -> Vec<LifecycleEvent> {
        let mut out = Vec::new();
        match obj {
            Object::Pod(p) => self.pod(&p, observed_ns, &mut out),
            Object::EndpointSlice(s) => self.slice(&s, observed_ns, &mut out),
            Object::ReplicaSet(rs) => self.replica_set(&rs, observed_ns, &mut out),
            Object::Deployment(d) => self.deployment(&d, observed_ns, &mut out),
            Object::Event(e) => self.cluster_event(&e, observed_ns, &mut out),
            Object::Node(n) => self.node(&n, observed_ns, &mut out),
            Object::DisruptionBudget(b) => self.budget(&b, observed_ns, &mut out),
            Object::Autoscaler(a) => self.autoscaler(&a, observed_ns, &mut out),
        }
        out
    }

    /// An object was deleted (a watch's DELETED, with its final state):
    /// the transitions into that final state, then its disappearance.
    pub fn deleted(&mut self, obj: Object, observed_ns: u64) -> Vec<LifecycleEvent> {
        let name = obj.name();
        let resource = obj.resource();
        let mut out = self.applied(obj, observed_ns);
        self.forget(resource, &name, observed_ns, &mut out);
        out
    }

    /// A full list of `resource`: the diff of every listed object against
    /// its last known state, and gone / removed for every known object the
    /// list no longer holds.
    pub fn relisted(
        &mut self,
        resource: Resource,
        objects: Vec<Object>,
        observed_ns: u64,
        kind: ListKind,
    ) -> Vec<LifecycleEvent> {
        let mut out = Vec::new();
        let present: BTreeSet<String> = objects.iter().map(Object::name).collect();
        let known: Vec<String> = match resource {
            Resource::Pods => self.pods.keys().cloned().collect(),
            Resource::EndpointSlices => self.slices.keys().cloned().collect(),
            Resource::ReplicaSets => self.replica_sets.keys().cloned().collect(),
            Resource::Deployments => self.deploy.keys().cloned().collect(),
            // Events expire; their absence means nothing.
            Resource::Events => Vec::new(),
            Resource::Nodes => self.nodes.keys().cloned().collect(),
            Resource::DisruptionBudgets => self.budgets.keys().cloned().collect(),
            Resource::Autoscalers => self.autoscalers.keys().cloned().collect(),
        };
        for name in known.iter().filter(|n| !present.contains(*n)) {
            self.forget(resource, name, observed_ns, &mut out);
        }
        for obj in objects.into_iter().filter(|o| o.resource() == resource) {
            out.extend(self.diff(obj, observed_ns));
        }
        for e in &mut out {
            match kind {
                ListKind::Initial => {
                    e.detail = if e.detail.is_empty() {
                        "initial list".to_string()
                    } else {
                        format!("initial list: {}", e.detail)
                    };
                }
                ListKind::AfterRestart => e.late = true,
            }
        }
        out
    }

    /// The object `name` of `resource` is gone from the API.
    fn forget(&mut self, resource: Resource, name: &str, at: u64, out: &mut Vec<LifecycleEvent>) {
        match resource {
            Resource::Pods => {
                if self.pods.remove(name).is_some() {
                    out.push(pod_event(EventKind::PodGone, name, at));
                }
            }
            Resource::EndpointSlices => {
                for (address, ep) in self.slices.remove(name).unwrap_or_default() {
                    out.push(endpoint_event(
                        EventKind::EndpointRemoved,
                        name,
                        &address,
                        &ep.pod,
                        at,
                        None,
                    ));
                }
            }
            Resource::ReplicaSets => {
                if let Some(n) = self.replica_sets.remove(name)
                    && n != 0
                {
                    out.push(LifecycleEvent {
                        observed_ns: at,
                        kind: EventKind::ReplicaSetScaled,
                        object: format!("replicaset/{name}"),
                        old: n.to_string(),
                        new: "0".into(),
                        detail: "ReplicaSet deleted".into(),
                        ..Default::default()
                    });
                }
            }
            Resource::Deployments => {
                if self.deploy.remove(name).is_some() {
                    out.push(LifecycleEvent {
                        observed_ns: at,
                        kind: EventKind::DeploymentProgress,
                        object: format!("deployment/{name}"),
                        new: "deleted".into(),
                        detail: "Deployment deleted".into(),
                        ..Default::default()
                    });
                }
            }
            Resource::Events => {}
            // A Node leaving the cluster is not a cordon; say nothing.
            Resource::Nodes => {
                self.nodes.remove(name);
            }
            Resource::DisruptionBudgets => {
                if let Some(n) = self.budgets.remove(name) {
                    out.push(LifecycleEvent {
                        observed_ns: at,
                        kind: EventKind::DisruptionsAllowed,
                        object: format!("poddisruptionbudget/{name}"),
                        old: n.to_string(),
                        detail: "PodDisruptionBudget deleted".into(),
                        ..Default::default()
                    });
                }
            }
            Resource::Autoscalers => {
                if let Some(n) = self.autoscalers.remove(name) {
                    out.push(LifecycleEvent {
                        observed_ns: at,
                        kind: EventKind::AutoscalerDesired,
                        object: format!("horizontalpodautoscaler/{name}"),
                        old: n.to_string(),
                        detail: "HorizontalPodAutoscaler deleted".into(),
                        ..Default::default()
                    });
                }
            }
        }
    }

    fn api(&self, t: Option<Timestamp>) -> Option<i64> {
        t.map(|t| self.clock.wall_to_ns(SystemTime::from(t)))
    }

    // ---- Pods ------------------------------------------------------------

    fn pod(&mut self, pod: &Pod, at: u64, out: &mut Vec<LifecycleEvent>) {
        let name = pod.metadata.name.clone().unwrap_or_default();
        let new = pod_state(pod);
        let mut old = self.pods.remove(&name);
        if let Some(o) = &old
            && !o.uid.is_empty()
            && !new.uid.is_empty()
            && o.uid != new.uid
        {
            // Same name, another Pod (deleted and re-created meanwhile).
            out.push(pod_event(EventKind::PodGone, &name, at));
            old = None;
        }
        self.pod_diff(&name, old.as_ref(), &new, at, out);
        self.pods.insert(name, new);
    }

    /// The transitions from `old` to `new`, in the order they happen to a
    /// Pod: created, scheduled, containers (re)started or stuck, ready,
    /// deleting, not ready, containers terminated.
    fn pod_diff(
        &self,
        name: &str,
        old: Option<&PodState>,
        new: &PodState,
        at: u64,
        out: &mut Vec<LifecycleEvent>,
    ) {
        let ev = |kind| pod_event(kind, name, at);
        if old.is_none() {
            out.push(LifecycleEvent {
                api_ns: self.api(new.created),
                new: new.image.clone(),
                ..ev(EventKind::PodCreated)
            });
        }
        if let Some(t) = new.scheduled
            && old.is_none_or(|o| o.scheduled.is_none())
        {
            out.push(LifecycleEvent {
                api_ns: self.api(t),
                ..ev(EventKind::PodScheduled)
            });
        }
        let none = ContainerState::default();
        for (cname, c) in &new.containers {
            let was = old.and_then(|o| o.containers.get(cname)).unwrap_or(&none);
            let detail = format!("container {cname}");
            if c.restarts > was.restarts {
                let last = c.last_termination.as_ref();
                out.push(LifecycleEvent {
                    api_ns: self.api(last.and_then(|t| t.finished_at)),
                    old: was.restarts.to_string(),
                    new: c.restarts.to_string(),
                    reason: last.map(|t| t.reason.clone()).unwrap_or_default(),
                    exit_code: last.map(|t| t.exit_code),
                    detail: detail.clone(),
                    ..ev(EventKind::ContainerRestarted)
                });
            }
            if let Some(started) = c.running
                && was.running != c.running
            {
                out.push(LifecycleEvent {
                    api_ns: self.api(started),
                    detail: detail.clone(),
                    ..ev(EventKind::ContainerStarted)
                });
            }
            if let Some(reason) = &c.waiting
                && WAITING_REASONS.contains(&reason.as_str())
                && was.waiting != c.waiting
            {
                out.push(LifecycleEvent {
                    old: was.waiting.clone().unwrap_or_default(),
                    reason: reason.clone(),
                    detail: detail.clone(),
                    ..ev(EventKind::ContainerWaiting)
                });
            }
        }
        let was_ready = old.and_then(|o| o.ready).map(|r| r.0);
        if let Some((true, t)) = new.ready
            && was_ready != Some(true)
        {
            out.push(LifecycleEvent {
                api_ns: self.api(t),
                ..ev(EventKind::PodReady)
            });
        }
        if let Some((deletion, grace)) = new.deleting
            && old.is_none_or(|o| o.deleting.is_none())
        {
            // deletionTimestamp is "now + grace" at the time of the delete.
            let accepted = deletion.map(|t| {
                SystemTime::from(t) - Duration::from_secs(grace.unwrap_or(0).max(0) as u64)
            });
            out.push(LifecycleEvent {
                api_ns: accepted.map(|t| self.clock.wall_to_ns(t)),
                grace_period_s: grace,
                reason: new.disruption.clone().unwrap_or_default(),
                ..ev(EventKind::PodDeleting)
            });
        }
        if let Some((false, t)) = new.ready
            && was_ready == Some(true)
        {
            out.push(LifecycleEvent {
                api_ns: self.api(t),
                ..ev(EventKind::PodNotReady)
            });
        }
        for (cname, c) in &new.containers {
            let was = old.and_then(|o| o.containers.get(cname)).unwrap_or(&none);
            if let Some(t) = &c.terminated
                && was.terminated.as_ref() != Some(t)
            {
                out.push(LifecycleEvent {
                    api_ns: self.api(t.finished_at),
                    reason: t.reason.clone(),
                    exit_code: Some(t.exit_code),
                    detail: format!("container {cname}"),
                    ..ev(EventKind::ContainerTerminated)
                });
            }
        }
    }

    // ---- EndpointSlices ----------------------------------------------------

    fn slice(&mut self, slice: &EndpointSlice, at: u64, out: &mut Vec<LifecycleEvent>) {
        let name = slice.metadata.name.clone().unwrap_or_default();
        let trigger = slice
            .metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(LAST_CHANGE_TRIGGER_TIME))
            .and_then(|s| Timestamp::from_str(s).ok());
        let api = self.api(trigger);
        let new = endpoints_of(slice);
        let old = self.slices.remove(&name).unwrap_or_default();
        let ev =
            |kind, address: &str, pod: &str| endpoint_event(kind, &name, address, pod, at, api);
        for (address, ep) in &old {
            if !new.contains_key(address) {
                out.push(ev(EventKind::EndpointRemoved, address, &ep.pod));
            }
        }
        for (address, ep) in &new {
            let (pod, addr) = (ep.pod.as_str(), address.as_str());
            match old.get(address) {
                None => {
                    out.push(LifecycleEvent {
                        new: format!(
                            "ready={} serving={} terminating={}",
                            ep.ready, ep.serving, ep.terminating
                        ),
                        ..ev(EventKind::EndpointAdded, addr, pod)
                    });
                    if ep.terminating {
                        out.push(ev(EventKind::EndpointTerminating, addr, pod));
                    }
                    if ep.serving {
                        out.push(ev(EventKind::EndpointServing, addr, pod));
                    }
                    if ep.ready {
                        out.push(ev(EventKind::EndpointReady, addr, pod));
                    }
                }
                Some(was) => {
                    // Losses first (a terminating Pod's endpoint turns
                    // terminating and not ready in one update), then gains.
                    if ep.terminating && !was.terminating {
                        out.push(ev(EventKind::EndpointTerminating, addr, pod));
                    }
                    if !ep.ready && was.ready {
                        out.push(ev(EventKind::EndpointNotReady, addr, pod));
                    }
                    if !ep.serving && was.serving {
                        out.push(ev(EventKind::EndpointNotServing, addr, pod));
                    }
                    if ep.serving && !was.serving {
                        out.push(ev(EventKind::EndpointServing, addr, pod));
                    }
                    if ep.ready && !was.ready {
                        out.push(ev(EventKind::EndpointReady, addr, pod));
                    }
                }
            }
        }
        self.slices.insert(name, new);
    }

    // ---- ReplicaSets ---------------------------------------------------------

    fn replica_set(&mut self, rs: &ReplicaSet, at: u64, out: &mut Vec<LifecycleEvent>) {
        let name = rs.metadata.name.clone().unwrap_or_default();
        let replicas = rs.spec.replicas.unwrap_or(1);
        let old = self.replica_sets.insert(name.clone(), replicas);
        if old == Some(replicas) {
            return;
        }
        out.push(LifecycleEvent {
            observed_ns: at,
            // A new ReplicaSet's first size dates from its creation; later
            // sizes have no API time.
            api_ns: match old {
                None => self.api(rs.metadata.creation_timestamp.as_ref().map(|t| t.0)),
                Some(_) => None,
            },
            kind: EventKind::ReplicaSetScaled,
            object: format!("replicaset/{name}"),
            old: old.map(|n| n.to_string()).unwrap_or_default(),
            new: replicas.to_string(),
            ..Default::default()
        });
    }

    // ---- the Deployment -------------------------------------------------------

    fn deployment(&mut self, d: &Deployment, at: u64, out: &mut Vec<LifecycleEvent>) {
        let name = d.metadata.name.clone().unwrap_or_default();
        if !self.deployments.contains(&name) {
            return;
        }
        let object = format!("deployment/{name}");
        let new = DeploymentState {
            progress: progress(d),
            conditions: d
                .status
                .iter()
                .flat_map(|s| s.conditions.iter().flatten())
                .map(|c| {
                    (
                        c.type_.clone().unwrap_or_default(),
                        (
                            c.status.clone().unwrap_or_default(),
                            c.reason.clone().unwrap_or_default(),
                        ),
                    )
                })
                .collect(),
        };
        let old = self.deploy.remove(&name);
        if old.as_ref().is_none_or(|o| o.progress != new.progress) {
            out.push(LifecycleEvent {
                observed_ns: at,
                kind: EventKind::DeploymentProgress,
                object: object.clone(),
                old: old.as_ref().map(|o| o.progress.clone()).unwrap_or_default(),
                new: new.progress.clone(),
                ..Default::default()
            });
        }
        for c in d.status.iter().flat_map(|s| s.conditions.iter().flatten()) {
            let ty = c.type_.clone().unwrap_or_default();
            let now = &new.conditions[&ty];
            let was = old.as_ref().and_then(|o| o.conditions.get(&ty));
            if was == Some(now) {
                continue;
            }
            let when = c
                .last_update_time
                .as_ref()
                .or(c.last_transition_time.as_ref());
            out.push(LifecycleEvent {
                observed_ns: at,
                api_ns: self.api(when.map(|t| t.0)),
                kind: EventKind::DeploymentCondition,
                object: object.clone(),
                old: was.map(|w| w.0.clone()).unwrap_or_default(),
                new: now.0.clone(),
                reason: now.1.clone(),
                detail: format!("{ty}: {}", c.message.as_deref().unwrap_or("")),
                ..Default::default()
            });
        }
        self.deploy.insert(name, new);
    }

    // ---- Nodes, budgets, autoscalers ------------------------------------------

    fn node(&mut self, n: &Node, at: u64, out: &mut Vec<LifecycleEvent>) {
        let name = n.metadata.name.clone().unwrap_or_default();
        let cordoned = n.spec.as_ref().and_then(|s| s.unschedulable) == Some(true);
        let old = self.nodes.insert(name.clone(), cordoned);
        // A Node first seen schedulable is the normal state: nothing to say.
        if old == Some(cordoned) || (old.is_none() && !cordoned) {
            return;
        }
        out.push(LifecycleEvent {
            observed_ns: at,
            kind: if cordoned {
                EventKind::NodeCordoned
            } else {
                EventKind::NodeUncordoned
            },
            object: format!("node/{name}"),
            new: if cordoned {
                "unschedulable"
            } else {
                "schedulable"
            }
            .into(),
            ..Default::default()
        });
    }

    fn budget(&mut self, b: &PodDisruptionBudget, at: u64, out: &mut Vec<LifecycleEvent>) {
        let name = b.metadata.name.clone().unwrap_or_default();
        let selects = b
            .spec
            .as_ref()
            .and_then(|s| s.selector.clone())
            .and_then(|sel| kube::core::Selector::try_from(sel).ok())
            .is_some_and(|sel| {
                use kube::core::SelectorExt;
                !sel.selects_all()
                    && self
                        .pod_labels
                        .iter()
                        .any(|l| !l.is_empty() && sel.matches(l))
            });
        if !selects {
            return;
        }
        let st = b.status.clone().unwrap_or_default();
        let allowed = st.disruptions_allowed.unwrap_or(0);
        let old = self.budgets.insert(name.clone(), allowed);
        if old == Some(allowed) {
            return;
        }
        let spec = b.spec.clone().unwrap_or_default();
        let rule = match (&spec.min_available, &spec.max_unavailable) {
            (Some(m), _) => format!("minAvailable {}", int_or_string(m)),
            (None, Some(m)) => format!("maxUnavailable {}", int_or_string(m)),
            (None, None) => "no minAvailable or maxUnavailable".into(),
        };
        out.push(LifecycleEvent {
            observed_ns: at,
            kind: EventKind::DisruptionsAllowed,
            object: format!("poddisruptionbudget/{name}"),
            old: old.map(|n| n.to_string()).unwrap_or_default(),
            new: allowed.to_string(),
            detail: format!(
                "{rule}: healthy {} of {} expected, {} desired",
                st.current_healthy.unwrap_or(0),
                st.expected_pods.unwrap_or(0),
                st.desired_healthy.unwrap_or(0)
            ),
            ..Default::default()
        });
    }

    fn autoscaler(&mut self, a: &HorizontalPodAutoscaler, at: u64, out: &mut Vec<LifecycleEvent>) {
        let name = a.metadata.name.clone().unwrap_or_default();
        let spec = a.spec.clone();
        let target = &spec.scale_target_ref;
        if target.kind != "Deployment" || !self.deployments.contains(&target.name) {
            return;
        }
        let Some(st) = a.status.clone() else { return };
        let desired = st.desired_replicas;
        let old = self.autoscalers.insert(name.clone(), desired);
        if old == Some(desired) {
            return;
        }
        let metrics: Vec<String> = st
            .current_metrics
            .iter()
            .flatten()
            .filter_map(|m| {
                let r = m.resource.as_ref()?;
                let u = r.current.average_utilization?;
                Some(format!("{} {u}%", r.name))
            })
            .collect();
        out.push(LifecycleEvent {
            observed_ns: at,
            api_ns: self
                .api(st.last_scale_time.as_ref().map(|t| t.0))
                .filter(|_| old.is_some()),
            kind: EventKind::AutoscalerDesired,
            object: format!("horizontalpodautoscaler/{name}"),
            old: old.map(|n| n.to_string()).unwrap_or_default(),
            new: desired.to_string(),
            detail: format!(
                "current {} (min {}, max {}){}",
                st.current_replicas.unwrap_or(0),
                spec.min_replicas.unwrap_or(1),
                spec.max_replicas,
                if metrics.is_empty() {
                    String::new()
                } else {
                    format!("; {}", metrics.join(", "))
                }
            ),
            ..Default::default()
        });
    }

    // ---- core/v1 Events ------------------------------------------------------

    /// Whether an Event's involved object is one of the target's: its
    /// Deployment, a ReplicaSet seen, or a Pod seen or named after one of
    /// those ReplicaSets (an Event can arrive before the Pod's own watch
    /// reports the Pod).
    fn belongs(&self, kind: &str, name: &str) -> bool {
        match kind {
            "Deployment" => self.deployments.iter().any(|d| d == name),
            "ReplicaSet" => self.replica_sets.contains_key(name),
            "Pod" => {
                self.pods.contains_key(name)
                    || self.replica_sets.keys().any(|rs| {
                        name.strip_prefix(rs.as_str())
                            .is_some_and(|r| r.starts_with('-'))
                    })
            }
            _ => false,
        }
    }

    fn cluster_event(&mut self, e: &CoreEvent, at: u64, out: &mut Vec<LifecycleEvent>) {
        let ty = e.type_.as_deref().unwrap_or("");
        let reason = e.reason.as_deref().unwrap_or("");
        if ty != "Warning" && reason != "Killing" {
            return;
        }
        let kind = e.involved_object.kind.as_deref().unwrap_or("");
        let name = e.involved_object.name.as_deref().unwrap_or("");
        if !self.belongs(kind, name) {
            return;
        }
        let uid = e
            .metadata
            .uid
            .clone()
            .or_else(|| e.metadata.name.clone())
            .unwrap_or_default();
        let count = e
            .count
            .or_else(|| e.series.as_ref().and_then(|s| s.count))
            .unwrap_or(1);
        if !self.events_seen.insert((uid, count)) {
            return;
        }
        let when = e
            .last_timestamp
            .as_ref()
            .map(|t| t.0)
            .or_else(|| e.event_time.as_ref().map(|t| t.0))
            .or_else(|| e.first_timestamp.as_ref().map(|t| t.0));
        out.push(LifecycleEvent {
            observed_ns: at,
            api_ns: self.api(when),
            kind: EventKind::ClusterEvent,
            object: format!("{}/{name}", kind.to_ascii_lowercase()),
            pod: if kind == "Pod" {
                name.to_string()
            } else {
                String::new()
            },
            new: ty.to_string(),
            reason: reason.to_string(),
            detail: e.message.clone().unwrap_or_default(),
            ..Default::default()
        });
    }
}

/// The event a watch records when it re-listed: it saw nothing from
/// `blind_from_ns` until the re-list ended at `observed_ns`.
pub fn watch_restarted(
    resource: Resource,
    blind_from_ns: u64,
    observed_ns: u64,
    reason: &str,
    detail: &str,
) -> LifecycleEvent {
    LifecycleEvent {
        observed_ns,
        kind: EventKind::WatchRestarted,
        object: format!("watch/{}", resource.as_str()),
        blind_ns: Some(observed_ns.saturating_sub(blind_from_ns)),
        reason: reason.to_string(),
        detail: detail.to_string(),
        ..Default::default()
    }
}

/// `updated=2/3 ready=3 available=3 unavailable=0 gen=4/4`: the numbers
/// `kubectl rollout status` reads, in one comparable string.
pub fn progress(d: &Deployment) -> String {
    let s = d.status.clone().unwrap_or_default();
    format!(
        "updated={}/{} ready={} available={} unavailable={} gen={}/{}",
        s.updated_replicas.unwrap_or(0),
        d.spec.replicas.unwrap_or(1),
        s.ready_replicas.unwrap_or(0),
        s.available_replicas.unwrap_or(0),
        s.unavailable_replicas.unwrap_or(0),
        s.observed_generation.unwrap_or(0),
        d.metadata.generation.unwrap_or(0),
    )
}

fn pod_event(kind: EventKind, name: &str, at: u64) -> LifecycleEvent {
    LifecycleEvent {
        observed_ns: at,
        kind,
        object: format!("pod/{name}"),
        pod: name.to_string(),
        ..Default::default()
    }
}

fn endpoint_event(
    kind: EventKind,
    slice: &str,
    address: &str,
    pod: &str,
    at: u64,
    api_ns: Option<i64>,
) -> LifecycleEvent {
    LifecycleEvent {
        observed_ns: at,
        api_ns,
        kind,
        object: format!("endpointslice/{slice}"),
        pod: pod.to_string(),
        address: address.to_string(),
        ..Default::default()
    }
}

fn int_or_string(v: &k8s_openapi::apimachinery::pkg::util::intstr::IntOrString) -> String {
    use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
    match v {
        IntOrString::Int(n) => n.to_string(),
        IntOrString::String(s) => s.clone(),
    }
}

fn ts(t: &Option<Time>) -> Option<Timestamp> {
    t.as_ref().map(|t| t.0)
}

fn pod_state(pod: &Pod) -> PodState {
    let m = &pod.metadata;
    let status = pod.status.clone().unwrap_or_default();
    let condition = |ty: &str| {
        status
            .conditions
            .iter()
            .flatten()
            .find(|c| c.type_ == ty)
            .map(|c| (c.status == "True", ts(&c.last_transition_time)))
    };
    PodState {
        uid: m.uid.clone().unwrap_or_default(),
        image: pod
            .spec
            .as_ref()
            .and_then(|s| s.containers.first())
            .and_then(|c| c.image.clone())
            .unwrap_or_default(),
        created: ts(&m.creation_timestamp),
        scheduled: condition("PodScheduled").filter(|c| c.0).map(|c| c.1),
        ready: condition("Ready"),
        deleting: m
            .deletion_timestamp
            .as_ref()
            .map(|t| (Some(t.0), m.deletion_grace_period_seconds)),
        disruption: status
            .conditions
            .iter()
            .flatten()
            .find(|c| c.type_ == "DisruptionTarget" && c.status == "True")
            .map(|c| {
                c.reason
                    .clone()
                    .unwrap_or_else(|| "DisruptionTarget".into())
            }),
        containers: status
            .container_statuses
            .iter()
            .flatten()
            .map(|c| (c.name.clone(), container_state(c)))
            .collect(),
    }
}

fn container_state(c: &ContainerStatus) -> ContainerState {
    let term = |s: &Option<k8s_openapi::api::core::v1::ContainerState>| {
        s.as_ref()
            .and_then(|s| s.terminated.as_ref())
            .map(|t| Termination {
                exit_code: t.exit_code,
                reason: t.reason.clone().unwrap_or_default(),
                finished_at: ts(&t.finished_at),
            })
    };
    let state = c.state.as_ref();
    ContainerState {
        running: state
            .and_then(|s| s.running.as_ref())
            .map(|r| ts(&r.started_at)),
        restarts: c.restart_count,
        last_termination: term(&c.last_state),
        waiting: state
            .and_then(|s| s.waiting.as_ref())
            .map(|w| w.reason.clone().unwrap_or_default()),
        terminated: term(&c.state),
    }
}

/// The endpoints of a slice by address, with conditions as Kubernetes
/// defines their absence: ready unknown = ready, serving unknown = ready,
/// terminating unknown = not terminating.
fn endpoints_of(slice: &EndpointSlice) -> BTreeMap<String, EndpointState> {
    let mut out = BTreeMap::new();
    for ep in slice.endpoints.iter().flatten() {
        let c = ep.conditions.clone().unwrap_or_default();
        let ready = c.ready.unwrap_or(true);
        let pod = ep
            .target_ref
            .as_ref()
            .filter(|r| r.kind.as_deref().is_none_or(|k| k == "Pod"))
            .and_then(|r| r.name.clone())
            .unwrap_or_default();
        for address in &ep.addresses {
            out.insert(
                address.clone(),
                EndpointState {
                    pod: pod.clone(),
                    ready,
                    serving: c.serving.unwrap_or(ready),
                    terminating: c.terminating.unwrap_or(false),
                },
            );
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    /// An API timestamp `secs` after the clock's origin, in the wire format.
    fn at(clock: &RunClock, secs: i64) -> String {
        let origin = Timestamp::try_from(clock.wall_origin()).unwrap();
        let whole = Timestamp::from_second(origin.as_second() + secs).unwrap();
        whole.to_string()
    }

    /// What `at(clock, secs)` maps to on the run clock.
    fn api(clock: &RunClock, secs: i64) -> Option<i64> {
        let t = Timestamp::from_str(&at(clock, secs)).unwrap();
        Some(clock.wall_to_ns(SystemTime::from(t)))
    }

    fn obj<T: serde::de::DeserializeOwned>(v: Value) -> T {
        serde_json::from_value(v).unwrap()
    }

    fn pod(v: Value) -> Object {
        let mut base =
            json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "web-1", "uid": "u1"}});
        merge(&mut base, v);
        Object::Pod(Box::new(obj(base)))
    }

    fn merge(base: &mut Value, patch: Value) {
        match (base, patch) {
            (Value::Object(b), Value::Object(p)) => {
                for (k, v) in p {
                    merge(b.entry(k).or_insert(Value::Null), v);
                }
            }
            (b, p) => *b = p,
        }
    }

    fn kinds(events: &[LifecycleEvent]) -> Vec<EventKind> {
        events.iter().map(|e| e.kind).collect()
    }

    fn norm() -> (RunClock, Normaliser) {
        let clock = RunClock::start();
        (clock, Normaliser::new(clock, "web-server"))
    }

    fn running(clock: &RunClock, started: i64, restarts: i32) -> Value {
        json!({"name": "nginx", "image": "nginx:1.27", "imageID": "", "ready": false,
               "restartCount": restarts, "state": {"running": {"startedAt": at(clock, started)}}})
    }

    fn status(conditions: Value, containers: Value) -> Value {
        json!({"status": {"conditions": conditions, "containerStatuses": containers}})
    }

    fn cond(ty: &str, status: &str, when: &str) -> Value {
        json!({"type": ty, "status": status, "lastTransitionTime": when})
    }

    use EventKind::*;

    #[test]
    fn a_new_pod_is_created_at_its_creation_timestamp() {
        let (clock, mut n) = norm();
        let ev = n.applied(
            pod(json!({"metadata": {"creationTimestamp": at(&clock, -2)}})),
            42,
        );
        assert_eq!(kinds(&ev), [PodCreated]);
        assert_eq!(ev[0].observed_ns, 42);
        assert_eq!(ev[0].api_ns, api(&clock, -2));
        assert_eq!(ev[0].object, "pod/web-1");
        assert_eq!(ev[0].pod, "web-1");
        assert!(!ev[0].late);
    }

    #[test]
    fn a_new_pod_carries_its_first_containers_image() {
        let (_, mut n) = norm();
        let ev = n.applied(
            pod(json!({"spec": {"containers": [
                {"name": "nginx", "image": "nginx:1.28.0"},
                {"name": "sidecar", "image": "envoy:1"}]}})),
            1,
        );
        assert_eq!(kinds(&ev), [PodCreated]);
        assert_eq!(ev[0].new, "nginx:1.28.0");
    }

    #[test]
    fn an_unchanged_pod_yields_nothing() {
        let (_, mut n) = norm();
        n.applied(pod(json!({})), 1);
        assert!(n.applied(pod(json!({})), 2).is_empty());
    }

    #[test]
    fn scheduling_is_reported_once_when_the_condition_turns_true() {
        let (clock, mut n) = norm();
        n.applied(
            pod(status(
                json!([cond("PodScheduled", "False", &at(&clock, 0))]),
                json!([]),
            )),
            1,
        );
        let ev = n.applied(
            pod(status(
                json!([cond("PodScheduled", "True", &at(&clock, 1))]),
                json!([]),
            )),
            2,
        );
        assert_eq!(kinds(&ev), [PodScheduled]);
        assert_eq!(ev[0].api_ns, api(&clock, 1));
        let again = n.applied(
            pod(status(
                json!([cond("PodScheduled", "True", &at(&clock, 1))]),
                json!([running(&clock, 2, 0)]),
            )),
            3,
        );
        assert_eq!(kinds(&again), [ContainerStarted]);
    }

    #[test]
    fn a_pod_transition_seen_long_after_its_api_time_is_late_but_not_in_a_list() {
        const S: u64 = 1_000_000_000;
        let (clock, mut n) = norm();
        n.applied(pod(json!({})), 1);
        // Started at 5 s, seen at 6 s: on time.
        let ev = n.applied(
            pod(status(json!([]), json!([running(&clock, 5, 0)]))),
            6 * S,
        );
        assert!(!ev[0].late);
        // Ready at 7 s, seen at 12 s: the watch delivered it late.
        let ev = n.applied(
            pod(status(
                json!([cond("Ready", "True", &at(&clock, 7))]),
                json!([running(&clock, 5, 0)]),
            )),
            12 * S,
        );
        assert_eq!(kinds(&ev), [PodReady]);
        assert!(ev[0].late, "{ev:?}");
        // A first list shows Pods as they are, however old: not late.
        let (clock, mut n) = norm();
        let listed = n.relisted(
            Resource::Pods,
            vec![pod(status(json!([]), json!([running(&clock, 1, 0)])))],
            60 * S,
            ListKind::Initial,
        );
        assert!(listed.iter().all(|e| !e.late), "{listed:?}");
    }

    #[test]
    fn a_running_container_is_started_at_its_started_at() {
        let (clock, mut n) = norm();
        n.applied(pod(json!({})), 1);
        let ev = n.applied(pod(status(json!([]), json!([running(&clock, 5, 0)]))), 2);
        assert_eq!(kinds(&ev), [ContainerStarted]);
        assert_eq!(ev[0].api_ns, api(&clock, 5));
        assert_eq!(ev[0].detail, "container nginx");
    }

    #[test]
    fn a_restart_reports_the_count_and_the_last_termination_then_the_new_start() {
        let (clock, mut n) = norm();
        n.applied(pod(status(json!([]), json!([running(&clock, 1, 0)]))), 1);
        let mut c = running(&clock, 9, 1);
        c["lastState"] =
            json!({"terminated": {"exitCode": 1, "reason": "Error", "finishedAt": at(&clock, 7)}});
        let ev = n.applied(pod(status(json!([]), json!([c]))), 2);
        assert_eq!(kinds(&ev), [ContainerRestarted, ContainerStarted]);
        let r = &ev[0];
        assert_eq!((r.old.as_str(), r.new.as_str()), ("0", "1"));
        assert_eq!(r.reason, "Error");
        assert_eq!(r.exit_code, Some(1));
        assert_eq!(r.api_ns, api(&clock, 7));
        assert_eq!(ev[1].api_ns, api(&clock, 9));
    }

    #[test]
    fn waiting_reasons_worth_showing_are_reported_when_they_change() {
        let (_, mut n) = norm();
        let waiting = |reason: &str| {
            pod(status(
                json!([]),
                json!([{"name": "nginx", "image": "x", "imageID": "", "ready": false,
                "restartCount": 0, "state": {"waiting": {"reason": reason}}}]),
            ))
        };
        assert_eq!(
            kinds(&n.applied(waiting("ContainerCreating"), 1)),
            [PodCreated]
        );
        let ev = n.applied(waiting("ErrImagePull"), 2);
        assert_eq!(kinds(&ev), [ContainerWaiting]);
        assert_eq!(ev[0].reason, "ErrImagePull");
        assert_eq!(ev[0].old, "ContainerCreating");
        assert!(n.applied(waiting("ErrImagePull"), 3).is_empty());
        assert_eq!(
            n.applied(waiting("ImagePullBackOff"), 4)[0].reason,
            "ImagePullBackOff"
        );
        assert_eq!(
            n.applied(waiting("CrashLoopBackOff"), 5)[0].reason,
            "CrashLoopBackOff"
        );
    }

    #[test]
    fn readiness_turning_true_then_false_yields_ready_then_not_ready() {
        let (clock, mut n) = norm();
        n.applied(
            pod(status(
                json!([cond("Ready", "False", &at(&clock, 0))]),
                json!([]),
            )),
            1,
        );
        let ev = n.applied(
            pod(status(
                json!([cond("Ready", "True", &at(&clock, 2))]),
                json!([]),
            )),
            2,
        );
        assert_eq!(kinds(&ev), [PodReady]);
        assert_eq!(ev[0].api_ns, api(&clock, 2));
        let ev = n.applied(
            pod(status(
                json!([cond("Ready", "False", &at(&clock, 4))]),
                json!([]),
            )),
            3,
        );
        assert_eq!(kinds(&ev), [PodNotReady]);
        assert_eq!(ev[0].api_ns, api(&clock, 4));
    }

    #[test]
    fn a_pod_never_ready_does_not_turn_not_ready() {
        let (clock, mut n) = norm();
        let ev = n.applied(
            pod(status(
                json!([cond("Ready", "False", &at(&clock, 0))]),
                json!([]),
            )),
            1,
        );
        assert_eq!(kinds(&ev), [PodCreated]);
    }

    #[test]
    fn deletion_reports_the_grace_period_and_when_the_delete_was_accepted() {
        let (clock, mut n) = norm();
        n.applied(pod(json!({})), 1);
        let deleting = json!({"metadata": {"deletionTimestamp": at(&clock, 30), "deletionGracePeriodSeconds": 30}});
        let ev = n.applied(pod(deleting.clone()), 2);
        assert_eq!(kinds(&ev), [PodDeleting]);
        assert_eq!(ev[0].grace_period_s, Some(30));
        assert_eq!(ev[0].api_ns, api(&clock, 0));
        assert!(n.applied(pod(deleting), 3).is_empty(), "reported once");
    }

    #[test]
    fn an_evicted_pods_deletion_carries_its_disruption_reason() {
        let (clock, mut n) = norm();
        n.applied(pod(json!({})), 1);
        // The Eviction API adds the condition, then deletes: the reason
        // seen first is the one the deletion carries.
        let marked = json!({"status": {"conditions": [
            {"type": "DisruptionTarget", "status": "True", "reason": "EvictionByEvictionAPI"}]}});
        assert!(n.applied(pod(marked.clone()), 2).is_empty());
        let mut deleting = marked;
        merge(
            &mut deleting,
            json!({"metadata": {"deletionTimestamp": at(&clock, 30), "deletionGracePeriodSeconds": 30}}),
        );
        let ev = n.applied(pod(deleting), 3);
        assert_eq!(kinds(&ev), [PodDeleting]);
        assert_eq!(ev[0].reason, "EvictionByEvictionAPI");
        // An owner's deletion has no reason.
        let (clock, mut n) = norm();
        n.applied(pod(json!({})), 1);
        let ev = n.applied(
            pod(json!({"metadata": {"deletionTimestamp": at(&clock, 30), "deletionGracePeriodSeconds": 30}})),
            2,
        );
        assert_eq!(ev[0].reason, "");
    }

    fn node(name: &str, unschedulable: bool) -> Object {
        Object::Node(Box::new(obj(json!({
            "apiVersion": "v1", "kind": "Node", "metadata": {"name": name},
            "spec": {"unschedulable": unschedulable}}))))
    }

    #[test]
    fn a_cordon_and_an_uncordon_are_reported_but_a_schedulable_node_is_not() {
        let (_, mut n) = norm();
        assert!(n.applied(node("n1", false), 1).is_empty());
        let ev = n.applied(node("n1", true), 2);
        assert_eq!(kinds(&ev), [NodeCordoned]);
        assert_eq!(ev[0].object, "node/n1");
        assert!(n.applied(node("n1", true), 3).is_empty());
        assert_eq!(kinds(&n.applied(node("n1", false), 4)), [NodeUncordoned]);
        // Already cordoned when first seen: that is news.
        assert_eq!(kinds(&n.applied(node("n2", true), 5)), [NodeCordoned]);
    }

    fn budget(name: &str, app: &str, allowed: i32) -> Object {
        Object::DisruptionBudget(Box::new(obj(json!({
            "apiVersion": "policy/v1", "kind": "PodDisruptionBudget", "metadata": {"name": name},
            "spec": {"minAvailable": 2, "selector": {"matchLabels": {"app": app}}},
            "status": {"disruptionsAllowed": allowed, "currentHealthy": 3, "desiredHealthy": 2,
                       "expectedPods": 3, "observedGeneration": 1}}))))
    }

    #[test]
    fn only_budgets_covering_the_deployments_pods_report_their_allowed_disruptions() {
        let clock = RunClock::start();
        let mut n = Normaliser::new(clock, "web-server")
            .with_pod_labels(vec![[("app".to_string(), "web".to_string())].into()]);
        let ev = n.applied(budget("web-pdb", "web", 1), 1);
        assert_eq!(kinds(&ev), [DisruptionsAllowed]);
        assert_eq!((ev[0].old.as_str(), ev[0].new.as_str()), ("", "1"));
        assert!(ev[0].detail.contains("minAvailable 2"), "{}", ev[0].detail);
        assert!(n.applied(budget("web-pdb", "web", 1), 2).is_empty());
        let ev = n.applied(budget("web-pdb", "web", 0), 3);
        assert_eq!((ev[0].old.as_str(), ev[0].new.as_str()), ("1", "0"));
        assert!(n.applied(budget("db-pdb", "db", 1), 4).is_empty());
        let ev = n.deleted(budget("web-pdb", "web", 0), 5);
        assert_eq!(kinds(&ev), [DisruptionsAllowed]);
        assert_eq!(ev[0].new, "");
    }

    fn autoscaler(target: &str, desired: i32) -> Object {
        Object::Autoscaler(Box::new(obj(json!({
            "apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
            "metadata": {"name": "web-hpa"},
            "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": target},
                     "minReplicas": 2, "maxReplicas": 6},
            "status": {"currentReplicas": 3, "desiredReplicas": desired, "currentMetrics": [
                {"type": "Resource", "resource": {"name": "cpu", "current": {"averageUtilization": 120}}}]}}))))
    }

    #[test]
    fn an_autoscaler_of_the_deployment_reports_each_new_desired_count() {
        let (_, mut n) = norm();
        let ev = n.applied(autoscaler("web-server", 3), 1);
        assert_eq!(kinds(&ev), [AutoscalerDesired]);
        let ev = n.applied(autoscaler("web-server", 6), 2);
        assert_eq!((ev[0].old.as_str(), ev[0].new.as_str()), ("3", "6"));
        assert!(ev[0].detail.contains("cpu 120%"), "{}", ev[0].detail);
        assert!(n.applied(autoscaler("web-server", 6), 3).is_empty());
        assert!(n.applied(autoscaler("other", 4), 4).is_empty());
    }

    #[test]
    fn deleting_comes_before_the_not_ready_it_causes() {
        let (clock, mut n) = norm();
        n.applied(
            pod(status(
                json!([cond("Ready", "True", &at(&clock, 0))]),
                json!([]),
            )),
            1,
        );
        let mut p = status(json!([cond("Ready", "False", &at(&clock, 1))]), json!([]));
        merge(
            &mut p,
            json!({"metadata": {"deletionTimestamp": at(&clock, 31), "deletionGracePeriodSeconds": 30}}),
        );
        assert_eq!(kinds(&n.applied(pod(p), 2)), [PodDeleting, PodNotReady]);
    }

    #[test]
    fn a_terminated_container_reports_exit_code_reason_and_finish_time() {
        let (clock, mut n) = norm();
        n.applied(pod(status(json!([]), json!([running(&clock, 1, 0)]))), 1);
        let term = json!([{"name": "nginx", "image": "x", "imageID": "", "ready": false, "restartCount": 0,
            "state": {"terminated": {"exitCode": 137, "reason": "Error", "finishedAt": at(&clock, 8)}}}]);
        let ev = n.applied(pod(status(json!([]), term.clone())), 2);
        assert_eq!(kinds(&ev), [ContainerTerminated]);
        assert_eq!(ev[0].exit_code, Some(137));
        assert_eq!(ev[0].reason, "Error");
        assert_eq!(ev[0].api_ns, api(&clock, 8));
        assert!(n.applied(pod(status(json!([]), term)), 3).is_empty());
    }

    #[test]
    fn a_deleted_pod_reports_its_last_transitions_then_gone() {
        let (clock, mut n) = norm();
        n.applied(pod(status(json!([]), json!([running(&clock, 1, 0)]))), 1);
        let term = json!([{"name": "nginx", "image": "x", "imageID": "", "ready": false, "restartCount": 0,
            "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}}]);
        let ev = n.deleted(pod(status(json!([]), term)), 2);
        assert_eq!(kinds(&ev), [ContainerTerminated, PodGone]);
        assert_eq!(ev[1].object, "pod/web-1");
        // Gone means forgotten: the same name again is a new Pod.
        assert_eq!(kinds(&n.applied(pod(json!({})), 3)), [PodCreated]);
    }

    #[test]
    fn a_pod_recreated_under_the_same_name_is_gone_then_created() {
        let (_, mut n) = norm();
        n.applied(pod(json!({})), 1);
        let ev = n.applied(pod(json!({"metadata": {"uid": "u2"}})), 2);
        assert_eq!(kinds(&ev), [PodGone, PodCreated]);
    }

    // ---- endpoints ----

    fn slice(name: &str, endpoints: Value) -> Object {
        Object::EndpointSlice(Box::new(obj(json!({
            "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice", "addressType": "IPv4",
            "metadata": {"name": name}, "endpoints": endpoints,
        }))))
    }

    fn ep(address: &str, pod: &str, ready: bool, serving: bool, terminating: bool) -> Value {
        json!({"addresses": [address], "targetRef": {"kind": "Pod", "name": pod},
               "conditions": {"ready": ready, "serving": serving, "terminating": terminating}})
    }

    #[test]
    fn an_endpoint_added_not_ready_is_added_with_its_state_and_nothing_else() {
        let (_, mut n) = norm();
        let ev = n.applied(
            slice(
                "web-abc",
                json!([ep("10.0.0.1", "web-1", false, false, false)]),
            ),
            1,
        );
        assert_eq!(kinds(&ev), [EndpointAdded]);
        assert_eq!(ev[0].object, "endpointslice/web-abc");
        assert_eq!(ev[0].pod, "web-1");
        assert_eq!(ev[0].address, "10.0.0.1");
        assert_eq!(ev[0].new, "ready=false serving=false terminating=false");
    }

    #[test]
    fn an_endpoint_added_ready_is_added_serving_and_ready() {
        let (_, mut n) = norm();
        let ev = n.applied(
            slice("s", json!([ep("10.0.0.1", "web-1", true, true, false)])),
            1,
        );
        assert_eq!(kinds(&ev), [EndpointAdded, EndpointServing, EndpointReady]);
    }

    #[test]
    fn missing_endpoint_conditions_mean_ready_and_serving() {
        let (_, mut n) = norm();
        let ev = n.applied(slice("s", json!([{"addresses": ["10.0.0.1"]}])), 1);
        assert_eq!(kinds(&ev), [EndpointAdded, EndpointServing, EndpointReady]);
        assert_eq!(ev[0].pod, "");
    }

    #[test]
    fn endpoint_conditions_report_each_change() {
        let (_, mut n) = norm();
        n.applied(
            slice("s", json!([ep("10.0.0.1", "web-1", false, false, false)])),
            1,
        );
        let ev = n.applied(
            slice("s", json!([ep("10.0.0.1", "web-1", true, true, false)])),
            2,
        );
        assert_eq!(kinds(&ev), [EndpointServing, EndpointReady]);
        let ev = n.applied(
            slice("s", json!([ep("10.0.0.1", "web-1", false, true, true)])),
            3,
        );
        assert_eq!(kinds(&ev), [EndpointTerminating, EndpointNotReady]);
        let ev = n.applied(
            slice("s", json!([ep("10.0.0.1", "web-1", false, false, true)])),
            4,
        );
        assert_eq!(kinds(&ev), [EndpointNotServing]);
        let ev = n.applied(slice("s", json!([])), 5);
        assert_eq!(kinds(&ev), [EndpointRemoved]);
        assert_eq!(ev[0].pod, "web-1");
        assert_eq!(ev[0].address, "10.0.0.1");
    }

    #[test]
    fn endpoints_are_keyed_by_slice_and_address() {
        let (_, mut n) = norm();
        n.applied(
            slice("a", json!([ep("10.0.0.1", "web-1", true, true, false)])),
            1,
        );
        let ev = n.applied(
            slice("b", json!([ep("10.0.0.1", "web-1", true, true, false)])),
            2,
        );
        assert_eq!(kinds(&ev), [EndpointAdded, EndpointServing, EndpointReady]);
        assert_eq!(ev[0].object, "endpointslice/b");
        let other = n.applied(
            slice(
                "a",
                json!([
                    ep("10.0.0.1", "web-1", true, true, false),
                    ep("10.0.0.2", "web-2", false, false, false)
                ]),
            ),
            3,
        );
        assert_eq!(kinds(&other), [EndpointAdded]);
        assert_eq!(other[0].address, "10.0.0.2");
    }

    #[test]
    fn a_deleted_slice_removes_all_its_endpoints() {
        let (_, mut n) = norm();
        let both = json!([
            ep("10.0.0.1", "web-1", true, true, false),
            ep("10.0.0.2", "web-2", true, true, false)
        ]);
        n.applied(slice("s", both.clone()), 1);
        let ev = n.deleted(slice("s", both), 2);
        assert_eq!(kinds(&ev), [EndpointRemoved, EndpointRemoved]);
        assert_eq!(ev[1].pod, "web-2");
    }

    #[test]
    fn endpoint_events_carry_the_slices_last_change_trigger_time() {
        let (clock, mut n) = norm();
        let mut s: EndpointSlice = obj(json!({"addressType": "IPv4", "metadata": {"name": "s",
            "annotations": {LAST_CHANGE_TRIGGER_TIME: at(&clock, 3)}},
            "endpoints": [ep("10.0.0.1", "web-1", false, false, false)]}));
        let ev = n.applied(Object::EndpointSlice(Box::new(s.clone())), 1);
        assert_eq!(ev[0].api_ns, api(&clock, 3));
        s.metadata.annotations = None;
        s.endpoints = Some(vec![]);
        assert_eq!(
            n.applied(Object::EndpointSlice(Box::new(s)), 2)[0].api_ns,
            None
        );
    }

    // ---- ReplicaSets and the Deployment ----

    fn rs(name: &str, replicas: i32) -> Object {
        Object::ReplicaSet(Box::new(obj(json!({"metadata": {"name": name},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": "web"}}}}))))
    }

    #[test]
    fn a_replica_set_reports_its_size_when_first_seen_and_when_it_changes() {
        let (_, mut n) = norm();
        let ev = n.applied(rs("web-server-a", 1), 1);
        assert_eq!(kinds(&ev), [ReplicaSetScaled]);
        assert_eq!((ev[0].old.as_str(), ev[0].new.as_str()), ("", "1"));
        assert_eq!(ev[0].object, "replicaset/web-server-a");
        assert!(n.applied(rs("web-server-a", 1), 2).is_empty());
        let ev = n.applied(rs("web-server-a", 3), 3);
        assert_eq!((ev[0].old.as_str(), ev[0].new.as_str()), ("1", "3"));
    }

    #[test]
    fn a_deleted_replica_set_scales_to_zero_unless_it_already_was() {
        let (_, mut n) = norm();
        n.applied(rs("a", 2), 1);
        n.applied(rs("b", 0), 1);
        let ev = n.deleted(rs("a", 2), 2);
        assert_eq!(kinds(&ev), [ReplicaSetScaled]);
        assert_eq!((ev[0].old.as_str(), ev[0].new.as_str()), ("2", "0"));
        assert!(n.deleted(rs("b", 0), 3).is_empty());
    }

    fn deploy(name: &str, generation: i64, status: Value) -> Object {
        Object::Deployment(Box::new(obj(
            json!({"metadata": {"name": name, "generation": generation},
            "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "web"}}, "template": {}},
            "status": status}),
        )))
    }

    #[test]
    fn deployment_progress_is_one_compact_string_reported_when_it_changes() {
        let (_, mut n) = norm();
        let s = json!({"updatedReplicas": 2, "readyReplicas": 3, "availableReplicas": 3, "unavailableReplicas": 0, "observedGeneration": 4});
        let ev = n.applied(deploy("web-server", 4, s.clone()), 1);
        assert_eq!(kinds(&ev), [DeploymentProgress]);
        assert_eq!(
            ev[0].new,
            "updated=2/3 ready=3 available=3 unavailable=0 gen=4/4"
        );
        assert_eq!(ev[0].object, "deployment/web-server");
        assert!(n.applied(deploy("web-server", 4, s), 2).is_empty());
        let ev = n.applied(deploy("web-server", 5, json!({"observedGeneration": 4})), 3);
        assert_eq!(
            ev[0].old,
            "updated=2/3 ready=3 available=3 unavailable=0 gen=4/4"
        );
        assert_eq!(
            ev[0].new,
            "updated=0/3 ready=0 available=0 unavailable=0 gen=4/5"
        );
    }

    #[test]
    fn other_deployments_are_ignored() {
        let (_, mut n) = norm();
        assert!(n.applied(deploy("other", 1, json!({})), 1).is_empty());
    }

    #[test]
    fn a_deployment_watched_beside_the_target_is_tracked_apart_from_it() {
        let (_, n) = norm();
        let mut n = n.also_deployments(["web-v1".to_string()]);
        let s = json!({"updatedReplicas": 3, "readyReplicas": 3, "availableReplicas": 3, "observedGeneration": 1});
        for name in ["web-server", "web-v1"] {
            let ev = n.applied(deploy(name, 1, s.clone()), 1);
            assert_eq!(ev.len(), 1, "{name}: {ev:?}");
            assert_eq!(ev[0].object, format!("deployment/{name}"));
        }
        assert!(n.applied(deploy("other", 1, s.clone()), 2).is_empty());
        // A re-list holding one of the two: only the other is gone.
        let ev = n.relisted(
            Resource::Deployments,
            vec![deploy("web-server", 1, s)],
            3,
            ListKind::AfterRestart,
        );
        assert_eq!(ev.len(), 1, "{ev:?}");
        assert_eq!(
            (ev[0].object.as_str(), ev[0].new.as_str()),
            ("deployment/web-v1", "deleted")
        );
        // The Events of both are the target's.
        assert!(n.belongs("Deployment", "web-v1") && n.belongs("Deployment", "web-server"));
        assert!(!n.belongs("Deployment", "other"));
    }

    #[test]
    fn deployment_conditions_report_status_and_reason_changes_only() {
        let (clock, mut n) = norm();
        let c = |status: &str, reason: &str, msg: &str| {
            json!({"conditions": [{"type": "Progressing", "status": status, "reason": reason, "message": msg,
                "lastUpdateTime": at(&clock, 2), "lastTransitionTime": at(&clock, 1)}]})
        };
        let ev = n.applied(
            deploy("web-server", 1, c("True", "NewReplicaSetCreated", "m1")),
            1,
        );
        assert_eq!(kinds(&ev), [DeploymentProgress, DeploymentCondition]);
        assert_eq!((ev[1].old.as_str(), ev[1].new.as_str()), ("", "True"));
        assert_eq!(ev[1].reason, "NewReplicaSetCreated");
        assert_eq!(ev[1].detail, "Progressing: m1");
        assert_eq!(ev[1].api_ns, api(&clock, 2));
        assert!(
            n.applied(
                deploy("web-server", 1, c("True", "NewReplicaSetCreated", "m2")),
                2
            )
            .is_empty()
        );
        let ev = n.applied(
            deploy("web-server", 1, c("True", "NewReplicaSetAvailable", "m3")),
            3,
        );
        assert_eq!(kinds(&ev), [DeploymentCondition]);
        let ev = n.applied(
            deploy(
                "web-server",
                1,
                c("False", "ProgressDeadlineExceeded", "m4"),
            ),
            4,
        );
        assert_eq!(
            (
                ev[0].old.as_str(),
                ev[0].new.as_str(),
                ev[0].reason.as_str()
            ),
            ("True", "False", "ProgressDeadlineExceeded")
        );
    }

    #[test]
    fn a_deleted_deployment_says_so() {
        let (_, mut n) = norm();
        n.applied(deploy("web-server", 1, json!({})), 1);
        let ev = n.deleted(deploy("web-server", 1, json!({})), 2);
        assert_eq!(kinds(&ev), [DeploymentProgress]);
        assert_eq!(ev[0].new, "deleted");
    }

    // ---- Events ----

    fn event(uid: &str, kind: &str, name: &str, ty: &str, reason: &str, count: i32) -> Object {
        Object::Event(Box::new(obj(
            json!({"metadata": {"name": format!("{name}.{uid}"), "uid": uid},
            "involvedObject": {"kind": kind, "name": name}, "type": ty, "reason": reason,
            "message": format!("{reason} happened"), "count": count}),
        )))
    }

    #[test]
    fn warning_events_for_the_targets_objects_are_reported() {
        let (_, mut n) = norm();
        n.applied(pod(json!({})), 1);
        let ev = n.applied(event("e1", "Pod", "web-1", "Warning", "Unhealthy", 1), 2);
        assert_eq!(kinds(&ev), [ClusterEvent]);
        assert_eq!(ev[0].object, "pod/web-1");
        assert_eq!(ev[0].pod, "web-1");
        assert_eq!(ev[0].reason, "Unhealthy");
        assert_eq!(ev[0].detail, "Unhealthy happened");
        assert_eq!(ev[0].new, "Warning");
        let ev = n.applied(
            event(
                "e2",
                "Deployment",
                "web-server",
                "Warning",
                "ProgressDeadlineExceeded",
                1,
            ),
            3,
        );
        assert_eq!(ev[0].object, "deployment/web-server");
    }

    #[test]
    fn killing_is_reported_though_normal_and_other_normal_events_are_not() {
        let (_, mut n) = norm();
        n.applied(pod(json!({})), 1);
        assert_eq!(
            kinds(&n.applied(event("e1", "Pod", "web-1", "Normal", "Killing", 1), 2)),
            [ClusterEvent]
        );
        assert!(
            n.applied(event("e2", "Pod", "web-1", "Normal", "Pulled", 1), 3)
                .is_empty()
        );
    }

    #[test]
    fn events_for_other_objects_are_ignored() {
        let (_, mut n) = norm();
        n.applied(rs("web-server-abc", 3), 1);
        assert!(
            n.applied(event("e1", "Pod", "other-1", "Warning", "BackOff", 1), 2)
                .is_empty()
        );
        assert!(
            n.applied(
                event(
                    "e2",
                    "ReplicaSet",
                    "other-abc",
                    "Warning",
                    "FailedCreate",
                    1
                ),
                2
            )
            .is_empty()
        );
        assert!(
            n.applied(event("e3", "Deployment", "other", "Warning", "X", 1), 2)
                .is_empty()
        );
        assert!(
            n.applied(
                event("e4", "Pod", "web-server-abcdef", "Warning", "BackOff", 1),
                2
            )
            .is_empty()
        );
    }

    #[test]
    fn an_event_for_a_pod_of_a_known_replica_set_counts_before_the_pod_is_seen() {
        let (_, mut n) = norm();
        n.applied(rs("web-server-abc", 3), 1);
        let ev = n.applied(
            event(
                "e1",
                "Pod",
                "web-server-abc-x1y2z",
                "Warning",
                "FailedScheduling",
                1,
            ),
            2,
        );
        assert_eq!(kinds(&ev), [ClusterEvent]);
        let ev = n.applied(
            event(
                "e2",
                "ReplicaSet",
                "web-server-abc",
                "Warning",
                "FailedCreate",
                1,
            ),
            2,
        );
        assert_eq!(ev[0].object, "replicaset/web-server-abc");
    }

    #[test]
    fn events_are_deduplicated_on_uid_and_count() {
        let (clock, mut n) = norm();
        n.applied(pod(json!({})), 1);
        assert_eq!(
            n.applied(event("e1", "Pod", "web-1", "Warning", "BackOff", 1), 2)
                .len(),
            1
        );
        assert!(
            n.applied(event("e1", "Pod", "web-1", "Warning", "BackOff", 1), 3)
                .is_empty()
        );
        let Object::Event(mut e) = event("e1", "Pod", "web-1", "Warning", "BackOff", 2) else {
            unreachable!()
        };
        e.last_timestamp = Some(Time(Timestamp::from_str(&at(&clock, 6)).unwrap()));
        let ev = n.applied(Object::Event(e), 4);
        assert_eq!(ev.len(), 1, "a repeat is a new occurrence");
        assert_eq!(ev[0].api_ns, api(&clock, 6));
    }

    // ---- lists ----

    fn ready_pod(clock: &RunClock, name: &str, uid: &str) -> Object {
        let mut c = running(clock, -5, 0);
        c["ready"] = json!(true);
        pod(
            json!({"metadata": {"name": name, "uid": uid, "creationTimestamp": at(clock, -10)},
            "status": {"conditions": [cond("PodScheduled", "True", &at(clock, -9)), cond("Ready", "True", &at(clock, -4))],
                       "containerStatuses": [c]}}),
        )
    }

    #[test]
    fn the_initial_list_reports_current_state_as_events_marked_initial() {
        let (clock, mut n) = norm();
        let ev = n.relisted(
            Resource::Pods,
            vec![ready_pod(&clock, "web-1", "u1")],
            7,
            ListKind::Initial,
        );
        assert_eq!(
            kinds(&ev),
            [PodCreated, PodScheduled, ContainerStarted, PodReady]
        );
        assert!(ev.iter().all(|e| !e.late && e.observed_ns == 7));
        assert_eq!(ev[0].detail, "initial list");
        assert_eq!(ev[2].detail, "initial list: container nginx");
        assert_eq!(ev[3].api_ns, api(&clock, -4));
    }

    #[test]
    fn a_relist_after_a_restart_reports_missed_transitions_late_and_absent_objects_gone() {
        let (clock, mut n) = norm();
        n.relisted(
            Resource::Pods,
            vec![
                ready_pod(&clock, "web-1", "u1"),
                ready_pod(&clock, "web-2", "u2"),
            ],
            1,
            ListKind::Initial,
        );
        // Meanwhile: web-1 unchanged, web-2 deleted and gone, web-3 created and ready.
        let ev = n.relisted(
            Resource::Pods,
            vec![
                ready_pod(&clock, "web-1", "u1"),
                ready_pod(&clock, "web-3", "u3"),
            ],
            9,
            ListKind::AfterRestart,
        );
        let got: Vec<(EventKind, &str)> = ev.iter().map(|e| (e.kind, e.pod.as_str())).collect();
        assert_eq!(
            got,
            [
                (PodGone, "web-2"),
                (PodCreated, "web-3"),
                (PodScheduled, "web-3"),
                (ContainerStarted, "web-3"),
                (PodReady, "web-3"),
            ]
        );
        assert!(ev.iter().all(|e| e.late && e.observed_ns == 9));
    }

    #[test]
    fn a_relist_removes_endpoints_of_vanished_slices_and_diffs_the_rest() {
        let (_, mut n) = norm();
        n.relisted(
            Resource::EndpointSlices,
            vec![
                slice("a", json!([ep("10.0.0.1", "web-1", true, true, false)])),
                slice("b", json!([ep("10.0.0.2", "web-2", true, true, false)])),
            ],
            1,
            ListKind::Initial,
        );
        let ev = n.relisted(
            Resource::EndpointSlices,
            vec![slice(
                "a",
                json!([ep("10.0.0.1", "web-1", false, true, true)]),
            )],
            2,
            ListKind::AfterRestart,
        );
        assert_eq!(
            kinds(&ev),
            [EndpointRemoved, EndpointTerminating, EndpointNotReady]
        );
        assert_eq!(ev[0].object, "endpointslice/b");
        assert!(ev.iter().all(|e| e.late));
    }

    #[test]
    fn a_relist_of_replica_sets_and_the_deployment_reports_what_vanished() {
        let (_, mut n) = norm();
        n.relisted(
            Resource::ReplicaSets,
            vec![rs("a", 2), rs("b", 1)],
            1,
            ListKind::Initial,
        );
        let ev = n.relisted(
            Resource::ReplicaSets,
            vec![rs("a", 3)],
            2,
            ListKind::AfterRestart,
        );
        let got: Vec<(&str, &str, &str)> = ev
            .iter()
            .map(|e| (e.object.as_str(), e.old.as_str(), e.new.as_str()))
            .collect();
        assert_eq!(
            got,
            [("replicaset/b", "1", "0"), ("replicaset/a", "2", "3")]
        );
        n.relisted(
            Resource::Deployments,
            vec![deploy("web-server", 1, json!({}))],
            3,
            ListKind::Initial,
        );
        let ev = n.relisted(Resource::Deployments, vec![], 4, ListKind::AfterRestart);
        assert_eq!(ev[0].new, "deleted");
        assert!(ev[0].late);
    }

    #[test]
    fn a_relist_of_events_reports_only_occurrences_not_seen_before() {
        let (_, mut n) = norm();
        n.applied(pod(json!({})), 1);
        let e1 = || event("e1", "Pod", "web-1", "Warning", "BackOff", 1);
        n.relisted(Resource::Events, vec![e1()], 2, ListKind::Initial);
        let ev = n.relisted(
            Resource::Events,
            vec![e1(), event("e2", "Pod", "web-1", "Warning", "Unhealthy", 1)],
            3,
            ListKind::AfterRestart,
        );
        assert_eq!(ev.len(), 1);
        assert_eq!(ev[0].reason, "Unhealthy");
        assert!(ev[0].late);
        assert!(
            n.relisted(Resource::Events, vec![], 4, ListKind::AfterRestart)
                .is_empty()
        );
    }

    #[test]
    fn watch_restarted_measures_the_blind_time() {
        let e = watch_restarted(Resource::Pods, 1_000, 5_000, "Expired", "410");
        assert_eq!(e.kind, WatchRestarted);
        assert_eq!(e.object, "watch/pods");
        assert_eq!(e.blind_ns, Some(4_000));
        assert_eq!(e.observed_ns, 5_000);
        assert!(!e.late);
    }
}
