//! `report.html` from synthetic runs: well-formed (parsed strictly as
//! XML, which the output is written to satisfy: an HTML5 parser repairs
//! what XML rejects, so XML is the stricter check), self-contained,
//! escaped, one marker per failure, deterministic, and small enough.

use super::chart::{ms_label, nice_ceil, tick_step};
use super::format::{keep_end, keep_start};
use super::strict::parse_strict;
use super::view;
use super::*;
use crate::analyse::BUCKET_NS;
use crate::attribution::{Candidate, Cause, Confidence, Incident, Remedy};
use crate::cluster::event::{EventKind, LifecycleEvent};
use crate::load::outcome::{Outcome, Phase};
use crate::rundir::run_json::{RolloutRecord, StallRecord, StepRecord, StepResult};
use crate::rundir::summary::{Lags, Percentiles, RequestCounts, Span};
use crate::timeline::testkit::{self, MS, ep, pod, pod_already_up, pod_down, pod_up};
use crate::verdict::Verdict;
use crate::verdict::run::ThresholdResult;
use quick_xml::events::Event;
use std::collections::BTreeMap;

const EVIL: &str = "<script>alert(1)</script>";
const EVIL_ATTR: &str = "x\" onmouseover=\"alert(2)";

fn percentiles() -> Percentiles {
    Percentiles {
        measured_from: "start".into(),
        count: 100,
        p50: 1.2,
        p90: 2.0,
        p99: 4.5,
        p99_9: 9.0,
        max: 12.0,
        mean: 1.4,
    }
}

fn summary(name: &str, text: &str, incidents: Vec<Incident>) -> RunSummary {
    RunSummary {
        baton_version: "0.1.0".into(),
        name: name.to_string(),
        verdict: Verdict::Fail,
        reason: format!("3 requests failed ({text})"),
        interrupted: false,
        started_at: "2025-01-01T00:00:00.000Z".into(),
        elapsed_s: 10.0,
        cluster: "sandbox (simulator)".into(),
        simulator: true,
        namespace: "default".into(),
        deployment: "web-server".into(),
        target_url: "http://127.0.0.1:30000/".into(),
        version_shares: Vec::new(),
        workers: Vec::new(),
        thresholds: vec![
            ThresholdResult {
                name: "max_failed".into(),
                limit: "0".into(),
                value: "3".into(),
                pass: false,
            },
            ThresholdResult {
                name: "p99_latency".into(),
                limit: "500 ms".into(),
                value: "4.5 ms".into(),
                pass: true,
            },
        ],
        requests: RequestCounts {
            sent: 1000,
            ok: 997,
            failed: 3,
            client_resource: 0,
            shed: 0,
            rows_written: 1000,
        },
        outcomes: BTreeMap::new(),
        causes: BTreeMap::from([("endpoint_lag_on_termination".to_string(), 3)]),
        incidents,
        rps_target: 100.0,
        rps_achieved: 100.0,
        latency_ms: percentiles(),
        response_time_ms: percentiles(),
        lateness_ms: percentiles(),
        longest_disruption: Some(Span {
            from_ms: 5000.0,
            to_ms: 5040.0,
            len_ms: 40.0,
        }),
        versions_before_rollout: BTreeMap::from([(text.to_string(), 10)]),
        versions_after_rollout: BTreeMap::from([("1.28".to_string(), 10)]),
        backends_after_rollout: BTreeMap::new(),
        rollout: RolloutRecord {
            completed: true,
            steps: vec![
                StepRecord {
                    index: 1,
                    description: format!("set_image nginx={text}"),
                    started_ms: 3000.0,
                    ended_ms: 3010.0,
                    outcome: StepResult::Done,
                },
                StepRecord {
                    index: 2,
                    description: "wait_rollout (timeout 180s)".into(),
                    started_ms: 3010.0,
                    ended_ms: 8000.0,
                    outcome: StepResult::Done,
                },
            ],
            stall: None,
        },
        lags: Lags::default(),
        watch_blind_spots: Vec::new(),
        warnings: vec![format!("warning about {text}")],
        propagation: None,
        failures: None,
        schedule: None,
        teardown: None,
    }
}

