//! The ingress controller end to end, over real sockets and real HTTP,
//! with the example manifest `deploy/examples/canary.yaml` (web-v1 and
//! web-v2, Ingress `web` and canary Ingress `web-canary`): the canary's
//! share at weights 0, 10, 50 and 100, a weight changed by a merge patch,
//! and ingress-nginx's answers when there is no rule (404), no endpoint
//! (503) or a Pod that stopped listening while the proxy still routes to
//! it (502).

mod api_support;

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::time::Duration;

use api_support::*;
use baton_sandbox::truth::{ConnRecord, Outcome};
use baton_sandbox::{Sandbox, SandboxConfig};
use futures::StreamExt;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::api::networking::v1::Ingress;
use kube::Api;
use kube::api::{DeleteParams, Patch, PatchParams};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const WEIGHT: &str = "nginx.ingress.kubernetes.io/canary-weight";

/// The example manifests, with the canary's weight set to `weight`, and a
/// test-only Ingress `probe` that reaches each Service on its own host
/// (`v1.probe`, `v2.probe`), so the tests can wait until both are served.
fn manifests(weight: &str) -> Vec<Value> {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../deploy/examples/canary.yaml"
    );
    let text = std::fs::read_to_string(path).expect("the example manifest");
    let mut docs: Vec<Value> = serde_norway::Deserializer::from_str(&text)
        .map(|d| <Value as serde::Deserialize>::deserialize(d).expect("YAML"))
        .collect();
    for d in &mut docs {
        if d["metadata"]["name"] == "web-canary" {
            d["metadata"]["annotations"][WEIGHT] = json!(weight);
        }
    }
    docs.push(ingress(
        "probe",
        json!([
            host_rule("v1.probe", "/", "Prefix", "web-v1", 80),
            host_rule("v2.probe", "/", "Prefix", "web-v2", 80)
        ]),
    ));
    docs
}

fn host_rule(host: &str, path: &str, ty: &str, service: &str, port: u16) -> Value {
    json!({"host": host, "http": {"paths": [{"path": path, "pathType": ty,
        "backend": {"service": {"name": service, "port": {"number": port}}}}]}})
}

fn ingress(name: &str, rules: Value) -> Value {
    json!({"apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
           "metadata": {"name": name, "namespace": "default"},
           "spec": {"ingressClassName": "nginx", "rules": rules}})
}

async fn sandbox(manifests: Vec<Value>, propagation: Duration) -> Sandbox {
    let mut cfg = SandboxConfig::default();
    cfg.cluster.propagation_delay = propagation;
    cfg.cluster.ingress_port = Some(0);
    cfg.manifests = manifests;
    start(cfg).await
}

/// One `GET path` with `Host: host` on a new connection through the
/// ingress: the status code and the body (0 and the error when the
/// connection failed).
async fn get(addr: SocketAddr, host: &str, path: &str) -> (u16, String) {
    let fut = async {
        let mut s = tokio::net::TcpStream::connect(addr).await?;
        let req = format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n");
        s.write_all(req.as_bytes()).await?;
        let mut buf = Vec::new();
        s.read_to_end(&mut buf).await?;
        Ok::<_, std::io::Error>(String::from_utf8_lossy(&buf).to_string())
    };
    match tokio::time::timeout(Duration::from_secs(10), fut).await {
        Ok(Ok(text)) => {
            let code = text.get(9..12).and_then(|c| c.parse().ok()).unwrap_or(0);
            let body = text.split_once("\r\n\r\n").map_or("", |(_, b)| b);
            (code, body.to_string())
        }
        Ok(Err(e)) => (0, e.to_string()),
        Err(_) => (0, "no answer in 10 s".into()),
    }
}

/// `Hello from POD version V` → (POD, V).
fn who(body: &str) -> Option<(String, String)> {
    let rest = body.trim().strip_prefix("Hello from ")?;
    let (pod, version) = rest.split_once(" version ")?;
    Some((pod.to_string(), version.to_string()))
}

