//! revisionHistoryLimit: old, scaled-down ReplicaSets beyond the limit are
//! deleted, oldest revision first.

mod rollout_common;

use std::time::Duration;

use k8s_openapi::api::apps::v1::ReplicaSet;
use rollout_common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn old_replica_sets_beyond_the_history_limit_are_cleaned_up() {
    let c = TestCluster::start(Duration::from_millis(100)).await;
    let store = c.store.clone();
    let mut d = deployment("web", Spec::default());
    d.spec.revision_history_limit = Some(1);
    store.create(d).unwrap();
    wait_rollout(&store, "web").await;
    for image in ["nginx:1.28", "nginx:1.29"] {
        set_image(&store, "web", image);
        tokio::time::sleep(Duration::from_millis(100)).await;
        wait_rollout(&store, "web").await;
    }
    wait_for(
        "history trimmed to 1 old ReplicaSet",
        Duration::from_secs(30),
        || store.list::<ReplicaSet>(Some(NS)).0.len() == 2,
    )
    .await;
    let mut revs: Vec<String> = store
        .list::<ReplicaSet>(Some(NS))
        .0
        .iter()
        .filter_map(|r| revision(&r.metadata))
        .collect();
    revs.sort();
    assert_eq!(revs, ["2", "3"], "revision 1 was the one deleted");
    c.shutdown().await;
}
