//! One in-cluster worker: `baton worker` as the Job's Pods run it. It
//! answers the coordinator's hello and clock pings until the coordinator
//! sends the start instant (already on this worker's clock), sends its interleaved share
//! of the run's open model from then on, streams every record as it
//! completes and ends with the count and checksum of what it sent (see
//! [`super::wire`] for the frames).
//!
//! The channel is the container's stdin and stdout (the coordinator
//! attaches to them through the API): nothing else is written to stdout.
//! A coordinator that goes away (stdin closed) or says `STOP` ends the
//! load early; what was sent until then is still streamed and counted.
//!
//! Not for: starting workers or merging their records (the coordinator).

use super::wire::{FromWorker, Tally, ToWorker};
use crate::load::client::StatusSet;
use crate::load::engine;
use crate::load::plan::{LoadInput, LoadPlan, Share};
use crate::load::record::RequestRecord;
use crate::load::stats::LiveCounters;
use crate::load::tls::TlsOptions;
use crate::profile::ExtractorSpec;
use serde::{Deserialize, Serialize};
use std::io::{BufRead, Write};
use std::sync::{Arc, Mutex, mpsc as std_mpsc};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// Records are sent at least this often while they come...
const BATCH_EVERY: Duration = Duration::from_millis(20);
/// ...or when this many bytes of them are waiting.
const BATCH_BYTES: usize = 64 * 1024;
/// The record writer's nap when there is nothing to send.
const IDLE: Duration = Duration::from_millis(2);

/// The environment variable holding a worker's [`WorkerPlan`] (JSON).
pub const PLAN_ENV: &str = "BATON_WORKER_PLAN";
/// Kubernetes' index of an Indexed Job's Pod: the worker's number.
pub const INDEX_ENV: &str = "JOB_COMPLETION_INDEX";

/// What every worker of a run is told, the same for all of them; its own
/// number comes from the Job ([`INDEX_ENV`]).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkerPlan {
    pub url: String,
    /// How many workers share the load.
    pub workers: u64,
    /// The whole run's rate (every worker sends `rate / workers`).
    pub rate: f64,
    /// No arrival after this long from the start: a safety bound, the
    /// coordinator stops the load itself.
    #[serde(with = "humantime_serde")]
    pub bound: Duration,
    #[serde(with = "humantime_serde")]
    pub timeout: Duration,
    #[serde(with = "humantime_serde")]
    pub connect_timeout: Duration,
    #[serde(default)]
    pub headers: Vec<String>,
    pub expect_status: Vec<u16>,
    #[serde(default)]
    pub backend_from: Option<ExtractorSpec>,
    #[serde(default)]
    pub version_from: Option<ExtractorSpec>,
    /// This worker's in-flight cap; `None`: the engine's default for its
    /// share of the rate.
    #[serde(default)]
    pub concurrency: Option<usize>,
    /// A worker that has not been given the start instant this long after
    /// it began exits (its coordinator died before attaching, or another
    /// Pod took its index): nothing waits for ever in a cluster.
    #[serde(default = "default_start_within", with = "humantime_serde")]
    pub start_within: Duration,
}

fn default_start_within() -> Duration {
    Duration::from_secs(300)
}

#[derive(Debug, thiserror::Error)]
pub enum WorkerError {
    #[error("{PLAN_ENV}: {0}")]
    Plan(String),
    #[error("{INDEX_ENV}: {0}")]
    Index(String),
    #[error("the coordinator went away before it sent the start instant")]
    NoStart,
    #[error("no start instant from the coordinator within {0:?}")]
    StartTimedOut(Duration),
    #[error("the coordinator sent a frame a worker does not take: {0}")]
    Protocol(String),
    #[error("{0}")]
    Load(String),
    #[error("writing to the coordinator: {0}")]
    Output(#[source] std::io::Error),
}

impl WorkerError {
    /// Bad input (exit 2) rather than a failed run (exit 1).
    pub fn is_input(&self) -> bool {
        matches!(self, WorkerError::Plan(_) | WorkerError::Index(_))
    }
}

/// The plan and this worker's number from the environment's values.
pub fn from_env(plan: Option<&str>, index: Option<&str>) -> Result<(WorkerPlan, u64), WorkerError> {
    let plan: WorkerPlan = serde_json::from_str(
        plan.ok_or_else(|| WorkerError::Plan("not set (a worker runs in baton's Job)".into()))?,
    )
    .map_err(|e| WorkerError::Plan(e.to_string()))?;
    let index: u64 = index
        .ok_or_else(|| WorkerError::Index("not set (the Job must be Indexed)".into()))?
        .parse()
        .map_err(|e| WorkerError::Index(format!("not a number: {e}")))?;
    if plan.workers == 0 || index >= plan.workers {
        return Err(WorkerError::Index(format!(
            "{index} is not a worker of {}",
            plan.workers
        )));
    }
    Ok((plan, index))
}

fn unix_ns(t: SystemTime) -> i64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => d.as_nanos() as i64,
        Err(e) => -(e.duration().as_nanos() as i64),
    }
}