/// Waits (bounded: 60 s) until `host` answers from `pods` distinct Pods:
/// the proxy's copy of that Service holds them all.
async fn wait_served(addr: SocketAddr, host: &str, pods: usize) -> BTreeSet<String> {
    for _ in 0..600 {
        let mut seen = BTreeSet::new();
        for _ in 0..2 * pods {
            if let (200, body) = get(addr, host, "/").await {
                seen.extend(who(&body).map(|w| w.0));
            }
        }
        if seen.len() == pods {
            return seen;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{host} never answered from {pods} pods");
}

/// Both Services fully served: what every weight test starts from.
async fn ready(sb: &Sandbox) -> SocketAddr {
    let addr = sb.ingress_addr().expect("the ingress listens");
    wait_served(addr, "v1.probe", 2).await;
    wait_served(addr, "v2.probe", 2).await;
    addr
}

/// `n` connections to `/` (no host: the example's rules), 8 at a time;
/// how many each version answered. Every one must be answered 200.
async fn versions(addr: SocketAddr, n: usize) -> BTreeMap<String, usize> {
    let answers: Vec<(u16, String)> = futures::stream::iter(0..n)
        .map(|_| get(addr, "web.example", "/"))
        .buffer_unordered(8)
        .collect()
        .await;
    let mut out = BTreeMap::new();
    for (code, body) in answers {
        assert_eq!(code, 200, "every request is answered: {body}");
        let (_, v) = who(&body).expect("a version");
        *out.entry(v).or_default() += 1;
    }
    out
}

/// The ground truth's records of connections the example's Ingresses
/// routed, from record `from` on.
fn routed(sb: &Sandbox, from: usize) -> Vec<ConnRecord> {
    sb.ground_truth().snapshot()[from..]
        .iter()
        .filter(|r| {
            matches!(
                r.ingress.as_deref(),
                Some("default/web" | "default/web-canary")
            )
        })
        .cloned()
        .collect()
}

/// The ground truth from record `from` on, once none is open (bounded:
/// 10 s): the proxy writes how a connection ended just after the client
/// saw it end.
async fn settled(sb: &Sandbox, from: usize) -> Vec<ConnRecord> {
    for _ in 0..200 {
        let all = sb.ground_truth().snapshot();
        if all[from..].iter().all(|r| r.outcome != Outcome::Open) {
            return all[from..].to_vec();
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("connections still open after 10 s");
}

async fn set_weight(sb: &Sandbox, weight: &str) {
    let api: Api<Ingress> = Api::default_namespaced(client(sb).await);
    api.patch(
        "web-canary",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"annotations": {WEIGHT: weight}}})),
    )
    .await
    .expect("merge patch");
}

#[tokio::test]
async fn at_weight_0_no_connection_reaches_the_canary() {
    let sb = sandbox(manifests("0"), Duration::from_millis(100)).await;
    let addr = ready(&sb).await;
    let from = sb.ground_truth().snapshot().len();
    let seen = versions(addr, 300).await;
    assert_eq!(seen, BTreeMap::from([("v1".to_string(), 300)]));
    let truth = routed(&sb, from);
    assert_eq!(truth.len(), 300);
    assert!(
        truth
            .iter()
            .all(|r| r.service == "web-v1" && r.ingress.as_deref() == Some("default/web")),
        "the ground truth names Ingress web and Service web-v1"
    );
    sb.shutdown().await;
}

#[tokio::test]
async fn at_weight_100_every_connection_reaches_the_canary() {
    let sb = sandbox(manifests("100"), Duration::from_millis(100)).await;
    let addr = ready(&sb).await;
    let from = sb.ground_truth().snapshot().len();
    let seen = versions(addr, 300).await;
    assert_eq!(seen, BTreeMap::from([("v2".to_string(), 300)]));
    assert!(
        routed(&sb, from)
            .iter()
            .all(|r| r.service == "web-v2" && r.ingress.as_deref() == Some("default/web-canary"))
    );
    sb.shutdown().await;
}

