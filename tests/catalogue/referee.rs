//! The referee of attribution: why a request really failed, from the
//! sandbox's own ground truth, never from baton's reasoning.
//!
//! Two records only a simulator has: which Pod its proxy sent each
//! connection to and how that connection ended
//! (`sandbox-ground-truth.csv`), and when each Pod's container began
//! listening, stopped accepting, was killed or crashed
//! (`sandbox-pod-truth.csv`). A failed request is joined to its
//! connection by local port, and the true cause is the mechanism:
//!
//! | the proxy's outcome | the Pod at that moment | true cause |
//! |---|---|---|
//! | no endpoint | a Pod of the Service down after a crash | `container_crash` |
//! | no endpoint | otherwise | `no_ready_endpoints` |
//! | the Pod refused (or did not accept) | deletion seen by its kubelet | `endpoint_lag_on_termination` |
//! | the Pod refused | crashed, not listening again | `container_crash` |
//! | the Pod refused | started, not listening yet | `premature_readiness` |
//! | the Pod reset it mid-connection | closed or killed in between | `killed_in_flight` |
//! | the Pod reset it mid-connection | crashed in between | `container_crash` |
//! | relayed whole | (baton saw an HTTP error status) | `app_error` |
//! | (baton ran out of a local resource) | | `harness` |
//! | anything else | | `unknown` (counted, never scored) |
//!
//! Not for: judging baton's verdict (the scenario's expectation does).
//!
//! Included by several test binaries (`#[path]`), each using part of it.
#![allow(dead_code)]

use std::collections::HashMap;
use std::path::Path;

/// One connection the sandbox's proxy accepted.
#[derive(Clone, Debug)]
pub struct Conn {
    pub accepted_ns: i128,
    pub closed_ns: Option<i128>,
    pub port: u16,
    pub pod: Option<String>,
    pub outcome: String,
}

/// One moment of one Pod's container (`started`, `listening`, ...).
#[derive(Clone, Debug)]
pub struct Moment {
    pub at_ns: i128,
    pub pod: String,
    pub kind: String,
}

/// Why a request really failed, and on which Pod.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Truth {
    pub cause: &'static str,
    pub pod: Option<String>,
}

impl Truth {
    fn of(cause: &'static str, pod: Option<&str>) -> Truth {
        Truth {
            cause,
            pod: pod.map(String::from),
        }
    }
}

pub const UNKNOWN: &str = "unknown";

/// How far a connection's accept may be from the request's start and
/// still be its own (a port is reused only after many others: tens of
/// seconds at these rates).
const JOIN_WINDOW_NS: i128 = 100_000_000;
/// How late after the request's start its own connection may be
/// accepted: a SYN dropped under load is sent again a second later.
const ACCEPT_LATE_NS: i128 = 3_000_000_000;
/// How near in time another Pod's connection that ended the same way
/// must be for the two Pods to count as failing alike (see
/// [`Referee::alike`]). At the catalogue's 200 requests/s this holds
/// about ten connections.
const ALIKE_WINDOW_NS: i128 = 25_000_000;

pub struct Referee {
    by_port: HashMap<u16, Vec<Conn>>,
    /// Every connection that named a Pod, by accept time.
    by_time: Vec<(i128, String, String)>,
    /// Per Pod, in time order.
    moments: HashMap<String, Vec<Moment>>,
}

impl Referee {
    pub fn new(conns: Vec<Conn>, mut moments: Vec<Moment>) -> Referee {
        let mut by_port: HashMap<u16, Vec<Conn>> = HashMap::new();
        let mut by_time: Vec<(i128, String, String)> = conns
            .iter()
            .filter_map(|c| Some((c.accepted_ns, c.outcome.clone(), c.pod.clone()?)))
            .collect();
        by_time.sort();
        for c in conns {
            by_port.entry(c.port).or_default().push(c);
        }
        moments.sort_by_key(|m| m.at_ns);
        let mut per_pod: HashMap<String, Vec<Moment>> = HashMap::new();
        for m in moments {
            per_pod.entry(m.pod.clone()).or_default().push(m);
        }
        Referee {
            by_port,
            by_time,
            moments: per_pod,
        }
    }

