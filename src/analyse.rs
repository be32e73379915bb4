//! One streaming pass over `requests.csv`: per-bucket counts and latency
//! quantiles (for `timeline.csv` and the report), the failed requests
//! (for attribution), the longest disruption, and who answered after the
//! rollout settled.
//!
//! Reads the file rather than the engine's memory so that `baton run` and
//! `baton report DIR` compute the same thing from the same bytes, and so
//! memory stays flat however long the run: buckets are closed and their
//! latencies dropped as the pass moves on; only failures are kept whole.
//!
//! Not for: attributing failures or judging (see `attribution`, `verdict`).

use crate::attribution::{Answers, FailedRequest};
use crate::load::outcome::Outcome;
use crate::load::record::RequestRecord;
use crate::rundir::{RunDirError, requests};
use std::collections::{BTreeMap, HashMap};
use std::path::Path;

/// The width of a `timeline.csv` bucket.
pub const BUCKET_NS: u64 = 100_000_000;
/// The resolution of the disruption measure.
const SLOT_NS: u64 = 1_000_000;

/// One bucket of requests, by the instant they started.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Bucket {
    pub start_ns: u64,
    pub sent: u64,
    pub ok: u64,
    /// Failed requests per outcome (`ok` never appears).
    pub failed: BTreeMap<Outcome, u64>,
    /// Of requests that got a complete response, from their start.
    pub p50_ms: Option<f64>,
    pub p99_ms: Option<f64>,
    /// Responses per version (requests whose version was read).
    pub versions: BTreeMap<String, u64>,
}

impl Bucket {
    pub fn failed_total(&self) -> u64 {
        self.failed.values().sum()
    }

    /// Failed requests the target caused: not the load host's own
    /// (`client_resource`), which are never blamed on the target.
    pub fn target_failed(&self) -> u64 {
        self.failed
            .iter()
            .filter(|(o, _)| o.is_target_failure())
            .map(|(_, n)| n)
            .sum()
    }
}

/// The longest stretch with no successful response while requests were
/// failing: from the last success before a failure to the first after.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Disruption {
    pub from_ns: u64,
    pub to_ns: u64,
}

impl Disruption {
    pub fn len_ns(&self) -> u64 {
        self.to_ns - self.from_ns
    }
}

#[derive(Clone, Debug, Default)]
pub struct Analysis {
    pub rows: u64,
    pub ok: u64,
    /// Target failures (every outcome but `ok` and `client_resource`).
    pub failed: u64,
    pub client_resource: u64,
    pub buckets: Vec<Bucket>,
    /// Every non-ok request (client_resource included: attribution names
    /// it `harness`), in `seq` order.
    pub failures: Vec<FailedRequest>,
    pub disruption: Option<Disruption>,
    /// Responses per version among requests started before `before_ns`
    /// (see [`analyse`]): who answered before the rollout began.
    pub versions_before: BTreeMap<String, u64>,
    /// Responses per version among requests started at or after
    /// `settled_ns` (see [`analyse`]).
    pub versions_after_settled: BTreeMap<String, u64>,
    /// Responses per backend (Pod) after `settled_ns`: the spread.
    pub backends_after_settled: BTreeMap<String, u64>,
    /// Per [`Marks::windows`] entry: responses per version among requests
    /// started in it.
    pub versions_in_windows: Vec<BTreeMap<String, u64>>,
    /// Counts per outcome and the latency, response-time and lateness
    /// histograms, from the rows (the same figures the engine kept).
    pub stats: crate::load::stats::Stats,
    /// Per [`Marks::probes`] entry: the start of the first request that Pod
    /// answered in the probe's window (a response naming it as backend).
    pub first_answers: Vec<Option<u64>>,
    /// The earliest start of any request: when the load was running.
    pub first_start_ns: Option<u64>,
    /// Which Pod answered new connections when (responses naming their
    /// backend, on a connection of their own): who was listening, for
    /// attribution to rule Pods out of a refusal.
    pub answers: Answers,
    /// Per in-cluster worker (the `worker` column): its requests' counts
    /// and histograms, as [`Analysis::stats`] for the whole run. Empty
    /// when the load came from this host.
    pub by_worker: BTreeMap<u32, crate::load::stats::Stats>,
}

