//! Starts the simulated cluster's moving parts — controllers, kubelet and
//! Service proxy — against one [`Store`](crate::store::Store).
//!
//! This is a SIMULATOR of the slice of Kubernetes that decides whether a
//! rollout drops requests; it is not a cluster. The API server (the other
//! half of the sandbox) only stores objects; everything that *happens* to
//! them happens here.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::proxy::{self, GroundTruth};
use crate::store::Store;

/// Knobs of the simulated cluster.
#[derive(Clone, Debug)]
pub struct ClusterConfig {
    /// How long the Service proxy's own copy of the endpoints lags behind
    /// the EndpointSlices: the kube-proxy/iptables lag that drops requests
    /// when a Pod stops listening before it is out of rotation.
    pub propagation_delay: Duration,
    /// Up to this much extra random lag per EndpointSlice change.
    pub propagation_jitter: Duration,
    /// Pods get `pod_ip_base + 1`, `+ 2`, ... (each its own loopback address),
    /// so several sandboxes in one process must use distinct bases.
    pub pod_ip_base: Ipv4Addr,
    /// Where the NodePort listeners bind.
    pub node_port_bind: IpAddr,
    /// First delay of the kubelet's restart and image-pull back-off; it
    /// doubles per failure up to [`ClusterConfig::backoff_max`]. Kubernetes
    /// uses 10 s; tests shorten it.
    pub backoff_base: Duration,
    /// Cap of the back-off (Kubernetes: 300 s).
    pub backoff_max: Duration,
}

impl Default for ClusterConfig {
    fn default() -> Self {
        ClusterConfig {
            propagation_delay: Duration::from_secs(1),
            propagation_jitter: Duration::ZERO,
            pod_ip_base: Ipv4Addr::new(127, 10, 0, 0),
            node_port_bind: IpAddr::V4(Ipv4Addr::LOCALHOST),
            backoff_base: Duration::from_secs(10),
            backoff_max: Duration::from_secs(300),
        }
    }
}

/// What [`spawn`] started. Dropping it does not stop anything: cancel the
/// token given to [`spawn`], then [`ClusterHandle::join`] to wait.
pub struct ClusterHandle {
    /// Which Pod every proxied connection went to (for tests and reports).
    pub ground_truth: GroundTruth,
    tasks: Vec<JoinHandle<()>>,
}

impl ClusterHandle {
    /// Waits for every part to stop (after the shutdown token was cancelled).
    /// Pods' servers are closed by then.
    pub async fn join(self) {
        for t in self.tasks {
            let _ = t.await;
        }
    }
}

/// Starts the controllers (Deployment, ReplicaSet, EndpointSlice), the
/// kubelet (Pods as real HTTP servers) and the Service proxy. All of them
/// stop when `shutdown` is cancelled.
pub async fn spawn(
    store: Arc<Store>,
    cfg: ClusterConfig,
    shutdown: CancellationToken,
) -> anyhow::Result<ClusterHandle> {
    let ground_truth = GroundTruth::default();
    let tasks = vec![
        tokio::spawn(crate::controllers::run(store.clone(), shutdown.clone())),
        tokio::spawn(crate::kubelet::run(
            store.clone(),
            cfg.clone(),
            shutdown.clone(),
        )),
        tokio::spawn(proxy::run(store, cfg, ground_truth.clone(), shutdown)),
    ];
    Ok(ClusterHandle {
        ground_truth,
        tasks,
    })
}
