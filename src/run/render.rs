//! Every report of a run directory, rendered from its files alone:
//! `requests.csv`, `events.csv`, `profile.resolved.yaml` and `run.json`.
//! `baton run` ends here, and `baton report DIR` is this and nothing else,
//! so a report rebuilt after an upgrade, or on another machine for a
//! postmortem, is the same report (byte for byte, for the same baton).

use crate::analyse::{self, Analysis};
use crate::attribution::{self, AttributionConfig, AttributionResult, propagation};
use crate::cluster::event::EventKind;
use crate::exit::Exit;
use crate::profile;
use crate::report::{run_summary, tables};
use crate::rundir::summary::{
    BlindSpotLine, Lags, Percentiles, RequestCounts, Span, ns_to_ms, rate_per_s,
};
use crate::rundir::{
    self, EVENTS_CSV, FAILURES_CSV, PROFILE_YAML, REPORT_HTML, REQUESTS_CSV, RunRecord, RunSummary,
    TIMELINE_CSV,
};
use crate::timeline::{Timeline, lags};
use crate::verdict::run::{Limits, RunFacts, judge_run};
use crate::verdict::schedule::{self, ScheduleFacts, ScheduleLimits};
use crate::verdict::{Verdict, share};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// What a finished run produced.
pub struct RunOutcome {
    pub summary: RunSummary,
    pub out_dir: PathBuf,
    pub attribution: AttributionResult,
    pub analysis: Analysis,
    pub timeline: Timeline,
}

impl RunOutcome {
    pub fn exit_code(&self) -> u8 {
        crate::exit::for_verdict(self.summary.verdict, self.summary.interrupted)
    }
}

/// Read the run directory `dir`, attribute, judge, and (re)write every
/// derived file: `failures.csv`, `timeline.csv`, `summary.json`,
/// `summary.md`, `junit.xml`, `report.html`. For `baton report DIR`: a
/// directory whose run never finished is rendered with a warning.
pub fn render_dir(dir: &Path) -> anyhow::Result<RunOutcome> {
    render(dir, Caller::Report)
}

/// Who renders: `baton report` on a directory written earlier, or the
/// run itself, whose `running` marker goes once its reports are written.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Caller {
    Report,
    Run,
}

