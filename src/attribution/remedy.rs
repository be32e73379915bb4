//! Remedies: what to change so an incident does not happen again, with a
//! number where the timeline gives one.
//!
//! The numbers and their margins:
//! - preStop sleep (endpoint lag): the longest time from a Pod's observed
//!   deletionTimestamp to the last failure attributed to it, plus 20%,
//!   rounded up to the next 100 ms (at least 100 ms). The last failure
//!   only bounds the moment the last proxy let go of the endpoint from
//!   below (at the load's request spacing), hence the margin. 950 ms of
//!   failures gives 1.2 s.
//! - terminationGracePeriodSeconds (killed in flight): the longest failed
//!   in-flight request, plus 20%, rounded up to whole seconds (the field's
//!   unit), at least 1 s. A request cut off mid-way lasted at least that
//!   long, so it is a floor, not an estimate.

use super::cause::Cause;
use super::rules::Candidate as Fit;
use super::spec::{DEFAULT_GRACE_S, SpecFacts};
use super::{FailedRequest, Finding, text};
use crate::cluster::event::EventKind;
use crate::timeline::Timeline;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::time::Duration;

/// What to change, in words, and the number in it if there is one.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Remedy {
    pub text: String,
    #[serde(with = "crate::timeline::lags::opt_ms", rename = "value_ms")]
    pub value: Option<Duration>,
    /// The change as a strategic-merge patch of the Deployment (YAML),
    /// when it is a setting of it: `kubectl patch deployment NAME
    /// --patch-file FILE`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub patch: Option<String>,
    /// An object to create or replace, as YAML for `kubectl apply -f`
    /// (a PodDisruptionBudget), when the change is not a setting of the
    /// Deployment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub manifest: Option<String>,
}

/// `lag` plus 20%, rounded up to the next 100 ms, at least 100 ms.
pub fn prestop_for_lag(lag: Duration) -> Duration {
    let step = 100_000_000u128;
    let ns = lag.as_nanos() * 6 / 5;
    let rounded = ns.div_ceil(step).max(1) * step;
    Duration::from_nanos(rounded as u64)
}

/// `longest` plus 20%, rounded up to whole seconds, at least 1 s.
pub fn grace_for_in_flight(longest: Duration) -> Duration {
    let ns = longest.as_nanos() * 6 / 5;
    Duration::from_secs(ns.div_ceil(1_000_000_000).max(1) as u64)
}

fn secs(d: Duration) -> String {
    let ms = d.as_millis();
    if ms.is_multiple_of(1000) {
        format!("{} s", ms / 1000)
    } else {
        format!("{:.1} s", d.as_secs_f64())
    }
}

/// The remedy for one incident: its cause and its failures, and the
/// Deployment's settings before the run when known (`spec`), so that it
/// asks only for what is missing.
pub(crate) fn for_incident(
    cause: Cause,
    members: &[(&FailedRequest, &Finding)],
    spec: Option<&SpecFacts>,
    t: &Timeline,
) -> Remedy {
    match cause {
        Cause::EndpointLagOnTermination => endpoint_lag(members, spec),
        Cause::KilledInFlight => killed_in_flight(members, spec),
        Cause::NoReadyEndpoints => no_ready_endpoints(members, spec, t),
        Cause::ContainerCrash => {
            let what = members
                .iter()
                .flat_map(|(_, fd)| fd.fits.first())
                .map(|c| format!("pod {}{}", c.pod, c.what))
                .next();
            Remedy {
                text: match what {
                    Some(w) => format!("{} ({w})", cause.remedy_template()),
                    None => cause.remedy_template().to_string(),
                },
                value: None,
                patch: None,
                manifest: None,
            }
        }
        _ => Remedy {
            text: cause.remedy_template().to_string(),
            value: None,
            patch: None,
            manifest: None,
        },
    }
}

/// No endpoint was ready. With one replica that is any disruption at all
/// (a rollout with maxUnavailable, an eviction, a node drain): two
/// replicas and a budget that keeps one are the remedy, as a patch. With
/// more, when Pods it names were evicted (a drain), a budget that lets one
/// go at a time, as a manifest; otherwise the general advice stands.
fn no_ready_endpoints(
    members: &[(&FailedRequest, &Finding)],
    spec: Option<&SpecFacts>,
    t: &Timeline,
) -> Remedy {
    // The Pods evicted shortly before or during the outage: their loss
    // emptied the Service.
    let first = members.iter().map(|(f, _)| f.start_ns).min().unwrap_or(0);
    let last = members.iter().map(|(f, _)| f.start_ns).max().unwrap_or(0);
    let evicted: Vec<&str> = t
        .disruptions()
        .into_iter()
        .filter(|(_, _, at)| *at <= last && *at + EVICTION_LOOKBACK.as_nanos() as u64 >= first)
        .map(|(pod, _, _)| pod)
        .collect();
    match spec {
        Some(s) if s.replicas > 1 && !evicted.is_empty() => {
            let budgets = budgets_of(t);
            let (name, now) = match budgets.as_slice() {
                [] => (s.name.clone(), "there is none".to_string()),
                [one] => (one.clone(), format!("{one} allowed it")),
                many => (many[0].clone(), format!("{} allowed it", many.join(", "))),
            };
            Remedy {
                text: format!(
                    "give the Deployment's Pods a PodDisruptionBudget with maxUnavailable: 1 \
                     ({now}): {} of its {} Pods were evicted while none was ready, and with the \
                     budget an eviction waits until the Pod's replacement is ready",
                    evicted.len(),
                    s.replicas
                ),
                value: None,
                patch: None,
                manifest: Some(s.budget_manifest(&name, 1)),
            }
        }
        Some(s) if s.replicas <= 1 => Remedy {
            text: format!(
                "run at least 2 replicas (now {}) and a PodDisruptionBudget with minAvailable: 1: \
                 with one replica, any eviction, node drain or rollout that replaces it leaves no \
                 ready endpoint until its replacement is ready",
                s.replicas
            ),
            value: None,
            patch: Some(s.replicas_patch(2)),
            manifest: None,
        },
        _ => Remedy {
            text: Cause::NoReadyEndpoints.remedy_template().to_string(),
            value: None,
            patch: None,
            manifest: None,
        },
    }
}

