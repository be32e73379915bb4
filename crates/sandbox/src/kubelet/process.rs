//! Process Pods: a Pod whose every container's image starts with one of
//! [`ClusterConfig::process_images`](crate::config::ClusterConfig)'s
//! prefixes runs each container as a **real child process** of the
//! sandbox, the way baton's in-cluster load workers run on it. Every other
//! Pod stays a simulated HTTP server ([`super::pod`]).
//!
//! - **argv**: the container's `command` when it has one (its first word is
//!   the executable; the image's own name for it, `program`'s file name,
//!   means `program`), else `program`; then `args`. `$(VAR)` in command,
//!   args and env values expands from the container's env as Kubernetes
//!   expands it (`$$` is a literal `$`, an unknown name stays as written).
//! - **env**: only the container's `env` (literal values and the
//!   `fieldRef`s `metadata.name`, `metadata.namespace`, `metadata.uid`,
//!   `metadata.labels['…']`, `metadata.annotations['…']`, `spec.nodeName`,
//!   `spec.serviceAccountName`, `status.podIP`, `status.hostIP`), plus
//!   `HOSTNAME` and the sandbox's `PATH`; nothing else of the sandbox's
//!   environment. Secret, ConfigMap and resource refs are skipped (the
//!   sandbox has none).
//! - **lifecycle**: Running with `startedAt` when spawned (its own process
//!   group); Ready when every container runs (a `readinessProbe` with
//!   `httpGet`/`tcpSocket` is probed on the Pod IP as well); on exit
//!   `terminated` with the exit code (128 + signal when killed) and reason
//!   `Completed`/`Error`; `restartPolicy` `Never` leaves it so (phase
//!   `Succeeded` when every container exited 0, else `Failed`),
//!   `OnFailure` restarts a failed one and `Always` any one, with the
//!   kubelet's back-off. A finished Pod stays until deleted.
//! - **deletion**: SIGTERM to each process group, SIGKILL when the grace
//!   period ends (a shorter second delete shortens it); preStop hooks are
//!   not run. Sandbox shutdown SIGKILLs every group and reaps it.
//! - **output**: stdout and stderr are kept per container, the last
//!   [`LOG_LIMIT`] bytes by lines (kubelet log rotation), for `pods/log`;
//!   `pods/attach` gets the output from the moment it attaches and writes
//!   to stdin when the container has `stdin: true` (`stdinOnce` closes it
//!   when the first attach ends).

use std::collections::{HashMap, VecDeque};
use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use k8s_openapi::api::core::v1::{
    Container, ContainerState, ContainerStateTerminated, ContainerStatus, HostIP, Pod,
    PodCondition, PodIP, PodStatus,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use k8s_openapi::jiff::Timestamp;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

use super::pod::{CState, PodWatch, Shared, Stop};
use super::probe::{self, Check};
use crate::config::ProcessImage;
use crate::events::EventType;
use crate::store::StoreError;

/// How much output is kept per container (the kubelet rotates at 10 MiB).
pub const LOG_LIMIT: usize = 10 * 1024 * 1024;

/// Attach channel numbers (`k8s.io/apimachinery/pkg/util/remotecommand`).
pub const STDOUT: u8 = 1;
pub const STDERR: u8 = 2;

/// Whether `pod` runs as processes: every container's image matches a
/// configured prefix.
pub fn is_process_pod(images: &[ProcessImage], pod: &Pod) -> bool {
    let Some(spec) = pod.spec.as_ref() else {
        return false;
    };
    !images.is_empty()
        && !spec.containers.is_empty()
        && spec
            .containers
            .iter()
            .all(|c| program_for(images, c.image.as_deref().unwrap_or("")).is_some())
}

fn program_for<'a>(images: &'a [ProcessImage], image: &str) -> Option<&'a ProcessImage> {
    images
        .iter()
        .find(|p| !p.image_prefix.is_empty() && image.starts_with(&p.image_prefix))
}

/// One line of a container's output.
#[derive(Clone, Debug)]
pub struct LogLine {
    /// Position in the container's output since it was first started.
    pub seq: u64,
    pub at: Timestamp,
    /// The bytes, with their newline (the last line may lack one).
    pub text: Bytes,
}

#[derive(Default)]
struct LogRing {
    lines: VecDeque<LogLine>,
    bytes: usize,
    next_seq: u64,
    /// Per stream, a line not yet ended.
    partial: [Vec<u8>; 2],
}

impl LogRing {
    fn push_line(&mut self, text: Vec<u8>) {
        self.bytes += text.len();
        self.lines.push_back(LogLine {
            seq: self.next_seq,
            at: crate::node::now(),
            text: Bytes::from(text),
        });
        self.next_seq += 1;
        while self.bytes > LOG_LIMIT
            && let Some(old) = self.lines.pop_front()
        {
            self.bytes -= old.text.len();
        }
    }