fn incident(id: u32, text: &str, failures: u64) -> Incident {
    Incident {
        id,
        cause: Cause::EndpointLagOnTermination,
        first_ns: 5_000 * MS,
        last_ns: 5_040 * MS,
        failures,
        confidence: Confidence::High,
        outcomes: BTreeMap::from([("connect_refused".to_string(), failures)]),
        pods: vec![text.to_string()],
        evidence: format!("refused 12 ms after pod {text} got its deletionTimestamp"),
        remedy: Remedy {
            text: format!("add a preStop sleep ({text})"),
            value: None,
            patch: None,
            manifest: None,
        },
    }
}

/// A ten-second run: three Pods replaced by three, one of whose names and
/// messages are `text`; a bucket per 100 ms at 100 req/s with versions
/// handing over; `n_failures` failures around the first deletion.
struct Run {
    summary: RunSummary,
    buckets: Vec<Bucket>,
    timeline: Timeline,
    failures: Vec<FailedRequest>,
    attributions: Vec<Attribution>,
}

impl Run {
    fn input(&self) -> HtmlInput<'_> {
        HtmlInput {
            summary: &self.summary,
            buckets: &self.buckets,
            timeline: &self.timeline,
            failures: &self.failures,
            attributions: &self.attributions,
        }
    }
}

fn run_with(text: &str, n_failures: u64) -> Run {
    let mut events = Vec::new();
    for name in ["web-old-a", "web-old-b", text] {
        events.extend(pod_already_up(0, name));
    }
    for (k, name) in ["web-new-a", "web-new-b", "web-new-c"].iter().enumerate() {
        let t = 3_000 + k as u64 * 1_500;
        events.extend(pod_up(t, name));
    }
    events.extend(pod_down(5_000, text, 30, 400));
    events.extend(pod_down(6_500, "web-old-a", 30, 400));
    events.extend(pod_down(8_000, "web-old-b", 30, 400));
    events.push(LifecycleEvent {
        reason: text.to_string(),
        ..pod(3_150, EventKind::ContainerWaiting, "web-new-a")
    });
    events.push(testkit::restarted(3_400, "web-new-a", 1));
    events.push(LifecycleEvent {
        detail: text.to_string(),
        ..ep(3_500, EventKind::EndpointServing, "web-new-a")
    });
    let buckets = (0..100u64)
        .map(|i| {
            let new_share = i.saturating_sub(30).min(50);
            let failed = if i == 50 { n_failures.min(10) } else { 0 };
            Bucket {
                start_ns: i * BUCKET_NS,
                sent: 10,
                ok: 10 - failed,
                failed: if failed > 0 {
                    BTreeMap::from([(Outcome::ConnectRefused, failed)])
                } else {
                    BTreeMap::new()
                },
                p50_ms: Some(1.0 + (i % 7) as f64 * 0.1),
                p99_ms: (i != 20).then_some(3.0 + (i % 11) as f64),
                versions: BTreeMap::from([
                    (
                        text.to_string(),
                        (10 - failed).saturating_sub(new_share / 5),
                    ),
                    ("1.28".to_string(), new_share / 5),
                ]),
            }
        })
        .collect();
    let failures: Vec<FailedRequest> = (0..n_failures)
        .map(|k| FailedRequest {
            seq: 500 + k,
            scheduled_ns: 5_000 * MS + k * MS,
            start_ns: 5_000 * MS + k * MS,
            end_ns: 5_000 * MS + k * MS + 300_000,
            outcome: Outcome::ConnectRefused,
            phase: Phase::Connect,
            status: None,
            backend: Some(text.to_string()),
        })
        .collect();
    let attributions = failures
        .iter()
        .map(|f| Attribution {
            seq: f.seq,
            cause: Cause::EndpointLagOnTermination,
            confidence: Confidence::High,
            candidates: vec![Candidate {
                pod: text.to_string(),
                state: format!("terminating 12 ms, endpoint ready ({text})"),
            }],
            evidence: format!("refused 12 ms after pod {text} got its deletionTimestamp"),
            incident: 1,
        })
        .collect();
    Run {
        summary: summary(text, text, vec![incident(1, text, n_failures)]),
        buckets,
        timeline: Timeline::new(events),
        failures,
        attributions,
    }
}

/// What a strict XML pass over the report found.
#[test]
fn the_report_is_well_formed_with_one_root() {
    let run = run_with("web-old-c", 3);
    let html = render(&run.input()).unwrap();
    assert!(html.starts_with("<!DOCTYPE html>"));
    let p = parse_strict(&html);
    assert_eq!(p.roots, 1);
    assert_eq!(p.elements.first().map(String::as_str), Some("html"));
    for want in ["svg", "table", "style", "script", "title"] {
        assert!(p.elements.iter().any(|e| e == want), "no <{want}>");
    }
}

