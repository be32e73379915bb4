//! The timeline's watches: kube-rs watchers on the target's Pods,
//! EndpointSlices, ReplicaSets, Deployment and the namespace's Events, the
//! namespace's PodDisruptionBudgets and HorizontalPodAutoscalers (those
//! covering or scaling the Deployment come out as events), and the Nodes
//! when the profile drains or uncordons one, fed
//! through one [`Normaliser`] into a channel of [`LifecycleEvent`]s stamped
//! on the run clock. The target may be several workloads (a canary's two
//! Deployments, `target.also_watch`): then each resource still has one
//! watch, unselected, whose objects are kept when they match any
//! workload's selector.
//!
//! A watch that restarts (410 Gone, a dropped stream) re-lists by itself
//! (kube-rs does that); this module notices the re-list, records a
//! `watch_restarted` event with how long the watch was blind, and lets the
//! normaliser synthesise what was missed (marked `late`).
//!
//! Not for: turning object states into events (see `normalise`), or
//! interpreting them (see `timeline`).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use futures::stream::{BoxStream, SelectAll};
use futures::{Stream, StreamExt};
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::core::v1::{Event as CoreEvent, Node, Pod, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use kube::Api;
use kube::core::SelectorExt;
use kube::runtime::WatchStreamExt;
use kube::runtime::utils::Backoff;
use kube::runtime::watcher::{self, Event};
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::{CancellationToken, DropGuard};

use crate::clock::RunClock;
use crate::cluster::event::LifecycleEvent;
use crate::cluster::normalise::{ListKind, Normaliser, Object, Resource, watch_restarted};
use crate::cluster::selector;

/// What to watch: the Deployment under test and the Service in front of it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WatchTarget {
    pub namespace: String,
    pub deployment: String,
    pub service: String,
    /// Other Deployments serving the same traffic, each with its Service
    /// (`target.also_watch`: a canary's stable version).
    pub also: Vec<Workload>,
    /// Watch the Nodes too (cordons): only when the profile drains or
    /// uncordons, whose ClusterRole grants it; a namespaced Role does not.
    pub nodes: bool,
}

/// A Deployment and the Service in front of it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Workload {
    pub deployment: String,
    pub service: String,
}

/// Whether an object's labels are one of the watched workloads'.
type Keep = Arc<dyn Fn(&BTreeMap<String, String>) -> bool + Send + Sync>;

/// A stretch of time in which one watch saw nothing: what happened in it
/// is known only from the re-list that ended it (events marked `late`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BlindSpot {
    /// `pods`, `endpointslices`, `replicasets`, `deployments`, `events`.
    pub resource: String,
    pub from_ns: u64,
    pub len_ns: u64,
    /// Still blind when the run ended: what the cluster did at the end
    /// (did the rollout finish? fail?) is unknown.
    pub open: bool,
}

/// What the watches report when stopped.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct WatchSummary {
    pub blind_spots: Vec<BlindSpot>,
}

#[derive(Debug, thiserror::Error)]
pub enum WatchError {
    #[error(
        "deployment {deployment:?} not found in namespace {namespace:?}: check the deployment name and namespace (kubectl get deployments -n {namespace})"
    )]
    DeploymentNotFound {
        deployment: String,
        namespace: String,
    },
    #[error(
        "service {service:?} not found in namespace {namespace:?}: check the service name and namespace (kubectl get services -n {namespace})"
    )]
    ServiceNotFound { service: String, namespace: String },
    #[error("reading {what} in namespace {namespace:?} failed: {source}")]
    Api {
        what: String,
        namespace: String,
        #[source]
        source: kube::Error,
    },
    #[error(
        "deployment {deployment:?}: spec.selector cannot be watched: {reason}; fix the Deployment's selector"
    )]
    Selector { deployment: String, reason: String },
    #[error(
        "listing {resource} in namespace {namespace:?} failed: {message}; baton needs list and watch permission on pods, endpointslices, replicasets, deployments, events, poddisruptionbudgets and horizontalpodautoscalers there (and on nodes when it drains; see deploy/rbac.yaml)"
    )]
    InitialList {
        resource: &'static str,
        namespace: String,
        message: String,
    },
    #[error("the watches were cancelled before their initial lists completed")]
    Cancelled,
}

/// The running watches. [`WatchHandle::stop`] ends them; dropping the
/// handle ends them too, without a summary.
pub struct WatchHandle {
    cancel: CancellationToken,
    _guard: DropGuard,
    task: tokio::task::JoinHandle<WatchSummary>,
}

