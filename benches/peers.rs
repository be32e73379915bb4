//! baton's load engine against its peers, on this machine, in one run.
//!
//! `cargo bench --bench peers` installs what is missing (Debian's
//! nginx-light, ab, wrk; oha from crates.io; see scripts/bench-deps.sh),
//! starts nginx with one worker on loopback, and measures back to back,
//! each with a new TCP connection per request and 32 in flight:
//! `baton load --rate 0` (writing requests.csv), `oha --disable-keepalive`,
//! `ab`, and `wrk -H 'Connection: close'`. For each: requests/s, CPU
//! seconds per 100k requests (user+sys of the tool alone), and nginx's
//! accepted-connection count for the run. Then baton's RSS over 1 million
//! requests and its p99 lateness at a fixed 10,000 req/s.
//!
//! A benchmark, not a test: it prints figures and whether the targets
//! were met; it asserts only that baton's records match nginx's count.
//! `BATON_BENCH_REQUESTS` (default 200000) sets the per-tool count;
//! `BATON_BENCH_QUICK=1` shrinks everything for a smoke run.

use nix::sys::resource::{UsageWho, getrusage};
use std::io::Read;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const CONCURRENCY: usize = 32;

struct Nginx {
    dir: tempfile::TempDir,
    port: u16,
    child: Child,
}

impl Nginx {
    fn start() -> Nginx {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("logs")).unwrap();
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let conf = format!(
            "worker_processes 1;\ndaemon off;\npid {d}/nginx.pid;\nerror_log {d}/logs/error.log;\n\
             events {{ worker_connections 16384; }}\n\
             http {{ access_log off;\n server {{ listen 127.0.0.1:{port} backlog=8192;\n\
               location = /nginx_status {{ stub_status; }}\n\
               location / {{ add_header x-pod-name nginx-bench; return 200 \"Hello from nginx-bench version 1.22\\n\"; }} }} }}\n",
            d = dir.path().display()
        );
        let conf_path = dir.path().join("nginx.conf");
        std::fs::write(&conf_path, conf).unwrap();
        let child = Command::new("nginx")
            .arg("-c")
            .arg(&conf_path)
            .arg("-p")
            .arg(dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start nginx");
        let n = Nginx { dir, port, child };
        for _ in 0..100 {
            if n.accepted().is_some() {
                return n;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!(
            "nginx did not come up; see {}/logs/error.log",
            n.dir.path().display()
        );
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}/", self.port)
    }

    /// nginx's `accepts` counter (stub_status); the status request itself
    /// counts one, which `accepted_during` subtracts.
    fn accepted(&self) -> Option<u64> {
        let mut s = std::net::TcpStream::connect(("127.0.0.1", self.port)).ok()?;
        use std::io::Write;
        s.write_all(b"GET /nginx_status HTTP/1.0\r\n\r\n").ok()?;
        let mut text = String::new();
        s.read_to_string(&mut text).ok()?;
        let line = text.lines().skip_while(|l| !l.contains("accepts")).nth(1)?;
        line.split_whitespace().next()?.parse().ok()
    }
}

impl Drop for Nginx {
    /// SIGQUIT, not SIGKILL: the master stops its worker on the way out;
    /// a killed master leaves the worker running (holding the port and
    /// the bench's stdout).
    fn drop(&mut self) {
        let pid = nix::unistd::Pid::from_raw(self.child.id() as i32);
        if nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGQUIT).is_err() {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }
}

struct Row {
    tool: String,
    requests: u64,
    secs: f64,
    cpu_s: f64,
    accepted: u64,
    note: String,
}

fn cpu_children() -> f64 {
    let u = getrusage(UsageWho::RUSAGE_CHILDREN).unwrap();
    let t = |tv: nix::sys::time::TimeVal| tv.tv_sec() as f64 + tv.tv_usec() as f64 / 1e6;
    t(u.user_time()) + t(u.system_time())
}

/// Run a command to completion (killed after `limit`), returning stdout
/// and the wall time.
fn timed(cmd: &mut Command, limit: Duration) -> (String, f64) {
    let start = Instant::now();
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn tool");
    let mut out = String::new();
    let mut stdout = child.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stdout.read_to_string(&mut s);
        s
    });
    loop {
        if child.try_wait().unwrap().is_some() {
            break;
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    out.push_str(&reader.join().unwrap());
    (out, start.elapsed().as_secs_f64())
}

fn measure(
    nginx: &Nginx,
    tool: &str,
    cmd: &mut Command,
    parse: impl Fn(&str, f64) -> (u64, f64, String),
) -> Row {
    let before = nginx.accepted().unwrap();
    let cpu0 = cpu_children();
    let (out, wall) = timed(cmd, Duration::from_secs(300));
    let cpu = cpu_children() - cpu0;
    let after = nginx.accepted().unwrap();
    let (requests, secs, note) = parse(&out, wall);
    Row {
        tool: tool.into(),
        requests,
        secs,
        cpu_s: cpu,
        accepted: after - before - 1,
        note,
    }
}

fn field<'a>(out: &'a str, prefix: &str) -> Option<&'a str> {
    out.lines()
        .find_map(|l| l.trim().strip_prefix(prefix))
        .map(str::trim)
}

