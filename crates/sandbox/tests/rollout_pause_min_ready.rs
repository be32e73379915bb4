//! minReadySeconds holds Pods back from "available" after they are ready;
//! a paused Deployment makes no rollout progress until resumed.

mod rollout_common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use rollout_common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn min_ready_seconds_makes_ready_pods_wait_before_they_count_as_available() {
    let c = TestCluster::start(Duration::from_millis(100)).await;
    let store = c.store.clone();
    let mut rx = store.subscribe();
    let seen = Arc::new(Mutex::new((false, 0usize)));
    let watcher = tokio::spawn({
        let seen = seen.clone();
        async move {
            while let Ok(ch) = rx.recv().await {
                if ch.kind != "Deployment" {
                    continue;
                }
                let d: Deployment = serde_json::from_value((*ch.object).clone()).unwrap();
                let s = d.status.unwrap_or_default();
                let mut g = seen.lock().unwrap();
                g.1 += 1;
                if s.ready_replicas == Some(3) && s.available_replicas.unwrap_or(0) < 3 {
                    g.0 = true;
                }
            }
        }
    });
    let mut d = deployment("web", Spec::default());
    d.spec.min_ready_seconds = Some(2);
    store.create(d).unwrap();
    wait_rollout(&store, "web").await;
    let d: Deployment = store.get(NS, "web").unwrap();
    assert_eq!(d.status.as_ref().unwrap().available_replicas, Some(3));
    let rs: Vec<ReplicaSet> = store.list(Some(NS)).0;
    assert_eq!(
        rs[0].spec.min_ready_seconds,
        Some(2),
        "copied to the ReplicaSet"
    );
    c.shutdown().await;
    watcher.abort();
    let g = seen.lock().unwrap();
    assert!(g.1 > 2, "the watcher saw the Deployment");
    assert!(g.0, "3 ready but fewer available was observed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paused_deployment_creates_no_new_replica_set_until_resumed() {
    let c = TestCluster::start(Duration::from_millis(100)).await;
    let store = c.store.clone();
    store.create(deployment("web", Spec::default())).unwrap();
    wait_rollout(&store, "web").await;
    store
        .modify::<Deployment>(NS, "web", |d| d.spec.paused = Some(true))
        .unwrap();
    set_image(&store, "web", "nginx:1.28");
    wait_for(
        "DeploymentPaused condition",
        Duration::from_secs(10),
        || {
            store.get::<Deployment>(NS, "web").is_some_and(|d| {
                d.status
                    .iter()
                    .flat_map(|s| s.conditions.iter().flatten())
                    .any(|c| {
                        c.type_.as_deref() == Some("Progressing")
                            && c.reason.as_deref() == Some("DeploymentPaused")
                    })
            })
        },
    )
    .await;
    // Several controller passes later, still one ReplicaSet.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        store.list::<ReplicaSet>(Some(NS)).0.len(),
        1,
        "no rollout while paused"
    );
    store
        .modify::<Deployment>(NS, "web", |d| d.spec.paused = Some(false))
        .unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    wait_rollout(&store, "web").await;
    let d: Deployment = store.get(NS, "web").unwrap();
    assert_eq!(revision(&d.metadata).as_deref(), Some("2"));
    assert_eq!(store.list::<ReplicaSet>(Some(NS)).0.len(), 2);
    c.shutdown().await;
}
