//! Attribution, the heart of baton (DESIGN.md, "Attribution"): ties every
//! failed request to the lifecycle moment that caused it, with a
//! confidence, the candidate Pods and a one-line evidence, then groups
//! failures into incidents with a remedy.
//!
//! Through a Service VIP a failed connection does not say which Pod
//! refused it, so the cause is reconstructed from the [`Timeline`]: which
//! Pods were, at that instant, terminating but still listed, listed but not
//! listening, newly ready, restarting. Pure functions over data: no I/O,
//! no clock.
//!
//! # The rules, in the order they are tried
//!
//! A failure gets exactly one cause: the first rule that fits. A rule fits
//! *strictly* when the events place a candidate Pod in the right state at
//! the right instant (a proxy routing by endpoints up to
//! `propagation_allowance` old included: that is how proxies work), and
//! *loosely* when only an allowance for a late watch does (a watch may
//! report an event after it happened, which an API time can show).
//! Strict fits are tried before any loose fit, so that an allowance never
//! hides direct evidence.
//!
//! 1. `harness`: outcome `client_resource`. The load host's own limit,
//!    decided by the outcome alone and never tied to a Pod, so it goes
//!    first: nothing the cluster did can make it the target's fault.
//! 2. `killed_in_flight` (strict): the request started before a Pod's
//!    deletion (or a terminating Pod's container exit) and died
//!    mid-exchange after it. Before the lag rule because a request that
//!    was already in flight was not routed by a stale endpoint list. A
//!    deletion kills nothing while the Deployment's preStop sleep runs
//!    (SIGTERM comes after it), so those deletions are not candidates.
//! 3. `endpoint_lag_on_termination` (strict): a new connection failed
//!    after a Pod's deletion while its endpoint was routable: listed
//!    ready; or dropped from the slice less than `propagation_allowance`
//!    before (a lagging proxy: that *is* the lag); or serving and
//!    terminating while no endpoint was ready (kube-proxy's terminating
//!    fallback). Refused, timed out, or cut off at any point (a Pod going
//!    away loses a request however far it got; a preStop sleep saves
//!    it), or an HTTP error that the terminating Pod itself answered.
//!    Candidates are ranked by how well they explain it: a Pod whose
//!    container had exited, then one past its preStop sleep (or without
//!    one), then one still inside it (serving on), then one seen
//!    answering (below). When every candidate was inside its preStop
//!    sleep or answering and a crash or a premature readiness fits, the
//!    lag is set aside: those Pods were serving.
//! 4. `container_crash` (root cause before symptom): a container of a
//!    Pod that was not terminating exited or restarted within
//!    `crash_window`, or had exited and was still routed to. Before
//!    `no_ready_endpoints` (a crash that empties the endpoints is the
//!    crash) and `premature_readiness` (a Pod that crashes right after
//!    becoming ready was not ready too early).
//! 5. `no_ready_endpoints` (strict): zero ready endpoints at the instant.
//! 6. The loose fits of 2, 3 and 5, in that order: an in-flight request
//!    whose Pod was seen going while it ran, though its endpoint had
//!    already stopped being routable; a deletion only an API time puts
//!    before the failure; an in-flight request that ended just before
//!    the watch saw the kill (only for an event without an API time: an
//!    API time after the request's end rules the kill out); zero ready
//!    endpoints only within the allowance before the instant (a proxy may
//!    not have learned of the new ones yet).
//! 7. `premature_readiness`: a failure (connection, reset, timeout, 503)
//!    within `readiness_window` after its Pod (the backend, or any Pod)
//!    became ready, counted from when a proxy may have begun routing
//!    there (up to the allowance after the API said ready).
//! 8. `app_error`: an HTTP error from a ready, non-terminating Pod. Last of
//!    the causes because an HTTP error near a lifecycle event is more
//!    likely that event's doing.
//! 9. `unexplained`: none of the above; shown first in reports. Also, before
//!    any rule but `harness`, every failure that overlaps a stretch in
//!    which baton could not see the cluster (a watch blind until it
//!    re-listed, the API server not answering): what happened then is
//!    known late or not at all, so nothing is attributed there.
//!
//! A backend named by the response narrows every Pod rule to that Pod.
//! Otherwise candidates come nearest event first, except that for a
//! connection nobody accepted (refused, or reset before any byte of
//! response) a Pod the run itself saw answering new connections just
//! before and just after it goes last, whatever the cause: it was
//! listening, so the refusal was another's ([`answers`]). Pods that fit
//! alike and that no answer rules out stay in the nearest-first order:
//! nothing a client sees orders them, and the confidence says so.
//!
//! Confidence (see `reports/README.md`): high when exactly one Pod
//! explains it (Pods known to be serving in their preStop or seen
//! answering do not count), medium when several do, low when only an
//! allowance for a late watch makes the rule fit. For
//! `no_ready_endpoints`, which names no Pod (its candidates are the Pods
//! that existed): high when zero were ready throughout the allowance
//! before, medium when zero at the instant, low when zero only within the
//! allowance before. `harness` is always high, `unexplained` always low.
//! Every rule change is measured against the sandbox's ground truth by
//! the catalogue (`tests/catalogue/`).
//!
//! The propagation allowance is measured from the run where it can (see
//! [`propagation`]): how long new endpoints took to get their first
//! request bounds how long the proxies lag.
//!
//! Failures of one cause whose start times lie within `incident_gap` of
//! each other form an [`Incident`] (see [`incident`]); each gets a remedy,
//! with a number where one can be derived (see [`remedy`]).

