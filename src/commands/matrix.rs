//! `baton matrix PROFILE --vary path=v1,v2,...`: the same rollout once
//! per variant, each into `DIR/<variant>/`, then the comparison
//! (`DIR/compare.md`, `DIR/compare.html`, `DIR/matrix.json`, and the
//! table on the terminal) naming the cheapest variant with zero failures.
//!
//! Every variant's profile is validated before anything runs. On the
//! sandbox each variant starts a fresh sandbox (`run::execute` does); on
//! a real cluster the Deployment's spec is captured before the first
//! variant and put back after each one (`cluster::restore`), so every
//! variant starts from the same state and the cluster is left as found.
//!
//! Exit: 0 some variant had zero failures, 1 none did, 2 bad input, 3
//! every variant was invalid (or the Deployment could not be put back),
//! 130 interrupted: Ctrl-C stops the current variant as it stops
//! `baton run` (its files written, marked interrupted), starts no other,
//! and the comparison of what ran is still written.
//!
//! Not for: the variants' patches, costs and the cheapest rule
//! (`crate::matrix`), or the table (`crate::compare`).

use crate::cli::MatrixArgs;
use crate::cluster::choice::{self, Resolved};
use crate::cluster::restore::Captured;
use crate::cluster::steps::Step;
use crate::compare::{RunColumn, read, render};
use crate::exit::{self, Exit};
use crate::matrix::{self, Variant, Vary};
use crate::profile::{self, LoadedProfile};
use crate::run::{self, RunOptions};
use crate::rundir::matrix::VariantResult;
use crate::rundir::variant::{Setting, VariantRecord};
use crate::rundir::{self, COMPARE_HTML, COMPARE_MD, MatrixRecord};
use crate::verdict::Verdict;
use std::path::{Path, PathBuf};
use tokio_util::sync::CancellationToken;

pub async fn run(args: MatrixArgs) -> anyhow::Result<u8> {
    let plan = Plan::new(&args)?;
    let flags = super::cluster_flags(&args.cluster);
    let captured = capture_if_real(&plan, &flags).await?;
    outln!(
        "baton matrix: {} variant(s) of {} -> {}",
        plan.variants.len(),
        plan.name,
        plan.dir.display()
    );
    let running = rundir::Running::start(&plan.dir).map_err(Exit::from)?;
    let interrupt = crate::interrupt::listen();
    let ran = run_variants(&args, &plan, &flags, captured.as_ref(), &interrupt).await?;
    let best = write_comparison(&args, &plan, &ran)?;
    running.finished().map_err(Exit::from)?;

    if ran.interrupted {
        return Ok(crate::interrupt::exit_code());
    }
    if let Some(e) = ran.restore_failed {
        return Err(Exit {
            code: exit::INVALID,
            message: e,
        }
        .into());
    }
    if best.is_some() {
        return Ok(exit::PASS);
    }
    let all_invalid = ran.columns.iter().all(|c| {
        c.measured
            .as_ref()
            .is_none_or(|m| m.verdict == Verdict::Invalid)
    });
    Ok(if all_invalid {
        exit::INVALID
    } else {
        exit::FAIL
    })
}

/// Every variant, validated before anything runs.
struct Plan {
    varies: Vec<Vary>,
    variants: Vec<Variant>,
    slugs: Vec<String>,
    costs: Vec<f64>,
    /// Each variant's profile (the `--set`s applied) and the patches that
    /// put the Deployment in its state.
    profiles: Vec<(LoadedProfile, Vec<Step>)>,
    name: String,
    dir: PathBuf,
}

impl Plan {
    fn new(args: &MatrixArgs) -> anyhow::Result<Plan> {
        super::claim_out(args.out.as_deref(), args.force)?;
        let varies = matrix::parse_all(&args.vary).map_err(Exit::usage)?;
        let variants = matrix::cross(&varies);
        let mut profiles = Vec::new();
        for v in &variants {
            let mut sets = args.set.clone();
            sets.extend(v.sets());
            let loaded = profile::load(&args.profile, &sets)
                .map_err(|e| Exit::usage(format!("variant {}: {e}", v.describe())))?;
            loaded
                .load_settings()
                .map_err(|e| Exit::usage(format!("variant {}: {e}", v.describe())))?;
            profiles.push((loaded, v.setup().map_err(Exit::usage)?));
        }
        let name = profiles[0].0.profile.name.clone();
        let dir = args
            .out
            .clone()
            .unwrap_or_else(|| rundir::default_dir(&format!("matrix-{}", rundir::slug(&name))));
        rundir::claim(&dir).map_err(Exit::from)?;
        Ok(Plan {
            slugs: matrix::unique_slugs(&variants),
            costs: matrix::costs(&varies, &variants),
            varies,
            variants,
            profiles,
            name,
            dir,
        })
    }
}

