//! A TCP relay between baton and an API server, for the tests of what
//! baton does when it cannot see the cluster: [`Relay::pause`] stops
//! every byte both ways (a stalled connection: no error, just silence,
//! and new connections accepted but answered by nothing), [`Relay::resume`]
//! lets them flow again, [`Relay::kill`] closes every connection and
//! refuses new ones (the cluster is gone).
#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const FLOWING: u8 = 0;
const PAUSED: u8 = 1;
const KILLED: u8 = 2;

pub struct Relay {
    pub addr: SocketAddr,
    state: Arc<AtomicU8>,
    task: tokio::task::JoinHandle<()>,
}

impl Relay {
    pub async fn start(target: SocketAddr) -> Relay {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(AtomicU8::new(FLOWING));
        let s = state.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((client, _)) = listener.accept().await else {
                    return;
                };
                if s.load(Ordering::SeqCst) == KILLED {
                    return;
                }
                let Ok(server) = TcpStream::connect(target).await else {
                    continue;
                };
                let (cr, cw) = client.into_split();
                let (sr, sw) = server.into_split();
                tokio::spawn(pipe(cr, sw, s.clone()));
                tokio::spawn(pipe(sr, cw, s.clone()));
            }
        });
        Relay { addr, state, task }
    }

    pub fn pause(&self) {
        self.state.store(PAUSED, Ordering::SeqCst);
    }

    pub fn resume(&self) {
        self.state.store(FLOWING, Ordering::SeqCst);
    }

    /// Close every connection and refuse new ones.
    pub fn kill(&self) {
        self.state.store(KILLED, Ordering::SeqCst);
        self.task.abort();
    }

    /// A copy of `kubeconfig` (a sandbox's) that reaches its API server
    /// through this relay.
    pub fn kubeconfig(&self, kubeconfig: &std::path::Path, out: &std::path::Path) {
        let text = std::fs::read_to_string(kubeconfig).unwrap();
        let mut kc: serde_json::Value = serde_norway::from_str(&text).unwrap();
        for c in kc["clusters"].as_array_mut().unwrap() {
            c["cluster"]["server"] = format!("http://{}", self.addr).into();
        }
        std::fs::write(out, serde_norway::to_string(&kc).unwrap()).unwrap();
    }
}

async fn pipe(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    state: Arc<AtomicU8>,
) {
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        match state.load(Ordering::SeqCst) {
            KILLED => return,
            PAUSED => {
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
            _ => {}
        }
        // Read with a short timeout so a pause takes effect on a quiet
        // connection too.
        match tokio::time::timeout(Duration::from_millis(50), from.read(&mut buf)).await {
            Err(_) => continue,
            Ok(Ok(0)) | Ok(Err(_)) => return,
            Ok(Ok(n)) => {
                // Bytes read just before a pause are held until it ends.
                while state.load(Ordering::SeqCst) == PAUSED {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
                if state.load(Ordering::SeqCst) == KILLED || to.write_all(&buf[..n]).await.is_err()
                {
                    return;
                }
            }
        }
    }
}
