//! Starts the simulated cluster's moving parts — controllers, kubelet,
//! Service proxy and ingress controller — against one
//! [`Store`](crate::store::Store).
//!
//! This is a SIMULATOR of the slice of Kubernetes that decides whether a
//! rollout drops requests; it is not a cluster. The API server (the other
//! half of the sandbox) only stores objects; everything that *happens* to
//! them happens here.

use std::sync::Arc;

use anyhow::Context;

use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::config::ClusterConfig;
use crate::kernel::{DataPlane, Kernel};
use crate::proxy;
use crate::store::Store;
use crate::truth::GroundTruth;

/// What [`spawn`] started. Dropping it does not stop anything: cancel the
/// token given to [`spawn`], then [`ClusterHandle::join`] to wait.
pub struct ClusterHandle {
    /// Which Pod every proxied connection went to, and what each Pod did
    /// (for tests and reports).
    pub ground_truth: GroundTruth,
    /// Where the ingress controller listens, when one runs
    /// ([`ClusterConfig::ingress_port`]).
    pub ingress_addr: Option<std::net::SocketAddr>,
    /// Process containers' output and stdin (`pods/log`, `pods/attach`).
    pub processes: crate::kubelet::process::ProcessTable,
    /// The kernel data plane's nftables table when it carries Service
    /// traffic; `None`: the userspace proxy does.
    pub kernel_table: Option<String>,
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

/// Registers the Nodes ([`ClusterConfig::nodes`]) and starts the
/// controllers (Deployment, ReplicaSet, EndpointSlice, disruption,
/// HorizontalPodAutoscaler), the kubelet (Pods as real HTTP servers), the
/// Service proxy and, with [`ClusterConfig::ingress_port`], the ingress
/// controller (its port bound before this returns). All of them stop when
/// `shutdown` is cancelled.
pub async fn spawn(
    store: Arc<Store>,
    cfg: ClusterConfig,
    shutdown: CancellationToken,
) -> anyhow::Result<ClusterHandle> {
    crate::kubelet::check_pod_addresses(cfg.pod_ip_base)?;
    let ground_truth = GroundTruth::default();
    for name in crate::node::node_names(cfg.nodes) {
        if store.get_raw("Node", None, &name).is_none() {
            store.create_raw("Node", crate::node::node_object(&name))?;
        }
    }
    let ingress = cfg
        .ingress_port
        .map(|port| {
            let addr = std::net::SocketAddr::new(cfg.node_port_bind, port);
            crate::ingress::bind(addr)
                .map_err(|e| anyhow::anyhow!("binding the ingress controller to {addr}: {e}"))
        })
        .transpose()?;
    let ingress_addr = ingress.as_ref().map(|l| l.local_addr()).transpose()?;
    let kernel = match cfg.data_plane {
        DataPlane::Userspace => None,
        DataPlane::Kernel => Some(Arc::new(
            Kernel::start(cfg.pod_ip_base, ground_truth.clone())
                .context("sandbox data_plane: kernel")?,
        )),
        // Kernel::start says why it cannot run here.
        DataPlane::Auto => match Kernel::start(cfg.pod_ip_base, ground_truth.clone()) {
            Ok(k) => Some(Arc::new(k)),
            Err(e) => {
                tracing::info!(why = %format!("{e:#}"), "data_plane auto: the userspace proxy");
                None
            }
        },
    };
    let kernel_table = kernel.as_ref().map(|k| k.table().to_string());
    let tables = proxy::Tables::default();
    let processes = crate::kubelet::process::ProcessTable::default();
    let mut tasks = vec![
        tokio::spawn(crate::controllers::run(store.clone(), shutdown.clone())),
        tokio::spawn(crate::controllers::autoscaler::run(
            store.clone(),
            cfg.hpa_sync_period,
            shutdown.clone(),
        )),
        tokio::spawn(crate::kubelet::run(
            store.clone(),
            cfg.clone(),
            ground_truth.clone(),
            processes.clone(),
            shutdown.clone(),
        )),
        tokio::spawn(proxy::run(
            store.clone(),
            cfg,
            proxy::Plane {
                gt: ground_truth.clone(),
                kernel,
            },
            tables.clone(),
            shutdown.clone(),
        )),
    ];
    if let Some(listener) = ingress {
        tasks.push(tokio::spawn(crate::ingress::run(
            listener,
            store,
            tables,
            ground_truth.clone(),
            shutdown,
        )));
    }
    Ok(ClusterHandle {
        ground_truth,
        ingress_addr,
        processes,
        kernel_table,
        tasks,
    })
}
