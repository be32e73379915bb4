//! The kubelet of the sandbox SIMULATOR: runs every Pod in the store as a
//! real HTTP server on its own loopback address, with the lifecycle that
//! decides whether a rollout drops requests. No containers are run, except
//! that Pods of the images in
//! [`ClusterConfig::process_images`](crate::config::ClusterConfig) run as
//! real child processes ([`process`]: baton's own in-cluster workers).
//!
//! # What a Pod does
//!
//! - **Scheduling**: a Pod without `spec.nodeName` is bound to the
//!   schedulable Node with the fewest Pods ([`crate::scheduler`]), with
//!   condition `PodScheduled` and a `Scheduled` event; with no schedulable
//!   Node it stays `Pending` with `PodScheduled=False`, reason
//!   `Unschedulable`, and a `FailedScheduling` event, and is scheduled
//!   when a Node is uncordoned (deleting it then removes it at once, as the
//!   API server does for unbound Pods). A Pod that names its Node runs
//!   there. It gets an IP from
//!   [`ClusterConfig::pod_ip_base`](crate::config::ClusterConfig) (`+1`,
//!   `+2`, ...; each Pod its own address, never reused within a sandbox's
//!   first 65 000 Pods).
//! - **Image**: the version served is the `VERSION` env value, else the image tag (`nginx:1.28` →
//!   `1.28`, no tag → `latest`). A tag containing `does-not-exist` never
//!   starts: the container waits with reason `ErrImagePull`, then
//!   `ImagePullBackOff`, with `Failed` and `BackOff` events, retried with
//!   back-off, as Kubernetes shows it.
//! - **Serving**: the first container's first `containerPort` (default 80)
//!   on the Pod IP; every path answers `200`, header `x-pod-name: <pod>`,
//!   body `Hello from <pod> version <tag>\n`. If the port cannot be bound
//!   the container exits with code 1 (message in its status and a `Failed`
//!   event) and restarts with back-off.
//! - **Readiness**: `readinessProbe` with `httpGet` (a real request to the
//!   Pod), `tcpSocket` (a connect), honouring `initialDelaySeconds`,
//!   `periodSeconds`, `timeoutSeconds`, `successThreshold`,
//!   `failureThreshold`; failures give `Unhealthy` events. `exec` and
//!   `grpc` probes cannot run and count as successes. Without a probe the
//!   Pod is Ready as soon as it listens. A deleted Pod keeps being probed
//!   until its container exits, as the real kubelet does, so a Pod that
//!   stops listening while it drains turns not-ready (endpoint
//!   `serving=false`) after `failureThreshold` failures.
//!   `livenessProbe` and `startupProbe` are not simulated.
//! - **Deletion** (`metadata.deletionTimestamp` set by the API server or a
//!   controller): a `Killing` event; the `preStop` hook runs while the
//!   server keeps serving — `exec` whose command is `sleep N` or
//!   `sh -c "... sleep N ..."` is parsed (not executed) as a sleep, and the
//!   `sleep: {seconds: N}` action sleeps; other hooks are skipped. Then
//!   "SIGTERM" per `sandbox.baton.dev/on-sigterm`. The grace period
//!   (`deletionGracePeriodSeconds`, else `terminationGracePeriodSeconds`,
//!   else 30 s) runs from when the kubelet sees the deletion, over preStop
//!   and SIGTERM together, as the real kubelet's does (a second delete
//!   with a shorter grace period shortens it); when it ends,
//!   "SIGKILL" resets every connection. The container then shows
//!   `terminated` (exit 0 `Completed`, or 137 `Error` after SIGKILL), the
//!   phase becomes `Succeeded`/`Failed`, and the Pod is removed from the
//!   store.
//! - **Crash**: `sandbox.baton.dev/crash-after` makes the container exit
//!   with code 1 that long after it started; `restartCount` grows, the
//!   container waits in `CrashLoopBackOff` with `BackOff` events, and
//!   restarts after a back-off that starts at
//!   [`ClusterConfig::backoff_base`](crate::config::ClusterConfig) and
//!   doubles up to `backoff_max`.
//!
//! # Pod-template annotations
//!
//! For what only the image would decide in a real cluster (durations as
//! `500ms`, `2s`, `1m`, or a bare number of seconds):
//!
//! | annotation | meaning | default |
//! |---|---|---|
//! | `sandbox.baton.dev/startup-delay` | time from container start to listening | `0s` |
//! | `sandbox.baton.dev/on-sigterm` | `close`: close the listener and reset in-flight connections at once (nginx's fast shutdown); `drain`: stop accepting, finish in-flight requests, then exit | `close` |
//! | `sandbox.baton.dev/crash-after` | the container exits with code 1 this long after it started | never |
//! | `sandbox.baton.dev/response-delay` | time before each response | `0s` |
//! | `sandbox.baton.dev/status` | the HTTP status of every response (the body is the same) | `200` |

mod pod;
pub mod probe;
pub mod process;
mod schedule;
pub mod server;

use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::config::ClusterConfig;
use crate::store::Store;
use crate::truth::GroundTruth;