/// How long before an outage an eviction counts as one of its causes: a
/// drain's evictions land within seconds of each other, the outage follows
/// once the last of them stops serving (its preStop and grace period).
const EVICTION_LOOKBACK: Duration = Duration::from_secs(120);

/// The budgets covering the Deployment's Pods that the run saw, by name.
fn budgets_of(t: &Timeline) -> Vec<String> {
    let mut names: Vec<String> = t
        .events()
        .iter()
        .filter(|e| e.kind == EventKind::DisruptionsAllowed && !e.new.is_empty())
        .filter_map(|e| e.object.strip_prefix("poddisruptionbudget/"))
        .map(str::to_string)
        .collect();
    names.sort();
    names.dedup();
    names
}

/// Per Pod, from its deletion to the last failure attributed to it; the
/// largest, with its Pod. A failure with several candidate Pods counts
/// for the one deleted most recently before it: the smallest lag that
/// explains it. Counting it for an older candidate would size the preStop
/// by the propagation allowance rather than by what the run showed.
fn longest_lag(members: &[(&FailedRequest, &Finding)]) -> Option<(String, Duration)> {
    let mut per_pod: BTreeMap<&str, u64> = BTreeMap::new();
    for (f, fd) in members {
        // The Pods that fit on the events alone come first; Pods kept as
        // candidates only through the allowance count when none does.
        let any_strict = fd.fits.iter().any(|c| c.strict);
        let nearest = fd
            .fits
            .iter()
            .filter(|c| c.strict || !any_strict)
            .map(|c| (f.start_ns.saturating_sub(c.event_ns), c.pod.as_str()))
            .min();
        if let Some((lag, pod)) = nearest {
            let e = per_pod.entry(pod).or_insert(0);
            *e = (*e).max(lag);
        }
    }
    per_pod
        .into_iter()
        .max_by_key(|&(pod, lag)| (lag, std::cmp::Reverse(pod)))
        .map(|(pod, lag)| (pod.to_string(), Duration::from_nanos(lag)))
}

fn endpoint_lag(members: &[(&FailedRequest, &Finding)], spec: Option<&SpecFacts>) -> Remedy {
    let Some((pod, lag)) = longest_lag(members) else {
        return Remedy {
            text: Cause::EndpointLagOnTermination
                .remedy_template()
                .to_string(),
            value: None,
            patch: None,
            manifest: None,
        };
    };
    let v = prestop_for_lag(lag);
    let why = format!(
        "failures went on {} after pod {pod}'s deletionTimestamp (+20%, rounded up to 100 ms), \
         so it must keep serving until every proxy has dropped its endpoint",
        text::dur(lag.as_nanos() as u64),
    );
    let now = spec.and_then(|s| s.prestop_sleep);
    if let Some(p) = now.filter(|p| *p >= v) {
        // The spec already sleeps long enough: more sleep would not help.
        return Remedy {
            text: format!(
                "its preStop sleep ({}) already covers that, yet {why}: the container stops \
                 serving before the sleep ends (a listener closed by a signal, a sidecar), or \
                 the hook does not run; check the Pod's SIGTERM handling and events",
                secs(p)
            ),
            value: None,
            patch: None,
            manifest: None,
        };
    }
    let action = match now {
        Some(p) => format!(
            "raise the preStop sleep from {} to at least {}",
            secs(p),
            secs(v)
        ),
        None => format!("add a preStop sleep of at least {}", secs(v)),
    };
    // The grace period must outlast the sleep, or the kubelet kills the
    // Pod mid-sleep: keep 5 s beyond it.
    let grace = spec.map_or(DEFAULT_GRACE_S, |s| s.grace_period_s);
    let needed_grace = v.as_secs() as i64 + 5;
    let raise_grace = grace < needed_grace;
    let grace_text = if raise_grace {
        format!(
            ", and raise terminationGracePeriodSeconds to {needed_grace} s (now {grace} s) so the sleep ends before the kill"
        )
    } else {
        String::new()
    };
    Remedy {
        text: format!("{action}{grace_text}: {why}"),
        value: Some(v),
        patch: spec.map(|s| s.prestop_patch(v, raise_grace.then_some(needed_grace))),
        manifest: None,
    }
}

