//! Writes the kubeconfig that points kubectl and kube-rs at a sandbox:
//! plain HTTP on loopback, a token user (the sandbox accepts any token),
//! context `baton-sandbox`, namespace `default`.

use std::path::Path;

/// The context name in every kubeconfig the sandbox writes.
pub const CONTEXT: &str = "baton-sandbox";

/// The kubeconfig YAML for a sandbox serving at `server`
/// (`http://127.0.0.1:PORT`).
pub fn render(server: &str) -> String {
    [
        "# Written by baton's sandbox, a SIMULATOR of a Kubernetes cluster (not a cluster).",
        "apiVersion: v1",
        "kind: Config",
        "clusters:",
        &format!("- name: {CONTEXT}"),
        "  cluster:",
        &format!("    server: {server}"),
        "users:",
        &format!("- name: {CONTEXT}"),
        "  user:",
        "    token: baton-sandbox",
        "contexts:",
        &format!("- name: {CONTEXT}"),
        "  context:",
        &format!("    cluster: {CONTEXT}"),
        &format!("    user: {CONTEXT}"),
        "    namespace: default",
        &format!("current-context: {CONTEXT}"),
        "preferences: {}",
        "",
    ]
    .join("\n")
}

/// Writes the kubeconfig for `server` to `path`.
pub fn write(path: &Path, server: &str) -> std::io::Result<()> {
    if let Some(dir) = path.parent()
        && !dir.as_os_str().is_empty()
    {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(path, render(server))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kubeconfig_parses_as_yaml_with_the_sandbox_context() {
        let y: serde_json::Value =
            serde_norway::from_str(&render("http://127.0.0.1:1234")).unwrap();
        assert_eq!(y["current-context"], CONTEXT);
        assert_eq!(
            y["clusters"][0]["cluster"]["server"],
            "http://127.0.0.1:1234"
        );
        assert_eq!(y["contexts"][0]["context"]["namespace"], "default");
        assert_eq!(y["users"][0]["user"]["token"], "baton-sandbox");
    }
}
