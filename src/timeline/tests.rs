//! State-at-an-instant tests: before, at and after each transition, late
//! (re-listed) events, Pods that never become ready, and the step
//! functions behind `timeline.csv`.

use super::testkit::*;
use super::*;

fn rollout_of_one() -> Timeline {
    // old was up from the start; new comes up at 1000 ms (ready at 1200);
    // old is deleted at 1300, its endpoint goes at 1340, it exits at 1600.
    let mut ev = pod_already_up(0, "old");
    ev.extend(pod_up(1000, "new"));
    ev.extend(pod_down(1300, "old", 40, 300));
    Timeline::new(ev)
}

#[test]
fn nothing_exists_before_the_first_event() {
    let mut ev = pod_up(1000, "a");
    ev.iter_mut().for_each(|e| e.observed_ns += MS);
    let t = Timeline::new(ev);
    let s = t.state_at(0);
    assert!(s.pods.is_empty());
    assert!(s.endpoints.is_empty());
    assert_eq!(t.ready_endpoints_at(0), 0);
    assert_eq!(t.pods_by_state_at(0), PodCounts::default());
    assert!(!t.endpoints_known_at(0));
}

#[test]
fn a_pod_moves_pending_running_ready_at_exactly_its_events() {
    let t = Timeline::new(pod_up(1000, "a"));
    let at = |ms: u64| t.pod_at("a", ms * MS).map(|p| p.lifecycle);
    assert_eq!(at(999), None);
    assert_eq!(at(1000), Some(Lifecycle::Pending));
    assert_eq!(at(1099), Some(Lifecycle::Pending));
    assert_eq!(at(1100), Some(Lifecycle::Running));
    assert_eq!(at(1199), Some(Lifecycle::Running));
    assert_eq!(at(1200), Some(Lifecycle::Ready));
    assert_eq!(at(99_999), Some(Lifecycle::Ready));
    let p = t.pod_at("a", 1500 * MS).unwrap();
    assert!(p.ready);
    assert_eq!(p.ready_since_ns, Some(1200 * MS));
    assert_eq!(p.lifecycle_since_ns, 1200 * MS);
    assert_eq!(p.first_seen_ns, 1000 * MS);
}

#[test]
fn an_endpoint_is_listed_then_ready_at_its_events() {
    let t = Timeline::new(pod_up(1000, "a"));
    let e = |ms: u64| t.endpoints_of_at("a", ms * MS).next().cloned();
    assert!(e(1099).is_none());
    let added = e(1100).unwrap();
    assert!(added.listed && !added.ready && !added.routable());
    assert_eq!(added.address, addr("a"));
    let ready = e(1200).unwrap();
    assert!(ready.routable() && ready.serving && !ready.terminating);
    assert_eq!(t.ready_endpoints_at(1199 * MS), 0);
    assert_eq!(t.ready_endpoints_at(1200 * MS), 1);
    assert!(t.endpoints_known_at(1100 * MS));
}

#[test]
fn deletion_makes_a_pod_terminating_with_its_grace_period_and_api_time() {
    let mut ev = pod_already_up(0, "a");
    ev.push(api(deleting(1000, "a", 45), 0));
    let t = Timeline::new(ev);
    assert_eq!(t.pod_at("a", 999 * MS).unwrap().lifecycle, Lifecycle::Ready);
    let p = t.pod_at("a", 1000 * MS).unwrap();
    assert_eq!(p.lifecycle, Lifecycle::Terminating);
    assert!(p.terminating());
    let d = p.deletion.as_ref().unwrap();
    assert_eq!(d.observed_ns, 1000 * MS);
    assert_eq!(d.api_ns, Some(0));
    assert_eq!(d.grace_period_s, Some(45));
    assert!(!d.late);
    // Still ready by its own condition until the kubelet says otherwise.
    assert!(p.ready);
}

