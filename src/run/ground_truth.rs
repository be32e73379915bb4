//! On the sandbox only: the simulator's own record, on the run clock, in
//! `sandbox-ground-truth.csv` (which Pod its proxy sent each connection to,
//! through which Service and door, and how it ended), `sandbox-pod-truth.csv` (when each Pod's container
//! began listening, stopped accepting, was killed...) and
//! `sandbox-evictions.csv` (what its Eviction API allowed or refused). For
//! checking attribution against, and for a person curious about a failure.
//!
//! Not for: anything a report shows (a real cluster has no such record).

use crate::clock::RunClock;
use crate::rundir;
use std::path::Path;

/// Write them into the run directory `out`; a failure warns (the run's own
/// files are what count).
pub fn write(out: &Path, sandbox: &baton_sandbox::Sandbox, clock: RunClock) {
    let origin = clock
        .wall_origin()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let truth = sandbox.ground_truth();
    if truth.lost_events() > 0 {
        eprintln!(
            "baton: warning: the sandbox's kernel data plane lost conntrack events ({} ENOBUFS): some connections have no ground-truth record",
            truth.lost_events()
        );
    }
    let written = write_connections(&out.join(rundir::GROUND_TRUTH_CSV), &truth, origin)
        .and_then(|()| write_pods(&out.join(rundir::POD_TRUTH_CSV), &truth, origin))
        .and_then(|()| write_evictions(&out.join(rundir::EVICTION_TRUTH_CSV), &truth, origin));
    if let Err(e) = written {
        eprintln!("baton: warning: writing the sandbox's ground truth: {e}");
    }
}

/// The name serde gives a unit enum variant (`upstream_refused`,
/// `listening`, `evicted`): how the simulator's own types name them.
fn serde_name(v: &impl serde::Serialize) -> String {
    serde_json::to_value(v)
        .ok()
        .and_then(|v| v.as_str().map(String::from))
        .unwrap_or_default()
}

/// Unix ns → ns on the run clock.
fn rel(t: u128, origin: u128) -> String {
    (t as i128 - origin as i128).to_string()
}

fn write_pods(
    path: &Path,
    truth: &baton_sandbox::truth::GroundTruth,
    origin: u128,
) -> std::io::Result<()> {
    let mut w = csv::Writer::from_path(path).map_err(std::io::Error::other)?;
    w.write_record(["at_ns", "pod", "moment"])
        .map_err(std::io::Error::other)?;
    for m in truth.pod_moments() {
        let kind = serde_name(&m.kind);
        w.write_record([rel(m.unix_ns, origin), m.pod, kind])
            .map_err(std::io::Error::other)?;
    }
    w.flush()
}

fn write_evictions(
    path: &Path,
    truth: &baton_sandbox::truth::GroundTruth,
    origin: u128,
) -> std::io::Result<()> {
    let mut w = csv::Writer::from_path(path).map_err(std::io::Error::other)?;
    w.write_record(["at_ns", "namespace", "pod", "outcome", "pdb"])
        .map_err(std::io::Error::other)?;
    for e in truth.evictions() {
        let outcome = serde_name(&e.outcome);
        w.write_record([
            rel(e.unix_ns, origin),
            e.namespace,
            e.pod,
            outcome,
            e.pdb.unwrap_or_default(),
        ])
        .map_err(std::io::Error::other)?;
    }
    w.flush()
}

fn write_connections(
    path: &Path,
    truth: &baton_sandbox::truth::GroundTruth,
    origin: u128,
) -> std::io::Result<()> {
    let mut w = csv::Writer::from_path(path).map_err(std::io::Error::other)?;
    // `service` came last (the ingress chooses among Services), then
    // `entry` (the door: node_port, cluster_ip, ingress): readers go by
    // column name, and older files without them still read.
    w.write_record([
        "accepted_ns",
        "closed_ns",
        "client_port",
        "pod",
        "outcome",
        "service",
        "entry",
    ])
    .map_err(std::io::Error::other)?;
    let rel = |t: u128| rel(t, origin);
    for r in truth.snapshot() {
        let outcome = serde_name(&r.outcome);
        let entry = serde_name(&r.entry);
        w.write_record([
            rel(r.accepted_unix_ns),
            r.closed_unix_ns.map(rel).unwrap_or_default(),
            r.client_addr.port().to_string(),
            r.pod.unwrap_or_default(),
            outcome,
            r.service,
            entry,
        ])
        .map_err(std::io::Error::other)?;
    }
    w.flush()
}
