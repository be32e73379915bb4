//! kubectl against the sandbox: the commands an SRE runs during a rollout.
//! Needs `kubectl` on PATH (Debian: `apt-get install kubernetes-client`);
//! without it these tests FAIL with that advice rather than pass silently.

mod api_support;

use std::process::Command;
use std::time::{Duration, Instant};

use api_support::*;
use baton_sandbox::{Sandbox, SandboxConfig};

struct Out {
    ok: bool,
    stdout: String,
    stderr: String,
}

fn kubectl_bin() -> String {
    let found = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join("kubectl").is_file()))
        .unwrap_or(false);
    assert!(
        found,
        "kubectl is not on PATH. Install it (Debian/Ubuntu: `sudo apt-get install kubernetes-client`) to run these tests."
    );
    "kubectl".into()
}

async fn kubectl(sb: &Sandbox, args: &[&str]) -> Out {
    let cache = sb.kubeconfig_path().with_file_name("kubectl-cache");
    let mut cmd = Command::new(kubectl_bin());
    cmd.arg("--kubeconfig")
        .arg(sb.kubeconfig_path())
        .arg("--cache-dir")
        .arg(&cache)
        .args(args);
    let out = tokio::task::spawn_blocking(move || cmd.output())
        .await
        .unwrap()
        .expect("kubectl runs");
    Out {
        ok: out.status.success(),
        stdout: String::from_utf8_lossy(&out.stdout).into(),
        stderr: String::from_utf8_lossy(&out.stderr).into(),
    }
}

async fn seed() -> Sandbox {
    let mut cfg = SandboxConfig::seed();
    cfg.cluster.propagation_delay = Duration::from_millis(100);
    start(cfg).await
}

/// Runs `args` until stdout contains `want` (bounded: 60 tries, 60 s).
async fn until(sb: &Sandbox, args: &[&str], want: &str) -> Out {
    let t0 = Instant::now();
    let mut last = kubectl(sb, args).await;
    for _ in 0..60 {
        if last.stdout.contains(want) || t0.elapsed() > Duration::from_secs(60) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
        last = kubectl(sb, args).await;
    }
    last
}

#[tokio::test]
async fn kubectl_get_pods_and_deployments_shows_the_seed_scenario() {
    let sb = seed().await;
    let out = kubectl(&sb, &["get", "deploy"]).await;
    assert!(out.ok, "{}", out.stderr);
    assert!(out.stdout.contains("web-server"), "{}", out.stdout);
    assert!(
        out.stdout.contains("READY"),
        "a server-side table: {}",
        out.stdout
    );
    let out = kubectl(
        &sb,
        &["get", "svc", "web-service", "-o", "jsonpath={.spec.type}"],
    )
    .await;
    assert_eq!(out.stdout, "NodePort", "{}", out.stderr);
    let out = until(&sb, &["get", "pods"], "web-server-").await;
    assert!(out.ok, "{}", out.stderr);
    assert!(
        out.stdout.contains("web-server-"),
        "pods of the seed deployment: {}{}",
        out.stdout,
        out.stderr
    );
    let out = kubectl(&sb, &["get", "deploy", "-o", "wide"]).await;
    assert!(
        out.stdout.contains("nginx:1.27") && out.stdout.contains("app=web"),
        "{}",
        out.stdout
    );
    let out = kubectl(&sb, &["get", "pods", "-o", "wide"]).await;
    assert!(
        out.stdout.contains("IP") && out.stdout.contains("127."),
        "{}",
        out.stdout
    );
    let out = kubectl(&sb, &["describe", "deployment", "web-server"]).await;
    assert!(out.ok, "{}", out.stderr);
    assert!(out.stdout.contains("nginx:1.27"), "{}", out.stdout);
    sb.shutdown().await;
}

