//! The kernel data plane's ground truth: `conntrack -E` event lines read
//! into [`ConnRecord`]s (pure: the parser and the per-connection state
//! machine, tested here without a kernel).
//!
//! conntrack sees each connection's original tuple (the client's address
//! and the door it dialled) and its reply tuple (the endpoint the DNAT
//! chose), and every TCP state change. How a connection ended follows
//! from the states it went through:
//!
//! | states seen | outcome |
//! |---|---|
//! | NEW to the sentinel (no endpoint) | `no_endpoints` |
//! | `CLOSE` before any `SYN_RECV`/`ESTABLISHED` | `upstream_refused` (the endpoint's kernel answered the SYN with a reset) |
//! | `ESTABLISHED`, then a FIN state (`FIN_WAIT`, `CLOSE_WAIT`, `LAST_ACK`, `TIME_WAIT`) | `proxied` |
//! | `ESTABLISHED`, then `CLOSE` with no FIN | `upstream_reset` (conntrack does not say which side reset) |
//! | none of these by the end | `open` |
//!
//! Bytes are not counted (conntrack accounting is off by default): the
//! records say 0.
//!
//! Not for: running `conntrack` (see [`super`]).

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};

use crate::truth::{ConnRecord, Entry, GroundTruth, Outcome};

/// What kind of conntrack event a line is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    New,
    Update,
    Destroy,
}

/// One `conntrack -E -o timestamp,id` line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Event {
    pub unix_ns: u128,
    pub kind: Kind,
    /// The TCP state (`SYN_SENT`, `ESTABLISHED`, `CLOSE`, ...).
    pub state: String,
    /// Original direction: the client, and the door it dialled.
    pub client: SocketAddr,
    pub door: SocketAddr,
    /// Reply direction's source: the endpoint the DNAT chose.
    pub endpoint: SocketAddr,
    pub id: u64,
}

/// Parses one line; `None` for anything else conntrack prints (notices,
/// the closing count) or a line of another protocol.
pub fn parse(line: &str) -> Option<Event> {
    let line = line.trim();
    let rest = line.strip_prefix('[')?;
    let (ts, rest) = rest.split_once(']')?;
    let (secs, micros) = ts.split_once('.')?;
    let unix_ns = secs.parse::<u128>().ok()? * 1_000_000_000 + micros.parse::<u128>().ok()? * 1_000;
    let rest = rest.trim_start();
    let (kind, rest) = rest.strip_prefix('[')?.split_once(']')?;
    let kind = match kind.trim() {
        "NEW" => Kind::New,
        "UPDATE" => Kind::Update,
        "DESTROY" => Kind::Destroy,
        _ => return None,
    };
    let mut words = rest.split_whitespace();
    if words.next()? != "tcp" {
        return None;
    }
    let mut state = None;
    let (mut src, mut dst, mut sport, mut dport) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let mut id = None;
    for w in words {
        match w.split_once('=') {
            Some(("src", v)) => src.push(v.parse::<IpAddr>().ok()?),
            Some(("dst", v)) => dst.push(v.parse::<IpAddr>().ok()?),
            Some(("sport", v)) => sport.push(v.parse::<u16>().ok()?),
            Some(("dport", v)) => dport.push(v.parse::<u16>().ok()?),
            Some(("id", v)) => id = v.parse::<u64>().ok(),
            Some(_) => {}
            None if state.is_none()
                && w.chars().all(|c| c.is_ascii_uppercase() || c == '_')
                && !w.is_empty() =>
            {
                state = Some(w.to_string());
            }
            None => {}
        }
    }
    if src.len() < 2 || dst.is_empty() || sport.len() < 2 || dport.is_empty() {
        return None;
    }
    Some(Event {
        unix_ns,
        kind,
        state: state?,
        client: SocketAddr::new(src[0], sport[0]),
        door: SocketAddr::new(dst[0], dport[0]),
        endpoint: SocketAddr::new(src[1], sport[1]),
        id: id?,
    })
}

