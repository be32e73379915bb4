//! `baton run`'s sequence, as named phases (see [`execute`]): plan the
//! load, choose the cluster, preflight, snapshot, set up (a matrix
//! variant's patches), watch, wait for a healthy baseline, load and roll
//! out, stop, then write the run directory and render every report from
//! it.
//!
//! One [`RunClock`] stamps requests and events alike. Shutdown is passed
//! in (`interrupt`), so Ctrl-C and tests take the same path: an
//! interrupted run still writes every file, marked interrupted.
//!
//! Not for: the pieces themselves (`load`, `cluster`, `attribution`,
//! `verdict`, `report`) or the files' formats (`rundir`).

mod finish;
mod gate;
mod ground_truth;
pub mod render;
mod watching;

use crate::clock::RunClock;
use crate::cluster::choice::{self, ChooseError, Chosen};
use crate::cluster::exec::ExecEnv;
use crate::cluster::liveness::{self, Liveness};
use crate::cluster::rollout::SETUP_ROLLOUT_TIMEOUT;
use crate::cluster::steps::{self, CreatedLog, Step, StepContext, StepsReport};
use crate::cluster::teardown;
use crate::cluster::watch::{WatchTarget, Workload};
use crate::cluster::{preflight, snapshot};
use crate::exit::{self, Exit};
use crate::fleet::coordinator::{self, Fleet, FleetError};
use crate::fleet::job::{self, JobParams};
use crate::fleet::worker::WorkerPlan;
use crate::load::{self, LoadRun, host, plan::LoadPlan};
use crate::profile::{LoadFrom, LoadSpec, LoadedProfile, Profile};
use crate::rundir::run_json::{Leftover, TeardownRecord, WorkerRecord};
use crate::rundir::{self, PROFILE_YAML};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use watching::Watching;

pub use render::{RunOutcome, render_dir};

/// How to run a profile, beyond the profile itself.
#[derive(Clone, Debug, Default)]
pub struct RunOptions {
    pub out_dir: PathBuf,
    /// `--kubeconfig`, `--context`, `-n`.
    pub cluster: choice::Flags,
    pub quiet: bool,
    /// Keep header values in `profile.resolved.yaml` (redacted otherwise).
    pub keep_secrets: bool,
    /// The Deployment is put back as found after the run (`baton matrix`
    /// on a real cluster): preflight asks for `update` too.
    pub restored_after: bool,
    /// Steps run before the watches and the load, to put the Deployment
    /// in the state a variant asks for (`baton matrix`: a preStop sleep, a
    /// grace period, a maxSurge). They end with the rollout they cause
    /// complete, and are not part of the measured rollout.
    pub variant: Vec<Step>,
}

/// The load's safety bound beyond warmup + rollout deadline + cooldown.
/// The run stops the load itself after the cooldown; the bound only ends a
/// load whose stop was lost.
const LOAD_BOUND_SLACK: Duration = Duration::from_secs(30);
/// How long the Deployment may take to be rolled out and the target to
/// answer before the load starts (a cold image pull, a slow probe).
const BASELINE_WAIT: Duration = Duration::from_secs(90);
/// How long teardown waits for what it deleted to be gone (a Namespace
/// takes its contents with it, which can take a while).
const TEARDOWN_WAIT: Duration = Duration::from_secs(120);
/// How long the snapshot after the run may take: the API may not answer
/// (the run lost sight of it), and the run's own files come first.
const AFTER_WAIT: Duration = Duration::from_secs(15);
/// How long removing the load workers' Job and Pods may take.
const FLEET_REMOVE_WAIT: Duration = Duration::from_secs(60);

