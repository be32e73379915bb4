//! CRUD through kube-rs against a started sandbox, and the Status errors
//! (404, 409, 422, 400) a real API server answers with.

mod api_support;

use api_support::*;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Namespace, Pod, Service};
use kube::api::{Api, DeleteParams, ListParams, PostParams};
use serde_json::json;

fn deployment(name: &str) -> Deployment {
    serde_json::from_value(json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {"replicas": 0, "selector": {"matchLabels": {"app": name}},
                 "template": {"metadata": {"labels": {"app": name}},
                              "spec": {"containers": [{"name": "nginx", "image": "nginx:1.27"}]}}}
    }))
    .unwrap()
}

#[tokio::test]
async fn deployment_create_get_update_delete_round_trip_with_defaults() {
    let sb = empty_sandbox().await;
    let api: Api<Deployment> = Api::default_namespaced(client(&sb).await);
    let d = api
        .create(&PostParams::default(), &deployment("web"))
        .await
        .unwrap();
    assert_eq!(d.metadata.generation, Some(1));
    assert!(d.metadata.uid.is_some());
    let strategy = d.spec.strategy.clone().unwrap();
    assert_eq!(strategy.type_.as_deref(), Some("RollingUpdate"));
    assert_eq!(d.spec.revision_history_limit, Some(10));
    assert_eq!(d.spec.progress_deadline_seconds, Some(600));

    let d2 = replace_retrying(&api, "web", |d| d.spec.replicas = Some(2)).await;
    assert_eq!(d2.spec.replicas, Some(2));
    assert_eq!(d2.metadata.generation, Some(2));

    let names: Vec<_> = api
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .filter_map(|d| d.metadata.name)
        .collect();
    assert_eq!(names, vec!["web"]);
    api.delete("web", &DeleteParams::default()).await.unwrap();
    let e = api.get("web").await.unwrap_err();
    assert!(
        matches!(e, kube::Error::Api(ref s) if s.code == 404),
        "{e:?}"
    );
    sb.shutdown().await;
}

#[tokio::test]
async fn errors_are_status_objects_with_kubernetes_codes() {
    let sb = empty_sandbox().await;
    let c = client(&sb).await;
    let api: Api<Deployment> = Api::default_namespaced(c.clone());
    let status = |e: kube::Error| match e {
        kube::Error::Api(s) => (s.code, s.reason.clone(), s.message.clone()),
        other => panic!("not a Status: {other:?}"),
    };
    let (code, reason, msg) = status(api.get("nope").await.unwrap_err());
    assert_eq!((code, reason.as_str()), (404, "NotFound"));
    assert_eq!(msg, "deployments.apps \"nope\" not found");

    api.create(&PostParams::default(), &deployment("web"))
        .await
        .unwrap();
    let (code, reason, _) = status(
        api.create(&PostParams::default(), &deployment("web"))
            .await
            .unwrap_err(),
    );
    assert_eq!((code, reason.as_str()), (409, "AlreadyExists"));

    let stale = api.get("web").await.unwrap();
    replace_retrying(&api, "web", |d| d.spec.replicas = Some(1)).await;
    let (code, reason, _) = status(
        api.replace("web", &PostParams::default(), &stale)
            .await
            .unwrap_err(),
    );
    assert_eq!((code, reason.as_str()), (409, "Conflict"));

    let mut bad = deployment("bad");
    bad.spec.selector.match_labels = Some([("app".to_string(), "other".to_string())].into());
    let (code, reason, msg) = status(api.create(&PostParams::default(), &bad).await.unwrap_err());
    assert_eq!((code, reason.as_str()), (422, "Invalid"), "{msg}");
    assert!(msg.contains("selector"), "{msg}");

    let pods: Api<Pod> = Api::namespaced(c.clone(), "missing-ns");
    let (code, _, msg) = status(pods.create(&PostParams::default(), &serde_json::from_value(json!({"metadata": {"name": "p"}, "spec": {"containers": [{"name": "c", "image": "x:1"}]}})).unwrap()).await.unwrap_err());
    assert_eq!(code, 404, "{msg}");
    sb.shutdown().await;
}

