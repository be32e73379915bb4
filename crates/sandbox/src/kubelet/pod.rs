//! One Pod's life in the simulated kubelet: schedule, pull, start, probe,
//! crash and restart, terminate (preStop, SIGTERM, grace period, SIGKILL),
//! remove. See the [module docs](super) for the behaviour.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::{
    ContainerState, ContainerStateRunning, ContainerStateTerminated, ContainerStateWaiting,
    ContainerStatus, HostIP, Pod, PodCondition, PodIP, PodStatus,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use k8s_openapi::jiff::Timestamp;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::probe::{self, Check};
use super::server::{PodServer, Reply};
use super::{
    CRASH_AFTER, ON_SIGTERM, RESPONSE_DELAY, STARTUP_DELAY, STATUS, parse_duration, served_version,
};
use crate::config::ClusterConfig;
use crate::events::{EventType, Recorder};
use crate::store::{Store, StoreError};
use crate::truth::{GroundTruth, PodMomentKind};

/// What all Pod workers share.
pub(super) struct Shared {
    pub store: Arc<Store>,
    pub rec: Recorder,
    pub sched: Recorder,
    pub cfg: ClusterConfig,
    pub truth: GroundTruth,
    /// Process containers' output and stdin, shared with the API server.
    pub processes: super::process::ProcessTable,
}

/// Why a worker stops what it is doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Stop {
    /// deletionTimestamp set: terminate gracefully.
    Deleted,
    /// Removed from the store by someone else (force delete): stop now.
    Gone,
    /// The sandbox is shutting down.
    Shutdown,
}

/// The worker's view of its Pod object.
pub(super) struct PodWatch {
    pub rx: watch::Receiver<Option<Pod>>,
    pub pod: Pod,
    pub shutdown: CancellationToken,
}

impl PodWatch {
    pub(super) fn refresh(&mut self, deletion_stops: bool) -> Option<Stop> {
        let cur = self.rx.borrow_and_update().clone();
        match cur {
            None => Some(Stop::Gone),
            Some(p) => {
                self.pod = p;
                (deletion_stops && self.pod.metadata.deletion_timestamp.is_some())
                    .then_some(Stop::Deleted)
            }
        }
    }

    async fn wait(&mut self, deletion_stops: bool) -> Stop {
        loop {
            if self.shutdown.is_cancelled() {
                return Stop::Shutdown;
            }
            if let Some(s) = self.refresh(deletion_stops) {
                return s;
            }
            tokio::select! {
                _ = self.shutdown.cancelled() => return Stop::Shutdown,
                r = self.rx.changed() => if r.is_err() { return Stop::Gone },
            }
        }
    }

    /// Deleted, gone or shutting down.
    pub(super) async fn interrupted(&mut self) -> Stop {
        self.wait(true).await
    }

    /// A grace period shorter than `cur` (a second DELETE may shorten it),
    /// or why the Pod cannot wait any more.
    pub(super) async fn grace_shortened(&mut self, cur: i64) -> Result<i64, Stop> {
        loop {
            if self.shutdown.is_cancelled() {
                return Err(Stop::Shutdown);
            }
            if let Some(s) = self.refresh(false) {
                return Err(s);
            }
            if let Some(g) = self.pod.metadata.deletion_grace_period_seconds
                && g < cur
            {
                return Ok(g.max(0));
            }
            tokio::select! {
                _ = self.shutdown.cancelled() => return Err(Stop::Shutdown),
                r = self.rx.changed() => if r.is_err() { return Err(Stop::Gone) },
            }
        }
    }

    async fn sleep(&mut self, d: Duration) -> Result<(), Stop> {
        tokio::select! {
            s = self.interrupted() => Err(s),
            _ = tokio::time::sleep(d) => Ok(()),
        }
    }
}

/// A container's state as the kubelet reports it; simulated and process
/// containers alike ([`super::process`]).
#[derive(Clone)]
pub(super) enum CState {
    Waiting {
        reason: String,
        message: Option<String>,
    },
    Running {
        started_at: Timestamp,
    },
    Terminated {
        exit_code: i32,
        reason: String,
        message: Option<String>,
        /// `None` for a container that never ran.
        started_at: Option<Timestamp>,
        finished_at: Timestamp,
    },
}

