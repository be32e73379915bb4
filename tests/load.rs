//! `baton load` end to end: the built binary against a misbehaving server
//! on loopback. Every outcome and phase, one record per request, one
//! connection per request, bad input, Ctrl-C, and harness errors.

mod common;

use assert_cmd::Command;
use common::{TestServer, read_requests, read_summary, refused_port};
use std::collections::HashMap;
use std::path::Path;

fn baton() -> Command {
    Command::cargo_bin("baton").unwrap()
}

/// Run `baton load` with a fixed count in the closed model and return its
/// exit code.
fn load(url: &str, out: &Path, extra: &[&str]) -> i32 {
    let out_s = out.to_str().unwrap();
    let n = if extra.contains(&"--keepalive") {
        "200"
    } else {
        "20"
    };
    let mut args = vec![
        "load",
        url,
        "--rate",
        "0",
        "-c",
        "4",
        "-n",
        n,
        "--timeout",
        "500ms",
        "-q",
        "-o",
        out_s,
    ];
    args.extend_from_slice(extra);
    let o = baton().args(&args).output().unwrap();
    o.status.code().expect("exited normally")
}

fn outcomes(rows: &[HashMap<String, String>]) -> HashMap<(String, String), usize> {
    let mut m = HashMap::new();
    for r in rows {
        *m.entry((r["outcome"].clone(), r["phase"].clone()))
            .or_default() += 1;
    }
    m
}

/// Each server behaviour maps to exactly one outcome and phase.
#[test]
fn each_failure_mode_is_classified_with_its_phase() {
    let server = TestServer::start();
    let cases = [
        ("/ok", "ok", "", 0),
        ("/503", "http_status", "", 1),
        ("/reset-body", "reset", "body", 1),
        ("/short-body", "eof", "body", 1),
        ("/close", "eof", "first_byte", 1),
        ("/reset", "reset", "first_byte", 1),
        ("/hang", "timeout", "first_byte", 1),
    ];
    for (path, outcome, phase, code) in cases {
        let dir = tempfile::tempdir().unwrap();
        let exit = load(&server.url(path), dir.path(), &[]);
        assert_eq!(exit, code, "{path}: exit code");
        let rows = read_requests(dir.path());
        assert_eq!(rows.len(), 20, "{path}: one row per request");
        let seen = outcomes(&rows);
        assert_eq!(
            seen.get(&(outcome.to_string(), phase.to_string())),
            Some(&20),
            "{path}: expected every request to be {outcome}/{phase}, got {seen:?}"
        );
        if path == "/503" {
            assert!(rows.iter().all(|r| r["status"] == "503"));
        }
    }
}

#[test]
fn a_closed_port_is_connect_refused_in_the_connect_phase() {
    let dir = tempfile::tempdir().unwrap();
    let exit = load(&format!("http://{}/", refused_port()), dir.path(), &[]);
    assert_eq!(exit, 1);
    let rows = read_requests(dir.path());
    assert_eq!(rows.len(), 20);
    assert!(rows.iter().all(|r| r["outcome"] == "connect_refused"
        && r["phase"] == "connect"
        && r["connect_us"].is_empty()));
}

