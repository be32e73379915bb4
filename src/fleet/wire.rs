//! The line protocol between the coordinator and one worker, on the
//! worker container's stdin and stdout (reached through the API's
//! `pods/attach`): text, one frame per line, so a person can read a
//! capture and a worker can be driven by hand.
//!
//! Coordinator to worker ([`ToWorker`]): `HELLO` (who are you: the
//! coordinator speaks first, since what a container printed before the
//! attach is not replayed), `PING t0` (a clock sample), `START unix_ns`
//! (the common start instant), `STOP` (end early).
//! Worker to coordinator ([`FromWorker`]): `HELLO worker workers version`,
//! `PONG t0 t1 t2`, `REC row` (one `requests.csv` row, without the
//! columns the coordinator adds), `END count crc32 shed errnos` (the
//! number of `REC` frames sent and the CRC-32 of their rows, each with its
//! newline; the arrivals shed over the worker's in-flight cap; the failures
//! per errno name, `EMFILE=3,EADDRNOTAVAIL=1`, or `-` for none, so the
//! load-host advice covers the workers' hosts too), `FAIL message`.
//!
//! [`Tally`] keeps the count and checksum of what arrived, so the
//! coordinator can say exactly how many records a worker lost.
//!
//! Pure: lines in, frames out. Not for: the channel itself, or what a
//! row holds (`rundir::requests`).

use std::collections::BTreeMap;
use std::fmt;

/// From the coordinator.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ToWorker {
    Hello,
    Ping { t0: i64 },
    Start { unix_ns: i64 },
    Stop,
}

/// From a worker.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FromWorker {
    Hello {
        worker: u32,
        workers: u32,
        version: String,
    },
    Pong {
        t0: i64,
        t1: i64,
        t2: i64,
    },
    Record(String),
    End {
        count: u64,
        crc32: u32,
        shed: u64,
        /// Failures per errno name (`EMFILE`, ...).
        errnos: BTreeMap<String, u64>,
    },
    Fail(String),
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("not a baton worker frame: {line:?} ({why})")]
pub struct WireError {
    pub line: String,
    pub why: &'static str,
}

fn bad(line: &str, why: &'static str) -> WireError {
    WireError {
        line: line.chars().take(120).collect(),
        why,
    }
}

fn words<const N: usize>(line: &str, rest: &str) -> Result<[i64; N], WireError> {
    let v: Vec<i64> = rest
        .split(' ')
        .map(str::parse)
        .collect::<Result<_, _>>()
        .map_err(|_| bad(line, "a number expected"))?;
    v.try_into()
        .map_err(|_| bad(line, "wrong number of fields"))
}

impl fmt::Display for ToWorker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ToWorker::Hello => f.write_str("HELLO"),
            ToWorker::Ping { t0 } => write!(f, "PING {t0}"),
            ToWorker::Start { unix_ns } => write!(f, "START {unix_ns}"),
            ToWorker::Stop => f.write_str("STOP"),
        }
    }
}

impl ToWorker {
    pub fn parse(line: &str) -> Result<ToWorker, WireError> {
        let (tag, rest) = line.split_once(' ').unwrap_or((line, ""));
        match tag {
            "PING" => words::<1>(line, rest).map(|[t0]| ToWorker::Ping { t0 }),
            "START" => words::<1>(line, rest).map(|[unix_ns]| ToWorker::Start { unix_ns }),
            "STOP" if rest.is_empty() => Ok(ToWorker::Stop),
            "HELLO" if rest.is_empty() => Ok(ToWorker::Hello),
            _ => Err(bad(line, "unknown frame")),
        }
    }
}

impl fmt::Display for FromWorker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FromWorker::Hello {
                worker,
                workers,
                version,
            } => write!(f, "HELLO {worker} {workers} {version}"),
            FromWorker::Pong { t0, t1, t2 } => write!(f, "PONG {t0} {t1} {t2}"),
            FromWorker::Record(row) => write!(f, "REC {row}"),
            FromWorker::End {
                count,
                crc32,
                shed,
                errnos,
            } => {
                write!(f, "END {count} {crc32:08x} {shed} ")?;
                if errnos.is_empty() {
                    return f.write_str("-");
                }
                for (i, (name, n)) in errnos.iter().enumerate() {
                    write!(f, "{}{name}={n}", if i == 0 { "" } else { "," })?;
                }
                Ok(())
            }
            // One line: a message's own newlines would start new frames.
            FromWorker::Fail(m) => write!(f, "FAIL {}", m.replace(['\n', '\r'], " ")),
        }
    }
}

impl FromWorker {
    pub fn parse(line: &str) -> Result<FromWorker, WireError> {
        let (tag, rest) = line.split_once(' ').unwrap_or((line, ""));
        match tag {
            "REC" => Ok(FromWorker::Record(rest.to_string())),
            "PONG" => words::<3>(line, rest).map(|[t0, t1, t2]| FromWorker::Pong { t0, t1, t2 }),
            "HELLO" => {
                let mut it = rest.splitn(3, ' ');
                let mut num = || {
                    it.next()
                        .and_then(|w| w.parse::<u32>().ok())
                        .ok_or_else(|| bad(line, "HELLO worker workers version"))
                };
                let (worker, workers) = (num()?, num()?);
                let version = it.next().unwrap_or_default().to_string();
                if version.is_empty() || worker >= workers {
                    return Err(bad(line, "HELLO worker workers version"));
                }
                Ok(FromWorker::Hello {
                    worker,
                    workers,
                    version,
                })
            }
            "END" => {
                let why = || bad(line, "END count crc32 shed errnos");
                let mut it = rest.split(' ');
                let (Some(count), Some(crc), Some(shed), Some(errnos), None) =
                    (it.next(), it.next(), it.next(), it.next(), it.next())
                else {
                    return Err(why());
                };
                let errnos = match errnos {
                    "-" => BTreeMap::new(),
                    list => list
                        .split(',')
                        .map(|kv| {
                            let (k, v) = kv.split_once('=')?;
                            let named =
                                !k.is_empty() && k.bytes().all(|b| b.is_ascii_alphanumeric());
                            let n = v.parse::<u64>().ok()?;
                            named.then(|| (k.to_string(), n))
                        })
                        .collect::<Option<BTreeMap<String, u64>>>()
                        .ok_or_else(why)?,
                };
                Ok(FromWorker::End {
                    count: count.parse().map_err(|_| why())?,
                    crc32: u32::from_str_radix(crc, 16).map_err(|_| why())?,
                    shed: shed.parse().map_err(|_| why())?,
                    errnos,
                })
            }
            "FAIL" => Ok(FromWorker::Fail(rest.to_string())),
            _ => Err(bad(line, "unknown frame")),
        }
    }
}

