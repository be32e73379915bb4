//! Several Nodes, cordon, PodDisruptionBudgets and the Eviction API, over
//! real HTTP against a started sandbox (kube-rs and raw requests), as a
//! node drain exercises them.

mod api_support;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use api_support::*;
use baton_sandbox::{Sandbox, SandboxConfig};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Event, Node, Pod};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use kube::Api;
use kube::api::{ListParams, Patch, PatchParams, PostParams};
use serde_json::{Value, json};

/// A Deployment `web` of `replicas` (label `app=web`), ready as soon as it
/// listens, with a 1 s preStop sleep and a 5 s grace period.
fn web(replicas: i32) -> Value {
    json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "default"},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {
                    "terminationGracePeriodSeconds": 5,
                    "containers": [{
                        "name": "nginx", "image": "nginx:1.27",
                        "ports": [{"containerPort": 80}],
                        "lifecycle": {"preStop": {"exec": {"command": ["sleep", "1"]}}},
                    }],
                },
            },
        },
    })
}

fn pdb(name: &str, spec: Value) -> Value {
    let mut spec = spec;
    spec["selector"] = json!({"matchLabels": {"app": "web"}});
    json!({"apiVersion": "policy/v1", "kind": "PodDisruptionBudget",
           "metadata": {"name": name, "namespace": "default"}, "spec": spec})
}

async fn sandbox(nodes: usize, manifests: Vec<Value>) -> Sandbox {
    let mut cfg = SandboxConfig::default();
    cfg.cluster.nodes = nodes;
    cfg.cluster.propagation_delay = Duration::from_millis(100);
    cfg.manifests = manifests;
    start(cfg).await
}

