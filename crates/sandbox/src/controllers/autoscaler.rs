//! The horizontal-pod-autoscaler controller of the sandbox SIMULATOR
//! (`pkg/controller/podautoscaler`): every [`ClusterConfig::hpa_sync_period`]
//! (Kubernetes: 15 s, `--horizontal-pod-autoscaler-sync-period`; the
//! sandbox: 1 s) it syncs each HorizontalPodAutoscaler: reads its target's
//! scale (an apps/v1 Deployment's `spec.replicas`), the simulated metric
//! (the HPA's `sandbox.baton.dev/cpu-utilization` annotation, see
//! [`crate::hpa`]) and the target's Pods' CPU requests, decides, writes the
//! Deployment's `spec.replicas` as the `deployments/scale` subresource
//! does, and records the HPA's status and Events (`SuccessfulRescale`,
//! `FailedGetResourceMetric`, `FailedComputeMetricsReplicas`,
//! `FailedGetScale`, `FailedRescale`) as the real one does. The rules are
//! in [`crate::hpa`]; this module reads and writes the store.
//!
//! It runs as its own task, apart from the other controllers' loop, as the
//! real one is paced by its own sync period rather than by changes. The
//! Deployment controller then resizes the ReplicaSets, proportionally in
//! the middle of a rollout, and the ReplicaSet controller deletes surplus
//! Pods gracefully, as after `kubectl scale`.
//!
//! Not for: scale targets other than Deployments (the sandbox serves no
//! other scale subresource).
//!
//! [`ClusterConfig::hpa_sync_period`]: crate::ClusterConfig::hpa_sync_period

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::autoscaling::v2::{HorizontalPodAutoscaler, HorizontalPodAutoscalerStatus};
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use serde_json::json;
use tokio_util::sync::CancellationToken;

use super::{is_active, selector_matches};
use crate::events::{EventType, Recorder};
use crate::hpa::{self, Cond, Memory, PodRequests, Readings, Tolerances};
use crate::store::Store;

/// Syncs every HPA each `sync_period` until `shutdown` is cancelled.
pub async fn run(store: Arc<Store>, sync_period: Duration, shutdown: CancellationToken) {
    let rec = Recorder::new(store.clone(), "horizontal-pod-autoscaler");
    let mut memory = HashMap::new();
    let mut tick = tokio::time::interval(sync_period.max(Duration::from_millis(10)));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = tick.tick() => {}
        }
        sync_all(&store, &rec, &mut memory, crate::node::now());
    }
}

/// One sync of every HPA at `now`. `memory` holds what the controller
/// remembers per HPA (`namespace/name`); entries of deleted HPAs go.
pub fn sync_all(
    store: &Store,
    rec: &Recorder,
    memory: &mut HashMap<String, Memory>,
    now: Timestamp,
) {
    let (hpas, _) = store.list::<HorizontalPodAutoscaler>(None);
    let mut seen = Vec::new();
    for h in hpas {
        if h.metadata.deletion_timestamp.is_some() {
            continue;
        }
        let key = format!(
            "{}/{}",
            h.metadata.namespace.as_deref().unwrap_or("default"),
            h.metadata.name.as_deref().unwrap_or_default()
        );
        let mem = memory.entry(key.clone()).or_default();
        sync_one(store, rec, &h, mem, now);
        seen.push(key);
    }
    memory.retain(|k, _| seen.contains(k));
}

