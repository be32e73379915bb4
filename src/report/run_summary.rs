//! The summary of a `baton run`: `summary.json` (everything, for tools),
//! `summary.md` (for a CI step summary), `junit.xml` (one test case per
//! threshold, for CI test views) and the text printed on the terminal.
//! All four render the same [`RunSummary`], so they cannot disagree.
//!
//! Not for: measuring or judging (the summary is built from their results).

use super::look::Look;
use crate::rundir::{JUNIT_XML, RunDirError, RunSummary, SUMMARY_MD, Summary, write_atomic};
use crate::verdict::Verdict;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

/// Write `summary.json`, `summary.md` and `junit.xml` into `dir`.
pub fn write_all(summary: &RunSummary, dir: &Path) -> Result<(), RunDirError> {
    Summary::write_run(summary, dir)?;
    write_atomic(&dir.join(SUMMARY_MD), markdown(summary).as_bytes())?;
    let xml = dir.join(JUNIT_XML);
    let text = junit(summary).map_err(|e| RunDirError::write(&xml, e))?;
    write_atomic(&xml, text.as_bytes())
}

/// What a person reads on the terminal at the end of a run.
pub fn human(s: &RunSummary) -> String {
    human_for(s, &Look::plain())
}

/// The same, styled for where it is read: the answer first (verdict,
/// when and how densely requests failed, each incident with its remedy),
/// then the measures and the thresholds.
pub fn human_for(s: &RunSummary, look: &Look) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "\n{}: {}  ({}{})",
        look.verdict(s.verdict_word(), s.verdict, s.interrupted),
        s.reason,
        s.name,
        if s.simulator {
            ", on the SIMULATOR, not a cluster"
        } else {
            ""
        }
    );
    if let Some(f) = failure_line(s) {
        let _ = writeln!(out, "{}", look.wrap("  failures   ", &f));
    }
    for i in &s.incidents {
        let _ = writeln!(
            out,
            "{}",
            look.wrap(
                &format!("  incident {}: ", i.id),
                &format!(
                    "{} × {} between {:.2} s and {:.2} s, pods {}",
                    i.failures,
                    i.cause.as_str(),
                    i.first_ns as f64 / 1e9,
                    i.last_ns as f64 / 1e9,
                    i.pods.join(", ")
                )
            )
        );
        let _ = writeln!(out, "{}", look.wrap("    remedy:   ", &i.remedy.text));
        let _ = writeln!(out, "{}", look.wrap("    evidence: ", &i.evidence));
    }
    let _ = writeln!(
        out,
        "{}{} sent, {} ok, {} failed{} at {:.0}/s (target {:.0}/s)",
        look.dim("  requests   "),
        s.requests.sent,
        s.requests.ok,
        s.requests.failed,
        if s.requests.client_resource > 0 {
            format!(", {} harness", s.requests.client_resource)
        } else {
            String::new()
        },
        s.shown_rps(),
        s.rps_target
    );
    if let Some(d) = s.longest_disruption {
        let _ = writeln!(
            out,
            "{}{:.0} ms with no successful response (from {:.1} s)",
            look.dim("  disruption "),
            d.len_ms,
            d.from_ms / 1000.0
        );
    }
    let _ = writeln!(
        out,
        "{}before: {}; after: {} from {} pod(s)",
        look.dim("  versions   "),
        counts(&s.versions_before_rollout),
        counts(&s.versions_after_rollout),
        s.backends_after_rollout.len()
    );
    let _ = writeln!(
        out,
        "{}{}",
        look.dim("  rollout    "),
        if s.rollout.completed {
            "completed".to_string()
        } else {
            s.rollout
                .stall
                .as_ref()
                .map_or("did not complete".to_string(), |st| {
                    format!(
                        "stalled: {}{}",
                        st.reason,
                        if st.undone { " (undone)" } else { "" }
                    )
                })
        }
    );
    if !s.workers.is_empty() {
        let _ = writeln!(
            out,
            "{}{}",
            look.dim("  workers    "),
            workers_line(&s.workers)
        );
    }
    if let Some(t) = &s.teardown {
        let _ = writeln!(out, "{}{}", look.dim("  teardown   "), teardown_line(t));
    }
    for t in &s.thresholds {
        let _ = writeln!(
            out,
            "  {} {:<18} {} (limit {})",
            if t.pass { "ok  " } else { "FAIL" },
            t.name,
            t.value,
            t.limit
        );
    }
    for w in &s.warnings {
        let _ = writeln!(out, "{}", look.wrap("  warning    ", w));
    }
    out
}