/// The count and CRC-32 of the records a worker sent or a coordinator
/// received, in order.
#[derive(Clone, Debug, Default)]
pub struct Tally {
    count: u64,
    crc: crc32fast::Hasher,
}

impl Tally {
    pub fn add(&mut self, row: &str) {
        self.count += 1;
        self.crc.update(row.as_bytes());
        self.crc.update(b"\n");
    }

    pub fn count(&self) -> u64 {
        self.count
    }

    /// The `END` frame that closes what was added, with the arrivals
    /// shed.
    pub fn end(&self, shed: u64, errnos: BTreeMap<String, u64>) -> FromWorker {
        FromWorker::End {
            count: self.count,
            crc32: self.crc.clone().finalize(),
            shed,
            errnos,
        }
    }

    /// Whether what arrived is what the worker says it sent: `Ok`, or how
    /// many records are missing (0 when the count matches but the
    /// checksum does not: records arrived altered).
    pub fn check(&self, count: u64, crc32: u32) -> Result<(), Lost> {
        if self.count == count && self.crc.clone().finalize() == crc32 {
            Ok(())
        } else {
            Err(Lost {
                sent: count,
                received: self.count,
            })
        }
    }
}

/// A worker's records did not all arrive intact.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{received} of the {sent} records the worker sent arrived intact")]
pub struct Lost {
    pub sent: u64,
    pub received: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_frame_reads_back_as_written() {
        let to = [
            ToWorker::Hello,
            ToWorker::Ping { t0: -5 },
            ToWorker::Start {
                unix_ns: 1_764_633_600_000_000_000,
            },
            ToWorker::Stop,
        ];
        for f in to {
            assert_eq!(ToWorker::parse(&f.to_string()), Ok(f.clone()), "{f}");
        }
        let from = [
            FromWorker::Hello {
                worker: 2,
                workers: 3,
                version: "0.1.0".into(),
            },
            FromWorker::Pong {
                t0: 1,
                t1: 2,
                t2: 3,
            },
            FromWorker::Record(
                "7,1000,1002,,,,,connect_refused,connect,,,40312,10.0.0.7:80".into(),
            ),
            FromWorker::End {
                count: 12,
                crc32: 0x00ab_cdef,
                shed: 3,
                errnos: BTreeMap::new(),
            },
            FromWorker::End {
                count: 12,
                crc32: 0x00ab_cdef,
                shed: 0,
                errnos: [("EADDRNOTAVAIL".to_string(), 2), ("EMFILE".to_string(), 40)].into(),
            },
            FromWorker::Fail("cannot bind".into()),
        ];
        for f in from {
            assert_eq!(FromWorker::parse(&f.to_string()), Ok(f.clone()), "{f}");
        }
    }

    #[test]
    fn a_garbled_line_is_refused_saying_why() {
        for line in [
            "",
            "PING",
            "PING x",
            "PONG 1 2",
            "END 3",
            "END 3 00000000",
            "END 3 00000000 0",
            "END 3 00000000 0 EMFILE",
            "END 3 00000000 0 EMFILE=x",
            "END 3 00000000 0 =1",
            "HELLO 3 3 v",
            "BOGUS 1",
        ] {
            let parsed = if line.starts_with("PING") {
                ToWorker::parse(line).err()
            } else {
                FromWorker::parse(line).err()
            };
            assert!(parsed.is_some(), "{line:?} parsed");
        }
        let e = FromWorker::parse("PONG 1 2").unwrap_err();
        assert_eq!(e.why, "wrong number of fields");
    }

    #[test]
    fn a_failure_message_stays_on_one_line() {
        let line = FromWorker::Fail("first\nsecond".into()).to_string();
        assert_eq!(line, "FAIL first second");
    }

    #[test]
    fn the_tally_names_records_lost_or_altered() {
        let rows = ["1,a", "2,b", "3,c"];
        let mut sent = Tally::default();
        rows.iter().for_each(|r| sent.add(r));
        let FromWorker::End { count, crc32, .. } = sent.end(0, BTreeMap::new()) else {
            unreachable!()
        };
        let mut all = Tally::default();
        rows.iter().for_each(|r| all.add(r));
        assert_eq!(all.check(count, crc32), Ok(()));
        let mut short = Tally::default();
        rows[..2].iter().for_each(|r| short.add(r));
        assert_eq!(
            short.check(count, crc32),
            Err(Lost {
                sent: 3,
                received: 2
            })
        );
        let mut altered = Tally::default();
        ["1,a", "2,x", "3,c"].iter().for_each(|r| altered.add(r));
        assert!(altered.check(count, crc32).is_err());
    }
}
