//! batch/v1 Jobs whose Pods run as real child processes (the sandbox's
//! `process_images`), `pods/log` and `pods/attach`, through kube-rs and
//! kubectl: what baton's in-cluster workers will rely on. The image
//! `sandbox.test/sh` is mapped to `/bin/sh`, so each container is a shell
//! running its `args`.

mod api_support;

use std::path::PathBuf;
use std::time::Duration;

use api_support::*;
use baton_sandbox::{ProcessImage, Sandbox, SandboxConfig};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, AttachParams, DeleteParams, ListParams, LogParams, PostParams};
use serde_json::json;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

const IMAGE: &str = "sandbox.test/sh:1";

async fn sandbox(deny: Vec<baton_sandbox::AccessRule>) -> Sandbox {
    let mut cfg = SandboxConfig {
        deny,
        ..SandboxConfig::default()
    };
    cfg.cluster.process_images = vec![ProcessImage {
        image_prefix: "sandbox.test/sh".into(),
        program: PathBuf::from("/bin/sh"),
    }];
    cfg.cluster.backoff_base = Duration::from_millis(200);
    start(cfg).await
}

fn job(name: &str, script: &str, spec: serde_json::Value) -> Job {
    let mut j = json!({
        "apiVersion": "batch/v1", "kind": "Job",
        "metadata": {"name": name},
        "spec": {"template": {"spec": {"restartPolicy": "Never", "terminationGracePeriodSeconds": 1,
            "containers": [{"name": "worker", "image": IMAGE, "args": ["-c", script]}]}}},
    });
    json_patch::merge(&mut j, &json!({ "spec": spec }));
    serde_json::from_value(j).unwrap()
}

/// Polls `f` every 50 ms for up to 30 s.
async fn until<T, F, Fut>(what: &str, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    for _ in 0..600 {
        if let Some(v) = f().await {
            return v;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("timed out waiting for {what}");
}

fn condition(j: &Job, ty: &str) -> Option<(String, String)> {
    j.status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == ty && c.status == "True")
        .map(|c| {
            (
                c.reason.clone().unwrap_or_default(),
                c.message.clone().unwrap_or_default(),
            )
        })
}

async fn job_pods(pods: &Api<Pod>, job: &str) -> Vec<Pod> {
    pods.list(&ListParams::default().labels(&format!("batch.kubernetes.io/job-name={job}")))
        .await
        .unwrap()
        .items
}

/// A pid neither running nor a zombie.
fn gone(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(s) => s
            .rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z')),
    }
}

#[tokio::test]
async fn an_indexed_job_of_three_runs_its_pods_as_processes_and_completes() {
    let sb = sandbox(vec![]).await;
    let c = client(&sb).await;
    let jobs: Api<Job> = Api::default_namespaced(c.clone());
    let pods: Api<Pod> = Api::default_namespaced(c);
    let j = job(
        "load",
        "echo index=$JOB_COMPLETION_INDEX host=$HOSTNAME pod=$POD",
        json!({"completionMode": "Indexed", "completions": 3, "parallelism": 3,
            "template": {"spec": {"containers": [{"name": "worker", "image": IMAGE,
                "args": ["-c", "echo index=$JOB_COMPLETION_INDEX host=$HOSTNAME pod=$POD"],
                "env": [{"name": "POD", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}]}]}}}),
    );
    jobs.create(&PostParams::default(), &j).await.unwrap();
    let done = until("the job to complete", || async {
        let j = jobs.get("load").await.unwrap();
        condition(&j, "Complete").map(|_| j)
    })
    .await;
    let st = done.status.unwrap();
    assert_eq!(st.completed_indexes.as_deref(), Some("0-2"));
    assert_eq!((st.succeeded, st.failed), (Some(3), Some(0)));
    assert!(st.start_time.is_some() && st.completion_time.is_some());

    let mut ps = job_pods(&pods, "load").await;
    ps.sort_by_key(|p| p.metadata.name.clone());
    assert_eq!(ps.len(), 3);
    for (i, p) in ps.iter().enumerate() {
        let name = p.metadata.name.clone().unwrap();
        assert!(name.starts_with(&format!("load-{i}-")), "{name}");
        let ann = p.metadata.annotations.as_ref().unwrap();
        assert_eq!(
            ann["batch.kubernetes.io/job-completion-index"],
            i.to_string()
        );
        let labels = p.metadata.labels.as_ref().unwrap();
        assert_eq!(
            labels["batch.kubernetes.io/job-completion-index"],
            i.to_string()
        );
        assert_eq!(labels["job-name"], "load");
        let owner = &p.metadata.owner_references.as_ref().unwrap()[0];
        assert_eq!((owner.kind.as_str(), owner.controller), ("Job", Some(true)));
        let status = p.status.as_ref().unwrap();
        assert_eq!(status.phase.as_deref(), Some("Succeeded"));
        let term = status.container_statuses.as_ref().unwrap()[0]
            .state
            .as_ref()
            .unwrap()
            .terminated
            .clone()
            .unwrap();
        assert_eq!(
            (term.exit_code, term.reason.as_deref()),
            (0, Some("Completed"))
        );
        let log = pods.logs(&name, &LogParams::default()).await.unwrap();
        assert_eq!(log, format!("index={i} host=load-{i} pod={name}\n"));
    }
    sb.shutdown().await;
}

