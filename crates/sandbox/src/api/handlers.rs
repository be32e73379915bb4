//! The verbs on single objects: get, create, update, patch (merge,
//! strategic, JSON, server-side apply), delete (graceful for Pods), the
//! `scale` and `status` subresources, and SelfSubjectAccessReview.

use http::Response;
use serde_json::{Value, json};

use super::patch::{self, PatchType};
use super::prepare::prepare;
use super::resources::{self, ResourceDef};
use super::status::ApiError;
use super::{ApiState, Body, Call, Target, json_response, table};
use crate::store::{StoreError, now_value};

/// How many times a patch is retried when a concurrent write wins.
const PATCH_RETRIES: usize = 8;

fn store_kind(res: &ResourceDef) -> &'static str {
    res.store_kind.unwrap_or(res.kind)
}

fn ns(t: &Target) -> Option<&str> {
    if t.res.namespaced {
        t.namespace.as_deref()
    } else {
        None
    }
}

fn name(t: &Target) -> &str {
    t.name.as_deref().unwrap_or("")
}

/// Converts a stored object to what `res` serves (core/v1 Events become
/// events.k8s.io/v1 Events for that group; autoscaling/v2
/// HorizontalPodAutoscalers become autoscaling/v1 ones for that version).
pub fn to_wire(res: &ResourceDef, obj: Value) -> Value {
    match (res.group, res.version) {
        ("events.k8s.io", _) => core_event_to_v1(&obj),
        ("autoscaling", "v1") => super::autoscaling::v2_to_v1(&obj),
        _ => obj,
    }
}

/// The events.k8s.io/v1 view of a core/v1 Event (Kubernetes stores one kind
/// and converts, field by field as below).
pub fn core_event_to_v1(e: &Value) -> Value {
    let mut out = json!({
        "kind": "Event",
        "apiVersion": "events.k8s.io/v1",
        "metadata": e["metadata"].clone(),
    });
    let event_time = if e["eventTime"].is_string() {
        e["eventTime"].clone()
    } else {
        // eventTime is required in events.k8s.io/v1; Kubernetes fills it from
        // the legacy timestamps for Events written through core/v1.
        let t = e["firstTimestamp"]
            .as_str()
            .or(e["lastTimestamp"].as_str())
            .or(e["metadata"]["creationTimestamp"].as_str())
            .unwrap_or("1970-01-01T00:00:00Z");
        json!(t.replacen('Z', ".000000Z", 1))
    };
    out["eventTime"] = event_time;
    let map = [
        ("involvedObject", "regarding"),
        ("message", "note"),
        ("source", "deprecatedSource"),
        ("firstTimestamp", "deprecatedFirstTimestamp"),
        ("lastTimestamp", "deprecatedLastTimestamp"),
        ("count", "deprecatedCount"),
        ("reportingComponent", "reportingController"),
        ("reportingInstance", "reportingInstance"),
        ("reason", "reason"),
        ("type", "type"),
        ("action", "action"),
        ("related", "related"),
        ("series", "series"),
    ];
    for (from, to) in map {
        if let Some(v) = e.get(from).filter(|v| !v.is_null()) {
            out[to] = v.clone();
        }
    }
    if let Some(s) = out.get_mut("series").and_then(Value::as_object_mut) {
        s.remove("state");
    }
    out
}

fn v1_event_to_core(e: &Value) -> Value {
    let mut out = json!({"kind": "Event", "apiVersion": "v1", "metadata": e["metadata"].clone()});
    let map = [
        ("regarding", "involvedObject"),
        ("note", "message"),
        ("deprecatedSource", "source"),
        ("deprecatedFirstTimestamp", "firstTimestamp"),
        ("deprecatedLastTimestamp", "lastTimestamp"),
        ("deprecatedCount", "count"),
        ("reportingController", "reportingComponent"),
        ("reportingInstance", "reportingInstance"),
        ("reason", "reason"),
        ("type", "type"),
        ("action", "action"),
        ("related", "related"),
        ("series", "series"),
        ("eventTime", "eventTime"),
    ];
    for (from, to) in map {
        if let Some(v) = e.get(from).filter(|v| !v.is_null()) {
            out[to] = v.clone();
        }
    }
    if out["involvedObject"].is_null() {
        out["involvedObject"] = json!({});
    }
    out
}