pub(super) fn render(dir: &Path, caller: Caller) -> anyhow::Result<RunOutcome> {
    let missing = |e: &dyn std::fmt::Display| {
        Exit::usage(format!(
            "{} is not a complete run directory: {e}",
            dir.display()
        ))
    };
    // A report that cannot be written (a full disk) is a run not
    // recorded faithfully (3); none is left half-written.
    let write_err = |what: &str, e: &dyn std::fmt::Display| Exit {
        code: crate::exit::INVALID,
        message: format!("cannot write {what} in {}: {e}", dir.display()),
    };
    let missing_files = rundir::missing_record_files(dir);
    let unfinished = dir.join(rundir::RUNNING).is_file();
    if !missing_files.is_empty() {
        return Err(Exit::usage(format!(
            "{} is not a complete run directory: it has no {}{}",
            dir.display(),
            missing_files.join(", "),
            if unfinished {
                "; its `running` file says the run that wrote it never finished (killed?)"
            } else {
                " (give a directory `baton run` wrote)"
            }
        ))
        .into());
    }
    if unfinished && caller == Caller::Report {
        eprintln!(
            "baton: warning: {} holds `running`: the run that wrote it did not finish, so its record may stop early",
            dir.display()
        );
    }
    // run.json first: it says whether this baton can read the rest.
    let record = RunRecord::read(dir).map_err(|e| match e {
        rundir::RunDirError::TooNew { .. } => Exit::usage(e),
        e => missing(&e),
    })?;
    let profile = profile::read_resolved(&dir.join(PROFILE_YAML)).map_err(|e| missing(&e))?;
    let events = rundir::events::read(&dir.join(EVENTS_CSV)).map_err(|e| missing(&e))?;

    // "After the rollout" starts when the steps ended and the last pod
    // that went away during the run was gone: a terminating pod may still
    // answer (a preStop sleep keeps it serving) until then.
    let last_gone = events
        .iter()
        .filter(|e| e.kind == EventKind::PodGone && e.observed_ns >= record.steps_started_ns)
        .map(|e| e.observed_ns)
        .max()
        .unwrap_or(0);
    let timeline = Timeline::new(events);
    // Every endpoint that became routable during the run: its Pod's first
    // answer measures the proxies' lag.
    let additions = timeline.routable_additions();
    let share_windows = share_windows(&profile, &record);
    let marks = analyse::Marks {
        windows: share_windows
            .iter()
            .filter_map(|(from, to)| from.map(|f| (f, *to)))
            .collect(),
        before_ns: Some(record.steps_started_ns),
        settled_ns: Some(record.steps_ended_ns.max(last_gone)),
        probes: additions
            .iter()
            .map(|(pod, iv)| analyse::Probe {
                pod: pod.to_string(),
                from_ns: iv.start,
                until_ns: iv.end,
            })
            .collect(),
    };
    let analysis = analyse::analyse(&dir.join(REQUESTS_CSV), marks).map_err(|e| missing(&e))?;
    let propagation = propagation::choose(
        &configured_allowance(&record),
        &propagation_samples(&additions, &analysis),
    );

    // In-cluster workers' clocks are known to within their error bound:
    // a request's time may be off by that much against the events'.
    let mut cfg = AttributionConfig {
        propagation_allowance: propagation.allowance()
            + Duration::from_nanos(record.clock_error_ns()),
        ..AttributionConfig::default()
    };
    cfg.spec = deployment_before(dir)
        .as_ref()
        .and_then(crate::attribution::spec::SpecFacts::of);
    let attribution =
        attribution::attribute(&analysis.failures, &timeline, &analysis.answers, &cfg);
    tables::write_failures(
        &dir.join(FAILURES_CSV),
        &analysis.failures,
        &attribution.per_request,
    )
    .map_err(|e| write_err(FAILURES_CSV, &e))?;
    tables::write_timeline(&dir.join(TIMELINE_CSV), &analysis.buckets, &timeline)
        .map_err(|e| write_err(TIMELINE_CSV, &e))?;

    let summary = summarise(
        &profile,
        &record,
        &analysis,
        &attribution,
        &timeline,
        propagation,
        ClusterFacts {
            active_replicasets: active_replicasets_after(dir),
            pinned_by_affinity: pinned_by_affinity(
                dir,
                &profile,
                cfg.spec.as_ref().map(|s| s.replicas),
            ),
        },
    );
    run_summary::write_all(&summary, dir).map_err(Exit::from)?;
    // The HTML report is for people: failing to write it warns, it does
    // not fail the run (the gate reads summary.json and the exit code).
    let html = crate::report::html::HtmlInput {
        summary: &summary,
        buckets: &analysis.buckets,
        timeline: &timeline,
        failures: &analysis.failures,
        attributions: &attribution.per_request,
    };
    let html_path = dir.join(REPORT_HTML);
    if let Err(e) = crate::report::html::render(&html)
        .map_err(|e| e.to_string())
        .and_then(|s| rundir::write_atomic(&html_path, s.as_bytes()).map_err(|e| e.to_string()))
    {
        eprintln!("baton: warning: cannot write {}: {e}", html_path.display());
    }
    Ok(RunOutcome {
        summary,
        out_dir: dir.to_path_buf(),
        attribution,
        analysis,
        timeline,
    })
}

/// The allowance the run was given (`run.json`), else baton's default.
fn configured_allowance(record: &RunRecord) -> propagation::Configured {
    let default = AttributionConfig::default().propagation_allowance;
    propagation::Configured {
        value: record
            .propagation_allowance_ms
            .map_or(default, Duration::from_millis),
        from: match (
            &record.propagation_allowance_from,
            record.propagation_allowance_ms,
        ) {
            (Some(from), _) => from.clone(),
            (None, Some(_)) => "the allowance run.json records".into(),
            (None, None) => "baton's default for a real cluster".into(),
        },
        set_by_profile: record.propagation_allowance_from.as_deref()
            == Some(profile::ALLOWANCE_FROM_PROFILE),
    }
}

