//! autoscaling/v1 HorizontalPodAutoscalers: the autoscaling/v2 objects the
//! store keeps, converted on the way out and in as Kubernetes converts
//! them (`pkg/apis/autoscaling/v1/conversion.go`). kubectl up to 1.33
//! creates its `kubectl autoscale` HPAs through v1.
//!
//! v1 has one metric, `targetCPUUtilizationPercentage` (the first `cpu`
//! `averageUtilization` metric), and one reading,
//! `currentCPUUtilizationPercentage`. What v1 cannot say travels in the
//! annotations Kubernetes uses for it (other metrics, current metrics,
//! behavior, conditions), so a v1 round trip loses nothing. Simplified:
//! those annotations hold the v2 shapes (Kubernetes writes v1's
//! MetricSpec); only the sandbox reads them back.
//!
//! Not for: defaults and validation (see [`crate::hpa`]).

use serde_json::{Map, Value, json};

/// Metrics other than the CPU utilisation one.
pub const METRICS_ANNOTATION: &str = "autoscaling.alpha.kubernetes.io/metrics";
/// `status.currentMetrics`.
pub const CURRENT_METRICS_ANNOTATION: &str = "autoscaling.alpha.kubernetes.io/current-metrics";
/// `spec.behavior`.
pub const BEHAVIOR_ANNOTATION: &str = "autoscaling.alpha.kubernetes.io/behavior";
/// `status.conditions`.
pub const CONDITIONS_ANNOTATION: &str = "autoscaling.alpha.kubernetes.io/conditions";

const ROUND_TRIP: &[&str] = &[
    METRICS_ANNOTATION,
    CURRENT_METRICS_ANNOTATION,
    BEHAVIOR_ANNOTATION,
    CONDITIONS_ANNOTATION,
];

/// Whether `m` is the metric v1's `targetCPUUtilizationPercentage` is.
fn is_cpu_utilization(m: &Value) -> bool {
    m["type"] == "Resource"
        && m["resource"]["name"] == "cpu"
        && m["resource"]["target"]["averageUtilization"].is_i64()
}

/// The v1 view of a stored (v2) HPA.
pub fn v2_to_v1(v2: &Value) -> Value {
    let mut meta = v2["metadata"].clone();
    let mut ann = Map::new();
    let spec = &v2["spec"];
    let metrics = spec["metrics"].as_array().cloned().unwrap_or_default();
    let cpu = metrics
        .iter()
        .find(|m| is_cpu_utilization(m))
        .map(|m| m["resource"]["target"]["averageUtilization"].clone());
    let others: Vec<&Value> = metrics.iter().filter(|m| !is_cpu_utilization(m)).collect();
    if !others.is_empty() {
        ann.insert(METRICS_ANNOTATION.into(), json!(json!(others).to_string()));
    }
    if spec["behavior"].is_object() {
        ann.insert(
            BEHAVIOR_ANNOTATION.into(),
            json!(spec["behavior"].to_string()),
        );
    }
    let mut out_spec = json!({
        "scaleTargetRef": spec["scaleTargetRef"],
        "maxReplicas": spec["maxReplicas"],
    });
    if !spec["minReplicas"].is_null() {
        out_spec["minReplicas"] = spec["minReplicas"].clone();
    }
    if let Some(c) = cpu {
        out_spec["targetCPUUtilizationPercentage"] = c;
    }
    let mut out = json!({
        "kind": "HorizontalPodAutoscaler",
        "apiVersion": "autoscaling/v1",
        "metadata": meta.clone(),
        "spec": out_spec,
    });
    let st = &v2["status"];
    if st.is_object() {
        let mut s = json!({
            "currentReplicas": st["currentReplicas"].as_i64().unwrap_or(0),
            "desiredReplicas": st["desiredReplicas"].as_i64().unwrap_or(0),
        });
        for k in ["observedGeneration", "lastScaleTime"] {
            if !st[k].is_null() {
                s[k] = st[k].clone();
            }
        }
        let current = st["currentMetrics"].as_array().cloned().unwrap_or_default();
        if let Some(u) = current
            .iter()
            .find(|m| m["type"] == "Resource" && m["resource"]["name"] == "cpu")
            .map(|m| &m["resource"]["current"]["averageUtilization"])
            .filter(|u| u.is_i64())
        {
            s["currentCPUUtilizationPercentage"] = u.clone();
        }
        if !current.is_empty() {
            ann.insert(
                CURRENT_METRICS_ANNOTATION.into(),
                json!(json!(current).to_string()),
            );
        }
        if st["conditions"].as_array().is_some_and(|c| !c.is_empty()) {
            ann.insert(
                CONDITIONS_ANNOTATION.into(),
                json!(st["conditions"].to_string()),
            );
        }
        out["status"] = s;
    }
    if !ann.is_empty() {
        if !meta.is_object() {
            meta = json!({});
        }
        let a = meta["annotations"].as_object().cloned().unwrap_or_default();
        let mut merged = a;
        merged.extend(ann);
        meta["annotations"] = Value::Object(merged);
        out["metadata"] = meta;
    }
    out
}

