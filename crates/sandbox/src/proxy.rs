//! The Service proxy of the sandbox SIMULATOR: a stand-in for kube-proxy.
//!
//! One real TCP listener per Service port that has a `nodePort`, on
//! [`ClusterConfig::node_port_bind`](crate::config::ClusterConfig), and one
//! per TCP Service port on the Service's ClusterIP (a loopback address from
//! [`crate::clusterip`], so a worker process on this machine calls a
//! Service as a Pod would, `http://CLUSTER_IP:PORT/`). Both doors lead to
//! the same per-Service table below; the ground truth says which was used
//! ([`Entry`]). Listeners open when the proxy first sees a Service (or a
//! port) and close when it is gone. Each NEW
//! connection is sent to one endpoint, chosen round robin from the proxy's
//! OWN copy of the Service's ready endpoints. That copy applies every
//! EndpointSlice change only after
//! [`propagation_delay`](crate::config::ClusterConfig::propagation_delay)
//! (+ random jitter): the lag between "the endpoint is out of the
//! EndpointSlice" and "iptables stops sending to it" that drops requests when
//! a Pod stops listening too early. That lag is the point of this module.
//!
//! What a client sees, compared with kube-proxy:
//! - no endpoint: kube-proxy REJECTs, so the client gets `ECONNREFUSED` at
//!   connect. A userspace proxy cannot refuse one connection without closing
//!   the shared listener, so here the handshake completes and the accepted
//!   socket is closed at once with `SO_LINGER 0`: the client sees a **reset**
//!   (`ECONNRESET`) on its first read or write. Logged as `no_endpoints`.
//! - endpoint not listening: iptables' DNAT would make the client's SYN hit a
//!   closed port (RST → connect refused). Here the upstream connect is
//!   refused and the client connection is reset. Logged as
//!   `upstream_refused`.
//! - Pod resets mid-connection: the client connection is reset too
//!   (`upstream_reset`); a half-close (FIN) from either side is passed on as
//!   a half-close.
//! - `sessionAffinity: ClientIP` pins each client IP to one endpoint, as
//!   kube-proxy does (see [`crate::affinity`]); the default path is the
//!   round robin, unchanged.
//! - like kube-proxy since "ProxyTerminatingEndpoints", when a Service has no
//!   ready endpoint the proxy falls back to endpoints that are serving but
//!   terminating.
//!
//! Every connection is logged in the [`GroundTruth`](crate::truth::GroundTruth), with the client's
//! address so a load generator can match its own request (by local port) to
//! the Pod the proxy chose.
//!
//! The ingress controller ([`crate::ingress`]) is a second entry point into
//! the same machinery: it chooses a Service, then takes an endpoint from
//! that Service's table here ([`Tables`], [`Endpoints::pick`]) and relays
//! through the same [`relay`], so endpoint lag behind an Ingress is the lag
//! behind a NodePort. Only how a failure reaches the client differs
//! ([`Failures`]): an HTTP error page there, a reset here.

use std::collections::{HashMap, HashSet};
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

use crate::config::ClusterConfig;
use crate::kernel::Kernel;
use crate::store::Store;
use crate::truth::{ConnRecord, Entry, GroundTruth, Outcome, unix_ns};

/// How long the proxy waits for a Pod to accept before resetting the client.
const UPSTREAM_CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

/// One endpoint as the proxy knows it.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Endpoint {
    pod: String,
    ip: IpAddr,
    /// Port per Service port name ("" for an unnamed port).
    ports: Vec<(String, u16)>,
    ready: bool,
    serving: bool,
    terminating: bool,
}

/// The proxy's own, lagging copy of one Service's endpoints.
#[derive(Default)]
struct Table {
    /// Sequence number of the set currently applied; a later-scheduled set
    /// never gets overwritten by an earlier one that had more jitter.
    applied_seq: u64,
    endpoints: Vec<Endpoint>,
    /// `sessionAffinity: ClientIP`'s timeout (applied at once, not lagged);
    /// `None` for the default round robin.
    affinity: Option<Duration>,
    sessions: crate::affinity::Sessions,
    /// The Service's ports, (name, port), from its spec (applied at once,
    /// not lagged): how an Ingress backend's port number finds its name.
    service_ports: Vec<(String, i32)>,
    /// With the kernel data plane: the Service's doors (address, Service
    /// port name), rerouted whenever `endpoints` changes.
    doors: Vec<(SocketAddr, String)>,
}

