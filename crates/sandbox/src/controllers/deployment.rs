//! The Deployment controller of the sandbox SIMULATOR.
//!
//! Mirrors `pkg/controller/deployment` (sync.go, rolling.go, recreate.go,
//! progress.go, util/deployment_util.go):
//! - the new ReplicaSet is the one whose template equals the Deployment's
//!   ignoring the `pod-template-hash` label; it is named
//!   `<deployment>-<hash>` and carries the hash as label and selector;
//!   an old ReplicaSet whose template matches again (`rollout undo`, which
//!   copies an old template back) becomes the new one with a new revision;
//! - revisions in `deployment.kubernetes.io/revision` on ReplicaSets and the
//!   Deployment: max old revision + 1;
//! - RollingUpdate: maxSurge rounds up, maxUnavailable rounds down, both
//!   resolving to 0 means maxUnavailable 1; the new ReplicaSet is scaled up
//!   to at most replicas + maxSurge in total, old ones scaled down while at
//!   least replicas − maxUnavailable Pods stay available (unhealthy old
//!   Pods first), counting availability from ReplicaSet status;
//! - Recreate: scale old ReplicaSets to 0, wait until their Pods are gone,
//!   then scale the new one up;
//! - paused: no new ReplicaSet, no rollout progress (only scaling);
//! - a scaling event (`replicas` changed, seen through the
//!   `desired-replicas` annotation) mid-rollout scales the active
//!   ReplicaSets proportionally, the leftover to the largest;
//! - status (observedGeneration, replicas, updatedReplicas, readyReplicas,
//!   availableReplicas, unavailableReplicas) and the Available/Progressing
//!   conditions exactly as `kubectl rollout status` reads them, including
//!   `Progressing=False, reason ProgressDeadlineExceeded`;
//! - revisionHistoryLimit cleanup of old, scaled-to-zero ReplicaSets;
//! - `ScalingReplicaSet` events.
//!
//! Not mirrored: ReplicaFailure conditions, adoption of orphan
//! ReplicaSets, the deprecated rollbackTo.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use k8s_openapi::api::apps::v1::{
    Deployment, DeploymentCondition, DeploymentStatus, ReplicaSet, ReplicaSetSpec,
};
use k8s_openapi::api::core::v1::{Pod, PodTemplateSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta, Time};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use k8s_openapi::jiff::{SignedDuration, Timestamp};

use super::{controlled_by, controller_of, owner_ref};
use crate::events::{EventType, Recorder};
use crate::store::Store;

pub const REVISION: &str = "deployment.kubernetes.io/revision";
pub const REVISION_HISTORY: &str = "deployment.kubernetes.io/revision-history";
pub const DESIRED_REPLICAS: &str = "deployment.kubernetes.io/desired-replicas";
pub const MAX_REPLICAS: &str = "deployment.kubernetes.io/max-replicas";
pub const HASH_LABEL: &str = "pod-template-hash";

/// Annotations of a Deployment not copied to its ReplicaSets
/// (`annotationsToSkip` in deployment_util.go).
const SKIP_ANNOTATIONS: &[&str] = &[
    "kubectl.kubernetes.io/last-applied-configuration",
    REVISION,
    REVISION_HISTORY,
    DESIRED_REPLICAS,
    MAX_REPLICAS,
    "deprecated.deployment.rollback.to",
];

/// One pass over every Deployment.
pub fn reconcile_all(store: &Arc<Store>, rec: &Recorder) {
    let (deps, _) = store.list::<Deployment>(None);
    let (rss, _) = store.list::<ReplicaSet>(None);
    let (pods, _) = store.list::<Pod>(None);
    let uids: HashSet<&str> = deps
        .iter()
        .filter_map(|d| d.metadata.uid.as_deref())
        .collect();
    // ReplicaSets of Deployments that no longer exist go away (garbage
    // collection); the ReplicaSet controller then deletes their Pods.
    for rs in &rss {
        if let Some(o) = controller_of(&rs.metadata)
            && o.kind == "Deployment"
            && !uids.contains(o.uid.as_str())
        {
            let ns = rs.metadata.namespace.as_deref().unwrap_or("default");
            let _ = store.remove::<ReplicaSet>(ns, rs.metadata.name.as_deref().unwrap_or_default());
        }
    }
    for d in &deps {
        let uid = d.metadata.uid.as_deref().unwrap_or_default();
        let mine: Vec<ReplicaSet> = rss
            .iter()
            .filter(|r| controlled_by(&r.metadata, uid))
            .cloned()
            .collect();
        let ctx = Ctx {
            store,
            rec,
            pods: &pods,
        };
        if let Err(e) = ctx.sync(d.clone(), mine) {
            tracing::warn!(deployment = d.metadata.name.as_deref().unwrap_or_default(), error = %e, "deployment sync failed");
        }
    }
}

type Result<T> = std::result::Result<T, crate::store::StoreError>;

struct Ctx<'a> {
    store: &'a Store,
    rec: &'a Recorder,
    pods: &'a [Pod],
}

fn replicas(d: &Deployment) -> i32 {
    d.spec.replicas.unwrap_or(1)
}

fn rs_replicas(rs: &ReplicaSet) -> i32 {
    rs.spec.replicas.unwrap_or(1)
}

fn rs_status(rs: &ReplicaSet) -> (i32, i32, i32) {
    let s = rs.status.clone().unwrap_or_default();
    (
        s.replicas,
        s.ready_replicas.unwrap_or(0),
        s.available_replicas.unwrap_or(0),
    )
}

fn revision_of(meta: &ObjectMeta) -> i64 {
    meta.annotations
        .as_ref()
        .and_then(|a| a.get(REVISION))
        .and_then(|r| r.parse().ok())
        .unwrap_or(0)
}

fn is_rolling(d: &Deployment) -> bool {
    d.spec
        .strategy
        .as_ref()
        .and_then(|s| s.type_.as_deref())
        .is_none_or(|t| t != "Recreate")
}

fn progress_deadline(d: &Deployment) -> Option<i64> {
    // API default 600; MaxInt32 means "no deadline".
    let s = d.spec.progress_deadline_seconds.unwrap_or(600);
    (s != i32::MAX).then_some(s as i64)
}