/// Each `version_share` threshold's window on the run clock (see
/// `verdict::share`), from the steps as they ran.
fn share_windows(
    profile: &profile::Profile,
    record: &RunRecord,
) -> Vec<(Option<u64>, Option<u64>)> {
    let ns = |ms: f64| (ms.max(0.0) * 1e6) as u64;
    let spans: Vec<share::StepSpan> = record
        .rollout
        .steps
        .iter()
        .map(|st| share::StepSpan {
            index: st.index,
            started_ns: ns(st.started_ms),
            ended_ns: st.outcome.is_done().then(|| ns(st.ended_ms)),
            changes: profile
                .rollout
                .steps
                .get(st.index.wrapping_sub(1))
                .is_some_and(|s| s.changes_cluster()),
        })
        .collect();
    profile
        .thresholds
        .version_share
        .iter()
        .map(|v| share::window_of(v, &spans))
        .collect()
}

/// For each endpoint that became routable while the load ran and whose
/// Pod then answered: how long after it became routable.
fn propagation_samples(
    additions: &[(&str, crate::timeline::Interval)],
    analysis: &Analysis,
) -> Vec<Duration> {
    let Some(load_from) = analysis.first_start_ns else {
        return Vec::new();
    };
    additions
        .iter()
        .zip(&analysis.first_answers)
        .filter(|((_, iv), _)| iv.start >= load_from)
        .filter_map(|((_, iv), first)| first.map(|f| Duration::from_nanos(f - iv.start)))
        .collect()
}