impl CState {
    /// As `status.containerStatuses[].state`.
    pub(super) fn to_k8s(&self, container_id: String) -> ContainerState {
        let t = |ts: Timestamp| Some(Time(ts));
        match self {
            CState::Waiting { reason, message } => ContainerState {
                waiting: Some(ContainerStateWaiting {
                    reason: Some(reason.clone()),
                    message: message.clone(),
                }),
                ..Default::default()
            },
            CState::Running { started_at } => ContainerState {
                running: Some(ContainerStateRunning {
                    started_at: t(*started_at),
                }),
                ..Default::default()
            },
            CState::Terminated {
                exit_code,
                reason,
                message,
                started_at,
                finished_at,
            } => ContainerState {
                terminated: Some(ContainerStateTerminated {
                    exit_code: *exit_code,
                    reason: Some(reason.clone()),
                    message: message.clone(),
                    started_at: started_at.map(Time),
                    finished_at: t(*finished_at),
                    container_id: Some(container_id),
                    ..Default::default()
                }),
                ..Default::default()
            },
        }
    }
}

struct Worker {
    sh: Arc<Shared>,
    watch: PodWatch,
    ns: String,
    name: String,
    uid: String,
    ip: Ipv4Addr,
    port: u16,
    image: String,
    containers: Vec<String>,
    /// The Node the Pod was bound to (`spec.nodeName`).
    node: String,
    /// The kubelet's event recorder, as that Node's kubelet.
    rec: Recorder,
    scheduled_at: Timestamp,
    state: CState,
    last_state: Option<ContainerState>,
    restarts: i32,
    ever_started: bool,
    ready: bool,
    ready_changed: Timestamp,
    /// Terminal phase once the containers have stopped for deletion.
    final_phase: Option<&'static str>,
    container_seq: u32,
    server: Option<PodServer>,
}

fn annotation(p: &Pod, key: &str) -> Option<String> {
    p.metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(key))
        .cloned()
}

fn annotation_duration(p: &Pod, key: &str) -> Option<Duration> {
    let v = annotation(p, key)?;
    let d = parse_duration(&v);
    if d.is_none() {
        tracing::warn!(annotation = key, value = %v, "unparsable duration annotation ignored");
    }
    d
}

/// A `sleep N` inside a preStop `exec` command (`["sleep","5"]` or
/// `["/bin/sh","-c","sleep 5 && ..."]`), in seconds.
fn sleep_in_command(cmd: &[String]) -> Option<f64> {
    let words: Vec<&str> = cmd
        .iter()
        .flat_map(|s| s.split(|c: char| c.is_whitespace() || c == ';' || c == '&' || c == '|'))
        .filter(|w| !w.is_empty())
        .collect();
    let i = words
        .iter()
        .position(|w| *w == "sleep" || w.ends_with("/sleep"))?;
    let arg = words.get(i + 1)?;
    parse_duration(arg).map(|d| d.as_secs_f64())
}

pub(super) async fn run(
    sh: Arc<Shared>,
    pod: Pod,
    ip: Ipv4Addr,
    rx: watch::Receiver<Option<Pod>>,
    shutdown: CancellationToken,
) {
    let spec = pod.spec.clone().unwrap_or_default();
    let first = spec.containers.first();
    let port = super::pod_port(&pod);
    let now = crate::node::now();
    let node = spec
        .node_name
        .clone()
        .unwrap_or_else(|| crate::node::NODE_NAME.into());
    let mut w = Worker {
        ns: pod
            .metadata
            .namespace
            .clone()
            .unwrap_or_else(|| "default".into()),
        name: pod.metadata.name.clone().unwrap_or_default(),
        uid: pod.metadata.uid.clone().unwrap_or_default(),
        image: first.and_then(|c| c.image.clone()).unwrap_or_default(),
        containers: spec.containers.iter().map(|c| c.name.clone()).collect(),
        node: node.clone(),
        rec: sh.rec.on_node(&node),
        sh,
        watch: PodWatch { rx, pod, shutdown },
        ip,
        port,
        scheduled_at: now,
        state: CState::Waiting {
            reason: "ContainerCreating".into(),
            message: None,
        },
        last_state: None,
        restarts: 0,
        ever_started: false,
        ready: false,
        ready_changed: now,
        final_phase: None,
        container_seq: 0,
        server: None,
    };
    let stop = w.lifecycle().await;
    tracing::debug!(pod = %w.name, ?stop, "pod worker stopping");
    match stop {
        Stop::Deleted => w.terminate().await,
        Stop::Gone | Stop::Shutdown => {
            if let Some(s) = w.server.take() {
                if stop == Stop::Gone {
                    w.moment(PodMomentKind::Killed);
                }
                s.kill().await;
            }
        }
    }
}

