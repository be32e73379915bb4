//! The outcome taxonomy of one request, and the pure rules that turn an
//! I/O error and the phase it happened in into an outcome.
//!
//! This is where "never blame the target for the load host's own limits"
//! is decided: an errno that means the *client* ran out of something
//! (ports, file descriptors, buffers) becomes [`Outcome::ClientResource`],
//! whatever phase it struck in. Nothing here does I/O.

use serde::Serialize;
use std::fmt;
use std::io;

/// What became of one request. The names are the ones in `requests.csv`
/// and `summary.json` (DESIGN.md, "Request outcomes").
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Ok,
    /// A complete response whose status is not one of the expected ones.
    HttpStatus,
    ConnectRefused,
    ConnectTimeout,
    /// The peer reset the connection; the phase says when.
    Reset,
    /// The peer closed the connection before a complete response.
    Eof,
    /// No first byte, or no complete response, within the timeout.
    Timeout,
    Tls,
    Dns,
    /// The load host's own limit (EADDRNOTAVAIL, EMFILE, ENFILE, ENOBUFS,
    /// ENOMEM): the harness failed, not the target. Makes a run invalid.
    ClientResource,
    Other,
}

impl Outcome {
    pub const ALL: [Outcome; 11] = [
        Outcome::Ok,
        Outcome::HttpStatus,
        Outcome::ConnectRefused,
        Outcome::ConnectTimeout,
        Outcome::Reset,
        Outcome::Eof,
        Outcome::Timeout,
        Outcome::Tls,
        Outcome::Dns,
        Outcome::ClientResource,
        Outcome::Other,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::HttpStatus => "http_status",
            Outcome::ConnectRefused => "connect_refused",
            Outcome::ConnectTimeout => "connect_timeout",
            Outcome::Reset => "reset",
            Outcome::Eof => "eof",
            Outcome::Timeout => "timeout",
            Outcome::Tls => "tls",
            Outcome::Dns => "dns",
            Outcome::ClientResource => "client_resource",
            Outcome::Other => "other",
        }
    }

    pub fn parse(s: &str) -> Option<Outcome> {
        Outcome::ALL.into_iter().find(|o| o.as_str() == s)
    }

    /// Index into per-outcome counter arrays.
    pub fn index(self) -> usize {
        self as usize
    }

    /// A failure the target is answerable for. `ok` is not a failure, and
    /// `client_resource` is the harness's, never the target's.
    pub fn is_target_failure(self) -> bool {
        !matches!(self, Outcome::Ok | Outcome::ClientResource)
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where in the exchange a request ended. Empty for a clean `ok`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    /// Done: nothing went wrong (or the response was complete).
    None,
    Connect,
    /// While sending the request.
    Write,
    /// Request sent, waiting for the first byte of the response.
    FirstByte,
    /// At least one response byte arrived; the rest did not.
    Body,
}

impl Phase {
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::None => "",
            Phase::Connect => "connect",
            Phase::Write => "write",
            Phase::FirstByte => "first_byte",
            Phase::Body => "body",
        }
    }

    pub fn parse(s: &str) -> Option<Phase> {
        [
            Phase::None,
            Phase::Connect,
            Phase::Write,
            Phase::FirstByte,
            Phase::Body,
        ]
        .into_iter()
        .find(|p| p.as_str() == s)
    }
}

impl fmt::Display for Phase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Errnos that mean the load host itself ran out of something.
/// EADDRNOTAVAIL: no free local port (ephemeral range exhausted, often by
/// TIME_WAIT). EMFILE/ENFILE: the process/system file limit. ENOBUFS/ENOMEM:
/// kernel buffers. EAGAIN from connect(2) on a TCP socket also means "no
/// local port" on Linux.
pub fn is_client_resource_errno(errno: i32) -> bool {
    use nix::errno::Errno;
    [
        Errno::EADDRNOTAVAIL,
        Errno::EMFILE,
        Errno::ENFILE,
        Errno::ENOBUFS,
        Errno::ENOMEM,
    ]
    .iter()
    .any(|e| *e as i32 == errno)
}

/// Classify an error seen while connecting.
pub fn classify_connect_error(err: &io::Error) -> Outcome {
    use nix::errno::Errno;
    match err.raw_os_error() {
        Some(e) if is_client_resource_errno(e) => Outcome::ClientResource,
        // EAGAIN on a non-blocking TCP connect is Linux's "no ephemeral port".
        Some(e) if e == Errno::EAGAIN as i32 => Outcome::ClientResource,
        Some(e) if e == Errno::ECONNREFUSED as i32 => Outcome::ConnectRefused,
        // A RST in answer to our SYN: the same thing as a refusal.
        Some(e) if e == Errno::ECONNRESET as i32 => Outcome::ConnectRefused,
        Some(e) if e == Errno::ETIMEDOUT as i32 => Outcome::ConnectTimeout,
        _ => match err.kind() {
            io::ErrorKind::ConnectionRefused => Outcome::ConnectRefused,
            io::ErrorKind::TimedOut => Outcome::ConnectTimeout,
            _ => Outcome::Other,
        },
    }
}

