//! `baton worker` end to end: the built binary as an in-cluster Job's Pod
//! runs it, driven over its stdin and stdout by the line protocol
//! (`fleet::wire`) against a server on loopback: its share of the
//! schedule, every record streamed with a checksum that matches, clock
//! pings answered, STOP honoured, bad input refused with exit 2.

mod common;

use baton::fleet::clock::{self, Sample};
use baton::fleet::wire::{FromWorker, Tally, ToWorker};
use common::TestServer;
use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::time::{SystemTime, UNIX_EPOCH};

fn now_ns() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos() as i64
}

struct Worker {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
}

impl Worker {
    fn start(url: &str, workers: u64, index: u64, rate: u32, bound: &str) -> Worker {
        Worker::with_plan(
            &format!(
                r#"{{"url": "{url}", "workers": {workers}, "rate": {rate}, "bound": "{bound}",
                "timeout": "2s", "connect_timeout": "1s", "expect_status": [200]}}"#
            ),
            index,
        )
    }

    fn with_plan(plan: &str, index: u64) -> Worker {
        let mut child = Command::new(assert_cmd::cargo::cargo_bin("baton"))
            .arg("worker")
            .env("BATON_WORKER_PLAN", plan)
            .env("JOB_COMPLETION_INDEX", index.to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        Worker {
            stdin: child.stdin.take().unwrap(),
            stdout: BufReader::new(child.stdout.take().unwrap()),
            child,
        }
    }

    fn send(&mut self, f: ToWorker) {
        writeln!(self.stdin, "{f}").unwrap();
        self.stdin.flush().unwrap();
    }

    fn next(&mut self) -> FromWorker {
        let mut line = String::new();
        assert!(
            self.stdout.read_line(&mut line).unwrap() > 0,
            "the worker closed stdout"
        );
        FromWorker::parse(line.trim_end()).unwrap_or_else(|e| panic!("{e}"))
    }

    /// Every record up to END: the rows, and whether the tally matched.
    fn records(&mut self) -> (Vec<String>, bool) {
        let mut rows = Vec::new();
        let mut tally = Tally::default();
        loop {
            match self.next() {
                FromWorker::Record(r) => {
                    tally.add(&r);
                    rows.push(r);
                }
                FromWorker::End { count, crc32, .. } => {
                    return (rows, tally.check(count, crc32).is_ok());
                }
                other => panic!("unexpected {other:?}"),
            }
        }
    }

    fn exit_code(mut self) -> Option<i32> {
        drop(self.stdin);
        self.child.wait().unwrap().code()
    }
}

/// Worker 1 of 2 at 200/s for 1 s: it sends arrivals 1, 3, 5, ... each
/// 10 ms after the one before on the run's schedule, and every record
/// arrives with a checksum that matches.
#[test]
fn a_worker_sends_its_interleaved_share_and_every_record_with_a_checksum() {
    let server = TestServer::start();
    let mut w = Worker::start(&server.url("/ok"), 2, 1, 200, "1s");
    // The coordinator speaks first: an attach does not replay what was
    // printed before it.
    w.send(ToWorker::Hello);
    assert!(matches!(
        w.next(),
        FromWorker::Hello {
            worker: 1,
            workers: 2,
            ..
        }
    ));
    // Clock pings: the worker answers each with its own two times; on one
    // host the offset is within the error bound of zero.
    let mut samples = Vec::new();
    for _ in 0..5 {
        let t0 = now_ns();
        w.send(ToWorker::Ping { t0 });
        let FromWorker::Pong { t0: echoed, t1, t2 } = w.next() else {
            panic!("no PONG")
        };
        samples.push(Sample {
            t0: echoed,
            t1,
            t2,
            t3: now_ns(),
        });
    }
    let offset = clock::estimate(&samples).unwrap();
    assert!(
        offset.offset_ns.unsigned_abs() <= offset.error_ns + 1_000_000,
        "{offset:?}"
    );
    w.send(ToWorker::Start {
        unix_ns: now_ns() + 200_000_000,
    });
    let (rows, intact) = w.records();
    assert!(intact, "the END frame's count and checksum match");
    assert_eq!(rows.len(), 100, "half of 200 arrivals in 1 s");
    let fields: Vec<Vec<String>> = rows
        .iter()
        .map(|r| r.split(',').map(str::to_string).collect())
        .collect();
    let mut seqs: Vec<u64> = fields.iter().map(|f| f[0].parse().unwrap()).collect();
    seqs.sort();
    assert_eq!(seqs, (0..100).map(|k| 2 * k + 1).collect::<Vec<u64>>());
    let mut scheduled: Vec<u64> = fields.iter().map(|f| f[1].parse().unwrap()).collect();
    scheduled.sort();
    assert!(
        scheduled.windows(2).all(|p| p[1] - p[0] == 10_000_000),
        "10 ms apart on the run's schedule"
    );
    assert!(
        fields.iter().all(|f| f[7] == "ok"),
        "every request answered: {:?}",
        rows.iter().find(|r| !r.contains(",ok,"))
    );
    assert_eq!(server.accepted(), 100, "one connection per request");
    assert_eq!(w.exit_code(), Some(0));
}

