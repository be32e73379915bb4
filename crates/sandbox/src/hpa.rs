//! HorizontalPodAutoscaler rules of the sandbox SIMULATOR, as pure
//! functions over data (the time is passed in): the autoscaling/v2 API
//! defaults and validation, the metric the sandbox simulates, and the
//! replica decision of `pkg/controller/podautoscaler` (horizontal.go,
//! replica_calculator.go).
//!
//! **The metric is set by hand.** The sandbox's Pods burn no CPU and it
//! runs no metrics-server, so the *current* CPU utilisation of an HPA's
//! target (the average over its Pods, in percent of their CPU request, what
//! a `type: Resource`, `name: cpu`, `target.averageUtilization` metric
//! compares with) is read from an annotation **on the HPA**:
//! `sandbox.baton.dev/cpu-utilization: "120"`. A profile moves it with a
//! JSON merge patch of `metadata.annotations`. On a real cluster
//! metrics-server provides the value and the annotation means nothing.
//! With no annotation the HPA knows no metric, as a real one whose metrics
//! API returns nothing: `ScalingActive=False`, reason
//! `FailedGetResourceMetric`, and no scaling. As on a real cluster, the
//! target's Pods must request CPU (`missing request for cpu in container
//! ...` otherwise).
//!
//! Mirrored: desired = ceil(currentReplicas × current / target), unchanged
//! within the tolerance (|ratio − 1| ≤ 0.1, or `behavior.*.tolerance` as
//! with the HPAConfigurableTolerance gate on), the highest proposal over
//! several metrics; minReplicas (default 1) and maxReplicas; a target at 0
//! replicas is left alone (`ScalingDisabled`); without `spec.behavior` the
//! legacy rules (scale-down stabilisation over the controller's 300 s
//! window, at most max(2 × current, 4) per step); with it the stabilisation
//! windows (scale-up default 0 s, scale-down 300 s), `selectPolicy`
//! (`Max`, `Min`, `Disabled`) and the `Pods`/`Percent` policies over their
//! periods; the conditions `AbleToScale`, `ScalingActive`, `ScalingLimited`
//! with the real reasons and messages.
//!
//! Simplified: the metric is one number for the whole target, so
//! currentReplicas is the target's `spec.replicas` (the scale
//! subresource's, as the real controller reads it) and Kubernetes'
//! per-Pod corrections (unready Pods counted at 0 % when scaling up, Pods
//! without metrics at 0 % or 100 %, the CPU initialisation period) do not
//! apply; only `Resource` `cpu` `averageUtilization` metrics are simulated,
//! every other metric reports that the sandbox has no value for it.
//!
//! Not for: reading or writing objects (see
//! [`crate::controllers::autoscaler`]); autoscaling/v1 conversion (see
//! [`crate::api::autoscaling`]).

