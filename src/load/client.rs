//! One HTTP/1.1 request on a connection baton set up itself, measured and
//! classified.
//!
//! Without keep-alive every request gets a fresh TCP socket (TCP_NODELAY,
//! optional source address with IP_BIND_ADDRESS_NO_PORT so many source
//! addresses multiply the ephemeral-port space), `Connection: close`
//! so the server closes first and TIME_WAIT stays on its side, and hyper's
//! HTTP/1 client connection driven inline in the request's own task (no
//! spawn per request). With keep-alive, connections go back to a
//! per-worker pool; that mode exists only to compare against.
//!
//! Not for: pacing (see `engine`), writing records (see `sink`).

use super::extract::{Extractor, Interner};
use super::outcome::{self, Outcome, Phase};
use super::probe::{Probe, Seen};
use bytes::{Bytes, BytesMut};
use http::{HeaderMap, Method, Request, Uri};
use http_body_util::{BodyExt, Empty};
use hyper::client::conn::http1;
use hyper_util::rt::TokioIo;
use std::cell::{Cell, RefCell};
use std::net::{IpAddr, SocketAddr};
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::net::TcpStream;

/// At most this much of a body is kept for `body:` extractors; the rest is
/// read and dropped.
const BODY_KEEP: usize = 64 * 1024;

/// What every request of a run shares, built once.
#[derive(Debug)]
pub struct RequestTemplate {
    pub addr: SocketAddr,
    pub method: Method,
    /// Origin-form (`/path?query`), as HTTP/1.1 sends it.
    pub path: Uri,
    /// Host, user agent, `Connection: close` (unless keep-alive) and the
    /// user's own headers.
    pub headers: HeaderMap,
    pub connect_timeout: Duration,
    /// Whole request, connect included.
    pub timeout: Duration,
    pub expect_status: StatusSet,
    pub backend_from: Option<Extractor>,
    pub version_from: Option<Extractor>,
    pub keepalive: bool,
    /// `https://`: the TLS setup every connection shares.
    pub tls: Option<super::tls::TlsTarget>,
}

/// The statuses that count as success.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StatusSet(pub Vec<(u16, u16)>);

impl StatusSet {
    pub fn contains(&self, status: u16) -> bool {
        self.0.iter().any(|(lo, hi)| (*lo..=*hi).contains(&status))
    }
}

impl std::str::FromStr for StatusSet {
    type Err = String;
    /// `200`, `200,204`, `200-299`, or a mix.
    fn from_str(s: &str) -> Result<Self, String> {
        let mut ranges = vec![];
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (lo, hi) = match part.split_once('-') {
                Some((a, b)) => (a.trim(), b.trim()),
                None => (part, part),
            };
            let parse = |x: &str| {
                x.parse::<u16>()
                    .ok()
                    .filter(|v| (100..=599).contains(v))
                    .ok_or_else(|| format!("`{x}` is not an HTTP status (100-599)"))
            };
            let (lo, hi) = (parse(lo)?, parse(hi)?);
            if lo > hi {
                return Err(format!("`{part}`: range runs backwards"));
            }
            ranges.push((lo, hi));
        }
        if ranges.is_empty() {
            return Err("no status given".into());
        }
        Ok(StatusSet(ranges))
    }
}

/// How one request went. Times are from `start`.
#[derive(Clone, Debug)]
pub struct Measured {
    pub start: Instant,
    pub connect: Option<Duration>,
    pub ttfb: Option<Duration>,
    pub total: Duration,
    pub status: Option<u16>,
    pub outcome: Outcome,
    pub phase: Phase,
    /// The errno behind a failure, when there was one (for the summary).
    pub errno: Option<i32>,
    pub backend: Option<Arc<str>>,
    pub version: Option<Arc<str>>,
    /// Whether this request opened a new connection (always, without
    /// keep-alive).
    pub new_connection: bool,
    /// The connection's local port, assigned when its connect(2) was
    /// issued (refused connections have one too): what joins a record
    /// with a packet capture, conntrack, or a proxy's log.
    pub local_port: Option<u16>,
    /// The address connect(2) was issued to.
    pub remote_addr: Option<SocketAddr>,
}

/// An open HTTP/1 connection and what its socket has seen.
struct Conn {
    sender: http1::SendRequest<Empty<Bytes>>,
    seen: Rc<Cell<Seen>>,
    local_port: Option<u16>,
    remote_addr: Option<SocketAddr>,
}

/// Per-worker state the client needs: idle keep-alive connections and the
/// string interner. Single-threaded (one per worker runtime).
#[derive(Default)]
pub struct ClientState {
    idle: RefCell<Vec<Conn>>,
    interner: RefCell<Interner>,
}