    fn append(&mut self, stream: usize, mut data: &[u8]) {
        while let Some(i) = data.iter().position(|b| *b == b'\n') {
            let mut line = std::mem::take(&mut self.partial[stream]);
            line.extend_from_slice(&data[..=i]);
            self.push_line(line);
            data = &data[i + 1..];
        }
        self.partial[stream].extend_from_slice(data);
        // A line longer than the whole log is cut, as rotation would.
        if self.partial[stream].len() > LOG_LIMIT / 4 {
            let line = std::mem::take(&mut self.partial[stream]);
            self.push_line(line);
        }
    }

    fn flush(&mut self, stream: usize) {
        let line = std::mem::take(&mut self.partial[stream]);
        if !line.is_empty() {
            self.push_line(line);
        }
    }
}

/// Where a container's run stands, for `pods/log` and `pods/attach`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RunState {
    /// Not started yet, or waiting to restart.
    Waiting,
    Running,
    /// The last run exited with this code.
    Exited(i32),
}

enum StdinMsg {
    Data(Bytes),
    Close,
}

type Attacher = (mpsc::Sender<(u8, Bytes)>, bool, bool);

/// One process container's output, stdin and state, shared by the kubelet
/// (which runs it) and the API server (which serves log and attach).
pub struct ContainerIo {
    log: Mutex<LogRing>,
    /// Bumped when lines are appended (followers wait on it).
    log_seq: watch::Sender<u64>,
    attachers: Mutex<Vec<Attacher>>,
    stdin: Mutex<Option<mpsc::Sender<StdinMsg>>>,
    state: watch::Sender<RunState>,
    /// The container declared `stdin: true`.
    pub stdin_enabled: bool,
    /// The container declared `stdinOnce: true`.
    pub stdin_once: bool,
}

impl ContainerIo {
    fn new(c: &Container) -> ContainerIo {
        ContainerIo {
            log: Mutex::default(),
            log_seq: watch::channel(0).0,
            attachers: Mutex::default(),
            stdin: Mutex::default(),
            state: watch::channel(RunState::Waiting).0,
            stdin_enabled: c.stdin == Some(true),
            stdin_once: c.stdin_once == Some(true),
        }
    }

    /// The lines kept, the last `tail` of them when given.
    pub fn lines(&self, tail: Option<usize>) -> Vec<LogLine> {
        let log = self.log.lock().expect("log");
        let skip = tail.map_or(0, |t| log.lines.len().saturating_sub(t));
        log.lines.iter().skip(skip).cloned().collect()
    }

    /// Lines from position `seq` on (those rotated out are skipped).
    pub fn lines_since(&self, seq: u64) -> Vec<LogLine> {
        let log = self.log.lock().expect("log");
        log.lines.iter().filter(|l| l.seq >= seq).cloned().collect()
    }

    /// The position the next line will get.
    pub fn next_seq(&self) -> u64 {
        self.log.lock().expect("log").next_seq
    }

    pub fn log_changes(&self) -> watch::Receiver<u64> {
        self.log_seq.subscribe()
    }

    pub fn state(&self) -> watch::Receiver<RunState> {
        self.state.subscribe()
    }

    /// Output from now on, on channels 1 (stdout) and 2 (stderr). The
    /// process blocks on a full pipe while an attacher does not read, as
    /// with a real runtime's attach.
    pub fn attach(&self, stdout: bool, stderr: bool) -> mpsc::Receiver<(u8, Bytes)> {
        let (tx, rx) = mpsc::channel(64);
        self.attachers
            .lock()
            .expect("attachers")
            .push((tx, stdout, stderr));
        rx
    }

    /// Writes to the running process's stdin; false when it has none.
    pub async fn write_stdin(&self, data: Bytes) -> bool {
        let tx = self.stdin.lock().expect("stdin").clone();
        match tx {
            Some(tx) => tx.send(StdinMsg::Data(data)).await.is_ok(),
            None => false,
        }
    }

    /// Closes the running process's stdin (EOF).
    pub async fn close_stdin(&self) {
        let tx = self.stdin.lock().expect("stdin").take();
        if let Some(tx) = tx {
            let _ = tx.send(StdinMsg::Close).await;
        }
    }

    async fn output(&self, channel: u8, data: Bytes) {
        let subs: Vec<Attacher> = self.attachers.lock().expect("attachers").clone();
        for (tx, out, err) in &subs {
            if (channel == STDOUT && *out) || (channel == STDERR && *err) {
                let _ = tx.send((channel, data.clone())).await;
            }
        }
        let mut log = self.log.lock().expect("log");
        log.append(usize::from(channel == STDERR), &data);
        let seq = log.next_seq;
        drop(log);
        self.log_seq.send_replace(seq);
        self.attachers
            .lock()
            .expect("attachers")
            .retain(|(tx, _, _)| !tx.is_closed());
    }

    fn flush(&self) {
        let mut log = self.log.lock().expect("log");
        log.flush(0);
        log.flush(1);
        let seq = log.next_seq;
        drop(log);
        self.log_seq.send_replace(seq);
    }
}

/// Every process container of the sandbox, by (Pod uid, container name).
#[derive(Clone, Default)]
pub struct ProcessTable(Arc<Mutex<Containers>>);

/// (Pod uid, container name) → its process's I/O.
type Containers = HashMap<(String, String), Arc<ContainerIo>>;