impl WatchHandle {
    /// Stop every watch and wait for it; the blind spots seen.
    pub async fn stop(self) -> WatchSummary {
        self.cancel.cancel();
        self.task.await.unwrap_or_default()
    }
}

/// Reads the Deployment and the Service, starts the watches, and returns
/// once every watch has listed the current state (sent as events at the
/// time observed, `detail` "initial list"), so load can start knowing the
/// initial state is recorded.
pub async fn start(
    client: kube::Client,
    target: WatchTarget,
    clock: RunClock,
    events: mpsc::UnboundedSender<LifecycleEvent>,
    cancel: CancellationToken,
) -> Result<WatchHandle, WatchError> {
    let ns = target.namespace.clone();
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), &ns);
    let api_err = |what: String| {
        let namespace = ns.clone();
        move |source| WatchError::Api {
            what,
            namespace,
            source,
        }
    };
    let services: Api<Service> = Api::namespaced(client.clone(), &ns);
    let workloads: Vec<Workload> = std::iter::once(Workload {
        deployment: target.deployment.clone(),
        service: target.service.clone(),
    })
    .chain(target.also.iter().cloned())
    .collect();
    let mut selectors = Vec::new();
    let mut pod_labels = Vec::new();
    for w in &workloads {
        let deployment = deployments
            .get_opt(&w.deployment)
            .await
            .map_err(api_err(format!("deployment {:?}", w.deployment)))?
            .ok_or_else(|| WatchError::DeploymentNotFound {
                deployment: w.deployment.clone(),
                namespace: ns.clone(),
            })?;
        services
            .get_opt(&w.service)
            .await
            .map_err(api_err(format!("service {:?}", w.service)))?
            .ok_or_else(|| WatchError::ServiceNotFound {
                service: w.service.clone(),
                namespace: ns.clone(),
            })?;
        selectors.push(selector::parse(&deployment.spec.selector).map_err(|e| {
            WatchError::Selector {
                deployment: w.deployment.clone(),
                reason: e.to_string(),
            }
        })?);
        pod_labels.push(
            deployment
                .spec
                .template
                .metadata
                .as_ref()
                .and_then(|m| m.labels.clone())
                .unwrap_or_default(),
        );
    }

    // One workload: the API server selects. Several: one unselected watch
    // per resource (two watches of one resource would each re-list as if
    // the other's objects were gone), matched here against any workload's
    // selector; Deployments are told apart by the normaliser, by name.
    let (by_labels, keep, by_name) = match selectors.as_slice() {
        [one] => (
            watcher::Config::default().labels(&one.to_string()),
            None,
            watcher::Config::default().fields(&format!("metadata.name={}", target.deployment)),
        ),
        _ => {
            let keep: Keep = Arc::new(move |labels| selectors.iter().any(|s| s.matches(labels)));
            (
                watcher::Config::default(),
                Some(keep),
                watcher::Config::default(),
            )
        }
    };
    let service_names: Vec<&str> = workloads.iter().map(|w| w.service.as_str()).collect();
    let by_service = match service_names.as_slice() {
        [one] => format!("kubernetes.io/service-name={one}"),
        many => format!("kubernetes.io/service-name in ({})", many.join(",")),
    };
    let mut streams = SelectAll::new();
    streams.push(tagged(
        Resource::Pods,
        Api::<Pod>::namespaced(client.clone(), &ns),
        by_labels.clone(),
        keep.clone(),
        |o| Object::Pod(Box::new(o)),
    ));
    streams.push(tagged(
        Resource::EndpointSlices,
        Api::<EndpointSlice>::namespaced(client.clone(), &ns),
        watcher::Config::default().labels(&by_service),
        None,
        |o| Object::EndpointSlice(Box::new(o)),
    ));
    streams.push(tagged(
        Resource::ReplicaSets,
        Api::<ReplicaSet>::namespaced(client.clone(), &ns),
        by_labels,
        keep,
        |o| Object::ReplicaSet(Box::new(o)),
    ));
    streams.push(tagged(
        Resource::Deployments,
        deployments,
        by_name,
        None,
        |o| Object::Deployment(Box::new(o)),
    ));
    // Budgets and autoscalers name the Deployment's Pods or the Deployment
    // in their spec, not in labels: all of the namespace's are watched and
    // the normaliser keeps those that cover or scale it. An API server that
    // does not serve one of them (404) has none to watch.
    let budgets = Api::<PodDisruptionBudget>::namespaced(client.clone(), &ns);
    let budgets_served = served(&budgets).await;
    if budgets_served {
        streams.push(tagged(
            Resource::DisruptionBudgets,
            budgets,
            watcher::Config::default(),
            None,
            |o| Object::DisruptionBudget(Box::new(o)),
        ));
    }
    let autoscalers = Api::<HorizontalPodAutoscaler>::namespaced(client.clone(), &ns);
    let autoscalers_served = served(&autoscalers).await;
    if autoscalers_served {
        streams.push(tagged(
            Resource::Autoscalers,
            autoscalers,
            watcher::Config::default(),
            None,
            |o| Object::Autoscaler(Box::new(o)),
        ));
    }
    let mut watched = vec![
        Resource::Pods,
        Resource::EndpointSlices,
        Resource::ReplicaSets,
        Resource::Deployments,
        Resource::Events,
    ];
    if budgets_served {
        watched.push(Resource::DisruptionBudgets);
    }
    if autoscalers_served {
        watched.push(Resource::Autoscalers);
    }
    if target.nodes {
        streams.push(tagged(
            Resource::Nodes,
            Api::<Node>::all(client.clone()),
            watcher::Config::default(),
            None,
            |o| Object::Node(Box::new(o)),
        ));
        watched.push(Resource::Nodes);
    }
    // Events start once the others have listed, so that the Pods and
    // ReplicaSets they name are known when the existing Events are judged.
    let later_events = tagged(
        Resource::Events,
        Api::<CoreEvent>::namespaced(client, &ns),
        watcher::Config::default(),
        None,
        |o| Object::Event(Box::new(o)),
    );

    let cancel = cancel.child_token();
    let (ready_tx, ready_rx) = oneshot::channel();
    let run = Run {
        clock,
        normaliser: Normaliser::new(clock, &target.deployment)
            .also_deployments(target.also.iter().map(|w| w.deployment.clone()))
            .with_pod_labels(pod_labels),
        events,
        watches: watched
            .into_iter()
            .map(|r| (r, WatchState::default()))
            .collect(),
        blind_spots: Vec::new(),
        ready: Some(ready_tx),
        later_events: Some(later_events),
        namespace: ns,
    };
    let task = tokio::spawn(run.run(streams, cancel.clone()));
    let handle = WatchHandle {
        _guard: cancel.clone().drop_guard(),
        cancel,
        task,
    };
    match ready_rx.await {
        Ok(Ok(())) => Ok(handle),
        Ok(Err(e)) => {
            handle.stop().await;
            Err(e)
        }
        Err(_) => {
            handle.stop().await;
            Err(WatchError::Cancelled)
        }
    }
}

