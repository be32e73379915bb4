//! `baton matrix PROFILE --vary path=v1,v2,...`: the same rollout once
//! per variant, each into `DIR/<variant>/`, then the comparison
//! (`DIR/compare.md`, `DIR/compare.html`, `DIR/matrix.json`, and the
//! table on the terminal) naming the cheapest variant with zero failures.
//!
//! Every variant's profile is validated before anything runs. On the
//! sandbox each variant starts a fresh sandbox (`run::execute` does); on
//! a real cluster the Deployment's spec is read before the first variant
//! and put back after each one (replace, retried on conflict), then its
//! rollout is waited for, so every variant starts from the same state and
//! the cluster is left as found.
//!
//! Exit: 0 some variant had zero failures, 1 none did, 2 bad input, 3
//! every variant was invalid (or the Deployment could not be put back),
//! 130 interrupted: Ctrl-C stops the current variant as it stops
//! `baton run` (its files written, marked interrupted), starts no other,
//! and the comparison of what ran is still written.
//!
//! Not for: the variants' patches, costs and the cheapest rule
//! (`crate::matrix`), or the table (`crate::compare`).

use super::compare::{VARIANT_JSON, load_run};
use crate::cli::MatrixArgs;
use crate::cluster::connect;
use crate::cluster::rollout::{self, FIELD_MANAGER};
use crate::compare::{self, Row, RowKind, RunColumn, render};
use crate::exit::{self, Exit};
use crate::matrix::{self, Variant};
use crate::profile::{self, LoadedProfile};
use crate::run::{self, RunOptions};
use k8s_openapi::api::apps::v1::{Deployment, DeploymentSpec};
use kube::Api;
use kube::api::PostParams;
use std::path::Path;
use std::time::Duration;

pub const COMPARE_MD: &str = "compare.md";
pub const COMPARE_HTML: &str = "compare.html";
pub const MATRIX_JSON: &str = "matrix.json";

