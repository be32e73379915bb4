//! The report's colours and the order things are coloured in. One
//! meaning per colour family, each colour-blind safe within its panel:
//!
//! - versions: cool hues (blue, cyan, purple, yellow, ...), one per
//!   version in the order the versions first answered, the same on a Pod's
//!   lane when its image tag names the version;
//! - Pod and endpoint states: greys, and one green for ready, with hatching
//!   (not another colour) for terminating and waiting;
//! - request outcomes: warm hues, reds and browns for failures (the
//!   failure markers take their outcome's colour too);
//! - causes: no colour at all, a row each and words.
//!
//! The classes live in `style.css`; this module says which applies.
//! Shared by the chart and the legend so they cannot disagree.

use crate::analyse::Bucket;
use crate::attribution::Cause;
use crate::load::outcome::Outcome;
use std::collections::BTreeMap;

/// Paul Tol's colour-blind-safe qualitative colours without his red and
/// green (those mean failure and readiness here).
const VERSION_COLOURS: [&str; 8] = [
    "#4477aa", "#66ccee", "#aa3377", "#ccbb44", "#332288", "#44aa99", "#bbbbbb", "#882255",
];

/// Versions in the order they first answered (the old one first), then
/// by name.
pub(super) fn versions_in_order(buckets: &[Bucket]) -> Vec<&str> {
    let mut first: BTreeMap<&str, usize> = BTreeMap::new();
    for (i, b) in buckets.iter().enumerate() {
        for v in b.versions.keys() {
            first.entry(v.as_str()).or_insert(i);
        }
    }
    let mut v: Vec<(usize, &str)> = first.into_iter().map(|(k, i)| (i, k)).collect();
    v.sort();
    v.into_iter().map(|(_, k)| k).collect()
}

pub(super) fn version_colour(i: usize) -> &'static str {
    VERSION_COLOURS[i % VERSION_COLOURS.len()]
}

/// The tag of an image (`nginx:1.28.0` → `1.28.0`; a digest without a
/// tag is cut short): what a Pod's lane shows as its version.
pub(super) fn image_tag(image: &str) -> &str {
    let name = image.split('@').next().unwrap_or(image);
    let after_slash = name.rsplit('/').next().unwrap_or(name);
    match after_slash.rsplit_once(':') {
        Some((_, tag)) if !tag.is_empty() => tag,
        _ => after_slash,
    }
}

/// The colour of the response version a Pod's image tag names, when one
/// does: the lane and the versions panel then agree.
pub(super) fn pod_version_colour(image: &str, versions: &[&str]) -> Option<&'static str> {
    let tag = image_tag(image);
    versions
        .iter()
        .position(|v| *v == tag || *v == image)
        .map(version_colour)
}

/// Failing outcomes that occur in the buckets, in `Outcome::ALL` order.
pub(super) fn failing_outcomes(buckets: &[Bucket]) -> Vec<Outcome> {
    Outcome::ALL
        .into_iter()
        .filter(|o| *o != Outcome::Ok && buckets.iter().any(|b| b.failed.contains_key(o)))
        .collect()
}

/// The colour class of a cause: short, because every marker and row
/// carries one.
pub(super) fn cause_class(c: Cause) -> &'static str {
    match c {
        Cause::Unexplained => "c0",
        Cause::EndpointLagOnTermination => "c1",
        Cause::KilledInFlight => "c2",
        Cause::PrematureReadiness => "c3",
        Cause::NoReadyEndpoints => "c4",
        Cause::AppError => "c5",
        Cause::ContainerCrash => "c6",
        Cause::Harness => "c7",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_images_tag_is_its_version_and_registries_and_digests_do_not_confuse_it() {
        assert_eq!(image_tag("nginx:1.28.0"), "1.28.0");
        assert_eq!(image_tag("registry:5000/team/web:v2"), "v2");
        assert_eq!(image_tag("registry:5000/team/web"), "web");
        assert_eq!(image_tag("web:v2@sha256:abc"), "v2");
        assert_eq!(image_tag(""), "");
    }

    #[test]
    fn a_pod_takes_the_colour_of_the_version_its_tag_names_and_none_otherwise() {
        let versions = ["1.27.0", "1.28.0"];
        assert_eq!(
            pod_version_colour("nginx:1.28.0", &versions),
            Some(version_colour(1))
        );
        assert_eq!(pod_version_colour("nginx:1.29.0", &versions), None);
        assert_eq!(pod_version_colour("nginx:1.2", &versions), None);
    }
}