/// Run a loaded profile. `Err` carries an [`Exit`] for bad input (2) or a
/// cluster that cannot be used (3); a run that happened returns its
/// outcome whatever the verdict.
pub async fn execute(
    loaded: &LoadedProfile,
    opts: &RunOptions,
    interrupt: CancellationToken,
) -> anyhow::Result<RunOutcome> {
    let out = opts.out_dir.as_path();
    let planned = plan_load(loaded, out)?;
    let running = prepare_dir(out, &loaded.profile, opts.keep_secrets)?;
    let outcome = run_phases(loaded, opts, planned, interrupt).await;
    match &outcome {
        Ok(_) => running.finished()?,
        // Ended on its own terms (bad input, no cluster): not a run that
        // died, and without reports nothing can mistake it for one.
        Err(_) => running.ended_early(),
    }
    outcome
}

/// The phases after the run directory is claimed. Whatever happens once
/// the profile's setup has run, its teardown runs too.
async fn run_phases(
    loaded: &LoadedProfile,
    opts: &RunOptions,
    planned: Planned,
    interrupt: CancellationToken,
) -> anyhow::Result<RunOutcome> {
    let p = &loaded.profile;
    let out = opts.out_dir.as_path();
    let clock = RunClock::start();
    let chosen = choose_cluster(loaded, &opts.cluster).await?;
    let plan = planned.for_url(&chosen.url, out, p)?;
    let site = Site::of(&chosen, p, out)?;
    let fleet = fleet_params(p, &site, &chosen.url);
    if !opts.quiet {
        let from = match &fleet {
            Some(f) => format!(
                " from {} worker Pod{} in the cluster",
                f.plan.workers,
                if f.plan.workers == 1 { "" } else { "s" }
            ),
            None => String::new(),
        };
        eprintln!(
            "baton: {} on {}: deployment {}/{}, load {} at {}/s{from}",
            p.name, chosen.label, site.namespace, site.deployment, chosen.url, p.load.rate
        );
    }
    tracing::info!(cluster = %chosen.label, namespace = %site.namespace, url = %chosen.url, "cluster chosen");
    preflight(&site, loaded, opts.restored_after).await?;
    tracing::info!("preflight passed");
    let created = CreatedLog::default();
    let measured = match setup(&site, loaded, clock, &created, &interrupt).await {
        Ok(()) => {
            let how = How {
                plan,
                url: &chosen.url,
                fleet: fleet.as_ref(),
            };
            measure(&site, loaded, opts, how, clock, &interrupt).await
        }
        Err(e) => Err(e.into()),
    };
    // The workers go first, whatever happened: nothing of the run's own
    // may outlive it.
    let removed = match &fleet {
        Some(f) => Some(coordinator::remove(&site.client, f, FLEET_REMOVE_WAIT).await),
        None => None,
    };
    let mut cleaned = teardown(&site, loaded, clock, &created, opts.quiet).await;
    if let Some(removed) = removed {
        let record = cleaned.get_or_insert_with(TeardownRecord::default);
        match removed {
            Ok(deleted) => record.deleted.extend(deleted),
            Err(why) => {
                eprintln!("baton: warning: removing the load workers: {why}");
                record.left.push(Leftover {
                    object: format!(
                        "Job {}/{}",
                        site.namespace,
                        fleet.as_ref().map(JobParams::name).unwrap_or_default()
                    ),
                    why,
                });
            }
        }
    }
    let measured = match measured {
        Ok(m) => m,
        Err(e) => {
            say_teardown(cleaned.as_ref());
            return Err(e);
        }
    };
    let outcome = finish::finish(finish::Inputs {
        profile: p,
        out_dir: out,
        clock,
        load: measured.load,
        interrupted: interrupt.is_cancelled(),
        events: measured.events,
        steps: measured.steps,
        deadline_exceeded: measured.deadline_exceeded,
        steps_started_ns: measured.steps_started_ns,
        steps_ended_ns: measured.steps_ended_ns,
        watch: measured.watch,
        cluster_label: chosen.label.clone(),
        simulator: chosen.sandbox.is_some(),
        data_plane: chosen.sandbox.as_ref().map(|sb| sb.data_plane()),
        namespace: site.namespace.clone(),
        target_url: chosen.url.clone(),
        propagation_allowance: site.allowance(p),
        teardown: cleaned,
        workers: measured.workers,
    })?;
    if let Some(sb) = chosen.sandbox {
        ground_truth::write(out, &sb, clock);
        sb.shutdown().await;
    }
    Ok(outcome)
}

