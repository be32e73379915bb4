//! ClusterIP allocation through the API, as kube-rs sees it: an address
//! from the sandbox's Service range when none is asked for, one asked for
//! honoured when it is in the range and free, the API server's 422s
//! otherwise, headless Services without one, the address immutable and
//! freed with its Service.

mod api_support;

use std::net::Ipv4Addr;

use api_support::*;
use baton_sandbox::SandboxConfig;
use baton_sandbox::clusterip::{SERVICE_IP_PREFIX, ServiceIpRange};
use k8s_openapi::api::core::v1::Service;
use kube::Api;
use kube::api::{DeleteParams, PostParams};
use serde_json::json;

fn svc(name: &str, spec: serde_json::Value) -> Service {
    serde_json::from_value(json!({"metadata": {"name": name}, "spec": spec})).unwrap()
}

/// The 422's message, or a panic naming what came instead.
fn invalid(r: Result<Service, kube::Error>) -> String {
    match r {
        Err(kube::Error::Api(s)) if s.code == 422 && s.reason == "Invalid" => s.message,
        other => panic!("expected 422 Invalid, got {other:?}"),
    }
}

/// A sandbox with no manifests, and its Service range.
async fn sandbox() -> (baton_sandbox::Sandbox, ServiceIpRange) {
    let cfg = SandboxConfig::default();
    let range = ServiceIpRange::new(cfg.cluster.service_ip_base, SERVICE_IP_PREFIX);
    (start(cfg).await, range)
}

/// The `n`-th address of `range`'s network.
fn nth(range: &ServiceIpRange, n: u8) -> String {
    let base: Ipv4Addr = range.cidr().split('/').next().unwrap().parse().unwrap();
    let o = base.octets();
    Ipv4Addr::new(o[0], o[1], o[2], n).to_string()
}

#[tokio::test]
async fn services_of_every_type_but_external_name_get_a_cluster_ip_from_the_range() {
    let (sb, range) = sandbox().await;
    let api: Api<Service> = Api::default_namespaced(client(&sb).await);
    let mut seen = Vec::new();
    for (name, ty) in [
        ("plain", "ClusterIP"),
        ("node", "NodePort"),
        ("lb", "LoadBalancer"),
    ] {
        let s = api
            .create(
                &PostParams::default(),
                &svc(name, json!({"type": ty, "ports": [{"port": 8080}]})),
            )
            .await
            .unwrap();
        let spec = s.spec.unwrap();
        let ip = spec.cluster_ip.clone().unwrap();
        assert!(
            range.contains(ip.parse().unwrap()),
            "{ty}: {ip} in {}",
            range.cidr()
        );
        assert_eq!(spec.cluster_ips, Some(vec![ip.clone()]), "{ty}");
        assert_eq!(
            sb.cluster_ip(name).map(|a| a.to_string()),
            Some(format!("{ip}:8080"))
        );
        assert!(!seen.contains(&ip), "{ip} handed out twice");
        seen.push(ip);
    }
    let s = api
        .create(
            &PostParams::default(),
            &svc(
                "ext",
                json!({"type": "ExternalName", "externalName": "example.com"}),
            ),
        )
        .await
        .unwrap();
    let spec = s.spec.unwrap();
    assert_eq!((spec.cluster_ip, spec.cluster_ips), (None, None));
    assert_eq!(sb.cluster_ip("ext"), None);
    sb.shutdown().await;
}

