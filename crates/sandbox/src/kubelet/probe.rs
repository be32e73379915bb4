//! The kubelet's readiness probe against a simulated Pod: `httpGet` (a real
//! HTTP/1.1 request, success on 200–399 as in Kubernetes) and `tcpSocket`
//! (a connect). `exec` and `grpc` probes cannot run here and count as
//! successes.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// What to probe.
#[derive(Clone, Debug)]
pub enum Check {
    HttpGet {
        addr: SocketAddr,
        path: String,
    },
    TcpSocket {
        addr: SocketAddr,
    },
    /// exec / grpc: not simulated, always succeeds.
    Assumed,
}

/// Runs one probe; `Err` carries the message Kubernetes would put in the
/// `Unhealthy` event.
pub async fn run(check: &Check, timeout: Duration) -> Result<(), String> {
    match check {
        Check::Assumed => Ok(()),
        Check::TcpSocket { addr } => {
            match tokio::time::timeout(timeout, TcpStream::connect(addr)).await {
                Ok(Ok(_)) => Ok(()),
                Ok(Err(e)) => Err(format!("dial tcp {addr}: connect: {}", short(&e))),
                Err(_) => Err(format!("dial tcp {addr}: i/o timeout")),
            }
        }
        Check::HttpGet { addr, path } => {
            let url = format!("http://{addr}{path}");
            match tokio::time::timeout(timeout, http_get(*addr, path)).await {
                Ok(Ok(code)) if (200..400).contains(&code) => Ok(()),
                Ok(Ok(code)) => Err(format!("HTTP probe failed with statuscode: {code}")),
                Ok(Err(e)) => Err(format!("Get \"{url}\": {e}")),
                Err(_) => Err(format!(
                    "Get \"{url}\": context deadline exceeded (Client.Timeout exceeded while awaiting headers)"
                )),
            }
        }
    }
}

fn short(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::ConnectionRefused => "connection refused".into(),
        std::io::ErrorKind::ConnectionReset => "connection reset by peer".into(),
        _ => e.to_string(),
    }
}

async fn http_get(addr: SocketAddr, path: &str) -> Result<u16, String> {
    let mut s = TcpStream::connect(addr)
        .await
        .map_err(|e| format!("dial tcp {addr}: connect: {}", short(&e)))?;
    let req = format!(
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nUser-Agent: kube-probe/1.37\r\nAccept: */*\r\nConnection: close\r\n\r\n"
    );
    s.write_all(req.as_bytes())
        .await
        .map_err(|e| format!("write tcp {addr}: {}", short(&e)))?;
    let mut buf = Vec::with_capacity(256);
    let mut chunk = [0u8; 256];
    // The status line is all we need.
    while !buf.windows(2).any(|w| w == b"\r\n") && buf.len() < 8192 {
        let n = s
            .read(&mut chunk)
            .await
            .map_err(|e| format!("read tcp {addr}: {}", short(&e)))?;
        if n == 0 {
            return Err("EOF".into());
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    let line = String::from_utf8_lossy(&buf);
    line.split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| {
            format!(
                "malformed HTTP response {:?}",
                line.lines().next().unwrap_or_default()
            )
        })
}
