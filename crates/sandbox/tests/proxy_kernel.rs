//! The kernel data plane (`data_plane: kernel`): Service traffic DNATed by
//! nftables as kube-proxy's nftables mode does, ground truth from
//! conntrack. Each connection reaches the Pod conntrack names; a Pod that
//! closed its listener makes the client's own connect fail (refused), not
//! a reset after accept as behind the userspace proxy; and the rules go
//! with the sandbox. Whole sandboxes driven through their API, load on
//! real sockets; every wait is bounded and nothing is timed.
//!
//! Needs root, `nft` and `conntrack`. Elsewhere each test says why it did
//! not run and passes, unless `BATON_REQUIRE_KERNEL_DATA_PLANE=1` (set by
//! `scripts/test.sh` where the kernel data plane can run), which makes a
//! missing data plane a failure.

mod rollout_common;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Duration;

use baton_sandbox::truth::{ConnRecord, Entry, Outcome};
use baton_sandbox::{DataPlane, DataPlaneUsed, Sandbox, SandboxConfig};
use rollout_common::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// `false` (with the reason printed) when the kernel data plane cannot run
/// here and nobody asked for it.
fn kernel_available() -> bool {
    let Some(why) = baton_sandbox::kernel::unavailable() else {
        return true;
    };
    assert!(
        std::env::var("BATON_REQUIRE_KERNEL_DATA_PLANE").as_deref() != Ok("1"),
        "BATON_REQUIRE_KERNEL_DATA_PLANE=1, but the kernel data plane cannot run: {why}"
    );
    eprintln!("not run: the kernel data plane cannot run here: {why}");
    false
}

async fn sandbox(spec: Spec) -> Sandbox {
    let mut cfg = SandboxConfig::default();
    cfg.cluster.propagation_delay = Duration::from_millis(500);
    cfg.cluster.data_plane = DataPlane::Kernel;
    let mut svc = service("web-service", 0);
    svc.spec.as_mut().unwrap().ports.as_mut().unwrap()[0].node_port = None;
    cfg.manifests = vec![
        serde_json::to_value(deployment("web", spec)).unwrap(),
        serde_json::to_value(svc).unwrap(),
    ];
    let sb = Sandbox::start(cfg).await.expect("sandbox starts");
    assert_eq!(sb.data_plane(), DataPlaneUsed::Kernel);
    wait_rollout(&sb.store(), "web").await;
    sb
}

/// One request on a new connection: its local port, and the Pod that
/// answered (`x-pod-name`), or the error and whether it came at connect.
async fn request(addr: SocketAddr) -> (Option<u16>, Result<String, (bool, std::io::ErrorKind)>) {
    let mut s = match TcpStream::connect(addr).await {
        Ok(s) => s,
        Err(e) => return (None, Err((true, e.kind()))),
    };
    let port = s.local_addr().ok().map(|a| a.port());
    let r = async {
        s.write_all(b"GET / HTTP/1.1\r\nHost: sandbox\r\nConnection: close\r\n\r\n")
            .await?;
        let mut buf = Vec::new();
        s.read_to_end(&mut buf).await?;
        Ok::<_, std::io::Error>(String::from_utf8_lossy(&buf).to_string())
    };
    let text = match tokio::time::timeout(Duration::from_secs(10), r).await {
        Ok(Ok(t)) => t,
        Ok(Err(e)) => return (port, Err((false, e.kind()))),
        Err(_) => return (port, Err((false, std::io::ErrorKind::TimedOut))),
    };
    let pod = text
        .lines()
        .find_map(|l| l.strip_prefix("x-pod-name: "))
        .map(|p| p.trim().to_string())
        .unwrap_or_default();
    (port, Ok(pod))
}

/// The ground-truth record of the connection from local `port`: the
/// latest from that address (a port is reused across the run).
fn record_of(all: &[ConnRecord], port: u16) -> Option<ConnRecord> {
    all.iter()
        .rev()
        .find(|r| r.client_addr.port() == port)
        .cloned()
}

