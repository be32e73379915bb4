//! The sandbox's configuration: the seed scenario, and the YAML file
//! `baton sandbox --config FILE` reads (errors name the file, line and field).

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::store::StoreConfig;

/// Knobs of the simulated cluster.
#[derive(Clone, Debug)]
pub struct ClusterConfig {
    /// How long the Service proxy's own copy of the endpoints lags behind
    /// the EndpointSlices: the kube-proxy/iptables lag that drops requests
    /// when a Pod stops listening before it is out of rotation.
    pub propagation_delay: Duration,
    /// Up to this much extra random lag per EndpointSlice change.
    pub propagation_jitter: Duration,
    /// Pods get `pod_ip_base + 1`, `+ 2`, ... (each its own loopback address),
    /// so several sandboxes in one process must use distinct bases.
    pub pod_ip_base: Ipv4Addr,
    /// The Service range is `service_ip_base/24`
    /// ([`crate::clusterip::ServiceIpRange`]): ClusterIPs are loopback
    /// addresses the proxy listens on, so several sandboxes must use
    /// distinct bases ([`next_service_ip_base`] hands them out).
    pub service_ip_base: Ipv4Addr,
    /// Where the NodePort listeners bind.
    pub node_port_bind: IpAddr,
    /// First delay of the kubelet's restart and image-pull back-off; it
    /// doubles per failure up to [`ClusterConfig::backoff_max`]. Kubernetes
    /// uses 10 s; tests shorten it.
    pub backoff_base: Duration,
    /// Cap of the back-off (Kubernetes: 300 s).
    pub backoff_max: Duration,
    /// How many Nodes the cluster has (at least 1): one is named
    /// `sandbox-node`, several `sandbox-node-1` .. `sandbox-node-N`.
    pub nodes: usize,
    /// The ingress controller's listener (see [`crate::ingress`]), on
    /// [`ClusterConfig::node_port_bind`]: `None` runs none (no Ingress is
    /// served, as in a cluster without a controller), `Some(0)` takes a
    /// free port ([`Sandbox::ingress_addr`](crate::Sandbox::ingress_addr)
    /// says which).
    pub ingress_port: Option<u16>,
    /// How often the HorizontalPodAutoscaler controller syncs each HPA.
    /// Kubernetes' `--horizontal-pod-autoscaler-sync-period` is 15 s; the
    /// sandbox uses 1 s so a profile's metric change acts within a second.
    pub hpa_sync_period: Duration,
    /// Images the kubelet runs as real child processes instead of
    /// simulating them (see [`ProcessImage`]): how baton's own in-cluster
    /// load workers run on the sandbox.
    pub process_images: Vec<ProcessImage>,
    /// Who carries Service traffic: the userspace proxy (default), the
    /// kernel's NAT ([`crate::kernel`], root only), or the kernel's where
    /// it can be had.
    pub data_plane: crate::kernel::DataPlane,
}

/// A container image the sandbox's kubelet runs as a real child process:
/// a Pod all of whose containers' images start with an `image_prefix` runs
/// each container as `program` (the image's entrypoint) with the
/// container's `args`, or as the container's `command` when it has one,
/// with the container's env (see [`crate::kubelet::process`]).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProcessImage {
    /// `ghcr.io/baton-rollout/baton` matches every tag and digest of it.
    pub image_prefix: String,
    /// The executable the image's entrypoint stands for.
    pub program: PathBuf,
}

impl Default for ClusterConfig {
    fn default() -> Self {
        ClusterConfig {
            propagation_delay: Duration::from_secs(1),
            propagation_jitter: Duration::ZERO,
            pod_ip_base: Ipv4Addr::new(127, 10, 0, 0),
            service_ip_base: Ipv4Addr::new(127, 250, 0, 0),
            node_port_bind: IpAddr::V4(Ipv4Addr::LOCALHOST),
            backoff_base: Duration::from_secs(10),
            backoff_max: Duration::from_secs(300),
            nodes: 1,
            ingress_port: None,
            hpa_sync_period: Duration::from_secs(1),
            process_images: Vec::new(),
            data_plane: crate::kernel::DataPlane::Userspace,
        }
    }
}

