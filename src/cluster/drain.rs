//! The `drain` and `uncordon` steps: what `kubectl drain
//! --ignore-daemonsets --delete-emptydir-data` and `kubectl uncordon` do,
//! as a step of a rollout, so a cluster upgrade's node drain is judged
//! like a rolling update: cordon the Node, evict every Pod on it through
//! the Eviction API (which refuses, 429, while a PodDisruptionBudget
//! would be violated: retried every 5 s until the step's timeout, each
//! refusal on the timeline), then wait for the Pods to be gone.
//!
//! What the drain does is told as [`Note`]s: lines of the step's output,
//! and each eviction accepted or refused (the step puts those of the
//! run's namespace on the timeline as `pod_evicted` / `eviction_refused`).
//!
//! Not for: watching Nodes or budgets for the timeline (`cluster::watch`),
//! or draining several Nodes at once (one after another, as kubectl does).

use super::preflight::Permission;
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::api::{DeleteParams, EvictParams, ListParams, Patch, PatchParams};
use kube::{Api, Client};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::time::Duration;

/// How long `kubectl drain` waits between evictions a budget refused.
pub const RETRY_EVERY: Duration = Duration::from_secs(5);
/// `drain`'s default timeout (kubectl's is infinite; a gate's is not).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(300);

/// Which Nodes: one by name, or every Node a label selector matches.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NodeTarget {
    Name(String),
    Selector(String),
}

impl std::fmt::Display for NodeTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            NodeTarget::Name(n) => f.write_str(n),
            NodeTarget::Selector(s) => write!(f, "-l {s}"),
        }
    }
}

/// `drain: {node: NAME | selector: "k=v", timeout: 5m, respect_pdb: true}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "DrainRaw", into = "DrainRaw")]
pub struct Drain {
    pub target: NodeTarget,
    pub timeout: Duration,
    /// Evict through the Eviction API, which honours PodDisruptionBudgets
    /// (kubectl's default); `false` deletes the Pods instead, as
    /// `kubectl drain --disable-eviction` does.
    pub respect_pdb: bool,
}

/// `uncordon: {node: NAME | selector: "k=v"}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "NodesRaw", into = "NodesRaw")]
pub struct Uncordon {
    pub target: NodeTarget,
}

#[derive(Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct NodesRaw {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    node: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    selector: Option<String>,
}

#[derive(Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct DrainRaw {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    node: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    selector: Option<String>,
    #[serde(with = "humantime_serde", default = "default_timeout")]
    timeout: Duration,
    #[serde(default = "yes")]
    respect_pdb: bool,
}

fn default_timeout() -> Duration {
    DEFAULT_TIMEOUT
}

fn yes() -> bool {
    true
}

fn target(node: Option<String>, selector: Option<String>) -> Result<NodeTarget, String> {
    match (node, selector) {
        (Some(n), None) if !n.is_empty() => Ok(NodeTarget::Name(n)),
        (None, Some(s)) if !s.is_empty() => Ok(NodeTarget::Selector(s)),
        _ => Err("give exactly one of `node: NAME` and `selector: \"key=value\"`".into()),
    }
}

fn raw_target(t: NodeTarget) -> (Option<String>, Option<String>) {
    match t {
        NodeTarget::Name(n) => (Some(n), None),
        NodeTarget::Selector(s) => (None, Some(s)),
    }
}

impl TryFrom<DrainRaw> for Drain {
    type Error = String;
    fn try_from(r: DrainRaw) -> Result<Self, String> {
        Ok(Drain {
            target: target(r.node, r.selector)?,
            timeout: r.timeout,
            respect_pdb: r.respect_pdb,
        })
    }
}

impl From<Drain> for DrainRaw {
    fn from(d: Drain) -> Self {
        let (node, selector) = raw_target(d.target);
        DrainRaw {
            node,
            selector,
            timeout: d.timeout,
            respect_pdb: d.respect_pdb,
        }
    }
}

impl TryFrom<NodesRaw> for Uncordon {
    type Error = String;
    fn try_from(r: NodesRaw) -> Result<Self, String> {
        Ok(Uncordon {
            target: target(r.node, r.selector)?,
        })
    }
}