/// The wall-clock time (`HH:MM:SS`, UTC) of an instant on the run clock,
/// from the run's `started_at`: what lines up with dashboards and logs.
pub fn wall_clock(s: &RunSummary, run_ms: f64) -> Option<String> {
    let start = humantime::parse_rfc3339(&s.started_at).ok()?;
    let at = start + std::time::Duration::from_secs_f64(run_ms.max(0.0) / 1000.0);
    let text = humantime::format_rfc3339_seconds(at).to_string();
    text.get(11..19).map(str::to_string)
}

/// "201 of 1806 requests (11.1 %) failed between 5.62 s and 8.61 s
/// (12:04:55–12:04:58 UTC), in 4 distinct second(s); worst second from
/// 5.90 s: 67 of 200 failed (33.5 %)".
pub fn failure_line(s: &RunSummary) -> Option<String> {
    let f = s.failures.as_ref()?;
    let pct = |n: u64, of: u64| {
        if of == 0 {
            0.0
        } else {
            n as f64 * 100.0 / of as f64
        }
    };
    let w = &f.worst_second;
    let wall = match (wall_clock(s, f.first_ms), wall_clock(s, f.last_ms)) {
        (Some(a), Some(b)) => format!(" ({a}–{b} UTC)"),
        _ => String::new(),
    };
    Some(format!(
        "{} of {} requests ({:.1} %) failed between {:.2} s and {:.2} s{wall}, in {} distinct second(s); worst second from {:.2} s: {} of {} failed ({:.1} %)",
        s.requests.failed,
        s.requests.sent,
        pct(s.requests.failed, s.requests.sent),
        f.first_ms / 1000.0,
        f.last_ms / 1000.0,
        f.seconds_with_failures,
        w.from_ms / 1000.0,
        w.failed,
        w.sent,
        w.error_rate * 100.0
    ))
}