#[tokio::test]
async fn kubectl_get_svc_shows_each_services_cluster_ip() {
    let sb = seed().await;
    let cip = sb.cluster_ip("web-service").expect("a ClusterIP");
    let out = kubectl(&sb, &["get", "svc"]).await;
    assert!(out.ok, "{}", out.stderr);
    let header = out.stdout.lines().next().unwrap_or("");
    assert!(header.contains("CLUSTER-IP"), "{}", out.stdout);
    let row = out
        .stdout
        .lines()
        .find(|l| l.starts_with("web-service "))
        .unwrap_or_else(|| panic!("{}", out.stdout));
    let cols: Vec<&str> = row.split_whitespace().collect();
    assert_eq!(cols[1], "NodePort", "{row}");
    assert_eq!(cols[2], cip.ip().to_string(), "{row}");
    let headless = "apiVersion: v1\nkind: Service\nmetadata: {name: web-headless}\nspec: {clusterIP: None, selector: {app: web}, ports: [{port: 80}]}\n";
    let file = sb.kubeconfig_path().with_file_name("headless.yaml");
    std::fs::write(&file, headless).unwrap();
    let out = kubectl(&sb, &["apply", "-f", file.to_str().unwrap()]).await;
    assert!(out.ok, "{}", out.stderr);
    let out = kubectl(&sb, &["get", "svc", "web-headless"]).await;
    let row = out
        .stdout
        .lines()
        .find(|l| l.starts_with("web-headless "))
        .unwrap_or_else(|| panic!("{}{}", out.stdout, out.stderr));
    assert_eq!(row.split_whitespace().nth(2), Some("None"), "{row}");
    sb.shutdown().await;
}

#[tokio::test]
async fn kubectl_applies_gets_and_annotates_ingresses() {
    let mut cfg = SandboxConfig::default();
    cfg.cluster.ingress_port = Some(0);
    let sb = start(cfg).await;
    let manifest = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../deploy/examples/canary.yaml"
    );
    let out = kubectl(&sb, &["apply", "-f", manifest]).await;
    assert!(out.ok, "apply: {}", out.stderr);
    assert!(
        out.stdout
            .contains("ingress.networking.k8s.io/web-canary created"),
        "{}",
        out.stdout
    );
    // ADDRESS is filled in once the ingress controller published it.
    let out = until(&sb, &["get", "ingress"], "127.0.0.1").await;
    assert!(out.ok, "{}", out.stderr);
    let header: Vec<&str> = out
        .stdout
        .lines()
        .next()
        .unwrap()
        .split_whitespace()
        .collect();
    assert_eq!(
        header,
        ["NAME", "CLASS", "HOSTS", "ADDRESS", "PORTS", "AGE"]
    );
    let web = out
        .stdout
        .lines()
        .find(|l| l.starts_with("web "))
        .expect("Ingress web listed");
    let cells: Vec<&str> = web.split_whitespace().collect();
    assert_eq!(
        cells[..5],
        ["web", "nginx", "*", "127.0.0.1", "80"],
        "{web}"
    );
    let out = kubectl(&sb, &["get", "ing", "web-canary"]).await;
    assert!(
        out.ok && out.stdout.contains("web-canary"),
        "short name: {}{}",
        out.stdout,
        out.stderr
    );

    let out = kubectl(
        &sb,
        &[
            "annotate",
            "ingress",
            "web-canary",
            "nginx.ingress.kubernetes.io/canary-weight=50",
            "--overwrite",
        ],
    )
    .await;
    assert!(out.ok, "annotate: {}", out.stderr);
    let out = kubectl(
        &sb,
        &[
            "get",
            "ingress",
            "web-canary",
            "-o",
            r"jsonpath={.metadata.annotations.nginx\.ingress\.kubernetes\.io/canary-weight}",
        ],
    )
    .await;
    assert_eq!(out.stdout, "50", "{}", out.stderr);
    let out = kubectl(
        &sb,
        &[
            "annotate",
            "ingress",
            "web-canary",
            "nginx.ingress.kubernetes.io/canary-weight=60",
        ],
    )
    .await;
    assert!(
        !out.ok,
        "without --overwrite an existing annotation is kept"
    );
    sb.shutdown().await;
}

