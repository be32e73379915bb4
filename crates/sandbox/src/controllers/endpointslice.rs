//! The EndpointSlice controller of the sandbox SIMULATOR.
//!
//! Mirrors `pkg/controller/endpointslice` for one IPv4 slice per Service:
//! named `<service>-<random>`, labelled `kubernetes.io/service-name` and
//! `endpointslice.kubernetes.io/managed-by`, owned by the Service, one
//! endpoint per Pod that matches the Service's selector, has an IP and is
//! not Succeeded/Failed. Conditions exactly as Kubernetes sets them:
//! `serving` = Pod Ready (terminating or not), `terminating` =
//! deletionTimestamp set, `ready` = serving and not terminating (or
//! `publishNotReadyAddresses`). Terminating Pods stay listed until they are
//! gone, as in Kubernetes since the EndpointSliceTerminatingCondition.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use k8s_openapi::api::core::v1::{ObjectReference, Pod, Service, ServicePort};
use k8s_openapi::api::discovery::v1::{Endpoint, EndpointConditions, EndpointPort, EndpointSlice};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::{controlled_by, controller_of, is_ready, map_selector_matches, owner_ref};
use crate::store::Store;

pub const SERVICE_NAME_LABEL: &str = "kubernetes.io/service-name";
pub const MANAGED_BY_LABEL: &str = "endpointslice.kubernetes.io/managed-by";
pub const MANAGED_BY: &str = "endpointslice-controller.k8s.io";

/// One pass over every Service.
pub fn reconcile_all(store: &Arc<Store>) {
    let (svcs, _) = store.list::<Service>(None);
    let (slices, _) = store.list::<EndpointSlice>(None);
    let (pods, _) = store.list::<Pod>(None);
    let uids: HashSet<&str> = svcs
        .iter()
        .filter_map(|s| s.metadata.uid.as_deref())
        .collect();
    for sl in &slices {
        if let Some(o) = controller_of(&sl.metadata)
            && o.kind == "Service"
            && !uids.contains(o.uid.as_str())
        {
            let ns = sl.metadata.namespace.as_deref().unwrap_or("default");
            let _ =
                store.remove::<EndpointSlice>(ns, sl.metadata.name.as_deref().unwrap_or_default());
        }
    }
    for svc in &svcs {
        let uid = svc.metadata.uid.as_deref().unwrap_or_default();
        let mine: Vec<&EndpointSlice> = slices
            .iter()
            .filter(|s| controlled_by(&s.metadata, uid))
            .collect();
        sync_one(store, svc, &mine, &pods);
    }
}

/// `targetPort` of `sp` resolved against `pod` (a name is looked up among
/// the Pod's containerPorts).
fn resolve_port(sp: &ServicePort, pod: Option<&Pod>) -> Option<i32> {
    match &sp.target_port {
        None => Some(sp.port),
        Some(IntOrString::Int(i)) => Some(*i),
        Some(IntOrString::String(name)) => {
            if let Ok(i) = name.parse() {
                return Some(i);
            }
            pod?.spec
                .as_ref()?
                .containers
                .iter()
                .flat_map(|c| c.ports.iter().flatten())
                .find(|p| p.name.as_deref() == Some(name.as_str()))
                .map(|p| p.container_port)
        }
    }
}