/// Whether the API server serves `api`'s resource at all: a 404 on a list
/// means the API group or version is not there (every other answer,
/// errors included, is the watch's to meet and report).
async fn served<K>(api: &Api<K>) -> bool
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
    K::DynamicType: Default,
{
    match api
        .list_metadata(&kube::api::ListParams::default().limit(1))
        .await
    {
        Err(kube::Error::Api(e)) if e.code == 404 => {
            tracing::warn!(resource = %K::plural(&Default::default()), "not served by the API server: not watched");
            false
        }
        _ => true,
    }
}

type Tagged = (Resource, watcher::Result<Event<Object>>);

/// `api`'s watch as a stream of [`Object`]s tagged with `resource`; with
/// `keep`, only the objects whose labels it accepts (the rest never
/// reach the normaliser, as if the API server had selected).
fn tagged<K>(
    resource: Resource,
    api: Api<K>,
    cfg: watcher::Config,
    keep: Option<Keep>,
    wrap: fn(K) -> Object,
) -> BoxStream<'static, Tagged>
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug + Send + 'static,
{
    let s: std::pin::Pin<Box<dyn Stream<Item = _> + Send>> =
        Box::pin(watcher::watcher(api, cfg).backoff(WatchBackoff::default()));
    let kept = move |o: &K| {
        keep.as_ref()
            .is_none_or(|keep| keep(o.meta().labels.as_ref().unwrap_or(&BTreeMap::new())))
    };
    s.filter_map(move |r| {
        let e = match r {
            Err(e) => Some(Err(e)),
            Ok(Event::Apply(o)) => kept(&o).then(|| Ok(Event::Apply(wrap(o)))),
            Ok(Event::Delete(o)) => kept(&o).then(|| Ok(Event::Delete(wrap(o)))),
            Ok(Event::Init) => Some(Ok(Event::Init)),
            Ok(Event::InitApply(o)) => kept(&o).then(|| Ok(Event::InitApply(wrap(o)))),
            Ok(Event::InitDone) => Some(Ok(Event::InitDone)),
        };
        std::future::ready(e.map(|e| (resource, e)))
    })
    .boxed()
}

