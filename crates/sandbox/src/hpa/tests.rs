//! The HPA rules against hand-worked cases from Kubernetes' own
//! (`horizontal_test.go`, `replica_calculator_test.go`) shapes.

use super::*;
use k8s_openapi::api::autoscaling::v2::CrossVersionObjectReference;
use serde_json::json;

fn t(s: i64) -> Timestamp {
    Timestamp::from_second(1_700_000_000 + s).unwrap()
}

fn spec(min: i32, max: i32, target: i32) -> HorizontalPodAutoscalerSpec {
    HorizontalPodAutoscalerSpec {
        scale_target_ref: CrossVersionObjectReference {
            api_version: Some("apps/v1".into()),
            kind: "Deployment".into(),
            name: "web".into(),
        },
        min_replicas: Some(min),
        max_replicas: max,
        metrics: Some(vec![cpu_metric(target)]),
        behavior: None,
    }
}

/// `spec` with a `behavior` given as JSON, defaults filled as the API does.
fn with_behavior(mut s: HorizontalPodAutoscalerSpec, b: Value) -> HorizontalPodAutoscalerSpec {
    s.behavior = Some(serde_json::from_value(b).unwrap());
    set_defaults(&mut s);
    s
}

fn pods(n: usize, request: Option<i64>) -> Vec<PodRequests> {
    (0..n)
        .map(|i| PodRequests {
            name: format!("web-{i}"),
            containers: vec![("nginx".into(), request)],
        })
        .collect()
}

fn readings(util: Option<&str>, n: usize) -> Readings {
    Readings {
        cpu_utilization: util.map(str::to_string),
        pods: pods(n, Some(100)),
    }
}

/// One sync at `now` with the metric at `util` percent.
fn sync(
    s: &HorizontalPodAutoscalerSpec,
    current: i32,
    util: &str,
    mem: &mut Memory,
    now: Timestamp,
) -> Decision {
    let r = readings(Some(util), current.max(0) as usize);
    let metrics = s.metrics.clone().unwrap_or_default();
    decide(
        s,
        current,
        || compute_metrics(&metrics, current, &r, Tolerances::of(s)),
        mem,
        now,
        DEFAULT_DOWNSCALE_WINDOW,
    )
}

/// The controller's part after a successful write, for multi-step cases.
fn applied(
    s: &HorizontalPodAutoscalerSpec,
    d: &Decision,
    current: i32,
    mem: &mut Memory,
    now: Timestamp,
) -> i32 {
    match &d.rescale {
        Some((to, _)) => {
            let rules = behavior_rules(s.behavior.as_ref(), DEFAULT_DOWNSCALE_WINDOW);
            mem.record_scale(rules.as_ref(), current, *to, now);
            *to
        }
        None => current,
    }
}

fn condition<'a>(d: &'a Decision, ty: &str) -> &'a Cond {
    d.conditions
        .iter()
        .rev()
        .find(|c| c.type_ == ty)
        .unwrap_or_else(|| panic!("no {ty} condition in {:?}", d.conditions))
}

#[test]
fn quantities_read_as_millis_rounded_up() {
    assert_eq!(milli("100m"), Some(100));
    assert_eq!(milli("0.5"), Some(500));
    assert_eq!(milli("0.1"), Some(100));
    assert_eq!(milli("2"), Some(2000));
    assert_eq!(milli("1.5"), Some(1500));
    assert_eq!(milli("0.0001"), Some(1));
    assert_eq!(milli("1k"), Some(1_000_000));
    assert_eq!(milli("1Gi"), None);
    assert_eq!(milli("lots"), None);
    assert_eq!(milli(""), None);
    assert_eq!(format_milli(120), "120m");
    assert_eq!(format_milli(2000), "2");
    assert_eq!(format_milli(1500), "1500m");
}

#[test]
fn the_annotation_is_a_whole_percentage() {
    assert_eq!(parse_utilization("120"), Some(120));
    assert_eq!(parse_utilization(" 80% "), Some(80));
    assert_eq!(parse_utilization("0"), Some(0));
    assert_eq!(parse_utilization("-5"), None);
    assert_eq!(parse_utilization("1.5"), None);
    assert_eq!(parse_utilization("high"), None);
}

