//! Rollout steps against the sandbox, through kube-rs as against a real
//! cluster: each step does to the objects what the kubectl command would,
//! step events reach the timeline in order, a stalled rollout is undone on
//! request, cancellation stops a wait, and the snapshots hold the objects
//! and the history.

use std::path::Path;
use std::time::Duration;

use baton::clock::RunClock;
use baton::cluster::event::{EventKind, LifecycleEvent};
use baton::cluster::exec::ExecEnv;
use baton::cluster::rollout::template_without_hash;
use baton::cluster::snapshot::snapshot;
use baton::cluster::stall::{REVISION_ANNOTATION, revision};
use baton::cluster::steps::{
    OnStall, StallPolicy, Step, StepContext, StepOutcome, StepsReport, run_steps,
};
use baton_sandbox::{Sandbox, SandboxConfig};
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::Pod;
use kube::api::ListParams;
use kube::{Api, Client};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

const NS: &str = "default";
const DEPLOY: &str = "web-server";

struct Harness {
    sb: Sandbox,
    client: Client,
    clock: RunClock,
    /// The cluster as `exec` steps see it (the sandbox's kubeconfig).
    exec: std::sync::Arc<ExecEnv>,
    /// Where `exec` steps' logs go.
    run_dir: tempfile::TempDir,
}

impl Harness {
    async fn start() -> Harness {
        Harness::start_on(1).await
    }

    /// The seed scenario on `nodes` Nodes.
    async fn start_on(nodes: usize) -> Harness {
        let mut cfg = SandboxConfig::seed();
        cfg.cluster.propagation_delay = Duration::from_millis(100);
        cfg.cluster.nodes = nodes;
        let sb = Sandbox::start(cfg).await.expect("sandbox starts");
        let kc = kube::config::Kubeconfig::read_from(sb.kubeconfig_path()).expect("kubeconfig");
        let kcfg =
            kube::Config::from_custom_kubeconfig(kc, &kube::config::KubeConfigOptions::default())
                .await
                .expect("client config");
        // As baton's own client: what the API server says, not retried.
        let client =
            Client::try_from(baton::cluster::connect::no_silent_retry(kcfg)).expect("client");
        let exec = ExecEnv::prepare(Some(sb.kubeconfig_path()), None, NS, DEPLOY)
            .expect("exec kubeconfig");
        let h = Harness {
            sb,
            client,
            clock: RunClock::start(),
            exec: std::sync::Arc::new(exec),
            run_dir: tempfile::tempdir().unwrap(),
        };
        // Start from a finished rollout of revision 1.
        let report = h.run(&steps("- wait_rollout: {timeout: 60s}")).await.0;
        assert!(report.completed, "the seed rolls out: {report:?}");
        h
    }

    fn deployments(&self) -> Api<Deployment> {
        Api::namespaced(self.client.clone(), NS)
    }

    fn ctx(
        &self,
        base_dir: &Path,
        stall: StallPolicy,
    ) -> (StepContext, mpsc::UnboundedReceiver<LifecycleEvent>) {
        let (tx, rx) = mpsc::unbounded_channel();
        let ctx = StepContext {
            client: self.client.clone(),
            namespace: NS.into(),
            deployment: DEPLOY.into(),
            base_dir: base_dir.to_path_buf(),
            clock: self.clock,
            events: tx,
            cancel: CancellationToken::new(),
            stall,
            exec: Some(self.exec.clone()),
            run_dir: Some(self.run_dir.path().to_path_buf()),
            created: None,
        };
        (ctx, rx)
    }

    async fn run_with(
        &self,
        steps: &[Step],
        base_dir: &Path,
        stall: StallPolicy,
    ) -> (StepsReport, Vec<LifecycleEvent>) {
        let (ctx, mut rx) = self.ctx(base_dir, stall);
        let report = tokio::time::timeout(Duration::from_secs(180), run_steps(&ctx, steps))
            .await
            .expect("steps end (safety net)");
        drop(ctx);
        let mut events = Vec::new();
        while let Some(e) = rx.recv().await {
            events.push(e);
        }
        (report, events)
    }

    async fn run(&self, steps: &[Step]) -> (StepsReport, Vec<LifecycleEvent>) {
        self.run_with(steps, Path::new("."), StallPolicy::default())
            .await
    }