#[tokio::test]
async fn a_pod_exiting_1_with_backoff_limit_zero_fails_the_job() {
    let sb = sandbox(vec![]).await;
    let c = client(&sb).await;
    let jobs: Api<Job> = Api::default_namespaced(c.clone());
    let pods: Api<Pod> = Api::default_namespaced(c);
    let j = job(
        "bad",
        "echo oops >&2; exit 1",
        json!({"completionMode": "Indexed", "completions": 1, "backoffLimit": 0}),
    );
    jobs.create(&PostParams::default(), &j).await.unwrap();
    let (reason, message) = until("the job to fail", || async {
        condition(&jobs.get("bad").await.unwrap(), "Failed")
    })
    .await;
    assert_eq!(reason, "BackoffLimitExceeded");
    assert_eq!(message, "Job has reached the specified backoff limit");
    let ps = job_pods(&pods, "bad").await;
    assert_eq!(ps.len(), 1, "no retry after the backoff limit");
    let st = ps[0].status.as_ref().unwrap();
    assert_eq!(st.phase.as_deref(), Some("Failed"));
    let term = st.container_statuses.as_ref().unwrap()[0]
        .state
        .as_ref()
        .unwrap()
        .terminated
        .clone()
        .unwrap();
    assert_eq!((term.exit_code, term.reason.as_deref()), (1, Some("Error")));
    let log = pods
        .logs(
            ps[0].metadata.name.as_deref().unwrap(),
            &LogParams::default(),
        )
        .await
        .unwrap();
    assert_eq!(log, "oops\n");
    sb.shutdown().await;
}

#[tokio::test]
async fn ttl_seconds_after_finished_deletes_the_job_and_its_pods() {
    let sb = sandbox(vec![]).await;
    let c = client(&sb).await;
    let jobs: Api<Job> = Api::default_namespaced(c.clone());
    let pods: Api<Pod> = Api::default_namespaced(c);
    let j = job("short", "true", json!({"ttlSecondsAfterFinished": 1}));
    jobs.create(&PostParams::default(), &j).await.unwrap();
    until("the job to complete", || async {
        condition(&jobs.get("short").await.unwrap(), "Complete")
    })
    .await;
    until("the job to be deleted", || async {
        jobs.get_opt("short").await.unwrap().is_none().then_some(())
    })
    .await;
    until("its pods to be deleted", || async {
        job_pods(&pods, "short").await.is_empty().then_some(())
    })
    .await;
    sb.shutdown().await;
}

#[tokio::test]
async fn deleting_a_running_job_kills_its_processes_and_leaves_no_pod() {
    let sb = sandbox(vec![]).await;
    let c = client(&sb).await;
    let jobs: Api<Job> = Api::default_namespaced(c.clone());
    let pods: Api<Pod> = Api::default_namespaced(c);
    // SIGTERM is ignored (by the shell and the sleep it starts), so only
    // the SIGKILL after the 1 s grace period ends them. (`$$$$` is the
    // shell's `$$` after Kubernetes' `$(VAR)` expansion of args.)
    let j = job(
        "stuck",
        "trap '' TERM; sleep 1000 & echo $$$$ $!; wait; wait",
        json!({}),
    );
    jobs.create(&PostParams::default(), &j).await.unwrap();
    let (pod, pids) = until("the process to report its pids", || async {
        let p = job_pods(&pods, "stuck").await.into_iter().next()?;
        let name = p.metadata.name.clone()?;
        let log = pods.logs(&name, &LogParams::default()).await.ok()?;
        let pids: Vec<i32> = log
            .split_whitespace()
            .filter_map(|w| w.parse().ok())
            .collect();
        (pids.len() == 2).then_some((name, pids))
    })
    .await;
    assert!(pids.iter().all(|p| !gone(*p)), "running: {pids:?}");
    jobs.delete("stuck", &DeleteParams::background())
        .await
        .unwrap();
    until("the pod to be removed", || async {
        pods.get_opt(&pod).await.unwrap().is_none().then_some(())
    })
    .await;
    assert!(jobs.get_opt("stuck").await.unwrap().is_none());
    until("the processes to be gone", || async {
        pids.iter().all(|p| gone(*p)).then_some(())
    })
    .await;
    sb.shutdown().await;
}

