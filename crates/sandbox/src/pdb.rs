//! PodDisruptionBudget arithmetic, as Kubernetes' disruption controller and
//! eviction subresource do it (`pkg/controller/disruption`,
//! `pkg/registry/core/pod/storage/eviction.go`): how many Pods a budget
//! expects and wants healthy, how many are healthy, how many disruptions it
//! allows, its `DisruptionAllowed` condition, and whether one eviction may
//! go ahead. Pure functions over wire JSON, no I/O.
//!
//! Not for: reading Pods or writing statuses (the controller in
//! [`crate::controllers::disruption`] does that), or answering HTTP (see
//! [`crate::api::eviction`]).

use serde_json::{Map, Value, json};

/// How long an eviction's entry in `status.disruptedPods` keeps its Pod out
/// of `currentHealthy` if the Pod is never seen deleting (Kubernetes'
/// `DeletionTimeout`, 2 minutes).
pub const DELETION_TIMEOUT_SECS: i64 = 120;

/// One Pod a budget selects, as the arithmetic needs it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PodView {
    pub name: String,
    /// The `Ready` condition is `True`.
    pub ready: bool,
    /// `metadata.deletionTimestamp` is set.
    pub deleting: bool,
}

/// `intstr.GetScaledValueFromIntOrPercent`: an int as is, a `"N%"` of
/// `total`, rounded up or down.
pub fn scaled(v: &Value, total: i64, round_up: bool) -> Result<i64, String> {
    if let Some(i) = v.as_i64() {
        return Ok(i);
    }
    let s = v.as_str().ok_or_else(|| format!("invalid value {v}"))?;
    let p: i64 = s
        .strip_suffix('%')
        .and_then(|n| n.parse().ok())
        .ok_or_else(|| format!("invalid value for IntOrString: invalid value {s:?}"))?;
    let product = p * total;
    Ok(if round_up {
        (product + 99).div_euclid(100)
    } else {
        product.div_euclid(100)
    })
}

/// `(expectedPods, desiredHealthy)` for `spec`, given how many Pods the
/// selector matches and the summed scale of their controllers (Kubernetes'
/// `getExpectedPodCount`). An integer `minAvailable` expects the matched
/// Pods; a percentage, or any `maxUnavailable`, expects the controllers'
/// replicas. Percentages round up, for both fields.
pub fn expected_and_desired(spec: &Value, matched: i64, controller_scale: i64) -> (i64, i64) {
    if let Some(max) = spec.get("maxUnavailable").filter(|v| !v.is_null()) {
        let unavailable = scaled(max, controller_scale, true).unwrap_or(0);
        return (controller_scale, (controller_scale - unavailable).max(0));
    }
    match spec.get("minAvailable").filter(|v| !v.is_null()) {
        Some(Value::Number(n)) => (matched, n.as_i64().unwrap_or(0)),
        Some(v) => (
            controller_scale,
            scaled(v, controller_scale, true).unwrap_or(0),
        ),
        None => (0, 0),
    }
}

/// Seconds since the epoch of an RFC 3339 time, if it parses.
fn secs(t: &Value) -> Option<i64> {
    t.as_str()?
        .parse::<k8s_openapi::jiff::Timestamp>()
        .ok()
        .map(|t| t.as_second())
}

/// `buildDisruptedPodMap`: the entries of `old` still pending, i.e. whose
/// Pod still exists, is not yet seen deleting, and was evicted less than
/// [`DELETION_TIMEOUT_SECS`] before `now`.
pub fn pending_disruptions(old: &Value, pods: &[PodView], now: i64) -> Map<String, Value> {
    let mut out = Map::new();
    for p in pods.iter().filter(|p| !p.deleting) {
        if let Some(t) = old.get(&p.name)
            && secs(t).is_some_and(|at| at + DELETION_TIMEOUT_SECS > now)
        {
            out.insert(p.name.clone(), t.clone());
        }
    }
    out
}

