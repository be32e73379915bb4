//! The profile's fields, their defaults, and the checks that need more
//! than one field. Field docs here are the reference for profile authors
//! (`profiles/README.md` points at them).

use crate::cluster::steps::{OnStall, Step};
use serde::{Deserialize, Serialize};
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Profile {
    /// Names the run in reports.
    pub name: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub description: String,
    /// Which cluster, when not the sandbox.
    #[serde(default)]
    pub cluster: ClusterSection,
    /// Run on the embedded sandbox (a simulator) instead of a real
    /// cluster. Ignored when anything names a real cluster: `--kubeconfig`,
    /// `--context`, `KUBECONFIG`, or `cluster.context`/`cluster.kubeconfig`
    /// here (see `cluster::choice`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sandbox: Option<SandboxSection>,
    pub target: Target,
    #[serde(default)]
    pub load: LoadSection,
    /// Steps that prepare what the run needs (apply a v1 baseline, a
    /// namespace), before the baseline check; not measured. Objects their
    /// `apply` steps create are recorded and deleted after the run (see
    /// `teardown`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub setup: Vec<Step>,
    pub rollout: RolloutSection,
    /// After the run, also after a failure, Ctrl-C or SIGTERM: these steps
    /// (an `exec` of `helm uninstall`, say), then the deletion of every
    /// object setup's `apply` steps created, newest first, each waited
    /// for; what was deleted and what was left is reported.
    #[serde(default, skip_serializing_if = "Teardown::is_default")]
    pub teardown: Teardown,
    #[serde(default)]
    pub thresholds: Thresholds,
    #[serde(default)]
    pub attribution: AttributionSection,
}

/// What happens after the run to what `setup` made.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Teardown {
    /// Run first, in order (failures are reported, the rest still runs).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub steps: Vec<Step>,
    /// Leave what setup's `apply` steps created (to look at it).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub keep_created: bool,
}