#[test]
fn a_terminating_pod_loses_its_endpoint_exits_and_is_gone() {
    let t = rollout_of_one();
    let s = t.state_at(1339 * MS);
    let old_ep = s.endpoints_of("old").next().unwrap();
    assert!(old_ep.routable(), "endpoint lags the deletion");
    assert_eq!(s.pod("old").unwrap().lifecycle, Lifecycle::Terminating);

    let s = t.state_at(1340 * MS);
    let old_ep = s.endpoints_of("old").next().unwrap();
    assert!(old_ep.listed && !old_ep.ready && old_ep.terminating);
    assert_eq!(old_ep.unroutable_since_ns, Some(1340 * MS));

    let p = t.pod_at("old", 1600 * MS).unwrap();
    assert!(!p.container_running);
    let term = p.last_termination.as_ref().unwrap();
    assert_eq!(
        (term.exit_code, term.reason.as_str()),
        (Some(0), "Completed")
    );
    assert_eq!(p.lifecycle, Lifecycle::Terminating);

    let s = t.state_at(1620 * MS);
    assert_eq!(s.pod("old").unwrap().lifecycle, Lifecycle::Gone);
    assert_eq!(s.pod("old").unwrap().gone_ns, Some(1620 * MS));
    assert!(!s.endpoints_of("old").next().unwrap().listed);
    assert_eq!(s.existing_pods().count(), 1);
}

#[test]
fn ready_endpoint_count_follows_the_rollout() {
    let t = rollout_of_one();
    assert_eq!(t.ready_endpoints_at(0), 1);
    assert_eq!(t.ready_endpoints_at(1199 * MS), 1);
    assert_eq!(t.ready_endpoints_at(1200 * MS), 2);
    assert_eq!(t.ready_endpoints_at(1339 * MS), 2);
    assert_eq!(t.ready_endpoints_at(1340 * MS), 1);
    assert_eq!(t.ready_endpoints_at(10_000 * MS), 1);
    assert_eq!(t.state_at(1250 * MS).ready_endpoints(), 2);
    assert_eq!(t.ready_endpoints_range(1100 * MS, 1400 * MS), (1, 2));
    assert_eq!(t.ready_endpoints_range(1200 * MS, 1300 * MS), (2, 2));
}

#[test]
fn pods_by_state_counts_each_pod_once() {
    let t = rollout_of_one();
    let c = t.pods_by_state_at(1050 * MS);
    assert_eq!((c.ready, c.pending, c.existing()), (1, 1, 2));
    let c = t.pods_by_state_at(1150 * MS);
    assert_eq!((c.ready, c.running), (1, 1));
    let c = t.pods_by_state_at(1300 * MS);
    assert_eq!((c.ready, c.terminating), (1, 1));
    let c = t.pods_by_state_at(2000 * MS);
    assert_eq!((c.ready, c.terminating, c.gone, c.existing()), (1, 0, 1, 1));
    for ms in [0, 1000, 1100, 1200, 1300, 1340, 1620] {
        let s = t.state_at(ms * MS);
        let c = t.pods_by_state_at(ms * MS);
        for l in Lifecycle::ALL {
            let n = s.pods.iter().filter(|p| p.lifecycle == l).count() as u32;
            assert_eq!(c.get(l), n, "{l} at {ms} ms");
        }
    }
}

#[test]
fn events_out_of_order_are_sorted_by_observed_time_stably() {
    let mut ev = pod_up(1000, "a");
    ev.reverse();
    // Same instant, given in this order: ready then not ready.
    ev.push(pod(5000, EventKind::PodNotReady, "a"));
    ev.push(pod(5000, EventKind::PodReady, "a"));
    let t = Timeline::new(ev);
    assert!(
        t.events()
            .windows(2)
            .all(|w| w[0].observed_ns <= w[1].observed_ns)
    );
    let p = t.pod_at("a", 5000 * MS).unwrap();
    assert!(p.ready, "the later of two same-instant events wins");
    // pod_up's creation came first, so it is pending at 1000 ms.
    assert_eq!(
        t.pod_at("a", 1000 * MS).unwrap().lifecycle,
        Lifecycle::Pending
    );
}

