//! Load from inside the cluster (`load.from: cluster`), end to end: the
//! built baton creates an Indexed Job of worker Pods, which the sandbox
//! runs as real child processes of this same binary, attaches to them
//! through the API, and merges their records. Verdicts and causes are the
//! ones the same rollout gets from outside, refereed by the sandbox's own
//! record of each connection; a worker that dies makes the run invalid
//! naming it; Ctrl-C leaves nothing in the cluster; a missing permission
//! stops the run before anything is created.

mod common;
#[path = "catalogue/referee.rs"]
mod referee;

use common::{baton, read_csv, read_json, spawn_run};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use kube::api::{DeleteParams, ListParams};
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::Duration;

/// Every object of baton's load workers carries it.
const WORKERS: &str = "app.kubernetes.io/component=load-worker";

/// `baton run profiles/NAME.yaml` from `workers` in-cluster workers (on the
/// sandbox its profile describes), expecting `code`.
fn run_from_cluster(name: &str, workers: u32, code: i32) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let out = baton()
        .args(["run", &format!("profiles/{name}.yaml"), "-q"])
        .args(["--set", "load.from=cluster"])
        .args(["--set", &format!("load.workers={workers}")])
        .arg("-o")
        .arg(dir.path())
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(code),
        "{name}: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    dir
}

/// One record per request, each from one of `workers` workers, in
/// schedule order, worker w sending arrivals w, w + n, ...; every worker's
/// records all arrived (run.json); the Job was deleted.
fn check_merged(dir: &Path, workers: u32) -> Vec<BTreeMap<String, String>> {
    let summary = read_json(&dir.join("summary.json"));
    let rows: Vec<BTreeMap<String, String>> = read_csv(&dir.join("requests.csv"))
        .into_iter()
        .map(|r| r.into_iter().collect())
        .collect();
    assert_eq!(
        rows.len() as u64,
        summary["requests"]["sent"].as_u64().unwrap(),
        "one record per request"
    );
    let seqs: BTreeSet<u64> = rows.iter().map(|r| r["seq"].parse().unwrap()).collect();
    assert_eq!(seqs.len(), rows.len(), "no request twice");
    let distinct: BTreeSet<&str> = rows.iter().map(|r| r["worker"].as_str()).collect();
    let expected: BTreeSet<String> = (0..workers).map(|w| w.to_string()).collect();
    assert_eq!(
        distinct,
        expected.iter().map(String::as_str).collect(),
        "every record names one of the {workers} workers"
    );
    for r in &rows {
        let (seq, w): (u64, u64) = (r["seq"].parse().unwrap(), r["worker"].parse().unwrap());
        assert_eq!(seq % u64::from(workers), w, "arrivals dealt in turn: {r:?}");
    }
    let scheduled: Vec<u64> = rows
        .iter()
        .map(|r| r["scheduled_ns"].parse().unwrap())
        .collect();
    assert!(
        scheduled.windows(2).all(|p| p[0] <= p[1]),
        "requests.csv is in schedule order"
    );
    let run = read_json(&dir.join("run.json"));
    let ws = run["workers"]
        .as_array()
        .expect("run.json names its workers");
    assert_eq!(ws.len(), workers as usize);
    for w in ws {
        assert!(w["lost"].is_null(), "{w}");
        assert_eq!(w["records"], w["sent"], "{w}");
        assert!(
            w["clock_error_ns"].as_u64().unwrap() < 50_000_000,
            "one machine: clocks agree to well within 50 ms: {w}"
        );
    }
    let deleted = run["teardown"]["deleted"].as_array().unwrap();
    assert!(
        deleted
            .iter()
            .any(|d| d.as_str().unwrap().starts_with("Job default/baton-load-")),
        "the workers' Job was deleted: {}",
        run["teardown"]
    );
    assert_eq!(run["teardown"]["left"].as_array().unwrap().len(), 0);
    rows
}

/// Every failure the sandbox's record can judge: (right cause, judged).
fn refereed(dir: &Path) -> (usize, usize) {
    let judged: Vec<referee::Judged> = referee::Referee::judge_dir(dir)
        .into_iter()
        .filter(|j| j.truth.cause != referee::UNKNOWN)
        .collect();
    let right = judged.iter().filter(|j| j.right_cause()).count();
    (right, judged.len())
}

