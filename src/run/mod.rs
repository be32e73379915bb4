//! `baton run`'s sequence, end to end: choose the cluster, preflight,
//! snapshot, start the watches, wait for a healthy baseline, start the
//! load, warm up, execute the rollout steps, cool down, stop, then
//! correlate, judge and write the run directory.
//!
//! One [`RunClock`] stamps requests and events alike. Shutdown is passed
//! in (`interrupt`), so Ctrl-C and tests take the same path: an
//! interrupted run still writes every file, marked interrupted.
//!
//! Not for: the pieces themselves (`load`, `cluster`, `attribution`,
//! `verdict`, `report`).

pub mod cluster_choice;
mod finish;
mod gate;
pub mod record;
pub mod render;

use crate::clock::RunClock;
use crate::cluster::event::{EventKind, LifecycleEvent};
use crate::cluster::{preflight, snapshot, steps, watch};
use crate::exit::{self, Exit};
use crate::load::client::StatusSet;
use crate::load::{self, plan::LoadInput, plan::LoadPlan};
use crate::profile::{LoadedProfile, RESOLVED_YAML};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

pub use render::{RunOutcome, render_dir};

/// How to run a profile, beyond the profile itself.
#[derive(Clone, Debug, Default)]
pub struct RunOptions {
    pub out_dir: PathBuf,
    pub kubeconfig: Option<PathBuf>,
    pub context: Option<String>,
    pub namespace: Option<String>,
    pub quiet: bool,
    /// Steps run before the watches and the load, to put the Deployment
    /// in the state a variant asks for (`baton matrix`: a preStop sleep, a
    /// grace period, a maxSurge). They end with the rollout they cause
    /// complete, and are not part of the measured rollout.
    pub setup: Vec<crate::cluster::steps::Step>,
}

