//! The Sandbox handle and the server around the resources: config files,
//! several sandboxes at once, discovery, events in both API versions,
//! EndpointSlices, and the ground-truth route.

mod api_support;

use std::time::Duration;

use api_support::*;
use baton_sandbox::{Sandbox, SandboxConfig};
use k8s_openapi::api::core::v1::Event as CoreEvent;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::api::events::v1::Event as NewEvent;
use kube::api::{Api, ListParams, PostParams};
use serde_json::json;

fn temp_dir(tag: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("baton-sandbox-test-{tag}-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

#[tokio::test]
async fn a_config_file_sets_history_manifests_and_the_kubeconfig_path() {
    let dir = temp_dir("config");
    let kubeconfig = dir.join("out").join("kubeconfig");
    let file = dir.join("sandbox.yaml");
    std::fs::write(
        &file,
        format!(
            "history: 50\nbookmark_interval: 300ms\nkubeconfig_out: {}\n---\napiVersion: v1\nkind: Namespace\nmetadata: {{name: web}}\n---\napiVersion: v1\nkind: Service\nmetadata: {{name: api, namespace: web}}\nspec: {{ports: [{{port: 8080}}], selector: {{app: api}}}}\n",
            kubeconfig.display()
        ),
    )
    .unwrap();
    let cfg = SandboxConfig::from_file(&file).unwrap();
    assert_eq!(cfg.store.history, 50);
    let sb = Sandbox::start(cfg).await.unwrap();
    assert_eq!(sb.kubeconfig_path(), kubeconfig);
    assert!(
        std::fs::read_to_string(&kubeconfig)
            .unwrap()
            .contains(&sb.api_url())
    );
    assert_eq!(
        sb.kubeconfig_yaml(),
        std::fs::read_to_string(&kubeconfig).unwrap()
    );
    let svc = sb
        .store()
        .get_raw("Service", Some("web"), "api")
        .expect("manifest applied");
    assert_eq!(svc["spec"]["type"], "ClusterIP");
    assert!(
        sb.node_port("web/api").is_none(),
        "a ClusterIP service has no node port"
    );
    sb.shutdown().await;

    let bad = dir.join("bad.yaml");
    std::fs::write(&bad, "history: 5\nwhat: 1\n").unwrap();
    let e = SandboxConfig::from_file(&bad).unwrap_err().to_string();
    assert!(e.contains("bad.yaml:2") && e.contains("what"), "{e}");
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn two_seed_sandboxes_run_side_by_side_without_clashing() {
    let a = start(SandboxConfig::seed()).await;
    let b = start(SandboxConfig::seed()).await;
    assert_ne!(a.api_url(), b.api_url());
    assert_ne!(a.kubeconfig_path(), b.kubeconfig_path());
    let (pa, pb) = (
        a.node_port("web-service").unwrap(),
        b.node_port("web-service").unwrap(),
    );
    assert_ne!(pa, pb);
    let banner = a.banner();
    assert!(
        banner.contains("SIMULATOR") && banner.contains(&a.api_url()),
        "{banner}"
    );
    assert!(
        banner.contains(&format!("default/web-service -> http://{pa}/")),
        "{banner}"
    );
    assert_eq!(
        a.node_ports(),
        vec![("default/web-service".to_string(), pa)]
    );
    for sb in [&a, &b] {
        let api: Api<k8s_openapi::api::apps::v1::Deployment> =
            Api::default_namespaced(client(sb).await);
        assert_eq!(api.get("web-server").await.unwrap().spec.replicas, Some(3));
    }
    a.shutdown().await;
    b.shutdown().await;
}

#[tokio::test]
async fn discovery_answers_plain_documents_whatever_the_accept_profile() {
    let sb = empty_sandbox().await;
    for (path, kind) in [
        ("/api", "APIVersions"),
        ("/apis", "APIGroupList"),
        ("/api/v1", "APIResourceList"),
        ("/apis/apps/v1", "APIResourceList"),
        ("/apis/apps", "APIGroup"),
    ] {
        let aggregated =
            "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json";
        let (code, v) = raw_accept(&sb, "GET", path, "", aggregated, b"").await;
        assert_eq!((code, v["kind"].as_str()), (200, Some(kind)), "{path}: {v}");
    }
    let (code, v) = raw(&sb, "GET", "/openapi/v3", "", b"").await;
    assert_eq!(code, 200);
    assert!(
        v["paths"]["apis/apps/v1"]["serverRelativeURL"].is_string(),
        "{v}"
    );
    let (code, v) = raw(&sb, "GET", "/version", "", b"").await;
    assert_eq!(code, 200);
    assert_eq!(v["major"], "1");
    for path in [
        "/openapi/v2",
        "/openapi/v3/apis/storage.k8s.io/v1",
        "/apis/storage.k8s.io/v1",
        "/api/v1/namespaces/default/configmaps",
    ] {
        let (code, v) = raw(&sb, "GET", path, "", b"").await;
        assert_eq!(code, 404, "{path}: {v}");
        assert_eq!(v["kind"], "Status");
    }
    let (code, v) = raw(&sb, "DELETE", "/api/v1/namespaces/default/pods", "", b"").await;
    assert_eq!(code, 405, "{v}");
    sb.shutdown().await;
}

#[tokio::test]
async fn events_are_served_as_core_v1_and_events_k8s_io_v1() {
    let sb = empty_sandbox().await;
    let c = client(&sb).await;
    let new: Api<NewEvent> = Api::default_namespaced(c.clone());
    let e: NewEvent = serde_json::from_value(json!({
        "metadata": {"name": "e1"}, "eventTime": "2026-01-01T00:00:00.000000Z",
        "reason": "Killing", "note": "Stopping container nginx", "type": "Normal", "action": "Killing",
        "reportingController": "kubelet", "reportingInstance": "sandbox-node",
        "regarding": {"kind": "Pod", "name": "web-1", "namespace": "default"}
    }))
    .unwrap();
    new.create(&PostParams::default(), &e).await.unwrap();
    let core: Api<CoreEvent> = Api::default_namespaced(c);
    let list = core
        .list(&ListParams::default().fields("involvedObject.name=web-1"))
        .await
        .unwrap();
    assert_eq!(list.items.len(), 1);
    assert_eq!(
        list.items[0].message.as_deref(),
        Some("Stopping container nginx")
    );
    let list = new
        .list(&ListParams::default().fields("regarding.name=web-1"))
        .await
        .unwrap();
    assert_eq!(
        list.items[0].note.as_deref(),
        Some("Stopping container nginx")
    );
    assert!(
        new.list(&ListParams::default().fields("regarding.name=other"))
            .await
            .unwrap()
            .items
            .is_empty()
    );
    sb.shutdown().await;
}

#[tokio::test]
async fn the_seed_service_gets_an_endpoint_slice_and_proxied_connections_reach_ground_truth() {
    let sb = start(SandboxConfig::seed()).await;
    let c = client(&sb).await;
    let slices: Api<EndpointSlice> = Api::default_namespaced(c);
    let mut ready = 0;
    for _ in 0..100 {
        let l = slices
            .list(&ListParams::default().labels("kubernetes.io/service-name=web-service"))
            .await
            .unwrap();
        ready = l
            .items
            .iter()
            .flat_map(|s| s.endpoints.iter().flatten())
            .filter(|e| e.conditions.as_ref().and_then(|c| c.ready) == Some(true))
            .count();
        if ready == 3 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(ready, 3, "three ready endpoints (needs the cluster half)");
    // One request through the NodePort, after the proxy's propagation lag.
    let addr = sb.node_port("web-service").unwrap();
    let mut answered = false;
    for _ in 0..50 {
        if let Ok(mut s) = tokio::net::TcpStream::connect(addr).await {
            use tokio::io::{AsyncReadExt, AsyncWriteExt};
            let _ = s
                .write_all(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                .await;
            let mut buf = Vec::new();
            let _ = tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut buf)).await;
            if String::from_utf8_lossy(&buf).contains("Hello from web-server-") {
                answered = true;
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(answered, "a pod answered through the proxy");
    let (code, log) = raw(&sb, "GET", "/sandbox/v1/ground-truth", "", b"").await;
    assert_eq!(code, 200);
    let records = log.as_array().expect("a JSON array");
    assert!(
        records.iter().any(|r| r["pod"]
            .as_str()
            .is_some_and(|p| p.starts_with("web-server-"))),
        "{log}"
    );
    // What the pod that answered did, as the kubelet did it.
    let (code, moments) = raw(&sb, "GET", "/sandbox/v1/pod-truth", "", b"").await;
    assert_eq!(code, 200);
    let kinds: Vec<(&str, &str)> = moments
        .as_array()
        .expect("a JSON array")
        .iter()
        .map(|m| (m["pod"].as_str().unwrap(), m["kind"].as_str().unwrap()))
        .collect();
    let answered_by = records
        .iter()
        .find(|r| r["outcome"] == "proxied")
        .and_then(|r| r["pod"].as_str())
        .expect("a proxied connection");
    let of_it: Vec<&str> = kinds
        .iter()
        .filter(|(p, _)| *p == answered_by)
        .map(|(_, k)| *k)
        .collect();
    assert_eq!(of_it, ["started", "listening"], "{moments}");
    sb.shutdown().await;
}
