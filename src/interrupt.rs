//! Ctrl-C (SIGINT) and SIGTERM as one graceful interrupt. CI systems
//! cancel a job with SIGTERM (GitHub Actions, GitLab, `timeout`, a
//! deleted Kubernetes Job, `docker stop`), so it must leave what Ctrl-C
//! leaves: in-flight requests finished, every file written and marked
//! interrupted, a matrix's Deployment put back. A second signal ends the
//! process at once.
//!
//! The exit code says which signal it was, as shells report a process
//! killed by one: 130 (128 + SIGINT) or 143 (128 + SIGTERM).
//!
//! Not for: what an interrupted command does (each command decides).

use std::sync::atomic::{AtomicU8, Ordering};
use tokio_util::sync::CancellationToken;

/// The exit code of the first signal received; 0 for none yet.
static RECEIVED: AtomicU8 = AtomicU8::new(0);

/// A token cancelled by the first SIGINT or SIGTERM. Call once per
/// command, inside the runtime.
pub fn listen() -> CancellationToken {
    let token = CancellationToken::new();
    let t = token.clone();
    tokio::spawn(async move {
        let code = next_signal().await;
        RECEIVED.store(code, Ordering::SeqCst);
        eprintln!(
            "\nbaton: {}; finishing in-flight requests and writing reports (again to abort)",
            if code == crate::exit::TERMINATED {
                "terminated (SIGTERM)"
            } else {
                "interrupted"
            }
        );
        t.cancel();
        let again = next_signal().await;
        std::process::exit(i32::from(again));
    });
    token
}

/// The exit code of an interrupted command: 143 after SIGTERM, else 130.
pub fn exit_code() -> u8 {
    match RECEIVED.load(Ordering::SeqCst) {
        0 => crate::exit::INTERRUPTED,
        code => code,
    }
}

/// Wait for SIGINT or SIGTERM; its exit code. Where SIGTERM cannot be
/// listened for, Ctrl-C alone.
async fn next_signal() -> u8 {
    use tokio::signal::unix::{SignalKind, signal};
    match signal(SignalKind::terminate()) {
        Ok(mut term) => tokio::select! {
            _ = tokio::signal::ctrl_c() => crate::exit::INTERRUPTED,
            _ = term.recv() => crate::exit::TERMINATED,
        },
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
            crate::exit::INTERRUPTED
        }
    }
}