impl ProcessTable {
    pub fn get(&self, pod_uid: &str, container: &str) -> Option<Arc<ContainerIo>> {
        self.0
            .lock()
            .expect("table")
            .get(&(pod_uid.to_string(), container.to_string()))
            .cloned()
    }

    fn insert(&self, pod_uid: &str, container: &str, io: Arc<ContainerIo>) {
        self.0
            .lock()
            .expect("table")
            .insert((pod_uid.to_string(), container.to_string()), io);
    }

    fn remove_pod(&self, pod_uid: &str) {
        self.0
            .lock()
            .expect("table")
            .retain(|(uid, _), _| uid != pod_uid);
    }
}

/// Kubernetes' `$(VAR)` expansion (`third_party/forked/golang/expansion`):
/// `$(NAME)` is NAME's value when `lookup` knows it, else left as written;
/// `$$` is a literal `$`; any other `$` stays.
pub fn expand(s: &str, lookup: &dyn Fn(&str) -> Option<String>) -> String {
    let b = s.as_bytes();
    let mut out = String::with_capacity(s.len());
    let mut i = 0;
    let mut last = 0;
    while i < b.len() {
        if b[i] != b'$' || i + 1 >= b.len() {
            i += 1;
            continue;
        }
        out.push_str(&s[last..i]);
        match b[i + 1] {
            b'$' => {
                out.push('$');
                i += 2;
            }
            b'(' => match s[i + 2..].find(')') {
                Some(end) => {
                    let name = &s[i + 2..i + 2 + end];
                    match lookup(name) {
                        Some(v) => out.push_str(&v),
                        None => out.push_str(&s[i..i + 3 + end]),
                    }
                    i += 3 + end;
                }
                None => {
                    out.push_str(&s[i..]);
                    i = b.len();
                }
            },
            _ => {
                out.push('$');
                i += 1;
            }
        }
        last = i;
    }
    if last < b.len() {
        out.push_str(&s[last..]);
    }
    out
}

/// `metadata.annotations['k']` → `("annotations", "k")`.
fn map_field(path: &str) -> Option<(&str, &str)> {
    let rest = path.strip_prefix("metadata.")?;
    let (map, key) = rest.split_once("['")?;
    Some((map, key.strip_suffix("']")?))
}

/// The value of a downward-API `fieldRef`.
fn field_value(pod: &Pod, ip: Ipv4Addr, path: &str) -> Option<String> {
    let m = &pod.metadata;
    Some(match path {
        "metadata.name" => m.name.clone()?,
        "metadata.namespace" => m.namespace.clone()?,
        "metadata.uid" => m.uid.clone()?,
        "spec.nodeName" => pod.spec.as_ref()?.node_name.clone()?,
        "spec.serviceAccountName" => pod
            .spec
            .as_ref()?
            .service_account_name
            .clone()
            .unwrap_or_else(|| "default".into()),
        "status.podIP" => ip.to_string(),
        "status.hostIP" => "127.0.0.1".into(),
        p => {
            let (map, key) = map_field(p)?;
            let map = match map {
                "labels" => m.labels.as_ref()?,
                "annotations" => m.annotations.as_ref()?,
                _ => return None,
            };
            map.get(key)?.clone()
        }
    })
}

/// The container's environment, in order, expanded as Kubernetes does
/// (each value may refer to those before it).
pub fn container_env(pod: &Pod, c: &Container, ip: Ipv4Addr) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    for e in c.env.iter().flatten() {
        let value = if let Some(v) = &e.value {
            let known = out.clone();
            expand(v, &|n| {
                known
                    .iter()
                    .rev()
                    .find(|(k, _)| k == n)
                    .map(|(_, v)| v.clone())
            })
        } else if let Some(f) = e.value_from.as_ref().and_then(|v| v.field_ref.as_ref()) {
            match field_value(pod, ip, &f.field_path) {
                Some(v) => v,
                None => {
                    tracing::warn!(env = %e.name, path = %f.field_path, "fieldRef the sandbox cannot resolve; empty");
                    String::new()
                }
            }
        } else if e.value_from.is_some() {
            tracing::warn!(env = %e.name, "env from a Secret, ConfigMap or resource: the sandbox has none; skipped");
            continue;
        } else {
            String::new()
        };
        out.retain(|(k, _)| *k != e.name);
        out.push((e.name.clone(), value));
    }
    out
}

/// The executable and its arguments (after expansion).
pub fn argv(c: &Container, program: &Path, env: &[(String, String)]) -> (String, Vec<String>) {
    let lookup = |n: &str| {
        env.iter()
            .rev()
            .find(|(k, _)| k == n)
            .map(|(_, v)| v.clone())
    };
    let x = |s: &String| expand(s, &lookup);
    let command: Vec<String> = c.command.iter().flatten().map(x).collect();
    let args = c.args.iter().flatten().map(x);
    let own_name = program.file_name().and_then(|n| n.to_str());
    match command.split_first() {
        Some((exe, rest)) => {
            let exe = if Some(exe.as_str()) == own_name {
                program.display().to_string()
            } else {
                exe.clone()
            };
            (exe, rest.iter().cloned().chain(args).collect())
        }
        None => (program.display().to_string(), args.collect()),
    }
}

