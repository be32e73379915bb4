//! Where a new Pod goes: the sandbox's stand-in for kube-scheduler's
//! choice, as pure functions. A Node is a candidate when it is Ready and
//! not cordoned (`spec.unschedulable`); the candidate running the fewest
//! Pods wins, ties going to the first name. When none is left, the
//! `FailedScheduling` message is the one kube-scheduler writes.
//!
//! Not for: binding the Pod or recording events (the kubelet does that, in
//! [`crate::kubelet`]); resources, taints, affinity and topology spread are
//! not simulated.

use std::collections::HashMap;

use serde_json::Value;

/// One Node as the choice needs it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeView {
    pub name: String,
    /// `spec.unschedulable` (cordoned).
    pub unschedulable: bool,
    /// The `Ready` condition is `True`.
    pub ready: bool,
}

impl NodeView {
    /// The view of a wire Node.
    pub fn of(node: &Value) -> NodeView {
        let ready = node["status"]["conditions"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|c| c["type"] == "Ready" && c["status"] == "True");
        NodeView {
            name: node["metadata"]["name"].as_str().unwrap_or("").to_string(),
            unschedulable: node["spec"]["unschedulable"] == true,
            ready,
        }
    }
}

/// The Node for a new Pod: the schedulable one with the fewest Pods
/// (`pods` counts Pods bound to each node), ties by name.
pub fn choose<'a>(nodes: &'a [NodeView], pods: &HashMap<String, usize>) -> Option<&'a str> {
    nodes
        .iter()
        .filter(|n| n.ready && !n.unschedulable)
        .min_by(|a, b| {
            let count = |n: &NodeView| pods.get(&n.name).copied().unwrap_or(0);
            count(a).cmp(&count(b)).then_with(|| a.name.cmp(&b.name))
        })
        .map(|n| n.name.as_str())
}

/// kube-scheduler's message when no node fits, e.g. `0/3 nodes are
/// available: 3 node(s) were unschedulable. preemption: ...`; here only
/// cordoned and not-ready nodes can be the reason.
pub fn unschedulable_message(nodes: &[NodeView]) -> String {
    let n = nodes.len();
    if n == 0 {
        return "no nodes available to schedule pods".into();
    }
    let cordoned = nodes.iter().filter(|x| x.unschedulable).count();
    let not_ready = nodes
        .iter()
        .filter(|x| !x.unschedulable && !x.ready)
        .count();
    let mut reasons = Vec::new();
    if not_ready > 0 {
        reasons.push(format!(
            "{not_ready} node(s) had untolerated taint {{node.kubernetes.io/not-ready: }}"
        ));
    }
    if cordoned > 0 {
        reasons.push(format!("{cordoned} node(s) were unschedulable"));
    }
    // kube-scheduler sorts the "<count> <reason>" strings.
    reasons.sort();
    format!(
        "0/{n} nodes are available: {}. preemption: 0/{n} nodes are available: {n} Preemption is not helpful for scheduling.",
        reasons.join(", ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(name: &str, unschedulable: bool, ready: bool) -> NodeView {
        NodeView {
            name: name.into(),
            unschedulable,
            ready,
        }
    }

    fn counts(c: &[(&str, usize)]) -> HashMap<String, usize> {
        c.iter().map(|(n, k)| (n.to_string(), *k)).collect()
    }

    #[test]
    fn fewest_pods_wins() {
        let nodes = [node("a", false, true), node("b", false, true)];
        assert_eq!(choose(&nodes, &counts(&[("a", 2), ("b", 1)])), Some("b"));
    }

    #[test]
    fn ties_go_to_the_first_name() {
        let nodes = [node("b", false, true), node("a", false, true)];
        assert_eq!(choose(&nodes, &counts(&[])), Some("a"));
        assert_eq!(choose(&nodes, &counts(&[("a", 1), ("b", 1)])), Some("a"));
    }

    #[test]
    fn cordoned_and_not_ready_nodes_are_skipped() {
        let nodes = [
            node("a", true, true),
            node("b", false, false),
            node("c", false, true),
        ];
        assert_eq!(choose(&nodes, &counts(&[("c", 9)])), Some("c"));
        let none = [node("a", true, true), node("b", false, false)];
        assert_eq!(choose(&none, &counts(&[])), None);
        assert_eq!(choose(&[], &counts(&[])), None);
    }

    #[test]
    fn the_message_names_why_no_node_fits() {
        assert_eq!(
            unschedulable_message(&[node("a", true, true)]),
            "0/1 nodes are available: 1 node(s) were unschedulable. preemption: 0/1 nodes are available: 1 Preemption is not helpful for scheduling."
        );
        assert_eq!(
            unschedulable_message(&[]),
            "no nodes available to schedule pods"
        );
    }

    #[test]
    fn a_wire_node_reads_cordon_and_readiness() {
        let mut n = crate::node::node_object("x");
        assert_eq!(NodeView::of(&n), node("x", false, true));
        n["spec"]["unschedulable"] = true.into();
        assert!(NodeView::of(&n).unschedulable);
    }
}
