//! Rollout steps, each doing to the Deployment what kubectl would do.
//!
//! `set_image` (kubectl set image), `patch_strategic` / [`patch`] (kubectl
//! patch, strategic by default), `restart`, `undo`, `pause`/`resume`
//! (kubectl rollout restart/undo/pause/resume), `scale` (kubectl scale,
//! through the scale subresource), `delete_pods` (kubectl delete pod) and
//! `wait_rollout` (kubectl rollout status's completion rule, see
//! [`super::rollout_status`]).
//!
//! Not for: the profile's step list and its order, stall handling and the
//! timeline (see [`super::steps`]).

use super::rollout_status::{RolloutStatus, rollout_status};
use super::selector;
use super::stall::{HASH_LABEL, REVISION_ANNOTATION, owned_by, revision};
use futures::StreamExt;
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::Pod;
use kube::api::{DeleteParams, ListParams, Patch, PatchParams};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

/// The field manager baton's writes are recorded under.
pub const FIELD_MANAGER: &str = "baton";

/// How long baton waits for a rollout it causes outside the measured one
/// (a matrix variant's setup, putting the Deployment back afterwards):
/// generous, since nothing is measured meanwhile and a slow image pull is
/// not a failure of the variant.
pub const SETUP_ROLLOUT_TIMEOUT: Duration = Duration::from_secs(180);

#[derive(Debug, thiserror::Error)]
pub enum RolloutError {
    #[error("deployment {name:?} not found in namespace {namespace:?}")]
    NotFound { name: String, namespace: String },
    #[error("{step} on deployment {name:?}: {source}")]
    Api {
        step: &'static str,
        name: String,
        source: kube::Error,
    },
    #[error("deployment {name:?} has no container named {container:?} (it has: {have})")]
    NoSuchContainer {
        name: String,
        container: String,
        have: String,
    },
    #[error("rollout of {name:?} stalled: {reason}")]
    Stalled { name: String, reason: String },
    #[error("rollout of {name:?} did not complete within {after:?}: {last}")]
    Timeout {
        name: String,
        after: Duration,
        last: String,
    },
    #[error("watching deployment {name:?}: {reason}")]
    Watch { name: String, reason: String },
    #[error("deployment {name:?} has several containers ({have}): say which one with `container:`")]
    WhichContainer { name: String, have: String },
    #[error("cannot {action} deployment {name:?}: it is paused (add a `resume: {{}}` step first)")]
    Paused { name: String, action: &'static str },
    #[error("deployment {name:?} has no earlier revision to undo to (revisions: {have})")]
    NoHistory { name: String, have: String },
    #[error("deployment {name:?} has no revision {revision} (revisions: {have})")]
    NoSuchRevision {
        name: String,
        revision: i64,
        have: String,
    },
    #[error("no pod of deployment {name:?} to delete{matching}")]
    NoPods { name: String, matching: String },
    #[error("{what}: {reason}")]
    Invalid { what: String, reason: String },
}

fn api_error(step: &'static str, name: &str, namespace: &str, e: kube::Error) -> RolloutError {
    match &e {
        kube::Error::Api(s) if s.code == 404 => RolloutError::NotFound {
            name: name.into(),
            namespace: namespace.into(),
        },
        _ => RolloutError::Api {
            step,
            name: name.into(),
            source: e,
        },
    }
}

/// `kubectl set image deployment/NAME CONTAINER=IMAGE`.
pub async fn set_image(
    api: &Api<Deployment>,
    namespace: &str,
    name: &str,
    container: &str,
    image: &str,
) -> Result<Deployment, RolloutError> {
    let current = api
        .get(name)
        .await
        .map_err(|e| api_error("set_image", name, namespace, e))?;
    let containers = container_names(&current);
    if !containers.contains(&container) {
        return Err(RolloutError::NoSuchContainer {
            name: name.into(),
            container: container.into(),
            have: containers.join(", "),
        });
    }
    let patch = serde_json::json!({
        "spec": {"template": {"spec": {"containers": [{"name": container, "image": image}]}}}
    });
    patch_strategic(api, namespace, name, &patch).await
}

/// A strategic merge patch, as `kubectl patch` sends by default.
pub async fn patch_strategic(
    api: &Api<Deployment>,
    namespace: &str,
    name: &str,
    patch: &serde_json::Value,
) -> Result<Deployment, RolloutError> {
    api.patch(
        name,
        &PatchParams {
            field_manager: Some(FIELD_MANAGER.into()),
            ..Default::default()
        },
        &Patch::Strategic(patch),
    )
    .await
    .map_err(|e| api_error("patch", name, namespace, e))
}

/// Wait until the rollout completes by kubectl's rule. `progress` hears
/// each new status message (for a status line). A stall (the Progressing
/// condition timing out) or `timeout` ends the wait with an error.
pub async fn wait_rollout(
    api: &Api<Deployment>,
    name: &str,
    timeout: Duration,
    mut progress: impl FnMut(&str),
) -> Result<(), RolloutError> {
    let cfg = watcher::Config::default().fields(&format!("metadata.name={name}"));
    let mut stream = std::pin::pin!(watcher(api.clone(), cfg).applied_objects());
    let mut last = String::from("no status seen yet");
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let next = tokio::time::timeout_at(deadline, stream.next()).await;
        let d = match next {
            Err(_) => {
                return Err(RolloutError::Timeout {
                    name: name.into(),
                    after: timeout,
                    last,
                });
            }
            Ok(None) => {
                return Err(RolloutError::Watch {
                    name: name.into(),
                    reason: "watch ended".into(),
                });
            }
            Ok(Some(Err(e))) => {
                // The watcher recovers by itself (re-list); note and go on.
                last = format!("watch error: {e}");
                continue;
            }
            Ok(Some(Ok(d))) => d,
        };
        match rollout_status(&d) {
            RolloutStatus::Complete => return Ok(()),
            RolloutStatus::DeadlineExceeded(reason) => {
                return Err(RolloutError::Stalled {
                    name: name.into(),
                    reason,
                });
            }
            RolloutStatus::Waiting(msg) => {
                if msg != last {
                    progress(&msg);
                    last = msg;
                }
            }
        }
    }
}