pub async fn run(args: MatrixArgs) -> anyhow::Result<u8> {
    let varies = matrix::parse_all(&args.vary).map_err(Exit::usage)?;
    let variants = matrix::cross(&varies);
    let slugs = matrix::unique_slugs(&variants);
    let costs = matrix::costs(&varies, &variants);

    // Every variant's profile and patches, before anything runs.
    let mut plans: Vec<(LoadedProfile, Vec<crate::cluster::steps::Step>)> = Vec::new();
    for v in &variants {
        let mut sets = args.set.clone();
        sets.extend(v.sets());
        let loaded = profile::load(&args.profile, &sets)
            .map_err(|e| Exit::usage(format!("variant {}: {e}", v.describe())))?;
        plans.push((loaded, v.setup().map_err(Exit::usage)?));
    }
    let base = &plans[0].0;
    let name = base.profile.name.clone();
    let dir = args
        .out
        .clone()
        .unwrap_or_else(|| super::default_out_dir(&format!("matrix-{}", super::run::slug(&name))));
    std::fs::create_dir_all(&dir)
        .map_err(|e| Exit::usage(format!("cannot create {}: {e}", dir.display())))?;

    let real = args.cluster.kubeconfig.is_some()
        || args.cluster.context.is_some()
        || base.profile.sandbox.is_none();
    let reset = if real {
        Some(Reset::capture(&args, base).await?)
    } else {
        None
    };

    outln!(
        "baton matrix: {} variant(s) of {} -> {}",
        variants.len(),
        name,
        dir.display()
    );
    let interrupt = super::ctrl_c_token();
    let mut columns: Vec<RunColumn> = Vec::new();
    let mut ran: Vec<usize> = Vec::new();
    let mut interrupted = false;
    let mut reset_failed: Option<String> = None;
    for (i, (v, (loaded, setup))) in variants.iter().zip(&plans).enumerate() {
        if interrupt.is_cancelled() {
            interrupted = true;
            break;
        }
        let out_dir = dir.join(&slugs[i]);
        outln!(
            "[{}/{}] {} ({})",
            i + 1,
            variants.len(),
            slugs[i],
            v.describe()
        );
        write_variant(&out_dir, v, costs[i])?;
        let opts = RunOptions {
            out_dir: out_dir.clone(),
            kubeconfig: args.cluster.kubeconfig.clone(),
            context: args.cluster.context.clone(),
            namespace: args.cluster.namespace.clone(),
            quiet: args.quiet,
            setup: setup.clone(),
        };
        let note = match run::execute(loaded, &opts, interrupt.clone()).await {
            Ok(outcome) => {
                if !args.quiet {
                    out!("{}", outcome.summary.human());
                }
                interrupted |= outcome.summary.interrupted;
                None
            }
            Err(e) => {
                let code = e.downcast_ref::<Exit>().map(|x| x.code);
                interrupted |= code == Some(exit::INTERRUPTED) || interrupt.is_cancelled();
                eprintln!("baton: variant {}: {e}", slugs[i]);
                Some(e.to_string())
            }
        };
        let mut column = match (note, load_run(&out_dir, slugs[i].clone())) {
            (None, Ok(c)) => c,
            (None, Err(e)) => no_result(&out_dir, &slugs[i], v, e),
            (Some(n), _) => no_result(&out_dir, &slugs[i], v, n),
        };
        column.variant = v.settings.clone();
        outln!("      -> {}", one_line(&column));
        columns.push(column);
        ran.push(i);
        if let Some(r) = &reset
            && let Err(e) = r.restore(args.quiet).await
        {
            eprintln!("baton: {e}");
            reset_failed = Some(e);
            break;
        }
        if interrupted {
            break;
        }
    }

    // The comparison of what ran.
    let ran_variants: Vec<Variant> = ran.iter().map(|&i| variants[i].clone()).collect();
    let ran_costs: Vec<f64> = ran.iter().map(|&i| costs[i]).collect();
    let zero: Vec<bool> = columns
        .iter()
        .map(|c| c.measured.as_ref().is_some_and(|m| m.zero_failures()))
        .collect();
    let best = matrix::cheapest(&ran_variants, &ran_costs, &zero);
    let mut table = compare::build_table(&columns);
    let insert_at = table
        .rows
        .iter()
        .position(|r| r.kind == RowKind::Verdict)
        .unwrap_or(table.rows.len());
    table.rows.insert(
        insert_at,
        Row {
            kind: RowKind::Measure,
            label: "cost (smaller is cheaper)".into(),
            cells: ran_costs.iter().map(|c| format!("{c:.2}")).collect(),
        },
    );
    let verdict_line = match best {
        Some(b) => format!(
            "Cheapest variant with zero failures: {} ({}), cost {:.2}.",
            columns[b].label,
            ran_variants[b].describe(),
            ran_costs[b]
        ),
        None => "No variant had zero failures.".to_string(),
    };
    table.notes.push(verdict_line.clone());
    if interrupted {
        table.notes.push(format!(
            "Interrupted: {} of {} variant(s) ran.",
            ran.len(),
            variants.len()
        ));
    }
    if let Some(e) = &reset_failed {
        table.notes.push(format!("Stopped: {e}"));
    }
    let title = format!("baton matrix: {name}");
    write(&dir.join(COMPARE_MD), &render::markdown(&table, &title))?;
    write(&dir.join(COMPARE_HTML), &render::html(&table, &title))?;
    let summary = serde_json::json!({
        "profile": args.profile.display().to_string(),
        "vary": varies.iter().map(|v| serde_json::json!({"path": v.path, "values": v.values})).collect::<Vec<_>>(),
        "variants": ran.iter().zip(&columns).zip(&zero).map(|((&i, c), z)| serde_json::json!({
            "slug": slugs[i],
            "settings": variants[i].settings.iter().map(|(p, v)| serde_json::json!({"path": p, "value": v})).collect::<Vec<_>>(),
            "cost": costs[i],
            "verdict": c.measured.as_ref().map(|m| m.verdict.clone()),
            "failed": c.measured.as_ref().map(|m| m.failed),
            "zero_failures": z,
        })).collect::<Vec<_>>(),
        "cheapest_zero_failures": best.map(|b| columns[b].label.clone()),
        "interrupted": interrupted,
    });
    write(
        &dir.join(MATRIX_JSON),
        &(serde_json::to_string_pretty(&summary).unwrap_or_default() + "\n"),
    )?;
    outln!();
    out!("{}", render::text(&table));
    outln!("  comparison {}", dir.join(COMPARE_MD).display());

    if interrupted {
        return Ok(exit::INTERRUPTED);
    }
    if let Some(e) = reset_failed {
        return Err(Exit {
            code: exit::INVALID,
            message: e,
        }
        .into());
    }
    if best.is_some() {
        return Ok(exit::PASS);
    }
    let all_invalid = columns
        .iter()
        .all(|c| c.measured.as_ref().is_none_or(|m| m.verdict == "invalid"));
    Ok(if all_invalid {
        exit::INVALID
    } else {
        exit::FAIL
    })
}