/// STOP ends the load early: the worker still sends what it sent until
/// then, counted and checked, and exits 0.
#[test]
fn stop_ends_the_load_early_and_what_was_sent_still_arrives() {
    let server = TestServer::start();
    let mut w = Worker::start(&server.url("/ok"), 1, 0, 100, "60s");
    w.send(ToWorker::Hello);
    let _hello = w.next();
    w.send(ToWorker::Start { unix_ns: now_ns() });
    let mut first = Vec::new();
    let mut tally = Tally::default();
    while first.len() < 5 {
        if let FromWorker::Record(r) = w.next() {
            tally.add(&r);
            first.push(r);
        }
    }
    w.send(ToWorker::Stop);
    let (rest, _) = w.records();
    rest.iter().for_each(|r| tally.add(r));
    assert!(
        tally.count() < 1000,
        "stopped long before 60 s at 100/s: {}",
        tally.count()
    );
    assert_eq!(w.exit_code(), Some(0));
}

/// A worker's failures reach the coordinator with their errno names in
/// its END (its rows carry none), so the load-host advice covers the
/// workers' hosts: here every connect to a closed loopback port is
/// refused, and END counts each one as ECONNREFUSED.
#[test]
fn a_workers_end_counts_its_failures_by_errno() {
    // Bound to a free port, then closed: nothing listens there.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut w = Worker::start(&format!("http://127.0.0.1:{port}/"), 1, 0, 100, "300ms");
    w.send(ToWorker::Hello);
    let _hello = w.next();
    w.send(ToWorker::Start { unix_ns: now_ns() });
    let mut rows = 0u64;
    let errnos = loop {
        match w.next() {
            FromWorker::Record(r) => {
                assert!(r.contains("connect_refused"), "{r}");
                rows += 1;
            }
            FromWorker::End { errnos, .. } => break errnos,
            other => panic!("unexpected {other:?}"),
        }
    };
    assert!(rows > 0, "the worker sent requests");
    assert_eq!(errnos.get("ECONNREFUSED"), Some(&rows), "{errnos:?}");
    assert_eq!(errnos.len(), 1, "{errnos:?}");
    assert_eq!(w.exit_code(), Some(0));
}

/// Outside a Job (no plan, no index) the worker says what is missing and
/// exits 2, writing nothing on the coordinator's channel.
#[test]
fn without_its_plan_a_worker_exits_2_naming_the_variable() {
    let out = Command::new(assert_cmd::cargo::cargo_bin("baton"))
        .arg("worker")
        .env_remove("BATON_WORKER_PLAN")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stdout.is_empty());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("BATON_WORKER_PLAN"), "{stderr}");
}

/// A worker whose coordinator never sends the start instant (it died
/// before attaching) gives up after `start_within` rather than hold its
/// Pod for ever, and says why.
#[test]
fn a_worker_never_started_gives_up_after_start_within() {
    let mut w = Worker::with_plan(
        r#"{"url": "http://127.0.0.1:9/", "workers": 1, "rate": 10, "bound": "1s",
            "timeout": "1s", "connect_timeout": "1s", "expect_status": [200],
            "start_within": "300ms"}"#,
        0,
    );
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut w.stdout, &mut rest).unwrap();
    assert_eq!(rest, "", "nothing on the channel before a HELLO");
    let status = w.child.wait().unwrap();
    assert_eq!(status.code(), Some(1), "a failed worker, not bad input");
}
