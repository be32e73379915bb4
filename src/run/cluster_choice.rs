//! Which cluster a run talks to: the embedded sandbox (started here, from
//! the profile's `sandbox` section) or a real one chosen the way kubectl
//! chooses; and the URL the load hits.

use crate::cluster::connect::{self, Cluster};
use crate::profile::{LoadedProfile, SandboxSection};
use baton_sandbox::{Sandbox, SandboxConfig};
use std::path::Path;

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

/// Pick and connect. `kubeconfig`/`context` from the command line select a
/// real cluster even when the profile has a `sandbox` section.
pub async fn choose(
    loaded: &LoadedProfile,
    kubeconfig: Option<&Path>,
    context: Option<&str>,
    namespace: Option<&str>,
) -> Result<Chosen, ChooseError> {
    let p = &loaded.profile;
    let real = kubeconfig.is_some() || context.is_some() || p.sandbox.is_none();
    if real {
        let kubeconfig = kubeconfig.or(p.cluster.kubeconfig.as_deref());
        let context = context.or(p.cluster.context.as_deref());
        let namespace = namespace.unwrap_or(&p.cluster.namespace);
        let cluster = connect::connect(kubeconfig, context, Some(namespace))
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
    let section = p.sandbox.as_ref().expect("checked above");
    let cfg = sandbox_config(section, &loaded.base_dir, &loaded.file)?;
    let sandbox = Sandbox::start(cfg)
        .await
        .map_err(|e| ChooseError::Unavailable(format!("cannot start the sandbox: {e:#}")))?;
    let kubeconfig = sandbox.kubeconfig_path().to_path_buf();
    let ns = namespace.unwrap_or(&p.cluster.namespace);
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
    use super::for_sandbox;
    use serde_json::json;

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
