//! Before a run touches anything: does baton's identity have every
//! permission the steps, the watches and the snapshots need, and do the
//! Deployment and Service exist? Each permission is asked with a
//! SelfSubjectAccessReview (what `kubectl auth can-i` does), and every
//! missing one is reported at once, as an RBAC rule a person can paste.
//!
//! Not for: running the steps ([`super::steps`]) or handling a 403 that
//! happens anyway mid-run.

use super::steps::Step;
use futures::future::join_all;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::authorization::v1::{
    ResourceAttributes, SelfSubjectAccessReview, SelfSubjectAccessReviewSpec,
};
use k8s_openapi::api::core::v1::Service;
use kube::api::PostParams;
use kube::{Api, Client};
use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

/// One verb on one resource (in the run's namespace).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Permission {
    pub verb: String,
    /// API group: `""` for core, `apps`, `discovery.k8s.io`, ...
    pub group: String,
    pub resource: String,
    /// `scale`, `status`, ... or `""`.
    pub subresource: String,
}

impl Permission {
    pub fn new(verb: &str, group: &str, resource: &str) -> Self {
        Permission {
            verb: verb.into(),
            group: group.into(),
            resource: resource.into(),
            subresource: String::new(),
        }
    }

    pub fn sub(verb: &str, group: &str, resource: &str, subresource: &str) -> Self {
        Permission {
            subresource: subresource.into(),
            ..Permission::new(verb, group, resource)
        }
    }

    /// The resource as an RBAC rule names it: `deployments/scale`.
    fn rbac_resource(&self) -> String {
        if self.subresource.is_empty() {
            self.resource.clone()
        } else {
            format!("{}/{}", self.resource, self.subresource)
        }
    }
}

/// `patch deployments.apps`, `delete pods`, `patch deployments.apps/scale`
/// (kubectl auth can-i's way of naming a resource).
impl fmt::Display for Permission {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.verb, self.resource)?;
        if !self.group.is_empty() {
            write!(f, ".{}", self.group)?;
        }
        if !self.subresource.is_empty() {
            write!(f, "/{}", self.subresource)?;
        }
        Ok(())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum PreflightError {
    #[error("{}", missing_message(namespace, missing))]
    Missing {
        namespace: String,
        missing: Vec<Permission>,
    },
    #[error(
        "not found in namespace {namespace:?}: {} (check --namespace / the profile's cluster.namespace, and the names in the profile)",
        missing.join(", ")
    )]
    NotFound {
        namespace: String,
        missing: Vec<String>,
    },
    #[error("cannot ask the API server what baton may do (SelfSubjectAccessReview): {0}")]
    Review(#[source] kube::Error),
    #[error("cannot read {what} in namespace {namespace:?}: {source}")]
    Read {
        what: String,
        namespace: String,
        source: kube::Error,
    },
    #[error("apply {}: {reason}", file.display())]
    Manifest { file: PathBuf, reason: String },
}

/// `missing: patch deployments.apps, delete pods in namespace "web"`, then
/// the Role rules that grant them, ready to paste.
fn missing_message(namespace: &str, missing: &[Permission]) -> String {
    let list: Vec<String> = missing.iter().map(|p| p.to_string()).collect();
    format!(
        "missing: {} in namespace {namespace:?}\nadd these rules to a Role in {namespace:?} bound to baton's identity:\n{}",
        list.join(", "),
        rbac_rules(missing)
    )
}

/// The permissions as RBAC `rules:` entries, one per (group, resource),
/// verbs merged, in a stable order.
pub fn rbac_rules(perms: &[Permission]) -> String {
    let mut rules: BTreeMap<(String, String), Vec<String>> = BTreeMap::new();
    for p in perms {
        let verbs = rules
            .entry((p.group.clone(), p.rbac_resource()))
            .or_default();
        if !verbs.contains(&p.verb) {
            verbs.push(p.verb.clone());
        }
    }
    let mut out = String::new();
    for ((group, resource), verbs) in rules {
        let verbs: Vec<String> = verbs.iter().map(|v| format!("{v:?}")).collect();
        out.push_str(&format!(
            "- apiGroups: [{group:?}]\n  resources: [{resource:?}]\n  verbs: [{}]\n",
            verbs.join(", ")
        ));
    }
    out
}