/// The load as planned and where it comes from.
struct How<'a> {
    plan: LoadPlan,
    url: &'a str,
    /// From the cluster: the workers' Job.
    fleet: Option<&'a JobParams>,
}

/// From the targets' check to the snapshot after: everything measured.
async fn measure(
    site: &Site,
    loaded: &LoadedProfile,
    opts: &RunOptions,
    how: How<'_>,
    clock: RunClock,
    interrupt: &CancellationToken,
) -> anyhow::Result<Measured> {
    let p = &loaded.profile;
    let out = opts.out_dir.as_path();
    check_targets(site, loaded).await?;
    snapshot(site, out, "before").await.map_err(invalid)?;
    apply_variant(site, loaded, clock, opts, interrupt).await?;
    let watching = Watching::start(
        site.client.clone(),
        site.watch_target(),
        clock,
        p.rollout.steps.len(),
        &out.join(rundir::EVENTS_CSV),
    )
    .await
    .map_err(|e| invalid(format!("starting the watches: {e}")))?;
    let liveness = Liveness::start(site.client.clone(), clock, p.thresholds.max_blind_spot);
    let answering = match how.fleet {
        None => gate::Answering::Probe(&how.plan.template, how.url),
        Some(_) => gate::Answering::Settled {
            service: &site.service,
            settle: site.allowance(p).0,
        },
    };
    if let Err(e) = baseline(site, answering, opts.quiet, interrupt).await {
        liveness.stop().await;
        watching.stop().await;
        return Err(e.into());
    }
    tracing::info!("baseline healthy; load starts");
    let halt = halt_when_blind(interrupt, liveness.gave_up(), p.thresholds.max_blind_spot);
    let mut measured =
        load_and_roll(site, loaded, how, clock, &watching, opts.quiet, &halt).await?;
    let spots = liveness.stop().await;
    let (mut events, mut watch) = watching.stop().await;
    events.extend(spots.iter().map(liveness::event));
    watch.blind_spots.extend(spots);
    measured.events = events;
    measured.watch = watch;
    // Bounded: after a run that lost sight of the cluster, the API may
    // still not answer, and the record of the run matters more.
    match tokio::time::timeout(AFTER_WAIT, snapshot(site, out, "after")).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => eprintln!("baton: warning: {e}"),
        Err(_) => eprintln!(
            "baton: warning: recording the cluster after the run: no answer within {}",
            humantime::format_duration(AFTER_WAIT)
        ),
    }
    Ok(measured)
}

/// The load, planned before anything touches the cluster: in full when
/// the profile names its URL; on the sandbox without one, everything but
/// the URL (its Service's NodePort, known once the sandbox runs).
enum Planned {
    Ready(Box<LoadPlan>),
    NeedsUrl(Box<LoadSpec>),
}

/// Records go into `out`.
fn plan_load(loaded: &LoadedProfile, out: &Path) -> Result<Planned, Exit> {
    let spec = loaded.load_settings().map_err(Exit::usage)?;
    match &loaded.profile.target.url {
        Some(url) => plan_for(&spec, url, out, &loaded.profile)
            .map(|plan| Planned::Ready(Box::new(plan)))
            .map_err(|e| Exit::usage(format!("{}: target.url: {e}", loaded.file.display()))),
        None => Ok(Planned::NeedsUrl(Box::new(spec))),
    }
}

impl Planned {
    /// The plan for the URL the cluster choice settled on (the profile's
    /// own when it named one).
    fn for_url(self, url: &str, out: &Path, p: &Profile) -> Result<LoadPlan, Exit> {
        match self {
            Planned::Ready(plan) => Ok(*plan),
            Planned::NeedsUrl(spec) => plan_for(&spec, url, out, p)
                .map_err(|e| Exit::usage(format!("the sandbox's URL {url}: {e}"))),
        }
    }
}

