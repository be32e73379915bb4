//! `baton load URL`: the load generator alone.

use crate::cli::LoadArgs;
use crate::exit::{self, Exit};
use crate::load::{self, plan::LoadInput, plan::LoadPlan};
use crate::report::load_summary;
use crate::rundir::{self, SUMMARY_JSON, Summary};
use crate::verdict::schedule::ScheduleLimits;
use std::sync::Arc;

pub async fn run(args: Box<LoadArgs>) -> anyhow::Result<u8> {
    super::claim_out(args.out.as_deref(), args.force)?;
    let out_dir = args
        .out
        .clone()
        .unwrap_or_else(|| rundir::default_dir("load"));
    let plan = LoadPlan::build(LoadInput {
        url: args.url,
        rate: args.rate,
        concurrency: args.concurrency,
        requests: args.requests,
        duration: args.duration,
        timeout: args.timeout,
        connect_timeout: args.connect_timeout,
        keepalive: args.keepalive,
        headers: args.headers,
        method: args.method,
        expect_status: args.expect_status,
        backend_from: args.backend_from,
        version_from: args.version_from,
        source_ips: args.source_ips,
        out_dir,
        workers: args.workers,
        tls: load::tls::TlsOptions {
            ca_file: args.cacert,
            insecure: args.insecure,
        },
        open_files: load::host::raise_open_files_limit().0,
    })
    .map_err(Exit::usage)?;
    rundir::claim(&plan.out_dir).map_err(Exit::from)?;
    let running = rundir::Running::start(&plan.out_dir).map_err(Exit::from)?;
    let plan = Arc::new(plan);
    let cancel = crate::interrupt::listen();
    let run = load::execute(plan.clone(), None, cancel, args.quiet)
        .await
        .map_err(|e| match e {
            // The records could not be written: not measured faithfully.
            load::LoadError::Output { .. } => anyhow::Error::new(Exit {
                code: exit::INVALID,
                message: e.to_string(),
            }),
            other => anyhow::Error::new(other),
        })?;
    let limits = ScheduleLimits {
        max_lateness: args.max_lateness,
        min_achieved: args.min_achieved_rate,
    };
    let summary = load_summary::build(&plan, &run, args.max_failed, limits);
    Summary::write_load(&summary, &plan.out_dir).map_err(Exit::from)?;
    running.finished().map_err(Exit::from)?;
    out!("{}", load_summary::human(&summary));
    outln!(
        "  records    {} and {}",
        run.requests_csv.display(),
        plan.out_dir.join(SUMMARY_JSON).display()
    );
    Ok(exit::for_verdict(summary.verdict, run.interrupted))
}
