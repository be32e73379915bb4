//! The numbers and plain strings `report.html` places: the verdict and
//! counts, the legend, incidents, steps and the failure table; the chart
//! comes from [`super::chart`]. Pure: no I/O, no clock, ordered
//! collections only, so the same run gives the same view.
//!
//! Strings from the cluster or the target are passed through untouched:
//! the template escapes them. Strings built here for attributes (`d`,
//! `transform`, colours, classes) hold only numbers, our own enum names
//! and our own palette.

use super::HtmlInput;
use super::chart::{Chart, LanePanel, chart};
use super::format::{candidates_text, ms_to_s, outcome_text, secs};
use super::palette::{cause_class, failing_outcomes, version_colour, versions_in_order};
use super::tips::{Tips, tips};
use crate::attribution::{Attribution, Cause, FailedRequest};
use crate::load::outcome::Outcome;
use crate::rundir::RunSummary;
use crate::verdict::Verdict;
use serde::Serialize;
use std::collections::BTreeMap;

#[derive(Serialize)]
pub(super) struct View {
    name: String,
    /// Ran on the simulator: said in the header, beside the verdict.
    simulator: bool,
    /// The Deployment, for the remedies' `kubectl patch` line.
    deployment: String,
    /// Its namespace, for the remedies' `kubectl apply` line.
    namespace: String,
    baton_version: String,
    verdict: &'static str,
    verdict_class: &'static str,
    reason: String,
    /// When and how densely requests failed, in one sentence.
    headline: Option<String>,
    meta: Vec<Pair>,
    counts: Vec<Count>,
    thresholds: Vec<Threshold>,
    causes: Vec<Key>,
    chart: Chart,
    /// What the chart's shared tooltip says at each instant.
    tips: Tips,
    legend: Legend,
    incidents: Vec<IncidentView>,
    steps: Vec<StepView>,
    /// The in-cluster load workers, when the load came from them.
    workers: Vec<WorkerView>,
    stall: Option<String>,
    /// The longest disruption in words, if there was one.
    disruption: Option<String>,
    failures: FailureTable,
    warnings: Vec<String>,
    blind_spots: Vec<String>,
}

#[derive(Serialize)]
struct WorkerView {
    index: u32,
    pod: String,
    node: String,
    sent: u64,
    failed: u64,
    failed_pct: String,
    shed: u64,
    lateness_p99: String,
    clock_error: String,
    lost: Option<String>,
}

#[derive(Serialize)]
struct Pair {
    label: &'static str,
    value: String,
}

#[derive(Serialize)]
struct Count {
    label: &'static str,
    value: String,
    bad: bool,
}

#[derive(Serialize)]
struct Threshold {
    name: String,
    limit: String,
    value: String,
    pass: bool,
}

/// A legend entry: a class (and for versions a colour) and its label.
#[derive(Serialize)]
struct Key {
    cls: String,
    fill: String,
    label: String,
    count: u64,
}

#[derive(Serialize)]
struct Legend {
    outcomes: Vec<Key>,
    versions: Vec<Key>,
    /// Pod states and marks that occur on the lanes, in a fixed order.
    pods: Vec<Key>,
    /// Endpoint states (and the allowance band) that occur.
    endpoints: Vec<Key>,
    /// Some lane carries a version tag.
    tagged: bool,
    causes: Vec<Key>,
}

#[derive(Serialize)]
struct IncidentView {
    id: u32,
    cause: &'static str,
    /// The cause in plain words.
    words: &'static str,
    cls: &'static str,
    failures: u64,
    confidence: &'static str,
    from_s: String,
    to_s: String,
    outcomes: String,
    pods: Vec<String>,
    evidence: String,
    remedy: String,
    /// The remedy as a patch of the Deployment (YAML), when it is one.
    patch: Option<String>,
    /// The remedy as an object to apply (YAML), when it is one.
    manifest: Option<String>,
}

#[derive(Serialize)]
struct StepView {
    index: usize,
    description: String,
    start_s: String,
    end_s: String,
    outcome: String,
    done: bool,
}

#[derive(Serialize)]
struct FailureTable {
    /// The rows by incident, most important incident first.
    groups: Vec<FailureGroup>,
    /// Columns some row fills (an always-empty column is left out).
    has_status: bool,
    has_backend: bool,
    /// Failures with a row.
    shown: usize,
    /// Failures with a marker.
    marked: usize,
    total: usize,
}

