//! The [`Sandbox`] handle: starts a simulated cluster (store, API server,
//! controllers, kubelet, Service proxy, ingress controller), applies its
//! manifests, writes a kubeconfig, and stops it all again. Several can run
//! in one process.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use anyhow::Context;
use serde_json::json;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::api::{self, ApiState};
use crate::cluster::{self, ClusterHandle};
use crate::config::SandboxConfig;
use crate::kubeconfig;
use crate::store::Store;
use crate::truth::GroundTruth;

/// A running sandbox: a SIMULATOR of a Kubernetes cluster on loopback, for
/// demos and tests. Reach it over HTTP through [`Sandbox::kubeconfig_path`],
/// like a real cluster.
pub struct Sandbox {
    addr: SocketAddr,
    store: Arc<Store>,
    ground_truth: GroundTruth,
    node_port_bind: std::net::IpAddr,
    /// The ingress controller's listener, when the config asked for one.
    ingress_addr: Option<SocketAddr>,
    /// The kernel data plane's table, when it carries Service traffic.
    kernel_table: Option<String>,
    kubeconfig_path: PathBuf,
    /// A temp dir we created for the kubeconfig (removed at shutdown).
    temp_dir: Option<PathBuf>,
    /// Cancelling it stops the API server, its watches and the cluster.
    shutdown: CancellationToken,
    api_task: Option<JoinHandle<()>>,
    cluster: Option<ClusterHandle>,
}

impl Sandbox {
    /// Starts everything and applies `cfg.manifests`; returns once the API
    /// answers and the kubeconfig is written.
    pub async fn start(cfg: SandboxConfig) -> anyhow::Result<Sandbox> {
        let store = Store::new(cfg.store.clone());
        for ns in ["default", "kube-system"] {
            store
                .create_raw(
                    "Namespace",
                    json!({"metadata": {"name": ns}, "spec": {"finalizers": ["kubernetes"]}, "status": {"phase": "Active"}}),
                )
                .context("creating the default namespaces")?;
        }
        let listener = TcpListener::bind(cfg.listen)
            .await
            .with_context(|| format!("binding the sandbox API server to {}", cfg.listen))?;
        let addr = listener.local_addr()?;
        let server = format!("http://{addr}");
        let (kubeconfig_path, temp_dir) = match &cfg.kubeconfig_out {
            Some(p) => (p.clone(), None),
            None => {
                static N: AtomicU64 = AtomicU64::new(0);
                let dir = std::env::temp_dir().join(format!(
                    "baton-sandbox-{}-{}",
                    std::process::id(),
                    N.fetch_add(1, Ordering::Relaxed)
                ));
                (dir.join("kubeconfig"), Some(dir))
            }
        };
        kubeconfig::write(&kubeconfig_path, &server)
            .with_context(|| format!("writing the kubeconfig to {}", kubeconfig_path.display()))?;
        let shutdown = CancellationToken::new();
        let node_port_bind = cfg.cluster.node_port_bind;
        let cleanup = |dir: &Option<PathBuf>| {
            if let Some(d) = dir {
                let _ = std::fs::remove_dir_all(d);
            }
        };
        let cluster = match cluster::spawn(
            store.clone(),
            cfg.cluster.clone(),
            shutdown.child_token(),
        )
        .await
        {
            Ok(c) => c,
            Err(e) => {
                cleanup(&temp_dir);
                return Err(e.context("starting the simulated cluster"));
            }
        };
        let ground_truth = cluster.ground_truth.clone();
        let ingress_addr = cluster.ingress_addr;
        let kernel_table = cluster.kernel_table.clone();
        let mut state = ApiState::new(store.clone(), shutdown.clone());
        state.deny = cfg.deny.clone();
        state.allow = cfg.allow.clone();
        state.ground_truth = Some(ground_truth.clone());
        state.bookmark_interval = cfg.bookmark_interval;
        state.node_port_bind = node_port_bind;
        state.service_ips = crate::clusterip::ServiceIpRange::new(
            cfg.cluster.service_ip_base,
            crate::clusterip::SERVICE_IP_PREFIX,
        );
        state.processes = cluster.processes.clone();
        let state = Arc::new(state);
        for m in &cfg.manifests {
            if let Err(e) = api::handlers::apply_manifest(&state, m) {
                shutdown.cancel();
                cluster.join().await;
                cleanup(&temp_dir);
                anyhow::bail!(
                    "applying manifest {} {:?}: {}",
                    m["kind"].as_str().unwrap_or("?"),
                    m["metadata"]["name"].as_str().unwrap_or("?"),
                    e.message
                );
            }
        }
        let api_task = api::serve(listener, state, shutdown.clone());
        tracing::info!(%server, kubeconfig = %kubeconfig_path.display(), "sandbox (a simulator) started");
        Ok(Sandbox {
            addr,
            store,
            ground_truth,
            node_port_bind,
            ingress_addr,
            kernel_table,
            kubeconfig_path,
            temp_dir,
            shutdown,
            api_task: Some(api_task),
            cluster: Some(cluster),
        })
    }

    /// `http://127.0.0.1:PORT`.
    pub fn api_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The API server's address.
    pub fn api_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The kubeconfig written at start (context `baton-sandbox`, namespace `default`).
    pub fn kubeconfig_path(&self) -> &Path {
        &self.kubeconfig_path
    }

    pub fn kubeconfig_yaml(&self) -> String {
        kubeconfig::render(&self.api_url())
    }

    /// Where the Service's first port with a nodePort listens: `service` is
    /// `name` (namespace `default`) or `namespace/name`.
    pub fn node_port(&self, service: &str) -> Option<SocketAddr> {
        let (ns, name) = service.split_once('/').unwrap_or(("default", service));
        let svc = self.store.get_raw("Service", Some(ns), name)?;
        let port = svc["spec"]["ports"]
            .as_array()?
            .iter()
            .find_map(|p| p["nodePort"].as_u64())?;
        Some(SocketAddr::new(
            self.node_port_bind,
            u16::try_from(port).ok()?,
        ))
    }