fn params() -> PatchParams {
    PatchParams {
        field_manager: Some(FIELD_MANAGER.into()),
        ..Default::default()
    }
}

async fn get(
    api: &Api<Deployment>,
    step: &'static str,
    namespace: &str,
    name: &str,
) -> Result<Deployment, RolloutError> {
    api.get(name)
        .await
        .map_err(|e| api_error(step, name, namespace, e))
}

/// The names of the containers of the Deployment's Pod template.
pub fn container_names(d: &Deployment) -> Vec<&str> {
    d.spec
        .template
        .spec
        .iter()
        .flat_map(|p| p.containers.iter())
        .map(|c| c.name.as_str())
        .collect()
}

/// The container a `set_image` without a container name means: the only
/// one the Pod template has.
pub fn only_container(d: &Deployment) -> Result<String, RolloutError> {
    let name = d.metadata.name.clone().unwrap_or_default();
    let containers = container_names(d);
    match containers.as_slice() {
        [one] => Ok(one.to_string()),
        _ => Err(RolloutError::WhichContainer {
            name,
            have: containers.join(", "),
        }),
    }
}

/// The flavour of a `kubectl patch --type`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PatchType {
    /// Strategic merge patch (kubectl's default): lists merged by key.
    #[default]
    Strategic,
    /// JSON merge patch (RFC 7386): lists replaced whole.
    Merge,
    /// JSON patch (RFC 6902): a list of operations.
    Json,
}

impl PatchType {
    pub fn as_str(self) -> &'static str {
        match self {
            PatchType::Strategic => "strategic",
            PatchType::Merge => "merge",
            PatchType::Json => "json",
        }
    }
}

/// `kubectl patch deployment NAME --type TYPE -p PATCH`.
pub async fn patch(
    client: &Client,
    namespace: &str,
    name: &str,
    kind: PatchType,
    patch: &serde_json::Value,
) -> Result<Deployment, RolloutError> {
    let api: Api<Deployment> = Api::namespaced(client.clone(), namespace);
    match kind {
        PatchType::Strategic => patch_strategic(&api, namespace, name, patch).await,
        PatchType::Merge => api
            .patch(name, &params(), &Patch::Merge(patch))
            .await
            .map_err(|e| api_error("patch", name, namespace, e)),
        PatchType::Json => json_patch(client, namespace, name, patch).await,
    }
}

/// A JSON patch (RFC 6902) on a Deployment, sent as is. (kube's typed
/// JSON patch needs an optional feature; the wire format is simple.)
async fn json_patch(
    client: &Client,
    namespace: &str,
    name: &str,
    ops: &serde_json::Value,
) -> Result<Deployment, RolloutError> {
    if !ops.is_array() {
        return Err(RolloutError::Invalid {
            what: format!("json patch of deployment {name:?}"),
            reason: "a JSON patch is a list of operations ({op, path, value})".into(),
        });
    }
    let url = format!(
        "/apis/apps/v1/namespaces/{namespace}/deployments/{name}?fieldManager={FIELD_MANAGER}"
    );
    let body = serde_json::to_vec(ops).expect("a JSON value serialises");
    let req = http::Request::patch(url)
        .header(http::header::CONTENT_TYPE, "application/json-patch+json")
        .header(http::header::ACCEPT, "application/json")
        .body(body)
        .expect("a valid request");
    client
        .request::<Deployment>(req)
        .await
        .map_err(|e| api_error("patch", name, namespace, e))
}

