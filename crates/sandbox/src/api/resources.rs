//! The resources the sandbox serves, and the discovery documents built from
//! them (`/api`, `/apis`, `/api/v1`, `/apis/<group>/<version>`).

use serde_json::{Value, json};

/// One resource the API server knows.
#[derive(Debug)]
pub struct ResourceDef {
    pub group: &'static str,
    pub version: &'static str,
    pub plural: &'static str,
    pub singular: &'static str,
    pub kind: &'static str,
    pub namespaced: bool,
    pub verbs: &'static [&'static str],
    pub short_names: &'static [&'static str],
    /// The store kind holding the objects; `None` for virtual resources
    /// (SelfSubjectAccessReview).
    pub store_kind: Option<&'static str>,
    /// Subresources: (name, kind, group of that kind, version, verbs).
    pub subresources: &'static [Sub],
}

#[derive(Debug)]
pub struct Sub {
    pub name: &'static str,
    pub kind: &'static str,
    pub group: &'static str,
    pub version: &'static str,
    pub verbs: &'static [&'static str],
}

const CRUD: &[&str] = &[
    "create", "delete", "get", "list", "patch", "update", "watch",
];
const READ: &[&str] = &["get", "list", "watch"];
const STATUS: Sub = Sub {
    name: "status",
    kind: "",
    group: "",
    version: "",
    verbs: &["get", "patch", "update"],
};

impl ResourceDef {
    /// `pods`, `deployments.apps`: how Kubernetes names a resource in messages.
    pub fn qualified(&self) -> String {
        if self.group.is_empty() {
            self.plural.to_string()
        } else {
            format!("{}.{}", self.plural, self.group)
        }
    }

    /// `Pod`, `Deployment.apps`: how Kubernetes names a kind in messages.
    pub fn kind_qualified(&self) -> String {
        if self.group.is_empty() {
            self.kind.to_string()
        } else {
            format!("{}.{}", self.kind, self.group)
        }
    }

    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.to_string()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    pub fn allows(&self, verb: &str) -> bool {
        self.verbs.contains(&verb)
    }

    pub fn sub(&self, name: &str) -> Option<&Sub> {
        self.subresources.iter().find(|s| s.name == name)
    }
}