/// What the watches (`get`, `list`, `watch` on Pods, EndpointSlices,
/// ReplicaSets, Deployments, Events, PodDisruptionBudgets,
/// HorizontalPodAutoscalers) and the snapshots (the Service) need,
/// whatever the steps.
pub fn base_permissions() -> Vec<Permission> {
    let mut v = Vec::new();
    for (group, resource) in [
        ("", "pods"),
        ("discovery.k8s.io", "endpointslices"),
        ("apps", "replicasets"),
        ("apps", "deployments"),
        ("", "events"),
        ("policy", "poddisruptionbudgets"),
        ("autoscaling", "horizontalpodautoscalers"),
    ] {
        for verb in ["get", "list", "watch"] {
            v.push(Permission::new(verb, group, resource));
        }
    }
    v.push(Permission::new("get", "", "services"));
    v
}

/// Everything a run with these steps needs: [`base_permissions`] plus
/// what each step writes. `apply` is counted as a patch of the Deployment;
/// [`manifest_permissions`] adds the other objects its files hold.
pub fn permissions_for(steps: &[Step]) -> Vec<Permission> {
    let mut v = base_permissions();
    for step in steps {
        let p = match step {
            Step::SetImage(_)
            | Step::Patch(_)
            | Step::Restart(_)
            | Step::Pause(_)
            | Step::Resume(_)
            | Step::Undo(_)
            | Step::Annotate(super::steps::Annotate { object: None, .. })
            | Step::Apply(_) => Permission::new("patch", "apps", "deployments"),
            Step::Annotate(super::steps::Annotate {
                object: Some(o), ..
            }) => o.patch_permission(),
            Step::SetWeight(w) => w.object().patch_permission(),
            Step::Scale(_) => Permission::sub("patch", "apps", "deployments", "scale"),
            Step::DeletePod(_) => Permission::new("delete", "", "pods"),
            Step::Drain(d) => {
                v.extend(super::drain::permissions(d));
                continue;
            }
            Step::Uncordon(_) => {
                v.extend(super::drain::uncordon_permissions());
                continue;
            }
            // `exec` runs with the same credentials, doing what its
            // command does, which baton cannot know: its permissions are
            // the command's to need.
            Step::WaitRollout(_)
            | Step::WaitReady(_)
            | Step::Sleep(_)
            | Step::AwaitRollout(_)
            | Step::Exec(_) => continue,
        };
        v.push(p);
    }
    dedup(v)
}

/// What a run needs beyond its steps: `on_stall: undo` patches the
/// Deployment back (whatever the steps are), and `baton matrix` on a real
/// cluster puts it back as found with a replace (`update`).
pub fn extra_permissions(on_stall: super::steps::OnStall, restored: bool) -> Vec<Permission> {
    let mut v = Vec::new();
    if on_stall == super::steps::OnStall::Undo {
        v.push(Permission::new("patch", "apps", "deployments"));
    }
    if restored {
        v.push(Permission::new("update", "apps", "deployments"));
    }
    v
}

/// What load from the cluster (`load.from: cluster`) needs beyond a run
/// from here: the workers' Job created, watched and deleted, their Pods
/// found and attached to (the records come back over `pods/attach`), and
/// the Service read for its ClusterIP.
pub fn fleet_permissions() -> Vec<Permission> {
    vec![
        Permission::new("create", "batch", "jobs"),
        Permission::new("get", "batch", "jobs"),
        Permission::new("delete", "batch", "jobs"),
        Permission::new("list", "", "pods"),
        Permission::new("get", "", "pods"),
        Permission::new("delete", "", "pods"),
        Permission::sub("create", "", "pods", "attach"),
        Permission::new("get", "", "services"),
    ]
}

/// The `exec` steps whose program cannot be found, as the step would
/// look for it (on `PATH`, or relative to the profile's directory).
pub fn exec_problems(steps: &[Step], base_dir: &Path) -> Vec<String> {
    steps
        .iter()
        .enumerate()
        .filter_map(|(i, s)| match s {
            Step::Exec(e) => match e.command.first() {
                None => Some(format!("step {}: exec: the command is empty", i + 1)),
                Some(program) => super::exec::find(program, base_dir)
                    .err()
                    .map(|why| format!("step {}: exec: {why}", i + 1)),
            },
            _ => None,
        })
        .collect()
}

fn dedup(v: Vec<Permission>) -> Vec<Permission> {
    let mut seen = std::collections::HashSet::new();
    v.into_iter().filter(|p| seen.insert(p.clone())).collect()
}