/// The instants that split a run for the version and spread figures, and
/// the endpoints whose first answer the pass looks for.
#[derive(Clone, Debug, Default)]
pub struct Marks {
    /// When the rollout began (the first step): responses before it show
    /// the starting version.
    pub before_ns: Option<u64>,
    /// When the rollout had settled: responses after it should all come
    /// from the final version, spread over the final Pods.
    pub settled_ns: Option<u64>,
    /// Endpoints that became routable during the run: the pass finds the
    /// first request each Pod answered while routable
    /// ([`Analysis::first_answers`], in the same order).
    pub probes: Vec<Probe>,
    /// `[from_ns, to_ns)` spans (open-ended when `None`) whose responses
    /// are counted per version ([`Analysis::versions_in_windows`]).
    pub windows: Vec<(u64, Option<u64>)>,
}

/// "When did `pod` first answer a request started in `[from_ns, until_ns)`?"
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Probe {
    pub pod: String,
    pub from_ns: u64,
    pub until_ns: Option<u64>,
}

/// Read `requests.csv` once.
pub fn analyse(requests_csv: &Path, marks: Marks) -> Result<Analysis, RunDirError> {
    let mut acc = Accumulator::new(marks);
    for rec in requests::Reader::open(requests_csv)? {
        acc.add(rec?);
    }
    Ok(acc.finish())
}

/// Folds rows, which arrive roughly in start order (in completion order,
/// per worker), into the analysis.
struct Accumulator {
    a: Analysis,
    marks: Marks,
    /// Buckets still open, by index; closed once the pass is well past
    /// them (rows arrive at most a timeout out of start order).
    open: BTreeMap<u64, (Bucket, Vec<u32>)>,
    /// Per 1 ms slot: did a request that started in it succeed, fail?
    ok_slots: Vec<bool>,
    fail_slots: Vec<bool>,
    max_start_ns: u64,
    /// Indices into `marks.probes` per Pod.
    probes_of: HashMap<String, Vec<usize>>,
}

impl Accumulator {
    fn new(marks: Marks) -> Self {
        let mut probes_of: HashMap<String, Vec<usize>> = HashMap::new();
        for (i, p) in marks.probes.iter().enumerate() {
            probes_of.entry(p.pod.clone()).or_default().push(i);
        }
        Accumulator {
            a: Analysis {
                first_answers: vec![None; marks.probes.len()],
                versions_in_windows: vec![BTreeMap::new(); marks.windows.len()],
                ..Analysis::default()
            },
            probes_of,
            marks,
            open: BTreeMap::new(),
            ok_slots: Vec::new(),
            fail_slots: Vec::new(),
            max_start_ns: 0,
        }
    }

