//! The `baton` binary: parse, run, map the result to an exit code.

use baton::{cli::Cli, commands, exit};
use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logs(cli.verbose);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("baton: cannot start the async runtime: {e}");
            return ExitCode::from(exit::INVALID);
        }
    };
    match runtime.block_on(commands::dispatch(cli.command)) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            let code = e
                .downcast_ref::<exit::Exit>()
                .map_or(exit::INVALID, |x| x.code);
            eprintln!("baton: error: {e:#}");
            ExitCode::from(code)
        }
    }
}

/// Logs to stderr: none unless asked (`-v`, or `RUST_LOG`, which wins):
/// the terminal is for the status line and the verdict.
fn init_logs(verbose: u8) {
    let default = match verbose {
        0 => "off",
        1 => "baton=info,baton_sandbox=info,kube=info",
        2 => "baton=debug,baton_sandbox=debug,kube=debug",
        _ => "trace",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}
