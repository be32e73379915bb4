//! A Service's ClusterIP, called from this machine as one Pod calls
//! another's Service: the proxy listens on each ClusterIP:port behind the
//! NodePort's own endpoint table (same round robin, same lag), the ground
//! truth says the connection came in by the ClusterIP, and the listener
//! goes with the Service. Whole sandboxes driven through their API, load
//! on real sockets; every wait is bounded and nothing is timed.

mod api_support;
mod rollout_common;

use std::net::SocketAddr;
use std::time::Duration;

use baton_sandbox::clusterip::{SERVICE_IP_PREFIX, ServiceIpRange};
use baton_sandbox::truth::{ConnRecord, Entry, GroundTruth, Outcome};
use baton_sandbox::{Sandbox, SandboxConfig};
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::Api;
use rollout_common::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// A sandbox with Deployment `web` (`spec`) behind NodePort Service
/// `web-service`, the proxy lagging by `delay`; and its Service range.
async fn sandbox(delay: Duration, spec: Spec) -> (Sandbox, ServiceIpRange) {
    let mut cfg = SandboxConfig::default();
    cfg.cluster.propagation_delay = delay;
    let mut svc = service("web-service", 0);
    // The API server allocates a free NodePort (and the ClusterIP).
    svc.spec.as_mut().unwrap().ports.as_mut().unwrap()[0].node_port = None;
    cfg.manifests = vec![
        serde_json::to_value(deployment("web", spec)).unwrap(),
        serde_json::to_value(svc).unwrap(),
    ];
    let range = ServiceIpRange::new(cfg.cluster.service_ip_base, SERVICE_IP_PREFIX);
    let sb = Sandbox::start(cfg).await.expect("sandbox starts");
    wait_rollout(&sb.store(), "web").await;
    (sb, range)
}