/// A verb on a resource that the sandbox refuses with 403 Forbidden (and
/// that a SelfSubjectAccessReview reports as not allowed), so tests can
/// check how baton copes with missing RBAC permissions. `*` matches any.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccessRule {
    /// `get`, `list`, `watch`, `create`, `update`, `patch`, `delete`, or `*`.
    pub verb: String,
    /// API group: `""` for core, `apps`, ..., or `*`.
    #[serde(default)]
    pub group: String,
    /// `pods`, `deployments`, `deployments/scale`, ..., or `*`.
    pub resource: String,
}

impl AccessRule {
    /// Whether this rule matches `verb` on `group`/`resource` (`resource`
    /// may carry a subresource, `deployments/scale`).
    pub fn matches(&self, verb: &str, group: &str, resource: &str) -> bool {
        let m = |rule: &str, v: &str| rule == "*" || rule == v;
        m(&self.verb, verb) && m(&self.group, group) && m(&self.resource, resource)
    }

    /// As a deny rule: whether it refuses `verb` on `group`/`resource`.
    pub fn denies(&self, verb: &str, group: &str, resource: &str) -> bool {
        self.matches(verb, group, resource)
    }
}

/// Everything a [`Sandbox`](crate::Sandbox) needs to start.
#[derive(Clone, Debug)]
pub struct SandboxConfig {
    /// Where the API server listens; port 0 picks a free one.
    pub listen: SocketAddr,
    pub store: StoreConfig,
    pub cluster: ClusterConfig,
    /// Applied at start, in order, as server-side apply would.
    pub manifests: Vec<Value>,
    /// Verbs on resources the API refuses with 403 (and SelfSubjectAccessReview denies).
    pub deny: Vec<AccessRule>,
    /// When set, the API allows only what these rules match, as RBAC does
    /// with a Role (creating a SelfSubjectAccessReview stays allowed, as
    /// Kubernetes' `system:basic-user` allows it to everyone).
    pub allow: Option<Vec<AccessRule>>,
    /// Where to write the kubeconfig; `None` writes one in a private temp dir.
    pub kubeconfig_out: Option<PathBuf>,
    /// How often watches that asked for bookmarks get one (Kubernetes: ~1 min).
    pub bookmark_interval: Duration,
}

/// A pod IP range per sandbox, so several sandboxes never hand out the same
/// loopback address: 127.10.0.0/16, 127.11.0.0/16, ... The first range is
/// picked from the process id, so sandboxes in different processes (test
/// binaries run side by side) also tend not to meet.
pub fn next_pod_ip_base() -> std::net::Ipv4Addr {
    static NEXT: AtomicU32 = AtomicU32::new(u32::MAX);
    let _ = NEXT.compare_exchange(
        u32::MAX,
        std::process::id() % 240,
        Ordering::Relaxed,
        Ordering::Relaxed,
    );
    let k = NEXT.fetch_add(1, Ordering::Relaxed) % 240;
    std::net::Ipv4Addr::new(127, 10 + k as u8, 0, 0)
}

/// How many `/24` Service ranges [`next_service_ip_base`] hands out:
/// 127.250.0.0/24 up to 127.255.255.0/24.
const SERVICE_RANGES: u32 = 6 * 256;

/// A Service (ClusterIP) range per sandbox, so several sandboxes never hand
/// out the same ClusterIP: 127.250.0.0/24, 127.250.1.0/24, ...,
/// 127.255.255.0/24, then round again. That region of 127.0.0.0/8 is apart
/// from the Pod ranges [`next_pod_ip_base`] hands out (127.10.0.0/16 up to
/// 127.249.0.0/16) and from 127.0.0.0/16 (127.0.0.1, where the API server
/// and NodePorts listen, and the 127.0.0.53 / 127.0.1.1 some systems use).
/// A `/24` each (254 Services) leaves room for 1536 sandboxes before two
/// meet. Like the Pod ranges, the first is picked from the process id, so
/// test binaries run side by side tend not to meet either; an address some
/// other process already listens on is skipped when a ClusterIP is handed
/// out.
pub fn next_service_ip_base() -> std::net::Ipv4Addr {
    static NEXT: AtomicU32 = AtomicU32::new(u32::MAX);
    let _ = NEXT.compare_exchange(
        u32::MAX,
        // Seven apart per process id: consecutive ids, each starting a few
        // sandboxes, do not meet.
        std::process::id().wrapping_mul(7) % SERVICE_RANGES,
        Ordering::Relaxed,
        Ordering::Relaxed,
    );
    service_ip_base(NEXT.fetch_add(1, Ordering::Relaxed))
}

