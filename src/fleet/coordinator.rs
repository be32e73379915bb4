//! The coordinator: baton on the CI runner driving its in-cluster load
//! workers through the Kubernetes API only. It creates the run's Indexed
//! Job ([`super::job`]), waits for its Pods to run, attaches to each
//! one's stdin and stdout (`pods/attach`), says hello, measures each
//! worker's clock against its own ([`super::clock`]), announces one start
//! instant, and then takes every record as it streams in: onto the run's
//! clock, into `requests.csv` with the worker's number, counted and
//! checked against what the worker says it sent ([`super::wire::Tally`]).
//! A worker that dies keeps what it sent; what it did not send, or what
//! did not arrive intact, is named in its [`WorkerRecord`] and makes the
//! run invalid.
//!
//! [`remove`] deletes the Job and its Pods and waits for them to go: the
//! run calls it on every path (done, failed, Ctrl-C).
//!
//! Not for: what a worker does ([`super::worker`]), or judging the run.

use super::clock::{self, Offset, Sample};
use super::job::{self, JobParams};
use super::wire::{FromWorker, Tally, ToWorker};
use crate::clock::RunClock;
use crate::load::stats::{LiveCounters, Stats};
use crate::load::{LoadRun, plan::StatusNote, sink::RecordSink, status::StatusLine};
use crate::rundir::run_json::WorkerRecord;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use kube::api::{AttachParams, DeleteParams, ListParams, PostParams, PropagationPolicy};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// How long the workers may take to be scheduled, pulled and running.
pub const RUNNING_WAIT: Duration = Duration::from_secs(180);
/// How long a worker may take to answer a hello or a ping.
const ANSWER_WAIT: Duration = Duration::from_secs(30);
/// Clock samples per worker (the one with the shortest trip is kept).
const CLOCK_SAMPLES: usize = 8;
/// The start instant is at least this far ahead of its announcement.
const MIN_LEAD: Duration = Duration::from_millis(500);
/// After STOP, how long beyond the request timeout a worker may take to
/// send its last records and its END.
const END_SLACK: Duration = Duration::from_secs(15);
/// How often the Pods are listed while waiting for them.
const POLL: Duration = Duration::from_millis(250);
/// Container waiting reasons that will not resolve by waiting.
const HOPELESS: [&str; 6] = [
    "ErrImagePull",
    "ImagePullBackOff",
    "InvalidImageName",
    "CreateContainerConfigError",
    "CreateContainerError",
    "RunContainerError",
];

#[derive(Debug, thiserror::Error)]
pub enum FleetError {
    /// What the profile asked for cannot run (exit 2): the image, the
    /// Job refused.
    #[error("{0}")]
    Input(String),
    /// The cluster did not run or let baton reach the workers (exit 3).
    #[error("{0}")]
    Unavailable(String),
}

fn unix_ns() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as i64)
}

/// What the reader of one worker's stdout hands over.
enum Incoming {
    /// A frame, with when it arrived (unix ns).
    Frame(FromWorker, i64),
    /// A line that is not a frame (the worker printed something else).
    Garbled(String),
    /// The stream ended (the Pod ended, the attach broke): why, if known.
    Closed(Option<String>),
}

/// One attached worker.
struct Attached {
    index: u32,
    pod: String,
    node: Option<String>,
    to: mpsc::UnboundedSender<ToWorker>,
    offset: Offset,
}

/// The workers, running and attached, their clocks measured: ready to
/// start.
pub struct Fleet {
    client: kube::Client,
    params: JobParams,
    workers: Vec<Attached>,
    frames: mpsc::UnboundedReceiver<(u32, Incoming)>,
}

