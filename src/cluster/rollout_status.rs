//! Whether a Deployment's rollout is complete, by the same rule as
//! `kubectl rollout status` (kubectl's `DeploymentStatusViewer`).
//!
//! Pure: a Deployment in, a status out. Polling and watching are the
//! caller's business.

use k8s_openapi::api::apps::v1::Deployment;

/// Where a rollout stands.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RolloutStatus {
    /// Still going; the message is kubectl's wording.
    Waiting(String),
    /// Every replica is updated and available, no old replica is left.
    Complete,
    /// `Progressing=False, reason=ProgressDeadlineExceeded`.
    DeadlineExceeded(String),
}

/// kubectl's completion rule: the controller has observed the latest
/// generation; the Progressing condition has not timed out; all desired
/// replicas are updated; no old replica remains; all updated replicas are
/// available.
pub fn rollout_status(d: &Deployment) -> RolloutStatus {
    let name = d.metadata.name.as_deref().unwrap_or("?");
    let generation = d.metadata.generation.unwrap_or(0);
    let Some(status) = d.status.as_ref() else {
        return RolloutStatus::Waiting(
            "Waiting for deployment spec update to be observed...".into(),
        );
    };
    if generation > status.observed_generation.unwrap_or(0) {
        return RolloutStatus::Waiting(
            "Waiting for deployment spec update to be observed...".into(),
        );
    }
    if let Some(c) = status
        .conditions
        .iter()
        .flatten()
        .find(|c| c.type_.as_deref() == Some("Progressing"))
        && c.reason.as_deref() == Some("ProgressDeadlineExceeded")
    {
        return RolloutStatus::DeadlineExceeded(format!(
            "deployment {name:?} exceeded its progress deadline"
        ));
    }
    let desired = d.spec.replicas;
    let updated = status.updated_replicas.unwrap_or(0);
    let replicas = status.replicas.unwrap_or(0);
    let available = status.available_replicas.unwrap_or(0);
    if let Some(desired) = desired
        && updated < desired
    {
        return RolloutStatus::Waiting(format!(
            "Waiting for deployment {name:?} rollout to finish: {updated} out of {desired} new replicas have been updated..."
        ));
    }
    if replicas > updated {
        return RolloutStatus::Waiting(format!(
            "Waiting for deployment {name:?} rollout to finish: {} old replicas are pending termination...",
            replicas - updated
        ));
    }
    if available < updated {
        return RolloutStatus::Waiting(format!(
            "Waiting for deployment {name:?} rollout to finish: {available} of {updated} updated replicas are available..."
        ));
    }
    RolloutStatus::Complete
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::apps::v1::{DeploymentCondition, DeploymentSpec, DeploymentStatus};

    fn deployment(
        generation: i64,
        observed: i64,
        desired: i32,
        replicas: i32,
        updated: i32,
        available: i32,
    ) -> Deployment {
        Deployment {
            metadata: k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta {
                name: Some("web".into()),
                generation: Some(generation),
                ..Default::default()
            },
            spec: DeploymentSpec {
                replicas: Some(desired),
                ..Default::default()
            },
            status: Some(DeploymentStatus {
                observed_generation: Some(observed),
                replicas: Some(replicas),
                updated_replicas: Some(updated),
                available_replicas: Some(available),
                ..Default::default()
            }),
        }
    }

    #[test]
    fn an_unobserved_generation_is_still_waiting() {
        let s = rollout_status(&deployment(2, 1, 3, 3, 3, 3));
        assert!(matches!(s, RolloutStatus::Waiting(m) if m.contains("spec update to be observed")));
    }

    #[test]
    fn each_missing_step_is_named_in_order() {
        let s = rollout_status(&deployment(2, 2, 3, 4, 1, 3));
        assert!(
            matches!(&s, RolloutStatus::Waiting(m) if m.contains("1 out of 3 new replicas")),
            "{s:?}"
        );
        let s = rollout_status(&deployment(2, 2, 3, 4, 3, 3));
        assert!(
            matches!(&s, RolloutStatus::Waiting(m) if m.contains("1 old replicas are pending termination")),
            "{s:?}"
        );
        let s = rollout_status(&deployment(2, 2, 3, 3, 3, 2));
        assert!(
            matches!(&s, RolloutStatus::Waiting(m) if m.contains("2 of 3 updated replicas are available")),
            "{s:?}"
        );
    }

    #[test]
    fn all_updated_available_and_no_old_replicas_is_complete() {
        assert_eq!(
            rollout_status(&deployment(2, 2, 3, 3, 3, 3)),
            RolloutStatus::Complete
        );
        // Scaled to zero: complete once observed.
        assert_eq!(
            rollout_status(&deployment(5, 5, 0, 0, 0, 0)),
            RolloutStatus::Complete
        );
    }

    #[test]
    fn a_progress_deadline_exceeded_condition_is_reported_before_counts() {
        let mut d = deployment(2, 2, 3, 4, 1, 3);
        d.status.as_mut().unwrap().conditions = Some(vec![DeploymentCondition {
            type_: Some("Progressing".into()),
            status: Some("False".into()),
            reason: Some("ProgressDeadlineExceeded".into()),
            ..Default::default()
        }]);
        assert!(matches!(
            rollout_status(&d),
            RolloutStatus::DeadlineExceeded(_)
        ));
    }

    #[test]
    fn no_status_yet_is_waiting() {
        let mut d = deployment(1, 1, 3, 0, 0, 0);
        d.status = None;
        assert!(matches!(rollout_status(&d), RolloutStatus::Waiting(_)));
    }
}