fn stdin_pod(name: &str, script: &str) -> Pod {
    serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
        "spec": {"restartPolicy": "Never", "containers": [{"name": "worker", "image": IMAGE,
            "stdin": true, "args": ["-c", script]}]},
    }))
    .unwrap()
}

async fn running(pods: &Api<Pod>, name: &str) {
    until("the pod to run", || async {
        let p = pods.get(name).await.ok()?;
        (p.status?.phase.as_deref() == Some("Running")).then_some(())
    })
    .await;
}

#[tokio::test]
async fn attach_sends_stdin_reads_the_echo_on_stdout_and_gets_the_exit_status() {
    let sb = sandbox(vec![]).await;
    let pods: Api<Pod> = Api::default_namespaced(client(&sb).await);
    pods.create(
        &PostParams::default(),
        &stdin_pod("echo", "read l; echo got:$l; exit 3"),
    )
    .await
    .unwrap();
    running(&pods, "echo").await;
    let ap = AttachParams::default()
        .stdin(true)
        .stdout(true)
        .stderr(false);
    let mut att = pods.attach("echo", &ap).await.unwrap();
    let mut stdin = att.stdin().unwrap();
    let mut stdout = BufReader::new(att.stdout().unwrap());
    let status = att.take_status().unwrap();
    stdin.write_all(b"hello\n").await.unwrap();
    let mut line = String::new();
    tokio::time::timeout(Duration::from_secs(30), stdout.read_line(&mut line))
        .await
        .expect("an answer")
        .unwrap();
    assert_eq!(line, "got:hello\n");
    let st = tokio::time::timeout(Duration::from_secs(30), status)
        .await
        .expect("a status")
        .expect("status sent");
    assert_eq!(st.status.as_deref(), Some("Failure"));
    assert_eq!(st.reason.as_deref(), Some("NonZeroExitCode"));
    let causes = st.details.unwrap().causes.unwrap();
    assert_eq!(causes[0].message.as_deref(), Some("3"));
    sb.shutdown().await;
}

#[tokio::test]
async fn attach_with_stdin_needs_a_container_that_declares_it() {
    let sb = sandbox(vec![]).await;
    let pods: Api<Pod> = Api::default_namespaced(client(&sb).await);
    let mut p = stdin_pod("nostdin", "sleep 1000");
    p.spec.as_mut().unwrap().containers[0].stdin = None;
    pods.create(&PostParams::default(), &p).await.unwrap();
    running(&pods, "nostdin").await;
    let ap = AttachParams::default().stdin(true).stderr(false);
    let e = pods.attach("nostdin", &ap).await.err().expect("refused");
    assert!(e.to_string().contains("stdin: true"), "{e}");
    sb.shutdown().await;
}

#[tokio::test]
async fn access_rules_cover_pods_attach_and_pods_log() {
    let rule = |verb: &str, resource: &str| baton_sandbox::AccessRule {
        verb: verb.into(),
        group: String::new(),
        resource: resource.into(),
    };
    let sb = sandbox(vec![rule("create", "pods/attach"), rule("get", "pods/log")]).await;
    let pods: Api<Pod> = Api::default_namespaced(client(&sb).await);
    pods.create(&PostParams::default(), &stdin_pod("guarded", "sleep 1000"))
        .await
        .unwrap();
    running(&pods, "guarded").await;
    let e = pods
        .attach(
            "guarded",
            &AttachParams::default().stdin(true).stderr(false),
        )
        .await
        .err()
        .expect("attach refused");
    assert!(e.to_string().contains("forbidden"), "{e}");
    let e = pods
        .logs("guarded", &LogParams::default())
        .await
        .expect_err("log refused");
    assert!(e.to_string().contains("forbidden"), "{e}");
    sb.shutdown().await;
}