/// The `k`-th Service range's base (wrapping after [`SERVICE_RANGES`]).
fn service_ip_base(k: u32) -> Ipv4Addr {
    let k = k % SERVICE_RANGES;
    Ipv4Addr::new(127, 250 + (k / 256) as u8, (k % 256) as u8, 0)
}

impl Default for SandboxConfig {
    /// No manifests; a fresh pod IP range and Service range; a free API port.
    fn default() -> Self {
        SandboxConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            store: StoreConfig::default(),
            cluster: ClusterConfig {
                pod_ip_base: next_pod_ip_base(),
                service_ip_base: next_service_ip_base(),
                ..ClusterConfig::default()
            },
            manifests: Vec::new(),
            deny: Vec::new(),
            allow: None,
            kubeconfig_out: None,
            bookmark_interval: Duration::from_secs(5),
        }
    }
}

/// The seed scenario's Deployment: 3 replicas of `web-server`, container
/// `nginx` on `nginx:1.27`, readiness probe `GET /` every second,
/// RollingUpdate 25%/25%, grace 30 s.
pub fn seed_deployment() -> Value {
    json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web-server", "namespace": "default", "labels": {"app": "web"}},
        "spec": {
            "replicas": 3,
            "revisionHistoryLimit": 10,
            "progressDeadlineSeconds": 600,
            "selector": {"matchLabels": {"app": "web"}},
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {
                    "terminationGracePeriodSeconds": 30,
                    "containers": [{
                        "name": "nginx",
                        "image": "nginx:1.27",
                        "ports": [{"containerPort": 80}],
                        "readinessProbe": {"httpGet": {"path": "/", "port": 80}, "periodSeconds": 1},
                    }],
                },
            },
        },
    })
}

/// The seed scenario's Service: `web-service`, NodePort, port 80 → pods
/// `app=web`. The nodePort is left out, so the sandbox picks a free one.
pub fn seed_service() -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "web-service", "namespace": "default"},
        "spec": {
            "type": "NodePort",
            "selector": {"app": "web"},
            "ports": [{"port": 80, "targetPort": 80, "protocol": "TCP"}],
        },
    })
}

impl SandboxConfig {
    /// The seed scenario: Deployment `web-server` (3 × nginx:1.27) and
    /// Service `web-service` (NodePort on a free port) in `default`.
    pub fn seed() -> Self {
        SandboxConfig {
            manifests: vec![seed_deployment(), seed_service()],
            ..SandboxConfig::default()
        }
    }

