//! `baton matrix` and `baton compare` end to end: the built binary, the
//! embedded sandbox, real sockets. On the sandbox the Service proxy lags
//! its EndpointSlices by 1 s, so the ground truth orders the variants: a
//! preStop sleep longer than the lag fails nothing, none fails some
//! requests. On a "real" cluster (a sandbox reached through
//! `--kubeconfig`) the Deployment is put back after every variant.

mod common;
#[path = "catalogue/referee.rs"]
mod referee;

use common::read_json;
use referee::Referee;
use std::path::Path;
use std::process::Command;

/// The built baton, with no KUBECONFIG from the environment: these runs
/// are on the simulator unless a test says otherwise.
fn baton() -> Command {
    let mut c = Command::new(assert_cmd::cargo::cargo_bin("baton"));
    c.env_remove("KUBECONFIG").env_remove("GITHUB_ACTIONS");
    c
}

fn profile(name: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("profiles")
        .join(name)
}

#[test]
fn a_prestop_longer_than_the_propagation_lag_is_the_cheapest_variant_with_zero_failures() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("m");
    let run = baton()
        .arg("matrix")
        .arg(profile("nginx-rolling-update.yaml"))
        .args(["--vary", "rollout.preStop=0s,3s", "-q", "--out"])
        .arg(&out)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&run.stdout);
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert_eq!(
        run.status.code(),
        Some(0),
        "stdout:\n{stdout}\nstderr:\n{stderr}"
    );

    let none = read_json(&out.join("preStop-0s/summary.json"));
    let three = read_json(&out.join("preStop-3s/summary.json"));
    assert!(
        none["requests"]["failed"].as_u64().unwrap() > 0,
        "no preStop: connections refused while the proxy still routes to a terminating pod"
    );
    assert!(
        none["causes"]["endpoint_lag_on_termination"]
            .as_u64()
            .unwrap_or(0)
            > 0,
        "{}",
        none["causes"]
    );
    assert_eq!(three["requests"]["failed"], 0, "{}", three["causes"]);
    // The ground truth orders the variants on its own: the sandbox's proxy
    // saw connections of the no-preStop run's requests fail, and none of
    // the 3 s run's; and baton's causes for the first are the mechanisms
    // the sandbox recorded.
    let truth_failed = |v: &str| {
        let dir = out.join(v);
        Referee::from_dir(&dir).failed_requests(&dir)
    };
    assert!(truth_failed("preStop-0s") > 0, "the proxy saw no failure");
    assert_eq!(
        truth_failed("preStop-3s"),
        0,
        "the proxy saw requests of the preStop 3s variant fail"
    );
    let judged: Vec<_> = Referee::judge_dir(&out.join("preStop-0s"))
        .into_iter()
        .filter(|j| j.truth.cause != referee::UNKNOWN)
        .collect();
    let right = judged.iter().filter(|j| j.right_cause()).count();
    assert!(
        !judged.is_empty() && right * 10 >= judged.len() * 9,
        "right cause for {right} of {} refereed failures",
        judged.len()
    );
    // (Its verdict is not asserted: on a busy machine p99 latency may
    // exceed the profile's limit with nothing failed.)

    let m = read_json(&out.join("matrix.json"));
    assert_eq!(m["cheapest_zero_failures"], "preStop-3s");
    assert!(stdout.contains("Cheapest variant with zero failures: preStop-3s"));

    let md = std::fs::read_to_string(out.join("compare.md")).unwrap();
    assert!(
        md.contains("preStop-0s") && md.contains("preStop-3s"),
        "{md}"
    );
    assert!(md.contains("| `rollout.preStop` | 0s | 3s |"), "{md}");
    // The page marks the chosen variant and links each variant's report.
    let html =
        quick_xml::escape::unescape(&std::fs::read_to_string(out.join("compare.html")).unwrap())
            .unwrap()
            .into_owned();
    assert!(
        html.contains("<th class=\"run chosen\" scope=\"col\" data-run=\"preStop-3s\">"),
        "{html}"
    );
    for v in ["preStop-0s", "preStop-3s"] {
        assert!(
            html.contains(&format!(
                "<a class=\"report\" href=\"{v}/report.html\">{v}</a>"
            )),
            "{html}"
        );
    }

    // The variant's pods really had the hook: the Deployment after the
    // 3 s run carries it.
    let after =
        std::fs::read_to_string(out.join("preStop-3s/cluster/deployment.after.yaml")).unwrap();
    assert!(after.contains("sleep"), "{after}");

    // `baton compare` on the two directories: both columns, the
    // setting that differs, written as Markdown too.
    let md_file = dir.path().join("c.md");
    let cmp = baton()
        .arg("compare")
        .arg(out.join("preStop-0s"))
        .arg(out.join("preStop-3s"))
        .arg("--markdown")
        .arg(&md_file)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&cmp.stdout);
    assert_eq!(cmp.status.code(), Some(0), "{text}");
    assert!(
        text.contains("preStop-0s") && text.contains("preStop-3s"),
        "{text}"
    );
    let setting = text
        .lines()
        .find(|l| l.starts_with("rollout.preStop"))
        .unwrap_or_else(|| panic!("the differing setting is listed:\n{text}"));
    assert!(
        setting.contains("0s") && setting.contains("3s"),
        "{setting}"
    );
    let failed = text
        .lines()
        .find(|l| l.starts_with("failed / sent"))
        .unwrap_or_else(|| panic!("failed / sent is listed:\n{text}"));
    assert!(failed.contains(" 0 / "), "{failed}");
    assert!(
        std::fs::read_to_string(&md_file)
            .unwrap()
            .contains("| **verdict** | **FAIL** |")
    );
}