/// One GET on a new connection; (the local address it came from, the
/// response).
async fn get_from(addr: SocketAddr) -> (SocketAddr, String) {
    let mut s = TcpStream::connect(addr).await.expect("connect");
    let local = s.local_addr().unwrap();
    s.write_all(b"GET / HTTP/1.1\r\nHost: web-service\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut buf = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut buf))
        .await
        .expect("an answer in time")
        .unwrap();
    (local, String::from_utf8_lossy(&buf).into())
}

/// The ground truth's record of the connection from `client`, once closed:
/// the latest one from that address, since an earlier connection (a probe
/// before the endpoints reached the proxy) may have had the same local
/// port, and the one just made is the last the proxy accepted from it.
async fn record_of(gt: &GroundTruth, client: SocketAddr) -> ConnRecord {
    for _ in 0..200 {
        if let Some(r) = gt
            .snapshot()
            .into_iter()
            .filter(|r| r.client_addr == client)
            .max_by_key(|r| r.id)
            .filter(|r| r.outcome != Outcome::Open)
        {
            return r;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("no closed record of the connection from {client}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_service_gets_a_cluster_ip_in_the_range_and_answers_through_the_proxy() {
    let (sb, range) = sandbox(Duration::from_millis(100), Spec::default()).await;
    let cip = sb.cluster_ip("web-service").expect("a ClusterIP");
    let SocketAddr::V4(v4) = cip else {
        panic!("an IPv4 ClusterIP: {cip}")
    };
    assert!(range.contains(*v4.ip()), "{cip} in {}", range.cidr());
    assert_eq!(cip.port(), 80, "the Service port, not a NodePort");
    assert_eq!(sb.cluster_ip("default/web-service"), Some(cip));
    assert!(
        sb.banner()
            .contains(&format!("default/web-service -> http://{cip}/")),
        "{}",
        sb.banner()
    );
    until_answering(cip).await;

    let (local, answer) = get_from(cip).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    let rec = record_of(&sb.ground_truth(), local).await;
    assert_eq!(rec.entry, Entry::ClusterIp);
    assert_eq!(
        (rec.namespace.as_str(), rec.service.as_str()),
        (NS, "web-service")
    );
    assert_eq!(rec.node_port, 80);
    assert_eq!(rec.outcome, Outcome::Proxied);
    assert_eq!(rec.ingress, None);
    let pod = rec.pod.clone().expect("a Pod chosen");
    assert!(answer.contains(&format!("Hello from {pod} ")), "{answer}");
    let p = pods(&sb.store())
        .into_iter()
        .find(|p| p.metadata.name.as_deref() == Some(pod.as_str()))
        .expect("the Pod the ground truth names exists");
    assert_eq!(rec.pod_addr, Some(pod_addr(&p)));

    // The NodePort is still the NodePort.
    let np = sb.node_port("web-service").unwrap();
    let (local, answer) = get_from(np).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert_eq!(
        record_of(&sb.ground_truth(), local).await.entry,
        Entry::NodePort
    );
    sb.shutdown().await;
}

/// Whether the EndpointSlice lists `pod` as not ready (terminating).
fn not_ready_in_slice(sb: &Sandbox, pod: &str) -> bool {
    sb.store()
        .list::<EndpointSlice>(Some(NS))
        .0
        .iter()
        .flat_map(|s| s.endpoints.iter().flatten())
        .any(|e| {
            e.target_ref.as_ref().and_then(|t| t.name.as_deref()) == Some(pod)
                && e.conditions.as_ref().and_then(|c| c.ready) == Some(false)
        })
}

/// Four connections to `addr`; the Pods the ground truth says they reached.
async fn four_through(sb: &Sandbox, addr: SocketAddr) -> Vec<String> {
    let mut reached = Vec::new();
    for _ in 0..4 {
        let (local, answer) = get_from(addr).await;
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
        let rec = record_of(&sb.ground_truth(), local).await;
        reached.push(rec.pod.expect("a Pod chosen"));
    }
    reached
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_pods_endpoint_keeps_receiving_connections_on_the_cluster_ip_as_on_the_node_port()
{
    // A long lag, so the connections below fall inside it; a long preStop,
    // so the deleted Pod keeps serving (every request succeeds) and the
    // ground truth alone says where each went.
    let spec = Spec {
        replicas: 2,
        pre_stop_sleep: Some(60),
        ..Spec::default()
    };
    let (sb, _) = sandbox(Duration::from_secs(5), spec).await;
    let (cip, np) = (
        sb.cluster_ip("web-service").unwrap(),
        sb.node_port("web-service").unwrap(),
    );
    until_answering(cip).await;
    until_answering(np).await;

    let victim = pods(&sb.store())[0].metadata.name.clone().unwrap();
    baton_sandbox::controllers::delete_pod_gracefully(&sb.store(), NS, &victim, None).unwrap();
    wait_for(
        "the Pod out of the ready endpoints",
        Duration::from_secs(10),
        || not_ready_in_slice(&sb, &victim),
    )
    .await;
    // Inside the lag: both doors still send to it (round robin over the
    // two endpoints of the proxy's copy).
    let by_node_port = four_through(&sb, np).await;
    let by_cluster_ip = four_through(&sb, cip).await;
    assert!(by_node_port.contains(&victim), "{by_node_port:?}");
    assert!(by_cluster_ip.contains(&victim), "{by_cluster_ip:?}");

    // After it: neither does (bounded wait).
    let mut after = None;
    for _ in 0..60 {
        let (a, b) = (four_through(&sb, np).await, four_through(&sb, cip).await);
        if !a.contains(&victim) && !b.contains(&victim) {
            after = Some((a, b));
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert!(after.is_some(), "the deleted Pod left the proxy's copy");
    let cip_records: Vec<ConnRecord> = sb
        .ground_truth()
        .snapshot()
        .into_iter()
        .filter(|r| r.entry == Entry::ClusterIp)
        .collect();
    assert!(
        cip_records
            .iter()
            .all(|r| r.service == "web-service" && r.node_port == 80)
    );
    sb.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_a_service_closes_its_cluster_ip_listener() {
    let (sb, _) = sandbox(Duration::from_millis(100), Spec::default()).await;
    let cip = sb.cluster_ip("web-service").unwrap();
    let np = sb.node_port("web-service").unwrap();
    until_answering(cip).await;
    let services: Api<Service> = Api::default_namespaced(api_support::client(&sb).await);
    services
        .delete("web-service", &Default::default())
        .await
        .expect("deleted");
    assert_eq!(sb.cluster_ip("web-service"), None);
    for addr in [cip, np] {
        let mut refused = false;
        for _ in 0..200 {
            match TcpStream::connect(addr).await {
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
                    refused = true;
                    break;
                }
                _ => tokio::time::sleep(Duration::from_millis(50)).await,
            }
        }
        assert!(
            refused,
            "{addr} refuses connections once the Service is gone"
        );
    }
    sb.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_sandboxes_get_disjoint_service_ranges_and_each_answers_on_its_own() {
    let (a, range_a) = sandbox(Duration::from_millis(100), Spec::default()).await;
    let (b, range_b) = sandbox(Duration::from_millis(100), Spec::default()).await;
    assert_ne!(range_a, range_b);
    let (ca, cb) = (
        a.cluster_ip("web-service").unwrap(),
        b.cluster_ip("web-service").unwrap(),
    );
    let v4 = |s: SocketAddr| match s {
        SocketAddr::V4(v) => *v.ip(),
        SocketAddr::V6(_) => panic!("IPv4: {s}"),
    };
    assert!(range_a.contains(v4(ca)) && !range_b.contains(v4(ca)));
    assert!(range_b.contains(v4(cb)) && !range_a.contains(v4(cb)));
    until_answering(ca).await;
    until_answering(cb).await;
    for (sb, addr) in [(&a, ca), (&b, cb)] {
        let (local, answer) = get_from(addr).await;
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
        let rec = record_of(&sb.ground_truth(), local).await;
        assert_eq!(rec.entry, Entry::ClusterIp);
        let pod = rec.pod.unwrap();
        assert!(
            pods(&sb.store())
                .iter()
                .any(|p| p.metadata.name.as_deref() == Some(pod.as_str())),
            "{pod} is this sandbox's own Pod"
        );
    }
    a.shutdown().await;
    b.shutdown().await;
}
