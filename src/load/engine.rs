//! Runs a load plan: one OS thread per worker, each with its own
//! single-threaded tokio runtime and its own histograms, merged when all
//! are done.
//!
//! Open model: a pacer thread of its own owns the arrival schedule. It
//! sleeps to each due instant, and for *every* arrival that is due it
//! issues the connect itself (a non-blocking `connect(2)`, stamped with
//! its due instant, so a late wake shows up as lateness, not as a gap) and
//! hands the connecting socket to a worker, round robin. The workers do
//! everything after the SYN. So the start of a request never waits behind
//! the completions a busy worker is processing: the pacer does nothing
//! else, sleeps between arrivals, and the kernel wakes such a thread
//! promptly. Arrivals over the in-flight cap are shed and counted, never
//! queued. With `--keepalive` the pacer hands over the arrival only and
//! the worker picks a pooled connection. Closed model (`--rate 0`):
//! `concurrency` loops back to back, spread over the workers.
//!
//! Stopping: the schedule ends (count or duration), or `cancel` fires
//! (Ctrl-C); either way in-flight requests finish, bounded by their
//! timeout, and every one of them is recorded.

use super::client::{self, ClientState};
use super::pacing::{Next, Schedule, split_evenly};
use super::plan::{LoadPlan, Pacing};
use super::record::RequestRecord;
use super::stats::{LiveCounters, Stats};
use std::cell::{Cell, RefCell};
use std::io;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;
use std::time::Instant;
use tokio::sync::{Notify, mpsc};
use tokio_util::sync::CancellationToken;

/// The pacer sleeps at most this long at a time, so it notices `cancel`.
const PACER_NAP: Duration = Duration::from_millis(20);

/// An arrival the pacer started, on its way to a worker.
struct Arrival {
    /// Place in the sending order.
    seq: u64,
    /// Due instant, ns from the run's origin.
    scheduled_ns: u64,
    /// The connect, issued; `None` with keep-alive (the worker picks a
    /// pooled connection or opens one).
    opening: Option<client::Opening>,
}
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
    let (lanes, mut inboxes): (Vec<_>, Vec<_>) = match plan.pacing {
        Pacing::Open { .. } => (0..plan.workers)
            .map(|_| {
                let (tx, rx) = mpsc::unbounded_channel();
                (tx, Some(rx))
            })
            .unzip(),
        Pacing::Closed => (vec![], (0..plan.workers).map(|_| None).collect()),
    };
    // Every runtime (an epoll and an eventfd each) before any worker
    // opens a socket: once requests run, a low open-files limit is
    // theirs to hit (as client_resource), not a later worker's start-up.
    let runtimes: Vec<_> = (0..plan.workers)
        .map(|_| {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
        })
        .collect::<io::Result<_>>()?;
    let threads: Vec<_> = runtimes
        .into_iter()
        .enumerate()
        .map(|(id, rt)| {
            let shared = shared.clone();
            let inbox = inboxes[id].take();
            std::thread::Builder::new()
                .name(format!("baton-load-{id}"))
                .spawn(move || worker_thread(rt, shared, id, inbox))
        })
        .collect::<io::Result<_>>()?;
    let mut total = Stats::default();
    if let Pacing::Open { rate } = plan.pacing {
        let pacer_shared = shared.clone();
        let pacer = std::thread::Builder::new()
            .name("baton-pacer".into())
            .spawn(move || pacer(&pacer_shared, rate, lanes));
        // Joining the pacer first is safe: it never waits for a worker.
        match pacer {
            Ok(p) => {
                total.shed += p
                    .join()
                    .map_err(|_| io::Error::other("the load pacer panicked"))?;
            }
            Err(e) => {
                // No arrivals will come: the workers see their inboxes
                // close (the lanes went with the closure) and end.
                shared.cancel.cancel();
                return Err(e);
            }
        }
    }
    drop(shared);
    for t in threads {
        let stats = t
            .join()
            .map_err(|_| io::Error::other("a load worker panicked"))??;
        total.merge(&stats);
    }
    Ok(total)
}

fn worker_thread(
    rt: tokio::runtime::Runtime,
    shared: Arc<Shared>,
    id: usize,
    inbox: Option<mpsc::UnboundedReceiver<Arrival>>,
) -> io::Result<Stats> {
    let local = tokio::task::LocalSet::new();
    Ok(local.block_on(&rt, worker(shared, id, inbox)))
}

