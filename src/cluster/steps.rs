//! A profile's rollout steps: their types (as written in the profile's
//! YAML) and the executor that runs them in order against the Deployment,
//! putting each step's start and end on the run's timeline.
//!
//! Each step does what the matching kubectl command does (see
//! [`super::rollout`] for the commands themselves). `wait_rollout` also
//! watches for a stalled rollout ([`super::stall`]) and, when the profile
//! says `on_stall: undo`, rolls back and waits for that.
//!
//! Not for: watching the cluster for the timeline (`cluster::watch`), or
//! parsing the rest of the profile.

use super::event::{EventKind, LifecycleEvent};
use super::rollout::{self, FIELD_MANAGER, PatchType, PodTarget, RolloutError, UndoOutcome};
use super::rollout_status::{RolloutStatus, rollout_status};
use super::stall::{StallFinding, StallRules, StallTracker, new_replica_set, pods_of};
use crate::clock::RunClock;
use futures::StreamExt;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use kube::api::{DynamicObject, GroupVersionKind, Patch, PatchParams};
use kube::discovery::Scope;
use kube::runtime::{WatchStreamExt, watcher};
use serde::ser::SerializeMap;
use serde::{Deserialize, Serialize, Serializer};
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};
use tokio::sync::mpsc::UnboundedSender;
use tokio_util::sync::CancellationToken;

pub use super::stall::{OnStall, StallPolicy};

// ---------------------------------------------------------------------
// Step types
// ---------------------------------------------------------------------

/// One step of a rollout, as a profile writes it: a one-key map
/// (`- set_image: {container: nginx, image: nginx:1.28}`; for `sleep` a
/// bare duration, `- sleep: 5s`). Steps without required arguments may
/// also be a bare name (`- restart`, `- wait_rollout`).
#[derive(Clone, Debug, PartialEq)]
pub enum Step {
    SetImage(SetImage),
    Apply(Apply),
    Patch(PatchStep),
    Restart(NoArgs),
    Scale(Scale),
    DeletePod(DeletePod),
    Undo(Undo),
    Pause(NoArgs),
    Resume(NoArgs),
    WaitRollout(Wait),
    WaitReady(Wait),
    Sleep(Duration),
    Exec(Exec),
    AwaitRollout(Wait),
    Annotate(Annotate),
    Drain(super::drain::Drain),
    Uncordon(super::drain::Uncordon),
    SetWeight(SetWeight),
}

/// ingress-nginx's canary weight annotation: the share (of
/// `canary-weight-total`, 100 by default) of requests a canary Ingress
/// takes from the main one for the same host and path.
pub const CANARY_WEIGHT: &str = "nginx.ingress.kubernetes.io/canary-weight";

/// `set_weight: {ingress: web-canary, weight: 10}`: the canary Ingress's
/// weight annotation set to `weight` (a merge patch, what `kubectl
/// annotate ingress web-canary nginx.ingress.kubernetes.io/canary-weight=10
/// --overwrite` does). `annotation` names another controller's weight
/// annotation (its value must be a plain number of percent too).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SetWeight {
    pub ingress: String,
    /// Percent of requests, 0 to 100.
    #[serde(deserialize_with = "percent")]
    pub weight: u8,
    #[serde(default = "canary_weight")]
    pub annotation: String,
}

fn canary_weight() -> String {
    CANARY_WEIGHT.to_string()
}

fn percent<'de, D: serde::Deserializer<'de>>(d: D) -> Result<u8, D::Error> {
    let n = u64::deserialize(d)?;
    u8::try_from(n).ok().filter(|n| *n <= 100).ok_or_else(|| {
        serde::de::Error::custom(format!("{n} is not a weight: give a percent, 0 to 100"))
    })
}

impl SetWeight {
    pub fn object(&self) -> super::object_ref::ObjectRef {
        super::object_ref::ObjectRef::new(super::object_ref::Kind::Ingress, &self.ingress)
    }
}

/// The annotation `kubectl rollout history` shows as CHANGE-CAUSE: the
/// Deployment's, copied onto the ReplicaSet its next rollout creates.
pub const CHANGE_CAUSE: &str = "kubernetes.io/change-cause";

/// `annotate: {change_cause: "…"}` and/or `{annotations: {key: value}}`
/// on the Deployment (a merge patch), or on `object: KIND/NAME` (an
/// Ingress, an autoscaler, ...; see [`super::object_ref`]). Before a
/// `set_image`, the change cause lands on the new ReplicaSet and in the
/// rollout history.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "AnnotateRaw", into = "AnnotateRaw")]
pub struct Annotate {
    /// Every annotation to set, `kubernetes.io/change-cause` included.
    pub annotations: std::collections::BTreeMap<String, String>,
    /// `None`: the Deployment under test.
    pub object: Option<super::object_ref::ObjectRef>,
}

#[derive(Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct AnnotateRaw {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    object: Option<super::object_ref::ObjectRef>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    change_cause: Option<String>,
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    annotations: std::collections::BTreeMap<String, String>,
}

impl TryFrom<AnnotateRaw> for Annotate {
    type Error = String;
    fn try_from(r: AnnotateRaw) -> Result<Self, String> {
        let mut annotations = r.annotations;
        if let Some(cause) = r.change_cause {
            if annotations.contains_key(CHANGE_CAUSE) {
                return Err(format!(
                    "`change_cause` and `annotations.{CHANGE_CAUSE}` say the same: give one"
                ));
            }
            annotations.insert(CHANGE_CAUSE.to_string(), cause);
        }
        if annotations.is_empty() {
            return Err(
                "annotate sets nothing: give `change_cause: \"...\"` or `annotations: {key: value}`"
                    .into(),
            );
        }
        Ok(Annotate {
            annotations,
            object: r.object,
        })
    }
}

impl From<Annotate> for AnnotateRaw {
    fn from(a: Annotate) -> Self {
        let mut annotations = a.annotations;
        let change_cause = annotations.remove(CHANGE_CAUSE);
        AnnotateRaw {
            object: a.object,
            change_cause,
            annotations,
        }
    }
}

/// `exec: {command: [helm, upgrade, ...], timeout: 5m, env: {K: V}}`: the
/// team's own deploy command (see [`super::exec`]). Run in the profile's
/// directory; a non-zero exit fails the step.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Exec {
    /// The program and its arguments (no shell: write `[sh, -c, "..."]`
    /// for one).
    pub command: Vec<String>,
    #[serde(with = "humantime_serde", default = "default_wait")]
    pub timeout: Duration,
    /// Added to the command's environment (after baton's own variables).
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub env: std::collections::BTreeMap<String, String>,
}

/// `set_image: {container, image}`; `container` may be left out when the
/// Pod template has one container.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SetImage {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container: Option<String>,
    pub image: String,
}

/// `apply: {file}`: server-side apply of a manifest file (path relative
/// to the profile's directory; several documents allowed).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Apply {
    pub file: PathBuf,
}

/// `patch: {type: strategic|merge|json, patch: ...}` on the Deployment.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "PatchStepRaw")]
pub struct PatchStep {
    #[serde(rename = "type")]
    pub kind: PatchType,
    pub patch: serde_json::Value,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PatchStepRaw {
    #[serde(rename = "type", default)]
    kind: PatchType,
    patch: serde_json::Value,
}

impl TryFrom<PatchStepRaw> for PatchStep {
    type Error = String;
    fn try_from(r: PatchStepRaw) -> Result<Self, String> {
        match r.kind {
            PatchType::Json => {
                let ops = r.patch.as_array().ok_or(
                    "a json patch is a list of operations, e.g. [{op: replace, path: /spec/replicas, value: 4}]",
                )?;
                for op in ops {
                    if op.get("op").and_then(|v| v.as_str()).is_none()
                        || op.get("path").and_then(|v| v.as_str()).is_none()
                    {
                        return Err(format!(
                            "each json patch operation needs `op` and `path`: {op}"
                        ));
                    }
                }
            }
            PatchType::Strategic | PatchType::Merge => {
                if !r.patch.is_object() {
                    return Err(format!(
                        "a {} patch is a mapping, e.g. {{spec: {{replicas: 4}}}}",
                        r.kind.as_str()
                    ));
                }
            }
        }
        Ok(PatchStep {
            kind: r.kind,
            patch: r.patch,
        })
    }
}

/// `{}`: the step takes no arguments (`restart`, `pause`, `resume`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NoArgs {}

/// `scale: {replicas}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scale {
    pub replicas: u32,
}