/// Annotation prefix of the simulator's behaviour knobs.
pub const ANNOTATION_PREFIX: &str = "sandbox.baton.dev/";
pub const STARTUP_DELAY: &str = "sandbox.baton.dev/startup-delay";
pub const ON_SIGTERM: &str = "sandbox.baton.dev/on-sigterm";
pub const CRASH_AFTER: &str = "sandbox.baton.dev/crash-after";
pub const RESPONSE_DELAY: &str = "sandbox.baton.dev/response-delay";
pub const STATUS: &str = "sandbox.baton.dev/status";

/// Parses `500ms`, `2s`, `1.5s`, `1m`, `1h` or a bare number of seconds.
pub fn parse_duration(s: &str) -> Option<Duration> {
    let s = s.trim();
    let (num, unit) = match s.find(|c: char| c.is_ascii_alphabetic()) {
        Some(i) => (&s[..i], &s[i..]),
        None => (s, "s"),
    };
    let n: f64 = num.trim().parse().ok()?;
    if !n.is_finite() || n < 0.0 {
        return None;
    }
    let secs = match unit {
        "ms" => n / 1000.0,
        "s" => n,
        "m" => n * 60.0,
        "h" => n * 3600.0,
        _ => return None,
    };
    Some(Duration::from_secs_f64(secs))
}

/// The version a Pod serves: its image tag (`latest` when none).
pub fn image_version(image: &str) -> String {
    let image = image.split('@').next().unwrap_or(image);
    let last = image.rsplit('/').next().unwrap_or(image);
    match last.rsplit_once(':') {
        Some((_, tag)) if !tag.is_empty() => tag.to_string(),
        _ => "latest".to_string(),
    }
}

/// The version a Pod serves: its first container's `VERSION` environment
/// variable when it sets one literally (as many demo apps read it), else
/// the image tag. Lets one manifest say the same version on the sandbox
/// and on a real cluster, whatever the image's tag.
pub fn served_version(p: &Pod, image: &str) -> String {
    p.spec
        .as_ref()
        .and_then(|s| s.containers.first())
        .and_then(|c| c.env.as_ref())
        .and_then(|env| env.iter().find(|e| e.name == "VERSION"))
        .and_then(|e| e.value.clone())
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| image_version(image))
}

/// The port a Pod serves on: its first container's first containerPort, or 80.
pub fn pod_port(p: &Pod) -> u16 {
    p.spec
        .as_ref()
        .and_then(|s| s.containers.first())
        .and_then(|c| c.ports.as_ref())
        .and_then(|ps| ps.first())
        .and_then(|cp| u16::try_from(cp.container_port).ok())
        .unwrap_or(80)
}

/// Hands out Pod IPs: `base + 1`, `base + 2`, ..., skipping `.0` and `.255`.
struct IpAllocator {
    base: u32,
    next: u32,
}

impl IpAllocator {
    /// The next address whose `port` is free right now: another sandbox
    /// (in this or another process) may use the same range, and a Pod IP,
    /// once published, cannot change.
    fn next_free(&mut self, port: u16) -> Ipv4Addr {
        let first = self.next();
        let mut ip = first;
        for _ in 0..1000 {
            match std::net::TcpListener::bind((ip, port)) {
                Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => {
                    tracing::debug!(%ip, port, "pod address in use elsewhere; skipping it");
                    ip = self.next();
                }
                // Free, or failing for another reason (e.g. no permission
                // for a port below 1024): the Pod will say so when it binds.
                _ => return ip,
            }
        }
        first
    }

    fn next(&mut self) -> Ipv4Addr {
        loop {
            self.next = if self.next >= 65_000 {
                1
            } else {
                self.next + 1
            };
            let ip = self.base.wrapping_add(self.next);
            if !matches!(ip & 0xff, 0 | 255) {
                return Ipv4Addr::from(ip);
            }
        }
    }
}

/// Every Pod serves on its own loopback address (`base + 1`, `+ 2`, ...).
/// Linux answers on all of 127.0.0.0/8; macOS only on 127.0.0.1 and the
/// addresses aliased on lo0. Where the first Pod address cannot be bound,
/// fail at start and say so, rather than leave every Pod crash-looping.
pub fn check_pod_addresses(base: Ipv4Addr) -> anyhow::Result<()> {
    let first = Ipv4Addr::from(u32::from(base).wrapping_add(1));
    match std::net::TcpListener::bind((first, 0)) {
        Err(e) if e.kind() == std::io::ErrorKind::AddrNotAvailable => anyhow::bail!(
            "the sandbox serves each Pod on its own loopback address ({first} and up), and this \
             system cannot bind {first} ({e}): Linux answers on all of 127.0.0.0/8, macOS only on \
             127.0.0.1 and the addresses aliased on lo0. Run the sandbox on Linux, e.g. in baton's \
             image (`docker run --rm ghcr.io/baton-rollouts/baton demo`)"
        ),
        // Bound, or failing for a reason the Pods will report themselves.
        _ => Ok(()),
    }
}