fn plan_for(
    spec: &LoadSpec,
    url: &str,
    out: &Path,
    p: &Profile,
) -> Result<LoadPlan, load::plan::PlanError> {
    spec.plan(url, out, load_bound(p), host::raise_open_files_limit().0)
}

/// The profile's worst case: the load is stopped earlier, after the
/// cooldown (or by Ctrl-C).
fn load_bound(p: &Profile) -> Duration {
    p.load.warmup + p.rollout.deadline + p.load.cooldown + LOAD_BOUND_SLACK
}

/// Claim the run directory (one that holds a run is refused: the
/// command cleared it first if `--force` said so), mark it as being
/// written, and write the profile as it will run (secrets redacted
/// unless `keep_secrets`).
fn prepare_dir(out: &Path, p: &Profile, keep_secrets: bool) -> Result<rundir::Running, Exit> {
    rundir::claim(out)?;
    let running = rundir::Running::start(out)?;
    let kept = if keep_secrets {
        p.clone()
    } else {
        p.redacted()
    };
    rundir::write_atomic(&out.join(PROFILE_YAML), kept.resolved_yaml().as_bytes())?;
    Ok(running)
}

async fn choose_cluster(loaded: &LoadedProfile, flags: &choice::Flags) -> Result<Chosen, Exit> {
    choice::choose(loaded, flags).await.map_err(|e| match e {
        ChooseError::Input(m) => Exit::usage(m),
        ChooseError::Unavailable(m) => invalid(m),
    })
}

/// The cluster side of the run, once chosen.
struct Site {
    client: kube::Client,
    /// The API server's URL, for messages about reaching it.
    server: String,
    namespace: String,
    deployment: String,
    service: String,
    /// `target.also_watch`.
    also: Vec<Workload>,
    /// The profile drains or uncordons: the Nodes are watched too.
    drains: bool,
    /// The cluster is the embedded sandbox.
    simulator: bool,
    /// The cluster as `exec` steps see it, when there are any.
    exec: Option<Arc<ExecEnv>>,
    /// For `steps/N.log`.
    run_dir: PathBuf,
}

impl Site {
    fn of(chosen: &Chosen, p: &Profile, out: &Path) -> Result<Site, Exit> {
        let namespace = chosen.cluster.namespace.clone();
        let execs = p.rollout.steps.iter().any(|s| matches!(s, Step::Exec(_)));
        let exec = execs
            .then(|| {
                ExecEnv::prepare(
                    chosen.kubeconfig.as_deref(),
                    chosen.context.as_deref(),
                    &namespace,
                    &p.rollout.deployment,
                )
            })
            .transpose()
            .map_err(|e| invalid(format!("preparing the exec steps' kubeconfig: {e}")))?
            .map(Arc::new);
        Ok(Site {
            client: chosen.cluster.client.clone(),
            server: chosen.cluster.server.clone(),
            namespace,
            deployment: p.rollout.deployment.clone(),
            service: p.target.service.clone(),
            also: p
                .target
                .also_watch
                .iter()
                .map(|a| Workload {
                    deployment: a.deployment.clone(),
                    service: a.service.clone(),
                })
                .collect(),
            drains: p
                .setup
                .iter()
                .chain(&p.rollout.steps)
                .any(|s| matches!(s, Step::Drain(_) | Step::Uncordon(_))),
            exec,
            run_dir: out.to_path_buf(),
            simulator: chosen.sandbox.is_some(),
        })
    }

    /// How long a proxy may route by stale endpoints, and where that
    /// value comes from: the profile's, the sandbox's lag, or baton's
    /// real-cluster default.
    fn allowance(&self, p: &Profile) -> (Duration, String) {
        p.attribution
            .allowance(p.sandbox.as_ref().filter(|_| self.simulator))
    }

    fn watch_target(&self) -> WatchTarget {
        WatchTarget {
            namespace: self.namespace.clone(),
            deployment: self.deployment.clone(),
            service: self.service.clone(),
            also: self.also.clone(),
            nodes: self.drains,
        }
    }

