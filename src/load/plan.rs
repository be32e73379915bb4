//! A validated load plan: everything a load run needs, checked before any
//! socket opens. Built from `baton load`'s flags (`commands::load`) or
//! from a profile (`profile::load_input`).
//!
//! Not for: parsing the command line (see `cli`) or running (see `engine`).

use super::client::{RequestTemplate, StatusSet};
use super::extract::Extractor;
use super::tls::{TlsError, TlsOptions, TlsTarget};
use http::header::{CONNECTION, HOST, HeaderName, HeaderValue, USER_AGENT};
use http::{HeaderMap, Method, Uri};
use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
use std::path::PathBuf;
use std::time::Duration;

/// Bad input to a load run; each message names the flag to fix.
#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    #[error("URL `{url}`: {why}")]
    Url { url: String, why: String },
    #[error("URL `{url}`: cannot resolve host `{host}`: {why}")]
    Resolve {
        url: String,
        host: String,
        why: String,
    },
    #[error("--header `{0}`: expected `Name: value`")]
    Header(String),
    #[error("--{flag}: {why}")]
    Flag { flag: &'static str, why: String },
    #[error(transparent)]
    Tls(#[from] TlsError),
}

/// The rate regime of a run.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Pacing {
    /// Open model: `rate` arrivals per second on a fixed schedule,
    /// whatever the responses do; `concurrency` caps in-flight requests
    /// and arrivals over the cap are shed and counted.
    Open { rate: f64 },
    /// Closed model (`--rate 0`): `concurrency` requests back to back,
    /// each started when one finishes. No schedule, so no lateness.
    Closed,
}

#[derive(Debug)]
pub struct LoadPlan {
    pub url: String,
    pub template: RequestTemplate,
    pub pacing: Pacing,
    pub concurrency: usize,
    pub max_requests: Option<u64>,
    pub duration: Option<Duration>,
    pub source_ips: Vec<IpAddr>,
    pub out_dir: PathBuf,
    /// One runtime per worker thread, each with its own histograms.
    pub workers: usize,
    /// The default `--concurrency` the open-files limit lowered, if it
    /// did (`concurrency` holds the lowered value).
    pub concurrency_capped_from: Option<usize>,
    /// What the live status line adds after the load's own figures (the
    /// rollout's progress, during `baton run`); empty for `baton load`.
    pub status_note: StatusNote,
    /// `duration` is only a safety bound (`baton run` stops the load
    /// itself), so the status line does not show it as the planned length.
    pub duration_is_bound: bool,
    /// This host's share of a load several hosts send together (an
    /// in-cluster worker); `None`: the whole schedule.
    pub share: Option<Share>,
}

/// Worker `worker` (0-based) of `workers` interleaved shares of one open
/// model (see [`super::pacing::Schedule::share`]). A share's records carry
/// the global arrival index as `seq`, so the shares' records merge into
/// one run without two rows sharing a `seq`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Share {
    pub worker: u64,
    pub workers: u64,
}

/// Text shared with the status line, updated by whoever knows more.
pub type StatusNote = std::sync::Arc<std::sync::Mutex<String>>;

/// The raw inputs, as the command line or a profile gives them.
#[derive(Clone, Debug, Default)]
pub struct LoadInput {
    pub url: String,
    pub rate: f64,
    pub concurrency: Option<usize>,
    pub requests: Option<u64>,
    pub duration: Option<Duration>,
    pub timeout: Duration,
    pub connect_timeout: Duration,
    pub keepalive: bool,
    pub headers: Vec<String>,
    pub method: String,
    pub expect_status: Option<StatusSet>,
    pub backend_from: Option<Extractor>,
    pub version_from: Option<Extractor>,
    pub source_ips: Vec<IpAddr>,
    pub out_dir: PathBuf,
    pub workers: Option<usize>,
    /// Trust settings for `https://` URLs (ignored for `http://`).
    pub tls: TlsOptions,
    /// The open-files limit the run will have (see
    /// `host::raise_open_files_limit`): the default `--concurrency` stays
    /// below it. `None`: unknown, no cap.
    pub open_files: Option<u64>,
}

