//! A socket wrapper that watches the exchange from below HTTP: when the
//! request was fully written, when the first response byte arrived, and
//! the first I/O error with its errno and direction.
//!
//! HTTP libraries report "connection reset" or "incomplete message" but
//! not *when*; the phase of a failure (write / before first byte / body)
//! and a true time-to-first-byte come from here.

use std::cell::Cell;
use std::io;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};
use std::time::Instant;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// What the socket saw, readable after the exchange.
#[derive(Clone, Copy, Debug, Default)]
pub struct Seen {
    pub bytes_written: u64,
    pub first_byte_at: Option<Instant>,
    pub bytes_read: u64,
    /// A read returned 0 (the peer closed its side).
    pub eof: bool,
    /// The first I/O error: errno, kind, and whether it was on a write.
    pub error: Option<(Option<i32>, io::ErrorKind, bool)>,
}

/// The wrapper. `seen` is shared with the request that owns the
/// connection, because the HTTP client takes the socket by value. A worker
/// is single-threaded, so a `Cell` is enough.
pub struct Probe<S> {
    inner: S,
    seen: Rc<Cell<Seen>>,
}

impl<S> Probe<S> {
    pub fn new(inner: S, seen: Rc<Cell<Seen>>) -> Self {
        Probe { inner, seen }
    }

    fn update(&self, f: impl FnOnce(&mut Seen)) {
        let mut s = self.seen.get();
        f(&mut s);
        self.seen.set(s);
    }

    fn note_error(&self, e: &io::Error, on_write: bool) {
        self.update(|s| {
            if s.error.is_none() {
                s.error = Some((e.raw_os_error(), e.kind(), on_write));
            }
        });
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Probe<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let res = Pin::new(&mut self.inner).poll_read(cx, buf);
        match &res {
            Poll::Ready(Ok(())) => {
                let n = (buf.filled().len() - before) as u64;
                self.update(|s| {
                    if n == 0 {
                        s.eof = true;
                    } else {
                        if s.first_byte_at.is_none() {
                            s.first_byte_at = Some(Instant::now());
                        }
                        s.bytes_read += n;
                    }
                });
            }
            Poll::Ready(Err(e)) => self.note_error(e, false),
            Poll::Pending => {}
        }
        res
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Probe<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let res = Pin::new(&mut self.inner).poll_write(cx, buf);
        match &res {
            Poll::Ready(Ok(n)) => {
                let n = *n as u64;
                self.update(|s| s.bytes_written += n)
            }
            Poll::Ready(Err(e)) => self.note_error(e, true),
            Poll::Pending => {}
        }
        res
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let res = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        match &res {
            Poll::Ready(Ok(n)) => {
                let n = *n as u64;
                self.update(|s| s.bytes_written += n)
            }
            Poll::Ready(Err(e)) => self.note_error(e, true),
            Poll::Pending => {}
        }
        res
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let res = Pin::new(&mut self.inner).poll_flush(cx);
        if let Poll::Ready(Err(e)) = &res {
            self.note_error(e, true);
        }
        res
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        // An error on shutdown after a complete exchange changes nothing:
        // the response is already in. Not recorded.
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}