/// The load engine's plan for this worker's share.
fn load_plan(plan: &WorkerPlan, worker: u64) -> Result<LoadPlan, WorkerError> {
    let extractor = |s: &Option<ExtractorSpec>| {
        s.as_ref()
            .map(|s| s.compile())
            .transpose()
            .map_err(WorkerError::Plan)
    };
    let mut built = LoadPlan::build(LoadInput {
        url: plan.url.clone(),
        rate: plan.rate,
        concurrency: plan.concurrency,
        requests: None,
        duration: Some(plan.bound),
        timeout: plan.timeout,
        connect_timeout: plan.connect_timeout,
        keepalive: false,
        headers: plan.headers.clone(),
        method: "GET".into(),
        expect_status: Some(StatusSet(
            plan.expect_status.iter().map(|&s| (s, s)).collect(),
        )),
        backend_from: extractor(&plan.backend_from)?,
        version_from: extractor(&plan.version_from)?,
        source_ips: Vec::new(),
        out_dir: Default::default(),
        workers: None,
        tls: TlsOptions::default(),
        open_files: None,
    })
    .map_err(|e| WorkerError::Plan(e.to_string()))?;
    built.duration_is_bound = true;
    built.share = Some(Share {
        worker,
        workers: plan.workers,
    });
    Ok(built)
}

/// What a worker did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WorkerEnd {
    pub records: u64,
    /// `STOP` or a closed stdin ended the load before its bound.
    pub stopped: bool,
}