enum Failure {
    Connect(Outcome, Option<i32>),
}

/// A connection whose `connect(2)` has been issued, or the error that
/// stopped it, and when the attempt began. Made synchronously (by the
/// pacer thread in the open model, so the SYN leaves at the due instant)
/// and finished asynchronously on a worker's runtime.
#[derive(Debug)]
pub struct Opening {
    pub start: Instant,
    socket: std::io::Result<std::net::TcpStream>,
    /// The port connect(2) took, if it got that far.
    local_port: Option<u16>,
    /// Where connect(2) went, once a socket was made.
    remote_addr: Option<SocketAddr>,
}

/// Create a non-blocking socket (TCP_NODELAY, the source address if any)
/// and issue its connect; never blocks. Errors here (EMFILE,
/// EADDRNOTAVAIL, an immediate ECONNREFUSED) are kept for the request's
/// record, not returned.
pub fn open(t: &RequestTemplate, source: Option<IpAddr>) -> Opening {
    let start = Instant::now();
    let socket = open_socket(t.addr, source);
    let local_port = socket
        .as_ref()
        .ok()
        .and_then(|s| s.local_addr().ok())
        .map(|a| a.port())
        .filter(|p| *p != 0);
    Opening {
        start,
        remote_addr: socket.is_ok().then_some(t.addr),
        socket,
        local_port,
    }
}

fn open_socket(addr: SocketAddr, source: Option<IpAddr>) -> std::io::Result<std::net::TcpStream> {
    use socket2::{Domain, Protocol, Socket, Type};
    // Linux sets both flags in socket(2) itself, saving two syscalls per
    // request.
    #[cfg(target_os = "linux")]
    let socket = Socket::new(
        Domain::for_address(addr),
        Type::STREAM.nonblocking().cloexec(),
        Some(Protocol::TCP),
    )?;
    // Elsewhere (macOS) socket(2) takes no flags: socket2 sets
    // close-on-exec (and, on Apple, SO_NOSIGPIPE) itself; O_NONBLOCK is
    // ours to set.
    #[cfg(not(target_os = "linux"))]
    let socket = {
        let s = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
        s.set_nonblocking(true)?;
        s
    };
    socket.set_tcp_nodelay(true)?;
    if let Some(ip) = source {
        // Let connect(2) pick the port per 4-tuple instead of bind(2)
        // reserving one per source address: the whole point of several
        // source addresses is more ports. Linux only; elsewhere bind(2)
        // picks the port, so each source address still adds its own
        // ephemeral range, just without the per-destination reuse.
        #[cfg(target_os = "linux")]
        let _ = nix::sys::socket::setsockopt(
            &socket,
            nix::sys::socket::sockopt::IpBindAddressNoPort,
            &true,
        );
        socket.bind(&SocketAddr::new(ip, 0).into())?;
    }
    match socket.connect(&addr.into()) {
        Ok(()) => {}
        Err(e) if e.raw_os_error() == Some(nix::errno::Errno::EINPROGRESS as i32) => {}
        Err(e) => return Err(e),
    }
    Ok(socket.into())
}

/// A connection: plain TCP, or TLS over it.
type Stream = tokio_util::either::Either<TcpStream, tokio_rustls::client::TlsStream<TcpStream>>;

/// Wait for an issued connect to complete on this runtime, then, for
/// `https://`, the TLS handshake; classify any failure. `--connect-timeout`
/// covers both: the connection is usable only after the handshake.
async fn connect(
    opening: Opening,
    t: &RequestTemplate,
    deadline: Instant,
) -> Result<Stream, Failure> {
    let fail =
        |e: std::io::Error| Failure::Connect(outcome::classify_connect_error(&e), e.raw_os_error());
    let stream = TcpStream::from_std(opening.socket.map_err(fail)?).map_err(fail)?;
    let connect_deadline = deadline.min(opening.start + t.connect_timeout);
    // Writable means the handshake ended; SO_ERROR says how (as tokio's
    // own `TcpSocket::connect` does).
    match tokio::time::timeout_at(connect_deadline.into(), stream.writable()).await {
        Err(_) => return Err(Failure::Connect(Outcome::ConnectTimeout, None)),
        Ok(Err(e)) => return Err(fail(e)),
        Ok(Ok(())) => {}
    }
    match stream.take_error() {
        Ok(None) => {}
        Ok(Some(e)) | Err(e) => return Err(fail(e)),
    }
    let Some(tls) = &t.tls else {
        return Ok(tokio_util::either::Either::Left(stream));
    };
    match tokio::time::timeout_at(connect_deadline.into(), tls.handshake(stream)).await {
        Err(_) => Err(Failure::Connect(Outcome::ConnectTimeout, None)),
        Ok(Ok(s)) => Ok(tokio_util::either::Either::Right(s)),
        // A refused handshake (an untrusted certificate, an alert, plain
        // HTTP on the port) is `tls`; a reset or close under it is what
        // the peer did, as on any established connection.
        Ok(Err(e)) => Err(Failure::Connect(
            outcome::classify_io_error(e.raw_os_error(), e.kind()),
            e.raw_os_error(),
        )),
    }
}

