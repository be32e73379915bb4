//! Deleting what a profile's setup created: every object its `apply`
//! steps made (they did not exist before), newest first, each waited for
//! until the API no longer has it, within one deadline. What was deleted
//! and what was left, with why, is the report a CI job in an ephemeral
//! namespace reads to know nothing leaks.
//!
//! Not for: running the teardown steps (`steps::run_steps`) or deciding
//! when teardown happens (`run`).

use super::steps::Created;
use crate::rundir::run_json::Leftover;
use kube::Client;
use kube::api::{Api, DeleteParams, DynamicObject};
use std::time::Duration;

/// How often a deleted object is looked for until it is gone.
const POLL: Duration = Duration::from_millis(200);

/// What deleting did: the objects deleted and gone (`Kind ns/name`), and
/// those still there with why.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Cleaned {
    pub deleted: Vec<String>,
    pub left: Vec<Leftover>,
}

/// Delete `created`, newest first, and wait for each to be gone; all of
/// it within `within`.
pub async fn delete_created(client: &Client, created: &[Created], within: Duration) -> Cleaned {
    let deadline = tokio::time::Instant::now() + within;
    let mut cleaned = Cleaned::default();
    for c in created.iter().rev() {
        let api: Api<DynamicObject> = match &c.namespace {
            Some(ns) => Api::namespaced_with(client.clone(), ns, &c.resource),
            None => Api::all_with(client.clone(), &c.resource),
        };
        let object = c.to_string();
        let params = DeleteParams::background();
        let delete = tokio::time::timeout_at(deadline, api.delete(&c.name, &params));
        let gone = match delete.await {
            Err(_) => Err("the API server did not answer the delete in time".to_string()),
            Ok(Err(kube::Error::Api(s))) if s.code == 404 => Ok(()),
            Ok(Err(e)) => Err(format!("delete refused: {e}")),
            Ok(Ok(_)) => wait_gone(&api, &c.name, deadline).await,
        };
        match gone {
            Ok(()) => cleaned.deleted.push(object),
            Err(why) => cleaned.left.push(Leftover { object, why }),
        }
    }
    cleaned
}

async fn wait_gone(
    api: &Api<DynamicObject>,
    name: &str,
    deadline: tokio::time::Instant,
) -> Result<(), String> {
    loop {
        let Ok(answer) = tokio::time::timeout_at(deadline, api.get_opt(name)).await else {
            return Err("the API server did not answer in time".into());
        };
        match answer {
            Ok(None) => return Ok(()),
            Ok(Some(_)) if tokio::time::Instant::now() >= deadline => {
                return Err("still there (terminating) when teardown's time was up".into());
            }
            Ok(Some(_)) => tokio::time::sleep(POLL).await,
            Err(e) => return Err(format!("cannot tell whether it is gone: {e}")),
        }
    }
}
