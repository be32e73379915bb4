//! The Deployment's own termination settings as they were before the run
//! (read from `cluster/deployment.before.yaml`), so that a remedy never
//! asks for what the spec already has, says "raise" only when the value is
//! below what is needed, and comes with the patch to paste.
//!
//! Pure: a Deployment in, the facts out; patches as YAML text.

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Container;
use serde_json::json;
use std::time::Duration;

/// Kubernetes' default `terminationGracePeriodSeconds`.
pub const DEFAULT_GRACE_S: i64 = 30;

#[derive(Clone, Debug, PartialEq)]
pub struct SpecFacts {
    /// The Deployment's name, for `kubectl patch deployment NAME`.
    pub name: String,
    /// The first container: a remedy's patch applies to it.
    pub container: String,
    /// `terminationGracePeriodSeconds` (30 when unset, as Kubernetes).
    pub grace_period_s: i64,
    /// The first container's preStop sleep, when its hook is one
    /// (`exec: [sleep, N]`, `[sh, -c, "sleep N"]`, or the `sleep` action).
    pub prestop_sleep: Option<Duration>,
    /// It has a preStop hook that is not a plain sleep.
    pub other_prestop: bool,
    /// `spec.replicas` (1 when unset, as Kubernetes).
    pub replicas: i32,
    /// The Deployment's `spec.selector.matchLabels`: what a budget for its
    /// Pods selects.
    pub match_labels: std::collections::BTreeMap<String, String>,
}

impl SpecFacts {
    pub fn of(d: &Deployment) -> Option<SpecFacts> {
        let pod = d.spec.template.spec.as_ref()?;
        let first = pod.containers.first()?;
        let (prestop_sleep, other_prestop) = prestop_of(first);
        Some(SpecFacts {
            name: d.metadata.name.clone().unwrap_or_default(),
            container: first.name.clone(),
            grace_period_s: pod
                .termination_grace_period_seconds
                .unwrap_or(DEFAULT_GRACE_S),
            prestop_sleep,
            other_prestop,
            replicas: d.spec.replicas.unwrap_or(1),
            match_labels: d.spec.selector.match_labels.clone().unwrap_or_default(),
        })
    }

    /// A PodDisruptionBudget named `name` for the Deployment's Pods that
    /// lets `max_unavailable` of them be evicted at once, as YAML for
    /// `kubectl apply -f`.
    pub fn budget_manifest(&self, name: &str, max_unavailable: i32) -> String {
        yaml(json!({
            "apiVersion": "policy/v1",
            "kind": "PodDisruptionBudget",
            "metadata": {"name": name},
            "spec": {
                "maxUnavailable": max_unavailable,
                "selector": {"matchLabels": self.match_labels},
            },
        }))
    }

    /// The strategic-merge patch that sets the replicas, as YAML.
    pub fn replicas_patch(&self, replicas: i32) -> String {
        yaml(json!({"spec": {"replicas": replicas}}))
    }

    /// The strategic-merge patch that sets a preStop sleep of `sleep`
    /// (and the grace period, when given), as YAML.
    pub fn prestop_patch(&self, sleep: Duration, grace_s: Option<i64>) -> String {
        let secs = format_secs(sleep);
        let mut spec = json!({
            "containers": [{
                "name": self.container,
                "lifecycle": {"preStop": {"exec": {"command": ["sleep", secs]}}},
            }]
        });
        if let Some(g) = grace_s {
            spec["terminationGracePeriodSeconds"] = json!(g);
        }
        yaml(json!({"spec": {"template": {"spec": spec}}}))
    }

    /// The patch that sets `terminationGracePeriodSeconds`.
    pub fn grace_patch(&self, grace_s: i64) -> String {
        yaml(json!({"spec": {"template": {"spec": {"terminationGracePeriodSeconds": grace_s}}}}))
    }
}

fn yaml(v: serde_json::Value) -> String {
    serde_norway::to_string(&v).unwrap_or_default()
}