#[tokio::test]
async fn kubectl_set_image_then_rollout_status_completes() {
    let sb = seed().await;
    let out = kubectl(
        &sb,
        &["set", "image", "deployment/web-server", "nginx=nginx:1.28"],
    )
    .await;
    assert!(out.ok, "set image: {}", out.stderr);
    let d = sb
        .store()
        .get_raw("Deployment", Some("default"), "web-server")
        .unwrap();
    assert_eq!(
        d["spec"]["template"]["spec"]["containers"][0]["image"],
        "nginx:1.28"
    );
    assert_eq!(d["metadata"]["generation"], 2);
    // Needs the controllers and kubelet (the cluster half) to do the rollout.
    let out = kubectl(
        &sb,
        &[
            "rollout",
            "status",
            "deployment/web-server",
            "--timeout=90s",
        ],
    )
    .await;
    assert!(out.ok, "rollout status: {}{}", out.stdout, out.stderr);
    assert!(
        out.stdout.contains("successfully rolled out"),
        "{}",
        out.stdout
    );
    sb.shutdown().await;
}

#[tokio::test]
async fn kubectl_scale_changes_replicas_through_the_scale_subresource() {
    let sb = seed().await;
    let out = kubectl(&sb, &["scale", "deployment/web-server", "--replicas=5"]).await;
    assert!(out.ok, "scale: {}", out.stderr);
    let d = sb
        .store()
        .get_raw("Deployment", Some("default"), "web-server")
        .unwrap();
    assert_eq!(d["spec"]["replicas"], 5);
    sb.shutdown().await;
}

#[tokio::test]
async fn kubectl_rollout_restart_history_undo_and_delete_pod_are_accepted() {
    let sb = seed().await;
    let out = kubectl(&sb, &["rollout", "restart", "deployment/web-server"]).await;
    assert!(out.ok, "restart: {}", out.stderr);
    let d = sb
        .store()
        .get_raw("Deployment", Some("default"), "web-server")
        .unwrap();
    assert!(
        d["spec"]["template"]["metadata"]["annotations"]["kubectl.kubernetes.io/restartedAt"]
            .is_string(),
        "{d}"
    );
    let out = kubectl(&sb, &["rollout", "history", "deployment/web-server"]).await;
    assert!(out.ok, "history: {}", out.stderr);
    let out = until(&sb, &["get", "pods", "-o", "name"], "pod/web-server-").await;
    let pod = out.stdout.lines().next().unwrap_or("").to_string();
    assert!(
        pod.starts_with("pod/web-server-"),
        "{}{}",
        out.stdout,
        out.stderr
    );
    // kubectl waits (a watch on the pod) until the kubelet has removed it.
    let out = kubectl(&sb, &["delete", &pod, "--timeout=60s"]).await;
    assert!(out.ok, "delete pod: {}", out.stderr);
    assert!(out.stdout.contains("deleted"), "{}", out.stdout);
    let name = pod.trim_start_matches("pod/");
    assert!(sb.store().get_raw("Pod", Some("default"), name).is_none());
    sb.shutdown().await;
}

#[tokio::test]
async fn kubectl_rollout_undo_brings_back_the_previous_image_as_a_new_revision() {
    let sb = seed().await;
    let out = kubectl(
        &sb,
        &["set", "image", "deployment/web-server", "nginx=nginx:1.28"],
    )
    .await;
    assert!(out.ok, "{}", out.stderr);
    let out = kubectl(
        &sb,
        &[
            "rollout",
            "status",
            "deployment/web-server",
            "--timeout=90s",
        ],
    )
    .await;
    assert!(out.ok, "{}{}", out.stdout, out.stderr);
    let out = kubectl(&sb, &["rollout", "undo", "deployment/web-server"]).await;
    assert!(out.ok, "undo: {}", out.stderr);
    let out = kubectl(
        &sb,
        &[
            "rollout",
            "status",
            "deployment/web-server",
            "--timeout=90s",
        ],
    )
    .await;
    assert!(out.ok, "{}{}", out.stdout, out.stderr);
    let out = kubectl(&sb, &["get", "deploy", "web-server", "-o", "jsonpath={.spec.template.spec.containers[0].image} {.metadata.annotations.deployment\\.kubernetes\\.io/revision}"]).await;
    assert_eq!(out.stdout, "nginx:1.27 3", "{}", out.stderr);
    let out = kubectl(&sb, &["rollout", "history", "deployment/web-server"]).await;
    assert!(out.stdout.contains('3'), "{}", out.stdout);
    sb.shutdown().await;
}