/// The annotation `kubectl rollout restart` stamps on the Pod template.
pub const RESTARTED_AT: &str = "kubectl.kubernetes.io/restartedAt";

/// `kubectl rollout restart deployment/NAME`: stamp the Pod template with
/// the time, so the template changes and a new revision rolls out.
pub async fn restart(
    api: &Api<Deployment>,
    namespace: &str,
    name: &str,
    at: SystemTime,
) -> Result<Deployment, RolloutError> {
    let current = get(api, "restart", namespace, name).await?;
    if current.spec.paused == Some(true) {
        return Err(RolloutError::Paused {
            name: name.into(),
            action: "restart",
        });
    }
    let stamp = humantime::format_rfc3339_seconds(at).to_string();
    let patch = serde_json::json!({
        "spec": {"template": {"metadata": {"annotations": {RESTARTED_AT: stamp}}}}
    });
    patch_strategic(api, namespace, name, &patch).await
}

/// `kubectl scale deployment/NAME --replicas=N`, through the scale
/// subresource (so it needs `patch deployments/scale`, as kubectl does).
pub async fn scale(
    api: &Api<Deployment>,
    namespace: &str,
    name: &str,
    replicas: i32,
) -> Result<(), RolloutError> {
    let patch = serde_json::json!({"spec": {"replicas": replicas}});
    api.patch_scale(name, &params(), &Patch::Merge(&patch))
        .await
        .map_err(|e| api_error("scale", name, namespace, e))?;
    Ok(())
}

/// `kubectl rollout pause` (`paused: true`) / `resume` (`false`). Pausing
/// a paused Deployment is not an error here: a profile says the state it
/// wants.
pub async fn set_paused(
    api: &Api<Deployment>,
    namespace: &str,
    name: &str,
    paused: bool,
) -> Result<Deployment, RolloutError> {
    let patch = serde_json::json!({"spec": {"paused": paused}});
    api.patch(name, &params(), &Patch::Merge(&patch))
        .await
        .map_err(|e| api_error(if paused { "pause" } else { "resume" }, name, namespace, e))
}

/// Annotations `kubectl rollout undo` keeps from the Deployment rather
/// than copying from the ReplicaSet (kubectl's `annotationsToSkip`).
const UNDO_KEEP_ANNOTATIONS: &[&str] = &[
    "kubectl.kubernetes.io/last-applied-configuration",
    REVISION_ANNOTATION,
    "deployment.kubernetes.io/revision-history",
    "deployment.kubernetes.io/desired-replicas",
    "deployment.kubernetes.io/max-replicas",
    "deprecated.deployment.rollback.to",
];

/// What an undo did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum UndoOutcome {
    /// The template of this revision was copied into the Deployment.
    RolledBack { to_revision: i64 },
    /// The Deployment already runs that template (kubectl: "skipped
    /// rollback").
    AlreadyThere { revision: i64 },
}

/// The Pod template of a ReplicaSet as it was written in the Deployment:
/// without the `pod-template-hash` label the controller added.
pub fn template_without_hash(rs: &ReplicaSet) -> serde_json::Value {
    let mut t = rs.spec.template.clone().unwrap_or_default();
    if let Some(labels) = t.metadata.as_mut().and_then(|m| m.labels.as_mut()) {
        labels.remove(HASH_LABEL);
    }
    serde_json::to_value(t).expect("a template serialises")
}

/// Which revision an undo goes to: `wanted` (if it exists), else the
/// highest revision below the current (newest) one. Pure.
pub fn undo_target(
    name: &str,
    revisions: &[i64],
    wanted: Option<i64>,
) -> Result<i64, RolloutError> {
    let mut revs = revisions.to_vec();
    revs.sort_unstable();
    revs.dedup();
    let have = || {
        revs.iter()
            .map(i64::to_string)
            .collect::<Vec<_>>()
            .join(", ")
    };
    match wanted {
        Some(r) if r > 0 => {
            if revs.contains(&r) {
                Ok(r)
            } else {
                Err(RolloutError::NoSuchRevision {
                    name: name.into(),
                    revision: r,
                    have: have(),
                })
            }
        }
        _ => match revs.as_slice() {
            [.., previous, _current] => Ok(*previous),
            _ => Err(RolloutError::NoHistory {
                name: name.into(),
                have: have(),
            }),
        },
    }
}

