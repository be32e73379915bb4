//! The kernel data plane: the sandbox's Services served by the kernel's
//! own NAT, as kube-proxy's nftables mode does, instead of by the
//! userspace proxy's relay. A client's connect to a NodePort or ClusterIP
//! is DNATed to one endpoint picked at random; when that endpoint's
//! listener is closed the client's own connect is refused
//! (`ECONNREFUSED`), as on a real node, where the userspace proxy can only
//! accept and then reset. Which endpoint each connection reached comes
//! from conntrack's events ([`conntrack`]), not from the relay.
//!
//! It needs root (CAP_NET_ADMIN), the `nft` and `conntrack` programs
//! (Debian: `nftables`, `conntrack`) and a kernel with nf_tables and
//! conntrack events. The rules live in a table the sandbox's `nft`
//! process owns (`flags owner`), so the kernel removes them when that
//! process ends: when the sandbox drops its stdin, or dies. conntrack
//! ends the same way (see [`spawn_conntrack`]).
//!
//! The propagation lag, the terminating-endpoint fallback and the
//! endpoint set are the proxy's ([`crate::proxy`]): this module only
//! installs what the proxy decided, when it decided it. Not modelled
//! here: `sessionAffinity: ClientIP` (the pick is always random); the
//! ingress controller stays in userspace (it is an L7 proxy on a real
//! cluster too).
//!
//! Not for: anything without root; the userspace proxy is the fallback.

pub mod conntrack;
pub mod rules;

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::process::{ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, bail};

use crate::truth::{Entry, GroundTruth};
use conntrack::{Door, Tracker};

/// How the sandbox carries Service traffic (`data_plane` in its config and
/// in a profile's `sandbox:` section).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DataPlane {
    /// The userspace proxy: accepts, then relays (or resets).
    #[default]
    Userspace,
    /// The kernel's NAT (nftables), with conntrack as ground truth; the
    /// sandbox does not start where it cannot have it.
    Kernel,
    /// The kernel's where it can be had, else the userspace proxy.
    Auto,
}

/// Which data plane a sandbox runs: what a run records.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum DataPlaneUsed {
    Userspace,
    Kernel,
}

impl DataPlaneUsed {
    /// `userspace` or `kernel`, as `run.json` records it.
    pub fn name(self) -> &'static str {
        match self {
            DataPlaneUsed::Userspace => "userspace",
            DataPlaneUsed::Kernel => "kernel",
        }
    }

    /// How reports and the banner name it.
    pub fn describe(self) -> &'static str {
        match self {
            DataPlaneUsed::Userspace => {
                "userspace proxy (accepts, then resets when the Pod refuses)"
            }
            DataPlaneUsed::Kernel => {
                "kernel NAT (nftables DNAT, random pick; refused connects fail at connect)"
            }
        }
    }
}

/// Why the kernel data plane cannot run here, or `None` when it can be
/// tried (root, and both programs answer).
pub fn unavailable() -> Option<String> {
    if !nix::unistd::geteuid().is_root() {
        return Some(
            "it needs root (CAP_NET_ADMIN) to write nftables rules and read conntrack events"
                .into(),
        );
    }
    for (prog, pkg) in [("nft", "nftables"), ("conntrack", "conntrack")] {
        let ok = Command::new(prog)
            .arg("--version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            return Some(format!(
                "`{prog}` is not installed (Debian package `{pkg}`)"
            ));
        }
    }
    None
}

struct State {
    doors: HashMap<SocketAddr, (u32, Door)>,
    pods: HashMap<IpAddr, String>,
}

/// The running data plane: the `nft` process holding the table, the
/// `conntrack` process feeding the ground truth.
pub struct Kernel {
    table: String,
    mark: u32,
    sentinel: SocketAddr,
    nft: Mutex<ChildStdin>,
    /// The conntrack wrapper's stdin, held only to be dropped with the
    /// data plane: conntrack then ends.
    _conntrack: ChildStdin,
    state: Arc<Mutex<State>>,
    next_door: AtomicU32,
}