    /// Reads a run directory's two ground-truth files.
    pub fn from_dir(dir: &Path) -> Referee {
        let num = |s: &str| s.parse::<i128>().unwrap_or_else(|_| panic!("{s:?}"));
        let conns = crate::common::read_csv(&dir.join("sandbox-ground-truth.csv"))
            .into_iter()
            .map(|r| Conn {
                accepted_ns: num(&r["accepted_ns"]),
                closed_ns: (!r["closed_ns"].is_empty()).then(|| num(&r["closed_ns"])),
                port: r["client_port"].parse().expect("port"),
                pod: (!r["pod"].is_empty()).then(|| r["pod"].clone()),
                outcome: r["outcome"].clone(),
            })
            .collect();
        let moments = crate::common::read_csv(&dir.join("sandbox-pod-truth.csv"))
            .into_iter()
            .map(|r| Moment {
                at_ns: num(&r["at_ns"]),
                pod: r["pod"].clone(),
                kind: r["moment"].clone(),
            })
            .collect();
        Referee::new(conns, moments)
    }

    /// The connection of the request that left `port` at `start_ns`.
    fn conn(&self, port: u16, start_ns: i128) -> Option<&Conn> {
        self.by_port
            .get(&port)?
            .iter()
            .filter(|c| {
                c.accepted_ns - start_ns > -JOIN_WINDOW_NS
                    && c.accepted_ns - start_ns < ACCEPT_LATE_NS
            })
            .min_by_key(|c| (c.accepted_ns - start_ns).abs())
    }

    /// How many Pods failed alike around the request on `port` that
    /// started at `start_ns`: the Pods whose connections, accepted within
    /// [`ALIKE_WINDOW_NS`] of its own, ended as its own did (refused,
    /// reset...), its own Pod included; 1 when an answer came back (it
    /// names its Pod); 0 when its connection names no Pod.
    ///
    /// What it is for: through a Service address a client sees the same
    /// thing whichever of those Pods it reached, so no attribution from
    /// the client's side can rank the true one first more than one time
    /// in `alike` but by luck; the sum of `1/alike` is what a fair guess
    /// among them attains. An estimate that leans high: a Pod that failed
    /// alike but drew no connection in the window is not counted.
    pub fn alike(&self, port: u16, start_ns: i128) -> usize {
        let Some(c) = self.conn(port, start_ns) else {
            return 0;
        };
        if c.pod.is_none() {
            return 0;
        }
        if c.outcome == "proxied" {
            // An answer came back, naming its Pod (`backend_from`).
            return 1;
        }
        let from = self
            .by_time
            .partition_point(|(t, ..)| *t < c.accepted_ns - ALIKE_WINDOW_NS);
        let mut pods: Vec<&str> = self.by_time[from..]
            .iter()
            .take_while(|(t, ..)| *t <= c.accepted_ns + ALIKE_WINDOW_NS)
            .filter(|(_, outcome, _)| *outcome == c.outcome)
            .map(|(_, _, pod)| pod.as_str())
            .collect();
        pods.sort_unstable();
        pods.dedup();
        pods.len()
    }

    /// The Pod's moments up to and including `t`.
    fn until(&self, pod: &str, t: i128) -> &[Moment] {
        let all = self.moments.get(pod).map(Vec::as_slice).unwrap_or(&[]);
        let n = all.partition_point(|m| m.at_ns <= t);
        &all[..n]
    }

    /// Down after a crash at `t`: crashed, and not listening since.
    fn down_after_crash(&self, pod: &str, t: i128) -> bool {
        let past = self.until(pod, t);
        let crash = past.iter().rposition(|m| m.kind == "crashed");
        let listen = past.iter().rposition(|m| m.kind == "listening");
        match (crash, listen) {
            (Some(c), Some(l)) => c > l,
            (Some(_), None) => true,
            _ => false,
        }
    }

