//! A Deployment's spec captured before `baton matrix` changes it, and put
//! back after each variant, so every variant starts from the same state
//! and the cluster is left as found.
//!
//! Put back with a replace (not a patch: the variant's patches must go
//! too, whatever they added), retried with a fresh read when it loses a
//! race (409 Conflict), then the rollout it causes is waited for.
//!
//! Not for: the sandbox, which each variant starts afresh.

use super::rollout::{self, FIELD_MANAGER, SETUP_ROLLOUT_TIMEOUT};
use k8s_openapi::api::apps::v1::{Deployment, DeploymentSpec};
use kube::api::PostParams;
use kube::{Api, Client};

/// How often a replace that lost a race (the Deployment changed since it
/// was read) is retried with a fresh read.
const CONFLICT_RETRIES: usize = 5;

/// The Deployment as found.
pub struct Captured {
    api: Api<Deployment>,
    name: String,
    namespace: String,
    original: DeploymentSpec,
}

#[derive(Debug, thiserror::Error)]
pub enum RestoreError {
    #[error("reading deployment {namespace}/{name} before changing it: {source}")]
    Capture {
        namespace: String,
        name: String,
        source: kube::Error,
    },
    #[error("could not put deployment {namespace}/{name} back as it was: {why}")]
    Restore {
        namespace: String,
        name: String,
        why: String,
    },
}

impl Captured {
    /// Read the Deployment's spec as it is now.
    pub async fn capture(
        client: Client,
        namespace: &str,
        name: &str,
    ) -> Result<Captured, RestoreError> {
        let api: Api<Deployment> = Api::namespaced(client, namespace);
        let d = api
            .get(name)
            .await
            .map_err(|source| RestoreError::Capture {
                namespace: namespace.to_string(),
                name: name.to_string(),
                source,
            })?;
        Ok(Captured {
            api,
            name: name.to_string(),
            namespace: namespace.to_string(),
            original: d.spec,
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// Put the spec back as found and wait for the rollout that causes
    /// (none when the Deployment was paused).
    pub async fn restore(&self) -> Result<(), RestoreError> {
        let fail = |why: &dyn std::fmt::Display| RestoreError::Restore {
            namespace: self.namespace.clone(),
            name: self.name.clone(),
            why: why.to_string(),
        };
        let params = PostParams {
            field_manager: Some(FIELD_MANAGER.into()),
            ..Default::default()
        };
        let mut attempt = 0;
        loop {
            let mut current = self.api.get(&self.name).await.map_err(|e| fail(&e))?;
            current.spec = self.original.clone();
            current.status = None;
            match self.api.replace(&self.name, &params, &current).await {
                Ok(_) => break,
                Err(kube::Error::Api(s)) if s.code == 409 && attempt < CONFLICT_RETRIES => {
                    attempt += 1;
                }
                Err(e) => return Err(fail(&e)),
            }
        }
        if self.original.paused == Some(true) {
            return Ok(());
        }
        rollout::wait_rollout(&self.api, &self.name, SETUP_ROLLOUT_TIMEOUT, |_| {})
            .await
            .map_err(|e| fail(&e))
    }
}
