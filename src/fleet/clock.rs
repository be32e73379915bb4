//! One clock for every worker: each worker's offset to the coordinator's
//! clock, estimated from ping round trips over the same channel as the
//! records (NTP's arithmetic, Cristian's choice: the sample with the
//! shortest round trip is kept, since the shorter the trip the less room
//! for asymmetry), with an error bound of half that round trip.
//!
//! A ping carries the coordinator's send time `t0`; the worker answers
//! with when it received it `t1` and when it answered `t2`, on its own
//! clock; the coordinator notes when the answer arrived `t3`. Then the
//! worker's clock minus the coordinator's is `((t1 - t0) + (t2 - t3)) / 2`
//! and the trip took `(t3 - t0) - (t2 - t1)`.
//!
//! Pure: samples in, the offset out. Not for: sending the pings
//! ([`super::wire`]).

use serde::{Deserialize, Serialize};

/// One ping's four times, ns on each side's own clock (`t0`, `t3`: the
/// coordinator's; `t1`, `t2`: the worker's).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Sample {
    pub t0: i64,
    pub t1: i64,
    pub t2: i64,
    pub t3: i64,
}

impl Sample {
    /// The round trip without the worker's own time to answer.
    pub fn round_trip_ns(&self) -> i64 {
        (self.t3 - self.t0) - (self.t2 - self.t1)
    }

    /// The worker's clock minus the coordinator's, as this sample sees it.
    pub fn offset_ns(&self) -> i64 {
        ((self.t1 - self.t0) + (self.t2 - self.t3)) / 2
    }
}

/// A worker's clock against the coordinator's.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Offset {
    /// Worker clock minus coordinator clock: subtract it from a worker's
    /// time to get the coordinator's.
    pub offset_ns: i64,
    /// The true offset is within this of `offset_ns` (half the kept
    /// sample's round trip).
    pub error_ns: u64,
    /// Samples it was chosen from.
    pub samples: usize,
}

impl Offset {
    /// `worker_ns` (the worker's clock) on the coordinator's clock.
    pub fn to_coordinator(&self, worker_ns: i64) -> i64 {
        worker_ns - self.offset_ns
    }
}

/// The offset from the sample with the shortest round trip; `None` when
/// no sample is usable (a negative round trip means a clock stepped in
/// the middle of it).
pub fn estimate(samples: &[Sample]) -> Option<Offset> {
    let usable: Vec<&Sample> = samples
        .iter()
        .filter(|s| s.round_trip_ns() >= 0 && s.t3 >= s.t0 && s.t2 >= s.t1)
        .collect();
    let best = usable.iter().min_by_key(|s| s.round_trip_ns())?;
    Some(Offset {
        offset_ns: best.offset_ns(),
        error_ns: (best.round_trip_ns() as u64).div_ceil(2),
        samples: usable.len(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A worker whose clock is `skew` ahead, a trip of `out` there and
    /// `back` back, `work` to answer, sent at coordinator time `at`.
    fn ping(at: i64, skew: i64, out: i64, work: i64, back: i64) -> Sample {
        let t1 = at + out + skew;
        let t2 = t1 + work;
        Sample {
            t0: at,
            t1,
            t2,
            t3: at + out + work + back,
        }
    }

    #[test]
    fn a_symmetric_trip_gives_the_skew_exactly() {
        let s = ping(1_000, 5_000_000, 200_000, 50_000, 200_000);
        assert_eq!(s.offset_ns(), 5_000_000);
        assert_eq!(s.round_trip_ns(), 400_000);
    }

    #[test]
    fn the_shortest_trip_is_kept_and_bounds_the_error_of_an_asymmetric_one() {
        let skew = -3_000_000;
        let samples = [
            ping(0, skew, 9_000_000, 10_000, 1_000_000),
            // Asymmetric but short: off by (out - back) / 2 = 100 us,
            // within half its 400 us trip.
            ping(50_000_000, skew, 300_000, 10_000, 100_000),
            ping(90_000_000, skew, 2_000_000, 10_000, 2_000_000),
        ];
        let o = estimate(&samples).unwrap();
        assert_eq!(o.samples, 3);
        assert_eq!(o.error_ns, 200_000);
        assert_eq!(o.offset_ns, skew + 100_000);
        assert!((o.offset_ns - skew).unsigned_abs() <= o.error_ns);
        // A worker time maps back onto the coordinator's clock.
        assert_eq!(o.to_coordinator(1_000 + skew + 100_000), 1_000);
    }

    #[test]
    fn a_sample_spanning_a_clock_step_is_not_used() {
        let stepped = Sample {
            t0: 0,
            t1: 10,
            t2: 5,
            t3: 20,
        };
        assert_eq!(estimate(&[stepped]), None);
        assert_eq!(estimate(&[]), None);
    }
}