fn build_request(t: &RequestTemplate) -> Request<Empty<Bytes>> {
    let mut req = Request::new(Empty::new());
    *req.method_mut() = t.method.clone();
    *req.uri_mut() = t.path.clone();
    *req.headers_mut() = t.headers.clone();
    req
}

/// Send one request and read the whole response; `Err` carries hyper's
/// error for classification with what the socket saw.
async fn exchange(
    sender: &mut http1::SendRequest<Empty<Bytes>>,
    t: &RequestTemplate,
) -> Result<(http::response::Parts, Bytes), hyper::Error> {
    let resp = sender.send_request(build_request(t)).await?;
    let (parts, mut body) = resp.into_parts();
    let keep = t.backend_from.as_ref().is_some_and(Extractor::needs_body)
        || t.version_from.as_ref().is_some_and(Extractor::needs_body);
    let mut kept = BytesMut::new();
    while let Some(frame) = body.frame().await {
        if let Ok(data) = frame?.into_data()
            && keep
            && kept.len() < BODY_KEEP
        {
            let room = BODY_KEEP - kept.len();
            kept.extend_from_slice(&data[..data.len().min(room)]);
        }
    }
    Ok((parts, kept.freeze()))
}

/// Turn a failed exchange into an outcome and phase, trusting what the
/// socket saw over hyper's summary of it.
fn classify_failure(
    seen: &Seen,
    err: Option<&hyper::Error>,
    timed_out: bool,
) -> (Outcome, Phase, Option<i32>) {
    let written = seen.bytes_written > 0;
    let phase = outcome::phase_of(written, seen.first_byte_at.is_some());
    if let Some((errno, kind, on_write)) = seen.error {
        let o = outcome::classify_io_error(errno, kind);
        let phase = if on_write && seen.first_byte_at.is_none() {
            Phase::Write
        } else {
            phase
        };
        return (o, phase, errno);
    }
    if timed_out {
        return (Outcome::Timeout, phase, None);
    }
    if seen.eof || err.is_some_and(|e| e.is_incomplete_message()) {
        return (Outcome::Eof, phase, None);
    }
    (Outcome::Other, phase, None)
}