/// Retry quickly: during a run every second blind is a second of failures
/// that cannot be explained. 250 ms doubling to 4 s; reset by any success.
#[derive(Debug)]
struct WatchBackoff {
    next: Duration,
}

const BACKOFF_MIN: Duration = Duration::from_millis(250);
const BACKOFF_MAX: Duration = Duration::from_secs(4);

impl Default for WatchBackoff {
    fn default() -> Self {
        WatchBackoff { next: BACKOFF_MIN }
    }
}

impl Iterator for WatchBackoff {
    type Item = Duration;
    fn next(&mut self) -> Option<Duration> {
        let d = self.next;
        self.next = (d * 2).min(BACKOFF_MAX);
        Some(d)
    }
}

impl Backoff for WatchBackoff {
    fn reset(&mut self) {
        self.next = BACKOFF_MIN;
    }
}

#[derive(Debug, Default)]
struct WatchState {
    /// The first list completed: any later `Init` is a restart.
    listed: bool,
    /// Objects of a list in progress.
    buffer: Option<Vec<Object>>,
    /// When the watch last delivered something (run clock).
    last_good_ns: u64,
    /// Errors since then: when the first came (the watch may have been
    /// blind since), and the first and latest messages (the latest, e.g.
    /// 410 Expired, is what forced the re-list).
    error: Option<WatchErrors>,
}

#[derive(Debug)]
struct WatchErrors {
    since_ns: u64,
    first: String,
    last_reason: String,
    last: String,
}

impl WatchErrors {
    fn detail(&self) -> String {
        if self.first == self.last {
            self.last.clone()
        } else {
            format!("{} (first error: {})", self.last, self.first)
        }
    }
}

struct Run {
    clock: RunClock,
    normaliser: Normaliser,
    events: mpsc::UnboundedSender<LifecycleEvent>,
    watches: BTreeMap<Resource, WatchState>,
    blind_spots: Vec<BlindSpot>,
    /// Told once every watch has listed, or the first list failed.
    ready: Option<oneshot::Sender<Result<(), WatchError>>>,
    later_events: Option<BoxStream<'static, Tagged>>,
    namespace: String,
}

impl Run {
    async fn run(
        mut self,
        mut streams: SelectAll<BoxStream<'static, Tagged>>,
        cancel: CancellationToken,
    ) -> WatchSummary {
        loop {
            let item = tokio::select! {
                biased;
                _ = cancel.cancelled() => break,
                item = streams.next() => item,
            };
            let Some((resource, result)) = item else {
                break;
            };
            let now = self.clock.now_ns();
            if let Err(e) = self.handle(resource, result, now) {
                if let Some(tx) = self.ready.take() {
                    let _ = tx.send(Err(e));
                }
                break;
            }
            if self.ready.is_some()
                && self.later_events.is_some()
                && self
                    .watches
                    .iter()
                    .all(|(r, w)| *r == Resource::Events || w.listed)
            {
                streams.push(self.later_events.take().expect("checked above"));
            }
            if self.watches.values().all(|w| w.listed)
                && let Some(tx) = self.ready.take()
            {
                let _ = tx.send(Ok(()));
            }
        }
        let now = self.clock.now_ns();
        self.summary(now)
    }

    /// The blind spots so far; a watch still failing at `now` has been
    /// blind since its first error.
    fn summary(mut self, now: u64) -> WatchSummary {
        for (r, w) in &self.watches {
            if let Some(errs) = &w.error {
                self.blind_spots.push(BlindSpot {
                    resource: r.as_str().into(),
                    from_ns: errs.since_ns,
                    len_ns: now.saturating_sub(errs.since_ns),
                    open: true,
                });
            }
        }
        WatchSummary {
            blind_spots: self.blind_spots,
        }
    }

    fn send(&self, events: Vec<LifecycleEvent>) {
        for e in events {
            // The receiver gone means nobody records any more; not an error here.
            let _ = self.events.send(e);
        }
    }