/// A v1 HPA (a request body, or a patched v1 view) as the store keeps it.
/// Errors are the request's: a field of the wrong type.
pub fn v1_to_v2(v1: &Value) -> Result<Value, String> {
    // Typed first, so a wrong type is refused as for any other kind.
    let _: k8s_openapi::api::autoscaling::v1::HorizontalPodAutoscaler =
        serde_json::from_value(v1.clone()).map_err(|e| e.to_string())?;
    let mut meta = v1["metadata"].clone();
    let mut taken = Map::new();
    if let Some(a) = meta.get_mut("annotations").and_then(Value::as_object_mut) {
        for k in ROUND_TRIP {
            if let Some(v) = a.remove(*k) {
                taken.insert((*k).to_string(), v);
            }
        }
        if a.is_empty()
            && let Some(m) = meta.as_object_mut()
        {
            m.remove("annotations");
        }
    }
    // Kubernetes ignores round-trip annotations it cannot parse.
    let parsed = |k: &str| -> Option<Value> {
        serde_json::from_str(taken.get(k)?.as_str()?)
            .ok()
            .filter(|v: &Value| !v.is_null())
    };
    let spec = &v1["spec"];
    let mut metrics: Vec<Value> = parsed(METRICS_ANNOTATION)
        .and_then(|v| v.as_array().cloned())
        .unwrap_or_default();
    if let Some(c) = spec["targetCPUUtilizationPercentage"].as_i64() {
        metrics.push(json!({"type": "Resource", "resource": {"name": "cpu",
            "target": {"type": "Utilization", "averageUtilization": c}}}));
    }
    if metrics.is_empty() {
        // v1's implicit default, made explicit as Kubernetes does here.
        metrics.push(
            serde_json::to_value(crate::hpa::cpu_metric(crate::hpa::DEFAULT_CPU_UTILIZATION))
                .map_err(|e| e.to_string())?,
        );
    }
    let mut out_spec = json!({
        "scaleTargetRef": spec["scaleTargetRef"],
        "maxReplicas": spec["maxReplicas"],
        "metrics": metrics,
    });
    if !spec["minReplicas"].is_null() {
        out_spec["minReplicas"] = spec["minReplicas"].clone();
    }
    if let Some(b) = parsed(BEHAVIOR_ANNOTATION) {
        out_spec["behavior"] = b;
    }
    let mut out = json!({
        "kind": "HorizontalPodAutoscaler",
        "apiVersion": "autoscaling/v2",
        "metadata": meta,
        "spec": out_spec,
    });
    let st = &v1["status"];
    if st.is_object() {
        let mut s = json!({
            "currentReplicas": st["currentReplicas"],
            "desiredReplicas": st["desiredReplicas"].as_i64().unwrap_or(0),
        });
        for k in ["observedGeneration", "lastScaleTime"] {
            if !st[k].is_null() {
                s[k] = st[k].clone();
            }
        }
        if let Some(m) = parsed(CURRENT_METRICS_ANNOTATION) {
            s["currentMetrics"] = m;
        } else if let Some(u) = st["currentCPUUtilizationPercentage"].as_i64() {
            s["currentMetrics"] = json!([{"type": "Resource", "resource": {"name": "cpu",
                "current": {"averageUtilization": u}}}]);
        }
        if let Some(c) = parsed(CONDITIONS_ANNOTATION) {
            s["conditions"] = c;
        }
        out["status"] = s;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stored() -> Value {
        json!({
            "kind": "HorizontalPodAutoscaler", "apiVersion": "autoscaling/v2",
            "metadata": {"name": "web", "namespace": "default", "resourceVersion": "7",
                         "annotations": {"sandbox.baton.dev/cpu-utilization": "120"}},
            "spec": {
                "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
                "minReplicas": 2, "maxReplicas": 6,
                "metrics": [
                    {"type": "Resource", "resource": {"name": "memory", "target": {"type": "Utilization", "averageUtilization": 70}}},
                    {"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 50}}},
                ],
                "behavior": {"scaleDown": {"stabilizationWindowSeconds": 0}},
            },
            "status": {
                "currentReplicas": 3, "desiredReplicas": 4, "lastScaleTime": "2026-01-01T00:00:00Z",
                "currentMetrics": [{"type": ""}, {"type": "Resource", "resource": {"name": "cpu", "current": {"averageUtilization": 120, "averageValue": "120m"}}}],
                "conditions": [{"type": "AbleToScale", "status": "True", "reason": "SucceededRescale", "message": "m"}],
            },
        })
    }

    #[test]
    fn v1_shows_the_cpu_target_and_reading_and_keeps_the_rest_in_annotations() {
        let v1 = v2_to_v1(&stored());
        assert_eq!(v1["apiVersion"], "autoscaling/v1");
        assert_eq!(v1["spec"]["targetCPUUtilizationPercentage"], 50);
        assert_eq!(v1["spec"]["minReplicas"], 2);
        assert!(v1["spec"]["metrics"].is_null());
        assert_eq!(v1["status"]["currentCPUUtilizationPercentage"], 120);
        assert_eq!(v1["status"]["desiredReplicas"], 4);
        let a = &v1["metadata"]["annotations"];
        assert_eq!(a["sandbox.baton.dev/cpu-utilization"], "120");
        let others: Value = serde_json::from_str(a[METRICS_ANNOTATION].as_str().unwrap()).unwrap();
        assert_eq!(others[0]["resource"]["name"], "memory");
        assert!(a[BEHAVIOR_ANNOTATION].is_string());
        assert!(a[CONDITIONS_ANNOTATION].is_string());
        let typed: k8s_openapi::api::autoscaling::v1::HorizontalPodAutoscaler =
            serde_json::from_value(v1).unwrap();
        assert_eq!(typed.spec.max_replicas, 6);
    }

    #[test]
    fn a_v1_round_trip_changes_nothing() {
        let back = v1_to_v2(&v2_to_v1(&stored())).unwrap();
        let want = stored();
        assert_eq!(back["metadata"], want["metadata"]);
        assert_eq!(back["status"], want["status"]);
        // The CPU metric comes back after the others, as in Kubernetes.
        assert_eq!(back["spec"]["metrics"], want["spec"]["metrics"]);
        assert_eq!(back["spec"]["behavior"], want["spec"]["behavior"]);
    }

    #[test]
    fn kubectl_autoscales_v1_body_becomes_a_v2_object() {
        let body = json!({"kind": "HorizontalPodAutoscaler", "apiVersion": "autoscaling/v1",
            "metadata": {"name": "web-server", "creationTimestamp": null},
            "spec": {"scaleTargetRef": {"kind": "Deployment", "name": "web-server", "apiVersion": "apps/v1"},
                     "minReplicas": 2, "maxReplicas": 6, "targetCPUUtilizationPercentage": 50},
            "status": {"currentReplicas": 0, "desiredReplicas": 0}});
        let v2 = v1_to_v2(&body).unwrap();
        assert_eq!(
            v2["spec"]["metrics"],
            json!([{"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 50}}}])
        );
        assert!(v2["metadata"].get("annotations").is_none());
        let none = json!({"metadata": {"name": "x"}, "spec": {"scaleTargetRef": {"kind": "Deployment", "name": "x"}, "maxReplicas": 3}});
        assert_eq!(
            v1_to_v2(&none).unwrap()["spec"]["metrics"][0]["resource"]["target"]["averageUtilization"],
            80
        );
        assert!(
            v1_to_v2(&json!({"metadata": {"name": "x"}, "spec": {"maxReplicas": "three"}}))
                .is_err()
        );
    }
}
