//! Open-model pacing arithmetic: when each request is due.
//!
//! Request `i` (counting from 0 over the whole run) is due at
//! `i / rate` seconds after the start, whatever happened to the requests
//! before it — that is what keeps coordinated omission out. One schedule
//! serves the whole run: the engine's pacer thread owns it and hands each
//! due arrival to a worker (see `engine`).
//!
//! Pure: no clock, no sockets. The pacer asks "which arrivals are due by
//! `now`?" and fires every one of them, stamped with its own due instant,
//! not with the instant it was picked up.
//!
//! Several load hosts (in-cluster workers) share one open model by
//! interleaving: worker `w` of `n` takes global arrivals `w`, `w + n`,
//! `w + 2n`, ... ([`Schedule::share`]), each due at its own global
//! instant, so the workers together send the planned rate and every
//! request keeps one `seq` and one `scheduled_ns` on the run's clock.
//!
//! Also [`split_evenly`], the closed model's share of the in-flight cap
//! per worker.

/// The run's arrival schedule.
#[derive(Clone, Debug)]
pub struct Schedule {
    /// Requests per second over the whole run (> 0).
    rate: f64,
    /// The next arrival not fired yet.
    next: u64,
    /// Global arrival count limit (`--requests`), if any.
    max_requests: Option<u64>,
    /// No arrival is due at or after this offset (`--duration`), if any.
    end_ns: Option<u64>,
    /// Global arrivals between two of this schedule's (1: all of them).
    stride: u64,
}

/// What the schedule says at a given instant.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Next {
    /// Arrival with this global index is due at this offset (ns) — at or
    /// before the instant asked about.
    Due { index: u64, due_ns: u64 },
    /// Nothing due yet; the next arrival is due at this offset.
    WaitUntil(u64),
    /// No arrivals left.
    Done,
}

impl Schedule {
    pub fn new(rate: f64, max_requests: Option<u64>, end_ns: Option<u64>) -> Self {
        assert!(rate > 0.0 && rate.is_finite(), "rate must be positive");
        Schedule {
            rate,
            next: 0,
            max_requests,
            end_ns,
            stride: 1,
        }
    }

    /// Worker `worker`'s share (0-based) of `workers` interleaved shares
    /// of the schedule: global arrivals `worker`, `worker + workers`, ...
    /// `rate`, `max_requests` and `end_ns` are the whole run's.
    pub fn share(
        rate: f64,
        max_requests: Option<u64>,
        end_ns: Option<u64>,
        worker: u64,
        workers: u64,
    ) -> Self {
        assert!(
            workers > 0 && worker < workers,
            "worker {worker} of {workers}"
        );
        Schedule {
            next: worker,
            stride: workers,
            ..Schedule::new(rate, max_requests, end_ns)
        }
    }

    /// The due offset of global arrival `index`, in ns from the start.
    pub fn due_ns(&self, index: u64) -> u64 {
        // f64 is exact to the nanosecond for runs shorter than ~104 days.
        (index as f64 * 1e9 / self.rate).round() as u64
    }

    /// Peek at the next arrival relative to `now_ns`, consuming it if due.
    pub fn poll(&mut self, now_ns: u64) -> Next {
        let index = self.next;
        if self.max_requests.is_some_and(|max| index >= max) {
            return Next::Done;
        }
        let due_ns = self.due_ns(index);
        if self.end_ns.is_some_and(|end| due_ns >= end) {
            return Next::Done;
        }
        if due_ns <= now_ns {
            self.next += self.stride;
            Next::Due { index, due_ns }
        } else {
            Next::WaitUntil(due_ns)
        }
    }
}

