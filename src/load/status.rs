//! The live status line: on a terminal, one line redrawn four times a
//! second (indicatif); otherwise a plain line every few seconds, fit for
//! CI logs. Reads only the shared counters.

use super::outcome::Outcome;
use super::stats::{LiveCounters, LiveSnapshot};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::IsTerminal;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

const TICK: Duration = Duration::from_millis(250);
const PLAIN_EVERY: Duration = Duration::from_secs(5);

pub struct StatusLine {
    stop: Arc<AtomicBool>,
    handle: Option<JoinHandle<()>>,
}

/// The words of one status update. Pure, so it can be tested.
pub fn describe(
    now: &LiveSnapshot,
    rate_per_s: f64,
    elapsed: Duration,
    planned: Option<Duration>,
) -> String {
    let ok = now.outcomes[Outcome::Ok.index()];
    let failed: Vec<String> = Outcome::ALL
        .iter()
        .filter(|o| o.is_target_failure() && now.outcomes[o.index()] > 0)
        .map(|o| format!("{} {}", o.as_str(), now.outcomes[o.index()]))
        .collect();
    let total_failed: u64 = Outcome::ALL
        .iter()
        .filter(|o| o.is_target_failure())
        .map(|o| now.outcomes[o.index()])
        .sum();
    let mut s = format!(
        "{:>6.1}s{} | {:>8.0} req/s | ok {} | failed {}",
        elapsed.as_secs_f64(),
        planned.map_or(String::new(), |p| format!("/{:.0}s", p.as_secs_f64())),
        rate_per_s,
        ok,
        total_failed
    );
    if !failed.is_empty() {
        s.push_str(&format!(" ({})", failed.join(", ")));
    }
    let harness = now.outcomes[Outcome::ClientResource.index()];
    if harness > 0 {
        s.push_str(&format!(" | HARNESS ERRORS {harness}"));
    }
    s.push_str(&format!(" | in flight {}", now.in_flight));
    if now.shed > 0 {
        s.push_str(&format!(" | shed {}", now.shed));
    }
    s
}

impl StatusLine {
    /// Start reporting; `quiet` shows nothing. `run_origin`: the run
    /// clock's origin when the load is part of a `baton run`, so that the
    /// status counts on the same clock as the report (the load's own
    /// planned duration is then not shown against it).
    pub fn start(
        live: Arc<LiveCounters>,
        planned: Option<Duration>,
        run_origin: Option<Instant>,
        note: super::plan::StatusNote,
        quiet: bool,
    ) -> StatusLine {
        let planned = planned.filter(|_| run_origin.is_none());
        let stop = Arc::new(AtomicBool::new(false));
        if quiet {
            return StatusLine { stop, handle: None };
        }
        let tty = std::io::stderr().is_terminal();
        let stop2 = stop.clone();
        let handle = std::thread::Builder::new()
            .name("baton-status".into())
            .spawn(move || {
                let bar = tty.then(|| {
                    let b =
                        ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr_with_hz(4));
                    b.set_style(
                        // `wide_msg`: cut to the terminal's width, never wrapped.
                        ProgressStyle::with_template("{spinner} {wide_msg}")
                            .expect("static template"),
                    );
                    b
                });
                let started = run_origin.unwrap_or_else(Instant::now);
                let mut last = (Instant::now(), 0u64);
                let mut last_plain = Instant::now();
                while !stop2.load(Ordering::Relaxed) {
                    std::thread::sleep(TICK);
                    let now = live.snapshot();
                    let done: u64 = now.outcomes.iter().sum();
                    let dt = last.0.elapsed().as_secs_f64().max(1e-6);
                    let rate = (done - last.1) as f64 / dt;
                    last = (Instant::now(), done);
                    let mut line = describe(&now, rate, started.elapsed(), planned);
                    if let Ok(n) = note.lock()
                        && !n.is_empty()
                    {
                        line.push_str(" | ");
                        line.push_str(&n);
                    }
                    match &bar {
                        Some(b) => {
                            b.set_message(line);
                            b.tick();
                        }
                        None if last_plain.elapsed() >= PLAIN_EVERY => {
                            eprintln!("baton: {line}");
                            last_plain = Instant::now();
                        }
                        None => {}
                    }
                }
                if let Some(b) = bar {
                    b.finish_and_clear();
                }
            })
            .ok();
        StatusLine { stop, handle }
    }

    pub fn stop(mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_names_each_failing_outcome_and_harness_errors_apart() {
        let mut s = LiveSnapshot {
            in_flight: 3,
            shed: 2,
            ..Default::default()
        };
        s.outcomes[Outcome::Ok.index()] = 90;
        s.outcomes[Outcome::Reset.index()] = 4;
        s.outcomes[Outcome::ConnectRefused.index()] = 1;
        s.outcomes[Outcome::ClientResource.index()] = 7;
        let line = describe(
            &s,
            500.0,
            Duration::from_secs(2),
            Some(Duration::from_secs(10)),
        );
        assert!(line.contains("ok 90"), "{line}");
        assert!(
            line.contains("failed 5 (connect_refused 1, reset 4)"),
            "{line}"
        );
        assert!(line.contains("HARNESS ERRORS 7"), "{line}");
        assert!(line.contains("shed 2"), "{line}");
        assert!(line.contains("/10s"), "{line}");
    }
}
