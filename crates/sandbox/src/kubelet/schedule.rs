//! The scheduler's I/O, run by the kubelet loop before a Pod gets a worker:
//! binds a Pod without `spec.nodeName` to the Node [`crate::scheduler`]
//! chooses, or marks it unschedulable (`PodScheduled=False`, a
//! `FailedScheduling` event) until a Node frees up. An unschedulable Pod
//! that is deleted goes at once, as the API server removes unbound Pods
//! (a Pod deleted before its first scheduling pass is still bound, and
//! terminates gracefully, as the sandbox always did).
//!
//! Not for: the choice itself (pure, in [`crate::scheduler`]).

use std::collections::HashMap;
use std::sync::Arc;

use k8s_openapi::api::core::v1::{Pod, PodCondition, PodStatus};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use crate::events::{EventType, Recorder};
use crate::scheduler::{self, NodeView};
use crate::store::Store;

/// The Nodes and how many Pods each runs, kept current while one pass of
/// the kubelet loop binds Pods.
pub(super) struct Placement {
    nodes: Vec<NodeView>,
    pods: HashMap<String, usize>,
}

impl Placement {
    pub(super) fn read(store: &Store, pods: &[Pod]) -> Placement {
        let (nodes, _) = store.list_raw("Node", None);
        let mut counts = HashMap::new();
        for p in pods {
            if let Some(n) = p.spec.as_ref().and_then(|s| s.node_name.as_ref()) {
                *counts.entry(n.clone()).or_insert(0) += 1;
            }
        }
        Placement {
            nodes: nodes.iter().map(NodeView::of).collect(),
            pods: counts,
        }
    }

    /// `p` bound to a Node (already, or now), or `None` if it has to wait.
    pub(super) fn bind(&mut self, store: &Arc<Store>, rec: &Recorder, p: Pod) -> Option<Pod> {
        if p.spec
            .as_ref()
            .and_then(|s| s.node_name.as_ref())
            .is_some_and(|n| !n.is_empty())
        {
            return Some(p);
        }
        let ns = p.metadata.namespace.clone().unwrap_or_default();
        let name = p.metadata.name.clone().unwrap_or_default();
        if p.metadata.deletion_timestamp.is_some() && unschedulable(&p) {
            let _ = store.remove::<Pod>(&ns, &name);
            return None;
        }
        let Some(node) = scheduler::choose(&self.nodes, &self.pods).map(str::to_string) else {
            self.mark_unschedulable(store, rec, &p, &ns, &name);
            return None;
        };
        *self.pods.entry(node.clone()).or_insert(0) += 1;
        let bound = store.modify::<Pod>(&ns, &name, |q| {
            q.spec.get_or_insert_with(Default::default).node_name = Some(node.clone());
            if let Some(st) = q.status.as_mut() {
                // Scheduled now: the worker writes the whole status next.
                st.conditions = None;
            }
        });
        bound.ok()
    }

    fn mark_unschedulable(&self, store: &Store, rec: &Recorder, p: &Pod, ns: &str, name: &str) {
        if unschedulable(p) {
            return;
        }
        let message = scheduler::unschedulable_message(&self.nodes);
        let r = store.modify::<Pod>(ns, name, |q| {
            q.status = Some(PodStatus {
                phase: Some("Pending".into()),
                qos_class: Some("BestEffort".into()),
                conditions: Some(vec![PodCondition {
                    type_: "PodScheduled".into(),
                    status: "False".into(),
                    reason: Some("Unschedulable".into()),
                    message: Some(message.clone()),
                    last_transition_time: Some(Time(crate::node::now())),
                    ..Default::default()
                }]),
                ..Default::default()
            });
        });
        if let Ok(q) = r {
            rec.record(&q, EventType::Warning, "FailedScheduling", message);
        }
    }
}

/// Already marked `PodScheduled=False`.
fn unschedulable(p: &Pod) -> bool {
    p.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|cs| {
            cs.iter()
                .any(|c| c.type_ == "PodScheduled" && c.status == "False")
        })
}