    async fn deployment(&self) -> Deployment {
        self.deployments()
            .get(DEPLOY)
            .await
            .expect("get deployment")
    }

    async fn replica_sets(&self) -> Vec<ReplicaSet> {
        let api: Api<ReplicaSet> = Api::namespaced(self.client.clone(), NS);
        api.list(&ListParams::default())
            .await
            .expect("list rs")
            .items
    }

    async fn pods(&self) -> Vec<Pod> {
        let api: Api<Pod> = Api::namespaced(self.client.clone(), NS);
        api.list(&ListParams::default().labels("app=web"))
            .await
            .expect("list pods")
            .items
    }

    async fn rs_of_revision(&self, rev: i64) -> ReplicaSet {
        self.replica_sets()
            .await
            .into_iter()
            .find(|rs| revision(&rs.metadata) == Some(rev))
            .unwrap_or_else(|| panic!("a ReplicaSet of revision {rev}"))
    }
}

fn steps(yaml: &str) -> Vec<Step> {
    serde_norway::from_str(yaml).expect("steps parse")
}

fn image(d: &Deployment) -> String {
    d.spec.template.spec.as_ref().unwrap().containers[0]
        .image
        .clone()
        .unwrap()
}

fn done(report: &StepsReport) {
    assert!(report.completed, "{report:#?}");
    assert!(
        report.steps.iter().all(|s| s.outcome == StepOutcome::Done),
        "{report:#?}"
    );
}

/// The lines the steps said on the timeline (`step_output`), in order.
fn lines_said(events: &[LifecycleEvent]) -> Vec<&str> {
    events
        .iter()
        .filter(|e| e.kind == EventKind::StepOutput)
        .map(|e| e.detail.as_str())
        .collect()
}

