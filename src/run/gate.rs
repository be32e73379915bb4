//! The baseline gate: before any load, the Deployment must be rolled out
//! and the target must answer, so that failures during the run are the
//! rollout's and not a cold start's.

use crate::cluster::rollout;
use k8s_openapi::api::apps::v1::Deployment;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_util::sync::CancellationToken;

/// Answers in a row that make the target "answering".
const IN_A_ROW: u32 = 5;

pub async fn wait_baseline(
    client: &kube::Client,
    namespace: &str,
    deployment: &str,
    url: &str,
    within: Duration,
    cancel: &CancellationToken,
) -> Result<(), String> {
    let deadline = tokio::time::Instant::now() + within;
    let api: kube::Api<Deployment> = kube::Api::namespaced(client.clone(), namespace);
    tokio::select! {
        r = rollout::wait_rollout(&api, deployment, within, |_| {}) => r.map_err(|e| e.to_string())?,
        _ = cancel.cancelled() => return Err("interrupted".into()),
    }
    let addr = authority(url).ok_or_else(|| format!("cannot read host:port from {url}"))?;
    let mut good = 0;
    let mut last = String::from("no answer yet");
    while good < IN_A_ROW {
        if cancel.is_cancelled() {
            return Err("interrupted".into());
        }
        if tokio::time::Instant::now() > deadline {
            return Err(format!(
                "{url} did not answer {IN_A_ROW} times in a row within {within:?}; last: {last}"
            ));
        }
        match probe(&addr).await {
            Ok(status) if (200..400).contains(&status) => good += 1,
            Ok(status) => {
                good = 0;
                last = format!("HTTP {status}");
            }
            Err(e) => {
                good = 0;
                last = e;
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok(())
}

fn authority(url: &str) -> Option<String> {
    let rest = url.strip_prefix("http://")?;
    let host = rest.split('/').next()?;
    Some(if host.contains(':') {
        host.to_string()
    } else {
        format!("{host}:80")
    })
}

/// One GET over a fresh connection; the status code.
async fn probe(addr: &str) -> Result<u16, String> {
    let attempt = async {
        let mut s = tokio::net::TcpStream::connect(addr)
            .await
            .map_err(|e| e.to_string())?;
        s.write_all(b"GET / HTTP/1.0\r\nHost: baton-baseline\r\nConnection: close\r\n\r\n")
            .await
            .map_err(|e| e.to_string())?;
        let mut head = [0u8; 32];
        let n = s.read(&mut head).await.map_err(|e| e.to_string())?;
        let line = String::from_utf8_lossy(&head[..n]);
        line.split_whitespace()
            .nth(1)
            .and_then(|c| c.parse().ok())
            .ok_or_else(|| format!("not an HTTP answer: {line:?}"))
    };
    tokio::time::timeout(Duration::from_secs(2), attempt)
        .await
        .map_err(|_| "timed out".to_string())?
}

#[cfg(test)]
mod tests {
    use super::authority;

    #[test]
    fn authority_defaults_to_port_80() {
        assert_eq!(
            authority("http://10.0.0.1/x").as_deref(),
            Some("10.0.0.1:80")
        );
        assert_eq!(
            authority("http://127.0.0.1:3000/").as_deref(),
            Some("127.0.0.1:3000")
        );
        assert_eq!(authority("https://x/"), None);
    }
}
