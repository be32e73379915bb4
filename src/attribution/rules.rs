//! One function per cause: which Pods (candidates) could explain a failed
//! request under that cause, and whether each fits on the evidence alone
//! (`strict`) or only thanks to an allowance for lagging proxies and
//! watches. The order in which they are tried lives in the parent module.

use super::{AttributionConfig, FailedRequest};
use crate::cluster::event::{EventKind, LifecycleEvent};
use crate::load::outcome::{Outcome, Phase};
use crate::timeline::{Deletion, Routability, Timeline};

/// The API's own times have one-second resolution: the true instant of an
/// event lies within a second before the time it carries.
const API_RESOLUTION_NS: u64 = 1_000_000_000;

/// The Pods a rule needs to look at: the backend alone when the response
/// named one (the result is narrowed to it anyway), else every Pod.
fn pods_for<'a>(f: &'a FailedRequest, t: &'a Timeline) -> Box<dyn Iterator<Item = &'a str> + 'a> {
    match &f.backend {
        Some(b) => Box::new(std::iter::once(b.as_str())),
        None => Box::new(t.pod_names()),
    }
}

/// A Pod that could explain a failure under one cause.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Candidate {
    pub pod: String,
    /// Fits on the evidence alone, without an allowance.
    pub strict: bool,
    /// Observed time of the event that makes it a candidate (deletion,
    /// termination, readiness, ...).
    pub event_ns: u64,
    /// What the event was, for the evidence line ("got its
    /// deletionTimestamp (grace 30 s)", "'s container terminated (exit 1,
    /// Error)").
    pub what: String,
    /// Why it fits only loosely, if it does ("its endpoint stopped being
    /// routable 300 ms earlier").
    pub loose_because: Option<String>,
    /// For killed in flight: the grace period of the Pod, and whether the
    /// kill came at the deletion itself (SIGTERM) rather than at the end
    /// of the grace period.
    pub grace_period_s: Option<i64>,
    pub at_deletion: bool,
    /// For a terminating Pod's container exit: how long after the Pod's
    /// deletion it came (near the grace period: killed at its end; long
    /// before: the app exits at SIGTERM).
    pub exit_after_deletion_ns: Option<u64>,
    /// For endpoint lag: the endpoint had left the EndpointSlice at this
    /// instant, within the propagation allowance before the failure, so
    /// only a proxy that had not caught up yet still routed to it. That
    /// *is* endpoint lag: evidence, not a stretch.
    pub lagging_since_ns: Option<u64>,
    /// For endpoint lag: routable only by the terminating fallback (no
    /// endpoint was ready, so proxies used the serving, terminating ones).
    pub by_fallback: bool,
}

impl Candidate {
    fn new(pod: &str, event_ns: u64, what: String) -> Self {
        Candidate {
            pod: pod.to_string(),
            strict: true,
            event_ns,
            what,
            loose_because: None,
            grace_period_s: None,
            at_deletion: false,
            exit_after_deletion_ns: None,
            lagging_since_ns: None,
            by_fallback: false,
        }
    }

    fn loose(mut self, because: String) -> Self {
        self.strict = false;
        self.loose_because = Some(because);
        self
    }
}

/// When an event can have happened, as `[earliest, latest]` on the run
/// clock. Observed time alone gives `[observed, observed]`. An API time
/// (which has one-second resolution) widens it back: the event happened
/// within a second after its API time, and not after it was observed. For
/// an event seen long after it happened (a re-list, or the initial list
/// of a Pod that was already ready), that moves the window back to where
/// the API puts it. A clock skew between the API server and the load host
/// shifts API times; observed time stays the truth for ordering.
pub(crate) fn event_window(e: &LifecycleEvent) -> (u64, u64) {
    window(e.observed_ns, e.api_ns)
}

