//! `summary.json` and the human summary printed at the end of a run.

use crate::load::LoadRun;
use crate::load::host::HostLimits;
use crate::load::outcome::Outcome;
use crate::load::plan::{LoadPlan, Pacing};
use crate::verdict::{LoadCounts, Verdict, judge_load};
use hdrhistogram::Histogram;
use serde::Serialize;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

pub const SUMMARY_JSON: &str = "summary.json";

#[derive(Clone, Debug, Serialize)]
pub struct Percentiles {
    /// Which instant the times count from: `start` (when the connect
    /// began) or `scheduled` (when the request was due, open model).
    pub measured_from: &'static str,
    pub count: u64,
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub p99_9: f64,
    pub max: f64,
    pub mean: f64,
}

/// Requests per second over `elapsed_s`, to one decimal (0 for no time).
pub fn rate_per_s(sent: u64, elapsed_s: f64) -> f64 {
    if elapsed_s > 0.0 {
        (sent as f64 / elapsed_s * 10.0).round() / 10.0
    } else {
        0.0
    }
}

pub fn percentiles(h: &Histogram<u64>, measured_from: &'static str) -> Percentiles {
    let ms = |us: u64| us as f64 / 1000.0;
    Percentiles {
        measured_from,
        count: h.len(),
        p50: ms(h.value_at_quantile(0.50)),
        p90: ms(h.value_at_quantile(0.90)),
        p99: ms(h.value_at_quantile(0.99)),
        p99_9: ms(h.value_at_quantile(0.999)),
        max: ms(h.max()),
        mean: (h.mean() / 1000.0 * 1000.0).round() / 1000.0,
    }
}

#[derive(Debug, Serialize)]
pub struct Requests {
    pub sent: u64,
    pub ok: u64,
    /// Failures the target answers for.
    pub failed: u64,
    /// The load host's own errors; never counted as failures.
    pub client_resource: u64,
    /// Arrivals refused by the in-flight cap: not sent.
    pub shed: u64,
    pub rows_written: u64,
    pub new_connections: u64,
}

#[derive(Debug, Serialize)]
pub struct Settings {
    pub url: String,
    pub rate: Option<f64>,
    pub model: &'static str,
    pub concurrency: usize,
    pub requests: Option<u64>,
    pub duration_s: Option<f64>,
    pub timeout_ms: u128,
    pub connect_timeout_ms: u128,
    pub keepalive: bool,
    pub workers: usize,
    pub source_ips: Vec<String>,
}

#[derive(Debug, Serialize)]
pub struct LoadSummary {
    pub kind: &'static str,
    pub baton_version: &'static str,
    pub verdict: Verdict,
    pub reason: String,
    pub interrupted: bool,
    pub started_at: String,
    pub elapsed_s: f64,
    pub settings: Settings,
    pub requests: Requests,
    /// Count per outcome, every outcome present.
    pub outcomes: BTreeMap<&'static str, u64>,
    pub rps_target: Option<f64>,
    pub rps_achieved: f64,
    /// Successful requests, from the actual start.
    pub latency_ms: Percentiles,
    /// Successful requests, from the scheduled instant (includes lateness).
    pub response_time_ms: Percentiles,
    /// Actual start minus scheduled instant, every request.
    pub lateness_ms: Percentiles,
    pub connect_ms: Percentiles,
    pub ttfb_ms: Percentiles,
    /// Failures by errno.
    pub errors: BTreeMap<String, u64>,
    pub host: HostLimits,
    pub warnings: Vec<String>,
}