/// Each connection goes to the canary with probability p = weight / 100,
/// independently, so over n connections the canary's count is
/// Binomial(n, p): mean np, σ = √(np(1−p)). n = 2,000: at 10 %, 200 ± 13.4;
/// at 50 %, 1,000 ± 22.4. The test allows ±5 σ (±67 and ±112): a correct
/// controller falls outside with probability 5.7e-7 per weight (two-sided
/// normal tail; np ≥ 200 makes the approximation good), so with two weights
/// this test fails by chance about once in 870,000 runs. A wrong share
/// lands far outside: at weight 10, a 5 % or 15 % share would give 100 or
/// 300 (7.5 σ off); at weight 50, 40 % or 60 % would give 800 or 1,200
/// (8.9 σ off).
#[tokio::test]
async fn weights_10_and_50_send_that_share_within_a_binomial_bound() {
    const N: usize = 2_000;
    let sb = sandbox(manifests("10"), Duration::from_millis(100)).await;
    let addr = ready(&sb).await;
    for (weight, p) in [("10", 0.10), ("50", 0.50)] {
        set_weight(&sb, weight).await;
        let from = sb.ground_truth().snapshot().len();
        let seen = versions(addr, N).await;
        let v2 = seen.get("v2").copied().unwrap_or(0);
        assert_eq!(v2 + seen.get("v1").copied().unwrap_or(0), N, "{seen:?}");
        let n = N as f64;
        let (mean, sigma) = (n * p, (n * p * (1.0 - p)).sqrt());
        assert!(
            (v2 as f64 - mean).abs() <= 5.0 * sigma,
            "weight {weight}: {v2} of {N} to v2, expected {mean} ± {:.0}",
            5.0 * sigma
        );
        let truth = routed(&sb, from);
        assert_eq!(
            truth.iter().filter(|r| r.service == "web-v2").count(),
            v2,
            "the ground truth agrees with the answers"
        );
    }
    sb.shutdown().await;
}

#[tokio::test]
async fn a_weight_changed_by_a_merge_patch_applies_to_the_next_connections() {
    let sb = sandbox(manifests("0"), Duration::from_millis(100)).await;
    let addr = ready(&sb).await;
    assert_eq!(
        versions(addr, 50).await,
        BTreeMap::from([("v1".to_string(), 50)])
    );
    set_weight(&sb, "100").await;
    // No wait: the patch is stored when the API answers, and the ingress
    // reads its rules for each connection.
    assert_eq!(
        versions(addr, 50).await,
        BTreeMap::from([("v2".to_string(), 50)])
    );
    set_weight(&sb, "0").await;
    assert_eq!(
        versions(addr, 50).await,
        BTreeMap::from([("v1".to_string(), 50)])
    );
    sb.shutdown().await;
}

#[tokio::test]
async fn a_request_no_rule_matches_gets_nginxs_404() {
    let mut m = manifests("0");
    m.push(ingress(
        "exact",
        json!([host_rule("exact.probe", "/only", "Exact", "web-v1", 80)]),
    ));
    let sb = sandbox(m, Duration::from_millis(100)).await;
    let addr = ready(&sb).await;
    assert!(
        sb.banner()
            .contains(&format!("ingress:     http://{addr}/")),
        "{}",
        sb.banner()
    );
    assert_eq!(get(addr, "exact.probe", "/only").await.0, 200);
    let from = sb.ground_truth().snapshot().len();
    for path in ["/", "/only/", "/onlyx"] {
        let (code, body) = get(addr, "exact.probe", path).await;
        assert_eq!(code, 404, "{path}: a named host does not fall back to `/`");
        assert!(body.contains("<title>404 Not Found</title>"), "{body}");
    }
    let truth = settled(&sb, from).await;
    assert_eq!(truth.len(), 3);
    assert!(
        truth
            .iter()
            .all(|r| r.outcome == Outcome::NoRoute && r.service.is_empty()),
        "{truth:?}"
    );

    // Not HTTP, or a head over 32 KiB: 400, as nginx answers.
    let huge = format!("GET / HTTP/1.1\r\nX-Big: {}\r\n\r\n", "a".repeat(40 * 1024));
    for request in [
        b"\x16\x03\x01 TLS hello\r\n\r\n".to_vec(),
        huge.into_bytes(),
    ] {
        let answer = exchange(addr, &request).await;
        assert!(
            answer.starts_with("HTTP/1.1 400 Bad Request\r\n"),
            "{answer:.80}"
        );
    }
    sb.shutdown().await;
}

