//! Streams request records to `requests.csv` while the run goes on.
//!
//! Workers send each record over a bounded channel to one writer thread.
//! When the channel is full the *pacer* waits for room (see `engine`), so
//! a slow disk shows up as lateness in the records, never as a lost row.
//! The writer drains in batches and sleeps briefly when idle rather than
//! being woken per record, which keeps the hot path free of syscalls.

use super::record::RequestRecord;
use crate::rundir::requests::{write_header, write_row};
use std::fs::File;
use std::io::{self, BufWriter};
use std::path::Path;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

/// Records in flight between the workers and the writer (about 5 MB).
pub const CHANNEL_CAPACITY: usize = 65_536;
/// The file on disk is at most this far behind the run.
const FLUSH_EVERY: Duration = Duration::from_millis(250);
const IDLE_SLEEP: Duration = Duration::from_millis(2);

pub struct RecordSink {
    handle: JoinHandle<io::Result<u64>>,
}

impl RecordSink {
    /// Create `path` (truncating), write the header, start the writer.
    pub fn create(path: &Path) -> io::Result<(mpsc::Sender<RequestRecord>, RecordSink)> {
        let file = File::create(path)?;
        let (tx, rx) = mpsc::channel(CHANNEL_CAPACITY);
        let handle = std::thread::Builder::new()
            .name("baton-records".into())
            .spawn(move || write_all(file, rx))?;
        Ok((tx, RecordSink { handle }))
    }

    /// Wait until every sender is gone and every record is on disk.
    /// Returns the number of rows written.
    pub fn finish(self) -> io::Result<u64> {
        self.handle
            .join()
            .map_err(|_| io::Error::other("record writer panicked"))?
    }
}

fn write_all(file: File, mut rx: mpsc::Receiver<RequestRecord>) -> io::Result<u64> {
    let mut w = csv::Writer::from_writer(BufWriter::with_capacity(256 * 1024, file));
    write_header(&mut w)?;
    let mut rows = 0u64;
    let mut last_flush = Instant::now();
    loop {
        match rx.try_recv() {
            Ok(rec) => {
                write_row(&mut w, &rec)?;
                rows += 1;
            }
            Err(mpsc::error::TryRecvError::Empty) => {
                if last_flush.elapsed() >= FLUSH_EVERY {
                    w.flush()?;
                    last_flush = Instant::now();
                }
                std::thread::sleep(IDLE_SLEEP);
            }
            Err(mpsc::error::TryRecvError::Disconnected) => break,
        }
    }
    w.flush()?;
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::load::outcome::{Outcome, Phase};
    use std::sync::Arc;

    #[test]
    fn every_record_sent_lands_as_one_row_in_order_of_arrival() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(crate::rundir::REQUESTS_CSV);
        let (tx, sink) = RecordSink::create(&path).unwrap();
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        rt.block_on(async {
            for seq in 0..1000u64 {
                let rec = RequestRecord {
                    seq,
                    scheduled_ns: seq * 10,
                    start_ns: seq * 10 + 1,
                    connect_us: (seq % 2 == 0).then_some(5),
                    ttfb_us: None,
                    total_us: 7,
                    status: None,
                    outcome: Outcome::Reset,
                    phase: Phase::FirstByte,
                    backend: Some(Arc::from("pod,\"a\"")),
                    version: None,
                    local_port: Some(1),
                    remote_addr: None,
                    worker: None,
                };
                tx.send(rec).await.unwrap();
            }
        });
        drop(tx);
        assert_eq!(sink.finish().unwrap(), 1000);
        let mut r = csv::Reader::from_path(&path).unwrap();
        assert_eq!(
            r.headers().unwrap().iter().collect::<Vec<_>>(),
            crate::rundir::requests::HEADER
        );
        let rows: Vec<csv::StringRecord> = r.records().map(Result::unwrap).collect();
        assert_eq!(rows.len(), 1000);
        assert_eq!(&rows[1][0], "1");
        assert_eq!(&rows[1][3], "");
        assert_eq!(&rows[2][3], "5");
        assert_eq!(&rows[2][7], "reset");
        assert_eq!(&rows[2][8], "first_byte");
        // A backend name with a comma and quotes survives quoting.
        assert_eq!(&rows[2][9], "pod,\"a\"");
    }
}
