//! The nftables commands of the kernel data plane, as text for `nft -i`
//! (pure: what [`super::Kernel`] writes, tested here without a kernel).
//!
//! The shape is kube-proxy's nftables mode, cut down to what a rollout
//! needs: one table the sandbox owns (`flags owner`: the kernel deletes it
//! when the sandbox's `nft` process exits, however the sandbox ends), a
//! NAT chain on the `output` hook (the load and the Pods are processes on
//! this machine, so their packets leave by `output`, not `prerouting`), a
//! verdict map from each door (a NodePort or a ClusterIP and port) to that
//! door's chain, and in each door's chain one rule that marks the
//! connection (so this sandbox's `conntrack -E` sees only its own) and
//! DNATs it to an endpoint picked by `numgen random`. A door with no
//! endpoint DNATs to an address nothing listens on, so the client's
//! connect is refused, as kube-proxy's REJECT does.
//!
//! Not for: running `nft` (see [`super`]), or sessionAffinity (not
//! modelled by this data plane).

use std::fmt::Write;
use std::net::SocketAddr;

/// The table, the `output` NAT chain and the doors map; one line, so
/// `nft` applies it as one transaction.
pub fn create_table(table: &str) -> String {
    format!(
        "add table ip {table} {{ flags owner; }}; \
         add map ip {table} doors {{ type ipv4_addr . inet_service : verdict; }}; \
         add chain ip {table} out {{ type nat hook output priority -100; }}; \
         add rule ip {table} out ip daddr . tcp dport vmap @doors"
    )
}

/// A door's chain name: `d` and its number.
pub fn chain(door: u32) -> String {
    format!("d{door}")
}

/// Opens door number `door` at `addr`, routed as [`route`] does; one
/// transaction, so the door is never reachable unrouted.
pub fn open_door(
    table: &str,
    door: u32,
    addr: SocketAddr,
    mark: u32,
    endpoints: &[SocketAddr],
    sentinel: SocketAddr,
) -> String {
    let c = chain(door);
    format!(
        "add chain ip {table} {c}; {}; add element ip {table} doors {{ {} . {} : goto {c} }}",
        route(table, door, mark, endpoints, sentinel),
        addr.ip(),
        addr.port()
    )
}

/// Closes door number `door` at `addr`.
pub fn close_door(table: &str, door: u32, addr: SocketAddr) -> String {
    let c = chain(door);
    format!(
        "delete element ip {table} doors {{ {} . {} }}; flush chain ip {table} {c}; delete chain ip {table} {c}",
        addr.ip(),
        addr.port()
    )
}

/// Replaces door `door`'s rule: mark, then DNAT to one of `endpoints`
/// picked at random (to `sentinel`, refused, when there is none).
pub fn route(
    table: &str,
    door: u32,
    mark: u32,
    endpoints: &[SocketAddr],
    sentinel: SocketAddr,
) -> String {
    let c = chain(door);
    let mut s = format!(
        "flush chain ip {table} {c}; add rule ip {table} {c} ct mark set {mark:#x} meta l4proto tcp dnat ip to "
    );
    match endpoints {
        [] => {
            let _ = write!(s, "{}:{}", sentinel.ip(), sentinel.port());
        }
        eps => {
            let _ = write!(s, "numgen random mod {} map {{ ", eps.len());
            for (i, e) in eps.iter().enumerate() {
                let sep = if i == 0 { "" } else { ", " };
                let _ = write!(s, "{sep}{i} : {} . {}", e.ip(), e.port());
            }
            s.push_str(" }");
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn a(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    #[test]
    fn a_door_with_endpoints_picks_one_at_random_through_a_numgen_map() {
        let r = route(
            "t",
            3,
            0x2a,
            &[a("127.10.0.1:8080"), a("127.10.0.2:8080")],
            a("127.10.0.0:9"),
        );
        assert_eq!(
            r,
            "flush chain ip t d3; add rule ip t d3 ct mark set 0x2a meta l4proto tcp dnat ip to \
             numgen random mod 2 map { 0 : 127.10.0.1 . 8080, 1 : 127.10.0.2 . 8080 }"
        );
    }

    #[test]
    fn a_door_without_endpoints_sends_to_the_sentinel_that_refuses() {
        let r = route("t", 0, 1, &[], a("127.10.0.0:9"));
        assert!(r.ends_with("dnat ip to 127.10.0.0:9"), "{r}");
    }

    #[test]
    fn opening_a_door_adds_its_chain_before_the_map_element_that_goes_to_it() {
        let o = open_door("t", 1, a("127.0.0.1:30080"), 1, &[], a("127.10.0.0:9"));
        let chain_at = o.find("add chain ip t d1").unwrap();
        let elem_at = o
            .find("add element ip t doors { 127.0.0.1 . 30080 : goto d1 }")
            .unwrap();
        assert!(chain_at < elem_at, "{o}");
        let routed = open_door(
            "t",
            1,
            a("127.0.0.1:30080"),
            1,
            &[a("127.10.0.1:8080")],
            a("127.10.0.0:9"),
        );
        assert!(
            routed.contains("numgen random mod 1 map { 0 : 127.10.0.1 . 8080 }"),
            "{routed}"
        );
        let c = close_door("t", 1, a("127.0.0.1:30080"));
        assert!(
            c.starts_with("delete element ip t doors { 127.0.0.1 . 30080 }"),
            "{c}"
        );
        assert!(c.ends_with("delete chain ip t d1"), "{c}");
    }

    #[test]
    fn the_table_is_owned_so_the_kernel_removes_it_with_the_process() {
        assert!(create_table("t").starts_with("add table ip t { flags owner; }"));
    }
}