impl Fleet {
    /// Create the Job, wait for every worker to run, attach, say hello and
    /// measure clocks. On error the Job may exist: [`remove`] it.
    pub async fn launch(
        client: kube::Client,
        params: JobParams,
        quiet: bool,
        cancel: &CancellationToken,
    ) -> Result<Fleet, FleetError> {
        let ns = &params.namespace;
        let jobs: Api<Job> = Api::namespaced(client.clone(), ns);
        let manifest = job::manifest(&params)
            .map_err(|e| FleetError::Input(format!("the workers' Job: {e}")))?;
        jobs.create(&PostParams::default(), &manifest)
            .await
            .map_err(|e| match &e {
                kube::Error::Api(s) if s.code == 422 || s.code == 400 => {
                    FleetError::Input(format!(
                        "the API refused the workers' Job {}: {}",
                        params.name(),
                        s.message
                    ))
                }
                _ => FleetError::Unavailable(format!(
                    "creating the workers' Job {}: {e}",
                    params.name()
                )),
            })?;
        let want = params.plan.workers as usize;
        if !quiet {
            eprintln!(
                "baton: starting {want} load worker{} in namespace {ns} (job {}, image {})",
                if want == 1 { "" } else { "s" },
                params.name(),
                params.image
            );
        }
        let pods = running_pods(&client, &params, cancel).await?;
        let (tx, frames) = mpsc::unbounded_channel();
        let mut workers = Vec::new();
        for (index, (pod, node)) in pods {
            let to = attach(&client, ns, &pod, index, tx.clone()).await?;
            workers.push(Attached {
                index,
                pod,
                node,
                to,
                offset: Offset {
                    offset_ns: 0,
                    error_ns: 0,
                    samples: 0,
                },
            });
        }
        drop(tx);
        let mut fleet = Fleet {
            client,
            params,
            workers,
            frames,
        };
        fleet.hello().await?;
        fleet.clocks().await?;
        if !quiet {
            let worst = fleet
                .workers
                .iter()
                .map(|w| w.offset.error_ns)
                .max()
                .unwrap_or(0);
            eprintln!(
                "baton: {want} worker{} attached; clocks aligned to within {:.1} ms",
                if want == 1 { "" } else { "s" },
                worst as f64 / 1e6
            );
        }
        Ok(fleet)
    }

    fn worker(&self, index: u32) -> Option<&Attached> {
        self.workers.iter().find(|w| w.index == index)
    }

    fn name_of(&self, index: u32) -> String {
        self.worker(index).map_or(format!("worker {index}"), |w| {
            format!("worker {index} (pod {})", w.pod)
        })
    }

    /// The next frame from `index`, within `ANSWER_WAIT`; frames from
    /// others are an error at this stage (they only answer).
    async fn answer(&mut self, what: &str) -> Result<(u32, FromWorker, i64), FleetError> {
        let got = tokio::time::timeout(ANSWER_WAIT, self.frames.recv())
            .await
            .map_err(|_| {
                FleetError::Unavailable(format!(
                    "a load worker did not answer the {what} within {}",
                    humantime::format_duration(ANSWER_WAIT)
                ))
            })?;
        match got {
            Some((i, Incoming::Frame(FromWorker::Fail(m), _))) => Err(FleetError::Unavailable(
                format!("{} failed: {m}", self.name_of(i)),
            )),
            Some((i, Incoming::Frame(f, t3))) => Ok((i, f, t3)),
            Some((i, Incoming::Garbled(l))) => Err(FleetError::Unavailable(format!(
                "{} is not a baton worker of this version (it printed {l:?}): check load.image",
                self.name_of(i)
            ))),
            Some((i, Incoming::Closed(why))) => Err(FleetError::Unavailable(format!(
                "{} ended before the load started{}",
                self.name_of(i),
                why.map(|w| format!(": {w}")).unwrap_or_default()
            ))),
            None => Err(FleetError::Unavailable(
                "every worker's stream closed".into(),
            )),
        }
    }

    async fn hello(&mut self) -> Result<(), FleetError> {
        for w in &self.workers {
            let _ = w.to.send(ToWorker::Hello);
        }
        let ours = env!("CARGO_PKG_VERSION");
        for _ in 0..self.workers.len() {
            let (i, f, _) = self.answer("hello").await?;
            match f {
                FromWorker::Hello {
                    worker, version, ..
                } if worker == i && version == ours => {}
                FromWorker::Hello { version, .. } if version != ours => {
                    return Err(FleetError::Input(format!(
                        "{} runs baton {version}, this is baton {ours}: the worker image must be the same version (load.image: {})",
                        self.name_of(i),
                        self.params.image
                    )));
                }
                other => {
                    return Err(FleetError::Unavailable(format!(
                        "{} answered the hello with {other:?}",
                        self.name_of(i)
                    )));
                }
            }
        }
        Ok(())
    }

