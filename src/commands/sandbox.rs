//! `baton sandbox`: start the embedded stand-in cluster and keep it up
//! until Ctrl-C or SIGTERM, for kubectl, demos and tests against a real
//! socket.

use crate::cli::SandboxArgs;
use crate::exit::Exit;
use baton_sandbox::{Sandbox, SandboxConfig};

pub async fn run(args: SandboxArgs) -> anyhow::Result<u8> {
    let mut cfg = match &args.config {
        Some(path) => SandboxConfig::from_file(path).map_err(Exit::usage)?,
        None => SandboxConfig::seed(),
    };
    if let Some(listen) = args.listen {
        cfg.listen = listen;
    }
    if let Some(out) = args.kubeconfig_out {
        cfg.kubeconfig_out = Some(out);
    }
    let listen = cfg.listen;
    let sandbox = Sandbox::start(cfg).await.map_err(|e| Exit {
        code: crate::exit::INVALID,
        message: format!("cannot start the sandbox on {listen}: {e:#}"),
    })?;
    out!("{}", sandbox.banner());
    outln!("Ctrl-C stops it.");
    crate::interrupt::listen().cancelled().await;
    eprintln!("baton sandbox: stopping");
    sandbox.shutdown().await;
    Ok(crate::exit::PASS)
}