#[tokio::test]
async fn an_explicit_cluster_ip_is_honoured_when_free_and_in_range_and_refused_otherwise() {
    let (sb, range) = sandbox().await;
    let api: Api<Service> = Api::default_namespaced(client(&sb).await);
    let pp = PostParams::default();
    let wanted = nth(&range, 200);
    let s = api
        .create(
            &pp,
            &svc("a", json!({"clusterIP": wanted, "ports": [{"port": 80}]})),
        )
        .await
        .unwrap();
    let spec = s.spec.unwrap();
    assert_eq!(spec.cluster_ip.as_deref(), Some(wanted.as_str()));
    assert_eq!(spec.cluster_ips, Some(vec![wanted.clone()]));

    let m = invalid(
        api.create(
            &pp,
            &svc("b", json!({"clusterIP": wanted, "ports": [{"port": 80}]})),
        )
        .await,
    );
    assert_eq!(
        m,
        format!(
            "Service \"b\" is invalid: spec.clusterIPs: Invalid value: []string{{\"{wanted}\"}}: failed to allocate IP {wanted}: provided IP is already allocated"
        )
    );
    let m = invalid(
        api.create(
            &pp,
            &svc(
                "c",
                json!({"clusterIP": "10.96.0.10", "ports": [{"port": 80}]}),
            ),
        )
        .await,
    );
    assert!(
        m.ends_with(&format!(
            "failed to allocate IP 10.96.0.10: the provided IP (10.96.0.10) is not in the valid range. The range of valid IPs is {}",
            range.cidr()
        )),
        "{m}"
    );
    // The range's own network address is not a host address in it.
    let m = invalid(
        api.create(
            &pp,
            &svc(
                "d",
                json!({"clusterIP": nth(&range, 0), "ports": [{"port": 80}]}),
            ),
        )
        .await,
    );
    assert!(m.contains("is not in the valid range"), "{m}");

    // Immutable once set.
    let mut a = api.get("a").await.unwrap();
    a.spec.as_mut().unwrap().cluster_ip = Some(nth(&range, 201));
    a.spec.as_mut().unwrap().cluster_ips = None;
    let m = invalid(api.replace("a", &pp, &a).await);
    assert!(m.ends_with("field is immutable"), "{m}");
    assert_eq!(
        api.get("a").await.unwrap().spec.unwrap().cluster_ip,
        Some(wanted.clone())
    );

    // Freed with its Service.
    api.delete("a", &DeleteParams::default()).await.unwrap();
    let s = api
        .create(
            &pp,
            &svc("b", json!({"clusterIP": wanted, "ports": [{"port": 80}]})),
        )
        .await
        .unwrap();
    assert_eq!(s.spec.unwrap().cluster_ip, Some(wanted));
    sb.shutdown().await;
}

#[tokio::test]
async fn a_headless_service_gets_no_cluster_ip_and_stays_headless() {
    let (sb, range) = sandbox().await;
    let api: Api<Service> = Api::default_namespaced(client(&sb).await);
    let pp = PostParams::default();
    let s = api
        .create(
            &pp,
            &svc(
                "h",
                json!({"clusterIP": "None", "selector": {"app": "web"}, "ports": [{"port": 80}]}),
            ),
        )
        .await
        .unwrap();
    let spec = s.spec.unwrap();
    assert_eq!(spec.cluster_ip.as_deref(), Some("None"));
    assert_eq!(spec.cluster_ips, Some(vec!["None".to_string()]));
    assert_eq!(sb.cluster_ip("h"), None);
    assert!(!sb.banner().contains("default/h ->"), "{}", sb.banner());
    // An update that leaves clusterIP out keeps it headless; one that sets
    // an address is refused.
    let mut h = api.get("h").await.unwrap();
    h.spec.as_mut().unwrap().cluster_ip = None;
    h.spec.as_mut().unwrap().cluster_ips = None;
    let h = api.replace("h", &pp, &h).await.unwrap();
    assert_eq!(h.spec.as_ref().unwrap().cluster_ip.as_deref(), Some("None"));
    let mut h2 = h.clone();
    h2.spec.as_mut().unwrap().cluster_ip = Some(nth(&range, 5));
    h2.spec.as_mut().unwrap().cluster_ips = None;
    let m = invalid(api.replace("h", &pp, &h2).await);
    assert!(m.ends_with("field is immutable"), "{m}");
    sb.shutdown().await;
}
