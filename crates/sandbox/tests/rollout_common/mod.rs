//! Helpers shared by the rollout and proxy tests: a simulated cluster
//! driven through the store, manifests, bounded waits, raw HTTP requests.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use baton_sandbox::ClusterConfig;
use baton_sandbox::cluster::{self, ClusterHandle};
use baton_sandbox::store::{Store, StoreConfig};
use k8s_openapi::api::apps::v1::{
    Deployment, DeploymentSpec, DeploymentStrategy, ReplicaSet, RollingUpdateDeployment,
};
use k8s_openapi::api::core::v1::{
    Container, ContainerPort, ExecAction, Lifecycle, LifecycleHandler, Pod, PodSpec,
    PodTemplateSpec, Service, ServicePort, ServiceSpec,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;

pub const NS: &str = "default";

/// A simulated cluster (store + controllers + kubelet + proxy), no API server.
pub struct TestCluster {
    pub store: Arc<Store>,
    pub handle: Option<ClusterHandle>,
    pub stop: CancellationToken,
}

impl TestCluster {
    pub async fn start(propagation: Duration) -> TestCluster {
        static N: AtomicU32 = AtomicU32::new(0);
        let k = N.fetch_add(1, Ordering::Relaxed);
        // Distinct per test and (likely) per process: several test binaries
        // and agents may share the machine's loopback.
        let second = 100 + ((std::process::id() * 7 + k * 13) % 150) as u8;
        let cfg = ClusterConfig {
            propagation_delay: propagation,
            pod_ip_base: Ipv4Addr::new(127, second, (k % 200) as u8, 0),
            backoff_base: Duration::from_millis(200),
            backoff_max: Duration::from_secs(2),
            ..ClusterConfig::default()
        };
        let store = Store::new(StoreConfig::default());
        let stop = CancellationToken::new();
        let handle = cluster::spawn(store.clone(), cfg, stop.clone())
            .await
            .expect("cluster starts");
        TestCluster {
            store,
            handle: Some(handle),
            stop,
        }
    }

    /// The ground truth's moments of one Pod, in order (`started`, ...).
    pub fn moments(&self, pod: &str) -> Vec<String> {
        let gt = &self.handle.as_ref().expect("running").ground_truth;
        gt.pod_moments()
            .into_iter()
            .filter(|m| m.pod == pod)
            .map(|m| {
                serde_json::to_value(m.kind)
                    .unwrap()
                    .as_str()
                    .unwrap()
                    .to_string()
            })
            .collect()
    }

    pub async fn shutdown(mut self) {
        self.stop.cancel();
        if let Some(h) = self.handle.take() {
            tokio::time::timeout(Duration::from_secs(30), h.join())
                .await
                .expect("cluster stops");
        }
    }
}

pub struct Spec {
    pub replicas: i32,
    pub image: &'static str,
    pub max_surge: IntOrString,
    pub max_unavailable: IntOrString,
    pub annotations: BTreeMap<String, String>,
    pub pre_stop_sleep: Option<u32>,
    pub progress_deadline: Option<i32>,
}

impl Default for Spec {
    fn default() -> Self {
        Spec {
            replicas: 3,
            image: "nginx:1.27",
            max_surge: IntOrString::Int(1),
            max_unavailable: IntOrString::Int(0),
            annotations: BTreeMap::new(),
            pre_stop_sleep: None,
            progress_deadline: None,
        }
    }
}

pub fn labels() -> BTreeMap<String, String> {
    [("app".to_string(), "web".to_string())].into()
}

pub fn deployment(name: &str, s: Spec) -> Deployment {
    Deployment {
        metadata: ObjectMeta {
            name: Some(name.into()),
            namespace: Some(NS.into()),
            ..Default::default()
        },
        spec: DeploymentSpec {
            replicas: Some(s.replicas),
            selector: LabelSelector {
                match_labels: Some(labels()),
                ..Default::default()
            },
            strategy: Some(DeploymentStrategy {
                type_: Some("RollingUpdate".into()),
                rolling_update: Some(RollingUpdateDeployment {
                    max_surge: Some(s.max_surge),
                    max_unavailable: Some(s.max_unavailable),
                }),
            }),
            progress_deadline_seconds: s.progress_deadline,
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: Some(labels()),
                    annotations: (!s.annotations.is_empty()).then_some(s.annotations),
                    ..Default::default()
                }),
                spec: Some(PodSpec {
                    termination_grace_period_seconds: Some(30),
                    containers: vec![Container {
                        name: "nginx".into(),
                        image: Some(s.image.into()),
                        ports: Some(vec![ContainerPort {
                            container_port: 80,
                            ..Default::default()
                        }]),
                        lifecycle: s.pre_stop_sleep.map(|n| Lifecycle {
                            pre_stop: Some(LifecycleHandler {
                                exec: Some(ExecAction {
                                    command: Some(vec![
                                        "/bin/sh".into(),
                                        "-c".into(),
                                        format!("sleep {n}"),
                                    ]),
                                }),
                                ..Default::default()
                            }),
                            ..Default::default()
                        }),
                        ..Default::default()
                    }],
                    ..Default::default()
                }),
            },
            ..Default::default()
        },
        status: None,
    }
}