/// On a real cluster, the Deployment as found, to put back after each
/// variant; `None` on the sandbox.
async fn capture_if_real(plan: &Plan, flags: &choice::Flags) -> anyhow::Result<Option<Captured>> {
    let p = &plan.profiles[0].0.profile;
    let Resolved::Real {
        kubeconfig,
        context,
        namespace,
        ..
    } = choice::resolve(p, flags).map_err(Exit::usage)?
    else {
        return Ok(None);
    };
    let cluster = choice::connect_real(
        kubeconfig.as_deref(),
        context.as_deref(),
        namespace.as_deref(),
    )
    .await
    .map_err(Exit::usage)?;
    let captured = Captured::capture(cluster.client, &cluster.namespace, &p.rollout.deployment)
        .await
        .map_err(|e| Exit {
            code: exit::INVALID,
            message: e.to_string(),
        })?;
    Ok(Some(captured))
}

/// What ran: one column per variant, in order.
struct Ran {
    columns: Vec<RunColumn>,
    /// Indices into the plan's variants.
    indices: Vec<usize>,
    interrupted: bool,
    restore_failed: Option<String>,
}

async fn run_variants(
    args: &MatrixArgs,
    plan: &Plan,
    flags: &choice::Flags,
    captured: Option<&Captured>,
    interrupt: &CancellationToken,
) -> anyhow::Result<Ran> {
    let mut ran = Ran {
        columns: Vec::new(),
        indices: Vec::new(),
        interrupted: false,
        restore_failed: None,
    };
    let total = plan.variants.len();
    for (i, (v, (loaded, setup))) in plan.variants.iter().zip(&plan.profiles).enumerate() {
        if interrupt.is_cancelled() {
            ran.interrupted = true;
            break;
        }
        let slug = &plan.slugs[i];
        let out_dir = plan.dir.join(slug);
        outln!("[{}/{total}] {slug} ({})", i + 1, v.describe());
        write_variant(&out_dir, slug, v, plan.costs[i])?;
        let opts = RunOptions {
            out_dir: out_dir.clone(),
            cluster: flags.clone(),
            quiet: args.quiet,
            keep_secrets: args.keep_secrets,
            restored_after: captured.is_some(),
            variant: setup.clone(),
        };
        let failed_with = match run::execute(loaded, &opts, interrupt.clone()).await {
            Ok(outcome) => {
                if !args.quiet {
                    out!(
                        "{}",
                        crate::report::run_summary::human_for(
                            &outcome.summary,
                            &crate::report::look::Look::stdout()
                        )
                    );
                }
                ran.interrupted |= outcome.summary.interrupted;
                None
            }
            Err(e) => {
                let code = e.downcast_ref::<Exit>().map(|x| x.code);
                ran.interrupted |=
                    interrupt.is_cancelled() || code == Some(crate::interrupt::exit_code());
                eprintln!("baton: variant {slug}: {e}");
                Some(e.to_string())
            }
        };
        let mut column = match failed_with {
            None => read::column(&out_dir, slug.clone())
                .unwrap_or_else(|e| no_result(&out_dir, slug, e.to_string())),
            Some(why) => no_result(&out_dir, slug, why),
        };
        column.variant = v.settings.clone();
        outln!("      -> {}", one_line(&column));
        ran.columns.push(column);
        ran.indices.push(i);
        if let Some(c) = captured {
            if !args.quiet {
                eprintln!(
                    "baton: putting deployment {} back as it was before the matrix",
                    c.name()
                );
            }
            if let Err(e) = c.restore().await {
                eprintln!("baton: {e}");
                ran.restore_failed = Some(e.to_string());
                break;
            }
        }
        if ran.interrupted {
            break;
        }
    }
    Ok(ran)
}