/// One Service's lagging endpoint table and round-robin counter: what a
/// NodePort listener and the ingress controller choose an endpoint from.
/// Cheap to clone; clones share the table.
#[derive(Clone, Default)]
pub(crate) struct Endpoints {
    table: Arc<Mutex<Table>>,
    rr: Arc<AtomicUsize>,
}

/// A Service port as an Ingress backend names it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PortRef {
    Number(i32),
    Name(String),
}

/// Every Service's [`Endpoints`], by (namespace, name), as the proxy last
/// synced them; shared with the ingress controller. A Service the proxy has
/// not seen yet has none (a fresh Service is unreachable for up to one sync,
/// behind a NodePort too).
#[derive(Clone, Default)]
pub(crate) struct Tables(Arc<Mutex<HashMap<(String, String), Endpoints>>>);

impl Tables {
    pub(crate) fn get(&self, namespace: &str, name: &str) -> Option<Endpoints> {
        self.0
            .lock()
            .expect("proxy tables")
            .get(&(namespace.to_string(), name.to_string()))
            .cloned()
    }
}

/// Who carries the proxy's decisions: the ground truth it records into,
/// and the kernel data plane when the sandbox runs one (then the
/// listeners only hold their ports, and nftables carries the traffic).
pub(crate) struct Plane {
    pub gt: GroundTruth,
    pub kernel: Option<Arc<Kernel>>,
}