impl Worker {
    fn addr(&self) -> SocketAddr {
        SocketAddr::new(IpAddr::V4(self.ip), self.port)
    }

    fn container(&self) -> String {
        self.containers
            .first()
            .cloned()
            .unwrap_or_else(|| "app".into())
    }

    /// Records what the container just began doing, for the ground truth.
    fn moment(&self, kind: PodMomentKind) {
        self.sh.truth.pod_moment(&self.ns, &self.name, kind);
    }

    fn event(&self, ty: EventType, reason: &'static str, msg: String) {
        self.rec.record(&self.watch.pod, ty, reason, msg);
    }

    fn backoff(&self, n: i32) -> Duration {
        let base = self.sh.cfg.backoff_base;
        let f = 2u32.saturating_pow((n.max(1) - 1).min(20) as u32);
        base.saturating_mul(f).min(self.sh.cfg.backoff_max)
    }

    fn set_ready(&mut self, ready: bool) {
        if self.ready != ready {
            self.ready = ready;
            self.ready_changed = crate::node::now();
            tracing::info!(pod = %self.name, ready, "pod readiness changed");
        }
    }

    fn status(&self) -> PodStatus {
        let t = |ts: Timestamp| Some(Time(ts));
        let cond =
            |ty: &str, ok: bool, at: Timestamp, reason: Option<&str>, msg: Option<String>| {
                PodCondition {
                    type_: ty.into(),
                    status: if ok { "True" } else { "False" }.into(),
                    last_transition_time: t(at),
                    reason: (!ok).then(|| reason.map(str::to_string)).flatten(),
                    message: (!ok).then_some(msg).flatten(),
                    ..Default::default()
                }
            };
        let unready = format!(
            "containers with unready status: [{}]",
            self.containers.join(" ")
        );
        let state = self.state.to_k8s(self.container_id());
        let running = matches!(self.state, CState::Running { .. });
        let phase = self.final_phase.unwrap_or(if self.ever_started {
            "Running"
        } else {
            "Pending"
        });
        PodStatus {
            phase: Some(phase.into()),
            conditions: Some(vec![
                cond(
                    "PodReadyToStartContainers",
                    true,
                    self.scheduled_at,
                    None,
                    None,
                ),
                cond("Initialized", true, self.scheduled_at, None, None),
                cond(
                    "Ready",
                    self.ready,
                    self.ready_changed,
                    Some("ContainersNotReady"),
                    Some(unready.clone()),
                ),
                cond(
                    "ContainersReady",
                    self.ready,
                    self.ready_changed,
                    Some("ContainersNotReady"),
                    Some(unready),
                ),
                cond("PodScheduled", true, self.scheduled_at, None, None),
            ]),
            container_statuses: Some(
                self.containers
                    .iter()
                    .map(|c| ContainerStatus {
                        name: c.clone(),
                        image: self.image.clone(),
                        image_id: if self.ever_started {
                            format!("sandbox.baton.dev/{}@sha256:simulated", self.image)
                        } else {
                            String::new()
                        },
                        container_id: self.ever_started.then(|| self.container_id()),
                        ready: self.ready,
                        restart_count: self.restarts,
                        started: Some(running),
                        state: Some(state.clone()),
                        last_state: self.last_state.clone(),
                        ..Default::default()
                    })
                    .collect(),
            ),
            host_ip: Some("127.0.0.1".into()),
            host_ips: Some(vec![HostIP {
                ip: "127.0.0.1".into(),
            }]),
            pod_ip: Some(self.ip.to_string()),
            pod_ips: Some(vec![PodIP {
                ip: self.ip.to_string(),
            }]),
            start_time: t(self.scheduled_at),
            qos_class: Some("BestEffort".into()),
            ..Default::default()
        }
    }