fn json(path: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(path).expect("summary.json")).expect("valid JSON")
}

fn main() {
    // `cargo bench` passes `--bench`; nothing else is accepted.
    let quick = std::env::var("BATON_BENCH_QUICK").is_ok_and(|v| v == "1");
    let n: u64 = std::env::var("BATON_BENCH_REQUESTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(if quick { 20_000 } else { 200_000 });
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let status = Command::new("bash")
        .arg(root.join("scripts/bench-deps.sh"))
        .status()
        .expect("run bench-deps.sh");
    assert!(status.success(), "scripts/bench-deps.sh failed");
    let tools = std::env::var("BATON_BENCH_TOOLS")
        .map(PathBuf::from)
        .unwrap_or_else(|_| {
            PathBuf::from(std::env::var("HOME").unwrap()).join(".cache/baton-bench")
        });
    let oha = tools.join("bin/oha");
    let baton = env!("CARGO_BIN_EXE_baton");
    let nginx = Nginx::start();
    let url = nginx.url();
    let work = tempfile::tempdir().unwrap();
    let c = CONCURRENCY.to_string();
    let ns = n.to_string();
    let wrk_secs = if quick { 2 } else { 5 };
    println!(
        "peers: {n} requests each (wrk: {wrk_secs} s), {CONCURRENCY} in flight, a new connection per request, nginx 1 worker on loopback\n"
    );

    let mut rows = vec![];
    let baton_dir = work.path().join("baton");
    rows.push(measure(
        &nginx,
        "baton (requests.csv on)",
        Command::new(baton)
            .args(["load", &url, "--rate", "0", "-c", &c, "-n", &ns, "-q", "-o"])
            .arg(&baton_dir),
        |_, wall| {
            let s = json(&baton_dir.join("summary.json"));
            let sent = s["requests"]["sent"].as_u64().unwrap();
            let failed = s["requests"]["failed"].as_u64().unwrap();
            (
                sent,
                s["elapsed_s"].as_f64().unwrap_or(wall),
                format!("{failed} failed"),
            )
        },
    ));
    let baton_sent = rows[0].requests;
    let baton_accepted = rows[0].accepted;
    rows.push(measure(
        &nginx,
        "oha --disable-keepalive",
        Command::new(&oha).args([
            "-n",
            &ns,
            "-c",
            &c,
            "--disable-keepalive",
            "--no-tui",
            "--output-format",
            "json",
            &url,
        ]),
        |out, wall| {
            let v: serde_json::Value = serde_json::from_str(out).unwrap_or_default();
            let ok = v["statusCodeDistribution"]["200"].as_u64().unwrap_or(0);
            let secs = v["summary"]["total"].as_f64().unwrap_or(wall);
            let errors: u64 = v["errorDistribution"]
                .as_object()
                .map_or(0, |m| m.values().filter_map(|x| x.as_u64()).sum());
            (ok + errors, secs, format!("{errors} errors"))
        },
    ));
    rows.push(measure(
        &nginx,
        "ab",
        Command::new("ab").args(["-q", "-r", "-n", &ns, "-c", &c, &url]),
        |out, wall| {
            let done = field(out, "Complete requests:")
                .and_then(|v| v.parse().ok())
                .unwrap_or(0);
            let secs = field(out, "Time taken for tests:")
                .and_then(|v| v.split_whitespace().next()?.parse().ok())
                .unwrap_or(wall);
            let failed = field(out, "Failed requests:").unwrap_or("?").to_string();
            (done, secs, format!("{failed} failed"))
        },
    ));
    let wrk_d = format!("{wrk_secs}s");
    rows.push(measure(
        &nginx,
        "wrk -H 'Connection: close'",
        Command::new("wrk").args([
            "-t2",
            "-c",
            &c,
            "-d",
            &wrk_d,
            "-H",
            "Connection: close",
            &url,
        ]),
        |out, wall| {
            let line = out
                .lines()
                .find(|l| l.contains("requests in"))
                .unwrap_or("");
            let mut words = line.split_whitespace();
            let done = words.next().and_then(|v| v.parse().ok()).unwrap_or(0);
            let secs = line
                .split("requests in ")
                .nth(1)
                .and_then(|r| r.split('s').next())
                .and_then(|v| v.parse().ok())
                .unwrap_or(wall);
            let errs = out
                .lines()
                .find(|l| l.contains("Socket errors"))
                .unwrap_or("no socket errors")
                .trim()
                .to_string();
            (done, secs, errs)
        },
    ));

    println!(
        "{:<28} {:>10} {:>8} {:>10} {:>16} {:>12}  note",
        "tool", "requests", "secs", "req/s", "CPU s per 100k", "nginx conns"
    );
    for r in &rows {
        let rps = r.requests as f64 / r.secs;
        println!(
            "{:<28} {:>10} {:>8.2} {:>10.0} {:>16.2} {:>12}  {}",
            r.tool,
            r.requests,
            r.secs,
            rps,
            r.cpu_s / r.requests.max(1) as f64 * 100_000.0,
            r.accepted,
            r.note
        );
    }
    assert_eq!(
        baton_accepted, baton_sent,
        "nginx accepted {baton_accepted} connections for baton's {baton_sent} records"
    );
    println!("\nnginx accepted exactly one connection per baton record ({baton_sent}).");

    // Memory: RSS over a long run, records on.
    let million: u64 = if quick { 100_000 } else { 1_000_000 };
    let mem_dir = work.path().join("mem");
    let mut child = Command::new(baton)
        .args([
            "load",
            &url,
            "--rate",
            "0",
            "-c",
            &c,
            "-n",
            &million.to_string(),
            "-q",
            "-o",
        ])
        .arg(&mem_dir)
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let mut peak_kb = 0u64;
    let started = Instant::now();
    while child.try_wait().unwrap().is_none() && started.elapsed() < Duration::from_secs(600) {
        if let Ok(s) = std::fs::read_to_string(format!("/proc/{}/status", child.id()))
            && let Some(v) = s.lines().find_map(|l| l.strip_prefix("VmHWM:"))
        {
            peak_kb = peak_kb.max(v.trim().trim_end_matches(" kB").trim().parse().unwrap_or(0));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = child.kill();
    let _ = child.wait();
    let mem_rows = json(&mem_dir.join("summary.json"))["requests"]["rows_written"]
        .as_u64()
        .unwrap_or(0);
    let peak_mib = peak_kb as f64 / 1024.0;

    // Lateness at a fixed rate.
    let late_dir = work.path().join("late");
    let late_secs = if quick { "3s" } else { "10s" };
    let _ = Command::new(baton)
        .args(["load", &url, "--rate", "10000", "-d", late_secs, "-q", "-o"])
        .arg(&late_dir)
        .stdout(Stdio::null())
        .status();
    let late = json(&late_dir.join("summary.json"));
    let late_p99 = late["lateness_ms"]["p99"].as_f64().unwrap_or(f64::NAN);
    let late_rps = late["rps_achieved"].as_f64().unwrap_or(0.0);

    let baton_rps = rows[0].requests as f64 / rows[0].secs;
    let oha_rps = rows[1].requests as f64 / rows[1].secs;
    let met = |ok: bool| if ok { "met" } else { "NOT met" };
    println!("\ntargets");
    println!(
        "  throughput with requests.csv >= oha:  {:.0} vs {:.0} req/s ({:+.1}%)  {}",
        baton_rps,
        oha_rps,
        (baton_rps / oha_rps - 1.0) * 100.0,
        met(baton_rps >= oha_rps)
    );
    println!(
        "  RSS over {million} requests < 64 MiB:  peak {peak_mib:.1} MiB ({mem_rows} rows written)  {}",
        met(peak_mib < 64.0)
    );
    println!(
        "  p99 lateness at --rate 10000 < 1 ms:  {late_p99:.3} ms ({late_rps:.0} req/s achieved)  {}",
        met(late_p99 < 1.0)
    );
}
