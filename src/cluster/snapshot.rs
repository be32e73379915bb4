//! The run directory's `cluster/` files: the Deployment, its Service and
//! its ReplicaSets as YAML, and the rollout history as `kubectl rollout
//! history` prints it, taken before and after the rollout so a postmortem
//! can see (and re-apply) exactly what changed.
//!
//! Not for: the timeline of what happened in between (`cluster::watch`).

use super::rollout::{RolloutError, replica_sets_of};
use super::stall::revision;
use crate::rundir::{self, CLUSTER_DIR};
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::Service;
use kube::{Api, Client};
use serde::Serialize;
use std::path::{Path, PathBuf};

/// The annotation `kubectl rollout history` shows as CHANGE-CAUSE.
pub const CHANGE_CAUSE: &str = "kubernetes.io/change-cause";

#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    #[error("{what} not found in namespace {namespace:?}")]
    NotFound { what: String, namespace: String },
    #[error("reading {what} in namespace {namespace:?}: {source}")]
    Read {
        what: String,
        namespace: String,
        source: kube::Error,
    },
    #[error("reading the ReplicaSets: {0}")]
    ReplicaSets(#[source] RolloutError),
    #[error("writing {path}: {source} (is the run directory writable?)")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{what} as YAML: {source}")]
    Yaml {
        what: String,
        source: serde_norway::Error,
    },
}

/// Write `deployment.LABEL.yaml`, `service.LABEL.yaml` (when `service` is
/// given), `replicasets.LABEL.yaml` and `history.LABEL.txt` into the run
/// directory `run_dir`'s `cluster/` (created if needed), without
/// `managedFields`.
pub async fn snapshot(
    client: &Client,
    namespace: &str,
    deployment: &str,
    service: Option<&str>,
    run_dir: &Path,
    label: &str,
) -> Result<(), SnapshotError> {
    let dir = run_dir.join(CLUSTER_DIR);
    std::fs::create_dir_all(&dir).map_err(|source| SnapshotError::Write {
        path: dir.clone(),
        source,
    })?;
    let file = |object: &str| rundir::cluster_file(run_dir, object, label);
    let what = format!("deployment {deployment:?}");
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), namespace);
    let mut d = get(&deployments, deployment, &what, namespace).await?;
    d.metadata.managed_fields = None;
    write_yaml(&file("deployment"), &what, &d)?;

    if let Some(service) = service {
        let what = format!("service {service:?}");
        let services: Api<Service> = Api::namespaced(client.clone(), namespace);
        let mut s = get(&services, service, &what, namespace).await?;
        s.metadata.managed_fields = None;
        write_yaml(&file("service"), &what, &s)?;
    }

    let mut rss = replica_sets_of(client, namespace, &d)
        .await
        .map_err(SnapshotError::ReplicaSets)?;
    rss.sort_by_key(|rs| revision(&rs.metadata).unwrap_or(0));
    for rs in &mut rss {
        rs.metadata.managed_fields = None;
    }
    let list = serde_json::json!({"apiVersion": "v1", "kind": "List", "items": rss});
    write_yaml(&file("replicasets"), "the ReplicaSets", &list)?;
    write(&file("history"), &history_table(&rss))
}

async fn get<K>(api: &Api<K>, name: &str, what: &str, namespace: &str) -> Result<K, SnapshotError>
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    api.get_opt(name)
        .await
        .map_err(|source| SnapshotError::Read {
            what: what.into(),
            namespace: namespace.into(),
            source,
        })?
        .ok_or_else(|| SnapshotError::NotFound {
            what: what.into(),
            namespace: namespace.into(),
        })
}

fn write_yaml(path: &Path, what: &str, value: &impl Serialize) -> Result<(), SnapshotError> {
    let text = serde_norway::to_string(value).map_err(|source| SnapshotError::Yaml {
        what: what.into(),
        source,
    })?;
    write(path, &text)
}

fn write(path: &Path, text: &str) -> Result<(), SnapshotError> {
    std::fs::write(path, text).map_err(|source| SnapshotError::Write {
        path: path.to_path_buf(),
        source,
    })
}

/// `kubectl rollout history`, with the images and replicas of each
/// revision: one row per ReplicaSet, oldest first. Pure.
/// The ReplicaSets that want Pods (`spec.replicas` > 0), as
/// `name (replicas)` in the order given: after a finished rollout, only
/// the new one.
pub fn active_replicasets(rss: &[ReplicaSet]) -> Vec<String> {
    rss.iter()
        .filter_map(|rs| {
            let n = rs.spec.replicas.unwrap_or(0);
            (n > 0).then(|| format!("{} ({n})", rs.metadata.name.as_deref().unwrap_or("?")))
        })
        .collect()
}