    /// Why the request on `port` that started at `start_ns` failed;
    /// `baton_outcome` is its `requests.csv` outcome.
    pub fn judge(&self, port: u16, start_ns: i128, baton_outcome: &str) -> Truth {
        if baton_outcome == "client_resource" {
            // The load host's own limit: the connection never left it.
            return Truth::of("harness", None);
        }
        let Some(c) = self.conn(port, start_ns) else {
            return Truth::of(UNKNOWN, None);
        };
        let t = c.accepted_ns;
        match (c.outcome.as_str(), c.pod.as_deref()) {
            ("no_endpoints", _) => {
                let crashed = self.moments.keys().find(|p| self.down_after_crash(p, t));
                match crashed {
                    Some(p) => Truth::of("container_crash", Some(p)),
                    None => Truth::of("no_ready_endpoints", None),
                }
            }
            ("upstream_refused" | "upstream_timeout", Some(p)) => {
                let past = self.until(p, t);
                if past.iter().any(|m| m.kind == "deleting") {
                    Truth::of("endpoint_lag_on_termination", Some(p))
                } else if self.down_after_crash(p, t) {
                    Truth::of("container_crash", Some(p))
                } else if past.last().is_some_and(|m| m.kind == "started") {
                    Truth::of("premature_readiness", Some(p))
                } else {
                    Truth::of(UNKNOWN, Some(p))
                }
            }
            ("upstream_reset", Some(p)) => {
                let end = c.closed_ns.unwrap_or(i128::MAX);
                let cut = self
                    .moments
                    .get(p)
                    .into_iter()
                    .flatten()
                    .filter(|m| m.at_ns >= t - JOIN_WINDOW_NS && m.at_ns <= end)
                    .find(|m| matches!(m.kind.as_str(), "closed" | "killed" | "crashed"));
                match cut.map(|m| m.kind.as_str()) {
                    Some("crashed") => Truth::of("container_crash", Some(p)),
                    Some(_) => Truth::of("killed_in_flight", Some(p)),
                    None => Truth::of(UNKNOWN, Some(p)),
                }
            }
            ("proxied", Some(p)) if baton_outcome == "http_status" => {
                Truth::of("app_error", Some(p))
            }
            (_, p) => Truth::of(UNKNOWN, p),
        }
    }
}

/// One failure of a run directory as baton explained it (`failures.csv`),
/// beside what really happened.
#[derive(Clone, Debug)]
pub struct Judged {
    pub cause: String,
    pub confidence: String,
    /// The candidate Pods, in baton's order (the first is the one it
    /// ranks first).
    pub candidates: Vec<String>,
    pub truth: Truth,
    /// How many Pods failed alike at that moment ([`Referee::alike`]).
    pub alike: usize,
}

impl Judged {
    /// baton named the true cause.
    pub fn right_cause(&self) -> bool {
        self.cause == self.truth.cause
    }

    /// baton ranked the Pod the proxy chose first (or no Pod was chosen).
    pub fn pod_first(&self) -> bool {
        self.truth
            .pod
            .as_deref()
            .is_none_or(|p| self.candidates.first().map(String::as_str) == Some(p))
    }
}

/// The `seq`, local port, start and outcome of every request of a run.
fn requests_by_seq(dir: &Path) -> HashMap<String, (u16, i128, String)> {
    crate::common::read_csv(&dir.join("requests.csv"))
        .into_iter()
        .map(|r| {
            let port = r["local_port"].parse().expect("local_port");
            let start = r["start_ns"].parse().expect("start_ns");
            (r["seq"].clone(), (port, start, r["outcome"].clone()))
        })
        .collect()
}

impl Referee {
    /// Every failure of a run directory joined to its request (by `seq`)
    /// and to its connection (by local port), and judged.
    pub fn judge_dir(dir: &Path) -> Vec<Judged> {
        let referee = Referee::from_dir(dir);
        let requests = requests_by_seq(dir);
        crate::common::read_csv(&dir.join("failures.csv"))
            .into_iter()
            .map(|f| {
                let (port, start, outcome) = &requests[&f["seq"]];
                Judged {
                    truth: referee.judge(*port, *start, outcome),
                    alike: referee.alike(*port, *start),
                    cause: f["cause"].clone(),
                    confidence: f["confidence"].clone(),
                    candidates: f["candidates"]
                        .split("; ")
                        .filter(|c| !c.is_empty())
                        .map(|c| c.split(" (").next().unwrap_or(c).to_string())
                        .collect(),
                }
            })
            .collect()
    }