/// `summary.md`: for a GitHub step summary or a PR comment.
pub fn markdown(s: &RunSummary) -> String {
    let mut out = String::new();
    let icon = match s.verdict {
        _ if s.interrupted => "⏹️",
        Verdict::Pass => "✅",
        Verdict::Fail => "❌",
        Verdict::Invalid => "⚠️",
        Verdict::Interrupted => "⏹️",
    };
    let _ = writeln!(
        out,
        "## {icon} baton: {} — {}{}\n",
        md(&s.name),
        s.verdict_word(),
        if s.simulator {
            " (on the simulator, not a cluster)"
        } else {
            ""
        }
    );
    let _ = writeln!(out, "**{}**\n", md(&s.reason));
    if let Some(f) = failure_line(s) {
        let _ = writeln!(out, "Failures: {}.", md(&f));
    }
    if !s.incidents.is_empty() {
        let _ = writeln!(
            out,
            "\n### Incidents\n\n| # | cause | confidence | failures | when | pods | remedy |\n|---|---|---|---|---|---|---|"
        );
        for i in &s.incidents {
            let _ = writeln!(
                out,
                "| {} | `{}` | {} | {} | {:.2}–{:.2} s | {} | {} |",
                i.id,
                i.cause.as_str(),
                i.confidence.as_str(),
                i.failures,
                i.first_ns as f64 / 1e9,
                i.last_ns as f64 / 1e9,
                md(&i.pods.join(", ")),
                md(&i.remedy.text)
            );
        }
        let _ = writeln!(out, "\nEvidence:\n");
        for i in &s.incidents {
            let _ = writeln!(out, "{}. {}", i.id, md(&i.evidence));
        }
        if let Some(p) = &s.propagation {
            let _ = writeln!(
                out,
                "\nPropagation allowance: {:.0} ms ({}).",
                p.allowance_ms,
                md(&p.from)
            );
        }
        // Each remedy that is a change to paste, as a YAML block: a patch
        // of the Deployment, or a manifest to apply.
        let patch_cmd = format!(
            "kubectl patch deployment {} --patch-file patch.yaml",
            md(&s.deployment)
        );
        let apply_cmd = format!("kubectl apply -n {} -f budget.yaml", md(&s.namespace));
        for i in &s.incidents {
            let blocks = [
                ("a patch", &patch_cmd, &i.remedy.patch),
                ("a manifest", &apply_cmd, &i.remedy.manifest),
            ];
            for (what, cmd, yaml) in blocks {
                let Some(yaml) = yaml else { continue };
                // Our own YAML of Kubernetes names: it cannot hold a fence,
                // but a fence inside would end the block, so none passes.
                let _ = writeln!(
                    out,
                    "\nIncident {}'s remedy as {what} ({cmd}):\n\n```yaml\n{}```",
                    i.id,
                    yaml.replace("```", "")
                );
            }
        }
    }
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "Deployment {} in namespace {} on {}; load {} at {:.0}/s (achieved {:.0}/s).\n",
        md(&s.deployment),
        md(&s.namespace),
        md(&s.cluster),
        md(&s.target_url),
        s.rps_target,
        s.shown_rps()
    );
    let _ = writeln!(out, "| threshold | limit | measured | |\n|---|---|---|---|");
    for t in &s.thresholds {
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} |",
            t.name,
            md(&t.limit),
            md(&t.value),
            if t.pass { "ok" } else { "**fail**" }
        );
    }
    let _ = writeln!(
        out,
        "\n{} requests: {} ok, {} failed, {} harness errors. Latency (from each request's start) p50 {:.1} ms, p99 {:.1} ms; response time (from its scheduled instant) p99 {:.1} ms.",
        s.requests.sent,
        s.requests.ok,
        s.requests.failed,
        s.requests.client_resource,
        s.latency_ms.p50,
        s.latency_ms.p99,
        s.response_time_ms.p99
    );
    let _ = writeln!(
        out,
        "\nWho answered: before the rollout {}; after it settled {}, from {} pod(s).",
        counts(&s.versions_before_rollout),
        counts(&s.versions_after_rollout),
        s.backends_after_rollout.len()
    );
    if !s.workers.is_empty() {
        let _ = writeln!(
            out,
            "\n### Load workers\n\n| worker | pod | sent | failed | shed | lateness p99 | clock | records |\n|---|---|---|---|---|---|---|---|"
        );
        for w in &s.workers {
            let _ = writeln!(
                out,
                "| {} | `{}` | {} | {} | {} | {} | ± {:.2} ms | {} |",
                w.index,
                md(&w.pod),
                w.sent,
                w.failed,
                w.shed,
                w.lateness_p99_ms
                    .map_or("–".into(), |ms| format!("{ms:.1} ms")),
                w.clock_error_ms,
                w.lost
                    .as_deref()
                    .map_or("all arrived".into(), |l| format!("**lost**: {}", md(l)))
            );
        }
    }
    if let Some(t) = &s.teardown {
        let _ = writeln!(out, "\n**Teardown:** {}", md(&teardown_line(t)));
    }
    if !s.rollout.steps.is_empty() {
        let _ = writeln!(
            out,
            "\n### Rollout\n\n| step | start | end | outcome |\n|---|---|---|---|"
        );
        for st in &s.rollout.steps {
            let _ = writeln!(
                out,
                "| {}. {} | {:.2} s | {:.2} s | {} |",
                st.index,
                md(&st.description),
                st.started_ms / 1000.0,
                st.ended_ms / 1000.0,
                md(&st.outcome.to_string())
            );
        }
    }
    out
}