fn step_events(events: &[LifecycleEvent]) -> Vec<(EventKind, String)> {
    events.iter().map(|e| (e.kind, e.object.clone())).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn set_image_and_wait_rollout_roll_out_and_put_each_step_on_the_timeline_in_order() {
    let h = Harness::start().await;
    let (report, events) = h
        .run(&steps(
            "- set_image: {image: \"nginx:1.28\"}\n- wait_rollout: {timeout: 90s}\n",
        ))
        .await;
    done(&report);
    let d = h.deployment().await;
    assert_eq!(image(&d), "nginx:1.28");
    assert_eq!(revision(&d.metadata), Some(2));
    assert!(
        h.pods()
            .await
            .iter()
            .all(|p| p.metadata.deletion_timestamp.is_some()
                || p.spec.as_ref().unwrap().containers[0].image.as_deref() == Some("nginx:1.28")),
        "every live pod runs the new image"
    );
    assert_eq!(
        step_events(&events),
        [
            (EventKind::StepStarted, "step/1".to_string()),
            (EventKind::StepEnded, "step/1".to_string()),
            (EventKind::StepStarted, "step/2".to_string()),
            (EventKind::StepEnded, "step/2".to_string()),
        ]
    );
    assert_eq!(events[0].detail, "set_image nginx:1.28");
    assert!(
        events
            .windows(2)
            .all(|w| w[0].observed_ns <= w[1].observed_ns)
    );
    assert_eq!(report.steps[1].description, "wait_rollout timeout=1m 30s");
    assert!(report.steps.iter().all(|s| s.started_ns <= s.ended_ns));
    h.sb.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn undo_copies_the_previous_revisions_template_back() {
    let h = Harness::start().await;
    let rev1 = template_without_hash(&h.rs_of_revision(1).await);
    let (report, _) = h
        .run(&steps(
            "- set_image: {container: nginx, image: \"nginx:1.28\"}\n- wait_rollout: {timeout: 90s}\n- undo: {}\n- wait_rollout: {timeout: 90s}\n",
        ))
        .await;
    done(&report);
    let d = h.deployment().await;
    assert_eq!(
        serde_json::to_value(&d.spec.template).unwrap(),
        rev1,
        "the template equals revision 1's"
    );
    assert_eq!(image(&d), "nginx:1.27");
    // As in Kubernetes, the old ReplicaSet comes back as revision 3.
    assert_eq!(revision(&d.metadata), Some(3));
    h.sb.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn undo_to_a_named_revision_and_a_missing_one() {
    let h = Harness::start().await;
    let (report, _) = h
        .run(&steps(
            "- set_image: {image: \"nginx:1.28\"}\n- wait_rollout: {timeout: 90s}\n- set_image: {image: \"nginx:1.29\"}\n- wait_rollout: {timeout: 90s}\n- undo: {revision: 1}\n- wait_rollout: {timeout: 90s}\n",
        ))
        .await;
    done(&report);
    assert_eq!(image(&h.deployment().await), "nginx:1.27");

    let (report, events) = h.run(&steps("- undo: {revision: 42}\n")).await;
    assert!(!report.completed);
    match &report.steps[0].outcome {
        StepOutcome::Failed(why) => assert!(why.contains("no revision 42"), "{why}"),
        other => panic!("expected a failure, got {other:?}"),
    }
    assert_eq!(events.last().unwrap().kind, EventKind::StepFailed);
    h.sb.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_rolls_out_a_new_revision_stamped_with_restarted_at() {
    let h = Harness::start().await;
    let (report, _) = h
        .run(&steps("- restart: {}\n- wait_rollout: {timeout: 90s}\n"))
        .await;
    done(&report);
    let d = h.deployment().await;
    assert_eq!(revision(&d.metadata), Some(2));
    let stamp = d
        .spec
        .template
        .metadata
        .as_ref()
        .and_then(|m| m.annotations.as_ref())
        .and_then(|a| a.get("kubectl.kubernetes.io/restartedAt"))
        .expect("restartedAt on the template")
        .clone();
    assert!(
        humantime::parse_rfc3339(&stamp).is_ok(),
        "RFC 3339 time: {stamp}"
    );
    assert_eq!(image(&d), "nginx:1.27", "same image, new revision");
    h.sb.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scale_changes_replicas_and_wait_ready_waits_for_them() {
    let h = Harness::start().await;
    let (report, _) = h
        .run(&steps(
            "- scale: {replicas: 5}\n- wait_ready: {timeout: 90s}\n",
        ))
        .await;
    done(&report);
    let d = h.deployment().await;
    assert_eq!(d.spec.replicas, Some(5));
    assert_eq!(d.status.as_ref().unwrap().available_replicas, Some(5));
    let live = h
        .pods()
        .await
        .into_iter()
        .filter(|p| p.metadata.deletion_timestamp.is_none())
        .count();
    assert_eq!(live, 5);
    h.sb.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_pod_random_deletes_exactly_one_of_the_deployments_pods() {
    let h = Harness::start().await;
    let before: Vec<String> = h
        .pods()
        .await
        .into_iter()
        .filter(|p| p.metadata.deletion_timestamp.is_none())
        .map(|p| p.metadata.name.unwrap())
        .collect();
    assert_eq!(before.len(), 3);
    let (report, _) = h.run(&steps("- delete_pod: {random: true}\n")).await;
    done(&report);
    let after = h.pods().await;
    let hit: Vec<&String> = before
        .iter()
        .filter(|n| {
            after
                .iter()
                .find(|p| p.metadata.name.as_ref() == Some(n))
                .is_none_or(|p| p.metadata.deletion_timestamp.is_some())
        })
        .collect();
    assert_eq!(hit.len(), 1, "exactly one deleted: {hit:?}");
    h.sb.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_pod_by_name_with_a_grace_period_and_by_selector() {
    let h = Harness::start().await;
    let victim = h.pods().await[0].metadata.name.clone().unwrap();
    let (report, _) = h
        .run(&steps(&format!(
            "- delete_pod: {{name: {victim}, grace_period: 0s}}\n"
        )))
        .await;
    done(&report);
    assert!(
        !h.pods()
            .await
            .iter()
            .any(|p| p.metadata.name.as_deref() == Some(&victim)),
        "grace 0 removes the pod at once"
    );
    let (report, _) = h
        .run(&steps("- delete_pod: {selector: \"app=web\"}\n"))
        .await;
    done(&report);
    let live_old = h
        .pods()
        .await
        .into_iter()
        .filter(|p| p.metadata.deletion_timestamp.is_none())
        .count();
    assert!(live_old <= 3, "the selector's pods are terminating");
    h.sb.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn patch_steps_of_each_type_change_the_deployment() {
    let h = Harness::start().await;
    let (report, _) = h
        .run(&steps(
            r#"
- patch: {patch: {spec: {template: {spec: {containers: [{name: nginx, image: "nginx:1.28"}]}}}}}
- patch: {type: merge, patch: {spec: {minReadySeconds: 1}}}
- patch: {type: json, patch: [{op: replace, path: /spec/revisionHistoryLimit, value: 4}]}
- wait_rollout: {timeout: 90s}
"#,
        ))
        .await;
    done(&report);
    let d = h.deployment().await;
    assert_eq!(
        image(&d),
        "nginx:1.28",
        "strategic merge kept the container"
    );
    assert_eq!(
        d.spec.template.spec.as_ref().unwrap().containers[0]
            .ports
            .as_ref()
            .map(|p| p.len()),
        Some(1),
        "strategic merge kept the rest of the container"
    );
    assert_eq!(d.spec.min_ready_seconds, Some(1));
    assert_eq!(d.spec.revision_history_limit, Some(4));
    h.sb.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apply_of_a_manifest_changes_the_deployment_and_the_service() {
    let h = Harness::start().await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("manifests")).unwrap();
    std::fs::write(
        dir.path().join("manifests/v2.yaml"),
        r#"
apiVersion: apps/v1
kind: Deployment
metadata: {name: web-server, labels: {app: web}}
spec:
  replicas: 3
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      terminationGracePeriodSeconds: 30
      containers:
        - name: nginx
          image: nginx:1.29
          ports: [{containerPort: 80}]
          readinessProbe: {httpGet: {path: /, port: 80}, periodSeconds: 1}
---
apiVersion: v1
kind: Service
metadata: {name: web-service, labels: {tier: front}}
spec:
  type: NodePort
  selector: {app: web}
  ports: [{port: 80, targetPort: 80, protocol: TCP}]
"#,
    )
    .unwrap();
    let (report, _) = h
        .run_with(
            &steps("- apply: {file: manifests/v2.yaml}\n- wait_rollout: {timeout: 90s}\n"),
            dir.path(),
            StallPolicy::default(),
        )
        .await;
    done(&report);
    let d = h.deployment().await;
    assert_eq!(image(&d), "nginx:1.29");
    assert_eq!(revision(&d.metadata), Some(2));
    let svc: Api<k8s_openapi::api::core::v1::Service> = Api::namespaced(h.client.clone(), NS);
    let s = svc.get("web-service").await.unwrap();
    assert_eq!(
        s.metadata.labels.unwrap().get("tier").map(String::as_str),
        Some("front")
    );

    // A manifest for another namespace is refused before anything is sent.
    std::fs::write(
        dir.path().join("other.yaml"),
        "apiVersion: v1\nkind: Service\nmetadata: {name: x, namespace: prod}\nspec: {ports: [{port: 80}]}\n",
    )
    .unwrap();
    let (report, _) = h
        .run_with(
            &steps("- apply: {file: other.yaml}\n"),
            dir.path(),
            StallPolicy::default(),
        )
        .await;
    match &report.steps[0].outcome {
        StepOutcome::Failed(why) => assert!(why.contains("\"prod\""), "{why}"),
        other => panic!("expected a failure, got {other:?}"),
    }
    h.sb.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pause_holds_a_rollout_and_resume_lets_it_finish() {
    let h = Harness::start().await;
    let (report, _) = h
        .run(&steps(
            "- pause: {}\n- set_image: {image: \"nginx:1.28\"}\n- sleep: 2s\n",
        ))
        .await;
    done(&report);
    let d = h.deployment().await;
    assert_eq!(d.spec.paused, Some(true));
    assert_eq!(
        h.replica_sets().await.len(),
        1,
        "a paused Deployment makes no new ReplicaSet"
    );
    assert!(
        h.pods()
            .await
            .iter()
            .all(|p| p.spec.as_ref().unwrap().containers[0].image.as_deref() == Some("nginx:1.27")),
        "no pod of the new version while paused"
    );
    let (report, _) = h
        .run(&steps("- resume: {}\n- wait_rollout: {timeout: 90s}\n"))
        .await;
    done(&report);
    let d = h.deployment().await;
    assert_ne!(d.spec.paused, Some(true));
    assert_eq!(revision(&d.metadata), Some(2));
    h.sb.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_rollout_with_on_stall_undo_ends_on_the_old_version() {
    let h = Harness::start().await;
    let policy = StallPolicy {
        on_stall: OnStall::Undo,
        ..StallPolicy::default()
    };
    let (report, events) = h
        .run_with(
            &steps(
                "- set_image: {image: \"nginx:does-not-exist\"}\n- wait_rollout: {timeout: 120s}\n- sleep: 1s\n",
            ),
            Path::new("."),
            policy,
        )
        .await;
    assert!(!report.completed);
    assert_eq!(report.steps.len(), 2, "the sequence stops at the stall");
    let stall = report.stall.as_ref().expect("a stall");
    assert!(stall.undone, "{report:#?}");
    assert!(
        stall.reason.contains("ImagePull") || stall.reason.contains("ErrImagePull"),
        "{}",
        stall.reason
    );
    assert!(matches!(report.steps[1].outcome, StepOutcome::Stalled(_)));

    let d = h.deployment().await;
    assert_eq!(image(&d), "nginx:1.27", "back on the old version");
    assert!(
        h.pods()
            .await
            .iter()
            .filter(|p| p.metadata.deletion_timestamp.is_none())
            .all(|p| p.spec.as_ref().unwrap().containers[0].image.as_deref() == Some("nginx:1.27")),
        "every live pod on the old version"
    );
    let kinds: Vec<EventKind> = events.iter().map(|e| e.kind).collect();
    assert_eq!(
        kinds,
        [
            EventKind::StepStarted,
            EventKind::StepEnded,
            EventKind::StepStarted,
            EventKind::RolloutStalled,
            EventKind::StepFailed,
            EventKind::StepStarted,
            EventKind::StepEnded,
        ],
        "{events:#?}"
    );
    let stalled = &events[3];
    assert_eq!(stalled.object, "step/2");
    assert!(stalled.reason.contains("ImagePull"), "{stalled:?}");
    assert!(!stalled.pod.is_empty(), "the stalled pod is named");
    h.sb.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stall_without_undo_fails_and_leaves_the_cluster_alone() {
    let h = Harness::start().await;
    let policy = StallPolicy {
        no_progress: Duration::from_secs(3),
        on_stall: OnStall::Fail,
    };
    // Paused, a rollout cannot progress: the no-progress rule fires.
    let (report, _) = h
        .run_with(
            &steps("- pause: {}\n- set_image: {image: \"nginx:1.28\"}\n- wait_rollout: {timeout: 60s}\n"),
            Path::new("."),
            policy,
        )
        .await;
    let stall = report.stall.as_ref().expect("a stall");
    assert!(!stall.undone);
    assert!(stall.reason.starts_with("NoProgress"), "{}", stall.reason);
    assert!(stall.reason.contains("paused"), "{}", stall.reason);
    assert_eq!(image(&h.deployment().await), "nginx:1.28");
    h.sb.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wait_ready_reports_a_stall_instead_of_waiting_out_its_timeout() {
    let h = Harness::start().await;
    let policy = StallPolicy {
        on_stall: OnStall::Fail,
        ..StallPolicy::default()
    };
    let (report, events) = h
        .run_with(
            &steps(
                "- set_image: {image: \"nginx:does-not-exist\"}\n- wait_ready: {timeout: 150s}\n",
            ),
            Path::new("."),
            policy,
        )
        .await;
    assert!(!report.completed);
    let stall = report.stall.as_ref().expect("a stall, not a timeout");
    assert!(stall.reason.contains("ImagePull"), "{}", stall.reason);
    assert!(matches!(report.steps[1].outcome, StepOutcome::Stalled(_)));
    assert!(events.iter().any(|e| e.kind == EventKind::RolloutStalled));
    h.sb.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_stops_a_wait_at_once_and_marks_the_step_cancelled() {
    let h = Harness::start().await;
    let (ctx, mut rx) = h.ctx(Path::new("."), StallPolicy::default());
    let cancel = ctx.cancel.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(300)).await;
        cancel.cancel();
    });
    let s = steps("- sleep: 1h\n- restart: {}\n");
    let report = tokio::time::timeout(Duration::from_secs(30), run_steps(&ctx, &s))
        .await
        .expect("cancel ends the sleep");
    assert!(!report.completed);
    assert_eq!(report.steps.len(), 1, "the next step never starts");
    assert_eq!(report.steps[0].outcome, StepOutcome::Cancelled);
    drop(ctx);
    let mut kinds = Vec::new();
    while let Some(e) = rx.recv().await {
        kinds.push((e.kind, e.reason));
    }
    assert_eq!(
        kinds,
        [
            (EventKind::StepStarted, "sleep".to_string()),
            (EventKind::StepFailed, "cancelled".to_string())
        ]
    );
    assert_eq!(revision(&h.deployment().await.metadata), Some(1));
    h.sb.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_step_stops_the_sequence_with_a_message_that_says_what_to_fix() {
    let h = Harness::start().await;
    let (report, events) = h
        .run(&steps(
            "- set_image: {container: php, image: \"nginx:1.28\"}\n- restart: {}\n",
        ))
        .await;
    assert!(!report.completed);
    assert_eq!(report.steps.len(), 1);
    match &report.steps[0].outcome {
        StepOutcome::Failed(why) => {
            assert!(why.contains("no container named \"php\""), "{why}");
            assert!(why.contains("nginx"), "{why}");
        }
        other => panic!("expected a failure, got {other:?}"),
    }
    assert_eq!(events.last().unwrap().kind, EventKind::StepFailed);
    assert!(
        events
            .last()
            .unwrap()
            .detail
            .starts_with("set_image php=nginx:1.28: ")
    );
    h.sb.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn snapshots_hold_the_objects_without_managed_fields_and_the_history_with_its_change_cause() {
    let h = Harness::start().await;
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path();
    snapshot(&h.client, NS, DEPLOY, Some("web-service"), out, "before")
        .await
        .expect("snapshot before");
    let (report, _) = h
        .run(&steps(
            "- annotate: {change_cause: \"nginx 1.28 (ticket 42)\"}\n\
             - set_image: {image: \"nginx:1.28\"}\n- wait_rollout: {timeout: 90s}\n",
        ))
        .await;
    done(&report);
    snapshot(&h.client, NS, DEPLOY, Some("web-service"), out, "after")
        .await
        .expect("snapshot after");

    let read = |f: &str| std::fs::read_to_string(out.join("cluster").join(f)).unwrap();
    let before: Deployment = serde_norway::from_str(&read("deployment.before.yaml")).unwrap();
    let after: Deployment = serde_norway::from_str(&read("deployment.after.yaml")).unwrap();
    assert_eq!(image(&before), "nginx:1.27");
    assert_eq!(image(&after), "nginx:1.28");
    assert!(before.metadata.managed_fields.is_none());
    let svc: k8s_openapi::api::core::v1::Service =
        serde_norway::from_str(&read("service.after.yaml")).unwrap();
    assert_eq!(svc.metadata.name.as_deref(), Some("web-service"));
    let rss: serde_json::Value = serde_norway::from_str(&read("replicasets.after.yaml")).unwrap();
    let items = rss["items"].as_array().unwrap();
    assert_eq!(items.len(), 2);
    assert_eq!(
        items[0]["metadata"]["annotations"][REVISION_ANNOTATION],
        "1"
    );
    assert!(!read("replicasets.after.yaml").contains("managedFields"));
    let history = read("history.after.txt");
    let lines: Vec<&str> = history.lines().collect();
    assert_eq!(lines.len(), 3, "{history}");
    assert!(lines[0].starts_with("REVISION"), "{history}");
    assert!(
        lines[1].starts_with("1 ") && lines[1].contains("nginx=nginx:1.27"),
        "{history}"
    );
    assert!(
        lines[2].starts_with("2 ") && lines[2].contains("nginx=nginx:1.28"),
        "{history}"
    );
    // The `annotate` step's change cause, copied onto the new revision.
    assert!(lines[2].contains("nginx 1.28 (ticket 42)"), "{history}");
    assert!(!lines[1].contains("ticket 42"), "{history}");
    assert!(read("history.before.txt").lines().count() == 2);

    let e = snapshot(&h.client, NS, "nope", None, out, "x")
        .await
        .unwrap_err();
    assert!(
        e.to_string().contains("deployment \"nope\" not found"),
        "{e}"
    );
    h.sb.shutdown().await;
}

/// A team's own deploy command as a step: kubectl, with nothing but the
/// environment baton gives it, changes the run's Deployment in the run's
/// namespace; its output is kept in steps/N.log and on the timeline.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_exec_step_runs_kubectl_against_the_runs_cluster_and_keeps_its_output() {
    let h = Harness::start().await;
    let (report, events) = h
        .run(&steps(
            "- exec: {command: [kubectl, set, image, deployment/web-server, \"nginx=nginx:1.28\"], timeout: 60s}\n\
             - wait_rollout: {timeout: 90s}\n",
        ))
        .await;
    done(&report);
    assert_eq!(image(&h.deployment().await), "nginx:1.28");
    let log = std::fs::read_to_string(h.run_dir.path().join("steps/1.log")).unwrap();
    assert!(
        log.contains("stdout| deployment.apps/web-server image updated"),
        "{log}"
    );
    assert!(
        events
            .iter()
            .any(|e| e.kind == EventKind::StepOutput && e.detail.contains("image updated")),
        "the output is on the timeline"
    );
    h.sb.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_exec_step_that_exits_non_zero_fails_with_its_last_error_line() {
    let h = Harness::start().await;
    let (report, _) = h
        .run(&steps(
            "- exec: {command: [sh, -c, \"echo rendering; echo 'Error: chart not found' >&2; exit 4\"]}\n\
             - wait_rollout: {timeout: 10s}\n",
        ))
        .await;
    assert!(!report.completed);
    assert_eq!(
        report.steps.len(),
        1,
        "the sequence stops at the failed step"
    );
    assert_eq!(
        report.steps[0].outcome,
        StepOutcome::Failed("exited 4: Error: chart not found".into())
    );
    h.sb.shutdown().await;
}

/// A rollout someone else triggers (Argo CD, Flux, another job) is
/// awaited, then followed to completion.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn await_rollout_follows_a_change_made_by_someone_else() {
    let h = Harness::start().await;
    let api = h.deployments();
    let other = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(800)).await;
        let patch = serde_json::json!({"spec": {"template": {"spec": {"containers": [{"name": "nginx", "image": "nginx:1.29"}]}}}});
        api.patch(
            DEPLOY,
            &kube::api::PatchParams::default(),
            &kube::api::Patch::Strategic(&patch),
        )
        .await
        .expect("someone else's rollout");
    });
    let (report, _) = h.run(&steps("- await_rollout: {timeout: 90s}\n")).await;
    other.await.unwrap();
    done(&report);
    let d = h.deployment().await;
    assert_eq!(image(&d), "nginx:1.29");
    let status = d.status.unwrap();
    assert_eq!(
        status.updated_replicas, status.replicas,
        "the step ended when the rollout had"
    );
    h.sb.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn await_rollout_without_a_change_fails_at_its_timeout() {
    let h = Harness::start().await;
    let (report, _) = h.run(&steps("- await_rollout: {timeout: 1s}\n")).await;
    assert!(!report.completed);
    match &report.steps[0].outcome {
        StepOutcome::Failed(why) => assert!(why.contains("nobody changed"), "{why}"),
        other => panic!("{other:?}"),
    }
    h.sb.shutdown().await;
}

/// `drain` as `kubectl drain` does it, against Nodes and a
/// PodDisruptionBudget: with no disruption allowed every eviction is
/// refused (429), the refusal is on the timeline and the step fails at
/// its timeout naming the Pod and the budget's reason; once the budget
/// allows one, the Node's Pod is evicted, the Node stays cordoned and
/// the Deployment's replacement runs elsewhere; `uncordon` reopens it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drain_honours_a_disruption_budget_and_shows_each_refusal_then_evicts() {
    use k8s_openapi::api::core::v1::Node;
    use k8s_openapi::api::policy::v1::PodDisruptionBudget;
    let h = Harness::start_on(3).await;
    let node = "sandbox-node-1";
    let on_node = |pods: &[Pod]| -> Vec<String> {
        pods.iter()
            .filter(|p| p.spec.as_ref().and_then(|s| s.node_name.as_deref()) == Some(node))
            .filter(|p| p.metadata.deletion_timestamp.is_none())
            .filter_map(|p| p.metadata.name.clone())
            .collect()
    };
    let before = on_node(&h.pods().await);
    assert_eq!(before.len(), 1, "one Pod per Node: {before:?}");
    let pdbs: Api<PodDisruptionBudget> = Api::namespaced(h.client.clone(), NS);
    let budget: PodDisruptionBudget = serde_json::from_value(serde_json::json!({
        "apiVersion": "policy/v1", "kind": "PodDisruptionBudget",
        "metadata": {"name": "web-pdb"},
        "spec": {"minAvailable": 3, "selector": {"matchLabels": {"app": "web"}}}
    }))
    .unwrap();
    pdbs.create(&Default::default(), &budget)
        .await
        .expect("create the budget");
    // The budget's controller has seen it once it says how many it allows.
    for _ in 0..100 {
        let b = pdbs.get("web-pdb").await.unwrap();
        if b.status
            .is_some_and(|s| s.observed_generation == b.metadata.generation)
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let (report, events) = h
        .run(&steps(&format!("- drain: {{node: {node}, timeout: 8s}}\n")))
        .await;
    assert!(!report.completed, "{report:#?}");
    let failed = format!("{:?}", report.steps[0].outcome);
    assert!(
        failed.contains(&before[0]) && failed.contains("disruption budget"),
        "the failure names the Pod and the budget: {failed}"
    );
    let said = lines_said(&events);
    assert!(
        said.contains(&format!("cordoned node {node}").as_str()),
        "{said:?}"
    );
    let refusals = said
        .iter()
        .filter(|l| l.starts_with("eviction of "))
        .count();
    assert_eq!(
        refusals, 1,
        "the first refusal is shown, not every retry: {said:?}"
    );
    // On the timeline, every refusal (the first, and each retry the 8 s
    // allowed) is an event of the Pod, with the API's message.
    let refused: Vec<&LifecycleEvent> = events
        .iter()
        .filter(|e| e.kind == EventKind::EvictionRefused)
        .collect();
    assert!(!refused.is_empty(), "no eviction_refused event");
    assert!(
        refused.iter().all(|e| e.pod == before[0]
            && e.reason == "TooManyRequests"
            && e.detail.contains("disruption budget")),
        "{refused:#?}"
    );
    assert_eq!(on_node(&h.pods().await), before, "nothing was evicted");

    let mut relaxed = pdbs.get("web-pdb").await.unwrap();
    relaxed.spec.as_mut().unwrap().min_available =
        Some(k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::Int(2));
    pdbs.replace("web-pdb", &Default::default(), &relaxed)
        .await
        .unwrap();
    let (report, events) = h
        .run(&steps(&format!(
            "- drain: {{node: {node}, timeout: 60s}}\n"
        )))
        .await;
    done(&report);
    let said = lines_said(&events);
    assert!(
        said.contains(&format!("evicted {NS}/{}", before[0]).as_str()),
        "{said:?}"
    );
    let evicted: Vec<&LifecycleEvent> = events
        .iter()
        .filter(|e| e.kind == EventKind::PodEvicted)
        .collect();
    assert_eq!(evicted.len(), 1, "{evicted:#?}");
    assert_eq!(
        (evicted[0].pod.as_str(), evicted[0].reason.as_str()),
        (before[0].as_str(), "EvictionByEvictionAPI")
    );
    assert!(
        said.contains(&format!("drained node {node}").as_str()),
        "{said:?}"
    );
    assert!(on_node(&h.pods().await).is_empty(), "the Node is empty");
    let nodes: Api<Node> = Api::all(h.client.clone());
    let cordoned = |n: &Node| n.spec.as_ref().and_then(|s| s.unschedulable) == Some(true);
    assert!(cordoned(&nodes.get(node).await.unwrap()));
    // The ReplicaSet's replacement runs on another Node.
    let (report, _) = h.run(&steps("- wait_ready: {timeout: 60s}\n")).await;
    done(&report);

    let (report, events) = h
        .run(&steps(&format!("- uncordon: {{node: {node}}}\n")))
        .await;
    done(&report);
    assert!(!cordoned(&nodes.get(node).await.unwrap()));
    assert!(
        events
            .iter()
            .any(|e| e.detail == format!("uncordoned node {node}")),
        "{events:?}"
    );
    h.sb.shutdown().await;
}
