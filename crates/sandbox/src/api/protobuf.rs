//! Just enough of Kubernetes' protobuf encoding to read the bodies kubectl
//! insists on sending as protobuf that the sandbox serves: a
//! SelfSubjectAccessReview (`kubectl auth can-i`) and a
//! HorizontalPodAutoscaler, autoscaling/v2 or v1 (`kubectl autoscale`:
//! metadata names, labels and annotations, the scale target, min/max, and
//! `Resource` metrics). Everything else is JSON.
//!
//! The envelope is the magic `k8s\0` followed by a `runtime.Unknown`
//! message whose field 2 holds the object's own protobuf.

use serde_json::{Value, json};

const MAGIC: &[u8] = b"k8s\0";

/// One protobuf field: number and, for length-delimited fields, the bytes
/// (for varints, the value).
struct Field<'a> {
    number: u64,
    bytes: Option<&'a [u8]>,
    value: Option<u64>,
}

fn varint(b: &[u8], i: &mut usize) -> Option<u64> {
    let mut v = 0u64;
    for shift in (0..64).step_by(7) {
        let byte = *b.get(*i)?;
        *i += 1;
        v |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return Some(v);
        }
    }
    None
}

fn fields(b: &[u8]) -> Option<Vec<Field<'_>>> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let key = varint(b, &mut i)?;
        let (number, wire) = (key >> 3, key & 7);
        let mut value = None;
        let bytes = match wire {
            0 => {
                value = Some(varint(b, &mut i)?);
                None
            }
            1 => {
                i = i.checked_add(8)?;
                None
            }
            2 => {
                let len = usize::try_from(varint(b, &mut i)?).ok()?;
                let end = i.checked_add(len).filter(|e| *e <= b.len())?;
                let s = &b[i..end];
                i = end;
                Some(s)
            }
            5 => {
                i = i.checked_add(4)?;
                None
            }
            _ => return None,
        };
        if i > b.len() {
            return None;
        }
        out.push(Field {
            number,
            bytes,
            value,
        });
    }
    Some(out)
}

fn sub<'a>(fs: &[Field<'a>], n: u64) -> Option<&'a [u8]> {
    fs.iter()
        .rev()
        .find(|f| f.number == n)
        .and_then(|f| f.bytes)
}

fn string(fs: &[Field<'_>], n: u64) -> String {
    sub(fs, n)
        .map(|b| String::from_utf8_lossy(b).into_owned())
        .unwrap_or_default()
}

/// An `int32` field, if present (negative values are sign-extended
/// varints, as protobuf encodes int32).
fn int32(fs: &[Field<'_>], n: u64) -> Option<i64> {
    fs.iter()
        .rev()
        .find(|f| f.number == n)
        .and_then(|f| f.value)
        .map(|v| v as i64 as i32 as i64)
}

/// Every length-delimited field `n`, in order (a `repeated` message).
fn repeated<'a>(fs: &[Field<'a>], n: u64) -> Vec<&'a [u8]> {
    fs.iter()
        .filter(|f| f.number == n)
        .filter_map(|f| f.bytes)
        .collect()
}

/// The object inside the `k8s\0` + `runtime.Unknown` envelope.
fn unwrap_envelope(body: &[u8]) -> Option<&[u8]> {
    let rest = body.strip_prefix(MAGIC)?;
    sub(&fields(rest)?, 2)
}

