//! The one simulated node: its name, and the clock its components stamp
//! objects with. A leaf: everything that simulates a part of the cluster
//! may use it, and it uses none of them.

use k8s_openapi::jiff::Timestamp;

/// The one node every Pod runs on.
pub const NODE_NAME: &str = "sandbox-node";

/// `now`, as Kubernetes timestamps are kept (whole seconds on the wire,
/// but kept exact here; the store serialises them).
pub fn now() -> Timestamp {
    let d = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    Timestamp::new(d.as_secs() as i64, d.subsec_nanos() as i32).unwrap_or(Timestamp::UNIX_EPOCH)
}
