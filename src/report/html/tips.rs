//! What the chart's shared tooltip says at any instant, as data the
//! page's script reads: per 100 ms bucket the requests sent, succeeded
//! and failed by outcome, p50/p99 and the versions that answered; and the
//! cluster as a step function (ready endpoints, Pods per state) changing
//! only where a lifecycle event changed it, which keeps an hour-long run
//! small.
//!
//! Not for: drawing (the chart) or anything the reports count (every
//! figure here is one the chart already draws, at one instant).

use crate::analyse::{BUCKET_NS, Bucket};
use crate::timeline::{Lifecycle, Timeline};
use serde::Serialize;
use std::collections::BTreeMap;

/// Everything the tooltip reads, serialised once into the page.
#[derive(Serialize, Debug, PartialEq)]
pub(super) struct Tips {
    /// Bucket width in seconds.
    pub step_s: f64,
    /// Buckets with requests, by index (`start_ns / BUCKET_NS`); an index
    /// missing from the list sent nothing.
    pub buckets: Vec<BucketTip>,
    /// The cluster after each change, in time order.
    pub cluster: Vec<ClusterTip>,
}

/// One bucket as an array, `[i, sent, ok, failed, p50, p99, versions]`
/// (a ten-minute run has 6,000 of them: names would double the bytes).
#[derive(Serialize, Debug, PartialEq)]
pub(super) struct BucketTip(
    /// The bucket's index, `start_ns / BUCKET_NS`.
    pub u64,
    /// Sent.
    pub u64,
    /// Succeeded.
    pub u64,
    /// Failed, by outcome.
    pub BTreeMap<&'static str, u64>,
    /// p50 and p99 in ms, of complete responses.
    pub Option<f64>,
    pub Option<f64>,
    /// Responses per version.
    pub BTreeMap<String, u64>,
);

#[derive(Serialize, Debug, PartialEq)]
pub(super) struct ClusterTip {
    /// Run-clock seconds from which this holds.
    pub t: f64,
    pub ready_endpoints: usize,
    /// Pods per lifecycle state, the states with none left out.
    pub pods: BTreeMap<&'static str, u32>,
}

pub(super) fn tips(buckets: &[Bucket], timeline: &Timeline) -> Tips {
    let ms = |v: Option<f64>| v.map(|v| (v * 100.0).round() / 100.0);
    let buckets = buckets
        .iter()
        .map(|b| {
            BucketTip(
                b.start_ns / BUCKET_NS,
                b.sent,
                b.ok,
                b.failed.iter().map(|(o, n)| (o.as_str(), *n)).collect(),
                ms(b.p50_ms),
                ms(b.p99_ms),
                b.versions.clone(),
            )
        })
        .collect();
    let mut cluster: Vec<ClusterTip> = Vec::new();
    let mut changes: Vec<u64> = timeline.events().iter().map(|e| e.observed_ns).collect();
    changes.dedup();
    for ns in changes {
        let counts = timeline.pods_by_state_at(ns);
        let tip = ClusterTip {
            t: (ns as f64 / 1e6).round() / 1e3,
            ready_endpoints: timeline.ready_endpoints_at(ns),
            pods: [
                Lifecycle::Pending,
                Lifecycle::Running,
                Lifecycle::Ready,
                Lifecycle::Terminating,
            ]
            .into_iter()
            .filter(|l| counts.get(*l) > 0)
            .map(|l| (l.as_str(), counts.get(l)))
            .collect(),
        };
        match cluster.last_mut() {
            Some(last) if last.ready_endpoints == tip.ready_endpoints && last.pods == tip.pods => {}
            Some(last) if last.t == tip.t => *last = tip,
            _ => cluster.push(tip),
        }
    }
    Tips {
        step_s: BUCKET_NS as f64 / 1e9,
        buckets,
        cluster,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::load::outcome::Outcome;
    use crate::timeline::testkit::*;

    #[test]
    fn a_bucket_tip_carries_its_index_counts_outcomes_and_versions() {
        let b = Bucket {
            start_ns: 3 * BUCKET_NS,
            sent: 20,
            ok: 17,
            failed: [(Outcome::ConnectRefused, 3)].into(),
            p50_ms: Some(0.6123),
            p99_ms: None,
            versions: [("1.28.0".to_string(), 17)].into(),
        };
        let t = tips(&[b], &Timeline::new(Vec::new()));
        assert_eq!(t.buckets.len(), 1);
        let tip = &t.buckets[0];
        assert_eq!((tip.0, tip.1, tip.2), (3, 20, 17));
        assert_eq!(tip.3.get("connect_refused"), Some(&3));
        assert_eq!((tip.4, tip.5), (Some(0.61), None));
        assert_eq!(tip.6.get("1.28.0"), Some(&17));
        assert_eq!(
            serde_json::to_string(tip).unwrap(),
            r#"[3,20,17,{"connect_refused":3},0.61,null,{"1.28.0":17}]"#
        );
        assert!(t.cluster.is_empty());
    }

    #[test]
    fn the_cluster_changes_only_where_a_lifecycle_event_changed_it() {
        let mut ev = pod_up(0, "a");
        ev.extend(pod_up(100, "b"));
        ev.extend(pod_down(2_000, "a", 50, 500));
        let timeline = Timeline::new(ev);
        let t = tips(&[], &timeline);
        assert!(t.cluster.windows(2).all(|w| w[0].t < w[1].t));
        assert!(
            t.cluster
                .windows(2)
                .all(|w| (w[0].ready_endpoints, &w[0].pods) != (w[1].ready_endpoints, &w[1].pods))
        );
        let at = |s: f64| t.cluster.iter().rev().find(|c| c.t <= s).unwrap();
        assert_eq!(at(1.0).ready_endpoints, 2);
        assert_eq!(at(1.0).pods.get("ready"), Some(&2));
        assert_eq!(at(2.3).pods.get("terminating"), Some(&1));
        assert_eq!(at(2.3).ready_endpoints, 1);
        assert_eq!(at(3.0).pods.get("terminating"), None);
    }
}
