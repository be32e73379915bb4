//! baton's load engine against its peers, on this machine, in one run.
//!
//! `cargo bench --bench peers` installs what is missing (Debian's
//! nginx-light, ab, wrk; oha from crates.io; see scripts/bench-deps.sh),
//! starts nginx with one worker on loopback, warms it up, and runs R
//! interleaved rounds (`BATON_BENCH_REPS`, default 5). A round runs, one
//! after the other and each with a new TCP connection per request and 32
//! in flight, `baton load --rate 0` (writing requests.csv),
//! `oha --disable-keepalive`, `ab` and `wrk -H 'Connection: close'`; the
//! tool that goes first rotates from round to round. For each tool and
//! round: requests/s, CPU seconds per 100k requests (user+sys of the tool
//! alone) and nginx's accepted-connection count. Per tool it reports the
//! median over the rounds and the spread (min–max, and the half-range as
//! a share of the median). A sample whose tool could not start, exited
//! non-zero, printed nothing parsable or completed no request is shown as
//! failed, with the reason, and left out of the median. Then baton's p99
//! lateness at a fixed 10,000 req/s, R runs, and its peak RSS (VmHWM)
//! over one run of 1 million requests. After each round it prints the
//! CPU time other processes on the machine used meanwhile (busy time in
//! /proc/stat less the tools', nginx's and its own): other work there
//! makes the figures worth less.
//!
//! A benchmark, not a test: it prints figures and whether the targets
//! were met; it asserts only that in every round nginx accepted exactly
//! one connection per baton record. Throughput and lateness are judged on
//! medians, and only from at least 3 samples ("not judged" otherwise);
//! "baton >= oha" also says whether the difference of the medians is
//! within the wider of the two tools' min–max ranges, and shows the
//! difference paired by round. RSS is a ceiling,
//! judged on its one run, and never "met" without a reading, a zero exit
//! and every row written.
//! `BATON_BENCH_REQUESTS` (default 200000) sets the count per tool and
//! round; `BATON_BENCH_QUICK=1` shrinks everything for a smoke run (2
//! rounds, so nothing is judged).

use nix::sys::resource::{UsageWho, getrusage};
use std::io::{Read, Write};
use std::net::TcpListener;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

const CONCURRENCY: usize = 32;
/// Fewer samples than this and a target is not judged.
const MIN_SAMPLES: usize = 3;
/// A tool still running after this is killed; its sample fails.
const TOOL_LIMIT: Duration = Duration::from_secs(300);

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
    /// counts one, which `Measured::accepted` takes off. A connect that
    /// fails is retried (nothing was accepted); a status connection that
    /// fails later is not (it was counted), and gives no reading.
    fn accepted(&self) -> Option<u64> {
        let mut s = (0..3).find_map(|i| {
            if i > 0 {
                std::thread::sleep(Duration::from_millis(200));
            }
            std::net::TcpStream::connect_timeout(
                &([127, 0, 0, 1], self.port).into(),
                Duration::from_secs(5),
            )
            .ok()
        })?;
        s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
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

#[derive(Clone, Copy, PartialEq)]
enum Tool {
    Baton,
    Oha,
    Ab,
    Wrk,
}

const TOOLS: [Tool; 4] = [Tool::Baton, Tool::Oha, Tool::Ab, Tool::Wrk];

impl Tool {
    fn short(self) -> &'static str {
        match self {
            Tool::Baton => "baton",
            Tool::Oha => "oha",
            Tool::Ab => "ab",
            Tool::Wrk => "wrk",
        }
    }

    fn label(self) -> &'static str {
        match self {
            Tool::Baton => "baton (requests.csv on)",
            Tool::Oha => "oha --disable-keepalive",
            Tool::Ab => "ab",
            Tool::Wrk => "wrk -H 'Connection: close'",
        }
    }
}

/// What the tool's output says about its run.
struct Parsed {
    /// Requests completed, errors included.
    requests: u64,
    /// The tool's own measure of the run's length, if it gives one.
    secs: Option<f64>,
    /// Requests that failed or were not answered 200.
    errors: u64,
    /// baton only: requests sent, rows written, client-side errors.
    records: Option<(u64, u64, u64)>,
}

