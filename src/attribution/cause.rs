//! The causes a failed request can be tied to (DESIGN.md, "Attribution"),
//! and how sure baton is of a tie.

use serde::{Deserialize, Serialize};
use std::fmt;

/// Why a request failed. Names are the `cause` column of `failures.csv`.
/// The declaration order is the report's order of severity for ties, not
/// the order in which rules are tried (see the parent module).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Cause {
    /// Shown first, for a person to look at.
    Unexplained,
    EndpointLagOnTermination,
    KilledInFlight,
    PrematureReadiness,
    NoReadyEndpoints,
    AppError,
    ContainerCrash,
    /// The load host's own limits: never counts against the target.
    Harness,
}

impl Cause {
    pub const ALL: [Cause; 8] = [
        Cause::Unexplained,
        Cause::EndpointLagOnTermination,
        Cause::KilledInFlight,
        Cause::PrematureReadiness,
        Cause::NoReadyEndpoints,
        Cause::AppError,
        Cause::ContainerCrash,
        Cause::Harness,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Cause::Unexplained => "unexplained",
            Cause::EndpointLagOnTermination => "endpoint_lag_on_termination",
            Cause::KilledInFlight => "killed_in_flight",
            Cause::PrematureReadiness => "premature_readiness",
            Cause::NoReadyEndpoints => "no_ready_endpoints",
            Cause::AppError => "app_error",
            Cause::ContainerCrash => "container_crash",
            Cause::Harness => "harness",
        }
    }

    /// The cause in plain words, for the first line a person reads.
    pub fn words(self) -> &'static str {
        match self {
            Cause::Unexplained => "no lifecycle event explains them",
            Cause::EndpointLagOnTermination => {
                "proxies still sent new connections to Pods that were shutting down"
            }
            Cause::KilledInFlight => "requests in flight were cut off as their Pod stopped",
            Cause::PrematureReadiness => "Pods were marked ready before they could serve",
            Cause::NoReadyEndpoints => "no Pod was ready to serve",
            Cause::AppError => "the application answered with an error",
            Cause::ContainerCrash => "a container crashed",
            Cause::Harness => "the load host ran out of its own ports or files",
        }
    }

    pub fn parse(s: &str) -> Option<Cause> {
        Cause::ALL.into_iter().find(|c| c.as_str() == s)
    }

    /// The remedy shown for this cause when no number can be derived
    /// (DESIGN.md's table). The incident's own remedy adds the numbers.
    pub fn remedy_template(self) -> &'static str {
        match self {
            Cause::EndpointLagOnTermination => {
                "add a preStop sleep at least as long as the observed lag, so the Pod keeps \
                 serving until every proxy has dropped its endpoint"
            }
            Cause::KilledInFlight => {
                "raise terminationGracePeriodSeconds above the longest request, and handle \
                 SIGTERM by draining: stop accepting, finish in-flight requests, then exit"
            }
            Cause::PrematureReadiness => {
                "use a readiness probe that checks real readiness (the port listening, \
                 dependencies reachable), not just that the process started"
            }
            Cause::NoReadyEndpoints => {
                "keep ready endpoints through the rollout: maxUnavailable: 0, more replicas, \
                 or a PodDisruptionBudget"
            }
            Cause::AppError => "the new version itself is broken: look at what it answered",
            Cause::ContainerCrash => "see the container's exit reason and its previous logs",
            Cause::Harness => {
                "tune the load host (ephemeral ports, file descriptor limits) or lower the \
                 rate; the run is invalid, not failed"
            }
            Cause::Unexplained => {
                "no lifecycle event explains these failures: look at them by hand"
            }
        }
    }
}

impl fmt::Display for Cause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How sure an attribution is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Confidence {
    /// Only the propagation (or observation) allowance makes it fit.
    Low,
    /// It fits, but several Pods could be the one.
    Medium,
    /// It fits, and exactly one Pod does.
    High,
}

impl Confidence {
    pub fn as_str(self) -> &'static str {
        match self {
            Confidence::Low => "low",
            Confidence::Medium => "medium",
            Confidence::High => "high",
        }
    }

    /// From how many candidates fit, and whether they fit without the
    /// allowance.
    pub fn of(candidates: usize, strict: bool) -> Confidence {
        match (strict, candidates) {
            (false, _) => Confidence::Low,
            (true, 1) => Confidence::High,
            (true, _) => Confidence::Medium,
        }
    }
}

impl fmt::Display for Confidence {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cause_names_are_designs_and_match_serde() {
        let names: Vec<_> = Cause::ALL.iter().map(|c| c.as_str()).collect();
        for n in [
            "endpoint_lag_on_termination",
            "killed_in_flight",
            "premature_readiness",
            "no_ready_endpoints",
            "app_error",
            "container_crash",
            "harness",
            "unexplained",
        ] {
            assert!(names.contains(&n), "{n}");
        }
        for c in Cause::ALL {
            assert_eq!(serde_json::to_string(&c).unwrap(), format!("\"{c}\""));
            assert_eq!(Cause::parse(c.as_str()), Some(c));
            assert!(!c.remedy_template().is_empty());
        }
    }

    #[test]
    fn confidence_is_high_for_one_medium_for_several_low_for_allowance() {
        assert_eq!(Confidence::of(1, true), Confidence::High);
        assert_eq!(Confidence::of(3, true), Confidence::Medium);
        assert_eq!(Confidence::of(1, false), Confidence::Low);
        assert!(Confidence::High > Confidence::Low);
    }
}