    fn step_context(
        &self,
        loaded: &LoadedProfile,
        clock: RunClock,
        events: tokio::sync::mpsc::UnboundedSender<crate::cluster::event::LifecycleEvent>,
        cancel: CancellationToken,
        stall: steps::StallPolicy,
    ) -> StepContext {
        StepContext {
            client: self.client.clone(),
            namespace: self.namespace.clone(),
            deployment: self.deployment.clone(),
            base_dir: loaded.base_dir.clone(),
            clock,
            events,
            cancel,
            stall,
            exec: self.exec.clone(),
            run_dir: Some(self.run_dir.clone()),
            created: None,
        }
    }
}

/// Preflight's errors as exit codes: missing permissions, missing objects
/// and bad manifests are the user's to fix (2); an API that cannot be
/// asked makes the run impossible (3).
fn preflight_exit(site: &Site, e: preflight::PreflightError) -> Exit {
    use preflight::PreflightError as E;
    match e {
        E::Missing { .. } | E::NotFound { .. } | E::Manifest { .. } => {
            Exit::usage(format!("preflight: {e}"))
        }
        E::Review(_) | E::Read { .. } => invalid(format!(
            "cannot use the API server at {}: preflight: {e}",
            site.server
        )),
    }
}

/// Every permission the setup, the steps, the watches and the teardown
/// need, and every `exec` program, before anything is changed.
async fn preflight(site: &Site, loaded: &LoadedProfile, restored: bool) -> Result<(), Exit> {
    let p = &loaded.profile;
    let exit = |e| preflight_exit(site, e);
    let (client, ns) = (&site.client, &site.namespace);
    let steps: Vec<Step> = p
        .setup
        .iter()
        .chain(&p.rollout.steps)
        .chain(&p.teardown.steps)
        .cloned()
        .collect();
    let missing = preflight::exec_problems(&steps, &loaded.base_dir);
    if !missing.is_empty() {
        return Err(Exit::usage(format!("preflight: {}", missing.join("; "))));
    }
    let mut perms = preflight::permissions_for(&steps);
    perms.extend(preflight::extra_permissions(p.rollout.on_stall, restored));
    if p.load.from == LoadFrom::Cluster {
        perms.extend(preflight::fleet_permissions());
    }
    if !p.setup.is_empty() && !p.teardown.keep_created {
        perms.extend(preflight::teardown_permissions(&p.setup, &loaded.base_dir).map_err(exit)?);
    }
    perms.extend(preflight::manifest_permissions(&steps, &loaded.base_dir).map_err(exit)?);
    perms.extend(
        preflight::apply_create_permissions(client, ns, &steps, &loaded.base_dir)
            .await
            .map_err(exit)?,
    );
    preflight::preflight(client, ns, &perms).await.map_err(exit)
}

/// The Deployment and Service the run measures exist (after the setup,
/// which may have made them), those watched beside them, and the
/// containers its steps name.
async fn check_targets(site: &Site, loaded: &LoadedProfile) -> Result<(), Exit> {
    preflight::check_targets(
        &site.client,
        &site.namespace,
        &site.deployment,
        Some(&site.service),
        &loaded.profile.rollout.steps,
    )
    .await
    .map_err(|e| preflight_exit(site, e))?;
    preflight::check_also_watched(&site.client, &site.namespace, &site.also)
        .await
        .map_err(|e| preflight_exit(site, e))
}

/// The profile's setup steps (before the watches; not measured), the
/// objects their `apply` steps create recorded in `created`. A failure
/// stops the run (exit 2): what the profile asked for cannot be prepared.
async fn setup(
    site: &Site,
    loaded: &LoadedProfile,
    clock: RunClock,
    created: &CreatedLog,
    interrupt: &CancellationToken,
) -> Result<(), Exit> {
    let p = &loaded.profile;
    if p.setup.is_empty() {
        return Ok(());
    }
    let (tx, _rx) = tokio::sync::mpsc::unbounded_channel();
    let mut ctx = site.step_context(
        loaded,
        clock,
        tx,
        interrupt.child_token(),
        Default::default(),
    );
    ctx.created = Some(created.clone());
    ctx.run_dir = None;
    let report = steps::run_steps(&ctx, &p.setup).await;
    if report.completed {
        return Ok(());
    }
    Err(Exit::usage(format!("setup: {}", report.why_incomplete())))
}