/// The resource (plural) and group of a kind as `apply` will meet it: the
/// common built-in kinds by table, others by Kubernetes' usual rule
/// (lower case, plus `s`). Pure.
pub fn resource_of(api_version: &str, kind: &str) -> (String, String) {
    let group = api_version
        .rsplit_once('/')
        .map_or("", |(g, _)| g)
        .to_string();
    let known = match kind {
        "Ingress" => Some("ingresses"),
        "NetworkPolicy" => Some("networkpolicies"),
        "PodDisruptionBudget" => Some("poddisruptionbudgets"),
        "HorizontalPodAutoscaler" => Some("horizontalpodautoscalers"),
        "Endpoints" => Some("endpoints"),
        _ => None,
    };
    let resource = known.map_or_else(|| format!("{}s", kind.to_lowercase()), str::to_string);
    (resource, group)
}

/// Every object the steps' `apply` files hold (relative to `base_dir`),
/// with the file it came from.
fn applied_objects(
    steps: &[Step],
    base_dir: &Path,
) -> Result<Vec<(PathBuf, serde_json::Value)>, PreflightError> {
    let mut out = Vec::new();
    for step in steps {
        let Step::Apply(a) = step else { continue };
        let file = base_dir.join(&a.file);
        let bad = |reason: String| PreflightError::Manifest {
            file: file.clone(),
            reason,
        };
        let text =
            std::fs::read_to_string(&file).map_err(|e| bad(format!("cannot read it: {e}")))?;
        for doc in super::steps::parse_manifests(&text).map_err(bad)? {
            out.push((file.clone(), doc));
        }
    }
    Ok(out)
}

/// `patch` on every object the steps' `apply` files hold (relative to
/// `base_dir`), for [`preflight`].
pub fn manifest_permissions(
    steps: &[Step],
    base_dir: &Path,
) -> Result<Vec<Permission>, PreflightError> {
    let v = applied_objects(steps, base_dir)?
        .iter()
        .map(|(_, doc)| {
            let (resource, group) = resource_of(
                doc["apiVersion"].as_str().unwrap_or_default(),
                doc["kind"].as_str().unwrap_or_default(),
            );
            Permission::new("patch", &group, &resource)
        })
        .collect();
    Ok(dedup(v))
}

/// Teardown deletes what setup's `apply` steps create and reads it until
/// it is gone: `delete` and `get` on every kind their manifests hold.
pub fn teardown_permissions(
    setup: &[Step],
    base_dir: &Path,
) -> Result<Vec<Permission>, PreflightError> {
    let mut v = Vec::new();
    for (_, doc) in applied_objects(setup, base_dir)? {
        let (resource, group) = resource_of(
            doc["apiVersion"].as_str().unwrap_or_default(),
            doc["kind"].as_str().unwrap_or_default(),
        );
        v.push(Permission::new("delete", &group, &resource));
        v.push(Permission::new("get", &group, &resource));
    }
    Ok(dedup(v))
}

/// `create` too for every object an `apply` step would create: the API
/// server authorises a server-side apply of an object that does not exist
/// yet as a create as well as a patch. Reads each object (one GET, writes
/// nothing); one this client may not read counts as absent, so the answer
/// errs towards asking.
pub async fn apply_create_permissions(
    client: &Client,
    namespace: &str,
    steps: &[Step],
    base_dir: &Path,
) -> Result<Vec<Permission>, PreflightError> {
    use kube::api::DynamicObject;
    use kube::discovery::Scope;
    let mut v = Vec::new();
    for (file, doc) in applied_objects(steps, base_dir)? {
        let bad = |reason: String| PreflightError::Manifest {
            file: file.clone(),
            reason,
        };
        let gvk = super::steps::gvk_of(&doc);
        let (ar, caps) = kube::discovery::pinned_kind(client, &gvk)
            .await
            .map_err(|e| {
                bad(format!(
                    "the cluster does not serve {} {}: {e}",
                    doc["apiVersion"].as_str().unwrap_or("?"),
                    gvk.kind
                ))
            })?;
        let api: Api<DynamicObject> = match caps.scope {
            Scope::Namespaced => Api::namespaced_with(client.clone(), namespace, &ar),
            Scope::Cluster => Api::all_with(client.clone(), &ar),
        };
        let name = doc["metadata"]["name"].as_str().unwrap_or_default();
        let absent = match api.get_opt(name).await {
            Ok(found) => found.is_none(),
            Err(kube::Error::Api(s)) => s.code == 403,
            Err(_) => false,
        };
        if absent {
            v.push(Permission::new("create", &ar.group, &ar.plural));
        }
    }
    Ok(dedup(v))
}