/// A `map<string, string>` field (labels, annotations) as a JSON object.
fn string_map(fs: &[Field<'_>], n: u64) -> Option<Value> {
    let mut m = serde_json::Map::new();
    for entry in repeated(fs, n) {
        let e = fields(entry)?;
        m.insert(string(&e, 1), json!(string(&e, 2)));
    }
    Some(Value::Object(m))
}

/// ObjectMeta: name, generateName, namespace, labels, annotations.
fn object_meta(b: &[u8]) -> Option<Value> {
    let fs = fields(b)?;
    let mut meta = serde_json::Map::new();
    for (n, k) in [(1, "name"), (2, "generateName"), (3, "namespace")] {
        let v = string(&fs, n);
        if !v.is_empty() {
            meta.insert(k.into(), json!(v));
        }
    }
    for (n, k) in [(11, "labels"), (12, "annotations")] {
        let m = string_map(&fs, n)?;
        if m.as_object().is_some_and(|o| !o.is_empty()) {
            meta.insert(k.into(), m);
        }
    }
    Some(Value::Object(meta))
}

/// A `Quantity` message (its one field is the string form).
fn quantity(fs: &[Field<'_>], n: u64) -> Option<Value> {
    let q = fields(sub(fs, n)?)?;
    Some(json!(string(&q, 1)))
}

/// autoscaling/v2 `MetricTarget`.
fn metric_target(b: &[u8]) -> Option<Value> {
    let fs = fields(b)?;
    let mut t = json!({"type": string(&fs, 1)});
    if let Some(v) = quantity(&fs, 2) {
        t["value"] = v;
    }
    if let Some(v) = quantity(&fs, 3) {
        t["averageValue"] = v;
    }
    if let Some(u) = int32(&fs, 4) {
        t["averageUtilization"] = json!(u);
    }
    Some(t)
}

/// autoscaling/v2 `MetricSpec` of type `Resource` or `ContainerResource`
/// (what kubectl sends); other sources keep only their type.
fn metric_spec(b: &[u8]) -> Option<Value> {
    let fs = fields(b)?;
    let mut m = json!({"type": string(&fs, 1)});
    if let Some(r) = sub(&fs, 4) {
        let r = fields(r)?;
        m["resource"] =
            json!({"name": string(&r, 1), "target": metric_target(sub(&r, 2).unwrap_or(&[]))?});
    }
    if let Some(r) = sub(&fs, 7) {
        let r = fields(r)?;
        m["containerResource"] = json!({"name": string(&r, 1), "container": string(&r, 3),
            "target": metric_target(sub(&r, 2).unwrap_or(&[]))?});
    }
    Some(m)
}

/// Decodes a protobuf HorizontalPodAutoscaler of autoscaling/`version`
/// (`v2` or `v1`) into its JSON form (status is left out: it is the
/// controller's).
pub fn decode_hpa(body: &[u8], version: &str) -> Result<Value, String> {
    let bad =
        || format!("the protobuf body is not an autoscaling/{version} HorizontalPodAutoscaler");
    let raw = unwrap_envelope(body).ok_or_else(bad)?;
    let hpa = fields(raw).ok_or_else(bad)?;
    let meta = object_meta(sub(&hpa, 1).unwrap_or(&[])).ok_or_else(bad)?;
    let spec = fields(sub(&hpa, 2).unwrap_or(&[])).ok_or_else(bad)?;
    let target = fields(sub(&spec, 1).unwrap_or(&[])).ok_or_else(bad)?;
    let mut out_spec = json!({
        "scaleTargetRef": {"kind": string(&target, 1), "name": string(&target, 2), "apiVersion": string(&target, 3)},
        "maxReplicas": int32(&spec, 3).unwrap_or(0),
    });
    if let Some(m) = int32(&spec, 2) {
        out_spec["minReplicas"] = json!(m);
    }
    if version == "v1" {
        if let Some(c) = int32(&spec, 4) {
            out_spec["targetCPUUtilizationPercentage"] = json!(c);
        }
    } else {
        let metrics: Option<Vec<Value>> = repeated(&spec, 4).into_iter().map(metric_spec).collect();
        let metrics = metrics.ok_or_else(bad)?;
        if !metrics.is_empty() {
            out_spec["metrics"] = json!(metrics);
        }
    }
    Ok(json!({
        "kind": "HorizontalPodAutoscaler",
        "apiVersion": format!("autoscaling/{version}"),
        "metadata": meta,
        "spec": out_spec,
    }))
}

/// Decodes a protobuf SelfSubjectAccessReview into its JSON form.
pub fn decode_ssar(body: &[u8]) -> Result<Value, String> {
    let bad = || "the protobuf body is not a SelfSubjectAccessReview".to_string();
    let rest = body.strip_prefix(MAGIC).ok_or_else(bad)?;
    let unknown = fields(rest).ok_or_else(bad)?;
    let raw = sub(&unknown, 2).ok_or_else(bad)?;
    let review = fields(raw).ok_or_else(bad)?;
    let spec = fields(sub(&review, 2).unwrap_or(&[])).ok_or_else(bad)?;
    let mut out = json!({
        "kind": "SelfSubjectAccessReview",
        "apiVersion": "authorization.k8s.io/v1",
        "metadata": {},
        "spec": {},
    });
    if let Some(ra) = sub(&spec, 1) {
        let ra = fields(ra).ok_or_else(bad)?;
        let names = [
            "namespace",
            "verb",
            "group",
            "version",
            "resource",
            "subresource",
            "name",
        ];
        let mut attrs = serde_json::Map::new();
        for (i, k) in names.iter().enumerate() {
            attrs.insert((*k).into(), json!(string(&ra, i as u64 + 1)));
        }
        out["spec"]["resourceAttributes"] = Value::Object(attrs);
    } else if let Some(nra) = sub(&spec, 2) {
        let nra = fields(nra).ok_or_else(bad)?;
        out["spec"]["nonResourceAttributes"] =
            json!({"path": string(&nra, 1), "verb": string(&nra, 2)});
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ld(n: u8, b: &[u8]) -> Vec<u8> {
        let mut v = vec![(n << 3) | 2, b.len() as u8];
        v.extend_from_slice(b);
        v
    }

    #[test]
    fn reads_the_resource_attributes_kubectl_auth_can_i_sends() {
        let attrs = [
            ld(1, b"default"),
            ld(2, b"patch"),
            ld(3, b"apps"),
            ld(5, b"deployments"),
        ]
        .concat();
        let spec = ld(1, &attrs);
        let review = [ld(1, b""), ld(2, &spec)].concat();
        let unknown = [
            ld(
                1,
                &[
                    ld(1, b"authorization.k8s.io/v1"),
                    ld(2, b"SelfSubjectAccessReview"),
                ]
                .concat(),
            ),
            ld(2, &review),
        ]
        .concat();
        let body = [MAGIC, &unknown].concat();
        let v = decode_ssar(&body).unwrap();
        let ra = &v["spec"]["resourceAttributes"];
        assert_eq!(
            (
                ra["verb"].as_str(),
                ra["group"].as_str(),
                ra["resource"].as_str()
            ),
            (Some("patch"), Some("apps"), Some("deployments"))
        );
        assert_eq!(ra["namespace"], "default");
    }

    /// The body kubectl 1.32's `kubectl autoscale deployment web-server
    /// --min=2 --max=6 --cpu-percent=50` sends, byte for byte.
    const AUTOSCALE_V2: &[u8] = b"k8s\0\x0a\x29\x0a\x0eautoscaling/v2\x12\x17HorizontalPodAutoscaler\x12\x6f\x0a\x1a\x0a\x0aweb-server\x12\x00\x1a\x00\x22\x00\x2a\x00\x32\x00\x38\x00\x42\x00\x12\x4b\x0a\x21\x0a\x0aDeployment\x12\x0aweb-server\x1a\x07apps/v1\x10\x02\x18\x06\x22\x22\x0a\x08Resource\x22\x16\x0a\x03cpu\x12\x0f\x0a\x0bUtilization\x20\x32\x1a\x04\x18\x00\x20\x00\x1a\x00\x22\x00";
    const AUTOSCALE_V1: &[u8] = b"k8s\0\x0a\x29\x0a\x0eautoscaling/v1\x12\x17HorizontalPodAutoscaler\x12\x4d\x0a\x1a\x0a\x0aweb-server\x12\x00\x1a\x00\x22\x00\x2a\x00\x32\x00\x38\x00\x42\x00\x12\x29\x0a\x21\x0a\x0aDeployment\x12\x0aweb-server\x1a\x07apps/v1\x10\x02\x18\x06\x20\x32\x1a\x04\x18\x00\x20\x00\x1a\x00\x22\x00";

    #[test]
    fn reads_the_hpa_kubectl_autoscale_sends() {
        let v = decode_hpa(AUTOSCALE_V2, "v2").unwrap();
        assert_eq!(
            v,
            json!({"kind": "HorizontalPodAutoscaler", "apiVersion": "autoscaling/v2",
                "metadata": {"name": "web-server"},
                "spec": {"scaleTargetRef": {"kind": "Deployment", "name": "web-server", "apiVersion": "apps/v1"},
                    "minReplicas": 2, "maxReplicas": 6,
                    "metrics": [{"type": "Resource", "resource": {"name": "cpu",
                        "target": {"type": "Utilization", "averageUtilization": 50}}}]}})
        );
        let v1 = decode_hpa(AUTOSCALE_V1, "v1").unwrap();
        assert_eq!(v1["spec"]["targetCPUUtilizationPercentage"], 50);
        assert_eq!(v1["spec"]["maxReplicas"], 6);
        let labelled = [
            MAGIC,
            &ld(
                2,
                &ld(
                    1,
                    &[ld(1, b"web"), ld(12, &[ld(1, b"k"), ld(2, b"v")].concat())].concat(),
                ),
            ),
        ]
        .concat();
        let v = decode_hpa(&labelled, "v2").unwrap();
        assert_eq!(
            v["metadata"],
            json!({"name": "web", "annotations": {"k": "v"}})
        );
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        for b in [
            &b""[..],
            b"k8s\0",
            b"k8s\0\x12\xff\xff\xff\xff\x0f",
            b"k8s\0\x0a",
            b"\x00\x01",
            b"k8s\0\x12\x05ab",
            &AUTOSCALE_V2[..40],
        ] {
            let _ = decode_ssar(b);
            let _ = decode_hpa(b, "v2");
            let _ = decode_hpa(b, "v1");
        }
        assert!(decode_hpa(b"{}", "v2").is_err());
        assert!(decode_ssar(b"{}").is_err());
    }
}