fn from_wire(res: &ResourceDef, obj: Value) -> Result<Value, ApiError> {
    match (res.group, res.version) {
        ("events.k8s.io", _) => Ok(v1_event_to_core(&obj)),
        ("autoscaling", "v1") => super::autoscaling::v1_to_v2(&obj).map_err(|e| {
            ApiError::bad_request(format!(
                "{} in version \"{}\" cannot be handled as a {}: {e}",
                res.kind, res.version, res.kind
            ))
        }),
        _ => Ok(obj),
    }
}

/// Decodes a request body (JSON, or YAML when the Content-Type says so)
/// into an object of `res`'s kind.
fn decode(res: &ResourceDef, call: &Call) -> Result<Value, ApiError> {
    if call.content_type.contains("protobuf") && res.kind == "HorizontalPodAutoscaler" {
        // `kubectl autoscale` sends its HPA as protobuf, whatever the server.
        let v =
            super::protobuf::decode_hpa(&call.body, res.version).map_err(ApiError::bad_request)?;
        check_type(res, &v)?;
        return Ok(v);
    }
    if call.content_type.contains("protobuf") || call.content_type.contains("cbor") {
        return Err(ApiError::new(
            415,
            "UnsupportedMediaType",
            format!("the sandbox speaks JSON only, not {}", call.content_type),
        ));
    }
    let v: Value = if call.content_type.contains("yaml") {
        patch::parse_yaml_or_json(&call.body).map_err(ApiError::bad_request)?
    } else {
        serde_json::from_slice(&call.body).map_err(|e| {
            ApiError::bad_request(format!("the request body is not valid JSON: {e}"))
        })?
    };
    if !v.is_object() {
        return Err(ApiError::bad_request(
            "the request body must be a JSON object",
        ));
    }
    check_type(res, &v)?;
    Ok(v)
}

fn check_type(res: &ResourceDef, v: &Value) -> Result<(), ApiError> {
    if !matches!(
        v.get("metadata"),
        None | Some(Value::Null | Value::Object(_))
    ) {
        return Err(ApiError::bad_request(format!(
            "{} in version \"{}\" cannot be handled as a {}: metadata must be an object",
            res.kind, res.version, res.kind
        )));
    }
    if let Some(k) = v.get("kind").and_then(Value::as_str)
        && k != res.kind
    {
        return Err(ApiError::bad_request(format!(
            "the kind of the object ({k}) does not match the resource {} (kind {})",
            res.qualified(),
            res.kind
        )));
    }
    if let Some(av) = v.get("apiVersion").and_then(Value::as_str)
        && av != res.api_version()
    {
        return Err(ApiError::bad_request(format!(
            "the API version of the object ({av}) does not match {}",
            res.api_version()
        )));
    }
    Ok(())
}

/// Puts the request's namespace into the object, or refuses a mismatch.
fn place(t: &Target, obj: &mut Value) -> Result<(), ApiError> {
    if !t.res.namespaced {
        return Ok(());
    }
    let Some(path_ns) = t.namespace.as_deref() else {
        return Err(ApiError::bad_request(format!(
            "{} must be created in a namespace: use /namespaces/<ns>/{}",
            t.res.plural, t.res.plural
        )));
    };
    if !obj["metadata"].is_object() {
        obj["metadata"] = json!({});
    }
    match obj["metadata"]["namespace"].as_str() {
        Some(n) if !n.is_empty() && n != path_ns => Err(ApiError::bad_request(
            "the namespace of the provided object does not match the namespace sent on the request",
        )),
        _ => {
            obj["metadata"]["namespace"] = json!(path_ns);
            Ok(())
        }
    }
}