/// `GetScaledValueFromIntOrPercent`: a percentage of `total`, rounded up
/// or down.
pub fn scaled_value(v: &IntOrString, total: i32, round_up: bool) -> i32 {
    match v {
        IntOrString::Int(i) => *i,
        IntOrString::String(s) => {
            let Some(p) = s
                .strip_suffix('%')
                .and_then(|p| p.trim().parse::<i64>().ok())
            else {
                return s.parse().unwrap_or(0);
            };
            let x = p * total as i64;
            (if round_up {
                (x + 99).div_euclid(100)
            } else {
                x.div_euclid(100)
            }) as i32
        }
    }
}

/// `ResolveFenceposts`: (maxSurge, maxUnavailable) for `desired` replicas.
/// Missing values get the API defaults (25%); both resolving to 0 makes
/// maxUnavailable 1 (Kubernetes' guard; validation rejects explicit 0/0).
pub fn resolve_fenceposts(d: &Deployment) -> (i32, i32) {
    let desired = replicas(d);
    let ru = d
        .spec
        .strategy
        .as_ref()
        .and_then(|s| s.rolling_update.as_ref());
    let quarter = IntOrString::String("25%".into());
    let surge = scaled_value(
        ru.and_then(|r| r.max_surge.as_ref()).unwrap_or(&quarter),
        desired,
        true,
    );
    let mut unavail = scaled_value(
        ru.and_then(|r| r.max_unavailable.as_ref())
            .unwrap_or(&quarter),
        desired,
        false,
    );
    if surge == 0 && unavail == 0 {
        unavail = 1;
    }
    (surge.max(0), unavail.max(0))
}

/// `MaxUnavailable`: 0 for Recreate or 0 replicas, at most `replicas`.
fn max_unavailable(d: &Deployment) -> i32 {
    if !is_rolling(d) || replicas(d) == 0 {
        return 0;
    }
    resolve_fenceposts(d).1.min(replicas(d))
}

fn max_surge(d: &Deployment) -> i32 {
    if !is_rolling(d) {
        return 0;
    }
    resolve_fenceposts(d).0
}

/// The template as compared by `EqualIgnoreHash`, normalised to JSON.
fn template_key(t: Option<&PodTemplateSpec>) -> serde_json::Value {
    let mut t = t.cloned().unwrap_or_default();
    if let Some(m) = t.metadata.as_mut() {
        if let Some(l) = m.labels.as_mut() {
            l.remove(HASH_LABEL);
            if l.is_empty() {
                m.labels = None;
            }
        }
        if m.annotations.as_ref().is_some_and(|a| a.is_empty()) {
            m.annotations = None;
        }
        if *m == ObjectMeta::default() {
            t.metadata = None;
        }
    }
    serde_json::to_value(t).unwrap_or_default()
}

/// `ComputeHash`: FNV-1a (32 bit) of the template and the collision count,
/// encoded with Kubernetes' `SafeEncodeString` alphabet.
pub fn pod_template_hash(t: Option<&PodTemplateSpec>, collision: Option<i32>) -> String {
    let mut h: u32 = 0x811c_9dc5;
    let mut feed = |bytes: &[u8]| {
        for b in bytes {
            h ^= *b as u32;
            h = h.wrapping_mul(0x0100_0193);
        }
    };
    feed(template_key(t).to_string().as_bytes());
    if let Some(c) = collision {
        feed(&c.to_le_bytes());
    }
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    h.to_string()
        .bytes()
        .map(|b| ALPHABET[b as usize % ALPHABET.len()] as char)
        .collect()
}

fn condition<'a>(s: &'a DeploymentStatus, ty: &str) -> Option<&'a DeploymentCondition> {
    s.conditions
        .iter()
        .flatten()
        .find(|c| c.type_.as_deref() == Some(ty))
}

fn new_condition(ty: &str, status: &str, reason: &str, msg: String) -> DeploymentCondition {
    let now = Time(crate::node::now());
    DeploymentCondition {
        type_: Some(ty.into()),
        status: Some(status.into()),
        reason: Some(reason.into()),
        message: Some(msg),
        last_update_time: Some(now.clone()),
        last_transition_time: Some(now),
    }
}

/// `SetDeploymentCondition`: no change when status and reason are the
/// same; keeps lastTransitionTime when only the reason changes.
fn set_condition(s: &mut DeploymentStatus, mut c: DeploymentCondition) {
    if let Some(cur) = condition(s, c.type_.as_deref().unwrap_or_default()) {
        if cur.status == c.status && cur.reason == c.reason {
            return;
        }
        if cur.status == c.status {
            c.last_transition_time = cur.last_transition_time.clone();
        }
    }
    remove_condition(s, c.type_.as_deref().unwrap_or_default());
    s.conditions.get_or_insert_with(Vec::new).push(c);
}

fn remove_condition(s: &mut DeploymentStatus, ty: &str) {
    if let Some(cs) = s.conditions.as_mut() {
        cs.retain(|c| c.type_.as_deref() != Some(ty));
    }
}

/// `DeploymentComplete`.
pub fn deployment_complete(d: &Deployment, s: &DeploymentStatus) -> bool {
    let r = replicas(d);
    s.updated_replicas.unwrap_or(0) == r
        && s.replicas.unwrap_or(0) == r
        && s.available_replicas.unwrap_or(0) == r
        && s.observed_generation.unwrap_or(0) >= d.metadata.generation.unwrap_or(0)
}

/// `DeploymentProgressing`: any progress compared with the last status.
fn deployment_progressing(d: &Deployment, new: &DeploymentStatus) -> bool {
    let old = d.status.clone().unwrap_or_default();
    let old_old = old.replicas.unwrap_or(0) - old.updated_replicas.unwrap_or(0);
    let new_old = new.replicas.unwrap_or(0) - new.updated_replicas.unwrap_or(0);
    new.updated_replicas.unwrap_or(0) > old.updated_replicas.unwrap_or(0)
        || new_old < old_old
        || new.ready_replicas.unwrap_or(0) > old.ready_replicas.unwrap_or(0)
        || new.available_replicas.unwrap_or(0) > old.available_replicas.unwrap_or(0)
}