/// Polls `f` every 100 ms until it gives `Some`, for at most `secs`.
async fn eventually<T>(what: &str, secs: u64, mut f: impl AsyncFnMut() -> Option<T>) -> T {
    for _ in 0..secs * 10 {
        if let Some(v) = f().await {
            return v;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("timed out waiting for {what}")
}

fn is_ready(p: &Pod) -> bool {
    p.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

fn node_of(p: &Pod) -> Option<String> {
    p.spec.as_ref().and_then(|s| s.node_name.clone())
}

/// The `web` Pods once `n` of them are Ready and none is terminating.
async fn ready_pods(pods: &Api<Pod>, n: usize) -> Vec<Pod> {
    eventually(&format!("{n} ready pods"), 60, async || {
        let l = pods
            .list(&ListParams::default().labels("app=web"))
            .await
            .ok()?;
        let live: Vec<Pod> = l
            .items
            .into_iter()
            .filter(|p| p.metadata.deletion_timestamp.is_none())
            .collect();
        (live.len() == n && live.iter().all(is_ready)).then_some(live)
    })
    .await
}

/// The budget once its controller has written `disruptionsAllowed == allowed`.
async fn budget(api: &Api<PodDisruptionBudget>, name: &str, allowed: i32) -> PodDisruptionBudget {
    eventually(&format!("{name} allowing {allowed}"), 60, async || {
        let b = api.get(name).await.ok()?;
        (b.status.as_ref()?.disruptions_allowed == Some(allowed)).then_some(b)
    })
    .await
}

async fn evict(sb: &Sandbox, pod: &str) -> (u16, Value) {
    let body = json!({"apiVersion": "policy/v1", "kind": "Eviction",
                      "metadata": {"name": pod, "namespace": "default"}});
    raw(
        sb,
        "POST",
        &format!("/api/v1/namespaces/default/pods/{pod}/eviction"),
        "application/json",
        body.to_string().as_bytes(),
    )
    .await
}

fn name(p: &Pod) -> String {
    p.metadata.name.clone().unwrap()
}

#[tokio::test]
async fn one_node_keeps_its_historic_name() {
    let sb = sandbox(1, vec![web(1)]).await;
    let c = client(&sb).await;
    let nodes: Api<Node> = Api::all(c.clone());
    let names: Vec<String> = nodes
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .map(|n| n.metadata.name.unwrap())
        .collect();
    assert_eq!(names, ["sandbox-node"]);
    let pods = ready_pods(&Api::default_namespaced(c), 1).await;
    assert_eq!(node_of(&pods[0]).as_deref(), Some("sandbox-node"));
    sb.shutdown().await;
}

#[tokio::test]
async fn pods_spread_over_three_nodes_one_each() {
    let sb = sandbox(3, vec![web(3)]).await;
    let c = client(&sb).await;
    let nodes: Api<Node> = Api::all(c.clone());
    let listed = nodes.list(&ListParams::default()).await.unwrap().items;
    assert_eq!(listed.len(), 3);
    for n in &listed {
        let cond = &n.status.as_ref().unwrap().conditions.as_ref().unwrap()[0];
        assert_eq!(
            (cond.type_.as_str(), cond.status.as_str()),
            ("Ready", "True")
        );
    }
    let pods = ready_pods(&Api::default_namespaced(c.clone()), 3).await;
    let on: BTreeSet<String> = pods.iter().filter_map(node_of).collect();
    assert_eq!(
        on,
        BTreeSet::from(["sandbox-node-1", "sandbox-node-2", "sandbox-node-3"].map(String::from))
    );
    for p in &pods {
        let scheduled = p.status.as_ref().unwrap().conditions.as_ref().unwrap();
        assert!(
            scheduled
                .iter()
                .any(|c| c.type_ == "PodScheduled" && c.status == "True")
        );
    }
    // The scheduler's and the kubelet's events name the Pod's own Node.
    let events = Api::<Event>::default_namespaced(c)
        .list(&ListParams::default())
        .await
        .unwrap()
        .items;
    for p in &pods {
        let (pod, node) = (name(p), node_of(p).unwrap());
        let about = |reason: &str| {
            events
                .iter()
                .find(|e| {
                    e.involved_object.name.as_deref() == Some(pod.as_str())
                        && e.reason.as_deref() == Some(reason)
                })
                .unwrap_or_else(|| panic!("{reason} event for {pod}"))
        };
        assert_eq!(
            about("Scheduled").message.as_deref(),
            Some(format!("Successfully assigned default/{pod} to {node}").as_str())
        );
        let started = about("Started");
        assert_eq!(
            started.source.as_ref().and_then(|s| s.host.as_deref()),
            Some(node.as_str())
        );
    }
    sb.shutdown().await;
}

#[tokio::test]
async fn a_cordoned_node_gets_no_new_pods_and_none_schedulable_leaves_pods_pending() {
    let sb = sandbox(2, vec![web(2)]).await;
    let c = client(&sb).await;
    let nodes: Api<Node> = Api::all(c.clone());
    let pods: Api<Pod> = Api::default_namespaced(c.clone());
    ready_pods(&pods, 2).await;
    // What kubectl cordon sends.
    let cordon = |on: bool| {
        let nodes = nodes.clone();
        async move {
            let v = if on { json!(true) } else { Value::Null };
            for n in ["sandbox-node-1", "sandbox-node-2"] {
                nodes
                    .patch(
                        n,
                        &PatchParams::default(),
                        &Patch::Strategic(json!({"spec": {"unschedulable": v}})),
                    )
                    .await
                    .unwrap();
            }
        }
    };
    nodes
        .patch(
            "sandbox-node-1",
            &PatchParams::default(),
            &Patch::Strategic(json!({"spec": {"unschedulable": true}})),
        )
        .await
        .unwrap();
    let deploys: Api<Deployment> = Api::default_namespaced(c.clone());
    deploys
        .patch(
            "web",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"replicas": 5}})),
        )
        .await
        .unwrap();
    let all = ready_pods(&pods, 5).await;
    let on_1 = all
        .iter()
        .filter(|p| node_of(p).as_deref() == Some("sandbox-node-1"))
        .count();
    assert_eq!(
        on_1, 1,
        "only the Pod from before the cordon runs on the cordoned node"
    );

    cordon(true).await;
    deploys
        .patch(
            "web",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"replicas": 6}})),
        )
        .await
        .unwrap();
    let pending = eventually("an unschedulable pod", 30, async || {
        let l = pods
            .list(&ListParams::default().labels("app=web"))
            .await
            .ok()?;
        l.items.into_iter().find(|p| {
            node_of(p).is_none()
                && p.status
                    .as_ref()
                    .and_then(|s| s.conditions.as_ref())
                    .is_some_and(|cs| {
                        cs.iter()
                            .any(|c| c.type_ == "PodScheduled" && c.status == "False")
                    })
        })
    })
    .await;
    let st = pending.status.as_ref().unwrap();
    assert_eq!(st.phase.as_deref(), Some("Pending"));
    let cond = &st.conditions.as_ref().unwrap()[0];
    assert_eq!(cond.reason.as_deref(), Some("Unschedulable"));
    assert_eq!(
        cond.message.as_deref(),
        Some(
            "0/2 nodes are available: 2 node(s) were unschedulable. preemption: 0/2 nodes are available: 2 Preemption is not helpful for scheduling."
        )
    );
    let events: Api<Event> = Api::default_namespaced(c.clone());
    let pending_name = name(&pending);
    eventually("a FailedScheduling event", 10, async || {
        let l = events.list(&ListParams::default()).await.ok()?;
        l.items.into_iter().find(|e| {
            e.reason.as_deref() == Some("FailedScheduling")
                && e.involved_object.name.as_deref() == Some(pending_name.as_str())
        })
    })
    .await;

    cordon(false).await;
    ready_pods(&pods, 6).await;
    sb.shutdown().await;
}