fn sync_one(store: &Store, svc: &Service, mine: &[&EndpointSlice], pods: &[Pod]) {
    let ns = svc
        .metadata
        .namespace
        .clone()
        .unwrap_or_else(|| "default".into());
    let name = svc.metadata.name.clone().unwrap_or_default();
    let Some(spec) = svc.spec.as_ref() else {
        return;
    };
    let selector: BTreeMap<String, String> = spec.selector.clone().unwrap_or_default();
    if selector.is_empty() {
        // Kubernetes leaves the slices of selector-less Services to the user.
        return;
    }
    let publish_not_ready = spec.publish_not_ready_addresses.unwrap_or(false);
    let mut selected: Vec<&Pod> = pods
        .iter()
        .filter(|p| p.metadata.namespace.as_deref().unwrap_or("default") == ns)
        .filter(|p| map_selector_matches(&selector, p.metadata.labels.as_ref()))
        .filter(|p| {
            let st = p.status.as_ref();
            st.and_then(|s| s.pod_ip.as_deref())
                .is_some_and(|ip| !ip.is_empty())
                && !matches!(
                    st.and_then(|s| s.phase.as_deref()),
                    Some("Succeeded") | Some("Failed")
                )
        })
        .collect();
    selected.sort_by(|a, b| a.metadata.name.cmp(&b.metadata.name));

    let ports: Vec<EndpointPort> = spec
        .ports
        .iter()
        .flatten()
        .filter_map(|sp| {
            Some(EndpointPort {
                name: Some(sp.name.clone().unwrap_or_default()),
                port: Some(resolve_port(sp, selected.first().copied())?),
                protocol: Some(sp.protocol.clone().unwrap_or_else(|| "TCP".into())),
                app_protocol: sp.app_protocol.clone(),
            })
        })
        .collect();
    let endpoints: Vec<Endpoint> = selected
        .iter()
        .map(|p| {
            let serving = is_ready(p);
            let terminating = p.metadata.deletion_timestamp.is_some();
            Endpoint {
                addresses: vec![
                    p.status
                        .as_ref()
                        .and_then(|s| s.pod_ip.clone())
                        .unwrap_or_default(),
                ],
                conditions: Some(EndpointConditions {
                    ready: Some(publish_not_ready || (serving && !terminating)),
                    serving: Some(serving),
                    terminating: Some(terminating),
                }),
                node_name: p.spec.as_ref().and_then(|s| s.node_name.clone()),
                target_ref: Some(ObjectReference {
                    kind: Some("Pod".into()),
                    namespace: Some(ns.clone()),
                    name: p.metadata.name.clone(),
                    uid: p.metadata.uid.clone(),
                    ..Default::default()
                }),
                ..Default::default()
            }
        })
        .collect();

    let labels: BTreeMap<String, String> = [
        (SERVICE_NAME_LABEL.to_string(), name.clone()),
        (MANAGED_BY_LABEL.to_string(), MANAGED_BY.to_string()),
    ]
    .into();
    let ports_opt = Some(ports);
    match mine.split_first() {
        None => {
            let sl = EndpointSlice {
                metadata: ObjectMeta {
                    generate_name: Some(format!("{name}-")),
                    namespace: Some(ns.clone()),
                    labels: Some(labels),
                    owner_references: Some(vec![owner_ref("v1", "Service", &svc.metadata)]),
                    ..Default::default()
                },
                address_type: "IPv4".into(),
                endpoints: Some(endpoints),
                ports: ports_opt,
            };
            if let Err(e) = store.create(sl) {
                tracing::warn!(service = %name, error = %e, "cannot create EndpointSlice");
            }
        }
        Some((first, rest)) => {
            let sname = first.metadata.name.clone().unwrap_or_default();
            let labels_ok = labels
                .iter()
                .all(|(k, v)| first.metadata.labels.as_ref().and_then(|l| l.get(k)) == Some(v));
            if first.endpoints.as_ref() != Some(&endpoints)
                || first.ports != ports_opt
                || !labels_ok
            {
                let r = store.modify::<EndpointSlice>(&ns, &sname, |s| {
                    s.endpoints = Some(endpoints);
                    s.ports = ports_opt;
                    s.metadata
                        .labels
                        .get_or_insert_with(BTreeMap::new)
                        .extend(labels);
                });
                if let Err(e) = r {
                    tracing::warn!(service = %name, error = %e, "cannot update EndpointSlice");
                }
            }
            for extra in rest {
                let _ = store.remove::<EndpointSlice>(
                    &ns,
                    extra.metadata.name.as_deref().unwrap_or_default(),
                );
            }
        }
    }
}