fn require_namespace(state: &ApiState, t: &Target) -> Result<(), ApiError> {
    let Some(n) = ns(t) else { return Ok(()) };
    if state.store.get_raw("Namespace", None, n).is_none() {
        let res = resources::for_kind("Namespace").expect("namespaces are served");
        return Err(ApiError::not_found(res, n));
    }
    Ok(())
}

fn wants_table(call: &Call) -> bool {
    call.accept.contains("as=Table")
}

pub fn get(state: &ApiState, t: &Target, call: &Call) -> Result<Response<Body>, ApiError> {
    let obj = state
        .store
        .get_raw(store_kind(t.res), ns(t), name(t))
        .ok_or_else(|| ApiError::not_found(t.res, name(t)))?;
    if t.sub.as_deref() == Some("scale") {
        return Ok(json_response(200, &scale_of(&obj)));
    }
    if t.sub.as_deref() == Some("log") {
        // Process containers' output; simulated Pods have none.
        return super::podio::log(state, t, &call.query);
    }
    if wants_table(call) && t.sub.is_none() {
        let rv = obj["metadata"]["resourceVersion"]
            .as_str()
            .unwrap_or("")
            .to_string();
        return Ok(json_response(200, &table::table(t.res, &[obj], &rv)));
    }
    Ok(json_response(200, &to_wire(t.res, obj)))
}

pub fn create(state: &ApiState, t: &Target, call: &Call) -> Result<Response<Body>, ApiError> {
    if t.res.store_kind.is_none() {
        return access_review(state, t, call);
    }
    if t.sub.as_deref() == Some("eviction") {
        return super::eviction::evict(state, t, call);
    }
    let obj = decode(t.res, call)?;
    let (code, obj) = create_object(state, t, obj, dry_run(call), strict_fields(call))?;
    Ok(json_response(code, &to_wire(t.res, obj)))
}

/// `?fieldValidation=Strict` (what kubectl sends): unknown fields are an
/// error rather than dropped.
fn strict_fields(call: &Call) -> bool {
    call.query.get("fieldValidation").map(String::as_str) == Some("Strict")
}

/// `?dryRun=All`: validate and answer as if written, write nothing.
fn dry_run(call: &Call) -> bool {
    call.query.get("dryRun").is_some_and(|v| !v.is_empty())
}

/// Creates `obj` (already decoded, in wire form) for `t`.
pub fn create_object(
    state: &ApiState,
    t: &Target,
    obj: Value,
    dry: bool,
    strict: bool,
) -> Result<(u16, Value), ApiError> {
    let mut obj = from_wire(t.res, obj)?;
    place(t, &mut obj)?;
    require_namespace(state, t)?;
    prepare(state, t.res, &mut obj, None, strict)?;
    let shown = obj["metadata"]["name"]
        .as_str()
        .or(obj["metadata"]["generateName"].as_str())
        .unwrap_or("")
        .to_string();
    if dry {
        let exists = obj["metadata"]["name"]
            .as_str()
            .is_some_and(|n| state.store.get_raw(store_kind(t.res), ns(t), n).is_some());
        if exists {
            return Err(ApiError::from_store(
                StoreError::AlreadyExists {
                    kind: "",
                    name: shown.clone(),
                },
                t.res,
                &shown,
            ));
        }
        return Ok((201, obj));
    }
    let created = state
        .store
        .create_raw(store_kind(t.res), obj)
        .map_err(|e| ApiError::from_store(e, t.res, &shown))?;
    Ok((201, created))
}