#[test]
fn desired_is_ceil_of_current_times_ratio_outside_the_tolerance() {
    let tol = Tolerances::default();
    assert_eq!(desired_for_ratio(2, 200.0 / 50.0, tol), 8);
    assert_eq!(desired_for_ratio(3, 120.0 / 100.0, tol), 4, "3.6 rounds up");
    assert_eq!(desired_for_ratio(4, 25.0 / 50.0, tol), 2);
    assert_eq!(desired_for_ratio(5, 0.0, tol), 0);
    // |ratio − 1| ≤ 0.1 is no change, both ends inclusive.
    assert_eq!(desired_for_ratio(10, 1.1, tol), 10);
    assert_eq!(desired_for_ratio(10, 0.9, tol), 10);
    assert_eq!(desired_for_ratio(10, 1.11, tol), 12);
    assert_eq!(desired_for_ratio(10, 0.89, tol), 9);
    let tight = Tolerances { down: 0.0, up: 0.5 };
    assert_eq!(desired_for_ratio(10, 1.4, tight), 10);
    assert_eq!(desired_for_ratio(10, 0.95, tight), 10, "ceil(9.5)");
    assert_eq!(desired_for_ratio(10, 0.91, tight), 10, "ceil(9.1)");
    assert_eq!(desired_for_ratio(10, 0.89, tight), 9);
}

#[test]
fn behavior_tolerances_override_the_default() {
    let s = with_behavior(
        spec(1, 10, 50),
        json!({"scaleUp": {"tolerance": "0.05"}, "scaleDown": {"tolerance": "200m"}}),
    );
    assert_eq!(
        Tolerances::of(&s),
        Tolerances {
            down: 0.2,
            up: 0.05
        }
    );
    assert_eq!(Tolerances::of(&spec(1, 10, 50)), Tolerances::default());
}

#[test]
fn a_missing_annotation_is_a_missing_metric() {
    let m = [cpu_metric(50)];
    let out = compute_metrics(&m, 3, &readings(None, 3), Tolerances::default());
    let failed = out.proposal.unwrap_err();
    assert_eq!(failed.first.reason, "FailedGetResourceMetric");
    assert!(
        failed.first.message.starts_with(
            "failed to get cpu utilization: unable to get metrics for resource cpu: no metrics returned from resource metrics API"
        ),
        "{}",
        failed.first.message
    );
    assert!(failed.first.message.contains(CPU_UTILIZATION));
    assert!(
        failed
            .message
            .starts_with("invalid metrics (1 invalid out of 1), first error is: failed to get cpu resource metric value: failed to get cpu utilization"),
        "{}",
        failed.message
    );
    assert_eq!(
        out.statuses,
        [MetricStatus::default()],
        "an empty entry, as Kubernetes writes"
    );
    let bad = compute_metrics(&m, 3, &readings(Some("lots"), 3), Tolerances::default());
    assert!(bad.proposal.unwrap_err().first.message.contains("\"lots\""));
    let no_pods = compute_metrics(&m, 3, &readings(Some("80"), 0), Tolerances::default());
    assert!(no_pods.proposal.is_err());
}

#[test]
fn pods_without_a_cpu_request_have_no_utilization() {
    let r = Readings {
        cpu_utilization: Some("100".into()),
        pods: vec![
            pods(1, Some(100)).remove(0),
            PodRequests {
                name: "web-x".into(),
                containers: vec![("nginx".into(), Some(100)), ("sidecar".into(), None)],
            },
        ],
    };
    let out = compute_metrics(&[cpu_metric(50)], 2, &r, Tolerances::default());
    assert_eq!(
        out.proposal.unwrap_err().first.message,
        "failed to get cpu utilization: missing request for cpu in container sidecar of Pod web-x"
    );
}

#[test]
fn a_cpu_reading_proposes_a_size_and_reports_utilization_and_usage() {
    let out = compute_metrics(
        &[cpu_metric(50)],
        2,
        &readings(Some("200"), 2),
        Tolerances::default(),
    );
    assert_eq!(out.proposal, Ok((8, CPU_METRIC_NAME.to_string())));
    let st = serde_json::to_value(&out.statuses).unwrap();
    assert_eq!(
        st,
        json!([{"type": "Resource", "resource": {"name": "cpu", "current": {"averageUtilization": 200, "averageValue": "200m"}}}])
    );
}