/// `countHealthyPods`: Ready Pods neither deleting nor just evicted.
pub fn current_healthy(pods: &[PodView], disrupted: &Map<String, Value>) -> i64 {
    pods.iter()
        .filter(|p| p.ready && !p.deleting && !disrupted.contains_key(&p.name))
        .count() as i64
}

/// `max(0, currentHealthy − desiredHealthy)`, and 0 when nothing is expected.
pub fn disruptions_allowed(current: i64, desired: i64, expected: i64) -> i64 {
    if expected <= 0 {
        0
    } else {
        (current - desired).max(0)
    }
}

/// The `DisruptionAllowed` condition for `allowed`, keeping the old
/// condition's `lastTransitionTime` when its status does not change.
pub fn condition(allowed: i64, observed_generation: i64, old: &Value, now: &str) -> Value {
    let (status, reason) = if allowed > 0 {
        ("True", "SufficientPods")
    } else {
        ("False", "InsufficientPods")
    };
    let previous = old
        .as_array()
        .into_iter()
        .flatten()
        .find(|c| c["type"] == "DisruptionAllowed");
    let since = match previous {
        Some(c) if c["status"] == status => c["lastTransitionTime"].clone(),
        _ => json!(now),
    };
    json!({
        "type": "DisruptionAllowed",
        "status": status,
        "reason": reason,
        "message": "",
        "observedGeneration": observed_generation,
        "lastTransitionTime": since,
    })
}

/// The whole `status` the disruption controller writes for `pdb`, given
/// the Pods its selector matches (in its namespace) and their controllers'
/// summed scale. `now` is seconds since the epoch, `now_rfc` the same time
/// as Kubernetes writes it.
pub fn status(
    pdb: &Value,
    pods: &[PodView],
    controller_scale: i64,
    now: i64,
    now_rfc: &str,
) -> Value {
    let old = &pdb["status"];
    let (expected, desired) =
        expected_and_desired(&pdb["spec"], pods.len() as i64, controller_scale);
    let disrupted = pending_disruptions(&old["disruptedPods"], pods, now);
    let current = current_healthy(pods, &disrupted);
    let allowed = disruptions_allowed(current, desired, expected);
    let generation = pdb["metadata"]["generation"].as_i64().unwrap_or(1);
    let mut st = json!({
        "currentHealthy": current,
        "desiredHealthy": desired,
        "expectedPods": expected,
        "disruptionsAllowed": allowed,
        "observedGeneration": generation,
        "conditions": [condition(allowed, generation, &old["conditions"], now_rfc)],
    });
    if !disrupted.is_empty() {
        st["disruptedPods"] = Value::Object(disrupted);
    }
    st
}

/// Why an eviction may not go ahead under one budget.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// The controller has not yet seen the budget's latest spec
    /// (`observedGeneration < generation`).
    NotProcessed,
    /// `disruptionsAllowed` is 0: `needs` healthy Pods and `has` them.
    Budget { needs: i64, has: i64 },
    /// `disruptionsAllowed` is negative (a corrupt status).
    Negative,
}

impl Refusal {
    /// The `details.causes[].message` Kubernetes gives for it.
    pub fn cause(&self, pdb: &str) -> String {
        match self {
            Refusal::NotProcessed => {
                format!("The disruption budget {pdb} is still being processed by the server.")
            }
            Refusal::Budget { needs, has } => format!(
                "The disruption budget {pdb} needs {needs} healthy pods and has {has} currently"
            ),
            Refusal::Negative => "pdb disruptions allowed is negative".into(),
        }
    }
}