/// `delete_pod: {name: P}`, `{selector: "app=web"}` or `{random: true}`,
/// with an optional `grace_period` (whole seconds; `0s` deletes at once).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "DeletePodRaw", into = "DeletePodRaw")]
pub struct DeletePod {
    pub target: PodTarget,
    pub grace_period: Option<Duration>,
}

#[derive(Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct DeletePodRaw {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    selector: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    random: Option<bool>,
    #[serde(
        default,
        with = "humantime_serde",
        skip_serializing_if = "Option::is_none"
    )]
    grace_period: Option<Duration>,
}

impl TryFrom<DeletePodRaw> for DeletePod {
    type Error = String;
    fn try_from(r: DeletePodRaw) -> Result<Self, String> {
        let target = match (r.name, r.selector, r.random) {
            (Some(n), None, None) => PodTarget::Name(n),
            (None, Some(s), None) => PodTarget::Selector(s),
            (None, None, Some(true)) => PodTarget::Random,
            (None, None, Some(false)) => {
                return Err(
                    "`random: false` picks no pod: give `name`, `selector` or `random: true`"
                        .into(),
                );
            }
            _ => {
                return Err(
                    "delete_pod takes exactly one of `name`, `selector`, `random: true`".into(),
                );
            }
        };
        if let Some(g) = r.grace_period
            && g.subsec_nanos() != 0
        {
            return Err(format!(
                "grace_period is whole seconds (Kubernetes' unit), not {}",
                humantime::format_duration(g)
            ));
        }
        Ok(DeletePod {
            target,
            grace_period: r.grace_period,
        })
    }
}

impl From<DeletePod> for DeletePodRaw {
    fn from(d: DeletePod) -> Self {
        let mut r = DeletePodRaw {
            name: None,
            selector: None,
            random: None,
            grace_period: d.grace_period,
        };
        match d.target {
            PodTarget::Name(n) => r.name = Some(n),
            PodTarget::Selector(s) => r.selector = Some(s),
            PodTarget::Random => r.random = Some(true),
        }
        r
    }
}

/// `undo: {}` (the previous revision) or `undo: {revision: N}`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Undo {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revision: Option<u64>,
}

/// `wait_rollout: {timeout}` / `wait_ready: {timeout}` (default 5m).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Wait {
    #[serde(with = "humantime_serde", default = "default_wait")]
    pub timeout: Duration,
}

/// Long enough for a slow rollout of a few replicas; shorter than the
/// Deployment's own default progress deadline (10 min).
pub const DEFAULT_WAIT: Duration = Duration::from_secs(300);

fn default_wait() -> Duration {
    DEFAULT_WAIT
}

impl Default for Wait {
    fn default() -> Self {
        Wait {
            timeout: DEFAULT_WAIT,
        }
    }
}

impl Step {
    /// Whether it changes the cluster (rather than waiting or sleeping):
    /// such a step ends the window in which the step before is judged.
    pub fn changes_cluster(&self) -> bool {
        !matches!(
            self,
            Step::WaitRollout(_) | Step::WaitReady(_) | Step::AwaitRollout(_) | Step::Sleep(_)
        )
    }

    /// The step's key in the profile.
    pub fn name(&self) -> &'static str {
        match self {
            Step::SetImage(_) => "set_image",
            Step::Apply(_) => "apply",
            Step::Patch(_) => "patch",
            Step::Restart(_) => "restart",
            Step::Scale(_) => "scale",
            Step::DeletePod(_) => "delete_pod",
            Step::Undo(_) => "undo",
            Step::Pause(_) => "pause",
            Step::Resume(_) => "resume",
            Step::WaitRollout(_) => "wait_rollout",
            Step::WaitReady(_) => "wait_ready",
            Step::Sleep(_) => "sleep",
            Step::Exec(_) => "exec",
            Step::AwaitRollout(_) => "await_rollout",
            Step::Annotate(_) => "annotate",
            Step::Drain(_) => "drain",
            Step::Uncordon(_) => "uncordon",
            Step::SetWeight(_) => "set_weight",
        }
    }
}

/// As the profile writes it: a one-key map. (Derived, serde_norway would
/// write YAML tags, `!set_image`, which no person writes.)
impl Serialize for Step {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(1))?;
        let k = self.name();
        match self {
            Step::SetImage(v) => m.serialize_entry(k, v)?,
            Step::Apply(v) => m.serialize_entry(k, v)?,
            Step::Patch(v) => m.serialize_entry(k, v)?,
            Step::Restart(v) | Step::Pause(v) | Step::Resume(v) => m.serialize_entry(k, v)?,
            Step::Scale(v) => m.serialize_entry(k, v)?,
            Step::DeletePod(v) => m.serialize_entry(k, v)?,
            Step::Undo(v) => m.serialize_entry(k, v)?,
            Step::WaitRollout(v) | Step::WaitReady(v) | Step::AwaitRollout(v) => {
                m.serialize_entry(k, v)?
            }
            Step::Exec(v) => m.serialize_entry(k, v)?,
            Step::Annotate(v) => m.serialize_entry(k, v)?,
            Step::Drain(v) => m.serialize_entry(k, v)?,
            Step::Uncordon(v) => m.serialize_entry(k, v)?,
            Step::SetWeight(v) => m.serialize_entry(k, v)?,
            Step::Sleep(d) => m.serialize_entry(k, &humantime_serde::Serde::from(*d))?,
        }
        m.end()
    }
}

/// Every step's key, for "unknown step" errors.
pub const STEP_NAMES: &[&str] = &[
    "set_image",
    "apply",
    "patch",
    "restart",
    "scale",
    "delete_pod",
    "undo",
    "pause",
    "resume",
    "wait_rollout",
    "wait_ready",
    "sleep",
    "exec",
    "await_rollout",
    "annotate",
    "drain",
    "uncordon",
    "set_weight",
];

/// By hand rather than derived: serde_norway reads externally tagged
/// enums only from YAML tags (`!set_image`), and a profile writes a
/// one-key map.
impl<'de> Deserialize<'de> for Step {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(StepVisitor)
    }
}

struct StepVisitor;

impl StepVisitor {
    fn bare<E: serde::de::Error>(name: &str) -> Result<Step, E> {
        Ok(match name {
            "restart" => Step::Restart(NoArgs {}),
            "pause" => Step::Pause(NoArgs {}),
            "resume" => Step::Resume(NoArgs {}),
            "undo" => Step::Undo(Undo::default()),
            "wait_rollout" => Step::WaitRollout(Wait::default()),
            "wait_ready" => Step::WaitReady(Wait::default()),
            "await_rollout" => Step::AwaitRollout(Wait::default()),
            n if STEP_NAMES.contains(&n) => {
                return Err(E::custom(format!(
                    "step `{n}` needs arguments, e.g. `{n}: {{...}}`"
                )));
            }
            n => return Err(E::unknown_variant(n, STEP_NAMES)),
        })
    }
}