#[test]
fn the_report_references_nothing_outside_itself() {
    let run = run_with("web-old-c", 3);
    let html = render(&run.input()).unwrap();
    let p = parse_strict(&html);
    for (el, attr, value) in &p.attrs {
        let a = attr.to_ascii_lowercase();
        if matches!(
            a.as_str(),
            "src" | "href" | "xlink:href" | "action" | "srcset" | "poster" | "data"
        ) {
            assert!(
                value.starts_with('#'),
                "<{el} {attr}=\"{value}\"> points outside the file"
            );
        }
        if a == "style" || a == "fill" {
            assert!(
                !value.contains("url(") || value.contains("url(#"),
                "<{el} {attr}=\"{value}\"> loads a URL"
            );
        }
    }
    for el in ["link", "img", "iframe", "object", "embed", "image", "use"] {
        assert!(!p.elements.iter().any(|e| e == el), "a <{el}> element");
    }
    let scripts: Vec<_> = p
        .attrs
        .iter()
        .filter(|(el, a, _)| el == "script" && a == "src")
        .collect();
    assert!(scripts.is_empty());
    let lower = html.to_ascii_lowercase();
    assert!(!lower.contains("@import"));
    assert!(!lower.contains("url(http") && !lower.contains("url(//"));
    assert!(!lower.contains("fetch(") && !lower.contains("xmlhttprequest"));
    // The target URL is shown, as text only.
    assert!(
        p.texts
            .iter()
            .any(|t| t.contains("http://127.0.0.1:30000/"))
    );
}

#[test]
fn hostile_names_and_messages_appear_only_escaped() {
    for text in [EVIL, EVIL_ATTR] {
        let run = run_with(text, 3);
        let html = render(&run.input()).unwrap();
        // Our own three script elements (the fetch counter in the head,
        // the tooltip's data, the chart's script), nothing else.
        assert_eq!(html.matches("<script").count(), 3, "{text}");
        // The tooltip's data is JSON inside a script element: a quote is
        // harmless there, a `<` (which could close the element) is not.
        let open = "<script type=\"application/json\" id=\"tips\">";
        let from = html.find(open).unwrap() + open.len();
        let to = from + html[from..].find("</script>").unwrap();
        assert!(!html[from..to].contains('<'), "{}", &html[from..to]);
        let markup = format!("{}{}", &html[..from], &html[to..]);
        assert!(!markup.contains("alert(1)</script>"));
        assert!(!markup.contains("\" onmouseover"));
        let p = parse_strict(&html);
        assert!(
            !p.attrs.iter().any(|(_, a, _)| a.starts_with("on")),
            "an event-handler attribute slipped in"
        );
        // And the text is shown, as text, in the lanes, titles and tables.
        let shown = p.texts.iter().filter(|t| t.contains(text)).count();
        assert!(shown >= 10, "{text} shown {shown} times");
    }
}

#[test]
fn hostile_strings_inside_svg_titles_and_lane_labels_are_escaped() {
    let run = run_with(EVIL, 2);
    let html = render(&run.input()).unwrap();
    let svg = &html[html.find("<svg").unwrap()..html.find("</svg>").unwrap()];
    assert!(svg.contains("&lt;script&gt;alert(1)&lt;&#x2f;script&gt;"));
    assert!(!svg.contains("<script"));
}

#[test]
fn every_failure_has_exactly_one_marker_and_one_row() {
    let run = run_with("web-old-c", 7);
    let html = render(&run.input()).unwrap();
    let p = parse_strict(&html);
    assert_eq!(p.count_class("fm"), 7);
    let rows = p
        .attrs
        .iter()
        .filter(|(el, a, v)| el == "tr" && a == "id" && v.starts_with("f-"))
        .count();
    assert_eq!(rows, 7);
    // Each marker links to its row.
    for f in &run.failures {
        let id = format!("#f-{}", f.seq);
        assert_eq!(
            p.attrs
                .iter()
                .filter(|(_, a, v)| a == "href" && *v == id)
                .count(),
            1
        );
    }
}