/// Runs the kubelet until `shutdown` is cancelled; every Pod server is
/// stopped by then.
pub async fn run(
    store: Arc<Store>,
    cfg: ClusterConfig,
    truth: GroundTruth,
    processes: process::ProcessTable,
    shutdown: CancellationToken,
) {
    let mut wakeups = store.wakeups(Duration::from_millis(200));
    let mut ips = IpAllocator {
        base: u32::from(cfg.pod_ip_base),
        next: 0,
    };
    // Pod uid → the channel that feeds the Pod's worker its latest object.
    let mut workers: HashMap<String, watch::Sender<Option<Pod>>> = HashMap::new();
    let mut tasks = JoinSet::new();
    let ctx = Arc::new(pod::Shared {
        store: store.clone(),
        rec: crate::events::Recorder::new(store.clone(), "kubelet"),
        sched: crate::events::Recorder::new(store.clone(), "default-scheduler"),
        cfg: cfg.clone(),
        truth,
        processes,
    });
    loop {
        let (pods, _) = store.list::<Pod>(None);
        let mut placement = schedule::Placement::read(&store, &pods);
        let mut live = std::collections::HashSet::new();
        for p in pods {
            let Some(uid) = p.metadata.uid.clone() else {
                continue;
            };
            live.insert(uid.clone());
            let Some(p) = placement.bind(&store, &ctx.sched, p) else {
                continue;
            };
            match workers.get(&uid) {
                Some(tx) => {
                    tx.send_if_modified(|cur| {
                        let changed = cur.as_ref().map(|c| &c.metadata.resource_version)
                            != Some(&p.metadata.resource_version);
                        if changed {
                            *cur = Some(p.clone());
                        }
                        changed
                    });
                }
                None => {
                    let ip = ips.next_free(pod_port(&p));
                    let (tx, wrx) = watch::channel(Some(p.clone()));
                    workers.insert(uid, tx);
                    if process::is_process_pod(&cfg.process_images, &p) {
                        tasks.spawn(process::run(
                            ctx.clone(),
                            p,
                            ip,
                            wrx,
                            shutdown.child_token(),
                        ));
                    } else {
                        tasks.spawn(pod::run(ctx.clone(), p, ip, wrx, shutdown.child_token()));
                    }
                }
            }
        }
        // Pods gone from the store (removed by us, or force-deleted):
        // their workers stop the server at once.
        workers.retain(|uid, tx| {
            if live.contains(uid) {
                true
            } else {
                let _ = tx.send(None);
                false
            }
        });
        while tasks.try_join_next().is_some() {}
        if !wakeups.next(&shutdown).await {
            break;
        }
    }
    // Workers see the (child) token and kill their servers.
    while tasks.join_next().await.is_some() {}
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_with_units() {
        assert_eq!(parse_duration("500ms"), Some(Duration::from_millis(500)));
        assert_eq!(parse_duration("2s"), Some(Duration::from_secs(2)));
        assert_eq!(parse_duration("1.5s"), Some(Duration::from_millis(1500)));
        assert_eq!(parse_duration("1m"), Some(Duration::from_secs(60)));
        assert_eq!(parse_duration("3"), Some(Duration::from_secs(3)));
        assert_eq!(parse_duration("soon"), None);
    }

    #[test]
    fn a_version_env_overrides_the_image_tag() {
        let pod: Pod = serde_json::from_value(serde_json::json!({
            "spec": {"containers": [{"name": "web", "image": "echo:0.2.3",
                "env": [{"name": "VERSION", "value": "v2"}]}]}
        }))
        .unwrap();
        assert_eq!(served_version(&pod, "echo:0.2.3"), "v2");
        assert_eq!(served_version(&Pod::default(), "echo:0.2.3"), "0.2.3");
    }

    #[test]
    fn version_is_the_image_tag() {
        assert_eq!(image_version("nginx:1.28"), "1.28");
        assert_eq!(image_version("nginx"), "latest");
        assert_eq!(image_version("registry:5000/team/app:v2"), "v2");
        assert_eq!(image_version("registry:5000/team/app"), "latest");
    }

    #[test]
    fn a_pod_range_this_host_cannot_bind_is_refused_with_the_reason() {
        assert!(check_pod_addresses(Ipv4Addr::new(127, 0, 0, 0)).is_ok());
        // TEST-NET-1 (RFC 5737) is on no interface: bound, never sent to.
        let e = check_pod_addresses(Ipv4Addr::new(192, 0, 2, 0)).unwrap_err();
        let e = e.to_string();
        assert!(
            e.contains("cannot bind 192.0.2.1") && e.contains("lo0"),
            "{e}"
        );
    }

    #[test]
    fn pod_ips_skip_network_and_broadcast_octets() {
        let mut a = IpAllocator {
            base: u32::from(Ipv4Addr::new(127, 20, 0, 0)),
            next: 253,
        };
        assert_eq!(a.next(), Ipv4Addr::new(127, 20, 0, 254));
        assert_eq!(a.next(), Ipv4Addr::new(127, 20, 1, 1));
    }
}