/// `requests.csv` has exactly one row per request sent, sequence numbers
/// without gaps, and the counts agree with `summary.json` and with the
/// connections the server accepted.
#[test]
fn one_record_and_one_connection_per_request_and_counts_agree() {
    let server = TestServer::start();
    let dir = tempfile::tempdir().unwrap();
    let o = baton()
        .args([
            "load",
            &server.url("/ok"),
            "--rate",
            "400",
            "-n",
            "300",
            "-q",
            "-o",
        ])
        .arg(dir.path())
        .args([
            "--backend-from",
            "header:x-pod-name",
            "--version-from",
            r"body:version (\S+)",
        ])
        .output()
        .unwrap();
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let rows = read_requests(dir.path());
    assert_eq!(rows.len(), 300);
    let mut seqs: Vec<u64> = rows.iter().map(|r| r["seq"].parse().unwrap()).collect();
    seqs.sort();
    assert_eq!(seqs, (0..300).collect::<Vec<_>>());
    // seq is the order of sending: in seq order, due instants and actual
    // starts both only move forward.
    let mut by_seq: Vec<(u64, u64, u64)> = rows
        .iter()
        .map(|r| {
            (
                r["seq"].parse().unwrap(),
                r["scheduled_ns"].parse().unwrap(),
                r["start_ns"].parse().unwrap(),
            )
        })
        .collect();
    by_seq.sort();
    for w in by_seq.windows(2) {
        assert!(w[0].1 < w[1].1 && w[0].2 <= w[1].2, "out of order: {w:?}");
    }
    // Open model: the schedule is 2.5 ms apart, whatever the responses did.
    let mut scheduled: Vec<u64> = rows
        .iter()
        .map(|r| r["scheduled_ns"].parse().unwrap())
        .collect();
    scheduled.sort();
    assert_eq!(scheduled[0], 0);
    assert_eq!(scheduled[299], 299 * 2_500_000);
    for r in &rows {
        assert_eq!(r["backend"], "pod-a");
        assert_eq!(r["version"], "1.28");
        assert!(r["start_ns"].parse::<u64>().unwrap() >= r["scheduled_ns"].parse::<u64>().unwrap());
        let (connect, ttfb, total): (u64, u64, u64) = (
            r["connect_us"].parse().unwrap(),
            r["ttfb_us"].parse().unwrap(),
            r["total_us"].parse().unwrap(),
        );
        assert!(connect <= ttfb && ttfb <= total, "{r:?}");
    }
    let s = read_summary(dir.path());
    assert_eq!(s["verdict"], "pass");
    assert_eq!(s["requests"]["sent"], 300);
    assert_eq!(s["requests"]["ok"], 300);
    assert_eq!(s["requests"]["failed"], 0);
    assert_eq!(s["requests"]["rows_written"], 300);
    assert_eq!(s["outcomes"]["ok"], 300);
    assert_eq!(s["rps_target"], 400.0);
    for key in ["p50", "p90", "p99", "p99_9", "max"] {
        assert!(
            s["latency_ms"][key].as_f64().unwrap() > 0.0,
            "latency {key}"
        );
    }
    assert!(s["lateness_ms"]["p99"].is_number());
    assert_eq!(server.accepted(), 300, "one new connection per request");
    assert_eq!(server.requests(), 300);
    // Each record names its connection's 4-tuple: the local port and the
    // address it went to.
    assert!(
        rows.iter()
            .all(|r| r["local_port"].parse::<u16>().is_ok_and(|p| p > 0)),
        "a record without its local port"
    );
    let to = server.addr.to_string();
    assert!(
        rows.iter().all(|r| r["remote_addr"] == to),
        "not all to {to}"
    );
}

#[test]
fn keepalive_reuses_connections() {
    let server = TestServer::start();
    let dir = tempfile::tempdir().unwrap();
    let exit = load(&server.url("/ok"), dir.path(), &["--keepalive"]);
    assert_eq!(exit, 0);
    assert_eq!(read_requests(dir.path()).len(), 200);
    assert_eq!(server.requests(), 200);
    assert!(
        server.accepted() < 200,
        "keep-alive should reuse: {} connections",
        server.accepted()
    );
    assert_eq!(
        read_summary(dir.path())["requests"]["new_connections"],
        server.accepted()
    );
}

#[test]
fn mixed_outcomes_are_counted_apart_in_the_summary() {
    let server = TestServer::start();
    let dir = tempfile::tempdir().unwrap();
    assert_eq!(
        load(&server.url("/503"), dir.path(), &["--max-failed", "20"]),
        0,
        "a failure budget passes"
    );
    let s = read_summary(dir.path());
    assert_eq!(s["outcomes"]["http_status"], 20);
    assert_eq!(s["requests"]["failed"], 20);
    assert_eq!(s["verdict"], "pass");
}

#[test]
fn bad_input_exits_2_naming_what_is_wrong() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().to_str().unwrap();
    for (args, needle) in [
        (vec!["load", "127.0.0.1:1/", "-o", out], "scheme"),
        (vec!["load", "http://", "-o", out], "URL"),
        (
            vec!["load", "http://127.0.0.1:1/", "--rate", "-5", "-o", out],
            "--rate",
        ),
        (vec!["load", "http://127.0.0.1:1/", "--bogus"], "--bogus"),
        (
            vec!["load", "http://127.0.0.1:1/", "--timeout", "soon"],
            "--timeout",
        ),
        (
            vec!["load", "http://127.0.0.1:1/", "--backend-from", "x-pod"],
            "header:NAME",
        ),
        (
            vec!["load", "http://no-such-host.invalid/", "-o", out],
            "cannot resolve",
        ),
        (
            vec!["load", "http://127.0.0.1:1/", "--rate", "1e9", "-o", out],
            "more than one load host can open",
        ),
        (
            vec![
                "load",
                "http://127.0.0.1:1/",
                "--source-ips",
                "192.0.2.7",
                "-o",
                out,
            ],
            "not an address of this host",
        ),
    ] {
        let o = baton().args(&args).output().unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {err}");
        assert!(
            err.contains(needle),
            "{args:?}: expected `{needle}` in {err}"
        );
        assert!(!err.contains("panicked"), "{args:?}: {err}");
    }
}