fn window(obs: u64, api_ns: Option<i64>) -> (u64, u64) {
    match api_ns {
        Some(api) => {
            let lo = (api.max(0) as u64).min(obs);
            let hi = lo.saturating_add(API_RESOLUTION_NS).min(obs);
            (lo, hi)
        }
        None => (obs, obs),
    }
}

/// The earliest instant an event can have happened.
pub(crate) fn earliest_ns(e: &LifecycleEvent) -> u64 {
    event_window(e).0
}

/// The request died on an established connection: the peer went away
/// while it was being sent or answered.
pub(crate) fn died_mid_exchange(f: &FailedRequest) -> bool {
    match f.outcome {
        Outcome::Reset | Outcome::Eof => {
            matches!(f.phase, Phase::Write | Phase::FirstByte | Phase::Body)
        }
        Outcome::Timeout => f.phase != Phase::Connect,
        _ => false,
    }
}

/// An HTTP proxy in front (an Ingress controller) answered for a Pod it
/// could not reach: 502 (refused, or reset before an answer) or 504 (no
/// accept in time), naming no backend. These are ingress-nginx's own
/// error pages, where a client of a NodePort sees the refusal or the
/// reset itself. An application's own 502 names its Pod when
/// `backend_from` is set; without it, a gateway app's 502 reads as its
/// proxy's.
pub(crate) fn proxy_could_not_connect(f: &FailedRequest) -> bool {
    f.outcome == Outcome::HttpStatus && f.backend.is_none() && matches!(f.status, Some(502 | 504))
}

/// A new connection found nobody to talk to: refused, timed out, or
/// (through a proxy that accepted and then could not connect upstream)
/// closed or reset before any byte of response, or answered 502 or 504
/// by that proxy ([`proxy_could_not_connect`]).
pub(crate) fn new_connection_failed(f: &FailedRequest) -> bool {
    match f.outcome {
        Outcome::ConnectRefused | Outcome::ConnectTimeout => true,
        Outcome::HttpStatus => proxy_could_not_connect(f),
        Outcome::Reset | Outcome::Eof => {
            matches!(f.phase, Phase::Connect | Phase::Write | Phase::FirstByte)
        }
        Outcome::Timeout => f.phase == Phase::FirstByte,
        _ => false,
    }
}

/// Nobody accepted the connection: refused at connect, or (through a
/// proxy that accepted and then could not connect upstream) reset or
/// closed before any byte of response. Unlike
/// [`new_connection_failed`], not a timeout: a Pod that is listening can
/// be too slow to answer.
pub(crate) fn no_listener(f: &FailedRequest) -> bool {
    match f.outcome {
        Outcome::ConnectRefused => true,
        Outcome::HttpStatus => f.backend.is_none() && f.status == Some(502),
        Outcome::Reset | Outcome::Eof => {
            matches!(f.phase, Phase::Connect | Phase::Write | Phase::FirstByte)
        }
        _ => false,
    }
}

/// "got its deletionTimestamp from an eviction (grace 60 s)": the
/// deletion, and who caused it when not the Pod's owner (its
/// `DisruptionTarget` reason).
fn deletion_what(grace_period_s: Option<i64>, disruption: &str) -> String {
    let by = match disruption {
        "" => String::new(),
        "EvictionByEvictionAPI" => " from an eviction".to_string(),
        other => format!(" ({other})"),
    };
    match grace_period_s {
        Some(g) => format!("got its deletionTimestamp{by} (grace {g} s)"),
        None => format!("got its deletionTimestamp{by}"),
    }
}

fn termination_what(e: &LifecycleEvent) -> String {
    let mut s = String::from("'s container terminated");
    match (e.exit_code, e.reason.is_empty()) {
        (Some(c), false) => s.push_str(&format!(" (exit {c}, {})", e.reason)),
        (Some(c), true) => s.push_str(&format!(" (exit {c})")),
        (None, false) => s.push_str(&format!(" ({})", e.reason)),
        (None, true) => {}
    }
    s
}

