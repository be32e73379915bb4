//! Patches through kube-rs: JSON merge, strategic merge (as kubectl sends
//! them), JSON patch, server-side apply (create, then merge), the scale and
//! status subresources, and 4xx answers for bad patches.

mod api_support;

use api_support::*;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::autoscaling::v1::Scale;
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde_json::json;

fn manifest(replicas: i32, image: &str) -> serde_json::Value {
    json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "default"},
        "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": "web"}},
                 "template": {"metadata": {"labels": {"app": "web"}},
                              "spec": {"containers": [
                                  {"name": "nginx", "image": image, "ports": [{"containerPort": 80}]},
                                  {"name": "sidecar", "image": "busybox:1.36"}]}}}
    })
}

fn image_of(d: &Deployment, container: &str) -> String {
    let spec = d.spec.template.spec.as_ref().unwrap();
    spec.containers
        .iter()
        .find(|c| c.name == container)
        .unwrap()
        .image
        .clone()
        .unwrap()
}

#[tokio::test]
async fn server_side_apply_creates_then_merges_a_whole_manifest() {
    let sb = empty_sandbox().await;
    let api: Api<Deployment> = Api::default_namespaced(client(&sb).await);
    let pp = PatchParams::apply("baton-test");
    let d = api
        .patch("web", &pp, &Patch::Apply(manifest(0, "nginx:1.27")))
        .await
        .unwrap();
    assert_eq!(d.metadata.generation, Some(1));
    assert_eq!(image_of(&d, "nginx"), "nginx:1.27");
    let d = api
        .patch("web", &pp, &Patch::Apply(manifest(2, "nginx:1.28")))
        .await
        .unwrap();
    assert_eq!(d.spec.replicas, Some(2));
    assert_eq!(image_of(&d, "nginx"), "nginx:1.28");
    assert_eq!(image_of(&d, "sidecar"), "busybox:1.36");
    assert_eq!(d.metadata.generation, Some(2));
    // Without a field manager, apply is refused as Kubernetes does.
    let (code, status) = raw(
        &sb,
        "PATCH",
        "/apis/apps/v1/namespaces/default/deployments/web",
        "application/apply-patch+yaml",
        b"spec: {replicas: 1}",
    )
    .await;
    assert_eq!(code, 400, "{status}");
    sb.shutdown().await;
}

#[tokio::test]
async fn strategic_merge_patch_like_kubectl_set_image_changes_one_container() {
    let sb = empty_sandbox().await;
    let api: Api<Deployment> = Api::default_namespaced(client(&sb).await);
    api.patch(
        "web",
        &PatchParams::apply("t"),
        &Patch::Apply(manifest(0, "nginx:1.27")),
    )
    .await
    .unwrap();
    let p = json!({"spec": {"template": {"spec": {
        "$setElementOrder/containers": [{"name": "nginx"}, {"name": "sidecar"}],
        "containers": [{"name": "nginx", "image": "nginx:1.28"}]}}}});
    let d = api
        .patch("web", &PatchParams::default(), &Patch::Strategic(p))
        .await
        .unwrap();
    assert_eq!(image_of(&d, "nginx"), "nginx:1.28");
    assert_eq!(image_of(&d, "sidecar"), "busybox:1.36");
    let ports = d.spec.template.spec.as_ref().unwrap().containers[0]
        .ports
        .clone()
        .unwrap();
    assert_eq!(
        ports[0].container_port, 80,
        "fields not in the patch are kept"
    );
    let p = json!({"spec": {"paused": true, "template": {"metadata": {"annotations": {"kubectl.kubernetes.io/restartedAt": "now"}}}}});
    let d = api
        .patch("web", &PatchParams::default(), &Patch::Strategic(p))
        .await
        .unwrap();
    assert_eq!(d.spec.paused, Some(true));
    sb.shutdown().await;
}

