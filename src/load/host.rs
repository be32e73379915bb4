//! The load host's own limits, read before a run: the ephemeral port
//! range, TIME_WAIT reuse, the open-files limit. Raises the soft
//! open-files limit to the hard one, estimates the sustainable
//! new-connection rate, and words the warnings and the advice that the
//! `client_resource` outcome points to.
//!
//! The estimate is pure arithmetic over what was read, tested apart.

use serde::{Deserialize, Serialize};
use std::net::IpAddr;

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct HostLimits {
    /// `net.ipv4.ip_local_port_range`.
    pub port_range: Option<(u32, u32)>,
    /// `net.ipv4.tcp_tw_reuse`: 0 off, 1 on, 2 loopback only.
    pub tcp_tw_reuse: Option<u8>,
    /// Soft open-files limit after baton raised it.
    pub nofile_soft: Option<u64>,
    pub nofile_hard: Option<u64>,
    /// Estimated sustainable new connections per second to one target
    /// from all source addresses, in the worst case where every
    /// connection ends in TIME_WAIT on this host.
    pub est_new_conn_per_s: Option<f64>,
}

fn read_sysctl(path: &str) -> Option<String> {
    std::fs::read_to_string(path)
        .ok()
        .map(|s| s.trim().to_string())
}

fn parse_port_range(s: &str) -> Option<(u32, u32)> {
    let mut it = s.split_whitespace().map(str::parse::<u32>);
    match (it.next(), it.next()) {
        (Some(Ok(lo)), Some(Ok(hi))) if lo <= hi => Some((lo, hi)),
        _ => None,
    }
}

/// How long a TIME_WAIT port stays unusable for a new connection to the
/// same destination: Linux's fixed 60 s, or ~1 s when `tcp_tw_reuse`
/// applies (timestamps let the kernel reuse it after a second).
pub fn time_wait_hold_secs(tw_reuse: Option<u8>, target_is_loopback: bool) -> f64 {
    match tw_reuse {
        Some(1) => 1.0,
        Some(2) if target_is_loopback => 1.0,
        _ => 60.0,
    }
}

/// Worst-case sustainable new-connection rate: every port held for the
/// TIME_WAIT interval, one port range per source address.
pub fn estimate_rate(port_range: (u32, u32), sources: usize, hold_secs: f64) -> f64 {
    let ports = f64::from(port_range.1 - port_range.0 + 1);
    ports * sources.max(1) as f64 / hold_secs
}

/// macOS's `OPEN_MAX`: its setrlimit(2) refuses a soft open-files limit
/// above this when the hard one is unlimited, as it is by default there
/// (whose default soft limit, 256, is far below a load's needs).
const OPEN_MAX: u64 = 10_240;

/// The soft open-files limits to try, best first: the hard limit, then
/// `OPEN_MAX` where that is lower.
fn soft_limits_to_try(soft: u64, hard: u64) -> Vec<u64> {
    let mut out: Vec<u64> = [hard, hard.min(OPEN_MAX)]
        .into_iter()
        .filter(|want| *want > soft)
        .collect();
    out.dedup();
    out
}

/// Raise the soft open-files limit as far as the system allows (the hard
/// limit); return the (soft, hard) limits in force afterwards. Safe to
/// call repeatedly.
pub fn raise_open_files_limit() -> (Option<u64>, Option<u64>) {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    let (mut soft, hard) = match getrlimit(Resource::RLIMIT_NOFILE) {
        Ok((s, h)) => (Some(s), Some(h)),
        Err(_) => (None, None),
    };
    if let (Some(s), Some(h)) = (soft, hard)
        && let Some(want) = soft_limits_to_try(s, h)
            .into_iter()
            .find(|want| setrlimit(Resource::RLIMIT_NOFILE, *want, h).is_ok())
    {
        soft = Some(want);
    }
    (soft, hard)
}

/// Read the limits and raise the soft open-files limit to the hard one.
/// The sysctls are Linux's (/proc/sys); elsewhere they read as unknown and
/// no port estimate or port warning is made.
pub fn inspect(target: IpAddr, sources: usize) -> HostLimits {
    let port_range =
        read_sysctl("/proc/sys/net/ipv4/ip_local_port_range").and_then(|s| parse_port_range(&s));
    let tcp_tw_reuse = read_sysctl("/proc/sys/net/ipv4/tcp_tw_reuse").and_then(|s| s.parse().ok());
    let (soft, hard) = raise_open_files_limit();
    let est = port_range.map(|r| {
        estimate_rate(
            r,
            sources,
            time_wait_hold_secs(tcp_tw_reuse, target.is_loopback()),
        )
    });
    HostLimits {
        port_range,
        tcp_tw_reuse,
        nofile_soft: soft,
        nofile_hard: hard,
        est_new_conn_per_s: est,
    }
}