/// One run of one tool.
struct Measured {
    /// Connections nginx accepted during the run, if both readings came.
    accepted: Option<u64>,
    cpu_s: f64,
    wall: f64,
    /// Why the run does not count: it did not start, timed out, exited
    /// non-zero or was killed (with the last line of its stderr).
    exit_problem: Option<String>,
    parsed: Result<Parsed, String>,
}

/// A sample that counts towards a tool's median.
struct Sample {
    requests: u64,
    secs: f64,
    cpu_s: f64,
    errors: u64,
}

impl Sample {
    fn rps(&self) -> f64 {
        self.requests as f64 / self.secs
    }

    fn cpu_per_100k(&self) -> f64 {
        self.cpu_s / self.requests as f64 * 100_000.0
    }
}

impl Measured {
    fn sample(&self) -> Result<Sample, String> {
        if let Some(p) = &self.exit_problem {
            return Err(p.clone());
        }
        let p = self.parsed.as_ref().map_err(Clone::clone)?;
        if p.requests == 0 {
            return Err("completed no request".into());
        }
        let secs = p.secs.filter(|s| *s > 0.0).unwrap_or(self.wall);
        Ok(Sample {
            requests: p.requests,
            secs,
            cpu_s: self.cpu_s,
            errors: p.errors,
        })
    }
}

fn cpu_children() -> f64 {
    let u = getrusage(UsageWho::RUSAGE_CHILDREN).unwrap();
    let t = |tv: nix::sys::time::TimeVal| tv.tv_sec() as f64 + tv.tv_usec() as f64 / 1e6;
    t(u.user_time()) + t(u.system_time())
}

fn drain(r: Option<impl Read + Send + 'static>) -> JoinHandle<String> {
    std::thread::spawn(move || {
        let mut bytes = vec![];
        if let Some(mut r) = r {
            let _ = r.read_to_end(&mut bytes);
        }
        String::from_utf8_lossy(&bytes).into_owned()
    })
}

/// How a command's run ended.
struct Finished {
    stdout: String,
    stderr: String,
    wall: f64,
    /// None: still running after the limit, and killed.
    status: Option<ExitStatus>,
}

impl Finished {
    /// None for a zero exit; otherwise what happened, with the last line
    /// the command wrote to stderr.
    fn problem(&self, limit: Duration) -> Option<String> {
        let what = match self.status {
            None => format!("timed out after {} s, killed", limit.as_secs()),
            Some(s) if s.success() => return None,
            Some(s) => match (s.code(), s.signal()) {
                (Some(c), _) => format!("exited {c}"),
                (None, Some(sig)) => format!("killed by signal {sig}"),
                (None, None) => format!("{s}"),
            },
        };
        Some(match last_line(&self.stderr) {
            Some(l) => format!("{what}: {l}"),
            None => what,
        })
    }

    fn code(&self) -> String {
        match self.status {
            None => "timed out".into(),
            Some(s) => s.code().map_or_else(|| format!("{s}"), |c| c.to_string()),
        }
    }
}

fn last_line(text: &str) -> Option<String> {
    let l = text.lines().rev().map(str::trim).find(|l| !l.is_empty())?;
    Some(if l.chars().count() > 160 {
        format!("{}…", l.chars().take(160).collect::<String>())
    } else {
        l.to_string()
    })
}

/// Run a command to completion (killed after `limit`); Err if it could
/// not start.
fn timed(cmd: &mut Command, limit: Duration) -> Result<Finished, String> {
    let start = Instant::now();
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("could not start {:?}: {e}", cmd.get_program()))?;
    let stdout = drain(child.stdout.take());
    let stderr = drain(child.stderr.take());
    let status = loop {
        match child.try_wait() {
            Ok(Some(s)) => break Some(s),
            Ok(None) if start.elapsed() <= limit => {}
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let wall = start.elapsed().as_secs_f64();
    Ok(Finished {
        stdout: stdout.join().unwrap_or_default(),
        stderr: stderr.join().unwrap_or_default(),
        wall,
        status,
    })
}

fn measure(
    nginx: &Nginx,
    cmd: &mut Command,
    parse: impl FnOnce(&str) -> Result<Parsed, String>,
) -> Measured {
    let before = nginx.accepted();
    let cpu0 = cpu_children();
    let run = timed(cmd, TOOL_LIMIT);
    let cpu_s = cpu_children() - cpu0;
    let after = nginx.accepted();
    let accepted = match (before, after) {
        (Some(b), Some(a)) => a.checked_sub(b + 1),
        _ => None,
    };
    match run {
        Err(e) => Measured {
            accepted,
            cpu_s,
            wall: 0.0,
            exit_problem: Some(e.clone()),
            parsed: Err(e),
        },
        Ok(f) => Measured {
            accepted,
            cpu_s,
            wall: f.wall,
            exit_problem: f.problem(TOOL_LIMIT),
            parsed: parse(&f.stdout),
        },
    }
}

fn field<'a>(out: &'a str, prefix: &str) -> Option<&'a str> {
    out.lines()
        .find_map(|l| l.trim().strip_prefix(prefix))
        .map(str::trim)
}