#[test]
fn compare_exits_2_naming_a_missing_directory() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("no-such-run");
    let out = baton()
        .arg("compare")
        .arg(dir.path())
        .arg(&missing)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    // The first directory exists but holds no run: also named.
    assert!(
        stderr.contains(&dir.path().display().to_string()),
        "{stderr}"
    );
    let out = baton().arg("compare").arg(&missing).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no-such-run"));
}

#[test]
fn a_bad_vary_or_a_variant_the_profile_refuses_exits_2_before_anything_runs() {
    let dir = tempfile::tempdir().unwrap();
    for (vary, needle) in [
        ("rollout.preStop=soon", "not a duration"),
        ("rollout.preStop", "expected path=v1,v2"),
        ("load.rate=100,-5", "load.rate"),
    ] {
        let out_dir = dir.path().join("m");
        let out = baton()
            .arg("matrix")
            .arg(profile("nginx-rolling-update.yaml"))
            .args(["--vary", vary, "-q", "--out"])
            .arg(&out_dir)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{vary}: {stderr}");
        assert!(stderr.contains(needle), "{vary}: {stderr}");
        assert!(!out_dir.exists(), "{vary}: nothing written");
    }
}

/// Through `--kubeconfig` the sandbox is treated as a real cluster: no
/// fresh sandbox per variant, so the matrix must put the Deployment back
/// itself after each one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_a_real_cluster_the_deployment_is_put_back_after_every_variant() {
    use k8s_openapi::api::apps::v1::Deployment;
    let sb = baton_sandbox::Sandbox::start(baton_sandbox::SandboxConfig::seed())
        .await
        .unwrap();
    let url = format!(
        "http://{}/",
        sb.node_port("default/web-service")
            .expect("the seed's NodePort")
    );
    let kubeconfig = sb.kubeconfig_path().to_path_buf();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("m");
    let args = {
        let out = out.clone();
        move || {
            baton()
                .arg("matrix")
                .arg(profile("nginx-rolling-update.yaml"))
                .arg("--kubeconfig")
                .arg(&kubeconfig)
                .args(["--set", &format!("target.url={url}")])
                .args(["--vary", "rollout.terminationGracePeriodSeconds=5,10"])
                .args(["-q", "--out"])
                .arg(&out)
                .output()
                .unwrap()
        }
    };
    let run = tokio::task::spawn_blocking(args).await.unwrap();
    let stdout = String::from_utf8_lossy(&run.stdout);
    let stderr = String::from_utf8_lossy(&run.stderr);
    // Both variants rolled 1.27 -> 1.28.0: the second started from the
    // Deployment as found, not from the first one's end state.
    for v in [
        "terminationGracePeriodSeconds-5",
        "terminationGracePeriodSeconds-10",
    ] {
        let s = read_json(&out.join(v).join("summary.json"));
        assert_eq!(
            s["rollout"]["completed"], true,
            "{v}\nstdout:\n{stdout}\nstderr:\n{stderr}"
        );
        let before = s["versions_before_rollout"].as_object().unwrap();
        assert!(
            before.keys().all(|k| k.starts_with("1.27")),
            "{v} started from 1.27: {before:?}"
        );
        let after =
            std::fs::read_to_string(out.join(v).join("cluster/deployment.after.yaml")).unwrap();
        let grace = v.rsplit('-').next().unwrap();
        assert!(
            after.contains(&format!("terminationGracePeriodSeconds: {grace}")),
            "{v}: {after}"
        );
    }
    assert!(matches!(run.status.code(), Some(0) | Some(1)), "{stderr}");

    // And the cluster is left as it was found.
    let client = kube::Client::try_from(
        kube::Config::from_custom_kubeconfig(
            kube::config::Kubeconfig::read_from(sb.kubeconfig_path()).unwrap(),
            &Default::default(),
        )
        .await
        .unwrap(),
    )
    .unwrap();
    let api: kube::Api<Deployment> = kube::Api::namespaced(client, "default");
    let d = api.get("web-server").await.unwrap();
    let pod = d.spec.template.spec.unwrap();
    assert_eq!(pod.containers[0].image.as_deref(), Some("nginx:1.27"));
    assert_ne!(pod.termination_grace_period_seconds, Some(10));
    assert_ne!(pod.termination_grace_period_seconds, Some(5));
    sb.shutdown().await;
}

#[test]
fn ctrl_c_stops_the_matrix_after_the_current_variant_and_still_writes_the_comparison() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("m");
    let mut child = baton()
        .arg("matrix")
        .arg(profile("nginx-rolling-update.yaml"))
        .args([
            "--vary",
            "rollout.preStop=0s,3s",
            "--set",
            "load.warmup=30s",
        ])
        .args(["-q", "--out"])
        .arg(&out)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Wait (bounded) until the first variant's load is recorded.
    let requests = out.join("preStop-0s/requests.csv");
    for _ in 0..300 {
        if std::fs::metadata(&requests).is_ok_and(|m| m.len() > 2_000) {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert!(requests.is_file(), "the first variant's load started");
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGINT,
    )
    .unwrap();
    assert_eq!(child.wait().unwrap().code(), Some(130));
    let m = read_json(&out.join("matrix.json"));
    assert_eq!(m["interrupted"], true);
    assert_eq!(m["variants"].as_array().unwrap().len(), 1, "{m}");
    assert!(
        !out.join("preStop-3s").exists(),
        "the next variant never started"
    );
    let md = std::fs::read_to_string(out.join("compare.md")).unwrap();
    assert!(md.contains("INTERRUPTED"), "{md}");
    assert!(md.contains("Interrupted: 1 of 2 variant(s) ran."), "{md}");
}