use k8s_openapi::api::autoscaling::v2::{
    HPAScalingPolicy, HPAScalingRules, HorizontalPodAutoscaler, HorizontalPodAutoscalerBehavior,
    HorizontalPodAutoscalerCondition, HorizontalPodAutoscalerSpec, MetricSpec, MetricStatus,
    MetricTarget, MetricValueStatus, ResourceMetricSource, ResourceMetricStatus,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use serde_json::Value;

/// The HPA annotation holding the target's current CPU utilisation, in
/// percent of the Pods' CPU request (sandbox only; metrics-server's job on
/// a real cluster).
pub const CPU_UTILIZATION: &str = "sandbox.baton.dev/cpu-utilization";

/// `--horizontal-pod-autoscaler-tolerance`'s default.
pub const DEFAULT_TOLERANCE: f64 = 0.1;

/// `--horizontal-pod-autoscaler-downscale-stabilization`'s default, in
/// seconds: the scale-down window when the HPA names none.
pub const DEFAULT_DOWNSCALE_WINDOW: i64 = 300;

/// The CPU utilisation an HPA with no metrics aims at (API default).
pub const DEFAULT_CPU_UTILIZATION: i32 = 80;

/// Why a metric reads as it does: "cpu resource utilization (percentage of
/// request)", used in the ScalingActive message and the rescale reason.
pub const CPU_METRIC_NAME: &str = "cpu resource utilization (percentage of request)";

// ---- API: defaults and validation ---------------------------------------

/// Fills the autoscaling/v2 defaults (`SetDefaults_HorizontalPodAutoscaler`)
/// and validates, on an object already normalised through its type.
pub fn prepare(obj: &mut Value) -> Result<(), String> {
    let mut hpa: HorizontalPodAutoscaler =
        serde_json::from_value(obj.clone()).map_err(|e| e.to_string())?;
    let spec = &mut hpa.spec;
    set_defaults(spec);
    validate(spec)?;
    *obj = serde_json::to_value(&hpa).map_err(|e| e.to_string())?;
    Ok(())
}

/// minReplicas 1; a CPU utilisation metric of 80 % when none is given; a
/// given `behavior` completed with the default rules (the scale-down
/// window stays unset: the controller's own default applies).
pub fn set_defaults(spec: &mut HorizontalPodAutoscalerSpec) {
    spec.min_replicas.get_or_insert(1);
    if spec.metrics.as_ref().is_none_or(Vec::is_empty) {
        spec.metrics = Some(vec![cpu_metric(DEFAULT_CPU_UTILIZATION)]);
    }
    if let Some(b) = spec.behavior.as_mut() {
        b.scale_up = Some(complete_rules(b.scale_up.take(), true));
        b.scale_down = Some(complete_rules(b.scale_down.take(), false));
    }
}

/// A `type: Resource`, `name: cpu`, `averageUtilization` metric.
pub fn cpu_metric(percent: i32) -> MetricSpec {
    MetricSpec {
        type_: "Resource".into(),
        resource: Some(ResourceMetricSource {
            name: "cpu".into(),
            target: MetricTarget {
                type_: "Utilization".into(),
                average_utilization: Some(percent),
                ..Default::default()
            },
        }),
        ..Default::default()
    }
}

/// `GenerateHPAScaleUpRules` / `GenerateHPAScaleDownRules`: the fields
/// left out take the defaults (scale up: window 0, Max of 4 Pods or 100 %
/// per 15 s; scale down: Max of 100 % per 15 s).
fn complete_rules(given: Option<HPAScalingRules>, up: bool) -> HPAScalingRules {
    let policy = |type_: &str, value| HPAScalingPolicy {
        type_: type_.into(),
        value,
        period_seconds: 15,
    };
    let mut r = given.unwrap_or_default();
    if up {
        r.stabilization_window_seconds.get_or_insert(0);
    }
    r.select_policy.get_or_insert_with(|| "Max".into());
    r.policies.get_or_insert_with(|| {
        if up {
            vec![policy("Pods", 4), policy("Percent", 100)]
        } else {
            vec![policy("Percent", 100)]
        }
    });
    r
}

/// The checks of `ValidateHorizontalPodAutoscalerSpec` a manifest is most
/// likely to trip, with Kubernetes' messages.
pub fn validate(spec: &HorizontalPodAutoscalerSpec) -> Result<(), String> {
    let min = spec.min_replicas.unwrap_or(1);
    if min < 1 {
        return Err(format!(
            "spec.minReplicas: Invalid value: {min}: must be greater than or equal to 1"
        ));
    }
    if spec.max_replicas < 1 {
        return Err(format!(
            "spec.maxReplicas: Invalid value: {}: must be greater than 0",
            spec.max_replicas
        ));
    }
    if spec.max_replicas < min {
        return Err(format!(
            "spec.maxReplicas: Invalid value: {}: must be greater than or equal to `minReplicas`",
            spec.max_replicas
        ));
    }
    let r = &spec.scale_target_ref;
    if r.kind.is_empty() {
        return Err("spec.scaleTargetRef.kind: Required value".into());
    }
    if r.name.is_empty() {
        return Err("spec.scaleTargetRef.name: Required value".into());
    }
    for (i, m) in spec.metrics.iter().flatten().enumerate() {
        validate_metric(m, &format!("spec.metrics[{i}]"))?;
    }
    if let Some(b) = &spec.behavior {
        for (name, rules) in [("scaleUp", &b.scale_up), ("scaleDown", &b.scale_down)] {
            if let Some(r) = rules {
                validate_rules(r, &format!("spec.behavior.{name}"))?;
            }
        }
    }
    Ok(())
}

fn validate_metric(m: &MetricSpec, at: &str) -> Result<(), String> {
    let source = match m.type_.as_str() {
        "" => {
            return Err(format!(
                "{at}.type: Required value: must specify a metric source type"
            ));
        }
        "Resource" => m.resource.is_some(),
        "Pods" => m.pods.is_some(),
        "Object" => m.object.is_some(),
        "External" => m.external.is_some(),
        "ContainerResource" => m.container_resource.is_some(),
        t => {
            return Err(format!(
                "{at}.type: Unsupported value: \"{t}\": supported values: \"ContainerResource\", \"External\", \"Object\", \"Pods\", \"Resource\""
            ));
        }
    };
    let field = lower_first(&m.type_);
    if !source {
        return Err(format!(
            "{at}.{field}: Required value: must populate information for the given metric source"
        ));
    }
    if let Some(r) = &m.resource {
        let t = &r.target;
        if t.type_.is_empty() {
            return Err(format!(
                "{at}.resource.target.type: Required value: must specify a metric target type"
            ));
        }
        if let Some(u) = t.average_utilization.filter(|u| *u <= 0) {
            return Err(format!(
                "{at}.resource.target.averageUtilization: Invalid value: {u}: must be greater than 0"
            ));
        }
    }
    Ok(())
}

fn lower_first(s: &str) -> String {
    let mut c = s.chars();
    c.next()
        .map(|f| f.to_ascii_lowercase().to_string() + c.as_str())
        .unwrap_or_default()
}

fn validate_rules(r: &HPAScalingRules, at: &str) -> Result<(), String> {
    if let Some(w) = r.stabilization_window_seconds {
        if w < 0 {
            return Err(format!(
                "{at}.stabilizationWindowSeconds: Invalid value: {w}: must be greater than or equal to zero"
            ));
        }
        if w > 3600 {
            return Err(format!(
                "{at}.stabilizationWindowSeconds: Invalid value: {w}: must be less than or equal to 3600"
            ));
        }
    }
    if let Some(p) = r.select_policy.as_deref()
        && !matches!(p, "Max" | "Min" | "Disabled")
    {
        return Err(format!(
            "{at}.selectPolicy: Unsupported value: \"{p}\": supported values: \"Disabled\", \"Max\", \"Min\""
        ));
    }
    let policies = r.policies.as_deref().unwrap_or_default();
    if policies.is_empty() && r.select_policy.as_deref() != Some("Disabled") {
        return Err(format!(
            "{at}.policies: Required value: must specify at least one Policy"
        ));
    }
    for (i, p) in policies.iter().enumerate() {
        let at = format!("{at}.policies[{i}]");
        if !matches!(p.type_.as_str(), "Pods" | "Percent") {
            return Err(format!(
                "{at}.type: Unsupported value: \"{}\": supported values: \"Percent\", \"Pods\"",
                p.type_
            ));
        }
        if p.value <= 0 {
            return Err(format!(
                "{at}.value: Invalid value: {}: must be greater than zero",
                p.value
            ));
        }
        if p.period_seconds <= 0 {
            return Err(format!(
                "{at}.periodSeconds: Invalid value: {}: must be greater than zero",
                p.period_seconds
            ));
        }
        if p.period_seconds > 1800 {
            return Err(format!(
                "{at}.periodSeconds: Invalid value: {}: must be less than or equal to 1800",
                p.period_seconds
            ));
        }
    }
    Ok(())
}

// ---- quantities -----------------------------------------------------------

/// A quantity in thousandths, rounded up as Kubernetes' `MilliValue` does:
/// `100m` → 100, `0.5` → 500, `2` → 2000, `1k` → 1 000 000. `None` when
/// it is not a number the sandbox reads (binary suffixes, exponents).
pub fn milli(q: &str) -> Option<i64> {
    let q = q.trim();
    let (num, factor) = match q.char_indices().last()? {
        (i, 'm') => (&q[..i], 1.0),
        (i, 'k') => (&q[..i], 1e6),
        (i, 'M') => (&q[..i], 1e9),
        (i, 'G') => (&q[..i], 1e12),
        _ => (q, 1e3),
    };
    if num.is_empty() || !num.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        return None;
    }
    let v: f64 = num.parse().ok()?;
    // Rounded up, but not past representation noise (0.1 × 1000).
    Some((v * factor - 1e-9).ceil().max(0.0) as i64)
}

