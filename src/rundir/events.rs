//! `events.csv`: every lifecycle event of a run, one
//! [`LifecycleEvent`] per row, its columns the struct's fields in order.
//! Streamed during the run as events arrive ([`Stream`], so a run that
//! dies keeps what it saw), then rewritten once in order of
//! `observed_ns` ([`write`]).
//!
//! Columns are only ever appended (a new field goes last in
//! `LifecycleEvent`, `#[serde(default)]`); [`HEADER`] pins the columns
//! every reader knows.

use super::{AtomicFile, RunDirError};
use crate::cluster::event::LifecycleEvent;
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

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

/// Write `events` to `path`, in the order given, whole or not at all.
pub fn write(path: &Path, events: &[LifecycleEvent]) -> Result<(), RunDirError> {
    let err = |e: &dyn std::fmt::Display| RunDirError::write(path, e);
    let mut w = writer(AtomicFile::create(path)?, path)?;
    for e in events {
        w.serialize(e).map_err(|e| err(&e))?;
    }
    w.into_inner().map_err(|e| err(e.error()))?.commit()
}

/// The header written by hand (serde would write it with the first row
/// only, and a run may see none).
fn writer<W: Write>(sink: W, path: &Path) -> Result<csv::Writer<W>, RunDirError> {
    let mut w = csv::WriterBuilder::new()
        .has_headers(false)
        .from_writer(sink);
    w.write_record(HEADER)
        .map_err(|e| RunDirError::write(path, e))?;
    Ok(w)
}

/// `events.csv` as the run goes: each event appended and flushed.
pub struct Stream {
    w: csv::Writer<File>,
    path: PathBuf,
}

impl Stream {
    pub fn create(path: &Path) -> Result<Stream, RunDirError> {
        let file = File::create(path).map_err(|e| RunDirError::write(path, e))?;
        Ok(Stream {
            w: writer(file, path)?,
            path: path.to_path_buf(),
        })
    }

    pub fn push(&mut self, e: &LifecycleEvent) -> Result<(), RunDirError> {
        self.w
            .serialize(e)
            .and_then(|()| self.w.flush().map_err(csv::Error::from))
            .map_err(|e| RunDirError::write(&self.path, e))
    }
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
    fn a_streamed_file_reads_back_after_every_event() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("events.csv");
        let mut s = Stream::create(&path).unwrap();
        assert_eq!(read(&path).unwrap(), vec![]);
        let e = LifecycleEvent {
            observed_ns: 7,
            kind: EventKind::PodReady,
            pod: "web-1".into(),
            ..Default::default()
        };
        s.push(&e).unwrap();
        // Readable while the run goes on, as a crash would leave it.
        assert_eq!(read(&path).unwrap(), vec![e]);
    }

    #[test]
    fn a_run_without_events_still_leaves_a_readable_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("events.csv");
        write(&path, &[]).unwrap();
        assert_eq!(read(&path).unwrap(), vec![]);
    }
}
