//! Counters and HDR histograms, one set per worker, merged at the end.
//!
//! Each worker owns its `Stats` outright (no locks on the hot path);
//! `LiveCounters` are the few shared atomics the status line reads.

use super::client::Measured;
use super::outcome::Outcome;
use hdrhistogram::Histogram;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// Microsecond histograms from 1 µs to 1 hour at 3 significant digits.
fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 3_600_000_000, 3).expect("static histogram bounds are valid")
}

#[derive(Clone, Debug)]
pub struct Stats {
    pub outcomes: [u64; Outcome::ALL.len()],
    /// Arrivals refused because the in-flight cap was reached: never sent,
    /// never queued, counted here.
    pub shed: u64,
    /// Successful requests, from the actual start to the last byte.
    pub latency_us: Histogram<u64>,
    /// Successful requests, from the *scheduled* instant to the last byte:
    /// what a user arriving on schedule would have waited.
    pub response_us: Histogram<u64>,
    /// Every request: actual start minus scheduled instant.
    pub lateness_us: Histogram<u64>,
    pub connect_us: Histogram<u64>,
    pub ttfb_us: Histogram<u64>,
    /// Failures by errno name, for the summary.
    pub errnos: BTreeMap<String, u64>,
    /// Requests that opened a new TCP connection.
    pub connections: u64,
    /// End of the last request, ns from the run start.
    pub last_end_ns: u64,
    /// First and last actual start, ns from the run start (`u64::MAX` and
    /// 0 before any request): the span over which the rate was achieved.
    pub first_start_ns: u64,
    pub last_start_ns: u64,
}

impl Default for Stats {
    fn default() -> Self {
        Stats {
            outcomes: [0; Outcome::ALL.len()],
            shed: 0,
            latency_us: histogram(),
            response_us: histogram(),
            lateness_us: histogram(),
            connect_us: histogram(),
            ttfb_us: histogram(),
            errnos: BTreeMap::new(),
            connections: 0,
            last_end_ns: 0,
            first_start_ns: u64::MAX,
            last_start_ns: 0,
        }
    }
}

fn us(d: std::time::Duration) -> u64 {
    d.as_micros().min(u64::MAX as u128) as u64
}

impl Stats {
    pub fn record(&mut self, m: &Measured, lateness_ns: u64, start_ns: u64, end_ns: u64) {
        self.started(start_ns);
        self.outcomes[m.outcome.index()] += 1;
        self.lateness_us.saturating_record(lateness_ns / 1000);
        if m.new_connection {
            self.connections += 1;
        }
        if let Some(c) = m.connect {
            self.connect_us.saturating_record(us(c));
        }
        if m.outcome == Outcome::Ok {
            self.latency_us.saturating_record(us(m.total));
            self.response_us
                .saturating_record(us(m.total) + lateness_ns / 1000);
            if let Some(t) = m.ttfb {
                self.ttfb_us.saturating_record(us(t));
            }
        }
        if let Some(e) = m.errno {
            let name = nix::errno::Errno::from_raw(e).to_string();
            let name = name.split(':').next().unwrap_or(&name).to_string();
            *self.errnos.entry(name).or_default() += 1;
        }
        self.last_end_ns = self.last_end_ns.max(end_ns);
    }

    /// Record one row read back from `requests.csv` (`baton report`, and
    /// `baton run`'s own summary, which is computed from the file so the
    /// two agree to the byte). Counts and histograms as [`Stats::record`].
    pub fn record_row(&mut self, r: &super::record::RequestRecord) {
        let lateness_ns = r.lateness_ns();
        self.started(r.start_ns);
        self.outcomes[r.outcome.index()] += 1;
        self.lateness_us.saturating_record(lateness_ns / 1000);
        if let Some(c) = r.connect_us {
            self.connect_us.saturating_record(c);
        }
        if r.outcome == Outcome::Ok {
            self.latency_us.saturating_record(r.total_us);
            self.response_us
                .saturating_record(r.total_us + lateness_ns / 1000);
            if let Some(t) = r.ttfb_us {
                self.ttfb_us.saturating_record(t);
            }
        }
    }

    /// Count per outcome by name, every outcome present (for summaries).
    pub fn outcome_counts(&self) -> BTreeMap<String, u64> {
        Outcome::ALL
            .iter()
            .map(|o| (o.as_str().to_string(), self.count(*o)))
            .collect()
    }

