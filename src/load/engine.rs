//! Runs a load plan: one OS thread per worker, each with its own
//! single-threaded tokio runtime, its own histograms and its share of the
//! arrival schedule; merged when all are done.
//!
//! Open model: each worker wakes at its next due instant, fires *every*
//! arrival that is due (stamped with its own due instant, so a late wake
//! shows up as lateness, not as a gap), and never waits for responses.
//! Arrivals over the in-flight cap are shed and counted, never queued.
//! Closed model (`--rate 0`): `concurrency` loops back to back.
//!
//! Stopping: the schedule ends (count or duration), or `cancel` fires
//! (Ctrl-C); either way in-flight requests finish, bounded by their
//! timeout, and every one of them is recorded.

use super::client::{self, ClientState};
use super::pacing::{Next, Schedule, split_evenly};
use super::plan::{LoadPlan, Pacing};
use super::record::RequestRecord;
use super::stats::{LiveCounters, Stats};
use super::timer::PreciseTimer;
use std::cell::{Cell, RefCell};
use std::io;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Instant;
use tokio::sync::{Notify, mpsc};
use tokio_util::sync::CancellationToken;

/// How far past a due instant the pacer may wake, so that arrivals a few
/// microseconds apart share one wake-up instead of one timer syscall each.
/// Bounds the pacer's own contribution to lateness.
const WAKE_SLACK: std::time::Duration = std::time::Duration::from_micros(20);

/// What all workers share.
struct Shared {
    plan: Arc<LoadPlan>,
    /// The run's clock: every `*_ns` in the records is an offset from it.
    origin: Instant,
    /// When the load began: the schedule's zero. Later than `origin` when
    /// the run clock started earlier (`baton run` starts its watches
    /// first), so the schedule does not "catch up" on the gap.
    schedule_start: Instant,
    /// `schedule_start - origin`, added to every scheduled instant.
    schedule_offset_ns: u64,
    /// Next sequence number: order of sending, global, without gaps.
    seq: AtomicU64,
    /// Closed model: requests claimed so far against `--requests`.
    claimed: AtomicU64,
    live: Arc<LiveCounters>,
    cancel: CancellationToken,
    records: mpsc::Sender<RequestRecord>,
}

/// One worker's private state, shared by its tasks on one thread.
struct Worker {
    id: usize,
    stats: RefCell<Stats>,
    client: ClientState,
    /// Requests started and not yet recorded, and a wake-up for when it
    /// drops to zero.
    pending: Cell<usize>,
    drained: Notify,
    /// Round-robin position in `--source-ips`.
    next_source: Cell<usize>,
}

fn ns(d: std::time::Duration) -> u64 {
    d.as_nanos().min(u64::MAX as u128) as u64
}

/// Run the plan to its end (or to `cancel`) and return the merged stats.
/// Records go to `records` as requests complete, timed from `origin`; the
/// schedule's first instant is `schedule_start`.
pub fn run(
    plan: Arc<LoadPlan>,
    origin: Instant,
    schedule_start: Instant,
    live: Arc<LiveCounters>,
    cancel: CancellationToken,
    records: mpsc::Sender<RequestRecord>,
) -> io::Result<Stats> {
    let schedule_start = schedule_start.max(origin);
    let shared = Arc::new(Shared {
        plan: plan.clone(),
        origin,
        schedule_start,
        schedule_offset_ns: ns(schedule_start - origin),
        seq: AtomicU64::new(0),
        claimed: AtomicU64::new(0),
        live,
        cancel,
        records,
    });
    let threads: Vec<_> = (0..plan.workers)
        .map(|id| {
            let shared = shared.clone();
            std::thread::Builder::new()
                .name(format!("baton-load-{id}"))
                .spawn(move || worker_thread(shared, id))
        })
        .collect::<io::Result<_>>()?;
    drop(shared);
    let mut total = Stats::default();
    for t in threads {
        let stats = t
            .join()
            .map_err(|_| io::Error::other("a load worker panicked"))??;
        total.merge(&stats);
    }
    Ok(total)
}

fn worker_thread(shared: Arc<Shared>, id: usize) -> io::Result<Stats> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let local = tokio::task::LocalSet::new();
    Ok(local.block_on(&rt, worker(shared, id)))
}

async fn worker(shared: Arc<Shared>, id: usize) -> Stats {
    let w = Rc::new(Worker {
        id,
        stats: RefCell::new(Stats::default()),
        client: ClientState::default(),
        pending: Cell::new(0),
        drained: Notify::new(),
        next_source: Cell::new(0),
    });
    match shared.plan.pacing {
        Pacing::Open { rate } => open_model(&shared, &w, rate).await,
        Pacing::Closed => closed_model(&shared, &w).await,
    }
    while w.pending.get() > 0 {
        w.drained.notified().await;
    }
    w.stats.take()
}

/// Wait while the record channel is full: a slow disk delays the
/// schedule (visible as lateness) instead of losing rows.
async fn wait_for_record_room(shared: &Shared) {
    if shared.records.capacity() == 0 {
        let _ = shared.records.reserve().await;
    }
}