/// Judge and summarise. Counts and latencies come from the rows (the
/// engine's own figures are the same rows); what the rows cannot say
/// (requests sent, shed, elapsed) comes from `run.json`.
fn summarise(
    profile: &profile::Profile,
    record: &RunRecord,
    analysis: &Analysis,
    attribution: &AttributionResult,
    timeline: &Timeline,
    propagation: propagation::Chosen,
    cluster: ClusterFacts,
) -> RunSummary {
    let stats = &analysis.stats;
    let th = &profile.thresholds;
    // The watches' own blind spots, and those read from events that
    // arrived long after they happened.
    let longest_blind = record
        .blind_spots
        .iter()
        .map(|b| b.len_ns)
        .chain(timeline.late_blind_spots().map(|b| b.end_ns - b.start_ns))
        .map(Duration::from_nanos)
        .max()
        .unwrap_or_default();
    // The heartbeat's last probe decides whether the run ended blind: a
    // watch still re-listing at the end, against an API server that
    // answers, has only missed its last moments (its blind spot counts
    // like any other).
    let blind_at_end = record
        .blind_spots
        .iter()
        .filter(|b| b.open && b.resource == crate::cluster::liveness::API)
        .map(|b| (b.resource.clone(), Duration::from_nanos(b.len_ns)))
        .max_by_key(|(_, len)| *len);
    // Analysis counted the windows whose step ended, in order.
    let mut counted = analysis.versions_in_windows.iter();
    let share_windows = share_windows(profile, record)
        .into_iter()
        .map(|(from_ns, to_ns)| share::ShareWindow {
            from_ns,
            to_ns,
            versions: from_ns
                .and_then(|_| counted.next().cloned())
                .unwrap_or_default(),
        })
        .collect();
    let facts = RunFacts {
        share_windows,
        active_replicasets: cluster.active_replicasets,
        pinned_by_affinity: cluster.pinned_by_affinity.clone(),
        blind_at_end,
        sent: record.sent,
        rows_written: analysis.rows,
        failed: analysis.failed,
        client_resource: analysis.client_resource,
        p99_ms: (!stats.response_us.is_empty())
            .then(|| stats.response_us.value_at_quantile(0.99) as f64 / 1000.0),
        latency_p99_ms: (!stats.latency_us.is_empty())
            .then(|| stats.latency_us.value_at_quantile(0.99) as f64 / 1000.0),
        longest_disruption: analysis
            .disruption
            .map(|d| Duration::from_nanos(d.len_ns())),
        versions_before: analysis.versions_before.clone(),
        versions_after: analysis.versions_after_settled.clone(),
        backends_after: analysis.backends_after_settled.len() as u64,
        rollout_incomplete: record.rollout_incomplete.clone(),
        longest_blind_spot: longest_blind,
        interrupted: record.interrupted,
        workers_lost: record
            .workers
            .iter()
            .filter_map(|w| {
                w.lost.as_ref().map(|why| {
                    format!(
                        "load worker {} (pod {}): {} records arrived{}: {why}",
                        w.index,
                        w.pod,
                        w.records,
                        w.sent
                            .map(|n| format!(" of the {n} it sent"))
                            .unwrap_or_default()
                    )
                })
            })
            .collect(),
        // Each worker is held to the schedule bounds of one host, with its
        // share of the rate.
        workers_behind: record
            .workers
            .iter()
            .filter_map(|w| {
                let stats = analysis.by_worker.get(&w.index)?;
                let facts = ScheduleFacts {
                    shed: w.shed,
                    ..stats.schedule_facts(Some(profile.load.rate / record.workers.len() as f64))
                };
                let (_, why) = schedule::judge(&facts, &schedule_limits(th));
                why.map(|why| format!("load worker {} (pod {}): {why}", w.index, w.pod))
            })
            .collect(),
        schedule: ScheduleFacts {
            shed: record.shed,
            ..stats.schedule_facts(Some(profile.load.rate))
        },
    };
    let limits = Limits {
        max_failed: th.max_failed,
        max_error_rate: th.max_error_rate,
        p99_latency: th.p99_latency,
        max_disruption: th.max_disruption,
        initial_version: th.initial_version.clone(),
        final_version: th.final_version.clone(),
        min_backends: th.min_backends,
        max_blind_spot: th.max_blind_spot,
        rollout_must_complete: th.rollout_must_complete,
        single_replicaset: th.single_replicaset,
        fail_on_pinned_affinity: th.fail_on_pinned_affinity,
        version_share: th.version_share.clone(),
        schedule: schedule_limits(th),
    };
    let judgement = judge_run(&facts, &limits);
    let version_shares = share::figures(&limits.version_share, &facts.share_windows);
    let mut reason = judgement.reason.clone();
    if judgement.verdict == Verdict::Invalid && facts.client_resource > 0 {
        let errnos: Vec<&str> = record.errnos.keys().map(String::as_str).collect();
        reason = format!(
            "{reason}: {}",
            crate::load::host::client_resource_advice(&errnos)
        );
    }
    let elapsed_s = record.elapsed_ns as f64 / 1e9;
    let pod_lags = lags::pod_lags(timeline);
    RunSummary {
        baton_version: env!("CARGO_PKG_VERSION").to_string(),
        name: profile.name.clone(),
        verdict: judgement.verdict,
        reason,
        interrupted: record.interrupted,
        started_at: record.started_at.clone(),
        elapsed_s: (elapsed_s * 1000.0).round() / 1000.0,
        cluster: record.cluster.clone(),
        simulator: record.simulator,
        namespace: record.namespace.clone(),
        deployment: profile.rollout.deployment.clone(),
        target_url: record.target_url.clone(),
        thresholds: judgement.thresholds,
        version_shares,
        requests: RequestCounts {
            sent: record.sent,
            ok: analysis.ok,
            failed: analysis.failed,
            client_resource: analysis.client_resource,
            shed: record.shed,
            rows_written: analysis.rows,
        },
        outcomes: stats.outcome_counts(),
        causes: attribution
            .count_by_cause()
            .into_iter()
            .map(|(c, n)| (c.as_str().to_string(), n))
            .collect(),
        incidents: attribution.incidents.clone(),
        rps_target: profile.load.rate,
        rps_achieved: rate_per_s(record.sent, elapsed_s),
        latency_ms: Percentiles::of(&stats.latency_us, "start"),
        response_time_ms: Percentiles::of(&stats.response_us, "scheduled"),
        lateness_ms: Percentiles::of(&stats.lateness_us, "scheduled"),
        longest_disruption: analysis.disruption.map(|d| Span {
            from_ms: ns_to_ms(d.from_ns),
            to_ms: ns_to_ms(d.to_ns),
            len_ms: ns_to_ms(d.len_ns()),
        }),
        failures: analyse::failure_figures(&analysis.buckets, &analysis.failures),
        versions_before_rollout: analysis.versions_before.clone(),
        versions_after_rollout: analysis.versions_after_settled.clone(),
        backends_after_rollout: analysis.backends_after_settled.clone(),
        rollout: record.rollout.clone(),
        lags: Lags {
            summary: lags::LagSummary::of(&pod_lags),
            pods: pod_lags,
        },
        watch_blind_spots: record
            .blind_spots
            .iter()
            .map(|b| BlindSpotLine {
                resource: b.resource.clone(),
                from_ms: ns_to_ms(b.from_ns),
                len_ms: ns_to_ms(b.len_ns),
                open: b.open,
            })
            .chain(timeline.late_blind_spots().map(|b| BlindSpotLine {
                resource: b.watch.clone(),
                from_ms: ns_to_ms(b.start_ns),
                len_ms: ns_to_ms(b.end_ns - b.start_ns),
                open: false,
            }))
            .collect(),
        warnings: record
            .warnings
            .iter()
            .cloned()
            .chain(propagation.warning.clone())
            .chain(cluster.pinned_by_affinity)
            .collect(),
        propagation: Some(propagation),
        schedule: judgement.schedule.clone(),
        teardown: record.teardown.clone(),
        workers: record
            .workers
            .iter()
            .map(|w| {
                let t = analysis.by_worker.get(&w.index);
                crate::rundir::summary::WorkerFigures {
                    index: w.index,
                    pod: w.pod.clone(),
                    node: w.node.clone(),
                    sent: t.map_or(0, |s| s.sent()),
                    failed: t.map_or(0, |s| s.failed()),
                    shed: w.shed,
                    lateness_p99_ms: w.lateness_p99_ms,
                    clock_error_ms: w.clock_error_ns as f64 / 1e6,
                    lost: w.lost.clone(),
                }
            })
            .collect(),
    }
}

