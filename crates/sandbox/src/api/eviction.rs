//! `POST .../pods/{name}/eviction`: the Eviction API as Kubernetes serves
//! it (`pkg/registry/core/pod/storage/eviction.go`). A Pod covered by a
//! PodDisruptionBudget with no disruption left is refused with 429 and
//! Kubernetes' message; otherwise one disruption is taken from the budget
//! (recorded in its `status.disruptedPods`, atomically, so two evictions in
//! quick succession cannot both pass on one allowed disruption) and the
//! Pod is deleted as a DELETE would delete it (graceful), after it gets
//! the `DisruptionTarget` condition (reason `EvictionByEvictionAPI`) that
//! Kubernetes adds since 1.26 so that whoever watches the Pod can tell an
//! eviction from its owner's deletion. Every decision is recorded in the
//! ground truth.
//!
//! Not for: the budget arithmetic (see [`crate::pdb`]) or keeping budgets'
//! status (see [`crate::controllers::disruption`]).

use http::Response;
use serde_json::{Value, json};

use super::handlers::delete_pod;
use super::resources;
use super::status::ApiError;
use super::{ApiState, Body, Call, Target, json_response};
use crate::controllers::disruption::is_ready;
use crate::pdb::{self, Refusal};
use crate::store::StoreError;
use crate::truth::EvictionOutcome;

const TOO_MANY: &str = "Cannot evict pod as it would violate the pod's disruption budget.";
const SEVERAL: &str = "This pod has more than one PodDisruptionBudget, which the eviction subresource does not support.";

/// Answers one eviction request.
pub fn evict(state: &ApiState, t: &Target, call: &Call) -> Result<Response<Body>, ApiError> {
    let body: Value = serde_json::from_slice(&call.body)
        .map_err(|e| ApiError::bad_request(format!("the Eviction body is not valid JSON: {e}")))?;
    if !body.is_object() {
        return Err(ApiError::bad_request(
            "the Eviction body must be a JSON object",
        ));
    }
    let ns = t.namespace.as_deref().unwrap_or("default");
    let name = t.name.as_deref().unwrap_or("");
    if let Some(n) = body["metadata"]["name"].as_str()
        && !n.is_empty()
        && n != name
    {
        return Err(ApiError::bad_request(
            "name in URL does not match name in Eviction object",
        ));
    }
    let pod = state
        .store
        .get_raw("Pod", Some(ns), name)
        .ok_or_else(|| ApiError::not_found(t.res, name))?;
    let opts = &body["deleteOptions"];
    let grace = opts["gracePeriodSeconds"].as_i64();
    let dry = call.query.get("dryRun").is_some_and(|v| !v.is_empty())
        || opts["dryRun"].as_array().is_some_and(|a| !a.is_empty());
    let record = |outcome, pdb: Option<String>| {
        if let (false, Some(gt)) = (dry, &state.ground_truth) {
            gt.eviction(ns, name, outcome, pdb);
        }
    };
    let evicted = |pdb: Option<String>| -> Result<Response<Body>, ApiError> {
        if !dry {
            let marked = mark_disruption_target(state, ns, name).unwrap_or_else(|| pod.clone());
            delete_pod(state, t, &marked, grace)?;
        }
        record(EvictionOutcome::Evicted, pdb);
        Ok(json_response(
            201,
            &json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201}),
        ))
    };
    if budget_does_not_apply(&pod) {
        return evicted(None);
    }
    let (all, _) = state.store.list_raw("PodDisruptionBudget", Some(ns));
    let covering: Vec<&Value> = all
        .iter()
        .filter(|b| pdb::selects(b, &pod["metadata"]["labels"]))
        .collect();
    let names: Vec<&str> = covering
        .iter()
        .filter_map(|b| b["metadata"]["name"].as_str())
        .collect();
    match covering.as_slice() {
        [] => evicted(None),
        [budget] => {
            let pdb_name = names[0].to_string();
            if unhealthy_may_go(budget, &pod) {
                return evicted(Some(pdb_name));
            }
            match take(state, ns, &pdb_name, name, dry) {
                Ok(()) => evicted(Some(pdb_name)),
                Err(e) => {
                    record(EvictionOutcome::Refused, Some(pdb_name));
                    Err(e)
                }
            }
        }
        _ => {
            record(EvictionOutcome::Refused, Some(names.join(",")));
            let mut e = ApiError::new(
                500,
                "InternalError",
                format!("Internal error occurred: {SEVERAL}"),
            );
            e.details = Some(json!({"causes": [{"message": SEVERAL}]}));
            Err(e)
        }
    }
}

