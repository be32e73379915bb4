//! The `baton` binary: parse, run, map the result to an exit code.

use baton::{cli::Cli, commands, exit};
use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = Cli::parse();
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
