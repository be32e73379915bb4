//! `requests.csv`: one row per request sent, written by the load engine as
//! the run goes ([`write_row`], on the hot path: no allocation per field)
//! and read back by the analysis ([`Reader`]), so that `baton run` and
//! `baton report DIR` measure the same bytes.
//!
//! Rows are in completion order; `seq` is the sending order. Columns are
//! only ever appended: a reader takes the columns it knows by position
//! and checks their names first. Format 1 had the first 11
//! ([`V1_COLUMNS`]); `local_port` and `remote_addr` came after it, and
//! `worker` (the in-cluster worker that sent it) with format 4.

use super::RunDirError;
use crate::load::outcome::{Outcome, Phase};
use crate::load::record::RequestRecord;
use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The columns of `requests.csv`, in order (DESIGN.md, "Run directory").
pub const HEADER: [&str; 14] = [
    "seq",
    "scheduled_ns",
    "start_ns",
    "connect_us",
    "ttfb_us",
    "total_us",
    "status",
    "outcome",
    "phase",
    "backend",
    "version",
    "local_port",
    "remote_addr",
    "worker",
];

/// How many columns format 1 files have: every reader needs these.
pub const V1_COLUMNS: usize = 11;

/// Write the header row.
pub fn write_header<W: io::Write>(w: &mut csv::Writer<W>) -> csv::Result<()> {
    w.write_record(HEADER)
}

/// One CSV row, without per-field allocation.
pub fn write_row<W: io::Write>(w: &mut csv::Writer<W>, r: &RequestRecord) -> csv::Result<()> {
    let mut b = itoa::Buffer::new();
    w.write_field(b.format(r.seq))?;
    w.write_field(b.format(r.scheduled_ns))?;
    w.write_field(b.format(r.start_ns))?;
    match r.connect_us {
        Some(v) => w.write_field(b.format(v))?,
        None => w.write_field("")?,
    }
    match r.ttfb_us {
        Some(v) => w.write_field(b.format(v))?,
        None => w.write_field("")?,
    }
    w.write_field(b.format(r.total_us))?;
    match r.status {
        Some(v) => w.write_field(b.format(v))?,
        None => w.write_field("")?,
    }
    w.write_field(r.outcome.as_str())?;
    w.write_field(r.phase.as_str())?;
    w.write_field(r.backend.as_deref().unwrap_or(""))?;
    w.write_field(r.version.as_deref().unwrap_or(""))?;
    match r.local_port {
        Some(v) => w.write_field(b.format(v))?,
        None => w.write_field("")?,
    }
    match r.remote_addr {
        Some(a) => {
            // Formatted on the stack: no allocation per row.
            use std::io::Write as _;
            let mut buf = [0u8; 64];
            let mut at = io::Cursor::new(&mut buf[..]);
            write!(at, "{a}")?;
            let n = at.position() as usize;
            w.write_field(&buf[..n])?
        }
        None => w.write_field("")?,
    }
    match r.worker {
        Some(v) => w.write_field(b.format(v))?,
        None => w.write_field("")?,
    }
    w.write_record(None::<&[u8]>)
}

/// The rows of a `requests.csv`, one [`RequestRecord`] each, streamed.
pub struct Reader {
    csv: csv::Reader<File>,
    row: csv::ByteRecord,
    path: PathBuf,
    rows: u64,
}

impl Reader {
    /// Open `path` and check its header.
    pub fn open(path: &Path) -> Result<Reader, RunDirError> {
        let mut csv = csv::Reader::from_path(path).map_err(|e| RunDirError::read(path, e))?;
        let header = csv.headers().map_err(|e| RunDirError::read(path, e))?;
        let names: Vec<&str> = header.iter().collect();
        let known = names.len().min(HEADER.len());
        if known < V1_COLUMNS || names[..known] != HEADER[..known] {
            return Err(RunDirError::read(
                path,
                format!(
                    "the header is `{}`, not the request records' `{}`",
                    header.iter().collect::<Vec<_>>().join(","),
                    HEADER.join(",")
                ),
            ));
        }
        Ok(Reader {
            csv,
            row: csv::ByteRecord::new(),
            path: path.to_path_buf(),
            rows: 0,
        })
    }
}