/// The `DisruptionTarget` condition Kubernetes' eviction handler adds
/// before it deletes (`addConditionAndDeletePod`); the Pod as it is then.
/// A Pod already terminating keeps what it has.
fn mark_disruption_target(state: &ApiState, ns: &str, name: &str) -> Option<Value> {
    state
        .store
        .modify_raw("Pod", Some(ns), name, |p| {
            if !p["metadata"]["deletionTimestamp"].is_null() {
                return Ok(());
            }
            let condition = json!({
                "type": "DisruptionTarget",
                "status": "True",
                "reason": "EvictionByEvictionAPI",
                "message": "Eviction API: evicting",
                "lastTransitionTime": crate::store::now_value(),
            });
            let status = &mut p["status"];
            if !status["conditions"].is_array() {
                status["conditions"] = json!([]);
            }
            if let Some(list) = status["conditions"].as_array_mut() {
                list.retain(|c| c["type"] != "DisruptionTarget");
                list.push(condition);
            }
            Ok(())
        })
        .ok()
}

/// `canIgnorePDB`: a Pod that is not running (pending or finished) or is
/// already terminating is deleted without consulting any budget.
fn budget_does_not_apply(pod: &Value) -> bool {
    matches!(
        pod["status"]["phase"].as_str(),
        None | Some("Pending" | "Succeeded" | "Failed")
    ) || pod["metadata"]["deletionTimestamp"].is_string()
}

/// A Pod that is not Ready does not count as healthy, so evicting it takes
/// nothing from the budget: with `unhealthyPodEvictionPolicy: AlwaysAllow`
/// always, by default (`IfHealthyBudget`) when the budget is met.
fn unhealthy_may_go(budget: &Value, pod: &Value) -> bool {
    if is_ready(pod) {
        return false;
    }
    if budget["spec"]["unhealthyPodEvictionPolicy"] == "AlwaysAllow" {
        return true;
    }
    let st = &budget["status"];
    let desired = st["desiredHealthy"].as_i64().unwrap_or(0);
    st["currentHealthy"].as_i64().unwrap_or(0) >= desired && desired > 0
}

/// Takes one disruption from budget `pdb_name` for `pod` in one atomic
/// store write (checked only, on a dry run), or the refusal as Kubernetes
/// words it.
fn take(state: &ApiState, ns: &str, pdb_name: &str, pod: &str, dry: bool) -> Result<(), ApiError> {
    let res = resources::for_kind("PodDisruptionBudget").expect("pdbs are served");
    let now = crate::store::now_value();
    let now = now.as_str().unwrap_or("");
    let mut refusal = None;
    let r = state
        .store
        .modify_raw("PodDisruptionBudget", Some(ns), pdb_name, |b| {
            let mut next = b.clone();
            if let Err(why) = pdb::take_disruption(&mut next, pod, now) {
                refusal = Some(why);
                return Err(StoreError::Invalid(String::new()));
            }
            if !dry {
                *b = next;
            }
            Ok(())
        });
    match (r, refusal) {
        (_, Some(why)) => Err(refused(res, pdb_name, &why)),
        (Ok(_), None) => Ok(()),
        (Err(e), None) => Err(ApiError::from_store(e, res, pdb_name)),
    }
}

fn refused(res: &resources::ResourceDef, pdb_name: &str, why: &Refusal) -> ApiError {
    match why {
        Refusal::Negative => ApiError::forbidden(format!(
            "{} \"{pdb_name}\" is forbidden: {}",
            res.qualified(),
            why.cause(pdb_name)
        )),
        _ => {
            let mut e = ApiError::new(429, "TooManyRequests", TOO_MANY);
            let mut details =
                json!({"causes": [{"reason": "DisruptionBudget", "message": why.cause(pdb_name)}]});
            if *why == Refusal::NotProcessed {
                details["retryAfterSeconds"] = json!(10);
            }
            e.details = Some(details);
            e
        }
    }
}