#[tokio::test]
async fn malformed_bodies_get_4xx_status_and_never_break_the_server() {
    let sb = empty_sandbox().await;
    let path = "/apis/apps/v1/namespaces/default/deployments";
    let bodies: &[&[u8]] = &[b"", b"{", b"null", b"[]", b"\"x\"", b"{\"spec\": 5}", b"{\"metadata\": 3}",
        b"{\"kind\": \"Pod\", \"metadata\": {\"name\": \"x\"}}", b"\xff\xfe\x00", b"{\"metadata\":{\"name\":\"x\"},\"spec\":{\"replicas\":\"three\"}}",
        b"{\"metadata\":{\"name\":\"UPPER\"},\"spec\":{\"selector\":{\"matchLabels\":{\"a\":\"b\"}},\"template\":{\"metadata\":{\"labels\":{\"a\":\"b\"}},\"spec\":{\"containers\":[{\"name\":\"c\",\"image\":\"i\"}]}}}}"];
    for b in bodies {
        let (code, status) = raw(&sb, "POST", path, "application/json", b).await;
        assert!(
            (400..500).contains(&code),
            "{code} for {:?}",
            String::from_utf8_lossy(b)
        );
        assert_eq!(status["kind"], "Status", "{status}");
        assert!(!status["message"].as_str().unwrap_or("").is_empty());
    }
    let (code, status) = raw(&sb, "POST", path, "application/yaml", b"metadata: [\n").await;
    assert_eq!(code, 400, "{status}");
    // The same bodies, and odd metadata, on an object that exists: PUT,
    // every PATCH type, server-side apply, DELETE with bad options.
    let api: Api<Deployment> = Api::default_namespaced(client(&sb).await);
    api.create(&PostParams::default(), &deployment("web"))
        .await
        .unwrap();
    let one = format!("{path}/web");
    let odd: &[&[u8]] = &[
        b"{\"metadata\": 3}",
        b"{\"metadata\": \"x\"}",
        b"{\"metadata\": []}",
        b"{\"metadata\": {\"name\": 7}}",
    ];
    for b in bodies.iter().chain(odd) {
        for (method, ct) in [
            ("PUT", "application/json"),
            ("PATCH", "application/merge-patch+json"),
            ("PATCH", "application/strategic-merge-patch+json"),
            ("PATCH", "application/json-patch+json"),
            ("PATCH", "application/apply-patch+yaml"),
            ("DELETE", "application/json"),
        ] {
            let target = if ct.contains("apply") {
                format!("{one}?fieldManager=t")
            } else {
                one.clone()
            };
            let (code, status) = raw(&sb, method, &target, ct, b).await;
            if code < 400 {
                // Some bodies are valid (an empty DeleteOptions, a patch that
                // only names the object); what matters is an answer, never a
                // dropped connection.
                assert!(
                    code == 200 || code == 201,
                    "{method} {ct} {:?}: {code} {status}",
                    String::from_utf8_lossy(b)
                );
                if method == "DELETE" {
                    api.create(&PostParams::default(), &deployment("web"))
                        .await
                        .unwrap();
                }
                continue;
            }
            assert!((400..500).contains(&code), "{method} {ct}: {code}");
            assert_eq!(
                status["kind"],
                "Status",
                "{method} {ct} {:?}: {status}",
                String::from_utf8_lossy(b)
            );
        }
    }
    // Still serving.
    let (code, _) = raw(&sb, "GET", "/version", "application/json", b"").await;
    assert_eq!(code, 200);
    sb.shutdown().await;
}

#[tokio::test]
async fn services_get_a_cluster_ip_and_a_free_node_port() {
    let sb = empty_sandbox().await;
    let api: Api<Service> = Api::default_namespaced(client(&sb).await);
    let svc: Service = serde_json::from_value(json!({"metadata": {"name": "web"}, "spec": {"type": "NodePort", "selector": {"app": "web"}, "ports": [{"port": 80}]}})).unwrap();
    let s = api.create(&PostParams::default(), &svc).await.unwrap();
    let spec = s.spec.unwrap();
    let ip = spec.cluster_ip.unwrap();
    assert!(ip.starts_with("127.2"), "a loopback ClusterIP: {ip}");
    let port = &spec.ports.unwrap()[0];
    let np = port.node_port.unwrap();
    assert!(
        (30_000..=32_767).contains(&np),
        "Kubernetes' NodePort range: {np}"
    );
    assert_eq!(sb.node_port("web").unwrap().port() as i32, np);
    // The same port asked for by another Service is refused.
    let clash: Service = serde_json::from_value(json!({"metadata": {"name": "other"}, "spec": {"type": "NodePort", "ports": [{"port": 81, "nodePort": np}]}})).unwrap();
    let e = api
        .create(&PostParams::default(), &clash)
        .await
        .unwrap_err();
    assert!(
        matches!(e, kube::Error::Api(ref s) if s.code == 422 && s.message.contains("already allocated")),
        "{e:?}"
    );
    // An update keeps the allocated clusterIP and nodePort.
    let mut s2 = api.get("web").await.unwrap();
    let spec2 = s2.spec.as_mut().unwrap();
    spec2.cluster_ip = None;
    spec2.ports.as_mut().unwrap()[0].node_port = None;
    let s2 = api
        .replace("web", &PostParams::default(), &s2)
        .await
        .unwrap();
    let spec2 = s2.spec.unwrap();
    assert_eq!(spec2.ports.unwrap()[0].node_port, Some(np));
    assert_eq!(spec2.cluster_ip, Some(ip));
    sb.shutdown().await;
}

#[tokio::test]
async fn namespaces_list_includes_default() {
    let sb = empty_sandbox().await;
    let api: Api<Namespace> = Api::all(client(&sb).await);
    let names: Vec<_> = api
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .filter_map(|n| n.metadata.name)
        .collect();
    assert!(names.contains(&"default".to_string()), "{names:?}");
    sb.shutdown().await;
}