/// Where a door leads: the Service behind it and how it is reached.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Door {
    pub namespace: String,
    pub service: String,
    pub entry: Entry,
}

/// One connection being followed.
struct Open {
    truth_id: u64,
    established: bool,
}

/// Turns events into ground-truth records, one per connection.
pub struct Tracker {
    gt: GroundTruth,
    sentinel: SocketAddr,
    open: HashMap<u64, Open>,
}

impl Tracker {
    pub fn new(gt: GroundTruth, sentinel: SocketAddr) -> Tracker {
        Tracker {
            gt,
            sentinel,
            open: HashMap::new(),
        }
    }

    /// Takes one event. `door` says where the dialled address leads and
    /// `pod` which Pod has an endpoint address (both as the data plane
    /// knows them now).
    pub fn event(
        &mut self,
        e: &Event,
        door: impl FnOnce(SocketAddr) -> Option<Door>,
        pod: impl FnOnce(IpAddr) -> Option<String>,
    ) {
        if e.kind == Kind::New {
            let Some(d) = door(e.door) else {
                return;
            };
            let refused_here = e.endpoint == self.sentinel;
            let (outcome, closed, pod_name, pod_addr) = if refused_here {
                (Outcome::NoEndpoints, Some(e.unix_ns), None, None)
            } else {
                (Outcome::Open, None, pod(e.endpoint.ip()), Some(e.endpoint))
            };
            let truth_id = self.gt.open(ConnRecord {
                id: 0,
                accepted_unix_ns: e.unix_ns,
                client_addr: e.client,
                namespace: d.namespace,
                service: d.service,
                node_port: e.door.port(),
                pod: pod_name,
                pod_addr,
                outcome,
                bytes_up: 0,
                bytes_down: 0,
                closed_unix_ns: closed,
                ingress: None,
                entry: d.entry,
            });
            if !refused_here {
                self.open.insert(
                    e.id,
                    Open {
                        truth_id,
                        established: false,
                    },
                );
            }
            return;
        }
        let Some(o) = self.open.get_mut(&e.id) else {
            return;
        };
        let ended = match e.state.as_str() {
            "SYN_RECV" | "ESTABLISHED" => {
                o.established = true;
                None
            }
            "FIN_WAIT" | "CLOSE_WAIT" | "LAST_ACK" | "TIME_WAIT" if o.established => {
                Some(Outcome::Proxied)
            }
            "CLOSE" if o.established => Some(Outcome::UpstreamReset),
            "CLOSE" => Some(Outcome::UpstreamRefused),
            _ if e.kind == Kind::Destroy => Some(if o.established {
                Outcome::Proxied
            } else {
                Outcome::UpstreamRefused
            }),
            _ => None,
        };
        if let Some(outcome) = ended {
            let id = o.truth_id;
            self.open.remove(&e.id);
            self.gt.update(id, |r| {
                r.outcome = outcome;
                r.closed_unix_ns = Some(e.unix_ns);
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NEW: &str = "[1796194665.856717]\t    [NEW] tcp      6 120 SYN_SENT src=127.0.0.1 dst=127.99.0.1 sport=47214 dport=30001 [UNREPLIED] src=127.99.0.3 dst=127.0.0.1 sport=8080 dport=47214 mark=23130 id=3318180479";

    fn line(kind: &str, state: &str, endpoint: &str) -> String {
        format!(
            "[1796194666.000001]\t [{kind}] tcp      6 60 {state} src=127.0.0.1 dst=127.99.0.1 sport=47214 dport=30001 src={endpoint} dst=127.0.0.1 sport=8080 dport=47214 [ASSURED] mark=23130 id=3318180479"
        )
    }

    fn door(_: SocketAddr) -> Option<Door> {
        Some(Door {
            namespace: "default".into(),
            service: "web".into(),
            entry: Entry::NodePort,
        })
    }

    fn pod(_: IpAddr) -> Option<String> {
        Some("web-1".into())
    }

    fn follow(lines: &[String]) -> ConnRecord {
        let gt = GroundTruth::default();
        let mut t = Tracker::new(gt.clone(), "127.10.0.0:9".parse().unwrap());
        for l in lines {
            t.event(&parse(l).unwrap(), door, pod);
        }
        let all = gt.snapshot();
        assert_eq!(all.len(), 1, "one record per connection");
        all[0].clone()
    }

    #[test]
    fn a_new_event_gives_the_client_the_door_and_the_chosen_endpoint() {
        let e = parse(NEW).unwrap();
        assert_eq!(e.kind, Kind::New);
        assert_eq!(e.state, "SYN_SENT");
        assert_eq!(e.client, "127.0.0.1:47214".parse().unwrap());
        assert_eq!(e.door, "127.99.0.1:30001".parse().unwrap());
        assert_eq!(e.endpoint, "127.99.0.3:8080".parse().unwrap());
        assert_eq!(e.id, 3318180479);
        assert_eq!(e.unix_ns, 1_796_194_665_856_717_000);
    }

    #[test]
    fn lines_that_are_not_tcp_events_are_skipped() {
        assert_eq!(
            parse("NOTICE: Netlink socket buffer size has been set to 16777216 bytes."),
            None
        );
        assert_eq!(
            parse("conntrack v1.4.7 (conntrack-tools): 6 flow events have been shown."),
            None
        );
        assert_eq!(parse(&NEW.replace(" tcp ", " udp ")), None);
    }

    #[test]
    fn a_connection_that_closes_with_fins_was_served() {
        let r = follow(&[
            NEW.to_string(),
            line("UPDATE", "SYN_RECV", "127.99.0.3"),
            line("UPDATE", "ESTABLISHED", "127.99.0.3"),
            line("UPDATE", "FIN_WAIT", "127.99.0.3"),
            line("UPDATE", "TIME_WAIT", "127.99.0.3"),
        ]);
        assert_eq!(r.outcome, Outcome::Proxied);
        assert_eq!(r.pod.as_deref(), Some("web-1"));
        assert_eq!(r.client_addr.port(), 47214);
        assert_eq!(r.closed_unix_ns, Some(1_796_194_666_000_001_000));
    }

    #[test]
    fn a_syn_answered_by_a_reset_is_refused_by_the_endpoint() {
        let r = follow(&[NEW.to_string(), line("DESTROY", "CLOSE", "127.99.0.3")]);
        assert_eq!(r.outcome, Outcome::UpstreamRefused);
        assert_eq!(r.pod_addr, Some("127.99.0.3:8080".parse().unwrap()));
    }

    #[test]
    fn a_reset_after_the_handshake_is_a_reset_mid_connection() {
        let r = follow(&[
            NEW.to_string(),
            line("UPDATE", "ESTABLISHED", "127.99.0.3"),
            line("UPDATE", "CLOSE", "127.99.0.3"),
            line("DESTROY", "CLOSE", "127.99.0.3"),
        ]);
        assert_eq!(r.outcome, Outcome::UpstreamReset);
    }

    #[test]
    fn the_sentinel_endpoint_means_no_endpoint_and_no_pod() {
        let r = follow(&[NEW.replace(
            "src=127.99.0.3 dst=127.0.0.1 sport=8080",
            "src=127.10.0.0 dst=127.0.0.1 sport=9",
        )]);
        assert_eq!(r.outcome, Outcome::NoEndpoints);
        assert_eq!(r.pod, None);
    }

    #[test]
    fn a_connection_never_answered_stays_open() {
        let r = follow(&[NEW.to_string()]);
        assert_eq!(r.outcome, Outcome::Open);
        assert_eq!(r.closed_unix_ns, None);
    }

    #[test]
    fn events_of_another_sandbox_door_are_not_recorded() {
        let gt = GroundTruth::default();
        let mut t = Tracker::new(gt.clone(), "127.10.0.0:9".parse().unwrap());
        t.event(&parse(NEW).unwrap(), |_| None, pod);
        t.event(
            &parse(&line("UPDATE", "ESTABLISHED", "127.99.0.3")).unwrap(),
            door,
            pod,
        );
        assert!(gt.snapshot().is_empty());
    }
}