    fn container_id(&self) -> String {
        format!(
            "sandbox://{}-{}",
            self.uid.split('-').next().unwrap_or_default(),
            self.container_seq
        )
    }

    /// Writes the Pod's status (and node) to the store.
    fn publish(&mut self) -> Result<(), Stop> {
        let st = self.status();
        let node = self.node.clone();
        let r = self.sh.store.modify::<Pod>(&self.ns, &self.name, |p| {
            p.spec.get_or_insert_with(Default::default).node_name = Some(node);
            p.status = Some(st);
        });
        match r {
            Ok(p) => {
                self.watch.pod = p;
                Ok(())
            }
            Err(StoreError::NotFound { .. }) => Err(Stop::Gone),
            Err(e) => {
                tracing::warn!(pod = %self.name, error = %e, "pod status update failed");
                Ok(())
            }
        }
    }

    async fn lifecycle(&mut self) -> Stop {
        if let Err(s) = self.publish() {
            return s;
        }
        self.sh.sched.record(
            &self.watch.pod,
            EventType::Normal,
            "Scheduled",
            format!(
                "Successfully assigned {}/{} to {}",
                self.ns, self.name, self.node
            ),
        );
        if let Some(s) = self.watch.refresh(true) {
            return s;
        }
        let image = self.image.clone();
        self.event(
            EventType::Normal,
            "Pulling",
            format!("Pulling image \"{image}\""),
        );
        if image.contains("does-not-exist") {
            return self.image_pull_loop().await;
        }
        self.event(
            EventType::Normal,
            "Pulled",
            format!("Successfully pulled image \"{image}\" in 0s (0s including waiting). Image size: 0 bytes."),
        );
        loop {
            let c = self.container();
            self.event(
                EventType::Normal,
                "Created",
                format!("Created container: {c}"),
            );
            self.event(
                EventType::Normal,
                "Started",
                format!("Started container {c}"),
            );
            self.container_seq += 1;
            self.state = CState::Running {
                started_at: crate::node::now(),
            };
            self.ever_started = true;
            self.set_ready(false);
            if let Err(s) = self.publish() {
                return s;
            }
            let exit = match self.run_container().await {
                Err(s) => return s,
                Ok(x) => x,
            };
            // The container exited on its own: restart with back-off.
            let started_at = match self.state {
                CState::Running { started_at } => started_at,
                _ => crate::node::now(),
            };
            self.restarts += 1;
            self.set_ready(false);
            self.last_state = Some(ContainerState {
                terminated: Some(ContainerStateTerminated {
                    exit_code: exit.0,
                    reason: Some("Error".into()),
                    message: exit.1,
                    started_at: Some(Time(started_at)),
                    finished_at: Some(Time(crate::node::now())),
                    container_id: Some(self.container_id()),
                    ..Default::default()
                }),
                ..Default::default()
            });
            let delay = self.backoff(self.restarts);
            self.state = CState::Waiting {
                reason: "CrashLoopBackOff".into(),
                message: Some(format!(
                    "back-off {}s restarting failed container={c} pod={}_{}({})",
                    delay.as_secs(),
                    self.name,
                    self.ns,
                    self.uid
                )),
            };
            tracing::info!(pod = %self.name, restarts = self.restarts, ?delay, "container exited; back-off");
            if let Err(s) = self.publish() {
                return s;
            }
            self.event(
                EventType::Warning,
                "BackOff",
                format!(
                    "Back-off restarting failed container {c} in pod {}_{}({})",
                    self.name, self.ns, self.uid
                ),
            );
            if let Err(s) = self.watch.sleep(delay).await {
                return s;
            }
            self.event(
                EventType::Normal,
                "Pulled",
                format!("Container image \"{image}\" already present on machine"),
            );
        }
    }