    /// Reads a sandbox config file (YAML). It is a stream of documents:
    /// at most one settings document (no `kind`), whose fields are those of
    /// [`FileSettings`], and any number of manifests (documents with
    /// `apiVersion` and `kind`), applied after the settings' `manifests:`.
    /// With no manifest at all, the seed scenario's are used.
    pub fn from_file(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError::Read {
            file: path.to_path_buf(),
            source: e,
        })?;
        Self::from_yaml(&text, path)
    }

    /// [`SandboxConfig::from_file`] on text already read; `file` names it in errors.
    pub fn from_yaml(text: &str, file: &Path) -> Result<Self, ConfigError> {
        let err = |line: usize, field: &str, message: String| ConfigError::Invalid {
            file: file.to_path_buf(),
            line,
            field: field.to_string(),
            message,
        };
        let mut cfg = SandboxConfig::default();
        let mut settings_seen = false;
        let mut manifests = Vec::new();
        let mut any_manifest_key = false;
        for (start, doc) in split_documents(text) {
            let v: serde_norway::Value = serde_norway::from_str(doc).map_err(|e| {
                let line = e.location().map_or(start, |l| start + l.line() - 1);
                err(line, "", e.to_string())
            })?;
            if v.is_null() {
                continue;
            }
            let looks_like_manifest = v.get("kind").is_some() || v.get("apiVersion").is_some();
            if looks_like_manifest {
                let m = serde_json::to_value(&v).map_err(|e| err(start, "", e.to_string()))?;
                check_manifest(&m, &format!("document at line {start}"))
                    .map_err(|(field, msg)| err(start, &field, msg))?;
                manifests.push(m);
                continue;
            }
            if settings_seen {
                return Err(err(
                    start,
                    "",
                    "a second settings document; put all settings in one".into(),
                ));
            }
            settings_seen = true;
            let s: FileSettings = serde_norway::from_str(doc).map_err(|e| {
                let line = e.location().map_or(start, |l| start + l.line() - 1);
                let msg = e.to_string();
                let field = msg
                    .split_once(": ")
                    .map(|(f, _)| f)
                    .filter(|f| !f.contains(' '))
                    .unwrap_or("");
                err(line, field, msg.clone())
            })?;
            let dur = |field: &str, v: &Option<String>| -> Result<Option<Duration>, ConfigError> {
                v.as_deref()
                    .map(|s| {
                        parse_duration(s).map_err(|m| err(find_line(doc, field, start), field, m))
                    })
                    .transpose()
            };
            if let Some(l) = &s.listen {
                cfg.listen = l.parse().map_err(|_| {
                    err(
                        find_line(doc, "listen", start),
                        "listen",
                        format!("{l:?} is not an address like 127.0.0.1:8080"),
                    )
                })?;
            }
            if let Some(h) = s.history {
                if h == 0 {
                    return Err(err(
                        find_line(doc, "history", start),
                        "history",
                        "must be at least 1".into(),
                    ));
                }
                cfg.store.history = h;
            }
            if let Some(d) = dur("propagation_delay", &s.propagation_delay)? {
                cfg.cluster.propagation_delay = d;
            }
            if let Some(d) = dur("propagation_jitter", &s.propagation_jitter)? {
                cfg.cluster.propagation_jitter = d;
            }
            if let Some(d) = dur("bookmark_interval", &s.bookmark_interval)? {
                if d.is_zero() {
                    return Err(err(
                        find_line(doc, "bookmark_interval", start),
                        "bookmark_interval",
                        "must be more than 0".into(),
                    ));
                }
                cfg.bookmark_interval = d;
            }
            if let Some(d) = dur("backoff_base", &s.backoff_base)? {
                cfg.cluster.backoff_base = d;
            }
            if let Some(d) = dur("backoff_max", &s.backoff_max)? {
                cfg.cluster.backoff_max = d;
            }
            if let Some(d) = dur("hpa_sync_period", &s.hpa_sync_period)? {
                if d.is_zero() {
                    return Err(err(
                        find_line(doc, "hpa_sync_period", start),
                        "hpa_sync_period",
                        "must be more than 0".into(),
                    ));
                }
                cfg.cluster.hpa_sync_period = d;
            }
            if let Some(n) = s.nodes {
                if n == 0 {
                    return Err(err(
                        find_line(doc, "nodes", start),
                        "nodes",
                        "must be at least 1".into(),
                    ));
                }
                cfg.cluster.nodes = n;
            }
            cfg.cluster
                .process_images
                .extend(s.process_images.iter().cloned());
            if let Some(d) = s.data_plane {
                cfg.cluster.data_plane = d;
            }
            if s.ingress_port.is_some() {
                cfg.cluster.ingress_port = s.ingress_port;
            }
            if let Some(k) = s.kubeconfig_out {
                cfg.kubeconfig_out = Some(k);
            }
            for (i, r) in s.deny.iter().enumerate() {
                if r.verb.is_empty() || r.resource.is_empty() {
                    return Err(err(
                        find_line(doc, "deny", start),
                        &format!("deny[{i}]"),
                        "verb and resource are required (use \"*\" for any)".into(),
                    ));
                }
            }
            cfg.deny = s.deny;
            if let Some(ms) = s.manifests {
                any_manifest_key = true;
                let base = find_line(doc, "manifests", start);
                let mut out = Vec::new();
                for (i, m) in ms.iter().enumerate() {
                    let m = serde_json::to_value(m)
                        .map_err(|e| err(base, &format!("manifests[{i}]"), e.to_string()))?;
                    check_manifest(&m, &format!("manifests[{i}]"))
                        .map_err(|(field, msg)| err(base, &field, msg))?;
                    out.push(m);
                }
                manifests.splice(0..0, out);
            }
        }
        cfg.manifests = if manifests.is_empty() && !any_manifest_key {
            SandboxConfig::seed().manifests
        } else {
            manifests
        };
        Ok(cfg)
    }
}

