//! The Indexed Job that runs a run's load workers: one Pod per worker,
//! each `baton worker` with the run's [`WorkerPlan`] and its completion
//! index, labelled with the run so that every Pod can be found and
//! deleted, and bounded so that nothing outlives the run even if baton
//! itself dies (`activeDeadlineSeconds`, `ttlSecondsAfterFinished`, a
//! worker that gets no start instant giving up, and `stdinOnce`: the
//! worker's stdin closes, which stops it, when baton's attach goes).
//!
//! Pure: the parameters in, the manifest out. Not for: creating it or
//! talking to its Pods ([`super::coordinator`]).

use super::worker::{PLAN_ENV, WorkerPlan};
use k8s_openapi::api::batch::v1::{Job, JobSpec};
use k8s_openapi::api::core::v1::{
    Capabilities, Container, EnvVar, PodSecurityContext, PodSpec, PodTemplateSpec,
    ResourceRequirements, SeccompProfile, SecurityContext, TopologySpreadConstraint,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use std::collections::BTreeMap;
use std::time::Duration;

/// baton's release image; a tag per version (`load.image` overrides it).
pub const IMAGE_REPO: &str = "ghcr.io/baton-rollouts/baton";
/// The label every object of one run's fleet carries: the run's id.
pub const RUN_LABEL: &str = "baton.dev/run";
/// The worker container's name.
pub const CONTAINER: &str = "worker";
/// The image's user (distroless `nonroot`).
const NON_ROOT_UID: i64 = 65_532;
/// A finished Job (every worker done: the run ended, or baton died and
/// the workers' stdin closed) is deleted this long after, if baton did
/// not delete it itself.
pub const TTL_AFTER_FINISHED: Duration = Duration::from_secs(60);

/// The default worker image: this very version of baton.
pub fn default_image() -> String {
    format!("{IMAGE_REPO}:{}", env!("CARGO_PKG_VERSION"))
}

/// What the Job is made from.
#[derive(Clone, Debug)]
pub struct JobParams {
    /// The run's id (lowercase letters and digits): in the Job's name and
    /// the [`RUN_LABEL`].
    pub run_id: String,
    pub namespace: String,
    pub image: String,
    pub plan: WorkerPlan,
    /// The Job is failed, and its Pods killed, this long after it starts
    /// whatever happens: the load's bound plus the time to start.
    pub deadline: Duration,
}

impl JobParams {
    pub fn name(&self) -> String {
        format!("baton-load-{}", self.run_id)
    }

    /// `RUN_LABEL=id`, to list the fleet's Pods.
    pub fn selector(&self) -> String {
        format!("{RUN_LABEL}={}", self.run_id)
    }
}

fn labels(p: &JobParams) -> BTreeMap<String, String> {
    BTreeMap::from([
        ("app.kubernetes.io/name".to_string(), "baton".to_string()),
        (
            "app.kubernetes.io/component".to_string(),
            "load-worker".to_string(),
        ),
        (
            "app.kubernetes.io/managed-by".to_string(),
            "baton".to_string(),
        ),
        (RUN_LABEL.to_string(), p.run_id.clone()),
    ])
}

/// The Job's manifest.
pub fn manifest(p: &JobParams) -> Result<Job, serde_json::Error> {
    let workers = p.plan.workers as i32;
    let labels = labels(p);
    let plan = serde_json::to_string(&p.plan)?;
    let container = Container {
        name: CONTAINER.into(),
        image: Some(p.image.clone()),
        args: Some(vec!["worker".into()]),
        env: Some(vec![EnvVar {
            name: PLAN_ENV.into(),
            value: Some(plan),
            value_from: None,
        }]),
        // The coordinator's channel: stdin and stdout through
        // `pods/attach`; the first attach closing stdin stops the worker.
        stdin: Some(true),
        stdin_once: Some(true),
        tty: Some(false),
        resources: Some(ResourceRequirements {
            requests: Some(BTreeMap::from([
                ("cpu".to_string(), Quantity("500m".into())),
                ("memory".to_string(), Quantity("128Mi".into())),
            ])),
            ..Default::default()
        }),
        security_context: Some(SecurityContext {
            allow_privilege_escalation: Some(false),
            read_only_root_filesystem: Some(true),
            run_as_non_root: Some(true),
            run_as_user: Some(NON_ROOT_UID),
            capabilities: Some(Capabilities {
                drop: Some(vec!["ALL".into()]),
                add: None,
            }),
            ..Default::default()
        }),
        ..Default::default()
    };
    let pod = PodSpec {
        containers: vec![container],
        restart_policy: Some("Never".into()),
        termination_grace_period_seconds: Some(5),
        // A worker needs no API access and no Service variables.
        automount_service_account_token: Some(false),
        enable_service_links: Some(false),
        security_context: Some(PodSecurityContext {
            run_as_non_root: Some(true),
            seccomp_profile: Some(SeccompProfile {
                type_: "RuntimeDefault".into(),
                localhost_profile: None,
            }),
            ..Default::default()
        }),
        // Workers on different nodes where there are several, so that
        // one node's limits are not all the fleet's.
        topology_spread_constraints: Some(vec![TopologySpreadConstraint {
            max_skew: 1,
            topology_key: "kubernetes.io/hostname".into(),
            when_unsatisfiable: "ScheduleAnyway".into(),
            label_selector: Some(LabelSelector {
                match_labels: Some(BTreeMap::from([(RUN_LABEL.to_string(), p.run_id.clone())])),
                match_expressions: None,
            }),
            ..Default::default()
        }]),
        ..Default::default()
    };
    Ok(Job {
        metadata: ObjectMeta {
            name: Some(p.name()),
            namespace: Some(p.namespace.clone()),
            labels: Some(labels.clone()),
            ..Default::default()
        },
        spec: Some(JobSpec {
            completion_mode: Some("Indexed".into()),
            completions: Some(workers),
            parallelism: Some(workers),
            // A worker that dies makes the run invalid (the coordinator
            // says so); the others must not be killed with it, which a
            // Job past its backoff limit would do.
            backoff_limit: Some(workers),
            active_deadline_seconds: Some(p.deadline.as_secs().max(1) as i64),
            ttl_seconds_after_finished: Some(TTL_AFTER_FINISHED.as_secs() as i32),
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: Some(labels),
                    ..Default::default()
                }),
                spec: Some(pod),
            },
            ..Default::default()
        }),
        status: None,
    })
}

