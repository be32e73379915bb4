//! What the API server does to an object between decoding and storing it:
//! normalise it through its k8s-openapi type (unknown fields dropped, wrong
//! types rejected with 400), fill the defaults Kubernetes fills, allocate a
//! Service's clusterIP (from [`crate::clusterip`]) and nodePorts, and
//! validate (422).

use std::net::{IpAddr, TcpListener};

use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{Event, Namespace, Node, Pod, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::api::networking::v1::Ingress;
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use super::ApiState;
use super::resources::ResourceDef;
use super::status::ApiError;

/// Decodes `obj` through the k8s-openapi type of `kind` and back.
pub fn normalize(kind: &str, obj: &Value) -> Result<Value, String> {
    fn rt<K: Serialize + DeserializeOwned>(v: &Value) -> Result<Value, String> {
        let k: K = serde_json::from_value(v.clone()).map_err(|e| e.to_string())?;
        serde_json::to_value(k).map_err(|e| e.to_string())
    }
    match kind {
        "Namespace" => rt::<Namespace>(obj),
        "Pod" => rt::<Pod>(obj),
        "Service" => rt::<Service>(obj),
        "Event" => rt::<Event>(obj),
        "Deployment" => rt::<Deployment>(obj),
        "ReplicaSet" => rt::<ReplicaSet>(obj),
        "EndpointSlice" => rt::<EndpointSlice>(obj),
        "Ingress" => rt::<Ingress>(obj),
        "Node" => rt::<Node>(obj),
        "PodDisruptionBudget" => rt::<PodDisruptionBudget>(obj),
        "HorizontalPodAutoscaler" => rt::<HorizontalPodAutoscaler>(obj),
        "Job" => rt::<Job>(obj),
        _ => Ok(obj.clone()),
    }
}

/// Normalises, defaults and validates `obj` (a create when `old` is
/// `None`, else a replacement of `old`). With `strict`, fields the type does
/// not have are a 400 (Kubernetes' `fieldValidation=Strict`) instead of
/// being dropped.
pub fn prepare(
    state: &ApiState,
    res: &ResourceDef,
    obj: &mut Value,
    old: Option<&Value>,
    strict: bool,
) -> Result<(), ApiError> {
    let name = obj["metadata"]["name"]
        .as_str()
        .or(obj["metadata"]["generateName"].as_str())
        .unwrap_or("")
        .to_string();
    // The store's kind is what matters: events.k8s.io Events arrive here
    // already converted to core/v1.
    let kind = res.store_kind.unwrap_or(res.kind);
    let cannot = |e: String| {
        ApiError::bad_request(format!(
            "{} in version \"{}\" cannot be handled as a {}: {e}",
            res.kind, res.version, res.kind
        ))
    };
    let normalized = normalize(kind, obj).map_err(cannot)?;
    // events.k8s.io Events arrive converted, with their own field names.
    if strict && res.group != "events.k8s.io" {
        let mut unknown = Vec::new();
        unknown_fields(obj, &normalized, "", &mut unknown);
        if !unknown.is_empty() {
            let list: Vec<String> = unknown
                .iter()
                .map(|f| format!("unknown field \"{f}\""))
                .collect();
            return Err(cannot(format!(
                "strict decoding error: {}",
                list.join(", ")
            )));
        }
    }
    *obj = normalized;
    let invalid = |m: String| ApiError::invalid(res, &name, m);
    match kind {
        "Deployment" | "ReplicaSet" => {
            default_workload(kind, obj);
            validate_workload(obj, old).map_err(invalid)?;
        }
        "Pod" => {
            default_pod_spec(&mut obj["spec"]);
            validate_pod_spec(&obj["spec"], "spec").map_err(invalid)?;
        }
        "Service" => prepare_service(state, obj, old, invalid)?,
        "Ingress" => crate::ingress::validate(obj).map_err(invalid)?,
        "PodDisruptionBudget" => crate::pdb::validate(obj).map_err(invalid)?,
        "HorizontalPodAutoscaler" => crate::hpa::prepare(obj).map_err(invalid)?,
        "Job" => {
            crate::job::prepare(obj, old).map_err(invalid)?;
            default_pod_spec(&mut obj["spec"]["template"]["spec"]);
            validate_pod_spec(&obj["spec"]["template"]["spec"], "spec.template.spec")
                .map_err(invalid)?;
            crate::job::validate(obj, old).map_err(invalid)?;
        }
        "Namespace" if obj["status"]["phase"].is_null() => {
            obj["status"] = json!({"phase": "Active"});
        }
        _ => {}
    }
    Ok(())
}

/// Paths of fields set in `input` that its typed round trip dropped.
fn unknown_fields(input: &Value, typed: &Value, at: &str, out: &mut Vec<String>) {
    match (input, typed) {
        (Value::Object(i), Value::Object(t)) => {
            for (k, v) in i {
                let path = if at.is_empty() {
                    k.clone()
                } else {
                    format!("{at}.{k}")
                };
                match t.get(k) {
                    None if !v.is_null() => out.push(path),
                    Some(tv) => unknown_fields(v, tv, &path, out),
                    None => {}
                }
            }
        }
        (Value::Array(i), Value::Array(t)) if i.len() == t.len() => {
            for (n, (iv, tv)) in i.iter().zip(t).enumerate() {
                unknown_fields(iv, tv, &format!("{at}[{n}]"), out);
            }
        }
        _ => {}
    }
}

fn set_default(obj: &mut Value, key: &str, v: Value) {
    if obj.is_null() {
        *obj = json!({});
    }
    if obj.get(key).is_none_or(Value::is_null) {
        obj[key] = v;
    }
}

fn default_workload(kind: &str, obj: &mut Value) {
    let spec = &mut obj["spec"];
    set_default(spec, "replicas", json!(1));
    if kind == "Deployment" {
        set_default(spec, "revisionHistoryLimit", json!(10));
        set_default(spec, "progressDeadlineSeconds", json!(600));
        set_default(spec, "strategy", json!({}));
        set_default(&mut spec["strategy"], "type", json!("RollingUpdate"));
        if spec["strategy"]["type"] == "RollingUpdate" {
            set_default(&mut spec["strategy"], "rollingUpdate", json!({}));
            let ru = &mut spec["strategy"]["rollingUpdate"];
            set_default(ru, "maxSurge", json!("25%"));
            set_default(ru, "maxUnavailable", json!("25%"));
        }
    }
    default_pod_spec(&mut spec["template"]["spec"]);
}

/// The pod-spec defaults Kubernetes fills, so templates compare equal
/// however they were written (kubectl rollout undo relies on that).
fn default_pod_spec(spec: &mut Value) {
    if !spec.is_object() {
        return;
    }
    set_default(spec, "restartPolicy", json!("Always"));
    set_default(spec, "terminationGracePeriodSeconds", json!(30));
    set_default(spec, "dnsPolicy", json!("ClusterFirst"));
    set_default(spec, "schedulerName", json!("default-scheduler"));
    set_default(spec, "securityContext", json!({}));
    for field in ["containers", "initContainers"] {
        let Some(cs) = spec.get_mut(field).and_then(Value::as_array_mut) else {
            continue;
        };
        for c in cs {
            let image = c["image"].as_str().unwrap_or("").to_string();
            let tag = image
                .rsplit_once(':')
                .map(|(_, t)| t)
                .filter(|t| !t.contains('/'));
            let policy = if tag.is_none_or(|t| t == "latest") {
                "Always"
            } else {
                "IfNotPresent"
            };
            set_default(c, "imagePullPolicy", json!(policy));
            set_default(c, "terminationMessagePath", json!("/dev/termination-log"));
            set_default(c, "terminationMessagePolicy", json!("File"));
            set_default(c, "resources", json!({}));
            if let Some(ports) = c.get_mut("ports").and_then(Value::as_array_mut) {
                for p in ports {
                    set_default(p, "protocol", json!("TCP"));
                }
            }
            for probe in ["readinessProbe", "livenessProbe", "startupProbe"] {
                if c.get(probe).is_some_and(Value::is_object) {
                    let p = &mut c[probe];
                    set_default(p, "timeoutSeconds", json!(1));
                    set_default(p, "periodSeconds", json!(10));
                    set_default(p, "successThreshold", json!(1));
                    set_default(p, "failureThreshold", json!(3));
                    if p.get("httpGet").is_some_and(Value::is_object) {
                        set_default(&mut p["httpGet"], "scheme", json!("HTTP"));
                        set_default(&mut p["httpGet"], "path", json!("/"));
                    }
                }
            }
        }
    }
}

fn validate_pod_spec(spec: &Value, at: &str) -> Result<(), String> {
    let cs = spec["containers"].as_array().filter(|c| !c.is_empty());
    let Some(cs) = cs else {
        return Err(format!("{at}.containers: Required value"));
    };
    for (i, c) in cs.iter().enumerate() {
        if c["name"].as_str().is_none_or(str::is_empty) {
            return Err(format!("{at}.containers[{i}].name: Required value"));
        }
        if c["image"].as_str().is_none_or(str::is_empty) {
            return Err(format!("{at}.containers[{i}].image: Required value"));
        }
    }
    if spec["terminationGracePeriodSeconds"]
        .as_i64()
        .is_some_and(|g| g < 0)
    {
        return Err(format!(
            "{at}.terminationGracePeriodSeconds: Invalid value: must be greater than or equal to 0"
        ));
    }
    Ok(())
}

fn validate_workload(obj: &Value, old: Option<&Value>) -> Result<(), String> {
    let spec = &obj["spec"];
    if spec["replicas"].as_i64().is_some_and(|r| r < 0) {
        return Err(format!(
            "spec.replicas: Invalid value: {}: must be greater than or equal to 0",
            spec["replicas"]
        ));
    }
    let sel = &spec["selector"];
    let labels = sel["matchLabels"].as_object().filter(|m| !m.is_empty());
    let exprs = sel["matchExpressions"].as_array().filter(|m| !m.is_empty());
    if labels.is_none() && exprs.is_none() {
        return Err("spec.selector: Required value".into());
    }
    if let Some(want) = labels {
        let have = &spec["template"]["metadata"]["labels"];
        if want.iter().any(|(k, v)| have.get(k) != Some(v)) {
            return Err(format!(
                "spec.template.metadata.labels: Invalid value: {}: `selector` does not match template `labels`",
                have
            ));
        }
    }
    if let Some(old) = old
        && old["spec"]["selector"] != *sel
    {
        return Err(format!(
            "spec.selector: Invalid value: {sel}: field is immutable"
        ));
    }
    validate_pod_spec(&spec["template"]["spec"], "spec.template.spec")
}

fn prepare_service(
    state: &ApiState,
    obj: &mut Value,
    old: Option<&Value>,
    invalid: impl Fn(String) -> ApiError,
) -> Result<(), ApiError> {
    // Every other Service: the ClusterIPs and nodePorts they hold.
    let me = (
        obj["metadata"]["namespace"].clone(),
        obj["metadata"]["name"].clone(),
    );
    let (mut others, _) = state.store.list_raw("Service", None);
    others.retain(|s| {
        (
            s["metadata"]["namespace"].clone(),
            s["metadata"]["name"].clone(),
        ) != me
    });
    let spec = &mut obj["spec"];
    set_default(spec, "type", json!("ClusterIP"));
    set_default(spec, "sessionAffinity", json!("None"));
    let ty = spec["type"].as_str().unwrap_or("ClusterIP").to_string();
    if !matches!(
        ty.as_str(),
        "ClusterIP" | "NodePort" | "LoadBalancer" | "ExternalName"
    ) {
        return Err(invalid(format!(
            "spec.type: Unsupported value: \"{ty}\": supported values: \"ClusterIP\", \"ExternalName\", \"LoadBalancer\", \"NodePort\""
        )));
    }
    let old_spec = old.map(|o| &o["spec"]);
    assign_cluster_ip(state, spec, old_spec, &ty, &others, &invalid)?;
    prepare_service_ports(state, obj, old_spec, &ty, &others).map_err(invalid)
}

/// `spec.clusterIP` and `spec.clusterIPs` as the API server sets them: an
/// address from the Service range when none is asked for; one asked for
/// kept if it is in the range and free (422 otherwise); `None` (headless)
/// kept; on an update, the old one kept (422 when another is asked for).
/// An ExternalName Service has none. A deleted Service's address is free
/// again because nothing else holds it: the Services in the store are the
/// allocation table.
fn assign_cluster_ip(
    state: &ApiState,
    spec: &mut Value,
    old_spec: Option<&Value>,
    ty: &str,
    others: &[Value],
    invalid: &impl Fn(String) -> ApiError,
) -> Result<(), ApiError> {
    if ty == "ExternalName" {
        if let Some(o) = spec.as_object_mut() {
            o.remove("clusterIP");
            o.remove("clusterIPs");
        }
        return Ok(());
    }
    let requested = spec["clusterIP"]
        .as_str()
        .filter(|s| !s.is_empty())
        .or(spec["clusterIPs"][0].as_str())
        .unwrap_or("")
        .to_string();
    let old_ip = old_spec
        .and_then(|s| s["clusterIP"].as_str())
        .filter(|s| !s.is_empty());
    let held = || -> Vec<std::net::Ipv4Addr> {
        others
            .iter()
            .filter_map(|s| s["spec"]["clusterIP"].as_str()?.parse().ok())
            .collect()
    };
    let ip = match old_ip {
        Some(old) if !requested.is_empty() && requested != old => {
            return Err(invalid(format!(
                "spec.clusterIP: Invalid value: \"{requested}\": field is immutable"
            )));
        }
        Some(old) => old.to_string(),
        None if requested == "None" => requested,
        None if !requested.is_empty() => state
            .service_ips
            .check(&requested, &held())
            .map_err(|e| invalid(e.message(&state.service_ips)))?
            .to_string(),
        None => {
            // Skip an address some other process (another sandbox, in a
            // test binary beside this one) already listens on at one of
            // this Service's ports: the proxy could not listen there.
            let ports: Vec<u16> = spec["ports"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|p| p["protocol"].as_str().is_none_or(|p| p == "TCP"))
                .filter_map(|p| u16::try_from(p["port"].as_u64()?).ok())
                .collect();
            let free_here = |ip: std::net::Ipv4Addr| {
                ports.iter().all(|&port| {
                    !matches!(
                        TcpListener::bind((ip, port)),
                        Err(e) if e.kind() == std::io::ErrorKind::AddrInUse
                    )
                })
            };
            let mut cursor = state.service_ip_cursor.lock().expect("ClusterIP cursor");
            let (ip, next) = state
                .service_ips
                .next_free(*cursor, &held(), free_here)
                .ok_or_else(|| {
                    ApiError::new(
                        500,
                        "InternalError",
                        "Internal error occurred: failed to allocate a serviceIP: range is full",
                    )
                })?;
            *cursor = next;
            ip.to_string()
        }
    };
    spec["clusterIP"] = json!(ip);
    spec["clusterIPs"] = json!([ip]);
    Ok(())
}

/// Service defaults, and each port's protocol, targetPort and nodePort.
fn prepare_service_ports(
    state: &ApiState,
    obj: &mut Value,
    old_spec: Option<&Value>,
    ty: &str,
    others: &[Value],
) -> Result<(), String> {
    let spec = &mut obj["spec"];
    set_default(spec, "ipFamilies", json!(["IPv4"]));
    set_default(spec, "ipFamilyPolicy", json!("SingleStack"));
    set_default(spec, "internalTrafficPolicy", json!("Cluster"));
    let node_ports = matches!(ty, "NodePort" | "LoadBalancer");
    if node_ports {
        set_default(spec, "externalTrafficPolicy", json!("Cluster"));
    }
    let ports_empty = spec["ports"].as_array().is_none_or(Vec::is_empty);
    if ports_empty && ty != "ExternalName" && spec["clusterIP"] != "None" {
        return Err("spec.ports: Required value".into());
    }
    // Node ports of every other Service, bound by the proxy yet or not.
    let mut taken: Vec<i64> = others
        .iter()
        .flat_map(|s| s["spec"]["ports"].as_array().cloned().unwrap_or_default())
        .filter_map(|p| p["nodePort"].as_i64())
        .collect();
    if let Some(ports) = spec.get_mut("ports").and_then(Value::as_array_mut) {
        for (i, p) in ports.iter_mut().enumerate() {
            let Some(port) = p["port"].as_i64().filter(|p| (1..=65535).contains(p)) else {
                return Err(format!(
                    "spec.ports[{i}].port: Invalid value: {}: must be between 1 and 65535, inclusive",
                    p["port"]
                ));
            };
            set_default(p, "protocol", json!("TCP"));
            set_default(p, "targetPort", json!(port));
            if !node_ports {
                if let Some(o) = p.as_object_mut() {
                    o.remove("nodePort");
                }
                continue;
            }
            if let Some(n) = p["nodePort"].as_i64().filter(|n| *n > 0) {
                if taken.contains(&n) {
                    return Err(format!(
                        "spec.ports[{i}].nodePort: Invalid value: {n}: provided port is already allocated"
                    ));
                }
                taken.push(n);
                continue;
            }
            let kept = old_spec
                .and_then(|s| s["ports"].as_array())
                .and_then(|ps| ps.iter().find(|op| op["port"] == p["port"]))
                .and_then(|op| op["nodePort"].as_i64());
            let np = match kept {
                Some(n) => n,
                None => free_port(state.node_port_bind, &taken).ok_or_else(|| {
                    format!("spec.ports[{i}].nodePort: Internal error: no free port")
                })?,
            };
            taken.push(np);
            p["nodePort"] = json!(np);
        }
    }
    if obj["status"].is_null() {
        obj["status"] = json!({"loadBalancer": {}});
    }
    Ok(())
}

/// A free TCP port on `bind` for a nodePort: a random one from Kubernetes'
/// NodePort range 30000-32767 that can be bound now (that range also stays
/// clear of Linux's ephemeral ports, which outgoing connections use), else
/// whatever the kernel picks.
fn free_port(bind: IpAddr, taken: &[i64]) -> Option<i64> {
    use rand::Rng;
    let mut rng = rand::rng();
    for _ in 0..200 {
        let p: u16 = rng.random_range(30_000..=32_767);
        if !taken.contains(&i64::from(p)) && TcpListener::bind((bind, p)).is_ok() {
            return Some(i64::from(p));
        }
    }
    for _ in 0..16 {
        let l = TcpListener::bind((bind, 0)).ok()?;
        let p = i64::from(l.local_addr().ok()?.port());
        if !taken.contains(&p) {
            return Some(p);
        }
    }
    None
}
