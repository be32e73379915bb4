//! Which cluster a run talks to: the embedded sandbox (started here, from
//! the profile's `sandbox` section) or a real one chosen the way kubectl
//! chooses; and the URL the load hits.
//!
//! [`resolve`] is the one rule, pure, shared by `baton run` and `baton
//! matrix` (which must put a real cluster's Deployment back, and leaves
//! the sandbox alone); [`choose`] acts on it.
//!
//! Not for: what is done on the cluster once connected (`steps`,
//! `watch`, ...).

use super::connect::{self, Cluster, ConnectError};
use crate::profile::LoadFrom;
use crate::profile::{LoadedProfile, Profile, SandboxSection};
use baton_sandbox::{ProcessImage, Sandbox, SandboxConfig};
use std::path::{Path, PathBuf};

/// The cluster flags of the command line (`--kubeconfig`, `--context`,
/// `-n`, `--sandbox`), each overriding the profile's `cluster` section,
/// and whether `KUBECONFIG` is set.
#[derive(Clone, Debug, Default)]
pub struct Flags {
    pub kubeconfig: Option<PathBuf>,
    pub context: Option<String>,
    pub namespace: Option<String>,
    /// `--sandbox`: the simulator, whatever else names a cluster.
    pub sandbox: bool,
    /// `KUBECONFIG` is set (to anything): the environment names a cluster.
    pub kubeconfig_env: bool,
}

impl Flags {
    /// The command line's flags, with `KUBECONFIG` read from the
    /// environment.
    pub fn with_env(mut self) -> Flags {
        self.kubeconfig_env = std::env::var_os("KUBECONFIG").is_some_and(|v| !v.is_empty());
        self
    }
}

/// Where a run goes, decided before anything connects.
#[derive(Clone, Debug, PartialEq)]
pub enum Resolved<'a> {
    /// The embedded sandbox, from the profile's `sandbox` section.
    Sandbox {
        section: &'a SandboxSection,
        namespace: String,
    },
    /// A real cluster, as kubectl would pick it from these; no namespace
    /// means the context's own.
    Real {
        kubeconfig: Option<PathBuf>,
        context: Option<String>,
        namespace: Option<String>,
        /// What named it, for the run's first line.
        because: &'static str,
    },
}

/// The namespace of a run on the sandbox when nothing names one.
pub const SANDBOX_NAMESPACE: &str = "default";

/// The rule, so that a simulator PASS can never stand in for a cluster's:
/// a real cluster whenever anything names one (`--kubeconfig`,
/// `--context`, `KUBECONFIG`, the profile's `cluster.kubeconfig` or
/// `cluster.context`) or the profile has no `sandbox` section; the
/// simulator only when the profile asks for it and nothing else names a
/// cluster, or with `--sandbox`. Flags override the profile's `cluster`
/// section; the namespace is `-n`, else the profile's, else the
/// context's (as kubectl) or `default` on the sandbox.
pub fn resolve<'a>(profile: &'a Profile, flags: &Flags) -> Result<Resolved<'a>, String> {
    let namespace = flags
        .namespace
        .clone()
        .or_else(|| profile.cluster.namespace.clone());
    let named = if flags.kubeconfig.is_some() {
        Some("--kubeconfig")
    } else if flags.context.is_some() {
        Some("--context")
    } else if flags.kubeconfig_env {
        Some("KUBECONFIG")
    } else if profile.cluster.kubeconfig.is_some() {
        Some("the profile's cluster.kubeconfig")
    } else if profile.cluster.context.is_some() {
        Some("the profile's cluster.context")
    } else {
        None
    };
    let sandbox = |section| Resolved::Sandbox {
        section,
        namespace: namespace
            .clone()
            .unwrap_or_else(|| SANDBOX_NAMESPACE.into()),
    };
    match (&profile.sandbox, flags.sandbox, named) {
        (None, true, _) => Err(
            "--sandbox: the profile has no `sandbox:` section (add `sandbox: {}` for the seed scenario, or manifests)"
                .into(),
        ),
        (Some(section), true, _) | (Some(section), false, None) => Ok(sandbox(section)),
        (_, false, because) => Ok(Resolved::Real {
            kubeconfig: flags
                .kubeconfig
                .clone()
                .or_else(|| profile.cluster.kubeconfig.clone()),
            context: flags
                .context
                .clone()
                .or_else(|| profile.cluster.context.clone()),
            namespace,
            because: because.unwrap_or("the profile has no `sandbox:` section"),
        }),
    }
}