/// Classify an I/O error seen on an established connection, given the
/// phase it struck in. A socket never reports InvalidData; the TLS layer
/// above it reports every TLS failure (an untrusted certificate, an
/// alert, a record it cannot accept) that way, so it means `tls`.
pub fn classify_io_error(errno: Option<i32>, kind: io::ErrorKind) -> Outcome {
    use nix::errno::Errno;
    match errno {
        Some(e) if is_client_resource_errno(e) => Outcome::ClientResource,
        Some(e) if e == Errno::ECONNRESET as i32 || e == Errno::EPIPE as i32 => Outcome::Reset,
        Some(e) if e == Errno::ETIMEDOUT as i32 => Outcome::Timeout,
        _ => match kind {
            io::ErrorKind::ConnectionReset
            | io::ErrorKind::BrokenPipe
            | io::ErrorKind::ConnectionAborted => Outcome::Reset,
            io::ErrorKind::UnexpectedEof => Outcome::Eof,
            io::ErrorKind::TimedOut => Outcome::Timeout,
            io::ErrorKind::InvalidData => Outcome::Tls,
            _ => Outcome::Other,
        },
    }
}

/// The phase a request was in, from what its connection saw.
pub fn phase_of(request_written: bool, first_byte_seen: bool) -> Phase {
    if first_byte_seen {
        Phase::Body
    } else if request_written {
        Phase::FirstByte
    } else {
        Phase::Write
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nix::errno::Errno;

    fn os(e: Errno) -> io::Error {
        io::Error::from_raw_os_error(e as i32)
    }

    #[test]
    fn port_and_fd_exhaustion_are_the_harness_not_the_target() {
        for e in [
            Errno::EADDRNOTAVAIL,
            Errno::EMFILE,
            Errno::ENFILE,
            Errno::ENOBUFS,
            Errno::EAGAIN,
        ] {
            let o = classify_connect_error(&os(e));
            assert_eq!(o, Outcome::ClientResource, "{e}");
            assert!(!o.is_target_failure());
        }
        assert_eq!(
            classify_io_error(Some(Errno::ENOBUFS as i32), io::ErrorKind::Other),
            Outcome::ClientResource
        );
    }

    #[test]
    fn refused_and_reset_syn_are_connect_refused() {
        assert_eq!(
            classify_connect_error(&os(Errno::ECONNREFUSED)),
            Outcome::ConnectRefused
        );
        assert_eq!(
            classify_connect_error(&os(Errno::ECONNRESET)),
            Outcome::ConnectRefused
        );
        assert_eq!(
            classify_connect_error(&os(Errno::ETIMEDOUT)),
            Outcome::ConnectTimeout
        );
        assert_eq!(
            classify_connect_error(&os(Errno::EHOSTUNREACH)),
            Outcome::Other
        );
    }

    #[test]
    fn reset_and_broken_pipe_on_a_live_connection_are_resets() {
        assert_eq!(
            classify_io_error(Some(Errno::ECONNRESET as i32), io::ErrorKind::Other),
            Outcome::Reset
        );
        assert_eq!(
            classify_io_error(Some(Errno::EPIPE as i32), io::ErrorKind::Other),
            Outcome::Reset
        );
        assert_eq!(
            classify_io_error(None, io::ErrorKind::UnexpectedEof),
            Outcome::Eof
        );
    }

    #[test]
    fn what_the_tls_layer_refuses_is_a_tls_failure() {
        assert_eq!(
            classify_io_error(None, io::ErrorKind::InvalidData),
            Outcome::Tls
        );
    }

    #[test]
    fn phase_follows_what_the_connection_saw() {
        assert_eq!(phase_of(false, false), Phase::Write);
        assert_eq!(phase_of(true, false), Phase::FirstByte);
        assert_eq!(phase_of(true, true), Phase::Body);
    }

    #[test]
    fn names_round_trip() {
        for o in Outcome::ALL {
            assert_eq!(Outcome::parse(o.as_str()), Some(o));
            assert_eq!(Outcome::ALL[o.index()], o);
        }
        for p in [
            Phase::None,
            Phase::Connect,
            Phase::Write,
            Phase::FirstByte,
            Phase::Body,
        ] {
            assert_eq!(Phase::parse(p.as_str()), Some(p));
        }
    }
}
