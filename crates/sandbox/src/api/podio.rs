//! `pods/log` and `pods/attach` for process containers
//! ([`crate::kubelet::process`]): the output the kubelet kept, and a
//! WebSocket session on the running process, as the API server proxies
//! them from a real kubelet.
//!
//! Attach speaks the `v5.channel.k8s.io` (preferred) and
//! `v4.channel.k8s.io` subprotocols, the ones kube-rs offers: every binary
//! frame starts with its channel (0 stdin, 1 stdout, 2 stderr, 3 the final
//! `Status`, 4 resize; v5's 255 closes a stream). Output flows from the
//! moment of attaching (no replay); when the process exits the session
//! sends the `Status` (`Success`, or `Failure` with reason
//! `NonZeroExitCode` and the code in `details.causes`) and closes. No
//! SPDY, no TTY, no `exec`. Simulated Pods have no process: their log is a
//! line saying so, and attach is refused.

use std::sync::Arc;

use bytes::{BufMut, Bytes, BytesMut};
use futures::{SinkExt, StreamExt};
use http::{Request, Response, StatusCode, header};
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::Role;

use super::status::ApiError;
use super::{ApiState, Body, Query, Target};
use crate::kubelet::process::{ContainerIo, LogLine, RunState};

const STDIN: u8 = 0;
const STATUS: u8 = 3;
const CLOSE: u8 = 255;

fn flag(q: &Query, k: &str) -> bool {
    matches!(q.get(k).map(String::as_str), Some("true" | "1"))
}

/// The container a log or attach request means: `container`, else the
/// `kubectl.kubernetes.io/default-container`, else the only one.
fn pick_container(pod: &Value, q: &Query) -> Result<String, ApiError> {
    let pod_name = pod["metadata"]["name"].as_str().unwrap_or("");
    let names: Vec<&str> = pod["spec"]["containers"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|c| c["name"].as_str())
        .collect();
    let want = q
        .get("container")
        .filter(|c| !c.is_empty())
        .map(String::as_str)
        .or(pod["metadata"]["annotations"]["kubectl.kubernetes.io/default-container"].as_str());
    match want {
        Some(c) if names.contains(&c) => Ok(c.to_string()),
        Some(c) => Err(ApiError::bad_request(format!(
            "container {c} is not valid for pod {pod_name}"
        ))),
        None if names.len() == 1 => Ok(names[0].to_string()),
        None => Err(ApiError::bad_request(format!(
            "a container name must be specified for pod {pod_name}, choose one of: [{}]",
            names.join(" ")
        ))),
    }
}

fn lookup(
    state: &ApiState,
    t: &Target,
    q: &Query,
) -> Result<(Value, String, Option<Arc<ContainerIo>>), ApiError> {
    let name = t.name.as_deref().unwrap_or("");
    let pod = state
        .store
        .get_raw("Pod", t.namespace.as_deref(), name)
        .ok_or_else(|| ApiError::not_found(t.res, name))?;
    let c = pick_container(&pod, q)?;
    let uid = pod["metadata"]["uid"].as_str().unwrap_or("");
    let io = state.processes.get(uid, &c);
    Ok((pod, c, io))
}

fn render(lines: &[LogLine], timestamps: bool) -> Bytes {
    let mut out = BytesMut::new();
    for l in lines {
        if timestamps {
            out.put_slice(format!("{} ", l.at.strftime("%Y-%m-%dT%H:%M:%S.%fZ")).as_bytes());
        }
        out.put_slice(&l.text);
    }
    out.freeze()
}

fn text_response(body: Body) -> Response<Body> {
    Response::builder()
        .header(header::CONTENT_TYPE, "text/plain")
        .body(body)
        .unwrap_or_default()
}