    async fn clocks(&mut self) -> Result<(), FleetError> {
        let mut samples: BTreeMap<u32, Vec<Sample>> = BTreeMap::new();
        for _ in 0..CLOCK_SAMPLES {
            // Every worker pinged at once, each answer stamped as it comes.
            for w in &self.workers {
                let _ = w.to.send(ToWorker::Ping { t0: unix_ns() });
            }
            for _ in 0..self.workers.len() {
                let (i, f, t3) = self.answer("clock ping").await?;
                let FromWorker::Pong { t0, t1, t2 } = f else {
                    return Err(FleetError::Unavailable(format!(
                        "{} answered a ping with {f:?}",
                        self.name_of(i)
                    )));
                };
                samples
                    .entry(i)
                    .or_default()
                    .push(Sample { t0, t1, t2, t3 });
            }
        }
        for w in &mut self.workers {
            w.offset = samples
                .get(&w.index)
                .and_then(|s| clock::estimate(s))
                .ok_or_else(|| {
                    FleetError::Unavailable(format!(
                        "worker {} (pod {}): no usable clock sample (its clock stepped during every ping)",
                        w.index, w.pod
                    ))
                })?;
        }
        Ok(())
    }

    /// The largest clock error bound among the workers.
    pub fn clock_error(&self) -> Duration {
        Duration::from_nanos(
            self.workers
                .iter()
                .map(|w| w.offset.error_ns)
                .max()
                .unwrap_or(0),
        )
    }

    /// Announce the start instant and take the records until `stop`, then
    /// every worker's end. Returns at once with the run-clock instant the
    /// load starts at; the handle gives the load's result.
    pub fn start(
        self,
        clock: RunClock,
        out_dir: &Path,
        stop: CancellationToken,
        note: StatusNote,
        quiet: bool,
    ) -> Result<(u64, tokio::task::JoinHandle<Result<FleetRun, FleetError>>), FleetError> {
        let requests_csv = out_dir.join(crate::rundir::REQUESTS_CSV);
        let (records, sink) = RecordSink::create(&requests_csv).map_err(|e| {
            FleetError::Unavailable(format!("cannot write {}: {e}", requests_csv.display()))
        })?;
        let worst_trip = self
            .workers
            .iter()
            .map(|w| Duration::from_nanos(w.offset.error_ns * 2))
            .max()
            .unwrap_or_default();
        let lead = (worst_trip * 20).clamp(MIN_LEAD, Duration::from_secs(5));
        let (now_run, now_unix) = (clock.now_ns(), unix_ns());
        let start_ns = now_run + lead.as_nanos() as u64;
        let start_unix = now_unix + lead.as_nanos() as i64;
        for w in &self.workers {
            let _ = w.to.send(ToWorker::Start {
                unix_ns: start_unix + w.offset.offset_ns,
            });
        }
        let started_at = SystemTime::now() + lead;
        let live = Arc::new(LiveCounters::default());
        let status = StatusLine::start(live.clone(), None, Some(clock.origin()), note, quiet);
        let handle = tokio::spawn(async move {
            let r = self
                .collect(start_ns, records, live, stop, requests_csv.clone())
                .await;
            status.stop();
            let (mut run, workers) = r?;
            run.rows_written = tokio::task::spawn_blocking(move || sink.finish())
                .await
                .map_err(|e| FleetError::Unavailable(e.to_string()))?
                .map_err(|e| {
                    FleetError::Unavailable(format!("writing {}: {e}", requests_csv.display()))
                })?;
            let path = requests_csv.clone();
            tokio::task::spawn_blocking(move || order_by_schedule(&path))
                .await
                .map_err(|e| FleetError::Unavailable(e.to_string()))?
                .map_err(|e| {
                    FleetError::Unavailable(format!(
                        "ordering {} by schedule: {e}",
                        requests_csv.display()
                    ))
                })?;
            run.started_at = started_at;
            Ok(FleetRun { load: run, workers })
        });
        Ok((start_ns, handle))
    }

