//! The baseline gate: before any load, the Deployment must be rolled out
//! and the target must answer, so that failures during the run are the
//! rollout's and not a cold start's.

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

pub async fn wait_baseline(
    client: &kube::Client,
    namespace: &str,
    deployment: &str,
    target: &RequestTemplate,
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
