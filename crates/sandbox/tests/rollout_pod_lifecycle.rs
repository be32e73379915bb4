//! Pod lifecycle in the simulated kubelet: SIGTERM close vs drain for an
//! in-flight request, SIGKILL at the end of the grace period, crash loops
//! with restart counts, readiness probes.

mod rollout_common;

use std::time::Duration;

use k8s_openapi::api::core::v1::{Container, ContainerPort, HTTPGetAction, Pod, PodSpec, Probe};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use rollout_common::*;

fn bare_pod(name: &str, annotations: &[(&str, &str)], grace: i64) -> Pod {
    Pod {
        metadata: ObjectMeta {
            name: Some(name.into()),
            namespace: Some(NS.into()),
            annotations: Some(
                annotations
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
            ),
            ..Default::default()
        },
        spec: Some(PodSpec {
            termination_grace_period_seconds: Some(grace),
            containers: vec![Container {
                name: "app".into(),
                image: Some("nginx:9.9".into()),
                ports: Some(vec![ContainerPort {
                    container_port: 80,
                    ..Default::default()
                }]),
                ..Default::default()
            }],
            ..Default::default()
        }),
        status: None,
    }
}

fn container_state(p: &Pod) -> Option<k8s_openapi::api::core::v1::ContainerStatus> {
    p.status
        .as_ref()?
        .container_statuses
        .as_ref()?
        .first()
        .cloned()
}

async fn ready_pod(store: &baton_sandbox::store::Store, name: &str) -> Pod {
    wait_for("pod ready", Duration::from_secs(30), || {
        store.get::<Pod>(NS, name).is_some_and(|p| is_ready(&p))
    })
    .await;
    store.get(NS, name).unwrap()
}