/// Every resource served, in discovery order.
pub static RESOURCES: &[ResourceDef] = &[
    ResourceDef {
        group: "",
        version: "v1",
        plural: "namespaces",
        singular: "namespace",
        kind: "Namespace",
        namespaced: false,
        verbs: &[
            "create", "delete", "get", "list", "patch", "update", "watch",
        ],
        short_names: &["ns"],
        store_kind: Some("Namespace"),
        subresources: &[STATUS],
    },
    ResourceDef {
        group: "",
        version: "v1",
        plural: "nodes",
        singular: "node",
        kind: "Node",
        namespaced: false,
        verbs: CRUD,
        short_names: &["no"],
        store_kind: Some("Node"),
        subresources: &[STATUS],
    },
    ResourceDef {
        group: "",
        version: "v1",
        plural: "pods",
        singular: "pod",
        kind: "Pod",
        namespaced: true,
        verbs: CRUD,
        short_names: &["po"],
        store_kind: Some("Pod"),
        subresources: &[
            STATUS,
            Sub {
                name: "log",
                kind: "Pod",
                group: "",
                version: "",
                verbs: &["get"],
            },
            Sub {
                name: "attach",
                kind: "PodAttachOptions",
                group: "",
                version: "",
                verbs: &["create", "get"],
            },
            Sub {
                name: "eviction",
                kind: "Eviction",
                group: "policy",
                version: "v1",
                verbs: &["create"],
            },
        ],
    },
    ResourceDef {
        group: "",
        version: "v1",
        plural: "services",
        singular: "service",
        kind: "Service",
        namespaced: true,
        verbs: CRUD,
        short_names: &["svc"],
        store_kind: Some("Service"),
        subresources: &[STATUS],
    },
    ResourceDef {
        group: "",
        version: "v1",
        plural: "events",
        singular: "event",
        kind: "Event",
        namespaced: true,
        verbs: CRUD,
        short_names: &["ev"],
        store_kind: Some("Event"),
        subresources: &[],
    },
    ResourceDef {
        group: "apps",
        version: "v1",
        plural: "deployments",
        singular: "deployment",
        kind: "Deployment",
        namespaced: true,
        verbs: CRUD,
        short_names: &["deploy"],
        store_kind: Some("Deployment"),
        subresources: &[
            Sub {
                name: "scale",
                kind: "Scale",
                group: "autoscaling",
                version: "v1",
                verbs: &["get", "patch", "update"],
            },
            STATUS,
        ],
    },
    ResourceDef {
        group: "apps",
        version: "v1",
        plural: "replicasets",
        singular: "replicaset",
        kind: "ReplicaSet",
        namespaced: true,
        verbs: CRUD,
        short_names: &["rs"],
        store_kind: Some("ReplicaSet"),
        subresources: &[STATUS],
    },
    ResourceDef {
        group: "discovery.k8s.io",
        version: "v1",
        plural: "endpointslices",
        singular: "endpointslice",
        kind: "EndpointSlice",
        namespaced: true,
        verbs: READ,
        short_names: &[],
        store_kind: Some("EndpointSlice"),
        subresources: &[],
    },
    ResourceDef {
        group: "networking.k8s.io",
        version: "v1",
        plural: "ingresses",
        singular: "ingress",
        kind: "Ingress",
        namespaced: true,
        verbs: CRUD,
        short_names: &["ing"],
        store_kind: Some("Ingress"),
        subresources: &[STATUS],
    },
    ResourceDef {
        group: "events.k8s.io",
        version: "v1",
        plural: "events",
        singular: "event",
        kind: "Event",
        namespaced: true,
        verbs: &["create", "get", "list", "watch"],
        short_names: &[],
        store_kind: Some("Event"),
        subresources: &[],
    },
    ResourceDef {
        group: "policy",
        version: "v1",
        plural: "poddisruptionbudgets",
        singular: "poddisruptionbudget",
        kind: "PodDisruptionBudget",
        namespaced: true,
        verbs: CRUD,
        short_names: &["pdb"],
        store_kind: Some("PodDisruptionBudget"),
        subresources: &[STATUS],
    },
    // autoscaling/v2 first: the stored version, and the one `for_kind`
    // finds. autoscaling/v1 is the same objects converted on the way in
    // and out (`api::autoscaling`), as Kubernetes serves both.
    ResourceDef {
        group: "autoscaling",
        version: "v2",
        plural: "horizontalpodautoscalers",
        singular: "horizontalpodautoscaler",
        kind: "HorizontalPodAutoscaler",
        namespaced: true,
        verbs: CRUD,
        short_names: &["hpa"],
        store_kind: Some("HorizontalPodAutoscaler"),
        subresources: &[STATUS],
    },
    ResourceDef {
        group: "autoscaling",
        version: "v1",
        plural: "horizontalpodautoscalers",
        singular: "horizontalpodautoscaler",
        kind: "HorizontalPodAutoscaler",
        namespaced: true,
        verbs: CRUD,
        short_names: &["hpa"],
        store_kind: Some("HorizontalPodAutoscaler"),
        subresources: &[STATUS],
    },
    ResourceDef {
        group: "batch",
        version: "v1",
        plural: "jobs",
        singular: "job",
        kind: "Job",
        namespaced: true,
        verbs: CRUD,
        short_names: &[],
        store_kind: Some("Job"),
        subresources: &[STATUS],
    },
    ResourceDef {
        group: "authorization.k8s.io",
        version: "v1",
        plural: "selfsubjectaccessreviews",
        singular: "selfsubjectaccessreview",
        kind: "SelfSubjectAccessReview",
        namespaced: false,
        verbs: &["create"],
        short_names: &[],
        store_kind: None,
        subresources: &[],
    },
];

/// The API groups other than core, in discovery order.
pub const GROUPS: &[&str] = &[
    "apps",
    "events.k8s.io",
    "discovery.k8s.io",
    "networking.k8s.io",
    "policy",
    "authorization.k8s.io",
    "autoscaling",
    "batch",
];

/// The versions served of a group (core or not), preferred first: `v1`
/// for all but `autoscaling`, which has `v2` (preferred) and `v1`.
pub fn versions(group: &str) -> &'static [&'static str] {
    match group {
        "autoscaling" => &["v2", "v1"],
        _ => &["v1"],
    }
}

pub fn find(group: &str, version: &str, plural: &str) -> Option<&'static ResourceDef> {
    RESOURCES
        .iter()
        .find(|r| r.group == group && r.version == version && r.plural == plural)
}

/// The resource holding objects of store kind `kind` in its home group.
pub fn for_kind(kind: &str) -> Option<&'static ResourceDef> {
    RESOURCES
        .iter()
        .find(|r| r.kind == kind && r.store_kind.is_some() && r.group != "events.k8s.io")
}

/// The server's version (what `kubectl version` shows).
pub fn version() -> Value {
    json!({
        "major": "1",
        "minor": "33",
        "gitVersion": "v1.33.0-baton-sandbox",
        "gitCommit": "0000000000000000000000000000000000000000",
        "gitTreeState": "clean",
        "buildDate": "2026-01-01T00:00:00Z",
        "goVersion": "n/a (simulator)",
        "compiler": "rustc",
        "platform": "linux/amd64",
    })
}

