//! The sandbox's in-memory object store: what etcd plus the API server's
//! storage layer are to a real cluster.
//!
//! Objects are kept as `serde_json::Value` (the exact wire JSON) keyed by
//! (kind, namespace, name). One global resourceVersion counter is bumped on
//! every write, and a bounded history of changes lets watches resume from a
//! resourceVersion; a version older than the history is [`StoreError::Gone`]
//! (HTTP 410), as a real API server answers once etcd has compacted it.
//!
//! Typed access goes through k8s-openapi types via serde ([`Store::get`],
//! [`Store::create`], ...); the API server uses the `*_raw` functions.
//!
//! Rules mirrored from Kubernetes:
//! - create fills `uid`, `resourceVersion`, `creationTimestamp`, and
//!   `generation = 1` for Deployments and ReplicaSets; `generateName` gets a
//!   5-character random suffix.
//! - update checks `resourceVersion` when the caller sends one (optimistic
//!   concurrency), keeps `.status`, and bumps `generation` when `.spec`
//!   changed; update_status changes only `.status`.
//! - a write that changes nothing is a no-op: no new resourceVersion, no
//!   watch event (controllers rely on this to settle).
//! - the object in a `Deleted` change carries the deletion's resourceVersion.
//!
//! Not here: admission, validation beyond names, finalizers, graceful
//! deletion (the API server sets `deletionTimestamp` through [`Store::modify`]
//! and the kubelet calls [`Store::remove`] when the pod is gone).
//!
//! The kind `Event` holds core/v1 Events; the API server serves them as
//! events.k8s.io/v1 too, converting on the way out, as Kubernetes does.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use k8s_openapi::{Metadata, Resource};
use rand::Rng;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use tokio::sync::broadcast;

/// Kinds that live outside namespaces; every other kind is namespaced.
const CLUSTER_SCOPED: &[&str] = &["Namespace", "Node"];

/// Kinds whose `metadata.generation` tracks `.spec` changes.
const GENERATION_KINDS: &[&str] = &[
    "Deployment",
    "ReplicaSet",
    "PodDisruptionBudget",
    "Ingress",
    "HorizontalPodAutoscaler",
    "Job",
];

/// The kinds the store accepts, so a [`Change`] can carry a `&'static str`.
pub const KINDS: &[&str] = &[
    "Namespace",
    "Pod",
    "Service",
    "Event",
    "Deployment",
    "ReplicaSet",
    "EndpointSlice",
    "Ingress",
    "Node",
    "PodDisruptionBudget",
    "HorizontalPodAutoscaler",
    "Job",
];

/// Kinds whose uid the API server assigns before the store sees them: a
/// Job's generated selector carries its own uid (Kubernetes fills the uid
/// before the Job strategy generates the selector).
const UID_PRESET_KINDS: &[&str] = &["Job"];

/// Store settings.
#[derive(Clone, Debug)]
pub struct StoreConfig {
    /// How many changes are kept for watches to resume from. A watch from
    /// a resourceVersion older than the oldest kept change gets 410 Gone; a
    /// tiny history lets tests force that.
    pub history: usize,
}

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig { history: 10_000 }
    }
}

/// What happened to an object.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChangeType {
    Added,
    Modified,
    Deleted,
}

impl ChangeType {
    /// The watch event type on the wire: `ADDED`, `MODIFIED`, `DELETED`.
    pub fn wire(self) -> &'static str {
        match self {
            ChangeType::Added => "ADDED",
            ChangeType::Modified => "MODIFIED",
            ChangeType::Deleted => "DELETED",
        }
    }
}

/// One write, as watches see it.
#[derive(Clone, Debug)]
pub struct Change {
    /// `k8s_openapi::Resource::KIND`, e.g. `"Pod"`.
    pub kind: &'static str,
    pub namespace: Option<String>,
    pub name: String,
    pub rv: u64,
    pub kind_change: ChangeType,
    /// The object after the change (before it, for `Deleted`, but with the
    /// deletion's resourceVersion).
    pub object: Arc<Value>,
}

