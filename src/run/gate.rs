//! The baseline gate: before any load, the Deployment must be rolled out
//! and the target must answer, so that failures during the run are the
//! rollout's and not a cold start's. When the load comes from the
//! cluster, the target is an in-cluster address this host may not reach:
//! instead of asking it, baton waits until the Service's ready endpoints
//! have held still for the propagation allowance, so that every proxy
//! routes by them.

use crate::cluster::rollout;
use crate::load::client::{self, ClientState, RequestTemplate};
use crate::load::outcome::Outcome;
use k8s_openapi::api::apps::v1::Deployment;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Answers in a row that make the target "answering".
const IN_A_ROW: u32 = 5;
/// Between two probes: 5 answers in a row take half a second at least,
/// which a target that only just came up rarely fakes.
const PROBE_EVERY: Duration = Duration::from_millis(100);

/// How the target is known to answer.
pub enum Answering<'a> {
    /// It answers requests made from here, as the load makes them.
    Probe(&'a RequestTemplate, &'a str),
    /// The Service's ready endpoints exist and have not changed for
    /// `settle` (in-cluster load).
    Settled { service: &'a str, settle: Duration },
}

pub async fn wait_baseline(
    client: &kube::Client,
    namespace: &str,
    deployment: &str,
    answering: Answering<'_>,
    within: Duration,
    cancel: &CancellationToken,
) -> Result<(), String> {
    let deadline = tokio::time::Instant::now() + within;
    let api: kube::Api<Deployment> = kube::Api::namespaced(client.clone(), namespace);
    tokio::select! {
        r = rollout::wait_rollout(&api, deployment, within, |_| {}) => r.map_err(|e| e.to_string())?,
        _ = cancel.cancelled() => return Err("interrupted".into()),
    }
    let (target, url) = match answering {
        Answering::Probe(target, url) => (target, url),
        Answering::Settled { service, settle } => {
            return endpoints_settled(client, namespace, service, settle, deadline, cancel).await;
        }
    };
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
        match probe(target).await {
            Ok(()) => good += 1,
            Err(why) => {
                good = 0;
                last = why;
            }
        }
        tokio::time::sleep(PROBE_EVERY).await;
    }
    Ok(())
}

/// One request exactly as the load will make it (same URL, headers, TLS
/// and expected statuses, a fresh connection); `Err` says how it failed.
async fn probe(t: &RequestTemplate) -> Result<(), String> {
    let state = ClientState::default();
    let m = client::request(t, &state, None, None).await;
    match (m.outcome, m.status) {
        (Outcome::Ok, _) => Ok(()),
        (Outcome::HttpStatus, Some(status)) => Err(format!("HTTP {status}")),
        (o, _) => Err(match m.phase.as_str() {
            "" => o.as_str().to_string(),
            phase => format!("{} ({phase})", o.as_str()),
        }),
    }
}

/// Wait until `service`'s ready endpoints are not empty and unchanged for
/// `settle`, as listed every [`PROBE_EVERY`].
async fn endpoints_settled(
    client: &kube::Client,
    namespace: &str,
    service: &str,
    settle: Duration,
    deadline: tokio::time::Instant,
    cancel: &CancellationToken,
) -> Result<(), String> {
    use k8s_openapi::api::discovery::v1::EndpointSlice;
    let api: kube::Api<EndpointSlice> = kube::Api::namespaced(client.clone(), namespace);
    let lp =
        kube::api::ListParams::default().labels(&format!("kubernetes.io/service-name={service}"));
    let mut last: Option<(std::collections::BTreeSet<String>, tokio::time::Instant)> = None;
    loop {
        if cancel.is_cancelled() {
            return Err("interrupted".into());
        }
        let slices = api
            .list(&lp)
            .await
            .map_err(|e| format!("listing Service {service}'s EndpointSlices: {e}"))?;
        let ready: std::collections::BTreeSet<String> = slices
            .items
            .iter()
            .flat_map(|s| s.endpoints.iter().flatten())
            .filter(|e| e.conditions.as_ref().and_then(|c| c.ready) != Some(false))
            .flat_map(|e| e.addresses.iter().cloned())
            .collect();
        let now = tokio::time::Instant::now();
        match &last {
            Some((seen, since)) if *seen == ready => {
                if !ready.is_empty() && now.duration_since(*since) >= settle {
                    return Ok(());
                }
            }
            _ => last = Some((ready.clone(), now)),
        }
        if now > deadline {
            return Err(format!(
                "Service {service}'s ready endpoints did not hold still for {settle:?} ({} ready)",
                ready.len()
            ));
        }
        tokio::time::sleep(PROBE_EVERY).await;
    }
}