/// A CPU amount as Kubernetes prints a milli quantity: `120m`, `2`.
pub fn format_milli(m: i64) -> String {
    if m % 1000 == 0 {
        (m / 1000).to_string()
    } else {
        format!("{m}m")
    }
}

// ---- the metric -------------------------------------------------------------

/// One Pod of the target as the metric needs it: its name and each
/// container's CPU request in millicores (`None`: no request).
#[derive(Clone, Debug, PartialEq)]
pub struct PodRequests {
    pub name: String,
    pub containers: Vec<(String, Option<i64>)>,
}

/// What the sandbox knows when it computes metrics.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Readings {
    /// The [`CPU_UTILIZATION`] annotation as written, if any.
    pub cpu_utilization: Option<String>,
    /// The target's active Pods (not terminating, not finished).
    pub pods: Vec<PodRequests>,
}

/// The scale-down and scale-up tolerances.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Tolerances {
    pub down: f64,
    pub up: f64,
}

impl Default for Tolerances {
    fn default() -> Self {
        Tolerances {
            down: DEFAULT_TOLERANCE,
            up: DEFAULT_TOLERANCE,
        }
    }
}

impl Tolerances {
    /// Kubernetes' tolerance, or `behavior.scaleDown/scaleUp.tolerance`.
    pub fn of(spec: &HorizontalPodAutoscalerSpec) -> Tolerances {
        let of = |r: Option<&HPAScalingRules>| {
            r.and_then(|r| r.tolerance.as_ref())
                .and_then(|q| milli(&q.0))
                .map(|m| m as f64 / 1000.0)
        };
        let b = spec.behavior.as_ref();
        let d = Tolerances::default();
        Tolerances {
            down: of(b.and_then(|b| b.scale_down.as_ref())).unwrap_or(d.down),
            up: of(b.and_then(|b| b.scale_up.as_ref())).unwrap_or(d.up),
        }
    }

    fn within(&self, ratio: f64) -> bool {
        1.0 - self.down <= ratio && ratio <= 1.0 + self.up
    }
}