#[tokio::test]
async fn pod_delete_is_graceful_and_a_second_delete_does_not_extend_it() {
    let sb = empty_sandbox().await;
    let api: Api<Pod> = Api::default_namespaced(client(&sb).await);
    // A preStop sleep keeps the Pod terminating (in the kubelet half) for
    // longer than this test runs.
    let p: Pod = serde_json::from_value(json!({"metadata": {"name": "p1"}, "spec": {
        "terminationGracePeriodSeconds": 45,
        "containers": [{"name": "c", "image": "nginx:1.27",
                        "lifecycle": {"preStop": {"exec": {"command": ["sleep", "40"]}}}}]}}))
    .unwrap();
    api.create(&PostParams::default(), &p).await.unwrap();
    let deleted = api
        .delete("p1", &DeleteParams::default())
        .await
        .unwrap()
        .left()
        .expect("the pod, still terminating");
    assert_eq!(deleted.metadata.deletion_grace_period_seconds, Some(45));
    let ts = deleted
        .metadata
        .deletion_timestamp
        .clone()
        .expect("deletionTimestamp set");

    let longer = DeleteParams {
        grace_period_seconds: Some(100),
        ..Default::default()
    };
    let again = api
        .delete("p1", &longer)
        .await
        .unwrap()
        .left()
        .expect("still terminating");
    assert_eq!(
        again.metadata.deletion_grace_period_seconds,
        Some(45),
        "not extended"
    );
    assert_eq!(again.metadata.deletion_timestamp, Some(ts));

    // Grace 0 (kubectl delete --force --grace-period=0) removes it at once.
    api.delete(
        "p1",
        &DeleteParams {
            grace_period_seconds: Some(0),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let e = api.get("p1").await.unwrap_err();
    assert!(
        matches!(e, kube::Error::Api(ref s) if s.code == 404),
        "{e:?}"
    );
    sb.shutdown().await;
}

#[tokio::test]
async fn dry_run_validates_and_answers_but_writes_nothing() {
    let sb = empty_sandbox().await;
    let api: Api<Deployment> = Api::default_namespaced(client(&sb).await);
    let dry = PostParams {
        dry_run: true,
        ..Default::default()
    };
    let d = api.create(&dry, &deployment("web")).await.unwrap();
    assert_eq!(d.spec.revision_history_limit, Some(10), "defaults filled");
    assert!(api.get_opt("web").await.unwrap().is_none());
    let mut bad = deployment("bad");
    bad.spec.template.spec.as_mut().unwrap().containers.clear();
    let e = api.create(&dry, &bad).await.unwrap_err();
    assert!(
        matches!(e, kube::Error::Api(ref s) if s.code == 422),
        "{e:?}"
    );

    api.create(&PostParams::default(), &deployment("web"))
        .await
        .unwrap();
    let pp = kube::api::PatchParams {
        dry_run: true,
        ..Default::default()
    };
    let d = api
        .patch(
            "web",
            &pp,
            &kube::api::Patch::Merge(json!({"spec": {"replicas": 7}})),
        )
        .await
        .unwrap();
    assert_eq!(d.spec.replicas, Some(7));
    assert_eq!(api.get("web").await.unwrap().spec.replicas, Some(0));
    let dp = DeleteParams {
        dry_run: true,
        ..Default::default()
    };
    api.delete("web", &dp).await.unwrap();
    assert!(api.get_opt("web").await.unwrap().is_some());
    sb.shutdown().await;
}

#[tokio::test]
async fn eviction_deletes_a_pod_gracefully() {
    let sb = empty_sandbox().await;
    let api: Api<Pod> = Api::default_namespaced(client(&sb).await);
    for name in ["p2", "p3"] {
        let p: Pod = serde_json::from_value(json!({"metadata": {"name": name}, "spec": {
            "containers": [{"name": "c", "image": "nginx:1.27",
                            "lifecycle": {"preStop": {"exec": {"command": ["sleep", "40"]}}}}]}}))
        .unwrap();
        api.create(&PostParams::default(), &p).await.unwrap();
    }
    // kube-rs sends its delete options as `delete_options`, which Kubernetes
    // (and the sandbox) ignore: the pod's own grace period applies.
    let status = api
        .evict("p2", &kube::api::EvictParams::default())
        .await
        .unwrap();
    assert_eq!(status.code, 201, "{status:?}");
    let p = api.get("p2").await.unwrap();
    assert_eq!(p.metadata.deletion_grace_period_seconds, Some(30));
    let body = br#"{"apiVersion": "policy/v1", "kind": "Eviction", "metadata": {"name": "p3"},
                    "deleteOptions": {"gracePeriodSeconds": 50}}"#;
    let (code, status) = raw(
        &sb,
        "POST",
        "/api/v1/namespaces/default/pods/p3/eviction",
        "application/json",
        body,
    )
    .await;
    assert_eq!(code, 201, "{status}");
    let p = api.get("p3").await.unwrap();
    assert_eq!(p.metadata.deletion_grace_period_seconds, Some(50));
    let e = api
        .evict("nope", &kube::api::EvictParams::default())
        .await
        .unwrap_err();
    assert!(
        matches!(e, kube::Error::Api(ref s) if s.code == 404),
        "{e:?}"
    );
    sb.shutdown().await;
}