/// A free loopback port for a NodePort (bound, then released).
pub fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr").port()
}

pub fn service(name: &str, node_port: u16) -> Service {
    Service {
        metadata: ObjectMeta {
            name: Some(name.into()),
            namespace: Some(NS.into()),
            ..Default::default()
        },
        spec: Some(ServiceSpec {
            type_: Some("NodePort".into()),
            selector: Some(labels()),
            ports: Some(vec![ServicePort {
                port: 80,
                target_port: Some(IntOrString::Int(80)),
                node_port: Some(node_port as i32),
                protocol: Some("TCP".into()),
                ..Default::default()
            }]),
            ..Default::default()
        }),
        status: None,
    }
}

/// Polls `f` every 50 ms until it holds; panics after `limit` (a safety net,
/// not a speed assertion).
pub async fn wait_for(what: &str, limit: Duration, mut f: impl FnMut() -> bool) {
    let rounds = (limit.as_millis() / 50).max(1);
    for _ in 0..rounds {
        if f() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("timed out waiting for {what}");
}

/// `kubectl rollout status`'s rule for "successfully rolled out".
pub fn rollout_complete(d: &Deployment) -> bool {
    let Some(s) = d.status.as_ref() else {
        return false;
    };
    let want = d.spec.replicas.unwrap_or(1);
    d.metadata.generation.unwrap_or(0) <= s.observed_generation.unwrap_or(0)
        && s.updated_replicas.unwrap_or(0) >= want
        && s.replicas.unwrap_or(0) <= s.updated_replicas.unwrap_or(0)
        && s.available_replicas.unwrap_or(0) >= s.updated_replicas.unwrap_or(0)
}

pub async fn wait_rollout(store: &Store, name: &str) {
    wait_for("rollout to complete", Duration::from_secs(60), || {
        store
            .get::<Deployment>(NS, name)
            .is_some_and(|d| rollout_complete(&d))
    })
    .await;
}

pub fn revision(meta: &ObjectMeta) -> Option<String> {
    meta.annotations
        .as_ref()
        .and_then(|a| a.get("deployment.kubernetes.io/revision"))
        .cloned()
}

pub fn set_image(store: &Store, name: &str, image: &str) {
    store
        .modify::<Deployment>(NS, name, |d| {
            if let Some(spec) = d.spec.template.spec.as_mut() {
                spec.containers[0].image = Some(image.into());
            }
        })
        .expect("set image");
}

/// `kubectl rollout undo --to-revision=N`: copy that ReplicaSet's template
/// (without pod-template-hash) into the Deployment.
pub fn undo_to(store: &Store, name: &str, rev: &str) {
    let (rss, _) = store.list::<ReplicaSet>(Some(NS));
    let rs = rss
        .into_iter()
        .find(|r| revision(&r.metadata).as_deref() == Some(rev))
        .expect("replica set of that revision");
    let mut t = rs.spec.template.expect("template");
    if let Some(l) = t.metadata.as_mut().and_then(|m| m.labels.as_mut()) {
        l.remove("pod-template-hash");
    }
    store
        .modify::<Deployment>(NS, name, |d| d.spec.template = t)
        .expect("undo");
}

pub fn pods(store: &Store) -> Vec<Pod> {
    store.list::<Pod>(Some(NS)).0
}

/// One request on a new connection (`Connection: close`); the response's
/// text, or the I/O error (refused, reset, EOF before a status line).
pub async fn get(addr: SocketAddr) -> std::io::Result<String> {
    let fut = async {
        let mut s = TcpStream::connect(addr).await?;
        s.write_all(b"GET / HTTP/1.1\r\nHost: sandbox\r\nConnection: close\r\n\r\n")
            .await?;
        let mut buf = Vec::new();
        s.read_to_end(&mut buf).await?;
        let text = String::from_utf8_lossy(&buf).to_string();
        if !text.starts_with("HTTP/1.1 200") {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                format!("bad response {text:?}"),
            ));
        }
        Ok(text)
    };
    tokio::time::timeout(Duration::from_secs(10), fut)
        .await
        .unwrap_or_else(|_| Err(std::io::Error::new(std::io::ErrorKind::TimedOut, "timeout")))
}

/// The address a Pod serves on.
pub fn pod_addr(p: &Pod) -> SocketAddr {
    let ip = p
        .status
        .as_ref()
        .and_then(|s| s.pod_ip.clone())
        .expect("pod ip");
    SocketAddr::new(ip.parse().expect("ip"), 80)
}

pub fn is_ready(p: &Pod) -> bool {
    p.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

/// Until ten requests in a row to `addr` succeed: the proxy's lagging
/// copy of the endpoints has reached the data plane (bounded: 600 tries,
/// 50 ms apart after a failure).
pub async fn until_answering(addr: SocketAddr) {
    let mut streak = 0;
    for _ in 0..600 {
        if get(addr).await.is_ok() {
            streak += 1;
            if streak == 10 {
                return;
            }
        } else {
            streak = 0;
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    panic!("{addr} never answered ten requests in a row");
}