impl<'de> serde::de::Visitor<'de> for StepVisitor {
    type Value = Step;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a step: a one-key map such as `set_image: {image: \"nginx:1.28\"}`")
    }

    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Step, E> {
        Self::bare(v)
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Step, A::Error> {
        use serde::de::Error;
        let Some(key) = map.next_key::<String>()? else {
            return Err(A::Error::custom(
                "an empty step: write one key, e.g. `wait_rollout: {timeout: 3m}`",
            ));
        };
        let step = match key.as_str() {
            "set_image" => Step::SetImage(map.next_value()?),
            "apply" => Step::Apply(map.next_value()?),
            "patch" => Step::Patch(map.next_value()?),
            "restart" => Step::Restart(map.next_value::<Option<_>>()?.unwrap_or_default()),
            "scale" => Step::Scale(map.next_value()?),
            "delete_pod" => Step::DeletePod(map.next_value()?),
            "undo" => Step::Undo(map.next_value::<Option<_>>()?.unwrap_or_default()),
            "pause" => Step::Pause(map.next_value::<Option<_>>()?.unwrap_or_default()),
            "resume" => Step::Resume(map.next_value::<Option<_>>()?.unwrap_or_default()),
            "wait_rollout" => Step::WaitRollout(map.next_value::<Option<_>>()?.unwrap_or_default()),
            "wait_ready" => Step::WaitReady(map.next_value::<Option<_>>()?.unwrap_or_default()),
            "exec" => Step::Exec(map.next_value()?),
            "annotate" => Step::Annotate(map.next_value()?),
            "drain" => Step::Drain(map.next_value()?),
            "uncordon" => Step::Uncordon(map.next_value()?),
            "set_weight" => Step::SetWeight(map.next_value()?),
            "await_rollout" => {
                Step::AwaitRollout(map.next_value::<Option<_>>()?.unwrap_or_default())
            }
            "sleep" => Step::Sleep(
                map.next_value::<humantime_serde::Serde<Duration>>()?
                    .into_inner(),
            ),
            other => return Err(A::Error::unknown_variant(other, STEP_NAMES)),
        };
        if let Some(other) = map.next_key::<String>()? {
            return Err(A::Error::custom(format!(
                "one step per list item: `{key}` and `{other}` are in the same item (give `{other}` its own `- `)"
            )));
        }
        Ok(step)
    }
}

fn dur(d: Duration) -> humantime::FormattedDuration {
    humantime::format_duration(d)
}

/// One line for people: `set_image nginx=nginx:1.28`, `wait_rollout 3m`.
impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let k = self.name();
        match self {
            Step::SetImage(SetImage {
                container: Some(c),
                image,
            }) => write!(f, "{k} {c}={image}"),
            Step::SetImage(SetImage {
                container: None,
                image,
            }) => write!(f, "{k} {image}"),
            Step::Apply(a) => write!(f, "{k} {}", a.file.display()),
            Step::Patch(p) => {
                let mut text = p.patch.to_string();
                if text.chars().count() > 80 {
                    text = text.chars().take(79).collect::<String>() + "…";
                }
                write!(f, "{k} ({}) {text}", p.kind.as_str())
            }
            Step::Restart(_) | Step::Pause(_) | Step::Resume(_) => f.write_str(k),
            Step::Scale(s) => write!(f, "{k} replicas={}", s.replicas),
            Step::DeletePod(d) => {
                match &d.target {
                    PodTarget::Name(n) => write!(f, "{k} {n}")?,
                    PodTarget::Selector(s) => write!(f, "{k} -l {s}")?,
                    PodTarget::Random => write!(f, "{k} random")?,
                }
                if let Some(g) = d.grace_period {
                    write!(f, " grace_period={}", dur(g))?;
                }
                Ok(())
            }
            Step::Undo(Undo { revision: None }) => f.write_str(k),
            Step::Undo(Undo { revision: Some(r) }) => write!(f, "{k} to revision {r}"),
            Step::WaitRollout(w) | Step::WaitReady(w) | Step::AwaitRollout(w) => {
                write!(f, "{k} timeout={}", dur(w.timeout))
            }
            Step::Exec(e) => {
                let mut text = e.command.join(" ");
                if text.chars().count() > 80 {
                    text = text.chars().take(79).collect::<String>() + "…";
                }
                write!(f, "{k} {text}")
            }
            Step::Sleep(d) => write!(f, "{k} {}", dur(*d)),
            Step::Drain(d) => {
                write!(f, "{k} {} timeout={}", d.target, dur(d.timeout))?;
                if !d.respect_pdb {
                    f.write_str(" (deleting, budgets not honoured)")?;
                }
                Ok(())
            }
            Step::Uncordon(u) => write!(f, "{k} {}", u.target),
            Step::SetWeight(w) => {
                write!(f, "{k} {} {}%", w.object(), w.weight)?;
                if w.annotation != CANARY_WEIGHT {
                    write!(f, " ({})", w.annotation)?;
                }
                Ok(())
            }
            Step::Annotate(a) => {
                write!(f, "{k}")?;
                if let Some(o) = &a.object {
                    write!(f, " {o}")?;
                }
                for (key, value) in &a.annotations {
                    let mut v: String = value.chars().take(60).collect();
                    if value.chars().count() > 60 {
                        v.push('…');
                    }
                    write!(f, " {key}={v:?}")?;
                }
                Ok(())
            }
        }
    }
}

// ---------------------------------------------------------------------
// Executor
// ---------------------------------------------------------------------

/// Everything a step needs: the cluster, the target, where the profile
/// lives, the run's clock and timeline, and the way to stop.
pub struct StepContext {
    pub client: kube::Client,
    pub namespace: String,
    pub deployment: String,
    /// The profile's directory: `apply` files are relative to it.
    pub base_dir: PathBuf,
    pub clock: RunClock,
    /// The run's timeline; step and stall events go here.
    pub events: UnboundedSender<LifecycleEvent>,
    /// Ctrl-C or the end of the run: stops the current step promptly.
    pub cancel: CancellationToken,
    pub stall: StallPolicy,
    /// The cluster as `exec` commands see it; `None` when no step execs.
    pub exec: Option<std::sync::Arc<super::exec::ExecEnv>>,
    /// The run directory, for `steps/N.log`; `None`: output not kept.
    pub run_dir: Option<PathBuf>,
    /// Where `apply` records the objects it creates (a profile's setup,
    /// for teardown); `None`: not recorded.
    pub created: Option<CreatedLog>,
}

/// An object an `apply` step created (it did not exist before), so that
/// teardown can delete it.
#[derive(Clone, Debug)]
pub struct Created {
    pub resource: kube::discovery::ApiResource,
    /// The namespace it was created in; `None` for a cluster-scoped one.
    pub namespace: Option<String>,
    pub name: String,
}

impl fmt::Display for Created {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.namespace {
            Some(ns) => write!(f, "{} {ns}/{}", self.resource.kind, self.name),
            None => write!(f, "{} {}", self.resource.kind, self.name),
        }
    }
}

/// The objects created so far, in order.
pub type CreatedLog = std::sync::Arc<std::sync::Mutex<Vec<Created>>>;

/// How a step ended.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "outcome", content = "reason")]
pub enum StepOutcome {
    Done,
    Failed(String),
    Stalled(String),
    Cancelled,
}

/// One step as it ran, on the run clock.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct StepResult {
    /// 1-based, as in the timeline's `step/N`.
    pub index: usize,
    pub description: String,
    pub started_ns: u64,
    pub ended_ns: u64,
    pub outcome: StepOutcome,
}

/// A stalled rollout: why, when, and whether the undo brought the old
/// version back.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Stall {
    pub reason: String,
    pub at_ns: u64,
    pub undone: bool,
}

