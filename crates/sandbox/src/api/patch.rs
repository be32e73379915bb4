//! Patch algorithms over wire JSON: JSON merge patch (RFC 7386), JSON patch
//! (RFC 6902) and Kubernetes' strategic merge patch for the fields kubectl
//! sends (lists merged by their Kubernetes merge key, e.g. `containers` by
//! `name`; `$patch`, `$setElementOrder`, `$retainKeys` and
//! `$deleteFromPrimitiveList` directives). Pure functions, no I/O.

use serde_json::{Map, Value};

/// Which patch a request carries, from its Content-Type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PatchType {
    Json,
    Merge,
    Strategic,
    Apply,
}

impl PatchType {
    pub fn from_content_type(ct: &str) -> Option<Self> {
        let ct = ct.split(';').next().unwrap_or("").trim();
        Some(match ct {
            "application/json-patch+json" => PatchType::Json,
            "application/merge-patch+json" => PatchType::Merge,
            "application/strategic-merge-patch+json" => PatchType::Strategic,
            "application/apply-patch+yaml" | "application/apply-patch+json" => PatchType::Apply,
            _ => return None,
        })
    }
}

/// Applies `patch` (the raw body) of type `ty` to `doc`. The error is a
/// message for a 4xx Status.
pub fn apply(doc: &Value, patch: &[u8], ty: PatchType) -> Result<Value, String> {
    match ty {
        PatchType::Json => {
            let p: json_patch::Patch =
                serde_json::from_slice(patch).map_err(|e| format!("invalid JSON patch: {e}"))?;
            let mut out = doc.clone();
            json_patch::patch(&mut out, &p)
                .map_err(|e| format!("the JSON patch could not be applied: {e}"))?;
            Ok(out)
        }
        PatchType::Merge => {
            let p: Value = serde_json::from_slice(patch)
                .map_err(|e| format!("invalid JSON merge patch: {e}"))?;
            if !p.is_object() {
                return Err("a JSON merge patch must be a JSON object".into());
            }
            let mut out = doc.clone();
            json_patch::merge(&mut out, &p);
            Ok(out)
        }
        PatchType::Strategic => {
            let p: Value = serde_json::from_slice(patch)
                .map_err(|e| format!("invalid strategic merge patch: {e}"))?;
            if !p.is_object() {
                return Err("a strategic merge patch must be a JSON object".into());
            }
            let mut out = doc.clone();
            strategic_merge(&mut out, &p);
            Ok(out)
        }
        PatchType::Apply => {
            let p = parse_yaml_or_json(patch)?;
            let mut out = doc.clone();
            strategic_merge(&mut out, &p);
            Ok(out)
        }
    }
}

/// Parses a body that is JSON or YAML (one document) into JSON.
pub fn parse_yaml_or_json(body: &[u8]) -> Result<Value, String> {
    let v: Value = match serde_json::from_slice::<Value>(body) {
        Ok(v) => v,
        Err(_) => serde_norway::from_slice(body).map_err(|e| format!("invalid YAML: {e}"))?,
    };
    if !v.is_object() {
        return Err("the body must be a YAML or JSON object".into());
    }
    Ok(v)
}

/// The merge key of a list field, as Kubernetes' `patchMergeKey` tags
/// declare it; `None` means the list is replaced whole.
fn merge_key(field: &str, sample: Option<&Value>) -> Option<&'static str> {
    Some(match field {
        "containers"
        | "initContainers"
        | "ephemeralContainers"
        | "env"
        | "volumes"
        | "imagePullSecrets" => "name",
        "volumeMounts" => "mountPath",
        "volumeDevices" => "devicePath",
        "conditions" => "type",
        "ownerReferences" => "uid",
        "hostAliases" => "ip",
        "ports" => {
            if sample.is_some_and(|s| s.get("containerPort").is_some()) {
                "containerPort"
            } else {
                "port"
            }
        }
        _ => return None,
    })
}

/// Lists of primitives that Kubernetes merges (as a set) instead of replacing.
fn merges_primitives(field: &str) -> bool {
    field == "finalizers"
}

/// Strategic-merges `patch` into `target`.
pub fn strategic_merge(target: &mut Value, patch: &Value) {
    let Some(pobj) = patch.as_object() else {
        *target = patch.clone();
        return;
    };
    if pobj.get("$patch").and_then(Value::as_str) == Some("replace") {
        let mut p = pobj.clone();
        p.remove("$patch");
        *target = Value::Object(p);
        return;
    }
    if !target.is_object() {
        *target = Value::Object(Map::new());
    }
    let tobj = target.as_object_mut().expect("just made an object");
    for (k, pv) in pobj {
        if k == "$patch" || k == "$retainKeys" || k.starts_with("$setElementOrder/") {
            continue;
        }
        if let Some(field) = k.strip_prefix("$deleteFromPrimitiveList/") {
            if let (Some(Value::Array(list)), Some(del)) = (tobj.get_mut(field), pv.as_array()) {
                list.retain(|x| !del.contains(x));
            }
            continue;
        }
        match pv {
            Value::Null => {
                tobj.remove(k);
            }
            Value::Object(po) => {
                if po.get("$patch").and_then(Value::as_str) == Some("delete") {
                    tobj.remove(k);
                    continue;
                }
                let t = tobj.entry(k.clone()).or_insert(Value::Null);
                strategic_merge(t, pv);
            }
            Value::Array(pa) => {
                let t = tobj.entry(k.clone()).or_insert(Value::Array(Vec::new()));
                merge_list(k, t, pa);
            }
            _ => {
                tobj.insert(k.clone(), pv.clone());
            }
        }
    }
    if let Some(Value::Array(keep)) = pobj.get("$retainKeys") {
        let keep: Vec<&str> = keep.iter().filter_map(Value::as_str).collect();
        tobj.retain(|k, _| keep.contains(&k.as_str()));
    }
}

