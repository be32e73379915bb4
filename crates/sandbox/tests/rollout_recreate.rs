//! Recreate: every old Pod has terminated before any new Pod exists.
//!
//! As in Kubernetes (`oldPodsRunning` in recreate.go), an old Pod whose
//! containers have exited (phase Succeeded or Failed) no longer counts as
//! running, even while its object waits to be removed; so the check is on
//! Pods that have not reached a terminal phase, not on Pod objects.

mod rollout_common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use baton_sandbox::store::ChangeType;
use k8s_openapi::api::apps::v1::{Deployment, DeploymentStrategy};
use k8s_openapi::api::core::v1::Pod;
use rollout_common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recreate_never_runs_old_and_new_pods_together() {
    let c = TestCluster::start(Duration::from_millis(100)).await;
    let store = c.store.clone();
    let mut d = deployment("web", Spec::default());
    d.spec.strategy = Some(DeploymentStrategy {
        type_: Some("Recreate".into()),
        rolling_update: None,
    });
    store.create(d).unwrap();
    wait_rollout(&store, "web").await;

    let mut rx = store.subscribe();
    let overlap = Arc::new(Mutex::new((false, 0usize)));
    let watcher = tokio::spawn({
        let overlap = overlap.clone();
        async move {
            let mut images: std::collections::HashMap<String, String> = Default::default();
            while let Ok(ch) = rx.recv().await {
                if ch.kind != "Pod" {
                    continue;
                }
                let p: Pod = serde_json::from_value((*ch.object).clone()).unwrap();
                let terminal = matches!(
                    p.status.as_ref().and_then(|s| s.phase.as_deref()),
                    Some("Succeeded" | "Failed")
                );
                if ch.kind_change == ChangeType::Deleted || terminal {
                    images.remove(&ch.name);
                } else {
                    let img = p.spec.unwrap().containers[0].image.clone().unwrap();
                    images.insert(ch.name.clone(), img);
                }
                let mut o = overlap.lock().unwrap();
                o.1 += 1;
                let v1 = images.values().any(|i| i == "nginx:1.27");
                let v2 = images.values().any(|i| i == "nginx:1.28");
                o.0 |= v1 && v2;
            }
        }
    });
    set_image(&store, "web", "nginx:1.28");
    tokio::time::sleep(Duration::from_millis(100)).await;
    wait_rollout(&store, "web").await;
    let d: Deployment = store.get(NS, "web").unwrap();
    assert_eq!(revision(&d.metadata).as_deref(), Some("2"));
    assert_eq!(pods(&store).len(), 3);
    c.shutdown().await;
    watcher.abort();
    let o = overlap.lock().unwrap();
    assert!(o.1 > 6, "the watcher saw the rollout ({} changes)", o.1);
    assert!(!o.0, "old and new pods were running at the same time");
}