impl Teardown {
    fn is_default(&self) -> bool {
        *self == Teardown::default()
    }
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClusterSection {
    /// Default: on a real cluster the kubeconfig context's namespace, as
    /// kubectl; on the sandbox `default`.
    #[serde(default)]
    pub namespace: Option<String>,
    /// A kubeconfig context; default: the kubeconfig's current one.
    #[serde(default)]
    pub context: Option<String>,
    /// Default: `KUBECONFIG`, then `~/.kube/config`, then in-cluster.
    #[serde(default)]
    pub kubeconfig: Option<PathBuf>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SandboxSection {
    /// Manifests (paths relative to the profile) applied when the sandbox
    /// starts; none means the seed scenario (Deployment `web-server`,
    /// Service `web-service`).
    #[serde(default)]
    pub manifests: Vec<PathBuf>,
    /// How far the sandbox's Service proxy lags its EndpointSlices, as
    /// kube-proxy does on a real node.
    #[serde(default = "default_propagation", with = "humantime_serde")]
    pub propagation_delay: Duration,
    /// A random extra lag, up to this, per endpoint change (nodes' proxies
    /// do not all apply a change at once).
    #[serde(default, with = "humantime_serde")]
    pub propagation_jitter: Duration,
    /// The kubelet's first restart back-off for a crashed container;
    /// doubled per restart up to `backoff_max` (Kubernetes: 10 s, 5 m).
    #[serde(default = "default_backoff_base", with = "humantime_serde")]
    pub backoff_base: Duration,
    #[serde(default = "default_backoff_max", with = "humantime_serde")]
    pub backoff_max: Duration,
    /// How often a quiet watch gets a BOOKMARK.
    #[serde(default = "default_bookmark_interval", with = "humantime_serde")]
    pub bookmark_interval: Duration,
    /// How many Nodes (1: `sandbox-node`; more: `sandbox-node-1..N`, Pods
    /// spread over them), for profiles that drain one.
    #[serde(default = "default_nodes")]
    pub nodes: usize,
    /// Run the sandbox's ingress controller (ingress-nginx's routing and
    /// canary weights, in front of the same lagging endpoints as the
    /// NodePorts) on a free port; with `target.url` left out, the load
    /// goes to it. The manifests must hold an Ingress.
    #[serde(default)]
    pub ingress: bool,
    /// Who carries Service traffic: `userspace` (the sandbox's proxy
    /// accepts, then resets when the Pod refuses), `kernel` (nftables
    /// DNAT as kube-proxy's nftables mode, so a refused Pod fails the
    /// client's connect; root only) or `auto` (kernel where it can run).
    #[serde(default)]
    pub data_plane: baton_sandbox::DataPlane,
}

fn default_nodes() -> usize {
    baton_sandbox::ClusterConfig::default().nodes
}

fn default_propagation() -> Duration {
    baton_sandbox::ClusterConfig::default().propagation_delay
}

fn default_backoff_base() -> Duration {
    baton_sandbox::ClusterConfig::default().backoff_base
}

fn default_backoff_max() -> Duration {
    baton_sandbox::ClusterConfig::default().backoff_max
}

fn default_bookmark_interval() -> Duration {
    baton_sandbox::SandboxConfig::default().bookmark_interval
}

/// How failures are tied to causes.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AttributionSection {
    /// How long after an EndpointSlice change a Service proxy may still
    /// route by the old endpoints (kube-proxy's sync lag, on every node).
    /// `null` (the default): the sandbox's `propagation_delay` +
    /// `propagation_jitter` + 500 ms, or 2 s on a real cluster.
    #[serde(default, with = "humantime_serde")]
    pub propagation_allowance: Option<Duration>,
}

/// Added to the sandbox's own lag for the allowance: its proxy applies a
/// change on its next tick, and the EndpointSlice event reaches baton a
/// little after the change.
const SANDBOX_ALLOWANCE_MARGIN: Duration = Duration::from_millis(500);

/// Where a profile-set allowance comes from (`run.json` says so, and a
/// profile's value is used as given).
pub const ALLOWANCE_FROM_PROFILE: &str = "the profile's attribution.propagation_allowance";

impl AttributionSection {
    /// The allowance a run uses, and where it came from (for `run.json`
    /// and the reports). `sandbox`: the profile's sandbox section when the
    /// run is on the sandbox, else `None`.
    pub fn allowance(&self, sandbox: Option<&SandboxSection>) -> (Duration, String) {
        if let Some(d) = self.propagation_allowance {
            return (d, ALLOWANCE_FROM_PROFILE.into());
        }
        match sandbox {
            Some(s) => (
                s.propagation_delay + s.propagation_jitter + SANDBOX_ALLOWANCE_MARGIN,
                "the sandbox's propagation_delay + propagation_jitter + 500 ms".into(),
            ),
            None => (
                crate::attribution::AttributionConfig::default().propagation_allowance,
                "baton's default for a real cluster".into(),
            ),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Target {
    /// What the load hits. On the sandbox it may be left out: the
    /// Service's NodePort is used.
    #[serde(default)]
    pub url: Option<String>,
    /// The Service whose EndpointSlices are watched.
    pub service: String,
    #[serde(default = "default_expect")]
    pub expect_status: Vec<u16>,
    /// Who answered: `{header: x-pod-name}` or `{body_regex: '...'}`.
    #[serde(default)]
    pub backend_from: Option<ExtractorSpec>,
    /// Which version answered, the same way.
    #[serde(default)]
    pub version_from: Option<ExtractorSpec>,
    /// Extra request headers, `Name: value`.
    #[serde(default)]
    pub headers: Vec<String>,
    /// https: a PEM file of CA certificates to trust besides the system's
    /// (relative to the profile).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<PathBuf>,
    /// https: accept any server certificate (self-signed endpoints).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub insecure_skip_tls_verify: bool,
    /// Other Deployments that serve the same traffic beside the one under
    /// test, each with its Service (a canary's stable version behind the
    /// same Ingress): their Pods, ReplicaSets, endpoints and Events go on
    /// the timeline too, so a failure on one of their Pods is explained
    /// like any other. The rollout's steps still act on
    /// `rollout.deployment` only.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub also_watch: Vec<AlsoWatch>,
}

/// A Deployment and its Service watched beside the target's.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlsoWatch {
    pub deployment: String,
    pub service: String,
}

fn default_expect() -> Vec<u16> {
    vec![200]
}

/// Where to find a value in a response: `{header: NAME}` or
/// `{body_regex: REGEX}` (the first capture group, else the whole match).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExtractorSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub header: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body_regex: Option<String>,
}

impl ExtractorSpec {
    /// The load engine's extractor; the error says what is wrong.
    pub fn compile(&self) -> Result<crate::load::extract::Extractor, String> {
        let text = match (&self.header, &self.body_regex) {
            (Some(h), None) => format!("header:{h}"),
            (None, Some(r)) => format!("body:{r}"),
            _ => return Err("give exactly one of `header` or `body_regex`".into()),
        };
        text.parse().map_err(|e| format!("{e}"))
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoadSection {
    /// Requests per second, open model (due at fixed instants).
    #[serde(default = "default_rate")]
    pub rate: f64,
    /// In-flight cap; default rate × timeout + 16.
    #[serde(default)]
    pub concurrency: Option<usize>,
    #[serde(default = "default_timeout", with = "humantime_serde")]
    pub timeout: Duration,
    #[serde(default = "default_connect_timeout", with = "humantime_serde")]
    pub connect_timeout: Duration,
    /// Reuse connections (for comparison only: a kept-alive connection is
    /// not re-routed, so it hides what a rollout does to new ones).
    #[serde(default)]
    pub keepalive: bool,
    /// Load before the first step, so the baseline is seen.
    #[serde(default = "default_warmup", with = "humantime_serde")]
    pub warmup: Duration,
    /// Load after the last step, so late failures are seen.
    #[serde(default = "default_cooldown", with = "humantime_serde")]
    pub cooldown: Duration,
    /// Local addresses to bind, round robin (more ephemeral ports).
    #[serde(default)]
    pub source_ips: Vec<IpAddr>,
    /// Where the load comes from: this host (`here`, the default) or
    /// worker Pods of an Indexed Job in the target namespace (`cluster`,
    /// see `fleet`).
    #[serde(default, skip_serializing_if = "LoadFrom::is_here")]
    pub from: LoadFrom,
    /// With `from: cluster`: how many worker Pods share the load (1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workers: Option<u32>,
    /// With `from: cluster`: the workers' image; default baton's release
    /// image of this very version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
}

/// Where a run's load comes from.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LoadFrom {
    /// The host baton runs on, through the URL.
    #[default]
    Here,
    /// Worker Pods in the cluster, through the Service's ClusterIP (or the
    /// in-cluster URL `target.url` names).
    Cluster,
}

impl LoadFrom {
    pub fn is_here(&self) -> bool {
        *self == LoadFrom::Here
    }
}

/// The most worker Pods a run may ask for.
pub const MAX_WORKERS: u32 = 64;

impl LoadSection {
    /// What is wrong with `from`, `workers`, `image` and the settings only
    /// one of the two sources takes: the field and why.
    fn source_problem(&self) -> Option<(&'static str, String)> {
        let only_cluster = "is only for `load.from: cluster`";
        match self.from {
            LoadFrom::Here if self.workers.is_some() => Some(("load.workers", only_cluster.into())),
            LoadFrom::Here if self.image.is_some() => Some(("load.image", only_cluster.into())),
            LoadFrom::Here => None,
            LoadFrom::Cluster => match self.workers {
                Some(n) if n == 0 || n > MAX_WORKERS => Some((
                    "load.workers",
                    format!("{n}: must be from 1 to {MAX_WORKERS}"),
                )),
                _ if self.image.as_deref().is_some_and(|i| i.trim().is_empty()) => {
                    Some(("load.image", "must not be empty".into()))
                }
                _ if !self.source_ips.is_empty() => Some((
                    "load.source_ips",
                    "binds this host's addresses; a worker Pod has its own (leave it out with `from: cluster`)".into(),
                )),
                _ if self.keepalive => Some((
                    "load.keepalive",
                    "is not offered from the cluster: workers open a new connection per request".into(),
                )),
                _ => None,
            },
        }
    }

