//! The Job controller of the sandbox SIMULATOR: store I/O around the pure
//! rules in [`crate::job`] (what to create, delete and report), the
//! TTL-after-finished controller (a finished Job past
//! `ttlSecondsAfterFinished` is deleted), and the garbage collector's part
//! for Jobs (Pods whose Job is gone are deleted gracefully, as background
//! and foreground propagation both end up doing).

use std::collections::HashSet;
use std::sync::Arc;

use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Pod;

use super::{controlled_by, controller_of, delete_pod_gracefully};
use crate::events::{EventType, Recorder};
use crate::job::{self, PodView};
use crate::store::Store;

/// One pass over every Job.
pub fn reconcile_all(store: &Arc<Store>, rec: &Recorder) {
    let (jobs, _) = store.list::<Job>(None);
    let (pods, _) = store.list::<Pod>(None);
    let now = crate::node::now();
    let uids: HashSet<&str> = jobs
        .iter()
        .filter_map(|j| j.metadata.uid.as_deref())
        .collect();
    for p in &pods {
        if let Some(o) = controller_of(&p.metadata)
            && o.kind == "Job"
            && !uids.contains(o.uid.as_str())
            && p.metadata.deletion_timestamp.is_none()
        {
            let ns = p.metadata.namespace.as_deref().unwrap_or("default");
            let name = p.metadata.name.as_deref().unwrap_or_default();
            let _ = delete_pod_gracefully(store, ns, name, None);
        }
    }
    for j in &jobs {
        let ns = j.metadata.namespace.as_deref().unwrap_or("default");
        let name = j.metadata.name.as_deref().unwrap_or_default();
        if job::ttl_expired(j, now) {
            // The TTL controller deletes with foreground propagation; the
            // sandbox has no finalizers, so the Job goes now and its Pods
            // follow on the next pass (above).
            tracing::info!(
                job = name,
                "ttlSecondsAfterFinished passed; deleting the job"
            );
            let _ = store.remove::<Job>(ns, name);
            continue;
        }
        let uid = j.metadata.uid.as_deref().unwrap_or_default();
        let mine: Vec<PodView> = pods
            .iter()
            .filter(|p| controlled_by(&p.metadata, uid))
            .map(PodView::of)
            .collect();
        sync_one(store, rec, j, &mine, now);
    }
}

fn sync_one(
    store: &Store,
    rec: &Recorder,
    j: &Job,
    pods: &[PodView],
    now: k8s_openapi::jiff::Timestamp,
) {
    let ns = j.metadata.namespace.as_deref().unwrap_or("default");
    let name = j.metadata.name.as_deref().unwrap_or_default();
    if j.metadata.deletion_timestamp.is_some() {
        return;
    }
    let d = job::decide(j, pods, now);
    for pn in &d.delete {
        match delete_pod_gracefully(store, ns, pn, None) {
            Ok(_) => rec.record(
                j,
                EventType::Normal,
                "SuccessfulDelete",
                format!("Deleted pod: {pn}"),
            ),
            Err(e) => tracing::warn!(job = name, pod = %pn, error = %e, "cannot delete pod"),
        }
    }
    for index in &d.create {
        match store.create(job::pod_for(j, *index)) {
            Ok(p) => {
                let pn = p.metadata.name.clone().unwrap_or_default();
                tracing::info!(job = name, pod = %pn, ?index, "created pod");
                rec.record(
                    j,
                    EventType::Normal,
                    "SuccessfulCreate",
                    format!("Created pod: {pn}"),
                );
            }
            Err(e) => {
                tracing::warn!(job = name, error = %e, "cannot create pod");
                rec.record(
                    j,
                    EventType::Warning,
                    "FailedCreate",
                    format!("Error creating: {e}"),
                );
                break;
            }
        }
    }
    for (warning, reason, msg) in &d.events {
        let ty = if *warning {
            EventType::Warning
        } else {
            EventType::Normal
        };
        rec.record(j, ty, reason, msg.clone());
    }
    if j.status.as_ref() != Some(&d.status) {
        let st = d.status;
        if let Err(e) = store.modify::<Job>(ns, name, |x| x.status = Some(st)) {
            tracing::debug!(job = name, error = %e, "job status not written");
        }
    }
}
