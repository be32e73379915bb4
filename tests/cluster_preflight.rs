//! Preflight against the sandbox: SelfSubjectAccessReviews find every
//! permission a sandbox access rule denies, report them all at once as
//! RBAC rules, and change nothing in the cluster; missing targets are
//! named with their namespace.

use std::time::Duration;

use baton::cluster::preflight::{
    Permission, PreflightError, apply_create_permissions, check_also_watched, check_targets,
    permissions_for, preflight,
};
use baton::cluster::steps::Step;
use baton::cluster::watch::Workload;
use baton_sandbox::{AccessRule, Sandbox, SandboxConfig};
use k8s_openapi::api::apps::v1::Deployment;
use kube::{Api, Client};

async fn start(deny: Vec<AccessRule>) -> (Sandbox, Client) {
    let mut cfg = SandboxConfig::seed();
    cfg.deny = deny;
    let sb = Sandbox::start(cfg).await.expect("sandbox starts");
    let kc = kube::config::Kubeconfig::read_from(sb.kubeconfig_path()).expect("kubeconfig");
    let kcfg =
        kube::Config::from_custom_kubeconfig(kc, &kube::config::KubeConfigOptions::default())
            .await
            .expect("client config");
    (sb, Client::try_from(kcfg).expect("client"))
}

fn deny(verb: &str, group: &str, resource: &str) -> AccessRule {
    AccessRule {
        verb: verb.into(),
        group: group.into(),
        resource: resource.into(),
    }
}

fn steps(yaml: &str) -> Vec<Step> {
    serde_norway::from_str(yaml).expect("steps parse")
}