/// A column for a variant that left no usable summary.
fn no_result(out_dir: &Path, slug: &str, v: &Variant, why: String) -> RunColumn {
    RunColumn {
        label: slug.to_string(),
        settings: std::fs::read_to_string(out_dir.join(profile::RESOLVED_YAML))
            .ok()
            .and_then(|t| serde_norway::from_str(&t).ok()),
        variant: v.settings.clone(),
        measured: None,
        note: Some(why),
    }
}

/// `PASS, 0 / 2000 failed` for the progress lines.
fn one_line(c: &RunColumn) -> String {
    match &c.measured {
        Some(m) => format!("{}, {} of {} failed", m.verdict_word(), m.failed, m.sent),
        None => format!(
            "no result: {}",
            c.note.as_deref().unwrap_or("no summary written")
        ),
    }
}

fn write_variant(out_dir: &Path, v: &Variant, cost: f64) -> anyhow::Result<()> {
    std::fs::create_dir_all(out_dir)
        .map_err(|e| Exit::usage(format!("cannot create {}: {e}", out_dir.display())))?;
    let doc = serde_json::json!({
        "slug": v.slug(),
        "variant": v.settings.iter().map(|(p, val)| serde_json::json!({"path": p, "value": val})).collect::<Vec<_>>(),
        "cost": cost,
    });
    write(
        &out_dir.join(VARIANT_JSON),
        &(serde_json::to_string_pretty(&doc).unwrap_or_default() + "\n"),
    )
}

fn write(path: &Path, text: &str) -> anyhow::Result<()> {
    std::fs::write(path, text)
        .map_err(|e| Exit::usage(format!("cannot write {}: {e}", path.display())).into())
}

/// On a real cluster: the Deployment's spec as found, put back after
/// each variant.
struct Reset {
    api: Api<Deployment>,
    name: String,
    original: DeploymentSpec,
}

/// How often a replace that lost a race (409 Conflict: the Deployment
/// changed since it was read) is retried with a fresh read.
const CONFLICT_RETRIES: usize = 5;
/// How long to wait for the rollout the reset causes.
const RESET_WAIT: Duration = Duration::from_secs(180);

impl Reset {
    async fn capture(args: &MatrixArgs, base: &LoadedProfile) -> anyhow::Result<Reset> {
        let p = &base.profile;
        let kubeconfig = args
            .cluster
            .kubeconfig
            .as_deref()
            .or(p.cluster.kubeconfig.as_deref());
        let context = args
            .cluster
            .context
            .as_deref()
            .or(p.cluster.context.as_deref());
        let namespace = args
            .cluster
            .namespace
            .as_deref()
            .unwrap_or(&p.cluster.namespace);
        let cluster = connect::connect(kubeconfig, context, Some(namespace))
            .await
            .map_err(Exit::usage)?;
        let api: Api<Deployment> = Api::namespaced(cluster.client, &cluster.namespace);
        let name = p.rollout.deployment.clone();
        let d = api.get(&name).await.map_err(|e| Exit {
            code: exit::INVALID,
            message: format!(
                "reading deployment {}/{name} before the first variant: {e}",
                cluster.namespace
            ),
        })?;
        Ok(Reset {
            api,
            name,
            original: d.spec,
        })
    }

    /// Put the spec back as found (replace, retried on conflict) and wait
    /// for the rollout that causes.
    async fn restore(&self, quiet: bool) -> Result<(), String> {
        if !quiet {
            eprintln!(
                "baton: putting deployment {} back as it was before the matrix",
                self.name
            );
        }
        let fail = |e: &dyn std::fmt::Display| {
            format!(
                "could not put deployment {} back as it was before the matrix: {e}",
                self.name
            )
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
        rollout::wait_rollout(&self.api, &self.name, RESET_WAIT, |_| {})
            .await
            .map_err(|e| fail(&e))
    }
}
