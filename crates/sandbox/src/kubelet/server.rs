//! The "container" of a simulated Pod: a real HTTP/1.1 server (hyper) on the
//! Pod's own loopback address, with the three ways a process can stop:
//! close (listener closed, in-flight connections reset — nginx's fast
//! shutdown on SIGTERM), drain (stop accepting, finish in-flight requests)
//! and kill (SIGKILL: everything reset at once).

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// What every request gets.
#[derive(Clone, Debug)]
pub struct Reply {
    pub pod: String,
    pub version: String,
    /// Time before answering (annotation `sandbox.baton.dev/response-delay`).
    pub delay: Duration,
    /// The HTTP status of every answer (annotation `sandbox.baton.dev/status`).
    pub status: u16,
}

/// A running server. Dropping it kills it.
pub struct PodServer {
    pub addr: SocketAddr,
    /// Stops the accept loop, which closes the listening socket.
    stop_accept: CancellationToken,
    /// Asks every connection to finish its request and close.
    drain: CancellationToken,
    /// Resets every connection at once.
    abort: CancellationToken,
    accept_task: Option<JoinHandle<()>>,
    /// Each connection holds a clone of the sender; when all are gone the
    /// receiver yields `None`: every connection is closed.
    conns_done: mpsc::Receiver<()>,
}

impl PodServer {
    /// Binds `addr` and starts serving.
    pub async fn start(addr: SocketAddr, reply: Reply) -> std::io::Result<PodServer> {
        let listener = TcpListener::bind(addr).await?;
        let stop_accept = CancellationToken::new();
        let drain = CancellationToken::new();
        let abort = CancellationToken::new();
        let (tx, conns_done) = mpsc::channel::<()>(1);
        let reply = Arc::new(reply);
        let accept_task = tokio::spawn({
            let (stop_accept, drain, abort) = (stop_accept.clone(), drain.clone(), abort.clone());
            async move {
                loop {
                    let (sock, _) = tokio::select! {
                        _ = stop_accept.cancelled() => break,
                        r = listener.accept() => match r {
                            Ok(x) => x,
                            Err(e) => {
                                tracing::debug!(error = %e, "pod accept failed");
                                tokio::time::sleep(Duration::from_millis(5)).await;
                                continue;
                            }
                        },
                    };
                    let tx = tx.clone();
                    let (drain, abort, reply) = (drain.clone(), abort.clone(), reply.clone());
                    tokio::spawn(async move {
                        serve_conn(sock, reply, drain, abort).await;
                        drop(tx);
                    });
                }
                // `listener` is dropped here: new connections are refused and
                // the ones still in the backlog are reset.
                drop(listener);
            }
        });
        Ok(PodServer {
            addr,
            stop_accept,
            drain,
            abort,
            accept_task: Some(accept_task),
            conns_done,
        })
    }

    async fn stop_listening(&mut self) {
        self.stop_accept.cancel();
        if let Some(t) = self.accept_task.take() {
            let _ = t.await;
        }
    }

    /// SIGTERM with fast shutdown: the listener closes and in-flight
    /// connections are reset.
    pub async fn close(mut self) {
        self.stop_listening().await;
        self.abort.cancel();
        self.wait_conns(Duration::from_secs(5)).await;
    }

    /// SIGTERM with graceful shutdown: stop accepting, let in-flight
    /// requests finish. Returns false (and resets what is left) if they did
    /// not finish within `limit`.
    pub async fn drain(mut self, limit: Duration) -> bool {
        self.start_drain().await;
        let drained = self.wait_conns(limit).await;
        if !drained {
            self.abort.cancel();
            self.wait_conns(Duration::from_secs(5)).await;
        }
        drained
    }

    /// The first half of [`PodServer::drain`]: stop accepting, ask every
    /// connection to finish. Then [`PodServer::wait_drained`].
    pub async fn start_drain(&mut self) {
        self.stop_listening().await;
        self.drain.cancel();
    }

    /// Whether every connection closed within `limit`.
    pub async fn wait_drained(&mut self, limit: Duration) -> bool {
        self.wait_conns(limit).await
    }

    /// SIGKILL: everything reset at once.
    pub async fn kill(mut self) {
        self.abort.cancel();
        self.stop_listening().await;
        self.wait_conns(Duration::from_secs(5)).await;
    }

    async fn wait_conns(&mut self, limit: Duration) -> bool {
        tokio::time::timeout(limit, self.conns_done.recv())
            .await
            .is_ok()
    }
}

impl Drop for PodServer {
    fn drop(&mut self) {
        self.stop_accept.cancel();
        self.abort.cancel();
    }
}

async fn serve_conn(
    sock: TcpStream,
    reply: Arc<Reply>,
    drain: CancellationToken,
    abort: CancellationToken,
) {
    let _ = sock.set_nodelay(true);
    // A second descriptor of the same socket, kept to reset it (SO_LINGER 0)
    // while hyper owns the first.
    let (sock, dup) = match sock.into_std().and_then(|s| {
        let d = s.try_clone()?;
        Ok((TcpStream::from_std(s)?, d))
    }) {
        Ok(x) => x,
        Err(e) => {
            tracing::debug!(error = %e, "cannot set up pod connection");
            return;
        }
    };
    let svc = service_fn(move |_req: Request<hyper::body::Incoming>| {
        let reply = reply.clone();
        async move {
            if !reply.delay.is_zero() {
                tokio::time::sleep(reply.delay).await;
            }
            let body = format!("Hello from {} version {}\n", reply.pod, reply.version);
            let resp = Response::builder()
                .status(reply.status)
                .header("x-pod-name", reply.pod.as_str())
                .header("content-type", "text/plain")
                .body(Full::new(Bytes::from(body)))
                .unwrap_or_default();
            Ok::<_, Infallible>(resp)
        }
    });
    let conn = http1::Builder::new().serve_connection(TokioIo::new(sock), svc);
    tokio::pin!(conn);
    let reset = |dup: std::net::TcpStream| {
        if let Ok(t) = TcpStream::from_std(dup) {
            let _ = t.set_zero_linger();
        }
    };
    tokio::select! {
        _ = conn.as_mut() => return,
        _ = abort.cancelled() => {}
        _ = drain.cancelled() => {
            conn.as_mut().graceful_shutdown();
            tokio::select! {
                _ = conn.as_mut() => return,
                _ = abort.cancelled() => {}
            }
        }
    }
    // Aborted: reset, then close both descriptors.
    reset(dup);
}
