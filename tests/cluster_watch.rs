//! The timeline watches against the sandbox, through kube-rs as against a
//! real cluster: a rolling update seen in order, a watch that loses its
//! stream and gets 410 Gone losing no transition, a second Deployment
//! watched beside the target's (`target.also_watch`) and nothing else, and
//! a clear error for a Deployment that does not exist.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use baton::clock::RunClock;
use baton::cluster::event::{EventKind, LifecycleEvent};
use baton::cluster::rollout::{set_image, wait_rollout};
use baton::cluster::watch::{self, WatchError, WatchHandle, WatchTarget, Workload};
use baton_sandbox::{Sandbox, SandboxConfig};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Pod;
use kube::api::ListParams;
use kube::{Api, Client};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

const WAIT: Duration = Duration::from_secs(60);

async fn client_for(sb: &Sandbox) -> Client {
    let kc = kube::config::Kubeconfig::read_from(sb.kubeconfig_path()).expect("kubeconfig");
    let cfg = kube::Config::from_custom_kubeconfig(kc, &kube::config::KubeConfigOptions::default())
        .await
        .expect("client config");
    Client::try_from(cfg).expect("client")
}

fn target() -> WatchTarget {
    WatchTarget {
        namespace: "default".into(),
        deployment: "web-server".into(),
        service: "web-service".into(),
        also: Vec::new(),
        nodes: false,
    }
}

async fn start_watches(
    client: Client,
) -> (
    WatchHandle,
    mpsc::UnboundedReceiver<LifecycleEvent>,
    CancellationToken,
) {
    let (tx, rx) = mpsc::unbounded_channel();
    let cancel = CancellationToken::new();
    let h = watch::start(client, target(), RunClock::start(), tx, cancel.clone())
        .await
        .expect("watches start");
    (h, rx, cancel)
}

/// Receive events into `seen` until `done(seen)` holds (or fail after `WAIT`).
async fn collect_until(
    rx: &mut mpsc::UnboundedReceiver<LifecycleEvent>,
    seen: &mut Vec<LifecycleEvent>,
    what: &str,
    done: impl Fn(&[LifecycleEvent]) -> bool,
) {
    let deadline = tokio::time::Instant::now() + WAIT;
    while !done(seen) {
        match tokio::time::timeout_at(deadline, rx.recv()).await {
            Ok(Some(e)) => seen.push(e),
            Ok(None) => panic!("event channel closed while waiting for {what}"),
            Err(_) => panic!("waiting for {what} (safety net); events:\n{}", dump(seen)),
        }
    }
    while let Ok(e) = rx.try_recv() {
        seen.push(e);
    }
}