/// The load host running out of file descriptors is the harness's fault:
/// the run is invalid (exit 3), the advice names `ulimit -n`, and those
/// requests are not counted as target failures.
#[test]
fn running_out_of_file_descriptors_is_a_harness_error_not_a_target_failure() {
    let server = TestServer::start();
    let dir = tempfile::tempdir().unwrap();
    let bin = assert_cmd::cargo::cargo_bin("baton");
    let script = format!(
        "ulimit -n 32 && exec {} load {} --rate 0 -c 64 -n 200 --timeout 300ms -q -o {}",
        bin.display(),
        server.url("/hang"),
        dir.path().display()
    );
    let o = std::process::Command::new("sh")
        .args(["-c", &script])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert_eq!(
        o.status.code(),
        Some(3),
        "{stdout}{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(stdout.contains("ulimit -n"), "{stdout}");
    let s = read_summary(dir.path());
    assert_eq!(s["verdict"], "invalid");
    let harness = s["requests"]["client_resource"].as_u64().unwrap();
    assert!(harness > 0);
    assert_eq!(s["outcomes"]["client_resource"], harness);
    assert_eq!(
        s["requests"]["failed"].as_u64().unwrap() + harness + s["requests"]["ok"].as_u64().unwrap(),
        200
    );
    assert_eq!(s["errors"]["EMFILE"], harness);
    assert_eq!(read_requests(dir.path()).len(), 200);
}

/// Ctrl-C: scheduling stops, in-flight requests end, files are complete
/// and parseable, the summary says interrupted, exit 130.
#[test]
fn ctrl_c_leaves_valid_files_and_exits_130() {
    interrupt_leaves_valid_files(nix::sys::signal::Signal::SIGINT, 130);
}

/// A CI cancel (SIGTERM) stops the load as Ctrl-C does, with 128 + 15.
#[test]
fn sigterm_leaves_valid_files_and_exits_143() {
    interrupt_leaves_valid_files(nix::sys::signal::Signal::SIGTERM, 143);
}

fn interrupt_leaves_valid_files(signal: nix::sys::signal::Signal, code: i32) {
    let server = TestServer::start();
    let dir = tempfile::tempdir().unwrap();
    let bin = assert_cmd::cargo::cargo_bin("baton");
    let mut child = std::process::Command::new(bin)
        .args([
            "load",
            &server.url("/ok"),
            "--rate",
            "200",
            "-d",
            "60s",
            "-q",
            "-o",
        ])
        .arg(dir.path())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Wait until requests are flowing (bounded), then interrupt.
    for _ in 0..100 {
        if server.requests() >= 50 {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert!(server.requests() >= 50, "load never started");
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(child.id() as i32), signal).unwrap();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(code));
    let rows = read_requests(dir.path());
    let s = read_summary(dir.path());
    assert_eq!(s["interrupted"], true);
    assert_eq!(s["verdict"], "interrupted");
    assert!(
        !dir.path().join("running").exists(),
        "the run finished its files"
    );
    assert_eq!(s["requests"]["sent"].as_u64().unwrap(), rows.len() as u64);
    assert!(rows.len() < 12_000, "stopped early");
    assert_eq!(server.requests(), rows.len() as u64);
}

/// Open model: a target that never answers does not slow the schedule
/// down. Every arrival is sent at its instant; none waits for an answer.
#[test]
fn a_silent_target_does_not_slow_the_schedule() {
    let server = TestServer::start();
    let dir = tempfile::tempdir().unwrap();
    let o = baton()
        .args([
            "load",
            &server.url("/hang"),
            "--rate",
            "100",
            "-n",
            "50",
            "--timeout",
            "300ms",
            "-q",
            "-o",
        ])
        .arg(dir.path())
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    let rows = read_requests(dir.path());
    assert_eq!(rows.len(), 50);
    assert!(rows.iter().all(|r| r["outcome"] == "timeout"));
    let mut scheduled: Vec<u64> = rows
        .iter()
        .map(|r| r["scheduled_ns"].parse().unwrap())
        .collect();
    scheduled.sort();
    assert_eq!(
        scheduled,
        (0..50).map(|i| i * 10_000_000).collect::<Vec<u64>>()
    );
    // With a closed loop of 1, 50 timeouts of 300 ms would take 15 s; in
    // the open model the last request starts around 490 ms. Started
    // requests overlap: at least one began before an earlier one ended.
    let mut spans: Vec<(u64, u64)> = rows
        .iter()
        .map(|r| {
            let start: u64 = r["start_ns"].parse().unwrap();
            (start, start + r["total_us"].parse::<u64>().unwrap() * 1000)
        })
        .collect();
    spans.sort();
    assert!(
        spans.windows(2).any(|w| w[1].0 < w[0].1),
        "requests never overlapped"
    );
}

/// Arrivals over the in-flight cap are shed and counted, not queued; a
/// load that shed most of its plan did not load the target as planned,
/// so the run is invalid (3), not failed.
#[test]
fn arrivals_over_the_in_flight_cap_are_shed_and_counted() {
    let server = TestServer::start();
    let dir = tempfile::tempdir().unwrap();
    let o = baton()
        .args([
            "load",
            &server.url("/hang"),
            "--rate",
            "200",
            "-n",
            "100",
            "-c",
            "5",
            "--timeout",
            "2s",
            "-q",
            "-o",
        ])
        .arg(dir.path())
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(3));
    let s = read_summary(dir.path());
    assert_eq!(s["verdict"], "invalid");
    assert!(
        s["reason"].as_str().unwrap().contains("shed"),
        "{}",
        s["reason"]
    );
    let sent = s["requests"]["sent"].as_u64().unwrap();
    let shed = s["requests"]["shed"].as_u64().unwrap();
    assert_eq!(sent + shed, 100, "every arrival is either sent or shed");
    assert!(shed > 0 && sent >= 5, "sent {sent}, shed {shed}");
    assert_eq!(read_requests(dir.path()).len() as u64, sent);
    assert!(String::from_utf8_lossy(&o.stdout).contains("shed by the in-flight cap"));
}