/// `DeploymentTimedOut`.
fn deployment_timed_out(d: &Deployment, new: &DeploymentStatus, now: Timestamp) -> bool {
    let Some(deadline) = progress_deadline(d) else {
        return false;
    };
    let Some(c) = condition(new, "Progressing") else {
        return false;
    };
    match c.reason.as_deref() {
        Some("NewReplicaSetAvailable") => false,
        Some("ProgressDeadlineExceeded") => true,
        _ => c
            .last_update_time
            .as_ref()
            .is_some_and(|t| t.0 + SignedDuration::from_secs(deadline) < now),
    }
}

impl Ctx<'_> {
    fn sync(&self, mut d: Deployment, mut rss: Vec<ReplicaSet>) -> Result<()> {
        if d.metadata.deletion_timestamp.is_some() {
            return Ok(());
        }
        rss.sort_by(|a, b| {
            a.metadata
                .creation_timestamp
                .cmp(&b.metadata.creation_timestamp)
                .then_with(|| a.metadata.name.cmp(&b.metadata.name))
        });
        let paused = d.spec.paused.unwrap_or(false);
        // checkPausedConditions
        if progress_deadline(&d).is_some() {
            let mut st = d.status.clone().unwrap_or_default();
            let cur = condition(&st, "Progressing").and_then(|c| c.reason.clone());
            let changed = if paused && cur.as_deref() != Some("DeploymentPaused") {
                set_condition(
                    &mut st,
                    new_condition(
                        "Progressing",
                        "Unknown",
                        "DeploymentPaused",
                        "Deployment is paused".into(),
                    ),
                );
                true
            } else if !paused && cur.as_deref() == Some("DeploymentPaused") {
                set_condition(
                    &mut st,
                    new_condition(
                        "Progressing",
                        "Unknown",
                        "DeploymentResumed",
                        "Deployment is resumed".into(),
                    ),
                );
                true
            } else {
                false
            };
            if changed {
                d = self.write_status(&d, st)?;
            }
        }
        if paused {
            return self.sync_scale(d, rss, true);
        }
        if self.is_scaling_event(&mut d, &mut rss)? {
            return self.sync_scale(d, rss, false);
        }
        if is_rolling(&d) {
            self.rollout_rolling(d, rss)
        } else {
            self.rollout_recreate(d, rss)
        }
    }

    fn write_status(&self, d: &Deployment, st: DeploymentStatus) -> Result<Deployment> {
        let ns = d.metadata.namespace.as_deref().unwrap_or("default");
        let name = d.metadata.name.as_deref().unwrap_or_default();
        self.store
            .modify::<Deployment>(ns, name, |cur| cur.status = Some(st))
    }

    /// `getNewReplicaSet`: finds (and syncs the revision of) the new
    /// ReplicaSet, creating it when `create` and none matches.
    fn new_rs(
        &self,
        d: &mut Deployment,
        rss: &mut Vec<ReplicaSet>,
        create: bool,
    ) -> Result<Option<usize>> {
        let key = template_key(Some(&d.spec.template));
        let found = rss
            .iter()
            .position(|r| template_key(r.spec.template.as_ref()) == key);
        let max_old = rss
            .iter()
            .enumerate()
            .filter(|(i, _)| Some(*i) != found)
            .map(|(_, r)| revision_of(&r.metadata))
            .max()
            .unwrap_or(0);
        let new_revision = max_old + 1;
        let ns = d
            .metadata
            .namespace
            .clone()
            .unwrap_or_else(|| "default".into());
        let dname = d.metadata.name.clone().unwrap_or_default();
        let min_ready = d.spec.min_ready_seconds;
        let (surge, _) = resolve_fenceposts(d);
        let max_total = replicas(d) + if is_rolling(d) { surge } else { 0 };

        if let Some(i) = found {
            let rs = &rss[i];
            let rs_rev = revision_of(&rs.metadata);
            let needs = rs_rev < new_revision || rs.spec.min_ready_seconds != min_ready;
            if needs {
                let rsname = rs.metadata.name.clone().unwrap_or_default();
                let updated = self.store.modify::<ReplicaSet>(&ns, &rsname, |r| {
                    if revision_of(&r.metadata) < new_revision {
                        let a = r.metadata.annotations.get_or_insert_with(BTreeMap::new);
                        if rs_rev > 0 {
                            // Kubernetes keeps the revisions an undone
                            // ReplicaSet had, in revision-history.
                            let hist = a.get(REVISION_HISTORY).cloned();
                            let h = match hist {
                                Some(h) if !h.is_empty() => format!("{h},{rs_rev}"),
                                _ => rs_rev.to_string(),
                            };
                            a.insert(REVISION_HISTORY.into(), h);
                        }
                        a.insert(REVISION.into(), new_revision.to_string());
                    }
                    let s = &mut r.spec;
                    s.min_ready_seconds = min_ready;
                })?;
                rss[i] = updated;
            }
            let rev = revision_of(&rss[i].metadata);
            let mut st = d.status.clone().unwrap_or_default();
            let mut status_changed = false;
            if progress_deadline(d).is_some() && condition(&st, "Progressing").is_none() {
                let rsname = rss[i].metadata.name.clone().unwrap_or_default();
                set_condition(
                    &mut st,
                    new_condition(
                        "Progressing",
                        "True",
                        "FoundNewReplicaSet",
                        format!("Found new replica set \"{rsname}\""),
                    ),
                );
                status_changed = true;
            }
            self.set_deployment_revision(d, rev, status_changed.then_some(st))?;
            return Ok(Some(i));
        }
        if !create {
            return Ok(None);
        }

        // Create the new ReplicaSet.
        let mut collision = d.status.as_ref().and_then(|s| s.collision_count);
        let tmpl = d.spec.template.clone();
        for _ in 0..5 {
            let hash = pod_template_hash(Some(&tmpl), collision);
            let rsname = format!("{dname}-{hash}");
            let mut t = tmpl.clone();
            t.metadata
                .get_or_insert_with(Default::default)
                .labels
                .get_or_insert_with(BTreeMap::new)
                .insert(HASH_LABEL.into(), hash.clone());
            let mut sel: LabelSelector = d.spec.selector.clone();
            sel.match_labels
                .get_or_insert_with(BTreeMap::new)
                .insert(HASH_LABEL.into(), hash.clone());
            let mut ann: BTreeMap<String, String> = d
                .metadata
                .annotations
                .iter()
                .flatten()
                .filter(|(k, _)| !SKIP_ANNOTATIONS.contains(&k.as_str()))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            ann.insert(REVISION.into(), new_revision.to_string());
            ann.insert(DESIRED_REPLICAS.into(), replicas(d).to_string());
            ann.insert(MAX_REPLICAS.into(), max_total.to_string());
            // NewRSNewReplicas
            let new_replicas = if is_rolling(d) {
                let current: i32 = rss.iter().map(rs_replicas).sum();
                (max_total - current).min(replicas(d)).max(0)
            } else {
                replicas(d)
            };
            let rs = ReplicaSet {
                metadata: ObjectMeta {
                    name: Some(rsname.clone()),
                    namespace: Some(ns.clone()),
                    labels: t.metadata.as_ref().and_then(|m| m.labels.clone()),
                    annotations: Some(ann),
                    owner_references: Some(vec![owner_ref("apps/v1", "Deployment", &d.metadata)]),
                    ..Default::default()
                },
                spec: ReplicaSetSpec {
                    replicas: Some(new_replicas),
                    min_ready_seconds: min_ready,
                    selector: sel,
                    template: Some(t),
                },
                status: None,
            };
            match self.store.create(rs) {
                Ok(created) => {
                    tracing::info!(deployment = %dname, replicaset = %rsname, revision = new_revision, "created new replica set");
                    if new_replicas > 0 {
                        self.rec.record(
                            &*d,
                            EventType::Normal,
                            "ScalingReplicaSet",
                            format!("Scaled up replica set {rsname} from 0 to {new_replicas}"),
                        );
                    }
                    rss.push(created);
                    let mut st = d.status.clone().unwrap_or_default();
                    if progress_deadline(d).is_some() {
                        let mut c = new_condition(
                            "Progressing",
                            "True",
                            "NewReplicaSetCreated",
                            format!("Created new replica set \"{rsname}\""),
                        );
                        // A fresh rollout: lastUpdateTime restarts the deadline.
                        if let Some(cur) = condition(&st, "Progressing")
                            && cur.status.as_deref() == Some("True")
                        {
                            c.last_transition_time = cur.last_transition_time.clone();
                        }
                        remove_condition(&mut st, "Progressing");
                        st.conditions.get_or_insert_with(Vec::new).push(c);
                    }
                    self.set_deployment_revision(d, new_revision, Some(st))?;
                    return Ok(Some(rss.len() - 1));
                }
                Err(crate::store::StoreError::AlreadyExists { .. }) => {
                    // A hash collision with a ReplicaSet of another template
                    // (a matching one would have been found above).
                    collision = Some(collision.unwrap_or(0) + 1);
                    let c = collision;
                    self.store.modify::<Deployment>(&ns, &dname, |cur| {
                        cur.status
                            .get_or_insert_with(Default::default)
                            .collision_count = c;
                    })?;
                }
                Err(e) => return Err(e),
            }
        }
        Ok(None)
    }

    /// Writes the revision annotation (and a status, if given) to the
    /// Deployment, and mirrors both into `d`.
    fn set_deployment_revision(
        &self,
        d: &mut Deployment,
        rev: i64,
        st: Option<DeploymentStatus>,
    ) -> Result<()> {
        let cur_rev = d
            .metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(REVISION))
            .cloned();
        let rev_s = rev.to_string();
        if cur_rev.as_deref() == Some(rev_s.as_str()) && st.is_none() {
            return Ok(());
        }
        let ns = d
            .metadata
            .namespace
            .clone()
            .unwrap_or_else(|| "default".into());
        let name = d.metadata.name.clone().unwrap_or_default();
        let updated = self.store.modify::<Deployment>(&ns, &name, |cur| {
            cur.metadata
                .annotations
                .get_or_insert_with(BTreeMap::new)
                .insert(REVISION.into(), rev_s.clone());
            if let Some(st) = st {
                cur.status = Some(st);
            }
        })?;
        d.metadata.annotations = updated.metadata.annotations;
        d.metadata.resource_version = updated.metadata.resource_version;
        d.status = updated.status;
        Ok(())
    }

    /// `scaleReplicaSet`: sets the size and the desired/max-replicas
    /// annotations; returns whether the size changed (then with a
    /// `ScalingReplicaSet` event).
    fn scale(&self, d: &Deployment, rs: &mut ReplicaSet, to: i32) -> Result<bool> {
        let from = rs_replicas(rs);
        let max_total = (replicas(d) + max_surge(d)).to_string();
        let desired = replicas(d).to_string();
        let ann = rs.metadata.annotations.as_ref();
        let annotations_ok = ann.and_then(|a| a.get(DESIRED_REPLICAS)) == Some(&desired)
            && ann.and_then(|a| a.get(MAX_REPLICAS)) == Some(&max_total);
        if from == to && annotations_ok {
            return Ok(false);
        }
        let ns = rs
            .metadata
            .namespace
            .clone()
            .unwrap_or_else(|| "default".into());
        let name = rs.metadata.name.clone().unwrap_or_default();
        *rs = self.store.modify::<ReplicaSet>(&ns, &name, |r| {
            r.spec.replicas = Some(to);
            let a = r.metadata.annotations.get_or_insert_with(BTreeMap::new);
            a.insert(DESIRED_REPLICAS.into(), desired);
            a.insert(MAX_REPLICAS.into(), max_total);
        })?;
        if from == to {
            return Ok(false);
        }
        let dir = if to > from { "up" } else { "down" };
        tracing::info!(replicaset = %name, from, to, "scaled {dir} replica set");
        self.rec.record(
            d,
            EventType::Normal,
            "ScalingReplicaSet",
            format!("Scaled {dir} replica set {name} from {from} to {to}"),
        );
        Ok(true)
    }

    fn rollout_rolling(&self, mut d: Deployment, mut rss: Vec<ReplicaSet>) -> Result<()> {
        let new_i = self.new_rs(&mut d, &mut rss, true)?;
        let Some(ni) = new_i else {
            return self.sync_rollout_status(&d, &rss, None);
        };
        let desired = replicas(&d);

        // reconcileNewReplicaSet
        let new_count = rs_replicas(&rss[ni]);
        let scaled_up = if new_count > desired {
            self.scale(&d, &mut rss[ni], desired)?
        } else if new_count < desired {
            let current: i32 = rss.iter().map(rs_replicas).sum();
            let max_total = desired + max_surge(&d);
            let room = (max_total - current).max(0);
            let to = new_count + room.min(desired - new_count);
            self.scale(&d, &mut rss[ni], to)?
        } else {
            false
        };
        if scaled_up {
            return self.sync_rollout_status(&d, &rss, Some(ni));
        }

        // reconcileOldReplicaSets
        let old_count: i32 = rss
            .iter()
            .enumerate()
            .filter(|(i, _)| *i != ni)
            .map(|(_, r)| rs_replicas(r))
            .sum();
        if old_count > 0 {
            let all_count: i32 = rss.iter().map(rs_replicas).sum();
            let min_available = desired - max_unavailable(&d);
            let new_unavailable = rs_replicas(&rss[ni]) - rs_status(&rss[ni]).2;
            let max_scaled_down = all_count - min_available - new_unavailable;
            if max_scaled_down > 0 {
                let mut scaled = 0;
                // cleanupUnhealthyReplicas: old ReplicaSets oldest first.
                for (i, rs) in rss.iter_mut().enumerate() {
                    if i == ni || scaled >= max_scaled_down {
                        continue;
                    }
                    let spec = rs_replicas(rs);
                    let avail = rs_status(rs).2;
                    if spec == 0 || avail >= spec {
                        continue;
                    }
                    let n = (max_scaled_down - scaled).min(spec - avail);
                    if self.scale(&d, rs, spec - n)? {
                        scaled += n;
                    }
                }
                // scaleDownOldReplicaSetsForRollingUpdate
                let available: i32 = rss.iter().map(|r| rs_status(r).2).sum();
                if available > min_available {
                    let total = available - min_available;
                    let mut done = 0;
                    for (i, rs) in rss.iter_mut().enumerate() {
                        if i == ni || done >= total {
                            continue;
                        }
                        let spec = rs_replicas(rs);
                        if spec == 0 {
                            continue;
                        }
                        let n = spec.min(total - done);
                        if self.scale(&d, rs, spec - n)? {
                            done += n;
                        }
                    }
                    scaled += done;
                }
                if scaled > 0 {
                    return self.sync_rollout_status(&d, &rss, Some(ni));
                }
            }
        }
        if d.status
            .as_ref()
            .is_some_and(|s| deployment_complete(&d, s))
        {
            self.cleanup(&d, &rss, Some(ni));
        }
        self.sync_rollout_status(&d, &rss, Some(ni))
    }

    fn rollout_recreate(&self, mut d: Deployment, mut rss: Vec<ReplicaSet>) -> Result<()> {
        let mut new_i = self.new_rs(&mut d, &mut rss, false)?;
        let mut scaled_down = false;
        for (i, rs) in rss.iter_mut().enumerate() {
            if Some(i) != new_i && rs_replicas(rs) > 0 {
                scaled_down |= self.scale(&d, rs, 0)?;
            }
        }
        if scaled_down {
            return self.sync_rollout_status(&d, &rss, new_i);
        }
        // oldPodsRunning
        let old_uids: HashSet<String> = rss
            .iter()
            .enumerate()
            .filter(|(i, _)| Some(*i) != new_i)
            .filter_map(|(_, r)| r.metadata.uid.clone())
            .collect();
        let old_running = rss
            .iter()
            .enumerate()
            .any(|(i, r)| Some(i) != new_i && rs_status(r).0 > 0)
            || self.pods.iter().any(|p| {
                controller_of(&p.metadata).is_some_and(|o| old_uids.contains(&o.uid))
                    && !matches!(
                        p.status.as_ref().and_then(|s| s.phase.as_deref()),
                        Some("Succeeded") | Some("Failed")
                    )
            });
        if old_running {
            return self.sync_rollout_status(&d, &rss, new_i);
        }
        if new_i.is_none() {
            new_i = self.new_rs(&mut d, &mut rss, true)?;
        }
        if let Some(ni) = new_i {
            let desired = replicas(&d);
            if rs_replicas(&rss[ni]) != desired {
                self.scale(&d, &mut rss[ni], desired)?;
            }
        }
        if d.status
            .as_ref()
            .is_some_and(|s| deployment_complete(&d, s))
        {
            self.cleanup(&d, &rss, new_i);
        }
        self.sync_rollout_status(&d, &rss, new_i)
    }

    /// `isScalingEvent`: an active ReplicaSet was last sized for another
    /// `replicas` than the Deployment's now (`kubectl scale`).
    fn is_scaling_event(&self, d: &mut Deployment, rss: &mut Vec<ReplicaSet>) -> Result<bool> {
        self.new_rs(d, rss, false)?;
        let want = replicas(d).to_string();
        Ok(rss.iter().filter(|r| rs_replicas(r) > 0).any(|r| {
            r.metadata
                .annotations
                .as_ref()
                .and_then(|a| a.get(DESIRED_REPLICAS))
                .is_some_and(|v| *v != want)
        }))
    }

    /// `sync`: scaling (paused, or a scaling event) without rollout
    /// progress; status without progress estimation.
    fn sync_scale(&self, mut d: Deployment, mut rss: Vec<ReplicaSet>, paused: bool) -> Result<()> {
        let new_i = self.new_rs(&mut d, &mut rss, false)?;
        self.scale_proportionally(&d, &mut rss, new_i)?;
        if paused {
            self.cleanup(&d, &rss, new_i);
        }
        // syncDeploymentStatus
        let mut st = calculate_status(&d, &rss, new_i);
        if progress_deadline(&d).is_none() {
            remove_condition(&mut st, "Progressing");
        }
        if d.status.as_ref() != Some(&st) {
            self.write_status(&d, st)?;
        }
        Ok(())
    }

    /// `scale` in sync.go: one active (or only the newest) ReplicaSet takes
    /// the whole size; a saturated new ReplicaSet sends the old ones to 0;
    /// otherwise, for RollingUpdate, the change in replicas + maxSurge is
    /// spread over the active ReplicaSets in proportion to their size, the
    /// leftover going to the largest.
    fn scale_proportionally(
        &self,
        d: &Deployment,
        rss: &mut [ReplicaSet],
        new_i: Option<usize>,
    ) -> Result<()> {
        let desired = replicas(d);
        let active: Vec<usize> = (0..rss.len())
            .filter(|&i| rs_replicas(&rss[i]) > 0)
            .collect();
        // FindActiveOrLatest
        let only = match active.as_slice() {
            [one] => Some(*one),
            [] => new_i.or_else(|| {
                (0..rss.len()).max_by(|&a, &b| {
                    rss[a]
                        .metadata
                        .creation_timestamp
                        .cmp(&rss[b].metadata.creation_timestamp)
                })
            }),
            _ => None,
        };
        if let Some(i) = only {
            self.scale(d, &mut rss[i], desired)?;
            return Ok(());
        }
        // IsSaturated
        if let Some(ni) = new_i {
            let n = &rss[ni];
            let ann_desired = n
                .metadata
                .annotations
                .as_ref()
                .and_then(|a| a.get(DESIRED_REPLICAS))
                .and_then(|v| v.parse::<i32>().ok());
            if ann_desired == Some(desired)
                && rs_status(n).2 == desired
                && rs_replicas(n) == desired
            {
                for i in active {
                    if i != ni {
                        self.scale(d, &mut rss[i], 0)?;
                    }
                }
                return Ok(());
            }
        }
        if !is_rolling(d) {
            return Ok(());
        }
        let shares: Vec<Share> = active
            .iter()
            .map(|&i| Share {
                name: rss[i].metadata.name.as_deref().unwrap_or_default(),
                created: rss[i].metadata.creation_timestamp.as_ref().map(|t| t.0),
                replicas: rs_replicas(&rss[i]),
                max_replicas_annotation: rss[i]
                    .metadata
                    .annotations
                    .as_ref()
                    .and_then(|a| a.get(MAX_REPLICAS))
                    .and_then(|v| v.parse::<i32>().ok()),
            })
            .collect();
        let status_replicas = d.status.as_ref().and_then(|s| s.replicas).unwrap_or(0);
        let sizes = proportional_sizes(&shares, desired, max_surge(d), status_replicas);
        for (&i, size) in active.iter().zip(sizes) {
            self.scale(d, &mut rss[i], size)?;
        }
        Ok(())
    }

    /// `cleanupDeployment`: delete the oldest scaled-down ReplicaSets beyond
    /// revisionHistoryLimit (default 10).
    fn cleanup(&self, d: &Deployment, rss: &[ReplicaSet], new_i: Option<usize>) {
        let limit = d.spec.revision_history_limit.unwrap_or(10).max(0) as usize;
        let mut old: Vec<&ReplicaSet> = rss
            .iter()
            .enumerate()
            .filter(|(i, r)| Some(*i) != new_i && r.metadata.deletion_timestamp.is_none())
            .map(|(_, r)| r)
            .collect();
        if old.len() <= limit {
            return;
        }
        let diff = old.len() - limit;
        old.sort_by_key(|r| revision_of(&r.metadata));
        for r in old.into_iter().take(diff) {
            let st = r.status.clone().unwrap_or_default();
            if st.replicas != 0
                || rs_replicas(r) != 0
                || r.metadata.generation.unwrap_or(0) > st.observed_generation.unwrap_or(0)
            {
                continue;
            }
            let ns = r.metadata.namespace.as_deref().unwrap_or("default");
            let name = r.metadata.name.as_deref().unwrap_or_default();
            tracing::info!(
                replicaset = name,
                "cleaning up old replica set (revisionHistoryLimit)"
            );
            let _ = self.store.remove::<ReplicaSet>(ns, name);
        }
    }

    /// `syncRolloutStatus`.
    fn sync_rollout_status(
        &self,
        d: &Deployment,
        rss: &[ReplicaSet],
        new_i: Option<usize>,
    ) -> Result<()> {
        let mut st = calculate_status(d, rss, new_i);
        let now = crate::node::now();
        let has_deadline = progress_deadline(d).is_some();
        if !has_deadline {
            remove_condition(&mut st, "Progressing");
        }
        let old = d.status.clone().unwrap_or_default();
        let cur = condition(&old, "Progressing");
        let complete_already = st.replicas == st.updated_replicas
            && cur.is_some_and(|c| c.reason.as_deref() == Some("NewReplicaSetAvailable"));
        let rs_name = new_i.and_then(|i| rss[i].metadata.name.clone());
        let dname = d.metadata.name.clone().unwrap_or_default();
        if has_deadline && !complete_already {
            if deployment_complete(d, &st) {
                let msg = match &rs_name {
                    Some(n) => format!("ReplicaSet \"{n}\" has successfully progressed."),
                    None => format!("Deployment \"{dname}\" has successfully progressed."),
                };
                set_condition(
                    &mut st,
                    new_condition("Progressing", "True", "NewReplicaSetAvailable", msg),
                );
            } else if deployment_progressing(d, &st) {
                let msg = match &rs_name {
                    Some(n) => format!("ReplicaSet \"{n}\" is progressing."),
                    None => format!("Deployment \"{dname}\" is progressing."),
                };
                let mut c = new_condition("Progressing", "True", "ReplicaSetUpdated", msg);
                if let Some(cur) = condition(&st, "Progressing") {
                    if cur.status.as_deref() == Some("True") {
                        c.last_transition_time = cur.last_transition_time.clone();
                    }
                    remove_condition(&mut st, "Progressing");
                }
                set_condition(&mut st, c);
            } else if deployment_timed_out(d, &st, now) {
                let msg = match &rs_name {
                    Some(n) => format!("ReplicaSet \"{n}\" has timed out progressing."),
                    None => format!("Deployment \"{dname}\" has timed out progressing."),
                };
                set_condition(
                    &mut st,
                    new_condition("Progressing", "False", "ProgressDeadlineExceeded", msg),
                );
            }
        }
        if d.status.as_ref() != Some(&st) {
            if condition(&st, "Progressing").and_then(|c| c.reason.as_deref())
                == Some("ProgressDeadlineExceeded")
                && cur.and_then(|c| c.reason.as_deref()) != Some("ProgressDeadlineExceeded")
            {
                tracing::info!(deployment = %dname, "progress deadline exceeded");
            }
            self.write_status(d, st)?;
        }
        Ok(())
    }
}