/// A metric that could not be read: the condition it sets and the
/// Warning event it records, as `getUnableComputeReplicaCountCondition`.
#[derive(Clone, Debug, PartialEq)]
pub struct MetricError {
    /// `FailedGetResourceMetric`, `FailedGetPodsMetric`, ...
    pub reason: &'static str,
    /// The error as the Warning event's message says it.
    pub message: String,
    /// The error wrapped as `computeReplicasForMetric` returns it.
    pub wrapped: String,
}

/// What the HPA's metrics propose, and the status entries they make.
#[derive(Clone, Debug, PartialEq)]
pub struct MetricsOutcome {
    /// The highest proposal and the name of the metric that made it; or
    /// the first error, when every metric failed or some failed and the
    /// rest would scale down.
    pub proposal: Result<(i32, String), MetricsFailed>,
    /// `status.currentMetrics`: one entry per metric, in the spec's order;
    /// a metric that could not be read leaves an empty entry (`type: ""`),
    /// as Kubernetes' does, so printers can pair them by position.
    pub statuses: Vec<MetricStatus>,
    /// Every metric that could not be read (each a Warning event).
    pub errors: Vec<MetricError>,
}

/// Why no replica count could be computed.
#[derive(Clone, Debug, PartialEq)]
pub struct MetricsFailed {
    /// The first invalid metric (its reason becomes ScalingActive's).
    pub first: MetricError,
    /// `invalid metrics (1 invalid out of 1), first error is: ...`, the
    /// `FailedComputeMetricsReplicas` event's message.
    pub message: String,
}

/// `computeReplicasForMetrics` over the sandbox's readings.
pub fn compute_metrics(
    metrics: &[MetricSpec],
    current: i32,
    readings: &Readings,
    tol: Tolerances,
) -> MetricsOutcome {
    let mut best: Option<(i32, String)> = None;
    let mut statuses = Vec::new();
    let mut errors = Vec::new();
    for m in metrics {
        match metric_proposal(m, current, readings, tol) {
            Ok((replicas, name, status)) => {
                statuses.push(status);
                if best.as_ref().is_none_or(|(r, _)| replicas > *r) {
                    best = Some((replicas, name));
                }
            }
            Err(e) => {
                statuses.push(MetricStatus::default());
                errors.push(e);
            }
        }
    }
    let some_failed_and_down = best.as_ref().is_some_and(|(r, _)| *r < current);
    let proposal = match (best, errors.first()) {
        (Some(b), None) => Ok(b),
        (Some(b), Some(_)) if !some_failed_and_down => Ok(b),
        (_, Some(first)) => Err(MetricsFailed {
            first: first.clone(),
            message: format!(
                "invalid metrics ({} invalid out of {}), first error is: {}",
                errors.len(),
                metrics.len(),
                first.wrapped
            ),
        }),
        (None, None) => Err(MetricsFailed {
            first: MetricError {
                reason: "InvalidMetricSourceType",
                message: "the HPA has no metrics".into(),
                wrapped: "the HPA has no metrics".into(),
            },
            message: "invalid metrics (0 invalid out of 0), first error is: the HPA has no metrics"
                .into(),
        }),
    };
    MetricsOutcome {
        proposal,
        statuses,
        errors,
    }
}