/// How near the end of the grace period a container's exit means the
/// kubelet killed it there (SIGKILL), rather than the app exiting.
const AT_GRACE_END: Duration = Duration::from_millis(1500);

fn killed_in_flight(members: &[(&FailedRequest, &Finding)], spec: Option<&SpecFacts>) -> Remedy {
    let longest = members
        .iter()
        .map(|(f, _)| f.end_ns.saturating_sub(f.start_ns))
        .max()
        .unwrap_or(0);
    let fits: Vec<&Fit> = members.iter().flat_map(|(_, fd)| fd.fits.iter()).collect();
    let grace = spec
        .map(|s| s.grace_period_s)
        .or_else(|| fits.iter().filter_map(|c| c.grace_period_s).max())
        .unwrap_or(DEFAULT_GRACE_S);
    let needed = grace_for_in_flight(Duration::from_nanos(longest)).as_secs() as i64;
    // When the container exited, after the deletion.
    let exit_after = fits.iter().filter_map(|c| c.exit_after_deletion_ns).max();
    let at_grace_end = exit_after.is_some_and(|e| {
        Duration::from_nanos(e) + AT_GRACE_END >= Duration::from_secs(grace.max(0) as u64)
    });
    let longest_text = text::dur(longest);
    if at_grace_end {
        // It drained, but the kubelet's kill at the end of the grace period
        // came with requests still in flight.
        let to = grace + needed;
        return Remedy {
            text: format!(
                "raise terminationGracePeriodSeconds to at least {to} s (now {grace} s): the container was still serving \
                 when the kubelet killed it at the end of the grace period, and requests in flight died (the longest had \
                 run {longest_text}); the app drains, but needs longer than the grace period allows"
            ),
            value: Some(Duration::from_secs(to as u64)),
            patch: spec.map(|s| s.grace_patch(to)),
            manifest: None,
        };
    }
    let when = match exit_after {
        Some(e) => format!("exited {} after its deletionTimestamp", text::dur(e)),
        None => "stopped when it got its deletionTimestamp".to_string(),
    };
    let raise = grace < needed;
    Remedy {
        text: format!(
            "handle SIGTERM by draining: the container {when}, long before terminationGracePeriodSeconds \
             ({grace} s) was up, and cut off requests in flight (the longest had run {longest_text}); finish them \
             before exiting{}",
            if raise {
                format!(", and raise terminationGracePeriodSeconds to at least {needed} s")
            } else {
                String::new()
            }
        ),
        value: raise.then(|| Duration::from_secs(needed as u64)),
        patch: if raise {
            spec.map(|s| s.grace_patch(needed))
        } else {
            None
        },
        manifest: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn prestop_is_the_lag_plus_a_fifth_rounded_up_to_100_ms() {
        assert_eq!(prestop_for_lag(ms(950)), ms(1200));
        assert_eq!(prestop_for_lag(ms(1000)), ms(1200));
        assert_eq!(prestop_for_lag(ms(1001)), ms(1300));
        assert_eq!(prestop_for_lag(ms(40)), ms(100));
        assert_eq!(prestop_for_lag(ms(0)), ms(100));
    }

    #[test]
    fn grace_is_the_longest_request_plus_a_fifth_in_whole_seconds() {
        assert_eq!(grace_for_in_flight(ms(2000)), ms(3000));
        assert_eq!(grace_for_in_flight(ms(5000)), ms(6000));
        assert_eq!(grace_for_in_flight(ms(100)), ms(1000));
        assert_eq!(grace_for_in_flight(ms(0)), ms(1000));
    }

    #[test]
    fn seconds_read_whole_or_to_a_tenth() {
        assert_eq!(secs(ms(1200)), "1.2 s");
        assert_eq!(secs(ms(3000)), "3 s");
    }

    #[test]
    fn one_replica_without_ready_endpoints_asks_for_two_and_a_budget_as_a_patch() {
        let spec = |replicas| SpecFacts {
            name: "web".into(),
            container: "nginx".into(),
            grace_period_s: 30,
            prestop_sleep: None,
            other_prestop: false,
            replicas,
            match_labels: [("app".to_string(), "web".to_string())].into(),
        };
        let t = Timeline::new(Vec::new());
        let r = no_ready_endpoints(&[], Some(&spec(1)), &t);
        assert!(r.text.contains("at least 2 replicas (now 1)"), "{}", r.text);
        assert!(r.text.contains("minAvailable: 1"), "{}", r.text);
        assert!(
            r.patch
                .as_deref()
                .is_some_and(|p| p.contains("replicas: 2")),
            "{r:?}"
        );
        let general = no_ready_endpoints(&[], Some(&spec(3)), &t);
        assert_eq!(general.patch, None);
        assert_eq!(general.text, Cause::NoReadyEndpoints.remedy_template());
    }
}