/// One active ReplicaSet as the proportional arithmetic sees it.
#[derive(Clone, Debug, PartialEq)]
pub struct Share<'a> {
    pub name: &'a str,
    pub created: Option<Timestamp>,
    /// `spec.replicas` (more than 0: only active ReplicaSets share).
    pub replicas: i32,
    /// `deployment.kubernetes.io/max-replicas`: the Deployment's
    /// replicas + maxSurge when this ReplicaSet was last sized.
    pub max_replicas_annotation: Option<i32>,
}

/// The RollingUpdate half of `scale` in sync.go, as pure arithmetic: the
/// new size of each active ReplicaSet (in the order given) when the
/// Deployment's `replicas` changed to `desired` in the middle of a
/// rollout. The change in allowed Pods (desired + maxSurge, 0 when
/// desired is 0) is shared out largest ReplicaSet first (equal sizes:
/// newer first when scaling up, older first when down; equal ages by
/// name, as `ReplicaSetsBySizeNewer`/`Older` sort), each getting
/// round(size × allowed / its max-replicas annotation) − size
/// (`getReplicaSetFraction`; the Deployment's `status.replicas` when the
/// annotation is missing or 0, nothing when that is 0 too), never more
/// than is left to share; what rounding leaves over goes to the first,
/// the largest (`GetProportion` and the leftover rule).
pub fn proportional_sizes(
    active: &[Share],
    desired: i32,
    max_surge: i32,
    status_replicas: i32,
) -> Vec<i32> {
    let allowed = if desired > 0 { desired + max_surge } else { 0 };
    let total: i32 = active.iter().map(|s| s.replicas).sum();
    let to_add = allowed - total;
    let mut sizes: Vec<i32> = active.iter().map(|s| s.replicas).collect();
    if to_add == 0 {
        return sizes;
    }
    let mut order: Vec<usize> = (0..active.len()).collect();
    order.sort_by(|&a, &b| {
        let (a, b) = (&active[a], &active[b]);
        let by_size = b.replicas.cmp(&a.replicas);
        let by_age = a.created.cmp(&b.created).then_with(|| a.name.cmp(b.name));
        by_size.then(if to_add > 0 { by_age.reverse() } else { by_age })
    });
    let mut added = 0;
    for &i in &order {
        let cur = active[i].replicas;
        if cur == 0 || to_add == added {
            continue;
        }
        let fraction = if desired == 0 {
            -cur
        } else {
            let before = active[i]
                .max_replicas_annotation
                .filter(|v| *v != 0)
                .unwrap_or(status_replicas);
            if before == 0 {
                0
            } else {
                // Go's math.Round: halves away from zero, as f64::round.
                ((f64::from(cur) * f64::from(allowed)) / f64::from(before)).round() as i32 - cur
            }
        };
        let left = to_add - added;
        let proportion = if to_add > 0 {
            fraction.min(left)
        } else {
            fraction.max(left)
        };
        added += proportion;
        sizes[i] = cur + proportion;
    }
    if let Some(&first) = order.first() {
        sizes[first] = (sizes[first] + to_add - added).max(0);
    }
    sizes
}