/// One incident's failures in the table: a few examples shown, the rest
/// folded away (a marker's link unfolds them).
#[derive(Serialize)]
struct FailureGroup {
    incident: u32,
    cause: &'static str,
    words: &'static str,
    cls: &'static str,
    /// Its failures, all of them (the table may hold fewer).
    total: u64,
    examples: Vec<FailureRow>,
    more: Vec<FailureRow>,
}

/// How many failures of an incident the table shows unfolded.
const EXAMPLES_PER_INCIDENT: usize = 5;

#[derive(Serialize)]
struct FailureRow {
    id: String,
    seq: u64,
    start_s: String,
    outcome: String,
    status: String,
    backend: String,
    cause: &'static str,
    cls: &'static str,
    confidence: &'static str,
    incident: u32,
    candidates: String,
    evidence: String,
}

pub(super) fn build(input: &HtmlInput<'_>, max_markers: usize, max_rows: usize) -> View {
    let s = input.summary;
    let marked = select_shown(input.failures, input.attributions, max_markers);
    // The round-robin's first picks are the same whatever the cap, so
    // every row is also a marker.
    let rows = select_shown(
        input.failures,
        input.attributions,
        max_rows.min(max_markers),
    );
    let mut has_row = vec![false; input.failures.len()];
    for &i in &rows {
        has_row[i] = true;
    }
    let chart = chart(input, &marked, &has_row);
    View {
        name: s.name.clone(),
        simulator: s.simulator,
        deployment: s.deployment.clone(),
        namespace: s.namespace.clone(),
        baton_version: s.baton_version.clone(),
        verdict: verdict_word(s),
        verdict_class: verdict_class(s),
        reason: s.reason.clone(),
        headline: crate::report::run_summary::failure_line(s),
        meta: meta(s),
        counts: counts(s),
        thresholds: s
            .thresholds
            .iter()
            .map(|t| Threshold {
                name: t.name.clone(),
                limit: t.limit.clone(),
                value: t.value.clone(),
                pass: t.pass,
            })
            .collect(),
        causes: cause_keys(s),
        legend: legend(input, &chart),
        chart,
        tips: tips(input.buckets, input.timeline),
        incidents: s
            .incidents
            .iter()
            .map(|i| IncidentView {
                id: i.id,
                cause: i.cause.as_str(),
                words: i.cause.words(),
                cls: cause_class(i.cause),
                failures: i.failures,
                confidence: i.confidence.as_str(),
                from_s: secs(i.first_ns),
                to_s: secs(i.last_ns),
                outcomes: i
                    .outcomes
                    .iter()
                    .map(|(o, n)| format!("{o} × {n}"))
                    .collect::<Vec<_>>()
                    .join(", "),
                pods: i.pods.clone(),
                evidence: i.evidence.clone(),
                remedy: i.remedy.text.clone(),
                patch: i.remedy.patch.clone(),
                manifest: i.remedy.manifest.clone(),
            })
            .collect(),
        steps: s
            .rollout
            .steps
            .iter()
            .map(|st| StepView {
                index: st.index,
                description: st.description.clone(),
                start_s: ms_to_s(st.started_ms),
                end_s: ms_to_s(st.ended_ms),
                outcome: st.outcome.to_string(),
                done: st.outcome.is_done(),
            })
            .collect(),
        workers: s
            .workers
            .iter()
            .map(|w| WorkerView {
                index: w.index,
                pod: w.pod.clone(),
                node: w.node.clone().unwrap_or_default(),
                sent: w.sent,
                failed: w.failed,
                failed_pct: if w.sent == 0 {
                    "–".into()
                } else {
                    format!("{:.1} %", 100.0 * w.failed as f64 / w.sent as f64)
                },
                shed: w.shed,
                lateness_p99: w
                    .lateness_p99_ms
                    .map_or("–".into(), |ms| format!("{ms:.1} ms")),
                clock_error: format!("± {:.2} ms", w.clock_error_ms),
                lost: w.lost.clone(),
            })
            .collect(),
        stall: s.rollout.stall.as_ref().map(|st| {
            format!(
                "stalled at {} s: {}{}",
                ms_to_s(st.at_ms),
                st.reason,
                if st.undone { " (rolled back)" } else { "" }
            )
        }),
        disruption: s.longest_disruption.map(|d| {
            format!(
                "longest disruption: {:.0} ms with no successful response, from {} s to {} s",
                d.len_ms,
                ms_to_s(d.from_ms),
                ms_to_s(d.to_ms)
            )
        }),
        failures: failure_table(
            input.failures,
            input.attributions,
            &s.incidents,
            &rows,
            marked.len(),
        ),
        warnings: s.warnings.clone(),
        blind_spots: s
            .watch_blind_spots
            .iter()
            .map(|b| {
                format!(
                    "{} saw nothing for {:.0} ms from {} s",
                    b.resource,
                    b.len_ms,
                    ms_to_s(b.from_ms)
                )
            })
            .collect(),
    }
}