#[test]
fn unsimulated_metrics_fail_but_a_readable_one_may_still_scale_up() {
    let memory: MetricSpec = serde_json::from_value(json!({"type": "Resource", "resource": {"name": "memory", "target": {"type": "Utilization", "averageUtilization": 60}}})).unwrap();
    let pods_metric: MetricSpec = serde_json::from_value(json!({"type": "Pods", "pods": {"metric": {"name": "rps"}, "target": {"type": "AverageValue", "averageValue": "10"}}})).unwrap();
    let up = compute_metrics(
        &[memory.clone(), cpu_metric(50), pods_metric.clone()],
        2,
        &readings(Some("100"), 2),
        Tolerances::default(),
    );
    assert_eq!(up.proposal, Ok((4, CPU_METRIC_NAME.to_string())));
    let reasons: Vec<_> = up.errors.iter().map(|e| e.reason).collect();
    assert_eq!(reasons, ["FailedGetResourceMetric", "FailedGetPodsMetric"]);
    // Some invalid and the rest would scale down: no decision.
    let down = compute_metrics(
        &[memory, cpu_metric(50)],
        4,
        &readings(Some("10"), 4),
        Tolerances::default(),
    );
    let failed = down.proposal.unwrap_err();
    assert!(
        failed
            .message
            .starts_with("invalid metrics (1 invalid out of 2)"),
        "{}",
        failed.message
    );
    assert_eq!(down.statuses.len(), 2, "one entry per metric");
    assert_eq!(down.statuses[0].type_, "", "memory: unknown");
    assert_eq!(
        down.statuses[1].type_, "Resource",
        "the cpu reading is still reported"
    );
    let only_pods = compute_metrics(
        &[pods_metric],
        2,
        &readings(Some("100"), 2),
        Tolerances::default(),
    );
    assert_eq!(
        only_pods.proposal.unwrap_err().first.reason,
        "FailedGetPodsMetric"
    );
}

#[test]
fn legacy_scale_up_is_limited_to_twice_current_or_four() {
    let s = spec(2, 10, 50);
    let mut mem = Memory::default();
    let d = sync(&s, 2, "200", &mut mem, t(0));
    assert_eq!(
        d.rescale,
        Some((
            4,
            "cpu resource utilization (percentage of request) above target".into()
        ))
    );
    assert_eq!(condition(&d, "ScalingLimited").reason, "ScaleUpLimit");
    assert_eq!(condition(&d, "ScalingLimited").status, "True");
    assert_eq!(condition(&d, "ScalingActive").reason, "ValidMetricFound");
    assert_eq!(
        condition(&d, "ScalingActive").message,
        "the HPA was able to successfully calculate a replica count from cpu resource utilization (percentage of request)"
    );
    // Next sync from 4: ceil(4 × 4) = 16 → max(8, 4) = 8.
    let d = sync(&s, 4, "200", &mut mem, t(1));
    assert_eq!(d.rescale.as_ref().map(|r| r.0), Some(8));
    // From 8: 16, and maxReplicas 10 is below 2 × 8.
    let d = sync(&s, 8, "200", &mut mem, t(2));
    assert_eq!(d.rescale.as_ref().map(|r| r.0), Some(10));
    assert_eq!(condition(&d, "ScalingLimited").reason, "TooManyReplicas");
}

#[test]
fn legacy_scale_down_waits_out_the_controllers_five_minute_window() {
    let s = spec(1, 10, 50);
    let mut mem = Memory::default();
    let d = sync(&s, 4, "50", &mut mem, t(0));
    assert_eq!(d.rescale, None);
    assert_eq!(condition(&d, "AbleToScale").reason, "ReadyForNewScale");
    assert_eq!(condition(&d, "ScalingLimited").reason, "DesiredWithinRange");
    assert_eq!(condition(&d, "ScalingLimited").status, "False");
    let d = sync(&s, 4, "25", &mut mem, t(10));
    assert_eq!(d.rescale, None, "4 was recommended 10 s ago");
    assert_eq!(condition(&d, "AbleToScale").reason, "ScaleDownStabilized");
    assert_eq!(d.desired, Some(4));
    let d = sync(&s, 4, "25", &mut mem, t(301));
    assert_eq!(d.rescale, Some((2, "All metrics below target".into())));
}

#[test]
fn a_scale_down_window_of_zero_scales_down_at_once() {
    let s = with_behavior(
        spec(2, 6, 50),
        json!({"scaleDown": {"stabilizationWindowSeconds": 0}}),
    );
    let mut mem = Memory::default();
    let mut cur = 2;
    let d = sync(&s, cur, "200", &mut mem, t(0));
    assert_eq!(
        d.rescale.as_ref().map(|r| r.0),
        Some(6),
        "max(2 + 4, 2 × 2), then maxReplicas"
    );
    assert_eq!(condition(&d, "ScalingLimited").reason, "TooManyReplicas");
    cur = applied(&s, &d, cur, &mut mem, t(0));
    let d = sync(&s, cur, "20", &mut mem, t(1));
    assert_eq!(d.rescale.as_ref().map(|r| r.0), Some(3), "ceil(6 × 0.4)");
    cur = applied(&s, &d, cur, &mut mem, t(1));
    let d = sync(&s, cur, "10", &mut mem, t(2));
    assert_eq!(
        d.rescale.as_ref().map(|r| r.0),
        Some(2),
        "ceil(0.6), then minReplicas"
    );
    assert_eq!(condition(&d, "ScalingLimited").reason, "TooFewReplicas");
}