async fn open_model(shared: &Arc<Shared>, w: &Rc<Worker>, rate: f64) {
    let plan = &shared.plan;
    let end_ns = plan.duration.map(ns);
    let mut schedule = Schedule::new(rate, w.id, plan.workers, plan.max_requests, end_ns);
    let cap = plan.concurrency as u64;
    let timer = PreciseTimer::new();
    loop {
        if shared.cancel.is_cancelled() {
            return;
        }
        match schedule.poll(ns(shared.schedule_start.elapsed())) {
            Next::Due { due_ns, .. } => {
                wait_for_record_room(shared).await;
                if shared.live.in_flight.load(Relaxed) >= cap {
                    w.stats.borrow_mut().shed += 1;
                    shared.live.shed.fetch_add(1, Relaxed);
                    continue;
                }
                start_request(shared, w, due_ns + shared.schedule_offset_ns).await;
            }
            Next::WaitUntil(due_ns) => {
                // Wake a little past the due instant so close arrivals
                // share one wake-up.
                let at =
                    shared.schedule_start + std::time::Duration::from_nanos(due_ns) + WAKE_SLACK;
                tokio::select! {
                    _ = timer.sleep_until(at) => {}
                    _ = shared.cancel.cancelled() => return,
                }
            }
            Next::Done => return,
        }
    }
}

async fn closed_model(shared: &Arc<Shared>, w: &Rc<Worker>) {
    let plan = &shared.plan;
    let my_share = split_evenly(plan.concurrency, plan.workers)[w.id];
    let deadline = plan.duration.map(|d| shared.schedule_start + d);
    let mut loops = tokio::task::JoinSet::new();
    for _ in 0..my_share {
        let (shared, w) = (shared.clone(), w.clone());
        loops.spawn_local(async move {
            loop {
                if shared.cancel.is_cancelled() || deadline.is_some_and(|d| Instant::now() >= d) {
                    return;
                }
                if let Some(max) = shared.plan.max_requests
                    && shared.claimed.fetch_add(1, Relaxed) >= max
                {
                    return;
                }
                wait_for_record_room(&shared).await;
                begin(&shared, &w);
                one_request(&shared, &w, None).await;
            }
        });
    }
    while loops.join_next().await.is_some() {}
}

/// Count a request as started (in flight, pending on this worker).
fn begin(shared: &Shared, w: &Worker) {
    shared.live.in_flight.fetch_add(1, Relaxed);
    w.pending.set(w.pending.get() + 1);
}

/// Start a due request now, from the pacer: poll it once inline, so its
/// socket is created and its connect sent at the due instant, and only
/// then hand the rest to its own task. A spawned task would first wait
/// behind every other ready task on this thread (completions of earlier
/// requests), which is lateness the open model exists to avoid. The
/// first poll registers the pacer's waker for the socket; the task's own
/// first poll replaces it (tokio keeps the latest waker).
async fn start_request(shared: &Arc<Shared>, w: &Rc<Worker>, scheduled_ns: u64) {
    begin(shared, w);
    let (shared, w) = (shared.clone(), w.clone());
    let mut request = Box::pin(async move { one_request(&shared, &w, Some(scheduled_ns)).await });
    let done =
        std::future::poll_fn(|cx| std::task::Poll::Ready(request.as_mut().poll(cx).is_ready()))
            .await;
    if !done {
        tokio::task::spawn_local(request);
    }
}

/// Make one request, record it, and account for it. Always records.
async fn one_request(shared: &Shared, w: &Worker, scheduled_ns: Option<u64>) {
    let plan = &shared.plan;
    let source = (!plan.source_ips.is_empty()).then(|| {
        let i = w.next_source.get();
        w.next_source.set(i.wrapping_add(1));
        plan.source_ips[i % plan.source_ips.len()]
    });
    let seq = shared.seq.fetch_add(1, Relaxed);
    shared.live.sent.fetch_add(1, Relaxed);
    let m = client::request(&plan.template, &w.client, source).await;

    let start_ns = ns(m.start.saturating_duration_since(shared.origin));
    let scheduled_ns = scheduled_ns.unwrap_or(start_ns);
    let end_ns = start_ns + ns(m.total);
    let record = RequestRecord {
        seq,
        scheduled_ns,
        start_ns,
        connect_us: m.connect.map(|d| d.as_micros() as u64),
        ttfb_us: m.ttfb.map(|d| d.as_micros() as u64),
        total_us: m.total.as_micros() as u64,
        status: m.status,
        outcome: m.outcome,
        phase: m.phase,
        backend: m.backend.clone(),
        version: m.version.clone(),
    };
    w.stats
        .borrow_mut()
        .record(&m, record.lateness_ns(), end_ns);
    shared.live.finished(m.outcome);
    shared.live.in_flight.fetch_sub(1, Relaxed);
    // Only fails if the writer is gone (a disk error); the row count check
    // at the end then reports the loss instead of hiding it.
    let _ = shared.records.send(record).await;
    w.pending.set(w.pending.get() - 1);
    if w.pending.get() == 0 {
        w.drained.notify_one();
    }
}