/// How closely the load must keep its schedule (`thresholds`).
fn schedule_limits(th: &profile::Thresholds) -> ScheduleLimits {
    ScheduleLimits {
        max_lateness: th.max_lateness,
        min_achieved: th.min_achieved_rate,
    }
}

/// What the run's `cluster/` snapshots say that the verdict needs.
struct ClusterFacts {
    active_replicasets: Option<Vec<String>>,
    pinned_by_affinity: Option<String>,
}

/// The target's ReplicaSets that want Pods when the run ended
/// (`cluster/replicasets.after.yaml`); `None` when not recorded.
fn active_replicasets_after(dir: &Path) -> Option<Vec<String>> {
    #[derive(serde::Deserialize)]
    struct List {
        items: Vec<k8s_openapi::api::apps::v1::ReplicaSet>,
    }
    let list: List = cluster_snapshot(dir, "replicasets", "after")?;
    Some(crate::cluster::snapshot::active_replicasets(&list.items))
}

/// The load pinned to some Pods by the Service's session affinity
/// (`cluster/service.before.yaml`, the Deployment's replicas and the
/// load's source addresses); `None` when not, or not recorded.
/// `replicas`: the Deployment's, read once with the rest of its spec.
fn pinned_by_affinity(
    dir: &Path,
    profile: &profile::Profile,
    replicas: Option<i32>,
) -> Option<String> {
    let service: k8s_openapi::api::core::v1::Service = cluster_snapshot(dir, "service", "before")?;
    let replicas = replicas?;
    crate::verdict::affinity::pinned(
        service.spec.as_ref()?.session_affinity.as_deref(),
        service.metadata.name.as_deref().unwrap_or("?"),
        profile.load.source_ips.len().max(1),
        u64::try_from(replicas).unwrap_or(0),
    )
}

/// The Deployment as it was before the run (`cluster/deployment.before.yaml`),
/// for remedies; `None` when the snapshot is missing or unreadable (a
/// remedy then says what it can without it).
fn deployment_before(dir: &Path) -> Option<k8s_openapi::api::apps::v1::Deployment> {
    cluster_snapshot(dir, "deployment", "before")
}

/// One of the run's `cluster/OBJECT.LABEL.yaml` snapshots; `None` when
/// missing or unreadable (what needs it then says what it can without).
fn cluster_snapshot<T: serde::de::DeserializeOwned>(
    dir: &Path,
    object: &str,
    label: &str,
) -> Option<T> {
    let text = std::fs::read_to_string(rundir::cluster_file(dir, object, label)).ok()?;
    serde_norway::from_str(&text).ok()
}