/// Ask, for each permission, whether baton may (SelfSubjectAccessReview in
/// `namespace`); `Err(Missing)` lists every one it may not. Writes nothing.
pub async fn preflight(
    client: &Client,
    namespace: &str,
    perms: &[Permission],
) -> Result<(), PreflightError> {
    let api: Api<SelfSubjectAccessReview> = Api::all(client.clone());
    let asks = perms.iter().map(|p| {
        let review = SelfSubjectAccessReview {
            spec: SelfSubjectAccessReviewSpec {
                resource_attributes: Some(ResourceAttributes {
                    namespace: Some(namespace.into()),
                    verb: Some(p.verb.clone()),
                    group: Some(p.group.clone()),
                    resource: Some(p.resource.clone()),
                    subresource: (!p.subresource.is_empty()).then(|| p.subresource.clone()),
                    ..Default::default()
                }),
                ..Default::default()
            },
            ..Default::default()
        };
        let api = api.clone();
        async move { api.create(&PostParams::default(), &review).await }
    });
    let mut missing = Vec::new();
    for (p, answer) in perms.iter().zip(join_all(asks).await) {
        let answer = answer.map_err(PreflightError::Review)?;
        if !answer.status.is_some_and(|s| s.allowed) {
            missing.push(p.clone());
        }
    }
    if missing.is_empty() {
        Ok(())
    } else {
        Err(PreflightError::Missing {
            namespace: namespace.into(),
            missing,
        })
    }
}

/// The Deployment (and the Service, if the run names one) exist; both are
/// named in one error when they do not.
pub async fn check_targets(
    client: &Client,
    namespace: &str,
    deployment: &str,
    service: Option<&str>,
    steps: &[Step],
) -> Result<(), PreflightError> {
    let mut missing = Vec::new();
    let what = format!("deployment {deployment:?}");
    match read_opt::<Deployment>(client, namespace, deployment, &what).await? {
        None => missing.push(what),
        Some(d) => missing.extend(container_problems(steps, &d)),
    }
    if let Some(service) = service {
        let what = format!("service {service:?}");
        if read_opt::<Service>(client, namespace, service, &what)
            .await?
            .is_none()
        {
            missing.push(what);
        }
    }
    all_found(namespace, missing)
}

/// The Deployments and Services watched beside the target
/// (`target.also_watch`) exist; every one missing is named in one error.
pub async fn check_also_watched(
    client: &Client,
    namespace: &str,
    also: &[super::watch::Workload],
) -> Result<(), PreflightError> {
    let mut missing = Vec::new();
    for w in also {
        let what = format!("deployment {:?} (target.also_watch)", w.deployment);
        if read_opt::<Deployment>(client, namespace, &w.deployment, &what)
            .await?
            .is_none()
        {
            missing.push(what);
        }
        let what = format!("service {:?} (target.also_watch)", w.service);
        if read_opt::<Service>(client, namespace, &w.service, &what)
            .await?
            .is_none()
        {
            missing.push(what);
        }
    }
    all_found(namespace, missing)
}

/// `name` in `namespace`, `None` when it does not exist; `what` names it
/// in the error when it cannot be read.
async fn read_opt<K>(
    client: &Client,
    namespace: &str,
    name: &str,
    what: &str,
) -> Result<Option<K>, PreflightError>
where
    K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope>
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug,
    K::DynamicType: Default,
{
    Api::<K>::namespaced(client.clone(), namespace)
        .get_opt(name)
        .await
        .map_err(|source| PreflightError::Read {
            what: what.to_string(),
            namespace: namespace.into(),
            source,
        })
}

/// `Ok` when nothing is `missing`, else one error naming all of it.
fn all_found(namespace: &str, missing: Vec<String>) -> Result<(), PreflightError> {
    if missing.is_empty() {
        Ok(())
    } else {
        Err(PreflightError::NotFound {
            namespace: namespace.into(),
            missing,
        })
    }
}

