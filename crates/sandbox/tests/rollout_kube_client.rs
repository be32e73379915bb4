//! The seed scenario driven over the API with kube-rs, as baton drives a
//! real cluster: `set image` (strategic merge patch), a Pod watcher sampling
//! every change, `rollout status`'s rule, and `rollout undo` done the way
//! kubectl does it (the old ReplicaSet's template copied back by JSON patch).

use std::collections::HashMap;
use std::time::Duration;

use baton_sandbox::config::SandboxConfig;
use baton_sandbox::sandbox::Sandbox;
use futures::StreamExt;
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::Pod;
use kube::api::{ListParams, Patch, PatchParams};
use kube::runtime::watcher;
use kube::{Api, Client};

fn revision(meta: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta) -> Option<String> {
    meta.annotations
        .as_ref()?
        .get("deployment.kubernetes.io/revision")
        .cloned()
}

fn complete(d: &Deployment) -> bool {
    let Some(s) = d.status.as_ref() else {
        return false;
    };
    let want = d.spec.replicas.unwrap_or(1);
    d.metadata.generation.unwrap_or(0) <= s.observed_generation.unwrap_or(0)
        && s.updated_replicas.unwrap_or(0) >= want
        && s.replicas.unwrap_or(0) <= s.updated_replicas.unwrap_or(0)
        && s.available_replicas.unwrap_or(0) >= s.updated_replicas.unwrap_or(0)
}

fn ready(p: &Pod) -> bool {
    p.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

async fn wait_complete(api: &Api<Deployment>, name: &str) -> Deployment {
    for _ in 0..1200 {
        if let Ok(d) = api.get(name).await
            && complete(&d)
        {
            return d;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let d = api.get(name).await.ok();
    panic!(
        "rollout of {name} did not complete (safety net): generation {:?} status {:#?}",
        d.as_ref().and_then(|d| d.metadata.generation),
        d.and_then(|d| d.status)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kube_client_rollout_and_undo_keep_the_bounds_and_number_revisions() {
    let mut cfg = SandboxConfig::seed();
    cfg.cluster.propagation_delay = Duration::from_millis(200);
    let sb = Sandbox::start(cfg).await.expect("sandbox starts");
    let kc = kube::config::Kubeconfig::read_from(sb.kubeconfig_path()).expect("kubeconfig");
    let kcfg =
        kube::Config::from_custom_kubeconfig(kc, &kube::config::KubeConfigOptions::default())
            .await
            .expect("client config");
    let client = Client::try_from(kcfg).expect("client");
    let deploys: Api<Deployment> = Api::namespaced(client.clone(), "default");
    let rss: Api<ReplicaSet> = Api::namespaced(client.clone(), "default");
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");

    let d0 = wait_complete(&deploys, "web-server").await;
    assert_eq!(revision(&d0.metadata).as_deref(), Some("1"));

    // The watcher: (max active pods, min ready active pods) over the rollouts.
    let (tx, mut rx) = tokio::sync::watch::channel((0usize, usize::MAX, 0usize));
    let watch_task = tokio::spawn(async move {
        let mut state: HashMap<String, (bool, bool)> = HashMap::new();
        let mut stream = watcher(pods, watcher::Config::default()).boxed();
        let mut initialised = false;
        while let Some(ev) = stream.next().await {
            match ev {
                Ok(watcher::Event::Apply(p)) | Ok(watcher::Event::InitApply(p)) => {
                    let name = p.metadata.name.clone().unwrap_or_default();
                    state.insert(name, (p.metadata.deletion_timestamp.is_some(), ready(&p)));
                }
                Ok(watcher::Event::Delete(p)) => {
                    state.remove(&p.metadata.name.clone().unwrap_or_default());
                }
                Ok(watcher::Event::InitDone) => initialised = true,
                Ok(watcher::Event::Init) => state.clear(),
                Err(e) => panic!("watch failed: {e}"),
            }
            if !initialised {
                continue;
            }
            let active = state.values().filter(|(t, _)| !t).count();
            let ready_n = state.values().filter(|(t, r)| !t && *r).count();
            tx.send_modify(|(max, min, n)| {
                *max = (*max).max(active);
                *min = (*min).min(ready_n);
                *n += 1;
            });
        }
    });
    // Until the watcher has its initial list.
    for _ in 0..200 {
        if rx.borrow_and_update().2 > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }

    // kubectl set image deployment/web-server nginx=nginx:1.28
    let patch = serde_json::json!({"spec": {"template": {"spec": {"containers": [{"name": "nginx", "image": "nginx:1.28"}]}}}});
    deploys
        .patch(
            "web-server",
            &PatchParams::default(),
            &Patch::Strategic(patch),
        )
        .await
        .expect("set image");
    tokio::time::sleep(Duration::from_millis(100)).await;
    let d = wait_complete(&deploys, "web-server").await;
    assert_eq!(revision(&d.metadata).as_deref(), Some("2"));
    let list = rss
        .list(&ListParams::default())
        .await
        .expect("list rs")
        .items;
    let v1 = list
        .iter()
        .find(|r| revision(&r.metadata).as_deref() == Some("1"))
        .expect("rev 1 rs");
    assert_eq!(v1.spec.replicas, Some(0), "old ReplicaSet scaled to 0");

    // kubectl rollout undo: the revision-1 template, without the hash label.
    let mut t = v1.spec.template.clone().expect("template");
    if let Some(l) = t.metadata.as_mut().and_then(|m| m.labels.as_mut()) {
        l.remove("pod-template-hash");
    }
    // (kubectl sends a JSON patch replacing /spec/template; a PUT of the
    // whole object with that template is the same change.)
    let mut cur = deploys.get("web-server").await.expect("get");
    cur.spec.template = t;
    deploys
        .replace("web-server", &Default::default(), &cur)
        .await
        .expect("undo");
    tokio::time::sleep(Duration::from_millis(100)).await;
    let d = wait_complete(&deploys, "web-server").await;
    assert_eq!(revision(&d.metadata).as_deref(), Some("3"));
    let list = rss
        .list(&ListParams::default())
        .await
        .expect("list rs")
        .items;
    let back = list
        .iter()
        .find(|r| revision(&r.metadata).as_deref() == Some("3"))
        .expect("rev 3 rs");
    assert_eq!(
        back.metadata.name, v1.metadata.name,
        "undo reuses v1's ReplicaSet"
    );
    assert_eq!(
        back.spec
            .template
            .as_ref()
            .unwrap()
            .spec
            .as_ref()
            .unwrap()
            .containers[0]
            .image
            .as_deref(),
        Some("nginx:1.27")
    );

    // Let the last old Pods go, then read the watcher's extremes.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (max_active, min_ready, samples) = *rx.borrow();
    watch_task.abort();
    sb.shutdown().await;
    assert!(
        samples > 10,
        "the watcher saw the rollouts ({samples} samples)"
    );
    assert!(
        max_active <= 4,
        "never more than replicas + maxSurge pods: {max_active}"
    );
    assert!(min_ready >= 3, "never fewer than 3 ready pods: {min_ready}");
}