    /// Every Service port with a nodePort: (`namespace/name`, address).
    pub fn node_ports(&self) -> Vec<(String, SocketAddr)> {
        self.each_service(|s| {
            s["spec"]["ports"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|p| p["nodePort"].as_u64().and_then(|p| u16::try_from(p).ok()))
                .map(|port| SocketAddr::new(self.node_port_bind, port))
                .collect()
        })
    }

    /// Every Service's addresses as `addrs` reads them from its object:
    /// (`namespace/name`, address).
    fn each_service(
        &self,
        addrs: impl Fn(&serde_json::Value) -> Vec<SocketAddr>,
    ) -> Vec<(String, SocketAddr)> {
        let (services, _) = self.store.list_raw("Service", None);
        let mut out = Vec::new();
        for s in services {
            let name = format!(
                "{}/{}",
                s["metadata"]["namespace"].as_str().unwrap_or("default"),
                s["metadata"]["name"].as_str().unwrap_or("")
            );
            out.extend(addrs(&s).into_iter().map(|a| (name.clone(), a)));
        }
        out
    }

    /// Where the Service's first port listens on its ClusterIP, as a Pod
    /// (or a load worker on this machine) calls it: `service` is `name`
    /// (namespace `default`) or `namespace/name`. `None` for a headless or
    /// ExternalName Service.
    pub fn cluster_ip(&self, service: &str) -> Option<SocketAddr> {
        let (ns, name) = service.split_once('/').unwrap_or(("default", service));
        let svc = self.store.get_raw("Service", Some(ns), name)?;
        cluster_ip_ports(&svc).into_iter().next()
    }

    /// Every Service port on a ClusterIP: (`namespace/name`, address).
    pub fn cluster_ips(&self) -> Vec<(String, SocketAddr)> {
        self.each_service(cluster_ip_ports)
    }

    /// Where the ingress controller listens (on the NodePorts' address),
    /// `None` unless [`ClusterConfig::ingress_port`](crate::ClusterConfig)
    /// was set. It routes by every Ingress in the cluster: see
    /// [`crate::ingress`].
    pub fn ingress_addr(&self) -> Option<SocketAddr> {
        self.ingress_addr
    }

    /// What `baton sandbox` prints at start: what this is, and how to reach it.
    pub fn banner(&self) -> String {
        let mut s = format!(
            "baton sandbox: a SIMULATOR of a Kubernetes cluster, for demos and tests (not a cluster)\n\
             API server:  {}\n\
             kubeconfig:  {}\n\
             try:         KUBECONFIG={} kubectl get pods\n\
             data plane:  {}\n",
            self.api_url(),
            self.kubeconfig_path.display(),
            self.kubeconfig_path.display(),
            self.data_plane().describe(),
        );
        for (svc, addr) in self.node_ports() {
            s.push_str(&format!("service:     {svc} -> http://{addr}/\n"));
        }
        for (svc, addr) in self.cluster_ips() {
            s.push_str(&format!(
                "cluster IP:  {svc} -> http://{addr}/ (from this machine)\n"
            ));
        }
        if let Some(addr) = self.ingress_addr {
            s.push_str(&format!(
                "ingress:     http://{addr}/ (routes by every Ingress)\n"
            ));
        }
        s
    }

    /// Who carries Service traffic: the userspace proxy or the kernel's NAT.
    pub fn data_plane(&self) -> crate::DataPlaneUsed {
        match self.kernel_table {
            Some(_) => crate::DataPlaneUsed::Kernel,
            None => crate::DataPlaneUsed::Userspace,
        }
    }

    /// The nftables table of the kernel data plane (`ip` family), when it runs.
    pub fn kernel_table(&self) -> Option<&str> {
        self.kernel_table.as_deref()
    }

    /// Which Pod each proxied connection went to.
    pub fn ground_truth(&self) -> GroundTruth {
        self.ground_truth.clone()
    }

    /// The object store, for tests that need to look behind the API.
    pub fn store(&self) -> Arc<Store> {
        self.store.clone()
    }

    /// Stops the API server, its watches, the controllers, the proxy and
    /// every Pod, and waits for them.
    pub async fn shutdown(mut self) {
        self.shutdown.cancel();
        if let Some(t) = self.api_task.take() {
            let _ = t.await;
        }
        if let Some(c) = self.cluster.take() {
            c.join().await;
        }
        if let Some(d) = self.temp_dir.take() {
            let _ = std::fs::remove_dir_all(d);
        }
    }
}

/// A Service's ClusterIP with each of its TCP ports, in order (none when
/// it is headless or has no ClusterIP): where the proxy listens.
fn cluster_ip_ports(svc: &serde_json::Value) -> Vec<SocketAddr> {
    let Some(ip) = svc["spec"]["clusterIP"]
        .as_str()
        .and_then(|ip| ip.parse::<std::net::IpAddr>().ok())
    else {
        return Vec::new();
    };
    svc["spec"]["ports"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|p| p["protocol"].as_str().is_none_or(|p| p == "TCP"))
        .filter_map(|p| u16::try_from(p["port"].as_u64()?).ok())
        .map(|port| SocketAddr::new(ip, port))
        .collect()
}

impl Drop for Sandbox {
    /// A sandbox dropped without [`Sandbox::shutdown`] still stops its tasks
    /// (without waiting for them).
    fn drop(&mut self) {
        self.shutdown.cancel();
        if let Some(d) = self.temp_dir.take() {
            let _ = std::fs::remove_dir_all(d);
        }
    }
}