/// What [`run_steps`] did.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct StepsReport {
    /// The steps that started, in order (the rest never ran).
    pub steps: Vec<StepResult>,
    pub stall: Option<Stall>,
    /// Every step ran and ended `Done`.
    pub completed: bool,
}

impl StepsReport {
    /// Why the sequence did not complete, in one line: the first step
    /// that did not end `Done`, or that it was interrupted before one.
    pub fn why_incomplete(&self) -> String {
        self.steps
            .iter()
            .find(|s| s.outcome != StepOutcome::Done)
            .map_or("interrupted before a step ran".to_string(), |s| {
                format!("step {} {}: {:?}", s.index, s.description, s.outcome)
            })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StepError {
    #[error(transparent)]
    Rollout(#[from] RolloutError),
    #[error("apply {}: {reason}", file.display())]
    Manifest { file: PathBuf, reason: String },
    #[error("apply {}: {what}: {source}", file.display())]
    Apply {
        file: PathBuf,
        what: String,
        source: kube::Error,
    },
}

/// How one step's own work ended (cancellation is handled around it).
enum StepEnd {
    Done,
    Failed(String),
    Stalled(StallFinding),
}

impl From<StepError> for StepEnd {
    fn from(e: StepError) -> Self {
        StepEnd::Failed(e.to_string())
    }
}

impl From<RolloutError> for StepEnd {
    fn from(e: RolloutError) -> Self {
        StepEnd::Failed(e.to_string())
    }
}

impl StepContext {
    fn deployments(&self) -> Api<Deployment> {
        Api::namespaced(self.client.clone(), &self.namespace)
    }

    /// `event` on the timeline, stamped now.
    fn record(&self, event: LifecycleEvent) {
        // A closed timeline (the run is ending) must not stop the steps.
        let _ = self.events.send(LifecycleEvent {
            observed_ns: self.clock.now_ns(),
            ..event
        });
    }

    fn emit(&self, kind: EventKind, object: String, reason: &str, detail: String) {
        self.record(LifecycleEvent {
            kind,
            object,
            reason: reason.into(),
            detail,
            ..Default::default()
        });
    }
}

/// Run `steps` in order. Each step's start and end go on the timeline
/// (`step_started` / `step_ended` / `step_failed`, object `step/N`). A
/// failed or stalled step stops the sequence; cancellation stops the
/// current step at once and marks it cancelled.
pub async fn run_steps(ctx: &StepContext, steps: &[Step]) -> StepsReport {
    let mut report = StepsReport {
        steps: Vec::new(),
        stall: None,
        completed: false,
    };
    for (i, step) in steps.iter().enumerate() {
        if ctx.cancel.is_cancelled() {
            return report;
        }
        let index = i + 1;
        let object = format!("step/{index}");
        let description = step.to_string();
        let started_ns = ctx.clock.now_ns();
        tracing::info!(step = index, what = %description, "step started");
        ctx.emit(
            EventKind::StepStarted,
            object.clone(),
            step.name(),
            description.clone(),
        );
        let end = tokio::select! {
            biased;
            _ = ctx.cancel.cancelled() => None,
            end = execute(ctx, step, index) => Some(end),
        };
        let ended_ns = ctx.clock.now_ns();
        let outcome = match end {
            Some(StepEnd::Done) => {
                ctx.emit(
                    EventKind::StepEnded,
                    object,
                    step.name(),
                    description.clone(),
                );
                StepOutcome::Done
            }
            Some(StepEnd::Failed(why)) => {
                ctx.emit(
                    EventKind::StepFailed,
                    object,
                    "failed",
                    format!("{description}: {why}"),
                );
                StepOutcome::Failed(why)
            }
            None => {
                ctx.emit(
                    EventKind::StepFailed,
                    object,
                    "cancelled",
                    format!("{description}: cancelled"),
                );
                StepOutcome::Cancelled
            }
            Some(StepEnd::Stalled(finding)) => {
                let reason = finding.to_string();
                let _ = ctx.events.send(LifecycleEvent {
                    observed_ns: ended_ns,
                    kind: EventKind::RolloutStalled,
                    object: object.clone(),
                    pod: finding.pod.clone().unwrap_or_default(),
                    reason: finding.kind.as_str().into(),
                    detail: finding.message.clone(),
                    ..Default::default()
                });
                ctx.emit(
                    EventKind::StepFailed,
                    object.clone(),
                    "stalled",
                    format!("{description}: {reason}"),
                );
                let timeout = match step {
                    Step::WaitRollout(w) => w.timeout,
                    _ => DEFAULT_WAIT,
                };
                let undone = match ctx.stall.on_stall {
                    OnStall::Fail => false,
                    OnStall::Undo => undo_after_stall(ctx, &object, timeout).await,
                };
                report.stall = Some(Stall {
                    reason: reason.clone(),
                    at_ns: ended_ns,
                    undone,
                });
                StepOutcome::Stalled(reason)
            }
        };
        tracing::info!(step = index, outcome = ?outcome, "step ended");
        let done = outcome == StepOutcome::Done;
        report.steps.push(StepResult {
            index,
            description,
            started_ns,
            ended_ns,
            outcome,
        });
        if !done {
            return report;
        }
    }
    report.completed = true;
    report
}

/// `on_stall: undo`: roll back to the previous revision and wait for that
/// rollout (stall-checked too, but never undone again). True when the old
/// version is back.
async fn undo_after_stall(ctx: &StepContext, object: &str, timeout: Duration) -> bool {
    let description = "undo (on_stall: undo), then wait_rollout".to_string();
    ctx.emit(
        EventKind::StepStarted,
        object.into(),
        "undo",
        description.clone(),
    );
    let work = async {
        rollout::undo(&ctx.client, &ctx.namespace, &ctx.deployment, None).await?;
        Ok::<_, RolloutError>(wait_rollout(ctx, timeout).await)
    };
    let end = tokio::select! {
        biased;
        _ = ctx.cancel.cancelled() => Err("cancelled".to_string()),
        r = work => match r {
            Ok(StepEnd::Done) => Ok(()),
            Ok(StepEnd::Failed(why)) => Err(why),
            Ok(StepEnd::Stalled(f)) => Err(format!("the undo stalled too: {f}")),
            Err(e) => Err(e.to_string()),
        },
    };
    match end {
        Ok(()) => {
            ctx.emit(EventKind::StepEnded, object.into(), "undo", description);
            true
        }
        Err(why) => {
            ctx.emit(
                EventKind::StepFailed,
                object.into(),
                "failed",
                format!("{description}: {why}"),
            );
            false
        }
    }
}

async fn execute(ctx: &StepContext, step: &Step, index: usize) -> StepEnd {
    let (ns, name) = (ctx.namespace.as_str(), ctx.deployment.as_str());
    let api = ctx.deployments();
    let r: Result<(), StepError> = async {
        match step {
            Step::SetImage(s) => {
                let container = match &s.container {
                    Some(c) => c.clone(),
                    None => {
                        let d = api.get(name).await.map_err(|e| RolloutError::Api {
                            step: "set_image",
                            name: name.into(),
                            source: e,
                        })?;
                        rollout::only_container(&d)?
                    }
                };
                rollout::set_image(&api, ns, name, &container, &s.image).await?;
            }
            Step::Apply(a) => apply(ctx, &a.file).await?,
            Step::Patch(p) => {
                rollout::patch(&ctx.client, ns, name, p.kind, &p.patch).await?;
            }
            Step::Annotate(a) => {
                let patch = serde_json::json!({"metadata": {"annotations": a.annotations}});
                match &a.object {
                    None => {
                        rollout::patch(&ctx.client, ns, name, PatchType::Merge, &patch).await?;
                    }
                    Some(o) => o
                        .merge_patch(&ctx.client, ns, &patch)
                        .await
                        .map_err(|reason| RolloutError::Invalid {
                            what: "annotate".into(),
                            reason,
                        })?,
                }
            }
            Step::SetWeight(w) => {
                let patch = serde_json::json!({"metadata": {"annotations": {
                    w.annotation.as_str(): w.weight.to_string()}}});
                w.object()
                    .merge_patch(&ctx.client, ns, &patch)
                    .await
                    .map_err(|reason| RolloutError::Invalid {
                        what: "set_weight".into(),
                        reason,
                    })?;
            }
            Step::Restart(_) => {
                rollout::restart(&api, ns, name, SystemTime::now()).await?;
            }
            Step::Scale(s) => {
                let replicas = i32::try_from(s.replicas).map_err(|_| RolloutError::Invalid {
                    what: "scale".into(),
                    reason: format!("{} replicas is more than Kubernetes allows", s.replicas),
                })?;
                rollout::scale(&api, ns, name, replicas).await?;
            }
            Step::DeletePod(d) => {
                let grace = d.grace_period.map(|g| g.as_secs() as u32);
                rollout::delete_pods(&ctx.client, ns, name, &d.target, grace).await?;
            }
            Step::Undo(u) => {
                let to = u.revision.map(|r| r as i64);
                match rollout::undo(&ctx.client, ns, name, to).await? {
                    UndoOutcome::RolledBack { .. } | UndoOutcome::AlreadyThere { .. } => {}
                }
            }
            Step::Pause(_) => {
                rollout::set_paused(&api, ns, name, true).await?;
            }
            Step::Resume(_) => {
                rollout::set_paused(&api, ns, name, false).await?;
            }
            Step::WaitRollout(_)
            | Step::WaitReady(_)
            | Step::Sleep(_)
            | Step::Exec(_)
            | Step::Drain(_)
            | Step::Uncordon(_)
            | Step::AwaitRollout(_) => {}
        }
        Ok(())
    }
    .await;
    if let Err(e) = r {
        return e.into();
    }
    match step {
        Step::WaitRollout(w) => wait_rollout(ctx, w.timeout).await,
        Step::WaitReady(w) => wait_ready(ctx, w.timeout).await,
        Step::Sleep(d) => {
            tokio::time::sleep(*d).await;
            StepEnd::Done
        }
        Step::Exec(e) => exec(ctx, e, index).await,
        Step::Drain(d) => drain(ctx, d, index).await,
        Step::Uncordon(u) => uncordon(ctx, u, index).await,
        Step::AwaitRollout(w) => await_rollout(ctx, w.timeout).await,
        _ => StepEnd::Done,
    }
}

/// `drain`: every Node the step names, one after another (see
/// [`super::drain`]); what it did and what a budget refused are the
/// step's output lines on the timeline.
async fn drain(ctx: &StepContext, d: &super::drain::Drain, index: usize) -> StepEnd {
    let until = tokio::time::Instant::now() + d.timeout;
    let object = format!("step/{index}");
    let mut say = |note: super::drain::Note| match note {
        super::drain::Note::Line(line) => {
            ctx.emit(EventKind::StepOutput, object.clone(), "stdout", line)
        }
        // Pods of other namespaces are the drain's business, not the
        // timeline's: their lines say what happened to them.
        super::drain::Note::Evicted {
            namespace,
            pod,
            node,
            evicted,
        } if namespace == ctx.namespace => ctx.record(LifecycleEvent {
            kind: EventKind::PodEvicted,
            object: format!("pod/{pod}"),
            pod,
            reason: if evicted {
                "EvictionByEvictionAPI"
            } else {
                "Deleted"
            }
            .into(),
            detail: format!("{object}: drain of node {node}"),
            ..Default::default()
        }),
        super::drain::Note::Refused {
            namespace,
            pod,
            message,
        } if namespace == ctx.namespace => ctx.record(LifecycleEvent {
            kind: EventKind::EvictionRefused,
            object: format!("pod/{pod}"),
            pod,
            reason: "TooManyRequests".into(),
            detail: message,
            ..Default::default()
        }),
        _ => {}
    };
    let nodes = match super::drain::nodes(&ctx.client, &d.target).await {
        Ok(n) => n,
        Err(why) => return StepEnd::Failed(why),
    };
    for node in nodes {
        if let Err(why) = super::drain::drain_node(&ctx.client, &node, d, until, &mut say).await {
            return StepEnd::Failed(why);
        }
    }
    StepEnd::Done
}

/// `uncordon`: every Node the step names schedulable again.
async fn uncordon(ctx: &StepContext, u: &super::drain::Uncordon, index: usize) -> StepEnd {
    let nodes = match super::drain::nodes(&ctx.client, &u.target).await {
        Ok(n) => n,
        Err(why) => return StepEnd::Failed(why),
    };
    for node in nodes {
        if let Err(why) = super::drain::set_unschedulable(&ctx.client, &node, false).await {
            return StepEnd::Failed(why);
        }
        ctx.emit(
            EventKind::StepOutput,
            format!("step/{index}"),
            "stdout",
            format!("uncordoned node {node}"),
        );
    }
    StepEnd::Done
}

/// `exec`: run the command (see [`super::exec`]); its output to
/// `steps/N.log` and, the first lines, to the timeline; its exit code the
/// outcome.
async fn exec(ctx: &StepContext, e: &Exec, index: usize) -> StepEnd {
    let mut vars = ctx.exec.as_ref().map(|x| x.vars()).unwrap_or_default();
    vars.extend(e.env.clone());
    let mut log = ctx.run_dir.as_ref().and_then(|dir| {
        let path = super::exec::log_path(dir, index);
        let opened = path
            .parent()
            .map_or(Ok(()), std::fs::create_dir_all)
            .and_then(|()| std::fs::File::create(&path));
        opened.ok().map(std::io::BufWriter::new)
    });
    let object = format!("step/{index}");
    let (mut shown, mut last_err) = (0usize, String::new());
    let ended = super::exec::run(
        &e.command,
        &ctx.base_dir,
        &vars,
        e.timeout,
        &ctx.cancel,
        |line| {
            use std::io::Write as _;
            let stream = if line.stderr { "stderr" } else { "stdout" };
            if let Some(w) = log.as_mut() {
                let _ = writeln!(w, "{stream}| {}", line.text);
            }
            if line.stderr {
                last_err.clone_from(&line.text);
            }
            if shown < super::exec::TIMELINE_LINES {
                shown += 1;
                ctx.emit(EventKind::StepOutput, object.clone(), stream, line.text);
            }
        },
    )
    .await;
    if let Some(mut w) = log {
        use std::io::Write as _;
        let _ = w.flush();
    }
    let last = if last_err.is_empty() {
        String::new()
    } else {
        format!(": {last_err}")
    };
    match ended {
        Ok(super::exec::ExecEnd::Exited(0)) => StepEnd::Done,
        Ok(super::exec::ExecEnd::Exited(code)) => StepEnd::Failed(format!("exited {code}{last}")),
        Ok(super::exec::ExecEnd::Signalled) => StepEnd::Failed(format!("killed by a signal{last}")),
        Ok(super::exec::ExecEnd::TimedOut) => {
            StepEnd::Failed(format!("did not finish within {} (killed)", dur(e.timeout)))
        }
        Ok(super::exec::ExecEnd::Cancelled) => StepEnd::Failed("cancelled (killed)".into()),
        Err(why) => StepEnd::Failed(why),
    }
}

/// `await_rollout`: wait for the Deployment's next change of spec, made
/// by anyone (Argo CD, Flux, another job), then follow that rollout to
/// completion as `wait_rollout` does; `timeout` covers both.
async fn await_rollout(ctx: &StepContext, timeout: Duration) -> StepEnd {
    let name = ctx.deployment.as_str();
    let api = ctx.deployments();
    let started = tokio::time::Instant::now();
    let from = match api.get(name).await {
        Ok(d) => d.metadata.generation.unwrap_or(0),
        Err(e) => {
            return RolloutError::Api {
                step: "await_rollout",
                name: name.into(),
                source: e,
            }
            .into();
        }
    };
    let cfg = watcher::Config::default().fields(&format!("metadata.name={name}"));
    let mut stream = std::pin::pin!(watcher(api, cfg).applied_objects());
    let changed = tokio::time::timeout(timeout, async {
        while let Some(next) = stream.next().await {
            if let Ok(d) = next
                && d.metadata.generation.unwrap_or(0) > from
            {
                return true;
            }
        }
        false
    })
    .await;
    match changed {
        Ok(true) => wait_rollout(ctx, timeout.saturating_sub(started.elapsed())).await,
        Ok(false) => RolloutError::Watch {
            name: name.into(),
            reason: "watch ended before a change".into(),
        }
        .into(),
        Err(_) => StepEnd::Failed(format!(
            "nobody changed deployment {name:?} within {} (generation stayed {from})",
            dur(timeout)
        )),
    }
}

// ---------------------------------------------------------------------
// Waiting
// ---------------------------------------------------------------------

/// How often the stall rules look at the new ReplicaSet's Pods (and the
/// no-progress clock is read). Cheap: two list calls.
const STALL_CHECK_EVERY: Duration = Duration::from_secs(1);

/// kubectl rollout status's rule ([`rollout_status`]) on a watch of the
/// Deployment, as [`rollout::wait_rollout`] does, plus the stall rules
/// checked every second.
async fn wait_rollout(ctx: &StepContext, timeout: Duration) -> StepEnd {
    let name = ctx.deployment.as_str();
    let api = ctx.deployments();
    let cfg = watcher::Config::default().fields(&format!("metadata.name={name}"));
    let mut stream = std::pin::pin!(watcher(api, cfg).applied_objects());
    let deadline = tokio::time::Instant::now() + timeout;
    let now = || Duration::from_nanos(ctx.clock.now_ns());
    let mut tracker = StallTracker::new(StallRules::new(ctx.stall.no_progress), now());
    let mut tick = tokio::time::interval(STALL_CHECK_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut latest: Option<Deployment> = None;
    let mut last = String::from("no status seen yet");
    loop {
        tokio::select! {
            _ = tokio::time::sleep_until(deadline) => {
                return RolloutError::Timeout { name: name.into(), after: timeout, last }.into();
            }
            next = stream.next() => match next {
                None => {
                    return RolloutError::Watch { name: name.into(), reason: "watch ended".into() }
                        .into();
                }
                // The watcher recovers by itself (re-list); note and go on.
                Some(Err(e)) => last = format!("watch error: {e}"),
                Some(Ok(d)) => {
                    let status = rollout_status(&d);
                    tracing::debug!(
                        resource_version = d.metadata.resource_version.as_deref(),
                        ?status,
                        "wait_rollout: the deployment changed"
                    );
                    match status {
                        RolloutStatus::Complete => return StepEnd::Done,
                        RolloutStatus::DeadlineExceeded(_) => {
                            if let Some(f) = tracker.observe(now(), &d, &[]) {
                                return StepEnd::Stalled(f);
                            }
                        }
                        RolloutStatus::Waiting(msg) => last = msg,
                    }
                    latest = Some(d);
                }
            },
            _ = tick.tick() => {
                let Some(d) = latest.as_ref() else { continue };
                match new_pods(ctx, d).await {
                    Ok(pods) => {
                        if let Some(f) = tracker.observe(now(), d, &pods) {
                            return StepEnd::Stalled(f);
                        }
                    }
                    Err(e) => last = format!("checking for a stall: {e}"),
                }
            }
        }
    }
}

/// The Pods of the Deployment's new ReplicaSet (none until the controller
/// has made it).
async fn new_pods(ctx: &StepContext, d: &Deployment) -> Result<Vec<Pod>, RolloutError> {
    if d.metadata.generation > d.status.as_ref().and_then(|s| s.observed_generation) {
        return Ok(Vec::new());
    }
    let rss = rollout::replica_sets_of(&ctx.client, &ctx.namespace, d).await?;
    let Some(rs) = new_replica_set(d, &rss) else {
        return Ok(Vec::new());
    };
    let pods = rollout::live_pods(&ctx.client, &ctx.namespace, d).await?;
    Ok(pods_of(rs, &pods).into_iter().cloned().collect())
}

/// How often `wait_ready` looks.
const READY_POLL: Duration = Duration::from_millis(500);

/// Every replica on the current template, every live Pod Ready, all available
/// ([`readiness_gap`]), polled; with the same stall rules as
/// `wait_rollout`, so a scale onto a broken image or a Pod in
/// CrashLoopBackOff is a stall, not a wait until the timeout.
async fn wait_ready(ctx: &StepContext, timeout: Duration) -> StepEnd {
    let name = ctx.deployment.as_str();
    let api = ctx.deployments();
    let deadline = tokio::time::Instant::now() + timeout;
    let now = || Duration::from_nanos(ctx.clock.now_ns());
    let mut tracker = StallTracker::new(StallRules::new(ctx.stall.no_progress), now());
    loop {
        let last = match api.get(name).await {
            Ok(d) => match rollout::live_pods(&ctx.client, &ctx.namespace, &d).await {
                Ok(pods) => match readiness_gap(&d, &pods) {
                    None => return StepEnd::Done,
                    Some(gap) => match new_pods(ctx, &d).await {
                        Ok(new) => match tracker.observe(now(), &d, &new) {
                            Some(f) => return StepEnd::Stalled(f),
                            None => gap,
                        },
                        Err(e) => format!("{gap}; checking for a stall: {e}"),
                    },
                },
                Err(e) => e.to_string(),
            },
            Err(kube::Error::Api(s)) if s.code == 404 => {
                return RolloutError::NotFound {
                    name: name.into(),
                    namespace: ctx.namespace.clone(),
                }
                .into();
            }
            Err(e) => e.to_string(),
        };
        if tokio::time::Instant::now() >= deadline {
            return StepEnd::Failed(format!(
                "deployment {name:?} not ready within {}: {last}",
                dur(timeout)
            ));
        }
        tokio::time::sleep(READY_POLL).await;
    }
}

fn pod_ready(p: &Pod) -> bool {
    p.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

/// What keeps the Deployment from being ready (`None`: ready): the
/// controller has seen the latest spec, `updatedReplicas` reaches
/// `spec.replicas`, every live Pod is Ready, and
/// `availableReplicas` equals `spec.replicas`. Pure.
pub fn readiness_gap(d: &Deployment, live_pods: &[Pod]) -> Option<String> {
    let status = d.status.clone().unwrap_or_default();
    if d.metadata.generation.unwrap_or(0) > status.observed_generation.unwrap_or(0) {
        return Some("the controller has not observed the latest spec yet".into());
    }
    let not_ready: Vec<&str> = live_pods
        .iter()
        .filter(|p| !pod_ready(p))
        .filter_map(|p| p.metadata.name.as_deref())
        .collect();
    if !not_ready.is_empty() {
        return Some(format!(
            "{} pod(s) not ready: {}",
            not_ready.len(),
            not_ready.join(", ")
        ));
    }
    let want = d.spec.replicas.unwrap_or(1);
    // Right after a template change every live Pod may still be an old,
    // ready one: not ready until the replicas run the current template.
    let updated = status.updated_replicas.unwrap_or(0);
    if updated < want {
        return Some(format!(
            "{updated} of {want} replicas on the current template"
        ));
    }
    let available = status.available_replicas.unwrap_or(0);
    if available != want {
        return Some(format!("{available} of {want} replicas available"));
    }
    None
}

// ---------------------------------------------------------------------
// apply
// ---------------------------------------------------------------------

/// The documents of a (multi-document) YAML manifest, each checked to
/// name an `apiVersion`, a `kind` and a `metadata.name`. Empty documents
/// are skipped. Pure.
pub fn parse_manifests(text: &str) -> Result<Vec<serde_json::Value>, String> {
    let mut docs = Vec::new();
    for (i, de) in serde_norway::Deserializer::from_str(text).enumerate() {
        let n = i + 1;
        let v = serde_json::Value::deserialize(de).map_err(|e| format!("document {n}: {e}"))?;
        if v.is_null() {
            continue;
        }
        for field in ["apiVersion", "kind"] {
            if !v.get(field).is_some_and(|f| f.is_string()) {
                return Err(format!("document {n} has no `{field}`"));
            }
        }
        if !v.pointer("/metadata/name").is_some_and(|f| f.is_string()) {
            return Err(format!("document {n} has no `metadata.name`"));
        }
        docs.push(v);
    }
    if docs.is_empty() {
        return Err("no Kubernetes object in the file".into());
    }
    Ok(docs)
}

pub(crate) fn gvk_of(doc: &serde_json::Value) -> GroupVersionKind {
    let api_version = doc["apiVersion"].as_str().unwrap_or_default();
    let kind = doc["kind"].as_str().unwrap_or_default();
    let (group, version) = api_version.rsplit_once('/').unwrap_or(("", api_version));
    GroupVersionKind::gvk(group, version, kind)
}

/// `kubectl apply --server-side --force-conflicts --field-manager baton -f
/// FILE -n NAMESPACE`: each document, of any kind the server serves.
async fn apply(ctx: &StepContext, file: &Path) -> Result<(), StepError> {
    let path = ctx.base_dir.join(file);
    let bad = |reason: String| StepError::Manifest {
        file: path.clone(),
        reason,
    };
    let text = tokio::fs::read_to_string(&path)
        .await
        .map_err(|e| bad(format!("cannot read it: {e}")))?;
    let docs = parse_manifests(&text).map_err(bad)?;
    for doc in docs {
        let gvk = gvk_of(&doc);
        let name = doc["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let what = format!("{} {name:?}", gvk.kind);
        if let Some(ns) = doc.pointer("/metadata/namespace").and_then(|v| v.as_str())
            && ns != ctx.namespace
        {
            return Err(bad(format!(
                "{what} is in namespace {ns:?} but the run works in {:?}: drop `metadata.namespace` or make them match",
                ctx.namespace
            )));
        }
        let (ar, caps) = kube::discovery::pinned_kind(&ctx.client, &gvk)
            .await
            .map_err(|e| StepError::Apply {
                file: path.clone(),
                what: format!("{what}: the cluster does not serve {}", doc["apiVersion"]),
                source: e,
            })?;
        let api: Api<DynamicObject> = match caps.scope {
            Scope::Namespaced => Api::namespaced_with(ctx.client.clone(), &ctx.namespace, &ar),
            Scope::Cluster => Api::all_with(ctx.client.clone(), &ar),
        };
        let existed = match &ctx.created {
            None => true,
            Some(_) => api
                .get_opt(&name)
                .await
                .map_err(|e| StepError::Apply {
                    file: path.clone(),
                    what: what.clone(),
                    source: e,
                })?
                .is_some(),
        };
        api.patch(
            &name,
            &PatchParams::apply(FIELD_MANAGER).force(),
            &Patch::Apply(&doc),
        )
        .await
        .map_err(|e| StepError::Apply {
            file: path.clone(),
            what: what.clone(),
            source: e,
        })?;
        if let (false, Some(log)) = (existed, &ctx.created)
            && let Ok(mut log) = log.lock()
        {
            log.push(Created {
                resource: ar.clone(),
                namespace: (caps.scope == Scope::Namespaced).then(|| ctx.namespace.clone()),
                name: name.clone(),
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(yaml: &str) -> Result<Vec<Step>, serde_norway::Error> {
        serde_norway::from_str(yaml)
    }

    #[test]
    fn every_step_parses_from_the_profile_form() {
        let steps = parse(
            r#"
- set_image: {container: nginx, image: "nginx:1.28"}
- set_image: {image: "nginx:1.28"}
- apply: {file: manifests/v2.yaml}
- patch: {type: merge, patch: {spec: {minReadySeconds: 5}}}
- patch: {patch: {spec: {replicas: 4}}}
- patch: {type: json, patch: [{op: replace, path: /spec/replicas, value: 4}]}
- restart: {}
- scale: {replicas: 5}
- delete_pod: {name: web-abc}
- delete_pod: {selector: "app=web", grace_period: 0s}
- delete_pod: {random: true}
- undo: {}
- undo: {revision: 2}
- pause: {}
- resume: {}
- wait_rollout: {timeout: 1m30s}
- wait_ready: {}
- sleep: 5s
"#,
        )
        .expect("parses");
        assert_eq!(steps.len(), 18);
        assert_eq!(
            steps[0],
            Step::SetImage(SetImage {
                container: Some("nginx".into()),
                image: "nginx:1.28".into()
            })
        );
        assert_eq!(
            steps[4],
            Step::Patch(PatchStep {
                kind: PatchType::Strategic,
                patch: serde_json::json!({"spec": {"replicas": 4}})
            })
        );
        assert_eq!(
            steps[9],
            Step::DeletePod(DeletePod {
                target: PodTarget::Selector("app=web".into()),
                grace_period: Some(Duration::ZERO)
            })
        );
        assert_eq!(steps[12], Step::Undo(Undo { revision: Some(2) }));
        assert_eq!(
            steps[15],
            Step::WaitRollout(Wait {
                timeout: Duration::from_secs(90)
            })
        );
        assert_eq!(steps[16], Step::WaitReady(Wait::default()));
        assert_eq!(steps[17], Step::Sleep(Duration::from_secs(5)));
    }

    #[test]
    fn annotate_takes_a_change_cause_or_annotations_and_refuses_nothing_or_both() {
        let s = parse("- annotate: {change_cause: \"v2 (ticket 42)\", annotations: {team: web}}\n")
            .unwrap();
        let Step::Annotate(a) = &s[0] else {
            panic!("{s:?}")
        };
        assert_eq!(a.annotations[CHANGE_CAUSE], "v2 (ticket 42)");
        assert_eq!(a.annotations["team"], "web");
        let empty = parse("- annotate: {}\n").unwrap_err();
        assert!(empty.to_string().contains("sets nothing"), "{empty}");
        let both =
            parse("- annotate: {change_cause: a, annotations: {kubernetes.io/change-cause: b}}\n")
                .unwrap_err();
        assert!(both.to_string().contains("give one"), "{both}");
        assert_eq!(
            s[0].to_string(),
            "annotate kubernetes.io/change-cause=\"v2 (ticket 42)\" team=\"web\""
        );
    }

    #[test]
    fn steps_survive_a_round_trip_through_yaml_as_one_key_maps() {
        let steps = parse(
            r#"
- set_image: {container: nginx, image: "nginx:1.28"}
- apply: {file: m.yaml}
- patch: {type: json, patch: [{op: remove, path: /spec/paused}]}
- restart: {}
- scale: {replicas: 0}
- delete_pod: {random: true, grace_period: 3s}
- undo: {}
- wait_rollout: {timeout: 3m}
- sleep: 1m30s
- annotate: {change_cause: "v2 (ticket 42)", annotations: {team: web}}
"#,
        )
        .unwrap();
        let yaml = serde_norway::to_string(&steps).unwrap();
        assert!(!yaml.contains('!'), "no YAML tags:\n{yaml}");
        assert!(yaml.contains("- set_image:"), "{yaml}");
        assert!(yaml.contains("sleep: 1m 30s"), "{yaml}");
        assert_eq!(parse(&yaml).unwrap(), steps);
    }

    #[test]
    fn unknown_steps_and_fields_are_errors_that_name_them() {
        let e = parse("- set_image: {image: x, containr: y}").unwrap_err();
        assert!(e.to_string().contains("containr"), "{e}");
        let e = parse("- rollback: {}").unwrap_err();
        assert!(e.to_string().contains("rollback"), "{e}");
        let e = parse("- wait_rollout: {timeout: soon}").unwrap_err();
        assert!(
            e.to_string().contains("timeout") || e.to_string().contains("soon"),
            "{e}"
        );
        let e = parse("- restart: {now: true}").unwrap_err();
        assert!(e.to_string().contains("now"), "{e}");
    }

    #[test]
    fn steps_without_required_arguments_may_be_bare_names() {
        let steps = parse("- restart\n- wait_rollout\n- undo:\n- pause: {}\n").unwrap();
        assert_eq!(
            steps,
            [
                Step::Restart(NoArgs {}),
                Step::WaitRollout(Wait::default()),
                Step::Undo(Undo::default()),
                Step::Pause(NoArgs {}),
            ]
        );
        let e = parse("- set_image\n").unwrap_err();
        assert!(e.to_string().contains("needs arguments"), "{e}");
    }

    #[test]
    fn two_steps_in_one_list_item_are_refused() {
        let e = parse("- restart: {}\n  sleep: 1s\n").unwrap_err();
        assert!(e.to_string().contains("one step per list item"), "{e}");
        let e = parse("- {}\n").unwrap_err();
        assert!(e.to_string().contains("empty step"), "{e}");
    }

    #[test]
    fn delete_pod_takes_exactly_one_target() {
        for bad in [
            "- delete_pod: {}",
            "- delete_pod: {name: a, random: true}",
            "- delete_pod: {random: false}",
            "- delete_pod: {name: a, grace_period: 1500ms}",
        ] {
            assert!(parse(bad).is_err(), "{bad} should be refused");
        }
    }

    #[test]
    fn patches_are_checked_for_their_shape() {
        let e = parse("- patch: {type: json, patch: {spec: {}}}").unwrap_err();
        assert!(e.to_string().contains("list of operations"), "{e}");
        let e = parse("- patch: {type: json, patch: [{value: 1}]}").unwrap_err();
        assert!(e.to_string().contains("`op` and `path`"), "{e}");
        let e = parse("- patch: {type: merge, patch: [1]}").unwrap_err();
        assert!(e.to_string().contains("mapping"), "{e}");
        assert!(parse("- scale: {replicas: -1}").is_err());
    }

    #[test]
    fn each_step_describes_itself_on_one_line() {
        let steps = parse(
            r#"
- set_image: {container: nginx, image: "nginx:1.28"}
- set_image: {image: "nginx:1.28"}
- apply: {file: m.yaml}
- patch: {type: merge, patch: {spec: {paused: true}}}
- restart: {}
- scale: {replicas: 5}
- delete_pod: {name: web-abc}
- delete_pod: {selector: "app=web"}
- delete_pod: {random: true, grace_period: 0s}
- undo: {}
- undo: {revision: 2}
- pause: {}
- resume: {}
- wait_rollout: {timeout: 180s}
- wait_ready: {timeout: 30s}
- sleep: 5s
"#,
        )
        .unwrap();
        let lines: Vec<String> = steps.iter().map(|s| s.to_string()).collect();
        assert_eq!(
            lines,
            [
                "set_image nginx=nginx:1.28",
                "set_image nginx:1.28",
                "apply m.yaml",
                r#"patch (merge) {"spec":{"paused":true}}"#,
                "restart",
                "scale replicas=5",
                "delete_pod web-abc",
                "delete_pod -l app=web",
                "delete_pod random grace_period=0s",
                "undo",
                "undo to revision 2",
                "pause",
                "resume",
                "wait_rollout timeout=3m",
                "wait_ready timeout=30s",
                "sleep 5s",
            ]
        );
    }

    #[test]
    fn a_long_patch_is_shortened_in_its_description() {
        let big = "x".repeat(200);
        let s = Step::Patch(PatchStep {
            kind: PatchType::Strategic,
            patch: serde_json::json!({ "metadata": {"annotations": {"a": big}} }),
        });
        let line = s.to_string();
        assert!(line.ends_with('…') && line.chars().count() < 110, "{line}");
    }

    #[test]
    fn manifests_split_into_documents_and_each_must_name_its_object() {
        let docs = parse_manifests(
            "---\napiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web}\n---\n---\napiVersion: v1\nkind: Service\nmetadata: {name: svc}\n",
        )
        .unwrap();
        assert_eq!(docs.len(), 2);
        assert_eq!(gvk_of(&docs[0]).group, "apps");
        assert_eq!(gvk_of(&docs[1]).group, "");
        assert_eq!(gvk_of(&docs[1]).version, "v1");
        let e = parse_manifests("apiVersion: v1\nkind: Service\nmetadata: {}\n").unwrap_err();
        assert!(e.contains("metadata.name"), "{e}");
        let e = parse_manifests("kind: Service\n").unwrap_err();
        assert!(e.contains("apiVersion"), "{e}");
        assert!(parse_manifests("").is_err());
    }

    fn ready_pod(name: &str, ready: bool) -> Pod {
        use k8s_openapi::api::core::v1::{PodCondition, PodStatus};
        Pod {
            metadata: k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta {
                name: Some(name.into()),
                ..Default::default()
            },
            spec: None,
            status: Some(PodStatus {
                conditions: Some(vec![PodCondition {
                    type_: "Ready".into(),
                    status: if ready { "True" } else { "False" }.into(),
                    ..Default::default()
                }]),
                ..Default::default()
            }),
        }
    }

    fn dep(generation: i64, observed: i64, replicas: i32, available: i32) -> Deployment {
        use k8s_openapi::api::apps::v1::{DeploymentSpec, DeploymentStatus};
        Deployment {
            metadata: k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta {
                generation: Some(generation),
                ..Default::default()
            },
            spec: DeploymentSpec {
                replicas: Some(replicas),
                ..Default::default()
            },
            status: Some(DeploymentStatus {
                observed_generation: Some(observed),
                updated_replicas: Some(replicas),
                available_replicas: Some(available),
                ..Default::default()
            }),
        }
    }

    #[test]
    fn ready_means_observed_on_the_current_template_all_ready_and_all_available() {
        let pods = [ready_pod("a", true), ready_pod("b", true)];
        assert_eq!(readiness_gap(&dep(2, 2, 2, 2), &pods), None);
        assert!(
            readiness_gap(&dep(3, 2, 2, 2), &pods)
                .unwrap()
                .contains("observed")
        );
        let gap = readiness_gap(
            &dep(2, 2, 2, 2),
            &[ready_pod("a", true), ready_pod("b", false)],
        )
        .unwrap();
        assert!(gap.contains("not ready: b"), "{gap}");
        let gap = readiness_gap(&dep(2, 2, 3, 2), &pods).unwrap();
        assert!(gap.contains("2 of 3"), "{gap}");
        // Scaled to zero with nothing left: ready.
        assert_eq!(readiness_gap(&dep(2, 2, 0, 0), &[]), None);
        // A new template observed, its pods not created yet: the old
        // ones are all ready and available, but it is not ready.
        let mut d = dep(3, 3, 2, 2);
        d.status.as_mut().unwrap().updated_replicas = Some(0);
        let gap = readiness_gap(&d, &pods).unwrap();
        assert!(
            gap.contains("0 of 2 replicas on the current template"),
            "{gap}"
        );
    }
}
