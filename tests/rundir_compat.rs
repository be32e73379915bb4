//! The run directory is a contract: every directory a released baton
//! wrote stays readable by `baton report` and `baton compare`, and one
//! from a newer format is refused with exit 2, naming it.
//!
//! The referee is `tests/fixtures/rundir-v1/`: a FAIL run and a matrix
//! written by baton 0.1.0 (format 1), with what that baton printed for
//! them. Copies are re-rendered by the baton under test, so the fixtures
//! themselves are never touched.

mod common;

use common::read_json;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The built baton, with no KUBECONFIG from the environment: these runs
/// are on the simulator unless a test says otherwise.
fn baton() -> Command {
    let mut c = Command::new(assert_cmd::cargo::cargo_bin("baton"));
    c.env_remove("KUBECONFIG").env_remove("GITHUB_ACTIONS");
    c
}

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/rundir-v1")
}

/// A copy of the format 1 fixtures in a fresh temporary directory.
fn copy_of_fixtures() -> tempfile::TempDir {
    let tmp = tempfile::tempdir().unwrap();
    common::copy_dir(&fixtures(), tmp.path());
    tmp
}

fn text(o: &[u8]) -> String {
    String::from_utf8_lossy(o).into_owned()
}

fn report(dir: &Path) -> Output {
    baton().arg("report").arg(dir).output().unwrap()
}

/// On GitHub Actions, `baton report` (like `baton run`) annotates the
/// job: the verdict, and every incident with its remedy.
#[test]
fn on_github_actions_the_verdict_and_each_incident_become_annotations() {
    let tmp = copy_of_fixtures();
    let out = baton()
        .arg("report")
        .arg(tmp.path().join("run-fail"))
        .env("GITHUB_ACTIONS", "true")
        .output()
        .unwrap();
    let stdout = text(&out.stdout);
    let lines: Vec<&str> = stdout.lines().filter(|l| l.starts_with("::")).collect();
    assert_eq!(lines.len(), 5, "the verdict and 4 incidents: {stdout}");
    assert!(
        lines[0].starts_with(
            "::error title=baton FAIL%3A nginx-rolling-update (simulator)::max_failed: 201 (limit 0)"
        ),
        "{}",
        lines[0]
    );
    assert!(
        lines[1]
            .starts_with("::error title=baton incident 1%3A 197 x endpoint_lag_on_termination::")
            && lines[1].contains("Remedy: add a preStop sleep of at least 1.2 s"),
        "{}",
        lines[1]
    );
}

/// The parts of a summary that say what happened: the verdict, the
/// counts, and each incident's cause, size, span and Pods.
fn what_happened(summary: &serde_json::Value) -> serde_json::Value {
    let incidents: Vec<serde_json::Value> = summary["incidents"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            serde_json::json!([
                i["cause"],
                i["failures"],
                i["first_ns"],
                i["last_ns"],
                i["pods"]
            ])
        })
        .collect();
    serde_json::json!({
        "verdict": summary["verdict"],
        "reason": summary["reason"],
        "requests": summary["requests"],
        "outcomes": summary["outcomes"],
        "causes": summary["causes"],
        "thresholds": summary["thresholds"],
        "incidents": incidents,
    })
}

#[test]
fn a_format_1_fail_run_re_renders_with_the_same_verdict_counts_and_incidents() {
    let tmp = copy_of_fixtures();
    let dir = tmp.path().join("run-fail");
    let before = read_json(&dir.join("summary.json"));
    let out = report(&dir);
    assert_eq!(
        out.status.code(),
        Some(1),
        "a FAIL run re-renders as FAIL\nstderr:\n{}",
        text(&out.stderr)
    );
    let after = read_json(&dir.join("summary.json"));
    assert_eq!(what_happened(&after), what_happened(&before));
    assert_eq!(after["incidents"].as_array().unwrap().len(), 4);
    assert_eq!(after["requests"]["failed"], 201);

    // What a person reads is the same too, but for the re-rendered path,
    // the first line, which since 0.1.0 says the run was on the
    // simulator, the remedies, which now read the Deployment's spec, and
    // the `failures` line added since; and the order, which since puts
    // the incidents (the answer) before the measures.
    let expected =
        std::fs::read_to_string(fixtures().join("expected/report-run-fail.txt")).unwrap();
    let stdout = text(&out.stdout);
    let body = |s: &str| {
        let mut lines = s
            .lines()
            .filter(|l| !l.trim_start().starts_with("reports "))
            .filter(|l| !l.trim_start().starts_with("remedy: "))
            .filter(|l| !l.trim_start().starts_with("failures "))
            .map(|l| l.replace(", on the SIMULATOR, not a cluster", ""))
            .collect::<Vec<_>>();
        lines.sort();
        lines
    };
    assert_eq!(body(&stdout), body(&expected));
    // 0.1.0 told a pod with a 30 s grace period to raise it to 1 s.
    assert!(!stdout.contains("to at least 1 s (now 30 s)"), "{stdout}");
    assert!(
        stdout.contains("remedy:   handle SIGTERM by draining: the container exited"),
        "{stdout}"
    );
    assert!(
        stdout.contains("(nginx-rolling-update, on the SIMULATOR, not a cluster)"),
        "{stdout}"
    );
}