/// `1.2` or `2`: what `sleep` takes.
fn format_secs(d: Duration) -> String {
    let ms = d.as_millis();
    if ms.is_multiple_of(1000) {
        (ms / 1000).to_string()
    } else {
        format!("{:.1}", d.as_secs_f64())
    }
}

fn prestop_of(c: &Container) -> (Option<Duration>, bool) {
    let Some(hook) = c.lifecycle.as_ref().and_then(|l| l.pre_stop.as_ref()) else {
        return (None, false);
    };
    if let Some(s) = &hook.sleep {
        return (Some(Duration::from_secs(s.seconds.max(0) as u64)), false);
    }
    let command: Vec<&str> = hook
        .exec
        .as_ref()
        .and_then(|e| e.command.as_ref())
        .map(|c| c.iter().map(String::as_str).collect())
        .unwrap_or_default();
    let words: Vec<&str> = match command.as_slice() {
        [sh, "-c", script] if sh.ends_with("sh") => script.split_whitespace().collect(),
        other => other.to_vec(),
    };
    match words.as_slice() {
        [sleep, n] if sleep.ends_with("sleep") => match n.trim_end_matches('s').parse::<f64>() {
            Ok(secs) if secs.is_finite() && secs >= 0.0 => {
                (Some(Duration::from_secs_f64(secs)), false)
            }
            _ => (None, true),
        },
        _ => (None, true),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn deployment(yaml: &str) -> Deployment {
        serde_norway::from_str(yaml).unwrap()
    }

    const BASE: &str = "metadata: {name: web}\nspec:\n  selector: {}\n  template:\n    spec:\n";

    #[test]
    fn no_hook_and_no_grace_period_are_kubernetes_defaults() {
        let d = deployment(&format!("{BASE}      containers: [{{name: nginx}}]\n"));
        let f = SpecFacts::of(&d).unwrap();
        assert_eq!(f.grace_period_s, 30);
        assert_eq!((f.prestop_sleep, f.other_prestop), (None, false));
        assert_eq!(f.container, "nginx");
    }

    #[test]
    fn a_prestop_sleep_is_read_in_each_form() {
        for (hook, secs) in [
            ("{exec: {command: [sleep, '5']}}", 5.0),
            ("{exec: {command: [/bin/sh, -c, 'sleep 2.5']}}", 2.5),
            ("{sleep: {seconds: 3}}", 3.0),
        ] {
            let d = deployment(&format!(
                "{BASE}      terminationGracePeriodSeconds: 60\n      containers: [{{name: app, lifecycle: {{preStop: {hook}}}}}]\n"
            ));
            let f = SpecFacts::of(&d).unwrap();
            assert_eq!(
                f.prestop_sleep,
                Some(Duration::from_secs_f64(secs)),
                "{hook}"
            );
            assert_eq!(f.grace_period_s, 60);
        }
        let d = deployment(&format!(
            "{BASE}      containers: [{{name: app, lifecycle: {{preStop: {{exec: {{command: [nginx, -s, quit]}}}}}}}}]\n"
        ));
        let f = SpecFacts::of(&d).unwrap();
        assert_eq!((f.prestop_sleep, f.other_prestop), (None, true));
    }

    #[test]
    fn patches_are_strategic_merge_yaml_for_the_first_container() {
        let d = deployment(&format!("{BASE}      containers: [{{name: nginx}}]\n"));
        let f = SpecFacts::of(&d).unwrap();
        let p = f.prestop_patch(Duration::from_millis(1200), Some(45));
        let v: serde_json::Value = serde_norway::from_str(&p).unwrap();
        let spec = &v["spec"]["template"]["spec"];
        assert_eq!(spec["containers"][0]["name"], "nginx");
        assert_eq!(
            spec["containers"][0]["lifecycle"]["preStop"]["exec"]["command"],
            json!(["sleep", "1.2"])
        );
        assert_eq!(spec["terminationGracePeriodSeconds"], 45);
        let g: serde_json::Value = serde_norway::from_str(&f.grace_patch(90)).unwrap();
        assert_eq!(
            g["spec"]["template"]["spec"]["terminationGracePeriodSeconds"],
            90
        );
    }
}