#[test]
fn a_pod_that_never_becomes_ready_stays_pending_or_running() {
    let ev = vec![
        pod(100, EventKind::PodCreated, "bad"),
        pod(100, EventKind::PodScheduled, "bad"),
        LifecycleEvent {
            reason: "ErrImagePull".into(),
            ..pod(300, EventKind::ContainerWaiting, "bad")
        },
        pod(400, EventKind::PodCreated, "slow"),
        pod(500, EventKind::ContainerStarted, "slow"),
        ep(500, EventKind::EndpointAdded, "slow"),
    ];
    let t = Timeline::new(ev);
    let bad = t.pod_at("bad", 10_000 * MS).unwrap();
    assert_eq!(bad.lifecycle, Lifecycle::Pending);
    assert_eq!(bad.waiting_reason.as_deref(), Some("ErrImagePull"));
    assert!(!bad.ready && bad.last_became_ready_ns.is_none());
    let slow = t.pod_at("slow", 10_000 * MS).unwrap();
    assert_eq!(slow.lifecycle, Lifecycle::Running);
    assert_eq!(t.ready_endpoints_at(10_000 * MS), 0);
    assert_eq!(t.routability("slow", 10_000 * MS, 0), Routability::No);
    assert_eq!(t.routability("bad", 10_000 * MS, 0), Routability::Unknown);
    assert_eq!(
        lags::never_ready(&t),
        vec!["bad".to_string(), "slow".to_string()]
    );
}

#[test]
fn a_crash_counts_restarts_and_keeps_the_pod_not_terminating() {
    let mut ev = pod_already_up(0, "a");
    ev.push(terminated(2000, "a", 1, "Error"));
    ev.push(pod(2010, EventKind::PodNotReady, "a"));
    ev.push(restarted(2500, "a", 1));
    ev.push(pod(2500, EventKind::ContainerStarted, "a"));
    ev.push(pod(3000, EventKind::PodReady, "a"));
    let t = Timeline::new(ev);
    let p = t.pod_at("a", 2005 * MS).unwrap();
    assert!(!p.container_running && !p.terminating());
    assert_eq!(p.last_termination.as_ref().unwrap().exit_code, Some(1));
    assert_eq!(
        p.lifecycle,
        Lifecycle::Ready,
        "ready until the probe says not"
    );
    assert_eq!(
        t.pod_at("a", 2010 * MS).unwrap().lifecycle,
        Lifecycle::Running
    );
    let p = t.pod_at("a", 2600 * MS).unwrap();
    assert_eq!((p.restart_count, p.last_restart_ns), (1, Some(2500 * MS)));
    assert!(p.container_running);
    let p = t.pod_at("a", 3000 * MS).unwrap();
    assert_eq!(p.lifecycle, Lifecycle::Ready);
    assert_eq!(p.last_became_ready_ns, Some(3000 * MS));
}

#[test]
fn late_events_apply_at_their_observed_time_and_are_flagged() {
    // The watch was blind from 1000 to 4000 ms; the re-list at 4000 ms
    // found "a" deleted (API time 2000 ms) and "b" already ready.
    let mut ev = pod_already_up(0, "a");
    ev.push(LifecycleEvent {
        kind: EventKind::WatchRestarted,
        object: "watch/pods".into(),
        observed_ns: 4000 * MS,
        blind_ns: Some(3000 * MS),
        ..Default::default()
    });
    ev.push(late(api(deleting(4000, "a", 30), 2000)));
    ev.push(late(pod(4000, EventKind::PodCreated, "b")));
    ev.push(late(pod(4000, EventKind::PodReady, "b")));
    let t = Timeline::new(ev);
    assert_eq!(
        t.pod_at("a", 3999 * MS).unwrap().lifecycle,
        Lifecycle::Ready
    );
    let a = t.pod_at("a", 4000 * MS).unwrap();
    assert_eq!(a.lifecycle, Lifecycle::Terminating);
    assert!(a.late);
    let d = a.deletion.as_ref().unwrap();
    assert!(d.late);
    assert_eq!(
        d.api_ns,
        Some(2000 * MS as i64),
        "API time kept as evidence"
    );
    assert!(t.pod_at("b", 3999 * MS).is_none());
    let blind: Vec<_> = t.blind_at(2000 * MS).collect();
    assert_eq!(
        blind,
        [&BlindWindow {
            start_ns: 1000 * MS,
            end_ns: 4000 * MS,
            watch: "watch/pods".into()
        }]
    );
    assert_eq!(t.blind_at(4000 * MS).count(), 0);
    assert_eq!(
        t.pod_at("b", 4000 * MS).unwrap().lifecycle,
        Lifecycle::Ready
    );
}

