//! One request's record: a row of `requests.csv` (`rundir::requests`).
//!
//! Times are offsets from the run's start on one monotonic clock, so they
//! line up with the lifecycle events the cluster side records.

use super::outcome::{Outcome, Phase};
use std::net::SocketAddr;
use std::sync::Arc;

#[derive(Clone, Debug, PartialEq)]
pub struct RequestRecord {
    /// Order in which requests were sent, from 0, without gaps.
    pub seq: u64,
    /// When the request was due (open model); equal to `start_ns` in the
    /// closed model (`--rate 0`), where nothing is scheduled ahead.
    pub scheduled_ns: u64,
    /// When the connect began.
    pub start_ns: u64,
    /// Time to an established connection; `None` if it never was.
    pub connect_us: Option<u64>,
    /// From start to the first response byte read off the socket.
    pub ttfb_us: Option<u64>,
    /// From start to the end (complete response, error or timeout).
    pub total_us: u64,
    pub status: Option<u16>,
    pub outcome: Outcome,
    pub phase: Phase,
    /// Who answered (from `backend_from`), shared between records.
    pub backend: Option<Arc<str>>,
    /// Which version answered (from `version_from`).
    pub version: Option<Arc<str>>,
    /// The connection's local port: joins the record with a packet
    /// capture, conntrack, or the sandbox's ground truth. Empty in format
    /// 1 files and when no socket was made.
    pub local_port: Option<u16>,
    /// The address the connection was made to (what the URL resolved to:
    /// a node's address and NodePort, a load balancer's): with the local
    /// port, the connection's 4-tuple. Empty in files before it was
    /// recorded and when no socket was made.
    pub remote_addr: Option<SocketAddr>,
    /// The in-cluster worker that sent it (`load.from: cluster`), by its
    /// Job completion index; `None` when this host sent it.
    pub worker: Option<u32>,
}

impl RequestRecord {
    /// Lateness: how long after its due instant the request really began.
    pub fn lateness_ns(&self) -> u64 {
        self.start_ns.saturating_sub(self.scheduled_ns)
    }
}
