//! The ReplicaSet controller of the sandbox SIMULATOR.
//!
//! Mirrors `pkg/controller/replicaset/replica_set.go`: keeps as many active
//! Pods (not terminating, not Succeeded/Failed) as `spec.replicas`, creating
//! Pods from the template with `generateName: <rs>-` and a controller
//! ownerReference, and deleting surplus Pods gracefully (deletionTimestamp +
//! grace, like `DELETE`), choosing victims as `controller.ActivePods`
//! ranks them. Its status counts only active Pods. Pods whose ReplicaSet is
//! gone are deleted too (the garbage collector's background propagation).

use std::cmp::Ordering;
use std::collections::HashSet;
use std::sync::Arc;

use k8s_openapi::api::apps::v1::{ReplicaSet, ReplicaSetStatus};
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::jiff::Timestamp;

use super::{
    controlled_by, controller_of, delete_pod_gracefully, is_active, is_available, is_ready,
    owner_ref, ready_since,
};
use crate::events::{EventType, Recorder};
use crate::store::Store;

/// One pass over every ReplicaSet.
pub fn reconcile_all(store: &Arc<Store>, rec: &Recorder) {
    let (rss, _) = store.list::<ReplicaSet>(None);
    let (pods, _) = store.list::<Pod>(None);
    let now = crate::node::now();
    let uids: HashSet<&str> = rss
        .iter()
        .filter_map(|r| r.metadata.uid.as_deref())
        .collect();

    // Pods of ReplicaSets that no longer exist go away (garbage collection).
    for p in &pods {
        if let Some(o) = controller_of(&p.metadata)
            && o.kind == "ReplicaSet"
            && !uids.contains(o.uid.as_str())
            && p.metadata.deletion_timestamp.is_none()
        {
            let ns = p.metadata.namespace.as_deref().unwrap_or("default");
            let name = p.metadata.name.as_deref().unwrap_or_default();
            let _ = delete_pod_gracefully(store, ns, name, None);
        }
    }

    for rs in &rss {
        let uid = rs.metadata.uid.as_deref().unwrap_or_default();
        let mine: Vec<&Pod> = pods
            .iter()
            .filter(|p| controlled_by(&p.metadata, uid))
            .collect();
        sync_one(store, rec, rs, &mine, now);
    }
}

fn sync_one(store: &Store, rec: &Recorder, rs: &ReplicaSet, pods: &[&Pod], now: Timestamp) {
    let ns = rs.metadata.namespace.as_deref().unwrap_or("default");
    let name = rs.metadata.name.as_deref().unwrap_or_default();
    let spec = &rs.spec;
    let want = spec.replicas.unwrap_or(1).max(0) as usize;
    let mut active: Vec<&Pod> = pods.iter().copied().filter(|p| is_active(p)).collect();
    let mut deleted: HashSet<String> = HashSet::new();

    if rs.metadata.deletion_timestamp.is_none() {
        if active.len() < want {
            for _ in active.len()..want {
                match create_pod(store, rs) {
                    Ok(p) => {
                        let pn = p.metadata.name.clone().unwrap_or_default();
                        tracing::info!(replicaset = name, pod = %pn, "created pod");
                        rec.record(
                            rs,
                            EventType::Normal,
                            "SuccessfulCreate",
                            format!("Created pod: {pn}"),
                        );
                    }
                    Err(e) => {
                        tracing::warn!(replicaset = name, error = %e, "cannot create pod");
                        rec.record(
                            rs,
                            EventType::Warning,
                            "FailedCreate",
                            format!("Error creating: {e}"),
                        );
                        break;
                    }
                }
            }
        } else if active.len() > want {
            let mut victims = active.clone();
            victims.sort_by(|a, b| deletion_order(a, b));
            for p in victims.iter().take(active.len() - want) {
                let pn = p.metadata.name.clone().unwrap_or_default();
                match delete_pod_gracefully(store, ns, &pn, None) {
                    Ok(_) => {
                        tracing::info!(replicaset = name, pod = %pn, "deleted pod");
                        rec.record(
                            rs,
                            EventType::Normal,
                            "SuccessfulDelete",
                            format!("Deleted pod: {pn}"),
                        );
                        deleted.insert(pn);
                    }
                    Err(e) => {
                        tracing::warn!(replicaset = name, pod = %pn, error = %e, "cannot delete pod")
                    }
                }
            }
            active.retain(|p| !deleted.contains(p.metadata.name.as_deref().unwrap_or_default()));
        }
    }

    // Status from the Pods as they are now (created Pods count once the
    // next pass lists them, as with the real controller's informer).
    let min_ready = spec.min_ready_seconds.unwrap_or(0);
    let tmpl_labels = spec
        .template
        .as_ref()
        .and_then(|t| t.metadata.as_ref())
        .and_then(|m| m.labels.as_ref());
    let status = ReplicaSetStatus {
        replicas: active.len() as i32,
        fully_labeled_replicas: Some(
            active
                .iter()
                .filter(|p| {
                    tmpl_labels.is_none_or(|tl| {
                        tl.iter().all(|(k, v)| {
                            p.metadata.labels.as_ref().and_then(|l| l.get(k)) == Some(v)
                        })
                    })
                })
                .count() as i32,
        ),
        ready_replicas: Some(active.iter().filter(|p| is_ready(p)).count() as i32),
        available_replicas: Some(
            active
                .iter()
                .filter(|p| is_available(p, min_ready, now))
                .count() as i32,
        ),
        observed_generation: rs.metadata.generation,
        terminating_replicas: None,
        conditions: rs.status.as_ref().and_then(|s| s.conditions.clone()),
    };
    if rs.status.as_ref() != Some(&status) {
        let r = store.modify::<ReplicaSet>(ns, name, |cur| cur.status = Some(status));
        if let Err(e) = r {
            tracing::debug!(replicaset = name, error = %e, "status update failed");
        }
    }
}