    /// How many of a run's requests the proxy saw fail (its connection
    /// ended other than relayed whole): the ground truth's own count, to
    /// set beside baton's.
    pub fn failed_requests(&self, dir: &Path) -> usize {
        requests_by_seq(dir)
            .values()
            .filter_map(|(port, start, _)| self.conn(*port, *start))
            .filter(|c| c.outcome != "proxied")
            .count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conn(port: u16, at: i128, pod: Option<&str>, outcome: &str) -> Conn {
        Conn {
            accepted_ns: at,
            closed_ns: Some(at + 1_000_000),
            port,
            pod: pod.map(String::from),
            outcome: outcome.into(),
        }
    }

    fn m(at: i128, pod: &str, kind: &str) -> Moment {
        Moment {
            at_ns: at,
            pod: pod.into(),
            kind: kind.into(),
        }
    }

    const MS: i128 = 1_000_000;

    fn life() -> Vec<Moment> {
        vec![
            m(0, "old", "started"),
            m(10 * MS, "old", "listening"),
            m(1000 * MS, "old", "deleting"),
            m(1001 * MS, "old", "closed"),
            m(900 * MS, "new", "started"),
            m(1500 * MS, "new", "listening"),
            m(2000 * MS, "new", "crashed"),
        ]
    }

    #[test]
    fn a_refusal_by_a_deleted_pod_is_endpoint_lag() {
        let r = Referee::new(
            vec![conn(1, 1100 * MS, Some("old"), "upstream_refused")],
            life(),
        );
        assert_eq!(
            r.judge(1, 1100 * MS, "reset"),
            Truth::of("endpoint_lag_on_termination", Some("old"))
        );
    }

    #[test]
    fn a_reset_by_the_close_of_a_connection_in_flight_is_killed_in_flight() {
        let r = Referee::new(
            vec![conn(1, 1000 * MS + 500_000, Some("old"), "upstream_reset")],
            life(),
        );
        assert_eq!(r.judge(1, 1000 * MS, "reset").cause, "killed_in_flight");
    }

    #[test]
    fn a_refusal_before_listening_is_premature_readiness_and_after_a_crash_is_the_crash() {
        let r = Referee::new(
            vec![
                conn(1, 1200 * MS, Some("new"), "upstream_refused"),
                conn(2, 2100 * MS, Some("new"), "upstream_refused"),
            ],
            life(),
        );
        assert_eq!(r.judge(1, 1200 * MS, "reset").cause, "premature_readiness");
        assert_eq!(r.judge(2, 2100 * MS, "reset").cause, "container_crash");
    }

    #[test]
    fn no_endpoint_is_the_crash_when_a_pod_is_down_after_one() {
        let r = Referee::new(
            vec![
                conn(1, 1600 * MS, None, "no_endpoints"),
                conn(2, 2100 * MS, None, "no_endpoints"),
            ],
            life(),
        );
        assert_eq!(r.judge(1, 1600 * MS, "reset").cause, "no_ready_endpoints");
        assert_eq!(r.judge(2, 2100 * MS, "reset").cause, "container_crash");
    }

    #[test]
    fn a_request_the_proxy_never_saw_or_relayed_whole_is_unknown_unless_an_http_error() {
        let r = Referee::new(vec![conn(1, 50 * MS, Some("old"), "proxied")], life());
        assert_eq!(r.judge(1, 50 * MS, "timeout").cause, UNKNOWN);
        assert_eq!(r.judge(1, 50 * MS, "http_status").cause, "app_error");
        assert_eq!(r.judge(9, 50 * MS, "reset").cause, UNKNOWN);
        // A port reused long after is not the same connection.
        assert_eq!(r.judge(1, 5000 * MS, "reset").cause, UNKNOWN);
    }

    #[test]
    fn pods_failing_the_same_way_at_the_same_moment_count_as_alike() {
        let r = Referee::new(
            vec![
                conn(1, 1000 * MS, Some("a"), "upstream_refused"),
                conn(2, 1010 * MS, Some("b"), "upstream_refused"),
                conn(3, 1020 * MS, Some("a"), "upstream_refused"),
                // Ended otherwise: not alike.
                conn(4, 1005 * MS, Some("c"), "proxied"),
                conn(5, 1015 * MS, Some("d"), "upstream_reset"),
                conn(8, 1012 * MS, Some("f"), "proxied"),
                // Too far away: not alike.
                conn(6, 1040 * MS, Some("e"), "upstream_refused"),
                conn(7, 2000 * MS, None, "no_endpoints"),
            ],
            life(),
        );
        assert_eq!(r.alike(1, 1000 * MS), 2);
        assert_eq!(r.alike(3, 1020 * MS), 3, "a, b and e within 25 ms");
        assert_eq!(r.alike(5, 1015 * MS), 1);
        assert_eq!(r.alike(4, 1005 * MS), 1, "an answer names its Pod");
        assert_eq!(r.alike(7, 2000 * MS), 0, "no Pod");
        assert_eq!(r.alike(9, 1000 * MS), 0, "no connection");
    }
}
