//! The sandbox SIMULATOR's ground truth: what really happened, as only a
//! simulator can know it. Which Service and Pod the proxy (a NodePort, a
//! ClusterIP or the ingress) sent each connection to and how it ended, and the moments each Pod's "container" changed what it
//! does with a connection (listening, stopped accepting, reset everything).
//! Together they say why any one request failed, so tests can referee
//! baton's attribution; a real cluster has no such record. Also each
//! eviction the Eviction API allowed or refused, and under which
//! PodDisruptionBudget (Kubernetes records no Event for either).
//!
//! Not for: anything baton reports (it must work without this).

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use serde::Serialize;

/// How many connection records the [`GroundTruth`] keeps (oldest dropped first).
pub const GROUND_TRUTH_CAPACITY: usize = 1_000_000;

/// What became of one proxied connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Still open.
    Open,
    /// Bytes were relayed and both sides closed normally.
    Proxied,
    /// The proxy's copy had no endpoint: the client connection was reset
    /// (behind the ingress: answered `503`).
    NoEndpoints,
    /// The chosen Pod refused the connection: the client connection was
    /// reset (behind the ingress: answered `502`).
    UpstreamRefused,
    /// The chosen Pod did not accept in time: the client connection was
    /// reset (behind the ingress: answered `504`).
    UpstreamTimeout,
    /// The Pod reset the connection; the client connection was reset too
    /// (behind the ingress, when the Pod had answered nothing yet: `502`).
    UpstreamReset,
    /// The client reset the connection; the Pod connection was reset too.
    ClientReset,
    /// The sandbox shut down while the connection was open.
    Shutdown,
    /// The ingress found no rule for the request: answered `404`.
    NoRoute,
    /// The ingress got no complete, valid request head (malformed, too
    /// large, or not in time: answered `400` or closed; or the client
    /// closed first).
    BadRequest,
}

/// One connection accepted by the proxy.
#[derive(Clone, Debug, Serialize)]
pub struct ConnRecord {
    /// Sequence number, from 0, per sandbox.
    pub id: u64,
    /// When the proxy accepted the connection (Unix epoch, ns).
    pub accepted_unix_ns: u128,
    /// The client's address as the proxy saw it (its local port identifies
    /// the request on the client side).
    pub client_addr: SocketAddr,
    /// The Service the connection was sent to (empty when the ingress
    /// found no rule, or got no request).
    pub namespace: String,
    pub service: String,
    /// The port the connection arrived on: the Service's NodePort, its
    /// port on its ClusterIP (see `entry`), or the ingress controller's
    /// listener when `ingress` is set.
    pub node_port: u16,
    /// The Pod chosen, if any.
    pub pod: Option<String>,
    pub pod_addr: Option<SocketAddr>,
    pub outcome: Outcome,
    /// Bytes relayed client → Pod.
    pub bytes_up: u64,
    /// Bytes relayed Pod → client.
    pub bytes_down: u64,
    /// When the proxy closed both sides (Unix epoch, ns); `None` while open.
    pub closed_unix_ns: Option<u128>,
    /// Behind the ingress controller: the Ingress whose rule chose
    /// `service` (`namespace/name`; the canary Ingress's when the canary
    /// was chosen), or `""` before a rule was found. `None` for a NodePort
    /// connection.
    pub ingress: Option<String>,
    /// How the connection came in: by a NodePort, a ClusterIP or the
    /// ingress controller.
    pub entry: Entry,
}

/// The door a connection came in by.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Entry {
    /// A Service's NodePort, on the node address.
    NodePort,
    /// A Service's ClusterIP and port: a caller inside the "cluster" (a
    /// worker process on this machine).
    ClusterIp,
    /// The ingress controller's listener.
    Ingress,
}

#[derive(Default)]
struct Log {
    /// Id of `records[0]`.
    first_id: u64,
    records: VecDeque<ConnRecord>,
}

/// The simulator's own record: every proxied connection and every Pod
/// moment. Cheap to clone; all clones share one log.
#[derive(Clone, Default)]
pub struct GroundTruth {
    log: Arc<Mutex<Log>>,
    next_id: Arc<AtomicU64>,
    pods: Arc<Mutex<Vec<PodMoment>>>,
    evictions: Arc<Mutex<Vec<EvictionRecord>>>,
    /// Times the kernel data plane's conntrack said it lost events.
    lost_events: Arc<AtomicU64>,
}

impl GroundTruth {
    /// Every record still kept, oldest first (open connections included,
    /// with outcome [`Outcome::Open`]).
    pub fn snapshot(&self) -> Vec<ConnRecord> {
        self.log
            .lock()
            .expect("ground truth")
            .records
            .iter()
            .cloned()
            .collect()
    }