/// After the run, whatever happened: the profile's teardown steps, then
/// every object its setup created, deleted newest first. Not stopped by
/// Ctrl-C or SIGTERM (a second one ends baton at once). `None` when the
/// profile has neither.
async fn teardown(
    site: &Site,
    loaded: &LoadedProfile,
    clock: RunClock,
    created: &CreatedLog,
    quiet: bool,
) -> Option<TeardownRecord> {
    let t = &loaded.profile.teardown;
    if loaded.profile.setup.is_empty() && t.steps.is_empty() {
        return None;
    }
    if !quiet {
        eprintln!("baton: tearing down what the setup made");
    }
    let (tx, _rx) = tokio::sync::mpsc::unbounded_channel();
    let ctx = site.step_context(
        loaded,
        clock,
        tx,
        CancellationToken::new(),
        Default::default(),
    );
    let mut record = TeardownRecord::default();
    // Each teardown step runs whatever the one before did.
    for step in &t.steps {
        let report = steps::run_steps(&ctx, std::slice::from_ref(step)).await;
        record
            .steps
            .extend(report.steps.iter().map(finish::step_record));
    }
    let created: Vec<_> = created.lock().map(|c| c.clone()).unwrap_or_default();
    if t.keep_created {
        record.left = created
            .iter()
            .map(|c| Leftover {
                object: c.to_string(),
                why: "kept: teardown.keep_created".into(),
            })
            .collect();
    } else {
        let cleaned = teardown::delete_created(&site.client, &created, TEARDOWN_WAIT).await;
        record.deleted = cleaned.deleted;
        record.left = cleaned.left;
    }
    Some(record)
}

/// On a run that stopped on an error: what teardown did, on stderr (there
/// is no report to put it in).
fn say_teardown(record: Option<&TeardownRecord>) {
    let Some(r) = record else { return };
    for s in &r.steps {
        eprintln!("baton: teardown step {}: {}", s.description, s.outcome);
    }
    if !r.deleted.is_empty() {
        eprintln!("baton: teardown deleted {}", r.deleted.join(", "));
    }
    for l in &r.left {
        eprintln!("baton: teardown LEFT {}: {}", l.object, l.why);
    }
}

/// `cluster/` before or after the run.
async fn snapshot(site: &Site, out: &Path, when: &str) -> Result<(), String> {
    snapshot::snapshot(
        &site.client,
        &site.namespace,
        &site.deployment,
        Some(&site.service),
        out,
        when,
    )
    .await
    .map_err(|e| format!("recording the cluster {when} the run: {e}"))
}

/// A matrix variant's patches, then the rollout they cause; any failure
/// is the variant's (exit 2: the setup asked for is not possible).
async fn apply_variant(
    site: &Site,
    loaded: &LoadedProfile,
    clock: RunClock,
    opts: &RunOptions,
    interrupt: &CancellationToken,
) -> Result<(), Exit> {
    if opts.variant.is_empty() {
        return Ok(());
    }
    let all: Vec<Step> = opts
        .variant
        .iter()
        .cloned()
        .chain([Step::WaitRollout(steps::Wait {
            timeout: SETUP_ROLLOUT_TIMEOUT,
        })])
        .collect();
    if !opts.quiet {
        let what: Vec<String> = opts.variant.iter().map(ToString::to_string).collect();
        eprintln!("baton: setting up: {}", what.join("; "));
    }
    // The setup's events are not the measured rollout's: not kept.
    let (tx, _rx) = tokio::sync::mpsc::unbounded_channel();
    let ctx = site.step_context(
        loaded,
        clock,
        tx,
        interrupt.child_token(),
        Default::default(),
    );
    let report = steps::run_steps(&ctx, &all).await;
    if report.completed {
        return Ok(());
    }
    Err(Exit::usage(format!(
        "setting up the variant failed: {}",
        report.why_incomplete()
    )))
}