pub mod answers;
pub mod cause;
pub mod incident;
pub mod propagation;
pub mod remedy;
mod rules;
pub mod spec;
mod text;

pub use answers::Answers;
pub use cause::{Cause, Confidence};
pub use incident::Incident;
pub use remedy::Remedy;

use crate::load::outcome::{Outcome, Phase};
use crate::load::record::RequestRecord;
use crate::timeline::Timeline;
use rules::{Candidate as Fit, NoReady};
use serde::Serialize;
use std::collections::BTreeMap;
use std::time::Duration;

/// A failed request, as attribution needs it (built from a
/// `requests.csv` row). Pass failures only: an `ok` record would come out
/// `unexplained`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct FailedRequest {
    pub seq: u64,
    pub scheduled_ns: u64,
    /// When the connect began: the instant the Service routed it.
    pub start_ns: u64,
    /// `start_ns + total_us * 1000`: when it failed.
    pub end_ns: u64,
    pub outcome: Outcome,
    pub phase: Phase,
    pub status: Option<u16>,
    /// The Pod that answered, when the response said (`backend_from`).
    pub backend: Option<String>,
}

impl From<&RequestRecord> for FailedRequest {
    fn from(r: &RequestRecord) -> Self {
        FailedRequest {
            seq: r.seq,
            scheduled_ns: r.scheduled_ns,
            start_ns: r.start_ns,
            end_ns: r.start_ns + r.total_us * 1000,
            outcome: r.outcome,
            phase: r.phase,
            status: r.status,
            backend: r.backend.as_deref().map(str::to_string),
        }
    }
}

/// The allowances and windows of the rules.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct AttributionConfig {
    /// How long after an endpoint change a proxy may still route by the
    /// old set (kube-proxy, an ingress, a mesh sidecar all lag the
    /// EndpointSlice). Also how late a watch may report an exit.
    #[serde(with = "humantime_serde")]
    pub propagation_allowance: Duration,
    /// Failures of one cause further apart than this start a new incident.
    #[serde(with = "humantime_serde")]
    pub incident_gap: Duration,
    /// How long after becoming ready a Pod's failures count as premature
    /// readiness.
    #[serde(with = "humantime_serde")]
    pub readiness_window: Duration,
    /// How near a container exit or restart a failure counts as its crash.
    #[serde(with = "humantime_serde")]
    pub crash_window: Duration,
    /// The Deployment's termination settings before the run, for remedies
    /// that ask only for what is missing; `None` when unknown.
    #[serde(skip)]
    pub spec: Option<spec::SpecFacts>,
}