/// `computeReplicasForMetric` for one metric.
fn metric_proposal(
    m: &MetricSpec,
    current: i32,
    readings: &Readings,
    tol: Tolerances,
) -> Result<(i32, String, MetricStatus), MetricError> {
    let no_api = |reason: &'static str, what: String, wrap: &str| {
        let message = format!(
            "unable to get {what}: the sandbox has no metrics API (it simulates only Resource cpu averageUtilization, read from the HPA annotation {CPU_UTILIZATION})"
        );
        MetricError {
            reason,
            wrapped: format!("{wrap}: {message}"),
            message,
        }
    };
    let r = match (m.type_.as_str(), &m.resource) {
        ("Resource", Some(r)) => r,
        ("Pods", _) => {
            let name = m
                .pods
                .as_ref()
                .map(|p| p.metric.name.as_str())
                .unwrap_or("");
            return Err(no_api(
                "FailedGetPodsMetric",
                format!("pods metric {name}"),
                "failed to get pods metric value",
            ));
        }
        ("Object", _) => {
            let name = m
                .object
                .as_ref()
                .map(|o| o.metric.name.as_str())
                .unwrap_or("");
            return Err(no_api(
                "FailedGetObjectMetric",
                format!("object metric {name}"),
                "failed to get object metric value",
            ));
        }
        ("External", _) => {
            let name = m
                .external
                .as_ref()
                .map(|o| o.metric.name.as_str())
                .unwrap_or("");
            return Err(no_api(
                "FailedGetExternalMetric",
                format!("external metric {name}"),
                "failed to get external metric value",
            ));
        }
        ("ContainerResource", _) => {
            let name = m
                .container_resource
                .as_ref()
                .map(|c| c.name.as_str())
                .unwrap_or("");
            return Err(no_api(
                "FailedGetContainerResourceMetric",
                format!("container resource metric {name}"),
                &format!("failed to get {name} container resource metric value"),
            ));
        }
        (t, _) => {
            let message = format!("unknown metric source type \"{t}\"");
            return Err(MetricError {
                reason: "InvalidMetricSourceType",
                wrapped: message.clone(),
                message,
            });
        }
    };
    let fail = |message: String| MetricError {
        reason: "FailedGetResourceMetric",
        wrapped: format!("failed to get {} resource metric value: {message}", r.name),
        message,
    };
    let Some(target) = r.target.average_utilization else {
        if r.target.average_value.is_some() {
            return Err(no_api(
                "FailedGetResourceMetric",
                format!("{} averageValue", r.name),
                &format!("failed to get {} resource metric value", r.name),
            ));
        }
        return Err(fail(
            "invalid resource metric source: neither an average utilization target nor an average value (usage) target was set".into(),
        ));
    };
    if r.name != "cpu" {
        return Err(fail(format!(
            "failed to get {0} utilization: unable to get metrics for resource {0}: no metrics returned from resource metrics API (the sandbox simulates cpu only)",
            r.name
        )));
    }
    let no_metrics = |why: &str| {
        fail(format!(
            "failed to get cpu utilization: unable to get metrics for resource cpu: no metrics returned from resource metrics API ({why})"
        ))
    };
    let utilization = match readings.cpu_utilization.as_deref() {
        None => {
            return Err(no_metrics(&format!(
                "sandbox: set the annotation {CPU_UTILIZATION} on the HPA"
            )));
        }
        Some(raw) => match parse_utilization(raw) {
            Some(u) => u,
            None => {
                return Err(no_metrics(&format!(
                    "sandbox: the annotation {CPU_UTILIZATION} is {raw:?}, not a whole percentage such as \"120\""
                )));
            }
        },
    };
    if readings.pods.is_empty() {
        return Err(no_metrics("the target has no running Pods"));
    }
    let mut request_total = 0;
    for p in &readings.pods {
        for (c, req) in &p.containers {
            match req {
                Some(m) => request_total += m,
                None => {
                    return Err(fail(format!(
                        "failed to get cpu utilization: missing request for cpu in container {c} of Pod {}",
                        p.name
                    )));
                }
            }
        }
    }
    let average_request = request_total / readings.pods.len() as i64;
    let raw_usage = average_request * i64::from(utilization) / 100;
    let replicas = desired_for_ratio(current, f64::from(utilization) / f64::from(target), tol);
    let status = MetricStatus {
        type_: "Resource".into(),
        resource: Some(ResourceMetricStatus {
            name: "cpu".into(),
            current: MetricValueStatus {
                average_utilization: Some(utilization),
                average_value: Some(Quantity(format_milli(raw_usage))),
                value: None,
            },
        }),
        ..Default::default()
    };
    Ok((replicas, CPU_METRIC_NAME.to_string(), status))
}

/// `120`, `120%`, ` 80 ` → a percentage; anything else is not one.
pub fn parse_utilization(raw: &str) -> Option<i32> {
    let s = raw.trim();
    let s = s.strip_suffix('%').unwrap_or(s).trim();
    s.parse::<i32>().ok().filter(|u| *u >= 0)
}

/// The replica calculator's rule: no change within the tolerance, else
/// ceil(current × ratio).
pub fn desired_for_ratio(current: i32, ratio: f64, tol: Tolerances) -> i32 {
    if tol.within(ratio) {
        return current;
    }
    let d = (f64::from(current) * ratio).ceil();
    if d >= f64::from(i32::MAX) {
        i32::MAX
    } else {
        d as i32
    }
}

// ---- the decision -----------------------------------------------------------

/// What the controller remembers of one HPA between syncs, as the real
/// one does in memory (`recommendations`, `scaleUpEvents`,
/// `scaleDownEvents`): lost when it restarts, i.e. with the sandbox.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Memory {
    recommendations: Vec<(Timestamp, i32)>,
    scale_up_events: Vec<ScaleEvent>,
    scale_down_events: Vec<ScaleEvent>,
}

#[derive(Clone, Debug, PartialEq)]
struct ScaleEvent {
    change: i32,
    at: Timestamp,
    outdated: bool,
}

/// `selectPolicy`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Select {
    Max,
    Min,
    Disabled,
}

/// One direction's `HPAScalingRules`, defaults filled.
#[derive(Clone, Debug, PartialEq)]
pub struct Rules {
    pub window: i64,
    pub select: Select,
    /// (`Pods` when true else `Percent`, value, periodSeconds).
    pub policies: Vec<(bool, i32, i64)>,
}

/// The HPA's `behavior` with every default applied, or `None` for an HPA
/// without one (the legacy rules then apply).
pub fn behavior_rules(
    b: Option<&HorizontalPodAutoscalerBehavior>,
    default_down_window: i64,
) -> Option<(Rules, Rules)> {
    let b = b?;
    let rules = |r: Option<&HPAScalingRules>, up: bool| {
        let r = complete_rules(r.cloned(), up);
        Rules {
            window: r
                .stabilization_window_seconds
                .map(i64::from)
                .unwrap_or(default_down_window),
            select: match r.select_policy.as_deref() {
                Some("Min") => Select::Min,
                Some("Disabled") => Select::Disabled,
                _ => Select::Max,
            },
            policies: r
                .policies
                .iter()
                .flatten()
                .map(|p| (p.type_ == "Pods", p.value, i64::from(p.period_seconds)))
                .collect(),
        }
    };
    Some((
        rules(b.scale_up.as_ref(), true),
        rules(b.scale_down.as_ref(), false),
    ))
}