#[tokio::test]
async fn a_budgets_status_follows_readiness() {
    let sb = sandbox(3, vec![web(2), pdb("web-pdb", json!({"minAvailable": 2}))]).await;
    let c = client(&sb).await;
    let pods: Api<Pod> = Api::default_namespaced(c.clone());
    let pdbs: Api<PodDisruptionBudget> = Api::default_namespaced(c.clone());
    ready_pods(&pods, 2).await;
    let b = budget(&pdbs, "web-pdb", 0).await;
    let st = b.status.unwrap();
    assert_eq!(
        (st.current_healthy, st.desired_healthy, st.expected_pods),
        (Some(2), Some(2), Some(2))
    );
    assert_eq!(st.observed_generation, Some(1));
    let cond = &st.conditions.unwrap()[0];
    assert_eq!(
        (
            cond.type_.as_str(),
            cond.status.as_str(),
            cond.reason.as_str()
        ),
        ("DisruptionAllowed", "False", "InsufficientPods")
    );

    // A third Pod that never turns Ready (its probe port is closed) is
    // expected but not healthy.
    let never: Pod = serde_json::from_value(json!({
        "metadata": {"name": "never-ready", "labels": {"app": "web"}},
        "spec": {"containers": [{"name": "c", "image": "nginx:1.27",
            "readinessProbe": {"tcpSocket": {"port": 81}, "periodSeconds": 1}}]}}))
    .unwrap();
    pods.create(&PostParams::default(), &never).await.unwrap();
    let b = eventually("3 expected pods", 30, async || {
        let b = pdbs.get("web-pdb").await.ok()?;
        (b.status.as_ref()?.expected_pods == Some(3)).then_some(b)
    })
    .await;
    let st = b.status.unwrap();
    assert_eq!(
        (st.current_healthy, st.disruptions_allowed),
        (Some(2), Some(0))
    );

    Api::<Deployment>::default_namespaced(c.clone())
        .patch(
            "web",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"replicas": 3}})),
        )
        .await
        .unwrap();
    let b = budget(&pdbs, "web-pdb", 1).await;
    let st = b.status.unwrap();
    assert_eq!(
        (st.current_healthy, st.desired_healthy, st.expected_pods),
        (Some(3), Some(2), Some(4))
    );
    let cond = &st.conditions.unwrap()[0];
    assert_eq!(
        (cond.status.as_str(), cond.reason.as_str()),
        ("True", "SufficientPods")
    );
    sb.shutdown().await;
}

#[tokio::test]
async fn a_percentage_max_unavailable_rounds_up_over_the_deployments_replicas() {
    let sb = sandbox(
        3,
        vec![web(3), pdb("web-pdb", json!({"maxUnavailable": "25%"}))],
    )
    .await;
    let c = client(&sb).await;
    ready_pods(&Api::default_namespaced(c.clone()), 3).await;
    let b = budget(&Api::default_namespaced(c), "web-pdb", 1).await;
    let st = b.status.unwrap();
    assert_eq!(
        (st.expected_pods, st.desired_healthy, st.current_healthy),
        (Some(3), Some(2), Some(3))
    );
    sb.shutdown().await;
}

