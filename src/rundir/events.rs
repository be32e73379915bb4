//! `events.csv`: every lifecycle event of a run, one
//! [`LifecycleEvent`] per row, its columns the struct's fields in order.
//!
//! Columns are only ever appended (a new field goes last in
//! `LifecycleEvent`, `#[serde(default)]`); [`HEADER`] pins the columns
//! every reader knows.

use super::RunDirError;
use crate::cluster::event::LifecycleEvent;
use std::path::Path;

/// The columns of `events.csv` as format 1 wrote them.
pub const HEADER: [&str; 14] = [
    "observed_ns",
    "api_ns",
    "kind",
    "object",
    "pod",
    "address",
    "old",
    "new",
    "reason",
    "grace_period_s",
    "exit_code",
    "blind_ns",
    "late",
    "detail",
];

/// Write `events` to `path`, in the order given.
pub fn write(path: &Path, events: &[LifecycleEvent]) -> Result<(), RunDirError> {
    let err = |e: &dyn std::fmt::Display| RunDirError::write(path, e);
    let mut w = csv::Writer::from_path(path).map_err(|e| err(&e))?;
    if events.is_empty() {
        // serde writes the header with the first row; an empty file would
        // not read back.
        w.write_record(HEADER).map_err(|e| err(&e))?;
    }
    for e in events {
        w.serialize(e).map_err(|e| err(&e))?;
    }
    w.flush().map_err(|e| err(&e))
}

/// Read back what [`write`] wrote.
pub fn read(path: &Path) -> Result<Vec<LifecycleEvent>, RunDirError> {
    let mut r = csv::Reader::from_path(path).map_err(|e| RunDirError::read(path, e))?;
    r.deserialize()
        .map(|row| row.map_err(|e| RunDirError::read(path, e)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::event::EventKind;

    #[test]
    fn events_survive_a_round_trip_through_events_csv() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(super::super::EVENTS_CSV);
        let events = vec![
            LifecycleEvent {
                observed_ns: 1_500_000_000,
                api_ns: Some(-2_000_000_000),
                kind: EventKind::PodDeleting,
                object: "pod/web-7f9-abc".into(),
                pod: "web-7f9-abc".into(),
                grace_period_s: Some(30),
                detail: "message with, a comma and \"quotes\"".into(),
                ..Default::default()
            },
            LifecycleEvent {
                observed_ns: 2_000_000_000,
                kind: EventKind::WatchRestarted,
                object: "watch/pods".into(),
                blind_ns: Some(120_000_000),
                late: true,
                ..Default::default()
            },
        ];
        write(&path, &events).unwrap();
        assert_eq!(read(&path).unwrap(), events);
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text.lines().next().unwrap(), HEADER.join(","));
    }

    #[test]
    fn a_run_without_events_still_leaves_a_readable_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("events.csv");
        write(&path, &[]).unwrap();
        assert_eq!(read(&path).unwrap(), vec![]);
    }
}
