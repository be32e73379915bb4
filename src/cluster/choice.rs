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
use crate::profile::{LoadedProfile, Profile, SandboxSection};
use baton_sandbox::{Sandbox, SandboxConfig};
use std::path::{Path, PathBuf};

/// The cluster flags of the command line (`--kubeconfig`, `--context`,
/// `-n`), each overriding the profile's `cluster` section.
#[derive(Clone, Debug, Default)]
pub struct Flags {
    pub kubeconfig: Option<PathBuf>,
    pub context: Option<String>,
    pub namespace: Option<String>,
}

/// Where a run goes, decided before anything connects.
#[derive(Clone, Debug, PartialEq)]
pub enum Resolved<'a> {
    /// The embedded sandbox, from the profile's `sandbox` section.
    Sandbox {
        section: &'a SandboxSection,
        namespace: String,
    },
    /// A real cluster, as kubectl would pick it from these.
    Real {
        kubeconfig: Option<PathBuf>,
        context: Option<String>,
        namespace: String,
    },
}

/// The rule: a profile without a `sandbox` section runs on a real
/// cluster; one with it runs on the sandbox unless `--kubeconfig` or
/// `--context` names a real one. Flags override the profile's `cluster`
/// section; the namespace defaults to the profile's.
pub fn resolve<'a>(profile: &'a Profile, flags: &Flags) -> Resolved<'a> {
    let namespace = flags
        .namespace
        .clone()
        .unwrap_or_else(|| profile.cluster.namespace.clone());
    match &profile.sandbox {
        Some(section) if flags.kubeconfig.is_none() && flags.context.is_none() => {
            Resolved::Sandbox { section, namespace }
        }
        _ => Resolved::Real {
            kubeconfig: flags
                .kubeconfig
                .clone()
                .or_else(|| profile.cluster.kubeconfig.clone()),
            context: flags
                .context
                .clone()
                .or_else(|| profile.cluster.context.clone()),
            namespace,
        },
    }
}

/// Connect to a real cluster as [`resolve`] found it.
pub async fn connect_real(
    kubeconfig: Option<&Path>,
    context: Option<&str>,
    namespace: &str,
) -> Result<Cluster, ConnectError> {
    connect::connect(kubeconfig, context, Some(namespace)).await
}

/// The run's cluster, and the sandbox behind it when there is one (kept
/// so it lives as long as the run, and for its ground truth).
pub struct Chosen {
    pub cluster: Cluster,
    pub sandbox: Option<Sandbox>,
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
    let (section, ns) = match resolve(p, flags) {
        Resolved::Real {
            kubeconfig,
            context,
            namespace,
        } => {
            let cluster = connect_real(kubeconfig.as_deref(), context.as_deref(), &namespace)
                .await
                .map_err(|e| ChooseError::Input(e.to_string()))?;
            let url = p.target.url.clone().ok_or_else(|| {
                ChooseError::Input(format!(
                    "{}: target.url: is required on a real cluster (the NodePort, Ingress or LoadBalancer URL to load); add it or pass --set target.url=http://...",
                    loaded.file.display()
                ))
            })?;
            return Ok(Chosen {
                cluster,
                sandbox: None,
                label: context.map_or("current kubeconfig context".into(), |c| {
                    format!("context {c}")
                }),
                url,
            });
        }
        Resolved::Sandbox { section, namespace } => (section, namespace),
    };
    let ns = ns.as_str();
    let cfg = sandbox_config(section, &loaded.base_dir, &loaded.file)?;
    let sandbox = Sandbox::start(cfg)
        .await
        .map_err(|e| ChooseError::Unavailable(format!("cannot start the sandbox: {e:#}")))?;
    let kubeconfig = sandbox.kubeconfig_path().to_path_buf();
    let cluster = connect::connect(Some(&kubeconfig), None, Some(ns))
        .await
        .map_err(|e| ChooseError::Unavailable(format!("cannot reach the sandbox: {e}")))?;
    let url = match &p.target.url {
        Some(u) => u.clone(),
        None => {
            let svc = format!("{ns}/{}", p.target.service);
            let addr = sandbox.node_port(&svc).ok_or_else(|| {
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
            })?;
            format!("http://{addr}/")
        }
    };
    Ok(Chosen {
        cluster,
        sandbox: Some(sandbox),
        label: "sandbox (simulator)".into(),
        url,
    })
}

/// The sandbox config a profile asks for: its manifests (or the seed
/// scenario) and its propagation delay.
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

    #[test]
    fn a_profile_with_a_sandbox_section_runs_there_unless_a_flag_names_a_real_cluster() {
        let p = profile("{namespace: web}", true);
        assert!(matches!(
            resolve(&p, &Flags::default()),
            Resolved::Sandbox { namespace, .. } if namespace == "web"
        ));
        for flags in [
            Flags {
                context: Some("kind-kind".into()),
                ..Flags::default()
            },
            Flags {
                kubeconfig: Some("kc".into()),
                ..Flags::default()
            },
        ] {
            assert!(
                matches!(resolve(&p, &flags), Resolved::Real { .. }),
                "{flags:?}"
            );
        }
    }

    #[test]
    fn flags_override_the_profiles_cluster_section() {
        let p = profile(
            "{namespace: web, context: staging, kubeconfig: prof.kc}",
            false,
        );
        assert_eq!(
            resolve(&p, &Flags::default()),
            Resolved::Real {
                kubeconfig: Some("prof.kc".into()),
                context: Some("staging".into()),
                namespace: "web".into(),
            }
        );
        let flags = Flags {
            kubeconfig: Some("flag.kc".into()),
            context: Some("prod".into()),
            namespace: Some("shop".into()),
        };
        assert_eq!(
            resolve(&p, &flags),
            Resolved::Real {
                kubeconfig: Some("flag.kc".into()),
                context: Some("prod".into()),
                namespace: "shop".into(),
            }
        );
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