fn merge_list(field: &str, target: &mut Value, patch: &[Value]) {
    if patch
        .iter()
        .any(|e| e.get("$patch").and_then(Value::as_str) == Some("replace"))
    {
        *target = Value::Array(
            patch
                .iter()
                .filter(|e| e.get("$patch").is_none())
                .cloned()
                .collect(),
        );
        return;
    }
    if !target.is_array() {
        *target = Value::Array(Vec::new());
    }
    let list = target.as_array_mut().expect("just made an array");
    if merges_primitives(field) && patch.iter().all(|e| !e.is_object()) {
        for e in patch {
            if !list.contains(e) {
                list.push(e.clone());
            }
        }
        return;
    }
    let Some(key) = merge_key(field, patch.first().or(list.first())) else {
        *list = patch.to_vec();
        return;
    };
    for pe in patch {
        let Some(kv) = pe.get(key) else {
            list.push(pe.clone());
            continue;
        };
        let pos = list.iter().position(|t| t.get(key) == Some(kv));
        if pe.get("$patch").and_then(Value::as_str) == Some("delete") {
            if let Some(i) = pos {
                list.remove(i);
            }
            continue;
        }
        match pos {
            Some(i) => strategic_merge(&mut list[i], pe),
            None => {
                let mut fresh = Value::Object(Map::new());
                strategic_merge(&mut fresh, pe);
                list.push(fresh);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn deploy() -> Value {
        json!({"metadata": {"name": "web", "annotations": {"a": "1"}},
               "spec": {"replicas": 3, "template": {"spec": {"containers": [
                   {"name": "nginx", "image": "nginx:1.27", "ports": [{"containerPort": 80}]},
                   {"name": "side", "image": "busybox"}]}}}})
    }

    #[test]
    fn strategic_patch_like_kubectl_set_image_merges_containers_by_name() {
        let p = br#"{"spec":{"template":{"spec":{"$setElementOrder/containers":[{"name":"nginx"},{"name":"side"}],"containers":[{"image":"nginx:1.28","name":"nginx"}]}}}}"#;
        let out = apply(&deploy(), p, PatchType::Strategic).unwrap();
        let cs = out["spec"]["template"]["spec"]["containers"]
            .as_array()
            .unwrap();
        assert_eq!(cs.len(), 2);
        assert_eq!(cs[0]["image"], "nginx:1.28");
        assert_eq!(cs[0]["ports"][0]["containerPort"], 80);
        assert_eq!(cs[1]["image"], "busybox");
    }

    #[test]
    fn strategic_patch_handles_delete_directives_and_nulls() {
        let p = json!({"metadata": {"annotations": {"a": null, "b": "2"}},
                       "spec": {"template": {"spec": {"containers": [{"name": "side", "$patch": "delete"}]}}}});
        let mut d = deploy();
        strategic_merge(&mut d, &p);
        assert_eq!(d["metadata"]["annotations"], json!({"b": "2"}));
        assert_eq!(
            d["spec"]["template"]["spec"]["containers"]
                .as_array()
                .unwrap()
                .len(),
            1
        );
    }

    #[test]
    fn merge_patch_replaces_lists_and_json_patch_follows_rfc6902() {
        let out = apply(
            &deploy(),
            br#"{"spec":{"replicas":5,"paused":true}}"#,
            PatchType::Merge,
        )
        .unwrap();
        assert_eq!(out["spec"]["replicas"], 5);
        assert_eq!(out["spec"]["paused"], true);
        let out = apply(
            &deploy(),
            br#"[{"op":"replace","path":"/spec/replicas","value":1},{"op":"add","path":"/metadata/labels","value":{"x":"y"}}]"#,
            PatchType::Json,
        )
        .unwrap();
        assert_eq!(out["spec"]["replicas"], 1);
        assert_eq!(out["metadata"]["labels"]["x"], "y");
    }

    #[test]
    fn bad_patches_are_errors_not_panics() {
        let bodies: &[&[u8]] = &[
            b"",
            b"{",
            b"[1,2",
            b"null",
            b"42",
            b"\"x\"",
            b"[{\"op\":\"nope\"}]",
            b"\xff\xfe",
        ];
        for ty in [
            PatchType::Json,
            PatchType::Merge,
            PatchType::Strategic,
            PatchType::Apply,
        ] {
            for b in bodies {
                assert!(apply(&deploy(), b, ty).is_err(), "{ty:?} {b:?}");
            }
        }
        let missing = br#"[{"op":"replace","path":"/spec/nope/x","value":1}]"#;
        assert!(apply(&deploy(), missing, PatchType::Json).is_err());
        let failed_test = br#"[{"op":"test","path":"/spec/replicas","value":9}]"#;
        assert!(apply(&deploy(), failed_test, PatchType::Json).is_err());
    }

    #[test]
    fn apply_patch_accepts_yaml() {
        let out = apply(&deploy(), b"spec:\n  replicas: 7\n", PatchType::Apply).unwrap();
        assert_eq!(out["spec"]["replicas"], 7);
        assert_eq!(
            out["spec"]["template"]["spec"]["containers"][0]["name"],
            "nginx"
        );
    }
}