/// The README's failing rollout (nginx closes at SIGTERM, no preStop,
/// proxies lag 1 s) from three workers through the ClusterIP: FAIL with
/// the endpoint lag, at high confidence, and a preStop remedy, as from
/// outside; the causes are the ones the sandbox recorded.
#[test]
fn the_rolling_update_from_three_workers_fails_with_the_causes_it_has_from_outside() {
    let dir = run_from_cluster("nginx-rolling-update", 3, 1);
    let rows = check_merged(dir.path(), 3);
    let s = read_json(&dir.path().join("summary.json"));
    assert_eq!(s["verdict"], "fail");
    let incident = &s["incidents"][0];
    assert_eq!(incident["cause"], "endpoint_lag_on_termination", "{s}");
    assert_eq!(incident["confidence"], "high", "{incident}");
    assert!(
        incident["remedy"]["text"]
            .as_str()
            .unwrap()
            .contains("preStop sleep"),
        "{incident}"
    );
    assert_eq!(
        s["causes"]["unexplained"].as_u64().unwrap_or(0),
        0,
        "{}",
        s["causes"]
    );
    let failed = rows.iter().filter(|r| r["outcome"] != "ok").count();
    assert!(failed > 0);
    let (right, judged) = refereed(dir.path());
    assert!(
        judged * 10 >= failed * 9,
        "the referee joined {judged} of {failed} failures by local port"
    );
    assert!(
        right * 10 >= judged * 9,
        "right cause for {right} of {judged} failures"
    );
}

/// The same rollout with a 5 s preStop loses nothing from the workers
/// either.
#[test]
fn the_prestop_rollout_from_three_workers_passes() {
    let dir = run_from_cluster("nginx-prestop", 3, 0);
    let rows = check_merged(dir.path(), 3);
    assert!(rows.iter().all(|r| r["outcome"] == "ok"));
    let s = read_json(&dir.path().join("summary.json"));
    assert_eq!(s["verdict"], "pass", "{}", s["reason"]);
}

/// The bundled in-cluster profile: payment-service has no NodePort, and
/// its callers' view (the ClusterIP) shows the endpoint lag.
#[test]
fn payment_service_called_through_its_cluster_ip_fails_with_endpoint_lag() {
    let dir = tempfile::tempdir().unwrap();
    let out = baton()
        .args([
            "run",
            "profiles/payment-service-from-cluster.yaml",
            "-q",
            "-o",
        ])
        .arg(dir.path())
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    check_merged(dir.path(), 3);
    let s = read_json(&dir.path().join("summary.json"));
    assert_eq!(
        s["incidents"][0]["cause"], "endpoint_lag_on_termination",
        "{s}"
    );
    let run = read_json(&dir.path().join("run.json"));
    assert!(
        run["target_url"].as_str().unwrap().ends_with(":80/"),
        "the ClusterIP's port, not a NodePort: {}",
        run["target_url"]
    );
}

/// A sandbox as a real cluster would be reached (a kubeconfig, no
/// `sandbox` section), whose kubelet runs baton's image as this binary;
/// `deny` as RBAC would.
async fn cluster(deny: Vec<baton_sandbox::AccessRule>) -> baton_sandbox::Sandbox {
    let mut cfg = baton_sandbox::SandboxConfig::seed();
    cfg.deny = deny;
    cfg.cluster.process_images = vec![baton_sandbox::ProcessImage {
        image_prefix: "ghcr.io/baton-rollouts/baton".into(),
        program: assert_cmd::cargo::cargo_bin("baton"),
    }];
    baton_sandbox::Sandbox::start(cfg).await.unwrap()
}

async fn client(sb: &baton_sandbox::Sandbox) -> kube::Client {
    let kc = kube::config::Kubeconfig::read_from(sb.kubeconfig_path()).unwrap();
    let cfg = kube::Config::from_custom_kubeconfig(kc, &Default::default())
        .await
        .unwrap();
    kube::Client::try_from(cfg).unwrap()
}

/// A profile for the seed Deployment with no URL: from the cluster, the
/// workers reach the Service's ClusterIP, which baton reads from the API.
fn profile(dir: &Path, warmup: &str) -> std::path::PathBuf {
    let path = dir.join("in-cluster.yaml");
    std::fs::write(
        &path,
        format!(
            "name: in-cluster\n\
             target: {{service: web-service, backend_from: {{header: x-pod-name}}, version_from: {{body_regex: 'version (\\S+)'}}}}\n\
             load: {{from: cluster, workers: 3, rate: 150, warmup: {warmup}, cooldown: 2s}}\n\
             rollout: {{deployment: web-server, steps: [{{set_image: {{container: nginx, image: 'nginx:1.28.0'}}}}, {{wait_rollout: {{timeout: 90s}}}}], deadline: 120s}}\n\
             thresholds: {{max_failed: 100000}}\n"
        ),
    )
    .unwrap();
    path
}

