//! `baton worker`: one in-cluster load worker (see `fleet::worker`), on
//! this process's stdin and stdout. Bad input (no plan, not an Indexed
//! Job's Pod) exits 2 with the reason on stderr; a failed load exits 1.
//!
//! Not for: anything else on stdout, which is the coordinator's channel.

use crate::exit::{self, Exit};
use crate::fleet::worker::{self, INDEX_ENV, PLAN_ENV};

pub async fn run() -> anyhow::Result<u8> {
    let (plan, index) = worker::from_env(
        std::env::var(PLAN_ENV).ok().as_deref(),
        std::env::var(INDEX_ENV).ok().as_deref(),
    )
    .map_err(Exit::usage)?;
    // The worker blocks on its channel and runs the engine's own threads:
    // off the async runtime.
    let served = tokio::task::spawn_blocking(move || {
        worker::serve(
            &plan,
            index,
            std::io::BufReader::new(std::io::stdin()),
            std::io::stdout(),
        )
    })
    .await?;
    match served {
        Ok(end) => {
            tracing::info!(records = end.records, stopped = end.stopped, "worker done");
            Ok(exit::PASS)
        }
        Err(e) if e.is_input() => Err(Exit::usage(e).into()),
        Err(e) => {
            eprintln!("baton worker: {e}");
            Ok(exit::FAIL)
        }
    }
}
