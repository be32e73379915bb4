//! Defines baton's command line: the commands, their flags, their help.
//!
//! Raw values only; turning them into a validated plan is each command's
//! first step (`load::plan`). Clap reports its own errors with exit code 2.

use clap::{Args, Parser, Subcommand};
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use crate::load::client::StatusSet;
use crate::load::extract::Extractor;

#[derive(Debug, Parser)]
#[command(
    name = "baton",
    version,
    about = "Proves, or disproves, that a Kubernetes rollout drops no requests",
    long_about = "baton runs a high-rate HTTP load in which every request opens a new TCP connection, \
                  records one row per request, and judges the result.\n\n\
                  Exit codes: 0 pass, 1 fail, 2 bad usage or input, 3 run invalid (baton could not \
                  measure faithfully), 130 interrupted by Ctrl-C, 143 by SIGTERM (the files are still \
                  written, marked interrupted).\n\n\
                  Logs go to stderr: none by default, -v for baton's own and the cluster client's \
                  (retries, re-lists), -vv for more; RUST_LOG (e.g. RUST_LOG=kube=debug) overrides."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,

    /// Log to stderr: -v info (what baton and the cluster client do), -vv debug, -vvv trace. RUST_LOG overrides.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// The main job: load + rollout + watch + correlate + verdict + reports, from a profile
    Run(RunArgs),
    /// Re-render every report of a run directory from its raw records (requests.csv, events.csv, profile.resolved.yaml, run.json), with no cluster: after an upgrade of baton, or on another machine for a postmortem
    Report(ReportArgs),
    /// The newcomer's first command: the sandbox and the bundled nginx rollout, twice (without, then with a preStop hook), with verdicts and reports
    Demo(DemoArgs),
    /// Load a URL alone: no cluster, same records and summary (like oha or vegeta, one new connection per request)
    Load(Box<LoadArgs>),
    /// Start the embedded sandbox: a SIMULATOR of a Kubernetes cluster on loopback (API server, real HTTP pods, a lagging Service proxy), for kubectl, demos and tests. Runs until Ctrl-C.
    Sandbox(SandboxArgs),
    /// Runs side by side: the settings that differ, verdicts, failures per cause, failed/sent, the longest disruption, latency
    Compare(CompareArgs),
    /// The same rollout once per variant (--vary rollout.preStop=0s,2s,5s ...), then a comparison naming the cheapest variant with zero failures
    Matrix(MatrixArgs),
    /// One in-cluster load worker, as baton's Job runs it: reads its plan from BATON_WORKER_PLAN and its number from JOB_COMPLETION_INDEX, talks to the coordinator on stdin and stdout (a line protocol: PING, START, STOP in; HELLO, PONG, REC, END out)
    Worker,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// The profile (YAML): target, load, rollout steps, thresholds. See profiles/README.md.
    pub profile: PathBuf,

    /// The run directory (default: reports/run-<name>-<UTC time>).
    #[arg(short, long)]
    pub out: Option<PathBuf>,

    /// Replace what an earlier run left in --out (baton's own files only); without it, a directory that holds a run is refused.
    #[arg(long)]
    pub force: bool,

    /// Override a profile field before validation, e.g. --set load.rate=500 --set rollout.steps.0.set_image.image=nginx:1.28 (repeatable).
    #[arg(long = "set", value_name = "PATH=VALUE")]
    pub set: Vec<String>,

    #[command(flatten)]
    pub cluster: ClusterArgs,

    /// Keep header values (Authorization, API keys, ...) in the run directory's profile.resolved.yaml; by default all but harmless ones (Host, Accept, ...) are redacted.
    #[arg(long)]
    pub keep_secrets: bool,

    /// No live status line.
    #[arg(short, long)]
    pub quiet: bool,
}

/// Which cluster, as kubectl chooses it (shared by run and matrix).
#[derive(Debug, Args)]
pub struct ClusterArgs {
    /// The kubeconfig file (default: KUBECONFIG, ~/.kube/config, or in-cluster). Given, it selects a real cluster even when the profile has a `sandbox` section; so does KUBECONFIG.
    #[arg(long, value_name = "FILE")]
    pub kubeconfig: Option<PathBuf>,

    /// The kubeconfig context. Given, it selects a real cluster even when the profile has a `sandbox` section.
    #[arg(long)]
    pub context: Option<String>,

    /// The namespace (default: the profile's cluster.namespace, else the context's, as kubectl; `default` on the sandbox).
    #[arg(short = 'n', long)]
    pub namespace: Option<String>,

    /// Run on the embedded simulator (the profile's `sandbox:` section) even when KUBECONFIG is set.
    #[arg(long, conflicts_with_all = ["kubeconfig", "context"])]
    pub sandbox: bool,
}