impl From<Uncordon> for NodesRaw {
    fn from(u: Uncordon) -> Self {
        let (node, selector) = raw_target(u.target);
        NodesRaw { node, selector }
    }
}

/// What a drain needs to be allowed: read and cordon Nodes, find the Pods
/// on them in every namespace, and evict (or delete) them.
pub fn permissions(d: &Drain) -> Vec<Permission> {
    let mut v = vec![
        Permission::new("get", "", "nodes"),
        Permission::new("list", "", "nodes"),
        Permission::new("watch", "", "nodes"),
        Permission::new("patch", "", "nodes"),
        Permission::new("list", "", "pods"),
        Permission::new("get", "", "pods"),
    ];
    v.push(if d.respect_pdb {
        Permission::sub("create", "", "pods", "eviction")
    } else {
        Permission::new("delete", "", "pods")
    });
    v
}

pub fn uncordon_permissions() -> Vec<Permission> {
    vec![
        Permission::new("get", "", "nodes"),
        Permission::new("list", "", "nodes"),
        Permission::new("watch", "", "nodes"),
        Permission::new("patch", "", "nodes"),
    ]
}

/// A Pod on a drained Node, and whether the drain moves it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OnNode {
    pub namespace: String,
    pub name: String,
    pub uid: String,
    /// Why the drain leaves it (`kubectl drain --ignore-daemonsets` leaves
    /// DaemonSet Pods, and mirror Pods cannot be evicted); `None`: moved.
    pub left: Option<&'static str>,
}

/// The Pods a drain of a Node moves, and those it leaves with why.
/// Pure: the Node's Pods in, the plan out.
pub fn plan(pods: &[Pod]) -> Vec<OnNode> {
    pods.iter()
        .filter(|p| {
            // Finished Pods hold nothing up (kubectl deletes them; they
            // serve nothing either way).
            !matches!(
                p.status.as_ref().and_then(|s| s.phase.as_deref()),
                Some("Succeeded" | "Failed")
            )
        })
        .map(|p| {
            let m = &p.metadata;
            let daemon = m
                .owner_references
                .iter()
                .flatten()
                .any(|o| o.controller == Some(true) && o.kind == "DaemonSet");
            let mirror = m
                .annotations
                .as_ref()
                .is_some_and(|a| a.contains_key("kubernetes.io/config.mirror"));
            OnNode {
                namespace: m.namespace.clone().unwrap_or_default(),
                name: m.name.clone().unwrap_or_default(),
                uid: m.uid.clone().unwrap_or_default(),
                left: if daemon {
                    Some("a DaemonSet's (ignored, as --ignore-daemonsets does)")
                } else if mirror {
                    Some("a mirror Pod (a static Pod: not evictable)")
                } else {
                    None
                },
            }
        })
        .collect()
}

/// What a drain did, as it does it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Note {
    /// A line of the step's output.
    Line(String),
    /// The Eviction API accepted a Pod's eviction (or, without
    /// `respect_pdb`, the Pod was deleted: `evicted` false).
    Evicted {
        namespace: String,
        pod: String,
        node: String,
        evicted: bool,
    },
    /// The Eviction API refused (429): a budget would be violated.
    Refused {
        namespace: String,
        pod: String,
        message: String,
    },
}

/// Where a drain tells what it does.
pub type Say<'a> = &'a mut (dyn FnMut(Note) + Send);

/// The Nodes a target names, by name, sorted.
pub async fn nodes(client: &Client, t: &NodeTarget) -> Result<Vec<String>, String> {
    let api: Api<Node> = Api::all(client.clone());
    let names = match t {
        NodeTarget::Name(n) => {
            api.get(n)
                .await
                .map_err(|e| format!("node {n:?}: {}", api_message(&e)))?;
            vec![n.clone()]
        }
        NodeTarget::Selector(s) => {
            let list = api
                .list(&ListParams::default().labels(s))
                .await
                .map_err(|e| format!("list nodes -l {s}: {}", api_message(&e)))?;
            let mut v: Vec<String> = list
                .items
                .into_iter()
                .filter_map(|n| n.metadata.name)
                .collect();
            v.sort();
            v
        }
    };
    if names.is_empty() {
        return Err(format!("no node matches {t}"));
    }
    Ok(names)
}