/// `GET .../pods/NAME/log` (`container`, `follow`, `tailLines`,
/// `timestamps`).
pub fn log(state: &ApiState, t: &Target, q: &Query) -> Result<Response<Body>, ApiError> {
    let (_, c, io) = lookup(state, t, q)?;
    let name = t.name.as_deref().unwrap_or("");
    let Some(io) = io else {
        let text = format!(
            "baton sandbox: pod {name} is simulated (an HTTP server inside baton, not a container); it has no logs. See `kubectl describe pod {name}` for its events.\n"
        );
        return Ok(text_response(Full::new(Bytes::from(text)).boxed()));
    };
    let tail = match q.get("tailLines") {
        Some(n) => Some(
            n.parse::<i64>()
                .map_err(|_| ApiError::bad_request(format!("tailLines: invalid value {n:?}")))?,
        ),
        None => None,
    }
    .map(|n| n.max(0) as usize);
    let timestamps = flag(q, "timestamps");
    let first = io.lines(tail);
    if !flag(q, "follow") {
        return Ok(text_response(Full::new(render(&first, timestamps)).boxed()));
    }
    tracing::debug!(pod = name, container = %c, "following a process log");
    let (tx, mut rx) = mpsc::channel::<Bytes>(64);
    let shutdown = state.shutdown.clone();
    tokio::spawn(async move {
        // After what was shown; with nothing shown, from the start, or
        // from now for `tailLines=0`.
        let mut next = first.last().map_or_else(
            || if tail.is_some() { io.next_seq() } else { 0 },
            |l| l.seq + 1,
        );
        if !first.is_empty() && tx.send(render(&first, timestamps)).await.is_err() {
            return;
        }
        let mut changes = io.log_changes();
        let mut state = io.state();
        loop {
            let lines = io.lines_since(next);
            if let Some(l) = lines.last() {
                next = l.seq + 1;
                if tx.send(render(&lines, timestamps)).await.is_err() {
                    return;
                }
            }
            if matches!(*state.borrow_and_update(), RunState::Exited(_)) {
                // Exited after its output was flushed: nothing more comes.
                let rest = io.lines_since(next);
                if !rest.is_empty() {
                    let _ = tx.send(render(&rest, timestamps)).await;
                }
                return;
            }
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tx.closed() => return,
                r = changes.changed() => if r.is_err() { return },
                r = state.changed() => if r.is_err() { return },
            }
        }
    });
    let stream = futures::stream::poll_fn(move |cx| {
        rx.poll_recv(cx)
            .map(|o| o.map(|b| Ok::<_, std::convert::Infallible>(Frame::data(b))))
    });
    Ok(text_response(BodyExt::boxed(StreamBody::new(stream))))
}

/// The subprotocol to answer with, from the client's offer.
fn pick_protocol(offer: &str) -> Option<&'static str> {
    let offered: Vec<&str> = offer.split(',').map(str::trim).collect();
    ["v5.channel.k8s.io", "v4.channel.k8s.io"]
        .into_iter()
        .find(|p| offered.contains(p))
}

/// The `Status` sent on channel 3 when the process exits.
pub fn exit_status(code: i32) -> Value {
    if code == 0 {
        return json!({"metadata": {}, "status": "Success"});
    }
    json!({
        "metadata": {},
        "status": "Failure",
        "message": format!("command terminated with non-zero exit code: exit status {code}"),
        "reason": "NonZeroExitCode",
        "details": {"causes": [{"reason": "ExitCode", "message": code.to_string()}]},
    })
}

/// `.../pods/NAME/attach` (`container`, `stdin`, `stdout`, `stderr`,
/// `tty`): upgrades to a WebSocket and relays the process's streams.
pub async fn attach(
    state: &ApiState,
    t: &Target,
    q: &Query,
    req: Request<Incoming>,
) -> Result<Response<Body>, ApiError> {
    let (pod, c, io) = lookup(state, t, q)?;
    let name = t.name.as_deref().unwrap_or("");
    let Some(io) = io else {
        return Err(ApiError::bad_request(format!(
            "pod {name} is simulated by the baton sandbox (no process runs in it); only Pods of its process_images can be attached to"
        )));
    };
    if flag(q, "tty") {
        return Err(ApiError::bad_request(
            "the baton sandbox allocates no TTY: attach with tty=false",
        ));
    }
    let (stdin, stdout, stderr) = (flag(q, "stdin"), flag(q, "stdout"), flag(q, "stderr"));
    if !(stdin || stdout || stderr) {
        return Err(ApiError::bad_request(
            "you must specify at least one of stdin, stdout, stderr",
        ));
    }
    if stdin && !io.stdin_enabled {
        return Err(ApiError::bad_request(format!(
            "stdin for container {c} of pod {name} is not enabled: the container needs `stdin: true`"
        )));
    }
    match *io.state().borrow() {
        RunState::Running => {}
        RunState::Exited(_) => {
            let phase = pod["status"]["phase"].as_str().unwrap_or("Unknown");
            return Err(ApiError::bad_request(format!(
                "cannot attach to a container in a completed pod; current phase is {phase}"
            )));
        }
        RunState::Waiting => {
            return Err(ApiError::bad_request(format!(
                "container {c} in pod {name} is waiting to start"
            )));
        }
    }
    let h = |k: header::HeaderName| {
        req.headers()
            .get(k)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string()
    };
    let key = h(header::SEC_WEBSOCKET_KEY);
    if !h(header::UPGRADE).eq_ignore_ascii_case("websocket") || key.is_empty() {
        return Err(ApiError::bad_request(
            "Upgrade request required: the baton sandbox serves pods/attach over WebSocket (v5.channel.k8s.io or v4.channel.k8s.io), not SPDY",
        ));
    }
    let Some(protocol) = pick_protocol(&h(header::SEC_WEBSOCKET_PROTOCOL)) else {
        return Err(ApiError::bad_request(
            "no supported WebSocket subprotocol: the baton sandbox speaks v5.channel.k8s.io and v4.channel.k8s.io",
        ));
    };
    // Output from this moment on.
    let output = io.attach(stdout, stderr);
    let shutdown = state.shutdown.clone();
    let stdin_once = io.stdin_once;
    tokio::spawn(async move {
        let upgraded = match hyper::upgrade::on(req).await {
            Ok(u) => u,
            Err(e) => {
                tracing::debug!(error = %e, "attach: upgrade failed");
                return;
            }
        };
        let ws = WebSocketStream::from_raw_socket(TokioIo::new(upgraded), Role::Server, None).await;
        session(ws, io.clone(), output, stdin, shutdown).await;
        if stdin && stdin_once {
            io.close_stdin().await;
        }
    });
    Ok(Response::builder()
        .status(StatusCode::SWITCHING_PROTOCOLS)
        .header(header::UPGRADE, "websocket")
        .header(header::CONNECTION, "Upgrade")
        .header(
            header::SEC_WEBSOCKET_ACCEPT,
            derive_accept_key(key.as_bytes()),
        )
        .header(header::SEC_WEBSOCKET_PROTOCOL, protocol)
        .body(Full::new(Bytes::new()).boxed())
        .unwrap_or_default())
}

