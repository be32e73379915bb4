//! Access rules: a `deny` rule answers 403 Forbidden on that verb and
//! resource, and SelfSubjectAccessReview reports it as not allowed.

mod api_support;

use std::time::Duration;

use api_support::*;
use baton_sandbox::{AccessRule, SandboxConfig};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::authorization::v1::{
    ResourceAttributes, SelfSubjectAccessReview, SelfSubjectAccessReviewSpec,
};
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams};
use serde_json::json;

fn ssar(verb: &str, group: &str, resource: &str) -> SelfSubjectAccessReview {
    SelfSubjectAccessReview {
        spec: SelfSubjectAccessReviewSpec {
            resource_attributes: Some(ResourceAttributes {
                verb: Some(verb.into()),
                group: Some(group.into()),
                resource: Some(resource.into()),
                namespace: Some("default".into()),
                ..Default::default()
            }),
            ..Default::default()
        },
        ..Default::default()
    }
}

#[tokio::test]
async fn a_deny_rule_is_403_and_self_subject_access_review_agrees() {
    let mut cfg = SandboxConfig::seed();
    cfg.bookmark_interval = Duration::from_millis(200);
    cfg.deny = vec![AccessRule {
        verb: "patch".into(),
        group: "apps".into(),
        resource: "deployments".into(),
    }];
    let sb = start(cfg).await;
    let c = client(&sb).await;
    let api: Api<Deployment> = Api::default_namespaced(c.clone());
    // Reading is still allowed.
    assert_eq!(
        api.list(&ListParams::default()).await.unwrap().items.len(),
        1
    );
    let e = api
        .patch(
            "web-server",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"replicas": 1}})),
        )
        .await
        .unwrap_err();
    match e {
        kube::Error::Api(s) => {
            assert_eq!((s.code, s.reason.as_str()), (403, "Forbidden"));
            assert!(
                s.message.contains("cannot patch resource \"deployments\""),
                "{}",
                s.message
            );
        }
        other => panic!("{other:?}"),
    }
    let reviews: Api<SelfSubjectAccessReview> = Api::all(c);
    let r = reviews
        .create(
            &PostParams::default(),
            &ssar("patch", "apps", "deployments"),
        )
        .await
        .unwrap();
    assert!(!r.status.unwrap().allowed);
    let r = reviews
        .create(&PostParams::default(), &ssar("get", "apps", "deployments"))
        .await
        .unwrap();
    assert!(r.status.unwrap().allowed);
    let r = reviews
        .create(&PostParams::default(), &ssar("watch", "", "pods"))
        .await
        .unwrap();
    assert!(r.status.unwrap().allowed);
    sb.shutdown().await;
}

#[tokio::test]
async fn a_wildcard_rule_denies_watching_pods() {
    let cfg = SandboxConfig {
        deny: vec![AccessRule {
            verb: "*".into(),
            group: "".into(),
            resource: "pods".into(),
        }],
        ..SandboxConfig::default()
    };
    let sb = start(cfg).await;
    let (code, status) = raw(
        &sb,
        "GET",
        "/api/v1/namespaces/default/pods?watch=true",
        "",
        b"",
    )
    .await;
    assert_eq!(code, 403, "{status}");
    assert_eq!(status["reason"], "Forbidden");
    let (code, _) = raw(&sb, "GET", "/api/v1/namespaces/default/services", "", b"").await;
    assert_eq!(code, 200);
    sb.shutdown().await;
}
