//! The simulated nodes: their names, the Node objects the sandbox starts
//! with, and the clock its components stamp objects with. A leaf:
//! everything that simulates a part of the cluster may use it, and it uses
//! none of them.
//!
//! Not for: choosing a node for a Pod (see [`crate::scheduler`]).

use k8s_openapi::jiff::Timestamp;
use serde_json::{Value, json};

/// The node's name when the sandbox has one node (the default).
pub const NODE_NAME: &str = "sandbox-node";

/// The names of `n` nodes: `sandbox-node` alone for one (as before there
/// were several), else `sandbox-node-1` .. `sandbox-node-N`.
pub fn node_names(n: usize) -> Vec<String> {
    match n {
        0 => Vec::new(),
        1 => vec![NODE_NAME.to_string()],
        _ => (1..=n).map(|i| format!("{NODE_NAME}-{i}")).collect(),
    }
}

/// A Ready, schedulable `v1` Node named `name`, as a kubelet registers it.
pub fn node_object(name: &str) -> Value {
    let now = crate::store::now_value();
    json!({
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "labels": {
                "kubernetes.io/hostname": name,
                "kubernetes.io/os": "linux",
                "kubernetes.io/arch": "amd64",
                "beta.kubernetes.io/os": "linux",
                "beta.kubernetes.io/arch": "amd64",
            },
        },
        "spec": {},
        "status": {
            "conditions": [{
                "type": "Ready",
                "status": "True",
                "reason": "KubeletReady",
                "message": "kubelet is posting ready status",
                "lastHeartbeatTime": now,
                "lastTransitionTime": now,
            }],
            "addresses": [
                {"type": "InternalIP", "address": "127.0.0.1"},
                {"type": "Hostname", "address": name},
            ],
            "capacity": {"cpu": "4", "memory": "8Gi", "pods": "110"},
            "allocatable": {"cpu": "4", "memory": "8Gi", "pods": "110"},
            "nodeInfo": {
                "machineID": "",
                "systemUUID": "",
                "bootID": "",
                "kernelVersion": "simulated",
                "osImage": "baton sandbox (a simulator)",
                "containerRuntimeVersion": "sandbox://0",
                "kubeletVersion": "v1.33.0-baton-sandbox",
                "kubeProxyVersion": "v1.33.0-baton-sandbox",
                "operatingSystem": "linux",
                "architecture": "amd64",
            },
        },
    })
}

/// `now`, as Kubernetes timestamps are kept (whole seconds on the wire,
/// but kept exact here; the store serialises them).
pub fn now() -> Timestamp {
    let d = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    Timestamp::new(d.as_secs() as i64, d.subsec_nanos() as i32).unwrap_or(Timestamp::UNIX_EPOCH)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_node_keeps_the_historic_name_and_several_are_numbered() {
        assert_eq!(node_names(1), vec!["sandbox-node"]);
        assert_eq!(
            node_names(3),
            vec!["sandbox-node-1", "sandbox-node-2", "sandbox-node-3"]
        );
        assert!(node_names(0).is_empty());
    }

    #[test]
    fn a_node_object_fits_the_node_type_and_is_ready() {
        let n: k8s_openapi::api::core::v1::Node =
            serde_json::from_value(node_object("sandbox-node-2")).unwrap();
        let c = &n.status.unwrap().conditions.unwrap()[0];
        assert_eq!((c.type_.as_str(), c.status.as_str()), ("Ready", "True"));
        assert_eq!(n.spec.unwrap().unschedulable, None);
    }
}