#[derive(Debug, Args)]
pub struct ReportArgs {
    /// A run directory written by `baton run` (or `baton demo`).
    pub dir: PathBuf,
}

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Where the two runs' directories go (default: reports/demo-<UTC time>).
    #[arg(short, long)]
    pub out: Option<PathBuf>,

    /// Replace what an earlier run left in --out (baton's own files only); without it, a directory that holds a run is refused.
    #[arg(long)]
    pub force: bool,

    /// No live status line.
    #[arg(short, long)]
    pub quiet: bool,
}

#[derive(Debug, Args)]
pub struct SandboxArgs {
    /// A sandbox config file (YAML: a settings document and manifests; see crates/sandbox/README.md). Default: the seed scenario, Deployment web-server (3 × nginx:1.27) and Service web-service (NodePort).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// Where to write the kubeconfig that points kubectl (and baton) at the sandbox. Default: a temporary file, printed at start.
    #[arg(long, value_name = "FILE")]
    pub kubeconfig_out: Option<PathBuf>,

    /// The API server's address. Default: 127.0.0.1 on a free port (or the config's `listen`).
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<std::net::SocketAddr>,
}

fn parse_fraction(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(f) if (0.0..=1.0).contains(&f) => Ok(f),
        _ => Err(format!(
            "`{s}` must be a fraction between 0 and 1, e.g. 0.95"
        )),
    }
}

fn parse_duration(s: &str) -> Result<Duration, String> {
    humantime::parse_duration(s).map_err(|e| format!("`{s}`: {e} (examples: 500ms, 2s, 1m30s)"))
}

fn parse_rate(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(r) if r.is_finite() && r >= 0.0 => Ok(r),
        _ => Err(format!(
            "`{s}` must be a number of requests per second >= 0 (0 = as fast as --concurrency allows)"
        )),
    }
}

#[derive(Debug, Args)]
pub struct LoadArgs {
    /// The URL to load, e.g. http://127.0.0.1:30000/
    pub url: String,

    /// Requests per second on a fixed schedule (open model: a request is sent when due, whatever earlier ones are doing). 0 = closed model, as fast as --concurrency allows.
    #[arg(long, default_value = "100", value_parser = parse_rate, allow_negative_numbers = true)]
    pub rate: f64,

    /// Most requests in flight at once. Open model: arrivals over the cap are shed and counted, never queued (default: rate × timeout + 16). Closed model: the number of request loops (default 32).
    #[arg(short, long)]
    pub concurrency: Option<usize>,

    /// Stop after this many requests.
    #[arg(short = 'n', long)]
    pub requests: Option<u64>,

    /// Stop scheduling after this long (default 10s when --requests is not given either).
    #[arg(short, long, value_parser = parse_duration)]
    pub duration: Option<Duration>,

    /// Whole-request timeout, connect included.
    #[arg(long, default_value = "2s", value_parser = parse_duration)]
    pub timeout: Duration,

    /// Connect timeout.
    #[arg(long, default_value = "1s", value_parser = parse_duration)]
    pub connect_timeout: Duration,

    /// Reuse connections from a pool instead of a new connection per request. For comparison only: through a Service, a kept-alive connection stays on one Pod and hides what a rollout does.
    #[arg(long)]
    pub keepalive: bool,

    /// https: also trust the CA certificates in this PEM file (on top of the system's).
    #[arg(long, value_name = "FILE")]
    pub cacert: Option<PathBuf>,

    /// https: accept any server certificate (self-signed test endpoints). The handshake is still made and timed.
    #[arg(long, short = 'k')]
    pub insecure: bool,

    /// Extra request header, `Name: value` (repeatable).
    #[arg(short = 'H', long = "header")]
    pub headers: Vec<String>,

    /// HTTP method.
    #[arg(short = 'm', long, default_value = "GET")]
    pub method: String,

    /// Statuses that count as success: `200`, `200,204`, `200-399` (default 200-299).
    #[arg(long)]
    pub expect_status: Option<StatusSet>,

    /// Who answered: `header:NAME` or `body:REGEX` (first capture group), recorded as `backend`.
    #[arg(long, value_parser = clap::value_parser!(Extractor))]
    pub backend_from: Option<Extractor>,

    /// Which version answered: `header:NAME` or `body:REGEX`, recorded as `version`.
    #[arg(long, value_parser = clap::value_parser!(Extractor))]
    pub version_from: Option<Extractor>,

    /// Local addresses to send from, round robin, e.g. 127.0.0.2,127.0.0.3: each multiplies the ephemeral-port space.
    #[arg(long, value_delimiter = ',')]
    pub source_ips: Vec<IpAddr>,

    /// Failures allowed before the verdict is fail.
    #[arg(long, default_value_t = 0)]
    pub max_failed: u64,

    /// p99 of how late requests started against their schedule beyond which the run is invalid: the load host, not the target, set the pace.
    #[arg(long, default_value = "250ms", value_parser = parse_duration)]
    pub max_lateness: Duration,

    /// The share of the planned rate (and of the arrivals) that must have been sent, 0-1; below it the run is invalid.
    #[arg(long, default_value_t = crate::verdict::schedule::DEFAULT_MIN_ACHIEVED, value_parser = parse_fraction)]
    pub min_achieved_rate: f64,