#[test]
fn failures_are_grouped_by_incident_a_few_shown_the_rest_folded_with_no_empty_column() {
    let run = run_with("web-old-c", 7);
    let html = render(&run.input()).unwrap();
    parse_strict(&html);
    let table = &html[html.find("Failed requests").unwrap()..];
    let fold = table
        .find("<details class=\"more\"")
        .expect("the rest is folded");
    assert!(table[..fold].contains("Incident 1: proxies still sent new connections"));
    assert_eq!(table[..fold].matches("<tr id=\"f-").count(), 5);
    assert_eq!(table[fold..].matches("<tr id=\"f-").count(), 2);
    assert!(table[fold..].contains("2 more of incident 1"));
    // No failure here has an HTTP status; every one names its backend.
    assert!(!table.contains("<th>status</th>") && table.contains("<th>backend</th>"));
}

#[test]
fn after_each_ready_stretch_the_propagation_allowance_is_drawn_on_its_endpoint_lane() {
    let mut run = run_with("web-old-c", 3);
    let html = render(&run.input()).unwrap();
    assert!(!html.contains("class=\"e-lag\""), "no allowance, no band");
    run.summary.propagation = Some(crate::attribution::propagation::Chosen {
        allowance_ms: 1000.0,
        from: "the profile".into(),
        measured: None,
        warning: None,
    });
    let html = render(&run.input()).unwrap();
    let p = parse_strict(&html);
    let bands: Vec<&BTreeMap<String, String>> = p
        .tags
        .iter()
        .filter(|(el, a)| el == "rect" && a.get("class").is_some_and(|c| c == "e-lag"))
        .map(|(_, a)| a)
        .collect();
    // Three old Pods went: one band each, on their own lanes.
    assert_eq!(bands.len(), 3, "{bands:?}");
    assert!(html.contains("1000 ms propagation allowance"));
}

#[test]
fn a_run_without_failures_has_no_markers_and_says_so() {
    let mut run = run_with("web-old-c", 0);
    run.summary.incidents.clear();
    run.summary.verdict = Verdict::Pass;
    let html = render(&run.input()).unwrap();
    let p = parse_strict(&html);
    assert_eq!(p.count_class("fm"), 0);
    assert!(html.contains("No failed requests"));
    assert!(html.contains("verdict pass"));
}

#[test]
fn an_empty_run_still_renders_well_formed() {
    let run = Run {
        summary: summary("empty", "1.27", Vec::new()),
        buckets: Vec::new(),
        timeline: Timeline::new(Vec::new()),
        failures: Vec::new(),
        attributions: Vec::new(),
    };
    let html = render(&run.input()).unwrap();
    let p = parse_strict(&html);
    assert!(html.contains("no requests") && html.contains("no pod events seen"));
    assert_eq!(p.count_class("fm"), 0);
}

#[test]
fn rendering_twice_gives_identical_bytes() {
    let a = render(&run_with("web-old-c", 5).input()).unwrap();
    let b = render(&run_with("web-old-c", 5).input()).unwrap();
    assert!(a == b, "two renders of the same run differ");
}

#[test]
fn mismatched_failures_and_attributions_are_an_error() {
    let mut run = run_with("web-old-c", 3);
    run.attributions.pop();
    let e = render(&run.input()).unwrap_err().to_string();
    assert!(e.contains("3 failures but 2 attributions"), "{e}");
}

#[test]
fn pod_lanes_show_each_lifecycle_and_restarts() {
    let run = run_with("web-old-c", 1);
    let p = parse_strict(&render(&run.input()).unwrap());
    for cls in [
        "l-ready",
        "l-terminating",
        "l-gone",
        "l-running",
        "waiting",
        "restart",
        "exit",
    ] {
        assert!(p.count_class(cls) > 0, "no {cls}");
    }
    for cls in ["e-ready", "e-notready"] {
        assert!(p.count_class(cls) > 0, "no {cls}");
    }
    // Six Pods, six pod lanes and six endpoint lanes.
    let lanes = p.count_class("lane");
    assert_eq!(lanes, 12);
}

#[test]
fn a_stall_and_failed_step_are_marked() {
    let mut run = run_with("web-old-c", 1);
    run.summary.rollout.steps[1].outcome = StepResult::Stalled("ErrImagePull".into());
    run.summary.rollout.stall = Some(StallRecord {
        reason: "ErrImagePull".into(),
        at_ms: 6000.0,
        undone: true,
    });
    let html = render(&run.input()).unwrap();
    let p = parse_strict(&html);
    assert!(p.count_class("stall") >= 2);
    assert!(html.contains("stalled at 6.000 s: ErrImagePull (rolled back)"));
}

