//! The report's colours and the order things are coloured in: one
//! colour per version (in the order the versions first answered), one
//! class per cause, the failing outcomes that occur. Shared by the chart
//! and the legend so they cannot disagree.

use crate::analyse::Bucket;
use crate::attribution::Cause;
use crate::load::outcome::Outcome;
use std::collections::BTreeMap;

const VERSION_COLOURS: [&str; 8] = [
    "#6baed6", "#fd8d3c", "#74c476", "#9e9ac8", "#969696", "#e7ba52", "#ad494a", "#17becf",
];

/// Versions in the order they first answered (the old one first), then
/// by name.
pub(super) fn versions_in_order(buckets: &[Bucket]) -> Vec<&str> {
    let mut first: BTreeMap<&str, usize> = BTreeMap::new();
    for (i, b) in buckets.iter().enumerate() {
        for v in b.versions.keys() {
            first.entry(v.as_str()).or_insert(i);
        }
    }
    let mut v: Vec<(usize, &str)> = first.into_iter().map(|(k, i)| (i, k)).collect();
    v.sort();
    v.into_iter().map(|(_, k)| k).collect()
}

pub(super) fn version_colour(i: usize) -> &'static str {
    VERSION_COLOURS[i % VERSION_COLOURS.len()]
}

/// Failing outcomes that occur in the buckets, in `Outcome::ALL` order.
pub(super) fn failing_outcomes(buckets: &[Bucket]) -> Vec<Outcome> {
    Outcome::ALL
        .into_iter()
        .filter(|o| *o != Outcome::Ok && buckets.iter().any(|b| b.failed.contains_key(o)))
        .collect()
}

/// The colour class of a cause: short, because every marker and row
/// carries one.
pub(super) fn cause_class(c: Cause) -> &'static str {
    match c {
        Cause::Unexplained => "c0",
        Cause::EndpointLagOnTermination => "c1",
        Cause::KilledInFlight => "c2",
        Cause::PrematureReadiness => "c3",
        Cause::NoReadyEndpoints => "c4",
        Cause::AppError => "c5",
        Cause::ContainerCrash => "c6",
        Cause::Harness => "c7",
    }
}
