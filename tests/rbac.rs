//! `deploy/rbac.yaml` (and, for the `drain` and `uncordon` steps,
//! `deploy/rbac-drain.yaml`) hold exactly what baton needs: a sandbox that
//! allows only their rules (as RBAC would) passes preflight for every
//! bundled profile, every step kind, `on_stall: undo` and a matrix's
//! restore, and refuses as soon as one rule is missing.

use baton::cluster::preflight::{
    Permission, extra_permissions, fleet_permissions, permissions_for, preflight,
};
use baton::cluster::steps::{OnStall, Step};
use baton_sandbox::{AccessRule, Sandbox, SandboxConfig};
use kube::Client;
use std::path::Path;

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The rules of the Role in `deploy/rbac.yaml` and of the ClusterRole in
/// `deploy/rbac-drain.yaml`, one (verb, group, resource) each.
fn role_rules() -> Vec<AccessRule> {
    let mut out = rules_of("deploy/rbac.yaml", "Role");
    out.extend(rules_of("deploy/rbac-drain.yaml", "ClusterRole"));
    out
}

fn rules_of(file: &str, kind: &str) -> Vec<AccessRule> {
    let text = std::fs::read_to_string(repo().join(file)).unwrap();
    let mut out = Vec::new();
    for doc in serde_norway::Deserializer::from_str(&text) {
        let v: serde_json::Value = serde::Deserialize::deserialize(doc).unwrap();
        if v["kind"] != kind {
            continue;
        }
        for rule in v["rules"].as_array().unwrap() {
            for g in rule["apiGroups"].as_array().unwrap() {
                for r in rule["resources"].as_array().unwrap() {
                    for verb in rule["verbs"].as_array().unwrap() {
                        out.push(AccessRule {
                            verb: verb.as_str().unwrap().into(),
                            group: g.as_str().unwrap().into(),
                            resource: r.as_str().unwrap().into(),
                        });
                    }
                }
            }
        }
    }
    assert!(!out.is_empty(), "{file} has a {kind}");
    out
}

async fn sandbox_allowing(rules: Vec<AccessRule>) -> (Sandbox, Client) {
    let mut cfg = SandboxConfig::seed();
    cfg.allow = Some(rules);
    let sb = Sandbox::start(cfg).await.expect("sandbox starts");
    let kc = kube::config::Kubeconfig::read_from(sb.kubeconfig_path()).unwrap();
    let kcfg = kube::Config::from_custom_kubeconfig(kc, &Default::default())
        .await
        .unwrap();
    (sb, Client::try_from(kcfg).unwrap())
}

/// Every permission baton asks for: each bundled profile's, one of every
/// step kind, on_stall: undo, the matrix's restore, and in-cluster load.
fn everything_baton_asks() -> Vec<Permission> {
    let mut perms = Vec::new();
    for entry in std::fs::read_dir(repo().join("profiles")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "yaml") {
            let loaded = baton::profile::load(&path, &[]).unwrap();
            perms.extend(permissions_for(&loaded.profile.rollout.steps));
            perms.extend(extra_permissions(loaded.profile.rollout.on_stall, true));
        }
    }
    // Any profile may load from the cluster.
    perms.extend(fleet_permissions());
    let every_kind: Vec<Step> = serde_norway::from_str(
        "- set_image: {image: x}\n- patch: {patch: {}}\n- restart\n- scale: {replicas: 2}\n\
         - delete_pod: {random: true}\n- undo\n- pause\n- resume\n- wait_rollout\n- wait_ready\n\
         - sleep: 1s\n- exec: {command: [true]}\n- await_rollout\n\
         - annotate: {change_cause: x}\n- drain: {node: n}\n- uncordon: {node: n}\n\
         - set_weight: {ingress: web-canary, weight: 10}\n",
    )
    .unwrap();
    assert_eq!(
        every_kind.len(),
        baton::cluster::steps::STEP_NAMES.len() - 1,
        "every step kind but apply (whose needs are its manifests')"
    );
    perms.extend(permissions_for(&every_kind));
    perms.extend(extra_permissions(OnStall::Undo, true));
    perms
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_roles_rules_pass_preflight_for_every_profile_and_step_kind() {
    let (sb, client) = sandbox_allowing(role_rules()).await;
    preflight(&client, "default", &everything_baton_asks())
        .await
        .expect("deploy/rbac.yaml allows everything baton asks for");
    sb.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_any_one_of_its_rules_preflight_names_what_is_missing() {
    let rules = role_rules();
    let asked = everything_baton_asks();
    for (i, dropped) in rules.iter().enumerate() {
        let mut fewer = rules.clone();
        fewer.remove(i);
        if fewer.contains(dropped) {
            // Granted twice (the Role in the namespace, the ClusterRole
            // everywhere): dropping one copy takes nothing away.
            continue;
        }
        let (sb, client) = sandbox_allowing(fewer).await;
        let e = preflight(&client, "default", &asked)
            .await
            .expect_err("a rule is missing");
        let msg = e.to_string();
        assert!(
            msg.contains(&dropped.verb)
                && msg.contains(dropped.resource.split('/').next().unwrap()),
            "without {dropped:?}: {msg}"
        );
        sb.shutdown().await;
    }
}
