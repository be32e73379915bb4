//! `--set path=value`: override one field of a profile before it is
//! validated. The path is dotted (`load.rate`, `thresholds.max_failed`),
//! with numbers indexing lists (`rollout.steps.0.set_image.image`); the
//! value is read as YAML (`500`, `2s`, `true`, `[200, 204]`, `null`).

use serde_norway::Value;

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum SetError {
    #[error("`{0}`: expected path=value, e.g. --set load.rate=500")]
    Form(String),
    #[error("`{set}`: {why}")]
    Path { set: String, why: String },
    #[error("`{set}`: the value is not valid YAML: {why}")]
    Value { set: String, why: String },
}

/// Apply one `path=value` to a profile's YAML tree. Missing mapping keys
/// are created (the field is then checked like any other); list indexes
/// must exist.
pub fn apply_set(tree: &mut Value, set: &str) -> Result<(), SetError> {
    let (path, raw) = set
        .split_once('=')
        .filter(|(p, _)| !p.trim().is_empty())
        .ok_or_else(|| SetError::Form(set.to_string()))?;
    let value: Value = serde_norway::from_str(raw).map_err(|e| SetError::Value {
        set: set.to_string(),
        why: e.to_string(),
    })?;
    let path_err = |why: String| SetError::Path {
        set: set.to_string(),
        why,
    };
    let mut node = tree;
    let parts: Vec<&str> = path.trim().split('.').collect();
    for (i, part) in parts.iter().enumerate() {
        let here = parts[..i].join(".");
        if part.is_empty() {
            return Err(path_err("empty path segment".into()));
        }
        node = match node {
            Value::Sequence(items) => {
                let len = items.len();
                let idx: usize = part
                    .parse()
                    .map_err(|_| path_err(format!("`{here}` is a list: index it with a number")))?;
                items.get_mut(idx).ok_or_else(|| {
                    path_err(format!("`{here}` has {len} items; there is no item {idx}"))
                })?
            }
            Value::Null => {
                *node = Value::Mapping(Default::default());
                let Value::Mapping(m) = node else {
                    unreachable!("just made a mapping")
                };
                m.entry(Value::String(part.to_string()))
                    .or_insert(Value::Null)
            }
            Value::Mapping(m) => m
                .entry(Value::String(part.to_string()))
                .or_insert(Value::Null),
            _ => {
                return Err(path_err(format!(
                    "`{here}` is a single value, it has no field `{part}`"
                )));
            }
        };
    }
    *node = value;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree(yaml: &str) -> Value {
        serde_norway::from_str(yaml).unwrap()
    }

    #[test]
    fn a_set_replaces_a_nested_scalar_with_a_typed_value() {
        let mut t = tree("load: {rate: 100}\n");
        apply_set(&mut t, "load.rate=500").unwrap();
        assert_eq!(t, tree("load: {rate: 500}\n"));
    }

    #[test]
    fn a_set_creates_missing_mappings() {
        let mut t = tree("name: x\n");
        apply_set(&mut t, "thresholds.p99_latency=250ms").unwrap();
        assert_eq!(t, tree("name: x\nthresholds: {p99_latency: 250ms}\n"));
    }

    #[test]
    fn a_set_indexes_lists_by_number() {
        let mut t = tree("steps: [{set_image: {image: a}}, {sleep: 1s}]\n");
        apply_set(&mut t, "steps.0.set_image.image=nginx:1.28").unwrap();
        assert_eq!(
            t,
            tree("steps: [{set_image: {image: 'nginx:1.28'}}, {sleep: 1s}]\n")
        );
    }

    #[test]
    fn a_set_out_of_a_list_says_how_long_it_is() {
        let mut t = tree("steps: [a]\n");
        let e = apply_set(&mut t, "steps.3=b").unwrap_err();
        assert!(e.to_string().contains("has 1 items"), "{e}");
    }

    #[test]
    fn a_set_without_equals_is_a_form_error() {
        let mut t = tree("a: 1\n");
        assert_eq!(
            apply_set(&mut t, "load.rate"),
            Err(SetError::Form("load.rate".into()))
        );
        assert!(matches!(apply_set(&mut t, "=3"), Err(SetError::Form(_))));
    }

    #[test]
    fn a_set_into_a_scalar_names_the_scalar() {
        let mut t = tree("name: x\n");
        let e = apply_set(&mut t, "name.first=y").unwrap_err();
        assert!(e.to_string().contains("`name` is a single value"), "{e}");
    }
}
