//! The disruption controller: keeps each PodDisruptionBudget's `status`
//! (`currentHealthy`, `desiredHealthy`, `expectedPods`,
//! `disruptionsAllowed`, `disruptedPods`, `observedGeneration`, the
//! `DisruptionAllowed` condition) in step with the Pods its selector
//! matches, as `pkg/controller/disruption` does. The arithmetic is in
//! [`crate::pdb`]; this module only reads the store and writes statuses.
//!
//! Simplified: a Pod with no controller counts as a scale of 1 where
//! Kubernetes would refuse to compute a percentage or `maxUnavailable`
//! budget ("found no controllers"); StatefulSets and other scale
//! subresources are not served, so only ReplicaSets and Deployments count.
//!
//! Not for: evictions (see [`crate::api::eviction`]).

use std::collections::HashMap;

use serde_json::Value;

use crate::pdb::{self, PodView};
use crate::store::{Store, StoreError};

/// Recomputes every budget's status; writes only what changed.
pub fn reconcile_all(store: &Store) {
    let (pdbs, _) = store.list_raw("PodDisruptionBudget", None);
    if pdbs.is_empty() {
        return;
    }
    let now = crate::node::now();
    let now_rfc = crate::store::now_value();
    let now_rfc = now_rfc.as_str().unwrap_or("");
    for b in pdbs {
        let ns = b["metadata"]["namespace"].as_str().unwrap_or("default");
        let name = b["metadata"]["name"].as_str().unwrap_or("");
        let (pods, _) = store.list_raw("Pod", Some(ns));
        let selected: Vec<&Value> = pods
            .iter()
            .filter(|p| pdb::selects(&b, &p["metadata"]["labels"]))
            .collect();
        let views: Vec<PodView> = selected.iter().map(|p| view(p)).collect();
        let scale = controller_scale(store, ns, &selected);
        let r = store.modify_raw("PodDisruptionBudget", Some(ns), name, |cur| {
            // Computed from the latest budget, so an eviction's entry in
            // `disruptedPods` written since the list is kept.
            let st = pdb::status(cur, &views, scale, now.as_second(), now_rfc);
            if same_but_times(&cur["status"], &st) {
                return Err(StoreError::Invalid(String::new()));
            }
            cur["status"] = st;
            Ok(())
        });
        if let Err(e) = r
            && !matches!(&e, StoreError::Invalid(m) if m.is_empty())
            && !matches!(e, StoreError::NotFound { .. })
        {
            tracing::warn!(pdb = name, error = %e, "pdb status update failed");
        }
    }
}

/// Whether two statuses differ in nothing but the condition's
/// `lastTransitionTime` (which only changes with its status anyway).
fn same_but_times(old: &Value, new: &Value) -> bool {
    let strip = |v: &Value| {
        let mut v = v.clone();
        if let Some(cs) = v["conditions"].as_array_mut() {
            for c in cs {
                if let Some(o) = c.as_object_mut() {
                    o.remove("lastTransitionTime");
                }
            }
        }
        v
    };
    strip(old) == strip(new)
}

/// The arithmetic's view of a wire Pod.
pub fn view(p: &Value) -> PodView {
    PodView {
        name: p["metadata"]["name"].as_str().unwrap_or("").to_string(),
        ready: is_ready(p),
        deleting: p["metadata"]["deletionTimestamp"].is_string(),
    }
}

/// The Pod's `Ready` condition is `True`.
pub fn is_ready(p: &Value) -> bool {
    p["status"]["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|c| c["type"] == "Ready" && c["status"] == "True")
}

/// The summed `spec.replicas` of the controllers of `pods`, each counted
/// once: a ReplicaSet owned by a Deployment counts as the Deployment.
fn controller_scale(store: &Store, ns: &str, pods: &[&Value]) -> i64 {
    let mut seen: HashMap<String, i64> = HashMap::new();
    let mut orphans = 0;
    for p in pods {
        let Some(owner) = controller_of(p) else {
            orphans += 1;
            continue;
        };
        if owner["kind"] != "ReplicaSet" {
            orphans += 1;
            continue;
        }
        let rs_name = owner["name"].as_str().unwrap_or("");
        let Some(rs) = store.get_raw("ReplicaSet", Some(ns), rs_name) else {
            continue;
        };
        let (uid, replicas) = match controller_of(&rs)
            .filter(|o| o["kind"] == "Deployment")
            .and_then(|o| store.get_raw("Deployment", Some(ns), o["name"].as_str()?))
        {
            Some(d) => (uid_of(&d), d["spec"]["replicas"].as_i64().unwrap_or(1)),
            None => (uid_of(&rs), rs["spec"]["replicas"].as_i64().unwrap_or(1)),
        };
        seen.insert(uid, replicas);
    }
    seen.values().sum::<i64>() + orphans
}

fn controller_of(obj: &Value) -> Option<&Value> {
    obj["metadata"]["ownerReferences"]
        .as_array()?
        .iter()
        .find(|o| o["controller"] == true)
}

fn uid_of(obj: &Value) -> String {
    obj["metadata"]["uid"].as_str().unwrap_or("").to_string()
}