/// Descriptors kept free for baton's own files and connections (the
/// records file, the cluster client, the sandbox) when the open-files
/// limit caps the default `--concurrency`.
pub const FD_RESERVE: u64 = 256;

/// The default in-flight cap. Open model: room for every request that
/// can be pending within one timeout at the asked rate, plus headroom, so
/// shedding means the target is slower than the timeout allows, not that
/// the default was low; but below the open-files limit, since a default
/// that makes its own run fail with EMFILE helps nobody. Returns the cap
/// and, when the limit lowered it, what it would have been.
pub fn default_concurrency(
    pacing: &Pacing,
    timeout: Duration,
    open_files: Option<u64>,
) -> (usize, Option<usize>) {
    let want = match pacing {
        Pacing::Open { rate } => {
            ((rate * timeout.as_secs_f64()).ceil() as usize).clamp(16, 50_000) + 16
        }
        Pacing::Closed => 32,
    };
    let room = open_files.map(|n| n.saturating_sub(FD_RESERVE).max(16) as usize);
    match room {
        Some(room) if want > room => (room, Some(want)),
        _ => (want, None),
    }
}

/// The most new connections per second one baton asks of its host. A
/// single host tops out at a few tens of thousands (its ephemeral ports
/// and the kernel's connection setup); asking for far more would only
/// measure the host falling behind. Past it, spread the load over hosts.
pub const MAX_RATE: f64 = 200_000.0;

/// The default run length when neither `--requests` nor `--duration` is
/// given.
pub const DEFAULT_DURATION: Duration = Duration::from_secs(10);

fn flag(flag: &'static str, why: impl Into<String>) -> PlanError {
    PlanError::Flag {
        flag,
        why: why.into(),
    }
}

/// A target URL, taken apart.
struct ParsedUrl {
    addr: SocketAddr,
    /// The request line's target (`/path?query`).
    path: Uri,
    host_header: HeaderValue,
    /// The host as written (a DNS name or an IP), for TLS's server name.
    host: String,
    https: bool,
}

/// Parse `http[s]://host:port/path?q` into the address to connect to and
/// the request line's target. Resolves the host once, up front.
fn parse_url(url: &str) -> Result<ParsedUrl, PlanError> {
    let bad = |why: &str| PlanError::Url {
        url: url.to_string(),
        why: why.to_string(),
    };
    if !url.contains("://") {
        return Err(bad("missing scheme; write it as http://host:port/path"));
    }
    let uri: Uri = url
        .parse()
        .map_err(|e: http::uri::InvalidUri| bad(&e.to_string()))?;
    let https = match uri.scheme_str() {
        Some("http") => false,
        Some("https") => true,
        Some(other) => return Err(bad(&format!("scheme `{other}` is not http or https"))),
        None => return Err(bad("missing scheme; write it as http://host:port/path")),
    };
    let authority = uri.authority().ok_or_else(|| bad("missing host"))?.clone();
    if authority.as_str().contains('@') {
        return Err(bad(
            "credentials in the URL are not supported; use --header 'Authorization: …'",
        ));
    }
    let host = authority
        .host()
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_string();
    let port = authority.port_u16().unwrap_or(if https { 443 } else { 80 });
    let addr = (host.as_str(), port)
        .to_socket_addrs()
        .map_err(|e| PlanError::Resolve {
            url: url.into(),
            host: host.clone(),
            why: e.to_string(),
        })?
        .next()
        .ok_or_else(|| PlanError::Resolve {
            url: url.into(),
            host: host.clone(),
            why: "no address".into(),
        })?;
    let path = uri.path_and_query().map_or("/", |p| p.as_str());
    let path: Uri = path.parse().map_err(|_| bad("invalid path"))?;
    let host_header = HeaderValue::from_str(authority.as_str()).map_err(|_| bad("invalid host"))?;
    Ok(ParsedUrl {
        addr,
        path,
        host_header,
        host,
        https,
    })
}