async fn worker(
    shared: Arc<Shared>,
    id: usize,
    inbox: Option<mpsc::UnboundedReceiver<Arrival>>,
) -> Stats {
    let w = Rc::new(Worker {
        id,
        stats: RefCell::new(Stats::default()),
        client: ClientState::default(),
        pending: Cell::new(0),
        drained: Notify::new(),
        next_source: Cell::new(0),
    });
    match inbox {
        Some(inbox) => open_model(&shared, &w, inbox).await,
        None => closed_model(&shared, &w).await,
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

/// The open model's pacer, on its own thread: sleep to each due instant,
/// start every arrival that is due and hand it to a worker. Returns the
/// number of arrivals shed at the in-flight cap.
fn pacer(shared: &Shared, rate: f64, lanes: Vec<mpsc::UnboundedSender<Arrival>>) -> u64 {
    // Linux's default timer slack (50 µs) would be added to every
    // wake-up; ask for the least it grants. (prctl is Linux's alone;
    // elsewhere the pacer keeps the platform's timer coalescing.)
    #[cfg(target_os = "linux")]
    let _ = nix::sys::prctl::set_timerslack(1);
    let plan = &shared.plan;
    let template = &plan.template;
    let end_ns = plan.duration.map(ns);
    let mut schedule = match plan.share {
        Some(s) => Schedule::share(rate, plan.max_requests, end_ns, s.worker, s.workers),
        None => Schedule::new(rate, plan.max_requests, end_ns),
    };
    // Arrivals handed out, for dealing them round robin to the workers (a
    // share's global indices step by the number of shares).
    let mut dealt = 0u64;
    let cap = plan.concurrency as u64;
    let mut shed = 0;
    let mut next_source = 0usize;
    loop {
        if shared.cancel.is_cancelled() {
            return shed;
        }
        match schedule.poll(ns(shared.schedule_start.elapsed())) {
            Next::Due { index, due_ns } => {
                // A slow disk delays the schedule (visible as lateness)
                // instead of losing rows.
                while shared.records.capacity() == 0 && !shared.cancel.is_cancelled() {
                    std::thread::sleep(Duration::from_micros(200));
                }
                if shared.live.in_flight.load(Relaxed) >= cap {
                    shed += 1;
                    shared.live.shed.fetch_add(1, Relaxed);
                    continue;
                }
                let opening = (!template.keepalive)
                    .then(|| client::open(template, plan.next_source(&mut next_source)));
                shared.live.in_flight.fetch_add(1, Relaxed);
                shared.live.sent.fetch_add(1, Relaxed);
                let arrival = Arrival {
                    // A share numbers by the global arrival: unique across
                    // the shares (with gaps where one shed).
                    seq: match plan.share {
                        Some(_) => index,
                        None => shared.seq.fetch_add(1, Relaxed),
                    },
                    scheduled_ns: due_ns + shared.schedule_offset_ns,
                    opening,
                };
                // Fails only if that worker is gone, which fails the run.
                let _ = lanes[(dealt % lanes.len() as u64) as usize].send(arrival);
                dealt += 1;
            }
            Next::WaitUntil(due_ns) => {
                let at = shared.schedule_start + Duration::from_nanos(due_ns);
                let now = Instant::now();
                if at > now {
                    std::thread::sleep((at - now).min(PACER_NAP));
                }
            }
            Next::Done => return shed,
        }
    }
}

/// A worker in the open model: take each arrival the pacer started and
/// run the rest of it as a task of its own, until the pacer is done.
async fn open_model(
    shared: &Arc<Shared>,
    w: &Rc<Worker>,
    mut inbox: mpsc::UnboundedReceiver<Arrival>,
) {
    while let Some(arrival) = inbox.recv().await {
        w.pending.set(w.pending.get() + 1);
        let (shared, w) = (shared.clone(), w.clone());
        tokio::task::spawn_local(async move { one_request(&shared, &w, Some(arrival)).await });
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

/// Make one request, record it, and account for it. Always records.
/// `arrival` is what the pacer started (open model); without one (closed
/// model) the request is numbered and counted as sent here.
async fn one_request(shared: &Shared, w: &Worker, arrival: Option<Arrival>) {
    let plan = &shared.plan;
    let (seq, scheduled_ns, opening) = match arrival {
        Some(a) => (a.seq, Some(a.scheduled_ns), a.opening),
        None => {
            shared.live.sent.fetch_add(1, Relaxed);
            (shared.seq.fetch_add(1, Relaxed), None, None)
        }
    };
    // A source address only for a socket this worker opens itself.
    let source = if opening.is_none() {
        let mut turn = w.next_source.get();
        let ip = plan.next_source(&mut turn);
        w.next_source.set(turn);
        ip
    } else {
        None
    };
    let m = client::request(&plan.template, &w.client, source, opening).await;

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
        local_port: m.local_port,
        remote_addr: m.remote_addr,
        worker: None,
    };
    w.stats
        .borrow_mut()
        .record(&m, record.lateness_ns(), record.start_ns, end_ns);
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
