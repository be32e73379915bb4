//! `KIND/NAME` as a step names an object other than the Deployment under
//! test (`ingress/web-canary`, `hpa/web-server`): the kinds a rollout's
//! steps touch around it, with kubectl's names for them, and the API
//! resource each is served as.
//!
//! Only kinds baton knows are accepted, by name, so a typo is an error at
//! load time (exit 2) rather than a 404 mid-run.
//!
//! Not for: the objects of `apply` steps (any kind; found by discovery).

use super::preflight::Permission;
use kube::api::{ApiResource, DynamicObject, GroupVersionKind, Patch, PatchParams};
use kube::{Api, Client};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// A kind a step may name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Deployment,
    Service,
    Ingress,
    HorizontalPodAutoscaler,
    PodDisruptionBudget,
}

impl Kind {
    /// (group, version, kind, plural, kubectl's name).
    fn parts(
        self,
    ) -> (
        &'static str,
        &'static str,
        &'static str,
        &'static str,
        &'static str,
    ) {
        match self {
            Kind::Deployment => ("apps", "v1", "Deployment", "deployments", "deployment"),
            Kind::Service => ("", "v1", "Service", "services", "service"),
            Kind::Ingress => ("networking.k8s.io", "v1", "Ingress", "ingresses", "ingress"),
            Kind::HorizontalPodAutoscaler => (
                "autoscaling",
                "v2",
                "HorizontalPodAutoscaler",
                "horizontalpodautoscalers",
                "horizontalpodautoscaler",
            ),
            Kind::PodDisruptionBudget => (
                "policy",
                "v1",
                "PodDisruptionBudget",
                "poddisruptionbudgets",
                "poddisruptionbudget",
            ),
        }
    }

    const ALL: [Kind; 5] = [
        Kind::Deployment,
        Kind::Service,
        Kind::Ingress,
        Kind::HorizontalPodAutoscaler,
        Kind::PodDisruptionBudget,
    ];

    /// The kind by any name kubectl accepts for it (singular, plural,
    /// short, Kind), case-insensitive.
    fn named(s: &str) -> Option<Kind> {
        let s = s.to_ascii_lowercase();
        Kind::ALL.into_iter().find(|k| {
            let (_, _, kind, plural, singular) = k.parts();
            let short = match k {
                Kind::Deployment => "deploy",
                Kind::Service => "svc",
                Kind::Ingress => "ing",
                Kind::HorizontalPodAutoscaler => "hpa",
                Kind::PodDisruptionBudget => "pdb",
            };
            [kind.to_ascii_lowercase().as_str(), plural, singular, short].contains(&s.as_str())
        })
    }

    fn api_resource(self) -> ApiResource {
        let (group, version, kind, plural, _) = self.parts();
        ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk(group, version, kind), plural)
    }
}

/// One object in the run's namespace.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ObjectRef {
    pub kind: Kind,
    pub name: String,
}

impl ObjectRef {
    pub fn new(kind: Kind, name: &str) -> Self {
        ObjectRef {
            kind,
            name: name.to_string(),
        }
    }

    /// `patch` on its resource: what a step that patches it needs.
    pub fn patch_permission(&self) -> Permission {
        let (group, _, _, plural, _) = self.kind.parts();
        Permission::new("patch", group, plural)
    }

    /// A JSON merge patch of it (`kubectl patch KIND NAME --type merge`).
    pub async fn merge_patch(
        &self,
        client: &Client,
        namespace: &str,
        patch: &serde_json::Value,
    ) -> Result<(), String> {
        let api: Api<DynamicObject> =
            Api::namespaced_with(client.clone(), namespace, &self.kind.api_resource());
        let params = PatchParams {
            field_manager: Some(super::rollout::FIELD_MANAGER.into()),
            ..Default::default()
        };
        api.patch(&self.name, &params, &Patch::Merge(patch))
            .await
            .map(|_| ())
            .map_err(|e| match e {
                kube::Error::Api(r) if r.code == 404 => {
                    format!("{self} not found in namespace {namespace:?}")
                }
                kube::Error::Api(r) => format!("patch {self}: {} ({})", r.message, r.code),
                other => format!("patch {self}: {other}"),
            })
    }
}

impl fmt::Display for ObjectRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.kind.parts().4, self.name)
    }
}

impl FromStr for ObjectRef {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let known = || {
            Kind::ALL
                .iter()
                .map(|k| k.parts().4)
                .collect::<Vec<_>>()
                .join(", ")
        };
        let Some((kind, name)) = s.split_once('/') else {
            return Err(format!(
                "{s:?} is not KIND/NAME, e.g. ingress/web-canary (kinds: {})",
                known()
            ));
        };
        let kind = Kind::named(kind).ok_or_else(|| {
            format!(
                "{kind:?} is not a kind a step can name (kinds: {})",
                known()
            )
        })?;
        if name.is_empty() || name.contains('/') {
            return Err(format!(
                "{s:?}: the name after {kind:?}/ is missing or has a /",
            ));
        }
        Ok(ObjectRef::new(kind, name))
    }
}

impl TryFrom<String> for ObjectRef {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        s.parse()
    }
}

impl From<ObjectRef> for String {
    fn from(o: ObjectRef) -> String {
        o.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_are_read_by_any_name_kubectl_accepts() {
        for s in ["ingress/web", "ingresses/web", "ing/web", "Ingress/web"] {
            assert_eq!(s.parse::<ObjectRef>().unwrap().kind, Kind::Ingress, "{s}");
        }
        let hpa: ObjectRef = "hpa/web-server".parse().unwrap();
        assert_eq!(hpa.to_string(), "horizontalpodautoscaler/web-server");
        assert_eq!(
            hpa.patch_permission().to_string(),
            "patch horizontalpodautoscalers.autoscaling"
        );
    }

    #[test]
    fn an_unknown_kind_or_a_missing_name_is_refused_saying_what_is_accepted() {
        let e = "configmap/x".parse::<ObjectRef>().unwrap_err();
        assert!(e.contains("\"configmap\"") && e.contains("ingress"), "{e}");
        let e = "ingress".parse::<ObjectRef>().unwrap_err();
        assert!(e.contains("KIND/NAME"), "{e}");
        assert!("ingress/".parse::<ObjectRef>().is_err());
    }
}
