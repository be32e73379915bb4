//! A sleep with microsecond precision for the pacer.
//!
//! tokio's timer wheel has a 1 ms resolution: at 10,000 req/s a request
//! would be up to a millisecond late just from the wheel. A Linux
//! `timerfd` registered with the runtime's reactor wakes the worker when
//! the next arrival is due, to within tens of microseconds. Where a
//! timerfd cannot be had, the tokio sleep is used and the lateness column
//! shows the cost honestly.

use nix::sys::time::TimeSpec;
use nix::sys::timerfd::{ClockId, Expiration, TimerFd, TimerFlags, TimerSetTimeFlags};
use std::io;
use std::os::fd::{AsFd, AsRawFd, RawFd};
use std::time::Instant;
use tokio::io::unix::AsyncFd;

struct Fd(TimerFd);

impl AsRawFd for Fd {
    fn as_raw_fd(&self) -> RawFd {
        self.0.as_fd().as_raw_fd()
    }
}

pub struct PreciseTimer(Inner);

enum Inner {
    TimerFd(AsyncFd<Fd>),
    Wheel,
}

impl Default for PreciseTimer {
    fn default() -> Self {
        PreciseTimer::new()
    }
}

impl PreciseTimer {
    /// A timerfd on the current runtime; the 1 ms wheel if that fails.
    pub fn new() -> PreciseTimer {
        let fd = TimerFd::new(
            ClockId::CLOCK_MONOTONIC,
            TimerFlags::TFD_NONBLOCK | TimerFlags::TFD_CLOEXEC,
        )
        .map_err(io::Error::from)
        // `AsyncFd::new` is deprecated for types that could hand out a
        // descriptor they do not own; `Fd` owns its timerfd for the
        // AsyncFd's whole life, which is the guarantee the (unsafe)
        // `register` asks for. baton forbids unsafe code.
        .and_then(|t| {
            #[allow(deprecated)]
            AsyncFd::new(Fd(t))
        });
        PreciseTimer(match fd {
            Ok(fd) => Inner::TimerFd(fd),
            Err(_) => Inner::Wheel,
        })
    }

    /// Sleep until `deadline`. Safe to cancel (drop) mid-way: the next call
    /// re-arms the timer and ignores a stale expiry.
    pub async fn sleep_until(&self, deadline: Instant) {
        let now = Instant::now();
        if deadline <= now {
            return;
        }
        let fd = match &self.0 {
            Inner::Wheel => return tokio::time::sleep_until(deadline.into()).await,
            Inner::TimerFd(fd) => fd,
        };
        let arm = Expiration::OneShot(TimeSpec::from_duration(deadline - now));
        if fd.get_ref().0.set(arm, TimerSetTimeFlags::empty()).is_err() {
            return tokio::time::sleep_until(deadline.into()).await;
        }
        loop {
            let Ok(mut guard) = fd.readable().await else {
                return tokio::time::sleep_until(deadline.into()).await;
            };
            // A stale readiness (an expiry read by nobody) reads EAGAIN or
            // comes before the deadline: clear it and wait again.
            match guard.try_io(|f| f.get_ref().0.wait().map_err(io::Error::from)) {
                Ok(Ok(())) if Instant::now() >= deadline => return,
                Ok(Ok(())) => continue,
                Ok(Err(_)) => return tokio::time::sleep_until(deadline.into()).await,
                Err(_would_block) => continue,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn sleeps_at_least_until_the_deadline_and_survives_cancellation() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let t = PreciseTimer::new();
            assert!(
                matches!(t.0, Inner::TimerFd(_)),
                "timerfd should be available on Linux"
            );
            // Cancel one sleep half-way, then sleep again: the stale arm
            // must not end the second sleep early.
            let _ = tokio::time::timeout(
                Duration::from_millis(1),
                t.sleep_until(Instant::now() + Duration::from_millis(3)),
            )
            .await;
            for _ in 0..20 {
                let deadline = Instant::now() + Duration::from_micros(700);
                t.sleep_until(deadline).await;
                assert!(Instant::now() >= deadline);
            }
        });
    }
}