struct ServiceState {
    endpoints: Endpoints,
    /// Last set scheduled for application, and its sequence number.
    scheduled: Vec<Endpoint>,
    scheduled_seq: u64,
    /// Where this Service is listened on (a NodePort, or its ClusterIP and
    /// a port) → (Service port name, door, listener stop token).
    listeners: HashMap<SocketAddr, (String, Entry, CancellationToken)>,
    /// Addresses whose bind failed and was reported: a failure is retried
    /// on every pass but logged as a warning once.
    bind_failures: HashSet<SocketAddr>,
    /// Accept loops, awaited at shutdown so no listener outlives the proxy.
    accept_tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl ServiceState {
    fn new() -> ServiceState {
        ServiceState {
            endpoints: Endpoints::default(),
            scheduled: Vec::new(),
            scheduled_seq: 0,
            listeners: HashMap::new(),
            bind_failures: HashSet::new(),
            accept_tasks: Vec::new(),
        }
    }
}

/// Runs the proxy until `shutdown` is cancelled.
/// `tables` is filled with every Service's endpoint table, for the ingress
/// controller.
pub(crate) async fn run(
    store: Arc<Store>,
    cfg: ClusterConfig,
    plane: Plane,
    tables: Tables,
    shutdown: CancellationToken,
) {
    let mut wakeups = store.wakeups(Duration::from_millis(100));
    let mut services: HashMap<(String, String), ServiceState> = HashMap::new();
    loop {
        sync(&store, &cfg, &plane, &shutdown, &mut services);
        {
            let mut t = tables.0.lock().expect("proxy tables");
            t.retain(|k, _| services.contains_key(k));
            for (k, st) in &services {
                t.entry(k.clone()).or_insert_with(|| st.endpoints.clone());
            }
        }
        if !wakeups.next(&shutdown).await {
            break;
        }
    }
    for st in services.values_mut() {
        for (_, _, tok) in st.listeners.values() {
            tok.cancel();
        }
        for t in st.accept_tasks.drain(..) {
            let _ = t.await;
        }
    }
}

fn sync(
    store: &Arc<Store>,
    cfg: &ClusterConfig,
    plane: &Plane,
    shutdown: &CancellationToken,
    services: &mut HashMap<(String, String), ServiceState>,
) {
    let (svcs, _) = store.list::<Service>(None);
    let (slices, _) = store.list::<EndpointSlice>(None);
    let mut live = std::collections::HashSet::new();
    for svc in &svcs {
        let ns = svc.metadata.namespace.clone().unwrap_or_default();
        let name = svc.metadata.name.clone().unwrap_or_default();
        let key = (ns.clone(), name.clone());
        live.insert(key.clone());
        let st = services.entry(key).or_insert_with(ServiceState::new);
        let affinity = svc.spec.as_ref().and_then(crate::affinity::of_service);
        let service_ports: Vec<(String, i32)> = svc
            .spec
            .iter()
            .flat_map(|s| s.ports.iter().flatten())
            .map(|p| (p.name.clone().unwrap_or_default(), p.port))
            .collect();
        {
            let mut t = st.endpoints.table.lock().expect("proxy table");
            if t.affinity != affinity {
                t.affinity = affinity;
                t.sessions.clear();
            }
            if t.service_ports != service_ports {
                t.service_ports = service_ports;
            }
        }

        // Listeners: one per port with a nodePort, one per port on the
        // ClusterIP.
        let wanted = wanted_listeners(svc, cfg.node_port_bind);
        st.listeners.retain(|addr, (pname, entry, tok)| {
            let keep = wanted.get(addr) == Some(&(pname.clone(), *entry));
            if !keep {
                tok.cancel();
            }
            keep
        });
        st.bind_failures.retain(|addr| wanted.contains_key(addr));
        for (addr, (pname, entry)) in wanted {
            if st.listeners.contains_key(&addr) {
                continue;
            }
            let Some(listener) = listen(addr, entry, &name, &mut st.bind_failures) else {
                continue;
            };
            let tok = shutdown.child_token();
            st.listeners
                .insert(addr, (pname.clone(), entry, tok.clone()));
            st.accept_tasks.retain(|t| !t.is_finished());
            // With the kernel data plane nftables takes every connection
            // before the listener; one it did not translate (seen once in
            // many runs under load: marked, not DNATed) is served here as
            // the userspace proxy serves it, not left in the backlog.
            let target = Target {
                namespace: ns.clone(),
                service: name.clone(),
                port: addr.port(),
                entry,
                port_name: pname,
                endpoints: st.endpoints.clone(),
                untranslated: plane.kernel.is_some(),
            };
            let gt = plane.gt.clone();
            let Some(kernel) = plane.kernel.clone() else {
                st.accept_tasks
                    .push(tokio::spawn(accept_loop(listener, target, gt, tok)));
                continue;
            };
            let table = st.endpoints.table.clone();
            {
                let mut t = table.lock().expect("proxy table");
                let here = candidates(&t, &target.port_name);
                kernel.open_door(addr, &ns, &name, entry, &here);
                t.doors.push((addr, target.port_name.clone()));
            }
            st.accept_tasks.push(tokio::spawn(async move {
                accept_loop(listener, target, gt, tok).await;
                table
                    .lock()
                    .expect("proxy table")
                    .doors
                    .retain(|(a, _)| *a != addr);
                kernel.close_door(addr);
            }));
        }

        // Endpoints: the slices' view now, applied after the lag.
        let mut eps: Vec<Endpoint> = Vec::new();
        for sl in slices.iter().filter(|s| {
            s.metadata.namespace.as_deref() == Some(ns.as_str())
                && s.metadata
                    .labels
                    .as_ref()
                    .and_then(|l| l.get("kubernetes.io/service-name"))
                    == Some(&name)
        }) {
            let ports: Vec<(String, u16)> = sl
                .ports
                .iter()
                .flatten()
                .filter_map(|p| {
                    let port = u16::try_from(p.port?).ok()?;
                    Some((p.name.clone().unwrap_or_default(), port))
                })
                .collect();
            for ep in sl.endpoints.iter().flatten() {
                let c = ep.conditions.clone().unwrap_or_default();
                for a in &ep.addresses {
                    let Ok(ip) = a.parse::<IpAddr>() else {
                        continue;
                    };
                    eps.push(Endpoint {
                        pod: ep
                            .target_ref
                            .as_ref()
                            .and_then(|t| t.name.clone())
                            .unwrap_or_else(|| a.clone()),
                        ip,
                        ports: ports.clone(),
                        // Kubernetes: an unset `ready` means ready.
                        ready: c.ready != Some(false),
                        serving: c.serving.or(c.ready) != Some(false),
                        terminating: c.terminating == Some(true),
                    });
                }
            }
        }
        eps.sort_by(|a, b| a.pod.cmp(&b.pod).then(a.ip.cmp(&b.ip)));
        if eps != st.scheduled {
            st.scheduled = eps.clone();
            st.scheduled_seq += 1;
            let seq = st.scheduled_seq;
            let table = st.endpoints.table.clone();
            let mut lag = cfg.propagation_delay;
            if !cfg.propagation_jitter.is_zero() {
                let j = cfg.propagation_jitter.as_nanos().min(u64::MAX as u128) as u64;
                lag += Duration::from_nanos(rand::random_range(0..=j));
            }
            let stop = shutdown.clone();
            let svc_name = name.clone();
            let kernel = plane.kernel.clone();
            tokio::spawn(async move {
                tokio::select! {
                    _ = stop.cancelled() => {}
                    _ = tokio::time::sleep(lag) => {
                        let mut t = table.lock().expect("proxy table");
                        if seq > t.applied_seq {
                            t.applied_seq = seq;
                            tracing::debug!(service = %svc_name, ready = eps.iter().filter(|e| e.ready).count(), "proxy endpoints applied");
                            t.endpoints = eps;
                            if let Some(k) = &kernel {
                                for (addr, pname) in &t.doors {
                                    k.route(*addr, &candidates(&t, pname));
                                }
                            }
                        }
                    }
                }
            });
        }
    }
    services.retain(|k, st| {
        let keep = live.contains(k);
        if !keep {
            for (_, _, tok) in st.listeners.values() {
                tok.cancel();
            }
        }
        keep
    });
}

/// Where `svc` should be listened on → (Service port name, door): each TCP
/// port with a `nodePort` on `node_port_bind`, and each TCP port on the
/// ClusterIP (none when headless).
fn wanted_listeners(svc: &Service, node_port_bind: IpAddr) -> HashMap<SocketAddr, (String, Entry)> {
    let spec = svc.spec.as_ref();
    let cluster_ip: Option<IpAddr> = spec
        .and_then(|s| s.cluster_ip.as_deref())
        .and_then(|ip| ip.parse().ok());
    let mut wanted = HashMap::new();
    for p in spec.iter().flat_map(|s| s.ports.iter().flatten()) {
        if p.protocol.as_deref().unwrap_or("TCP") != "TCP" {
            continue;
        }
        let pname = p.name.clone().unwrap_or_default();
        if let Some(np) = p.node_port.and_then(|np| u16::try_from(np).ok())
            && np != 0
        {
            wanted.insert(
                SocketAddr::new(node_port_bind, np),
                (pname.clone(), Entry::NodePort),
            );
        }
        if let (Some(ip), Ok(port)) = (cluster_ip, u16::try_from(p.port))
            && port != 0
        {
            wanted
                .entry(SocketAddr::new(ip, port))
                .or_insert((pname, Entry::ClusterIp));
        }
    }
    wanted
}

/// Binds `addr` for `service`'s door `entry`, synchronously so a Service is
/// reachable as soon as the proxy has seen it. A failure is retried on the
/// next pass, and reported once per address (`reported`).
fn listen(
    addr: SocketAddr,
    entry: Entry,
    service: &str,
    reported: &mut HashSet<SocketAddr>,
) -> Option<TcpListener> {
    let bound = std::net::TcpListener::bind(addr)
        .and_then(|l| l.set_nonblocking(true).map(|_| l))
        .and_then(TcpListener::from_std);
    match bound {
        Ok(l) => {
            reported.remove(&addr);
            tracing::info!(%addr, service, ?entry, "proxy listening");
            Some(l)
        }
        Err(e) if !reported.insert(addr) => {
            tracing::debug!(%addr, error = %e, service, ?entry, "still cannot listen");
            None
        }
        // Linux answers on all of 127.0.0.0/8; macOS only on 127.0.0.1 and
        // the addresses aliased on lo0.
        Err(e) if entry == Entry::ClusterIp && e.kind() == std::io::ErrorKind::AddrNotAvailable => {
            tracing::warn!(
                %addr, error = %e, service,
                "cannot listen on the Service's ClusterIP: this system does not answer on {} \
                 (Linux answers on all of 127.0.0.0/8; macOS only on 127.0.0.1 and the addresses \
                 aliased on lo0, e.g. `sudo ifconfig lo0 alias {}`); the Service is reachable by \
                 its NodePort only. Retrying",
                addr.ip(),
                addr.ip()
            );
            None
        }
        Err(e) => {
            tracing::warn!(%addr, error = %e, service, ?entry, "cannot listen; retrying");
            None
        }
    }
}

/// What a listener (a NodePort, or a ClusterIP and port) sends to.
#[derive(Clone)]
struct Target {
    namespace: String,
    service: String,
    /// The port listened on (the nodePort, or the Service port).
    port: u16,
    entry: Entry,
    port_name: String,
    endpoints: Endpoints,
    /// A kernel data plane's port: a connection accepted here is one the
    /// NAT did not translate (said, then served as by the userspace proxy).
    untranslated: bool,
}

impl Endpoints {
    /// The endpoint (Pod name, address) for a new connection from `client`
    /// to the Service port named `port_name`: round robin over ready
    /// endpoints; serving-terminating ones only when no endpoint is ready
    /// (kube-proxy's terminating-endpoint fallback); with
    /// `sessionAffinity: ClientIP`, the client's sticky endpoint.
    pub(crate) fn pick(&self, port_name: &str, client: IpAddr) -> Option<(String, SocketAddr)> {
        let mut guard = self.table.lock().expect("proxy table");
        let t = &mut *guard;
        let mut cands = candidates(t, port_name);
        if cands.is_empty() {
            return None;
        }
        let n = cands.len();
        let rr = || self.rr.fetch_add(1, Ordering::Relaxed) % n;
        let i = match t.affinity {
            None => rr(),
            Some(timeout) => {
                let addrs: Vec<SocketAddr> = cands.iter().map(|c| c.1).collect();
                t.sessions
                    .pick(client, std::time::Instant::now(), timeout, &addrs, rr)
            }
        };
        Some(cands.swap_remove(i))
    }