    /// The receiving loop: records onto the run's clock and into the sink
    /// until every worker has ended (or, after `stop`, the time for that
    /// has passed).
    async fn collect(
        mut self,
        start_ns: u64,
        records: mpsc::Sender<crate::load::record::RequestRecord>,
        live: Arc<LiveCounters>,
        stop: CancellationToken,
        requests_csv: PathBuf,
    ) -> Result<(LoadRun, Vec<WorkerRecord>), FleetError> {
        let mut state: BTreeMap<u32, Tracked> = self
            .workers
            .iter()
            .map(|w| (w.index, Tracked::default()))
            .collect();
        // STOP sent: the workers have `drain` to send their last records
        // and END. One timer, armed at STOP (not one per record).
        let mut stopping = false;
        let drain = self.params.plan.timeout + END_SLACK;
        let drained = tokio::time::sleep(Duration::ZERO);
        tokio::pin!(drained);
        loop {
            if state.values().all(|t| t.ended.is_some()) {
                break;
            }
            tokio::select! {
                _ = stop.cancelled(), if !stopping => {
                    for w in &self.workers {
                        let _ = w.to.send(ToWorker::Stop);
                    }
                    stopping = true;
                    drained.as_mut().reset(tokio::time::Instant::now() + drain);
                }
                _ = &mut drained, if stopping => {
                    for t in state.values_mut().filter(|t| t.ended.is_none()) {
                        t.ended = Some(Err(format!(
                            "no END within {} of STOP",
                            humantime::format_duration(drain)
                        )));
                    }
                    break;
                }
                got = self.frames.recv() => {
                    let Some((i, incoming)) = got else { break };
                    let Some(t) = state.get_mut(&i) else { continue };
                    if t.ended.is_some() {
                        continue;
                    }
                    match incoming {
                        Incoming::Frame(FromWorker::Record(row), _) => {
                            t.tally.add(&row);
                            match crate::rundir::requests::parse_line(&row) {
                                Ok(mut rec) => {
                                    rec.scheduled_ns += start_ns;
                                    rec.start_ns += start_ns;
                                    rec.worker = Some(i);
                                    t.take(&rec);
                                    live.sent.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                                    live.finished(rec.outcome);
                                    if records.send(rec).await.is_err() {
                                        return Err(FleetError::Unavailable(format!(
                                            "the writer of {} stopped",
                                            requests_csv.display()
                                        )));
                                    }
                                }
                                Err(e) => t.bad_rows.push(e),
                            }
                        }
                        Incoming::Frame(
                            FromWorker::End {
                                count,
                                crc32,
                                shed,
                                errnos,
                            },
                            _,
                        ) => {
                            t.claimed = Some(count);
                            t.stats.shed = shed;
                            // Rows carry no errno: the worker counts them,
                            // for the load-host advice.
                            t.stats.errnos = errnos;
                            live.shed.fetch_add(shed, std::sync::atomic::Ordering::Relaxed);
                            t.ended = Some(match t.tally.check(count, crc32) {
                                // Stopped (a SIGTERM, its Pod deleted)
                                // before baton stopped the load: its share
                                // from then on was never sent.
                                Ok(()) if !stopping => Err(
                                    "it ended before the load did: its share of the arrivals after that was never sent".to_string(),
                                ),
                                Ok(()) if t.bad_rows.is_empty() => Ok(()),
                                Ok(()) => Err(format!(
                                    "{} of its rows could not be read (first: {})",
                                    t.bad_rows.len(),
                                    t.bad_rows[0]
                                )),
                                Err(lost) => Err(lost.to_string()),
                            });
                        }
                        Incoming::Frame(FromWorker::Fail(m), _) => {
                            t.ended = Some(Err(format!("it failed: {m}")));
                        }
                        Incoming::Frame(other, _) => {
                            t.bad_rows.push(format!("an unexpected frame {other:?}"));
                        }
                        Incoming::Garbled(line) => {
                            t.bad_rows.push(format!("not a frame: {line:?}"));
                        }
                        Incoming::Closed(why) => {
                            t.ended = Some(Err(format!(
                                "its stream closed before its END{}",
                                why.map(|w| format!(" ({w})")).unwrap_or_default()
                            )));
                        }
                    }
                }
            }
        }
        drop(records);
        // Why a stream closed: the Pod's own account, when there is one.
        let pods: Api<Pod> = Api::namespaced(self.client.clone(), &self.params.namespace);
        let mut stats = Stats::default();
        let mut out = Vec::new();
        for w in &self.workers {
            let t = state.remove(&w.index).unwrap_or_default();
            let mut lost = t.ended.and_then(Result::err);
            if let Some(why) = &mut lost
                && let Ok(p) = pods.get(&w.pod).await
                && let Some(end) = pod_end(&p)
            {
                why.push_str(&format!("; the Pod: {end}"));
            }
            stats.merge(&t.stats);
            out.push(WorkerRecord {
                index: w.index,
                pod: w.pod.clone(),
                node: w.node.clone(),
                records: t.tally.count(),
                sent: t.claimed,
                shed: t.stats.shed,
                lateness_p99_ms: (t.stats.sent() > 0)
                    .then(|| t.stats.lateness_us.value_at_quantile(0.99) as f64 / 1000.0),
                clock_offset_ns: w.offset.offset_ns,
                clock_error_ns: w.offset.error_ns,
                lost,
            });
        }
        let elapsed = Duration::from_nanos(stats.last_end_ns.saturating_sub(start_ns));
        Ok((
            LoadRun {
                rows_written: 0,
                started_at: SystemTime::now(),
                elapsed,
                interrupted: stop.is_cancelled(),
                host: Default::default(),
                warnings: Vec::new(),
                requests_csv,
                stats,
            },
            out,
        ))
    }
}