pub fn history_table(rss: &[ReplicaSet]) -> String {
    let mut rows: Vec<(i64, [String; 4])> = rss
        .iter()
        .map(|rs| {
            let rev = revision(&rs.metadata).unwrap_or(0);
            let images: Vec<String> = rs
                .spec
                .template
                .as_ref()
                .and_then(|t| t.spec.as_ref())
                .map(|s| {
                    s.containers
                        .iter()
                        .map(|c| format!("{}={}", c.name, c.image.as_deref().unwrap_or("")))
                        .collect()
                })
                .unwrap_or_default();
            let cause = rs
                .metadata
                .annotations
                .as_ref()
                .and_then(|a| a.get(CHANGE_CAUSE))
                .cloned()
                .unwrap_or_else(|| "<none>".into());
            let replicas = rs.spec.replicas.unwrap_or(1).to_string();
            (rev, [rev.to_string(), images.join(","), cause, replicas])
        })
        .collect();
    rows.sort_by_key(|(rev, _)| *rev);
    let header = ["REVISION", "IMAGES", "CHANGE-CAUSE", "REPLICAS"].map(String::from);
    let all: Vec<&[String; 4]> = std::iter::once(&header)
        .chain(rows.iter().map(|(_, r)| r))
        .collect();
    let widths: Vec<usize> = (0..4)
        .map(|i| all.iter().map(|r| r[i].chars().count()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for row in all {
        let mut line = String::new();
        for (i, cell) in row.iter().enumerate() {
            if i + 1 == row.len() {
                line.push_str(cell);
            } else {
                line.push_str(&format!("{cell:<w$}  ", w = widths[i]));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::apps::v1::ReplicaSetSpec;
    use k8s_openapi::api::core::v1::{Container, PodSpec, PodTemplateSpec};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

    fn rs(rev: &str, images: &[(&str, &str)], cause: Option<&str>, replicas: i32) -> ReplicaSet {
        let mut ann = std::collections::BTreeMap::new();
        ann.insert(
            super::super::stall::REVISION_ANNOTATION.to_string(),
            rev.to_string(),
        );
        if let Some(c) = cause {
            ann.insert(CHANGE_CAUSE.to_string(), c.to_string());
        }
        ReplicaSet {
            metadata: ObjectMeta {
                annotations: Some(ann),
                ..Default::default()
            },
            spec: ReplicaSetSpec {
                replicas: Some(replicas),
                template: Some(PodTemplateSpec {
                    metadata: None,
                    spec: Some(PodSpec {
                        containers: images
                            .iter()
                            .map(|(n, i)| Container {
                                name: n.to_string(),
                                image: Some(i.to_string()),
                                ..Default::default()
                            })
                            .collect(),
                        ..Default::default()
                    }),
                }),
                ..Default::default()
            },
            status: None,
        }
    }

    #[test]
    fn history_lists_revisions_oldest_first_with_images_cause_and_replicas() {
        let t = history_table(&[
            rs("10", &[("nginx", "nginx:1.28")], Some("upgrade to 1.28"), 3),
            rs(
                "2",
                &[("nginx", "nginx:1.27"), ("sidecar", "envoy:1")],
                None,
                0,
            ),
        ]);
        assert_eq!(
            t,
            "REVISION  IMAGES                            CHANGE-CAUSE     REPLICAS\n\
             2         nginx=nginx:1.27,sidecar=envoy:1  <none>           0\n\
             10        nginx=nginx:1.28                  upgrade to 1.28  3\n"
        );
    }

    #[test]
    fn an_empty_history_is_just_the_header() {
        assert_eq!(
            history_table(&[]),
            "REVISION  IMAGES  CHANGE-CAUSE  REPLICAS\n"
        );
    }

    #[test]
    fn active_replicasets_are_those_that_want_pods() {
        let rss = [
            rs("1", &[("nginx", "nginx:1.27")], None, 0),
            rs("2", &[("nginx", "nginx:1.28")], None, 3),
        ];
        let names: Vec<String> = active_replicasets(&rss);
        assert_eq!(names.len(), 1);
        assert!(names[0].ends_with(" (3)"), "{names:?}");
    }
}