/// `GET /api`: APIVersions.
pub fn core_versions(server_addr: &str) -> Value {
    json!({
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": server_addr}],
    })
}

/// `GET /apis`: APIGroupList.
pub fn group_list() -> Value {
    let groups: Vec<Value> = GROUPS.iter().map(|g| group(g)).collect();
    json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups})
}

/// `GET /apis/<group>`: APIGroup.
pub fn group(name: &str) -> Value {
    let gvs: Vec<Value> = versions(name)
        .iter()
        .map(|v| json!({"groupVersion": format!("{name}/{v}"), "version": v}))
        .collect();
    json!({
        "kind": "APIGroup",
        "apiVersion": "v1",
        "name": name,
        "versions": gvs.clone(),
        "preferredVersion": gvs[0],
    })
}

/// `GET /api/v1` or `/apis/<group>/<version>`: APIResourceList, or `None`
/// for a group/version the sandbox does not serve.
pub fn resource_list(group: &str, version: &str) -> Option<Value> {
    if !versions(group).contains(&version) || !(group.is_empty() || GROUPS.contains(&group)) {
        return None;
    }
    let mut out = Vec::new();
    for r in RESOURCES
        .iter()
        .filter(|r| r.group == group && r.version == version)
    {
        let mut e = json!({
            "name": r.plural,
            "singularName": r.singular,
            "namespaced": r.namespaced,
            "kind": r.kind,
            "verbs": r.verbs,
        });
        if !r.short_names.is_empty() {
            e["shortNames"] = json!(r.short_names);
        }
        // `kubectl get all` means the resources in the category `all`.
        if matches!(
            r.plural,
            "pods" | "services" | "deployments" | "replicasets" | "jobs"
        ) {
            e["categories"] = json!(["all"]);
        }
        out.push(e);
        for s in r.subresources {
            let mut e = json!({
                "name": format!("{}/{}", r.plural, s.name),
                "singularName": "",
                "namespaced": r.namespaced,
                "kind": if s.kind.is_empty() { r.kind } else { s.kind },
                "verbs": s.verbs,
            });
            if !s.group.is_empty() {
                e["group"] = s.group.into();
                e["version"] = s.version.into();
            }
            out.push(e);
        }
    }
    let gv = if group.is_empty() {
        version.to_string()
    } else {
        format!("{group}/{version}")
    };
    Some(json!({
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": gv,
        "resources": out,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn apps_v1_lists_deployments_with_scale_and_status_subresources() {
        let l = resource_list("apps", "v1").unwrap();
        let names: Vec<&str> = l["resources"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["name"].as_str().unwrap())
            .collect();
        assert!(names.contains(&"deployments"));
        assert!(names.contains(&"deployments/scale"));
        assert!(names.contains(&"deployments/status"));
        assert!(names.contains(&"replicasets"));
        let scale = &l["resources"].as_array().unwrap()[1];
        assert_eq!(scale["kind"], "Scale");
        assert_eq!(scale["group"], "autoscaling");
        assert!(resource_list("batch", "v2").is_none());
        let batch = resource_list("batch", "v1").unwrap();
        assert_eq!(batch["resources"][0]["name"], "jobs");
        assert_eq!(batch["resources"][1]["name"], "jobs/status");
    }

    #[test]
    fn every_group_in_the_group_list_has_a_resource_list() {
        for g in GROUPS {
            for v in versions(g) {
                assert!(resource_list(g, v).is_some(), "{g}/{v}");
            }
        }
        assert!(resource_list("", "v1").is_some());
        assert!(resource_list("apps", "v2").is_none());
    }

    #[test]
    fn autoscaling_serves_hpas_in_v2_preferred_and_v1() {
        let g = group("autoscaling");
        assert_eq!(g["preferredVersion"]["groupVersion"], "autoscaling/v2");
        assert_eq!(g["versions"][1]["groupVersion"], "autoscaling/v1");
        for v in ["v2", "v1"] {
            let l = resource_list("autoscaling", v).unwrap();
            let names: Vec<&str> = l["resources"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| r["name"].as_str().unwrap())
                .collect();
            assert_eq!(
                names,
                [
                    "horizontalpodautoscalers",
                    "horizontalpodautoscalers/status"
                ]
            );
            assert_eq!(l["resources"][0]["shortNames"][0], "hpa");
        }
        assert_eq!(for_kind("HorizontalPodAutoscaler").unwrap().version, "v2");
    }
}