/// `dir/summary.json`, or a sentence saying why not.
fn summary(dir: &Path) -> Result<serde_json::Value, String> {
    let path = dir.join("summary.json");
    let text = std::fs::read_to_string(&path)
        .map_err(|e| format!("no summary.json ({}: {e})", path.display()))?;
    serde_json::from_str(&text).map_err(|e| format!("{} is not JSON: {e}", path.display()))
}

/// Everything one round's tools need.
struct Setup {
    baton: PathBuf,
    oha: PathBuf,
    url: String,
    n: u64,
    wrk_secs: u64,
    work: PathBuf,
}

fn run_tool(nginx: &Nginx, s: &Setup, tool: Tool, round: usize) -> Measured {
    let c = CONCURRENCY.to_string();
    let ns = s.n.to_string();
    match tool {
        Tool::Baton => {
            let dir = s.work.join(format!("baton-round{}", round + 1));
            measure(
                nginx,
                Command::new(&s.baton)
                    .args([
                        "load", &s.url, "--rate", "0", "-c", &c, "-n", &ns, "-q", "-o",
                    ])
                    .arg(&dir),
                |_| {
                    let v = summary(&dir)?;
                    let r = &v["requests"];
                    let num = |k: &str| {
                        r[k].as_u64()
                            .ok_or_else(|| format!("summary.json has no requests.{k}"))
                    };
                    let (sent, failed, rows) = (num("sent")?, num("failed")?, num("rows_written")?);
                    let client = r["client_resource"].as_u64().unwrap_or(0);
                    Ok(Parsed {
                        requests: sent,
                        secs: v["elapsed_s"].as_f64(),
                        errors: failed + client,
                        records: Some((sent, rows, client)),
                    })
                },
            )
        }
        Tool::Oha => measure(
            nginx,
            Command::new(&s.oha).args([
                "-n",
                &ns,
                "-c",
                &c,
                "--disable-keepalive",
                "--no-tui",
                "--output-format",
                "json",
                &s.url,
            ]),
            |out| {
                let v: serde_json::Value = serde_json::from_str(out)
                    .map_err(|e| format!("unparsable output (not JSON: {e})"))?;
                let codes = v["statusCodeDistribution"]
                    .as_object()
                    .ok_or("unparsable output (no statusCodeDistribution)")?;
                let answered: u64 = codes.values().filter_map(|x| x.as_u64()).sum();
                let ok = codes.get("200").and_then(|x| x.as_u64()).unwrap_or(0);
                let errors: u64 = v["errorDistribution"]
                    .as_object()
                    .map_or(0, |m| m.values().filter_map(|x| x.as_u64()).sum());
                Ok(Parsed {
                    requests: answered + errors,
                    secs: v["summary"]["total"].as_f64(),
                    errors: errors + (answered - ok),
                    records: None,
                })
            },
        ),
        Tool::Ab => measure(
            nginx,
            Command::new("ab").args(["-q", "-r", "-n", &ns, "-c", &c, &s.url]),
            |out| {
                let count = |prefix: &str| {
                    field(out, prefix)
                        .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
                };
                let done = count("Complete requests:")
                    .ok_or("unparsable output (no \"Complete requests:\")")?;
                let secs = field(out, "Time taken for tests:")
                    .and_then(|v| v.split_whitespace().next()?.parse().ok());
                let errors = count("Failed requests:").unwrap_or(0)
                    + count("Non-2xx responses:").unwrap_or(0);
                Ok(Parsed {
                    requests: done,
                    secs,
                    errors,
                    records: None,
                })
            },
        ),
        Tool::Wrk => {
            let d = format!("{}s", s.wrk_secs);
            measure(
                nginx,
                Command::new("wrk").args([
                    "-t2",
                    "-c",
                    &c,
                    "-d",
                    &d,
                    "-H",
                    "Connection: close",
                    &s.url,
                ]),
                |out| {
                    let line = out
                        .lines()
                        .find(|l| l.contains("requests in"))
                        .ok_or("unparsable output (no \"requests in\" line)")?;
                    let done = line
                        .split_whitespace()
                        .next()
                        .and_then(|v| v.parse().ok())
                        .ok_or("unparsable output (request count)")?;
                    let secs = line
                        .split("requests in ")
                        .nth(1)
                        .and_then(|r| r.split('s').next())
                        .and_then(|v| v.parse().ok());
                    // "Socket errors: connect 0, read 0, write 0, timeout 0"
                    let socket: u64 = field(out, "Socket errors:").map_or(0, |l| {
                        l.split([',', ' '])
                            .filter_map(|w| w.parse::<u64>().ok())
                            .sum()
                    });
                    let non_2xx = field(out, "Non-2xx or 3xx responses:")
                        .and_then(|v| v.parse::<u64>().ok())
                        .unwrap_or(0);
                    Ok(Parsed {
                        requests: done,
                        secs,
                        errors: socket + non_2xx,
                        records: None,
                    })
                },
            )
        }
    }
}