const ROLLOUT: &str = "- set_image: {image: \"nginx:1.28\"}\n- scale: {replicas: 4}\n- delete_pod: {random: true}\n- wait_rollout: {timeout: 60s}\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn everything_allowed_passes() {
    let (sb, client) = start(Vec::new()).await;
    preflight(&client, "default", &permissions_for(&steps(ROLLOUT)))
        .await
        .expect("all allowed");
    check_targets(
        &client,
        "default",
        "web-server",
        Some("web-service"),
        &steps(ROLLOUT),
    )
    .await
    .expect("both exist, and the one container");
    sb.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn denied_verbs_are_all_reported_as_rbac_rules_and_nothing_changes() {
    let (sb, client) = start(vec![
        deny("patch", "apps", "deployments"),
        deny("delete", "", "pods"),
        deny("watch", "discovery.k8s.io", "endpointslices"),
    ])
    .await;
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), "default");
    // What a change by baton would move: the spec, and with it the
    // generation. (The resourceVersion also moves with status updates
    // the sandbox's controllers make while the seed rolls out.)
    let before = deployments.get("web-server").await.unwrap();

    let err = preflight(&client, "default", &permissions_for(&steps(ROLLOUT)))
        .await
        .expect_err("denied");
    let PreflightError::Missing { missing, namespace } = &err else {
        panic!("expected missing permissions, got {err}");
    };
    assert_eq!(namespace, "default");
    assert_eq!(
        missing,
        &[
            Permission::new("watch", "discovery.k8s.io", "endpointslices"),
            Permission::new("patch", "apps", "deployments"),
            Permission::new("delete", "", "pods"),
        ]
    );
    let msg = err.to_string();
    assert!(
        msg.starts_with(
            "missing: watch endpointslices.discovery.k8s.io, patch deployments.apps, delete pods in namespace \"default\""
        ),
        "{msg}"
    );
    assert!(
        msg.contains(
            "- apiGroups: [\"apps\"]\n  resources: [\"deployments\"]\n  verbs: [\"patch\"]"
        ),
        "{msg}"
    );

    // Preflight only asked: the Deployment is untouched.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let after = deployments.get("web-server").await.unwrap();
    assert_eq!(before.metadata.generation, after.metadata.generation);
    assert_eq!(before.spec, after.spec);
    sb.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scale_is_checked_on_the_scale_subresource() {
    let (sb, client) = start(vec![deny("patch", "apps", "deployments/scale")]).await;
    let err = preflight(
        &client,
        "default",
        &permissions_for(&steps("- scale: {replicas: 2}\n")),
    )
    .await
    .expect_err("denied");
    let msg = err.to_string();
    assert!(
        msg.starts_with("missing: patch deployments.apps/scale in namespace"),
        "{msg}"
    );
    assert!(msg.contains("resources: [\"deployments/scale\"]"), "{msg}");
    // set_image needs only the Deployment itself, which is allowed.
    preflight(
        &client,
        "default",
        &permissions_for(&steps("- set_image: {image: x}\n")),
    )
    .await
    .expect("patch deployments is allowed");
    sb.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_targets_are_named_with_their_namespace() {
    let (sb, client) = start(Vec::new()).await;
    let err = check_targets(&client, "default", "api-server", Some("api"), &[])
        .await
        .expect_err("neither exists");
    let msg = err.to_string();
    assert!(
        msg.starts_with(
            "not found in namespace \"default\": deployment \"api-server\", service \"api\""
        ),
        "{msg}"
    );
    let err = check_targets(&client, "web", "web-server", None, &[])
        .await
        .expect_err("another namespace");
    assert!(
        err.to_string()
            .contains("namespace \"web\": deployment \"web-server\""),
        "{err}"
    );
    // Those watched beside the target: each missing one named, the
    // existing ones not.
    let also = |d: &str, s: &str| Workload {
        deployment: d.into(),
        service: s.into(),
    };
    let err = check_also_watched(
        &client,
        "default",
        &[also("web-server", "web-v1"), also("web-v1", "web-service")],
    )
    .await
    .expect_err("web-v1 exists as neither");
    assert_eq!(
        err.to_string(),
        "not found in namespace \"default\": service \"web-v1\" (target.also_watch), deployment \"web-v1\" (target.also_watch) (check --namespace / the profile's cluster.namespace, and the names in the profile)"
    );
    check_also_watched(&client, "default", &[also("web-server", "web-service")])
        .await
        .expect("both exist");
    sb.shutdown().await;
}

/// A `set_image` on a container the Deployment lacks is found before the
/// baseline and warmup, not after (exit 2 then, not 1 at the step).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_set_image_container_the_deployment_lacks_is_named_before_anything_runs() {
    let (sb, client) = start(Vec::new()).await;
    let err = check_targets(
        &client,
        "default",
        "web-server",
        Some("web-service"),
        &steps("- set_image: {container: php, image: \"php:8\"}\n"),
    )
    .await
    .expect_err("no container php");
    let msg = err.to_string();
    assert!(
        msg.contains("container \"php\" in deployment \"web-server\" (it has: nginx)"),
        "{msg}"
    );
    // After a patch, the container may exist by then: not judged.
    check_targets(
        &client,
        "default",
        "web-server",
        Some("web-service"),
        &steps("- patch: {patch: {}}\n- set_image: {container: php, image: \"php:8\"}\n"),
    )
    .await
    .expect("not judged after a patch");
    sb.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn applying_an_object_that_does_not_exist_yet_needs_create_too() {
    let (sb, client) = start(vec![deny("create", "", "services")]).await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("both.yaml"),
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web-server}\n\
         spec: {replicas: 3}\n---\n\
         apiVersion: v1\nkind: Service\nmetadata: {name: web-extra}\n\
         spec: {selector: {app: web}, ports: [{port: 80}]}\n",
    )
    .unwrap();
    let s = steps("- apply: {file: both.yaml}\n");
    // The Deployment exists (patch is enough); the Service does not.
    let create = apply_create_permissions(&client, "default", &s, dir.path())
        .await
        .unwrap();
    assert_eq!(create, vec![Permission::new("create", "", "services")]);
    let err = preflight(&client, "default", &create)
        .await
        .expect_err("create services is denied");
    assert!(
        err.to_string().starts_with("missing: create services"),
        "{err}"
    );
    // Nothing was created by asking.
    let services: Api<k8s_openapi::api::core::v1::Service> =
        Api::namespaced(client.clone(), "default");
    assert!(services.get_opt("web-extra").await.unwrap().is_none());
    sb.shutdown().await;
}