#[test]
fn a_scale_down_window_holds_the_highest_recent_recommendation() {
    let s = with_behavior(
        spec(1, 10, 50),
        json!({"scaleDown": {"stabilizationWindowSeconds": 5}}),
    );
    let mut mem = Memory::default();
    let d = sync(&s, 4, "100", &mut mem, t(0));
    let cur = applied(&s, &d, 4, &mut mem, t(0));
    assert_eq!(cur, 8);
    for s_ in 1..5 {
        let d = sync(&s, cur, "25", &mut mem, t(s_));
        assert_eq!(d.rescale, None, "at {s_} s, 8 is still in the window");
        assert_eq!(condition(&d, "AbleToScale").reason, "ScaleDownStabilized");
    }
    // The window is (now − 5 s, now]: at 5 s the 8 of 0 s has left it,
    // and the recommendations of 1..4 s were 4 each.
    let d = sync(&s, cur, "25", &mut mem, t(5));
    assert_eq!(d.rescale.as_ref().map(|r| r.0), Some(4));
}

#[test]
fn a_scale_up_window_holds_the_lowest_recent_recommendation() {
    let s = with_behavior(
        spec(1, 20, 50),
        json!({"scaleUp": {"stabilizationWindowSeconds": 10}, "scaleDown": {"stabilizationWindowSeconds": 0}}),
    );
    let mut mem = Memory::default();
    let d = sync(&s, 4, "50", &mut mem, t(0));
    assert_eq!(d.rescale, None);
    let d = sync(&s, 4, "100", &mut mem, t(5));
    assert_eq!(d.rescale, None, "4 at 0 s is the lowest in the window");
    assert_eq!(condition(&d, "AbleToScale").reason, "ScaleUpStabilized");
    let d = sync(&s, 4, "100", &mut mem, t(11));
    assert_eq!(d.rescale.as_ref().map(|r| r.0), Some(8));
}

#[test]
fn policies_limit_the_change_per_period() {
    // Up: 1 Pod per 60 s; down: 50 % per 60 s.
    let s = with_behavior(
        spec(1, 20, 50),
        json!({
            "scaleUp": {"policies": [{"type": "Pods", "value": 1, "periodSeconds": 60}]},
            "scaleDown": {"stabilizationWindowSeconds": 0, "policies": [{"type": "Percent", "value": 50, "periodSeconds": 60}]},
        }),
    );
    let mut mem = Memory::default();
    let d = sync(&s, 4, "200", &mut mem, t(0));
    assert_eq!(d.rescale.as_ref().map(|r| r.0), Some(5));
    assert_eq!(condition(&d, "ScalingLimited").reason, "ScaleUpLimit");
    let cur = applied(&s, &d, 4, &mut mem, t(0));
    let d = sync(&s, cur, "200", &mut mem, t(30));
    assert_eq!(d.rescale, None, "the one Pod of this period is used up");
    let d = sync(&s, cur, "200", &mut mem, t(61));
    assert_eq!(d.rescale.as_ref().map(|r| r.0), Some(6));
    let cur = applied(&s, &d, cur, &mut mem, t(61));
    // Down from 6 at 10 %: ceil(1.2) = 2, but 50 % per period of the size
    // at its start (6 − 1 added within the last 60 s = 5 → 2.5 → 2)...
    let d = sync(&s, cur, "10", &mut mem, t(62));
    assert_eq!(d.rescale.as_ref().map(|r| r.0), Some(2));
    // ... and Percent rounds toward zero like Go's int32().
    let mut mem = Memory::default();
    let d = sync(&s, 7, "10", &mut mem, t(0));
    assert_eq!(
        d.rescale.as_ref().map(|r| r.0),
        Some(3),
        "7 × 0.5 = 3.5 → 3"
    );
    assert_eq!(condition(&d, "ScalingLimited").reason, "ScaleDownLimit");
}