/// Why a store operation failed; the API server maps each to a `Status`.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{kind} \"{name}\" not found")]
    NotFound { kind: &'static str, name: String },
    #[error("{kind} \"{name}\" already exists")]
    AlreadyExists { kind: &'static str, name: String },
    #[error(
        "Operation cannot be fulfilled on {kind} \"{name}\": the object has been modified; please apply your changes to the latest version and try again"
    )]
    Conflict { kind: &'static str, name: String },
    #[error("too old resource version: {rv} ({oldest})")]
    Gone { rv: u64, oldest: u64 },
    #[error("{0}")]
    Invalid(String),
    #[error("object does not fit its type: {0}")]
    Serde(#[from] serde_json::Error),
}

/// The object store. Cheap to share as `Arc<Store>`.
pub struct Store {
    inner: Mutex<Inner>,
    /// Every change, in resourceVersion order (sent under the lock), for
    /// controllers and watches. Receivers that lag re-read the history.
    tx: broadcast::Sender<Change>,
}

struct Inner {
    objects: BTreeMap<Key, Arc<Value>>,
    rv: u64,
    history: VecDeque<Change>,
    history_cap: usize,
    /// Changes with rv > `compacted` are all in `history`.
    compacted: u64,
}

type Key = (&'static str, String, String);

impl Store {
    pub fn new(cfg: StoreConfig) -> Arc<Store> {
        let (tx, _) = broadcast::channel(cfg.history.clamp(64, 16_384));
        Arc::new(Store {
            inner: Mutex::new(Inner {
                objects: BTreeMap::new(),
                rv: 0,
                history: VecDeque::new(),
                history_cap: cfg.history.max(1),
                compacted: 0,
            }),
            tx,
        })
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    // ---- typed helpers -------------------------------------------------

    /// The object `name` in `ns` (ignored for cluster-scoped kinds).
    pub fn get<K>(&self, ns: &str, name: &str) -> Option<K>
    where
        K: Resource + DeserializeOwned,
    {
        let v = self.get_raw(K::KIND, Some(ns), name)?;
        from_value(v)
    }

    /// All objects of a kind, in one namespace or all; with the list's rv.
    pub fn list<K>(&self, ns: Option<&str>) -> (Vec<K>, u64)
    where
        K: Resource + DeserializeOwned,
    {
        let (items, rv) = self.list_raw(K::KIND, ns);
        (items.into_iter().filter_map(from_value).collect(), rv)
    }

    pub fn create<K>(&self, obj: K) -> Result<K, StoreError>
    where
        K: Resource + Serialize + DeserializeOwned + Metadata<Ty = ObjectMeta>,
    {
        let v = self.create_raw(K::KIND, to_value::<K>(&obj)?)?;
        Ok(serde_json::from_value(v)?)
    }

    pub fn update<K>(&self, obj: K) -> Result<K, StoreError>
    where
        K: Resource + Serialize + DeserializeOwned + Metadata<Ty = ObjectMeta>,
    {
        let v = self.update_raw(K::KIND, to_value::<K>(&obj)?)?;
        Ok(serde_json::from_value(v)?)
    }

    pub fn update_status<K>(&self, obj: K) -> Result<K, StoreError>
    where
        K: Resource + Serialize + DeserializeOwned + Metadata<Ty = ObjectMeta>,
    {
        let v = self.update_status_raw(K::KIND, to_value::<K>(&obj)?)?;
        Ok(serde_json::from_value(v)?)
    }

    /// Atomic read-modify-write under the lock. Status changes are allowed;
    /// the generation rule is the same as [`Store::update`]'s.
    pub fn modify<K>(&self, ns: &str, name: &str, f: impl FnOnce(&mut K)) -> Result<K, StoreError>
    where
        K: Resource + Serialize + DeserializeOwned + Metadata<Ty = ObjectMeta>,
    {
        let v = self.modify_raw(K::KIND, Some(ns), name, |v| {
            let mut typed: K = serde_json::from_value(v.clone())?;
            f(&mut typed);
            *v = to_value::<K>(&typed)?;
            Ok(())
        })?;
        Ok(serde_json::from_value(v)?)
    }

    /// Deletes at once (no grace period: that is the API server's and the
    /// kubelet's business).
    pub fn remove<K>(&self, ns: &str, name: &str) -> Result<K, StoreError>
    where
        K: Resource + DeserializeOwned,
    {
        let v = self.remove_raw(K::KIND, Some(ns), name)?;
        Ok(serde_json::from_value(v)?)
    }

    /// Every change from now on, in resourceVersion order.
    pub fn subscribe(&self) -> broadcast::Receiver<Change> {
        self.tx.subscribe()
    }

    /// What wakes a reconcile loop (controllers, kubelet, proxy): any
    /// change to the store, or `every` with none, for time-based rules.
    pub fn wakeups(&self, every: std::time::Duration) -> Wakeups {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        Wakeups {
            rx: self.subscribe(),
            tick,
        }
    }

    // ---- untyped, for the API server -----------------------------------

    pub fn get_raw(&self, kind: &str, ns: Option<&str>, name: &str) -> Option<Value> {
        let kind = static_kind(kind)?;
        let key = key(kind, ns, name);
        self.lock().objects.get(&key).map(|v| (**v).clone())
    }

    /// All objects of `kind` (in `ns`, or everywhere for `None`), sorted by
    /// namespace then name, and the resourceVersion of the list.
    pub fn list_raw(&self, kind: &str, ns: Option<&str>) -> (Vec<Value>, u64) {
        let Some(kind) = static_kind(kind) else {
            return (Vec::new(), self.current_rv());
        };
        let ns = ns.filter(|_| namespaced(kind));
        // Clone the Arcs under the lock, the JSON outside it.
        let (arcs, rv) = {
            let inner = self.lock();
            let arcs: Vec<Arc<Value>> = inner
                .objects
                .range((kind, String::new(), String::new())..)
                .take_while(|((k, _, _), _)| *k == kind)
                .filter(|((_, n, _), _)| ns.is_none_or(|want| n == want))
                .map(|(_, v)| v.clone())
                .collect();
            (arcs, inner.rv)
        };
        (arcs.into_iter().map(|v| (*v).clone()).collect(), rv)
    }

    /// Changes to `kind` (in `ns`, or everywhere) with a resourceVersion
    /// greater than `rv`. [`StoreError::Gone`] when some of them have
    /// already left the history.
    pub fn changes_since(
        &self,
        kind: &str,
        ns: Option<&str>,
        rv: u64,
    ) -> Result<Vec<Change>, StoreError> {
        let ns = ns.filter(|_| namespaced(kind));
        let inner = self.lock();
        if rv < inner.compacted {
            return Err(StoreError::Gone {
                rv,
                oldest: inner.compacted,
            });
        }
        Ok(inner
            .history
            .iter()
            .filter(|c| c.rv > rv && c.kind == kind)
            .filter(|c| ns.is_none_or(|want| c.namespace.as_deref() == Some(want)))
            .cloned()
            .collect())
    }

    /// The objects of `kind` as they were at resourceVersion `rv` (a list
    /// with `resourceVersionMatch=Exact`), rebuilt from the history.
    /// [`StoreError::Gone`] when that state is no longer known.
    pub fn list_at(&self, kind: &str, ns: Option<&str>, rv: u64) -> Result<Vec<Value>, StoreError> {
        let kind = known_kind(kind)?;
        let ns = ns.filter(|_| namespaced(kind));
        let inner = self.lock();
        if rv < inner.compacted || rv > inner.rv {
            return Err(StoreError::Gone {
                rv,
                oldest: inner.compacted,
            });
        }
        let mut out: BTreeMap<Key, Option<Arc<Value>>> = inner
            .objects
            .iter()
            .filter(|((k, n, _), _)| *k == kind && ns.is_none_or(|want| n == want))
            .map(|(key, v)| (key.clone(), Some(v.clone())))
            .collect();
        // Undo, newest first, every change made after `rv`.
        let later: Vec<&Change> = inner
            .history
            .iter()
            .filter(|c| c.kind == kind && c.rv > rv)
            .filter(|c| ns.is_none_or(|want| c.namespace.as_deref() == Some(want)))
            .collect();
        for c in later.iter().rev() {
            let key = key(kind, c.namespace.as_deref(), &c.name);
            // The state before `c`: the key's latest earlier change, if kept.
            let before = inner.history.iter().rev().find(|e| {
                e.rv < c.rv && e.kind == kind && e.namespace == c.namespace && e.name == c.name
            });
            let state = match (c.kind_change, before) {
                (ChangeType::Added, _) => None,
                (_, Some(e)) if e.kind_change == ChangeType::Deleted => None,
                (_, Some(e)) => Some(e.object.clone()),
                (_, None) => {
                    return Err(StoreError::Gone {
                        rv,
                        oldest: inner.compacted,
                    });
                }
            };
            out.insert(key, state);
        }
        Ok(out.into_values().flatten().map(|v| (*v).clone()).collect())
    }

    /// The resourceVersion of the latest write.
    pub fn current_rv(&self) -> u64 {
        self.lock().rv
    }

    /// The oldest resourceVersion a watch can still start from.
    pub fn oldest_rv(&self) -> u64 {
        self.lock().compacted
    }

    /// Creates an object. `metadata.name` (or `generateName`) is required;
    /// `metadata.namespace` defaults to `default` for namespaced kinds.
    pub fn create_raw(&self, kind: &str, mut obj: Value) -> Result<Value, StoreError> {
        let kind = known_kind(kind)?;
        ensure_meta(&mut obj)?;
        let namespaced = namespaced(kind);
        let mut inner = self.lock();
        {
            let meta = obj["metadata"].as_object_mut().expect("ensured");
            if namespaced {
                if !meta.get("namespace").is_some_and(|n| n.is_string()) {
                    meta.insert("namespace".into(), "default".into());
                }
            } else {
                meta.remove("namespace");
            }
            let has_name = meta
                .get("name")
                .and_then(Value::as_str)
                .is_some_and(|n| !n.is_empty());
            if !has_name {
                let Some(prefix) = meta.get("generateName").and_then(Value::as_str) else {
                    return Err(StoreError::Invalid(format!(
                        "{kind}.metadata.name: Required value: name or generateName is required"
                    )));
                };
                let prefix = prefix.to_string();
                // Retry a few suffixes, as the real registry does on a clash.
                let ns = meta.get("namespace").and_then(Value::as_str).unwrap_or("");
                let mut name = String::new();
                for _ in 0..8 {
                    name = format!("{prefix}{}", random_suffix());
                    if !inner
                        .objects
                        .contains_key(&(kind, ns.to_string(), name.clone()))
                    {
                        break;
                    }
                }
                meta.insert("name".into(), name.into());
            }
        }
        let name = obj["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        validate_name(kind, &name)?;
        let ns = obj["metadata"]["namespace"].as_str().map(str::to_string);
        let key = key(kind, ns.as_deref(), &name);
        if inner.objects.contains_key(&key) {
            return Err(StoreError::AlreadyExists { kind, name });
        }
        let rv = inner.rv + 1;
        {
            let meta = obj["metadata"].as_object_mut().expect("ensured");
            let preset = UID_PRESET_KINDS.contains(&kind)
                && meta
                    .get("uid")
                    .and_then(Value::as_str)
                    .is_some_and(|u| !u.is_empty());
            if !preset {
                meta.insert("uid".into(), random_uid().into());
            }
            meta.insert("resourceVersion".into(), rv.to_string().into());
            meta.insert("creationTimestamp".into(), now_value());
            meta.remove("deletionTimestamp");
            meta.remove("deletionGracePeriodSeconds");
            if GENERATION_KINDS.contains(&kind) {
                meta.insert("generation".into(), 1.into());
            }
        }
        set_type_meta(kind, &mut obj);
        inner.commit(&self.tx, key, ChangeType::Added, obj.clone());
        Ok(obj)
    }

    /// Replaces an object's metadata and spec; keeps its status.
    pub fn update_raw(&self, kind: &str, obj: Value) -> Result<Value, StoreError> {
        let kind = known_kind(kind)?;
        self.replace(kind, obj, |old, new| {
            if let Some(status) = old.get("status") {
                new["status"] = status.clone();
            } else if let Some(o) = new.as_object_mut() {
                o.remove("status");
            }
        })
    }

    /// Replaces an object's status only.
    pub fn update_status_raw(&self, kind: &str, obj: Value) -> Result<Value, StoreError> {
        let kind = known_kind(kind)?;
        self.replace(kind, obj, |old, new| {
            let status = new.get("status").cloned();
            *new = old.clone();
            match status {
                Some(s) => new["status"] = s,
                None => {
                    if let Some(o) = new.as_object_mut() {
                        o.remove("status");
                    }
                }
            }
        })
    }

    fn replace(
        &self,
        kind: &'static str,
        mut obj: Value,
        merge: impl FnOnce(&Value, &mut Value),
    ) -> Result<Value, StoreError> {
        ensure_meta(&mut obj)?;
        let name = obj["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        if name.is_empty() {
            return Err(StoreError::Invalid(format!(
                "{kind}.metadata.name: Required value: name is required"
            )));
        }
        let ns = if namespaced(kind) {
            Some(
                obj["metadata"]["namespace"]
                    .as_str()
                    .unwrap_or("default")
                    .to_string(),
            )
        } else {
            None
        };
        let sent_rv = obj["metadata"]["resourceVersion"]
            .as_str()
            .filter(|s| !s.is_empty())
            .map(str::to_string);
        let mut inner = self.lock();
        let key = key(kind, ns.as_deref(), &name);
        let Some(old) = inner.objects.get(&key).cloned() else {
            return Err(StoreError::NotFound { kind, name });
        };
        if let Some(sent) = sent_rv
            && old["metadata"]["resourceVersion"].as_str() != Some(sent.as_str())
        {
            return Err(StoreError::Conflict { kind, name });
        }
        merge(&old, &mut obj);
        inner.write_modified(&self.tx, kind, key, &old, obj)
    }

    /// Atomic read-modify-write of the wire JSON. `f` may change anything
    /// but the object's identity (name, namespace, uid, creationTimestamp).
    pub fn modify_raw(
        &self,
        kind: &str,
        ns: Option<&str>,
        name: &str,
        f: impl FnOnce(&mut Value) -> Result<(), StoreError>,
    ) -> Result<Value, StoreError> {
        let kind = known_kind(kind)?;
        let mut inner = self.lock();
        let key = key(kind, ns, name);
        let Some(old) = inner.objects.get(&key).cloned() else {
            return Err(StoreError::NotFound {
                kind,
                name: name.to_string(),
            });
        };
        let mut obj = (*old).clone();
        f(&mut obj)?;
        ensure_meta(&mut obj)?;
        inner.write_modified(&self.tx, kind, key, &old, obj)
    }

    /// Deletes an object at once; returns it as it was, with the deletion's
    /// resourceVersion.
    pub fn remove_raw(
        &self,
        kind: &str,
        ns: Option<&str>,
        name: &str,
    ) -> Result<Value, StoreError> {
        let kind = known_kind(kind)?;
        let mut inner = self.lock();
        let key = key(kind, ns, name);
        let Some(old) = inner.objects.remove(&key) else {
            return Err(StoreError::NotFound {
                kind,
                name: name.to_string(),
            });
        };
        let mut obj = (*old).clone();
        let rv = inner.rv + 1;
        obj["metadata"]["resourceVersion"] = rv.to_string().into();
        inner.rv = rv;
        let obj = Arc::new(obj);
        inner.record(
            &self.tx,
            Change {
                kind,
                namespace: key_ns(&key),
                name: key.2.clone(),
                rv,
                kind_change: ChangeType::Deleted,
                object: obj.clone(),
            },
        );
        Ok((*obj).clone())
    }
}

impl Inner {
    /// Writes `new` over `old` with the identity, generation and
    /// resourceVersion rules; a no-op write changes nothing.
    fn write_modified(
        &mut self,
        tx: &broadcast::Sender<Change>,
        kind: &'static str,
        key: Key,
        old: &Value,
        mut new: Value,
    ) -> Result<Value, StoreError> {
        {
            let meta = new["metadata"].as_object_mut().expect("ensured");
            for field in ["name", "namespace", "uid", "creationTimestamp"] {
                match old["metadata"].get(field) {
                    Some(v) => meta.insert(field.into(), v.clone()),
                    None => meta.remove(field),
                };
            }
            // A deletion, once started, cannot be taken back by an update.
            for field in ["deletionTimestamp", "deletionGracePeriodSeconds"] {
                if let Some(v) = old["metadata"].get(field) {
                    meta.insert(field.into(), v.clone());
                }
            }
            meta.insert(
                "resourceVersion".into(),
                old["metadata"]["resourceVersion"].clone(),
            );
            if GENERATION_KINDS.contains(&kind) {
                let generation = old["metadata"]["generation"].as_i64().unwrap_or(1);
                meta.insert("generation".into(), generation.into());
            }
        }
        set_type_meta(kind, &mut new);
        if new == *old {
            return Ok(new);
        }
        if GENERATION_KINDS.contains(&kind) && new.get("spec") != old.get("spec") {
            let generation = old["metadata"]["generation"].as_i64().unwrap_or(1) + 1;
            new["metadata"]["generation"] = generation.into();
        }
        self.commit(tx, key, ChangeType::Modified, new.clone());
        let rv = self.rv;
        new["metadata"]["resourceVersion"] = rv.to_string().into();
        Ok(new)
    }

    /// Stores `obj` under the next resourceVersion and records the change.
    fn commit(&mut self, tx: &broadcast::Sender<Change>, key: Key, ty: ChangeType, mut obj: Value) {
        let rv = self.rv + 1;
        self.rv = rv;
        obj["metadata"]["resourceVersion"] = rv.to_string().into();
        let obj = Arc::new(obj);
        self.objects.insert(key.clone(), obj.clone());
        self.record(
            tx,
            Change {
                kind: key.0,
                namespace: key_ns(&key),
                name: key.2,
                rv,
                kind_change: ty,
                object: obj,
            },
        );
    }

    fn record(&mut self, tx: &broadcast::Sender<Change>, change: Change) {
        while self.history.len() >= self.history_cap {
            if let Some(old) = self.history.pop_front() {
                self.compacted = old.rv;
            }
        }
        self.history.push_back(change.clone());
        // No receivers is fine: nobody is watching yet.
        let _ = tx.send(change);
    }
}

/// Whether objects of `kind` live in a namespace.
pub fn namespaced(kind: &str) -> bool {
    !CLUSTER_SCOPED.contains(&kind)
}

/// The `&'static` spelling of a kind the store knows.
pub fn static_kind(kind: &str) -> Option<&'static str> {
    KINDS.iter().copied().find(|k| *k == kind)
}

fn known_kind(kind: &str) -> Result<&'static str, StoreError> {
    static_kind(kind)
        .ok_or_else(|| StoreError::Invalid(format!("the sandbox does not store kind {kind:?}")))
}

fn key(kind: &'static str, ns: Option<&str>, name: &str) -> Key {
    let ns = if namespaced(kind) {
        ns.unwrap_or("default")
    } else {
        ""
    };
    (kind, ns.to_string(), name.to_string())
}

fn key_ns(key: &Key) -> Option<String> {
    namespaced(key.0).then(|| key.1.clone())
}

fn ensure_meta(obj: &mut Value) -> Result<(), StoreError> {
    let Some(o) = obj.as_object_mut() else {
        return Err(StoreError::Invalid(
            "the object is not a JSON object".into(),
        ));
    };
    let meta = o
        .entry("metadata")
        .or_insert_with(|| Value::Object(Default::default()));
    if meta.is_null() {
        *meta = Value::Object(Default::default());
    }
    if !meta.is_object() {
        return Err(StoreError::Invalid("metadata: must be an object".into()));
    }
    Ok(())
}

fn set_type_meta(kind: &'static str, obj: &mut Value) {
    let api_version = match kind {
        "Deployment" | "ReplicaSet" => "apps/v1",
        "EndpointSlice" => "discovery.k8s.io/v1",
        "Ingress" => "networking.k8s.io/v1",
        "PodDisruptionBudget" => "policy/v1",
        "HorizontalPodAutoscaler" => "autoscaling/v2",
        "Job" => "batch/v1",
        _ => "v1",
    };
    obj["kind"] = kind.into();
    obj["apiVersion"] = api_version.into();
}

/// A DNS-1123 subdomain check, as Kubernetes applies to most names.
fn validate_name(kind: &str, name: &str) -> Result<(), StoreError> {
    let ok = !name.is_empty()
        && name.len() <= 253
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.')
        && name.as_bytes()[0].is_ascii_alphanumeric()
        && name.as_bytes()[name.len() - 1].is_ascii_alphanumeric();
    if ok {
        Ok(())
    } else {
        Err(StoreError::Invalid(format!(
            "{kind} \"{name}\" is invalid: metadata.name: Invalid value: \"{name}\": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character"
        )))
    }
}

fn to_value<K: Serialize>(obj: &K) -> Result<Value, StoreError> {
    Ok(serde_json::to_value(obj)?)
}

fn from_value<K: DeserializeOwned>(v: Value) -> Option<K> {
    match serde_json::from_value(v) {
        Ok(k) => Some(k),
        Err(e) => {
            tracing::warn!(error = %e, "stored object does not fit its type");
            None
        }
    }
}

/// The current time as Kubernetes writes it (RFC 3339, seconds).
pub fn now_value() -> Value {
    serde_json::to_value(Time(now_timestamp())).unwrap_or(Value::Null)
}

/// Now, as the `jiff` timestamp k8s-openapi's `Time` wraps (its `now()`
/// needs jiff's `std` feature, which k8s-openapi does not enable).
pub fn now_timestamp() -> k8s_openapi::jiff::Timestamp {
    let d = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    k8s_openapi::jiff::Timestamp::new(d.as_secs() as i64, d.subsec_nanos() as i32)
        .unwrap_or_default()
}

/// Kubernetes' generateName alphabet (no vowels, no look-alikes).
fn random_suffix() -> String {
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    let mut rng = rand::rng();
    (0..5)
        .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
        .collect()
}

/// A random version-4 UUID.
pub(crate) fn random_uid() -> String {
    let mut b: [u8; 16] = rand::rng().random();
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

/// See [`Store::wakeups`].
pub struct Wakeups {
    rx: broadcast::Receiver<Change>,
    tick: tokio::time::Interval,
}

impl Wakeups {
    /// Wait for the next pass: `false` once `shutdown` is cancelled or the
    /// store is gone. A burst of changes is coalesced into one pass (the
    /// loop re-reads the store anyway; a lagged receiver loses nothing).
    pub async fn next(&mut self, shutdown: &tokio_util::sync::CancellationToken) -> bool {
        tokio::select! {
            _ = shutdown.cancelled() => return false,
            _ = self.tick.tick() => {}
            r = self.rx.recv() => match r {
                Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {}
                Err(broadcast::error::RecvError::Closed) => return false,
            },
        }
        while self.rx.try_recv().is_ok() {}
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::apps::v1::{Deployment, DeploymentSpec};
    use k8s_openapi::api::core::v1::{Namespace, Pod};
    use serde_json::json;

    fn store(history: usize) -> Arc<Store> {
        Store::new(StoreConfig { history })
    }

    fn pod(name: &str) -> Pod {
        serde_json::from_value(json!({"metadata": {"name": name, "namespace": "default", "labels": {"app": "web"}}, "spec": {"containers": [{"name": "c", "image": "nginx:1.27"}]}})).unwrap()
    }

    fn deployment(name: &str, replicas: i32) -> Deployment {
        Deployment {
            metadata: ObjectMeta {
                name: Some(name.into()),
                namespace: Some("default".into()),
                ..Default::default()
            },
            spec: DeploymentSpec {
                replicas: Some(replicas),
                ..Default::default()
            },
            ..Default::default()
        }
    }

    #[test]
    fn create_fills_server_fields_and_bumps_the_global_rv() {
        let s = store(100);
        let p = s.create(pod("a")).unwrap();
        assert_eq!(p.metadata.resource_version.as_deref(), Some("1"));
        assert_eq!(p.metadata.uid.as_ref().unwrap().len(), 36);
        assert!(p.metadata.creation_timestamp.is_some());
        let d = s.create(deployment("d", 3)).unwrap();
        assert_eq!(d.metadata.generation, Some(1));
        assert_eq!(d.metadata.resource_version.as_deref(), Some("2"));
        assert_eq!(s.current_rv(), 2);
        let raw = s.get_raw("Pod", Some("default"), "a").unwrap();
        assert_eq!(raw["kind"], "Pod");
        assert_eq!(raw["apiVersion"], "v1");
    }

    #[test]
    fn create_twice_is_already_exists_and_bad_names_are_invalid() {
        let s = store(100);
        s.create(pod("a")).unwrap();
        assert!(matches!(
            s.create(pod("a")),
            Err(StoreError::AlreadyExists { kind: "Pod", .. })
        ));
        assert!(matches!(
            s.create(pod("Bad_Name")),
            Err(StoreError::Invalid(_))
        ));
        assert!(matches!(
            s.create_raw("Pod", json!({"metadata": {}})),
            Err(StoreError::Invalid(_))
        ));
        assert!(matches!(
            s.create_raw("Pod", json!([1])),
            Err(StoreError::Invalid(_))
        ));
        assert!(matches!(
            s.create_raw("Gizmo", json!({})),
            Err(StoreError::Invalid(_))
        ));
    }

    #[test]
    fn generate_name_gets_a_five_character_suffix() {
        let s = store(100);
        let v = s
            .create_raw("Pod", json!({"metadata": {"generateName": "web-"}}))
            .unwrap();
        let name = v["metadata"]["name"].as_str().unwrap();
        assert!(name.starts_with("web-") && name.len() == 9, "{name}");
        assert_eq!(v["metadata"]["namespace"], "default");
    }

    #[test]
    fn update_with_a_stale_rv_conflicts_and_without_one_wins() {
        let s = store(100);
        let p = s.create(pod("a")).unwrap();
        let mut p2 = p.clone();
        p2.metadata.labels = Some([("x".to_string(), "1".to_string())].into());
        let p2 = s.update(p2).unwrap();
        assert_eq!(p2.metadata.resource_version.as_deref(), Some("2"));
        assert!(matches!(
            s.update(p.clone()),
            Err(StoreError::Conflict { .. })
        ));
        let mut p3 = p.clone();
        p3.metadata.resource_version = None;
        assert_eq!(
            s.update(p3).unwrap().metadata.resource_version.as_deref(),
            Some("3")
        );
        let mut missing = pod("zz");
        missing.metadata.resource_version = None;
        assert!(matches!(
            s.update(missing),
            Err(StoreError::NotFound { .. })
        ));
    }

    #[test]
    fn update_keeps_status_and_update_status_keeps_spec() {
        let s = store(100);
        s.create(deployment("d", 3)).unwrap();
        let mut d: Deployment = s.get("default", "d").unwrap();
        d.status = Some(Default::default());
        d.status.as_mut().unwrap().replicas = Some(3);
        d.spec.replicas = Some(5);
        let d = s.update_status(d).unwrap();
        assert_eq!(d.spec.replicas, Some(3));
        assert_eq!(d.status.as_ref().unwrap().replicas, Some(3));
        assert_eq!(d.metadata.generation, Some(1));
        let mut d2 = d.clone();
        d2.status = None;
        d2.spec.replicas = Some(4);
        let d2 = s.update(d2).unwrap();
        assert_eq!(d2.status.as_ref().unwrap().replicas, Some(3));
        assert_eq!(d2.metadata.generation, Some(2));
    }

    #[test]
    fn modify_bumps_generation_only_on_spec_change_and_noop_writes_nothing() {
        let s = store(100);
        s.create(deployment("d", 3)).unwrap();
        let rv0 = s.current_rv();
        let d = s.modify::<Deployment>("default", "d", |_| {}).unwrap();
        assert_eq!(s.current_rv(), rv0, "a no-op write must not bump the rv");
        assert_eq!(d.metadata.resource_version, Some(rv0.to_string()));
        let d = s
            .modify::<Deployment>("default", "d", |d| {
                d.metadata.annotations = Some([("a".to_string(), "b".to_string())].into())
            })
            .unwrap();
        assert_eq!(d.metadata.generation, Some(1));
        let d = s
            .modify::<Deployment>("default", "d", |d| d.spec.paused = Some(true))
            .unwrap();
        assert_eq!(d.metadata.generation, Some(2));
        let d = s
            .modify::<Deployment>("default", "d", |d| {
                d.metadata.name = Some("other".into());
                d.status = Some(Default::default());
            })
            .unwrap();
        assert_eq!(d.metadata.name.as_deref(), Some("d"), "identity is kept");
    }

    #[test]
    fn list_filters_by_namespace_and_cluster_scope_ignores_it() {
        let s = store(100);
        s.create(pod("a")).unwrap();
        let mut b = pod("b");
        b.metadata.namespace = Some("other".into());
        s.create(b).unwrap();
        let (all, rv) = s.list::<Pod>(None);
        assert_eq!(all.len(), 2);
        assert_eq!(rv, 2);
        assert_eq!(s.list::<Pod>(Some("other")).0.len(), 1);
        s.create(Namespace {
            metadata: ObjectMeta {
                name: Some("default".into()),
                ..Default::default()
            },
            ..Default::default()
        })
        .unwrap();
        assert!(s.get::<Namespace>("whatever", "default").is_some());
        assert_eq!(s.list::<Namespace>(Some("x")).0.len(), 1);
        assert!(
            s.get_raw("Namespace", None, "default").unwrap()["metadata"]
                .get("namespace")
                .is_none()
        );
    }

    #[test]
    fn remove_records_a_deleted_change_with_a_new_rv() {
        let s = store(100);
        let mut rx = s.subscribe();
        s.create(pod("a")).unwrap();
        let gone: Pod = s.remove("default", "a").unwrap();
        assert_eq!(gone.metadata.resource_version.as_deref(), Some("2"));
        assert!(s.get::<Pod>("default", "a").is_none());
        assert!(matches!(
            s.remove::<Pod>("default", "a"),
            Err(StoreError::NotFound { .. })
        ));
        let c1 = rx.try_recv().unwrap();
        let c2 = rx.try_recv().unwrap();
        assert_eq!((c1.kind_change, c1.rv), (ChangeType::Added, 1));
        assert_eq!((c2.kind_change, c2.rv), (ChangeType::Deleted, 2));
        assert_eq!(c2.object["metadata"]["resourceVersion"], "2");
    }

    #[test]
    fn changes_since_filters_and_reports_gone_past_the_history() {
        let s = store(3);
        for n in ["a", "b", "c", "d", "e"] {
            s.create(pod(n)).unwrap();
        }
        // History keeps rv 3,4,5; rv 2 was compacted.
        assert_eq!(s.oldest_rv(), 2);
        assert!(matches!(
            s.changes_since("Pod", None, 1),
            Err(StoreError::Gone { rv: 1, oldest: 2 })
        ));
        let since2 = s.changes_since("Pod", None, 2).unwrap();
        assert_eq!(
            since2.iter().map(|c| c.rv).collect::<Vec<_>>(),
            vec![3, 4, 5]
        );
        assert_eq!(s.changes_since("Pod", Some("other"), 2).unwrap().len(), 0);
        assert_eq!(s.changes_since("Service", None, 4).unwrap().len(), 0);
        assert_eq!(s.changes_since("Pod", None, 5).unwrap().len(), 0);
    }

    #[test]
    fn list_at_rebuilds_an_older_state_from_the_history() {
        let s = store(100);
        s.create(pod("a")).unwrap();
        s.create(pod("b")).unwrap();
        let rv = s.current_rv();
        s.remove::<Pod>("default", "a").unwrap();
        s.modify::<Pod>("default", "b", |p| p.metadata.labels = None)
            .unwrap();
        s.create(pod("c")).unwrap();
        let then = s.list_at("Pod", None, rv).unwrap();
        let names: Vec<_> = then
            .iter()
            .map(|v| v["metadata"]["name"].as_str().unwrap())
            .collect();
        assert_eq!(names, vec!["a", "b"]);
        assert_eq!(then[1]["metadata"]["labels"]["app"], "web");
        assert_eq!(s.list_at("Pod", None, s.current_rv()).unwrap().len(), 2);
        assert!(matches!(
            s.list_at("Pod", None, 999),
            Err(StoreError::Gone { .. })
        ));
    }

    #[test]
    fn deletion_fields_survive_updates() {
        let s = store(100);
        s.create(pod("a")).unwrap();
        s.modify_raw("Pod", Some("default"), "a", |v| {
            v["metadata"]["deletionTimestamp"] = now_value();
            v["metadata"]["deletionGracePeriodSeconds"] = 30.into();
            Ok(())
        })
        .unwrap();
        let mut p: Pod = s.get("default", "a").unwrap();
        p.metadata.deletion_timestamp = None;
        p.metadata.resource_version = None;
        let p = s.update(p).unwrap();
        assert!(p.metadata.deletion_timestamp.is_some());
        assert_eq!(p.metadata.deletion_grace_period_seconds, Some(30));
    }
}