impl Kernel {
    /// Creates the table and starts following conntrack. `pod_ip_base` is
    /// the sandbox's Pod range: its first address (which no Pod gets) is
    /// the sentinel a door without endpoints sends to.
    pub fn start(pod_ip_base: Ipv4Addr, gt: GroundTruth) -> anyhow::Result<Kernel> {
        if let Some(why) = unavailable() {
            bail!("the kernel data plane cannot run here: {why}");
        }
        static N: AtomicU32 = AtomicU32::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        let pid = std::process::id();
        let table = format!("baton_sandbox_{pid}_{n}");
        // Distinct per live sandbox on this machine: pids stay below 2^22.
        let mark = 0x4000_0000 | ((pid & 0x3f_ffff) << 8) | (n & 0xff);
        let sentinel = SocketAddr::new(IpAddr::V4(pod_ip_base), 9);
        let state = Arc::new(Mutex::new(State {
            doors: HashMap::new(),
            pods: HashMap::new(),
        }));

        let (mut nft, nft_errors) = spawn_nft(&table)?;
        send(&mut nft, &rules::create_table(&table))?;
        wait_for_table(&table, &nft_errors)?;
        let conntrack =
            spawn_conntrack(mark, gt.clone(), Tracker::new(gt, sentinel), state.clone())?;
        tracing::info!(%table, mark = format_args!("{mark:#x}"), "kernel data plane ready");
        Ok(Kernel {
            table,
            mark,
            sentinel,
            nft: Mutex::new(nft),
            _conntrack: conntrack,
            state,
            next_door: AtomicU32::new(0),
        })
    }

    /// The table's name (`ip` family).
    pub fn table(&self) -> &str {
        &self.table
    }

    /// Sends one transaction to the table's `nft`; a failure is logged
    /// (the run goes on, its ground truth says what the rules did).
    fn apply(&self, cmd: &str) {
        if let Err(e) = send(&mut self.nft.lock().expect("nft stdin"), cmd) {
            tracing::warn!(error = %format!("{e:#}"), "kernel data plane");
        }
    }

    /// Opens a door (a NodePort, or a ClusterIP and port) to `service`,
    /// sending to `endpoints` as [`Kernel::route`] does.
    pub fn open_door(
        &self,
        addr: SocketAddr,
        namespace: &str,
        service: &str,
        entry: Entry,
        endpoints: &[(String, SocketAddr)],
    ) {
        let n = self.next_door.fetch_add(1, Ordering::Relaxed);
        let door = Door {
            namespace: namespace.to_string(),
            service: service.to_string(),
            entry,
        };
        let addrs = {
            let mut st = self.state.lock().expect("kernel state");
            st.doors.insert(addr, (n, door));
            st.learn(endpoints)
        };
        let cmd = rules::open_door(&self.table, n, addr, self.mark, &addrs, self.sentinel);
        self.apply(&cmd);
        tracing::info!(%addr, service, ?entry, "kernel data plane: door open");
    }

    /// Closes the door at `addr`.
    pub fn close_door(&self, addr: SocketAddr) {
        let removed = self.state.lock().expect("kernel state").doors.remove(&addr);
        if let Some((n, _)) = removed {
            let cmd = rules::close_door(&self.table, n, addr);
            self.apply(&cmd);
        }
    }

    /// From now on the door at `addr` sends each new connection to one of
    /// `endpoints` (Pod name, address), picked at random.
    pub fn route(&self, addr: SocketAddr, endpoints: &[(String, SocketAddr)]) {
        let (n, addrs) = {
            let mut st = self.state.lock().expect("kernel state");
            let Some((n, _)) = st.doors.get(&addr) else {
                return;
            };
            (*n, st.learn(endpoints))
        };
        let cmd = rules::route(&self.table, n, self.mark, &addrs, self.sentinel);
        self.apply(&cmd);
    }
}

impl State {
    /// Remembers which Pod each endpoint address is (for the ground
    /// truth); returns the addresses.
    fn learn(&mut self, endpoints: &[(String, SocketAddr)]) -> Vec<SocketAddr> {
        for (pod, a) in endpoints {
            self.pods.insert(a.ip(), pod.clone());
        }
        endpoints.iter().map(|(_, a)| *a).collect()
    }
}

/// Writes one line of commands to `nft` (one transaction).
fn send(nft: &mut ChildStdin, cmd: &str) -> anyhow::Result<()> {
    writeln!(nft, "{cmd}")
        .and_then(|()| nft.flush())
        .context("writing to nft (did it exit?)")
}

