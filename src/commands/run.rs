//! `baton run PROFILE`: the main job. Parses and validates the profile,
//! runs it (see `crate::run`), prints the verdict and where the reports
//! are, and exits 0 pass / 1 fail / 2 bad input / 3 invalid / 130
//! interrupted.

use crate::cli::RunArgs;
use crate::exit::Exit;
use crate::profile;
use crate::report::run_summary;
use crate::run::{self, RunOptions};
use crate::rundir::{self, REPORT_HTML};

pub async fn run(args: RunArgs) -> anyhow::Result<u8> {
    super::claim_out(args.out.as_deref(), args.force)?;
    let loaded = profile::load(&args.profile, &args.set).map_err(Exit::usage)?;
    let out_dir = args.out.clone().unwrap_or_else(|| {
        rundir::default_dir(&format!("run-{}", rundir::slug(&loaded.profile.name)))
    });
    let opts = RunOptions {
        out_dir,
        cluster: super::cluster_flags(&args.cluster),
        quiet: args.quiet,
        keep_secrets: args.keep_secrets,
        restored_after: false,
        variant: Vec::new(),
    };
    let outcome = run::execute(&loaded, &opts, crate::interrupt::listen()).await?;
    out!(
        "{}",
        run_summary::human_for(&outcome.summary, &crate::report::look::Look::stdout())
    );
    outln!(
        "  reports    {} (open {REPORT_HTML} first)",
        outcome.out_dir.display()
    );
    if super::on_github_actions() {
        out!("{}", run_summary::github_annotations(&outcome.summary));
    }
    Ok(outcome.exit_code())
}