/// Serve the coordinator on `input` / `output` as worker `worker` of
/// `plan`, to the end of the load.
pub fn serve<R, W>(
    plan: &WorkerPlan,
    worker: u64,
    input: R,
    output: W,
) -> Result<WorkerEnd, WorkerError>
where
    R: BufRead + Send + 'static,
    W: Write + Send + 'static,
{
    let load = load_plan(plan, worker)?;
    let out = Arc::new(Mutex::new(output));
    let say = {
        let out = out.clone();
        move |f: FromWorker| -> std::io::Result<()> {
            let mut o = out.lock().unwrap_or_else(|p| p.into_inner());
            writeln!(o, "{f}")?;
            o.flush()
        }
    };
    let hello = FromWorker::Hello {
        worker: worker as u32,
        workers: plan.workers as u32,
        version: env!("CARGO_PKG_VERSION").into(),
    };

    // The coordinator's frames, read on their own thread for the whole
    // run: pings are answered at once, the start instant handed over,
    // STOP and a closed stdin cancel the load.
    let cancel = CancellationToken::new();
    let (start_tx, start_rx) = std_mpsc::channel::<Result<i64, WorkerError>>();
    {
        let say = say.clone();
        let cancel = cancel.clone();
        std::thread::Builder::new()
            .name("baton-worker-in".into())
            .spawn(move || {
                for line in input.lines() {
                    let Ok(line) = line else { break };
                    let received = unix_ns(SystemTime::now());
                    match ToWorker::parse(line.trim_end()) {
                        Ok(ToWorker::Hello) => {
                            let _ = say(hello.clone());
                        }
                        Ok(ToWorker::Ping { t0 }) => {
                            let t2 = unix_ns(SystemTime::now());
                            let _ = say(FromWorker::Pong {
                                t0,
                                t1: received,
                                t2,
                            });
                        }
                        Ok(ToWorker::Start { unix_ns }) => {
                            let _ = start_tx.send(Ok(unix_ns));
                        }
                        Ok(ToWorker::Stop) => cancel.cancel(),
                        Err(e) => {
                            let _ = start_tx.send(Err(WorkerError::Protocol(e.to_string())));
                            cancel.cancel();
                        }
                    }
                }
                // The coordinator is gone: nobody reads what is sent.
                cancel.cancel();
            })
            .map_err(|e| WorkerError::Load(e.to_string()))?;
    }
    let start_unix = match start_rx.recv_timeout(plan.start_within) {
        Ok(start) => start?,
        Err(std_mpsc::RecvTimeoutError::Timeout) => {
            return Err(WorkerError::StartTimedOut(plan.start_within));
        }
        Err(std_mpsc::RecvTimeoutError::Disconnected) => return Err(WorkerError::NoStart),
    };

    // The start instant on this host's monotonic clock.
    let now = Instant::now();
    let ahead = start_unix - unix_ns(SystemTime::now());
    let origin = if ahead >= 0 {
        now + Duration::from_nanos(ahead as u64)
    } else {
        now.checked_sub(Duration::from_nanos(ahead.unsigned_abs()))
            .unwrap_or(now)
    };
    // Records go out as they complete, each counted into the checksum.
    let (tx, mut rx) = mpsc::channel::<RequestRecord>(crate::load::sink::CHANNEL_CAPACITY);
    let writer = {
        let out = out.clone();
        std::thread::Builder::new()
            .name("baton-worker-out".into())
            .spawn(move || -> std::io::Result<Tally> {
                let mut tally = Tally::default();
                // Rows go out in batches of whole lines: one write (and
                // one attach frame) per batch, not per record.
                let mut batch = String::with_capacity(BATCH_BYTES + 1024);
                let mut sent_at = Instant::now();
                let send = |batch: &mut String| -> std::io::Result<()> {
                    let mut o = out.lock().unwrap_or_else(|p| p.into_inner());
                    o.write_all(batch.as_bytes())?;
                    o.flush()?;
                    batch.clear();
                    Ok(())
                };
                loop {
                    match rx.try_recv() {
                        Ok(rec) => {
                            let mut row = csv::Writer::from_writer(Vec::with_capacity(160));
                            crate::rundir::requests::write_row(&mut row, &rec)?;
                            let mut bytes = row.into_inner().map_err(|e| e.into_error())?;
                            while bytes.last().is_some_and(|b| *b == b'\n' || *b == b'\r') {
                                bytes.pop();
                            }
                            let row = String::from_utf8_lossy(&bytes);
                            tally.add(&row);
                            batch.push_str(&FromWorker::Record(row.into_owned()).to_string());
                            batch.push('\n');
                            if batch.len() >= BATCH_BYTES {
                                send(&mut batch)?;
                                sent_at = Instant::now();
                            }
                        }
                        Err(mpsc::error::TryRecvError::Empty) => {
                            if !batch.is_empty() && sent_at.elapsed() >= BATCH_EVERY {
                                send(&mut batch)?;
                                sent_at = Instant::now();
                            } else {
                                std::thread::sleep(IDLE);
                            }
                        }
                        Err(mpsc::error::TryRecvError::Disconnected) => break,
                    }
                }
                send(&mut batch)?;
                Ok(tally)
            })
            .map_err(|e| WorkerError::Load(e.to_string()))?
    };
    // The pacer counts from when it is called: call it at the start.
    if let Some(wait) = origin.checked_duration_since(Instant::now()) {
        std::thread::sleep(wait);
    }
    let ran = engine::run(
        Arc::new(load),
        origin,
        origin,
        Arc::new(LiveCounters::default()),
        cancel.clone(),
        tx,
    );
    let tally = writer
        .join()
        .map_err(|_| WorkerError::Load("the record writer panicked".into()))?
        .map_err(WorkerError::Output)?;
    let stats = match ran {
        Ok(stats) => stats,
        Err(e) => {
            let _ = say(FromWorker::Fail(format!("load engine failed: {e}")));
            return Err(WorkerError::Load(e.to_string()));
        }
    };
    say(tally.end(stats.shed, stats.errnos.clone())).map_err(WorkerError::Output)?;
    Ok(WorkerEnd {
        records: tally.count(),
        stopped: cancel.is_cancelled(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan_json(workers: u64) -> String {
        format!(
            r#"{{"url": "http://127.0.0.1:9/", "workers": {workers}, "rate": 100, "bound": "2s",
                "timeout": "1s", "connect_timeout": "500ms", "expect_status": [200]}}"#
        )
    }

    #[test]
    fn the_plan_and_index_come_from_the_environment_or_say_what_is_missing() {
        let (plan, index) = from_env(Some(&plan_json(3)), Some("2")).unwrap();
        assert_eq!((plan.workers, index), (3, 2));
        assert_eq!(plan.bound, Duration::from_secs(2));
        let e = from_env(None, Some("0")).unwrap_err();
        assert!(e.is_input() && e.to_string().starts_with(PLAN_ENV), "{e}");
        let e = from_env(Some(&plan_json(3)), Some("3")).unwrap_err();
        assert_eq!(
            e.to_string(),
            "JOB_COMPLETION_INDEX: 3 is not a worker of 3"
        );
        let e = from_env(Some("{\"url\": 1}"), Some("0")).unwrap_err();
        assert!(e.is_input(), "{e}");
    }

    #[test]
    fn a_workers_share_is_the_plan_with_its_interleaving() {
        let (plan, _) = from_env(Some(&plan_json(4)), Some("1")).unwrap();
        let built = load_plan(&plan, 1).unwrap();
        assert_eq!(
            built.share,
            Some(Share {
                worker: 1,
                workers: 4
            })
        );
        assert_eq!(built.rate(), Some(100.0));
        assert!(built.duration_is_bound);
    }
}