impl AttributionConfig {
    /// The Deployment's preStop sleep, when its spec is known and has one.
    pub(crate) fn prestop_sleep_ns(&self) -> Option<u64> {
        self.spec
            .as_ref()
            .and_then(|s| s.prestop_sleep)
            .map(|d| d.as_nanos() as u64)
    }
}

impl Default for AttributionConfig {
    fn default() -> Self {
        AttributionConfig {
            propagation_allowance: Duration::from_secs(2),
            incident_gap: Duration::from_secs(1),
            readiness_window: Duration::from_secs(2),
            crash_window: Duration::from_secs(2),
            spec: None,
        }
    }
}

/// A Pod that could explain a failure, and what it was doing.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Candidate {
    pub pod: String,
    /// Its state at the failure, e.g. "terminating 40 ms (grace 30 s),
    /// endpoint ready".
    pub state: String,
}

/// Why one request failed.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Attribution {
    pub seq: u64,
    pub cause: Cause,
    pub confidence: Confidence,
    /// The Pods that fit, most likely first.
    pub candidates: Vec<Candidate>,
    /// One line with ms offsets, e.g. "refused 40 ms after pod web-7f9-abc
    /// got its deletionTimestamp while its endpoint was still routable".
    pub evidence: String,
    /// The [`Incident::id`] it belongs to.
    pub incident: u32,
}

/// Every failure's attribution, and the incidents they form.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct AttributionResult {
    /// One per failed request, in the order given.
    pub per_request: Vec<Attribution>,
    /// Unexplained first, then by failure count, most first.
    pub incidents: Vec<Incident>,
}

impl AttributionResult {
    /// The remedy to show for a cause over the whole run: the one with the
    /// largest number among its incidents (a preStop sleep must cover the
    /// worst Pod), else the first incident's.
    pub fn remedy_for(&self, cause: Cause) -> Option<&Remedy> {
        let mut of_cause = self.incidents.iter().filter(|i| i.cause == cause);
        let first = of_cause.next()?;
        Some(of_cause.map(|i| &i.remedy).fold(&first.remedy, |best, r| {
            if r.value > best.value { r } else { best }
        }))
    }

    pub fn count_by_cause(&self) -> BTreeMap<Cause, u64> {
        let mut m = BTreeMap::new();
        for a in &self.per_request {
            *m.entry(a.cause).or_insert(0) += 1;
        }
        m
    }
}

/// What a rule found for one failure, kept beside its [`Attribution`] for
/// the incident's remedy.
#[derive(Clone, Debug)]
pub(crate) struct Finding {
    pub cause: Cause,
    pub confidence: Confidence,
    pub fits: Vec<Fit>,
    pub evidence: String,
}

/// Attribute every failed request. The result has exactly one
/// [`Attribution`] per input, in input order.
///
/// `answers` are the run's own responses on new connections, per Pod: a
/// Pod that answered around a refusal was listening then, so it ranks
/// last among the candidates (see [`answers`]).
pub fn attribute(
    failed: &[FailedRequest],
    timeline: &Timeline,
    answers: &Answers,
    cfg: &AttributionConfig,
) -> AttributionResult {
    let findings: Vec<Finding> = failed
        .iter()
        .map(|f| judge(f, timeline, answers, cfg))
        .collect();
    let (incidents, incident_of) = incident::group(failed, &findings, timeline, cfg);
    let per_request = failed
        .iter()
        .zip(findings)
        .zip(incident_of)
        .map(|((f, fd), incident)| Attribution {
            seq: f.seq,
            cause: fd.cause,
            confidence: fd.confidence,
            candidates: fd
                .fits
                .iter()
                .map(|c| Candidate {
                    pod: c.pod.clone(),
                    state: text::pod_state(timeline, &c.pod, f.start_ns),
                })
                .collect(),
            evidence: fd.evidence,
            incident,
        })
        .collect();
    AttributionResult {
        per_request,
        incidents,
    }
}

/// Keep the fits for the response's backend, if it named one; order the
/// rest by how near their event lies to `at` (the failure's start: when
/// it was routed; or for a request killed in flight, its end: when it
/// died), nearest first.
fn narrow(mut fits: Vec<Fit>, f: &FailedRequest, at: u64) -> Vec<Fit> {
    if let Some(b) = &f.backend {
        fits.retain(|c| &c.pod == b);
    }
    fits.sort_by(|a, b| (at.abs_diff(a.event_ns), &a.pod).cmp(&(at.abs_diff(b.event_ns), &b.pod)));
    fits
}