    fn handle(
        &mut self,
        resource: Resource,
        result: watcher::Result<Event<Object>>,
        now: u64,
    ) -> Result<(), WatchError> {
        let w = self.watches.entry(resource).or_default();
        let event = match result {
            Ok(e) => e,
            Err(e) => {
                if !w.listed {
                    return Err(WatchError::InitialList {
                        resource: resource.as_str(),
                        namespace: self.namespace.clone(),
                        message: e.to_string(),
                    });
                }
                let (reason, message) = (error_reason(&e), e.to_string());
                tracing::warn!(resource = resource.as_str(), %reason, error = %message, "watch error; kube-rs retries");
                match &mut w.error {
                    Some(errs) => {
                        errs.last_reason = reason;
                        errs.last = message;
                    }
                    None => {
                        w.error = Some(WatchErrors {
                            since_ns: now,
                            first: message.clone(),
                            last_reason: reason,
                            last: message,
                        });
                    }
                }
                return Ok(());
            }
        };
        match event {
            Event::Init => w.buffer = Some(Vec::new()),
            Event::InitApply(o) => w.buffer.get_or_insert_with(Vec::new).push(o),
            Event::InitDone => {
                let objects = w.buffer.take().unwrap_or_default();
                let out = if !w.listed {
                    w.listed = true;
                    self.normaliser
                        .relisted(resource, objects, now, ListKind::Initial)
                } else {
                    let (from, reason, message) = match w.error.take() {
                        Some(errs) => (errs.since_ns, errs.last_reason.clone(), errs.detail()),
                        None => (
                            w.last_good_ns,
                            "Relisted".into(),
                            "the watch re-listed".into(),
                        ),
                    };
                    self.blind_spots.push(BlindSpot {
                        resource: resource.as_str().into(),
                        from_ns: from,
                        len_ns: now.saturating_sub(from),
                        open: false,
                    });
                    tracing::info!(
                        resource = resource.as_str(),
                        blind_ms = now.saturating_sub(from) / 1_000_000,
                        "watch re-listed"
                    );
                    let mut out = vec![watch_restarted(resource, from, now, &reason, &message)];
                    out.extend(self.normaliser.relisted(
                        resource,
                        objects,
                        now,
                        ListKind::AfterRestart,
                    ));
                    out
                };
                let w = self.watches.entry(resource).or_default();
                w.last_good_ns = now;
                w.error = None;
                self.send(out);
            }
            Event::Apply(o) => {
                w.last_good_ns = now;
                w.error = None;
                let out = self.normaliser.applied(o, now);
                self.send(out);
            }
            Event::Delete(o) => {
                w.last_good_ns = now;
                w.error = None;
                let out = self.normaliser.deleted(o, now);
                self.send(out);
            }
        }
        Ok(())
    }
}

