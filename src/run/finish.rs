//! After the load stops: write what only the run knows (`events.csv`,
//! `run.json`), then render every report from the run directory (see
//! [`super::render`]), exactly as `baton report DIR` does later.

use super::render::RunOutcome;
use crate::clock::RunClock;
use crate::cluster::event::LifecycleEvent;
use crate::cluster::steps::{StepOutcome, StepsReport};
use crate::cluster::watch::WatchSummary;
use crate::exit::Exit;
use crate::load::LoadRun;
use crate::profile::Profile;
use crate::rundir::run_json::{
    BlindSpotRecord, RolloutRecord, StallRecord, StepRecord, StepResult, TeardownRecord,
    WorkerRecord,
};
use crate::rundir::summary::ns_to_ms;
use crate::rundir::{self, EVENTS_CSV, FORMAT_VERSION, RunRecord};
use std::path::Path;
use std::time::Duration;

pub struct Inputs<'a> {
    pub profile: &'a Profile,
    pub out_dir: &'a Path,
    pub clock: RunClock,
    pub load: LoadRun,
    pub interrupted: bool,
    pub events: Vec<LifecycleEvent>,
    pub steps: Option<StepsReport>,
    pub deadline_exceeded: bool,
    pub steps_started_ns: u64,
    pub steps_ended_ns: u64,
    pub watch: WatchSummary,
    pub cluster_label: String,
    /// On the embedded sandbox.
    pub simulator: bool,
    /// On the sandbox: who carried Service traffic.
    pub data_plane: Option<baton_sandbox::DataPlaneUsed>,
    pub namespace: String,
    pub target_url: String,
    /// How long a proxy may route by stale endpoints, and where that
    /// value came from.
    pub propagation_allowance: (Duration, String),
    /// What teardown did, when the profile has a setup or teardown.
    pub teardown: Option<TeardownRecord>,
    /// The in-cluster load workers (`load.from: cluster`).
    pub workers: Vec<WorkerRecord>,
}

/// Write what only the run knows (`events.csv`, `run.json`), then render
/// every report from the directory, as `baton report DIR` would.
pub fn finish(i: Inputs<'_>) -> anyhow::Result<RunOutcome> {
    let out = i.out_dir;
    let mut events = i.events;
    events.sort_by_key(|e| e.observed_ns);
    rundir::events::write(&out.join(EVENTS_CSV), &events).map_err(Exit::from)?;

    let rollout = rollout_summary(i.steps.as_ref(), i.deadline_exceeded, i.interrupted);
    let rollout_incomplete = if rollout.completed {
        None
    } else if i.interrupted {
        Some("interrupted".to_string())
    } else if i.deadline_exceeded {
        Some(format!(
            "not done within rollout.deadline ({})",
            humantime::format_duration(i.profile.rollout.deadline)
        ))
    } else if let Some(st) = &rollout.stall {
        Some(format!(
            "stalled: {}{}",
            st.reason,
            if st.undone { " (rolled back)" } else { "" }
        ))
    } else {
        Some(
            rollout
                .steps
                .iter()
                .find(|s| !s.outcome.is_done())
                .map_or("a step did not finish".into(), |s| {
                    format!("step {} {}: {}", s.index, s.description, s.outcome)
                }),
        )
    };
    let stats = &i.load.stats;
    let record = RunRecord {
        format_version: FORMAT_VERSION,
        baton_version: env!("CARGO_PKG_VERSION").to_string(),
        started_at: humantime::format_rfc3339_millis(i.clock.wall_origin()).to_string(),
        interrupted: i.interrupted,
        cluster: i.cluster_label,
        simulator: i.simulator,
        sandbox_data_plane: i.data_plane.map(|d| d.name().to_string()),
        namespace: i.namespace,
        target_url: i.target_url,
        sent: stats.sent(),
        rows_written: i.load.rows_written,
        shed: stats.shed,
        elapsed_ns: i.load.elapsed.as_nanos() as u64,
        errnos: stats.errnos.clone(),
        warnings: i.load.warnings.clone(),
        steps_started_ns: i.steps_started_ns,
        steps_ended_ns: i.steps_ended_ns,
        rollout,
        rollout_incomplete,
        blind_spots: i
            .watch
            .blind_spots
            .iter()
            .map(|b| BlindSpotRecord {
                resource: b.resource.clone(),
                from_ns: b.from_ns,
                len_ns: b.len_ns,
                open: b.open,
            })
            .collect(),
        propagation_allowance_ms: Some(i.propagation_allowance.0.as_millis() as u64),
        propagation_allowance_from: Some(i.propagation_allowance.1),
        teardown: i.teardown,
        workers: i.workers,
    };
    record.write(out).map_err(Exit::from)?;
    super::render::render(out, super::render::Caller::Run)
}

fn rollout_summary(
    steps: Option<&StepsReport>,
    deadline_exceeded: bool,
    interrupted: bool,
) -> RolloutRecord {
    let Some(r) = steps else {
        return RolloutRecord::default();
    };
    RolloutRecord {
        completed: r.completed && !deadline_exceeded && !interrupted,
        steps: r.steps.iter().map(step_record).collect(),
        stall: r.stall.as_ref().map(|s| StallRecord {
            reason: s.reason.clone(),
            at_ms: ns_to_ms(s.at_ns),
            undone: s.undone,
        }),
    }
}

/// A step as `run.json` records it.
pub(super) fn step_record(s: &crate::cluster::steps::StepResult) -> StepRecord {
    StepRecord {
        index: s.index,
        description: s.description.clone(),
        started_ms: ns_to_ms(s.started_ns),
        ended_ms: ns_to_ms(s.ended_ns),
        outcome: match &s.outcome {
            StepOutcome::Done => StepResult::Done,
            StepOutcome::Failed(why) => StepResult::Failed(why.clone()),
            StepOutcome::Stalled(why) => StepResult::Stalled(why.clone()),
            StepOutcome::Cancelled => StepResult::Cancelled,
        },
    }
}