struct Ctr {
    spec: Container,
    program: std::path::PathBuf,
    io: Arc<ContainerIo>,
    state: CState,
    last_state: Option<ContainerState>,
    restarts: i32,
    /// The running process's group id.
    pgid: Option<i32>,
    restart_at: Option<Instant>,
    /// How many times it was started (for container ids).
    runs: u32,
}

struct Worker {
    sh: Arc<Shared>,
    watch: PodWatch,
    ns: String,
    name: String,
    uid: String,
    ip: Ipv4Addr,
    node: String,
    rec: crate::events::Recorder,
    scheduled_at: Timestamp,
    ctrs: Vec<Ctr>,
    ready: bool,
    ready_changed: Timestamp,
    final_phase: Option<&'static str>,
    exits_tx: mpsc::UnboundedSender<(usize, i32)>,
    exits_rx: mpsc::UnboundedReceiver<(usize, i32)>,
}

/// Runs one process Pod until it is removed or the sandbox stops.
pub(super) async fn run(
    sh: Arc<Shared>,
    pod: Pod,
    ip: Ipv4Addr,
    rx: watch::Receiver<Option<Pod>>,
    shutdown: tokio_util::sync::CancellationToken,
) {
    let spec = pod.spec.clone().unwrap_or_default();
    let node = spec
        .node_name
        .clone()
        .unwrap_or_else(|| crate::node::NODE_NAME.into());
    let uid = pod.metadata.uid.clone().unwrap_or_default();
    let ctrs = spec
        .containers
        .iter()
        .map(|c| {
            let io = Arc::new(ContainerIo::new(c));
            sh.processes.insert(&uid, &c.name, io.clone());
            let program = program_for(
                &sh.cfg.process_images,
                c.image.as_deref().unwrap_or_default(),
            )
            .map(|p| p.program.clone())
            .unwrap_or_default();
            Ctr {
                spec: c.clone(),
                program,
                io,
                state: CState::Waiting {
                    reason: "ContainerCreating".into(),
                    message: None,
                },
                last_state: None,
                restarts: 0,
                pgid: None,
                restart_at: None,
                runs: 0,
            }
        })
        .collect();
    let (exits_tx, exits_rx) = mpsc::unbounded_channel();
    let now = crate::node::now();
    let mut w = Worker {
        ns: pod
            .metadata
            .namespace
            .clone()
            .unwrap_or_else(|| "default".into()),
        name: pod.metadata.name.clone().unwrap_or_default(),
        uid: uid.clone(),
        ip,
        rec: sh.rec.on_node(&node),
        node,
        sh: sh.clone(),
        watch: PodWatch { rx, pod, shutdown },
        scheduled_at: now,
        ctrs,
        ready: false,
        ready_changed: now,
        final_phase: None,
        exits_tx,
        exits_rx,
    };
    let stop = w.lifecycle().await;
    tracing::debug!(pod = %w.name, ?stop, "process pod worker stopping");
    match stop {
        Stop::Deleted => w.terminate().await,
        Stop::Gone | Stop::Shutdown => w.kill_all().await,
    }
    sh.processes.remove_pod(&uid);
}

fn exit_code(st: std::process::ExitStatus) -> i32 {
    use std::os::unix::process::ExitStatusExt;
    st.code()
        .or_else(|| st.signal().map(|s| 128 + s))
        .unwrap_or(-1)
}

fn signal_group(pgid: i32, sig: nix::sys::signal::Signal) {
    // The group may be gone already (ESRCH): nothing to do then.
    let _ = nix::sys::signal::killpg(nix::unistd::Pid::from_raw(pgid), sig);
}

async fn pump(io: Arc<ContainerIo>, channel: u8, mut r: impl AsyncRead + Unpin) {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        match r.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => io.output(channel, Bytes::copy_from_slice(&buf[..n])).await,
        }
    }
}

impl Worker {
    fn event(&self, ty: EventType, reason: &'static str, msg: String) {
        self.rec.record(&self.watch.pod, ty, reason, msg);
    }

    fn restart_policy(&self) -> String {
        self.watch
            .pod
            .spec
            .as_ref()
            .and_then(|s| s.restart_policy.clone())
            .unwrap_or_else(|| "Always".into())
    }

    fn backoff(&self, n: i32) -> Duration {
        let base = self.sh.cfg.backoff_base;
        let f = 2u32.saturating_pow((n.max(1) - 1).min(20) as u32);
        base.saturating_mul(f).min(self.sh.cfg.backoff_max)
    }

    fn container_id(&self, c: &Ctr) -> String {
        format!(
            "sandbox-process://{}-{}-{}",
            self.uid.split('-').next().unwrap_or_default(),
            c.spec.name,
            c.runs
        )
    }