impl Iterator for Reader {
    type Item = Result<RequestRecord, RunDirError>;

    fn next(&mut self) -> Option<Self::Item> {
        match self.csv.read_byte_record(&mut self.row) {
            Ok(false) => None,
            Err(e) => Some(Err(RunDirError::read(&self.path, e))),
            Ok(true) => {
                self.rows += 1;
                Some(parse_row(&self.row).map_err(|(column, value)| {
                    RunDirError::read(
                        &self.path,
                        format!(
                            "row {}: column `{column}`: cannot read `{value}`",
                            self.rows
                        ),
                    )
                }))
            }
        }
    }
}

/// One row as a worker streams it (`fleet::wire`'s `REC`), without the
/// header: the record, or what is wrong with it.
pub fn parse_line(row: &str) -> Result<RequestRecord, String> {
    let mut csv = csv::ReaderBuilder::new()
        .has_headers(false)
        // One short row: not the default 8 KiB buffer per call.
        .buffer_capacity(row.len() + 1)
        .from_reader(row.as_bytes());
    let mut rec = csv::ByteRecord::new();
    match csv.read_byte_record(&mut rec) {
        Ok(true) => parse_row(&rec).map_err(|(c, v)| format!("column `{c}`: cannot read `{v}`")),
        Ok(false) => Err("an empty row".into()),
        Err(e) => Err(e.to_string()),
    }
}