/// A short reason for a watch error: the Status reason (`Expired` for a
/// 410) or what failed.
fn error_reason(e: &watcher::Error) -> String {
    match e {
        watcher::Error::WatchError(s) if !s.reason.is_empty() => s.reason.clone(),
        watcher::Error::WatchError(s) => format!("Status{}", s.code),
        watcher::Error::WatchFailed(_) => "StreamFailed".into(),
        watcher::Error::WatchStartFailed(_) => "WatchStartFailed".into(),
        watcher::Error::InitialListFailed(_) => "ListFailed".into(),
        watcher::Error::NoResourceVersion => "NoResourceVersion".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::event::EventKind;

    fn run() -> (Run, mpsc::UnboundedReceiver<LifecycleEvent>) {
        let clock = RunClock::start();
        let (tx, rx) = mpsc::unbounded_channel();
        let (ready, _) = oneshot::channel();
        let run = Run {
            clock,
            normaliser: Normaliser::new(clock, "web-server"),
            events: tx,
            watches: Resource::ALL
                .iter()
                .map(|r| (*r, WatchState::default()))
                .collect(),
            blind_spots: Vec::new(),
            ready: Some(ready),
            later_events: None,
            namespace: "default".into(),
        };
        (run, rx)
    }

    fn pod(name: &str) -> Object {
        Object::Pod(Box::new(Pod {
            metadata: kube::api::ObjectMeta {
                name: Some(name.into()),
                ..Default::default()
            },
            ..Default::default()
        }))
    }

    fn gone() -> watcher::Result<Event<Object>> {
        Err(watcher::Error::WatchError(Box::new(kube::core::Status {
            code: 410,
            reason: "Expired".into(),
            message: "too old resource version".into(),
            ..Default::default()
        })))
    }

    fn dropped() -> watcher::Result<Event<Object>> {
        Err(watcher::Error::NoResourceVersion)
    }

    fn drain(rx: &mut mpsc::UnboundedReceiver<LifecycleEvent>) -> Vec<LifecycleEvent> {
        std::iter::from_fn(|| rx.try_recv().ok()).collect()
    }

    fn list(run: &mut Run, names: &[&str], now: u64) {
        run.handle(Resource::Pods, Ok(Event::Init), now).unwrap();
        for n in names {
            run.handle(Resource::Pods, Ok(Event::InitApply(pod(n))), now)
                .unwrap();
        }
        run.handle(Resource::Pods, Ok(Event::InitDone), now)
            .unwrap();
    }

    #[test]
    fn the_first_list_is_initial_and_not_a_restart() {
        let (mut run, mut rx) = run();
        list(&mut run, &["a"], 10);
        let ev = drain(&mut rx);
        assert_eq!(ev.len(), 1);
        assert_eq!(ev[0].kind, EventKind::PodCreated);
        assert_eq!(ev[0].detail, "initial list");
        assert!(run.summary(20).blind_spots.is_empty());
    }

    #[test]
    fn a_relist_after_errors_is_a_restart_blind_from_the_first_error() {
        let (mut run, mut rx) = run();
        list(&mut run, &["a", "b"], 10);
        drain(&mut rx);
        run.handle(Resource::Pods, dropped(), 100).unwrap();
        run.handle(Resource::Pods, gone(), 300).unwrap();
        list(&mut run, &["a", "c"], 450);
        let ev = drain(&mut rx);
        let kinds: Vec<EventKind> = ev.iter().map(|e| e.kind).collect();
        assert_eq!(
            kinds,
            [
                EventKind::WatchRestarted,
                EventKind::PodGone,
                EventKind::PodCreated
            ]
        );
        let w = &ev[0];
        assert_eq!(w.object, "watch/pods");
        assert_eq!(w.blind_ns, Some(350));
        assert_eq!(w.reason, "Expired", "the error that forced the re-list");
        assert!(w.detail.contains("first error"), "{}", w.detail);
        assert!(!w.late && ev[1].late && ev[2].late);
        assert_eq!(ev[1].pod, "b");
        assert_eq!(
            run.summary(500).blind_spots,
            [BlindSpot {
                resource: "pods".into(),
                from_ns: 100,
                len_ns: 350,
                open: false
            }]
        );
    }

    #[test]
    fn a_stream_that_resumes_after_an_error_is_not_a_restart() {
        let (mut run, mut rx) = run();
        list(&mut run, &["a"], 10);
        drain(&mut rx);
        run.handle(Resource::Pods, dropped(), 100).unwrap();
        run.handle(Resource::Pods, Ok(Event::Apply(pod("b"))), 200)
            .unwrap();
        let ev = drain(&mut rx);
        assert_eq!(ev.len(), 1);
        assert_eq!(ev[0].kind, EventKind::PodCreated);
        assert!(!ev[0].late);
        assert!(run.summary(300).blind_spots.is_empty());
    }

    #[test]
    fn a_watch_still_failing_at_the_end_is_blind_until_then() {
        let (mut run, _rx) = run();
        list(&mut run, &[], 10);
        run.handle(Resource::Pods, gone(), 100).unwrap();
        assert_eq!(
            run.summary(400).blind_spots,
            [BlindSpot {
                resource: "pods".into(),
                from_ns: 100,
                len_ns: 300,
                open: true
            }]
        );
    }

    #[test]
    fn an_error_before_the_first_list_fails_the_start() {
        let (mut run, _rx) = run();
        let err = run.handle(Resource::Pods, dropped(), 5).unwrap_err();
        assert!(matches!(
            err,
            WatchError::InitialList {
                resource: "pods",
                ..
            }
        ));
        assert!(err.to_string().contains("list and watch permission"));
    }

    #[test]
    fn backoff_doubles_to_its_cap_and_resets() {
        let mut b = WatchBackoff::default();
        let got: Vec<Duration> = (&mut b).take(7).collect();
        assert_eq!(got[0], BACKOFF_MIN);
        assert_eq!(got[1], BACKOFF_MIN * 2);
        assert_eq!(got[6], BACKOFF_MAX);
        b.reset();
        assert_eq!(b.next(), Some(BACKOFF_MIN));
    }
}
