//! ClusterIP allocation, as the API server's Service IP allocator does it
//! (`pkg/registry/core/service/ipallocator`): the Service range, which of
//! its addresses may be handed out, a requested address checked, the next
//! free one found. Pure: the addresses other Services hold and whether an
//! address can be bound right now are passed in.
//!
//! The sandbox's range is a loopback `/24` per sandbox
//! ([`ClusterConfig::service_ip_base`](crate::ClusterConfig::service_ip_base),
//! chosen by [`crate::config::next_service_ip_base`]), so that worker
//! processes on this machine can connect to a ClusterIP as a Pod would.
//!
//! Not for: listening on ClusterIPs (the proxy does, [`crate::proxy`]), or
//! where the range lies in 127.0.0.0/8 ([`crate::config`]).

use std::net::Ipv4Addr;

/// The prefix length of every sandbox's Service range: 254 ClusterIPs.
pub const SERVICE_IP_PREFIX: u8 = 24;

/// A Service IP range (an IPv4 CIDR). Its network and broadcast addresses
/// are never handed out, as in Kubernetes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ServiceIpRange {
    network: u32,
    prefix: u8,
}

/// Why a requested ClusterIP is refused; [`AllocError::message`] words it
/// as the API server does.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AllocError {
    /// Not an IPv4 address.
    NotAnIp(String),
    /// Outside the range (or its network or broadcast address).
    NotInRange(Ipv4Addr),
    /// Another Service holds it.
    Allocated(Ipv4Addr),
}

impl ServiceIpRange {
    /// The range `base/prefix` (host bits of `base` ignored; `prefix` at
    /// most 30, so the range holds at least two addresses).
    pub fn new(base: Ipv4Addr, prefix: u8) -> ServiceIpRange {
        let prefix = prefix.min(30);
        let mask = if prefix == 0 {
            0
        } else {
            u32::MAX << (32 - prefix)
        };
        ServiceIpRange {
            network: u32::from(base) & mask,
            prefix,
        }
    }

    /// How many addresses may be handed out (network and broadcast excluded).
    pub fn size(&self) -> u32 {
        (1u32 << (32 - u32::from(self.prefix))) - 2
    }

    /// `127.250.3.0/24`: how error messages and the README name it.
    pub fn cidr(&self) -> String {
        format!("{}/{}", Ipv4Addr::from(self.network), self.prefix)
    }

    /// Whether `ip` may be a ClusterIP here.
    pub fn contains(&self, ip: Ipv4Addr) -> bool {
        let offset = u32::from(ip).wrapping_sub(self.network);
        (1..=self.size()).contains(&offset)
    }

    /// The `n`-th address that may be handed out, counting from 0 and
    /// wrapping around.
    fn host(&self, n: u32) -> Ipv4Addr {
        Ipv4Addr::from(self.network + 1 + n % self.size())
    }

    /// A requested `clusterIP`, checked: an IPv4 address in the range that
    /// no other Service holds (`taken`).
    pub fn check(&self, requested: &str, taken: &[Ipv4Addr]) -> Result<Ipv4Addr, AllocError> {
        let ip: Ipv4Addr = requested
            .parse()
            .map_err(|_| AllocError::NotAnIp(requested.to_string()))?;
        if !self.contains(ip) {
            return Err(AllocError::NotInRange(ip));
        }
        if taken.contains(&ip) {
            return Err(AllocError::Allocated(ip));
        }
        Ok(ip)
    }

    /// The next free address at or after the `cursor`-th, and the cursor
    /// for the allocation after it. Free: not `taken`, and `usable` (the
    /// caller's check that nothing else on this machine listens there).
    /// When every free address fails `usable`, the first free one is
    /// returned anyway (a ClusterIP, once published, is what it is; the
    /// proxy reports the clash). `None` when the range is full.
    ///
    /// Next-fit rather than lowest-free: a freed address is handed out
    /// again only after the rest of the range, so a Service created just
    /// after another's deletion does not take its address (and the ground
    /// truth does not mix the two). Kubernetes picks at random, with the
    /// same effect.
    pub fn next_free(
        &self,
        cursor: u32,
        taken: &[Ipv4Addr],
        mut usable: impl FnMut(Ipv4Addr) -> bool,
    ) -> Option<(Ipv4Addr, u32)> {
        let mut fallback = None;
        for i in 0..self.size() {
            let n = cursor.wrapping_add(i) % self.size();
            let ip = self.host(n);
            if taken.contains(&ip) {
                continue;
            }
            if usable(ip) {
                return Some((ip, n + 1));
            }
            fallback.get_or_insert((ip, n + 1));
        }
        fallback
    }
}