/// The settings document of a sandbox config file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileSettings {
    /// API server address, e.g. `127.0.0.1:8080` (default `127.0.0.1:0`, a free port).
    pub listen: Option<String>,
    /// Changes kept for watches to resume from (default 10000).
    pub history: Option<usize>,
    /// Lag of the Service proxy behind EndpointSlices, e.g. `1s` (default 1s).
    pub propagation_delay: Option<String>,
    /// Extra random lag per change, up to this (default 0s).
    pub propagation_jitter: Option<String>,
    /// Watch bookmark period (default 5s).
    pub bookmark_interval: Option<String>,
    /// Kubelet back-off start and cap (defaults 10s and 300s, as Kubernetes).
    pub backoff_base: Option<String>,
    pub backoff_max: Option<String>,
    /// How many Nodes (default 1, named `sandbox-node`; several are
    /// `sandbox-node-1` .. `sandbox-node-N`).
    pub nodes: Option<usize>,
    /// Port of the ingress controller's listener (0: a free one; absent:
    /// no ingress controller).
    pub ingress_port: Option<u16>,
    /// HorizontalPodAutoscaler sync period (default 1s; Kubernetes: 15s).
    pub hpa_sync_period: Option<String>,
    /// Images run as real child processes: `[{image_prefix, program}]`.
    #[serde(default)]
    pub process_images: Vec<ProcessImage>,
    /// `userspace` (default), `kernel` (nftables DNAT, root only) or `auto`.
    pub data_plane: Option<crate::kernel::DataPlane>,
    pub kubeconfig_out: Option<PathBuf>,
    #[serde(default)]
    pub deny: Vec<AccessRule>,
    /// Manifests applied at start.
    pub manifests: Option<Vec<serde_norway::Value>>,
}

/// Why a config file was refused; the message names file, line and field.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read sandbox config {}: {source}", file.display())]
    Read {
        file: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}:{line}: {}{message}", file.display(), if field.is_empty() { String::new() } else { format!("field `{field}`: ") })]
    Invalid {
        file: PathBuf,
        line: usize,
        field: String,
        message: String,
    },
}

/// The kinds a sandbox manifest may have.
const MANIFEST_KINDS: &[(&str, &str)] = &[
    ("v1", "Namespace"),
    ("v1", "Service"),
    ("v1", "Pod"),
    ("apps/v1", "Deployment"),
    ("policy/v1", "PodDisruptionBudget"),
    ("networking.k8s.io/v1", "Ingress"),
    ("autoscaling/v2", "HorizontalPodAutoscaler"),
    ("autoscaling/v1", "HorizontalPodAutoscaler"),
    ("batch/v1", "Job"),
];

fn check_manifest(m: &Value, at: &str) -> Result<(), (String, String)> {
    let av = m["apiVersion"]
        .as_str()
        .ok_or((format!("{at}.apiVersion"), "required".to_string()))?;
    let kind = m["kind"]
        .as_str()
        .ok_or((format!("{at}.kind"), "required".to_string()))?;
    if !MANIFEST_KINDS.contains(&(av, kind)) {
        return Err((
            format!("{at}.kind"),
            format!(
                "the sandbox cannot apply {av} {kind}; it applies v1 Namespace, Service, Pod, apps/v1 Deployment, policy/v1 PodDisruptionBudget, networking.k8s.io/v1 Ingress, autoscaling/v2 (or v1) HorizontalPodAutoscaler and batch/v1 Job"
            ),
        ));
    }
    if m["metadata"]["name"].as_str().is_none_or(str::is_empty) {
        return Err((format!("{at}.metadata.name"), "required".into()));
    }
    Ok(())
}

/// Splits a YAML stream at `---` lines; each document with its first line (1-based).
fn split_documents(text: &str) -> Vec<(usize, &str)> {
    let mut out = Vec::new();
    let mut start_byte = 0;
    let mut start_line = 1;
    let mut offset = 0;
    for (i, line) in text.split_inclusive('\n').enumerate() {
        let l = line.trim_end();
        if l == "---" || l.starts_with("--- ") || l.starts_with("---\t") {
            out.push((start_line, &text[start_byte..offset]));
            start_byte = offset + line.len();
            start_line = i + 2;
        }
        offset += line.len();
    }
    out.push((start_line, &text[start_byte..]));
    out
}

/// The line of a top-level `field:` in a document (or the document's first line).
fn find_line(doc: &str, field: &str, start: usize) -> usize {
    doc.lines()
        .position(|l| l.starts_with(&format!("{field}:")))
        .map_or(start, |i| start + i)
}