/// `compare.md`, `compare.html` and `matrix.json` for what ran, and the
/// table on the terminal. Returns the cheapest variant with zero
/// failures, as an index into `ran.columns`.
fn write_comparison(args: &MatrixArgs, plan: &Plan, ran: &Ran) -> anyhow::Result<Option<usize>> {
    let variants: Vec<Variant> = ran
        .indices
        .iter()
        .map(|&i| plan.variants[i].clone())
        .collect();
    let cmp = matrix::comparison(&ran.columns, &plan.varies, &variants);
    let best = cmp.choice.best;
    let mut table = cmp.table;
    if ran.interrupted {
        table.notes.push(format!(
            "Interrupted: {} of {} variant(s) ran.",
            ran.indices.len(),
            plan.variants.len()
        ));
    }
    if let Some(e) = &ran.restore_failed {
        table.notes.push(format!("Stopped: {e}"));
    }
    let title = format!("baton matrix: {}", plan.name);
    write(
        &plan.dir.join(COMPARE_MD),
        &render::markdown(&table, &title),
    )?;
    let html_path = plan.dir.join(COMPARE_HTML);
    let dirs: Vec<PathBuf> = ran
        .indices
        .iter()
        .map(|&i| plan.dir.join(&plan.slugs[i]))
        .collect();
    // The page is for people: failing to render it warns; matrix.json
    // and compare.md are what a CI step reads.
    match super::compare::html_page(
        &html_path,
        &title,
        &ran.columns,
        &dirs,
        &table,
        Some(&cmp.choice),
    ) {
        Ok(html) => write(&html_path, &html)?,
        Err(e) => eprintln!("baton: warning: {e:#}"),
    }

    let mut record = MatrixRecord::new(args.profile.display().to_string(), plan.varies.clone());
    record.variants = ran
        .indices
        .iter()
        .zip(&ran.columns)
        .map(|(&i, c)| VariantResult {
            slug: plan.slugs[i].clone(),
            settings: settings(&plan.variants[i]),
            cost: plan.costs[i],
            verdict: c.measured.as_ref().map(|m| m.verdict),
            failed: c.measured.as_ref().map(|m| m.failed),
            zero_failures: c.measured.as_ref().is_some_and(|m| m.zero_failures()),
        })
        .collect();
    record.cheapest_zero_failures = best.map(|b| ran.columns[b].label.clone());
    record.interrupted = ran.interrupted;
    record.write(&plan.dir).map_err(Exit::usage)?;

    outln!();
    out!("{}", render::text(&table));
    outln!("  comparison {}", plan.dir.join(COMPARE_MD).display());
    Ok(best)
}

/// A column for a variant that left no usable summary.
fn no_result(out_dir: &Path, slug: &str, why: String) -> RunColumn {
    RunColumn {
        label: slug.to_string(),
        settings: read::settings(out_dir).ok(),
        variant: Vec::new(),
        measured: None,
        note: Some(why),
    }
}

/// `PASS, 0 of 2000 failed` for the progress lines.
fn one_line(c: &RunColumn) -> String {
    match &c.measured {
        Some(m) => format!("{}, {} of {} failed", m.verdict_word(), m.failed, m.sent),
        None => format!(
            "no result: {}",
            c.note.as_deref().unwrap_or("no summary written")
        ),
    }
}

fn settings(v: &Variant) -> Vec<Setting> {
    v.settings
        .iter()
        .map(|(path, value)| Setting {
            path: path.clone(),
            value: value.clone(),
        })
        .collect()
}

fn write_variant(out_dir: &Path, slug: &str, v: &Variant, cost: f64) -> anyhow::Result<()> {
    std::fs::create_dir_all(out_dir)
        .map_err(|e| Exit::usage(format!("cannot create {}: {e}", out_dir.display())))?;
    VariantRecord {
        slug: slug.to_string(),
        variant: settings(v),
        cost,
    }
    .write(out_dir)
    .map_err(|e| Exit::from(e).into())
}

fn write(path: &Path, text: &str) -> anyhow::Result<()> {
    rundir::write_atomic(path, text.as_bytes()).map_err(|e| Exit::from(e).into())
}
