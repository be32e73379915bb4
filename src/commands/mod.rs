//! One module per command: each turns its arguments into a plan, runs it,
//! writes its outputs, and returns the exit code. Commands share only
//! what is here (Ctrl-C, output macros, the cluster flags); none imports
//! another.

/// `print!` that ignores a closed stdout (`baton run ... | head`): the run
/// and its files matter more than the terminal text, and `print!` would
/// panic on EPIPE.
macro_rules! out {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = write!(std::io::stdout().lock(), $($arg)*);
    }};
}

/// `println!` that ignores a closed stdout; see [`out!`].
macro_rules! outln {
    () => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout().lock());
    }};
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout().lock(), $($arg)*);
    }};
}

pub mod compare;
pub mod demo;
pub mod load;
pub mod matrix;
pub mod report;
pub mod run;
pub mod sandbox;
pub mod worker;

/// Claim an explicit `--out` first thing, so that `--force` clears an
/// earlier run's reports even when this run then stops on bad input (a
/// CI step publishing with `if: always()` must not show the old PASS).
/// A default directory is new (named for the time) and claimed later.
fn claim_out(out: Option<&std::path::Path>, force: bool) -> Result<(), crate::exit::Exit> {
    match out {
        Some(dir) => crate::rundir::make_room(dir, force).map_err(Into::into),
        None => Ok(()),
    }
}

/// Running as a GitHub Actions step: annotations are printed.
fn on_github_actions() -> bool {
    std::env::var_os("GITHUB_ACTIONS").is_some_and(|v| v == "true")
}

/// The cluster flags of `run` and `matrix`, as the cluster choice takes
/// them.
fn cluster_flags(args: &crate::cli::ClusterArgs) -> crate::cluster::choice::Flags {
    crate::cluster::choice::Flags {
        kubeconfig: args.kubeconfig.clone(),
        context: args.context.clone(),
        namespace: args.namespace.clone(),
        sandbox: args.sandbox,
        kubeconfig_env: false,
    }
    .with_env()
}

/// Run one command to its exit code.
pub async fn dispatch(command: crate::cli::Command) -> anyhow::Result<u8> {
    match command {
        crate::cli::Command::Run(args) => run::run(args).await,
        crate::cli::Command::Demo(args) => demo::run(args).await,
        crate::cli::Command::Report(args) => report::run(args),
        crate::cli::Command::Load(args) => load::run(args).await,
        crate::cli::Command::Sandbox(args) => sandbox::run(args).await,
        crate::cli::Command::Compare(args) => compare::run(args),
        crate::cli::Command::Matrix(args) => matrix::run(args).await,
        crate::cli::Command::Worker => worker::run().await,
    }
}
