//! batch/v1 Job rules of the sandbox SIMULATOR (pure: no store, no clock),
//! after `pkg/registry/batch/job` (defaults, the generated selector,
//! validation) and `pkg/controller/job` (which Pods to create or delete,
//! and the status). The store I/O is in [`crate::controllers::job`].
//!
//! Modelled: `completionMode` `Indexed` and `NonIndexed`, `completions`,
//! `parallelism`, `backoffLimit` (failed Pods, plus container restarts
//! under `restartPolicy: OnFailure`), `activeDeadlineSeconds`,
//! `ttlSecondsAfterFinished`, `suspend`; the `FailureTarget` /
//! `SuccessCriteriaMet` conditions at once and `Failed` / `Complete` once
//! no Pod of the Job is still running or terminating, as Kubernetes 1.31+
//! does. Pods of Indexed Jobs are named `{job}-{index}-{random5}`, with the
//! completion index label and annotation, `hostname` `{job}-{index}` and
//! `JOB_COMPLETION_INDEX` from the annotation.
//!
//! Not for: Pod creation back-off (the real controller delays a failed
//! Pod's replacement 10 s, doubling; here it comes at once),
//! `podFailurePolicy`, `successPolicy`, `backoffLimitPerIndex`,
//! `maxFailedIndexes`, `podReplacementPolicy: Failed`, `managedBy`, and
//! the `batch.kubernetes.io/job-tracking` finalizer (counts come from the
//! Pods present, never below what the status already said).

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::batch::v1::{Job, JobCondition, JobStatus, UncountedTerminatedPods};
use k8s_openapi::api::core::v1::{EnvVar, EnvVarSource, ObjectFieldSelector, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use serde_json::{Value, json};

/// Label and annotation of an Indexed Job's Pod: its completion index.
pub const COMPLETION_INDEX: &str = "batch.kubernetes.io/job-completion-index";
pub const JOB_NAME: &str = "batch.kubernetes.io/job-name";
pub const CONTROLLER_UID: &str = "batch.kubernetes.io/controller-uid";
/// The labels Kubernetes still sets for older selectors.
pub const LEGACY_JOB_NAME: &str = "job-name";
pub const LEGACY_CONTROLLER_UID: &str = "controller-uid";
/// The env var each container of an Indexed Job's Pod gets.
pub const INDEX_ENV: &str = "JOB_COMPLETION_INDEX";

fn set_default(obj: &mut Value, key: &str, v: Value) {
    if obj.get(key).is_none_or(Value::is_null) {
        obj[key] = v;
    }
}

/// The API server's part on create and update: defaults (parallelism 1,
/// completions 1 when neither is set, backoffLimit 6, NonIndexed,
/// suspend false) and, on create, a uid and the selector generated from
/// it (unless `manualSelector`), copied into the template's labels.
pub fn prepare(obj: &mut Value, old: Option<&Value>) -> Result<(), String> {
    if !obj["spec"].is_object() {
        return Err("spec: Required value".into());
    }
    let spec = &mut obj["spec"];
    if spec["completions"].is_null() && spec["parallelism"].is_null() {
        spec["completions"] = json!(1);
    }
    set_default(spec, "parallelism", json!(1));
    set_default(spec, "backoffLimit", json!(6));
    set_default(spec, "completionMode", json!("NonIndexed"));
    set_default(spec, "suspend", json!(false));
    set_default(spec, "podReplacementPolicy", json!("TerminatingOrFailed"));
    if let Some(old) = old {
        obj["metadata"]["uid"] = old["metadata"]["uid"].clone();
        return Ok(());
    }
    let uid = crate::store::random_uid();
    obj["metadata"]["uid"] = json!(uid);
    if obj["spec"]["manualSelector"] == true {
        return Ok(());
    }
    let name = obj["metadata"]["name"].as_str().unwrap_or("").to_string();
    obj["spec"]["selector"] = json!({"matchLabels": {CONTROLLER_UID: uid}});
    let tmpl = &mut obj["spec"]["template"];
    if !tmpl["metadata"].is_object() {
        tmpl["metadata"] = json!({});
    }
    if !tmpl["metadata"]["labels"].is_object() {
        tmpl["metadata"]["labels"] = json!({});
    }
    let labels = &mut tmpl["metadata"]["labels"];
    labels[CONTROLLER_UID] = json!(uid);
    labels[JOB_NAME] = json!(name);
    labels[LEGACY_CONTROLLER_UID] = json!(uid);
    labels[LEGACY_JOB_NAME] = json!(name);
    Ok(())
}

/// Validation as `pkg/apis/batch/validation` words it, for what the
/// sandbox models.
pub fn validate(obj: &Value, old: Option<&Value>) -> Result<(), String> {
    let spec = &obj["spec"];
    for f in [
        "parallelism",
        "completions",
        "backoffLimit",
        "ttlSecondsAfterFinished",
    ] {
        if let Some(n) = spec[f].as_i64().filter(|n| *n < 0) {
            return Err(format!(
                "spec.{f}: Invalid value: {n}: must be greater than or equal to 0"
            ));
        }
    }
    if let Some(n) = spec["activeDeadlineSeconds"].as_i64().filter(|n| *n <= 0) {
        return Err(format!(
            "spec.activeDeadlineSeconds: Invalid value: {n}: must be greater than 0"
        ));
    }
    match spec["completionMode"].as_str() {
        Some("NonIndexed") => {}
        Some("Indexed") if spec["completions"].is_null() => {
            return Err("spec.completions: Required value: when completion mode is Indexed".into());
        }
        Some("Indexed") => {}
        m => {
            return Err(format!(
                "spec.completionMode: Unsupported value: {}: supported values: \"NonIndexed\", \"Indexed\"",
                m.map_or("null".to_string(), |m| format!("\"{m}\""))
            ));
        }
    }
    let policy = spec["template"]["spec"]["restartPolicy"]
        .as_str()
        .unwrap_or("");
    if !matches!(policy, "Never" | "OnFailure") {
        return Err(format!(
            "spec.template.spec.restartPolicy: Unsupported value: \"{policy}\": supported values: \"OnFailure\", \"Never\""
        ));
    }
    let sel = &spec["selector"];
    let Some(want) = sel["matchLabels"].as_object().filter(|m| !m.is_empty()) else {
        return Err("spec.selector: Required value".into());
    };
    let have = &spec["template"]["metadata"]["labels"];
    if want.iter().any(|(k, v)| have.get(k) != Some(v)) {
        return Err(format!(
            "spec.template.metadata.labels: Invalid value: {have}: `selector` does not match template `labels`"
        ));
    }
    if let Some(old) = old {
        for f in ["selector", "completionMode"] {
            if old["spec"][f] != spec[f] {
                return Err(format!(
                    "spec.{f}: Invalid value: {}: field is immutable",
                    spec[f]
                ));
            }
        }
        if old["spec"]["template"] != spec["template"] && old["spec"]["suspend"] != true {
            return Err(
                "spec.template: Invalid value: field is immutable (unless the Job is suspended)"
                    .into(),
            );
        }
    }
    Ok(())
}

/// What the controller sees of one of the Job's Pods.
#[derive(Clone, Debug, PartialEq)]
pub struct PodView {
    pub name: String,
    /// The completion index (Indexed Jobs), from the annotation.
    pub index: Option<i32>,
    pub state: PodState,
    pub ready: bool,
    /// Container restarts (they count as failures under OnFailure).
    pub restarts: i32,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PodState {
    /// Not terminating, not finished.
    Active,
    /// deletionTimestamp set, not finished.
    Terminating,
    Succeeded,
    Failed,
}

impl PodView {
    pub fn of(p: &Pod) -> PodView {
        let phase = p
            .status
            .as_ref()
            .and_then(|s| s.phase.as_deref())
            .unwrap_or("Pending");
        let state = match phase {
            "Succeeded" => PodState::Succeeded,
            "Failed" => PodState::Failed,
            _ if p.metadata.deletion_timestamp.is_some() => PodState::Terminating,
            _ => PodState::Active,
        };
        PodView {
            name: p.metadata.name.clone().unwrap_or_default(),
            index: p
                .metadata
                .annotations
                .as_ref()
                .and_then(|a| a.get(COMPLETION_INDEX))
                .and_then(|i| i.parse().ok()),
            state,
            ready: crate::controllers::is_ready(p),
            restarts: p
                .status
                .as_ref()
                .and_then(|s| s.container_statuses.as_ref())
                .map(|cs| cs.iter().map(|c| c.restart_count).sum())
                .unwrap_or(0),
        }
    }
}

/// What one sync decides.
#[derive(Debug, Default, PartialEq)]
pub struct Decision {
    /// Pods to create: their completion index (`None` for NonIndexed).
    pub create: Vec<Option<i32>>,
    /// Pods to delete gracefully, by name.
    pub delete: Vec<String>,
    pub status: JobStatus,
    /// Events on the Job: (warning?, reason, message).
    pub events: Vec<(bool, &'static str, String)>,
}

fn condition_true(st: &JobStatus, ty: &str) -> bool {
    st.conditions
        .iter()
        .flatten()
        .any(|c| c.type_ == ty && c.status == "True")
}

/// Whether the Job is finished: `Complete` or `Failed`.
pub fn finished(job: &Job) -> bool {
    job.status
        .as_ref()
        .is_some_and(|s| condition_true(s, "Complete") || condition_true(s, "Failed"))
}

/// When a finished Job finished: its completionTime, else its `Failed`
/// condition's transition time.
pub fn finish_time(job: &Job) -> Option<Timestamp> {
    let st = job.status.as_ref()?;
    if let Some(t) = &st.completion_time {
        return Some(t.0);
    }
    st.conditions
        .iter()
        .flatten()
        .find(|c| c.type_ == "Failed" && c.status == "True")
        .and_then(|c| c.last_transition_time.as_ref().map(|t| t.0))
}

/// Whether `ttlSecondsAfterFinished` has run out (the TTL-after-finished
/// controller then deletes the Job, and its Pods with it).
pub fn ttl_expired(job: &Job, now: Timestamp) -> bool {
    let Some(ttl) = job.spec.as_ref().and_then(|s| s.ttl_seconds_after_finished) else {
        return false;
    };
    finished(job)
        && finish_time(job).is_some_and(|t| t + SignedDuration::from_secs(ttl.into()) <= now)
}

/// `0-2,4,6-7` (Kubernetes' completedIndexes) from a set of indexes.
pub fn format_indexes(set: &BTreeSet<i32>) -> String {
    let mut out: Vec<String> = Vec::new();
    let mut it = set.iter().copied().peekable();
    while let Some(start) = it.next() {
        let mut end = start;
        while it.peek() == Some(&(end + 1)) {
            end += 1;
            it.next();
        }
        out.push(if start == end {
            start.to_string()
        } else {
            format!("{start}-{end}")
        });
    }
    out.join(",")
}

/// The indexes of a completedIndexes string (malformed parts are skipped).
pub fn parse_indexes(s: &str) -> BTreeSet<i32> {
    let mut out = BTreeSet::new();
    for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        match part.split_once('-') {
            Some((a, b)) => {
                if let (Ok(a), Ok(b)) = (a.parse::<i32>(), b.parse::<i32>()) {
                    out.extend(a..=b);
                }
            }
            None => {
                if let Ok(i) = part.parse() {
                    out.insert(i);
                }
            }
        }
    }
    out
}

fn condition(ty: &str, reason: &str, message: &str, now: Timestamp) -> JobCondition {
    JobCondition {
        type_: ty.into(),
        status: "True".into(),
        reason: Some(reason.into()),
        message: Some(message.into()),
        last_probe_time: Some(Time(now)),
        last_transition_time: Some(Time(now)),
    }
}

fn set_condition(st: &mut JobStatus, c: JobCondition) {
    let cs = st.conditions.get_or_insert_with(Vec::new);
    match cs.iter_mut().find(|x| x.type_ == c.type_) {
        Some(x) if x.status == c.status => {}
        Some(x) => *x = c,
        None => cs.push(c),
    }
}

/// One sync of `job` with its Pods at `now`, as `syncJob` decides it.
pub fn decide(job: &Job, pods: &[PodView], now: Timestamp) -> Decision {
    let spec = job.spec.clone().unwrap_or_default();
    let prev = job.status.clone().unwrap_or_default();
    let indexed = spec.completion_mode.as_deref() == Some("Indexed");
    let completions = spec.completions;
    let parallelism = spec.parallelism.unwrap_or(1).max(0);
    let on_failure = spec
        .template
        .spec
        .as_ref()
        .and_then(|s| s.restart_policy.as_deref())
        == Some("OnFailure");
    let mut d = Decision {
        status: prev.clone(),
        ..Default::default()
    };
    let st = &mut d.status;

    let active: Vec<&PodView> = pods
        .iter()
        .filter(|p| p.state == PodState::Active)
        .collect();
    let terminating = pods
        .iter()
        .filter(|p| p.state == PodState::Terminating)
        .count() as i32;
    let count = |s: PodState| pods.iter().filter(|p| p.state == s).count() as i32;
    let mut completed = parse_indexes(prev.completed_indexes.as_deref().unwrap_or(""));
    if indexed {
        let n = completions.unwrap_or(0);
        completed.extend(
            pods.iter()
                .filter(|p| p.state == PodState::Succeeded)
                .filter_map(|p| p.index)
                .filter(|i| (0..n).contains(i)),
        );
        st.succeeded = Some(completed.len() as i32);
        st.completed_indexes = Some(format_indexes(&completed));
    } else {
        st.succeeded = Some(prev.succeeded.unwrap_or(0).max(count(PodState::Succeeded)));
    }
    st.failed = Some(prev.failed.unwrap_or(0).max(count(PodState::Failed)));
    st.uncounted_terminated_pods = Some(UncountedTerminatedPods::default());
    let succeeded = st.succeeded.unwrap_or(0);
    let failed = st.failed.unwrap_or(0);

    // Deletes every active Pod; what stays is what still terminates.
    let stop_all = |d: &mut Decision| {
        d.delete.extend(active.iter().map(|p| p.name.clone()));
    };
    let set_counts = |st: &mut JobStatus, active_n: i32, ready_n: i32, term: i32| {
        st.active = Some(active_n);
        st.ready = Some(ready_n);
        st.terminating = Some(term);
    };

    if finished(job) {
        stop_all(&mut d);
        let term = terminating + d.delete.len() as i32;
        set_counts(&mut d.status, 0, 0, term);
        return d;
    }

    // Suspended: no Pod runs; resuming restarts the clock.
    if spec.suspend == Some(true) {
        stop_all(&mut d);
        let term = terminating + d.delete.len() as i32;
        let st = &mut d.status;
        set_counts(st, 0, 0, term);
        if !condition_true(st, "Suspended") {
            set_condition(
                st,
                condition("Suspended", "JobSuspended", "Job suspended", now),
            );
            d.events
                .push((false, "Suspended", "Job suspended".to_string()));
        }
        return d;
    }
    if condition_true(st, "Suspended") {
        let mut c = condition("Suspended", "JobResumed", "Job resumed", now);
        c.status = "False".into();
        set_condition(st, c);
        st.start_time = Some(Time(now));
        d.events.push((false, "Resumed", "Job resumed".to_string()));
    }
    let start = st.start_time.get_or_insert(Time(now)).0;

    // Failure: the backoff limit, then the deadline.
    let restarts: i32 = if on_failure {
        active.iter().map(|p| p.restarts).sum()
    } else {
        0
    };
    let backoff_limit = spec.backoff_limit.unwrap_or(6);
    let failing = if condition_true(st, "FailureTarget") {
        st.conditions
            .iter()
            .flatten()
            .find(|c| c.type_ == "FailureTarget")
            .map(|c| {
                (
                    c.reason.clone().unwrap_or_default(),
                    c.message.clone().unwrap_or_default(),
                )
            })
    } else if failed + restarts > backoff_limit {
        Some((
            "BackoffLimitExceeded".to_string(),
            "Job has reached the specified backoff limit".to_string(),
        ))
    } else if spec
        .active_deadline_seconds
        .is_some_and(|s| start + SignedDuration::from_secs(s) <= now)
    {
        Some((
            "DeadlineExceeded".to_string(),
            "Job was active longer than specified deadline".to_string(),
        ))
    } else {
        None
    };
    if let Some((reason, message)) = failing {
        stop_all(&mut d);
        let term = terminating + d.delete.len() as i32;
        let st = &mut d.status;
        set_counts(st, 0, 0, term);
        if !condition_true(st, "FailureTarget") {
            set_condition(st, condition("FailureTarget", &reason, &message, now));
        }
        if term == 0 {
            set_condition(st, condition("Failed", &reason, &message, now));
            let reason = if reason == "DeadlineExceeded" {
                "DeadlineExceeded"
            } else {
                "BackoffLimitExceeded"
            };
            d.events.push((true, reason, message));
        }
        return d;
    }

    // Success.
    let done = match completions {
        Some(n) => succeeded >= n,
        None => succeeded > 0 && active.is_empty(),
    };
    if done || condition_true(st, "SuccessCriteriaMet") {
        stop_all(&mut d);
        let term = terminating + d.delete.len() as i32;
        let st = &mut d.status;
        set_counts(st, 0, 0, term);
        let msg = "Reached expected number of succeeded pods";
        set_condition(
            st,
            condition("SuccessCriteriaMet", "CompletionsReached", msg, now),
        );
        if term == 0 {
            set_condition(st, condition("Complete", "CompletionsReached", msg, now));
            st.completion_time = Some(Time(now));
            d.events
                .push((false, "Completed", "Job completed".to_string()));
        }
        return d;
    }

    // Keep the right Pods running.
    let mut keep: Vec<&PodView> = Vec::new();
    if indexed {
        let n = completions.unwrap_or(0);
        let mut running: BTreeMap<i32, &PodView> = BTreeMap::new();
        for p in &active {
            match p.index {
                Some(i) if (0..n).contains(&i) && !completed.contains(&i) => {
                    if let std::collections::btree_map::Entry::Vacant(e) = running.entry(i) {
                        e.insert(p);
                    } else {
                        d.delete.push(p.name.clone());
                    }
                }
                // No index, out of range, or done already: not needed.
                _ => d.delete.push(p.name.clone()),
            }
        }
        // Over parallelism: the highest indexes go.
        while running.len() as i32 > parallelism {
            let (_, p) = running.pop_last().expect("not empty");
            d.delete.push(p.name.clone());
        }
        // An index still running its replacement's predecessor (terminating)
        // waits for it, as podReplacementPolicy TerminatingOrFailed says.
        let busy: BTreeSet<i32> = pods
            .iter()
            .filter(|p| p.state == PodState::Terminating)
            .filter_map(|p| p.index)
            .collect();
        let room = (parallelism - running.len() as i32 - terminating).max(0) as usize;
        d.create = (0..n)
            .filter(|i| !completed.contains(i) && !running.contains_key(i) && !busy.contains(i))
            .take(room)
            .map(Some)
            .collect();
        keep.extend(running.values());
    } else {
        let want = match completions {
            Some(n) => parallelism.min(n - succeeded).max(0),
            None if succeeded > 0 => 0,
            None => parallelism,
        };
        let have = active.len() as i32;
        if have > want {
            // The newest go first; names stand in for age here.
            let mut victims = active.clone();
            victims.sort_by(|a, b| b.name.cmp(&a.name));
            d.delete.extend(
                victims
                    .iter()
                    .take((have - want) as usize)
                    .map(|p| p.name.clone()),
            );
        } else {
            let room = (want - have - terminating).max(0);
            d.create = vec![None; room as usize];
        }
        keep.extend(active.iter().filter(|p| !d.delete.contains(&p.name)));
    }
    let ready = keep.iter().filter(|p| p.ready).count() as i32;
    let term = terminating + d.delete.len() as i32;
    set_counts(&mut d.status, keep.len() as i32, ready, term);
    d
}

/// The Pod the controller creates for `job` (at completion `index` for an
/// Indexed Job), as `pkg/controller/job` builds it from the template.
pub fn pod_for(job: &Job, index: Option<i32>) -> Pod {
    let name = job.metadata.name.clone().unwrap_or_default();
    let tmpl = job
        .spec
        .as_ref()
        .map(|s| s.template.clone())
        .unwrap_or_default();
    let tm = tmpl.metadata.unwrap_or_default();
    let mut labels = tm.labels.unwrap_or_default();
    let mut annotations = tm.annotations.unwrap_or_default();
    let mut spec = tmpl.spec.unwrap_or_default();
    let generate_name = match index {
        Some(i) => {
            labels.insert(COMPLETION_INDEX.into(), i.to_string());
            annotations.insert(COMPLETION_INDEX.into(), i.to_string());
            if spec.hostname.is_none() {
                spec.hostname = Some(format!("{name}-{i}"));
            }
            let field = format!("metadata.annotations['{COMPLETION_INDEX}']");
            let containers = spec
                .containers
                .iter_mut()
                .chain(spec.init_containers.iter_mut().flatten());
            for c in containers {
                let env = c.env.get_or_insert_with(Vec::new);
                if !env.iter().any(|e| e.name == INDEX_ENV) {
                    env.push(EnvVar {
                        name: INDEX_ENV.into(),
                        value_from: Some(EnvVarSource {
                            field_ref: Some(ObjectFieldSelector {
                                field_path: field.clone(),
                                api_version: Some("v1".into()),
                            }),
                            ..Default::default()
                        }),
                        ..Default::default()
                    });
                }
            }
            format!("{name}-{i}-")
        }
        None => format!("{name}-"),
    };
    Pod {
        metadata: ObjectMeta {
            generate_name: Some(generate_name),
            namespace: job.metadata.namespace.clone(),
            labels: Some(labels),
            annotations: (!annotations.is_empty()).then_some(annotations),
            owner_references: Some(vec![crate::controllers::owner_ref(
                "batch/v1",
                "Job",
                &job.metadata,
            )]),
            ..Default::default()
        },
        spec: Some(spec),
        status: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(v: Value) -> Job {
        let mut obj = json!({"metadata": {"name": "load", "namespace": "default"},
            "spec": {"template": {"spec": {"restartPolicy": "Never",
                "containers": [{"name": "w", "image": "ghcr.io/baton-rollout/baton:1"}]}}}});
        json_patch::merge(&mut obj, &v);
        prepare(&mut obj, None).unwrap();
        validate(&obj, None).unwrap();
        serde_json::from_value(obj).unwrap()
    }

    fn pod(name: &str, index: Option<i32>, state: PodState) -> PodView {
        PodView {
            name: name.into(),
            index,
            state,
            ready: state == PodState::Active,
            restarts: 0,
        }
    }

    fn now() -> Timestamp {
        "2026-01-01T00:00:10Z".parse().unwrap()
    }

    fn has(st: &JobStatus, ty: &str) -> bool {
        condition_true(st, ty)
    }

    #[test]
    fn defaults_and_the_generated_selector_follow_the_api_server() {
        let j = job(json!({}));
        let s = j.spec.as_ref().unwrap();
        assert_eq!(
            (s.completions, s.parallelism, s.backoff_limit),
            (Some(1), Some(1), Some(6))
        );
        let uid = j.metadata.uid.clone().unwrap();
        let sel = s.selector.as_ref().unwrap().match_labels.as_ref().unwrap();
        assert_eq!(sel[CONTROLLER_UID], uid);
        let labels = s
            .template
            .metadata
            .as_ref()
            .unwrap()
            .labels
            .as_ref()
            .unwrap();
        assert_eq!(labels[JOB_NAME], "load");
        assert_eq!(labels[LEGACY_CONTROLLER_UID], uid);
        // Only parallelism: a work queue, completions stay unset.
        let j = job(json!({"spec": {"parallelism": 3}}));
        assert_eq!(j.spec.unwrap().completions, None);
    }

    #[test]
    fn validation_refuses_what_kubernetes_refuses() {
        let mut bad = json!({"metadata": {"name": "x"}, "spec": {"completionMode": "Indexed", "parallelism": 2,
            "template": {"spec": {"restartPolicy": "Never", "containers": [{"name": "c", "image": "i"}]}}}});
        prepare(&mut bad, None).unwrap();
        bad["spec"]["completions"] = Value::Null;
        assert!(
            validate(&bad, None)
                .unwrap_err()
                .contains("when completion mode is Indexed")
        );
        let mut always = json!({"metadata": {"name": "x"}, "spec": {"template": {"spec": {"restartPolicy": "Always",
            "containers": [{"name": "c", "image": "i"}]}}}});
        prepare(&mut always, None).unwrap();
        assert!(
            validate(&always, None)
                .unwrap_err()
                .contains("restartPolicy: Unsupported value: \"Always\"")
        );
        let ok = serde_json::to_value(job(json!({}))).unwrap();
        let mut changed = ok.clone();
        changed["spec"]["completionMode"] = json!("Indexed");
        assert!(
            validate(&changed, Some(&ok))
                .unwrap_err()
                .contains("immutable")
        );
    }

    #[test]
    fn an_indexed_job_starts_its_lowest_indexes_up_to_parallelism() {
        let j =
            job(json!({"spec": {"completionMode": "Indexed", "completions": 3, "parallelism": 2}}));
        let d = decide(&j, &[], now());
        assert_eq!(d.create, vec![Some(0), Some(1)]);
        assert!(d.status.start_time.is_some());
        let pods = [
            pod("load-0-a", Some(0), PodState::Succeeded),
            pod("load-1-b", Some(1), PodState::Active),
        ];
        let d = decide(&j, &pods, now());
        assert_eq!(d.create, vec![Some(2)]);
        assert_eq!(d.status.completed_indexes.as_deref(), Some("0"));
        assert_eq!((d.status.active, d.status.succeeded), (Some(1), Some(1)));
    }

    #[test]
    fn all_indexes_done_completes_the_job() {
        let j =
            job(json!({"spec": {"completionMode": "Indexed", "completions": 3, "parallelism": 3}}));
        let pods: Vec<PodView> = (0..3)
            .map(|i| pod(&format!("load-{i}"), Some(i), PodState::Succeeded))
            .collect();
        let d = decide(&j, &pods, now());
        assert!(d.create.is_empty() && d.delete.is_empty());
        assert!(has(&d.status, "SuccessCriteriaMet") && has(&d.status, "Complete"));
        assert_eq!(d.status.completed_indexes.as_deref(), Some("0-2"));
        assert_eq!(d.status.completion_time, Some(Time(now())));
        assert_eq!(d.events[0].1, "Completed");
    }

    #[test]
    fn a_failed_pod_past_backoff_limit_zero_fails_the_job_once_the_rest_are_gone() {
        let j = job(
            json!({"spec": {"completionMode": "Indexed", "completions": 2, "parallelism": 2, "backoffLimit": 0}}),
        );
        let pods = [
            pod("load-0", Some(0), PodState::Failed),
            pod("load-1", Some(1), PodState::Active),
        ];
        let d = decide(&j, &pods, now());
        assert_eq!(d.delete, vec!["load-1".to_string()]);
        assert!(d.create.is_empty());
        assert!(has(&d.status, "FailureTarget") && !has(&d.status, "Failed"));
        // Next pass: the other Pod is terminating, then gone.
        let mut j2 = j.clone();
        j2.status = Some(d.status);
        let d = decide(
            &j2,
            &[
                pods[0].clone(),
                pod("load-1", Some(1), PodState::Terminating),
            ],
            now(),
        );
        assert!(!has(&d.status, "Failed"));
        j2.status = Some(d.status);
        let d = decide(&j2, &[pods[0].clone()], now());
        assert!(has(&d.status, "Failed"));
        let c = d
            .status
            .conditions
            .unwrap()
            .into_iter()
            .find(|c| c.type_ == "Failed")
            .unwrap();
        assert_eq!(c.reason.as_deref(), Some("BackoffLimitExceeded"));
        assert_eq!(d.status.completion_time, None);
    }

    #[test]
    fn the_active_deadline_fails_the_job() {
        let j = job(json!({"spec": {"activeDeadlineSeconds": 5}}));
        let mut j2 = j.clone();
        j2.status = Some(JobStatus {
            start_time: Some(Time("2026-01-01T00:00:00Z".parse().unwrap())),
            ..Default::default()
        });
        let d = decide(&j2, &[pod("load-x", None, PodState::Active)], now());
        assert_eq!(d.delete, vec!["load-x".to_string()]);
        let c = d.status.conditions.unwrap();
        assert_eq!(c[0].reason.as_deref(), Some("DeadlineExceeded"));
    }

    #[test]
    fn a_non_indexed_job_keeps_parallelism_until_completions() {
        let j = job(json!({"spec": {"completions": 5, "parallelism": 2}}));
        assert_eq!(decide(&j, &[], now()).create, vec![None, None]);
        let pods: Vec<PodView> = (0..4)
            .map(|i| pod(&format!("p{i}"), None, PodState::Succeeded))
            .chain([pod("p9", None, PodState::Active)])
            .collect();
        let d = decide(&j, &pods, now());
        assert!(d.create.is_empty(), "one left to do and one running");
        assert_eq!(d.status.succeeded, Some(4));
    }

    #[test]
    fn suspend_stops_pods_and_resume_restarts_the_clock() {
        let j = job(json!({"spec": {"suspend": true, "completions": 2}}));
        let d = decide(&j, &[pod("p", None, PodState::Active)], now());
        assert_eq!(d.delete, vec!["p".to_string()]);
        assert!(has(&d.status, "Suspended"));
        let mut j2 = job(json!({"spec": {"completions": 2}}));
        j2.status = Some(d.status);
        let d = decide(&j2, &[], now());
        assert!(!has(&d.status, "Suspended"));
        assert_eq!(d.create.len(), 1);
    }

    #[test]
    fn ttl_runs_from_the_finish() {
        let mut j = job(json!({"spec": {"ttlSecondsAfterFinished": 1}}));
        let d = decide(&j, &[pod("p", None, PodState::Succeeded)], now());
        j.status = Some(d.status);
        assert!(!ttl_expired(&j, now()));
        assert!(ttl_expired(&j, now() + SignedDuration::from_secs(1)));
    }

    #[test]
    fn indexed_pods_carry_index_hostname_env_and_owner() {
        let j = job(json!({"spec": {"completionMode": "Indexed", "completions": 3}}));
        let p = pod_for(&j, Some(2));
        assert_eq!(p.metadata.generate_name.as_deref(), Some("load-2-"));
        assert_eq!(p.metadata.labels.as_ref().unwrap()[COMPLETION_INDEX], "2");
        assert_eq!(
            p.metadata.annotations.as_ref().unwrap()[COMPLETION_INDEX],
            "2"
        );
        let spec = p.spec.unwrap();
        assert_eq!(spec.hostname.as_deref(), Some("load-2"));
        let env = &spec.containers[0].env.as_ref().unwrap()[0];
        assert_eq!(env.name, INDEX_ENV);
        assert_eq!(
            env.value_from
                .as_ref()
                .unwrap()
                .field_ref
                .as_ref()
                .unwrap()
                .field_path,
            "metadata.annotations['batch.kubernetes.io/job-completion-index']"
        );
        let o = &p.metadata.owner_references.unwrap()[0];
        assert_eq!((o.kind.as_str(), o.controller), ("Job", Some(true)));
    }

    #[test]
    fn completed_indexes_round_trip_as_ranges() {
        let s: BTreeSet<i32> = [0, 1, 2, 4, 6, 7].into();
        assert_eq!(format_indexes(&s), "0-2,4,6-7");
        assert_eq!(parse_indexes("0-2,4,6-7"), s);
        assert_eq!(format_indexes(&BTreeSet::new()), "");
    }
}
