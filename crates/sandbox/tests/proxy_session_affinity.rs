//! `sessionAffinity: ClientIP` in the Service proxy: one client address
//! stays on one Pod across many connections, and is moved when that Pod
//! goes; without affinity, connections spread over the Pods.

mod api_support;

use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use api_support::*;
use baton_sandbox::{Sandbox, SandboxConfig};
use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use kube::api::DeleteParams;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn service(name: &str, affinity: Option<&str>) -> serde_json::Value {
    let mut spec = json!({"type": "NodePort", "selector": {"app": "web"},
                          "ports": [{"port": 80, "targetPort": 80, "protocol": "TCP"}]});
    if let Some(a) = affinity {
        spec["sessionAffinity"] = json!(a);
    }
    json!({"apiVersion": "v1", "kind": "Service",
           "metadata": {"name": name, "namespace": "default"}, "spec": spec})
}

async fn sandbox() -> Sandbox {
    let mut cfg = SandboxConfig::default();
    cfg.cluster.propagation_delay = Duration::from_millis(100);
    cfg.cluster.nodes = 3;
    let mut web = baton_sandbox::config::seed_deployment();
    web["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] = json!(1);
    cfg.manifests = vec![
        web,
        service("web-rr", None),
        service("web-sticky", Some("ClientIP")),
    ];
    start(cfg).await
}

/// One connection from source address `from`: the Pod that answered
/// (its `x-pod-name`), or `None` if the connection failed.
async fn who(from: Ipv4Addr, to: SocketAddr) -> Option<String> {
    let fut = async {
        let s = tokio::net::TcpSocket::new_v4().ok()?;
        s.bind(SocketAddr::new(IpAddr::V4(from), 0)).ok()?;
        let mut c = s.connect(to).await.ok()?;
        c.write_all(b"GET / HTTP/1.1\r\nHost: sandbox\r\nConnection: close\r\n\r\n")
            .await
            .ok()?;
        let mut buf = Vec::new();
        c.read_to_end(&mut buf).await.ok()?;
        let text = String::from_utf8_lossy(&buf).to_string();
        text.lines()
            .find_map(|l| l.strip_prefix("x-pod-name: ").map(|p| p.trim().to_string()))
    };
    tokio::time::timeout(Duration::from_secs(5), fut)
        .await
        .ok()
        .flatten()
}

const CLIENT: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 1);

/// Waits (bounded) until the default Service answers from 3 Pods.
async fn all_three_in_rotation(sb: &Sandbox) {
    let rr = sb.node_port("web-rr").expect("node port");
    for _ in 0..300 {
        let mut seen = BTreeSet::new();
        for _ in 0..6 {
            if let Some(p) = who(CLIENT, rr).await {
                seen.insert(p);
            }
        }
        if seen.len() == 3 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("3 pods never in rotation");
}

#[tokio::test]
async fn without_affinity_connections_from_one_client_spread_over_the_pods() {
    let sb = sandbox().await;
    all_three_in_rotation(&sb).await;
    let rr = sb.node_port("web-rr").unwrap();
    let mut seen = BTreeSet::new();
    for _ in 0..30 {
        seen.insert(who(CLIENT, rr).await.expect("answered"));
    }
    assert_eq!(seen.len(), 3, "{seen:?}");
    sb.shutdown().await;
}

#[tokio::test]
async fn client_ip_affinity_keeps_each_client_on_one_pod_until_that_pod_goes() {
    let sb = sandbox().await;
    all_three_in_rotation(&sb).await;
    // The proxy applied both Services' endpoints after the same lag.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let sticky = sb.node_port("web-sticky").unwrap();
    let clients = [2u8, 3, 4].map(|k| Ipv4Addr::new(127, 0, 0, k));
    let mut pinned = Vec::new();
    for c in clients {
        let mut seen = BTreeSet::new();
        for _ in 0..30 {
            seen.insert(who(c, sticky).await.expect("answered"));
        }
        assert_eq!(seen.len(), 1, "client {c} saw {seen:?}");
        pinned.push(seen.into_iter().next().unwrap());
    }
    let distinct: BTreeSet<&String> = pinned.iter().collect();
    assert!(distinct.len() > 1, "new clients are spread: {pinned:?}");

    // Its Pod goes: the client is placed on another one, and stays there.
    let pods: Api<Pod> = Api::default_namespaced(client(&sb).await);
    pods.delete(&pinned[0], &DeleteParams::default())
        .await
        .unwrap();
    let mut moved = None;
    for _ in 0..300 {
        match who(clients[0], sticky).await {
            Some(p) if p != pinned[0] => {
                moved = Some(p);
                break;
            }
            _ => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
    let moved = moved.expect("moved to another pod");
    for _ in 0..20 {
        assert_eq!(who(clients[0], sticky).await.as_ref(), Some(&moved));
    }
    sb.shutdown().await;
}