/// A request reset before its first byte, through a proxy, looks the same
/// whether its Pod was killed under it or the proxy could not connect to
/// a deleted Pod it still routed to. When a deleted Pod's endpoint lag
/// also fits, its Pods join the candidates (after the killed ones) and
/// the confidence drops to medium at most: both stories stay on the
/// record, so the Pod that really failed it is among the candidates.
/// Found against the sandbox's ground truth, in a rollout whose old Pods
/// were deleted within milliseconds of each other.
fn killed_or_refused(mut found: Finding, lag: &[Fit], f: &FailedRequest) -> Finding {
    if !rules::new_connection_failed(f) {
        return found;
    }
    let extra: Vec<Fit> = lag
        .iter()
        .filter(|l| !found.fits.iter().any(|k| k.pod == l.pod))
        .cloned()
        .collect();
    if extra.is_empty() {
        return found;
    }
    let names: Vec<&str> = extra.iter().map(|c| c.pod.as_str()).collect();
    found.evidence.push_str(&format!(
        "; or, as a new connection, refused by {} (deleted before it began, endpoint still routable through a lagging proxy)",
        names.join(", ")
    ));
    found.fits.extend(extra);
    found.confidence = found.confidence.min(Confidence::Medium);
    found
}

/// How well a Pod going away explains a connection that failed at the
/// request's start, best first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Going {
    /// Its container had exited: nothing listened there.
    Exited,
    /// Past its preStop sleep, or it has none (or one baton cannot read).
    PastPreStop,
    /// Still inside the preStop sleep of the Deployment's spec: it was
    /// serving on.
    InPreStop,
    /// It answered new connections just before and just after a refusal:
    /// it was listening, so the refusal was another Pod's.
    Answering,
}

/// How long after a container exits the kubelet's report of it may reach
/// the watch: an exit seen this soon after a failure was already there.
const EXIT_REPORT_SLACK_NS: u64 = 250_000_000;

/// Each endpoint-lag fit with how well it explains the failure, best
/// first, then nearest deletion first (the order [`narrow`] gave).
fn rank_going(
    fits: Vec<Fit>,
    f: &FailedRequest,
    t: &Timeline,
    answers: &Answers,
    cfg: &AttributionConfig,
) -> Vec<(Going, Fit)> {
    let at = f.start_ns;
    let mut ranked: Vec<(Going, Fit)> = fits
        .into_iter()
        .map(|c| {
            let exited = t.pod_events(&c.pod).any(|e| {
                e.kind == crate::cluster::event::EventKind::ContainerTerminated
                    && e.observed_ns >= c.event_ns
                    && e.observed_ns <= at + EXIT_REPORT_SLACK_NS
            });
            let rank = match cfg.prestop_sleep_ns() {
                _ if listening(f, t, answers, &c.pod) => Going::Answering,
                _ if exited => Going::Exited,
                Some(sleep) if at < c.event_ns + sleep => Going::InPreStop,
                _ => Going::PastPreStop,
            };
            (rank, c)
        })
        .collect();
    ranked.sort_by_key(|(rank, _)| *rank);
    ranked
}

/// `pod` was listening when `f`, a connection nobody accepted, was made:
/// it answered new connections just before and just after.
fn listening(f: &FailedRequest, t: &Timeline, answers: &Answers, pod: &str) -> bool {
    rules::no_listener(f) && answers.listening(t, pod, f.start_ns)
}

/// The fits with the Pods proven listening at the failure last (the
/// order among the others kept), and how many could have refused it: the
/// others, or all of them when none could (the evidence then rules out
/// nothing it can name). Found against the sandbox's ground truth: of
/// three new Pods, the one that had crashed refused, while the nearer
/// crash of another came after it and that Pod went on answering.
fn listening_last(
    fits: Vec<Fit>,
    f: &FailedRequest,
    t: &Timeline,
    answers: &Answers,
) -> (Vec<Fit>, usize) {
    let (could, answering): (Vec<Fit>, Vec<Fit>) = fits
        .into_iter()
        .partition(|c| !listening(f, t, answers, &c.pod));
    let n = if could.is_empty() {
        answering.len()
    } else {
        could.len()
    };
    (could.into_iter().chain(answering).collect(), n)
}