/// The median and range of some samples.
struct Stats {
    n: usize,
    median: f64,
    min: f64,
    max: f64,
}

impl Stats {
    fn of(mut xs: Vec<f64>) -> Option<Stats> {
        xs.retain(|x| x.is_finite());
        xs.sort_by(f64::total_cmp);
        let n = xs.len();
        if n == 0 {
            return None;
        }
        let median = if n % 2 == 1 {
            xs[n / 2]
        } else {
            (xs[n / 2 - 1] + xs[n / 2]) / 2.0
        };
        Some(Stats {
            n,
            median,
            min: xs[0],
            max: xs[n - 1],
        })
    }

    fn range(&self) -> f64 {
        self.max - self.min
    }

    /// Half the range, as a percentage of the median.
    fn half_range_pct(&self) -> f64 {
        self.range() / 2.0 / self.median * 100.0
    }
}

/// CPU seconds the whole machine spent in processes, all cores together,
/// from /proc/stat (user, nice and system, in USER_HZ ticks, 100 a second
/// on Linux). Interrupt and softirq time is left out: much of it is the
/// loopback traffic of the bench itself, charged to no process.
fn machine_busy_s() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let v: Vec<u64> = stat
        .lines()
        .next()?
        .strip_prefix("cpu ")?
        .split_whitespace()
        .filter_map(|x| x.parse().ok())
        .collect();
    (v.len() >= 3).then(|| (v[0] + v[1] + v[2]) as f64 / 100.0)
}

/// CPU seconds (user+sys) of process `root` and its direct children: for
/// nginx, the master and its worker.
fn tree_cpu_s(root: u32) -> f64 {
    let mut ticks = 0u64;
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        // After "pid (comm) ": state ppid ... utime (12th) stime (13th).
        let Some(rest) = stat.rsplit_once(") ").map(|(_, r)| r) else {
            continue;
        };
        let f: Vec<&str> = rest.split_whitespace().collect();
        if f.len() > 12 && (pid == root || f[1].parse() == Ok(root)) {
            ticks += f[11].parse::<u64>().unwrap_or(0) + f[12].parse::<u64>().unwrap_or(0);
        }
    }
    ticks as f64 / 100.0
}

fn cpu_self() -> f64 {
    let u = getrusage(UsageWho::RUSAGE_SELF).unwrap();
    let t = |tv: nix::sys::time::TimeVal| tv.tv_sec() as f64 + tv.tv_usec() as f64 / 1e6;
    t(u.user_time()) + t(u.system_time())
}

/// What the rest of the machine did while the bench ran: busy CPU time
/// not spent by the tools, nginx or the bench itself.
struct OtherWork {
    start: Instant,
    busy: Option<f64>,
    ours: f64,
}