/// Split `total` into `parts` shares that differ by at most one, larger
/// first (concurrency per worker in the closed model).
pub fn split_evenly(total: usize, parts: usize) -> Vec<usize> {
    (0..parts)
        .map(|i| total / parts + usize::from(i < total % parts))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn drain(s: &mut Schedule, now: u64) -> Vec<(u64, u64)> {
        let mut out = vec![];
        while let Next::Due { index, due_ns } = s.poll(now) {
            out.push((index, due_ns));
        }
        out
    }

    #[test]
    fn every_arrival_due_by_now_fires_stamped_with_its_own_instant() {
        // 1000 rps: one every 1 ms. A wake 3.5 ms late fires 4 at once.
        let mut s = Schedule::new(1000.0, None, None);
        let fired = drain(&mut s, 3_500_000);
        assert_eq!(
            fired,
            vec![(0, 0), (1, 1_000_000), (2, 2_000_000), (3, 3_000_000)]
        );
        assert_eq!(s.poll(3_500_000), Next::WaitUntil(4_000_000));
    }

    #[test]
    fn interleaved_shares_together_are_the_whole_schedule_exactly_once() {
        let whole: Vec<(u64, u64)> = drain(&mut Schedule::new(300.0, Some(100), None), u64::MAX);
        let mut merged: Vec<(u64, u64)> = (0..3)
            .flat_map(|w| drain(&mut Schedule::share(300.0, Some(100), None, w, 3), u64::MAX))
            .collect();
        merged.sort();
        assert_eq!(merged, whole);
        // Worker 1 of 3 at 300/s: every third arrival, 10 ms apart.
        let mut one = Schedule::share(300.0, None, Some(35_000_000), 1, 3);
        let fired = drain(&mut one, u64::MAX);
        assert_eq!(
            fired.iter().map(|(i, _)| *i).collect::<Vec<_>>(),
            [1, 4, 7, 10]
        );
        assert_eq!(fired[1].1 - fired[0].1, 10_000_000);
    }

    #[test]
    fn arrivals_are_numbered_without_gap_and_spaced_by_the_rate() {
        let mut s = Schedule::new(500.0, Some(100), None);
        let all = drain(&mut s, u64::MAX / 2);
        assert_eq!(s.poll(u64::MAX / 2), Next::Done);
        assert_eq!(all.len(), 100);
        for (i, (index, due)) in all.iter().enumerate() {
            assert_eq!(*index, i as u64);
            assert_eq!(*due, i as u64 * 2_000_000);
        }
    }

    #[test]
    fn duration_bounds_the_schedule_exclusively() {
        // 10 rps for 1 s: arrivals at 0, 100 ms, …, 900 ms — ten, not eleven.
        let mut s = Schedule::new(10.0, None, Some(1_000_000_000));
        assert_eq!(drain(&mut s, u64::MAX / 2).len(), 10);
        assert_eq!(s.poll(u64::MAX / 2), Next::Done);
    }

    #[test]
    fn request_count_and_duration_stop_at_whichever_comes_first() {
        let mut s = Schedule::new(10.0, Some(3), Some(1_000_000_000));
        assert_eq!(drain(&mut s, u64::MAX / 2).len(), 3);
    }

    #[test]
    fn fractional_rates_are_honoured() {
        let s = Schedule::new(0.5, None, None);
        assert_eq!(s.due_ns(3), 6_000_000_000);
        let s = Schedule::new(3.0, None, None);
        assert_eq!(s.due_ns(1), 333_333_333);
    }

    #[test]
    fn a_large_index_keeps_nanosecond_precision() {
        let s = Schedule::new(10_000.0, None, None);
        // 24 h at 10k rps.
        assert_eq!(s.due_ns(864_000_000), 86_400_000_000_000);
    }

    #[test]
    fn split_evenly_sums_and_differs_by_at_most_one() {
        for total in 0..50 {
            for parts in 1..7 {
                let v = split_evenly(total, parts);
                assert_eq!(v.iter().sum::<usize>(), total);
                assert!(v.iter().max().unwrap() - v.iter().min().unwrap() <= 1);
            }
        }
    }
}