#[tokio::test]
async fn eviction_is_refused_with_429_and_the_kubernetes_message_when_no_disruption_is_allowed() {
    let sb = sandbox(2, vec![web(2), pdb("web-pdb", json!({"minAvailable": 2}))]).await;
    let c = client(&sb).await;
    let pods: Api<Pod> = Api::default_namespaced(c.clone());
    let victim = name(&ready_pods(&pods, 2).await[0]);
    budget(&Api::default_namespaced(c.clone()), "web-pdb", 0).await;
    let (code, status) = evict(&sb, &victim).await;
    assert_eq!(code, 429, "{status}");
    assert_eq!(status["kind"], "Status");
    assert_eq!(status["status"], "Failure");
    assert_eq!(status["reason"], "TooManyRequests");
    assert_eq!(status["code"], 429);
    assert_eq!(
        status["message"],
        "Cannot evict pod as it would violate the pod's disruption budget."
    );
    assert_eq!(
        status["details"]["causes"],
        json!([{"reason": "DisruptionBudget",
                "message": "The disruption budget web-pdb needs 2 healthy pods and has 2 currently"}])
    );
    let p = pods.get(&victim).await.unwrap();
    assert!(
        p.metadata.deletion_timestamp.is_none(),
        "the pod is left alone"
    );
    // (kube-rs's client retries 429s by itself, so raw HTTP shows the answer.)
    let truth = sb.ground_truth().evictions();
    assert_eq!(truth.len(), 1);
    assert_eq!(truth[0].pod, victim);
    assert_eq!(truth[0].pdb.as_deref(), Some("web-pdb"));
    assert_eq!(
        serde_json::to_value(truth[0].outcome).unwrap(),
        json!("refused")
    );
    sb.shutdown().await;
}