#[tokio::test]
async fn no_child_process_outlives_sandbox_shutdown() {
    let sb = sandbox(vec![]).await;
    let pods: Api<Pod> = Api::default_namespaced(client(&sb).await);
    pods.create(
        &PostParams::default(),
        &stdin_pod(
            "lingering",
            "trap '' TERM; sleep 1000 & echo $$$$ $!; wait; wait",
        ),
    )
    .await
    .unwrap();
    let pids = until("the pids", || async {
        let log = pods.logs("lingering", &LogParams::default()).await.ok()?;
        let pids: Vec<i32> = log
            .split_whitespace()
            .filter_map(|w| w.parse().ok())
            .collect();
        (pids.len() == 2).then_some(pids)
    })
    .await;
    sb.shutdown().await;
    until("the processes to be gone", || async {
        pids.iter().all(|p| gone(*p)).then_some(())
    })
    .await;
}

#[tokio::test]
async fn follow_streams_the_log_until_the_process_exits() {
    use futures::{AsyncBufReadExt as _, TryStreamExt};
    let sb = sandbox(vec![]).await;
    let pods: Api<Pod> = Api::default_namespaced(client(&sb).await);
    pods.create(
        &PostParams::default(),
        &stdin_pod("talker", "echo one; read l; echo two; echo three >&2"),
    )
    .await
    .unwrap();
    running(&pods, "talker").await;
    let lp = LogParams {
        follow: true,
        timestamps: true,
        ..LogParams::default()
    };
    let mut lines = pods.log_stream("talker", &lp).await.unwrap().lines();
    let first = lines.try_next().await.unwrap().unwrap();
    assert!(first.ends_with("Z one"), "{first}");
    let mut att = pods
        .attach(
            "talker",
            &AttachParams::default()
                .stdin(true)
                .stdout(false)
                .stderr(false),
        )
        .await
        .unwrap();
    att.stdin().unwrap().write_all(b"go\n").await.unwrap();
    let rest: Vec<String> = tokio::time::timeout(Duration::from_secs(30), lines.try_collect())
        .await
        .expect("the stream ends with the process")
        .unwrap();
    let rest: Vec<&str> = rest.iter().map(|l| l.split_once(' ').unwrap().1).collect();
    assert_eq!(rest, ["two", "three"]);
    let tail = pods
        .logs(
            "talker",
            &LogParams {
                tail_lines: Some(1),
                ..LogParams::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(tail, "three\n");
    sb.shutdown().await;
}

fn kubectl(sb: &Sandbox, args: &[&str]) -> (bool, String, String) {
    let cache = sb.kubeconfig_path().with_file_name("kubectl-cache");
    let out = std::process::Command::new("kubectl")
        .arg("--kubeconfig")
        .arg(sb.kubeconfig_path())
        .arg("--cache-dir")
        .arg(&cache)
        .args(args)
        .output()
        .expect("kubectl on PATH (Debian: apt-get install kubernetes-client)");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into(),
        String::from_utf8_lossy(&out.stderr).into(),
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn kubectl_gets_jobs_reads_logs_and_deletes_a_job() {
    let sb = sandbox(vec![]).await;
    let jobs: Api<Job> = Api::default_namespaced(client(&sb).await);
    let j = job(
        "kjob",
        "echo hi from $JOB_COMPLETION_INDEX",
        json!({"completionMode": "Indexed", "completions": 2, "parallelism": 2}),
    );
    jobs.create(&PostParams::default(), &j).await.unwrap();
    until("the job to complete", || async {
        condition(&jobs.get("kjob").await.unwrap(), "Complete")
    })
    .await;
    let (ok, out, err) = kubectl(&sb, &["get", "jobs"]);
    assert!(ok, "{err}");
    let header: Vec<&str> = out.lines().next().unwrap().split_whitespace().collect();
    assert_eq!(header, ["NAME", "STATUS", "COMPLETIONS", "DURATION", "AGE"]);
    let row: Vec<&str> = out.lines().nth(1).unwrap().split_whitespace().collect();
    assert_eq!(&row[..3], ["kjob", "Complete", "2/2"], "{out}");
    let (ok, out, err) = kubectl(
        &sb,
        &[
            "get",
            "pods",
            "-l",
            "batch.kubernetes.io/job-completion-index=1",
            "-o",
            "name",
        ],
    );
    assert!(ok, "{err}");
    let pod = out.trim().to_string();
    assert!(pod.starts_with("pod/kjob-1-"), "{out}");
    let (ok, out, err) = kubectl(&sb, &["logs", &pod]);
    assert!(ok, "{err}");
    assert_eq!(out, "hi from 1\n");
    let (ok, _, err) = kubectl(&sb, &["delete", "job", "kjob"]);
    assert!(ok, "{err}");
    let pods: Api<Pod> = Api::default_namespaced(client(&sb).await);
    until("the job's pods to go", || async {
        job_pods(&pods, "kjob").await.is_empty().then_some(())
    })
    .await;
    sb.shutdown().await;
}