#[test]
fn repeated_events_from_a_relist_do_not_move_since_times() {
    let mut ev = pod_already_up(0, "a");
    ev.push(deleting(1000, "a", 30));
    ev.push(late(pod(3000, EventKind::PodReady, "a")));
    ev.push(late(deleting(3000, "a", 30)));
    ev.push(late(ep(3000, EventKind::EndpointReady, "a")));
    let t = Timeline::new(ev);
    let p = t.pod_at("a", 3000 * MS).unwrap();
    assert_eq!(p.ready_since_ns, Some(0));
    assert_eq!(p.deletion.as_ref().unwrap().observed_ns, 1000 * MS);
    assert_eq!(p.lifecycle_since_ns, 1000 * MS);
    let e = t.endpoints_of_at("a", 3000 * MS).next().unwrap();
    assert_eq!(e.routable_since_ns, Some(0));
    assert_eq!(t.routable_intervals("a").len(), 1);
}

#[test]
fn routability_allows_for_a_lagging_proxy() {
    let t = rollout_of_one();
    let a = 500 * MS;
    assert_eq!(t.routability("old", 1339 * MS, a), Routability::Routable);
    assert_eq!(
        t.routability("old", 1340 * MS, a),
        Routability::Lagging {
            stopped_ns: 1340 * MS
        }
    );
    assert_eq!(
        t.routability("old", 1840 * MS, a),
        Routability::Lagging {
            stopped_ns: 1340 * MS
        }
    );
    assert_eq!(t.routability("old", 1841 * MS, a), Routability::No);
    assert_eq!(t.routability("new", 1199 * MS, a), Routability::No);
    assert_eq!(t.routability("new", 1200 * MS, a), Routability::Routable);
    assert_eq!(t.routability("nobody", 1200 * MS, a), Routability::Unknown);
}

#[test]
fn a_pod_with_two_addresses_is_routable_while_either_is() {
    let mut ev = pod_already_up(0, "a");
    let mut second = ep(0, EventKind::EndpointReady, "a");
    second.address = "fd00::1".into();
    ev.push(second.clone());
    ev.push(ep(1000, EventKind::EndpointRemoved, "a"));
    ev.push(LifecycleEvent {
        kind: EventKind::EndpointRemoved,
        observed_ns: 2000 * MS,
        ..second
    });
    let t = Timeline::new(ev);
    assert_eq!(t.ready_endpoints_at(500 * MS), 2);
    assert_eq!(t.routability("a", 1500 * MS, 0), Routability::Routable);
    assert_eq!(
        t.routability("a", 2000 * MS, 0),
        Routability::Lagging {
            stopped_ns: 2000 * MS
        }
    );
    assert_eq!(
        t.routable_intervals("a"),
        &[Interval {
            start: 0,
            end: Some(2000 * MS)
        }]
    );
}