/// The ReplicaSets the Deployment controls.
pub async fn replica_sets_of(
    client: &Client,
    namespace: &str,
    d: &Deployment,
) -> Result<Vec<ReplicaSet>, RolloutError> {
    let name = d.metadata.name.clone().unwrap_or_default();
    let rss: Api<ReplicaSet> = Api::namespaced(client.clone(), namespace);
    let lp = pods_query(d, namespace)?;
    let list = rss
        .list(&lp)
        .await
        .map_err(|e| api_error("list replicasets", &name, namespace, e))?;
    Ok(list
        .items
        .into_iter()
        .filter(|rs| owned_by(rs, d))
        .collect())
}

/// `kubectl rollout undo deployment/NAME [--to-revision=N]`: copy the Pod
/// template of that revision's ReplicaSet (default: the previous
/// revision) into the Deployment, with a JSON patch as kubectl sends.
pub async fn undo(
    client: &Client,
    namespace: &str,
    name: &str,
    to_revision: Option<i64>,
) -> Result<UndoOutcome, RolloutError> {
    let api: Api<Deployment> = Api::namespaced(client.clone(), namespace);
    let d = get(&api, "undo", namespace, name).await?;
    if d.spec.paused == Some(true) {
        return Err(RolloutError::Paused {
            name: name.into(),
            action: "undo",
        });
    }
    let rss = replica_sets_of(client, namespace, &d).await?;
    let revisions: Vec<i64> = rss.iter().filter_map(|rs| revision(&rs.metadata)).collect();
    let target = undo_target(name, &revisions, to_revision)?;
    let rs = rss
        .iter()
        .find(|rs| revision(&rs.metadata) == Some(target))
        .expect("undo_target picks an existing revision");
    let template = template_without_hash(rs);
    let current = serde_json::to_value(&d.spec.template).expect("a template serialises");
    if template == current {
        return Ok(UndoOutcome::AlreadyThere { revision: target });
    }
    let mut annotations: BTreeMap<String, String> = BTreeMap::new();
    let dep_ann = d.metadata.annotations.clone().unwrap_or_default();
    for k in UNDO_KEEP_ANNOTATIONS {
        if let Some(v) = dep_ann.get(*k) {
            annotations.insert(k.to_string(), v.clone());
        }
    }
    for (k, v) in rs.metadata.annotations.iter().flatten() {
        if !UNDO_KEEP_ANNOTATIONS.contains(&k.as_str()) {
            annotations.insert(k.clone(), v.clone());
        }
    }
    let ops = serde_json::json!([
        {"op": "replace", "path": "/spec/template", "value": template},
        {"op": "replace", "path": "/metadata/annotations", "value": annotations},
    ]);
    json_patch(client, namespace, name, &ops).await?;
    Ok(UndoOutcome::RolledBack {
        to_revision: target,
    })
}

/// The Deployment's selector as a list query; a selector that would
/// select the whole namespace (or that Kubernetes would refuse) is an
/// error rather than a wider list.
fn pods_query(d: &Deployment, namespace: &str) -> Result<ListParams, RolloutError> {
    let name = d.metadata.name.clone().unwrap_or_default();
    selector::query(&d.spec.selector)
        .map(|q| ListParams::default().labels(&q))
        .map_err(|e| RolloutError::Invalid {
            what: format!("the selector of deployment {namespace}/{name}"),
            reason: e.to_string(),
        })
}

/// The Deployment's Pods that are not already terminating.
pub async fn live_pods(
    client: &Client,
    namespace: &str,
    d: &Deployment,
) -> Result<Vec<Pod>, RolloutError> {
    let name = d.metadata.name.clone().unwrap_or_default();
    let pods: Api<Pod> = Api::namespaced(client.clone(), namespace);
    let lp = pods_query(d, namespace)?;
    let list = pods
        .list(&lp)
        .await
        .map_err(|e| api_error("list pods", &name, namespace, e))?;
    Ok(list
        .items
        .into_iter()
        .filter(|p| p.metadata.deletion_timestamp.is_none())
        .collect())
}

/// Which Pods a `delete_pod` deletes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PodTarget {
    /// `kubectl delete pod NAME`.
    Name(String),
    /// `kubectl delete pods -l SELECTOR`: every (live) match.
    Selector(String),
    /// One of the Deployment's live Pods, picked at random: a fault.
    Random,
}