#[tokio::test]
async fn eviction_with_one_disruption_allowed_terminates_the_pod_gracefully() {
    let sb = sandbox(3, vec![web(3), pdb("web-pdb", json!({"minAvailable": 2}))]).await;
    let c = client(&sb).await;
    let pods: Api<Pod> = Api::default_namespaced(c.clone());
    let pdbs: Api<PodDisruptionBudget> = Api::default_namespaced(c.clone());
    let victim = name(&ready_pods(&pods, 3).await[0]);
    budget(&pdbs, "web-pdb", 1).await;
    let (code, status) = evict(&sb, &victim).await;
    assert_eq!(code, 201, "{status}");
    assert_eq!(status["status"], "Success");
    let p = pods.get(&victim).await.unwrap();
    assert!(p.metadata.deletion_timestamp.is_some());
    assert_eq!(p.metadata.deletion_grace_period_seconds, Some(5));
    // (That the disruption is taken at once is pinned down by the
    // back-to-back test: here the replacement Pod is Ready within
    // milliseconds and gives it back.)
    // The Pod runs its preStop hook, then closes, then is gone.
    eventually("the evicted pod gone", 30, async || {
        matches!(pods.get(&victim).await, Err(kube::Error::Api(ref s)) if s.code == 404)
            .then_some(())
    })
    .await;
    let moments: Vec<String> = sb
        .ground_truth()
        .pod_moments()
        .into_iter()
        .filter(|m| m.pod == victim)
        .map(|m| {
            serde_json::to_value(m.kind)
                .unwrap()
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(moments, ["started", "listening", "deleting", "closed"]);
    let truth = sb.ground_truth().evictions();
    assert_eq!(truth.len(), 1);
    assert_eq!(
        serde_json::to_value(truth[0].outcome).unwrap(),
        json!("evicted")
    );
    // The Deployment replaces it and the budget allows one again.
    ready_pods(&pods, 3).await;
    budget(&pdbs, "web-pdb", 1).await;
    sb.shutdown().await;
}

#[tokio::test]
async fn two_back_to_back_evictions_on_one_allowed_disruption_give_one_201_and_one_429() {
    let sb = sandbox(
        3,
        vec![web(3), pdb("web-pdb", json!({"maxUnavailable": 1}))],
    )
    .await;
    let c = client(&sb).await;
    let pods = ready_pods(&Api::default_namespaced(c.clone()), 3).await;
    budget(&Api::default_namespaced(c.clone()), "web-pdb", 1).await;
    let (first, second) = (name(&pods[0]), name(&pods[1]));
    let (a, b) = tokio::join!(evict(&sb, &first), evict(&sb, &second));
    let mut codes = [a.0, b.0];
    codes.sort();
    assert_eq!(codes, [201, 429], "{a:?} {b:?}");
    let outcomes: BTreeMap<String, String> = sb
        .ground_truth()
        .evictions()
        .into_iter()
        .map(|e| {
            (
                e.pod,
                serde_json::to_value(e.outcome)
                    .unwrap()
                    .as_str()
                    .unwrap()
                    .to_string(),
            )
        })
        .collect();
    let mut got: Vec<&str> = outcomes.values().map(String::as_str).collect();
    got.sort();
    assert_eq!(got, ["evicted", "refused"]);
    sb.shutdown().await;
}

#[tokio::test]
async fn a_pod_under_two_budgets_cannot_be_evicted_and_an_uncovered_one_can() {
    let sb = sandbox(
        2,
        vec![
            web(2),
            pdb("a", json!({"maxUnavailable": 1})),
            pdb("b", json!({"maxUnavailable": 1})),
        ],
    )
    .await;
    let c = client(&sb).await;
    let pods: Api<Pod> = Api::default_namespaced(c.clone());
    let victim = name(&ready_pods(&pods, 2).await[0]);
    budget(&Api::default_namespaced(c.clone()), "b", 1).await;
    let (code, status) = evict(&sb, &victim).await;
    assert_eq!(code, 500, "{status}");
    assert_eq!(status["reason"], "InternalError");
    assert_eq!(
        status["message"],
        "Internal error occurred: This pod has more than one PodDisruptionBudget, which the eviction subresource does not support."
    );
    let loner: Pod = serde_json::from_value(
        json!({"metadata": {"name": "loner", "labels": {"app": "other"}},
        "spec": {"containers": [{"name": "c", "image": "nginx:1.27"}]}}),
    )
    .unwrap();
    pods.create(&PostParams::default(), &loner).await.unwrap();
    eventually("loner running", 30, async || {
        let p = pods.get("loner").await.ok()?;
        is_ready(&p).then_some(())
    })
    .await;
    let (code, status) = evict(&sb, "loner").await;
    assert_eq!(code, 201, "{status}");
    let truth = sb.ground_truth().evictions();
    assert_eq!(truth[0].pdb.as_deref(), Some("a,b"));
    assert_eq!(truth[1].pdb, None);
    sb.shutdown().await;
}

#[tokio::test]
async fn discovery_serves_nodes_pdbs_and_the_eviction_subresource() {
    let sb = sandbox(1, vec![]).await;
    let (code, core) = raw(&sb, "GET", "/api/v1", "", b"").await;
    assert_eq!(code, 200);
    let find = |l: &Value, n: &str| {
        l["resources"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["name"] == n)
            .cloned()
            .unwrap_or_else(|| panic!("{n} served"))
    };
    assert_eq!(find(&core, "nodes")["namespaced"], false);
    let ev = find(&core, "pods/eviction");
    assert_eq!(
        (ev["group"].as_str(), ev["version"].as_str()),
        (Some("policy"), Some("v1"))
    );
    assert_eq!(ev["verbs"], json!(["create"]));
    let (code, policy) = raw(&sb, "GET", "/apis/policy/v1", "", b"").await;
    assert_eq!(code, 200);
    assert_eq!(
        find(&policy, "poddisruptionbudgets")["shortNames"],
        json!(["pdb"])
    );
    sb.shutdown().await;
}

#[tokio::test]
async fn watches_see_a_cordon_and_a_budgets_allowed_disruptions_change() {
    use futures::{StreamExt, TryStreamExt};
    use kube::api::{WatchEvent, WatchParams};
    let sb = sandbox(
        2,
        vec![web(2), pdb("web-pdb", json!({"maxUnavailable": 1}))],
    )
    .await;
    let c = client(&sb).await;
    let nodes: Api<Node> = Api::all(c.clone());
    let rv = nodes
        .list(&ListParams::default())
        .await
        .unwrap()
        .metadata
        .resource_version
        .unwrap();
    let mut node_events = nodes
        .watch(&WatchParams::default().disable_bookmarks(), &rv)
        .await
        .unwrap()
        .boxed();
    nodes
        .patch(
            "sandbox-node-2",
            &PatchParams::default(),
            &Patch::Strategic(json!({"spec": {"unschedulable": true}})),
        )
        .await
        .unwrap();
    let ev = tokio::time::timeout(Duration::from_secs(10), node_events.try_next())
        .await
        .expect("a node event in time")
        .unwrap()
        .unwrap();
    match ev {
        WatchEvent::Modified(n) => {
            assert_eq!(n.metadata.name.as_deref(), Some("sandbox-node-2"));
            assert_eq!(n.spec.unwrap().unschedulable, Some(true));
        }
        other => panic!("unexpected {other:?}"),
    }

    let pdbs: Api<PodDisruptionBudget> = Api::default_namespaced(c);
    let mut pdb_events = pdbs
        .watch(&WatchParams::default().disable_bookmarks(), "0")
        .await
        .unwrap()
        .boxed();
    eventually("a watched budget allowing 1", 60, async || {
        let ev = tokio::time::timeout(Duration::from_millis(100), pdb_events.try_next())
            .await
            .ok()?
            .ok()??;
        match ev {
            WatchEvent::Added(b) | WatchEvent::Modified(b) => {
                (b.status?.disruptions_allowed == Some(1)).then_some(())
            }
            _ => None,
        }
    })
    .await;
    sb.shutdown().await;
}