#[tokio::test]
async fn kubectl_auth_can_i_reports_deny_rules() {
    let mut cfg = SandboxConfig::seed();
    cfg.deny = vec![baton_sandbox::AccessRule {
        verb: "patch".into(),
        group: "apps".into(),
        resource: "deployments".into(),
    }];
    let sb = start(cfg).await;
    let out = kubectl(&sb, &["auth", "can-i", "patch", "deployments"]).await;
    assert!(out.stdout.starts_with("no"), "{}{}", out.stdout, out.stderr);
    let out = kubectl(&sb, &["auth", "can-i", "get", "deployments"]).await;
    assert_eq!(out.stdout.trim(), "yes", "{}", out.stderr);
    let out = kubectl(
        &sb,
        &["set", "image", "deployment/web-server", "nginx=nginx:1.28"],
    )
    .await;
    assert!(
        !out.ok && out.stderr.contains("is forbidden"),
        "{}",
        out.stderr
    );
    sb.shutdown().await;
}

#[tokio::test]
async fn kubectl_apply_create_diff_and_server_side_apply_work_with_field_validation() {
    let sb = seed().await;
    let dir = sb.kubeconfig_path().parent().unwrap().to_path_buf();
    let manifest = |replicas: u32, image: &str, extra: &str| {
        format!(
            "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: api\nspec:\n  replicas: {replicas}\n{extra}  selector: {{matchLabels: {{app: api}}}}\n  template:\n    metadata: {{labels: {{app: api}}}}\n    spec:\n      containers:\n      - name: api\n        image: {image}\n"
        )
    };
    let write = |name: &str, text: String| {
        let p = dir.join(name);
        std::fs::write(&p, text).unwrap();
        p.to_string_lossy().into_owned()
    };
    let v1 = write("v1.yaml", manifest(1, "nginx:1.27", ""));
    let v2 = write("v2.yaml", manifest(2, "nginx:1.28", ""));
    let bad = write("bad.yaml", manifest(1, "nginx:1.27", "  bogus: 3\n"));

    let out = kubectl(&sb, &["apply", "-f", &v1]).await;
    assert!(
        out.ok && out.stdout.contains("created"),
        "{}{}",
        out.stdout,
        out.stderr
    );
    let out = kubectl(&sb, &["diff", "-f", &v2]).await;
    assert!(
        out.stdout.contains("+  replicas: 2"),
        "{}{}",
        out.stdout,
        out.stderr
    );
    let out = kubectl(&sb, &["apply", "-f", &v2]).await;
    assert!(
        out.ok && out.stdout.contains("configured"),
        "{}{}",
        out.stdout,
        out.stderr
    );
    let d = sb
        .store()
        .get_raw("Deployment", Some("default"), "api")
        .unwrap();
    assert_eq!(d["spec"]["replicas"], 2);
    assert_eq!(
        d["spec"]["template"]["spec"]["containers"][0]["image"],
        "nginx:1.28"
    );
    let out = kubectl(&sb, &["apply", "--server-side", "-f", &v1]).await;
    assert!(out.ok, "{}{}", out.stdout, out.stderr);
    let d = sb
        .store()
        .get_raw("Deployment", Some("default"), "api")
        .unwrap();
    assert_eq!(d["spec"]["replicas"], 1);
    let out = kubectl(&sb, &["apply", "-f", &bad]).await;
    assert!(
        !out.ok && out.stderr.contains("unknown field \"spec.bogus\""),
        "{}{}",
        out.stdout,
        out.stderr
    );
    let out = kubectl(&sb, &["delete", "-f", &v1]).await;
    assert!(out.ok, "{}", out.stderr);
    let out = kubectl(&sb, &["create", "-f", &v1]).await;
    assert!(
        out.ok && out.stdout.contains("created"),
        "{}{}",
        out.stdout,
        out.stderr
    );
    sb.shutdown().await;
}

