//! Through the Service proxy (propagation delay 500 ms), during a rolling
//! update of Pods that close their listener at SIGTERM: with no preStop,
//! requests on new connections fail (the proxy still routes to Pods that
//! stopped listening); with a preStop sleep longer than the delay, none do.
//! Counts come from the ground-truth log. Driven like baton drives a real
//! cluster: kube-rs against the sandbox's API server, load on the NodePort.

mod rollout_common;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use baton_sandbox::config::SandboxConfig;
use baton_sandbox::sandbox::Sandbox;
use baton_sandbox::truth::Outcome;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Service;
use rollout_common::*;

const DELAY: Duration = Duration::from_millis(500);

struct LoadResult {
    ok: u64,
    failed: u64,
}

/// `workers` loops of requests, each on a new connection, until `stop`
/// (each loop bounded to 50 000 requests).
fn start_load(
    addr: SocketAddr,
    workers: usize,
    stop: Arc<AtomicBool>,
) -> tokio::task::JoinHandle<LoadResult> {
    tokio::spawn(async move {
        let ok = Arc::new(AtomicU64::new(0));
        let failed = Arc::new(AtomicU64::new(0));
        let mut hs = Vec::new();
        for _ in 0..workers {
            let (ok, failed, stop) = (ok.clone(), failed.clone(), stop.clone());
            hs.push(tokio::spawn(async move {
                for _ in 0..50_000 {
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    match get(addr).await {
                        Ok(_) => ok.fetch_add(1, Ordering::Relaxed),
                        Err(_) => failed.fetch_add(1, Ordering::Relaxed),
                    };
                }
            }));
        }
        for h in hs {
            let _ = h.await;
        }
        LoadResult {
            ok: ok.load(Ordering::Relaxed),
            failed: failed.load(Ordering::Relaxed),
        }
    })
}

/// Runs a v1→v2 rollout under load through a whole sandbox (API server,
/// kube-rs client, NodePort); returns (client result, ground-truth records
/// during the load, of which not proxied).
async fn rollout_under_load(pre_stop: Option<u32>) -> (LoadResult, usize, usize) {
    let mut cfg = SandboxConfig::default();
    cfg.cluster.propagation_delay = DELAY;
    let sb = Sandbox::start(cfg).await.expect("sandbox starts");
    let kc = kube::config::Kubeconfig::read_from(sb.kubeconfig_path()).expect("kubeconfig");
    let kcfg = kube::Config::from_custom_kubeconfig(kc, &Default::default())
        .await
        .expect("client config");
    let client = kube::Client::try_from(kcfg).expect("client");
    let deploys: kube::Api<Deployment> = kube::Api::namespaced(client.clone(), NS);
    let services: kube::Api<Service> = kube::Api::namespaced(client, NS);
    let mut svc = service("web-service", 0);
    // The API server allocates a free NodePort.
    svc.spec.as_mut().unwrap().ports.as_mut().unwrap()[0].node_port = None;
    services
        .create(&Default::default(), &svc)
        .await
        .expect("service");
    let d = deployment(
        "web",
        Spec {
            pre_stop_sleep: pre_stop,
            annotations: [(
                "sandbox.baton.dev/on-sigterm".to_string(),
                "close".to_string(),
            )]
            .into(),
            ..Spec::default()
        },
    );
    deploys
        .create(&Default::default(), &d)
        .await
        .expect("deployment");
    let store = sb.store();
    wait_rollout(&store, "web").await;
    let addr = sb.node_port("web-service").expect("a NodePort");
    // Until the proxy's lagging copy has the endpoints.
    until_answering(addr).await;
    let gt = sb.ground_truth();
    let first_id = gt.snapshot().len();

    let stop = Arc::new(AtomicBool::new(false));
    let load = start_load(addr, 4, stop.clone());
    tokio::time::sleep(Duration::from_millis(300)).await;
    // kubectl set image
    let patch = serde_json::json!({"spec": {"template": {"spec": {"containers": [{"name": "nginx", "image": "nginx:1.28"}]}}}});
    deploys
        .patch(
            "web",
            &kube::api::PatchParams::default(),
            &kube::api::Patch::Strategic(patch),
        )
        .await
        .expect("set image");
    tokio::time::sleep(Duration::from_millis(100)).await;
    wait_rollout(&store, "web").await;
    wait_for("old pods gone", Duration::from_secs(60), || {
        pods(&store).len() == 3
    })
    .await;
    // Past the proxy's lag for the last change.
    tokio::time::sleep(DELAY + Duration::from_millis(500)).await;
    stop.store(true, Ordering::SeqCst);
    let res = tokio::time::timeout(Duration::from_secs(60), load)
        .await
        .expect("load stops")
        .expect("load task");
    let during: Vec<_> = gt.snapshot().into_iter().skip(first_id).collect();
    let bad = during
        .iter()
        .filter(|r| !matches!(r.outcome, Outcome::Proxied | Outcome::Open))
        .count();
    // Every record names its client address and, when routed, the pod.
    assert!(during.iter().all(|r| r.client_addr.ip().is_loopback()));
    assert!(
        during
            .iter()
            .filter(|r| r.outcome == Outcome::Proxied)
            .all(|r| r.pod.is_some())
    );
    let total = during.len();
    sb.shutdown().await;
    (res, total, bad)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_prestop_requests_fail_while_the_proxy_still_routes_to_closed_pods() {
    let (res, total, bad) = rollout_under_load(None).await;
    eprintln!(
        "client ok={} failed={}; ground truth total={total} failed={bad}",
        res.ok, res.failed
    );
    assert!(res.ok > 50, "the load ran ({} ok)", res.ok);
    assert!(
        bad > 0,
        "some connections were refused upstream during the rollout"
    );
    assert!(res.failed > 0, "clients saw those failures");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prestop_sleep_longer_than_propagation_delay_drops_nothing() {
    let (res, total, bad) = rollout_under_load(Some(2)).await;
    eprintln!(
        "client ok={} failed={}; ground truth total={total} failed={bad}",
        res.ok, res.failed
    );
    assert!(res.ok > 50, "the load ran ({} ok)", res.ok);
    assert!(
        total as u64 >= res.ok,
        "every request went through the proxy"
    );
    assert_eq!(bad, 0, "no connection failed in the ground truth");
    assert_eq!(res.failed, 0, "no request failed");
}