/// `--source-ips` sends from each given local address in turn.
#[test]
fn source_ips_are_used_round_robin() {
    let server = TestServer::start();
    let dir = tempfile::tempdir().unwrap();
    let exit = load(
        &server.url("/ok"),
        dir.path(),
        &["--source-ips", "127.0.0.2,127.0.0.3"],
    );
    assert_eq!(exit, 0);
    let peers: Vec<String> = server
        .peers
        .lock()
        .unwrap()
        .iter()
        .map(|p| p.to_string())
        .collect();
    assert_eq!(peers, ["127.0.0.2", "127.0.0.3"]);
}

/// Quiet by default (the terminal is for the status line and the verdict);
/// `-v` logs what baton and its clients do to stderr; RUST_LOG wins.
#[test]
fn logs_are_off_by_default_and_on_with_v_or_rust_log() {
    let server = TestServer::start();
    let dir = tempfile::tempdir().unwrap();
    let run = |extra: &[&str], env: Option<&str>, out: &str| {
        let mut c = baton();
        c.args([
            "load",
            &server.url("/ok"),
            "-n",
            "5",
            "--rate",
            "50",
            "-q",
            "-o",
        ])
        .arg(dir.path().join(out))
        .args(extra)
        .env_remove("RUST_LOG");
        if let Some(e) = env {
            c.env("RUST_LOG", e);
        }
        String::from_utf8_lossy(&c.output().unwrap().stderr).to_string()
    };
    let quiet = run(&[], None, "a");
    assert!(
        !quiet.contains("INFO") && !quiet.contains("DEBUG"),
        "{quiet}"
    );
    let debug = run(&[], Some("baton=debug"), "b");
    let verbose = run(&["-vv"], None, "c");
    for logs in [&debug, &verbose] {
        assert!(logs.contains("DEBUG") || logs.contains("INFO"), "{logs}");
    }
}