fn verdict_word(s: &RunSummary) -> &'static str {
    match (s.interrupted, s.verdict) {
        (true, _) => "INTERRUPTED",
        (_, Verdict::Pass) => "PASS",
        (_, Verdict::Fail) => "FAIL",
        (_, Verdict::Invalid) => "INVALID",
        (_, Verdict::Interrupted) => "INTERRUPTED",
    }
}

fn verdict_class(s: &RunSummary) -> &'static str {
    match (s.interrupted, s.verdict) {
        (true, _) => "interrupted",
        (_, Verdict::Pass) => "pass",
        (_, Verdict::Fail) => "fail",
        (_, Verdict::Invalid) => "invalid",
        (_, Verdict::Interrupted) => "interrupted",
    }
}

fn meta(s: &RunSummary) -> Vec<Pair> {
    vec![
        Pair {
            label: "deployment",
            value: format!("{} in {}", s.deployment, s.namespace),
        },
        Pair {
            label: "cluster",
            value: s.cluster.clone(),
        },
        Pair {
            label: "target",
            value: match s.workers.len() {
                0 => s.target_url.clone(),
                n => format!(
                    "{} from {n} worker Pod{} in the cluster",
                    s.target_url,
                    if n == 1 { "" } else { "s" }
                ),
            },
        },
        Pair {
            label: "started",
            value: s.started_at.clone(),
        },
        Pair {
            label: "load ran",
            value: format!("{:.1} s", s.elapsed_s),
        },
        Pair {
            label: "baton",
            value: s.baton_version.to_string(),
        },
    ]
}

