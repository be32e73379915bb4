//! No verdict while blind: when baton cannot see the cluster (the API
//! connection stalls, the API server is gone), the run records a blind
//! spot, attributes nothing inside it, and ends INVALID (exit 3), never
//! PASS; a cluster gone for longer than `thresholds.max_blind_spot` stops
//! the run within seconds. The API is reached through a relay the test
//! pauses or kills; the load goes to the sandbox's NodePort directly.

mod common;

use common::read_json;
use common::relay::Relay;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn baton() -> Command {
    let mut c = Command::new(assert_cmd::cargo::cargo_bin("baton"));
    c.env_remove("KUBECONFIG").env_remove("GITHUB_ACTIONS");
    c
}

/// Waits (bounded) until the run's first step has started.
async fn wait_for_step(out: &Path) {
    let events = out.join("events.csv");
    for _ in 0..600 {
        if std::fs::read_to_string(&events).is_ok_and(|t| t.contains("step_started")) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the run never reached its steps");
}

/// The run in `out` is INVALID because baton could not see the cluster.
fn assert_invalid_while_blind(out: &Path) {
    let summary = read_json(&out.join("summary.json"));
    assert_eq!(summary["verdict"], "invalid", "{}", summary["reason"]);
    assert!(
        summary["reason"]
            .as_str()
            .unwrap()
            .contains("could not see the cluster"),
        "{}",
        summary["reason"]
    );
}

/// The bundled rollout on a sandbox whose API baton reaches through a
/// relay; `disturb` is what happens to the relay once the rollout began.
async fn run_with_relay(
    disturb: impl AsyncFnOnce(&Relay),
) -> (Option<i32>, Duration, tempfile::TempDir) {
    let sb = baton_sandbox::Sandbox::start(baton_sandbox::SandboxConfig::seed())
        .await
        .unwrap();
    let url = format!("http://{}/", sb.node_port("default/web-service").unwrap());
    let relay = Relay::start(sb.api_addr()).await;
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    relay.kubeconfig(sb.kubeconfig_path(), &kubeconfig);
    let out = dir.path().join("run");
    let profile = Path::new(env!("CARGO_MANIFEST_DIR")).join("profiles/nginx-rolling-update.yaml");
    let started = Instant::now();
    let child = baton()
        .arg("run")
        .arg(profile)
        .arg("--kubeconfig")
        .arg(&kubeconfig)
        .args(["--set", &format!("target.url={url}"), "-q", "-o"])
        .arg(&out)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_for_step(&out).await;
    disturb(&relay).await;
    let done = tokio::task::spawn_blocking(move || child.wait_with_output().unwrap())
        .await
        .unwrap();
    let elapsed = started.elapsed();
    if done.status.code() != Some(3) {
        eprintln!("stderr:\n{}", String::from_utf8_lossy(&done.stderr));
    }
    relay.kill();
    sb.shutdown().await;
    (done.status.code(), elapsed, dir)
}

/// The API connection stalls for 8 s mid-rollout (no error: silence),
/// then resumes and delivers what happened meanwhile, late. The run
/// records the blind spot and is INVALID, never PASS.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_api_connection_makes_the_run_invalid_with_a_blind_spot() {
    let (code, _, dir) = run_with_relay(async |relay: &Relay| {
        relay.pause();
        tokio::time::sleep(Duration::from_secs(8)).await;
        relay.resume();
    })
    .await;
    assert_eq!(code, Some(3), "invalid, never a verdict while blind");
    let out = dir.path().join("run");
    assert_invalid_while_blind(&out);
    let run = read_json(&out.join("run.json"));
    let api = run["blind_spots"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["resource"] == "api")
        .unwrap_or_else(|| panic!("a blind spot of the API: {}", run["blind_spots"]));
    assert!(api["len_ns"].as_u64().unwrap() > 5_000_000_000, "{api}");
    // Nothing inside it was given a lifecycle cause.
    let (from, to) = (
        api["from_ns"].as_u64().unwrap(),
        api["from_ns"].as_u64().unwrap() + api["len_ns"].as_u64().unwrap(),
    );
    for f in common::read_csv(&out.join("failures.csv")) {
        let start: u64 = f["start_ns"].parse().unwrap();
        if (from..to).contains(&start) {
            assert_eq!(f["cause"], "unexplained", "{f:?}");
            assert!(f["evidence"].contains("could not see the cluster"), "{f:?}");
        }
    }
}

/// The API server gone for good: the run stops within seconds of the
/// blind-spot limit, instead of loading until some step's timeout, and is
/// INVALID.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cluster_that_is_gone_stops_the_run_within_seconds_invalid() {
    let mut killed_at = None;
    let (code, elapsed, dir) = run_with_relay(async |relay: &Relay| {
        relay.kill();
        killed_at = Some(Instant::now());
    })
    .await;
    assert_eq!(code, Some(3));
    let since_kill = killed_at.unwrap().elapsed();
    // max_blind_spot is 5 s; the wait_rollout step alone would wait 120 s.
    assert!(
        since_kill < Duration::from_secs(30),
        "ended {since_kill:?} after the cluster went ({elapsed:?} in all)"
    );
    // Whether the rollout was still going when the API went (the wait is
    // stopped by the blind-spot limit) or had just completed (the run
    // ends blind), the reason is the same.
    assert_invalid_while_blind(&dir.path().join("run"));
}