    fn status(&self) -> PodStatus {
        let t = |ts: Timestamp| Some(Time(ts));
        let cond = |ty: &str, ok: bool, at: Timestamp| PodCondition {
            type_: ty.into(),
            status: if ok { "True" } else { "False" }.into(),
            last_transition_time: t(at),
            reason: (!ok).then(|| "ContainersNotReady".to_string()),
            ..Default::default()
        };
        let statuses = self
            .ctrs
            .iter()
            .map(|c| {
                let state = c.state.to_k8s(self.container_id(c));
                let running = matches!(c.state, CState::Running { .. });
                let image = c.spec.image.clone().unwrap_or_default();
                ContainerStatus {
                    name: c.spec.name.clone(),
                    image_id: if c.runs > 0 {
                        format!("sandbox.baton.dev/process/{image}")
                    } else {
                        String::new()
                    },
                    image,
                    container_id: (c.runs > 0).then(|| self.container_id(c)),
                    ready: running && self.ready,
                    restart_count: c.restarts,
                    started: Some(running),
                    state: Some(state),
                    last_state: c.last_state.clone(),
                    ..Default::default()
                }
            })
            .collect();
        let started = self.ctrs.iter().any(|c| c.runs > 0);
        let phase = self
            .final_phase
            .unwrap_or(if started { "Running" } else { "Pending" });
        PodStatus {
            phase: Some(phase.into()),
            conditions: Some(vec![
                cond("PodReadyToStartContainers", true, self.scheduled_at),
                cond("Initialized", true, self.scheduled_at),
                cond("Ready", self.ready, self.ready_changed),
                cond("ContainersReady", self.ready, self.ready_changed),
                cond("PodScheduled", true, self.scheduled_at),
            ]),
            container_statuses: Some(statuses),
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

    fn set_ready(&mut self, ready: bool) {
        if self.ready != ready {
            self.ready = ready;
            self.ready_changed = crate::node::now();
        }
    }

    /// Starts container `i` as a child process.
    fn start(&mut self, i: usize) {
        let pod = self.watch.pod.clone();
        let c = &self.ctrs[i];
        let mut env = container_env(&pod, &c.spec, self.ip);
        let hostname = pod
            .spec
            .as_ref()
            .and_then(|s| s.hostname.clone())
            .or_else(|| pod.metadata.name.clone())
            .unwrap_or_default();
        if !env.iter().any(|(k, _)| k == "HOSTNAME") {
            env.insert(0, ("HOSTNAME".into(), hostname));
        }
        if !env.iter().any(|(k, _)| k == "PATH")
            && let Ok(path) = std::env::var("PATH")
        {
            env.insert(0, ("PATH".into(), path));
        }
        let (exe, args) = argv(&c.spec, &c.program, &env);
        let mut cmd = tokio::process::Command::new(&exe);
        cmd.args(&args)
            .env_clear()
            .envs(env)
            .process_group(0)
            .kill_on_drop(true)
            .stdin(if c.io.stdin_enabled {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        if let Some(dir) = c
            .spec
            .working_dir
            .as_deref()
            .filter(|d| Path::new(d).is_dir())
        {
            cmd.current_dir(dir);
        }
        let name = c.spec.name.clone();
        let now = crate::node::now();
        let c = &mut self.ctrs[i];
        c.runs += 1;
        match cmd.spawn() {
            Err(e) => {
                let msg = format!("failed to start {exe:?}: {e}");
                tracing::warn!(pod = %self.name, container = %name, %msg, "process did not start");
                c.state = CState::Terminated {
                    exit_code: 128,
                    reason: "StartError".into(),
                    message: Some(msg.clone()),
                    started_at: None,
                    finished_at: now,
                };
                let _ = self.exits_tx.send((i, 128));
                self.event(EventType::Warning, "Failed", format!("Error: {msg}"));
            }
            Ok(mut child) => {
                let pid = child.id().and_then(|p| i32::try_from(p).ok());
                c.pgid = pid;
                c.state = CState::Running { started_at: now };
                let io = c.io.clone();
                io.state.send_replace(RunState::Running);
                let mut pumps = Vec::new();
                if let Some(out) = child.stdout.take() {
                    pumps.push(tokio::spawn(pump(io.clone(), STDOUT, out)));
                }
                if let Some(err) = child.stderr.take() {
                    pumps.push(tokio::spawn(pump(io.clone(), STDERR, err)));
                }
                if let Some(mut stdin) = child.stdin.take() {
                    let (tx, mut rx) = mpsc::channel::<StdinMsg>(64);
                    *io.stdin.lock().expect("stdin") = Some(tx);
                    tokio::spawn(async move {
                        while let Some(StdinMsg::Data(b)) = rx.recv().await {
                            if stdin.write_all(&b).await.is_err() || stdin.flush().await.is_err() {
                                break;
                            }
                        }
                    });
                }
                let exits = self.exits_tx.clone();
                tokio::spawn(async move {
                    let code = child.wait().await.map(exit_code).unwrap_or(-1);
                    // Output first, then the exit: attachers see it all.
                    for p in pumps {
                        let _ = tokio::time::timeout(Duration::from_secs(2), p).await;
                    }
                    io.flush();
                    *io.stdin.lock().expect("stdin") = None;
                    io.state.send_replace(RunState::Exited(code));
                    let _ = exits.send((i, code));
                });
                tracing::info!(pod = %self.name, container = %name, ?pid, %exe, "process started");
                self.event(
                    EventType::Normal,
                    "Created",
                    format!("Created container: {name}"),
                );
                self.event(
                    EventType::Normal,
                    "Started",
                    format!("Started container {name}"),
                );
            }
        }
    }

    /// Records container `i`'s exit; whether it will restart.
    fn exited(&mut self, i: usize, code: i32) -> bool {
        let now = crate::node::now();
        let policy = self.restart_policy();
        let c = &mut self.ctrs[i];
        c.pgid = None;
        let started_at = match c.state {
            CState::Running { started_at } => Some(started_at),
            CState::Terminated { started_at, .. } => started_at,
            _ => None,
        };
        let reason = match &c.state {
            CState::Terminated { reason, .. } => reason.clone(),
            _ if code == 0 => "Completed".into(),
            _ => "Error".into(),
        };
        let message = match &c.state {
            CState::Terminated { message, .. } => message.clone(),
            _ => None,
        };
        c.state = CState::Terminated {
            exit_code: code,
            reason,
            message,
            started_at,
            finished_at: now,
        };
        let restart = match policy.as_str() {
            "Never" => false,
            "OnFailure" => code != 0,
            _ => true,
        };
        tracing::info!(pod = %self.name, container = %c.spec.name, code, restart, "process exited");
        if restart {
            c.restarts += 1;
            let n = c.restarts;
            let last = self.status_of(i);
            let delay = self.backoff(n);
            let c = &mut self.ctrs[i];
            c.last_state = Some(ContainerState {
                terminated: last,
                ..Default::default()
            });
            c.restart_at = Some(Instant::now() + delay);
            c.state = CState::Waiting {
                reason: "CrashLoopBackOff".into(),
                message: Some(format!(
                    "back-off {}s restarting failed container={} pod={}_{}({})",
                    delay.as_secs(),
                    c.spec.name,
                    self.name,
                    self.ns,
                    self.uid
                )),
            };
            let name = c.spec.name.clone();
            self.event(
                EventType::Warning,
                "BackOff",
                format!(
                    "Back-off restarting failed container {name} in pod {}_{}({})",
                    self.name, self.ns, self.uid
                ),
            );
        }
        restart
    }

    fn status_of(&self, i: usize) -> Option<ContainerStateTerminated> {
        let c = &self.ctrs[i];
        c.state.to_k8s(self.container_id(c)).terminated
    }

    fn all_running(&self) -> bool {
        self.ctrs
            .iter()
            .all(|c| matches!(c.state, CState::Running { .. }))
    }

    /// The first container's httpGet / tcpSocket readiness probe on the
    /// Pod IP, with its period, timeout and failure threshold.
    fn probe(&self) -> Option<(Check, Duration, Duration, Duration, i32)> {
        let c = self.watch.pod.spec.as_ref()?.containers.first()?;
        let p = c.readiness_probe.as_ref()?;
        let port = |v: &IntOrString| -> u16 {
            match v {
                IntOrString::Int(i) => u16::try_from(*i).unwrap_or(80),
                IntOrString::String(name) => c
                    .ports
                    .iter()
                    .flatten()
                    .find(|cp| cp.name.as_deref() == Some(name.as_str()))
                    .and_then(|cp| u16::try_from(cp.container_port).ok())
                    .unwrap_or(80),
            }
        };
        let check = if let Some(h) = &p.http_get {
            Check::HttpGet {
                addr: SocketAddr::new(self.ip.into(), port(&h.port)),
                path: h.path.clone().unwrap_or_else(|| "/".into()),
            }
        } else if let Some(t) = &p.tcp_socket {
            Check::TcpSocket {
                addr: SocketAddr::new(self.ip.into(), port(&t.port)),
            }
        } else {
            return None;
        };
        let secs = |s: Option<i32>, d: i32| Duration::from_secs(s.unwrap_or(d).max(0) as u64);
        Some((
            check,
            secs(p.initial_delay_seconds, 0),
            secs(p.period_seconds, 10).max(Duration::from_millis(100)),
            secs(p.timeout_seconds, 1).max(Duration::from_millis(100)),
            p.failure_threshold.unwrap_or(3).max(1),
        ))
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
        for i in 0..self.ctrs.len() {
            let image = self.ctrs[i].spec.image.clone().unwrap_or_default();
            self.event(
                EventType::Normal,
                "Pulled",
                format!("Container image \"{image}\" already present on machine (a process of the sandbox)"),
            );
            self.start(i);
        }
        let probe = self.probe();
        let mut next_probe = probe.as_ref().map(|p| Instant::now() + p.1);
        let mut probe_ok = probe.is_none();
        let mut failures = 0;
        loop {
            let ready = self.all_running() && probe_ok;
            self.set_ready(ready);
            let finished = self
                .ctrs
                .iter()
                .all(|c| matches!(c.state, CState::Terminated { .. }) && c.restart_at.is_none());
            if finished && self.final_phase.is_none() {
                let ok = self
                    .ctrs
                    .iter()
                    .all(|c| matches!(c.state, CState::Terminated { exit_code: 0, .. }));
                self.final_phase = Some(if ok { "Succeeded" } else { "Failed" });
                self.set_ready(false);
            }
            if let Err(s) = self.publish() {
                return s;
            }
            if self.final_phase.is_some() {
                // Done: the Pod stays until it is deleted.
                return self.watch.interrupted().await;
            }
            let restart_at = self.ctrs.iter().filter_map(|c| c.restart_at).min();
            let wake = [restart_at, next_probe.filter(|_| self.all_running())]
                .into_iter()
                .flatten()
                .min()
                .unwrap_or_else(|| Instant::now() + Duration::from_secs(3600));
            tokio::select! {
                s = self.watch.interrupted() => return s,
                Some((i, code)) = self.exits_rx.recv() => {
                    self.exited(i, code);
                }
                _ = tokio::time::sleep_until(wake) => {
                    let now = Instant::now();
                    for i in 0..self.ctrs.len() {
                        if self.ctrs[i].restart_at.is_some_and(|t| t <= now) {
                            self.ctrs[i].restart_at = None;
                            self.start(i);
                        }
                    }
                    if let (Some((check, _, period, timeout, threshold)), Some(at)) = (&probe, next_probe)
                        && at <= now && self.all_running()
                    {
                        match probe::run(check, *timeout).await {
                            Ok(()) => { probe_ok = true; failures = 0; }
                            Err(msg) => {
                                failures += 1;
                                self.event(EventType::Warning, "Unhealthy", format!("Readiness probe failed: {msg}"));
                                if failures >= *threshold { probe_ok = false; }
                            }
                        }
                        next_probe = Some(Instant::now() + *period);
                    }
                }
            }
        }
    }

    fn running_groups(&self) -> Vec<i32> {
        self.ctrs.iter().filter_map(|c| c.pgid).collect()
    }

    /// A container stopped for the Pod's deletion: no restart.
    fn stopped(&mut self, i: usize, code: i32) {
        let c = &mut self.ctrs[i];
        c.pgid = None;
        let started_at = match c.state {
            CState::Running { started_at } => Some(started_at),
            _ => None,
        };
        c.state = CState::Terminated {
            exit_code: code,
            reason: if code == 0 { "Completed" } else { "Error" }.into(),
            message: None,
            started_at,
            finished_at: crate::node::now(),
        };
    }

    /// Waits until no container runs, or `until`.
    async fn wait_exits(&mut self, until: Option<Instant>) -> bool {
        while !self.running_groups().is_empty() {
            let far = Instant::now() + Duration::from_secs(3600);
            tokio::select! {
                Some((i, code)) = self.exits_rx.recv() => self.stopped(i, code),
                _ = tokio::time::sleep_until(until.unwrap_or(far)) => return false,
            }
        }
        true
    }

    /// Graceful deletion: SIGTERM, the grace period, SIGKILL; then the
    /// terminal status and removal.
    async fn terminate(&mut self) {
        let pod = self.watch.pod.clone();
        let mut grace = pod
            .metadata
            .deletion_grace_period_seconds
            .or_else(|| {
                pod.spec
                    .as_ref()
                    .and_then(|s| s.termination_grace_period_seconds)
            })
            .unwrap_or(30)
            .max(0);
        let groups = self.running_groups();
        for c in &mut self.ctrs {
            c.restart_at = None;
        }
        if !groups.is_empty() {
            for c in self.ctrs.iter().filter(|c| c.pgid.is_some()) {
                self.event(
                    EventType::Normal,
                    "Killing",
                    format!("Stopping container {}", c.spec.name),
                );
            }
            tracing::info!(pod = %self.name, grace, "stopping process pod: SIGTERM");
            for g in &groups {
                signal_group(*g, nix::sys::signal::Signal::SIGTERM);
            }
            let mut deadline = Instant::now() + Duration::from_secs(grace as u64);
            enum Ev {
                Exit(usize, i32),
                Deadline,
                Grace(Result<i64, Stop>),
            }
            loop {
                if self.running_groups().is_empty() {
                    break;
                }
                let ev = tokio::select! {
                    Some((i, code)) = self.exits_rx.recv() => Ev::Exit(i, code),
                    _ = tokio::time::sleep_until(deadline) => Ev::Deadline,
                    r = self.watch.grace_shortened(grace) => Ev::Grace(r),
                };
                match ev {
                    Ev::Exit(i, code) => self.stopped(i, code),
                    Ev::Deadline => {
                        tracing::info!(pod = %self.name, "grace period over: SIGKILL");
                        for g in self.running_groups() {
                            signal_group(g, nix::sys::signal::Signal::SIGKILL);
                        }
                        self.wait_exits(None).await;
                        break;
                    }
                    Ev::Grace(Ok(g)) => {
                        grace = g;
                        deadline = deadline.min(Instant::now() + Duration::from_secs(g as u64));
                    }
                    Ev::Grace(Err(_)) => {
                        self.kill_all().await;
                        return;
                    }
                }
            }
        }
        self.set_ready(false);
        if self.final_phase.is_none() {
            let ok = self
                .ctrs
                .iter()
                .all(|c| matches!(c.state, CState::Terminated { exit_code: 0, .. }));
            self.final_phase = Some(if ok { "Succeeded" } else { "Failed" });
        }
        if self.publish().is_err() {
            return;
        }
        match self.sh.store.remove::<Pod>(&self.ns, &self.name) {
            Ok(_) | Err(StoreError::NotFound { .. }) => {
                tracing::info!(pod = %self.name, "pod removed")
            }
            Err(e) => tracing::warn!(pod = %self.name, error = %e, "cannot remove pod"),
        }
    }

    /// SIGKILL to every process group, and reap them.
    async fn kill_all(&mut self) {
        for g in self.running_groups() {
            signal_group(g, nix::sys::signal::Signal::SIGKILL);
        }
        self.wait_exits(Some(Instant::now() + Duration::from_secs(10)))
            .await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn expansion_follows_kubernetes() {
        let l = |n: &str| (n == "A").then(|| "x".to_string());
        assert_eq!(expand("$(A)-$(B)", &l), "x-$(B)");
        assert_eq!(expand("$$(A) $$ $", &l), "$(A) $ $");
        assert_eq!(expand("a$(A", &l), "a$(A");
        assert_eq!(expand("$Ab", &l), "$Ab");
    }

    #[test]
    fn command_replaces_the_entrypoint_and_args_follow() {
        let c: Container = serde_json::from_value(serde_json::json!({"name": "w", "image": "img",
            "args": ["worker", "--index=$(JOB_COMPLETION_INDEX)"]}))
        .unwrap();
        let e = env(&[("JOB_COMPLETION_INDEX", "2")]);
        let (exe, args) = argv(&c, Path::new("/usr/bin/baton"), &e);
        assert_eq!(exe, "/usr/bin/baton");
        assert_eq!(args, ["worker", "--index=2"]);
        let c: Container = serde_json::from_value(serde_json::json!({"name": "w", "image": "img",
            "command": ["baton", "worker"], "args": ["-v"]}))
        .unwrap();
        assert_eq!(
            argv(&c, Path::new("/usr/bin/baton"), &e),
            (
                "/usr/bin/baton".to_string(),
                vec!["worker".to_string(), "-v".to_string()]
            )
        );
    }

    #[test]
    fn env_resolves_values_and_field_refs_in_order() {
        let pod: Pod = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "load-0-abcde", "namespace": "default",
                "annotations": {"batch.kubernetes.io/job-completion-index": "0"}},
            "spec": {"containers": [{"name": "w", "image": "img", "env": [
                {"name": "I", "valueFrom": {"fieldRef": {"fieldPath": "metadata.annotations['batch.kubernetes.io/job-completion-index']"}}},
                {"name": "ME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
                {"name": "IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
                {"name": "WHO", "value": "$(ME)@$(IP)"},
                {"name": "S", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}}
            ]}]}
        }))
        .unwrap();
        let c = &pod.spec.as_ref().unwrap().containers[0];
        let e = container_env(&pod, c, Ipv4Addr::new(127, 10, 0, 5));
        assert_eq!(
            e,
            env(&[
                ("I", "0"),
                ("ME", "load-0-abcde"),
                ("IP", "127.10.0.5"),
                ("WHO", "load-0-abcde@127.10.0.5")
            ])
        );
    }

    #[test]
    fn the_log_keeps_lines_and_drops_the_oldest_past_the_limit() {
        let mut r = LogRing::default();
        r.append(0, b"a\nb");
        r.append(1, b"err\n");
        r.append(0, b"c\n");
        let lines: Vec<&[u8]> = r.lines.iter().map(|l| l.text.as_ref()).collect();
        assert_eq!(lines, [&b"a\n"[..], b"err\n", b"bc\n"]);
        let big = vec![b'x'; LOG_LIMIT / 8];
        for _ in 0..9 {
            let mut l = big.clone();
            l.push(b'\n');
            r.append(0, &l);
        }
        assert!(r.bytes <= LOG_LIMIT);
        // Seven of the big lines fit: the three small ones and two big ones went.
        assert_eq!(r.lines.front().unwrap().seq, 5);
    }

    #[test]
    fn only_pods_whose_every_image_matches_run_as_processes() {
        let images = vec![ProcessImage {
            image_prefix: "ghcr.io/baton-rollout/baton".into(),
            program: "/bin/true".into(),
        }];
        let pod = |imgs: &[&str]| -> Pod {
            serde_json::from_value(serde_json::json!({"spec": {"containers":
                imgs.iter().enumerate().map(|(i, im)| serde_json::json!({"name": format!("c{i}"), "image": im})).collect::<Vec<_>>()}}))
            .unwrap()
        };
        assert!(is_process_pod(
            &images,
            &pod(&["ghcr.io/baton-rollout/baton:0.3"])
        ));
        assert!(!is_process_pod(
            &images,
            &pod(&["ghcr.io/baton-rollout/baton:0.3", "nginx"])
        ));
        assert!(!is_process_pod(&[], &pod(&["ghcr.io/baton-rollout/baton"])));
    }
}