/// Cordon (`unschedulable: true`) or uncordon one Node.
pub async fn set_unschedulable(client: &Client, node: &str, on: bool) -> Result<(), String> {
    let api: Api<Node> = Api::all(client.clone());
    let patch = serde_json::json!({"spec": {"unschedulable": on}});
    api.patch(node, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .map(|_| ())
        .map_err(|e| {
            format!(
                "{} node {node:?}: {}",
                if on { "cordon" } else { "uncordon" },
                api_message(&e)
            )
        })
}

fn api_message(e: &kube::Error) -> String {
    match e {
        kube::Error::Api(r) => format!("{} ({})", r.message, r.code),
        other => other.to_string(),
    }
}

/// Drain one Node: cordon it, evict (or delete) its Pods, retrying what a
/// budget refuses every [`RETRY_EVERY`], and wait until they are gone,
/// all within `until`. Says each cordon, eviction and (first) refusal.
pub async fn drain_node(
    client: &Client,
    node: &str,
    d: &Drain,
    until: tokio::time::Instant,
    say: Say<'_>,
) -> Result<(), String> {
    set_unschedulable(client, node, true).await?;
    say(Note::Line(format!("cordoned node {node}")));
    let all: Api<Pod> = Api::all(client.clone());
    let on_node = all
        .list(&ListParams::default().fields(&format!("spec.nodeName={node}")))
        .await
        .map_err(|e| format!("list pods on node {node:?}: {}", api_message(&e)))?;
    let planned = plan(&on_node.items);
    for p in planned.iter().filter(|p| p.left.is_some()) {
        say(Note::Line(format!(
            "left {}/{}: {}",
            p.namespace,
            p.name,
            p.left.unwrap_or_default()
        )));
    }
    let mut pending: Vec<&OnNode> = planned.iter().filter(|p| p.left.is_none()).collect();
    // Per Pod: how many times a budget refused it, and the last reason.
    let mut refused: BTreeMap<String, (u32, String)> = BTreeMap::new();
    while !pending.is_empty() {
        let mut still = Vec::new();
        for p in pending {
            let api: Api<Pod> = Api::namespaced(client.clone(), &p.namespace);
            let key = format!("{}/{}", p.namespace, p.name);
            let r = if d.respect_pdb {
                api.evict(&p.name, &EvictParams::default())
                    .await
                    .map(|_| ())
            } else {
                api.delete(&p.name, &DeleteParams::default())
                    .await
                    .map(|_| ())
            };
            match r {
                Ok(()) => {
                    say(Note::Line(format!(
                        "{} {key}",
                        if d.respect_pdb { "evicted" } else { "deleted" }
                    )));
                    say(Note::Evicted {
                        namespace: p.namespace.clone(),
                        pod: p.name.clone(),
                        node: node.to_string(),
                        evicted: d.respect_pdb,
                    });
                }
                Err(kube::Error::Api(e)) if e.code == 404 => {}
                Err(kube::Error::Api(e)) if e.code == 429 => {
                    let n = refused.entry(key.clone()).or_insert((0, String::new()));
                    n.0 += 1;
                    n.1.clone_from(&e.message);
                    if n.0 == 1 {
                        say(Note::Line(format!(
                            "eviction of {key} refused (will retry every {} s): {}",
                            RETRY_EVERY.as_secs(),
                            e.message
                        )));
                    }
                    say(Note::Refused {
                        namespace: p.namespace.clone(),
                        pod: p.name.clone(),
                        message: e.message.clone(),
                    });
                    still.push(p);
                }
                Err(e) => return Err(format!("evict {key}: {}", api_message(&e))),
            }
        }
        pending = still;
        if pending.is_empty() {
            break;
        }
        if tokio::time::Instant::now() + RETRY_EVERY > until {
            let names: Vec<String> = pending
                .iter()
                .map(|p| {
                    let key = format!("{}/{}", p.namespace, p.name);
                    match refused.get(&key) {
                        Some((n, why)) => format!("{key} (refused {n} time(s): {why})"),
                        None => key,
                    }
                })
                .collect();
            return Err(format!(
                "{} pod(s) on node {node} not evicted within {}: {}",
                names.len(),
                humantime::format_duration(d.timeout),
                names.join("; ")
            ));
        }
        tokio::time::sleep(RETRY_EVERY).await;
    }
    // Evicted means deleting: wait until each is gone (or replaced by a
    // Pod of the same name, which is another Pod).
    for p in planned.iter().filter(|p| p.left.is_none()) {
        let api: Api<Pod> = Api::namespaced(client.clone(), &p.namespace);
        loop {
            match api.get_opt(&p.name).await {
                Ok(None) => break,
                Ok(Some(now)) if now.metadata.uid.as_deref() != Some(p.uid.as_str()) => break,
                Ok(Some(_)) => {}
                Err(e) => {
                    return Err(format!(
                        "get pod {}/{}: {}",
                        p.namespace,
                        p.name,
                        api_message(&e)
                    ));
                }
            }
            if tokio::time::Instant::now() >= until {
                return Err(format!(
                    "pod {}/{} was evicted but is still terminating after {}",
                    p.namespace,
                    p.name,
                    humantime::format_duration(d.timeout)
                ));
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    say(Note::Line(format!("drained node {node}")));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;

    fn pod(name: &str, owner: Option<&str>, phase: &str) -> Pod {
        let mut p = Pod::default();
        p.metadata.name = Some(name.into());
        p.metadata.namespace = Some("default".into());
        p.metadata.uid = Some(format!("uid-{name}"));
        p.metadata.owner_references = owner.map(|kind| {
            vec![OwnerReference {
                kind: kind.into(),
                controller: Some(true),
                ..Default::default()
            }]
        });
        p.status = Some(k8s_openapi::api::core::v1::PodStatus {
            phase: Some(phase.into()),
            ..Default::default()
        });
        p
    }

    #[test]
    fn a_drain_moves_replicaset_pods_and_leaves_daemonsets_and_mirrors_with_why() {
        let mut mirror = pod("kube-apiserver-n1", None, "Running");
        mirror.metadata.annotations =
            Some([("kubernetes.io/config.mirror".to_string(), "x".to_string())].into());
        let pods = [
            pod("web-1", Some("ReplicaSet"), "Running"),
            pod("agent-x", Some("DaemonSet"), "Running"),
            mirror,
            pod("job-done", Some("Job"), "Succeeded"),
            pod("bare", None, "Pending"),
        ];
        let p = plan(&pods);
        let moved: Vec<&str> = p
            .iter()
            .filter(|p| p.left.is_none())
            .map(|p| p.name.as_str())
            .collect();
        assert_eq!(moved, ["web-1", "bare"]);
        let left: Vec<&str> = p
            .iter()
            .filter(|p| p.left.is_some())
            .map(|p| p.name.as_str())
            .collect();
        assert_eq!(left, ["agent-x", "kube-apiserver-n1"]);
    }

    #[test]
    fn a_drain_names_one_node_or_a_selector_never_both_or_none() {
        let d: Drain = serde_norway::from_str("{node: n1}").unwrap();
        assert_eq!(d.target, NodeTarget::Name("n1".into()));
        assert_eq!(d.timeout, DEFAULT_TIMEOUT);
        assert!(d.respect_pdb);
        let d: Drain =
            serde_norway::from_str("{selector: \"pool=a\", timeout: 90s, respect_pdb: false}")
                .unwrap();
        assert_eq!(d.target, NodeTarget::Selector("pool=a".into()));
        assert_eq!(d.timeout, Duration::from_secs(90));
        assert!(!d.respect_pdb);
        for bad in ["{}", "{node: a, selector: b}", "{node: \"\"}"] {
            let e = serde_norway::from_str::<Drain>(bad).unwrap_err();
            assert!(e.to_string().contains("exactly one of"), "{bad}: {e}");
        }
        let e = serde_norway::from_str::<Drain>("{node: a, grace: 3s}").unwrap_err();
        assert!(e.to_string().contains("grace"), "{e}");
    }

    #[test]
    fn eviction_needs_the_eviction_subresource_and_deletion_needs_delete() {
        let mut d: Drain = serde_norway::from_str("{node: n1}").unwrap();
        let p = permissions(&d);
        assert!(p.contains(&Permission::sub("create", "", "pods", "eviction")));
        assert!(p.contains(&Permission::new("patch", "", "nodes")));
        d.respect_pdb = false;
        assert!(permissions(&d).contains(&Permission::new("delete", "", "pods")));
    }
}