/// Today's reports of a format 1 directory are the reports 0.1.0 wrote:
/// JSON equal as data, the tables byte for byte. A change that alters a
/// report on purpose narrows this in the same commit, saying why; the
/// test above still holds. So far:
/// - `summary.json` gained `simulator` (every report says when a run was
///   on the simulator), so `summary.md`, `junit.xml` and `report.html`
///   say so too;
/// - `summary.md` escapes every string it did not write itself, and no
///   longer puts names in code spans (a backtick in one would end it);
/// - `summary.json` gained `schedule` (how the load kept its plan, which
///   now judges a run's validity);
/// - `failures.csv`'s `confidence`, `evidence` and the order of its
///   `candidates` follow the attribution (a proxy lagging within the
///   allowance is endpoint lag, not a loose fit; candidates ranked by how
///   well they explain the failure); causes and candidate sets hold;
/// - each incident's `remedy` is worked out from the Deployment's spec
///   (`cluster/deployment.before.yaml`): it no longer asks to raise a
///   grace period above a value it already exceeds, and may carry a
///   `patch`.
#[test]
fn a_format_1_run_re_renders_every_report_as_0_1_0_wrote_it() {
    let tmp = copy_of_fixtures();
    let dir = tmp.path().join("run-fail");
    let out = report(&dir);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let original = fixtures().join("run-fail");
    let mut now = read_json(&dir.join("summary.json"));
    assert_eq!(
        now["simulator"], true,
        "format 1 said so in its cluster label"
    );
    assert!(
        now["schedule"]["achieved_rps"].as_f64().unwrap() > 190.0,
        "{}",
        now["schedule"]
    );
    for added in ["simulator", "schedule", "failures", "propagation"] {
        now.as_object_mut().unwrap().remove(added);
    }
    let mut then = read_json(&original.join("summary.json"));
    for summary in [&mut now, &mut then] {
        for incident in summary["incidents"].as_array_mut().unwrap() {
            incident.as_object_mut().unwrap().remove("remedy");
        }
    }
    assert_eq!(now, then);
    let a = std::fs::read(dir.join("timeline.csv")).unwrap();
    let b = std::fs::read(original.join("timeline.csv")).unwrap();
    assert!(
        a == b,
        "timeline.csv re-rendered differs from what 0.1.0 wrote"
    );
    // Every failure keeps its cause, and its candidate Pods are the same
    // or fewer (never another): the propagation allowance is now measured
    // in the run and may only tighten, so a Pod whose endpoint left
    // longer ago than the proxies took is no longer listed. How sure
    // baton is, the order of the candidates and the evidence line follow
    // the attribution, which the catalogue measures.
    let stable = |dir: &Path| -> Vec<(Vec<String>, Vec<String>)> {
        common::read_csv(&dir.join("failures.csv"))
            .into_iter()
            .map(|r| {
                let mut pods: Vec<&str> = r["candidates"]
                    .split("; ")
                    .map(|c| c.split(" (").next().unwrap_or(c))
                    .collect();
                pods.sort();
                let row: Vec<String> = [
                    "seq", "start_ns", "end_ns", "outcome", "phase", "status", "backend", "cause",
                ]
                .iter()
                .map(|k| r[*k].clone())
                .collect();
                (row, pods.into_iter().map(String::from).collect())
            })
            .collect()
    };
    let (now, then) = (stable(&dir), stable(&original));
    assert_eq!(now.len(), then.len(), "failures.csv rows");
    for ((row, pods), (row0, pods0)) in now.iter().zip(&then) {
        assert_eq!(row, row0, "failures.csv");
        assert!(
            !pods.is_empty() && pods.iter().all(|p| pods0.contains(p)),
            "failure {}: candidates {pods:?} not among 0.1.0's {pods0:?}",
            row[0]
        );
    }
    // The record of the run is not rewritten.
    for f in [
        "run.json",
        "requests.csv",
        "events.csv",
        "profile.resolved.yaml",
    ] {
        assert_eq!(
            std::fs::read(dir.join(f)).unwrap(),
            std::fs::read(original.join(f)).unwrap(),
            "{f} changed"
        );
    }
}

