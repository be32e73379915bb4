//! An image that does not exist stalls the rollout: the new Pod waits in
//! ErrImagePull/ImagePullBackOff, the old Pods keep serving, the Deployment
//! reports `Progressing=False, ProgressDeadlineExceeded`, and undo recovers.

mod rollout_common;

use std::time::Duration;

use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::Event;
use rollout_common::*;

fn progressing_reason(d: &Deployment) -> Option<String> {
    d.status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_.as_deref() == Some("Progressing"))?
        .reason
        .clone()
}

fn waiting_reason(p: &k8s_openapi::api::core::v1::Pod) -> Option<String> {
    p.status
        .as_ref()?
        .container_statuses
        .as_ref()?
        .first()?
        .state
        .as_ref()?
        .waiting
        .as_ref()?
        .reason
        .clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_image_stalls_until_progress_deadline_and_undo_recovers() {
    let c = TestCluster::start(Duration::from_millis(200)).await;
    let store = c.store.clone();
    store
        .create(deployment(
            "web",
            Spec {
                progress_deadline: Some(2),
                ..Spec::default()
            },
        ))
        .expect("deployment");
    wait_rollout(&store, "web").await;
    let v1_pods: Vec<String> = pods(&store)
        .iter()
        .map(|p| p.metadata.name.clone().unwrap())
        .collect();
    assert_eq!(v1_pods.len(), 3);

    set_image(&store, "web", "nginx:does-not-exist");
    wait_for("ProgressDeadlineExceeded", Duration::from_secs(60), || {
        store
            .get::<Deployment>(NS, "web")
            .is_some_and(|d| progressing_reason(&d).as_deref() == Some("ProgressDeadlineExceeded"))
    })
    .await;
    let d: Deployment = store.get(NS, "web").unwrap();
    let cond = d.status.as_ref().unwrap().conditions.as_ref().unwrap();
    let prog = cond
        .iter()
        .find(|c| c.type_.as_deref() == Some("Progressing"))
        .unwrap();
    assert_eq!(prog.status.as_deref(), Some("False"));
    assert!(!rollout_complete(&d));

    // The stalled Pod and the old ones.
    let all = pods(&store);
    let new: Vec<_> = all
        .iter()
        .filter(|p| {
            p.spec.as_ref().unwrap().containers[0].image.as_deref() == Some("nginx:does-not-exist")
        })
        .collect();
    assert_eq!(new.len(), 1, "maxSurge 1: one new Pod, stuck");
    assert!(matches!(
        waiting_reason(new[0]).as_deref(),
        Some("ErrImagePull") | Some("ImagePullBackOff")
    ));
    assert!(!is_ready(new[0]));
    let old: Vec<_> = all
        .iter()
        .filter(|p| v1_pods.contains(p.metadata.name.as_ref().unwrap()))
        .collect();
    assert_eq!(old.len(), 3, "maxUnavailable 0: no old Pod removed");
    for p in &old {
        assert!(p.metadata.deletion_timestamp.is_none());
        let body = get(pod_addr(p)).await.expect("old pod serves");
        assert!(body.contains("version 1.27"));
    }
    let events: Vec<Event> = store.list(Some(NS)).0;
    let has = |reason: &str, msg: &str| {
        events.iter().any(|e| {
            e.reason.as_deref() == Some(reason)
                && e.message.as_deref().is_some_and(|m| m.contains(msg))
        })
    };
    assert!(has("Failed", "ErrImagePull"), "an ErrImagePull event");
    assert!(
        has("ScalingReplicaSet", "Scaled up replica set"),
        "a ScalingReplicaSet event"
    );

    undo_to(&store, "web", "1");
    tokio::time::sleep(Duration::from_millis(100)).await;
    wait_rollout(&store, "web").await;
    wait_for("NewReplicaSetAvailable", Duration::from_secs(30), || {
        store
            .get::<Deployment>(NS, "web")
            .is_some_and(|d| progressing_reason(&d).as_deref() == Some("NewReplicaSetAvailable"))
    })
    .await;
    let d: Deployment = store.get(NS, "web").unwrap();
    assert_eq!(revision(&d.metadata).as_deref(), Some("3"));
    let rss: Vec<ReplicaSet> = store.list(Some(NS)).0;
    let bad = rss
        .iter()
        .find(|r| revision(&r.metadata).as_deref() == Some("2"))
        .expect("the bad ReplicaSet");
    assert_eq!(bad.spec.replicas, Some(0));
    wait_for("the stuck pod gone", Duration::from_secs(30), || {
        pods(&store).len() == 3
    })
    .await;
    let names: Vec<String> = pods(&store)
        .iter()
        .map(|p| p.metadata.name.clone().unwrap())
        .collect();
    assert_eq!(
        names.iter().filter(|n| v1_pods.contains(n)).count(),
        3,
        "the old Pods kept serving throughout"
    );
    c.shutdown().await;
}