/// Run a loaded profile. `Err` carries an [`Exit`] for bad input (2) or a
/// cluster that cannot be used (3); a run that happened returns its
/// outcome whatever the verdict.
pub async fn execute(
    loaded: &LoadedProfile,
    opts: &RunOptions,
    interrupt: CancellationToken,
) -> anyhow::Result<RunOutcome> {
    let p = &loaded.profile;
    let out = &opts.out_dir;
    std::fs::create_dir_all(out.join("cluster"))
        .map_err(|e| Exit::usage(format!("cannot create {}: {e}", out.display())))?;
    write_file(&out.join(RESOLVED_YAML), &p.resolved_yaml())?;

    let clock = RunClock::start();
    let chosen = cluster_choice::choose(
        loaded,
        opts.kubeconfig.as_deref(),
        opts.context.as_deref(),
        opts.namespace.as_deref(),
    )
    .await
    .map_err(|e| match e {
        cluster_choice::ChooseError::Input(m) => Exit::usage(m),
        cluster_choice::ChooseError::Unavailable(m) => Exit {
            code: exit::INVALID,
            message: m,
        },
    })?;
    let client = chosen.cluster.client.clone();
    let ns = chosen.cluster.namespace.clone();
    let deployment = p.rollout.deployment.clone();
    // The load plan, built before anything touches the cluster so that bad
    // target settings (a CA file, a URL) stop the run first. Bounded by the
    // profile's own worst case; stopped earlier by `stop` after the
    // cooldown (or by Ctrl-C).
    let bound = p.load.warmup + p.rollout.deadline + p.load.cooldown + Duration::from_secs(30);
    let mut plan = LoadPlan::build(LoadInput {
        url: chosen.url.clone(),
        rate: p.load.rate,
        concurrency: p.load.concurrency,
        requests: None,
        duration: Some(bound),
        timeout: p.load.timeout,
        connect_timeout: p.load.connect_timeout,
        keepalive: p.load.keepalive,
        headers: p.target.headers.clone(),
        method: "GET".into(),
        // Profile statuses are checked to be 100..600 when parsed.
        expect_status: Some(StatusSet(
            p.target.expect_status.iter().map(|&s| (s, s)).collect(),
        )),
        backend_from: extractor(&p.target.backend_from, "target.backend_from")?,
        version_from: extractor(&p.target.version_from, "target.version_from")?,
        source_ips: p.load.source_ips.clone(),
        out_dir: out.clone(),
        workers: None,
        tls: crate::load::tls::TlsOptions {
            ca_file: p.target.ca_file.as_ref().map(|f| loaded.base_dir.join(f)),
            insecure: p.target.insecure_skip_tls_verify,
        },
        open_files: crate::load::host::raise_open_files_limit().0,
    })
    .map_err(|e| Exit::usage(format!("{}: {e}", loaded.file.display())))?;
    plan.duration_is_bound = true;
    let say = |msg: &str| {
        if !opts.quiet {
            eprintln!("baton: {msg}");
        }
    };
    say(&format!(
        "{} on {}: deployment {ns}/{deployment}, load {} at {}/s",
        p.name, chosen.label, chosen.url, p.load.rate
    ));

    // Preflight: every permission the steps and watches need, and the
    // objects, before anything is changed.
    let server = chosen.cluster.server.clone();
    let preflight_exit = |e: preflight::PreflightError| {
        let code = preflight_exit_code(&e);
        Exit {
            code,
            message: if code == exit::INVALID {
                format!("cannot use the API server at {server}: preflight: {e}")
            } else {
                format!("preflight: {e}")
            },
        }
    };
    let mut perms = preflight::permissions_for(&p.rollout.steps);
    perms.extend(
        preflight::manifest_permissions(&p.rollout.steps, &loaded.base_dir)
            .map_err(preflight_exit)?,
    );
    perms.extend(
        preflight::apply_create_permissions(&client, &ns, &p.rollout.steps, &loaded.base_dir)
            .await
            .map_err(preflight_exit)?,
    );
    preflight::preflight(&client, &ns, &perms)
        .await
        .map_err(preflight_exit)?;
    preflight::check_targets(&client, &ns, &deployment, Some(&p.target.service))
        .await
        .map_err(preflight_exit)?;
    snapshot::snapshot(
        &client,
        &ns,
        &deployment,
        Some(&p.target.service),
        &out.join("cluster"),
        "before",
    )
    .await
    .map_err(|e| Exit {
        code: exit::INVALID,
        message: format!("recording the cluster before the run: {e}"),
    })?;

    if !opts.setup.is_empty() {
        say(&format!(
            "setting up: {}",
            opts.setup
                .iter()
                .map(|s| s.to_string())
                .collect::<Vec<_>>()
                .join("; ")
        ));
        run_setup(
            &client,
            &ns,
            &deployment,
            loaded,
            clock,
            &opts.setup,
            &interrupt,
        )
        .await?;
    }

    // Watches first, so the initial state is on the timeline.
    let (events_tx, mut events_rx) = tokio::sync::mpsc::unbounded_channel::<LifecycleEvent>();
    let watch_cancel = CancellationToken::new();
    let watches = watch::start(
        client.clone(),
        watch::WatchTarget {
            namespace: ns.clone(),
            deployment: deployment.clone(),
            service: p.target.service.clone(),
        },
        clock,
        events_tx.clone(),
        watch_cancel.clone(),
    )
    .await
    .map_err(|e| Exit {
        code: exit::INVALID,
        message: format!("starting the watches: {e}"),
    })?;
    let note = crate::load::plan::StatusNote::default();
    let collector = {
        let note = note.clone();
        let steps_total = p.rollout.steps.len();
        tokio::spawn(async move {
            let mut all = Vec::new();
            let (mut step, mut progress) = (String::new(), String::new());
            let mut ready = std::collections::BTreeSet::new();
            while let Some(e) = events_rx.recv().await {
                match e.kind {
                    EventKind::EndpointReady => {
                        ready.insert(e.address.clone());
                    }
                    EventKind::EndpointNotReady | EventKind::EndpointRemoved => {
                        ready.remove(&e.address);
                    }
                    EventKind::StepStarted => {
                        step = format!(
                            "{}/{steps_total} {}",
                            e.object.trim_start_matches("step/"),
                            e.detail
                        )
                    }
                    EventKind::StepEnded => step = format!("{} done", e.detail),
                    EventKind::RolloutStalled => step = format!("STALLED: {}", e.reason),
                    EventKind::DeploymentProgress => progress = e.new.clone(),
                    _ => {}
                }
                if let Ok(mut n) = note.lock() {
                    let endpoints = format!("{} ready endpoints", ready.len());
                    *n = [step.as_str(), progress.as_str(), endpoints.as_str()]
                        .iter()
                        .filter(|s| !s.is_empty())
                        .copied()
                        .collect::<Vec<_>>()
                        .join(" | ");
                }
                all.push(e);
            }
            all
        })
    };

    // A healthy baseline: the Deployment rolled out and the URL answering.
    say("waiting for a healthy baseline (deployment rolled out, target answering)");
    let baseline = gate::wait_baseline(
        &client,
        &ns,
        &deployment,
        &plan.template,
        &chosen.url,
        Duration::from_secs(90),
        &interrupt,
    )
    .await;
    if let Err(why) = baseline {
        watch_cancel.cancel();
        let _ = watches.stop().await;
        return Err(Exit {
            code: if interrupt.is_cancelled() {
                exit::INTERRUPTED
            } else {
                exit::INVALID
            },
            message: format!("no healthy baseline before the rollout: {why}"),
        }
        .into());
    }

    plan.status_note = note.clone();
    let plan = Arc::new(plan);
    let stop = interrupt.child_token();
    let load_task = tokio::spawn(load::execute(
        plan.clone(),
        Some(clock),
        stop.clone(),
        opts.quiet,
    ));

    // Warm up, then the steps (bounded by the rollout deadline), then
    // cool down.
    sleep_or(p.load.warmup, &interrupt).await;
    let steps_cancel = interrupt.child_token();
    let ctx = steps::StepContext {
        client: client.clone(),
        namespace: ns.clone(),
        deployment: deployment.clone(),
        base_dir: loaded.base_dir.clone(),
        clock,
        events: events_tx.clone(),
        cancel: steps_cancel.clone(),
        stall: steps::StallPolicy {
            no_progress: p.rollout.no_progress,
            on_stall: p.rollout.on_stall,
        },
    };
    let steps_started_ns = clock.now_ns();
    let mut deadline_exceeded = false;
    let report = if interrupt.is_cancelled() {
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
    sleep_or(p.load.cooldown, &interrupt).await;
    stop.cancel();
    let load_run = load_task
        .await
        .map_err(|e| anyhow::anyhow!("the load task failed: {e}"))??;

    // Stop watching, gather the timeline.
    let watch_summary = watches.stop().await;
    drop(ctx);
    drop(events_tx);
    let events = collector
        .await
        .map_err(|e| anyhow::anyhow!("collecting events failed: {e}"))?;
    if let Err(e) = snapshot::snapshot(
        &client,
        &ns,
        &deployment,
        Some(&p.target.service),
        &out.join("cluster"),
        "after",
    )
    .await
    {
        eprintln!("baton: warning: recording the cluster after the run: {e}");
    }

    let outcome = finish::finish(finish::Inputs {
        profile: p,
        out_dir: out,
        clock,
        load: load_run,
        interrupted: interrupt.is_cancelled(),
        events,
        steps: report,
        deadline_exceeded,
        steps_started_ns,
        steps_ended_ns,
        watch: watch_summary,
        cluster_label: chosen.label.clone(),
        namespace: ns.clone(),
        target_url: chosen.url.clone(),
        propagation_allowance: p
            .sandbox
            .as_ref()
            .map(|s| s.propagation_delay + Duration::from_millis(500)),
    })?;
    if let Some(sb) = chosen.sandbox {
        if let Err(e) = write_ground_truth(&out.join(GROUND_TRUTH_CSV), &sb, clock) {
            eprintln!("baton: warning: writing the sandbox's ground truth: {e}");
        }
        sb.shutdown().await;
    }
    Ok(outcome)
}

/// On the sandbox only: which Pod its proxy sent each connection to, on
/// the run clock. The simulator's own record, for checking attribution
/// and for a person curious about a failure.
pub const GROUND_TRUTH_CSV: &str = "sandbox-ground-truth.csv";

fn write_ground_truth(
    path: &Path,
    sandbox: &baton_sandbox::Sandbox,
    clock: RunClock,
) -> std::io::Result<()> {
    let origin = clock
        .wall_origin()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let mut w = csv::Writer::from_path(path).map_err(std::io::Error::other)?;
    w.write_record(["accepted_ns", "closed_ns", "client_port", "pod", "outcome"])
        .map_err(std::io::Error::other)?;
    let rel = |t: u128| (t as i128 - origin as i128).to_string();
    for r in sandbox.ground_truth().snapshot() {
        let outcome = serde_json::to_value(r.outcome)
            .ok()
            .and_then(|v| v.as_str().map(String::from))
            .unwrap_or_default();
        w.write_record([
            rel(r.accepted_unix_ns),
            r.closed_unix_ns.map(rel).unwrap_or_default(),
            r.client_addr.port().to_string(),
            r.pod.unwrap_or_default(),
            outcome,
        ])
        .map_err(std::io::Error::other)?;
    }
    w.flush()
}

/// Run the setup steps, then wait for the rollout they caused; any
/// failure is the variant's (exit 2: the setup asked for is not possible).
async fn run_setup(
    client: &kube::Client,
    ns: &str,
    deployment: &str,
    loaded: &LoadedProfile,
    clock: RunClock,
    setup: &[steps::Step],
    interrupt: &CancellationToken,
) -> anyhow::Result<()> {
    let (tx, _rx) = tokio::sync::mpsc::unbounded_channel();
    let ctx = steps::StepContext {
        client: client.clone(),
        namespace: ns.to_string(),
        deployment: deployment.to_string(),
        base_dir: loaded.base_dir.clone(),
        clock,
        events: tx,
        cancel: interrupt.child_token(),
        stall: steps::StallPolicy::default(),
    };
    let mut all = setup.to_vec();
    all.push(steps::Step::WaitRollout(steps::Wait {
        timeout: Duration::from_secs(180),
    }));
    let report = steps::run_steps(&ctx, &all).await;
    if report.completed {
        return Ok(());
    }
    let why = report
        .steps
        .iter()
        .find(|s| !matches!(s.outcome, steps::StepOutcome::Done))
        .map_or("did not complete".to_string(), |s| {
            format!("{}: {:?}", s.description, s.outcome)
        });
    Err(Exit::usage(format!("setting up the variant failed: {why}")).into())
}

/// A profile's `backend_from` / `version_from` as the load engine's
/// extractor; `field` names it in the error.
fn extractor(
    spec: &Option<crate::profile::ExtractorSpec>,
    field: &str,
) -> Result<Option<crate::load::extract::Extractor>, Exit> {
    spec.as_ref()
        .map(|s| s.compile())
        .transpose()
        .map_err(|e| Exit::usage(format!("{field}: {e}")))
}

fn preflight_exit_code(e: &preflight::PreflightError) -> u8 {
    use preflight::PreflightError as E;
    // Missing permissions, missing objects and bad manifests are the
    // user's to fix (2); an API that cannot be asked makes the run
    // impossible (3).
    match e {
        E::Missing { .. } | E::NotFound { .. } | E::Manifest { .. } => exit::USAGE,
        E::Review(_) | E::Read { .. } => exit::INVALID,
    }
}

async fn sleep_or(d: Duration, cancel: &CancellationToken) {
    tokio::select! {
        _ = tokio::time::sleep(d) => {}
        _ = cancel.cancelled() => {}
    }
}

fn write_file(path: &Path, text: &str) -> anyhow::Result<()> {
    std::fs::write(path, text)
        .map_err(|e| Exit::usage(format!("cannot write {}: {e}", path.display())).into())
}
