//! Just enough of Kubernetes' protobuf encoding to read the one body
//! kubectl insists on sending as protobuf that the sandbox serves: a
//! SelfSubjectAccessReview (`kubectl auth can-i`). Everything else is JSON.
//!
//! The envelope is the magic `k8s\0` followed by a `runtime.Unknown`
//! message whose field 2 holds the object's own protobuf.

use serde_json::{Value, json};

const MAGIC: &[u8] = b"k8s\0";

/// One protobuf field: number and, for length-delimited fields, the bytes.
struct Field<'a> {
    number: u64,
    bytes: Option<&'a [u8]>,
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
        let bytes = match wire {
            0 => {
                varint(b, &mut i)?;
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
        out.push(Field { number, bytes });
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

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        for b in [
            &b""[..],
            b"k8s\0",
            b"k8s\0\x12\xff\xff\xff\xff\x0f",
            b"k8s\0\x0a",
            b"\x00\x01",
            b"k8s\0\x12\x05ab",
        ] {
            let _ = decode_ssar(b);
        }
        assert!(decode_ssar(b"{}").is_err());
    }
}