/// What the load from the cluster measured: the load as a host's would
/// be, and each worker's account.
pub struct FleetRun {
    pub load: LoadRun,
    pub workers: Vec<WorkerRecord>,
}

/// One worker's records as they arrive.
#[derive(Default)]
struct Tracked {
    tally: Tally,
    stats: Stats,
    /// What its END said it sent.
    claimed: Option<u64>,
    bad_rows: Vec<String>,
    /// `Ok`: ended with everything here; `Err`: why not.
    ended: Option<Result<(), String>>,
}

impl Tracked {
    fn take(&mut self, r: &crate::load::record::RequestRecord) {
        self.stats.record_row(r);
        self.stats.connections += u64::from(r.connect_us.is_some());
        self.stats.last_end_ns = self.stats.last_end_ns.max(r.start_ns + r.total_us * 1000);
    }
}

/// How a worker's Pod ended, when it did.
fn pod_end(p: &Pod) -> Option<String> {
    if p.metadata.deletion_timestamp.is_some() {
        return Some("deleted".into());
    }
    let st = p.status.as_ref()?;
    let c = st.container_statuses.as_ref()?.first()?;
    let t = c.state.as_ref()?.terminated.as_ref()?;
    Some(format!(
        "container exited {}{}",
        t.exit_code,
        t.reason
            .as_deref()
            .map(|r| format!(" ({r})"))
            .unwrap_or_default()
    ))
}