fn dump(events: &[LifecycleEvent]) -> String {
    events
        .iter()
        .map(|e| {
            format!(
                "{:>14} {:<22} {:<40} {:<28} {} {} late={} {}",
                e.observed_ns,
                e.kind.as_str(),
                e.object,
                e.pod,
                e.old,
                e.new,
                e.late,
                e.detail
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Index of the first event of `kind` about `pod`.
fn first(events: &[LifecycleEvent], kind: EventKind, pod: &str) -> Option<usize> {
    events.iter().position(|e| e.kind == kind && e.pod == pod)
}

fn has(events: &[LifecycleEvent], kind: EventKind, pod: &str) -> bool {
    first(events, kind, pod).is_some()
}

fn initial_pods(events: &[LifecycleEvent]) -> BTreeSet<String> {
    events
        .iter()
        .filter(|e| e.kind == EventKind::PodCreated && e.detail.starts_with("initial list"))
        .map(|e| e.pod.clone())
        .collect()
}

async fn pod_names(pods: &Api<Pod>) -> BTreeSet<String> {
    pods.list(&ListParams::default().labels("app=web"))
        .await
        .expect("list pods")
        .items
        .into_iter()
        .filter_map(|p| p.metadata.name)
        .collect()
}

/// Wait until the API holds exactly the Pods not in `old` (old ones gone).
async fn wait_old_pods_gone(pods: &Api<Pod>, old: &BTreeSet<String>) -> BTreeSet<String> {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let now = pod_names(pods).await;
        if now.is_disjoint(old) {
            return now;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "old pods still present (safety net): {now:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn seed_sandbox(cfg: SandboxConfig) -> (Sandbox, Client) {
    let sb = Sandbox::start(cfg).await.expect("sandbox starts");
    let client = client_for(&sb).await;
    let deploys: Api<Deployment> = Api::namespaced(client.clone(), "default");
    wait_rollout(&deploys, "web-server", WAIT, |_| {})
        .await
        .expect("seed rollout completes");
    (sb, client)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rolling_update_is_seen_pod_by_pod_in_order() {
    let mut cfg = SandboxConfig::seed();
    cfg.cluster.propagation_delay = Duration::from_millis(200);
    // A preStop sleep, as a careful Deployment has: a deleted Pod stays
    // listed as terminating for a while (without one, a sandbox Pod can
    // exit before the EndpointSlice controller marks it terminating).
    cfg.manifests[0]["spec"]["template"]["spec"]["containers"][0]["lifecycle"] =
        serde_json::json!({"preStop": {"exec": {"command": ["sleep", "1"]}}});
    let (sb, client) = seed_sandbox(cfg).await;
    let (handle, mut rx, _cancel) = start_watches(client.clone()).await;

    // start() returned after the initial lists: the three ready Pods are
    // already recorded, ready, with ready endpoints.
    let mut seen = Vec::new();
    while let Ok(e) = rx.try_recv() {
        seen.push(e);
    }
    let old = initial_pods(&seen);
    assert_eq!(old.len(), 3, "initial pods:\n{}", dump(&seen));
    for p in &old {
        assert!(has(&seen, EventKind::PodReady, p), "{p} ready initially");
        assert!(
            has(&seen, EventKind::EndpointReady, p),
            "{p} endpoint ready"
        );
    }
    assert!(seen.iter().all(|e| !e.late));

    let deploys: Api<Deployment> = Api::namespaced(client.clone(), "default");
    let patched = set_image(&deploys, "default", "web-server", "nginx", "nginx:1.28")
        .await
        .expect("set image");
    let generation = patched.metadata.generation.expect("generation");
    wait_rollout(&deploys, "web-server", WAIT, |_| {})
        .await
        .expect("rollout completes");
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    let new = wait_old_pods_gone(&pods, &old).await;
    assert_eq!(new.len(), 3);

    let killed = |s: &[LifecycleEvent], p: &str| {
        s.iter()
            .any(|e| e.kind == EventKind::ClusterEvent && e.reason == "Killing" && e.pod == p)
    };
    let complete = |s: &[LifecycleEvent]| {
        s.iter().any(|e| {
            e.kind == EventKind::DeploymentProgress
                && e.new.starts_with("updated=3/3 ready=3")
                && e.new.ends_with(&format!("gen={generation}/{generation}"))
        })
    };
    collect_until(&mut rx, &mut seen, "every transition", |s| {
        complete(s)
            && new
                .iter()
                .all(|p| has(s, EventKind::PodReady, p) && has(s, EventKind::EndpointReady, p))
            && old.iter().all(|p| {
                has(s, EventKind::PodGone, p)
                    && has(s, EventKind::EndpointRemoved, p)
                    && killed(s, p)
            })
    })
    .await;
    let summary = handle.stop().await;

    let report = dump(&seen);
    assert!(
        seen.windows(2)
            .all(|w| w[0].observed_ns <= w[1].observed_ns),
        "events come in observed order:\n{report}"
    );
    // Each watch keeps its own order. Between watches (a Pod turning ready
    // and its endpoint following) the sandbox's controllers react within a
    // millisecond, so which watch baton hears first is the scheduler's
    // choice; asserting that order would be a timing assertion.
    for p in &new {
        let created = first(&seen, EventKind::PodCreated, p).expect("created");
        let ready = first(&seen, EventKind::PodReady, p).expect("ready");
        let added = first(&seen, EventKind::EndpointAdded, p).expect("endpoint added");
        let ep_ready = first(&seen, EventKind::EndpointReady, p).expect("endpoint ready");
        assert!(
            created < ready && added <= ep_ready,
            "new pod {p}: created → ready, endpoint added → ready\n{report}"
        );
    }
    for p in &old {
        let deleting = first(&seen, EventKind::PodDeleting, p).expect("deleting");
        let gone = first(&seen, EventKind::PodGone, p).expect("gone");
        let leaving = [EventKind::EndpointTerminating, EventKind::EndpointNotReady]
            .iter()
            .filter_map(|k| first(&seen, *k, p))
            .min()
            .unwrap_or_else(|| panic!("{p}: endpoint terminating or not ready\n{report}"));
        let removed = first(&seen, EventKind::EndpointRemoved, p).expect("endpoint removed");
        assert!(
            deleting < gone && leaving < removed,
            "old pod {p}: deleting → gone, endpoint terminating → removed\n{report}"
        );
        let d = &seen[deleting];
        assert_eq!(d.grace_period_s, Some(30), "{report}");
        assert!(d.api_ns.is_some());
    }
    assert!(
        seen.iter()
            .any(|e| e.kind == EventKind::ReplicaSetScaled && !e.detail.starts_with("initial")),
        "replica sets scaled:\n{report}"
    );
    assert!(
        !seen
            .iter()
            .any(|e| e.kind == EventKind::WatchRestarted || e.late),
        "no restart in a quiet run:\n{report}"
    );
    assert!(summary.blind_spots.is_empty());
    sb.shutdown().await;
}

/// A TCP relay in front of the API server that the test can cut: every
/// connection through it is dropped, and new ones are refused, until
/// it is reopened. A watch behind it loses its stream and, when it comes
/// back, asks for a resourceVersion the sandbox has forgotten.
struct Relay {
    addr: SocketAddr,
    cut: Arc<AtomicBool>,
    conns: Arc<Mutex<Vec<tokio::task::AbortHandle>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Relay {
    async fn start(upstream: SocketAddr) -> Relay {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind relay");
        let addr = listener.local_addr().expect("relay addr");
        let cut = Arc::new(AtomicBool::new(false));
        let conns = Arc::new(Mutex::new(Vec::new()));
        let (cut2, conns2) = (cut.clone(), conns.clone());
        let task = tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                if cut2.load(Ordering::SeqCst) {
                    continue; // dropped: the client sees the connection closed
                }
                let conn = tokio::spawn(async move {
                    if let Ok(mut out) = TcpStream::connect(upstream).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut out).await;
                    }
                });
                conns2.lock().unwrap().push(conn.abort_handle());
            }
        });
        Relay {
            addr,
            cut,
            conns,
            task,
        }
    }

    fn cut(&self) {
        self.cut.store(true, Ordering::SeqCst);
        for c in self.conns.lock().unwrap().drain(..) {
            c.abort();
        }
    }

    fn reopen(&self) {
        self.cut.store(false, Ordering::SeqCst);
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.cut();
        self.task.abort();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_watch_cut_off_past_the_history_relists_and_loses_no_transition() {
    // Five changes of history: anything the watches miss is compacted
    // away long before they come back, so they get 410 Gone and re-list.
    let cfg = SandboxConfig::from_yaml(
        "history: 5\npropagation_delay: 200ms\nbookmark_interval: 1s\n",
        Path::new("tiny-history.yaml"),
    )
    .expect("config");
    let (sb, client) = seed_sandbox(cfg).await;
    let relay = Relay::start(sb.api_addr()).await;
    let watch_client = Client::try_from(kube::Config::new(
        format!("http://{}", relay.addr).parse().expect("url"),
    ))
    .expect("relay client");
    let (handle, mut rx, _cancel) = start_watches(watch_client).await;
    let mut seen = Vec::new();
    while let Ok(e) = rx.try_recv() {
        seen.push(e);
    }
    let old = initial_pods(&seen);
    assert_eq!(old.len(), 3, "{}", dump(&seen));

    // Blind the watches for a whole rollout.
    relay.cut();
    let deploys: Api<Deployment> = Api::namespaced(client.clone(), "default");
    set_image(&deploys, "default", "web-server", "nginx", "nginx:1.28")
        .await
        .expect("set image");
    wait_rollout(&deploys, "web-server", WAIT, |_| {})
        .await
        .expect("rollout completes");
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    let new = wait_old_pods_gone(&pods, &old).await;
    assert!(
        sb.store().oldest_rv() > 5,
        "the history moved on past what the watches saw"
    );
    relay.reopen();

    // The sandbox's own record: `new` now, `old` gone. The timeline must
    // show every one of those transitions, late.
    let restarted = |s: &[LifecycleEvent], object: &str| {
        s.iter()
            .any(|e| e.kind == EventKind::WatchRestarted && e.object == object)
    };
    collect_until(&mut rx, &mut seen, "the re-lists", |s| {
        restarted(s, "watch/pods")
            && restarted(s, "watch/endpointslices")
            && new
                .iter()
                .all(|p| has(s, EventKind::PodReady, p) && has(s, EventKind::EndpointReady, p))
            && old
                .iter()
                .all(|p| has(s, EventKind::PodGone, p) && has(s, EventKind::EndpointRemoved, p))
    })
    .await;
    let summary = handle.stop().await;
    let report = dump(&seen);

    for p in &new {
        for kind in [EventKind::PodCreated, EventKind::PodReady] {
            let e = &seen[first(&seen, kind, p).expect("seen")];
            assert!(
                e.late,
                "{kind} of {p} was synthesised from the re-list:\n{report}"
            );
        }
    }
    for p in &old {
        assert!(seen[first(&seen, EventKind::PodGone, p).unwrap()].late);
    }
    let w = seen
        .iter()
        .find(|e| e.kind == EventKind::WatchRestarted && e.object == "watch/pods")
        .expect("restart recorded");
    assert!(w.blind_ns.is_some_and(|b| b > 0), "{report}");
    assert_eq!(
        w.reason, "Expired",
        "the re-list was forced by 410 Gone:\n{report}"
    );
    assert!(!w.late);
    assert!(
        summary.blind_spots.iter().any(|b| b.resource == "pods"),
        "blind spots: {:?}",
        summary.blind_spots
    );
    drop(relay);
    sb.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_deployment_or_service_is_a_clear_error() {
    let sb = Sandbox::start(SandboxConfig::seed())
        .await
        .expect("sandbox starts");
    let client = client_for(&sb).await;
    let (tx, _rx) = mpsc::unbounded_channel();
    let start = |t: WatchTarget| {
        watch::start(
            client.clone(),
            t,
            RunClock::start(),
            tx.clone(),
            CancellationToken::new(),
        )
    };

    let err = start(WatchTarget {
        deployment: "no-such-app".into(),
        ..target()
    })
    .await
    .err()
    .expect("fails");
    assert!(
        matches!(err, WatchError::DeploymentNotFound { .. }),
        "{err}"
    );
    let msg = err.to_string();
    assert!(
        msg.contains("\"no-such-app\"") && msg.contains("\"default\""),
        "{msg}"
    );

    let err = start(WatchTarget {
        service: "no-such-svc".into(),
        ..target()
    })
    .await
    .err()
    .expect("fails");
    assert!(matches!(err, WatchError::ServiceNotFound { .. }), "{err}");
    assert!(err.to_string().contains("\"no-such-svc\""));
    sb.shutdown().await;
}

/// The seed's Deployment and Service copied as `name`, Pods labelled
/// `app={name}`, with `replicas` Pods.
fn workload(name: &str, replicas: u32) -> [serde_json::Value; 2] {
    let mut d = baton_sandbox::config::seed_deployment();
    d["metadata"]["name"] = name.into();
    d["spec"]["replicas"] = replicas.into();
    d["spec"]["selector"]["matchLabels"]["app"] = name.into();
    d["spec"]["template"]["metadata"]["labels"]["app"] = name.into();
    let mut s = baton_sandbox::config::seed_service();
    s["metadata"]["name"] = name.into();
    s["spec"]["selector"]["app"] = name.into();
    [d, s]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deployment_watched_beside_the_target_is_on_the_timeline_and_no_other() {
    let mut cfg = SandboxConfig::seed();
    cfg.manifests.extend(workload("web-v1", 2));
    cfg.manifests.extend(workload("unrelated", 1));
    let (sb, client) = seed_sandbox(cfg).await;
    let deploys: Api<Deployment> = Api::namespaced(client.clone(), "default");
    for d in ["web-v1", "unrelated"] {
        wait_rollout(&deploys, d, WAIT, |_| {})
            .await
            .expect("rollout completes");
    }
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    let names = |app: &'static str| {
        let pods = pods.clone();
        async move {
            pods.list(&ListParams::default().labels(&format!("app={app}")))
                .await
                .expect("list")
                .items
                .into_iter()
                .filter_map(|p| p.metadata.name)
                .collect::<BTreeSet<String>>()
        }
    };
    let (v1, unrelated) = (names("web-v1").await, names("unrelated").await);
    assert_eq!((v1.len(), unrelated.len()), (2, 1));

    let (tx, mut rx) = mpsc::unbounded_channel();
    let both = WatchTarget {
        also: vec![Workload {
            deployment: "web-v1".into(),
            service: "web-v1".into(),
        }],
        ..target()
    };
    let handle = watch::start(
        client.clone(),
        both,
        RunClock::start(),
        tx,
        CancellationToken::new(),
    )
    .await
    .expect("watches start");
    let mut seen = Vec::new();
    while let Ok(e) = rx.try_recv() {
        seen.push(e);
    }
    // The initial lists hold both workloads' Pods and endpoints.
    let initial = initial_pods(&seen);
    assert_eq!(initial.len(), 5, "3 + 2 Pods:\n{}", dump(&seen));
    for p in &v1 {
        assert!(initial.contains(p), "{p} listed:\n{}", dump(&seen));
        assert!(
            has(&seen, EventKind::EndpointReady, p),
            "{p} endpoint ready"
        );
    }
    assert!(
        seen.iter()
            .any(|e| e.kind == EventKind::DeploymentProgress && e.object == "deployment/web-v1"),
        "web-v1's progress:\n{}",
        dump(&seen)
    );

    // A Pod of the unwatched Deployment goes, then one of web-v1: only the
    // second is seen, to its end.
    let gone_unrelated = unrelated.iter().next().unwrap().clone();
    pods.delete(&gone_unrelated, &Default::default())
        .await
        .expect("delete");
    let gone_v1 = v1.iter().next().unwrap().clone();
    pods.delete(&gone_v1, &Default::default())
        .await
        .expect("delete");
    collect_until(&mut rx, &mut seen, "web-v1's Pod gone", |s| {
        has(s, EventKind::PodGone, &gone_v1) && has(s, EventKind::EndpointRemoved, &gone_v1)
    })
    .await;
    assert!(has(&seen, EventKind::PodDeleting, &gone_v1));
    let leaked: Vec<&LifecycleEvent> = seen
        .iter()
        .filter(|e| e.pod.starts_with("unrelated") || e.object.contains("unrelated"))
        .collect();
    assert!(
        leaked.is_empty(),
        "unwatched objects on the timeline: {leaked:?}"
    );
    handle.stop().await;

    // A workload beside the target that does not exist is named.
    let (tx, _rx) = mpsc::unbounded_channel();
    let err = watch::start(
        client.clone(),
        WatchTarget {
            also: vec![Workload {
                deployment: "web-v0".into(),
                service: "web-v1".into(),
            }],
            ..target()
        },
        RunClock::start(),
        tx,
        CancellationToken::new(),
    )
    .await
    .err()
    .expect("fails");
    assert!(
        matches!(&err, WatchError::DeploymentNotFound { deployment, .. } if deployment == "web-v0"),
        "{err}"
    );
    sb.shutdown().await;
}