    /// A tag containing `does-not-exist`: ErrImagePull, ImagePullBackOff,
    /// retry, forever (until deleted).
    async fn image_pull_loop(&mut self) -> Stop {
        let image = self.image.clone();
        let not_found = format!(
            "rpc error: code = NotFound desc = failed to pull and unpack image \"{image}\": not found"
        );
        let mut n = 0;
        loop {
            if n > 0 {
                self.event(
                    EventType::Normal,
                    "Pulling",
                    format!("Pulling image \"{image}\""),
                );
            }
            n += 1;
            self.event(
                EventType::Warning,
                "Failed",
                format!("Failed to pull image \"{image}\": {not_found}"),
            );
            self.event(EventType::Warning, "Failed", "Error: ErrImagePull".into());
            self.state = CState::Waiting {
                reason: "ErrImagePull".into(),
                message: Some(not_found.clone()),
            };
            if let Err(s) = self.publish() {
                return s;
            }
            if let Err(s) = self
                .watch
                .sleep(self.sh.cfg.backoff_base.min(Duration::from_secs(1)))
                .await
            {
                return s;
            }
            self.event(
                EventType::Normal,
                "BackOff",
                format!("Back-off pulling image \"{image}\""),
            );
            self.event(
                EventType::Warning,
                "Failed",
                "Error: ImagePullBackOff".into(),
            );
            self.state = CState::Waiting {
                reason: "ImagePullBackOff".into(),
                message: Some(format!(
                    "Back-off pulling image \"{image}\": ErrImagePull: {not_found}"
                )),
            };
            if let Err(s) = self.publish() {
                return s;
            }
            if let Err(s) = self.watch.sleep(self.backoff(n)).await {
                return s;
            }
        }
    }

    /// The readiness check of the first container, with its settings.
    fn readiness(&self) -> Option<(Check, ProbeCfg)> {
        let c = self.watch.pod.spec.as_ref()?.containers.first()?;
        let p = c.readiness_probe.as_ref()?;
        let port_of = |v: &IntOrString| -> u16 {
            match v {
                IntOrString::Int(i) => u16::try_from(*i).unwrap_or(self.port),
                IntOrString::String(name) => name.parse().ok().unwrap_or_else(|| {
                    c.ports
                        .iter()
                        .flatten()
                        .find(|cp| cp.name.as_deref() == Some(name.as_str()))
                        .and_then(|cp| u16::try_from(cp.container_port).ok())
                        .unwrap_or(self.port)
                }),
            }
        };
        let check = if let Some(h) = &p.http_get {
            let path = h
                .path
                .clone()
                .filter(|p| !p.is_empty())
                .unwrap_or_else(|| "/".into());
            Check::HttpGet {
                addr: SocketAddr::new(IpAddr::V4(self.ip), port_of(&h.port)),
                path,
            }
        } else if let Some(t) = &p.tcp_socket {
            Check::TcpSocket {
                addr: SocketAddr::new(IpAddr::V4(self.ip), port_of(&t.port)),
            }
        } else {
            Check::Assumed
        };
        let secs =
            |v: Option<i32>, d: i32, min: i32| Duration::from_secs(v.unwrap_or(d).max(min) as u64);
        Some((
            check,
            ProbeCfg {
                initial_delay: secs(p.initial_delay_seconds, 0, 0),
                period: secs(p.period_seconds, 10, 1),
                timeout: secs(p.timeout_seconds, 1, 1),
                success_threshold: p.success_threshold.unwrap_or(1).max(1),
                failure_threshold: p.failure_threshold.unwrap_or(3).max(1),
            },
        ))
    }