/// Sends `request` raw on a new connection; the answer until the server
/// closes.
async fn exchange(addr: SocketAddr, request: &[u8]) -> String {
    let mut s = tokio::net::TcpStream::connect(addr).await.expect("connect");
    // The server may answer (and stop reading) before all of it is sent.
    let _ = s.write_all(request).await;
    let mut buf = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut buf)).await;
    String::from_utf8_lossy(&buf).to_string()
}

#[tokio::test]
async fn a_service_without_endpoints_gets_503() {
    let mut m = manifests("0");
    m.push(json!({"apiVersion": "v1", "kind": "Service",
        "metadata": {"name": "web-none", "namespace": "default"},
        "spec": {"selector": {"app": "nothing"}, "ports": [{"port": 80}]}}));
    m.push(ingress(
        "broken",
        json!([
            host_rule("none.probe", "/", "Prefix", "web-none", 80),
            host_rule("missing.probe", "/", "Prefix", "web-missing", 80),
            host_rule("badport.probe", "/", "Prefix", "web-v1", 81)
        ]),
    ));
    let sb = sandbox(m, Duration::from_millis(100)).await;
    let addr = ready(&sb).await;
    for host in ["none.probe", "missing.probe", "badport.probe"] {
        let (code, body) = get(addr, host, "/").await;
        assert_eq!(code, 503, "{host}: {body}");
        assert!(
            body.contains("503 Service Temporarily Unavailable"),
            "{body}"
        );
    }
    let none: Vec<ConnRecord> = settled(&sb, 0)
        .await
        .into_iter()
        .filter(|r| r.service == "web-none")
        .collect();
    assert_eq!(none.len(), 1);
    assert_eq!(none[0].outcome, Outcome::NoEndpoints);
    assert_eq!(none[0].ingress.as_deref(), Some("default/broken"));
    sb.shutdown().await;
}

/// The lag that drops requests at a NodePort drops them behind the Ingress
/// too, as 502s: the Pod stops listening at SIGTERM (no preStop), while the
/// proxy's copy, 3 s behind, still holds it.
#[tokio::test]
async fn a_pod_gone_while_the_proxy_copy_still_holds_it_gets_502() {
    let mut m = manifests("0");
    for d in &mut m {
        if d["kind"] == "Deployment" && d["metadata"]["name"] == "web-v1" {
            d["spec"]["replicas"] = json!(1);
            let pod = &mut d["spec"]["template"]["spec"];
            pod["containers"][0]
                .as_object_mut()
                .unwrap()
                .remove("lifecycle");
            pod["terminationGracePeriodSeconds"] = json!(1);
        }
    }
    let sb = sandbox(m, Duration::from_secs(3)).await;
    let addr = sb.ingress_addr().unwrap();
    let pod = wait_served(addr, "v1.probe", 1).await;
    let pod = pod.first().unwrap().clone();
    let pods: Api<Pod> = Api::default_namespaced(client(&sb).await);
    pods.delete(&pod, &DeleteParams::default()).await.unwrap();
    let mut answered = None;
    for _ in 0..200 {
        let (code, body) = get(addr, "", "/").await;
        if code == 502 {
            answered = Some(body);
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let body = answered.expect("a 502 while the proxy still routes to the gone Pod");
    assert!(body.contains("502 Bad Gateway"), "{body}");
    let refused = settled(&sb, 0)
        .await
        .into_iter()
        .find(|r| r.outcome == Outcome::UpstreamRefused)
        .expect("recorded as upstream_refused");
    assert_eq!(refused.pod.as_deref(), Some(pod.as_str()));
    assert_eq!(refused.ingress.as_deref(), Some("default/web"));
    sb.shutdown().await;
}