/// Until requests.csv holds records (bounded).
async fn wait_for_records(out: &Path) {
    let requests = out.join("requests.csv");
    for _ in 0..600 {
        if std::fs::metadata(&requests).is_ok_and(|m| m.len() > 4_000) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("no records in {}", requests.display());
}

async fn finish(child: std::process::Child) -> std::process::Output {
    tokio::task::spawn_blocking(move || child.wait_with_output().unwrap())
        .await
        .unwrap()
}

/// Worker 1's Pod deleted mid-run (as an eviction would): the run is
/// INVALID (exit 3) naming worker 1 and its Pod, and what it sent until
/// then is kept in requests.csv, as many rows as run.json says arrived.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_killed_mid_run_makes_the_run_invalid_naming_it_and_keeps_its_records() {
    let sb = cluster(Vec::new()).await;
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    let child = spawn_run(&profile(dir.path(), "8s"), sb.kubeconfig_path(), &out);
    wait_for_records(&out).await;
    let pods: Api<Pod> = Api::namespaced(client(&sb).await, "default");
    let workers = pods
        .list(&ListParams::default().labels(WORKERS))
        .await
        .unwrap();
    let victim = workers
        .items
        .iter()
        .find(|p| {
            p.metadata.annotations.as_ref().and_then(|a| {
                a.get("batch.kubernetes.io/job-completion-index")
                    .map(String::as_str)
            }) == Some("1")
        })
        .and_then(|p| p.metadata.name.clone())
        .expect("worker 1's Pod");
    pods.delete(&victim, &DeleteParams::default())
        .await
        .unwrap();
    let done = finish(child).await;
    let stderr = String::from_utf8_lossy(&done.stderr);
    assert_eq!(done.status.code(), Some(3), "{stderr}");
    let s = read_json(&out.join("summary.json"));
    assert_eq!(s["verdict"], "invalid");
    let reason = s["reason"].as_str().unwrap();
    assert!(
        reason.contains(&format!("load worker 1 (pod {victim})")),
        "{reason}"
    );
    let run = read_json(&out.join("run.json"));
    let w1 = &run["workers"][1];
    assert!(w1["lost"].is_string(), "{w1}");
    let kept = read_csv(&out.join("requests.csv"))
        .iter()
        .filter(|r| r["worker"] == "1")
        .count() as u64;
    assert!(kept > 0, "worker 1's records until it died are kept");
    assert_eq!(w1["records"].as_u64(), Some(kept));
    for w in [&run["workers"][0], &run["workers"][2]] {
        assert!(w["lost"].is_null(), "the others are whole: {w}");
    }
    sb.shutdown().await;
}

/// Ctrl-C while the workers load: exit 130, and the cluster itself says
/// no Job and no Pod of baton's is left.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ctrl_c_during_an_in_cluster_run_leaves_no_job_or_pod_behind() {
    let sb = cluster(Vec::new()).await;
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    let child = spawn_run(&profile(dir.path(), "60s"), sb.kubeconfig_path(), &out);
    wait_for_records(&out).await;
    let c = client(&sb).await;
    let pods: Api<Pod> = Api::namespaced(c.clone(), "default");
    let jobs: Api<Job> = Api::namespaced(c, "default");
    let lp = ListParams::default().labels(WORKERS);
    assert_eq!(
        pods.list(&lp).await.unwrap().items.len(),
        3,
        "3 workers ran"
    );
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGINT,
    )
    .unwrap();
    let done = finish(child).await;
    assert_eq!(
        done.status.code(),
        Some(130),
        "{}",
        String::from_utf8_lossy(&done.stderr)
    );
    assert_eq!(jobs.list(&lp).await.unwrap().items.len(), 0, "no Job left");
    let left: Vec<_> = pods
        .list(&lp)
        .await
        .unwrap()
        .items
        .into_iter()
        .filter_map(|p| p.metadata.name)
        .collect();
    assert!(left.is_empty(), "Pods left: {left:?}");
    let s = read_json(&out.join("summary.json"));
    assert_eq!(s["verdict"], "interrupted");
    sb.shutdown().await;
}

/// Without `create jobs.batch`, preflight stops the run with exit 2,
/// naming the permission, before anything is created.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_permission_to_create_jobs_preflight_exits_2_naming_it() {
    let sb = cluster(vec![baton_sandbox::AccessRule {
        verb: "create".into(),
        group: "batch".into(),
        resource: "jobs".into(),
    }])
    .await;
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    let done = finish(spawn_run(
        &profile(dir.path(), "1s"),
        sb.kubeconfig_path(),
        &out,
    ))
    .await;
    let stderr = String::from_utf8_lossy(&done.stderr);
    assert_eq!(done.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("create jobs.batch"), "{stderr}");
    let jobs: Api<Job> = Api::namespaced(client(&sb).await, "default");
    assert!(
        jobs.list(&ListParams::default())
            .await
            .unwrap()
            .items
            .is_empty()
    );
    sb.shutdown().await;
}
