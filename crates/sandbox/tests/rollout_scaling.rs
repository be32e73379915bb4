//! Scaling a Deployment in the middle of a rollout spreads the change over
//! its active ReplicaSets in proportion to their sizes, as Kubernetes does.

mod rollout_common;

use std::time::Duration;

use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use rollout_common::*;

fn rs_by_revision(store: &baton_sandbox::store::Store, rev: &str) -> ReplicaSet {
    store
        .list::<ReplicaSet>(Some(NS))
        .0
        .into_iter()
        .find(|r| revision(&r.metadata).as_deref() == Some(rev))
        .expect("replica set")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scaling_mid_rollout_is_proportional() {
    let c = TestCluster::start(Duration::from_millis(100)).await;
    let store = c.store.clone();
    store
        .create(deployment(
            "web",
            Spec {
                replicas: 4,
                ..Spec::default()
            },
        ))
        .unwrap();
    wait_rollout(&store, "web").await;
    // v2 never becomes ready (it listens only after 10 minutes): the
    // rollout stalls at old 4 + new 1.
    store
        .modify::<Deployment>(NS, "web", |d| {
            let t = &mut d.spec.template;
            t.metadata
                .get_or_insert_with(Default::default)
                .annotations
                .get_or_insert_with(Default::default)
                .insert("sandbox.baton.dev/startup-delay".into(), "600s".into());
            t.spec.as_mut().unwrap().containers[0].image = Some("nginx:1.28".into());
        })
        .unwrap();
    wait_for("new ReplicaSet at 1", Duration::from_secs(30), || {
        store
            .list::<ReplicaSet>(Some(NS))
            .0
            .iter()
            .any(|r| revision(&r.metadata).as_deref() == Some("2") && r.spec.replicas == Some(1))
    })
    .await;
    assert_eq!(rs_by_revision(&store, "1").spec.replicas, Some(4));

    // kubectl scale --replicas=8: allowed 8 + 1 surge = 9, from 5 → +4,
    // old 4·9/5 = 7.2 → 7, new 1·9/5 = 1.8 → 2.
    store
        .modify::<Deployment>(NS, "web", |d| d.spec.replicas = Some(8))
        .unwrap();
    wait_for("proportional sizes", Duration::from_secs(30), || {
        rs_by_revision(&store, "1").spec.replicas == Some(7)
            && rs_by_revision(&store, "2").spec.replicas == Some(2)
    })
    .await;
    // And it stays there: no oscillation on later passes.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(rs_by_revision(&store, "1").spec.replicas, Some(7));
    assert_eq!(rs_by_revision(&store, "2").spec.replicas, Some(2));
    c.shutdown().await;
}