/// Ten minutes at 1,000 req/s: 6,000 buckets, 30 Pods replaced in turn,
/// `n` failures spread over incidents.
fn big_run(n: u64) -> Run {
    let mut events = Vec::new();
    for k in 0..15u64 {
        let old = format!("web-server-5d8f7c6b9-old{k:02}x");
        let new = format!("web-server-7c9d8e5f4-new{k:02}y");
        events.extend(pod_already_up(0, &old));
        events.extend(pod_up(60_000 + k * 30_000, &new));
        events.extend(pod_down(60_500 + k * 30_000, &old, 40, 2_000));
    }
    let buckets: Vec<Bucket> = (0..6_000u64)
        .map(|i| Bucket {
            start_ns: i * BUCKET_NS,
            sent: 100,
            ok: 97,
            failed: BTreeMap::from([(Outcome::ConnectRefused, 2), (Outcome::Reset, 1)]),
            p50_ms: Some(1.0 + (i % 13) as f64 * 0.07),
            p99_ms: Some(4.0 + (i % 17) as f64),
            versions: BTreeMap::from([
                ("1.27.3".to_string(), 97 - (i * 97 / 6_000)),
                ("1.28.0".to_string(), i * 97 / 6_000),
            ]),
        })
        .collect();
    let failures: Vec<FailedRequest> = (0..n)
        .map(|k| {
            let start = 60_000 * MS + k * (540_000 * MS / n.max(1));
            FailedRequest {
                seq: 60_000 + k * 90,
                scheduled_ns: start,
                start_ns: start,
                end_ns: start + 400_000,
                outcome: if k % 3 == 0 {
                    Outcome::Reset
                } else {
                    Outcome::ConnectRefused
                },
                phase: Phase::Connect,
                status: None,
                backend: None,
            }
        })
        .collect();
    let attributions: Vec<Attribution> = failures
        .iter()
        .enumerate()
        .map(|(k, f)| {
            let pod = format!("web-server-5d8f7c6b9-old{:02}x", k % 15);
            Attribution {
                seq: f.seq,
                cause: if k % 10 == 0 {
                    Cause::KilledInFlight
                } else {
                    Cause::EndpointLagOnTermination
                },
                confidence: Confidence::Medium,
                candidates: vec![
                    Candidate {
                        pod: pod.clone(),
                        state: "terminating 37 ms (grace 30 s), endpoint ready".into(),
                    },
                    Candidate {
                        pod: "web-server-7c9d8e5f4-new03y".into(),
                        state: "ready 1.2 s, endpoint ready".into(),
                    },
                ],
                evidence: format!(
                    "connection refused 37 ms after pod {pod} got its deletionTimestamp, \
                     while its endpoint was still listed ready (proxy lag)"
                ),
                incident: (k % 15) as u32 + 1,
            }
        })
        .collect();
    let incidents = (1..=15)
        .map(|id| {
            incident(
                id,
                &format!("web-server-5d8f7c6b9-old{:02}x", id - 1),
                n / 15,
            )
        })
        .collect();
    Run {
        summary: summary("nginx-rolling-update", "1.27.3", incidents),
        buckets,
        timeline: Timeline::new(events),
        failures,
        attributions,
    }
}

#[test]
fn ten_minutes_at_a_thousand_per_second_stays_under_five_megabytes() {
    let run = big_run(4_000);
    let html = render(&run.input()).unwrap();
    assert!(html.len() < 5_000_000, "{} bytes", html.len());
    let p = parse_strict(&html);
    assert_eq!(p.count_class("fm"), 4_000);
    assert_eq!(p.count_class("lane"), 60);
    assert!(html.contains(
        "Showing 2000 of 4000 failures in this table (every failure has a marker above)"
    ));
}