impl OtherWork {
    fn begin(nginx: &Nginx) -> OtherWork {
        OtherWork {
            start: Instant::now(),
            busy: machine_busy_s(),
            ours: cpu_children() + cpu_self() + tree_cpu_s(nginx.child.id()),
        }
    }

    /// (other CPU seconds, wall seconds), or None without /proc/stat.
    fn end(&self, nginx: &Nginx) -> Option<(f64, f64)> {
        let busy = machine_busy_s()? - self.busy?;
        let ours = cpu_children() + cpu_self() + tree_cpu_s(nginx.child.id()) - self.ours;
        Some(((busy - ours).max(0.0), self.start.elapsed().as_secs_f64()))
    }

    fn describe(&self, nginx: &Nginx) -> String {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        match self.end(nginx) {
            Some((other, wall)) => format!(
                "other processes used {other:.1} CPU s in {wall:.0} s ({:.0}% of {cores} cores)",
                other / (wall * cores as f64) * 100.0
            ),
            None => "other processes: unknown (no /proc/stat)".into(),
        }
    }
}

/// 29709.4 -> "29,709".
fn thousands(x: f64) -> String {
    if !x.is_finite() {
        return "-".into();
    }
    let digits = format!("{:.0}", x.abs());
    let mut out = String::new();
    for (i, ch) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(ch);
    }
    if x.round() < 0.0 {
        out.insert(0, '-');
    }
    out
}

/// "not judged (2 samples)" when either side has too few samples.
fn too_few(counts: &[(&str, usize)]) -> Option<String> {
    if counts.iter().all(|(_, n)| *n >= MIN_SAMPLES) {
        return None;
    }
    let first = counts[0].1;
    Some(if counts.iter().all(|(_, n)| *n == first) {
        format!("not judged ({first} samples; {MIN_SAMPLES} needed)")
    } else {
        let list: Vec<String> = counts.iter().map(|(t, n)| format!("{t} {n}")).collect();
        format!(
            "not judged ({} samples; {MIN_SAMPLES} needed)",
            list.join(", ")
        )
    })
}

fn throughput_verdict(baton: Option<&Stats>, oha: Option<&Stats>) -> String {
    let count = |s: Option<&Stats>| s.map_or(0, |s| s.n);
    if let Some(v) = too_few(&[("baton", count(baton)), ("oha", count(oha))]) {
        return v;
    }
    let (b, o) = (baton.unwrap(), oha.unwrap());
    let diff = b.median - o.median;
    let (noise, who) = if b.range() >= o.range() {
        (b.range(), "baton's")
    } else {
        (o.range(), "oha's")
    };
    let within = diff.abs() <= noise;
    let word = if diff >= 0.0 { "met" } else { "NOT met" };
    let how = if within {
        "within noise"
    } else {
        "beyond noise"
    };
    format!(
        "{word}, {how} (difference {} req/s, {who} min–max range {} req/s)",
        thousands(diff),
        thousands(noise)
    )
}