/// Warnings for a planned run, each a sentence that says what to change.
pub fn warnings(
    h: &HostLimits,
    rate: Option<f64>,
    concurrency: usize,
    keepalive: bool,
) -> Vec<String> {
    let mut out = vec![];
    if let (Some(rate), Some(est), false) = (rate, h.est_new_conn_per_s, keepalive)
        && rate > est
    {
        out.push(format!(
            "asked for {rate:.0} new connections/s, but this host can sustain about {est:.0}/s if connections \
             end in TIME_WAIT here (ports {}..{}, tcp_tw_reuse={}); baton sends `Connection: close` so the server \
             normally closes first, but if ports run out the run becomes invalid. Widen \
             net.ipv4.ip_local_port_range, set net.ipv4.tcp_tw_reuse=1, or pass --source-ips",
            h.port_range.map_or(0, |r| r.0),
            h.port_range.map_or(0, |r| r.1),
            h.tcp_tw_reuse.map_or("?".into(), |v| v.to_string()),
        ));
    }
    if let Some(soft) = h.nofile_soft
        && (concurrency as u64).saturating_add(64) > soft
    {
        out.push(format!(
            "--concurrency {concurrency} is close to or above the open-files limit ({soft}); raise it with \
             `ulimit -n` (hard limit: {})",
            h.nofile_hard.map_or("?".into(), |v| v.to_string())
        ));
    }
    out
}

/// What to tell the user when `client_resource` errors happened.
pub fn client_resource_advice(errnos: &[&str]) -> String {
    let mut advice = vec![];
    if errnos.iter().any(|e| *e == "EMFILE" || *e == "ENFILE") {
        advice.push(
            "raise the open-files limit (`ulimit -n`, or fs.file-max) or lower --concurrency",
        );
    }
    if errnos
        .iter()
        .any(|e| *e == "EADDRNOTAVAIL" || *e == "EAGAIN")
    {
        advice.push(
            "free more local ports: widen net.ipv4.ip_local_port_range, set net.ipv4.tcp_tw_reuse=1, \
             or add source addresses with --source-ips",
        );
    }
    if errnos.iter().any(|e| *e == "ENOBUFS" || *e == "ENOMEM") {
        advice.push("the kernel ran out of socket buffers: lower the rate or give the load host more memory");
    }
    if advice.is_empty() {
        advice.push("tune the load host or lower the rate");
    }
    advice.join("; ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn port_range_parses_the_proc_format() {
        assert_eq!(parse_port_range("32768\t60999"), Some((32768, 60999)));
        assert_eq!(parse_port_range("garbage"), None);
        assert_eq!(parse_port_range("5 1"), None);
    }

    #[test]
    fn the_soft_limit_goes_to_the_hard_one_or_to_open_max_under_an_unlimited_one() {
        // Linux: a finite hard limit, tried first and granted.
        assert_eq!(soft_limits_to_try(1024, 524_288), vec![524_288, OPEN_MAX]);
        // macOS: an unlimited hard limit is refused as a soft one.
        assert_eq!(soft_limits_to_try(256, u64::MAX), vec![u64::MAX, OPEN_MAX]);
        assert_eq!(soft_limits_to_try(256, 4096), vec![4096]);
        // Already as high as it goes: nothing to try.
        assert!(soft_limits_to_try(4096, 4096).is_empty());
        assert_eq!(soft_limits_to_try(OPEN_MAX, u64::MAX), vec![u64::MAX]);
    }

    #[test]
    fn estimate_scales_with_ports_sources_and_reuse() {
        let r = (32768, 60999);
        assert_eq!(estimate_rate(r, 1, 60.0).round(), 471.0);
        assert_eq!(estimate_rate(r, 4, 60.0).round(), 1882.0);
        assert_eq!(estimate_rate(r, 1, 1.0), 28232.0);
        assert_eq!(time_wait_hold_secs(Some(2), true), 1.0);
        assert_eq!(time_wait_hold_secs(Some(2), false), 60.0);
        assert_eq!(time_wait_hold_secs(Some(0), true), 60.0);
    }

    #[test]
    fn warns_when_the_rate_exceeds_the_estimate_or_fds_run_short() {
        let h = HostLimits {
            port_range: Some((32768, 60999)),
            tcp_tw_reuse: Some(0),
            nofile_soft: Some(1024),
            nofile_hard: Some(4096),
            est_new_conn_per_s: Some(470.0),
        };
        let w = warnings(&h, Some(1000.0), 2000, false);
        assert_eq!(w.len(), 2);
        assert!(w[0].contains("--source-ips"));
        assert!(w[1].contains("ulimit -n"));
        assert!(warnings(&h, Some(100.0), 10, false).is_empty());
        // Keep-alive opens few connections: no port warning.
        assert!(warnings(&h, Some(1000.0), 10, true).is_empty());
    }

    #[test]
    fn advice_names_the_knob_for_each_errno() {
        assert!(client_resource_advice(&["EMFILE"]).contains("ulimit -n"));
        assert!(client_resource_advice(&["EADDRNOTAVAIL"]).contains("--source-ips"));
        assert!(client_resource_advice(&["ENOBUFS"]).contains("buffers"));
    }
}