#[test]
fn past_the_caps_markers_and_rows_stop_and_the_report_says_so() {
    let run = big_run(12_000);
    let html = render(&run.input()).unwrap();
    assert!(html.len() < 5_000_000, "{} bytes", html.len());
    let p = parse_strict(&html);
    assert_eq!(p.count_class("fm"), MAX_FAILURE_MARKERS);
    let rows: Vec<&String> = p
        .attrs
        .iter()
        .filter(|(el, a, v)| el == "tr" && a == "id" && v.starts_with("f-"))
        .map(|(_, _, v)| v)
        .collect();
    assert_eq!(rows.len(), MAX_FAILURE_ROWS);
    assert!(html.contains(&format!(
        "Showing {MAX_FAILURE_ROWS} of 12000 failures in this table and {MAX_FAILURE_MARKERS} as markers above"
    )));
    // Every row is a marker's target; markers beyond the rows link nowhere.
    let hrefs = p.attrs.iter().filter(|(_, a, _)| a == "href").count();
    assert_eq!(hrefs, MAX_FAILURE_ROWS);
    for id in rows {
        let target = format!("#{id}");
        assert!(p.attrs.iter().any(|(_, a, v)| a == "href" && *v == target));
    }
}

#[test]
fn past_the_cap_every_incident_keeps_its_earliest_failures() {
    let run = big_run(300);
    let shown = view::select_shown(&run.failures, &run.attributions, 30);
    assert_eq!(shown.len(), 30);
    assert!(shown.windows(2).all(|w| w[0] < w[1]), "in seq order");
    let mut per_incident = BTreeMap::new();
    for &i in &shown {
        *per_incident
            .entry(run.attributions[i].incident)
            .or_insert(0) += 1;
    }
    assert_eq!(per_incident.len(), 15);
    assert!(per_incident.values().all(|&n| n == 2));
    // Under the cap, everything, in order.
    assert_eq!(
        view::select_shown(&run.failures, &run.attributions, 1_000),
        (0..300).collect::<Vec<_>>()
    );
}

#[test]
fn nice_ceilings_are_round_numbers_close_above_the_value() {
    assert_eq!(nice_ceil(0.0), 1.0);
    assert_eq!(nice_ceil(7.0), 8.0);
    assert_eq!(nice_ceil(10.0), 10.0);
    assert_eq!(nice_ceil(11.0), 15.0);
    assert_eq!(nice_ceil(21.0), 25.0);
    assert_eq!(nice_ceil(101.0), 150.0);
    assert_eq!(nice_ceil(480.0), 500.0);
    assert_eq!(nice_ceil(810.0), 1000.0);
}

#[test]
fn tick_steps_give_at_most_a_dozen_ticks() {
    assert_eq!(tick_step(1.0), 0.1);
    assert_eq!(tick_step(30.0), 5.0);
    assert_eq!(tick_step(600.0), 60.0);
    for end in [0.5, 3.0, 47.0, 95.0, 601.0, 3_000.0] {
        assert!(end / tick_step(end) <= 12.0, "{end}");
    }
}

#[test]
fn long_labels_keep_the_distinguishing_end_or_start() {
    assert_eq!(keep_end("web-7f9-abc", 28), "web-7f9-abc");
    let cut = keep_end("a-very-long-deployment-name-7f9c8d6b5-abcde", 20);
    assert_eq!(cut.chars().count(), 20);
    assert!(cut.starts_with('…') && cut.ends_with("7f9c8d6b5-abcde"));
    let cut = keep_start("1. set_image nginx=registry.example.com/nginx:1.28", 12);
    assert_eq!(cut, "1. set_imag…");
}

#[test]
fn latency_ticks_read_in_milliseconds_or_seconds() {
    assert_eq!(ms_label(0.1), "0.1 ms");
    assert_eq!(ms_label(10.0), "10 ms");
    assert_eq!(ms_label(1000.0), "1 s");
    assert_eq!(ms_label(10000.0), "10 s");
}

#[test]
fn step_labels_that_would_collide_go_to_separate_rows() {
    let mut run = run_with("web-old-c", 1);
    // Steps 1 and 2 start 10 ms apart: their labels must not share a row.
    let label_rows = |html: &str| -> Vec<String> {
        parse_strict(html)
            .tags
            .into_iter()
            .filter(|(el, a)| el == "text" && a.get("class").is_some_and(|c| c == "step"))
            .map(|(_, a)| a["y"].clone())
            .collect()
    };
    let html = render(&run.input()).unwrap();
    assert_eq!(label_rows(&html), vec!["11.0", "25.0"]);
    // A single step needs one row only.
    run.summary.rollout.steps.truncate(1);
    let html = render(&run.input()).unwrap();
    assert_eq!(label_rows(&html), vec!["11.0"]);
}