/// Waits until the conntrack reader has recorded `port`'s connection as
/// ended (events arrive a little after the client is done).
async fn ended_record(sb: &Sandbox, port: u16) -> ConnRecord {
    let mut last = None;
    for _ in 0..100 {
        last = record_of(&sb.ground_truth().snapshot(), port);
        if last.as_ref().is_some_and(|r| r.outcome != Outcome::Open) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    last.unwrap_or_else(|| panic!("no ground-truth record for local port {port}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_connection_reaches_the_pod_conntrack_names_picked_at_random() {
    if !kernel_available() {
        return;
    }
    let sb = sandbox(Spec::default()).await;
    let addr = sb.node_port("web-service").expect("a NodePort");
    until_answering(addr).await;
    let mut answered: HashMap<u16, String> = HashMap::new();
    for _ in 0..60 {
        let (port, r) = request(addr).await;
        let pod = r.expect("served");
        answered.insert(port.expect("connected"), pod);
    }
    let mut pods_seen: Vec<&String> = answered.values().collect();
    pods_seen.sort();
    pods_seen.dedup();
    assert!(
        pods_seen.len() >= 2,
        "a random pick over 3 Pods reached only {pods_seen:?} in 60"
    );
    for (port, pod) in &answered {
        let r = ended_record(&sb, *port).await;
        assert_eq!(
            r.pod.as_ref(),
            Some(pod),
            "port {port}: conntrack names the Pod that answered"
        );
        assert_eq!(r.outcome, Outcome::Proxied, "port {port}");
        assert_eq!(r.entry, Entry::NodePort);
        assert_eq!(r.service, "web-service");
    }
    sb.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pod_that_closed_its_listener_refuses_the_clients_own_connect() {
    if !kernel_available() {
        return;
    }
    let spec = Spec {
        annotations: [(
            "sandbox.baton.dev/on-sigterm".to_string(),
            "close".to_string(),
        )]
        .into(),
        ..Spec::default()
    };
    let sb = sandbox(spec).await;
    let addr = sb.node_port("web-service").expect("a NodePort");
    until_answering(addr).await;
    let before = sb.ground_truth().snapshot().len();
    set_image(&sb.store(), "web", "nginx:1.28");
    // Requests through the rollout, one every 2 ms at most (a refused
    // connect takes microseconds; unpaced, conntrack's events would
    // outrun its reader): a closed Pod stays routable for the 500 ms lag
    // after each deletion. Bounded: 20 000 requests or 60 s.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    let mut pace = tokio::time::interval(Duration::from_millis(2));
    let mut refused_at_connect = 0;
    let mut reset_after_accept = 0;
    let mut reset_at_connect = 0;
    let mut served = 0;
    for _ in 0..20_000 {
        pace.tick().await;
        let (_, r) = request(addr).await;
        match r {
            Ok(_) => served += 1,
            Err((true, std::io::ErrorKind::ConnectionRefused)) => refused_at_connect += 1,
            // A Pod closing its listener with this SYN in its queue.
            Err((true, std::io::ErrorKind::ConnectionReset)) => reset_at_connect += 1,
            Err((false, _)) => reset_after_accept += 1,
            Err((true, k)) => panic!("connect failed otherwise: {k:?}"),
        }
        let done =
            deadline < tokio::time::Instant::now() || (refused_at_connect > 0 && served > 300);
        if done {
            break;
        }
    }
    eprintln!(
        "served {served}, refused at connect {refused_at_connect}, reset at connect \
         {reset_at_connect}, reset after accept {reset_after_accept}"
    );
    assert!(served > 50, "the load ran");
    assert!(
        refused_at_connect > 0,
        "closed Pods still routable refused the clients' connects"
    );
    // Every refusal seen is in the ground truth (conntrack's events
    // arrive a little after the client saw them): by a Pod, naming it, or
    // for want of any endpoint.
    let (mut by_pod, mut no_endpoint) = (Vec::new(), 0);
    for _ in 0..250 {
        let during: Vec<ConnRecord> = sb
            .ground_truth()
            .snapshot()
            .into_iter()
            .skip(before)
            .collect();
        by_pod = during
            .iter()
            .filter(|r| r.outcome == Outcome::UpstreamRefused)
            .cloned()
            .collect();
        no_endpoint = during
            .iter()
            .filter(|r| r.outcome == Outcome::NoEndpoints)
            .count();
        if by_pod.len() + no_endpoint >= refused_at_connect {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        by_pod.len() + no_endpoint >= refused_at_connect,
        "{} refusals by a Pod and {no_endpoint} for want of one recorded, {refused_at_connect} seen",
        by_pod.len()
    );
    assert!(!by_pod.is_empty(), "Pods refused");
    assert!(
        by_pod.iter().all(|r| r.pod.is_some()),
        "each refusal by a Pod names it"
    );
    assert_eq!(
        sb.ground_truth().lost_events(),
        0,
        "conntrack lost no event"
    );
    sb.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_rules_go_with_the_sandbox() {
    if !kernel_available() {
        return;
    }
    let sb = sandbox(Spec {
        replicas: 1,
        ..Spec::default()
    })
    .await;
    let table = sb.kernel_table().expect("a kernel table").to_string();
    let listed = |t: &str| {
        std::process::Command::new("nft")
            .args(["list", "table", "ip", t])
            .output()
            .expect("nft runs")
            .status
            .success()
    };
    assert!(listed(&table), "{table} is there while the sandbox runs");
    sb.shutdown().await;
    let mut gone = false;
    for _ in 0..100 {
        if !listed(&table) {
            gone = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(gone, "{table} is removed with the sandbox");
}

/// An nftables table of the test's own that keeps one port's packets out
/// of conntrack, so the sandbox's NAT never sees them; removed on drop.
struct Untracked(String);

impl Untracked {
    fn port(port: u16) -> Untracked {
        let t = format!("baton_test_untracked_{}_{port}", std::process::id());
        let rules = format!(
            "add table ip {t}; \
             add chain ip {t} raw {{ type filter hook output priority -300; }}; \
             add rule ip {t} raw tcp dport {port} notrack; \
             add rule ip {t} raw tcp sport {port} notrack"
        );
        let ok = std::process::Command::new("nft")
            .arg(&rules)
            .status()
            .expect("nft runs")
            .success();
        assert!(ok, "nft {rules}");
        Untracked(t)
    }
}

impl Drop for Untracked {
    fn drop(&mut self) {
        let _ = std::process::Command::new("nft")
            .args(["delete", "table", "ip", &self.0])
            .status();
    }
}

/// A connection the NAT did not translate (here: kept out of conntrack by
/// the test, as one was once seen under load) reaches the port's own
/// listener; it is served as the userspace proxy serves it, not left
/// unanswered until the client gives up.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_the_nat_did_not_translate_is_still_served() {
    if !kernel_available() {
        return;
    }
    let sb = sandbox(Spec::default()).await;
    let addr = sb.node_port("web-service").expect("a NodePort");
    until_answering(addr).await;
    let untracked = Untracked::port(addr.port());
    let (_, r) = request(addr).await;
    drop(untracked);
    let pod = r.expect("served, not left hanging");
    assert!(pod.starts_with("web-"), "answered by a Pod: {pod:?}");
    sb.shutdown().await;
}
