//! Whether baton can still see the cluster. A watch whose connection
//! stalls says nothing: no error, no event, until it resumes and delivers
//! what happened meanwhile, late. So beside the watches a heartbeat asks
//! the API server for its version every [`PROBE_EVERY`]; a probe that
//! fails or takes longer than [`PROBE_TIMEOUT`] opens a *blind spot* that
//! lasts from the last answer to the next one. Blind spots go into
//! `run.json`; nothing that failed inside one is attributed to a
//! lifecycle cause, and one longer than `thresholds.max_blind_spot` makes
//! the run invalid. Blind for that long while it still goes on, the run
//! is stopped ([`Liveness::gave_up`]) instead of loading a cluster it
//! cannot see until some step's timeout.
//!
//! [`Heartbeat`] is the pure part: probe results in, blind spots out.
//!
//! Not for: the watches' own restarts (`watch` records those).

use super::watch::BlindSpot;
use crate::clock::RunClock;
use std::time::Duration;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// How often the API server is asked.
pub const PROBE_EVERY: Duration = Duration::from_millis(500);
/// A probe slower than this counts as no answer. Generous: a healthy API
/// server answers `/version` in milliseconds, even from a busy CI host.
pub const PROBE_TIMEOUT: Duration = Duration::from_secs(2);
/// The `resource` of the heartbeat's blind spots.
pub const API: &str = "api";

/// The heartbeat's state: when the API last answered, and since when it
/// has not.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Heartbeat {
    last_answer_ns: u64,
    silent_since: Option<u64>,
    spots: Vec<BlindSpot>,
}

impl Heartbeat {
    pub fn new(now_ns: u64) -> Heartbeat {
        Heartbeat {
            last_answer_ns: now_ns,
            ..Heartbeat::default()
        }
    }

    /// The API answered at `now`: a silence before it becomes a blind spot
    /// from the last answer to this one.
    pub fn answered(&mut self, now_ns: u64) {
        if self.silent_since.take().is_some() {
            self.spots.push(BlindSpot {
                resource: API.into(),
                from_ns: self.last_answer_ns,
                len_ns: now_ns.saturating_sub(self.last_answer_ns),
                open: false,
            });
        }
        self.last_answer_ns = now_ns;
    }

    /// A probe failed or timed out at `now`.
    pub fn silent(&mut self, now_ns: u64) {
        self.silent_since.get_or_insert(now_ns);
    }

    /// How long baton has been blind at `now`, if it is.
    pub fn blind_for(&self, now_ns: u64) -> Option<Duration> {
        self.silent_since
            .map(|_| Duration::from_nanos(now_ns.saturating_sub(self.last_answer_ns)))
    }

    /// The blind spots, one still open at `now` closed there and marked
    /// [`BlindSpot::open`].
    pub fn finish(mut self, now_ns: u64) -> Vec<BlindSpot> {
        if self.silent_since.is_some() {
            self.answered(now_ns);
            if let Some(last) = self.spots.last_mut() {
                last.open = true;
            }
        }
        self.spots
    }
}

/// A blind spot of the heartbeat as a timeline event (`watch/api`), so
/// that the timeline, attribution and `events.csv` treat it as they treat
/// a watch's own.
pub fn event(spot: &BlindSpot) -> crate::cluster::event::LifecycleEvent {
    let end = spot.from_ns + spot.len_ns;
    crate::cluster::event::LifecycleEvent {
        observed_ns: end,
        kind: crate::cluster::event::EventKind::WatchRestarted,
        object: format!("watch/{API}"),
        blind_ns: Some(spot.len_ns),
        reason: "NoAnswer".into(),
        detail: format!(
            "the API server did not answer for {} ms",
            spot.len_ns / 1_000_000
        ),
        ..Default::default()
    }
}