pub fn update(state: &ApiState, t: &Target, call: &Call) -> Result<Response<Body>, ApiError> {
    if t.sub.as_deref() == Some("scale") {
        let scale: Value = serde_json::from_slice(&call.body).map_err(|e| {
            ApiError::bad_request(format!("the request body is not valid JSON: {e}"))
        })?;
        return set_scale(state, t, &scale).map(|v| json_response(200, &v));
    }
    let mut obj = from_wire(t.res, decode(t.res, call)?)?;
    match obj["metadata"]["name"].as_str() {
        Some(n) if n == name(t) => {}
        Some(n) => {
            return Err(ApiError::bad_request(format!(
                "the name of the object ({n}) does not match the name on the URL ({})",
                name(t)
            )));
        }
        None => obj["metadata"]["name"] = json!(name(t)),
    }
    place(t, &mut obj)?;
    let kind = store_kind(t.res);
    let old = state
        .store
        .get_raw(kind, ns(t), name(t))
        .ok_or_else(|| ApiError::not_found(t.res, name(t)))?;
    prepare(state, t.res, &mut obj, Some(&old), strict_fields(call))?;
    if dry_run(call) {
        return Ok(json_response(200, &to_wire(t.res, obj)));
    }
    let r = if t.sub.as_deref() == Some("status") {
        state.store.update_status_raw(kind, obj)
    } else {
        state.store.update_raw(kind, obj)
    };
    let v = r.map_err(|e| ApiError::from_store(e, t.res, name(t)))?;
    Ok(json_response(200, &to_wire(t.res, v)))
}

pub fn patch(state: &ApiState, t: &Target, call: &Call) -> Result<Response<Body>, ApiError> {
    let ty = PatchType::from_content_type(&call.content_type).ok_or_else(|| {
        ApiError::new(
            415,
            "UnsupportedMediaType",
            format!(
                "the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml, application/strategic-merge-patch+json (got {:?})",
                call.content_type
            ),
        )
    })?;
    let kind = store_kind(t.res);
    if ty == PatchType::Apply {
        if call.query.get("fieldManager").is_none_or(|m| m.is_empty()) {
            return Err(ApiError::bad_request(
                "PatchOptions.meta.k8s.io \"\" is invalid: fieldManager: Required value: is required for apply patch",
            ));
        }
        if t.sub.is_none() && state.store.get_raw(kind, ns(t), name(t)).is_none() {
            return apply_create(state, t, call);
        }
    }
    for _ in 0..PATCH_RETRIES {
        let old = state
            .store
            .get_raw(kind, ns(t), name(t))
            .ok_or_else(|| ApiError::not_found(t.res, name(t)))?;
        let old_rv = old["metadata"]["resourceVersion"].clone();
        if t.sub.as_deref() == Some("scale") {
            let scale =
                patch::apply(&scale_of(&old), &call.body, ty).map_err(|m| patch_error(t, m))?;
            match set_scale_at(state, t, &scale, Some(&old_rv)) {
                Err(e)
                    if e.reason == "Conflict" && scale["metadata"]["resourceVersion"] == old_rv =>
                {
                    continue;
                }
                r => return r.map(|v| json_response(200, &v)),
            }
        }
        let wire = to_wire(t.res, old.clone());
        if ty == PatchType::Apply {
            let manifest = patch::parse_yaml_or_json(&call.body).map_err(ApiError::bad_request)?;
            check_type(t.res, &manifest)?;
        }
        let patched = patch::apply(&wire, &call.body, ty).map_err(|m| patch_error(t, m))?;
        let mut obj = from_wire(t.res, patched)?;
        if !obj.is_object() || !obj["metadata"].is_object() {
            return Err(ApiError::invalid(
                t.res,
                name(t),
                "the patched object has no metadata",
            ));
        }
        // A resourceVersion the patch itself sets is a precondition.
        let sent_rv = obj["metadata"]["resourceVersion"].clone();
        if sent_rv.as_str().is_some_and(|rv| !rv.is_empty()) && sent_rv != old_rv {
            return Err(ApiError::from_store(
                StoreError::Conflict {
                    kind,
                    name: name(t).into(),
                },
                t.res,
                name(t),
            ));
        }
        // The patch may not rename or move the object, and it is applied to
        // the version just read: a concurrent write makes it retry.
        obj["metadata"]["name"] = json!(name(t));
        if let Some(n) = ns(t) {
            obj["metadata"]["namespace"] = json!(n);
        }
        obj["metadata"]["resourceVersion"] = old_rv;
        prepare(state, t.res, &mut obj, Some(&old), strict_fields(call))?;
        if dry_run(call) {
            return Ok(json_response(200, &to_wire(t.res, obj)));
        }
        let r = if t.sub.as_deref() == Some("status") {
            state.store.update_status_raw(kind, obj)
        } else {
            state.store.update_raw(kind, obj)
        };
        match r {
            Err(StoreError::Conflict { .. }) => continue,
            r => {
                let v = r.map_err(|e| ApiError::from_store(e, t.res, name(t)))?;
                return Ok(json_response(200, &to_wire(t.res, v)));
            }
        }
    }
    Err(ApiError::from_store(
        StoreError::Conflict {
            kind: "",
            name: name(t).into(),
        },
        t.res,
        name(t),
    ))
}

