//! HorizontalPodAutoscalers driven over the API with kube-rs, as a baton
//! profile drives them: the simulated CPU utilisation is a JSON merge
//! patch of the HPA's `sandbox.baton.dev/cpu-utilization` annotation, and
//! the HPA resizes its Deployment, in the middle of a rollout too.
//! Every wait is bounded and waits for a state, never for a duration.

mod api_support;

use std::future::Future;
use std::time::Duration;

use api_support::*;
use baton_sandbox::{ClusterConfig, Sandbox, SandboxConfig};
use futures::StreamExt;
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::core::v1::{Event, Pod};
use kube::api::{ListParams, Patch, PatchParams, PostParams, WatchEvent, WatchParams};
use kube::{Api, Client};
use serde_json::{Value, json};

const CPU: &str = "sandbox.baton.dev/cpu-utilization";

/// An empty sandbox whose HPAs sync every 200 ms.
async fn sandbox() -> Sandbox {
    start(SandboxConfig {
        cluster: ClusterConfig {
            hpa_sync_period: Duration::from_millis(200),
            propagation_delay: Duration::from_millis(100),
            ..SandboxConfig::default().cluster
        },
        ..SandboxConfig::default()
    })
    .await
}

/// A Deployment `name` (label `app: name`), RollingUpdate surge 1 /
/// unavailable 0, Pods requesting `cpu` when given.
fn deployment(name: &str, replicas: i32, cpu: Option<&str>) -> Deployment {
    let mut c = json!({"name": "nginx", "image": "nginx:1.27", "ports": [{"containerPort": 80}]});
    if let Some(cpu) = cpu {
        c["resources"] = json!({"requests": {"cpu": cpu}});
    }
    serde_json::from_value(json!({
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}},
            "template": {"metadata": {"labels": {"app": name}}, "spec": {"containers": [c]}},
        },
    }))
    .unwrap()
}

/// An HPA on Deployment `name`: cpu `averageUtilization` 50, the given
/// scale-down window, the utilisation annotation when given.
fn hpa(
    name: &str,
    min: i32,
    max: i32,
    down_window: i32,
    util: Option<&str>,
) -> HorizontalPodAutoscaler {
    let mut meta = json!({"name": name});
    if let Some(u) = util {
        meta["annotations"] = json!({CPU: u});
    }
    serde_json::from_value(json!({
        "metadata": meta,
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": name},
            "minReplicas": min,
            "maxReplicas": max,
            "metrics": [{"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 50}}}],
            "behavior": {"scaleDown": {"stabilizationWindowSeconds": down_window}},
        },
    }))
    .unwrap()
}

/// What a profile's `patch` step sends: a JSON merge patch of the
/// annotation.
async fn set_utilization(hpas: &Api<HorizontalPodAutoscaler>, name: &str, percent: &str) {
    hpas.patch(
        name,
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"annotations": {CPU: percent}}})),
    )
    .await
    .expect("merge patch of the HPA's annotations");
}

/// Polls `f` until it holds; panics after 90 s (a safety net, not a
/// speed assertion).
async fn eventually<F, Fut>(what: &str, mut f: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    for _ in 0..900 {
        if f().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("timed out waiting for {what}");
}

async fn replicas(deps: &Api<Deployment>, name: &str) -> i32 {
    deps.get(name).await.unwrap().spec.replicas.unwrap_or(1)
}

fn condition<'a>(h: &'a HorizontalPodAutoscaler, ty: &str) -> Option<(&'a str, &'a str)> {
    let c = h
        .status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == ty)?;
    Some((c.status.as_str(), c.reason.as_deref().unwrap_or("")))
}

/// The Events about HPA `name` with `reason`.
async fn hpa_events(client: &Client, name: &str, reason: &str) -> Vec<Event> {
    let events: Api<Event> = Api::namespaced(client.clone(), "default");
    let lp = ListParams::default().fields(&format!(
        "involvedObject.name={name},involvedObject.kind=HorizontalPodAutoscaler,reason={reason}"
    ));
    events.list(&lp).await.unwrap().items
}

fn messages(evs: &[Event]) -> Vec<String> {
    evs.iter().filter_map(|e| e.message.clone()).collect()
}