/// A condition to set on the HPA (type, status, reason, message).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cond {
    pub type_: &'static str,
    pub status: &'static str,
    pub reason: &'static str,
    pub message: String,
}

fn cond(
    type_: &'static str,
    status: &'static str,
    reason: &'static str,
    message: impl Into<String>,
) -> Cond {
    Cond {
        type_,
        status,
        reason,
        message: message.into(),
    }
}

/// One sync's decision, before the target is written.
#[derive(Clone, Debug, PartialEq)]
pub struct Decision {
    /// The size to give the target, and the event's reason; `None`: leave
    /// it as it is.
    pub rescale: Option<(i32, String)>,
    /// `status.desiredReplicas` when nothing is rescaled; `None` keeps the
    /// previous one (the metrics failed).
    pub desired: Option<i32>,
    /// Conditions, in the order the controller sets them.
    pub conditions: Vec<Cond>,
    /// `status.currentMetrics`.
    pub current_metrics: Vec<MetricStatus>,
    /// Warning events (reason, message), in order.
    pub warnings: Vec<(&'static str, String)>,
}

/// `reconcileAutoscaler` from the moment the target's scale was read:
/// `current` is its `spec.replicas`; `metrics` is called only when the
/// metrics are consulted (the target is within min..max and not at 0).
pub fn decide(
    spec: &HorizontalPodAutoscalerSpec,
    current: i32,
    metrics: impl FnOnce() -> MetricsOutcome,
    mem: &mut Memory,
    now: Timestamp,
    default_down_window: i64,
) -> Decision {
    let mut d = Decision {
        rescale: None,
        desired: Some(current),
        conditions: vec![cond(
            "AbleToScale",
            "True",
            "SucceededGetScale",
            "the HPA controller was able to get the target's current scale",
        )],
        current_metrics: Vec::new(),
        warnings: Vec::new(),
    };
    if mem.recommendations.is_empty() {
        mem.recommendations.push((now, current));
    }
    let min = spec.min_replicas.unwrap_or(1);
    let max = spec.max_replicas;
    if current == 0 && min != 0 {
        d.conditions.push(cond(
            "ScalingActive",
            "False",
            "ScalingDisabled",
            "scaling is disabled since the replica count of the target is zero",
        ));
        return d;
    }
    if current > max {
        d.rescale = Some((
            max,
            "Current number of replicas above Spec.MaxReplicas".into(),
        ));
        return d;
    }
    if current < min {
        d.rescale = Some((
            min,
            "Current number of replicas below Spec.MinReplicas".into(),
        ));
        return d;
    }
    let out = metrics();
    d.current_metrics = out.statuses;
    for e in &out.errors {
        d.warnings.push((e.reason, e.message.clone()));
    }
    let (proposal, metric) = match out.proposal {
        Ok(p) => p,
        Err(failed) => {
            d.conditions.push(cond(
                "ScalingActive",
                "False",
                failed.first.reason,
                format!(
                    "the HPA was unable to compute the replica count: {}",
                    failed.first.message
                ),
            ));
            d.warnings
                .push(("FailedComputeMetricsReplicas", failed.message));
            d.desired = None;
            return d;
        }
    };
    d.conditions.push(cond(
        "ScalingActive",
        "True",
        "ValidMetricFound",
        format!("the HPA was able to successfully calculate a replica count from {metric}"),
    ));
    // As Kubernetes words it (empty when the metrics propose no change
    // and only stabilisation moves the size).
    let reason = match proposal.cmp(&current) {
        std::cmp::Ordering::Greater => format!("{metric} above target"),
        std::cmp::Ordering::Less => "All metrics below target".to_string(),
        std::cmp::Ordering::Equal => String::new(),
    };
    let desired = match behavior_rules(spec.behavior.as_ref(), default_down_window) {
        None => normalize_legacy(
            mem,
            &mut d.conditions,
            current,
            proposal,
            min,
            max,
            now,
            default_down_window,
        ),
        Some((up, down)) => normalize_with_behavior(
            mem,
            &mut d.conditions,
            &Normalization {
                up: &up,
                down: &down,
                min,
                max,
                current,
                desired: proposal,
            },
            now,
        ),
    };
    if desired != current {
        d.rescale = Some((desired, reason));
    }
    d
}

/// `normalizeDesiredReplicas`: the legacy rules for an HPA without
/// `behavior`.
#[allow(clippy::too_many_arguments)]
fn normalize_legacy(
    mem: &mut Memory,
    conds: &mut Vec<Cond>,
    current: i32,
    proposal: i32,
    min: i32,
    max: i32,
    now: Timestamp,
    window: i64,
) -> i32 {
    // stabilizeRecommendation
    let cutoff = now - SignedDuration::from_secs(window);
    let mut stabilized = proposal;
    let mut old = None;
    for (i, (at, r)) in mem.recommendations.iter().enumerate() {
        if *at < cutoff {
            old = Some(i);
        } else if *r > stabilized {
            stabilized = *r;
        }
    }
    match old {
        Some(i) => mem.recommendations[i] = (now, proposal),
        None => mem.recommendations.push((now, proposal)),
    }
    conds.push(if stabilized != proposal {
        cond(
            "AbleToScale",
            "True",
            "ScaleDownStabilized",
            "recent recommendations were higher than current one, applying the highest recent recommendation",
        )
    } else {
        cond(
            "AbleToScale",
            "True",
            "ReadyForNewScale",
            "recommended size matches current size",
        )
    });
    // convertDesiredReplicasWithRules
    let scale_up_limit = (2 * i64::from(current)).max(4).min(i64::from(i32::MAX)) as i32;
    let (upper, upper_reason, upper_msg) = if max > scale_up_limit {
        (
            scale_up_limit,
            "ScaleUpLimit",
            "the desired replica count is increasing faster than the maximum scale rate",
        )
    } else {
        (
            max,
            "TooManyReplicas",
            "the desired replica count is more than the maximum replica count",
        )
    };
    let (desired, reason, msg) = if stabilized < min {
        (
            min,
            "TooFewReplicas",
            "the desired replica count is less than the minimum replica count",
        )
    } else if stabilized > upper {
        (upper, upper_reason, upper_msg)
    } else {
        (
            stabilized,
            "DesiredWithinRange",
            "the desired count is within the acceptable range",
        )
    };
    let limited = if desired == stabilized {
        "False"
    } else {
        "True"
    };
    conds.push(cond("ScalingLimited", limited, reason, msg));
    desired
}

/// `NormalizationArg`.
struct Normalization<'a> {
    up: &'a Rules,
    down: &'a Rules,
    min: i32,
    max: i32,
    current: i32,
    desired: i32,
}

