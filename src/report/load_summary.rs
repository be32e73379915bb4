//! The summary of a `baton load`: built from the load run, written as
//! `summary.json` (kind `load`), and the text printed at the end.
//!
//! Not for: measuring (the load engine's own figures) or judging
//! (`verdict::load`).

use crate::load::LoadRun;
use crate::load::outcome::Outcome;
use crate::load::plan::{LoadPlan, Pacing};
use crate::rundir::LoadSummary;
use crate::rundir::summary::{LoadRequests, LoadSettings, Percentiles, RequestCounts, rate_per_s};
use crate::verdict::Verdict;
use crate::verdict::load::{LoadCounts, judge_load};
use crate::verdict::schedule::ScheduleLimits;
use std::fmt::Write as _;

/// The summary of `run`, judged with `max_failed` failures allowed and
/// the schedule held to `limits`.
pub fn build(
    plan: &LoadPlan,
    run: &LoadRun,
    max_failed: u64,
    limits: ScheduleLimits,
) -> LoadSummary {
    let s = &run.stats;
    let counts = LoadCounts {
        sent: s.sent(),
        failed: s.failed(),
        client_resource: s.count(Outcome::ClientResource),
        rows_written: run.rows_written,
        max_failed,
        schedule: s.schedule_facts(plan.rate()),
        schedule_limits: limits,
    };
    let judgement = judge_load(&counts);
    let (mut verdict, mut reason) = (judgement.verdict, judgement.reason);
    if run.interrupted {
        verdict = Verdict::Interrupted;
        reason = format!("interrupted: {reason} so far; nothing is concluded");
    }
    if counts.client_resource > 0 {
        let errnos: Vec<&str> = s.errnos.keys().map(String::as_str).collect();
        reason = format!(
            "{reason}: {}",
            crate::load::host::client_resource_advice(&errnos)
        );
    }
    let elapsed_s = run.elapsed.as_secs_f64();
    LoadSummary {
        baton_version: env!("CARGO_PKG_VERSION").to_string(),
        verdict,
        reason,
        interrupted: run.interrupted,
        started_at: humantime::format_rfc3339_millis(run.started_at).to_string(),
        elapsed_s: (elapsed_s * 1000.0).round() / 1000.0,
        settings: LoadSettings {
            url: plan.url.clone(),
            rate: plan.rate(),
            model: match plan.pacing {
                Pacing::Open { .. } => "open",
                Pacing::Closed => "closed",
            }
            .to_string(),
            concurrency: plan.concurrency,
            requests: plan.max_requests,
            duration_s: plan.duration.map(|d| d.as_secs_f64()),
            timeout_ms: plan.template.timeout.as_millis() as u64,
            connect_timeout_ms: plan.template.connect_timeout.as_millis() as u64,
            keepalive: plan.template.keepalive,
            workers: plan.workers,
            source_ips: plan.source_ips.iter().map(ToString::to_string).collect(),
        },
        requests: LoadRequests {
            counts: RequestCounts {
                sent: counts.sent,
                ok: s.count(Outcome::Ok),
                failed: counts.failed,
                client_resource: counts.client_resource,
                shed: s.shed,
                rows_written: run.rows_written,
            },
            new_connections: s.connections,
        },
        outcomes: s.outcome_counts(),
        rps_target: plan.rate(),
        rps_achieved: rate_per_s(counts.sent, elapsed_s),
        latency_ms: Percentiles::of(&s.latency_us, "start"),
        response_time_ms: Percentiles::of(&s.response_us, "scheduled"),
        lateness_ms: Percentiles::of(&s.lateness_us, "scheduled"),
        connect_ms: Percentiles::of(&s.connect_us, "start"),
        ttfb_ms: Percentiles::of(&s.ttfb_us, "start"),
        errors: s.errnos.clone(),
        schedule: judgement.schedule,
        host: run.host.clone(),
        warnings: run.warnings.clone(),
    }
}

/// The summary a person reads on the terminal.
pub fn human(s: &LoadSummary) -> String {
    let mut o = String::new();
    let r = &s.requests.counts;
    let _ = writeln!(o, "baton load {}", s.settings.url);
    let _ = writeln!(
        o,
        "  requests   {} sent, {} ok, {} failed{}{}",
        r.sent,
        r.ok,
        r.failed,
        if r.client_resource > 0 {
            format!(", {} HARNESS (client_resource)", r.client_resource)
        } else {
            String::new()
        },
        if r.shed > 0 {
            format!(", {} shed by the in-flight cap", r.shed)
        } else {
            String::new()
        },
    );
    let failing: Vec<String> = s
        .outcomes
        .iter()
        .filter(|(k, v)| k.as_str() != "ok" && **v > 0)
        .map(|(k, v)| format!("{k} {v}"))
        .collect();
    if !failing.is_empty() {
        let _ = writeln!(o, "  outcomes   {}", failing.join(", "));
    }
    let _ = writeln!(
        o,
        "  rate       {:.1} req/s achieved{} over {:.2} s, {} new connections",
        s.rps_achieved,
        s.rps_target
            .map_or(" (closed model)".to_string(), |t| format!(" of {t} asked")),
        s.elapsed_s,
        s.requests.new_connections,
    );
    let l = &s.latency_ms;
    let _ = writeln!(
        o,
        "  latency    p50 {:.2} ms, p90 {:.2}, p99 {:.2}, p99.9 {:.2}, max {:.2} (ok requests, from start)",
        l.p50, l.p90, l.p99, l.p99_9, l.max
    );
    if s.rps_target.is_some() {
        let rt = &s.response_time_ms;
        let _ = writeln!(
            o,
            "  response   p50 {:.2} ms, p99 {:.2}, max {:.2} (from the scheduled instant)",
            rt.p50, rt.p99, rt.max
        );
        let la = &s.lateness_ms;
        let _ = writeln!(
            o,
            "  lateness   p50 {:.3} ms, p99 {:.3}, max {:.3}",
            la.p50, la.p99, la.max
        );
    }
    let _ = writeln!(
        o,
        "  connect    p50 {:.3} ms, p99 {:.3}; first byte p50 {:.3}, p99 {:.3}",
        s.connect_ms.p50, s.connect_ms.p99, s.ttfb_ms.p50, s.ttfb_ms.p99
    );
    let verdict = s.verdict.word();
    let _ = writeln!(
        o,
        "{verdict}{}: {}",
        if s.interrupted { " (interrupted)" } else { "" },
        s.reason
    );
    o
}