fn create_pod(store: &Store, rs: &ReplicaSet) -> Result<Pod, crate::store::StoreError> {
    let tmpl = rs.spec.template.clone().unwrap_or_default();
    let tm = tmpl.metadata.unwrap_or_default();
    let name = rs.metadata.name.clone().unwrap_or_default();
    let pod = Pod {
        metadata: ObjectMeta {
            generate_name: Some(format!("{name}-")),
            namespace: rs.metadata.namespace.clone(),
            labels: tm.labels,
            annotations: tm.annotations,
            owner_references: Some(vec![owner_ref("apps/v1", "ReplicaSet", &rs.metadata)]),
            ..Default::default()
        },
        spec: tmpl.spec,
        status: None,
    };
    store.create(pod)
}

fn node_assigned(p: &Pod) -> bool {
    p.spec
        .as_ref()
        .and_then(|s| s.node_name.as_deref())
        .is_some_and(|n| !n.is_empty())
}

fn phase_rank(p: &Pod) -> u8 {
    match p
        .status
        .as_ref()
        .and_then(|s| s.phase.as_deref())
        .unwrap_or("Pending")
    {
        "Pending" => 0,
        "Unknown" => 1,
        "Running" => 2,
        _ => 0,
    }
}

fn restarts(p: &Pod) -> i32 {
    p.status
        .as_ref()
        .and_then(|s| s.container_statuses.as_ref())
        .map(|cs| cs.iter().map(|c| c.restart_count).max().unwrap_or(0))
        .unwrap_or(0)
}

/// Kubernetes' `controller.ActivePods` ordering: the Pod that sorts first is
/// deleted first. Unassigned < assigned; Pending < Unknown < Running;
/// not ready < ready; ready for less time < longer; more restarts first;
/// newer first.
pub fn deletion_order(a: &Pod, b: &Pod) -> Ordering {
    node_assigned(a)
        .cmp(&node_assigned(b))
        .then_with(|| phase_rank(a).cmp(&phase_rank(b)))
        .then_with(|| is_ready(a).cmp(&is_ready(b)))
        .then_with(|| match (ready_since(a), ready_since(b)) {
            // Later "ready since" = ready for less time = first.
            (Some(x), Some(y)) => y.cmp(&x),
            _ => Ordering::Equal,
        })
        .then_with(|| restarts(b).cmp(&restarts(a)))
        .then_with(|| {
            let ca = a.metadata.creation_timestamp.as_ref().map(|t| t.0);
            let cb = b.metadata.creation_timestamp.as_ref().map(|t| t.0);
            cb.cmp(&ca)
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{PodCondition, PodSpec, PodStatus};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
    use k8s_openapi::jiff::SignedDuration;

    fn pod(name: &str, node: bool, phase: &str, ready_for: Option<i64>, age: i64) -> Pod {
        let now = crate::node::now();
        Pod {
            metadata: ObjectMeta {
                name: Some(name.into()),
                creation_timestamp: Some(Time(now - SignedDuration::from_secs(age))),
                ..Default::default()
            },
            spec: Some(PodSpec {
                node_name: node.then(|| "n".to_string()),
                ..Default::default()
            }),
            status: Some(PodStatus {
                phase: Some(phase.into()),
                conditions: ready_for.map(|s| {
                    vec![PodCondition {
                        type_: "Ready".into(),
                        status: "True".into(),
                        last_transition_time: Some(Time(now - SignedDuration::from_secs(s))),
                        ..Default::default()
                    }]
                }),
                ..Default::default()
            }),
        }
    }

    #[test]
    fn scale_down_picks_unready_then_recently_ready_then_newest() {
        let mut pods = [
            pod("old-ready", true, "Running", Some(100), 200),
            pod("new-ready", true, "Running", Some(5), 10),
            pod("pending", true, "Pending", None, 300),
            pod("unassigned", false, "Pending", None, 400),
            pod("running-unready", true, "Running", None, 500),
        ];
        pods.sort_by(deletion_order);
        let names: Vec<_> = pods
            .iter()
            .map(|p| p.metadata.name.clone().unwrap())
            .collect();
        assert_eq!(
            names,
            [
                "unassigned",
                "pending",
                "running-unready",
                "new-ready",
                "old-ready"
            ]
        );
    }
}
