//! In-cluster load on the sandbox: aggregate achieved rate and lateness
//! for 1, 2 and 4 worker Pods, beside the same load sent from this host,
//! in one run on one machine.
//!
//! `cargo bench --bench fleet` runs, for each source, `baton run` on the
//! sandbox's seed Deployment (3 nginx Pods behind a Service; no rollout,
//! a sleep) at `BATON_FLEET_RATE` new connections per second (default
//! 3000) for `BATON_FLEET_SECONDS` (default 10), `BATON_FLEET_REPS` times
//! (default 3, interleaved), and prints per source the median achieved
//! rate, p99 lateness, shed arrivals and requests that failed, with the
//! min–max over the repetitions. From the cluster the workers reach the
//! Service's ClusterIP; from here, its NodePort: the same proxy behind
//! both.
//!
//! A benchmark, not a test: it asserts only that every run wrote one
//! record per request sent. On this machine the workers, the sandbox's
//! proxy and Pods and baton itself share its cores, so what it shows is
//! the coordinator's and the workers' overhead at a given rate, not what
//! a cluster of real nodes would reach; see the README's capacity section.

use std::path::Path;
use std::process::Command;
use std::time::Instant;

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// One run's figures, from its summary.json and run.json.
#[derive(Clone, Debug)]
struct Sample {
    achieved: f64,
    lateness_p99_ms: f64,
    shed: u64,
    failed: u64,
    wall_s: f64,
}

fn profile(dir: &Path, from: Option<u32>, rate: u32, seconds: u32) -> std::path::PathBuf {
    let load = match from {
        Some(n) => format!("from: cluster, workers: {n}, "),
        None => String::new(),
    };
    let path = dir.join("bench.yaml");
    std::fs::write(
        &path,
        format!(
            "name: fleet-bench\n\
             sandbox: {{}}\n\
             target: {{service: web-service, backend_from: {{header: x-pod-name}}}}\n\
             load: {{{load}rate: {rate}, timeout: 2s, warmup: 1s, cooldown: 0s}}\n\
             rollout: {{deployment: web-server, steps: [{{sleep: {seconds}s}}]}}\n\
             thresholds: {{max_failed: 1000000000}}\n"
        ),
    )
    .unwrap();
    path
}

fn run(from: Option<u32>, rate: u32, seconds: u32) -> Result<Sample, String> {
    let dir = tempfile::tempdir().unwrap();
    let p = profile(dir.path(), from, rate, seconds);
    let out = dir.path().join("run");
    let started = Instant::now();
    let done = Command::new(env!("CARGO_BIN_EXE_baton"))
        .arg("run")
        .arg(&p)
        .args(["-q", "-o"])
        .arg(&out)
        .env_remove("KUBECONFIG")
        .output()
        .map_err(|e| e.to_string())?;
    let wall_s = started.elapsed().as_secs_f64();
    let summary: serde_json::Value = std::fs::read(out.join("summary.json"))
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .ok_or_else(|| {
            format!(
                "exit {:?}, no summary: {}",
                done.status.code(),
                String::from_utf8_lossy(&done.stderr)
            )
        })?;
    let r = &summary["requests"];
    assert_eq!(
        r["sent"], r["rows_written"],
        "one record per request sent ({from:?} workers)"
    );
    Ok(Sample {
        achieved: summary["rps_achieved"].as_f64().unwrap_or(0.0),
        lateness_p99_ms: summary["lateness_ms"]["p99"].as_f64().unwrap_or(f64::NAN),
        shed: r["shed"].as_u64().unwrap_or(0),
        failed: r["failed"].as_u64().unwrap_or(0),
        wall_s,
    })
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

fn range(v: &[f64]) -> (f64, f64) {
    v.iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), x| {
            (lo.min(*x), hi.max(*x))
        })
}

fn main() {
    // `cargo bench` passes `--bench`; nothing else is taken.
    let rate: u32 = env_or("BATON_FLEET_RATE", 3000);
    let seconds: u32 = env_or("BATON_FLEET_SECONDS", 10);
    let reps: usize = env_or("BATON_FLEET_REPS", 3);
    let sources: [(&str, Option<u32>); 4] = [
        ("this host", None),
        ("1 worker", Some(1)),
        ("2 workers", Some(2)),
        ("4 workers", Some(4)),
    ];
    println!(
        "in-cluster load on the sandbox: {rate}/s for {seconds} s, {reps} interleaved repetition(s), {} cores",
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    let mut samples: Vec<Vec<Result<Sample, String>>> = vec![Vec::new(); sources.len()];
    for rep in 0..reps {
        for (i, (name, from)) in sources.iter().enumerate() {
            let s = run(*from, rate, seconds);
            match &s {
                Ok(s) => println!(
                    "  round {}: {name:<10} {:>8.0}/s  lateness p99 {:>7.1} ms  shed {:>6}  failed {:>6}  ({:.1} s wall)",
                    rep + 1,
                    s.achieved,
                    s.lateness_p99_ms,
                    s.shed,
                    s.failed,
                    s.wall_s
                ),
                Err(e) => println!("  round {}: {name:<10} FAILED: {e}", rep + 1),
            }
            samples[i].push(s);
        }
    }
    println!(
        "\n| source | achieved req/s (median, min–max) | lateness p99 ms (median, min–max) | shed (max) | failed (median, max) |"
    );
    println!("|---|---|---|---|---|");
    for ((name, _), runs) in sources.iter().zip(&samples) {
        let ok: Vec<&Sample> = runs.iter().filter_map(|r| r.as_ref().ok()).collect();
        if ok.is_empty() {
            println!("| {name} | no run completed | | | |");
            continue;
        }
        let achieved: Vec<f64> = ok.iter().map(|s| s.achieved).collect();
        let late: Vec<f64> = ok.iter().map(|s| s.lateness_p99_ms).collect();
        let (a0, a1) = range(&achieved);
        let (l0, l1) = range(&late);
        let failed: Vec<f64> = ok.iter().map(|s| s.failed as f64).collect();
        println!(
            "| {name} | {:.0} ({a0:.0}–{a1:.0}) | {:.1} ({l0:.1}–{l1:.1}) | {} | {:.0} ({:.0}) |",
            median(achieved.clone()),
            median(late.clone()),
            ok.iter().map(|s| s.shed).max().unwrap_or(0),
            median(failed.clone()),
            range(&failed).1,
        );
    }
}
