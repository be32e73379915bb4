//! The two derived tables of a run directory: `failures.csv` (every
//! failed request with its attribution) and `timeline.csv` (per 100 ms
//! bucket: requests, outcomes, latency, versions, endpoints, pods).
//!
//! Each is written whole or not at all.
//!
//! Not for: computing either (see `analyse`, `attribution`).

use crate::analyse::Bucket;
use crate::attribution::{Attribution, FailedRequest};
use crate::load::outcome::Outcome;
use crate::rundir::AtomicFile;
use crate::timeline::Timeline;
use std::collections::BTreeSet;
use std::path::Path;

fn csv_err(path: &Path) -> impl Fn(csv::Error) -> std::io::Error + '_ {
    move |e| std::io::Error::other(format!("{}: {e}", path.display()))
}

/// `failures.csv`: one row per failed request, in `seq` order, with its
/// cause, confidence, candidate pods (`pod (state)` joined by `; `) and
/// evidence. `failed` and `attributions` are in the same order.
pub fn write_failures(
    path: &Path,
    failed: &[FailedRequest],
    attributions: &[Attribution],
) -> std::io::Result<()> {
    let err = csv_err(path);
    let mut w = csv::Writer::from_writer(AtomicFile::create(path).map_err(std::io::Error::other)?);
    w.write_record([
        "seq",
        "start_ns",
        "end_ns",
        "outcome",
        "phase",
        "status",
        "backend",
        "cause",
        "confidence",
        "candidates",
        "evidence",
    ])
    .map_err(&err)?;
    for (f, a) in failed.iter().zip(attributions) {
        debug_assert_eq!(f.seq, a.seq);
        let candidates: Vec<String> = a
            .candidates
            .iter()
            .map(|c| format!("{} ({})", c.pod, c.state))
            .collect();
        w.write_record([
            f.seq.to_string(),
            f.start_ns.to_string(),
            f.end_ns.to_string(),
            f.outcome.as_str().to_string(),
            f.phase.as_str().to_string(),
            f.status.map(|s| s.to_string()).unwrap_or_default(),
            f.backend.clone().unwrap_or_default(),
            a.cause.as_str().to_string(),
            a.confidence.as_str().to_string(),
            candidates.join("; "),
            a.evidence.clone(),
        ])
        .map_err(&err)?;
    }
    w.into_inner()
        .map_err(|e| std::io::Error::other(e.to_string()))?
        .commit()
        .map_err(std::io::Error::other)
}

/// `timeline.csv`: per bucket, what the load saw and what the cluster
/// looked like at the bucket's start. Versions get a column each
/// (`version:1.27`), pods a column per lifecycle state.
pub fn write_timeline(path: &Path, buckets: &[Bucket], timeline: &Timeline) -> std::io::Result<()> {
    let err = csv_err(path);
    let versions: BTreeSet<&str> = buckets
        .iter()
        .flat_map(|b| b.versions.keys().map(String::as_str))
        .collect();
    let failing: Vec<Outcome> = Outcome::ALL
        .into_iter()
        .filter(|o| *o != Outcome::Ok)
        .collect();
    let mut header: Vec<String> = ["start_ms", "sent", "ok", "failed"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    header.extend(failing.iter().map(|o| format!("failed:{}", o.as_str())));
    header.extend(["p50_ms", "p99_ms"].iter().map(|s| s.to_string()));
    header.extend(versions.iter().map(|v| format!("version:{v}")));
    header.extend(
        [
            "ready_endpoints",
            "pods_pending",
            "pods_running",
            "pods_ready",
            "pods_terminating",
        ]
        .iter()
        .map(|s| s.to_string()),
    );
    let mut w = csv::Writer::from_writer(AtomicFile::create(path).map_err(std::io::Error::other)?);
    w.write_record(&header).map_err(&err)?;
    let ms = |v: Option<f64>| v.map(|x| format!("{x:.3}")).unwrap_or_default();
    for b in buckets {
        let mut row: Vec<String> = vec![
            (b.start_ns / 1_000_000).to_string(),
            b.sent.to_string(),
            b.ok.to_string(),
            b.failed_total().to_string(),
        ];
        row.extend(
            failing
                .iter()
                .map(|o| b.failed.get(o).copied().unwrap_or(0).to_string()),
        );
        row.push(ms(b.p50_ms));
        row.push(ms(b.p99_ms));
        row.extend(
            versions
                .iter()
                .map(|v| b.versions.get(*v).copied().unwrap_or(0).to_string()),
        );
        let pods = timeline.pods_by_state_at(b.start_ns);
        row.push(timeline.ready_endpoints_at(b.start_ns).to_string());
        row.push(pods.pending.to_string());
        row.push(pods.running.to_string());
        row.push(pods.ready.to_string());
        row.push(pods.terminating.to_string());
        w.write_record(&row).map_err(&err)?;
    }
    w.into_inner()
        .map_err(|e| std::io::Error::other(e.to_string()))?
        .commit()
        .map_err(std::io::Error::other)
}