/// Strings from the target (versions, Pod names in headers and bodies),
/// the cluster (event messages, context names) and the profile (names,
/// images) render as text in all three reports for people: never as HTML,
/// a link or an image in `summary.md` (a GitHub step summary), never as
/// markup in `junit.xml` or `report.html`.
#[test]
fn hostile_strings_render_as_text_in_markdown_junit_and_html() {
    use pulldown_cmark::{Event as Md, Options, Parser, Tag};
    let hostile = [
        "<img src=x onerror=alert(1)>",
        "[click](javascript:alert(1))",
        "![pixel](http://evil.example/p.png)",
        "`code` **bold** ~~gone~~ &lt;b&gt; | cell",
        "- a list\n# a heading",
    ];
    for h in hostile {
        let mut run = run_with(h, 3);
        let s = &mut run.summary;
        s.deployment = h.into();
        s.namespace = h.into();
        s.cluster = h.into();
        s.target_url = h.into();
        s.thresholds[0].value = h.into();
        s.incidents = vec![incident(1, h, 3)];
        s.rollout.steps[0].outcome = StepResult::Failed(h.into());

        let md = crate::report::run_summary::markdown(s);
        let mut text = String::new();
        for ev in Parser::new_ext(&md, Options::ENABLE_TABLES | Options::ENABLE_STRIKETHROUGH) {
            match ev {
                Md::Html(x) | Md::InlineHtml(x) => panic!("{h:?}: raw HTML {x:?} in\n{md}"),
                Md::Start(Tag::Link { .. } | Tag::Image { .. } | Tag::Strikethrough) => {
                    panic!("{h:?}: a link, image or markup in\n{md}")
                }
                Md::Start(Tag::Heading { level, .. })
                    if level > pulldown_cmark::HeadingLevel::H3 =>
                {
                    panic!("{h:?}: a heading of its own in\n{md}")
                }
                Md::Text(t) | Md::Code(t) => text.push_str(&t),
                Md::SoftBreak | Md::HardBreak => text.push(' '),
                _ => {}
            }
        }
        let flat = h.replace('\n', " ");
        assert!(text.contains(&flat), "{h:?} reads as itself: {text}");

        let xml = crate::report::run_summary::junit(s).unwrap();
        let mut reader = quick_xml::Reader::from_str(&xml);
        let mut seen = String::new();
        loop {
            match reader.read_event().expect("junit.xml parses") {
                Event::Eof => break,
                Event::Start(e) | Event::Empty(e) => {
                    for a in e.attributes() {
                        seen.push_str(&a.unwrap().unescape_value().unwrap());
                    }
                }
                Event::Text(t) => seen.push_str(&t.xml_content().unwrap()),
                Event::CData(t) => seen.push_str(&String::from_utf8_lossy(&t)),
                _ => {}
            }
        }
        assert!(
            seen.contains(&flat) || seen.contains(h),
            "{h:?} in junit.xml"
        );

        let html = render(&run.input()).unwrap();
        if h.contains('<') {
            assert!(!html.contains(h), "{h:?} escaped in report.html");
        }
    }
}

#[test]
fn in_cluster_workers_get_a_table_naming_the_one_that_lost_records() {
    let mut run = run_with("web-old-c", 3);
    let worker = |index: u32, lost: Option<&str>| crate::rundir::summary::WorkerFigures {
        index,
        pod: format!("baton-load-x-{index}-<b>"),
        node: Some("node-1".into()),
        sent: 600,
        failed: 3,
        shed: 0,
        lateness_p99_ms: Some(1.5),
        clock_error_ms: 0.12,
        lost: lost.map(str::to_string),
    };
    run.summary.workers = vec![
        worker(0, None),
        worker(1, Some("its stream closed before its END")),
    ];
    let html = render(&run.input()).unwrap();
    assert!(html.contains("<h2>Load workers"), "a workers section");
    assert!(html.contains("LOST: its stream closed before its END"));
    assert!(html.contains("all arrived"));
    assert!(html.contains("from 2 worker Pods in the cluster"));
    assert!(
        html.contains("baton-load-x-1-&lt;b&gt;") && !html.contains("-<b>"),
        "pod names escaped"
    );
    let plain = render(&run_with("web-old-c", 3).input()).unwrap();
    assert!(!plain.contains("Load workers"), "none from this host");
}