fn patch_error(t: &Target, m: String) -> ApiError {
    if m.starts_with("invalid") || m.starts_with("a ") {
        ApiError::bad_request(m)
    } else {
        ApiError::invalid(t.res, name(t), m)
    }
}

/// Server-side apply of a manifest for an object that does not exist yet.
fn apply_create(state: &ApiState, t: &Target, call: &Call) -> Result<Response<Body>, ApiError> {
    let mut obj = patch::parse_yaml_or_json(&call.body).map_err(ApiError::bad_request)?;
    check_type(t.res, &obj)?;
    if !obj["metadata"].is_object() {
        obj["metadata"] = json!({});
    }
    match obj["metadata"]["name"].as_str() {
        Some(n) if n != name(t) => {
            return Err(ApiError::bad_request(format!(
                "the name of the object ({n}) does not match the name on the URL ({})",
                name(t)
            )));
        }
        _ => obj["metadata"]["name"] = json!(name(t)),
    }
    let (code, v) = create_object(state, t, obj, dry_run(call), strict_fields(call))?;
    Ok(json_response(code, &to_wire(t.res, v)))
}

/// Applies a whole manifest (from the sandbox config): create it if absent,
/// else merge it into the live object, as server-side apply does for a
/// single field manager.
pub fn apply_manifest(state: &ApiState, manifest: &Value) -> Result<Value, ApiError> {
    let kind = manifest["kind"].as_str().unwrap_or("");
    let api_version = manifest["apiVersion"].as_str().unwrap_or("");
    let res = resources::RESOURCES
        .iter()
        .find(|r| r.kind == kind && r.api_version() == api_version && r.store_kind.is_some())
        .ok_or_else(|| {
            ApiError::bad_request(format!(
                "the sandbox does not serve kind {kind:?} in apiVersion {api_version:?}"
            ))
        })?;
    let obj_name = manifest["metadata"]["name"]
        .as_str()
        .ok_or_else(|| ApiError::invalid(res, "", "metadata.name: Required value"))?
        .to_string();
    let t = Target {
        res,
        namespace: res.namespaced.then(|| {
            manifest["metadata"]["namespace"]
                .as_str()
                .unwrap_or("default")
                .to_string()
        }),
        name: Some(obj_name),
        sub: None,
        watch_path: false,
    };
    let call = Call {
        method: http::Method::PATCH,
        query: [("fieldManager".to_string(), "baton-sandbox".to_string())].into(),
        accept: "application/json".into(),
        content_type: "application/apply-patch+yaml".into(),
        body: serde_json::to_vec(manifest).unwrap_or_default().into(),
    };
    patch(state, &t, &call)?;
    state
        .store
        .get_raw(store_kind(res), ns(&t), name(&t))
        .ok_or_else(|| ApiError::not_found(res, name(&t)))
}