/// The fits of one tier: the strict ones, or the loose ones.
fn tier(fits: &[Fit], strict: bool) -> Vec<Fit> {
    fits.iter()
        .filter(|c| c.strict == strict)
        .cloned()
        .collect()
}

/// One failure's cause: the first rule that fits (see the module doc).
fn judge(f: &FailedRequest, t: &Timeline, answers: &Answers, cfg: &AttributionConfig) -> Finding {
    let what = text::failure(f.outcome, f.phase, f.status);
    if f.outcome == Outcome::ClientResource {
        return Finding {
            cause: Cause::Harness,
            confidence: Confidence::High,
            fits: Vec::new(),
            evidence: format!(
                "{what}: the load host ran out of ports, file descriptors or buffers; \
                 not the target's doing"
            ),
        };
    }

    // Nothing that happened while baton could not see the cluster is
    // attributed: the events of that stretch came late or never, and a
    // cause read from them would be a guess.
    if let Some(b) = t.blind_during(f.start_ns, f.end_ns).next() {
        return Finding {
            cause: Cause::Unexplained,
            confidence: Confidence::Low,
            fits: Vec::new(),
            evidence: format!(
                "{what} while baton could not see the cluster ({} blind from {:.2} s to {:.2} s): not attributed",
                b.watch,
                b.start_ns as f64 / 1e9,
                b.end_ns as f64 / 1e9
            ),
        };
    }

    let killed = narrow(rules::killed_in_flight(f, t, cfg), f, f.end_ns);
    let lag = rank_going(
        narrow(rules::endpoint_lag(f, t, cfg), f, f.start_ns),
        f,
        t,
        answers,
        cfg,
    );
    let none_ready = rules::no_ready_endpoints(f, t, cfg);
    let (crash, crash_could) = listening_last(
        narrow(rules::container_crash(f, t, cfg), f, f.start_ns),
        f,
        t,
        answers,
    );
    let (ready, ready_could) = listening_last(
        narrow(rules::premature_readiness(f, t, cfg), f, f.start_ns),
        f,
        t,
        answers,
    );
    // Pods going away that were all still inside their preStop sleep, or
    // answering, served on: a Pod that had just become ready, or had
    // crashed, explains a failed connection better. Found against the
    // sandbox's ground truth: refusals by new Pods whose readiness came
    // before their app listened were blamed on old Pods serving in
    // preStop.
    let lag = if lag
        .iter()
        .all(|(rank, _)| matches!(rank, Going::InPreStop | Going::Answering))
        && (!crash.is_empty() || !ready.is_empty())
    {
        Vec::new()
    } else {
        lag
    };
    // The Pods that could have refused it: all but the ones known to be
    // serving in their preStop or answering (unless that is all there is).
    let could_refuse = lag
        .iter()
        .filter(|(r, _)| !matches!(r, Going::InPreStop | Going::Answering))
        .count();
    let lag_could_refuse = if could_refuse == 0 {
        lag.len()
    } else {
        could_refuse
    };
    let lag: Vec<Fit> = lag.into_iter().map(|(_, c)| c).collect();

    let pod_finding = |cause: Cause, fits: Vec<Fit>, strict: bool| -> Finding {
        let confidence = Confidence::of(fits.len(), strict);
        let evidence = pod_evidence(cause, f, &what, &fits, t, cfg);
        Finding {
            cause,
            confidence,
            fits,
            evidence,
        }
    };

    for strict in [true, false] {
        // Among loose fits, a kill the watch saw only after the request
        // had already ended (it fits through an API time's one-second
        // window alone) ranks below a Pod deleted before the request
        // began: observed order is the stronger evidence. Found against
        // the sandbox's ground truth: a reset through the proxy from an
        // already-deleted Pod was blamed on a Pod deleted 15 ms later.
        let (k, k_after_end): (Vec<Fit>, Vec<Fit>) = tier(&killed, strict)
            .into_iter()
            .partition(|c| strict || c.event_ns <= f.end_ns);
        if !k.is_empty() {
            return killed_or_refused(pod_finding(Cause::KilledInFlight, k, strict), &lag, f);
        }
        let l = tier(&lag, strict);
        if !l.is_empty() {
            let mut found = pod_finding(Cause::EndpointLagOnTermination, l, strict);
            // Only the Pods that explain it best count against certainty:
            // one whose container had exited outranks ones still serving.
            found.confidence = Confidence::of(lag_could_refuse.min(found.fits.len()), strict);
            if strict {
                // A proxy that lags may still pick any Pod whose endpoint
                // left within the allowance, not only the ones the slice
                // still lists: those stay candidates too, after the strict
                // ones (found against the sandbox's ground truth, where
                // the proxy picked a Pod deleted 30 ms earlier).
                let loose: Vec<Fit> = tier(&lag, false)
                    .into_iter()
                    .filter(|c| !found.fits.iter().any(|k| k.pod == c.pod))
                    .collect();
                if !loose.is_empty() {
                    found.fits.extend(loose);
                    found.confidence = found.confidence.min(Confidence::Medium);
                }
            }
            return found;
        }
        if !k_after_end.is_empty() {
            return killed_or_refused(
                pod_finding(Cause::KilledInFlight, k_after_end, strict),
                &lag,
                f,
            );
        }
        // Root cause before symptom: a crash that empties the endpoints,
        // or that a Pod just made ready suffers, is the crash.
        if strict && !crash.is_empty() {
            let mut found = pod_finding(Cause::ContainerCrash, crash, true);
            found.confidence = Confidence::of(crash_could, true);
            return found;
        }
        match none_ready {
            Some(NoReady::WithinAllowance { .. }) if strict => {}
            Some(n) => return no_ready_finding(n, f, &what, t, cfg),
            None => {}
        }
    }

    if !ready.is_empty() {
        let mut found = pod_finding(Cause::PrematureReadiness, ready, true);
        found.confidence = Confidence::of(ready_could, true);
        return found;
    }
    let app = narrow(rules::app_error(f, t, cfg), f, f.start_ns);
    if !app.is_empty() {
        let strict = app.iter().all(|c| c.strict);
        return pod_finding(Cause::AppError, app, strict);
    }
    Finding {
        cause: Cause::Unexplained,
        confidence: Confidence::Low,
        fits: Vec::new(),
        evidence: unexplained_evidence(f, &what, t),
    }
}