/// `killed_in_flight`: the request was in flight when a Pod got its
/// deletion, or when a terminating Pod's container exited, and it died
/// mid-exchange. Strict when the request was still alive at the earliest
/// instant the event can have happened; loose when it ended up to the
/// allowance before (the watch saw the event late).
pub(crate) fn killed_in_flight(
    f: &FailedRequest,
    t: &Timeline,
    cfg: &AttributionConfig,
) -> Vec<Candidate> {
    if !died_mid_exchange(f) {
        return Vec::new();
    }
    let allowance = cfg.propagation_allowance.as_nanos() as u64;
    let mut out = Vec::new();
    for pod in pods_for(f, t) {
        let routability = t.routability(pod, f.start_ns, allowance);
        if routability == Routability::No {
            continue;
        }
        let mut best: Option<Candidate> = None;
        for e in t.pod_events(pod) {
            let at_deletion = match e.kind {
                EventKind::PodDeleting => true,
                // A terminating Pod's exit; a crash is another cause.
                EventKind::ContainerTerminated
                    if t.pod_at(pod, e.observed_ns)
                        .is_some_and(|p| p.terminating()) =>
                {
                    false
                }
                _ => continue,
            };
            // Only a Pod's first deletion counts: a re-list repeats it.
            if at_deletion
                && t.pod_at(pod, e.observed_ns)
                    .and_then(|p| p.deletion.as_ref())
                    .is_some_and(|d| d.observed_ns < e.observed_ns)
            {
                continue;
            }
            // A request that ended before the earliest instant the event
            // can have happened was not killed by it. Without an API time
            // that instant is when the watch saw it, which may be late by
            // up to the allowance; an API time bounds it (found against
            // the sandbox's ground truth: refusals by new Pods were blamed
            // on an old Pod's exit whose API time came after them).
            let earliest = earliest_ns(e);
            let late_by = if e.api_ns.is_some() { 0 } else { allowance };
            if f.start_ns >= e.observed_ns || f.end_ns + late_by < earliest {
                continue;
            }
            let what = if at_deletion {
                deletion_what(e.grace_period_s, &e.reason)
            } else {
                termination_what(e)
            };
            let mut c = Candidate::new(pod, e.observed_ns, what);
            c.at_deletion = at_deletion;
            let deletion = t
                .pod_at(pod, e.observed_ns)
                .and_then(|p| p.deletion.clone());
            c.grace_period_s = deletion.as_ref().and_then(|d| d.grace_period_s);
            if !at_deletion {
                c.exit_after_deletion_ns = deletion
                    .as_ref()
                    .map(|d| e.observed_ns.saturating_sub(d.observed_ns));
            }
            // Strict only when the watch saw the kill while the request
            // ran: a kill observed after the request had ended fits only
            // through the API time's one-second window or the allowance.
            if f.end_ns < e.observed_ns {
                c = c.loose(format!(
                    "it ended {} before the watch saw that{}",
                    super::text::dur(e.observed_ns - f.end_ns),
                    if f.end_ns < earliest {
                        format!(", within the {} allowance", super::text::dur(allowance))
                    } else {
                        ", which the event's API time allows".to_string()
                    },
                ));
            }
            if c.strict && matches!(routability, Routability::Lagging { .. }) {
                c = c.loose(
                    "its endpoint had stopped being routable when the request began, \
                     within the propagation allowance"
                        .to_string(),
                );
            }
            // Prefer a strict fit, then the event nearest the request's end.
            let better = match &best {
                None => true,
                Some(b) => {
                    (c.strict, std::cmp::Reverse(f.end_ns.abs_diff(c.event_ns)))
                        > (b.strict, std::cmp::Reverse(f.end_ns.abs_diff(b.event_ns)))
                }
            };
            if better {
                best = Some(c);
            }
        }
        // A deletion kills nothing while a preStop sleep runs: SIGTERM
        // comes after it. Found against the sandbox's ground truth:
        // refusals by new Pods were blamed on old Pods deleted during the
        // request.
        let in_prestop = |c: &Candidate| {
            c.at_deletion
                && cfg
                    .prestop_sleep_ns()
                    .is_some_and(|p| f.end_ns < c.event_ns + p)
        };
        out.extend(best.filter(|c| !in_prestop(c)));
    }
    out
}