/// `junit.xml`: one suite, one test case per threshold; a failed
/// threshold is a failure with the measured value as its message. An
/// interrupted run judged nothing: its thresholds are skipped and a
/// `run_complete` case is an error, so no CI view shows it as failed.
pub fn junit(s: &RunSummary) -> std::io::Result<String> {
    use quick_junit::{NonSuccessKind, Report, TestCase, TestCaseStatus, TestSuite};
    let interrupted = s.interrupted || s.verdict == Verdict::Interrupted;
    let mut suite = TestSuite::new(format!(
        "baton: {}{}",
        s.name,
        if s.simulator { " (simulator)" } else { "" }
    ));
    suite.add_property(quick_junit::Property::new("cluster", s.cluster.as_str()));
    suite.add_property(quick_junit::Property::new(
        "simulator",
        if s.simulator { "true" } else { "false" },
    ));
    for t in &s.thresholds {
        let status = if interrupted {
            let mut st = TestCaseStatus::skipped();
            st.set_message(format!(
                "not judged: the run was interrupted ({}: {} so far, limit {})",
                t.name, t.value, t.limit
            ));
            st
        } else if t.pass {
            TestCaseStatus::success()
        } else {
            let mut st = TestCaseStatus::non_success(NonSuccessKind::Failure);
            st.set_message(format!("{}: {} (limit {})", t.name, t.value, t.limit));
            st.set_type("threshold");
            st
        };
        let mut case = TestCase::new(t.name.as_str(), status);
        case.set_classname(format!("baton.{}", s.name));
        suite.add_test_case(case);
    }
    let error_case = if interrupted {
        Some("run_complete")
    } else if s.verdict == Verdict::Invalid {
        Some("run_valid")
    } else {
        None
    };
    if let Some(name) = error_case {
        let mut st = TestCaseStatus::non_success(NonSuccessKind::Error);
        st.set_message(s.reason.clone());
        let mut case = TestCase::new(name, st);
        case.set_classname(format!("baton.{}", s.name));
        suite.add_test_case(case);
    }
    let mut incidents = String::new();
    for i in &s.incidents {
        let _ = writeln!(
            incidents,
            "incident {}: {} x {}: {} | remedy: {}",
            i.id,
            i.failures,
            i.cause.as_str(),
            i.evidence,
            i.remedy.text
        );
    }
    if !incidents.is_empty() {
        suite.set_system_out(incidents);
    }
    let mut report = Report::new("baton");
    report.add_test_suite(suite);
    report.to_string().map_err(std::io::Error::other)
}

/// GitHub Actions workflow commands for the run: an `::error` per
/// incident (cause, size, Pods, remedy) and one for the verdict when it
/// is not a pass (`::notice` when it is), so the job's page shows them
/// without opening a file. Printed when `GITHUB_ACTIONS` is set.
pub fn github_annotations(s: &RunSummary) -> String {
    let mut out = String::new();
    let sim = if s.simulator { " (simulator)" } else { "" };
    let level = match s.verdict {
        Verdict::Pass if !s.interrupted => "notice",
        _ => "error",
    };
    let _ = writeln!(
        out,
        "::{level} title={}::{}",
        gh_property(&format!("baton {}: {}{sim}", s.verdict_word(), s.name)),
        gh_data(&s.reason)
    );
    for i in &s.incidents {
        let _ = writeln!(
            out,
            "::error title={}::{}",
            gh_property(&format!(
                "baton incident {}: {} x {}",
                i.id,
                i.failures,
                i.cause.as_str()
            )),
            gh_data(&format!(
                "{} (pods: {}). Remedy: {}",
                i.evidence,
                i.pods.join(", "),
                i.remedy.text
            ))
        );
    }
    out
}

/// A workflow command's message: `%`, CR and LF encoded, as GitHub's
/// runner decodes them.
fn gh_data(s: &str) -> String {
    s.replace('%', "%25")
        .replace('\r', "%0D")
        .replace('\n', "%0A")
}