#[tokio::test]
async fn merge_and_json_patches_apply_and_bad_ones_are_4xx() {
    let sb = empty_sandbox().await;
    let api: Api<Deployment> = Api::default_namespaced(client(&sb).await);
    api.patch(
        "web",
        &PatchParams::apply("t"),
        &Patch::Apply(manifest(0, "nginx:1.27")),
    )
    .await
    .unwrap();
    let d = api
        .patch(
            "web",
            &PatchParams::default(),
            &Patch::Merge(
                json!({"metadata": {"annotations": {"a": "b"}}, "spec": {"replicas": 4}}),
            ),
        )
        .await
        .unwrap();
    assert_eq!(d.spec.replicas, Some(4));
    assert_eq!(d.metadata.annotations.unwrap()["a"], "b");
    // kube 5 speaks json-patch 4, the sandbox json-patch 5: send it raw.
    let path = "/apis/apps/v1/namespaces/default/deployments/web";
    let jp = br#"[{"op": "test", "path": "/spec/replicas", "value": 4}, {"op": "replace", "path": "/spec/replicas", "value": 1}]"#;
    let (code, d) = raw(&sb, "PATCH", path, "application/json-patch+json", jp).await;
    assert_eq!(code, 200, "{d}");
    let d: Deployment = serde_json::from_value(d).unwrap();
    assert_eq!(d.spec.replicas, Some(1));

    for (ct, body, want) in [
        (
            "application/json-patch+json",
            &b"[{\"op\":\"test\",\"path\":\"/spec/replicas\",\"value\":9}]"[..],
            422,
        ),
        ("application/json-patch+json", b"{not json", 400),
        ("application/merge-patch+json", b"[1]", 400),
        (
            "application/merge-patch+json",
            b"{\"spec\":{\"replicas\":-1}}",
            422,
        ),
        (
            "application/merge-patch+json",
            b"{\"spec\":{\"replicas\":\"x\"}}",
            400,
        ),
        (
            "application/strategic-merge-patch+json",
            b"{\"spec\":{\"template\":{\"spec\":{\"containers\":[{\"$patch\":\"replace\"}]}}}}",
            422,
        ),
        ("text/plain", b"{}", 415),
    ] {
        let (code, status) = raw(&sb, "PATCH", path, ct, body).await;
        assert_eq!(
            code,
            want,
            "{ct} {}: {status}",
            String::from_utf8_lossy(body)
        );
        assert_eq!(status["kind"], "Status");
    }
    let (code, _) = raw(
        &sb,
        "PATCH",
        "/apis/apps/v1/namespaces/default/deployments/nope",
        "application/merge-patch+json",
        b"{}",
    )
    .await;
    assert_eq!(code, 404);
    sb.shutdown().await;
}

#[tokio::test]
async fn scale_subresource_reads_and_writes_replicas() {
    let sb = empty_sandbox().await;
    let api: Api<Deployment> = Api::default_namespaced(client(&sb).await);
    api.patch(
        "web",
        &PatchParams::apply("t"),
        &Patch::Apply(manifest(2, "nginx:1.27")),
    )
    .await
    .unwrap();
    let s: Scale = api.get_scale("web").await.unwrap();
    assert_eq!(s.spec.as_ref().unwrap().replicas, Some(2));
    assert_eq!(
        s.status.as_ref().unwrap().selector.as_deref(),
        Some("app=web")
    );
    let s = api
        .patch_scale(
            "web",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"replicas": 5}})),
        )
        .await
        .unwrap();
    assert_eq!(s.spec.unwrap().replicas, Some(5));
    // Retried on conflict: the Scale carries the Deployment's version,
    // which the controllers' status writes move.
    let mut replaced = None;
    for _ in 0..20 {
        let mut s = api.get_scale("web").await.unwrap();
        s.spec.as_mut().unwrap().replicas = Some(0);
        match api.replace_scale("web", &PostParams::default(), &s).await {
            Ok(s) => {
                replaced = Some(s);
                break;
            }
            Err(kube::Error::Api(e)) if e.code == 409 => continue,
            Err(e) => panic!("{e:?}"),
        }
    }
    let s = replaced.expect("replaced within 20 tries");
    assert_eq!(s.spec.unwrap().replicas, Some(0));
    assert_eq!(api.get("web").await.unwrap().spec.replicas, Some(0));
    sb.shutdown().await;
}

#[tokio::test]
async fn status_subresource_changes_only_status() {
    let sb = empty_sandbox().await;
    let api: Api<Deployment> = Api::default_namespaced(client(&sb).await);
    api.patch(
        "web",
        &PatchParams::apply("t"),
        &Patch::Apply(manifest(0, "nginx:1.27")),
    )
    .await
    .unwrap();
    let d = api
        .patch_status(
            "web",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"replicas": 9}, "status": {"observedGeneration": 42}})),
        )
        .await
        .unwrap();
    assert_eq!(d.spec.replicas, Some(0));
    assert_eq!(d.status.unwrap().observed_generation, Some(42));
    sb.shutdown().await;
}

#[tokio::test]
async fn a_resource_version_inside_a_patch_is_a_precondition() {
    let sb = empty_sandbox().await;
    // A Service: no controller writes to it, so its version moves only here.
    let api: Api<k8s_openapi::api::core::v1::Service> = Api::default_namespaced(client(&sb).await);
    let svc = json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s"},
                     "spec": {"ports": [{"port": 80}]}});
    let s = api
        .patch("s", &PatchParams::apply("t"), &Patch::Apply(svc))
        .await
        .unwrap();
    let rv = s.metadata.resource_version.unwrap();
    let ok = json!({"metadata": {"resourceVersion": rv, "labels": {"a": "1"}}});
    api.patch("s", &PatchParams::default(), &Patch::Merge(ok))
        .await
        .unwrap();
    let stale = json!({"metadata": {"resourceVersion": rv, "labels": {"a": "2"}}});
    let e = api
        .patch("s", &PatchParams::default(), &Patch::Merge(stale))
        .await
        .unwrap_err();
    assert!(
        matches!(e, kube::Error::Api(ref s) if s.code == 409 && s.reason == "Conflict"),
        "{e:?}"
    );
    sb.shutdown().await;
}
