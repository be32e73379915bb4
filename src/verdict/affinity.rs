//! Session affinity that makes a run mean little: a Service with
//! `sessionAffinity: ClientIP` pins each client address to one Pod, so a
//! load from fewer addresses than there are Pods exercises only some of
//! them, and a PASS says nothing about the others.
//!
//! Pure: the Service's affinity, the load's source addresses and the
//! Pods in, a warning out. Not for: measuring which Pods answered (the
//! `min_backends` threshold does).

/// Why the run exercised fewer Pods than the Service has, when it did:
/// `affinity` is the Service's `spec.sessionAffinity`, `sources` how many
/// addresses the load came from, `pods` the Deployment's replicas.
pub fn pinned(affinity: Option<&str>, service: &str, sources: usize, pods: u64) -> Option<String> {
    if affinity != Some("ClientIP") || sources as u64 >= pods {
        return None;
    }
    let from = match sources {
        1 => "1 source address".to_string(),
        n => format!("{n} source addresses"),
    };
    Some(format!(
        "service {service} has sessionAffinity: ClientIP, and the load came from {from} for {pods} Pods: \
         each address is pinned to one Pod, so at most {sources} of {pods} Pods were exercised; \
         load from at least {pods} addresses (load.source_ips, --source-ips) or from inside the cluster"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_ip_affinity_with_fewer_sources_than_pods_is_named_with_the_way_out() {
        let w = pinned(Some("ClientIP"), "web", 1, 3).unwrap();
        assert!(w.contains("sessionAffinity: ClientIP"), "{w}");
        assert!(w.contains("at most 1 of 3 Pods"), "{w}");
        assert!(w.contains("--source-ips"), "{w}");
    }

    #[test]
    fn no_affinity_or_enough_sources_is_fine() {
        assert_eq!(pinned(None, "web", 1, 3), None);
        assert_eq!(pinned(Some("None"), "web", 1, 3), None);
        assert_eq!(pinned(Some("ClientIP"), "web", 3, 3), None);
        assert_eq!(pinned(Some("ClientIP"), "web", 4, 3), None);
    }
}