/// `reconcileAutoscaler` for one HPA.
fn sync_one(
    store: &Store,
    rec: &Recorder,
    h: &HorizontalPodAutoscaler,
    mem: &mut Memory,
    now: Timestamp,
) {
    let ns = h.metadata.namespace.as_deref().unwrap_or("default");
    let spec = &h.spec;
    let old = h.status.clone().unwrap_or_default();
    let mut status = old.clone();
    let conds = status.conditions.get_or_insert_with(Vec::new);

    let target = match scale_target(store, ns, h) {
        Ok(d) => d,
        Err(msg) => {
            rec.record(h, EventType::Warning, "FailedGetScale", msg.clone());
            let c = Cond {
                type_: "AbleToScale",
                status: "False",
                reason: "FailedGetScale",
                message: format!(
                    "the HPA controller was unable to get the target's current scale: {msg}"
                ),
            };
            hpa::set_condition(conds, &c, now);
            write_status(store, h, old, status);
            return;
        }
    };
    let current = target.spec.replicas.unwrap_or(1);
    let readings = readings(store, ns, h, &target);
    let metrics = spec.metrics.clone().unwrap_or_default();
    let tol = Tolerances::of(spec);
    let d = hpa::decide(
        spec,
        current,
        || hpa::compute_metrics(&metrics, current, &readings, tol),
        mem,
        now,
        hpa::DEFAULT_DOWNSCALE_WINDOW,
    );
    for c in &d.conditions {
        hpa::set_condition(conds, c, now);
    }
    for (reason, msg) in &d.warnings {
        rec.record(h, EventType::Warning, reason, msg.clone());
    }
    let mut desired = d.desired.unwrap_or(old.desired_replicas);
    if let Some((to, reason)) = &d.rescale {
        let dname = &spec.scale_target_ref.name;
        let r = store.modify_raw("Deployment", Some(ns), dname, |dep| {
            dep["spec"]["replicas"] = json!(to);
            Ok(())
        });
        match r {
            Ok(_) => {
                let c = Cond {
                    type_: "AbleToScale",
                    status: "True",
                    reason: "SucceededRescale",
                    message: format!(
                        "the HPA controller was able to update the target scale to {to}"
                    ),
                };
                hpa::set_condition(conds, &c, now);
                rec.record(
                    h,
                    EventType::Normal,
                    "SuccessfulRescale",
                    format!("New size: {to}; reason: {reason}"),
                );
                let rules =
                    hpa::behavior_rules(spec.behavior.as_ref(), hpa::DEFAULT_DOWNSCALE_WINDOW);
                mem.record_scale(rules.as_ref(), current, *to, now);
                tracing::info!(hpa = h.metadata.name.as_deref().unwrap_or_default(), from = current, to, %reason, "successful rescale");
                desired = *to;
                status.last_scale_time = Some(Time(now));
            }
            Err(e) => {
                rec.record(
                    h,
                    EventType::Warning,
                    "FailedRescale",
                    format!("New size: {to}; reason: {reason}; error: {e}"),
                );
                let c = Cond {
                    type_: "AbleToScale",
                    status: "False",
                    reason: "FailedUpdateScale",
                    message: format!(
                        "the HPA controller was unable to update the target scale: {e}"
                    ),
                };
                hpa::set_condition(conds, &c, now);
                desired = old.desired_replicas;
            }
        }
    }
    status.current_replicas = Some(current);
    status.desired_replicas = desired;
    status.current_metrics = (!d.current_metrics.is_empty()).then_some(d.current_metrics);
    write_status(store, h, old, status);
}

/// The target's Deployment, or why there is none (as the real controller's
/// `FailedGetScale` message says).
fn scale_target(
    store: &Store,
    ns: &str,
    h: &HorizontalPodAutoscaler,
) -> Result<Deployment, String> {
    let r = &h.spec.scale_target_ref;
    let group = r
        .api_version
        .as_deref()
        .and_then(|v| v.rsplit_once('/'))
        .map(|(g, _)| g)
        .unwrap_or("");
    if r.kind != "Deployment" || group != "apps" {
        return Err(format!(
            "no matches for kind \"{}\" in group \"{group}\" (the sandbox scales apps/v1 Deployments only)",
            r.kind
        ));
    }
    store
        .get::<Deployment>(ns, &r.name)
        .ok_or_else(|| format!("deployments.apps \"{}\" not found", r.name))
}

/// The metric (the annotation) and the target's active Pods' CPU requests.
fn readings(store: &Store, ns: &str, h: &HorizontalPodAutoscaler, d: &Deployment) -> Readings {
    let cpu_utilization = h
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(hpa::CPU_UTILIZATION))
        .cloned();
    let sel = &d.spec.selector;
    let (pods, _) = store.list::<Pod>(Some(ns));
    let pods = pods
        .iter()
        .filter(|p| is_active(p))
        .filter(|p| selector_matches(sel, p.metadata.labels.as_ref()))
        .map(|p| PodRequests {
            name: p.metadata.name.clone().unwrap_or_default(),
            containers: p
                .spec
                .iter()
                .flat_map(|s| &s.containers)
                .map(|c| {
                    let req = c
                        .resources
                        .as_ref()
                        .and_then(|r| r.requests.as_ref())
                        .and_then(|r: &BTreeMap<_, _>| r.get("cpu"))
                        .and_then(|q| hpa::milli(&q.0));
                    (c.name.clone(), req)
                })
                .collect(),
        })
        .collect();
    Readings {
        cpu_utilization,
        pods,
    }
}

/// Writes the status when it changed (`updateStatusIfNeeded`).
fn write_status(
    store: &Store,
    h: &HorizontalPodAutoscaler,
    old: HorizontalPodAutoscalerStatus,
    new: HorizontalPodAutoscalerStatus,
) {
    if h.status.is_some() && old == new {
        return;
    }
    let ns = h.metadata.namespace.as_deref().unwrap_or("default");
    let name = h.metadata.name.as_deref().unwrap_or_default();
    let r = store.modify::<HorizontalPodAutoscaler>(ns, name, |cur| cur.status = Some(new));
    if let Err(e) = r
        && !matches!(e, crate::store::StoreError::NotFound { .. })
    {
        tracing::warn!(hpa = name, error = %e, "hpa status update failed");
    }
}