/// `endpoint_lag_on_termination`: a new connection failed after a Pod's
/// deletion while that Pod's endpoint was still routable. "Failed" is
/// refused, timed out, or cut off at any point of the exchange: a request
/// routed to a Pod that is going away is lost however far it got, and a
/// preStop sleep (the Pod serving on until proxies let go) saves it.
///
/// Strict when the endpoint was listed ready at the failure and the
/// deletion had been observed; loose when only the propagation allowance
/// (the endpoint went shortly before) or the API time (the deletion was
/// seen shortly after) makes it fit. An HTTP error answered by a
/// terminating Pod (backend known) counts too: it was routed to a Pod that
/// was going away.
pub(crate) fn endpoint_lag(
    f: &FailedRequest,
    t: &Timeline,
    cfg: &AttributionConfig,
) -> Vec<Candidate> {
    let answered_while_terminating = f.outcome == Outcome::HttpStatus && f.backend.is_some();
    if !new_connection_failed(f) && !died_mid_exchange(f) && !answered_while_terminating {
        return Vec::new();
    }
    let allowance = cfg.propagation_allowance.as_nanos() as u64;
    let at = f.start_ns;
    let mut out = Vec::new();
    for pod in pods_for(f, t) {
        // The deletion of the Pod as it was at the failure, or, failing
        // that, the next one seen (an API time may put it earlier).
        let deletion = t
            .pod_at(pod, at)
            .and_then(|p| p.deletion.clone())
            .or_else(|| {
                t.pod_events(pod)
                    .find(|e| e.kind == EventKind::PodDeleting && e.observed_ns > at)
                    .map(Deletion::of)
            });
        let Some(d) = deletion else {
            continue;
        };
        let (earliest, _) = window(d.observed_ns, d.api_ns);
        if at < earliest {
            continue;
        }
        let mut routability = t.routability(pod, at, allowance);
        let fallback = matches!(routability, Routability::No | Routability::Unknown)
            && t.terminating_fallback(pod, at, allowance);
        if fallback {
            routability = Routability::Routable;
        }
        if routability == Routability::No {
            continue;
        }
        let mut c = Candidate::new(
            pod,
            d.observed_ns,
            deletion_what(d.grace_period_s, &d.disruption),
        );
        c.by_fallback = fallback;
        if at < d.observed_ns {
            c = c.loose(format!(
                "the watch saw the deletion {} later; its API time puts it before",
                super::text::dur(d.observed_ns - at)
            ));
        }
        match routability {
            Routability::Routable | Routability::No => {}
            Routability::Lagging { stopped_ns } => c.lagging_since_ns = Some(stopped_ns),
            Routability::Unknown => {
                c = c.loose("no endpoint events were seen for it".to_string());
            }
        }
        out.push(c);
    }
    out
}

/// How `no_ready_endpoints` fits, if it does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum NoReady {
    /// Zero ready at the instant and throughout the allowance before it.
    Throughout,
    /// Zero at the instant; `had` were ready `ago_ns` earlier, so a
    /// lagging proxy may still have known one.
    AtInstant { had: usize },
    /// Some ready at the instant, but zero within the allowance before it:
    /// a lagging proxy may not have learned of them yet.
    WithinAllowance { now: usize },
}