    pub fn merge(&mut self, other: &Stats) {
        for (a, b) in self.outcomes.iter_mut().zip(other.outcomes) {
            *a += b;
        }
        self.shed += other.shed;
        for (a, b) in [
            (&mut self.latency_us, &other.latency_us),
            (&mut self.response_us, &other.response_us),
            (&mut self.lateness_us, &other.lateness_us),
            (&mut self.connect_us, &other.connect_us),
            (&mut self.ttfb_us, &other.ttfb_us),
        ] {
            a.add(b).expect("histograms share bounds");
        }
        for (k, v) in &other.errnos {
            *self.errnos.entry(k.clone()).or_default() += v;
        }
        self.connections += other.connections;
        self.last_end_ns = self.last_end_ns.max(other.last_end_ns);
        self.first_start_ns = self.first_start_ns.min(other.first_start_ns);
        self.last_start_ns = self.last_start_ns.max(other.last_start_ns);
    }

    fn started(&mut self, start_ns: u64) {
        self.first_start_ns = self.first_start_ns.min(start_ns);
        self.last_start_ns = self.last_start_ns.max(start_ns);
    }

    /// What the schedule judgement needs; `planned_rps` from the plan.
    pub fn schedule_facts(
        &self,
        planned_rps: Option<f64>,
    ) -> crate::verdict::schedule::ScheduleFacts {
        crate::verdict::schedule::ScheduleFacts {
            planned_rps,
            sent: self.sent(),
            shed: self.shed,
            first_start_ns: self.first_start_ns.min(self.last_start_ns),
            last_start_ns: self.last_start_ns,
            lateness_p99: std::time::Duration::from_micros(
                self.lateness_us.value_at_quantile(0.99),
            ),
        }
    }

    pub fn sent(&self) -> u64 {
        self.outcomes.iter().sum()
    }

    pub fn count(&self, o: Outcome) -> u64 {
        self.outcomes[o.index()]
    }

    /// Failures the target answers for (`client_resource` excluded).
    pub fn failed(&self) -> u64 {
        Outcome::ALL
            .iter()
            .filter(|o| o.is_target_failure())
            .map(|o| self.count(*o))
            .sum()
    }
}

/// Shared counters the live status line reads. Relaxed: they are a view,
/// not a ledger; the ledger is `Stats` and `requests.csv`.
#[derive(Debug, Default)]
pub struct LiveCounters {
    pub sent: AtomicU64,
    pub outcomes: [AtomicU64; Outcome::ALL.len()],
    pub shed: AtomicU64,
    pub in_flight: AtomicU64,
}

impl LiveCounters {
    pub fn finished(&self, o: Outcome) {
        self.outcomes[o.index()].fetch_add(1, Relaxed);
    }

    pub fn snapshot(&self) -> LiveSnapshot {
        let outcomes = std::array::from_fn(|i| self.outcomes[i].load(Relaxed));
        LiveSnapshot {
            sent: self.sent.load(Relaxed),
            outcomes,
            shed: self.shed.load(Relaxed),
            in_flight: self.in_flight.load(Relaxed),
        }
    }
}

#[derive(Clone, Copy, Debug, Default)]
pub struct LiveSnapshot {
    pub sent: u64,
    pub outcomes: [u64; Outcome::ALL.len()],
    pub shed: u64,
    pub in_flight: u64,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::load::outcome::Phase;
    use std::time::{Duration, Instant};

    fn measured(outcome: Outcome, total_ms: u64) -> Measured {
        Measured {
            start: Instant::now(),
            connect: Some(Duration::from_micros(50)),
            ttfb: Some(Duration::from_millis(total_ms / 2)),
            total: Duration::from_millis(total_ms),
            status: Some(200),
            outcome,
            phase: Phase::None,
            errno: None,
            backend: None,
            version: None,
            new_connection: true,
            local_port: None,
            remote_addr: None,
        }
    }

    #[test]
    fn merge_adds_counts_and_histograms() {
        let mut a = Stats::default();
        let mut b = Stats::default();
        a.record(&measured(Outcome::Ok, 10), 0, 1, 5);
        b.record(&measured(Outcome::Ok, 20), 1_000_000, 2, 9);
        b.record(&measured(Outcome::Reset, 1), 0, 3, 7);
        b.shed = 2;
        a.merge(&b);
        assert_eq!(a.sent(), 3);
        assert_eq!(a.failed(), 1);
        assert_eq!(a.shed, 2);
        assert_eq!(a.latency_us.len(), 2);
        assert_eq!(a.lateness_us.len(), 3);
        assert_eq!(a.last_end_ns, 9);
        // Response time includes the 1 ms lateness, latency does not.
        assert!(a.response_us.max() >= 21_000);
        assert!(a.latency_us.max() < 21_000);
    }

    #[test]
    fn client_resource_errors_are_not_target_failures() {
        let mut s = Stats::default();
        let mut m = measured(Outcome::ClientResource, 0);
        m.errno = Some(nix::errno::Errno::EMFILE as i32);
        s.record(&m, 0, 0, 0);
        assert_eq!(s.failed(), 0);
        assert_eq!(s.count(Outcome::ClientResource), 1);
        assert_eq!(s.errnos.get("EMFILE"), Some(&1));
    }
}
