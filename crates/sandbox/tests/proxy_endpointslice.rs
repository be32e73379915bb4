//! The EndpointSlice of a Service lists a terminating Pod as Kubernetes
//! does: ready=false, serving=true, terminating=true while it runs its
//! preStop hook, and drops it once the Pod is gone; the proxy stops routing
//! to it only after its propagation delay.

mod rollout_common;

use std::time::Duration;

use k8s_openapi::api::discovery::v1::EndpointSlice;
use rollout_common::*;

fn slice(store: &baton_sandbox::store::Store) -> Option<EndpointSlice> {
    store.list::<EndpointSlice>(Some(NS)).0.into_iter().next()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn terminating_endpoint_is_serving_not_ready_until_the_pod_is_gone() {
    let c = TestCluster::start(Duration::from_millis(300)).await;
    let store = c.store.clone();
    let port = free_port();
    store.create(service("web-service", port)).unwrap();
    store
        .create(deployment(
            "web",
            Spec {
                replicas: 2,
                pre_stop_sleep: Some(2),
                ..Spec::default()
            },
        ))
        .unwrap();
    wait_rollout(&store, "web").await;
    wait_for("2 ready endpoints", Duration::from_secs(30), || {
        slice(&store).is_some_and(|s| {
            s.endpoints
                .iter()
                .flatten()
                .filter(|e| e.conditions.as_ref().unwrap().ready == Some(true))
                .count()
                == 2
        })
    })
    .await;
    let s = slice(&store).unwrap();
    assert!(
        s.metadata
            .name
            .as_deref()
            .unwrap()
            .starts_with("web-service-")
    );
    assert_eq!(
        s.metadata
            .labels
            .as_ref()
            .unwrap()
            .get("kubernetes.io/service-name")
            .map(String::as_str),
        Some("web-service")
    );
    assert_eq!(s.address_type, "IPv4");
    assert_eq!(s.ports.as_ref().unwrap()[0].port, Some(80));
    let ep = &s.endpoints.as_ref().unwrap()[0];
    assert_eq!(ep.node_name.as_deref(), Some("sandbox-node"));
    assert_eq!(ep.target_ref.as_ref().unwrap().kind.as_deref(), Some("Pod"));

    let addr = ([127, 0, 0, 1], port).into();
    // Until the proxy's lagging copy has both endpoints.
    until_answering(addr).await;

    let victim = pods(&store).into_iter().next().unwrap();
    let name = victim.metadata.name.clone().unwrap();
    baton_sandbox::controllers::delete_pod_gracefully(&store, NS, &name, None).unwrap();
    wait_for("terminating endpoint", Duration::from_secs(10), || {
        slice(&store).is_some_and(|s| {
            s.endpoints.iter().flatten().any(|e| {
                let c = e.conditions.clone().unwrap();
                e.target_ref.as_ref().unwrap().name.as_deref() == Some(name.as_str())
                    && c.ready == Some(false)
                    && c.serving == Some(true)
                    && c.terminating == Some(true)
            })
        })
    })
    .await;
    // Still routable for the proxy's lag; with a 2 s preStop it also still
    // serves, so every request through the NodePort succeeds.
    for _ in 0..20 {
        get(addr).await.expect("served during preStop");
    }
    wait_for(
        "endpoint removed with the pod",
        Duration::from_secs(30),
        || {
            slice(&store).is_some_and(|s| {
                s.endpoints
                    .iter()
                    .flatten()
                    .all(|e| e.target_ref.as_ref().unwrap().name.as_deref() != Some(name.as_str()))
            }) && store
                .get::<k8s_openapi::api::core::v1::Pod>(NS, &name)
                .is_none()
        },
    )
    .await;
    c.shutdown().await;
}