/// `calculateStatus`: counts from the ReplicaSets' status, conditions
/// carried over, Available set from minimum availability.
fn calculate_status(d: &Deployment, rss: &[ReplicaSet], new_i: Option<usize>) -> DeploymentStatus {
    let available: i32 = rss.iter().map(|r| rs_status(r).2).sum();
    let total_spec: i32 = rss.iter().map(rs_replicas).sum();
    let old = d.status.clone().unwrap_or_default();
    let mut st = DeploymentStatus {
        observed_generation: d.metadata.generation,
        replicas: Some(rss.iter().map(|r| rs_status(r).0).sum()),
        updated_replicas: Some(new_i.map(|i| rs_status(&rss[i]).0).unwrap_or(0)),
        ready_replicas: Some(rss.iter().map(|r| rs_status(r).1).sum()),
        available_replicas: Some(available),
        unavailable_replicas: Some((total_spec - available).max(0)),
        collision_count: old.collision_count,
        conditions: old.conditions.clone(),
        terminating_replicas: None,
    };
    if available >= replicas(d) - max_unavailable(d) {
        set_condition(
            &mut st,
            new_condition(
                "Available",
                "True",
                "MinimumReplicasAvailable",
                "Deployment has minimum availability.".into(),
            ),
        );
    } else {
        set_condition(
            &mut st,
            new_condition(
                "Available",
                "False",
                "MinimumReplicasUnavailable",
                "Deployment does not have minimum availability.".into(),
            ),
        );
    }
    st
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::apps::v1::{DeploymentSpec, DeploymentStrategy, RollingUpdateDeployment};

    fn dep(replicas: i32, surge: IntOrString, unavail: IntOrString) -> Deployment {
        Deployment {
            spec: DeploymentSpec {
                replicas: Some(replicas),
                strategy: Some(DeploymentStrategy {
                    type_: Some("RollingUpdate".into()),
                    rolling_update: Some(RollingUpdateDeployment {
                        max_surge: Some(surge),
                        max_unavailable: Some(unavail),
                    }),
                }),
                ..Default::default()
            },
            ..Default::default()
        }
    }

    #[test]
    fn surge_rounds_up_and_unavailable_rounds_down() {
        let d = dep(
            10,
            IntOrString::String("25%".into()),
            IntOrString::String("25%".into()),
        );
        assert_eq!(resolve_fenceposts(&d), (3, 2));
        let d = dep(
            3,
            IntOrString::String("25%".into()),
            IntOrString::String("25%".into()),
        );
        assert_eq!(resolve_fenceposts(&d), (1, 0));
    }

    /// ReplicaSets oldest first: (name, age rank, replicas, max-replicas
    /// annotation).
    fn shares(v: &[(&'static str, i64, i32, Option<i32>)]) -> Vec<Share<'static>> {
        v.iter()
            .map(|&(name, age, replicas, max)| Share {
                name,
                created: Some(Timestamp::from_second(1_700_000_000 + age).unwrap()),
                replicas,
                max_replicas_annotation: max,
            })
            .collect()
    }

    /// The cases of Kubernetes' `TestScale` (sync_test.go): the old
    /// Deployment's replicas + maxSurge is every ReplicaSet's annotation.
    #[test]
    fn proportional_sizes_match_kubernetes_test_scale() {
        // (name, old replicas + surge, new replicas, new surge,
        //  [ (rs, age, size) ], expected sizes)
        type Case = (
            &'static str,
            i32,
            i32,
            i32,
            Vec<(&'static str, i64, i32)>,
            Vec<i32>,
        );
        let cases: Vec<Case> = vec![
            (
                "5 -> 10",
                5,
                10,
                0,
                vec![("v1", 1, 3), ("v2", 2, 2)],
                vec![6, 4],
            ),
            (
                "5 -> 3",
                5,
                3,
                0,
                vec![("v1", 1, 3), ("v2", 2, 2)],
                vec![2, 1],
            ),
            (
                "9 -> 4",
                9,
                4,
                0,
                vec![("v1", 1, 1), ("v2", 2, 8)],
                vec![0, 4],
            ),
            (
                "7 -> 10",
                7,
                10,
                0,
                vec![("v1", 0, 2), ("v2", 1, 3), ("v3", 2, 2)],
                vec![3, 4, 3],
            ),
            (
                "13 -> 8",
                13,
                8,
                0,
                vec![("v1", 0, 3), ("v2", 1, 8), ("v3", 2, 2)],
                vec![2, 5, 1],
            ),
            // Leftovers: up to the newest of equals, down from the oldest.
            (
                "3 -> 4",
                3,
                4,
                0,
                vec![("v1", 0, 1), ("v2", 1, 1), ("v3", 2, 1)],
                vec![1, 1, 2],
            ),
            (
                "3 -> 2",
                3,
                2,
                0,
                vec![("v1", 0, 1), ("v2", 1, 1), ("v3", 2, 1)],
                vec![0, 1, 1],
            ),
            (
                "4 -> 5, no new rs",
                4,
                5,
                0,
                vec![("v1", 0, 2), ("v2", 1, 2)],
                vec![2, 3],
            ),
            (
                "6 -> 0",
                6,
                0,
                0,
                vec![("v1", 0, 1), ("v2", 1, 2), ("v3", 2, 3)],
                vec![0, 0, 0],
            ),
            (
                "surge 2: 10 -> 20",
                12,
                20,
                2,
                vec![("v1", 1, 6), ("v2", 2, 6)],
                vec![11, 11],
            ),
            (
                "10+3 -> 50+6",
                13,
                50,
                6,
                vec![("v1", 1, 8), ("v2", 2, 5)],
                vec![34, 22],
            ),
            (
                "10 -> 14, template too",
                10,
                14,
                0,
                vec![("v1", 1, 3), ("v2", 2, 7)],
                vec![4, 10],
            ),
            // The HPA scenario: 4 replicas, surge 1, a stalled rollout at
            // old 4 + new 1, scaled to 8: 4·9/5 = 7.2 → 7, 1·9/5 = 1.8 → 2.
            (
                "4+1 -> 8+1",
                5,
                8,
                1,
                vec![("old", 1, 4), ("new", 2, 1)],
                vec![7, 2],
            ),
            // ... and back down to 2: 7·3/9 = 2.33 → 2, 2·3/9 = 0.67 → 1.
            (
                "8+1 -> 2+1",
                9,
                2,
                1,
                vec![("old", 1, 7), ("new", 2, 2)],
                vec![2, 1],
            ),
        ];
        for (name, before, desired, surge, rss, want) in cases {
            let v: Vec<_> = rss
                .iter()
                .map(|&(n, a, r)| (n, a, r, Some(before)))
                .collect();
            let got = proportional_sizes(&shares(&v), desired, surge, 0);
            assert_eq!(got, want, "{name}");
            let total: i32 = got.iter().sum();
            let allowed = if desired > 0 { desired + surge } else { 0 };
            assert_eq!(
                total, allowed,
                "{name}: the sizes add up to replicas + surge"
            );
        }
    }

    #[test]
    fn proportional_sizes_fall_back_to_status_replicas_then_to_the_largest() {
        // No annotation: the Deployment's status.replicas (5) stands in.
        let s = shares(&[("v1", 1, 3, None), ("v2", 2, 2, Some(0))]);
        assert_eq!(proportional_sizes(&s, 10, 0, 5), vec![6, 4]);
        // Neither: no fraction, the whole change goes to the largest.
        assert_eq!(proportional_sizes(&s, 10, 0, 0), vec![8, 2]);
        // Down: the largest takes it all but stops at 0; what it cannot
        // take is lost for this pass, as in Kubernetes.
        assert_eq!(proportional_sizes(&s, 1, 0, 0), vec![0, 2]);
        // Nothing to add: sizes as they are.
        assert_eq!(proportional_sizes(&s, 5, 0, 5), vec![3, 2]);
    }

    #[test]
    fn equal_sizes_and_ages_are_ordered_by_name_as_kubernetes_sorts() {
        // Same creation second (the sandbox's timestamps have seconds):
        // up, "newer" first means the greater name; down, the lesser.
        let s = shares(&[("web-a", 1, 1, Some(2)), ("web-b", 1, 1, Some(2))]);
        assert_eq!(proportional_sizes(&s, 3, 0, 0), vec![1, 2]);
        assert_eq!(proportional_sizes(&s, 1, 0, 0), vec![0, 1]);
    }

    #[test]
    fn zero_surge_and_zero_unavailable_resolve_to_one_unavailable() {
        let d = dep(3, IntOrString::Int(0), IntOrString::String("10%".into()));
        assert_eq!(resolve_fenceposts(&d), (0, 1));
    }

    #[test]
    fn template_hash_ignores_the_hash_label_and_uses_the_safe_alphabet() {
        let mut t = PodTemplateSpec::default();
        let h1 = pod_template_hash(Some(&t), None);
        t.metadata = Some(ObjectMeta {
            labels: Some([(HASH_LABEL.to_string(), "x".to_string())].into()),
            ..Default::default()
        });
        assert_eq!(pod_template_hash(Some(&t), None), h1);
        assert_ne!(pod_template_hash(Some(&t), Some(1)), h1);
        assert!(
            h1.chars()
                .all(|c| "bcdfghjklmnpqrstvwxz2456789".contains(c))
        );
    }
}