/// Deletes `name` the way the API does and records each container state
/// the pod reports until it is gone.
async fn delete_and_watch(store: &baton_sandbox::store::Store, name: &str) -> Vec<(i32, String)> {
    let mut rx = store.subscribe();
    baton_sandbox::controllers::delete_pod_gracefully(store, NS, name, None).expect("delete");
    let mut terminated = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let ch = tokio::time::timeout_at(deadline, rx.recv())
            .await
            .expect("pod goes away")
            .expect("change");
        if ch.kind != "Pod" || ch.name != name {
            continue;
        }
        if ch.kind_change == baton_sandbox::store::ChangeType::Deleted {
            return terminated;
        }
        let p: Pod = serde_json::from_value((*ch.object).clone()).unwrap();
        if let Some(t) = container_state(&p)
            .and_then(|c| c.state)
            .and_then(|s| s.terminated)
        {
            terminated.push((t.exit_code, t.reason.unwrap_or_default()));
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_close_resets_an_in_flight_request() {
    let c = TestCluster::start(Duration::from_millis(100)).await;
    let store = c.store.clone();
    store
        .create(bare_pod(
            "slow",
            &[("sandbox.baton.dev/response-delay", "3s")],
            30,
        ))
        .unwrap();
    let p = ready_pod(&store, "slow").await;
    let inflight = tokio::spawn(get(pod_addr(&p)));
    tokio::time::sleep(Duration::from_millis(300)).await;
    let term = delete_and_watch(&store, "slow").await;
    assert_eq!(term.last(), Some(&(0, "Completed".to_string())));
    let err = inflight
        .await
        .unwrap()
        .expect_err("the in-flight request was aborted");
    assert_ne!(err.kind(), std::io::ErrorKind::TimedOut, "{err}");
    assert_eq!(
        c.moments("slow"),
        ["started", "listening", "deleting", "closed"]
    );
    c.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_drain_finishes_an_in_flight_request_and_refuses_new_ones() {
    let c = TestCluster::start(Duration::from_millis(100)).await;
    let store = c.store.clone();
    store
        .create(bare_pod(
            "drainer",
            &[
                ("sandbox.baton.dev/response-delay", "1s"),
                ("sandbox.baton.dev/on-sigterm", "drain"),
            ],
            30,
        ))
        .unwrap();
    let p = ready_pod(&store, "drainer").await;
    let addr = pod_addr(&p);
    let inflight = tokio::spawn(get(addr));
    tokio::time::sleep(Duration::from_millis(300)).await;
    let watcher = tokio::spawn({
        let store = store.clone();
        async move { delete_and_watch(&store, "drainer").await }
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    let refused = tokio::net::TcpStream::connect(addr).await;
    assert!(refused.is_err(), "the listener is closed while draining");
    let body = inflight
        .await
        .unwrap()
        .expect("the in-flight request completes");
    assert!(body.contains("Hello from drainer version 9.9"));
    let term = watcher.await.unwrap();
    assert_eq!(term.last(), Some(&(0, "Completed".to_string())));
    assert_eq!(
        c.moments("drainer"),
        ["started", "listening", "deleting", "draining", "exited"]
    );
    c.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grace_period_ends_a_slow_drain_with_sigkill() {
    let c = TestCluster::start(Duration::from_millis(100)).await;
    let store = c.store.clone();
    store
        .create(bare_pod(
            "stuck",
            &[
                ("sandbox.baton.dev/response-delay", "20s"),
                ("sandbox.baton.dev/on-sigterm", "drain"),
            ],
            1,
        ))
        .unwrap();
    let p = ready_pod(&store, "stuck").await;
    let inflight = tokio::spawn(get(pod_addr(&p)));
    tokio::time::sleep(Duration::from_millis(300)).await;
    let term = delete_and_watch(&store, "stuck").await;
    assert_eq!(term.last(), Some(&(137, "Error".to_string())));
    // Reset by the kill, not given up on by the client (it waits 10 s).
    let err = inflight
        .await
        .unwrap()
        .expect_err("SIGKILL aborted the request");
    assert_ne!(err.kind(), std::io::ErrorKind::TimedOut, "{err}");
    assert_eq!(
        c.moments("stuck"),
        ["started", "listening", "deleting", "draining", "killed"]
    );
    c.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_after_restarts_the_container_into_crash_loop_back_off() {
    let c = TestCluster::start(Duration::from_millis(100)).await;
    let store = c.store.clone();
    store
        .create(bare_pod(
            "crasher",
            &[("sandbox.baton.dev/crash-after", "200ms")],
            30,
        ))
        .unwrap();
    let mut saw_backoff = false;
    wait_for("two restarts", Duration::from_secs(30), || {
        let Some(p) = store.get::<Pod>(NS, "crasher") else {
            return false;
        };
        let Some(cs) = container_state(&p) else {
            return false;
        };
        if cs
            .state
            .as_ref()
            .and_then(|s| s.waiting.as_ref())
            .and_then(|w| w.reason.as_deref())
            == Some("CrashLoopBackOff")
        {
            saw_backoff = true;
            assert_eq!(
                cs.last_state
                    .as_ref()
                    .and_then(|s| s.terminated.as_ref())
                    .map(|t| t.exit_code),
                Some(1)
            );
        }
        cs.restart_count >= 2
    })
    .await;
    assert!(saw_backoff, "the container waited in CrashLoopBackOff");
    let moments = c.moments("crasher");
    assert_eq!(
        moments[..6],
        [
            "started",
            "listening",
            "crashed",
            "started",
            "listening",
            "crashed"
        ]
    );
    let events: Vec<k8s_openapi::api::core::v1::Event> = store.list(Some(NS)).0;
    assert!(
        events.iter().any(
            |e| e.reason.as_deref() == Some("BackOff") && e.type_.as_deref() == Some("Warning")
        )
    );
    c.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readiness_probe_waits_for_the_startup_delay_and_reports_unhealthy() {
    let c = TestCluster::start(Duration::from_millis(100)).await;
    let store = c.store.clone();
    let mut pod = bare_pod("late", &[("sandbox.baton.dev/startup-delay", "1500ms")], 30);
    pod.spec.as_mut().unwrap().containers[0].readiness_probe = Some(Probe {
        http_get: Some(HTTPGetAction {
            path: Some("/healthz".into()),
            port: IntOrString::Int(80),
            ..Default::default()
        }),
        period_seconds: Some(1),
        ..Default::default()
    });
    store.create(pod).unwrap();
    // Not ready while it does not listen; Unhealthy events say why.
    wait_for("an Unhealthy event", Duration::from_secs(30), || {
        store
            .list::<k8s_openapi::api::core::v1::Event>(Some(NS))
            .0
            .iter()
            .any(|e| {
                e.reason.as_deref() == Some("Unhealthy")
                    && e.message
                        .as_deref()
                        .is_some_and(|m| m.contains("connection refused"))
            })
    })
    .await;
    assert!(!is_ready(&store.get::<Pod>(NS, "late").unwrap()));
    let p = ready_pod(&store, "late").await;
    assert!(
        get(pod_addr(&p))
            .await
            .unwrap()
            .contains("x-pod-name: late")
    );
    c.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn draining_pod_that_stopped_listening_turns_not_ready_before_it_exits() {
    let c = TestCluster::start(Duration::from_millis(100)).await;
    let store = c.store.clone();
    let mut pod = bare_pod(
        "draining",
        &[
            ("sandbox.baton.dev/response-delay", "3s"),
            ("sandbox.baton.dev/on-sigterm", "drain"),
        ],
        30,
    );
    pod.spec.as_mut().unwrap().containers[0].readiness_probe = Some(Probe {
        http_get: Some(HTTPGetAction {
            path: Some("/".into()),
            port: IntOrString::Int(80),
            ..Default::default()
        }),
        period_seconds: Some(1),
        // Probes wait for the response delay too.
        timeout_seconds: Some(10),
        failure_threshold: Some(1),
        ..Default::default()
    });
    store.create(pod).unwrap();
    let p = ready_pod(&store, "draining").await;
    let inflight = tokio::spawn(get(pod_addr(&p)));
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut rx = store.subscribe();
    baton_sandbox::controllers::delete_pod_gracefully(&store, NS, "draining", None).unwrap();
    let mut unready_while_running = false;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let ch = tokio::time::timeout_at(deadline, rx.recv())
            .await
            .expect("pod goes away")
            .expect("change");
        if ch.kind != "Pod" || ch.name != "draining" {
            continue;
        }
        if ch.kind_change == baton_sandbox::store::ChangeType::Deleted {
            break;
        }
        let p: Pod = serde_json::from_value((*ch.object).clone()).unwrap();
        let running = container_state(&p)
            .and_then(|c| c.state)
            .is_some_and(|s| s.running.is_some());
        unready_while_running |= running && !is_ready(&p);
    }
    assert!(
        unready_while_running,
        "Ready turned False before the container exited"
    );
    assert!(
        inflight.await.unwrap().is_ok(),
        "the drained request completed"
    );
    c.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_status_annotation_sets_every_answer_s_status() {
    let c = TestCluster::start(Duration::from_millis(100)).await;
    let store = c.store.clone();
    store
        .create(bare_pod(
            "broken",
            &[("sandbox.baton.dev/status", "503")],
            30,
        ))
        .unwrap();
    let p = ready_pod(&store, "broken").await;
    let err = get(pod_addr(&p)).await.expect_err("not a 200");
    assert!(err.to_string().contains("HTTP/1.1 503"), "{err}");
    c.shutdown().await;
}