#[tokio::test]
async fn kubectl_get_all_and_logs_answer() {
    let sb = seed().await;
    let out = kubectl(&sb, &["get", "all"]).await;
    assert!(out.ok, "{}", out.stderr);
    assert!(
        out.stdout.contains("deployment.apps/web-server")
            && out.stdout.contains("service/web-service"),
        "{}",
        out.stdout
    );
    let out = until(&sb, &["get", "pods", "-o", "name"], "pod/web-server-").await;
    let pod = out.stdout.lines().next().unwrap_or("").to_string();
    let out = kubectl(&sb, &["logs", &pod]).await;
    assert!(
        out.ok && out.stdout.contains("simulated"),
        "{}{}",
        out.stdout,
        out.stderr
    );
    sb.shutdown().await;
}

/// Two Nodes, Deployment `web-server` (2 replicas, grace 1 s) and, when
/// given, a PodDisruptionBudget `web-pdb` with `pdb_spec` over `app=web`.
async fn two_nodes(pdb_spec: Option<serde_json::Value>) -> Sandbox {
    let mut cfg = SandboxConfig::default();
    cfg.cluster.propagation_delay = Duration::from_millis(100);
    cfg.cluster.nodes = 2;
    let mut web = baton_sandbox::config::seed_deployment();
    web["spec"]["replicas"] = 2.into();
    web["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] = 1.into();
    cfg.manifests = vec![web];
    if let Some(mut spec) = pdb_spec {
        spec["selector"] = serde_json::json!({"matchLabels": {"app": "web"}});
        cfg.manifests.push(
            serde_json::json!({"apiVersion": "policy/v1", "kind": "PodDisruptionBudget",
            "metadata": {"name": "web-pdb", "namespace": "default"}, "spec": spec}),
        );
    }
    start(cfg).await
}

#[tokio::test]
async fn kubectl_get_nodes_cordon_uncordon_and_drain_move_the_pods() {
    let sb = two_nodes(Some(serde_json::json!({"maxUnavailable": 1}))).await;
    let out = kubectl(&sb, &["get", "nodes"]).await;
    assert!(out.ok, "{}", out.stderr);
    for want in [
        "STATUS",
        "sandbox-node-1",
        "sandbox-node-2",
        "Ready",
        "v1.33.0-baton-sandbox",
    ] {
        assert!(out.stdout.contains(want), "{want}: {}", out.stdout);
    }
    let out = kubectl(&sb, &["describe", "node", "sandbox-node-1"]).await;
    assert!(out.ok, "describe node: {}", out.stderr);
    assert!(
        out.stdout.contains("Unschedulable:      false"),
        "{}",
        out.stdout
    );
    let out = until(
        &sb,
        &["describe", "pdb", "web-pdb"],
        "Allowed disruptions:  1",
    )
    .await;
    assert!(out.ok, "describe pdb: {}{}", out.stdout, out.stderr);
    let out = kubectl(&sb, &["cordon", "sandbox-node-2"]).await;
    assert!(out.ok, "{}", out.stderr);
    assert!(
        out.stdout.contains("node/sandbox-node-2 cordoned"),
        "{}",
        out.stdout
    );
    let out = kubectl(&sb, &["get", "node", "sandbox-node-2"]).await;
    assert!(
        out.stdout.contains("Ready,SchedulingDisabled"),
        "{}",
        out.stdout
    );
    let out = kubectl(&sb, &["uncordon", "sandbox-node-2"]).await;
    assert!(out.ok, "{}", out.stderr);
    assert!(
        out.stdout.contains("node/sandbox-node-2 uncordoned"),
        "{}",
        out.stdout
    );
    let node = sb.store().get_raw("Node", None, "sandbox-node-2").unwrap();
    assert!(node["spec"]["unschedulable"].is_null(), "{node}");

    let out = until(
        &sb,
        &["get", "pdb"],
        "web-pdb   N/A             1               1",
    )
    .await;
    assert!(
        out.stdout.contains("ALLOWED DISRUPTIONS"),
        "{}{}",
        out.stdout,
        out.stderr
    );
    let out = until(
        &sb,
        &[
            "get",
            "pods",
            "--field-selector",
            "spec.nodeName=sandbox-node-1",
            "-o",
            "name",
        ],
        "pod/web-server-",
    )
    .await;
    assert!(out.ok, "{}", out.stderr);
    let out = kubectl(
        &sb,
        &[
            "drain",
            "sandbox-node-1",
            "--ignore-daemonsets",
            "--delete-emptydir-data",
            "--timeout=60s",
        ],
    )
    .await;
    assert!(out.ok, "drain: {}{}", out.stdout, out.stderr);
    assert!(out.stdout.contains("evicted"), "{}", out.stdout);
    assert!(
        out.stdout.contains("node/sandbox-node-1 drained"),
        "{}",
        out.stdout
    );
    // The replacement runs on the other node; none is left on the drained one.
    let out = kubectl(
        &sb,
        &[
            "get",
            "pods",
            "--field-selector",
            "spec.nodeName=sandbox-node-1",
            "-o",
            "name",
        ],
    )
    .await;
    assert_eq!(out.stdout.trim(), "", "{}", out.stderr);
    let evictions = sb.ground_truth().evictions();
    assert!(!evictions.is_empty());
    assert!(
        evictions
            .iter()
            .all(|e| e.pdb.as_deref() == Some("web-pdb"))
    );
    sb.shutdown().await;
}

#[tokio::test]
async fn kubectl_drain_under_a_budget_allowing_nothing_retries_until_its_timeout() {
    let sb = two_nodes(Some(serde_json::json!({"minAvailable": 2}))).await;
    until(
        &sb,
        &["get", "pdb"],
        "web-pdb   2               N/A               0",
    )
    .await;
    let out = until(
        &sb,
        &[
            "get",
            "pods",
            "--field-selector",
            "spec.nodeName=sandbox-node-1",
            "-o",
            "name",
        ],
        "pod/web-server-",
    )
    .await;
    assert!(out.ok, "{}", out.stderr);
    let out = kubectl(
        &sb,
        &[
            "drain",
            "sandbox-node-1",
            "--ignore-daemonsets",
            "--delete-emptydir-data",
            "--timeout=8s",
        ],
    )
    .await;
    assert!(!out.ok, "the drain cannot finish: {}", out.stdout);
    let all = format!("{}{}", out.stdout, out.stderr);
    assert!(
        all.contains("Cannot evict pod as it would violate the pod's disruption budget."),
        "{all}"
    );
    assert!(all.contains("global timeout reached: 8s"), "{all}");
    let refusals = sb.ground_truth().evictions();
    assert!(refusals.len() >= 2, "retried: {refusals:?}");
    assert!(
        refusals
            .iter()
            .all(|e| serde_json::to_value(e.outcome).unwrap() == "refused")
    );
    // The node stays cordoned, as after any failed drain.
    let node = sb.store().get_raw("Node", None, "sandbox-node-1").unwrap();
    assert_eq!(node["spec"]["unschedulable"], true);
    sb.shutdown().await;
}

const HPA_MANIFEST: &str = "apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata:
  name: web-server
  annotations:
    sandbox.baton.dev/cpu-utilization: \"120\"
spec:
  scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: web-server}
  minReplicas: 2
  maxReplicas: 6
  metrics:
    - type: Resource
      resource: {name: cpu, target: {type: Utilization, averageUtilization: 50}}
  behavior:
    scaleDown: {stabilizationWindowSeconds: 0}