    /// Runs the started container until it exits on its own (`Ok`: exit
    /// code and message) or the Pod is deleted / gone / shut down (`Err`).
    async fn run_container(&mut self) -> Result<(i32, Option<String>), Stop> {
        let started = Instant::now();
        self.moment(PodMomentKind::Started);
        let pod = self.watch.pod.clone();
        let bind_at = started + annotation_duration(&pod, STARTUP_DELAY).unwrap_or_default();
        let crash_at = annotation_duration(&pod, CRASH_AFTER).map(|d| started + d);
        let reply = Reply {
            pod: self.name.clone(),
            version: served_version(&self.watch.pod, &self.image),
            delay: annotation_duration(&pod, RESPONSE_DELAY).unwrap_or_default(),
            status: annotation(&pod, STATUS)
                .and_then(|s| s.trim().parse::<u16>().ok())
                .filter(|s| (100..600).contains(s))
                .unwrap_or(200),
        };
        let probe = self.readiness();
        let mut next_probe = probe.as_ref().map(|(_, c)| started + c.initial_delay);
        let mut inflight: Option<JoinHandle<Result<(), String>>> = None;
        let (mut successes, mut failures) = (0, 0);
        enum Ev {
            Stop(Stop),
            Wake,
            Probe(Result<(), String>),
        }
        let result = loop {
            let now = Instant::now();
            if self.server.is_none() && now >= bind_at {
                let addr = self.addr();
                match PodServer::start(addr, reply.clone()).await {
                    Ok(s) => {
                        tracing::info!(pod = %self.name, %addr, "pod listening");
                        self.moment(PodMomentKind::Listening);
                        self.server = Some(s);
                        if probe.is_none() {
                            self.set_ready(true);
                            if let Err(s) = self.publish() {
                                break Err(s);
                            }
                        }
                    }
                    Err(e) => {
                        let msg = format!("listen tcp {addr}: bind: {e}");
                        tracing::warn!(pod = %self.name, %msg, "pod cannot listen");
                        self.event(EventType::Warning, "Failed", format!("Error: {msg}"));
                        self.moment(PodMomentKind::Crashed);
                        break Ok((1, Some(msg)));
                    }
                }
            }
            if let Some(at) = crash_at
                && now >= at
            {
                self.moment(PodMomentKind::Crashed);
                if let Some(s) = self.server.take() {
                    s.kill().await;
                }
                break Ok((1, None));
            }
            if let (Some((check, cfg)), Some(at), None) = (&probe, next_probe, &inflight)
                && now >= at
            {
                let (check, timeout) = (check.clone(), cfg.timeout);
                inflight = Some(tokio::spawn(
                    async move { probe::run(&check, timeout).await },
                ));
                next_probe = None;
            }
            let mut wake: Option<Instant> = None;
            for t in [
                (self.server.is_none()).then_some(bind_at),
                crash_at,
                if inflight.is_none() { next_probe } else { None },
            ]
            .into_iter()
            .flatten()
            {
                wake = Some(wake.map_or(t, |w: Instant| w.min(t)));
            }
            let far = Instant::now() + Duration::from_secs(3600);
            let ev = tokio::select! {
                s = self.watch.interrupted() => Ev::Stop(s),
                _ = tokio::time::sleep_until(wake.unwrap_or(far)) => Ev::Wake,
                r = async { inflight.as_mut().expect("guarded").await }, if inflight.is_some() => {
                    Ev::Probe(r.unwrap_or_else(|e| Err(format!("probe failed: {e}"))))
                }
            };
            match ev {
                Ev::Stop(s) => break Err(s),
                Ev::Wake => {}
                Ev::Probe(r) => {
                    inflight = None;
                    let Some((_, cfg)) = &probe else { continue };
                    next_probe = Some(Instant::now() + cfg.period);
                    match r {
                        Ok(()) => {
                            successes += 1;
                            failures = 0;
                            if !self.ready && successes >= cfg.success_threshold {
                                self.set_ready(true);
                                if let Err(s) = self.publish() {
                                    break Err(s);
                                }
                            }
                        }
                        Err(msg) => {
                            failures += 1;
                            successes = 0;
                            self.event(
                                EventType::Warning,
                                "Unhealthy",
                                format!("Readiness probe failed: {msg}"),
                            );
                            if self.ready && failures >= cfg.failure_threshold {
                                self.set_ready(false);
                                if let Err(s) = self.publish() {
                                    break Err(s);
                                }
                            }
                        }
                    }
                }
            }
        };
        if let Some(h) = inflight {
            h.abort();
        }
        result
    }

