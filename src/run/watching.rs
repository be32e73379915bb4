//! The watches of a run and what collects their events: every event, for
//! `events.csv`, and the rollout's side of the live status line ("1/2
//! set_image nginx=nginx:1.28.0 | updated 2/3 ready 3 | 3 ready
//! endpoints"), which the load engine's status line shows after its own
//! figures.
//!
//! [`RolloutStatus`] is the pure part: events in, the note out.
//!
//! Not for: the watches themselves (`cluster::watch`) or the load's
//! figures (`load::status`).

use crate::clock::RunClock;
use crate::cluster::event::{EventKind, LifecycleEvent};
use crate::cluster::watch::{self, WatchError, WatchHandle, WatchSummary, WatchTarget};
use crate::load::plan::StatusNote;
use crate::rundir::events::Stream;
use std::collections::BTreeSet;
use std::path::Path;
use tokio::sync::mpsc::{UnboundedSender, unbounded_channel};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

#[derive(Debug, thiserror::Error)]
pub enum WatchingError {
    #[error(transparent)]
    Watch(#[from] WatchError),
    #[error(transparent)]
    File(#[from] crate::rundir::RunDirError),
}

/// The running watches and the collector of their events.
pub struct Watching {
    watches: WatchHandle,
    /// Where the steps send their own events, onto the same timeline.
    events: UnboundedSender<LifecycleEvent>,
    note: StatusNote,
    collector: JoinHandle<Vec<LifecycleEvent>>,
}

impl Watching {
    /// Start the watches; returns once each has listed the current state,
    /// so the initial state is on the timeline before anything changes.
    /// Every event is appended to `events_csv` as it arrives, so a run
    /// that dies keeps what it saw.
    pub async fn start(
        client: kube::Client,
        target: WatchTarget,
        clock: RunClock,
        steps_total: usize,
        events_csv: &Path,
    ) -> Result<Watching, WatchingError> {
        let mut stream = Stream::create(events_csv)?;
        let (tx, mut rx) = unbounded_channel::<LifecycleEvent>();
        let note = StatusNote::default();
        let collector = {
            let note = note.clone();
            let deployment = target.deployment.clone();
            tokio::spawn(async move {
                let mut all = Vec::new();
                let mut status = RolloutStatus::new(steps_total, &deployment);
                let mut warned = false;
                while let Some(e) = rx.recv().await {
                    status.apply(&e);
                    if let Ok(mut n) = note.lock() {
                        *n = status.line();
                    }
                    // The events are kept in memory too: the end of the run
                    // writes them again, and says so if it cannot.
                    if let Err(err) = stream.push(&e)
                        && !std::mem::replace(&mut warned, true)
                    {
                        eprintln!("baton: warning: {err}");
                    }
                    all.push(e);
                }
                all
            })
        };
        let watches =
            watch::start(client, target, clock, tx.clone(), CancellationToken::new()).await?;
        Ok(Watching {
            watches,
            events: tx,
            note,
            collector,
        })
    }

    /// A sender for events that belong on the run's timeline (the steps').
    pub fn events(&self) -> UnboundedSender<LifecycleEvent> {
        self.events.clone()
    }

    /// The status note the load's status line shows.
    pub fn note(&self) -> StatusNote {
        self.note.clone()
    }

    /// Stop the watches; every event seen, in the order received, and the
    /// watches' blind spots. Every other sender (a step context) must be
    /// dropped first, or this waits for it.
    pub async fn stop(self) -> (Vec<LifecycleEvent>, WatchSummary) {
        let summary = self.watches.stop().await;
        drop(self.events);
        // The collector ends when the last sender is gone; a panic in it
        // (it does no I/O) would lose the timeline, not the run.
        let events = self.collector.await.unwrap_or_default();
        (events, summary)
    }
}

/// The rollout as the status line tells it, from the events seen so far.
#[derive(Clone, Debug, Default)]
pub struct RolloutStatus {
    steps_total: usize,
    /// `deployment/NAME` of the rollout's Deployment: only its progress
    /// is the rollout's (others may be watched beside it).
    deployment: String,
    step: String,
    progress: String,
    ready: BTreeSet<String>,
}

impl RolloutStatus {
    pub fn new(steps_total: usize, deployment: &str) -> RolloutStatus {
        RolloutStatus {
            steps_total,
            deployment: format!("deployment/{deployment}"),
            ..RolloutStatus::default()
        }
    }

    pub fn apply(&mut self, e: &LifecycleEvent) {
        match e.kind {
            EventKind::EndpointReady => {
                self.ready.insert(e.address.clone());
            }
            EventKind::EndpointNotReady | EventKind::EndpointRemoved => {
                self.ready.remove(&e.address);
            }
            EventKind::StepStarted => {
                self.step = format!(
                    "{}/{} {}",
                    e.object.trim_start_matches("step/"),
                    self.steps_total,
                    e.detail
                )
            }
            EventKind::StepEnded => self.step = format!("{} done", e.detail),
            EventKind::RolloutStalled => self.step = format!("STALLED: {}", e.reason),
            EventKind::DeploymentProgress if e.object == self.deployment => {
                self.progress = e.new.clone()
            }
            _ => {}
        }
    }

    /// `1/2 set_image ... | updated 2/3 ready 3 | 3 ready endpoints`.
    pub fn line(&self) -> String {
        let endpoints = format!("{} ready endpoints", self.ready.len());
        [
            self.step.as_str(),
            self.progress.as_str(),
            endpoints.as_str(),
        ]
        .iter()
        .filter(|s| !s.is_empty())
        .copied()
        .collect::<Vec<_>>()
        .join(" | ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(kind: EventKind, f: impl FnOnce(&mut LifecycleEvent)) -> LifecycleEvent {
        let mut e = LifecycleEvent {
            kind,
            ..LifecycleEvent::default()
        };
        f(&mut e);
        e
    }

    #[test]
    fn the_note_follows_the_steps_the_deployment_and_the_ready_endpoints() {
        let mut s = RolloutStatus::new(2, "web");
        assert_eq!(s.line(), "0 ready endpoints");
        for addr in ["10.0.0.1", "10.0.0.2"] {
            s.apply(&event(EventKind::EndpointReady, |e| {
                e.address = addr.into()
            }));
        }
        s.apply(&event(EventKind::StepStarted, |e| {
            e.object = "step/1".into();
            e.detail = "set_image nginx=nginx:1.28.0".into();
        }));
        s.apply(&event(EventKind::DeploymentProgress, |e| {
            e.object = "deployment/web".into();
            e.new = "updated 1/2 ready 2".into()
        }));
        // A Deployment watched beside it is not the rollout's progress.
        s.apply(&event(EventKind::DeploymentProgress, |e| {
            e.object = "deployment/web-v1".into();
            e.new = "updated 3/3 ready 3".into()
        }));
        s.apply(&event(EventKind::EndpointRemoved, |e| {
            e.address = "10.0.0.1".into()
        }));
        assert_eq!(
            s.line(),
            "1/2 set_image nginx=nginx:1.28.0 | updated 1/2 ready 2 | 1 ready endpoints"
        );
        s.apply(&event(EventKind::RolloutStalled, |e| {
            e.reason = "ErrImagePull".into()
        }));
        assert!(
            s.line().starts_with("STALLED: ErrImagePull | "),
            "{}",
            s.line()
        );
    }
}