    pub(crate) fn open(&self, mut rec: ConnRecord) -> u64 {
        let mut log = self.log.lock().expect("ground truth");
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        rec.id = id;
        if log.records.is_empty() {
            log.first_id = id;
        }
        // Ids are handed out under the lock, so records stay in id order.
        log.records.push_back(rec);
        while log.records.len() > GROUND_TRUTH_CAPACITY {
            log.records.pop_front();
            log.first_id += 1;
        }
        id
    }

    /// How many times the kernel data plane's event source said it lost
    /// events (conntrack's ENOBUFS): when not 0, some connections have no
    /// record. Always 0 for the userspace proxy, which records each
    /// connection itself.
    pub fn lost_events(&self) -> u64 {
        self.lost_events.load(Ordering::Relaxed)
    }

    pub(crate) fn note_lost_events(&self) {
        self.lost_events.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn update(&self, id: u64, f: impl FnOnce(&mut ConnRecord)) {
        let mut log = self.log.lock().expect("ground truth");
        let Some(idx) = id.checked_sub(log.first_id) else {
            return;
        };
        if let Some(r) = log.records.get_mut(idx as usize) {
            f(r);
        }
    }
}

pub(crate) fn unix_ns() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0)
}

/// How many Pod moments are kept (the older half is dropped when full).
pub const POD_MOMENT_CAPACITY: usize = 200_000;

/// What a Pod's container began doing with connections, as the kubelet
/// did it (not as the API later said).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PodMomentKind {
    /// The container started (it may not listen yet: `startup-delay`).
    Started,
    /// It listens: new connections are accepted and served.
    Listening,
    /// The kubelet saw the deletion: the preStop hook runs (the Pod still
    /// serves until SIGTERM).
    Deleting,
    /// SIGTERM, `close`: the listener is closed and every connection reset.
    Closed,
    /// SIGTERM, `drain`: the listener is closed; connections in flight finish.
    Draining,
    /// SIGKILL at the end of the grace period: every connection reset.
    Killed,
    /// The container exited on its own with an error (every connection
    /// reset), or could not listen.
    Crashed,
    /// The container is gone after a clean stop (nothing was left open).
    Exited,
}

/// One [`PodMomentKind`] of one Pod, when it happened.
#[derive(Clone, Debug, Serialize)]
pub struct PodMoment {
    /// Unix epoch, ns.
    pub unix_ns: u128,
    pub namespace: String,
    pub pod: String,
    pub kind: PodMomentKind,
}

impl GroundTruth {
    /// Every Pod moment so far, in the order they happened.
    pub fn pod_moments(&self) -> Vec<PodMoment> {
        self.pods.lock().expect("ground truth").clone()
    }

    /// Records that `pod` began `kind` now.
    pub(crate) fn pod_moment(&self, namespace: &str, pod: &str, kind: PodMomentKind) {
        let mut pods = self.pods.lock().expect("ground truth");
        if pods.len() >= POD_MOMENT_CAPACITY {
            pods.drain(..POD_MOMENT_CAPACITY / 2);
        }
        pods.push(PodMoment {
            unix_ns: unix_ns(),
            namespace: namespace.to_string(),
            pod: pod.to_string(),
            kind,
        });
    }
}

/// How many eviction records are kept (the older half is dropped when full).
pub const EVICTION_CAPACITY: usize = 100_000;

/// What the Eviction API did with one request.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EvictionOutcome {
    /// Allowed: the Pod was deleted gracefully (201).
    Evicted,
    /// Refused by a PodDisruptionBudget (429), or because more than one
    /// budget covers the Pod (500).
    Refused,
}

/// One request to `pods/eviction` that named an existing Pod (dry runs
/// and malformed requests are not recorded).
#[derive(Clone, Debug, Serialize)]
pub struct EvictionRecord {
    /// Unix epoch, ns.
    pub unix_ns: u128,
    pub namespace: String,
    pub pod: String,
    pub outcome: EvictionOutcome,
    /// The budget that allowed or refused it (`None`: no budget covers
    /// the Pod, or the Pod was not running so no budget was consulted;
    /// several, comma-separated, when more than one covers it).
    pub pdb: Option<String>,
}

impl GroundTruth {
    /// Every eviction allowed or refused so far, in order.
    pub fn evictions(&self) -> Vec<EvictionRecord> {
        self.evictions.lock().expect("ground truth").clone()
    }

    /// Records what the Eviction API did for `pod` now.
    pub(crate) fn eviction(
        &self,
        namespace: &str,
        pod: &str,
        outcome: EvictionOutcome,
        pdb: Option<String>,
    ) {
        let mut ev = self.evictions.lock().expect("ground truth");
        if ev.len() >= EVICTION_CAPACITY {
            ev.drain(..EVICTION_CAPACITY / 2);
        }
        ev.push(EvictionRecord {
            unix_ns: unix_ns(),
            namespace: namespace.to_string(),
            pod: pod.to_string(),
            outcome,
            pdb,
        });
    }
}