/// The `set_image` steps whose container the Deployment does not have
/// (or, unnamed, cannot be told apart), found now rather than after the
/// baseline and warmup. Steps after an `apply` or `patch` are not
/// checked: those may add the container.
pub fn container_problems(steps: &[Step], d: &Deployment) -> Vec<String> {
    let name = d.metadata.name.clone().unwrap_or_default();
    let have = super::rollout::container_names(d);
    let mut out = Vec::new();
    for step in steps {
        match step {
            Step::Apply(_) | Step::Patch(_) => break,
            Step::SetImage(s) => match &s.container {
                Some(c) if !have.contains(&c.as_str()) => out.push(format!(
                    "container {c:?} in deployment {name:?} (it has: {})",
                    have.join(", ")
                )),
                None if have.len() != 1 => out.push(format!(
                    "which container of deployment {name:?} to set_image (it has: {}; say `container:`)",
                    have.join(", ")
                )),
                _ => {}
            },
            _ => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn steps(yaml: &str) -> Vec<Step> {
        serde_norway::from_str(yaml).unwrap()
    }

    #[test]
    fn the_watches_and_snapshots_need_reads_whatever_the_steps() {
        let p = permissions_for(&[]);
        for (verb, group, resource) in [
            ("watch", "", "pods"),
            ("list", "discovery.k8s.io", "endpointslices"),
            ("watch", "apps", "replicasets"),
            ("get", "apps", "deployments"),
            ("watch", "", "events"),
            ("get", "", "services"),
        ] {
            assert!(
                p.contains(&Permission::new(verb, group, resource)),
                "{verb} {resource}"
            );
        }
        assert!(!p.iter().any(|p| p.verb == "patch" || p.verb == "delete"));
    }

    #[test]
    fn each_step_adds_the_verb_it_writes_with_once() {
        let p = permissions_for(&steps(
            "- set_image: {image: x}\n- restart: {}\n- scale: {replicas: 2}\n- delete_pod: {random: true}\n- sleep: 1s\n",
        ));
        let writes: Vec<String> = p
            .iter()
            .filter(|p| !["get", "list", "watch"].contains(&p.verb.as_str()))
            .map(|p| p.to_string())
            .collect();
        assert_eq!(
            writes,
            [
                "patch deployments.apps",
                "patch deployments.apps/scale",
                "delete pods"
            ]
        );
    }

    #[test]
    fn the_missing_message_lists_all_and_gives_pasteable_rules() {
        let m = missing_message(
            "web",
            &[
                Permission::new("patch", "apps", "deployments"),
                Permission::new("delete", "", "pods"),
                Permission::sub("patch", "apps", "deployments", "scale"),
                Permission::new("get", "apps", "deployments"),
            ],
        );
        assert!(
            m.starts_with(
                "missing: patch deployments.apps, delete pods, patch deployments.apps/scale, get deployments.apps in namespace \"web\"\n"
            ),
            "{m}"
        );
        assert!(
            m.contains(
                "- apiGroups: [\"apps\"]\n  resources: [\"deployments\"]\n  verbs: [\"patch\", \"get\"]\n"
            ),
            "{m}"
        );
        assert!(
            m.contains("- apiGroups: [\"\"]\n  resources: [\"pods\"]\n  verbs: [\"delete\"]\n"),
            "{m}"
        );
        assert!(m.contains("resources: [\"deployments/scale\"]"), "{m}");
        // The rules are YAML a person can paste under `rules:`.
        let parsed: serde_json::Value =
            serde_norway::from_str(m.split_once(":\n").unwrap().1).unwrap();
        assert_eq!(parsed.as_array().unwrap().len(), 3);
    }

    #[test]
    fn kinds_map_to_their_resources_and_groups() {
        assert_eq!(
            resource_of("apps/v1", "Deployment"),
            ("deployments".into(), "apps".into())
        );
        assert_eq!(
            resource_of("v1", "ConfigMap"),
            ("configmaps".into(), "".into())
        );
        assert_eq!(resource_of("v1", "Service"), ("services".into(), "".into()));
        assert_eq!(
            resource_of("networking.k8s.io/v1", "Ingress"),
            ("ingresses".into(), "networking.k8s.io".into())
        );
    }

    #[test]
    fn apply_files_add_a_patch_per_kind() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("m.yaml"),
            "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: a}\n---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: b}\n",
        )
        .unwrap();
        let p = manifest_permissions(&steps("- apply: {file: m.yaml}\n"), dir.path()).unwrap();
        assert_eq!(
            p,
            [
                Permission::new("patch", "apps", "deployments"),
                Permission::new("patch", "", "configmaps")
            ]
        );
        let e =
            manifest_permissions(&steps("- apply: {file: gone.yaml}\n"), dir.path()).unwrap_err();
        assert!(e.to_string().contains("gone.yaml"), "{e}");
    }
}