/// Wait until every index has a running Pod: index → (Pod, node).
async fn running_pods(
    client: &kube::Client,
    params: &JobParams,
    cancel: &CancellationToken,
) -> Result<BTreeMap<u32, (String, Option<String>)>, FleetError> {
    let pods: Api<Pod> = Api::namespaced(client.clone(), &params.namespace);
    let lp = ListParams::default().labels(&params.selector());
    let want = params.plan.workers as usize;
    let deadline = tokio::time::Instant::now() + RUNNING_WAIT;
    let mut pending = String::from("no Pod yet");
    loop {
        if cancel.is_cancelled() {
            return Err(FleetError::Unavailable("interrupted".into()));
        }
        let list = pods
            .list(&lp)
            .await
            .map_err(|e| FleetError::Unavailable(format!("listing the load workers' Pods: {e}")))?;
        let mut running = BTreeMap::new();
        let mut waiting = Vec::new();
        for p in &list.items {
            let name = p.metadata.name.clone().unwrap_or_default();
            let index = p
                .metadata
                .annotations
                .as_ref()
                .and_then(|a| a.get("batch.kubernetes.io/job-completion-index"))
                .and_then(|i| i.parse::<u32>().ok());
            let Some(index) = index else { continue };
            if p.metadata.deletion_timestamp.is_some() {
                continue;
            }
            let status = p.status.as_ref();
            let phase = status.and_then(|s| s.phase.as_deref()).unwrap_or("Pending");
            let container = status
                .and_then(|s| s.container_statuses.as_ref())
                .and_then(|c| c.first());
            if let Some(w) = container
                .and_then(|c| c.state.as_ref())
                .and_then(|s| s.waiting.as_ref())
                && let Some(reason) = w.reason.as_deref()
                && HOPELESS.contains(&reason)
            {
                return Err(FleetError::Input(format!(
                    "load worker {index} (pod {name}) cannot start: {reason}: {} (load.image: {})",
                    w.message.as_deref().unwrap_or(""),
                    params.image
                )));
            }
            match phase {
                "Running" => {
                    let node = p.spec.as_ref().and_then(|s| s.node_name.clone());
                    running.insert(index, (name, node));
                }
                "Failed" | "Succeeded" => {
                    return Err(FleetError::Unavailable(format!(
                        "load worker {index} (pod {name}) ended before the load started: {}",
                        pod_end(p).unwrap_or_else(|| phase.to_string())
                    )));
                }
                _ => {
                    let why = status
                        .and_then(|s| s.conditions.as_ref())
                        .and_then(|c| c.iter().find(|c| c.status == "False"))
                        .and_then(|c| c.message.clone().or(c.reason.clone()))
                        .unwrap_or_else(|| phase.to_string());
                    waiting.push(format!("{name}: {why}"));
                }
            }
        }
        if running.len() >= want {
            return Ok(running);
        }
        if !waiting.is_empty() {
            pending = waiting.join("; ");
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(FleetError::Unavailable(format!(
                "{} of {want} load workers running after {} (job {}); waiting: {pending}",
                running.len(),
                humantime::format_duration(RUNNING_WAIT),
                params.name()
            )));
        }
        tokio::select! {
            _ = tokio::time::sleep(POLL) => {}
            _ = cancel.cancelled() => {}
        }
    }
}

/// Attach to a worker's stdin and stdout: frames from it go to `frames`
/// tagged with its index; what is sent on the returned channel goes to
/// its stdin (dropping the channel closes that stdin, which ends the
/// worker).
async fn attach(
    client: &kube::Client,
    ns: &str,
    pod: &str,
    index: u32,
    frames: mpsc::UnboundedSender<(u32, Incoming)>,
) -> Result<mpsc::UnboundedSender<ToWorker>, FleetError> {
    let pods: Api<Pod> = Api::namespaced(client.clone(), ns);
    let ap = AttachParams::default()
        .container(job::CONTAINER)
        .stdin(true)
        .stdout(true)
        .stderr(false);
    let mut att = pods.attach(pod, &ap).await.map_err(|e| {
        FleetError::Unavailable(format!(
            "attaching to load worker {index} (pod {pod}) through the API: {e}"
        ))
    })?;
    let (Some(mut stdin), Some(stdout)) = (att.stdin(), att.stdout()) else {
        return Err(FleetError::Unavailable(format!(
            "attaching to load worker {index} (pod {pod}): no stdin or stdout"
        )));
    };
    let (to, mut rx) = mpsc::unbounded_channel::<ToWorker>();
    tokio::spawn(async move {
        while let Some(f) = rx.recv().await {
            let line = format!("{f}\n");
            if stdin.write_all(line.as_bytes()).await.is_err() || stdin.flush().await.is_err() {
                break;
            }
        }
        let _ = stdin.shutdown().await;
    });
    tokio::spawn(async move {
        let mut lines = BufReader::new(stdout).lines();
        loop {
            match lines.next_line().await {
                Ok(Some(line)) => {
                    let t3 = unix_ns();
                    let got = match FromWorker::parse(line.trim_end()) {
                        Ok(f) => Incoming::Frame(f, t3),
                        Err(_) => Incoming::Garbled(line.chars().take(200).collect()),
                    };
                    if frames.send((index, got)).is_err() {
                        break;
                    }
                }
                Ok(None) => {
                    let _ = frames.send((index, Incoming::Closed(None)));
                    break;
                }
                Err(e) => {
                    let _ = frames.send((index, Incoming::Closed(Some(e.to_string()))));
                    break;
                }
            }
        }
        // The session ends with the stream.
        let _ = att.join().await;
    });
    Ok(to)
}