/// Make one request as the template says; never panics, never returns an
/// error: every way a request can end is an [`Outcome`]. `opened` is a
/// connect already issued (by the pacer); without one the request reuses
/// an idle keep-alive connection or opens a socket itself, now.
pub async fn request(
    t: &RequestTemplate,
    state: &ClientState,
    source: Option<IpAddr>,
    opened: Option<Opening>,
) -> Measured {
    let start = opened.as_ref().map_or_else(Instant::now, |o| o.start);
    let deadline = start + t.timeout;
    let mut m = Measured {
        start,
        connect: None,
        ttfb: None,
        total: Duration::ZERO,
        status: None,
        outcome: Outcome::Other,
        phase: Phase::None,
        errno: None,
        backend: None,
        version: None,
        new_connection: true,
        local_port: None,
        remote_addr: None,
    };

    // A pooled connection, if keep-alive and one is idle and still usable.
    let pooled = if t.keepalive && opened.is_none() {
        let mut idle = state.idle.borrow_mut();
        let mut found = None;
        while let Some(c) = idle.pop() {
            if c.sender.is_ready() {
                found = Some(c);
                break;
            }
        }
        found
    } else {
        None
    };

    let (mut conn, driver) = match pooled {
        Some(c) => {
            c.seen.set(Seen::default());
            m.new_connection = false;
            m.connect = Some(Duration::ZERO);
            m.local_port = c.local_port;
            m.remote_addr = c.remote_addr;
            (c, None)
        }
        None => {
            let opening = opened.unwrap_or_else(|| open(t, source));
            m.local_port = opening.local_port;
            m.remote_addr = opening.remote_addr;
            let stream = match connect(opening, t, deadline).await {
                Ok(s) => s,
                Err(Failure::Connect(o, errno)) => {
                    m.total = start.elapsed();
                    m.outcome = o;
                    m.phase = Phase::Connect;
                    m.errno = errno;
                    return m;
                }
            };
            m.connect = Some(start.elapsed());
            let seen = Rc::new(Cell::new(Seen::default()));
            let io = TokioIo::new(Probe::new(stream, seen.clone()));
            // The handshake does no I/O for HTTP/1; it only builds the pair.
            let (sender, driver) = match http1::handshake(io).await {
                Ok(pair) => pair,
                Err(_) => {
                    m.total = start.elapsed();
                    m.outcome = Outcome::Other;
                    m.phase = Phase::Write;
                    return m;
                }
            };
            (
                Conn {
                    sender,
                    seen,
                    local_port: m.local_port,
                    remote_addr: m.remote_addr,
                },
                Some(driver),
            )
        }
    };

    let result = match driver {
        // Fresh connection: drive it inline next to the exchange. With
        // `Connection: close` it ends right after the response.
        Some(driver) if !t.keepalive => {
            let both = futures::future::join(exchange(&mut conn.sender, t), driver);
            tokio::time::timeout_at(deadline.into(), both)
                .await
                .map(|(r, _)| r)
        }
        // Fresh keep-alive connection: it outlives this request.
        Some(driver) => {
            tokio::task::spawn_local(async move {
                let _ = driver.await;
            });
            tokio::time::timeout_at(deadline.into(), exchange(&mut conn.sender, t)).await
        }
        None => tokio::time::timeout_at(deadline.into(), exchange(&mut conn.sender, t)).await,
    };
    m.total = start.elapsed();
    let seen = conn.seen.get();
    m.ttfb = seen
        .first_byte_at
        .map(|at| at.saturating_duration_since(start));

    match result {
        Ok(Ok((parts, body))) => {
            let status = parts.status.as_u16();
            m.status = Some(status);
            m.outcome = if t.expect_status.contains(status) {
                Outcome::Ok
            } else {
                Outcome::HttpStatus
            };
            let mut interner = state.interner.borrow_mut();
            let mut pick = |e: &Option<Extractor>| {
                e.as_ref()
                    .and_then(|e| e.find(&parts.headers, &body))
                    .map(|v| interner.intern(v))
            };
            m.backend = pick(&t.backend_from);
            m.version = pick(&t.version_from);
            drop(interner);
            if t.keepalive {
                state.idle.borrow_mut().push(conn);
            }
        }
        Ok(Err(e)) => {
            let (o, p, errno) = classify_failure(&seen, Some(&e), false);
            (m.outcome, m.phase, m.errno) = (o, p, errno);
        }
        Err(_elapsed) => {
            let (o, p, errno) = classify_failure(&seen, None, true);
            (m.outcome, m.phase, m.errno) = (o, p, errno);
        }
    }
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_sets_parse_lists_and_ranges() {
        let s: StatusSet = "200, 204,300-399".parse().unwrap();
        assert!(s.contains(200) && s.contains(204) && s.contains(302));
        assert!(!s.contains(201) && !s.contains(503));
        assert!("".parse::<StatusSet>().is_err());
        assert!("99".parse::<StatusSet>().is_err());
        assert!("500-200".parse::<StatusSet>().is_err());
        assert!("abc".parse::<StatusSet>().is_err());
    }

    #[test]
    fn the_socket_error_decides_the_outcome_and_its_direction_the_phase() {
        use nix::errno::Errno;
        let mut seen = Seen {
            bytes_written: 0,
            ..Default::default()
        };
        seen.error = Some((
            Some(Errno::EPIPE as i32),
            std::io::ErrorKind::BrokenPipe,
            true,
        ));
        assert_eq!(classify_failure(&seen, None, false).0, Outcome::Reset);
        assert_eq!(classify_failure(&seen, None, false).1, Phase::Write);

        let mut seen = Seen {
            bytes_written: 80,
            ..Default::default()
        };
        seen.error = Some((
            Some(Errno::ECONNRESET as i32),
            std::io::ErrorKind::ConnectionReset,
            false,
        ));
        assert_eq!(classify_failure(&seen, None, false).1, Phase::FirstByte);
        seen.first_byte_at = Some(Instant::now());
        assert_eq!(classify_failure(&seen, None, false).1, Phase::Body);
    }

    #[test]
    fn a_clean_close_is_eof_and_silence_is_a_timeout() {
        let seen = Seen {
            bytes_written: 80,
            eof: true,
            ..Default::default()
        };
        assert_eq!(
            classify_failure(&seen, None, false),
            (Outcome::Eof, Phase::FirstByte, None)
        );
        let seen = Seen {
            bytes_written: 80,
            ..Default::default()
        };
        assert_eq!(
            classify_failure(&seen, None, true),
            (Outcome::Timeout, Phase::FirstByte, None)
        );
    }
}