pub fn delete(state: &ApiState, t: &Target, call: &Call) -> Result<Response<Body>, ApiError> {
    let opts: Value = if call.body.iter().all(u8::is_ascii_whitespace) {
        json!({})
    } else {
        serde_json::from_slice(&call.body).map_err(|e| {
            ApiError::bad_request(format!("the DeleteOptions body is not valid JSON: {e}"))
        })?
    };
    if !opts.is_object() {
        return Err(ApiError::bad_request(
            "the DeleteOptions body must be a JSON object",
        ));
    }
    let grace = match call.query.get("gracePeriodSeconds") {
        Some(g) => Some(g.parse::<i64>().map_err(|_| {
            ApiError::bad_request(format!("gracePeriodSeconds: invalid value {g:?}"))
        })?),
        None => opts["gracePeriodSeconds"].as_i64(),
    };
    let policy = call
        .query
        .get("propagationPolicy")
        .cloned()
        .or(opts["propagationPolicy"].as_str().map(str::to_string))
        .unwrap_or_else(|| "Background".into());
    let kind = store_kind(t.res);
    let old = state
        .store
        .get_raw(kind, ns(t), name(t))
        .ok_or_else(|| ApiError::not_found(t.res, name(t)))?;
    if let Some(uid) = opts["preconditions"]["uid"].as_str()
        && old["metadata"]["uid"].as_str() != Some(uid)
    {
        return Err(ApiError::from_store(
            StoreError::Conflict {
                kind,
                name: name(t).into(),
            },
            t.res,
            name(t),
        ));
    }
    let dry_body = opts["dryRun"].as_array().is_some_and(|a| !a.is_empty());
    if dry_run(call) || dry_body {
        return Ok(json_response(200, &to_wire(t.res, old)));
    }
    if kind == "Pod" {
        return delete_pod(state, t, &old, grace).map(|v| json_response(200, &v));
    }
    let gone = state
        .store
        .remove_raw(kind, ns(t), name(t))
        .map_err(|e| ApiError::from_store(e, t.res, name(t)))?;
    if policy != "Orphan" {
        collect_dependents(state, &gone);
    } else {
        orphan_dependents(state, &gone);
    }
    Ok(json_response(200, &to_wire(t.res, gone)))
}

/// Graceful Pod deletion: sets `deletionTimestamp` (now + grace) and
/// `deletionGracePeriodSeconds`; the kubelet removes the Pod when its
/// containers are gone. A second delete may shorten the grace period, never
/// extend it. Grace 0, or a Pod that already finished, goes at once.
pub(super) fn delete_pod(
    state: &ApiState,
    t: &Target,
    old: &Value,
    grace: Option<i64>,
) -> Result<Value, ApiError> {
    let spec_grace = old["spec"]["terminationGracePeriodSeconds"]
        .as_i64()
        .unwrap_or(30);
    let grace = grace.unwrap_or(spec_grace).max(0);
    let finished = matches!(
        old["status"]["phase"].as_str(),
        Some("Succeeded" | "Failed")
    );
    if grace == 0 || finished {
        return state
            .store
            .remove_raw("Pod", ns(t), name(t))
            .map_err(|e| ApiError::from_store(e, t.res, name(t)));
    }
    state
        .store
        .modify_raw("Pod", ns(t), name(t), |p| {
            let current = p["metadata"]["deletionGracePeriodSeconds"].as_i64();
            if current.is_some_and(|c| c <= grace) {
                return Ok(());
            }
            let at =
                crate::store::now_timestamp() + k8s_openapi::jiff::SignedDuration::from_secs(grace);
            p["metadata"]["deletionTimestamp"] =
                serde_json::to_value(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(at))
                    .unwrap_or_else(|_| now_value());
            p["metadata"]["deletionGracePeriodSeconds"] = json!(grace);
            Ok(())
        })
        .map_err(|e| ApiError::from_store(e, t.res, name(t)))
}