/// `normalizeDesiredReplicasWithBehaviors`.
fn normalize_with_behavior(
    mem: &mut Memory,
    conds: &mut Vec<Cond>,
    n: &Normalization,
    now: Timestamp,
) -> i32 {
    let (stabilized, reason, msg) = stabilize_with_behavior(mem, n, now);
    conds.push(if stabilized != n.desired {
        cond("AbleToScale", "True", reason, msg)
    } else {
        cond(
            "AbleToScale",
            "True",
            "ReadyForNewScale",
            "recommended size matches current size",
        )
    });
    let (desired, reason, msg) = rate_limited(
        mem,
        &Normalization {
            desired: stabilized,
            ..*n
        },
        now,
    );
    let limited = if desired == stabilized {
        "False"
    } else {
        "True"
    };
    conds.push(cond("ScalingLimited", limited, reason, msg));
    desired
}

/// `stabilizeRecommendationWithBehaviors`: the lowest recommendation of
/// the scale-up window when going up, the highest of the scale-down
/// window when going down; records this one.
fn stabilize_with_behavior(
    mem: &mut Memory,
    n: &Normalization,
    now: Timestamp,
) -> (i32, &'static str, &'static str) {
    let up = n.desired >= n.current;
    let (window, reason, msg) = if up {
        (
            n.up.window,
            "ScaleUpStabilized",
            "recent recommendations were lower than current one, applying the lowest recent recommendation",
        )
    } else {
        (
            n.down.window,
            "ScaleDownStabilized",
            "recent recommendations were higher than current one, applying the highest recent recommendation",
        )
    };
    let obsolete = now - SignedDuration::from_secs(n.up.window.max(n.down.window));
    let cutoff = now - SignedDuration::from_secs(window);
    let mut rec = n.desired;
    let mut old = None;
    for (i, (at, r)) in mem.recommendations.iter().enumerate() {
        if *at > cutoff {
            rec = if up { rec.min(*r) } else { rec.max(*r) };
        }
        if *at < obsolete {
            old = Some(i);
        }
    }
    match old {
        Some(i) => mem.recommendations[i] = (now, n.desired),
        None => mem.recommendations.push((now, n.desired)),
    }
    (rec, reason, msg)
}