    /// The preStop hook as a sleep, if it is one.
    fn pre_stop(&self) -> Option<Duration> {
        let h = self
            .watch
            .pod
            .spec
            .as_ref()?
            .containers
            .first()?
            .lifecycle
            .as_ref()?
            .pre_stop
            .as_ref()?;
        if let Some(s) = &h.sleep {
            return Some(Duration::from_secs(s.seconds.max(0) as u64));
        }
        if let Some(e) = &h.exec {
            let cmd = e.command.clone().unwrap_or_default();
            let secs = sleep_in_command(&cmd);
            if secs.is_none() {
                tracing::info!(pod = %self.name, ?cmd, "preStop exec is not simulated (no `sleep N` in it); skipped");
            }
            return secs.map(Duration::from_secs_f64);
        }
        tracing::info!(pod = %self.name, "preStop hook other than exec sleep / sleep action is not simulated; skipped");
        None
    }

    /// Graceful termination after deletionTimestamp: preStop, SIGTERM,
    /// grace period, SIGKILL; then terminated status and removal.
    async fn terminate(&mut self) {
        let pod = self.watch.pod.clone();
        let grace = pod
            .metadata
            .deletion_grace_period_seconds
            .or_else(|| {
                pod.spec
                    .as_ref()
                    .and_then(|s| s.termination_grace_period_seconds)
            })
            .unwrap_or(30)
            .max(0);
        let mut grace = grace;
        let mut deadline = Instant::now() + Duration::from_secs(grace as u64);
        let running = match self.state {
            CState::Running { started_at } => Some(started_at),
            _ => None,
        };
        let Some(started_at) = running else {
            // Nothing runs (image pull or crash back-off): just go.
            self.remove();
            return;
        };
        let c = self.container();
        tracing::info!(pod = %self.name, grace, "stopping pod");
        self.event(
            EventType::Normal,
            "Killing",
            format!("Stopping container {c}"),
        );
        self.moment(PodMomentKind::Deleting);
        let (prober, unready_at) = self.termination_prober();
        let mut killed = false;
        if let Some(d) = self.pre_stop() {
            let hook_end = Instant::now() + d;
            loop {
                let until = hook_end.min(deadline);
                let ev = tokio::select! {
                    _ = tokio::time::sleep_until(until) => None,
                    r = self.watch.grace_shortened(grace) => Some(r),
                };
                match ev {
                    None => break,
                    Some(Ok(g)) => {
                        grace = g;
                        deadline = deadline.min(Instant::now() + Duration::from_secs(g as u64));
                    }
                    Some(Err(stop)) => {
                        if let Some(s) = self.server.take() {
                            if stop == Stop::Gone {
                                self.moment(PodMomentKind::Killed);
                            }
                            s.kill().await;
                        }
                        return;
                    }
                }
            }
            // The hook outlived the grace period: SIGKILL, no SIGTERM.
            killed = hook_end > deadline;
        }
        let drain =
            annotation(&pod, ON_SIGTERM).is_some_and(|v| v.trim().eq_ignore_ascii_case("drain"));
        let exit = match self.server.take() {
            None => {
                self.moment(PodMomentKind::Exited);
                0
            }
            Some(s) if killed => {
                self.moment(PodMomentKind::Killed);
                s.kill().await;
                137
            }
            Some(mut s) if drain => {
                self.moment(PodMomentKind::Draining);
                s.start_drain().await;
                loop {
                    let limit = deadline.saturating_duration_since(Instant::now());
                    let ev = tokio::select! {
                        ok = s.wait_drained(limit) => Ok(ok),
                        r = self.watch.grace_shortened(grace) => Err(r),
                    };
                    match ev {
                        Ok(true) => {
                            self.moment(PodMomentKind::Exited);
                            break 0;
                        }
                        Ok(false) => {
                            self.moment(PodMomentKind::Killed);
                            s.kill().await;
                            break 137;
                        }
                        Err(Ok(g)) => {
                            grace = g;
                            deadline = deadline.min(Instant::now() + Duration::from_secs(g as u64));
                        }
                        Err(Err(stop)) => {
                            if stop == Stop::Gone {
                                self.moment(PodMomentKind::Killed);
                            }
                            s.kill().await;
                            return;
                        }
                    }
                }
            }
            Some(s) => {
                self.moment(PodMomentKind::Closed);
                s.close().await;
                0
            }
        };
        tracing::info!(pod = %self.name, exit, "container terminated");
        if let Some(p) = prober {
            p.abort();
        }
        self.set_ready(false);
        if let Some(t) = *unready_at.lock().expect("prober") {
            self.ready_changed = t;
        }
        self.state = CState::Terminated {
            exit_code: exit,
            reason: if exit == 0 { "Completed" } else { "Error" }.into(),
            message: None,
            started_at: Some(started_at),
            finished_at: crate::node::now(),
        };
        self.final_phase = Some(if exit == 0 { "Succeeded" } else { "Failed" });
        if self.publish().is_err() {
            return;
        }
        self.remove();
    }