/// The garbage collector's part the sandbox needs: a deleted Deployment's
/// ReplicaSets go with it. (Pods of a vanished ReplicaSet or Job are the
/// ReplicaSet or Job controller's business: they delete them gracefully.)
fn collect_dependents(state: &ApiState, gone: &Value) {
    let Some(uid) = gone["metadata"]["uid"].as_str() else {
        return;
    };
    if gone["kind"] != "Deployment" {
        return;
    }
    let ns = gone["metadata"]["namespace"].as_str();
    let (rss, _) = state.store.list_raw("ReplicaSet", ns);
    for rs in rss {
        let owned = rs["metadata"]["ownerReferences"]
            .as_array()
            .is_some_and(|o| o.iter().any(|r| r["uid"] == uid));
        if owned && let Some(n) = rs["metadata"]["name"].as_str() {
            let _ = state.store.remove_raw("ReplicaSet", ns, n);
        }
    }
}

/// `propagationPolicy: Orphan` on a Job: its Pods lose their
/// ownerReference and live on (otherwise the Job controller's garbage
/// collection would delete them). (Orphaned ReplicaSets keep theirs: the
/// sandbox's Deployment controller never adopts or collects them.)
fn orphan_dependents(state: &ApiState, gone: &Value) {
    let Some(uid) = gone["metadata"]["uid"].as_str() else {
        return;
    };
    if gone["kind"] != "Job" {
        return;
    }
    let ns = gone["metadata"]["namespace"].as_str();
    let (pods, _) = state.store.list_raw("Pod", ns);
    for p in pods {
        let owned = p["metadata"]["ownerReferences"]
            .as_array()
            .is_some_and(|o| o.iter().any(|r| r["uid"] == uid));
        if owned && let Some(n) = p["metadata"]["name"].as_str() {
            let _ = state.store.modify_raw("Pod", ns, n, |p| {
                if let Some(refs) = p["metadata"]["ownerReferences"].as_array_mut() {
                    refs.retain(|r| r["uid"] != uid);
                }
                Ok(())
            });
        }
    }
}

/// The autoscaling/v1 Scale view of a Deployment.
fn scale_of(d: &Value) -> Value {
    let sel = &d["spec"]["selector"];
    let mut parts: Vec<String> = sel["matchLabels"]
        .as_object()
        .map(|m| {
            m.iter()
                .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or("")))
                .collect()
        })
        .unwrap_or_default();
    for e in sel["matchExpressions"].as_array().into_iter().flatten() {
        let key = e["key"].as_str().unwrap_or("");
        let vals: Vec<&str> = e["values"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        parts.push(match e["operator"].as_str().unwrap_or("") {
            "In" => format!("{key} in ({})", vals.join(",")),
            "NotIn" => format!("{key} notin ({})", vals.join(",")),
            "Exists" => key.to_string(),
            _ => format!("!{key}"),
        });
    }
    let m = &d["metadata"];
    json!({
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": {
            "name": m["name"], "namespace": m["namespace"], "uid": m["uid"],
            "resourceVersion": m["resourceVersion"], "creationTimestamp": m["creationTimestamp"],
        },
        "spec": {"replicas": d["spec"]["replicas"].as_i64().unwrap_or(1)},
        "status": {
            "replicas": d["status"]["replicas"].as_i64().unwrap_or(0),
            "selector": parts.join(","),
        },
    })
}

fn set_scale(state: &ApiState, t: &Target, scale: &Value) -> Result<Value, ApiError> {
    set_scale_at(state, t, scale, None)
}

/// Writes `scale.spec.replicas` into the Deployment, checking the Scale's
/// resourceVersion (or `expect_rv`) against the Deployment's.
fn set_scale_at(
    state: &ApiState,
    t: &Target,
    scale: &Value,
    expect_rv: Option<&Value>,
) -> Result<Value, ApiError> {
    let replicas = scale["spec"]["replicas"]
        .as_i64()
        .ok_or_else(|| ApiError::invalid(t.res, name(t), "spec.replicas: Required value"))?;
    if replicas < 0 {
        return Err(ApiError::invalid(
            t.res,
            name(t),
            format!("spec.replicas: Invalid value: {replicas}: must be greater than or equal to 0"),
        ));
    }
    let want_rv = scale["metadata"]["resourceVersion"]
        .as_str()
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .or_else(|| expect_rv.and_then(Value::as_str).map(str::to_string));
    let d = state
        .store
        .modify_raw(store_kind(t.res), ns(t), name(t), |d| {
            if let Some(rv) = &want_rv
                && d["metadata"]["resourceVersion"].as_str() != Some(rv)
            {
                return Err(StoreError::Conflict {
                    kind: "Deployment",
                    name: String::new(),
                });
            }
            d["spec"]["replicas"] = json!(replicas);
            Ok(())
        })
        .map_err(|e| ApiError::from_store(e, t.res, name(t)))?;
    Ok(scale_of(&d))
}