impl AllocError {
    /// The 422 message, in the API server's words (its field path
    /// `spec.clusterIPs` included, as it reports there).
    pub fn message(&self, range: &ServiceIpRange) -> String {
        match self {
            AllocError::NotAnIp(s) => format!(
                "spec.clusterIPs[0]: Invalid value: \"{s}\": must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)"
            ),
            AllocError::NotInRange(ip) => format!(
                "spec.clusterIPs: Invalid value: []string{{\"{ip}\"}}: failed to allocate IP {ip}: the provided IP ({ip}) is not in the valid range. The range of valid IPs is {}",
                range.cidr()
            ),
            AllocError::Allocated(ip) => format!(
                "spec.clusterIPs: Invalid value: []string{{\"{ip}\"}}: failed to allocate IP {ip}: provided IP is already allocated"
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn range() -> ServiceIpRange {
        ServiceIpRange::new(Ipv4Addr::new(127, 250, 3, 0), 24)
    }

    fn ip(s: &str) -> Ipv4Addr {
        s.parse().unwrap()
    }

    #[test]
    fn a_slash_24_holds_254_addresses_without_its_network_and_broadcast() {
        let r = range();
        assert_eq!(r.size(), 254);
        assert_eq!(r.cidr(), "127.250.3.0/24");
        assert!(r.contains(ip("127.250.3.1")));
        assert!(r.contains(ip("127.250.3.254")));
        assert!(!r.contains(ip("127.250.3.0")));
        assert!(!r.contains(ip("127.250.3.255")));
        assert!(!r.contains(ip("127.250.4.1")));
        assert!(!r.contains(ip("127.250.2.254")));
        assert!(!r.contains(ip("10.96.0.1")));
        // Host bits of the base are ignored.
        assert_eq!(ServiceIpRange::new(ip("127.250.3.77"), 24), r);
        let wide = ServiceIpRange::new(ip("127.1.2.3"), 16);
        assert_eq!(wide.cidr(), "127.1.0.0/16");
        assert_eq!(wide.size(), 65_534);
        assert!(wide.contains(ip("127.1.255.0")));
    }

    #[test]
    fn addresses_are_handed_out_in_turn_skipping_those_held() {
        let r = range();
        let (a, c) = r.next_free(0, &[], |_| true).unwrap();
        assert_eq!((a, c), (ip("127.250.3.1"), 1));
        let taken = [a, ip("127.250.3.2")];
        let (b, c) = r.next_free(c, &taken, |_| true).unwrap();
        assert_eq!((b, c), (ip("127.250.3.3"), 3));
    }

    #[test]
    fn a_freed_address_comes_back_only_after_the_rest_of_the_range() {
        let r = range();
        // .1 was freed; the cursor is past it.
        let (a, _) = r.next_free(1, &[], |_| true).unwrap();
        assert_eq!(a, ip("127.250.3.2"));
        // At the end of the range the cursor wraps.
        let (b, c) = r.next_free(253, &[], |_| true).unwrap();
        assert_eq!((b, c), (ip("127.250.3.254"), 254));
        let (d, _) = r.next_free(c, &[], |_| true).unwrap();
        assert_eq!(d, ip("127.250.3.1"));
    }

    #[test]
    fn an_address_in_use_elsewhere_is_skipped_unless_no_other_is_free() {
        let r = range();
        let busy = ip("127.250.3.1");
        let (a, _) = r.next_free(0, &[], |i| i != busy).unwrap();
        assert_eq!(a, ip("127.250.3.2"));
        let (b, _) = r.next_free(0, &[], |_| false).unwrap();
        assert_eq!(b, busy, "the first free one, though unusable");
    }

    #[test]
    fn a_full_range_has_nothing_to_hand_out() {
        let r = ServiceIpRange::new(ip("127.250.3.0"), 30);
        assert_eq!(r.size(), 2);
        let all = [ip("127.250.3.1"), ip("127.250.3.2")];
        assert_eq!(r.next_free(0, &all, |_| true), None);
    }

    #[test]
    fn a_requested_address_must_be_an_ip_in_the_range_and_free() {
        let r = range();
        assert_eq!(r.check("127.250.3.9", &[]), Ok(ip("127.250.3.9")));
        let held = [ip("127.250.3.9")];
        let e = r.check("127.250.3.9", &held).unwrap_err();
        assert_eq!(
            e.message(&r),
            "spec.clusterIPs: Invalid value: []string{\"127.250.3.9\"}: failed to allocate IP 127.250.3.9: provided IP is already allocated"
        );
        let e = r.check("10.96.0.10", &[]).unwrap_err();
        assert_eq!(
            e.message(&r),
            "spec.clusterIPs: Invalid value: []string{\"10.96.0.10\"}: failed to allocate IP 10.96.0.10: the provided IP (10.96.0.10) is not in the valid range. The range of valid IPs is 127.250.3.0/24"
        );
        assert_eq!(
            r.check("127.250.3.255", &[]),
            Err(AllocError::NotInRange(ip("127.250.3.255")))
        );
        let e = r.check("web", &[]).unwrap_err();
        assert!(
            e.message(&r).contains("must be a valid IP address"),
            "{e:?}"
        );
    }
}