/// `no_ready_endpoints`: no endpoint of the Service was ready. Only for
/// failures no Pod answered (no backend), and only once the endpoints were
/// being watched.
pub(crate) fn no_ready_endpoints(
    f: &FailedRequest,
    t: &Timeline,
    cfg: &AttributionConfig,
) -> Option<NoReady> {
    let fits_outcome = match f.outcome {
        Outcome::HttpStatus => matches!(f.status, Some(502..=504)),
        Outcome::Dns | Outcome::Ok | Outcome::ClientResource => false,
        _ => true,
    };
    if !fits_outcome || f.backend.is_some() || !t.endpoints_known_at(f.start_ns) {
        return None;
    }
    let allowance = cfg.propagation_allowance.as_nanos() as u64;
    let at = f.start_ns;
    let now = t.ready_endpoints_at(at);
    let (min, max) = t.ready_endpoints_range(at.saturating_sub(allowance), at);
    match (now, min, max) {
        (0, _, 0) => Some(NoReady::Throughout),
        (0, _, had) => Some(NoReady::AtInstant { had }),
        (now, 0, _) => Some(NoReady::WithinAllowance { now }),
        _ => None,
    }
}

/// `premature_readiness`: the request failed on a Pod (the backend, or
/// any Pod if unknown) within the readiness window after it became ready
/// or its endpoint did. Connection failures, resets, timeouts, 503s and a
/// proxy's 502 or 504 qualify; other HTTP errors are the application's
/// (`app_error`).
pub(crate) fn premature_readiness(
    f: &FailedRequest,
    t: &Timeline,
    cfg: &AttributionConfig,
) -> Vec<Candidate> {
    let fits_outcome = match f.outcome {
        Outcome::HttpStatus => f.status == Some(503) || proxy_could_not_connect(f),
        Outcome::Dns | Outcome::Ok | Outcome::ClientResource => false,
        _ => true,
    };
    if !fits_outcome {
        return Vec::new();
    }
    let window = cfg.readiness_window.as_nanos() as u64;
    let allowance = cfg.propagation_allowance.as_nanos() as u64;
    let at = f.start_ns;
    let mut out = Vec::new();
    for pod in pods_for(f, t) {
        let Some(p) = t.pod_at(pod, at) else { continue };
        if p.terminating() || p.gone_ns.is_some() {
            continue;
        }
        // The moment it started getting traffic: the later of Pod ready and
        // endpoint routable. A Pod first seen already ready (the watch's
        // initial list, or a re-list) became ready before baton looked:
        // only the API time of its readiness says when, and its endpoint's
        // first appearance says nothing.
        let first_seen_ready = p.last_became_ready_ns == Some(p.first_seen_ns);
        let ready = if first_seen_ready {
            t.pod_events(pod)
                .find(|e| e.kind == EventKind::PodReady && e.observed_ns == p.first_seen_ns)
                .filter(|e| e.api_ns.is_some())
                .map(|e| event_window(e).1)
        } else {
            let endpoint_since = t
                .routable_intervals(pod)
                .iter()
                .rev()
                .find(|iv| iv.start <= at && iv.start > p.first_seen_ns)
                .map(|iv| iv.start);
            p.last_became_ready_ns.max(endpoint_since)
        };
        let Some(ready) = ready else {
            continue;
        };
        // The window runs from when the data plane can have begun routing
        // there: a proxy may learn of the new endpoint up to the
        // allowance after the API said it was ready.
        if at - ready > window + allowance {
            continue;
        }
        if matches!(t.routability(pod, at, allowance), Routability::No) {
            continue;
        }
        out.push(Candidate::new(pod, ready, "became ready".to_string()));
    }
    out
}