";

#[tokio::test]
async fn kubectl_applies_gets_describes_patches_and_autoscales_hpas() {
    let sb = seed().await;
    let file = sb.kubeconfig_path().with_file_name("hpa.yaml");
    std::fs::write(&file, HPA_MANIFEST).unwrap();
    let out = kubectl(&sb, &["apply", "-f", file.to_str().unwrap()]).await;
    assert!(out.ok, "apply: {}", out.stderr);
    assert!(
        out.stdout
            .contains("horizontalpodautoscaler.autoscaling/web-server created"),
        "{}",
        out.stdout
    );
    let out = kubectl(&sb, &["get", "hpa"]).await;
    assert!(out.ok, "{}", out.stderr);
    let header: Vec<&str> = out
        .stdout
        .lines()
        .next()
        .unwrap()
        .split_whitespace()
        .collect();
    assert_eq!(
        header,
        [
            "NAME",
            "REFERENCE",
            "TARGETS",
            "MINPODS",
            "MAXPODS",
            "REPLICAS",
            "AGE"
        ]
    );
    assert!(
        out.stdout.contains("Deployment/web-server") && out.stdout.contains("cpu: "),
        "{}",
        out.stdout
    );
    // The seed's nginx requests no CPU, so a utilisation means nothing:
    // the HPA says so, as a real one does.
    let out = until(
        &sb,
        &["describe", "hpa", "web-server"],
        "missing request for cpu",
    )
    .await;
    assert!(
        out.stdout.contains("FailedGetResourceMetric") && out.stdout.contains("Min replicas"),
        "{}{}",
        out.stdout,
        out.stderr
    );
    let out = kubectl(
        &sb,
        &[
            "patch",
            "hpa",
            "web-server",
            "--type=merge",
            "-p",
            r#"{"metadata":{"annotations":{"sandbox.baton.dev/cpu-utilization":"30"}}}"#,
        ],
    )
    .await;
    assert!(out.ok, "patch: {}", out.stderr);
    let out = kubectl(
        &sb,
        &[
            "get",
            "hpa",
            "web-server",
            "-o",
            r"jsonpath={.metadata.annotations.sandbox\.baton\.dev/cpu-utilization}",
        ],
    )
    .await;
    assert_eq!(out.stdout, "30", "{}", out.stderr);
    // A second apply (kubectl's strategic merge patch) changes what changed.
    let changed = HPA_MANIFEST
        .replace("maxReplicas: 6", "maxReplicas: 5")
        .replace("averageUtilization: 50", "averageUtilization: 70");
    std::fs::write(&file, changed).unwrap();
    let out = kubectl(&sb, &["apply", "-f", file.to_str().unwrap()]).await;
    assert!(out.ok, "re-apply: {}", out.stderr);
    let out = kubectl(
        &sb,
        &[
            "get",
            "hpa",
            "web-server",
            "-o",
            "jsonpath={.spec.maxReplicas}/{.spec.metrics[*].resource.target.averageUtilization}",
        ],
    )
    .await;
    assert_eq!(out.stdout, "5/70", "{}", out.stderr);
    let out = kubectl(&sb, &["delete", "hpa", "web-server"]).await;
    assert!(out.ok, "delete: {}", out.stderr);

    // kubectl autoscale sends protobuf (autoscaling/v2, else v1).
    let out = kubectl(
        &sb,
        &[
            "autoscale",
            "deployment",
            "web-server",
            "--min=2",
            "--max=6",
            "--cpu-percent=50",
        ],
    )
    .await;
    assert!(out.ok, "autoscale: {}", out.stderr);
    assert!(out.stdout.contains("autoscaled"), "{}", out.stdout);
    let out = kubectl(
        &sb,
        &[
            "get",
            "hpa",
            "web-server",
            "-o",
            "jsonpath={.spec.minReplicas}/{.spec.maxReplicas}/{.spec.metrics[0].resource.target.averageUtilization}/{.spec.scaleTargetRef.name}",
        ],
    )
    .await;
    assert_eq!(out.stdout, "2/6/50/web-server", "{}", out.stderr);
    sb.shutdown().await;
}