    fn add(&mut self, r: RequestRecord) {
        let a = &mut self.a;
        a.rows += 1;
        a.stats.record_row(&r);
        let ok = r.outcome == Outcome::Ok;
        match r.outcome {
            Outcome::Ok => a.ok += 1,
            Outcome::ClientResource => a.client_resource += 1,
            _ => a.failed += 1,
        }
        if let Some(w) = r.worker {
            a.by_worker.entry(w).or_default().record_row(&r);
        }
        let after = self.marks.settled_ns.is_some_and(|s| r.start_ns >= s);
        let before = self.marks.before_ns.is_some_and(|b| r.start_ns < b);
        if let Some(v) = &r.version {
            if after {
                *a.versions_after_settled.entry(v.to_string()).or_default() += 1;
            }
            if before {
                *a.versions_before.entry(v.to_string()).or_default() += 1;
            }
            for (i, (from, to)) in self.marks.windows.iter().enumerate() {
                if r.start_ns >= *from && to.is_none_or(|t| r.start_ns < t) {
                    *a.versions_in_windows[i].entry(v.to_string()).or_default() += 1;
                }
            }
        }
        if let (true, Some(b)) = (after, &r.backend) {
            *a.backends_after_settled.entry(b.to_string()).or_default() += 1;
        }
        a.first_start_ns = Some(a.first_start_ns.map_or(r.start_ns, |f| f.min(r.start_ns)));
        // A response on a connection of its own (a reused one connects in
        // 0 µs) shows its Pod accepting connections then.
        if let (Some(b), Some(_), Some(1..)) = (&r.backend, r.status, r.connect_us) {
            a.answers.add(b, r.start_ns);
        }
        if let (Some(b), Some(_)) = (&r.backend, r.status)
            && let Some(idx) = self.probes_of.get(&**b)
        {
            for &i in idx {
                let p = &self.marks.probes[i];
                let inside = p.from_ns <= r.start_ns && p.until_ns.is_none_or(|u| r.start_ns < u);
                let first = &mut a.first_answers[i];
                if inside && first.is_none_or(|f| r.start_ns < f) {
                    *first = Some(r.start_ns);
                }
            }
        }
        // Disruption slots: only target outcomes count.
        if r.outcome != Outcome::ClientResource {
            let slot = (r.start_ns / SLOT_NS) as usize;
            let slots = if ok {
                &mut self.ok_slots
            } else {
                &mut self.fail_slots
            };
            if slots.len() <= slot {
                slots.resize(slot + 1, false);
            }
            slots[slot] = true;
        }

        let idx = r.start_ns / BUCKET_NS;
        let (bucket, latencies) = self.open.entry(idx).or_insert_with(|| {
            (
                Bucket {
                    start_ns: idx * BUCKET_NS,
                    ..Bucket::default()
                },
                Vec::new(),
            )
        });
        bucket.sent += 1;
        if ok {
            bucket.ok += 1;
        } else {
            *bucket.failed.entry(r.outcome).or_default() += 1;
        }
        if r.status.is_some() {
            latencies.push(u32::try_from(r.total_us).unwrap_or(u32::MAX));
        }
        if let Some(v) = &r.version {
            *bucket.versions.entry(v.to_string()).or_default() += 1;
        }
        if !ok {
            a.failures.push(FailedRequest::from(&r));
        }
        // Close buckets far enough behind (rows come in completion order,
        // so a start can trail the newest one by about a timeout).
        self.max_start_ns = self.max_start_ns.max(r.start_ns);
        let keep_from = self.max_start_ns.saturating_sub(60_000_000_000) / BUCKET_NS;
        while let Some((&first, _)) = self.open.first_key_value() {
            if first >= keep_from {
                break;
            }
            let (_, (b, lat)) = self.open.pop_first().expect("just seen");
            self.close(b, lat);
        }
    }

    fn close(&mut self, mut b: Bucket, mut latencies: Vec<u32>) {
        if !latencies.is_empty() {
            latencies.sort_unstable();
            b.p50_ms = Some(quantile(&latencies, 0.50));
            b.p99_ms = Some(quantile(&latencies, 0.99));
        }
        self.a.buckets.push(b);
    }

    fn finish(mut self) -> Analysis {
        while let Some((_, (b, lat))) = self.open.pop_first() {
            self.close(b, lat);
        }
        self.a.buckets.sort_by_key(|b| b.start_ns);
        self.a.failures.sort_by_key(|f| f.seq);
        self.a.disruption = longest_disruption(&self.ok_slots, &self.fail_slots);
        self.a
    }
}

/// Nearest-rank quantile of sorted microseconds, in milliseconds.
fn quantile(sorted_us: &[u32], q: f64) -> f64 {
    let rank = ((q * sorted_us.len() as f64).ceil() as usize).clamp(1, sorted_us.len());
    f64::from(sorted_us[rank - 1]) / 1000.0
}

/// The longest span between two slots with a success that has a failure
/// and no success in between. A failure before the first success or after
/// the last runs to the run's edge (its first or last failing slot).
fn longest_disruption(ok: &[bool], fail: &[bool]) -> Option<Disruption> {
    let n = ok.len().max(fail.len());
    let at = |v: &[bool], i: usize| v.get(i).copied().unwrap_or(false);
    let mut best: Option<Disruption> = None;
    let mut last_ok: Option<usize> = None;
    let mut first_fail_since: Option<usize> = None;
    let mut last_fail: usize = 0;
    let mut offer = |from: usize, to: usize| {
        let d = Disruption {
            from_ns: from as u64 * SLOT_NS,
            to_ns: to as u64 * SLOT_NS,
        };
        if best.is_none_or(|b| d.len_ns() > b.len_ns()) {
            best = Some(d);
        }
    };
    for i in 0..n {
        if at(fail, i) {
            first_fail_since.get_or_insert(i);
            last_fail = i;
        }
        if at(ok, i) {
            if let Some(f) = first_fail_since.take() {
                let from = last_ok.unwrap_or(f);
                offer(from, i);
            }
            last_ok = Some(i);
        }
    }
    if let Some(f) = first_fail_since {
        offer(last_ok.unwrap_or(f), last_fail + 1);
    }
    best
}

