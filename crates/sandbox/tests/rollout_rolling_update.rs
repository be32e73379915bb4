//! A RollingUpdate (3 replicas, maxSurge 1, maxUnavailable 0) keeps at most
//! 4 Pods and at least 3 ready at every instant, leaves the old ReplicaSet
//! at 0, records revision 2, and `undo` brings v1 back as revision 3.

mod rollout_common;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use baton_sandbox::store::ChangeType;
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::Pod;
use rollout_common::*;

#[derive(Default)]
struct Extremes {
    /// Most Pods without deletionTimestamp seen at once.
    max_active: usize,
    /// Fewest ready, non-terminating Pods seen at once (once armed).
    min_ready: Option<usize>,
    samples: usize,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rolling_update_keeps_surge_and_availability_bounds_and_undo_makes_revision_3() {
    let c = TestCluster::start(Duration::from_millis(200)).await;
    let store = c.store.clone();

    // The watcher: every Pod change, in resourceVersion order.
    let mut rx = store.subscribe();
    let armed = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let ext = Arc::new(Mutex::new(Extremes::default()));
    let watcher = tokio::spawn({
        let (armed, ext) = (armed.clone(), ext.clone());
        async move {
            let mut pods: HashMap<String, (bool, bool)> = HashMap::new();
            while let Ok(ch) = rx.recv().await {
                if ch.kind != "Pod" {
                    continue;
                }
                if ch.kind_change == ChangeType::Deleted {
                    pods.remove(&ch.name);
                } else {
                    let p: Pod = serde_json::from_value((*ch.object).clone()).expect("pod");
                    let terminating = p.metadata.deletion_timestamp.is_some();
                    pods.insert(ch.name.clone(), (terminating, is_ready(&p)));
                }
                let active = pods.values().filter(|(t, _)| !t).count();
                let ready = pods.values().filter(|(t, r)| !t && *r).count();
                let mut e = ext.lock().unwrap();
                e.samples += 1;
                e.max_active = e.max_active.max(active);
                if armed.load(std::sync::atomic::Ordering::SeqCst) {
                    e.min_ready = Some(e.min_ready.map_or(ready, |m| m.min(ready)));
                }
            }
        }
    });

    store
        .create(deployment(
            "web",
            Spec {
                annotations: [(
                    "sandbox.baton.dev/startup-delay".to_string(),
                    "200ms".to_string(),
                )]
                .into(),
                ..Spec::default()
            },
        ))
        .expect("create deployment");
    wait_rollout(&store, "web").await;
    wait_for("3 ready pods", Duration::from_secs(30), || {
        pods(&store).iter().filter(|p| is_ready(p)).count() == 3
    })
    .await;
    armed.store(true, std::sync::atomic::Ordering::SeqCst);

    set_image(&store, "web", "nginx:1.28");
    // Bounded: the rollout completes or wait_rollout's safety net fires.
    tokio::time::sleep(Duration::from_millis(100)).await;
    wait_rollout(&store, "web").await;
    let d: Deployment = store.get(NS, "web").expect("deployment");
    assert_eq!(revision(&d.metadata).as_deref(), Some("2"));
    let rss: Vec<ReplicaSet> = store.list(Some(NS)).0;
    assert_eq!(rss.len(), 2, "one old and one new ReplicaSet");
    let old = rss
        .iter()
        .find(|r| revision(&r.metadata).as_deref() == Some("1"))
        .expect("rev 1");
    assert_eq!(old.spec.replicas, Some(0), "old ReplicaSet scaled to 0");
    let new = rss
        .iter()
        .find(|r| revision(&r.metadata).as_deref() == Some("2"))
        .expect("rev 2");
    assert_eq!(new.spec.replicas, Some(3));
    assert!(
        new.metadata.name.as_deref().unwrap().starts_with("web-"),
        "ReplicaSets are named <deployment>-<hash>"
    );
    wait_for("old pods gone", Duration::from_secs(30), || {
        pods(&store)
            .iter()
            .all(|p| p.spec.as_ref().unwrap().containers[0].image.as_deref() == Some("nginx:1.28"))
    })
    .await;
    for p in pods(&store) {
        let body = get(pod_addr(&p)).await.expect("pod answers");
        assert!(body.contains("version 1.28"), "{body}");
        assert!(body.contains(&format!(
            "x-pod-name: {}",
            p.metadata.name.as_deref().unwrap()
        )));
    }

    // Undo, as kubectl does it.
    undo_to(&store, "web", "1");
    tokio::time::sleep(Duration::from_millis(100)).await;
    wait_rollout(&store, "web").await;
    let d: Deployment = store.get(NS, "web").expect("deployment");
    assert_eq!(revision(&d.metadata).as_deref(), Some("3"));
    let rss: Vec<ReplicaSet> = store.list(Some(NS)).0;
    assert_eq!(rss.len(), 2, "undo reuses the old ReplicaSet");
    let back = rss
        .iter()
        .find(|r| revision(&r.metadata).as_deref() == Some("3"))
        .expect("rev 3");
    assert_eq!(
        back.metadata.name, old.metadata.name,
        "v1's ReplicaSet is revision 3 now"
    );
    assert_eq!(back.spec.replicas, Some(3));
    wait_for("v2 pods gone", Duration::from_secs(30), || {
        pods(&store)
            .iter()
            .all(|p| p.spec.as_ref().unwrap().containers[0].image.as_deref() == Some("nginx:1.27"))
    })
    .await;
    let p = pods(&store).into_iter().next().expect("a pod");
    assert!(
        get(pod_addr(&p))
            .await
            .expect("pod answers")
            .contains("version 1.27")
    );

    c.shutdown().await;
    watcher.abort();
    let e = ext.lock().unwrap();
    assert!(
        e.samples > 20,
        "the watcher saw the rollouts ({} samples)",
        e.samples
    );
    assert!(
        e.max_active <= 4,
        "at most replicas + maxSurge pods, saw {}",
        e.max_active
    );
    assert_eq!(e.max_active, 4, "the rollout did surge");
    assert!(
        e.min_ready.is_some_and(|m| m >= 3),
        "never fewer than 3 ready, saw {:?}",
        e.min_ready
    );
}