#[test]
fn select_policy_min_and_disabled() {
    let s = with_behavior(
        spec(1, 100, 50),
        json!({"scaleUp": {"selectPolicy": "Min", "policies": [
            {"type": "Pods", "value": 4, "periodSeconds": 15},
            {"type": "Percent", "value": 100, "periodSeconds": 15}]}}),
    );
    let d = sync(&s, 10, "500", &mut Memory::default(), t(0));
    assert_eq!(d.rescale.as_ref().map(|r| r.0), Some(14), "min(10 + 4, 20)");
    let off = with_behavior(
        spec(1, 100, 50),
        json!({"scaleDown": {"selectPolicy": "Disabled", "stabilizationWindowSeconds": 0}}),
    );
    let d = sync(&off, 10, "5", &mut Memory::default(), t(0));
    assert_eq!(d.rescale, None);
    assert_eq!(condition(&d, "ScalingLimited").reason, "ScaleDownLimit");
    assert_eq!(condition(&d, "ScalingLimited").status, "True");
    let d = sync(&off, 10, "500", &mut Memory::default(), t(0));
    assert_eq!(
        d.rescale.as_ref().map(|r| r.0),
        Some(20),
        "up is not disabled"
    );
}

#[test]
fn a_target_at_zero_or_outside_min_max_is_not_measured() {
    let s = spec(2, 6, 50);
    let never = || -> MetricsOutcome { panic!("metrics consulted") };
    let d = decide(&s, 0, never, &mut Memory::default(), t(0), 300);
    assert_eq!(d.rescale, None);
    assert_eq!(d.desired, Some(0));
    assert_eq!(condition(&d, "ScalingActive").reason, "ScalingDisabled");
    assert_eq!(
        condition(&d, "ScalingActive").message,
        "scaling is disabled since the replica count of the target is zero"
    );
    let d = decide(&s, 9, never, &mut Memory::default(), t(0), 300);
    assert_eq!(
        d.rescale,
        Some((
            6,
            "Current number of replicas above Spec.MaxReplicas".into()
        ))
    );
    let d = decide(&s, 1, never, &mut Memory::default(), t(0), 300);
    assert_eq!(
        d.rescale,
        Some((
            2,
            "Current number of replicas below Spec.MinReplicas".into()
        ))
    );
    assert_eq!(condition(&d, "AbleToScale").reason, "SucceededGetScale");
}

#[test]
fn failed_metrics_keep_the_size_and_say_why() {
    let s = spec(1, 10, 50);
    let r = readings(None, 3);
    let m = s.metrics.clone().unwrap();
    let d = decide(
        &s,
        3,
        || compute_metrics(&m, 3, &r, Tolerances::default()),
        &mut Memory::default(),
        t(0),
        300,
    );
    assert_eq!(d.rescale, None);
    assert_eq!(d.desired, None, "status.desiredReplicas is kept");
    let c = condition(&d, "ScalingActive");
    assert_eq!((c.status, c.reason), ("False", "FailedGetResourceMetric"));
    assert!(c.message.starts_with(
        "the HPA was unable to compute the replica count: failed to get cpu utilization"
    ));
    let reasons: Vec<_> = d.warnings.iter().map(|w| w.0).collect();
    assert_eq!(
        reasons,
        ["FailedGetResourceMetric", "FailedComputeMetricsReplicas"]
    );
    assert!(d.conditions.iter().all(|c| c.type_ != "ScalingLimited"));
}

#[test]
fn conditions_move_their_transition_time_only_when_the_status_flips() {
    let mut cs = Vec::new();
    set_condition(
        &mut cs,
        &cond("ScalingActive", "False", "FailedGetResourceMetric", "no"),
        t(0),
    );
    set_condition(
        &mut cs,
        &cond("AbleToScale", "True", "SucceededGetScale", "ok"),
        t(0),
    );
    set_condition(
        &mut cs,
        &cond(
            "ScalingActive",
            "False",
            "FailedGetResourceMetric",
            "still no",
        ),
        t(5),
    );
    assert_eq!(cs[0].last_transition_time, Some(Time(t(0))));
    assert_eq!(cs[0].message.as_deref(), Some("still no"));
    set_condition(
        &mut cs,
        &cond("ScalingActive", "True", "ValidMetricFound", "yes"),
        t(9),
    );
    assert_eq!(cs[0].last_transition_time, Some(Time(t(9))));
    assert_eq!(cs.len(), 2);
    assert_eq!(cs[1].type_, "AbleToScale");
}

