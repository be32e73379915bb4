//! Shared helpers for the API tests: start a sandbox, build a kube-rs
//! client from the kubeconfig it wrote, send raw HTTP requests.

#![allow(dead_code)]

use std::time::Duration;

use baton_sandbox::{Sandbox, SandboxConfig};
use kube::config::{KubeConfigOptions, Kubeconfig};

/// A sandbox with no manifests (only the `default` namespace) and short
/// bookmark periods.
pub async fn empty_sandbox() -> Sandbox {
    start(SandboxConfig {
        bookmark_interval: Duration::from_millis(200),
        ..SandboxConfig::default()
    })
    .await
}

pub async fn start(cfg: SandboxConfig) -> Sandbox {
    Sandbox::start(cfg).await.expect("sandbox starts")
}

pub async fn client(sb: &Sandbox) -> kube::Client {
    let kc = Kubeconfig::read_from(sb.kubeconfig_path()).expect("kubeconfig readable");
    let cfg = kube::Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default())
        .await
        .expect("kubeconfig valid");
    kube::Client::try_from(cfg).expect("client")
}

/// A raw HTTP/1.1 request; returns (status, body).
pub async fn raw(
    sb: &Sandbox,
    method: &str,
    path: &str,
    content_type: &str,
    body: &[u8],
) -> (u16, serde_json::Value) {
    raw_accept(sb, method, path, content_type, "application/json", body).await
}

/// [`raw`] with an Accept header.
pub async fn raw_accept(
    sb: &Sandbox,
    method: &str,
    path: &str,
    content_type: &str,
    accept: &str,
    body: &[u8],
) -> (u16, serde_json::Value) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(sb.api_addr())
        .await
        .expect("connect");
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: sandbox\r\nAccept: {accept}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes()).await.unwrap();
    s.write_all(body).await.unwrap();
    let mut buf = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut buf))
        .await
        .expect("response in time")
        .unwrap();
    let text = String::from_utf8_lossy(&buf).to_string();
    let code: u16 = text[9..12].parse().expect("status code");
    let body = text.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or("");
    let json = serde_json::from_str(body).unwrap_or(serde_json::Value::String(body.to_string()));
    (code, json)
}

/// Read-modify-replace, retried on 409 Conflict as every Kubernetes client
/// must (the sandbox's controllers write status concurrently).
pub async fn replace_retrying<K>(api: &kube::Api<K>, name: &str, f: impl Fn(&mut K)) -> K
where
    K: kube::Resource + Clone + std::fmt::Debug + serde::de::DeserializeOwned + serde::Serialize,
{
    for _ in 0..20 {
        let mut obj = api.get(name).await.expect("get");
        f(&mut obj);
        match api
            .replace(name, &kube::api::PostParams::default(), &obj)
            .await
        {
            Ok(o) => return o,
            Err(kube::Error::Api(s)) if s.code == 409 => continue,
            Err(e) => panic!("replace {name}: {e:?}"),
        }
    }
    panic!("replace {name}: still conflicting after 20 tries")
}