/// Delete Pods gracefully (`grace_period_s` overrides the Pod's own), as
/// `kubectl delete pod` does; returns the names deleted.
pub async fn delete_pods(
    client: &Client,
    namespace: &str,
    deployment: &str,
    target: &PodTarget,
    grace_period_s: Option<u32>,
) -> Result<Vec<String>, RolloutError> {
    let pods: Api<Pod> = Api::namespaced(client.clone(), namespace);
    let names: Vec<String> = match target {
        PodTarget::Name(n) => vec![n.clone()],
        PodTarget::Selector(sel) => {
            let list = pods
                .list(&ListParams::default().labels(sel))
                .await
                .map_err(|e| api_error("list pods", deployment, namespace, e))?;
            list.items
                .into_iter()
                .filter(|p| p.metadata.deletion_timestamp.is_none())
                .filter_map(|p| p.metadata.name)
                .collect()
        }
        PodTarget::Random => {
            let api: Api<Deployment> = Api::namespaced(client.clone(), namespace);
            let d = get(&api, "delete_pod", namespace, deployment).await?;
            let live = live_pods(client, namespace, &d).await?;
            use rand::seq::IndexedRandom;
            live.choose(&mut rand::rng())
                .and_then(|p| p.metadata.name.clone())
                .into_iter()
                .collect()
        }
    };
    if names.is_empty() {
        return Err(RolloutError::NoPods {
            name: deployment.into(),
            matching: match target {
                PodTarget::Selector(s) => format!(" (none matches {s:?})"),
                _ => String::new(),
            },
        });
    }
    let dp = DeleteParams {
        grace_period_seconds: grace_period_s,
        ..Default::default()
    };
    for n in &names {
        pods.delete(n, &dp).await.map_err(|e| match &e {
            kube::Error::Api(s) if s.code == 404 => RolloutError::Invalid {
                what: format!("delete_pod {n:?}"),
                reason: format!("no such pod in namespace {namespace:?}"),
            },
            _ => RolloutError::Api {
                step: "delete_pod",
                name: n.clone(),
                source: e,
            },
        })?;
    }
    Ok(names)
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::apps::v1::ReplicaSetSpec;
    use k8s_openapi::api::core::v1::PodTemplateSpec;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

    #[test]
    fn undo_goes_to_the_revision_before_the_newest_by_default() {
        assert_eq!(undo_target("web", &[3, 1, 2], None).unwrap(), 2);
        // kubectl's --to-revision=0 means the same.
        assert_eq!(undo_target("web", &[1, 4], Some(0)).unwrap(), 1);
    }

    #[test]
    fn undo_to_a_named_revision_needs_it_to_exist() {
        assert_eq!(undo_target("web", &[1, 2, 3], Some(1)).unwrap(), 1);
        let e = undo_target("web", &[1, 2], Some(7)).unwrap_err();
        assert_eq!(
            e.to_string(),
            "deployment \"web\" has no revision 7 (revisions: 1, 2)"
        );
    }

    #[test]
    fn undo_with_a_single_revision_has_nowhere_to_go() {
        let e = undo_target("web", &[1], None).unwrap_err();
        assert!(matches!(e, RolloutError::NoHistory { .. }), "{e}");
        assert!(undo_target("web", &[], None).is_err());
    }

    #[test]
    fn the_undo_template_drops_only_the_hash_label() {
        let rs = ReplicaSet {
            spec: ReplicaSetSpec {
                template: Some(PodTemplateSpec {
                    metadata: Some(ObjectMeta {
                        labels: Some(
                            [
                                ("app".to_string(), "web".to_string()),
                                (HASH_LABEL.to_string(), "abc".to_string()),
                            ]
                            .into(),
                        ),
                        ..Default::default()
                    }),
                    spec: None,
                }),
                ..Default::default()
            },
            ..Default::default()
        };
        assert_eq!(
            template_without_hash(&rs),
            serde_json::json!({"metadata": {"labels": {"app": "web"}}})
        );
    }

    #[test]
    fn only_container_needs_exactly_one() {
        let mut d = Deployment::default();
        d.metadata.name = Some("web".into());
        d.spec.template.spec = Some(k8s_openapi::api::core::v1::PodSpec {
            containers: vec![
                k8s_openapi::api::core::v1::Container {
                    name: "nginx".into(),
                    ..Default::default()
                },
                k8s_openapi::api::core::v1::Container {
                    name: "envoy".into(),
                    ..Default::default()
                },
            ],
            ..Default::default()
        });
        let e = only_container(&d).unwrap_err();
        assert!(e.to_string().contains("nginx, envoy"), "{e}");
        d.spec.template.spec.as_mut().unwrap().containers.pop();
        assert_eq!(only_container(&d).unwrap(), "nginx");
    }
}