/// A workflow command's property value: as [`gh_data`], and `:` and `,`
/// too, which would end it.
fn gh_property(s: &str) -> String {
    gh_data(s).replace(':', "%3A").replace(',', "%2C")
}

/// `deleted 3 objects (Namespace ci-1, ...); LEFT Service ci-1/web: why`.
/// `3 in the cluster, 612 / 612 / 612 requests, clocks within ± 0.11 ms`,
/// and which lost records.
fn workers_line(ws: &[crate::rundir::summary::WorkerFigures]) -> String {
    let sent: Vec<String> = ws.iter().map(|w| w.sent.to_string()).collect();
    let worst = ws.iter().map(|w| w.clock_error_ms).fold(0.0, f64::max);
    let lost: Vec<String> = ws
        .iter()
        .filter(|w| w.lost.is_some())
        .map(|w| format!("worker {} LOST records", w.index))
        .collect();
    format!(
        "{} in the cluster, {} requests, clocks within ± {worst:.2} ms{}",
        ws.len(),
        sent.join(" / "),
        if lost.is_empty() {
            String::new()
        } else {
            format!("; {}", lost.join(", "))
        }
    )
}

fn teardown_line(t: &crate::rundir::run_json::TeardownRecord) -> String {
    let mut parts = Vec::new();
    for s in t.steps.iter().filter(|s| !s.outcome.is_done()) {
        parts.push(format!("step {} {}", s.description, s.outcome));
    }
    if t.deleted.is_empty() && t.left.is_empty() {
        parts.push("nothing created to delete".into());
    } else if !t.deleted.is_empty() {
        parts.push(format!(
            "deleted {} object(s) ({})",
            t.deleted.len(),
            t.deleted.join(", ")
        ));
    }
    for l in &t.left {
        parts.push(format!("LEFT {}: {}", l.object, l.why));
    }
    parts.join("; ")
}

/// `1.27.5 (412), 1.28.0 (3)`, or `nobody` when empty.
fn counts(m: &BTreeMap<String, u64>) -> String {
    if m.is_empty() {
        return "nobody".into();
    }
    m.iter()
        .map(|(k, n)| format!("{} ({n})", md(k)))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Text that renders as itself in Markdown (GitHub's included), inside a
/// table cell too: every character that can start markup (emphasis,
/// code, links, images, raw HTML, entities, headings, table cells) is
/// backslash-escaped, as CommonMark allows for any ASCII punctuation; a
/// leading `-` or `+` cannot start a list; line breaks become spaces and
/// other control characters go. Every string `summary.md` did not write
/// itself (names, reasons, versions and Pods from the target and the
/// cluster, images from the profile) goes through here.
fn md(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 8);
    for (i, c) in s.chars().enumerate() {
        match c {
            '\n' | '\r' | '\t' => out.push(' '),
            c if c.is_control() => {}
            '\\' | '`' | '*' | '_' | '[' | ']' | '<' | '>' | '|' | '#' | '!' | '&' | '~' => {
                out.push('\\');
                out.push(c);
            }
            '-' | '+' if i == 0 => {
                out.push('\\');
                out.push(c);
            }
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn workflow_commands_encode_what_would_end_or_split_them() {
        assert_eq!(gh_data("100% done\nnext"), "100%25 done%0Anext");
        assert_eq!(gh_property("a: b, c"), "a%3A b%2C c");
        // A hostile message cannot start a command of its own.
        assert!(!gh_data("x\n::set-output name=y::z").contains('\n'));
    }

    #[test]
    fn markdown_cells_escape_pipes_and_newlines() {
        assert_eq!(md("a|b\nc"), "a\\|b c");
        assert_eq!(md("<img src=x>"), "\\<img src=x\\>");
        assert_eq!(md("- x"), "\\- x");
        assert_eq!(md("web-server-1.28"), "web-server-1.28");
    }
}