fn no_ready_finding(
    n: NoReady,
    f: &FailedRequest,
    what: &str,
    t: &Timeline,
    cfg: &AttributionConfig,
) -> Finding {
    let allowance = text::dur(cfg.propagation_allowance.as_nanos() as u64);
    let (confidence, evidence) = match n {
        NoReady::Throughout => (
            Confidence::High,
            format!("{what} with no ready endpoints, and none in the {allowance} before"),
        ),
        NoReady::AtInstant { had } => (
            Confidence::Medium,
            format!(
                "{what} with no ready endpoints ({had} were ready within the {allowance} \
                 before, which a lagging proxy may still have used)"
            ),
        ),
        NoReady::WithinAllowance { now } => (
            Confidence::Low,
            format!(
                "{what} with {now} ready endpoint(s), but none within the {allowance} \
                 before: a lagging proxy may not have learned of them yet"
            ),
        ),
    };
    // The Pods that existed: the ones that should have been ready.
    let fits = t
        .existing_pods_at(f.start_ns)
        .map(|p| Fit {
            pod: p.name.clone(),
            strict: true,
            event_ns: p.lifecycle_since_ns,
            what: String::new(),
            loose_because: None,
            grace_period_s: None,
            at_deletion: false,
            exit_after_deletion_ns: None,
            lagging_since_ns: None,
            by_fallback: false,
        })
        .collect();
    Finding {
        cause: Cause::NoReadyEndpoints,
        confidence,
        fits,
        evidence,
    }
}

