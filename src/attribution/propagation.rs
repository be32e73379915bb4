//! The propagation allowance a run's attribution uses: how long after an
//! EndpointSlice change a Service proxy may still route by the old
//! endpoints, and where that figure came from.
//!
//! The run measures it where it can. A Pod whose endpoint becomes
//! routable gets its first request only once the proxies have applied the
//! change, so "its first answer − when its endpoint became routable" is an
//! upper bound on that change's propagation (tight when the load is dense:
//! at 200 req/s over 4 Pods a Pod is picked every 20 ms or so). With two
//! or more such samples, the measured allowance is the largest sample plus
//! a margin for changes that lagged more than any sample did: the samples'
//! own spread (a jittered lag shows as spread), at least 100 ms.
//!
//! The measure may only *tighten* the configured allowance, never loosen
//! it: a sample is an upper bound, and new Pods that are ready before they
//! answer (premature readiness) inflate every sample by their start-up
//! time. When even the smallest sample exceeds the configured allowance,
//! the proxies may lag more than baton assumes, and the run warns (naming
//! `attribution.propagation_allowance`) rather than guessing. A profile
//! that sets the allowance is used as given; the measure is still
//! reported.
//!
//! Not for: the removal side (a Pod still answering after its endpoint
//! went away is routed by the terminating-endpoint fallback as often as by
//! lag, so it says nothing certain about the proxies).

use serde::{Deserialize, Serialize};
use std::time::Duration;

/// The least margin added to the largest sample.
pub const MIN_MARGIN: Duration = Duration::from_millis(100);

/// Fewer samples than this measure nothing.
pub const MIN_SAMPLES: usize = 2;

/// What the run measured: new endpoints' first answers after they became
/// routable.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Measured {
    pub samples: usize,
    pub min_ms: f64,
    pub max_ms: f64,
    /// The largest sample plus the margin: the allowance the measure
    /// supports.
    pub allowance_ms: f64,
}

/// The allowance chosen, and why.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Chosen {
    pub allowance_ms: f64,
    /// In words: "measured in this run: ...", "the sandbox's ...".
    pub from: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub measured: Option<Measured>,
    /// Set when the run suggests the proxies lag more than the allowance.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub warning: Option<String>,
}

impl Chosen {
    pub fn allowance(&self) -> Duration {
        Duration::from_secs_f64(self.allowance_ms / 1000.0)
    }
}

/// The configured allowance: its value, where it came from, and whether
/// the profile set it (then it is used as given).
#[derive(Clone, Debug, PartialEq)]
pub struct Configured {
    pub value: Duration,
    pub from: String,
    pub set_by_profile: bool,
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// What the samples support, if there are enough of them.
pub fn measure(samples: &[Duration]) -> Option<Measured> {
    if samples.len() < MIN_SAMPLES {
        return None;
    }
    let min = *samples.iter().min()?;
    let max = *samples.iter().max()?;
    let margin = (max - min).max(MIN_MARGIN);
    Some(Measured {
        samples: samples.len(),
        min_ms: ms(min),
        max_ms: ms(max),
        allowance_ms: ms(max + margin),
    })
}

/// The allowance to use, from the configured one and the run's samples.
pub fn choose(configured: &Configured, samples: &[Duration]) -> Chosen {
    let measured = measure(samples);
    let configured_ms = ms(configured.value);
    let seen = |m: &Measured| {
        format!(
            "{} new endpoint(s) first answered {:.0}–{:.0} ms after they became routable",
            m.samples, m.min_ms, m.max_ms
        )
    };
    let warning = measured
        .as_ref()
        .filter(|m| m.min_ms > configured_ms)
        .map(|m| {
            format!(
                "{}: longer than the {:.0} ms propagation allowance, so proxies may lag more than \
             baton assumes (or the new Pods answered late); if the proxies are slow, set \
             attribution.propagation_allowance",
                seen(m),
                configured_ms
            )
        });
    let (allowance_ms, from) = match &measured {
        Some(m) if !configured.set_by_profile && m.allowance_ms < configured_ms => (
            m.allowance_ms,
            format!(
                "measured in this run: {}, plus a {:.0} ms margin (tighter than {}, {:.0} ms)",
                seen(m),
                m.allowance_ms - m.max_ms,
                configured.from,
                configured_ms
            ),
        ),
        _ => (configured_ms, configured.from.clone()),
    };
    Chosen {
        allowance_ms,
        from,
        measured,
        warning,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(v: u64) -> Duration {
        Duration::from_millis(v)
    }

    fn configured(v: u64, set_by_profile: bool) -> Configured {
        Configured {
            value: ms(v),
            from: "the sandbox's propagation_delay".into(),
            set_by_profile,
        }
    }

    #[test]
    fn one_sample_measures_nothing_and_the_configured_allowance_stands() {
        let c = choose(&configured(1500, false), &[ms(1000)]);
        assert_eq!(c.allowance_ms, 1500.0);
        assert_eq!(c.measured, None);
        assert_eq!(c.from, "the sandbox's propagation_delay");
    }

    #[test]
    fn tight_samples_tighten_the_allowance_to_the_largest_plus_100_ms() {
        let c = choose(&configured(1500, false), &[ms(1010), ms(1030), ms(1000)]);
        assert_eq!(c.allowance_ms, 1130.0);
        assert!(
            c.from
                .starts_with("measured in this run: 3 new endpoint(s) first answered 1000–1030 ms"),
            "{}",
            c.from
        );
        assert!(c.from.contains("1500 ms"), "{}", c.from);
        assert_eq!(c.warning, None);
    }

    #[test]
    fn spread_samples_widen_the_margin_by_their_spread() {
        let m = measure(&[ms(600), ms(1400)]).unwrap();
        assert_eq!(m.allowance_ms, 2200.0);
        // Not tighter than 2 s: the configured value stands.
        let c = choose(&configured(2000, false), &[ms(600), ms(1400)]);
        assert_eq!(c.allowance_ms, 2000.0);
        assert!(c.measured.is_some());
    }

    #[test]
    fn a_profiles_allowance_is_used_as_given_and_the_measure_still_reported() {
        let c = choose(&configured(3000, true), &[ms(100), ms(120)]);
        assert_eq!(c.allowance_ms, 3000.0);
        assert_eq!(c.measured.unwrap().samples, 2);
    }

    #[test]
    fn samples_all_longer_than_the_allowance_warn_and_never_loosen_it() {
        let c = choose(&configured(2000, false), &[ms(3100), ms(3300)]);
        assert_eq!(c.allowance_ms, 2000.0);
        let w = c.warning.expect("a warning");
        assert!(
            w.contains("3100–3300 ms") && w.contains("attribution.propagation_allowance"),
            "{w}"
        );
    }
}