fn frame(channel: u8, data: &[u8]) -> Message {
    let mut v = Vec::with_capacity(data.len() + 1);
    v.push(channel);
    v.extend_from_slice(data);
    Message::binary(v)
}

async fn session(
    ws: WebSocketStream<TokioIo<hyper::upgrade::Upgraded>>,
    io: Arc<ContainerIo>,
    mut output: mpsc::Receiver<(u8, Bytes)>,
    stdin: bool,
    shutdown: tokio_util::sync::CancellationToken,
) {
    let (mut tx, mut rx) = ws.split();
    let mut state = io.state();
    let code = loop {
        if let RunState::Exited(code) = *state.borrow_and_update() {
            break Some(code);
        }
        tokio::select! {
            _ = shutdown.cancelled() => break None,
            out = output.recv() => match out {
                Some((ch, data)) => if tx.send(frame(ch, &data)).await.is_err() { return },
                None => break None,
            },
            msg = rx.next() => match msg {
                Some(Ok(Message::Binary(b))) => match b.first() {
                    Some(&STDIN) if stdin && !io.write_stdin(b.slice(1..)).await => {
                        tracing::debug!("attach: stdin of an exited process");
                    }
                    // v5: the client closed its stdin. Only `stdinOnce`
                    // containers see EOF (the runtime keeps stdin open for
                    // the next attach otherwise).
                    Some(&CLOSE) if b.get(1) == Some(&STDIN) && io.stdin_once => io.close_stdin().await,
                    _ => {}
                },
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return,
                Some(Ok(_)) => {}
            },
            r = state.changed() => if r.is_err() { break None },
        }
    };
    // The pumps finished before the exit was published: what is queued is
    // the rest of the output.
    while let Ok((ch, data)) = output.try_recv() {
        if tx.send(frame(ch, &data)).await.is_err() {
            return;
        }
    }
    if let Some(code) = code {
        let status = serde_json::to_vec(&exit_status(code)).unwrap_or_default();
        let _ = tx.send(frame(STATUS, &status)).await;
    }
    let _ = tx.send(Message::Close(None)).await;
    let _ = tx.flush().await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v5_is_preferred_and_v4_accepted() {
        assert_eq!(
            pick_protocol("v5.channel.k8s.io, v4.channel.k8s.io"),
            Some("v5.channel.k8s.io")
        );
        assert_eq!(
            pick_protocol("v4.channel.k8s.io"),
            Some("v4.channel.k8s.io")
        );
        assert_eq!(pick_protocol("channel.k8s.io"), None);
    }

    #[test]
    fn a_non_zero_exit_is_a_failure_status_with_the_code() {
        assert_eq!(exit_status(0)["status"], "Success");
        let s = exit_status(3);
        assert_eq!(s["reason"], "NonZeroExitCode");
        assert_eq!(s["details"]["causes"][0]["message"], "3");
        let typed: k8s_openapi::apimachinery::pkg::apis::meta::v1::Status =
            serde_json::from_value(s).unwrap();
        assert_eq!(typed.status.as_deref(), Some("Failure"));
    }

    #[test]
    fn the_container_is_named_defaulted_or_the_only_one() {
        let pod = json!({"metadata": {"name": "p"}, "spec": {"containers": [{"name": "a"}, {"name": "b"}]}});
        let q = |c: Option<&str>| -> Query {
            c.map(|c| [("container".to_string(), c.to_string())].into())
                .unwrap_or_default()
        };
        assert_eq!(pick_container(&pod, &q(Some("b"))).unwrap(), "b");
        assert!(
            pick_container(&pod, &q(None))
                .unwrap_err()
                .message
                .contains("choose one of: [a b]")
        );
        assert!(pick_container(&pod, &q(Some("z"))).is_err());
    }
}