/// When and how densely the target failed (`client_resource` is the load
/// host's, not counted): `None` when nothing failed.
pub fn failure_figures(
    buckets: &[Bucket],
    failures: &[FailedRequest],
) -> Option<crate::rundir::summary::FailureFigures> {
    use crate::rundir::summary::{FailureFigures, WorstSecond};
    let target = || failures.iter().filter(|f| f.outcome.is_target_failure());
    let first = target().map(|f| f.start_ns).min()?;
    let last = target().map(|f| f.start_ns).max()?;
    let mut seconds: Vec<u64> = target().map(|f| f.start_ns / 1_000_000_000).collect();
    seconds.sort_unstable();
    seconds.dedup();
    // Every window of one second starting at a bucket: buckets are sorted
    // by start, so the window's end moves forward with its start.
    let mut best: Option<(u64, u64, u64)> = None; // (start, sent, failed)
    let (mut end, mut sent, mut failed) = (0usize, 0u64, 0u64);
    for b in buckets {
        while end < buckets.len() && buckets[end].start_ns < b.start_ns + 1_000_000_000 {
            sent += buckets[end].sent;
            failed += buckets[end].target_failed();
            end += 1;
        }
        if best.is_none_or(|(_, _, f)| failed > f) {
            best = Some((b.start_ns, sent, failed));
        }
        sent -= b.sent;
        failed -= b.target_failed();
    }
    let (from, sent, failed) = best?;
    let ms = |ns: u64| ns as f64 / 1e6;
    Some(FailureFigures {
        first_ms: ms(first),
        last_ms: ms(last),
        seconds_with_failures: seconds.len() as u64,
        worst_second: WorstSecond {
            from_ms: ms(from),
            sent,
            failed,
            error_rate: if sent == 0 {
                0.0
            } else {
                (failed as f64 / sent as f64 * 10_000.0).round() / 10_000.0
            },
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::load::outcome::Phase;
    use crate::rundir::REQUESTS_CSV;
    use std::sync::Arc;

    fn row(seq: u64, start_ms: u64, outcome: Outcome, version: Option<&str>) -> RequestRecord {
        RequestRecord {
            seq,
            scheduled_ns: start_ms * 1_000_000,
            start_ns: start_ms * 1_000_000,
            connect_us: Some(100),
            ttfb_us: None,
            total_us: 2_000,
            status: (outcome == Outcome::Ok).then_some(200),
            outcome,
            phase: Phase::None,
            backend: None,
            version: version.map(Arc::from),
            local_port: None,
            remote_addr: None,
            worker: None,
        }
    }

    fn fold(rows: Vec<RequestRecord>, settled: Option<u64>) -> Analysis {
        let mut acc = Accumulator::new(Marks {
            before_ns: Some(100_000_000),
            settled_ns: settled,
            probes: Vec::new(),
            windows: vec![(100_000_000, Some(300_000_000))],
        });
        for r in rows {
            acc.add(r);
        }
        acc.finish()
    }

    #[test]
    fn only_answers_on_a_connection_of_their_own_show_who_was_listening() {
        let answered = |seq, ms, pod: &str, connect_us| RequestRecord {
            backend: Some(Arc::from(pod)),
            connect_us,
            ..row(seq, ms, Outcome::Ok, None)
        };
        let a = fold(
            vec![
                answered(0, 100, "a", Some(100)),
                answered(1, 120, "a", Some(100)),
                // A reused keep-alive connection: the listener may be shut.
                answered(2, 100, "b", Some(0)),
                answered(3, 120, "b", Some(0)),
            ],
            None,
        );
        assert!(a.answers.around("a", 110_000_000));
        assert!(!a.answers.around("b", 110_000_000));
    }

    #[test]
    fn a_probe_finds_the_first_answer_of_its_pod_inside_its_window() {
        let answered = |seq, ms, pod: &str, outcome| RequestRecord {
            backend: Some(Arc::from(pod)),
            status: Some(if outcome == Outcome::Ok { 200 } else { 500 }),
            ..row(seq, ms, outcome, None)
        };
        let probe = |pod: &str, from_ms: u64, until_ms: Option<u64>| Probe {
            pod: pod.into(),
            from_ns: from_ms * 1_000_000,
            until_ns: until_ms.map(|u| u * 1_000_000),
        };
        let mut acc = Accumulator::new(Marks {
            probes: vec![
                probe("a", 100, Some(400)),
                probe("a", 500, None),
                probe("b", 100, None),
            ],
            ..Marks::default()
        });
        for r in [
            answered(0, 50, "a", Outcome::Ok),          // before the window
            answered(1, 300, "a", Outcome::HttpStatus), // an error answered: still an answer
            answered(2, 200, "a", Outcome::Ok),         // out of order, earlier
            answered(3, 450, "a", Outcome::Ok),         // between the windows
            answered(4, 700, "a", Outcome::Ok),
            row(5, 150, Outcome::ConnectRefused, None),
        ] {
            acc.add(r);
        }
        let a = acc.finish();
        assert_eq!(
            a.first_answers,
            [Some(200_000_000), Some(700_000_000), None]
        );
        assert_eq!(a.first_start_ns, Some(50_000_000));
    }

    #[test]
    fn failure_figures_give_the_stretch_the_seconds_and_the_worst_second() {
        // 10 requests/s for 5 s; failures at 1.05 s, 2.25–2.85 s (7), 4.95 s;
        // a harness error at 3.5 s does not count.
        let mut rows = vec![];
        for i in 0..50u64 {
            let ms = i * 100 + 50;
            let outcome = match ms {
                1050 | 4950 => Outcome::ConnectRefused,
                2200..=2900 => Outcome::Reset,
                3550 => Outcome::ClientResource,
                _ => Outcome::Ok,
            };
            rows.push(row(i, ms, outcome, None));
        }
        let a = fold(rows, None);
        let f = failure_figures(&a.buckets, &a.failures).unwrap();
        assert_eq!((f.first_ms, f.last_ms), (1050.0, 4950.0));
        assert_eq!(f.seconds_with_failures, 3, "seconds 1, 2 and 4");
        // 1.9–2.9 s and 2.0–3.0 s both hold all 7: the earliest is named.
        assert_eq!(f.worst_second.from_ms, 1900.0);
        assert_eq!((f.worst_second.failed, f.worst_second.sent), (7, 10));
        assert_eq!(f.worst_second.error_rate, 0.7);
        let none = fold(vec![row(0, 10, Outcome::Ok, None)], None);
        assert_eq!(failure_figures(&none.buckets, &none.failures), None);
    }

    #[test]
    fn buckets_count_by_start_and_split_failures_by_outcome() {
        let a = fold(
            vec![
                row(0, 10, Outcome::Ok, Some("1.27")),
                row(1, 50, Outcome::ConnectRefused, None),
                row(2, 150, Outcome::Ok, Some("1.28")),
            ],
            None,
        );
        assert_eq!(a.buckets.len(), 2);
        assert_eq!(a.buckets[0].sent, 2);
        assert_eq!(a.buckets[0].ok, 1);
        assert_eq!(a.buckets[0].failed[&Outcome::ConnectRefused], 1);
        assert_eq!(a.buckets[0].versions["1.27"], 1);
        assert_eq!(a.buckets[1].start_ns, BUCKET_NS);
        assert_eq!(a.buckets[1].p99_ms, Some(2.0));
        assert_eq!((a.rows, a.ok, a.failed), (3, 2, 1));
        assert_eq!(a.failures.len(), 1);
        assert_eq!(a.failures[0].end_ns, 52_000_000);
    }

    #[test]
    fn harness_errors_are_kept_for_attribution_but_not_counted_as_failed() {
        let a = fold(vec![row(0, 1, Outcome::ClientResource, None)], None);
        assert_eq!((a.failed, a.client_resource), (0, 1));
        assert_eq!(a.failures.len(), 1);
        assert_eq!(a.disruption, None);
    }

    #[test]
    fn disruption_runs_from_the_last_success_before_to_the_first_after() {
        let a = fold(
            vec![
                row(0, 0, Outcome::Ok, None),
                row(1, 5, Outcome::Ok, None),
                row(2, 10, Outcome::ConnectRefused, None),
                row(3, 15, Outcome::Reset, None),
                row(4, 40, Outcome::Ok, None),
                row(5, 45, Outcome::ConnectRefused, None),
                row(6, 50, Outcome::Ok, None),
            ],
            None,
        );
        assert_eq!(
            a.disruption,
            Some(Disruption {
                from_ns: 5_000_000,
                to_ns: 40_000_000
            })
        );
    }

    #[test]
    fn no_failure_means_no_disruption_even_with_gaps_in_sending() {
        let a = fold(
            vec![row(0, 0, Outcome::Ok, None), row(1, 900, Outcome::Ok, None)],
            None,
        );
        assert_eq!(a.disruption, None);
    }

    #[test]
    fn failures_at_the_end_run_to_the_last_failure() {
        let a = fold(
            vec![
                row(0, 0, Outcome::Ok, None),
                row(1, 20, Outcome::Timeout, None),
            ],
            None,
        );
        assert_eq!(a.disruption.unwrap().len_ns(), 21_000_000);
    }

    #[test]
    fn versions_after_settling_count_only_later_starts() {
        let a = fold(
            vec![
                row(0, 10, Outcome::Ok, Some("1.27")),
                row(1, 200, Outcome::Ok, Some("1.28")),
                row(2, 210, Outcome::Ok, Some("1.28")),
            ],
            Some(100_000_000),
        );
        assert_eq!(a.versions_after_settled.len(), 1);
        assert_eq!(a.versions_after_settled["1.28"], 2);
        assert_eq!(a.versions_before.len(), 1);
        assert_eq!(a.versions_before["1.27"], 1);
    }

    #[test]
    fn out_of_order_rows_land_in_their_own_bucket() {
        let a = fold(
            vec![
                row(1, 250, Outcome::Ok, None),
                row(0, 20, Outcome::Ok, None),
            ],
            None,
        );
        let starts: Vec<u64> = a.buckets.iter().map(|b| b.start_ns).collect();
        assert_eq!(starts, vec![0, 2 * BUCKET_NS]);
        assert_eq!(a.failures.len(), 0);
    }

    #[test]
    fn quantiles_use_the_nearest_rank() {
        let v: Vec<u32> = (1..=100).map(|i| i * 1000).collect();
        assert_eq!(quantile(&v, 0.5), 50.0);
        assert_eq!(quantile(&v, 0.99), 99.0);
        assert_eq!(quantile(&[7000], 0.99), 7.0);
    }

    #[test]
    fn a_real_requests_csv_is_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(REQUESTS_CSV);
        std::fs::write(
            &path,
            "seq,scheduled_ns,start_ns,connect_us,ttfb_us,total_us,status,outcome,phase,backend,version\n\
             0,0,100,50,80,120,200,ok,,web-a,1.27\n\
             1,5000000,5000100,,,300,,connect_refused,connect,,\n",
        )
        .unwrap();
        let a = analyse(&path, Marks::default()).unwrap();
        assert_eq!((a.rows, a.ok, a.failed), (2, 1, 1));
        assert_eq!(a.failures[0].phase, Phase::Connect);
        assert_eq!(a.buckets[0].versions["1.27"], 1);
    }

    #[test]
    fn a_corrupt_row_names_its_column() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(REQUESTS_CSV);
        std::fs::write(
            &path,
            "seq,scheduled_ns,start_ns,connect_us,ttfb_us,total_us,status,outcome,phase,backend,version\n\
             0,0,100,50,80,120,200,exploded,,,\n",
        )
        .unwrap();
        let e = analyse(&path, Marks::default()).unwrap_err().to_string();
        assert!(
            e.contains("row 1") && e.contains("outcome") && e.contains("exploded"),
            "{e}"
        );
    }
}