fn main() {
    // `cargo bench` passes `--bench`; nothing else is accepted.
    let quick = std::env::var("BATON_BENCH_QUICK").is_ok_and(|v| v == "1");
    let n: u64 = std::env::var("BATON_BENCH_REQUESTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|&v| v > 0)
        .unwrap_or(if quick { 20_000 } else { 200_000 });
    let reps: usize = std::env::var("BATON_BENCH_REPS")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|&v| v > 0)
        .unwrap_or(if quick { 2 } else { 5 });
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
    let baton = PathBuf::from(env!("CARGO_BIN_EXE_baton"));
    let nginx = Nginx::start();
    let url = nginx.url();
    let work = tempfile::tempdir().unwrap();
    let c = CONCURRENCY.to_string();
    let setup = Setup {
        baton: baton.clone(),
        oha: tools.join("bin/oha"),
        url: url.clone(),
        n,
        wrk_secs: if quick { 2 } else { 5 },
        work: work.path().to_path_buf(),
    };
    println!(
        "peers: {reps} interleaved rounds; per round and tool {n} requests (wrk: {} s), {CONCURRENCY} in flight, \
         a new connection per request; nginx 1 worker on loopback\n",
        setup.wrk_secs
    );

    // Warm nginx (and the page cache) up, so the first tool of round 1
    // does not meet a cold server; not measured.
    let warm_dir = work.path().join("warmup");
    let warm = timed(
        Command::new(&baton)
            .args([
                "load", &url, "--rate", "0", "-c", &c, "-n", "10000", "-q", "-o",
            ])
            .arg(&warm_dir),
        TOOL_LIMIT,
    );
    match warm.map(|f| f.problem(TOOL_LIMIT)) {
        Ok(None) => println!("warm-up: 10000 requests (baton), not measured\n"),
        Ok(Some(p)) | Err(p) => println!("warm-up: baton {p} (not measured; going on)\n"),
    }

    let mut samples: Vec<Vec<Result<Sample, String>>> = TOOLS.iter().map(|_| vec![]).collect();
    let mut checked_rounds = 0;
    let all_other = OtherWork::begin(&nginx);
    println!(
        "  {:<28} {:>9} {:>7} {:>9} {:>11} {:>11}  note",
        "tool", "requests", "secs", "req/s", "CPU s/100k", "nginx conns"
    );
    for round in 0..reps {
        println!(
            "round {}/{reps} ({} first)",
            round + 1,
            TOOLS[round % TOOLS.len()].short()
        );
        let round_other = OtherWork::begin(&nginx);
        for k in 0..TOOLS.len() {
            let tool = TOOLS[(round + k) % TOOLS.len()];
            let m = run_tool(&nginx, &setup, tool, round);
            let conns = m.accepted.map_or("?".to_string(), |a| a.to_string());
            let result = m.sample();
            match &result {
                Ok(s) => println!(
                    "  {:<28} {:>9} {:>7.2} {:>9} {:>11.2} {:>11}  {} errors",
                    tool.label(),
                    s.requests,
                    s.secs,
                    thousands(s.rps()),
                    s.cpu_per_100k(),
                    conns,
                    s.errors
                ),
                Err(why) => println!(
                    "  {:<28} FAILED, not counted: {why} (nginx conns {conns})",
                    tool.label()
                ),
            }
            if tool == Tool::Baton {
                // The bench's one assertion: one connection per record.
                if let Ok(Parsed {
                    records: Some((sent, rows, client)),
                    ..
                }) = &m.parsed
                {
                    assert!(
                        m.accepted == Some(*rows) && rows == sent,
                        "round {}: nginx accepted {conns} connections for baton's {rows} records \
                         ({sent} sent, {client} client-side errors)",
                        round + 1
                    );
                    checked_rounds += 1;
                }
            }
            samples[tool as usize].push(result);
        }
        println!("  ({})", round_other.describe(&nginx));
    }
    println!("all rounds: {}", all_other.describe(&nginx));
    if checked_rounds == reps {
        println!(
            "\nnginx accepted exactly one connection per baton record in each of the {reps} rounds."
        );
    } else {
        println!(
            "\nnginx accepted exactly one connection per baton record in {checked_rounds} of {reps} rounds; \
             in the others baton left no summary.json to check against."
        );
    }

    // The table: medians over the samples that count.
    println!(
        "\nmedians over {reps} rounds; spread = min–max across rounds, ± = half that range as a share of the median\n"
    );
    println!(
        "{:<28} {:>12} {:>24} {:>18} {:>20} {:>7}  note",
        "tool", "median req/s", "req/s spread", "median CPU s/100k", "CPU spread", "samples"
    );
    let mut rps_stats: Vec<Option<Stats>> = vec![];
    for tool in TOOLS {
        let all = &samples[tool as usize];
        let ok: Vec<&Sample> = all.iter().filter_map(|r| r.as_ref().ok()).collect();
        let rps = Stats::of(ok.iter().map(|s| s.rps()).collect());
        let cpu = Stats::of(ok.iter().map(|s| s.cpu_per_100k()).collect());
        let mut note = vec![];
        let errors: Vec<u64> = ok.iter().map(|s| s.errors).collect();
        if errors.iter().any(|&e| e > 0) {
            let list: Vec<String> = errors.iter().map(u64::to_string).collect();
            note.push(format!("request errors per sample: {}", list.join(", ")));
        } else if !errors.is_empty() {
            note.push("no request errors".to_string());
        }
        let failed = all.len() - ok.len();
        if failed > 0 {
            note.push(format!(
                "{failed} failed sample{}",
                if failed == 1 { "" } else { "s" }
            ));
        }
        match (&rps, &cpu) {
            (Some(r), Some(c)) => println!(
                "{:<28} {:>12} {:>24} {:>18.2} {:>20} {:>7}  {}",
                tool.label(),
                thousands(r.median),
                format!(
                    "{}–{} ±{:.1}%",
                    thousands(r.min),
                    thousands(r.max),
                    r.half_range_pct()
                ),
                c.median,
                format!("{:.2}–{:.2} ±{:.1}%", c.min, c.max, c.half_range_pct()),
                format!("{}/{}", ok.len(), all.len()),
                note.join("; ")
            ),
            _ => println!(
                "{:<28} {:>12} {:>24} {:>18} {:>20} {:>7}  {}",
                tool.label(),
                "-",
                "-",
                "-",
                "-",
                format!("0/{}", all.len()),
                note.join("; ")
            ),
        }
        rps_stats.push(rps);
    }

    // Lateness at a fixed rate, `reps` runs.
    let late_secs = if quick { "3s" } else { "10s" };
    let late_limit = Duration::from_secs(120);
    let mut p99s = vec![];
    let mut achieved = vec![];
    let mut late_bad_exit: Option<String> = None;
    println!("\nlateness at --rate 10000 for {late_secs}, {reps} runs");
    for run in 0..reps {
        let dir = work.path().join(format!("late{}", run + 1));
        let other = OtherWork::begin(&nginx);
        let f = timed(
            Command::new(&baton)
                .args(["load", &url, "--rate", "10000", "-d", late_secs, "-q", "-o"])
                .arg(&dir),
            late_limit,
        );
        let f = match f {
            Ok(f) => f,
            Err(e) => {
                println!("  run {}: {e}; not counted", run + 1);
                late_bad_exit.get_or_insert(format!("baton could not start in run {}", run + 1));
                continue;
            }
        };
        let problem = f.problem(late_limit);
        if problem.is_some() && late_bad_exit.is_none() {
            late_bad_exit = Some(format!("baton exited {} in run {}", f.code(), run + 1));
        }
        let figures = summary(&dir).and_then(|v| {
            let p99 = v["lateness_ms"]["p99"]
                .as_f64()
                .ok_or("summary.json has no lateness_ms.p99")?;
            Ok((p99, v["rps_achieved"].as_f64().unwrap_or(f64::NAN)))
        });
        match (&problem, figures) {
            (None, Ok((p99, rps))) => {
                println!(
                    "  run {}: p99 {p99:.3} ms, {} req/s achieved",
                    run + 1,
                    thousands(rps)
                );
                p99s.push(p99);
                achieved.push(rps);
            }
            (Some(p), Ok((p99, _))) => {
                println!("  run {}: baton {p}; p99 {p99:.3} ms not counted", run + 1)
            }
            (Some(p), Err(e)) => println!("  run {}: baton {p}; {e}", run + 1),
            (None, Err(e)) => println!("  run {}: baton exited 0, but {e}; not counted", run + 1),
        }
        println!("    ({})", other.describe(&nginx));
    }
    let late = Stats::of(p99s);
    let late_rps = Stats::of(achieved);

    // Memory: RSS over a long run, records on; one run, a ceiling.
    let million: u64 = if quick { 100_000 } else { 1_000_000 };
    let mem_dir = work.path().join("mem");
    let mem_limit = Duration::from_secs(600);
    let mut mem_problems: Vec<String> = vec![];
    let mut peak_kb = 0u64;
    let mut rows_written = None;
    let stderr_path = work.path().join("mem.stderr");
    let spawned = std::fs::File::create(&stderr_path)
        .map_err(|e| e.to_string())
        .and_then(|err| {
            Command::new(&baton)
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
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(err)
                .spawn()
                .map_err(|e| e.to_string())
        });
    match spawned {
        Err(e) => mem_problems.push(format!("baton could not start: {e}")),
        Ok(mut child) => {
            let started = Instant::now();
            let status = loop {
                if let Ok(s) = std::fs::read_to_string(format!("/proc/{}/status", child.id()))
                    && let Some(v) = s.lines().find_map(|l| l.strip_prefix("VmHWM:"))
                {
                    let kb = v.trim().trim_end_matches("kB").trim().parse().unwrap_or(0);
                    peak_kb = peak_kb.max(kb);
                }
                match child.try_wait() {
                    Ok(Some(s)) => break Some(s),
                    Ok(None) if started.elapsed() < mem_limit => {}
                    _ => {
                        let _ = child.kill();
                        let _ = child.wait();
                        break None;
                    }
                }
                std::thread::sleep(Duration::from_millis(100));
            };
            let f = Finished {
                stdout: String::new(),
                stderr: std::fs::read_to_string(&stderr_path).unwrap_or_default(),
                wall: started.elapsed().as_secs_f64(),
                status,
            };
            if let Some(p) = f.problem(mem_limit) {
                mem_problems.push(format!("baton {p}"));
            }
            match summary(&mem_dir) {
                Ok(v) => rows_written = v["requests"]["rows_written"].as_u64(),
                Err(e) => mem_problems.push(e),
            }
            match rows_written {
                Some(r) if r == million => {}
                Some(r) => mem_problems.push(format!("{r} of {million} rows written")),
                None if mem_problems.is_empty() => {
                    mem_problems.push("summary.json has no requests.rows_written".into())
                }
                None => {}
            }
        }
    }
    let peak_mib = peak_kb as f64 / 1024.0;

    println!("\ntargets (throughput and lateness on medians, from at least {MIN_SAMPLES} samples)");
    let (b, o) = (rps_stats[0].as_ref(), rps_stats[1].as_ref());
    match (b, o) {
        (Some(b), Some(o)) => println!(
            "  throughput with requests.csv >= oha:  median {} vs {} req/s ({:+.1}%)  {}",
            thousands(b.median),
            thousands(o.median),
            (b.median / o.median - 1.0) * 100.0,
            throughput_verdict(Some(b), Some(o))
        ),
        _ => println!(
            "  throughput with requests.csv >= oha:  {}",
            throughput_verdict(b, o)
        ),
    }
    // The same comparison paired by round (both tools met the same
    // machine state): for information, the verdict stays on the medians.
    let ratios: Vec<f64> = samples[Tool::Baton as usize]
        .iter()
        .zip(&samples[Tool::Oha as usize])
        .filter_map(|(b, o)| Some((b.as_ref().ok()?.rps() / o.as_ref().ok()?.rps() - 1.0) * 100.0))
        .collect();
    let ahead = ratios.iter().filter(|&&r| r > 0.0).count();
    let rounds = ratios.len();
    if let Some(r) = Stats::of(ratios) {
        println!(
            "    paired by round, baton vs oha: median {:+.1}% (min {:+.1}%, max {:+.1}%); baton ahead in {ahead} of {rounds} rounds",
            r.median, r.min, r.max
        );
    }
    let peak_text = if peak_kb == 0 {
        "peak: no reading".to_string()
    } else {
        format!("peak {peak_mib:.1} MiB")
    };
    let rows_text = rows_written.map_or("rows written: unknown".into(), |r| {
        format!("{r} rows written")
    });
    let mem_verdict = if peak_kb == 0 {
        mem_problems.insert(0, "no reading".into());
        format!("NOT met ({})", mem_problems.join("; "))
    } else if !mem_problems.is_empty() {
        format!("NOT met ({})", mem_problems.join("; "))
    } else if peak_mib < 64.0 {
        "met".to_string()
    } else {
        "NOT met".to_string()
    };
    println!(
        "  RSS over {million} requests < 64 MiB:  {peak_text}, {rows_text} (one run, a ceiling)  {mem_verdict}"
    );
    let late_text = match (&late, &late_rps) {
        (Some(l), Some(r)) => format!(
            "median p99 {:.3} ms (min–max {:.3}–{:.3}), median {} req/s achieved",
            l.median,
            l.min,
            l.max,
            thousands(r.median)
        ),
        _ => "no p99 reading".to_string(),
    };
    let late_verdict = if let Some(bad) = late_bad_exit {
        format!("NOT met ({bad})")
    } else if let Some(v) = too_few(&[("", late.as_ref().map_or(0, |l| l.n))]) {
        v
    } else if late.as_ref().is_some_and(|l| l.median < 1.0) {
        "met".to_string()
    } else {
        "NOT met".to_string()
    };
    println!("  p99 lateness at --rate 10000 < 1 ms:  {late_text}  {late_verdict}");
}