/// An address this host does not have would fail every connect with
/// EADDRNOTAVAIL, which reads as port exhaustion: refused before the run.
pub fn check_source_ip(ip: IpAddr) -> Result<(), String> {
    // Linux answers on all of 127.0.0.0/8; macOS only on the loopback
    // addresses aliased on lo0.
    let how = if cfg!(target_os = "linux") {
        "list its addresses with `ip -brief address`"
    } else {
        "list its addresses with `ifconfig`; add a loopback one with `sudo ifconfig lo0 alias 127.0.0.2`"
    };
    std::net::UdpSocket::bind((ip, 0))
        .map(|_| ())
        .map_err(|e| format!("{ip} is not an address of this host ({e}); {how}"))
}

/// One `Name: value` header, as `--header` and a profile's
/// `target.headers` give it.
pub fn parse_header(h: &str) -> Result<(HeaderName, HeaderValue), PlanError> {
    let (k, v) = h
        .split_once(':')
        .ok_or_else(|| PlanError::Header(h.to_string()))?;
    let name = HeaderName::from_bytes(k.trim().as_bytes())
        .map_err(|_| PlanError::Header(h.to_string()))?;
    let value = HeaderValue::from_str(v.trim()).map_err(|_| PlanError::Header(h.to_string()))?;
    Ok((name, value))
}

impl LoadPlan {
    pub fn build(input: LoadInput) -> Result<LoadPlan, PlanError> {
        if !(input.rate.is_finite() && input.rate >= 0.0) {
            return Err(flag(
                "rate",
                format!(
                    "`{}` must be a number >= 0 (0 = as fast as --concurrency allows)",
                    input.rate
                ),
            ));
        }
        if input.rate > MAX_RATE {
            return Err(flag(
                "rate",
                format!(
                    "{} new connections per second is more than one load host can open (at most {MAX_RATE}); \
                     spread the load over several hosts",
                    input.rate
                ),
            ));
        }
        if input.timeout.is_zero() {
            return Err(flag("timeout", "must be greater than 0"));
        }
        if input.connect_timeout.is_zero() {
            return Err(flag("connect-timeout", "must be greater than 0"));
        }
        if input.duration.is_some_and(|d| d.is_zero()) {
            return Err(flag("duration", "must be greater than 0"));
        }
        if input.requests == Some(0) {
            return Err(flag("requests", "must be at least 1"));
        }
        if input.concurrency == Some(0) {
            return Err(flag("concurrency", "must be at least 1"));
        }
        if input.workers == Some(0) {
            return Err(flag("workers", "must be at least 1"));
        }
        let ParsedUrl {
            addr,
            path,
            host_header,
            host,
            https,
        } = parse_url(&input.url)?;
        let tls = if https {
            Some(TlsTarget::new(&input.url, &host, &input.tls)?)
        } else {
            None
        };
        if let Some(ip) = input
            .source_ips
            .iter()
            .find(|ip| ip.is_ipv4() != addr.is_ipv4())
        {
            return Err(flag(
                "source-ips",
                format!("{ip} is not of the same family as the target {}", addr.ip()),
            ));
        }
        for ip in &input.source_ips {
            check_source_ip(*ip).map_err(|why| flag("source-ips", why))?;
        }
        let method: Method = input.method.parse().map_err(|_| {
            flag(
                "method",
                format!("`{}` is not an HTTP method", input.method),
            )
        })?;

        let mut headers = HeaderMap::new();
        headers.insert(HOST, host_header);
        headers.insert(
            USER_AGENT,
            HeaderValue::from_static(concat!("baton/", env!("CARGO_PKG_VERSION"))),
        );
        if !input.keepalive {
            headers.insert(CONNECTION, HeaderValue::from_static("close"));
        }
        for h in &input.headers {
            let (k, v) = parse_header(h)?;
            if k == CONNECTION {
                return Err(flag(
                    "header",
                    "Connection is baton's to set: use --keepalive to compare with a pool",
                ));
            }
            headers.append(k, v);
        }

        let pacing = if input.rate > 0.0 {
            Pacing::Open { rate: input.rate }
        } else {
            Pacing::Closed
        };
        let (concurrency, concurrency_capped_from) = match input.concurrency {
            Some(c) => (c, None),
            None => default_concurrency(&pacing, input.timeout, input.open_files),
        };
        let duration = match (input.requests, input.duration) {
            (None, None) => Some(DEFAULT_DURATION),
            (_, d) => d,
        };
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let workers = input.workers.unwrap_or(cores).min(concurrency).max(1);

        Ok(LoadPlan {
            url: input.url,
            template: RequestTemplate {
                addr,
                method,
                path,
                headers,
                connect_timeout: input.connect_timeout.min(input.timeout),
                timeout: input.timeout,
                expect_status: input
                    .expect_status
                    .unwrap_or_else(|| StatusSet(vec![(200, 299)])),
                backend_from: input.backend_from,
                version_from: input.version_from,
                keepalive: input.keepalive,
                tls,
            },
            pacing,
            concurrency,
            max_requests: input.requests,
            duration,
            source_ips: input.source_ips,
            out_dir: input.out_dir,
            workers,
            concurrency_capped_from,
            status_note: StatusNote::default(),
            duration_is_bound: false,
            share: None,
        })
    }