    /// Worker threads, each with its own runtime (default: one per core).
    #[arg(long)]
    pub workers: Option<usize>,

    /// Run directory (default: reports/load-<UTC time>).
    #[arg(short, long)]
    pub out: Option<PathBuf>,

    /// Replace what an earlier run left in --out (baton's own files only); without it, a directory that holds a run is refused.
    #[arg(long)]
    pub force: bool,

    /// No live status line.
    #[arg(short, long)]
    pub quiet: bool,
}

#[derive(Debug, Args)]
pub struct CompareArgs {
    /// Run directories (each with summary.json and profile.resolved.yaml), or one `baton matrix` directory alone (its variants compared with their costs and the cheapest with zero failures, as the matrix did).
    #[arg(required = true, num_args = 1..)]
    pub dirs: Vec<PathBuf>,

    /// Also write the table as Markdown to this file.
    #[arg(long, value_name = "FILE")]
    pub markdown: Option<PathBuf>,

    /// Also write the comparison as a self-contained HTML page to this file: each run's requests over time on one axis, each run linked to its report.html relative to the file.
    #[arg(long, value_name = "FILE")]
    pub html: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct MatrixArgs {
    /// The profile (YAML) every variant runs. See profiles/README.md.
    pub profile: PathBuf,

    /// A setting and its values, e.g. --vary rollout.preStop=0s,2s,5s (repeatable: several make a cross product). rollout.preStop, rollout.terminationGracePeriodSeconds, rollout.maxSurge, rollout.maxUnavailable and rollout.readinessProbe.periodSeconds patch the Deployment; any other path is a --set on the profile. See profiles/README.md, "Matrix".
    #[arg(long, value_name = "PATH=V1,V2,...", required = true)]
    pub vary: Vec<String>,

    /// Where the variants' run directories and the comparison go (default: reports/matrix-<name>-<UTC time>).
    #[arg(short, long)]
    pub out: Option<PathBuf>,

    /// Replace what an earlier run left in --out (baton's own files only); without it, a directory that holds a run is refused.
    #[arg(long)]
    pub force: bool,

    /// Override a profile field in every variant, like baton run's --set (repeatable).
    #[arg(long = "set", value_name = "PATH=VALUE")]
    pub set: Vec<String>,

    #[command(flatten)]
    pub cluster: ClusterArgs,

    /// Keep header values in each variant's profile.resolved.yaml (see `baton run --keep-secrets`).
    #[arg(long)]
    pub keep_secrets: bool,

    /// No live status line and no per-step messages.
    #[arg(short, long)]
    pub quiet: bool,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_command_line_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    /// Every flag given at once: catches a flag whose declared type does
    /// not match how it is read (clap reports that only at access time).
    #[test]
    fn every_load_flag_parses_together() {
        let cli = Cli::try_parse_from([
            "baton",
            "load",
            "http://127.0.0.1:1/",
            "--rate",
            "10",
            "-c",
            "5",
            "-n",
            "7",
            "-d",
            "3s",
            "--timeout",
            "1s",
            "--connect-timeout",
            "500ms",
            "--keepalive",
            "-H",
            "A: b",
            "-m",
            "POST",
            "--expect-status",
            "200-204",
            "--backend-from",
            "header:x-pod-name",
            "--version-from",
            "body:v(\\S+)",
            "--source-ips",
            "127.0.0.2,127.0.0.3",
            "--max-failed",
            "2",
            "--workers",
            "1",
            "-o",
            "x",
            "-q",
        ])
        .unwrap();
        let Command::Load(a) = cli.command else {
            panic!("parsed as another command")
        };
        assert_eq!(a.rate, 10.0);
        assert_eq!(a.source_ips.len(), 2);
        assert_eq!(a.duration, Some(Duration::from_secs(3)));
        assert!(a.expect_status.unwrap().contains(204));
        assert!(a.backend_from.is_some() && a.version_from.is_some());
    }

    #[test]
    fn matrix_takes_repeated_varies_and_compare_several_dirs() {
        let cli = Cli::try_parse_from([
            "baton",
            "matrix",
            "p.yaml",
            "--vary",
            "rollout.preStop=0s,3s",
            "--vary",
            "load.rate=100,200",
            "--set",
            "load.warmup=1s",
            "-n",
            "web",
            "-q",
            "-o",
            "out",
        ])
        .unwrap();
        let Command::Matrix(a) = cli.command else {
            panic!("parsed as another command")
        };
        assert_eq!(a.vary.len(), 2);
        assert_eq!(a.set, ["load.warmup=1s"]);
        assert!(Cli::try_parse_from(["baton", "matrix", "p.yaml"]).is_err());
        let cli =
            Cli::try_parse_from(["baton", "compare", "a", "b", "--markdown", "c.md"]).unwrap();
        let Command::Compare(c) = cli.command else {
            panic!("parsed as another command")
        };
        assert_eq!(c.dirs.len(), 2);
        assert!(Cli::try_parse_from(["baton", "compare"]).is_err());
    }
}