impl LoadSummary {
    pub fn build(plan: &LoadPlan, run: &LoadRun, max_failed: u64) -> LoadSummary {
        let s = &run.stats;
        let counts = LoadCounts {
            sent: s.sent(),
            failed: s.failed(),
            client_resource: s.count(Outcome::ClientResource),
            rows_written: run.rows_written,
            max_failed,
        };
        let (verdict, mut reason) = judge_load(&counts);
        if counts.client_resource > 0 {
            let errnos: Vec<&str> = s.errnos.keys().map(String::as_str).collect();
            reason = format!(
                "{reason}: {}",
                crate::load::host::client_resource_advice(&errnos)
            );
        }
        let elapsed_s = run.elapsed.as_secs_f64();
        LoadSummary {
            kind: "load",
            baton_version: env!("CARGO_PKG_VERSION"),
            verdict,
            reason,
            interrupted: run.interrupted,
            started_at: humantime::format_rfc3339_millis(run.started_at).to_string(),
            elapsed_s: (elapsed_s * 1000.0).round() / 1000.0,
            settings: Settings {
                url: plan.url.clone(),
                rate: plan.rate(),
                model: match plan.pacing {
                    Pacing::Open { .. } => "open",
                    Pacing::Closed => "closed",
                },
                concurrency: plan.concurrency,
                requests: plan.max_requests,
                duration_s: plan.duration.map(|d| d.as_secs_f64()),
                timeout_ms: plan.template.timeout.as_millis(),
                connect_timeout_ms: plan.template.connect_timeout.as_millis(),
                keepalive: plan.template.keepalive,
                workers: plan.workers,
                source_ips: plan.source_ips.iter().map(ToString::to_string).collect(),
            },
            requests: Requests {
                sent: counts.sent,
                ok: s.count(Outcome::Ok),
                failed: counts.failed,
                client_resource: counts.client_resource,
                shed: s.shed,
                rows_written: run.rows_written,
                new_connections: s.connections,
            },
            outcomes: s.outcome_counts(),
            rps_target: plan.rate(),
            rps_achieved: rate_per_s(counts.sent, elapsed_s),
            latency_ms: percentiles(&s.latency_us, "start"),
            response_time_ms: percentiles(&s.response_us, "scheduled"),
            lateness_ms: percentiles(&s.lateness_us, "scheduled"),
            connect_ms: percentiles(&s.connect_us, "start"),
            ttfb_ms: percentiles(&s.ttfb_us, "start"),
            errors: s.errnos.clone(),
            host: run.host.clone(),
            warnings: run.warnings.clone(),
        }
    }

    pub fn write(&self, dir: &Path) -> std::io::Result<()> {
        let json = serde_json::to_string_pretty(self).map_err(std::io::Error::other)?;
        std::fs::write(dir.join(SUMMARY_JSON), json + "\n")
    }

    /// The summary a person reads on the terminal.
    pub fn human(&self) -> String {
        let mut o = String::new();
        let r = &self.requests;
        let _ = writeln!(o, "baton load {}", self.settings.url);
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
        let failing: Vec<String> = self
            .outcomes
            .iter()
            .filter(|(k, v)| **k != "ok" && **v > 0)
            .map(|(k, v)| format!("{k} {v}"))
            .collect();
        if !failing.is_empty() {
            let _ = writeln!(o, "  outcomes   {}", failing.join(", "));
        }
        let _ = writeln!(
            o,
            "  rate       {:.1} req/s achieved{} over {:.2} s, {} new connections",
            self.rps_achieved,
            self.rps_target
                .map_or(" (closed model)".to_string(), |t| format!(" of {t} asked")),
            self.elapsed_s,
            r.new_connections,
        );
        let l = &self.latency_ms;
        let _ = writeln!(
            o,
            "  latency    p50 {:.2} ms, p90 {:.2}, p99 {:.2}, p99.9 {:.2}, max {:.2} (ok requests, from start)",
            l.p50, l.p90, l.p99, l.p99_9, l.max
        );
        if self.rps_target.is_some() {
            let rt = &self.response_time_ms;
            let _ = writeln!(
                o,
                "  response   p50 {:.2} ms, p99 {:.2}, max {:.2} (from the scheduled instant)",
                rt.p50, rt.p99, rt.max
            );
            let la = &self.lateness_ms;
            let _ = writeln!(
                o,
                "  lateness   p50 {:.3} ms, p99 {:.3}, max {:.3}",
                la.p50, la.p99, la.max
            );
        }
        let _ = writeln!(
            o,
            "  connect    p50 {:.3} ms, p99 {:.3}; first byte p50 {:.3}, p99 {:.3}",
            self.connect_ms.p50, self.connect_ms.p99, self.ttfb_ms.p50, self.ttfb_ms.p99
        );
        let verdict = self.verdict.word();
        let _ = writeln!(
            o,
            "{verdict}{}: {}",
            if self.interrupted {
                " (interrupted)"
            } else {
                ""
            },
            self.reason
        );
        o
    }
}