/// A row back into the record the engine wrote; `Err` names the column.
fn parse_row(r: &csv::ByteRecord) -> Result<RequestRecord, (&'static str, String)> {
    fn text(r: &csv::ByteRecord, i: usize) -> &str {
        r.get(i)
            .and_then(|b| std::str::from_utf8(b).ok())
            .unwrap_or("")
    }
    fn num(
        r: &csv::ByteRecord,
        i: usize,
        col: &'static str,
    ) -> Result<u64, (&'static str, String)> {
        let t = text(r, i);
        t.parse().map_err(|_| (col, t.to_string()))
    }
    let opt = |i: usize| Some(text(r, i)).filter(|s| !s.is_empty()).map(Arc::from);
    let outcome = Outcome::parse(text(r, 7)).ok_or(("outcome", text(r, 7).to_string()))?;
    let phase = Phase::parse(text(r, 8)).ok_or(("phase", text(r, 8).to_string()))?;
    let status = match text(r, 6) {
        "" => None,
        s => Some(s.parse().map_err(|_| ("status", s.to_string()))?),
    };
    let opt_num = |i: usize, col: &'static str| match text(r, i) {
        "" => Ok(None),
        t => t.parse().map(Some).map_err(|_| (col, t.to_string())),
    };
    Ok(RequestRecord {
        seq: num(r, 0, "seq")?,
        scheduled_ns: num(r, 1, "scheduled_ns")?,
        start_ns: num(r, 2, "start_ns")?,
        connect_us: opt_num(3, "connect_us")?,
        ttfb_us: opt_num(4, "ttfb_us")?,
        total_us: num(r, 5, "total_us")?,
        status,
        outcome,
        phase,
        backend: opt(9),
        version: opt(10),
        local_port: match text(r, 11) {
            "" => None,
            t => Some(t.parse().map_err(|_| ("local_port", t.to_string()))?),
        },
        remote_addr: match text(r, 12) {
            "" => None,
            t => Some(t.parse().map_err(|_| ("remote_addr", t.to_string()))?),
        },
        worker: match text(r, 13) {
            "" => None,
            t => Some(t.parse().map_err(|_| ("worker", t.to_string()))?),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(seq: u64) -> RequestRecord {
        RequestRecord {
            seq,
            scheduled_ns: seq * 10,
            start_ns: seq * 10 + 1,
            connect_us: seq.is_multiple_of(2).then_some(5),
            ttfb_us: None,
            total_us: 7,
            status: (seq == 1).then_some(503),
            outcome: Outcome::Reset,
            phase: Phase::FirstByte,
            backend: Some(Arc::from("pod,\"a\"")),
            version: None,
            local_port: Some(40_000 + seq as u16),
            remote_addr: match seq % 3 {
                0 => None,
                1 => Some("10.0.0.7:30080".parse().unwrap()),
                _ => Some("[fd00::1]:443".parse().unwrap()),
            },
            worker: (seq % 2 == 1).then_some(seq as u32 % 4),
        }
    }

    #[test]
    fn rows_written_are_read_back_as_the_same_records() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(super::super::REQUESTS_CSV);
        let mut w = csv::Writer::from_path(&path).unwrap();
        write_header(&mut w).unwrap();
        let records: Vec<RequestRecord> = (0..3).map(record).collect();
        for r in &records {
            write_row(&mut w, r).unwrap();
        }
        w.flush().unwrap();
        drop(w);
        let back: Vec<RequestRecord> = Reader::open(&path).unwrap().map(Result::unwrap).collect();
        assert_eq!(back, records);
    }

    #[test]
    fn a_streamed_row_parses_back_to_its_record() {
        for r in (0..3).map(record) {
            let mut w = csv::Writer::from_writer(vec![]);
            write_row(&mut w, &r).unwrap();
            let line = String::from_utf8(w.into_inner().unwrap()).unwrap();
            assert_eq!(parse_line(line.trim_end()), Ok(r));
        }
        let e = parse_line("1,2").unwrap_err();
        assert!(e.starts_with("column `"), "{e}");
    }

    #[test]
    fn a_bad_cell_is_named_by_row_and_column() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("requests.csv");
        std::fs::write(
            &path,
            format!(
                "{}\n0,0,0,,,5,,ok,,,,,,\n1,0,0,,,5,,sideways,,,,,,\n",
                HEADER.join(",")
            ),
        )
        .unwrap();
        let rows: Vec<_> = Reader::open(&path).unwrap().collect();
        assert!(rows[0].is_ok());
        let e = rows[1].as_ref().unwrap_err().to_string();
        assert!(
            e.contains("row 2") && e.contains("`outcome`") && e.contains("sideways"),
            "{e}"
        );
    }

    #[test]
    fn a_format_1_file_without_local_ports_reads() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("requests.csv");
        std::fs::write(
            &path,
            format!("{}\n0,0,0,,,5,,ok,,,\n", HEADER[..V1_COLUMNS].join(",")),
        )
        .unwrap();
        let rows: Vec<_> = Reader::open(&path).unwrap().map(Result::unwrap).collect();
        assert_eq!(rows[0].local_port, None);
    }

    #[test]
    fn a_file_before_remote_addresses_reads() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("requests.csv");
        std::fs::write(
            &path,
            format!("{}\n0,0,0,,,5,,ok,,,,41000\n", HEADER[..12].join(",")),
        )
        .unwrap();
        let rows: Vec<_> = Reader::open(&path).unwrap().map(Result::unwrap).collect();
        assert_eq!(
            (rows[0].local_port, rows[0].remote_addr),
            (Some(41_000), None)
        );
    }

    #[test]
    fn a_file_that_is_not_request_records_is_refused_by_its_header() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("requests.csv");
        std::fs::write(&path, "observed_ns,kind\n1,pod_ready\n").unwrap();
        let e = Reader::open(&path).err().unwrap().to_string();
        assert!(e.contains("not the request records'"), "{e}");
    }

    #[test]
    fn columns_appended_by_a_later_format_are_ignored() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("requests.csv");
        std::fs::write(
            &path,
            format!("{},future\n0,0,0,,,5,,ok,,,,,,,3\n", HEADER.join(",")),
        )
        .unwrap();
        let rows: Vec<_> = Reader::open(&path).unwrap().collect();
        assert_eq!(rows.len(), 1);
        assert!(rows[0].is_ok());
    }
}