/// The evidence line of a Pod rule, from its nearest candidate.
fn pod_evidence(
    cause: Cause,
    f: &FailedRequest,
    what: &str,
    fits: &[Fit],
    t: &Timeline,
    cfg: &AttributionConfig,
) -> String {
    let c = &fits[0];
    let others = match fits.len() {
        1 => String::new(),
        n => format!(" ({} other candidate Pod(s))", n - 1),
    };
    let loose = c
        .loose_because
        .as_ref()
        .map(|b| format!("; fits only loosely: {b}"))
        .unwrap_or_default();
    let mut s = match cause {
        Cause::KilledInFlight => format!(
            "{what} {} into the request; pod {}{} {} after it started",
            text::dur(f.end_ns.saturating_sub(f.start_ns)),
            c.pod,
            spaced(&c.what),
            text::dur(c.event_ns.saturating_sub(f.start_ns)),
        ),
        Cause::EndpointLagOnTermination if f.outcome == Outcome::HttpStatus => format!(
            "{what} from pod {}, {} it{}, while its endpoint was still routable",
            c.pod,
            text::offset(f.start_ns, c.event_ns),
            spaced(&c.what),
        ),
        Cause::EndpointLagOnTermination => {
            let routable = match c.lagging_since_ns {
                Some(since) => format!(
                    " while a lagging proxy still routed to it (its endpoint had left the \
                     EndpointSlice {} earlier, within the {} propagation allowance)",
                    text::dur(f.start_ns.saturating_sub(since)),
                    text::dur(cfg.propagation_allowance.as_nanos() as u64)
                ),
                None if c.by_fallback => " while its endpoint was still routable: no endpoint \
                    was ready, so proxies fell back to the serving, terminating ones"
                    .to_string(),
                None if c.strict => " while its endpoint was still routable".to_string(),
                None => String::new(),
            };
            format!(
                "{what} {} pod {}{}{routable}",
                text::offset(f.start_ns, c.event_ns),
                c.pod,
                spaced(&c.what),
            )
        }
        Cause::PrematureReadiness => format!(
            "{what} {} pod {} became ready (within the {} readiness window plus the {} a proxy \
             may take to start routing there)",
            text::offset(f.start_ns, c.event_ns),
            c.pod,
            text::dur(cfg.readiness_window.as_nanos() as u64),
            text::dur(cfg.propagation_allowance.as_nanos() as u64),
        ),
        Cause::ContainerCrash => format!(
            "{what} {} pod {}{}",
            text::offset(f.start_ns, c.event_ns),
            c.pod,
            spaced(&c.what),
        ),
        Cause::AppError => match f.backend {
            Some(_) => format!(
                "{what} from pod {}, {}",
                c.pod,
                text::pod_state(t, &c.pod, f.start_ns)
            ),
            None => format!(
                "{what} while {} Pod(s) were routable, none terminating",
                fits.len()
            ),
        },
        _ => what.to_string(),
    };
    s.push_str(&others);
    s.push_str(&loose);
    s
}

/// "got its deletionTimestamp" reads after "pod NAME "; "'s container
/// terminated" attaches to the name.
fn spaced(what: &str) -> String {
    if what.starts_with('\'') {
        what.to_string()
    } else {
        format!(" {what}")
    }
}

fn unexplained_evidence(f: &FailedRequest, what: &str, t: &Timeline) -> String {
    let at = f.start_ns;
    let counts = t.pods_by_state_at(at);
    let mut s = format!(
        "{what}; no lifecycle event explains it: {} ready endpoint(s), {} Pod(s) terminating",
        t.ready_endpoints_at(at),
        counts.terminating
    );
    if !t.endpoints_known_at(at) {
        s.push_str(", endpoints not watched yet");
    }
    if let Some(b) = &f.backend {
        s.push_str(&format!(", answered by {b}"));
    }
    for b in t.blind_at(at) {
        s.push_str(&format!(
            "; {} was blind then (re-listed {})",
            b.watch,
            text::offset(b.end_ns, at)
        ));
    }
    s
}

#[cfg(test)]
mod tests;