/// A healthy baseline: the Deployment rolled out and the URL answering,
/// so that failures during the run are the rollout's, not a cold start's.
async fn baseline(
    site: &Site,
    answering: gate::Answering<'_>,
    quiet: bool,
    interrupt: &CancellationToken,
) -> Result<(), Exit> {
    if !quiet {
        eprintln!(
            "baton: waiting for a healthy baseline (deployment rolled out, {})",
            match answering {
                gate::Answering::Probe(..) => "target answering",
                gate::Answering::Settled { .. } => "its endpoints settled in every proxy",
            }
        );
    }
    let waited = std::time::Instant::now();
    gate::wait_baseline(
        &site.client,
        &site.namespace,
        &site.deployment,
        answering,
        BASELINE_WAIT,
        interrupt,
    )
    .await
    .map_err(|why| Exit {
        code: if interrupt.is_cancelled() {
            crate::interrupt::exit_code()
        } else {
            exit::INVALID
        },
        message: format!("no healthy baseline before the rollout: {why}"),
    })?;
    if !quiet {
        // The waiting line above must not read as still true once the
        // load and the rollout run.
        eprintln!(
            "baton: baseline healthy after {:.1} s; load and rollout starting",
            waited.elapsed().as_secs_f64()
        );
    }
    Ok(())
}

/// What the load and the steps did.
struct Measured {
    load: LoadRun,
    /// Every event the watches and steps sent, and the watches' blind
    /// spots (filled in once the watches stop).
    events: Vec<crate::cluster::event::LifecycleEvent>,
    watch: crate::cluster::watch::WatchSummary,
    /// `None` when interrupted before the first step.
    steps: Option<StepsReport>,
    deadline_exceeded: bool,
    steps_started_ns: u64,
    steps_ended_ns: u64,
    /// The in-cluster workers, when the load came from them.
    workers: Vec<WorkerRecord>,
}

/// Start the load; warm up; run the steps, cut off at the rollout
/// deadline; cool down; stop the load and wait for its last request.
async fn load_and_roll(
    site: &Site,
    loaded: &LoadedProfile,
    how: How<'_>,
    clock: RunClock,
    watching: &Watching,
    quiet: bool,
    interrupt: &CancellationToken,
) -> anyhow::Result<Measured> {
    let p = &loaded.profile;
    let mut plan = how.plan;
    plan.status_note = watching.note();
    let stop = interrupt.child_token();
    let load_task = match how.fleet {
        None => {
            let run = load::execute(Arc::new(plan), Some(clock), stop.clone(), quiet);
            tokio::spawn(async move {
                run.await
                    .map(|l| (l, Vec::new()))
                    .map_err(anyhow::Error::from)
            })
        }
        Some(params) => {
            let fleet = Fleet::launch(site.client.clone(), params.clone(), quiet, interrupt)
                .await
                .map_err(|e| fleet_exit(e, interrupt))?;
            let (start_ns, run) = fleet
                .start(
                    clock,
                    &site.run_dir,
                    stop.clone(),
                    plan.status_note.clone(),
                    quiet,
                )
                .map_err(|e| fleet_exit(e, interrupt))?;
            // The warmup counts from the load's start.
            tokio::time::sleep_until((clock.origin() + Duration::from_nanos(start_ns)).into())
                .await;
            tokio::spawn(async move {
                match run.await {
                    Ok(Ok(r)) => Ok((r.load, r.workers)),
                    Ok(Err(e)) => Err(anyhow::Error::from(invalid(e))),
                    Err(e) => Err(anyhow::anyhow!("the load workers' task failed: {e}")),
                }
            })
        }
    };

    sleep_or(p.load.warmup, interrupt).await;
    let steps_cancel = interrupt.child_token();
    let stall = steps::StallPolicy {
        no_progress: p.rollout.no_progress,
        on_stall: p.rollout.on_stall,
    };
    let ctx = site.step_context(
        loaded,
        clock,
        watching.events(),
        steps_cancel.clone(),
        stall,
    );
    let steps_started_ns = clock.now_ns();
    let mut deadline_exceeded = false;
    let steps = if interrupt.is_cancelled() {
        None
    } else {
        let run = steps::run_steps(&ctx, &p.rollout.steps);
        tokio::pin!(run);
        tokio::select! {
            r = &mut run => Some(r),
            _ = tokio::time::sleep(p.rollout.deadline) => {
                steps_cancel.cancel();
                deadline_exceeded = true;
                Some(run.await)
            }
        }
    };
    let steps_ended_ns = clock.now_ns();
    drop(ctx);
    sleep_or(p.load.cooldown, interrupt).await;
    stop.cancel();
    let (load, workers) = load_task
        .await
        .map_err(|e| anyhow::anyhow!("the load task failed: {e}"))??;
    Ok(Measured {
        load,
        workers,
        events: Vec::new(),
        watch: Default::default(),
        steps,
        deadline_exceeded,
        steps_started_ns,
        steps_ended_ns,
    })
}