/// Connect to a real cluster as [`resolve`] found it.
pub async fn connect_real(
    kubeconfig: Option<&Path>,
    context: Option<&str>,
    namespace: Option<&str>,
) -> Result<Cluster, ConnectError> {
    connect::connect(kubeconfig, context, namespace).await
}

/// The run's cluster, and the sandbox behind it when there is one (kept
/// so it lives as long as the run, and for its ground truth).
pub struct Chosen {
    pub cluster: Cluster,
    pub sandbox: Option<Sandbox>,
    /// The kubeconfig file and context the client was built from, for
    /// `exec` steps (`None`: as kubectl finds them).
    pub kubeconfig: Option<PathBuf>,
    pub context: Option<String>,
    /// For reports: `sandbox (simulator)` or the context's name.
    pub label: String,
    pub url: String,
}

#[derive(Debug, thiserror::Error)]
pub enum ChooseError {
    /// Bad input (exit 2).
    #[error("{0}")]
    Input(String),
    /// Could not reach or start a cluster (exit 3).
    #[error("{0}")]
    Unavailable(String),
}

/// Resolve, then connect (starting the sandbox if that is where the run
/// goes).
pub async fn choose(loaded: &LoadedProfile, flags: &Flags) -> Result<Chosen, ChooseError> {
    let p = &loaded.profile;
    let (section, ns) = match resolve(p, flags).map_err(ChooseError::Input)? {
        Resolved::Real {
            kubeconfig,
            context,
            namespace,
            because,
        } => {
            let from_cluster = p.load.from == LoadFrom::Cluster;
            if p.target.url.is_none() && !from_cluster {
                return Err(ChooseError::Input(format!(
                    "{}: target.url: is required on a real cluster (the NodePort, Ingress or LoadBalancer URL to load), and {because} names one; add it, pass --set target.url=http://..., load from inside the cluster (`load: {{from: cluster}}`: the Service's ClusterIP), or pass --sandbox to run on the simulator",
                    loaded.file.display()
                )));
            }
            let cluster = connect_real(
                kubeconfig.as_deref(),
                context.as_deref(),
                namespace.as_deref(),
            )
            .await
            .map_err(|e| ChooseError::Input(e.to_string()))?;
            let url = match &p.target.url {
                Some(u) => u.clone(),
                None => service_cluster_url(&cluster, &p.target.service, &loaded.file).await?,
            };
            return Ok(Chosen {
                cluster,
                sandbox: None,
                label: context
                    .as_ref()
                    .map_or("current kubeconfig context".into(), |c| {
                        format!("context {c}")
                    }),
                kubeconfig,
                context,
                url,
            });
        }
        Resolved::Sandbox { section, namespace } => (section, namespace),
    };
    let ns = ns.as_str();
    let mut cfg = sandbox_config(section, &loaded.base_dir, &loaded.file)?;
    let from_cluster = p.load.from == LoadFrom::Cluster;
    if from_cluster {
        cfg.cluster.process_images.push(worker_process(p)?);
    }
    let sandbox = Sandbox::start(cfg)
        .await
        .map_err(|e| ChooseError::Unavailable(format!("cannot start the sandbox: {e:#}")))?;
    let kubeconfig = sandbox.kubeconfig_path().to_path_buf();
    let cluster = connect::connect(Some(&kubeconfig), None, Some(ns))
        .await
        .map_err(|e| ChooseError::Unavailable(format!("cannot reach the sandbox: {e}")))?;
    let ingress = if section.ingress {
        sandbox.ingress_addr()
    } else {
        None
    };
    let svc = format!("{ns}/{}", p.target.service);
    let cluster_ip = from_cluster
        .then(|| sandbox.cluster_ip(&svc))
        .flatten()
        .map(|addr| format!("http://{addr}/"));
    let url = match (&p.target.url, cluster_ip) {
        (None, Some(in_cluster)) => Ok(in_cluster),
        (None, None) if from_cluster => Err(ChooseError::Input(format!(
            "{}: target.service: the sandbox's Service {svc:?} has no ClusterIP for in-cluster load (its manifests define: {})",
            loaded.file.display(),
            sandbox
                .cluster_ips()
                .iter()
                .map(|(s, _)| s.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ))),
        _ => sandbox_url(p.target.url.as_deref(), ingress, || {
            sandbox.node_port(&svc).ok_or_else(|| {
            ChooseError::Input(format!(
                "{}: target.service: the sandbox has no NodePort Service {svc:?} (its manifests define: {})",
                loaded.file.display(),
                sandbox
                    .node_ports()
                    .iter()
                    .map(|(s, _)| s.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ))
        })
        }),
    }?;
    // The kernel data plane is said where the run is named (the
    // terminal, summary.json, every report); run.json's
    // `sandbox_data_plane` records either.
    let label = match sandbox.data_plane() {
        baton_sandbox::DataPlaneUsed::Userspace => "sandbox (simulator)",
        baton_sandbox::DataPlaneUsed::Kernel => "sandbox (simulator, kernel data plane)",
    };
    Ok(Chosen {
        cluster,
        kubeconfig: Some(kubeconfig),
        context: None,
        sandbox: Some(sandbox),
        label: label.into(),
        url,
    })
}

/// On the sandbox, the load workers' image runs as this very baton (a
/// child process per worker Pod): the image's name without its tag is
/// the prefix the sandbox maps to this executable.
fn worker_process(p: &crate::profile::Profile) -> Result<ProcessImage, ChooseError> {
    let image = p
        .load
        .image
        .clone()
        .unwrap_or_else(crate::fleet::job::default_image);
    let program = std::env::current_exe().map_err(|e| {
        ChooseError::Unavailable(format!(
            "cannot find this baton's own executable to run the sandbox's load workers: {e}"
        ))
    })?;
    Ok(ProcessImage {
        image_prefix: image_repo(&image).to_string(),
        program,
    })
}

/// An image reference without its tag or digest:
/// `registry:5000/team/baton:1.2` → `registry:5000/team/baton`.
fn image_repo(image: &str) -> &str {
    let image = image.split('@').next().unwrap_or(image);
    match image.rfind(':') {
        Some(i) if !image[i..].contains('/') => &image[..i],
        _ => image,
    }
}

/// `http://CLUSTER-IP:PORT/` of `service`'s first port on a real cluster,
/// as the load workers reach it.
async fn service_cluster_url(
    cluster: &Cluster,
    service: &str,
    file: &Path,
) -> Result<String, ChooseError> {
    let api: kube::Api<k8s_openapi::api::core::v1::Service> =
        kube::Api::namespaced(cluster.client.clone(), &cluster.namespace);
    let svc = api.get(service).await.map_err(|e| match &e {
        kube::Error::Api(s) if s.code == 404 => ChooseError::Input(format!(
            "{}: target.service: no Service {service:?} in namespace {}",
            file.display(),
            cluster.namespace
        )),
        _ => ChooseError::Unavailable(format!(
            "reading Service {}/{service} for its ClusterIP: {e}",
            cluster.namespace
        )),
    })?;
    let spec = svc.spec.unwrap_or_default();
    let ip = spec
        .cluster_ip
        .filter(|ip| !ip.is_empty() && ip != "None")
        .ok_or_else(|| {
            ChooseError::Input(format!(
                "{}: target.service: Service {service:?} has no ClusterIP (headless or ExternalName); set target.url to the in-cluster address the workers should load (e.g. http://{service}.{}.svc.cluster.local/)",
                file.display(),
                cluster.namespace
            ))
        })?;
    let port = spec
        .ports
        .and_then(|p| p.first().map(|p| p.port))
        .ok_or_else(|| {
            ChooseError::Input(format!(
                "{}: target.service: Service {service:?} has no port",
                file.display()
            ))
        })?;
    let host = if ip.contains(':') {
        format!("[{ip}]")
    } else {
        ip
    };
    Ok(format!("http://{host}:{port}/"))
}

/// The URL the load hits on the sandbox: the profile's `target.url`,
/// else the ingress controller (`ingress`: its address, when
/// `sandbox.ingress` is on), else the NodePort of `target.service`
/// (`node_port` finds it, or says why not).
fn sandbox_url(
    url: Option<&str>,
    ingress: Option<std::net::SocketAddr>,
    node_port: impl FnOnce() -> Result<std::net::SocketAddr, ChooseError>,
) -> Result<String, ChooseError> {
    Ok(match (url, ingress) {
        (Some(u), _) => u.to_string(),
        (None, Some(addr)) => format!("http://{addr}/"),
        (None, None) => format!("http://{}/", node_port()?),
    })
}

/// The sandbox config a profile asks for: its manifests (or the seed
/// scenario) and its cluster settings.
fn sandbox_config(
    s: &SandboxSection,
    base_dir: &Path,
    profile_file: &Path,
) -> Result<SandboxConfig, ChooseError> {
    let mut cfg = if s.manifests.is_empty() {
        SandboxConfig::seed()
    } else {
        SandboxConfig::default()
    };
    cfg.cluster.propagation_delay = s.propagation_delay;
    cfg.cluster.propagation_jitter = s.propagation_jitter;
    cfg.cluster.backoff_base = s.backoff_base;
    cfg.cluster.backoff_max = s.backoff_max;
    cfg.bookmark_interval = s.bookmark_interval;
    cfg.cluster.nodes = s.nodes;
    cfg.cluster.ingress_port = s.ingress.then_some(0);
    cfg.cluster.data_plane = s.data_plane;
    for rel in &s.manifests {
        let path = base_dir.join(rel);
        let text = std::fs::read_to_string(&path).map_err(|e| {
            ChooseError::Input(format!(
                "{}: sandbox.manifests: cannot read {}: {e}",
                profile_file.display(),
                path.display()
            ))
        })?;
        for doc in serde_norway::Deserializer::from_str(&text) {
            let value = <serde_json::Value as serde::Deserialize>::deserialize(doc)
                .map_err(|e| ChooseError::Input(format!("{}: {e}", path.display())))?;
            if let Some(m) = for_sandbox(value) {
                cfg.manifests.push(m);
            }
        }
    }
    if s.ingress && !cfg.manifests.iter().any(|m| m["kind"] == "Ingress") {
        let holding = if s.manifests.is_empty() {
            "the seed scenario (sandbox.manifests is empty) has none"
        } else {
            "none of sandbox.manifests defines one"
        };
        return Err(ChooseError::Input(format!(
            "{}: sandbox.ingress: true needs an Ingress (networking.k8s.io/v1) to route by, and {holding}; add one (deploy/examples/canary.yaml has a main and a canary Ingress) or remove sandbox.ingress",
            profile_file.display()
        )));
    }
    Ok(cfg)
}

/// A manifest as the sandbox takes it. ConfigMaps are left out (its pods
/// are simulated and read no files), and a Service's fixed `nodePort` is
/// dropped so the sandbox picks a free one: several sandboxes (parallel
/// tests, `baton demo`) must not fight over one port, and the run reads
/// the real port back from the sandbox.
fn for_sandbox(mut m: serde_json::Value) -> Option<serde_json::Value> {
    if m.is_null() || m["kind"] == "ConfigMap" {
        return None;
    }
    if m["kind"] == "Service"
        && let Some(ports) = m["spec"]["ports"].as_array_mut()
    {
        for p in ports {
            if let Some(o) = p.as_object_mut() {
                o.remove("nodePort");
            }
        }
    }
    Some(m)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn profile(cluster: &str, sandbox: bool) -> Profile {
        let text = format!(
            "name: t\ncluster: {cluster}\n{}target: {{service: web, url: 'http://127.0.0.1:1/'}}\nrollout: {{deployment: web, steps: [{{sleep: 1s}}]}}\n",
            if sandbox { "sandbox: {}\n" } else { "" }
        );
        crate::profile::parse(&text, Path::new("t.yaml"), &[]).unwrap()
    }

    fn real(
        r: Result<Resolved<'_>, String>,
    ) -> (
        Option<PathBuf>,
        Option<String>,
        Option<String>,
        &'static str,
    ) {
        match r {
            Ok(Resolved::Real {
                kubeconfig,
                context,
                namespace,
                because,
            }) => (kubeconfig, context, namespace, because),
            other => panic!("expected a real cluster, got {other:?}"),
        }
    }

    #[test]
    fn a_sandbox_profile_runs_on_the_simulator_only_when_nothing_names_a_cluster() {
        let p = profile("{namespace: web}", true);
        assert!(matches!(
            resolve(&p, &Flags::default()),
            Ok(Resolved::Sandbox { namespace, .. }) if namespace == "web"
        ));
        for (flags, because) in [
            (
                Flags {
                    context: Some("kind-kind".into()),
                    ..Flags::default()
                },
                "--context",
            ),
            (
                Flags {
                    kubeconfig: Some("kc".into()),
                    ..Flags::default()
                },
                "--kubeconfig",
            ),
            (
                Flags {
                    kubeconfig_env: true,
                    ..Flags::default()
                },
                "KUBECONFIG",
            ),
        ] {
            assert_eq!(real(resolve(&p, &flags)).3, because, "{flags:?}");
        }
        let p = profile("{context: staging}", true);
        assert_eq!(
            real(resolve(&p, &Flags::default())).3,
            "the profile's cluster.context"
        );
    }

    #[test]
    fn sandbox_flag_picks_the_simulator_whatever_else_says_and_needs_a_section() {
        let flags = Flags {
            sandbox: true,
            kubeconfig_env: true,
            ..Flags::default()
        };
        let p = profile("{}", true);
        assert!(matches!(
            resolve(&p, &flags),
            Ok(Resolved::Sandbox { namespace, .. }) if namespace == SANDBOX_NAMESPACE
        ));
        let e = resolve(&profile("{}", false), &flags).unwrap_err();
        assert!(e.contains("no `sandbox:` section"), "{e}");
    }

    #[test]
    fn the_namespace_is_the_flag_the_profile_or_the_contexts_own() {
        let p = profile("{}", false);
        assert_eq!(
            real(resolve(&p, &Flags::default())).2,
            None,
            "the context's"
        );
        let p = profile("{namespace: web}", false);
        assert_eq!(
            real(resolve(&p, &Flags::default())).2.as_deref(),
            Some("web")
        );
        let flags = Flags {
            namespace: Some("shop".into()),
            ..Flags::default()
        };
        assert_eq!(real(resolve(&p, &flags)).2.as_deref(), Some("shop"));
    }

    #[test]
    fn flags_override_the_profiles_cluster_section() {
        let p = profile(
            "{namespace: web, context: staging, kubeconfig: prof.kc}",
            false,
        );
        let (kubeconfig, context, _, _) = real(resolve(&p, &Flags::default()));
        assert_eq!(kubeconfig, Some("prof.kc".into()));
        assert_eq!(context.as_deref(), Some("staging"));
        let flags = Flags {
            kubeconfig: Some("flag.kc".into()),
            context: Some("prod".into()),
            ..Flags::default()
        };
        let (kubeconfig, context, _, _) = real(resolve(&p, &flags));
        assert_eq!(kubeconfig, Some("flag.kc".into()));
        assert_eq!(context.as_deref(), Some("prod"));
    }

    #[test]
    fn an_image_s_repository_is_its_name_without_tag_or_digest() {
        assert_eq!(
            image_repo("ghcr.io/baton-rollouts/baton:0.1.0"),
            "ghcr.io/baton-rollouts/baton"
        );
        assert_eq!(
            image_repo("registry:5000/team/baton:1.2"),
            "registry:5000/team/baton"
        );
        assert_eq!(
            image_repo("registry:5000/team/baton"),
            "registry:5000/team/baton"
        );
        assert_eq!(image_repo("baton@sha256:abc"), "baton");
    }

    #[test]
    fn the_url_is_the_profiles_else_the_ingress_else_the_services_node_port() {
        let ingress: std::net::SocketAddr = "127.0.0.1:31000".parse().unwrap();
        let node_port = || Ok("127.0.0.1:30080".parse().unwrap());
        let unused = || -> Result<std::net::SocketAddr, ChooseError> {
            panic!("not looked up when another URL is chosen")
        };
        let url = sandbox_url(Some("http://x/"), Some(ingress), unused).unwrap();
        assert_eq!(url, "http://x/");
        let url = sandbox_url(None, Some(ingress), unused).unwrap();
        assert_eq!(url, "http://127.0.0.1:31000/");
        let url = sandbox_url(None, None, node_port).unwrap();
        assert_eq!(url, "http://127.0.0.1:30080/");
        let e = sandbox_url(None, None, || {
            Err(ChooseError::Input("no such Service".into()))
        });
        assert!(matches!(e, Err(ChooseError::Input(m)) if m == "no such Service"));
    }

    fn section(yaml: &str) -> SandboxSection {
        let text = format!(
            "name: t\nsandbox: {yaml}\ntarget: {{service: web}}\nrollout: {{deployment: web, steps: [{{sleep: 1s}}]}}\n"
        );
        crate::profile::parse(&text, Path::new("t.yaml"), &[])
            .unwrap()
            .sandbox
            .unwrap()
    }

    #[test]
    fn sandbox_ingress_turns_the_ingress_controller_on_and_needs_an_ingress() {
        let dir = tempfile::tempdir().unwrap();
        let canary = Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/examples/canary.yaml");
        std::fs::copy(&canary, dir.path().join("canary.yaml")).unwrap();
        let profile = Path::new("p.yaml");
        let cfg = |yaml: &str| sandbox_config(&section(yaml), dir.path(), profile);
        assert_eq!(
            cfg("{manifests: [canary.yaml]}")
                .unwrap()
                .cluster
                .ingress_port,
            None,
            "off by default"
        );
        let on = cfg("{manifests: [canary.yaml], ingress: true}").unwrap();
        assert_eq!(on.cluster.ingress_port, Some(0), "a free port");
        let ingresses = on.manifests.iter().filter(|m| m["kind"] == "Ingress");
        assert_eq!(ingresses.count(), 2);

        let e = cfg("{ingress: true}").unwrap_err();
        assert!(matches!(e, ChooseError::Input(_)), "exit 2: {e:?}");
        let e = e.to_string();
        assert!(
            e.starts_with("p.yaml: sandbox.ingress: ") && e.contains("seed scenario"),
            "{e}"
        );
        std::fs::write(
            dir.path().join("app.yaml"),
            "apiVersion: v1\nkind: Service\nmetadata: {name: web}\n",
        )
        .unwrap();
        let e = cfg("{manifests: [app.yaml], ingress: true}")
            .unwrap_err()
            .to_string();
        assert!(e.contains("none of sandbox.manifests defines one"), "{e}");
    }

    #[test]
    fn the_sandbox_gets_no_configmaps_and_no_fixed_node_ports() {
        assert_eq!(for_sandbox(json!({"kind": "ConfigMap"})), None);
        assert_eq!(for_sandbox(serde_json::Value::Null), None);
        let svc = for_sandbox(
            json!({"kind": "Service", "spec": {"ports": [{"port": 80, "nodePort": 30080}]}}),
        );
        assert_eq!(
            svc,
            Some(json!({"kind": "Service", "spec": {"ports": [{"port": 80}]}}))
        );
    }
}