#[test]
fn an_endpoint_added_with_its_conditions_is_ready_at_once() {
    let ev = vec![LifecycleEvent {
        new: "ready=true serving=true terminating=false".into(),
        ..ep(100, EventKind::EndpointAdded, "a")
    }];
    let t = Timeline::new(ev);
    assert_eq!(t.ready_endpoints_at(100 * MS), 1);
    let e = t.endpoints_of_at("a", 100 * MS).next().unwrap();
    assert!(e.serving && !e.terminating);
    assert_eq!(e.describe(), "ready");
}

#[test]
fn non_pod_and_non_endpoint_events_change_no_state() {
    let mut ev = pod_already_up(0, "a");
    ev.push(LifecycleEvent {
        observed_ns: 500 * MS,
        kind: EventKind::ClusterEvent,
        object: "pod/a".into(),
        pod: "a".into(),
        reason: "Killing".into(),
        ..Default::default()
    });
    ev.push(LifecycleEvent {
        observed_ns: 600 * MS,
        kind: EventKind::StepStarted,
        object: "step/1".into(),
        ..Default::default()
    });
    let t = Timeline::new(ev);
    assert_eq!(t.pod_history("a").count(), 3);
    assert_eq!(t.events().len(), 8);
    let (later, start) = (t.state_at(700 * MS), t.state_at(0));
    assert_eq!((later.pods, later.endpoints), (start.pods, start.endpoints));
}

#[test]
fn an_address_moving_between_slices_stays_listed_and_counts_once() {
    let mut ev = pod_already_up(0, "a");
    let in_b = |ms: u64, kind| LifecycleEvent {
        object: "endpointslice/web-service-xyz".into(),
        ..ep(ms, kind, "a")
    };
    // Added to slice xyz at 1000 ms, removed from abc at 1010 ms.
    ev.push(in_b(1000, EventKind::EndpointAdded));
    ev.push(in_b(1000, EventKind::EndpointReady));
    ev.push(ep(1010, EventKind::EndpointRemoved, "a"));
    let t = Timeline::new(ev);
    assert_eq!(t.ready_endpoints_at(1005 * MS), 1);
    assert_eq!(t.state_at(1005 * MS).ready_endpoints(), 1);
    assert_eq!(t.state_at(1005 * MS).endpoints.len(), 2);
    assert_eq!(t.ready_endpoints_at(1010 * MS), 1);
    assert_eq!(t.routability("a", 1010 * MS, 0), Routability::Routable);
    assert_eq!(t.routable_intervals("a").len(), 1);
}

#[test]
fn a_pod_recreated_under_the_same_name_starts_afresh() {
    let mut ev = pod_already_up(0, "db-0");
    ev.extend(pod_down(1000, "db-0", 40, 200));
    ev.extend(pod_up(2000, "db-0"));
    let t = Timeline::new(ev);
    assert_eq!(
        t.pod_at("db-0", 1500 * MS).unwrap().lifecycle,
        Lifecycle::Gone
    );
    let p = t.pod_at("db-0", 2000 * MS).unwrap();
    assert_eq!(p.lifecycle, Lifecycle::Pending);
    assert!(p.deletion.is_none() && p.gone_ns.is_none());
    assert_eq!(p.first_seen_ns, 2000 * MS);
    assert_eq!(
        t.pod_at("db-0", 2200 * MS).unwrap().lifecycle,
        Lifecycle::Ready
    );
    let c = t.pods_by_state_at(2200 * MS);
    assert_eq!((c.ready, c.gone), (1, 0));
}

#[test]
fn additions_are_endpoints_that_became_routable_after_the_first_listing() {
    let mut ev = pod_already_up(0, "old");
    ev.extend(pod_up(1000, "new"));
    ev.extend(pod_down(3000, "new", 40, 300));
    let t = Timeline::new(ev);
    let adds = t.routable_additions();
    assert_eq!(adds.len(), 1, "{adds:?}");
    assert_eq!(adds[0].0, "new");
    assert_eq!(adds[0].1.start, 1200 * MS);
    assert_eq!(adds[0].1.end, Some(3040 * MS));
}