fn version_counts(m: &BTreeMap<String, u64>) -> String {
    if m.is_empty() {
        return "nobody".into();
    }
    m.iter()
        .map(|(k, n)| format!("{k} ({n})"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn counts(s: &RunSummary) -> Vec<Count> {
    let r = &s.requests;
    let mut v = vec![
        Count {
            label: "sent",
            value: r.sent.to_string(),
            bad: false,
        },
        Count {
            label: "ok",
            value: r.ok.to_string(),
            bad: false,
        },
        Count {
            label: "failed",
            value: r.failed.to_string(),
            bad: r.failed > 0,
        },
    ];
    if r.client_resource > 0 {
        v.push(Count {
            label: "harness errors",
            value: r.client_resource.to_string(),
            bad: true,
        });
    }
    v.push(Count {
        label: "rate",
        value: format!("{:.0}/s of {:.0}/s", s.shown_rps(), s.rps_target),
        bad: false,
    });
    if let Some(f) = &s.failures {
        let w = &f.worst_second;
        v.push(Count {
            label: "failures between",
            value: format!(
                "{:.2}–{:.2} s, in {} second(s)",
                f.first_ms / 1000.0,
                f.last_ms / 1000.0,
                f.seconds_with_failures
            ),
            bad: true,
        });
        v.push(Count {
            label: "worst second",
            value: format!(
                "{} of {} failed ({:.1} %) from {:.2} s",
                w.failed,
                w.sent,
                w.error_rate * 100.0,
                w.from_ms / 1000.0
            ),
            bad: true,
        });
    }
    v.push(Count {
        label: "latency p50 / p99 (from start)",
        value: format!("{:.1} / {:.1} ms", s.latency_ms.p50, s.latency_ms.p99),
        bad: false,
    });
    v.push(Count {
        label: "response time p99 (from schedule)",
        value: format!("{:.1} ms", s.response_time_ms.p99),
        bad: false,
    });
    v.push(Count {
        label: "longest disruption",
        value: s
            .longest_disruption
            .map_or("none".to_string(), |d| format!("{:.0} ms", d.len_ms)),
        bad: s.longest_disruption.is_some(),
    });
    v.push(Count {
        label: "versions before",
        value: version_counts(&s.versions_before_rollout),
        bad: false,
    });
    v.push(Count {
        label: "versions after",
        value: format!(
            "{} from {} pod(s)",
            version_counts(&s.versions_after_rollout),
            s.backends_after_rollout.len()
        ),
        bad: false,
    });
    v.push(Count {
        label: "rollout",
        value: if s.rollout.completed {
            "completed".to_string()
        } else {
            "did not complete".to_string()
        },
        bad: !s.rollout.completed,
    });
    v
}

fn cause_keys(s: &RunSummary) -> Vec<Key> {
    Cause::ALL
        .iter()
        .filter_map(|c| {
            let n = s.causes.get(c.as_str()).copied().unwrap_or(0);
            (n > 0).then(|| Key {
                cls: cause_class(*c).to_string(),
                fill: String::new(),
                label: c.as_str().to_string(),
                count: n,
            })
        })
        .collect()
}

/// What the lanes' classes mean, in the legend's order.
const POD_KEYS: [(&str, &str); 10] = [
    ("l-pending", "pending"),
    ("l-running", "running, not ready"),
    ("l-ready", "ready"),
    ("l-terminating", "terminating"),
    ("l-gone", "gone (thin line)"),
    ("waiting-sw", "waiting (ErrImagePull, CrashLoopBackOff…)"),
    ("mk-restart", "container restarted"),
    ("mk-exit", "container exited"),
    ("mk-evicted", "evicted (a drain)"),
    ("mk-evict-refused", "eviction refused (a budget)"),
];
const ENDPOINT_KEYS: [(&str, &str); 5] = [
    ("e-ready", "ready"),
    ("e-serving", "terminating, still serving"),
    ("e-terminating", "terminating, not serving"),
    ("e-notready", "not ready"),
    ("e-lag", "a lagging proxy may still route here"),
];

/// The keys of `table` whose class occurs on some lane of `panel` (a
/// segment's class word, or a mark's class behind `mk-`).
fn lane_keys(panel: &LanePanel, table: &[(&str, &str)], allowance: Option<u64>) -> Vec<Key> {
    let occurs = |cls: &str| {
        panel.lanes.iter().any(|l| {
            l.segs.iter().any(|s| {
                s.cls
                    .split(' ')
                    .any(|w| w == cls || (w == "waiting" && cls == "waiting-sw"))
            }) || l
                .marks
                .iter()
                .any(|m| cls.strip_prefix("mk-") == Some(m.cls))
        })
    };
    table
        .iter()
        .filter(|(cls, _)| occurs(cls))
        .map(|(cls, label)| Key {
            cls: cls.to_string(),
            fill: String::new(),
            label: match (*cls, allowance) {
                ("e-lag", Some(ms)) => format!("{label} (the {ms} ms propagation allowance)"),
                _ => label.to_string(),
            },
            count: 0,
        })
        .collect()
}

fn legend(input: &HtmlInput<'_>, chart: &Chart) -> Legend {
    let total = |o: Outcome| -> u64 {
        input
            .buckets
            .iter()
            .map(|b| {
                if o == Outcome::Ok {
                    b.ok
                } else {
                    b.failed.get(&o).copied().unwrap_or(0)
                }
            })
            .sum()
    };
    let mut outcomes = vec![Outcome::Ok];
    outcomes.extend(failing_outcomes(input.buckets));
    let mut causes: BTreeMap<Cause, u64> = BTreeMap::new();
    for a in input.attributions {
        *causes.entry(a.cause).or_default() += 1;
    }
    let allowance = input
        .summary
        .propagation
        .as_ref()
        .map(|p| p.allowance_ms.round() as u64);
    Legend {
        pods: lane_keys(&chart.pods, &POD_KEYS, None),
        endpoints: lane_keys(&chart.endpoints, &ENDPOINT_KEYS, allowance),
        tagged: chart
            .pods
            .lanes
            .iter()
            .chain(&chart.endpoints.lanes)
            .any(|l| !l.tag.is_empty()),
        outcomes: outcomes
            .into_iter()
            .map(|o| Key {
                cls: format!("o-{}", o.as_str()),
                fill: String::new(),
                label: o.as_str().to_string(),
                count: total(o),
            })
            .collect(),
        versions: versions_in_order(input.buckets)
            .into_iter()
            .enumerate()
            .map(|(i, v)| Key {
                cls: String::new(),
                fill: version_colour(i).to_string(),
                label: v.to_string(),
                count: input
                    .buckets
                    .iter()
                    .map(|b| b.versions.get(v).copied().unwrap_or(0))
                    .sum(),
            })
            .collect(),
        causes: Cause::ALL
            .into_iter()
            .filter_map(|c| {
                causes.get(&c).map(|&n| Key {
                    cls: cause_class(c).to_string(),
                    fill: String::new(),
                    label: c.as_str().to_string(),
                    count: n,
                })
            })
            .collect(),
    }
}

/// Which failures get a marker and a row, as indices in `seq` order: all
/// of them up to `max`; beyond it, round-robin over the incidents (the
/// earliest failures of each first), so that every incident shows.
pub(super) fn select_shown(
    failures: &[FailedRequest],
    attributions: &[Attribution],
    max: usize,
) -> Vec<usize> {
    if failures.len() <= max {
        return (0..failures.len()).collect();
    }
    let mut by_incident: BTreeMap<u32, Vec<usize>> = BTreeMap::new();
    for (i, a) in attributions.iter().enumerate() {
        by_incident.entry(a.incident).or_default().push(i);
    }
    for members in by_incident.values_mut() {
        members.sort_by_key(|&i| (failures[i].start_ns, failures[i].seq));
    }
    let mut picked = Vec::with_capacity(max);
    let mut round = 0;
    while picked.len() < max {
        let mut any = false;
        for members in by_incident.values() {
            if let Some(&i) = members.get(round) {
                any = true;
                picked.push(i);
                if picked.len() == max {
                    break;
                }
            }
        }
        if !any {
            break;
        }
        round += 1;
    }
    picked.sort_unstable();
    picked
}

fn failure_table(
    failures: &[FailedRequest],
    attributions: &[Attribution],
    incidents: &[crate::attribution::Incident],
    shown: &[usize],
    marked: usize,
) -> FailureTable {
    let rows: Vec<(u32, FailureRow)> = shown
        .iter()
        .map(|&i| {
            let (f, a) = (&failures[i], &attributions[i]);
            (
                a.incident,
                FailureRow {
                    id: format!("f-{}", f.seq),
                    seq: f.seq,
                    start_s: secs(f.start_ns),
                    outcome: outcome_text(f),
                    status: f.status.map(|s| s.to_string()).unwrap_or_default(),
                    backend: f.backend.clone().unwrap_or_default(),
                    cause: a.cause.as_str(),
                    cls: cause_class(a.cause),
                    confidence: a.confidence.as_str(),
                    incident: a.incident,
                    candidates: candidates_text(a),
                    evidence: a.evidence.clone(),
                },
            )
        })
        .collect();
    let has_status = rows.iter().any(|(_, r)| !r.status.is_empty());
    let has_backend = rows.iter().any(|(_, r)| !r.backend.is_empty());
    let mut groups: Vec<FailureGroup> = incidents
        .iter()
        .map(|inc| FailureGroup {
            incident: inc.id,
            cause: inc.cause.as_str(),
            words: inc.cause.words(),
            cls: cause_class(inc.cause),
            total: inc.failures,
            examples: Vec::new(),
            more: Vec::new(),
        })
        .collect();
    let mut rows = rows;
    rows.sort_by_key(|(incident, r)| (*incident, r.seq));
    for (incident, row) in rows {
        // Incident ids are 1-based, in the order of the list.
        let Some(g) = groups
            .get_mut(incident as usize - 1)
            .filter(|g| g.incident == incident)
        else {
            continue;
        };
        if g.examples.len() < EXAMPLES_PER_INCIDENT {
            g.examples.push(row);
        } else {
            g.more.push(row);
        }
    }
    FailureTable {
        groups,
        has_status,
        has_backend,
        shown: shown.len(),
        marked,
        total: failures.len(),
    }
}
