//! `sessionAffinity: ClientIP` as kube-proxy does it: each client IP sticks
//! to the endpoint its last connection went to, for
//! `sessionAffinityConfig.clientIP.timeoutSeconds` (default 10800 s) after
//! that connection (iptables' `recent` match: every new connection renews
//! it). When the endpoint is no longer a candidate (gone from the proxy's
//! lagged copy, or not ready), the client is placed afresh. Pure: time is
//! passed in.
//!
//! Not for: choosing among endpoints without affinity (the proxy's round
//! robin), or reading Services.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::ServiceSpec;

/// Kubernetes' default `timeoutSeconds` (3 hours).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10_800);

/// The affinity timeout a Service's spec asks for, or `None` without affinity.
pub fn of_service(spec: &ServiceSpec) -> Option<Duration> {
    if spec.session_affinity.as_deref() != Some("ClientIP") {
        return None;
    }
    let secs = spec
        .session_affinity_config
        .as_ref()
        .and_then(|c| c.client_ip.as_ref())
        .and_then(|c| c.timeout_seconds)
        .and_then(|s| u64::try_from(s).ok());
    Some(secs.map_or(DEFAULT_TIMEOUT, Duration::from_secs))
}

/// Which endpoint each client IP was last sent to, and when.
#[derive(Default, Debug)]
pub struct Sessions {
    last: HashMap<IpAddr, (SocketAddr, Instant)>,
}

impl Sessions {
    /// The index in `candidates` (endpoint addresses) for a new connection
    /// from `client` at `now`: its sticky endpoint if still a candidate and
    /// used within `timeout`, else `fresh()`'s choice, which becomes sticky.
    pub fn pick(
        &mut self,
        client: IpAddr,
        now: Instant,
        timeout: Duration,
        candidates: &[SocketAddr],
        fresh: impl FnOnce() -> usize,
    ) -> usize {
        let sticky = self.last.get(&client).and_then(|(addr, at)| {
            (now.saturating_duration_since(*at) < timeout)
                .then(|| candidates.iter().position(|c| c == addr))
                .flatten()
        });
        let i = sticky.unwrap_or_else(fresh);
        if let Some(addr) = candidates.get(i) {
            self.last.insert(client, (*addr, now));
        }
        if self.last.len() > 100_000 {
            self.last
                .retain(|_, (_, at)| now.saturating_duration_since(*at) < timeout);
        }
        i
    }

    /// Forgets every client (the Service dropped affinity).
    pub fn clear(&mut self) {
        self.last.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn spec(v: serde_json::Value) -> ServiceSpec {
        serde_json::from_value(v).unwrap()
    }

    fn a(port: u16) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], port))
    }

    #[test]
    fn only_client_ip_affinity_has_a_timeout_defaulting_to_three_hours() {
        assert_eq!(of_service(&spec(json!({}))), None);
        assert_eq!(of_service(&spec(json!({"sessionAffinity": "None"}))), None);
        assert_eq!(
            of_service(&spec(json!({"sessionAffinity": "ClientIP"}))),
            Some(DEFAULT_TIMEOUT)
        );
        assert_eq!(
            of_service(&spec(json!({"sessionAffinity": "ClientIP",
                "sessionAffinityConfig": {"clientIP": {"timeoutSeconds": 5}}}))),
            Some(Duration::from_secs(5))
        );
    }

    #[test]
    fn a_client_sticks_to_its_endpoint_while_it_is_a_candidate() {
        let mut s = Sessions::default();
        let c: IpAddr = [10, 0, 0, 1].into();
        let t0 = Instant::now();
        let cands = [a(1), a(2), a(3)];
        let t = Duration::from_secs(60);
        assert_eq!(s.pick(c, t0, t, &cands, || 1), 1);
        for k in 0..10 {
            assert_eq!(s.pick(c, t0 + Duration::from_secs(k), t, &cands, || 2), 1);
        }
        // Its endpoint left the set: it is placed afresh, and sticks there.
        let fewer = [a(1), a(3)];
        assert_eq!(s.pick(c, t0, t, &fewer, || 1), 1);
        assert_eq!(s.pick(c, t0, t, &fewer, || 0), 1);
    }

    #[test]
    fn affinity_expires_after_the_timeout_since_the_last_connection() {
        let mut s = Sessions::default();
        let c: IpAddr = [10, 0, 0, 1].into();
        let t0 = Instant::now();
        let cands = [a(1), a(2)];
        let t = Duration::from_secs(10);
        assert_eq!(s.pick(c, t0, t, &cands, || 0), 0);
        // Renewed at 9 s, so still sticky at 18 s.
        assert_eq!(s.pick(c, t0 + Duration::from_secs(9), t, &cands, || 1), 0);
        assert_eq!(s.pick(c, t0 + Duration::from_secs(18), t, &cands, || 1), 0);
        assert_eq!(s.pick(c, t0 + Duration::from_secs(28), t, &cands, || 1), 1);
    }

    #[test]
    fn clients_are_independent() {
        let mut s = Sessions::default();
        let t0 = Instant::now();
        let cands = [a(1), a(2)];
        let t = Duration::from_secs(10);
        assert_eq!(s.pick([10, 0, 0, 1].into(), t0, t, &cands, || 0), 0);
        assert_eq!(s.pick([10, 0, 0, 2].into(), t0, t, &cands, || 1), 1);
        assert_eq!(s.pick([10, 0, 0, 1].into(), t0, t, &cands, || 1), 0);
    }
}
