//! Which Pods were answering when: the run's own responses, kept as
//! evidence of who was listening. A Pod that accepted a new connection
//! and answered it shortly before an instant, and again shortly after,
//! was listening in between, so it did not refuse a connection then.
//! Through a Service VIP a refusal does not say which Pod refused it;
//! this is what rules Pods out (found against the sandbox's ground truth:
//! of three new Pods, the one that had crashed refused, while the two
//! that a nearer event put first went on answering).
//!
//! Memory stays small however long the run: answers are kept as stretches
//! (an answer within [`GAP_NS`] of the last one extends its stretch), not
//! one by one.
//!
//! Not for: requests on a reused (keep-alive) connection, which say
//! nothing about the listener; the caller passes fresh connections only.
//! Nor for anything but refusals: a Pod that answered around a request
//! may still have cut that request off mid-exchange.

use super::EXIT_REPORT_SLACK_NS;
use crate::cluster::event::EventKind;
use crate::timeline::Timeline;
use std::collections::HashMap;

/// The longest gap between two answers of one Pod that still shows it
/// listening throughout. Far shorter than a container takes to stop and
/// listen again (the kubelet restarts it, the app starts); at 200
/// requests/s over a few Pods, each answers every 20 ms or so.
pub const GAP_NS: u64 = 250_000_000;

/// Per Pod, the stretches `[first, last]` (request start times) over which
/// it answered new connections with no gap longer than [`GAP_NS`].
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Answers {
    stretches: HashMap<String, Vec<(u64, u64)>>,
}

impl Answers {
    /// `pod` answered a request on a new connection that started at
    /// `start_ns`. Rows may come somewhat out of start order.
    pub fn add(&mut self, pod: &str, start_ns: u64) {
        let v = match self.stretches.get_mut(pod) {
            Some(v) => v,
            None => self.stretches.entry(pod.to_string()).or_default(),
        };
        // The first stretch that ends at or after `start_ns - GAP`: the
        // only ones it can join are this one and the next.
        let i = v.partition_point(|&(_, last)| last + GAP_NS < start_ns);
        let joins = |s: &(u64, u64)| s.0 <= start_ns + GAP_NS && start_ns <= s.1 + GAP_NS;
        match v.get(i) {
            Some(s) if joins(s) => {
                let s = &mut v[i];
                s.0 = s.0.min(start_ns);
                s.1 = s.1.max(start_ns);
                // It may now reach the next stretch.
                if let Some(&(next_first, next_last)) = v.get(i + 1)
                    && next_first <= v[i].1 + GAP_NS
                {
                    v[i].1 = v[i].1.max(next_last);
                    v.remove(i + 1);
                }
            }
            _ => v.insert(i, (start_ns, start_ns)),
        }
    }

    /// `pod` answered new connections both before and after `at`, with no
    /// gap longer than [`GAP_NS`] between.
    pub fn around(&self, pod: &str, at: u64) -> bool {
        let Some(v) = self.stretches.get(pod) else {
            return false;
        };
        let i = v.partition_point(|&(_, last)| last <= at);
        v.get(i).is_some_and(|&(first, _)| first < at)
    }

    /// `pod` was listening at `at`: it answered around it, and no
    /// container of it started near it (a container that crashed and
    /// came back between two answers was not listening all along).
    pub fn listening(&self, t: &Timeline, pod: &str, at: u64) -> bool {
        self.around(pod, at)
            && !t.pod_events(pod).any(|e| {
                e.kind == EventKind::ContainerStarted
                    && e.observed_ns + GAP_NS > at
                    && e.observed_ns <= at + GAP_NS + EXIT_REPORT_SLACK_NS
            })
    }

    /// How many stretches are kept (for the memory bound's test).
    #[cfg(test)]
    fn len(&self) -> usize {
        self.stretches.values().map(Vec::len).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: u64 = 1_000_000;

    #[test]
    fn steady_answers_make_one_stretch_and_a_long_silence_splits_it() {
        let mut a = Answers::default();
        for ms in (0..2000).step_by(20) {
            a.add("p", ms * MS);
        }
        for ms in (3000..4000).step_by(20) {
            a.add("p", ms * MS);
        }
        assert_eq!(a.len(), 2);
        assert!(a.around("p", 1000 * MS));
        assert!(!a.around("p", 2500 * MS), "silent for a second");
        assert!(a.around("p", 3500 * MS));
    }

    #[test]
    fn answers_out_of_order_join_the_stretches_they_bridge() {
        let mut a = Answers::default();
        a.add("p", 0);
        a.add("p", 400 * MS);
        assert_eq!(a.len(), 2);
        a.add("p", 200 * MS);
        assert_eq!(a.len(), 1);
        assert!(a.around("p", 300 * MS));
    }

    #[test]
    fn only_an_instant_with_answers_on_both_sides_counts() {
        let mut a = Answers::default();
        a.add("p", 100 * MS);
        a.add("p", 200 * MS);
        assert!(a.around("p", 150 * MS));
        assert!(!a.around("p", 100 * MS), "no answer before");
        assert!(!a.around("p", 250 * MS), "no answer after");
        assert!(!a.around("q", 150 * MS), "another Pod");
    }
}