/// Rewrite `requests.csv` in the order of the schedule (then `seq`): the
/// workers' streams arrive interleaved by completion.
fn order_by_schedule(path: &Path) -> Result<(), String> {
    use crate::rundir::requests::{Reader, write_header, write_row};
    let mut rows: Vec<_> = Reader::open(path)
        .map_err(|e| e.to_string())?
        .collect::<Result<_, _>>()
        .map_err(|e| e.to_string())?;
    rows.sort_by_key(|r| (r.scheduled_ns, r.seq));
    let tmp = path.with_extension("csv.sorting");
    {
        let file = std::fs::File::create(&tmp).map_err(|e| e.to_string())?;
        let mut w = csv::Writer::from_writer(std::io::BufWriter::new(file));
        write_header(&mut w).map_err(|e| e.to_string())?;
        for r in &rows {
            write_row(&mut w, r).map_err(|e| e.to_string())?;
        }
        w.flush().map_err(|e| e.to_string())?;
    }
    std::fs::rename(&tmp, path).map_err(|e| e.to_string())
}

/// Delete the run's Job and its Pods and wait, up to `within`, for them to
/// be gone. `Err` lists what is left.
pub async fn remove(
    client: &kube::Client,
    params: &JobParams,
    within: Duration,
) -> Result<Vec<String>, String> {
    let ns = &params.namespace;
    let jobs: Api<Job> = Api::namespaced(client.clone(), ns);
    let pods: Api<Pod> = Api::namespaced(client.clone(), ns);
    let name = params.name();
    let dp = DeleteParams {
        propagation_policy: Some(PropagationPolicy::Background),
        ..Default::default()
    };
    let mut deleted = Vec::new();
    match jobs.delete(&name, &dp).await {
        Ok(_) => deleted.push(format!("Job {ns}/{name}")),
        Err(kube::Error::Api(s)) if s.code == 404 => {}
        Err(e) => return Err(format!("deleting Job {ns}/{name}: {e}")),
    }
    // The garbage collector would take the Pods; deleting them now does
    // not leave that to a controller that may be slow. One by one: the
    // permission asked for is `delete pods`, not `deletecollection`.
    let lp = ListParams::default().labels(&params.selector());
    let listed = pods
        .list(&lp)
        .await
        .map_err(|e| format!("listing the load workers' Pods: {e}"))?;
    for p in listed.items {
        let Some(pod) = p.metadata.name else { continue };
        match pods.delete(&pod, &DeleteParams::default()).await {
            Ok(_) => deleted.push(format!("Pod {ns}/{pod}")),
            Err(kube::Error::Api(s)) if s.code == 404 => {}
            Err(e) => return Err(format!("deleting load worker Pod {ns}/{pod}: {e}")),
        }
    }
    let deadline = tokio::time::Instant::now() + within;
    loop {
        let job_left = matches!(jobs.get_opt(&name).await, Ok(Some(_)));
        let pods_left: Vec<String> = pods
            .list(&lp)
            .await
            .map(|l| {
                l.items
                    .into_iter()
                    .filter_map(|p| p.metadata.name)
                    .collect()
            })
            .unwrap_or_default();
        if !job_left && pods_left.is_empty() {
            return Ok(deleted);
        }
        if tokio::time::Instant::now() >= deadline {
            let mut left = Vec::new();
            if job_left {
                left.push(format!("Job {ns}/{name}"));
            }
            left.extend(pods_left.iter().map(|p| format!("Pod {ns}/{p}")));
            return Err(format!(
                "still there after {}: {}",
                humantime::format_duration(within),
                left.join(", ")
            ));
        }
        tokio::time::sleep(POLL).await;
    }
}