/// Whether the API server answered within [`PROBE_TIMEOUT`].
async fn probe(client: &kube::Client) -> bool {
    matches!(
        tokio::time::timeout(PROBE_TIMEOUT, client.apiserver_version()).await,
        Ok(Ok(_))
    )
}

/// The running heartbeat.
pub struct Liveness {
    stop: CancellationToken,
    gave_up: CancellationToken,
    task: JoinHandle<Vec<BlindSpot>>,
}

impl Liveness {
    /// Probe `client`'s API server until stopped; blind for longer than
    /// `give_up_after`, cancel [`Liveness::gave_up`].
    pub fn start(client: kube::Client, clock: RunClock, give_up_after: Duration) -> Liveness {
        let stop = CancellationToken::new();
        let gave_up = CancellationToken::new();
        let task = {
            let (stop, gave_up) = (stop.clone(), gave_up.clone());
            tokio::spawn(async move {
                let mut hb = Heartbeat::new(clock.now_ns());
                let mut tick = tokio::time::interval(PROBE_EVERY);
                tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                loop {
                    tokio::select! {
                        _ = stop.cancelled() => break,
                        _ = tick.tick() => {}
                    }
                    let answered = tokio::select! {
                        _ = stop.cancelled() => break,
                        a = probe(&client) => a,
                    };
                    let now = clock.now_ns();
                    if answered {
                        hb.answered(now);
                    } else {
                        hb.silent(now);
                        if let Some(blind) = hb.blind_for(now) {
                            tracing::warn!(
                                blind_ms = blind.as_millis() as u64,
                                "the API server does not answer"
                            );
                            if blind > give_up_after && !gave_up.is_cancelled() {
                                gave_up.cancel();
                            }
                        }
                    }
                }
                // One last look, so that a run ending the moment the API
                // went away knows it ended blind, whatever the tick.
                if probe(&client).await {
                    hb.answered(clock.now_ns());
                } else {
                    hb.silent(clock.now_ns());
                }
                hb.finish(clock.now_ns())
            })
        };
        Liveness {
            stop,
            gave_up,
            task,
        }
    }

    /// Cancelled once baton has been blind for longer than it may be.
    pub fn gave_up(&self) -> CancellationToken {
        self.gave_up.clone()
    }

    /// Stop probing after one last probe (at most [`PROBE_TIMEOUT`]); the
    /// blind spots seen, the last one [`BlindSpot::open`] when the API
    /// server did not answer that probe either.
    pub async fn stop(self) -> Vec<BlindSpot> {
        self.stop.cancel();
        self.task.await.unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: u64 = 1_000_000_000;

    #[test]
    fn answers_alone_make_no_blind_spot() {
        let mut hb = Heartbeat::new(0);
        for t in 1..10 {
            hb.answered(t * S / 2);
        }
        assert_eq!(hb.blind_for(5 * S), None);
        assert!(hb.finish(5 * S).is_empty());
    }

    #[test]
    fn a_silence_is_blind_from_the_last_answer_to_the_next() {
        let mut hb = Heartbeat::new(0);
        hb.answered(S);
        hb.silent(3 * S);
        hb.silent(5 * S);
        assert_eq!(hb.blind_for(6 * S), Some(Duration::from_secs(5)));
        hb.answered(9 * S);
        assert_eq!(hb.blind_for(9 * S), None);
        assert_eq!(
            hb.finish(10 * S),
            vec![BlindSpot {
                resource: API.into(),
                from_ns: S,
                len_ns: 8 * S,
                open: false
            }]
        );
    }

    #[test]
    fn a_silence_still_open_at_the_end_is_closed_there() {
        let mut hb = Heartbeat::new(0);
        hb.answered(S);
        hb.silent(2 * S);
        let spots = hb.finish(7 * S);
        assert_eq!(spots.len(), 1);
        assert_eq!((spots[0].from_ns, spots[0].len_ns), (S, 6 * S));
        assert!(spots[0].open, "the run ended blind");
    }
}