#[test]
fn format_1_runs_and_matrix_variants_compare_as_they_did() {
    let tmp = copy_of_fixtures();
    let out = baton()
        .current_dir(tmp.path())
        .args([
            "compare",
            "matrix/preStop-0s",
            "matrix/preStop-3s",
            "run-fail",
            "--markdown",
            "compare.md",
            "--html",
            "compare.html",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let expected = |f: &str| std::fs::read_to_string(fixtures().join("expected").join(f)).unwrap();
    assert_eq!(text(&out.stdout), expected("compare.txt"));
    assert_eq!(
        std::fs::read_to_string(tmp.path().join("compare.md")).unwrap(),
        expected("compare.md")
    );
    // compare.html is a page now (timelines, links, the choice explained):
    // it still holds every heading and cell of the old one's table, and
    // links each run to its report.
    let page = unescaped(&std::fs::read_to_string(tmp.path().join("compare.html")).unwrap());
    let cell = regex::Regex::new(r"<t[hd][^>]*>([^<]+)</t[hd]>").unwrap();
    let old = unescaped(&expected("compare.html"));
    let cells: Vec<&str> = cell
        .captures_iter(&old)
        .map(|c| c.get(1).unwrap().as_str())
        .collect();
    assert!(cells.len() > 20, "{cells:?}");
    for c in cells {
        assert!(page.contains(&format!(">{c}<")), "compare.html lost {c:?}");
    }
    for run in ["matrix/preStop-0s", "matrix/preStop-3s", "run-fail"] {
        assert!(
            page.contains(&format!("href=\"{run}/report.html\"")),
            "no link to {run}/report.html"
        );
    }
}

/// HTML text with its character references decoded, to compare pages
/// whatever they chose to escape.
fn unescaped(html: &str) -> String {
    quick_xml::escape::unescape(html)
        .unwrap_or_else(|e| panic!("an unknown entity: {e}"))
        .into_owned()
}

/// `baton compare MATRIX_DIR` compares the variants as the matrix did:
/// the same table, costs and choice (`compare.md` as baton 0.1.0's
/// `baton matrix` wrote it), and its page marks the choice.
#[test]
fn a_format_1_matrix_compares_again_as_the_matrix_did() {
    let tmp = copy_of_fixtures();
    let dir = tmp.path().join("matrix");
    let out = baton()
        .arg("compare")
        .arg(&dir)
        .arg("--markdown")
        .arg(tmp.path().join("compare.md"))
        .arg("--html")
        .arg(dir.join("compare.html"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains(
            "Cheapest variant with zero failures: preStop-3s (rollout.preStop=3s), cost 1.00."
        ),
        "{}",
        text(&out.stdout)
    );
    assert_eq!(
        std::fs::read_to_string(tmp.path().join("compare.md")).unwrap(),
        std::fs::read_to_string(fixtures().join("matrix/compare.md")).unwrap()
    );
    let page = std::fs::read_to_string(dir.join("compare.html")).unwrap();
    assert!(
        page.contains("data-run=\"preStop-3s\"") && page.contains("class=\"chosen-badge\""),
        "{page}"
    );

    // A matrix directory compares alone.
    let out = baton()
        .arg("compare")
        .arg(&dir)
        .arg(tmp.path().join("run-fail"))
        .output()
        .unwrap();
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("is a `baton matrix` directory"), "{stderr}");
}

#[test]
fn a_format_1_matrix_record_reads_back() {
    let m = baton::rundir::MatrixRecord::read(&fixtures().join("matrix")).unwrap();
    assert_eq!(m.format_version, 1);
    assert_eq!(m.cheapest_zero_failures.as_deref(), Some("preStop-3s"));
    assert_eq!(m.variants.len(), 2);
    assert_eq!(m.variants[0].failed, Some(201));
    let v = baton::rundir::VariantRecord::read(&fixtures().join("matrix/preStop-3s"))
        .unwrap()
        .unwrap();
    assert_eq!(v.settings(), [("rollout.preStop".into(), "3s".into())]);
}

#[test]
fn a_directory_from_a_newer_format_exits_2_naming_the_file_and_version() {
    let tmp = copy_of_fixtures();
    let dir = tmp.path().join("run-fail");
    let mut run: serde_json::Value = read_json(&dir.join("run.json"));
    run["format_version"] = 99.into();
    run["baton_version"] = "9.1.0".into();
    std::fs::write(dir.join("run.json"), run.to_string()).unwrap();
    let summary_before = std::fs::read(dir.join("summary.json")).unwrap();

    let out = report(&dir);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("run.json")
            && stderr.contains("format_version 99")
            && stderr.contains("9.1.0"),
        "{stderr}"
    );
    assert_eq!(
        std::fs::read(dir.join("summary.json")).unwrap(),
        summary_before,
        "nothing is rewritten from a directory this baton cannot read"
    );

    let out = baton().arg("compare").arg(&dir).output().unwrap();
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("format_version 99"), "{stderr}");
}

#[test]
fn compare_refuses_a_summary_it_cannot_read_naming_the_file() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(
        tmp.path().join("summary.json"),
        r#"{"kind": "load", "baton_version": "0.1.0"}"#,
    )
    .unwrap();
    let out = baton().arg("compare").arg(tmp.path()).output().unwrap();
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("summary.json"), "{stderr}");
}