/// `container_crash`: a container of a Pod that was not terminating
/// exited or restarted within the crash window of the request (before or
/// after: the kubelet reports an exit late), or had exited and not come
/// back while its endpoint was still routable (a readiness probe takes a
/// few periods to notice a dead container).
pub(crate) fn container_crash(
    f: &FailedRequest,
    t: &Timeline,
    cfg: &AttributionConfig,
) -> Vec<Candidate> {
    if matches!(
        f.outcome,
        Outcome::Dns | Outcome::Ok | Outcome::ClientResource
    ) {
        return Vec::new();
    }
    let window = cfg.crash_window.as_nanos() as u64;
    let allowance = cfg.propagation_allowance.as_nanos() as u64;
    let mut out = Vec::new();
    for pod in pods_for(f, t) {
        let mut best: Option<(u64, &LifecycleEvent)> = None;
        for e in t.pod_events(pod) {
            if !matches!(
                e.kind,
                EventKind::ContainerTerminated | EventKind::ContainerRestarted
            ) {
                continue;
            }
            let (lo, hi) = event_window(e);
            // Distance between [start, end] and [earliest, observed].
            let dist = if f.end_ns < lo {
                lo - f.end_ns
            } else {
                f.start_ns.saturating_sub(hi)
            };
            if dist > window || best.is_some_and(|(d, _)| d <= dist) {
                continue;
            }
            if t.pod_at(pod, e.observed_ns)
                .is_some_and(|p| p.terminating())
            {
                continue;
            }
            best = Some((dist, e));
        }
        if let Some((_, e)) = best {
            let what = match e.kind {
                EventKind::ContainerRestarted => {
                    format!("'s container restarted (restart {})", e.new)
                }
                _ => termination_what(e),
            };
            out.push(Candidate::new(pod, e.observed_ns, what));
            continue;
        }
        // Still down, and still routed to.
        let Some(p) = t.pod_at(pod, f.start_ns) else {
            continue;
        };
        let Some(term) = &p.last_termination else {
            continue;
        };
        // A deleted Pod (terminating, or already gone) exited because it
        // was deleted: what a lagging proxy does with it is endpoint lag.
        if p.deletion.is_some() || p.container_running {
            continue;
        }
        if t.routability(pod, f.start_ns, allowance) == Routability::No {
            continue;
        }
        let e = t
            .pod_events(pod)
            .find(|e| e.kind == EventKind::ContainerTerminated && e.observed_ns == term.observed_ns)
            .expect("a termination in the state comes from an event");
        let what = format!("{} and was not back", termination_what(e));
        out.push(Candidate::new(pod, term.observed_ns, what));
    }
    out
}

/// `app_error`: an HTTP error from a Pod that was not terminating. With a
/// backend, that Pod (if the watch never saw it, it still answered); without
/// one, every Pod a proxy could have routed to, none of them terminating.
/// Not a proxy's 502 or 504 naming no backend: no Pod answered that
/// ([`proxy_could_not_connect`]).
pub(crate) fn app_error(
    f: &FailedRequest,
    t: &Timeline,
    cfg: &AttributionConfig,
) -> Vec<Candidate> {
    if f.outcome != Outcome::HttpStatus || proxy_could_not_connect(f) {
        return Vec::new();
    }
    let at = f.start_ns;
    if let Some(b) = &f.backend {
        return match t.pod_at(b, at) {
            Some(p) if p.terminating() => Vec::new(),
            Some(p) => vec![Candidate::new(
                b,
                p.lifecycle_since_ns,
                "answered".to_string(),
            )],
            None => vec![
                Candidate::new(b, at, "answered".to_string())
                    .loose("the watch never saw that Pod".to_string()),
            ],
        };
    }
    let allowance = cfg.propagation_allowance.as_nanos() as u64;
    let routable: Vec<_> = t
        .existing_pods_at(at)
        .filter(|p| matches!(t.routability(&p.name, at, allowance), Routability::Routable))
        .collect();
    let terminating = routable.iter().filter(|p| p.terminating()).count();
    routable
        .iter()
        .filter(|p| !p.terminating())
        .map(|p| {
            let c = Candidate::new(&p.name, p.lifecycle_since_ns, "answered".to_string());
            if terminating > 0 {
                c.loose(format!(
                    "{terminating} terminating Pod(s) were routable too, and the response \
                     did not say which Pod answered"
                ))
            } else {
                c
            }
        })
        .collect()
}