/// `checkAndDecrement`: takes one disruption from `pdb` for Pod `pod` at
/// `now_rfc` (decrements `disruptionsAllowed`, records the Pod in
/// `disruptedPods`, flips the condition when none are left), or says why not.
pub fn take_disruption(pdb: &mut Value, pod: &str, now_rfc: &str) -> Result<(), Refusal> {
    let generation = pdb["metadata"]["generation"].as_i64().unwrap_or(1);
    let st = &pdb["status"];
    if st["observedGeneration"].as_i64().unwrap_or(0) < generation {
        return Err(Refusal::NotProcessed);
    }
    let allowed = st["disruptionsAllowed"].as_i64().unwrap_or(0);
    if allowed < 0 {
        return Err(Refusal::Negative);
    }
    if allowed == 0 {
        return Err(Refusal::Budget {
            needs: st["desiredHealthy"].as_i64().unwrap_or(0),
            has: st["currentHealthy"].as_i64().unwrap_or(0),
        });
    }
    let st = &mut pdb["status"];
    st["disruptionsAllowed"] = json!(allowed - 1);
    if allowed - 1 == 0 {
        let observed = st["observedGeneration"].as_i64().unwrap_or(generation);
        st["conditions"] = json!([condition(0, observed, &st["conditions"], now_rfc)]);
    }
    if !st["disruptedPods"].is_object() {
        st["disruptedPods"] = json!({});
    }
    st["disruptedPods"][pod] = json!(now_rfc);
    Ok(())
}

/// Whether a budget's `spec.selector` selects Pods with `labels`. In
/// policy/v1 an empty selector selects every Pod of the namespace; a
/// missing one selects none.
pub fn selects(pdb: &Value, labels: &Value) -> bool {
    let sel = &pdb["spec"]["selector"];
    if sel.is_null() {
        return false;
    }
    let Ok(sel) = serde_json::from_value(sel.clone()) else {
        return false;
    };
    let labels: Option<std::collections::BTreeMap<String, String>> =
        serde_json::from_value(labels.clone()).ok();
    crate::controllers::selector_matches(&sel, labels.as_ref())
}