    /// While a deleted Pod runs its preStop hook and SIGTERM handling, the
    /// kubelet keeps probing readiness: a Pod that stops answering turns
    /// not-ready (endpoint `serving=false`) before its container exits.
    /// Returns the prober and when it turned the Pod not-ready, if it did.
    fn termination_prober(
        &self,
    ) -> (
        Option<JoinHandle<()>>,
        Arc<std::sync::Mutex<Option<Timestamp>>>,
    ) {
        let unready_at = Arc::new(std::sync::Mutex::new(None));
        let Some((check, cfg)) = self.readiness().filter(|_| self.ready) else {
            return (None, unready_at);
        };
        let (sh, rec, pod, ns, name) = (
            self.sh.clone(),
            self.rec.clone(),
            self.watch.pod.clone(),
            self.ns.clone(),
            self.name.clone(),
        );
        let at = unready_at.clone();
        let task = tokio::spawn(async move {
            let mut failures = 0;
            loop {
                tokio::time::sleep(cfg.period).await;
                let Err(msg) = probe::run(&check, cfg.timeout).await else {
                    failures = 0;
                    continue;
                };
                failures += 1;
                rec.record(
                    &pod,
                    EventType::Warning,
                    "Unhealthy",
                    format!("Readiness probe failed: {msg}"),
                );
                if failures < cfg.failure_threshold {
                    continue;
                }
                let now = crate::node::now();
                *at.lock().expect("prober") = Some(now);
                let _ = sh.store.modify::<Pod>(&ns, &name, |p| {
                    let Some(st) = p.status.as_mut() else { return };
                    for c in st.conditions.iter_mut().flatten() {
                        if c.type_ == "Ready" || c.type_ == "ContainersReady" {
                            c.status = "False".into();
                            c.reason = Some("ContainersNotReady".into());
                            c.last_transition_time = Some(Time(now));
                        }
                    }
                    for cs in st.container_statuses.iter_mut().flatten() {
                        cs.ready = false;
                    }
                });
                tracing::info!(pod = %name, "terminating pod turned not ready");
                return;
            }
        });
        (Some(task), unready_at)
    }

    fn remove(&self) {
        match self.sh.store.remove::<Pod>(&self.ns, &self.name) {
            Ok(_) | Err(StoreError::NotFound { .. }) => {
                tracing::info!(pod = %self.name, "pod removed")
            }
            Err(e) => tracing::warn!(pod = %self.name, error = %e, "cannot remove pod"),
        }
    }
}

struct ProbeCfg {
    initial_delay: Duration,
    period: Duration,
    timeout: Duration,
    success_threshold: i32,
    failure_threshold: i32,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prestop_sleep_is_found_in_exec_commands() {
        let v = |s: &[&str]| s.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        assert_eq!(sleep_in_command(&v(&["sleep", "5"])), Some(5.0));
        assert_eq!(
            sleep_in_command(&v(&["/bin/sh", "-c", "sleep 3 && nginx -s quit"])),
            Some(3.0)
        );
        assert_eq!(sleep_in_command(&v(&["/bin/sleep", "2"])), Some(2.0));
        assert_eq!(sleep_in_command(&v(&["nginx", "-s", "quit"])), None);
    }
}