#[test]
fn the_api_defaults_min_replicas_metrics_and_given_behavior() {
    let mut obj = json!({
        "metadata": {"name": "web"},
        "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"}, "maxReplicas": 5,
                 "behavior": {"scaleDown": {"stabilizationWindowSeconds": 0}}},
    });
    prepare(&mut obj).unwrap();
    let s = &obj["spec"];
    assert_eq!(s["minReplicas"], 1);
    assert_eq!(
        s["metrics"],
        json!([{"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 80}}}])
    );
    assert_eq!(
        s["behavior"],
        json!({
            "scaleUp": {"stabilizationWindowSeconds": 0, "selectPolicy": "Max", "policies": [
                {"type": "Pods", "value": 4, "periodSeconds": 15}, {"type": "Percent", "value": 100, "periodSeconds": 15}]},
            "scaleDown": {"stabilizationWindowSeconds": 0, "selectPolicy": "Max", "policies": [
                {"type": "Percent", "value": 100, "periodSeconds": 15}]},
        })
    );
    let mut plain = json!({"metadata": {"name": "web"},
        "spec": {"scaleTargetRef": {"kind": "Deployment", "name": "web"}, "maxReplicas": 5}});
    prepare(&mut plain).unwrap();
    assert!(
        plain["spec"]["behavior"].is_null(),
        "no behavior is given none"
    );
    let rules = behavior_rules(None, 300);
    assert!(rules.is_none());
    let s: HorizontalPodAutoscalerSpec = serde_json::from_value(obj["spec"].clone()).unwrap();
    let (_, down) = behavior_rules(s.behavior.as_ref(), 300).unwrap();
    assert_eq!(down.window, 0);
    let b: HorizontalPodAutoscalerBehavior =
        serde_json::from_value(json!({"scaleUp": {"stabilizationWindowSeconds": 3}})).unwrap();
    let (up, down) = behavior_rules(Some(&b), 300).unwrap();
    assert_eq!(
        (up.window, down.window),
        (3, 300),
        "the controller's default window"
    );
}

#[test]
fn validation_names_the_field_as_kubernetes_does() {
    let bad = |s: Value| {
        let mut obj = json!({"metadata": {"name": "web"}, "spec": s});
        prepare(&mut obj).unwrap_err()
    };
    let target = json!({"kind": "Deployment", "name": "web"});
    assert_eq!(
        bad(json!({"scaleTargetRef": target, "minReplicas": 4, "maxReplicas": 2})),
        "spec.maxReplicas: Invalid value: 2: must be greater than or equal to `minReplicas`"
    );
    assert_eq!(
        bad(json!({"scaleTargetRef": target, "minReplicas": 0, "maxReplicas": 2})),
        "spec.minReplicas: Invalid value: 0: must be greater than or equal to 1"
    );
    assert_eq!(
        bad(json!({"scaleTargetRef": {"kind": "Deployment", "name": ""}, "maxReplicas": 2})),
        "spec.scaleTargetRef.name: Required value"
    );
    assert_eq!(
        bad(json!({"scaleTargetRef": target, "maxReplicas": 2,
            "metrics": [{"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 0}}}]})),
        "spec.metrics[0].resource.target.averageUtilization: Invalid value: 0: must be greater than 0"
    );
    assert_eq!(
        bad(json!({"scaleTargetRef": target, "maxReplicas": 2, "metrics": [{"type": "Resource"}]})),
        "spec.metrics[0].resource: Required value: must populate information for the given metric source"
    );
    assert_eq!(
        bad(json!({"scaleTargetRef": target, "maxReplicas": 2,
            "behavior": {"scaleDown": {"stabilizationWindowSeconds": 3601}}})),
        "spec.behavior.scaleDown.stabilizationWindowSeconds: Invalid value: 3601: must be less than or equal to 3600"
    );
    assert_eq!(
        bad(json!({"scaleTargetRef": target, "maxReplicas": 2,
            "behavior": {"scaleUp": {"selectPolicy": "Fastest"}}})),
        "spec.behavior.scaleUp.selectPolicy: Unsupported value: \"Fastest\": supported values: \"Disabled\", \"Max\", \"Min\""
    );
    assert_eq!(
        bad(json!({"scaleTargetRef": target, "maxReplicas": 2,
            "behavior": {"scaleUp": {"policies": [{"type": "Pods", "value": 0, "periodSeconds": 15}]}}})),
        "spec.behavior.scaleUp.policies[0].value: Invalid value: 0: must be greater than zero"
    );
}