/// API validation of a budget's spec (422 messages as Kubernetes words them).
pub fn validate(pdb: &Value) -> Result<(), String> {
    let spec = &pdb["spec"];
    let min = spec.get("minAvailable").filter(|v| !v.is_null());
    let max = spec.get("maxUnavailable").filter(|v| !v.is_null());
    if min.is_some() && max.is_some() {
        return Err(
            "spec: Invalid value: minAvailable and maxUnavailable cannot be both set".into(),
        );
    }
    for (field, v) in [("minAvailable", min), ("maxUnavailable", max)] {
        let Some(v) = v else { continue };
        match v {
            Value::Number(n) if n.as_i64().is_some_and(|i| i < 0) => {
                return Err(format!(
                    "spec.{field}: Invalid value: {n}: must be greater than or equal to 0"
                ));
            }
            Value::String(s) => {
                let p = s.strip_suffix('%').and_then(|p| p.parse::<i64>().ok());
                match p {
                    None => {
                        return Err(format!(
                            "spec.{field}: Invalid value: \"{s}\": a valid percent string must be a numeric string followed by an ending '%' (e.g. '1%',  or '93%', regex used for validation is '[0-9]+%')"
                        ));
                    }
                    Some(p) if !(0..=100).contains(&p) => {
                        return Err(format!(
                            "spec.{field}: Invalid value: \"{s}\": must be no greater than 100%"
                        ));
                    }
                    _ => {}
                }
            }
            _ => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(name: &str, ready: bool, deleting: bool) -> PodView {
        PodView {
            name: name.into(),
            ready,
            deleting,
        }
    }

    #[test]
    fn percentages_scale_up_or_down_and_ints_pass_through() {
        assert_eq!(scaled(&json!(2), 10, true), Ok(2));
        assert_eq!(scaled(&json!("50%"), 3, true), Ok(2));
        assert_eq!(scaled(&json!("50%"), 3, false), Ok(1));
        assert_eq!(scaled(&json!("34%"), 3, true), Ok(2));
        assert_eq!(scaled(&json!("33%"), 3, true), Ok(1));
        assert_eq!(scaled(&json!("100%"), 7, true), Ok(7));
        assert_eq!(scaled(&json!("0%"), 7, true), Ok(0));
        assert!(scaled(&json!("x%"), 7, true).is_err());
        assert!(scaled(&json!("5"), 7, true).is_err());
    }

    #[test]
    fn integer_min_available_expects_the_matched_pods() {
        assert_eq!(
            expected_and_desired(&json!({"minAvailable": 2}), 3, 5),
            (3, 2)
        );
    }

    #[test]
    fn percent_min_available_rounds_up_over_the_controllers_scale() {
        assert_eq!(
            expected_and_desired(&json!({"minAvailable": "50%"}), 2, 3),
            (3, 2)
        );
        assert_eq!(
            expected_and_desired(&json!({"minAvailable": "100%"}), 2, 4),
            (4, 4)
        );
    }

    #[test]
    fn max_unavailable_rounds_up_then_is_taken_from_the_expected() {
        assert_eq!(
            expected_and_desired(&json!({"maxUnavailable": 1}), 3, 3),
            (3, 2)
        );
        // 25% of 3 is 0.75: rounds up to 1, so 2 must stay healthy.
        assert_eq!(
            expected_and_desired(&json!({"maxUnavailable": "25%"}), 3, 3),
            (3, 2)
        );
        assert_eq!(
            expected_and_desired(&json!({"maxUnavailable": 5}), 3, 3),
            (3, 0)
        );
    }

    #[test]
    fn a_budget_with_neither_field_expects_nothing() {
        assert_eq!(expected_and_desired(&json!({}), 3, 3), (0, 0));
    }

    #[test]
    fn healthy_counts_ready_pods_not_deleting_nor_just_evicted() {
        let pods = [
            pod("a", true, false),
            pod("b", true, true),
            pod("c", false, false),
            pod("d", true, false),
        ];
        let mut disrupted = Map::new();
        disrupted.insert("d".into(), json!("2026-01-01T00:00:00Z"));
        assert_eq!(current_healthy(&pods, &disrupted), 1);
        assert_eq!(current_healthy(&pods, &Map::new()), 2);
    }

    #[test]
    fn disrupted_entries_go_when_the_pod_deletes_vanishes_or_times_out() {
        let t0 = "2026-01-01T00:00:00Z";
        let at0 = secs(&json!(t0)).unwrap();
        let old = json!({"a": t0, "b": t0, "gone": t0, "c": t0});
        let pods = [
            pod("a", true, false),
            pod("b", true, true),
            pod("c", true, false),
        ];
        let kept = pending_disruptions(&old, &pods, at0 + 1);
        assert_eq!(
            kept.keys().collect::<Vec<_>>(),
            vec!["a", "c"],
            "deleting and vanished pods leave the map"
        );
        let later = pending_disruptions(&old, &pods, at0 + DELETION_TIMEOUT_SECS);
        assert!(later.is_empty(), "entries time out after 2 minutes");
    }

    #[test]
    fn disruptions_allowed_is_never_negative_and_zero_when_nothing_expected() {
        assert_eq!(disruptions_allowed(3, 2, 3), 1);
        assert_eq!(disruptions_allowed(1, 2, 3), 0);
        assert_eq!(disruptions_allowed(3, 0, 0), 0);
        assert_eq!(disruptions_allowed(3, 0, 3), 3);
    }

    #[test]
    fn condition_reasons_and_transition_time() {
        let c = condition(1, 4, &Value::Null, "T1");
        assert_eq!(c["status"], "True");
        assert_eq!(c["reason"], "SufficientPods");
        assert_eq!(c["observedGeneration"], 4);
        let same = condition(2, 4, &json!([c.clone()]), "T2");
        assert_eq!(same["lastTransitionTime"], "T1");
        let flipped = condition(0, 4, &json!([c]), "T3");
        assert_eq!(flipped["status"], "False");
        assert_eq!(flipped["reason"], "InsufficientPods");
        assert_eq!(flipped["lastTransitionTime"], "T3");
    }

    #[test]
    fn status_follows_readiness() {
        let pdb = json!({"metadata": {"generation": 1}, "spec": {"minAvailable": 2}});
        let ready = [
            pod("a", true, false),
            pod("b", true, false),
            pod("c", true, false),
        ];
        let s = status(&pdb, &ready, 3, 0, "T");
        assert_eq!(s["currentHealthy"], 3);
        assert_eq!(s["desiredHealthy"], 2);
        assert_eq!(s["expectedPods"], 3);
        assert_eq!(s["disruptionsAllowed"], 1);
        assert_eq!(s["observedGeneration"], 1);
        assert_eq!(s["conditions"][0]["reason"], "SufficientPods");
        let one_down = [
            pod("a", true, false),
            pod("b", false, false),
            pod("c", true, false),
        ];
        let s = status(&pdb, &one_down, 3, 0, "T");
        assert_eq!(s["disruptionsAllowed"], 0);
        assert_eq!(s["conditions"][0]["reason"], "InsufficientPods");
    }

    #[test]
    fn taking_a_disruption_decrements_and_records_the_pod() {
        let mut pdb = json!({"metadata": {"generation": 1}, "spec": {"minAvailable": 2},
            "status": {"observedGeneration": 1, "disruptionsAllowed": 1, "currentHealthy": 3, "desiredHealthy": 2}});
        take_disruption(&mut pdb, "a", "T").unwrap();
        assert_eq!(pdb["status"]["disruptionsAllowed"], 0);
        assert_eq!(pdb["status"]["disruptedPods"]["a"], "T");
        assert_eq!(pdb["status"]["conditions"][0]["reason"], "InsufficientPods");
        assert_eq!(
            take_disruption(&mut pdb, "b", "T"),
            Err(Refusal::Budget { needs: 2, has: 3 })
        );
    }

    #[test]
    fn a_budget_not_yet_observed_refuses() {
        let mut pdb = json!({"metadata": {"generation": 2},
            "status": {"observedGeneration": 1, "disruptionsAllowed": 5}});
        assert_eq!(
            take_disruption(&mut pdb, "a", "T"),
            Err(Refusal::NotProcessed)
        );
        assert_eq!(
            Refusal::NotProcessed.cause("web-pdb"),
            "The disruption budget web-pdb is still being processed by the server."
        );
        assert_eq!(
            Refusal::Budget { needs: 2, has: 2 }.cause("web-pdb"),
            "The disruption budget web-pdb needs 2 healthy pods and has 2 currently"
        );
    }

    #[test]
    fn empty_selector_selects_all_and_missing_selects_none() {
        let labels = json!({"app": "web"});
        assert!(selects(&json!({"spec": {"selector": {}}}), &labels));
        assert!(!selects(&json!({"spec": {}}), &labels));
        assert!(selects(
            &json!({"spec": {"selector": {"matchLabels": {"app": "web"}}}}),
            &labels
        ));
        assert!(!selects(
            &json!({"spec": {"selector": {"matchLabels": {"app": "db"}}}}),
            &labels
        ));
    }

    #[test]
    fn validation_refuses_both_fields_and_bad_percentages() {
        assert!(validate(&json!({"spec": {"minAvailable": 1, "maxUnavailable": 1}})).is_err());
        assert!(validate(&json!({"spec": {"minAvailable": "120%"}})).is_err());
        assert!(validate(&json!({"spec": {"minAvailable": "abc"}})).is_err());
        assert!(validate(&json!({"spec": {"maxUnavailable": -1}})).is_err());
        assert!(validate(&json!({"spec": {"maxUnavailable": "25%"}})).is_ok());
    }
}