    pub fn rate(&self) -> Option<f64> {
        match self.pacing {
            Pacing::Open { rate } => Some(rate),
            Pacing::Closed => None,
        }
    }

    /// The `--source-ips` address for the `turn`-th connection a caller
    /// opens (round robin), `None` when none were given; `turn` advances.
    pub fn next_source(&self, turn: &mut usize) -> Option<IpAddr> {
        if self.source_ips.is_empty() {
            return None;
        }
        let ip = self.source_ips[*turn % self.source_ips.len()];
        *turn = turn.wrapping_add(1);
        Some(ip)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input(url: &str) -> LoadInput {
        LoadInput {
            url: url.into(),
            rate: 100.0,
            timeout: Duration::from_secs(2),
            connect_timeout: Duration::from_secs(1),
            method: "GET".into(),
            out_dir: "out".into(),
            ..Default::default()
        }
    }

    #[test]
    fn a_plain_url_builds_a_plan_with_close_and_host_headers() {
        let p = LoadPlan::build(input("http://127.0.0.1:8080/a?b=1")).unwrap();
        assert_eq!(p.template.addr, "127.0.0.1:8080".parse().unwrap());
        assert_eq!(p.template.path, "/a?b=1");
        assert_eq!(p.template.headers[HOST], "127.0.0.1:8080");
        assert_eq!(p.template.headers[CONNECTION], "close");
        assert_eq!(p.duration, Some(DEFAULT_DURATION));
        assert_eq!(p.pacing, Pacing::Open { rate: 100.0 });
        // 100 rps × 2 s timeout = 200 pending at most, plus headroom.
        assert_eq!(p.concurrency, 216);
    }

    #[test]
    fn the_default_concurrency_stays_below_the_open_files_limit() {
        let open = Pacing::Open { rate: 10_000.0 };
        let t = Duration::from_secs(2);
        // 10,000 rps × 2 s = 20,000 pending at most, plus headroom...
        assert_eq!(default_concurrency(&open, t, None), (20_016, None));
        assert_eq!(
            default_concurrency(&open, t, Some(1_000_000)),
            (20_016, None)
        );
        // ...but not past the descriptors this process may open.
        assert_eq!(
            default_concurrency(&open, t, Some(20_000)),
            (20_000 - FD_RESERVE as usize, Some(20_016))
        );
        // A tiny limit still leaves a usable floor.
        assert_eq!(default_concurrency(&open, t, Some(100)).0, 16);
        assert_eq!(
            default_concurrency(&Pacing::Closed, t, Some(20_000)),
            (32, None)
        );

        // An explicit --concurrency is the user's call: only warned about.
        let mut i = input("http://127.0.0.1/");
        i.rate = 10_000.0;
        i.open_files = Some(20_000);
        assert_eq!(LoadPlan::build(i.clone()).unwrap().concurrency, 19_744);
        i.concurrency = Some(30_000);
        let p = LoadPlan::build(i).unwrap();
        assert_eq!((p.concurrency, p.concurrency_capped_from), (30_000, None));
    }

    #[test]
    fn keepalive_drops_the_close_header() {
        let mut i = input("http://127.0.0.1/");
        i.keepalive = true;
        let p = LoadPlan::build(i).unwrap();
        assert!(p.template.headers.get(CONNECTION).is_none());
        assert_eq!(p.template.addr.port(), 80);
    }

    #[test]
    fn https_urls_default_to_port_443_and_carry_a_tls_setup() {
        let mut i = input("https://127.0.0.1/x");
        i.tls.insecure = true;
        let p = LoadPlan::build(i).unwrap();
        assert_eq!(p.template.addr.port(), 443);
        assert!(p.template.tls.is_some());
        let p = LoadPlan::build(input("http://127.0.0.1/x")).unwrap();
        assert!(p.template.tls.is_none());
        let mut i = input("https://127.0.0.1/");
        i.tls.ca_file = Some("/nonexistent/ca.pem".into());
        let e = LoadPlan::build(i).unwrap_err().to_string();
        assert!(e.starts_with("--cacert `/nonexistent/ca.pem`"), "{e}");
    }

    #[test]
    fn bad_urls_say_what_is_wrong() {
        for (url, needle) in [
            ("127.0.0.1:8080", "scheme"),
            ("ftp://127.0.0.1/", "ftp"),
            ("http://", "URL"),
            ("not a url", "URL"),
        ] {
            let e = LoadPlan::build(input(url)).unwrap_err().to_string();
            assert!(e.contains(needle), "{url}: {e}");
        }
    }

    #[test]
    fn out_of_range_values_name_their_flag() {
        let mut i = input("http://127.0.0.1/");
        i.rate = -1.0;
        assert!(
            LoadPlan::build(i)
                .unwrap_err()
                .to_string()
                .starts_with("--rate")
        );
        let mut i = input("http://127.0.0.1/");
        i.concurrency = Some(0);
        assert!(
            LoadPlan::build(i)
                .unwrap_err()
                .to_string()
                .starts_with("--concurrency")
        );
        let mut i = input("http://127.0.0.1/");
        i.headers = vec!["no-colon".into()];
        assert!(
            LoadPlan::build(i)
                .unwrap_err()
                .to_string()
                .starts_with("--header")
        );
        let mut i = input("http://127.0.0.1/");
        i.headers = vec!["Connection: keep-alive".into()];
        assert!(
            LoadPlan::build(i)
                .unwrap_err()
                .to_string()
                .contains("--keepalive")
        );
        let mut i = input("http://127.0.0.1/");
        i.source_ips = vec!["::1".parse().unwrap()];
        assert!(
            LoadPlan::build(i)
                .unwrap_err()
                .to_string()
                .starts_with("--source-ips")
        );
    }

    #[test]
    fn rate_zero_is_the_closed_model() {
        let mut i = input("http://127.0.0.1/");
        i.rate = 0.0;
        i.requests = Some(10);
        let p = LoadPlan::build(i).unwrap();
        assert_eq!(p.pacing, Pacing::Closed);
        assert_eq!(p.duration, None);
        assert_eq!(p.concurrency, 32);
    }
}