fn active_pods(pods: &[Pod], prefix: &str) -> usize {
    pods.iter()
        .filter(|p| {
            p.metadata.deletion_timestamp.is_none()
                && p.metadata
                    .name
                    .as_deref()
                    .is_some_and(|n| n.starts_with(prefix))
        })
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_hpa_scales_up_at_200_percent_of_a_50_percent_target_and_down_when_the_metric_drops() {
    let sb = sandbox().await;
    let client = client(&sb).await;
    let deps: Api<Deployment> = Api::namespaced(client.clone(), "default");
    let hpas: Api<HorizontalPodAutoscaler> = Api::namespaced(client.clone(), "default");
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    let pp = PostParams::default();
    deps.create(&pp, &deployment("web", 2, Some("100m")))
        .await
        .unwrap();
    hpas.create(&pp, &hpa("web", 2, 6, 0, Some("200")))
        .await
        .unwrap();

    // ceil(2 × 200/50) = 8; the default scale-up policies allow
    // max(2 + 4, 2 × 2) = 6 at once, maxReplicas 6 too.
    eventually("the Deployment at 6", || async {
        replicas(&deps, "web").await == 6
    })
    .await;
    eventually("the HPA's status at 6 replicas, 200 %", || async {
        let h = hpas.get("web").await.unwrap();
        let Some(s) = h.status.as_ref() else {
            return false;
        };
        s.current_replicas == Some(6)
            && s.desired_replicas == 6
            && condition(&h, "ScalingLimited") == Some(("True", "TooManyReplicas"))
    })
    .await;
    let h = hpas.get("web").await.unwrap();
    let st = h.status.clone().unwrap();
    assert!(st.last_scale_time.is_some());
    assert_eq!(
        serde_json::to_value(&st.current_metrics).unwrap(),
        json!([{"type": "Resource", "resource": {"name": "cpu", "current": {"averageUtilization": 200, "averageValue": "200m"}}}])
    );
    assert_eq!(condition(&h, "AbleToScale").map(|c| c.0), Some("True"));
    assert_eq!(
        condition(&h, "ScalingActive"),
        Some(("True", "ValidMetricFound"))
    );
    let up = hpa_events(&client, "web", "SuccessfulRescale").await;
    assert_eq!(
        messages(&up),
        ["New size: 6; reason: cpu resource utilization (percentage of request) above target"]
    );
    assert_eq!(up[0].type_.as_deref(), Some("Normal"));
    assert_eq!(
        up[0].source.as_ref().and_then(|s| s.component.as_deref()),
        Some("horizontal-pod-autoscaler")
    );
    assert_eq!(up[0].involved_object.uid, h.metadata.uid);
    // The same object through autoscaling/v1, as older kubectls read it.
    let (code, v1) = raw(
        &sb,
        "GET",
        "/apis/autoscaling/v1/namespaces/default/horizontalpodautoscalers/web",
        "application/json",
        b"",
    )
    .await;
    assert_eq!(code, 200, "{v1}");
    assert_eq!(v1["spec"]["targetCPUUtilizationPercentage"], 50);
    assert_eq!(v1["status"]["currentCPUUtilizationPercentage"], 200);

    // At the target: no change. Then half the target: ceil(6 × 0.5) = 3,
    // at once (window 0).
    set_utilization(&hpas, "web", "50").await;
    eventually("the HPA to read 50 %", || async {
        let h = hpas.get("web").await.unwrap();
        h.status.and_then(|s| s.current_metrics).is_some_and(|m| {
            m[0].resource.as_ref().unwrap().current.average_utilization == Some(50)
        })
    })
    .await;
    assert_eq!(replicas(&deps, "web").await, 6, "within the tolerance");
    set_utilization(&hpas, "web", "25").await;
    eventually("the Deployment at 3", || async {
        replicas(&deps, "web").await == 3
    })
    .await;
    let all = messages(&hpa_events(&client, "web", "SuccessfulRescale").await);
    assert!(
        all.contains(&"New size: 3; reason: All metrics below target".to_string()),
        "{all:?}"
    );
    // The surplus Pods went the ordinary way: deleted, then gone.
    eventually("3 Pods left", || async {
        active_pods(
            &pods.list(&ListParams::default()).await.unwrap().items,
            "web-",
        ) == 3
    })
    .await;
    sb.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scale_down_window_holds_the_size_that_a_zero_window_drops_at_once() {
    let sb = sandbox().await;
    let client = client(&sb).await;
    let deps: Api<Deployment> = Api::namespaced(client.clone(), "default");
    let hpas: Api<HorizontalPodAutoscaler> = Api::namespaced(client.clone(), "default");
    let pp = PostParams::default();
    for name in ["fast", "slow"] {
        deps.create(&pp, &deployment(name, 4, Some("100m")))
            .await
            .unwrap();
    }
    hpas.create(&pp, &hpa("fast", 1, 10, 0, Some("50")))
        .await
        .unwrap();
    hpas.create(&pp, &hpa("slow", 1, 10, 6, Some("50")))
        .await
        .unwrap();
    eventually("both HPAs steady at 4", || async {
        let mut ok = true;
        for n in ["fast", "slow"] {
            let h = hpas.get(n).await.unwrap();
            ok &= condition(&h, "ScalingActive") == Some(("True", "ValidMetricFound"));
        }
        ok
    })
    .await;
    // Every write to the slow HPA from here on, in order.
    let rv = hpas
        .get("slow")
        .await
        .unwrap()
        .metadata
        .resource_version
        .unwrap();
    let mut watch = hpas
        .watch(&WatchParams::default().fields("metadata.name=slow"), &rv)
        .await
        .unwrap()
        .boxed();

    set_utilization(&hpas, "fast", "25").await;
    set_utilization(&hpas, "slow", "25").await;
    // ceil(4 × 0.5) = 2 for both; only the zero window acts at once.
    eventually("fast at 2", || async { replicas(&deps, "fast").await == 2 }).await;
    eventually("slow at 2", || async { replicas(&deps, "slow").await == 2 }).await;

    // The slow HPA held its size, saying why, before it let go.
    let mut held = false;
    while let Some(ev) = watch.next().await {
        let WatchEvent::Modified(h) = ev.unwrap() else {
            continue;
        };
        let s = h.status.clone().unwrap_or_default();
        if condition(&h, "AbleToScale") == Some(("True", "ScaleDownStabilized")) {
            assert_eq!(s.current_replicas, Some(4));
            assert_eq!(s.desired_replicas, 4, "the highest recent recommendation");
            held = true;
        }
        if s.desired_replicas == 2 {
            break;
        }
    }
    assert!(held, "the slow HPA never reported ScaleDownStabilized");
    // And the zero window's rescale came first.
    let rv_of = |evs: Vec<Event>| -> u64 {
        evs.iter()
            .find(|e| e.message.as_deref() == Some("New size: 2; reason: All metrics below target"))
            .and_then(|e| e.metadata.resource_version.as_deref()?.parse().ok())
            .expect("a SuccessfulRescale to 2")
    };
    let fast = rv_of(hpa_events(&client, "fast", "SuccessfulRescale").await);
    let slow = rv_of(hpa_events(&client, "slow", "SuccessfulRescale").await);
    assert!(fast < slow, "fast rescaled at rv {fast}, slow at {slow}");
    sb.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_metric_or_a_cpu_request_the_hpa_says_why_and_does_not_scale() {
    let sb = sandbox().await;
    let client = client(&sb).await;
    let deps: Api<Deployment> = Api::namespaced(client.clone(), "default");
    let hpas: Api<HorizontalPodAutoscaler> = Api::namespaced(client.clone(), "default");
    let pp = PostParams::default();
    deps.create(&pp, &deployment("web", 3, Some("100m")))
        .await
        .unwrap();
    deps.create(&pp, &deployment("bare", 3, None))
        .await
        .unwrap();
    hpas.create(&pp, &hpa("web", 1, 10, 0, None)).await.unwrap();
    hpas.create(&pp, &hpa("bare", 1, 10, 0, Some("200")))
        .await
        .unwrap();

    let why = |name: &'static str| {
        let hpas = hpas.clone();
        async move {
            let h = hpas.get(name).await.unwrap();
            let c = h
                .status?
                .conditions?
                .into_iter()
                .find(|c| c.type_ == "ScalingActive")?;
            (c.status == "False" && c.reason.as_deref() == Some("FailedGetResourceMetric"))
                .then(|| c.message.unwrap_or_default())
        }
    };
    eventually("web: no metric", || async { why("web").await.is_some() }).await;
    let msg = why("web").await.unwrap();
    assert!(
        msg.contains(
            "unable to get metrics for resource cpu: no metrics returned from resource metrics API"
        ) && msg.contains(CPU),
        "{msg}"
    );
    // Pods exist only once the ReplicaSet made them; then the request is
    // what is missing.
    eventually("bare: no request", || async {
        why("bare")
            .await
            .is_some_and(|m| m.contains("missing request for cpu in container nginx of Pod bare-"))
    })
    .await;
    let warnings = hpa_events(&client, "web", "FailedGetResourceMetric").await;
    assert_eq!(warnings[0].type_.as_deref(), Some("Warning"));
    assert!(
        !hpa_events(&client, "web", "FailedComputeMetricsReplicas")
            .await
            .is_empty()
    );
    for name in ["web", "bare"] {
        let d = deps.get(name).await.unwrap();
        assert_eq!(d.spec.replicas, Some(3), "{name}");
        assert_eq!(d.metadata.generation, Some(1), "{name}: never rescaled");
        assert!(
            hpa_events(&client, name, "SuccessfulRescale")
                .await
                .is_empty()
        );
    }
    // A metric arriving later is acted on.
    set_utilization(&hpas, "web", "100").await;
    eventually("web at 6", || async { replicas(&deps, "web").await == 6 }).await;
    sb.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_hpa_resizes_a_stalled_rollout_proportionally_and_old_pods_leave_gracefully() {
    let sb = sandbox().await;
    let client = client(&sb).await;
    let deps: Api<Deployment> = Api::namespaced(client.clone(), "default");
    let rss: Api<ReplicaSet> = Api::namespaced(client.clone(), "default");
    let hpas: Api<HorizontalPodAutoscaler> = Api::namespaced(client.clone(), "default");
    let pp = PostParams::default();
    deps.create(&pp, &deployment("web", 4, Some("100m")))
        .await
        .unwrap();
    eventually("4 available", || async {
        let d = deps.get("web").await.unwrap();
        d.status.and_then(|s| s.available_replicas) == Some(4)
    })
    .await;
    // v2 never gets ready (it would listen after 10 minutes): with
    // maxUnavailable 0 the rollout stays at old 4 + new 1.
    deps.patch(
        "web",
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"template": {
            "metadata": {"annotations": {"sandbox.baton.dev/startup-delay": "600s"}},
            "spec": {"containers": [{"name": "nginx", "image": "nginx:1.28", "ports": [{"containerPort": 80}],
                "resources": {"requests": {"cpu": "100m"}}}]}}}})),
    )
    .await
    .unwrap();
    let sizes = || async {
        let mut by_rev: Vec<(String, i32, String)> = rss
            .list(&ListParams::default())
            .await
            .unwrap()
            .items
            .into_iter()
            .map(|r| {
                let rev =
                    r.metadata.annotations.as_ref().unwrap()["deployment.kubernetes.io/revision"]
                        .clone();
                (rev, r.spec.replicas.unwrap_or(1), r.metadata.name.unwrap())
            })
            .collect();
        by_rev.sort();
        by_rev
    };
    let shape = |want: [i32; 2]| async move {
        let s = sizes().await;
        s.len() == 2 && s[0].1 == want[0] && s[1].1 == want[1]
    };
    eventually("old 4 + new 1", || shape([4, 1])).await;

    // 200 % of 50 %: ceil(4 × 4) = 16, the scale-up policies allow 8, so
    // does maxReplicas. 9 allowed Pods (8 + surge 1) shared in proportion
    // to 4 : 1 of 5: old 4·9/5 = 7.2 → 7, new 1·9/5 = 1.8 → 2.
    hpas.create(&pp, &hpa("web", 2, 8, 0, Some("200")))
        .await
        .unwrap();
    eventually("the Deployment at 8", || async {
        replicas(&deps, "web").await == 8
    })
    .await;
    eventually("old 7 + new 2", || shape([7, 2])).await;
    eventually("the 7 old Pods serving", || async {
        let d = deps.get("web").await.unwrap();
        d.status.and_then(|s| s.available_replicas) == Some(7)
    })
    .await;

    // 10 %: ceil(8 × 0.2) = 2 = minReplicas; 3 allowed Pods in proportion
    // to 7 : 2 of 9: old 7·3/9 = 2.3 → 2, new 2·3/9 = 0.7 → 1.
    let before = sb.ground_truth().pod_moments().len();
    set_utilization(&hpas, "web", "10").await;
    eventually("the Deployment at 2", || async {
        replicas(&deps, "web").await == 2
    })
    .await;
    eventually("old 2 + new 1", || shape([2, 1])).await;
    let s = sizes().await;
    let old_rs = format!("{}-", s[0].2);
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    eventually("5 old Pods gone", || async {
        let all = pods.list(&ListParams::default()).await.unwrap().items;
        all.iter()
            .filter(|p| {
                p.metadata
                    .name
                    .as_deref()
                    .is_some_and(|n| n.starts_with(&old_rs))
            })
            .count()
            == 2
    })
    .await;
    // They went through the kubelet's graceful stop, as any deleted Pod.
    let deleting: Vec<String> = sb.ground_truth().pod_moments()[before..]
        .iter()
        .filter(|m| m.pod.starts_with(&old_rs))
        .filter(|m| serde_json::to_value(m.kind).unwrap() == "deleting")
        .map(|m| m.pod.clone())
        .collect();
    assert_eq!(deleting.len(), 5, "{deleting:?}");
    let d = deps.get("web").await.unwrap();
    assert_eq!(
        d.metadata.annotations.as_ref().unwrap()["deployment.kubernetes.io/revision"],
        "2",
        "still the same rollout"
    );
    sb.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_nginx_hpa_example_is_steady_at_start() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../deploy/examples/nginx-hpa.yaml"
    );
    let text = std::fs::read_to_string(path).unwrap();
    let mut manifests = Vec::new();
    for doc in serde_norway::Deserializer::from_str(&text) {
        let mut m: Value = serde::Deserialize::deserialize(doc).unwrap();
        // As baton hands a manifest to the sandbox: no ConfigMap, and
        // nodePort 30080 left to the sandbox to pick.
        if m["kind"] == "ConfigMap" {
            continue;
        }
        if m["kind"] == "Service" {
            m["spec"]["ports"][0]
                .as_object_mut()
                .unwrap()
                .remove("nodePort");
        }
        manifests.push(m);
    }
    let sb = start(SandboxConfig {
        manifests,
        cluster: ClusterConfig {
            hpa_sync_period: Duration::from_millis(200),
            ..SandboxConfig::default().cluster
        },
        ..SandboxConfig::default()
    })
    .await;
    let client = client(&sb).await;
    let hpas: Api<HorizontalPodAutoscaler> = Api::namespaced(client.clone(), "default");
    let deps: Api<Deployment> = Api::namespaced(client.clone(), "default");
    eventually("the example HPA reading 50 % of 50 %", || async {
        let h = hpas.get("web-server").await.unwrap();
        condition(&h, "ScalingActive") == Some(("True", "ValidMetricFound"))
            && condition(&h, "ScalingLimited") == Some(("False", "DesiredWithinRange"))
    })
    .await;
    assert_eq!(replicas(&deps, "web-server").await, 3);
    assert!(
        hpa_events(&client, "web-server", "SuccessfulRescale")
            .await
            .is_empty()
    );
    let h = hpas.get("web-server").await.unwrap();
    let down = h.spec.behavior.unwrap().scale_down.unwrap();
    assert_eq!(down.stabilization_window_seconds, Some(0));
    sb.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_side_apply_of_the_hpa_manifest_moves_the_metric_as_an_apply_step_does() {
    use kube::api::{DynamicObject, GroupVersionKind};
    let sb = sandbox().await;
    let client = client(&sb).await;
    let deps: Api<Deployment> = Api::namespaced(client.clone(), "default");
    deps.create(&PostParams::default(), &deployment("web", 2, Some("100m")))
        .await
        .unwrap();
    // baton's `apply` step: discovery, then a forced server-side apply of
    // each document through the dynamic API.
    let gvk = GroupVersionKind::gvk("autoscaling", "v2", "HorizontalPodAutoscaler");
    let (ar, _) = kube::discovery::pinned_kind(&client, &gvk).await.unwrap();
    let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), "default", &ar);
    let manifest = |util: &str| {
        let mut m = serde_json::to_value(hpa("web", 2, 6, 0, Some(util))).unwrap();
        m["apiVersion"] = json!("autoscaling/v2");
        m["kind"] = json!("HorizontalPodAutoscaler");
        m
    };
    let apply = |m: Value| {
        let api = api.clone();
        async move {
            api.patch(
                "web",
                &PatchParams::apply("baton").force(),
                &Patch::Apply(&m),
            )
            .await
            .unwrap();
        }
    };
    apply(manifest("50")).await;
    apply(manifest("150")).await;
    // ceil(2 × 150/50) = 6.
    eventually("the Deployment at 6", || async {
        replicas(&deps, "web").await == 6
    })
    .await;
    sb.shutdown().await;
}