    /// How many load workers: 1 from here, `workers` (default 1) from the
    /// cluster.
    pub fn worker_count(&self) -> u32 {
        match self.from {
            LoadFrom::Here => 1,
            LoadFrom::Cluster => self.workers.unwrap_or(1),
        }
    }
}

impl Default for LoadSection {
    fn default() -> Self {
        LoadSection {
            rate: default_rate(),
            concurrency: None,
            timeout: default_timeout(),
            connect_timeout: default_connect_timeout(),
            keepalive: false,
            warmup: default_warmup(),
            cooldown: default_cooldown(),
            source_ips: Vec::new(),
            from: LoadFrom::Here,
            workers: None,
            image: None,
        }
    }
}

fn default_rate() -> f64 {
    200.0
}
fn default_timeout() -> Duration {
    Duration::from_secs(2)
}
fn default_connect_timeout() -> Duration {
    Duration::from_secs(1)
}
fn default_warmup() -> Duration {
    Duration::from_secs(3)
}
fn default_cooldown() -> Duration {
    Duration::from_secs(5)
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RolloutSection {
    pub deployment: String,
    /// Each step is a one-key map (`- set_image: {...}`); see
    /// `cluster::steps::Step`.
    pub steps: Vec<Step>,
    /// What to do when the rollout stalls: `fail` (stop, record) or
    /// `undo` (roll back, as kubectl rollout undo, and record it).
    #[serde(default)]
    pub on_stall: OnStall,
    /// A rollout with no progress for this long is stalled.
    #[serde(default = "default_no_progress", with = "humantime_serde")]
    pub no_progress: Duration,
    /// The whole rollout (all steps) must finish within this.
    #[serde(default = "default_deadline", with = "humantime_serde")]
    pub deadline: Duration,
}

fn default_no_progress() -> Duration {
    Duration::from_secs(60)
}
fn default_deadline() -> Duration {
    Duration::from_secs(300)
}

/// The verdict's limits (DESIGN.md). A threshold left out is not judged,
/// except `max_failed`, which defaults to 0: a rollout gate.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Thresholds {
    #[serde(default = "default_max_failed")]
    pub max_failed: Option<u64>,
    /// Failed / sent, 0.0–1.0.
    #[serde(default)]
    pub max_error_rate: Option<f64>,
    /// p99 response time of successful requests, from their scheduled
    /// instant (what a user on that schedule waited). When only the load
    /// host's own lateness pushes it over (the latency from each request's
    /// start is within it), the run is invalid, not failed.
    #[serde(default, with = "humantime_serde")]
    pub p99_latency: Option<Duration>,
    /// The longest stretch with no successful response.
    #[serde(default, with = "humantime_serde")]
    pub max_disruption: Option<Duration>,
    /// All responses before the first step come from this version.
    #[serde(default)]
    pub initial_version: Option<String>,
    /// All responses after the rollout settled come from this version.
    #[serde(default)]
    pub final_version: Option<String>,
    /// Responses after the rollout settled came from at least this many
    /// Pods (the spread, e.g. after a scale-up).
    #[serde(default)]
    pub min_backends: Option<u64>,
    /// A watch blind for longer than this makes the run invalid.
    #[serde(default = "default_blind_spot", with = "humantime_serde")]
    pub max_blind_spot: Duration,
    /// Requests starting later than their schedule by more than this (p99)
    /// make the run invalid: the load host, not the target, set the pace.
    #[serde(default = "default_max_lateness", with = "humantime_serde")]
    pub max_lateness: Duration,
    /// The share of the planned rate (and of the arrivals) that must have
    /// been sent, 0–1; below it the run is invalid.
    #[serde(default = "default_min_achieved")]
    pub min_achieved_rate: f64,
    /// A rollout that did not complete (a failed step, a stall, the
    /// deadline) fails the run. Turn off for a profile about stalls.
    #[serde(default = "yes")]
    pub rollout_must_complete: bool,
    /// Exactly one ReplicaSet of the Deployment wants replicas when the
    /// run ends (its old ones scaled to zero).
    #[serde(default)]
    pub single_replicaset: bool,
    /// A Service with `sessionAffinity: ClientIP` and a load from fewer
    /// addresses than Pods fails the run (by default it only warns).
    #[serde(default)]
    pub fail_on_pinned_affinity: bool,
    /// The share of answers a version gave after a step (a canary's
    /// weight), within a tolerance; see `verdict::share`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub version_share: Vec<crate::verdict::share::VersionShare>,
}

fn yes() -> bool {
    true
}

fn default_max_lateness() -> Duration {
    crate::verdict::schedule::DEFAULT_MAX_LATENESS
}

fn default_min_achieved() -> f64 {
    crate::verdict::schedule::DEFAULT_MIN_ACHIEVED
}

impl Default for Thresholds {
    fn default() -> Self {
        Thresholds {
            max_failed: default_max_failed(),
            max_error_rate: None,
            p99_latency: None,
            max_disruption: None,
            initial_version: None,
            final_version: None,
            min_backends: None,
            max_blind_spot: default_blind_spot(),
            max_lateness: default_max_lateness(),
            min_achieved_rate: default_min_achieved(),
            rollout_must_complete: true,
            single_replicaset: false,
            fail_on_pinned_affinity: false,
            version_share: Vec::new(),
        }
    }
}

fn default_max_failed() -> Option<u64> {
    Some(0)
}
fn default_blind_spot() -> Duration {
    Duration::from_secs(5)
}

impl Profile {
    /// Checks across fields, after parsing. Returns the field and why.
    pub fn check(&self) -> Result<(), (String, String)> {
        let bad = |f: &str, m: String| Err((f.to_string(), m));
        if self.name.trim().is_empty() {
            return bad("name", "must not be empty".into());
        }
        if !(self.load.rate.is_finite() && self.load.rate > 0.0) {
            return bad(
                "load.rate",
                format!(
                    "{} must be a number of requests per second > 0 (a rollout needs a schedule)",
                    self.load.rate
                ),
            );
        }
        if let Some(why) = self.load.source_problem() {
            return bad(why.0, why.1);
        }
        if !self.load.from.is_here()
            && (self.target.ca_file.is_some() || self.target.insecure_skip_tls_verify)
        {
            return bad(
                "target.ca_file",
                "https options are not yet carried to in-cluster workers: load an http:// in-cluster address, or load from here".into(),
            );
        }
        let hosts = f64::from(self.load.worker_count());
        if self.load.rate > crate::load::plan::MAX_RATE * hosts {
            return bad(
                "load.rate",
                format!(
                    "{} new connections per second is more than {} can open (at most {} each){}",
                    self.load.rate,
                    if hosts > 1.0 {
                        format!("{hosts} workers")
                    } else {
                        "one load host".into()
                    },
                    crate::load::plan::MAX_RATE,
                    if self.load.from.is_here() {
                        "; `load: {from: cluster, workers: N}` spreads it over worker Pods"
                    } else {
                        ""
                    }
                ),
            );
        }
        if self.load.timeout.is_zero() {
            return bad("load.timeout", "must be more than 0s".into());
        }
        if self.sandbox.as_ref().is_some_and(|s| s.nodes == 0) {
            return bad("sandbox.nodes", "must be at least 1".into());
        }
        if self.load.connect_timeout.is_zero() {
            return bad("load.connect_timeout", "must be more than 0s".into());
        }
        if self.target.expect_status.is_empty() {
            return bad(
                "target.expect_status",
                "must list at least one status".into(),
            );
        }
        if let Some(s) = self
            .target
            .expect_status
            .iter()
            .find(|s| !(100..600).contains(*s))
        {
            return bad("target.expect_status", format!("{s} is not an HTTP status"));
        }
        let mut watched = vec![self.rollout.deployment.as_str()];
        for (i, a) in self.target.also_watch.iter().enumerate() {
            if a.deployment.trim().is_empty() || a.service.trim().is_empty() {
                return bad(
                    &format!("target.also_watch[{i}]"),
                    "needs a deployment and a service".into(),
                );
            }
            if watched.contains(&a.deployment.as_str()) {
                return bad(
                    &format!("target.also_watch[{i}].deployment"),
                    format!(
                        "{:?} is already watched (rollout.deployment, or an earlier entry)",
                        a.deployment
                    ),
                );
            }
            watched.push(&a.deployment);
        }
        if let Some(b) = &self.target.backend_from
            && let Err(e) = b.compile()
        {
            return bad("target.backend_from", e);
        }
        if let Some(v) = &self.target.version_from
            && let Err(e) = v.compile()
        {
            return bad("target.version_from", e);
        }
        if self.target.url.is_none() && self.sandbox.is_none() && self.load.from.is_here() {
            return bad(
                "target.url",
                "is required on a real cluster (the NodePort, Ingress or LoadBalancer URL to load), unless the load comes from inside it (`load: {from: cluster}`: the Service's ClusterIP)"
                    .into(),
            );
        }
        if self.rollout.steps.is_empty() {
            return bad("rollout.steps", "must hold at least one step".into());
        }
        for (i, step) in self.rollout.steps.iter().enumerate() {
            if let Step::Exec(e) = step
                && e.command.first().is_none_or(|p| p.trim().is_empty())
            {
                return bad(
                    &format!("rollout.steps.{i}.exec.command"),
                    "must name a program, e.g. [kubectl, apply, -k, overlays/staging]".into(),
                );
            }
        }
        for (i, v) in self.thresholds.version_share.iter().enumerate() {
            if v.step == 0 || v.step > self.rollout.steps.len() {
                return bad(
                    &format!("thresholds.version_share.{i}.step"),
                    format!(
                        "{} is not a rollout step: steps are numbered 1 to {}",
                        v.step,
                        self.rollout.steps.len()
                    ),
                );
            }
            if self.target.version_from.is_none() {
                return bad(
                    &format!("thresholds.version_share.{i}"),
                    "needs target.version_from: which version answered is read from the responses"
                        .into(),
                );
            }
        }
        if !(0.0..=1.0).contains(&self.thresholds.min_achieved_rate) {
            return bad(
                "thresholds.min_achieved_rate",
                format!(
                    "{} must be between 0.0 and 1.0 (a fraction of load.rate)",
                    self.thresholds.min_achieved_rate
                ),
            );
        }
        if let Some(r) = self.thresholds.max_error_rate
            && !(0.0..=1.0).contains(&r)
        {
            return bad(
                "thresholds.max_error_rate",
                format!("{r} must be between 0.0 and 1.0 (a fraction, not a percentage)"),
            );
        }
        Ok(())
    }
}
