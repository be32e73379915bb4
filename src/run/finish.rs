//! After the load stops: write what only the run knows (`events.csv`,
//! `run.json`), then render every report from the run directory (see
//! [`super::render`]), exactly as `baton report DIR` does later.

use super::record::{BlindSpotRecord, RUN_JSON, RunRecord};
use super::render::RunOutcome;
use crate::clock::RunClock;
use crate::cluster::event::{EVENTS_CSV, LifecycleEvent, write_events_csv};
use crate::cluster::steps::{StepOutcome, StepsReport};
use crate::cluster::watch::WatchSummary;
use crate::exit::Exit;
use crate::load::LoadRun;
use crate::profile::Profile;
use crate::report::run_summary::{RolloutSummary, StallLine, StepLine, ns_to_ms};
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
    pub namespace: String,
    pub target_url: String,
    /// How long a proxy may route by stale endpoints (sandbox: its
    /// configured lag plus a margin); `None`: attribution's default.
    pub propagation_allowance: Option<Duration>,
}

/// Write what only the run knows (`events.csv`, `run.json`), then render
/// every report from the directory, as `baton report DIR` would.
pub fn finish(i: Inputs<'_>) -> anyhow::Result<RunOutcome> {
    let out = i.out_dir;
    let io = |what: &str, e: &dyn std::fmt::Display| {
        Exit::usage(format!("cannot write {what} in {}: {e}", out.display()))
    };
    let mut events = i.events;
    events.sort_by_key(|e| e.observed_ns);
    write_events_csv(&out.join(EVENTS_CSV), &events).map_err(|e| io(EVENTS_CSV, &e))?;

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
                .find(|s| s.outcome != "done")
                .map_or("a step did not finish".into(), |s| {
                    format!("step {} {}: {}", s.index, s.description, s.outcome)
                }),
        )
    };
    let stats = &i.load.stats;
    let record = RunRecord {
        baton_version: env!("CARGO_PKG_VERSION").to_string(),
        started_at: humantime::format_rfc3339_millis(i.clock.wall_origin()).to_string(),
        interrupted: i.interrupted,
        cluster: i.cluster_label,
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
            })
            .collect(),
        propagation_allowance_ms: i.propagation_allowance.map(|d| d.as_millis() as u64),
    };
    record.write(out).map_err(|e| io(RUN_JSON, &e))?;
    super::render::render_dir(out)
}

fn rollout_summary(
    steps: Option<&StepsReport>,
    deadline_exceeded: bool,
    interrupted: bool,
) -> RolloutSummary {
    let Some(r) = steps else {
        return RolloutSummary::default();
    };
    RolloutSummary {
        completed: r.completed && !deadline_exceeded && !interrupted,
        steps: r
            .steps
            .iter()
            .map(|s| StepLine {
                index: s.index,
                description: s.description.clone(),
                started_ms: ns_to_ms(s.started_ns),
                ended_ms: ns_to_ms(s.ended_ns),
                outcome: match &s.outcome {
                    StepOutcome::Done => "done".into(),
                    StepOutcome::Failed(why) => format!("failed: {why}"),
                    StepOutcome::Stalled(why) => format!("stalled: {why}"),
                    StepOutcome::Cancelled => "cancelled".into(),
                },
            })
            .collect(),
        stall: r.stall.as_ref().map(|s| StallLine {
            reason: s.reason.clone(),
            at_ms: ns_to_ms(s.at_ns),
            undone: s.undone,
        }),
    }
}
