//! `baton demo`: the newcomer's first command. Writes the two bundled
//! nginx profiles and their manifests into the demo's directory, runs
//! them on the embedded sandbox (a simulator) one after the other —
//! without a preStop hook (expect FAIL, with the incident and its remedy),
//! then with one (expect PASS) — and says where the reports are.
//!
//! The files are compiled into the binary so the demo works from any
//! directory; the copies it writes are there to read and tweak.

use crate::cli::DemoArgs;
use crate::exit::{self, Exit};
use crate::profile;
use crate::report::look::Look;
use crate::report::run_summary;
use crate::run::{self, RunOptions};
use crate::rundir::{self, REPORT_HTML};
use crate::verdict::Verdict;
use std::path::Path;

/// (path inside the demo directory, contents)
const FILES: &[(&str, &str)] = &[
    (
        "profiles/nginx-rolling-update.yaml",
        include_str!("../../profiles/nginx-rolling-update.yaml"),
    ),
    (
        "profiles/nginx-prestop.yaml",
        include_str!("../../profiles/nginx-prestop.yaml"),
    ),
    (
        "deploy/examples/nginx.yaml",
        include_str!("../../deploy/examples/nginx.yaml"),
    ),
    (
        "deploy/examples/nginx-prestop.yaml",
        include_str!("../../deploy/examples/nginx-prestop.yaml"),
    ),
];

/// The runs, in order, with the verdict each is expected to reach.
const RUNS: &[(&str, Verdict)] = &[
    ("nginx-rolling-update", Verdict::Fail),
    ("nginx-prestop", Verdict::Pass),
];

pub async fn run(args: DemoArgs) -> anyhow::Result<u8> {
    super::claim_out(args.out.as_deref(), args.force)?;
    let dir = args.out.unwrap_or_else(|| rundir::default_dir("demo"));
    write_files(&dir)?;
    outln!(
        "baton demo: two rollouts of nginx 1.27.5 -> 1.28.0 on the embedded sandbox (a SIMULATOR of a cluster),\n\
         under 200 new connections per second. First without a preStop hook, then with one.\n"
    );
    let interrupt = crate::interrupt::listen();
    let mut lines = Vec::new();
    let mut as_expected = true;
    for (i, (name, expected)) in RUNS.iter().enumerate() {
        let file = dir.join("profiles").join(format!("{name}.yaml"));
        let loaded = profile::load(&file, &[]).map_err(Exit::usage)?;
        outln!("[{}/{}] {}", i + 1, RUNS.len(), name);
        let opts = RunOptions {
            out_dir: dir.join(name),
            quiet: args.quiet,
            ..RunOptions::default()
        };
        let outcome = run::execute(&loaded, &opts, interrupt.clone()).await?;
        out!(
            "{}",
            run_summary::human_for(&outcome.summary, &Look::stdout())
        );
        outln!(
            "  reports    {} (open {REPORT_HTML} first)\n",
            outcome.out_dir.display()
        );
        if outcome.summary.interrupted {
            return Ok(crate::interrupt::exit_code());
        }
        as_expected &= outcome.summary.verdict == *expected;
        lines.push(format!(
            "  {:<22} {:<5} {} failed of {}  -> {}",
            name,
            outcome.summary.verdict.as_str().to_uppercase(),
            outcome.summary.requests.failed,
            outcome.summary.requests.sent,
            outcome.out_dir.join(REPORT_HTML).display()
        ));
    }
    outln!("baton demo: done");
    for l in &lines {
        outln!("{l}");
    }
    outln!(
        "\nThe profiles and manifests it ran are in {}: edit them and run\n  baton run {}",
        dir.display(),
        dir.join("profiles/nginx-rolling-update.yaml").display()
    );
    if as_expected {
        Ok(exit::PASS)
    } else {
        Err(Exit {
            code: exit::FAIL,
            message: "the demo's verdicts were not the expected FAIL then PASS".into(),
        }
        .into())
    }
}

fn write_files(dir: &Path) -> anyhow::Result<()> {
    for (rel, text) in FILES {
        let path = dir.join(rel);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .map_err(|e| Exit::usage(format!("cannot create {}: {e}", parent.display())))?;
        }
        std::fs::write(&path, text)
            .map_err(|e| Exit::usage(format!("cannot write {}: {e}", path.display())))?;
    }
    Ok(())
}