/// `500ms`, `2s`, `1.5s`, `3m`, `1h`, or a bare number of seconds.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let bad = || format!("{s:?} is not a duration like 500ms, 2s or 1m");
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: f64 = num.parse().map_err(|_| bad())?;
    let secs = match unit.trim() {
        "" | "s" => n,
        "ms" => n / 1000.0,
        "m" => n * 60.0,
        "h" => n * 3600.0,
        _ => return Err(bad()),
    };
    if !secs.is_finite() || secs < 0.0 {
        return Err(bad());
    }
    Ok(Duration::from_secs_f64(secs))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(t: &str) -> Result<SandboxConfig, ConfigError> {
        SandboxConfig::from_yaml(t, Path::new("sandbox.yaml"))
    }

    #[test]
    fn seed_has_the_web_server_deployment_and_a_nodeport_service() {
        let c = SandboxConfig::seed();
        assert_eq!(c.manifests.len(), 2);
        assert_eq!(c.manifests[0]["spec"]["replicas"], 3);
        assert_eq!(
            c.manifests[0]["spec"]["template"]["spec"]["containers"][0]["image"],
            "nginx:1.27"
        );
        assert_eq!(c.manifests[1]["spec"]["type"], "NodePort");
        let d: k8s_openapi::api::apps::v1::Deployment =
            serde_json::from_value(seed_deployment()).unwrap();
        assert_eq!(
            d.spec
                .template
                .spec
                .unwrap()
                .termination_grace_period_seconds,
            Some(30)
        );
    }

    #[test]
    fn settings_and_manifest_documents_are_read() {
        let c = parse(
            "history: 5\npropagation_delay: 250ms\ndeny:\n- {verb: patch, group: apps, resource: deployments}\nmanifests:\n- apiVersion: v1\n  kind: Service\n  metadata: {name: a}\n  spec: {ports: [{port: 80}]}\n---\napiVersion: apps/v1\nkind: Deployment\nmetadata: {name: b}\n",
        )
        .unwrap();
        assert_eq!(c.store.history, 5);
        assert_eq!(c.cluster.propagation_delay, Duration::from_millis(250));
        assert_eq!(c.deny.len(), 1);
        assert!(c.deny[0].denies("patch", "apps", "deployments"));
        let names: Vec<_> = c
            .manifests
            .iter()
            .map(|m| m["metadata"]["name"].as_str().unwrap())
            .collect();
        assert_eq!(names, vec!["a", "b"]);
        let seedless = parse("history: 5\n").unwrap();
        assert_eq!(
            seedless.manifests.len(),
            2,
            "no manifests means the seed scenario"
        );
        assert!(parse("manifests: []\n").unwrap().manifests.is_empty());
    }

    #[test]
    fn hpa_sync_period_defaults_to_a_second_and_hpas_are_manifests() {
        assert_eq!(
            parse("history: 5\n").unwrap().cluster.hpa_sync_period,
            Duration::from_secs(1)
        );
        let c = parse("hpa_sync_period: 250ms\nmanifests:\n- apiVersion: autoscaling/v2\n  kind: HorizontalPodAutoscaler\n  metadata: {name: web}\n  spec: {scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: web}, maxReplicas: 4}\n").unwrap();
        assert_eq!(c.cluster.hpa_sync_period, Duration::from_millis(250));
        assert_eq!(c.manifests[0]["kind"], "HorizontalPodAutoscaler");
        let e = parse("history: 5\nhpa_sync_period: 0s\n")
            .unwrap_err()
            .to_string();
        assert_eq!(
            e,
            "sandbox.yaml:2: field `hpa_sync_period`: must be more than 0"
        );
    }

    #[test]
    fn nodes_default_to_one_and_zero_is_refused_with_its_line() {
        assert_eq!(parse("history: 5\n").unwrap().cluster.nodes, 1);
        let c = parse("nodes: 3\nmanifests:\n- apiVersion: policy/v1\n  kind: PodDisruptionBudget\n  metadata: {name: web-pdb}\n  spec: {minAvailable: 2}\n").unwrap();
        assert_eq!(c.cluster.nodes, 3);
        assert_eq!(c.manifests[0]["kind"], "PodDisruptionBudget");
        let e = parse("history: 5\nnodes: 0\n").unwrap_err().to_string();
        assert_eq!(e, "sandbox.yaml:2: field `nodes`: must be at least 1");
    }

    #[test]
    fn process_images_map_an_image_prefix_to_a_program_and_jobs_are_manifests() {
        let c = parse("process_images:\n- {image_prefix: ghcr.io/baton-rollout/baton, program: /usr/local/bin/baton}\n---\napiVersion: batch/v1\nkind: Job\nmetadata: {name: load}\n").unwrap();
        assert_eq!(
            c.cluster.process_images,
            [ProcessImage {
                image_prefix: "ghcr.io/baton-rollout/baton".into(),
                program: "/usr/local/bin/baton".into(),
            }]
        );
        assert_eq!(c.manifests[0]["kind"], "Job");
        let e = parse("process_images:\n- {image_prefix: x, program: /bin/sh, shell: true}\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("shell"), "{e}");
    }

    #[test]
    fn an_ingress_port_turns_the_ingress_controller_on_and_ingresses_are_manifests() {
        assert_eq!(parse("history: 5\n").unwrap().cluster.ingress_port, None);
        let c = parse("ingress_port: 0\n---\napiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata: {name: web}\n").unwrap();
        assert_eq!(c.cluster.ingress_port, Some(0));
        assert_eq!(c.manifests[0]["kind"], "Ingress");
    }

    #[test]
    fn data_plane_is_the_userspace_proxy_unless_the_file_asks_for_the_kernel() {
        use crate::kernel::DataPlane;
        assert_eq!(
            parse("history: 5\n").unwrap().cluster.data_plane,
            DataPlane::Userspace
        );
        assert_eq!(
            parse("data_plane: kernel\n").unwrap().cluster.data_plane,
            DataPlane::Kernel
        );
        assert_eq!(
            parse("data_plane: auto\n").unwrap().cluster.data_plane,
            DataPlane::Auto
        );
        let e = parse("history: 5\ndata_plane: iptables\n")
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("sandbox.yaml:2:") && e.contains("data_plane"),
            "{e}"
        );
    }

    #[test]
    fn errors_name_file_line_and_field() {
        let e = parse("history: 5\nbogus: 1\n").unwrap_err().to_string();
        assert!(e.starts_with("sandbox.yaml:2:"), "{e}");
        assert!(e.contains("bogus"), "{e}");
        let e = parse("history: 5\npropagation_delay: soon\n")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("sandbox.yaml:2") && e.contains("propagation_delay"),
            "{e}"
        );
        let e = parse("deny:\n- {verb: get, resource: pods, nope: 1}\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("deny[0]") && e.contains("nope"), "{e}");
        let e =
            parse("history: 1\n---\napiVersion: batch/v1\nkind: CronJob\nmetadata: {name: j}\n")
                .unwrap_err()
                .to_string();
        assert!(
            e.starts_with("sandbox.yaml:3:") && e.contains("kind"),
            "{e}"
        );
        let e = parse("history: [\n").unwrap_err().to_string();
        assert!(e.starts_with("sandbox.yaml:"), "{e}");
    }

    #[test]
    fn service_ranges_are_distinct_per_sandbox_and_apart_from_pod_ranges() {
        let bases: Vec<Ipv4Addr> = (0..SERVICE_RANGES + 1).map(service_ip_base).collect();
        let distinct: std::collections::HashSet<_> =
            bases[..SERVICE_RANGES as usize].iter().collect();
        assert_eq!(distinct.len(), SERVICE_RANGES as usize);
        assert_eq!(bases[0], bases[SERVICE_RANGES as usize], "then round again");
        for b in &bases {
            let o = b.octets();
            assert_eq!((o[0], o[3]), (127, 0), "{b}");
            assert!(o[1] >= 250, "{b}: outside 127.10-127.249, the Pod ranges");
        }
        let (a, b) = (next_service_ip_base(), next_service_ip_base());
        assert_ne!(a, b);
        assert!(a.octets()[1] >= 250 && b.octets()[1] >= 250);
    }

    #[test]
    fn durations_parse_in_the_usual_units() {
        assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse_duration("2").unwrap(), Duration::from_secs(2));
        assert_eq!(parse_duration("1.5s").unwrap(), Duration::from_millis(1500));
        assert_eq!(parse_duration("2m").unwrap(), Duration::from_secs(120));
        assert!(parse_duration("x").is_err());
        assert!(parse_duration("-1s").is_err());
    }
}