    /// The name of the Service port `port` refers to, `None` when the
    /// Service has no such port (ingress-nginx then has no endpoint: 503).
    pub(crate) fn port_name(&self, port: &PortRef) -> Option<String> {
        let t = self.table.lock().expect("proxy table");
        t.service_ports
            .iter()
            .find(|(name, number)| match port {
                PortRef::Number(n) => number == n,
                PortRef::Name(n) => name == n,
            })
            .map(|(name, _)| name.clone())
    }
}

/// The endpoints (Pod name, address) a new connection to the Service port
/// named `port_name` may go to: the ready ones; the serving-terminating
/// ones only when none is ready (kube-proxy's terminating-endpoint
/// fallback).
fn candidates(t: &Table, port_name: &str) -> Vec<(String, SocketAddr)> {
    let port_of = |e: &Endpoint| {
        e.ports
            .iter()
            .find(|(n, _)| n == port_name)
            .or(if e.ports.len() == 1 {
                e.ports.first()
            } else {
                None
            })
            .map(|(_, p)| *p)
    };
    let of = |keep: &dyn Fn(&Endpoint) -> bool| -> Vec<(String, SocketAddr)> {
        t.endpoints
            .iter()
            .filter(|e| keep(e))
            .filter_map(|e| Some((e.pod.clone(), SocketAddr::new(e.ip, port_of(e)?))))
            .collect()
    };
    let ready = of(&|e| e.ready);
    if ready.is_empty() {
        of(&|e| e.serving && e.terminating)
    } else {
        ready
    }
}

async fn accept_loop(
    listener: TcpListener,
    target: Target,
    gt: GroundTruth,
    stop: CancellationToken,
) {
    loop {
        let (sock, peer) = tokio::select! {
            _ = stop.cancelled() => return,
            r = listener.accept() => match r {
                Ok(x) => x,
                Err(e) => {
                    tracing::warn!(error = %e, "proxy accept failed");
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
            },
        };
        if target.untranslated {
            tracing::warn!(
                %peer,
                service = %target.service,
                port = target.port,
                "kernel data plane: a connection reached the port untranslated by the NAT; the userspace proxy serves it"
            );
        }
        let target = target.clone();
        let gt = gt.clone();
        let stop = stop.clone();
        tokio::spawn(async move { handle(sock, peer, target, gt, stop).await });
    }
}

/// Closes `sock` with a reset (RST) rather than an orderly FIN.
fn reset(sock: &TcpStream) {
    let _ = sock.set_zero_linger();
}

async fn handle(
    client: TcpStream,
    peer: SocketAddr,
    target: Target,
    gt: GroundTruth,
    stop: CancellationToken,
) {
    let _ = client.set_nodelay(true);
    let pick = target.endpoints.pick(&target.port_name, peer.ip());
    let id = gt.open(ConnRecord {
        id: 0,
        accepted_unix_ns: unix_ns(),
        client_addr: peer,
        namespace: target.namespace.clone(),
        service: target.service.clone(),
        node_port: target.port,
        pod: pick.as_ref().map(|p| p.0.clone()),
        pod_addr: pick.as_ref().map(|p| p.1),
        outcome: Outcome::Open,
        bytes_up: 0,
        bytes_down: 0,
        closed_unix_ns: None,
        ingress: None,
        entry: target.entry,
    });
    relay(
        client,
        &[],
        pick.map(|p| p.1),
        Failures::Reset,
        id,
        &gt,
        &stop,
    )
    .await;
}

/// How a connection that cannot reach its Pod ends for the client.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Failures {
    /// A NodePort's: a reset (see the module doc for how that differs from
    /// kube-proxy's refusal).
    Reset,
    /// An HTTP proxy's (ingress-nginx): an error page, `503` with no
    /// endpoint, `502` when the Pod refuses or resets before answering
    /// anything, `504` when it does not accept in time; then an orderly
    /// close. A Pod that resets after answering part of a response still
    /// resets the client (the status line is gone already).
    HttpAnswer,
}

/// Relays `client` to the endpoint `to` (`None`: the Service had none):
/// `early` (bytes already read from the client) first, then bytes both
/// ways until both sides closed, passing half-closes and resets on; and
/// records how it ended (outcome, bytes, close time) in the ground-truth
/// record `id`, which the caller opened. The one relay behind NodePorts and
/// the ingress controller.
pub(crate) async fn relay(
    client: TcpStream,
    early: &[u8],
    to: Option<SocketAddr>,
    failures: Failures,
    id: u64,
    gt: &GroundTruth,
    stop: &CancellationToken,
) {
    let finish = |outcome: Outcome, up: u64, down: u64| {
        gt.update(id, |r| {
            r.outcome = outcome;
            r.bytes_up = up;
            r.bytes_down = down;
            r.closed_unix_ns = Some(unix_ns());
        })
    };
    // Before any byte reached the client: reset it, or answer `status`.
    let fail = |mut client: TcpStream, status: u16| async move {
        match failures {
            Failures::Reset => reset(&client),
            Failures::HttpAnswer => {
                let (mut r, mut w) = client.split();
                answer(&mut r, &mut w, status, stop).await;
            }
        }
    };
    let Some(addr) = to else {
        fail(client, 503).await;
        finish(Outcome::NoEndpoints, 0, 0);
        return;
    };
    let upstream = tokio::select! {
        _ = stop.cancelled() => { reset(&client); finish(Outcome::Shutdown, 0, 0); return; }
        r = tokio::time::timeout(UPSTREAM_CONNECT_TIMEOUT, TcpStream::connect(addr)) => r,
    };
    let upstream = match upstream {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => {
            tracing::debug!(%addr, error = %e, "upstream connect failed");
            fail(client, 502).await;
            finish(Outcome::UpstreamRefused, 0, 0);
            return;
        }
        Err(_) => {
            fail(client, 504).await;
            finish(Outcome::UpstreamTimeout, 0, 0);
            return;
        }
    };
    let _ = upstream.set_nodelay(true);
    let (mut cr, mut cw) = client.into_split();
    let (mut pr, mut pw) = upstream.into_split();
    let (mut up, mut down) = (0u64, 0u64);
    let outcome = {
        let up_f = pump(&mut cr, &mut pw, early, &mut up, Side::Client);
        let down_f = pump(&mut pr, &mut cw, &[], &mut down, Side::Pod);
        tokio::pin!(up_f, down_f);
        let (mut up_done, mut down_done) = (false, false);
        loop {
            tokio::select! {
                _ = stop.cancelled() => break Outcome::Shutdown,
                r = &mut up_f, if !up_done => match r {
                    Ok(()) => up_done = true,
                    Err(side) => break side.reset_outcome(),
                },
                r = &mut down_f, if !down_done => match r {
                    Ok(()) => down_done = true,
                    Err(side) => break side.reset_outcome(),
                },
            }
            if up_done && down_done {
                break Outcome::Proxied;
            }
        }
    };
    match outcome {
        // Nothing answered yet: an HTTP proxy still can (nginx: "upstream
        // prematurely closed" / "reset by peer" → 502).
        Outcome::UpstreamReset if failures == Failures::HttpAnswer && down == 0 => {
            reset(pr.as_ref());
            answer(&mut cr, &mut cw, 502, stop).await;
        }
        // The Pod reset: reset the client, as a DNAT'd connection would see.
        Outcome::UpstreamReset => reset(cr.as_ref()),
        Outcome::ClientReset => reset(pr.as_ref()),
        Outcome::Shutdown => {
            reset(cr.as_ref());
            reset(pr.as_ref());
        }
        _ => {}
    }
    drop((cr, cw, pr, pw));
    finish(outcome, up, down);
}

#[derive(Clone, Copy)]
enum Side {
    Client,
    Pod,
}

impl Side {
    fn other(self) -> Side {
        match self {
            Side::Client => Side::Pod,
            Side::Pod => Side::Client,
        }
    }
    fn reset_outcome(self) -> Outcome {
        match self {
            Side::Client => Outcome::ClientReset,
            Side::Pod => Outcome::UpstreamReset,
        }
    }
}

/// Writes `first`, then copies `from` → `to` until EOF, then half-closes
/// `to`. On an error, returns the side whose socket failed.
async fn pump(
    r: &mut OwnedReadHalf,
    w: &mut OwnedWriteHalf,
    first: &[u8],
    n: &mut u64,
    from: Side,
) -> Result<(), Side> {
    if !first.is_empty() {
        if w.write_all(first).await.is_err() {
            return Err(from.other());
        }
        *n += first.len() as u64;
    }
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let k = match r.read(&mut buf).await {
            Ok(0) => break,
            Ok(k) => k,
            Err(_) => return Err(from),
        };
        if w.write_all(&buf[..k]).await.is_err() {
            return Err(from.other());
        }
        *n += k as u64;
    }
    // Pass the half-close on.
    let _ = w.shutdown().await;
    Ok(())
}

