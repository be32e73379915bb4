//! A workload's label selector as the `labelSelector` of a list or watch,
//! converted by kube-core's [`Selector`] (the client's own rules), with
//! the two cases Kubernetes' API validation would refuse anyway refused
//! here first, by name: a selector with nothing in it (as a query it
//! selects every Pod in the namespace) and an `In`/`NotIn` without values.
//! The same [`Selector`] matches labels locally where one watch serves
//! several workloads (`target.also_watch`).
//!
//! Not for: what to do with a match (see `watch`).

use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use kube::core::Selector;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SelectorError {
    #[error("it is empty and would select every Pod in the namespace")]
    Empty,
    #[error("matchExpressions on {key:?}: {operator} needs values")]
    NoValues { key: String, operator: String },
    #[error("matchExpressions: {0}")]
    Invalid(String),
}

/// `sel` as a query string: `app=web,tier in (a,b),!legacy`.
pub fn query(sel: &LabelSelector) -> Result<String, SelectorError> {
    parse(sel).map(|s| s.to_string())
}

/// `sel` as kube-core's [`Selector`], to match labels with when several
/// workloads' objects come through one unselected watch.
pub fn parse(sel: &LabelSelector) -> Result<Selector, SelectorError> {
    for e in sel.match_expressions.iter().flatten() {
        let in_or_not = e.operator == "In" || e.operator == "NotIn";
        if in_or_not && e.values.as_ref().is_none_or(Vec::is_empty) {
            return Err(SelectorError::NoValues {
                key: e.key.clone(),
                operator: e.operator.clone(),
            });
        }
    }
    let selector =
        Selector::try_from(sel.clone()).map_err(|e| SelectorError::Invalid(e.0.clone()))?;
    if selector.selects_all() {
        return Err(SelectorError::Empty);
    }
    Ok(selector)
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelectorRequirement;

    fn req(key: &str, op: &str, values: Option<&[&str]>) -> LabelSelectorRequirement {
        LabelSelectorRequirement {
            key: key.into(),
            operator: op.into(),
            values: values.map(|v| v.iter().map(|s| s.to_string()).collect()),
        }
    }

    #[test]
    fn match_labels_become_equalities() {
        let sel = LabelSelector {
            match_labels: Some([("app".into(), "web".into()), ("tier".into(), "fe".into())].into()),
            match_expressions: None,
        };
        assert_eq!(query(&sel).unwrap(), "app=web,tier=fe");
    }

    #[test]
    fn match_expressions_become_set_based_requirements() {
        let sel = LabelSelector {
            match_labels: Some([("app".into(), "web".into())].into()),
            match_expressions: Some(vec![
                req("env", "In", Some(&["prod", "staging"])),
                req("track", "NotIn", Some(&["canary"])),
                req("owner", "Exists", None),
                req("legacy", "DoesNotExist", None),
            ]),
        };
        assert_eq!(
            query(&sel).unwrap(),
            "app=web,env in (prod,staging),track notin (canary),owner,!legacy"
        );
    }

    #[test]
    fn an_empty_selector_is_refused_rather_than_widened_to_the_namespace() {
        assert_eq!(query(&LabelSelector::default()), Err(SelectorError::Empty));
        let empty_parts = LabelSelector {
            match_labels: Some(Default::default()),
            match_expressions: Some(vec![]),
        };
        assert_eq!(query(&empty_parts), Err(SelectorError::Empty));
    }

    #[test]
    fn a_set_requirement_without_values_or_an_unknown_operator_is_refused() {
        let one = |r| LabelSelector {
            match_labels: None,
            match_expressions: Some(vec![r]),
        };
        for r in [req("a", "In", Some(&[])), req("a", "NotIn", None)] {
            assert!(
                matches!(query(&one(r)), Err(SelectorError::NoValues { .. })),
                "a set requirement without values"
            );
        }
        assert!(matches!(
            query(&one(req("a", "Near", Some(&["b"])))),
            Err(SelectorError::Invalid(_))
        ));
    }
}
