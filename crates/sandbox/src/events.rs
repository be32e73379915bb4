//! Records core/v1 Events into the store, as Kubernetes components do, so
//! `kubectl describe` and baton's event watch see what happened (Scheduled,
//! Pulled, Started, Killing, Unhealthy, ScalingReplicaSet, BackOff, ...).
//!
//! Part of the sandbox SIMULATOR. Repeats of the same event (same object,
//! type, reason and message) are folded into one Event whose `count` and
//! `lastTimestamp` grow, like the real event recorder's aggregation.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use k8s_openapi::api::core::v1::{Event, EventSource, ObjectReference};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta, Time};
use k8s_openapi::{Metadata, Resource};

use crate::store::Store;

/// `Normal` or `Warning`, the two Event types Kubernetes uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum EventType {
    Normal,
    Warning,
}

impl EventType {
    fn as_str(self) -> &'static str {
        match self {
            EventType::Normal => "Normal",
            EventType::Warning => "Warning",
        }
    }
}

type Key = (String, &'static str, String, EventType);

/// Writes Events on behalf of one component (e.g. `kubelet`,
/// `deployment-controller`). Cheap to clone.
#[derive(Clone)]
pub struct Recorder {
    store: Arc<Store>,
    component: &'static str,
    /// The Node a kubelet's events come from (`source.host`,
    /// `reportingInstance`); `None` is the single node's name.
    node: Option<String>,
    /// Events already written, by (object uid, reason, message, type), so a
    /// repeat bumps `count` instead of writing a new Event.
    seen: Arc<Mutex<HashMap<Key, (String, String)>>>,
}

/// A reference to `obj` for `involvedObject`.
pub fn object_ref<K>(obj: &K) -> ObjectReference
where
    K: Resource + Metadata<Ty = ObjectMeta>,
{
    let m = obj.metadata();
    ObjectReference {
        api_version: Some(K::API_VERSION.to_string()),
        kind: Some(K::KIND.to_string()),
        name: m.name.clone(),
        namespace: m.namespace.clone(),
        uid: m.uid.clone(),
        resource_version: m.resource_version.clone(),
        ..Default::default()
    }
}

impl Recorder {
    pub fn new(store: Arc<Store>, component: &'static str) -> Recorder {
        Recorder {
            store,
            component,
            node: None,
            seen: Arc::default(),
        }
    }

    /// This recorder as the kubelet of Node `node` (sharing its repeat
    /// counting).
    pub fn on_node(&self, node: &str) -> Recorder {
        Recorder {
            node: Some(node.to_string()),
            ..self.clone()
        }
    }

    /// Records an event about `obj`.
    pub fn record<K>(
        &self,
        obj: &K,
        ty: EventType,
        reason: &'static str,
        message: impl Into<String>,
    ) where
        K: Resource + Metadata<Ty = ObjectMeta>,
    {
        self.record_ref(object_ref(obj), ty, reason, message.into());
    }

    /// Records an event about the object `involved` refers to.
    pub fn record_ref(
        &self,
        involved: ObjectReference,
        ty: EventType,
        reason: &'static str,
        message: String,
    ) {
        let now = crate::node::now();
        let ns = involved
            .namespace
            .clone()
            .unwrap_or_else(|| "default".to_string());
        let obj_name = involved.name.clone().unwrap_or_default();
        let key: Key = (
            involved.uid.clone().unwrap_or_else(|| obj_name.clone()),
            reason,
            message.clone(),
            ty,
        );
        tracing::debug!(component = self.component, object = %obj_name, reason, %message, "event");
        let existing = self.seen.lock().expect("event map").get(&key).cloned();
        if let Some((ens, ename)) = existing {
            let bumped = self.store.modify::<Event>(&ens, &ename, |ev| {
                ev.count = Some(ev.count.unwrap_or(1) + 1);
                ev.last_timestamp = Some(Time(now));
            });
            if bumped.is_ok() {
                return;
            }
        }
        let name = format!(
            "{obj_name}.{:x}",
            now.as_nanosecond() as u64 ^ rand::random::<u16>() as u64
        );
        let node = self.node.as_deref().unwrap_or(crate::node::NODE_NAME);
        let ev = Event {
            metadata: ObjectMeta {
                name: Some(name.clone()),
                namespace: Some(ns.clone()),
                ..Default::default()
            },
            involved_object: involved,
            reason: Some(reason.to_string()),
            message: Some(message),
            type_: Some(ty.as_str().to_string()),
            source: Some(EventSource {
                component: Some(self.component.to_string()),
                host: (self.component == "kubelet").then(|| node.to_string()),
            }),
            first_timestamp: Some(Time(now)),
            last_timestamp: Some(Time(now)),
            event_time: Some(MicroTime(now)),
            count: Some(1),
            reporting_component: Some(self.component.to_string()),
            reporting_instance: Some(format!("{}-{node}", self.component)),
            action: Some(reason.to_string()),
            ..Default::default()
        };
        match self.store.create(ev) {
            Ok(_) => {
                let mut seen = self.seen.lock().expect("event map");
                // Bounded: past this, repeats start new Events again.
                if seen.len() >= 10_000 {
                    seen.clear();
                }
                seen.insert(key, (ns, name));
            }
            Err(e) => tracing::warn!(error = %e, "could not record event"),
        }
    }
}