/// A token for the load and the steps: cancelled by Ctrl-C/SIGTERM, or
/// when baton has been blind to the cluster for longer than the run may
/// be (it stops within seconds rather than load a cluster it cannot see
/// until a step's timeout; the blind spot makes the run invalid).
fn halt_when_blind(
    interrupt: &CancellationToken,
    blind: CancellationToken,
    limit: Duration,
) -> CancellationToken {
    let halt = interrupt.child_token();
    let h = halt.clone();
    tokio::spawn(async move {
        tokio::select! {
            _ = blind.cancelled() => {
                eprintln!(
                    "baton: the API server has not answered for {} (thresholds.max_blind_spot): stopping; the run is invalid",
                    humantime::format_duration(limit)
                );
                h.cancel();
            }
            _ = h.cancelled() => {}
        }
    });
    halt
}

async fn sleep_or(d: Duration, cancel: &CancellationToken) {
    tokio::select! {
        _ = tokio::time::sleep(d) => {}
        _ = cancel.cancelled() => {}
    }
}

/// Where the load comes from, when it is the cluster: the workers' Job for
/// `url` (the Service's in-cluster address).
fn fleet_params(p: &Profile, site: &Site, url: &str) -> Option<JobParams> {
    if p.load.from != LoadFrom::Cluster {
        return None;
    }
    let workers = p.load.worker_count();
    let bound = load_bound(p);
    Some(JobParams {
        run_id: job::run_id(),
        namespace: site.namespace.clone(),
        image: p.load.image.clone().unwrap_or_else(job::default_image),
        plan: WorkerPlan {
            url: url.to_string(),
            workers: u64::from(workers),
            rate: p.load.rate,
            bound,
            timeout: p.load.timeout,
            connect_timeout: p.load.connect_timeout,
            headers: p.target.headers.clone(),
            expect_status: p.target.expect_status.clone(),
            backend_from: p.target.backend_from.clone(),
            version_from: p.target.version_from.clone(),
            concurrency: p
                .load
                .concurrency
                .map(|c| c.div_ceil(workers as usize).max(1)),
            // Long enough for the others to start and be attached to.
            start_within: coordinator::RUNNING_WAIT + Duration::from_secs(120),
        },
        deadline: coordinator::RUNNING_WAIT + BASELINE_WAIT + bound + Duration::from_secs(120),
    })
}

/// A fleet that could not start: the profile's to fix (2), the cluster's
/// (3), or an interrupt.
fn fleet_exit(e: FleetError, interrupt: &CancellationToken) -> Exit {
    match e {
        _ if interrupt.is_cancelled() => Exit {
            code: crate::interrupt::exit_code(),
            message: format!("interrupted while starting the load workers ({e})"),
        },
        FleetError::Input(m) => Exit::usage(m),
        FleetError::Unavailable(m) => invalid(m),
    }
}

/// Exit 3: baton could not measure faithfully.
fn invalid(message: impl std::fmt::Display) -> Exit {
    Exit {
        code: exit::INVALID,
        message: message.to_string(),
    }
}