/// Waits until `table` is listed (nft -i answers asynchronously); fails
/// with nft's own words when it refused.
fn wait_for_table(table: &str, nft_errors: &Mutex<Vec<String>>) -> anyhow::Result<()> {
    for _ in 0..100 {
        let listed = Command::new("nft")
            .args(["list", "table", "ip", table])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if listed {
            return Ok(());
        }
        let errs = nft_errors.lock().expect("nft errors").clone();
        if !errs.is_empty() {
            bail!("nft refused the sandbox's table: {}", errs.join(" / "));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    bail!("nft did not create the sandbox's table {table} within 2 s")
}

/// Starts `nft -i` and a thread that logs what it says (and reaps it);
/// returns its stdin (closing it ends nft, and with it the owned table)
/// and the errors seen.
#[allow(clippy::type_complexity)]
fn spawn_nft(table: &str) -> anyhow::Result<(ChildStdin, Arc<Mutex<Vec<String>>>)> {
    let mut child = Command::new("nft")
        .arg("-i")
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .context("starting nft")?;
    let stdin = child.stdin.take().expect("piped");
    let err = child.stderr.take().expect("piped");
    let errors = Arc::new(Mutex::new(Vec::new()));
    let errs = errors.clone();
    let table = table.to_string();
    each_line("sandbox-nft", err, Some(child), move |l| {
        if l.starts_with("Error") {
            tracing::warn!(line = %l, %table, "nft refused a command");
            errs.lock().expect("nft errors").push(l);
        } else {
            tracing::debug!(line = %l, "nft");
        }
    })?;
    Ok((stdin, errors))
}

/// Starts `conntrack -E` for the connections marked `mark`, feeding
/// `tracker` from a thread. conntrack runs under a shell that kills it
/// when its stdin closes (the returned handle dropped, or this process
/// gone), so no conntrack outlives its sandbox. It runs at nice -10: on
/// a busy machine a conntrack left waiting for the CPU hit ENOBUFS (lost
/// events) in about one run in five of `tests/proxy_kernel.rs` beside
/// two busy loops, and in none of twelve at -10. A loss that still
/// happens is counted ([`GroundTruth::lost_events`]).
fn spawn_conntrack(
    mark: u32,
    gt: GroundTruth,
    mut tracker: Tracker,
    state: Arc<Mutex<State>>,
) -> anyhow::Result<ChildStdin> {
    let mut child = Command::new("sh")
        .args([
            "-c",
            "nice -n -10 conntrack \"$@\" & c=$!; cat >/dev/null; kill $c 2>/dev/null; wait $c",
            "sandbox-conntrack",
            "-E",
            "-p",
            "tcp",
            "-o",
            "timestamp,id",
            "--mark",
            &format!("{mark:#x}"),
            "-b",
            "33554432",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .context("starting conntrack")?;
    let stdin = child.stdin.take().expect("piped");
    let out = child.stdout.take().expect("piped");
    let err = child.stderr.take().expect("piped");
    each_line("sandbox-conntrack-err", err, None, move |l| {
        if l.contains("ENOBUFS") {
            gt.note_lost_events();
            tracing::error!(line = %l, "conntrack lost events: the ground truth is incomplete");
        } else {
            tracing::debug!(line = %l, "conntrack");
        }
    })?;
    each_line("sandbox-conntrack", out, Some(child), move |l| {
        let Some(e) = conntrack::parse(&l) else {
            return;
        };
        let st = state.lock().expect("kernel state");
        tracker.event(
            &e,
            |d| st.doors.get(&d).map(|(_, door)| door.clone()),
            |ip| st.pods.get(&ip).cloned(),
        );
    })?;
    Ok(stdin)
}

/// Calls `f` with each line `from` gives, on a thread named `name`, until
/// it closes; then reaps `child`, the process it came from.
fn each_line(
    name: &str,
    from: impl std::io::Read + Send + 'static,
    child: Option<std::process::Child>,
    mut f: impl FnMut(String) + Send + 'static,
) -> anyhow::Result<()> {
    std::thread::Builder::new()
        .name(name.to_string())
        .spawn(move || {
            for l in BufReader::new(from).lines().map_while(Result::ok) {
                f(l);
            }
            if let Some(mut c) = child {
                let _ = c.wait();
            }
        })
        .with_context(|| format!("starting the {name} thread"))?;
    Ok(())
}