/// `convertDesiredReplicasWithBehaviorRate`: min/max replicas and the
/// policies' rate limits.
fn rate_limited(
    mem: &Memory,
    n: &Normalization,
    now: Timestamp,
) -> (i32, &'static str, &'static str) {
    if n.desired > n.current {
        let limit = scale_up_limit(mem, n.up, n.current, now).max(n.current);
        let (allowed, reason, msg) = if n.max > limit {
            (
                limit,
                "ScaleUpLimit",
                "the desired replica count is increasing faster than the maximum scale rate",
            )
        } else {
            (
                n.max,
                "TooManyReplicas",
                "the desired replica count is more than the maximum replica count",
            )
        };
        if n.desired > allowed {
            return (allowed, reason, msg);
        }
    } else if n.desired < n.current {
        let limit = scale_down_limit(mem, n.down, n.current, now).min(n.current);
        let (allowed, reason, msg) = if n.min < limit {
            (
                limit,
                "ScaleDownLimit",
                "the desired replica count is decreasing faster than the maximum scale rate",
            )
        } else {
            (
                n.min,
                "TooFewReplicas",
                "the desired replica count is less than the minimum replica count",
            )
        };
        if n.desired < allowed {
            return (allowed, reason, msg);
        }
    }
    (
        n.desired,
        "DesiredWithinRange",
        "the desired count is within the acceptable range",
    )
}

/// Replicas changed by `events` within the last `period` seconds.
fn change_in_period(events: &[ScaleEvent], period: i64, now: Timestamp) -> i32 {
    let cutoff = now - SignedDuration::from_secs(period);
    events
        .iter()
        .filter(|e| e.at > cutoff)
        .map(|e| e.change)
        .sum()
}

/// `calculateScaleUpLimitWithScalingRules`.
fn scale_up_limit(mem: &Memory, r: &Rules, current: i32, now: Timestamp) -> i32 {
    let (mut result, pick): (i64, fn(i64, i64) -> i64) = match r.select {
        Select::Disabled => return current,
        Select::Min => (i64::from(i32::MAX), i64::min),
        Select::Max => (i64::from(i32::MIN), i64::max),
    };
    for &(pods, value, period) in &r.policies {
        let added = change_in_period(&mem.scale_up_events, period, now);
        let deleted = change_in_period(&mem.scale_down_events, period, now);
        let start = i64::from(current) - i64::from(added) + i64::from(deleted);
        let proposed = if pods {
            start + i64::from(value)
        } else {
            (start as f64 * (1.0 + f64::from(value) / 100.0)).ceil() as i64
        };
        result = pick(result, proposed);
    }
    result.clamp(i64::from(i32::MIN), i64::from(i32::MAX)) as i32
}

/// `calculateScaleDownLimitWithBehaviors`.
fn scale_down_limit(mem: &Memory, r: &Rules, current: i32, now: Timestamp) -> i32 {
    let (mut result, pick): (i64, fn(i64, i64) -> i64) = match r.select {
        Select::Disabled => return current,
        Select::Min => (i64::from(i32::MIN), i64::max),
        Select::Max => (i64::from(i32::MAX), i64::min),
    };
    for &(pods, value, period) in &r.policies {
        let added = change_in_period(&mem.scale_up_events, period, now);
        let deleted = change_in_period(&mem.scale_down_events, period, now);
        let start = i64::from(current) - i64::from(added) + i64::from(deleted);
        let proposed = if pods {
            start - i64::from(value)
        } else {
            // Go's int32(float64) truncates toward zero.
            (start as f64 * (1.0 - f64::from(value) / 100.0)).trunc() as i64
        };
        result = pick(result, proposed);
    }
    result.clamp(i64::from(i32::MIN), i64::from(i32::MAX)) as i32
}

impl Memory {
    /// `storeScaleEvent`: remembers a rescale from `prev` to `new` for the
    /// rate limits, reusing an entry older than the longest policy period.
    /// Nothing is kept for an HPA without `behavior`.
    pub fn record_scale(
        &mut self,
        rules: Option<&(Rules, Rules)>,
        prev: i32,
        new: i32,
        now: Timestamp,
    ) {
        let Some((up, down)) = rules else {
            return;
        };
        let (events, rules, change) = if new > prev {
            (&mut self.scale_up_events, up, new - prev)
        } else {
            (&mut self.scale_down_events, down, prev - new)
        };
        let longest = rules.policies.iter().map(|p| p.2).max().unwrap_or(0);
        let cutoff = now - SignedDuration::from_secs(longest);
        for e in events.iter_mut() {
            if e.at < cutoff {
                e.outdated = true;
            }
        }
        let fresh = ScaleEvent {
            change,
            at: now,
            outdated: false,
        };
        match events.iter_mut().find(|e| e.outdated) {
            Some(e) => *e = fresh,
            None => events.push(fresh),
        }
    }
}

/// `setCondition`: replaces the condition of that type (appending it when
/// new); `lastTransitionTime` moves only when the status changes.
pub fn set_condition(conds: &mut Vec<HorizontalPodAutoscalerCondition>, c: &Cond, now: Timestamp) {
    let i = match conds.iter().position(|x| x.type_ == c.type_) {
        Some(i) => i,
        None => {
            conds.push(HorizontalPodAutoscalerCondition {
                type_: c.type_.into(),
                ..Default::default()
            });
            conds.len() - 1
        }
    };
    let cur = &mut conds[i];
    if cur.status != c.status {
        cur.last_transition_time = Some(Time(now));
    }
    cur.status = c.status.into();
    cur.reason = Some(c.reason.into());
    cur.message = Some(c.message.clone());
}

#[cfg(test)]
mod tests;