/// A run id: short, lowercase, unlikely to repeat (seconds since the
/// epoch in base 36 and four random characters).
pub fn run_id() -> String {
    use rand::Rng;
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let mut id = String::new();
    let mut n = secs;
    while n > 0 {
        id.insert(0, ALPHABET[(n % 36) as usize] as char);
        n /= 36;
    }
    let mut rng = rand::rng();
    for _ in 0..4 {
        id.push(ALPHABET[rng.random_range(0..ALPHABET.len())] as char);
    }
    id
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(workers: u64) -> JobParams {
        JobParams {
            run_id: "t0x1abcd".into(),
            namespace: "shop".into(),
            image: default_image(),
            plan: WorkerPlan {
                url: "http://10.96.0.12:80/".into(),
                workers,
                rate: 300.0,
                bound: Duration::from_secs(60),
                timeout: Duration::from_secs(2),
                connect_timeout: Duration::from_secs(1),
                headers: vec![],
                expect_status: vec![200],
                backend_from: None,
                version_from: None,
                concurrency: None,
                start_within: Duration::from_secs(300),
            },
            deadline: Duration::from_secs(400),
        }
    }

    #[test]
    fn the_job_is_indexed_one_pod_per_worker_bounded_and_labelled_with_the_run() {
        let job = manifest(&params(3)).unwrap();
        let spec = job.spec.as_ref().unwrap();
        assert_eq!(job.metadata.name.as_deref(), Some("baton-load-t0x1abcd"));
        assert_eq!(spec.completion_mode.as_deref(), Some("Indexed"));
        assert_eq!((spec.completions, spec.parallelism), (Some(3), Some(3)));
        assert_eq!(spec.backoff_limit, Some(3), "one dead worker fails none");
        assert_eq!(spec.active_deadline_seconds, Some(400));
        assert_eq!(spec.ttl_seconds_after_finished, Some(60));
        let pod_labels = spec.template.metadata.as_ref().unwrap().labels.as_ref();
        assert_eq!(
            pod_labels.unwrap().get(RUN_LABEL).map(String::as_str),
            Some("t0x1abcd")
        );
        let pod = spec.template.spec.as_ref().unwrap();
        assert_eq!(pod.restart_policy.as_deref(), Some("Never"));
        assert_eq!(pod.automount_service_account_token, Some(false));
    }

    #[test]
    fn the_worker_reads_its_plan_from_the_env_and_its_channel_is_stdin_once() {
        let p = params(2);
        let job = manifest(&p).unwrap();
        let c = &job.spec.unwrap().template.spec.unwrap().containers[0];
        assert_eq!(c.args.as_deref(), Some(&["worker".to_string()][..]));
        assert_eq!(
            (c.stdin, c.stdin_once, c.tty),
            (Some(true), Some(true), Some(false))
        );
        let env = &c.env.as_ref().unwrap()[0];
        assert_eq!(env.name, PLAN_ENV);
        let back: WorkerPlan = serde_json::from_str(env.value.as_deref().unwrap()).unwrap();
        assert_eq!(back, p.plan);
        let sc = c.security_context.as_ref().unwrap();
        assert_eq!(sc.run_as_non_root, Some(true));
        assert_eq!(sc.read_only_root_filesystem, Some(true));
    }

    #[test]
    fn the_default_image_is_this_versions_release() {
        assert_eq!(
            default_image(),
            format!("ghcr.io/baton-rollouts/baton:{}", env!("CARGO_PKG_VERSION"))
        );
    }

    #[test]
    fn run_ids_are_short_lowercase_and_differ() {
        let a = run_id();
        let b = run_id();
        assert!(a.len() <= 12, "{a}");
        assert!(
            a.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit()),
            "{a}"
        );
        assert_ne!(a, b);
    }
}
