//! Incidents: failures of one cause close in time, the unit the summary
//! leads with (DESIGN.md: "The summary leads with incidents, not with
//! rows").
//!
//! Grouping is per cause: the failures of one cause, by start time, split
//! wherever two consecutive ones are more than `incident_gap` apart. (Per
//! cause rather than over the interleaved stream, so that one stray
//! failure of another cause does not cut an incident in two.)

use super::cause::{Cause, Confidence};
use super::remedy::{self, Remedy};
use super::{AttributionConfig, FailedRequest, Finding, text};
use crate::timeline::Timeline;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// Failures close in time with one cause.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Incident {
    /// 1-based, in the order of the list.
    pub id: u32,
    pub cause: Cause,
    /// Start time of its first failure.
    pub first_ns: u64,
    /// Start time of its last failure.
    pub last_ns: u64,
    pub failures: u64,
    /// The highest confidence among its failures.
    pub confidence: Confidence,
    /// Failures per outcome.
    pub outcomes: BTreeMap<String, u64>,
    /// Every candidate Pod of its failures, sorted.
    pub pods: Vec<String>,
    /// The strongest failure's evidence, with the counts.
    pub evidence: String,
    pub remedy: Remedy,
}

/// Group failures into incidents; also returns each failure's incident id,
/// in input order.
pub(crate) fn group(
    failed: &[FailedRequest],
    findings: &[Finding],
    t: &Timeline,
    cfg: &AttributionConfig,
) -> (Vec<Incident>, Vec<u32>) {
    let gap = cfg.incident_gap.as_nanos() as u64;
    let mut order: Vec<usize> = (0..failed.len()).collect();
    order.sort_by_key(|&i| (findings[i].cause, failed[i].start_ns, failed[i].seq));

    let mut groups: Vec<Vec<usize>> = Vec::new();
    for i in order {
        let joins = groups.last().is_some_and(|g| {
            let last = *g.last().expect("groups are never empty");
            findings[last].cause == findings[i].cause
                && failed[i].start_ns - failed[last].start_ns <= gap
        });
        if joins {
            groups.last_mut().expect("checked").push(i);
        } else {
            groups.push(vec![i]);
        }
    }

    let mut incidents: Vec<(Incident, Vec<usize>)> = groups
        .into_iter()
        .map(|g| (build(&g, failed, findings, t, cfg), g))
        .collect();
    incidents.sort_by_key(|(inc, _)| {
        (
            inc.cause != Cause::Unexplained,
            std::cmp::Reverse(inc.failures),
            inc.first_ns,
            inc.cause,
        )
    });
    let mut incident_of = vec![0u32; failed.len()];
    let incidents = incidents
        .into_iter()
        .enumerate()
        .map(|(n, (mut inc, members))| {
            inc.id = n as u32 + 1;
            for i in members {
                incident_of[i] = inc.id;
            }
            inc
        })
        .collect();
    (incidents, incident_of)
}

fn build(
    members: &[usize],
    failed: &[FailedRequest],
    findings: &[Finding],
    t: &Timeline,
    cfg: &AttributionConfig,
) -> Incident {
    let cause = findings[members[0]].cause;
    let first_ns = failed[members[0]].start_ns;
    let last_ns = failed[*members.last().expect("groups are never empty")].start_ns;
    let mut outcomes = BTreeMap::new();
    let mut pods = BTreeSet::new();
    for &i in members {
        *outcomes
            .entry(failed[i].outcome.as_str().to_string())
            .or_insert(0u64) += 1;
        pods.extend(findings[i].fits.iter().map(|c| c.pod.clone()));
    }
    // The strongest row: highest confidence, then the earliest.
    let strongest = members
        .iter()
        .copied()
        .max_by_key(|&i| (findings[i].confidence, std::cmp::Reverse(i)))
        .expect("groups are never empty");
    let n = members.len() as u64;
    let counts: Vec<String> = outcomes.iter().map(|(o, c)| format!("{o} {c}")).collect();
    let confidence: Confidence = findings[strongest].confidence;
    let evidence = format!(
        "{n} failure(s) over {} ({}); strongest ({confidence}): {}",
        text::dur(last_ns - first_ns),
        counts.join(", "),
        findings[strongest].evidence
    );
    let pairs: Vec<(&FailedRequest, &Finding)> = members
        .iter()
        .map(|&i| (&failed[i], &findings[i]))
        .collect();
    Incident {
        id: 0,
        cause,
        first_ns,
        last_ns,
        failures: n,
        confidence,
        outcomes,
        pods: pods.into_iter().collect(),
        evidence,
        remedy: remedy::for_incident(cause, &pairs, cfg.spec.as_ref(), t),
    }
}
