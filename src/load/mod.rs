//! The load engine: makes request records.
//!
//! An open-model HTTP/1.1 load in which every request opens a new TCP
//! connection (so each one is routed afresh by a Service), with one
//! record per request streamed to `requests.csv`, HDR histograms per
//! worker, and outcomes classified by phase and errno. See [`execute`] for
//! the entry point and [`engine`] for how requests are paced.
//!
//! Not for: judging (see `verdict`) or rendering (see `report`).

pub mod client;
pub mod engine;
pub mod extract;
pub mod host;
pub mod outcome;
pub mod pacing;
pub mod plan;
pub mod probe;
pub mod record;
pub mod sink;
pub mod stats;
pub mod status;
pub mod tls;

use crate::clock::RunClock;
use plan::LoadPlan;
use stats::{LiveCounters, Stats};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};
use tokio_util::sync::CancellationToken;

/// Everything a finished (or interrupted) load run measured.
#[derive(Debug)]
pub struct LoadRun {
    pub stats: Stats,
    /// Rows in `requests.csv`; equals `stats.sent()` unless the disk failed.
    pub rows_written: u64,
    pub started_at: SystemTime,
    /// From the first scheduled instant to the end of the last request.
    pub elapsed: Duration,
    pub interrupted: bool,
    pub host: host::HostLimits,
    pub warnings: Vec<String>,
    pub requests_csv: PathBuf,
}

#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("cannot write to {path}: {source}")]
    Output {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("load engine failed: {0}")]
    Engine(#[source] std::io::Error),
}

/// Run `plan`, streaming records into `plan.out_dir/requests.csv`, with a
/// live status line unless `quiet`. Returns when the plan is done or
/// `cancel` fired and every in-flight request has ended. Record times
/// are offsets from `clock`'s origin (`baton run` shares it with the
/// cluster's events), or from the load's own start when `None`; either
/// way the schedule starts when the load does.
///
/// `interrupted` in the result is whether `cancel` fired; a caller that
/// cancels to end the load on purpose (`baton run` after its cooldown)
/// sets it from its own interrupt token instead.
pub async fn execute(
    plan: Arc<LoadPlan>,
    clock: Option<RunClock>,
    cancel: CancellationToken,
    quiet: bool,
) -> Result<LoadRun, LoadError> {
    let out = |source| LoadError::Output {
        path: plan.out_dir.clone(),
        source,
    };
    std::fs::create_dir_all(&plan.out_dir).map_err(out)?;
    let requests_csv = plan.out_dir.join(crate::rundir::REQUESTS_CSV);
    let host = host::inspect(plan.template.addr.ip(), plan.source_ips.len());
    let warnings = host::warnings(
        &host,
        plan.rate(),
        plan.concurrency,
        plan.template.keepalive,
    );
    for w in &warnings {
        eprintln!("baton: warning: {w}");
    }
    if let Some(want) = plan.concurrency_capped_from {
        eprintln!(
            "baton: note: --concurrency defaults to {} here, the open-files limit less {} for baton's own \
             files, instead of the {want} that one timeout at this rate could hold; a target that slows \
             down shows up as shed requests sooner. Raise `ulimit -n` or pass --concurrency to change it",
            plan.concurrency,
            plan::FD_RESERVE,
        );
    }

    let (records, sink) =
        sink::RecordSink::create(&requests_csv).map_err(|source| LoadError::Output {
            path: requests_csv.clone(),
            source,
        })?;
    tracing::info!(
        url = %plan.url,
        rate = ?plan.rate(),
        concurrency = plan.concurrency,
        workers = plan.workers,
        out = %requests_csv.display(),
        "load starts"
    );
    let live = Arc::new(LiveCounters::default());
    let planned = plan.duration.filter(|_| !plan.duration_is_bound);
    let status = status::StatusLine::start(
        live.clone(),
        planned,
        clock.map(|c| c.origin()),
        plan.status_note.clone(),
        quiet,
    );
    let started_at = SystemTime::now();
    let load_start = Instant::now();
    let origin = clock.map_or(load_start, |c| c.origin());
    let engine_cancel = cancel.clone();
    let engine_plan = plan.clone();
    let stats = tokio::task::spawn_blocking(move || {
        engine::run(
            engine_plan,
            origin,
            load_start,
            live,
            engine_cancel,
            records,
        )
    })
    .await
    .map_err(|e| LoadError::Engine(std::io::Error::other(e)))?
    .map_err(LoadError::Engine)?;
    status.stop();
    tracing::info!(sent = stats.sent(), shed = stats.shed, "load ended");
    let rows_written = tokio::task::spawn_blocking(move || sink.finish())
        .await
        .map_err(|e| LoadError::Engine(std::io::Error::other(e)))?
        .map_err(|source| LoadError::Output {
            path: requests_csv.clone(),
            source,
        })?;
    Ok(LoadRun {
        elapsed: match stats.last_end_ns {
            0 => origin.elapsed(),
            end => Duration::from_nanos(end),
        }
        .saturating_sub(load_start.saturating_duration_since(origin)),
        stats,
        rows_written,
        started_at,
        interrupted: cancel.is_cancelled(),
        host,
        warnings,
        requests_csv,
    })
}
