//! `baton run PROFILE`: the main job. Parses and validates the profile,
//! runs it (see `crate::run`), prints the verdict and where the reports
//! are, and exits 0 pass / 1 fail / 2 bad input / 3 invalid / 130
//! interrupted.

use crate::cli::RunArgs;
use crate::exit::Exit;
use crate::profile;
use crate::run::{self, RunOptions};

pub async fn run(args: RunArgs) -> anyhow::Result<u8> {
    let loaded = profile::load(&args.profile, &args.set).map_err(Exit::usage)?;
    let out_dir = args
        .out
        .clone()
        .unwrap_or_else(|| super::default_out_dir(&format!("run-{}", slug(&loaded.profile.name))));
    let opts = RunOptions {
        out_dir,
        kubeconfig: args.cluster.kubeconfig,
        context: args.cluster.context,
        namespace: args.cluster.namespace,
        quiet: args.quiet,
        setup: Vec::new(),
    };
    let outcome = run::execute(&loaded, &opts, super::ctrl_c_token()).await?;
    out!("{}", outcome.summary.human());
    outln!("  reports    {}", outcome.out_dir.display());
    Ok(outcome.exit_code())
}

/// A profile name fit for a directory name.
pub fn slug(name: &str) -> String {
    let s: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '-'
            }
        })
        .collect();
    s.trim_matches('-').chars().take(40).collect()
}
