//! On the sandbox only: `sandbox-ground-truth.csv`, the simulator's own
//! record of which Pod its proxy sent each connection to and how it
//! ended, on the run clock. For checking attribution against, and for a
//! person curious about a failure.
//!
//! Not for: anything a report shows (a real cluster has no such record).

use crate::clock::RunClock;
use std::path::Path;

/// Write it; a failure warns (the run's own files are what count).
pub fn write(path: &Path, sandbox: &baton_sandbox::Sandbox, clock: RunClock) {
    if let Err(e) = try_write(path, sandbox, clock) {
        eprintln!("baton: warning: writing the sandbox's ground truth: {e}");
    }
}

fn try_write(
    path: &Path,
    sandbox: &baton_sandbox::Sandbox,
    clock: RunClock,
) -> std::io::Result<()> {
    let origin = clock
        .wall_origin()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let mut w = csv::Writer::from_path(path).map_err(std::io::Error::other)?;
    w.write_record(["accepted_ns", "closed_ns", "client_port", "pod", "outcome"])
        .map_err(std::io::Error::other)?;
    let rel = |t: u128| (t as i128 - origin as i128).to_string();
    for r in sandbox.ground_truth().snapshot() {
        let outcome = serde_json::to_value(r.outcome)
            .ok()
            .and_then(|v| v.as_str().map(String::from))
            .unwrap_or_default();
        w.write_record([
            rel(r.accepted_unix_ns),
            r.closed_unix_ns.map(rel).unwrap_or_default(),
            r.client_addr.port().to_string(),
            r.pod.unwrap_or_default(),
            outcome,
        ])
        .map_err(std::io::Error::other)?;
    }
    w.flush()
}
