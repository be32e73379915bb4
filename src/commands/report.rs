//! `baton report DIR`: re-render every report of a run directory from its
//! raw records, with no cluster. Exits with the run's verdict, as the run
//! did (so a re-render under a newer baton can be gated on too).

use crate::cli::ReportArgs;
use crate::report::run_summary;
use crate::run;

pub fn run(args: ReportArgs) -> anyhow::Result<u8> {
    let outcome = run::render_dir(&args.dir)?;
    out!(
        "{}",
        run_summary::human_for(&outcome.summary, &crate::report::look::Look::stdout())
    );
    if super::on_github_actions() {
        out!("{}", run_summary::github_annotations(&outcome.summary));
    }
    outln!("  reports    {} (re-rendered)", outcome.out_dir.display());
    Ok(outcome.exit_code())
}