/// How long [`answer`] reads what a client still sends after its error
/// page (nginx's `lingering_timeout` is 5 s; a client that sent its whole
/// request closes at once).
const LINGER: Duration = Duration::from_secs(2);

/// Answers an HTTP error page as nginx words it, then closes in order: FIN
/// after the page, and whatever the client still sends (a request body)
/// is read and dropped for up to [`LINGER`], so that closing with unread
/// data does not turn into a reset that destroys the page (nginx's
/// lingering close).
pub(crate) async fn answer<R, W>(r: &mut R, w: &mut W, status: u16, stop: &CancellationToken)
where
    R: tokio::io::AsyncRead + Unpin,
    W: tokio::io::AsyncWrite + Unpin,
{
    if w.write_all(&error_page(status)).await.is_err() {
        return;
    }
    let _ = w.shutdown().await;
    let drain = async {
        let mut buf = [0u8; 4096];
        while let Ok(k) = r.read(&mut buf).await {
            if k == 0 {
                break;
            }
        }
    };
    tokio::select! {
        _ = stop.cancelled() => {}
        _ = tokio::time::timeout(LINGER, drain) => {}
    }
}

/// A complete HTTP/1.1 response with nginx's error page for `status`.
pub(crate) fn error_page(status: u16) -> Vec<u8> {
    let reason = match status {
        400 => "Bad Request",
        404 => "Not Found",
        502 => "Bad Gateway",
        503 => "Service Temporarily Unavailable",
        504 => "Gateway Time-out",
        _ => "Error",
    };
    let body = format!(
        "<html>\r\n<head><title>{status} {reason}</title></head>\r\n<body>\r\n<center><h1>{status} {reason}</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n"
    );
    format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: text/html\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}