/// SelfSubjectAccessReview: allowed unless a deny rule matches or an
/// allow list leaves it out.
fn access_review(state: &ApiState, t: &Target, call: &Call) -> Result<Response<Body>, ApiError> {
    let mut review = if call.content_type.contains("protobuf") {
        super::protobuf::decode_ssar(&call.body).map_err(ApiError::bad_request)?
    } else {
        decode(t.res, call)?
    };
    let attrs = &review["spec"]["resourceAttributes"];
    let (allowed, reason) = if attrs.is_object() {
        let s = |k: &str| attrs[k].as_str().unwrap_or("").to_string();
        let resource = match s("subresource") {
            sub if sub.is_empty() => s("resource"),
            sub => format!("{}/{sub}", s("resource")),
        };
        let denied = state.denied(&s("verb"), &s("group"), &resource);
        (
            !denied,
            if denied {
                "denied by a sandbox access rule"
            } else {
                "allowed by the sandbox's access rules"
            },
        )
    } else {
        (true, "non-resource URLs are always allowed by the sandbox")
    };
    review["kind"] = json!("SelfSubjectAccessReview");
    review["apiVersion"] = json!("authorization.k8s.io/v1");
    if !review["metadata"].is_object() {
        review["metadata"] = json!({});
    }
    review["metadata"]["creationTimestamp"] = Value::Null;
    review["status"] = json!({"allowed": allowed, "reason": reason});
    if !allowed {
        review["status"]["denied"] = json!(true);
    }
    Ok(json_response(201, &review))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn core_events_convert_to_events_v1_and_back() {
        let core = json!({"metadata": {"name": "e1", "namespace": "default", "creationTimestamp": "2026-01-01T00:00:00Z"},
            "involvedObject": {"kind": "Pod", "name": "web-1"}, "reason": "Killing", "message": "Stopping container nginx",
            "type": "Normal", "count": 2, "source": {"component": "kubelet"}, "firstTimestamp": "2026-01-01T00:00:01Z"});
        let v1 = core_event_to_v1(&core);
        assert_eq!(v1["regarding"]["name"], "web-1");
        assert_eq!(v1["note"], "Stopping container nginx");
        assert_eq!(v1["deprecatedCount"], 2);
        assert_eq!(v1["eventTime"], "2026-01-01T00:00:01.000000Z");
        let typed: k8s_openapi::api::events::v1::Event =
            serde_json::from_value(v1.clone()).unwrap();
        assert_eq!(typed.reason.as_deref(), Some("Killing"));
        let back = v1_event_to_core(&v1);
        assert_eq!(back["involvedObject"], core["involvedObject"]);
        assert_eq!(back["message"], core["message"]);
    }

    #[test]
    fn scale_view_carries_replicas_and_a_selector_string() {
        let d = json!({"metadata": {"name": "web", "resourceVersion": "7"},
            "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "web"},
              "matchExpressions": [{"key": "tier", "operator": "In", "values": ["a", "b"]}]}},
            "status": {"replicas": 2}});
        let s = scale_of(&d);
        assert_eq!(s["spec"]["replicas"], 3);
        assert_eq!(s["status"]["replicas"], 2);
        assert_eq!(s["status"]["selector"], "app=web,tier in (a,b)");
        assert_eq!(s["metadata"]["resourceVersion"], "7");
    }
}
